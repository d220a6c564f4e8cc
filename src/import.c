/*-------------------------------------------------------------------------
 * import.c
 *	  pdp._import_check: one pass over the rows of pdp.import_consents that
 *	  applies every rule a row can break on its own and canonicalises its
 *	  subject, so that the import's SQL (src/sql/50_consent.sql) calls no
 *	  function per row.
 *
 * The rules are grant_consent's, in its order, for each row in turn: a
 * subject, of a registered kind (src/core/subject.c canonicalises it); a
 * purpose, a defined one; a time of consent, not in the future; a policy
 * version, if any, a published one; evidence, if any, a JSON object holding
 * no credential (pdp._credential_evidence's rule: a key anywhere named like
 * a password, secret, token or key, or like a declared credential column);
 * a validity, if any, not already ended.  The first row that breaks one
 * refuses the whole call, named by its number, never by its values.  The
 * rules that need other rows (a time newer than the subject's recorded
 * history, no subject and purpose twice) are the SQL's.
 *
 * Purposes, policy versions and credential column names are read once per
 * call, under the call's snapshot.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "subject.h"

PG_FUNCTION_INFO_V1(pdp_import_check);

/* The columns of pdp.consent_import, in order. */
enum
{
	IMP_SUBJECT, IMP_PURPOSE, IMP_GIVEN_AT, IMP_POLICY_VERSION, IMP_EVIDENCE, IMP_VALID_UNTIL, IMP_NATTS
};

/* The strings of one column of a query's result, read by SPI. */
typedef struct name_list
{
	int			n;
	char	  **names;
	int		   *lens;
	int			last;			/* the last one found: imports repeat a purpose */
} name_list;

static void
import_read_names(const char *sql, name_list *list)
{
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s", sql);
	list->n = (int) SPI_processed;
	list->names = palloc(sizeof(char *) * (list->n + 1));
	list->lens = palloc(sizeof(int) * (list->n + 1));
	list->last = 0;
	for (int i = 0; i < list->n; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		text	   *t;

		if (isnull)
		{
			list->names[i] = NULL;
			list->lens[i] = -1;
			continue;
		}
		/* copied out of SPI's memory into the caller's */
		{
			text	   *src = (text *) pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

			t = (text *) SPI_palloc(VARSIZE_ANY(src));
			memcpy(t, src, VARSIZE_ANY(src));
		}
		list->names[i] = VARDATA_ANY(t);
		list->lens[i] = VARSIZE_ANY_EXHDR(t);
	}
}

static bool
import_in_list(name_list *list, const char *s, int len)
{
	if (list->n > 0 && list->lens[list->last] == len && memcmp(list->names[list->last], s, len) == 0)
		return true;
	for (int i = 0; i < list->n; i++)
		if (list->lens[i] == len && memcmp(list->names[i], s, len) == 0)
		{
			list->last = i;
			return true;
		}
	return false;
}

/*
 * Does the evidence hold a key named like a credential?  Every key of every
 * object in it, nested in objects and arrays, as jsonb_path_query(evidence,
 * 'strict $.**') and jsonb_object_keys find them in pdp._credential_evidence.
 */
static bool
import_holds_credential(Jsonb *jb, text *pattern, name_list *cred_names)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (JB_ROOT_COUNT(jb) == 0)
		return false;
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		text	   *key;
		bool		match;

		if (tok != WJB_KEY)
			continue;
		if (import_in_list(cred_names, v.val.string.val, v.val.string.len))
			return true;
		key = cstring_to_text_with_len(v.val.string.val, v.val.string.len);
		match = DatumGetBool(DirectFunctionCall2Coll(texticregexeq, DEFAULT_COLLATION_OID,
													 PointerGetDatum(key), PointerGetDatum(pattern)));
		pfree(key);
		if (match)
			return true;
	}
	return false;
}

static void import_refuse(int64 n, int sqlstate, const char *rule) pg_attribute_noreturn();

static void
import_refuse(int64 n, int sqlstate, const char *rule)
{
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("row %lld of the import %s", (long long) n, rule),
			 errdetail("Nothing was imported.")));
}

/*
 * pdp._import_check(consents pdp.consent_import[]) RETURNS text[]
 *
 * Checks every row's own rules (see the head of this file) and returns the
 * rows' subjects in canonical form, in the rows' order.
 */
Datum
pdp_import_check(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Oid			elemtype = ARR_ELEMTYPE(arr);
	TupleDesc	tupdesc;
	Datum	   *elems;
	bool	   *elemnulls;
	int			nelems;
	Datum	   *canon;
	int			kinds;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	name_list	purposes;
	name_list	versions;
	name_list	cred_names;
	text	   *pattern = cstring_to_text("(passw|secret|token|api_?key|private_?key|пароль)");
	Datum		values[IMP_NATTS];
	bool		isnull[IMP_NATTS];

	tupdesc = lookup_rowtype_tupdesc(elemtype, -1);
	if (tupdesc->natts != IMP_NATTS ||
		TupleDescAttr(tupdesc, IMP_SUBJECT)->atttypid != TEXTOID ||
		TupleDescAttr(tupdesc, IMP_PURPOSE)->atttypid != TEXTOID ||
		TupleDescAttr(tupdesc, IMP_GIVEN_AT)->atttypid != TIMESTAMPTZOID ||
		TupleDescAttr(tupdesc, IMP_POLICY_VERSION)->atttypid != TEXTOID ||
		TupleDescAttr(tupdesc, IMP_EVIDENCE)->atttypid != JSONBOID ||
		TupleDescAttr(tupdesc, IMP_VALID_UNTIL)->atttypid != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("pdp._import_check takes an array of pdp.consent_import"),
				 errhint("Call pdp.import_consents.")));

	kinds = pdp_subject_kinds();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	import_read_names("SELECT p.purpose FROM pdp.purpose p", &purposes);
	import_read_names("SELECT v.version FROM pdp.policy_version v", &versions);
	/* pdp._credential_evidence's declared names, kept alike */
	import_read_names("SELECT a.attname::text FROM pdp.credential_column c "
			   "JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.tbl::oid "
			   "AND a.attnum OPERATOR(pg_catalog.=) c.attnum", &cred_names);
	SPI_finish();

	deconstruct_array(arr, elemtype, -1, false, TYPALIGN_DOUBLE, &elems, &elemnulls, &nelems);
	canon = palloc(sizeof(Datum) * Max(nelems, 1));

	for (int i = 0; i < nelems; i++)
	{
		int64		n = (int64) i + 1;
		text	   *subject;
		const char *s;
		int			len;
		char		out[PDP_SUBJECT_CANON_MAX];

		if (elemnulls[i])
			import_refuse(n, ERRCODE_INVALID_TEXT_REPRESENTATION, "has no subject");
		else
		{
			HeapTupleHeader th = DatumGetHeapTupleHeader(elems[i]);
			HeapTupleData tup;

			tup.t_len = HeapTupleHeaderGetDatumLength(th);
			ItemPointerSetInvalid(&tup.t_self);
			tup.t_tableOid = InvalidOid;
			tup.t_data = th;
			heap_deform_tuple(&tup, tupdesc, values, isnull);
		}

		if (isnull[IMP_SUBJECT])
			import_refuse(n, ERRCODE_INVALID_TEXT_REPRESENTATION, "has no subject");
		subject = (text *) pg_detoast_datum_packed((struct varlena *) DatumGetPointer(values[IMP_SUBJECT]));
		s = VARDATA_ANY(subject);
		len = VARSIZE_ANY_EXHDR(subject);
		if (len == 0)
			import_refuse(n, ERRCODE_INVALID_TEXT_REPRESENTATION, "has no subject");
		switch (pdp_subject_canonical(s, len, kinds, out))
		{
			case PDP_SUBJECT_CANONICAL:
				canon[i] = PointerGetDatum(cstring_to_text(out));
				break;
			case PDP_SUBJECT_AS_GIVEN:
				canon[i] = PointerGetDatum(subject);
				break;
			case PDP_SUBJECT_MALFORMED:
				import_refuse(n, ERRCODE_INVALID_TEXT_REPRESENTATION, "has a subject that fits no registered subject column");
		}

		if (isnull[IMP_PURPOSE])
			import_refuse(n, ERRCODE_INVALID_PARAMETER_VALUE, "has no purpose");
		{
			text	   *p = (text *) pg_detoast_datum_packed((struct varlena *) DatumGetPointer(values[IMP_PURPOSE]));

			if (!import_in_list(&purposes, VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p)))
				import_refuse(n, ERRCODE_UNDEFINED_OBJECT, "names an unknown purpose");
		}
		if (isnull[IMP_GIVEN_AT])
			import_refuse(n, ERRCODE_INVALID_PARAMETER_VALUE, "has no time of consent");
		if (DatumGetTimestampTz(values[IMP_GIVEN_AT]) > now)
			import_refuse(n, ERRCODE_INVALID_PARAMETER_VALUE, "gives a time of consent in the future");
		if (!isnull[IMP_POLICY_VERSION])
		{
			text	   *v = (text *) pg_detoast_datum_packed((struct varlena *) DatumGetPointer(values[IMP_POLICY_VERSION]));

			if (!import_in_list(&versions, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v)))
				import_refuse(n, ERRCODE_UNDEFINED_OBJECT, "names an unknown policy version");
		}
		if (!isnull[IMP_EVIDENCE])		/* none is {} */
		{
			Jsonb	   *jb = DatumGetJsonbP(values[IMP_EVIDENCE]);

			if (!JB_ROOT_IS_OBJECT(jb))
				import_refuse(n, ERRCODE_INVALID_PARAMETER_VALUE, "has evidence that is not a JSON object");
			if (import_holds_credential(jb, pattern, &cred_names))
				import_refuse(n, ERRCODE_INVALID_PARAMETER_VALUE, "has evidence holding a credential");
			if ((Pointer) jb != DatumGetPointer(values[IMP_EVIDENCE]))
				pfree(jb);
		}
		if (!isnull[IMP_VALID_UNTIL] && DatumGetTimestampTz(values[IMP_VALID_UNTIL]) <= now)
			import_refuse(n, ERRCODE_INVALID_PARAMETER_VALUE, "has a validity that has already ended");
	}
	ReleaseTupleDesc(tupdesc);

	PG_RETURN_ARRAYTYPE_P(construct_array(canon, nelems, TEXTOID, -1, false, TYPALIGN_INT));
}
