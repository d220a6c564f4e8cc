-- Citus checks (issue 18, step 1) on a server without Citus: no table is a
-- Citus table and nothing is refused.  Then, with a stand-in for Citus's
-- catalog, the refusals' messages and the purge's skipping.  Citus itself is
-- tested by test/tap/012_citus.pl.
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- Its purges remove large shares of small tables: no safety valve here (sql/retention.sql tests it).
SET pdp.purge_max_share = 1;

SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL AS no_citus_catalog;
CREATE SCHEMA cz;
CREATE TABLE cz.learners (id bigint PRIMARY KEY, learner bigint, email text, seen timestamptz);
INSERT INTO cz.learners SELECT g, 9000 + g, 'l' || g || '@example.org', now() - g * interval '100 days' FROM generate_series(1, 10) g;
SELECT pdp.register_table('cz.learners', 'learner', on_erase => 'anonymise');
SELECT pdp._citus_table_kind('cz.learners') IS NULL AS not_citus, pdp._citus_table_kind(NULL) IS NULL AS null_is_null;
-- No table of the earlier suites is a Citus table either.
SELECT pg_catalog.count(*) AS citus_tables FROM pdp.registered_tables WHERE pdp._citus_table_kind(table_name) IS NOT NULL;
SELECT pdp._refuse_on_citus('cz.learners', 'purge');

-- Every guarded entry point works on an ordinary table.
SELECT pdp.set_column_rule('cz.learners', 'email', 'pseudo_email');
CALL pdp.apply_rules('cz.learners');
SELECT pg_catalog.count(*) AS raw_emails FROM cz.learners WHERE email = 'l' || id || '@example.org';
SELECT pdp.pseudonymise_on_write('cz.learners');
SELECT pdp.protect_table('cz.learners');
SELECT pdp.unprotect_table('cz.learners');
SELECT pdp.set_retention('cz.learners', '1 year', 'seen', 'anonymise');
SELECT pdp.place_hold(9004, 'dispute') > 0 AS held;
SET client_min_messages = warning;
CALL pdp.purge();
RESET client_min_messages;
SELECT array_agg(l.id ORDER BY l.id) AS anonymised   -- 1..3 are younger than a year, 4 is held
  FROM cz.learners l JOIN pdp.anonymised_row a ON a.tbl = 'cz.learners'::regclass AND a.row_key = l.id::text;
SELECT pg_catalog.jsonb_array_length(errors) AS errors FROM pdp.purge_log ORDER BY id DESC LIMIT 1;
SELECT t ->> 'action' AS action, t ->> 'rows' AS erased_rows
  FROM pg_catalog.jsonb_array_elements(pdp.erase_subject(9002, 'asked') -> 'tables') t WHERE t ->> 'table' = 'cz.learners';
SELECT pdp.set_retention('cz.learners', '1 year');   -- no anchor: the tagging trigger
SELECT tgname FROM pg_trigger WHERE tgrelid = 'cz.learners'::regclass ORDER BY 1;

-- A stand-in for Citus's catalog (the columns pdp reads), so that the
-- refusals are seen here too.  Nothing may change in the tables.
SET allow_system_table_mods = on;
CREATE TABLE pg_catalog.pg_dist_partition (logicalrelid regclass, partmethod "char", colocationid integer, repmodel "char");
RESET allow_system_table_mods;
CREATE TABLE cz.dist (id bigint PRIMARY KEY, learner bigint, at timestamptz, note text);
CREATE TABLE cz.ref (id bigint PRIMARY KEY, learner bigint, at timestamptz);
CREATE TABLE cz.loc (id bigint PRIMARY KEY, learner bigint, at timestamptz);
CREATE TABLE cz.single (id bigint PRIMARY KEY, learner bigint, at timestamptz);
CREATE TABLE cz.anon (id bigint PRIMARY KEY, learner bigint, note text);
INSERT INTO cz.dist SELECT g, 9000 + g % 5, now() - g * interval '30 days', 'n' || g FROM generate_series(1, 20) g;
INSERT INTO cz.anon SELECT g, 9000 + g % 5, 'n' || g FROM generate_series(1, 10) g;
SELECT pdp.register_table(t, 'learner') FROM unnest(ARRAY['cz.dist', 'cz.ref', 'cz.loc', 'cz.single']::regclass[]) t;
SELECT pdp.register_table('cz.anon', 'learner', on_erase => 'anonymise');
SELECT pdp.set_column_rule('cz.anon', 'note', 'mask');
SELECT pdp.set_retention('cz.dist', '1 year', 'at');
INSERT INTO pg_catalog.pg_dist_partition VALUES
    ('cz.dist', 'h', 1, 's'), ('cz.ref', 'n', 2, 't'), ('cz.loc', 'n', 0, 's'), ('cz.single', 'n', 3, 's'),
    ('cz.anon', 'h', 1, 's');
SELECT t AS tbl, pdp._citus_table_kind(t) AS kind
  FROM unnest(ARRAY['cz.dist', 'cz.ref', 'cz.loc', 'cz.single', 'cz.learners']::regclass[]) t;
\set VERBOSITY default
SELECT pdp.protect_table('cz.dist');
\set VERBOSITY terse
SELECT pdp.protect_table('cz.ref');
SELECT pdp.protect_table('cz.loc');
SELECT pdp.set_column_rule('cz.dist', 'note', 'mask');
CALL pdp.apply_rules('cz.dist');
SELECT pdp.pseudonymise_on_write('cz.dist');
SELECT pdp.set_retention('cz.ref', '1 year');
SELECT pdp._purge_rows('cz.dist', 'delete', ARRAY['(0,1)']::tid[]);
-- The purges skip the table with a warning and record the refusal.
SET client_min_messages = warning;
SELECT table_name, rows FROM pdp.purge_expired() WHERE table_name::text LIKE 'cz.%';
CALL pdp.purge();
RESET client_min_messages;
SELECT e->>'table' AS tbl, e->>'sqlstate' AS sqlstate, e->>'message' AS message
  FROM pdp.purge_log l, pg_catalog.jsonb_array_elements(l.errors) e
 WHERE l.id = (SELECT max(id) FROM pdp.purge_log);
SELECT pg_catalog.count(*) AS dist_rows FROM cz.dist;   -- all 20
-- Erasure: deleting works on Citus tables; anonymising is refused, whole:
-- the rows erasure deleted from cz.dist before it reached cz.anon are back.
SELECT pdp.erase_subject(9003, 'asked');
SELECT (SELECT pg_catalog.count(*) FROM cz.dist) AS dist_rows,
       (SELECT pg_catalog.count(*) FROM cz.anon WHERE learner IS NOT NULL) AS anon_linked;   -- 20, 10
DELETE FROM pg_catalog.pg_dist_partition WHERE logicalrelid = 'cz.anon'::regclass;
SELECT t ->> 'table' AS tbl, t ->> 'action' AS action, t ->> 'rows' AS erased_rows
  FROM pg_catalog.jsonb_array_elements(pdp.erase_subject(9003, 'asked') -> 'tables') t
 WHERE t ->> 'table' LIKE 'cz.%' ORDER BY 1;
SELECT (SELECT pg_catalog.count(*) FROM cz.dist) AS dist_rows,
       (SELECT pg_catalog.count(*) FROM cz.anon WHERE learner IS NOT NULL) AS anon_linked;   -- 16, 8

SET allow_system_table_mods = on;
DROP TABLE pg_catalog.pg_dist_partition;
RESET allow_system_table_mods;
SELECT pdp.drop_retention('cz.dist');
SELECT pdp.drop_retention('cz.learners');
SELECT pdp.release_hold(id) FROM pdp.hold WHERE subject = '9004' AND released_at IS NULL;
DROP SCHEMA cz CASCADE;
