/*-------------------------------------------------------------------------
 * mask.c
 *	  Keyless masking, generalisation and validation: pdp.mask,
 *	  pdp.mask_email, pdp.mask_phone, pdp.mask_card, pdp.generalize_date,
 *	  pdp.age_band, and the IIN / BIN / Luhn validators.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"

#include "checkdigit.h"
#include "contact.h"

PG_FUNCTION_INFO_V1(pdp_mask);
PG_FUNCTION_INFO_V1(pdp_mask_email);
PG_FUNCTION_INFO_V1(pdp_mask_phone);
PG_FUNCTION_INFO_V1(pdp_mask_card);
PG_FUNCTION_INFO_V1(pdp_generalize_date);
PG_FUNCTION_INFO_V1(pdp_age_band);
PG_FUNCTION_INFO_V1(pdp_iin_is_valid);
PG_FUNCTION_INFO_V1(pdp_bin_is_valid);
PG_FUNCTION_INFO_V1(pdp_iin_birth_date);
PG_FUNCTION_INFO_V1(pdp_iin_sex);
PG_FUNCTION_INFO_V1(pdp_luhn_is_valid);

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
 * Append to buf the characters [from, to) of s (a string of nchars
 * characters), each replaced by mask unless it is kept.
 */
static void
mask_chars(StringInfo buf, const char *s, Size len, int keep_first, int keep_last,
		   const char *mask, int mask_len)
{
	int			nchars = pg_mbstrlen_with_len(s, (int) len);
	int			i = 0;
	const char *p = s;
	bool		reveal_all = keep_first + keep_last >= nchars;

	while (p < s + len)
	{
		int			l = pg_mblen(p);

		if (!reveal_all && (i < keep_first || i >= nchars - keep_last))
			appendBinaryStringInfo(buf, p, l);
		else
			appendBinaryStringInfo(buf, mask, mask_len);
		p += l;
		i++;
	}
}

/*
 * pdp.mask(value text, keep_first int, keep_last int, mask_char text)
 * Replaces every character but the first keep_first and the last keep_last
 * with mask_char.  If those would show the whole value, all is masked.
 */
Datum
pdp_mask(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	int32		keep_first = PG_GETARG_INT32(1);
	int32		keep_last = PG_GETARG_INT32(2);
	text	   *mask = PG_GETARG_TEXT_PP(3);
	StringInfoData buf;

	if (keep_first < 0 || keep_last < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keep_first and keep_last must not be negative")));
	if (pg_mbstrlen_with_len(VARDATA_ANY(mask), VARSIZE_ANY_EXHDR(mask)) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mask_char must be exactly one character")));
	initStringInfo(&buf);
	mask_chars(&buf, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value),
			   Min(keep_first, 1 << 20), Min(keep_last, 1 << 20),
			   VARDATA_ANY(mask), VARSIZE_ANY_EXHDR(mask));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/* pdp.mask_email(email text): first character of the local part, and the domain. */
Datum
pdp_mask_email(PG_FUNCTION_ARGS)
{
	text	   *email = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(email);
	Size		len = VARSIZE_ANY_EXHDR(email);
	size_t		at;
	pdp_email_status st = pdp_email_parse(s, len, &at);
	StringInfoData buf;

	if (pdp_is_blank(s, len))
		PG_RETURN_TEXT_P(email);	/* '' and blanks pass through */
	if (st != PDP_EMAIL_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid e-mail address"),
				 errdetail("%s", pdp_email_status_message(st)),
				 errhidestmt(true)));
	initStringInfo(&buf);
	mask_chars(&buf, s, at, 1, 0, "*", 1);
	appendBinaryStringInfo(&buf, s + at, (int) (len - at));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/* pdp.mask_phone(phone text): country code, first national digit and the last two digits. */
Datum
pdp_mask_phone(PG_FUNCTION_ARGS)
{
	text	   *phone = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(phone);
	Size		len = VARSIZE_ANY_EXHDR(phone);
	pdp_phone	p;
	pdp_phone_status st = pdp_phone_parse(s, len, &p);
	text	   *result;

	if (pdp_is_blank(s, len))
		PG_RETURN_TEXT_P(phone);	/* '' and blanks pass through */
	if (st != PDP_PHONE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid phone number"),
				 errdetail("%s", pdp_phone_status_message(st)),
				 errhidestmt(true)));
	result = (text *) palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), s, len);
	for (size_t i = p.keep; i + 2 < p.ndigits; i++)
		VARDATA(result)[p.pos[i]] = '*';
	PG_RETURN_TEXT_P(result);
}

/*
 * pdp.mask_card(card text): PCI DSS style, the first six and last four
 * digits shown, separators kept.  The number must pass the Luhn check.
 */
Datum
pdp_mask_card(PG_FUNCTION_ARGS)
{
	text	   *card = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(card);
	Size		len = VARSIZE_ANY_EXHDR(card);
	char		digits[32];
	int			n = 0;
	text	   *result;
	int			seen = 0;

	if (pdp_is_blank(s, len))
		PG_RETURN_TEXT_P(card);	/* '' and blanks pass through */
	for (Size i = 0; i < len; i++)
	{
		if (s[i] >= '0' && s[i] <= '9')
		{
			if (n == (int) sizeof(digits))
				break;
			digits[n++] = s[i];
		}
		else if (s[i] != ' ' && s[i] != '-')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid card number"),
					 errdetail("A card number may hold only digits, spaces and dashes."),
					 errhidestmt(true)));
	}
	if (n < 12 || n > 19)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid card number"),
				 errdetail("A card number has 12 to 19 digits."),
				 errhidestmt(true)));
	if (!pdp_luhn_valid(digits, (size_t) n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid card number"),
				 errdetail("The Luhn check digit does not match."),
				 errhidestmt(true)));
	result = (text *) palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), s, len);
	for (Size i = 0; i < len; i++)
		if (s[i] >= '0' && s[i] <= '9')
		{
			if (seen >= 6 && seen < n - 4)
				VARDATA(result)[i] = '*';
			seen++;
		}
	PG_RETURN_TEXT_P(result);
}

/* pdp.generalize_date(d date, precision text): first day of the month, year or decade. */
Datum
pdp_generalize_date(PG_FUNCTION_ARGS)
{
	DateADT		d = PG_GETARG_DATEADT(0);
	char	   *precision = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			y,
				m,
				day;

	if (strcmp(precision, "month") != 0 && strcmp(precision, "year") != 0 &&
		strcmp(precision, "decade") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown precision for generalize_date"),
				 errhint("Use \"month\", \"year\" or \"decade\".")));
	if (DATE_NOT_FINITE(d))
		PG_RETURN_DATEADT(d);
	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &day);
	if (strcmp(precision, "month") == 0)
		day = 1;
	else
	{
		day = 1;
		m = 1;
		if (strcmp(precision, "decade") == 0)
			y = y - ((y % 10) + 10) % 10;
	}
	PG_RETURN_DATEADT(date2j(y, m, day) - POSTGRES_EPOCH_JDATE);
}

/* Validate an IIN argument or raise the error naming the broken rule. */
static const char *
valid_iin_arg(FunctionCallInfo fcinfo)
{
	text	   *iin = PG_GETARG_TEXT_PP(0);
	pdp_id_status st = pdp_iin_validate(VARDATA_ANY(iin), VARSIZE_ANY_EXHDR(iin));

	if (st != PDP_ID_OK)
		report_invalid_iin(st);
	return VARDATA_ANY(iin);
}

/* pdp.age_band(iin text, width int): today's age in bands of width years, "30-39". */
Datum
pdp_age_band(PG_FUNCTION_ARGS)
{
	int32		width = PG_GETARG_INT32(1);
	const char *iin;
	int			by,
				bm,
				bd,
				sex,
				y,
				m,
				d,
				age,
				lo;

	if (width < 1 || width > 150)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("age band width must be between 1 and 150 years")));
	iin = valid_iin_arg(fcinfo);
	pdp_iin_fields(iin, &by, &bm, &bd, &sex);
	j2date(GetSQLCurrentDate() + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	age = y - by - ((m < bm || (m == bm && d < bd)) ? 1 : 0);
	if (age < 0)
		age = 0;
	lo = age - age % width;
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("%d-%d", lo, lo + width - 1)));
}

Datum
pdp_iin_is_valid(PG_FUNCTION_ARGS)
{
	text	   *v = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(pdp_iin_validate(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v)) == PDP_ID_OK);
}

Datum
pdp_bin_is_valid(PG_FUNCTION_ARGS)
{
	text	   *v = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(pdp_bin_validate(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v)) == PDP_ID_OK);
}

/* pdp.iin_birth_date(iin text) RETURNS date */
Datum
pdp_iin_birth_date(PG_FUNCTION_ARGS)
{
	const char *iin = valid_iin_arg(fcinfo);
	int			y,
				m,
				d,
				sex;

	pdp_iin_fields(iin, &y, &m, &d, &sex);
	PG_RETURN_DATEADT(date2j(y, m, d) - POSTGRES_EPOCH_JDATE);
}

/* pdp.iin_sex(iin text) RETURNS text: 'M' or 'F'. */
Datum
pdp_iin_sex(PG_FUNCTION_ARGS)
{
	const char *iin = valid_iin_arg(fcinfo);
	int			y,
				m,
				d,
				sex;

	pdp_iin_fields(iin, &y, &m, &d, &sex);
	PG_RETURN_TEXT_P(cstring_to_text(sex == 1 ? "M" : "F"));
}

/* pdp.luhn_is_valid(text): digits with optional spaces and dashes. */
Datum
pdp_luhn_is_valid(PG_FUNCTION_ARGS)
{
	text	   *v = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(v);
	Size		len = VARSIZE_ANY_EXHDR(v);
	char		digits[64];
	Size		n = 0;

	for (Size i = 0; i < len; i++)
	{
		if (s[i] >= '0' && s[i] <= '9')
		{
			if (n == sizeof(digits))
				PG_RETURN_BOOL(false);
			digits[n++] = s[i];
		}
		else if (s[i] != ' ' && s[i] != '-')
			PG_RETURN_BOOL(false);
	}
	PG_RETURN_BOOL(pdp_luhn_valid(digits, n));
}
