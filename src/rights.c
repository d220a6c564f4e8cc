/*-------------------------------------------------------------------------
 * rights.c
 *	  The rectification trigger (pending notices to every recipient of a
 *	  subject whose classified data changed) and the erasure switch.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(pdp_rectification);
PG_FUNCTION_INFO_V1(pdp_set_erasing);

/*
 * pdp._set_erasing(on boolean): lets pdp.erase_subject delete rows of a
 * restricted subject (restriction does not bar erasure) until it turns it
 * off, the subtransaction it was turned on in aborts (an erasure that
 * failed inside a savepoint or an EXCEPTION block), or the transaction
 * ends.  Executable by the extension's owner only.
 */
Datum
pdp_set_erasing(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0) && PG_GETARG_BOOL(0))
		pdp_scoped_set(&pdp_erasure_in_progress);
	else
		pdp_scoped_clear(&pdp_erasure_in_progress);
	PG_RETURN_VOID();
}

/* pdp._erasing() RETURNS boolean: whether an erasure is running. */
PG_FUNCTION_INFO_V1(pdp_erasing);

Datum
pdp_erasing(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(pdp_erasure_in_progress);
}

/* Whether the last table the trigger fired on is registered, and when it was asked. */
static Oid	registered_relid = InvalidOid;
static LocalTransactionId registered_lxid = InvalidLocalTransactionId;
static TimestampTz registered_stmt = 0;
static bool registered_on_shard = false;

/*
 * AFTER UPDATE row trigger on registered tables with classified columns.
 * Arguments: "s:<subject column>" ... and "c:<classified column>" ....
 * When a classified column's value changed, every recipient that received
 * data of the row's subjects gets a pending notice (talap §5.1.4, GDPR
 * Art. 19).  The notice names the table and columns, never the values.
 */
Datum
pdp_rectification(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	oldt,
				newt;
	StringInfoData changed;
	Oid			save_userid;
	int			save_sec_context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pdp._rectification() must fire AFTER UPDATE FOR EACH ROW")));
	desc = RelationGetDescr(td->tg_relation);
	oldt = td->tg_trigtuple;
	newt = td->tg_newtuple;

	/* Which classified columns changed? */
	initStringInfo(&changed);
	for (int i = 0; i < td->tg_trigger->tgnargs; i++)
	{
		const char *arg = td->tg_trigger->tgargs[i];
		int			attnum;
		bool		n1,
					n2;
		Datum		v1,
					v2;
		Form_pg_attribute att;

		if (strncmp(arg, "c:", 2) != 0 || (attnum = SPI_fnumber(desc, arg + 2)) <= 0)
			continue;
		att = TupleDescAttr(desc, attnum - 1);
		v1 = heap_getattr(oldt, attnum, desc, &n1);
		v2 = heap_getattr(newt, attnum, desc, &n2);
		if (n1 != n2 || (!n1 && !datum_image_eq(v1, v2, att->attbyval, att->attlen)))
		{
			if (changed.len > 0)
				appendStringInfoChar(&changed, ',');
			appendStringInfoString(&changed, arg + 2);
		}
	}
	if (changed.len == 0)
		return PointerGetDatum(NULL);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(pdp_function_owner(fcinfo->flinfo->fn_oid),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		Datum		relarg[1];
		Oid			relargtype[1] = {OIDOID};
		bool		on_shard;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");

		/*
		 * The recipients are found through this server's registry and
		 * disclosures.  A table the registry does not name (itself or, for a
		 * partition, an ancestor) is one whose trigger was copied where pdp's
		 * state is not kept: a Citus shard (on a worker, or a reference
		 * table's placement on the coordinator), when a table with
		 * classified columns was distributed with
		 * citus.enable_unsafe_triggers.  There pdp._citus_shard_notices
		 * records the notices from the mirror of pdp.disclosure that
		 * pdp.citus_sync_state keeps on every node, naming the distributed
		 * table; it refuses where the table is no shard or the mirror is
		 * missing (fail closed: never a change without its notices).
		 */
		/*
		 * Asked once per table and top-level statement, not per row: the
		 * trigger exists on an ordinary table only while it is registered
		 * (unregistering drops it), and a shard is never registered.
		 */
		relarg[0] = ObjectIdGetDatum(RelationGetRelid(td->tg_relation));
		if (RelationGetRelid(td->tg_relation) == registered_relid &&
			MyProc->lxid == registered_lxid &&
			GetCurrentStatementStartTimestamp() == registered_stmt)
			on_shard = registered_on_shard;
		else
		{
			if (SPI_execute_with_args(
					"SELECT 1 FROM pdp.subject_column s "
					"WHERE s.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
					"   OR s.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT a.relid::pg_catalog.oid "
					"        FROM pg_catalog.pg_partition_ancestors($1::pg_catalog.regclass) a)) LIMIT 1",
					1, relargtype, relarg, NULL, true, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not read pdp's registry");
			on_shard = (SPI_processed == 0);
			registered_relid = RelationGetRelid(td->tg_relation);
			registered_lxid = MyProc->lxid;
			registered_stmt = GetCurrentStatementStartTimestamp();
			registered_on_shard = on_shard;
		}
		for (int i = 0; i < td->tg_trigger->tgnargs; i++)
		{
			const char *arg = td->tg_trigger->tgargs[i];
			int			attnum;
			bool		isnull;
			Datum		v;
			Oid			typoutput;
			bool		varlena;
			Datum		args[3];
			Oid			argtypes[3] = {TEXTOID, OIDOID, TEXTOID};

			if (strncmp(arg, "s:", 2) != 0 || (attnum = SPI_fnumber(desc, arg + 2)) <= 0)
				continue;
			v = heap_getattr(oldt, attnum, desc, &isnull);
			if (isnull)
				continue;
			getTypeOutputInfo(TupleDescAttr(desc, attnum - 1)->atttypid, &typoutput, &varlena);
			args[0] = CStringGetTextDatum(OidOutputFunctionCall(typoutput, v));
			args[1] = ObjectIdGetDatum(RelationGetRelid(td->tg_relation));
			args[2] = CStringGetTextDatum(changed.data);
			if (on_shard)
			{
				if (SPI_execute_with_args(
						"SELECT pdp._citus_shard_notices($2::pg_catalog.regclass, $1, pg_catalog.string_to_array($3, ','))",
						3, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
					elog(ERROR, "could not record rectification notices");
				continue;
			}
			/*
			 * A text cell spelling an integer ('007') names that integer's
			 * subject ('7', as pdp's tables hold it) where integer and text
			 * subject columns are both registered, as export and erasure
			 * read it (pdp._subject_eq_sql).
			 */
			if (SPI_execute_with_args(
					"INSERT INTO pdp.rectification_notice (subject, recipient, tbl, columns) "
					"SELECT DISTINCT d.subject, d.recipient, $2::regclass, pg_catalog.string_to_array($3, ',') "
					"FROM pdp.disclosure d WHERE d.subject OPERATOR(pg_catalog.=) $1 "
					"   OR (d.subject OPERATOR(pg_catalog.=) pdp._integer_spelling($1) AND pdp._spellings_apply())",
					3, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not record rectification notices");
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	return PointerGetDatum(NULL);
}
