-- pgTAP: attacks on pdp_ext's hardening (issue 14, classes 3, 9, 10 and 14),
-- as a pdp_admin member (tap_admin, owner of the learners' table), an
-- application role (tap_app) and a superuser.  Each "attack:" test names the
-- attack it makes and must see it fail; the "control:" tests show that what
-- the defence must still allow is allowed.  All of it is rolled back.
BEGIN;
SELECT plan(38);

-- An audit entry old enough to be trimmed, sealed before anything else.
-- Earlier files' reversals and exports left committed entries (they outlive
-- a rollback, issue 15): backdate them too, in this rolled-back transaction,
-- so that the trim below still has an old prefix of the chain to cut.
SET session_replication_role = replica;
UPDATE pdp.audit_log SET at = now() - interval '3 days';
RESET session_replication_role;
INSERT INTO pdp.audit_log (at, action) VALUES (now() - interval '3 days', 'tap_old');
SELECT pdp.seal_audit_log(true, 100000);

CREATE ROLE tap_app;
CREATE ROLE tap_reid IN ROLE pdp_reidentifier;
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
-- (No role may write pdp.retention_policy any more (issue 14, class 2): refused before its period check.)
SELECT throws_ok($$UPDATE pdp.retention_policy SET period = '-12 mon 361 days' WHERE tbl = 'tap.learners'::regclass$$, '42501', NULL,
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

-- 9. State that outlives a failed call.  (Not forced: the owner bypasses the
-- policies, so only the restricted-row trigger stands in the way.)
SELECT pdp.protect_table('tap.learners', force => false);
SELECT pdp.restrict_subject(2, 'contested');
SELECT pdp.place_table_hold('tap.visits', 'litigation');
INSERT INTO tap.visits VALUES (1, 2);
SET ROLE tap_admin;
SELECT throws_ok($$UPDATE tap.learners SET email = 'changed@example.kz' WHERE id = 2$$, '42501', NULL,
                 'set-up: the owner cannot update a restricted learner''s row');
SELECT throws_ok($$SELECT pdp.erase_subject(2, 'request')$$, '55000', NULL,
                 'set-up: erasure of the learner fails (a held table), caught by an EXCEPTION block');
SELECT throws_ok($$UPDATE tap.learners SET email = 'changed@example.kz' WHERE id = 2$$, '42501', NULL,
                 'attack: after an erasure failed inside an EXCEPTION block, the owner updates the restricted learner''s row');
SELECT throws_ok($$DELETE FROM tap.learners WHERE id = 2$$, '42501', NULL,
                 'attack: after an erasure failed inside an EXCEPTION block, the owner deletes the restricted learner''s row');
SAVEPOINT before_erasure;
DO $$ BEGIN PERFORM pdp.erase_subject(2, 'request'); EXCEPTION WHEN object_not_in_prerequisite_state THEN NULL; END $$;
RELEASE SAVEPOINT before_erasure;
SELECT throws_ok($$UPDATE tap.learners SET email = 'changed@example.kz' WHERE id = 2$$, '42501', NULL,
                 'attack: after an erasure failed and was caught inside a released savepoint, the owner updates the row');
SELECT is((SELECT email FROM tap.learners WHERE id = 2), 'two@example.kz', 'the restricted learner''s row is unchanged');
RESET ROLE;
SELECT pdp.release_hold((SELECT max(id) FROM pdp.hold));
SELECT lives_ok($$SELECT pdp.erase_subject(2, 'request')$$, 'control: erasure of a restricted learner still works');
SELECT is((SELECT count(*)::int FROM tap.learners WHERE id = 2), 0, 'control: the restricted learner''s row is erased');

-- The reversal audit: once per statement, counting only entries that stand.
CREATE TEMP TABLE tap_tok AS SELECT pdp.encrypt('one@example.kz') AS t;
GRANT SELECT ON tap_tok TO tap_reid;
SET ROLE tap_reid;
DO $$
DECLARE v text;
BEGIN
    BEGIN
        v := pdp.decrypt((SELECT t FROM tap_tok));
        RAISE EXCEPTION 'rolled back';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
    v := pdp.decrypt((SELECT t FROM tap_tok));
END $$;
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pdp.audit_log WHERE action = 'reverse' AND role = 'tap_reid'), 1,
          'attack: a reversal after a rolled-back one in the same statement escapes the audit trail');

-- The audit-trim switch lasts one call.
SELECT ok(pdp.trim_audit_log('1 day') >= 1, 'set-up: trim_audit_log removes the old entry');
SELECT throws_ok($$DELETE FROM pdp.audit_log WHERE action = 'register_table'$$, '42501', NULL,
                 'attack: a superuser deletes audit entries after trim_audit_log in the same transaction');

-- 10. Leaks through the Markdown report: names are chosen by whoever made them.
SET ROLE tap_admin;
CREATE TABLE tap."<img src=x onerror=alert(1)>" (id int PRIMARY KEY, "<script>steal()</script>" text);
RESET ROLE;
SELECT pdp.register_table('tap."<img src=x onerror=alert(1)>"', 'id');
SELECT pdp.define_purpose('[click](https://evil.example/)', 'consent');
SELECT pdp.define_purpose('a | forged | cell', 'consent');
CREATE TEMP TABLE tap_md AS SELECT pdp.report('markdown') AS md;
SELECT ok((SELECT position('<img' IN md) = 0 AND position('&lt;img src=x onerror=alert\(1\)&gt;' IN md) > 0 FROM tap_md),
          'attack: a table named with inline HTML puts an <img onerror> into the Markdown report');
SELECT ok((SELECT md !~ '[^\\]\[click\]\(https' FROM tap_md),
          'attack: a purpose named as a Markdown link becomes a clickable link in the report');
SELECT ok((SELECT position('a | forged | cell' IN md) = 0 AND position('a \| forged \| cell' IN md) > 0 FROM tap_md),
          'attack: a purpose name with pipes adds forged cells to the report''s consent table');
SELECT is(pdp._md(E'a*b_c`d\ne<f>&'), 'a\*b\_c\`d e&lt;f&gt;&amp;', 'control: pdp._md escapes emphasis, code, line breaks and HTML');

-- 14. A DBA's edits of the request deadlines are lost on dump and restore.
SELECT is((SELECT c.cond FROM pg_extension e, unnest(e.extconfig, e.extcondition) c(tbl, cond)
            WHERE e.extname = 'pdp_ext' AND c.tbl = 'pdp.request_deadline'::regclass),
          'WHERE NOT pdp._request_deadline_is_default(jurisdiction, kind, period, working_days, source)',
          'attack: pg_dump leaves pdp.request_deadline out (''WHERE false''), dropping the DBA''s edits');
SET ROLE tap_admin;
UPDATE pdp.request_deadline SET working_days = 10 WHERE jurisdiction = 'KZ' AND kind = 'access';
UPDATE pdp.request_deadline SET period = '30 days' WHERE jurisdiction = 'EU' AND kind = 'access';
INSERT INTO pdp.request_deadline VALUES ('UK', 'access', '1 month', NULL, 'UK GDPR');
SELECT is((SELECT string_agg(jurisdiction || ':' || kind, ',' ORDER BY jurisdiction, kind) FROM pdp.request_deadline
            WHERE NOT pdp._request_deadline_is_default(jurisdiction, kind, period, working_days, source)),
          'EU:access,EU:erasure,KZ:access,UK:access', 'attack: an edited, a rewritten (''30 days'' for ''1 mon'') or an added deadline is not dumped');
SELECT throws_ok($$DELETE FROM pdp.request_deadline WHERE jurisdiction = 'EU' AND kind = 'objection'$$, '0A000', NULL,
                 'attack: a deleted shipped deadline comes back after a dump and restore');
SELECT lives_ok($$DELETE FROM pdp.request_deadline WHERE jurisdiction = 'UK'$$, 'control: an added deadline can be deleted');
RESET ROLE;
SELECT throws_ok($$TRUNCATE pdp.request_deadline$$, '0A000', NULL, 'attack: truncating the shipped deadlines (they come back on restore)');
-- What a restore does: CREATE EXTENSION inserted the shipped row, then the dump's row for the same key arrives.
UPDATE pdp.request_deadline SET working_days = 3 WHERE jurisdiction = 'KZ' AND kind = 'access';
SELECT lives_ok($$INSERT INTO pdp.request_deadline (jurisdiction, kind, period, working_days, source)
                  SELECT 'KZ', 'access', NULL, 7, d.source FROM pdp._request_deadline_defaults() d
                   WHERE d.jurisdiction = 'KZ' AND d.kind = 'access'$$,
                'attack: restoring an edited deadline conflicts with the shipped row of its key');
SELECT is((SELECT working_days FROM pdp.request_deadline WHERE jurisdiction = 'KZ' AND kind = 'access'), 7,
          'the restored row took the shipped row''s place');
SELECT throws_ok($$INSERT INTO pdp.request_deadline VALUES ('KZ', 'access', NULL, 9, 'again')$$, '23505', NULL,
                 'control: an edited deadline is not silently replaced by a second insert');

SELECT * FROM finish();
ROLLBACK;
