-- Issue 18, step 4: purge batches of Citus tables shard by shard
-- (src/sql/15_citus.sql).  A batch of a distributed or reference table is no
-- longer a DELETE of the batch's keys, brought to the coordinator and probed
-- on every shard; it is a DELETE of every expired row up to a bound in the
-- order (expiry, primary key), the bound found on the shards in parallel, so
-- each shard deletes its own rows through its expiry index.

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
    'one purge batch of a distributed or reference table: its expired, unheld rows after a position up to a bound in (expiry, primary key) deleted on every shard, as its owner; how many, and the position';
