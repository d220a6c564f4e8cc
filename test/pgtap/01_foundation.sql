-- pgTAP: the foundation's objects, their security properties and the registry's invariants.
BEGIN;
SELECT plan(22);

SELECT has_schema('pdp');
SELECT has_role('pdp_admin');
SELECT has_role('pdp_reidentifier');
SELECT has_role('pdp_auditor');
SELECT has_table('pdp', 'subject_column', 'the registry table exists');
SELECT has_view('pdp', 'registered_tables', 'the registry view exists');
SELECT has_function('pdp', 'register_table', ARRAY['regclass', 'name', 'text', 'text']);
SELECT has_function('pdp', 'unregister_table', ARRAY['regclass', 'name']);
SELECT has_function('pdp', 'key_status', '{}'::name[]);
SELECT function_lang_is('pdp', '_key_status_local', '{}'::name[], 'c', 'the key file is read by C (key_status only adds Citus workers)');
SELECT isnt_definer('pdp', 'register_table', ARRAY['regclass', 'name', 'text', 'text'],
                    'register_table runs as the caller, so table ownership is the caller''s');
SELECT is_definer('pdp', '_on_sql_drop', '{}'::name[], 'the drop event trigger runs as the extension owner');
SELECT function_privs_are('pdp', 'register_table', ARRAY['regclass', 'name', 'text', 'text'], 'public', '{}'::text[],
                          'PUBLIC cannot register tables');
SELECT function_privs_are('pdp', 'register_table', ARRAY['regclass', 'name', 'text', 'text'], 'pdp_admin', ARRAY['EXECUTE'],
                          'pdp_admin can register tables');
SELECT table_privs_are('pdp', 'subject_column', 'public', '{}'::text[], 'PUBLIC has no rights on the registry');
SELECT table_privs_are('pdp', 'registered_tables', 'pdp_auditor', ARRAY['SELECT'], 'the auditor reads the registry view');

-- Registry invariants, exercised in this transaction.
CREATE TABLE tap_users (id uuid PRIMARY KEY, "E-mail" text);
SELECT lives_ok($$SELECT pdp.register_table('tap_users', 'id')$$, 'a uuid subject registers');
SELECT throws_ok($$SELECT pdp.register_table('tap_users', 'id')$$, '42710', NULL, 'registering twice is refused');
SELECT throws_ok($$INSERT INTO pdp.subject_column (tbl, col, attnum, on_erase) VALUES ('tap_users', 'E-mail', 99, 'set_value')$$,
                 '22004', NULL, 'a direct insert is validated too: set_value needs an erase_value');
SELECT results_eq($$SELECT attnum FROM pdp.subject_column WHERE tbl = 'tap_users'::regclass$$,
                  ARRAY[1::smallint], 'attnum is resolved from the name, whatever the writer says');
ALTER TABLE tap_users RENAME COLUMN id TO learner_uuid;
SELECT results_eq($$SELECT subject_column FROM pdp.registered_tables WHERE table_name = 'tap_users'::regclass$$,
                  ARRAY['learner_uuid'::name], 'a column rename is followed');
DROP TABLE tap_users;
SELECT is_empty($$SELECT 1 FROM pdp.subject_column$$, 'dropping the table removes its registration');

SELECT * FROM finish();
ROLLBACK;
