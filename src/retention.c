/*-------------------------------------------------------------------------
 * retention.c
 *	  Expiry computation for retention, and the tagging trigger for tables
 *	  without an anchor column.
 *
 * A row's expiry is a pure function of its anchor: pdp._expiry(anchor,
 * period), evaluated in UTC so that it is IMMUTABLE and can key an
 * expression index.  That index is the tag: PostgreSQL keeps it current on
 * every INSERT, UPDATE and COPY of the anchor, with no column added and no
 * trigger, and expired rows are an index range scan.  Tables without an
 * anchor get a side table, pdp.retention_tag, filled by a C statement
 * trigger (one INSERT per statement) with the insertion time plus the period.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(pdp_expiry_timestamptz);
PG_FUNCTION_INFO_V1(pdp_expiry_timestamp);
PG_FUNCTION_INFO_V1(pdp_expiry_date);
PG_FUNCTION_INFO_V1(pdp_expiry_epoch);
PG_FUNCTION_INFO_V1(pdp_retention_tag);

/* pdp.purge_max_share (defined in _PG_init; read by the purge in SQL). */
double		pdp_purge_max_share = 0.10;

/*
 * ts + span in UTC: months and days are calendar steps of the UTC date,
 * then the time part is added.  Infinite anchors stay infinite; an
 * overflow yields +infinity (the row never expires rather than erroring).
 */
static TimestampTz
add_in_utc(TimestampTz ts, Interval *span)
{
	struct pg_tm tt;
	fsec_t		fsec;
	TimestampTz result;

	if (TIMESTAMP_NOT_FINITE(ts))
		return ts;
	if (timestamp2tm(ts, NULL, &tt, &fsec, NULL, NULL) != 0)
		return DT_NOEND;
	if (span->month != 0)
	{
		tt.tm_mon += span->month;
		if (tt.tm_mon > MONTHS_PER_YEAR)
		{
			tt.tm_year += (tt.tm_mon - 1) / MONTHS_PER_YEAR;
			tt.tm_mon = ((tt.tm_mon - 1) % MONTHS_PER_YEAR) + 1;
		}
		else if (tt.tm_mon < 1)
		{
			tt.tm_year += tt.tm_mon / MONTHS_PER_YEAR - 1;
			tt.tm_mon = tt.tm_mon % MONTHS_PER_YEAR + MONTHS_PER_YEAR;
		}
		if (tt.tm_mday > day_tab[isleap(tt.tm_year)][tt.tm_mon - 1])
			tt.tm_mday = day_tab[isleap(tt.tm_year)][tt.tm_mon - 1];
	}
	if (span->day != 0)
	{
		int			julian = date2j(tt.tm_year, tt.tm_mon, tt.tm_mday) + span->day;

		j2date(julian, &tt.tm_year, &tt.tm_mon, &tt.tm_mday);
	}
	if (tm2timestamp(&tt, fsec, NULL, &result) != 0)
		return DT_NOEND;
	if (pg_add_s64_overflow(result, span->time, &result))
		return DT_NOEND;
	return result;
}

/* pdp._expiry(anchor timestamptz, period interval) RETURNS timestamptz, IMMUTABLE */
Datum
pdp_expiry_timestamptz(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(add_in_utc(PG_GETARG_TIMESTAMPTZ(0), PG_GETARG_INTERVAL_P(1)));
}

/* A timestamp without time zone is read as UTC. */
Datum
pdp_expiry_timestamp(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(add_in_utc((TimestampTz) PG_GETARG_TIMESTAMP(0), PG_GETARG_INTERVAL_P(1)));
}

/* A date is midnight UTC of that day. */
Datum
pdp_expiry_date(PG_FUNCTION_ARGS)
{
	DateADT		d = PG_GETARG_DATEADT(0);
	TimestampTz ts;

	if (DATE_IS_NOBEGIN(d))
		PG_RETURN_TIMESTAMPTZ(DT_NOBEGIN);
	if (DATE_IS_NOEND(d))
		PG_RETURN_TIMESTAMPTZ(DT_NOEND);
	ts = (TimestampTz) d * USECS_PER_DAY;
	PG_RETURN_TIMESTAMPTZ(add_in_utc(ts, PG_GETARG_INTERVAL_P(1)));
}

/* Unix epoch seconds (integer or bigint columns). */
Datum
pdp_expiry_epoch(PG_FUNCTION_ARGS)
{
	int64		secs = PG_GETARG_INT64(0);
	TimestampTz ts;

	/* Seconds since 1970 to microseconds since 2000, saturating. */
	if (secs > (INT64CONST(9223372036854775807) / USECS_PER_SEC) - 946684800 ||
		secs < -(INT64CONST(9223372036854775807) / USECS_PER_SEC) + 946684800)
		PG_RETURN_TIMESTAMPTZ(secs > 0 ? DT_NOEND : DT_NOBEGIN);
	ts = (secs - (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY) * USECS_PER_SEC;
	PG_RETURN_TIMESTAMPTZ(add_in_utc(ts, PG_GETARG_INTERVAL_P(1)));
}

/*
 * AFTER INSERT statement trigger on a retained table without an anchor,
 * with the inserted rows as transition table "pdp_new_rows"; its arguments
 * are the primary-key column and the period.  Records every new row's
 * expiry (now plus the period) in pdp.retention_tag with one INSERT per
 * statement, however many rows it inserted.  The keys' text forms are
 * taken as the inserting role (a cast the table's owner defined for its
 * key type runs with that role's rights, as the table's own triggers do);
 * only the insert into pdp.retention_tag runs as the trigger function's
 * owner, as RI triggers do: writers need no rights on pdp.
 */
Datum
pdp_retention_tag(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Datum		values[3];
	Oid			argtypes[3] = {OIDOID, TIMESTAMPTZOID, TEXTARRAYOID};
	Interval   *period;
	char	   *keys_sql;
	const char *key;
	Oid			save_userid;
	int			save_sec_context;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		td->tg_trigger->tgnargs != 2 || td->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pdp._retention_tag() must fire AFTER INSERT FOR EACH STATEMENT with a new table and (key column, period)")));
	period = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(td->tg_trigger->tgargs[1]),
												   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	values[0] = ObjectIdGetDatum(RelationGetRelid(td->tg_relation));
	values[1] = TimestampTzGetDatum(add_in_utc(GetCurrentTransactionStartTimestamp(), period));
	key = quote_identifier(td->tg_trigger->tgargs[0]);
	keys_sql = psprintf("SELECT pg_catalog.array_agg(n.%s::text) FROM pdp_new_rows n WHERE n.%s IS NOT NULL", key, key);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition table");
	/* As the inserting role. */
	if (SPI_execute(keys_sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the new rows' keys");
	values[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
	{
		SPI_finish();
		return PointerGetDatum(NULL);
	}

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(pdp_function_owner(fcinfo->flinfo->fn_oid),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		if (SPI_execute_with_args("INSERT INTO pdp.retention_tag (tbl, row_key, expires_at) "
								  "SELECT $1, k.k, $2 FROM pg_catalog.unnest($3) AS k(k) "
								  "ON CONFLICT (tbl, row_key) DO UPDATE SET expires_at = EXCLUDED.expires_at",
								  3, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not tag new rows with their expiry");
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	SPI_finish();
	return PointerGetDatum(NULL);
}
