-- Protection for an application that owns its tables (Moodle's one role
-- owns every table and runs every query): protect_table applies the
-- policies to the owner by default; INSERT ... RETURNING works under a
-- consent purpose; an UPDATE or DELETE of a restricted learner's rows fails
-- loudly under every purpose instead of changing nothing; a maintenance
-- purpose for migrations and cron sees and changes every row, audited.
\set SHOW_CONTEXT never
\set VERBOSITY terse

CREATE ROLE regress_moodle;
CREATE ROLE regress_moodle_cron;
CREATE SCHEMA mdl AUTHORIZATION regress_moodle;
SET ROLE regress_moodle;
CREATE TABLE mdl.mdl_user (id bigserial PRIMARY KEY, username text NOT NULL,
                           lastaccess bigint NOT NULL DEFAULT 0);
CREATE TABLE mdl.mdl_user_enrolments (id bigserial PRIMARY KEY, userid bigint NOT NULL DEFAULT 0,
                                      enrolid bigint NOT NULL DEFAULT 0);
INSERT INTO mdl.mdl_user (username) SELECT 'learner' || g FROM generate_series(1, 5) g;
INSERT INTO mdl.mdl_user_enrolments (userid, enrolid) SELECT g, 1 FROM generate_series(1, 5) g;
RESET ROLE;
GRANT regress_moodle TO regress_moodle_cron;   -- a second login of the same application
SELECT pdp.register_table('mdl.mdl_user', 'id');
SELECT pdp.register_table('mdl.mdl_user_enrolments', 'userid');
SELECT pdp.define_purpose('mdl_teaching', 'contract', 'teaching');
SELECT pdp.define_purpose('mdl_messages', 'consent', 'messages to learners');
SELECT pdp.define_purpose('mdl_claims', 'legal_obligation', 'disputes');
SELECT pdp.define_maintenance_purpose('mdl_maintenance', 'Moodle upgrades and cron');
SELECT purpose, legal_basis, requires_consent, restriction_exempt, maintenance
  FROM pdp.purposes WHERE purpose LIKE 'mdl\_%' ORDER BY 1;
SELECT pdp.allow_purpose('regress_moodle', p) FROM unnest('{mdl_teaching,mdl_messages,mdl_claims,mdl_maintenance}'::text[]) p;

-- Protection applies to the owner unless told otherwise.
SELECT pdp.protect_table('mdl.mdl_user');
SELECT pdp.protect_table('mdl.mdl_user_enrolments');
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
 WHERE c.relnamespace = 'mdl'::regnamespace AND c.relkind = 'r' ORDER BY 1;
SET ROLE regress_moodle;
SELECT count(*) AS no_purpose FROM mdl.mdl_user;
SET pdp.purpose = 'mdl_teaching';
SELECT count(*) AS teaching FROM mdl.mdl_user;

-- INSERT ... RETURNING (every Moodle insert_record) under a consent purpose:
-- the rows the statement writes come back; nobody else's become visible.
SET pdp.purpose = 'mdl_messages';
INSERT INTO mdl.mdl_user (username) VALUES ('new1') RETURNING id, username;
INSERT INTO mdl.mdl_user (username) VALUES ('new2'), ('new3') RETURNING id, username;
INSERT INTO mdl.mdl_user (username) SELECT 'gen' || g FROM generate_series(1, 2) g RETURNING username;
SELECT count(*) AS consenting_visible FROM mdl.mdl_user;
-- Rows the statement only reads stay hidden: a copy of the table returns nothing.
INSERT INTO mdl.mdl_user (username) SELECT username || '-copy' FROM mdl.mdl_user RETURNING username;
-- An upsert on a hidden row does not reach it.
INSERT INTO mdl.mdl_user (id, username) VALUES (1, 'taken') ON CONFLICT (id) DO UPDATE SET username = 'x' RETURNING id;
SET pdp.purpose = 'mdl_teaching';
SELECT count(*) AS all_rows, count(*) FILTER (WHERE username LIKE '%-copy') AS copies FROM mdl.mdl_user;
RESET ROLE;

-- A restricted learner: hidden from reads, and every change of their rows
-- fails with an error under every purpose (never a silent "0 rows").
SELECT pdp.restrict_subject(2, 'accuracy contested');
SET ROLE regress_moodle;
SET pdp.purpose = 'mdl_teaching';
SELECT id FROM mdl.mdl_user WHERE id IN (2, 3) ORDER BY 1;
UPDATE mdl.mdl_user SET lastaccess = 1 WHERE id = 2;
UPDATE mdl.mdl_user SET lastaccess = 1 WHERE id IN (2, 3);              -- the whole statement
DELETE FROM mdl.mdl_user_enrolments WHERE userid = 2;
DELETE FROM mdl.mdl_user WHERE username = 'learner2' RETURNING id;
UPDATE mdl.mdl_user SET lastaccess = 7 WHERE id = 3 RETURNING id, lastaccess;   -- others are fine
-- A condition or SET expression that is not leakproof would see the row's
-- values before the trigger refuses the change (a cast's error quotes its
-- input; a function can raise a notice): in such a statement the restricted
-- row stays hidden, and the statement changes nothing of it.
RESET ROLE;
CREATE FUNCTION public.regress_peek(text) RETURNS boolean LANGUAGE plpgsql AS
  $$BEGIN RAISE NOTICE 'peeked at %', $1; RETURN true; END$$;
SET ROLE regress_moodle;
UPDATE mdl.mdl_user SET lastaccess = 1 WHERE id = 2 AND username::int > 0 RETURNING id;
UPDATE mdl.mdl_user SET lastaccess = 1 WHERE id = 2 AND public.regress_peek(username) RETURNING id;
UPDATE mdl.mdl_user SET lastaccess = CASE WHEN public.regress_peek(username) THEN 1 ELSE 0 END WHERE id = 2 RETURNING id;
DELETE FROM mdl.mdl_user WHERE id = 2 AND public.regress_peek(username) RETURNING id;
UPDATE mdl.mdl_user SET lastaccess = 8 WHERE id = 3 AND public.regress_peek(username) RETURNING id, lastaccess;   -- others are fine
RESET ROLE;
DROP FUNCTION public.regress_peek(text);
SET ROLE regress_moodle;
-- Only the statement's own target scan lets the row through: a subquery,
-- a CTE or a join over the same table still hides it, so it cannot be copied.
UPDATE mdl.mdl_user u SET username = coalesce((SELECT v.username FROM mdl.mdl_user v WHERE v.id = 2), 'hidden')
 WHERE u.id = 3 RETURNING username;
WITH r AS (SELECT username FROM mdl.mdl_user WHERE id = 2)
UPDATE mdl.mdl_user SET username = coalesce((SELECT username FROM r), 'hidden') WHERE id = 4 RETURNING username;
UPDATE mdl.mdl_user_enrolments e SET enrolid = 9 FROM mdl.mdl_user u WHERE u.id = e.userid AND u.id = 2;
SELECT count(*) AS seen_through_exists FROM mdl.mdl_user_enrolments e
 WHERE EXISTS (SELECT 1 FROM mdl.mdl_user u WHERE u.id = e.userid AND u.id = 2);
-- Under an exempt purpose the row shows; changing it still fails.
SET pdp.purpose = 'mdl_claims';
SELECT id, username FROM mdl.mdl_user WHERE id = 2;
UPDATE mdl.mdl_user SET lastaccess = 1 WHERE id = 2;
DELETE FROM mdl.mdl_user_enrolments WHERE userid = 2;
-- Under a consent purpose a restricted learner's rows are hidden and refused alike.
RESET ROLE;
SELECT pdp.grant_consent(2, 'mdl_messages') > 0 AS granted;
SET ROLE regress_moodle;
SET pdp.purpose = 'mdl_messages';
SELECT count(*) AS visible FROM mdl.mdl_user WHERE id = 2;
UPDATE mdl.mdl_user SET lastaccess = 1 WHERE id = 2;

-- The maintenance purpose: every row, restricted ones too, may be read and
-- changed (an upgrade step updates every row); its use is audited once per
-- session and role, durably, even when the transaction rolls back.
SET pdp.purpose = 'mdl_maintenance';
SELECT count(*) AS maintenance_sees FROM mdl.mdl_user;
UPDATE mdl.mdl_user SET lastaccess = lastaccess WHERE id = 2;
UPDATE mdl.mdl_user_enrolments SET enrolid = enrolid;
RESET ROLE;
SELECT pdp.allow_purpose('regress_moodle_cron', 'mdl_maintenance');
BEGIN;
SET LOCAL ROLE regress_moodle_cron;
SET LOCAL pdp.purpose = 'mdl_maintenance';
SELECT count(*) AS cron_sees FROM mdl.mdl_user;
ROLLBACK;
SELECT action, object, details->>'role' AS role, details->>'session_user' IS NOT NULL AS has_session_user
  FROM pdp.audit_log WHERE action = 'maintenance_purpose' ORDER BY id;
-- Only pdp_admin defines maintenance purposes, and redefining one with
-- define_purpose makes it an ordinary purpose again.
SET ROLE regress_moodle;
SELECT pdp.define_maintenance_purpose('mdl_backdoor');
RESET ROLE;
SELECT pdp.define_maintenance_purpose(NULL);
SELECT pdp.define_maintenance_purpose('');
SELECT pdp.define_purpose('mdl_maintenance', 'legitimate_interests', 'now ordinary');
SELECT purpose, requires_consent, restriction_exempt, maintenance FROM pdp.purposes WHERE purpose = 'mdl_maintenance';
SET ROLE regress_moodle;
SET pdp.purpose = 'mdl_maintenance';
UPDATE mdl.mdl_user SET lastaccess = 1 WHERE id = 2;
-- A maintenance flag set by hand breaks the purpose's rule: refused.
RESET ROLE;
UPDATE pdp.purpose SET maintenance = true, requires_consent = true WHERE purpose = 'mdl_maintenance';

-- Clean up.
SELECT pdp.lift_restriction(2);
SELECT pdp.unprotect_table('mdl.mdl_user'), pdp.unprotect_table('mdl.mdl_user_enrolments');
SELECT pdp.unregister_table('mdl.mdl_user'), pdp.unregister_table('mdl.mdl_user_enrolments');
DROP SCHEMA mdl CASCADE;
SELECT pdp.disallow_purpose('regress_moodle', p) FROM unnest('{mdl_teaching,mdl_messages,mdl_claims,mdl_maintenance}'::text[]) p;
SELECT pdp.disallow_purpose('regress_moodle_cron', 'mdl_maintenance');
DROP ROLE regress_moodle_cron, regress_moodle;
