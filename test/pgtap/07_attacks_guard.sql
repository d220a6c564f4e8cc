-- pgTAP: attacks on a protected table's protection itself (issue 14, classes
-- 6 and 8), as the table's owner (a pdp_admin member, not a superuser) and
-- as an application role: DDL that would switch protection off, policies
-- that would widen it, partitions and inheritance children read directly,
-- renames.  "attack:" tests fail without their defence; "control:" tests
-- show what must still work.  All of it is rolled back.
BEGIN;
SELECT plan(42);

CREATE ROLE tap_owner IN ROLE pdp_admin;
CREATE ROLE tap_reader;
CREATE ROLE tap_other IN ROLE pdp_admin;
CREATE SCHEMA tapg AUTHORIZATION tap_owner;
GRANT USAGE ON SCHEMA tapg TO tap_reader, tap_other;
SELECT pdp.define_purpose('tapg_teaching', 'contract');
SELECT pdp.define_purpose('tapg_news', 'consent');
SELECT pdp.allow_purpose('tap_reader', 'tapg_teaching');
SELECT pdp.allow_purpose('tap_reader', 'tapg_news');
SELECT pdp.grant_consent(1, 'tapg_news');
SELECT pdp.restrict_subject(2::bigint, 'dispute');

SET ROLE tap_owner;
CREATE TABLE tapg.grades (id bigint PRIMARY KEY, learner bigint, grade int);
INSERT INTO tapg.grades SELECT g, g % 4, 5 FROM generate_series(1, 40) g;
GRANT SELECT, UPDATE, DELETE ON tapg.grades TO tap_reader;
SELECT pdp.register_table('tapg.grades', 'learner');
SELECT pdp.protect_table('tapg.grades', force => true);

-- 1. DDL that switches protection off, as the owner.
SELECT throws_ok($$DROP POLICY pdp_select ON tapg.grades$$, '42501', NULL,
                 'attack: the owner drops pdp''s select policy');
SELECT throws_ok($$ALTER POLICY pdp_select ON tapg.grades USING (true)$$, '42501', NULL,
                 'attack: the owner rewrites pdp''s select policy to show everything');
SELECT throws_ok($$ALTER POLICY pdp_update ON tapg.grades USING (true)$$, '42501', NULL,
                 'attack: the owner rewrites pdp''s update policy');
SELECT throws_ok($$ALTER POLICY pdp_select ON tapg.grades TO tap_other$$, '42501', NULL,
                 'attack: the owner narrows pdp''s policy to another role so that it no longer applies to the reader');
SELECT throws_ok($$ALTER TABLE tapg.grades DISABLE ROW LEVEL SECURITY$$, '42501', NULL,
                 'attack: the owner disables row-level security');
SELECT throws_ok($$ALTER TABLE tapg.grades NO FORCE ROW LEVEL SECURITY$$, '42501', NULL,
                 'attack: the owner un-forces row-level security to read as owner');
SELECT throws_ok($$ALTER TABLE tapg.grades DISABLE TRIGGER pdp_refuse_restricted$$, '42501', NULL,
                 'attack: the owner disables the restricted-row trigger');
SELECT throws_ok($$ALTER TABLE tapg.grades DISABLE TRIGGER ALL$$, '42501', NULL,
                 'attack: the owner disables every trigger');
SELECT throws_ok($$DROP TRIGGER pdp_refuse_restricted ON tapg.grades$$, '42501', NULL,
                 'attack: the owner drops the restricted-row trigger');
SELECT throws_ok($$ALTER TABLE tapg.grades ENABLE REPLICA TRIGGER pdp_refuse_restricted$$, '42501', NULL,
                 'attack: the owner makes the trigger fire in replica mode only');
SELECT throws_ok($$SELECT pdp._protection_ddl(true)$$, '42501', NULL,
                 'attack: the owner turns the guard off through its internal switch');
SELECT throws_ok($$DELETE FROM pdp.protection$$, '42501', NULL,
                 'attack: the owner deletes the protection record directly');
SELECT throws_ok($$UPDATE pdp.protection SET policies = ''$$, '42501', NULL,
                 'attack: the owner rewrites the protection record directly');

-- 2. A policy of one's own cannot widen what pdp's policies show.
CREATE POLICY wide ON tapg.grades AS PERMISSIVE FOR SELECT USING (true);
RESET ROLE;
SET ROLE tap_reader;
SET pdp.purpose = 'tapg_news';
SELECT is((SELECT count(*) FROM tapg.grades), 10::bigint,
          'attack: a permissive USING (true) policy added by the owner widens what pdp shows');
RESET pdp.purpose;
SELECT is((SELECT count(*) FROM tapg.grades), 0::bigint,
          'attack: with no purpose declared, the owner''s permissive policy shows rows');
RESET ROLE;

-- 3. Renames change nothing.
SET ROLE tap_owner;
ALTER TABLE tapg.grades RENAME COLUMN learner TO student;
ALTER TABLE tapg.grades RENAME TO marks;
RESET ROLE;
SET ROLE tap_reader;
SET pdp.purpose = 'tapg_teaching';
SELECT is((SELECT count(*) FROM tapg.marks), 30::bigint,
          'attack: after renames of the table and its subject column, the restricted learner shows');
SELECT throws_ok($$UPDATE tapg.marks SET grade = 1 WHERE student = 2$$, '42501', NULL,
                 'attack: after the renames, an update of the restricted learner''s rows is not refused');
RESET pdp.purpose;
RESET ROLE;
SELECT is((SELECT count(*) FROM tapg.marks WHERE student = 2 AND grade = 1), 0::bigint,
          'attack: after the renames, the restricted learner''s rows can be updated');
SET ROLE tap_owner;
SELECT throws_ok($$DROP POLICY pdp_select ON tapg.marks$$, '42501', NULL,
                 'attack: after the renames, the guard no longer knows the table');

-- 4. Partitions and inheritance children are protected, present and later.
CREATE TABLE tapg.log (id bigint, learner bigint, at date) PARTITION BY RANGE (at);
CREATE TABLE tapg.log_2025 PARTITION OF tapg.log FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO tapg.log SELECT g, g % 4, '2025-06-01' FROM generate_series(1, 40) g;
SELECT pdp.register_table('tapg.log', 'learner');
SELECT pdp.protect_table('tapg.log');
CREATE TABLE tapg.log_2026 PARTITION OF tapg.log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO tapg.log SELECT g, g % 4, '2026-06-01' FROM generate_series(41, 80) g;
CREATE TABLE tapg.log_2027 (id bigint, learner bigint, at date);
INSERT INTO tapg.log_2027 SELECT g, g % 4, '2027-06-01' FROM generate_series(81, 120) g;
ALTER TABLE tapg.log ATTACH PARTITION tapg.log_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
CREATE TABLE tapg.notes (id bigint, learner bigint);
SELECT pdp.register_table('tapg.notes', 'learner');
SELECT pdp.protect_table('tapg.notes');
CREATE TABLE tapg.notes_old () INHERITS (tapg.notes);
INSERT INTO tapg.notes_old SELECT g, g % 4 FROM generate_series(1, 40) g;
GRANT SELECT, UPDATE ON tapg.log, tapg.log_2025, tapg.log_2026, tapg.log_2027, tapg.notes, tapg.notes_old TO tap_reader;
RESET ROLE;
SELECT is((SELECT count(*) FROM pdp.protection WHERE tbl::text LIKE 'tapg.log%'), 4::bigint,
          'control: the partitioned table and its three partitions are recorded as protected');
SET ROLE tap_reader;
SELECT is((SELECT count(*) FROM tapg.log_2025), 0::bigint,
          'attack: a partition that existed at protect_table, read directly with no purpose');
SELECT is((SELECT count(*) FROM tapg.log_2026), 0::bigint,
          'attack: a partition created later, read directly with no purpose');
SELECT is((SELECT count(*) FROM tapg.log_2027), 0::bigint,
          'attack: a table attached as a partition later, read directly with no purpose');
SELECT is((SELECT count(*) FROM tapg.notes_old), 0::bigint,
          'attack: an inheritance child created later, read directly with no purpose');
SET pdp.purpose = 'tapg_news';
SELECT is((SELECT count(*) FROM tapg.log_2026), 10::bigint,
          'attack: a later partition read directly under a consent purpose shows non-consenting learners');
SELECT is((SELECT count(*) FROM tapg.log), 30::bigint,
          'control: the partitioned table shows the consenting learner''s rows in every partition');
SET pdp.purpose = 'tapg_teaching';
SELECT is((SELECT count(*) FROM tapg.log_2027), 30::bigint,
          'attack: the restricted learner shows in an attached partition read directly');
-- (A constant, not -id: an expression that is not leakproof, as unary minus
-- is, would see the row before the trigger, so there the row stays hidden.)
SELECT throws_ok($$UPDATE tapg.log_2026 SET id = 999999 WHERE learner = 2$$, '42501', NULL,
                 'attack: an update of the restricted learner''s rows in a later partition is not refused');
RESET pdp.purpose;
RESET ROLE;
SELECT is((SELECT count(*) FROM tapg.log_2026 WHERE id = 999999), 0::bigint,
          'attack: the restricted learner''s rows in a later partition can be updated directly');

-- 6. Writes through an application role (issue 16, point 7): an UPDATE of a
-- restricted learner's rows fails instead of changing nothing, but cannot
-- copy their values out; the maintenance purpose is not for everyone.
SET ROLE tap_reader;
SET pdp.purpose = 'tapg_teaching';
UPDATE tapg.marks m SET grade = coalesce((SELECT sum(v.grade) FROM tapg.marks v WHERE v.student = 2), -1) WHERE m.id = 1;
RESET ROLE;
SELECT is((SELECT grade FROM tapg.marks WHERE id = 1), -1,
          'attack: an UPDATE copies a restricted learner''s values into a readable row through a subquery of its own table');
SET ROLE tap_reader;
SELECT throws_ok($$DELETE FROM tapg.marks WHERE student = 2$$, '42501', NULL,
                 'attack: a DELETE of the restricted learner''s rows reports success and deletes nothing');
SELECT throws_ok($$UPDATE tapg.marks SET grade = grade WHERE student IN (1, 2)$$, '42501', NULL,
                 'attack: an UPDATE touching a restricted learner among others changes the others and skips them silently');
RESET ROLE;
SELECT pdp.define_maintenance_purpose('tapg_maintenance');
SET ROLE tap_reader;
SELECT throws_ok($$SET pdp.purpose = 'tapg_maintenance'$$, '42501', NULL,
                 'attack: an application role declares a maintenance purpose it was not granted');
RESET ROLE;
SET ROLE tap_owner;
SELECT throws_ok($$UPDATE pdp.purpose SET maintenance = true WHERE purpose = 'tapg_teaching'$$, '42501', NULL,
                 'attack: the owner turns an ordinary purpose into a maintenance purpose directly');
RESET ROLE;
SELECT pdp.allow_purpose('tap_reader', 'tapg_maintenance');
SET ROLE tap_reader;
SET pdp.purpose = 'tapg_maintenance';
SELECT lives_ok($$UPDATE tapg.marks SET grade = 4 WHERE student = 2$$,
                'control: under a granted maintenance purpose the restricted learner''s rows can be changed');
RESET pdp.purpose;
RESET ROLE;
SELECT ok((SELECT count(*) FROM pdp.audit_log WHERE action = 'maintenance_purpose' AND object = 'tapg_maintenance'
             AND details->>'role' = 'tap_reader') = 1,
          'control: the maintenance purpose''s use is in the audit trail, once');

-- 7. A purge of a partitioned table (class 6): rows were found and deleted
-- by ctid, which repeats across partitions, so current rows of another
-- partition went with the expired ones.  Rows are now named by tableoid and
-- ctid: the expired rows go, the current ones stay.
SET ROLE tap_owner;
CREATE TABLE tapg.plog (id bigint PRIMARY KEY, learner bigint, at timestamptz NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE tapg.plog_old PARTITION OF tapg.plog FOR VALUES FROM (0) TO (1000);
CREATE TABLE tapg.plog_new PARTITION OF tapg.plog FOR VALUES FROM (1000) TO (2000);
INSERT INTO tapg.plog SELECT g, 1, now() - interval '10 years' FROM generate_series(1, 10) g;
INSERT INTO tapg.plog SELECT g, 1, now() FROM generate_series(1001, 1010) g;
SELECT pdp.register_table('tapg.plog', 'learner');
SELECT pdp.set_retention('tapg.plog', interval '1 year', 'at');
RESET ROLE;
SET client_min_messages = error;
SET pdp.purge_max_share = 1;   -- a tiny table: the safety valve is opened
SELECT * FROM pdp.purge_expired();
RESET client_min_messages;
RESET pdp.purge_max_share;
SELECT is((SELECT count(*) FROM tapg.plog_new), 10::bigint,
          'attack: a purge of a partitioned table deletes current rows of another partition whose ctids match expired ones');
SELECT is((SELECT count(*) FROM tapg.plog_old), 0::bigint, 'control: the expired rows of the partitioned table are purged');
SELECT throws_ok($$SELECT pdp._purge_rows('tapg.plog', 'delete', ARRAY['(0,1)']::tid[])$$, '22023', NULL,
                 'attack: a partitioned table''s rows named by ctid alone are refused (they would match in every partition)');

-- 5. Only the owner unprotects, and it is audited.
SET ROLE tap_other;
SELECT throws_ok($$SELECT pdp._unprotect('tapg.marks')$$, '42501', NULL,
                 'attack: another pdp_admin member removes the protection of a table it does not own');
RESET ROLE;
SET ROLE tap_owner;
SELECT lives_ok($$SELECT pdp.unprotect_table('tapg.marks')$$,
                'control: the owner unprotects its table through pdp.unprotect_table');
RESET ROLE;
SELECT is((SELECT action FROM pdp.audit_log WHERE object = 'tapg.marks' ORDER BY id DESC LIMIT 1), 'unprotect_table',
          'control: the unprotection is in the audit trail');

SELECT * FROM finish();
ROLLBACK;
