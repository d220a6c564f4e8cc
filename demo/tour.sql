-- The pdp_ext tour.  Each capability adds its stop.
\set QUIET on
\pset footer off
\set SHOW_CONTEXT never
-- try(sql): run a statement the tour expects to be refused and show how.
CREATE SCHEMA tour;
CREATE FUNCTION tour.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN 'refused, SQLSTATE ' || SQLSTATE || ': ' || SQLERRM;
END $$;
\echo
\echo '=== 1. Install ================================================================'
\echo 'CREATE EXTENSION pdp_ext puts everything in schema "pdp" and creates three roles:'
\echo 'pdp_admin (configures), pdp_reidentifier (may reverse pseudonyms), pdp_auditor (reads registers).'
CREATE EXTENSION pdp_ext;
SELECT extname, extversion, n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE extname = 'pdp_ext';

\echo '=== 2. Keys ==================================================================='
\echo 'The server reads versioned 256-bit keys from pdp.key_file (outside the data directory, mode 0600).'
\echo 'SQL only ever sees public fingerprints; subkeys are derived per purpose with HKDF.'
SELECT * FROM pdp.key_status();
\echo 'On a Citus coordinator it also shows every worker''s fingerprints (node) and flags a worker with another key (mismatch).'

\echo '=== 3. Subject registry ======================================================='
\echo 'Tell pdp_ext where each learner''s rows are.  The activity log names a learner twice.'
\o /dev/null
SELECT pdp.register_table('lms.users', 'id');
SELECT pdp.register_table('lms.enrolments', 'user_id');
SELECT pdp.register_table('lms.grades', 'user_id', 'anonymise');
SELECT pdp.register_table('lms.payments', 'user_id');
SELECT pdp.register_table('lms.forum_posts', 'author_id', 'anonymise');
SELECT pdp.register_table('lms.activity_log', 'actor_id');
SELECT pdp.register_table('lms.activity_log', 'affected_user_id', 'set_null');
\o
SELECT table_name, subject_column, subject_type, on_erase FROM pdp.registered_tables ORDER BY 1::text, 2;
\echo 'Erase actions are per column: the log entry is its actor''s (delete); the affected learner is only a link,'
\echo 'cut to NULL when they are erased.  A link without a foreign key makes rows follow rows, for erasure, purge and export:'
\o /dev/null
SELECT pdp.declare_link('lms.grades', 'enrolment_id', 'lms.enrolments');
\o
SELECT child, child_column, parent, parent_column, on_other FROM pdp.links;

\echo 'The registry follows renames; a mistake is refused with an SQLSTATE and changes nothing:'
ALTER TABLE lms.forum_posts RENAME COLUMN author_id TO written_by;
SELECT table_name, subject_column FROM pdp.registered_tables WHERE table_name = 'lms.forum_posts'::regclass;
SELECT tour.try($$SELECT pdp.register_table('lms.users', 'id')$$) AS "register lms.users.id again"
UNION ALL SELECT tour.try($$SELECT pdp.register_table('lms.payments', 'amount_kzt')$$)
UNION ALL SELECT tour.try($$SELECT pdp.register_table('lms.no_such_table', 'id')$$);

\echo '=== 4. Pseudonymisation ======================================================'
\echo 'Keyed, deterministic, collision-free; format-preserving where the format matters:'
SELECT u.email, pdp.pseudo_email(u.email) AS pseudo_email, u.phone, pdp.pseudo_phone(u.phone) AS pseudo_phone,
       u.iin, pdp.pseudo_iin(u.iin) AS pseudo_iin
  FROM lms.users u ORDER BY u.id LIMIT 3;
SELECT u.full_name, pdp.pseudo_name(u.full_name) AS pseudo_name, pdp.pseudonym(u.id) AS pseudonym_of_id,
       pdp.mask_card(p.card_number) AS card
  FROM lms.users u JOIN lms.payments p ON p.user_id = u.id ORDER BY u.id LIMIT 3;
\echo 'Reversible tokens for pdp_reidentifier only; validators; a bad IIN is refused without echoing it:'
SELECT pdp.encrypt('900101300017') AS token, pdp.decrypt(pdp.encrypt('900101300017')) AS decrypted,
       pdp.iin_is_valid('900101300017') AS valid, pdp.bin_is_valid('171240017760') AS "cap.kz BIN valid";
SELECT tour.try($$SELECT pdp.pseudo_iin('900101300018')$$) AS "pseudo_iin of a mistyped IIN";
\echo 'Column rules: payments never store a raw card number again, and staff get a masked view of users:'
\o /dev/null
SELECT pdp.set_column_rule('lms.payments', 'card_number', 'mask_card', 'card');
SELECT pdp.pseudonymise_on_write('lms.payments');
SELECT pdp.set_column_rule('lms.users', 'email', 'pseudo_email', 'email');
SELECT pdp.set_column_rule('lms.users', 'phone', 'mask_phone', 'phone');
SELECT pdp.set_column_rule('lms.users', 'iin', 'pseudo_iin', 'iin');
SELECT pdp.set_column_rule('lms.users', 'full_name', 'pseudo_name', 'name');
\o
INSERT INTO lms.payments (user_id, card_number, amount_kzt, paid_at) VALUES (1, '4111 1111 1111 1111', 25000, now())
RETURNING id, card_number AS "stored card_number";
SELECT pdp.create_masked_view('lms.users') AS "masked view";
SELECT id, full_name, email, phone, iin FROM lms.users_masked ORDER BY id LIMIT 3;
\echo 'Real values: blanks pass through, any script gets a name, root@localhost is an address, IPs in varchar work:'
SELECT pdp.pseudo_email('') = '' AS "'' kept", pdp.pseudo_email('root@localhost') AS "root@localhost",
       pdp.pseudo_name('王小明') AS "王小明", pdp.pseudo_ip_text('10.1.2.3') AS "varchar IP";
\echo 'Credentials: a password hash is never exported, never in a masked view; a value a rule cannot take is masked and counted:'
\o /dev/null
ALTER TABLE lms.users ADD COLUMN password_hash text;
UPDATE lms.users SET password_hash = md5(id::text), email = CASE WHEN id = 3 THEN 'typo-at-mail.kz' ELSE email END;
SELECT pdp.declare_credential('lms.users', 'password_hash');
\o
SELECT id, email, password_hash FROM lms.users_masked WHERE id IN (2, 3) ORDER BY id;
SELECT table_name, column_name, rule, failures FROM pdp.rule_failures;
SELECT table_name, column_name, rule, category, on_write FROM pdp.column_rules ORDER BY 1::text, 2;

\echo '=== 5. Purposes, consent and row visibility ==================================='
\echo 'Purposes with legal bases; the app may declare two of them; half the learners consent to marketing:'
\o /dev/null
SELECT pdp.define_purpose('marketing', 'consent', 'newsletters and offers');
SELECT pdp.define_purpose('courses', 'contract', 'providing courses');
SELECT pdp.define_purpose('legal claims', 'legal_obligation', 'disputes and lawful requests');
CREATE ROLE lms_app;
GRANT USAGE ON SCHEMA tour, lms TO lms_app;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA lms TO lms_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA lms TO lms_app;
SELECT pdp.allow_purpose('lms_app', 'marketing');
SELECT pdp.allow_purpose('lms_app', 'courses');
SELECT pdp.grant_consent(id, 'marketing', evidence => '{"form": "signup-v3"}') FROM lms.users WHERE id % 2 = 0;
SELECT pdp.protect_table('lms.enrolments');
\o
SELECT purpose, legal_basis, requires_consent, restriction_exempt, allowed_roles FROM pdp.purposes ORDER BY 1;
SET ROLE lms_app;
\echo 'As lms_app with no purpose declared, the table is empty (fail closed):'
SELECT count(*) AS enrolments_visible FROM lms.enrolments;
SELECT tour.try($$SET pdp.purpose = 'legal claims'$$) AS "lms_app declares legal claims";
SET pdp.purpose = 'courses';
SELECT count(*) AS "enrolments visible for courses" FROM lms.enrolments;
SET pdp.purpose = 'marketing';
SELECT count(*) AS "enrolments visible for marketing" FROM lms.enrolments;
SELECT count(*) AS "learner 2's enrolments, marketing" FROM lms.enrolments WHERE user_id = 2;
RESET ROLE;
\echo 'Learner 2 withdraws consent to marketing:'
SELECT pdp.withdraw_consent(2, 'marketing');
SET ROLE lms_app;
SET pdp.purpose = 'marketing';
SELECT count(*) AS "enrolments visible for marketing" FROM lms.enrolments;
SELECT count(*) AS "learner 2's enrolments, marketing" FROM lms.enrolments WHERE user_id = 2;
RESET ROLE;
\echo 'On a Citus coordinator, pdp.citus_sync_state() mirrors purposes, grants, consents and restrictions to every'
\echo 'worker, so such a withdrawal holds there at the next statement (doc/scaling.md). Here there is no Citus:'
SELECT tour.try($$SELECT pdp.citus_sync_state()$$) AS "mirror the consent state to Citus workers";
\echo 'Learner 4 asks for restriction: hidden for courses too, and their rows cannot be changed:'
SELECT pdp.restrict_subject(4, 'accuracy contested');
SET ROLE lms_app;
SET pdp.purpose = 'courses';
SELECT count(*) AS "learner 4's enrolments, courses" FROM lms.enrolments WHERE user_id = 4;
RESET ROLE;
SELECT tour.try($$UPDATE lms.enrolments SET course_id = 1 WHERE user_id = 4$$) AS "owner updates learner 4";
\echo 'The application changing learner 4''s rows gets an error, never a silent "0 rows changed":'
SET ROLE lms_app;
SET pdp.purpose = 'courses';
SELECT tour.try($$UPDATE lms.enrolments SET course_id = 1 WHERE user_id = 4$$) AS "lms_app updates learner 4";
\echo 'Under a consent purpose, INSERT ... RETURNING (every Moodle insert) returns the new row:'
SET pdp.purpose = 'marketing';
INSERT INTO lms.enrolments (user_id, course_id, enrolled_at) VALUES (3, 1, now()) RETURNING user_id, course_id;
RESET ROLE;
\echo 'Protection applies to the table owner too; a maintenance purpose (audited) is for migrations and cron:'
SELECT pdp.define_maintenance_purpose('upgrades', 'LMS upgrades and scheduled tasks') AS "maintenance purpose defined";
SELECT c.relname AS "table", c.relforcerowsecurity AS "owner bound by the policies" FROM pg_class c WHERE c.oid = 'lms.enrolments'::regclass;
SELECT purpose, action, evidence FROM pdp.consent_history(2);
\echo 'Protection cannot be switched off behind pdp''s back: DDL that weakens it is refused, whoever runs it:'
SELECT tour.try($$ALTER TABLE lms.enrolments DISABLE ROW LEVEL SECURITY$$) AS "disable row-level security";
SELECT tour.try($$DROP POLICY pdp_select ON lms.enrolments$$) AS "drop pdp's policy";
\echo 'A platform adopting pdp_ext imports its existing newsletter consents in one call, all or nothing:'
SELECT pdp.import_consents(ARRAY(SELECT ROW(id::text, 'marketing', now(), NULL, jsonb_build_object('source', 'legacy newsletter table'), NULL)::pdp.consent_import
                                   FROM lms.users WHERE id % 2 = 1 AND id > 2)) AS "consents imported";
SELECT tour.try($$SELECT pdp.import_consents(ARRAY[ROW('3', 'marketing', now() + interval '1 day', NULL, '{}', NULL)]::pdp.consent_import[])$$) AS "a row dated tomorrow";
SELECT pdp.withdraw_consents(ARRAY(SELECT id::text FROM lms.users WHERE id % 2 = 1 AND id > 2), 'marketing') AS "withdrawn again, set-based";
SELECT tour.try($$SELECT pdp.publish_policy('v2', now() + interval '9 days', repeat('a', 64))$$) AS "policy effective in 9 days";
\echo 'Large scans run as parallel plans: the consent check runs inside the workers, with the same answer:'
SET ROLE lms_app;
SET pdp.purpose = 'courses';
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT count(*) FROM lms.enrolments;
SELECT count(*) AS "enrolments visible for courses, parallel plan" FROM lms.enrolments;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET ROLE;
RESET pdp.purpose;

\echo '=== 6. Retention and purges ================================================'
\echo 'The activity log keeps 3 years from each entry; one learner with old entries is under a legal hold:'
\o /dev/null
SELECT pdp.set_retention('lms.activity_log', '3 years', 'at');
SELECT actor_id AS held FROM lms.activity_log WHERE at < now() - interval '3 years' ORDER BY id LIMIT 1 \gset
SELECT pdp.place_hold(:held, 'dispute about a certificate');
\o
SELECT count(*) FILTER (WHERE pdp._expiry(at, '3 years') < now()) AS expired,
       count(*) FILTER (WHERE pdp._expiry(at, '3 years') < now() AND (actor_id = :held OR affected_user_id = :held)) AS "expired but held",
       count(*) AS "log entries" FROM lms.activity_log;
SELECT * FROM pdp.purge_expired(dry_run => true);
\echo 'A run that would remove more than pdp.purge_max_share (default 10%) of a table''s rows is held back (below).'
\echo 'This purge of the 3-year-old log is expected, so the tour lets it through whatever its share:'
SET pdp.purge_max_share = 1;
CALL pdp.purge();
RESET pdp.purge_max_share;
SELECT count(*) FILTER (WHERE pdp._expiry(at, '3 years') < now()) AS "expired left (held)",
       count(*) AS "log entries now" FROM lms.activity_log;
SELECT status, rows, total_rows FROM pdp.purge_log ORDER BY id DESC LIMIT 1;
\echo 'On Citus, distributed and reference tables with such a retention (anchor column, action delete) are purged'
\echo 'the same way, by primary key, shard by shard on the workers; what is not done there is skipped with a warning (doc/scaling.md).'
\echo 'Anchors in epoch seconds, as Moodle writes them: 0 means never by default, and a fallback column takes over'
\echo '(a certificate kept 3 years after completion; never completed: 3 years after enrolment):'
\o /dev/null
CREATE TABLE lms.certificates (id bigint PRIMARY KEY, learner bigint NOT NULL, completed bigint NOT NULL DEFAULT 0,
                               enrolled bigint NOT NULL);
INSERT INTO lms.certificates VALUES
  (1, 2, extract(epoch FROM now() - interval '4 years')::bigint, extract(epoch FROM now() - interval '5 years')::bigint),
  (2, 3, 0, extract(epoch FROM now() - interval '4 years')::bigint),
  (3, 4, 0, extract(epoch FROM now() - interval '1 month')::bigint);
SELECT pdp.register_table('lms.certificates', 'learner');
SELECT pdp.set_retention('lms.certificates', '3 years', 'completed', fallback_column => 'enrolled');
\o
SELECT table_name, anchor_column, never_values, fallback_column FROM pdp.retention_policies WHERE table_name = 'lms.certificates'::regclass;
SELECT * FROM pdp.purge_expired(dry_run => true) WHERE table_name = 'lms.certificates'::regclass;
\echo 'Inactivity: a learner not seen for 3 years expires everywhere; one never seen (NULL) counts from when the'
\echo 'account was made.  System subjects (here account 1, an administrator) are never purged:'
\o /dev/null
SELECT pdp.declare_system_subject('1', 'site administrator');
SELECT pdp.set_subject_retention('3 years', 'lms.users', 'last_seen_at', fallback_column => 'created_at');
\o
SELECT rows AS "learners inactive for 3 years" FROM pdp.purge_expired(dry_run => true) WHERE table_name = 'lms.users'::regclass;
\echo 'That is more than pdp.purge_max_share of the learners: the purge holds it back, warns, and records what it'
\echo 'would have done (the tour rolls this back; a larger share for one run would let it through):'
BEGIN;
SELECT * FROM pdp.purge_expired();
SELECT held_back FROM pdp.purge_log WHERE id IS NOT NULL ORDER BY id DESC LIMIT 1;
\echo 'Let through, the purge deletes what the inactive learners own and, in the rows it keeps (log entries about'
\echo 'them written by others, their grades and forum posts), cuts their links as erasure would ("cut links"):'
SET LOCAL pdp.purge_max_share = 1;
SELECT table_name, action, rows FROM pdp.purge_expired() ORDER BY 1, 2;
ROLLBACK;
\o /dev/null
SELECT pdp.drop_subject_retention();
\o
\echo 'schedule_purge first checks that pg_cron can run the job (cron.host, pg_hba.conf), or says exactly what to set:'
SELECT ok AS "pg_cron can run it", coalesce(problem, '-') AS problem, coalesce(fix, '-') AS "what to set" FROM pdp._cron_check(current_user);
SELECT CASE WHEN ok THEN pdp.schedule_purge('17 3 * * *') END AS "pg_cron job" FROM pdp._cron_check(current_user);
SELECT jobname, schedule, command FROM cron.job;

\echo '=== 7. Subject rights ========================================================'
\echo 'Learner 6 was disclosed to two recipients, one abroad; then their e-mail is corrected:'
\o /dev/null
SELECT pdp.define_recipient('Kazpost SMS', 'KZ', NULL, 'SMS reminders');
SELECT pdp.define_recipient('Google Analytics', 'US', 'SCC', 'site analytics');
SELECT pdp.record_disclosure(6, 'Kazpost SMS', 'courses', '{phone}');
SELECT pdp.record_disclosure(6, 'Google Analytics', 'marketing', '{email}');
\o
SELECT name, country, cross_border, safeguards FROM pdp.recipients ORDER BY name;
UPDATE lms.users SET email = 'learner6.new@example.kz' WHERE id = 6;
SELECT recipient, country, table_name, columns FROM pdp.pending_notices ORDER BY recipient;
\echo 'Their access request, and the export (a few parts shown):'
SELECT pdp.open_request(6, 'access') AS request;
SELECT key AS "export part", CASE jsonb_typeof(value) WHEN 'array' THEN jsonb_array_length(value)::text
                                                     WHEN 'object' THEN (SELECT count(*) FROM jsonb_object_keys(value))::text
                                                     ELSE value #>> '{}' END AS "size or value"
  FROM jsonb_each(pdp.export_subject(6)) ORDER BY 1;
SELECT pdp.export_subject(6)->'data'->'lms.users'->0->'password_hash' AS "exported password_hash";
\echo 'Before erasing: where do learner 6''s e-mail, phone, IIN and name appear, registered or not? (counts, never values; a name may also be another learner''s)'
SELECT table_name, column_name, rows, registered FROM pdp.find_subject_traces(6) ORDER BY table_name::text, column_name;
\echo 'Tutors'' notes are crypto-shredded: each is encrypted under its learner''s own key, which lives outside the database:'
CREATE TABLE lms.tutor_notes (id serial PRIMARY KEY, learner bigint NOT NULL, note text);
\o /dev/null
SELECT pdp.register_table('lms.tutor_notes', 'learner');
SELECT pdp.set_column_rule('lms.tutor_notes', 'note', 'shred');
SELECT pdp.pseudonymise_on_write('lms.tutor_notes');
\o
INSERT INTO lms.tutor_notes (learner, note) VALUES (6, 'needs extra time in exams'), (7, 'prefers evening sessions');
CREATE TABLE tour.notes_copy AS SELECT * FROM lms.tutor_notes;   -- as a backup or a dump would hold them
SELECT learner, left(note, 20) || '...' AS stored, pdp.unshred('lms.tutor_notes', 'note', note, learner::text) AS "read in clear"
  FROM lms.tutor_notes ORDER BY learner;
\echo 'Grades are kept when their learner is erased, cut from them; what stays must not be linkable back (never a keyed pseudonym):'
SELECT pdp.set_anonymisation('lms.grades', 'graded_at', 'generalise', granularity => 'month');
\echo 'A held learner cannot be erased; learner 6 can, and leaves only a receipt (with sweep: where their identifiers still are):'
SELECT tour.try(format('SELECT pdp.erase_subject(%s, %L)', :held, 'asked')) AS "erase the held learner";
SELECT jsonb_pretty(pdp.erase_subject(6, 'learner asked for erasure', sweep => true) - 'erased_at') AS "erasure receipt";
\echo 'The erasure destroyed learner 6''s key (the receipt''s subject_keys): the copy taken before no longer decrypts their note:'
SELECT learner, coalesce(pdp.unshred('lms.tutor_notes', 'note', note, learner::text), '(key destroyed)') AS "copy read in clear"
  FROM tour.notes_copy ORDER BY learner;
SELECT jsonb_pretty(pdp.export_subject(6) - 'generated_at' - 'erasure_receipt') AS "export after erasure (less the receipt)";
\echo 'Each recipient of learner 6''s data is to be told of the erasure; pdp''s own tables keep only a pseudonym:'
SELECT kind, recipient, subject FROM pdp.pending_notices WHERE kind = 'erasure' ORDER BY recipient;
SELECT count(*) AS "recipients told" FROM (SELECT pdp.acknowledge_notice(id) FROM pdp.pending_notices WHERE kind = 'erasure') x;
SELECT action, evidence, left(subject, 12) || '...' AS subject FROM pdp.consent_event WHERE subject LIKE '~erased:%' ORDER BY id LIMIT 3;

\echo '=== 8. Audit trail ============================================================'
SELECT action, count(*) FROM pdp.audit_log GROUP BY action ORDER BY count(*) DESC, action LIMIT 8;
SELECT id, role, action, object, subject_pseudonym FROM pdp.audit_log WHERE action = 'withdraw_consent';
SELECT * FROM pdp.verify_audit_log();
\echo 'On a Citus coordinator, nodes holds each worker''s own verification and reversals (collected on read; doc/scaling.md).'
SELECT tour.try($$DELETE FROM pdp.audit_log$$) AS "the owner deletes the audit log";
\echo 'The chain is keyed (a MAC per seal under the key file); its head is published as an anchor:'
SELECT entry_id, seq, left(encode(hash, 'hex'), 16) AS hash, left(encode(mac, 'hex'), 16) AS mac FROM pdp.audit_head();
SELECT pdp.publish_audit_anchor() AS anchor;
\echo 'Reads of lms.payments are logged from now on (time, role, purpose, rows; never a value):'
SELECT pdp.audit_reads('lms.payments');
SELECT count(*) FROM lms.payments;
\echo 'COPY ... TO (here to STDOUT, discarded) is recorded too, as command COPY:'
\o /dev/null
COPY lms.payments TO STDOUT;
\o
SELECT pg_sleep(0.6);
SELECT role, object, details->>'command' AS command, details->>'purpose' AS purpose, details->>'count' AS statements,
       details->'rows' AS rows, details->'returned' AS returned
  FROM pdp.audit_log WHERE action = 'read' ORDER BY id DESC LIMIT 2;
SELECT pdp.audit_reads('lms.payments', false);

\echo '=== 9. Register, discovery and the report ====================================='
SELECT table_name, column_name, category, rule, retention, protection FROM pdp.processing_register ORDER BY 1::text, 2;
\echo 'Discovery: the payments table''s card numbers are classified; what else holds personal data?'
SELECT table_name, column_name, attribute, category, confidence, evidence FROM pdp.discover('lms', 200)
 ORDER BY confidence DESC, 1::text, 2;
\echo 'k-anonymity: the smallest group of grades sharing their quasi-identifiers; the report flags tables below pdp.min_k:'
SELECT pdp.declare_quasi_identifiers('lms.grades', '{grade,graded_at}') AS "quasi-identifiers declared";
SELECT pdp.k_anonymity('lms.grades', '{grade}') AS "k (grade)", pdp.k_anonymity('lms.grades', '{grade,graded_at}') AS "k (grade, graded_at)",
       current_setting('pdp.min_k') AS "pdp.min_k";
\echo 'Columns of registered tables nobody classified are a list to review, not findings:'
SELECT table_name, count(*) AS columns_without_rule FROM pdp.unclassified_columns GROUP BY 1 ORDER BY 1::text;
\pset format unaligned
\pset tuples_only on
\o :report_file
SELECT pdp.report('html');
\o
\pset format aligned
\pset tuples_only off
\echo 'The compliance report was written to' :report_file

\echo 'LMS profiles (doc/profiles.md): what pdp.apply_profile(''moodle'') would do here (no Moodle tables, so mostly skipped):'
SELECT status, detail, count(*) FROM pdp.apply_profile('moodle', dry_run => true) GROUP BY 1, 2 ORDER BY 1, 2;

\echo '=== 10. Roles =================================================================='
\echo 'An application role may not configure pdp_ext:'
SET ROLE lms_app;
SELECT tour.try($$SELECT pdp.register_table('lms.courses', 'id')$$) AS "lms_app registers a table";
RESET ROLE;

\echo
\echo 'Tour done.  Next: make test.'
