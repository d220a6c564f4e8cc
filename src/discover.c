/*-------------------------------------------------------------------------
 * discover.c
 *	  SQL glue for PII discovery: pdp._classify_value(text).
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

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
