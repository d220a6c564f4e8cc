-- Links without foreign keys: rows of a child table follow rows of a parent
-- table through a column (mdl_forum_posts.discussion -> mdl_forum_discussions.id),
-- for applications that declare no foreign keys.  When erasure or a purge
-- deletes parent rows, the child rows that follow them go too, transitively
-- (a reply of a reply), and export includes them.  on_other says what
-- happens to a dependant written by another subject (its own 'delete'
-- column names someone else): delete it too, reparent it (set its link
-- column to reparent_value) or keep it (and report it).  Like the subject
-- registry, rows are keyed by attribute numbers, so renames are followed;
-- the names are kept in step by the event triggers and carried by pg_dump.

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
CREATE FUNCTION pdp._link_check() RETURNS trigger
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

CREATE FUNCTION pdp.declare_link(child regclass, child_column name, parent regclass, parent_column name DEFAULT 'id', on_other text DEFAULT 'delete', reparent_value text DEFAULT NULL)
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.declare_link(regclass, name, regclass, name, text, text) IS
    'declares (or replaces) that child rows follow parent rows through child_column = parent_column, for erasure, purge and export';

CREATE FUNCTION pdp._api_declare_link(child regclass, child_column name, parent regclass, parent_column name, on_other text, reparent_value text)
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

CREATE FUNCTION pdp.drop_link(child regclass, child_column name)
RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_link(regclass, name) IS 'removes the link of a child column; false if it had none';

CREATE FUNCTION pdp._api_drop_link(child regclass, child_column name)
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
CREATE FUNCTION pdp._own_columns(tbl regclass) RETURNS TABLE (col name, typ regtype)
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
CREATE FUNCTION pdp._owned_by_sql(tbl regclass, param text) RETURNS text
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
CREATE FUNCTION pdp._owned_by_other_sql(tbl regclass, param text) RETURNS text
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
CREATE FUNCTION pdp._link_returning(tbl regclass) RETURNS text
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
CREATE FUNCTION pdp._follow_links(parent regclass, removed jsonb, owners text[], keep text[], keep_any text[] DEFAULT '{}')
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
