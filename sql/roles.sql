\set SHOW_CONTEXT never
-- Roles and privileges: the three roles exist, PUBLIC gets nothing it does
-- not need, and every SECURITY DEFINER function pins its search_path.
SELECT rolname, rolcanlogin, rolsuper FROM pg_roles
 WHERE rolname IN ('pdp_admin', 'pdp_reidentifier', 'pdp_auditor') ORDER BY 1;

-- No SECURITY DEFINER function without a pinned search_path.
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc p
 WHERE p.pronamespace = 'pdp'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false);

-- What PUBLIC may execute, and what it may touch among tables.
SELECT p.oid::regprocedure AS public_function
  FROM pg_proc p
 WHERE p.pronamespace = 'pdp'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY 1;
SELECT c.oid::regclass AS public_relation
  FROM pg_class c
 WHERE c.relnamespace = 'pdp'::regnamespace AND c.relkind IN ('r', 'v', 'S')
   AND (has_table_privilege('public', c.oid, 'SELECT')
        OR has_table_privilege('public', c.oid, 'INSERT')
        OR has_table_privilege('public', c.oid, 'UPDATE')
        OR has_table_privilege('public', c.oid, 'DELETE'));

CREATE ROLE regress_app;
CREATE ROLE regress_dpo IN ROLE pdp_auditor;
CREATE ROLE regress_admin IN ROLE pdp_admin;
CREATE TABLE regress_owned (id bigint PRIMARY KEY);

-- An application role cannot configure or read the registry.
SET ROLE regress_app;
SELECT pdp.register_table('regress_owned', 'id');
SELECT * FROM pdp.registered_tables;
SELECT * FROM pdp.key_status();
INSERT INTO pdp.subject_column VALUES ('regress_owned', 'id', 1, 'delete');
RESET ROLE;

-- pdp_admin alone is not enough: the table's owner must register it.
SET ROLE regress_admin;
SELECT pdp.register_table('regress_owned', 'id');
INSERT INTO pdp.subject_column (tbl, col, attnum, on_erase) VALUES ('regress_owned', 'id', 1, 'delete');
RESET ROLE;
ALTER TABLE regress_owned OWNER TO regress_admin;
SET ROLE regress_admin;
SELECT pdp.register_table('regress_owned', 'id');
SELECT table_name, subject_column, registered_by FROM pdp.registered_tables;
RESET ROLE;

-- The auditor reads the registry and key fingerprints but changes nothing.
SET ROLE regress_dpo;
SELECT table_name, subject_column FROM pdp.registered_tables;
SELECT count(*) FROM pdp.key_status();
SELECT pdp.unregister_table('regress_owned');
DELETE FROM pdp.subject_column;
RESET ROLE;

-- Another pdp_admin member who does not own the table cannot unregister it.
CREATE ROLE regress_admin2 IN ROLE pdp_admin;
SET ROLE regress_admin2;
SELECT pdp.unregister_table('regress_owned');
UPDATE pdp.subject_column SET on_erase = 'anonymise';
RESET ROLE;
SELECT on_erase FROM pdp.subject_column WHERE tbl = 'regress_owned'::regclass;

DROP TABLE regress_owned;
DROP ROLE regress_app, regress_dpo, regress_admin, regress_admin2;
