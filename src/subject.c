/*-------------------------------------------------------------------------
 * subject.c
 *	  pdp._canonical_subject: the one text form of a subject that pdp's
 *	  tables hold and its visibility check compares (src/core/subject.c
 *	  parses; this file asks the registry which forms apply).
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "subject.h"

PG_FUNCTION_INFO_V1(pdp_canonical_subject);
PG_FUNCTION_INFO_V1(pdp_canonical_subject_or_null);
PG_FUNCTION_INFO_V1(pdp_canonical_subjects);
PG_FUNCTION_INFO_V1(pdp_integer_spelling);
PG_FUNCTION_INFO_V1(pdp_spellings_apply);

/*
 * The kinds of the registered subject columns, as a PDP_SUBJECT_* mask.
 * Read once per statement and command: a registration in between bumps the
 * command counter (has_consent runs once per row of a scan).
 */
static int
subject_kinds(void)
{
	static SPIPlanPtr plan = NULL;
	static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
	static CommandId cached_cid = InvalidCommandId;
	static TimestampTz cached_stmt = 0;
	static int	cached_kinds = 0;
	LocalTransactionId lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
	CommandId	cid = GetCurrentCommandId(false);
	TimestampTz stmt = GetCurrentStatementStartTimestamp();
	int			kinds = 0;

	if (lxid != InvalidLocalTransactionId && lxid == cached_lxid && cid == cached_cid && stmt == cached_stmt)
		return cached_kinds;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT DISTINCT a.atttypid FROM pdp.subject_column s "
									"JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl "
									"AND a.attnum OPERATOR(pg_catalog.=) s.attnum",
									0, NULL);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare the subject type lookup");
		plan = p;
	}
	if (SPI_execute_plan(plan, NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the registered subject columns");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			typ = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		if (typ == INT2OID || typ == INT4OID || typ == INT8OID)
			kinds |= PDP_SUBJECT_INT;
		else if (typ == UUIDOID)
			kinds |= PDP_SUBJECT_UUID;
		else
			kinds |= PDP_SUBJECT_TEXT;
	}
	SPI_finish();
	cached_lxid = lxid;
	cached_cid = cid;
	cached_stmt = stmt;
	cached_kinds = kinds;
	return kinds;
}

/* The registered kinds, for C callers that canonicalise many subjects. */
int
pdp_subject_kinds(void)
{
	return subject_kinds();
}

/*
 * The error for a subject of none of the registered kinds; it never
 * contains the subject.
 */
static void subject_refuse(int kinds) pg_attribute_noreturn();

static void
subject_refuse(int kinds)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid subject for the registered subject columns"),
			 errdetail("%s",
					   (kinds & PDP_SUBJECT_INT) && (kinds & PDP_SUBJECT_UUID) ?
					   "Registered subject columns hold integers and uuids; a subject must be one of them." :
					   (kinds & PDP_SUBJECT_INT) ?
					   "Registered subject columns hold integers; a subject must be an integer." :
					   "Registered subject columns hold uuids; a subject must be a uuid."),
			 errhint("Give the subject as a registered column holds it."),
			 errhidestmt(true)));
	pg_unreachable();
}

/*
 * pdp._canonical_subject(subject text) RETURNS text
 *
 * The subject's canonical form for the registered subject columns (see
 * src/core/subject.h), or 22P02 when it is none of the registered kinds.
 * The message never contains the subject.
 */
Datum
pdp_canonical_subject(PG_FUNCTION_ARGS)
{
	text	   *subject = PG_GETARG_TEXT_PP(0);
	int			kinds;
	char		out[PDP_SUBJECT_CANON_MAX];

	pdp_note_pdp_ran();			/* not wrapped by the fmgr hook (pdp_ext.c) */
	kinds = subject_kinds();

	switch (pdp_subject_canonical(VARDATA_ANY(subject), VARSIZE_ANY_EXHDR(subject), kinds, out))
	{
		case PDP_SUBJECT_CANONICAL:
			PG_RETURN_TEXT_P(cstring_to_text(out));
		case PDP_SUBJECT_AS_GIVEN:
			PG_RETURN_TEXT_P(subject);
		case PDP_SUBJECT_MALFORMED:
			break;
	}
	subject_refuse(kinds);
	PG_RETURN_NULL();			/* keep compiler quiet */
}

/*
 * pdp._canonical_subject_or_null(subject text) RETURNS text
 * The same, NULL for a subject of none of the registered kinds: bulk entry
 * points name the failing row instead of failing on it.
 */
Datum
pdp_canonical_subject_or_null(PG_FUNCTION_ARGS)
{
	text	   *subject = PG_GETARG_TEXT_PP(0);
	char		out[PDP_SUBJECT_CANON_MAX];

	pdp_note_pdp_ran();			/* not wrapped by the fmgr hook (pdp_ext.c) */
	switch (pdp_subject_canonical(VARDATA_ANY(subject), VARSIZE_ANY_EXHDR(subject), subject_kinds(), out))
	{
		case PDP_SUBJECT_CANONICAL:
			PG_RETURN_TEXT_P(cstring_to_text(out));
		case PDP_SUBJECT_AS_GIVEN:
			PG_RETURN_TEXT_P(subject);
		case PDP_SUBJECT_MALFORMED:
			break;
	}
	PG_RETURN_NULL();
}

/*
 * pdp._canonical_subjects(subjects text[]) RETURNS text[]
 * pdp._canonical_subject of every element in one call (a NULL stays NULL),
 * for the bulk entry points: no function call per subject.  The result, of
 * the input's shape, is in the caller's memory context.
 */
Datum
pdp_canonical_subjects(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			kinds;
	char		out[PDP_SUBJECT_CANON_MAX];

	pdp_note_pdp_ran();			/* not wrapped by the fmgr hook (pdp_ext.c) */
	kinds = subject_kinds();
	if (ARR_NDIM(arr) == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(TEXTOID));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		text	   *subject;

		if (nulls[i])
			continue;
		subject = (text *) pg_detoast_datum_packed((struct varlena *) DatumGetPointer(elems[i]));
		switch (pdp_subject_canonical(VARDATA_ANY(subject), VARSIZE_ANY_EXHDR(subject), kinds, out))
		{
			case PDP_SUBJECT_CANONICAL:
				elems[i] = PointerGetDatum(cstring_to_text(out));
				break;
			case PDP_SUBJECT_AS_GIVEN:
				break;
			case PDP_SUBJECT_MALFORMED:
				subject_refuse(kinds);
		}
	}
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, nulls, ARR_NDIM(arr), ARR_DIMS(arr), ARR_LBOUND(arr),
											 TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * The canonical form of s[0..len) as a palloc'd string (*out, *out_len), as
 * pdp._canonical_subject gives it; false for a subject of none of the
 * registered kinds.  For C callers (crypto-shredding keys subjects by it).
 */
bool
pdp_subject_canonical_form(const char *s, size_t len, char **out, size_t *out_len)
{
	char		canon[PDP_SUBJECT_CANON_MAX];

	switch (pdp_subject_canonical(s, len, subject_kinds(), canon))
	{
		case PDP_SUBJECT_CANONICAL:
			*out_len = strlen(canon);
			*out = pnstrdup(canon, *out_len);
			return true;
		case PDP_SUBJECT_AS_GIVEN:
			*out = pnstrdup(s, len);
			*out_len = len;
			return true;
		case PDP_SUBJECT_MALFORMED:
			break;
	}
	return false;
}

/*
 * pdp._integer_spelling(value text) RETURNS text
 *
 * The canonical decimal of a text that spells an integer ('007', ' 7', '+7'
 * give '7'), or NULL when it spells none.  Whatever the registry says: a
 * text subject column's cell '007' is compared with the canonical subjects
 * pdp's tables hold ('7') by the purges' guards, erasure and export, as the
 * row test compares it (visibility.c).
 */
Datum
pdp_integer_spelling(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	int64_t		v;

	if (!pdp_subject_parse_int(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), &v))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(psprintf(INT64_FORMAT, (int64) v)));
}

/*
 * pdp._spellings_apply() RETURNS boolean
 *
 * Are integer and text subject columns both registered, so that a text
 * cell spelling an integer names that integer's subject?  From the kinds
 * read once per statement and command (subject_kinds), so the SQL builders
 * and the rectification trigger may ask for every column or row.
 */
Datum
pdp_spellings_apply(PG_FUNCTION_ARGS)
{
	int			kinds = subject_kinds();

	PG_RETURN_BOOL((kinds & PDP_SUBJECT_INT) && (kinds & PDP_SUBJECT_TEXT));
}
