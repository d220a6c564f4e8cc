-- Retention: tagging per anchor type, backfill, purge actions, holds,
-- inactivity across tables, dry run, interruption and resumption, bad inputs.
\set SHOW_CONTEXT never
\set VERBOSITY terse

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
EXPLAIN (COSTS OFF) SELECT id FROM ret.clicks WHERE pdp._expiry(at_epoch, '1 year'::interval) < now();
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
-- Anonymise keeps the rows and applies the rules, once.
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

-- Scheduling with pg_cron (it runs the job in the TAP suite).
SELECT pdp.schedule_purge('not a schedule');
SELECT pdp.schedule_purge('17 3 * * *') > 0 AS scheduled;
SELECT jobname, schedule, command FROM cron.job;
SELECT pdp.unschedule_purge(), pdp.unschedule_purge();

SELECT pdp.drop_retention('ret.sessions');
SELECT count(*) AS tags_left FROM pdp.retention_tag WHERE tbl = 'ret.sessions'::regclass;
DROP SCHEMA ret CASCADE;
SELECT count(*) AS policies_left FROM pdp.retention_policy;
