/*-------------------------------------------------------------------------
 * audit_durable.c
 *	  Durable audit entries: entries for reads of personal data (reversals,
 *	  subject exports) are committed by a background worker, in a
 *	  transaction of its own, before the value reaches the caller.  The
 *	  caller's transaction may then roll back; the entry stays.
 *
 * A backend that must record such an entry puts it into a slot of a small
 * ring in shared memory, wakes the audit worker of its database (starting
 * one if there is none) and sleeps on a condition variable until the worker
 * says the entry is committed (DONE) or could not be (FAILED).  Only then
 * does the caller go on and return the value; on failure, or after
 * pdp.audit_timeout, it raises an error and the value is never returned.
 *
 * The worker takes every pending slot of its database, inserts them into
 * pdp.audit_log in one transaction (several callers' entries in one commit),
 * commits with synchronous_commit on, and only then marks them DONE.  A
 * worker killed after its commit and before its acknowledgement takes the
 * postmaster through crash recovery, which ends every waiting caller too:
 * no caller gets a value whose entry is not committed, and shared memory
 * (the ring) starts empty, so nothing is written twice.  Between batches it
 * also seals the chain (pdp._audit_seal_pending), so that sealing never runs
 * in an application statement.  It exits after a second with nothing to do
 * (so that DROP DATABASE is not held up) and is started again on demand.
 *
 * Note about locking: the LWLock pdp_audit->lock guards every field of the
 * shared state (the slots, the per-database worker table, next_ticket).
 * Writers hold it exclusively to claim a slot, to look up or start their
 * worker, and to read their slot's state; the worker holds it exclusively
 * to take pending slots and to mark them DONE or FAILED.  Nobody holds it
 * while doing I/O, running SQL or sleeping.  The condition variable
 * pdp_audit->done is broadcast after every change a writer may wait for
 * (an acknowledgement, a failure, a slot freed, a worker gone).
 *
 * Without shared_preload_libraries there is no shared memory and no worker:
 * recording fails, and so does every reversal and export (SQLSTATE 55000).
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PGDLLEXPORT void pdp_audit_worker_main(Datum main_arg);

#define AUDIT_RING_SLOTS	256
#define AUDIT_MAX_DATABASES	16
#define AUDIT_ACTION_LEN	64
#define AUDIT_OBJECT_LEN	256
#define AUDIT_SUBJECT_LEN	72
#define AUDIT_DETAILS_LEN	2048
#define AUDIT_WORKER_IDLE_MS 1000
#define AUDIT_WORKER_START_MS 10000

typedef enum AuditSlotState
{
	SLOT_FREE = 0,
	SLOT_PENDING,				/* filled by a writer, waiting for the worker */
	SLOT_TAKEN,					/* in the worker's open transaction */
	SLOT_DONE,					/* committed: the writer may go on */
	SLOT_FAILED,				/* could not be committed */
	SLOT_ABANDONED				/* taken, but its writer gave up waiting */
} AuditSlotState;

typedef struct AuditSlot
{
	AuditSlotState state;
	uint64		ticket;			/* who owns the slot */
	Oid			dbid;
	TimestampTz at;
	int			sqlerrcode;		/* when FAILED */
	int64		entry_id;		/* when DONE */
	bool		async;			/* nobody waits: freed once committed */
	int64		rows;			/* async reads: rows its scans of the table returned, -1 unknown (failed) */
	int64		returned;		/* async reads: rows the statement returned */
	bool		has_object;
	bool		has_subject;
	NameData	role;
	NameData	session_role;
	char		action[AUDIT_ACTION_LEN];
	char		object[AUDIT_OBJECT_LEN];
	char		subject[AUDIT_SUBJECT_LEN];
	char		details[AUDIT_DETAILS_LEN];
} AuditSlot;

typedef struct AuditWorker
{
	Oid			dbid;			/* InvalidOid: entry unused */
	pid_t		pid;			/* 0 while starting or gone */
	bool		starting;
	TimestampTz start_requested;
	TimestampTz seal_until;		/* seal every quarter second until then */
	Latch	   *latch;
} AuditWorker;

typedef struct AuditShared
{
	LWLock	   *lock;
	ConditionVariable done;
	uint64		next_ticket;
	int			next_slot;		/* where the search for a free slot starts */
	AuditWorker workers[AUDIT_MAX_DATABASES];
	AuditSlot	slots[AUDIT_RING_SLOTS];
} AuditShared;

/*
 * Read-access records are batched per backend (issue 15, point 4): each
 * backend appends its statements to its own buffer in shared memory, under
 * the buffer's spinlock and without the shared lock, and the audit worker
 * empties every buffer of its database on each turn (at least every quarter
 * second, sooner when a buffer is half full).  A buffer holds the
 * statements of up to READBUF_KEYS distinct (role, session role, table,
 * command, purpose) keys; the worker writes one row per key and buffer,
 * listing each statement.  Only when a buffer is full does its backend wait
 * (for the worker to empty it).  1024 statements a backend (about 35 kB): at a few
 * thousand lookups a second a backend wakes the worker about every quarter
 * second, so the worker commits a few times a second, not per statement.
 */
#define READBUF_STMTS 1024
#define READBUF_KEYS 4
#define READBUF_WAKE (READBUF_STMTS * 3 / 4)
#define READBUF_DETAILS_LEN 320

typedef struct ReadKey
{
	NameData	role;
	NameData	session_role;
	char		object[AUDIT_OBJECT_LEN];
	char		details[READBUF_DETAILS_LEN];
} ReadKey;

typedef struct ReadStmt
{
	TimestampTz at;
	int64		rows;			/* -1: unknown (the statement failed) */
	int64		returned;
	int			key;
} ReadStmt;

typedef struct AuditReadBuf
{
	slock_t		mutex;			/* guards every other field */
	Oid			dbid;			/* of the statements in it */
	int			n;				/* statements buffered */
	int			nkeys;
	ReadKey		keys[READBUF_KEYS];
	ReadStmt	stmts[READBUF_STMTS];
} AuditReadBuf;

static AuditShared *pdp_audit = NULL;
static AuditReadBuf *pdp_readbufs = NULL;	/* MaxBackends of them, by BackendId - 1 */
static int	pdp_nreadbufs = 0;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static int	pdp_audit_timeout_ms = 10000;
static int	worker_index = -1;	/* in the worker: its entry in workers[] */

static void
audit_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(AuditShared)));
	RequestAddinShmemSpace(MAXALIGN(mul_size(sizeof(AuditReadBuf), MaxBackends)));
	RequestNamedLWLockTranche("pdp_ext audit", 1);
}

static void
audit_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pdp_audit = ShmemInitStruct("pdp_ext audit", sizeof(AuditShared), &found);
	if (!found)
	{
		memset(pdp_audit, 0, sizeof(AuditShared));
		pdp_audit->lock = &(GetNamedLWLockTranche("pdp_ext audit"))->lock;
		ConditionVariableInit(&pdp_audit->done);
		pdp_audit->next_ticket = 1;
	}
	pdp_nreadbufs = MaxBackends;
	pdp_readbufs = ShmemInitStruct("pdp_ext audit reads", mul_size(sizeof(AuditReadBuf), MaxBackends), &found);
	if (!found)
	{
		memset(pdp_readbufs, 0, mul_size(sizeof(AuditReadBuf), MaxBackends));
		for (int i = 0; i < MaxBackends; i++)
			SpinLockInit(&pdp_readbufs[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Called once from _PG_init: the setting, and, when loaded by
 * shared_preload_libraries, the shared memory hooks.
 */
void
pdp_audit_durable_init(void)
{
	DefineCustomIntVariable("pdp.audit_timeout",
							"How long a reversal or export waits for its audit entry to be committed.",
							"After this the call fails and returns nothing.",
							&pdp_audit_timeout_ms,
							10000, 100, 600000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = audit_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = audit_shmem_startup;
}

static void
fail_unrecordable(int sqlerrcode, const char *detail)
{
	ereport(ERROR,
			(errcode(sqlerrcode),
			 errmsg("could not record the audit entry of a read of personal data"),
			 errdetail_internal("%s", detail),
			 errhint("Nothing was returned.  Reversals and exports are recorded by pdp_ext's audit worker, "
					 "which needs pdp_ext in shared_preload_libraries and a writable server.")));
}

/*
 * Make sure a worker serves MyDatabaseId: returns its latch to set, or NULL
 * when one is starting.  *start is set when the caller must start one.
 * Caller must hold pdp_audit->lock exclusively.
 */
static Latch *
audit_worker_for_db(bool *start, int *index)
{
	int			free_index = -1;
	TimestampTz now = GetCurrentTimestamp();

	*start = false;
	for (int i = 0; i < AUDIT_MAX_DATABASES; i++)
	{
		AuditWorker *w = &pdp_audit->workers[i];

		if (w->dbid == MyDatabaseId)
		{
			*index = i;
			if (w->pid != 0)
				return w->latch;
			if (w->starting &&
				!TimestampDifferenceExceeds(w->start_requested, now, AUDIT_WORKER_START_MS))
				return NULL;
			w->starting = true;
			w->start_requested = now;
			*start = true;
			return NULL;
		}
		if (w->dbid == InvalidOid && free_index < 0)
			free_index = i;
	}
	if (free_index < 0)
		return NULL;			/* the caller fails on start == false && no latch */
	pdp_audit->workers[free_index].dbid = MyDatabaseId;
	pdp_audit->workers[free_index].pid = 0;
	pdp_audit->workers[free_index].starting = true;
	pdp_audit->workers[free_index].start_requested = now;
	*index = free_index;
	*start = true;
	return NULL;
}

static bool
audit_start_worker(int index)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "pdp_ext", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "pdp_audit_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "pdp_ext audit worker for database %u", MyDatabaseId);
	strlcpy(worker.bgw_type, "pdp_ext audit worker", BGW_MAXLEN);
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	memcpy(worker.bgw_extra, &index, sizeof(int));
	worker.bgw_notify_pid = 0;
	return RegisterDynamicBackgroundWorker(&worker, &handle);
}

/* Give a slot back (its writer leaves).  Caller holds the lock. */
static void
audit_release_slot(AuditSlot *slot, uint64 ticket)
{
	if (slot->ticket != ticket)
		return;
	if (slot->state == SLOT_TAKEN)
		slot->state = SLOT_ABANDONED;
	else
		slot->state = SLOT_FREE;
}

/*
 * Record one entry durably and wait until it is committed.  Raises an error
 * (and so returns no value to the caller) when it cannot be.  Fields are
 * truncated to their slot sizes only where harmless (names); an oversized
 * object or details is refused.  Returns the entry's id.
 */
int64
pdp_audit_durable(const char *action, const char *object, const char *subject_pseudonym,
				  const char *details)
{
	AuditSlot  *volatile slot = NULL;
	volatile uint64 ticket = 0;
	const char *actor;
	TimestampTz deadline;
	volatile int64 entry_id = 0;
	volatile int failed_code = 0;
	volatile bool timed_out = false;

	if (pdp_audit == NULL)
		fail_unrecordable(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
						  "pdp_ext is not loaded by shared_preload_libraries, so it has no audit worker.");
	if (RecoveryInProgress())
		fail_unrecordable(ERRCODE_READ_ONLY_SQL_TRANSACTION,
						  "The server is in recovery (a standby) and cannot commit audit entries.");
	if (strlen(action) >= AUDIT_ACTION_LEN ||
		(object && strlen(object) >= AUDIT_OBJECT_LEN) ||
		(subject_pseudonym && strlen(subject_pseudonym) >= AUDIT_SUBJECT_LEN) ||
		strlen(details) >= AUDIT_DETAILS_LEN)
		fail_unrecordable(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "The entry is larger than an audit slot.");

	actor = GetConfigOption("role", false, false);
	if (actor == NULL || strcmp(actor, "none") == 0 || actor[0] == '\0')
		actor = GetUserNameFromId(GetSessionUserId(), false);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), pdp_audit_timeout_ms);
	ConditionVariablePrepareToSleep(&pdp_audit->done);
	PG_TRY();
	{
		bool		wake_sent = false;

		for (;;)
		{
			Latch	   *latch = NULL;
			bool		start = false;
			int			windex = -1;
			bool		no_room = false;

			LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
			if (slot == NULL)
			{
				for (int i = 0; i < AUDIT_RING_SLOTS; i++)
				{
					int			n = (pdp_audit->next_slot + i) % AUDIT_RING_SLOTS;

					if (pdp_audit->slots[n].state == SLOT_FREE)
					{
						slot = &pdp_audit->slots[n];
						pdp_audit->next_slot = (n + 1) % AUDIT_RING_SLOTS;
						break;
					}
				}
				if (slot != NULL)
				{
					ticket = pdp_audit->next_ticket++;
					memset(slot, 0, offsetof(AuditSlot, action));
					slot->ticket = ticket;
					slot->dbid = MyDatabaseId;
					slot->at = GetCurrentTimestamp();
					namestrcpy(&slot->role, actor);
					namestrcpy(&slot->session_role, GetUserNameFromId(GetSessionUserId(), false));
					strlcpy(slot->action, action, AUDIT_ACTION_LEN);
					slot->has_object = object != NULL;
					strlcpy(slot->object, object ? object : "", AUDIT_OBJECT_LEN);
					slot->has_subject = subject_pseudonym != NULL;
					strlcpy(slot->subject, subject_pseudonym ? subject_pseudonym : "", AUDIT_SUBJECT_LEN);
					strlcpy(slot->details, details, AUDIT_DETAILS_LEN);
					slot->state = SLOT_PENDING;
				}
			}
			if (slot != NULL && slot->ticket == ticket)
			{
				if (slot->state == SLOT_DONE)
				{
					entry_id = slot->entry_id;
					slot->state = SLOT_FREE;
					LWLockRelease(pdp_audit->lock);
					break;
				}
				if (slot->state == SLOT_FAILED)
				{
					failed_code = slot->sqlerrcode;
					slot->state = SLOT_FREE;
					LWLockRelease(pdp_audit->lock);
					break;
				}
				if (slot->state == SLOT_PENDING && !wake_sent)
				{
					latch = audit_worker_for_db(&start, &windex);
					if (latch == NULL && !start && windex < 0)
						no_room = true;
				}
			}
			if (no_room)
			{
				audit_release_slot(slot, ticket);
				slot = NULL;
				LWLockRelease(pdp_audit->lock);
				fail_unrecordable(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
								  "Too many databases use pdp_ext's audit worker at once.");
			}
			LWLockRelease(pdp_audit->lock);

			if (latch != NULL)
			{
				SetLatch(latch);
				wake_sent = true;
			}
			if (start && !audit_start_worker(windex))
			{
				LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
				pdp_audit->workers[windex].starting = false;
				audit_release_slot(slot, ticket);
				slot = NULL;
				LWLockRelease(pdp_audit->lock);
				fail_unrecordable(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
								  "No background worker slot is free for pdp_ext's audit worker (max_worker_processes).");
			}
			if (GetCurrentTimestamp() >= deadline)
			{
				timed_out = true;
				break;
			}
			/* Short sleeps: a worker that starts meanwhile is woken on the next turn. */
			if (ConditionVariableTimedSleep(&pdp_audit->done, wake_sent ? 1000 : 10, PG_WAIT_EXTENSION))
				wake_sent = false;
		}
	}
	PG_CATCH();
	{
		ConditionVariableCancelSleep();
		if (slot != NULL)
		{
			LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
			audit_release_slot(slot, ticket);
			LWLockRelease(pdp_audit->lock);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	ConditionVariableCancelSleep();

	if (timed_out)
	{
		LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
		if (slot != NULL && slot->ticket == ticket && slot->state == SLOT_DONE)
		{
			entry_id = slot->entry_id;
			slot->state = SLOT_FREE;
			timed_out = false;
		}
		else if (slot != NULL)
			audit_release_slot(slot, ticket);
		LWLockRelease(pdp_audit->lock);
		if (timed_out)
			fail_unrecordable(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
							  "The audit worker did not commit the entry within pdp.audit_timeout.");
	}
	if (failed_code != 0)
		fail_unrecordable(failed_code, "The audit worker could not commit the entry.");
	return entry_id;
}

/*
 * Hand one entry to the audit worker without waiting for its commit (read-
 * access entries, written after the statement's rows were produced: waiting
 * would protect nothing and cost a commit per statement).  The worker
 * commits it, with others, in a transaction of its own, so no rollback of
 * the caller's removes it.  Waits only while every slot is taken (up to
 * pdp.audit_timeout).  The names are given, not looked up, so this also
 * works while the caller's transaction aborts.  Returns false when the
 * entry could not be handed over (no shared memory, recovery, timeout).
 */
bool
pdp_audit_unavailable(void)
{
	return pdp_audit == NULL || RecoveryInProgress();
}

bool
pdp_audit_durable_async(const char *role, const char *session_role, const char *action,
						const char *object, const char *details, int64 rows, int64 returned, bool wait)
{
	AuditSlot  *slot = NULL;
	TimestampTz deadline;
	bool		start = false;
	int			windex = -1;
	Latch	   *latch = NULL;

	if (pdp_audit == NULL || RecoveryInProgress())
		return false;
	if (strlen(action) >= AUDIT_ACTION_LEN || (object && strlen(object) >= AUDIT_OBJECT_LEN) ||
		strlen(details) >= AUDIT_DETAILS_LEN)
		return false;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait ? pdp_audit_timeout_ms : 0);
	for (;;)
	{
		LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
		for (int i = 0; i < AUDIT_RING_SLOTS; i++)
		{
			int			n = (pdp_audit->next_slot + i) % AUDIT_RING_SLOTS;

			if (pdp_audit->slots[n].state == SLOT_FREE)
			{
				slot = &pdp_audit->slots[n];
				pdp_audit->next_slot = (n + 1) % AUDIT_RING_SLOTS;
				break;
			}
		}
		if (slot != NULL)
		{
			memset(slot, 0, offsetof(AuditSlot, action));
			slot->ticket = pdp_audit->next_ticket++;
			slot->dbid = MyDatabaseId;
			slot->at = GetCurrentTimestamp();
			slot->async = true;
			slot->rows = rows;
			slot->returned = returned;
			namestrcpy(&slot->role, role);
			namestrcpy(&slot->session_role, session_role);
			strlcpy(slot->action, action, AUDIT_ACTION_LEN);
			slot->has_object = object != NULL;
			strlcpy(slot->object, object ? object : "", AUDIT_OBJECT_LEN);
			slot->has_subject = false;
			slot->subject[0] = '\0';
			strlcpy(slot->details, details, AUDIT_DETAILS_LEN);
			slot->state = SLOT_PENDING;
			latch = audit_worker_for_db(&start, &windex);
			/*
			 * The worker takes pending entries at least every quarter second;
			 * wake it early only when a quarter of the ring is waiting, so
			 * that a busy reader's entries are committed many at a time.
			 */
			if (latch != NULL)
			{
				int			pending = 0;

				for (int i = 0; i < AUDIT_RING_SLOTS; i++)
					pending += pdp_audit->slots[i].state == SLOT_PENDING &&
						pdp_audit->slots[i].dbid == MyDatabaseId;
				if (pending < AUDIT_RING_SLOTS / 4)
					latch = NULL;
			}
			LWLockRelease(pdp_audit->lock);
			break;
		}
		/* Every slot is busy: make sure the worker runs, then wait a little. */
		latch = audit_worker_for_db(&start, &windex);
		LWLockRelease(pdp_audit->lock);
		if (latch != NULL)
			SetLatch(latch);
		if (start && !audit_start_worker(windex))
		{
			LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
			pdp_audit->workers[windex].starting = false;
			LWLockRelease(pdp_audit->lock);
		}
		start = false;
		if (!wait || GetCurrentTimestamp() >= deadline)
			return false;
		ConditionVariableTimedSleep(&pdp_audit->done, 10, PG_WAIT_EXTENSION);
		ConditionVariableCancelSleep();
	}
	if (latch != NULL)
		SetLatch(latch);
	if (start && !audit_start_worker(windex))
	{
		LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
		pdp_audit->workers[windex].starting = false;
		LWLockRelease(pdp_audit->lock);
	}
	return true;
}

/*
 * Make sure a worker serves this database, and wake it when asked to.
 * Takes pdp_audit->lock.
 */
static void
audit_ensure_worker(bool wake)
{
	bool		start = false;
	int			windex = -1;
	Latch	   *latch;

	LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
	latch = audit_worker_for_db(&start, &windex);
	LWLockRelease(pdp_audit->lock);
	if (wake && latch != NULL)
		SetLatch(latch);
	if (start && !audit_start_worker(windex))
	{
		LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
		pdp_audit->workers[windex].starting = false;
		LWLockRelease(pdp_audit->lock);
	}
}

/*
 * Record one statement's read of a listed table (audit_reads.c) in this
 * backend's read buffer, without waiting for the worker: see AuditReadBuf.
 * The shared lock is taken only when the buffer was empty (to make sure a
 * worker runs) or is half full (to wake it).  Waits, up to pdp.audit_timeout,
 * only while the buffer is full (wait false: does not wait).  Returns false
 * when the statement could not be recorded.  The names are given, not
 * looked up, so this also works while the caller's transaction aborts.
 */
bool
pdp_audit_read_buffered(const char *role, const char *session_role, const char *object,
						const char *details, int64 rows, int64 returned, bool wait)
{
	AuditReadBuf *b;
	TimestampTz deadline = 0;

	if (pdp_audit == NULL || pdp_readbufs == NULL || RecoveryInProgress())
		return false;
	if (MyBackendId < 1 || MyBackendId > pdp_nreadbufs ||
		strlen(object) >= AUDIT_OBJECT_LEN || strlen(details) >= READBUF_DETAILS_LEN)
		return pdp_audit_durable_async(role, session_role, "read", object, details, rows, returned, wait);
	b = &pdp_readbufs[MyBackendId - 1];
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		bool		added = false;
		bool		first = false;
		bool		wake = false;

		SpinLockAcquire(&b->mutex);
		if (b->n == 0)
		{
			b->nkeys = 0;
			b->dbid = MyDatabaseId;
		}
		if (b->dbid == MyDatabaseId && b->n < READBUF_STMTS)
		{
			int			key = -1;

			for (int k = 0; k < b->nkeys && key < 0; k++)
				if (strcmp(b->keys[k].object, object) == 0 &&
					strcmp(b->keys[k].details, details) == 0 &&
					strcmp(NameStr(b->keys[k].role), role) == 0 &&
					strcmp(NameStr(b->keys[k].session_role), session_role) == 0)
					key = k;
			if (key < 0 && b->nkeys < READBUF_KEYS)
			{
				key = b->nkeys++;
				namestrcpy(&b->keys[key].role, role);
				namestrcpy(&b->keys[key].session_role, session_role);
				strlcpy(b->keys[key].object, object, AUDIT_OBJECT_LEN);
				strlcpy(b->keys[key].details, details, READBUF_DETAILS_LEN);
			}
			if (key >= 0)
			{
				ReadStmt   *st = &b->stmts[b->n++];

				st->at = now;
				st->rows = rows;
				st->returned = returned;
				st->key = key;
				added = true;
				first = b->n == 1;
				wake = b->n == READBUF_WAKE;
			}
		}
		SpinLockRelease(&b->mutex);
		if (added)
		{
			if (first || wake)
				audit_ensure_worker(wake);
			return true;
		}
		/* Full (or another key, or an earlier session's database): have it emptied. */
		audit_ensure_worker(true);
		if (!wait)
			return false;
		if (deadline == 0)
			deadline = TimestampTzPlusMilliseconds(now, pdp_audit_timeout_ms);
		else if (now >= deadline)
			return false;
		ConditionVariableTimedSleep(&pdp_audit->done, 10, PG_WAIT_EXTENSION);
		ConditionVariableCancelSleep();
	}
}

/*
 * In the worker: move every non-empty read buffer of database dbid into
 * out[] (emptying it), returning how many.  Spinlocks only.
 */
static int
audit_collect_reads(Oid dbid, AuditReadBuf *out)
{
	int			n = 0;

	if (pdp_readbufs == NULL)
		return 0;
	for (int i = 0; i < pdp_nreadbufs; i++)
	{
		AuditReadBuf *b = &pdp_readbufs[i];

		if (b->n == 0)			/* unlocked peek; a statement added meanwhile waits for the next turn */
			continue;
		SpinLockAcquire(&b->mutex);
		if (b->n > 0 && b->dbid == dbid)
		{
			out[n].dbid = dbid;
			out[n].n = b->n;
			out[n].nkeys = b->nkeys;
			memcpy(out[n].keys, b->keys, sizeof(ReadKey) * b->nkeys);
			memcpy(out[n].stmts, b->stmts, sizeof(ReadStmt) * b->n);
			b->n = 0;
			b->nkeys = 0;
			n++;
		}
		SpinLockRelease(&b->mutex);
	}
	return n;
}

/*
 * Ask the audit worker of this database to seal soon: an ordinary entry was
 * appended (pdp._audit), and its transaction will commit shortly.  The worker
 * seals every quarter second for a second after the last request, so the
 * appending statement itself never seals.  Starts a worker when none runs;
 * without shared memory (not preloaded) it does nothing, and the entry waits
 * for pdp.seal_audit_log (verify_audit_log and trim_audit_log call it).
 */
void
pdp_audit_request_seal(void)
{
	bool		start = false;
	int			windex = -1;
	Latch	   *latch = NULL;
	TimestampTz now;

	if (pdp_audit == NULL || RecoveryInProgress())
		return;
	now = GetCurrentTimestamp();
	LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
	latch = audit_worker_for_db(&start, &windex);
	if (windex >= 0)
		pdp_audit->workers[windex].seal_until = TimestampTzPlusMilliseconds(now, AUDIT_WORKER_IDLE_MS);
	LWLockRelease(pdp_audit->lock);
	if (latch != NULL)
		SetLatch(latch);
	if (start && !audit_start_worker(windex))
	{
		LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
		pdp_audit->workers[windex].starting = false;
		pdp_audit->workers[windex].dbid = InvalidOid;
		LWLockRelease(pdp_audit->lock);
	}
}

/*
 * pdp._audit_durable(action text, object text, subject text, details jsonb)
 * RETURNS bigint: like pdp._audit, but the entry is committed by the audit
 * worker before this returns, whatever the caller's transaction does later.
 */
PG_FUNCTION_INFO_V1(pdp_audit_durable_write);
Datum
pdp_audit_durable_write(PG_FUNCTION_ARGS)
{
	char	   *subject = NULL;
	char	   *details = "{}";

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("audit action must not be null")));
	if (!PG_ARGISNULL(2))
		subject = TextDatumGetCString(pdp_pseudonym_for_audit(fcinfo, PG_GETARG_TEXT_PP(2)));
	if (!PG_ARGISNULL(3))
		details = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(3)));
	PG_RETURN_INT64(pdp_audit_durable(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									  PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
									  subject, details));
}

/* ---------------------------------------------------------------------
 * The worker
 * ---------------------------------------------------------------------
 */

/* On exit: leave the worker table, fail what it had taken, wake writers. */
static void
audit_worker_exit(int code, Datum arg)
{
	if (pdp_audit == NULL || worker_index < 0)
		return;
	LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
	for (int i = 0; i < AUDIT_RING_SLOTS; i++)
	{
		AuditSlot  *s = &pdp_audit->slots[i];

		if (s->dbid != MyDatabaseId)
			continue;
		if (s->state == SLOT_TAKEN && s->async)
			s->state = SLOT_FREE;
		else if (s->state == SLOT_TAKEN)
		{
			s->state = SLOT_FAILED;
			s->sqlerrcode = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		}
		else if (s->state == SLOT_ABANDONED)
			s->state = SLOT_FREE;
	}
	if (pdp_audit->workers[worker_index].pid == MyProcPid)
	{
		pdp_audit->workers[worker_index].pid = 0;
		pdp_audit->workers[worker_index].latch = NULL;
		pdp_audit->workers[worker_index].starting = false;
		pdp_audit->workers[worker_index].dbid = InvalidOid;
	}
	LWLockRelease(pdp_audit->lock);
	ConditionVariableBroadcast(&pdp_audit->done);
}

/*
 * Insert the taken entries in one transaction and commit it.  One prepared
 * plan, kept for the worker's life.  Read-access entries (async, action
 * "read") of the same role, session role, table, command and purpose that
 * arrive in one batch become one row whose details list every statement
 * with its time and rows (audit_read_jsonb: {"count": n, "at": ..., "after_us": [...],
 * "rows": [...], "returned": [...]}):
 * a client reading by primary key thousands of times a second then costs
 * the worker one row per batch, not one per statement.
 */
#define AUDIT_MAX_MERGE 64

/*
 * A read entry's details, built as jsonb directly (no text is parsed but
 * the key's own small object of command and purpose, once per entry): the
 * key's fields and the statements as parallel arrays,
 *
 *   {"command": ..., "purpose": ..., "count": n,
 *    "at": <the first statement's time>, "after_us": [microseconds after it, ...],
 *    "rows": [...], "returned": [...]}
 *
 * rows[i] is what statement i's scans of the table returned, returned[i]
 * what the statement returned; both null for a statement that failed.  The
 * result lives in the current memory context.
 */
static void
audit_jsonb_key(JsonbParseState **st, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
}

static void
audit_jsonb_int(JsonbParseState **st, JsonbIteratorToken tok, int64 value, bool isnull)
{
	JsonbValue	v;

	if (isnull)
		v.type = jbvNull;
	else
	{
		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(value);
	}
	pushJsonbValue(st, tok, &v);
}

static Datum
audit_read_jsonb(const char *keydetails, int n, const TimestampTz *at, const int64 *rows, const int64 *returned)
{
	JsonbParseState *st = NULL;
	Jsonb	   *keyjb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(keydetails)));
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	JsonbValue *res;
	const char *first_at = pstrdup(timestamptz_to_str(at[0]));

	if (!JB_ROOT_IS_OBJECT(keyjb))
		elog(ERROR, "a read entry's key details are not a JSON object");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	it = JsonbIteratorInit(&keyjb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_KEY || tok == WJB_VALUE)
			pushJsonbValue(&st, tok, &v);
	audit_jsonb_key(&st, "count");
	audit_jsonb_int(&st, WJB_VALUE, n, false);
	audit_jsonb_key(&st, "at");
	v.type = jbvString;
	v.val.string.val = (char *) first_at;
	v.val.string.len = strlen(first_at);
	pushJsonbValue(&st, WJB_VALUE, &v);
	audit_jsonb_key(&st, "after_us");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
		audit_jsonb_int(&st, WJB_ELEM, at[i] - at[0], false);
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	audit_jsonb_key(&st, "rows");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
		audit_jsonb_int(&st, WJB_ELEM, rows[i], rows[i] < 0);
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	audit_jsonb_key(&st, "returned");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
		audit_jsonb_int(&st, WJB_ELEM, returned[i], rows[i] < 0);
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

static void
audit_worker_write(AuditSlot *batch, int n, int64 *ids, AuditReadBuf *reads, int nreads)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[7] = {TIMESTAMPTZOID, NAMEOID, NAMEOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID};
	int		   *group_of = palloc(sizeof(int) * n);	/* index of the group's first member */
	int		   *group_size = palloc0(sizeof(int) * n);
	int			maxstmts = Max(Max(n, READBUF_STMTS), 1);
	TimestampTz *at = palloc(sizeof(TimestampTz) * maxstmts);	/* one read entry's statements */
	int64	   *rows = palloc(sizeof(int64) * maxstmts);
	int64	   *returned = palloc(sizeof(int64) * maxstmts);

	for (int i = 0; i < n; i++)
	{
		group_of[i] = i;
		if (!batch[i].async || strcmp(batch[i].action, "read") != 0)
			continue;
		for (int j = 0; j < i; j++)
		{
			if (group_of[j] == j && batch[j].async && group_size[j] < AUDIT_MAX_MERGE &&
				strcmp(batch[j].action, "read") == 0 &&
				strcmp(NameStr(batch[j].role), NameStr(batch[i].role)) == 0 &&
				strcmp(NameStr(batch[j].session_role), NameStr(batch[i].session_role)) == 0 &&
				batch[j].has_object == batch[i].has_object &&
				strcmp(batch[j].object, batch[i].object) == 0 &&
				strcmp(batch[j].details, batch[i].details) == 0)
			{
				group_of[i] = j;
				break;
			}
		}
		group_size[group_of[i]]++;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "pdp_ext: writing audit entries");
	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("INSERT INTO pdp.audit_log (at, role, session_role, action, object, "
									"subject_pseudonym, details) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
									7, argtypes);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare the audit worker's insert");
		plan = p;
	}
	for (int i = 0; i < n; i++)
	{
		Datum		values[7];
		char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
		bool		isnull;
		Datum		details_jb;

		if (group_of[i] != i)
		{
			ids[i] = ids[group_of[i]];
			continue;
		}
		if (group_size[i] > 0)
		{
			/* A read entry: the group's statements, in arrival order. */
			int			m = 0;

			for (int j = i; j < n; j++)
			{
				if (group_of[j] != i)
					continue;
				at[m] = batch[j].at;
				rows[m] = batch[j].rows;
				returned[m] = batch[j].returned;
				m++;
			}
			details_jb = audit_read_jsonb(batch[i].details, m, at, rows, returned);
		}
		else
			details_jb = DirectFunctionCall1(jsonb_in, CStringGetDatum(batch[i].details));
		values[0] = TimestampTzGetDatum(batch[i].at);
		values[1] = NameGetDatum(&batch[i].role);
		values[2] = NameGetDatum(&batch[i].session_role);
		values[3] = CStringGetTextDatum(batch[i].action);
		values[4] = batch[i].has_object ? CStringGetTextDatum(batch[i].object) : (Datum) 0;
		nulls[4] = batch[i].has_object ? ' ' : 'n';
		values[5] = batch[i].has_subject ? CStringGetTextDatum(batch[i].subject) : (Datum) 0;
		nulls[5] = batch[i].has_subject ? ' ' : 'n';
		values[6] = details_jb;
		if (SPI_execute_plan(plan, values, nulls, false, 1) != SPI_OK_INSERT_RETURNING ||
			SPI_processed != 1)
			elog(ERROR, "could not write an audit entry");
		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	/* The backends' read buffers: one row per buffer and key. */
	for (int r = 0; r < nreads; r++)
	{
		for (int k = 0; k < reads[r].nkeys; k++)
		{
			Datum		values[7];
			char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', 'n'};
			int			m = 0;

			for (int j = 0; j < reads[r].n; j++)
			{
				if (reads[r].stmts[j].key != k)
					continue;
				at[m] = reads[r].stmts[j].at;
				rows[m] = reads[r].stmts[j].rows;
				returned[m] = reads[r].stmts[j].returned;
				m++;
			}
			if (m == 0)
				continue;
			values[0] = TimestampTzGetDatum(at[0]);
			values[1] = NameGetDatum(&reads[r].keys[k].role);
			values[2] = NameGetDatum(&reads[r].keys[k].session_role);
			values[3] = CStringGetTextDatum("read");
			values[4] = CStringGetTextDatum(reads[r].keys[k].object);
			nulls[5] = 'n';
			values[5] = (Datum) 0;
			values[6] = audit_read_jsonb(reads[r].keys[k].details, m, at, rows, returned);
			nulls[6] = ' ';
			if (SPI_execute_plan(plan, values, nulls, false, 1) != SPI_OK_INSERT_RETURNING ||
				SPI_processed != 1)
				elog(ERROR, "could not write an audit entry");
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Seal what is pending, in a transaction of its own; errors are logged. */
static void
audit_worker_seal(MemoryContext workctx)
{
	int64		n = 0;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "pdp_ext: sealing the audit log");
		n = pdp_audit_seal_pending(100000);
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(workctx);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	(void) n;
}

void
pdp_audit_worker_main(Datum main_arg)
{
	Oid			dbid = DatumGetObjectId(main_arg);
	MemoryContext workctx;
	AuditSlot  *batch;
	AuditReadBuf *volatile reads = NULL;
	int			*index_of = NULL;
	int64	   *ids;
	TimestampTz last_work;
	volatile TimestampTz last_seal = 0;
	bool		seal_due = true;

	memcpy(&worker_index, MyBgworkerEntry->bgw_extra, sizeof(int));
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);	/* a new key file, pdp.audit_log_json */
	BackgroundWorkerUnblockSignals();
	if (pdp_audit == NULL)
		proc_exit(1);
	before_shmem_exit(audit_worker_exit, (Datum) 0);

	LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
	if (worker_index < 0 || worker_index >= AUDIT_MAX_DATABASES ||
		pdp_audit->workers[worker_index].dbid != dbid || pdp_audit->workers[worker_index].pid != 0)
	{
		/* Superseded by another worker for this database: leave quietly. */
		worker_index = -1;
		LWLockRelease(pdp_audit->lock);
		proc_exit(0);
	}
	pdp_audit->workers[worker_index].pid = MyProcPid;
	pdp_audit->workers[worker_index].latch = MyLatch;
	pdp_audit->workers[worker_index].starting = false;
	LWLockRelease(pdp_audit->lock);

	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

	workctx = AllocSetContextCreate(TopMemoryContext, "pdp_ext audit worker", ALLOCSET_DEFAULT_SIZES);
	batch = MemoryContextAlloc(TopMemoryContext, sizeof(AuditSlot) * AUDIT_RING_SLOTS);
	index_of = MemoryContextAlloc(TopMemoryContext, sizeof(int) * AUDIT_RING_SLOTS);
	ids = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * AUDIT_RING_SLOTS);
	if (pdp_nreadbufs > 0)
		reads = MemoryContextAllocHuge(TopMemoryContext, sizeof(AuditReadBuf) * (Size) pdp_nreadbufs);
	last_work = GetCurrentTimestamp();

	for (;;)
	{
		int			n = 0;
		int			nreads = 0;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(workctx);
		MemoryContextReset(workctx);

		LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
		for (int i = 0; i < AUDIT_RING_SLOTS; i++)
		{
			AuditSlot  *s = &pdp_audit->slots[i];

			if (s->state == SLOT_PENDING && s->dbid == dbid)
			{
				s->state = SLOT_TAKEN;
				memcpy(&batch[n], s, sizeof(AuditSlot));
				index_of[n++] = i;
			}
		}
		if (reads != NULL)
			nreads = audit_collect_reads(dbid, reads);
		if (GetCurrentTimestamp() < pdp_audit->workers[worker_index].seal_until)
			seal_due = true;
		if (n == 0 && nreads == 0 && !seal_due &&
			TimestampDifferenceExceeds(last_work, GetCurrentTimestamp(), AUDIT_WORKER_IDLE_MS))
		{
			/* Idle: leave, under the lock, so no writer counts on us. */
			pdp_audit->workers[worker_index].pid = 0;
			pdp_audit->workers[worker_index].latch = NULL;
			pdp_audit->workers[worker_index].dbid = InvalidOid;
			worker_index = -1;
			LWLockRelease(pdp_audit->lock);
			proc_exit(0);
		}
		LWLockRelease(pdp_audit->lock);
		if (nreads > 0)
			ConditionVariableBroadcast(&pdp_audit->done);	/* their buffers have room again */

		if (n > 0 || nreads > 0)
		{
			volatile int sqlerrcode = 0;
			volatile int async_lost = 0;

			PG_TRY();
			{
				audit_worker_write(batch, n, ids, reads, nreads);
			}
			PG_CATCH();
			{
				ErrorData  *edata;

				MemoryContextSwitchTo(workctx);
				edata = CopyErrorData();
				sqlerrcode = edata->sqlerrcode;
				EmitErrorReport();
				FlushErrorState();
				AbortCurrentTransaction();
				pgstat_report_activity(STATE_IDLE, NULL);
			}
			PG_END_TRY();

			LWLockAcquire(pdp_audit->lock, LW_EXCLUSIVE);
			for (int i = 0; i < n; i++)
			{
				AuditSlot  *s = &pdp_audit->slots[index_of[i]];

				if (s->ticket != batch[i].ticket)
					continue;
				if (s->state == SLOT_ABANDONED || s->async)
				{
					if (s->async && sqlerrcode != 0)
						async_lost++;
					s->state = SLOT_FREE;
				}
				else if (sqlerrcode == 0)
				{
					s->entry_id = ids[i];
					s->state = SLOT_DONE;
				}
				else
				{
					s->sqlerrcode = sqlerrcode;
					s->state = SLOT_FAILED;
				}
			}
			LWLockRelease(pdp_audit->lock);
			ConditionVariableBroadcast(&pdp_audit->done);
			if (sqlerrcode != 0)
				for (int r = 0; r < nreads; r++)
					async_lost += reads[r].n;
			if (async_lost > 0)
				ereport(WARNING,
						(errcode(sqlerrcode),
						 errmsg("pdp_ext's audit worker could not record %d read-access entries", async_lost)));
			last_work = GetCurrentTimestamp();
			seal_due = true;
			/*
			 * Durable entries: more may have come meanwhile, and their
			 * writers wait.  Read records only: wait for the next turn (or a
			 * wake-up), so that they are committed many at a time.
			 */
			if (n > 0)
				continue;
		}

		/*
		 * Seal after a turn that wrote nothing, or at most every quarter
		 * second while read records keep coming: a busy reader fills its
		 * buffer many times a second, and each seal costs a transaction of
		 * its own (sealing later seals the same entries in one go).
		 */
		if (seal_due &&
			((n == 0 && nreads == 0) ||
			 TimestampDifferenceExceeds(last_seal, GetCurrentTimestamp(), AUDIT_WORKER_IDLE_MS / 4)))
		{
			audit_worker_seal(workctx);
			last_seal = GetCurrentTimestamp();
			seal_due = false;
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 AUDIT_WORKER_IDLE_MS / 4, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
