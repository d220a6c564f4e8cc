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
    v record;
    w record;
BEGIN
    n := 0;
    IF batch_size IS NOT NULL AND batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v := pdp._expired_params(tbl, reason);
    IF NOT v.purgeable THEN
        RETURN;
    END IF;
    -- One statement finds the batch: the expired rows after $2 in position
    -- order, at most $1, locked when asked.
    w := pdp._expired_where_sql(tbl, reason);
    IF w.cond IS NULL THEN
        RETURN;
    END IF;
    q := pg_catalog.format('SELECT t.ctid, t.tableoid, %s AS pos FROM %s t WHERE %s ORDER BY %s LIMIT $1%s',
                           w.pos, tbl, w.cond, w.order_by, CASE WHEN lock THEN ' FOR UPDATE SKIP LOCKED' ELSE '' END);
    IF batch_size IS NULL AND pdp._citus_table_kind(tbl) IS NOT NULL THEN
        -- A Citus table: counted on every shard in parallel (no ctids).
        SELECT x.n INTO n
          FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE %s', tbl, w.cond),
                                  2147483647, '-infinity'::timestamptz, v.held, v.restricted, v.keys, v.anonymised) AS x(n bigint);
        RETURN;
    END IF;
    IF batch_size IS NULL THEN
        SELECT x.n INTO n
          FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.count(*) FROM (%s) x', q),
                                  2147483647, '-infinity'::timestamptz, v.held, v.restricted, v.keys, v.anonymised) AS x(n bigint);
        RETURN;
    END IF;
    SELECT x.c, x.p, x.o INTO ctids, pos, tableoids
      -- Both arrays are built from the same rows in the same order (one
      -- aggregation node feeds each row to both): no sort is needed, the
      -- TID scan of the delete sorts the ctids itself.
      FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.array_agg(x.ctid), %s, '
                                                     'pg_catalog.array_agg(x.tableoid) FROM (%s) x',
                                                     w.pos_max, q),
                              batch_size, coalesce(after, '-infinity'::timestamptz), v.held, v.restricted, v.keys, v.anonymised)
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
    vals text[];
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
        -- An anonymised row names nobody: its subject columns are cut as
        -- erasure cuts them (set_null and nullable delete columns to NULL,
        -- set_value columns to their erase value; keep columns stay), its
        -- anonymisers applied (unlinkable transforms, never the keyed column
        -- rules: 76_anonymise.sql) and its foreign keys into deleted rows
        -- emptied (pdp._anonymise_set).  Constants in $3, erase values first.
        vals := '{}';
        FOR f IN SELECT s.col, s.on_erase, s.erase_value, a.atttypid::regtype AS typ, a.attnotnull
                   FROM pdp.subject_column s
                   JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) s.attnum
                  WHERE s.tbl OPERATOR(pg_catalog.=) _purge_rows.tbl
                  ORDER BY s.attnum LOOP
            IF f.on_erase = 'set_value' THEN
                vals := vals || f.erase_value;
                set_list := concat_ws(', ', set_list, pg_catalog.format('%I = ($3)[%s]::%s', f.col,
                                                                        pg_catalog.cardinality(vals), f.typ));
            ELSIF f.on_erase = 'set_null' OR (f.on_erase = 'delete' AND NOT f.attnotnull) THEN
                set_list := concat_ws(', ', set_list, pg_catalog.format('%I = NULL', f.col));
            ELSIF f.on_erase = 'delete' THEN
                RAISE EXCEPTION 'table "%" cannot be anonymised: a subject column is NOT NULL and owns its rows', pdp._relname(tbl)
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          HINT = 'Purge the table with action delete, or register the column with on_erase set_value and an erase value.';
            END IF;
        END LOOP;
        SELECT * INTO f FROM pdp._anonymise_set(tbl, '$3', pg_catalog.cardinality(vals), NULL);
        IF f.anonymisers = 0 THEN
            RAISE EXCEPTION 'table "%" has no column rules or anonymisations to anonymise with', pdp._relname(tbl)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'pdp.set_column_rule or pdp.set_anonymisation declares what its personal columns become.';
        END IF;
        vals := vals || f.vals;
        set_list := concat_ws(', ', set_list, f.set_list);
        WITH u AS (SELECT x.k FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                       'UPDATE %s t SET %s WHERE %s RETURNING %s',
                       tbl, set_list, loc, pdp._require_row_key_sql(tbl)), ctids, tableoids, vals) AS x(k text)),
             a AS (INSERT INTO pdp.anonymised_row (tbl, row_key) SELECT _purge_rows.tbl::oid, u.k FROM u ON CONFLICT DO NOTHING)
        SELECT pg_catalog.count(*) INTO n FROM u;
    END IF;
    RETURN n;
END
$$;
-- Tables much of which has expired are purged by block ranges.
CREATE OR REPLACE FUNCTION pdp._expired_where_sql(tbl regclass, reason text, OUT cond text, OUT order_by text, OUT pos text,
                                       OUT pos_max text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    k name;
    guard text;
BEGIN
    pos := 'NULL::timestamptz';
    pos_max := 'NULL::timestamptz';
    IF reason = 'retention' THEN
        SELECT * INTO p FROM pdp.retention_policy r WHERE r.tbl OPERATOR(pg_catalog.=) _expired_where_sql.tbl;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF p.anchor_column IS NOT NULL THEN
            -- The same expression as the expiry index, so the scan is a range scan of it.
            order_by := pdp._retention_expiry_sql(tbl);
            cond := order_by || ' OPERATOR(pg_catalog.<) pg_catalog.now() AND '
                    || order_by || ' OPERATOR(pg_catalog.>=) $2';
            IF pg_catalog.cardinality(p.never_values) = 0 AND p.fallback_column IS NULL THEN
                -- The position is the anchor; the batch's is the expiry of
                -- its greatest one (the expiry grows with the anchor), so the
                -- expiry is not computed again for every row.
                pos := pg_catalog.format('t.%I', p.anchor_column);
                pos_max := pg_catalog.format('pdp._expiry(pg_catalog.max(x.pos), %L::interval)', p.period::text);
            ELSE
                pos := order_by;
                pos_max := 'pg_catalog.max(x.pos)';
            END IF;
        ELSE
            k := pdp._single_key(tbl);   -- tagged rows: set_retention required one
            cond := pg_catalog.format('t.%I::text OPERATOR(pg_catalog.=) ANY ($5)', k);
            order_by := pg_catalog.format('t.%I', k);
        END IF;
    ELSE
        IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = 'pdp_inactive_subjects'
                         AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
                         AND pg_catalog.pg_get_userbyid(c.relowner) OPERATOR(pg_catalog.=) CURRENT_USER) THEN
            RETURN;
        END IF;
        -- An anonymised table with no delete column: its inactive subjects'
        -- rows are theirs through set_null or set_value columns, and cutting
        -- those links (pdp._cut_inactive_links) is what anonymises them, as
        -- erasure does it: a row then naming nobody gets the anonymisers, a
        -- row still naming an active subject stays theirs (a grade keeps its
        -- active grader), and a table with nothing declared to anonymise
        -- with (a post whose only personal column is its author) is cut.
        IF pdp._purge_action(tbl) = 'anonymise'
           AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _expired_where_sql.tbl
                             AND s.on_erase = 'delete') THEN
            RETURN;
        END IF;
        -- An inactive subject's rows are those they own (pdp._own_columns):
        -- a learner's grade is not expired because its grader is inactive.
        cond := pdp._owned_by_sql(tbl, '$5');
        order_by := coalesce(pdp._row_key_sql(tbl), 't.ctid');
    END IF;
    -- Held subjects' rows stay: those where a held subject is in an own
    -- column (a hold keeps the subject's data, not every row naming them).
    -- Restricted subjects' rows stay wherever they are named (restriction
    -- bars erasure too, GDPR Art. 18(1)(b)).  The sets are constants of the
    -- statement, so the planner hashes them once per batch instead of
    -- probing per row.
    SELECT pg_catalog.string_agg(pg_catalog.format(
               ' AND NOT (%s%s)', pdp._cell_in_sql(_expired_where_sql.tbl, s.col, '$4'),
               CASE WHEN s.col IN (SELECT o.col FROM pdp._own_columns(_expired_where_sql.tbl) o)
                    THEN ' OR ' || pdp._cell_in_sql(_expired_where_sql.tbl, s.col, '$3') ELSE '' END), '')
      INTO guard
      FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _expired_where_sql.tbl;
    IF pdp._purge_action(tbl) = 'anonymise' AND pdp._citus_table_kind(tbl) IS NOT NULL THEN
        -- A Citus table: the rows anonymised already are known by their
        -- values (pdp._citus_anonymise_sql), not by key; none when the
        -- purge of the table is refused.
        guard := guard || coalesce(' AND NOT (' || (pdp._citus_anonymise_sql(tbl)).done || ')', ' AND false');
    ELSIF pdp._purge_action(tbl) = 'anonymise' THEN
        guard := guard || pg_catalog.format(' AND %s OPERATOR(pg_catalog.<>) ALL ($6)', pdp._require_row_key_sql(tbl));
    END IF;
    cond := cond || guard;
END
$$;
COMMENT ON FUNCTION pdp._expired_where_sql(regclass, text) IS
    'the condition (parameters: $2 the last position, $3 held, $4 restricted, $5 expired or inactive keys, $6 anonymised keys) of a table''s expired, unheld rows, their order, position and a batch''s position';
REVOKE ALL ON FUNCTION pdp._expired_where_sql(regclass, text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION pdp._expired_params(tbl regclass, reason text, OUT purgeable boolean, OUT held text[],
                                    OUT restricted text[], OUT keys text[], OUT anonymised text[])
LANGUAGE plpgsql   -- (reads the session's temporary table: not for parallel workers)
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR reason IS NULL OR reason NOT IN ('retention', 'inactivity') THEN
        RAISE EXCEPTION 'table and reason (retention or inactivity) must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    keys := '{}';
    anonymised := '{}';
    purgeable := EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _expired_params.tbl)
                 AND NOT EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) _expired_params.tbl AND h.released_at IS NULL
                                   AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
    IF NOT purgeable THEN
        RETURN;
    END IF;
    held := ARRAY(SELECT h.subject FROM pdp.hold h WHERE h.subject IS NOT NULL AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
    -- A purge keeps system subjects' rows as it keeps held subjects'.
    held := held OPERATOR(pg_catalog.||) ARRAY(SELECT y.subject FROM pdp.system_subject y);
    restricted := ARRAY(SELECT r.subject FROM pdp.restriction r);
    IF reason = 'inactivity' THEN
        -- Only pdp's own table (a session's role could have made a temporary
        -- view of that name, whose code would run here as pdp_ext's owner).
        IF EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = 'pdp_inactive_subjects' AND c.relkind = 'r'
                     AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
                     AND pg_catalog.pg_get_userbyid(c.relowner) OPERATOR(pg_catalog.=) CURRENT_USER) THEN
            keys := ARRAY(SELECT i.subject FROM pg_temp.pdp_inactive_subjects i);
        END IF;
    ELSIF EXISTS (SELECT 1 FROM pdp.retention_policy p
                   WHERE p.tbl OPERATOR(pg_catalog.=) _expired_params.tbl AND p.anchor_column IS NULL) THEN
        keys := ARRAY(SELECT g.row_key FROM pdp.retention_tag g WHERE g.tbl OPERATOR(pg_catalog.=) _expired_params.tbl::oid
                         AND g.expires_at OPERATOR(pg_catalog.<) pg_catalog.now());
    END IF;
    IF pdp._purge_action(tbl) = 'anonymise' THEN
        anonymised := ARRAY(SELECT a.row_key FROM pdp.anonymised_row a WHERE a.tbl OPERATOR(pg_catalog.=) _expired_params.tbl::oid);
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._expired_params(regclass, text) IS
    'whether a table may be purged now, and the held, restricted, expired or inactive and anonymised keys its purge statements take';
REVOKE ALL ON FUNCTION pdp._expired_params(regclass, text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION pdp._range_purgeable(tbl regclass) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp._purge_action(tbl) IS NOT DISTINCT FROM 'delete' AND pdp._citus_table_kind(tbl) IS NULL
         AND NOT pdp._has_children(tbl)
         AND NOT EXISTS (SELECT 1 FROM pdp.retention_policy p
                          WHERE p.tbl OPERATOR(pg_catalog.=) _range_purgeable.tbl AND p.anchor_column IS NULL)
         AND NOT EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) _range_purgeable.tbl) $$;
COMMENT ON FUNCTION pdp._range_purgeable(regclass) IS
    'whether a table''s purge may go by block ranges (a plain table whose expired rows are deleted with nothing to follow)';
REVOKE ALL ON FUNCTION pdp._range_purgeable(regclass) FROM PUBLIC;
CREATE OR REPLACE FUNCTION pdp._purge_by_range(tbl regclass, reason text, batch_size integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    blocks bigint;
    w record;
    v record;
    expired bigint;
    sampled bigint;
    pct real;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v := pdp._expired_params(tbl, reason);
    IF NOT v.purgeable OR NOT pdp._range_purgeable(tbl) THEN
        RETURN 0;
    END IF;
    blocks := pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::bigint;
    IF blocks OPERATOR(pg_catalog.<) 1024 THEN
        RETURN 0;
    END IF;
    w := pdp._expired_where_sql(tbl, reason);
    IF w.cond IS NULL THEN
        RETURN 0;
    END IF;
    -- About 256 blocks, at random.
    pct := LEAST(100, 25600.0 / blocks);
    SELECT x.e, x.n INTO expired, sampled
      FROM pdp._exec_as_owner(tbl, pg_catalog.format(
               'SELECT pg_catalog.count(*) FILTER (WHERE %s), pg_catalog.count(*) FROM %s t TABLESAMPLE SYSTEM ($7)', w.cond, tbl),
               batch_size, '-infinity'::timestamptz, v.held, v.restricted, v.keys, v.anonymised, pct) AS x(e bigint, n bigint);
    IF sampled OPERATOR(pg_catalog.=) 0 OR expired OPERATOR(pg_catalog.*) 5 OPERATOR(pg_catalog.<) sampled THEN
        RETURN 0;
    END IF;
    -- Blocks holding about batch_size expired rows, at the sample's density.
    RETURN GREATEST(1, pg_catalog.ceil(batch_size::numeric OPERATOR(pg_catalog./) (expired::numeric OPERATOR(pg_catalog./) (blocks * pct / 100.0)))::bigint);
END
$$;
COMMENT ON FUNCTION pdp._purge_by_range(regclass, text, integer) IS
    'how many blocks a purge''s first block range of the table should span (0: purge it through the expiry index instead)';
CREATE OR REPLACE FUNCTION pdp._purge_range(tbl regclass, reason text, batch_size integer, first_block bigint, span bigint,
                                 OUT n bigint, OUT next_block bigint, OUT next_span bigint, OUT done boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
    v record;
    blocks bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 OR first_block IS NULL OR first_block < 0 OR span IS NULL OR span < 1
       OR span > 4294967295 THEN
        RAISE EXCEPTION 'batch_size and span must be at least 1, first_block at least 0' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    n := 0;
    next_block := first_block;
    next_span := span;
    done := true;
    v := pdp._expired_params(tbl, reason);
    w := pdp._expired_where_sql(tbl, reason);
    -- The same tables as pdp._purge_by_range, checked again at each batch
    -- (a link, a partition or a tagged retention may have come meanwhile).
    IF NOT v.purgeable OR w.cond IS NULL OR NOT pdp._range_purgeable(tbl) THEN
        RETURN;
    END IF;
    blocks := pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::bigint;
    IF first_block OPERATOR(pg_catalog.>=) blocks THEN
        RETURN;
    END IF;
    span := LEAST(span, blocks OPERATOR(pg_catalog.-) first_block);
    n := pdp._exec_as_owner_count(tbl, pg_catalog.format(
             'DELETE FROM %s t WHERE t.ctid OPERATOR(pg_catalog.>=) $7 AND t.ctid OPERATOR(pg_catalog.<) $8 AND %s', tbl, w.cond),
             batch_size, '-infinity'::timestamptz, v.held, v.restricted, v.keys, v.anonymised,
             pg_catalog.format('(%s,0)', first_block)::tid, pg_catalog.format('(%s,0)', first_block OPERATOR(pg_catalog.+) span)::tid);
    next_block := first_block OPERATOR(pg_catalog.+) span;
    next_span := LEAST(4294967295 OPERATOR(pg_catalog.-) next_block, span * 4,
                       GREATEST(1, span / 4, CASE WHEN n OPERATOR(pg_catalog.=) 0 THEN span * 4
                                                  ELSE pg_catalog.ceil(span::numeric * batch_size / n)::bigint END));
    done := next_block OPERATOR(pg_catalog.>=) blocks OR next_span OPERATOR(pg_catalog.<) 1;
END
$$;
COMMENT ON FUNCTION pdp._purge_range(regclass, text, integer, bigint, bigint) IS
    'deletes a table''s expired, unheld rows in one range of blocks, as its owner; says where the next range starts and how long it should be';
REVOKE ALL ON FUNCTION pdp._purge_by_range(regclass, text, integer), pdp._purge_range(regclass, text, integer, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._purge_by_range(regclass, text, integer), pdp._purge_range(regclass, text, integer, bigint, bigint) TO pdp_admin;
CREATE OR REPLACE PROCEDURE pdp.purge(batch_size integer DEFAULT 5000, max_duration interval DEFAULT '1 hour')
LANGUAGE plpgsql
-- No SET clause (a procedure with one cannot COMMIT): every name is qualified.
AS $$
DECLARE
    run_id bigint;
    t regclass;
    why text;
    act text;
    got boolean;
    pos timestamptz;
    n bigint;
    deadline timestamptz;
    stopped boolean := false;
    err jsonb;
    failed integer := 0;
    failed_states text[] := '{}';
    held boolean;
    blk bigint;
    span bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pdp._check_interval(max_duration, 'max_duration must be positive');
    deadline := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) max_duration;
    IF pg_catalog.current_setting('transaction_read_only') = 'on' THEN
        RAISE EXCEPTION 'cannot purge in a read-only transaction'
            USING ERRCODE = 'read_only_sql_transaction', DETAIL = 'Nothing was purged.',
                  HINT = 'Purge on the primary; on a primary, check default_transaction_read_only.';
    END IF;
    run_id := pdp._begin_purge_run(false);
    PERFORM pdp._collect_inactive_subjects();
    PERFORM pdp._subject_valve(run_id);
    COMMIT;
    <<tables>>
    FOR t IN SELECT o.tbl FROM pdp._deletion_order() o LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) t AND h.released_at IS NULL
                                AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
        CONTINUE WHEN pdp._citus_skip_purge(t, run_id);   -- a Citus table it cannot purge correctly: skipped, recorded
        act := pdp._purge_action(t);
        -- The safety valve.  A table it cannot count is left for the next
        -- run and recorded, as a failed batch is.
        BEGIN
            held := pdp._purge_valve(run_id, t);
        EXCEPTION WHEN OTHERS THEN
            held := true;
            PERFORM pdp._record_purge_batch(run_id, t, act, 0, pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                        'table', t::text, 'sqlstate', SQLSTATE, 'message', SQLERRM)));
            failed := failed OPERATOR(pg_catalog.+) 1;
            failed_states := pg_catalog.array_append(failed_states, SQLSTATE::text);
        END;
        CONTINUE WHEN held;
        FOREACH why IN ARRAY ARRAY['retention', 'inactivity'] LOOP
            pos := '-infinity';
            -- By block ranges (pdp._purge_by_range), or through the expiry
            -- index (span 0): decided at the first batch.
            blk := 0;
            span := NULL;
            LOOP
                IF pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>) deadline THEN
                    stopped := true;
                    EXIT tables;
                END IF;
                err := NULL;
                n := 0;
                -- A batch need not wait for its commit to reach disk: if a crash
                -- loses it, it is lost whole (rows and count together), and the
                -- next run purges those rows again.
                PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
                -- One batch: found, deleted or anonymised, and counted in one transaction.
                BEGIN
                    -- One purger per table at a time: a second one skips the table.
                    IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('pdp_ext purge'), t::oid::integer) THEN
                        EXIT;
                    END IF;
                    IF span IS NULL THEN
                        span := pdp._purge_by_range(t, why, batch_size);
                    END IF;
                    -- Found and purged as the table's owner (pdp._purge_range, pdp._purge_batch).
                    IF span OPERATOR(pg_catalog.>) 0 THEN
                        SELECT r.n, r.next_block, r.next_span, NOT r.done INTO n, blk, span, got
                          FROM pdp._purge_range(t, why, batch_size, blk, span) r;
                    ELSE
                        SELECT b.n, b.pos, b.got INTO n, pos, got
                          FROM pdp._purge_batch(t, why, batch_size, coalesce(pos, '-infinity'), false) b;
                        got := got AND n OPERATOR(pg_catalog.>) 0;
                    END IF;
                EXCEPTION WHEN OTHERS THEN
                    -- SQLSTATE and message only: a detail could hold a key value.
                    err := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                               'table', t::text, 'sqlstate', SQLSTATE, 'message', SQLERRM));
                    got := false;
                END;
                PERFORM pdp._record_purge_batch(run_id, t, act, n, err);
                IF err IS NOT NULL THEN
                    failed := failed OPERATOR(pg_catalog.+) 1;
                    failed_states := pg_catalog.array_append(failed_states,
                                         pg_catalog.jsonb_extract_path_text(err, '0', 'sqlstate'));
                END IF;
                IF n > 0 THEN
                    RAISE NOTICE 'purge: % rows of table "%" (%)', n, pdp._relname(t), act;
                END IF;
                COMMIT;
                EXIT WHEN NOT got;
            END LOOP;
        END LOOP;
        -- Links to inactive subjects in the rows kept are cut, in one
        -- transaction per table, recorded like a batch.
        err := NULL;
        n := 0;
        BEGIN
            n := pdp._cut_inactive_links(t);
        EXCEPTION WHEN OTHERS THEN
            err := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                       'table', t::text, 'sqlstate', SQLSTATE, 'message', SQLERRM));
            failed := failed OPERATOR(pg_catalog.+) 1;
            failed_states := pg_catalog.array_append(failed_states, SQLSTATE::text);
        END;
        PERFORM pdp._record_purge_batch(run_id, t, 'cut links', n, err);
        IF n > 0 THEN
            RAISE NOTICE 'purge: % rows of table "%" (links to inactive subjects cut)', n, pdp._relname(t);
        END IF;
        COMMIT;
    END LOOP;
    PERFORM pdp._end_purge_run(run_id, CASE WHEN stopped THEN 'stopped at max_duration' ELSE 'finished' END);
    COMMIT;
    -- A failed batch (a full disk, a lock timeout) is left for the next run;
    -- say so, not only in the run's record.
    IF failed OPERATOR(pg_catalog.>) 0 THEN
        RAISE WARNING 'purge: % batch(es) failed and were left for the next run', failed
            USING DETAIL = pg_catalog.concat('SQLSTATE ', pg_catalog.array_to_string(
                               ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(failed_states) x ORDER BY 1), ', ')),
                  HINT = pg_catalog.format('See the errors of run %s in pdp.purge_log.', run_id);
    END IF;
END
$$;
