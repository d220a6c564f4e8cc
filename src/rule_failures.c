/*-------------------------------------------------------------------------
 * rule_failures.c
 *	  Masked views that never fail on a stored value: pdp._rule_accepts
 *	  tells whether a value rule can handle a value, and pdp._rule_failed
 *	  counts one that it cannot (shown as a constant instead) per table,
 *	  column and rule, for the view pdp.rule_failures.  Never a value.
 *
 * Note about locking and bounds: the counters live in one fixed array in
 * shared memory of RULE_FAILURE_SLOTS entries (database, table, column,
 * rule, count) for the whole server, guarded by the LWLock
 * rule_failures->lock (exclusive to count, shared to read).  A failure of a
 * (table, column, rule) not yet in the array takes a free entry; when none
 * is left it is counted in the one overflow counter, shown as a row
 * without a table.  Counting costs a short scan under the lock, no I/O and
 * no WAL, so it works in read-only transactions and on standbys.  Counts
 * start at zero when the server starts.  Without shared_preload_libraries
 * each backend counts in an array of its own (its own failures only).
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"

#include "checkdigit.h"
#include "contact.h"
#include "ipaddr.h"
#include "names.h"

PG_FUNCTION_INFO_V1(pdp_rule_accepts);
PG_FUNCTION_INFO_V1(pdp_rule_failed);
PG_FUNCTION_INFO_V1(pdp_rule_failures);

#define RULE_FAILURE_SLOTS 512
#define RULE_NAME_LEN 24

typedef struct RuleFailure
{
	Oid			dbid;			/* InvalidOid: free */
	Oid			relid;
	int16		attnum;
	char		rule[RULE_NAME_LEN];
	uint64		count;
} RuleFailure;

typedef struct RuleFailureShared
{
	LWLock	   *lock;
	uint64		overflow;
	RuleFailure slots[RULE_FAILURE_SLOTS];
} RuleFailureShared;

static RuleFailureShared *rule_failures = NULL;
static RuleFailureShared *local_failures = NULL;	/* not preloaded */
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
rule_failures_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RuleFailureShared)));
	RequestNamedLWLockTranche("pdp_ext rule failures", 1);
}

static void
rule_failures_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rule_failures = ShmemInitStruct("pdp_ext rule failures", sizeof(RuleFailureShared), &found);
	if (!found)
	{
		memset(rule_failures, 0, sizeof(RuleFailureShared));
		rule_failures->lock = &(GetNamedLWLockTranche("pdp_ext rule failures"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called once from _PG_init: the shared memory hooks when preloaded. */
void
pdp_rule_failures_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rule_failures_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rule_failures_shmem_startup;
}

/* The counters: shared when preloaded, else this backend's own. */
static RuleFailureShared *
failures(void)
{
	if (rule_failures != NULL)
		return rule_failures;
	if (local_failures == NULL)
		local_failures = MemoryContextAllocZero(TopMemoryContext, sizeof(RuleFailureShared));
	return local_failures;
}

/* A card number as pdp.mask_card accepts it (mask.c): digits, spaces, dashes, Luhn. */
static bool
card_ok(const char *s, size_t len)
{
	char		digits[32];
	size_t		n = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (s[i] >= '0' && s[i] <= '9')
		{
			if (n == sizeof(digits))
				break;
			digits[n++] = s[i];
		}
		else if (s[i] != ' ' && s[i] != '-')
			return false;
	}
	return n >= 12 && n <= 19 && pdp_luhn_valid(digits, n);
}

/*
 * pdp._rule_accepts(rule text, value text) RETURNS boolean
 * Whether the rule's function returns a value for this input rather than
 * raising: the same parsers the rule functions run.  Rules that take any
 * value are true.  Keyless and immutable: it says only whether a value
 * has a shape, which the masked view's reader learns anyway.
 */
Datum
pdp_rule_accepts(PG_FUNCTION_ARGS)
{
	char	   *rule = text_to_cstring(PG_GETARG_TEXT_PP(0));
	text	   *v = PG_GETARG_TEXT_PP(1);
	const char *s = VARDATA_ANY(v);
	size_t		len = VARSIZE_ANY_EXHDR(v);
	bool		ok = true;

	if (pdp_is_blank(s, len))
		PG_RETURN_BOOL(true);	/* every value rule passes blanks through */
	if (strcmp(rule, "pseudo_email") == 0 || strcmp(rule, "mask_email") == 0)
	{
		size_t		at;

		ok = pdp_email_parse(s, len, &at) == PDP_EMAIL_OK;
	}
	else if (strcmp(rule, "pseudo_phone") == 0 || strcmp(rule, "mask_phone") == 0)
	{
		pdp_phone	p;

		ok = pdp_phone_parse(s, len, &p) == PDP_PHONE_OK;
	}
	else if (strcmp(rule, "pseudo_iin") == 0 || strcmp(rule, "fpe_iin") == 0)
		ok = pdp_iin_validate(s, len) == PDP_ID_OK;
	else if (strcmp(rule, "pseudo_name") == 0)
	{
		unsigned char seed[8] = {0};
		char		out[PDP_NAME_MAX_OUT];

		ok = pdp_name_replace(s, len, seed, out) == PDP_NAME_OK;
	}
	else if (strcmp(rule, "mask_card") == 0)
		ok = card_ok(s, len);
	else if (strcmp(rule, "pseudo_ip") == 0)
	{
		pdp_ip		ip;

		ok = pdp_ip_parse(s, len, &ip);
	}
	PG_RETURN_BOOL(ok);
}

/*
 * pdp._rule_failed(tbl oid, attnum smallint, rule text) RETURNS text
 * Counts one value the rule could not handle in (tbl, attnum) and returns
 * the constant a masked view shows instead.  Declared STABLE (see
 * src/sql/32_rules.sql): a query that does not read the column does not count.
 */
Datum
pdp_rule_failed(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int16		attnum = PG_GETARG_INT16(1);
	char	   *rule = text_to_cstring(PG_GETARG_TEXT_PP(2));
	RuleFailureShared *f = failures();
	RuleFailure *hit = NULL,
			   *free_slot = NULL;

	if (f == rule_failures)
		LWLockAcquire(f->lock, LW_EXCLUSIVE);
	for (int i = 0; i < RULE_FAILURE_SLOTS; i++)
	{
		RuleFailure *e = &f->slots[i];

		if (e->dbid == InvalidOid)
		{
			if (free_slot == NULL)
				free_slot = e;
			continue;
		}
		if (e->dbid == MyDatabaseId && e->relid == relid && e->attnum == attnum &&
			strncmp(e->rule, rule, RULE_NAME_LEN - 1) == 0)
		{
			hit = e;
			break;
		}
	}
	if (hit == NULL && free_slot != NULL)
	{
		hit = free_slot;
		hit->dbid = MyDatabaseId;
		hit->relid = relid;
		hit->attnum = attnum;
		strlcpy(hit->rule, rule, RULE_NAME_LEN);
		hit->count = 0;
	}
	if (hit != NULL)
		hit->count++;
	else
		f->overflow++;
	if (f == rule_failures)
		LWLockRelease(f->lock);
	PG_RETURN_TEXT_P(cstring_to_text("****"));
}

/*
 * pdp._rule_failures() RETURNS TABLE (tbl oid, attnum smallint, rule text, failures bigint)
 * This database's counters, and the overflow counter (tbl NULL) when it
 * is not zero.
 */
Datum
pdp_rule_failures(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RuleFailureShared *f = failures();
	RuleFailure *copy = palloc(sizeof(RuleFailure) * RULE_FAILURE_SLOTS);
	uint64		overflow;

	InitMaterializedSRF(fcinfo, 0);
	if (f == rule_failures)
		LWLockAcquire(f->lock, LW_SHARED);
	memcpy(copy, f->slots, sizeof(RuleFailure) * RULE_FAILURE_SLOTS);
	overflow = f->overflow;
	if (f == rule_failures)
		LWLockRelease(f->lock);
	for (int i = 0; i < RULE_FAILURE_SLOTS; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		if (copy[i].dbid != MyDatabaseId || copy[i].count == 0)
			continue;
		values[0] = ObjectIdGetDatum(copy[i].relid);
		values[1] = Int16GetDatum(copy[i].attnum);
		values[2] = CStringGetTextDatum(copy[i].rule);
		values[3] = Int64GetDatum((int64) copy[i].count);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	if (overflow > 0)
	{
		Datum		values[4] = {0, 0, 0, Int64GetDatum((int64) overflow)};
		bool		nulls[4] = {true, true, true, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
