-- pgTAP: escalation through pdp_ext (issue 14, classes 1 and 2).
--
-- Class 1: a pdp_admin member who owns tables (esc_owner) attaches code to
-- them (a row trigger, a DML rule, a DEFAULT, an index expression, a
-- generated column, an RLS policy function, a cast to json, and a "_RETURN" rule that turns
-- a registered table into a view) which tries to become superuser, to read
-- the key file and to unregister a superuser's table, and notes in a marker
-- table who it ran as.  Then erasure, export, purge, masked views, the
-- report and discovery are called by that member, by a DPO (a pdp_admin
-- member who owns none of them, esc_dpo) and by a superuser.  Afterwards no
-- role gained a privilege, the trap ran only as the table's owner, and no key
-- byte was read.  (CALL pdp.purge and CALL pdp.apply_rules commit, so they
-- cannot run in this transaction: test/tap/014_escalation.pl runs them,
-- and a superuser's pg_cron job.)
--
-- Class 2: direct writes to pdp's tables, by pdp_admin, pdp_auditor and
-- application roles, are refused.  All of it is rolled back.
BEGIN;
SELECT plan(43);

-- (Both read the registers too, as the report needs: pdp_auditor.)
CREATE ROLE esc_owner IN ROLE pdp_admin, pdp_auditor;
CREATE ROLE esc_dpo IN ROLE pdp_admin, pdp_auditor;
CREATE ROLE esc_auditor IN ROLE pdp_auditor;
CREATE ROLE esc_app;
CREATE SCHEMA esc AUTHORIZATION esc_owner;
GRANT USAGE ON SCHEMA esc TO PUBLIC;
CREATE TEMP TABLE esc_supers AS SELECT rolname FROM pg_roles WHERE rolsuper;
GRANT SELECT ON esc_supers TO PUBLIC;

-- A superuser's table, which the trap tries to unregister.
CREATE TABLE public.esc_victim (id bigint PRIMARY KEY);
SELECT pdp.register_table('public.esc_victim', 'id');

-- The trap, made by its owner.
SET ROLE esc_owner;
CREATE TABLE esc.marker (id serial, who name, kind text, what text);
GRANT ALL ON esc.marker TO PUBLIC;
GRANT ALL ON SEQUENCE esc.marker_id_seq TO PUBLIC;
CREATE FUNCTION esc.trap(kind text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO esc.marker (who, kind, what) VALUES (current_user, kind, 'ran');
    BEGIN
        EXECUTE 'ALTER ROLE esc_owner SUPERUSER';
        INSERT INTO esc.marker (who, kind, what) VALUES (current_user, kind, 'became superuser');
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        INSERT INTO esc.marker (who, kind, what)
        VALUES (current_user, kind, 'key ' || pg_read_file(current_setting('pdp.key_file')));
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        PERFORM pdp.unregister_table('public.esc_victim');
        INSERT INTO esc.marker (who, kind, what) VALUES (current_user, kind, 'unregistered the victim');
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END
$$;
-- Index expressions and generated columns must be IMMUTABLE: a lie.
CREATE FUNCTION esc.trap_imm(kind text, v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN esc.trap(kind) THEN v END $$;
CREATE FUNCTION esc.trap_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM esc.trap('trigger');
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

-- A type of its own with a cast to json, which to_jsonb (export) calls.
CREATE TYPE esc.mood AS ENUM ('calm');
CREATE FUNCTION esc.mood_json(esc.mood) RETURNS json LANGUAGE plpgsql AS $$ BEGIN PERFORM esc.trap('cast'); RETURN '"calm"'; END $$;
CREATE CAST (esc.mood AS json) WITH FUNCTION esc.mood_json(esc.mood);
CREATE TABLE esc.t_trigger (id serial PRIMARY KEY, learner bigint, at timestamptz DEFAULT '2000-01-01', mood esc.mood DEFAULT 'calm');
CREATE TRIGGER esc_trap BEFORE UPDATE OR DELETE ON esc.t_trigger FOR EACH ROW EXECUTE FUNCTION esc.trap_trigger();
CREATE TABLE esc.t_dmlrule (id serial PRIMARY KEY, learner bigint, at timestamptz DEFAULT '2000-01-01');
CREATE RULE esc_trap AS ON DELETE TO esc.t_dmlrule DO ALSO SELECT esc.trap('dml rule');
CREATE TABLE esc.t_default (id serial PRIMARY KEY, learner bigint, at timestamptz DEFAULT '2000-01-01',
                            note text DEFAULT esc.trap_imm('default', 'x'));
CREATE TABLE esc.t_index (id serial PRIMARY KEY, learner bigint, email text, at timestamptz DEFAULT '2000-01-01');
CREATE INDEX ON esc.t_index (esc.trap_imm('index', email));
CREATE TABLE esc.t_generated (id serial PRIMARY KEY, learner bigint, email text, at timestamptz DEFAULT '2000-01-01',
                              g text GENERATED ALWAYS AS (esc.trap_imm('generated', email)) STORED);
CREATE TABLE esc.t_policy (id serial PRIMARY KEY, learner bigint, at timestamptz DEFAULT '2000-01-01');
ALTER TABLE esc.t_policy ENABLE ROW LEVEL SECURITY;
ALTER TABLE esc.t_policy FORCE ROW LEVEL SECURITY;
CREATE POLICY esc_trap ON esc.t_policy USING (esc.trap('policy'));

SELECT pdp.register_table('esc.t_trigger', 'learner');
SELECT pdp.register_table('esc.t_dmlrule', 'learner');
SELECT pdp.register_table('esc.t_default', 'learner');
SELECT pdp.register_table('esc.t_index', 'learner', on_erase => 'anonymise');
SELECT pdp.register_table('esc.t_generated', 'learner', on_erase => 'anonymise');
SELECT pdp.register_table('esc.t_policy', 'learner');
SELECT pdp.set_column_rule('esc.t_index', 'email', 'mask', 'email');
SELECT pdp.set_column_rule('esc.t_generated', 'email', 'mask', 'email');
SELECT pdp.set_retention(t, '1 year', 'at') FROM unnest(ARRAY['esc.t_trigger', 'esc.t_dmlrule', 'esc.t_default', 'esc.t_policy']::regclass[]) t;
SELECT pdp.set_retention(t, '1 year', 'at', 'anonymise') FROM unnest(ARRAY['esc.t_index', 'esc.t_generated']::regclass[]) t;

-- Learners 41, 42, 43 (erased by the owner, the DPO, the superuser), 44 (exported).
CREATE FUNCTION esc.fill() RETURNS void LANGUAGE sql AS $$
    INSERT INTO esc.t_trigger (learner) SELECT g FROM generate_series(41, 44) g;
    INSERT INTO esc.t_dmlrule (learner) SELECT g FROM generate_series(41, 44) g;
    INSERT INTO esc.t_default (learner) SELECT g FROM generate_series(41, 44) g;
    INSERT INTO esc.t_index (learner, email) SELECT g, 'l' || g || '@mail.kz' FROM generate_series(41, 44) g;
    INSERT INTO esc.t_generated (learner, email) SELECT g, 'l' || g || '@mail.kz' FROM generate_series(41, 44) g;
    INSERT INTO esc.t_policy (learner) SELECT g FROM generate_series(41, 44) g;
$$;
SELECT esc.fill();
RESET ROLE;
GRANT SELECT ON ALL TABLES IN SCHEMA esc TO esc_dpo;

-- What the trap did while its owner set it up is not an attack.
TRUNCATE esc.marker;

-- Runs one call as the current role and says what the traps it tripped
-- gained: a new superuser, a trap run as another role than the owner, the
-- key file read, the victim unregistered, or the call's own error.  NULL:
-- nothing (the attack failed).
CREATE FUNCTION pg_temp.esc_attack(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    mark integer := (SELECT coalesce(max(id), 0) FROM esc.marker);
    bad text;
BEGIN
    BEGIN
        EXECUTE stmt;
    EXCEPTION WHEN OTHERS THEN
        RETURN 'the call failed: ' || SQLSTATE || ' ' || SQLERRM;
    END;
    SELECT string_agg(x, '; ') INTO bad FROM (
        SELECT 'became superuser: ' || rolname AS x FROM pg_roles WHERE rolsuper AND rolname NOT IN (SELECT rolname FROM esc_supers)
        UNION ALL
        SELECT DISTINCT pg_catalog.format('%s trap ran as %s: %s', kind, who, left(what, 20)) FROM esc.marker
         WHERE id > mark AND (who <> 'esc_owner' OR what <> 'ran')
        UNION ALL
        SELECT 'the victim was unregistered' WHERE NOT EXISTS (SELECT 1 FROM pdp.subject_column WHERE tbl = 'public.esc_victim'::regclass)) y;
    RETURN bad;
END
$$;

-- 1. Erasure, export, purge, masked views, report and discovery over the trap tables.
SET ROLE esc_owner;
SELECT is(pg_temp.esc_attack($$SELECT pdp.export_subject(44)$$), NULL, 'attack: the tables'' owner exports a learner through its trap tables');
SELECT is(pg_temp.esc_attack($$SELECT pdp.erase_subject(41, 'request')$$), NULL, 'attack: the tables'' owner erases a learner through its trap tables');
SET ROLE esc_dpo;
SELECT is(pg_temp.esc_attack($$SELECT pdp.export_subject(44)$$), NULL, 'attack: a DPO''s export of a learner trips the traps');
SELECT is(pg_temp.esc_attack($$SELECT pdp.erase_subject(42, 'request')$$), NULL, 'attack: a DPO''s erasure of a learner trips the traps');
RESET ROLE;
SELECT is(pg_temp.esc_attack($$SELECT pdp.export_subject(44)$$), NULL, 'attack: a superuser''s export of a learner trips the traps');
SELECT is(pg_temp.esc_attack($$SELECT pdp.erase_subject(43, 'request')$$), NULL, 'attack: a superuser''s erasure of a learner trips the traps');
SELECT is((SELECT count(*)::int FROM esc.t_trigger WHERE learner IN (41, 42, 43)), 0,
          'the erasures went through the traps (rows deleted, as their owner)');
SELECT is((SELECT count(*)::int FROM esc.t_index WHERE learner IS NULL AND email IS NULL), 3,
          'the anonymising erasures went through the index trap (rows anonymised: masked e-mails emptied, as their owner)');

-- The purges take whole trap tables: no safety valve (pdp.purge_max_share).
SET pdp.purge_max_share = 1;
SET ROLE esc_owner;
SELECT is(pg_temp.esc_attack($$SELECT * FROM pdp.purge_expired()$$), NULL, 'attack: the tables'' owner purges its trap tables');
SELECT esc.fill();
SET ROLE esc_dpo;
SELECT is(pg_temp.esc_attack($$SELECT * FROM pdp.purge_expired()$$), NULL, 'attack: a DPO''s purge trips the traps');
SET ROLE esc_owner;
SELECT esc.fill();
RESET ROLE;
SELECT is(pg_temp.esc_attack($$SELECT * FROM pdp.purge_expired()$$), NULL, 'attack: a superuser''s purge trips the traps');
SELECT is((SELECT count(*)::int FROM esc.t_trigger), 0, 'the purges deleted the expired rows, as their owner');
RESET pdp.purge_max_share;

SET ROLE esc_owner;
SELECT is(pg_temp.esc_attack($$SELECT pdp.create_masked_view('esc.t_index', 'esc_m1')$$), NULL, 'attack: the owner makes a masked view of its trap table');
SET ROLE esc_dpo;
SELECT throws_ok($$SELECT pdp.create_masked_view('esc.t_index', 'esc_m2')$$, '42501', NULL,
                 'control: a DPO cannot make a masked view of another''s table');
RESET ROLE;
SELECT is(pg_temp.esc_attack($$SELECT pdp.create_masked_view('esc.t_generated', 'esc_m3')$$), NULL, 'attack: a superuser makes a masked view of a trap table');
SELECT is((SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'esc.esc_m3'::regclass), 'esc_owner'::name,
          'attack: a masked view a superuser made reads the table with a superuser''s rights (it must be the table owner''s)');

SET ROLE esc_owner;
SELECT is(pg_temp.esc_attack($$SELECT pdp.report() IS NOT NULL$$), NULL, 'attack: the owner renders the report over its trap tables');
SELECT is(pg_temp.esc_attack($$SELECT count(*) FROM pdp.discover('esc')$$), NULL, 'attack: the owner runs discovery over its trap tables');
SET ROLE esc_dpo;
SELECT is(pg_temp.esc_attack($$SELECT pdp.report() IS NOT NULL$$), NULL, 'attack: a DPO''s report trips the traps');
SELECT is(pg_temp.esc_attack($$SELECT count(*) FROM pdp.discover('esc')$$), NULL, 'attack: a DPO''s discovery trips the traps (its policy function would run as the DPO)');
RESET ROLE;
SELECT is(pg_temp.esc_attack($$SELECT pdp.report() IS NOT NULL$$), NULL, 'attack: a superuser''s report trips the traps');
SELECT is(pg_temp.esc_attack($$SELECT count(*) FROM pdp.discover('esc')$$), NULL, 'attack: a superuser''s discovery trips the traps');

-- Retention tagging (a table retained from insertion): its trigger reads the
-- new rows' keys, whose type has a cast to text of the owner's making.
SET ROLE esc_owner;
CREATE TYPE esc.code AS ENUM ('a', 'b', 'c');
CREATE FUNCTION esc.code_text(esc.code) RETURNS text
LANGUAGE plpgsql AS $$ BEGIN PERFORM esc.trap('tag cast'); RETURN pg_catalog.format('%s', $1); END $$;
CREATE CAST (esc.code AS text) WITH FUNCTION esc.code_text(esc.code);
CREATE TABLE esc.t_tag (id esc.code PRIMARY KEY, learner bigint);
INSERT INTO esc.t_tag VALUES ('a', 46);
SELECT pdp.register_table('esc.t_tag', 'learner');
SELECT pdp.set_retention('esc.t_tag', '1 year');
SELECT is(pg_temp.esc_attack($$INSERT INTO esc.t_tag VALUES ('b', 47)$$), NULL,
          'attack: the owner''s insert makes the retention-tagging trigger cast its keys with pdp_ext''s rights');
RESET ROLE;

-- 2. A registered table turned into a view with a "_RETURN" rule.
SET ROLE esc_owner;
CREATE TABLE esc.t_view (learner bigint);
SELECT pdp.register_table('esc.t_view', 'learner');
CREATE RULE "_RETURN" AS ON SELECT TO esc.t_view DO INSTEAD SELECT 45::bigint AS learner WHERE esc.trap('return rule');
SET ROLE esc_dpo;
SELECT throws_ok($$SELECT pdp.erase_subject(45, 'request')$$, '42809', NULL,
                 'attack: a DPO erases a learner in a registered table that became a view');
SELECT throws_ok($$SELECT pdp.export_subject(45)$$, '42809', NULL,
                 'attack: a DPO exports a learner from a registered table that became a view');
RESET ROLE;
SELECT throws_ok($$SELECT pdp.erase_subject(45, 'request')$$, '42809', NULL,
                 'attack: a superuser erases a learner in a registered table that became a view');
SET ROLE esc_owner;
SELECT pdp.unregister_table('esc.t_view');
RESET ROLE;

-- 3. The switch itself, called directly.
SET ROLE esc_dpo;
SELECT throws_ok($$SELECT * FROM pdp._exec_as_owner('esc.t_trigger', 'ALTER ROLE esc_dpo SUPERUSER') AS x(a int)$$, '42501', NULL,
                 'attack: a DPO runs a statement as another table''s owner through pdp._exec_as_owner');
SELECT throws_ok($$SELECT pdp._purge_rows('esc.t_trigger', 'delete', ARRAY['(0,1)']::tid[])$$, '42501', NULL,
                 'control: a DPO cannot delete chosen rows of another''s table through pdp._purge_rows');
SET ROLE esc_owner;
SELECT throws_ok($$SELECT * FROM pdp._exec_as_owner('esc.t_trigger', 'ALTER ROLE esc_owner SUPERUSER') AS x(a int)$$, '42501', NULL,
                 'attack: the owner runs ALTER ROLE ... SUPERUSER through pdp._exec_as_owner');
RESET ROLE;

SELECT is_empty($$SELECT rolname FROM pg_roles WHERE rolsuper EXCEPT SELECT rolname FROM esc_supers$$,
                'no role became superuser through the traps');
SELECT is_empty($$SELECT DISTINCT who FROM esc.marker WHERE who <> 'esc_owner'$$,
                'the traps ran only as the tables'' owner, never as pdp_ext''s owner, the DPO or the superuser');
SELECT is_empty($$SELECT 1 FROM esc.marker WHERE what <> 'ran'$$,
                'no trap became superuser, read the key file or unregistered the superuser''s table');
SELECT ok(EXISTS (SELECT 1 FROM pdp.subject_column WHERE tbl = 'public.esc_victim'::regclass),
          'the superuser''s table is still registered');
SELECT set_has($$SELECT DISTINCT kind FROM esc.marker$$, $$VALUES ('trigger'), ('dml rule'), ('index'), ('generated'), ('policy'), ('cast')$$,
               'the traps did run (as their owner): trigger, DML rule, index expression, generated column, policy, cast to json');

-- 4. Class 2: pdp's own tables written directly.
CREATE FUNCTION pg_temp.esc_direct_writes(op text) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
    c name;
    bad text[] := '{}';
BEGIN
    FOR t IN SELECT oid::regclass FROM pg_class WHERE relnamespace = 'pdp'::regnamespace AND relkind IN ('r', 'p')
                AND oid <> 'pdp.request_deadline'::regclass ORDER BY 1 LOOP
        SELECT attname INTO c FROM pg_attribute WHERE attrelid = t AND attnum = 1;
        BEGIN
            EXECUTE CASE op WHEN 'insert' THEN format('INSERT INTO %s DEFAULT VALUES', t)
                            WHEN 'update' THEN format('UPDATE %s SET %I = %I WHERE false', t, c, c)
                            WHEN 'delete' THEN format('DELETE FROM %s WHERE false', t)
                            ELSE format('TRUNCATE %s', t) END;
            bad := bad || (t::text || ' allowed');
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        WHEN OTHERS THEN
            bad := bad || (t::text || ' ' || SQLSTATE);
        END;
    END LOOP;
    RETURN bad;
END
$$;
SET ROLE esc_dpo;
SELECT throws_ok($$UPDATE pdp.retention_policy SET period = '1 day' WHERE tbl = 'esc.t_index'::regclass$$, '42501', NULL,
                 'attack: a DPO shortens another owner''s retention period with a plain UPDATE');
SELECT throws_ok($$DELETE FROM pdp.subject_column WHERE tbl = 'esc.t_index'::regclass$$, '42501', NULL,
                 'attack: a DPO unregisters another owner''s table with a plain DELETE');
SELECT throws_ok($$SELECT pdp.set_retention('esc.t_index', '1 day', 'at')$$, '42501', NULL,
                 'control: a DPO cannot shorten another owner''s retention period through the API');
SELECT throws_ok($$SELECT pdp.unregister_table('esc.t_index')$$, '42501', NULL,
                 'attack: a DPO unregisters another owner''s table through the API');
SELECT is(pg_temp.esc_direct_writes('insert') || pg_temp.esc_direct_writes('update') ||
          pg_temp.esc_direct_writes('delete') || pg_temp.esc_direct_writes('truncate'), '{}'::text[],
          'attack: a pdp_admin member inserts, updates, deletes or truncates rows of pdp''s tables');
SET ROLE esc_owner;
SELECT is(pg_temp.esc_direct_writes('insert') || pg_temp.esc_direct_writes('update') ||
          pg_temp.esc_direct_writes('delete') || pg_temp.esc_direct_writes('truncate'), '{}'::text[],
          'attack: a table owner in pdp_admin writes pdp''s tables directly (its own registrations included)');
SET ROLE esc_auditor;
SELECT is(pg_temp.esc_direct_writes('insert') || pg_temp.esc_direct_writes('update') ||
          pg_temp.esc_direct_writes('delete') || pg_temp.esc_direct_writes('truncate'), '{}'::text[],
          'control: a pdp_auditor member cannot write pdp''s tables directly');
SET ROLE esc_app;
SELECT is(pg_temp.esc_direct_writes('insert') || pg_temp.esc_direct_writes('update') ||
          pg_temp.esc_direct_writes('delete') || pg_temp.esc_direct_writes('truncate'), '{}'::text[],
          'control: an application role cannot write pdp''s tables directly');
RESET ROLE;
SELECT is((SELECT period FROM pdp.retention_policy WHERE tbl = 'esc.t_index'::regclass), '1 year'::interval,
          'the retention period is unchanged');

SELECT * FROM finish();
ROLLBACK;
