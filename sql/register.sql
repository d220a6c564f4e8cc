-- Record of processing, special categories, PII discovery, the report.
\set SHOW_CONTEXT never
\set VERBOSITY terse

CREATE SCHEMA disc;
-- Personal data hidden in columns with innocent names, and decoys.
CREATE TABLE disc.people (id bigint PRIMARY KEY, ref text, code text, contact text, misc text,
                          serial_no text, network text, e_mail text, note text);
INSERT INTO disc.people
SELECT g,
       b || (SELECT CASE WHEN s1 < 10 THEN s1 WHEN s2 < 10 THEN s2 END
               FROM (SELECT sum(substr(b, i, 1)::int * i) % 11 AS s1,
                            sum(substr(b, i, 1)::int * ((i + 1) % 11 + 1)) % 11 AS s2 FROM generate_series(1, 11) i) w),  -- valid IINs
       '4400 43' || lpad((g * 37)::text, 2, '0') || ' ' || lpad((g * 7919 % 10000)::text, 4, '0') || ' 000',                -- card-like, fixed below
       '+7 70' || (g % 10) || ' ' || lpad((g * 13 % 1000)::text, 3, '0') || ' ' || lpad((g % 100)::text, 2, '0') || ' 00',  -- phones
       'learner' || g || '@mail.kz',                                                                                      -- e-mails
       lpad((g::bigint * 7919 * 104729 % 1000000000000)::text, 12, '3'),                                                            -- 12 digits, mostly not IINs
       '10.0.' || (g % 250) || '.' || (g * 3 % 250),                                                                        -- IPv4
       'n/a', 'free text about the weather'
  FROM generate_series(1, 300) g,
       LATERAL (SELECT to_char(date '1990-01-01' + g * 11, 'YYMMDD') || '3' || lpad(g::text, 4, '0') AS b) x;
DELETE FROM disc.people WHERE ref IS NULL OR length(ref) <> 12;
-- Make the card column Luhn-valid: choose each last digit.
UPDATE disc.people SET code = left(code, 18) || (SELECT d FROM generate_series(0, 9) d
                                                 WHERE pdp.luhn_is_valid(left(code, 18) || d) LIMIT 1);
-- Keep only twelve-digit decoys that fail the IIN and BIN checks.
UPDATE disc.people SET serial_no = NULL WHERE pdp.iin_is_valid(serial_no) OR pdp.bin_is_valid(serial_no);
SELECT count(*) AS people, count(*) FILTER (WHERE pdp.iin_is_valid(ref)) AS valid_iins,
       count(*) FILTER (WHERE pdp.luhn_is_valid(code)) AS luhn_cards, count(serial_no) AS decoys FROM disc.people;

SELECT table_name::text, column_name, category, confidence, evidence FROM pdp.discover('disc', 100) ORDER BY column_name;
-- Registered: unclassified columns of registered tables are reported too.
SELECT pdp.register_table('disc.people', 'id');
SELECT column_name, category FROM pdp.discover('disc', 100) WHERE category = 'unclassified' ORDER BY 1;
-- Bad inputs.
SELECT * FROM pdp.discover('no_such_schema');
SELECT * FROM pdp.discover('disc', 0);

-- Real data (issue 16): '' and placeholders do not count against a validator,
-- integer and boolean columns are never e-mail or phone, names count only in
-- tables about people, free text and JSON are scanned inside, EAV columns
-- per attribute, credential candidates are named and never sampled.
CREATE TABLE disc.mdl_user (id bigint PRIMARY KEY, email text NOT NULL DEFAULT '', phone1 varchar(20) NOT NULL DEFAULT '',
                            maildisplay smallint NOT NULL DEFAULT 2, mailformat boolean, firstname text, idnumber text,
                            description text, password text, secret text);
INSERT INTO disc.mdl_user
SELECT g, CASE WHEN g % 2 = 0 THEN 'u' || g || '@mail.kz' ELSE '' END,
       CASE WHEN g % 10 = 0 THEN '+7 701 ' || lpad(g::text, 3, '0') || ' 11 22' WHEN g % 3 = 0 THEN 'n/a' ELSE '' END,
       g % 3, g % 2 = 0, 'Name' || g, 'STU' || g,
       CASE WHEN g % 4 = 0 THEN 'I am learner ' || g || ', write to learner' || g || '@mail.kz or call 8 701 234 56 ' || lpad((g % 100)::text, 2, '0')
            WHEN g % 4 = 1 THEN 'Hello' ELSE '' END,
       md5(g::text), md5('s' || g)
  FROM generate_series(1, 200) g;
CREATE TABLE disc.mdl_config (id bigint PRIMARY KEY, name text, value text);
INSERT INTO disc.mdl_config SELECT g, 'setting' || g, g::text FROM generate_series(1, 100) g;
CREATE TABLE disc.mdl_user_info_data (id bigint PRIMARY KEY, userid bigint, fieldid bigint, data text);
INSERT INTO disc.mdl_user_info_data
SELECT g, g / 4, g % 4, CASE g % 4 WHEN 1 THEN (SELECT ref FROM disc.people ORDER BY id OFFSET g / 4 LIMIT 1)
                                   WHEN 2 THEN '+7 747 ' || lpad(g::text, 3, '0') || ' 00 11'
                                   WHEN 3 THEN (1000000000 + g)::text ELSE 'ул. Абая ' || g END
  FROM generate_series(1, 400) g;
CREATE TABLE disc.log (id bigint PRIMARY KEY, userid bigint, other jsonb, timecreated bigint);
INSERT INTO disc.log SELECT g, g % 50, jsonb_build_object('n', g, 'ts', 1700000000 + g, 'text',
                                   CASE WHEN g % 5 = 0 THEN 'contact learner' || g || '@mail.kz' ELSE 'viewed' END),
                            1700000000 + g FROM generate_series(1, 500) g;
SELECT table_name::text, column_name, attribute, category, confidence, evidence FROM pdp.discover('disc', 100)
 WHERE table_name::text <> 'disc.people' ORDER BY 1, 2, 3;
-- A text attribute column is never split on: its values (here people's names) would be printed.
CREATE TABLE disc.contacts (id int PRIMARY KEY, userid bigint, name text, value text);
INSERT INTO disc.contacts SELECT g, g, CASE WHEN g % 2 = 0 THEN 'Aigerim' ELSE 'Dana' END,
                                 CASE WHEN g % 2 = 0 THEN '+7 701 234 56 ' || lpad(g::text, 2, '0') ELSE 'd' || g || '@mail.kz' END
  FROM generate_series(1, 12) g;
SELECT column_name, attribute, category FROM pdp.discover('disc', 100) WHERE table_name = 'disc.contacts'::regclass ORDER BY 1;
SELECT count(*) AS names_printed FROM pdp.discover('disc', 100) d WHERE d::text ~ '(Aigerim|Dana)';
DROP TABLE disc.contacts;
-- Registered EAV attributes are classified; the others are still sampled, one by one.
SELECT pdp.register_eav('disc.mdl_user_info_data', 'data', 'fieldid', '1', 'iin');
SELECT pdp.register_eav('disc.mdl_user_info_data', 'data', 'fieldid', '3', 'birth_date');
SELECT column_name, attribute, category FROM pdp.discover('disc', 100) WHERE table_name = 'disc.mdl_user_info_data'::regclass ORDER BY 2;
SELECT pdp.declare_credential('disc.mdl_user', 'password');
SELECT count(*) AS password_still_a_finding FROM pdp.discover('disc', 100) WHERE column_name = 'password';
-- The scanners on their own: counts, never values.
SELECT pdp._scan_text('mail a@b.kz, call +7 701 234 56 78, IIN 900101300017') AS hits,
       pdp._scan_text('{"time": 1700000000, "id": 87012345678x}') AS none,
       pdp._is_placeholder(' N/A ') AS na, pdp._is_placeholder('Aigerim') AS word;
-- Columns of registered tables without a rule are a list to review, not findings.
SELECT pdp.register_table('disc.mdl_user', 'id');
SELECT column_name FROM pdp.unclassified_columns WHERE table_name = 'disc.mdl_user'::regclass ORDER BY 1;
SELECT count(*) AS unclassified_findings FROM pdp.discover('disc', 100) WHERE category = 'unclassified';
DROP TABLE disc.mdl_user, disc.mdl_config, disc.mdl_user_info_data, disc.log;

-- Special categories are refused unless allowed.
SELECT pdp.set_column_rule('disc.people', 'note', 'null', 'health');
SELECT pdp.set_column_rule('disc.people', 'note', 'null', 'Religion');
SET pdp.allow_special_categories = on;
SELECT pdp.set_column_rule('disc.people', 'note', 'null', 'health');
RESET pdp.allow_special_categories;
SELECT pdp.drop_column_rule('disc.people', 'note');
CREATE ROLE regress_notsuper;
SET ROLE regress_notsuper;
SET pdp.allow_special_categories = on;
RESET ROLE;

-- The register.
SELECT pdp.set_column_rule('disc.people', 'misc', 'pseudo_email', 'email');
SELECT pdp.set_column_rule('disc.people', 'contact', 'mask_phone', 'phone');
SELECT pdp.define_purpose('disc_support', 'contract', 'learner support');
CREATE ROLE regress_support;
GRANT USAGE ON SCHEMA disc TO regress_support;
GRANT SELECT ON disc.people TO regress_support;
SELECT pdp.allow_purpose('regress_support', 'disc_support');
SELECT pdp.define_recipient('Mailer GmbH', 'DE', 'SCC', 'newsletters');
SELECT pdp.record_disclosure(1, 'Mailer GmbH', 'disc_support', '{email}') > 0 AS disclosed;
SELECT pdp.set_retention('disc.people', '2 years');
SELECT pdp.protect_table('disc.people');
SELECT column_name, category, rule, subject_columns, purposes, retention, recipients, protection
  FROM pdp.processing_register WHERE table_name = 'disc.people'::regclass ORDER BY 1;

-- The report in three formats.
SELECT (pdp.report('json')::jsonb) ?& ARRAY['register', 'unclassified_findings', 'consents', 'retention',
                                            'holds_in_force', 'overdue_requests', 'pending_notices', 'audit'] AS json_complete;
SELECT (pdp.report('json')::jsonb)->'audit'->>'ok' AS audit_ok;
SELECT pdp.report('markdown') ~ '^# pdp\\_ext compliance report' AS md_title,
       pdp.report('markdown') LIKE '%## Record of processing%' AS md_register,
       pdp.report('markdown') LIKE '%| disc.people | misc | email | pseudo\\_email |%' AS md_row;
SELECT pdp.report() LIKE '<!DOCTYPE html>%</html>' AS html_document,
       pdp.report() NOT LIKE '%http://%' OR pdp.report() LIKE '%xmlns="http://www.w3.org/2000/svg"%' AS no_external_assets,
       pdp.report() NOT LIKE '%@mail.kz%' AS no_values;
SELECT pdp.report('pdf');
-- Real misses first: findings in descending confidence; the count of unruled columns apart.
SELECT bool_and(a >= b) AS sorted FROM (SELECT (x->>'confidence')::numeric AS a, lead((x->>'confidence')::numeric, 1, 0) OVER () AS b
                                          FROM jsonb_array_elements((pdp.report('json')::jsonb)->'unclassified_findings') x
                                         WHERE x->>'category' <> 'credential') s;
SELECT (pdp.report('json')::jsonb) ? 'columns_without_rule' AS unruled_counted,
       pdp.report('markdown') LIKE '%Columns of registered tables without a rule%' AS md_unruled;

-- The leftover search (issue 17, point 4): a learner's identifiers from their
-- classified columns, looked for in every text, varchar and json(b) column,
-- registered or not, in normalised forms; counts only.
CREATE SCHEMA traces;
CREATE TABLE traces.learner (id bigint PRIMARY KEY, email text, phone text, full_name text, username text);
INSERT INTO traces.learner VALUES (7, 'Aigerim.S@Mail.kz', '+7 701 234 56 78', 'Aigerim Sarsenova', 'aigerim7'),
                                  (8, 'other@mail.kz', '+7 702 000 00 00', 'Dana Omarova', 'dana8');
CREATE TABLE traces.profile (id bigint PRIMARY KEY, userid bigint, fieldid int, data text);
INSERT INTO traces.profile VALUES (1, 7, 1, '900101300017'), (2, 8, 1, '850315400608');
SELECT pdp.register_table('traces.learner', 'id');
SELECT pdp.register_table('traces.profile', 'userid');
SELECT pdp.set_column_rule('traces.learner', 'email', 'mask_email', 'email');
SELECT pdp.set_column_rule('traces.learner', 'phone', 'mask_phone', 'phone');
SELECT pdp.set_column_rule('traces.learner', 'full_name', 'mask', 'name');
SELECT pdp.set_column_rule('traces.learner', 'username', 'mask', 'username');
SELECT pdp.register_eav('traces.profile', 'data', 'fieldid', '1', 'iin');
-- Unregistered places, with the values in other forms.
CREATE TABLE traces.forum (id int PRIMARY KEY, message text, meta jsonb, code varchar(40));
INSERT INTO traces.forum VALUES
    (1, 'write to AIGERIM.S@MAIL.KZ', '{}', NULL),
    (2, 'call 8 (701) 234-56-78', '{"tel": "87012345678"}', NULL),
    (3, 'my IIN is 900101 300017', '{"iin": "900101300017"}', '9001 0130 0017'),
    (4, 'nothing here', '{"user": "dana8"}', NULL),
    (5, 'signed, aigerim sarsenova', NULL, 'x');
SELECT table_name, column_name, rows, registered FROM pdp.find_subject_traces(7) ORDER BY table_name::text, column_name;
SELECT count(*) AS values_in_output FROM pdp.find_subject_traces(7) t WHERE t::text ~* '(aigerim|701|900101)';
-- Another learner's search does not find the first one's traces.
SELECT table_name, column_name, rows FROM pdp.find_subject_traces(8) WHERE table_name = 'traces.forum'::regclass ORDER BY 2;
-- With no classified identifiers there is nothing to look for, and it says so.
SELECT count(*) AS found_for_unknown FROM pdp.find_subject_traces(100000);
SELECT pdp.find_subject_traces(NULL::text);
DROP SCHEMA traces CASCADE;

SELECT pdp.unprotect_table('disc.people');
DROP SCHEMA disc CASCADE;
DROP ROLE regress_notsuper, regress_support;
