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
CREATE FUNCTION pdp._resolve_attnum() RETURNS trigger
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
CREATE FUNCTION pdp._anonymisable_column(tbl regclass, col name,
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
CREATE FUNCTION pdp._generalisable(typ oid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE WHEN typ IN ('date'::regtype, 'timestamp without time zone'::regtype, 'timestamp with time zone'::regtype) THEN 'date'
            WHEN typ IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype, 'numeric'::regtype) THEN 'number' END
$$;
COMMENT ON FUNCTION pdp._generalisable(oid) IS 'date or number: the generalisations a column type takes (NULL: none)';

CREATE FUNCTION pdp._randomisable(typ oid) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT typ IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype, 'uuid'::regtype, 'inet'::regtype)
$$;
COMMENT ON FUNCTION pdp._randomisable(oid) IS 'whether randomise can write a column of this type (text, varchar, char, uuid, inet)';

CREATE FUNCTION pdp.set_anonymisation(tbl regclass, col name, action text, erase_value text DEFAULT NULL,
                                      granularity text DEFAULT NULL)
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.set_anonymisation(regclass, name, text, text, text) IS
    'declares how erasure and purge anonymise a column of the rows they keep: set_null, set_value (erase_value), randomise, or generalise (granularity month, year, decade, or a numeric width)';

CREATE FUNCTION pdp._api_set_anonymisation(tbl regclass, col name, action text, erase_value text, granularity text)
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

CREATE FUNCTION pdp.drop_anonymisation(tbl regclass, col name) RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_anonymisation(regclass, name) IS
    'removes a column''s anonymisation declaration (a ruled column returns to the default); whether there was one';

CREATE FUNCTION pdp._api_drop_anonymisation(tbl regclass, col name) RETURNS boolean
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
CREATE FUNCTION pdp._anonymisers(tbl regclass, param text, offset_ integer DEFAULT 0)
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

-- What anonymises a kept row beyond its subject columns, for erasure, the
-- inactivity cut and an anonymising purge alike: the table's anonymisers
-- (read once), and its nullable foreign keys into tables with delete
-- columns emptied (an anonymised grade keeps no link to the deleted
-- enrolment, whose row named the learner).  Each is applied where cond
-- holds ("t" is the row), or in every row when cond is NULL; constants are
-- read from parameter param after element offset_ (vals, in order).
-- set_list is NULL when there is nothing to apply; anonymisers counts the
-- table's anonymised columns (the foreign keys not included).
CREATE FUNCTION pdp._anonymise_set(tbl regclass, param text, offset_ integer, cond text,
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

CREATE FUNCTION pdp.declare_quasi_identifiers(tbl regclass, cols name[]) RETURNS integer
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.declare_quasi_identifiers(regclass, name[]) IS
    'declares the columns of a table that together may single a person out (replacing any declared before; an empty array clears them); returns how many';

CREATE FUNCTION pdp._api_declare_quasi_identifiers(tbl regclass, cols name[]) RETURNS integer
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
CREATE FUNCTION pdp.k_anonymity(tbl regclass, quasi_identifiers text[]) RETURNS bigint
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.k_anonymity(regclass, text[]) IS
    'the smallest number of rows of the table sharing the same values of the quasi-identifier columns (NULL for an empty table)';

CREATE FUNCTION pdp._api_k_anonymity(tbl regclass, quasi_identifiers text[]) RETURNS bigint
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
CREATE FUNCTION pdp._k_anonymity_findings() RETURNS jsonb
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
