-- Issue 18, step 4: anonymising purges of Citus tables (src/sql/15_citus.sql).
-- A table with retention action 'anonymise' that is distributed or a
-- reference table is anonymised by the delete's per-shard bound, one UPDATE
-- on every shard per batch, its rows already anonymised recognised by their
-- values; what Citus cannot run is refused (pdp._citus_anonymise_check).

CREATE OR REPLACE FUNCTION pdp._citus_anonymise_sql(tbl regclass, OUT set_list text, OUT done text, OUT why text)
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

CREATE OR REPLACE FUNCTION pdp._citus_anonymise_refusal(tbl regclass) RETURNS text
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

CREATE OR REPLACE FUNCTION pdp._citus_purge_hint() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'See "What is refused on Citus tables" in doc/scaling.md: Citus tables are purged by primary key '
             '(anchored and inactivity retention, action delete or anonymise).'::text $$;

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

REVOKE ALL ON FUNCTION pdp._citus_anonymise_sql(regclass), pdp._citus_anonymise_refusal(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._citus_anonymise_refusal(regclass) TO pdp_admin;
