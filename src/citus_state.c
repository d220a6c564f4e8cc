/*-------------------------------------------------------------------------
 * citus_state.c
 *	  Which relation the row check reads pdp's state from: pdp's own tables,
 *	  or, on a Citus worker, the local placement of pdp's mirror of them.
 *
 * The row check (visibility.c) and the purpose check (consent.c) read four
 * of pdp's tables: pdp.purpose, pdp.purpose_grant, pdp.consent_state and
 * pdp.restriction.  On a Citus worker those are empty: pdp's functions run
 * on the coordinator.  pdp.citus_sync_state() (src/sql/15_citus.sql), run
 * on a coordinator, makes Citus reference tables pdp.citus_purpose,
 * pdp.citus_purpose_grant (roles by name), pdp.citus_consent_state and
 * pdp.citus_restriction holding the columns the checks need, and keeps them
 * in step with statement triggers on pdp's tables: a change is written to every
 * worker's placement by Citus in the same (two-phase) transaction.
 *
 * On a worker (pg_dist_local_group.groupid <> 0) that has a mirror table's
 * placement, the readers read that placement (pdp.citus_X_<shardid>, found
 * through pg_dist_shard) under the same snapshots as they read pdp's own
 * tables on a single server: a change committed on the coordinator is seen
 * by the next statement that takes a snapshot on the worker.  A worker with
 * the mirror's metadata but no placement (added after the sync, before
 * Citus replicated reference tables to it) refuses rather than read its own
 * empty tables.  Elsewhere (no Citus, the coordinator, a worker before the
 * first sync) they read pdp's own tables, as before; the OIDs of pdp's
 * tables and of the mirror's shells are cached (StateNames), so that costs
 * no catalog lookup per call.
 *
 * Note about caching and invalidation
 * -----------------------------------
 * What is cached is only where the placements are: the mirror tables' and
 * their placements' OIDs, and whether this node is a worker.  A relcache
 * invalidation of any of those relations (or of all) only clears
 * mirror_valid; the next call resolves again, outside the callback.
 * mirror_valid is set before the resolution, so an invalidation arriving
 * while it opens catalogs clears it again.  Placement contents are never
 * cached here; consent.c does not keep the purpose state across statements
 * when it comes from a placement (no invalidation is sent when Citus writes
 * a placement).
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"

#include "citus_state.h"

static const char *const own_table[PDP_STATE_N] = {
	"purpose", "purpose_grant", "consent_state", "restriction"
};
static const char *const own_pkey[PDP_STATE_N] = {
	"purpose_pkey", "purpose_grant_pkey", "consent_state_pkey", "restriction_pkey"
};
static const char *const mirror_table[PDP_STATE_N] = {
	"citus_purpose", "citus_purpose_grant", "citus_consent_state", "citus_restriction"
};

/* Where the mirror's placements are on this node (see the note above). */
typedef struct MirrorPlacements
{
	bool		on_worker;
	Oid			shell[PDP_STATE_N];
	Oid			placement[PDP_STATE_N];
	Oid			placement_pkey[PDP_STATE_N];
} MirrorPlacements;

static MirrorPlacements mirror;
static bool mirror_valid = false;
static bool callback_registered = false;

/*
 * The OIDs of schema pdp, of pdp's four state tables and their primary
 * keys, and of the mirror's shells (InvalidOid: none), so that the common
 * case (no mirror) costs no catalog lookup per statement.  Any change of a
 * relation's or a schema's name (RELNAMENSP, NAMESPACENAME: every CREATE,
 * DROP and RENAME) only clears names_valid; the next call looks them up
 * again.
 */
typedef struct StateNames
{
	Oid			nsp;
	Oid			shell[PDP_STATE_N];
	Oid			own[PDP_STATE_N];
	Oid			own_pkey[PDP_STATE_N];
} StateNames;

static StateNames names;
static bool names_valid = false;

static void
citus_state_names_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	names_valid = false;
}

static void
resolve_names(void)
{
	StateNames	fresh;

	memset(&fresh, 0, sizeof(fresh));
	/* Set first: an invalidation arriving during the lookups clears it again. */
	names_valid = true;
	fresh.nsp = get_namespace_oid("pdp", true);
	if (OidIsValid(fresh.nsp))
		for (int i = 0; i < PDP_STATE_N; i++)
		{
			fresh.shell[i] = get_relname_relid(mirror_table[i], fresh.nsp);
			fresh.own[i] = get_relname_relid(own_table[i], fresh.nsp);
			fresh.own_pkey[i] = get_relname_relid(own_pkey[i], fresh.nsp);
		}
	names = fresh;
}

static void
citus_state_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid)
	{
		mirror_valid = false;
		names_valid = false;
		return;
	}
	for (int i = 0; i < PDP_STATE_N; i++)
		if (relid == mirror.shell[i] || relid == mirror.placement[i])
			mirror_valid = false;
}

/* Citus's group id of this node (0: the coordinator), or 0 without Citus. */
static int32
local_group_id(void)
{
	Oid			relid = get_relname_relid("pg_dist_local_group", PG_CATALOG_NAMESPACE);
	Relation	rel;
	Snapshot	snap;
	TableScanDesc scan;
	HeapTuple	tuple;
	int32		groupid = 0;

	if (!OidIsValid(relid))
		return 0;
	rel = table_open(relid, AccessShareLock);
	snap = RegisterSnapshot(GetCatalogSnapshot(relid));
	scan = table_beginscan(rel, snap, 0, NULL);
	if ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, 1, RelationGetDescr(rel), &isnull);

		if (!isnull)
			groupid = DatumGetInt32(d);
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return groupid;
}

/*
 * The shard ids of the tables shells[] (pg_dist_shard: logicalrelid, shardid,
 * ...; a reference table has exactly one shard), 0 where there is none.
 */
static void
shard_ids(const Oid *shells, int64 *out)
{
	Oid			relid = get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
	Relation	rel;
	Snapshot	snap;
	TableScanDesc scan;
	HeapTuple	tuple;

	memset(out, 0, sizeof(int64) * PDP_STATE_N);
	if (!OidIsValid(relid))
		return;
	rel = table_open(relid, AccessShareLock);
	snap = RegisterSnapshot(GetCatalogSnapshot(relid));
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		rnull,
					snull;
		Datum		logical = heap_getattr(tuple, 1, desc, &rnull);
		Datum		shardid = heap_getattr(tuple, 2, desc, &snull);

		if (rnull || snull)
			continue;
		for (int i = 0; i < PDP_STATE_N; i++)
			if (OidIsValid(shells[i]) && DatumGetObjectId(logical) == shells[i])
				out[i] = DatumGetInt64(shardid);
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
}

/* Work out where the placements are, into *out. */
static void
resolve_mirror(Oid nsp, MirrorPlacements *out)
{
	int64		shard[PDP_STATE_N];

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < PDP_STATE_N; i++)
		out->shell[i] = get_relname_relid(mirror_table[i], nsp);
	out->on_worker = local_group_id() != 0;
	if (!out->on_worker)
		return;
	shard_ids(out->shell, shard);
	for (int i = 0; i < PDP_STATE_N; i++)
	{
		char		name[NAMEDATALEN];
		Oid			placement;
		Relation	rel;

		if (shard[i] == 0)
			continue;
		snprintf(name, sizeof(name), "%s_" INT64_FORMAT, mirror_table[i], shard[i]);
		placement = get_relname_relid(name, nsp);
		if (!OidIsValid(placement))
			continue;
		rel = table_open(placement, AccessShareLock);
		out->placement_pkey[i] = RelationGetPrimaryKeyIndex(rel);
		table_close(rel, AccessShareLock);
		if (OidIsValid(out->placement_pkey[i]))
			out->placement[i] = placement;
	}
}

/*
 * The relation to read `which` from, and its primary key index, into
 * *relid and *pkey (InvalidOid when pdp_ext is not installed in this
 * database).  Returns true when it is the local placement of pdp's Citus
 * mirror (a worker), false for pdp's own table.
 */
bool
pdp_state_relation(PdpStateTable which, Oid *relid, Oid *pkey)
{
	Oid			nsp;
	Oid			shell;

	*relid = *pkey = InvalidOid;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(citus_state_relcache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(RELNAMENSP, citus_state_names_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACENAME, citus_state_names_callback, (Datum) 0);
		callback_registered = true;
	}
	if (!names_valid)
		resolve_names();
	nsp = names.nsp;
	if (!OidIsValid(nsp))
		return false;
	shell = names.shell[which];
	if (OidIsValid(shell))
	{
		if (!mirror_valid || mirror.shell[which] != shell)
		{
			MirrorPlacements fresh;

			/* Set first: an invalidation arriving during the read clears it again. */
			mirror_valid = true;
			PG_TRY();
			{
				resolve_mirror(nsp, &fresh);
			}
			PG_CATCH();
			{
				mirror_valid = false;
				PG_RE_THROW();
			}
			PG_END_TRY();
			mirror = fresh;
			/* A missing placement may appear (replicate_reference_tables): look again next time. */
			for (int i = 0; i < PDP_STATE_N; i++)
				if (mirror.on_worker && !OidIsValid(mirror.placement[i]))
					mirror_valid = false;
		}
		if (mirror.on_worker)
		{
			/*
			 * A worker that has the mirror's metadata but not its placement
			 * (added after the sync, before Citus replicated the reference
			 * tables to it) would read pdp's own, empty tables: refuse.
			 */
			if (!OidIsValid(mirror.placement[which]))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("pdp's consent state has no placement on this Citus worker"),
						 errdetail("Table \"pdp.%s\" is a reference table without a placement on this node.",
								   mirror_table[which]),
						 errhint("On the coordinator, run SELECT replicate_reference_tables(); it copies reference tables to new workers.")));
			*relid = mirror.placement[which];
			*pkey = mirror.placement_pkey[which];
			return true;
		}
	}
	*relid = names.own[which];
	*pkey = names.own_pkey[which];
	return false;
}
