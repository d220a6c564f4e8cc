/*-------------------------------------------------------------------------
 * pseudonym.c
 *	  Keyed, deterministic, irreversible pseudonyms: pdp.pseudonym for
 *	  text, bigint and uuid, pdp.pseudo_email and pdp.pseudo_name.
 *
 * All are HMAC-SHA-256 under a subkey derived per use and domain, so equal
 * values give equal pseudonyms (joins keep working), and values of two
 * domains are unlinkable.  Inputs are never copied into messages.
 *-------------------------------------------------------------------------
 */
#include "keyed.h"

#include "utils/builtins.h"
#include "utils/uuid.h"

#include "codec.h"
#include "contact.h"
#include "names.h"
#include "pdp_crypto.h"

PG_FUNCTION_INFO_V1(pdp_pseudonym_text);
PG_FUNCTION_INFO_V1(pdp_pseudonym_int8);
PG_FUNCTION_INFO_V1(pdp_pseudonym_uuid);
PG_FUNCTION_INFO_V1(pdp_pseudo_email);
PG_FUNCTION_INFO_V1(pdp_pseudo_name);

/* 128 bits, as 32 lower-case hex digits. */
#define PSEUDONYM_BYTES 16

static Datum
pseudonym_of(FunctionCallInfo fcinfo, const char *value, Size len)
{
	text	   *domain = PG_GETARG_TEXT_PP(1);
	PdpKeyed   *k;
	unsigned char mac[32];
	char		hex[2 * PSEUDONYM_BYTES + 1];

	pdp_keyed_check_domain(VARDATA_ANY(domain), VARSIZE_ANY_EXHDR(domain));
	k = pdp_keyed_get(fcinfo, PDP_KEYED_HMAC, "pseudonym",
					  VARDATA_ANY(domain), VARSIZE_ANY_EXHDR(domain), 0);
	pdp_keyed_hmac(k, value, len, mac);
	pdp_hex_encode(mac, PSEUDONYM_BYTES, hex);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(hex, 2 * PSEUDONYM_BYTES));
}

/*
 * The pseudonym of a subject for the audit trail, pdp.pseudonym(subject,
 * 'audit'), computed with the calling function's own cached context.
 */
Datum
pdp_pseudonym_for_audit(FunctionCallInfo fcinfo, text *subject)
{
	PdpKeyed   *k = pdp_keyed_get(fcinfo, PDP_KEYED_HMAC, "pseudonym", "audit", 5, 0);
	unsigned char mac[32];
	char		hex[2 * PSEUDONYM_BYTES + 1];

	pdp_keyed_hmac(k, VARDATA_ANY(subject), VARSIZE_ANY_EXHDR(subject), mac);
	pdp_hex_encode(mac, PSEUDONYM_BYTES, hex);
	return PointerGetDatum(cstring_to_text_with_len(hex, 2 * PSEUDONYM_BYTES));
}

PG_FUNCTION_INFO_V1(pdp_subject_pseudonym);

/*
 * pdp._subject_pseudonym(subject text) RETURNS text
 * The pseudonym under which the audit trail and the erasure receipts know a
 * subject.  Internal: refused unless another pdp function calls it, so that
 * no role can compute it for guessed subjects and read who was erased.
 */
Datum
pdp_subject_pseudonym(PG_FUNCTION_ARGS)
{
	pdp_require_pdp_caller("pdp._subject_pseudonym");
	return pdp_pseudonym_for_audit(fcinfo, PG_GETARG_TEXT_PP(0));
}

/*
 * pdp.pseudonym(value text, domain text) RETURNS text
 * The bigint and uuid forms hash the value's text form, so the learner 42
 * stored as bigint and as text gets one pseudonym.
 */
Datum
pdp_pseudonym_text(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);

	return pseudonym_of(fcinfo, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

Datum
pdp_pseudonym_int8(PG_FUNCTION_ARGS)
{
	char		buf[MAXINT8LEN + 1];
	int			len = pg_lltoa(PG_GETARG_INT64(0), buf);

	return pseudonym_of(fcinfo, buf, len);
}

Datum
pdp_pseudonym_uuid(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = PG_GETARG_UUID_P(0);
	static const char hexdigits[] = "0123456789abcdef";
	char		buf[36];
	int			p = 0;

	/* The canonical form uuid_out prints: 8-4-4-4-12 lower-case hex. */
	for (int i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[p++] = '-';
		buf[p++] = hexdigits[uuid->data[i] >> 4];
		buf[p++] = hexdigits[uuid->data[i] & 0x0F];
	}
	return pseudonym_of(fcinfo, buf, sizeof(buf));
}

/*
 * pdp.pseudo_email(email text, keep_domain boolean) RETURNS text
 * A well-formed address whose local part is 26 base32 characters (130 bits)
 * of HMAC over the lower-cased address; the domain is kept (lower-cased) or
 * replaced by "pseudonym.invalid".
 */
Datum
pdp_pseudo_email(PG_FUNCTION_ARGS)
{
	text	   *email = PG_GETARG_TEXT_PP(0);
	bool		keep_domain = PG_GETARG_BOOL(1);
	const char *s = VARDATA_ANY(email);
	Size		len = VARSIZE_ANY_EXHDR(email);
	pdp_email_status st;
	size_t		at;
	char		lower[320];
	char		out[27 + 1 + 253 + 1];
	unsigned char mac[32];
	char		b32[PDP_BASE32_LEN(17)];
	PdpKeyed   *k;
	size_t		n;

	if (pdp_is_blank(s, len))
		PG_RETURN_TEXT_P(email);	/* '' and blanks hold no address */
	st = pdp_email_parse(s, len, &at);
	if (st != PDP_EMAIL_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid e-mail address"),
				 errdetail("%s", pdp_email_status_message(st)),
				 errhidestmt(true)));
	/* Validated: at most 64 + 1 + 253 bytes. */
	for (Size i = 0; i < len; i++)
		lower[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char) (s[i] + ('a' - 'A')) : s[i];

	k = pdp_keyed_get(fcinfo, PDP_KEYED_HMAC, "pseudo_email", "", 0, 0);
	pdp_keyed_hmac(k, lower, len, mac);
	pdp_base32_encode(mac, 17, b32);
	memcpy(out, b32, 26);
	out[26] = '@';
	n = 27;
	if (keep_domain)
	{
		memcpy(out + n, lower + at + 1, len - at - 1);
		n += len - at - 1;
	}
	else
	{
		memcpy(out + n, "pseudonym.invalid", 17);
		n += 17;
	}
	pdp_cleanse(lower, sizeof(lower));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out, n));
}

/*
 * pdp.pseudo_name(name text) RETURNS text
 * A realistic name from the shipped lists, in the input's script, with
 * its number of words and gender (see core/names.c).  Names come from
 * finite lists, so unlike the other pseudonyms these are not unique.
 */
Datum
pdp_pseudo_name(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	PdpKeyed   *k;
	unsigned char mac[32];
	char		out[PDP_NAME_MAX_OUT];
	pdp_name_status st;

	if (pdp_is_blank(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name)))
		PG_RETURN_TEXT_P(name);	/* '' and blanks hold no name */
	k = pdp_keyed_get(fcinfo, PDP_KEYED_HMAC, "pseudo_name", "", 0, 0);
	pdp_keyed_hmac(k, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), mac);
	st = pdp_name_replace(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), mac, out);
	if (st != PDP_NAME_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid personal name"),
				 errdetail("%s", pdp_name_status_message(st)),
				 errhidestmt(true)));
	PG_RETURN_TEXT_P(cstring_to_text(out));
}
