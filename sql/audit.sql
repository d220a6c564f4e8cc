-- The audit trail: every action's entry, no personal values, append-only,
-- and a hash chain that exposes edits, deletions and reordering.
\set SHOW_CONTEXT never
\set VERBOSITY terse

SELECT * FROM pdp.verify_audit_log();

-- The earlier suites' actions each left entries.
SELECT action, count(*) > 0 AS recorded
  FROM (VALUES ('register_table'), ('unregister_table'), ('set_column_rule'), ('drop_column_rule'),
               ('pseudonymise_on_write'), ('apply_rules_start'), ('apply_rules_finish'), ('create_masked_view'),
               ('define_purpose'), ('allow_purpose'), ('disallow_purpose'), ('grant_consent'), ('withdraw_consent'),
               ('restrict_subject'), ('lift_restriction'), ('publish_policy'), ('protect_table'), ('unprotect_table'),
               ('reverse')) a(action)
  LEFT JOIN pdp.audit_log l USING (action)
 GROUP BY action ORDER BY action;
SELECT DISTINCT object FROM pdp.audit_log WHERE action = 'reverse' ORDER BY 1;

-- No personal values: subjects appear only as pseudonyms, evidence is not copied.
SELECT count(*) FILTER (WHERE subject_pseudonym !~ '^[0-9a-f]{32}$') AS bad_pseudonyms,
       count(*) FILTER (WHERE details::text LIKE '%signup-v3%' OR details::text LIKE '%@mail.kz%') AS leaked_values,
       count(DISTINCT subject_pseudonym) > 1 AS subjects_told_apart
  FROM pdp.audit_log WHERE subject_pseudonym IS NOT NULL OR details <> '{}';
-- The audit pseudonym cannot be computed from SQL, by a superuser either.
SELECT pdp.pseudonym('1', 'audit');
SELECT pdp._subject_pseudonym('1');
SELECT DISTINCT role, session_role FROM pdp.audit_log WHERE action = 'allow_purpose';

-- Append-only, for the owner (a superuser) too.
UPDATE pdp.audit_log SET action = 'nothing' WHERE id = 1;
DELETE FROM pdp.audit_log WHERE id = 1;
TRUNCATE pdp.audit_log;
UPDATE pdp.audit_seal SET hash = '\x00' WHERE seq = 1;
DELETE FROM pdp.audit_seal;
-- Ordinary roles cannot write it at all, and pdp_auditor reads it.
CREATE ROLE regress_nobody;
CREATE ROLE regress_dpo IN ROLE pdp_auditor;
SET ROLE regress_nobody;
SELECT count(*) FROM pdp.audit_log;
INSERT INTO pdp.audit_log (action) VALUES ('forged');
SELECT pdp._audit('forged', NULL);
RESET ROLE;
SET ROLE regress_dpo;
-- pdp_auditor may run pdp.report, which writes an entry, but not forge one.
SELECT pdp._audit('erase_subject', NULL, '42', '{"email": "forged@mail.kz"}');
SELECT ok FROM pdp.verify_audit_log();
RESET ROLE;

-- Tampering by a superuser with triggers disabled is detected.
SELECT pdp.seal_audit_log();
CREATE TEMP TABLE saved AS SELECT l.* FROM pdp.audit_log l JOIN pdp.audit_seal a ON a.entry_id = l.id WHERE a.seq = 3;
CREATE TEMP TABLE saved_seal AS SELECT * FROM pdp.audit_seal WHERE seq = 3;
CREATE TEMP TABLE saved_pair AS SELECT * FROM pdp.audit_seal WHERE seq IN (4, 5);
SET session_replication_role = replica;
-- 1. An edit.
UPDATE pdp.audit_log SET details = '{"edited": true}' WHERE id = (SELECT id FROM saved);
SELECT ok, first_bad_id = (SELECT id FROM saved) AS finds_edit FROM pdp.verify_audit_log();
UPDATE pdp.audit_log l SET details = s.details FROM saved s WHERE l.id = s.id;
SELECT ok AS restored FROM pdp.verify_audit_log();
-- 2. A deletion: of the entry, then of its seal too.
DELETE FROM pdp.audit_log WHERE id = (SELECT id FROM saved);
SELECT ok, first_bad_id = (SELECT id FROM saved) AS finds_deletion FROM pdp.verify_audit_log();
DELETE FROM pdp.audit_seal WHERE seq = 3;
SELECT ok, first_bad_id IS NOT NULL AS finds_gap FROM pdp.verify_audit_log();
INSERT INTO pdp.audit_log SELECT * FROM saved;
INSERT INTO pdp.audit_seal SELECT * FROM saved_seal;
SELECT ok AS restored FROM pdp.verify_audit_log();
-- 3. A reordering: two consecutive seals swap their entries.
UPDATE pdp.audit_seal SET entry_id = -entry_id WHERE seq IN (4, 5);
UPDATE pdp.audit_seal a SET entry_id = p.entry_id FROM saved_pair p WHERE a.seq IN (4, 5) AND p.seq <> a.seq;
SELECT ok, first_bad_id IN (SELECT entry_id FROM saved_pair) AS finds_reordering FROM pdp.verify_audit_log();
UPDATE pdp.audit_seal SET entry_id = -entry_id WHERE seq IN (4, 5);
UPDATE pdp.audit_seal a SET entry_id = p.entry_id FROM saved_pair p WHERE a.seq = p.seq;
SELECT ok AS restored FROM pdp.verify_audit_log();
-- 4. An entry slipped in with the queue trigger disabled is never sealed.
INSERT INTO pdp.audit_log (action) VALUES ('slipped in') RETURNING id AS slipped \gset
SELECT ok, first_bad_id = :slipped AS finds_unsealed FROM pdp.verify_audit_log();
DELETE FROM pdp.audit_log WHERE id = :slipped;
-- 5. The newest entries cut off.
CREATE TEMP TABLE saved_tail AS SELECT * FROM pdp.audit_seal WHERE seq = (SELECT max(seq) FROM pdp.audit_seal);
DELETE FROM pdp.audit_seal WHERE seq = (SELECT seq FROM saved_tail);
SELECT ok, first_bad_id IS NOT NULL AS finds_cut_tail FROM pdp.verify_audit_log();
INSERT INTO pdp.audit_seal SELECT * FROM saved_tail;
RESET session_replication_role;
SELECT ok AS intact_again FROM pdp.verify_audit_log();

-- Trimming keeps at least a day.
SELECT pdp.trim_audit_log('1 hour');
SELECT pdp.trim_audit_log('1 day') AS trimmed_nothing_young;
DROP ROLE regress_nobody, regress_dpo;
