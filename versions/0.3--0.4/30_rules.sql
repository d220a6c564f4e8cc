-- Issue 16, points 5, 6 and 8 (helper H3, "rules"): rules that accept real
-- values, masked views that never fail (pdp.rule_failures), credentials,
-- discovery on real data, EAV columns.  See doc/pseudonymisation.md and
-- doc/register.md.

-- Rules on real values -------------------------------------------------------
CREATE OR REPLACE FUNCTION pdp.pseudo_ip_text(addr text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_ip_text';
COMMENT ON FUNCTION pdp.pseudo_ip_text(text) IS
    'pseudo_ip for an address stored as text or varchar: the same pseudonym as text (at most 43 characters); blanks pass through';

CREATE OR REPLACE FUNCTION pdp._pseudo_ip_any(addr anyelement) RETURNS anyelement
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_ip_any';
COMMENT ON FUNCTION pdp._pseudo_ip_any(anyelement) IS
    'the rule pseudo_ip''s expression: pdp.pseudo_ip for inet, pdp.pseudo_ip_text for text and varchar';
-- pseudo_ip's expression works on text and varchar columns too (erasure and purge apply rules by it).
UPDATE pdp.rule_kind SET expr = 'pdp._pseudo_ip_any(%1$I)', description = 'collision-free IP address pseudonym (inet, text or varchar)'
 WHERE rule = 'pseudo_ip';

CREATE OR REPLACE FUNCTION pdp._rule_misfit(rule text, typ oid, typmod integer, not_null boolean) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN k.rule IS NULL THEN 'unknown rule'
        WHEN k.rule OPERATOR(pg_catalog.=) 'null' AND not_null THEN 'the column is NOT NULL'
        WHEN k.input_type IS NULL THEN NULL
        -- pseudo_ip reads inet, and text or varchar (pdp.pseudo_ip_text, up to 43 characters out).
        WHEN k.rule OPERATOR(pg_catalog.=) 'pseudo_ip' AND typ OPERATOR(pg_catalog.=) 'character varying'::regtype
             AND typmod >= 0 AND typmod OPERATOR(pg_catalog.-) 4 OPERATOR(pg_catalog.<) 43
            THEN 'the rule''s output may be longer than the column allows (an address in text is up to 43 characters)'
        WHEN k.rule OPERATOR(pg_catalog.=) 'pseudo_ip' AND typ IN ('text'::regtype, 'character varying'::regtype)
            THEN NULL
        WHEN k.rule OPERATOR(pg_catalog.=) 'pseudo_ip' AND typ OPERATOR(pg_catalog.<>) 'inet'::regtype
            THEN 'the rule needs an inet, text or varchar column'
        WHEN k.input_type OPERATOR(pg_catalog.=) 'text'::regtype
             AND typ NOT IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype)
            THEN 'the rule needs a text, varchar or char column'
        WHEN k.input_type OPERATOR(pg_catalog.<>) 'text'::regtype AND typ OPERATOR(pg_catalog.<>) k.input_type
            THEN pg_catalog.format('the rule needs a %s column', k.input_type)
        WHEN typ IN ('character varying'::regtype, 'character'::regtype) AND typmod >= 0 AND NOT k.keeps_length
             AND (k.min_length IS NULL OR typmod OPERATOR(pg_catalog.-) 4 OPERATOR(pg_catalog.<) k.min_length)
            THEN 'the rule''s output may be longer than the column allows'
        WHEN typ OPERATOR(pg_catalog.=) 'character'::regtype AND k.keeps_length AND k.rule NOT LIKE 'mask%'
             AND k.rule NOT IN ('pseudo_iin', 'fpe_iin', 'pseudo_phone')
            THEN 'the rule needs a text or varchar column'
    END
    FROM (SELECT 1) one LEFT JOIN pdp.rule_kind k ON k.rule OPERATOR(pg_catalog.=) _rule_misfit.rule
$$;
CREATE OR REPLACE FUNCTION pdp._rule_sql(rule text, col name, typ oid) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN k.rule OPERATOR(pg_catalog.=) 'pseudo_ip' AND typ OPERATOR(pg_catalog.<>) 'inet'::regtype
                THEN pg_catalog.format('pdp.pseudo_ip_text(%I)', col)
                -- shred needs the row's subject, which only the on-write trigger sees
                WHEN k.rule OPERATOR(pg_catalog.=) 'shred' THEN pg_catalog.format('pdp._shred_static(%I)', col)
                WHEN k.rule OPERATOR(pg_catalog.=) 'pseudo_ip' THEN pg_catalog.format('pdp.pseudo_ip(%I)', col)
                ELSE pg_catalog.format(k.expr, col) END
      FROM pdp.rule_kind k WHERE k.rule OPERATOR(pg_catalog.=) _rule_sql.rule
$$;
COMMENT ON FUNCTION pdp._rule_sql(text, name, oid) IS
    'the SQL expression applying a rule to a column of the given type';

-- Masked views never fail on a stored value (src/rule_failures.c): a value
-- a rule cannot handle is shown as a constant and counted, never shown.
CREATE OR REPLACE FUNCTION pdp._rule_accepts(rule text, value text) RETURNS boolean
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_rule_accepts';
COMMENT ON FUNCTION pdp._rule_accepts(text, text) IS
    'whether the rule''s function returns a value for this input instead of raising (the same parsers); blanks are accepted';
CREATE OR REPLACE FUNCTION pdp._rule_failed(tbl oid, attnum smallint, rule text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_rule_failed';
COMMENT ON FUNCTION pdp._rule_failed(oid, smallint, text) IS
    'counts a value a rule could not handle in a masked view (table, column, rule; never the value) and returns the constant shown instead';
CREATE OR REPLACE FUNCTION pdp._rule_failures(OUT tbl oid, OUT attnum smallint, OUT rule text, OUT failures bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'pdp_rule_failures';
COMMENT ON FUNCTION pdp._rule_failures() IS
    'this database''s masked-view rule failure counters, and the server''s overflow counter (tbl NULL)';
CREATE VIEW pdp.rule_failures AS
SELECT f.tbl::regclass AS table_name, a.attname AS column_name, f.rule, f.failures
  FROM pdp._rule_failures() f
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) f.tbl AND a.attnum OPERATOR(pg_catalog.=) f.attnum;
COMMENT ON VIEW pdp.rule_failures IS
    'values masked views could not apply their rule to (shown as ****), per table, column and rule, since the server started; never a value; a row without a table counts failures beyond the 512 tracked (table, column, rule) entries';

CREATE OR REPLACE FUNCTION pdp._masked_column_sql(tbl regclass, attnum smallint) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    att record;
    rule_ text;
    typ text;
    base text;
    e record;
    arms text := '';
    attr name;
BEGIN
    SELECT a.attname, a.atttypid, a.atttypmod INTO att FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attnum OPERATOR(pg_catalog.=) _masked_column_sql.attnum;
    typ := pg_catalog.format_type(att.atttypid, att.atttypmod);
    IF EXISTS (SELECT 1 FROM pdp.credential_column cc WHERE cc.tbl OPERATOR(pg_catalog.=) _masked_column_sql.tbl
                 AND cc.attnum OPERATOR(pg_catalog.=) _masked_column_sql.attnum) THEN
        RETURN pg_catalog.format('NULL::%s AS %I', typ, att.attname);
    END IF;
    SELECT r.rule INTO rule_ FROM pdp.column_rule r
     WHERE r.tbl OPERATOR(pg_catalog.=) _masked_column_sql.tbl AND r.attnum OPERATOR(pg_catalog.=) _masked_column_sql.attnum;
    base := CASE WHEN rule_ IS NULL THEN pg_catalog.format('%I', att.attname)
                 -- a shredded value in clear for the view's readers, NULL once its subject is erased
                 WHEN rule_ OPERATOR(pg_catalog.=) 'shred'
                 THEN pg_catalog.format('pdp.unshred(%L::pg_catalog.regclass, %L, %I, %I::text)::%s', tbl::oid, att.attname,
                                        att.attname, pdp._shred_subject_column(tbl), typ)
                 ELSE pdp._guarded_rule_sql(tbl, _masked_column_sql.attnum, rule_, att.attname, att.atttypid, typ) END;
    FOR e IN SELECT x.attribute_value, x.rule, a.attname AS attr FROM pdp.eav_attribute x
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.tbl::oid
                                             AND a.attnum OPERATOR(pg_catalog.=) x.attribute_attnum
              WHERE x.tbl OPERATOR(pg_catalog.=) _masked_column_sql.tbl
                AND x.value_attnum OPERATOR(pg_catalog.=) _masked_column_sql.attnum AND x.rule IS NOT NULL
              ORDER BY x.attribute_value LOOP
        arms := arms || pg_catalog.format(' WHEN %L THEN %s', e.attribute_value,
                                          pdp._guarded_rule_sql(tbl, _masked_column_sql.attnum, e.rule, att.attname, att.atttypid, typ));
        attr := e.attr;
    END LOOP;
    IF arms OPERATOR(pg_catalog.<>) '' THEN
        base := pg_catalog.format('CASE %I::text%s ELSE %s END', attr, arms, base);
    END IF;
    RETURN pg_catalog.format('%s AS %I', base, att.attname);
END
$$;
COMMENT ON FUNCTION pdp._masked_column_sql(regclass, smallint) IS
    'a masked view''s select-list entry for one column: NULL for a credential, the guarded rule (per EAV attribute too), or the column';
CREATE OR REPLACE FUNCTION pdp._guarded_rule_sql(tbl regclass, attnum smallint, rule text, col name, typ oid, typ_text text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN rule IN ('pseudo_email', 'mask_email', 'pseudo_phone', 'mask_phone', 'pseudo_iin', 'fpe_iin', 'pseudo_name', 'mask_card')
                     OR (rule OPERATOR(pg_catalog.=) 'pseudo_ip' AND typ OPERATOR(pg_catalog.<>) 'inet'::regtype)
                THEN pg_catalog.format('CASE WHEN %1$I IS NULL OR pdp._rule_accepts(%2$L, %1$I::text) THEN (%3$s)::%4$s '
                                       'ELSE pdp._rule_failed(%5$s, %6$s::smallint, %2$L)::%4$s END',
                                       col, rule, pdp._rule_sql(rule, col, typ), typ_text, tbl::oid, attnum)
                ELSE pg_catalog.format('(%s)::%s', pdp._rule_sql(rule, col, typ), typ_text) END
$$;
COMMENT ON FUNCTION pdp._guarded_rule_sql(regclass, smallint, text, name, oid, text) IS
    'a rule''s SQL for a masked view column: guarded when the rule can refuse a value, cast to the column''s type';
CREATE OR REPLACE FUNCTION pdp.create_masked_view(tbl regclass, view_name text DEFAULT NULL) RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    cols text;
    vis text;
    target text;
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) create_masked_view.tbl)
       AND NOT EXISTS (SELECT 1 FROM pdp.credential_column c WHERE c.tbl OPERATOR(pg_catalog.=) create_masked_view.tbl)
       AND NOT EXISTS (SELECT 1 FROM pdp.eav_attribute e WHERE e.tbl OPERATOR(pg_catalog.=) create_masked_view.tbl
                         AND e.rule IS NOT NULL) THEN
        RAISE EXCEPTION 'table "%" has no column rules', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Declare rules with pdp.set_column_rule first.';
    END IF;
    IF view_name IS NOT NULL AND (view_name = '' OR length(view_name) > 63) THEN
        RAISE EXCEPTION 'view name must be 1 to 63 characters' USING ERRCODE = 'invalid_name';
    END IF;
    SELECT n.nspname, c.relname INTO rel
      FROM pg_class c JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid;
    target := pg_catalog.format('%I.%I', rel.nspname, coalesce(view_name, left(rel.relname, 56) || '_masked'));
    SELECT pg_catalog.string_agg(pdp._masked_column_sql(create_masked_view.tbl, a.attnum), ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) create_masked_view.tbl::oid AND a.attnum > 0 AND NOT a.attisdropped;
    -- The table's consent-aware visibility, applied by the view itself (see
    -- pdp._unprotected); a column registered later is not in it: fail closed
    -- (no subject column: no row while protected) and re-create the view.
    vis := pdp._visibility_sql(tbl);
    EXECUTE pg_catalog.format('CREATE OR REPLACE VIEW %s WITH (security_barrier) AS SELECT %s FROM %s '
                              'WHERE (SELECT pdp._unprotected(%L::regclass)) OR (%s)',
                              target, cols, tbl, tbl::oid, coalesce(vis, 'false'));
    -- The view is its table's owner's, whoever creates it: it reads the table
    -- with its owner's rights, never with a superuser's.
    IF (SELECT c.relowner FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) target::regclass::oid)
       OPERATOR(pg_catalog.<>) (SELECT c.relowner FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid) THEN
        EXECUTE pg_catalog.format('ALTER VIEW %s OWNER TO %I', target,
                                  (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid));
    END IF;
    EXECUTE pg_catalog.format('COMMENT ON VIEW %s IS %L', target,
                              pg_catalog.format('pdp_ext masked view of %s: columns with rules show the rule''s output', tbl));
    PERFORM pdp._audit('create_masked_view', tbl::text, NULL, pg_catalog.jsonb_build_object('view', target));
    RETURN target::regclass;
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

-- Credentials (src/sql/34_credentials.sql, whole) ---------------------------
-- Credentials and secrets (password hashes, secrets, tokens): columns that
-- authenticate rather than describe a learner.  They are never exported
-- (pdp.export_subject says the column exists and that its value is
-- withheld), never shown in masked views (NULL), never sampled by
-- discovery nor listed in the report.

CREATE TABLE pdp.credential_column (
    tbl          regclass    NOT NULL,
    col          name        NOT NULL,
    attnum       smallint    NOT NULL,
    declared_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    declared_by  name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (tbl, attnum)
);
COMMENT ON TABLE pdp.credential_column IS 'declared credential columns; read pdp.credential_columns instead';
COMMENT ON COLUMN pdp.credential_column.tbl IS 'the table';
COMMENT ON COLUMN pdp.credential_column.col IS 'the column''s name, kept in step with renames';
COMMENT ON COLUMN pdp.credential_column.attnum IS 'the column''s attribute number, resolved from col on every write';
COMMENT ON COLUMN pdp.credential_column.declared_at IS 'when it was declared';
COMMENT ON COLUMN pdp.credential_column.declared_by IS 'who declared it';
SELECT pg_catalog.pg_extension_config_dump('pdp.credential_column', '');

-- Validates every write to pdp.credential_column and resolves attnum from
-- col (so a restored dump finds its columns again).
CREATE OR REPLACE FUNCTION pdp._credential_column_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    att smallint;
BEGIN
    SELECT c.relkind, c.relowner, c.relnamespace, c.relname INTO rel
      FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) NEW.tbl::oid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', NEW.tbl::oid USING ERRCODE = 'undefined_table';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', rel.relname USING ERRCODE = 'wrong_object_type';
    END IF;
    IF rel.relnamespace IN ('pdp'::regnamespace, 'pg_catalog'::regnamespace, 'information_schema'::regnamespace) THEN
        RAISE EXCEPTION 'cannot declare a credential on table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT a.attnum INTO att FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) NEW.tbl::oid AND a.attname OPERATOR(pg_catalog.=) NEW.col
       AND NOT a.attisdropped AND a.attnum > 0;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', NEW.col, rel.relname USING ERRCODE = 'undefined_column';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.subject_column s
                WHERE s.tbl OPERATOR(pg_catalog.=) NEW.tbl AND s.attnum OPERATOR(pg_catalog.=) att) THEN
        RAISE EXCEPTION 'column "%" of table "%" is a registered subject column', NEW.col, rel.relname
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A subject column identifies a learner; a credential column authenticates one.';
    END IF;
    NEW.attnum := att;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._credential_column_check() IS 'trigger: validates and resolves every write to pdp.credential_column';
CREATE TRIGGER credential_column_check BEFORE INSERT OR UPDATE ON pdp.credential_column
    FOR EACH ROW EXECUTE FUNCTION pdp._credential_column_check();

-- Re-create the table's masked views (those pdp.create_masked_view made,
-- known by their comment) so that they follow the table's credentials.
CREATE OR REPLACE FUNCTION pdp._refresh_masked_views(tbl regclass) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v name;
    n integer := 0;
    prefix text := pg_catalog.format('pdp_ext masked view of %s:', tbl);
BEGIN
    FOR v IN SELECT c.relname FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_description d ON d.objoid OPERATOR(pg_catalog.=) c.oid
                AND d.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass AND d.objsubid OPERATOR(pg_catalog.=) 0
              WHERE c.relkind OPERATOR(pg_catalog.=) 'v'
                AND c.relnamespace OPERATOR(pg_catalog.=) (SELECT t.relnamespace FROM pg_catalog.pg_class t
                                                           WHERE t.oid OPERATOR(pg_catalog.=) tbl::oid)
                AND pg_catalog.left(d.description, pg_catalog.length(prefix)) OPERATOR(pg_catalog.=) prefix LOOP
        BEGIN
            PERFORM pdp.create_masked_view(tbl, v);
        EXCEPTION WHEN invalid_table_definition OR datatype_mismatch OR feature_not_supported THEN
            -- CREATE OR REPLACE VIEW cannot rename or retype a column: the
            -- view is older than the table's last rename or type change.
            RAISE EXCEPTION 'could not re-create masked view "%" of table "%"', v, pdp._relname(tbl)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'The table''s columns were renamed or retyped since the view was made; nothing was changed.',
                      HINT = 'Drop the view, call pdp.create_masked_view again and grant it again, then repeat this call.';
        END;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp._refresh_masked_views(regclass) IS
    're-creates the masked views pdp.create_masked_view made of a table; returns how many';

CREATE OR REPLACE FUNCTION pdp.declare_credential(tbl regclass, col name) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.declare_credential(regclass, name) IS
    'declares a column a credential (password hash, secret, token): never exported, never in masked views or reports; idempotent';

CREATE OR REPLACE FUNCTION pdp._api_declare_credential(tbl regclass, col name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF col IS NULL THEN
        RAISE EXCEPTION 'column must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO pdp.credential_column AS c (tbl, col, attnum, declared_by)
    VALUES (tbl, col, 0, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT credential_column_pkey DO NOTHING;
    IF FOUND THEN
        PERFORM pdp._refresh_masked_views(tbl);
        PERFORM pdp._audit('declare_credential', tbl::text, NULL, pg_catalog.jsonb_build_object('column', col));
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._api_declare_credential(regclass, name) IS
    'pdp.declare_credential''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE OR REPLACE FUNCTION pdp.drop_credential(tbl regclass, col name) RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_credential(regclass, name) IS
    'removes a credential declaration; false if the column was not declared';

CREATE OR REPLACE FUNCTION pdp._api_drop_credential(tbl regclass, col name) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF col IS NULL THEN
        RAISE EXCEPTION 'column must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM pdp.credential_column c
     WHERE c.tbl OPERATOR(pg_catalog.=) _api_drop_credential.tbl
       AND c.attnum OPERATOR(pg_catalog.=) (SELECT a.attnum FROM pg_catalog.pg_attribute a
                                             WHERE a.attrelid OPERATOR(pg_catalog.=) _api_drop_credential.tbl::oid
                                               AND a.attname OPERATOR(pg_catalog.=) _api_drop_credential.col
                                               AND NOT a.attisdropped);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pdp._refresh_masked_views(tbl);
    PERFORM pdp._audit('drop_credential', tbl::text, NULL, pg_catalog.jsonb_build_object('column', col));
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp._api_drop_credential(regclass, name) IS
    'pdp.drop_credential''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE VIEW pdp.credential_columns AS
SELECT c.tbl AS table_name, a.attname AS column_name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type, c.declared_at, c.declared_by
  FROM pdp.credential_column c
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.tbl::oid
                                AND a.attnum OPERATOR(pg_catalog.=) c.attnum AND NOT a.attisdropped;
COMMENT ON VIEW pdp.credential_columns IS 'declared credential columns with current names and types';

-- What pdp.export_subject shows of a table's rows (a JSON array of row
-- objects): every credential column's value replaced by a marker saying
-- the column exists and its value is withheld.
CREATE OR REPLACE FUNCTION pdp._withhold_credentials(tbl regclass, rows_ jsonb) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN w.cols IS NULL OR rows_ IS NULL OR pg_catalog.jsonb_typeof(rows_) OPERATOR(pg_catalog.<>) 'array' THEN rows_
                ELSE (SELECT pg_catalog.jsonb_agg(CASE WHEN pg_catalog.jsonb_typeof(r) OPERATOR(pg_catalog.=) 'object'
                                                       THEN r OPERATOR(pg_catalog.||) w.cols ELSE r END ORDER BY o)
                        FROM pg_catalog.jsonb_array_elements(rows_) WITH ORDINALITY AS e(r, o)) END
      FROM (SELECT pg_catalog.jsonb_object_agg(a.attname, '{"withheld": "credential"}'::jsonb) AS cols
              FROM pdp.credential_column c
              JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.tbl::oid
                                            AND a.attnum OPERATOR(pg_catalog.=) c.attnum AND NOT a.attisdropped
             WHERE c.tbl OPERATOR(pg_catalog.=) _withhold_credentials.tbl) w
$$;
COMMENT ON FUNCTION pdp._withhold_credentials(regclass, jsonb) IS
    'an export''s rows of a table with every credential column''s value replaced by {"withheld": "credential"}';


-- Does consent evidence hold a credential?  A key anywhere in it named like
-- a password, secret, token or key, or like a declared credential column
-- (a row copied into the evidence would carry the password hash).
-- pdp.grant_consent and pdp.import_consents refuse such evidence.
CREATE OR REPLACE FUNCTION pdp._credential_evidence(evidence jsonb) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.jsonb_path_query(evidence, 'strict $.**') v,
                      pg_catalog.jsonb_object_keys(CASE WHEN pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'object'
                                                        THEN v ELSE '{}'::jsonb END) k
         WHERE k OPERATOR(pg_catalog.~*) '(passw|secret|token|api_?key|private_?key|пароль)'
            OR EXISTS (SELECT 1 FROM pdp.credential_column c
                         JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.tbl::oid
                                                       AND a.attnum OPERATOR(pg_catalog.=) c.attnum
                        WHERE a.attname::text OPERATOR(pg_catalog.=) k))
$$;
COMMENT ON FUNCTION pdp._credential_evidence(jsonb) IS
    'whether consent evidence holds a key named like a password, secret, token or a declared credential column';

-- Credentials are never consent evidence.
CREATE OR REPLACE FUNCTION pdp.grant_consent(subject text, purpose text, policy_version text DEFAULT NULL,
                                  evidence jsonb DEFAULT '{}', valid_until timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    event bigint;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    IF policy_version IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM pdp.policy_version v WHERE v.version OPERATOR(pg_catalog.=) grant_consent.policy_version) THEN
        RAISE EXCEPTION 'unknown policy version' USING ERRCODE = 'undefined_object',
              HINT = 'pdp.publish_policy publishes versions; pdp.policies lists them.';
    END IF;
    IF evidence IS NULL OR jsonb_typeof(evidence) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'evidence must be a JSON object' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'For example {"form": "signup-v3", "ip": "…", "text_sha256": "…"}.';
    END IF;
    IF pdp._credential_evidence(evidence) THEN   -- credentials are never evidence (34_credentials.sql)
        RAISE EXCEPTION 'evidence must not hold a credential' USING ERRCODE = 'invalid_parameter_value',
              DETAIL = 'A key of the evidence names a password, secret, token or a declared credential column.',
              HINT = 'Record how consent was given (form, IP, hash of the text shown), never what authenticates the learner.';
    END IF;
    IF valid_until IS NOT NULL AND valid_until <= pg_catalog.now() THEN
        RAISE EXCEPTION 'valid_until must be in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pdp.consent_event (subject, purpose, action, policy_version, evidence, valid_until)
    VALUES (grant_consent.subject, grant_consent.purpose, 'grant', grant_consent.policy_version,
            grant_consent.evidence, grant_consent.valid_until)
    RETURNING id INTO event;
    INSERT INTO pdp.consent_state AS s (subject, purpose, event_id, policy_version, valid_until)
    VALUES (grant_consent.subject, grant_consent.purpose, event, grant_consent.policy_version, grant_consent.valid_until)
    ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
       SET event_id = EXCLUDED.event_id, policy_version = EXCLUDED.policy_version, valid_until = EXCLUDED.valid_until;
    PERFORM pdp._audit('grant_consent', purpose, subject,
                       pg_catalog.jsonb_build_object('event_id', event, 'policy_version', policy_version,
                                                     'time_limited', valid_until IS NOT NULL));
    RETURN event;
END
$$;
CREATE OR REPLACE FUNCTION pdp._import_consents(consents pdp.consent_import[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    hist record;
    total bigint;
    canon text[];
    upsert boolean;
BEGIN
    IF consents IS NULL THEN
        RAISE EXCEPTION 'consents must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- The history check must see every consent change committed before the
    -- import writes, and none may commit in between: grants and withdrawals
    -- (ROW EXCLUSIVE on pdp.consent_event) wait for the import to end, and
    -- it for them.  Under REPEATABLE READ or SERIALIZABLE the transaction's
    -- snapshot may predate the lock, so the check could miss a withdrawal.
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'pdp.import_consents must run in a READ COMMITTED transaction'
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = 'An older snapshot could miss a consent change another session committed before the import.',
                  HINT = 'Run it outside an explicit REPEATABLE READ or SERIALIZABLE transaction.';
    END IF;
    LOCK TABLE pdp.consent_event IN SHARE ROW EXCLUSIVE MODE;
    canon := pdp._import_check(consents);
    -- The first row not newer than the subject's recorded history for the
    -- purpose; and whether any subject may already hold a state for it:
    -- every withdrawal event follows a grant it ends, so a pair without
    -- more grants than withdrawals holds none.
    SELECT pg_catalog.min(u.n) FILTER (WHERE e.at OPERATOR(pg_catalog.>=) u.given_at) AS n,
           pg_catalog.count(*) FILTER (WHERE e.action OPERATOR(pg_catalog.=) 'grant')
             OPERATOR(pg_catalog.>) pg_catalog.count(*) FILTER (WHERE e.action OPERATOR(pg_catalog.=) 'withdraw') AS held
      INTO hist
      FROM ROWS FROM (pg_catalog.unnest(consents), pg_catalog.unnest(canon)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)
      JOIN pdp.consent_event e ON e.subject OPERATOR(pg_catalog.=) u.canon AND e.purpose OPERATOR(pg_catalog.=) u.purpose;
    IF hist.n IS NOT NULL THEN
        RAISE EXCEPTION 'row % of the import is not newer than the subject''s recorded consent history for the purpose', hist.n
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Nothing was imported.';
    END IF;
    upsert := hist.held;
    LOOP
        BEGIN
            EXECUTE
               'WITH ev AS (
                    INSERT INTO pdp.consent_event (subject, purpose, action, policy_version, evidence, valid_until, at, recorded_by)
                    SELECT u.canon, u.purpose, ''grant'', u.policy_version, coalesce(u.evidence, ''{}''), u.valid_until, u.given_at, $3
                      FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)
                     ORDER BY u.n
                    RETURNING id, subject, purpose, policy_version, valid_until)
                INSERT INTO pdp.consent_state AS s (subject, purpose, event_id, policy_version, valid_until)
                SELECT ev.subject, ev.purpose, ev.id, ev.policy_version, ev.valid_until FROM ev'
                || CASE WHEN upsert THEN '
                ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
                   SET event_id = EXCLUDED.event_id, policy_version = EXCLUDED.policy_version, valid_until = EXCLUDED.valid_until'
                   ELSE '' END
              USING consents, canon, SESSION_USER;  -- the column's default, read once
            GET DIAGNOSTICS total = ROW_COUNT;
            EXIT;
        EXCEPTION
            WHEN unique_violation THEN
                IF upsert THEN
                    RAISE;
                END IF;
                upsert := true;
            WHEN cardinality_violation THEN
                -- Two rows for one subject and purpose: only now is the input
                -- sorted to name the row.
                SELECT d.n INTO bad FROM (
                    SELECT u.n, pg_catalog.row_number() OVER (PARTITION BY u.canon, u.purpose ORDER BY u.n) AS k
                      FROM ROWS FROM (pg_catalog.unnest(consents), pg_catalog.unnest(canon)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)) d
                 WHERE d.k > 1 ORDER BY d.n LIMIT 1;
                RAISE EXCEPTION 'row % of the import repeats the subject and purpose of an earlier row', bad.n
                    USING ERRCODE = 'unique_violation', DETAIL = 'Nothing was imported.';
        END;
    END LOOP;
    PERFORM pdp._audit('import_consents', NULL, NULL, pg_catalog.jsonb_build_object('consents', total));
    RETURN total;
END
$$;

-- Catalog sync follows credential and EAV columns; export withholds credentials --
-- (pdp._on_sql_drop is re-created last, in 99_catalog_sync.sql: during the update it must not read objects later parts create.)
-- (pdp._on_alter_table is re-created last, in 99_catalog_sync.sql: during the update it must not read objects later parts create.)
CREATE OR REPLACE FUNCTION pdp.export_subject(subject text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    doc jsonb;
    data jsonb := '{}';
    t regclass;
    cond text;
    rows_ jsonb;
    erased jsonb;
    own_cond text;
    rets jsonb;
    todo jsonb := '[]';
    item jsonb;
    l record;
    v text[];
    seen jsonb := '{}';
    direct text;
    n bigint;
    linked jsonb := '{}';
    withheld jsonb := '{}';
    fit regtype[];
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    doc := pg_catalog.jsonb_build_object('format', 'pdp_ext subject export', 'format_version', 1,
                                         'generated_at', pg_catalog.now(), 'subject', subject);
    SELECT e.receipt INTO erased FROM pdp.erasure e
     WHERE e.subject_pseudonym OPERATOR(pg_catalog.=) pdp._subject_pseudonym(subject);
    IF FOUND THEN
        PERFORM pdp._audit_durable('export_subject', NULL, subject, '{"erased": true}');
        RETURN doc || pg_catalog.jsonb_build_object('erasure_receipt', erased);
    END IF;
    fit := pdp._subject_types(subject);
    FOR t IN SELECT DISTINCT s.tbl FROM pdp.subject_column s ORDER BY 1 LOOP
        cond := pdp._match_sql(t, fit);
        CONTINUE WHEN cond IS NULL;
        -- Read as the table's owner: nothing of the table runs with pdp_ext's rights.
        SELECT x.r INTO rows_
          FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t.*)) FROM %s t WHERE %s', t, cond),
                                  subject) AS x(r jsonb);
        rows_ := pdp._withhold_credentials(t, rows_);   -- credentials: named, value withheld (34_credentials.sql)
        IF rows_ IS NOT NULL THEN
            data := data || pg_catalog.jsonb_build_object(t::text, rows_);
        END IF;
        -- The rows the subject owns are followed through declared links.
        IF EXISTS (SELECT 1 FROM pdp.link x WHERE x.parent OPERATOR(pg_catalog.=) t) THEN
            own_cond := pdp._match_sql(t, fit,
                            CASE WHEN EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) t AND s.on_erase = 'delete')
                                 THEN ARRAY['delete'] ELSE ARRAY['set_null', 'set_value'] END);   -- as pdp._own_columns
            IF own_cond IS NOT NULL THEN
                SELECT pg_catalog.jsonb_agg(x.r) INTO rets
                  FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT %s FROM %s t WHERE %s', pdp._link_returning(t), t, own_cond),
                                          subject) AS x(r jsonb);
                IF rets IS NOT NULL THEN
                    todo := todo || pg_catalog.jsonb_build_object('tbl', t::oid, 'found', rets);
                END IF;
            END IF;
        END IF;
    END LOOP;
    -- Linked rows: those following the subject's rows, transitively, that
    -- are not in "data" already.  A dependant another subject wrote is
    -- withheld (their data, not the requester's) and only counted.  Each
    -- value is followed once per link, so cycles end.
    WHILE pg_catalog.jsonb_array_length(todo) > 0 LOOP
        item := todo->0;
        todo := todo OPERATOR(pg_catalog.-) 0;
        FOR l IN SELECT x.child, x.child_col, x.parent_col, pg_catalog.format_type(a.atttypid, NULL) AS typ
                   FROM pdp.link x
                   JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.child::oid AND a.attnum OPERATOR(pg_catalog.=) x.child_attnum
                  WHERE x.parent OPERATOR(pg_catalog.=) (item->>'tbl')::oid::regclass ORDER BY x.child::oid, x.child_attnum LOOP
            v := ARRAY(SELECT DISTINCT r->>('l:' || l.parent_col) FROM pg_catalog.jsonb_array_elements(item->'found') r
                        WHERE r->>('l:' || l.parent_col) IS NOT NULL
                       EXCEPT
                       SELECT pg_catalog.jsonb_array_elements_text(coalesce(seen->(l.child::oid::text || ':' || l.child_col), '[]')));
            CONTINUE WHEN pg_catalog.cardinality(v) = 0;
            seen := seen || pg_catalog.jsonb_build_object(l.child::oid::text || ':' || l.child_col,
                        coalesce(seen->(l.child::oid::text || ':' || l.child_col), '[]') || pg_catalog.to_jsonb(v));
            direct := coalesce(pdp._match_sql(l.child, fit), 'false');
            SELECT x.rows_, x.rets, x.n INTO rows_, rets, n
              FROM pdp._exec_as_owner(l.child, pg_catalog.format(
                       'SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t.*)) FILTER (WHERE NOT %4$s), '
                       'pg_catalog.jsonb_agg(%5$s) FILTER (WHERE NOT %4$s), pg_catalog.count(*) FILTER (WHERE %4$s) '
                       'FROM %1$s t WHERE t.%2$I OPERATOR(pg_catalog.=) ANY ($2::%3$s[]) AND NOT (%6$s)',
                       l.child, l.child_col, l.typ, pdp._owned_by_other_sql(l.child, '$3'), pdp._link_returning(l.child), direct),
                       subject, v, ARRAY[subject]) AS x(rows_ jsonb, rets jsonb, n bigint);
            IF rows_ IS NOT NULL THEN
                linked := linked || pg_catalog.jsonb_build_object(l.child::text,
                              coalesce(linked->(l.child::text), '[]') || rows_);
                todo := todo || pg_catalog.jsonb_build_object('tbl', l.child::oid, 'found', rets);
            END IF;
            IF n > 0 THEN
                withheld := withheld || pg_catalog.jsonb_build_object(l.child::text,
                                coalesce((withheld->>(l.child::text))::bigint, 0) + n);
            END IF;
        END LOOP;
    END LOOP;
    doc := doc || pg_catalog.jsonb_build_object(
        'data', data,
        'linked', linked,
        'linked_withheld', withheld,
        'consents', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c) ORDER BY c.event_id)
                                FROM pdp.consent_history(subject) c), '[]'),
        'active_consents', coalesce((SELECT pg_catalog.jsonb_agg(s.purpose ORDER BY s.purpose) FROM pdp.consent_state s
                                      WHERE s.subject OPERATOR(pg_catalog.=) export_subject.subject
                                        AND (s.valid_until IS NULL OR s.valid_until > pg_catalog.now())), '[]'),
        'restrictions', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('action', r.action, 'reason', r.reason, 'at', r.at) ORDER BY r.id)
                                   FROM pdp.restriction_event r WHERE r.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'),
        'holds', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', h.id, 'reason', h.reason, 'placed_at', h.placed_at,
                                                                                      'until', h.until, 'released_at', h.released_at) ORDER BY h.id)
                            FROM pdp.hold h WHERE h.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'),
        'disclosures', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('recipient', d.recipient, 'country', r.country,
                                                   'cross_border', r.country <> 'KZ', 'safeguards', r.safeguards, 'purpose', d.purpose,
                                                   'categories', d.categories, 'at', d.at) ORDER BY d.id)
                                  FROM pdp.disclosure d LEFT JOIN pdp.recipient r ON r.name OPERATOR(pg_catalog.=) d.recipient
                                 WHERE d.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'),
        'purposes', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('purpose', p.purpose, 'legal_basis', p.legal_basis,
                                                   'requires_consent', p.requires_consent, 'description', p.description) ORDER BY p.purpose)
                               FROM pdp.purpose p), '[]'),
        'retention', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', p.tbl::text, 'period', p.period::text,
                                                    'from', coalesce(p.anchor_column::text, 'insertion'), 'then', p.action) ORDER BY p.tbl::text)
                                FROM pdp.retention_policy p), '[]'),
        'requests', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', q.id, 'kind', q.kind, 'received_at', q.received_at,
                                                   'due_at', q.due_at, 'completed_at', q.completed_at, 'outcome', q.outcome) ORDER BY q.id)
                               FROM pdp.subject_request q WHERE q.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'));
    PERFORM pdp._audit_durable('export_subject', NULL, subject,
                       pg_catalog.jsonb_build_object('tables', (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_object_keys(data))));
    RETURN doc;
END
$$;

-- Discovery on real data -------------------------------------------------------
CREATE OR REPLACE FUNCTION pdp._is_placeholder(value text) RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_is_placeholder_sql';
COMMENT ON FUNCTION pdp._is_placeholder(text) IS
    'true for empty, blank and placeholder values (-, n/a, none, null, 0, ...), which discovery does not count against a validator';
CREATE OR REPLACE FUNCTION pdp._scan_text(value text) RETURNS integer[]
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_scan_text_sql';
COMMENT ON FUNCTION pdp._scan_text(text) IS
    'how many e-mail addresses, phone numbers and IINs a free text or JSON value holds, as {emails, phones, iins}; never the values';
INSERT INTO pdp.name_hint VALUES
    ('credential', '(passw|secret|token|hash|salt|api_?key|private_?key|пароль|құпия)'),
    ('identifier', '(^|_)(id_?number|student_?(no|num|number|id)|matric(ulation)?_?(no|number)?|employee_?(no|number)|табельн)($|_)'),
    ('free_text', '(^|_)(description|bio|about|message|fullmessage|comment|remarks?|feedback|signature|описание|пікір)($|_)');
-- EAV (entity-attribute-value) columns: one value column told apart by an
-- attribute column (Moodle's mdl_user_info_data.data by fieldid).  Each
-- attribute value is classified on its own; discovery samples the value
-- column per attribute, and masked views apply each attribute's rule.
CREATE TABLE pdp.eav_attribute (
    tbl              regclass    NOT NULL,
    value_col        name        NOT NULL,
    value_attnum     smallint    NOT NULL,
    attribute_col    name        NOT NULL,
    attribute_attnum smallint    NOT NULL,
    attribute_value  text        NOT NULL,
    category         text        NOT NULL,
    rule             text        REFERENCES pdp.rule_kind(rule),
    declared_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    declared_by      name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (tbl, value_attnum, attribute_value)
);
COMMENT ON TABLE pdp.eav_attribute IS 'classified attributes of EAV value columns; read pdp.eav_attributes instead';
COMMENT ON COLUMN pdp.eav_attribute.tbl IS 'the table';
COMMENT ON COLUMN pdp.eav_attribute.value_col IS 'the column holding the values';
COMMENT ON COLUMN pdp.eav_attribute.value_attnum IS 'its attribute number, resolved from value_col on every write';
COMMENT ON COLUMN pdp.eav_attribute.attribute_col IS 'the column telling the values apart (e.g. fieldid)';
COMMENT ON COLUMN pdp.eav_attribute.attribute_attnum IS 'its attribute number, resolved from attribute_col on every write';
COMMENT ON COLUMN pdp.eav_attribute.attribute_value IS 'the attribute column''s value (its text form) whose values this row classifies';
COMMENT ON COLUMN pdp.eav_attribute.category IS 'personal-data category of those values (iin, phone, birth_date, address, ...)';
COMMENT ON COLUMN pdp.eav_attribute.rule IS 'the rule masked views apply to those values, or NULL';
COMMENT ON COLUMN pdp.eav_attribute.declared_at IS 'when it was declared';
COMMENT ON COLUMN pdp.eav_attribute.declared_by IS 'who declared it';
SELECT pg_catalog.pg_extension_config_dump('pdp.eav_attribute', '');

-- Validates every write to pdp.eav_attribute and resolves both attnums.
CREATE OR REPLACE FUNCTION pdp._eav_attribute_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    val record;
    att smallint;
    misfit text;
BEGIN
    SELECT c.relkind, c.relowner, c.relnamespace, c.relname INTO rel
      FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) NEW.tbl::oid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', NEW.tbl::oid USING ERRCODE = 'undefined_table';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', rel.relname USING ERRCODE = 'wrong_object_type';
    END IF;
    IF rel.relnamespace IN ('pdp'::regnamespace, 'pg_catalog'::regnamespace, 'information_schema'::regnamespace) THEN
        RAISE EXCEPTION 'cannot register an EAV column of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT a.attnum, a.atttypid, a.atttypmod, a.attnotnull INTO val FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) NEW.tbl::oid AND a.attname OPERATOR(pg_catalog.=) NEW.value_col
       AND NOT a.attisdropped AND a.attnum > 0;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', NEW.value_col, rel.relname USING ERRCODE = 'undefined_column';
    END IF;
    SELECT a.attnum INTO att FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) NEW.tbl::oid AND a.attname OPERATOR(pg_catalog.=) NEW.attribute_col
       AND NOT a.attisdropped AND a.attnum > 0;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', NEW.attribute_col, rel.relname USING ERRCODE = 'undefined_column';
    END IF;
    IF att OPERATOR(pg_catalog.=) val.attnum THEN
        RAISE EXCEPTION 'the attribute column must differ from the value column' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.eav_attribute e WHERE e.tbl OPERATOR(pg_catalog.=) NEW.tbl
                 AND e.value_attnum OPERATOR(pg_catalog.=) val.attnum AND e.attribute_attnum OPERATOR(pg_catalog.<>) att) THEN
        RAISE EXCEPTION 'column "%" of table "%" is told apart by another attribute column', NEW.value_col, rel.relname
            USING ERRCODE = 'invalid_parameter_value', HINT = 'One value column has one attribute column; drop its attributes first.';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) NEW.tbl
                 AND s.attnum OPERATOR(pg_catalog.=) val.attnum) THEN
        RAISE EXCEPTION 'column "%" of table "%" is a registered subject column', NEW.value_col, rel.relname
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.category OPERATOR(pg_catalog.=) '' OR pg_catalog.length(NEW.category) > 63 THEN
        RAISE EXCEPTION 'category must be 1 to 63 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.attribute_value OPERATOR(pg_catalog.=) '' OR pg_catalog.length(NEW.attribute_value) > 200 THEN
        RAISE EXCEPTION 'attribute value must be 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.special_category sc WHERE sc.name OPERATOR(pg_catalog.=) pg_catalog.lower(NEW.category))
       AND NOT coalesce(pg_catalog.current_setting('pdp.allow_special_categories', true)::boolean, false) THEN
        RAISE EXCEPTION 'category "%" is a special category of personal data', NEW.category
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A superuser may set pdp.allow_special_categories = on if the operator processes them lawfully.';
    END IF;
    IF NEW.rule IS NOT NULL THEN
        misfit := pdp._rule_misfit(NEW.rule, val.atttypid, val.atttypmod, val.attnotnull);
        IF misfit IS NOT NULL THEN
            RAISE EXCEPTION 'rule "%" does not fit column "%" of table "%"', NEW.rule, NEW.value_col, rel.relname
                USING ERRCODE = 'datatype_mismatch',
                      DETAIL = pg_catalog.format('The column is %s: %s.', pg_catalog.format_type(val.atttypid, val.atttypmod), misfit);
        END IF;
    END IF;
    NEW.value_attnum := val.attnum;
    NEW.attribute_attnum := att;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._eav_attribute_check() IS 'trigger: validates and resolves every write to pdp.eav_attribute';
CREATE TRIGGER eav_attribute_check BEFORE INSERT OR UPDATE ON pdp.eav_attribute
    FOR EACH ROW EXECUTE FUNCTION pdp._eav_attribute_check();

CREATE OR REPLACE FUNCTION pdp.register_eav(tbl regclass, value_column name, attribute_column name, attribute_value text,
                                 category text, rule text DEFAULT NULL) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.register_eav(regclass, name, name, text, text, text) IS
    'classifies the values of an EAV column that have one attribute value (e.g. fieldid = ''1'' holds IINs), with an optional rule for masked views; one call per attribute, a repeated call replaces';

CREATE OR REPLACE FUNCTION pdp._api_register_eav(tbl regclass, value_column name, attribute_column name, attribute_value text,
                                      category text, rule text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF value_column IS NULL OR attribute_column IS NULL OR attribute_value IS NULL OR category IS NULL THEN
        RAISE EXCEPTION 'value column, attribute column, attribute value and category must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF rule IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pdp.rule_kind k WHERE k.rule OPERATOR(pg_catalog.=) _api_register_eav.rule) THEN
        RAISE EXCEPTION 'unknown column rule' USING ERRCODE = 'invalid_parameter_value', HINT = 'pdp.rule_kind lists the rules.';
    END IF;
    IF rule = 'shred' THEN  -- (src/sql/33_shred.sql)
        RAISE EXCEPTION 'rule "shred" cannot classify an EAV attribute'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Shredding encrypts values on write under their row''s subject''s key; an EAV attribute''s rule applies when the value is read.',
                  HINT = 'Shred the whole value column with pdp.set_column_rule, or choose another rule.';
    END IF;
    IF rule IN ('pseudonym', 'pseudo_email', 'pseudo_phone', 'pseudo_iin', 'pseudo_name', 'pseudo_ip', 'encrypt', 'fpe_iin')
       AND NOT pg_catalog.pg_has_role(pdp._caller(), 'pdp_pseudonymiser', 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to declare keyed column rule "%"', rule
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Declare it as a member of pdp_pseudonymiser, or choose a mask.';
    END IF;
    INSERT INTO pdp.eav_attribute AS e (tbl, value_col, value_attnum, attribute_col, attribute_attnum, attribute_value,
                                        category, rule, declared_by)
    VALUES (tbl, value_column, 0, attribute_column, 0, attribute_value, category, rule, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT eav_attribute_pkey DO UPDATE
       SET category = EXCLUDED.category, rule = EXCLUDED.rule, attribute_col = EXCLUDED.attribute_col,
           declared_at = pg_catalog.now(), declared_by = EXCLUDED.declared_by;
    PERFORM pdp._refresh_masked_views(tbl);
    PERFORM pdp._audit('register_eav', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('column', value_column, 'attribute_column', attribute_column,
                                                     'attribute_value', attribute_value, 'category', category, 'rule', rule));
END
$$;
COMMENT ON FUNCTION pdp._api_register_eav(regclass, name, name, text, text, text) IS
    'pdp.register_eav''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE OR REPLACE FUNCTION pdp.drop_eav(tbl regclass, value_column name, attribute_value text) RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_eav(regclass, name, text) IS
    'removes one attribute''s classification of an EAV column; false if there was none';

CREATE OR REPLACE FUNCTION pdp._api_drop_eav(tbl regclass, value_column name, attribute_value text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    DELETE FROM pdp.eav_attribute e
     WHERE e.tbl OPERATOR(pg_catalog.=) _api_drop_eav.tbl AND e.value_col OPERATOR(pg_catalog.=) _api_drop_eav.value_column
       AND e.attribute_value OPERATOR(pg_catalog.=) _api_drop_eav.attribute_value;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pdp._refresh_masked_views(tbl);
    PERFORM pdp._audit('drop_eav', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('column', value_column, 'attribute_value', attribute_value));
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp._api_drop_eav(regclass, name, text) IS
    'pdp.drop_eav''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE VIEW pdp.eav_attributes AS
SELECT e.tbl AS table_name, v.attname AS value_column, a.attname AS attribute_column, e.attribute_value,
       e.category, e.rule, e.declared_at, e.declared_by
  FROM pdp.eav_attribute e
  JOIN pg_catalog.pg_attribute v ON v.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND v.attnum OPERATOR(pg_catalog.=) e.value_attnum
                                AND NOT v.attisdropped
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) e.attribute_attnum
                                AND NOT a.attisdropped;
COMMENT ON VIEW pdp.eav_attributes IS 'classified attributes of EAV columns, with current column names';

-- Does the table hold data about a person?  It has a registered subject
-- column, a column naming a user, or a name like a table of people.
-- Discovery trusts column names (name hints) only in such tables.
CREATE OR REPLACE FUNCTION pdp._relates_to_subject(tbl regclass, people_only boolean DEFAULT false) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (NOT people_only AND EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _relates_to_subject.tbl))
        OR (NOT people_only AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attnum > 0 AND NOT a.attisdropped
                      AND a.attname OPERATOR(pg_catalog.~*) '^(user_?id|user|username|user_?id_?(from|to)|related_?user_?id|learner_?id|student_?id|person_?id|member_?id|author_?id|subject_?id|account_?id)$'))
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid
                      AND c.relname OPERATOR(pg_catalog.~*) '(^|_)(users?|persons?|people|learners?|students?|members?|accounts?|profiles?|employees?|staff|customers?|clients?)$')
$$;
COMMENT ON FUNCTION pdp._relates_to_subject(regclass, boolean) IS
    'whether a table holds data about a person (a registered subject column, a user-like column, or a people-like name; with people_only, the name only): discovery trusts column names only there';

-- A sample of a column's values, profiled: per attribute value (or one
-- group when attr_col is NULL) how many were sampled, how many were blank
-- or placeholders, the commonest category of the others and how many had
-- it, and, when scan is on, how many values hold e-mails, phones or IINs
-- inside their text.  Read as the table's owner; never a value.
CREATE OR REPLACE FUNCTION pdp._profile_column(tbl regclass, col name, pct float8, sample_rows integer, scan boolean, attr_col name)
RETURNS jsonb
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp._profile_column(regclass, name, float8, integer, boolean, name) IS
    'samples and profiles a column''s values (per attribute value of attr_col) as the table''s owner, for a caller who may read the table; counts only';

CREATE OR REPLACE FUNCTION pdp._api__profile_column(tbl regclass, col name, pct float8, sample_rows integer, scan boolean, attr_col name)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
BEGIN
    IF tbl IS NULL OR col IS NULL OR pct IS NULL OR sample_rows IS NULL OR scan IS NULL
       OR pct <= 0 OR pct > 100 OR sample_rows < 1 OR sample_rows > 1000000 THEN
        RAISE EXCEPTION 'table, column, a percentage in (0, 100], a sample size from 1 to 1000000 and scan must be given'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_catalog.has_table_privilege(pdp._caller(), tbl, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', pdp._relname(tbl) USING ERRCODE = 'insufficient_privilege';
    END IF;
    WITH s AS (SELECT x.a, x.v, pdp._is_placeholder(x.v) AS ph
                 FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                          'SELECT %5$s, x.%1$I::text FROM %2$s x TABLESAMPLE SYSTEM (%3$s) WHERE x.%1$I IS NOT NULL '
                          'ORDER BY pg_catalog.random() LIMIT %4$s',
                          col, tbl, pct, sample_rows,
                          CASE WHEN attr_col IS NULL THEN 'NULL::text' ELSE pg_catalog.format('x.%I::text', attr_col) END))
                      AS x(a text, v text)),
         c AS (SELECT s.a, s.ph, CASE WHEN NOT s.ph THEN pdp._classify_value(s.v) END AS k,
                      CASE WHEN scan AND NOT s.ph THEN pdp._scan_text(s.v) END AS h FROM s),
         g AS (SELECT c.a, pg_catalog.count(*) AS n, pg_catalog.count(*) FILTER (WHERE c.ph) AS blank,
                      pg_catalog.count(*) FILTER (WHERE c.h[1] > 0 OR c.h[2] > 0 OR c.h[3] > 0) AS text_values,
                      pg_catalog.count(*) FILTER (WHERE c.h[1] > 0) AS email_values,
                      pg_catalog.count(*) FILTER (WHERE c.h[2] > 0) AS phone_values,
                      pg_catalog.count(*) FILTER (WHERE c.h[3] > 0) AS iin_values,
                      coalesce(pg_catalog.sum(c.h[1]), 0) AS emails, coalesce(pg_catalog.sum(c.h[2]), 0) AS phones,
                      coalesce(pg_catalog.sum(c.h[3]), 0) AS iins
                 FROM c GROUP BY c.a),
         t AS (SELECT DISTINCT ON (c.a) c.a, c.k, pg_catalog.count(*) AS n FROM c WHERE c.k IS NOT NULL
                GROUP BY c.a, c.k ORDER BY c.a, pg_catalog.count(*) DESC, c.k)
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'attribute', g.a, 'sampled', g.n, 'blank', g.blank, 'top', t.k, 'top_n', coalesce(t.n, 0),
               'text_values', g.text_values, 'email_values', g.email_values, 'phone_values', g.phone_values,
               'iin_values', g.iin_values, 'emails', g.emails, 'phones', g.phones, 'iins', g.iins) ORDER BY g.a)
      INTO r
      FROM g LEFT JOIN t ON t.a IS NOT DISTINCT FROM g.a;
    RETURN coalesce(r, '[]');
END
$$;
COMMENT ON FUNCTION pdp._api__profile_column(regclass, name, float8, integer, boolean, name) IS
    'pdp._profile_column''s implementation, run as pdp_ext''s owner (callable by no role)';

-- One finding from a profile group (see pdp._profile_column), or NULL:
-- values that pass a validator (80% of the non-blank ones), else
-- personal data inside free text.  Integer columns are only ever IINs,
-- BINs or cards.
CREATE OR REPLACE FUNCTION pdp._finding(g jsonb, numeric_column boolean, by_name text,
                             OUT category text, OUT confidence real, OUT evidence text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint := (g->>'sampled')::bigint;
    blank bigint := (g->>'blank')::bigint;
    nonblank bigint := n - blank;
    top text := g->>'top';
    top_n bigint := (g->>'top_n')::bigint;
    tv bigint := coalesce((g->>'text_values')::bigint, 0);
    skipped text := CASE WHEN blank > 0 THEN pg_catalog.format('; %s empty or placeholder values not counted', blank) ELSE '' END;
BEGIN
    IF top IS NOT NULL AND nonblank > 0 AND top_n::float8 / nonblank >= 0.8
       AND (NOT numeric_column OR top IN ('iin', 'bin', 'card')) THEN
        category := top;
        confidence := LEAST(1.0, top_n::float8 / nonblank + CASE WHEN by_name = top THEN 0.1 ELSE 0 END);
        evidence := pg_catalog.format('%s of %s non-empty sampled values pass the %s check%s%s', top_n, nonblank,
                                      CASE top WHEN 'iin' THEN 'IIN check-digit' WHEN 'bin' THEN 'BIN check-digit'
                                               WHEN 'card' THEN 'Luhn card-number' WHEN 'email' THEN 'e-mail syntax'
                                               WHEN 'phone' THEN 'Kazakh phone-number' ELSE 'IP address' END,
                                      skipped,
                                      CASE WHEN by_name IS NOT NULL THEN '; the column''s name suggests ' || by_name ELSE '' END);
    ELSIF tv > 0 AND NOT numeric_column THEN
        category := 'free_text';
        confidence := LEAST(1.0, 0.6 + 0.4 * tv::float8 / GREATEST(nonblank, 1));
        evidence := pg_catalog.format('personal data inside the text of %s of %s non-empty sampled values: '
                                      '%s e-mail addresses (in %s values), %s phone numbers (in %s), %s IINs (in %s)',
                                      tv, nonblank, g->>'emails', g->>'email_values', g->>'phones', g->>'phone_values',
                                      g->>'iins', g->>'iin_values');
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._finding(jsonb, boolean, text) IS
    'a discovery finding from one profile group: validated values, or personal data inside free text; NULL when neither';

-- discover returns the EAV attribute too (a new output column).
DROP FUNCTION pdp.discover(name, integer);
CREATE OR REPLACE FUNCTION pdp.discover(schema_name name DEFAULT 'public', sample_rows integer DEFAULT 1000)
RETURNS TABLE (table_name regclass, column_name name, category text, confidence real, evidence text, attribute text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    a record;
    g jsonb;
    prof jsonb;
    f record;
    fc text;
    fconf real;
    fev text;
    est float8;
    pct float8;
    pct_text float8;
    relates boolean;
    by_name text;
    numeric_column boolean;
    textual boolean;
    found_any boolean;
    attr_col name;
    attr_name name;
BEGIN
    IF schema_name IS NULL OR sample_rows IS NULL OR sample_rows < 1 OR sample_rows > 1000000 THEN
        RAISE EXCEPTION 'schema_name must be given and sample_rows between 1 and 1000000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) schema_name) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema_name USING ERRCODE = 'invalid_schema_name';
    END IF;
    FOR t IN SELECT c.oid::regclass AS rel, c.reltuples, c.relpages FROM pg_class c JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
              WHERE n.nspname OPERATOR(pg_catalog.=) schema_name AND c.relkind IN ('r', 'p')
                AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                AND pg_catalog.has_table_privilege(c.oid, 'SELECT') ORDER BY c.relname LOOP
        -- A sample, never the whole table: a share of its pages, then at most
        -- sample_rows rows in random order (ten times as many for free text,
        -- where personal data is sparse).  A table never analysed is sized
        -- from its pages.
        est := CASE WHEN t.reltuples > 0 THEN t.reltuples
                    ELSE pg_catalog.pg_relation_size(t.rel)::float8 / 8192 * 50 END;
        pct := CASE WHEN est <= sample_rows * 3 THEN 100 ELSE LEAST(100, GREATEST(0.01, sample_rows * 300.0 / est)) END;
        pct_text := CASE WHEN est <= sample_rows * 30 THEN 100 ELSE LEAST(100, GREATEST(0.01, sample_rows * 3000.0 / est)) END;
        relates := pdp._relates_to_subject(t.rel);
        -- An attribute-like integer column makes the table a candidate EAV
        -- table.  Integer only: discovery prints the attribute's value
        -- (fieldid = 3), which in a text column could be a person's name.
        SELECT att.attname INTO attr_name FROM pg_attribute att
         WHERE att.attrelid OPERATOR(pg_catalog.=) t.rel::oid AND att.attnum > 0 AND NOT att.attisdropped
           AND att.atttypid IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype)
           AND att.attname OPERATOR(pg_catalog.~*) '^(field_?id|attribute_?id|attr_?id|property_?id|param(eter)?_?id|type_?id|key_?id)$'
         ORDER BY att.attnum LIMIT 1;
        FOR a IN SELECT att.attname, att.attnum, att.atttypid::regtype AS typ FROM pg_attribute att
                  WHERE att.attrelid OPERATOR(pg_catalog.=) t.rel::oid AND att.attnum > 0 AND NOT att.attisdropped
                    AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) t.rel
                                      AND r.attnum OPERATOR(pg_catalog.=) att.attnum)
                    AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) t.rel
                                      AND s.attnum OPERATOR(pg_catalog.=) att.attnum)
                    AND NOT EXISTS (SELECT 1 FROM pdp.credential_column cc WHERE cc.tbl OPERATOR(pg_catalog.=) t.rel
                                      AND cc.attnum OPERATOR(pg_catalog.=) att.attnum)
                  ORDER BY att.attnum LOOP
            table_name := t.rel;
            column_name := a.attname;
            attribute := NULL;
            numeric_column := a.typ IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype, 'numeric'::regtype,
                                        'real'::regtype, 'double precision'::regtype, 'oid'::regtype, 'boolean'::regtype);
            textual := a.typ IN ('text'::regtype, 'character varying'::regtype, 'json'::regtype, 'jsonb'::regtype);
            -- Column names count only in tables about people; integer and
            -- boolean columns are never e-mail, address, phone or name.
            by_name := NULL;
            IF relates THEN
                SELECT h.category INTO by_name FROM pdp.name_hint h WHERE a.attname ~* h.pattern
                 ORDER BY h.category OPERATOR(pg_catalog.=) 'credential' DESC, h.category OPERATOR(pg_catalog.=) 'email' DESC, h.category
                 LIMIT 1;
                -- A bare "name" names a person only in a table of people (mdl_event.name names an event).
                IF by_name OPERATOR(pg_catalog.=) 'name' AND a.attname OPERATOR(pg_catalog.~*) '^name$'
                   AND NOT pdp._relates_to_subject(t.rel, true) THEN
                    by_name := NULL;
                END IF;
                IF numeric_column AND by_name NOT IN ('iin', 'birth_date', 'identifier') THEN
                    by_name := NULL;
                END IF;
                IF by_name OPERATOR(pg_catalog.=) 'credential' AND a.typ NOT IN ('text'::regtype, 'character varying'::regtype,
                                                                               'character'::regtype, 'bytea'::regtype) THEN
                    by_name := NULL;
                END IF;
            END IF;
            -- Credentials are never sampled.
            IF by_name OPERATOR(pg_catalog.=) 'credential' THEN
                category := 'credential';
                confidence := 0.5;
                evidence := 'the column''s name suggests a credential (password, secret, token or hash); pdp.declare_credential keeps it out of exports and masked views';
                RETURN NEXT;
                CONTINUE;
            END IF;
            -- A registered EAV column: the attributes nobody classified, one by one.
            SELECT e.attribute_col INTO attr_col FROM pdp.eav_attribute e
             WHERE e.tbl OPERATOR(pg_catalog.=) t.rel AND e.value_attnum OPERATOR(pg_catalog.=) a.attnum LIMIT 1;
            IF FOUND THEN
                prof := pdp._profile_column(t.rel, a.attname, pct_text, LEAST(sample_rows * 10, 1000000), textual, attr_col);
                FOR g IN SELECT x FROM pg_catalog.jsonb_array_elements(prof) x
                          WHERE NOT EXISTS (SELECT 1 FROM pdp.eav_attribute e WHERE e.tbl OPERATOR(pg_catalog.=) t.rel
                                              AND e.value_attnum OPERATOR(pg_catalog.=) a.attnum
                                              AND e.attribute_value OPERATOR(pg_catalog.=) (x->>'attribute')) LOOP
                    SELECT x.category, x.confidence, x.evidence INTO fc, fconf, fev FROM pdp._finding(g, numeric_column, NULL) x;
                    IF fc IS NOT NULL THEN
                        category := fc;
                        confidence := fconf;
                        evidence := fev || '; an EAV attribute not yet classified (pdp.register_eav)';
                        attribute := pg_catalog.format('%s = %s', attr_col, g->>'attribute');
                        RETURN NEXT;
                    END IF;
                END LOOP;
                CONTINUE;
            END IF;
            found_any := false;
            IF textual OR numeric_column OR a.typ IN ('character'::regtype, 'inet'::regtype) THEN
                prof := pdp._profile_column(t.rel, a.attname, CASE WHEN textual THEN pct_text ELSE pct END,
                                            CASE WHEN textual THEN LEAST(sample_rows * 10, 1000000) ELSE sample_rows END, textual, NULL);
                g := prof->0;
                IF g IS NOT NULL THEN
                    -- As a whole column, values first; an EAV-shaped table's
                    -- mixed value column is then tried attribute by attribute,
                    -- and last the whole column's free text.
                    SELECT x.category, x.confidence, x.evidence INTO fc, fconf, fev
                      FROM pdp._finding(g - 'text_values', numeric_column, by_name) x;
                    IF fc IS NULL AND attr_name IS NOT NULL AND attr_name OPERATOR(pg_catalog.<>) a.attname
                       AND a.attname OPERATOR(pg_catalog.~*) '^(data|value|val|content)$' THEN
                        FOR f IN SELECT x AS g, y.category, y.confidence, y.evidence
                                   FROM pg_catalog.jsonb_array_elements(
                                            pdp._profile_column(t.rel, a.attname, pct_text, LEAST(sample_rows * 10, 1000000), textual, attr_name)) x,
                                        LATERAL pdp._finding(x, numeric_column, NULL) y
                                  -- At least three non-empty values per attribute: one-off settings are no pattern.
                                  WHERE y.category IS NOT NULL
                                    AND (x->>'sampled')::bigint - (x->>'blank')::bigint >= 3 LOOP
                            category := f.category;
                            confidence := f.confidence;
                            evidence := f.evidence || '; the column looks like an EAV value column (pdp.register_eav classifies it per attribute)';
                            attribute := pg_catalog.format('%s = %s', attr_name, f.g->>'attribute');
                            found_any := true;
                            RETURN NEXT;
                        END LOOP;
                        attribute := NULL;
                    END IF;
                    IF fc IS NULL AND NOT found_any THEN
                        SELECT x.category, x.confidence, x.evidence INTO fc, fconf, fev
                          FROM pdp._finding(g, numeric_column, by_name) x;
                    END IF;
                    IF fc IS NOT NULL THEN
                        category := fc;
                        confidence := fconf;
                        evidence := fev;
                        found_any := true;
                        RETURN NEXT;
                    END IF;
                END IF;
            END IF;
            IF NOT found_any AND by_name IS NOT NULL THEN
                category := by_name;
                confidence := CASE WHEN g IS NULL OR (g->>'sampled')::bigint OPERATOR(pg_catalog.=) (g->>'blank')::bigint
                                        OR by_name NOT IN ('email', 'phone', 'iin', 'ip', 'card') THEN 0.5 ELSE 0.3 END;
                evidence := CASE WHEN g IS NULL OR (g->>'sampled')::bigint = 0
                                 THEN 'the column''s name suggests ' || by_name || ' (no values sampled)'
                                 WHEN (g->>'sampled')::bigint OPERATOR(pg_catalog.=) (g->>'blank')::bigint
                                 THEN pg_catalog.format('the column''s name suggests %s (all %s sampled values are empty or placeholders)', by_name, g->>'sampled')
                                 WHEN by_name NOT IN ('email', 'phone', 'iin', 'ip', 'card')
                                 THEN pg_catalog.format('the column''s name suggests %s (%s non-empty sampled values; no validator checks %s)', by_name,
                                                        (g->>'sampled')::bigint - (g->>'blank')::bigint, by_name)
                                 ELSE pg_catalog.format('the column''s name suggests %s (%s of %s non-empty sampled values passed a check)', by_name,
                                                        coalesce(g->>'top_n', '0'), (g->>'sampled')::bigint - (g->>'blank')::bigint) END;
                RETURN NEXT;
            END IF;
            g := NULL;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp.discover(name, integer) IS
    'finds personal data nobody classified yet: validated values (blanks and placeholders not counted), personal data inside free text and JSON, EAV attributes one by one, column names in tables about people, credential candidates; never prints a value';

-- Columns of registered tables that nobody classified: not findings (no
-- evidence of personal data), but a list to review.
CREATE VIEW pdp.unclassified_columns AS
SELECT s.tbl AS table_name, a.attname AS column_name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type
  FROM (SELECT DISTINCT sc.tbl FROM pdp.subject_column sc) s
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE NOT EXISTS (SELECT 1 FROM pdp.subject_column x WHERE x.tbl OPERATOR(pg_catalog.=) s.tbl AND x.attnum OPERATOR(pg_catalog.=) a.attnum)
   AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) s.tbl AND r.attnum OPERATOR(pg_catalog.=) a.attnum)
   AND NOT EXISTS (SELECT 1 FROM pdp.credential_column c WHERE c.tbl OPERATOR(pg_catalog.=) s.tbl AND c.attnum OPERATOR(pg_catalog.=) a.attnum)
   AND NOT EXISTS (SELECT 1 FROM pdp.eav_attribute e WHERE e.tbl OPERATOR(pg_catalog.=) s.tbl AND e.value_attnum OPERATOR(pg_catalog.=) a.attnum);
COMMENT ON VIEW pdp.unclassified_columns IS
    'columns of registered tables with no rule, category, credential or EAV declaration and not a subject column: to review, not findings';

CREATE OR REPLACE VIEW pdp.processing_register AS
SELECT s.tbl AS table_name,
       r.col AS column_name,
       r.category,
       r.rule,
       (SELECT pg_catalog.array_agg(x.col ORDER BY x.attnum) FROM pdp.subject_column x
         WHERE x.tbl OPERATOR(pg_catalog.=) s.tbl) AS subject_columns,
       -- Purposes some role may declare and that role may read the table.
       (SELECT pg_catalog.array_agg(DISTINCT p.purpose || ' (' || p.legal_basis || ')')
          FROM pdp.purpose p JOIN pdp.purpose_grant g ON g.purpose OPERATOR(pg_catalog.=) p.purpose
         WHERE pg_catalog.has_table_privilege(g.role, s.tbl, 'SELECT')) AS purposes,
       (SELECT p.period::text || ' from ' || coalesce(p.anchor_column::text, 'insertion')
               || CASE WHEN p.fallback_column IS NOT NULL THEN ' (else ' || p.fallback_column::text || ')' ELSE '' END
               || ', then ' || p.action
          FROM pdp.retention_policy p WHERE p.tbl OPERATOR(pg_catalog.=) s.tbl) AS retention,
       (SELECT pg_catalog.array_agg(DISTINCT rc.name || ' (' || rc.country ||
                                    CASE WHEN rc.country <> 'KZ' THEN ', cross-border under ' || rc.safeguards ELSE '' END || ')')
          FROM pdp.disclosure d JOIN pdp.recipient rc ON rc.name OPERATOR(pg_catalog.=) d.recipient
         WHERE r.category OPERATOR(pg_catalog.=) ANY (d.categories)) AS recipients,
       CASE WHEN c.relforcerowsecurity AND EXISTS (SELECT 1 FROM pg_policy pp WHERE pp.polrelid OPERATOR(pg_catalog.=) c.oid
                                                     AND pp.polname = 'pdp_select') THEN 'protected, forced'
            WHEN EXISTS (SELECT 1 FROM pg_policy pp WHERE pp.polrelid OPERATOR(pg_catalog.=) c.oid AND pp.polname = 'pdp_select')
                 THEN 'protected'
            ELSE 'not protected' END
       || CASE WHEN r.col IS NOT NULL AND pdp._on_write_enabled(s.tbl) THEN ', pseudonymised on write' ELSE '' END AS protection
  FROM (SELECT DISTINCT sc.tbl FROM pdp.subject_column sc) s
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.tbl::oid
  -- Ruled columns (never credentials, which the register does not show),
  -- and each classified attribute of an EAV column as "column [attribute = value]".
  LEFT JOIN (SELECT x.tbl, x.col, x.category, x.rule FROM pdp.column_rule x
              WHERE NOT EXISTS (SELECT 1 FROM pdp.credential_column cc WHERE cc.tbl OPERATOR(pg_catalog.=) x.tbl
                                  AND cc.attnum OPERATOR(pg_catalog.=) x.attnum)
             UNION ALL
             SELECT e.tbl, pg_catalog.format('%s [%s = %s]', e.value_col, e.attribute_col, e.attribute_value)::name,
                    e.category, e.rule FROM pdp.eav_attribute e) r ON r.tbl OPERATOR(pg_catalog.=) s.tbl;
COMMENT ON VIEW pdp.processing_register IS
    'record of processing: per registered table and classified column, category, rule, subjects, purposes, retention, recipients, protection';

CREATE OR REPLACE FUNCTION pdp._report_json() RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    findings jsonb := '[]';
    sch name;
    retention jsonb := '[]';
    p record;
    soon bigint;
    overdue bigint;
    counts jsonb := pdp._report_counts();
    audit record;
BEGIN
    SELECT * INTO audit FROM pdp.verify_audit_log();
    FOR sch IN SELECT x FROM pg_catalog.jsonb_array_elements_text(counts->'schemas') x LOOP
        findings := findings || coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                        'table', d.table_name::text, 'column', d.column_name, 'attribute', d.attribute, 'category', d.category,
                        'confidence', pg_catalog.round(d.confidence::numeric, 2), 'evidence', d.evidence))
                      FROM pdp.discover(sch, 200) d), '[]');
    END LOOP;
    -- Real misses first: the most confident findings (values checked), then
    -- what only a column's name suggests, credential candidates last.
    findings := coalesce((SELECT pg_catalog.jsonb_agg(x ORDER BY (x->>'category') OPERATOR(pg_catalog.=) 'credential',
                                                      (x->>'confidence')::numeric DESC, x->>'table', x->>'column', x->>'attribute')
                            FROM pg_catalog.jsonb_array_elements(findings) x), '[]');
    FOR p IN SELECT * FROM pdp.retention_policy ORDER BY tbl::text LOOP
        soon := NULL;
        overdue := NULL;
        IF p.anchor_column IS NOT NULL THEN
            SELECT c.soon, c.overdue INTO soon, overdue FROM pdp._expiry_counts(p.tbl) c;
        ELSE
            SELECT pg_catalog.count(*) FILTER (WHERE g.expires_at >= pg_catalog.now() AND g.expires_at < pg_catalog.now() + interval '30 days'),
                   pg_catalog.count(*) FILTER (WHERE g.expires_at < pg_catalog.now())
              INTO soon, overdue FROM pdp.retention_tag g WHERE g.tbl OPERATOR(pg_catalog.=) p.tbl::oid;
        END IF;
        retention := retention || pg_catalog.jsonb_build_object('table', p.tbl::text, 'period', p.period::text,
                        'action', p.action, 'expiring_in_30_days', soon, 'expired_not_purged', overdue);
    END LOOP;
    r := pg_catalog.jsonb_build_object(
        'title', 'pdp_ext compliance report',
        'database', pg_catalog.current_database(),
        'generated_at', pg_catalog.now(),
        'register', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x) ORDER BY x.table_name::text, x.column_name)
                                FROM pdp.processing_register x), '[]'),
        'unclassified_findings', findings,
        'columns_without_rule', (SELECT pg_catalog.count(*) FROM pdp.unclassified_columns),
        'consents', counts->'consents',
        'retention', retention,
        'last_purge', (SELECT pg_catalog.jsonb_build_object('started_at', l.started_at, 'status', l.status, 'rows', l.total_rows,
                                                            'held_back', l.held_back)
                         FROM pdp.purge_run l WHERE NOT l.dry_run ORDER BY l.id DESC LIMIT 1),
        'scheduled_purge', pdp._purge_schedule_status(),
        'inactivity', (SELECT pg_catalog.jsonb_build_object('table', sr.activity_table::text, 'column', sr.activity_column,
                                                            'period', sr.period::text, 'never_values', sr.never_values,
                                                            'fallback_column', sr.fallback_column)
                         FROM pdp.subject_retention sr),
        'system_subjects', (SELECT pg_catalog.count(*) FROM pdp.system_subject),
        'holds_in_force', (SELECT pg_catalog.count(*) FROM pdp.holds h WHERE h.in_force),
        'restricted_subjects', counts->'restricted_subjects',
        'overdue_requests', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', o.id, 'kind', o.kind,
                                'jurisdiction', o.jurisdiction, 'due_at', o.due_at) ORDER BY o.due_at) FROM pdp.overdue_requests o), '[]'),
        'pending_notices', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('recipient', x.recipient, 'count', x.n) ORDER BY x.recipient)
                                       FROM (SELECT n.recipient, pg_catalog.count(*) AS n FROM pdp.pending_notices n GROUP BY 1) x), '[]'),
        'recipients', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(rc) - 'defined_by' ORDER BY rc.name) FROM pdp.recipients rc), '[]'),
        'audit', pg_catalog.to_jsonb(audit) OPERATOR(pg_catalog.-) 'nodes',
        'k_anonymity', pdp._k_anonymity_findings());
    -- On a Citus coordinator with workers (verify_audit_log gave nodes; else
    -- nothing changes): every node's audit chain and reversals, and the key
    -- fingerprints compared.
    IF audit.nodes IS NOT NULL THEN
        r := r OPERATOR(pg_catalog.||) pdp._report_nodes(audit.nodes, audit.ok);
    END IF;
    RETURN r;
END
$$;
CREATE OR REPLACE FUNCTION pdp.report(format text DEFAULT 'html') RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j jsonb;
    out text;
    x jsonb;
    maxv numeric;
    y integer;
    bars text;
BEGIN
    IF format IS NULL OR format NOT IN ('html', 'markdown', 'json') THEN
        RAISE EXCEPTION 'unknown report format' USING ERRCODE = 'invalid_parameter_value', HINT = 'Use html, markdown or json.';
    END IF;
    j := pdp._report_json();
    PERFORM pdp._audit('report', format);
    IF format = 'json' THEN
        RETURN pg_catalog.jsonb_pretty(j);
    END IF;

    IF format = 'markdown' THEN
        out := '# ' || pdp._md(j->>'title') || E'\n\nDatabase `' || pdp._md(j->>'database') || '`, ' || pdp._md(j->>'generated_at') || E'.\n\n';
        out := out || E'## Audit trail\n\n' || CASE WHEN (j->'audit'->>'ok')::boolean
                 THEN 'The hash chain verifies: ' || pdp._md(j->'audit'->>'entries') || E' entries.\n\n'
                 WHEN j ? 'nodes' AND j->'audit'->>'first_bad_id' IS NULL
                 THEN E'**The audit trail does not verify on every node** (see the table below).\n\n'
                 ELSE '**The hash chain is broken** at entry ' || pdp._md(j->'audit'->>'first_bad_id') || E'.\n\n' END;
        IF j ? 'nodes' THEN
            out := out || CASE WHEN (j->>'key_mismatch')::boolean
                                THEN E'**The key file differs between nodes**: pseudonyms computed on the flagged workers differ.\n\n'
                                WHEN (j->>'key_mismatch')::boolean IS NULL
                                THEN E'**The key fingerprints of some nodes could not be read.**\n\n'
                                ELSE E'Every node has the same key fingerprints.\n\n' END
                       || 'Reversals recorded: ' || pdp._md(j->'reversals'->>'total') || ', ' || pdp._md(j->'reversals'->>'on_workers')
                       || E' of them on workers.\n\n| node | audit chain | entries | reversals | key |\n|---|---|---:|---:|---|\n';
            FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'nodes') LOOP
                out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s |\n', pdp._md(x->>'node'),
                           CASE WHEN (x->>'ok')::boolean THEN 'verifies' WHEN (x->>'ok')::boolean IS FALSE THEN '**broken**: '
                                ELSE '**not verified**: ' END || CASE WHEN (x->>'ok')::boolean THEN '' ELSE pdp._md(coalesce(x->>'message', '')) END,
                           coalesce(pdp._md(x->>'entries'), '—'), coalesce(pdp._md(x->>'reversals'), '—'),
                           CASE WHEN (x->>'key_mismatch')::boolean THEN '**differs**' WHEN (x->>'key_mismatch')::boolean IS FALSE THEN 'same'
                                ELSE '—' END);
            END LOOP;
            out := out || E'\n';
        END IF;
        out := out || E'## Record of processing\n\n| table | column | category | rule | purposes | retention | recipients | protection |\n|---|---|---|---|---|---|---|---|\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'register') LOOP
            out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s | %s | %s | %s |\n', pdp._md(x->>'table_name'), coalesce(pdp._md(x->>'column_name'), '—'),
                       coalesce(pdp._md(x->>'category'), '—'), coalesce(pdp._md(x->>'rule'), '—'), coalesce(pdp._md(x->>'purposes'), '—'),
                       coalesce(pdp._md(x->>'retention'), '—'), coalesce(pdp._md(x->>'recipients'), '—'), pdp._md(x->>'protection'));
        END LOOP;
        out := out || E'\n## Personal data not yet classified\n\n';
        IF pg_catalog.jsonb_array_length(j->'unclassified_findings') = 0 THEN
            out := out || E'None found.\n';
        ELSE
            out := out || E'| table | column | category | confidence | evidence |\n|---|---|---|---|---|\n';
            FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'unclassified_findings') LOOP
                out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s |\n', pdp._md(x->>'table'),
                                                pdp._md((x->>'column') || coalesce(' [' || (x->>'attribute') || ']', '')), pdp._md(x->>'category'),
                                                pdp._md(x->>'confidence'), pdp._md(x->>'evidence'));
            END LOOP;
        END IF;
        out := out || E'\nColumns of registered tables without a rule (not findings; `pdp.unclassified_columns` lists them): '
                   || pdp._md(j->>'columns_without_rule') || E'.\n';
        out := out || E'\n## Consents\n\n| purpose | legal basis | active consents | withdrawn in the last 30 days |\n|---|---|---:|---:|\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'consents') LOOP
            out := out || pg_catalog.format(E'| %s | %s | %s | %s |\n', pdp._md(x->>'purpose'), pdp._md(x->>'legal_basis'), pdp._md(x->>'active'), pdp._md(x->>'withdrawn_last_30_days'));
        END LOOP;
        out := out || E'\n## Retention\n\n| table | period | action | expiring in 30 days | expired, not purged |\n|---|---|---|---:|---:|\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'retention') LOOP
            out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s |\n', pdp._md(x->>'table'), pdp._md(x->>'period'), pdp._md(x->>'action'),
                                            pdp._md(coalesce(x->>'expiring_in_30_days', 'not readable')),
                                            pdp._md(coalesce(x->>'expired_not_purged', 'not readable')));
        END LOOP;
        IF j->'inactivity' IS NOT NULL AND j->'inactivity' <> 'null'::jsonb THEN
            out := out || E'\nInactivity: a subject''s rows expire ' || pdp._md(j->'inactivity'->>'period') || ' after their last '
                       || pdp._md((j->'inactivity'->>'table') || '.' || (j->'inactivity'->>'column'))
                       || CASE WHEN pg_catalog.jsonb_array_length(j->'inactivity'->'never_values') > 0
                               THEN ' (' || pdp._md(pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.jsonb_array_elements_text(j->'inactivity'->'never_values')), ', '))
                                    || ' meaning never)' ELSE '' END
                       || coalesce(', else ' || pdp._md(j->'inactivity'->>'fallback_column'), '')
                       || '; system subjects, never purged: ' || pdp._md(j->>'system_subjects') || E'.\n';
        END IF;
        out := out || E'\nLast purge: ' || coalesce(pdp._md(j->'last_purge'->>'started_at') || ', ' || pdp._md(j->'last_purge'->>'status') || ', '
                                                    || pdp._md(j->'last_purge'->>'rows') || ' rows', 'none') || E'.\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(coalesce(j->'last_purge'->'held_back', '[]')) LOOP
            out := out || E'\n**Held back by the safety valve** (pdp.purge\\_max\\_share ' || pdp._md(x->>'max_share') || '): '
                       || coalesce('table ' || pdp._md(x->>'table'), 'inactivity of ' || pdp._md(x->>'inactivity')) || ', the run would have removed '
                       || pdp._md(x->>'would_remove') || ' of ' || pdp._md(x->>'of')
                       || CASE WHEN x ? 'table' THEN ' rows' ELSE ' subjects' END || E'.\n';
        END LOOP;
        out := out || E'\nScheduled purge: ' || CASE
                   WHEN NOT coalesce((j->'scheduled_purge'->>'scheduled')::boolean, false) THEN 'none'
                   WHEN (j->'scheduled_purge'->>'runnable')::boolean THEN 'job ' || pdp._md(j->'scheduled_purge'->>'job') || ' (`'
                        || pdp._md(j->'scheduled_purge'->>'schedule') || '`), pg_cron can run it'
                   ELSE 'job ' || pdp._md(j->'scheduled_purge'->>'job') || ' (`' || pdp._md(j->'scheduled_purge'->>'schedule')
                        || '`), **pg_cron cannot run it**: ' || pdp._md(coalesce(j->'scheduled_purge'->>'problem', '')) || '. Set '
                        || pdp._md(coalesce(j->'scheduled_purge'->>'fix', 'what the problem names')) END || E'.\n';
        IF (j->'scheduled_purge'->'failed_runs_30_days'->>'count')::bigint > 0 THEN
            out := out || E'\n**Scheduled runs that failed in the last 30 days: ' || pdp._md(j->'scheduled_purge'->'failed_runs_30_days'->>'count')
                       || '**, the last at ' || pdp._md(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_at', 'an unknown time')) || ': '
                       || pdp._md(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_message', '(no message)')) || E' (see pdp.purge\\_log).\n';
        END IF;
        out := out || E'\n## Open matters\n\n'
                   || '- Holds in force: ' || pdp._md(j->>'holds_in_force') || E'\n'
                   || '- Restricted subjects: ' || pdp._md(j->>'restricted_subjects') || E'\n'
                   || '- Overdue requests: ' || pg_catalog.jsonb_array_length(j->'overdue_requests') || E'\n'
                   || '- Pending rectification notices: ' || coalesce((SELECT pg_catalog.sum((e->>'count')::int)
                          FROM pg_catalog.jsonb_array_elements(j->'pending_notices') e), 0) || E'\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'k_anonymity') e WHERE (e->>'below_min_k')::boolean LOOP
            out := out || '- **Below k-anonymity ' || pdp._md(x->>'min_k') || '**: ' || pdp._md(x->>'table') || ' (k = '
                       || pdp._md(x->>'k') || E' over its quasi-identifiers)\n';
        END LOOP;
        RETURN out;
    END IF;

    -- HTML: one page, no external assets, readable printed; counts as bars.
    out := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>' || pdp._html(j->>'title') || '</title><style>'
        || 'body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}h1{margin-bottom:0}'
        || 'table{border-collapse:collapse;margin:1em 0;width:100%}th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}'
        || 'th{background:#eef}.ok{color:#060}.bad{color:#b00;font-weight:bold}.num{text-align:right}'
        || '@media print{body{margin:0}th{background:none}section{break-inside:avoid}}</style></head><body>'
        || '<h1>' || pdp._html(j->>'title') || '</h1><p>Database <code>' || pdp._html(j->>'database') || '</code>, '
        || pdp._html(j->>'generated_at') || '.</p>';
    out := out || '<section id="audit"><h2>Audit trail</h2>' || CASE WHEN (j->'audit'->>'ok')::boolean
               THEN '<p class="ok">The hash chain verifies: ' || (j->'audit'->>'entries') || ' entries.</p>'
               WHEN j ? 'nodes' AND j->'audit'->>'first_bad_id' IS NULL
               THEN '<p class="bad">The audit trail does not verify on every node (see the table below).</p>'
               ELSE '<p class="bad">The hash chain is broken at entry ' || pdp._html(j->'audit'->>'first_bad_id') || '.</p>' END;
    IF j ? 'nodes' THEN
        out := out || CASE WHEN (j->>'key_mismatch')::boolean
                            THEN '<p class="bad">The key file differs between nodes: pseudonyms computed on the flagged workers differ.</p>'
                            WHEN (j->>'key_mismatch')::boolean IS NULL
                            THEN '<p class="bad">The key fingerprints of some nodes could not be read.</p>'
                            ELSE '<p class="ok">Every node has the same key fingerprints.</p>' END
                   || '<p>Reversals recorded: ' || pdp._html(j->'reversals'->>'total') || ', ' || pdp._html(j->'reversals'->>'on_workers')
                   || ' of them on workers.</p><table><tr><th>Node</th><th>Audit chain</th><th>Entries</th><th>Reversals</th><th>Key</th></tr>';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'nodes') LOOP
            out := out || '<tr><td>' || pdp._html(x->>'node') || '</td>'
                       || CASE WHEN (x->>'ok')::boolean THEN '<td class="ok">verifies</td>'
                               WHEN (x->>'ok')::boolean IS FALSE THEN '<td class="bad">broken: ' || pdp._html(coalesce(x->>'message', '')) || '</td>'
                               ELSE '<td class="bad">not verified: ' || pdp._html(coalesce(x->>'message', '')) || '</td>' END
                       || '<td class="num">' || pdp._html(coalesce(x->>'entries', '—')) || '</td><td class="num">'
                       || pdp._html(coalesce(x->>'reversals', '—')) || '</td>'
                       || CASE WHEN (x->>'key_mismatch')::boolean THEN '<td class="bad">differs</td>'
                               WHEN (x->>'key_mismatch')::boolean IS FALSE THEN '<td class="ok">same</td>' ELSE '<td>—</td>' END || '</tr>';
        END LOOP;
        out := out || '</table>';
    END IF;
    out := out || '</section>';
    out := out || '<section id="register"><h2>Record of processing</h2><table><tr><th>Table</th><th>Column</th><th>Category</th><th>Rule</th>'
               || '<th>Purposes</th><th>Retention</th><th>Recipients</th><th>Protection</th></tr>';
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'register') LOOP
        out := out || '<tr><td>' || pdp._html(x->>'table_name') || '</td><td>' || pdp._html(coalesce(x->>'column_name', '—'))
                   || '</td><td>' || pdp._html(coalesce(x->>'category', '—')) || '</td><td>' || pdp._html(coalesce(x->>'rule', '—'))
                   || '</td><td>' || pdp._html(coalesce(x->>'purposes', '—')) || '</td><td>' || pdp._html(coalesce(x->>'retention', '—'))
                   || '</td><td>' || pdp._html(coalesce(x->>'recipients', '—')) || '</td><td>' || pdp._html(x->>'protection') || '</td></tr>';
    END LOOP;
    out := out || '</table></section><section id="findings"><h2>Personal data not yet classified</h2>';
    IF pg_catalog.jsonb_array_length(j->'unclassified_findings') = 0 THEN
        out := out || '<p class="ok">None found.</p>';
    ELSE
        out := out || '<table><tr><th>Table</th><th>Column</th><th>Category</th><th>Confidence</th><th>Evidence</th></tr>';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'unclassified_findings') LOOP
            out := out || '<tr><td>' || pdp._html(x->>'table') || '</td><td>'
                       || pdp._html((x->>'column') || coalesce(' [' || (x->>'attribute') || ']', '')) || '</td><td>'
                       || pdp._html(x->>'category') || '</td><td class="num">' || pdp._html(x->>'confidence') || '</td><td>'
                       || pdp._html(x->>'evidence') || '</td></tr>';
        END LOOP;
        out := out || '</table>';
    END IF;
    out := out || '<p>Columns of registered tables without a rule (not findings; <code>pdp.unclassified_columns</code> lists them): '
               || pdp._html(j->>'columns_without_rule') || '.</p>';
    -- Consents as horizontal bars (active, and withdrawn in the last 30 days).
    SELECT GREATEST(1, pg_catalog.max((e->>'active')::numeric)) INTO maxv FROM pg_catalog.jsonb_array_elements(j->'consents') e;
    bars := '';
    y := 0;
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'consents') LOOP
        bars := bars || pg_catalog.format('<text x="0" y="%s" font-size="12">%s</text><rect x="160" y="%s" width="%s" height="14" fill="#4a7"/>'
                                          '<text x="%s" y="%s" font-size="12">%s active, %s withdrawn (30 days)</text>',
                    y + 12, pdp._html(x->>'purpose'), y + 1, pg_catalog.round(300 * (x->>'active')::numeric / maxv) + 1,
                    pg_catalog.round(300 * (x->>'active')::numeric / maxv) + 166, y + 12, x->>'active', x->>'withdrawn_last_30_days');
        y := y + 20;
    END LOOP;
    out := out || '</section><section id="consents"><h2>Consents</h2>'
               || pg_catalog.format('<svg xmlns="http://www.w3.org/2000/svg" width="700" height="%s" role="img" aria-label="Consents per purpose">', y + 4)
               || bars || '</svg></section>';
    out := out || '<section id="retention"><h2>Retention</h2><table><tr><th>Table</th><th>Period</th><th>Action</th>'
               || '<th>Expiring in 30 days</th><th>Expired, not purged</th></tr>';
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'retention') LOOP
        out := out || '<tr><td>' || pdp._html(x->>'table') || '</td><td>' || pdp._html(x->>'period') || '</td><td>' || pdp._html(x->>'action')
                   || '</td><td class="num">' || coalesce(x->>'expiring_in_30_days', 'not readable') || '</td><td class="num">'
                   || coalesce(x->>'expired_not_purged', 'not readable') || '</td></tr>';
    END LOOP;
    out := out || '</table>';
    IF j->'inactivity' IS NOT NULL AND j->'inactivity' <> 'null'::jsonb THEN
        out := out || '<p>Inactivity: a subject''s rows expire ' || pdp._html(j->'inactivity'->>'period') || ' after their last <code>'
                   || pdp._html((j->'inactivity'->>'table') || '.' || (j->'inactivity'->>'column')) || '</code>'
                   || CASE WHEN pg_catalog.jsonb_array_length(j->'inactivity'->'never_values') > 0
                           THEN ' (' || pdp._html(pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.jsonb_array_elements_text(j->'inactivity'->'never_values')), ', '))
                                || ' meaning never)' ELSE '' END
                   || coalesce(', else <code>' || pdp._html(j->'inactivity'->>'fallback_column') || '</code>', '')
                   || '; system subjects, never purged: ' || pdp._html(j->>'system_subjects') || '.</p>';
    END IF;
    out := out || '<p>Last purge: ' || pdp._html(coalesce((j->'last_purge'->>'started_at') || ', ' || (j->'last_purge'->>'status')
                                                        || ', ' || (j->'last_purge'->>'rows') || ' rows', 'none')) || '.</p>';
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(coalesce(j->'last_purge'->'held_back', '[]')) LOOP
        out := out || '<p class="bad">Held back by the safety valve (pdp.purge_max_share ' || pdp._html(x->>'max_share') || '): '
                   || pdp._html(coalesce('table ' || (x->>'table'), 'inactivity of ' || (x->>'inactivity'))) || ', the run would have removed '
                   || pdp._html(x->>'would_remove') || ' of ' || pdp._html(x->>'of')
                   || CASE WHEN x ? 'table' THEN ' rows' ELSE ' subjects' END || '.</p>';
    END LOOP;
    out := out || CASE
               WHEN NOT coalesce((j->'scheduled_purge'->>'scheduled')::boolean, false) THEN '<p>Scheduled purge: none.</p>'
               WHEN (j->'scheduled_purge'->>'runnable')::boolean THEN '<p class="ok">Scheduled purge: job ' || pdp._html(j->'scheduled_purge'->>'job')
                    || ' (<code>' || pdp._html(j->'scheduled_purge'->>'schedule') || '</code>), pg_cron can run it.</p>'
               ELSE '<p class="bad">Scheduled purge: job ' || pdp._html(j->'scheduled_purge'->>'job') || ' (<code>'
                    || pdp._html(j->'scheduled_purge'->>'schedule') || '</code>), pg_cron cannot run it: '
                    || pdp._html(coalesce(j->'scheduled_purge'->>'problem', '')) || '. Set ' || pdp._html(coalesce(j->'scheduled_purge'->>'fix', 'what the problem names')) || '.</p>' END;
    IF (j->'scheduled_purge'->'failed_runs_30_days'->>'count')::bigint > 0 THEN
        out := out || '<p class="bad">Scheduled runs that failed in the last 30 days: ' || pdp._html(j->'scheduled_purge'->'failed_runs_30_days'->>'count')
                   || ', the last at ' || pdp._html(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_at', 'an unknown time')) || ': '
                   || pdp._html(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_message', '(no message)')) || ' (see pdp.purge_log).</p>';
    END IF;
    out := out || '</section>';
    out := out || '<section id="open"><h2>Open matters</h2><ul>'
               || '<li>Holds in force: ' || (j->>'holds_in_force') || '</li>'
               || '<li>Restricted subjects: ' || (j->>'restricted_subjects') || '</li>'
               || '<li>Overdue requests: ' || pg_catalog.jsonb_array_length(j->'overdue_requests') || '</li>'
               || '<li>Pending rectification notices: ' || coalesce((SELECT pg_catalog.sum((e->>'count')::int)
                      FROM pg_catalog.jsonb_array_elements(j->'pending_notices') e), 0) || '</li>'
               || coalesce((SELECT pg_catalog.string_agg('<li class="bad">Below k-anonymity ' || pdp._html(e->>'min_k') || ': '
                                                          || pdp._html(e->>'table') || ' (k = ' || pdp._html(e->>'k')
                                                          || ' over its quasi-identifiers)</li>', '' ORDER BY e->>'table')
                              FROM pg_catalog.jsonb_array_elements(j->'k_anonymity') e WHERE (e->>'below_min_k')::boolean), '')
               || '</ul></section></body></html>';
    RETURN out;
END
$$;

-- The leftover search (issue 17, point 4; src/sql/92_traces.sql, whole) --------
-- A search for leftovers (issue 17, point 4): where a learner's identifiers
-- still sit in the database, registered or not.  Counts per table and
-- column, never a value.

-- The learner's identifiers, normalised for matching: e-mail addresses
-- lower-cased; phone numbers as their ten national digits (+7 701 234 56 78,
-- 8 (701) 234-56-78 and 87012345678 are one number) or all their digits
-- for other countries; IINs as twelve digits; names lower-cased, four
-- characters or more.  Gathered from the subject's rows of every registered
-- table, from the columns classified (rule or category) as e-mail, phone,
-- IIN, username or name, and the EAV attributes so classified.  Read as each
-- table's owner.  Internal: the values never leave pdp's functions.
CREATE OR REPLACE FUNCTION pdp._subject_identifiers(subject text, OUT emails text[], OUT phones text[], OUT iins text[], OUT names text[])
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    cond text;
    c record;
    v text;
    kind text;
    d text;
BEGIN
    emails := '{}'; phones := '{}'; iins := '{}'; names := '{}';
    FOR t IN SELECT DISTINCT s.tbl FROM pdp.subject_column s ORDER BY 1 LOOP
        cond := pdp._subject_match(t, subject);
        CONTINUE WHEN cond IS NULL;
        FOR c IN SELECT pg_catalog.format('t.%I::text', a.attname) AS expr, NULL::text AS attr_cond,
                        CASE WHEN r.category IN ('email', 'phone', 'iin', 'name', 'username') THEN r.category
                             WHEN r.rule IN ('pseudo_email', 'mask_email') THEN 'email'
                             WHEN r.rule IN ('pseudo_phone', 'mask_phone') THEN 'phone'
                             WHEN r.rule IN ('pseudo_iin', 'fpe_iin') THEN 'iin'
                             WHEN r.rule OPERATOR(pg_catalog.=) 'pseudo_name' THEN 'name' END AS kind
                   FROM pdp.column_rule r
                   JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) r.attnum
                  WHERE r.tbl OPERATOR(pg_catalog.=) t
                 UNION ALL
                 SELECT pg_catalog.format('t.%I::text', v.attname),
                        pg_catalog.format('t.%I::text OPERATOR(pg_catalog.=) %L', a.attname, e.attribute_value),
                        CASE WHEN e.category IN ('email', 'phone', 'iin', 'name', 'username') THEN e.category
                             WHEN e.rule IN ('pseudo_email', 'mask_email') THEN 'email'
                             WHEN e.rule IN ('pseudo_phone', 'mask_phone') THEN 'phone'
                             WHEN e.rule IN ('pseudo_iin', 'fpe_iin') THEN 'iin' END
                   FROM pdp.eav_attribute e
                   JOIN pg_catalog.pg_attribute v ON v.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND v.attnum OPERATOR(pg_catalog.=) e.value_attnum
                   JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) e.attribute_attnum
                  WHERE e.tbl OPERATOR(pg_catalog.=) t LOOP
            CONTINUE WHEN c.kind IS NULL;
            FOR v IN SELECT x.v FROM pdp._exec_as_owner(t, pg_catalog.format(
                         'SELECT DISTINCT %s FROM %s t WHERE (%s)%s LIMIT 1000', c.expr, t, cond,
                         coalesce(' AND ' || c.attr_cond, '')), subject) AS x(v text)
                      WHERE x.v IS NOT NULL AND NOT pdp._is_placeholder(x.v) LOOP
                IF c.kind OPERATOR(pg_catalog.=) 'email' AND pg_catalog.strpos(v, '@') > 1 THEN
                    emails := emails || pg_catalog.lower(pg_catalog.btrim(v));
                ELSIF c.kind OPERATOR(pg_catalog.=) 'phone' THEN
                    d := pg_catalog.regexp_replace(v, '[^0-9]', '', 'g');
                    IF pg_catalog.length(d) OPERATOR(pg_catalog.=) 11 AND pg_catalog.left(d, 1) IN ('7', '8') THEN
                        d := pg_catalog.right(d, 10);
                    END IF;
                    IF pg_catalog.length(d) >= 10 THEN
                        phones := phones || d;
                    END IF;
                ELSIF c.kind OPERATOR(pg_catalog.=) 'iin' THEN
                    d := pg_catalog.regexp_replace(v, '[^0-9]', '', 'g');
                    IF pg_catalog.length(d) OPERATOR(pg_catalog.=) 12 THEN
                        iins := iins || d;
                    END IF;
                ELSIF c.kind IN ('name', 'username') AND pg_catalog.char_length(pg_catalog.btrim(v)) >= 4 THEN
                    names := names || pg_catalog.lower(pg_catalog.btrim(v));
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
    emails := ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(emails) x);
    phones := ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(phones) x);
    iins := ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(iins) x);
    names := ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(names) x);
END
$$;
COMMENT ON FUNCTION pdp._subject_identifiers(text) IS
    'internal: a subject''s e-mails, phones (national digits), IINs and names (lower case) from their classified columns, normalised for the trace search';

-- Where the given normalised identifiers (see pdp._subject_identifiers)
-- appear: every ordinary table outside pdp's and the system's schemas, one
-- scan per table and one count per text, varchar and json(b) column, read
-- as the table's owner.  Internal, so that erasure can gather a subject's
-- identifiers first and sweep after it has erased them.
CREATE OR REPLACE FUNCTION pdp._find_traces(emails text[], phones text[], iins text[], names text[])
RETURNS TABLE (table_name regclass, column_name name, rows bigint, registered boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    exprs text;
    counts bigint[];
BEGIN
    IF coalesce(pg_catalog.cardinality(emails), 0) + coalesce(pg_catalog.cardinality(phones), 0)
       + coalesce(pg_catalog.cardinality(iins), 0) + coalesce(pg_catalog.cardinality(names), 0) = 0 THEN
        RETURN;
    END IF;
    FOR t IN SELECT c.oid::regclass AS rel,
                    pg_catalog.array_agg(a.attname ORDER BY a.attnum) AS cols
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
                AND n.nspname NOT IN ('pdp', 'pg_catalog', 'information_schema', 'pg_toast', 'cron')
                AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
                AND a.atttypid IN ('text'::regtype, 'character varying'::regtype, 'json'::regtype, 'jsonb'::regtype)
              GROUP BY c.oid ORDER BY c.oid::regclass::text LOOP
        -- Normalised matching: e-mails and names in any case, phones with
        -- their separators removed, IINs with their spaces removed.  Each
        -- kind is one LIKE ANY over its patterns (the values, their LIKE
        -- wildcards escaped, between %), and a kind with no identifier is
        -- left out, so a row costs a few string operations, not a subquery
        -- per identifier.
        SELECT pg_catalog.string_agg(pg_catalog.format(
                   'pg_catalog.count(*) FILTER (WHERE t.%1$I IS NOT NULL AND (false%2$s%3$s%4$s))', u.c,
                   CASE WHEN pg_catalog.cardinality(emails) > 0 OR pg_catalog.cardinality(names) > 0
                        THEN pg_catalog.format(' OR pg_catalog.lower(t.%I::text) OPERATOR(pg_catalog.~~) ANY ($1)', u.c) ELSE '' END,
                   CASE WHEN pg_catalog.cardinality(phones) > 0
                        THEN pg_catalog.format(' OR pg_catalog.translate(t.%I::text, ''- ().'', '''') OPERATOR(pg_catalog.~~) ANY ($2)', u.c) ELSE '' END,
                   CASE WHEN pg_catalog.cardinality(iins) > 0
                        THEN pg_catalog.format(' OR pg_catalog.replace(t.%I::text, '' '', '''') OPERATOR(pg_catalog.~~) ANY ($3)', u.c) ELSE '' END),
                   ', ' ORDER BY u.o)
          INTO exprs FROM pg_catalog.unnest(t.cols) WITH ORDINALITY AS u(c, o);
        SELECT x.n INTO counts
          FROM pdp._exec_as_owner(t.rel, pg_catalog.format('SELECT ARRAY[%s]::bigint[] FROM %s t', exprs, t.rel),
                                  pdp._like_patterns(coalesce(emails, '{}') || coalesce(names, '{}')),
                                  pdp._like_patterns(coalesce(phones, '{}')), pdp._like_patterns(coalesce(iins, '{}')))
               AS x(n bigint[]);
        FOR i IN 1 .. pg_catalog.cardinality(t.cols) LOOP
            CONTINUE WHEN counts[i] = 0;
            table_name := t.rel;
            column_name := t.cols[i];
            rows := counts[i];
            registered := EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) t.rel)
                          AND (EXISTS (SELECT 1 FROM pdp.column_rule r JOIN pg_catalog.pg_attribute a
                                         ON a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) r.attnum
                                        WHERE r.tbl OPERATOR(pg_catalog.=) t.rel AND a.attname OPERATOR(pg_catalog.=) t.cols[i])
                               OR EXISTS (SELECT 1 FROM pdp.eav_attribute e JOIN pg_catalog.pg_attribute a
                                         ON a.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) e.value_attnum
                                        WHERE e.tbl OPERATOR(pg_catalog.=) t.rel AND a.attname OPERATOR(pg_catalog.=) t.cols[i]));
            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp._find_traces(text[], text[], text[], text[]) IS
    'internal: where normalised identifiers appear in any text, varchar or json(b) column outside pdp: table, column, row count, whether classified; never a value';

CREATE OR REPLACE FUNCTION pdp.find_subject_traces(subject text)
RETURNS TABLE (table_name regclass, column_name name, rows bigint, registered boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids record;
    kinds integer;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO ids FROM pdp._subject_identifiers(subject);
    kinds := pg_catalog.cardinality(ids.emails) + pg_catalog.cardinality(ids.phones)
             + pg_catalog.cardinality(ids.iins) + pg_catalog.cardinality(ids.names);
    IF kinds = 0 THEN
        RAISE NOTICE 'no identifiers of the subject were found in classified columns, so nothing was searched for'
            USING HINT = 'Classify e-mail, phone, IIN, username and name columns (pdp.set_column_rule, pdp.register_eav), and search before an erasure: afterwards the subject''s values are gone.';
    END IF;
    RETURN QUERY SELECT * FROM pdp._find_traces(ids.emails, ids.phones, ids.iins, ids.names);
    PERFORM pdp._audit('find_subject_traces', NULL, subject, pg_catalog.jsonb_build_object('identifiers', kinds));
END
$$;
COMMENT ON FUNCTION pdp.find_subject_traces(text) IS
    'where a subject''s e-mails, phones, IINs and names (from their classified columns, normalised) still appear in any text, varchar or json(b) column: table, column, row count, whether the column is classified; never a value';
CREATE OR REPLACE FUNCTION pdp.find_subject_traces(subject bigint)
RETURNS TABLE (table_name regclass, column_name name, rows bigint, registered boolean)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT * FROM pdp.find_subject_traces(subject::text) $$;
COMMENT ON FUNCTION pdp.find_subject_traces(bigint) IS 'find_subject_traces for a bigint or integer subject';
CREATE OR REPLACE FUNCTION pdp.find_subject_traces(subject uuid)
RETURNS TABLE (table_name regclass, column_name name, rows bigint, registered boolean)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT * FROM pdp.find_subject_traces(subject::text) $$;
COMMENT ON FUNCTION pdp.find_subject_traces(uuid) IS 'find_subject_traces for a uuid subject';

-- Privileges (src/sql/99_privileges.sql): new routines are PUBLIC's by default.
REVOKE ALL ON FUNCTION
    pdp.pseudo_ip_text(text), pdp._pseudo_ip_any(anyelement), pdp._rule_sql(text, name, oid), pdp._rule_accepts(text, text),
    pdp._rule_failed(oid, smallint, text), pdp._rule_failures(), pdp._masked_column_sql(regclass, smallint),
    pdp._guarded_rule_sql(regclass, smallint, text, name, oid, text),
    pdp._credential_column_check(), pdp._refresh_masked_views(regclass), pdp._credential_evidence(jsonb),
    pdp.declare_credential(regclass, name), pdp._api_declare_credential(regclass, name),
    pdp.drop_credential(regclass, name), pdp._api_drop_credential(regclass, name), pdp._withhold_credentials(regclass, jsonb),
    pdp._is_placeholder(text), pdp._scan_text(text), pdp._eav_attribute_check(),
    pdp.register_eav(regclass, name, name, text, text, text), pdp._api_register_eav(regclass, name, name, text, text, text),
    pdp.drop_eav(regclass, name, text), pdp._api_drop_eav(regclass, name, text),
    pdp._relates_to_subject(regclass, boolean), pdp._profile_column(regclass, name, float8, integer, boolean, name),
    pdp._api__profile_column(regclass, name, float8, integer, boolean, name), pdp._finding(jsonb, boolean, text),
    pdp.discover(name, integer), pdp._subject_identifiers(text), pdp._find_traces(text[], text[], text[], text[]),
    pdp.find_subject_traces(text), pdp.find_subject_traces(bigint), pdp.find_subject_traces(uuid)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.pseudo_ip_text(text), pdp._pseudo_ip_any(anyelement) TO pdp_pseudonymiser;
GRANT EXECUTE ON FUNCTION pdp._rule_sql(text, name, oid), pdp._masked_column_sql(regclass, smallint),
                          pdp._guarded_rule_sql(regclass, smallint, text, name, oid, text) TO pdp_admin;
-- A masked view's readers run its guard and its failure counter (which
-- hold no key and never see a value); the counters are read through
-- pdp.rule_failures.
GRANT EXECUTE ON FUNCTION pdp._rule_accepts(text, text), pdp._rule_failed(oid, smallint, text) TO PUBLIC;
GRANT SELECT ON pdp.rule_failures TO pdp_admin, pdp_auditor;
-- Credentials: declared by their table's owner (a pdp_admin member).
GRANT SELECT ON pdp.credential_column, pdp.credential_columns TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.declare_credential(regclass, name), pdp.drop_credential(regclass, name) TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.discover(name, integer), pdp.report(text), pdp._report_json(), pdp._html(text), pdp._md(text),
                          pdp._classify_value(text), pdp._is_placeholder(text), pdp._scan_text(text),
                          pdp._relates_to_subject(regclass, boolean), pdp._finding(jsonb, boolean, text),
                          pdp._profile_column(regclass, name, float8, integer, boolean, name) TO pdp_admin, pdp_auditor;
GRANT SELECT ON pdp.eav_attribute, pdp.eav_attributes, pdp.unclassified_columns TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.register_eav(regclass, name, name, text, text, text), pdp.drop_eav(regclass, name, text) TO pdp_admin;
GRANT SELECT ON pdp.processing_register TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.find_subject_traces(text), pdp.find_subject_traces(bigint), pdp.find_subject_traces(uuid) TO pdp_admin;
