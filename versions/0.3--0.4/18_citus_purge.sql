-- Issue 18, step 4: distributed and reference tables purged by primary key
-- (src/sql/15_citus.sql).  A purge batch of a Citus table with anchored
-- retention and action delete is one DELETE by primary key (which includes
-- the distribution column), run by Citus on every shard in parallel; such
-- tables are no longer skipped.  Every other Citus table is still skipped
-- with a warning naming why (pdp._citus_purge_refusal).

CREATE OR REPLACE FUNCTION pdp._citus_purge_hint() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'See "What is refused on Citus tables" in doc/scaling.md: Citus tables are purged by primary key '
             '(anchored and inactivity retention, action delete or anonymise).'::text $$;
COMMENT ON FUNCTION pdp._citus_purge_hint() IS 'the hint of a refused purge of a Citus table';

CREATE OR REPLACE FUNCTION pdp._citus_purge_refusal(tbl regclass) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text := pdp._citus_table_kind(tbl);
    p record;
    why text;
BEGIN
    IF kind IS NULL THEN
        RETURN NULL;
    END IF;
    IF kind = 'citus local' THEN
        RETURN 'Purges of Citus local tables have not been verified.';
    END IF;
    SELECT * INTO p FROM pdp.retention_policy r WHERE r.tbl OPERATOR(pg_catalog.=) _citus_purge_refusal.tbl;
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM pdp.subject_retention) THEN
        RETURN NULL;   -- nothing to purge
    END IF;
    -- (A table with no retention of its own and no delete column is purged
    -- for inactivity only, by cutting its links, checked below.)
    -- An anonymising retention: its batches are one UPDATE on every shard
    -- (pdp._citus_anonymise_sql), unless Citus cannot run it.
    IF p.tbl IS NOT NULL AND pdp._purge_action(tbl) = 'anonymise' THEN
        why := pdp._citus_anonymise_refusal(tbl);
        IF why IS NOT NULL THEN
            RETURN 'An anonymising purge of a Citus table is one UPDATE that Citus runs on every shard; '
                   'on this table it cannot run: ' OPERATOR(pg_catalog.||) why OPERATOR(pg_catalog.||) '.';
        END IF;
    END IF;
    IF p.tbl IS NOT NULL AND p.anchor_column IS NULL THEN
        RETURN 'Retention without an anchor column tags rows with a trigger, which does not run on the shards.';
    END IF;
    -- Inactivity: the inactive subjects' own rows are deleted by key as the
    -- expired ones are; the links to them in the rows kept (set_null and
    -- set_value columns) are cut by one UPDATE (pdp._cut_inactive_links),
    -- which Citus runs on every shard unless pdp._citus_anonymise_check
    -- refuses it (the distribution column, randomise, timestamptz).
    IF EXISTS (SELECT 1 FROM pdp.subject_retention)
       AND EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _citus_purge_refusal.tbl
                     AND s.on_erase IN ('set_null', 'set_value')) THEN
        why := pdp._citus_cut_refusal(tbl);
        IF why IS NOT NULL THEN
            RETURN 'Inactivity retention (pdp.set_subject_retention) cuts the links (set_null and set_value columns) '
                   'to inactive subjects in the rows it keeps; on this table that UPDATE cannot run on Citus: '
                   OPERATOR(pg_catalog.||) why OPERATOR(pg_catalog.||) '.';
        END IF;
    END IF;
    IF pdp._row_key_sql(tbl) IS NULL THEN
        RETURN 'The table has no primary key: on Citus, a purge finds and deletes expired rows by primary key '
               '(ctids are unique only within one shard).';
    END IF;
    IF pdp._has_children(tbl) THEN
        RETURN 'Partitioned Citus tables are not purged yet.';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) _citus_purge_refusal.tbl) THEN
        RETURN 'Declared links (pdp.declare_link) from a Citus table are not followed by its purge yet.';
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION pdp._citus_purge_refusal(regclass) IS
    'why a purge cannot be done correctly on a Citus table (NULL when it is purged by primary key, or is no Citus table)';

CREATE OR REPLACE FUNCTION pdp._purge_citus_batch(tbl regclass, reason text, batch_size integer, after timestamptz,
                                       OUT n bigint, OUT pos timestamptz)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text := pdp._citus_table_kind(tbl);
    why text;
    v record;
    w record;
    keys text;
    s_keys text;
    s_desc text;
    ord text;
    anon record;
    verb text := pg_catalog.format('DELETE FROM %s t', tbl);
    done text := 'true';
    undone bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF kind IS NULL THEN
        RAISE EXCEPTION 'table "%" is not a Citus table', pdp._relname(tbl)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'pdp._purge_batch purges other tables.';
    END IF;
    why := pdp._citus_purge_refusal(tbl);
    IF why IS NOT NULL THEN
        RAISE EXCEPTION 'cannot purge % table "%"', kind, pdp._relname(tbl)
            USING ERRCODE = 'feature_not_supported', DETAIL = why, HINT = pdp._citus_purge_hint();
    END IF;
    n := 0;
    v := pdp._expired_params(tbl, reason);
    IF NOT v.purgeable THEN
        RETURN;
    END IF;
    w := pdp._expired_where_sql(tbl, reason);
    IF w.cond IS NULL THEN
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', a.attname), ', ' ORDER BY k.i),
           pg_catalog.string_agg(pg_catalog.format('s.%I', a.attname), ', ' ORDER BY k.i),
           pg_catalog.string_agg(pg_catalog.format('s.%I DESC', a.attname), ', ' ORDER BY k.i),
           pg_catalog.format('t.%I', pg_catalog.min(a.attname) FILTER (WHERE k.i = 1))
      INTO keys, s_keys, s_desc, ord
      FROM pg_catalog.pg_index x
      CROSS JOIN LATERAL pg_catalog.unnest(x.indkey::smallint[]) WITH ORDINALITY k(attnum, i)
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
     WHERE x.indrelid OPERATOR(pg_catalog.=) tbl::oid AND x.indisprimary;
    -- The order: the expiry, then the key, for anchored retention (the
    -- expiry's index expression, IMMUTABLE); the key alone for inactivity
    -- (its first column, then the key: Citus refuses the key's text, a
    -- STABLE cast of columns, in a DELETE's condition).
    IF reason = 'retention' THEN
        ord := w.order_by;
    END IF;
    -- An anonymising purge: the same bound, then one UPDATE on every shard
    -- instead of the DELETE, its constants literals (pdp._citus_anonymise_sql).
    IF pdp._purge_action(tbl) = 'anonymise' THEN
        anon := pdp._citus_anonymise_sql(tbl);
        PERFORM pdp._citus_anonymise_check(tbl, anon.set_list);
        verb := pg_catalog.format('UPDATE %s t SET %s', tbl, anon.set_list);
        -- Each row the UPDATE wrote must now count as anonymised (the guard
        -- that keeps it out of the next batch); one that does not would be
        -- anonymised again by every batch, so the batch is refused instead.
        done := anon.done;
    END IF;
    -- b: the batch's bound, the batch_size-th (or last) row in that order
    -- after the position; the DELETE takes every row up to it.  The scalar
    -- bound on the order's first column makes each shard's DELETE a range
    -- scan of its expiry (or key) index; the row comparison then cuts ties
    -- at the bound by key.  (Citus computes b first, on the coordinator, and
    -- sends its one row to the shards; it runs the DELETE before counting its
    -- RETURNING.)
    SELECT x.n, x.p, x.u INTO n, pos, undone
      FROM pdp._exec_as_owner(tbl, pg_catalog.format(
               'WITH b AS (SELECT s.pdp_o, %7$s FROM (SELECT %4$s AS pdp_o, %2$s FROM %1$s t WHERE %3$s '
                          'ORDER BY 1, %2$s LIMIT $1) s ORDER BY s.pdp_o DESC, %8$s LIMIT 1), '
               'x AS (%9$s WHERE %3$s AND %4$s OPERATOR(pg_catalog.<=) (SELECT b.pdp_o FROM b) '
                     'AND (%4$s, %2$s) OPERATOR(pg_catalog.<=) (SELECT b.* FROM b) RETURNING %5$s AS pos, (%10$s) AS pdp_done) '
               'SELECT pg_catalog.count(*), %6$s, pg_catalog.count(*) FILTER (WHERE x.pdp_done IS NOT TRUE) FROM x',
               tbl, keys, w.cond, ord, w.pos, w.pos_max, s_keys, s_desc, verb, done),
               batch_size, coalesce(after, '-infinity'::timestamptz), v.held, v.restricted, v.keys, v.anonymised)
           AS x(n bigint, p timestamptz, u bigint);
    IF undone > 0 THEN
        RAISE EXCEPTION 'an anonymising purge batch of table "%" left % rows that do not read as anonymised', tbl, undone
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Every later batch would anonymise them again; the batch was rolled back.',
                  HINT = 'Check the table''s anonymisers and erase values (pdp.set_anonymisation, pdp.register_table): each must leave an anonymised value unchanged.';
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._purge_citus_batch(regclass, text, integer, timestamptz) IS
    'one purge batch of a distributed or reference table: its expired, unheld rows after a position deleted by primary key, shard by shard, as its owner; how many, and the position';

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
COMMENT ON FUNCTION pdp._citus_skip_purge(regclass, bigint) IS
    'whether a purge skips the table because it is a Citus table it cannot purge correctly; warns and records the refusal in the run';

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

CREATE OR REPLACE FUNCTION pdp._purge_batch(tbl regclass, reason text, batch_size integer, after timestamptz, lock boolean,
                                 OUT n bigint, OUT pos timestamptz, OUT got boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ctids tid[];
    tableoids oid[];
BEGIN
    IF batch_size IS NULL THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pdp._citus_table_kind(tbl) IS NOT NULL THEN
        -- A distributed or reference table: by primary key, shard by shard.
        SELECT c.n, c.pos INTO n, pos FROM pdp._purge_citus_batch(tbl, reason, batch_size, after) c;
        got := n OPERATOR(pg_catalog.>) 0;
        RETURN;
    END IF;
    SELECT f.ctids, f.pos, f.tableoids INTO ctids, pos, tableoids FROM pdp._find_expired(tbl, reason, lock, batch_size, after) f;
    got := ctids IS NOT NULL;
    n := CASE WHEN got THEN pdp._purge_rows(tbl, pdp._purge_action(tbl), ctids, tableoids) ELSE 0 END;
END
$$;

CREATE OR REPLACE FUNCTION pdp.purge_expired(batch_size integer DEFAULT 5000, dry_run boolean DEFAULT false)
RETURNS TABLE (table_name regclass, action text, rows bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run_id bigint;
    t regclass;
    why text;
    pos timestamptz;
    n bigint;
    got boolean;
    total bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.current_setting('transaction_read_only') = 'on' THEN
        RAISE EXCEPTION 'cannot purge in a read-only transaction'
            USING ERRCODE = 'read_only_sql_transaction', DETAIL = 'Nothing was purged.',
                  HINT = 'Purge on the primary; on a primary, check default_transaction_read_only.';
    END IF;
    run_id := pdp._begin_purge_run(coalesce(dry_run, false));
    PERFORM pdp._collect_inactive_subjects();
    IF NOT coalesce(dry_run, false) THEN
        PERFORM pdp._subject_valve(run_id);
    END IF;
    FOR t IN SELECT o.tbl FROM pdp._deletion_order() o LOOP
        IF EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) t AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until > pg_catalog.now())) THEN
            CONTINUE;
        END IF;
        CONTINUE WHEN pdp._citus_skip_purge(t, run_id);   -- a Citus table it cannot purge correctly: skipped, recorded
        CONTINUE WHEN NOT coalesce(dry_run, false) AND pdp._purge_valve(run_id, t);   -- the safety valve
        table_name := t;
        action := pdp._purge_action(t);
        total := 0;
        FOREACH why IN ARRAY ARRAY['retention', 'inactivity'] LOOP
            IF dry_run THEN
                total := total + (pdp._find_expired(t, why, false, NULL, NULL)).n;
                CONTINUE;
            END IF;
            pos := '-infinity';
            LOOP
                SELECT b.n, b.pos, b.got INTO n, pos, got FROM pdp._purge_batch(t, why, batch_size, pos, true) b;
                EXIT WHEN NOT got;
                PERFORM pdp._record_purge_batch(run_id, t, action, n);
                total := total + n;
                EXIT WHEN n = 0;
            END LOOP;
        END LOOP;
        IF total > 0 OR dry_run THEN
            rows := total;
            RETURN NEXT;
        END IF;
        -- Links to inactive subjects in the rows kept are cut (a row of its own).
        n := pdp._cut_inactive_links(t, coalesce(dry_run, false));
        IF n > 0 THEN
            IF NOT coalesce(dry_run, false) THEN
                PERFORM pdp._record_purge_batch(run_id, t, 'cut links', n);
            END IF;
            action := 'cut links';
            rows := n;
            RETURN NEXT;
        END IF;
    END LOOP;
    PERFORM pdp._end_purge_run(run_id, 'finished');
END
$$;

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

REVOKE ALL ON FUNCTION pdp._citus_purge_hint(), pdp._citus_purge_refusal(regclass),
                       pdp._purge_citus_batch(regclass, text, integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._citus_purge_refusal(regclass), pdp._citus_purge_hint() TO pdp_admin;
