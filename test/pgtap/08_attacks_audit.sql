-- pgTAP: attacks on the audit trail (issue 15): forging, reordering,
-- deleting and truncating entries, seals, the head and the anchors, as each
-- kind of role: a pdp_admin member, a DPO (pdp_auditor), a pdp_pseudonymiser
-- member, a table owner in no pdp role, and an application role.  Each
-- fails (42501, or 22023 for a trim younger than a day).  Then the same
-- attacks by a superuser with triggers disabled (the only one who can make
-- them): each is detected by pdp.verify_audit_log.  "attack:" tests fail
-- without their defence.  All of it is rolled back.
BEGIN;
SELECT plan(86);

CREATE ROLE tap_aud_admin IN ROLE pdp_admin;
CREATE ROLE tap_aud_dpo IN ROLE pdp_auditor;
CREATE ROLE tap_aud_pseudo IN ROLE pdp_pseudonymiser;
CREATE ROLE tap_aud_owner;
CREATE ROLE tap_aud_app;
CREATE SCHEMA tap_aud AUTHORIZATION tap_aud_owner;
GRANT USAGE ON SCHEMA tap_aud TO tap_aud_app;
SET ROLE tap_aud_owner;
CREATE TABLE tap_aud.learners (id bigint PRIMARY KEY, email text);
INSERT INTO tap_aud.learners VALUES (1, 'one@example.kz'), (2, 'two@example.kz');
GRANT SELECT ON tap_aud.learners TO tap_aud_app;
RESET ROLE;
SELECT pdp.register_table('tap_aud.learners', 'id');
SELECT pdp.define_purpose('tap_aud_news', 'consent');
SELECT pdp.grant_consent(g, 'tap_aud_news') FROM generate_series(1, 6) g;
SELECT pdp.publish_audit_anchor();

-- As tap_aud_admin (pdp_admin).
SET ROLE tap_aud_admin;
SELECT throws_ok($$INSERT INTO pdp.audit_log (action) VALUES ('forged')$$, '42501', NULL,
                 'attack: tap_aud_admin forges an entry');
SELECT throws_ok($$INSERT INTO pdp.audit_seal VALUES (999999, 999999, sha256(''), 1, sha256(''))$$, '42501', NULL,
                 'attack: tap_aud_admin forges a seal');
SELECT throws_ok($$UPDATE pdp.audit_seal SET entry_id = -entry_id$$, '42501', NULL,
                 'attack: tap_aud_admin reorders the seals');
SELECT throws_ok($$UPDATE pdp.audit_log SET details = '{}'$$, '42501', NULL,
                 'attack: tap_aud_admin edits entries');
SELECT throws_ok($$DELETE FROM pdp.audit_log$$, '42501', NULL,
                 'attack: tap_aud_admin deletes entries');
SELECT throws_ok($$DELETE FROM pdp.audit_seal$$, '42501', NULL,
                 'attack: tap_aud_admin deletes seals');
SELECT throws_ok($$TRUNCATE pdp.audit_log$$, '42501', NULL,
                 'attack: tap_aud_admin truncates the log');
SELECT throws_ok($$TRUNCATE pdp.audit_seal$$, '42501', NULL,
                 'attack: tap_aud_admin truncates the seals');
SELECT throws_ok($$UPDATE pdp.audit_chain SET head_seq = 0$$, '42501', NULL,
                 'attack: tap_aud_admin resets the head');
SELECT throws_ok($$DELETE FROM pdp.audit_anchor$$, '42501', NULL,
                 'attack: tap_aud_admin deletes the published anchors');
SELECT throws_ok($$INSERT INTO pdp.audit_anchor (seq, hash) VALUES (1, sha256(''))$$, '42501', NULL,
                 'attack: tap_aud_admin forges an anchor');
SELECT throws_ok($$SELECT pdp._audit_mac(NULL, 1, sha256(''), 1)$$, '42501', NULL,
                 'attack: tap_aud_admin asks for a MAC (an oracle for forging)');
SELECT throws_ok($$SELECT pdp._audit_trim_delete(1000000)$$, '42501', NULL,
                 'attack: tap_aud_admin deletes through the trim helper');
SELECT throws_ok($$SELECT pdp.trim_audit_log('1 hour')$$, '22023', NULL,
                 'attack: tap_aud_admin trims younger than a day');
SELECT throws_ok($$SELECT pdp._audit('erase_subject', 'tap_aud.learners', '1')$$, '42501', NULL,
                 'attack: tap_aud_admin writes an entry directly through pdp._audit');
SELECT throws_ok($$SELECT pdp.publish_audit_anchor('/tmp/tap_aud_anchors')$$, '42501', NULL,
                 'attack: tap_aud_admin makes the server write a file of its choosing (an anchor file)');
SELECT pdp.define_purpose('tap_aud_admin_purpose', 'consent');
RESET ROLE;
SELECT is((SELECT role::text FROM pdp.audit_log ORDER BY id DESC LIMIT 1), 'tap_aud_admin',
          'attack: the entries of tap_aud_admin''s actions are in its own name');
-- As tap_aud_dpo (pdp_auditor).
SET ROLE tap_aud_dpo;
SELECT throws_ok($$INSERT INTO pdp.audit_log (action) VALUES ('forged')$$, '42501', NULL,
                 'attack: tap_aud_dpo forges an entry');
SELECT throws_ok($$INSERT INTO pdp.audit_seal VALUES (999999, 999999, sha256(''), 1, sha256(''))$$, '42501', NULL,
                 'attack: tap_aud_dpo forges a seal');
SELECT throws_ok($$UPDATE pdp.audit_seal SET entry_id = -entry_id$$, '42501', NULL,
                 'attack: tap_aud_dpo reorders the seals');
SELECT throws_ok($$UPDATE pdp.audit_log SET details = '{}'$$, '42501', NULL,
                 'attack: tap_aud_dpo edits entries');
SELECT throws_ok($$DELETE FROM pdp.audit_log$$, '42501', NULL,
                 'attack: tap_aud_dpo deletes entries');
SELECT throws_ok($$DELETE FROM pdp.audit_seal$$, '42501', NULL,
                 'attack: tap_aud_dpo deletes seals');
SELECT throws_ok($$TRUNCATE pdp.audit_log$$, '42501', NULL,
                 'attack: tap_aud_dpo truncates the log');
SELECT throws_ok($$TRUNCATE pdp.audit_seal$$, '42501', NULL,
                 'attack: tap_aud_dpo truncates the seals');
SELECT throws_ok($$UPDATE pdp.audit_chain SET head_seq = 0$$, '42501', NULL,
                 'attack: tap_aud_dpo resets the head');
SELECT throws_ok($$DELETE FROM pdp.audit_anchor$$, '42501', NULL,
                 'attack: tap_aud_dpo deletes the published anchors');
SELECT throws_ok($$INSERT INTO pdp.audit_anchor (seq, hash) VALUES (1, sha256(''))$$, '42501', NULL,
                 'attack: tap_aud_dpo forges an anchor');
SELECT throws_ok($$SELECT pdp._audit_mac(NULL, 1, sha256(''), 1)$$, '42501', NULL,
                 'attack: tap_aud_dpo asks for a MAC (an oracle for forging)');
SELECT throws_ok($$SELECT pdp._audit_trim_delete(1000000)$$, '42501', NULL,
                 'attack: tap_aud_dpo deletes through the trim helper');
SELECT throws_ok($$SELECT pdp.trim_audit_log('1 hour')$$, '42501', NULL,
                 'attack: tap_aud_dpo trims younger than a day');
RESET ROLE;
SELECT is((SELECT ok FROM pdp.verify_audit_log()), true, 'control: the chain is intact after tap_aud_dpo''s attempts');
-- As tap_aud_pseudo (pdp_pseudonymiser).
SET ROLE tap_aud_pseudo;
SELECT throws_ok($$INSERT INTO pdp.audit_log (action) VALUES ('forged')$$, '42501', NULL,
                 'attack: tap_aud_pseudo forges an entry');
SELECT throws_ok($$INSERT INTO pdp.audit_seal VALUES (999999, 999999, sha256(''), 1, sha256(''))$$, '42501', NULL,
                 'attack: tap_aud_pseudo forges a seal');
SELECT throws_ok($$UPDATE pdp.audit_seal SET entry_id = -entry_id$$, '42501', NULL,
                 'attack: tap_aud_pseudo reorders the seals');
SELECT throws_ok($$UPDATE pdp.audit_log SET details = '{}'$$, '42501', NULL,
                 'attack: tap_aud_pseudo edits entries');
SELECT throws_ok($$DELETE FROM pdp.audit_log$$, '42501', NULL,
                 'attack: tap_aud_pseudo deletes entries');
SELECT throws_ok($$DELETE FROM pdp.audit_seal$$, '42501', NULL,
                 'attack: tap_aud_pseudo deletes seals');
SELECT throws_ok($$TRUNCATE pdp.audit_log$$, '42501', NULL,
                 'attack: tap_aud_pseudo truncates the log');
SELECT throws_ok($$TRUNCATE pdp.audit_seal$$, '42501', NULL,
                 'attack: tap_aud_pseudo truncates the seals');
SELECT throws_ok($$UPDATE pdp.audit_chain SET head_seq = 0$$, '42501', NULL,
                 'attack: tap_aud_pseudo resets the head');
SELECT throws_ok($$DELETE FROM pdp.audit_anchor$$, '42501', NULL,
                 'attack: tap_aud_pseudo deletes the published anchors');
SELECT throws_ok($$INSERT INTO pdp.audit_anchor (seq, hash) VALUES (1, sha256(''))$$, '42501', NULL,
                 'attack: tap_aud_pseudo forges an anchor');
SELECT throws_ok($$SELECT pdp._audit_mac(NULL, 1, sha256(''), 1)$$, '42501', NULL,
                 'attack: tap_aud_pseudo asks for a MAC (an oracle for forging)');
SELECT throws_ok($$SELECT pdp._audit_trim_delete(1000000)$$, '42501', NULL,
                 'attack: tap_aud_pseudo deletes through the trim helper');
SELECT throws_ok($$SELECT pdp.trim_audit_log('1 hour')$$, '42501', NULL,
                 'attack: tap_aud_pseudo trims younger than a day');
RESET ROLE;
SELECT is((SELECT ok FROM pdp.verify_audit_log()), true, 'control: the chain is intact after tap_aud_pseudo''s attempts');
-- As tap_aud_owner (no pdp role).
SET ROLE tap_aud_owner;
SELECT throws_ok($$INSERT INTO pdp.audit_log (action) VALUES ('forged')$$, '42501', NULL,
                 'attack: tap_aud_owner forges an entry');
SELECT throws_ok($$INSERT INTO pdp.audit_seal VALUES (999999, 999999, sha256(''), 1, sha256(''))$$, '42501', NULL,
                 'attack: tap_aud_owner forges a seal');
SELECT throws_ok($$UPDATE pdp.audit_seal SET entry_id = -entry_id$$, '42501', NULL,
                 'attack: tap_aud_owner reorders the seals');
SELECT throws_ok($$UPDATE pdp.audit_log SET details = '{}'$$, '42501', NULL,
                 'attack: tap_aud_owner edits entries');
SELECT throws_ok($$DELETE FROM pdp.audit_log$$, '42501', NULL,
                 'attack: tap_aud_owner deletes entries');
SELECT throws_ok($$DELETE FROM pdp.audit_seal$$, '42501', NULL,
                 'attack: tap_aud_owner deletes seals');
SELECT throws_ok($$TRUNCATE pdp.audit_log$$, '42501', NULL,
                 'attack: tap_aud_owner truncates the log');
SELECT throws_ok($$TRUNCATE pdp.audit_seal$$, '42501', NULL,
                 'attack: tap_aud_owner truncates the seals');
SELECT throws_ok($$UPDATE pdp.audit_chain SET head_seq = 0$$, '42501', NULL,
                 'attack: tap_aud_owner resets the head');
SELECT throws_ok($$DELETE FROM pdp.audit_anchor$$, '42501', NULL,
                 'attack: tap_aud_owner deletes the published anchors');
SELECT throws_ok($$INSERT INTO pdp.audit_anchor (seq, hash) VALUES (1, sha256(''))$$, '42501', NULL,
                 'attack: tap_aud_owner forges an anchor');
SELECT throws_ok($$SELECT pdp._audit_mac(NULL, 1, sha256(''), 1)$$, '42501', NULL,
                 'attack: tap_aud_owner asks for a MAC (an oracle for forging)');
SELECT throws_ok($$SELECT pdp._audit_trim_delete(1000000)$$, '42501', NULL,
                 'attack: tap_aud_owner deletes through the trim helper');
SELECT throws_ok($$SELECT pdp.trim_audit_log('1 hour')$$, '42501', NULL,
                 'attack: tap_aud_owner trims younger than a day');
RESET ROLE;
SELECT is((SELECT ok FROM pdp.verify_audit_log()), true, 'control: the chain is intact after tap_aud_owner''s attempts');
-- As tap_aud_app (no pdp role).
SET ROLE tap_aud_app;
SELECT throws_ok($$INSERT INTO pdp.audit_log (action) VALUES ('forged')$$, '42501', NULL,
                 'attack: tap_aud_app forges an entry');
SELECT throws_ok($$INSERT INTO pdp.audit_seal VALUES (999999, 999999, sha256(''), 1, sha256(''))$$, '42501', NULL,
                 'attack: tap_aud_app forges a seal');
SELECT throws_ok($$UPDATE pdp.audit_seal SET entry_id = -entry_id$$, '42501', NULL,
                 'attack: tap_aud_app reorders the seals');
SELECT throws_ok($$UPDATE pdp.audit_log SET details = '{}'$$, '42501', NULL,
                 'attack: tap_aud_app edits entries');
SELECT throws_ok($$DELETE FROM pdp.audit_log$$, '42501', NULL,
                 'attack: tap_aud_app deletes entries');
SELECT throws_ok($$DELETE FROM pdp.audit_seal$$, '42501', NULL,
                 'attack: tap_aud_app deletes seals');
SELECT throws_ok($$TRUNCATE pdp.audit_log$$, '42501', NULL,
                 'attack: tap_aud_app truncates the log');
SELECT throws_ok($$TRUNCATE pdp.audit_seal$$, '42501', NULL,
                 'attack: tap_aud_app truncates the seals');
SELECT throws_ok($$UPDATE pdp.audit_chain SET head_seq = 0$$, '42501', NULL,
                 'attack: tap_aud_app resets the head');
SELECT throws_ok($$DELETE FROM pdp.audit_anchor$$, '42501', NULL,
                 'attack: tap_aud_app deletes the published anchors');
SELECT throws_ok($$INSERT INTO pdp.audit_anchor (seq, hash) VALUES (1, sha256(''))$$, '42501', NULL,
                 'attack: tap_aud_app forges an anchor');
SELECT throws_ok($$SELECT pdp._audit_mac(NULL, 1, sha256(''), 1)$$, '42501', NULL,
                 'attack: tap_aud_app asks for a MAC (an oracle for forging)');
SELECT throws_ok($$SELECT pdp._audit_trim_delete(1000000)$$, '42501', NULL,
                 'attack: tap_aud_app deletes through the trim helper');
SELECT throws_ok($$SELECT pdp.trim_audit_log('1 hour')$$, '42501', NULL,
                 'attack: tap_aud_app trims younger than a day');
RESET ROLE;
SELECT is((SELECT ok FROM pdp.verify_audit_log()), true, 'control: the chain is intact after tap_aud_app''s attempts');

-- A superuser with triggers disabled can make each attack; each is detected.
SELECT is((SELECT ok FROM pdp.verify_audit_log()), true, 'control: the chain verifies before the superuser''s attacks');
SET session_replication_role = replica;
SAVEPOINT forged;
INSERT INTO pdp.audit_log (action) VALUES ('forged');
SELECT is((SELECT ok FROM pdp.verify_audit_log()), false, 'attack: a superuser forges an entry (never sealed, or sealed without a valid place)');
ROLLBACK TO forged;
INSERT INTO pdp.audit_log (action) VALUES ('forged');
INSERT INTO pdp.audit_seal
SELECT c.head_seq + 1, l.id, pdp._audit_hash(c.head_hash, c.head_seq + 1, l.id, l.at, pdp._audit_fields(l)), 1, sha256('y')
  FROM pdp.audit_chain c, pdp.audit_log l WHERE l.id = (SELECT max(id) FROM pdp.audit_log);
UPDATE pdp.audit_chain SET head_seq = head_seq + 1, head_hash = (SELECT hash FROM pdp.audit_seal ORDER BY seq DESC LIMIT 1),
       head_mac = sha256('y');
SELECT is((SELECT ok FROM pdp.verify_audit_log()), false, 'attack: a superuser forges an entry with a correct hash, and its seal and head, without the key (the MAC tells)');
ROLLBACK TO forged;
CREATE TEMP TABLE tap_aud_pair AS SELECT * FROM pdp.audit_seal WHERE seq IN (2, 3);
UPDATE pdp.audit_seal SET entry_id = -entry_id WHERE seq IN (2, 3);
UPDATE pdp.audit_seal a SET entry_id = p.entry_id FROM tap_aud_pair p WHERE a.seq IN (2, 3) AND p.seq <> a.seq;
SELECT is((SELECT ok FROM pdp.verify_audit_log()), false, 'attack: a superuser reorders two entries');
ROLLBACK TO forged;
DELETE FROM pdp.audit_log WHERE id = (SELECT entry_id FROM pdp.audit_seal WHERE seq = 3);
SELECT is((SELECT ok FROM pdp.verify_audit_log()), false, 'attack: a superuser deletes an entry');
ROLLBACK TO forged;
DELETE FROM pdp.audit_log WHERE id = (SELECT entry_id FROM pdp.audit_seal WHERE seq = 3);
DELETE FROM pdp.audit_seal WHERE seq >= 3;
UPDATE pdp.audit_chain c SET head_seq = s.seq, head_hash = s.hash, head_mac = s.mac FROM pdp.audit_seal s WHERE s.seq = 2;
SELECT is((SELECT ok FROM pdp.verify_audit_log()), false, 'attack: a superuser deletes the newest entries and moves the head back (the anchor tells)');
ROLLBACK TO forged;
TRUNCATE pdp.audit_log, pdp.audit_seal;
UPDATE pdp.audit_chain SET head_seq = 0, head_hash = '\x0000000000000000000000000000000000000000000000000000000000000000', head_mac = NULL;
SELECT is((SELECT ok FROM pdp.verify_audit_log()), false, 'attack: a superuser truncates the log and the seals and resets the head (the anchor tells)');
ROLLBACK TO forged;
UPDATE pdp.audit_chain SET legacy_seq = head_seq;
UPDATE pdp.audit_seal SET mac = NULL, key_version = NULL;
UPDATE pdp.audit_chain SET head_mac = NULL;
SELECT is((SELECT ok FROM pdp.verify_audit_log()), false, 'attack: a superuser turns the keyed chain into a "legacy" one (the anchor tells)');
ROLLBACK TO forged;
RESET session_replication_role;
SELECT is((SELECT ok FROM pdp.verify_audit_log()), true, 'control: undone, the chain verifies again');

SELECT * FROM finish();
ROLLBACK;
