/*-------------------------------------------------------------------------
 * rules.c
 *	  The pseudonymise-on-write trigger: applies column rules to every
 *	  inserted or updated value so that raw values never land.
 *
 * The trigger's arguments are (column name, rule) pairs, written by
 * pdp._sync_on_write_trigger from pdp.column_rule; they are dumped with
 * the trigger, which pg_dump restores after the table data, so a restore
 * never pseudonymises twice.
 *
 * On UPDATE a column is left alone when its value did not change, or when
 * the new value is what the rule makes of the old one (pdp.apply_rules
 * writing): either way it is already pseudonymised.
 *
 * Per statement, the trigger resolves its columns and rule functions once
 * (fn_extra); per row it allocates only the new tuple.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/regproc.h"

PG_FUNCTION_INFO_V1(pdp_pseudonymise_on_write);

#define MAX_EXTRA_ARGS 3

typedef enum ExtraArg
{
	X_NONE, X_EMPTY_TEXT, X_TRUE, X_NULL_INT, X_ZERO_INT, X_STAR,
	X_MONTH, X_YEAR, X_DECADE
} ExtraArg;

/* How each rule is called: the SQL function and its arguments after the value. */
typedef struct RuleCall
{
	const char *rule;
	const char *function;		/* regprocedure text; NULL for the "null" rule */
	ExtraArg	extra[MAX_EXTRA_ARGS];
} RuleCall;

static const RuleCall rule_calls[] = {
	{"pseudonym", "pdp.pseudonym(text,text)", {X_EMPTY_TEXT}},
	{"pseudo_email", "pdp.pseudo_email(text,boolean)", {X_TRUE}},
	{"pseudo_phone", "pdp.pseudo_phone(text)", {X_NONE}},
	{"pseudo_iin", "pdp.pseudo_iin(text,boolean)", {X_TRUE}},
	{"pseudo_name", "pdp.pseudo_name(text)", {X_NONE}},
	{"pseudo_ip", "pdp.pseudo_ip(inet)", {X_NONE}},
	{"encrypt", "pdp.encrypt(text,text)", {X_EMPTY_TEXT}},
	{"fpe_iin", "pdp.fpe_iin(text,integer)", {X_NULL_INT}},
	{"mask", "pdp.mask(text,integer,integer,text)", {X_ZERO_INT, X_ZERO_INT, X_STAR}},
	{"mask_email", "pdp.mask_email(text)", {X_NONE}},
	{"mask_phone", "pdp.mask_phone(text)", {X_NONE}},
	{"mask_card", "pdp.mask_card(text)", {X_NONE}},
	{"generalize_month", "pdp.generalize_date(date,text)", {X_MONTH}},
	{"generalize_year", "pdp.generalize_date(date,text)", {X_YEAR}},
	{"generalize_decade", "pdp.generalize_date(date,text)", {X_DECADE}},
	{"null", NULL, {X_NONE}},
	{"shred", NULL, {X_NONE}},	/* pdp_shred_seal under the row's subject (shred.c) */
};

typedef struct OnWriteColumn
{
	AttrNumber	attnum;
	const char *colname;		/* for error context */
	const char *rule;
	bool		set_null;
	bool		shred;			/* encrypt under the row's subject's key */
	AttrNumber	subject_attnum; /* shred: the row's subject column */
	FmgrInfo	subject_out;	/* shred: its output function */
	bool		typbyval;
	int16		typlen;
	int32		max_chars;		/* varchar(n)/char(n): n; otherwise -1 */
	int			nargs;
	FmgrInfo	fn;
	Datum		args[1 + MAX_EXTRA_ARGS];
	bool		nulls[1 + MAX_EXTRA_ARGS];
} OnWriteColumn;

typedef struct OnWriteCache
{
	Oid			tgoid;
	int			ncols;
	OnWriteColumn cols[FLEXIBLE_ARRAY_MEMBER];
} OnWriteCache;

typedef struct RuleErrorContext
{
	const char *rule;
	const char *colname;
	const char *relname;
} RuleErrorContext;

static void
rule_error_callback(void *arg)
{
	RuleErrorContext *c = (RuleErrorContext *) arg;

	errcontext("applying rule \"%s\" to column \"%s\" of table \"%s\"",
			   c->rule, c->colname, c->relname);
}

static const RuleCall *
find_rule_call(const char *rule)
{
	for (size_t i = 0; i < lengthof(rule_calls); i++)
		if (strcmp(rule_calls[i].rule, rule) == 0)
			return &rule_calls[i];
	ereport(ERROR,
			(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
			 errmsg("unknown column rule in pseudonymise-on-write trigger"),
			 errhint("Recreate the trigger with pdp.pseudonymise_on_write().")));
	return NULL;				/* keep compiler quiet */
}

static Datum
extra_datum(ExtraArg x, bool *isnull)
{
	*isnull = false;
	switch (x)
	{
		case X_EMPTY_TEXT:
			return CStringGetTextDatum("");
		case X_TRUE:
			return BoolGetDatum(true);
		case X_NULL_INT:
			*isnull = true;
			return (Datum) 0;
		case X_ZERO_INT:
			return Int32GetDatum(0);
		case X_STAR:
			return CStringGetTextDatum("*");
		case X_MONTH:
			return CStringGetTextDatum("month");
		case X_YEAR:
			return CStringGetTextDatum("year");
		case X_DECADE:
			return CStringGetTextDatum("decade");
		case X_NONE:
			break;
	}
	*isnull = true;
	return (Datum) 0;
}

/* Does the rule compute a keyed token (pdp_pseudonymiser's functions)? */
static bool
rule_is_keyed(const RuleCall *call)
{
	if (strcmp(call->rule, "shred") == 0)
		return true;
	return call->function != NULL &&
		(strncmp(call->function, "pdp.pseudo", 10) == 0 ||
		 strncmp(call->function, "pdp.encrypt(", 12) == 0 ||
		 strncmp(call->function, "pdp.fpe_", 8) == 0);
}

/*
 * Is the rule declared for the column in pdp.column_rule, on the table or a
 * partitioned table it is a partition of (pg_partition_ancestors lists no
 * row for a table that is not a partition)?  The trigger computes keyed
 * tokens for every writer, so only rules a pdp_pseudonymiser member declared
 * may be applied: a trigger created by hand with other arguments would
 * compute tokens of guesses for whoever made it.  Read as the extension's
 * owner (writers cannot read pdp.column_rule).
 */
static bool
rule_declared(FunctionCallInfo fcinfo, Oid relid, const char *col, const char *rule)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[3] = {OIDOID, TEXTOID, TEXTOID};
	Datum		values[3];
	Oid			save_userid;
	int			save_sec_context;
	volatile bool found = false;

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(col);
	values[2] = CStringGetTextDatum(rule);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(pdp_function_owner(fcinfo->flinfo->fn_oid),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (plan == NULL)
		{
			SPIPlanPtr	p = SPI_prepare("SELECT 1 FROM pdp.column_rule r "
										"WHERE r.col::pg_catalog.text OPERATOR(pg_catalog.=) $2 "
										"AND r.rule OPERATOR(pg_catalog.=) $3 "
										"AND (r.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
										"OR r.tbl::pg_catalog.oid IN (SELECT a.relid::pg_catalog.oid "
										"FROM pg_catalog.pg_partition_ancestors($1::pg_catalog.regclass) a))",
										3, argtypes);

			if (p == NULL || SPI_keepplan(p) != 0)
				elog(ERROR, "could not prepare the column rule lookup");
			plan = p;
		}
		if (SPI_execute_plan(plan, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the column rules");
		found = SPI_processed > 0;
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	return found;
}

/*
 * A "shred" column: the row's subject column (the table's one registered
 * subject column) and how to print it.
 */
static void
build_shred_column(FunctionCallInfo fcinfo, TriggerData *td, OnWriteColumn *c)
{
	char	   *subject_col = pdp_shred_subject_column(pdp_function_owner(fcinfo->flinfo->fn_oid),
													   RelationGetRelid(td->tg_relation));
	int			attnum = SPI_fnumber(RelationGetDescr(td->tg_relation), subject_col);
	Oid			typoutput;
	bool		typisvarlena;

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("subject column of table \"%s\" does not exist", RelationGetRelationName(td->tg_relation))));
	c->shred = true;
	c->subject_attnum = (AttrNumber) attnum;
	getTypeOutputInfo(TupleDescAttr(RelationGetDescr(td->tg_relation), attnum - 1)->atttypid,
					  &typoutput, &typisvarlena);
	fmgr_info_cxt(typoutput, &c->subject_out, fcinfo->flinfo->fn_mcxt);
}

/*
 * Shred a non-null value under the subject of newtup; a value already
 * shredded for that subject (a copied row) is kept as it is (*keep).
 */
static Datum
apply_shred(OnWriteColumn *c, Oid extowner, HeapTuple newtup, TupleDesc tupdesc, Datum value, bool *keep)
{
	bool		isnull;
	Datum		subject = heap_getattr(newtup, c->subject_attnum, tupdesc, &isnull);
	char	   *raw;
	char	   *canon;
	size_t		len;
	text	   *v = DatumGetTextPP(value);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("a shredded value needs its row's subject"),
				 errdetail("The row's subject column is NULL, so there is no key to encrypt the value under."),
				 errhint("Write the subject column, or leave the shredded column NULL.")));
	raw = OutputFunctionCall(&c->subject_out, subject);
	if (!pdp_shred_canonical(extowner, raw, strlen(raw), &canon, &len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid subject for the registered subject columns"),
				 errhint("Give the subject as a registered column holds it.")));
	*keep = pdp_shred_is_sealed_for(extowner, canon, len, v);
	if (*keep)
		return value;
	return PointerGetDatum(pdp_shred_seal(extowner, canon, len, v));
}

/* Build the per-statement cache from the trigger's arguments. */
static OnWriteCache *
build_cache(FunctionCallInfo fcinfo, TriggerData *td)
{
	Trigger    *tg = td->tg_trigger;
	TupleDesc	tupdesc = RelationGetDescr(td->tg_relation);
	MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	OnWriteCache *cache;
	int			ncols;

	if (tg->tgnargs == 0 || tg->tgnargs % 2 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("pseudonymise-on-write trigger needs (column, rule) argument pairs"),
				 errhint("Recreate the trigger with pdp.pseudonymise_on_write().")));
	ncols = tg->tgnargs / 2;
	cache = palloc0(offsetof(OnWriteCache, cols) + ncols * sizeof(OnWriteColumn));
	cache->tgoid = tg->tgoid;
	cache->ncols = ncols;
	for (int i = 0; i < ncols; i++)
	{
		OnWriteColumn *c = &cache->cols[i];
		const RuleCall *call;
		int			attnum = SPI_fnumber(tupdesc, tg->tgargs[2 * i]);
		Form_pg_attribute att;

		if (attnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" named by the pseudonymise-on-write trigger of table \"%s\" does not exist",
							tg->tgargs[2 * i], RelationGetRelationName(td->tg_relation)),
					 errhint("Recreate the trigger with pdp.pseudonymise_on_write().")));
		att = TupleDescAttr(tupdesc, attnum - 1);
		call = find_rule_call(tg->tgargs[2 * i + 1]);
		if (rule_is_keyed(call) &&
			!rule_declared(fcinfo, RelationGetRelid(td->tg_relation), tg->tgargs[2 * i], call->rule))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("pseudonymise-on-write trigger of table \"%s\" applies a keyed rule that is not declared",
							RelationGetRelationName(td->tg_relation)),
					 errdetail("Column \"%s\" has no rule \"%s\" in pdp.column_rule.", tg->tgargs[2 * i], call->rule),
					 errhint("Declare keyed rules with pdp.set_column_rule as a member of pdp_pseudonymiser, and let pdp.pseudonymise_on_write() install the trigger.")));
		c->attnum = (AttrNumber) attnum;
		c->colname = pstrdup(tg->tgargs[2 * i]);
		c->rule = call->rule;
		c->typbyval = att->attbyval;
		c->typlen = att->attlen;
		c->max_chars = ((att->atttypid == VARCHAROID || att->atttypid == BPCHAROID) &&
						att->atttypmod >= VARHDRSZ) ? att->atttypmod - VARHDRSZ : -1;
		if (strcmp(call->rule, "shred") == 0)
		{
			build_shred_column(fcinfo, td, c);
			continue;
		}
		if (call->function == NULL)
		{
			c->set_null = true;
			continue;
		}
		/* pseudo_ip reads inet columns, and the text form of text and varchar ones. */
		fmgr_info_cxt(DatumGetObjectId(DirectFunctionCall1(regprocedurein,
														   CStringGetDatum(strcmp(call->rule, "pseudo_ip") == 0 &&
																		   att->atttypid != INETOID
																		   ? "pdp.pseudo_ip_text(text)" : call->function))),
					  &c->fn, fcinfo->flinfo->fn_mcxt);
		c->nargs = 1;
		for (int j = 0; j < MAX_EXTRA_ARGS && call->extra[j] != X_NONE; j++)
		{
			c->args[c->nargs] = extra_datum(call->extra[j], &c->nulls[c->nargs]);
			c->nargs++;
		}
	}
	MemoryContextSwitchTo(old);
	return cache;
}

/* Apply one column's rule to a non-null value. */
static Datum
apply_rule(OnWriteColumn *c, Datum value, bool *isnull)
{
	LOCAL_FCINFO(call, 1 + MAX_EXTRA_ARGS);
	Datum		result;

	InitFunctionCallInfoData(*call, &c->fn, c->nargs, DEFAULT_COLLATION_OID, NULL, NULL);
	call->args[0].value = value;
	call->args[0].isnull = false;
	for (int j = 1; j < c->nargs; j++)
	{
		call->args[j].value = c->args[j];
		call->args[j].isnull = c->nulls[j];
	}
	result = FunctionCallInvoke(call);
	*isnull = call->isnull;

	/* A BEFORE trigger's tuple is not checked against varchar(n) again: check here. */
	if (!*isnull && c->max_chars >= 0)
	{
		text	   *t = DatumGetTextPP(result);

		if (pg_mbstrlen_with_len(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) > c->max_chars)
			ereport(ERROR,
					(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
					 errmsg("rule output is too long for the column"),
					 errdetail("The column holds at most %d characters.", c->max_chars),
					 errhint("Widen the column, or choose a rule that keeps the value's length.")));
	}
	return result;
}

Datum
pdp_pseudonymise_on_write(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	OnWriteCache *cache;
	TupleDesc	tupdesc;
	HeapTuple	newtup,
				oldtup = NULL;
	Datum	   *values;
	bool	   *nulls;
	bool	   *replace;
	bool		any = false;
	RuleErrorContext ctx;
	ErrorContextCallback errcb;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pdp._pseudonymise_on_write() must be called as a trigger")));
	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pdp._pseudonymise_on_write() must fire BEFORE INSERT OR UPDATE FOR EACH ROW")));

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		newtup = td->tg_newtuple;
		oldtup = td->tg_trigtuple;
	}
	else
		newtup = td->tg_trigtuple;

	cache = (OnWriteCache *) fcinfo->flinfo->fn_extra;
	if (cache == NULL || cache->tgoid != td->tg_trigger->tgoid)
	{
		cache = build_cache(fcinfo, td);
		fcinfo->flinfo->fn_extra = cache;
	}

	tupdesc = RelationGetDescr(td->tg_relation);
	values = palloc(tupdesc->natts * sizeof(Datum));
	nulls = palloc(tupdesc->natts * sizeof(bool));
	replace = palloc0(tupdesc->natts * sizeof(bool));

	ctx.relname = RelationGetRelationName(td->tg_relation);
	errcb.callback = rule_error_callback;
	errcb.arg = &ctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	{
		for (int i = 0; i < cache->ncols; i++)
		{
			OnWriteColumn *c = &cache->cols[i];
			bool		isnull;
			Datum		value = heap_getattr(newtup, c->attnum, tupdesc, &isnull);

			if (isnull)
				continue;
			ctx.rule = c->rule;
			ctx.colname = c->colname;
			if (oldtup != NULL)
			{
				bool		oldnull;
				Datum		oldvalue = heap_getattr(oldtup, c->attnum, tupdesc, &oldnull);

				if (!oldnull)
				{
					bool		rnull;
					Datum		ruled;

					/*
					 * Unchanged, so already pseudonymised; a shredded
					 * column's value unless it is not shredded yet (written
					 * before the rule: UPDATE ... SET col = col shreds it).
					 */
					if (datum_image_eq(value, oldvalue, c->typbyval, c->typlen) &&
						(!c->shred || pdp_shred_looks_sealed(DatumGetTextPP(value))))
						continue;
					/* The rule's output for the old value: apply_rules is writing. */
					if (!c->set_null && !c->shred)
					{
						ruled = apply_rule(c, oldvalue, &rnull);
						if (!rnull && datum_image_eq(value, ruled, c->typbyval, c->typlen))
							continue;
					}
				}
			}
			if (c->set_null)
			{
				values[c->attnum - 1] = (Datum) 0;
				nulls[c->attnum - 1] = true;
			}
			else if (c->shred)
			{
				bool		keep;

				values[c->attnum - 1] = apply_shred(c, pdp_function_owner(fcinfo->flinfo->fn_oid), newtup, tupdesc, value, &keep);
				nulls[c->attnum - 1] = false;
				if (keep)
					continue;
			}
			else
			{
				bool		rnull;

				values[c->attnum - 1] = apply_rule(c, value, &rnull);
				nulls[c->attnum - 1] = rnull;
			}
			replace[c->attnum - 1] = true;
			any = true;
		}
		error_context_stack = errcb.previous;
		if (any)
			newtup = heap_modify_tuple(newtup, tupdesc, values, nulls, replace);
	}
	return PointerGetDatum(newtup);
}
