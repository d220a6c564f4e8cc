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

\echo '=== 3. Subject registry ======================================================='
\echo 'Tell pdp_ext where each learner''s rows are.  The activity log names a learner twice.'
\o /dev/null
SELECT pdp.register_table('lms.users', 'id');
SELECT pdp.register_table('lms.enrolments', 'user_id');
SELECT pdp.register_table('lms.grades', 'user_id', 'anonymise');
SELECT pdp.register_table('lms.payments', 'user_id');
SELECT pdp.register_table('lms.forum_posts', 'author_id', 'anonymise');
SELECT pdp.register_table('lms.activity_log', 'actor_id');
SELECT pdp.register_table('lms.activity_log', 'affected_user_id');
\o
SELECT table_name, subject_column, subject_type, on_erase FROM pdp.registered_tables ORDER BY 1::text, 2;

\echo 'The registry follows renames; a mistake is refused with an SQLSTATE and changes nothing:'
ALTER TABLE lms.forum_posts RENAME COLUMN author_id TO written_by;
SELECT table_name, subject_column FROM pdp.registered_tables WHERE table_name = 'lms.forum_posts'::regclass;
SELECT tour.try($$SELECT pdp.register_table('lms.users', 'id')$$) AS "register lms.users.id again"
UNION ALL SELECT tour.try($$SELECT pdp.register_table('lms.payments', 'amount_kzt')$$)
UNION ALL SELECT tour.try($$SELECT pdp.register_table('lms.no_such_table', 'id')$$);

\echo '=== 4. Roles =================================================================='
\echo 'An application role may not configure pdp_ext:'
CREATE ROLE lms_app;
GRANT USAGE ON SCHEMA tour, lms TO lms_app;
SET ROLE lms_app;
SELECT tour.try($$SELECT pdp.register_table('lms.courses', 'id')$$) AS "lms_app registers a table";
RESET ROLE;

\echo
\echo 'Tour done.  Next: make test.'
