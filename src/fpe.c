/*-------------------------------------------------------------------------
 * fpe.c
 *	  Format-preserving pseudonyms and tokens built on FF1: phone numbers,
 *	  IINs, IP addresses, and pdp.fpe_encrypt / pdp.fpe_decrypt for any
 *	  digit string.
 *
 * FF1 is a permutation, so every function here is collision-free: distinct
 * inputs give distinct outputs.  The pseudo_* functions use subkeys no SQL
 * function reverses; fpe_* use their own, and only pdp_reidentifier may call
 * the decrypting direction.  FF1 output cannot carry a key version, so the
 * reversible ones take key_version (NULL: the active key).
 *-------------------------------------------------------------------------
 */
#include "keyed.h"

#include <sys/socket.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/inet.h"

#include "checkdigit.h"
#include "contact.h"
#include "iin_fpe.h"
#include "ipaddr.h"

PG_FUNCTION_INFO_V1(pdp_pseudo_phone);
PG_FUNCTION_INFO_V1(pdp_pseudo_iin);
PG_FUNCTION_INFO_V1(pdp_fpe_iin);
PG_FUNCTION_INFO_V1(pdp_fpe_iin_decrypt);
PG_FUNCTION_INFO_V1(pdp_pseudo_ip);
PG_FUNCTION_INFO_V1(pdp_pseudo_ip_text);
PG_FUNCTION_INFO_V1(pdp_pseudo_ip_any);
PG_FUNCTION_INFO_V1(pdp_fpe_encrypt);
PG_FUNCTION_INFO_V1(pdp_fpe_decrypt);

static const char digit_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* Key version argument: NULL or absent means the active key. */
static uint16
key_version_arg(FunctionCallInfo fcinfo, int argno)
{
	int32		v;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return 0;
	v = PG_GETARG_INT32(argno);
	if (v < 1 || v > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key version must be between 1 and 65535")));
	return (uint16) v;
}

/* Raise the error for an invalid IIN, naming the rule it breaks. */
static void
report_invalid_iin(pdp_id_status st) pg_attribute_noreturn();
static void
report_invalid_iin(pdp_id_status st)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid IIN"),
			 errdetail("%s", pdp_id_status_message(st)),
			 errhidestmt(true)));
}

/*
 * pdp.pseudo_phone(phone text) RETURNS text
 * Keeps the country code (or trunk 8), the first national digit, the
 * length and the layout; permutes the other digits with FF1 tweaked by the
 * kept prefix.
 */
Datum
pdp_pseudo_phone(PG_FUNCTION_ARGS)
{
	text	   *phone = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(phone);
	Size		len = VARSIZE_ANY_EXHDR(phone);
	pdp_phone	p;
	pdp_phone_status st;
	uint8_t		digits[PDP_PHONE_MAX_DIGITS];
	size_t		n;
	PdpKeyed   *k;
	pdp_ff1_status fst;
	text	   *result;
	char	   *out;

	if (pdp_is_blank(s, len))
		PG_RETURN_TEXT_P(phone);	/* '' and blanks hold no number */
	st = pdp_phone_parse(s, len, &p);
	if (st != PDP_PHONE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid phone number"),
				 errdetail("%s", pdp_phone_status_message(st)),
				 errhidestmt(true)));
	n = p.ndigits - p.keep;
	for (size_t i = 0; i < n; i++)
		digits[i] = (uint8_t) (p.digits[p.keep + i] - '0');

	k = pdp_keyed_get(fcinfo, PDP_KEYED_FF1, "pseudo_phone", "", 0, 0);
	fst = pdp_ff1_encrypt(pdp_keyed_ff1(k), 10, (const unsigned char *) p.digits, p.keep,
						  digits, digits, n);
	if (fst != PDP_FF1_OK)
		pdp_report_ff1(fst);

	result = (text *) palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	out = VARDATA(result);
	memcpy(out, s, len);
	for (size_t i = 0; i < n; i++)
		out[p.pos[p.keep + i]] = (char) ('0' + digits[i]);
	PG_RETURN_TEXT_P(result);
}

/* Shared body of the IIN functions: validate, then permute. */
static Datum
iin_permute(FunctionCallInfo fcinfo, const char *label, bool keep_year,
			uint16 version, bool encrypt)
{
	text	   *iin;
	const char *s;
	Size		len;
	pdp_id_status st;
	char		out[12];
	PdpKeyed   *k;
	pdp_iin_fpe_status fst;

	/* fpe_iin is not STRICT (key_version may be NULL): NULL in, NULL out. */
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (!encrypt)
		pdp_audit_reversal("pdp.fpe_iin_decrypt");
	iin = PG_GETARG_TEXT_PP(0);
	s = VARDATA_ANY(iin);
	len = VARSIZE_ANY_EXHDR(iin);
	if (pdp_is_blank(s, len))
		PG_RETURN_TEXT_P(iin);	/* '' and blanks hold no IIN, both ways */
	st = pdp_iin_validate(s, len);
	if (st != PDP_ID_OK)
		report_invalid_iin(st);
	k = pdp_keyed_get(fcinfo, PDP_KEYED_FF1, label, "", 0, version);
	fst = encrypt ? pdp_iin_fpe_encrypt(pdp_keyed_ff1(k), keep_year, s, out)
		: pdp_iin_fpe_decrypt(pdp_keyed_ff1(k), keep_year, s, out);
	if (fst != PDP_IIN_FPE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("format-preserving encryption of an IIN failed")));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out, 12));
}

/* pdp.pseudo_iin(iin text, keep_birth_year boolean) RETURNS text */
Datum
pdp_pseudo_iin(PG_FUNCTION_ARGS)
{
	return iin_permute(fcinfo, "pseudo_iin", PG_GETARG_BOOL(1), 0, true);
}

/* pdp.fpe_iin(iin text, key_version int) RETURNS text: a reversible IIN token. */
Datum
pdp_fpe_iin(PG_FUNCTION_ARGS)
{
	return iin_permute(fcinfo, "fpe_iin", false, key_version_arg(fcinfo, 1), true);
}

/* pdp.fpe_iin_decrypt(token text, key_version int) RETURNS text */
Datum
pdp_fpe_iin_decrypt(PG_FUNCTION_ARGS)
{
	return iin_permute(fcinfo, "fpe_iin", false, key_version_arg(fcinfo, 1), false);
}

/*
 * Permute an address's 32 (IPv4) or 128 (IPv6) bits in place with FF1:
 * IPv4 as 32 binary digits, IPv6 as 32 hexadecimal digits.
 */
static void
permute_ip(FunctionCallInfo fcinfo, bool v4, unsigned char *addr)
{
	uint8_t		digits[32];
	unsigned	radix = v4 ? 2 : 16;
	PdpKeyed   *k;
	pdp_ff1_status fst;

	for (int i = 0; i < 32; i++)
		digits[i] = v4 ? (addr[i / 8] >> (7 - i % 8)) & 1
			: ((i % 2 == 0) ? addr[i / 2] >> 4 : addr[i / 2] & 0x0F);
	k = pdp_keyed_get(fcinfo, PDP_KEYED_FF1, v4 ? "pseudo_ip4" : "pseudo_ip6", "", 0, 0);
	fst = pdp_ff1_encrypt(pdp_keyed_ff1(k), radix, NULL, 0, digits, digits, 32);
	if (fst != PDP_FF1_OK)
		pdp_report_ff1(fst);
	memset(addr, 0, v4 ? 4 : 16);
	for (int i = 0; i < 32; i++)
		if (v4)
			addr[i / 8] |= (unsigned char) (digits[i] << (7 - i % 8));
		else
			addr[i / 2] |= (unsigned char) ((i % 2 == 0) ? digits[i] << 4 : digits[i]);
}

/*
 * pdp.pseudo_ip(addr inet) RETURNS inet
 * Permutes all 32 (IPv4) or 128 (IPv6) address bits; keeps the family and
 * the netmask length.
 */
Datum
pdp_pseudo_ip(PG_FUNCTION_ARGS)
{
	inet	   *ip = PG_GETARG_INET_PP(0);
	inet	   *dst;
	bool		v4 = ip_family(ip) == PGSQL_AF_INET;

	dst = (inet *) palloc0(sizeof(inet));
	ip_family(dst) = ip_family(ip);
	ip_bits(dst) = ip_bits(ip);
	memcpy(ip_addr(dst), ip_addr(ip), v4 ? 4 : 16);
	permute_ip(fcinfo, v4, ip_addr(dst));
	SET_INET_VARSIZE(dst);
	PG_RETURN_INET_P(dst);
}

/*
 * pdp.pseudo_ip_text(addr text) RETURNS text
 * The same pseudonym for an address stored as text or varchar (Moodle's
 * varchar(45)): '' and blanks pass through; the result is the address's
 * usual text form (inet_ntop), "/n" kept when written, at most 43
 * characters, so it fits varchar(43) and wider.
 */
Datum
pdp_pseudo_ip_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	pdp_ip		ip;
	char		out[PDP_IP_MAX_TEXT + 1];
	size_t		n;

	if (pdp_is_blank(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)))
		PG_RETURN_TEXT_P(t);
	if (!pdp_ip_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &ip))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid IP address"),
				 errdetail("An IP address is an IPv4 dotted quad or an IPv6 address, optionally with \"/\" and a netmask length."),
				 errhidestmt(true)));
	permute_ip(fcinfo, ip.family == 4, ip.addr);
	n = pdp_ip_format(&ip, out);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out, n));
}

/*
 * pdp._pseudo_ip_any(addr anyelement) RETURNS anyelement
 * The rule pseudo_ip's expression (pdp.rule_kind.expr): pdp.pseudo_ip for
 * an inet column, pdp.pseudo_ip_text for a text or varchar one, so that
 * whatever applies a rule by its expression (apply_rules, erasure, purge)
 * works on both.
 */
Datum
pdp_pseudo_ip_any(PG_FUNCTION_ARGS)
{
	Oid			typ = get_fn_expr_argtype(fcinfo->flinfo, 0);

	if (typ == INETOID)
		return pdp_pseudo_ip(fcinfo);
	if (typ == TEXTOID || typ == VARCHAROID)
		return pdp_pseudo_ip_text(fcinfo);
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("the rule pseudo_ip takes an inet, text or varchar value")));
	PG_RETURN_NULL();			/* keep compiler quiet */
}

/* Shared body of fpe_encrypt / fpe_decrypt. */
static Datum
fpe_digits(FunctionCallInfo fcinfo, bool encrypt)
{
	text	   *value;
	text	   *domain;
	int32		radix;
	uint16		version;
	const char *s;
	Size		len;
	uint8_t    *digits;
	PdpKeyed   *k;
	pdp_ff1_status fst;
	text	   *result;

	/* Not STRICT (key_version may be NULL): NULL value, domain or radix gives NULL. */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	if (!encrypt)
		pdp_audit_reversal("pdp.fpe_decrypt");
	value = PG_GETARG_TEXT_PP(0);
	domain = PG_GETARG_TEXT_PP(1);
	radix = PG_GETARG_INT32(2);
	version = key_version_arg(fcinfo, 3);
	s = VARDATA_ANY(value);
	len = VARSIZE_ANY_EXHDR(value);
	if (radix < 2 || radix > 36)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("radix must be between 2 and 36")));
	if (len > PDP_FF1_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value is too long for format-preserving encryption"),
				 errdetail("At most %d digits are accepted.", PDP_FF1_MAX_LEN),
				 errhidestmt(true)));
	if (len < pdp_ff1_min_length((unsigned) radix))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("domain is too small for FF1"),
				 errdetail("With radix %d a value needs at least %zu digits, so that radix^length is at least 1,000,000 (NIST SP 800-38G).",
						   radix, pdp_ff1_min_length((unsigned) radix)),
				 errhidestmt(true)));

	digits = palloc(len);
	for (Size i = 0; i < len; i++)
	{
		const char *p = memchr(digit_chars, s[i], (size_t) radix);

		if (s[i] == '\0' || p == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid digit for radix %d", radix),
					 errdetail("Digits are 0-9 then a-z (lower case), each below the radix."),
					 errhidestmt(true)));
		digits[i] = (uint8_t) (p - digit_chars);
	}

	pdp_keyed_check_domain(VARDATA_ANY(domain), VARSIZE_ANY_EXHDR(domain));
	k = pdp_keyed_get(fcinfo, PDP_KEYED_FF1, "fpe", VARDATA_ANY(domain),
					  VARSIZE_ANY_EXHDR(domain), version);
	fst = encrypt ? pdp_ff1_encrypt(pdp_keyed_ff1(k), (unsigned) radix, NULL, 0, digits, digits, len)
		: pdp_ff1_decrypt(pdp_keyed_ff1(k), (unsigned) radix, NULL, 0, digits, digits, len);
	if (fst != PDP_FF1_OK)
		pdp_report_ff1(fst);

	result = (text *) palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	for (Size i = 0; i < len; i++)
		VARDATA(result)[i] = digit_chars[digits[i]];
	pfree(digits);
	PG_RETURN_TEXT_P(result);
}

/* pdp.fpe_encrypt(digits text, domain text, radix int, key_version int) RETURNS text */
Datum
pdp_fpe_encrypt(PG_FUNCTION_ARGS)
{
	return fpe_digits(fcinfo, true);
}

/* pdp.fpe_decrypt(digits text, domain text, radix int, key_version int) RETURNS text */
Datum
pdp_fpe_decrypt(PG_FUNCTION_ARGS)
{
	return fpe_digits(fcinfo, false);
}
