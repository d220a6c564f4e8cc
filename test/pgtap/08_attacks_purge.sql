-- pgTAP: attacks on the purge's safeguards (issue 16, points 3 and 9), as a
-- pdp_admin member who owns the tables (not a superuser), a DPO in
-- pdp_auditor and a role outside pdp: system subjects declared or removed
-- by a role that may not, pdp's tables written directly, the valve's
-- recorder called directly, a raised safety share that leaves no trace.
-- "attack:" tests fail without their defence; "control:" tests show what
-- must still work.  All of it is rolled back.
BEGIN;
SELECT plan(16);

CREATE ROLE tap8_admin IN ROLE pdp_admin;
CREATE ROLE tap8_dpo IN ROLE pdp_auditor;
CREATE ROLE tap8_app;
CREATE SCHEMA tap8 AUTHORIZATION tap8_admin;
SET ROLE tap8_admin;
CREATE TABLE tap8.mdl_user (id bigint PRIMARY KEY, lastaccess bigint NOT NULL DEFAULT 0, timecreated bigint NOT NULL DEFAULT 0);
INSERT INTO tap8.mdl_user SELECT g, CASE WHEN g <= 5 THEN 0 ELSE extract(epoch FROM now())::bigint END,
                                 extract(epoch FROM now() - interval '5 years')::bigint
  FROM generate_series(1, 20) g;
SELECT pdp.register_table('tap8.mdl_user', 'id');
RESET ROLE;

-- 1. System subjects: pdp_admin only, through the API.
SET ROLE tap8_app;
SELECT throws_ok($$SELECT pdp.declare_system_subject('7', 'mine now')$$, '42501', NULL,
                 'attack: a role outside pdp cannot declare a system subject');
SELECT throws_ok($$SELECT pdp.drop_system_subject('1')$$, '42501', NULL,
                 'attack: a role outside pdp cannot drop a system subject');
SET ROLE tap8_dpo;
SELECT throws_ok($$SELECT pdp.declare_system_subject('7', 'keep me')$$, '42501', NULL,
                 'attack: a DPO (pdp_auditor) cannot declare a system subject');
SELECT is((SELECT count(*)::int FROM pdp.system_subject), 0, 'control: a DPO reads the system subjects');
SET ROLE tap8_admin;
SELECT lives_ok($$SELECT pdp.declare_system_subject('1', 'Moodle guest user')$$, 'control: pdp_admin declares the guest');
SELECT throws_ok($$INSERT INTO pdp.system_subject VALUES ('8', 'x', now(), 'tap8_admin')$$, '42501', NULL,
                 'attack: pdp_admin cannot write pdp.system_subject directly (no audit entry)');
SELECT throws_ok($$DELETE FROM pdp.system_subject$$, '42501', NULL,
                 'attack: pdp_admin cannot delete system subjects behind the audit trail');
SELECT is((SELECT declared_by FROM pdp.system_subject WHERE subject = '1'), 'tap8_admin'::name,
          'control: the declaring role is recorded, not pdp_ext''s owner');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pdp.audit_log WHERE action = 'declare_system_subject' AND role = 'tap8_admin'), 1,
          'control: the declaration is audited as its caller');

-- 2. The valve's recorder is not callable: a run's record cannot be forged.
SET ROLE tap8_admin;
SELECT throws_ok($$SELECT pdp._hold_back(1, '{"table": "x", "would_remove": 0}')$$, '42501', NULL,
                 'attack: pdp_admin cannot write a held-back record of its own');

-- 3. Inactivity with "never" values: the never-logged-in and the guest stay.
SELECT pdp.set_subject_retention('3 years', 'tap8.mdl_user', 'lastaccess', '{0}', 'timecreated');
SELECT is((SELECT rows::int FROM pdp.purge_expired(dry_run => true) WHERE table_name = 'tap8.mdl_user'::regclass), 4,
          'control: users 2-5 (never logged in, created 5 years ago) expire; the guest does not');
-- The valve holds that back (4 of 20 > 0.1), as the owner too.
SELECT is((SELECT count(*)::int FROM pdp.purge_expired()), 0, 'attack: the owner''s own purge is held back by the valve');
SELECT is((SELECT count(*)::int FROM tap8.mdl_user), 20, 'control: nothing was removed');
-- 4. Raising the share is the documented way through, and leaves a trace.
SET pdp.purge_max_share = 0.5;
SELECT is((SELECT rows::int FROM pdp.purge_expired() WHERE table_name = 'tap8.mdl_user'::regclass), 4,
          'control: a larger share lets one run through');
RESET pdp.purge_max_share;
RESET ROLE;
SELECT is((SELECT (details->>'max_share')::real FROM pdp.audit_log WHERE action = 'purge_max_share_raised' ORDER BY id DESC LIMIT 1), 0.5::real,
          'attack: a raised share is audited');
SELECT is((SELECT max_share FROM pdp.purge_log WHERE id IS NOT NULL ORDER BY id DESC LIMIT 1), 0.5::real,
          'attack: the run records the share it ran with');

SELECT * FROM finish();
ROLLBACK;
