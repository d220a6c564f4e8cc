/*-------------------------------------------------------------------------
 * scoped.c
 *	  Flags that must not outlive the (sub)transaction that set them.
 *
 * A few switches of pdp_ext span several statements of one call: the
 * erasure switch (pdp.erase_subject runs one statement per registered
 * table while it is on) and the memo of the reversal audit (one entry per
 * statement and function).  A transaction callback alone clears them only
 * when the whole transaction ends, so an error caught by a savepoint or a
 * PL/pgSQL EXCEPTION block would leave them set for the rest of the
 * transaction.  Here each flag remembers the subtransaction that set it:
 * if that subtransaction aborts, the flag is cleared; if it commits, the
 * flag now belongs to its parent; at the end of the transaction every flag
 * is cleared.  State that lives within one C call does not need this: it
 * is set in PG_TRY and cleared in PG_FINALLY (see pdp_audit_trim_delete).
 *
 * The flags are per backend; no locking is needed.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/xact.h"

#define PDP_MAX_SCOPED_FLAGS 8

typedef struct PdpScopedFlag
{
	bool	   *flag;
	SubTransactionId owner;		/* the subtransaction that set it */
} PdpScopedFlag;

static PdpScopedFlag scoped_flags[PDP_MAX_SCOPED_FLAGS];
static int	n_scoped_flags = 0;
static bool scoped_callbacks_registered = false;

static void
scoped_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		for (int i = 0; i < n_scoped_flags; i++)
			*scoped_flags[i].flag = false;
}

static void
scoped_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	for (int i = 0; i < n_scoped_flags; i++)
	{
		PdpScopedFlag *f = &scoped_flags[i];

		if (!*f->flag || f->owner != mySubid)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			*f->flag = false;
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			f->owner = parentSubid;
	}
}

/*
 * Set *flag until the current subtransaction aborts or the transaction
 * ends (or pdp_scoped_clear).  flag must be static storage.
 */
void
pdp_scoped_set(bool *flag)
{
	int			i;

	if (!scoped_callbacks_registered)
	{
		RegisterXactCallback(scoped_xact_callback, NULL);
		RegisterSubXactCallback(scoped_subxact_callback, NULL);
		scoped_callbacks_registered = true;
	}
	for (i = 0; i < n_scoped_flags; i++)
		if (scoped_flags[i].flag == flag)
			break;
	if (i == n_scoped_flags)
	{
		if (n_scoped_flags == PDP_MAX_SCOPED_FLAGS)
			elog(ERROR, "too many scoped flags");
		scoped_flags[n_scoped_flags++].flag = flag;
	}
	scoped_flags[i].owner = GetCurrentSubTransactionId();
	*flag = true;
}

/* Clear a flag set by pdp_scoped_set (or never set). */
void
pdp_scoped_clear(bool *flag)
{
	*flag = false;
}
