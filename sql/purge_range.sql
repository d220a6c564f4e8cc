-- Purging by block ranges (pdp._purge_by_range, pdp._purge_range): a large
-- table most of which has expired is purged in consecutive block ranges
-- rather than through its expiry index.  The same rows go as on the index
-- path: expired ones, but not held, system or restricted subjects' rows.
\set SHOW_CONTEXT never
\set VERBOSITY terse
SET pdp.purge_max_share = 1;
SET client_min_messages = warning;
CREATE SCHEMA pr;
-- fillfactor 10: about 1,400 blocks from 20,000 rows, past the 1,024-block threshold.
CREATE TABLE pr.events (id bigint PRIMARY KEY, learner bigint, at timestamptz, note text) WITH (fillfactor = 10);
SELECT pdp.register_table('pr.events', 'learner');
SELECT pdp.set_retention('pr.events', '1 year', 'at');
-- Rows 1..15000 expired (three quarters), 15001..20000 recent; learner = id % 500.
INSERT INTO pr.events SELECT g, g % 500, CASE WHEN g <= 15000 THEN now() - interval '2 years' ELSE now() END, 'n' || g
  FROM generate_series(1, 20000) g;
VACUUM ANALYZE pr.events;
SELECT pg_relation_size('pr.events') / current_setting('block_size')::int >= 1024 AS large_enough;
SELECT pdp.place_hold(7, 'pr litigation') AS hold_id \gset
SELECT pdp.declare_system_subject('8', 'service account');
SELECT pdp.restrict_subject(9, 'restriction asked');
SELECT count(*) FILTER (WHERE learner IN (7, 8, 9) AND at < now() - interval '1 year') AS kept_expected,
       count(*) FILTER (WHERE at >= now() - interval '1 year') AS recent
  FROM pr.events;

-- The decision: block ranges here, sized for about batch_size expired rows.
SELECT pdp._purge_by_range('pr.events', 'retention', 1000) BETWEEN 1 AND 200 AS by_range;
-- A small table, or one with little expired, goes through the index (0).
CREATE TABLE pr.small (id bigint PRIMARY KEY, learner bigint, at timestamptz);
SELECT pdp.register_table('pr.small', 'learner');
SELECT pdp.set_retention('pr.small', '1 year', 'at');
INSERT INTO pr.small SELECT g, g, now() - interval '2 years' FROM generate_series(1, 100) g;
SELECT pdp._purge_by_range('pr.small', 'retention', 1000) AS small_by_index;
CREATE TABLE pr.fresh (LIKE pr.events INCLUDING ALL) WITH (fillfactor = 10);
SELECT pdp.register_table('pr.fresh', 'learner');
SELECT pdp.set_retention('pr.fresh', '1 year', 'at');
INSERT INTO pr.fresh SELECT g, g % 500, CASE WHEN g <= 500 THEN now() - interval '2 years' ELSE now() END, 'n' || g
  FROM generate_series(1, 20000) g;
SELECT pdp._purge_by_range('pr.fresh', 'retention', 1000) AS little_expired_by_index;
-- Nor a table whose rows have dependants to follow, or are anonymised.
CREATE TABLE pr.child (id bigint PRIMARY KEY, event bigint, learner bigint);
SELECT pdp.register_table('pr.child', 'learner');
SELECT pdp.declare_link('pr.child', 'event', 'pr.events', 'id');
SELECT pdp._purge_by_range('pr.events', 'retention', 1000) AS linked_by_index;
SELECT pdp.drop_link('pr.child', 'event');
SELECT pdp._purge_by_range('pr.events', 'retention', 1000) > 0 AS by_range_again;

-- One range deletes only in its blocks; bad arguments are refused.
SELECT n > 0 AS some, next_block, NOT done AS more FROM pdp._purge_range('pr.events', 'retention', 1000, 0, 10);
SELECT count(*) AS gone_from_first_ten_blocks FROM pr.events WHERE ctid < '(10,0)'::tid AND at < now() - interval '1 year'
   AND learner NOT IN (7, 8, 9);
SELECT * FROM pdp._purge_range('pr.events', 'retention', 1000, -1, 10);
SELECT * FROM pdp._purge_range('pr.events', 'retention', 1000, 0, 0);
SELECT * FROM pdp._purge_range('pr.events', 'retention', 0, 0, 10);
SELECT * FROM pdp._purge_range('pr.events', 'nonsense', 1000, 0, 10);
-- Past the end: nothing, done.
SELECT n, done FROM pdp._purge_range('pr.events', 'retention', 1000, 1000000, 10);

-- The whole purge: every expired row but the held, system and restricted
-- subjects' goes; recent rows stay; batches stay near batch_size.
CALL pdp.purge(batch_size => 1000);
SELECT count(*) FILTER (WHERE at < now() - interval '1 year') AS expired_left,
       count(*) FILTER (WHERE at < now() - interval '1 year' AND learner NOT IN (7, 8, 9)) AS expired_unprotected_left,
       count(*) FILTER (WHERE at >= now() - interval '1 year') AS recent
  FROM pr.events;
SELECT (details->>'rows')::bigint <= 4000 AS bounded, count(*) > 5 AS several
  FROM pdp.audit_log WHERE action = 'purge_batch' AND object = 'pr.events'
 GROUP BY 1;
SELECT total_rows, errors FROM pdp.purge_run ORDER BY id DESC LIMIT 1;
-- A second run finds nothing more.
CALL pdp.purge(batch_size => 1000);
SELECT total_rows FROM pdp.purge_run ORDER BY id DESC LIMIT 1;

-- The delete tests each row's expiry itself: rows made current after the
-- decision to purge by ranges stay.
TRUNCATE pr.events;
INSERT INTO pr.events SELECT g, g % 500 + 1000, now() - interval '2 years', 'n' || g FROM generate_series(1, 20000) g;
SELECT pdp._purge_by_range('pr.events', 'retention', 1000) > 0 AS by_range;
UPDATE pr.events SET at = now() WHERE id % 2 = 0;
SELECT n FROM pdp._purge_range('pr.events', 'retention', 100000, 0, 4294967295);
SELECT count(*) AS current_kept FROM pr.events;

SELECT pdp.release_hold(:hold_id);
SELECT pdp.drop_system_subject('8');
SELECT pdp.lift_restriction(9);

-- Table retention with "never" values and a fallback (issue 16, point 3):
-- Moodle-style epoch seconds, where 0 means never; a row whose anchor is
-- never runs from its fallback column instead, and one never there either
-- never expires.
CREATE TABLE pr.users (id bigint PRIMARY KEY, learner bigint, lastaccess bigint NOT NULL DEFAULT 0,
                       timecreated bigint NOT NULL DEFAULT 0, note text);
SELECT pdp.register_table('pr.users', 'learner');
INSERT INTO pr.users VALUES
  (1, 101, extract(epoch FROM now() - interval '5 years')::bigint, 1000, 'old access'),
  (2, 102, extract(epoch FROM now() - interval '1 day')::bigint, 1000, 'recent access'),
  (3, 103, 0, extract(epoch FROM now() - interval '5 years')::bigint, 'never logged in, created long ago'),
  (4, 104, 0, extract(epoch FROM now() - interval '1 day')::bigint, 'never logged in, created yesterday'),
  (5, 105, 0, 0, 'never anything');
-- Bad inputs, each refused with nothing changed.
SELECT pdp.set_retention('pr.users', '3 years', NULL, 'delete', '{0}');                      -- never values need an anchor
SELECT pdp.set_retention('pr.users', '3 years', NULL, 'delete', NULL, 'timecreated');        -- so does a fallback
SELECT pdp.set_retention('pr.users', '3 years', 'lastaccess', 'delete', NULL, 'lastaccess'); -- the anchor itself
SELECT pdp.set_retention('pr.users', '3 years', 'lastaccess', 'delete', NULL, 'nosuch');
SELECT pdp.set_retention('pr.users', '3 years', 'lastaccess', 'delete', NULL, 'note');       -- not a time
SELECT pdp.set_retention('pr.users', '3 years', 'lastaccess', 'delete', ARRAY['0', NULL]);
SELECT pdp.set_retention('pr.users', '3 years', 'lastaccess', 'delete', ARRAY['soon']);
SELECT count(*) AS no_policy FROM pdp.retention_policies WHERE table_name = 'pr.users'::regclass;
-- An epoch-seconds anchor: 0 means never by default, and no warning.
SELECT pdp.set_retention('pr.users', '3 years', 'lastaccess', 'delete', NULL, 'timecreated');
SELECT anchor_column, never_values, fallback_column FROM pdp.retention_policies WHERE table_name = 'pr.users'::regclass;
SELECT (pdp._find_expired('pr.users', 'retention', false, 100, NULL)).n AS would_go;
-- The purge's find uses the expiry index made for this expression.
SET enable_seqscan = off;
SELECT pdp._retention_expiry_sql('pr.users') AS expiry \gset
\echo :expiry
EXPLAIN (COSTS OFF) SELECT 1 FROM pr.users t WHERE :expiry < now();
RESET enable_seqscan;
CALL pdp.purge();
SELECT id, note FROM pr.users ORDER BY id;
-- Renaming the fallback column keeps the policy working; dropping it ends it.
ALTER TABLE pr.users RENAME COLUMN timecreated TO created_at;
SELECT fallback_column FROM pdp.retention_policies WHERE table_name = 'pr.users'::regclass;
UPDATE pr.users SET created_at = extract(epoch FROM now() - interval '5 years')::bigint WHERE id = 4;
CALL pdp.purge();
SELECT id, note FROM pr.users ORDER BY id;
ALTER TABLE pr.users DROP COLUMN created_at;
SELECT count(*) AS policy_after_drop FROM pdp.retention_policies WHERE table_name = 'pr.users'::regclass;
CALL pdp.purge();
-- Said explicitly that 0 is a real time: warned, as before.
SELECT pdp.set_retention('pr.users', '3 years', 'lastaccess', 'delete', '{}');
SELECT never_values FROM pdp.retention_policies WHERE table_name = 'pr.users'::regclass;

-- A purge for inactivity cuts links to the inactive subjects in the rows it
-- keeps, as erasure does: an inactive teacher's grades of active learners
-- stay, their grader set to the declared erase value (0).  A held teacher's
-- links stay, and so does every row naming a restricted learner.
CREATE TABLE pr.people (id bigint PRIMARY KEY, last_seen timestamptz);
CREATE TABLE pr.grades (id bigint PRIMARY KEY, learner bigint NOT NULL, grader bigint NOT NULL DEFAULT 0, reviewer bigint);
SELECT pdp.register_table('pr.people', 'id');
SELECT pdp.register_table('pr.grades', 'learner');
SELECT pdp.register_table('pr.grades', 'grader', 'set_value', '0');
SELECT pdp.register_table('pr.grades', 'reviewer', 'set_null');
INSERT INTO pr.people VALUES (900, now() - interval '5 years'), (901, now()), (902, now() - interval '5 years'),
                             (903, now()), (905, now() - interval '5 years'), (906, now());
INSERT INTO pr.grades VALUES (1, 901, 900, 900), (2, 902, 903, NULL), (3, 901, 903, 900), (4, 901, 905, NULL), (5, 906, 900, 900);
SELECT pdp.place_hold(905, 'pr appeal') AS teacher_hold \gset
SELECT pdp.restrict_subject(906, 'pr restriction');
-- A table with no delete column and nothing declared to anonymise it with
-- (a post whose only personal column is its author): the inactive author's
-- link is cut, the post stays (no "has no column rules" failure).
CREATE TABLE pr.posts (id bigint PRIMARY KEY, author bigint, body text);
SELECT pdp.register_table('pr.posts', 'author', 'set_null');
INSERT INTO pr.posts VALUES (1, 900, 'old post'), (2, 901, 'new post'), (3, 905, 'held author''s post');
-- A kept row's foreign key into a row the purge deletes is emptied once the
-- row names nobody (as erasure does), so the delete does not fail: marks
-- are kept, cut from the inactive learner and from their enrolment.
CREATE TABLE pr.enrolments (id bigint PRIMARY KEY, learner bigint NOT NULL);
CREATE TABLE pr.marks (id bigint PRIMARY KEY, learner bigint, enrolment bigint REFERENCES pr.enrolments, mark int);
SELECT pdp.register_table('pr.enrolments', 'learner');
SELECT pdp.register_table('pr.marks', 'learner', 'set_null');
INSERT INTO pr.enrolments VALUES (10, 900), (11, 901);
INSERT INTO pr.marks VALUES (1, 900, 10, 5), (2, 901, 11, 4);
SELECT pdp.set_subject_retention('3 years', 'pr.people', 'last_seen');
SELECT table_name, action, rows FROM pdp.purge_expired(dry_run => true)
 WHERE table_name IN ('pr.people'::regclass, 'pr.grades'::regclass, 'pr.posts'::regclass,
                      'pr.enrolments'::regclass, 'pr.marks'::regclass) ORDER BY 1, 2;
SELECT * FROM pr.grades ORDER BY id;   -- a dry run changes nothing
CALL pdp.purge();
SELECT * FROM pr.grades ORDER BY id;
SELECT * FROM pr.posts ORDER BY id;
SELECT * FROM pr.marks ORDER BY id;
SELECT * FROM pr.enrolments ORDER BY id;
SELECT status, jsonb_array_length(errors) AS errors FROM pdp.purge_log ORDER BY id DESC NULLS LAST LIMIT 1;
SELECT id FROM pr.people ORDER BY id;
SELECT rows FROM pdp.purge_log ORDER BY id DESC LIMIT 1;
SELECT pdp.drop_subject_retention();
-- An anonymising purge leaves rows naming nobody: a NOT NULL column that
-- owns its rows has no value that does, so such a table is refused.
ALTER TABLE pr.enrolments ADD COLUMN at timestamptz, ADD COLUMN note text;
SELECT pdp.set_column_rule('pr.enrolments', 'note', 'mask');
SELECT pdp.set_retention('pr.enrolments', '1 year', 'at', 'anonymise');
SELECT pdp.release_hold(:teacher_hold);
SELECT pdp.lift_restriction(906);
DROP SCHEMA pr CASCADE;
