-- Issue 16, point 3 for table retention: anchor values that mean "never"
-- and a fallback column, as inactivity retention has them.  Policies set
-- before 0.4 keep their expiry (no never values): set_retention again to
-- adopt them (it rebuilds the expiry index).
ALTER TABLE pdp.retention_policy ADD COLUMN never_values text[] NOT NULL DEFAULT '{}',
                                 ADD COLUMN fallback_column name;
COMMENT ON COLUMN pdp.retention_policy.never_values IS 'anchor (and fallback) values that mean "never", like 0 in an epoch-seconds column; NULL always does';
COMMENT ON COLUMN pdp.retention_policy.fallback_column IS 'the column the period runs from where the anchor is never (e.g. timecreated); NULL: none';
CREATE OR REPLACE FUNCTION pdp._checked_never_values(never_values text[], typ regtype, ftyp regtype, what text) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text;
BEGIN
    IF never_values IS NULL THEN
        RETURN CASE WHEN typ IN ('integer'::regtype, 'bigint'::regtype)
                      OR ftyp IN ('integer'::regtype, 'bigint'::regtype) THEN '{0}'::text[] ELSE '{}'::text[] END;
    END IF;
    IF pg_catalog.array_position(never_values, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'never_values must not contain NULL' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'NULL always means never; list only the other values that do, e.g. ''{0}''.';
    END IF;
    FOREACH v IN ARRAY never_values LOOP
        IF pg_catalog.cardinality(pdp._never_values_for(ARRAY[v], typ)) = 0
           AND (ftyp IS NULL OR pg_catalog.cardinality(pdp._never_values_for(ARRAY[v], ftyp)) = 0) THEN
            RAISE EXCEPTION 'a value in never_values is not a value of the % or fallback column''s type', what
                USING ERRCODE = 'invalid_text_representation',
                      HINT = pg_catalog.format('The %s column is %s%s.', what, typ,
                                               CASE WHEN ftyp IS NOT NULL THEN ', the fallback column ' || ftyp ELSE '' END);
        END IF;
    END LOOP;
    RETURN never_values;
END
$$;
COMMENT ON FUNCTION pdp._checked_never_values(text[], regtype, regtype, text) IS
    'a list of "never" values checked against the anchor and fallback columns'' types, or the default (''{0}'' for epoch seconds)';
REVOKE ALL ON FUNCTION pdp._checked_never_values(text[], regtype, regtype, text) FROM PUBLIC;
DROP FUNCTION pdp.set_retention(regclass, interval, name, text);
DROP FUNCTION IF EXISTS pdp._api_set_retention(regclass, interval, name, text);
CREATE OR REPLACE FUNCTION pdp.set_retention(tbl regclass, period interval, anchor_column name DEFAULT NULL,
                                  action text DEFAULT 'delete', never_values text[] DEFAULT NULL,
                                  fallback_column name DEFAULT NULL) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;
COMMENT ON FUNCTION pdp.set_retention(regclass, interval, name, text, text[], name) IS
    'tags every row with its expiry (anchor plus period, or insertion time plus period) and sets the purge action; '
    'anchor values in never_values (and NULL) mean never and fall back to fallback_column';
CREATE OR REPLACE FUNCTION pdp._api_set_retention(tbl regclass, period interval, anchor_column name, action text,
                                       never_values text[], fallback_column name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype;
    expr text;
    idx name;
    k name;
    zeros bigint;
    ftyp regtype;
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF anchor_column IS NULL THEN
        -- Without an anchor, a trigger tags new rows: it would run on the workers.
        PERFORM pdp._refuse_on_citus(tbl, 'set retention without an anchor column on');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _api_set_retention.tbl) THEN
        RAISE EXCEPTION 'table "%" is not registered', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register its subject columns first: holds and restrictions apply per subject.';
    END IF;
    PERFORM pdp._check_interval(period, 'retention period must be positive');
    IF action IS NULL OR action NOT IN ('delete', 'anonymise') THEN
        RAISE EXCEPTION 'unknown retention action' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'The action is "delete" or "anonymise".';
    END IF;
    IF action = 'anonymise' AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) _api_set_retention.tbl)
       AND NOT EXISTS (SELECT 1 FROM pdp.anonymise_column x WHERE x.tbl OPERATOR(pg_catalog.=) _api_set_retention.tbl) THEN
        RAISE EXCEPTION 'table "%" has no column rules to anonymise with', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Declare rules with pdp.set_column_rule, or anonymisations with pdp.set_anonymisation, first.';
    END IF;
    -- An anonymised row names nobody: a NOT NULL column that owns its rows
    -- (on_erase delete) has no value that does.
    IF action = 'anonymise' AND EXISTS (SELECT 1 FROM pdp.subject_column s
                                          JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid
                                                             AND a.attnum OPERATOR(pg_catalog.=) s.attnum
                                         WHERE s.tbl OPERATOR(pg_catalog.=) _api_set_retention.tbl
                                           AND s.on_erase = 'delete' AND a.attnotnull) THEN
        RAISE EXCEPTION 'table "%" cannot be anonymised: a subject column is NOT NULL and owns its rows', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Purge the table with action delete, or register the column with on_erase set_value and an erase value.';
    END IF;
    IF anchor_column IS NULL THEN
        k := pdp._single_key(tbl);   -- the tagging trigger records rows by it
    END IF;
    IF anchor_column IS NOT NULL THEN
        SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname OPERATOR(pg_catalog.=) anchor_column
           AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of table "%" does not exist', anchor_column, pdp._relname(tbl)
                USING ERRCODE = 'undefined_column';
        END IF;
        IF typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype,
                       'integer'::regtype, 'bigint'::regtype) THEN
            RAISE EXCEPTION 'anchor column "%" has unsupported type %', anchor_column, typ
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'An anchor is timestamptz, timestamp, date, or integer/bigint Unix epoch seconds.';
        END IF;
        IF fallback_column IS NOT NULL THEN
            IF fallback_column OPERATOR(pg_catalog.=) anchor_column THEN
                RAISE EXCEPTION 'the fallback column must differ from the anchor column' USING ERRCODE = 'invalid_parameter_value';
            END IF;
            ftyp := pdp._anchor_type(tbl, fallback_column, 'fallback');
        END IF;
        never_values := pdp._checked_never_values(never_values, typ, ftyp, 'anchor');
        -- Epoch seconds: 0 is 1 January 1970, which applications often write
        -- for "not yet".  Unless 0 means never, say so rather than purge
        -- those rows silently.
        IF typ IN ('integer'::regtype, 'bigint'::regtype) AND NOT '0' OPERATOR(pg_catalog.=) ANY (never_values) THEN
            SELECT x.n INTO zeros FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                'SELECT pg_catalog.count(*) FROM %s t WHERE t.%I OPERATOR(pg_catalog.=) 0', tbl, anchor_column)) AS x(n bigint);
            IF zeros > 0 THEN
                RAISE WARNING 'anchor column "%" of table "%" holds 0 in % rows, read as 1 January 1970: they expire at once',
                              anchor_column, pdp._relname(tbl), zeros
                    USING HINT = 'If 0 means "never" there, say so: never_values => ''{0}'' (a NULL anchor never expires either). '
                                 'A purge that would remove more than pdp.purge_max_share of the table is held back.';
            END IF;
        END IF;
    ELSIF never_values IS NOT NULL OR fallback_column IS NOT NULL THEN
        RAISE EXCEPTION 'never_values and fallback_column need an anchor column' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Without an anchor a row expires from when it was written, which is never "never".';
    END IF;

    PERFORM pdp._drop_retention_objects(tbl);
    INSERT INTO pdp.retention_policy (tbl, period, anchor_column, action, set_by, never_values, fallback_column)
    VALUES (tbl, period, anchor_column, action, pg_catalog.pg_get_userbyid(pdp._caller()), coalesce(never_values, '{}'), fallback_column)
    ON CONFLICT ON CONSTRAINT retention_policy_pkey DO UPDATE
       SET period = EXCLUDED.period, anchor_column = EXCLUDED.anchor_column, action = EXCLUDED.action,
           set_at = pg_catalog.now(), set_by = EXCLUDED.set_by,
           never_values = EXCLUDED.never_values, fallback_column = EXCLUDED.fallback_column;

    IF anchor_column IS NOT NULL THEN
        -- The expiry index is the tag.  An index with the same expression made
        -- beforehand (CREATE INDEX CONCURRENTLY on a large table) is reused.
        expr := pdp._retention_expiry_sql(tbl);
        idx := pg_catalog.left('pdp_expiry_' || (SELECT c.relname FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid), 63);
        IF NOT EXISTS (SELECT 1 FROM pg_index i
                        WHERE i.indrelid OPERATOR(pg_catalog.=) tbl::oid
                          AND pg_catalog.pg_get_indexdef(i.indexrelid) LIKE '%' || pg_catalog.replace(expr, 'pdp._expiry', '_expiry') || '%') THEN
            EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (%s)', idx, tbl, expr);
        END IF;
    ELSE
        -- No anchor: a trigger records each new row's expiry; existing rows
        -- are tagged now, from today.
        EXECUTE pg_catalog.format('CREATE TRIGGER pdp_retention_tag AFTER INSERT ON %s '
                                  'REFERENCING NEW TABLE AS pdp_new_rows FOR EACH STATEMENT '
                                  'EXECUTE FUNCTION pdp._retention_tag(%L, %L)', tbl, k, period::text);
        INSERT INTO pdp.retention_tag (tbl, row_key, expires_at)
        SELECT tbl::oid, x.k, pdp._expiry(pg_catalog.now(), period)
          FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT t.%I::text FROM %s t', k, tbl)) AS x(k text)
        ON CONFLICT DO NOTHING;
    END IF;
    PERFORM pdp._audit('set_retention', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('period', period::text, 'anchor', anchor_column, 'action', action,
                                                     'never_values', never_values, 'fallback', fallback_column));
END
$$;
COMMENT ON FUNCTION pdp._api_set_retention(regclass, interval, name, text, text[], name) IS
    'pdp.set_retention''s implementation, run as pdp_ext''s owner (callable by no role)';
REVOKE ALL ON FUNCTION pdp.set_retention(regclass, interval, name, text, text[], name),
                       pdp._api_set_retention(regclass, interval, name, text, text[], name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.set_retention(regclass, interval, name, text, text[], name) TO pdp_admin;
CREATE OR REPLACE FUNCTION pdp._retention_expiry_sql(tbl regclass) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    c name;
    typ regtype;
    nv text[];
    part text;
    parts text[] := '{}';
BEGIN
    SELECT * INTO p FROM pdp.retention_policy r WHERE r.tbl OPERATOR(pg_catalog.=) _retention_expiry_sql.tbl;
    IF NOT FOUND OR p.anchor_column IS NULL THEN
        RETURN NULL;
    END IF;
    IF pg_catalog.cardinality(p.never_values) = 0 AND p.fallback_column IS NULL THEN
        RETURN pdp._expiry_expr(p.anchor_column, p.period);   -- as 0.3 wrote it: existing indexes still match
    END IF;
    FOREACH c IN ARRAY ARRAY[p.anchor_column, p.fallback_column] LOOP
        CONTINUE WHEN c IS NULL;
        SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname OPERATOR(pg_catalog.=) c AND NOT a.attisdropped;
        nv := pdp._never_values_for(p.never_values, typ);
        part := CASE WHEN pg_catalog.cardinality(nv) = 0 THEN pg_catalog.format('%I', c)
                     ELSE pg_catalog.format('CASE WHEN %1$I IN (%2$s) THEN NULL ELSE %1$I END', c,
                                            (SELECT pg_catalog.string_agg(pg_catalog.format('%L::%s', v, typ), ', ') FROM pg_catalog.unnest(nv) v))
                END;
        parts := parts || pg_catalog.format('pdp._expiry(%s, %L::interval)', part, p.period::text);
    END LOOP;
    RETURN CASE WHEN pg_catalog.cardinality(parts) = 1 THEN parts[1]
                ELSE pg_catalog.format('COALESCE(%s)', pg_catalog.array_to_string(parts, ', ')) END;
END
$$;
COMMENT ON FUNCTION pdp._retention_expiry_sql(regclass) IS
    'the expiry expression of a table''s anchored retention (never values and fallback included), which its index and purges share';
REVOKE ALL ON FUNCTION pdp._retention_expiry_sql(regclass) FROM PUBLIC;
CREATE OR REPLACE VIEW pdp.retention_policies AS
SELECT p.tbl AS table_name, p.period, p.anchor_column,
       CASE WHEN p.anchor_column IS NULL THEN 'insertion time' ELSE 'anchor column' END AS tagged_by,
       p.action, p.set_at, p.set_by, p.never_values, p.fallback_column
  FROM pdp.retention_policy p;
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
-- A purge for inactivity cuts the links to inactive subjects (issue 16).
CREATE OR REPLACE FUNCTION pdp._cut_inactive_links(tbl regclass, dry_run boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v record;
    c record;
    i integer := 0;
    vals text[] := '{}';
    cond text;
    set_list text;
    guard text;
    subjects text[];
    anon text;
    z record;
BEGIN
    v := pdp._expired_params(tbl, 'inactivity');
    -- (A Citus table the purges skip is never cut: pdp._citus_skip_purge.)
    IF NOT v.purgeable OR pdp._citus_purge_refusal(tbl) IS NOT NULL THEN
        RETURN 0;
    END IF;
    subjects := ARRAY(SELECT k FROM pg_catalog.unnest(v.keys) k WHERE k OPERATOR(pg_catalog.<>) ALL (v.held));
    IF pg_catalog.cardinality(subjects) = 0 THEN
        RETURN 0;
    END IF;
    FOR c IN SELECT s.col, s.on_erase, s.erase_value, a.atttypid::regtype AS typ
               FROM pdp.subject_column s
               JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) s.attnum
              WHERE s.tbl OPERATOR(pg_catalog.=) _cut_inactive_links.tbl
              ORDER BY s.attnum LOOP
        guard := concat_ws(' AND ', guard, 'NOT ' || pdp._cell_in_sql(tbl, c.col, '$3'));
        IF c.on_erase NOT IN ('set_null', 'set_value') THEN
            anon := concat_ws(' AND ', anon, pg_catalog.format('t.%I IS NULL', c.col));
            CONTINUE;
        END IF;
        i := i + 1;
        vals := vals || c.erase_value;
        anon := concat_ws(' AND ', anon, pg_catalog.format(
                    '(t.%1$I IS NULL OR t.%1$I OPERATOR(pg_catalog.=) ($2)[%2$s]::%3$s OR %4$s)',
                    c.col, i, c.typ, pdp._cell_in_sql(tbl, c.col, '$1')));
        cond := concat_ws(' OR ', cond, pdp._cell_in_sql(tbl, c.col, '$1'));
        set_list := concat_ws(', ', set_list, pg_catalog.format(
                        '%1$I = CASE WHEN %3$s THEN %2$s ELSE t.%1$I END', c.col,
                        CASE WHEN c.on_erase = 'set_null' THEN 'NULL' ELSE pg_catalog.format('($2)[%s]::%s', i, c.typ) END,
                        pdp._cell_in_sql(tbl, c.col, '$1')));
    END LOOP;
    IF cond IS NULL THEN
        RETURN 0;
    END IF;
    -- A row so cut that names nobody any more is anonymised as erasure
    -- anonymises it (pdp._anonymise_set): unlinkable transforms, never a
    -- keyed rule, and no foreign key into a deleted row; their constants
    -- follow the erase values in $2.
    SELECT * INTO z FROM pdp._anonymise_set(tbl, '$2', i, '(' || anon || ')');
    vals := vals || z.vals;
    set_list := concat_ws(', ', set_list, z.set_list);
    -- On a Citus table Citus runs the UPDATE on every shard or placement,
    -- unless this refuses it (0A000; the purges skip such tables first).
    PERFORM pdp._citus_anonymise_check(tbl, set_list);
    IF coalesce(dry_run, false) THEN
        RETURN (SELECT x.n FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE (%s) AND %s',
                                                                         tbl, cond, guard), subjects, vals, v.restricted) AS x(n bigint));
    END IF;
    RETURN pdp._exec_as_owner_count(tbl, pg_catalog.format('UPDATE %s t SET %s WHERE (%s) AND %s', tbl, set_list, cond, guard),
                                    subjects, vals, v.restricted);
END
$$;
COMMENT ON FUNCTION pdp._cut_inactive_links(regclass, boolean) IS
    'sets the set_null/set_value columns naming inactive (unheld) subjects to NULL or their erase value, as erasure does; with dry_run counts';
REVOKE ALL ON FUNCTION pdp._cut_inactive_links(regclass, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._cut_inactive_links(regclass, boolean) TO pdp_admin;
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
COMMENT ON FUNCTION pdp.purge_expired(integer, boolean) IS
    'deletes or anonymises expired rows of every retained table, children first, skipping held and restricted subjects, and cuts links to inactive subjects; dry_run only counts';
