/*-------------------------------------------------------------------------
 * audit_reads.c
 *	  Read-access logging, opt-in per table (pdp.audit_reads): every
 *	  statement that reads a table listed in pdp.audit_read_table leaves an
 *	  audit record with its time, role, declared purpose, the table, the
 *	  number of rows its scans of that table returned and the number of rows
 *	  the statement returned, never a value.
 *
 * Where it hooks: ExecutorStart looks for listed tables in the statement's
 * range table (a few comparisons per table; nothing at all while no table
 * is listed).  For a statement that reads one it gives the scan nodes of
 * the listed tables a row counter (reads_count_node: one increment a row)
 * and remembers the statement.  ExecutorEnd adds up the rows returned by the
 * scan nodes of each listed table, the leader's and those its parallel
 * workers added to its slot of shared memory (see "Parallel workers'
 * counts" below), and hands one entry per table to the audit
 * worker, which commits it in a transaction of its own, batched with
 * others (audit_durable.c): a rollback of the reader's transaction does not
 * remove it.  A statement that fails or is cancelled after it started is
 * recorded too, from the abort callback, with "rows": null.
 *
 * It fails closed: a statement that reads a listed table on a server that
 * cannot record (pdp_ext not preloaded, a hot standby) is refused before it
 * returns a row.
 *
 * The list is cached per backend, read with a catalog scan (no SPI), and
 * dropped on an invalidation of pdp.audit_read_table (pdp.audit_reads
 * sends one), of schema pdp, or of everything.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "port/atomics.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(pdp_audit_reads_changed);

#define READS_MAX_TABLES 8		/* listed tables per statement recorded */
#define READS_MAX_TRACKED 64	/* nested statements tracked at once */

typedef struct TrackedRead
{
	QueryDesc  *qd;
	uint64		gen;			/* a parallel plan's generation in the slot, or 0 */
	SubTransactionId subid;
	int			ntables;
	Oid			relids[READS_MAX_TABLES];
	char		names[READS_MAX_TABLES][NAMEDATALEN * 2 + 8];
	char		role[NAMEDATALEN];
	char		session_role[NAMEDATALEN];
	char		purpose[NAMEDATALEN * 2];
	char		command[16];
} TrackedRead;

static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorEnd_hook_type prev_executor_end = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* The listed table a running COPY ... TO reads, and whether the executor recorded it. */
static Oid	copy_relid = InvalidOid;
static bool copy_recorded = false;

static bool list_valid = false;
static Oid	list_table = InvalidOid;	/* pdp.audit_read_table, when it exists */
static int	list_n = 0;
static Oid *list_oids = NULL;
static char (*list_names)[NAMEDATALEN * 2 + 8] = NULL;	/* quoted names, filled on first use ("" until then) */

/* The session user's name, looked up once (dropped on any pg_authid change). */
static Oid	session_uid = InvalidOid;
static char session_name[NAMEDATALEN];

static TrackedRead *tracked = NULL;
static int	ntracked = 0;

/*
 * Parallel workers' counts
 * ------------------------
 * A parallel worker runs its part of the plan in a process of its own, so
 * its scans' rows must reach the leader.  PostgreSQL's way, INSTRUMENT_ROWS
 * on every node of the plan, costs a parallel 1M-row count about a fifth of
 * its time.  Instead each leader has a slot in shared memory (by BackendId):
 * before a parallel plan starts, the leader writes there the listed tables
 * it tracks and a new generation; each worker gives the scans of those
 * tables the same one-increment counter as the leader's and, at its
 * ExecutorEnd, adds its counts to the slot if the generation is still its
 * leader's.  The leader reads the slot at its own ExecutorEnd, which comes
 * after every worker has finished (the Gather nodes wait for their workers
 * when the plan is shut down).  One parallel plan runs at a time per leader
 * (no parallel plan starts inside another), so one slot suffices.
 *
 * Note about locking: only the owning leader writes gen, relids and ntables,
 * while none of its workers runs; workers only read them, after reading gen
 * (a read barrier pairs with the write barrier before gen is set), and add
 * to rows atomically.  Without shared memory (pdp_ext not preloaded, where
 * listed tables cannot be read at all) a parallel plan falls back to
 * INSTRUMENT_ROWS.
 */
typedef struct ReadsSlot
{
	pg_atomic_uint64 gen;		/* the leader's current parallel plan; 0: none */
	int			ntables;
	Oid			relids[READS_MAX_TABLES];
	pg_atomic_uint64 rows[READS_MAX_TABLES];
} ReadsSlot;

static ReadsSlot *reads_slots = NULL;	/* MaxBackends of them, by BackendId - 1 */
static uint64 reads_last_gen = 0;	/* the leader's last generation */
static shmem_request_hook_type reads_prev_shmem_request = NULL;
static shmem_startup_hook_type reads_prev_shmem_startup = NULL;

/* In a parallel worker: the plan it counts for its leader, and the generation. */
static QueryDesc *worker_qd = NULL;
static uint64 worker_gen = 0;

static void
reads_shmem_request(void)
{
	if (reads_prev_shmem_request)
		reads_prev_shmem_request();
	RequestAddinShmemSpace(MAXALIGN(mul_size(sizeof(ReadsSlot), MaxBackends)));
}

static void
reads_shmem_startup(void)
{
	bool		found;

	if (reads_prev_shmem_startup)
		reads_prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	reads_slots = ShmemInitStruct("pdp_ext audit reads parallel", mul_size(sizeof(ReadsSlot), MaxBackends), &found);
	if (!found)
	{
		memset(reads_slots, 0, mul_size(sizeof(ReadsSlot), MaxBackends));
		for (int i = 0; i < MaxBackends; i++)
		{
			pg_atomic_init_u64(&reads_slots[i].gen, 0);
			for (int j = 0; j < READS_MAX_TABLES; j++)
				pg_atomic_init_u64(&reads_slots[i].rows[j], 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

static ReadsSlot *
reads_slot(BackendId leader)
{
	if (reads_slots == NULL || leader == InvalidBackendId || leader < 1 || leader > MaxBackends)
		return NULL;
	return &reads_slots[leader - 1];
}

static void
reads_invalidate(void)
{
	list_valid = false;
}

static void
reads_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == list_table)
		reads_invalidate();
	else
		for (int i = 0; i < list_n; i++)
			if (list_oids[i] == relid)
				reads_invalidate();
}

static void
reads_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	reads_invalidate();
}

static void
reads_authid_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	session_uid = InvalidOid;
}

/* Read pdp.audit_read_table into the cache (a catalog-style scan, no SPI). */
static void
reads_load(void)
{
	Oid			nsp;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	int			cap = 8;
	int			n = 0;
	Oid		   *oids;

	list_table = InvalidOid;
	list_n = 0;
	list_valid = true;			/* set first: a failure below leaves an empty list, reloaded on next inval */
	nsp = get_namespace_oid("pdp", true);
	if (!OidIsValid(nsp))
		return;
	list_table = get_relname_relid("audit_read_table", nsp);
	if (!OidIsValid(list_table))
		return;
	oids = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * cap);
	rel = table_open(list_table, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull);

		if (isnull)
			continue;
		if (n == cap)
		{
			cap *= 2;
			oids = repalloc(oids, sizeof(Oid) * cap);
		}
		oids[n++] = DatumGetObjectId(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (list_oids)
		pfree(list_oids);
	if (list_names)
		pfree(list_names);
	list_names = MemoryContextAllocZero(TopMemoryContext, sizeof(*list_names) * Max(n, 1));
	list_oids = oids;
	list_n = n;
}

/*
 * The quoted, qualified name of a table, from the cache of the list (looked
 * up once per listed table; a rename invalidates the list, see the
 * callbacks).  The result lives until the next invalidation.
 */
static const char *
reads_name(Oid relid)
{
	for (int i = 0; i < list_n; i++)
		if (list_oids[i] == relid)
		{
			if (list_names[i][0] == '\0')
			{
				char	   *nspname = get_namespace_name(get_rel_namespace(relid));
				char	   *relname = get_rel_name(relid);

				snprintf(list_names[i], sizeof(list_names[i]), "%s",
						 nspname && relname ? quote_qualified_identifier(nspname, relname) : "?");
			}
			return list_names[i];
		}
	return "?";
}

static inline bool
reads_listed(Oid relid)
{
	for (int i = 0; i < list_n; i++)
		if (list_oids[i] == relid)
			return true;
	return false;
}

static void
reads_actor(char *role, char *session_role)
{
	const char *actor = GetConfigOption("role", false, false);
	Oid			uid = GetSessionUserId();

	if (session_uid != uid)
	{
		strlcpy(session_name, GetUserNameFromId(uid, false), NAMEDATALEN);
		session_uid = uid;
	}
	if (actor == NULL || strcmp(actor, "none") == 0 || actor[0] == '\0')
		actor = session_name;
	strlcpy(role, actor, NAMEDATALEN);
	strlcpy(session_role, session_name, NAMEDATALEN);
}

/* Fail closed: refuse a read of a listed table that could not be recorded. */
static void
reads_check_available(void)
{
	if (pdp_audit_unavailable())
		ereport(ERROR,
				(errcode(RecoveryInProgress() ? ERRCODE_READ_ONLY_SQL_TRANSACTION
						 : ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot read a table whose reads are audited: the read could not be recorded"),
				 errdetail("Reads of this table are recorded by pdp_ext's audit worker, which needs pdp_ext in "
						   "shared_preload_libraries and a writable server (not a standby)."),
				 errhint("Read it on the primary, or stop auditing its reads with pdp.audit_reads(table, false).")));
}

/* Add a listed table to a tracked statement (once; at most READS_MAX_TABLES). */
static void
reads_add_table(TrackedRead *t, Oid relid)
{
	for (int i = 0; i < t->ntables; i++)
		if (t->relids[i] == relid)
			return;
	if (t->ntables >= READS_MAX_TABLES)
		return;
	t->relids[t->ntables] = relid;
	strlcpy(t->names[t->ntables], reads_name(relid), sizeof(t->names[0]));
	t->ntables++;
}

static bool
reads_is_scan(PlanState *ps)
{
	switch (nodeTag(ps->plan))
	{
		case T_SeqScan:
		case T_SampleScan:
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapHeapScan:
		case T_TidScan:
		case T_TidRangeScan:
		case T_ForeignScan:
		case T_CustomScan:
			return ((Scan *) ps->plan)->scanrelid > 0;
		default:
			return false;
	}
}

/*
 * The ExecProcNode of a counted scan node: the node's own function, and one
 * more row in its counter (instrument->tuplecount, which stays there, over
 * rescans too, because the counter is never "running"; see
 * reads_count_walker).  Cheaper per row than PostgreSQL's ExecProcNodeInstr,
 * which a 1,000,000-row scan calls a million times.
 */
static TupleTableSlot *
reads_count_node(PlanState *ps)
{
	TupleTableSlot *slot = ps->ExecProcNodeReal(ps);

	if (!TupIsNull(slot))
		ps->instrument->tuplecount += 1;
	return slot;
}

/*
 * Give the scan nodes of listed tables a row counter.  Done before the plan
 * first runs, after ExecInitNode: the counting function replaces exactly
 * these nodes' ExecProcNode, and every other node runs as without logging.
 * An asynchronous foreign scan returns its rows without ExecProcNode: it
 * keeps PostgreSQL's instrumentation (ExecProcNodeFirst installs it, and the
 * FDW counts its asynchronous rows).
 */
typedef struct CountTarget
{
	QueryDesc  *qd;
	const ReadsSlot *slot;		/* in a worker: count the slot's tables; else the listed ones */
} CountTarget;

static bool
reads_counted(const CountTarget *ct, Oid relid)
{
	if (ct->slot == NULL)
		return reads_listed(relid);
	for (int i = 0; i < ct->slot->ntables; i++)
		if (ct->slot->relids[i] == relid)
			return true;
	return false;
}

static bool
reads_instrument_walker(PlanState *ps, void *context)
{
	CountTarget *ct = (CountTarget *) context;

	if (ps == NULL)
		return false;
	if (ps->instrument == NULL && reads_is_scan(ps) &&
		reads_counted(ct, rt_fetch(((Scan *) ps->plan)->scanrelid, ct->qd->plannedstmt->rtable)->relid))
	{
		ps->instrument = InstrAlloc(1, INSTRUMENT_ROWS, false);
		if (!ps->plan->async_capable)
			ps->ExecProcNode = reads_count_node;
	}
	return planstate_tree_walker(ps, reads_instrument_walker, context);
}

static void
reads_instrument_scans(PlanState *ps, QueryDesc *qd, const ReadsSlot *slot)
{
	MemoryContext old = MemoryContextSwitchTo(qd->estate->es_query_cxt);
	CountTarget ct = {qd, slot};

	reads_instrument_walker(ps, &ct);
	MemoryContextSwitchTo(old);
}

/*
 * In a parallel worker: count the scans of the tables its leader tracks
 * (reads_executor_start), for reads_worker_end to add to the leader's slot.
 */
static void
reads_worker_start(QueryDesc *queryDesc)
{
	ReadsSlot  *slot = reads_slot(ParallelLeaderBackendId);
	uint64		gen;

	worker_qd = NULL;
	if (slot == NULL || (gen = pg_atomic_read_u64(&slot->gen)) == 0)
		return;
	pg_read_barrier();
	if (queryDesc->planstate == NULL || (queryDesc->instrument_options & INSTRUMENT_ROWS) != 0)
		return;					/* EXPLAIN ANALYZE and the like: the leader gets this worker's counts from PostgreSQL */
	reads_instrument_scans(queryDesc->planstate, queryDesc, slot);
	worker_qd = queryDesc;
	worker_gen = gen;
}

static void
reads_executor_start(QueryDesc *queryDesc, int eflags)
{
	TrackedRead *t = NULL;

	if (!list_valid && IsTransactionState())
		reads_load();
	if (list_n > 0 && !IsParallelWorker() && (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0)
	{
		ListCell   *lc;

		foreach(lc, queryDesc->plannedstmt->rtable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

			if (rte->rtekind != RTE_RELATION || (rte->requiredPerms & ACL_SELECT) == 0 ||
				!reads_listed(rte->relid))
				continue;
			if (t == NULL)
			{
				reads_check_available();
				if (ntracked >= READS_MAX_TRACKED)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("too many nested statements read tables whose reads are audited")));
				if (tracked == NULL)
					tracked = MemoryContextAllocZero(TopMemoryContext, sizeof(TrackedRead) * READS_MAX_TRACKED);
				t = &tracked[ntracked];
				memset(t, 0, sizeof(*t));
				t->subid = GetCurrentSubTransactionId();
				reads_actor(t->role, t->session_role);
				strlcpy(t->purpose, pdp_purpose ? pdp_purpose : "", sizeof(t->purpose));
				strlcpy(t->command, queryDesc->operation == CMD_SELECT ? "SELECT" :
						queryDesc->operation == CMD_UPDATE ? "UPDATE" :
						queryDesc->operation == CMD_DELETE ? "DELETE" :
						queryDesc->operation == CMD_INSERT ? "INSERT" : "OTHER", sizeof(t->command));
			}
			reads_add_table(t, rte->relid);
		}
		/*
		 * A parallel plan: its workers count too and add their counts to
		 * this leader's slot (see "Parallel workers' counts"); without the
		 * slots, every node counts rows so that PostgreSQL brings the
		 * workers' counts back.
		 */
		if (t != NULL && queryDesc->plannedstmt->parallelModeNeeded)
		{
			ReadsSlot  *slot = reads_slot(MyBackendId);

			if (slot == NULL)
				queryDesc->instrument_options |= INSTRUMENT_ROWS;
			else
			{
				pg_atomic_write_u64(&slot->gen, 0);
				slot->ntables = t->ntables;
				for (int i = 0; i < READS_MAX_TABLES; i++)
				{
					slot->relids[i] = i < t->ntables ? t->relids[i] : InvalidOid;
					pg_atomic_write_u64(&slot->rows[i], 0);
				}
				t->gen = ++reads_last_gen;
				pg_write_barrier();
				pg_atomic_write_u64(&slot->gen, t->gen);
			}
		}
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	if (t != NULL)
	{
		if (queryDesc->planstate != NULL && (queryDesc->instrument_options & INSTRUMENT_ROWS) == 0)
			reads_instrument_scans(queryDesc->planstate, queryDesc, NULL);
		t->qd = queryDesc;
		ntracked++;
	}
	else if (IsParallelWorker() && (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0)
		reads_worker_start(queryDesc);
}

typedef struct RowCount
{
	TrackedRead *t;
	List	   *rtable;
	double		rows[READS_MAX_TABLES];
} RowCount;

static bool
reads_count_walker(PlanState *ps, void *context)
{
	RowCount   *rc = (RowCount *) context;

	if (ps == NULL)
		return false;
	if (reads_is_scan(ps) && ps->instrument != NULL)
	{
		Oid			relid = rt_fetch(((Scan *) ps->plan)->scanrelid, rc->rtable)->relid;

		/*
		 * PostgreSQL's instrumentation (parallel plans, asynchronous scans)
		 * moves a loop's rows to ntuples at InstrEndLoop; reads_count_node's
		 * stay in tuplecount (InstrEndLoop does nothing to a counter that
		 * never ran).  Either way, the total is their sum.
		 */
		InstrEndLoop(ps->instrument);
		for (int i = 0; i < rc->t->ntables; i++)
			if (rc->t->relids[i] == relid)
				rc->rows[i] += ps->instrument->ntuples + ps->instrument->tuplecount;
	}
	return planstate_tree_walker(ps, reads_count_walker, context);
}

/*
 * Hand the entries of t to the audit worker: per table the rows its scans
 * returned, and the rows the statement returned; rows NULL: unknown (the
 * statement failed).
 */
static void
reads_record(TrackedRead *t, const double *rows, uint64 returned)
{
	for (int i = 0; i < t->ntables; i++)
	{
		char		details[NAMEDATALEN * 4 + 128];
		char		purpose[NAMEDATALEN * 4 + 2];
		char	   *p = purpose;

		if (t->relids[i] == copy_relid)
			copy_recorded = true;

		/* A JSON string of the purpose (a declared name; escape what JSON needs). */
		for (const char *c = t->purpose; *c && p < purpose + sizeof(purpose) - 3; c++)
		{
			if (*c == '"' || *c == '\\')
				*p++ = '\\';
			if ((unsigned char) *c < 0x20)
				continue;
			*p++ = *c;
		}
		*p = '\0';
		snprintf(details, sizeof(details), "{\"command\": \"%s\", \"purpose\": %s%s%s}",
				 t->command, purpose[0] ? "\"" : "", purpose[0] ? purpose : "null", purpose[0] ? "\"" : "");
		if (!pdp_audit_read_buffered(t->role, t->session_role, t->names[i], details,
									 rows != NULL ? (int64) rows[i] : -1, (int64) returned, rows != NULL) &&
			rows != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("could not record a read of a table whose reads are audited"),
					 errhint("Check that pdp_ext's audit worker can run (max_worker_processes) and pdp.audit_timeout.")));
	}
}

static void
reads_executor_end(QueryDesc *queryDesc)
{
	int			found = -1;

	for (int i = ntracked - 1; i >= 0; i--)
		if (tracked[i].qd == queryDesc)
		{
			found = i;
			break;
		}
	if (found >= 0)
	{
		RowCount	rc;
		TrackedRead t = tracked[found];

		/* Forget it first: whatever happens below, it is not recorded twice. */
		memmove(&tracked[found], &tracked[found + 1], sizeof(TrackedRead) * (ntracked - found - 1));
		ntracked--;
		memset(&rc, 0, sizeof(rc));
		rc.t = &t;
		rc.rtable = queryDesc->plannedstmt->rtable;
		if (queryDesc->planstate != NULL)
			reads_count_walker(queryDesc->planstate, &rc);
		if (t.gen != 0)
		{
			/* The workers' counts: every worker has finished by now. */
			ReadsSlot  *slot = reads_slot(MyBackendId);

			if (slot != NULL && pg_atomic_read_u64(&slot->gen) == t.gen)
			{
				for (int i = 0; i < t.ntables; i++)
					rc.rows[i] += (double) pg_atomic_read_u64(&slot->rows[i]);
				pg_atomic_write_u64(&slot->gen, 0);
			}
		}
		reads_record(&t, rc.rows, queryDesc->estate ? queryDesc->estate->es_processed : 0);
	}
	else if (queryDesc == worker_qd)
	{
		/* A parallel worker: its counts go to its leader's slot. */
		ReadsSlot  *slot = reads_slot(ParallelLeaderBackendId);
		TrackedRead wt;
		RowCount	rc;

		worker_qd = NULL;
		if (slot != NULL && pg_atomic_read_u64(&slot->gen) == worker_gen)
		{
			memset(&wt, 0, sizeof(wt));
			wt.ntables = slot->ntables;
			memcpy(wt.relids, slot->relids, sizeof(wt.relids));
			memset(&rc, 0, sizeof(rc));
			rc.t = &wt;
			rc.rtable = queryDesc->plannedstmt->rtable;
			if (queryDesc->planstate != NULL)
				reads_count_walker(queryDesc->planstate, &rc);
			for (int i = 0; i < wt.ntables; i++)
				if (rc.rows[i] > 0)
					pg_atomic_fetch_add_u64(&slot->rows[i], (uint64) rc.rows[i]);
		}
	}
	if (prev_executor_end)
		prev_executor_end(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/* Statements that never reached ExecutorEnd (an error, a cancel): recorded with unknown rows. */
static void
reads_abort(SubTransactionId subid)
{
	int			keep = 0;

	for (int i = 0; i < ntracked; i++)
	{
		if (tracked[i].subid >= subid)
			reads_record(&tracked[i], NULL, 0);
		else
			tracked[keep++] = tracked[i];
	}
	ntracked = keep;
}

static void
reads_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		reads_abort(InvalidSubTransactionId);
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT)
		ntracked = 0;			/* a portal kept to the end (a cursor closed at commit) was recorded by ExecutorEnd */
}

static void
reads_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		reads_abort(mySubid);
}

/*
 * COPY table TO (a file, a program or the client) reads the table without
 * the executor, so the executor hooks never see it: record it here, with
 * the rows COPY wrote, command "COPY".  COPY (query) TO, and COPY table TO
 * of a table under row-level security (which PostgreSQL turns into a
 * query), run the executor and are recorded by it instead, once.  A COPY
 * that fails after it started is recorded with "rows": null.
 */
static void
reads_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	TrackedRead t;
	Oid			relid = InvalidOid;
	Oid			save_relid = copy_relid;
	bool		save_recorded = copy_recorded;

	if (IsA(parsetree, CopyStmt) && ((CopyStmt *) parsetree)->relation != NULL &&
		!((CopyStmt *) parsetree)->is_from && IsTransactionState())
	{
		if (!list_valid)
			reads_load();
		if (list_n > 0)
		{
			relid = RangeVarGetRelid(((CopyStmt *) parsetree)->relation, NoLock, true);
			if (!OidIsValid(relid) || !reads_listed(relid))
				relid = InvalidOid;
		}
	}
	if (!OidIsValid(relid))
	{
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		return;
	}

	reads_check_available();
	memset(&t, 0, sizeof(t));
	t.subid = GetCurrentSubTransactionId();
	reads_actor(t.role, t.session_role);
	strlcpy(t.purpose, pdp_purpose ? pdp_purpose : "", sizeof(t.purpose));
	strlcpy(t.command, "COPY", sizeof(t.command));
	reads_add_table(&t, relid);

	copy_relid = relid;
	copy_recorded = false;
	PG_TRY();
	{
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		bool		recorded = copy_recorded;

		copy_relid = save_relid;
		copy_recorded = save_recorded;
		if (!recorded)
			reads_record(&t, NULL, 0);
		PG_RE_THROW();
	}
	PG_END_TRY();
	{
		bool		recorded = copy_recorded;

		copy_relid = save_relid;
		copy_recorded = save_recorded;
		if (!recorded)
		{
			double		rows[READS_MAX_TABLES] = {0};
			uint64		n = qc != NULL ? qc->nprocessed : 0;

			rows[0] = (double) n;
			reads_record(&t, rows, n);
		}
	}
}

/*
 * pdp._audit_reads_changed() RETURNS void: tells every backend that the
 * list of tables whose reads are audited changed (at commit).
 */
Datum
pdp_audit_reads_changed(PG_FUNCTION_ARGS)
{
	Oid			nsp = get_namespace_oid("pdp", false);
	Oid			relid = get_relname_relid("audit_read_table", nsp);

	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
	reads_invalidate();
	PG_RETURN_VOID();
}

void
pdp_audit_reads_init(void)
{
	if (process_shared_preload_libraries_in_progress)
	{
		reads_prev_shmem_request = shmem_request_hook;
		shmem_request_hook = reads_shmem_request;
		reads_prev_shmem_startup = shmem_startup_hook;
		shmem_startup_hook = reads_shmem_startup;
	}
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = reads_executor_start;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = reads_executor_end;
	CacheRegisterRelcacheCallback(reads_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, reads_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, reads_authid_callback, (Datum) 0);
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = reads_process_utility;
	RegisterXactCallback(reads_xact_callback, NULL);
	RegisterSubXactCallback(reads_subxact_callback, NULL);
}
