-- Anonymisation that is anonymisation (issue 17, point 2): erasure and purge
-- keep rows with unlinkable transforms (NULL, a constant, a random value, a
-- generalisation), never a column rule's keyed pseudonym; k-anonymity of a
-- small known table; erasure's sweep for leftovers (point 4).
\set SHOW_CONTEXT never
\set VERBOSITY terse

CREATE SCHEMA an;
CREATE TABLE an.learner (login text PRIMARY KEY, email text, city text);
-- A grade is kept when its learner is erased (the link is cut): its ruled
-- and declared columns are anonymised.
CREATE TABLE an.grade (id serial PRIMARY KEY, learner text, email text, phone text NOT NULL, born date,
                       score integer, note varchar(8), device uuid, ip inet NOT NULL);
INSERT INTO an.learner VALUES ('aigerim-x7q', 'aigerim@example.kz', 'Almaty'), ('bolat-k2m', 'bolat@example.kz', 'Astana');
INSERT INTO an.grade (learner, email, phone, born, score, note, device, ip)
SELECT l, l || '@example.kz', '+7 701 234 56 7' || g, date '2001-07-19' + g, 37 + g, 'n' || g, gen_random_uuid(), '203.0.113.7'
  FROM unnest(ARRAY['aigerim-x7q', 'bolat-k2m']) l, generate_series(1, 2) g;
SELECT pdp.register_table('an.learner', 'login');
SELECT pdp.register_table('an.grade', 'learner', 'set_null');
SELECT pdp.set_column_rule('an.grade', 'email', 'pseudo_email', 'email');
SELECT pdp.set_column_rule('an.grade', 'phone', 'pseudo_phone', 'phone');
SELECT pdp.set_column_rule('an.grade', 'born', 'generalize_year');
SELECT pdp.set_column_rule('an.grade', 'ip', 'pseudo_ip');
SELECT pdp.set_anonymisation('an.grade', 'score', 'generalise', granularity => '10');
SELECT pdp.set_anonymisation('an.grade', 'note', 'set_value', erase_value => '(gone)');
SELECT pdp.set_anonymisation('an.grade', 'device', 'randomise');
SELECT col, action, erase_value, granularity FROM pdp.anonymise_column ORDER BY attnum;

-- Bad input: an SQLSTATE each, no value in the message.
SELECT pdp.set_anonymisation('an.grade', 'score', 'pseudonym');
SELECT pdp.set_anonymisation('an.grade', 'learner', 'set_null');
SELECT pdp.set_anonymisation('an.grade', 'nope', 'set_null');
SELECT pdp.set_anonymisation('an.grade', 'phone', 'set_null');
SELECT pdp.set_anonymisation('an.grade', 'score', 'set_value');
SELECT pdp.set_anonymisation('an.grade', 'score', 'set_value', erase_value => 'aigerim@example.kz');
SELECT pdp.set_anonymisation('an.grade', 'note', 'set_value', erase_value => 'far too long');
SELECT pdp.set_anonymisation('an.grade', 'score', 'randomise');
SELECT pdp.set_anonymisation('an.grade', 'email', 'generalise', granularity => 'year');
SELECT pdp.set_anonymisation('an.grade', 'born', 'generalise', granularity => 'week');
SELECT pdp.set_anonymisation('an.grade', 'score', 'generalise', granularity => '1');
SELECT pdp.set_anonymisation('an.grade', 'score', 'generalise', granularity => '-5');
SELECT pdp.set_anonymisation('an.grade', 'score', 'generalise');
SELECT pdp.set_anonymisation('an.grade', 'score', 'set_null', granularity => '10');
SELECT pdp.set_anonymisation('an.grade', 'score', 'set_null', erase_value => '0');
SELECT pdp.set_anonymisation('an.grade', 'score', NULL);
SELECT pdp.set_anonymisation('an.grade', NULL, 'set_null');
SELECT pdp.set_anonymisation(NULL, 'score', 'set_null');
SELECT pdp.set_anonymisation('pdp.subject_column', 'col', 'set_null');
CREATE ROLE regress_anon_other;
GRANT pdp_admin TO regress_anon_other;
GRANT USAGE ON SCHEMA an TO regress_anon_other;
SET ROLE regress_anon_other;
SELECT pdp.set_anonymisation('an.grade', 'score', 'set_null');
SELECT pdp.k_anonymity('an.grade', '{score}') IS NOT NULL AS registered_table_measurable;
RESET ROLE;

-- What the keyed rules would have written, computed before the erasure.
CREATE TEMP TABLE would AS
SELECT id, pdp.pseudo_email(email) AS email, pdp.pseudo_phone(phone) AS phone, pdp.pseudo_ip(ip) AS ip
  FROM an.grade WHERE learner = 'aigerim-x7q';
SELECT r->'tables' AS tables FROM pdp.erase_subject('aigerim-x7q', 'her request') r;
-- Her grades stay, cut from her, with nothing the key could re-link.
SELECT g.learner, g.email, g.born, g.score, g.note, g.phone ~ '^[0-9a-f]{32}$' AS phone_random,
       g.device IS NOT NULL AS device_kept, g.ip <> inet '203.0.113.7' AS ip_changed
  FROM an.grade g JOIN would w USING (id) ORDER BY id;
SELECT count(*) AS keyed_pseudonyms_left FROM an.grade g JOIN would w USING (id)
 WHERE g.email IS NOT DISTINCT FROM w.email OR g.phone = w.phone OR g.ip = w.ip;
SELECT count(DISTINCT g.phone) AS distinct_random_phones FROM an.grade g JOIN would w USING (id);
-- Bolat's grades are untouched.
SELECT learner, email, born, score, note FROM an.grade WHERE learner = 'bolat-k2m' ORDER BY id;

-- Purge's anonymise action uses the same transforms.
CREATE TABLE an.visit (id serial PRIMARY KEY, learner text, at timestamptz NOT NULL, email text, age integer);
INSERT INTO an.visit (learner, at, email, age) VALUES ('v1', now() - interval '3 years', 'old@example.kz', 44), ('v2', now(), 'new@example.kz', 23);
SELECT pdp.register_table('an.visit', 'learner', 'set_null');
SELECT pdp.set_column_rule('an.visit', 'email', 'pseudo_email', 'email');
SELECT pdp.set_anonymisation('an.visit', 'age', 'generalise', granularity => '10');
SELECT pdp.set_retention('an.visit', '1 year', 'at', 'anonymise');
SET pdp.purge_max_share = 1;
SELECT table_name, action, rows FROM pdp.purge_expired();
RESET pdp.purge_max_share;
SELECT email, age FROM an.visit ORDER BY id;

-- k-anonymity of a small known table: groups (1990, Almaty) x3,
-- (1990, Astana) x2, (1991, Almaty) x1.
CREATE TABLE an.cohort (id serial PRIMARY KEY, learner text, birth_year int, city text, course text);
INSERT INTO an.cohort (learner, birth_year, city, course) VALUES
    ('a1', 1990, 'Almaty', 'x'), ('a2', 1990, 'Almaty', 'y'), ('a3', 1990, 'Almaty', 'x'),
    ('a4', 1990, 'Astana', 'x'), ('a5', 1990, 'Astana', 'y'), ('a6', 1991, 'Almaty', 'x');
SELECT pdp.register_table('an.cohort', 'learner');
SELECT pdp.k_anonymity('an.cohort', '{birth_year}') AS k_year,
       pdp.k_anonymity('an.cohort', '{birth_year,city}') AS k_year_city,
       pdp.k_anonymity('an.cohort', '{course}') AS k_course,
       pdp.k_anonymity('an.cohort', '{birth_year,city,course}') AS k_all;
CREATE TABLE an.empty (id int, city text);
SELECT pdp.k_anonymity('an.empty', '{city}') AS k_empty;
SELECT pdp.k_anonymity('an.cohort', '{nope}');
SELECT pdp.k_anonymity('an.cohort', '{"city; DROP TABLE an.cohort"}');
SELECT pdp.k_anonymity('an.cohort', '{}');
SELECT pdp.k_anonymity('an.cohort', '{city,city}');
-- A json quasi-identifier is grouped by its text (json has no equality).
CREATE TABLE an.profile (id int PRIMARY KEY, prefs json);
INSERT INTO an.profile VALUES (1, '{"lang": "kk"}'), (2, '{"lang": "kk"}'), (3, '{"lang": "ru"}');
SELECT pdp.k_anonymity('an.profile', '{prefs}') AS k_json;
SELECT pdp.k_anonymity('an.cohort', NULL);
SELECT pdp.k_anonymity('pdp.subject_column', '{col}');
-- The report flags tables whose declared quasi-identifiers give k < pdp.min_k.
SELECT pdp.declare_quasi_identifiers('an.cohort', '{birth_year,city}');
SELECT pdp.declare_quasi_identifiers('an.cohort', '{learner}');
SELECT pdp.declare_quasi_identifiers('an.cohort', '{nope}');
SELECT pdp.declare_quasi_identifiers('an.cohort', '{city,city}');
SELECT * FROM pdp.quasi_identifiers;
SHOW pdp.min_k;
SELECT e FROM jsonb_array_elements(pdp.report('json')::jsonb->'k_anonymity') e;
SET pdp.min_k = 1;
SELECT e->'below_min_k' FROM jsonb_array_elements(pdp.report('json')::jsonb->'k_anonymity') e;
RESET pdp.min_k;
SELECT pdp.report('markdown') LIKE '%Below k-anonymity 5%an.cohort (k = 1%' AS markdown_flags;
SELECT pdp.report('html') LIKE '%Below k-anonymity 5: an.cohort (k = 1%' AS html_flags;
SET pdp.min_k = 0;
-- Renames are followed; drops forget.
ALTER TABLE an.cohort RENAME COLUMN city TO town;
SELECT * FROM pdp.quasi_identifiers;
ALTER TABLE an.grade RENAME COLUMN score TO points;
SELECT col, action FROM pdp.anonymise_column WHERE col = 'points';
ALTER TABLE an.grade DROP COLUMN points;
SELECT count(*) AS declarations FROM pdp.anonymise_column WHERE tbl = 'an.grade'::regclass;
SELECT pdp.drop_anonymisation('an.grade', 'note'), pdp.drop_anonymisation('an.grade', 'note');

-- The sweep: her identifiers, gathered before the erasure, still sit in an
-- unregistered free-text column and a JSON log; the receipt says where
-- (table, column, rows), never what.
CREATE TABLE an.forum (id serial PRIMARY KEY, body text);
CREATE TABLE an.log (id serial PRIMARY KEY, other jsonb);
INSERT INTO an.forum (body) VALUES ('write to BOLAT@example.kz'), ('nothing here');
INSERT INTO an.log (other) VALUES ('{"to": "bolat@example.kz"}'), ('{"to": "someone@example.kz"}');
SELECT pdp.set_column_rule('an.learner', 'email', 'mask_email', 'email');
SELECT r->'sweep' AS sweep, r::text LIKE '%bolat@%' AS value_in_receipt
  FROM pdp.erase_subject('bolat-k2m', 'his request', sweep => true) r;
SELECT e.receipt ? 'sweep' AS stored FROM pdp.erasure e ORDER BY erased_at DESC LIMIT 1;
SELECT pdp.erase_subject('nobody', 'r', sweep => NULL);
-- The search's LIKE wildcards in an identifier are literal: a_b@x.kz does not find axb@x.kz.
CREATE TABLE an.wild (body text);
INSERT INTO an.wild VALUES ('write to axb@x.kz'), ('write to A_B@x.kz'), ('100% sure');
SELECT table_name, column_name, rows FROM pdp._find_traces(ARRAY['a_b@x.kz'], '{}', '{}', '{}') WHERE table_name = 'an.wild'::regclass;
SELECT count(*) AS found FROM pdp._find_traces(ARRAY['%'], '{}', '{}', '{}') WHERE table_name = 'an.wild'::regclass;
-- Without sweep the receipt has none (existing calls unchanged).
SELECT pdp.erase_subject('nobody', 'r') ? 'sweep' AS swept;

-- Clean up.
SELECT pdp.drop_retention('an.visit');
SELECT pdp.unregister_table('an.learner'), pdp.unregister_table('an.grade'), pdp.unregister_table('an.cohort'), pdp.unregister_table('an.visit');
DROP SCHEMA an CASCADE;
DROP OWNED BY regress_anon_other;
DROP ROLE regress_anon_other;
