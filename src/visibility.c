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
 * Parallel workers share the leader's snapshot and do the same on their own
 * part of the scan.
 *
 * Memory
 * ------
 * Sets live in "pdp_ext visibility sets" (a child of TopMemoryContext),
 * one child context per set, reset when the next snapshot is seen.  Nothing
 * in them points to anything else, and no callback touches them, so an
 * invalidation or an error during a build cannot leave a dangling pointer:
 * a set is published only once it is complete.
 *
 * The write guard probes pdp.restriction's primary key for each subject of
 * each updated or deleted row, under the catalog snapshot (never older than
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
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_inherits.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/proc.h"
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
	uint64		probes;
	uint64		threshold;		/* probes after which the set is built; 0 = not yet known */
	MemoryContext cxt;			/* holds what the set holds */
	Size		bytes;			/* counted against the budget */
	pdp_int_set ints;			/* canonical integer ids */
	HTAB	   *texts;			/* every other identifier; NULL when none */
} VisSet;

#define MAX_SNAPSHOT_XIDS 64

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
	/* Where they are read (citus_state.c), resolved with the snapshot. */
	Oid			consent_relid;
	Oid			consent_pkey;
	Oid			restriction_relid;
	Oid			restriction_pkey;
} VisState;

static VisState vis;

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
	text	   *t = cstring_to_text(key);
	text	   *t2 = key2 ? cstring_to_text(key2) : NULL;

	ScanKeyEntryInitialize(&skey[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   DEFAULT_COLLATION_OID, F_TEXTEQ, PointerGetDatum(t));
	if (key2)
		ScanKeyEntryInitialize(&skey[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
							   DEFAULT_COLLATION_OID, F_TEXTEQ, PointerGetDatum(t2));
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
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	pfree(t);
	if (t2)
		pfree(t2);
	return found;
}

static bool
text_key_exists(Oid relid, Oid indexoid, const char *key, Snapshot snap)
{
	return key_probe(relid, indexoid, key, NULL, snap, 0);
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
	MemoryContextReset(vis.cxt);
	reset_set(&vis.consent, AllocSetContextCreate(vis.cxt, "pdp_ext consent set", ALLOCSET_SMALL_SIZES));
	reset_set(&vis.restricted, AllocSetContextCreate(vis.cxt, "pdp_ext restriction set", ALLOCSET_SMALL_SIZES));
	vis.snap = snap;
	vis.curcid = snap->curcid;
	vis.xmin = snap->xmin;
	vis.xmax = snap->xmax;
	vis.xcnt = snap->xcnt;
	vis.subxcnt = snap->subxcnt;
	vis.lxid = MyProc->lxid;
	vis.stmt_start = GetCurrentStatementStartTimestamp();
	strlcpy(vis.purpose, purpose, sizeof(vis.purpose));
	(void) pdp_state_relation(PDP_STATE_CONSENT, &vis.consent_relid, &vis.consent_pkey);
	(void) pdp_state_relation(PDP_STATE_RESTRICTION, &vis.restriction_relid, &vis.restriction_pkey);
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

/* Call cb for each subject of a row the set takes in. */
static void
scan_subjects(SetScan *ss, subject_cb cb, void *arg)
{
	TupleDesc	desc = RelationGetDescr(ss->rel);
	TableScanDesc scan = table_beginscan(ss->rel, ss->snap, 0, NULL);
	HeapTuple	tuple;

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d;
		text	   *t;

		CHECK_FOR_INTERRUPTS();
		if (ss->purpose_att > 0)
		{
			d = heap_getattr(tuple, ss->purpose_att, desc, &isnull);
			if (isnull)
				continue;
			t = DatumGetTextPP(d);
			if (VARSIZE_ANY_EXHDR(t) != ss->plen || memcmp(VARDATA_ANY(t), ss->purpose, ss->plen) != 0)
				continue;
		}
		if (ss->until_att > 0)
		{
			d = heap_getattr(tuple, ss->until_att, desc, &isnull);
			if (!isnull && DatumGetTimestampTz(d) <= ss->now)
				continue;
		}
		d = heap_getattr(tuple, ss->subject_att, desc, &isnull);
		if (isnull)
			continue;
		t = DatumGetTextPP(d);
		cb(arg, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
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
	MemoryContextReset(set->cxt);
	set->texts = NULL;
	set->bytes = 0;
	memset(&set->ints, 0, sizeof(set->ints));

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
 * as many probes as reading the table costs (4 per block).
 */
static bool
time_to_build(VisSet *set, Oid relid)
{
	if (set->state != SET_PROBING)
		return false;
	if (set->threshold == 0)
	{
		Relation	rel = table_open(relid, AccessShareLock);

		set->threshold = 32 + 4 * (uint64) RelationGetNumberOfBlocks(rel);
		table_close(rel, AccessShareLock);
	}
	return ++set->probes >= set->threshold;
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
	if (set->texts == NULL)
		return false;
	subject_key(s, len, &key);
	return hash_search(set->texts, &key, HASH_FIND, NULL) != NULL;
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

/* Does the subject consent to the declared purpose (under the active snapshot)? */
static bool
subject_consents(const char *s, size_t len, bool have_id, int64 id)
{
	Oid			relid;
	char	   *cstr;
	bool		found;

	if (vis.consent.state == SET_BUILT)
		return set_contains(&vis.consent, s, len, have_id, id);
	relid = vis.consent_relid;
	if (!OidIsValid(relid) || !OidIsValid(vis.consent_pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext is not installed in this database")));
	if (time_to_build(&vis.consent, relid))
	{
		build_set(&vis.consent, relid, get_attnum(relid, "subject"), get_attnum(relid, "purpose"),
				  vis.purpose, get_attnum(relid, "valid_until"), vis.snap);
		if (vis.consent.state == SET_BUILT)
			return set_contains(&vis.consent, s, len, have_id, id);
	}
	cstr = s ? pnstrdup(s, len) : psprintf(INT64_FORMAT, id);
	found = key_probe(relid, vis.consent_pkey, cstr, vis.purpose,
					  vis.snap, get_attnum(relid, "valid_until"));
	pfree(cstr);
	if (!found && (cstr = other_spelling(s, len)) != NULL)
	{
		found = key_probe(relid, vis.consent_pkey, cstr, vis.purpose,
						  vis.snap, get_attnum(relid, "valid_until"));
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

	if (vis.restricted.state == SET_BUILT)
		return set_contains(&vis.restricted, s, len, have_id, id);
	relid = vis.restriction_relid;
	if (!OidIsValid(relid) || !OidIsValid(vis.restriction_pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext is not installed in this database")));
	if (time_to_build(&vis.restricted, relid))
	{
		build_set(&vis.restricted, relid, get_attnum(relid, "subject"), 0, NULL, 0, vis.snap);
		if (vis.restricted.state == SET_BUILT)
			return set_contains(&vis.restricted, s, len, have_id, id);
	}
	cstr = s ? pnstrdup(s, len) : psprintf(INT64_FORMAT, id);
	found = text_key_exists(relid, vis.restriction_pkey, cstr, vis.snap);
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
 * pdp._visible(subject) RETURNS boolean, for bigint (and integer), text
 * (and varchar) and uuid subjects: the per-row test of the policies that
 * pdp.protect_table creates.  A NULL subject names nobody: visible whenever
 * any row is.
 */
Datum
pdp_visible_int8(PG_FUNCTION_ARGS)
{
	int			flags;

	pdp_note_pdp_ran();
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
 * BEFORE UPDATE OR DELETE row trigger installed by pdp.protect_table.
 * Refuses the write when any registered subject of the old row is
 * restricted, whoever writes (owners too), except while an erasure runs.
 * The subject columns are read from the registry, never from trigger
 * arguments, so renames, dumps and restores change nothing.
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

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_UPDATE(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pdp._refuse_restricted() must fire BEFORE UPDATE OR DELETE FOR EACH ROW")));

	/* Erasure, and a maintenance purpose (its use is audited), may change them. */
	if (pdp_erasure_in_progress || (pdp_statement_flags(false) & PURPOSE_MAINTENANCE))
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);

	(void) pdp_state_relation(PDP_STATE_RESTRICTION, &restriction_relid, &restriction_pkey);
	if (!OidIsValid(restriction_relid) || !OidIsValid(restriction_pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pdp_ext is not installed in this database")));

	desc = RelationGetDescr(td->tg_relation);
	old = td->tg_trigtuple;
	cols = registered_subject_columns(RelationGetRelid(td->tg_relation));
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
		pfree(s);
		if (restricted)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot %s a row of a restricted subject in table \"%s\"",
							TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "update" : "delete",
							RelationGetRelationName(td->tg_relation)),
					 errdetail("Processing of this subject's data is restricted; only storage is allowed."),
					 errhint("pdp.lift_restriction ends the restriction.")));
	}
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
}

