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
CREATE TABLE pg_catalog.pg_dist_partition (logicalrelid regclass, partmethod "char", colocationid integer, repmodel "char",
                                           partkey text);   -- (Citus's is a column's node string; here the column's name)
CREATE FUNCTION pg_catalog.column_to_column_name(regclass, text) RETURNS text LANGUAGE sql AS 'SELECT $2';
RESET allow_system_table_mods;
CREATE TABLE cz.dist (id bigint PRIMARY KEY, learner bigint, at timestamptz, note text);
CREATE TABLE cz.ref (id bigint PRIMARY KEY, learner bigint, at timestamptz);
CREATE TABLE cz.loc (id bigint PRIMARY KEY, learner bigint, at timestamptz);
CREATE TABLE cz.single (id bigint PRIMARY KEY, learner bigint, at timestamptz);
CREATE TABLE cz.anon (id bigint PRIMARY KEY, learner bigint, note text);
CREATE TABLE cz.nokey (id bigint, learner bigint, at timestamptz);
INSERT INTO cz.dist SELECT g, 9000 + g % 5, now() - g * interval '30 days', 'n' || g FROM generate_series(1, 20) g;
INSERT INTO cz.anon SELECT g, 9000 + g % 5, 'n' || g FROM generate_series(1, 10) g;
INSERT INTO cz.nokey SELECT g, 9000 + g % 5, now() - g * interval '30 days' FROM generate_series(1, 20) g;
SELECT pdp.register_table(t, 'learner') FROM unnest(ARRAY['cz.dist', 'cz.ref', 'cz.loc', 'cz.single', 'cz.nokey']::regclass[]) t;
SELECT pdp.register_table('cz.anon', 'learner', on_erase => 'anonymise');
SELECT pdp.set_column_rule('cz.anon', 'note', 'mask');
SELECT pdp.set_retention('cz.dist', '1 year', 'at');
SELECT pdp.set_retention('cz.nokey', '1 year', 'at');
INSERT INTO pg_catalog.pg_dist_partition VALUES
    ('cz.dist', 'h', 1, 's'), ('cz.ref', 'n', 2, 't'), ('cz.loc', 'n', 0, 's'), ('cz.single', 'n', 3, 's'),
    ('cz.anon', 'h', 1, 's'), ('cz.nokey', 'h', 1, 's');
SELECT t AS tbl, pdp._citus_table_kind(t) AS kind
  FROM unnest(ARRAY['cz.dist', 'cz.ref', 'cz.loc', 'cz.single', 'cz.learners']::regclass[]) t;
-- Distributed and reference tables are protected (issue 18, step 5): pdp's
-- policies permissive and alone (Citus drops AS RESTRICTIVE on the shards),
-- the trigger given the table's and the subject columns' names; a table
-- with a policy of its own, and a Citus local table, are refused.
SELECT pdp.protect_table('cz.dist');
SELECT pdp.protect_table('cz.ref');
SELECT polrelid::regclass AS tbl, polname, polpermissive FROM pg_catalog.pg_policy
 WHERE polrelid IN ('cz.dist'::regclass, 'cz.ref'::regclass) ORDER BY 1, 2;
SELECT tgrelid::regclass AS tbl, tgname, tgnargs, pg_catalog.encode(tgargs, 'escape') AS args FROM pg_catalog.pg_trigger
 WHERE tgrelid IN ('cz.dist'::regclass, 'cz.ref'::regclass) AND NOT tgisinternal ORDER BY 1;
SELECT pg_catalog.current_setting('citus.enable_unsafe_triggers', true) AS unsafe_triggers_after;
CREATE POLICY mine ON cz.dist FOR SELECT USING (true);
SELECT pdp.unprotect_table('cz.ref');
CREATE POLICY mine ON cz.ref FOR SELECT USING (true);
\set VERBOSITY default
SELECT pdp.protect_table('cz.ref');
\set VERBOSITY terse
DROP POLICY mine ON cz.ref;
SELECT pdp.protect_table('cz.loc');
SELECT pdp.set_column_rule('cz.dist', 'note', 'mask');
CALL pdp.apply_rules('cz.dist');
SELECT pdp.pseudonymise_on_write('cz.dist');
SELECT pdp.set_retention('cz.ref', '1 year');
SELECT pdp._purge_rows('cz.dist', 'delete', ARRAY['(0,1)']::tid[]);
-- The purges delete the expired rows of cz.dist by primary key (issue 18,
-- step 4; 6 of them: 8 are older than a year, 2 of those held), and skip
-- cz.nokey, which has none, with a warning, recording the refusal.
SET client_min_messages = warning;
SELECT table_name, rows FROM pdp.purge_expired() WHERE table_name::text LIKE 'cz.%';
CALL pdp.purge();
RESET client_min_messages;
SELECT e->>'table' AS tbl, e->>'sqlstate' AS sqlstate, e->>'message' AS message
  FROM pdp.purge_log l, pg_catalog.jsonb_array_elements(l.errors) e
 WHERE l.id = (SELECT max(id) FROM pdp.purge_log);
SELECT pg_catalog.count(*) AS dist_rows FROM cz.dist;   -- 14
SELECT pg_catalog.count(*) AS nokey_rows FROM cz.nokey;   -- all 20
-- Erasure: deleting works on Citus tables; anonymising too, except what
-- Citus cannot run in an UPDATE (randomise, here), which is refused whole:
-- the rows erasure deleted from cz.dist before it reached cz.anon are back.
SELECT pdp.set_anonymisation('cz.anon', 'note', 'randomise');
SELECT pdp.erase_subject(9003, 'asked');
SELECT (SELECT pg_catalog.count(*) FROM cz.dist) AS dist_rows,
       (SELECT pg_catalog.count(*) FROM cz.anon WHERE learner IS NOT NULL) AS anon_linked;   -- 14, 10
SELECT pdp.drop_anonymisation('cz.anon', 'note');
SELECT t ->> 'table' AS tbl, t ->> 'action' AS action, t ->> 'rows' AS erased_rows
  FROM pg_catalog.jsonb_array_elements(pdp.erase_subject(9003, 'asked') -> 'tables') t
 WHERE t ->> 'table' LIKE 'cz.%' ORDER BY 1;
SELECT (SELECT pg_catalog.count(*) FROM cz.dist) AS dist_rows,
       (SELECT pg_catalog.count(*) FROM cz.anon WHERE learner IS NOT NULL) AS anon_linked;   -- 12, 8
-- Links declared from a Citus table are not followed on the shards: an
-- erasure reaching one is refused whole, nothing erased.
CREATE TABLE cz.kid (id bigint PRIMARY KEY, dist_id bigint);
INSERT INTO cz.kid SELECT g, g FROM generate_series(1, 20) g;
SELECT pdp.declare_link('cz.kid', 'dist_id', 'cz.dist', 'id');
\set VERBOSITY default
SELECT pdp.erase_subject(9001, 'asked');
\set VERBOSITY terse
SELECT (SELECT pg_catalog.count(*) FROM cz.dist) AS dist_rows, (SELECT pg_catalog.count(*) FROM cz.kid) AS kid_rows;   -- 12, 20
SELECT pdp.drop_link('cz.kid', 'dist_id');
DROP TABLE cz.kid;

SET allow_system_table_mods = on;
DROP TABLE pg_catalog.pg_dist_partition;
DROP FUNCTION pg_catalog.column_to_column_name(regclass, text);
RESET allow_system_table_mods;

-- Step 6 (one key, one audit trail): without Citus, key_status and
-- verify_audit_log answer for this server only, node, mismatch and nodes
-- NULL, and the report has no nodes.
SELECT pdp._citus_has_workers() AS has_workers;
SELECT count(*) AS versions, count(node) AS with_node, count(mismatch) AS with_mismatch FROM pdp.key_status();
SELECT ok, nodes IS NULL AS no_nodes FROM pdp.verify_audit_log();
SELECT pdp.report('json')::jsonb ?| ARRAY['nodes', 'reversals', 'key_mismatch'] AS report_has_nodes,
       pdp.report('json')::jsonb -> 'audit' ? 'nodes' AS audit_has_nodes;
-- With a stand-in for Citus's node catalog and run_command_on_workers, whose
-- answers the test sets: first a worker (group 1), which never asks further.
SET allow_system_table_mods = on;
CREATE TABLE pg_catalog.pg_dist_local_group (groupid integer);
CREATE TABLE pg_catalog.pg_dist_node (nodename text, nodeport integer, groupid integer, isactive boolean, noderole text);
CREATE TABLE cz.answer (nodename text, nodeport integer, asked text, success boolean, result text);
CREATE FUNCTION pg_catalog.run_command_on_workers(command text, parallel boolean DEFAULT true,
                                                  OUT nodename text, OUT nodeport integer, OUT success boolean, OUT result text)
RETURNS SETOF record LANGUAGE sql AS $$
    SELECT a.nodename, a.nodeport, a.success, a.result FROM cz.answer a
     WHERE command LIKE '%' || a.asked || '%' ORDER BY 1, 2 $$;
RESET allow_system_table_mods;
INSERT INTO pg_catalog.pg_dist_local_group VALUES (1);
INSERT INTO pg_catalog.pg_dist_node VALUES ('w1', 5432, 1, true, 'primary'), ('w2', 5432, 2, true, 'primary');
SELECT pdp._citus_has_workers() AS on_a_worker;
SELECT count(node) AS with_node FROM pdp.key_status();
UPDATE pg_catalog.pg_dist_local_group SET groupid = 0;
SELECT pdp._citus_has_workers() AS on_the_coordinator;
-- w1 has the same key, w2 another; then w2 cannot be reached.
INSERT INTO cz.answer SELECT 'w1', 5432, 'pdp.key_status()', true,
    (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(k))::text FROM pdp._key_status_local() k);
INSERT INTO cz.answer VALUES ('w2', 5432, 'pdp.key_status()', true, '[{"version": 1, "fingerprint": "0123456789abcdef", "active": true}]');
SELECT version, fingerprint = (SELECT fingerprint FROM pdp._key_status_local()) AS coordinators, active, node, mismatch FROM pdp.key_status();
UPDATE cz.answer SET success = false, result = 'connection to the remote node w2:5432 failed' WHERE nodename = 'w2';
SELECT version, active, node, mismatch FROM pdp.key_status();
UPDATE cz.answer SET success = true, result = '[{"version": 1, "fingerprint": "0123456789abcdef", "active": true}]' WHERE nodename = 'w2';
-- Each worker's verification and reversals: both fine, then w2's chain broken.
INSERT INTO cz.answer VALUES
    ('w1', 5432, 'pdp.verify_audit_log()', true, '{"ok": true, "entries": 7, "first_bad_id": null, "keyed": true, "message": "ok: 7 entries", "reversals": 2}'),
    ('w2', 5432, 'pdp.verify_audit_log()', true, '{"ok": true, "entries": 5, "first_bad_id": null, "keyed": true, "message": "ok: 5 entries", "reversals": 3}');
SELECT ok, pg_catalog.regexp_replace(message, '\d+ entries on the coordinator', 'N entries on the coordinator') AS message,
       pg_catalog.jsonb_path_query_array(nodes, '$[*].node') AS nodes, pg_catalog.jsonb_path_query_array(nodes, '$[1 to last].reversals') AS reversals
  FROM pdp.verify_audit_log();
SELECT r -> 'reversals' -> 'on_workers' AS on_workers, (r -> 'reversals' ->> 'total')::bigint - 5 = (SELECT count(*) FROM pdp.audit_log WHERE action = 'reverse') AS total_adds_up,
       r -> 'key_mismatch' AS key_mismatch, r -> 'cluster_audit_ok' AS cluster_ok
  FROM (SELECT pdp.report('json')::jsonb r) x;
UPDATE cz.answer SET result = '{"ok": false, "entries": 5, "first_bad_id": 4, "keyed": true, "message": "an entry does not match its seal''s hash", "reversals": 3}'
 WHERE nodename = 'w2' AND asked = 'pdp.verify_audit_log()';
SELECT ok, first_bad_id, pg_catalog.regexp_replace(message, 'ok: \d+ entries', 'ok: N entries') AS message,
       nodes -> 2 ->> 'first_bad_id' AS w2_first_bad FROM pdp.verify_audit_log();
SELECT pg_catalog.strpos(pdp.report('markdown'), '**The audit trail does not verify on every node**') > 0 AS md_says_so,
       pg_catalog.strpos(pdp.report('markdown'), '| w2:5432 | **broken**: an entry does not match its seal''s hash | 5 | 3 | **differs** |') > 0 AS md_row,
       pg_catalog.strpos(pdp.report('html'), '<td>w2:5432</td><td class="bad">broken: an entry does not match its seal''s hash</td>') > 0 AS html_row;
UPDATE cz.answer SET success = false, result = 'connection to the remote node w2:5432 failed' WHERE nodename = 'w2';
SELECT pg_catalog.strpos(pdp.report('markdown'), 'The key fingerprints of some nodes could not be read') > 0 AS md_unread;
SELECT ok, pg_catalog.regexp_replace(message, 'ok: \d+ entries', 'ok: N entries') AS message, nodes -> 2 ->> 'message' AS w2 FROM pdp.verify_audit_log();
SET allow_system_table_mods = on;
DROP FUNCTION pg_catalog.run_command_on_workers(text, boolean);
DROP TABLE pg_catalog.pg_dist_local_group, pg_catalog.pg_dist_node;
RESET allow_system_table_mods;
SELECT pdp._citus_has_workers() AS has_workers_again;

-- Step 2 (state where it is read): without Citus, pdp.citus_sync_state is
-- refused and the row check reads pdp's own tables.
SELECT pdp.citus_sync_state();
SELECT pdp.define_purpose('cz_mail', 'consent');
SELECT pdp.grant_consent(9001::bigint, 'cz_mail') > 0 AS granted;
CREATE ROLE regress_cz_app;
CREATE ROLE regress_cz_other;
SELECT pdp.allow_purpose('regress_cz_app', 'cz_mail');
SET ROLE regress_cz_app;
BEGIN;
SET LOCAL pdp.purpose = 'cz_mail';
SELECT s, pdp._visible(s) FROM unnest(ARRAY[9001, 9002, 9003]::bigint[]) s;
COMMIT;
RESET ROLE;
-- A stand-in Citus worker (group 1) holding the placements of pdp's mirror
-- (pdp.citus_sync_state makes them on a coordinator; Citus writes them on
-- each worker): the purpose check and the row check read the placements,
-- not pdp's own tables, and nothing of them is kept from one statement to
-- the next.
SET allow_system_table_mods = on;
CREATE TABLE pg_catalog.pg_dist_local_group (groupid integer);
CREATE TABLE pg_catalog.pg_dist_shard (logicalrelid regclass, shardid bigint);
RESET allow_system_table_mods;
INSERT INTO pg_catalog.pg_dist_local_group VALUES (1);
CREATE TABLE pdp.citus_purpose (purpose text PRIMARY KEY, requires_consent boolean NOT NULL,
                                restriction_exempt boolean NOT NULL, maintenance boolean NOT NULL);
CREATE TABLE pdp.citus_purpose_grant (role_name text NOT NULL, purpose text NOT NULL, PRIMARY KEY (role_name, purpose));
CREATE TABLE pdp.citus_consent_state (subject text NOT NULL, purpose text NOT NULL, valid_until timestamptz,
                                      PRIMARY KEY (subject, purpose));
CREATE TABLE pdp.citus_restriction (subject text PRIMARY KEY);
CREATE TABLE pdp.citus_purpose_101 (LIKE pdp.citus_purpose INCLUDING ALL);
CREATE TABLE pdp.citus_purpose_grant_102 (LIKE pdp.citus_purpose_grant INCLUDING ALL);
CREATE TABLE pdp.citus_consent_state_103 (LIKE pdp.citus_consent_state INCLUDING ALL);
CREATE TABLE pdp.citus_restriction_104 (LIKE pdp.citus_restriction INCLUDING ALL);
INSERT INTO pg_catalog.pg_dist_shard VALUES ('pdp.citus_purpose', 101), ('pdp.citus_purpose_grant', 102),
    ('pdp.citus_consent_state', 103), ('pdp.citus_restriction', 104);
INSERT INTO pdp.citus_purpose_101 VALUES ('cz_mail', true, false, false), ('cz_placed', false, false, false);
INSERT INTO pdp.citus_purpose_grant_102 VALUES ('regress_cz_app', 'cz_placed'), ('regress_cz_other', 'cz_mail');
INSERT INTO pdp.citus_consent_state_103 VALUES ('9002', 'cz_mail', NULL), ('9003', 'cz_mail', now() - interval '1 day');
INSERT INTO pdp.citus_restriction_104 VALUES ('9003');
-- pdp's own grant of cz_mail to regress_cz_app (used, and cached, above) is not read any more.
SET ROLE regress_cz_app;
SET pdp.purpose = 'cz_mail';
RESET ROLE;
-- Consents from the placement: 9002's, not 9001's (pdp's own); 9003's has
-- expired.  Granted there to regress_cz_other.
SET ROLE regress_cz_other;
BEGIN;
SET LOCAL pdp.purpose = 'cz_mail';
SELECT s, pdp._visible(s) FROM unnest(ARRAY[9001, 9002, 9003]::bigint[]) s;
COMMIT;
RESET ROLE;
-- A purpose only the placement knows, granted there by role name; the restriction from the placement.
SET ROLE regress_cz_app;
BEGIN;
SET LOCAL pdp.purpose = 'cz_placed';
SELECT s, pdp._visible(s) FROM unnest(ARRAY[9001, 9003]::bigint[]) s;
COMMIT;
SET ROLE regress_cz_other;
SET pdp.purpose = 'cz_placed';
-- What Citus writes to the placements is seen at the next statement, in the same session.
UPDATE pdp.citus_purpose_101 SET requires_consent = true WHERE purpose = 'cz_placed';
INSERT INTO pdp.citus_consent_state_103 VALUES ('9001', 'cz_placed', NULL);
DELETE FROM pdp.citus_restriction_104;
SET ROLE regress_cz_app;
BEGIN;
SET LOCAL pdp.purpose = 'cz_placed';
SELECT s, pdp._visible(s) FROM unnest(ARRAY[9001, 9002, 9003]::bigint[]) s;
COMMIT;
RESET ROLE;
-- A worker with the mirror's metadata but a placement missing (added after
-- the sync, before Citus copied the reference tables to it) refuses.
DROP TABLE pdp.citus_restriction_104;
SET ROLE regress_cz_other;
BEGIN;
SET LOCAL pdp.purpose = 'cz_mail';
SELECT pdp._visible(9002::bigint);
ROLLBACK;
RESET ROLE;
CREATE TABLE pdp.citus_restriction_104 (LIKE pdp.citus_restriction INCLUDING ALL);
SET ROLE regress_cz_other;
BEGIN;
SET LOCAL pdp.purpose = 'cz_mail';
SELECT pdp._visible(9002::bigint);
COMMIT;
RESET ROLE;
-- Without the mirror (no Citus, or a coordinator before its first sync) pdp's own tables are read again.
DROP TABLE pdp.citus_purpose, pdp.citus_purpose_grant, pdp.citus_consent_state, pdp.citus_restriction,
    pdp.citus_purpose_101, pdp.citus_purpose_grant_102, pdp.citus_consent_state_103, pdp.citus_restriction_104;
SET allow_system_table_mods = on;
DROP TABLE pg_catalog.pg_dist_local_group, pg_catalog.pg_dist_shard;
RESET allow_system_table_mods;
SET ROLE regress_cz_app;
BEGIN;
SET LOCAL pdp.purpose = 'cz_mail';
SELECT s, pdp._visible(s) FROM unnest(ARRAY[9001, 9002, 9003]::bigint[]) s;
COMMIT;
SET pdp.purpose = 'cz_placed';
RESET ROLE;
SELECT pdp.disallow_purpose('regress_cz_app', 'cz_mail');
SELECT pdp.withdraw_consent(9001::bigint, 'cz_mail');
DROP ROLE regress_cz_app, regress_cz_other;

SELECT pdp.drop_retention('cz.dist');
SELECT pdp.drop_retention('cz.nokey');
SELECT pdp.drop_retention('cz.learners');
SELECT pdp.release_hold(id) FROM pdp.hold WHERE subject = '9004' AND released_at IS NULL;
DROP SCHEMA cz CASCADE;

-- The rectification trigger finds its table in the registry (itself, or a
-- partition's ancestor) and fails closed where it does not: a trigger copied
-- where pdp's registry and disclosures are not kept (a Citus shard on a
-- worker) refuses the change rather than record no notice.
BEGIN;   -- (rolled back: leaves no purpose, recipient or notice behind)
CREATE SCHEMA cz;
CREATE TABLE cz.rect (id bigint, learner bigint NOT NULL, email text, note text) PARTITION BY RANGE (id);
CREATE TABLE cz.rect_a PARTITION OF cz.rect FOR VALUES FROM (0) TO (100) PARTITION BY RANGE (id);
CREATE TABLE cz.rect_a1 PARTITION OF cz.rect_a FOR VALUES FROM (0) TO (50);
CREATE TABLE cz.plain (id bigint PRIMARY KEY, learner bigint NOT NULL, email text);
INSERT INTO cz.rect VALUES (7, 9007, 'a', 'n');
INSERT INTO cz.plain VALUES (7, 9007, 'a');
SELECT pdp.register_table(t, 'learner') FROM unnest(ARRAY['cz.rect', 'cz.plain']::regclass[]) t;
SELECT pdp.set_column_rule(t, 'email', 'mask') FROM unnest(ARRAY['cz.rect', 'cz.plain']::regclass[]) t;
SELECT pdp.define_purpose('cz_report', 'contract');
SELECT pdp.define_recipient('cz ministry', 'KZ');
SELECT pdp.record_disclosure(9007::bigint, 'cz ministry', 'cz_report', ARRAY['email']) > 0 AS recorded;
UPDATE cz.rect SET email = 'b' WHERE id = 7;
UPDATE cz.plain SET email = 'b' WHERE id = 7;
SELECT tbl, columns FROM pdp.rectification_notice WHERE recipient = 'cz ministry' ORDER BY id;
-- A copy of the trigger on a table the registry does not name: refused, nothing written.
CREATE TABLE cz.copy (id bigint, learner bigint, email text);
INSERT INTO cz.copy VALUES (7, 9007, 'a');
CREATE TRIGGER pdp_rectification AFTER UPDATE ON cz.copy FOR EACH ROW EXECUTE FUNCTION pdp._rectification('s:learner', 'c:email');
SAVEPOINT refused;
\set VERBOSITY default
UPDATE cz.copy SET email = 'b';
\set VERBOSITY terse
ROLLBACK TO refused;
UPDATE cz.copy SET id = 8;   -- no classified column changed: written
SELECT id, email FROM cz.copy;
SELECT count(*) FROM pdp.rectification_notice WHERE recipient = 'cz ministry';
ROLLBACK;
