/*-------------------------------------------------------------------------
 * consent.c
 *	  The declared purpose (pdp.purpose): its check when it is set, and its
 *	  per-statement state, which the row test (visibility.c) reads.
 *
 * What is cached is the declared purpose's own state for the current role:
 * whether the role may declare it, whether it needs consent, whether it is
 * exempt from restriction.  That is one entry (PurposeState), a few dozen
 * bytes whatever the number of purposes, grants, consents or restrictions.
 *
 * Note about locking and invalidation
 * -----------------------------------
 * The entry is read with index and heap scans of pdp.purpose and
 * pdp.purpose_grant under AccessShareLock and a fresh catalog snapshot (not
 * SPI: the check hook runs it, and the reader needs no rights on pdp's
 * tables).  A statement trigger on both tables (and a replica-mode row
 * trigger, for logical subscribers) queues a relcache invalidation of the
 * table, sent at commit; role membership and role attribute changes arrive
 * as syscache invalidations.  The callbacks only clear purpose_state_valid:
 * they never free memory or touch the entry.  The flag is set before the
 * read, so an invalidation arriving during it (opening a table accepts
 * invalidation messages) clears it again and the next use reads afresh; the
 * entry is copied in from locals only once the read has completed (pg_cron's
 * InvalidateJobCacheCallback pattern).
 *
 * Each statement works its purpose state out once, on first use, after
 * accepting pending invalidations, and keeps it to its end: a purpose or
 * grant change committed while it runs applies from the next statement on.
 *
 * On a Citus worker that has pdp's mirror (pdp.citus_sync_state), the entry
 * is read from the mirror's local placements instead (citus_state.c; grants
 * name roles, resolved by name here), and is not kept from one statement to
 * the next: Citus writes the placements in the coordinator's transaction
 * without sending this node any invalidation, and the next statement's
 * fresh catalog snapshot sees the change.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/sinval.h"
#include "utils/acl.h"
#include "utils/json.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "citus_state.h"

PG_FUNCTION_INFO_V1(pdp_config_changed);


/* The one cached purpose, for one role. */
typedef struct PurposeState
{
	char		name[NAMEDATALEN];
	Oid			userid;
	bool		defined;		/* the purpose exists */
	bool		allowed;		/* userid may declare it */
	bool		requires_consent;
	bool		restriction_exempt;
	bool		maintenance;	/* a maintenance purpose: sees and changes every row, audited */
} PurposeState;

static PurposeState purpose_state;
static bool purpose_state_valid = false;
static bool purpose_state_mirrored = false;	/* read from a Citus placement */
static Oid	purpose_relid = InvalidOid;	/* as of the last read */
static Oid	grant_relid = InvalidOid;
static bool callbacks_registered = false;

/* What the current statement declared, worked out on its first use. */
typedef struct StatementState
{
	LocalTransactionId lxid;
	TimestampTz stmt_start;
	Oid			userid;
	char		purpose[NAMEDATALEN];
	int			flags;
} StatementState;

static StatementState stmt_state = {InvalidLocalTransactionId};

/* Statement at which the "no purpose declared" notice was last given. */
static LocalTransactionId noticed_lxid = InvalidLocalTransactionId;
static TimestampTz noticed_stmt = 0;

/*
 * Invalidation callbacks: mark the cached purpose stale, nothing else.
 * Dropping the extension invalidates its tables too, so a re-created
 * pdp.purpose (with another OID) is no special case.
 */
static void
consent_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == purpose_relid || relid == grant_relid)
		purpose_state_valid = false;
}

static void
consent_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	purpose_state_valid = false;
}

static void
ensure_callbacks(void)
{
	if (callbacks_registered)
		return;
	CacheRegisterRelcacheCallback(consent_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, consent_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, consent_syscache_callback, (Datum) 0);
	callbacks_registered = true;
}

/* OID of pdp.<name>, or InvalidOid when pdp_ext is not in this database. */
Oid
pdp_relation_oid(const char *name)
{
	Oid			nsp = get_namespace_oid("pdp", true);

	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

/*
 * Read purpose `name` and whether `userid` may declare it into *out, from
 * pdp's tables or, on a Citus worker, from the placements of their mirror
 * (citus_state.c), whose grants name roles by name.  *mirrored says which.
 * False if pdp_ext is not installed in this database.
 */
static bool
read_purpose(const char *name, Oid userid, PurposeState *out, bool *mirrored)
{
	Oid			purpose_pkey;
	Oid			grant_pkey;
	Oid			purpose_rel;
	Oid			grant_rel;
	Relation	rel;
	Snapshot	snap;
	TableScanDesc scan;
	HeapTuple	tuple;

	/* pdp's own tables, whose invalidations clear the cache. */
	purpose_relid = pdp_relation_oid("purpose");
	grant_relid = pdp_relation_oid("purpose_grant");
	*mirrored = pdp_state_relation(PDP_STATE_PURPOSE, &purpose_rel, &purpose_pkey);
	*mirrored |= pdp_state_relation(PDP_STATE_GRANT, &grant_rel, &grant_pkey);
	if (!OidIsValid(purpose_rel) || !OidIsValid(purpose_pkey) || !OidIsValid(grant_rel))
		return false;
	memset(out, 0, sizeof(*out));
	strlcpy(out->name, name, NAMEDATALEN);
	out->userid = userid;

	/* The purpose itself, by its primary key. */
	{
		Relation	index;
		ScanKeyData skey;
		IndexScanDesc iscan;
		TupleTableSlot *slot;
		text	   *t = cstring_to_text(name);

		rel = table_open(purpose_rel, AccessShareLock);
		index = index_open(purpose_pkey, AccessShareLock);
		snap = RegisterSnapshot(GetCatalogSnapshot(purpose_rel));
		ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid,
							   DEFAULT_COLLATION_OID, F_TEXTEQ, PointerGetDatum(t));
		iscan = index_beginscan(rel, index, snap, 1, 0);
		index_rescan(iscan, &skey, 1, NULL, 0);
		slot = table_slot_create(rel, NULL);
		if (index_getnext_slot(iscan, ForwardScanDirection, slot))
		{
			TupleDesc	desc = RelationGetDescr(rel);
			bool		isnull;

			slot_getallattrs(slot);
			out->defined = true;
			for (int i = 0; i < desc->natts; i++)
			{
				const char *att = NameStr(TupleDescAttr(desc, i)->attname);
				Datum		d = slot_getattr(slot, i + 1, &isnull);

				if (isnull)
					continue;
				if (strcmp(att, "requires_consent") == 0)
					out->requires_consent = DatumGetBool(d);
				else if (strcmp(att, "restriction_exempt") == 0)
					out->restriction_exempt = DatumGetBool(d);
				else if (strcmp(att, "maintenance") == 0)
					out->maintenance = DatumGetBool(d);
			}
		}
		ExecDropSingleTupleTableSlot(slot);
		index_endscan(iscan);
		UnregisterSnapshot(snap);
		index_close(index, AccessShareLock);
		table_close(rel, AccessShareLock);
		pfree(t);
	}
	if (!out->defined)
		return true;

	/* Its grants: (role regrole, purpose text, ...); a small table. */
	rel = table_open(grant_rel, AccessShareLock);
	snap = RegisterSnapshot(GetCatalogSnapshot(grant_rel));
	scan = table_beginscan(rel, snap, 0, NULL);
	while (!out->allowed && (tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		rnull,
					pnull;
		Datum		role = heap_getattr(tuple, 1, desc, &rnull);
		Datum		purpose = heap_getattr(tuple, 2, desc, &pnull);
		text	   *p;

		if (rnull || pnull)
			continue;
		p = DatumGetTextPP(purpose);
		if (VARSIZE_ANY_EXHDR(p) != strlen(name) ||
			memcmp(VARDATA_ANY(p), name, VARSIZE_ANY_EXHDR(p)) != 0)
			continue;
		if (*mirrored)
		{
			/* The mirror names the role: OIDs differ between nodes. */
			char	   *rolname = TextDatumGetCString(role);
			Oid			roleid = get_role_oid(rolname, true);

			pfree(rolname);
			if (OidIsValid(roleid) && has_privs_of_role(userid, roleid))
				out->allowed = true;
		}
		else if (has_privs_of_role(userid, DatumGetObjectId(role)))
			out->allowed = true;
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return true;
}

/*
 * The state of purpose `name` for `userid`, from the one-entry cache or
 * read afresh.  NULL if pdp_ext is not installed in this database.
 */
static const PurposeState *
lookup_purpose(const char *name, Oid userid)
{
	PurposeState fresh;
	bool		installed;
	bool		mirrored = false;
	Oid			relid;
	Oid			pkey;

	ensure_callbacks();
	/*
	 * State read from a Citus placement is read afresh at each use: Citus
	 * writes placements without invalidations (callers use it once per
	 * statement).  An entry read from pdp's own tables is not used once the
	 * placements are there either (they appear without invalidating them).
	 */
	if (purpose_state_valid && !purpose_state_mirrored && purpose_state.userid == userid &&
		strcmp(purpose_state.name, name) == 0 &&
		!pdp_state_relation(PDP_STATE_PURPOSE, &relid, &pkey))
		return &purpose_state;
	/* Set first: an invalidation arriving during the read clears it again. */
	purpose_state_valid = true;
	PG_TRY();
	{
		installed = read_purpose(name, userid, &fresh, &mirrored);
	}
	PG_CATCH();
	{
		purpose_state_valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (!installed)
	{
		purpose_state_valid = false;
		return NULL;
	}
	purpose_state = fresh;
	purpose_state_mirrored = mirrored;
	return &purpose_state;
}

/*
 * Check hook of pdp.purpose: inside a transaction, refuse a purpose that is
 * unknown or that the current role may not declare.  Outside one (the
 * configuration file, role defaults at login) the value is checked at use.
 */
bool
pdp_check_purpose(char **newval, void **extra, GucSource source)
{
	const PurposeState *ps;

	/* A parallel worker inherits the value its leader already checked. */
	if (*newval == NULL || (*newval)[0] == '\0' || !IsTransactionState() ||
		IsParallelWorker() || InitializingParallelWorker)
		return true;
	if (strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errcode(ERRCODE_UNDEFINED_OBJECT);
		GUC_check_errmsg("unknown purpose");
		return false;
	}
	ps = lookup_purpose(*newval, GetUserId());
	if (ps == NULL)
		return true;			/* pdp_ext not installed in this database */
	if (!ps->defined)
	{
		GUC_check_errcode(ERRCODE_UNDEFINED_OBJECT);
		GUC_check_errmsg("unknown purpose");
		GUC_check_errhint("pdp.purposes lists the defined purposes.");
		return false;
	}
	if (!ps->allowed)
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("role \"%s\" may not declare purpose \"%s\"",
						 GetUserNameFromId(GetUserId(), false), *newval);
		GUC_check_errhint("pdp.allow_purpose grants a role a purpose.");
		return false;
	}
	return true;
}

/*
 * The transaction in which pdp.purpose last got its value (set, reset, or
 * restored at the end of a transaction that changed it with SET LOCAL).
 * With pdp.require_transaction_purpose, a value from an earlier transaction
 * counts as no purpose: behind a pooler in transaction mode it may have
 * been set by another client.
 */
static LocalTransactionId purpose_assigned_lxid = InvalidLocalTransactionId;

void
pdp_assign_purpose(const char *newval, void *extra)
{
	purpose_assigned_lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
}

/* Does a purpose declared before this transaction have to be ignored? */
static bool
purpose_from_earlier_transaction(void)
{
	return pdp_require_transaction_purpose && !IsParallelWorker() &&
		(MyProc == NULL || purpose_assigned_lxid != MyProc->lxid);
}

/*
 * Whether this backend is a connection Citus opened from another node to
 * run shards of a distributed query (application_name "citus_internal
 * gpid=...", CITUS_APPLICATION_NAME_PREFIX in Citus's connection_management.h).
 * A client that names itself so only gets the stricter behaviour.
 */
static bool
citus_shard_session(void)
{
	return application_name != NULL &&
		strncmp(application_name, "citus_internal gpid=", strlen("citus_internal gpid=")) == 0;
}

/*
 * The declared purpose as flags, for the current role: 0 (nothing is
 * visible, with a NOTICE once per statement when `notice`) when no purpose
 * is declared; an error when it is unknown or the role may not declare it.
 */
static int
declared_purpose_flags(bool notice)
{
	const PurposeState *ps;
	int			flags = PURPOSE_VISIBLE;

	if (pdp_purpose == NULL || pdp_purpose[0] == '\0' || purpose_from_earlier_transaction())
	{
		TimestampTz stmt = GetCurrentStatementStartTimestamp();
		bool		stale = pdp_purpose != NULL && pdp_purpose[0] != '\0';

		/*
		 * A shard of a distributed query, run on a Citus worker for the
		 * coordinator: hiding every row here would make the coordinator's
		 * result silently incomplete (an empty count, a partial list), and
		 * the NOTICE would not say why.  A purpose declared on the
		 * coordinator with a session-level SET never reaches the workers.
		 */
		if (citus_shard_session())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no purpose reached this Citus worker"),
					 errdetail("The statement runs shards of a distributed query for the coordinator without a declared pdp.purpose; "
							   "the rows of tables protected by pdp_ext would be hidden and the result silently incomplete."),
					 errhint("On the coordinator, declare the purpose in the transaction with SET LOCAL citus.propagate_set_commands = 'local' "
							 "and SET LOCAL pdp.purpose = '...': a session-level SET pdp.purpose does not reach the workers.")));

		/* Once per statement, and from the leader only, not each parallel worker. */
		if (notice && !IsParallelWorker() &&
			(noticed_lxid != MyProc->lxid || noticed_stmt != stmt))
		{
			noticed_lxid = MyProc->lxid;
			noticed_stmt = stmt;
			if (stale)
				ereport(NOTICE,
						(errmsg("no purpose declared in this transaction: rows of tables protected by pdp_ext are hidden"),
						 errdetail("pdp.require_transaction_purpose is on, and pdp.purpose was set before this transaction began."),
						 errhint("Declare the purpose for each transaction, for example SET LOCAL pdp.purpose = 'courses'.")));
			else
				ereport(NOTICE,
						(errmsg("no purpose declared: rows of tables protected by pdp_ext are hidden"),
						 errhint("Declare why this session reads personal data, for example SET pdp.purpose = 'courses'.")));
		}
		return 0;
	}
	ps = strlen(pdp_purpose) < NAMEDATALEN ? lookup_purpose(pdp_purpose, GetUserId()) : NULL;
	if (ps == NULL && strlen(pdp_purpose) < NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext is not installed in this database")));
	if (ps == NULL || !ps->defined)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown purpose \"%s\"", pdp_purpose),
				 errhint("pdp.purposes lists the defined purposes.")));
	/* Checked again here: SET ROLE after SET pdp.purpose must not carry it over. */
	if (!ps->allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not declare purpose \"%s\"",
						GetUserNameFromId(GetUserId(), false), pdp_purpose),
				 errhint("pdp.allow_purpose grants a role a purpose.")));
	if (ps->requires_consent)
		flags |= PURPOSE_NEEDS_CONSENT;
	if (ps->restriction_exempt)
		flags |= PURPOSE_EXEMPT;
	if (ps->maintenance)
		flags |= PURPOSE_MAINTENANCE;
	return flags;
}

/*
 * A maintenance purpose (pdp.define_maintenance_purpose) lets the role that
 * may declare it see and change every row of protected tables, restricted
 * subjects' included: for migrations, upgrades and an application's own
 * cron.  Its use is recorded in the audit trail, durably (it stays there if
 * the transaction rolls back), once per session for each role and
 * maintenance purpose, before the first query that runs under it; if the
 * entry cannot be recorded, the query fails.  Called before each query is
 * run (target.c); a superuser, whom row-level security does not restrict,
 * and pdp's own statements (security-restricted operations) are not
 * recorded.
 */
static Oid	maintenance_recorded_user = InvalidOid;
static char maintenance_recorded_purpose[NAMEDATALEN];

void
pdp_audit_maintenance_use(void)
{
	const PurposeState *ps;
	Oid			userid;
	StringInfoData details;

	if (pdp_purpose == NULL || pdp_purpose[0] == '\0' || IsParallelWorker() ||
		!IsTransactionState() || OidIsValid(pdp_owner_statement_relid) ||
		strlen(pdp_purpose) >= NAMEDATALEN || purpose_from_earlier_transaction())
		return;
	userid = GetUserId();
	if (userid == maintenance_recorded_user && strcmp(maintenance_recorded_purpose, pdp_purpose) == 0)
		return;
	/*
	 * Decided before the purpose lookup: pdp's own queries run as the
	 * extension's owner (a superuser) or, on user tables, as a restricted
	 * operation, and looking the purpose up for them would evict the one
	 * cached entry of the session's own role before each of their queries.
	 */
	if (superuser_arg(userid) || InSecurityRestrictedOperation())
		return;
	ps = lookup_purpose(pdp_purpose, userid);
	if (ps == NULL || !ps->defined || !ps->allowed || !ps->maintenance)
		return;
	initStringInfo(&details);
	appendStringInfoString(&details, "{\"role\": ");
	escape_json(&details, GetUserNameFromId(userid, false));
	appendStringInfoString(&details, ", \"session_user\": ");
	escape_json(&details, GetUserNameFromId(GetSessionUserId(), false));
	appendStringInfoChar(&details, '}');
	pdp_audit_durable("maintenance_purpose", pdp_purpose, NULL, details.data);
	pfree(details.data);
	maintenance_recorded_user = userid;
	strlcpy(maintenance_recorded_purpose, pdp_purpose, NAMEDATALEN);
}

/*
 * The current statement's purpose flags, worked out once per statement
 * (and again if the role or the declared purpose changes within it).  The
 * first use in a statement takes in invalidations other sessions
 * committed, so their changes apply from their next statement on.
 */
int
pdp_statement_flags(bool notice)
{
	LocalTransactionId lxid = MyProc->lxid;
	TimestampTz stmt = GetCurrentStatementStartTimestamp();
	Oid			userid = GetUserId();
	const char *purpose = pdp_purpose ? pdp_purpose : "";

	if (OidIsValid(pdp_owner_statement_relid))
		return PURPOSE_VISIBLE | PURPOSE_EXEMPT;	/* pdp's own statement (owner.c) */
	if (likely(stmt_state.lxid == lxid && stmt_state.stmt_start == stmt &&
			   stmt_state.userid == userid && strcmp(stmt_state.purpose, purpose) == 0))
		return stmt_state.flags;

	AcceptInvalidationMessages();
	stmt_state.lxid = InvalidLocalTransactionId;
	stmt_state.flags = declared_purpose_flags(notice);
	stmt_state.userid = userid;
	strlcpy(stmt_state.purpose, purpose, sizeof(stmt_state.purpose));
	stmt_state.stmt_start = stmt;
	stmt_state.lxid = lxid;
	return stmt_state.flags;
}

/*
 * Statement trigger on pdp.purpose and pdp.purpose_grant (and their
 * replica-mode row twins): queue a relcache invalidation of the table,
 * delivered to every backend when this transaction commits (and to this
 * one at its next command).
 */
Datum
pdp_config_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pdp._config_changed() must be called as a trigger")));
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(NULL);
}


/*
 * pdp._outer_user() RETURNS regrole: the role the session acts as (what SET
 * ROLE set), which SECURITY DEFINER functions do not change.  The
 * protection functions run as the extension's owner and check ownership for
 * this role.
 */
PG_FUNCTION_INFO_V1(pdp_outer_user);

Datum
pdp_outer_user(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(GetOuterUserId());
}

/*
 * pdp._protection_ddl(on boolean) RETURNS boolean: while pdp's own
 * protection functions create or drop its policies, the protection guard
 * stands aside.  Sets the switch (scoped to the subtransaction, so an error
 * cannot leave it on) and returns its previous value; with NULL, only
 * returns it.  Callable by the extension's owner only (the protection
 * functions run as that owner).
 */
static bool protection_ddl = false;

PG_FUNCTION_INFO_V1(pdp_protection_ddl);

Datum
pdp_protection_ddl(PG_FUNCTION_ARGS)
{
	bool		prev = protection_ddl;

	if (!PG_ARGISNULL(0))
	{
		if (PG_GETARG_BOOL(0))
			pdp_scoped_set(&protection_ddl);
		else
			pdp_scoped_clear(&protection_ddl);
	}
	PG_RETURN_BOOL(prev);
}
