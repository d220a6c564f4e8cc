-- Citus: refuse what is unsafe on distributed tables (issue 18, step 1).
--
-- Citus runs a statement on a distributed table shard by shard, on the
-- workers.  Several pdp capabilities are not correct there yet: a purge that
-- finds rows by ctid (unique only within one shard) deletes rows of other
-- shards; triggers and the consent state they read live on the coordinator
-- only.  Until a capability is made correct, its entry points detect Citus
-- tables from Citus's metadata (pg_dist_partition), at use time, and refuse.
-- Without Citus the checks find nothing and refuse nothing.

-- What kind of Citus table tbl is: 'distributed', 'reference', 'citus local',
-- or NULL when it is none (or Citus is not installed in this database).
CREATE FUNCTION pdp._citus_table_kind(tbl regclass) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text;
BEGIN
    IF tbl IS NULL OR pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN NULL;
    END IF;
    -- Dynamic SQL: the catalog exists only where the citus extension does.
    -- partmethod 'h', 'r', 'a': hash, range, append distribution; 'n': no
    -- distribution column: a reference table (replicated to every node,
    -- repmodel 't'), a single-shard distributed table (co-located, so a
    -- colocationid), or a Citus local table (on the coordinator).
    EXECUTE 'SELECT CASE WHEN p.partmethod OPERATOR(pg_catalog.<>) ''n'' THEN ''distributed'' '
            '            WHEN p.repmodel OPERATOR(pg_catalog.=) ''t'' THEN ''reference'' '
            '            WHEN p.colocationid OPERATOR(pg_catalog.<>) 0 THEN ''distributed'' '
            '            ELSE ''citus local'' END '
            '  FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid::oid OPERATOR(pg_catalog.=) $1'
       INTO kind USING tbl::oid;
    RETURN kind;
END
$$;
COMMENT ON FUNCTION pdp._citus_table_kind(regclass) IS
    'distributed, reference, citus local, or NULL when the table is not a Citus table (or Citus is not installed)';

-- Whether tbl has partitions or inheritance children (or is partitioned).
CREATE FUNCTION pdp._has_children(tbl regclass) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) tbl::oid)
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid AND c.relkind = 'p') $$;
COMMENT ON FUNCTION pdp._has_children(regclass) IS 'whether a table is partitioned or has inheritance children';

-- Raise feature_not_supported if tbl is a Citus table of any kind: what is
-- the refused operation, as a verb phrase ("purge", "protect", "apply column
-- rules to").  The message names the table only, never a value.
CREATE FUNCTION pdp._refuse_on_citus(tbl regclass, what text) RETURNS void
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
COMMENT ON FUNCTION pdp._refuse_on_citus(regclass, text) IS
    'raises feature_not_supported, with a hint, if the table is a Citus table (the capability is not correct there yet)';

-- The purges (pdp.purge, pdp.purge_expired) run over every retained table.
-- A Citus table whose purge is correct there (pdp._citus_purge_refusal says
-- nothing against it) is purged by primary key (pdp._purge_citus_batch); any
-- other Citus table is skipped, with a warning naming it and the refusal
-- recorded among the run's errors in pdp.purge_log, and the other tables
-- are purged.  Returns whether tbl is to be skipped.
CREATE FUNCTION pdp._citus_skip_purge(tbl regclass, run_id bigint) RETURNS boolean
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

-- Purging Citus tables by key (issue 18, step 4) ---------------------------
--
-- pdp's ordinary batches name rows by (tableoid, ctid), unique only within
-- one shard.  On a distributed or reference table a batch is instead a range
-- of the total order (expiry, primary key), the key including the
-- distribution column, so a bound in that order names the same rows on every
-- shard and every placement.  A batch is one statement:
--   WITH b AS (SELECT <expiry>, k1, k2 FROM (SELECT <expiry>, k1, k2 FROM t
--                WHERE <expired after $2, unheld, unrestricted>
--                ORDER BY <expiry>, k1, k2 LIMIT $1) s ORDER BY ... DESC LIMIT 1),
--        x AS (DELETE FROM t WHERE <expired after $2, unheld, unrestricted>
--                AND <expiry> <= (SELECT <expiry> FROM b)
--                AND (<expiry>, k1, k2) <= (SELECT * FROM b) RETURNING <position>)
--   SELECT count(*), <the batch's highest position> FROM x
-- Citus finds the bound first: the inner query runs on every shard in
-- parallel (each shard's expired rows through its expiry index, the LIMIT
-- pushed down), and the coordinator keeps the batch_size-th tuple (or the
-- last).  Then one DELETE runs on every shard in parallel, each deleting
-- its own expired rows up to that bound through its expiry index: one row
-- (the bound) goes to the workers, not the batch's keys, and no shard probes
-- keys that are not its own.  The order is total (the key breaks ties), so
-- the batch holds at most batch_size rows (plus any expired row inserted
-- meanwhile below the bound), and a reference table's placements, each
-- running the DELETE with the same bound, delete the same rows.  The
-- condition is the DELETE's own, so a row changed meanwhile is not removed.
-- The held and restricted subjects are constants passed as parameters, as
-- on one server; the count is the DELETE's own.  Done only for anchored
-- retention with action delete (or anonymise: one UPDATE in place of the
-- DELETE, "Anonymising purges" below), on a table with a primary key, no declared
-- links from it and no partitions; for inactivity retention, the inactive
-- subjects' own rows the same way (the order then the key alone), where the
-- table has no links to cut (set_null or set_value columns); everything
-- else is refused.

-- The hint of a refused purge of a Citus table.
CREATE FUNCTION pdp._citus_purge_hint() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'See "What is refused on Citus tables" in doc/scaling.md: Citus tables are purged by primary key '
             '(anchored and inactivity retention, action delete or anonymise).'::text $$;
COMMENT ON FUNCTION pdp._citus_purge_hint() IS 'the hint of a refused purge of a Citus table';

-- Why a purge cannot be done correctly on tbl, a Citus table; NULL when it
-- can (or tbl is no Citus table).  Never names a value.
CREATE FUNCTION pdp._citus_purge_refusal(tbl regclass) RETURNS text
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

-- One purge batch of a distributed or reference table, by primary key (see
-- above): deletes up to batch_size expired, unheld, unrestricted rows after
-- position "after" (as on one server: the next batch's scans, in the inner
-- query and the DELETE's re-check, start at this batch's highest expiry
-- instead of walking again over the index entries of the rows removed), as
-- the table's owner; returns how many, and the position.  Refused (0A000)
-- where pdp._citus_purge_refusal says why.  Callable by no role (it
-- deletes): pdp._purge_batch calls it.
CREATE FUNCTION pdp._purge_citus_batch(tbl regclass, reason text, batch_size integer, after timestamptz,
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
    'one purge batch of a distributed or reference table: its expired, unheld rows after a position up to a bound in (expiry, primary key) deleted on every shard, as its owner; how many, and the position';

-- Anonymising purges on Citus tables (issue 18, step 4) -------------------
--
-- A table with retention action 'anonymise' keeps its expired rows, each
-- made to name nobody as pdp._purge_rows does it on one server: subject
-- columns set_null (and nullable delete columns) to NULL, set_value ones to
-- their erase value, the table's anonymisers, its nullable foreign keys into
-- tables with delete columns emptied.  On Citus a batch is the delete's
-- batch (pdp._purge_citus_batch: a bound in (expiry, key) found on the
-- shards) with one UPDATE on every shard in place of the DELETE.  Its
-- constants are literals of the statement (pdp's erase values, never a
-- subject's), so no parameter clashes with the purge condition's.  The rows
-- already anonymised are not recognised by key (pdp.anonymised_row: the
-- key's text is a STABLE cast of columns for a composite key, which Citus
-- refuses in an UPDATE's condition, and the list would grow with the table)
-- but by their values: a row every entry of whose SET list would leave as
-- it is (each is idempotent: NULL, a constant, a date or number truncated)
-- is done, and pdp._expired_where_sql leaves it out.  A row that looked so
-- before any purge (e.g. no subject and the erase values already there) is
-- therefore not counted, where one server counts it once; its values are
-- the same either way.  What Citus cannot run (the distribution column
-- changed, randomise, a timestamptz generalised) is refused by
-- pdp._citus_anonymise_check, and the table is skipped with that reason.

-- The anonymising purge's SET list on tbl, its constants literals, and the
-- condition "anonymised already" (every entry would leave the row as it
-- is); why is set, and the others NULL, when the table cannot be anonymised
-- so (a NOT NULL delete column, nothing to anonymise with).  SECURITY
-- DEFINER: the purges' refusal check (run by pdp_admin) reads the
-- anonymisers.
CREATE FUNCTION pdp._citus_anonymise_sql(tbl regclass, OUT set_list text, OUT done text, OUT why text)
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record;
    consts text;
    n integer := 0;
BEGIN
    -- (The SET list casts an erase value to the column's type as
    -- pdp._purge_rows does; the condition to its type and modifier, the
    -- value as stored: a numeric(3,1) column stores '1.55' as 1.6.)
    FOR f IN SELECT s.col, s.on_erase, s.erase_value, a.atttypid::regtype AS typ, a.attnotnull,
                    pg_catalog.format_type(a.atttypid, a.atttypmod) AS typmod
               FROM pdp.subject_column s
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) s.attnum
              WHERE s.tbl OPERATOR(pg_catalog.=) _citus_anonymise_sql.tbl
              ORDER BY s.attnum LOOP
        IF f.on_erase = 'set_value' THEN
            set_list := concat_ws(', ', set_list, pg_catalog.format('%I = %L::%s', f.col, f.erase_value, f.typ));
            done := concat_ws(' AND ', done, pg_catalog.format('t.%I IS NOT DISTINCT FROM %L::%s', f.col, f.erase_value, f.typmod));
        ELSIF f.on_erase = 'set_null' OR (f.on_erase = 'delete' AND NOT f.attnotnull) THEN
            set_list := concat_ws(', ', set_list, pg_catalog.format('%I = NULL', f.col));
            done := concat_ws(' AND ', done, pg_catalog.format('t.%I IS NULL', f.col));
        ELSIF f.on_erase = 'delete' THEN
            why := 'a subject column is NOT NULL and owns its rows';
        END IF;
    END LOOP;
    -- The anonymisers' constants: one literal array in place of a parameter.
    consts := pg_catalog.format('%L::pg_catalog.text[]',
                                ARRAY(SELECT x.val FROM pdp._anonymisers(tbl, '$0') x WHERE x.k IS NOT NULL ORDER BY x.k)::text);
    FOR f IN SELECT x.col, x.expr FROM pdp._anonymisers(tbl, consts) x LOOP
        n := n + 1;
        set_list := concat_ws(', ', set_list, pg_catalog.format('%I = %s', f.col, f.expr));
        done := concat_ws(' AND ', done, pg_catalog.format('t.%I IS NOT DISTINCT FROM (%s)', f.col, f.expr));
    END LOOP;
    IF n = 0 THEN
        why := coalesce(why, 'it has no column rules or anonymisations to anonymise with');
    END IF;
    -- Nullable foreign keys into tables with delete columns (pdp._anonymise_set).
    FOR f IN SELECT DISTINCT a.attname AS col
               FROM pg_catalog.pg_constraint k
               CROSS JOIN LATERAL pg_catalog.unnest(k.conkey) ka(attnum)
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid AND a.attnum OPERATOR(pg_catalog.=) ka.attnum
              WHERE k.contype = 'f' AND k.conrelid OPERATOR(pg_catalog.=) tbl::oid AND NOT a.attnotnull
                AND EXISTS (SELECT 1 FROM pdp.subject_column p WHERE p.tbl::oid OPERATOR(pg_catalog.=) k.confrelid AND p.on_erase = 'delete')
                AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s2 WHERE s2.tbl OPERATOR(pg_catalog.=) _citus_anonymise_sql.tbl
                                  AND s2.attnum OPERATOR(pg_catalog.=) a.attnum)
                AND a.attname NOT IN (SELECT x.col FROM pdp._anonymisers(tbl, '$0') x)
              ORDER BY 1 LOOP
        set_list := concat_ws(', ', set_list, pg_catalog.format('%I = NULL', f.col));
        done := concat_ws(' AND ', done, pg_catalog.format('t.%I IS NULL', f.col));
    END LOOP;
    IF why IS NOT NULL THEN
        set_list := NULL;
        done := NULL;
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._citus_anonymise_sql(regclass) IS
    'an anonymising purge''s SET list on a Citus table (constants as literals), the condition of rows already anonymised, or why it cannot be built';

-- Why an anonymising purge cannot run on tbl, a Citus table: its SET list
-- cannot be built, or pdp._citus_anonymise_check refuses it; NULL when it can.
CREATE FUNCTION pdp._citus_anonymise_refusal(tbl regclass) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a record;
BEGIN
    a := pdp._citus_anonymise_sql(tbl);
    IF a.why IS NOT NULL THEN
        RETURN a.why;
    END IF;
    PERFORM pdp._citus_anonymise_check(tbl, a.set_list);
    RETURN NULL;
EXCEPTION WHEN feature_not_supported THEN
    RETURN SQLERRM;
END
$$;
COMMENT ON FUNCTION pdp._citus_anonymise_refusal(regclass) IS
    'why an anonymising purge cannot run on a Citus table (its SET list, or the anonymise check''s message), or NULL';

-- Anonymising erasure on Citus tables (issue 18, step 4) ------------------
--
-- Erasure cuts the links to the erased subject in the rows it keeps with one
-- UPDATE (pdp.erase_subject): the subject columns set_null or set_value, the
-- table's anonymisers, nullable foreign keys into deleted rows emptied, where
-- a subject column names the subject.  Citus runs that UPDATE on every shard
-- (or placement) as it is, when it changes no distribution column and calls
-- no VOLATILE function, nor a STABLE one of a column: set_null, set_value
-- and the generalisation of dates, timestamps without time zone and numbers
-- qualify; randomise (a volatile random value, and on a reference table a
-- different one on each placement) and the generalisation of a timestamp
-- with time zone (a STABLE cast) do not, nor does an UPDATE of the
-- distribution column (the row would belong on another shard).  Those are
-- refused before anything is erased, saying which action works instead.

-- Raises feature_not_supported if erasure's anonymising UPDATE (its SET
-- list, set_list) cannot be done on tbl, a Citus table; nothing for other
-- tables.
CREATE FUNCTION pdp._citus_anonymise_check(tbl regclass, set_list text) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text := pdp._citus_table_kind(tbl);
    dist name;
    z record;
BEGIN
    IF kind IS NULL THEN
        RETURN;
    END IF;
    IF kind NOT IN ('distributed', 'reference') OR pdp._has_children(tbl) THEN
        PERFORM pdp._refuse_on_citus(tbl, 'anonymise rows of');
    END IF;
    -- (pdp builds every entry of the SET list as "<quoted column> = ...".)
    dist := pdp._citus_distribution_column(tbl);
    IF dist IS NOT NULL
       AND pg_catalog.strpos(', ' OPERATOR(pg_catalog.||) set_list,
                             ', ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(dist) OPERATOR(pg_catalog.||) ' = ') > 0 THEN
        RAISE EXCEPTION 'cannot anonymise rows of distributed table "%": it would change the distribution column "%"',
                        pdp._relname(tbl), dist
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Citus cannot change a distribution column in place: a changed value belongs on another shard. Nothing was erased.',
                  HINT = 'Register the distribution column with on_erase => ''delete'' (the subject''s rows are then deleted by key) '
                         'or ''keep'', or distribute the table by another column.';
    END IF;
    FOR z IN SELECT x.col, x.action, a.atttypid FROM pdp._anonymisers(tbl, '$0') x
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname OPERATOR(pg_catalog.=) x.col
              WHERE x.action OPERATOR(pg_catalog.=) 'randomise'
                 OR x.action OPERATOR(pg_catalog.=) 'generalise' AND a.atttypid OPERATOR(pg_catalog.=) 'timestamptz'::regtype LOOP
        RAISE EXCEPTION 'cannot % column "%" of Citus table "%"', CASE WHEN z.action = 'randomise' THEN 'randomise' ELSE 'generalise' END,
                        z.col, pdp._relname(tbl)
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = CASE WHEN z.action = 'randomise'
                                THEN 'Citus runs no volatile function in an UPDATE of a distributed table, and a reference table''s '
                                     'placements would get different random values. Nothing was erased.'
                                ELSE 'Truncating a timestamp with time zone depends on the session''s time zone, which Citus does not '
                                     'evaluate on the shards in an UPDATE. Nothing was erased.' END,
                  HINT = pg_catalog.format('Declare another anonymisation for it: pdp.set_anonymisation(%L, %L, ''set_null'') or ''set_value''%s.',
                                           tbl::text, z.col, CASE WHEN z.action = 'randomise' THEN '' ELSE ', or store it as timestamp or date' END);
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp._citus_anonymise_check(regclass, text) IS
    'raises feature_not_supported if erasure''s anonymising UPDATE cannot run on a Citus table (distribution column, randomise, timestamptz generalisation)';

-- Why the inactivity cut (pdp._cut_inactive_links: the set_null and
-- set_value subject columns, then the anonymisers where a row names nobody)
-- cannot run on tbl, a Citus table: pdp._citus_anonymise_check's message,
-- or NULL.  SECURITY DEFINER: the purges' refusal check (run by pdp_admin)
-- reads the anonymisers.
CREATE FUNCTION pdp._citus_cut_refusal(tbl regclass) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._citus_anonymise_check(tbl, concat_ws(', ',
        (SELECT pg_catalog.string_agg(pg_catalog.format('%I = NULL', s.col), ', ') FROM pdp.subject_column s
          WHERE s.tbl OPERATOR(pg_catalog.=) _citus_cut_refusal.tbl AND s.on_erase IN ('set_null', 'set_value')),
        (pdp._anonymise_set(tbl, '$2', 0, 'true')).set_list));
    RETURN NULL;
EXCEPTION WHEN feature_not_supported THEN
    RETURN SQLERRM;
END
$$;
COMMENT ON FUNCTION pdp._citus_cut_refusal(regclass) IS
    'why cutting the links to inactive subjects cannot run on a Citus table (the anonymise check''s message), or NULL';

-- One audit trail and one key across a Citus cluster (issue 18, step 6) ---
--
-- Collect on read: nothing is shipped between nodes.  On a coordinator with
-- active workers, pdp.key_status(), pdp.verify_audit_log() and the report
-- ask every worker, through Citus's run_command_on_workers, for its own
-- answer to the same read-only question (its key fingerprints; its audit
-- chain's verification and how many reversals it holds), and add one row or
-- one field per node.  A worker that cannot be reached is reported, never
-- skipped silently.  On a worker, and without Citus, they answer for the
-- local server only, exactly as before.

-- Whether this server is a Citus coordinator (group 0) with at least one
-- active primary worker.  False without Citus in this database and on a
-- worker, so that a worker answering the coordinator never asks further.
CREATE FUNCTION pdp._citus_has_workers() RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL
       OR pg_catalog.to_regclass('pg_catalog.pg_dist_node') IS NULL THEN
        RETURN false;
    END IF;
    -- Dynamic SQL: the catalogs exist only where the citus extension does.
    EXECUTE 'SELECT CASE WHEN (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) OPERATOR(pg_catalog.=) 0 '
            '            THEN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_node d '
            '                   WHERE d.isactive AND d.noderole::text OPERATOR(pg_catalog.=) ''primary'' '
            '                     AND d.groupid OPERATOR(pg_catalog.<>) 0) '
            '            ELSE 0 END'
       INTO n;
    RETURN n OPERATOR(pg_catalog.>) 0;
END
$$;
COMMENT ON FUNCTION pdp._citus_has_workers() IS
    'whether this server is a Citus coordinator with active workers (false without Citus and on a worker)';

-- Runs one read-only query, a constant of pdp's own returning one value,
-- on every active worker (Citus's run_command_on_workers, in parallel, each
-- in its own connection as the current user): one row per worker, named
-- host:port, with whether it succeeded and its value or error message.
-- Only pdp's SECURITY DEFINER readers call it; no role may.
CREATE FUNCTION pdp._citus_on_workers(command text, OUT node text, OUT ok boolean, OUT result text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE
        'SELECT w.nodename OPERATOR(pg_catalog.||) '':'' OPERATOR(pg_catalog.||) w.nodeport::text, w.success, w.result '
        '  FROM pg_catalog.run_command_on_workers($1) w ORDER BY w.nodename, w.nodeport'
        USING command;
END
$$;
COMMENT ON FUNCTION pdp._citus_on_workers(text) IS
    'runs one of pdp''s read-only queries on every active Citus worker: per worker (host:port), success and the value or error';

-- State where it is read (issue 18, step 2) --------------------------------
--
-- The row check and the purpose check (src/visibility.c, src/consent.c) read
-- pdp.purpose, pdp.purpose_grant, pdp.consent_state and pdp.restriction;
-- on a Citus worker those are empty.  pdp.citus_sync_state(), run on the
-- coordinator, mirrors the columns the checks need into four Citus
-- reference tables in schema pdp (created at that first call, never by the
-- install script): pdp.citus_purpose, pdp.citus_purpose_grant (roles by
-- name: OIDs differ between nodes), pdp.citus_consent_state and
-- pdp.citus_restriction, and installs statement triggers on pdp's four
-- tables that write each statement's changes through to them.  Citus writes a reference table
-- on every node in the coordinator's transaction (two-phase commit), so a
-- withdrawal or a restriction committed on the coordinator is in every
-- worker's placement when it returns, and the worker's next statement sees
-- it; on a worker the C readers read those placements (src/citus_state.c).
-- Without Citus nothing of this exists and nothing changes.

-- The mirror's name for one of pdp's four state tables.
CREATE FUNCTION pdp._citus_mirror_name(source text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN source IN ('purpose', 'purpose_grant', 'consent_state', 'restriction')
                  THEN 'citus_' OPERATOR(pg_catalog.||) source END $$;
COMMENT ON FUNCTION pdp._citus_mirror_name(text) IS
    'the name of the Citus reference table mirroring one of pdp''s state tables (purpose, purpose_grant, consent_state, restriction)';

-- Statement triggers on pdp's four state tables (one per event: a trigger
-- with transition tables has one event), installed by pdp.citus_sync_state:
-- write the statement's changes through to the mirror in at most two
-- distributed statements (the keys gone, then the rows upserted), whatever
-- the number of rows, so a bulk import costs two round trips to the workers,
-- not one per row.  The rows are gathered into arrays first: Citus plans no
-- transition table into a write to a reference table.  SECURITY DEFINER:
-- whoever changes pdp's tables (pdp's own functions) keeps the mirror,
-- which no role may write.
CREATE FUNCTION pdp._citus_mirror_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k1 text[];
    k2 text[];
    v timestamptz[];
    b1 boolean[];
    b2 boolean[];
    b3 boolean[];
    p text;
    names text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE pg_catalog.format('DELETE FROM pdp.%I', pdp._citus_mirror_name(TG_TABLE_NAME));
        RETURN NULL;
    END IF;
    CASE TG_TABLE_NAME
    WHEN 'consent_state' THEN
        -- The keys gone: every old one (DELETE), or those no new row has (UPDATE).
        IF TG_OP = 'DELETE' THEN
            SELECT pg_catalog.array_agg(o.subject), pg_catalog.array_agg(o.purpose) INTO k1, k2 FROM old_rows o;
        ELSIF TG_OP = 'UPDATE' THEN
            SELECT pg_catalog.array_agg(o.subject), pg_catalog.array_agg(o.purpose) INTO k1, k2 FROM old_rows o
             WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.subject = o.subject AND n.purpose = o.purpose);
        END IF;
        IF k1 IS NOT NULL THEN
            DELETE FROM pdp.citus_consent_state m USING ROWS FROM (pg_catalog.unnest(k1), pg_catalog.unnest(k2)) AS d(subject, purpose)
             WHERE m.subject = d.subject AND m.purpose = d.purpose;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            SELECT pg_catalog.array_agg(n.subject), pg_catalog.array_agg(n.purpose), pg_catalog.array_agg(n.valid_until)
              INTO k1, k2, v FROM new_rows n;
            IF k1 IS NOT NULL THEN
                INSERT INTO pdp.citus_consent_state AS m (subject, purpose, valid_until)
                SELECT u.subject, u.purpose, u.valid_until FROM ROWS FROM (pg_catalog.unnest(k1), pg_catalog.unnest(k2), pg_catalog.unnest(v)) AS u(subject, purpose, valid_until)
                ON CONFLICT (subject, purpose) DO UPDATE SET valid_until = EXCLUDED.valid_until;
            END IF;
        END IF;
    WHEN 'restriction' THEN
        IF TG_OP = 'DELETE' THEN
            SELECT pg_catalog.array_agg(o.subject) INTO k1 FROM old_rows o;
        ELSIF TG_OP = 'UPDATE' THEN
            SELECT pg_catalog.array_agg(o.subject) INTO k1 FROM old_rows o
             WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.subject = o.subject);
        END IF;
        IF k1 IS NOT NULL THEN
            DELETE FROM pdp.citus_restriction m WHERE m.subject = ANY (k1);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            SELECT pg_catalog.array_agg(n.subject) INTO k1 FROM new_rows n;
            IF k1 IS NOT NULL THEN
                INSERT INTO pdp.citus_restriction (subject) SELECT u FROM pg_catalog.unnest(k1) u
                ON CONFLICT (subject) DO NOTHING;
            END IF;
        END IF;
    WHEN 'purpose' THEN
        IF TG_OP = 'DELETE' THEN
            SELECT pg_catalog.array_agg(o.purpose) INTO k1 FROM old_rows o;
        ELSIF TG_OP = 'UPDATE' THEN
            SELECT pg_catalog.array_agg(o.purpose) INTO k1 FROM old_rows o
             WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.purpose = o.purpose);
        END IF;
        IF k1 IS NOT NULL THEN
            DELETE FROM pdp.citus_purpose m WHERE m.purpose = ANY (k1);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            SELECT pg_catalog.array_agg(n.purpose), pg_catalog.array_agg(n.requires_consent),
                   pg_catalog.array_agg(n.restriction_exempt), pg_catalog.array_agg(n.maintenance)
              INTO k1, b1, b2, b3 FROM new_rows n;
            IF k1 IS NOT NULL THEN
                INSERT INTO pdp.citus_purpose AS m (purpose, requires_consent, restriction_exempt, maintenance)
                SELECT u.purpose, u.requires_consent, u.restriction_exempt, u.maintenance
                  FROM ROWS FROM (pg_catalog.unnest(k1), pg_catalog.unnest(b1), pg_catalog.unnest(b2), pg_catalog.unnest(b3)) AS u(purpose, requires_consent, restriction_exempt, maintenance)
                ON CONFLICT (purpose) DO UPDATE
                   SET requires_consent = EXCLUDED.requires_consent, restriction_exempt = EXCLUDED.restriction_exempt,
                       maintenance = EXCLUDED.maintenance;
            END IF;
        END IF;
    WHEN 'purpose_grant' THEN
        -- The grants of the purposes the statement touched, re-mirrored from
        -- pdp.purpose_grant: the roles' names are read here first (Citus
        -- cannot join the catalogs into a write to a reference table), and a
        -- role since dropped loses its mirrored grant.
        IF TG_OP = 'INSERT' THEN
            k1 := ARRAY(SELECT DISTINCT n.purpose FROM new_rows n);
        ELSIF TG_OP = 'DELETE' THEN
            k1 := ARRAY(SELECT DISTINCT o.purpose FROM old_rows o);
        ELSE
            k1 := ARRAY(SELECT o.purpose FROM old_rows o UNION SELECT n.purpose FROM new_rows n);
        END IF;
        FOREACH p IN ARRAY k1 LOOP
            names := ARRAY(SELECT DISTINCT a.rolname::text FROM pdp.purpose_grant g
                             JOIN pg_catalog.pg_roles a ON a.oid = g.role::oid WHERE g.purpose = p);
            DELETE FROM pdp.citus_purpose_grant m WHERE m.purpose = p AND m.role_name <> ALL (names);
            INSERT INTO pdp.citus_purpose_grant (role_name, purpose)
            SELECT n, p FROM pg_catalog.unnest(names) n
            ON CONFLICT (role_name, purpose) DO NOTHING;
        END LOOP;
    END CASE;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION pdp._citus_mirror_change() IS
    'statement trigger on pdp''s state tables, installed by pdp.citus_sync_state: writes each statement''s changes through to its Citus reference table';

-- Create (first call) and refill the mirror, and install its triggers.
-- Returns the rows now mirrored, per table.  On a Citus coordinator only.
CREATE FUNCTION pdp.citus_sync_state() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src text;
    mirror text;
    kind text;
    n bigint;
    counts jsonb := '{}';
    groupid integer;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RAISE EXCEPTION 'Citus is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'pdp.citus_sync_state is for Citus clusters; on a single server pdp reads its own tables.';
    END IF;
    EXECUTE 'SELECT g.groupid FROM pg_catalog.pg_dist_local_group g' INTO groupid;
    IF groupid IS DISTINCT FROM 0 THEN
        RAISE EXCEPTION 'pdp.citus_sync_state runs on the Citus coordinator'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run it on the coordinator: it writes the state to every worker.';
    END IF;
    -- Writers of pdp's state wait until the mirror is full and its triggers
    -- are in place, so that no change falls between the copy and the triggers.
    LOCK TABLE pdp.purpose, pdp.purpose_grant, pdp.consent_state, pdp.restriction IN SHARE MODE;
    FOREACH src IN ARRAY ARRAY['purpose', 'purpose_grant', 'consent_state', 'restriction'] LOOP
        mirror := pdp._citus_mirror_name(src);
        IF pg_catalog.to_regclass('pdp.' OPERATOR(pg_catalog.||) mirror) IS NULL THEN
            EXECUTE CASE src
                WHEN 'purpose' THEN
                    'CREATE TABLE pdp.citus_purpose (purpose text PRIMARY KEY, requires_consent boolean NOT NULL, '
                    'restriction_exempt boolean NOT NULL, maintenance boolean NOT NULL)'
                WHEN 'purpose_grant' THEN
                    'CREATE TABLE pdp.citus_purpose_grant (role_name text NOT NULL, purpose text NOT NULL, '
                    'PRIMARY KEY (role_name, purpose))'
                WHEN 'consent_state' THEN
                    'CREATE TABLE pdp.citus_consent_state (subject text NOT NULL, purpose text NOT NULL, '
                    'valid_until timestamptz, PRIMARY KEY (subject, purpose))'
                ELSE
                    'CREATE TABLE pdp.citus_restriction (subject text PRIMARY KEY)'
                END;
            EXECUTE pg_catalog.format('COMMENT ON TABLE pdp.%I IS %L', mirror,
                'Citus reference table mirroring pdp.' OPERATOR(pg_catalog.||) src
                OPERATOR(pg_catalog.||) ' for the row check on the workers (pdp.citus_sync_state)');
            EXECUTE pg_catalog.format('REVOKE ALL ON pdp.%I FROM PUBLIC', mirror);
        END IF;
        kind := pdp._citus_table_kind(('pdp.' OPERATOR(pg_catalog.||) mirror)::regclass);
        IF kind IS NULL THEN
            EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING ('pdp.' OPERATOR(pg_catalog.||) mirror)::regclass;
        ELSIF kind <> 'reference' THEN
            RAISE EXCEPTION 'pdp''s mirror table "%" is a % table, not a reference table', mirror, kind
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Drop it and run pdp.citus_sync_state again.';
        END IF;
        EXECUTE pg_catalog.format('DELETE FROM pdp.%I', mirror);
        EXECUTE CASE src
            WHEN 'purpose' THEN
                'INSERT INTO pdp.citus_purpose SELECT p.purpose, p.requires_consent, p.restriction_exempt, p.maintenance '
                '  FROM pdp.purpose p'
            WHEN 'purpose_grant' THEN
                'INSERT INTO pdp.citus_purpose_grant SELECT DISTINCT a.rolname::text, g.purpose '
                '  FROM pdp.purpose_grant g JOIN pg_catalog.pg_roles a ON a.oid OPERATOR(pg_catalog.=) g.role::oid'
            WHEN 'consent_state' THEN
                'INSERT INTO pdp.citus_consent_state SELECT c.subject, c.purpose, c.valid_until FROM pdp.consent_state c'
            ELSE
                'INSERT INTO pdp.citus_restriction SELECT r.subject FROM pdp.restriction r'
            END;
        GET DIAGNOSTICS n = ROW_COUNT;
        counts := counts OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(src, n);
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                        WHERE t.tgrelid OPERATOR(pg_catalog.=) ('pdp.' OPERATOR(pg_catalog.||) src)::regclass::oid
                          AND t.tgname OPERATOR(pg_catalog.=) 'citus_mirror_insert') THEN
            EXECUTE pg_catalog.format('CREATE TRIGGER citus_mirror_insert AFTER INSERT ON pdp.%I '
                                      'REFERENCING NEW TABLE AS new_rows '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_change()', src);
            EXECUTE pg_catalog.format('CREATE TRIGGER citus_mirror_update AFTER UPDATE ON pdp.%I '
                                      'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_change()', src);
            EXECUTE pg_catalog.format('CREATE TRIGGER citus_mirror_delete AFTER DELETE ON pdp.%I '
                                      'REFERENCING OLD TABLE AS old_rows '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_change()', src);
            EXECUTE pg_catalog.format('CREATE TRIGGER citus_mirror_truncate AFTER TRUNCATE ON pdp.%I '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_change()', src);
        END IF;
    END LOOP;
    counts := counts OPERATOR(pg_catalog.||) pdp._citus_sync_disclosure();   -- for the rectification trigger on the shards
    PERFORM pdp._audit('citus_sync_state', NULL, NULL, counts);
    RETURN counts;
END
$$;
COMMENT ON FUNCTION pdp.citus_sync_state() IS
    'on a Citus coordinator: mirrors purposes, grants, consents and restrictions into reference tables read by the row check on every worker, kept in step by triggers; returns the rows mirrored per table';

-- Rectification notices from the shards (issue 18, step 5's second half) --
--
-- pdp's rectification trigger (src/rights.c) finds the recipients of a
-- changed row's subjects in pdp.disclosure.  On a Citus table the trigger
-- fires on the shards (citus.enable_unsafe_triggers copies it there), on
-- workers whose pdp.disclosure is empty.  pdp.citus_sync_state() therefore
-- also mirrors pdp.disclosure's (subject, recipient) pairs into the Citus
-- reference table pdp.citus_disclosure, kept in step by statement triggers
-- on pdp.disclosure as the consent mirror is.  The trigger on a shard calls
-- pdp._citus_shard_notices, which reads the local placement of that mirror
-- and records the notices in the node's own pdp.rectification_notice, in
-- the statement's transaction (a rolled-back UPDATE leaves none), naming the
-- distributed table, not the shard, with a number unique in the cluster:
-- the node's Citus group times 10^15 plus its own sequence's next value.
-- Of a reference table's placements, only the one of the lowest group
-- records them (each placement runs the UPDATE).  Where the mirror or its
-- placement is missing, the change is refused (55000), never left without
-- its notices.  On the coordinator, pdp.pending_notices adds the workers'
-- pending notices (pdp._citus_worker_notices, collected on read through
-- run_command_on_workers, as the audit trail is), and
-- pdp.acknowledge_notice of a worker's notice first copies it into the
-- coordinator's pdp.rectification_notice (pdp._citus_collect_notice), where
-- it is acknowledged in the caller's transaction; a notice copied so is no
-- longer listed from the worker.

-- The statement trigger on pdp.disclosure: the (subject, recipient) pairs
-- of the subjects the statement touched, re-mirrored from pdp.disclosure in
-- two distributed statements (gathered into arrays first: Citus plans no
-- local table into a write to a reference table).
CREATE FUNCTION pdp._citus_mirror_disclosure_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    touched text[];
    s text[];
    r text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM pdp.citus_disclosure;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        touched := ARRAY(SELECT DISTINCT n.subject FROM new_rows n);
    ELSIF TG_OP = 'DELETE' THEN
        touched := ARRAY(SELECT DISTINCT o.subject FROM old_rows o);
    ELSE
        touched := ARRAY(SELECT o.subject FROM old_rows o UNION SELECT n.subject FROM new_rows n);
    END IF;
    SELECT pg_catalog.array_agg(d.subject), pg_catalog.array_agg(d.recipient) INTO s, r
      FROM (SELECT DISTINCT x.subject, x.recipient FROM pdp.disclosure x WHERE x.subject = ANY (touched)) d;
    DELETE FROM pdp.citus_disclosure m WHERE m.subject = ANY (touched);
    IF s IS NOT NULL THEN
        INSERT INTO pdp.citus_disclosure (subject, recipient)
        SELECT u.subject, u.recipient FROM ROWS FROM (pg_catalog.unnest(s), pg_catalog.unnest(r)) AS u(subject, recipient)
        ON CONFLICT (subject, recipient) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION pdp._citus_mirror_disclosure_change() IS
    'statement trigger on pdp.disclosure, installed by pdp.citus_sync_state: re-mirrors the touched subjects'' recipients into pdp.citus_disclosure';

-- Create (first call) and refill pdp.citus_disclosure, and install its
-- triggers on pdp.disclosure; the rows mirrored.  Called by
-- pdp.citus_sync_state on the coordinator.
CREATE FUNCTION pdp._citus_sync_disclosure() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text;
    n bigint;
BEGIN
    LOCK TABLE pdp.disclosure IN SHARE MODE;
    IF pg_catalog.to_regclass('pdp.citus_disclosure') IS NULL THEN
        CREATE TABLE pdp.citus_disclosure (subject text NOT NULL, recipient text NOT NULL, PRIMARY KEY (subject, recipient));
        COMMENT ON TABLE pdp.citus_disclosure IS
            'Citus reference table mirroring pdp.disclosure''s subjects and recipients for the rectification trigger on the shards (pdp.citus_sync_state)';
        REVOKE ALL ON pdp.citus_disclosure FROM PUBLIC;
    END IF;
    kind := pdp._citus_table_kind('pdp.citus_disclosure'::regclass);
    IF kind IS NULL THEN
        PERFORM pg_catalog.create_reference_table('pdp.citus_disclosure'::regclass);
    ELSIF kind <> 'reference' THEN
        RAISE EXCEPTION 'pdp''s mirror table "citus_disclosure" is a % table, not a reference table', kind
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Drop it and run pdp.citus_sync_state again.';
    END IF;
    DELETE FROM pdp.citus_disclosure;
    INSERT INTO pdp.citus_disclosure SELECT DISTINCT d.subject, d.recipient FROM pdp.disclosure d;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid OPERATOR(pg_catalog.=) 'pdp.disclosure'::regclass::oid
                      AND t.tgname OPERATOR(pg_catalog.=) 'citus_mirror_insert') THEN
        CREATE TRIGGER citus_mirror_insert AFTER INSERT ON pdp.disclosure REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_disclosure_change();
        CREATE TRIGGER citus_mirror_update AFTER UPDATE ON pdp.disclosure REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_disclosure_change();
        CREATE TRIGGER citus_mirror_delete AFTER DELETE ON pdp.disclosure REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_disclosure_change();
        CREATE TRIGGER citus_mirror_truncate AFTER TRUNCATE ON pdp.disclosure
            FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_disclosure_change();
    END IF;
    RETURN pg_catalog.jsonb_build_object('disclosure', n);
END
$$;
COMMENT ON FUNCTION pdp._citus_sync_disclosure() IS
    'inside pdp.citus_sync_state: mirrors pdp.disclosure''s subjects and recipients into the reference table pdp.citus_disclosure, kept in step by triggers';

-- Called by the rectification trigger for a table pdp's registry does not
-- name: records the notices of subject's change of columns on shard, a
-- Citus shard of a distributed or reference table, from the local
-- placement of pdp.citus_disclosure (see above).  Refuses (0A000) a table
-- that is no Citus shard, and (55000) a shard where the mirror or its
-- placement is missing.  Never names a value.
CREATE FUNCTION pdp._citus_shard_notices(shard regclass, subject text, columns text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[];
    shardname text;
    shardnsp oid;
    shardid bigint;
    dist regclass;
    dist_kind text;
    groupid integer;
    placement regclass;
BEGIN
    -- (Not from pg_class: Citus hides shards there from a client's session.)
    parts := pg_catalog.parse_ident(shard::text);
    shardname := parts[pg_catalog.cardinality(parts)];
    -- (parse_ident gives the schema's name as it is, which to_regnamespace would parse again.)
    shardnsp := CASE WHEN pg_catalog.cardinality(parts) OPERATOR(pg_catalog.=) 2 THEN
                    (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) parts[1]) END;
    shardid := pg_catalog.substring(shardname, '_([0-9]{1,18})$')::bigint;
    IF shardid IS NOT NULL AND pg_catalog.to_regclass('pg_catalog.pg_dist_shard') IS NOT NULL THEN
        -- (Dynamic SQL: the catalogs exist only where Citus does.)
        EXECUTE 'SELECT s.logicalrelid FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.logicalrelid '
                ' WHERE s.shardid OPERATOR(pg_catalog.=) $1 AND c.relnamespace OPERATOR(pg_catalog.=) $2'
           INTO dist USING shardid, shardnsp;
    END IF;
    IF dist IS NULL THEN
        RAISE EXCEPTION 'cannot record the rectification notices of a change to table "%"', shardname
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'The table is not registered with pdp_ext on this server, nor a shard of a Citus table: '
                           'the recipients would not be told.',
                  HINT = 'See "Rectification notices on Citus" in doc/scaling.md: register the table, or distribute it '
                         'with its column rules and run pdp.citus_sync_state() on the coordinator.';
    END IF;
    IF pg_catalog.to_regclass('pdp.citus_disclosure') IS NULL THEN
        RAISE EXCEPTION 'cannot record the rectification notices of a change to table "%"', pdp._relname(dist)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'This node has no mirror of pdp.disclosure (pdp.citus_disclosure): the recipients would not be told.',
                  HINT = 'On the coordinator, run SELECT pdp.citus_sync_state(); see "Rectification notices on Citus" in doc/scaling.md.';
    END IF;
    EXECUTE 'SELECT g.groupid FROM pg_catalog.pg_dist_local_group g' INTO groupid;
    EXECUTE 'SELECT pg_catalog.to_regclass(pg_catalog.format(''pdp.%I'', ''citus_disclosure_'' OPERATOR(pg_catalog.||) s.shardid)) '
            '  FROM pg_catalog.pg_dist_shard s WHERE s.logicalrelid OPERATOR(pg_catalog.=) ''pdp.citus_disclosure''::pg_catalog.regclass'
       INTO placement;
    IF placement IS NULL THEN
        RAISE EXCEPTION 'cannot record the rectification notices of a change to table "%"', pdp._relname(dist)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'This node has no placement of pdp''s mirror of pdp.disclosure (pdp.citus_disclosure): the recipients would not be told.',
                  HINT = 'On the coordinator, run SELECT replicate_reference_tables(); then SELECT pdp.citus_sync_state(); '
                         'see "Rectification notices on Citus" in doc/scaling.md.';
    END IF;
    -- Each placement of a reference table runs the UPDATE: the lowest group records.
    dist_kind := pdp._citus_table_kind(dist);
    IF dist_kind = 'reference' THEN
        EXECUTE 'SELECT pg_catalog.min(p.groupid) OPERATOR(pg_catalog.=) $2 FROM pg_catalog.pg_dist_placement p '
                ' WHERE p.shardid OPERATOR(pg_catalog.=) $1'
           INTO STRICT dist_kind USING shardid, groupid;
        IF dist_kind IS DISTINCT FROM 'true' THEN
            RETURN;
        END IF;
    END IF;
    EXECUTE pg_catalog.format(
        'INSERT INTO pdp.rectification_notice (id, subject, recipient, tbl, columns) '
        'SELECT $1::bigint OPERATOR(pg_catalog.*) 1000000000000000 OPERATOR(pg_catalog.+) pg_catalog.nextval(''pdp.rectification_notice_id_seq''), '
        '       m.subject, m.recipient, $2, $3 '
        '  FROM (SELECT DISTINCT d.subject, d.recipient FROM %s d WHERE d.subject OPERATOR(pg_catalog.=) $4) m', placement)
        USING groupid, dist, columns, subject;
END
$$;
COMMENT ON FUNCTION pdp._citus_shard_notices(regclass, text, text[]) IS
    'rectification trigger on a Citus shard: records the notices of a subject''s change in this node''s pdp.rectification_notice, naming the distributed table, from the mirror of pdp.disclosure; refuses where the mirror is missing';

-- The pending rectification notices recorded on the workers (see above),
-- collected on read, those the coordinator has copied left out; on a
-- server that is not a coordinator with workers and a disclosure mirror,
-- none.  A worker that cannot be asked refuses the read (55000) rather than
-- leave its notices out.
CREATE FUNCTION pdp._citus_worker_notices(OUT id bigint, OUT subject text, OUT recipient text, OUT tbl regclass,
                                          OUT columns text[], OUT raised_at timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
BEGIN
    IF pg_catalog.to_regclass('pdp.citus_disclosure') IS NULL OR NOT pdp._citus_has_workers() THEN
        RETURN;
    END IF;
    FOR w IN SELECT * FROM pdp._citus_on_workers(
            'SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(''id'', n.id, ''subject'', n.subject, '
            '''recipient'', n.recipient, ''tbl'', pg_catalog.format(''%I.%I'', s.nspname, c.relname), '
            '''columns'', n.columns, ''raised_at'', n.raised_at)), ''[]'') '
            '  FROM pdp.rectification_notice n LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) n.tbl::oid '
            '  LEFT JOIN pg_catalog.pg_namespace s ON s.oid OPERATOR(pg_catalog.=) c.relnamespace '
            ' WHERE n.acknowledged_at IS NULL AND n.kind OPERATOR(pg_catalog.=) ''rectification''') LOOP
        IF NOT w.ok THEN
            RAISE EXCEPTION 'cannot read the rectification notices recorded on worker %', w.node
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'The worker''s notices would be left out: bring it back (citus_get_active_worker_nodes()) and read again.';
        END IF;
        RETURN QUERY
            SELECT (e->>'id')::bigint, e->>'subject', e->>'recipient', pg_catalog.to_regclass(e->>'tbl'),
                   ARRAY(SELECT pg_catalog.jsonb_array_elements_text(e->'columns')), (e->>'raised_at')::timestamptz
              FROM pg_catalog.jsonb_array_elements(w.result::jsonb) e
             WHERE NOT EXISTS (SELECT 1 FROM pdp.rectification_notice x WHERE x.id OPERATOR(pg_catalog.=) (e->>'id')::bigint);
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp._citus_worker_notices() IS
    'on a Citus coordinator: the workers'' pending rectification notices not yet copied to the coordinator, collected through run_command_on_workers';

-- Before pdp.acknowledge_notice: a notice numbered as a worker's (10^15 and
-- above) that only a worker holds is copied, pending, into the coordinator's
-- pdp.rectification_notice, in the caller's transaction; nothing otherwise.
CREATE FUNCTION pdp._citus_collect_notice(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF id IS NULL OR id OPERATOR(pg_catalog.<) 1000000000000000
       OR EXISTS (SELECT 1 FROM pdp.rectification_notice x WHERE x.id OPERATOR(pg_catalog.=) _citus_collect_notice.id) THEN
        RETURN;
    END IF;
    INSERT INTO pdp.rectification_notice (id, subject, recipient, tbl, columns, raised_at)
    SELECT w.id, w.subject, w.recipient, w.tbl, w.columns, w.raised_at
      FROM pdp._citus_worker_notices() w WHERE w.id OPERATOR(pg_catalog.=) _citus_collect_notice.id AND w.tbl IS NOT NULL
    ON CONFLICT ON CONSTRAINT rectification_notice_pkey DO NOTHING;   -- (copied meanwhile by a concurrent acknowledgement)
END
$$;
COMMENT ON FUNCTION pdp._citus_collect_notice(bigint) IS
    'before acknowledging a worker''s rectification notice: copies it into the coordinator''s pdp.rectification_notice';

-- Inside an erasure (pdp._forget_subject): the workers' pending rectification
-- notices of the erased subject are copied into the coordinator's
-- pdp.rectification_notice under the subject's erased name, closed as
-- superseded by the erasure, as its own pending notices are; they are then
-- no longer listed.  Returns how many.  (The workers' own rows keep the
-- identifier: nothing is written on a worker outside the transaction.)
CREATE FUNCTION pdp._citus_forget_worker_notices(subject text, erased text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    IF NOT pdp._erasing() THEN
        RAISE EXCEPTION 'pdp._citus_forget_worker_notices runs only inside an erasure' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF pg_catalog.to_regclass('pdp.citus_disclosure') IS NULL OR NOT pdp._citus_has_workers() THEN
        RETURN 0;
    END IF;
    INSERT INTO pdp.rectification_notice (id, subject, recipient, tbl, columns, raised_at, acknowledged_at, acknowledged_by)
    SELECT w.id, erased, w.recipient, w.tbl, w.columns, w.raised_at, pg_catalog.now(), 'pdp: superseded by erasure'
      FROM pdp._citus_worker_notices() w
     WHERE w.subject OPERATOR(pg_catalog.=) _citus_forget_worker_notices.subject AND w.tbl IS NOT NULL
    ON CONFLICT ON CONSTRAINT rectification_notice_pkey DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp._citus_forget_worker_notices(text, text) IS
    'inside an erasure on a Citus coordinator: closes the workers'' pending rectification notices of the erased subject on the coordinator, under its erased name';
