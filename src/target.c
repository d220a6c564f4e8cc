/*-------------------------------------------------------------------------
 * target.c
 *	  Which query is running, so that the row test can tell the rows an
 *	  UPDATE or DELETE is about to change from rows it only reads.
 *
 * Restriction hides a restricted subject's rows from every purpose that is
 * not exempt.  For an UPDATE or DELETE that would make the statement change
 * nothing and report success (an application then believes it unenrolled a
 * learner).  So in the scan of an UPDATE's or DELETE's own target relation
 * the row test lets a restricted subject's row through, and pdp's
 * restricted-row trigger then refuses the change with an error.  Anywhere
 * else (a subquery, a join, a CTE, even over the same table) the row stays
 * hidden: those scans have range-table entries of their own, which are not
 * result relations.
 *
 * An ExecutorRun hook keeps a stack of the queries being run (a cursor's
 * fetch, a function's SPI query and a trigger's query each push their own),
 * so the top of the stack is the query whose expressions are being
 * evaluated.  The row test finds the scanned range-table entry in its own
 * call expression: its argument is a Var of the scanned relation
 * (fcinfo->flinfo->fn_expr), possibly under an implicit cast.
 *
 * The same hook records the use of a maintenance purpose in the audit trail
 * (consent.c).
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "nodes/primnodes.h"

static ExecutorRun_hook_type prev_executor_run = NULL;

/* The queries being run, innermost last; a fixed depth is enough to know. */
#define MAX_TRACKED 64
static QueryDesc *running[MAX_TRACKED];
static int	running_depth = 0;

static void
pdp_executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once)
{
	int			depth = running_depth;

	if (queryDesc->operation == CMD_SELECT || queryDesc->operation == CMD_UPDATE ||
		queryDesc->operation == CMD_DELETE || queryDesc->operation == CMD_INSERT)
		pdp_audit_maintenance_use();
	if (depth < MAX_TRACKED)
		running[depth] = queryDesc;
	running_depth = depth + 1;
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		running_depth = depth;
	}
	PG_END_TRY();
}

/*
 * The relation argument of a row-test call (its first: the SELECT policy's
 * form passes the row's ctid as a second): a Var, under implicit casts at
 * most.
 */
static Var *
scanned_var(FunctionCallInfo fcinfo)
{
	Node	   *expr = fcinfo->flinfo ? fcinfo->flinfo->fn_expr : NULL;
	Node	   *arg;

	if (expr == NULL || !IsA(expr, FuncExpr) || list_length(((FuncExpr *) expr)->args) < 1 ||
		list_length(((FuncExpr *) expr)->args) > 2)
		return NULL;
	arg = linitial(((FuncExpr *) expr)->args);
	for (;;)
	{
		if (IsA(arg, RelabelType))
			arg = (Node *) ((RelabelType *) arg)->arg;
		else if (IsA(arg, FuncExpr) && ((FuncExpr *) arg)->funcformat == COERCE_IMPLICIT_CAST &&
				 list_length(((FuncExpr *) arg)->args) == 1)
			arg = linitial(((FuncExpr *) arg)->args);
		else
			break;
	}
	return IsA(arg, Var) ? (Var *) arg : NULL;
}

/*
 * Is this row-test call part of the scan of the running UPDATE's or
 * DELETE's own target relation (a result relation, or a partition or child
 * of it)?  False when in doubt.
 */
bool
pdp_row_test_on_write_target(FunctionCallInfo fcinfo)
{
	QueryDesc  *qd;
	Var		   *var;

	if (running_depth <= 0 || running_depth > MAX_TRACKED)
		return false;
	qd = running[running_depth - 1];
	if (qd->operation != CMD_UPDATE && qd->operation != CMD_DELETE)
		return false;
	var = scanned_var(fcinfo);
	if (var == NULL || var->varlevelsup != 0 || IS_SPECIAL_VARNO(var->varno))
		return false;
	return list_member_int(qd->plannedstmt->resultRelations, var->varno);
}

void
pdp_target_init(void)
{
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = pdp_executor_run;
}
