-- Column rules: what each personal-data column gets, and the three ways a
-- rule applies: on write (a C trigger), statically (apply_rules) and
-- dynamically (a masked view).

-- The rules pdp_ext knows, with the types they read and write.
CREATE TABLE pdp.rule_kind (
    rule              text PRIMARY KEY,
    input_type        regtype,              -- NULL: any type
    keeps_length      boolean NOT NULL,     -- output never longer than input
    min_length        integer,              -- for bounded character columns
    expr              text NOT NULL,        -- format() template; %1$I is the column
    description       text NOT NULL
);
COMMENT ON TABLE pdp.rule_kind IS 'the column rules pdp_ext can apply (read-only)';
COMMENT ON COLUMN pdp.rule_kind.rule IS 'rule name, as given to pdp.set_column_rule';
COMMENT ON COLUMN pdp.rule_kind.input_type IS 'the column type the rule reads and writes (character types for text); NULL for any type';
COMMENT ON COLUMN pdp.rule_kind.keeps_length IS 'whether the output is never longer than the input, so bounded varchar/char columns can take it';
COMMENT ON COLUMN pdp.rule_kind.min_length IS 'smallest varchar(n) a rule that does not keep length may be declared on (longer outputs are still refused when written)';
COMMENT ON COLUMN pdp.rule_kind.expr IS 'SQL expression template; %1$I stands for the quoted column name';
COMMENT ON COLUMN pdp.rule_kind.description IS 'what the rule does';
INSERT INTO pdp.rule_kind VALUES
    ('pseudonym',         'text', false, 32,   'pdp.pseudonym(%1$I)',                    'keyed 128-bit pseudonym (32 hex digits)'),
    ('pseudo_email',      'text', false, 64,   'pdp.pseudo_email(%1$I)',                 'well-formed pseudonymous e-mail, domain kept'),
    ('pseudo_phone',      'text', true,  NULL, 'pdp.pseudo_phone(%1$I)',                 'collision-free phone pseudonym, layout kept'),
    ('pseudo_iin',        'text', true,  NULL, 'pdp.pseudo_iin(%1$I)',                   'collision-free valid IIN, birth year kept'),
    ('pseudo_name',       'text', false, 48,   'pdp.pseudo_name(%1$I)',                  'realistic replacement name'),
    ('pseudo_ip',         'inet', true,  NULL, 'pdp._pseudo_ip_any(%1$I)',               'collision-free IP address pseudonym (inet, text or varchar)'),
    ('encrypt',           'text', false, NULL, 'pdp.encrypt(%1$I)',                      'reversible AES-SIV token (pdp_reidentifier decrypts)'),
    ('fpe_iin',           'text', true,  NULL, 'pdp.fpe_iin(%1$I)',                      'reversible IIN token that is a valid IIN'),
    ('mask',              'text', true,  NULL, 'pdp.mask(%1$I)',                         'every character masked'),
    ('mask_email',        'text', true,  NULL, 'pdp.mask_email(%1$I)',                   'first character and domain shown'),
    ('mask_phone',        'text', true,  NULL, 'pdp.mask_phone(%1$I)',                   'country code and last two digits shown'),
    ('mask_card',         'text', true,  NULL, 'pdp.mask_card(%1$I)',                    'first six and last four digits shown'),
    ('generalize_month',  'date', true,  NULL, 'pdp.generalize_date(%1$I, ''month'')',   'first day of the month'),
    ('generalize_year',   'date', true,  NULL, 'pdp.generalize_date(%1$I, ''year'')',    'first day of the year'),
    ('generalize_decade', 'date', true,  NULL, 'pdp.generalize_date(%1$I, ''decade'')',  'first day of the decade'),
    ('null',              NULL,   true,  NULL, 'NULL',                                   'the value is removed');

CREATE TABLE pdp.column_rule (
    tbl        regclass    NOT NULL,
    col        name        NOT NULL,
    attnum     smallint    NOT NULL,
    rule       text        NOT NULL REFERENCES pdp.rule_kind(rule),
    category   text,
    set_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by     name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (tbl, attnum)
);
COMMENT ON TABLE pdp.column_rule IS 'declared column rules; read pdp.column_rules instead';
COMMENT ON COLUMN pdp.column_rule.tbl IS 'the table';
COMMENT ON COLUMN pdp.column_rule.col IS 'the column''s name, kept in step with renames';
COMMENT ON COLUMN pdp.column_rule.attnum IS 'the column''s attribute number, resolved from col on every write';
COMMENT ON COLUMN pdp.column_rule.rule IS 'the rule (pdp.rule_kind)';
COMMENT ON COLUMN pdp.column_rule.category IS 'personal-data category (email, phone, iin, name, card, ip, ...), free text';
COMMENT ON COLUMN pdp.column_rule.set_at IS 'when the rule was declared';
COMMENT ON COLUMN pdp.column_rule.set_by IS 'who declared it';
SELECT pg_catalog.pg_extension_config_dump('pdp.column_rule', '');

-- Why a rule cannot go on a column, or NULL if it can.
CREATE FUNCTION pdp._rule_misfit(rule text, typ oid, typmod integer, not_null boolean) RETURNS text
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
COMMENT ON FUNCTION pdp._rule_misfit(text, oid, integer, boolean) IS
    'why a rule cannot be declared on a column of this type, or NULL';

-- The SQL expression applying a rule to a column of type typ: the rule's
-- template, except pseudo_ip, named by the column's type: pdp.pseudo_ip on
-- inet, pdp.pseudo_ip_text on text and varchar (the template's
-- pdp._pseudo_ip_any picks at run time, for erasure and purge).
CREATE FUNCTION pdp._rule_sql(rule text, col name, typ oid) RETURNS text
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
CREATE FUNCTION pdp._rule_accepts(rule text, value text) RETURNS boolean
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_rule_accepts';
COMMENT ON FUNCTION pdp._rule_accepts(text, text) IS
    'whether the rule''s function returns a value for this input instead of raising (the same parsers); blanks are accepted';
-- STABLE and PARALLEL SAFE, though it counts: a counter in shared memory is
-- no database write (a parallel worker counts into the same array), and a
-- volatile function would keep every ruled column of a masked view in the
-- plan (and its keyed functions' privilege checks) even where a query does
-- not read it.  A value is counted when a query shows it.
CREATE FUNCTION pdp._rule_failed(tbl oid, attnum smallint, rule text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_rule_failed';
COMMENT ON FUNCTION pdp._rule_failed(oid, smallint, text) IS
    'counts a value a rule could not handle in a masked view (table, column, rule; never the value) and returns the constant shown instead';
CREATE FUNCTION pdp._rule_failures(OUT tbl oid, OUT attnum smallint, OUT rule text, OUT failures bigint)
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

-- Validates every write to pdp.column_rule (like the registry's trigger).
CREATE FUNCTION pdp._column_rule_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    att record;
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
        RAISE EXCEPTION 'cannot set a rule on table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT a.attnum, a.atttypid, a.atttypmod, a.attnotnull INTO att
      FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) NEW.tbl::oid AND a.attname OPERATOR(pg_catalog.=) NEW.col
       AND NOT a.attisdropped AND a.attnum > 0;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', NEW.col, rel.relname USING ERRCODE = 'undefined_column';
    END IF;
    misfit := pdp._rule_misfit(NEW.rule, att.atttypid, att.atttypmod, att.attnotnull);
    IF misfit IS NOT NULL THEN
        RAISE EXCEPTION 'rule "%" does not fit column "%" of table "%"', NEW.rule, NEW.col, rel.relname
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = pg_catalog.format('The column is %s: %s.', pg_catalog.format_type(att.atttypid, att.atttypmod), misfit);
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.subject_column s
                WHERE s.tbl OPERATOR(pg_catalog.=) NEW.tbl AND s.attnum OPERATOR(pg_catalog.=) att.attnum) THEN
        RAISE EXCEPTION 'column "%" of table "%" is a registered subject column', NEW.col, rel.relname
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Subject columns link a learner''s rows; pseudonymise them in copies, not in place.';
    END IF;
    IF NEW.category IS NOT NULL AND (NEW.category = '' OR length(NEW.category) > 63) THEN
        RAISE EXCEPTION 'category must be 1 to 63 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Special categories (GDPR Art. 9) only where the operator has said so.
    IF NEW.category IS NOT NULL
       AND pg_catalog.to_regclass('pdp.special_category') IS NOT NULL
       AND EXISTS (SELECT 1 FROM pdp.special_category sc WHERE sc.name OPERATOR(pg_catalog.=) pg_catalog.lower(NEW.category))
       AND NOT coalesce(pg_catalog.current_setting('pdp.allow_special_categories', true)::boolean, false) THEN
        RAISE EXCEPTION 'category "%" is a special category of personal data', NEW.category
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Health, religion, political views, biometrics and the like need a legal ground of their own (GDPR Art. 9).',
                  HINT = 'A superuser may set pdp.allow_special_categories = on if the operator processes them lawfully.';
    END IF;
    NEW.attnum := att.attnum;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._column_rule_check() IS 'trigger: validates and resolves every write to pdp.column_rule';
CREATE TRIGGER column_rule_check BEFORE INSERT OR UPDATE ON pdp.column_rule
    FOR EACH ROW EXECUTE FUNCTION pdp._column_rule_check();

-- The on-write trigger function (C).  Its arguments are (column, rule) pairs.
CREATE FUNCTION pdp._pseudonymise_on_write() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_pseudonymise_on_write';
COMMENT ON FUNCTION pdp._pseudonymise_on_write() IS
    'trigger: applies column rules to inserted and updated values so raw values never land';

-- Is the on-write trigger installed on tbl?
CREATE FUNCTION pdp._on_write_enabled(tbl regclass) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_trigger t
                    WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl::oid
                      AND t.tgfoid OPERATOR(pg_catalog.=) 'pdp._pseudonymise_on_write()'::regprocedure::oid)
$$;
COMMENT ON FUNCTION pdp._on_write_enabled(regclass) IS 'whether pdp.pseudonymise_on_write is on for the table';

-- (Re)create or drop the on-write trigger so that its arguments are the
-- table's current rules.  Runs as its caller: the table's owner, or the
-- event triggers (which run as the extension's owner).
CREATE FUNCTION pdp._sync_on_write_trigger(tbl regclass, enable boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    args text;
BEGIN
    IF pdp._on_write_enabled(tbl) THEN
        EXECUTE pg_catalog.format('DROP TRIGGER pdp_pseudonymise_on_write ON %s', tbl);
    END IF;
    IF NOT enable THEN
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('%L, %L', r.col, r.rule), ', ' ORDER BY r.attnum)
      INTO args
      FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) _sync_on_write_trigger.tbl;
    IF args IS NULL THEN
        RETURN;
    END IF;
    PERFORM pdp._refuse_on_citus(tbl, 'install the on-write trigger on');
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER pdp_pseudonymise_on_write BEFORE INSERT OR UPDATE ON %s '
        'FOR EACH ROW EXECUTE FUNCTION pdp._pseudonymise_on_write(%s)', tbl, args);
END
$$;
COMMENT ON FUNCTION pdp._sync_on_write_trigger(regclass, boolean) IS
    'recreates (or drops) the on-write trigger with the table''s current rules';

-- A table's name for messages (unquoted, as PostgreSQL's own messages print it).
CREATE FUNCTION pdp._relname(tbl regclass) RETURNS name
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce((SELECT c.relname FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid), tbl::text::name) $$;
COMMENT ON FUNCTION pdp._relname(regclass) IS 'a table''s name for messages';

-- Owner check shared by the rule functions.
CREATE FUNCTION pdp._require_owner(tbl regclass) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relname, c.relowner INTO rel FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', tbl::oid USING ERRCODE = 'undefined_table';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._require_owner(regclass) IS 'raises unless the caller (pdp._caller()) owns the table';

CREATE FUNCTION pdp.set_column_rule(tbl regclass, col name, rule text, category text DEFAULT NULL)
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.set_column_rule(regclass, name, text, text) IS
    'declares (or replaces) the rule a column gets; refused when the rule''s output does not fit the column';

CREATE FUNCTION pdp._api_set_column_rule(tbl regclass, col name, rule text, category text)
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
COMMENT ON FUNCTION pdp._api_set_column_rule(regclass, name, text, text) IS
    'pdp.set_column_rule''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE FUNCTION pdp.drop_column_rule(tbl regclass, col name) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_column_rule(regclass, name) IS 'removes a column''s rule';

CREATE FUNCTION pdp._api_drop_column_rule(tbl regclass, col name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    DELETE FROM pdp.column_rule r
     WHERE r.tbl OPERATOR(pg_catalog.=) _api_drop_column_rule.tbl AND r.col OPERATOR(pg_catalog.=) _api_drop_column_rule.col;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" has no rule', col USING ERRCODE = 'undefined_object';
    END IF;
    IF pdp._on_write_enabled(tbl) THEN
        PERFORM pdp._sync_on_write_trigger(tbl, true);
    END IF;
    PERFORM pdp._sync_rectification_trigger(tbl);
    PERFORM pdp._audit('drop_column_rule', tbl::text, NULL, pg_catalog.jsonb_build_object('column', col));
END
$$;
COMMENT ON FUNCTION pdp._api_drop_column_rule(regclass, name) IS
    'pdp.drop_column_rule''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE VIEW pdp.column_rules AS
SELECT r.tbl AS table_name, r.col AS column_name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type,
       r.rule, r.category, k.description,
       pdp._on_write_enabled(r.tbl) AS on_write,
       r.set_at, r.set_by
  FROM pdp.column_rule r
  JOIN pdp.rule_kind k ON k.rule OPERATOR(pg_catalog.=) r.rule
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid
                                AND a.attnum OPERATOR(pg_catalog.=) r.attnum;
COMMENT ON VIEW pdp.column_rules IS 'column rules with current names and types, and whether they apply on write';

CREATE FUNCTION pdp.pseudonymise_on_write(tbl regclass, enable boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF enable THEN
        PERFORM pdp._refuse_on_citus(tbl, 'install the on-write trigger on');
    END IF;
    IF enable AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) pseudonymise_on_write.tbl) THEN
        RAISE EXCEPTION 'table "%" has no column rules', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Declare rules with pdp.set_column_rule first.';
    END IF;
    PERFORM pdp._sync_on_write_trigger(tbl, coalesce(enable, false));
    PERFORM pdp._audit('pseudonymise_on_write', tbl::text, NULL, pg_catalog.jsonb_build_object('enabled', coalesce(enable, false)));
END
$$;
COMMENT ON FUNCTION pdp.pseudonymise_on_write(regclass, boolean) IS
    'installs (or with false removes) a C trigger applying the table''s rules to every inserted or updated value';

-- Static application -----------------------------------------------------

CREATE TABLE pdp.apply_run (
    tbl          regclass    PRIMARY KEY,
    key_columns  name[]      NOT NULL,
    upper_key    text[],                -- last key to process; NULL: empty table
    last_key     text[],                -- last key processed; NULL: none yet
    rows_done    bigint      NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at  timestamptz
);
COMMENT ON TABLE pdp.apply_run IS 'progress of pdp.apply_rules per table, committed with each batch';
COMMENT ON COLUMN pdp.apply_run.tbl IS 'the table being rewritten';
COMMENT ON COLUMN pdp.apply_run.key_columns IS 'its primary key columns, in key order';
COMMENT ON COLUMN pdp.apply_run.upper_key IS 'the highest key when the run started: rows above it were written later';
COMMENT ON COLUMN pdp.apply_run.last_key IS 'the highest key already rewritten';
COMMENT ON COLUMN pdp.apply_run.rows_done IS 'rows rewritten so far';
COMMENT ON COLUMN pdp.apply_run.started_at IS 'when the run started';
COMMENT ON COLUMN pdp.apply_run.finished_at IS 'when it finished; NULL while it can be resumed';
SELECT pg_catalog.pg_extension_config_dump('pdp.apply_run', '');

-- apply_rules' progress, written only through this function (no role may
-- write pdp.apply_run): lock (return the row, locked), start (a new run from
-- the given key columns and highest key), step (record a batch up to key, of
-- n rows) or finish.  The caller must own the table.
CREATE FUNCTION pdp._apply_progress(tbl regclass, op text, keys name[], key text[], n bigint) RETURNS pdp.apply_run
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp._apply_progress(regclass, text, name[], text[], bigint) IS
    'reads (locked) or records the progress of pdp.apply_rules on a table the caller owns';

CREATE FUNCTION pdp._api__apply_progress(tbl regclass, op text, keys name[], key text[], n bigint) RETURNS pdp.apply_run
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run pdp.apply_run;
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF op = 'lock' THEN
        SELECT * INTO run FROM pdp.apply_run r WHERE r.tbl OPERATOR(pg_catalog.=) _api__apply_progress.tbl FOR UPDATE;
    ELSIF op = 'start' THEN
        DELETE FROM pdp.apply_run r WHERE r.tbl OPERATOR(pg_catalog.=) _api__apply_progress.tbl;
        INSERT INTO pdp.apply_run AS r (tbl, key_columns, upper_key) VALUES (tbl, keys, key) RETURNING r.* INTO run;
    ELSIF op = 'step' THEN
        UPDATE pdp.apply_run r SET last_key = key, rows_done = r.rows_done OPERATOR(pg_catalog.+) n
         WHERE r.tbl OPERATOR(pg_catalog.=) _api__apply_progress.tbl RETURNING r.* INTO run;
    ELSIF op = 'finish' THEN
        UPDATE pdp.apply_run r SET finished_at = pg_catalog.now()
         WHERE r.tbl OPERATOR(pg_catalog.=) _api__apply_progress.tbl RETURNING r.* INTO run;
    ELSE
        RAISE EXCEPTION 'unknown progress operation' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN run;
END
$$;
COMMENT ON FUNCTION pdp._api__apply_progress(regclass, text, name[], text[], bigint) IS
    'pdp._apply_progress''s implementation, run as pdp_ext''s owner (callable by no role)';

-- apply_rules on Citus tables (issue 18, step 4) --------------------------
--
-- On a distributed or reference table the rows are rewritten by primary key
-- range, which on Citus includes the distribution column: each batch first
-- finds the batch's highest key (the first batch_size keys after the last
-- one done, ORDER BY key LIMIT pushed to every shard and merged on the
-- coordinator), then runs one UPDATE of the key range (last, highest], which
-- Citus runs on every shard in parallel (each through its own primary key
-- index), or on every placement of a reference table (the same range, so
-- the same rows).  No FOR UPDATE (Citus refuses it in multi-shard queries):
-- the UPDATE locks its own rows.  Citus also refuses STABLE functions of
-- columns in an UPDATE; the keyed rules' functions are STABLE because they
-- depend on the key file, so on Citus they are called through
-- pdp._citus_keyed, IMMUTABLE, which is given the coordinator's key
-- fingerprints as a constant and raises on any node whose key file differs:
-- given its arguments, its result is fixed, or it fails.  Keyless rules
-- (masks, generalisations, null) are IMMUTABLE already.  A rule on the
-- distribution column is refused (Citus cannot change it in place: the row
-- would move to another shard), as are shred (its subject keys are one
-- node's) and Citus local tables.

-- This server's key versions and fingerprints as one string ("1:ab..*" for
-- the active version), compared between the coordinator and each node that
-- computes a keyed rule (src/keys.c, cached until the key file is read
-- again: it is called once per row).  Public fingerprints only, never key bytes.
CREATE FUNCTION pdp._key_set() RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_key_set';
COMMENT ON FUNCTION pdp._key_set() IS
    'this server''s key versions and public fingerprints as one string (the active one starred), compared across Citus nodes by pdp._citus_keyed';

-- Raises 55000 unless this node's key fingerprints (pdp._key_set) are the
-- coordinator's, key_set: the check of pdp._citus_keyed and _citus_keyed_inet.
CREATE FUNCTION pdp._citus_require_key_set(key_set text) RETURNS void
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

-- A keyed rule's value, computed where Citus runs it (a worker, for a
-- shard), under the key file whose fingerprints the coordinator passed in
-- key_set: raises 55000 on a node whose key file differs, so no row is
-- rewritten with other pseudonyms.  IMMUTABLE (see above), so that Citus
-- pushes it down in an UPDATE.  Text in, text out, as the rule's own
-- function (the column's type is applied by the assignment, as on one node).
CREATE FUNCTION pdp._citus_keyed(key_set text, rule text, value text) RETURNS text
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

-- The same for pseudo_ip on an inet column.
CREATE FUNCTION pdp._citus_keyed_inet(key_set text, value inet) RETURNS inet
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

-- The distribution column of a distributed Citus table (NULL for any other
-- table, and without Citus).
CREATE FUNCTION pdp._citus_distribution_column(tbl regclass) RETURNS name
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

-- The SET list entry of a rule on a Citus table (kind distributed or
-- reference): the keyless rules' own expression, the keyed ones through
-- pdp._citus_keyed with the coordinator's key set.  Refuses (0A000) what
-- Citus cannot do right: a rule on the distribution column, shred, pseudo_ip
-- on a column neither inet nor character.
CREATE FUNCTION pdp._citus_rule_sql(tbl regclass, rule text, col name, typ oid, key_set text) RETURNS text
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

CREATE PROCEDURE pdp.apply_rules(tbl regclass, batch_size integer DEFAULT 10000, restart boolean DEFAULT false)
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
COMMENT ON PROCEDURE pdp.apply_rules(regclass, integer, boolean) IS
    'rewrites a table''s existing values with its column rules in committed batches; resumable after an interruption';

-- Dynamic application ------------------------------------------------------

-- Whether a table is not protected by protect_table: masked views filter
-- rows through the visibility check only while it is (as an InitPlan, once
-- per query).  A view reads its table with its owner's rights, and the owner
-- bypasses row-level security, so the view must apply the check itself.
CREATE FUNCTION pdp._unprotected(tbl regclass) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                          WHERE p.polrelid OPERATOR(pg_catalog.=) tbl::oid
                            AND p.polname OPERATOR(pg_catalog.=) 'pdp_select') $$;
COMMENT ON FUNCTION pdp._unprotected(regclass) IS
    'true unless protect_table protects the table (masked views filter rows only then)';

-- A masked view's select-list entry for one column.  A credential column
-- shows NULL.  A rule that can refuse a value (a malformed address, phone,
-- IIN, name, card or IP) is guarded: such a value shows as a constant and
-- is counted in pdp.rule_failures, so the view never fails on what the
-- table holds.  An EAV value column applies each classified attribute's
-- rule to the values of that attribute (pdp.register_eav).
CREATE FUNCTION pdp._masked_column_sql(tbl regclass, attnum smallint) RETURNS text
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

-- One rule applied to a column for a masked view, cast to the column's
-- type; a rule that can refuse a value is guarded (pdp._rule_accepts) and
-- a refused value counted (pdp._rule_failed) and shown as a constant.
CREATE FUNCTION pdp._guarded_rule_sql(tbl regclass, attnum smallint, rule text, col name, typ oid, typ_text text) RETURNS text
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

CREATE FUNCTION pdp.create_masked_view(tbl regclass, view_name text DEFAULT NULL) RETURNS regclass
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
COMMENT ON FUNCTION pdp.create_masked_view(regclass, text) IS
    'creates (or replaces) a security-barrier view showing each ruled column''s rule output and, while the table is protected, only the rows its policy shows; grant it instead of the table';
