/*-------------------------------------------------------------------------
 * pdp_ext.c
 *	  Module entry point: settings and the hooks that tie them together.
 *
 * pdp_ext works whether it is loaded on first use or preloaded with
 * shared_preload_libraries; preloading is recommended so that the pdp.*
 * settings are known from the first statement of every session.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include <limits.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "fmgr.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "storage/proc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static emit_log_hook_type prev_emit_log_hook = NULL;

char	   *pdp_key_file = NULL;
char	   *pdp_purpose = NULL;
bool		pdp_allow_special_categories = false;
bool		pdp_require_transaction_purpose = false;
bool		pdp_erasure_in_progress = false;
/* pdp.min_k: the smallest k-anonymity the report accepts (76_anonymise.sql reads it). */
static int	pdp_min_k = 5;

/*
 * The key file path must be absolute: a relative path would be resolved
 * against the data directory, and keys must live outside it.
 */
static bool
pdp_check_key_file(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!is_absolute_path(*newval))
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errdetail("\"pdp.key_file\" must be an absolute path outside the data directory.");
		return false;
	}
	return true;
}

/* Any (re)assignment, including a reload, makes every backend re-read keys. */
static void
pdp_assign_key_file(const char *newval, void *extra)
{
	pdp_keys_mark_stale();
}

/*
 * Personal values must not reach the server log.  pdp_ext's own messages
 * never contain them, but PostgreSQL logs the text of a failing statement
 * (log_min_error_statement) and the context of an error, and a failing call
 * such as pdp.grant_consent('<e-mail>', ...), or an application's UPDATE
 * refused by pdp's restricted-row trigger, carries values in that text.
 *
 * The guarantee is structural: a function manager hook notes that a
 * function of schema pdp or of this library (triggers included) started in
 * the current top-level statement, however it was reached (any spelling,
 * search_path, a trigger, a policy, an index expression).  Every message of
 * that statement from then on (errors, warnings, notices, log lines) goes to
 * the server log without its STATEMENT and CONTEXT lines, and an integrity
 * violation's detail ("Key (id)=(42)") is dropped.  The client still gets
 * the context.  A statement that names pdp in any case is treated the same
 * from its start, so an error raised while its arguments are parsed, before
 * any pdp function runs, is covered too.  Loaded with
 * shared_preload_libraries this covers every session; otherwise from a
 * session's first use.
 *
 * Cost: needs_fmgr_hook is asked once per function lookup (fmgr_info), and
 * its answer is cached per function OID in a backend-local hash, emptied
 * when pg_proc or pg_namespace change.  Only pdp's functions then go through
 * the hook, whose start event stores one timestamp.
 */
static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;

typedef struct PdpFnEntry
{
	Oid			fn_oid;			/* hash key */
	bool		is_pdp;
} PdpFnEntry;

static HTAB *pdp_fn_cache = NULL;
static bool pdp_fn_cache_valid = false;

/*
 * How many calls of pdp's hooked functions are running in this backend
 * (pdp_require_pdp_caller).  Every start has its end or its abort: the
 * function manager calls the hook with FHET_ABORT when an error leaves the
 * function.
 */
static int	pdp_call_depth = 0;

/* The top-level statement in which pdp code last ran (statement start time, transaction). */
static TimestampTz pdp_ran_stmt = 0;
static LocalTransactionId pdp_ran_lxid = InvalidLocalTransactionId;

/* Syscache callback: only mark the cache stale; it is rebuilt on next use. */
static void
pdp_fn_cache_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	pdp_fn_cache_valid = false;
}

/* Is fn_oid a function of schema pdp, or a C function of this library? */
static bool
pdp_fn_lookup(Oid fn_oid)
{
	PdpFnEntry *e;
	bool		found;
	HeapTuple	tup;
	bool		is_pdp = false;

	if (!IsTransactionState())
		return false;
	if (pdp_fn_cache == NULL || !pdp_fn_cache_valid)
	{
		HASHCTL		ctl;

		if (pdp_fn_cache != NULL)
			hash_destroy(pdp_fn_cache);
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(PdpFnEntry);
		ctl.hcxt = TopMemoryContext;
		pdp_fn_cache = hash_create("pdp_ext function cache", 256, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		pdp_fn_cache_valid = true;
	}
	e = (PdpFnEntry *) hash_search(pdp_fn_cache, &fn_oid, HASH_FIND, NULL);
	if (e != NULL)
		return e->is_pdp;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (HeapTupleIsValid(tup))
	{
		Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(tup);
		Oid			pdp_nsp = get_namespace_oid("pdp", true);

		if (OidIsValid(pdp_nsp) && proc->pronamespace == pdp_nsp)
			is_pdp = true;
		else if (proc->prolang == ClanguageId)
		{
			bool		isnull;
			Datum		bin = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_probin, &isnull);

			if (!isnull)
			{
				char	   *probin = TextDatumGetCString(bin);
				const char *base = last_dir_separator(probin);

				base = base ? base + 1 : probin;
				is_pdp = strcmp(base, "pdp_ext") == 0 || strcmp(base, "pdp_ext" DLSUFFIX) == 0;
				pfree(probin);
			}
		}

		/*
		 * The row test runs once per row of every protected scan, and the
		 * subject canonicaliser once per row of a bulk import: they note
		 * themselves (pdp_note_pdp_ran), which costs two stores instead of
		 * the hook's wrapping of every call (the function manager then runs
		 * each call through fmgr_security_definer: about 1,200 instructions a
		 * row).  Neither calls a guarded helper, so leaving them uncounted
		 * only makes pdp_require_pdp_caller stricter.  Whether in schema pdp
		 * or not, a C function of ours is known by its symbol.
		 */
		if (is_pdp && proc->prolang == ClanguageId)
		{
			bool		isnull;
			Datum		src = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);

			if (!isnull)
			{
				char	   *prosrc = TextDatumGetCString(src);

				if (strncmp(prosrc, "pdp_visible_", 12) == 0 ||
					strncmp(prosrc, "pdp_canonical_subject", 21) == 0)
					is_pdp = false;
				pfree(prosrc);
			}
		}
		ReleaseSysCache(tup);
	}
	/* The lookups above may have processed invalidations: re-check before caching. */
	if (pdp_fn_cache_valid)
	{
		e = (PdpFnEntry *) hash_search(pdp_fn_cache, &fn_oid, HASH_ENTER, &found);
		e->is_pdp = is_pdp;
	}
	return is_pdp;
}

static bool
pdp_needs_fmgr_hook(Oid fn_oid)
{
	if (prev_needs_fmgr_hook && prev_needs_fmgr_hook(fn_oid))
		return true;
	return pdp_fn_lookup(fn_oid);
}

static void
pdp_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	/*
	 * Without an earlier hook only pdp's functions come here; with one, ask
	 * the cache (its answer was stored when the function was looked up).
	 */
	if (event == FHET_START && (prev_needs_fmgr_hook == NULL || pdp_fn_lookup(flinfo->fn_oid)))
	{
		pdp_ran_stmt = GetCurrentStatementStartTimestamp();
		pdp_ran_lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
		/*
		 * Counted calls are marked in their private slot, so that the end
		 * matches the start.  The slot is shared with an earlier hook: with
		 * one, leave it alone and ask the cache again at the end.
		 */
		pdp_call_depth++;
		if (prev_fmgr_hook == NULL)
			*private = (Datum) 1;
	}
	else if ((event == FHET_END || event == FHET_ABORT) &&
			 (prev_fmgr_hook == NULL ? *private == (Datum) 1 : pdp_fn_lookup(flinfo->fn_oid)))
	{
		if (pdp_call_depth > 0)
			pdp_call_depth--;
		if (prev_fmgr_hook == NULL)
			*private = (Datum) 0;
	}
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, private);
}

/*
 * Internal helpers (pdp._audit, pdp._subject_pseudonym) refuse a call that
 * does not come from another of pdp's functions: the caller's own call is
 * the first one counted, the helper's the second.  Code that runs in a
 * security-restricted operation (another role's triggers, defaults, index
 * expressions, run by pdp with that role's rights) is refused as well, so a
 * table owner's trigger fired by pdp cannot write through the helper either.
 */
void
pdp_require_pdp_caller(const char *function)
{
	if (pdp_call_depth < 2 || InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", function),
				 errdetail("%s is internal to pdp_ext: only pdp_ext's own functions call it.", function)));
}

/*
 * pdp._ddl_by_pdp() RETURNS boolean, for pdp's event triggers: is the DDL
 * being run by one of pdp's own functions (which record their own actions)
 * rather than by a user?  Counted levels: the pdp function that ran the DDL,
 * the event trigger, and this function.
 */
PG_FUNCTION_INFO_V1(pdp_ddl_by_pdp);
Datum
pdp_ddl_by_pdp(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(pdp_call_depth > 2);
}

/* For hot functions left out of the hook: note that pdp code ran in this statement. */
void
pdp_note_pdp_ran(void)
{
	pdp_ran_stmt = GetCurrentStatementStartTimestamp();
	pdp_ran_lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
}

/* Does the statement's text name pdp, in any case ("pdp", "PDP", "Pdp")? */
static bool
pdp_text_names_pdp(const char *text)
{
	if (text == NULL)
		return false;
	for (const char *p = text; p[0] != '\0'; p++)
		if (pg_tolower((unsigned char) p[0]) == 'p' && pg_tolower((unsigned char) p[1]) == 'd' &&
			pg_tolower((unsigned char) p[2]) == 'p')
			return true;
	return false;
}

static void
pdp_emit_log_hook(ErrorData *edata)
{
	bool		pdp_ran = pdp_ran_stmt != 0 && pdp_ran_stmt == GetCurrentStatementStartTimestamp() &&
		MyProc != NULL && pdp_ran_lxid == MyProc->lxid;

	if (pdp_ran || pdp_text_names_pdp(debug_query_string))
	{
		edata->hide_stmt = true;
		edata->hide_ctx = true;
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION)
		{
			edata->detail = NULL;
			edata->detail_log = NULL;
		}
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
_PG_init(void)
{
	DefineCustomStringVariable("pdp.key_file",
							   "Path of the file holding pdp_ext's versioned master keys.",
							   "The file must be outside the data directory and readable by its owner only.",
							   &pdp_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   pdp_check_key_file,
							   pdp_assign_key_file,
							   NULL);

	DefineCustomStringVariable("pdp.purpose",
							   "Why this session processes personal data.",
							   "Rows of tables protected by pdp_ext are visible only for a declared purpose the role may declare.",
							   &pdp_purpose,
							   "",
							   PGC_USERSET,
							   0,
							   pdp_check_purpose,
							   pdp_assign_purpose,
							   NULL);

	DefineCustomBoolVariable("pdp.require_transaction_purpose",
							 "Whether only a purpose declared in the current transaction counts.",
							 "Behind a connection pooler in transaction mode, a session-wide SET pdp.purpose "
							 "would carry over to the next client; with this on, a purpose set before the "
							 "current transaction is ignored (SET LOCAL, or set_config(..., true), declares one).",
							 &pdp_require_transaction_purpose,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("pdp.allow_special_categories",
							 "Whether special categories of personal data may be declared.",
							 "Health, religion, political views, biometrics and the like (GDPR Art. 9); off by default.",
							 &pdp_allow_special_categories,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pdp.visibility_memory",
							"The most memory one backend uses for consent and restriction sets.",
							"A statement that reads many rows of a protected table reads the declared purpose's "
							"consents once into a set; a set that would need more than this is not built, and "
							"the statement probes the index for each subject instead.",
							&pdp_visibility_memory_kb,
							8192,
							0,
							1048576,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomRealVariable("pdp.purge_max_share",
							 "The largest share of a table's rows, or of the subjects, one purge run may remove.",
							 "A purge run that would remove more of a table's rows than this share, or more of the "
							 "inactivity table's subjects, leaves that table (or the inactive subjects) alone, warns "
							 "and records what it would have removed; set a larger share for one run to let it through, "
							 "1 turns the check off.",
							 &pdp_purge_max_share,
							 0.10,
							 0.0,
							 1.0,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pdp.min_k",
							"The smallest k-anonymity the compliance report accepts.",
							"The report flags every table whose declared quasi-identifiers "
							"(pdp.declare_quasi_identifiers) leave a group of fewer rows than this "
							"(pdp.k_anonymity).",
							&pdp_min_k,
							5,
							1,
							1000000,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("pdp.audit_log_json",
							 "Whether every audit entry also goes to the server log as one JSON line.",
							 "Each sealed entry is written as a LOG line \"pdp_audit {...}\" (pseudonyms only, "
							 "no personal values), for syslog or journald shippers to forward to a SIEM.",
							 &pdp_audit_log_json,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("pdp");

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = pdp_emit_log_hook;
	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = pdp_needs_fmgr_hook;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = pdp_fmgr_hook;
	CacheRegisterSyscacheCallback(PROCOID, pdp_fn_cache_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, pdp_fn_cache_invalidate, (Datum) 0);

	pdp_audit_durable_init();	/* audit worker, its shared memory and settings */
	pdp_target_init();			/* the running query, for the row test (target.c) */
	pdp_rule_failures_init();	/* masked views' failure counters */
	pdp_audit_reads_init();		/* read-access logging (executor hooks) */
	pdp_visibility_init();		/* parallel groups' shared consent sets */
}
