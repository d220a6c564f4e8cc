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

#include "catalog/namespace.h"
#include "miscadmin.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "nodes/primnodes.h"
#include "optimizer/clauses.h"
#include "utils/lsyscache.h"

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
 * Could the running statement show a value of a row the row test lets
 * through before pdp's trigger refuses the change?  PostgreSQL evaluates a
 * scan's security quals first, but every expression after them (a WHERE
 * condition, a join condition, a SET expression) sees the row: a function
 * that is not leakproof there (a user's function raising a notice, a cast
 * whose error quotes its input) would read a restricted learner's values.
 * Conservative: any expression of the plan or its subplans that applies a
 * non-leakproof function to a column counts, except pdp's row tests
 * themselves and what runs only after the row triggers (RETURNING).
 */
static bool
is_row_test(Oid funcid, Oid pdp_nsp)
{
	char	   *name;
	bool		yes;

	if (get_func_namespace(funcid) != pdp_nsp)
		return false;
	name = get_func_name(funcid);
	yes = name != NULL && strcmp(name, "_visible") == 0;
	if (name)
		pfree(name);
	return yes;
}

/* context: the OID of schema pdp, whose row tests are not counted. */
static bool
leaky_expr_walker(Node *node, void *context)
{
	Oid			pdp_nsp = *(Oid *) context;

	if (node == NULL)
		return false;
	if (IsA(node, List))
	{
		ListCell   *lc;

		foreach(lc, (List *) node)
			if (leaky_expr_walker(lfirst(lc), context))
				return true;
		return false;
	}
	if (IsA(node, TargetEntry))
		return leaky_expr_walker((Node *) ((TargetEntry *) node)->expr, context);
	if (IsA(node, BoolExpr))
		return leaky_expr_walker((Node *) ((BoolExpr *) node)->args, context);
	if (IsA(node, FuncExpr) && is_row_test(((FuncExpr *) node)->funcid, pdp_nsp))
		return false;
	return contain_leaked_vars(node);
}

static bool plan_may_leak(Plan *plan, Oid *pdp_nsp);

static bool
plans_may_leak(List *plans, Oid *pdp_nsp)
{
	ListCell   *lc;

	foreach(lc, plans)
		if (plan_may_leak((Plan *) lfirst(lc), pdp_nsp))
			return true;
	return false;
}

static bool
plan_may_leak(Plan *plan, Oid *pdp_nsp)
{
	List	   *children = NIL;
	List	   *exprs = NIL;

	if (plan == NULL)
		return false;
	check_stack_depth();
	if (!IsA(plan, ModifyTable) &&
		(leaky_expr_walker((Node *) plan->qual, pdp_nsp) ||
		 leaky_expr_walker((Node *) plan->targetlist, pdp_nsp)))
		return true;
	switch (nodeTag(plan))
	{
		case T_NestLoop:
			exprs = ((Join *) plan)->joinqual;
			break;
		case T_MergeJoin:
			exprs = list_concat_copy(((Join *) plan)->joinqual, ((MergeJoin *) plan)->mergeclauses);
			break;
		case T_HashJoin:
			exprs = list_concat_copy(((Join *) plan)->joinqual, ((HashJoin *) plan)->hashclauses);
			break;
		case T_Append:
			children = ((Append *) plan)->appendplans;
			break;
		case T_MergeAppend:
			children = ((MergeAppend *) plan)->mergeplans;
			break;
		case T_BitmapAnd:
			children = ((BitmapAnd *) plan)->bitmapplans;
			break;
		case T_BitmapOr:
			children = ((BitmapOr *) plan)->bitmapplans;
			break;
		case T_SubqueryScan:
			children = list_make1(((SubqueryScan *) plan)->subplan);
			break;
		case T_CustomScan:
			children = ((CustomScan *) plan)->custom_plans;
			break;
		default:
			break;
	}
	return leaky_expr_walker((Node *) exprs, pdp_nsp) || plans_may_leak(children, pdp_nsp) ||
		plan_may_leak(plan->lefttree, pdp_nsp) || plan_may_leak(plan->righttree, pdp_nsp);
}

static bool
statement_may_leak(PlannedStmt *stmt)
{
	Oid			pdp_nsp = get_namespace_oid("pdp", true);

	return plan_may_leak(stmt->planTree, &pdp_nsp) || plans_may_leak(stmt->subplans, &pdp_nsp);
}

/*
 * Is this row-test call part of the scan of the running UPDATE's or
 * DELETE's own target relation (a result relation, or a partition or child
 * of it), in a statement that cannot show the row's values before the
 * trigger refuses the change (statement_may_leak)?  False when in doubt:
 * the row then stays hidden, and the statement changes nothing of it.
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
	if (!list_member_int(qd->plannedstmt->resultRelations, var->varno))
		return false;
	/* Asked only for a restricted subject's row: a plan walk, rarely. */
	return !statement_may_leak(qd->plannedstmt);
}

void
pdp_target_init(void)
{
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = pdp_executor_run;
}
