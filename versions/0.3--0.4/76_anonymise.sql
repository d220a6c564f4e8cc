-- Anonymisation that is anonymisation, k-anonymity, and erasure's sweep for
-- leftovers (issue 17, points 2 and 4): src/sql/76_anonymise.sql whole, then
-- the functions it changes elsewhere.
-- Anonymisation that is anonymisation (issue 17, point 2).  Erasure and
-- purge keep some rows: a row left naming nobody once its links to the
-- erased learner are cut, a row a retention policy anonymises.  What those
-- kept rows get must not be linkable back to the person: never a column
-- rule's keyed, deterministic pseudonym (whoever holds the key can compute
-- it again from a guessed value and re-link the row; under the EDPB's
-- Guidelines 01/2025 on pseudonymisation such data stays personal data).
-- The transforms here hold no key and derive nothing from the subject:
--   set_null    the value is removed;
--   set_value   a declared constant (the column's erase_value);
--   randomise   a fresh random value per row (pg_catalog.gen_random_uuid(),
--               PostgreSQL's strong random source: OpenSSL's RAND_bytes in
--               an OpenSSL build), for text, varchar, char, uuid and inet;
--   generalise  dates and timestamps truncated to a month, year or decade,
--               numbers rounded down to a multiple of a width.
-- And a measurement beside them: pdp.k_anonymity, the smallest group of
-- kept rows sharing their quasi-identifiers, flagged by the report below
-- pdp.min_k.

CREATE TABLE pdp.anonymise_column (
    tbl          regclass    NOT NULL,
    col          name        NOT NULL,
    attnum       smallint    NOT NULL,
    action       text        NOT NULL,
    erase_value  text,
    granularity  text,
    set_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by       name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (tbl, attnum),
    CONSTRAINT anonymise_column_action_check CHECK (action IN ('set_null', 'set_value', 'randomise', 'generalise')),
    CONSTRAINT anonymise_column_value_check CHECK ((action = 'set_value') = (erase_value IS NOT NULL)),
    CONSTRAINT anonymise_column_granularity_check CHECK ((action = 'generalise') = (granularity IS NOT NULL))
);
COMMENT ON TABLE pdp.anonymise_column IS
    'how erasure and purge anonymise a column of the rows they keep (set_null, set_value, randomise, generalise); columns with a rule and no entry get the default (doc/rights.md)';
COMMENT ON COLUMN pdp.anonymise_column.tbl IS 'the table';
COMMENT ON COLUMN pdp.anonymise_column.col IS 'the column''s name, kept in step with renames';
COMMENT ON COLUMN pdp.anonymise_column.attnum IS 'the column''s attribute number, resolved from col on every write';
COMMENT ON COLUMN pdp.anonymise_column.action IS 'set_null, set_value (writes erase_value), randomise (a fresh random value per row) or generalise (to granularity)';
COMMENT ON COLUMN pdp.anonymise_column.erase_value IS 'the constant set_value writes (a configuration value, never a personal one)';
COMMENT ON COLUMN pdp.anonymise_column.granularity IS 'for generalise: month, year or decade for dates and timestamps, a positive width for numbers';
COMMENT ON COLUMN pdp.anonymise_column.set_at IS 'when it was declared';
COMMENT ON COLUMN pdp.anonymise_column.set_by IS 'who declared it';
SELECT pg_catalog.pg_extension_config_dump('pdp.anonymise_column', '');

CREATE TABLE pdp.quasi_identifier (
    tbl          regclass    NOT NULL,
    col          name        NOT NULL,
    attnum       smallint    NOT NULL,
    declared_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    declared_by  name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (tbl, attnum)
);
COMMENT ON TABLE pdp.quasi_identifier IS
    'columns that together may single a person out (birth year, city, course, ...): the report measures their k-anonymity against pdp.min_k';
COMMENT ON COLUMN pdp.quasi_identifier.tbl IS 'the table';
COMMENT ON COLUMN pdp.quasi_identifier.col IS 'the column''s name, kept in step with renames';
COMMENT ON COLUMN pdp.quasi_identifier.attnum IS 'the column''s attribute number, resolved from col on every write';
COMMENT ON COLUMN pdp.quasi_identifier.declared_at IS 'when it was declared';
COMMENT ON COLUMN pdp.quasi_identifier.declared_by IS 'who declared it';
SELECT pg_catalog.pg_extension_config_dump('pdp.quasi_identifier', '');

-- Both tables name a column by name and number: the number is resolved from
-- the name on every write (a restore's dumped rows included, whose table may
-- number its columns differently), and the catalog-sync event triggers keep
-- the name in step with renames and forget dropped columns.
CREATE OR REPLACE FUNCTION pdp._resolve_attnum() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.attnum := (SELECT a.attnum FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid OPERATOR(pg_catalog.=) NEW.tbl::oid AND a.attname OPERATOR(pg_catalog.=) NEW.col
                      AND a.attnum > 0 AND NOT a.attisdropped);
    IF NEW.attnum IS NULL THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', NEW.col, pdp._relname(NEW.tbl)
            USING ERRCODE = 'undefined_column';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._resolve_attnum() IS 'trigger: resolves a row''s attnum from its table and column name';
CREATE TRIGGER anonymise_column_attnum BEFORE INSERT OR UPDATE ON pdp.anonymise_column
    FOR EACH ROW EXECUTE FUNCTION pdp._resolve_attnum();
COMMENT ON TRIGGER anonymise_column_attnum ON pdp.anonymise_column IS 'resolves the column''s number from its name';
CREATE TRIGGER quasi_identifier_attnum BEFORE INSERT OR UPDATE ON pdp.quasi_identifier
    FOR EACH ROW EXECUTE FUNCTION pdp._resolve_attnum();
COMMENT ON TRIGGER quasi_identifier_attnum ON pdp.quasi_identifier IS 'resolves the column''s number from its name';

-- The column of a table the anonymisation API is asked about: it exists,
-- is an ordinary column and is no subject column (those have on_erase).
CREATE OR REPLACE FUNCTION pdp._anonymisable_column(tbl regclass, col name,
                                         OUT attnum smallint, OUT typ oid, OUT typmod integer, OUT not_null boolean)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF col IS NULL THEN
        RAISE EXCEPTION 'column must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT a.attnum, a.atttypid, a.atttypmod, a.attnotnull INTO attnum, typ, typmod, not_null
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname OPERATOR(pg_catalog.=) col
       AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', col, pdp._relname(tbl) USING ERRCODE = 'undefined_column';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _anonymisable_column.tbl
                 AND s.attnum OPERATOR(pg_catalog.=) _anonymisable_column.attnum) THEN
        RAISE EXCEPTION 'column "%" of table "%" is a registered subject column', col, pdp._relname(tbl)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A subject column''s on_erase (pdp.register_table) says what erasure does with it.';
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._anonymisable_column(regclass, name) IS
    'a column''s number, type and nullability; refuses unknown columns and subject columns';

-- Which generalisations a type takes: 'date' (month, year, decade), 'number'
-- (a positive width), or NULL.
CREATE OR REPLACE FUNCTION pdp._generalisable(typ oid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE WHEN typ IN ('date'::regtype, 'timestamp without time zone'::regtype, 'timestamp with time zone'::regtype) THEN 'date'
            WHEN typ IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype, 'numeric'::regtype) THEN 'number' END
$$;
COMMENT ON FUNCTION pdp._generalisable(oid) IS 'date or number: the generalisations a column type takes (NULL: none)';

CREATE OR REPLACE FUNCTION pdp._randomisable(typ oid) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT typ IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype, 'uuid'::regtype, 'inet'::regtype)
$$;
COMMENT ON FUNCTION pdp._randomisable(oid) IS 'whether randomise can write a column of this type (text, varchar, char, uuid, inet)';

CREATE OR REPLACE FUNCTION pdp.set_anonymisation(tbl regclass, col name, action text, erase_value text DEFAULT NULL,
                                      granularity text DEFAULT NULL)
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.set_anonymisation(regclass, name, text, text, text) IS
    'declares how erasure and purge anonymise a column of the rows they keep: set_null, set_value (erase_value), randomise, or generalise (granularity month, year, decade, or a numeric width)';

CREATE OR REPLACE FUNCTION pdp._api_set_anonymisation(tbl regclass, col name, action text, erase_value text, granularity text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    att record;
    kind text;
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF (SELECT c.relnamespace FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid)
       IN ('pdp'::regnamespace, 'pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'cannot anonymise columns of "%"', pdp._relname(tbl)
            USING ERRCODE = 'wrong_object_type', HINT = 'Only ordinary and partitioned tables of the application.';
    END IF;
    IF action IS NULL THEN
        RAISE EXCEPTION 'action must not be null' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'pdp.drop_anonymisation returns a column to the default.';
    END IF;
    SELECT * INTO att FROM pdp._anonymisable_column(tbl, col);
    IF action NOT IN ('set_null', 'set_value', 'randomise', 'generalise') THEN
        RAISE EXCEPTION 'unknown anonymisation action'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'action is "set_null", "set_value" (with erase_value), "randomise" or "generalise" (with granularity); keyed rules are never used to anonymise.';
    END IF;
    IF erase_value IS NOT NULL AND action <> 'set_value' THEN
        RAISE EXCEPTION 'erase_value is only for action => ''set_value''' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF granularity IS NOT NULL AND action <> 'generalise' THEN
        RAISE EXCEPTION 'granularity is only for action => ''generalise''' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF action = 'set_null' AND att.not_null THEN
        RAISE EXCEPTION 'column "%" of table "%" is NOT NULL, so anonymisation cannot set it to NULL', col, pdp._relname(tbl)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use action => ''set_value'', ''randomise'' or ''generalise'', or drop the NOT NULL constraint.';
    ELSIF action = 'set_value' THEN
        IF erase_value IS NULL THEN
            RAISE EXCEPTION 'action => ''set_value'' needs an erase_value' USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name the constant anonymisation writes, e.g. erase_value => ''(anonymised)''.';
        END IF;
        -- The value must be one of the column's type (in its length: an
        -- explicit cast would silently cut a varchar); the message never
        -- repeats it.
        BEGIN
            IF att.typ IN ('character varying'::regtype, 'character'::regtype) AND att.typmod > 4
               AND pg_catalog.char_length(erase_value) > att.typmod - 4 THEN
                RAISE EXCEPTION USING ERRCODE = 'string_data_right_truncation';
            END IF;
            EXECUTE pg_catalog.format('SELECT $1::%s', pg_catalog.format_type(att.typ, att.typmod)) USING erase_value;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'erase_value is not a value of column "%" of table "%"', col, pdp._relname(tbl)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = pg_catalog.format('The column is %s.', pg_catalog.format_type(att.typ, att.typmod));
        END;
    ELSIF action = 'randomise' AND NOT pdp._randomisable(att.typ) THEN
        RAISE EXCEPTION 'column "%" of table "%" cannot be randomised', col, pdp._relname(tbl)
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = pg_catalog.format('The column is %s; randomise writes text, varchar, char, uuid or inet.',
                                             pg_catalog.format_type(att.typ, att.typmod)),
                  HINT = 'Use set_null, set_value or generalise.';
    ELSIF action = 'generalise' THEN
        kind := pdp._generalisable(att.typ);
        IF kind IS NULL THEN
            RAISE EXCEPTION 'column "%" of table "%" cannot be generalised', col, pdp._relname(tbl)
                USING ERRCODE = 'datatype_mismatch',
                      DETAIL = pg_catalog.format('The column is %s; generalise takes dates, timestamps and numbers.',
                                                 pg_catalog.format_type(att.typ, att.typmod));
        END IF;
        IF granularity IS NULL THEN
            RAISE EXCEPTION 'action => ''generalise'' needs a granularity' USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'month, year or decade for dates and timestamps; a positive whole width such as ''10'' for numbers.';
        END IF;
        IF kind = 'date' AND granularity NOT IN ('month', 'year', 'decade') THEN
            RAISE EXCEPTION 'unknown granularity for a date or timestamp column' USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'month, year or decade.';
        END IF;
        IF kind = 'number' AND (granularity !~ '^[1-9][0-9]{0,17}$' OR granularity = '1') THEN
            RAISE EXCEPTION 'the granularity of a number column must be a whole width of 2 or more' USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example ''10'' turns 37 into 30.';
        END IF;
    END IF;
    INSERT INTO pdp.anonymise_column AS x (tbl, col, attnum, action, erase_value, granularity, set_by)
    VALUES (tbl, col, att.attnum, action, erase_value, granularity, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT anonymise_column_pkey DO UPDATE
       SET action = EXCLUDED.action, erase_value = EXCLUDED.erase_value, granularity = EXCLUDED.granularity,
           set_at = pg_catalog.now(), set_by = EXCLUDED.set_by;
    -- The constant is configuration, but stays out of the audit trail all the same.
    PERFORM pdp._audit('set_anonymisation', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('column', col, 'action', action, 'granularity', granularity));
END
$$;
COMMENT ON FUNCTION pdp._api_set_anonymisation(regclass, name, text, text, text) IS
    'pdp.set_anonymisation''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE OR REPLACE FUNCTION pdp.drop_anonymisation(tbl regclass, col name) RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_anonymisation(regclass, name) IS
    'removes a column''s anonymisation declaration (a ruled column returns to the default); whether there was one';

CREATE OR REPLACE FUNCTION pdp._api_drop_anonymisation(tbl regclass, col name) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF col IS NULL THEN
        RAISE EXCEPTION 'column must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM pdp.anonymise_column x WHERE x.tbl OPERATOR(pg_catalog.=) _api_drop_anonymisation.tbl
       AND x.col OPERATOR(pg_catalog.=) _api_drop_anonymisation.col;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pdp._audit('drop_anonymisation', tbl::text, NULL, pg_catalog.jsonb_build_object('column', col));
    END IF;
    RETURN n > 0;
END
$$;
COMMENT ON FUNCTION pdp._api_drop_anonymisation(regclass, name) IS
    'pdp.drop_anonymisation''s implementation, run as pdp_ext''s owner (callable by no role)';

-- What erasure and purge write into a kept row, column by column: every
-- declared column (pdp.anonymise_column), and every other column with a
-- rule, by default generalised where its rule generalises a date, else set
-- to NULL, else (NOT NULL) randomised.  Subject columns are erasure's own
-- business (on_erase).  expr is an SQL expression of the column ("t" is the
-- row); a constant is read from parameter param, element offset + k, and
-- val is the constant to put there (NULL k and val when there is none).
CREATE OR REPLACE FUNCTION pdp._anonymisers(tbl regclass, param text, offset_ integer DEFAULT 0)
RETURNS TABLE (col name, action text, expr text, k integer, val text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH c AS (
        SELECT a.attname, a.attnum, a.atttypid, a.atttypmod,
               coalesce(x.action, CASE WHEN r.rule LIKE 'generalize_%' AND pdp._generalisable(a.atttypid) IS NOT NULL THEN 'generalise'
                                       WHEN NOT a.attnotnull THEN 'set_null'
                                       WHEN pdp._randomisable(a.atttypid) THEN 'randomise' END) AS act,
               x.erase_value,
               coalesce(x.granularity, CASE WHEN r.rule LIKE 'generalize_%' THEN pg_catalog.substr(r.rule, 12) END) AS gran
          FROM pg_catalog.pg_attribute a
          LEFT JOIN pdp.anonymise_column x ON x.tbl OPERATOR(pg_catalog.=) _anonymisers.tbl AND x.attnum OPERATOR(pg_catalog.=) a.attnum
          LEFT JOIN pdp.column_rule r ON r.tbl OPERATOR(pg_catalog.=) _anonymisers.tbl AND r.attnum OPERATOR(pg_catalog.=) a.attnum
         WHERE a.attrelid OPERATOR(pg_catalog.=) _anonymisers.tbl::oid AND a.attnum > 0 AND NOT a.attisdropped
           AND (x.tbl IS NOT NULL OR r.tbl IS NOT NULL)
           AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _anonymisers.tbl
                             AND s.attnum OPERATOR(pg_catalog.=) a.attnum)),
    n AS (SELECT c.*, CASE WHEN c.act = 'set_value'
                           THEN pg_catalog.row_number() OVER (PARTITION BY c.act = 'set_value' ORDER BY c.attnum)::integer END AS kk
            FROM c)
    SELECT n.attname, n.act,
           CASE n.act
           WHEN 'set_null' THEN 'NULL'
           WHEN 'set_value' THEN pg_catalog.format('(%s)[%s]::%s', param, offset_ + n.kk, pg_catalog.format_type(n.atttypid, n.atttypmod))
           WHEN 'randomise' THEN
               CASE WHEN n.atttypid OPERATOR(pg_catalog.=) 'uuid'::regtype THEN 'pg_catalog.gen_random_uuid()'
                    WHEN n.atttypid OPERATOR(pg_catalog.=) 'inet'::regtype
                    THEN '(''0.0.0.0''::pg_catalog.inet OPERATOR(pg_catalog.+) (''x'' OPERATOR(pg_catalog.||) '
                         'pg_catalog.left(pg_catalog.gen_random_uuid()::text, 8))::bit(32)::bigint)'
                    -- 32 hex digits (122 random bits), cut to a bounded column's length.
                    ELSE pg_catalog.format('pg_catalog.left(pg_catalog.replace(pg_catalog.gen_random_uuid()::text, ''-'', ''''), %s)::%s',
                                           CASE WHEN n.atttypmod > 4 AND n.atttypmod < 36 THEN n.atttypmod - 4 ELSE 32 END,
                                           pg_catalog.format_type(n.atttypid, n.atttypmod)) END
           WHEN 'generalise' THEN
               CASE WHEN pdp._generalisable(n.atttypid) = 'date'
                    THEN pg_catalog.format('pg_catalog.date_trunc(%L, t.%I::timestamp)::%s', n.gran, n.attname,
                                           pg_catalog.format_type(n.atttypid, n.atttypmod))
                    ELSE pg_catalog.format('(pg_catalog.floor(t.%1$I::numeric OPERATOR(pg_catalog./) %2$L::numeric) '
                                           'OPERATOR(pg_catalog.*) %2$L::numeric)::%3$s', n.attname, n.gran,
                                           pg_catalog.format_type(n.atttypid, n.atttypmod)) END
           END,
           offset_ + n.kk, CASE WHEN n.act = 'set_value' THEN n.erase_value END
      FROM n
     WHERE n.act IS NOT NULL
     ORDER BY n.attnum;
END
$$;
COMMENT ON FUNCTION pdp._anonymisers(regclass, text, integer) IS
    'the unlinkable transform erasure and purge write into each anonymised column of a kept row (never a keyed rule), with the constants they need';
CREATE OR REPLACE FUNCTION pdp._anonymise_set(tbl regclass, param text, offset_ integer, cond text,
                                   OUT set_list text, OUT vals text[], OUT anonymisers integer)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols name[];
BEGIN
    SELECT coalesce(pg_catalog.array_agg(z.val ORDER BY z.k) FILTER (WHERE z.k IS NOT NULL), '{}'),
           pg_catalog.string_agg(CASE WHEN cond IS NULL THEN pg_catalog.format('%I = %s', z.col, z.expr)
                                      ELSE pg_catalog.format('%I = CASE WHEN %s THEN %s ELSE t.%I END', z.col, cond, z.expr, z.col) END,
                                 ', '),
           coalesce(pg_catalog.array_agg(z.col), '{}'), pg_catalog.count(*)
      INTO vals, set_list, cols, anonymisers
      FROM pdp._anonymisers(tbl, param, offset_) z;
    SELECT concat_ws(', ', set_list, pg_catalog.string_agg(DISTINCT y.x, ', ')) INTO set_list FROM (
        SELECT CASE WHEN cond IS NULL THEN pg_catalog.format('%I = NULL', a.attname)
                    ELSE pg_catalog.format('%1$I = CASE WHEN %2$s THEN NULL ELSE t.%1$I END', a.attname, cond) END AS x
          FROM pg_constraint k
          CROSS JOIN LATERAL pg_catalog.unnest(k.conkey) ka(attnum)
          JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid AND a.attnum OPERATOR(pg_catalog.=) ka.attnum
         WHERE k.contype = 'f' AND k.conrelid OPERATOR(pg_catalog.=) tbl::oid AND NOT a.attnotnull
           AND EXISTS (SELECT 1 FROM pdp.subject_column p WHERE p.tbl::oid OPERATOR(pg_catalog.=) k.confrelid
                         AND p.on_erase = 'delete')
           AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s2 WHERE s2.tbl OPERATOR(pg_catalog.=) _anonymise_set.tbl
                             AND s2.attnum OPERATOR(pg_catalog.=) a.attnum)
           AND a.attname OPERATOR(pg_catalog.<>) ALL (cols)) y;
    set_list := nullif(set_list, '');
END
$$;
COMMENT ON FUNCTION pdp._anonymise_set(regclass, text, integer, text) IS
    'the SET list that anonymises a kept row beyond its subject columns (anonymisers, nullable foreign keys into deleted rows emptied), where a condition holds, with its constants';

-- Quasi-identifiers and k-anonymity ----------------------------------------------

CREATE OR REPLACE FUNCTION pdp.declare_quasi_identifiers(tbl regclass, cols name[]) RETURNS integer
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.declare_quasi_identifiers(regclass, name[]) IS
    'declares the columns of a table that together may single a person out (replacing any declared before; an empty array clears them); returns how many';

CREATE OR REPLACE FUNCTION pdp._api_declare_quasi_identifiers(tbl regclass, cols name[]) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    colname name;
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF cols IS NULL OR array_position(cols, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'columns must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.cardinality(cols) <> (SELECT pg_catalog.count(DISTINCT x) FROM pg_catalog.unnest(cols) x) THEN
        RAISE EXCEPTION 'a column is named twice' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid) NOT IN ('r', 'p')
       OR (SELECT c.relnamespace FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid)
          IN ('pdp'::regnamespace, 'pg_catalog'::regnamespace, 'information_schema'::regnamespace) THEN
        RAISE EXCEPTION 'cannot declare quasi-identifiers of "%"', pdp._relname(tbl) USING ERRCODE = 'wrong_object_type';
    END IF;
    FOREACH colname IN ARRAY cols LOOP
        PERFORM pdp._anonymisable_column(tbl, colname);   -- exists, not a subject column
    END LOOP;
    DELETE FROM pdp.quasi_identifier q WHERE q.tbl OPERATOR(pg_catalog.=) _api_declare_quasi_identifiers.tbl;
    INSERT INTO pdp.quasi_identifier (tbl, col, attnum, declared_by)
    SELECT tbl, x, 0, pg_catalog.pg_get_userbyid(pdp._caller()) FROM pg_catalog.unnest(cols) x;
    PERFORM pdp._audit('declare_quasi_identifiers', tbl::text, NULL, pg_catalog.jsonb_build_object('columns', cols));
    RETURN pg_catalog.cardinality(cols);
END
$$;
COMMENT ON FUNCTION pdp._api_declare_quasi_identifiers(regclass, name[]) IS
    'pdp.declare_quasi_identifiers''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE VIEW pdp.quasi_identifiers AS
SELECT q.tbl AS table_name, pg_catalog.array_agg(q.col ORDER BY q.attnum) AS columns
  FROM pdp.quasi_identifier q GROUP BY q.tbl;
COMMENT ON VIEW pdp.quasi_identifiers IS 'each table''s declared quasi-identifiers';

-- k-anonymity: the size of the smallest group of rows that agree on every
-- quasi-identifier (NULLs agree with NULLs).  NULL for an empty table: no
-- group, nothing to single out.  Any role that may read the report may
-- measure a registered table or one with declared quasi-identifiers (the
-- answer is a count, never a value); other tables only their owner.  The
-- table is read as its owner.
CREATE OR REPLACE FUNCTION pdp.k_anonymity(tbl regclass, quasi_identifiers text[]) RETURNS bigint
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.k_anonymity(regclass, text[]) IS
    'the smallest number of rows of the table sharing the same values of the quasi-identifier columns (NULL for an empty table)';

CREATE OR REPLACE FUNCTION pdp._api_k_anonymity(tbl regclass, quasi_identifiers text[]) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    cols text;
    k bigint;
BEGIN
    IF tbl IS NULL OR quasi_identifiers IS NULL THEN
        RAISE EXCEPTION 'table and quasi-identifiers must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relname, c.relowner, c.relkind, c.relnamespace INTO rel FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', tbl::oid USING ERRCODE = 'undefined_table';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', rel.relname USING ERRCODE = 'wrong_object_type';
    END IF;
    IF rel.relnamespace IN ('pdp'::regnamespace, 'pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       OR NOT (pg_catalog.pg_has_role(pdp._caller(), rel.relowner, 'USAGE')
               OR ((pg_catalog.pg_has_role(pdp._caller(), 'pdp_admin', 'USAGE') OR pg_catalog.pg_has_role(pdp._caller(), 'pdp_auditor', 'USAGE'))
                   AND (EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _api_k_anonymity.tbl)
                        OR EXISTS (SELECT 1 FROM pdp.quasi_identifier q WHERE q.tbl OPERATOR(pg_catalog.=) _api_k_anonymity.tbl)))) THEN
        RAISE EXCEPTION 'permission denied to measure table "%"', rel.relname USING ERRCODE = 'insufficient_privilege',
              HINT = 'pdp_admin and pdp_auditor members may measure registered tables; other tables only their owner.';
    END IF;
    IF pg_catalog.cardinality(quasi_identifiers) = 0 OR array_position(quasi_identifiers, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'quasi-identifiers must name at least one column, and no NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.cardinality(quasi_identifiers) <> (SELECT pg_catalog.count(DISTINCT x) FROM pg_catalog.unnest(quasi_identifiers) x) THEN
        RAISE EXCEPTION 'a column is named twice' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- (json and xml have no equality: grouped by their text.)
    SELECT pg_catalog.string_agg(pg_catalog.format(CASE WHEN a.atttypid IN ('json'::regtype, 'xml'::regtype) THEN 't.%I::text' ELSE 't.%I' END,
                                                   a.attname), ', ' ORDER BY u.o) FILTER (WHERE a.attname IS NOT NULL),
           pg_catalog.count(a.attname)
      INTO cols, k
      FROM pg_catalog.unnest(quasi_identifiers) WITH ORDINALITY AS u(c, o)
      LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname::text OPERATOR(pg_catalog.=) u.c
                                          AND a.attnum > 0 AND NOT a.attisdropped;
    IF k <> pg_catalog.cardinality(quasi_identifiers) THEN
        RAISE EXCEPTION 'a quasi-identifier is not a column of table "%"', rel.relname USING ERRCODE = 'undefined_column',
              DETAIL = pg_catalog.format('Unknown: %s.', (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(u.c), ', ')
                                                            FROM pg_catalog.unnest(quasi_identifiers) u(c)
                                                           WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                                                              WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid
                                                                                AND a.attname::text OPERATOR(pg_catalog.=) u.c
                                                                                AND a.attnum > 0 AND NOT a.attisdropped)));
    END IF;
    SELECT x.k INTO k
      FROM pdp._exec_as_owner(tbl, pg_catalog.format(
               'SELECT pg_catalog.min(g.n) FROM (SELECT pg_catalog.count(*) AS n FROM %s t GROUP BY %s) g', tbl, cols)) AS x(k bigint);
    RETURN k;
END
$$;
COMMENT ON FUNCTION pdp._api_k_anonymity(regclass, text[]) IS
    'pdp.k_anonymity''s implementation, run as pdp_ext''s owner (callable by no role)';

-- For the report: each table with declared quasi-identifiers, its k, and
-- whether k is below pdp.min_k.
CREATE OR REPLACE FUNCTION pdp._k_anonymity_findings() RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q record;
    k bigint;
    min_k integer := pg_catalog.current_setting('pdp.min_k')::integer;
    out jsonb := '[]';
BEGIN
    FOR q IN SELECT x.table_name, x.columns FROM pdp.quasi_identifiers x ORDER BY x.table_name::text LOOP
        k := pdp.k_anonymity(q.table_name, q.columns::text[]);
        out := out || pg_catalog.jsonb_build_object('table', q.table_name::text, 'quasi_identifiers', q.columns,
                                                    'k', k, 'min_k', min_k, 'below_min_k', coalesce(k < min_k, false));
    END LOOP;
    RETURN out;
END
$$;
COMMENT ON FUNCTION pdp._k_anonymity_findings() IS
    'the report''s k-anonymity section: each table with declared quasi-identifiers, its k, and whether it is below pdp.min_k';

REVOKE ALL ON FUNCTION pdp._resolve_attnum(), pdp._anonymisable_column(regclass, name), pdp._generalisable(oid),
                       pdp._randomisable(oid), pdp.set_anonymisation(regclass, name, text, text, text),
                       pdp._api_set_anonymisation(regclass, name, text, text, text), pdp.drop_anonymisation(regclass, name),
                       pdp._api_drop_anonymisation(regclass, name), pdp._anonymisers(regclass, text, integer),
                       pdp._anonymise_set(regclass, text, integer, text),
                       pdp.declare_quasi_identifiers(regclass, name[]), pdp._api_declare_quasi_identifiers(regclass, name[]),
                       pdp.k_anonymity(regclass, text[]), pdp._api_k_anonymity(regclass, text[]), pdp._k_anonymity_findings()
FROM PUBLIC;
REVOKE ALL ON pdp.anonymise_column, pdp.quasi_identifier, pdp.quasi_identifiers FROM PUBLIC;
GRANT SELECT ON pdp.anonymise_column, pdp.quasi_identifier, pdp.quasi_identifiers TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.set_anonymisation(regclass, name, text, text, text), pdp.drop_anonymisation(regclass, name),
                          pdp.declare_quasi_identifiers(regclass, name[])
TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.k_anonymity(regclass, text[]), pdp._k_anonymity_findings() TO pdp_admin, pdp_auditor;

-- Erasure: kept rows get the transforms above, never a keyed rule; and the
-- sweep argument (a new signature, so the 0.3 overloads go first).
DROP FUNCTION pdp.erase_subject(bigint, text);
DROP FUNCTION pdp.erase_subject(uuid, text);
DROP FUNCTION pdp.erase_subject(text, text);
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
CREATE OR REPLACE FUNCTION pdp.erase_subject(subject bigint, reason text, sweep boolean DEFAULT false) RETURNS jsonb
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.erase_subject(subject::text, reason, sweep) $$;
CREATE OR REPLACE FUNCTION pdp.erase_subject(subject uuid, reason text, sweep boolean DEFAULT false) RETURNS jsonb
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.erase_subject(subject::text, reason, sweep) $$;
COMMENT ON FUNCTION pdp.erase_subject(text, text, boolean) IS
    'erases the subject per column (delete the rows they own, set_null/set_value their links, keep, anonymise kept rows without keyed rules), following declared links; refused under their hold; with sweep, lists where their identifiers remain; returns and stores a receipt';
COMMENT ON FUNCTION pdp.erase_subject(bigint, text, boolean) IS 'erase_subject for a bigint or integer subject';
COMMENT ON FUNCTION pdp.erase_subject(uuid, text, boolean) IS 'erase_subject for a uuid subject';
REVOKE ALL ON FUNCTION pdp.erase_subject(text, text, boolean), pdp.erase_subject(bigint, text, boolean),
                       pdp.erase_subject(uuid, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.erase_subject(text, text, boolean), pdp.erase_subject(bigint, text, boolean),
                          pdp.erase_subject(uuid, text, boolean) TO pdp_admin;

-- Purge's anonymise action: the same transforms.
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
COMMENT ON COLUMN pdp.retention_policy.action IS 'delete, or anonymise (keep the row, its ruled and declared columns made unlinkable: pdp.set_anonymisation)';

-- The trace search (erasure's sweep): one LIKE ANY per kind of identifier.
CREATE OR REPLACE FUNCTION pdp._like_patterns(vals text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce(pg_catalog.array_agg('%' OPERATOR(pg_catalog.||)
                    pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(v, E'\\', E'\\\\'), '%', E'\\%'), '_', E'\\_')
                    OPERATOR(pg_catalog.||) '%'), '{}')
  FROM pg_catalog.unnest(vals) v WHERE v IS NOT NULL AND v OPERATOR(pg_catalog.<>) ''
$$;
COMMENT ON FUNCTION pdp._like_patterns(text[]) IS 'internal: LIKE patterns that find each value anywhere in a text (wildcards escaped)';
REVOKE ALL ON FUNCTION pdp._like_patterns(text[]) FROM PUBLIC;

-- The report flags tables below pdp.min_k.
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
COMMENT ON FUNCTION pdp.report(text) IS
    'the compliance report: register, unclassified findings, consents, retention, holds, requests, notices, tables below pdp.min_k, audit chain (html, markdown or json)';
