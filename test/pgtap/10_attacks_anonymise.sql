-- pgTAP: attacks on erasure's and purge's anonymisation (issue 17, point 2)
-- and on k-anonymity.  A kept row must never hold what a keyed column rule
-- would have written (the key's holder could compute it again from a guessed
-- value and re-link the row).  Two pdp_admin members own a table each
-- (ano_a, ano_b).  All of it is rolled back.
BEGIN;
SELECT plan(26);

CREATE ROLE ano_a IN ROLE pdp_admin, pdp_pseudonymiser;
CREATE ROLE ano_b IN ROLE pdp_admin;
CREATE SCHEMA ano;
GRANT USAGE, CREATE ON SCHEMA ano TO ano_a, ano_b;

SET ROLE ano_a;
CREATE TABLE ano.users (login text PRIMARY KEY, email text);
-- Every keyed rule, on nullable and NOT NULL columns: the kept copy of a
-- learner's message after the learner is erased.
CREATE TABLE ano.msg (id serial PRIMARY KEY, author text REFERENCES ano.users ON DELETE SET NULL,
                      handle text NOT NULL, email text NOT NULL, phone text, iin text NOT NULL, name text,
                      token text, ip inet NOT NULL, fpe text, body varchar(40));
INSERT INTO ano.users VALUES ('u1', 'u1@example.kz'), ('u2', 'u2@example.kz');
INSERT INTO ano.msg (author, handle, email, phone, iin, name, token, ip, fpe, body)
SELECT u, 'handle-' || u, u || '@example.kz', '+7 701 234 56 78', '900101300017', 'Aigerim Sarsenova',
       'tok-' || u, '203.0.113.9', '900101300017', 'hello'
  FROM unnest(ARRAY['u1', 'u1', 'u2']) u;
SELECT pdp.register_table('ano.users', 'login');
SELECT pdp.register_table('ano.msg', 'author', 'set_null');
SELECT pdp.set_column_rule('ano.msg', 'handle', 'pseudonym'), pdp.set_column_rule('ano.msg', 'email', 'pseudo_email'),
       pdp.set_column_rule('ano.msg', 'phone', 'pseudo_phone'), pdp.set_column_rule('ano.msg', 'iin', 'pseudo_iin'),
       pdp.set_column_rule('ano.msg', 'name', 'pseudo_name'), pdp.set_column_rule('ano.msg', 'token', 'encrypt'),
       pdp.set_column_rule('ano.msg', 'ip', 'pseudo_ip'), pdp.set_column_rule('ano.msg', 'fpe', 'fpe_iin');
RESET ROLE;

-- What each keyed rule would write, before the erasure.
CREATE TEMP TABLE would AS
SELECT id, pdp.pseudonym(handle) AS handle, pdp.pseudo_email(email) AS email, pdp.pseudo_phone(phone) AS phone,
       pdp.pseudo_iin(iin) AS iin, pdp.pseudo_name(name) AS name, pdp.encrypt(token) AS token,
       pdp.pseudo_ip(ip) AS ip, pdp.fpe_iin(fpe) AS fpe,
       handle AS raw_handle, email AS raw_email, iin AS raw_iin
  FROM ano.msg WHERE author = 'u1';

SELECT is((SELECT sum((e->>'anonymised')::int)::int FROM pdp.erase_subject('u1', 'asked') r, jsonb_array_elements(r->'tables') e), 2,
          'erasure anonymises the two messages it keeps');
SELECT is((SELECT count(*)::int FROM ano.msg m JOIN would w USING (id)
            WHERE m.handle = w.handle OR m.email = w.email OR m.phone = w.phone OR m.iin = w.iin OR m.name = w.name
               OR m.token = w.token OR m.ip = w.ip OR m.fpe = w.fpe), 0,
          'attack: no kept row holds the keyed pseudonym, token or FPE value the column rule would give');
SELECT is((SELECT count(*)::int FROM ano.msg m JOIN would w USING (id)
            WHERE m.handle = w.raw_handle OR m.email = w.raw_email OR m.iin = w.raw_iin OR m.phone IS NOT NULL
               OR m.name IS NOT NULL OR m.token IS NOT NULL OR m.fpe IS NOT NULL OR m.author IS NOT NULL), 0,
          'attack: no kept row holds the original value either (nullable columns are emptied)');
SELECT is((SELECT count(DISTINCT m.email)::int FROM ano.msg m JOIN would w USING (id)), 2,
          'attack: the two kept rows of one learner get different random values (they cannot be linked to each other)');
SELECT ok((SELECT bool_and(m.email ~ '^[0-9a-f]{32}$' AND m.iin ~ '^[0-9a-f]{32}$') FROM ano.msg m JOIN would w USING (id)),
          'NOT NULL text columns get 32 random hex digits');
SELECT is((SELECT count(*)::int FROM ano.msg WHERE author = 'u2' AND handle = 'handle-u2' AND email = 'u2@example.kz'), 1,
          'another learner''s row is untouched');
SELECT is((SELECT receipt::text LIKE '%u1@example.kz%' FROM pdp.erasure ORDER BY erased_at DESC LIMIT 1), false,
          'the receipt holds no value');

-- The same learner data erased twice (two subjects, equal values): nothing
-- derived from the value or the subject, so the outputs differ.
SET ROLE ano_a;
INSERT INTO ano.users VALUES ('u3', 'x@example.kz'), ('u4', 'x@example.kz');
INSERT INTO ano.msg (author, handle, email, iin, ip) VALUES ('u3', 'same', 'same@example.kz', '900101300017', '203.0.113.9'),
                                                         ('u4', 'same', 'same@example.kz', '900101300017', '203.0.113.9');
RESET ROLE;
SELECT pdp.erase_subject('u3', 'asked') IS NOT NULL, pdp.erase_subject('u4', 'asked') IS NOT NULL;
SELECT is((SELECT count(DISTINCT (handle, email, iin))::int FROM ano.msg WHERE id > 3), 2,
          'attack: equal values of two erased learners do not anonymise to equal values');

-- Purge's anonymise action: same guarantee.
SET ROLE ano_a;
CREATE TABLE ano.visit (id serial PRIMARY KEY, learner text, at timestamptz NOT NULL, email text NOT NULL, who text, age int);
INSERT INTO ano.visit (learner, at, email, who, age) VALUES ('v1', now() - interval '3 years', 'old@example.kz', 'Old Name', 47);
SELECT pdp.register_table('ano.visit', 'learner', 'set_null');
SELECT pdp.set_column_rule('ano.visit', 'email', 'pseudo_email'), pdp.set_column_rule('ano.visit', 'who', 'pseudonym');
SELECT pdp.set_anonymisation('ano.visit', 'age', 'generalise', granularity => '10');
SELECT pdp.set_retention('ano.visit', '1 year', 'at', 'anonymise');
RESET ROLE;
SET pdp.purge_max_share = 1;
SELECT is((SELECT rows::int FROM pdp.purge_expired() WHERE table_name = 'ano.visit'::regclass), 1, 'purge anonymises the expired row');
SELECT is((SELECT count(*)::int FROM ano.visit WHERE email = pdp.pseudo_email('old@example.kz') OR who = pdp.pseudonym('Old Name')
              OR email = 'old@example.kz' OR who IS NOT NULL), 0,
          'attack: a purged row holds neither the keyed pseudonym nor the value');
SELECT is((SELECT age FROM ano.visit), 40, 'a declared generalisation is applied (47 to 40)');

-- A constant is written as a parameter, never spliced into the statement.
SET ROLE ano_a;
SELECT pdp.set_anonymisation('ano.msg', 'body', 'set_value', erase_value => $$x'); DROP TABLE ano.users; --$$);
INSERT INTO ano.users VALUES ('u5', NULL);
INSERT INTO ano.msg (author, handle, email, iin, ip, body) VALUES ('u5', 'h', 'e', '900101300017', '203.0.113.9', 'secret');
RESET ROLE;
SELECT pdp.erase_subject('u5', 'asked') IS NOT NULL;
SELECT is((SELECT body FROM ano.msg WHERE handle <> 'h' AND body IS NOT NULL AND id = (SELECT max(id) FROM ano.msg)),
          $$x'); DROP TABLE ano.users; --$$, 'attack: an erase_value that looks like SQL is written as a value');
SELECT ok(to_regclass('ano.users') IS NOT NULL, 'and the table it names is still there');

-- Ownership and direct writes.
SET ROLE ano_b;
SELECT throws_ok($$SELECT pdp.set_anonymisation('ano.msg', 'body', 'set_null')$$, '42501', NULL,
                 'attack: a non-owner cannot change how another''s table is anonymised');
SELECT throws_ok($$SELECT pdp.drop_anonymisation('ano.msg', 'body')$$, '42501', NULL,
                 'attack: nor drop its declaration');
SELECT throws_ok($$SELECT pdp.declare_quasi_identifiers('ano.msg', '{ip}')$$, '42501', NULL,
                 'attack: nor declare its quasi-identifiers');
SELECT throws_ok($$INSERT INTO pdp.anonymise_column (tbl, col, attnum, action) VALUES ('ano.msg', 'body', 0, 'set_null')$$, '42501', NULL,
                 'attack: no role writes pdp.anonymise_column directly');
SELECT throws_ok($$DELETE FROM pdp.quasi_identifier$$, '42501', NULL, 'attack: nor pdp.quasi_identifier');
CREATE TABLE ano.b_private (id int, secret text);
RESET ROLE;
SET ROLE ano_a;
SELECT throws_ok($$SELECT pdp.k_anonymity('ano.b_private', '{secret}')$$, '42501', NULL,
                 'attack: k-anonymity of an unregistered table is its owner''s alone');
SELECT throws_ok($$SELECT pdp.k_anonymity('ano.msg', ARRAY['ip) FROM ano.msg t GROUP BY 1; DROP TABLE ano.users; --'])$$, '42703', NULL,
                 'attack: a quasi-identifier that is SQL is an unknown column');
SELECT throws_ok($$SELECT pdp.k_anonymity('ano.msg', '{xmin}')$$, '42703', NULL, 'a system column is no quasi-identifier');
SELECT throws_ok($$SELECT pdp.set_anonymisation('ano.msg', 'author', 'randomise')$$, '22023', NULL,
                 'a subject column''s erasure is its on_erase, not an anonymisation');
RESET ROLE;
SELECT is(pdp.k_anonymity('ano.msg', '{author}'), 1::bigint, 'k-anonymity: the one message left of u2 is a group of one');
-- The table is read as its owner, never as pdp_ext's owner: a forced
-- row-level security policy of the owner's records who evaluates it (a
-- superuser would bypass it and record nothing).
SET ROLE ano_a;
CREATE TABLE ano.trap (id int, city text);
INSERT INTO ano.trap VALUES (1, 'Almaty'), (2, 'Almaty'), (3, 'Astana');
CREATE TABLE ano.seen (who name);
CREATE FUNCTION ano.seen_by() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ano.seen VALUES (current_user); RETURN true; END $$;
ALTER TABLE ano.trap ENABLE ROW LEVEL SECURITY;
ALTER TABLE ano.trap FORCE ROW LEVEL SECURITY;
CREATE POLICY trap ON ano.trap USING (ano.seen_by());
RESET ROLE;
SELECT is(pdp.k_anonymity('ano.trap', '{city}'), 1::bigint, 'k-anonymity of a table with a trap policy');
SELECT is((SELECT array_agg(DISTINCT who) FROM ano.seen), ARRAY['ano_a']::name[],
          'attack: k-anonymity reads the table as its owner (the owner''s policy ran, as the owner)');

SELECT is((SELECT count(*)::int FROM pdp.audit_log WHERE details::text LIKE '%old@example.kz%' OR details::text LIKE '%900101300017%'), 0,
          'no value reached the audit trail');

SELECT * FROM finish();
ROLLBACK;
