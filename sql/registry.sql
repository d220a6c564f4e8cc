\set SHOW_CONTEXT never
-- Subject registry: registration, bad inputs, renames, drops.
CREATE SCHEMA "LMS data";
CREATE TABLE "LMS data"."Users ""Main""" (
    "User ID" bigint PRIMARY KEY,
    email text,
    score numeric
);
CREATE TABLE "LMS data".activity_log (
    id bigserial PRIMARY KEY,
    actor_id integer,
    affected_user text,
    session uuid,
    nick varchar(40),
    at timestamptz DEFAULT now()
);

-- Each supported type, and two subject columns on one table.
SELECT pdp.register_table('"LMS data"."Users ""Main"""', 'User ID');
SELECT pdp.register_table('"LMS data".activity_log', 'actor_id');
SELECT pdp.register_table('"LMS data".activity_log', 'affected_user');
SELECT pdp.register_table('"LMS data".activity_log', 'session');
SELECT pdp.register_table('"LMS data".activity_log', 'nick');
SELECT table_name, schema_name, relation_name, subject_column, subject_type, on_erase
  FROM pdp.registered_tables ORDER BY 1, 4;

-- Bad inputs: each a clear error with an SQLSTATE, and nothing changed.
\set VERBOSITY sqlstate
SELECT pdp.register_table('"LMS data".activity_log', 'actor_id');              -- twice
SELECT pdp.register_table('"LMS data".activity_log', 'no such column');        -- unknown column
SELECT pdp.register_table('"LMS data".no_such_table', 'id');                   -- unknown table
SELECT pdp.register_table(999999999::oid::regclass, 'id');                     -- dangling OID
SELECT pdp.register_table('"LMS data"."Users ""Main"""', 'score');             -- unsupported type
SELECT pdp.register_table('"LMS data".activity_log', 'ctid');                  -- system column
SELECT pdp.register_table(NULL, 'id');
SELECT pdp.register_table('"LMS data".activity_log', NULL);
SELECT pdp.register_table('"LMS data".activity_log', 'at', NULL);
SELECT pdp.register_table('"LMS data"."Users ""Main"""', 'email', 'shred');    -- unknown action
SELECT pdp.register_table('"LMS data"."Users ""Main"""', 'email', 'set_value'); -- set_value needs an erase_value
SELECT pdp.register_table('"LMS data"."Users ""Main"""', 'email', 'keep', 'x'); -- an erase_value only with set_value
SELECT pdp.register_table('pdp.subject_column', 'col');                         -- pdp's own table
SELECT pdp.register_table('pg_catalog.pg_class', 'relname');                    -- system catalog
CREATE VIEW "LMS data".user_view AS SELECT * FROM "LMS data"."Users ""Main""";
SELECT pdp.register_table('"LMS data".user_view', 'User ID');                   -- not a table
SELECT pdp.register_table('"LMS data".activity_log', 'x''; DROP TABLE pdp.subject_column; --');
SELECT pdp.unregister_table('"LMS data".user_view');                            -- not registered
SELECT pdp.unregister_table('"LMS data".activity_log', 'at');                   -- column not registered
SELECT pdp.unregister_table(NULL);
\set VERBOSITY default
SELECT count(*) AS still_five FROM pdp.registered_tables;

-- Error messages name the rule and the identifiers, nothing else.
SELECT pdp.register_table('"LMS data"."Users ""Main"""', 'score');

-- Renames are followed, of tables, schemas and columns.
ALTER TABLE "LMS data"."Users ""Main""" RENAME COLUMN "User ID" TO "Learner ID";
ALTER TABLE "LMS data"."Users ""Main""" RENAME TO learners;
ALTER SCHEMA "LMS data" RENAME TO lms;
SELECT table_name, subject_column, subject_type FROM pdp.registered_tables ORDER BY 1, 2;
SELECT col, attnum FROM pdp.subject_column WHERE tbl = 'lms.learners'::regclass;

-- A subject column may not become an unsupported type; allowed changes are fine.
ALTER TABLE lms.activity_log ALTER COLUMN actor_id TYPE numeric;
ALTER TABLE lms.activity_log ALTER COLUMN actor_id TYPE bigint;
SELECT subject_type FROM pdp.registered_tables WHERE subject_column = 'actor_id';

-- Dropping a column or a table forgets its registrations.
ALTER TABLE lms.activity_log DROP COLUMN nick;
SELECT subject_column FROM pdp.registered_tables WHERE table_name = 'lms.activity_log'::regclass ORDER BY 1;
-- Unregister one column, then the rest.
SELECT pdp.unregister_table('lms.activity_log', 'session');
SELECT pdp.unregister_table('lms.activity_log');
SELECT count(*) FROM pdp.registered_tables WHERE table_name = 'lms.activity_log'::regclass;

-- Partitioned tables register; DROP SCHEMA ... CASCADE cleans up.
CREATE TABLE lms.grades (learner bigint, grade int) PARTITION BY RANGE (grade);
SELECT pdp.register_table('lms.grades', 'learner', 'anonymise');
DROP TABLE lms.learners CASCADE;
SELECT table_name, on_erase FROM pdp.registered_tables;
DROP SCHEMA lms CASCADE;
SELECT count(*) AS left_over FROM pdp.subject_column;
