/*-------------------------------------------------------------------------
 * owner.c
 *	  Whose rights pdp_ext's statements run with.
 *
 * Two switches, each written once:
 *
 * pdp._exec_as_owner(tbl, sql, VARIADIC args) runs one statement on a
 * user table as that table's owner, with SECURITY_RESTRICTED_OPERATION, as
 * PostgreSQL's RI triggers and REFRESH MATERIALIZED VIEW do.  Whatever the
 * owner attached to the table (row triggers, rules, defaults, index
 * expressions, generated columns, functions in policies, casts) then runs
 * with the owner's rights, never with those of pdp_ext's owner or of a
 * superuser who purges.  The table is re-checked at use: it must still be
 * an ordinary or partitioned table (a registered table turned into a view
 * with CREATE RULE "_RETURN" is refused), and it is locked against such a
 * change for the rest of the transaction.  Values are always parameters.
 * Only a role that owns the table (or a superuser, which includes pdp_ext's
 * SECURITY DEFINER functions) may call it: for anyone else it would be a
 * way to act as another role.
 *
 * pdp_api_call is the C body of pdp's state-changing API functions (the
 * registry, column rules, retention).  It records the calling role, then
 * runs the function's implementation (pdp._api_<name>, callable by no
 * role) as pdp_ext's owner, so pdp's tables need no write grant at all;
 * the implementation checks ownership against pdp._caller(), the role that
 * called the API, not against the role it runs as.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(pdp_exec_as_owner);
PG_FUNCTION_INFO_V1(pdp_exec_as_owner_count);
PG_FUNCTION_INFO_V1(pdp_api_call);
PG_FUNCTION_INFO_V1(pdp_caller);

/* The role that called the innermost pdp API function, while it runs. */
static Oid	api_caller = InvalidOid;

/* The forced-RLS table pdp._exec_as_owner works on, while it does (else InvalidOid). */
Oid			pdp_owner_statement_relid = InvalidOid;

/*
 * Runs the statement of a pdp._exec_as_owner call as the table's owner.
 * With rsinfo, its result rows go to the caller's result set; without, only
 * how many rows it processed is returned (a DELETE needs no RETURNING,
 * which would fetch every deleted row again).
 */
static uint64
exec_as_owner(FunctionCallInfo fcinfo, ReturnSetInfo *rsinfo)
{
	volatile uint64 processed = 0;
	Oid			relid;
	char	   *sql;
	HeapTuple	classtup;
	Form_pg_class classform;
	char		relkind;
	Oid			owner;
	bool		forced;
	char	   *relname;
	int			nargs = 0;
	Oid		   *volatile argtypes = NULL;
	Datum	   *values = NULL;
	char	   *volatile nulls = NULL;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	Oid			save_caller = api_caller;
	Oid			save_relid = pdp_owner_statement_relid;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and statement must not be null")));
	relid = PG_GETARG_OID(0);
	sql = text_to_cstring(PG_GETARG_TEXT_PP(1));

	/* Held to the end of the transaction: the table cannot become a view meanwhile. */
	LockRelationOid(relid, AccessShareLock);
	classtup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(classtup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	classform = (Form_pg_class) GETSTRUCT(classtup);
	relkind = classform->relkind;
	owner = classform->relowner;
	forced = classform->relforcerowsecurity;
	relname = pstrdup(NameStr(classform->relname));
	ReleaseSysCache(classtup);

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", relname),
				 errdetail("pdp_ext works only on ordinary and partitioned tables; a registered table that has become a view or another kind of relation is refused."),
				 errhint("Unregister it with pdp.unregister_table.")));
	if (!pg_class_ownercheck(relid, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table \"%s\"", relname)));

	/* The parameters: each variadic argument, or the elements of an explicit VARIADIC array. */
	if (PG_NARGS() > 2)
	{
		if (get_fn_expr_variadic(fcinfo->flinfo))
		{
			Oid			arrtype = get_fn_expr_argtype(fcinfo->flinfo, 2);
			Oid			elemtype = get_base_element_type(arrtype);
			int16		elmlen;
			bool		elmbyval;
			char		elmalign;
			bool	   *elemnulls;

			if (!OidIsValid(elemtype))
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("VARIADIC argument must be an array")));
			if (!PG_ARGISNULL(2))
			{
				get_typlenbyvalalign(elemtype, &elmlen, &elmbyval, &elmalign);
				deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), elemtype, elmlen, elmbyval, elmalign,
								  &values, &elemnulls, &nargs);
				argtypes = palloc(sizeof(Oid) * Max(nargs, 1));
				nulls = palloc(Max(nargs, 1));
				for (int i = 0; i < nargs; i++)
				{
					argtypes[i] = elemtype;
					nulls[i] = elemnulls[i] ? 'n' : ' ';
				}
			}
		}
		else
		{
			nargs = PG_NARGS() - 2;
			argtypes = palloc(sizeof(Oid) * nargs);
			values = palloc(sizeof(Datum) * nargs);
			nulls = palloc(nargs);
			for (int i = 0; i < nargs; i++)
			{
				argtypes[i] = get_fn_expr_argtype(fcinfo->flinfo, i + 2);
				if (!OidIsValid(argtypes[i]))
					elog(ERROR, "could not determine the type of parameter %d", i + 1);
				nulls[i] = PG_ARGISNULL(i + 2) ? 'n' : ' ';
				values[i] = PG_ARGISNULL(i + 2) ? (Datum) 0 : PG_GETARG_DATUM(i + 2);
				if (argtypes[i] == UNKNOWNOID)
				{
					argtypes[i] = TEXTOID;
					if (!PG_ARGISNULL(i + 2))
						values[i] = CStringGetTextDatum(DatumGetCString(values[i]));
				}
			}
		}
	}

	if (rsinfo != NULL)
		InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* Code of the table's owner that calls pdp's API acts as the owner. */
	api_caller = InvalidOid;
	pdp_owner_statement_relid = forced ? relid : InvalidOid;
	PG_TRY();
	{
		int			rc;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute_with_args(sql, nargs, argtypes, values, nulls, false, 0);
		if (rc < 0)
			elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
		processed = SPI_processed;
		if (rsinfo != NULL && SPI_tuptable != NULL && SPI_processed > 0)
		{
			TupleDesc	got = SPI_tuptable->tupdesc;
			TupleDesc	want = rsinfo->setDesc;

			if (got->natts != want->natts)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("statement returns %d columns, the call expects %d", got->natts, want->natts)));
			for (int i = 0; i < got->natts; i++)
				if (TupleDescAttr(got, i)->atttypid != TupleDescAttr(want, i)->atttypid)
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("column %d of the statement has type %s, the call expects %s", i + 1,
									format_type_be(TupleDescAttr(got, i)->atttypid),
									format_type_be(TupleDescAttr(want, i)->atttypid))));
			for (uint64 i = 0; i < SPI_processed; i++)
				tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		pdp_owner_statement_relid = save_relid;
		api_caller = save_caller;
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	AtEOXact_GUC(false, save_nestlevel);
	return processed;
}

/*
 * pdp._exec_as_owner(tbl regclass, sql text [, VARIADIC args "any"])
 *		RETURNS SETOF record
 */
Datum
pdp_exec_as_owner(PG_FUNCTION_ARGS)
{
	(void) exec_as_owner(fcinfo, (ReturnSetInfo *) fcinfo->resultinfo);
	return (Datum) 0;
}

/*
 * pdp._exec_as_owner_count(tbl regclass, sql text, VARIADIC args "any")
 *		RETURNS bigint: the number of rows the statement processed
 */
Datum
pdp_exec_as_owner_count(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) exec_as_owner(fcinfo, NULL));
}

/* What pdp_api_call keeps per call site. */
typedef struct ApiTarget
{
	FmgrInfo	impl;
	Oid			owner;
} ApiTarget;

/*
 * Body of the API functions whose implementation is pdp._api_<name> with
 * the same arguments: runs it as its owner (pdp_ext's owner), with the
 * caller recorded for pdp._caller().
 */
Datum
pdp_api_call(PG_FUNCTION_ARGS)
{
	ApiTarget  *target = (ApiTarget *) fcinfo->flinfo->fn_extra;
	LOCAL_FCINFO(inner, FUNC_MAX_ARGS);
	Oid			save_userid;
	int			save_sec_context;
	Oid			save_caller = api_caller;
	volatile Datum result = (Datum) 0;

	if (target == NULL)
	{
		HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
		Form_pg_proc proc;
		Form_pg_proc implproc;
		HeapTuple	impltup;
		char	   *implname;
		Oid			implfn;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
		proc = (Form_pg_proc) GETSTRUCT(tup);
		implname = psprintf("_api_%s", NameStr(proc->proname));
		impltup = SearchSysCache3(PROCNAMEARGSNSP, CStringGetDatum(implname),
								  PointerGetDatum(&proc->proargtypes), ObjectIdGetDatum(proc->pronamespace));
		if (!HeapTupleIsValid(impltup))
			elog(ERROR, "pdp_ext is damaged: function %s has no implementation", NameStr(proc->proname));
		implproc = (Form_pg_proc) GETSTRUCT(impltup);
		implfn = implproc->oid;
		if (implproc->proowner != proc->proowner || implproc->prosecdef || implproc->proretset != proc->proretset ||
			implproc->prorettype != proc->prorettype)
			elog(ERROR, "pdp_ext is damaged: implementation of %s does not match it", NameStr(proc->proname));
		target = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ApiTarget));
		target->owner = proc->proowner;
		ReleaseSysCache(impltup);
		ReleaseSysCache(tup);
		fmgr_info_cxt(implfn, &target->impl, fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = target;
	}

	InitFunctionCallInfoData(*inner, &target->impl, fcinfo->nargs, fcinfo->fncollation, fcinfo->context, NULL);
	for (int i = 0; i < fcinfo->nargs; i++)
		inner->args[i] = fcinfo->args[i];

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(target->owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	api_caller = save_userid;
	PG_TRY();
	{
		result = FunctionCallInvoke(inner);
	}
	PG_FINALLY();
	{
		api_caller = save_caller;
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	fcinfo->isnull = inner->isnull;
	return result;
}

/*
 * pdp._caller() RETURNS regrole: the role that called the pdp API function
 * now running, or, outside one, the current user.  Ownership checks use it.
 */
Datum
pdp_caller(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(OidIsValid(api_caller) ? api_caller : GetUserId());
}
