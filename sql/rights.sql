-- A learner's whole life on a schema shaped like a real LMS: registered,
-- disclosed, rectified, exported, held, released, erased, exported again.
\set SHOW_CONTEXT never
\set VERBOSITY terse

CREATE SCHEMA life;
CREATE TABLE life.users (id bigint PRIMARY KEY, full_name text, email text, phone text);
CREATE TABLE life.enrolments (id serial PRIMARY KEY, user_id bigint REFERENCES life.users(id), course text);
CREATE TABLE life.grades (id serial PRIMARY KEY, enrolment_id int REFERENCES life.enrolments(id),  -- a child with a FK
                          user_id bigint, grade int, comment text);
CREATE TABLE life.forum_posts (id serial PRIMARY KEY, author_id bigint, body text);
CREATE TABLE life.activity (id serial PRIMARY KEY, actor_id bigint, affected_id bigint, action text);
INSERT INTO life.users VALUES (1, 'Айгерім Сәрсенова', 'aigerim@mail.kz', '+7 701 234 56 78'),
                              (2, 'Нұрлан Ахметов', 'nurlan@mail.kz', '+7 702 111 22 33');
INSERT INTO life.enrolments (user_id, course) VALUES (1, 'Python'), (1, 'SQL'), (2, 'Python');
INSERT INTO life.grades (enrolment_id, user_id, grade, comment) VALUES (1, 1, 90, 'good'), (2, 1, 85, 'fine'), (3, 2, 70, 'ok');
INSERT INTO life.forum_posts (author_id, body) VALUES (1, 'question about SQL'), (2, 'answer');
INSERT INTO life.activity (actor_id, affected_id, action) VALUES (1, NULL, 'login'), (2, 1, 'graded'), (2, NULL, 'login');

-- 1. Registered.
SELECT pdp.register_table('life.users', 'id');
SELECT pdp.register_table('life.enrolments', 'user_id');
SELECT pdp.register_table('life.grades', 'user_id', 'anonymise');
SELECT pdp.register_table('life.forum_posts', 'author_id', 'anonymise');
SELECT pdp.register_table('life.activity', 'actor_id');
SELECT pdp.register_table('life.activity', 'affected_id');
SELECT pdp.set_column_rule('life.users', 'email', 'pseudo_email', 'email');
SELECT pdp.set_column_rule('life.users', 'phone', 'mask_phone', 'phone');
SELECT pdp.set_column_rule('life.grades', 'comment', 'mask', 'assessment');
SELECT pdp.set_column_rule('life.forum_posts', 'body', 'null');
SELECT pdp.define_purpose('life_courses', 'contract');
SELECT pdp.define_purpose('life_analytics', 'consent');
SELECT pdp.grant_consent(1, 'life_analytics', evidence => '{"form": "signup"}') > 0 AS consented;

-- 2. Disclosed to two recipients, one abroad.
SELECT pdp.define_recipient('Kazpost SMS', 'KZ', NULL, 'sends SMS reminders');
SELECT pdp.define_recipient('Google Analytics', 'us', 'SCC', 'site analytics');
SELECT pdp.define_recipient('Meta Pixel', 'IE');                                  -- abroad without safeguards
SELECT pdp.define_recipient('Somewhere', 'XX', 'SCC');                            -- unknown country
SELECT pdp.define_recipient('Vague', 'DE', 'we promise');                         -- safeguards not named
SELECT name, country, cross_border, safeguards, localisation FROM pdp.recipients ORDER BY name;
SELECT pdp.record_disclosure(1, 'Kazpost SMS', 'life_courses', '{phone}') > 0 AS disclosed;
SELECT pdp.record_disclosure(1, 'Google Analytics', 'life_analytics', '{email,activity}') > 0 AS disclosed;
SELECT pdp.record_disclosure(1, 'Nobody Ltd', 'life_courses', '{phone}');         -- unknown recipient
SELECT pdp.record_disclosure(1, 'Kazpost SMS', 'no purpose', '{phone}');
SELECT pdp.record_disclosure(1, 'Kazpost SMS', 'life_courses', '{}');

-- 3. Rectified: two notices, one per recipient; unclassified changes raise none.
UPDATE life.users SET email = 'aigerim.s@mail.kz' WHERE id = 1;
UPDATE life.users SET full_name = 'Айгерім Сәрсенқызы' WHERE id = 1;      -- not classified
UPDATE life.users SET phone = '+7 702 999 88 77' WHERE id = 2;           -- disclosed to no one
SELECT subject, recipient, country, table_name, columns FROM pdp.pending_notices ORDER BY recipient;
SELECT pdp.acknowledge_notice(min(id)) FROM pdp.pending_notices;
SELECT count(*) AS still_pending FROM pdp.pending_notices;
SELECT pdp.acknowledge_notice(-1);

-- 4. Exported: every row of the learner in every registered table, and the rest.
SELECT pdp.export_subject(1) AS doc \gset
SELECT jsonb_object_keys(:'doc'::jsonb) AS part ORDER BY 1;
SELECT key AS table_name, jsonb_array_length(value) AS rows
  FROM jsonb_each((:'doc'::jsonb)->'data') ORDER BY 1;
SELECT (:'doc'::jsonb)->'data'->'life.users'->0->>'email' AS email_exported,
       jsonb_array_length((:'doc'::jsonb)->'disclosures') AS disclosures,
       (:'doc'::jsonb)->'active_consents' AS active_consents,
       (:'doc'::jsonb)->>'format' AS format;
-- An unknown subject: an empty export, not an error.
SELECT pdp.export_subject(999)->'data' AS unknown_data, pdp.export_subject(' 0999')->'data' AS padded_subject;
-- A subject that fits no registered subject column (all are integers here) is refused.
SELECT pdp.export_subject('no-such-learner');
SELECT pdp.export_subject(NULL::text);

-- 5. Held: erasure is refused and nothing changes.
SELECT pdp.place_hold(1, 'unpaid tuition claim') AS hold \gset
SELECT pdp.erase_subject(1, 'learner asked');
SELECT count(*) AS users_left FROM life.users WHERE id = 1;

-- 6. Released.
SELECT pdp.release_hold(:hold);

-- 7. Erased: deleted or anonymised per table, children first, consents withdrawn.
SELECT pdp.erase_subject(1, '') ;
SELECT pdp.erase_subject(1, 'learner asked') AS receipt \gset
SELECT jsonb_pretty(:'receipt'::jsonb - 'erased_at' - 'subject_pseudonym') AS receipt;
SELECT (:'receipt'::jsonb)->>'subject_pseudonym' = (SELECT subject_pseudonym FROM pdp.audit_log WHERE action = 'erase_subject'
                                                      ORDER BY id DESC LIMIT 1) AS receipt_names_pseudonym,
       :'receipt'::text NOT LIKE '%aigerim%' AND :'receipt'::text NOT LIKE '%Айгерім%' AS no_personal_values;
SELECT * FROM life.users ORDER BY id;
SELECT user_id, grade, comment FROM life.grades ORDER BY id;
SELECT author_id, body FROM life.forum_posts ORDER BY id;
SELECT actor_id, affected_id, action FROM life.activity ORDER BY id;
SELECT pdp.has_consent(1, 'life_analytics') AS consent_left;

-- 8. Exported again: nothing but the receipt.
SELECT jsonb_object_keys(pdp.export_subject(1)) AS part ORDER BY 1;
SELECT pdp.export_subject(1)->'erasure_receipt' = :'receipt'::jsonb AS same_receipt;
-- Erasure of a restricted learner is allowed (restriction does not bar erasure).
SELECT pdp.restrict_subject(2, 'accuracy contested');
SELECT (pdp.erase_subject(2, 'learner asked')->'tables') IS NOT NULL AS erased_restricted;
SELECT count(*) FROM life.users;

-- Requests and deadlines.
SELECT jurisdiction, kind, period, working_days FROM pdp.request_deadline WHERE kind = 'access' ORDER BY 1;
SELECT pdp.open_request(1, 'access', 'EU', '2026-01-10 12:00+00') AS r1 \gset
SELECT due_at = '2026-02-10 12:00+00' AS one_month FROM pdp.subject_request WHERE id = :r1;
-- Received on a Friday: three working days later is Wednesday.
SELECT pdp.open_request(1, 'erasure', 'KZ', '2026-01-09 10:00+06') AS r2 \gset
SELECT to_char(due_at AT TIME ZONE 'Asia/Almaty', 'Dy YYYY-MM-DD') AS due_in_3_working_days FROM pdp.subject_request WHERE id = :r2;
SELECT pdp.open_request(1, 'complaint');                        -- unknown kind
SELECT pdp.open_request(1, 'access', 'XX');                     -- no deadline for that jurisdiction
SELECT pdp.open_request(1, 'access', 'KZ', now() + interval '1 day');
SELECT id = :r1 AS overdue_one FROM pdp.overdue_requests WHERE id = :r1;
SELECT pdp.complete_request(:r1, 'export sent');
SELECT pdp.complete_request(:r1, 'again');
SELECT count(*) AS overdue_left FROM pdp.overdue_requests WHERE id = :r1;

-- A large subject: 100,000 rows export in one document.
INSERT INTO life.users VALUES (3, 'Big', 'big@mail.kz', NULL);
INSERT INTO life.activity (actor_id, action) SELECT 3, 'view ' || g FROM generate_series(1, 100000) g;
SELECT jsonb_array_length(pdp.export_subject(3)->'data'->'life.activity') AS exported_rows;

-- Every step was audited, with pseudonyms only.
SELECT action, count(*) FROM pdp.audit_log
 WHERE action IN ('define_recipient', 'record_disclosure', 'acknowledge_notice', 'export_subject', 'erase_subject',
                  'open_request', 'complete_request') GROUP BY action ORDER BY 1;
DROP SCHEMA life CASCADE;
