-- pgTAP: renames of every kind leave every guarantee in place (issue 14,
-- class 8).  A protected, ruled, retained table with a masked view is renamed
-- as a DBA and its owner would (schema, table, each column pdp knows of, the
-- view), and then every guarantee is checked again: row visibility per
-- purpose, the restricted-row trigger, the protection guard, on-write
-- pseudonymisation, the masked view, the registry and rule listings,
-- retention, export and erasure.  "attack:" tests fail without their
-- defence; "control:" tests show what must still work.  All of it is rolled
-- back.
BEGIN;
SELECT plan(25);

CREATE ROLE tap_rn_owner IN ROLE pdp_admin;
CREATE ROLE tap_rn_app;
CREATE SCHEMA rn AUTHORIZATION tap_rn_owner;
GRANT USAGE ON SCHEMA rn TO tap_rn_app;
SELECT pdp.define_purpose('rn_teaching', 'contract');
SELECT pdp.define_purpose('rn_news', 'consent');
SELECT pdp.allow_purpose('tap_rn_app', 'rn_teaching');
SELECT pdp.allow_purpose('tap_rn_app', 'rn_news');

SET ROLE tap_rn_owner;
CREATE TABLE rn.people (id bigint PRIMARY KEY, email text, joined timestamptz NOT NULL DEFAULT now());
CREATE TABLE rn.visits (id bigserial PRIMARY KEY, person bigint, at timestamptz DEFAULT now(), since timestamptz NOT NULL DEFAULT now());
INSERT INTO rn.people VALUES (1, 'one@example.kz', now()), (2, 'two@example.kz', now()),
                             (3, 'three@example.kz', now()), (4, 'four@example.kz', now() - interval '10 years');
INSERT INTO rn.visits (person) SELECT g % 4 + 1 FROM generate_series(1, 8) g;
GRANT SELECT, INSERT, UPDATE, DELETE ON rn.people, rn.visits TO tap_rn_app;
GRANT USAGE ON SEQUENCE rn.visits_id_seq TO tap_rn_app;
SELECT pdp.register_table('rn.people', 'id');
SELECT pdp.register_table('rn.visits', 'person');
SELECT pdp.set_column_rule('rn.people', 'email', 'mask_email', 'email');
SELECT pdp.pseudonymise_on_write('rn.people');
SELECT pdp.set_retention('rn.people', interval '5 years', 'joined');
SELECT pdp.protect_table('rn.people');
SELECT pdp.protect_table('rn.visits');
SELECT pdp.create_masked_view('rn.people');
GRANT SELECT ON rn.people_masked TO tap_rn_app;
RESET ROLE;
SELECT pdp.set_subject_retention(interval '3 years', 'rn.visits', 'at', fallback_column => 'since');
SELECT pdp.restrict_subject(2::bigint, 'dispute');
SELECT pdp.grant_consent(1::bigint, 'rn_news');

-- Every kind of rename: the schema (as the DBA), the tables, every column pdp
-- knows of (subject, ruled, anchor), the masked view (as the owner).
ALTER SCHEMA rn RENAME TO "rn renamed";
SET ROLE tap_rn_owner;
ALTER TABLE "rn renamed".people RENAME TO "Learners";
ALTER TABLE "rn renamed"."Learners" RENAME COLUMN id TO learner_id;
ALTER TABLE "rn renamed"."Learners" RENAME COLUMN email TO "E-mail";
ALTER TABLE "rn renamed"."Learners" RENAME COLUMN joined TO joined_at;
ALTER TABLE "rn renamed".visits RENAME COLUMN person TO visitor;
ALTER TABLE "rn renamed".visits RENAME COLUMN at TO seen_at;
ALTER TABLE "rn renamed".visits RENAME COLUMN since TO first_seen;
ALTER TABLE "rn renamed".visits RENAME TO logins;
ALTER VIEW "rn renamed".people_masked RENAME TO learners_masked;
RESET ROLE;

-- Row visibility.
SET ROLE tap_rn_app;
SELECT is((SELECT count(*) FROM "rn renamed"."Learners"), 0::bigint,
          'attack: after the renames, a read with no purpose declared shows rows');
SET pdp.purpose = 'rn_teaching';
SELECT is((SELECT count(*) FROM "rn renamed"."Learners"), 3::bigint,
          'attack: after the renames, the restricted learner shows under an ordinary purpose');
SELECT is((SELECT count(*) FROM "rn renamed".logins WHERE visitor = 2), 0::bigint,
          'attack: after renaming the subject column and the table, the restricted learner''s logins show');
SET pdp.purpose = 'rn_news';
SELECT is((SELECT array_agg(learner_id ORDER BY learner_id) FROM "rn renamed"."Learners"), ARRAY[1::bigint],
          'attack: after the renames, a consent purpose shows learners who did not consent');
-- The restricted-row trigger.
SET pdp.purpose = 'rn_teaching';
SELECT throws_ok($$UPDATE "rn renamed"."Learners" SET "E-mail" = 'x@example.kz' WHERE learner_id = 2$$, '42501', NULL,
                 'attack: after renaming the subject column, the restricted learner''s row is updated');
SELECT throws_ok($$DELETE FROM "rn renamed".logins WHERE visitor = 2$$, '42501', NULL,
                 'attack: after renaming the subject column, the restricted learner''s logins are deleted');
-- On-write pseudonymisation of the renamed column.
INSERT INTO "rn renamed"."Learners" (learner_id, "E-mail") VALUES (5, 'five@example.kz');
RESET pdp.purpose;
RESET ROLE;
SELECT isnt((SELECT "E-mail" FROM "rn renamed"."Learners" WHERE learner_id = 5), 'five@example.kz',
            'attack: after renaming the ruled column, a new value is stored in the clear');
-- The masked view.
SET ROLE tap_rn_app;
SET pdp.purpose = 'rn_teaching';
SELECT is((SELECT count(*) FROM "rn renamed".learners_masked), 4::bigint,
          'attack: after the renames, the masked view shows the restricted learner');
SELECT is((SELECT count(*) FROM "rn renamed".learners_masked WHERE email LIKE '%@example.kz' AND email NOT LIKE '%*%'), 0::bigint,
          'attack: after the renames, the masked view shows an address unmasked');
RESET pdp.purpose;
SELECT is((SELECT count(*) FROM "rn renamed".learners_masked), 0::bigint,
          'attack: after the renames, the masked view shows rows with no purpose declared');
RESET ROLE;

-- The protection guard still knows the table.
SET ROLE tap_rn_owner;
SELECT throws_ok($$DROP POLICY pdp_select ON "rn renamed"."Learners"$$, '42501', NULL,
                 'attack: after the renames, the owner drops pdp''s policy');
SELECT throws_ok($$ALTER TABLE "rn renamed".logins DISABLE TRIGGER pdp_refuse_restricted$$, '42501', NULL,
                 'attack: after the renames, the owner disables the restricted-row trigger');
SELECT throws_ok($$ALTER TABLE "rn renamed"."Learners" NO FORCE ROW LEVEL SECURITY$$, '42501', NULL,
                 'attack: after the renames, the owner un-forces row-level security');
RESET ROLE;

-- Listings follow the new names.
SELECT is((SELECT array_agg(subject_column::text ORDER BY subject_column) FROM pdp.registered_tables
            WHERE schema_name = 'rn renamed'), ARRAY['learner_id', 'visitor'],
          'control: the registry lists the renamed subject columns');
SELECT is((SELECT column_name::text FROM pdp.column_rules WHERE table_name = '"rn renamed"."Learners"'::regclass), 'E-mail',
          'control: the rule listing names the renamed column');
SELECT is((SELECT count(*) FROM pdp.protection WHERE tbl IN ('"rn renamed"."Learners"'::regclass, '"rn renamed".logins'::regclass)),
          2::bigint, 'control: both tables keep their protection records');

-- Retention reads the renamed anchor and inactivity columns.  (A tiny
-- table: the purge safety valve is opened for it.)
SET pdp.purge_max_share = 1;
SELECT is((SELECT activity_table::text || '.' || activity_column || '/' || fallback_column FROM pdp.subject_retention),
          '"rn renamed".logins.seen_at/first_seen',
          'attack: after renaming the inactivity and fallback columns, subject retention names columns that are gone');
SELECT is((SELECT sum(rows) FROM pdp.purge_expired() WHERE table_name = '"rn renamed"."Learners"'::regclass), 1::numeric,
          'attack: after renaming the anchor column, the expired row is not purged');
SELECT is((SELECT count(*) FROM "rn renamed"."Learners" WHERE learner_id = 4), 0::bigint,
          'control: the expired learner''s row is gone');
-- Export and erasure find the learner through the renamed columns.
SELECT ok(pdp.export_subject(3::bigint)::text LIKE '%three@example.kz%',
          'attack: after the renames, the export misses the learner''s row');
SELECT ok(pdp.export_subject(3::bigint)::text LIKE '%logins%',
          'attack: after the renames, the export misses the renamed table of logins');
SELECT lives_ok($$SELECT pdp.erase_subject(3::bigint, 'request')$$, 'control: the learner is erased');
SELECT is((SELECT count(*) FROM "rn renamed"."Learners" WHERE learner_id = 3)
          + (SELECT count(*) FROM "rn renamed".logins WHERE visitor = 3), 0::bigint,
          'attack: after the renames, erasure leaves the learner''s rows behind');

-- Dropping the activity table (or its activity column) takes the inactivity
-- retention with it: a dangling one made every purge run fail.
ALTER TABLE "rn renamed".logins DROP COLUMN seen_at;
SELECT is((SELECT count(*) FROM pdp.subject_retention), 0::bigint,
          'attack: after its activity column is dropped, inactivity retention still names it');
SELECT lives_ok($$SELECT * FROM pdp.purge_expired()$$, 'control: purges still run');

SELECT * FROM finish();
ROLLBACK;
