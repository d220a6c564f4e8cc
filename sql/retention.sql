-- Retention: tagging per anchor type, backfill, purge actions, holds,
-- inactivity across tables, dry run, interruption and resumption, bad inputs.
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- These purges remove large shares of small tables: the safety valve
-- (pdp.purge_max_share) stays open until its own section below.
SET pdp.purge_max_share = 1;

CREATE SCHEMA ret;
CREATE TABLE ret.learners (id bigint PRIMARY KEY, last_seen timestamptz);
CREATE TABLE ret.logins (id bigserial PRIMARY KEY, learner bigint REFERENCES ret.learners(id), at timestamptz);
CREATE TABLE ret.visits (id bigserial PRIMARY KEY, learner bigint, at timestamp);
CREATE TABLE ret.grades (id serial PRIMARY KEY, learner bigint, graded date, note text);
CREATE TABLE ret.clicks (id serial PRIMARY KEY, learner bigint, at_epoch integer);
CREATE TABLE ret.events (id bigserial PRIMARY KEY, learner bigint, at_epoch bigint);
CREATE TABLE ret.sessions (id serial PRIMARY KEY, learner bigint, token text);
SELECT pdp.register_table(t, 'learner')
  FROM unnest(ARRAY['ret.logins', 'ret.visits', 'ret.clicks', 'ret.events', 'ret.sessions']::regclass[]) t;
SELECT pdp.register_table('ret.learners', 'id');
SELECT pdp.register_table('ret.grades', 'learner', 'anonymise');
SELECT pdp.set_column_rule('ret.grades', 'note', 'mask');
INSERT INTO ret.learners SELECT g, now() - g * interval '100 days' FROM generate_series(1, 12) g;

-- Bad inputs, each refused with nothing changed.
SELECT pdp.set_retention('ret.logins', '0 days', 'at');
SELECT pdp.set_retention('ret.logins', '-1 year', 'at');
SELECT pdp.set_retention('ret.logins', NULL, 'at');
SELECT pdp.set_retention('ret.logins', '1 year', 'no such column');
SELECT pdp.set_retention('ret.sessions', '1 year', 'token');                -- anchor of another type
SELECT pdp.set_retention('ret.logins', '1 year', 'at', 'shred');             -- unknown action
SELECT pdp.set_retention('ret.logins', '1 year', 'at', 'anonymise');         -- no rules to anonymise with
CREATE TABLE ret.unregistered (id int PRIMARY KEY, at timestamptz);
SELECT pdp.set_retention('ret.unregistered', '1 year', 'at');
SELECT pdp.drop_retention('ret.logins');
SELECT count(*) AS policies FROM pdp.retention_policies;

-- One anchor of each type, and one table without an anchor.
SELECT pdp.set_retention('ret.logins', '1 year', 'at');
SELECT pdp.set_retention('ret.visits', '1 year', 'at');
SELECT pdp.set_retention('ret.grades', '2 years', 'graded', 'anonymise');
SELECT pdp.set_retention('ret.clicks', '1 year', 'at_epoch');
SELECT pdp.set_retention('ret.events', '1 year', 'at_epoch');
INSERT INTO ret.sessions (learner, token) SELECT g, 'old' FROM generate_series(1, 3) g;  -- before retention: backfilled
SELECT pdp.set_retention('ret.sessions', '30 days');
SELECT table_name, period, anchor_column, tagged_by, action FROM pdp.retention_policies ORDER BY 1::text;

-- Rows of every anchor type, some expired (learners 1-6: 400 days old) and some not.
INSERT INTO ret.logins (learner, at) SELECT g, now() - (CASE WHEN g <= 6 THEN 400 ELSE 10 END) * interval '1 day' FROM generate_series(1, 12) g;
INSERT INTO ret.visits (learner, at) SELECT g, (now() - (CASE WHEN g <= 6 THEN 400 ELSE 10 END) * interval '1 day')::timestamp FROM generate_series(1, 12) g;
INSERT INTO ret.grades (learner, graded, note) SELECT g, current_date - CASE WHEN g <= 6 THEN 800 ELSE 10 END, 'private note' FROM generate_series(1, 12) g;
INSERT INTO ret.clicks (learner, at_epoch) SELECT g, extract(epoch FROM now() - (CASE WHEN g <= 6 THEN 400 ELSE 10 END) * interval '1 day')::int FROM generate_series(1, 12) g;
COPY ret.events (learner, at_epoch) FROM stdin;
1	1577836800
12	4102444800
\.
INSERT INTO ret.sessions (learner, token) SELECT g, 'new' FROM generate_series(4, 12) g;

-- Tags: the expiry index for anchors (range scans), the tag table otherwise.
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM ret.logins WHERE pdp._expiry(at, '1 year'::interval) < now();
-- (An epoch-seconds anchor: 0 means never, part of the indexed expression.)
SELECT pdp._retention_expiry_sql('ret.clicks') AS clicks_expiry \gset
EXPLAIN (COSTS OFF) SELECT id FROM ret.clicks WHERE :clicks_expiry < now();
RESET enable_seqscan;
SELECT count(*) AS session_tags, count(*) FILTER (WHERE expires_at > now() + interval '29 days') AS due_in_30_days
  FROM pdp.retention_tag WHERE tbl = 'ret.sessions'::regclass;
-- The tag follows the anchor on UPDATE.
SELECT count(*) AS expired_logins FROM ret.logins WHERE pdp._expiry(at, '1 year'::interval) < now();
UPDATE ret.logins SET at = now() WHERE learner = 1;
SELECT count(*) AS expired_after_update FROM ret.logins WHERE pdp._expiry(at, '1 year'::interval) < now();
UPDATE ret.logins SET at = now() - interval '400 days' WHERE learner = 1;
-- Expiry is computed in UTC, whatever the session's time zone.
SET timezone = 'Asia/Almaty';
SELECT pdp._expiry('2024-02-29 23:30:00+00'::timestamptz, '1 year') AS leap_plus_year,
       pdp._expiry('2024-01-31'::date, '1 month') AS month_end,
       pdp._expiry(0::bigint, '1 day') AS epoch_plus_day;
RESET timezone;

-- A held learner (3) survives; a restricted one (4) is not purged either.
SELECT pdp.place_hold(3, 'dispute with the learner') AS hold_id \gset
SELECT pdp.restrict_subject(4, 'erasure opposed, restriction asked instead');
SELECT pdp.place_hold(NULL::text, 'x');
SELECT pdp.place_hold(3, '');
SELECT pdp.place_hold(3, 'x', now() - interval '1 day');
SELECT pdp.release_hold(999999);

-- Dry run: counts, changes nothing.
SELECT table_name, action, rows FROM pdp.purge_expired(dry_run => true) ORDER BY 1::text;
SELECT count(*) AS logins_still FROM ret.logins;

-- Interrupted after its first batch (max_duration), then resumed.
CALL pdp.purge(batch_size => 2, max_duration => '1 microsecond');
SELECT status, total_rows <= 2 AS at_most_one_batch FROM pdp.purge_log ORDER BY id DESC LIMIT 1;
CALL pdp.purge(batch_size => 2);
SELECT status FROM pdp.purge_log ORDER BY id DESC LIMIT 1;
SELECT table_name, action, rows FROM pdp.purge_expired() ORDER BY 1::text;   -- nothing left

-- What remains: learners 3 (held) and 4 (restricted) among the expired, and everyone recent.
SELECT 'logins' AS t, array_agg(learner ORDER BY learner) AS learners FROM ret.logins
UNION ALL SELECT 'visits', array_agg(learner ORDER BY learner) FROM ret.visits
UNION ALL SELECT 'clicks', array_agg(learner ORDER BY learner) FROM ret.clicks
UNION ALL SELECT 'events', array_agg(learner ORDER BY learner) FROM ret.events
UNION ALL SELECT 'sessions', array_agg(learner ORDER BY learner) FROM ret.sessions;
-- Anonymise keeps the rows, cuts their learner (the row names nobody) and
-- applies the rules, once.
SELECT learner, note FROM ret.grades ORDER BY learner;
SELECT count(*) AS anonymised_rows FROM pdp.anonymised_row WHERE tbl = 'ret.grades'::regclass;

-- Releasing the hold lets the next purge take learner 3's expired rows.
SELECT pdp.release_hold(:hold_id);
SELECT pdp.release_hold(:hold_id);
SELECT table_name, action, rows FROM pdp.purge_expired() ORDER BY 1::text;
SELECT pdp.lift_restriction(4);

-- Inactivity: learners not seen for 3 years lose their rows in every registered table.
SELECT pdp.set_subject_retention('3 years', 'ret.learners', 'last_seen');
SELECT pdp.set_subject_retention('0 days', 'ret.learners', 'last_seen');
SELECT pdp.set_subject_retention('3 years', 'ret.learners', 'nope');
SELECT table_name, action, rows FROM pdp.purge_expired() ORDER BY 1::text;
SELECT array_agg(id ORDER BY id) AS learners_left FROM ret.learners;
SELECT array_agg(learner ORDER BY learner) AS sessions_left FROM ret.sessions;
SELECT pdp.drop_subject_retention(), pdp.drop_subject_retention();

-- A table-wide hold.
SELECT pdp.place_table_hold('ret.sessions', 'litigation') AS table_hold \gset
INSERT INTO pdp.retention_tag SELECT 'ret.sessions'::regclass, id::text, now() - interval '1 day' FROM ret.sessions
ON CONFLICT (tbl, row_key) DO UPDATE SET expires_at = EXCLUDED.expires_at;
SELECT count(*) AS purged_while_held FROM pdp.purge_expired() WHERE table_name = 'ret.sessions'::regclass;
SELECT pdp.release_hold(:table_hold);
SELECT rows AS purged_after_release FROM pdp.purge_expired() WHERE table_name = 'ret.sessions'::regclass;

-- The purge log: runs with per-table counts; old runs are compacted.
SELECT status, rows FROM pdp.purge_log WHERE total_rows > 0 ORDER BY id LIMIT 2;
INSERT INTO pdp.purge_run (started_at, finished_at, status, total_rows)
VALUES (now() - interval '200 days', now() - interval '200 days', 'finished', 7);
SELECT count(*) FROM pdp.purge_expired();
SELECT count(*) AS old_runs_left FROM pdp.purge_log WHERE started_at < now() - interval '90 days';
SELECT runs, rows FROM pdp.purge_summary;
SELECT action, count(*) > 0 AS audited FROM pdp.audit_log
 WHERE action IN ('set_retention', 'purge_batch', 'place_hold', 'release_hold', 'place_table_hold') GROUP BY action ORDER BY 1;

-- Batches resume where the last one ended (keyset over the expiry index);
-- rows sharing one expiry across a batch boundary are all taken, and a
-- held learner's rows below the resume point stay.
CREATE TABLE ret.ties (id int PRIMARY KEY, learner int, at timestamptz);
SELECT pdp.register_table('ret.ties', 'learner');
SELECT pdp.set_retention('ret.ties', '1 year', 'at');
INSERT INTO ret.ties SELECT g, g, CASE WHEN g <= 7 THEN timestamptz '2020-01-01' ELSE timestamptz '2020-01-02' END
  FROM generate_series(1, 11) g;
SELECT pdp.place_hold(2, 'ties test') AS ties_hold \gset
CALL pdp.purge(batch_size => 2);
SELECT array_agg(id ORDER BY id) AS ties_left FROM ret.ties;
SELECT pdp.release_hold(:ties_hold);
INSERT INTO ret.ties SELECT g, g, timestamptz '2020-01-01' FROM generate_series(20, 24) g;
SELECT rows AS ties_purged FROM pdp.purge_expired(batch_size => 2) WHERE table_name = 'ret.ties'::regclass;
SELECT count(*) AS ties_after FROM ret.ties;

-- A read-only server (default_transaction_read_only, as on a standby or
-- after an operator's emergency switch): a clear error, nothing lost.
INSERT INTO ret.ties VALUES (30, 30, '2020-01-01');
SET default_transaction_read_only = on;
CALL pdp.purge();
SELECT count(*) FROM pdp.purge_expired();
RESET default_transaction_read_only;
SELECT count(*) AS ties_kept_when_read_only FROM ret.ties;
SELECT count(*) AS runs_left_running FROM pdp.purge_run WHERE status = 'running';

-- Scheduling with pg_cron (it runs the job in the TAP suite).  Whether
-- pg_cron can connect depends on this server's settings: schedule_purge
-- schedules when it can, and otherwise refuses and says what to set
-- (test/tap/005_purge_cron.pl sets up both cases and lets pg_cron run them).
SELECT pdp.schedule_purge('not a schedule');
SELECT CASE WHEN c.ok THEN pdp.schedule_purge('17 3 * * *') > 0 AND pdp.unschedule_purge()
            ELSE c.problem IS NOT NULL AND c.fix IS NOT NULL END AS scheduled_or_told_what_to_set
  FROM pdp._cron_check(current_user) c;
SELECT count(*) AS jobs_left FROM cron.job;
SELECT pdp.unschedule_purge();
SELECT pdp._cron_check(NULL);
-- A scheduled run that failed (pg_cron could not connect) shows in the
-- purge log and the report.
INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
VALUES (4242, 4242, 0, current_database(), 'postgres', 'CALL pdp.purge()', 'failed', 'connection failed',
        now() - interval '1 day', now() - interval '1 day');
SELECT id, status, cron_run, errors->0->>'message' AS message FROM pdp.purge_log WHERE id IS NULL;
SELECT (pdp.report('json')::jsonb)->'scheduled_purge'->'failed_runs_30_days'->>'count' AS failed_in_report,
       pdp.report('markdown') ~ 'Scheduled runs that failed in the last 30 days: 1\*\*' AS in_markdown,
       pdp.report('html') ~ 'Scheduled runs that failed in the last 30 days: 1' AS in_html;
DELETE FROM cron.job_run_details WHERE runid = 4242;
SELECT count(*) AS failed_runs FROM pdp.purge_log WHERE status = 'scheduled run failed';

SELECT pdp.drop_retention('ret.sessions');
SELECT count(*) AS tags_left FROM pdp.retention_tag WHERE tbl = 'ret.sessions'::regclass;
DROP SCHEMA ret CASCADE;
SELECT count(*) AS policies_left FROM pdp.retention_policy;

-- Issue 16, a Moodle-shaped schema.  Moodle writes lastaccess = 0 for "never
-- logged in"; timecreated is when the account was made (both epoch seconds);
-- id 1 is the guest, id 2 the site administrator.
RESET pdp.purge_max_share;
SHOW pdp.purge_max_share;
CREATE SCHEMA mdl;
CREATE TABLE mdl.mdl_user (id bigint PRIMARY KEY, username text NOT NULL, lastaccess bigint NOT NULL DEFAULT 0,
                           timecreated bigint NOT NULL DEFAULT 0);
CREATE TABLE mdl.mdl_log (id bigserial PRIMARY KEY, userid bigint NOT NULL, timecreated bigint NOT NULL);
SELECT pdp.register_table('mdl.mdl_user', 'id');
SELECT pdp.register_table('mdl.mdl_log', 'userid');
CREATE FUNCTION mdl.ago(i interval) RETURNS bigint LANGUAGE sql AS $$ SELECT extract(epoch FROM now() - i)::bigint $$;
INSERT INTO mdl.mdl_user (id, username, lastaccess, timecreated) VALUES
    (1, 'guest', 0, mdl.ago('10 years')),              -- the guest never logs in
    (2, 'admin', mdl.ago('5 years'), mdl.ago('10 years'));
INSERT INTO mdl.mdl_user (id, username, lastaccess, timecreated)
SELECT g, 'u' || g,
       CASE WHEN g BETWEEN 3 AND 18 THEN 0                                -- never logged in
            WHEN g BETWEEN 19 AND 22 THEN mdl.ago('4 years')              -- long gone
            ELSE mdl.ago('10 days') END,
       CASE WHEN g BETWEEN 3 AND 12 THEN mdl.ago('1 minute')             -- enrolled seconds ago
            WHEN g BETWEEN 13 AND 16 THEN mdl.ago('5 years')             -- created long ago, never came
            WHEN g IN (17, 18) THEN 0                                     -- nothing known at all
            ELSE mdl.ago('6 years') END
  FROM generate_series(3, 40) g;
INSERT INTO mdl.mdl_log (userid, timecreated) SELECT g, mdl.ago(a) FROM generate_series(1, 40) g, unnest(ARRAY['10 days', '2 years']::interval[]) a;

-- Bad inputs, each refused with nothing changed.
SELECT pdp.set_subject_retention('3 years', 'mdl.mdl_user', 'lastaccess', ARRAY['0', NULL]);
SELECT pdp.set_subject_retention('3 years', 'mdl.mdl_user', 'lastaccess', '{never}');
SELECT pdp.set_subject_retention('3 years', 'mdl.mdl_user', 'lastaccess', '{0}', 'lastaccess');
SELECT pdp.set_subject_retention('3 years', 'mdl.mdl_user', 'lastaccess', '{0}', 'nope');
SELECT pdp.set_subject_retention('3 years', 'mdl.mdl_user', 'lastaccess', '{0}', 'username');
SELECT pdp.set_subject_retention('3 years', 'mdl.mdl_user', NULL);
SELECT count(*) AS subject_retention FROM pdp.subject_retention;
-- Table retention reads an epoch anchor as it is, and says so when it holds 0.
CREATE TABLE mdl.mdl_sessions (id bigint PRIMARY KEY, userid bigint, timemodified bigint);
INSERT INTO mdl.mdl_sessions VALUES (1, 5, 0), (2, 6, mdl.ago('1 day'));
SELECT pdp.register_table('mdl.mdl_sessions', 'userid');
SELECT pdp.set_retention('mdl.mdl_sessions', '1 year', 'timemodified');
SELECT pdp.unregister_table('mdl.mdl_sessions');
DROP TABLE mdl.mdl_sessions;

-- 0.3 read lastaccess = 0 as 1 January 1970: asked for explicitly (no
-- "never" value), it would take 22 of the 40 users, the guest among them.
-- The safety valve holds that back, warns and records what it would have done.
SELECT pdp.set_subject_retention('3 years', 'mdl.mdl_user', 'lastaccess', '{}');
SELECT table_name, rows FROM pdp.purge_expired(dry_run => true) WHERE table_name = 'mdl.mdl_user'::regclass;
CALL pdp.purge();
SELECT count(*) AS users_after_held_back_purge FROM mdl.mdl_user;
SELECT status, total_rows, held_back FROM pdp.purge_log WHERE id IS NOT NULL ORDER BY id DESC LIMIT 1;
SELECT pdp.report('markdown') ~ 'Held back by the safety valve\*\* \(pdp.purge\\_max\\_share 0.1\): inactivity of mdl.mdl\\_user, the run would have removed 22 of 40 subjects'
       AS report_shows_held_back;
SELECT action, details->>'would_remove' AS would_remove FROM pdp.audit_log WHERE action = 'purge_held_back' ORDER BY id DESC LIMIT 1;

-- The default for an epoch-seconds column: 0 means never.  Users who never
-- logged in are then not expired (5 expire: the administrator, 19-22).
SELECT pdp.set_subject_retention('3 years', 'mdl.mdl_user', 'lastaccess');
SELECT never_values, fallback_column FROM pdp.subject_retention;
SELECT table_name, rows FROM pdp.purge_expired(dry_run => true) WHERE table_name = 'mdl.mdl_user'::regclass;
-- With timecreated to fall back on: users created five years ago who never
-- came expire too (13-16, and the guest, who never logs in); those enrolled
-- a minute ago do not, and neither do 17 and 18, of whom nothing is known.
SELECT pdp.set_subject_retention('3 years', 'mdl.mdl_user', 'lastaccess', '{0}', 'timecreated');
SELECT never_values, fallback_column FROM pdp.subject_retention;
SELECT table_name, rows FROM pdp.purge_expired(dry_run => true) WHERE table_name::text LIKE 'mdl.%' ORDER BY 1::text;

-- System subjects: the guest and the administrator are never purged.
SELECT pdp.declare_system_subject('1', 'Moodle guest user');
SELECT pdp.declare_system_subject(' 002', 'Moodle site administrator (siteadmins)');   -- stored canonically
SELECT pdp.declare_system_subject('2', 'Moodle site administrator');                    -- again: the reason is updated
SELECT pdp.declare_system_subject(NULL, 'x');
SELECT pdp.declare_system_subject('3', ' ');
SELECT pdp.declare_system_subject('not a number', 'x');
SELECT subject, reason, declared_by FROM pdp.system_subject ORDER BY subject;
SELECT pdp.report('markdown') ~ 'Inactivity: a subject''s rows expire [^\n]*3 years after their last mdl\.mdl\\_user\.lastaccess \(0 meaning never\), else timecreated; system subjects, never purged: 2\.'
       AS markdown_shows_inactivity,
       pdp.report('html') ~ 'after their last <code>mdl\.mdl_user\.lastaccess</code> \(0 meaning never\), else <code>timecreated</code>; system subjects, never purged: 2\.'
       AS html_shows_inactivity;
SELECT table_name, rows FROM pdp.purge_expired(dry_run => true) WHERE table_name::text LIKE 'mdl.%' ORDER BY 1::text;
-- 8 of 40 subjects is more than the default share (0.1): held back.
CALL pdp.purge();
SELECT count(*) AS users_still FROM mdl.mdl_user;
-- Let through once, with a larger share for this run.
SET pdp.purge_max_share = 0.25;
CALL pdp.purge();
RESET pdp.purge_max_share;
SELECT array_agg(id ORDER BY id) AS users_left FROM mdl.mdl_user;
SELECT count(*) AS log_rows_left, count(DISTINCT userid) AS log_users FROM mdl.mdl_log;
SELECT status, total_rows, held_back, max_share FROM pdp.purge_log WHERE id IS NOT NULL ORDER BY id DESC LIMIT 1;

-- The valve on table retention: half the log is older than a year, and the
-- guest's and administrator's rows stay whatever their age.
SELECT pdp.set_retention('mdl.mdl_log', '1 year', 'timecreated');
SELECT table_name, rows FROM pdp.purge_expired(dry_run => true) WHERE table_name = 'mdl.mdl_log'::regclass;
SELECT count(*) FROM pdp.purge_expired();
SELECT held_back->0->>'table' AS held_table, held_back->0->>'would_remove' AS would_remove, held_back->0->>'of' AS of_rows
  FROM pdp.purge_log WHERE id IS NOT NULL ORDER BY id DESC LIMIT 1;
BEGIN;
SET LOCAL pdp.purge_max_share = 0.5;
SELECT table_name, rows FROM pdp.purge_expired();
COMMIT;
SELECT array_agg(userid ORDER BY userid) FILTER (WHERE timecreated < mdl.ago('1 year')) AS old_log_rows_of FROM mdl.mdl_log;
-- Statistics that lag behind the table do not let a large share through:
-- analyzed at 1,000 rows, the table now has 10, and 6 of them expire.
CREATE TABLE mdl.mdl_stale (id bigint PRIMARY KEY, userid bigint NOT NULL, t bigint NOT NULL);
INSERT INTO mdl.mdl_stale SELECT g, 100 + g, mdl.ago('1 day') FROM generate_series(1, 1000) g;
SELECT pdp.register_table('mdl.mdl_stale', 'userid');
SELECT pdp.set_retention('mdl.mdl_stale', '1 year', 't');   -- its index build counts 1,000 rows
DELETE FROM mdl.mdl_stale WHERE id > 10;
UPDATE mdl.mdl_stale SET t = mdl.ago('2 years') WHERE id <= 6;
SELECT pg_stat_force_next_flush();
SELECT count(*) FROM pdp.purge_expired();
SELECT count(*) AS stale_rows_kept FROM mdl.mdl_stale;
SELECT pdp.drop_retention('mdl.mdl_stale');
SELECT pdp.unregister_table('mdl.mdl_stale');
-- The share is between 0 and 1.
SET pdp.purge_max_share = 1.5;
SET pdp.purge_max_share = -0.1;
SHOW pdp.purge_max_share;

SELECT pdp.drop_system_subject('1'), pdp.drop_system_subject('1');
SELECT pdp.drop_system_subject(NULL);
SELECT action, count(*) FROM pdp.audit_log WHERE action IN ('declare_system_subject', 'drop_system_subject') GROUP BY 1 ORDER BY 1;
SELECT pdp.drop_subject_retention();
DROP SCHEMA mdl CASCADE;
SELECT pdp.drop_system_subject('2');
