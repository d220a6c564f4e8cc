/*-------------------------------------------------------------------------
 * audit_seal.c
 *	  The sealer: chains a batch of committed, unsealed audit entries, set
 *	  at a time.
 *
 * pdp.seal_audit_log (src/sql/60_audit.sql) takes the sealer's advisory
 * lock, locks the chain's head row and rebuilds the queue after a crash; it
 * then calls pdp._audit_seal_chain, here, which
 *
 *   1. reads the queued entries, in entry id order, through one cursor
 *      (a plan prepared once per backend),
 *   2. computes, in C, each entry's chain hash and its MAC under the key
 *      file's audit subkey (the chain is sequential by nature: each link
 *      needs the previous one),
 *   3. writes the seals with one INSERT ... SELECT FROM unnest(...) per
 *      chunk of SEAL_CHUNK entries (chunks only bound the memory a large
 *      batch needs; a batch of the audit worker is a few chunks at most),
 *   4. removes the sealed entries from the queue in one DELETE, and moves
 *      the head in one UPDATE.
 *
 * No statement runs per entry.  Everything happens in the caller's
 * transaction, so a crash or an error mid-seal leaves no seal and no queue
 * change behind: the next sealer starts again from the same head, and no
 * entry is lost or sealed twice (audit_seal.entry_id is UNIQUE, too).
 *
 * Locking: the caller holds the advisory lock "pdp_ext audit seal" and the
 * row lock on pdp.audit_chain (pdp.seal_audit_log takes both), so one
 * sealer at a time extends the chain.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "keyed.h"
#include "pdp_crypto.h"

PG_FUNCTION_INFO_V1(pdp_audit_seal_chain);

#define SEAL_CHUNK 10000
#define SEAL_FIELDS 6			/* role, session_role, action, object, subject, details */

static SPIPlanPtr seal_select_plan = NULL;
static SPIPlanPtr seal_insert_plan = NULL;
static SPIPlanPtr seal_delete_plan = NULL;
static SPIPlanPtr seal_head_plan = NULL;

static SPIPlanPtr
seal_prepare(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

	if (p == NULL || SPI_keepplan(p) != 0)
		elog(ERROR, "could not prepare the audit sealer's statement: %s",
			 SPI_result_code_string(SPI_result));
	return p;
}

/* The sealer's statements, prepared once per backend.  All names qualified. */
static void
seal_prepare_plans(void)
{
	Oid			select_args[1] = {INT8OID};
	Oid			insert_args[5] = {INT8ARRAYOID, INT8ARRAYOID, BYTEAARRAYOID, INT4OID, BYTEAARRAYOID};
	Oid			delete_args[1] = {INT8OID};
	Oid			head_args[3] = {INT8OID, BYTEAOID, BYTEAOID};

	if (seal_select_plan == NULL)
		seal_select_plan = seal_prepare(
			"SELECT l.id, l.at, l.role::pg_catalog.text, l.session_role::pg_catalog.text, l.action, "
			"       l.object, l.subject_pseudonym, l.details::pg_catalog.text "
			"  FROM pdp.audit_unsealed u JOIN pdp.audit_log l ON l.id OPERATOR(pg_catalog.=) u.entry_id "
			" ORDER BY u.entry_id LIMIT $1", 1, select_args);
	if (seal_insert_plan == NULL)
		seal_insert_plan = seal_prepare(
			"INSERT INTO pdp.audit_seal (seq, entry_id, hash, key_version, mac) "
			"SELECT s.seq, s.entry_id, s.hash, $4, s.mac "
			"  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
			"                 pg_catalog.unnest($5)) AS s(seq, entry_id, hash, mac)", 5, insert_args);
	if (seal_delete_plan == NULL)
		seal_delete_plan = seal_prepare(
			"DELETE FROM pdp.audit_unsealed u USING pdp.audit_seal a "
			" WHERE a.entry_id OPERATOR(pg_catalog.=) u.entry_id AND a.seq OPERATOR(pg_catalog.>) $1",
			1, delete_args);
	if (seal_head_plan == NULL)
		seal_head_plan = seal_prepare(
			"UPDATE pdp.audit_chain SET head_seq = $1, head_hash = $2, head_mac = $3", 3, head_args);
}

static bytea *
seal_bytea(const unsigned char *b)
{
	bytea	   *r = (bytea *) palloc(VARHDRSZ + 32);

	SET_VARSIZE(r, VARHDRSZ + 32);
	memcpy(VARDATA(r), b, 32);
	return r;
}

/* Insert one chunk of seals with one statement. */
static void
seal_insert_chunk(int n, Datum *seqs, Datum *ids, Datum *hashes, Datum *macs, int32 version)
{
	Datum		values[5];

	values[0] = PointerGetDatum(construct_array(seqs, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(hashes, n, BYTEAOID, -1, false, TYPALIGN_INT));
	values[3] = Int32GetDatum(version);
	values[4] = PointerGetDatum(construct_array(macs, n, BYTEAOID, -1, false, TYPALIGN_INT));
	if (SPI_execute_plan(seal_insert_plan, values, NULL, false, 0) != SPI_OK_INSERT ||
		SPI_processed != (uint64) n)
		elog(ERROR, "could not write the audit seals");
}

/*
 * pdp._audit_seal_chain(max_entries bigint) RETURNS bigint: seals up to
 * max_entries queued entries (NULL: all) and returns how many it sealed.
 * Only pdp.seal_audit_log calls it (see the file header for the locks it
 * must hold).  Needs the key file: without it, it raises and nothing is
 * sealed.
 */
Datum
pdp_audit_seal_chain(PG_FUNCTION_ARGS)
{
	PdpKeyed   *k;
	int32		version;
	Datum		arg;
	char		argnull;
	bool		isnull;
	Portal		portal;
	int64		head_seq;
	int64		old_head;
	unsigned char prev[32];
	unsigned char prev_mac[32];
	bool		has_prev_mac;
	int64		n = 0;
	MemoryContext chunkctx;
	MemoryContext callctx = CurrentMemoryContext;

	pdp_require_pdp_caller("pdp._audit_seal_chain");
	if (!PG_ARGISNULL(0) && PG_GETARG_INT64(0) <= 0)
		PG_RETURN_INT64(0);
	k = pdp_keyed_get(fcinfo, PDP_KEYED_HMAC, "audit_chain", "", 0, 0);
	version = (int32) pdp_keyed_version(k);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	seal_prepare_plans();

	/* The head (pdp.seal_audit_log has made the row and locked it). */
	if (SPI_execute("SELECT c.head_seq, c.head_hash, c.head_mac FROM pdp.audit_chain c FOR UPDATE",
					false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the audit chain has no head row"),
				 errhint("Seal with pdp.seal_audit_log(), which makes it.")));
	{
		TupleDesc	td = SPI_tuptable->tupdesc;
		HeapTuple	tup = SPI_tuptable->vals[0];
		bytea	   *h;
		Datum		d;

		head_seq = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
		h = DatumGetByteaPP(SPI_getbinval(tup, td, 2, &isnull));
		if (VARSIZE_ANY_EXHDR(h) != 32)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the audit chain's head hash does not have 32 bytes")));
		memcpy(prev, VARDATA_ANY(h), 32);
		d = SPI_getbinval(tup, td, 3, &isnull);
		has_prev_mac = !isnull;
		if (has_prev_mac)
		{
			bytea	   *m = DatumGetByteaPP(d);

			if (VARSIZE_ANY_EXHDR(m) != 32)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("the audit chain's head MAC does not have 32 bytes")));
			memcpy(prev_mac, VARDATA_ANY(m), 32);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	old_head = head_seq;

	arg = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	argnull = PG_ARGISNULL(0) ? 'n' : ' ';
	portal = SPI_cursor_open(NULL, seal_select_plan, &arg, &argnull, false);
	chunkctx = AllocSetContextCreate(callctx, "pdp_ext audit seal chunk", ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		SPITupleTable *tt;
		Datum	   *seqs;
		Datum	   *ids;
		Datum	   *hashes;
		Datum	   *macs;
		uint64		rows;
		MemoryContext old;

		SPI_cursor_fetch(portal, true, SEAL_CHUNK);
		rows = SPI_processed;
		tt = SPI_tuptable;
		if (rows == 0)
			break;
		old = MemoryContextSwitchTo(chunkctx);
		seqs = palloc(sizeof(Datum) * rows);
		ids = palloc(sizeof(Datum) * rows);
		hashes = palloc(sizeof(Datum) * rows);
		macs = palloc(sizeof(Datum) * rows);
		for (uint64 r = 0; r < rows; r++)
		{
			HeapTuple	tup = tt->vals[r];
			TupleDesc	td = tt->tupdesc;
			const char *fields[SEAL_FIELDS];
			uint32		lens[SEAL_FIELDS];
			int64		id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
			TimestampTz at = DatumGetTimestampTz(SPI_getbinval(tup, td, 2, &isnull));
			unsigned char hash[32];
			unsigned char mac[32];

			for (int f = 0; f < SEAL_FIELDS; f++)
			{
				Datum		d = SPI_getbinval(tup, td, f + 3, &isnull);

				if (isnull)
				{
					fields[f] = NULL;
					lens[f] = 0;
				}
				else
				{
					text	   *t = DatumGetTextPP(d);

					fields[f] = VARDATA_ANY(t);
					lens[f] = VARSIZE_ANY_EXHDR(t);
				}
			}
			head_seq++;
			pdp_audit_hash_entry(prev, 32, head_seq, id, at, SEAL_FIELDS, fields, lens, hash);
			pdp_audit_mac_compute(k, has_prev_mac ? prev_mac : NULL, (uint64) head_seq, hash, mac);
			memcpy(prev, hash, 32);
			memcpy(prev_mac, mac, 32);
			has_prev_mac = true;
			seqs[r] = Int64GetDatum(head_seq);
			ids[r] = Int64GetDatum(id);
			hashes[r] = PointerGetDatum(seal_bytea(hash));
			macs[r] = PointerGetDatum(seal_bytea(mac));
			pdp_cleanse(mac, sizeof(mac));
		}
		seal_insert_chunk((int) rows, seqs, ids, hashes, macs, version);
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunkctx);
		SPI_freetuptable(tt);
		n += rows;
	}
	SPI_cursor_close(portal);

	if (n > 0)
	{
		Datum		dv[1] = {Int64GetDatum(old_head)};
		Datum		hv[3];

		/* The queue loses what was sealed, and the head moves: one statement each. */
		if (SPI_execute_plan(seal_delete_plan, dv, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not remove sealed entries from the audit queue");
		hv[0] = Int64GetDatum(head_seq);
		hv[1] = PointerGetDatum(seal_bytea(prev));
		hv[2] = PointerGetDatum(seal_bytea(prev_mac));
		if (SPI_execute_plan(seal_head_plan, hv, NULL, false, 0) != SPI_OK_UPDATE || SPI_processed != 1)
			elog(ERROR, "could not move the audit chain's head");
	}
	pdp_cleanse(prev_mac, sizeof(prev_mac));
	MemoryContextDelete(chunkctx);
	SPI_finish();
	PG_RETURN_INT64(n);
}
