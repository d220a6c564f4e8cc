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
 * transaction.  Consents are cached the same way, per purpose, as a hash
 * set of consenting subjects (consent_state changes invalidate it), so the
 * per-row test is one hash probe.  The caches hold the latest committed
 * state, not the statement's snapshot: a withdrawal applies from every
 * session's next statement on, whatever its isolation level.
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
#include "utils/uuid.h"
#include "common/hashfn.h"

#include "pdp_crypto.h"

PG_FUNCTION_INFO_V1(pdp_visible_int8);
PG_FUNCTION_INFO_V1(pdp_visible_text);
PG_FUNCTION_INFO_V1(pdp_visible_uuid);
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

/*
 * A subject's identifier in text form, as a hash key.  Identifiers up to
 * SUBJECT_INLINE bytes (every bigint and uuid, most text ids) are stored as
 * they are; longer ones by their SHA-256, flagged in len.
 */
#define SUBJECT_INLINE 56
#define SUBJECT_DIGEST_FLAG 0x80000000u

typedef struct SubjectKey
{
	uint32		len;
	char		bytes[SUBJECT_INLINE];
} SubjectKey;

typedef struct SubjectEntry
{
	SubjectKey	key;
	TimestampTz valid_until;	/* DT_NOEND for a consent that never expires */
} SubjectEntry;

/* Consents to one purpose: the subjects that hold one. */
typedef struct ConsentSet
{
	char		purpose[NAMEDATALEN];	/* hash key */
	HTAB	   *subjects;
} ConsentSet;

/* One context per cache, reset when that cache is invalidated. */
static MemoryContext purpose_cxt = NULL;
static MemoryContext restricted_cxt = NULL;
static MemoryContext consent_cxt = NULL;
static HTAB *purpose_cache = NULL;
static HTAB *restricted_cache = NULL;
static HTAB *consent_cache = NULL;	/* purpose name -> ConsentSet */
static Oid	purpose_relid = InvalidOid;
static Oid	grant_relid = InvalidOid;
static Oid	restriction_relid = InvalidOid;
static Oid	consent_relid = InvalidOid;

/* What the current statement declared, worked out on its first row. */
typedef struct StatementState
{
	LocalTransactionId lxid;
	TimestampTz stmt_start;
	int			flags;
	ConsentSet *consents;		/* when the purpose needs consent */
} StatementState;

static StatementState stmt_state = {InvalidLocalTransactionId, 0, 0, NULL};

static void subject_key(const char *s, size_t len, SubjectKey *key);
static void ensure_restricted_cache(void);
static ConsentSet *consent_set(const char *purpose);
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
	if ((relid == InvalidOid || relid == consent_relid) && consent_cache != NULL)
	{
		consent_cache = NULL;
		MemoryContextReset(consent_cxt);
	}
	/* Whatever changed, the next row works out its statement state again. */
	stmt_state.lxid = InvalidLocalTransactionId;
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
		consent_cxt = AllocSetContextCreate(TopMemoryContext, "pdp_ext consent cache",
											ALLOCSET_DEFAULT_SIZES);
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
 * The declared purpose as flags, for the current role: 0 (nothing is
 * visible, with a NOTICE once per statement) when no purpose is declared;
 * an error when it is unknown or the role may not declare it.
 */
static int
declared_purpose_flags(void)
{
	PurposeEntry *e;
	int			flags = PURPOSE_VISIBLE;

	if (pdp_purpose == NULL || pdp_purpose[0] == '\0')
	{
		TimestampTz stmt = GetCurrentStatementStartTimestamp();

		/* Once per statement, and from the leader only, not each parallel worker. */
		if (!IsParallelWorker() && (noticed_lxid != MyProc->lxid || noticed_stmt != stmt))
		{
			noticed_lxid = MyProc->lxid;
			noticed_stmt = stmt;
			ereport(NOTICE,
					(errmsg("no purpose declared: rows of tables protected by pdp_ext are hidden"),
					 errhint("Declare why this session reads personal data, for example SET pdp.purpose = 'courses'.")));
		}
		return 0;
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
	return flags;
}

/*
 * Work out, once per statement (and again if the role, the declared
 * purpose or the cached tables change), what the visibility test needs.
 * The first call of a statement also takes in invalidations other sessions
 * committed, so their consent changes apply from their next statement on.
 */
static inline void
ensure_statement_state(void)
{
	static Oid	state_user = InvalidOid;
	static char state_purpose[NAMEDATALEN] = "";
	LocalTransactionId lxid = MyProc->lxid;
	TimestampTz stmt = GetCurrentStatementStartTimestamp();
	const char *purpose = pdp_purpose ? pdp_purpose : "";

	if (likely(stmt_state.lxid == lxid && stmt_state.stmt_start == stmt &&
			   state_user == GetUserId() && strcmp(state_purpose, purpose) == 0))
		return;

	AcceptInvalidationMessages();
	stmt_state.lxid = InvalidLocalTransactionId;
	stmt_state.flags = declared_purpose_flags();
	stmt_state.consents = (stmt_state.flags & PURPOSE_NEEDS_CONSENT) ? consent_set(purpose) : NULL;
	if (stmt_state.flags != 0 && !(stmt_state.flags & PURPOSE_EXEMPT))
		ensure_restricted_cache();
	state_user = GetUserId();
	strlcpy(state_purpose, purpose, sizeof(state_purpose));
	stmt_state.stmt_start = stmt;
	stmt_state.lxid = lxid;
}

/* Is a row of this subject visible for the statement's declared purpose? */
static bool
subject_visible(const SubjectKey *key)
{
	if (stmt_state.flags == 0)
		return false;
	if (stmt_state.consents != NULL)
	{
		SubjectEntry *e = hash_search(stmt_state.consents->subjects, key, HASH_FIND, NULL);

		if (e == NULL)
			return false;
		if (e->valid_until != DT_NOEND && e->valid_until <= GetCurrentTransactionStartTimestamp())
			return false;
	}
	if (!(stmt_state.flags & PURPOSE_EXEMPT) && hash_get_num_entries(restricted_cache) > 0 &&
		hash_search(restricted_cache, key, HASH_FIND, NULL) != NULL)
		return false;
	return true;
}

/*
 * pdp._visible(subject) RETURNS boolean, for bigint (and integer), text
 * (and varchar) and uuid subjects: the per-row test of the policies that
 * pdp.protect_table creates.  A NULL subject names nobody: visible whenever
 * any row is.
 */
Datum
pdp_visible_int8(PG_FUNCTION_ARGS)
{
	SubjectKey	key;

	ensure_statement_state();
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(stmt_state.flags != 0);
	key.len = (uint32) pg_lltoa(PG_GETARG_INT64(0), key.bytes);
	PG_RETURN_BOOL(subject_visible(&key));
}

Datum
pdp_visible_text(PG_FUNCTION_ARGS)
{
	SubjectKey	key;
	text	   *t;

	ensure_statement_state();
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(stmt_state.flags != 0);
	t = PG_GETARG_TEXT_PP(0);
	subject_key(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &key);
	PG_RETURN_BOOL(subject_visible(&key));
}

Datum
pdp_visible_uuid(PG_FUNCTION_ARGS)
{
	static const char hexdigits[] = "0123456789abcdef";
	SubjectKey	key;
	pg_uuid_t  *uuid;
	int			p = 0;

	ensure_statement_state();
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(stmt_state.flags != 0);
	uuid = PG_GETARG_UUID_P(0);
	for (int i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			key.bytes[p++] = '-';
		key.bytes[p++] = hexdigits[uuid->data[i] >> 4];
		key.bytes[p++] = hexdigits[uuid->data[i] & 0x0F];
	}
	key.len = (uint32) p;
	PG_RETURN_BOOL(subject_visible(&key));
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

static uint32
subject_hash(const void *key, Size keysize)
{
	const SubjectKey *k = (const SubjectKey *) key;

	return hash_bytes((const unsigned char *) k->bytes, (int) (k->len & ~SUBJECT_DIGEST_FLAG)) ^ (k->len >> 31);
}

static int
subject_match(const void *key1, const void *key2, Size keysize)
{
	const SubjectKey *a = (const SubjectKey *) key1;
	const SubjectKey *b = (const SubjectKey *) key2;

	return (a->len == b->len &&
			memcmp(a->bytes, b->bytes, a->len & ~SUBJECT_DIGEST_FLAG) == 0) ? 0 : 1;
}

/* Key for the text form s[0..len). */
static void
subject_key(const char *s, size_t len, SubjectKey *key)
{
	if (len <= SUBJECT_INLINE)
	{
		key->len = (uint32) len;
		memcpy(key->bytes, s, len);
		return;
	}
	if (!pdp_sha256((const unsigned char *) s, len, (unsigned char *) key->bytes))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not compute SHA-256")));
	key->len = 32 | SUBJECT_DIGEST_FLAG;
}

static HTAB *
subject_table(const char *name, MemoryContext cxt, long size)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(SubjectKey);
	ctl.entrysize = sizeof(SubjectEntry);
	ctl.hash = subject_hash;
	ctl.match = subject_match;
	ctl.hcxt = cxt;
	return hash_create(name, size, &ctl, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

static void
load_restriction_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, 1, desc, &isnull);
	text	   *t;
	SubjectKey	key;
	SubjectEntry *e;

	if (isnull)
		return;
	t = DatumGetTextPP(d);
	subject_key(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &key);
	e = hash_search(restricted_cache, &key, HASH_ENTER, NULL);
	e->valid_until = DT_NOEND;
}

static void
ensure_restricted_cache(void)
{
	ensure_callback();
	if (restricted_cache != NULL)
		return;
	restriction_relid = pdp_table_oid("restriction");
	if (!OidIsValid(restriction_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext is not installed in this database")));
	restricted_cache = subject_table("pdp_ext restricted subjects", restricted_cxt, 64);
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

typedef struct ConsentLoad
{
	const char *purpose;
	HTAB	   *subjects;
	AttrNumber	purpose_att;
	AttrNumber	until_att;
} ConsentLoad;

static void
load_consent_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	ConsentLoad *cl = (ConsentLoad *) arg;
	bool		isnull;
	text	   *t;
	SubjectKey	key;
	SubjectEntry *e;
	Datum		until;

	t = DatumGetTextPP(heap_getattr(tuple, cl->purpose_att, desc, &isnull));
	if (isnull || VARSIZE_ANY_EXHDR(t) != strlen(cl->purpose) ||
		memcmp(VARDATA_ANY(t), cl->purpose, VARSIZE_ANY_EXHDR(t)) != 0)
		return;
	t = DatumGetTextPP(heap_getattr(tuple, 1, desc, &isnull));
	if (isnull)
		return;
	subject_key(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &key);
	until = heap_getattr(tuple, cl->until_att, desc, &isnull);
	e = hash_search(cl->subjects, &key, HASH_ENTER, NULL);
	e->valid_until = isnull ? DT_NOEND : DatumGetTimestampTz(until);
}

/* The subjects consenting to a purpose, loaded on first use. */
static ConsentSet *
consent_set(const char *purpose)
{
	ConsentSet *cs;
	bool		found;

	ensure_callback();
	if (consent_cache == NULL)
	{
		HASHCTL		ctl;

		consent_relid = pdp_table_oid("consent_state");
		if (!OidIsValid(consent_relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("pdp_ext is not installed in this database")));
		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(ConsentSet);
		ctl.hcxt = consent_cxt;
		consent_cache = hash_create("pdp_ext consents", 8, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	cs = hash_search(consent_cache, purpose, HASH_ENTER, &found);
	if (!found)
	{
		ConsentLoad cl;

		cs->subjects = NULL;
		cl.purpose = purpose;
		cl.subjects = subject_table("pdp_ext consenting subjects", consent_cxt, 1024);
		cl.purpose_att = get_attnum(consent_relid, "purpose");
		cl.until_att = get_attnum(consent_relid, "valid_until");
		PG_TRY();
		{
			scan_pdp_table(consent_relid, load_consent_row, &cl);
		}
		PG_CATCH();
		{
			hash_search(consent_cache, purpose, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
		cs->subjects = cl.subjects;
	}
	return cs;
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
			SubjectKey	key;

			if (attnum <= 0)
				continue;
			value = heap_getattr(old, attnum, desc, &isnull);
			if (isnull)
				continue;
			getTypeOutputInfo(TupleDescAttr(desc, attnum - 1)->atttypid, &typoutput, &varlena);
			s = OidOutputFunctionCall(typoutput, value);
			subject_key(s, strlen(s), &key);
			pfree(s);
			if (hash_search(restricted_cache, &key, HASH_FIND, NULL) != NULL)
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
