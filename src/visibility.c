/*-------------------------------------------------------------------------
 * visibility.c
 *	  The row test of protected tables (pdp._visible) and the refusal of
 *	  writes to restricted subjects' rows (pdp._refuse_restricted).
 *
 * pdp.protect_table's policies call pdp._visible(subject) for each row.
 * It answers from the declared purpose's flags (consent.c) and, when the
 * purpose needs consent or is not exempt from restriction, from
 * pdp.consent_state and pdp.restriction read under the query's own active
 * snapshot.  So one statement sees one consent state, a REPEATABLE READ or
 * SERIALIZABLE transaction sees the state of its snapshot, and a change
 * another session commits is seen by the next statement that takes a
 * snapshot after it, with no invalidation involved.
 * On a Citus worker the two tables are the local placements of pdp's
 * reference-table mirror of them (citus_state.c), resolved once per
 * snapshot, and read the same way.
 *
 * How a subject's state is read
 * -----------------------------
 * Nothing is kept across snapshots.  For each snapshot (in practice, each
 * statement) the first rows are answered by index probes: the primary key
 * of pdp.consent_state (subject, purpose) and of pdp.restriction.  A
 * primary-key lookup on a protected table costs two probes.  Once a
 * statement has probed about as often as reading the whole table would cost
 * (4 probes per block of it), the subjects consenting to the declared
 * purpose (or the restricted subjects) are read once into a set for the
 * rest of the snapshot: integer ids as a bitmap over their range, or a
 * sorted array when the range is too wide (src/core/subjectset.c), and
 * other identifiers in a hash table.  A set that would exceed
 * pdp.visibility_memory is not built (the statement goes on probing), so a
 * backend never holds more than that, whatever the number of consents.
 * The processes of a parallel query share one set: the first of them to
 * reach the threshold builds it into dynamic shared memory, the others map
 * it (see "Sharing sets within a parallel group" below).
 *
 * Memory
 * ------
 * Sets live in "pdp_ext visibility sets" (a child of TopMemoryContext),
 * one child context per set, made when the set is built and dropped when
 * the next snapshot is seen or the transaction ends (vis_xact_callback), so
 * that a backend holds no set between transactions.  Nothing
 * in them points to anything else, and no callback touches them, so an
 * invalidation or an error during a build cannot leave a dangling pointer:
 * a set is published only once it is complete.
 *
 * A relation with no blocks holds no row any snapshot can see (a row
 * visible to the statement's snapshot sits on a page that exists until
 * vacuum finds the row dead to every snapshot, this one included), so when
 * the block count read for the threshold is zero the probes are skipped:
 * the usual pdp.restriction of a platform with no restricted learner costs
 * a primary-key lookup one block count instead of an index probe.  (For
 * pdp.consent_state the count is read only after VIS_MIN_PROBES probes.)
 *
 * Locks: every probe opens its relation and index under AccessShareLock
 * and keeps the lock to the end of the transaction, as a query keeps its
 * locks on the tables it reads; the next probe then finds it in the local
 * lock table.
 *
 * The write guard probes pdp.restriction's primary key for each subject of
 * each updated or deleted row (in both spellings of an integer, as the row
 * test does; not at all while the table has no blocks), under the catalog snapshot (never older than
 * the statement's, and it sees this transaction's own changes).
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/parallel.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_inherits.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "optimizer/cost.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/condition_variable.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/itemptr.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "citus_state.h"
#include "pdp_crypto.h"
#include "subject.h"
#include "subjectset.h"

PG_FUNCTION_INFO_V1(pdp_visible_int8);
PG_FUNCTION_INFO_V1(pdp_visible_text);
PG_FUNCTION_INFO_V1(pdp_visible_uuid);
PG_FUNCTION_INFO_V1(pdp_refuse_restricted);

/* pdp.visibility_memory, in kB: the most one backend's sets may take. */
int			pdp_visibility_memory_kb = 8192;

/*
 * A subject's identifier in text form, as a hash key.  Identifiers up to
 * SUBJECT_INLINE bytes are stored as they are; longer ones by their
 * SHA-256, flagged in len.
 */
#define SUBJECT_INLINE 56
#define SUBJECT_DIGEST_FLAG 0x80000000u

typedef struct SubjectKey
{
	uint32		len;
	char		bytes[SUBJECT_INLINE];
} SubjectKey;

/* What a hash entry costs, for the memory budget (entry plus overhead). */
#define TEXT_ENTRY_COST (sizeof(SubjectKey) + 48)

typedef enum SetState
{
	SET_PROBING,				/* answering by index probes */
	SET_BUILT,					/* answering from the set */
	SET_TOO_LARGE				/* would exceed the budget: probing for good */
} SetState;

/* The consenting or the restricted subjects, for one snapshot. */
typedef struct VisSet
{
	SetState	state;
	int			which;			/* VIS_CONSENT or VIS_RESTRICTED: its shared entry */
	uint64		probes;
	uint64		threshold;		/* probes after which the set is built; 0 = not yet known */
	bool		rel_empty;		/* the relation had no blocks when threshold was set */
	MemoryContext cxt;			/* holds what the set holds */
	Size		bytes;			/* counted against the budget */
	pdp_int_set ints;			/* canonical integer ids */
	HTAB	   *texts;			/* every other identifier; NULL when none */
	/* A set shared by a parallel group lives in a DSM segment instead: */
	dsm_segment *seg;			/* mapped (pinned mapping), or NULL */
	const SubjectKey *text_keys;	/* sorted, when texts is NULL */
	Size		ntexts;
} VisSet;

#define VIS_CONSENT 0
#define VIS_RESTRICTED 1

#define MAX_SNAPSHOT_XIDS 64

/*
 * What a parallel group's shared sets belong to: the group's leader, its
 * transaction and statement, the whole content of the snapshot the group
 * shares, and the declared purpose.  A set is a function of exactly these
 * (and of now(), the transaction's start), so two processes with equal
 * identities read equal sets.  Zeroed before it is filled, so that memcmp
 * compares it.
 */
typedef struct VisIdentity
{
	int			leader_pid;
	TimestampTz xact_start;
	TimestampTz stmt_start;
	TransactionId xmin;
	TransactionId xmax;
	CommandId	curcid;
	uint32		xcnt;
	int32		subxcnt;
	bool		suboverflowed;
	bool		takenDuringRecovery;
	uint32		xip_hash;
	char		purpose[NAMEDATALEN];
} VisIdentity;

/* Which snapshot the sets belong to, and the sets. */
typedef struct VisState
{
	bool		valid;
	LocalTransactionId lxid;
	TimestampTz stmt_start;
	Snapshot	snap;			/* identity only; never dereferenced later */
	TransactionId xmin;
	TransactionId xmax;
	CommandId	curcid;
	uint32		xcnt;
	int32		subxcnt;
	char		purpose[NAMEDATALEN];
	MemoryContext cxt;
	VisSet		consent;
	VisSet		restricted;
	int			slot;			/* the group's shared slot, or -1: not shared */
	VisIdentity id;				/* when slot >= 0 */
	/* Where they are read (citus_state.c), resolved with the snapshot. */
	Oid			consent_relid;
	Oid			consent_pkey;
	Oid			restriction_relid;
	Oid			restriction_pkey;
	AttrNumber	valid_until_att;	/* of the consent relation */
} VisState;

static VisState vis = {.slot = -1};

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
	memset(key, 0, sizeof(*key));
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

/* A probe's key as text: on the stack when short, else palloc'd. */
#define PROBE_TEXT_INLINE 64
typedef union ProbeText
{
	int32		align;			/* a varlena header's alignment */
	char		data[VARHDRSZ + PROBE_TEXT_INLINE];
} ProbeText;

static text *
probe_text(ProbeText *buf, const char *s)
{
	size_t		len = strlen(s);

	if (len > PROBE_TEXT_INLINE)
		return cstring_to_text_with_len(s, (int) len);
	SET_VARSIZE(buf->data, VARHDRSZ + len);
	memcpy(buf->data + VARHDRSZ, s, len);
	return (text *) buf->data;
}

/*
 * Does the unique index indexoid on relid hold (key) or (key, key2)?
 * Under snap, or a fresh catalog snapshot when snap is NULL (which sees
 * this transaction's own changes).  With until_att, the found row's
 * timestamp in that column must be NULL or later than now().
 */
static bool
key_probe(Oid relid, Oid indexoid, const char *key, const char *key2,
		  Snapshot snap, AttrNumber until_att)
{
	Relation	heap = table_open(relid, AccessShareLock);
	Relation	index = index_open(indexoid, AccessShareLock);
	Snapshot	s = RegisterSnapshot(snap ? snap : GetCatalogSnapshot(relid));
	ScanKeyData skey[2];
	IndexScanDesc scan;
	TupleTableSlot *slot;
	bool		found;
	int			nkeys = key2 ? 2 : 1;
	ProbeText	b1,
				b2;
	text	   *t = probe_text(&b1, key);
	text	   *t2 = key2 ? probe_text(&b2, key2) : NULL;

	/* The index's own collations: its order is theirs. */
	ScanKeyEntryInitialize(&skey[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(t));
	if (key2)
		ScanKeyEntryInitialize(&skey[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
							   index->rd_indcollation[1], F_TEXTEQ, PointerGetDatum(t2));
	scan = index_beginscan(heap, index, s, nkeys, 0);
	index_rescan(scan, skey, nkeys, NULL, 0);
	slot = table_slot_create(heap, NULL);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found && until_att > 0)
	{
		bool		isnull;
		Datum		until = slot_getattr(slot, until_att, &isnull);

		if (!isnull && DatumGetTimestampTz(until) <= GetCurrentTransactionStartTimestamp())
			found = false;
	}
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	UnregisterSnapshot(s);
	/* Locks kept to the end of the transaction, as a query's are. */
	index_close(index, NoLock);
	table_close(heap, NoLock);
	if ((char *) t != b1.data)
		pfree(t);
	if (t2 && (char *) t2 != b2.data)
		pfree(t2);
	return found;
}

static bool
text_key_exists(Oid relid, Oid indexoid, const char *key, Snapshot snap)
{
	return key_probe(relid, indexoid, key, NULL, snap, 0);
}

/* Has the relation no blocks, so that no snapshot can see a row in it? */
static bool
relation_has_no_blocks(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);

	table_close(rel, NoLock);
	return nblocks == 0;
}

/*
 * Sharing sets within a parallel group
 * ------------------------------------
 * A parallel leader and its workers run one statement under one snapshot,
 * so they need one set, and reading it once per process made parallel
 * counts slower than serial ones.  Instead, the first process of the group
 * whose probes reach the threshold claims the set in the group's slot of
 * shared memory (indexed by the leader's pgprocno), builds it into a DSM
 * segment and publishes the segment's handle there; the others go on
 * probing, look at the slot every VIS_LOOK_EVERY probes, and once one of
 * them has claimed the set, wait for it (a condition variable) and map the
 * segment it publishes.  Each process's threshold is its share of the
 * serial one (time_to_build), so the group probes about as often as a
 * serial statement before the set is read.  A set that would not fit
 * pdp.visibility_memory is marked too large, and every process probes.
 *
 * A slot entry belongs to a VisIdentity (share_slot_for): leader, transaction,
 * statement, the snapshot's whole content and the purpose.  A process uses
 * an entry only when its own identity is equal, so a worker never reads a
 * set built under another snapshot, for another purpose, or by another
 * statement: one statement sees one consent state.
 *
 * Lifetime: a published segment is pinned (dsm_pin_segment), so it outlives
 * a worker that built it, and every process maps it with a pinned mapping
 * that it detaches when its own sets are next reset, or at the end of its
 * transaction (a worker's mapping goes when it exits).  The pin is dropped
 * (dsm_unpin_segment) by whoever replaces the entry for a new identity,
 * and by the leader at the end of its transaction or subtransaction abort
 * (vis_xact_callback), so at most one pair of sets per leader outlives the
 * statement that built them, until the leader's next parallel statement or
 * transaction end.
 *
 * Note about locking: the LWLock vis_shared->lock guards every field of
 * every slot except used, an atomic that lets the leader skip the lock at
 * transaction end when its slot is empty.  Lookups hold it shared, and map
 * a published segment while holding it, so the pin cannot be dropped
 * between reading the handle and mapping; claims, publications and
 * releases hold it exclusively.  Nobody holds it while reading tables.
 *
 * Without shared_preload_libraries there is no slot, and each process of a
 * parallel group reads its own set, as a serial statement does.
 */
typedef enum SharedState
{
	SHARED_NONE = 0,
	SHARED_BUILDING,			/* claimed by builder_pid */
	SHARED_READY,				/* in segment handle */
	SHARED_TOO_LARGE			/* would exceed the budget: everyone probes */
} SharedState;

typedef struct VisSharedEntry
{
	SharedState state;
	int			builder_pid;
	dsm_handle	handle;
} VisSharedEntry;

typedef struct VisSlot
{
	pg_atomic_uint32 used;		/* 1 while any entry is not SHARED_NONE */
	VisIdentity id;
	VisSharedEntry sets[2];		/* VIS_CONSENT, VIS_RESTRICTED */
} VisSlot;

typedef struct VisShared
{
	LWLock	   *lock;
	ConditionVariable settled;	/* broadcast when a claimed set is published or given up */
	int			nslots;
	VisSlot		slots[FLEXIBLE_ARRAY_MEMBER];
} VisShared;

/* The layout of a shared set's segment: this header, then its parts. */
#define VIS_SEGMENT_MAGIC 0x50445056	/* "PDPV" */

typedef struct VisSegment
{
	uint32		magic;
	VisIdentity id;
	Size		nids;
	int64		min;
	int64		max;
	Size		bitmap_bytes;	/* > 0: a bitmap over [min, ...) follows */
	Size		nsorted;		/* else this many sorted ids follow */
	Size		ntexts;			/* then this many sorted text keys */
	Size		bytes;			/* what the set counts against the budget */
} VisSegment;

#define VIS_LOOK_EVERY 64

static VisShared *vis_shared = NULL;
static shmem_request_hook_type vis_prev_shmem_request_hook = NULL;
static shmem_startup_hook_type vis_prev_shmem_startup_hook = NULL;

static Size
vis_shared_size(void)
{
	return add_size(offsetof(VisShared, slots), mul_size(sizeof(VisSlot), MaxBackends));
}

static void
vis_shmem_request(void)
{
	if (vis_prev_shmem_request_hook)
		vis_prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(vis_shared_size()));
	RequestNamedLWLockTranche("pdp_ext visibility", 1);
}

static void
vis_shmem_startup(void)
{
	bool		found;

	if (vis_prev_shmem_startup_hook)
		vis_prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	vis_shared = ShmemInitStruct("pdp_ext visibility", vis_shared_size(), &found);
	if (!found)
	{
		memset(vis_shared, 0, vis_shared_size());
		vis_shared->lock = &(GetNamedLWLockTranche("pdp_ext visibility"))->lock;
		ConditionVariableInit(&vis_shared->settled);
		vis_shared->nslots = MaxBackends;
		for (int i = 0; i < MaxBackends; i++)
			pg_atomic_init_u32(&vis_shared->slots[i].used, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Drop the pins of slot's entries and empty it.  Caller must hold
 * vis_shared->lock exclusively.
 */
static void
vis_release_slot(VisSlot *slot)
{
	for (int i = 0; i < 2; i++)
	{
		if (slot->sets[i].state == SHARED_READY)
			dsm_unpin_segment(slot->sets[i].handle);
		memset(&slot->sets[i], 0, sizeof(slot->sets[i]));
	}
	memset(&slot->id, 0, sizeof(slot->id));
	pg_atomic_write_u32(&slot->used, 0);
}

/*
 * In a leader (any process that is not a parallel worker): at the end of
 * the transaction, or when a subtransaction aborts (a build its error
 * interrupted may have left a claim), release the shared sets its groups
 * left in its slot.  Its workers have all exited by then.
 */
static void
vis_release_own_slot(void)
{
	VisSlot    *slot;

	if (vis_shared == NULL || IsParallelWorker() || MyProc == NULL ||
		MyProc->pgprocno < 0 || MyProc->pgprocno >= vis_shared->nslots)
		return;
	slot = &vis_shared->slots[MyProc->pgprocno];
	if (pg_atomic_read_u32(&slot->used) == 0)
		return;
	LWLockAcquire(vis_shared->lock, LW_EXCLUSIVE);
	vis_release_slot(slot);
	LWLockRelease(vis_shared->lock);
	ConditionVariableBroadcast(&vis_shared->settled);
}

static void detach_set(VisSet *set);
static void reset_set(VisSet *set, MemoryContext cxt);

static void
vis_xact_callback(XactEvent event, void *arg)
{
	/*
	 * Before commit, not after: an error there still aborts cleanly.  (A
	 * holdable cursor is read to its end before this event: no statement of
	 * the transaction runs after it.)
	 */
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE || event == XACT_EVENT_ABORT)
	{
		vis_release_own_slot();
		/*
		 * The transaction's statements are over: unmap shared sets and free
		 * the private ones now, so that a backend holds no set between
		 * transactions (an idle pooled connection keeps nothing).  The next
		 * statement starts afresh (ensure_vis_state).
		 */
		if (vis.valid || vis.consent.seg || vis.restricted.seg)
		{
			vis.valid = false;
			detach_set(&vis.consent);
			detach_set(&vis.restricted);
			if (vis.cxt)
				MemoryContextReset(vis.cxt);
			reset_set(&vis.consent, NULL);
			reset_set(&vis.restricted, NULL);
		}
	}
}

static void
vis_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		vis_release_own_slot();
}

/*
 * Called once from _PG_init: with shared_preload_libraries, the shared
 * slots; and the callbacks that release them.
 */
void
pdp_visibility_init(void)
{
	RegisterXactCallback(vis_xact_callback, NULL);
	RegisterSubXactCallback(vis_subxact_callback, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	vis_prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = vis_shmem_request;
	vis_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = vis_shmem_startup;
}

/*
 * The shared slot of this process's parallel group, with *id filled, or -1
 * when the statement is not part of a parallel query (or there is no
 * shared memory).
 */
static int
share_slot_for(Snapshot snap, const char *purpose, VisIdentity *id)
{
	PGPROC	   *leader;
	uint32		h;

	memset(id, 0, sizeof(*id));
	if (vis_shared == NULL || !IsInParallelMode() || MyProc == NULL)
		return -1;
	leader = IsParallelWorker() ? MyProc->lockGroupLeader : MyProc;
	if (leader == NULL || leader->pgprocno < 0 || leader->pgprocno >= vis_shared->nslots)
		return -1;
	id->leader_pid = leader->pid;
	id->xact_start = GetCurrentTransactionStartTimestamp();
	id->stmt_start = GetCurrentStatementStartTimestamp();
	id->xmin = snap->xmin;
	id->xmax = snap->xmax;
	id->curcid = snap->curcid;
	id->xcnt = snap->xcnt;
	id->subxcnt = snap->subxcnt;
	id->suboverflowed = snap->suboverflowed;
	id->takenDuringRecovery = snap->takenDuringRecovery;
	h = snap->xcnt > 0 ? hash_bytes((const unsigned char *) snap->xip, (int) (snap->xcnt * sizeof(TransactionId))) : 0;
	if (snap->subxcnt > 0)
		h = hash_combine(h, hash_bytes((const unsigned char *) snap->subxip,
									   (int) (snap->subxcnt * sizeof(TransactionId))));
	id->xip_hash = h;
	strlcpy(id->purpose, purpose, sizeof(id->purpose));
	return leader->pgprocno;
}

/* Unmap a shared set, if the set is one. */
static void
detach_set(VisSet *set)
{
	if (set->seg)
		dsm_detach(set->seg);
	set->seg = NULL;
	set->text_keys = NULL;
	set->ntexts = 0;
}

static void
reset_set(VisSet *set, MemoryContext cxt)
{
	memset(set, 0, sizeof(*set));
	set->state = SET_PROBING;
	set->cxt = cxt;
}

/*
 * Make sure vis belongs to the active snapshot and the declared purpose;
 * start afresh (dropping the previous sets) when it does not.
 */
static void
ensure_vis_state(void)
{
	Snapshot	snap = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
	const char *purpose = pdp_purpose ? pdp_purpose : "";

	if (likely(vis.valid && vis.snap == snap && vis.curcid == snap->curcid &&
			   vis.xmin == snap->xmin && vis.xmax == snap->xmax &&
			   vis.xcnt == snap->xcnt && vis.subxcnt == snap->subxcnt &&
			   vis.lxid == MyProc->lxid &&
			   vis.stmt_start == GetCurrentStatementStartTimestamp() &&
			   strcmp(vis.purpose, purpose) == 0))
		return;

	if (vis.cxt == NULL)
		vis.cxt = AllocSetContextCreate(TopMemoryContext, "pdp_ext visibility sets",
										ALLOCSET_SMALL_SIZES);
	vis.valid = false;
	detach_set(&vis.consent);
	detach_set(&vis.restricted);
	MemoryContextReset(vis.cxt);
	/* Each set's own context is made when it is built (build_set). */
	reset_set(&vis.consent, NULL);
	reset_set(&vis.restricted, NULL);
	vis.consent.which = VIS_CONSENT;
	vis.restricted.which = VIS_RESTRICTED;
	vis.snap = snap;
	vis.curcid = snap->curcid;
	vis.xmin = snap->xmin;
	vis.xmax = snap->xmax;
	vis.xcnt = snap->xcnt;
	vis.subxcnt = snap->subxcnt;
	vis.lxid = MyProc->lxid;
	vis.stmt_start = GetCurrentStatementStartTimestamp();
	strlcpy(vis.purpose, purpose, sizeof(vis.purpose));
	vis.slot = share_slot_for(snap, purpose, &vis.id);
	(void) pdp_state_relation(PDP_STATE_CONSENT, &vis.consent_relid, &vis.consent_pkey);
	(void) pdp_state_relation(PDP_STATE_RESTRICTION, &vis.restriction_relid, &vis.restriction_pkey);
	vis.valid_until_att = OidIsValid(vis.consent_relid) ? get_attnum(vis.consent_relid, "valid_until") : InvalidAttrNumber;
	vis.valid = true;
}

static Size
budget_left(void)
{
	Size		budget = (Size) pdp_visibility_memory_kb * 1024;
	Size		used = vis.consent.bytes + vis.restricted.bytes;

	return used >= budget ? 0 : budget - used;
}

/*
 * Reading a set takes two passes over the table under the same snapshot:
 * the first counts (integer ids, their range, other identifiers) without
 * keeping anything, so the smaller of a bitmap and a sorted array can be
 * chosen, and a set that would not fit the budget is never started; the
 * second fills it.
 */
typedef struct SetScan
{
	Relation	rel;
	AttrNumber	subject_att;
	AttrNumber	purpose_att;
	const char *purpose;
	size_t		plen;
	AttrNumber	until_att;
	TimestampTz now;
	Snapshot	snap;
} SetScan;

typedef void (*subject_cb) (void *arg, const char *s, size_t len);

/*
 * Call cb for each subject of a row the set takes in.  Each row's columns
 * are taken apart once, up to the last one needed (slot_getsomeattrs),
 * rather than walked from the row's start for each column after the first
 * text one (by callgrind the two cost the same here: about 275 instructions
 * a row, of some 800 a row for reading the set).
 */
static void
scan_subjects(SetScan *ss, subject_cb cb, void *arg)
{
	TableScanDesc scan = table_beginscan(ss->rel, ss->snap, 0, NULL);
	TupleTableSlot *slot = table_slot_create(ss->rel, NULL);
	int			last = Max(ss->subject_att, Max(ss->purpose_att, ss->until_att));

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		text	   *t;

		CHECK_FOR_INTERRUPTS();
		slot_getsomeattrs(slot, last);
		if (ss->purpose_att > 0)
		{
			if (slot->tts_isnull[ss->purpose_att - 1])
				continue;
			t = DatumGetTextPP(slot->tts_values[ss->purpose_att - 1]);
			if (VARSIZE_ANY_EXHDR(t) != ss->plen || memcmp(VARDATA_ANY(t), ss->purpose, ss->plen) != 0)
				continue;
		}
		if (ss->until_att > 0 && !slot->tts_isnull[ss->until_att - 1] &&
			DatumGetTimestampTz(slot->tts_values[ss->until_att - 1]) <= ss->now)
			continue;
		if (slot->tts_isnull[ss->subject_att - 1])
			continue;
		t = DatumGetTextPP(slot->tts_values[ss->subject_att - 1]);
		cb(arg, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
}

typedef struct SetCount
{
	Size		nids;
	Size		ntexts;
	int64		min;
	int64		max;
} SetCount;

static void
count_subject(void *arg, const char *s, size_t len)
{
	SetCount   *c = (SetCount *) arg;
	int64_t		id;

	if (pdp_subject_parse_int(s, len, &id))
	{
		if (c->nids == 0 || id < c->min)
			c->min = id;
		if (c->nids == 0 || id > c->max)
			c->max = id;
		c->nids++;
	}
	else
		c->ntexts++;
}

typedef struct SetFill
{
	VisSet	   *set;
	uint8	   *bits;			/* bitmap being filled, or NULL */
	int64	   *ids;			/* else the array */
	Size		nids;
	Size		capacity;		/* as counted: never exceeded */
	int64		min;
} SetFill;

static void
fill_subject(void *arg, const char *s, size_t len)
{
	SetFill    *f = (SetFill *) arg;
	int64_t		id;

	if (pdp_subject_parse_int(s, len, &id))
	{
		if (f->bits)
		{
			uint64		off = (uint64) id - (uint64) f->min;

			f->bits[off >> 3] |= (uint8) (1u << (off & 7));
		}
		else if (f->nids < f->capacity)
			f->ids[f->nids++] = id;
	}
	else
	{
		SubjectKey	key;

		subject_key(s, len, &key);
		hash_search(f->set->texts, &key, HASH_ENTER, NULL);
	}
}

/*
 * The one-pass way, for the common case of dense integer ids: a bitmap that
 * grows (doubling) to cover the ids seen so far, and the text hash, both
 * within the budget.  When the bitmap would outgrow the budget the pass
 * gives up (abandoned), and build_set falls back to counting first.
 */
typedef struct SetGrow
{
	VisSet	   *set;
	Size		limit;
	uint8	   *bits;
	int64		base;			/* id of bit 0, a multiple of 64 */
	Size		nbytes;
	Size		nids;			/* ids seen (duplicates are impossible: a key) */
	int64		min;
	int64		max;
	Size		text_bytes;
	bool		abandoned;
} SetGrow;

static int64
floor64(int64 v)
{
	return v >= 0 ? v - v % 64 : v - (64 + v % 64) % 64;
}

static void
grow_subject(void *arg, const char *s, size_t len)
{
	SetGrow    *g = (SetGrow *) arg;
	int64_t		id;

	if (g->abandoned)
		return;
	if (pdp_subject_parse_int(s, len, &id))
	{
		if (g->bits == NULL || id < g->base || (uint64) (id - g->base) >= (uint64) g->nbytes * 8)
		{
			/* Cover [lo, hi): the old range and id, at least twice as wide. */
			int64		lo = g->bits ? Min(g->base, floor64(id)) : floor64(id);
			int64		old_hi = g->bits ? g->base + (int64) g->nbytes * 8 : lo;
			int64		hi = Max(old_hi, floor64(id) + 64);
			uint64		span = (uint64) hi - (uint64) lo;
			Size		want;
			uint8	   *bits;

			if (id < INT64_MIN / 2 || id > INT64_MAX / 2 || span > (uint64) MaxAllocHugeSize * 8)
			{
				g->abandoned = true;
				return;
			}
			want = Max((Size) (span / 8), g->nbytes * 2);
			want = Max(want, (Size) 8192);
			if (want + g->text_bytes > g->limit)
				want = (Size) (span / 8);
			if (want + g->text_bytes > g->limit)
			{
				g->abandoned = true;
				return;
			}
			/* Grow downwards when id is below, upwards otherwise. */
			if (g->bits && id < g->base)
				lo = hi - (int64) want * 8;
			else if (g->bits)
				lo = g->base;
			bits = MemoryContextAllocExtended(g->set->cxt, want, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
			if (g->bits)
			{
				memcpy(bits + (g->base - lo) / 8, g->bits, g->nbytes);
				pfree(g->bits);
			}
			g->bits = bits;
			g->base = lo;
			g->nbytes = want;
		}
		{
			uint64		off = (uint64) id - (uint64) g->base;

			g->bits[off >> 3] |= (uint8) (1u << (off & 7));
		}
		if (g->nids == 0 || id < g->min)
			g->min = id;
		if (g->nids == 0 || id > g->max)
			g->max = id;
		g->nids++;
	}
	else
	{
		SubjectKey	key;

		if (g->nbytes + g->text_bytes + TEXT_ENTRY_COST > g->limit)
		{
			g->abandoned = true;
			return;
		}
		if (g->set->texts == NULL)
		{
			HASHCTL		ctl;

			ctl.keysize = sizeof(SubjectKey);
			ctl.entrysize = sizeof(SubjectKey);
			ctl.hash = subject_hash;
			ctl.match = subject_match;
			ctl.hcxt = g->set->cxt;
			g->set->texts = hash_create("pdp_ext visibility subjects", 256, &ctl,
										HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
		}
		subject_key(s, len, &key);
		hash_search(g->set->texts, &key, HASH_ENTER, NULL);
		g->text_bytes += TEXT_ENTRY_COST;
	}
}

/*
 * Read the set: the subjects of relid's rows (column subject_att) whose
 * purpose_att (when > 0) equals purpose and whose until_att (when > 0) is
 * NULL or later than now(), under snap.  On success the set is SET_BUILT;
 * when it would exceed the budget it is SET_TOO_LARGE and holds nothing.
 */
static void
build_set(VisSet *set, Oid relid, AttrNumber subject_att, AttrNumber purpose_att,
		  const char *purpose, AttrNumber until_att, Snapshot snap)
{
	SetScan		ss;
	SetCount	c;
	SetFill		f;
	Size		limit = budget_left();
	Size		bitmap_bytes = 0;
	Size		array_bytes;
	Size		text_bytes;
	bool		use_bitmap;

	/* A build that an error interrupted left its memory: start clean. */
	if (set->cxt == NULL && set->which == VIS_CONSENT)
		set->cxt = AllocSetContextCreate(vis.cxt, "pdp_ext consent set", ALLOCSET_SMALL_SIZES);
	else if (set->cxt == NULL)
		set->cxt = AllocSetContextCreate(vis.cxt, "pdp_ext restriction set", ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(set->cxt);
	set->texts = NULL;
	set->bytes = 0;
	memset(&set->ints, 0, sizeof(set->ints));

	if (subject_att <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext's consent or restriction table has no subject column")));
	memset(&ss, 0, sizeof(ss));
	ss.rel = table_open(relid, AccessShareLock);
	ss.subject_att = subject_att;
	ss.purpose_att = purpose_att;
	ss.purpose = purpose;
	ss.plen = purpose ? strlen(purpose) : 0;
	ss.until_att = until_att;
	ss.now = GetCurrentTransactionStartTimestamp();
	ss.snap = snap;

	/* One pass with a growing bitmap; most sets end here. */
	{
		SetGrow		g;

		memset(&g, 0, sizeof(g));
		g.set = set;
		g.limit = limit;
		scan_subjects(&ss, grow_subject, &g);
		if (!g.abandoned)
		{
			table_close(ss.rel, AccessShareLock);
			set->ints.n = g.nids;
			set->ints.min = g.min;
			set->ints.max = g.max;
			set->ints.bits = g.bits;
			set->ints.sorted = NULL;
			if (g.bits)
			{
				/* pdp_int_set_contains indexes the bitmap from min. */
				set->ints.min = g.base;
			}
			set->bytes = g.nbytes + g.text_bytes;
			set->state = SET_BUILT;
			return;
		}
		MemoryContextReset(set->cxt);
		set->texts = NULL;
	}

	/* Too wide for a bitmap: count, then fill the smaller representation. */
	memset(&c, 0, sizeof(c));
	scan_subjects(&ss, count_subject, &c);
	if (c.nids > 0)
		bitmap_bytes = pdp_int_set_bitmap_bytes(c.min, c.max);
	array_bytes = c.nids * sizeof(int64);
	text_bytes = c.ntexts * TEXT_ENTRY_COST;
	use_bitmap = c.nids > 0 && bitmap_bytes <= array_bytes && bitmap_bytes <= MaxAllocHugeSize;
	if ((use_bitmap ? bitmap_bytes : array_bytes) + text_bytes > limit ||
		(!use_bitmap && array_bytes > MaxAllocHugeSize))
	{
		table_close(ss.rel, AccessShareLock);
		set->state = SET_TOO_LARGE;
		return;
	}

	memset(&f, 0, sizeof(f));
	f.set = set;
	f.min = c.min;
	if (use_bitmap)
		f.bits = MemoryContextAllocExtended(set->cxt, bitmap_bytes, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	else if (c.nids > 0)
		f.ids = MemoryContextAllocHuge(set->cxt, array_bytes);
	f.capacity = c.nids;
	if (c.ntexts > 0)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(SubjectKey);
		ctl.entrysize = sizeof(SubjectKey);
		ctl.hash = subject_hash;
		ctl.match = subject_match;
		ctl.hcxt = set->cxt;
		set->texts = hash_create("pdp_ext visibility subjects", (long) c.ntexts, &ctl,
								 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}
	scan_subjects(&ss, fill_subject, &f);
	table_close(ss.rel, AccessShareLock);

	if (use_bitmap)
	{
		/* The bitmap is already filled; the set only needs its bounds. */
		set->ints.n = c.nids;
		set->ints.min = c.min;
		set->ints.max = c.max;
		set->ints.bits = f.bits;
		set->ints.sorted = NULL;
	}
	else
		pdp_int_set_build(&set->ints, f.ids, f.nids, c.min, c.max, NULL);
	set->bytes = (use_bitmap ? bitmap_bytes : array_bytes) + text_bytes;
	set->state = SET_BUILT;
}

/*
 * Should this probe be the last one before the set is built?  After about
 * as many probes as reading the table costs (4 per block), and at least
 * VIS_MIN_PROBES.  In a parallel group that is the group's count: each
 * process's share of it, taking the group to be as large as
 * max_parallel_workers_per_gather allows, since each process counts only
 * its own probes.  The relation's size is asked only once VIS_MIN_PROBES
 * probes are made, so a statement that probes a few times (a primary-key
 * lookup) never asks it; with ask_empty (pdp.restriction, usually empty) it
 * is asked at the first probe, as its emptiness spares the probes.
 */
#define VIS_MIN_PROBES 32

static bool
time_to_build(VisSet *set, Oid relid, bool ask_empty)
{
	if (set->state != SET_PROBING)
		return false;
	set->probes++;
	if (set->threshold == 0)
	{
		Relation	rel;
		BlockNumber nblocks;
		uint64		probes;

		if (!ask_empty && set->probes < VIS_MIN_PROBES)
			return false;
		rel = table_open(relid, AccessShareLock);
		nblocks = RelationGetNumberOfBlocks(rel);
		table_close(rel, NoLock);
		probes = 4 * (uint64) nblocks;
		set->rel_empty = (nblocks == 0);
		if (vis.slot >= 0)
			probes /= (uint64) (1 + Max(max_parallel_workers_per_gather, 0));
		set->threshold = VIS_MIN_PROBES + probes;
	}
	return set->probes >= set->threshold;
}

/* Order of text keys in a shared set. */
static int
subject_key_cmp(const void *a, const void *b)
{
	const SubjectKey *x = (const SubjectKey *) a;
	const SubjectKey *y = (const SubjectKey *) b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->bytes, y->bytes, sizeof(x->bytes));
}

/*
 * Is the subject in a built set?  It is given by its integer value (have_id;
 * s may then be NULL) or by its text form s[0..len).
 */
static bool
set_contains(const VisSet *set, const char *s, size_t len, bool have_id, int64 id)
{
	int64_t		v;
	SubjectKey	key;

	if (have_id || pdp_subject_parse_int(s, len, &v))
		return pdp_int_set_contains(&set->ints, have_id ? id : v);
	if (set->texts == NULL && set->ntexts == 0)
		return false;
	subject_key(s, len, &key);
	if (set->texts == NULL)
		return bsearch(&key, set->text_keys, set->ntexts, sizeof(SubjectKey), subject_key_cmp) != NULL;
	return hash_search(set->texts, &key, HASH_FIND, NULL) != NULL;
}

/*
 * Map the segment h of a published set into set (SET_BUILT), checking that
 * it is the set of identity id.  False when it is gone or not that set.
 * Caller holds vis_shared->lock (so the pin cannot be dropped meanwhile).
 */
static bool
attach_shared_set(VisSet *set, dsm_handle h, const VisIdentity *id)
{
	dsm_segment *seg = dsm_attach(h);
	VisSegment *hdr;
	char	   *p;

	if (seg == NULL)
		return false;
	hdr = (VisSegment *) dsm_segment_address(seg);
	if (dsm_segment_map_length(seg) < sizeof(VisSegment) || hdr->magic != VIS_SEGMENT_MAGIC ||
		memcmp(&hdr->id, id, sizeof(VisIdentity)) != 0)
	{
		dsm_detach(seg);
		return false;
	}
	dsm_pin_mapping(seg);
	p = (char *) hdr + MAXALIGN(sizeof(VisSegment));
	memset(&set->ints, 0, sizeof(set->ints));
	set->ints.n = hdr->nids;
	set->ints.min = hdr->min;
	set->ints.max = hdr->max;
	if (hdr->bitmap_bytes > 0)
	{
		set->ints.bits = (uint8 *) p;
		p += MAXALIGN(hdr->bitmap_bytes);
	}
	else
	{
		set->ints.sorted = (const int64 *) p;
		p += MAXALIGN(hdr->nsorted * sizeof(int64));
	}
	set->texts = NULL;
	set->text_keys = (const SubjectKey *) p;
	set->ntexts = hdr->ntexts;
	set->seg = seg;
	set->bytes = hdr->bytes;
	set->state = SET_BUILT;
	ereport(DEBUG1,
			(errmsg_internal("pdp_ext: %s maps its parallel group's shared %s set",
							 IsParallelWorker() ? "a parallel worker" : "the leader",
							 set->which == VIS_CONSENT ? "consent" : "restriction")));
	return true;
}

/*
 * Copy the set just built into a new pinned DSM segment for identity id,
 * and answer from that copy from now on (the private one is freed).
 * Returns the segment's handle, or DSM_HANDLE_INVALID when no segment
 * could be had (the set then stays private).
 */
static dsm_handle
move_set_to_segment(VisSet *set, const VisIdentity *id)
{
	Size		bitmap_bytes = 0;
	Size		nsorted = 0;
	Size		ntexts = set->texts ? (Size) hash_get_num_entries(set->texts) : 0;
	Size		size;
	dsm_segment *seg;
	VisSegment *hdr;
	char	   *p;

	if (set->ints.bits)
		bitmap_bytes = pdp_int_set_bitmap_bytes(set->ints.min, set->ints.max);
	else
		nsorted = set->ints.n;
	size = MAXALIGN(sizeof(VisSegment));
	size = add_size(size, MAXALIGN(bitmap_bytes > 0 ? bitmap_bytes : mul_size(nsorted, sizeof(int64))));
	size = add_size(size, mul_size(ntexts, sizeof(SubjectKey)));
	seg = dsm_create(size, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (seg == NULL)
		return DSM_HANDLE_INVALID;
	dsm_pin_mapping(seg);
	hdr = (VisSegment *) dsm_segment_address(seg);
	memset(hdr, 0, sizeof(VisSegment));
	hdr->magic = VIS_SEGMENT_MAGIC;
	hdr->id = *id;
	hdr->nids = set->ints.n;
	hdr->min = set->ints.min;
	hdr->max = set->ints.max;
	hdr->bitmap_bytes = bitmap_bytes;
	hdr->nsorted = nsorted;
	hdr->ntexts = ntexts;
	hdr->bytes = set->bytes;
	p = (char *) hdr + MAXALIGN(sizeof(VisSegment));
	if (bitmap_bytes > 0)
	{
		memcpy(p, set->ints.bits, bitmap_bytes);
		p += MAXALIGN(bitmap_bytes);
	}
	else
	{
		if (nsorted > 0)
			memcpy(p, set->ints.sorted, nsorted * sizeof(int64));
		p += MAXALIGN(nsorted * sizeof(int64));
	}
	if (ntexts > 0)
	{
		HASH_SEQ_STATUS st;
		SubjectKey *k;
		SubjectKey *keys = (SubjectKey *) p;
		Size		n = 0;

		hash_seq_init(&st, set->texts);
		while ((k = (SubjectKey *) hash_seq_search(&st)) != NULL)
			keys[n++] = *k;
		qsort(keys, n, sizeof(SubjectKey), subject_key_cmp);
	}
	dsm_pin_segment(seg);

	/* Answer from the shared copy: it is the same set. */
	MemoryContextReset(set->cxt);
	set->texts = NULL;
	set->ints.n = hdr->nids;
	set->ints.min = hdr->min;
	set->ints.max = hdr->max;
	p = (char *) hdr + MAXALIGN(sizeof(VisSegment));
	if (bitmap_bytes > 0)
	{
		set->ints.bits = (uint8 *) p;
		set->ints.sorted = NULL;
		p += MAXALIGN(bitmap_bytes);
	}
	else
	{
		set->ints.bits = NULL;
		set->ints.sorted = (const int64 *) p;
		p += MAXALIGN(nsorted * sizeof(int64));
	}
	set->text_keys = (const SubjectKey *) p;
	set->ntexts = ntexts;
	set->seg = seg;
	return dsm_segment_handle(seg);
}

typedef void (*set_builder) (VisSet *set);

/*
 * One step of a set that is still probing, in a parallel group: every
 * VIS_LOOK_EVERY probes, map the group's published set, or learn that it is
 * too large, or (once this process's probes reach the threshold and nobody
 * has claimed it) claim it, build it and publish it.  due says whether the
 * threshold is reached.
 */
static void
shared_step(VisSet *set, bool due, set_builder build)
{
	VisSlot    *slot = &vis_shared->slots[vis.slot];
	VisSharedEntry *e = &slot->sets[set->which];
	bool		claimed = false;
	dsm_handle	h;

	if (set->probes % VIS_LOOK_EVERY != 1 && !(due && set->probes == set->threshold))
		return;

	/*
	 * While a peer builds the set, wait for it rather than probe: on a busy
	 * machine probing takes the CPU the build needs, and each probe costs
	 * what dozens of set lookups cost.  The wait ends when the builder
	 * publishes or gives up (the condition variable), or, should it fail,
	 * when the error ends the whole parallel query; it is checked every 10
	 * ms all the same.
	 */
	for (bool waited = false;; waited = true)
	{
		SharedState st = SHARED_NONE;
		int			builder = 0;
		bool		same;

		LWLockAcquire(vis_shared->lock, LW_SHARED);
		same = memcmp(&slot->id, &vis.id, sizeof(VisIdentity)) == 0;
		if (same)
		{
			st = e->state;
			builder = e->builder_pid;
			if (st == SHARED_READY && attach_shared_set(set, e->handle, &vis.id))
			{
				LWLockRelease(vis_shared->lock);
				break;
			}
		}
		LWLockRelease(vis_shared->lock);
		if (same && st == SHARED_TOO_LARGE)
			set->state = SET_TOO_LARGE;
		if (!same || st != SHARED_BUILDING || builder == MyProcPid)
			break;
		if (!waited)
			ConditionVariablePrepareToSleep(&vis_shared->settled);
		else
			(void) ConditionVariableTimedSleep(&vis_shared->settled, 10, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	if (set->state != SET_PROBING || !due)
		return;

	/* Claim it; a slot left by another statement of the leader is released. */
	LWLockAcquire(vis_shared->lock, LW_EXCLUSIVE);
	if (memcmp(&slot->id, &vis.id, sizeof(VisIdentity)) != 0)
	{
		vis_release_slot(slot);
		slot->id = vis.id;
	}
	if (e->state == SHARED_NONE)
	{
		e->state = SHARED_BUILDING;
		e->builder_pid = MyProcPid;
		pg_atomic_write_u32(&slot->used, 1);
		claimed = true;
	}
	LWLockRelease(vis_shared->lock);
	if (!claimed)
		return;					/* a peer got there first: look again later */

	build(set);
	h = set->state == SET_BUILT ? move_set_to_segment(set, &vis.id) : DSM_HANDLE_INVALID;

	LWLockAcquire(vis_shared->lock, LW_EXCLUSIVE);
	if (memcmp(&slot->id, &vis.id, sizeof(VisIdentity)) == 0 &&
		e->state == SHARED_BUILDING && e->builder_pid == MyProcPid)
	{
		if (h != DSM_HANDLE_INVALID)
		{
			e->state = SHARED_READY;
			e->handle = h;
			h = DSM_HANDLE_INVALID;
			ereport(DEBUG1,
					(errmsg_internal("pdp_ext: %s publishes its parallel group's shared %s set",
									 IsParallelWorker() ? "a parallel worker" : "the leader",
									 set->which == VIS_CONSENT ? "consent" : "restriction")));
		}
		else if (set->state == SET_TOO_LARGE)
			e->state = SHARED_TOO_LARGE;
		else
			e->state = SHARED_NONE;	/* no segment: each process builds its own */
		e->builder_pid = 0;
	}
	LWLockRelease(vis_shared->lock);
	ConditionVariableBroadcast(&vis_shared->settled);
	if (h != DSM_HANDLE_INVALID)
		dsm_unpin_segment(h);	/* nobody took it: only our mapping keeps it */
}

/*
 * A text subject that is an integer in another spelling ('007', ' 7') names
 * the same learner as its canonical decimal, which is how pdp's entry points
 * store it (pdp._canonical_subject): that spelling, palloc'd, or NULL when
 * there is none.  Sets take every spelling in as the integer.
 */
static char *
other_spelling(const char *s, size_t len)
{
	int64_t		v;
	char	   *c;

	if (s == NULL || !pdp_subject_parse_int(s, len, &v))
		return NULL;
	c = psprintf(INT64_FORMAT, (int64) v);
	if (strlen(c) == len && memcmp(c, s, len) == 0)
	{
		pfree(c);
		return NULL;
	}
	return c;
}

/* Read the consenting subjects of the declared purpose into set. */
static void
build_consent_set(VisSet *set)
{
	Oid			relid = vis.consent_relid;

	build_set(set, relid, get_attnum(relid, "subject"), get_attnum(relid, "purpose"),
			  vis.purpose, get_attnum(relid, "valid_until"), vis.snap);
}

/* Read the restricted subjects into set. */
static void
build_restricted_set(VisSet *set)
{
	Oid			relid = vis.restriction_relid;

	build_set(set, relid, get_attnum(relid, "subject"), 0, NULL, 0, vis.snap);
}

/*
 * The subject as a C string for a probe: an integer id written into buf
 * (no allocation on a primary-key lookup's path), else a palloc'd copy.
 */
static char *
subject_cstring(const char *s, size_t len, int64 id, char *buf)
{
	if (s != NULL)
		return pnstrdup(s, len);
	pg_lltoa(id, buf);
	return buf;
}

/* Does the subject consent to the declared purpose (under the active snapshot)? */
static bool
subject_consents(const char *s, size_t len, bool have_id, int64 id)
{
	Oid			relid;
	char	   *cstr;
	bool		found;
	char		numbuf[MAXINT8LEN + 1];

	if (vis.consent.state == SET_BUILT)
		return set_contains(&vis.consent, s, len, have_id, id);
	relid = vis.consent_relid;
	if (!OidIsValid(relid) || !OidIsValid(vis.consent_pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext is not installed in this database")));
	if (vis.consent.state == SET_PROBING)
	{
		bool		due = time_to_build(&vis.consent, relid, false);

		if (vis.slot >= 0)
			shared_step(&vis.consent, due, build_consent_set);
		else if (due)
			build_consent_set(&vis.consent);
		if (vis.consent.state == SET_BUILT)
			return set_contains(&vis.consent, s, len, have_id, id);
	}
	if (vis.consent.rel_empty)
		return false;
	cstr = subject_cstring(s, len, id, numbuf);
	found = key_probe(relid, vis.consent_pkey, cstr, vis.purpose,
					  vis.snap, vis.valid_until_att);
	if (cstr != numbuf)
		pfree(cstr);
	if (!found && (cstr = other_spelling(s, len)) != NULL)
	{
		found = key_probe(relid, vis.consent_pkey, cstr, vis.purpose,
						  vis.snap, vis.valid_until_att);
		pfree(cstr);
	}
	return found;
}

/* Is the subject restricted (under the active snapshot)? */
static bool
subject_restricted(const char *s, size_t len, bool have_id, int64 id)
{
	Oid			relid;
	char	   *cstr;
	bool		found;
	char		numbuf[MAXINT8LEN + 1];

	if (vis.restricted.state == SET_BUILT)
		return set_contains(&vis.restricted, s, len, have_id, id);
	relid = vis.restriction_relid;
	if (!OidIsValid(relid) || !OidIsValid(vis.restriction_pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext is not installed in this database")));
	if (vis.restricted.state == SET_PROBING)
	{
		bool		due = time_to_build(&vis.restricted, relid, true);

		if (vis.slot >= 0)
			shared_step(&vis.restricted, due, build_restricted_set);
		else if (due)
			build_restricted_set(&vis.restricted);
		if (vis.restricted.state == SET_BUILT)
			return set_contains(&vis.restricted, s, len, have_id, id);
	}
	if (vis.restricted.rel_empty)
		return false;
	cstr = subject_cstring(s, len, id, numbuf);
	found = text_key_exists(relid, vis.restriction_pkey, cstr, vis.snap);
	if (cstr != numbuf)
		pfree(cstr);
	if (!found && (cstr = other_spelling(s, len)) != NULL)
	{
		found = text_key_exists(relid, vis.restriction_pkey, cstr, vis.snap);
		pfree(cstr);
	}
	return found;
}

/* The row test for one subject: its integer value (have_id), or its text form. */
/*
 * A restricted subject's row is hidden, except from the scan of the running
 * UPDATE's or DELETE's own target relation (target.c): there it is let
 * through so that pdp's restricted-row trigger refuses the change with an
 * error instead of the statement silently changing nothing.
 */
static bool
subject_visible(FunctionCallInfo fcinfo, int flags, const char *s, size_t len, bool have_id, int64 id)
{
	if (flags == 0)
		return false;
	if ((flags & (PURPOSE_NEEDS_CONSENT | PURPOSE_EXEMPT)) == PURPOSE_EXEMPT)
		return true;
	ensure_vis_state();
	if ((flags & PURPOSE_NEEDS_CONSENT) && !subject_consents(s, len, have_id, id))
		return false;
	if (!(flags & PURPOSE_EXEMPT) && subject_restricted(s, len, have_id, id))
		return pdp_row_test_on_write_target(fcinfo);
	return true;
}

/*
 * A row the statement itself is writing (INSERT ... RETURNING, ON CONFLICT,
 * UPDATE ... RETURNING check it against the SELECT policy before it is
 * stored) has no tuple identifier yet: its ctid, which the SELECT policy
 * passes as the row test's second argument, reads (4294967295,0), which no
 * stored row has.  It passes, as its values came from the statement.  (The
 * test used to be the policy's own "ctid = '(4294967295,0)' OR ...", whose
 * OR cost every protected query about 14,000 instructions of planning.)
 */
static inline bool
row_being_written(FunctionCallInfo fcinfo)
{
	ItemPointer tid;

	if (PG_NARGS() < 2 || PG_ARGISNULL(1))
		return false;
	tid = (ItemPointer) PG_GETARG_POINTER(1);
	return ItemPointerGetBlockNumberNoCheck(tid) == InvalidBlockNumber &&
		ItemPointerGetOffsetNumberNoCheck(tid) == 0;
}

/*
 * pdp._visible(subject [, row tid]) RETURNS boolean, for bigint (and
 * integer), text (and varchar) and uuid subjects: the per-row test of the
 * policies that pdp.protect_table creates (the SELECT policy passes the
 * row's ctid, see row_being_written).  A NULL subject names nobody: visible
 * whenever any row is.
 */
Datum
pdp_visible_int8(PG_FUNCTION_ARGS)
{
	int			flags;

	pdp_note_pdp_ran();
	if (row_being_written(fcinfo))
		PG_RETURN_BOOL(true);
	flags = pdp_statement_flags(true);

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(flags != 0);
	PG_RETURN_BOOL(subject_visible(fcinfo, flags, NULL, 0, true, PG_GETARG_INT64(0)));
}

Datum
pdp_visible_text(PG_FUNCTION_ARGS)
{
	int			flags;
	text	   *t;

	pdp_note_pdp_ran();
	if (row_being_written(fcinfo))
		PG_RETURN_BOOL(true);
	flags = pdp_statement_flags(true);
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(flags != 0);
	t = PG_GETARG_TEXT_PP(0);
	PG_RETURN_BOOL(subject_visible(fcinfo, flags, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), false, 0));
}

Datum
pdp_visible_uuid(PG_FUNCTION_ARGS)
{
	static const char hexdigits[] = "0123456789abcdef";
	int			flags;
	char		buf[2 * UUID_LEN + 4];
	pg_uuid_t  *uuid;
	int			p = 0;

	pdp_note_pdp_ran();
	if (row_being_written(fcinfo))
		PG_RETURN_BOOL(true);
	flags = pdp_statement_flags(true);
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(flags != 0);
	uuid = PG_GETARG_UUID_P(0);
	for (int i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[p++] = '-';
		buf[p++] = hexdigits[uuid->data[i] >> 4];
		buf[p++] = hexdigits[uuid->data[i] & 0x0F];
	}
	PG_RETURN_BOOL(subject_visible(fcinfo, flags, buf, p, false, 0));
}

/*
 * The attribute numbers of relid's registered subject columns, from
 * pdp.subject_column (which follows renames, and is resolved again from
 * column names after a restore), or for a partition or inheritance child
 * those of its nearest registered ancestor, by column name.  Kept for the
 * current statement: one entry, for the last table asked.
 */
#define MAX_SUBJECT_COLUMNS 64

typedef struct SubjectColumns
{
	LocalTransactionId lxid;
	TimestampTz stmt_start;
	CommandId	cid;
	Oid			relid;
	int			n;
	AttrNumber	attnums[MAX_SUBJECT_COLUMNS];
} SubjectColumns;

static SubjectColumns subject_columns = {InvalidLocalTransactionId};

/*
 * Read the registry rows of regrelid into fresh, mapping each column by its
 * name onto relid's own attribute numbers (the same table, or a partition
 * or inheritance child of it, whose columns have the same names).
 */
static void
read_registry(Oid regrelid, Oid relid, SubjectColumns *fresh)
{
	Oid			registry_relid = pdp_relation_oid("subject_column");
	Oid			registry_pkey = pdp_relation_oid("subject_column_pkey");
	Relation	heap;
	Relation	index;
	Snapshot	snap;
	ScanKeyData skey;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	col_att;

	if (!OidIsValid(registry_relid) || !OidIsValid(registry_pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext is not installed in this database")));
	col_att = get_attnum(registry_relid, "col");
	heap = table_open(registry_relid, AccessShareLock);
	index = index_open(registry_pkey, AccessShareLock);
	snap = RegisterSnapshot(GetCatalogSnapshot(registry_relid));
	ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   InvalidOid, F_OIDEQ, ObjectIdGetDatum(regrelid));
	scan = index_beginscan(heap, index, snap, 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	slot = table_slot_create(heap, NULL);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, col_att, &isnull);
		AttrNumber	attnum;

		if (isnull)
			continue;
		attnum = get_attnum(relid, NameStr(*DatumGetName(d)));
		if (attnum == InvalidAttrNumber)
			continue;
		if (fresh->n >= MAX_SUBJECT_COLUMNS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("table \"%s\" has more than %d registered subject columns",
							get_rel_name(relid), MAX_SUBJECT_COLUMNS)));
		fresh->attnums[fresh->n++] = attnum;
	}
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	UnregisterSnapshot(snap);
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
}

/* The first parent of rel in pg_inherits (partition or inheritance), or InvalidOid. */
static Oid
first_parent(Oid rel)
{
	Relation	inh = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			parent = InvalidOid;

	ScanKeyInit(&key[0], Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(rel));
	ScanKeyInit(&key[1], Anum_pg_inherits_inhseqno, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(1));
	scan = systable_beginscan(inh, InheritsRelidSeqnoIndexId, true, NULL, 2, key);
	if ((tup = systable_getnext(scan)) != NULL)
		parent = ((Form_pg_inherits) GETSTRUCT(tup))->inhparent;
	systable_endscan(scan);
	table_close(inh, AccessShareLock);
	return parent;
}

static const SubjectColumns *
registered_subject_columns(Oid relid)
{
	SubjectColumns fresh;
	CommandId	cid = GetCurrentCommandId(false);
	Oid			rel = relid;

	if (subject_columns.lxid == MyProc->lxid &&
		subject_columns.stmt_start == GetCurrentStatementStartTimestamp() &&
		subject_columns.cid == cid && subject_columns.relid == relid)
		return &subject_columns;

	memset(&fresh, 0, sizeof(fresh));
	/* The table's own registration, else its nearest registered ancestor's. */
	for (int depth = 0; depth < 32 && OidIsValid(rel); depth++)
	{
		read_registry(rel, relid, &fresh);
		if (fresh.n > 0)
			break;
		rel = first_parent(rel);
	}

	fresh.relid = relid;
	fresh.cid = cid;
	fresh.stmt_start = GetCurrentStatementStartTimestamp();
	fresh.lxid = MyProc->lxid;
	subject_columns = fresh;
	return &subject_columns;
}

/*
 * The subject columns named by the trigger's arguments (after the first,
 * the table's name for messages), resolved in rel: a Citus shard.  A name
 * rel lacks (a column renamed since protect_table) refuses, as the row's
 * subjects could not be checked.
 */
static SubjectColumns *
trigger_columns(TriggerData *td, SubjectColumns *out)
{
	Trigger    *tg = td->tg_trigger;

	memset(out, 0, sizeof(*out));
	for (int i = 1; i < tg->tgnargs && out->n < MAX_SUBJECT_COLUMNS; i++)
	{
		AttrNumber	attnum = get_attnum(RelationGetRelid(td->tg_relation), tg->tgargs[i]);

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot check the subjects of a row of protected table \"%s\"", tg->tgargs[0]),
					 errdetail("A subject column named by pdp's trigger on shard \"%s\" no longer exists.",
							   RelationGetRelationName(td->tg_relation)),
					 errhint("Run pdp.protect_table on the table again after renaming a subject column.")));
		out->attnums[out->n++] = attnum;
	}
	return out;
}

/*
 * BEFORE UPDATE OR DELETE row trigger installed by pdp.protect_table.
 * Refuses the write when any registered subject of the old row is
 * restricted, whoever writes (owners too), except while an erasure runs.
 * On an ordinary table the subject columns are read from the registry,
 * never from trigger arguments, so renames, dumps and restores change
 * nothing.  On a Citus table the trigger fires on the shards, on workers
 * whose registry does not know them: there protect_table passes the
 * distributed table's name and its subject columns' names as arguments
 * (trigger_columns), and a name the shard lacks refuses the write.
 */
Datum
pdp_refuse_restricted(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	old;
	Oid			restriction_relid;
	Oid			restriction_pkey;
	const SubjectColumns *cols;
	SubjectColumns shard_cols;
	const char *table_name;
	bool		on_worker;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_UPDATE(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pdp._refuse_restricted() must fire BEFORE UPDATE OR DELETE FOR EACH ROW")));

	/* Erasure, and a maintenance purpose (its use is audited), may change them. */
	/*
	 * (Without a declared purpose there is no maintenance purpose to ask
	 * about: on a Citus worker asking would refuse the statement.)
	 */
	if (pdp_erasure_in_progress ||
		(pdp_purpose != NULL && pdp_purpose[0] != '\0' && (pdp_statement_flags(false) & PURPOSE_MAINTENANCE)))
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);

	on_worker = pdp_state_relation(PDP_STATE_RESTRICTION, &restriction_relid, &restriction_pkey);
	if (!OidIsValid(restriction_relid) || !OidIsValid(restriction_pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext is not installed in this database")));

	/*
	 * Nobody is restricted while pdp.restriction has no blocks (see the
	 * file's head): no probe per row then.
	 */
	if (relation_has_no_blocks(restriction_relid))
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);

	desc = RelationGetDescr(td->tg_relation);
	old = td->tg_trigtuple;
	if (td->tg_trigger->tgnargs > 0)
		cols = trigger_columns(td, &shard_cols);
	else
		cols = registered_subject_columns(RelationGetRelid(td->tg_relation));

	/*
	 * A trigger without arguments on a Citus worker, for a relation its
	 * registry does not know: a shard of a table protected before it was
	 * distributed.  Its subjects cannot be checked: refuse.
	 */
	if (td->tg_trigger->tgnargs == 0 && on_worker && cols->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot check the subjects of a row of shard \"%s\"",
						RelationGetRelationName(td->tg_relation)),
				 errdetail("pdp's trigger on this shard names no subject columns: the table was protected before it was distributed."),
				 errhint("On the coordinator, run pdp.protect_table on the distributed table again.")));
	table_name = td->tg_trigger->tgnargs > 0 ? td->tg_trigger->tgargs[0] : RelationGetRelationName(td->tg_relation);
	for (int i = 0; i < cols->n; i++)
	{
		AttrNumber	attnum = cols->attnums[i];
		bool		isnull;
		Datum		value;
		Oid			typoutput;
		bool		varlena;
		char	   *s;
		bool		restricted;

		if (attnum <= 0 || attnum > desc->natts || TupleDescAttr(desc, attnum - 1)->attisdropped)
			continue;
		value = heap_getattr(old, attnum, desc, &isnull);
		if (isnull)
			continue;
		getTypeOutputInfo(TupleDescAttr(desc, attnum - 1)->atttypid, &typoutput, &varlena);
		s = OidOutputFunctionCall(typoutput, value);
		restricted = text_key_exists(restriction_relid, restriction_pkey, s, NULL);
		if (!restricted)
		{
			/* '007' names the learner stored as '7', as in the row test. */
			char	   *other = other_spelling(s, strlen(s));

			if (other)
			{
				restricted = text_key_exists(restriction_relid, restriction_pkey, other, NULL);
				pfree(other);
			}
		}
		pfree(s);
		if (restricted)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot %s a row of a restricted subject in table \"%s\"",
							TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "update" : "delete",
							table_name),
					 errdetail("Processing of this subject's data is restricted; only storage is allowed."),
					 errhint("pdp.lift_restriction ends the restriction.")));
	}
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
}

