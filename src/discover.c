/*-------------------------------------------------------------------------
 * discover.c
 *	  SQL glue for PII discovery: pdp._classify_value, pdp._is_placeholder
 *	  and pdp._scan_text (personal data inside free text and JSON).
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "classify.h"

PG_FUNCTION_INFO_V1(pdp_classify_value_sql);

/* pdp._classify_value(value text) RETURNS text: iin, bin, card, email, phone, ip or NULL. */
Datum
pdp_classify_value_sql(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	const char *kind = pdp_classify_value(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));

	if (kind == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(kind));
}

PG_FUNCTION_INFO_V1(pdp_is_placeholder_sql);

/* pdp._is_placeholder(value text) RETURNS boolean: blank, or "-", "n/a", "none", "0", ... */
Datum
pdp_is_placeholder_sql(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(pdp_is_placeholder(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
}

PG_FUNCTION_INFO_V1(pdp_scan_text_sql);

/*
 * pdp._scan_text(value text) RETURNS integer[]: how many e-mail addresses,
 * phone numbers and IINs the text holds ({emails, phones, iins}); the
 * first 64 kB of a value are scanned.  Counts, never values.
 */
Datum
pdp_scan_text_sql(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	pdp_text_hits h;
	Datum		elems[3];

	pdp_scan_text(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &h);
	elems[0] = Int32GetDatum(h.emails);
	elems[1] = Int32GetDatum(h.phones);
	elems[2] = Int32GetDatum(h.iins);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, 3, INT4OID, sizeof(int32), true, TYPALIGN_INT));
}
