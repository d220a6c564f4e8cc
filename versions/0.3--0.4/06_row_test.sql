-- Issue 13: the SELECT policy's row test is given the row's ctid
-- (pdp._visible(subject, tid)), so that a row the statement is writing
-- passes without the policy's own "ctid = '(4294967295,0)' OR ...", which
-- every protected query planned.  Created this early because the parts that
-- re-install protection (60_owner.sql) build the new policies.

CREATE FUNCTION pdp._visible(subject bigint, row_id tid) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_int8';
COMMENT ON FUNCTION pdp._visible(bigint, tid) IS
    'row test of the SELECT policy: pdp._visible(subject), and true for a row the statement is writing (its ctid is (4294967295,0))';
CREATE FUNCTION pdp._visible(subject text, row_id tid) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_text';
COMMENT ON FUNCTION pdp._visible(text, tid) IS 'pdp._visible(subject, ctid) for text and varchar subjects';
CREATE FUNCTION pdp._visible(subject uuid, row_id tid) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_uuid';
COMMENT ON FUNCTION pdp._visible(uuid, tid) IS 'pdp._visible(subject, ctid) for uuid subjects';
REVOKE ALL ON FUNCTION pdp._visible(bigint, tid), pdp._visible(text, tid), pdp._visible(uuid, tid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._visible(bigint, tid), pdp._visible(text, tid), pdp._visible(uuid, tid) TO PUBLIC;

CREATE OR REPLACE FUNCTION pdp._visibility_sql(tbl regclass, with_row_id boolean) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ WITH RECURSIVE up(rel, depth) AS (
          SELECT tbl::oid, 0
          UNION ALL
          SELECT i.inhparent, up.depth + 1 FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) up.rel
           WHERE up.depth < 32),
      owner AS (   -- the table itself if registered, else its nearest registered ancestor
          SELECT up.rel FROM up WHERE EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl::oid OPERATOR(pg_catalog.=) up.rel)
           ORDER BY up.depth LIMIT 1)
      SELECT pg_catalog.string_agg(pg_catalog.format(CASE WHEN with_row_id THEN 'pdp._visible(%I, ctid)' ELSE 'pdp._visible(%I)' END,
                                                     s.col), ' AND ' ORDER BY s.attnum)
        FROM pdp.subject_column s JOIN owner ON s.tbl::oid OPERATOR(pg_catalog.=) owner.rel $$;
COMMENT ON FUNCTION pdp._visibility_sql(regclass, boolean) IS
    'the row test of a protected table, as SQL: its registered subject columns, or those of its nearest registered ancestor (NULL when none); with_row_id passes each call the row''s ctid (the SELECT policy''s form)';
REVOKE ALL ON FUNCTION pdp._visibility_sql(regclass, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._visibility_sql(regclass, boolean) TO pdp_admin;

CREATE OR REPLACE FUNCTION pdp._visibility_sql(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp._visibility_sql(tbl, false) $$;
