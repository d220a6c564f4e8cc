/*-------------------------------------------------------------------------
 * audit.c
 *	  The audit trail's C parts: the chain hash (SHA-256 over a canonical,
 *	  length-prefixed encoding of an entry), the append-only guard, and the
 *	  audit record of reversals made by the decrypting functions.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include <openssl/evp.h>

PG_FUNCTION_INFO_V1(pdp_audit_hash);
PG_FUNCTION_INFO_V1(pdp_audit_append_only);
PG_FUNCTION_INFO_V1(pdp_audit_trim_delete);
PG_FUNCTION_INFO_V1(pdp_begin_audit_trim);

/*
 * On only inside pdp_audit_trim_delete (set in PG_TRY, cleared in
 * PG_FINALLY), so no failure or later statement can find it set.
 */
static bool audit_trimming = false;

static void
digest_update_u64(EVP_MD_CTX *ctx, uint64 v)
{
	unsigned char b[8];

	for (int i = 7; i >= 0; i--)
	{
		b[i] = (unsigned char) v;
		v >>= 8;
	}
	EVP_DigestUpdate(ctx, b, 8);
}

/*
 * The chain hash of one entry into out[32]: SHA-256 of prev || seq ||
 * entry_id || at (microseconds) || for each field a presence byte, a 4-byte
 * length and its bytes (fields[i] NULL: absent).  The encoding is
 * unambiguous, so no two different entries hash the same input.  Shared by
 * pdp._audit_hash (verification) and the sealer (audit_seal.c).
 */
void
pdp_audit_hash_entry(const unsigned char *prev, Size prevlen, int64 seq, int64 entry_id,
					 TimestampTz at, int nfields, const char *const *fields,
					 const uint32 *lens, unsigned char out[32])
{
	EVP_MD_CTX *ctx;
	unsigned int outlen = 0;
	bool		ok;

	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	if (ok)
	{
		EVP_DigestUpdate(ctx, prev, prevlen);
		digest_update_u64(ctx, (uint64) seq);
		digest_update_u64(ctx, (uint64) entry_id);
		digest_update_u64(ctx, (uint64) at);
		for (int i = 0; i < nfields; i++)
		{
			unsigned char present = fields[i] == NULL ? 0 : 1;

			EVP_DigestUpdate(ctx, &present, 1);
			if (fields[i] != NULL)
			{
				uint32		len = lens[i];
				unsigned char lb[4] = {len >> 24, len >> 16, len >> 8, len};

				EVP_DigestUpdate(ctx, lb, 4);
				EVP_DigestUpdate(ctx, fields[i], len);
			}
		}
		ok = EVP_DigestFinal_ex(ctx, out, &outlen) == 1 && outlen == 32;
	}
	EVP_MD_CTX_free(ctx);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not compute SHA-256")));
}

/*
 * pdp._audit_hash(prev bytea, seq bigint, entry_id bigint, at timestamptz,
 *                 fields text[]) RETURNS bytea: pdp_audit_hash_entry.
 */
Datum
pdp_audit_hash(PG_FUNCTION_ARGS)
{
	bytea	   *prev;
	ArrayType  *fields;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	const char **ptrs;
	uint32	   *lens;
	unsigned char out[32];
	bytea	   *result;

	for (int i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("audit hash arguments must not be null")));
	prev = PG_GETARG_BYTEA_PP(0);
	fields = PG_GETARG_ARRAYTYPE_P(4);
	deconstruct_array(fields, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	ptrs = palloc(sizeof(char *) * Max(nelems, 1));
	lens = palloc(sizeof(uint32) * Max(nelems, 1));
	for (int i = 0; i < nelems; i++)
	{
		text	   *t = nulls[i] ? NULL : DatumGetTextPP(elems[i]);

		ptrs[i] = t ? VARDATA_ANY(t) : NULL;
		lens[i] = t ? VARSIZE_ANY_EXHDR(t) : 0;
	}
	pdp_audit_hash_entry((unsigned char *) VARDATA_ANY(prev), VARSIZE_ANY_EXHDR(prev),
						 PG_GETARG_INT64(1), PG_GETARG_INT64(2), PG_GETARG_TIMESTAMPTZ(3),
						 nelems, ptrs, lens, out);
	result = (bytea *) palloc(VARHDRSZ + 32);
	SET_VARSIZE(result, VARHDRSZ + 32);
	memcpy(VARDATA(result), out, 32);
	PG_RETURN_BYTEA_P(result);
}

/*
 * Trigger on the audit tables: UPDATE, DELETE and TRUNCATE are refused, for
 * the owner and superusers too, except inside pdp.trim_audit_log.  (A
 * superuser can still disable triggers; the hash chain is what exposes an
 * edit made that way.)
 */
Datum
pdp_audit_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pdp._audit_append_only() must be called as a trigger")));
	if (audit_trimming && TRIGGER_FIRED_BY_DELETE(td->tg_event))
		return PointerGetDatum(td->tg_trigtuple);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("table \"%s\" is append-only", RelationGetRelationName(td->tg_relation)),
			 errdetail("The audit trail is never changed; old entries leave only through pdp.trim_audit_log().")));
	return PointerGetDatum(NULL);
}

/*
 * pdp._audit_trim_delete(cut_seq bigint) RETURNS bigint
 * Deletes the audit entries sealed at or before cut_seq and their seals,
 * and returns how many entries went.  The append-only trigger lets these
 * two deletes through, and nothing else: the switch is on only for the
 * length of this call.  Called by pdp.trim_audit_log, which moves the
 * chain's anchor in the same transaction; executable by no other role.
 */
Datum
pdp_audit_trim_delete(PG_FUNCTION_ARGS)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	int64		n = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cut sequence number must not be null")));
	values[0] = PG_GETARG_DATUM(0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		audit_trimming = true;
		if (SPI_execute_with_args("DELETE FROM pdp.audit_log l USING pdp.audit_seal a "
								  "WHERE a.entry_id OPERATOR(pg_catalog.=) l.id AND a.seq OPERATOR(pg_catalog.<=) $1",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not trim the audit log");
		n = (int64) SPI_processed;
		if (SPI_execute_with_args("DELETE FROM pdp.audit_seal a WHERE a.seq OPERATOR(pg_catalog.<=) $1",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not trim the audit seals");
	}
	PG_FINALLY();
	{
		audit_trimming = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT64(n);
}

/*
 * pdp._begin_audit_trim() of versions 0.1 and 0.2 turned the switch on for
 * the rest of the transaction.  The symbol stays so that their install
 * scripts load (and update), but it refuses: an old trim_audit_log fails
 * closed until ALTER EXTENSION pdp_ext UPDATE installs the call-scoped one.
 */
Datum
pdp_begin_audit_trim(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("pdp_ext's SQL objects are older than its library"),
			 errdetail("Audit trimming needs the objects of pdp_ext 0.3."),
			 errhint("Run ALTER EXTENSION pdp_ext UPDATE.")));
	PG_RETURN_VOID();
}

/*
 * Record, once per statement and function, that a reversing function ran:
 * who (the entry's role) and which function, never a value.  The entry is
 * committed by the audit worker (audit_durable.c) before this returns, in a
 * transaction of its own, so no rollback of the caller's removes it; when it
 * cannot be committed this raises an error and the caller returns nothing.
 */
void
pdp_audit_reversal(const char *function)
{
	static LocalTransactionId last_lxid = InvalidLocalTransactionId;
	static TimestampTz last_stmt = 0;
	static char last_function[64] = "";
	TimestampTz stmt = GetCurrentStatementStartTimestamp();
	char	   *details;

	if (last_lxid == MyProc->lxid && last_stmt == stmt &&
		strcmp(last_function, function) == 0)
		return;
	details = psprintf("{\"function\": \"%s\"}", function);
	(void) pdp_audit_durable("reverse", function, NULL, details);
	pfree(details);
	last_lxid = MyProc->lxid;
	last_stmt = stmt;
	strlcpy(last_function, function, sizeof(last_function));
}

/*
 * Seal the pending entries (the audit worker calls this between batches, in
 * a transaction of its own).  Returns how many were sealed.
 */
int64
pdp_audit_seal_pending(int64 max_entries)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];
	bool		isnull;
	int64		n;

	values[0] = Int32GetDatum((int32) Min(max_entries, PG_INT32_MAX));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT pdp.seal_audit_log(false, $1)", 1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not seal the audit log");
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return n;
}

PG_FUNCTION_INFO_V1(pdp_audit_write);

/* The owner of a function: the role pdp_ext's C code acts as when it must. */
Oid
pdp_function_owner(Oid fnoid)
{
	HeapTuple	proctup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fnoid));
	Oid			owner;

	if (!HeapTupleIsValid(proctup))
		elog(ERROR, "cache lookup failed for function %u", fnoid);
	owner = ((Form_pg_proc) GETSTRUCT(proctup))->proowner;
	ReleaseSysCache(proctup);
	return owner;
}

/*
 * pdp._audit(action text, object text, subject text, details jsonb)
 *
 * The writer every pdp_ext action calls.  C rather than a SECURITY DEFINER
 * PL/pgSQL function: the latter's GUC save and restore halved the insert
 * rate under concurrency.  It runs the insert as the function's owner (the
 * extension's owner), as PostgreSQL's RI triggers do, through a prepared
 * plan whose names are all qualified.  The actor is the caller's SET ROLE
 * or, without one, the session user: callers cannot choose it.  A subject is
 * stored as pdp.pseudonym(subject, 'audit').  It only appends: the audit
 * worker seals in the background (pdp_audit_request_seal).
 */
Datum
pdp_audit_write(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[6] = {NAMEOID, NAMEOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	const char *actor;
	Oid			save_userid;
	int			save_sec_context;
	Oid			owner;
	int64		entry_id = 0;
	bool		isnull;

	pdp_require_pdp_caller("pdp._audit");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("audit action must not be null")));

	actor = GetConfigOption("role", false, false);
	if (actor == NULL || strcmp(actor, "none") == 0 || actor[0] == '\0')
		actor = GetUserNameFromId(GetSessionUserId(), false);
	values[0] = DirectFunctionCall1(namein, CStringGetDatum(actor));
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetSessionUserId(), false)));
	values[2] = PG_GETARG_DATUM(0);
	values[3] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[3] = PG_ARGISNULL(1) ? 'n' : ' ';
	if (PG_ARGISNULL(2))
	{
		values[4] = (Datum) 0;
		nulls[4] = 'n';
	}
	else
		values[4] = pdp_pseudonym_for_audit(fcinfo, PG_GETARG_TEXT_PP(2));
	values[5] = PG_ARGISNULL(3) ? DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")) : PG_GETARG_DATUM(3);

	owner = pdp_function_owner(fcinfo->flinfo->fn_oid);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (plan == NULL)
		{
			SPIPlanPtr	p = SPI_prepare("INSERT INTO pdp.audit_log (role, session_role, action, object, "
										"subject_pseudonym, details) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
										6, argtypes);

			if (p == NULL || SPI_keepplan(p) != 0)
				elog(ERROR, "could not prepare the audit insert: %s", SPI_result_code_string(SPI_result));
			plan = p;
		}
		if (SPI_execute_plan(plan, values, nulls, false, 1) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
			elog(ERROR, "could not write an audit entry");
		entry_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	(void) entry_id;
	pdp_audit_request_seal();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(pdp_audit_enqueue);

/*
 * AFTER INSERT row trigger on pdp.audit_log: queue the new entry for
 * sealing.  A trigger rather than part of pdp._audit, so that rows a restore
 * loads are queued as well; the sealer drops those already sealed.
 */
Datum
pdp_audit_enqueue(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_INSERT(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pdp._audit_enqueue() must fire AFTER INSERT FOR EACH ROW")));
	values[0] = heap_getattr(td->tg_trigtuple, 1, RelationGetDescr(td->tg_relation), &isnull);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("INSERT INTO pdp.audit_unsealed (entry_id) VALUES ($1) ON CONFLICT DO NOTHING",
									1, argtypes);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare the audit queue insert");
		plan = p;
	}
	if (SPI_execute_plan(plan, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not queue an audit entry");
	SPI_finish();
	return PointerGetDatum(NULL);
}
