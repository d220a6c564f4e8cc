-- pgTAP: each of pdp_ext's roles does its job with exactly its grants, run
-- as that role (issue 14, class 13): a pdp_admin member who owns the
-- learners' table (tap_admin), a DPO who is only in pdp_auditor (tap_dpo),
-- a pdp_reidentifier member (tap_reid), a pdp_pseudonymiser member
-- (tap_pseudo), a table owner outside pdp_admin (tap_owner), an application
-- role (tap_app) and a non-superuser DBA in pdp_admin and pdp_auditor who
-- may not read one schema (tap_dba).  "job:" tests show the job works;
-- "no more:" tests show the next step beyond it is refused.  Rolled back.
BEGIN;
SELECT plan(57);

CREATE ROLE tap_admin IN ROLE pdp_admin;
CREATE ROLE tap_dpo IN ROLE pdp_auditor;
CREATE ROLE tap_reid IN ROLE pdp_reidentifier;
CREATE ROLE tap_pseudo IN ROLE pdp_pseudonymiser;
CREATE ROLE tap_owner;
CREATE ROLE tap_app;
CREATE ROLE tap_dba IN ROLE pdp_admin, pdp_auditor;
CREATE SCHEMA tap AUTHORIZATION tap_admin;
CREATE SCHEMA tap_own AUTHORIZATION tap_owner;
GRANT USAGE ON SCHEMA tap TO tap_app, tap_dba;
SET ROLE tap_admin;
CREATE TABLE tap.learners (id bigint PRIMARY KEY, email text, joined timestamptz NOT NULL DEFAULT now());
INSERT INTO tap.learners (id, email) VALUES (1, 'one@example.kz'), (2, 'two@example.kz'), (3, 'three@example.kz');
GRANT SELECT, INSERT ON tap.learners TO tap_app;
SET ROLE tap_owner;
CREATE TABLE tap_own.events (id bigint PRIMARY KEY, learner bigint NOT NULL, at date NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE tap_own.events_1 PARTITION OF tap_own.events FOR VALUES FROM (0) TO (1000);
INSERT INTO tap_own.events VALUES (1, 1, '2024-05-05');
RESET ROLE;
SELECT pdp.define_purpose('tap_teaching', 'contract');
SELECT pdp.define_recipient('tap_ministry', 'KZ');
-- The owner's table, registered, retained and protected by a superuser.
SELECT pdp.register_table('tap_own.events', 'learner');
SELECT pdp.set_retention('tap_own.events', '5 years', 'at');
SELECT pdp.protect_table('tap_own.events');
CREATE TEMP TABLE tap_tokens AS SELECT pdp.encrypt('one@example.kz') AS t, pdp.fpe_iin('900101300017') AS iin;
GRANT SELECT ON tap_tokens TO tap_reid, tap_pseudo;

-- pdp_admin: configures pdp_ext for the tables it owns and answers requests.
SET ROLE tap_admin;
SELECT lives_ok($$SELECT pdp.register_table('tap.learners', 'id')$$, 'job: pdp_admin registers a table it owns');
SELECT lives_ok($$SELECT pdp.set_column_rule('tap.learners', 'email', 'mask_email')$$, 'job: pdp_admin declares a column rule');
SELECT lives_ok($$SELECT pdp.set_retention('tap.learners', '3 years', 'joined')$$, 'job: pdp_admin sets a retention period');
SELECT lives_ok($$SELECT pdp.allow_purpose('tap_app', 'tap_teaching')$$, 'job: pdp_admin lets the application declare a purpose');
SELECT lives_ok($$SELECT pdp.protect_table('tap.learners')$$, 'job: pdp_admin protects its table');
SELECT lives_ok($$SELECT pdp.grant_consent(1, 'tap_teaching')$$, 'job: pdp_admin records a consent');
SELECT lives_ok($$SELECT pdp.restrict_subject(3, 'objection')$$, 'job: pdp_admin restricts a learner');
SELECT lives_ok($$SELECT pdp.place_hold(2, 'claim')$$, 'job: pdp_admin places a hold');
SELECT lives_ok($$SELECT pdp.export_subject(1)$$, 'job: pdp_admin exports a learner');
SELECT lives_ok($$SELECT pdp.audit_reads('tap.learners')$$, 'job: pdp_admin logs the reads of its table');
SELECT lives_ok($$SELECT pdp.audit_reads('tap.learners', false)$$, 'job: pdp_admin stops logging them');
SELECT lives_ok($$SELECT pdp.publish_audit_anchor()$$, 'job: pdp_admin publishes an audit anchor');
SELECT throws_ok($$SELECT pdp.audit_reads('tap_own.events')$$, '42501', NULL,
                 'no more: pdp_admin switches read logging of a table it does not own');
SELECT lives_ok($$SELECT pdp.open_request(1, 'access')$$, 'job: pdp_admin opens a request');
SELECT lives_ok($$SELECT pdp.create_masked_view('tap.learners')$$, 'job: pdp_admin creates a masked view (unkeyed rule)');
SELECT lives_ok($$SELECT pdp.report('json')$$, 'job: pdp_admin reads the compliance report');
SELECT throws_ok($$SELECT pdp.register_table('tap_own.events', 'id')$$, '42501', NULL,
                 'no more: pdp_admin registers a column of a table it does not own');
SELECT throws_ok($$SELECT count(*) FROM pdp.audit_log$$, '42501', NULL, 'no more: pdp_admin reads the audit trail');
SELECT throws_ok($$SELECT pdp.decrypt(t) FROM tap_tokens$$, '42501', NULL, 'no more: pdp_admin reverses a token');
SELECT throws_ok($$SELECT pdp.pseudonym('guess')$$, '42501', NULL, 'no more: pdp_admin computes a token of a guess');
SELECT throws_ok($$SELECT pdp._audit('x', NULL)$$, '42501', NULL, 'no more: pdp_admin writes an audit entry itself');

-- pdp_auditor: the DPO reads registers, the trail and the report, and changes nothing.
SET ROLE tap_dpo;
SELECT lives_ok($$SELECT pdp.report()$$, 'job: a DPO only in pdp_auditor renders the HTML report');
SELECT lives_ok($$SELECT pdp.report('markdown')$$, 'job: a DPO only in pdp_auditor renders the Markdown report');
SELECT is((SELECT ok FROM pdp.verify_audit_log()), true, 'job: the DPO verifies the audit trail');
SELECT ok((SELECT count(*) FROM pdp.audit_log) > 0, 'job: the DPO reads the audit trail');
SELECT ok((SELECT count(*) FROM pdp.processing_register) > 0, 'job: the DPO reads the processing register');
SELECT is(pdp.has_consent(1, 'tap_teaching'), true, 'job: the DPO checks a consent');
SELECT ok((SELECT count(*) FROM pdp.consent_history(1)) > 0, 'job: the DPO reads a consent history');
SELECT lives_ok($$SELECT * FROM pdp.key_status()$$, 'job: the DPO reads key fingerprints');
SELECT ok((SELECT seq FROM pdp.audit_head()) > 0, 'job: the DPO reads the audit chain''s head');
SELECT ok((SELECT count(*) FROM pdp.audit_anchor) > 0, 'job: the DPO reads the published anchors');
SELECT throws_ok($$SELECT pdp.publish_audit_anchor()$$, '42501', NULL, 'no more: the DPO publishes an anchor');
SELECT throws_ok($$SELECT pdp.grant_consent(2, 'tap_teaching')$$, '42501', NULL, 'no more: the DPO records a consent');
SELECT throws_ok($$SELECT pdp.erase_subject(1, 'r')$$, '42501', NULL, 'no more: the DPO erases a learner');
SELECT throws_ok($$SELECT count(*) FROM tap.learners$$, '42501', NULL, 'no more: the DPO reads the learners'' rows');
SELECT throws_ok($$SELECT pdp.decrypt(t) FROM tap_tokens$$, '42501', NULL, 'no more: the DPO reverses a token');

-- pdp_reidentifier: reverses tokens, and only that.
SET ROLE tap_reid;
SELECT is((SELECT pdp.decrypt(t) FROM tap_tokens), 'one@example.kz', 'job: pdp_reidentifier decrypts a token');
SELECT is((SELECT pdp.fpe_iin_decrypt(iin) FROM tap_tokens), '900101300017', 'job: pdp_reidentifier reverses an IIN token');
SELECT throws_ok($$SELECT pdp.encrypt('guess@example.kz')$$, '42501', NULL, 'no more: pdp_reidentifier encrypts guesses');
SELECT throws_ok($$SELECT count(*) FROM pdp.audit_log$$, '42501', NULL, 'no more: pdp_reidentifier reads the audit trail');

-- pdp_pseudonymiser: computes tokens, and only that.
SET ROLE tap_pseudo;
SELECT is(pdp.fpe_iin('900101300017'), (SELECT iin FROM tap_tokens), 'job: pdp_pseudonymiser computes an IIN token');
SELECT ok(pdp.pseudonym('one@example.kz', 'crm') ~ '^[0-9a-f]{32}$', 'job: pdp_pseudonymiser computes a pseudonym');
SELECT throws_ok($$SELECT pdp.decrypt(t) FROM tap_tokens$$, '42501', NULL, 'no more: pdp_pseudonymiser reverses a token');
SELECT throws_ok($$SELECT pdp.register_table('tap.learners', 'id')$$, '42501', NULL, 'no more: pdp_pseudonymiser configures pdp_ext');

-- A table owner outside pdp_admin keeps running its protected table.
SET ROLE tap_owner;
SELECT lives_ok($$CREATE TABLE tap_own.events_2 PARTITION OF tap_own.events FOR VALUES FROM (1000) TO (2000)$$,
                'job: the owner creates a partition of its protected table');
CREATE TABLE tap_own.events_3 (id bigint PRIMARY KEY, learner bigint NOT NULL, at date NOT NULL);
SELECT lives_ok($$ALTER TABLE tap_own.events ATTACH PARTITION tap_own.events_3 FOR VALUES FROM (2000) TO (3000)$$,
                'job: the owner attaches a partition to its protected table');
SELECT lives_ok($$INSERT INTO tap_own.events VALUES (1500, 2, '2025-06-01'), (2500, 3, '2026-06-01')$$, 'job: the owner writes into the new partitions');
SELECT throws_ok($$SELECT pdp.unprotect_table('tap_own.events')$$, '42501', NULL, 'no more: the owner outside pdp_admin unprotects its table');

-- The application: reads for its declared purpose, writes, and masks.
SET ROLE tap_app;
SELECT is((SELECT count(*) FROM tap.learners), 0::bigint, 'job: without a purpose the application sees no row (fail closed)');
SET pdp.purpose = 'tap_teaching';
SELECT is((SELECT count(*) FROM tap.learners), 2::bigint, 'job: for its purpose the application sees the unrestricted learners');
SELECT lives_ok($$INSERT INTO tap.learners (id, email) VALUES (4, 'four@example.kz')$$, 'job: the application adds a learner');
SELECT lives_ok($$SELECT pdp.mask_email(email) FROM tap.learners$$, 'job: the application masks a value');
RESET pdp.purpose;
SELECT throws_ok($$SELECT pdp.pseudonym('guess')$$, '42501', NULL, 'no more: the application computes a token of a guess');
SELECT throws_ok($$SELECT count(*) FROM pdp.consent_state$$, '42501', NULL, 'no more: the application reads the consents');

-- A non-superuser DBA who may not read the owner's schema still gets the report.
SET ROLE tap_dba;
SELECT lives_ok($$SELECT pdp.report('html')$$, 'job: a DBA without access to a retained table''s schema renders the report');
SELECT is((SELECT r->>'expired_not_purged' FROM jsonb_array_elements(pdp._report_json()->'retention') r
            WHERE r->>'table' = 'tap_own.events') IS NOT NULL, true,
          'job: the report counts expired rows of a table the DBA may not read (counted as its owner, a number only)');
SELECT throws_ok($$SELECT count(*) FROM tap_own.events$$, '42501', NULL, 'no more: the DBA reads the owner''s rows');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
