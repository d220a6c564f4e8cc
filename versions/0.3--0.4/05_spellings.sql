-- Other spellings of an integer subject in text subject columns: where
-- integer and text subject columns are both registered, a text cell '007'
-- names learner 7 for erasure, export, the purges' held and restricted
-- guards and the inactivity cut, as it already did for the row test and
-- (since this version) the write guard.  Created first: the SQL-language
-- builders of later parts call them.

-- Other spellings of an integer in text subject columns.  Where integer and
-- text subject columns are both registered, a subject that is an integer
-- has one canonical form ('7'), and a text column's cell '007' names that
-- learner too: the row test reads it so (visibility.c), and so do erasure,
-- export and the purges' held and restricted guards, through the two SQL
-- builders below.  With text columns only, '007' and '7' stay two subjects.
CREATE OR REPLACE FUNCTION pdp._integer_spelling(value text) RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pdp_integer_spelling';
COMMENT ON FUNCTION pdp._integer_spelling(text) IS
    'the canonical decimal of a text spelling an integer (''007'' gives ''7''), NULL for any other text';

CREATE OR REPLACE FUNCTION pdp._spellings_apply() RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pdp_spellings_apply';
COMMENT ON FUNCTION pdp._spellings_apply() IS
    'are integer and text subject columns both registered, so that a text cell spelling an integer names that integer''s subject?';

-- SQL (on alias t): column col of tbl names the subject in parameter $1 of
-- the type list fit (pdp._subject_types), in its own type so its indexes
-- serve; a text column also by another spelling of an integer subject.
CREATE OR REPLACE FUNCTION pdp._subject_eq_sql(tbl regclass, col name, fit regtype[]) RETURNS text
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
CREATE OR REPLACE FUNCTION pdp._cell_in_sql(tbl regclass, col name, arr text) RETURNS text
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

REVOKE ALL ON FUNCTION pdp._spellings_apply(), pdp._subject_eq_sql(regclass, name, regtype[]),
                       pdp._cell_in_sql(regclass, name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._spellings_apply(), pdp._subject_eq_sql(regclass, name, regtype[]),
                          pdp._cell_in_sql(regclass, name, text) TO pdp_admin;
REVOKE ALL ON FUNCTION pdp._integer_spelling(text) FROM PUBLIC;   -- (so its ACL reads as a fresh install's)
GRANT EXECUTE ON FUNCTION pdp._integer_spelling(text) TO PUBLIC;
