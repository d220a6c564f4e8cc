-- Column rules: declaration, fit to the column, on-write, apply_rules with
-- interruption and resume, masked views, renames and drops.
\set SHOW_CONTEXT never
\set VERBOSITY terse

CREATE SCHEMA "LMS";
CREATE TABLE "LMS"."Learners" (
    id        bigserial PRIMARY KEY,
    "E-mail"  text,
    phone     varchar(20),
    iin       char(12),
    ip        inet,
    born      date,
    full_name text,
    short     varchar(10),
    note      text NOT NULL DEFAULT 'n/a'
);
INSERT INTO "LMS"."Learners" ("E-mail", phone, iin, ip, born, full_name)
VALUES ('aigerim@mail.kz', '+7 701 234 56 78', '900101300017', '10.0.0.1', '1990-01-01', 'Айгерім Сәрсенова'),
       ('nurlan@mail.kz',  '8 701 111 22 33',  '850315400608', '10.0.0.2', '1985-03-15', 'Nurlan Akhmetov'),
       ('dana@mail.kz',    '87772223344',      '900101300017', '10.0.0.3', '2001-07-20', 'Дана'),
       (NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE raw_copy AS SELECT * FROM "LMS"."Learners";

-- Declaring rules; each bad one refused with nothing changed.
SELECT pdp.set_column_rule('"LMS"."Learners"', 'E-mail', 'pseudo_email', 'email');
SELECT pdp.set_column_rule('"LMS"."Learners"', 'phone', 'pseudo_phone', 'phone');
SELECT pdp.set_column_rule('"LMS"."Learners"', 'iin', 'pseudo_iin', 'iin');
SELECT pdp.set_column_rule('"LMS"."Learners"', 'ip', 'pseudo_ip', 'ip');
SELECT pdp.set_column_rule('"LMS"."Learners"', 'born', 'generalize_year', 'birth_date');
SELECT pdp.set_column_rule('"LMS"."Learners"', 'full_name', 'pseudo_name', 'name');
SELECT pdp.set_column_rule('"LMS"."Learners"', 'phone', 'mask_phone', 'phone');   -- replace
SELECT pdp.set_column_rule('"LMS"."Learners"', 'phone', 'pseudo_phone', 'phone'); -- and back
SELECT pdp.set_column_rule('"LMS"."Learners"', 'ip', 'pseudonym');          -- inet column, text rule
SELECT pdp.set_column_rule('"LMS"."Learners"', 'born', 'mask');              -- date column
SELECT pdp.set_column_rule('"LMS"."Learners"', 'short', 'encrypt');          -- varchar(10) too short
SELECT pdp.set_column_rule('"LMS"."Learners"', 'short', 'pseudonym');        -- varchar(10) too short
SELECT pdp.set_column_rule('"LMS"."Learners"', 'note', 'null');              -- NOT NULL column
SELECT pdp.set_column_rule('"LMS"."Learners"', 'id', 'pseudo_iin');          -- bigint
SELECT pdp.set_column_rule('"LMS"."Learners"', 'nope', 'mask');              -- no such column
SELECT pdp.set_column_rule('"LMS"."Learners"', 'full_name', 'scramble');     -- unknown rule
SELECT pdp.set_column_rule('"LMS"."Learners"', 'full_name', 'shred');        -- shred: no subject column registered yet
SELECT pdp.set_column_rule('"LMS"."Learners"', 'full_name', NULL);
SELECT pdp.set_column_rule('"LMS"."Learners"', 'full_name', 'mask', '');     -- empty category
SELECT pdp.set_column_rule('pdp.rule_kind', 'rule', 'mask');                 -- pdp's own table
SELECT pdp.register_table('"LMS"."Learners"', 'id');
CREATE TABLE "LMS".posts (id serial PRIMARY KEY, author text, body text);
SELECT pdp.register_table('"LMS".posts', 'author');
SELECT pdp.set_column_rule('"LMS".posts', 'author', 'pseudonym');            -- a subject column
SELECT pdp.drop_column_rule('"LMS"."Learners"', 'short');                    -- has none
SELECT table_name, column_name, column_type, rule, category, on_write FROM pdp.column_rules ORDER BY column_name;

-- Masked view: ruled columns show the rule's output, others pass through.
SELECT pdp.create_masked_view('"LMS"."Learners"');
SELECT v."E-mail" ~ '^[a-z2-7]{26}@mail\.kz$' AS email_pseudo, v.phone <> r.phone AS phone_pseudo,
       pdp.iin_is_valid(v.iin) AS iin_valid, v.born = date_trunc('year', r.born)::date AS year_only,
       v.full_name = pdp.pseudo_name(r.full_name) AS name_pseudo, v.note = r.note AS note_untouched
  FROM "LMS"."Learners_masked" v JOIN raw_copy r USING (id) WHERE id = 1;
SELECT count(*) AS null_rows_stay_null FROM "LMS"."Learners_masked" WHERE id = 4 AND "E-mail" IS NULL AND iin IS NULL;
-- A role granted only the view never sees raw values, also through a cursor.
CREATE ROLE regress_staff;
GRANT USAGE ON SCHEMA "LMS" TO regress_staff;
GRANT SELECT ON "LMS"."Learners_masked" TO regress_staff;
-- PostgreSQL checks the keyed functions in a view against its reader.
GRANT pdp_pseudonymiser TO regress_staff;
SET ROLE regress_staff;
SELECT count(*) FROM "LMS"."Learners";
BEGIN;
DECLARE c CURSOR FOR SELECT "E-mail" <> 'aigerim@mail.kz' AS cursor_masked FROM "LMS"."Learners_masked" ORDER BY id;
FETCH 1 FROM c;
COMMIT;
RESET ROLE;

-- apply_rules: interrupted by a bad value in the third batch, then resumed.
UPDATE "LMS"."Learners" SET "E-mail" = 'broken address' WHERE id = 3;
CALL pdp.apply_rules('"LMS"."Learners"', batch_size => 1);
SELECT last_key, rows_done, finished_at IS NULL AS resumable FROM pdp.apply_run;
SELECT id, "E-mail" = pdp.pseudo_email(r_email) AS done_once FROM "LMS"."Learners" JOIN (SELECT id, "E-mail" AS r_email FROM raw_copy) r USING (id) ORDER BY id;
UPDATE "LMS"."Learners" SET "E-mail" = 'dana@mail.kz' WHERE id = 3;
CALL pdp.apply_rules('"LMS"."Learners"', batch_size => 2);
SELECT last_key, rows_done, finished_at IS NOT NULL AS finished FROM pdp.apply_run;
-- Every row was rewritten exactly once: each value is the rule applied to the raw one.
SELECT l.id,
       l."E-mail" IS NOT DISTINCT FROM pdp.pseudo_email(r."E-mail") AS email,
       l.phone IS NOT DISTINCT FROM pdp.pseudo_phone(r.phone) AS phone,
       l.iin IS NOT DISTINCT FROM pdp.pseudo_iin(r.iin) AS iin,
       l.ip IS NOT DISTINCT FROM pdp.pseudo_ip(r.ip) AS ip,
       l.born IS NOT DISTINCT FROM pdp.generalize_date(r.born, 'year') AS born,
       l.full_name IS NOT DISTINCT FROM pdp.pseudo_name(r.full_name) AS name
  FROM "LMS"."Learners" l JOIN raw_copy r USING (id) ORDER BY l.id;
-- A second run is refused: it would pseudonymise twice.
CALL pdp.apply_rules('"LMS"."Learners"');
CALL pdp.apply_rules('"LMS"."Learners"', batch_size => 0);
CALL pdp.apply_rules('"LMS".posts');
CREATE TABLE no_pk (email text);
SELECT pdp.set_column_rule('no_pk', 'email', 'pseudo_email');
CALL pdp.apply_rules('no_pk');

-- On write: raw values never land, unchanged values are left alone.
SELECT pdp.pseudonymise_on_write('"LMS"."Learners"');
CALL pdp.apply_rules('"LMS"."Learners"', restart => true);
INSERT INTO "LMS"."Learners" ("E-mail", phone, iin, ip, born, full_name)
VALUES ('new@mail.kz', '+7 705 000 11 22', '900101300017', '192.168.1.1', '2002-02-02', 'Тимур Ахметов')
RETURNING "E-mail" = pdp.pseudo_email('new@mail.kz') AS email, phone = pdp.pseudo_phone('+7 705 000 11 22') AS phone,
          iin = pdp.pseudo_iin('900101300017') AS iin, born = '2002-01-01' AS born, note AS untouched;
COPY "LMS"."Learners" ("E-mail", phone) FROM stdin;
copied@mail.kz	+7 705 999 88 77
\.
SELECT "E-mail" = pdp.pseudo_email('copied@mail.kz') AS copy_pseudonymised FROM "LMS"."Learners" WHERE phone = pdp.pseudo_phone('+7 705 999 88 77');
UPDATE "LMS"."Learners" SET note = 'touched' WHERE "E-mail" = pdp.pseudo_email('new@mail.kz')
RETURNING "E-mail" = pdp.pseudo_email('new@mail.kz') AS unchanged_not_redone;
UPDATE "LMS"."Learners" SET "E-mail" = 'changed@mail.kz' WHERE "E-mail" = pdp.pseudo_email('new@mail.kz')
RETURNING "E-mail" = pdp.pseudo_email('changed@mail.kz') AS changed_pseudonymised;
INSERT INTO "LMS"."Learners" ("E-mail") VALUES ('not an e-mail');
INSERT INTO "LMS"."Learners" (iin) VALUES ('900101300018');
-- Renaming a ruled column rebuilds the trigger; dropping one removes its rule.
ALTER TABLE "LMS"."Learners" RENAME COLUMN "E-mail" TO "Email Address";
INSERT INTO "LMS"."Learners" ("Email Address") VALUES ('renamed@mail.kz')
RETURNING "Email Address" = pdp.pseudo_email('renamed@mail.kz') AS after_rename;
DROP VIEW "LMS"."Learners_masked";
ALTER TABLE "LMS"."Learners" DROP COLUMN ip;
SELECT column_name, rule, on_write FROM pdp.column_rules WHERE table_name = '"LMS"."Learners"'::regclass ORDER BY 1;
INSERT INTO "LMS"."Learners" (phone) VALUES ('+7 705 123 45 67') RETURNING phone <> '+7 705 123 45 67' AS after_drop;
-- A type change the rule cannot write is refused.
ALTER TABLE "LMS"."Learners" ALTER COLUMN born TYPE timestamptz;
ALTER TABLE "LMS"."Learners" ALTER COLUMN phone TYPE varchar(16);
-- Dropping the rule rebuilds the trigger without it; turning it off removes it.
SELECT pdp.drop_column_rule('"LMS"."Learners"', 'full_name');
INSERT INTO "LMS"."Learners" (full_name) VALUES ('Raw Name') RETURNING full_name;
SELECT pdp.pseudonymise_on_write('"LMS"."Learners"', false);
SELECT count(*) AS on_write_triggers FROM pg_trigger WHERE tgrelid = '"LMS"."Learners"'::regclass AND tgname = 'pdp_pseudonymise_on_write';
SELECT pdp.pseudonymise_on_write('"LMS".posts');

-- Only the table's owner configures its rules.
CREATE ROLE regress_other IN ROLE pdp_admin;
GRANT USAGE ON SCHEMA "LMS" TO regress_other;
SET ROLE regress_other;
SELECT pdp.set_column_rule('"LMS"."Learners"', 'iin', 'mask');
SELECT pdp.pseudonymise_on_write('"LMS"."Learners"');
CALL pdp.apply_rules('"LMS"."Learners"', restart => true);
RESET ROLE;

-- Real values (issue 16): Moodle-like columns, '' for "not given", names in
-- any script, root@localhost, IPs in varchar(45).
CREATE TABLE "LMS".mdl_user (
    id bigint PRIMARY KEY, email varchar(100) NOT NULL DEFAULT '', phone1 varchar(20) NOT NULL DEFAULT '',
    firstname varchar(100) NOT NULL DEFAULT '', lastip varchar(45) NOT NULL DEFAULT '', shortip varchar(15),
    password varchar(255) NOT NULL DEFAULT '', secret varchar(15) NOT NULL DEFAULT '');
INSERT INTO "LMS".mdl_user VALUES
    (1, 'root@localhost', '', 'Guest', '', NULL, 'not cached', ''),
    (2, 'admin@mail.kz', '+7 701 234 56 78', '大翔', '10.1.2.3', NULL, '$2y$10$hashhashhash', 's3cr3t'),
    (3, '', ' ', 'محمد', '2001:db8::1', NULL, '$2y$10$hashhash2', ''),
    (4, 'broken address', 'call me', 'R2D2', 'not an ip', NULL, '$2y$10$hashhash3', ''),
    (5, 'dana@mail.kz', '87011112233', 'Дана', '0.0.0.0', NULL, '$2y$10$hashhash4', '');
SELECT pdp.set_column_rule('"LMS".mdl_user', 'email', 'pseudo_email', 'email');
SELECT pdp.set_column_rule('"LMS".mdl_user', 'phone1', 'pseudo_phone', 'phone');
SELECT pdp.set_column_rule('"LMS".mdl_user', 'firstname', 'pseudo_name', 'name');
SELECT pdp.set_column_rule('"LMS".mdl_user', 'lastip', 'pseudo_ip', 'ip');      -- varchar(45): fits (at most 43 out)
SELECT pdp.set_column_rule('"LMS".mdl_user', 'shortip', 'pseudo_ip', 'ip');     -- varchar(15): an IPv6 pseudonym would not fit
SELECT pdp.set_column_rule('"LMS".mdl_user', 'id', 'pseudo_ip');                -- bigint
-- Credentials: never in a masked view, never exported (named, value withheld).
SELECT pdp.declare_credential('"LMS".mdl_user', 'password'), pdp.declare_credential('"LMS".mdl_user', 'secret');
SELECT pdp.declare_credential('"LMS".mdl_user', 'password');                   -- idempotent
SELECT pdp.declare_credential('"LMS".mdl_user', 'nope');
SELECT pdp.declare_credential('"LMS".mdl_user', NULL);
SELECT pdp.declare_credential('pdp.rule_kind', 'rule');
SELECT pdp.declare_credential('"LMS".posts', 'author');                         -- a subject column
SELECT table_name, column_name, column_type FROM pdp.credential_columns ORDER BY 2;
-- The masked view never fails on a stored value: what a rule cannot take shows as ****, counted.
SELECT pdp.create_masked_view('"LMS".mdl_user');
SELECT id, email = '' AS email_empty_kept, email = '****' AS email_failed, email ~ '@localhost$' AS host_address,
       phone1 IN ('', ' ') AS phone_blank_kept, phone1 = '****' AS phone_failed,
       firstname ~ '^[A-Za-z]+$' AS name_latin, firstname = '****' AS name_failed,
       lastip = '' AS ip_empty_kept, lastip = '****' AS ip_failed, password IS NULL AND secret IS NULL AS credentials_hidden
  FROM "LMS".mdl_user_masked ORDER BY id;
SELECT l.lastip = pdp.pseudo_ip_text(r.lastip) AS ip_pseudonymised FROM "LMS".mdl_user_masked l JOIN "LMS".mdl_user r USING (id) WHERE id = 2;
SELECT table_name, column_name, rule, failures FROM pdp.rule_failures WHERE table_name = '"LMS".mdl_user'::regclass ORDER BY 2;
SELECT count(email) AS readable_again FROM "LMS".mdl_user_masked;
SELECT count(*) AS not_read_not_counted FROM "LMS".mdl_user_masked;
SELECT table_name, column_name, rule, failures FROM pdp.rule_failures WHERE table_name = '"LMS".mdl_user'::regclass AND column_name = 'email';
-- No value in the counters' view, nor in the view's definition.
SELECT count(*) AS leaks FROM pdp.rule_failures f WHERE f::text ~ '(broken|call me|R2D2|not an ip)';
-- A dropped credential shows again once the view is re-created (drop_credential does it).
SELECT pdp.drop_credential('"LMS".mdl_user', 'secret'), pdp.drop_credential('"LMS".mdl_user', 'secret') AS again;
SELECT secret IS NOT NULL AS secret_shown, password IS NULL AS password_hidden FROM "LMS".mdl_user_masked WHERE id = 2;
SELECT pdp.register_table('"LMS".mdl_user', 'id');
SELECT pdp.export_subject(2)->'data'->'"LMS".mdl_user'->0->'password' AS exported_password,
       pdp.export_subject(2)->'data'->'"LMS".mdl_user'->0 ? 'password' AS column_named,
       pdp.export_subject(2)::text !~ 'hashhash' AS no_hash_anywhere;
-- A credential is never consent evidence (a row copied into it would carry the hash).
BEGIN;
SELECT pdp.define_purpose('rules_news', 'consent');
SELECT pdp.grant_consent(2, 'rules_news', evidence => '{"form": "signup", "user": {"id": 2, "password": "x"}}');
ROLLBACK;
BEGIN;
SELECT pdp.define_purpose('rules_news', 'consent');
SELECT pdp.import_consents(ARRAY[ROW('2', 'rules_news', now() - interval '1 day', NULL, '{"secret": "x"}', NULL)::pdp.consent_import]);
ROLLBACK;
CREATE TABLE "LMS".accounts (id int PRIMARY KEY, pw text);
SELECT pdp.declare_credential('"LMS".accounts', 'pw');
-- The import's set-based check refuses what pdp._credential_evidence refuses,
-- naming the first such row.
BEGIN;
SELECT pdp.define_purpose('rules_news', 'consent');
SELECT pdp.import_consents(ARRAY[ROW('3', 'rules_news', now() - interval '1 day', NULL, '{"form": "signup", "ip": "10.0.0.1"}', NULL)::pdp.consent_import,
                                 ROW('4', 'rules_news', now() - interval '1 day', NULL, '{"row": [{"pw": "x"}]}', NULL)::pdp.consent_import,
                                 ROW('5', 'rules_news', now() - interval '1 day', NULL, '{"Token": 1}', NULL)::pdp.consent_import]);
ROLLBACK;
BEGIN;
SELECT pdp.define_purpose('rules_news', 'consent');
SELECT pdp.import_consents(ARRAY[ROW('3', 'rules_news', now() - interval '1 day', NULL, '{"form": "signup", "ip": "10.0.0.1"}', NULL)::pdp.consent_import,
                                 ROW('5', 'rules_news', now() - interval '1 day', NULL, '{"user": {"Token": 1}}', NULL)::pdp.consent_import]);
ROLLBACK;
SELECT e AS evidence, pdp._credential_evidence(e::jsonb) AS refused
  FROM (VALUES ('{"form": "signup", "api_key": "x"}'), ('{"row": [{"pw": "x"}]}'), ('{"Token": 1}'),
               ('{"form": "signup", "ip": "10.0.0.1", "text_sha256": "ab12"}'), ('{}')) t(e);
-- A masked view that cannot be re-created (a column renamed since) makes the declaration fail, clearly.
ALTER TABLE "LMS".mdl_user RENAME COLUMN secret TO pw;
SELECT pdp.declare_credential('"LMS".mdl_user', 'pw');
SELECT count(*) AS not_declared FROM pdp.credential_columns WHERE column_name = 'pw' AND table_name = '"LMS".mdl_user'::regclass;
ALTER TABLE "LMS".mdl_user RENAME COLUMN pw TO secret;
-- On write, '' passes, a varchar(45) IP is pseudonymised as text.
SELECT pdp.pseudonymise_on_write('"LMS".mdl_user');
INSERT INTO "LMS".mdl_user (id, email, phone1, firstname, lastip) VALUES (6, '', '', '', '10.9.8.7')
RETURNING email = '' AS email_kept, phone1 = '' AS phone_kept, firstname = '' AS name_kept,
          lastip = pdp.pseudo_ip_text('10.9.8.7') AS ip_pseudonymised;
INSERT INTO "LMS".mdl_user (id, lastip) VALUES (7, 'not an ip');
-- apply_rules uses pseudo_ip_text on the varchar column too.
DELETE FROM "LMS".mdl_user WHERE id IN (4, 6);
SELECT pdp.pseudonymise_on_write('"LMS".mdl_user', false);
CREATE TABLE raw_users AS SELECT * FROM "LMS".mdl_user;
CALL pdp.apply_rules('"LMS".mdl_user');
SELECT u.id, u.lastip IS NOT DISTINCT FROM pdp.pseudo_ip_text(r.lastip) AS ip, u.email IS NOT DISTINCT FROM pdp.pseudo_email(r.email) AS email
  FROM "LMS".mdl_user u JOIN raw_users r USING (id) ORDER BY 1;
DROP TABLE raw_users;

-- Erasure never writes a keyed rule's pseudonym into a row it keeps (issue 17,
-- point 2): the cut row's pseudo_ip column, nullable, is emptied.
CREATE TABLE "LMS".sessions (id int PRIMARY KEY, learner bigint, lastip varchar(45));
INSERT INTO "LMS".sessions VALUES (1, 42, '10.1.2.3'), (2, 43, '10.1.2.4');
SELECT pdp.register_table('"LMS".sessions', 'learner', 'anonymise');
SELECT pdp.set_column_rule('"LMS".sessions', 'lastip', 'pseudo_ip', 'ip');
SELECT pdp.erase_subject(42, 'asked')->'tables' AS erased;
SELECT id, learner, lastip IS NULL AS ip_emptied, lastip IS NOT DISTINCT FROM pdp.pseudo_ip_text('10.1.2.3') AS ip_pseudonymised
  FROM "LMS".sessions ORDER BY id;

-- EAV: one value column, told apart by fieldid; each attribute its own rule in masked views.
CREATE TABLE "LMS".info_data (id bigint PRIMARY KEY, userid bigint NOT NULL, fieldid bigint NOT NULL, data text NOT NULL DEFAULT '');
INSERT INTO "LMS".info_data VALUES (1, 2, 1, '900101300017'), (2, 2, 2, '+7 701 234 56 78'), (3, 2, 4, 'ул. Абая 1'),
                                   (4, 3, 1, ''), (5, 3, 2, 'not a phone'), (6, 3, 9, 'free');
SELECT pdp.register_eav('"LMS".info_data', 'data', 'fieldid', '1', 'iin', 'pseudo_iin');
SELECT pdp.register_eav('"LMS".info_data', 'data', 'fieldid', '2', 'phone', 'pseudo_phone');
SELECT pdp.register_eav('"LMS".info_data', 'data', 'fieldid', '4', 'address', 'mask');
SELECT pdp.register_eav('"LMS".info_data', 'data', 'fieldid', '4', 'address', 'mask');  -- again: replaces
SELECT pdp.register_eav('"LMS".info_data', 'data', 'userid', '5', 'phone');              -- another attribute column
SELECT pdp.register_eav('"LMS".info_data', 'data', 'fieldid', '5', 'health');            -- special category
SELECT pdp.register_eav('"LMS".info_data', 'data', 'fieldid', '6', 'iin', 'scramble');
SELECT pdp.register_eav('"LMS".info_data', 'data', 'fieldid', '6', 'iin', 'shred');   -- shred encrypts on write, EAV rules apply on read
SELECT pdp.register_eav('"LMS".info_data', 'data', 'data', '6', 'iin');
SELECT pdp.register_eav('"LMS".info_data', 'id', 'fieldid', '6', 'iin', 'pseudo_iin');   -- bigint value column
SELECT table_name, value_column, attribute_column, attribute_value, category, rule FROM pdp.eav_attributes ORDER BY attribute_value;
SELECT pdp.create_masked_view('"LMS".info_data');
SELECT m.id, m.fieldid, CASE WHEN m.data = d.data THEN 'unchanged' WHEN m.data = '****' THEN 'failed, masked' ELSE 'ruled' END AS shown,
       CASE m.fieldid WHEN 1 THEN pdp.iin_is_valid(m.data) OR m.data = '' END AS iin_ok
  FROM "LMS".info_data_masked m JOIN "LMS".info_data d USING (id) ORDER BY m.id;
SELECT pdp.drop_eav('"LMS".info_data', 'data', '4'), pdp.drop_eav('"LMS".info_data', 'data', '4') AS again;
SELECT data = 'ул. Абая 1' AS shown_after_drop FROM "LMS".info_data_masked WHERE id = 3;

DROP SCHEMA "LMS" CASCADE;
DROP TABLE raw_copy, no_pk;
-- The counters are bounded: 512 (table, column, rule) entries for the server,
-- then one overflow row without a table.
SELECT count(pdp._rule_failed((4000000000::bigint + g)::oid, 1::smallint, 'mask')) AS failures_counted FROM generate_series(1, 600) g;
SELECT count(*) FILTER (WHERE table_name IS NOT NULL) <= 512 AS bounded,
       sum(failures) FILTER (WHERE table_name IS NULL) >= 600 - 512 AS overflow_counted
  FROM pdp.rule_failures;
SELECT count(*) AS rules_left FROM pdp.column_rule;
SELECT count(*) AS credentials_left FROM pdp.credential_column;
SELECT count(*) AS eav_left FROM pdp.eav_attribute;
DROP ROLE regress_staff, regress_other;
