-- Issue 16, points 1, 2 and 4; issue 14, class 6 for erasure, export and
-- receipts: erase actions per column (delete, set_null, set_value, keep),
-- links without foreign keys (pdp.link, pdp.declare_link, pdp.drop_link),
-- holds on the subject's own columns, purges that follow links, and no
-- one-column primary key needed.  See doc/rights.md and doc/registry.md.

-- The registry: on_erase per column, with an erase_value for set_value.
-- 0.3's "anonymise" becomes "set_null" (the trigger is off meanwhile: a
-- registration is moved as it is, not checked again).
ALTER TABLE pdp.subject_column ADD COLUMN erase_value text;
ALTER TABLE pdp.subject_column DROP CONSTRAINT subject_column_on_erase_check;
ALTER TABLE pdp.subject_column DISABLE TRIGGER subject_column_check;
UPDATE pdp.subject_column SET on_erase = 'set_null' WHERE on_erase = 'anonymise';
ALTER TABLE pdp.subject_column ENABLE ALWAYS TRIGGER subject_column_check;
ALTER TABLE pdp.subject_column
    ADD CONSTRAINT subject_column_on_erase_check CHECK (on_erase IN ('delete', 'set_null', 'set_value', 'keep')),
    ADD CONSTRAINT subject_column_erase_value_check CHECK ((on_erase = 'set_value') = (erase_value IS NOT NULL));
COMMENT ON COLUMN pdp.subject_column.on_erase IS 'what erasure does where this column names the erased subject: delete the row (the subject''s own column), set_null or set_value (cut the link), keep';
COMMENT ON COLUMN pdp.subject_column.erase_value IS 'for set_value: the value erasure writes (text form, checked to cast to the column''s type); else NULL';

CREATE OR REPLACE FUNCTION pdp._subject_column_check() RETURNS trigger
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

DROP FUNCTION pdp.register_table(regclass, name, text);
DROP FUNCTION pdp._api_register_table(regclass, name, text);
CREATE OR REPLACE FUNCTION pdp.register_table(tbl regclass, subject_column name, on_erase text DEFAULT 'delete', erase_value text DEFAULT NULL)
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;
COMMENT ON FUNCTION pdp.register_table(regclass, name, text, text) IS
    'registers a column that names a data subject; on_erase (per column): delete, set_null, set_value (writes erase_value) or keep';
CREATE OR REPLACE FUNCTION pdp._api_register_table(tbl regclass, subject_column name, on_erase text, erase_value text)
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

CREATE OR REPLACE VIEW pdp.registered_tables AS
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

-- Links (src/sql/12_links.sql).
CREATE TABLE pdp.link (
    child          regclass    NOT NULL,
    child_col      name        NOT NULL,
    child_attnum   smallint    NOT NULL,
    parent         regclass    NOT NULL,
    parent_col     name        NOT NULL,
    parent_attnum  smallint    NOT NULL,
    on_other       text        NOT NULL,
    reparent_value text,
    declared_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    declared_by    name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (child, child_attnum),
    CONSTRAINT link_on_other_check CHECK (on_other IN ('delete', 'reparent', 'keep')),
    CONSTRAINT link_reparent_value_check CHECK ((on_other = 'reparent') = (reparent_value IS NOT NULL))
);
CREATE INDEX link_parent_idx ON pdp.link (parent);
COMMENT ON TABLE pdp.link IS
    'declared links: child rows follow parent rows through child_col = parent_col (erasure, purge, export); change with pdp.declare_link and pdp.drop_link';
COMMENT ON COLUMN pdp.link.child IS 'the table whose rows follow';
COMMENT ON COLUMN pdp.link.child_col IS 'its column holding the parent''s value';
COMMENT ON COLUMN pdp.link.child_attnum IS 'attribute number of child_col, resolved from the name on every write';
COMMENT ON COLUMN pdp.link.parent IS 'the table whose rows are followed';
COMMENT ON COLUMN pdp.link.parent_col IS 'its column the child column refers to (usually id)';
COMMENT ON COLUMN pdp.link.parent_attnum IS 'attribute number of parent_col, resolved from the name on every write';
COMMENT ON COLUMN pdp.link.on_other IS 'a dependant written by another subject: delete, reparent (to reparent_value) or keep (and report)';
COMMENT ON COLUMN pdp.link.reparent_value IS 'for reparent: the value child_col is set to (text form, checked to cast to its type); else NULL';
COMMENT ON COLUMN pdp.link.declared_at IS 'when the link was declared';
COMMENT ON COLUMN pdp.link.declared_by IS 'the role that declared it';
SELECT pg_catalog.pg_extension_config_dump('pdp.link', '');

-- Validates every write to pdp.link, whoever makes it: both tables exist,
-- are ordinary or partitioned tables outside pdp and the catalogs, and are
-- owned by the writer (pdp._caller()); both columns exist and have the same
-- type; a reparent value casts to it.  Resolves the attnums from the names.
CREATE OR REPLACE FUNCTION pdp._link_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    side text;
    t regclass;
    c name;
    rel record;
    att record;
    child_att record;
BEGIN
    FOREACH side IN ARRAY ARRAY['child', 'parent'] LOOP
        IF side = 'child' THEN
            t := NEW.child; c := NEW.child_col;
        ELSE
            t := NEW.parent; c := NEW.parent_col;
        END IF;
        SELECT x.relkind, x.relowner, x.relnamespace, x.relname INTO rel
          FROM pg_class x WHERE x.oid OPERATOR(pg_catalog.=) t::oid;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'relation with OID % does not exist', t::oid USING ERRCODE = 'undefined_table';
        END IF;
        IF rel.relkind NOT IN ('r', 'p') THEN
            RAISE EXCEPTION '"%" is not a table', rel.relname
                USING ERRCODE = 'wrong_object_type',
                      HINT = 'Links join ordinary and partitioned tables.';
        END IF;
        IF rel.relnamespace IN ('pdp'::regnamespace, 'pg_catalog'::regnamespace, 'information_schema'::regnamespace) THEN
            RAISE EXCEPTION 'cannot link table "%"', rel.relname
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'Tables of pdp_ext and of the system catalogs cannot be linked.';
        END IF;
        -- Both sides: a link lets erasure and purge delete child rows when
        -- parent rows go, which only the owner of both may decide.
        IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
            RAISE EXCEPTION 'must be owner of table "%"', rel.relname
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A link is declared by the owner of both its child and its parent table.';
        END IF;
        SELECT a.attnum, a.atttypid, a.atttypmod, a.attnotnull INTO att
          FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) t::oid AND a.attname OPERATOR(pg_catalog.=) c AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of table "%" does not exist', c, rel.relname USING ERRCODE = 'undefined_column';
        END IF;
        IF att.attnum <= 0 THEN
            RAISE EXCEPTION 'cannot link system column "%"', c USING ERRCODE = 'feature_not_supported';
        END IF;
        IF side = 'child' THEN
            NEW.child_attnum := att.attnum;
            child_att := att;
        ELSE
            NEW.parent_attnum := att.attnum;
            IF att.atttypid OPERATOR(pg_catalog.<>) child_att.atttypid THEN
                RAISE EXCEPTION 'column "%" (%) and column "%" (%) have different types', NEW.child_col,
                                pg_catalog.format_type(child_att.atttypid, NULL), NEW.parent_col,
                                pg_catalog.format_type(att.atttypid, NULL)
                    USING ERRCODE = 'datatype_mismatch',
                          HINT = 'A link compares the child column with the parent column: give them the same type.';
            END IF;
        END IF;
    END LOOP;
    IF NEW.on_other = 'reparent' THEN
        IF NEW.reparent_value IS NULL THEN
            RAISE EXCEPTION 'on_other => ''reparent'' needs a reparent_value'
                USING ERRCODE = 'null_value_not_allowed',
                      HINT = 'Name the parent value dependants of other subjects move to, e.g. a tombstone row''s id.';
        END IF;
        BEGIN
            EXECUTE pg_catalog.format('SELECT ($1::%s)::text', pg_catalog.format_type(child_att.atttypid, child_att.atttypmod))
               INTO NEW.reparent_value USING NEW.reparent_value;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'reparent_value does not fit column "%" (type %)', NEW.child_col,
                            pg_catalog.format_type(child_att.atttypid, child_att.atttypmod)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'reparent_value is cast to the child column''s type when the link is declared.';
        END;
    ELSIF NEW.reparent_value IS NOT NULL THEN
        RAISE EXCEPTION 'reparent_value is only for on_other => ''reparent''' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._link_check() IS 'trigger: validates and resolves every write to pdp.link';
CREATE TRIGGER link_check BEFORE INSERT OR UPDATE ON pdp.link
    FOR EACH ROW EXECUTE FUNCTION pdp._link_check();
ALTER TABLE pdp.link ENABLE ALWAYS TRIGGER link_check;

CREATE OR REPLACE FUNCTION pdp.declare_link(child regclass, child_column name, parent regclass, parent_column name DEFAULT 'id', on_other text DEFAULT 'delete', reparent_value text DEFAULT NULL)
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.declare_link(regclass, name, regclass, name, text, text) IS
    'declares (or replaces) that child rows follow parent rows through child_column = parent_column, for erasure, purge and export';

CREATE OR REPLACE FUNCTION pdp._api_declare_link(child regclass, child_column name, parent regclass, parent_column name, on_other text, reparent_value text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF child IS NULL OR child_column IS NULL OR parent IS NULL OR parent_column IS NULL OR on_other IS NULL THEN
        RAISE EXCEPTION 'child, child column, parent, parent column and on_other must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF on_other NOT IN ('delete', 'reparent', 'keep') THEN
        RAISE EXCEPTION 'unknown on_other action'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'on_other is "delete", "reparent" (with reparent_value) or "keep".';
    END IF;
    -- The trigger checks ownership of both tables, the columns and the value.
    INSERT INTO pdp.link AS l (child, child_col, child_attnum, parent, parent_col, parent_attnum, on_other, reparent_value, declared_by)
    VALUES (child, child_column, 0, parent, parent_column, 0, on_other, reparent_value, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT link_pkey DO UPDATE
       SET parent = EXCLUDED.parent, parent_col = EXCLUDED.parent_col, on_other = EXCLUDED.on_other,
           reparent_value = EXCLUDED.reparent_value, declared_at = pg_catalog.now(), declared_by = EXCLUDED.declared_by;
    PERFORM pdp._audit('declare_link', child::text, NULL,
                       pg_catalog.jsonb_build_object('child_column', child_column, 'parent', parent::text,
                                                     'parent_column', parent_column, 'on_other', on_other));
END
$$;
COMMENT ON FUNCTION pdp._api_declare_link(regclass, name, regclass, name, text, text) IS
    'pdp.declare_link''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE OR REPLACE FUNCTION pdp.drop_link(child regclass, child_column name)
RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_link(regclass, name) IS 'removes the link of a child column; false if it had none';

CREATE OR REPLACE FUNCTION pdp._api_drop_link(child regclass, child_column name)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l record;
BEGIN
    IF child IS NULL OR child_column IS NULL THEN
        RAISE EXCEPTION 'child and child column must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Dropping a link changes what erasure reaches: the child's owner decides.
    PERFORM pdp._require_owner(child);
    DELETE FROM pdp.link x
     WHERE x.child OPERATOR(pg_catalog.=) _api_drop_link.child AND x.child_col OPERATOR(pg_catalog.=) _api_drop_link.child_column
    RETURNING x.* INTO l;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pdp._audit('drop_link', child::text, NULL,
                       pg_catalog.jsonb_build_object('child_column', child_column, 'parent', l.parent::text));
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp._api_drop_link(regclass, name) IS
    'pdp.drop_link''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE VIEW pdp.links AS
SELECT l.child, l.child_col AS child_column, l.parent, l.parent_col AS parent_column,
       pg_catalog.format_type(a.atttypid, NULL) AS link_type, l.on_other, l.reparent_value, l.declared_at, l.declared_by
  FROM pdp.link l
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) l.child::oid
                                AND a.attnum OPERATOR(pg_catalog.=) l.child_attnum;
COMMENT ON VIEW pdp.links IS 'one row per declared link, with current names';

-- Following links --------------------------------------------------------

-- The subject columns whose subject owns the row ("own" columns): the
-- 'delete' columns; in a table that has none, its set_null and set_value
-- columns (every subject it names owns the row: there is nobody else, as
-- for a 0.3 "anonymise" table).  A hold keeps rows where the held subject
-- is in an own column; a dependant is another subject's when an own column
-- names someone else.
CREATE OR REPLACE FUNCTION pdp._own_columns(tbl regclass) RETURNS TABLE (col name, typ regtype)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.col, a.atttypid::regtype FROM pdp.subject_column s
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) s.attnum
     WHERE s.tbl OPERATOR(pg_catalog.=) _own_columns.tbl
       AND (s.on_erase = 'delete'
            OR (s.on_erase IN ('set_null', 'set_value')
                AND NOT EXISTS (SELECT 1 FROM pdp.subject_column d WHERE d.tbl OPERATOR(pg_catalog.=) _own_columns.tbl
                                  AND d.on_erase = 'delete')))
     ORDER BY s.attnum
$$;
COMMENT ON FUNCTION pdp._own_columns(regclass) IS
    'a table''s own subject columns: its delete columns, or with none its set_null/set_value columns';

-- SQL condition (on alias t): an own column of tbl names one of the subjects
-- in the text[] parameter param (e.g. '$2'); 'false' when tbl has none.
-- Never NULL (a NULL column names nobody), so NOT of it is safe.
CREATE OR REPLACE FUNCTION pdp._owned_by_sql(tbl regclass, param text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce('(' || pg_catalog.string_agg(pdp._cell_in_sql(tbl, o.col, param), ' OR ') || ')',
                    'false')
      FROM pdp._own_columns(tbl) o
$$;
COMMENT ON FUNCTION pdp._owned_by_sql(regclass, text) IS 'SQL condition: an own column names one of the subjects in a text[] parameter';

-- SQL condition (on alias t): an own column of tbl names a subject that is
-- not in the text[] parameter param; 'false' when tbl has none.
CREATE OR REPLACE FUNCTION pdp._owned_by_other_sql(tbl regclass, param text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce('(' || pg_catalog.string_agg(pg_catalog.format(
                        '(t.%I IS NOT NULL AND NOT %s)', o.col, pdp._cell_in_sql(tbl, o.col, param)), ' OR ') || ')',
                    'false')
      FROM pdp._own_columns(tbl) o
$$;
COMMENT ON FUNCTION pdp._owned_by_other_sql(regclass, text) IS 'SQL condition: an own column names a subject outside a text[] parameter';

-- The RETURNING expression of a statement that removes rows of tbl: a jsonb
-- object with, for each column that links of tbl follow, "l:<col>" (its
-- value as text), and for each own column "o:<col>" (the owner).
CREATE OR REPLACE FUNCTION pdp._link_returning(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'pg_catalog.jsonb_build_object(' || coalesce(pg_catalog.string_agg(x.e, ', '), '') || ')'
      FROM (SELECT pg_catalog.format('%L, t.%I::text', 'l:' || c, c) AS e
              FROM (SELECT DISTINCT l.parent_col AS c FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) _link_returning.tbl) p
            UNION ALL
            SELECT pg_catalog.format('%L, t.%I::text', 'o:' || o.col, o.col) FROM pdp._own_columns(tbl) o) x
$$;
COMMENT ON FUNCTION pdp._link_returning(regclass) IS
    'RETURNING expression of a removal: the values links follow and the rows'' owners, as jsonb';

-- Follow the links of rows just removed from parent (removed: the jsonb
-- array of their pdp._link_returning values).  For each link of parent, the
-- child rows whose link column holds a removed value are, in this order:
--   kept, when an own column names a subject in keep (a held subject): a
--     hold keeps its subject's rows; or when any subject column names one in
--     keep_any (in a purge, a restricted subject, whose rows no purge touches);
--   given on_other, when an own column names a subject outside owners (the
--     erased subject, or the purged rows' owners): deleted, reparented
--     (link column set to reparent_value) or kept;
--   deleted otherwise (the removed rows' own dependants).
-- Deleted child rows are followed in turn.  Cycles end: a row once deleted
-- is not found again in this transaction, and only deleted rows are
-- followed.  Statements on each child run as its owner; a child under a
-- table-wide hold keeps every dependant.  Returns the counts per child,
-- action and link column.  Callable by no role (its callers are SECURITY
-- DEFINER): erasure and pdp._purge_rows.
CREATE OR REPLACE FUNCTION pdp._follow_links(parent regclass, removed jsonb, owners text[], keep text[], keep_any text[] DEFAULT '{}')
RETURNS TABLE (tbl regclass, action text, via name, rows bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    todo jsonb := '[]';
    item jsonb;
    p regclass;
    vals jsonb;
    l record;
    v text[];
    typ text;
    match text;
    mine text;
    other text;
    n_held bigint;
    n_other bigint;
    n bigint;
    rets jsonb;
    tally jsonb := '[]';
    table_held boolean;
BEGIN
    owners := coalesce(owners, '{}');
    keep := coalesce(keep, '{}');
    keep_any := coalesce(keep_any, '{}');
    IF removed IS NOT NULL AND pg_catalog.jsonb_array_length(removed) > 0 THEN
        todo := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('tbl', parent::oid, 'removed', removed));
    END IF;
    WHILE pg_catalog.jsonb_array_length(todo) > 0 LOOP
        item := todo->0;
        todo := todo OPERATOR(pg_catalog.-) 0;
        p := (item->>'tbl')::oid::regclass;
        FOR l IN SELECT x.child, x.child_col, x.parent_col, x.on_other, x.reparent_value,
                        pg_catalog.format_type(a.atttypid, NULL) AS typ
                   FROM pdp.link x
                   JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.child::oid
                                      AND a.attnum OPERATOR(pg_catalog.=) x.child_attnum
                  WHERE x.parent OPERATOR(pg_catalog.=) p ORDER BY x.child::oid, x.child_attnum LOOP
            v := ARRAY(SELECT DISTINCT r->>('l:' || l.parent_col) FROM pg_catalog.jsonb_array_elements(item->'removed') r
                        WHERE r->>('l:' || l.parent_col) IS NOT NULL);
            CONTINUE WHEN pg_catalog.cardinality(v) = 0;
            match := pg_catalog.format('t.%I OPERATOR(pg_catalog.=) ANY ($1::%s[])', l.child_col, l.typ);
            table_held := EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) l.child AND h.released_at IS NULL
                                    AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
            mine := CASE WHEN table_held THEN 'true'
                         ELSE '(' || pdp._owned_by_sql(l.child, '$3') || coalesce((
                                  SELECT ' OR ' || pg_catalog.string_agg(pdp._cell_in_sql(l.child, c.col, '$5'), ' OR ')
                                    FROM pdp.subject_column c WHERE c.tbl OPERATOR(pg_catalog.=) l.child), '') || ')' END;
            other := pdp._owned_by_other_sql(l.child, '$2');
            SELECT x.h, x.o INTO n_held, n_other
              FROM pdp._exec_as_owner(l.child, pg_catalog.format(
                       'SELECT pg_catalog.count(*) FILTER (WHERE %3$s), pg_catalog.count(*) FILTER (WHERE NOT %3$s AND %4$s) '
                       'FROM %1$s t WHERE %2$s', l.child, match, mine, other), v, owners, keep, NULL::text, keep_any)
                   AS x(h bigint, o bigint);
            IF n_held > 0 THEN
                tally := tally || pg_catalog.jsonb_build_object('tbl', l.child::oid, 'action', 'follow held', 'via', l.child_col, 'rows', n_held);
            END IF;
            IF n_other > 0 AND l.on_other = 'keep' THEN
                tally := tally || pg_catalog.jsonb_build_object('tbl', l.child::oid, 'action', 'follow keep', 'via', l.child_col, 'rows', n_other);
            ELSIF n_other > 0 AND l.on_other = 'reparent' THEN
                SELECT pg_catalog.count(*) INTO n
                  FROM pdp._exec_as_owner(l.child, pg_catalog.format(
                           'UPDATE %1$s t SET %2$I = $4::%3$s WHERE %4$s AND NOT %5$s AND %6$s RETURNING 1',
                           l.child, l.child_col, l.typ, match, mine, other), v, owners, keep, l.reparent_value, keep_any)
                       AS x(one integer);
                tally := tally || pg_catalog.jsonb_build_object('tbl', l.child::oid, 'action', 'follow reparent', 'via', l.child_col, 'rows', n);
            END IF;
            CONTINUE WHEN table_held;
            SELECT pg_catalog.count(*), pg_catalog.jsonb_agg(x.r) INTO n, rets
              FROM pdp._exec_as_owner(l.child, pg_catalog.format(
                       'DELETE FROM %1$s t WHERE %2$s AND NOT %3$s%4$s RETURNING %5$s',
                       l.child, match, mine, CASE WHEN l.on_other = 'delete' THEN '' ELSE ' AND NOT ' || other END,
                       CASE WHEN EXISTS (SELECT 1 FROM pdp.link y WHERE y.parent OPERATOR(pg_catalog.=) l.child)
                            THEN pdp._link_returning(l.child) ELSE 'NULL::jsonb' END),
                       v, owners, keep, NULL::text, keep_any) AS x(r jsonb);
            IF n > 0 THEN
                tally := tally || pg_catalog.jsonb_build_object('tbl', l.child::oid, 'action', 'follow delete', 'via', l.child_col, 'rows', n);
                IF EXISTS (SELECT 1 FROM pdp.link y WHERE y.parent OPERATOR(pg_catalog.=) l.child) THEN
                    todo := todo || pg_catalog.jsonb_build_object('tbl', l.child::oid, 'removed', rets);
                END IF;
            END IF;
        END LOOP;
    END LOOP;
    RETURN QUERY
        SELECT (e->>'tbl')::oid::regclass, e->>'action', (e->>'via')::name, pg_catalog.sum((e->>'rows')::bigint)::bigint
          FROM pg_catalog.jsonb_array_elements(tally) e
         GROUP BY 1, 2, 3 ORDER BY 1::text, 3, 2;
END
$$;
COMMENT ON FUNCTION pdp._follow_links(regclass, jsonb, text[], text[], text[]) IS
    'deletes, reparents or keeps the rows that follow removed parent rows through declared links, transitively; returns counts';

-- Erasure and export per column and along links (src/sql/80_rights.sql).
DROP FUNCTION pdp._subject_match(regclass, text);
CREATE OR REPLACE FUNCTION pdp._subject_types(subject text) RETURNS regtype[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fit regtype[] := ARRAY['text'::regtype, 'character varying'::regtype];
    i bigint;
    u uuid;
BEGIN
    BEGIN
        i := subject::bigint;
        fit := fit || 'bigint'::regtype;
        IF i BETWEEN -2147483648 AND 2147483647 THEN
            fit := fit || 'integer'::regtype;
        END IF;
    EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
        NULL;
    END;
    BEGIN
        u := subject::uuid;
        fit := fit || 'uuid'::regtype;
    EXCEPTION WHEN invalid_text_representation THEN
        NULL;
    END;
    RETURN fit;
END
$$;
COMMENT ON FUNCTION pdp._subject_types(text) IS 'the subject column types a subject fits (pdp.is_subject_type types)';
CREATE OR REPLACE FUNCTION pdp._subject_columns(tbl regclass, fit regtype[])
RETURNS TABLE (col name, typ regtype, on_erase text, erase_value text, fits boolean)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT sc.col, a.atttypid::regtype, sc.on_erase, sc.erase_value, a.atttypid::regtype OPERATOR(pg_catalog.=) ANY (fit)
      FROM pdp.subject_column sc
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) sc.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) sc.attnum
     WHERE sc.tbl OPERATOR(pg_catalog.=) _subject_columns.tbl
     ORDER BY sc.attnum;
END
$$;
COMMENT ON FUNCTION pdp._subject_columns(regclass, regtype[]) IS
    'a registered table''s subject columns with their erase actions, and whether a subject of the given types fits each one';
CREATE OR REPLACE FUNCTION pdp._match_sql(tbl regclass, fit regtype[], actions text[] DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT pg_catalog.string_agg(pdp._subject_eq_sql(_match_sql.tbl, a.attname, fit), ' OR '
                                         ORDER BY sc.attnum)
              FROM pdp.subject_column sc
              JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) sc.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) sc.attnum
             WHERE sc.tbl OPERATOR(pg_catalog.=) _match_sql.tbl AND a.atttypid::regtype OPERATOR(pg_catalog.=) ANY (fit)
               AND (actions IS NULL OR sc.on_erase OPERATOR(pg_catalog.=) ANY (actions)));
END
$$;
COMMENT ON FUNCTION pdp._match_sql(regclass, regtype[], text[]) IS
    'SQL condition finding a subject of the given types in a registered table''s subject columns (with the given erase actions, or all)';
CREATE OR REPLACE FUNCTION pdp._subject_match(tbl regclass, subject text, actions text[] DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN pdp._match_sql(tbl, pdp._subject_types(subject), actions);
END
$$;
COMMENT ON FUNCTION pdp._subject_match(regclass, text, text[]) IS
    'SQL condition finding a subject''s rows in a registered table (in the columns with the given erase actions, or all)';
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
COMMENT ON FUNCTION pdp.export_subject(text) IS
    'every row of the subject in every registered table, the rows that follow theirs through declared links, with consents, restrictions, holds, disclosures, purposes and retention (GDPR Art. 15, 20)';
-- pdp.erase_subject: re-created with its sweep argument by 76_anonymise.sql.
COMMENT ON FUNCTION pdp.erase_subject(text, text) IS
    'erases the subject per column (delete the rows they own, set_null/set_value their links, keep), following declared links; refused under their hold; returns and stores a receipt';

-- Links follow renames and drops (src/sql/40_catalog_sync.sql).
-- (pdp._on_sql_drop is re-created last, in 99_catalog_sync.sql: during the update it must not read objects later parts create.)
-- (pdp._on_alter_table is re-created last, in 99_catalog_sync.sql: during the update it must not read objects later parts create.)
COMMENT ON FUNCTION pdp._on_alter_table() IS
    'event trigger: follows column renames (registry, rules, links); refuses type changes that registrations, rules or links cannot take';

-- Purge: holds on own columns, links followed, no one-column key needed
-- (src/sql/70_retention.sql).
CREATE OR REPLACE FUNCTION pdp._single_key(tbl regclass) RETURNS name
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k name;
BEGIN
    SELECT a.attname INTO k FROM pg_index i
      JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
     WHERE i.indrelid OPERATOR(pg_catalog.=) tbl::oid AND i.indisprimary AND i.indnatts OPERATOR(pg_catalog.=) 1;
    IF k IS NULL THEN
        RAISE EXCEPTION 'table "%" needs a single-column primary key', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Retention without an anchor column tags rows by primary key; give it an anchor column, or a one-column key.';
    END IF;
    RETURN k;
END
$$;
CREATE OR REPLACE FUNCTION pdp._row_key_sql(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.count(*) = 1 THEN pg_catalog.format('t.%I::text', pg_catalog.min(a.attname))
                WHEN pg_catalog.count(*) > 1
                THEN 'ROW(' || pg_catalog.string_agg(pg_catalog.format('t.%I', a.attname), ', ' ORDER BY k.i) || ')::text' END
      FROM pg_catalog.pg_index x
      CROSS JOIN LATERAL pg_catalog.unnest(x.indkey::smallint[]) WITH ORDINALITY k(attnum, i)
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
     WHERE x.indrelid OPERATOR(pg_catalog.=) tbl::oid AND x.indisprimary
$$;
COMMENT ON FUNCTION pdp._row_key_sql(regclass) IS 'SQL of a row''s primary key as text (one column or composite), NULL without one';
CREATE OR REPLACE FUNCTION pdp._require_row_key_sql(tbl regclass) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text := pdp._row_key_sql(tbl);
BEGIN
    IF k IS NULL THEN
        RAISE EXCEPTION 'table "%" needs a primary key', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Anonymising purges record the rows they anonymised by primary key.';
    END IF;
    RETURN k;
END
$$;
COMMENT ON FUNCTION pdp._require_row_key_sql(regclass) IS 'pdp._row_key_sql, or an error when the table has no primary key';
CREATE OR REPLACE FUNCTION pdp._purge_action(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce((SELECT p.action FROM pdp.retention_policy p WHERE p.tbl OPERATOR(pg_catalog.=) _purge_action.tbl),
                      CASE WHEN EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _purge_action.tbl
                                          AND s.on_erase = 'delete') THEN 'delete'
                           WHEN EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _purge_action.tbl)
                           THEN 'anonymise' END) $$;
COMMENT ON FUNCTION pdp._purge_action(regclass) IS
    'delete or anonymise: what purging a table does (its retention action; else delete if it has a delete column, else anonymise)';
-- A ctid repeats from one partition to the next: rows are named by tableoid too.
DROP FUNCTION pdp._find_expired(regclass, text, boolean, integer, timestamptz);
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
COMMENT ON FUNCTION pdp._find_expired(regclass, text, boolean, integer, timestamptz) IS
    'a batch of a table''s expired, unheld rows (ctids, their tableoids and position), or with a NULL batch size their count; read as the table''s owner';
DROP FUNCTION pdp._purge_rows(regclass, text, tid[]);
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
COMMENT ON FUNCTION pdp._purge_rows(regclass, text, tid[], oid[]) IS 'deletes or anonymises the given rows of a table, following declared links';
CREATE OR REPLACE FUNCTION pdp._purge_batch(tbl regclass, reason text, batch_size integer, after timestamptz, lock boolean,
                                 OUT n bigint, OUT pos timestamptz, OUT got boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ctids tid[];
    tableoids oid[];
BEGIN
    IF batch_size IS NULL THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pdp._citus_table_kind(tbl) IS NOT NULL THEN
        -- A distributed or reference table: by primary key, shard by shard.
        SELECT c.n, c.pos INTO n, pos FROM pdp._purge_citus_batch(tbl, reason, batch_size, after) c;
        got := n OPERATOR(pg_catalog.>) 0;
        RETURN;
    END IF;
    SELECT f.ctids, f.pos, f.tableoids INTO ctids, pos, tableoids FROM pdp._find_expired(tbl, reason, lock, batch_size, after) f;
    got := ctids IS NOT NULL;
    n := CASE WHEN got THEN pdp._purge_rows(tbl, pdp._purge_action(tbl), ctids, tableoids) ELSE 0 END;
END
$$;

-- Privileges (src/sql/99_privileges.sql).
REVOKE ALL ON pdp.link, pdp.links FROM PUBLIC;
REVOKE ALL ON FUNCTION
    pdp.register_table(regclass, name, text, text), pdp._api_register_table(regclass, name, text, text),
    pdp._link_check(), pdp.declare_link(regclass, name, regclass, name, text, text),
    pdp._api_declare_link(regclass, name, regclass, name, text, text), pdp.drop_link(regclass, name),
    pdp._api_drop_link(regclass, name), pdp._own_columns(regclass), pdp._owned_by_sql(regclass, text),
    pdp._owned_by_other_sql(regclass, text), pdp._link_returning(regclass),
    pdp._follow_links(regclass, jsonb, text[], text[], text[]), pdp._subject_match(regclass, text, text[]),
    pdp._subject_types(text), pdp._subject_columns(regclass, regtype[]), pdp._match_sql(regclass, regtype[], text[]),
    pdp._row_key_sql(regclass), pdp._require_row_key_sql(regclass),
    pdp._find_expired(regclass, text, boolean, integer, timestamptz), pdp._purge_rows(regclass, text, tid[], oid[])
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._find_expired(regclass, text, boolean, integer, timestamptz) TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.register_table(regclass, name, text, text) TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._subject_match(regclass, text, text[]) TO pdp_admin;
GRANT SELECT ON pdp.link, pdp.links TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.declare_link(regclass, name, regclass, name, text, text), pdp.drop_link(regclass, name)
TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._subject_types(text), pdp._subject_columns(regclass, regtype[]), pdp._match_sql(regclass, regtype[], text[]),
                          pdp._own_columns(regclass),
                          pdp._owned_by_sql(regclass, text), pdp._owned_by_other_sql(regclass, text),
                          pdp._link_returning(regclass), pdp._row_key_sql(regclass), pdp._require_row_key_sql(regclass)
TO pdp_admin;
