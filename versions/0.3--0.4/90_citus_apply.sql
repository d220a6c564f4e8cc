-- Issue 18, step 4: pdp.apply_rules on Citus distributed and reference
-- tables (src/sql/32_rules.sql): rows rewritten by primary-key range, one
-- UPDATE per batch that Citus runs on every shard or placement; the keyed
-- rules through IMMUTABLE wrappers given the coordinator's key fingerprints
-- (refusing on a node whose key file differs); a rule on the distribution
-- column refused.  set_column_rule accepts distributed and reference tables.

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

CREATE OR REPLACE FUNCTION pdp._key_set() RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_key_set';
COMMENT ON FUNCTION pdp._key_set() IS
    'this server''s key versions and public fingerprints as one string (the active one starred), compared across Citus nodes by pdp._citus_keyed';

CREATE OR REPLACE FUNCTION pdp._citus_require_key_set(key_set text) RETURNS void
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pdp._key_set() IS DISTINCT FROM key_set THEN
        RAISE EXCEPTION 'the key file of this Citus node differs from the coordinator''s'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'A keyed column rule computed here would give other pseudonyms than on the coordinator.',
                  HINT = 'Give every node the same pdp.key_file; pdp.key_status() on the coordinator shows which node differs.';
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._citus_require_key_set(text) IS
    'raises 55000 unless this Citus node''s key fingerprints are the given ones (the coordinator''s)';

CREATE OR REPLACE FUNCTION pdp._citus_keyed(key_set text, rule text, value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._citus_require_key_set(key_set);
    CASE rule
    WHEN 'pseudonym' THEN RETURN pdp.pseudonym(value);
    WHEN 'pseudo_email' THEN RETURN pdp.pseudo_email(value);
    WHEN 'pseudo_phone' THEN RETURN pdp.pseudo_phone(value);
    WHEN 'pseudo_iin' THEN RETURN pdp.pseudo_iin(value);
    WHEN 'pseudo_name' THEN RETURN pdp.pseudo_name(value);
    WHEN 'pseudo_ip' THEN RETURN pdp.pseudo_ip_text(value);
    WHEN 'encrypt' THEN RETURN pdp.encrypt(value);
    WHEN 'fpe_iin' THEN RETURN pdp.fpe_iin(value);
    ELSE
        RAISE EXCEPTION 'unknown keyed column rule' USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END
$$;
COMMENT ON FUNCTION pdp._citus_keyed(text, text, text) IS
    'a keyed rule''s value on a Citus node, IMMUTABLE for Citus''s UPDATE pushdown: fails unless the node''s key fingerprints are the given ones';

CREATE OR REPLACE FUNCTION pdp._citus_keyed_inet(key_set text, value inet) RETURNS inet
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._citus_require_key_set(key_set);
    RETURN pdp.pseudo_ip(value);
END
$$;
COMMENT ON FUNCTION pdp._citus_keyed_inet(text, inet) IS
    'pseudo_ip of an inet value on a Citus node, IMMUTABLE for Citus''s UPDATE pushdown: fails unless the node''s key fingerprints are the given ones';

CREATE OR REPLACE FUNCTION pdp._citus_distribution_column(tbl regclass) RETURNS name
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col name;
BEGIN
    IF tbl IS NULL OR pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) FROM pg_catalog.pg_dist_partition p '
            ' WHERE p.logicalrelid::oid OPERATOR(pg_catalog.=) $1 AND p.partkey IS NOT NULL'
       INTO col USING tbl::oid;
    RETURN col;
END
$$;
COMMENT ON FUNCTION pdp._citus_distribution_column(regclass) IS
    'the distribution column of a distributed Citus table; NULL for other tables or without Citus';

CREATE OR REPLACE FUNCTION pdp._citus_rule_sql(tbl regclass, rule text, col name, typ oid, key_set text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF col OPERATOR(pg_catalog.=) pdp._citus_distribution_column(tbl) THEN
        RAISE EXCEPTION 'cannot apply a column rule to the distribution column "%" of distributed table "%"', col, pdp._relname(tbl)
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Citus cannot change a distribution column in place: a changed value belongs on another shard.',
                  HINT = 'Drop the rule (pdp.drop_column_rule) and pseudonymise the column while the table is local: '
                         'undistribute_table, pdp.apply_rules, then create_distributed_table again; or distribute by another column.';
    END IF;
    IF rule OPERATOR(pg_catalog.=) 'shred' THEN
        RAISE EXCEPTION 'cannot apply column rule "shred" to Citus table "%"', pdp._relname(tbl)
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Shredding encrypts under each subject''s own key, which is kept on one node.',
                  HINT = 'Choose a keyed pseudonym (pseudonym, encrypt) for Citus tables.';
    END IF;
    IF rule IN ('pseudonym', 'pseudo_email', 'pseudo_phone', 'pseudo_iin', 'pseudo_name', 'pseudo_ip', 'encrypt', 'fpe_iin') THEN
        IF rule OPERATOR(pg_catalog.=) 'pseudo_ip' AND typ OPERATOR(pg_catalog.=) 'inet'::regtype THEN
            RETURN pg_catalog.format('pdp._citus_keyed_inet(%L, %I)', key_set, col);
        END IF;
        IF typ NOT IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype) THEN
            RAISE EXCEPTION 'cannot apply column rule "%" to column "%" of Citus table "%"', rule, col, pdp._relname(tbl)
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'On Citus tables keyed rules are applied to text, varchar, char and (pseudo_ip) inet columns.',
                      HINT = 'Store the column as text.';
        END IF;
        RETURN pg_catalog.format('pdp._citus_keyed(%L, %L, %I)', key_set, rule, col);
    END IF;
    RETURN pdp._rule_sql(rule, col, typ);
END
$$;
COMMENT ON FUNCTION pdp._citus_rule_sql(regclass, text, name, oid, text) IS
    'a column rule''s SET expression on a Citus table (keyed rules through pdp._citus_keyed); refuses the distribution column and shred';

REVOKE ALL ON FUNCTION pdp._key_set(), pdp._citus_keyed(text, text, text), pdp._citus_keyed_inet(text, inet), pdp._citus_require_key_set(text),
                       pdp._citus_distribution_column(regclass), pdp._citus_rule_sql(regclass, text, name, oid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._citus_rule_sql(regclass, text, name, oid, text), pdp._citus_distribution_column(regclass),
                          pdp._key_set() TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._citus_keyed(text, text, text), pdp._citus_keyed_inet(text, inet), pdp._key_set(),
                          pdp._citus_require_key_set(text) TO pdp_pseudonymiser;

CREATE OR REPLACE FUNCTION pdp._api_set_column_rule(tbl regclass, col name, rule text, category text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    -- Distributed and reference tables take rules (pdp.apply_rules rewrites
    -- them by key range; the triggers rules need are refused where they are
    -- installed); Citus local tables are refused.
    IF coalesce(pdp._citus_table_kind(tbl), 'none') NOT IN ('none', 'distributed', 'reference') THEN
        PERFORM pdp._refuse_on_citus(tbl, 'set column rules on');
    END IF;
    IF col IS NULL OR rule IS NULL THEN
        RAISE EXCEPTION 'column and rule must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.rule_kind k WHERE k.rule OPERATOR(pg_catalog.=) _api_set_column_rule.rule) THEN
        RAISE EXCEPTION 'unknown column rule'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'pdp.rule_kind lists the rules.';
    END IF;
    -- A keyed rule makes the table's writers compute tokens: only a role that
    -- may compute them itself declares one (issue 14, class 5).
    IF rule IN ('pseudonym', 'pseudo_email', 'pseudo_phone', 'pseudo_iin', 'pseudo_name', 'pseudo_ip', 'encrypt', 'fpe_iin', 'shred')
       AND NOT pg_catalog.pg_has_role(pdp._caller(), 'pdp_pseudonymiser', 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to declare keyed column rule "%"', rule
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Keyed rules compute deterministic tokens, which whoever computes them can reverse by guessing.',
                  HINT = 'Declare it as a member of pdp_pseudonymiser, or choose a mask.';
    END IF;
    IF rule = 'shred' THEN
        PERFORM pdp._shred_subject_column(tbl);  -- the key of each row's subject encrypts it
    END IF;
    -- On Citus, what apply_rules could not do is refused now (the
    -- distribution column, shred, keyed rules on other types).
    IF pdp._citus_table_kind(tbl) IS NOT NULL THEN
        PERFORM pdp._citus_rule_sql(tbl, rule, col,
                                    (SELECT a.atttypid FROM pg_catalog.pg_attribute a
                                      WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname OPERATOR(pg_catalog.=) col
                                        AND NOT a.attisdropped AND a.attnum > 0), '');
    END IF;
    INSERT INTO pdp.column_rule AS r (tbl, col, attnum, rule, category, set_by)
    VALUES (tbl, col, 0, rule, category, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT column_rule_pkey DO UPDATE
       SET rule = EXCLUDED.rule, category = EXCLUDED.category,
           set_at = pg_catalog.now(), set_by = EXCLUDED.set_by;
    IF pdp._on_write_enabled(tbl) THEN
        PERFORM pdp._sync_on_write_trigger(tbl, true);
    END IF;
    PERFORM pdp._sync_rectification_trigger(tbl);
    PERFORM pdp._audit('set_column_rule', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('column', col, 'rule', rule, 'category', category));
END
$$;

CREATE OR REPLACE PROCEDURE pdp.apply_rules(tbl regclass, batch_size integer DEFAULT 10000, restart boolean DEFAULT false)
LANGUAGE plpgsql
-- No SET clause: a procedure with one cannot COMMIT.  Names are qualified instead.
AS $$
DECLARE
    keys name[];
    key_types text[];
    key_row text;
    key_params text;
    set_list text;
    run record;
    batch_sql text;
    last text[];
    n bigint;
    qtbl text;   -- the table's qualified name: its statements run under search_path pg_catalog, pg_temp
    kind text;   -- the Citus table kind, NULL for any other table
    key_set text;
    hi_sql text;
    hi text[];
BEGIN
    PERFORM pdp._require_owner(tbl);
    kind := pdp._citus_table_kind(tbl);
    -- Distributed and reference tables are rewritten by key range (see
    -- pdp._citus_rule_sql); Citus local and partitioned ones are refused.
    IF kind IS NOT NULL AND (kind NOT IN ('distributed', 'reference') OR pdp._has_children(tbl)) THEN
        PERFORM pdp._refuse_on_citus(tbl, 'apply column rules to');
    END IF;
    IF kind IS NOT NULL THEN
        key_set := pdp._key_set();
    END IF;
    SELECT pg_catalog.format('%I.%I', ns.nspname, cl.relname) INTO qtbl
      FROM pg_catalog.pg_class cl JOIN pg_catalog.pg_namespace ns ON ns.oid OPERATOR(pg_catalog.=) cl.relnamespace
     WHERE cl.oid OPERATOR(pg_catalog.=) tbl::oid;
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- No cast to the column's type: assignment checks varchar lengths where a
    -- cast would silently truncate.
    SELECT pg_catalog.string_agg(pg_catalog.format('%I = %s', r.col,
               CASE WHEN kind IS NULL THEN pdp._rule_sql(r.rule, r.col, a.atttypid)
                    ELSE pdp._citus_rule_sql(apply_rules.tbl, r.rule, r.col, a.atttypid, key_set) END), ', ' ORDER BY r.attnum)
      INTO set_list
      FROM pdp.column_rule r
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) r.attnum
     WHERE r.tbl OPERATOR(pg_catalog.=) apply_rules.tbl;
    IF set_list IS NULL THEN
        RAISE EXCEPTION 'table "%" has no column rules', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Declare rules with pdp.set_column_rule first.';
    END IF;

    -- Rows are visited in primary-key order, so a run can stop anywhere and resume.
    SELECT pg_catalog.array_agg(a.attname ORDER BY k.ord),
           pg_catalog.array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY k.ord)
      INTO keys, key_types
      FROM pg_catalog.pg_index i
      CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::smallint[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
     WHERE i.indrelid OPERATOR(pg_catalog.=) tbl::oid AND i.indisprimary;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'table "%" has no primary key', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'apply_rules walks the table in primary-key order so that it can resume.';
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ') INTO key_row FROM pg_catalog.unnest(keys) c;
    SELECT pg_catalog.string_agg(pg_catalog.format('($%s[%s])::%s', p, i, t), ', ')
      INTO key_params
      FROM (SELECT 0 AS p) x, pg_catalog.unnest(key_types) WITH ORDINALITY AS u(t, i);

    run := pdp._apply_progress(tbl, 'lock', NULL, NULL, NULL);
    IF run.tbl IS NOT NULL AND run.finished_at IS NOT NULL AND NOT restart THEN
        RAISE EXCEPTION 'rules were already applied to table "%"', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('The run finished at %s; applying again would pseudonymise values twice.', run.finished_at),
                  HINT = 'Pass restart => true only if the table holds raw values again.';
    END IF;
    IF run.tbl IS NULL OR restart OR run.key_columns IS DISTINCT FROM keys THEN
        IF pdp._on_write_enabled(tbl) THEN
            RAISE EXCEPTION 'cannot start apply_rules on table "%" while pseudonymise_on_write is on', pdp._relname(tbl)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Rows written through the trigger are already pseudonymised and cannot be told apart.',
                      HINT = 'Run apply_rules first, then pdp.pseudonymise_on_write.';
        END IF;
        -- Every statement on the table runs as its owner (pdp._exec_as_owner).
        SELECT x.k INTO last
          FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT ARRAY[%s]::text[] FROM %s ORDER BY %s LIMIT 1',
                                  (SELECT pg_catalog.string_agg(pg_catalog.format('%I::text', c), ', ') FROM pg_catalog.unnest(keys) c),
                                  qtbl,
                                  (SELECT pg_catalog.string_agg(pg_catalog.format('%I DESC', c), ', ') FROM pg_catalog.unnest(keys) c)))
               AS x(k text[]);
        run := pdp._apply_progress(tbl, 'start', keys, last, NULL);
        PERFORM pdp._audit('apply_rules_start', tbl::text, NULL,
                           pg_catalog.jsonb_build_object('batch_size', batch_size)
                           OPERATOR(pg_catalog.||) CASE WHEN kind IS NULL THEN '{}'::jsonb
                                                        ELSE pg_catalog.jsonb_build_object('citus', kind) END);
    END IF;
    COMMIT;

    IF run.upper_key IS NOT NULL THEN
        -- One batch: the next rows after last_key up to upper_key, rewritten and
        -- recorded in the same transaction.
        batch_sql := pg_catalog.format(
            'WITH batch AS (SELECT %1$s FROM %2$s WHERE (%1$s) <= (%3$s) AND ($2::text[] IS NULL OR (%1$s) > (%4$s)) '
            'ORDER BY %1$s LIMIT $3 FOR UPDATE), '
            'done AS (UPDATE %2$s t SET %5$s FROM batch WHERE (%6$s) = (%7$s) RETURNING %8$s) '
            'SELECT (SELECT ARRAY[%9$s]::text[] FROM done ORDER BY %10$s LIMIT 1), (SELECT pg_catalog.count(*) FROM done)',
            key_row, qtbl,
            pg_catalog.replace(key_params, '$0', '$1'),
            pg_catalog.replace(key_params, '$0', '$2'),
            set_list,
            (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', c), ', ') FROM pg_catalog.unnest(keys) c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('batch.%I', c), ', ') FROM pg_catalog.unnest(keys) c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', c), ', ') FROM pg_catalog.unnest(keys) c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('%I::text', c), ', ') FROM pg_catalog.unnest(keys) c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('%I DESC', c), ', ') FROM pg_catalog.unnest(keys) c));
        IF kind IS NOT NULL THEN
            -- Citus: the batch's highest key (the first batch_size keys after
            -- last_key, up to upper_key), then one UPDATE of the key range.
            hi_sql := pg_catalog.format(
                'SELECT ARRAY[%1$s]::text[] FROM (SELECT %2$s FROM %3$s WHERE (%2$s) <= (%4$s) AND ($2::text[] IS NULL OR (%2$s) > (%5$s)) '
                'ORDER BY %2$s LIMIT $3) b ORDER BY %6$s LIMIT 1',
                (SELECT pg_catalog.string_agg(pg_catalog.format('b.%I::text', c), ', ') FROM pg_catalog.unnest(keys) c),
                key_row, qtbl,
                pg_catalog.replace(key_params, '$0', '$1'),
                pg_catalog.replace(key_params, '$0', '$2'),
                (SELECT pg_catalog.string_agg(pg_catalog.format('b.%I DESC', c), ', ') FROM pg_catalog.unnest(keys) c));
            batch_sql := pg_catalog.format(
                'WITH done AS (UPDATE %1$s t SET %2$s WHERE (%3$s) <= (%4$s) AND ($2::text[] IS NULL OR (%3$s) > (%5$s)) RETURNING 1) '
                'SELECT $1, (SELECT pg_catalog.count(*) FROM done)',
                qtbl, set_list,
                (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', c), ', ') FROM pg_catalog.unnest(keys) c),
                pg_catalog.replace(key_params, '$0', '$1'),
                pg_catalog.replace(key_params, '$0', '$2'));
        END IF;
        LOOP
            run := pdp._apply_progress(tbl, 'lock', NULL, NULL, NULL);
            IF kind IS NULL THEN
                SELECT x.l, x.n INTO last, n
                  FROM pdp._exec_as_owner(tbl, batch_sql, run.upper_key, run.last_key, batch_size) AS x(l text[], n bigint);
            ELSE
                SELECT x.h INTO hi
                  FROM pdp._exec_as_owner(tbl, hi_sql, run.upper_key, run.last_key, batch_size) AS x(h text[]);
                EXIT WHEN hi IS NULL;
                SELECT x.l, x.n INTO last, n
                  FROM pdp._exec_as_owner(tbl, batch_sql, hi, run.last_key) AS x(l text[], n bigint);
            END IF;
            -- (On Citus a range found is recorded even if its rows were
            -- deleted meanwhile: only an empty range ends the run.)
            EXIT WHEN n = 0 AND kind IS NULL;
            PERFORM pdp._apply_progress(tbl, 'step', NULL, last, n);
            RAISE NOTICE 'apply_rules on table "%": % rows rewritten so far', pdp._relname(tbl), run.rows_done + n;
            COMMIT;
        END LOOP;
    END IF;
    n := (pdp._apply_progress(tbl, 'finish', NULL, NULL, NULL)).rows_done;
    PERFORM pdp._audit('apply_rules_finish', tbl::text, NULL, pg_catalog.jsonb_build_object('rows', n));
    COMMIT;
END
$$;

-- Anonymising erasure on Citus distributed and reference tables
-- (src/sql/15_citus.sql, src/sql/80_rights.sql): the UPDATE that cuts the
-- links runs as it is, unless it would change the distribution column,
-- randomise or generalise a timestamptz, which are refused.
CREATE OR REPLACE FUNCTION pdp._citus_anonymise_check(tbl regclass, set_list text) RETURNS void
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
REVOKE ALL ON FUNCTION pdp._citus_anonymise_check(regclass, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION pdp.erase_subject(subject text, reason text, sweep boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    cond text;
    own_cond text;
    cut_cond text;
    co_held text;
    n bigint;
    m bigint;
    rets jsonb;
    tables jsonb := '[]';
    followed jsonb := '[]';
    held text[];
    set_list text;
    anon text;
    cut_actions text;
    erase_values text[];
    f record;
    fit regtype[];
    c record;
    i integer;
    p text;
    withdrawn integer := 0;
    receipt jsonb;
    notices integer;
    forgotten jsonb;
    ids record;
    traces jsonb;
    z record;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL OR reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'subject and reason must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pdp._subject_held(subject) THEN
        RAISE EXCEPTION 'subject is under a legal hold'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Nothing was erased.',
                  HINT = 'pdp.holds lists the hold; pdp.release_hold releases it once its legal ground has ended.';
    END IF;
    -- A system subject (the guest, an administrator, a service account) is
    -- part of the application, not a learner: erasing it would break it.
    IF EXISTS (SELECT 1 FROM pdp.system_subject y WHERE y.subject OPERATOR(pg_catalog.=) erase_subject.subject) THEN
        RAISE EXCEPTION 'subject is a system subject'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Nothing was erased.',
                  HINT = 'If the account really belongs to a person who asked for erasure, pdp.drop_system_subject first.';
    END IF;
    held := ARRAY(SELECT h.subject FROM pdp.hold h WHERE h.subject IS NOT NULL AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
    IF sweep IS NULL THEN
        RAISE EXCEPTION 'sweep must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Before anything is erased: afterwards the classified values are gone.
    IF sweep THEN
        SELECT * INTO ids FROM pdp._subject_identifiers(subject);
    END IF;
    fit := pdp._subject_types(subject);
    PERFORM pdp._set_erasing(true);
    FOR t IN SELECT o.tbl FROM pdp._deletion_order() o LOOP
        -- One pass over the table's subject columns builds every condition:
        -- the subject in any column (cond), in an own column (own_cond), in
        -- a link column (cut_cond); a held subject in an own column
        -- (co_held); the cuts (set_list); and "names nobody once cut"
        -- (anon: every subject column NULL, at its erase value, or a cut
        -- column naming the subject).  $3 holds the erase values.
        cond := NULL; own_cond := NULL; cut_cond := NULL; co_held := NULL; set_list := NULL; anon := NULL;
        cut_actions := NULL; erase_values := '{}'; i := 0;
        FOR c IN SELECT * FROM pdp._subject_columns(t, fit) LOOP
            i := i + 1;
            erase_values := erase_values || c.erase_value;
            IF c.fits THEN
                cond := concat_ws(' OR ', cond, pdp._subject_eq_sql(t, c.col, fit));
            END IF;
            IF c.on_erase = 'delete' THEN
                -- (coalesce: a NULL column names nobody, so it must not make the test NULL)
                co_held := concat_ws(' OR ', co_held, pdp._cell_in_sql(t, c.col, '$2'));
                IF c.fits THEN
                    own_cond := concat_ws(' OR ', own_cond, pdp._subject_eq_sql(t, c.col, fit));
                END IF;
            END IF;
            IF c.on_erase IN ('set_null', 'set_value') THEN
                anon := concat_ws(' AND ', anon, pg_catalog.format(
                            '(t.%1$I IS NULL OR t.%1$I OPERATOR(pg_catalog.=) ($3)[%2$s]::%3$s%4$s)', c.col, i, c.typ,
                            CASE WHEN c.fits THEN ' OR ' || pdp._subject_eq_sql(t, c.col, fit) ELSE '' END));
                IF c.fits THEN
                    cut_cond := concat_ws(' OR ', cut_cond, pdp._subject_eq_sql(t, c.col, fit));
                    set_list := concat_ws(', ', set_list, pg_catalog.format(
                                    '%1$I = CASE WHEN %2$s THEN %3$s ELSE t.%1$I END', c.col, pdp._subject_eq_sql(t, c.col, fit),
                                    CASE WHEN c.on_erase = 'set_null' THEN 'NULL' ELSE pg_catalog.format('($3)[%s]::%s', i, c.typ) END));
                    cut_actions := CASE WHEN cut_actions IS NULL OR cut_actions = c.on_erase THEN c.on_erase
                                        ELSE 'set_null+set_value' END;
                END IF;
            ELSE
                anon := concat_ws(' AND ', anon, pg_catalog.format('t.%I IS NULL', c.col));
            END IF;
        END LOOP;
        CONTINUE WHEN cond IS NULL;
        co_held := '(' || coalesce(co_held, 'false') || ')';
        anon := '(' || anon || ')';
        IF EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) t AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until > pg_catalog.now())) THEN
            SELECT x.n INTO n
              FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE %s', t, cond), subject) AS x(n bigint);
            IF n > 0 THEN
                RAISE EXCEPTION 'table "%" is under a legal hold', pdp._relname(t)
                    USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = 'Nothing was erased.';
            END IF;
            CONTINUE;
        END IF;

        -- 1. Rows the subject owns are deleted (delete wins), and what follows them.
        -- Following links from a Citus table needs a RETURNING list Citus
        -- refuses in a DELETE: the whole erasure is refused, nothing erased.
        IF own_cond IS NOT NULL AND EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) t) THEN
          IF pdp._citus_table_kind(t) IS NOT NULL THEN
            RAISE EXCEPTION 'cannot erase through the links declared from % table "%"', pdp._citus_table_kind(t), pdp._relname(t)
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'Following the links needs the deleted rows'' link columns, which Citus does not return from a DELETE on the shards; nothing was erased.',
                      HINT = 'See "What is refused on Citus tables" in doc/scaling.md: drop the links (pdp.drop_link), or keep the parent table local.';
          END IF;
        END IF;
        IF own_cond IS NOT NULL THEN
            SELECT pg_catalog.count(*), pg_catalog.jsonb_agg(x.r) INTO n, rets
              FROM pdp._exec_as_owner(t, pg_catalog.format('DELETE FROM %s t WHERE (%s) AND NOT %s RETURNING %s',
                                                           t, own_cond, co_held,
                                                           -- (only what links need: Citus refuses a STABLE RETURNING)
                                                           CASE WHEN EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) t)
                                                                THEN pdp._link_returning(t) ELSE 'NULL::jsonb' END),
                                      subject, held) AS x(r jsonb);
            IF n > 0 THEN
                tables := tables || pg_catalog.jsonb_build_object('table', t::text, 'action', 'delete', 'rows', n);
            END IF;
            IF pg_catalog.cardinality(held) > 0 THEN
                SELECT x.n INTO m
                  FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE (%s) AND %s',
                                                               t, own_cond, co_held), subject, held) AS x(n bigint);
                IF m > 0 THEN
                    tables := tables || pg_catalog.jsonb_build_object('table', t::text, 'action', 'held', 'rows', m);
                END IF;
            END IF;
            IF n > 0 AND EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) t) THEN
                -- Another restricted subject's dependants are kept too: restriction bars processing them.
                FOR f IN SELECT * FROM pdp._follow_links(t, rets, ARRAY[subject], held,
                                                         ARRAY(SELECT r.subject FROM pdp.restriction r
                                                                WHERE r.subject OPERATOR(pg_catalog.<>) erase_subject.subject)) LOOP
                    followed := followed || pg_catalog.jsonb_build_object('table', f.tbl::text, 'action', f.action,
                                                                          'via', f.via, 'rows', f.rows);
                END LOOP;
            END IF;
        END IF;

        -- 2. In the rows left, links to the subject are cut, column by column.
        CONTINUE WHEN cut_cond IS NULL;
        -- A row left naming nobody is anonymised: the table's rules, and its
        -- nullable foreign keys into tables with delete columns emptied (an
        -- anonymised grade keeps no link to the deleted enrolment).
        -- Never a column rule: its keyed pseudonym would let the key's holder
        -- re-link the row (76_anonymise.sql); the constants follow the
        -- subject columns' erase values in $3.
        SELECT * INTO z FROM pdp._anonymise_set(t, '$3', i, anon);
        erase_values := erase_values || z.vals;
        set_list := concat_ws(', ', set_list, z.set_list);
        -- On a Citus table, Citus runs the UPDATE on every shard or placement
        -- unless it is refused here (the whole erasure, nothing changed).
        PERFORM pdp._citus_anonymise_check(t, set_list);
        SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE x.anonymised) INTO n, m
          FROM pdp._exec_as_owner(t, pg_catalog.format('UPDATE %s t SET %s WHERE %s RETURNING %s', t, set_list, cut_cond, anon),
                                  subject, held, erase_values) AS x(anonymised boolean);
        IF n > 0 THEN
            tables := tables || pg_catalog.jsonb_build_object('table', t::text, 'action', cut_actions, 'rows', n, 'anonymised', m);
        END IF;
    END LOOP;
    FOR p IN SELECT s.purpose FROM pdp.consent_state s WHERE s.subject OPERATOR(pg_catalog.=) erase_subject.subject LOOP
        PERFORM pdp.withdraw_consent(subject, p);
        withdrawn := withdrawn + 1;
    END LOOP;
    -- Recipients of the learner's data are to be told (GDPR Art. 19); then
    -- pdp's own tables forget the learner (issue 17).
    notices := pdp._raise_notices(subject, 'erasure');
    forgotten := pdp._forget_subject(subject);
    PERFORM pdp._set_erasing(false);
    IF sweep THEN
        traces := coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', tr.table_name::text, 'column', tr.column_name,
                                                                                     'rows', tr.rows, 'registered', tr.registered)
                                                        ORDER BY tr.table_name::text, tr.column_name)
                              FROM pdp._find_traces(ids.emails, ids.phones, ids.iins, ids.names) tr), '[]');
    END IF;
    -- Followed rows, summed per table, action and link column.
    followed := coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', g.t, 'action', g.a, 'via', g.v, 'rows', g.n)
                                                      ORDER BY g.t, g.v, g.a)
                            FROM (SELECT e->>'table' AS t, e->>'action' AS a, e->>'via' AS v, pg_catalog.sum((e->>'rows')::bigint) AS n
                                    FROM pg_catalog.jsonb_array_elements(followed) e GROUP BY 1, 2, 3) g), '[]');
    -- Tables, counts and time: the free-text reason stays out of the receipt,
    -- which must hold no personal value.
    receipt := pg_catalog.jsonb_build_object('subject_pseudonym', pdp._subject_pseudonym(subject),
                                             'erased_at', pg_catalog.now(),
                                             'tables', tables, 'followed', followed, 'consents_withdrawn', withdrawn,
                                             'pdp_tables', forgotten, 'notices_raised', notices);
    IF sweep THEN
        receipt := receipt || pg_catalog.jsonb_build_object('sweep', pg_catalog.jsonb_build_object(
                       'identifiers', pg_catalog.cardinality(ids.emails) + pg_catalog.cardinality(ids.phones)
                                      + pg_catalog.cardinality(ids.iins) + pg_catalog.cardinality(ids.names),
                       'traces', traces));
    END IF;
    receipt := receipt || pdp._shred_erase_keys(subject);  -- crypto-shredding: keys go at commit (src/shred.c)
    INSERT INTO pdp.erasure (subject_pseudonym, receipt) VALUES (pdp._subject_pseudonym(subject), receipt)
    ON CONFLICT (subject_pseudonym) DO UPDATE SET receipt = EXCLUDED.receipt, erased_at = EXCLUDED.erased_at;
    PERFORM pdp._audit('erase_subject', NULL, subject, pg_catalog.jsonb_build_object('tables', tables, 'followed', followed,
                                                                                     'consents_withdrawn', withdrawn)
                                                        || CASE WHEN sweep THEN pg_catalog.jsonb_build_object(
                                                               'sweep_traces', pg_catalog.jsonb_array_length(traces)) ELSE '{}' END);
    RETURN receipt;
END
$$;

-- Cutting the links to inactive subjects on Citus tables
-- (src/sql/15_citus.sql, src/sql/70_retention.sql): the purges no longer
-- skip a Citus table with set_null or set_value subject columns under
-- inactivity retention when its cutting UPDATE can run on the shards.
CREATE OR REPLACE FUNCTION pdp._citus_cut_refusal(tbl regclass) RETURNS text
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
REVOKE ALL ON FUNCTION pdp._citus_cut_refusal(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._citus_cut_refusal(regclass) TO pdp_admin;

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
