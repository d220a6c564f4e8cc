/*-------------------------------------------------------------------------
 * consent.c
 *	  The declared purpose (pdp.purpose), its per-statement check for the
 *	  row-level security policies, and the refusal of writes to restricted
 *	  subjects' rows.
 *
 * Purposes, purpose grants and restrictions are small tables; each backend
 * caches them in full and drops the cache when another session's change
 * commits: a statement trigger on those tables queues a relcache
 * invalidation (sent at commit), and the relcache callback here clears the
 * cache.  pdp._purpose_flags() also accepts pending invalidations first, so
 * a change is seen by every session's next statement even inside a long
 * transaction.  Consents themselves are not cached: the policies test them
 * with SQL the planner can hash or probe, under the statement's snapshot.
 *
 * The caches are read with plain heap scans, not SPI: the check hook of
 * pdp.purpose runs them, and the reader need not have rights on pdp's tables.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/sinval.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pdp_crypto.h"

PG_FUNCTION_INFO_V1(pdp_purpose_flags);
PG_FUNCTION_INFO_V1(pdp_config_changed);
PG_FUNCTION_INFO_V1(pdp_refuse_restricted);

#define PURPOSE_VISIBLE		1
#define PURPOSE_NEEDS_CONSENT 2
#define PURPOSE_EXEMPT		4


typedef struct PurposeEntry
{
	char		name[NAMEDATALEN];	/* hash key; purposes are at most 63 chars */
	bool		requires_consent;
	bool		restriction_exempt;
	int			nroles;
	Oid		   *roles;			/* roles that may declare it */
} PurposeEntry;

typedef struct RestrictedEntry
{
	unsigned char digest[32];	/* SHA-256 of the subject's text form */
} RestrictedEntry;

/* One context per cache, reset when that cache is invalidated. */
static MemoryContext purpose_cxt = NULL;
static MemoryContext restricted_cxt = NULL;
static HTAB *purpose_cache = NULL;
static HTAB *restricted_cache = NULL;
static Oid	purpose_relid = InvalidOid;
static Oid	grant_relid = InvalidOid;
static Oid	restriction_relid = InvalidOid;
static bool callback_registered = false;

/* Statement at which the "no purpose declared" notice was last given. */
static LocalTransactionId noticed_lxid = InvalidLocalTransactionId;
static TimestampTz noticed_stmt = 0;

static void
consent_relcache_callback(Datum arg, Oid relid)
{
	if ((relid == InvalidOid || relid == purpose_relid || relid == grant_relid) && purpose_cache != NULL)
	{
		purpose_cache = NULL;
		MemoryContextReset(purpose_cxt);
	}
	if ((relid == InvalidOid || relid == restriction_relid) && restricted_cache != NULL)
	{
		restricted_cache = NULL;
		MemoryContextReset(restricted_cxt);
	}
}

static void
ensure_callback(void)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(consent_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (purpose_cxt == NULL)
	{
		purpose_cxt = AllocSetContextCreate(TopMemoryContext, "pdp_ext purpose cache",
											ALLOCSET_SMALL_SIZES);
		restricted_cxt = AllocSetContextCreate(TopMemoryContext, "pdp_ext restriction cache",
											   ALLOCSET_SMALL_SIZES);
	}
}

/* OID of pdp.<name>, or InvalidOid when pdp_ext is not in this database. */
static Oid
pdp_table_oid(const char *name)
{
	Oid			nsp = get_namespace_oid("pdp", true);

	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

typedef void (*row_callback) (HeapTuple tuple, TupleDesc desc, void *arg);

/*
 * Scan a whole pdp table under a fresh catalog snapshot: it sees every
 * committed change, and unlike GetLatestSnapshot() it does not fix the
 * transaction's snapshot as a side effect (which would break a later SET
 * TRANSACTION ISOLATION LEVEL, or GUC restore in a parallel worker).
 */
static void
scan_pdp_table(Oid relid, row_callback cb, void *arg)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Snapshot	snap = RegisterSnapshot(GetCatalogSnapshot(relid));
	TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
	HeapTuple	tuple;

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
		cb(tuple, RelationGetDescr(rel), arg);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
}

static char *
text_attr(HeapTuple tuple, TupleDesc desc, AttrNumber attnum, bool *isnull)
{
	Datum		d = heap_getattr(tuple, attnum, desc, isnull);

	return *isnull ? NULL : TextDatumGetCString(d);
}

static void
load_purpose_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	bool		isnull;
	char	   *name = text_attr(tuple, desc, 1, &isnull);
	PurposeEntry *e;
	bool		found;

	if (isnull || strlen(name) >= NAMEDATALEN)
		return;
	e = hash_search(purpose_cache, name, HASH_ENTER, &found);
	e->requires_consent = DatumGetBool(heap_getattr(tuple, get_attnum(purpose_relid, "requires_consent"), desc, &isnull));
	e->restriction_exempt = DatumGetBool(heap_getattr(tuple, get_attnum(purpose_relid, "restriction_exempt"), desc, &isnull));
	if (!found)
	{
		e->nroles = 0;
		e->roles = NULL;
	}
}

static void
load_grant_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	bool		isnull;
	Oid			role = DatumGetObjectId(heap_getattr(tuple, 1, desc, &isnull));
	char	   *name = text_attr(tuple, desc, 2, &isnull);
	PurposeEntry *e;

	if (isnull || strlen(name) >= NAMEDATALEN)
		return;
	e = hash_search(purpose_cache, name, HASH_FIND, NULL);
	if (e == NULL)
		return;
	e->roles = e->roles == NULL ? MemoryContextAlloc(purpose_cxt, sizeof(Oid))
		: repalloc(e->roles, (e->nroles + 1) * sizeof(Oid));
	e->roles[e->nroles++] = role;
}

/* Load purposes and grants; false if pdp_ext is not installed here. */
static bool
ensure_purpose_cache(void)
{
	HASHCTL		ctl;
	MemoryContext old;

	ensure_callback();
	if (purpose_cache != NULL)
		return true;
	purpose_relid = pdp_table_oid("purpose");
	grant_relid = pdp_table_oid("purpose_grant");
	if (!OidIsValid(purpose_relid) || !OidIsValid(grant_relid))
		return false;

	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(PurposeEntry);
	ctl.hcxt = purpose_cxt;
	purpose_cache = hash_create("pdp_ext purposes", 32, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	old = MemoryContextSwitchTo(purpose_cxt);
	PG_TRY();
	{
		scan_pdp_table(purpose_relid, load_purpose_row, NULL);
		scan_pdp_table(grant_relid, load_grant_row, NULL);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		purpose_cache = NULL;
		MemoryContextReset(purpose_cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return true;
}

static bool
role_may_declare(PurposeEntry *e, Oid userid)
{
	for (int i = 0; i < e->nroles; i++)
		if (has_privs_of_role(userid, e->roles[i]))
			return true;
	return false;
}

/*
 * Check hook of pdp.purpose: inside a transaction, refuse a purpose that is
 * unknown or that the current role may not declare.  Outside one (the
 * configuration file, role defaults at login) the value is checked at use.
 */
bool
pdp_check_purpose(char **newval, void **extra, GucSource source)
{
	PurposeEntry *e;

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
	if (!ensure_purpose_cache())
		return true;			/* pdp_ext not installed in this database */
	e = hash_search(purpose_cache, *newval, HASH_FIND, NULL);
	if (e == NULL)
	{
		GUC_check_errcode(ERRCODE_UNDEFINED_OBJECT);
		GUC_check_errmsg("unknown purpose");
		GUC_check_errhint("pdp.purposes lists the defined purposes.");
		return false;
	}
	if (!role_may_declare(e, GetUserId()))
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
 * pdp._purpose_flags() RETURNS integer
 * Called once per statement (an initplan) by every protected table's
 * policies.  0 hides every row; otherwise bit 1 is set, bit 2 when the
 * purpose needs consent, bit 4 when restricted subjects stay visible.
 */
Datum
pdp_purpose_flags(PG_FUNCTION_ARGS)
{
	PurposeEntry *e;
	int			flags = PURPOSE_VISIBLE;

	AcceptInvalidationMessages();
	if (pdp_purpose == NULL || pdp_purpose[0] == '\0')
	{
		TimestampTz stmt = GetCurrentStatementStartTimestamp();

		if (noticed_lxid != MyProc->lxid || noticed_stmt != stmt)
		{
			noticed_lxid = MyProc->lxid;
			noticed_stmt = stmt;
			ereport(NOTICE,
					(errmsg("no purpose declared: rows of tables protected by pdp_ext are hidden"),
					 errhint("Declare why this session reads personal data, for example SET pdp.purpose = 'courses'.")));
		}
		PG_RETURN_INT32(0);
	}
	if (!ensure_purpose_cache())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext is not installed in this database")));
	e = strlen(pdp_purpose) < NAMEDATALEN ? hash_search(purpose_cache, pdp_purpose, HASH_FIND, NULL) : NULL;
	if (e == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown purpose \"%s\"", pdp_purpose),
				 errhint("pdp.purposes lists the defined purposes.")));
	/* Checked again here: SET ROLE after SET pdp.purpose must not carry it over. */
	if (!role_may_declare(e, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not declare purpose \"%s\"",
						GetUserNameFromId(GetUserId(), false), pdp_purpose),
				 errhint("pdp.allow_purpose grants a role a purpose.")));
	if (e->requires_consent)
		flags |= PURPOSE_NEEDS_CONSENT;
	if (e->restriction_exempt)
		flags |= PURPOSE_EXEMPT;
	PG_RETURN_INT32(flags);
}

/*
 * Statement trigger on pdp.purpose, pdp.purpose_grant and pdp.restriction:
 * queue a relcache invalidation of the table, delivered to every backend
 * when this transaction commits (and to this one at its next command).
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

static void
subject_digest(const char *s, size_t len, unsigned char out[32])
{
	if (!pdp_sha256((const unsigned char *) s, len, out))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not compute SHA-256")));
}

static void
load_restriction_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, 1, desc, &isnull);
	text	   *t;
	RestrictedEntry key;

	if (isnull)
		return;
	t = DatumGetTextPP(d);
	subject_digest(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), key.digest);
	hash_search(restricted_cache, key.digest, HASH_ENTER, NULL);
}

static void
ensure_restricted_cache(void)
{
	HASHCTL		ctl;

	ensure_callback();
	if (restricted_cache != NULL)
		return;
	restriction_relid = pdp_table_oid("restriction");
	if (!OidIsValid(restriction_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext is not installed in this database")));
	ctl.keysize = 32;
	ctl.entrysize = sizeof(RestrictedEntry);
	ctl.hcxt = restricted_cxt;
	restricted_cache = hash_create("pdp_ext restricted subjects", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	PG_TRY();
	{
		scan_pdp_table(restriction_relid, load_restriction_row, NULL);
	}
	PG_CATCH();
	{
		restricted_cache = NULL;
		MemoryContextReset(restricted_cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * BEFORE UPDATE OR DELETE row trigger installed by pdp.protect_table; its
 * arguments name the subject columns.  Refuses the write when any of the
 * old row's subjects is restricted, whoever writes (owners too).
 */
Datum
pdp_refuse_restricted(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	old;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_UPDATE(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pdp._refuse_restricted() must fire BEFORE UPDATE OR DELETE FOR EACH ROW")));

	AcceptInvalidationMessages();
	ensure_restricted_cache();
	desc = RelationGetDescr(td->tg_relation);
	old = td->tg_trigtuple;
	if (hash_get_num_entries(restricted_cache) > 0 && !pdp_erasure_in_progress)
	{
		for (int i = 0; i < td->tg_trigger->tgnargs; i++)
		{
			int			attnum = SPI_fnumber(desc, td->tg_trigger->tgargs[i]);
			bool		isnull;
			Datum		value;
			Oid			typoutput;
			bool		varlena;
			char	   *s;
			RestrictedEntry key;

			if (attnum <= 0)
				continue;
			value = heap_getattr(old, attnum, desc, &isnull);
			if (isnull)
				continue;
			getTypeOutputInfo(TupleDescAttr(desc, attnum - 1)->atttypid, &typoutput, &varlena);
			s = OidOutputFunctionCall(typoutput, value);
			subject_digest(s, strlen(s), key.digest);
			pfree(s);
			if (hash_search(restricted_cache, key.digest, HASH_FIND, NULL) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("cannot %s a row of a restricted subject in table \"%s\"",
								TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "update" : "delete",
								RelationGetRelationName(td->tg_relation)),
						 errdetail("Processing of this subject's data is restricted; only storage is allowed."),
						 errhint("pdp.lift_restriction ends the restriction.")));
		}
	}
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
}
