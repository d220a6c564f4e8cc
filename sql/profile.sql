-- LMS profiles: pdp.apply_profile reads a profile shipped with pdp_ext and
-- turns it into pdp API calls (doc/profiles.md).  A tiny Moodle-shaped
-- schema here; test/moodle runs the profile against a real Moodle.
\set SHOW_CONTEXT never
\set VERBOSITY terse

-- Bad names and missing profiles: clear errors, nothing read.
SELECT * FROM pdp.apply_profile(NULL);
SELECT * FROM pdp.apply_profile('moodle', NULL);
SELECT * FROM pdp.apply_profile('../../../../etc/passwd');
SELECT * FROM pdp.apply_profile('Moodle');
SELECT * FROM pdp.apply_profile('');
SELECT * FROM pdp.apply_profile('no_such_lms');

-- A database without Moodle: the purposes apply, every table step is
-- skipped and says why, nothing fails.
SELECT status, detail, count(*) FILTER (WHERE status = 'would run') AS would_run
  FROM pdp.apply_profile('moodle', true) GROUP BY 1, 2 ORDER BY 1, 2;

-- A small Moodle: some of its tables, a site administrator, profile fields.
CREATE ROLE regress_moodle LOGIN;
GRANT pdp_admin TO regress_moodle;
CREATE SCHEMA moodle_regress AUTHORIZATION regress_moodle;
GRANT CREATE ON SCHEMA public TO regress_moodle;
SET ROLE regress_moodle;
SET search_path = moodle_regress, public;
CREATE TABLE mdl_user (id bigint PRIMARY KEY, username varchar(100) NOT NULL DEFAULT '', password varchar(255) NOT NULL DEFAULT '',
                       email varchar(100) NOT NULL DEFAULT '', lastaccess bigint NOT NULL DEFAULT 0,
                       timecreated bigint NOT NULL DEFAULT 0);
CREATE TABLE mdl_config (id bigint PRIMARY KEY, name varchar(255) NOT NULL, value text NOT NULL);
INSERT INTO mdl_config VALUES (1, 'siteadmins', '2,5'), (2, 'siteguest', '1'), (3, 'theme', 'boost');
CREATE TABLE mdl_user_info_field (id bigint PRIMARY KEY, shortname varchar(255) NOT NULL);
INSERT INTO mdl_user_info_field VALUES (7, 'iin'), (9, 'mobile'), (11, 'shoesize');
CREATE TABLE mdl_user_info_data (id bigint PRIMARY KEY, userid bigint NOT NULL DEFAULT 0, fieldid bigint NOT NULL DEFAULT 0,
                                 data text NOT NULL);
CREATE TABLE mdl_grade_grades (id bigint PRIMARY KEY, userid bigint NOT NULL DEFAULT 0, usermodified bigint);
RESET ROLE;

-- The profile's schema is public; this test's tables live elsewhere, so look
-- at the steps the profile would take on them through a copy of its document.
SELECT s.kind, s.what, s.skip
  FROM pdp._profile_steps(jsonb_set(pdp._profile_source('moodle')::jsonb, '{schema}', '"moodle_regress"')) s
 WHERE s.skip IS DISTINCT FROM 'table is missing' AND s.skip IS DISTINCT FROM 'table or column is missing'
 ORDER BY s.step;

-- The real thing, on public: as the tables' owner, twice.  The second run
-- changes nothing.  One column is registered beforehand with another action:
-- reported as differing, left alone.
SET ROLE regress_moodle;
RESET search_path;
CREATE TABLE public.mdl_user (id bigint PRIMARY KEY, username varchar(100) NOT NULL DEFAULT '', email varchar(100) NOT NULL DEFAULT '',
                              password varchar(255) NOT NULL DEFAULT '', lastaccess bigint NOT NULL DEFAULT 0,
                              timecreated bigint NOT NULL DEFAULT 0);
CREATE TABLE public.mdl_user_preferences (id bigint PRIMARY KEY, userid bigint, name varchar(255), value text);
SELECT pdp.register_table('public.mdl_user_preferences', 'userid', 'anonymise');
SELECT what, status, detail FROM pdp.apply_profile('moodle')
 WHERE status NOT IN ('skipped') ORDER BY step;  -- in the profile's order
SELECT status, count(*) FROM pdp.apply_profile('moodle') WHERE status <> 'skipped' GROUP BY 1 ORDER BY 1;
SELECT tbl, col, on_erase FROM pdp.subject_column WHERE tbl::text LIKE 'mdl_%' ORDER BY 1, 2;
SELECT tbl, col, rule, category FROM pdp.column_rule WHERE tbl::text LIKE 'mdl_%' ORDER BY 1, 2;
SELECT purpose, legal_basis, allowed_roles FROM pdp.purposes WHERE purpose LIKE 'moodle%' ORDER BY 1;
RESET ROLE;

-- Only pdp_admin applies profiles.
CREATE ROLE regress_nobody;
SET ROLE regress_nobody;
SELECT * FROM pdp.apply_profile('moodle', true);
RESET ROLE;

-- Clean up.
SELECT pdp.unprotect_table('public.mdl_user');
SELECT pdp.unprotect_table('public.mdl_user_preferences');
SELECT pdp.drop_column_rule('public.mdl_user', c) FROM unnest(ARRAY['username', 'email']) c;
SELECT pdp.unregister_table('public.mdl_user');
SELECT pdp.unregister_table('public.mdl_user_preferences');
DROP TABLE public.mdl_user, public.mdl_user_preferences;
DROP SCHEMA moodle_regress CASCADE;
DELETE FROM pdp.purpose_grant WHERE role = 'regress_moodle'::regrole;
DELETE FROM pdp.purpose WHERE purpose LIKE 'moodle%';
REVOKE pdp_admin FROM regress_moodle;
REVOKE CREATE ON SCHEMA public FROM regress_moodle;
DROP ROLE regress_moodle, regress_nobody;
