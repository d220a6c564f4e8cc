-- Subject registry: which columns of which tables name a data subject.
--
-- Rows are keyed by (tbl, attnum) so that renames of tables and columns are
-- followed for free inside a database; "col" is kept in step by an event
-- trigger and is what pg_dump carries across a restore, where the attnum is
-- resolved again from it.

CREATE TABLE pdp.subject_column (
    tbl           regclass    NOT NULL,
    col           name        NOT NULL,
    attnum        smallint    NOT NULL,
    on_erase      text        NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    registered_by name        NOT NULL DEFAULT CURRENT_USER,
    erase_value   text,
    PRIMARY KEY (tbl, attnum),
    CONSTRAINT subject_column_on_erase_check CHECK (on_erase IN ('delete', 'set_null', 'set_value', 'keep')),
    CONSTRAINT subject_column_erase_value_check CHECK ((on_erase = 'set_value') = (erase_value IS NOT NULL))
);
COMMENT ON TABLE pdp.subject_column IS
    'Registered (table, subject column) pairs; read pdp.registered_tables instead';
COMMENT ON COLUMN pdp.subject_column.tbl IS 'the registered table';
COMMENT ON COLUMN pdp.subject_column.col IS 'name of the column that holds the subject''s identifier';
COMMENT ON COLUMN pdp.subject_column.attnum IS 'attribute number of that column, resolved from col on every write';
COMMENT ON COLUMN pdp.subject_column.on_erase IS 'what erasure does where this column names the erased subject: delete the row (the subject''s own column), set_null or set_value (cut the link), keep';
COMMENT ON COLUMN pdp.subject_column.registered_at IS 'when the column was registered';
COMMENT ON COLUMN pdp.subject_column.registered_by IS 'the role that registered it';
COMMENT ON COLUMN pdp.subject_column.erase_value IS 'for set_value: the value erasure writes (text form, checked to cast to the column''s type); else NULL';
SELECT pg_catalog.pg_extension_config_dump('pdp.subject_column', '');

-- Types a subject identifier may have.  Every capability keys subjects by
-- the identifier's text form, so these are the types whose text form is
-- canonical (one value, one spelling).
CREATE FUNCTION pdp.is_subject_type(t regtype) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT t IN ('bigint'::regtype, 'integer'::regtype, 'text'::regtype,
                   'character varying'::regtype, 'uuid'::regtype) $$;
COMMENT ON FUNCTION pdp.is_subject_type(regtype) IS
    'true for the types a subject column may have: bigint, integer, text, varchar, uuid';

-- The one text form of a subject that pdp's tables hold (consents,
-- restrictions, holds, requests, disclosures, erasure receipts, audit
-- pseudonyms), for the types of the registered subject columns: an integer
-- in canonical decimal ("02", " +2" are 2) when an integer column is
-- registered, a uuid lower-case and hyphenated (any case, braces, no
-- hyphens) when a uuid column is, anything else as given when a text column
-- is; with nothing registered, integers and uuids are canonicalised and the
-- rest kept.  Otherwise 22P02.  Every entry point taking a text subject
-- calls it first (src/core/subject.c parses).
CREATE FUNCTION pdp._canonical_subject(subject text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pdp_canonical_subject';
COMMENT ON FUNCTION pdp._canonical_subject(text) IS
    'the canonical text form of a subject for the registered subject columns'' types; 22P02 when it has none of them';
CREATE FUNCTION pdp._canonical_subject_or_null(subject text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pdp_canonical_subject_or_null';
COMMENT ON FUNCTION pdp._canonical_subject_or_null(text) IS
    'pdp._canonical_subject, but NULL for a subject of none of the registered types (bulk entry points name the row)';
CREATE FUNCTION pdp._canonical_subjects(subjects text[]) RETURNS text[]
LANGUAGE C STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pdp_canonical_subjects';
COMMENT ON FUNCTION pdp._canonical_subjects(text[]) IS
    'pdp._canonical_subject of every element in one call (NULL stays NULL), for the bulk entry points';

-- Other spellings of an integer in text subject columns.  Where integer and
-- text subject columns are both registered, a subject that is an integer
-- has one canonical form ('7'), and a text column's cell '007' names that
-- learner too: the row test reads it so (visibility.c), and so do erasure,
-- export and the purges' held and restricted guards, through the two SQL
-- builders below.  With text columns only, '007' and '7' stay two subjects.
CREATE FUNCTION pdp._integer_spelling(value text) RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pdp_integer_spelling';
COMMENT ON FUNCTION pdp._integer_spelling(text) IS
    'the canonical decimal of a text spelling an integer (''007'' gives ''7''), NULL for any other text';

CREATE FUNCTION pdp._spellings_apply() RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pdp_spellings_apply';
COMMENT ON FUNCTION pdp._spellings_apply() IS
    'are integer and text subject columns both registered, so that a text cell spelling an integer names that integer''s subject?';

-- SQL (on alias t): column col of tbl names the subject in parameter $1 of
-- the type list fit (pdp._subject_types), in its own type so its indexes
-- serve; a text column also by another spelling of an integer subject.
CREATE FUNCTION pdp._subject_eq_sql(tbl regclass, col name, fit regtype[]) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN a.atttypid IN ('pg_catalog.text'::pg_catalog.regtype, 'pg_catalog.varchar'::pg_catalog.regtype,
                                       'pg_catalog.bpchar'::pg_catalog.regtype)
                        AND 'pg_catalog.int8'::pg_catalog.regtype OPERATOR(pg_catalog.=) ANY (fit) AND pdp._spellings_apply()
                   THEN pg_catalog.format('(t.%1$I OPERATOR(pg_catalog.=) $1::%2$s OR pdp._integer_spelling(t.%1$I::text) OPERATOR(pg_catalog.=) $1::text)',
                                          col, a.atttypid::pg_catalog.regtype)
                   ELSE pg_catalog.format('t.%I OPERATOR(pg_catalog.=) $1::%s', col,
                                          coalesce(a.atttypid::pg_catalog.regtype, 'pg_catalog.text'::pg_catalog.regtype)) END
        FROM (SELECT NULL) one
        LEFT JOIN pg_catalog.pg_attribute a   -- (no such column: the SQL names it anyway and fails, never matches nothing)
          ON a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname OPERATOR(pg_catalog.=) col AND NOT a.attisdropped $$;
COMMENT ON FUNCTION pdp._subject_eq_sql(regclass, name, regtype[]) IS
    'SQL condition: a subject column names the subject in $1 (a text column also in another spelling of an integer subject)';

-- SQL (on alias t): column col of tbl names one of the canonical subjects
-- in the text[] expression arr; never NULL.
CREATE FUNCTION pdp._cell_in_sql(tbl regclass, col name, arr text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN a.atttypid IN ('pg_catalog.text'::pg_catalog.regtype, 'pg_catalog.varchar'::pg_catalog.regtype,
                                       'pg_catalog.bpchar'::pg_catalog.regtype)
                        AND pdp._spellings_apply()
                   THEN pg_catalog.format('coalesce(t.%1$I::text OPERATOR(pg_catalog.=) ANY (%2$s) OR pdp._integer_spelling(t.%1$I::text) OPERATOR(pg_catalog.=) ANY (%2$s), false)',
                                          col, arr)
                   ELSE pg_catalog.format('coalesce(t.%I::text OPERATOR(pg_catalog.=) ANY (%s), false)', col, arr) END
        FROM (SELECT NULL) one
        LEFT JOIN pg_catalog.pg_attribute a   -- (no such column: the SQL names it anyway and fails, never matches nothing)
          ON a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname OPERATOR(pg_catalog.=) col AND NOT a.attisdropped $$;
COMMENT ON FUNCTION pdp._cell_in_sql(regclass, name, text) IS
    'SQL condition, never NULL: a subject column names one of the subjects of a text[] expression (a text column also in another spelling of an integer)';

-- Validates every write to pdp.subject_column, whoever makes it: the column
-- exists and has a subject type, the writer (the role that called the
-- registry function, pdp._caller()) owns the table, and the column can take
-- its erase action (set_null: nullable; set_value: erase_value casts to its
-- type).  Each column has its own action, so registration order does not
-- matter.  Resolves attnum from col.
CREATE FUNCTION pdp._subject_column_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    att record;
BEGIN
    SELECT c.relkind, c.relowner, c.relnamespace, c.relname INTO rel
      FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) NEW.tbl::oid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', NEW.tbl::oid
            USING ERRCODE = 'undefined_table';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', rel.relname
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Only ordinary and partitioned tables can be registered.';
    END IF;
    IF rel.relnamespace IN ('pdp'::regnamespace, 'pg_catalog'::regnamespace,
                            'information_schema'::regnamespace) THEN
        RAISE EXCEPTION 'cannot register table "%"', rel.relname
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Tables of pdp_ext and of the system catalogs cannot be registered.';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    SELECT a.attnum, a.atttypid, a.atttypmod, a.attnotnull INTO att
      FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) NEW.tbl::oid
       AND a.attname OPERATOR(pg_catalog.=) NEW.col
       AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', NEW.col, rel.relname
            USING ERRCODE = 'undefined_column';
    END IF;
    IF att.attnum <= 0 THEN
        RAISE EXCEPTION 'cannot register system column "%"', NEW.col
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF NOT pdp.is_subject_type(att.atttypid::regtype) THEN
        RAISE EXCEPTION 'column "%" of table "%" has unsupported type %', NEW.col, rel.relname, att.atttypid::regtype
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'A subject column must be bigint, integer, text, varchar or uuid.';
    END IF;
    -- 0.3 spelled set_null "anonymise" (a restored 0.3 dump, a 0.3 caller).
    IF NEW.on_erase = 'anonymise' THEN
        NEW.on_erase := 'set_null';
    END IF;
    IF NEW.on_erase = 'set_null' AND att.attnotnull THEN
        RAISE EXCEPTION 'column "%" of table "%" is NOT NULL, so erasure cannot set it to NULL', NEW.col, rel.relname
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'on_erase => ''set_null'' cuts a row''s link to the erased subject by writing NULL.',
                  HINT = 'Use on_erase => ''set_value'' with an erase_value such as ''0'', or drop the NOT NULL constraint.';
    END IF;
    IF NEW.on_erase = 'set_value' THEN
        IF NEW.erase_value IS NULL THEN
            RAISE EXCEPTION 'on_erase => ''set_value'' needs an erase_value'
                USING ERRCODE = 'null_value_not_allowed',
                      HINT = 'Name the value erasure writes, e.g. erase_value => ''0''.';
        END IF;
        -- An explicit cast would cut a varchar value to length: refuse instead.
        IF att.atttypid OPERATOR(pg_catalog.=) 'character varying'::regtype AND att.atttypmod > 4
           AND pg_catalog.char_length(NEW.erase_value) > att.atttypmod - 4 THEN
            RAISE EXCEPTION 'erase_value does not fit column "%" of table "%" (type %)', NEW.col, rel.relname,
                            pg_catalog.format_type(att.atttypid, att.atttypmod)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'The value is longer than the column allows.';
        END IF;
        -- Stored in the column type's own text form, so erasure writes exactly it.
        BEGIN
            EXECUTE pg_catalog.format('SELECT ($1::%s)::text', pg_catalog.format_type(att.atttypid, att.atttypmod))
               INTO NEW.erase_value USING NEW.erase_value;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'erase_value does not fit column "%" of table "%" (type %)', NEW.col, rel.relname,
                            pg_catalog.format_type(att.atttypid, att.atttypmod)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'erase_value is cast to the column''s type when it is registered; give a value of that type.';
        END;
    ELSIF NEW.erase_value IS NOT NULL THEN
        RAISE EXCEPTION 'erase_value is only for on_erase => ''set_value'''
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    NEW.attnum := att.attnum;

    IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM pdp.subject_column s
                                     WHERE s.tbl OPERATOR(pg_catalog.=) NEW.tbl
                                       AND s.attnum OPERATOR(pg_catalog.=) NEW.attnum) THEN
        RAISE EXCEPTION 'column "%" of table "%" is already registered', NEW.col, rel.relname
            USING ERRCODE = 'duplicate_object';
    END IF;

    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._subject_column_check() IS
    'trigger: validates and resolves every write to pdp.subject_column';
CREATE TRIGGER subject_column_check BEFORE INSERT OR UPDATE ON pdp.subject_column
    FOR EACH ROW EXECUTE FUNCTION pdp._subject_column_check();
-- Also on a logical-replication subscriber (replica mode): a replicated
-- registration is checked there and its attnum resolved against the local table.
ALTER TABLE pdp.subject_column ENABLE ALWAYS TRIGGER subject_column_check;

-- The registry changes only through these functions: no role may write
-- pdp.subject_column.  Each runs its implementation pdp._api_<name> as
-- pdp_ext's owner, which checks that the caller owns the table (src/owner.c).
CREATE FUNCTION pdp.register_table(tbl regclass, subject_column name, on_erase text DEFAULT 'delete', erase_value text DEFAULT NULL)
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.register_table(regclass, name, text, text) IS
    'registers a column that names a data subject; on_erase (per column): delete, set_null, set_value (writes erase_value) or keep';

CREATE FUNCTION pdp._api_register_table(tbl regclass, subject_column name, on_erase text, erase_value text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR subject_column IS NULL OR on_erase IS NULL THEN
        RAISE EXCEPTION 'table, subject column and on_erase must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF on_erase = 'anonymise' THEN
        on_erase := 'set_null';   -- the 0.3 spelling
    END IF;
    IF on_erase NOT IN ('delete', 'set_null', 'set_value', 'keep') THEN
        RAISE EXCEPTION 'unknown on_erase action'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'on_erase is "delete", "set_null", "set_value" (with erase_value) or "keep".';
    END IF;
    INSERT INTO pdp.subject_column (tbl, col, attnum, on_erase, registered_by, erase_value)
    VALUES (tbl, subject_column, 0, on_erase, pg_catalog.pg_get_userbyid(pdp._caller()), erase_value);
    PERFORM pdp._sync_protection(tbl);    -- defined with the visibility capability
    PERFORM pdp._sync_rectification_trigger(tbl);   -- defined with the rights capability
    -- The erase value is a configuration value (0, a tombstone), but it stays
    -- out of the audit trail all the same: whether one was given is enough.
    PERFORM pdp._audit('register_table', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('subject_column', subject_column, 'on_erase', on_erase));
EXCEPTION WHEN unique_violation THEN
    -- A concurrent registration of the same column won the race.
    RAISE EXCEPTION 'column "%" of table "%" is already registered', subject_column,
          (SELECT c.relname FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid)
        USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION pdp._api_register_table(regclass, name, text, text) IS
    'pdp.register_table''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE FUNCTION pdp.unregister_table(tbl regclass, subject_column name DEFAULT NULL)
RETURNS integer
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.unregister_table(regclass, name) IS
    'removes a table''s registration (one subject column, or all when none is named); returns how many';

CREATE FUNCTION pdp._api_unregister_table(tbl regclass, subject_column name)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    n integer;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relname, c.relowner INTO rel FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) _api_unregister_table.tbl::oid;
    IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _api_unregister_table.tbl) THEN
        RAISE EXCEPTION 'table "%" is not registered', coalesce(rel.relname, tbl::oid::text)
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM pdp.subject_column s
     WHERE s.tbl OPERATOR(pg_catalog.=) _api_unregister_table.tbl
       AND (_api_unregister_table.subject_column IS NULL
            OR s.col OPERATOR(pg_catalog.=) _api_unregister_table.subject_column);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'column "%" of table "%" is not registered', subject_column, rel.relname
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM pdp._sync_protection(tbl);
    PERFORM pdp._sync_rectification_trigger(tbl);
    PERFORM pdp._audit('unregister_table', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('subject_column', subject_column, 'removed', n));
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp._api_unregister_table(regclass, name) IS
    'pdp.unregister_table''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE VIEW pdp.registered_tables AS
SELECT s.tbl                  AS table_name,
       n.nspname              AS schema_name,
       c.relname              AS relation_name,
       s.col                  AS subject_column,
       a.atttypid::regtype    AS subject_type,
       s.on_erase,
       s.registered_at,
       s.registered_by,
       s.erase_value
  FROM pdp.subject_column s
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.tbl::oid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid
                                AND a.attnum OPERATOR(pg_catalog.=) s.attnum;
COMMENT ON VIEW pdp.registered_tables IS
    'one row per registered (table, subject column), with current names and types';

