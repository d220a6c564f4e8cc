-- pgTAP: attacks on pdp_ext's hardening (issue 14, classes 3, 9, 10 and 14),
-- as a pdp_admin member (tap_admin, owner of the learners' table), an
-- application role (tap_app) and a superuser.  Each "attack:" test names the
-- attack it makes and must see it fail; the "control:" tests show that what
-- the defence must still allow is allowed.  All of it is rolled back.
BEGIN;
SELECT plan(15);

CREATE ROLE tap_app;
CREATE ROLE tap_admin IN ROLE pdp_admin;
CREATE SCHEMA tap AUTHORIZATION tap_admin;
GRANT USAGE ON SCHEMA tap TO tap_app;
SET ROLE tap_admin;
CREATE TABLE tap.learners (id int PRIMARY KEY, email text, joined timestamptz NOT NULL DEFAULT now());
INSERT INTO tap.learners (id, email) VALUES (1, 'one@example.kz'), (2, 'two@example.kz'), (3, 'three@example.kz');
CREATE TABLE tap.visits (id int PRIMARY KEY, learner int, at timestamptz NOT NULL DEFAULT now());
RESET ROLE;
SELECT pdp.register_table('tap.learners', 'id');
SELECT pdp.register_table('tap.visits', 'learner');
GRANT SELECT, UPDATE, DELETE ON tap.learners TO tap_app;
SELECT pdp.seal_audit_log(true, 100000);

-- 3. Intervals that mean something else.  PostgreSQL counts a month as 30
-- days when it compares intervals; each of these passes a plain comparison
-- and spans something else from now or from some other date.
SET ROLE tap_admin;
SELECT throws_ok($$SELECT pdp.trim_audit_log('-12 mon 361 days')$$, '22023', NULL,
                 'attack: trim_audit_log(''-12 mon 361 days'') (compares as a day, reaches four days back) to remove every entry');
SELECT throws_ok($$SELECT pdp.trim_audit_log('-1 mon 31 days 1 hour')$$, '22023', NULL,
                 'attack: trim_audit_log with a mixed-sign keep that is under a day from April 1st');
RESET ROLE;
SELECT ok((SELECT count(*) FROM pdp.audit_log WHERE action = 'register_table') = 2, 'the refused trims removed nothing');
SET ROLE tap_admin;
SELECT throws_ok($$SELECT pdp.set_retention('tap.learners', '-12 mon 361 days', 'joined')$$, '22023', NULL,
                 'attack: a retention period of ''-12 mon 361 days'' (negative from every date) purges every row at once');
SELECT throws_ok($$SELECT pdp.set_retention('tap.learners', '-1 mon 31 days', 'joined')$$, '22023', NULL,
                 'attack: a retention period of ''-1 mon 31 days'' (positive today, zero for rows anchored on April 1st)');
SELECT throws_ok($$SELECT pdp.set_retention('tap.learners', '1 mon -30 days 1 hour')$$, '22023', NULL,
                 'attack: a retention period of ''1 mon -30 days 1 hour'' (positive today, negative for rows tagged in February)');
SELECT throws_ok($$SELECT pdp.set_subject_retention('-12 mon 361 days', 'tap.visits', 'at')$$, '22023', NULL,
                 'attack: an inactivity period of ''-12 mon 361 days'' erases every subject''s rows');
SELECT throws_ok($$CALL pdp.purge(10, '-12 mon 361 days')$$, '22023', NULL,
                 'attack: a purge with a max_duration that is negative from now');
SELECT lives_ok($$SELECT pdp.set_retention('tap.learners', '1 year', 'joined')$$, 'control: a one-year retention period is accepted');
SELECT throws_ok($$UPDATE pdp.retention_policy SET period = '-12 mon 361 days' WHERE tbl = 'tap.learners'::regclass$$, '22023', NULL,
                 'attack: pdp_admin writes a negative period straight into pdp.retention_policy');
SELECT throws_ok($$UPDATE pdp.request_deadline SET period = '-12 mon 361 days' WHERE jurisdiction = 'EU' AND kind = 'access'$$, '22023', NULL,
                 'attack: pdp_admin sets a request deadline that is already past when the request arrives');
SELECT throws_ok($$INSERT INTO pdp.request_deadline VALUES ('XX', 'access', '1 mon -31 days', NULL, 'test')$$, '22023', NULL,
                 'attack: pdp_admin adds a jurisdiction whose deadline is zero or less');
SELECT lives_ok($$SELECT pdp.trim_audit_log('-1 mon 40 days')$$, 'control: a mixed-sign keep that spans nine days or more from every date is accepted');
RESET ROLE;
ALTER TABLE pdp.request_deadline DISABLE TRIGGER request_deadline_check_period;
UPDATE pdp.request_deadline SET period = '-12 mon 361 days' WHERE jurisdiction = 'EU' AND kind = 'erasure';
ALTER TABLE pdp.request_deadline ENABLE TRIGGER request_deadline_check_period;
SELECT throws_ok($$SELECT pdp.open_request(1, 'erasure', 'EU')$$, '22023', NULL,
                 'attack: a request deadline stored before the check (an old row) gives a due date in the past');
SELECT is((SELECT count(*)::int FROM pdp.subject_request), 0, 'no request was opened with a past due date');

SELECT * FROM finish();
ROLLBACK;
