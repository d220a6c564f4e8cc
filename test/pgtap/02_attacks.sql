-- pgTAP: attacks on pdp_ext itself, as an unprivileged application role
-- (tap_app) and as a pdp_admin member (tap_admin).  Each test names the
-- attack it makes; every one must fail.  All of it is rolled back.
BEGIN;
SELECT plan(46);
-- (pgTAP grants its temporary state tables to PUBLIC, so tests run under SET ROLE.)

CREATE ROLE tap_app;
CREATE ROLE tap_admin IN ROLE pdp_admin;
CREATE SCHEMA tap AUTHORIZATION tap_admin;
GRANT USAGE ON SCHEMA tap TO tap_app;

-- Attacker-owned helpers, made as the attackers themselves.
SET ROLE tap_admin;
CREATE TABLE tap.learners (id int PRIMARY KEY, email text, secret text);
INSERT INTO tap.learners VALUES (1, 'one@example.kz', 's1'), (2, 'two@example.kz', 's2'), (3, 'three@example.kz', 's3');
CREATE TABLE tap.victim (x int);
RESET ROLE;
SELECT pdp.register_table('tap.learners', 'id');
SELECT pdp.define_purpose('tap_teaching', 'contract');
SELECT pdp.define_purpose('tap_marketing', 'consent');
SELECT pdp.allow_purpose('tap_app', 'tap_teaching');
SELECT pdp.grant_consent(1, 'tap_marketing');
SELECT pdp.protect_table('tap.learners', force => true);
GRANT SELECT ON tap.learners TO tap_app;
-- The key file's secrets, read as superuser, to search for them everywhere else.
CREATE TEMP TABLE tap_key_hex AS
SELECT m[1] AS hex FROM regexp_matches(pg_read_file(current_setting('pdp.key_file')), '([0-9A-Fa-f]{32,})', 'g') m;
GRANT SELECT ON tap_key_hex TO PUBLIC;
SELECT ok((SELECT count(*) FROM tap_key_hex) > 0, 'set-up: the key file''s secrets are known to the test');

-- 1. Reading keys or key material.
SET ROLE tap_app;
SELECT throws_ok($$SELECT current_setting('pdp.key_file')$$, '42501', NULL,
                 'attack: the application role reads the key file''s path from settings');
SELECT is_empty($$SELECT 1 FROM pg_settings WHERE name = 'pdp.key_file'$$,
                'attack: the application role finds the key setting in pg_settings');
SELECT throws_ok($$SELECT * FROM pdp.key_status()$$, '42501', NULL,
                 'attack: the application role asks for key versions');
SELECT throws_ok($$SELECT pg_read_file(current_setting('pdp.key_file', true))$$, '42501', NULL,
                 'attack: the application role reads the key file from disk');
RESET ROLE;
SELECT is_empty($$
    SELECT 1 FROM tap_key_hex k, (
        SELECT setting AS t FROM pg_settings
        UNION ALL SELECT coalesce(query, '') FROM pg_stat_activity
        UNION ALL SELECT prosrc FROM pg_proc WHERE pronamespace = 'pdp'::regnamespace
        UNION ALL SELECT (SELECT string_agg(to_jsonb(a)::text, '') FROM pdp.audit_log a)
        UNION ALL SELECT (SELECT string_agg(to_jsonb(s)::text, '') FROM pdp.key_status() s)) x
     WHERE position(lower(k.hex) IN lower(coalesce(x.t, ''))) > 0$$,
    'attack: key bytes found in settings, pg_stat_activity, function sources, the audit log or key_status');
SET ROLE tap_admin;
SELECT throws_ok($$SELECT pdp.decrypt('not a token')$$, '42501', NULL,
                 'attack: a pdp_admin member reverses a token without pdp_reidentifier');
SET ROLE tap_app;
SELECT throws_ok($$SELECT pdp.fpe_iin_decrypt('870412300128')$$, '42501', NULL,
                 'attack: the application role reverses an IIN pseudonym');
SELECT throws_ok($$SELECT pdp.decrypt(pdp.encrypt('one@example.kz'))$$, '42501', NULL,
                 'attack: the application role encrypts, then decrypts its own token');

-- 2. Declaring a purpose one may not.
SELECT throws_ok($$SET pdp.purpose = 'tap_marketing'$$, '42501', NULL,
                 'attack: the application role declares a purpose it was not allowed');
SELECT throws_ok($$SET pdp.purpose = 'tap_teaching'' OR true --'$$, '42704', NULL,
                 'attack: a purpose name crafted as SQL');
RESET ROLE;
CREATE ROLE tap_marketer;
SELECT pdp.allow_purpose('tap_marketer', 'tap_marketing');
SET ROLE tap_marketer;
SET pdp.purpose = 'tap_marketing';
SET ROLE tap_app;
SELECT throws_ok($$SELECT count(*) FROM tap.learners$$, '42501', NULL,
                 'attack: a purpose declared under a role allowed it, carried over by SET ROLE');
RESET ROLE;
RESET pdp.purpose;
SET ROLE tap_app;
SELECT is_empty($$SELECT 1 FROM tap.learners$$, 'attack: reading with no purpose declared (fail closed)');

-- 3. Bypassing row visibility.  Learner 1 consented to marketing; under
--    teaching (no consent needed) all three are visible; so restrict learner 3
--    and show that every path hides them alike.
RESET ROLE;
SELECT pdp.restrict_subject(3, 'learner asked');
SET ROLE tap_app;
SET pdp.purpose = 'tap_teaching';
SELECT results_eq($$SELECT id FROM tap.learners ORDER BY id$$, ARRAY[1, 2], 'the baseline: learners 1 and 2, not restricted 3');
RESET ROLE;
GRANT CREATE ON SCHEMA tap TO tap_app;
SET ROLE tap_app;
CREATE VIEW tap.app_view AS SELECT * FROM tap.learners;
SELECT results_eq($$SELECT id FROM tap.app_view ORDER BY id$$, ARRAY[1, 2], 'attack: reading through a view of one''s own');
DECLARE tap_cur SCROLL CURSOR FOR SELECT id FROM tap.learners ORDER BY id;
SELECT results_eq($$FETCH ALL FROM tap_cur$$, ARRAY[1, 2], 'attack: reading through a cursor');
CLOSE tap_cur;
-- A masked view reads with its owner's rights, and an owner (protection not
-- forced) bypasses row-level security: the view must filter rows itself.
RESET ROLE;
SET ROLE tap_admin;
CREATE TABLE tap.profiles (id int PRIMARY KEY, email text);
INSERT INTO tap.profiles VALUES (1, 'one@example.kz'), (2, 'two@example.kz'), (3, 'three@example.kz');
SELECT pdp.register_table('tap.profiles', 'id');
SELECT pdp.set_column_rule('tap.profiles', 'email', 'mask_email');
SELECT pdp.protect_table('tap.profiles');
SELECT pdp.create_masked_view('tap.profiles');
GRANT SELECT ON tap.profiles_masked TO tap_app;
SET ROLE tap_app;
SELECT results_eq($$SELECT id FROM tap.profiles_masked ORDER BY id$$, ARRAY[1, 2],
                  'attack: reading a protected table through its masked view, owned by the table''s owner');
CREATE FUNCTION tap.leak(i int, s text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS $f$
BEGIN
    INSERT INTO tap_leaked VALUES (i);
    RETURN true;
END $f$;
CREATE TEMP TABLE tap_leaked (id int);
SELECT results_eq($$SELECT id FROM tap.learners WHERE tap.leak(id, secret) ORDER BY id$$, ARRAY[1, 2], 'the leaky function''s query');
SELECT results_eq($$SELECT DISTINCT id FROM tap_leaked ORDER BY id$$, ARRAY[1, 2],
                  'attack: a cheap non-LEAKPROOF function in WHERE sees hidden rows');
SELECT throws_ok($$CREATE FUNCTION tap.lp(int) RETURNS boolean LANGUAGE sql LEAKPROOF AS 'SELECT true'$$, '42501', NULL,
                 'attack: marking one''s own function LEAKPROOF to run it before the policy');
SELECT lives_ok($$SELECT count(*) FROM tap.learners WHERE 1 / (CASE WHEN id = 3 THEN 0 ELSE 1 END) = 1$$,
                'attack: an error oracle (division by zero only on the hidden row) raises nothing');
RESET ROLE;
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'pdp'::regnamespace AND p.proleakproof$$,
                'no pdp_ext function claims to be LEAKPROOF');
GRANT pg_write_server_files TO tap_app;
SET ROLE tap_app;
COPY tap.learners TO '/tmp/pdp_attack_copy.csv';
RESET ROLE;
SELECT is(array_length(string_to_array(rtrim(pg_read_file('/tmp/pdp_attack_copy.csv'), E'\n'), E'\n'), 1), 2,
          'attack: COPY of the table to a file');
SET ROLE tap_app;
SELECT throws_ok($$ALTER TABLE tap.learners DISABLE ROW LEVEL SECURITY$$, '42501', NULL,
                 'attack: the application role turns row-level security off');
SELECT throws_ok($$DROP POLICY pdp_select ON tap.learners$$, '42501', NULL,
                 'attack: the application role drops the policy');

-- 4. SQL injection through table, column, purpose and rule names.
RESET ROLE;
-- Keyed rules are declared by pdp_pseudonymiser members.
GRANT pdp_pseudonymiser TO tap_admin;
SET ROLE tap_admin;
CREATE TABLE tap."x; DROP TABLE tap.victim; --" ("a'b$$c; DROP TABLE tap.victim" int, "Mixed Case" text);
SELECT lives_ok($q$SELECT pdp.register_table('tap."x; DROP TABLE tap.victim; --"', 'a''b$$c; DROP TABLE tap.victim')$q$,
                'attack: registering a table and column named as SQL');
SELECT lives_ok($$SELECT pdp.set_column_rule('tap."x; DROP TABLE tap.victim; --"', 'Mixed Case', 'pseudonym')$$,
                'attack: a rule on a hostile table name');
SELECT throws_ok($$SELECT pdp.set_column_rule('tap."x; DROP TABLE tap.victim; --"', 'Mixed Case', 'pseudonym''); DROP TABLE tap.victim; --')$$,
                 '22023', NULL, 'attack: a rule name crafted as SQL');
SELECT lives_ok($$SELECT pdp.create_masked_view('tap."x; DROP TABLE tap.victim; --"', 'v"; DROP TABLE tap.victim; --')$$,
                'attack: a masked view of the hostile table, with a hostile view name');
SELECT lives_ok($$SELECT pdp.pseudonymise_on_write('tap."x; DROP TABLE tap.victim; --"')$$,
                'attack: the on-write trigger on the hostile table');
SELECT lives_ok($q$INSERT INTO tap."x; DROP TABLE tap.victim; --" VALUES (1, 'Ann')$q$, 'the trigger fires on the hostile table');
SELECT lives_ok($$SELECT pdp.define_purpose('p''; DROP TABLE tap.victim; --', 'contract')$$,
                'attack: a purpose named as SQL');
SELECT lives_ok($$SELECT pdp.protect_table('tap."x; DROP TABLE tap.victim; --"')$$,
                'attack: protecting the hostile table builds policies from its names');
SELECT has_table('tap', 'victim', 'no injected statement ran: the victim table stands');

-- 5. search_path hijack before SECURITY DEFINER functions.
CREATE FUNCTION tap.now() RETURNS timestamptz LANGUAGE plpgsql AS $f$BEGIN RAISE EXCEPTION 'hijacked now()'; END$f$;
CREATE FUNCTION tap.format(text, VARIADIC text[]) RETURNS text LANGUAGE plpgsql AS $f$BEGIN RAISE EXCEPTION 'hijacked format()'; END$f$;
CREATE FUNCTION tap.lower(text) RETURNS text LANGUAGE plpgsql AS $f$BEGIN RAISE EXCEPTION 'hijacked lower()'; END$f$;
CREATE FUNCTION tap.texteq_evil(text, text) RETURNS boolean LANGUAGE plpgsql AS $f$BEGIN RAISE EXCEPTION 'hijacked ='; END$f$;
CREATE OPERATOR tap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = tap.texteq_evil);
CREATE TEMP TABLE subject_column (tbl regclass, col name);
CREATE TEMP TABLE audit_log (id int);
SET search_path = tap, public;
SELECT lives_ok($$SELECT pdp.export_subject(1)$$, 'attack: search_path hijack of export_subject (SECURITY DEFINER)');
SELECT lives_ok($$SELECT pdp.verify_audit_log()$$, 'attack: search_path hijack of verify_audit_log');
SELECT lives_ok($$SELECT pdp.register_table('tap.victim', 'x')$$, 'attack: search_path hijack of register_table; temp tables shadowing pdp''s');
RESET search_path;
SELECT ok(EXISTS (SELECT 1 FROM pdp.subject_column WHERE tbl = 'tap.victim'::regclass), 'the registration went to pdp''s table, not the shadow');

-- 6. Editing or truncating the audit log.
SELECT throws_ok($$UPDATE pdp.audit_log SET action = 'nothing'$$, '42501', NULL, 'attack: pdp_admin edits the audit log');
SELECT throws_ok($$DELETE FROM pdp.audit_log$$, '42501', NULL, 'attack: pdp_admin deletes audit entries');
SELECT throws_ok($$TRUNCATE pdp.audit_log$$, '42501', NULL, 'attack: pdp_admin truncates the audit log');
RESET ROLE;
SELECT throws_ok($$UPDATE pdp.audit_log SET action = 'nothing'$$, '42501', NULL, 'attack: even a superuser cannot edit the audit log (append-only trigger)');
SELECT throws_ok($$TRUNCATE pdp.audit_log$$, '42501', NULL, 'attack: even a superuser cannot truncate the audit log');

-- 7. Erasing another subject through a crafted subject value.
SELECT pdp.lift_restriction(3);
SELECT throws_ok($$SELECT pdp.erase_subject('1 OR 1=1', 'crafted')$$, '22P02', NULL, 'attack: erase_subject(''1 OR 1=1'')');
SELECT throws_ok($$SELECT pdp.erase_subject('1''; DELETE FROM tap.learners; --', 'crafted')$$, '22P02', NULL,
                 'attack: erase_subject with a quote and a statement');
SELECT results_eq($$SELECT count(*)::int FROM tap.learners$$, ARRAY[3], 'no learner was erased by a crafted value');

SELECT * FROM finish();
ROLLBACK;
