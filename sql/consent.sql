-- Purposes, consent, restriction, policy versions and consent-aware row
-- visibility, with several roles and purposes.
\set SHOW_CONTEXT never
\set VERBOSITY terse

-- Purposes and their legal bases.
SELECT pdp.define_purpose('marketing', 'consent', 'newsletters and offers');
SELECT pdp.define_purpose('courses', 'contract', 'providing courses');
SELECT pdp.define_purpose('legal claims', 'legal_obligation', 'disputes and lawful requests');
SELECT pdp.define_purpose('analytics', 'legitimate_interests', 'service improvement', true);
SELECT purpose, legal_basis, requires_consent, restriction_exempt FROM pdp.purposes ORDER BY 1;
-- Bad inputs.
SELECT pdp.define_purpose('x', 'because');                         -- unknown legal basis
SELECT pdp.define_purpose(NULL, 'consent');
SELECT pdp.define_purpose('', 'consent');
SELECT pdp.define_purpose('newsletter', 'consent', NULL, false);   -- consent basis without consent

-- A learners table with quotes, spaces and capitals, and an activity log
-- naming a learner twice.
CREATE SCHEMA "LMS App";
CREATE TABLE "LMS App"."Learner ""Profiles""" ("User Id" bigint PRIMARY KEY, name text, city text);
CREATE TABLE "LMS App".activity (id serial PRIMARY KEY, actor bigint, affected bigint, what text);
INSERT INTO "LMS App"."Learner ""Profiles""" SELECT g, 'learner ' || g, 'Almaty' FROM generate_series(1, 6) g;
INSERT INTO "LMS App".activity (actor, affected, what)
VALUES (1, NULL, 'login'), (2, 1, 'graded'), (3, 4, 'graded'), (5, NULL, 'login');
SELECT pdp.register_table('"LMS App"."Learner ""Profiles"""', 'User Id');
SELECT pdp.register_table('"LMS App".activity', 'actor');
SELECT pdp.register_table('"LMS App".activity', 'affected');
SELECT pdp.protect_table('"LMS App"."Learner ""Profiles"""');
SELECT pdp.protect_table('"LMS App".activity');
SELECT pdp.protect_table('"LMS App".activity');                      -- again: rebuilt, not doubled
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = '"LMS App".activity'::regclass;
CREATE TABLE "LMS App".unregistered (id int);
SELECT pdp.protect_table('"LMS App".unregistered');
SELECT pdp.unprotect_table('"LMS App".unregistered');

-- Consent: learners 1, 2 and 3 consent to marketing; 3 only for an hour.
SELECT pdp.grant_consent(1, 'marketing', evidence => '{"form": "signup-v3", "text_sha256": "ab12"}') > 0 AS granted;
SELECT pdp.grant_consent(2::bigint, 'marketing') > 0 AS granted;
SELECT pdp.grant_consent('3', 'marketing', valid_until => clock_timestamp() + interval '1 hour') > 0 AS granted;
SELECT pdp.grant_consent(4, 'analytics') > 0 AS granted;
SELECT pdp.has_consent(1, 'marketing') AS one, pdp.has_consent(5, 'marketing') AS five, pdp.has_consent('1', 'courses') AS courses;
-- Bad inputs.
SELECT pdp.grant_consent(NULL::bigint, 'marketing');
SELECT pdp.grant_consent(1, 'no such purpose');
SELECT pdp.grant_consent(1, 'marketing', policy_version => 'v9');
SELECT pdp.grant_consent(1, 'marketing', evidence => '[1, 2]');
SELECT pdp.grant_consent(1, 'marketing', valid_until => now() - interval '1 day');
SELECT pdp.withdraw_consent(NULL::text, 'marketing');
SELECT pdp.has_consent(1, 'no such purpose');

-- Roles: the app may declare marketing and courses; the analyst analytics only.
CREATE ROLE regress_app;
CREATE ROLE regress_analyst;
CREATE ROLE regress_clerk IN ROLE regress_app;      -- inherits the app's purposes
GRANT USAGE ON SCHEMA "LMS App" TO regress_app, regress_analyst;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "LMS App" TO regress_app, regress_analyst;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA "LMS App" TO regress_app;
SELECT pdp.allow_purpose('regress_app', 'marketing');
SELECT pdp.allow_purpose('regress_app', 'courses');
SELECT pdp.allow_purpose('regress_analyst', 'analytics');
SELECT pdp.allow_purpose('regress_app', 'nope');
SELECT pdp.allow_purpose(NULL, 'courses');
SELECT purpose, allowed_roles FROM pdp.purposes ORDER BY 1;

SET ROLE regress_app;
-- No purpose: fail closed, with a notice.
\set VERBOSITY default
SELECT count(*) FROM "LMS App"."Learner ""Profiles""";
\set VERBOSITY terse
-- A disallowed or unknown purpose is an error, not an empty result.
SET pdp.purpose = 'analytics';
SET pdp.purpose = 'legal claims';
SET pdp.purpose = 'does not exist';
-- Contract purpose: every row.
SET pdp.purpose = 'courses';
SELECT "User Id" FROM "LMS App"."Learner ""Profiles""" ORDER BY 1;
-- Consent purpose: only consenting learners; a row naming two learners needs both.
SET pdp.purpose = 'marketing';
SELECT "User Id" FROM "LMS App"."Learner ""Profiles""" ORDER BY 1;
SELECT actor, affected, what FROM "LMS App".activity ORDER BY id;
-- INSERT of a new subject works without consent.
INSERT INTO "LMS App"."Learner ""Profiles""" VALUES (7, 'new learner', 'Astana');
-- SET LOCAL.
BEGIN;
SET LOCAL pdp.purpose = 'courses';
SELECT count(*) AS courses_count FROM "LMS App"."Learner ""Profiles""";
COMMIT;
SELECT current_setting('pdp.purpose') AS after_local;
RESET ROLE;

-- A role may not claim another's purpose: a member inherits, others do not.
SET ROLE regress_clerk;
SET pdp.purpose = 'courses';
SELECT count(*) AS clerk_count FROM "LMS App"."Learner ""Profiles""";
RESET ROLE;
SET pdp.purpose = 'courses';
SET ROLE regress_analyst;
SELECT count(*) FROM "LMS App"."Learner ""Profiles""";         -- purpose set before SET ROLE
SET pdp.purpose = 'analytics';
SELECT "User Id" FROM "LMS App"."Learner ""Profiles""" ORDER BY 1;
RESET ROLE;
RESET pdp.purpose;

-- Expiry of a time-limited consent: learner 3 renews for one second, which
-- has run out when the sleep ends however slow the machine is.
SELECT pdp.grant_consent('3', 'marketing', valid_until => clock_timestamp() + interval '1 second') > 0 AS renewed;
SELECT pg_sleep(1.2);
SET ROLE regress_app;
SET pdp.purpose = 'marketing';
SELECT "User Id" FROM "LMS App"."Learner ""Profiles""" ORDER BY 1;
RESET ROLE;
SELECT pdp.has_consent(3, 'marketing') AS three_now;

-- Withdrawal, and history that can answer for any past moment.
SELECT clock_timestamp() AS before_withdrawal \gset
SELECT pdp.withdraw_consent(2, 'marketing') AS withdrawn, pdp.withdraw_consent(2, 'marketing') AS again;
SET ROLE regress_app;
SET pdp.purpose = 'marketing';
SELECT "User Id" FROM "LMS App"."Learner ""Profiles""" ORDER BY 1;
RESET ROLE;
SELECT pdp.has_consent(2, 'marketing') AS now, pdp.has_consent(2, 'marketing', :'before_withdrawal') AS before;
SELECT purpose, action, evidence, valid_until IS NOT NULL AS limited FROM pdp.consent_history(1) ORDER BY event_id;
SELECT purpose, action FROM pdp.consent_history(2) ORDER BY event_id;
-- History is never deleted or overwritten, for the owner neither.
DELETE FROM pdp.consent_event;
UPDATE pdp.consent_event SET action = 'grant';
TRUNCATE pdp.consent_event;
SELECT count(*) AS events FROM pdp.consent_event;

-- Restriction: hidden from non-exempt purposes, updates and deletes refused.
SELECT pdp.restrict_subject(1, 'accuracy contested');
SELECT pdp.restrict_subject(NULL::bigint, 'x');
SELECT pdp.restrict_subject(1, '');
SET ROLE regress_app;
SET pdp.purpose = 'courses';
SELECT "User Id" FROM "LMS App"."Learner ""Profiles""" ORDER BY 1;
UPDATE "LMS App"."Learner ""Profiles""" SET city = 'Shymkent' WHERE "User Id" = 1;   -- refused, not 0 rows
RESET ROLE;
-- Under an exempt purpose the rows show, but still cannot be changed; nor by the owner.
SELECT pdp.allow_purpose('regress_app', 'legal claims');
SET ROLE regress_app;
SET pdp.purpose = 'legal claims';
SELECT "User Id" FROM "LMS App"."Learner ""Profiles""" WHERE "User Id" = 1;
UPDATE "LMS App"."Learner ""Profiles""" SET city = 'Shymkent' WHERE "User Id" = 1;
DELETE FROM "LMS App".activity WHERE affected = 1;
RESET ROLE;
UPDATE "LMS App"."Learner ""Profiles""" SET city = 'Shymkent' WHERE "User Id" = 1;
UPDATE "LMS App"."Learner ""Profiles""" SET city = 'Shymkent' WHERE "User Id" = 2;   -- not restricted
SELECT pdp.lift_restriction(1) AS lifted, pdp.lift_restriction(1) AS again;
UPDATE "LMS App"."Learner ""Profiles""" SET city = 'Shymkent' WHERE "User Id" = 1;
SELECT subject, action, reason FROM pdp.restriction_event ORDER BY id;

-- Owners see all rows unless protection is forced.
RESET pdp.purpose;
SELECT count(*) AS owner_sees FROM "LMS App".activity;
SELECT pdp.protect_table('"LMS App".activity', force => true);
CREATE ROLE regress_owner;
ALTER TABLE "LMS App".activity OWNER TO regress_owner;
GRANT USAGE ON SCHEMA "LMS App" TO regress_owner;
SET ROLE regress_owner;
SELECT count(*) AS owner_forced FROM "LMS App".activity;
RESET ROLE;
ALTER TABLE "LMS App".activity OWNER TO CURRENT_USER;
SELECT table_name, rls_enabled, rls_forced FROM pdp.protected_tables ORDER BY 1;
-- Registering another subject column rebuilds the policies; the last one cannot go while protected.
ALTER TABLE "LMS App".activity ADD COLUMN witness bigint;
SELECT pdp.register_table('"LMS App".activity', 'witness');
SELECT count(*) FROM pg_policy WHERE polrelid = '"LMS App".activity'::regclass AND pg_get_expr(polqual, polrelid) LIKE '%witness%';
SELECT pdp.unregister_table('"LMS App"."Learner ""Profiles"""');
SELECT pdp.unprotect_table('"LMS App".activity');
SELECT pdp.unprotect_table('"LMS App".activity');
SELECT relrowsecurity FROM pg_class WHERE oid = '"LMS App".activity'::regclass;

-- Policy versions: 10 days' notice; re-consent after a new version takes effect.
SELECT pdp.publish_policy('v2', now() + interval '9 days', repeat('a', 64));
SELECT pdp.publish_policy('v2', now() + interval '11 days', 'not a hash');
SELECT pdp.publish_policy('v2', now() + interval '11 days', repeat('a', 64));
SELECT pdp.publish_policy('v2', now() + interval '12 days', repeat('b', 64));
SELECT version, in_effect FROM pdp.policies;
-- A version already in effect, as if published long ago (inserted directly by the owner).
INSERT INTO pdp.policy_version (version, effective_from, document_sha256)
VALUES ('v1', now() - interval '100 days', repeat('c', 64));
SELECT version, in_effect FROM pdp.policies ORDER BY effective_from;
INSERT INTO pdp.policy_version (version, effective_from, document_sha256)
VALUES ('v0', now() - interval '200 days', repeat('d', 64));
SELECT pdp.grant_consent(5, 'marketing', 'v1') > 0 AS under_v1;
SELECT pdp.grant_consent(6, 'marketing', 'v0') > 0 AS under_v0;
SELECT pdp.grant_consent(6, 'analytics', 'v0') > 0 AS under_v0;
SELECT subject, consented_purpose, policy_version FROM pdp.subjects_needing_reconsent('marketing');
SELECT subject, consented_purpose FROM pdp.subjects_needing_reconsent();
SELECT * FROM pdp.subjects_needing_reconsent('no such purpose');

-- Recording consent is not for any role: pdp_admin by default.
SET ROLE regress_app;
SELECT pdp.grant_consent(6, 'marketing');
SELECT * FROM pdp.consent_event LIMIT 1;
RESET ROLE;

-- Bulk consent: all or nothing, the failing row named by its number, never its values.
CREATE TABLE "LMS App".consent_feed (subject text, purpose text, given_at timestamptz,
                                      policy_version text, evidence jsonb, valid_until timestamptz);
INSERT INTO "LMS App".consent_feed
SELECT (700000 + g)::text, 'marketing', now() - interval '1 day', 'v1', jsonb_build_object('form', 'signup'), NULL
  FROM generate_series(1, 500) g;
SELECT pdp.import_consents_from('"LMS App".consent_feed');
SELECT count(*) AS imported, count(*) FILTER (WHERE evidence ? 'form') AS with_evidence
  FROM pdp.consent_event WHERE subject LIKE '700___' AND action = 'grant';
SELECT pdp.has_consent('0700007', 'marketing') AS feed_7_consents;
SELECT details FROM pdp.audit_log WHERE action = 'import_consents' ORDER BY id DESC LIMIT 1;
-- Each bad row refuses the whole call; the message names the row only.
SELECT pdp.import_consents(ARRAY[ROW('800001', 'marketing', now(), NULL, '{}', NULL),
                                 ROW('77012345678', 'nope', now(), NULL, '{}', NULL)]::pdp.consent_import[]);
SELECT pdp.import_consents(ARRAY[ROW('800001', 'marketing', now() + interval '1 hour', NULL, '{}', NULL)]::pdp.consent_import[]);
SELECT pdp.import_consents(ARRAY[ROW('', 'marketing', now(), NULL, '{}', NULL)]::pdp.consent_import[]);
-- Under REPEATABLE READ the snapshot may predate the import's lock, so its
-- history check could miss a withdrawal: refused (25000), nothing written.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pdp.import_consents(ARRAY[ROW('800002', 'marketing', now(), NULL, '{}', NULL)]::pdp.consent_import[]);
ROLLBACK;
SELECT count(*) AS rr_import_wrote FROM pdp.consent_event WHERE subject = '800002';
SELECT pdp.import_consents(ARRAY[ROW('800001', 'marketing', now(), 'v9', '{}', NULL)]::pdp.consent_import[]);
SELECT pdp.import_consents(ARRAY[ROW('800001', 'marketing', now(), NULL, '[1]', NULL)]::pdp.consent_import[]);
SELECT pdp.import_consents(ARRAY[ROW('800001', 'marketing', now(), NULL, '{}', now() - interval '1 day')]::pdp.consent_import[]);
SELECT pdp.import_consents(ARRAY[ROW('800001', 'marketing', now(), NULL, '{}', NULL),
                                 ROW('800001', 'marketing', now(), NULL, '{}', NULL)]::pdp.consent_import[]);
SELECT pdp.import_consents(ARRAY[ROW('700001', 'marketing', now() - interval '2 days', NULL, '{}', NULL)]::pdp.consent_import[]);
SELECT pdp.import_consents(ARRAY[ROW('800001', 'marketing', now(), NULL, '{}', NULL),
                                 ROW('no learner', 'marketing', now(), NULL, '{}', NULL)]::pdp.consent_import[]);
SELECT pdp.import_consents_from('"LMS App".activity');
SELECT pdp.import_consents(NULL::pdp.consent_import[]);
-- Rows the C pass (pdp._import_check) refuses on their own: a NULL row, no
-- purpose, no time; a later bad row is named even after good ones.
SELECT pdp.import_consents(ARRAY[NULL]::pdp.consent_import[]);
SELECT pdp.import_consents(ARRAY[ROW('800001', NULL, now(), NULL, '{}', NULL)]::pdp.consent_import[]);
SELECT pdp.import_consents(ARRAY[ROW('800001', 'marketing', NULL, NULL, '{}', NULL)]::pdp.consent_import[]);
SELECT pdp.import_consents(ARRAY(SELECT ROW(800100 + g, 'marketing', now(), NULL,
                                            CASE WHEN g = 3 THEN jsonb_build_object('user', jsonb_build_object('API_Key', 1)) END,
                                            NULL)::pdp.consent_import FROM generate_series(1, 5) g));
SELECT pdp.import_consents(ARRAY[ROW('800001', 'marketing', now(), NULL, '{}', NULL),
                                 ROW('800002', 'marketing', now() - interval '1 day', NULL, '{}', NULL),
                                 ROW('700001', 'marketing', now() - interval '2 days', NULL, '{}', NULL)]::pdp.consent_import[]);
SELECT count(*) AS nothing_half_written FROM pdp.consent_event WHERE subject = '800001';
-- A re-import over consents already held (here 700010, beside a new 800002):
-- the plain inserts fail on the existing state and are undone, the upsert
-- records both, and the state points to the new event.
SELECT pdp.import_consents(ARRAY[ROW('800002', 'marketing', now() - interval '1 hour', 'v1', '{"form": "renewal"}', NULL),
                                 ROW('700010', 'marketing', now() - interval '1 hour', 'v1', '{"form": "renewal"}', NULL)]::pdp.consent_import[])
       AS reimported;
SELECT s.subject, e.evidence->>'form' AS state_event_form,
       (SELECT count(*) FROM pdp.consent_event h WHERE h.subject = s.subject AND h.purpose = 'marketing') AS events
  FROM pdp.consent_state s JOIN pdp.consent_event e ON e.id = s.event_id
 WHERE s.subject IN ('700010', '800002') AND s.purpose = 'marketing' ORDER BY s.subject;
-- Set-based withdrawal, with history and one audit entry.
SELECT pdp.withdraw_consents(ARRAY['700001', '+700002', ' 700003', '999999'], 'marketing') AS withdrawn;
SELECT pdp.has_consent(700002, 'marketing') AS feed_2_consents;
-- A withdrawn subject imported again, newer than its withdrawal: more grants
-- than withdrawals nowhere, so the plain inserts record it.
SELECT pdp.import_consents(ARRAY[ROW('0700002', 'marketing', now(), 'v1', '{"form": "back"}', NULL)]::pdp.consent_import[]) AS reimported;
SELECT pdp.has_consent(700002, 'marketing') AS feed_2_consents_again,
       (SELECT e.evidence->>'form' FROM pdp.consent_state s JOIN pdp.consent_event e ON e.id = s.event_id
         WHERE s.subject = '700002' AND s.purpose = 'marketing') AS state_event_form;
SELECT count(*) AS withdraw_events FROM pdp.consent_event WHERE subject IN ('700001', '700002', '700003') AND action = 'withdraw';
SELECT pdp.withdraw_consents(ARRAY['700004'], 'no such purpose');
-- Its subjects are canonicalised in one call: a NULL matches nothing, a
-- subject of no registered kind refuses the call (nothing withdrawn).
SELECT pdp.withdraw_consents(ARRAY[NULL, '999998'], 'marketing') AS withdrawn;
SELECT pdp.withdraw_consents(ARRAY['700005', 'not a learner'], 'marketing');
SELECT pdp.has_consent(700005, 'marketing') AS feed_5_still_consents;
-- Importing is pdp_admin's, as recording one consent is.
SET ROLE regress_app;
SELECT pdp.import_consents(ARRAY[ROW('x', 'marketing', now(), NULL, '{}', NULL)]::pdp.consent_import[]);
RESET ROLE;

-- The restricted-row guard reads the registry: a renamed subject column, or a
-- renamed table, still refuses writes to a restricted learner's rows.
CREATE TABLE "LMS App".grades (id bigint PRIMARY KEY, learner bigint, grade int);
INSERT INTO "LMS App".grades VALUES (1, 77, 5), (2, 78, 4);
SELECT pdp.register_table('"LMS App".grades', 'learner');
SELECT pdp.protect_table('"LMS App".grades');
SELECT pdp.restrict_subject(77::bigint, 'dispute');
ALTER TABLE "LMS App".grades RENAME COLUMN learner TO student;
ALTER TABLE "LMS App".grades RENAME TO marks;
UPDATE "LMS App".marks SET grade = 1 WHERE id = 1;
DELETE FROM "LMS App".marks WHERE id = 1;
UPDATE "LMS App".marks SET grade = 3 WHERE id = 2;
SELECT pdp.lift_restriction(77::bigint);
UPDATE "LMS App".marks SET grade = 2 WHERE id = 1;
-- Without a set (pdp.visibility_memory = 0) every row is probed: same answers.
INSERT INTO "LMS App".marks SELECT g, CASE WHEN g % 3 = 0 THEN 4 ELSE 78 END, 1 FROM generate_series(3, 3000) g;
GRANT SELECT ON "LMS App".marks TO regress_analyst;
SET ROLE regress_analyst;
SET pdp.purpose = 'analytics';
SELECT count(*) AS with_sets FROM "LMS App".marks;
SET pdp.visibility_memory = 0;
SELECT count(*) AS probed_only FROM "LMS App".marks;
RESET pdp.visibility_memory;
RESET pdp.purpose;
RESET ROLE;
-- Sets of every shape answer as probes do: dense ids (one growing bitmap),
-- ids too spread for a bitmap (counted, then a sorted array), negative ids,
-- and identifiers that are not canonical integers ('007', text) in the hash.
CREATE TABLE "LMS App".mixed (id bigint PRIMARY KEY, learner text);
INSERT INTO "LMS App".mixed
SELECT g, CASE g % 5 WHEN 0 THEN (g::bigint * 1000000007)::text WHEN 1 THEN (-g)::text
                     WHEN 2 THEN lpad(g::text, 6, '0') WHEN 3 THEN 'user-' || g ELSE g::text END
  FROM generate_series(1, 3000) g;
SELECT pdp.register_table('"LMS App".mixed', 'learner');
SELECT pdp.protect_table('"LMS App".mixed');
SELECT pdp.import_consents(ARRAY(SELECT ROW(m.learner, 'analytics', now(), NULL, '{}', NULL)::pdp.consent_import
                                   FROM "LMS App".mixed m WHERE m.id % 3 = 0)) AS mixed_consents;
GRANT SELECT ON "LMS App".mixed TO regress_analyst;
SET ROLE regress_analyst;
SET pdp.purpose = 'analytics';
SELECT count(*) AS mixed_with_sets FROM "LMS App".mixed;
SET pdp.visibility_memory = 0;
SELECT count(*) AS mixed_probed FROM "LMS App".mixed;
RESET pdp.visibility_memory;
RESET pdp.purpose;
RESET ROLE;
-- Another spelling of an integer subject ('000012') names the same learner:
-- restricting 12 hides that row, on the probed path and from a set.
SELECT pdp.restrict_subject('000012', 'spelling test');
SET ROLE regress_analyst;
SET pdp.purpose = 'analytics';
SELECT count(*) AS spelled_restricted_from_set FROM "LMS App".mixed WHERE id IN (12, 15);
SELECT count(*) AS mixed_without_12 FROM "LMS App".mixed;
SET pdp.visibility_memory = 0;
SELECT count(*) AS spelled_restricted_probed FROM "LMS App".mixed WHERE id IN (12, 15);
RESET pdp.visibility_memory;
RESET pdp.purpose;
RESET ROLE;
-- The write guard knows the other spelling too: the row stored as '000012'
-- belongs to the restricted learner 12, so changing or deleting it is refused.
UPDATE "LMS App".mixed SET id = id WHERE id = 12;
DELETE FROM "LMS App".mixed WHERE id = 12;
SELECT pdp.lift_restriction(12::bigint);
UPDATE "LMS App".mixed SET id = id WHERE id = 12;

-- The SELECT policy's row test is given the row's ctid, with no OR of its
-- own to plan: a row the statement is writing (ctid (4294967295,0), which no
-- stored row has) passes, as the policy's "ctid = ... OR" let it; a stored
-- row's ctid changes nothing, and no purpose still shows nothing.
SELECT pg_get_expr(polqual, polrelid) AS select_policy FROM pg_policy
 WHERE polrelid = '"LMS App".mixed'::regclass AND polname = 'pdp_select';
SET ROLE regress_analyst;
SELECT pdp._visible(12::bigint) AS no_purpose, pdp._visible(12::bigint, '(0,1)') AS no_purpose_stored,
       pdp._visible(12::bigint, '(4294967295,0)') AS being_written,
       pdp._visible('12'::text, '(4294967295,0)') AS being_written_text,
       pdp._visible('00000000-0000-0000-0000-00000000000c'::uuid, '(4294967295,0)') AS being_written_uuid,
       pdp._visible(12::bigint, NULL) AS no_row_id;
RESET ROLE;
SELECT pdp.restrict_subject(12::bigint, 'row id test');
SET ROLE regress_analyst;
SET pdp.purpose = 'analytics';
SELECT pdp._visible(12::bigint, '(0,1)') AS restricted_stored, pdp._visible(12::bigint, '(4294967295,1)') AS restricted_offset_1,
       pdp._visible(12::bigint, '(4294967295,0)') AS restricted_being_written;
RESET pdp.purpose;
RESET ROLE;
SELECT pdp.lift_restriction(12::bigint);
-- A backend holds no set between transactions: a statement's sets are kept
-- for the rest of its snapshot's life, and freed when the transaction ends.
BEGIN;
SET LOCAL ROLE regress_analyst;
SET LOCAL pdp.purpose = 'analytics';
SELECT count(*) > 0 AS counted FROM "LMS App".mixed;
RESET ROLE;
SELECT count(*) AS set_contexts_in_transaction FROM pg_backend_memory_contexts
 WHERE name IN ('pdp_ext consent set', 'pdp_ext restriction set');
COMMIT;
SELECT count(*) AS set_contexts_after FROM pg_backend_memory_contexts
 WHERE name IN ('pdp_ext consent set', 'pdp_ext restriction set');
BEGIN;
SET LOCAL ROLE regress_analyst;
SET LOCAL pdp.purpose = 'analytics';
SELECT count(*) > 0 AS counted FROM "LMS App".mixed;
ROLLBACK;
SELECT count(*) AS set_contexts_after_rollback FROM pg_backend_memory_contexts
 WHERE name IN ('pdp_ext consent set', 'pdp_ext restriction set');
-- and the next statement reads afresh.
SET ROLE regress_analyst;
SET pdp.purpose = 'analytics';
SELECT count(*) AS mixed_again FROM "LMS App".mixed;
RESET pdp.purpose;
RESET ROLE;

DROP SCHEMA "LMS App" CASCADE;
DROP ROLE regress_app, regress_analyst, regress_clerk, regress_owner;
