/*-------------------------------------------------------------------------
 * encrypt.c
 *	  pdp.encrypt / pdp.decrypt: deterministic authenticated encryption
 *	  (AES-256-SIV) into tokens that carry their key version and domain.
 *
 * Equal values in one domain give equal tokens, so unique indexes and
 * joins on token columns keep working.  Decryption uses the version in the
 * token, so tokens made before a key rotation still decrypt while the old
 * version stays in the key file.  Only pdp_reidentifier may decrypt.
 *-------------------------------------------------------------------------
 */
#include "keyed.h"

#include "utils/builtins.h"

#include "codec.h"
#include "pdp_crypto.h"

PG_FUNCTION_INFO_V1(pdp_encrypt);
PG_FUNCTION_INFO_V1(pdp_decrypt);

/* pdp.encrypt(value text, domain text) RETURNS text */
Datum
pdp_encrypt(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	text	   *domain = PG_GETARG_TEXT_PP(1);
	Size		vlen = VARSIZE_ANY_EXHDR(value);
	Size		dlen = VARSIZE_ANY_EXHDR(domain);
	PdpKeyed   *k;
	unsigned char *body;
	unsigned char *plain;
	size_t		hlen;
	Size		body_len,
				text_len;
	text	   *result;

	if (dlen > PDP_TOKEN_MAX_DOMAIN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("domain is too long"),
				 errdetail("A domain may have at most %d bytes.", PDP_TOKEN_MAX_DOMAIN)));
	if (vlen > 64 * 1024 * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value is too long to encrypt"),
				 errdetail("At most 64 MB are accepted."),
				 errhidestmt(true)));

	pdp_keyed_check_domain(VARDATA_ANY(domain), dlen);
	k = pdp_keyed_get(fcinfo, PDP_KEYED_SIV, "encrypt", VARDATA_ANY(domain), dlen, 0);
	body_len = PDP_TOKEN_BODY_LEN(dlen, vlen + 1);
	body = palloc(body_len);
	hlen = pdp_token_header(body, pdp_keyed_version(k), (const unsigned char *) VARDATA_ANY(domain), dlen);

	/* Plaintext: a type byte, then the value (SIV cannot seal zero bytes). */
	plain = palloc(vlen + 1);
	plain[0] = PDP_TOKEN_TYPE_TEXT;
	memcpy(plain + 1, VARDATA_ANY(value), vlen);
	if (!pdp_siv_encrypt(pdp_keyed_siv(k), body, hlen, plain, vlen + 1, body + hlen))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not encrypt value"),
				 errdetail("OpenSSL failed.")));
	pdp_cleanse(plain, vlen + 1);
	pfree(plain);

	text_len = PDP_TOKEN_PREFIX_LEN + PDP_BASE64URL_LEN(body_len);
	result = (text *) palloc(VARHDRSZ + text_len);
	SET_VARSIZE(result, VARHDRSZ + text_len);
	memcpy(VARDATA(result), PDP_TOKEN_PREFIX, PDP_TOKEN_PREFIX_LEN);
	pdp_base64url_encode(body, body_len, VARDATA(result) + PDP_TOKEN_PREFIX_LEN);
	pfree(body);
	PG_RETURN_TEXT_P(result);
}

/* pdp.decrypt(token text) RETURNS text */
Datum
pdp_decrypt(PG_FUNCTION_ARGS)
{
	text	   *token = PG_GETARG_TEXT_PP(0);
	Size		len = VARSIZE_ANY_EXHDR(token);
	unsigned char *buf = palloc(len + 1);
	pdp_token	tok;
	PdpKeyed   *k;
	unsigned char *plain;
	Size		plen;
	text	   *result;

	pdp_audit_reversal("pdp.decrypt");
	if (!pdp_token_parse(VARDATA_ANY(token), len, buf, &tok))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid pdp_ext token"),
				 errdetail("A token is \"pdp1.\" followed by base64url text made by pdp.encrypt()."),
				 errhidestmt(true)));
	k = pdp_keyed_get(fcinfo, PDP_KEYED_SIV, "encrypt", (const char *) tok.domain,
					  tok.domain_len, tok.version);
	plen = tok.sealed_len - PDP_SIV_TAG_BYTES;
	plain = palloc(plen + 1);
	if (plen < 1 ||
		!pdp_siv_decrypt(pdp_keyed_siv(k), tok.header, tok.header_len, tok.sealed, tok.sealed_len, plain) ||
		plain[0] != PDP_TOKEN_TYPE_TEXT)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("pdp_ext token failed authentication"),
				 errdetail("The token was altered, or made under another key."),
				 errhidestmt(true)));
	result = (text *) palloc(VARHDRSZ + plen - 1);
	SET_VARSIZE(result, VARHDRSZ + plen - 1);
	memcpy(VARDATA(result), plain + 1, plen - 1);
	pdp_cleanse(plain, plen);
	pfree(plain);
	pfree(buf);
	PG_RETURN_TEXT_P(result);
}
