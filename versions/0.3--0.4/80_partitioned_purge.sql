-- Purges of tables with partitions or inheritance children (issue 14,
-- class 6): they removed rows by ctid, which repeats across partitions, so a
-- purge of a partitioned table deleted rows of other partitions.  A batch
-- now names its rows by tableoid and ctid (10_erasure.sql, pdp._purge_rows,
-- which uses pdp._has_children); such tables are purged, not skipped.

CREATE OR REPLACE FUNCTION pdp._has_children(tbl regclass) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) tbl::oid)
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid AND c.relkind = 'p') $$;
COMMENT ON FUNCTION pdp._has_children(regclass) IS 'whether a table is partitioned or has inheritance children';
REVOKE ALL ON FUNCTION pdp._has_children(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._has_children(regclass) TO pdp_admin;

CREATE OR REPLACE FUNCTION pdp._refuse_on_citus(tbl regclass, what text) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text := pdp._citus_table_kind(tbl);
    why text;
BEGIN
    -- (A table with partitions or inheritance children is purged: its rows
    -- are named by tableoid and ctid, pdp._purge_rows.)
    IF kind IS NULL THEN
        RETURN;
    END IF;
    why := CASE
        WHEN what IN ('purge', 'anonymise rows of') THEN
            'Citus runs the statement on every shard or placement, where pdp''s row identifiers '
            '(ctid, unique only within one shard) and its bookkeeping tables do not reach; '
            'it could change rows other than the expired or erased ones.'
        WHEN what IN ('apply column rules to', 'set column rules on') THEN
            'Column rules are applied to distributed and reference tables by key range; '
            'Citus local and partitioned Citus tables have not been verified.'
        ELSE
            'The triggers and policies it installs would run on the shards, which pdp''s registry, '
            'disclosure and retention state does not name (consent state reaches the workers after '
            'pdp.citus_sync_state()), and they need citus.enable_unsafe_triggers.'
        END;
    RAISE EXCEPTION 'cannot % % table "%"', what, kind, pdp._relname(tbl)
        USING ERRCODE = 'feature_not_supported',
              DETAIL = why,
              HINT = 'See "What is refused on Citus tables" in doc/scaling.md; '
                     'export, erasure by deletion, pseudonymising queries and filters with pdp._visible work on Citus tables.';
END
$$;
CREATE OR REPLACE FUNCTION pdp._citus_skip_purge(tbl regclass, run_id bigint) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text := pdp._citus_table_kind(tbl);
    msg text;
    why text;
BEGIN
    IF kind IS NULL THEN
        RETURN false;
    END IF;
    -- Nothing to purge there (no retention, no inactivity retention): skip quietly.
    IF NOT EXISTS (SELECT 1 FROM pdp.retention_policy p WHERE p.tbl OPERATOR(pg_catalog.=) _citus_skip_purge.tbl)
       AND NOT EXISTS (SELECT 1 FROM pdp.subject_retention) THEN
        RETURN true;
    END IF;
    why := pdp._citus_purge_refusal(tbl);
    IF why IS NULL THEN
        RETURN false;   -- purged by key, shard by shard
    END IF;
    msg := pg_catalog.format('cannot purge %s table "%s"', kind, pdp._relname(tbl));
    PERFORM pdp._record_purge_batch(run_id, tbl, pdp._purge_action(tbl), 0,
                                    pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                                        'table', tbl::text, 'sqlstate', '0A000', 'message', msg, 'why', why)));
    RAISE WARNING 'purge: skipped % table "%"', kind, pdp._relname(tbl)
        USING DETAIL = why, HINT = pdp._citus_purge_hint();
    RETURN true;
END
$$;
