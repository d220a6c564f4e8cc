-- Issue 16 (performance): a purge batch's delete has no RETURNING (it would
-- fetch every deleted row again) and finding a batch no longer sorts it.
CREATE OR REPLACE FUNCTION pdp._exec_as_owner_count(tbl regclass, sql text, VARIADIC args "any") RETURNS bigint
LANGUAGE C VOLATILE AS $$MODULE_PATHNAME$$, $$pdp_exec_as_owner_count$$;
COMMENT ON FUNCTION pdp._exec_as_owner_count(regclass, text, "any") IS
    'runs one statement on a table as its owner (security-restricted), as pdp._exec_as_owner does, and returns how many rows it processed';
REVOKE ALL ON FUNCTION pdp._exec_as_owner_count(regclass, text, "any") FROM PUBLIC;
CREATE OR REPLACE FUNCTION pdp._find_expired(tbl regclass, reason text, lock boolean, batch_size integer, after timestamptz,
                                  OUT ctids tid[], OUT pos timestamptz, OUT n bigint, OUT tableoids oid[])
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q text;
    held text[];
    restricted text[];
    keys text[] := '{}';
    anonymised text[] := '{}';
BEGIN
    n := 0;
    IF tbl IS NULL OR reason IS NULL OR reason NOT IN ('retention', 'inactivity') THEN
        RAISE EXCEPTION 'table and reason (retention or inactivity) must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch_size IS NOT NULL AND batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _find_expired.tbl)
       OR EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) _find_expired.tbl AND h.released_at IS NULL
                    AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now())) THEN
        RETURN;
    END IF;
    q := pdp._expired_rows_sql(tbl, reason, coalesce(lock, false));
    IF q IS NULL THEN
        RETURN;
    END IF;
    held := ARRAY(SELECT h.subject FROM pdp.hold h WHERE h.subject IS NOT NULL AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
    -- A purge keeps system subjects' rows as it keeps held subjects'.
    held := held OPERATOR(pg_catalog.||) ARRAY(SELECT y.subject FROM pdp.system_subject y);
    restricted := ARRAY(SELECT r.subject FROM pdp.restriction r);
    IF reason = 'inactivity' THEN
        keys := ARRAY(SELECT i.subject FROM pg_temp.pdp_inactive_subjects i);
    ELSIF EXISTS (SELECT 1 FROM pdp.retention_policy p
                   WHERE p.tbl OPERATOR(pg_catalog.=) _find_expired.tbl AND p.anchor_column IS NULL) THEN
        keys := ARRAY(SELECT g.row_key FROM pdp.retention_tag g WHERE g.tbl OPERATOR(pg_catalog.=) _find_expired.tbl::oid
                         AND g.expires_at OPERATOR(pg_catalog.<) pg_catalog.now());
    END IF;
    IF pdp._purge_action(tbl) = 'anonymise' THEN
        anonymised := ARRAY(SELECT a.row_key FROM pdp.anonymised_row a WHERE a.tbl OPERATOR(pg_catalog.=) _find_expired.tbl::oid);
    END IF;
    IF batch_size IS NULL THEN
        SELECT x.n INTO n
          FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.count(*) FROM (%s) x', q),
                                  2147483647, '-infinity'::timestamptz, held, restricted, keys, anonymised) AS x(n bigint);
        RETURN;
    END IF;
    SELECT x.c, x.p, x.o INTO ctids, pos, tableoids
      -- Both arrays are built from the same rows in the same order (one
      -- aggregation node feeds each row to both): no sort is needed, the
      -- TID scan of the delete sorts the ctids itself.
      FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.array_agg(x.ctid), %s, '
                                                     'pg_catalog.array_agg(x.tableoid) FROM (%s) x',
                                                     coalesce((SELECT pg_catalog.format('pdp._expiry(pg_catalog.max(x.pos), %L::interval)', p.period::text)
                                                                 FROM pdp.retention_policy p
                                                                WHERE reason = 'retention' AND p.tbl OPERATOR(pg_catalog.=) _find_expired.tbl
                                                                  AND p.anchor_column IS NOT NULL), 'NULL::timestamptz'), q),
                              batch_size, coalesce(after, '-infinity'::timestamptz), held, restricted, keys, anonymised)
           AS x(c tid[], p timestamptz, o oid[]);
    n := coalesce(pg_catalog.cardinality(ctids), 0);
END
$$;
CREATE OR REPLACE FUNCTION pdp._purge_rows(tbl regclass, action text, ctids tid[], tableoids oid[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    set_list text;
    n bigint;
    rets jsonb;
    tagged boolean;
    linked boolean;
    owners text[];
    keep text[];
    f record;
    -- The ctids as an InitPlan, not a constant: the planner estimates a
    -- constant array of many thousand TIDs as costlier than a sequential
    -- scan, and then tests every row of the table against the array.
    loc text := 't.ctid OPERATOR(pg_catalog.=) ANY ((SELECT $1)::pg_catalog.tid[])';
BEGIN
    -- A ctid is unique only within one shard: never delete by it on Citus.
    PERFORM pdp._refuse_on_citus(tbl, 'purge');
    -- Nor within a partitioned table: each partition numbers its own.
    IF pdp._has_children(tbl) THEN
        IF tableoids IS NULL OR pg_catalog.cardinality(tableoids) OPERATOR(pg_catalog.<>) pg_catalog.cardinality(ctids) THEN
            RAISE EXCEPTION 'rows of table "%" must be named by tableoid and ctid', pdp._relname(tbl)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'The table has partitions or inheritance children, whose ctids repeat.';
        END IF;
        loc := loc || ' AND (t.tableoid, t.ctid) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.oid[]), pg_catalog.unnest($1::pg_catalog.tid[])))';
    END IF;
    IF action = 'delete' THEN
        tagged := EXISTS (SELECT 1 FROM pdp.retention_policy p
                           WHERE p.tbl OPERATOR(pg_catalog.=) _purge_rows.tbl AND p.anchor_column IS NULL);
        linked := EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) _purge_rows.tbl);
        IF NOT tagged AND NOT linked THEN
            -- No RETURNING: it would fetch every deleted row again.
            RETURN pdp._exec_as_owner_count(tbl, pg_catalog.format('DELETE FROM %s t WHERE %s', tbl, loc), ctids, tableoids);
        END IF;
        -- Tagged rows: their tags go with them.  Linked rows: their dependants follow.
        SELECT pg_catalog.count(*), pg_catalog.jsonb_agg(x.r) INTO n, rets
          FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                   'DELETE FROM %s t WHERE %s RETURNING %s || pg_catalog.jsonb_build_object(''k'', %s)',
                   tbl, loc, pdp._link_returning(tbl), CASE WHEN tagged THEN pg_catalog.format('t.%I::text', pdp._single_key(tbl))
                                                            ELSE 'NULL::text' END), ctids, tableoids) AS x(r jsonb);
        IF tagged THEN
            DELETE FROM pdp.retention_tag g
             WHERE g.tbl OPERATOR(pg_catalog.=) _purge_rows.tbl::oid
               AND g.row_key IN (SELECT r->>'k' FROM pg_catalog.jsonb_array_elements(rets) r);
        END IF;
        IF linked AND n > 0 THEN
            owners := ARRAY(SELECT DISTINCT e.value FROM pg_catalog.jsonb_array_elements(rets) r
                              CROSS JOIN LATERAL pg_catalog.jsonb_each_text(r) e
                             WHERE e.key LIKE 'o:%' AND e.value IS NOT NULL);
            keep := ARRAY(SELECT h.subject FROM pdp.hold h WHERE h.subject IS NOT NULL AND h.released_at IS NULL
                             AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
            FOR f IN SELECT * FROM pdp._follow_links(tbl, rets, owners, keep, ARRAY(SELECT r.subject FROM pdp.restriction r)) LOOP
                PERFORM pdp._audit('purge_follow', f.tbl::text, NULL,
                                   pg_catalog.jsonb_build_object('parent', tbl::text, 'action', f.action, 'via', f.via, 'rows', f.rows));
            END LOOP;
        END IF;
    ELSE
        SELECT pg_catalog.string_agg(pg_catalog.format('%I = %s', r.col, pg_catalog.format(rk.expr, r.col)), ', ')
          INTO set_list
          FROM pdp.column_rule r JOIN pdp.rule_kind rk ON rk.rule OPERATOR(pg_catalog.=) r.rule
         WHERE r.tbl OPERATOR(pg_catalog.=) _purge_rows.tbl;
        IF set_list IS NULL THEN
            RAISE EXCEPTION 'table "%" has no column rules to anonymise with', pdp._relname(tbl)
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        WITH u AS (SELECT x.k FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                       'UPDATE %s t SET %s WHERE %s RETURNING %s',
                       tbl, set_list, loc, pdp._require_row_key_sql(tbl)), ctids, tableoids) AS x(k text)),
             a AS (INSERT INTO pdp.anonymised_row (tbl, row_key) SELECT _purge_rows.tbl::oid, u.k FROM u ON CONFLICT DO NOTHING)
        SELECT pg_catalog.count(*) INTO n FROM u;
    END IF;
    RETURN n;
END
$$;
