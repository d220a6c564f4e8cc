-- pgTAP: credentials, EAV classifications and masked views on real values
-- (issue 16, points 5, 6, 8), attacked as another table owner, as an
-- application role and through the counters.  "attack:" tests fail without
-- their defence; "control:" tests show what must still work.  Rolled back.
BEGIN;
SELECT plan(16);

CREATE ROLE tap_cred_owner IN ROLE pdp_admin;
CREATE ROLE tap_cred_other IN ROLE pdp_admin;
CREATE ROLE tap_cred_reader;
CREATE SCHEMA tapc AUTHORIZATION tap_cred_owner;
GRANT USAGE ON SCHEMA tapc TO tap_cred_reader, tap_cred_other;

SET ROLE tap_cred_owner;
CREATE TABLE tapc.users (id bigint PRIMARY KEY, email text NOT NULL DEFAULT '', password text, secret text);
INSERT INTO tapc.users VALUES (1, 'a@mail.kz', 'hash-one', 's1'), (2, 'not an address', 'hash-two', 's2'), (3, '', 'hash-three', '');
CREATE TABLE tapc.info (id bigint PRIMARY KEY, userid bigint, fieldid bigint, data text);
INSERT INTO tapc.info VALUES (1, 1, 1, '900101300017'), (2, 1, 2, 'home');
SELECT pdp.register_table('tapc.users', 'id');
SELECT pdp.set_column_rule('tapc.users', 'email', 'mask_email', 'email');
SELECT pdp.declare_credential('tapc.users', 'password');
SELECT pdp.create_masked_view('tapc.users');
GRANT SELECT ON tapc.users_masked TO tap_cred_reader;
RESET ROLE;

-- 1. Declarations belong to the table's owner; pdp's tables are written by no role.
SET ROLE tap_cred_other;
SELECT throws_ok($$SELECT pdp.drop_credential('tapc.users', 'password')$$, '42501', NULL,
                 'attack: another pdp_admin member drops a credential declaration of a table it does not own');
SELECT throws_ok($$SELECT pdp.declare_credential('tapc.users', 'secret')$$, '42501', NULL,
                 'attack: another pdp_admin member declares on a table it does not own');
SELECT throws_ok($$SELECT pdp.register_eav('tapc.info', 'data', 'fieldid', '1', 'iin', 'mask')$$, '42501', NULL,
                 'attack: another pdp_admin member classifies an EAV column of a table it does not own');
SELECT throws_ok($$DELETE FROM pdp.credential_column$$, '42501', NULL,
                 'attack: a pdp_admin member deletes credential declarations directly');
SELECT throws_ok($$INSERT INTO pdp.eav_attribute VALUES ('tapc.info', 'data', 4, 'fieldid', 3, '9', 'x', NULL)$$, '42501', NULL,
                 'attack: a pdp_admin member writes an EAV classification directly');
RESET ROLE;
SET ROLE tap_cred_owner;
SELECT throws_ok($$SELECT pdp.register_eav('tapc.info', 'data', 'fieldid', '1', 'iin', 'pseudo_iin')$$, '42501', NULL,
                 'attack: a keyed EAV rule declared by a role outside pdp_pseudonymiser');
SELECT lives_ok($$SELECT pdp.register_eav('tapc.info', 'data', 'fieldid', '1', 'iin', 'mask')$$,
                'control: the owner classifies an attribute with a mask');
RESET ROLE;

-- 2. The masked view: credentials never shown, failing values masked, never an error.
SET ROLE tap_cred_reader;
SELECT is((SELECT count(*) FROM tapc.users_masked WHERE password IS NOT NULL), 0::bigint,
          'attack: a masked view''s reader sees a credential');
SELECT is((SELECT email FROM tapc.users_masked WHERE id = 2), '****',
          'control: a value the rule cannot take shows as a constant');
SELECT lives_ok($$SELECT * FROM tapc.users_masked$$, 'control: the view never fails on a stored value');
SELECT throws_ok($$SELECT * FROM pdp.rule_failures$$, '42501', NULL,
                 'attack: an application role reads the failure counters');
RESET ROLE;
SELECT is((SELECT count(*) FROM pdp.rule_failures f WHERE f::text LIKE '%not an address%'), 0::bigint,
          'attack: a failing value reaches the counters');
SELECT is((SELECT count(*) FROM pg_views WHERE viewname = 'users_masked' AND definition LIKE '%hash-%'), 0::bigint,
          'attack: a credential value is part of the view definition');

-- 3. Export: the column is named, its value withheld; drop the declaration and it comes back.
SELECT is(pdp.export_subject(1)->'data'->'tapc.users'->0->'password', '{"withheld": "credential"}'::jsonb,
          'attack: the export hands over a credential');
SELECT ok(pdp.export_subject(1)::text NOT LIKE '%hash-one%', 'attack: the credential''s value appears anywhere in the export');
SET ROLE tap_cred_owner;
SELECT pdp.drop_credential('tapc.users', 'password');
RESET ROLE;
SELECT is(pdp.export_subject(1)->'data'->'tapc.users'->0->>'password', 'hash-one',
          'control: an undeclared column is exported as it is');

SELECT * FROM finish();
ROLLBACK;
