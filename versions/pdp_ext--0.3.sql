-- pdp_ext 0.3 as released (generated then from src/sql/*.sql); kept so that ALTER EXTENSION UPDATE from 0.3 works
\echo Use "CREATE EXTENSION pdp_ext" to load this file. \quit

-- ===== src/sql/00_roles.sql =====
-- Roles and the schema's baseline privileges.
--
-- pdp_admin        configures pdp_ext (registry, rules, purposes, retention)
-- pdp_reidentifier may reverse reversible pseudonyms
-- pdp_auditor      reads the audit trail and the registers
-- pdp_pseudonymiser computes keyed tokens (pseudonyms, encryption, FPE): the
--                  application role that pseudonymises, and readers of masked
--                  views with keyed columns
--
-- Roles are cluster-wide, so they are created only if absent and are left in
-- place by DROP EXTENSION (other databases may use them).
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['pdp_admin', 'pdp_reidentifier', 'pdp_auditor', 'pdp_pseudonymiser'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$roles$;

-- Application roles need to reach the schema: pseudonym functions and the
-- row-visibility checks are called from their queries.  What they may call
-- is decided function by function in 99_privileges.sql.
GRANT USAGE ON SCHEMA pdp TO PUBLIC;
COMMENT ON SCHEMA pdp IS 'pdp_ext: personal-data protection objects';

-- ===== src/sql/05_checks.sql =====
-- Checks shared by every capability.
--
-- Intervals.  PostgreSQL compares intervals by counting a month as 30 days,
-- so '-12 mon 361 days' compares as "more than a day" although it reaches
-- back about four days from any date.  Every interval pdp_ext accepts is
-- judged by the time it actually spans: from now and, when its months and
-- its days or time have different signs (a month's length varies with the
-- date), also from the date where it would span least, because a retention
-- period or a deadline is later added to other dates than today.  Months
-- are then counted at their Gregorian average, 30.436875 days, less (where
-- they add) or plus (where they take away) four days, which bounds every
-- calendar's drift from the average, short months and month-end clamping
-- included: '1 mon -31 days' (zero or less from every date) and
-- '-1 mon 31 days' (zero from April 1st) are refused, '-1 mon 40 days'
-- (nine days or more from every date) is accepted.

CREATE FUNCTION pdp._check_interval(i interval, message text, at_least interval DEFAULT NULL) RETURNS interval
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m integer;
    d integer;
    t interval;
    least_span interval;
    ok boolean;
BEGIN
    IF i IS NOT NULL THEN
        m := (pg_catalog.date_part('year', i) * 12 + pg_catalog.date_part('month', i))::integer;
        d := pg_catalog.date_part('day', i)::integer;
        t := i OPERATOR(pg_catalog.-) pg_catalog.make_interval(months => m, days => d);
        IF at_least IS NULL THEN
            ok := (pg_catalog.now() OPERATOR(pg_catalog.+) i) OPERATOR(pg_catalog.>) pg_catalog.now();
        ELSE
            ok := (pg_catalog.now() OPERATOR(pg_catalog.+) i) OPERATOR(pg_catalog.>=) (pg_catalog.now() OPERATOR(pg_catalog.+) at_least);
        END IF;
        IF ok AND ((m > 0 AND (d < 0 OR t OPERATOR(pg_catalog.<) interval '0'))
                OR (m < 0 AND (d > 0 OR t OPERATOR(pg_catalog.>) interval '0'))) THEN
            least_span := pg_catalog.make_interval(days => d,
                                                   secs => (CASE WHEN m > 0 THEN pg_catalog.floor(m * 30.436875) - 4
                                                                 ELSE -(pg_catalog.ceil(-m * 30.436875) + 4) END) * 86400)
                          OPERATOR(pg_catalog.+) t;
            ok := CASE WHEN at_least IS NULL THEN least_span OPERATOR(pg_catalog.>) interval '0'
                       ELSE least_span OPERATOR(pg_catalog.>=) at_least END;
        END IF;
    END IF;
    IF i IS NULL OR NOT ok THEN
        RAISE EXCEPTION '%', message USING ERRCODE = 'invalid_parameter_value',
              DETAIL = 'An interval is judged by the time it spans from now, and one mixing positive and negative parts by the least it spans from any date.';
    END IF;
    RETURN i;
END
$$;
COMMENT ON FUNCTION pdp._check_interval(interval, text, interval) IS
    'refuses (22023, with message) an interval that is NULL or does not span more than zero (or at least at_least) from now and, for mixed signs, from every date; returns it';

-- The same check on the period column of pdp's own tables, however a row is written.
CREATE FUNCTION pdp._check_period() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.period IS NOT NULL THEN
        PERFORM pdp._check_interval(NEW.period, pg_catalog.format('%s.period must be positive', TG_TABLE_NAME));
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._check_period() IS 'trigger: refuses a period that does not span a positive time (pdp._check_interval)';

-- ===== src/sql/06_owner.sql =====
-- Whose rights pdp_ext's statements run with (src/owner.c).  Statements on a
-- user table run as the table's owner with SECURITY_RESTRICTED_OPERATION;
-- pdp's API functions that change pdp's state run as pdp_ext's owner and
-- check the role that called them, pdp._caller().

CREATE FUNCTION pdp._exec_as_owner(tbl regclass, sql text) RETURNS SETOF record
LANGUAGE C VOLATILE AS $$MODULE_PATHNAME$$, $$pdp_exec_as_owner$$;
COMMENT ON FUNCTION pdp._exec_as_owner(regclass, text) IS
    'runs one statement on a table as its owner (security-restricted); refused unless it is a table, or unless the caller owns it';
CREATE FUNCTION pdp._exec_as_owner(tbl regclass, sql text, VARIADIC args "any") RETURNS SETOF record
LANGUAGE C VOLATILE AS $$MODULE_PATHNAME$$, $$pdp_exec_as_owner$$;
COMMENT ON FUNCTION pdp._exec_as_owner(regclass, text, "any") IS
    'runs one statement on a table as its owner (security-restricted), with the arguments as its parameters $1, $2, ...';

CREATE FUNCTION pdp._caller() RETURNS regrole
LANGUAGE C VOLATILE AS $$MODULE_PATHNAME$$, $$pdp_caller$$;
COMMENT ON FUNCTION pdp._caller() IS
    'the role that called the pdp API function now running, or else the current user (ownership checks use it)';

-- ===== src/sql/10_registry.sql =====
-- Subject registry: which columns of which tables name a data subject.
--
-- Rows are keyed by (tbl, attnum) so that renames of tables and columns are
-- followed for free inside a database; "col" is kept in step by an event
-- trigger and is what pg_dump carries across a restore, where the attnum is
-- resolved again from it.

CREATE TABLE pdp.subject_column (
    tbl           regclass    NOT NULL,
    col           name        NOT NULL,
    attnum        smallint    NOT NULL,
    on_erase      text        NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    registered_by name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (tbl, attnum),
    CONSTRAINT subject_column_on_erase_check CHECK (on_erase IN ('delete', 'anonymise'))
);
COMMENT ON TABLE pdp.subject_column IS
    'Registered (table, subject column) pairs; read pdp.registered_tables instead';
COMMENT ON COLUMN pdp.subject_column.tbl IS 'the registered table';
COMMENT ON COLUMN pdp.subject_column.col IS 'name of the column that holds the subject''s identifier';
COMMENT ON COLUMN pdp.subject_column.attnum IS 'attribute number of that column, resolved from col on every write';
COMMENT ON COLUMN pdp.subject_column.on_erase IS 'what erasure does to the subject''s rows: delete or anonymise';
COMMENT ON COLUMN pdp.subject_column.registered_at IS 'when the column was registered';
COMMENT ON COLUMN pdp.subject_column.registered_by IS 'the role that registered it';
SELECT pg_catalog.pg_extension_config_dump('pdp.subject_column', '');

-- Types a subject identifier may have.  Every capability keys subjects by
-- the identifier's text form, so these are the types whose text form is
-- canonical (one value, one spelling).
CREATE FUNCTION pdp.is_subject_type(t regtype) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT t IN ('bigint'::regtype, 'integer'::regtype, 'text'::regtype,
                   'character varying'::regtype, 'uuid'::regtype) $$;
COMMENT ON FUNCTION pdp.is_subject_type(regtype) IS
    'true for the types a subject column may have: bigint, integer, text, varchar, uuid';

-- The one text form of a subject that pdp's tables hold (consents,
-- restrictions, holds, requests, disclosures, erasure receipts, audit
-- pseudonyms), for the types of the registered subject columns: an integer
-- in canonical decimal ("02", " +2" are 2) when an integer column is
-- registered, a uuid lower-case and hyphenated (any case, braces, no
-- hyphens) when a uuid column is, anything else as given when a text column
-- is; with nothing registered, integers and uuids are canonicalised and the
-- rest kept.  Otherwise 22P02.  Every entry point taking a text subject
-- calls it first (src/core/subject.c parses).
CREATE FUNCTION pdp._canonical_subject(subject text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pdp_canonical_subject';
COMMENT ON FUNCTION pdp._canonical_subject(text) IS
    'the canonical text form of a subject for the registered subject columns'' types; 22P02 when it has none of them';
CREATE FUNCTION pdp._canonical_subject_or_null(subject text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pdp_canonical_subject_or_null';
COMMENT ON FUNCTION pdp._canonical_subject_or_null(text) IS
    'pdp._canonical_subject, but NULL for a subject of none of the registered types (bulk entry points name the row)';

-- Validates every write to pdp.subject_column, whoever makes it: the column
-- exists and has a subject type, the writer (the role that called the
-- registry function, pdp._caller()) owns the table, and all columns
-- of one table agree on on_erase.  Resolves attnum from col.
CREATE FUNCTION pdp._subject_column_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    att record;
BEGIN
    SELECT c.relkind, c.relowner, c.relnamespace, c.relname INTO rel
      FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) NEW.tbl::oid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', NEW.tbl::oid
            USING ERRCODE = 'undefined_table';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', rel.relname
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Only ordinary and partitioned tables can be registered.';
    END IF;
    IF rel.relnamespace IN ('pdp'::regnamespace, 'pg_catalog'::regnamespace,
                            'information_schema'::regnamespace) THEN
        RAISE EXCEPTION 'cannot register table "%"', rel.relname
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Tables of pdp_ext and of the system catalogs cannot be registered.';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    SELECT a.attnum, a.atttypid, a.attnotnull INTO att
      FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) NEW.tbl::oid
       AND a.attname OPERATOR(pg_catalog.=) NEW.col
       AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', NEW.col, rel.relname
            USING ERRCODE = 'undefined_column';
    END IF;
    IF att.attnum <= 0 THEN
        RAISE EXCEPTION 'cannot register system column "%"', NEW.col
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF NOT pdp.is_subject_type(att.atttypid::regtype) THEN
        RAISE EXCEPTION 'column "%" of table "%" has unsupported type %', NEW.col, rel.relname, att.atttypid::regtype
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'A subject column must be bigint, integer, text, varchar or uuid.';
    END IF;
    IF NEW.on_erase = 'anonymise' AND att.attnotnull THEN
        RAISE EXCEPTION 'column "%" of table "%" is NOT NULL, so erasure cannot anonymise its rows', NEW.col, rel.relname
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Anonymising a row empties its subject columns, to cut its link to the subject.',
                  HINT = 'Drop the NOT NULL constraint, or use on_erase => ''delete''.';
    END IF;
    NEW.attnum := att.attnum;

    IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM pdp.subject_column s
                                     WHERE s.tbl OPERATOR(pg_catalog.=) NEW.tbl
                                       AND s.attnum OPERATOR(pg_catalog.=) NEW.attnum) THEN
        RAISE EXCEPTION 'column "%" of table "%" is already registered', NEW.col, rel.relname
            USING ERRCODE = 'duplicate_object';
    END IF;

    IF EXISTS (SELECT 1 FROM pdp.subject_column s
                WHERE s.tbl OPERATOR(pg_catalog.=) NEW.tbl
                  AND s.attnum OPERATOR(pg_catalog.<>) NEW.attnum
                  AND s.on_erase OPERATOR(pg_catalog.<>) NEW.on_erase) THEN
        RAISE EXCEPTION 'table "%" is already registered with another on_erase action', rel.relname
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'All subject columns of one table share one on_erase action.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._subject_column_check() IS
    'trigger: validates and resolves every write to pdp.subject_column';
CREATE TRIGGER subject_column_check BEFORE INSERT OR UPDATE ON pdp.subject_column
    FOR EACH ROW EXECUTE FUNCTION pdp._subject_column_check();
-- Also on a logical-replication subscriber (replica mode): a replicated
-- registration is checked there and its attnum resolved against the local table.
ALTER TABLE pdp.subject_column ENABLE ALWAYS TRIGGER subject_column_check;

-- The registry changes only through these functions: no role may write
-- pdp.subject_column.  Each runs its implementation pdp._api_<name> as
-- pdp_ext's owner, which checks that the caller owns the table (src/owner.c).
CREATE FUNCTION pdp.register_table(tbl regclass, subject_column name, on_erase text DEFAULT 'delete')
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.register_table(regclass, name, text) IS
    'registers a column that names a data subject; on_erase is delete or anonymise';

CREATE FUNCTION pdp._api_register_table(tbl regclass, subject_column name, on_erase text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR subject_column IS NULL OR on_erase IS NULL THEN
        RAISE EXCEPTION 'table, subject column and on_erase must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF on_erase NOT IN ('delete', 'anonymise') THEN
        RAISE EXCEPTION 'unknown on_erase action'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'on_erase must be "delete" or "anonymise".';
    END IF;
    INSERT INTO pdp.subject_column (tbl, col, attnum, on_erase, registered_by)
    VALUES (tbl, subject_column, 0, on_erase, pg_catalog.pg_get_userbyid(pdp._caller()));
    PERFORM pdp._sync_protection(tbl);    -- defined with the visibility capability
    PERFORM pdp._sync_rectification_trigger(tbl);   -- defined with the rights capability
    PERFORM pdp._audit('register_table', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('subject_column', subject_column, 'on_erase', on_erase));
EXCEPTION WHEN unique_violation THEN
    -- A concurrent registration of the same column won the race.
    RAISE EXCEPTION 'column "%" of table "%" is already registered', subject_column,
          (SELECT c.relname FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid)
        USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION pdp._api_register_table(regclass, name, text) IS
    'pdp.register_table''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE FUNCTION pdp.unregister_table(tbl regclass, subject_column name DEFAULT NULL)
RETURNS integer
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.unregister_table(regclass, name) IS
    'removes a table''s registration (one subject column, or all when none is named); returns how many';

CREATE FUNCTION pdp._api_unregister_table(tbl regclass, subject_column name)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    n integer;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relname, c.relowner INTO rel FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) _api_unregister_table.tbl::oid;
    IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _api_unregister_table.tbl) THEN
        RAISE EXCEPTION 'table "%" is not registered', coalesce(rel.relname, tbl::oid::text)
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM pdp.subject_column s
     WHERE s.tbl OPERATOR(pg_catalog.=) _api_unregister_table.tbl
       AND (_api_unregister_table.subject_column IS NULL
            OR s.col OPERATOR(pg_catalog.=) _api_unregister_table.subject_column);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'column "%" of table "%" is not registered', subject_column, rel.relname
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM pdp._sync_protection(tbl);
    PERFORM pdp._sync_rectification_trigger(tbl);
    PERFORM pdp._audit('unregister_table', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('subject_column', subject_column, 'removed', n));
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp._api_unregister_table(regclass, name) IS
    'pdp.unregister_table''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE VIEW pdp.registered_tables AS
SELECT s.tbl                  AS table_name,
       n.nspname              AS schema_name,
       c.relname              AS relation_name,
       s.col                  AS subject_column,
       a.atttypid::regtype    AS subject_type,
       s.on_erase,
       s.registered_at,
       s.registered_by
  FROM pdp.subject_column s
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.tbl::oid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid
                                AND a.attnum OPERATOR(pg_catalog.=) s.attnum;
COMMENT ON VIEW pdp.registered_tables IS
    'one row per registered (table, subject column), with current names and types';


-- ===== src/sql/15_citus.sql =====
-- Citus: refuse what is unsafe on distributed tables (issue 18, step 1).
--
-- Citus runs a statement on a distributed table shard by shard, on the
-- workers.  Several pdp capabilities are not correct there yet: a purge that
-- finds rows by ctid (unique only within one shard) deletes rows of other
-- shards; triggers and the consent state they read live on the coordinator
-- only.  Until a capability is made correct, its entry points detect Citus
-- tables from Citus's metadata (pg_dist_partition), at use time, and refuse.
-- Without Citus the checks find nothing and refuse nothing.

-- What kind of Citus table tbl is: 'distributed', 'reference', 'citus local',
-- or NULL when it is none (or Citus is not installed in this database).
CREATE FUNCTION pdp._citus_table_kind(tbl regclass) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text;
BEGIN
    IF tbl IS NULL OR pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN NULL;
    END IF;
    -- Dynamic SQL: the catalog exists only where the citus extension does.
    -- partmethod 'h', 'r', 'a': hash, range, append distribution; 'n': no
    -- distribution column: a reference table (replicated to every node,
    -- repmodel 't'), a single-shard distributed table (co-located, so a
    -- colocationid), or a Citus local table (on the coordinator).
    EXECUTE 'SELECT CASE WHEN p.partmethod OPERATOR(pg_catalog.<>) ''n'' THEN ''distributed'' '
            '            WHEN p.repmodel OPERATOR(pg_catalog.=) ''t'' THEN ''reference'' '
            '            WHEN p.colocationid OPERATOR(pg_catalog.<>) 0 THEN ''distributed'' '
            '            ELSE ''citus local'' END '
            '  FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid::oid OPERATOR(pg_catalog.=) $1'
       INTO kind USING tbl::oid;
    RETURN kind;
END
$$;
COMMENT ON FUNCTION pdp._citus_table_kind(regclass) IS
    'distributed, reference, citus local, or NULL when the table is not a Citus table (or Citus is not installed)';

-- Raise feature_not_supported if tbl is a Citus table of any kind: what is
-- the refused operation, as a verb phrase ("purge", "protect", "apply column
-- rules to").  The message names the table only, never a value.
CREATE FUNCTION pdp._refuse_on_citus(tbl regclass, what text) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text := pdp._citus_table_kind(tbl);
    why text;
BEGIN
    IF kind IS NULL THEN
        RETURN;
    END IF;
    why := CASE
        WHEN what IN ('purge', 'anonymise rows of') THEN
            'Citus runs the statement on every shard or placement, where pdp''s row identifiers '
            '(ctid, unique only within one shard) and its bookkeeping tables do not reach; '
            'it could change rows other than the expired or erased ones.'
        WHEN what = 'apply column rules to' THEN
            'Citus cannot rewrite the rows in pdp''s locked, key-ordered batches, and the rules'' '
            'functions would run on the workers.'
        ELSE
            'The triggers and policies it installs would run on the workers, where pdp''s consent, '
            'disclosure and retention state is not kept, and they need citus.enable_unsafe_triggers.'
        END;
    RAISE EXCEPTION 'cannot % % table "%"', what, kind, pdp._relname(tbl)
        USING ERRCODE = 'feature_not_supported',
              DETAIL = why,
              HINT = 'See "What is refused on Citus tables" in doc/scaling.md; '
                     'export, erasure by deletion and pseudonymising queries work on Citus tables.';
END
$$;
COMMENT ON FUNCTION pdp._refuse_on_citus(regclass, text) IS
    'raises feature_not_supported, with a hint, if the table is a Citus table (the capability is not correct there yet)';

-- The purges (pdp.purge, pdp.purge_expired) run over every retained table: a
-- Citus table is skipped, with a warning naming it and the refusal recorded
-- among the run's errors in pdp.purge_log, and the other tables are purged.
-- Returns whether tbl is to be skipped.
CREATE FUNCTION pdp._citus_skip_purge(tbl regclass, run_id bigint) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text := pdp._citus_table_kind(tbl);
    msg text;
    why text;
    hint text;
BEGIN
    IF kind IS NULL THEN
        RETURN false;
    END IF;
    -- Nothing to purge there (no retention, no inactivity retention): skip quietly.
    IF NOT EXISTS (SELECT 1 FROM pdp.retention_policy p WHERE p.tbl OPERATOR(pg_catalog.=) _citus_skip_purge.tbl)
       AND NOT EXISTS (SELECT 1 FROM pdp.subject_retention) THEN
        RETURN true;
    END IF;
    BEGIN
        PERFORM pdp._refuse_on_citus(tbl, 'purge');
    EXCEPTION WHEN feature_not_supported THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, why = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    END;
    PERFORM pdp._record_purge_batch(run_id, tbl, pdp._purge_action(tbl), 0,
                                    pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                                        'table', tbl::text, 'sqlstate', '0A000', 'message', msg)));
    RAISE WARNING 'purge: skipped % table "%"', kind, pdp._relname(tbl)
        USING DETAIL = why, HINT = hint;
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp._citus_skip_purge(regclass, bigint) IS
    'whether a purge skips the table because it is a Citus table; warns and records the refusal in the run';

-- ===== src/sql/20_keys.sql =====
-- Keys: the key file is read by the C module; SQL only ever sees fingerprints.

CREATE FUNCTION pdp.key_status(OUT version integer, OUT fingerprint text, OUT active boolean)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'pdp_key_status';
COMMENT ON FUNCTION pdp.key_status() IS
    'key versions in pdp.key_file with public fingerprints; active marks the version used for new values. Never returns key bytes';

-- ===== src/sql/30_pseudonym.sql =====
-- Column-level pseudonymisation, masking and validation (C, over OpenSSL).
-- Keyed functions are STABLE (their result depends on the key file);
-- keyless ones IMMUTABLE.  All are STRICT (NULL in, NULL out) and PARALLEL
-- SAFE, except the reversing ones, which write an audit entry.

-- Keyed, irreversible ----------------------------------------------------

CREATE FUNCTION pdp.pseudonym(value text, domain text DEFAULT '') RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudonym_text';
COMMENT ON FUNCTION pdp.pseudonym(text, text) IS
    'keyed deterministic pseudonym: 128 bits of HMAC-SHA-256 under a subkey per domain, as 32 hex digits';
CREATE FUNCTION pdp.pseudonym(value bigint, domain text DEFAULT '') RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudonym_int8';
COMMENT ON FUNCTION pdp.pseudonym(bigint, text) IS
    'pseudonym of a bigint (or integer): the same as of its text form';
CREATE FUNCTION pdp.pseudonym(value uuid, domain text DEFAULT '') RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudonym_uuid';
COMMENT ON FUNCTION pdp.pseudonym(uuid, text) IS
    'pseudonym of a uuid: the same as of its canonical text form';

-- The audit trail's and the erasure receipts' pseudonym of a subject, under
-- a key domain no SQL function takes ("audit" is refused by the functions
-- above).  Internal: refused unless another pdp function calls it.
CREATE FUNCTION pdp._subject_pseudonym(subject text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'pdp_subject_pseudonym';
COMMENT ON FUNCTION pdp._subject_pseudonym(text) IS
    'internal: the pseudonym under which the audit trail and pdp.erasure know a subject; callable only from pdp_ext''s own functions';

CREATE FUNCTION pdp.pseudo_email(email text, keep_domain boolean DEFAULT true) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_email';
COMMENT ON FUNCTION pdp.pseudo_email(text, boolean) IS
    'well-formed pseudonymous address: 130-bit keyed local part, domain kept or replaced by pseudonym.invalid';

CREATE FUNCTION pdp.pseudo_phone(phone text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_phone';
COMMENT ON FUNCTION pdp.pseudo_phone(text) IS
    'collision-free phone pseudonym (FF1): keeps country code, first national digit, length and layout';

CREATE FUNCTION pdp.pseudo_iin(iin text, keep_birth_year boolean DEFAULT true) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_iin';
COMMENT ON FUNCTION pdp.pseudo_iin(text, boolean) IS
    'collision-free IIN pseudonym that is itself a valid IIN (real date, century/sex digit, check digit)';

CREATE FUNCTION pdp.pseudo_name(name text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_name';
COMMENT ON FUNCTION pdp.pseudo_name(text) IS
    'realistic Kazakh or Russian name in the input''s script and word count; from finite lists, so not unique';

CREATE FUNCTION pdp.pseudo_ip(addr inet) RETURNS inet
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_ip';
COMMENT ON FUNCTION pdp.pseudo_ip(inet) IS
    'collision-free IP address pseudonym (FF1) of the same family and netmask length';

-- Keyed, reversible by pdp_reidentifier ----------------------------------

CREATE FUNCTION pdp.encrypt(value text, domain text DEFAULT '') RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_encrypt';
COMMENT ON FUNCTION pdp.encrypt(text, text) IS
    'deterministic authenticated encryption (AES-256-SIV) into a token carrying its key version and domain';
-- The reversing functions write an audit entry: VOLATILE, PARALLEL UNSAFE.
CREATE FUNCTION pdp.decrypt(token text) RETURNS text
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_decrypt';
COMMENT ON FUNCTION pdp.decrypt(text) IS
    'reverses pdp.encrypt; pdp_reidentifier only';

CREATE FUNCTION pdp.fpe_encrypt(digits text, domain text DEFAULT '', radix integer DEFAULT 10,
                                key_version integer DEFAULT NULL) RETURNS text
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_fpe_encrypt';
COMMENT ON FUNCTION pdp.fpe_encrypt(text, text, integer, integer) IS
    'NIST SP 800-38G FF1 on AES-256 over digits 0-9a-z below radix; key_version NULL means the active key';
CREATE FUNCTION pdp.fpe_decrypt(digits text, domain text DEFAULT '', radix integer DEFAULT 10,
                                key_version integer DEFAULT NULL) RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_fpe_decrypt';
COMMENT ON FUNCTION pdp.fpe_decrypt(text, text, integer, integer) IS
    'reverses pdp.fpe_encrypt with the same domain, radix and key version; pdp_reidentifier only';

CREATE FUNCTION pdp.fpe_iin(iin text, key_version integer DEFAULT NULL) RETURNS text
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_fpe_iin';
COMMENT ON FUNCTION pdp.fpe_iin(text, integer) IS
    'reversible IIN token that is itself a valid IIN; key_version NULL means the active key';
CREATE FUNCTION pdp.fpe_iin_decrypt(token text, key_version integer DEFAULT NULL) RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_fpe_iin_decrypt';
COMMENT ON FUNCTION pdp.fpe_iin_decrypt(text, integer) IS
    'reverses pdp.fpe_iin under the same key version; pdp_reidentifier only';

-- Masking and generalisation (keyless) -----------------------------------

CREATE FUNCTION pdp.mask(value text, keep_first integer DEFAULT 0, keep_last integer DEFAULT 0,
                         mask_char text DEFAULT '*') RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_mask';
COMMENT ON FUNCTION pdp.mask(text, integer, integer, text) IS
    'masks all characters but the first keep_first and last keep_last (all of them if those would show everything)';
CREATE FUNCTION pdp.mask_email(email text) RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_mask_email';
COMMENT ON FUNCTION pdp.mask_email(text) IS 'a*****@domain: first character of the local part and the domain';
CREATE FUNCTION pdp.mask_phone(phone text) RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_mask_phone';
COMMENT ON FUNCTION pdp.mask_phone(text) IS '+7 7** *** ** 78: country code, first national digit and the last two digits';
CREATE FUNCTION pdp.mask_card(card text) RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_mask_card';
COMMENT ON FUNCTION pdp.mask_card(text) IS 'PCI DSS style: first six and last four digits of a Luhn-valid card number';
CREATE FUNCTION pdp.generalize_date(d date, "precision" text) RETURNS date
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_generalize_date';
COMMENT ON FUNCTION pdp.generalize_date(date, text) IS 'first day of the month, year or decade';
CREATE FUNCTION pdp.age_band(iin text, width integer DEFAULT 10) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_age_band';
COMMENT ON FUNCTION pdp.age_band(text, integer) IS 'age today from an IIN''s birth date, as a band like 30-39';

-- Validators (keyless) ----------------------------------------------------

CREATE FUNCTION pdp.iin_is_valid(iin text) RETURNS boolean
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_iin_is_valid';
COMMENT ON FUNCTION pdp.iin_is_valid(text) IS 'true for a valid Kazakh IIN: date, century/sex digit, check digit';
CREATE FUNCTION pdp.bin_is_valid(bin text) RETURNS boolean
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_bin_is_valid';
COMMENT ON FUNCTION pdp.bin_is_valid(text) IS 'true for a valid Kazakh BIN: month, entity type, check digit';
CREATE FUNCTION pdp.iin_birth_date(iin text) RETURNS date
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_iin_birth_date';
COMMENT ON FUNCTION pdp.iin_birth_date(text) IS 'birth date encoded in a valid IIN';
CREATE FUNCTION pdp.iin_sex(iin text) RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_iin_sex';
COMMENT ON FUNCTION pdp.iin_sex(text) IS 'M or F, from a valid IIN''s seventh digit';
CREATE FUNCTION pdp.luhn_is_valid(digits text) RETURNS boolean
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_luhn_is_valid';
COMMENT ON FUNCTION pdp.luhn_is_valid(text) IS 'true when the digits (spaces and dashes allowed) pass the Luhn check';

-- ===== src/sql/32_rules.sql =====
-- Column rules: what each personal-data column gets, and the three ways a
-- rule applies: on write (a C trigger), statically (apply_rules) and
-- dynamically (a masked view).

-- The rules pdp_ext knows, with the types they read and write.
CREATE TABLE pdp.rule_kind (
    rule              text PRIMARY KEY,
    input_type        regtype,              -- NULL: any type
    keeps_length      boolean NOT NULL,     -- output never longer than input
    min_length        integer,              -- for bounded character columns
    expr              text NOT NULL,        -- format() template; %1$I is the column
    description       text NOT NULL
);
COMMENT ON TABLE pdp.rule_kind IS 'the column rules pdp_ext can apply (read-only)';
COMMENT ON COLUMN pdp.rule_kind.rule IS 'rule name, as given to pdp.set_column_rule';
COMMENT ON COLUMN pdp.rule_kind.input_type IS 'the column type the rule reads and writes (character types for text); NULL for any type';
COMMENT ON COLUMN pdp.rule_kind.keeps_length IS 'whether the output is never longer than the input, so bounded varchar/char columns can take it';
COMMENT ON COLUMN pdp.rule_kind.min_length IS 'smallest varchar(n) a rule that does not keep length may be declared on (longer outputs are still refused when written)';
COMMENT ON COLUMN pdp.rule_kind.expr IS 'SQL expression template; %1$I stands for the quoted column name';
COMMENT ON COLUMN pdp.rule_kind.description IS 'what the rule does';
INSERT INTO pdp.rule_kind VALUES
    ('pseudonym',         'text', false, 32,   'pdp.pseudonym(%1$I)',                    'keyed 128-bit pseudonym (32 hex digits)'),
    ('pseudo_email',      'text', false, 64,   'pdp.pseudo_email(%1$I)',                 'well-formed pseudonymous e-mail, domain kept'),
    ('pseudo_phone',      'text', true,  NULL, 'pdp.pseudo_phone(%1$I)',                 'collision-free phone pseudonym, layout kept'),
    ('pseudo_iin',        'text', true,  NULL, 'pdp.pseudo_iin(%1$I)',                   'collision-free valid IIN, birth year kept'),
    ('pseudo_name',       'text', false, 48,   'pdp.pseudo_name(%1$I)',                  'realistic replacement name'),
    ('pseudo_ip',         'inet', true,  NULL, 'pdp.pseudo_ip(%1$I)',                    'collision-free IP address pseudonym'),
    ('encrypt',           'text', false, NULL, 'pdp.encrypt(%1$I)',                      'reversible AES-SIV token (pdp_reidentifier decrypts)'),
    ('fpe_iin',           'text', true,  NULL, 'pdp.fpe_iin(%1$I)',                      'reversible IIN token that is a valid IIN'),
    ('mask',              'text', true,  NULL, 'pdp.mask(%1$I)',                         'every character masked'),
    ('mask_email',        'text', true,  NULL, 'pdp.mask_email(%1$I)',                   'first character and domain shown'),
    ('mask_phone',        'text', true,  NULL, 'pdp.mask_phone(%1$I)',                   'country code and last two digits shown'),
    ('mask_card',         'text', true,  NULL, 'pdp.mask_card(%1$I)',                    'first six and last four digits shown'),
    ('generalize_month',  'date', true,  NULL, 'pdp.generalize_date(%1$I, ''month'')',   'first day of the month'),
    ('generalize_year',   'date', true,  NULL, 'pdp.generalize_date(%1$I, ''year'')',    'first day of the year'),
    ('generalize_decade', 'date', true,  NULL, 'pdp.generalize_date(%1$I, ''decade'')',  'first day of the decade'),
    ('null',              NULL,   true,  NULL, 'NULL',                                   'the value is removed');

CREATE TABLE pdp.column_rule (
    tbl        regclass    NOT NULL,
    col        name        NOT NULL,
    attnum     smallint    NOT NULL,
    rule       text        NOT NULL REFERENCES pdp.rule_kind(rule),
    category   text,
    set_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by     name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (tbl, attnum)
);
COMMENT ON TABLE pdp.column_rule IS 'declared column rules; read pdp.column_rules instead';
COMMENT ON COLUMN pdp.column_rule.tbl IS 'the table';
COMMENT ON COLUMN pdp.column_rule.col IS 'the column''s name, kept in step with renames';
COMMENT ON COLUMN pdp.column_rule.attnum IS 'the column''s attribute number, resolved from col on every write';
COMMENT ON COLUMN pdp.column_rule.rule IS 'the rule (pdp.rule_kind)';
COMMENT ON COLUMN pdp.column_rule.category IS 'personal-data category (email, phone, iin, name, card, ip, ...), free text';
COMMENT ON COLUMN pdp.column_rule.set_at IS 'when the rule was declared';
COMMENT ON COLUMN pdp.column_rule.set_by IS 'who declared it';
SELECT pg_catalog.pg_extension_config_dump('pdp.column_rule', '');

-- Why a rule cannot go on a column, or NULL if it can.
CREATE FUNCTION pdp._rule_misfit(rule text, typ oid, typmod integer, not_null boolean) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN k.rule IS NULL THEN 'unknown rule'
        WHEN k.rule OPERATOR(pg_catalog.=) 'null' AND not_null THEN 'the column is NOT NULL'
        WHEN k.input_type IS NULL THEN NULL
        WHEN k.input_type OPERATOR(pg_catalog.=) 'text'::regtype
             AND typ NOT IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype)
            THEN 'the rule needs a text, varchar or char column'
        WHEN k.input_type OPERATOR(pg_catalog.<>) 'text'::regtype AND typ OPERATOR(pg_catalog.<>) k.input_type
            THEN pg_catalog.format('the rule needs a %s column', k.input_type)
        WHEN typ IN ('character varying'::regtype, 'character'::regtype) AND typmod >= 0 AND NOT k.keeps_length
             AND (k.min_length IS NULL OR typmod OPERATOR(pg_catalog.-) 4 OPERATOR(pg_catalog.<) k.min_length)
            THEN 'the rule''s output may be longer than the column allows'
        WHEN typ OPERATOR(pg_catalog.=) 'character'::regtype AND k.keeps_length AND k.rule NOT LIKE 'mask%'
             AND k.rule NOT IN ('pseudo_iin', 'fpe_iin', 'pseudo_phone')
            THEN 'the rule needs a text or varchar column'
    END
    FROM (SELECT 1) one LEFT JOIN pdp.rule_kind k ON k.rule OPERATOR(pg_catalog.=) _rule_misfit.rule
$$;
COMMENT ON FUNCTION pdp._rule_misfit(text, oid, integer, boolean) IS
    'why a rule cannot be declared on a column of this type, or NULL';

-- Validates every write to pdp.column_rule (like the registry's trigger).
CREATE FUNCTION pdp._column_rule_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    att record;
    misfit text;
BEGIN
    SELECT c.relkind, c.relowner, c.relnamespace, c.relname INTO rel
      FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) NEW.tbl::oid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', NEW.tbl::oid USING ERRCODE = 'undefined_table';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', rel.relname USING ERRCODE = 'wrong_object_type';
    END IF;
    IF rel.relnamespace IN ('pdp'::regnamespace, 'pg_catalog'::regnamespace, 'information_schema'::regnamespace) THEN
        RAISE EXCEPTION 'cannot set a rule on table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT a.attnum, a.atttypid, a.atttypmod, a.attnotnull INTO att
      FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) NEW.tbl::oid AND a.attname OPERATOR(pg_catalog.=) NEW.col
       AND NOT a.attisdropped AND a.attnum > 0;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', NEW.col, rel.relname USING ERRCODE = 'undefined_column';
    END IF;
    misfit := pdp._rule_misfit(NEW.rule, att.atttypid, att.atttypmod, att.attnotnull);
    IF misfit IS NOT NULL THEN
        RAISE EXCEPTION 'rule "%" does not fit column "%" of table "%"', NEW.rule, NEW.col, rel.relname
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = pg_catalog.format('The column is %s: %s.', pg_catalog.format_type(att.atttypid, att.atttypmod), misfit);
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.subject_column s
                WHERE s.tbl OPERATOR(pg_catalog.=) NEW.tbl AND s.attnum OPERATOR(pg_catalog.=) att.attnum) THEN
        RAISE EXCEPTION 'column "%" of table "%" is a registered subject column', NEW.col, rel.relname
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Subject columns link a learner''s rows; pseudonymise them in copies, not in place.';
    END IF;
    IF NEW.category IS NOT NULL AND (NEW.category = '' OR length(NEW.category) > 63) THEN
        RAISE EXCEPTION 'category must be 1 to 63 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Special categories (GDPR Art. 9) only where the operator has said so.
    IF NEW.category IS NOT NULL
       AND pg_catalog.to_regclass('pdp.special_category') IS NOT NULL
       AND EXISTS (SELECT 1 FROM pdp.special_category sc WHERE sc.name OPERATOR(pg_catalog.=) pg_catalog.lower(NEW.category))
       AND NOT coalesce(pg_catalog.current_setting('pdp.allow_special_categories', true)::boolean, false) THEN
        RAISE EXCEPTION 'category "%" is a special category of personal data', NEW.category
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Health, religion, political views, biometrics and the like need a legal ground of their own (GDPR Art. 9).',
                  HINT = 'A superuser may set pdp.allow_special_categories = on if the operator processes them lawfully.';
    END IF;
    NEW.attnum := att.attnum;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._column_rule_check() IS 'trigger: validates and resolves every write to pdp.column_rule';
CREATE TRIGGER column_rule_check BEFORE INSERT OR UPDATE ON pdp.column_rule
    FOR EACH ROW EXECUTE FUNCTION pdp._column_rule_check();

-- The on-write trigger function (C).  Its arguments are (column, rule) pairs.
CREATE FUNCTION pdp._pseudonymise_on_write() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_pseudonymise_on_write';
COMMENT ON FUNCTION pdp._pseudonymise_on_write() IS
    'trigger: applies column rules to inserted and updated values so raw values never land';

-- Is the on-write trigger installed on tbl?
CREATE FUNCTION pdp._on_write_enabled(tbl regclass) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_trigger t
                    WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl::oid
                      AND t.tgfoid OPERATOR(pg_catalog.=) 'pdp._pseudonymise_on_write()'::regprocedure::oid)
$$;
COMMENT ON FUNCTION pdp._on_write_enabled(regclass) IS 'whether pdp.pseudonymise_on_write is on for the table';

-- (Re)create or drop the on-write trigger so that its arguments are the
-- table's current rules.  Runs as its caller: the table's owner, or the
-- event triggers (which run as the extension's owner).
CREATE FUNCTION pdp._sync_on_write_trigger(tbl regclass, enable boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    args text;
BEGIN
    IF pdp._on_write_enabled(tbl) THEN
        EXECUTE pg_catalog.format('DROP TRIGGER pdp_pseudonymise_on_write ON %s', tbl);
    END IF;
    IF NOT enable THEN
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('%L, %L', r.col, r.rule), ', ' ORDER BY r.attnum)
      INTO args
      FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) _sync_on_write_trigger.tbl;
    IF args IS NULL THEN
        RETURN;
    END IF;
    PERFORM pdp._refuse_on_citus(tbl, 'install the on-write trigger on');
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER pdp_pseudonymise_on_write BEFORE INSERT OR UPDATE ON %s '
        'FOR EACH ROW EXECUTE FUNCTION pdp._pseudonymise_on_write(%s)', tbl, args);
END
$$;
COMMENT ON FUNCTION pdp._sync_on_write_trigger(regclass, boolean) IS
    'recreates (or drops) the on-write trigger with the table''s current rules';

-- A table's name for messages (unquoted, as PostgreSQL's own messages print it).
CREATE FUNCTION pdp._relname(tbl regclass) RETURNS name
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce((SELECT c.relname FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid), tbl::text::name) $$;
COMMENT ON FUNCTION pdp._relname(regclass) IS 'a table''s name for messages';

-- Owner check shared by the rule functions.
CREATE FUNCTION pdp._require_owner(tbl regclass) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relname, c.relowner INTO rel FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', tbl::oid USING ERRCODE = 'undefined_table';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._require_owner(regclass) IS 'raises unless the caller (pdp._caller()) owns the table';

CREATE FUNCTION pdp.set_column_rule(tbl regclass, col name, rule text, category text DEFAULT NULL)
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.set_column_rule(regclass, name, text, text) IS
    'declares (or replaces) the rule a column gets; refused when the rule''s output does not fit the column';

CREATE FUNCTION pdp._api_set_column_rule(tbl regclass, col name, rule text, category text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    PERFORM pdp._refuse_on_citus(tbl, 'set column rules on');
    IF col IS NULL OR rule IS NULL THEN
        RAISE EXCEPTION 'column and rule must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.rule_kind k WHERE k.rule OPERATOR(pg_catalog.=) _api_set_column_rule.rule) THEN
        RAISE EXCEPTION 'unknown column rule'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'pdp.rule_kind lists the rules.';
    END IF;
    -- A keyed rule makes the table's writers compute tokens: only a role that
    -- may compute them itself declares one (issue 14, class 5).
    IF rule IN ('pseudonym', 'pseudo_email', 'pseudo_phone', 'pseudo_iin', 'pseudo_name', 'pseudo_ip', 'encrypt', 'fpe_iin')
       AND NOT pg_catalog.pg_has_role(pdp._caller(), 'pdp_pseudonymiser', 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to declare keyed column rule "%"', rule
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Keyed rules compute deterministic tokens, which whoever computes them can reverse by guessing.',
                  HINT = 'Declare it as a member of pdp_pseudonymiser, or choose a mask.';
    END IF;
    INSERT INTO pdp.column_rule AS r (tbl, col, attnum, rule, category, set_by)
    VALUES (tbl, col, 0, rule, category, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT column_rule_pkey DO UPDATE
       SET rule = EXCLUDED.rule, category = EXCLUDED.category,
           set_at = pg_catalog.now(), set_by = EXCLUDED.set_by;
    IF pdp._on_write_enabled(tbl) THEN
        PERFORM pdp._sync_on_write_trigger(tbl, true);
    END IF;
    PERFORM pdp._sync_rectification_trigger(tbl);
    PERFORM pdp._audit('set_column_rule', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('column', col, 'rule', rule, 'category', category));
END
$$;
COMMENT ON FUNCTION pdp._api_set_column_rule(regclass, name, text, text) IS
    'pdp.set_column_rule''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE FUNCTION pdp.drop_column_rule(tbl regclass, col name) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_column_rule(regclass, name) IS 'removes a column''s rule';

CREATE FUNCTION pdp._api_drop_column_rule(tbl regclass, col name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    DELETE FROM pdp.column_rule r
     WHERE r.tbl OPERATOR(pg_catalog.=) _api_drop_column_rule.tbl AND r.col OPERATOR(pg_catalog.=) _api_drop_column_rule.col;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" has no rule', col USING ERRCODE = 'undefined_object';
    END IF;
    IF pdp._on_write_enabled(tbl) THEN
        PERFORM pdp._sync_on_write_trigger(tbl, true);
    END IF;
    PERFORM pdp._sync_rectification_trigger(tbl);
    PERFORM pdp._audit('drop_column_rule', tbl::text, NULL, pg_catalog.jsonb_build_object('column', col));
END
$$;
COMMENT ON FUNCTION pdp._api_drop_column_rule(regclass, name) IS
    'pdp.drop_column_rule''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE VIEW pdp.column_rules AS
SELECT r.tbl AS table_name, r.col AS column_name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type,
       r.rule, r.category, k.description,
       pdp._on_write_enabled(r.tbl) AS on_write,
       r.set_at, r.set_by
  FROM pdp.column_rule r
  JOIN pdp.rule_kind k ON k.rule OPERATOR(pg_catalog.=) r.rule
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid
                                AND a.attnum OPERATOR(pg_catalog.=) r.attnum;
COMMENT ON VIEW pdp.column_rules IS 'column rules with current names and types, and whether they apply on write';

CREATE FUNCTION pdp.pseudonymise_on_write(tbl regclass, enable boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF enable THEN
        PERFORM pdp._refuse_on_citus(tbl, 'install the on-write trigger on');
    END IF;
    IF enable AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) pseudonymise_on_write.tbl) THEN
        RAISE EXCEPTION 'table "%" has no column rules', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Declare rules with pdp.set_column_rule first.';
    END IF;
    PERFORM pdp._sync_on_write_trigger(tbl, coalesce(enable, false));
    PERFORM pdp._audit('pseudonymise_on_write', tbl::text, NULL, pg_catalog.jsonb_build_object('enabled', coalesce(enable, false)));
END
$$;
COMMENT ON FUNCTION pdp.pseudonymise_on_write(regclass, boolean) IS
    'installs (or with false removes) a C trigger applying the table''s rules to every inserted or updated value';

-- Static application -----------------------------------------------------

CREATE TABLE pdp.apply_run (
    tbl          regclass    PRIMARY KEY,
    key_columns  name[]      NOT NULL,
    upper_key    text[],                -- last key to process; NULL: empty table
    last_key     text[],                -- last key processed; NULL: none yet
    rows_done    bigint      NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at  timestamptz
);
COMMENT ON TABLE pdp.apply_run IS 'progress of pdp.apply_rules per table, committed with each batch';
COMMENT ON COLUMN pdp.apply_run.tbl IS 'the table being rewritten';
COMMENT ON COLUMN pdp.apply_run.key_columns IS 'its primary key columns, in key order';
COMMENT ON COLUMN pdp.apply_run.upper_key IS 'the highest key when the run started: rows above it were written later';
COMMENT ON COLUMN pdp.apply_run.last_key IS 'the highest key already rewritten';
COMMENT ON COLUMN pdp.apply_run.rows_done IS 'rows rewritten so far';
COMMENT ON COLUMN pdp.apply_run.started_at IS 'when the run started';
COMMENT ON COLUMN pdp.apply_run.finished_at IS 'when it finished; NULL while it can be resumed';
SELECT pg_catalog.pg_extension_config_dump('pdp.apply_run', '');

-- apply_rules' progress, written only through this function (no role may
-- write pdp.apply_run): lock (return the row, locked), start (a new run from
-- the given key columns and highest key), step (record a batch up to key, of
-- n rows) or finish.  The caller must own the table.
CREATE FUNCTION pdp._apply_progress(tbl regclass, op text, keys name[], key text[], n bigint) RETURNS pdp.apply_run
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp._apply_progress(regclass, text, name[], text[], bigint) IS
    'reads (locked) or records the progress of pdp.apply_rules on a table the caller owns';

CREATE FUNCTION pdp._api__apply_progress(tbl regclass, op text, keys name[], key text[], n bigint) RETURNS pdp.apply_run
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run pdp.apply_run;
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF op = 'lock' THEN
        SELECT * INTO run FROM pdp.apply_run r WHERE r.tbl OPERATOR(pg_catalog.=) _api__apply_progress.tbl FOR UPDATE;
    ELSIF op = 'start' THEN
        DELETE FROM pdp.apply_run r WHERE r.tbl OPERATOR(pg_catalog.=) _api__apply_progress.tbl;
        INSERT INTO pdp.apply_run AS r (tbl, key_columns, upper_key) VALUES (tbl, keys, key) RETURNING r.* INTO run;
    ELSIF op = 'step' THEN
        UPDATE pdp.apply_run r SET last_key = key, rows_done = r.rows_done OPERATOR(pg_catalog.+) n
         WHERE r.tbl OPERATOR(pg_catalog.=) _api__apply_progress.tbl RETURNING r.* INTO run;
    ELSIF op = 'finish' THEN
        UPDATE pdp.apply_run r SET finished_at = pg_catalog.now()
         WHERE r.tbl OPERATOR(pg_catalog.=) _api__apply_progress.tbl RETURNING r.* INTO run;
    ELSE
        RAISE EXCEPTION 'unknown progress operation' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN run;
END
$$;
COMMENT ON FUNCTION pdp._api__apply_progress(regclass, text, name[], text[], bigint) IS
    'pdp._apply_progress''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE PROCEDURE pdp.apply_rules(tbl regclass, batch_size integer DEFAULT 10000, restart boolean DEFAULT false)
LANGUAGE plpgsql
-- No SET clause: a procedure with one cannot COMMIT.  Names are qualified instead.
AS $$
DECLARE
    keys name[];
    key_types text[];
    key_row text;
    key_params text;
    set_list text;
    run record;
    batch_sql text;
    last text[];
    n bigint;
    qtbl text;   -- the table's qualified name: its statements run under search_path pg_catalog, pg_temp
BEGIN
    PERFORM pdp._require_owner(tbl);
    PERFORM pdp._refuse_on_citus(tbl, 'apply column rules to');
    SELECT pg_catalog.format('%I.%I', ns.nspname, cl.relname) INTO qtbl
      FROM pg_catalog.pg_class cl JOIN pg_catalog.pg_namespace ns ON ns.oid OPERATOR(pg_catalog.=) cl.relnamespace
     WHERE cl.oid OPERATOR(pg_catalog.=) tbl::oid;
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- No cast to the column's type: assignment checks varchar lengths where a
    -- cast would silently truncate.
    SELECT pg_catalog.string_agg(pg_catalog.format('%I = %s', r.col, pg_catalog.format(k.expr, r.col)), ', ')
      INTO set_list
      FROM pdp.column_rule r
      JOIN pdp.rule_kind k ON k.rule OPERATOR(pg_catalog.=) r.rule
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) r.attnum
     WHERE r.tbl OPERATOR(pg_catalog.=) apply_rules.tbl;
    IF set_list IS NULL THEN
        RAISE EXCEPTION 'table "%" has no column rules', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Declare rules with pdp.set_column_rule first.';
    END IF;

    -- Rows are visited in primary-key order, so a run can stop anywhere and resume.
    SELECT pg_catalog.array_agg(a.attname ORDER BY k.ord),
           pg_catalog.array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY k.ord)
      INTO keys, key_types
      FROM pg_catalog.pg_index i
      CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::smallint[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
     WHERE i.indrelid OPERATOR(pg_catalog.=) tbl::oid AND i.indisprimary;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'table "%" has no primary key', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'apply_rules walks the table in primary-key order so that it can resume.';
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ') INTO key_row FROM pg_catalog.unnest(keys) c;
    SELECT pg_catalog.string_agg(pg_catalog.format('($%s[%s])::%s', p, i, t), ', ')
      INTO key_params
      FROM (SELECT 0 AS p) x, pg_catalog.unnest(key_types) WITH ORDINALITY AS u(t, i);

    run := pdp._apply_progress(tbl, 'lock', NULL, NULL, NULL);
    IF run.tbl IS NOT NULL AND run.finished_at IS NOT NULL AND NOT restart THEN
        RAISE EXCEPTION 'rules were already applied to table "%"', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('The run finished at %s; applying again would pseudonymise values twice.', run.finished_at),
                  HINT = 'Pass restart => true only if the table holds raw values again.';
    END IF;
    IF run.tbl IS NULL OR restart OR run.key_columns IS DISTINCT FROM keys THEN
        IF pdp._on_write_enabled(tbl) THEN
            RAISE EXCEPTION 'cannot start apply_rules on table "%" while pseudonymise_on_write is on', pdp._relname(tbl)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Rows written through the trigger are already pseudonymised and cannot be told apart.',
                      HINT = 'Run apply_rules first, then pdp.pseudonymise_on_write.';
        END IF;
        -- Every statement on the table runs as its owner (pdp._exec_as_owner).
        SELECT x.k INTO last
          FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT ARRAY[%s]::text[] FROM %s ORDER BY %s LIMIT 1',
                                  (SELECT pg_catalog.string_agg(pg_catalog.format('%I::text', c), ', ') FROM pg_catalog.unnest(keys) c),
                                  qtbl,
                                  (SELECT pg_catalog.string_agg(pg_catalog.format('%I DESC', c), ', ') FROM pg_catalog.unnest(keys) c)))
               AS x(k text[]);
        run := pdp._apply_progress(tbl, 'start', keys, last, NULL);
        PERFORM pdp._audit('apply_rules_start', tbl::text, NULL, pg_catalog.jsonb_build_object('batch_size', batch_size));
    END IF;
    COMMIT;

    IF run.upper_key IS NOT NULL THEN
        -- One batch: the next rows after last_key up to upper_key, rewritten and
        -- recorded in the same transaction.
        batch_sql := pg_catalog.format(
            'WITH batch AS (SELECT %1$s FROM %2$s WHERE (%1$s) <= (%3$s) AND ($2::text[] IS NULL OR (%1$s) > (%4$s)) '
            'ORDER BY %1$s LIMIT $3 FOR UPDATE), '
            'done AS (UPDATE %2$s t SET %5$s FROM batch WHERE (%6$s) = (%7$s) RETURNING %8$s) '
            'SELECT (SELECT ARRAY[%9$s]::text[] FROM done ORDER BY %10$s LIMIT 1), (SELECT pg_catalog.count(*) FROM done)',
            key_row, qtbl,
            pg_catalog.replace(key_params, '$0', '$1'),
            pg_catalog.replace(key_params, '$0', '$2'),
            set_list,
            (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', c), ', ') FROM pg_catalog.unnest(keys) c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('batch.%I', c), ', ') FROM pg_catalog.unnest(keys) c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', c), ', ') FROM pg_catalog.unnest(keys) c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('%I::text', c), ', ') FROM pg_catalog.unnest(keys) c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('%I DESC', c), ', ') FROM pg_catalog.unnest(keys) c));
        LOOP
            run := pdp._apply_progress(tbl, 'lock', NULL, NULL, NULL);
            SELECT x.l, x.n INTO last, n
              FROM pdp._exec_as_owner(tbl, batch_sql, run.upper_key, run.last_key, batch_size) AS x(l text[], n bigint);
            EXIT WHEN n = 0;
            PERFORM pdp._apply_progress(tbl, 'step', NULL, last, n);
            RAISE NOTICE 'apply_rules on table "%": % rows rewritten so far', pdp._relname(tbl), run.rows_done + n;
            COMMIT;
        END LOOP;
    END IF;
    n := (pdp._apply_progress(tbl, 'finish', NULL, NULL, NULL)).rows_done;
    PERFORM pdp._audit('apply_rules_finish', tbl::text, NULL, pg_catalog.jsonb_build_object('rows', n));
    COMMIT;
END
$$;
COMMENT ON PROCEDURE pdp.apply_rules(regclass, integer, boolean) IS
    'rewrites a table''s existing values with its column rules in committed batches; resumable after an interruption';

-- Dynamic application ------------------------------------------------------

-- Whether a table is not protected by protect_table: masked views filter
-- rows through the visibility check only while it is (as an InitPlan, once
-- per query).  A view reads its table with its owner's rights, and the owner
-- bypasses row-level security, so the view must apply the check itself.
CREATE FUNCTION pdp._unprotected(tbl regclass) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                          WHERE p.polrelid OPERATOR(pg_catalog.=) tbl::oid
                            AND p.polname OPERATOR(pg_catalog.=) 'pdp_select') $$;
COMMENT ON FUNCTION pdp._unprotected(regclass) IS
    'true unless protect_table protects the table (masked views filter rows only then)';

CREATE FUNCTION pdp.create_masked_view(tbl regclass, view_name text DEFAULT NULL) RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    cols text;
    vis text;
    target text;
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) create_masked_view.tbl) THEN
        RAISE EXCEPTION 'table "%" has no column rules', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Declare rules with pdp.set_column_rule first.';
    END IF;
    IF view_name IS NOT NULL AND (view_name = '' OR length(view_name) > 63) THEN
        RAISE EXCEPTION 'view name must be 1 to 63 characters' USING ERRCODE = 'invalid_name';
    END IF;
    SELECT n.nspname, c.relname INTO rel
      FROM pg_class c JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid;
    target := pg_catalog.format('%I.%I', rel.nspname, coalesce(view_name, left(rel.relname, 56) || '_masked'));
    SELECT pg_catalog.string_agg(
               CASE WHEN k.expr IS NULL THEN pg_catalog.format('%I', a.attname)
                    ELSE pg_catalog.format('(%s)::%s AS %I', pg_catalog.format(k.expr, a.attname),
                                           pg_catalog.format_type(a.atttypid, a.atttypmod), a.attname)
               END, ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_attribute a
      LEFT JOIN pdp.column_rule r ON r.tbl OPERATOR(pg_catalog.=) create_masked_view.tbl AND r.attnum OPERATOR(pg_catalog.=) a.attnum
      LEFT JOIN pdp.rule_kind k ON k.rule OPERATOR(pg_catalog.=) r.rule
     WHERE a.attrelid OPERATOR(pg_catalog.=) create_masked_view.tbl::oid AND a.attnum > 0 AND NOT a.attisdropped;
    -- The table's consent-aware visibility, applied by the view itself (see
    -- pdp._unprotected); a column registered later is not in it: fail closed
    -- (no subject column: no row while protected) and re-create the view.
    vis := pdp._visibility_sql(tbl);
    EXECUTE pg_catalog.format('CREATE OR REPLACE VIEW %s WITH (security_barrier) AS SELECT %s FROM %s '
                              'WHERE (SELECT pdp._unprotected(%L::regclass)) OR (%s)',
                              target, cols, tbl, tbl::oid, coalesce(vis, 'false'));
    -- The view is its table's owner's, whoever creates it: it reads the table
    -- with its owner's rights, never with a superuser's.
    IF (SELECT c.relowner FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) target::regclass::oid)
       OPERATOR(pg_catalog.<>) (SELECT c.relowner FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid) THEN
        EXECUTE pg_catalog.format('ALTER VIEW %s OWNER TO %I', target,
                                  (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid));
    END IF;
    EXECUTE pg_catalog.format('COMMENT ON VIEW %s IS %L', target,
                              pg_catalog.format('pdp_ext masked view of %s: columns with rules show the rule''s output', tbl));
    PERFORM pdp._audit('create_masked_view', tbl::text, NULL, pg_catalog.jsonb_build_object('view', target));
    RETURN target::regclass;
END
$$;
COMMENT ON FUNCTION pdp.create_masked_view(regclass, text) IS
    'creates (or replaces) a security-barrier view showing each ruled column''s rule output and, while the table is protected, only the rows its policy shows; grant it instead of the table';

-- ===== src/sql/40_catalog_sync.sql =====
-- Event triggers keep pdp_ext's configuration true to the catalogs.  They
-- run as the extension's owner because whoever drops or alters a table may
-- have no rights on pdp's tables.

CREATE FUNCTION pdp._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
BEGIN
    DELETE FROM pdp.subject_column s
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
       AND d.objid OPERATOR(pg_catalog.=) s.tbl::oid
       AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.objsubid OPERATOR(pg_catalog.=) s.attnum);
    DELETE FROM pdp.apply_run r
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
       AND d.objid OPERATOR(pg_catalog.=) r.tbl::oid AND d.objsubid OPERATOR(pg_catalog.=) 0;
    -- Retention of a dropped table, or whose anchor column was dropped, goes;
    -- so do the table's tags, anonymisation marks and table-wide holds.
    IF pg_catalog.to_regclass('pdp.retention_policy') IS NOT NULL THEN
        DELETE FROM pdp.retention_policy p
         USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) p.tbl::oid
           AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.address_names[pg_catalog.array_length(d.address_names, 1)]
                                                       OPERATOR(pg_catalog.=) p.anchor_column);
        DELETE FROM pdp.retention_tag g USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) g.tbl AND d.objsubid OPERATOR(pg_catalog.=) 0;
        DELETE FROM pdp.anonymised_row a USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) a.tbl AND d.objsubid OPERATOR(pg_catalog.=) 0;
        UPDATE pdp.hold h SET released_at = pg_catalog.now(), released_by = SESSION_USER
          FROM pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) h.tbl::oid AND d.objsubid OPERATOR(pg_catalog.=) 0
           AND h.released_at IS NULL;
    END IF;
    -- Rules of dropped columns vanish; a surviving table's on-write trigger
    -- is rebuilt without them.
    FOR t IN
        DELETE FROM pdp.column_rule r
         USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) r.tbl::oid
           AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.objsubid OPERATOR(pg_catalog.=) r.attnum)
        RETURNING r.tbl
    LOOP
        IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) t::oid) THEN
            IF pdp._on_write_enabled(t) THEN
                PERFORM pdp._sync_on_write_trigger(t, true);
            END IF;
            PERFORM pdp._sync_rectification_trigger(t);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp._on_sql_drop() IS
    'event trigger: forgets registrations, rules and runs of dropped tables and columns';
CREATE EVENT TRIGGER pdp_on_sql_drop ON sql_drop EXECUTE FUNCTION pdp._on_sql_drop();
COMMENT ON EVENT TRIGGER pdp_on_sql_drop IS 'forgets registrations and rules of dropped tables and columns';

CREATE FUNCTION pdp._on_alter_table() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    t regclass;
BEGIN
    -- A subject column's type may not drift to one the registry cannot key.
    SELECT c.relname, s.col, a.atttypid::regtype AS typ INTO bad
      FROM pdp.subject_column s
      JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) s.tbl::oid
      JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid
                         AND a.attnum OPERATOR(pg_catalog.=) s.attnum
     WHERE NOT pdp.is_subject_type(a.atttypid::regtype)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot change registered subject column "%" of table "%" to type %', bad.col, bad.relname, bad.typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Unregister the column first, or keep bigint, integer, text, varchar or uuid.';
    END IF;
    -- Nor may a ruled column change to a type its rule cannot write.
    SELECT c.relname, r.col, r.rule, pg_catalog.format_type(a.atttypid, a.atttypmod) AS typ INTO bad
      FROM pdp.column_rule r
      JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) r.tbl::oid
      JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid
                         AND a.attnum OPERATOR(pg_catalog.=) r.attnum
     WHERE pdp._rule_misfit(r.rule, a.atttypid, a.atttypmod, a.attnotnull) IS NOT NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'rule "%" does not fit column "%" of table "%" as %', bad.rule, bad.col, bad.relname, bad.typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Drop or change the column''s rule first.';
    END IF;
    -- Follow column renames: the attnum is stable, the name is not.
    FOR t IN
        UPDATE pdp.subject_column s SET col = a.attname
          FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid
           AND a.attnum OPERATOR(pg_catalog.=) s.attnum
           AND a.attname OPERATOR(pg_catalog.<>) s.col
        RETURNING s.tbl
    LOOP
        PERFORM pdp._sync_rectification_trigger(t);
    END LOOP;
    FOR t IN
        UPDATE pdp.column_rule r SET col = a.attname
          FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid
           AND a.attnum OPERATOR(pg_catalog.=) r.attnum
           AND a.attname OPERATOR(pg_catalog.<>) r.col
        RETURNING r.tbl
    LOOP
        -- The on-write trigger names columns in its arguments: rebuild it.
        IF pdp._on_write_enabled(t) THEN
            PERFORM pdp._sync_on_write_trigger(t, true);
        END IF;
        PERFORM pdp._sync_rectification_trigger(t);
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp._on_alter_table() IS
    'event trigger: follows column renames; refuses type changes that registrations or rules cannot take';
CREATE EVENT TRIGGER pdp_on_alter_table ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION pdp._on_alter_table();
COMMENT ON EVENT TRIGGER pdp_on_alter_table IS 'follows column renames; refuses unsupported type changes of subject and ruled columns';

-- ===== src/sql/50_consent.sql =====
-- Purposes, consent, restriction and policy versions, and the row-level
-- security that enforces them on protected tables.
--
-- Subjects are keyed by the text form of their identifier everywhere, so
-- bigint, integer, text and uuid subject columns share one key space.

CREATE TABLE pdp.purpose (
    purpose            text        PRIMARY KEY,
    legal_basis        text        NOT NULL,
    description        text,
    requires_consent   boolean     NOT NULL,
    restriction_exempt boolean     NOT NULL,
    defined_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    defined_by         name        NOT NULL DEFAULT CURRENT_USER,
    CONSTRAINT purpose_name_check CHECK (purpose ~ '^[^[:cntrl:]]{1,63}$'),
    CONSTRAINT purpose_legal_basis_check CHECK (legal_basis IN
        ('consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task', 'legitimate_interests'))
);
COMMENT ON TABLE pdp.purpose IS 'purposes of processing, each with its legal basis (GDPR Art. 6, Law 94-V Art. 7)';
COMMENT ON COLUMN pdp.purpose.purpose IS 'the purpose''s name, as sessions declare it in pdp.purpose';
COMMENT ON COLUMN pdp.purpose.legal_basis IS 'consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests';
COMMENT ON COLUMN pdp.purpose.description IS 'what the purpose is, in words for the register';
COMMENT ON COLUMN pdp.purpose.requires_consent IS 'rows are visible for this purpose only with the subject''s active consent';
COMMENT ON COLUMN pdp.purpose.restriction_exempt IS 'restricted subjects stay visible for this purpose (legal obligations and claims, vital and public interests)';
COMMENT ON COLUMN pdp.purpose.defined_at IS 'when the purpose was defined';
COMMENT ON COLUMN pdp.purpose.defined_by IS 'who defined it';
SELECT pg_catalog.pg_extension_config_dump('pdp.purpose', '');

CREATE TABLE pdp.purpose_grant (
    role       regrole     NOT NULL,
    purpose    text        NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    granted_by name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (role, purpose)
);
COMMENT ON TABLE pdp.purpose_grant IS 'which roles (and their members) may declare which purposes';
COMMENT ON COLUMN pdp.purpose_grant.role IS 'the role; its members inherit the grant';
COMMENT ON COLUMN pdp.purpose_grant.purpose IS 'the purpose it may declare';
COMMENT ON COLUMN pdp.purpose_grant.granted_at IS 'when';
COMMENT ON COLUMN pdp.purpose_grant.granted_by IS 'by whom';
SELECT pg_catalog.pg_extension_config_dump('pdp.purpose_grant', '');

CREATE TABLE pdp.policy_version (
    version         text        PRIMARY KEY,
    effective_from  timestamptz NOT NULL,
    document_sha256 text        NOT NULL,
    published_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    published_by    name        NOT NULL DEFAULT CURRENT_USER,
    CONSTRAINT policy_version_sha256_check CHECK (document_sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT policy_version_name_check CHECK (version ~ '^[^[:cntrl:]]{1,63}$')
);
COMMENT ON TABLE pdp.policy_version IS 'published versions of the privacy policy';
COMMENT ON COLUMN pdp.policy_version.version IS 'the version''s name';
COMMENT ON COLUMN pdp.policy_version.effective_from IS 'when it takes effect (published at least 10 days before)';
COMMENT ON COLUMN pdp.policy_version.document_sha256 IS 'SHA-256 of the published document, lower-case hex';
COMMENT ON COLUMN pdp.policy_version.published_at IS 'when it was published';
COMMENT ON COLUMN pdp.policy_version.published_by IS 'who published it';
SELECT pg_catalog.pg_extension_config_dump('pdp.policy_version', '');

-- Consent history: append-only facts.  A withdrawal is a new fact.
CREATE TABLE pdp.consent_event (
    id             bigserial   PRIMARY KEY,
    subject        text        NOT NULL,
    purpose        text        NOT NULL,
    action         text        NOT NULL CHECK (action IN ('grant', 'withdraw')),
    policy_version text,
    evidence       jsonb       NOT NULL DEFAULT '{}',
    valid_until    timestamptz,
    at             timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    recorded_by    name        NOT NULL DEFAULT SESSION_USER
);
CREATE INDEX consent_event_subject_idx ON pdp.consent_event (subject, purpose, at);
COMMENT ON TABLE pdp.consent_event IS 'every grant and withdrawal of consent, never updated or deleted';
COMMENT ON SEQUENCE pdp.consent_event_id_seq IS 'numbers consent events';
COMMENT ON COLUMN pdp.consent_event.id IS 'the event''s number; grant_consent returns it';
COMMENT ON COLUMN pdp.consent_event.subject IS 'the subject''s identifier, in text form';
COMMENT ON COLUMN pdp.consent_event.purpose IS 'the purpose consented to or withdrawn from';
COMMENT ON COLUMN pdp.consent_event.action IS 'grant or withdraw';
COMMENT ON COLUMN pdp.consent_event.policy_version IS 'the privacy policy version the consent was given under';
COMMENT ON COLUMN pdp.consent_event.evidence IS 'how consent was given: form, IP, hash of the text shown (Law 94-V Art. 8, GDPR Art. 7(1))';
COMMENT ON COLUMN pdp.consent_event.valid_until IS 'when a time-limited consent expires';
COMMENT ON COLUMN pdp.consent_event.at IS 'when it happened';
COMMENT ON COLUMN pdp.consent_event.recorded_by IS 'the session user that recorded it';
SELECT pg_catalog.pg_extension_config_dump('pdp.consent_event', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.consent_event_id_seq', '');

-- Current consents, kept by grant_consent and withdraw_consent; derived from
-- consent_event, but indexed for the per-row visibility check.
CREATE TABLE pdp.consent_state (
    subject        text        NOT NULL,
    purpose        text        NOT NULL,
    event_id       bigint      NOT NULL,
    policy_version text,
    valid_until    timestamptz,
    PRIMARY KEY (subject, purpose)
);
COMMENT ON TABLE pdp.consent_state IS 'active consents (granted, not withdrawn; may have expired: see valid_until)';
COMMENT ON COLUMN pdp.consent_state.subject IS 'the subject''s identifier, in text form';
COMMENT ON COLUMN pdp.consent_state.purpose IS 'the purpose';
COMMENT ON COLUMN pdp.consent_state.event_id IS 'the grant event in pdp.consent_event';
COMMENT ON COLUMN pdp.consent_state.policy_version IS 'the policy version of that grant';
COMMENT ON COLUMN pdp.consent_state.valid_until IS 'when it expires; NULL for never';
SELECT pg_catalog.pg_extension_config_dump('pdp.consent_state', '');

CREATE TABLE pdp.restriction (
    subject       text        PRIMARY KEY,
    reason        text        NOT NULL,
    since         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    restricted_by name        NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE pdp.restriction IS 'subjects whose processing is restricted (GDPR Art. 18) or blocked (Law 94-V)';
COMMENT ON COLUMN pdp.restriction.subject IS 'the subject''s identifier, in text form';
COMMENT ON COLUMN pdp.restriction.reason IS 'why, as recorded with the request';
COMMENT ON COLUMN pdp.restriction.since IS 'when the restriction began';
COMMENT ON COLUMN pdp.restriction.restricted_by IS 'the session user that recorded it';
SELECT pg_catalog.pg_extension_config_dump('pdp.restriction', '');

CREATE TABLE pdp.restriction_event (
    id          bigserial   PRIMARY KEY,
    subject     text        NOT NULL,
    action      text        NOT NULL CHECK (action IN ('restrict', 'lift')),
    reason      text,
    at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    recorded_by name        NOT NULL DEFAULT SESSION_USER
);
CREATE INDEX restriction_event_subject_idx ON pdp.restriction_event (subject, at);
COMMENT ON TABLE pdp.restriction_event IS 'every restriction and lifting, never updated or deleted';
COMMENT ON SEQUENCE pdp.restriction_event_id_seq IS 'numbers restriction events';
COMMENT ON COLUMN pdp.restriction_event.id IS 'the event''s number';
COMMENT ON COLUMN pdp.restriction_event.subject IS 'the subject''s identifier, in text form';
COMMENT ON COLUMN pdp.restriction_event.action IS 'restrict or lift';
COMMENT ON COLUMN pdp.restriction_event.reason IS 'why';
COMMENT ON COLUMN pdp.restriction_event.at IS 'when';
COMMENT ON COLUMN pdp.restriction_event.recorded_by IS 'the session user that recorded it';
SELECT pg_catalog.pg_extension_config_dump('pdp.restriction_event', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.restriction_event_id_seq', '');

-- History is append-only: UPDATE and DELETE are refused, for the owner too.
CREATE FUNCTION pdp._refuse_history_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'table "%" is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'Consent and restriction history is never changed; record a new event instead.';
END
$$;
COMMENT ON FUNCTION pdp._refuse_history_change() IS 'trigger: keeps consent and restriction history append-only';
CREATE TRIGGER consent_event_append_only BEFORE UPDATE OR DELETE ON pdp.consent_event
    FOR EACH ROW EXECUTE FUNCTION pdp._refuse_history_change();
CREATE TRIGGER consent_event_no_truncate BEFORE TRUNCATE ON pdp.consent_event
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._refuse_history_change();
CREATE TRIGGER restriction_event_append_only BEFORE UPDATE OR DELETE ON pdp.restriction_event
    FOR EACH ROW EXECUTE FUNCTION pdp._refuse_history_change();
CREATE TRIGGER restriction_event_no_truncate BEFORE TRUNCATE ON pdp.restriction_event
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._refuse_history_change();

-- C helpers: the row test of the generated policies (src/visibility.c), the
-- invalidation that keeps every session's view of purposes and grants
-- current (src/consent.c), and the trigger refusing writes to restricted rows.
-- Consents and restrictions are read under each query's own snapshot: no
-- backend keeps a copy, and no invalidation is needed for them.
CREATE FUNCTION pdp._visible(subject bigint) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_int8';
COMMENT ON FUNCTION pdp._visible(bigint) IS
    'row test of protected tables: the declared purpose is allowed, consented to if needed, and the subject not restricted';
CREATE FUNCTION pdp._visible(subject text) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_text';
COMMENT ON FUNCTION pdp._visible(text) IS 'pdp._visible for text and varchar subjects';
CREATE FUNCTION pdp._visible(subject uuid) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_uuid';
COMMENT ON FUNCTION pdp._visible(uuid) IS 'pdp._visible for uuid subjects';

CREATE FUNCTION pdp._config_changed() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_config_changed';
COMMENT ON FUNCTION pdp._config_changed() IS
    'trigger: tells every session that purposes or purpose grants changed (at commit)';
CREATE TRIGGER purpose_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pdp.purpose
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._config_changed();
CREATE TRIGGER purpose_grant_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pdp.purpose_grant
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._config_changed();
-- Logical replication: a subscriber's apply worker runs with
-- session_replication_role = replica and fires only row triggers enabled for
-- replica mode, so these row-level twins of the triggers above (replica mode
-- only, hence no cost on the publisher) keep a subscriber's sessions current.
CREATE TRIGGER purpose_replicated AFTER INSERT OR UPDATE OR DELETE ON pdp.purpose
    FOR EACH ROW EXECUTE FUNCTION pdp._config_changed();
ALTER TABLE pdp.purpose ENABLE REPLICA TRIGGER purpose_replicated;
COMMENT ON TRIGGER purpose_replicated ON pdp.purpose IS
    'replica mode only: a change applied by logical replication reaches every session''s cache';
CREATE TRIGGER purpose_grant_replicated AFTER INSERT OR UPDATE OR DELETE ON pdp.purpose_grant
    FOR EACH ROW EXECUTE FUNCTION pdp._config_changed();
ALTER TABLE pdp.purpose_grant ENABLE REPLICA TRIGGER purpose_grant_replicated;
COMMENT ON TRIGGER purpose_grant_replicated ON pdp.purpose_grant IS
    'replica mode only: a change applied by logical replication reaches every session''s cache';
CREATE FUNCTION pdp._refuse_restricted() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_refuse_restricted';
COMMENT ON FUNCTION pdp._refuse_restricted() IS
    'trigger: refuses UPDATE and DELETE of rows whose registered subject is restricted';

-- Purposes -------------------------------------------------------------------

CREATE FUNCTION pdp.define_purpose(purpose text, legal_basis text, description text DEFAULT NULL,
                                   requires_consent boolean DEFAULT NULL,
                                   restriction_exempt boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF purpose IS NULL OR legal_basis IS NULL THEN
        RAISE EXCEPTION 'purpose and legal basis must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF legal_basis NOT IN ('consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task', 'legitimate_interests') THEN
        RAISE EXCEPTION 'unknown legal basis'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests.';
    END IF;
    IF purpose !~ '^[^[:cntrl:]]{1,63}$' THEN
        RAISE EXCEPTION 'a purpose''s name must be 1 to 63 characters without control characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF legal_basis = 'consent' AND requires_consent IS FALSE THEN
        RAISE EXCEPTION 'a purpose based on consent requires consent' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pdp.purpose AS p (purpose, legal_basis, description, requires_consent, restriction_exempt)
    VALUES (define_purpose.purpose, define_purpose.legal_basis, define_purpose.description,
            coalesce(define_purpose.requires_consent, define_purpose.legal_basis = 'consent'),
            coalesce(define_purpose.restriction_exempt,
                     define_purpose.legal_basis IN ('legal_obligation', 'vital_interests', 'public_task')))
    ON CONFLICT ON CONSTRAINT purpose_pkey DO UPDATE
       SET legal_basis = EXCLUDED.legal_basis, description = EXCLUDED.description,
           requires_consent = EXCLUDED.requires_consent, restriction_exempt = EXCLUDED.restriction_exempt,
           defined_at = pg_catalog.now(), defined_by = CURRENT_USER;
    PERFORM pdp._audit('define_purpose', purpose, NULL, pg_catalog.jsonb_build_object('legal_basis', legal_basis));
END
$$;
COMMENT ON FUNCTION pdp.define_purpose(text, text, text, boolean, boolean) IS
    'defines (or redefines) a purpose; requires_consent defaults to true exactly for the consent basis';

CREATE FUNCTION pdp._require_purpose(p text) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p IS NULL THEN
        RAISE EXCEPTION 'purpose must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.purpose x WHERE x.purpose OPERATOR(pg_catalog.=) p) THEN
        RAISE EXCEPTION 'unknown purpose' USING ERRCODE = 'undefined_object',
              HINT = 'pdp.define_purpose defines purposes; pdp.purposes lists them.';
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._require_purpose(text) IS 'raises unless the purpose is defined';

CREATE FUNCTION pdp.allow_purpose(role regrole, purpose text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    INSERT INTO pdp.purpose_grant (role, purpose) VALUES (allow_purpose.role, allow_purpose.purpose)
    ON CONFLICT DO NOTHING;
    PERFORM pdp._audit('allow_purpose', purpose, NULL, pg_catalog.jsonb_build_object('role', role::text));
END
$$;
COMMENT ON FUNCTION pdp.allow_purpose(regrole, text) IS 'lets a role (and its members) declare a purpose';

CREATE FUNCTION pdp.disallow_purpose(role regrole, purpose text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    DELETE FROM pdp.purpose_grant g
     WHERE g.role OPERATOR(pg_catalog.=) disallow_purpose.role AND g.purpose OPERATOR(pg_catalog.=) disallow_purpose.purpose;
    IF FOUND THEN
        PERFORM pdp._audit('disallow_purpose', purpose, NULL, pg_catalog.jsonb_build_object('role', role::text));
        RETURN true;
    END IF;
    RETURN false;
END
$$;
COMMENT ON FUNCTION pdp.disallow_purpose(regrole, text) IS 'withdraws a role''s right to declare a purpose; true if it had it';

CREATE VIEW pdp.purposes AS
SELECT p.purpose, p.legal_basis, p.requires_consent, p.restriction_exempt, p.description,
       coalesce((SELECT pg_catalog.array_agg(g.role ORDER BY g.role::text) FROM pdp.purpose_grant g
                  WHERE g.purpose OPERATOR(pg_catalog.=) p.purpose), '{}') AS allowed_roles,
       p.defined_at, p.defined_by
  FROM pdp.purpose p;
COMMENT ON VIEW pdp.purposes IS 'purposes with their legal bases and the roles that may declare them';

-- Consent ------------------------------------------------------------------

CREATE FUNCTION pdp.grant_consent(subject text, purpose text, policy_version text DEFAULT NULL,
                                  evidence jsonb DEFAULT '{}', valid_until timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    event bigint;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    IF policy_version IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM pdp.policy_version v WHERE v.version OPERATOR(pg_catalog.=) grant_consent.policy_version) THEN
        RAISE EXCEPTION 'unknown policy version' USING ERRCODE = 'undefined_object',
              HINT = 'pdp.publish_policy publishes versions; pdp.policies lists them.';
    END IF;
    IF evidence IS NULL OR jsonb_typeof(evidence) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'evidence must be a JSON object' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'For example {"form": "signup-v3", "ip": "…", "text_sha256": "…"}.';
    END IF;
    IF valid_until IS NOT NULL AND valid_until <= pg_catalog.now() THEN
        RAISE EXCEPTION 'valid_until must be in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pdp.consent_event (subject, purpose, action, policy_version, evidence, valid_until)
    VALUES (grant_consent.subject, grant_consent.purpose, 'grant', grant_consent.policy_version,
            grant_consent.evidence, grant_consent.valid_until)
    RETURNING id INTO event;
    INSERT INTO pdp.consent_state AS s (subject, purpose, event_id, policy_version, valid_until)
    VALUES (grant_consent.subject, grant_consent.purpose, event, grant_consent.policy_version, grant_consent.valid_until)
    ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
       SET event_id = EXCLUDED.event_id, policy_version = EXCLUDED.policy_version, valid_until = EXCLUDED.valid_until;
    PERFORM pdp._audit('grant_consent', purpose, subject,
                       pg_catalog.jsonb_build_object('event_id', event, 'policy_version', policy_version,
                                                     'time_limited', valid_until IS NOT NULL));
    RETURN event;
END
$$;
COMMENT ON FUNCTION pdp.grant_consent(text, text, text, jsonb, timestamptz) IS
    'records a subject''s consent to a purpose with its evidence; returns the event''s id';
CREATE FUNCTION pdp.grant_consent(subject bigint, purpose text, policy_version text DEFAULT NULL,
                                  evidence jsonb DEFAULT '{}', valid_until timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE sql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.grant_consent(subject::text, purpose, policy_version, evidence, valid_until) $$;
COMMENT ON FUNCTION pdp.grant_consent(bigint, text, text, jsonb, timestamptz) IS 'grant_consent for a bigint or integer subject';
CREATE FUNCTION pdp.grant_consent(subject uuid, purpose text, policy_version text DEFAULT NULL,
                                  evidence jsonb DEFAULT '{}', valid_until timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE sql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.grant_consent(subject::text, purpose, policy_version, evidence, valid_until) $$;
COMMENT ON FUNCTION pdp.grant_consent(uuid, text, text, jsonb, timestamptz) IS 'grant_consent for a uuid subject';

CREATE FUNCTION pdp.withdraw_consent(subject text, purpose text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    DELETE FROM pdp.consent_state s
     WHERE s.subject OPERATOR(pg_catalog.=) withdraw_consent.subject
       AND s.purpose OPERATOR(pg_catalog.=) withdraw_consent.purpose;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO pdp.consent_event (subject, purpose, action)
    VALUES (withdraw_consent.subject, withdraw_consent.purpose, 'withdraw');
    PERFORM pdp._audit('withdraw_consent', purpose, subject);
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp.withdraw_consent(text, text) IS
    'withdraws a subject''s consent to a purpose; true if there was one to withdraw';
CREATE FUNCTION pdp.withdraw_consent(subject bigint, purpose text) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.withdraw_consent(subject::text, purpose) $$;
COMMENT ON FUNCTION pdp.withdraw_consent(bigint, text) IS 'withdraw_consent for a bigint or integer subject';
CREATE FUNCTION pdp.withdraw_consent(subject uuid, purpose text) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.withdraw_consent(subject::text, purpose) $$;
COMMENT ON FUNCTION pdp.withdraw_consent(uuid, text) IS 'withdraw_consent for a uuid subject';

-- Bulk consent --------------------------------------------------------------

CREATE TYPE pdp.consent_import AS (
    subject        text,
    purpose        text,
    given_at       timestamptz,
    policy_version text,
    evidence       jsonb,
    valid_until    timestamptz
);
COMMENT ON TYPE pdp.consent_import IS
    'one consent for pdp.import_consents: subject, purpose, when it was given, policy version, evidence, expiry';

-- The set-based core of import_consents: validates every row first (the
-- first bad row refuses the whole call, named by its position, never by its
-- values), then records the grants in two statements and one audit entry.
CREATE FUNCTION pdp._import_consents(consents pdp.consent_import[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    total bigint;
BEGIN
    IF consents IS NULL THEN
        RAISE EXCEPTION 'consents must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- One form per subject (issue 14, class 7); a row whose subject fits no
    -- registered subject column is named by its number.
    SELECT u.n INTO bad FROM pg_catalog.unnest(consents) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, n)
     WHERE u.subject OPERATOR(pg_catalog.<>) '' AND pdp._canonical_subject_or_null(u.subject) IS NULL ORDER BY u.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'row % of the import has a subject that fits no registered subject column', bad.n
            USING ERRCODE = 'invalid_text_representation', DETAIL = 'Nothing was imported.';
    END IF;
    consents := ARRAY(SELECT ROW(pdp._canonical_subject_or_null(u.subject), u.purpose, u.given_at, u.policy_version, u.evidence, u.valid_until)::pdp.consent_import
                        FROM pg_catalog.unnest(consents) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, n)
                       ORDER BY u.n);
    -- The first row that breaks a rule, and which rule.
    SELECT i.n, CASE
             WHEN i.subject IS NULL OR i.subject OPERATOR(pg_catalog.=) '' THEN 'has no subject'
             WHEN i.purpose IS NULL THEN 'has no purpose'
             WHEN NOT EXISTS (SELECT 1 FROM pdp.purpose p WHERE p.purpose OPERATOR(pg_catalog.=) i.purpose)
                  THEN 'names an unknown purpose'
             WHEN i.given_at IS NULL THEN 'has no time of consent'
             WHEN i.given_at OPERATOR(pg_catalog.>) pg_catalog.now() THEN 'gives a time of consent in the future'
             WHEN i.policy_version IS NOT NULL AND NOT EXISTS
                  (SELECT 1 FROM pdp.policy_version v WHERE v.version OPERATOR(pg_catalog.=) i.policy_version)
                  THEN 'names an unknown policy version'
             WHEN pg_catalog.jsonb_typeof(i.evidence) OPERATOR(pg_catalog.<>) 'object' THEN 'has evidence that is not a JSON object'
             WHEN i.valid_until IS NOT NULL AND i.valid_until OPERATOR(pg_catalog.<=) pg_catalog.now()
                  THEN 'has a validity that has already ended'
             WHEN EXISTS (SELECT 1 FROM pdp.consent_event e
                           WHERE e.subject OPERATOR(pg_catalog.=) i.subject AND e.purpose OPERATOR(pg_catalog.=) i.purpose
                             AND e.at OPERATOR(pg_catalog.>=) i.given_at)
                  THEN 'is not newer than the subject''s recorded consent history for the purpose'
           END AS rule,
           CASE WHEN i.purpose IS NOT NULL AND NOT EXISTS
                         (SELECT 1 FROM pdp.purpose p WHERE p.purpose OPERATOR(pg_catalog.=) i.purpose)
                     OR (i.policy_version IS NOT NULL AND NOT EXISTS
                         (SELECT 1 FROM pdp.policy_version v WHERE v.version OPERATOR(pg_catalog.=) i.policy_version))
                THEN '42704' WHEN i.subject IS NULL OR i.subject OPERATOR(pg_catalog.=) '' THEN '22P02'
                ELSE '22023' END AS state
      INTO bad
      FROM (SELECT u.n, u.subject, u.purpose, u.given_at, u.policy_version, coalesce(u.evidence, '{}') AS evidence, u.valid_until FROM pg_catalog.unnest(consents) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, n)) i
     WHERE i.subject IS NULL OR i.subject OPERATOR(pg_catalog.=) '' OR i.purpose IS NULL OR i.given_at IS NULL
        OR i.given_at OPERATOR(pg_catalog.>) pg_catalog.now()
        OR pg_catalog.jsonb_typeof(i.evidence) OPERATOR(pg_catalog.<>) 'object'
        OR (i.valid_until IS NOT NULL AND i.valid_until OPERATOR(pg_catalog.<=) pg_catalog.now())
        OR NOT EXISTS (SELECT 1 FROM pdp.purpose p WHERE p.purpose OPERATOR(pg_catalog.=) i.purpose)
        OR (i.policy_version IS NOT NULL AND NOT EXISTS
            (SELECT 1 FROM pdp.policy_version v WHERE v.version OPERATOR(pg_catalog.=) i.policy_version))
        OR EXISTS (SELECT 1 FROM pdp.consent_event e
                    WHERE e.subject OPERATOR(pg_catalog.=) i.subject AND e.purpose OPERATOR(pg_catalog.=) i.purpose
                      AND e.at OPERATOR(pg_catalog.>=) i.given_at)
     ORDER BY i.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'row % of the import %', bad.n, bad.rule
            USING ERRCODE = bad.state, DETAIL = 'Nothing was imported.';
    END IF;
    SELECT d.n INTO bad FROM (
        SELECT i.n, pg_catalog.row_number() OVER (PARTITION BY i.subject, i.purpose ORDER BY i.n) AS k
          FROM (SELECT u.n, u.subject, u.purpose, u.given_at, u.policy_version, coalesce(u.evidence, '{}') AS evidence, u.valid_until FROM pg_catalog.unnest(consents) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, n)) i) d
     WHERE d.k > 1 ORDER BY d.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'row % of the import repeats the subject and purpose of an earlier row', bad.n
            USING ERRCODE = 'unique_violation', DETAIL = 'Nothing was imported.';
    END IF;

    WITH ev AS (
        INSERT INTO pdp.consent_event (subject, purpose, action, policy_version, evidence, valid_until, at)
        SELECT i.subject, i.purpose, 'grant', i.policy_version, i.evidence, i.valid_until, i.given_at
          FROM (SELECT u.n, u.subject, u.purpose, u.given_at, u.policy_version, coalesce(u.evidence, '{}') AS evidence, u.valid_until FROM pg_catalog.unnest(consents) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, n)) i ORDER BY i.n
        RETURNING id, subject, purpose, policy_version, valid_until)
    INSERT INTO pdp.consent_state AS s (subject, purpose, event_id, policy_version, valid_until)
    SELECT ev.subject, ev.purpose, ev.id, ev.policy_version, ev.valid_until FROM ev
    ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
       SET event_id = EXCLUDED.event_id, policy_version = EXCLUDED.policy_version, valid_until = EXCLUDED.valid_until;
    GET DIAGNOSTICS total = ROW_COUNT;
    PERFORM pdp._audit('import_consents', NULL, NULL, pg_catalog.jsonb_build_object('consents', total));
    RETURN total;
END
$$;
COMMENT ON FUNCTION pdp._import_consents(pdp.consent_import[]) IS
    'set-based core of pdp.import_consents';

CREATE FUNCTION pdp.import_consents(consents pdp.consent_import[]) RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp._import_consents(consents) $$;
COMMENT ON FUNCTION pdp.import_consents(pdp.consent_import[]) IS
    'records many consents at once, all or nothing, each with its history and evidence; one audit entry with the count; returns the count';

-- The rows are read here, as the caller (a view or function in the source
-- runs with the caller's rights, never pdp's), and handed over as an array.
CREATE FUNCTION pdp.import_consents_from(source regclass) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rows pdp.consent_import[];
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'source must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.array_agg(ROW(s.subject, s.purpose, s.given_at, s.policy_version, s.evidence, s.valid_until)::pdp.consent_import) FROM %s s',
        source) INTO rows;
    RETURN pdp._import_consents(coalesce(rows, '{}'));
EXCEPTION WHEN undefined_column THEN
    RAISE EXCEPTION 'source "%" lacks a column of pdp.consent_import', pdp._relname(source)
        USING ERRCODE = 'undefined_column',
              HINT = 'The source needs the columns subject, purpose, given_at, policy_version, evidence and valid_until.';
END
$$;
COMMENT ON FUNCTION pdp.import_consents_from(regclass) IS
    'import_consents from a table or view with the columns of pdp.consent_import, read with the caller''s rights';

CREATE FUNCTION pdp.withdraw_consents(subjects text[], purpose text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF subjects IS NULL THEN
        RAISE EXCEPTION 'subjects must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    subjects := ARRAY(SELECT pdp._canonical_subject(x) FROM pg_catalog.unnest(subjects) x);  -- issue 14, class 7
    PERFORM pdp._require_purpose(purpose);
    WITH gone AS (
        DELETE FROM pdp.consent_state s
         WHERE s.purpose OPERATOR(pg_catalog.=) withdraw_consents.purpose
           AND s.subject OPERATOR(pg_catalog.=) ANY (withdraw_consents.subjects)
        RETURNING s.subject)
    INSERT INTO pdp.consent_event (subject, purpose, action)
    SELECT gone.subject, withdraw_consents.purpose, 'withdraw' FROM gone;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM pdp._audit('withdraw_consents', purpose, NULL, pg_catalog.jsonb_build_object('consents', n));
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp.withdraw_consents(text[], text) IS
    'withdraws many subjects'' consent to a purpose at once; returns how many had one; one audit entry with the count';

-- Active consent now, or at a past moment (answered from the history).
CREATE FUNCTION pdp.has_consent(subject text, purpose text, at timestamptz DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e record;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    IF at IS NULL THEN
        RETURN EXISTS (SELECT 1 FROM pdp.consent_state s
                        WHERE s.subject OPERATOR(pg_catalog.=) has_consent.subject
                          AND s.purpose OPERATOR(pg_catalog.=) has_consent.purpose
                          AND (s.valid_until IS NULL OR s.valid_until > pg_catalog.now()));
    END IF;
    SELECT c.action, c.valid_until INTO e FROM pdp.consent_event c
     WHERE c.subject OPERATOR(pg_catalog.=) has_consent.subject
       AND c.purpose OPERATOR(pg_catalog.=) has_consent.purpose
       AND c.at <= has_consent.at
     ORDER BY c.at DESC, c.id DESC LIMIT 1;
    RETURN FOUND AND e.action = 'grant' AND (e.valid_until IS NULL OR e.valid_until > has_consent.at);
END
$$;
COMMENT ON FUNCTION pdp.has_consent(text, text, timestamptz) IS
    'whether the subject has active consent to the purpose now, or at the given past moment';
CREATE FUNCTION pdp.has_consent(subject bigint, purpose text, at timestamptz DEFAULT NULL) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.has_consent(subject::text, purpose, at) $$;
COMMENT ON FUNCTION pdp.has_consent(bigint, text, timestamptz) IS 'has_consent for a bigint or integer subject';
CREATE FUNCTION pdp.has_consent(subject uuid, purpose text, at timestamptz DEFAULT NULL) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.has_consent(subject::text, purpose, at) $$;
COMMENT ON FUNCTION pdp.has_consent(uuid, text, timestamptz) IS 'has_consent for a uuid subject';

CREATE FUNCTION pdp.consent_history(subject text)
RETURNS TABLE (event_id bigint, purpose text, action text, policy_version text, evidence jsonb,
               valid_until timestamptz, at timestamptz, recorded_by name)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY
    SELECT c.id, c.purpose, c.action, c.policy_version, c.evidence, c.valid_until, c.at, c.recorded_by
      FROM pdp.consent_event c WHERE c.subject OPERATOR(pg_catalog.=) consent_history.subject
     ORDER BY c.at, c.id;
END
$$;
COMMENT ON FUNCTION pdp.consent_history(text) IS 'every consent grant and withdrawal of a subject, oldest first';
CREATE FUNCTION pdp.consent_history(subject bigint)
RETURNS TABLE (event_id bigint, purpose text, action text, policy_version text, evidence jsonb,
               valid_until timestamptz, at timestamptz, recorded_by name)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM pdp.consent_history(subject::text) $$;
COMMENT ON FUNCTION pdp.consent_history(bigint) IS 'consent_history for a bigint or integer subject';
CREATE FUNCTION pdp.consent_history(subject uuid)
RETURNS TABLE (event_id bigint, purpose text, action text, policy_version text, evidence jsonb,
               valid_until timestamptz, at timestamptz, recorded_by name)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM pdp.consent_history(subject::text) $$;
COMMENT ON FUNCTION pdp.consent_history(uuid) IS 'consent_history for a uuid subject';

-- Restriction --------------------------------------------------------------

CREATE FUNCTION pdp.restrict_subject(subject text, reason text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL OR reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'subject and reason must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO pdp.restriction (subject, reason) VALUES (restrict_subject.subject, restrict_subject.reason)
    ON CONFLICT ON CONSTRAINT restriction_pkey DO NOTHING;
    IF FOUND THEN
        INSERT INTO pdp.restriction_event (subject, action, reason)
        VALUES (restrict_subject.subject, 'restrict', restrict_subject.reason);
        PERFORM pdp._audit('restrict_subject', NULL, subject);
    END IF;
END
$$;
COMMENT ON FUNCTION pdp.restrict_subject(text, text) IS
    'restricts (blocks) processing of a subject: rows hidden from non-exempt purposes, updates and deletes refused';
CREATE FUNCTION pdp.restrict_subject(subject bigint, reason text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.restrict_subject(subject::text, reason) $$;
COMMENT ON FUNCTION pdp.restrict_subject(bigint, text) IS 'restrict_subject for a bigint or integer subject';
CREATE FUNCTION pdp.restrict_subject(subject uuid, reason text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.restrict_subject(subject::text, reason) $$;
COMMENT ON FUNCTION pdp.restrict_subject(uuid, text) IS 'restrict_subject for a uuid subject';

CREATE FUNCTION pdp.lift_restriction(subject text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM pdp.restriction r WHERE r.subject OPERATOR(pg_catalog.=) lift_restriction.subject;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO pdp.restriction_event (subject, action) VALUES (lift_restriction.subject, 'lift');
    PERFORM pdp._audit('lift_restriction', NULL, subject);
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp.lift_restriction(text) IS 'lifts a subject''s restriction; true if there was one';
CREATE FUNCTION pdp.lift_restriction(subject bigint) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.lift_restriction(subject::text) $$;
COMMENT ON FUNCTION pdp.lift_restriction(bigint) IS 'lift_restriction for a bigint or integer subject';
CREATE FUNCTION pdp.lift_restriction(subject uuid) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.lift_restriction(subject::text) $$;
COMMENT ON FUNCTION pdp.lift_restriction(uuid) IS 'lift_restriction for a uuid subject';

-- Policy versions ----------------------------------------------------------

CREATE FUNCTION pdp.publish_policy(version text, effective_from timestamptz, document_sha256 text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF version IS NULL OR effective_from IS NULL OR document_sha256 IS NULL THEN
        RAISE EXCEPTION 'version, effective_from and document_sha256 must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF effective_from < pg_catalog.now() + interval '10 days' THEN
        RAISE EXCEPTION 'a policy version must be published at least 10 days before it takes effect'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The earliest allowed effective date is %s.', pg_catalog.now() + interval '10 days'),
                  HINT = 'Law 94-V practice and talap''s policy section 6.4 require 10 days'' notice.';
    END IF;
    IF document_sha256 !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'document_sha256 must be 64 lower-case hexadecimal digits' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF version !~ '^[^[:cntrl:]]{1,63}$' THEN
        RAISE EXCEPTION 'a version''s name must be 1 to 63 characters without control characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.policy_version v WHERE v.version OPERATOR(pg_catalog.=) publish_policy.version) THEN
        RAISE EXCEPTION 'policy version "%" is already published', version USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO pdp.policy_version (version, effective_from, document_sha256)
    VALUES (publish_policy.version, publish_policy.effective_from, publish_policy.document_sha256);
    PERFORM pdp._audit('publish_policy', version, NULL,
                       pg_catalog.jsonb_build_object('effective_from', effective_from, 'document_sha256', document_sha256));
END
$$;
COMMENT ON FUNCTION pdp.publish_policy(text, timestamptz, text) IS
    'publishes a privacy policy version; refused unless it takes effect at least 10 days from now';

CREATE VIEW pdp.policies AS
SELECT v.version, v.effective_from, v.document_sha256, v.published_at, v.published_by,
       coalesce(v.version OPERATOR(pg_catalog.=) (SELECT w.version FROM pdp.policy_version w
                                                   WHERE w.effective_from <= pg_catalog.now()
                                                   ORDER BY w.effective_from DESC LIMIT 1), false) AS in_effect
  FROM pdp.policy_version v;
COMMENT ON VIEW pdp.policies IS 'published policy versions; in_effect marks the one in force now';

CREATE FUNCTION pdp.subjects_needing_reconsent(purpose text DEFAULT NULL)
RETURNS TABLE (subject text, consented_purpose text, policy_version text, granted_at timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    current record;
BEGIN
    IF subjects_needing_reconsent.purpose IS NOT NULL THEN
        PERFORM pdp._require_purpose(subjects_needing_reconsent.purpose);
    END IF;
    SELECT v.version, v.effective_from INTO current FROM pdp.policy_version v
     WHERE v.effective_from <= pg_catalog.now() ORDER BY v.effective_from DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT s.subject, s.purpose, s.policy_version, e.at
      FROM pdp.consent_state s
      JOIN pdp.consent_event e ON e.id OPERATOR(pg_catalog.=) s.event_id
      LEFT JOIN pdp.policy_version v ON v.version OPERATOR(pg_catalog.=) s.policy_version
     WHERE (subjects_needing_reconsent.purpose IS NULL OR s.purpose OPERATOR(pg_catalog.=) subjects_needing_reconsent.purpose)
       AND (s.valid_until IS NULL OR s.valid_until > pg_catalog.now())
       AND (v.version IS NULL OR v.effective_from < current.effective_from)
     ORDER BY s.subject, s.purpose;
END
$$;
COMMENT ON FUNCTION pdp.subjects_needing_reconsent(text) IS
    'subjects whose active consent was given under an older policy version (or none) than the one in effect';

-- Protection records ---------------------------------------------------------

-- What pdp.protect_table installed on each protected table.  DDL that later
-- changes it (drops or alters pdp's policies or trigger, disables row-level
-- security or un-forces it) is refused by the guard in 55_protection_guard.sql;
-- only pdp.unprotect_table (audited) removes a record.
CREATE TABLE pdp.protection (
    tbl          regclass    PRIMARY KEY,
    forced       boolean     NOT NULL,
    policies     text        NOT NULL,
    policy_nodes text        NOT NULL,
    protected_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    protected_by name        NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE pdp.protection IS 'tables protected by pdp.protect_table, with the protection as installed';
COMMENT ON COLUMN pdp.protection.tbl IS 'the protected table';
COMMENT ON COLUMN pdp.protection.forced IS 'whether row-level security is forced on its owner';
COMMENT ON COLUMN pdp.protection.policies IS 'pdp''s policies as installed (pdp._protection_state), compared after every DDL';
COMMENT ON COLUMN pdp.protection.policy_nodes IS
    'pdp''s policies as parsed expressions (pdp._protection_nodes), which renames do not change';
COMMENT ON COLUMN pdp.protection.protected_at IS 'when it was (last) protected';
COMMENT ON COLUMN pdp.protection.protected_by IS 'the session user that protected it';
SELECT pg_catalog.pg_extension_config_dump('pdp.protection', '');

-- pdp's policies on tbl (not the permissive bases), as text that names
-- columns, not numbers, so that it survives renames and a dump and restore.
CREATE FUNCTION pdp._protection_state(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(pg_catalog.string_agg(pg_catalog.format('%s %s %s %s using (%s) check (%s)',
                        p.polname, p.polcmd, CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                        p.polroles::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                        pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)), '; ' ORDER BY p.polname), '')
        FROM pg_catalog.pg_policy p
       WHERE p.polrelid OPERATOR(pg_catalog.=) tbl::oid
         AND p.polname IN ('pdp_select', 'pdp_insert', 'pdp_update', 'pdp_delete') $$;
COMMENT ON FUNCTION pdp._protection_state(regclass) IS 'pdp''s policies on a table, as comparable text';

CREATE FUNCTION pdp._protection_nodes(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(pg_catalog.string_agg(pg_catalog.format('%s %s %s %s %s %s', p.polname, p.polcmd, p.polpermissive,
                        p.polroles::text, p.polqual::text, p.polwithcheck::text), '; ' ORDER BY p.polname), '')
        FROM pg_catalog.pg_policy p
       WHERE p.polrelid OPERATOR(pg_catalog.=) tbl::oid
         AND p.polname IN ('pdp_select', 'pdp_insert', 'pdp_update', 'pdp_delete') $$;
COMMENT ON FUNCTION pdp._protection_nodes(regclass) IS 'pdp''s policies on a table as parsed expressions (OIDs and column numbers)';


-- The role a session acts as (after SET ROLE), outside any SECURITY DEFINER
-- function: whom the protection functions, which run as the extension's
-- owner, check ownership for.
CREATE FUNCTION pdp._outer_user() RETURNS regrole
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_outer_user';
COMMENT ON FUNCTION pdp._outer_user() IS 'the role the session acts as, outside SECURITY DEFINER functions';

CREATE FUNCTION pdp._protection_ddl(active boolean) RETURNS boolean
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_protection_ddl';
COMMENT ON FUNCTION pdp._protection_ddl(boolean) IS
    'while pdp''s protection functions change its policies the guard stands aside: sets the switch (NULL reads it), returns its previous value';

CREATE FUNCTION pdp._require_outer_owner(tbl regclass) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid
                     AND pg_catalog.pg_has_role(pdp._outer_user()::oid, c.relowner, 'USAGE')) THEN
        RAISE EXCEPTION 'must be owner of table %', pdp._relname(tbl) USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._require_outer_owner(regclass) IS
    'raises unless the role the session acts as owns the table (for functions running as the extension''s owner)';

-- Row visibility -------------------------------------------------------------

-- The row test of a protected table over its registered subject columns,
-- as SQL for a policy or a masked view's WHERE (NULL when none is registered).
CREATE FUNCTION pdp._visibility_sql(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ WITH RECURSIVE up(rel, depth) AS (
          SELECT tbl::oid, 0
          UNION ALL
          SELECT i.inhparent, up.depth + 1 FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) up.rel
           WHERE up.depth < 32),
      owner AS (   -- the table itself if registered, else its nearest registered ancestor
          SELECT up.rel FROM up WHERE EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl::oid OPERATOR(pg_catalog.=) up.rel)
           ORDER BY up.depth LIMIT 1)
      SELECT pg_catalog.string_agg(pg_catalog.format('pdp._visible(%I)', s.col), ' AND ' ORDER BY s.attnum)
        FROM pdp.subject_column s JOIN owner ON s.tbl::oid OPERATOR(pg_catalog.=) owner.rel $$;
COMMENT ON FUNCTION pdp._visibility_sql(regclass) IS
    'the row test of a protected table, as SQL: its registered subject columns, or those of its nearest registered ancestor (NULL when none)';

CREATE FUNCTION pdp.protect_table(tbl regclass, force boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    PERFORM pdp._refuse_on_citus(tbl, 'protect');  -- Citus: refused until visibility is correct on workers (issue 18)
    PERFORM pdp._install_protection(tbl, force);
    PERFORM pdp._audit('protect_table', tbl::text, NULL, pg_catalog.jsonb_build_object('force', force));
END
$$;
COMMENT ON FUNCTION pdp.protect_table(regclass, boolean) IS
    'enables row-level security with consent-, purpose- and restriction-aware policies; force applies them to the owner too';

-- (Re)creates protect_table's policies and trigger; the caller has checked
-- that it may.  Also run by the update script over every protected table.
-- pdp's policies are RESTRICTIVE, so no other policy on the table can widen
-- what they show; for each command that no other permissive policy covers, a
-- permissive pdp_base_<command> (true) lets the restrictive ones decide.  The
-- installed state is recorded in pdp.protection, and DDL that later weakens
-- it is refused at commit (pdp._check_protection).
CREATE FUNCTION pdp._install_protection(tbl regclass, force boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vis text;
    cmd text;
    guarded boolean;
BEGIN
    PERFORM pdp._require_outer_owner(tbl);
    guarded := pdp._protection_ddl(true);
    vis := pdp._visibility_sql(tbl);
    IF vis IS NULL THEN
        RAISE EXCEPTION 'table "%" is not registered', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register its subject columns with pdp.register_table first.';
    END IF;
    PERFORM pdp._unprotect(tbl);
    EXECUTE pg_catalog.format('CREATE POLICY pdp_select ON %s AS RESTRICTIVE FOR SELECT USING (%s)', tbl, vis);
    EXECUTE pg_catalog.format('CREATE POLICY pdp_insert ON %s AS RESTRICTIVE FOR INSERT WITH CHECK (true)', tbl);
    EXECUTE pg_catalog.format('CREATE POLICY pdp_update ON %s AS RESTRICTIVE FOR UPDATE USING (%s) WITH CHECK (true)', tbl, vis);
    EXECUTE pg_catalog.format('CREATE POLICY pdp_delete ON %s AS RESTRICTIVE FOR DELETE USING (%s)', tbl, vis);
    FOREACH cmd IN ARRAY ARRAY['select', 'insert', 'update', 'delete'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy pol
                        WHERE pol.polrelid OPERATOR(pg_catalog.=) tbl::oid AND pol.polpermissive
                          AND pol.polname NOT LIKE 'pdp\_%'
                          AND pol.polcmd IN ('*', CASE cmd WHEN 'select' THEN 'r' WHEN 'insert' THEN 'a'
                                                           WHEN 'update' THEN 'w' ELSE 'd' END)) THEN
            EXECUTE pg_catalog.format('CREATE POLICY %I ON %s AS PERMISSIVE FOR %s %s', 'pdp_base_' || cmd, tbl, cmd,
                                      CASE cmd WHEN 'insert' THEN 'WITH CHECK (true)'
                                               WHEN 'update' THEN 'USING (true) WITH CHECK (true)'
                                               ELSE 'USING (true)' END);
        END IF;
    END LOOP;
    -- A partition already has its partitioned parent's copy of the trigger.
    IF NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl::oid
                     AND t.tgname OPERATOR(pg_catalog.=) 'pdp_refuse_restricted') THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER pdp_refuse_restricted BEFORE UPDATE OR DELETE ON %s '
                                  'FOR EACH ROW EXECUTE FUNCTION pdp._refuse_restricted()', tbl);
    END IF;
    EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    IF force THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    END IF;
    INSERT INTO pdp.protection AS r (tbl, forced, policies, policy_nodes)
    VALUES (tbl, force, pdp._protection_state(tbl), pdp._protection_nodes(tbl))
    ON CONFLICT ON CONSTRAINT protection_pkey DO UPDATE SET forced = EXCLUDED.forced, policies = EXCLUDED.policies,
                                    policy_nodes = EXCLUDED.policy_nodes,
                                    protected_at = pg_catalog.now(), protected_by = SESSION_USER;
    -- Partitions and inheritance children are read directly too: protect them.
    FOR cmd IN SELECT i.inhrelid::regclass::text FROM pg_catalog.pg_inherits i
                WHERE i.inhparent OPERATOR(pg_catalog.=) tbl::oid LOOP
        PERFORM pdp._install_protection(cmd::regclass, force);
    END LOOP;
    PERFORM pdp._protection_ddl(guarded);
END
$$;
COMMENT ON FUNCTION pdp._install_protection(regclass, boolean) IS
    'creates protect_table''s policies and restricted-row trigger and records them, for the table''s owner (no audit)';

-- Drops what protect_table made, if anything, and its record, for the
-- table's owner; audited, since it is the only way around the guard.
CREATE FUNCTION pdp._unprotect(tbl regclass) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p name;
    found_any boolean := false;
    guarded boolean;
BEGIN
    PERFORM pdp._require_outer_owner(tbl);
    guarded := pdp._protection_ddl(true);
    -- The record goes first: the guard checks recorded tables only.
    DELETE FROM pdp.protection r WHERE r.tbl OPERATOR(pg_catalog.=) _unprotect.tbl;
    FOR p IN SELECT pol.polname FROM pg_policy pol
              WHERE pol.polrelid OPERATOR(pg_catalog.=) tbl::oid
                AND pol.polname IN ('pdp_select', 'pdp_insert', 'pdp_update', 'pdp_delete',
                                    'pdp_base_select', 'pdp_base_insert', 'pdp_base_update', 'pdp_base_delete') LOOP
        EXECUTE pg_catalog.format('DROP POLICY %I ON %s', p, tbl);
        found_any := true;
    END LOOP;
    -- (A partition's copy of its parent's trigger goes with the parent's.)
    IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl::oid
                 AND t.tgname OPERATOR(pg_catalog.=) 'pdp_refuse_restricted'
                 AND t.tgparentid OPERATOR(pg_catalog.=) 0) THEN
        EXECUTE pg_catalog.format('DROP TRIGGER pdp_refuse_restricted ON %s', tbl);
        found_any := true;
    END IF;
    IF found_any THEN
        PERFORM pdp._audit('unprotect_table', tbl::text);
    END IF;
    PERFORM pdp._protection_ddl(guarded);
    RETURN found_any;
END
$$;
COMMENT ON FUNCTION pdp._unprotect(regclass) IS 'drops the policies, trigger and record of protect_table, for the table''s owner; audited';

CREATE FUNCTION pdp.unprotect_table(tbl regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF NOT pdp._unprotect(tbl) THEN
        RAISE EXCEPTION 'table "%" is not protected', pdp._relname(tbl) USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_policy pol WHERE pol.polrelid OPERATOR(pg_catalog.=) tbl::oid) THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', tbl);
        EXECUTE pg_catalog.format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', tbl);
    END IF;
END
$$;
COMMENT ON FUNCTION pdp.unprotect_table(regclass) IS
    'removes pdp_ext''s policies and trigger; row-level security is disabled if no other policy remains';

CREATE VIEW pdp.protected_tables AS
SELECT c.oid::regclass AS table_name, c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner_sees_all_unless_forced
  FROM pg_catalog.pg_class c
 WHERE EXISTS (SELECT 1 FROM pdp.protection r WHERE r.tbl::oid OPERATOR(pg_catalog.=) c.oid);
COMMENT ON VIEW pdp.protected_tables IS 'tables protected by pdp_ext; owners and BYPASSRLS roles see all rows unless forced';

-- Keeps a protected table's policies in step with its registered subject
-- columns; called by register_table and unregister_table.
CREATE FUNCTION pdp._sync_protection(tbl regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    forced boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pdp.protection r WHERE r.tbl OPERATOR(pg_catalog.=) _sync_protection.tbl) THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _sync_protection.tbl) THEN
        RAISE EXCEPTION 'cannot unregister the last subject column of protected table "%"', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call pdp.unprotect_table first.';
    END IF;
    SELECT c.relforcerowsecurity INTO forced FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid;
    PERFORM pdp._install_protection(tbl, forced);
END
$$;
COMMENT ON FUNCTION pdp._sync_protection(regclass) IS
    'rebuilds a protected table''s policies after its subject columns change';

-- ===== src/sql/55_protection_guard.sql =====
-- The protection guard: after any DDL that may touch a protected table, each
-- table recorded in pdp.protection must still have what pdp.protect_table
-- installed (row-level security on, forced if it was, pdp's policies as they
-- were, the restricted-row trigger enabled), or the DDL is refused.  Renames
-- and a dump and restore change the recorded text, not the policies: the
-- record keeps two forms (column names, and the parsed expressions) and a
-- change of only one of them is followed.  New partitions and inheritance
-- children of a protected table are protected as they appear.

CREATE FUNCTION pdp._guard_protection() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    child regclass;
    names text;
    nodes text;
BEGIN
    IF pdp._protection_ddl(NULL) THEN
        RETURN;     -- pdp's own protection functions at work
    END IF;
    FOR r IN SELECT p.tbl, p.forced, p.policies, p.policy_nodes FROM pdp.protection p LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) r.tbl::oid);
        IF NOT (SELECT c.relrowsecurity AND (c.relforcerowsecurity OR NOT r.forced)
                  FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) r.tbl::oid) THEN
            RAISE EXCEPTION 'cannot switch off row-level security of protected table "%"', pdp._relname(r.tbl)
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'pdp.unprotect_table removes pdp_ext''s protection, with an audit entry.';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                        WHERE t.tgrelid OPERATOR(pg_catalog.=) r.tbl::oid
                          AND t.tgname OPERATOR(pg_catalog.=) 'pdp_refuse_restricted'
                          AND t.tgenabled IN ('O', 'A')) THEN
            RAISE EXCEPTION 'cannot drop or disable pdp_ext''s trigger on protected table "%"', pdp._relname(r.tbl)
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'pdp.unprotect_table removes pdp_ext''s protection, with an audit entry.';
        END IF;
        names := pdp._protection_state(r.tbl);
        nodes := pdp._protection_nodes(r.tbl);
        IF names OPERATOR(pg_catalog.<>) r.policies AND nodes OPERATOR(pg_catalog.<>) r.policy_nodes THEN
            RAISE EXCEPTION 'cannot drop or change pdp_ext''s policies on protected table "%"', pdp._relname(r.tbl)
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'pdp.unprotect_table removes pdp_ext''s protection, with an audit entry; pdp.protect_table re-creates it.';
        END IF;
        IF names OPERATOR(pg_catalog.<>) r.policies OR nodes OPERATOR(pg_catalog.<>) r.policy_nodes THEN
            -- A rename, or a restore: the same policies under other names or OIDs.
            UPDATE pdp.protection p SET policies = names, policy_nodes = nodes WHERE p.tbl OPERATOR(pg_catalog.=) r.tbl;
        END IF;
        -- Partitions and inheritance children that appeared: protect them too.
        FOR child IN SELECT i.inhrelid::regclass FROM pg_catalog.pg_inherits i
                      WHERE i.inhparent OPERATOR(pg_catalog.=) r.tbl::oid
                        AND NOT EXISTS (SELECT 1 FROM pdp.protection q WHERE q.tbl::oid OPERATOR(pg_catalog.=) i.inhrelid) LOOP
            PERFORM pdp._install_protection(child, r.forced);
            PERFORM pdp._audit('protect_table', child::text, NULL,
                               pg_catalog.jsonb_build_object('force', r.forced, 'inherited_from', r.tbl::text));
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp._guard_protection() IS
    'event trigger: refuses DDL that weakens a protected table''s protection; protects new partitions and children';
CREATE EVENT TRIGGER pdp_guard_protection ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE POLICY', 'ALTER POLICY', 'DROP POLICY',
                 'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER', 'CREATE RULE', 'DROP RULE')
    EXECUTE FUNCTION pdp._guard_protection();
COMMENT ON EVENT TRIGGER pdp_guard_protection IS
    'refuses DDL that switches off a protected table''s protection; protects new partitions and inheritance children';

-- ===== src/sql/60_audit.sql =====
-- Tamper-evident audit trail.
--
-- Entries are appended to pdp.audit_log without taking any lock, so
-- concurrent writers never wait for one another.  A sealer then chains
-- committed entries, in the order it finds them, into pdp.audit_seal:
--
--   hash(seq) = SHA-256(hash(seq - 1) || seq || entry id || entry time ||
--                       role, session role, action, object, subject, details)
--
-- starting from the chain's anchor (32 zero bytes, or the hash of the last
-- entry cut off by pdp.trim_audit_log).  Writers only append: pdp_ext's
-- audit worker seals what is pending in the background (src/audit_durable.c),
-- and pdp.verify_audit_log() and pdp.trim_audit_log() seal whatever is left
-- before they work.  Editing, deleting or reordering sealed entries,
-- even by a superuser with triggers disabled, breaks the chain.

CREATE TABLE pdp.audit_log (
    id                bigserial   PRIMARY KEY,
    at                timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    role              name        NOT NULL DEFAULT SESSION_USER,
    session_role      name        NOT NULL DEFAULT SESSION_USER,
    action            text        NOT NULL,
    object            text,
    subject_pseudonym text,
    details           jsonb       NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE pdp.audit_log IS 'append-only, hash-chained record of every pdp_ext action; no personal values';
COMMENT ON SEQUENCE pdp.audit_log_id_seq IS 'numbers audit entries';
COMMENT ON COLUMN pdp.audit_log.id IS 'the entry''s number';
COMMENT ON COLUMN pdp.audit_log.at IS 'when';
COMMENT ON COLUMN pdp.audit_log.role IS 'the role that acted: the session''s SET ROLE, or its login role';
COMMENT ON COLUMN pdp.audit_log.session_role IS 'the login role of the session (session_user)';
COMMENT ON COLUMN pdp.audit_log.action IS 'what was done, e.g. grant_consent, erase_subject, reverse';
COMMENT ON COLUMN pdp.audit_log.object IS 'what it was done to: a table, purpose, function';
COMMENT ON COLUMN pdp.audit_log.subject_pseudonym IS 'the subject concerned, as pdp._subject_pseudonym(subject) (an internal key domain), never the identifier';
COMMENT ON COLUMN pdp.audit_log.details IS 'further facts, with no personal values';
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_log_id_seq', '');

CREATE TABLE pdp.audit_seal (
    seq      bigint PRIMARY KEY,
    entry_id bigint NOT NULL UNIQUE,
    hash     bytea  NOT NULL
);
COMMENT ON TABLE pdp.audit_seal IS 'the hash chain over audit entries, in sealing order';
COMMENT ON COLUMN pdp.audit_seal.seq IS 'position in the chain';
COMMENT ON COLUMN pdp.audit_seal.entry_id IS 'the sealed entry';
COMMENT ON COLUMN pdp.audit_seal.hash IS 'SHA-256 of the previous hash and the entry';
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_seal', '');

-- Entries waiting to be sealed: a work queue, not part of the record.  It is
-- UNLOGGED (no WAL: a second logged insert per entry would halve the write
-- rate) and not dumped.  A crash empties it, and so does a restore; the
-- marker table below is emptied with it, and when the sealer finds the
-- marker gone it rebuilds the queue from the log once.
CREATE UNLOGGED TABLE pdp.audit_unsealed (entry_id bigint PRIMARY KEY);
COMMENT ON TABLE pdp.audit_unsealed IS 'audit entries not sealed yet';
COMMENT ON COLUMN pdp.audit_unsealed.entry_id IS 'the entry';
CREATE UNLOGGED TABLE pdp.audit_queue_marker (intact boolean PRIMARY KEY);
COMMENT ON TABLE pdp.audit_queue_marker IS 'present while pdp.audit_unsealed is known complete (gone after a crash or restore)';
COMMENT ON COLUMN pdp.audit_queue_marker.intact IS 'always true';

CREATE TABLE pdp.audit_chain (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    head_seq     bigint      NOT NULL DEFAULT 0,
    head_hash    bytea       NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000',
    anchor_seq   bigint      NOT NULL DEFAULT 0,
    anchor_hash  bytea       NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000',
    anchored_at  timestamptz
);
COMMENT ON TABLE pdp.audit_chain IS 'the chain''s head and anchor (where verification starts after a trim)';
COMMENT ON COLUMN pdp.audit_chain.singleton IS 'there is one row';
COMMENT ON COLUMN pdp.audit_chain.head_seq IS 'the last sealed position';
COMMENT ON COLUMN pdp.audit_chain.head_hash IS 'its hash: publish it elsewhere to detect a rewrite of the whole chain';
COMMENT ON COLUMN pdp.audit_chain.anchor_seq IS 'the last position cut off by trim_audit_log (0: none)';
COMMENT ON COLUMN pdp.audit_chain.anchor_hash IS 'its hash, from which the rest verifies';
COMMENT ON COLUMN pdp.audit_chain.anchored_at IS 'when the last trim happened';
-- The row is made on first use, not here: pg_dump carries it, and a row made
-- by CREATE EXTENSION would collide with the restored one.
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_chain', '');

CREATE FUNCTION pdp._audit_hash(prev bytea, seq bigint, entry_id bigint, at timestamptz, fields text[])
RETURNS bytea LANGUAGE C IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_audit_hash';
COMMENT ON FUNCTION pdp._audit_hash(bytea, bigint, bigint, timestamptz, text[]) IS
    'SHA-256 chain hash of one audit entry (canonical length-prefixed encoding)';

CREATE FUNCTION pdp._audit_append_only() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_audit_append_only';
COMMENT ON FUNCTION pdp._audit_append_only() IS 'trigger: refuses UPDATE, DELETE and TRUNCATE of the audit trail';
CREATE FUNCTION pdp._audit_trim_delete(cut_seq bigint) RETURNS bigint
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_trim_delete';
COMMENT ON FUNCTION pdp._audit_trim_delete(bigint) IS
    'deletes the audit entries sealed up to cut_seq and their seals (for pdp.trim_audit_log; the append-only guard is lifted for this call only)';

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON pdp.audit_log
    FOR EACH ROW EXECUTE FUNCTION pdp._audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON pdp.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._audit_append_only();
CREATE TRIGGER audit_seal_append_only BEFORE UPDATE OR DELETE ON pdp.audit_seal
    FOR EACH ROW EXECUTE FUNCTION pdp._audit_append_only();
CREATE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON pdp.audit_seal
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._audit_append_only();

-- Every new entry joins the sealing queue (C, see src/audit.c).
CREATE FUNCTION pdp._audit_enqueue() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_audit_enqueue';
COMMENT ON FUNCTION pdp._audit_enqueue() IS 'trigger: queues a new audit entry for sealing';
CREATE TRIGGER audit_log_enqueue AFTER INSERT ON pdp.audit_log
    FOR EACH ROW EXECUTE FUNCTION pdp._audit_enqueue();

-- The fields of an entry, in hashing order.
CREATE FUNCTION pdp._audit_fields(e pdp.audit_log) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY[e.role::text, e.session_role::text, e.action, e.object, e.subject_pseudonym, e.details::text] $$;
COMMENT ON FUNCTION pdp._audit_fields(pdp.audit_log) IS 'an audit entry''s fields in hashing order';

CREATE FUNCTION pdp.seal_audit_log(wait boolean DEFAULT true, max_entries integer DEFAULT 100000) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chain record;
    e pdp.audit_log;
    seq bigint;
    prev bytea;
    n bigint := 0;
BEGIN
    -- One sealer at a time; writers pass by rather than wait.
    IF wait THEN
        PERFORM pg_advisory_xact_lock(pg_catalog.hashtext('pdp_ext audit seal'));
    ELSIF NOT pg_try_advisory_xact_lock(pg_catalog.hashtext('pdp_ext audit seal')) THEN
        RETURN 0;
    END IF;
    INSERT INTO pdp.audit_chain DEFAULT VALUES ON CONFLICT DO NOTHING;
    SELECT * INTO chain FROM pdp.audit_chain FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM pdp.audit_queue_marker) THEN
        -- After a crash, a restore or CREATE EXTENSION: rebuild the queue.
        INSERT INTO pdp.audit_unsealed
        SELECT l.id FROM pdp.audit_log l
         WHERE NOT EXISTS (SELECT 1 FROM pdp.audit_seal a WHERE a.entry_id OPERATOR(pg_catalog.=) l.id)
        ON CONFLICT DO NOTHING;
        INSERT INTO pdp.audit_queue_marker VALUES (true) ON CONFLICT DO NOTHING;
    END IF;
    DELETE FROM pdp.audit_unsealed u USING pdp.audit_seal a WHERE a.entry_id OPERATOR(pg_catalog.=) u.entry_id;
    seq := chain.head_seq;
    prev := chain.head_hash;
    FOR e IN SELECT l.* FROM pdp.audit_unsealed u JOIN pdp.audit_log l ON l.id OPERATOR(pg_catalog.=) u.entry_id
              ORDER BY u.entry_id LIMIT max_entries LOOP
        seq := seq + 1;
        prev := pdp._audit_hash(prev, seq, e.id, e.at, pdp._audit_fields(e));
        INSERT INTO pdp.audit_seal VALUES (seq, e.id, prev);
        DELETE FROM pdp.audit_unsealed u WHERE u.entry_id OPERATOR(pg_catalog.=) e.id;
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        UPDATE pdp.audit_chain SET head_seq = seq, head_hash = prev;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp.seal_audit_log(boolean, integer) IS
    'chains committed audit entries that are not sealed yet; returns how many it sealed';

-- The writer every pdp_ext action calls (C, see src/audit.c): details must
-- hold no personal values; a subject is stored only as its pseudonym; the
-- actor is the caller's SET ROLE or session user, never chosen by the caller.
CREATE FUNCTION pdp._audit(action text, object text, subject text DEFAULT NULL, details jsonb DEFAULT '{}')
RETURNS void LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_audit_write';
COMMENT ON FUNCTION pdp._audit(text, text, text, jsonb) IS
    'writes an audit entry (the subject as its pseudonym, the caller as actor); the audit worker seals it in the background';

CREATE FUNCTION pdp.verify_audit_log(OUT ok boolean, OUT entries bigint, OUT first_bad_id bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chain record;
    s record;
    expected_seq bigint;
    prev bytea;
    h bytea;
    writable boolean;
BEGIN
    -- Seal what is waiting first.  A read-only transaction (a hot standby)
    -- cannot: it checks the sealed chain only, since there an entry without
    -- a seal may just be waiting for the primary to seal it.
    writable := pg_catalog.current_setting('transaction_read_only') OPERATOR(pg_catalog.=) 'off';
    IF writable THEN
        PERFORM pdp.seal_audit_log(wait => true, max_entries => 2147483647);
    END IF;
    SELECT * INTO chain FROM pdp.audit_chain;
    ok := true;
    entries := 0;
    first_bad_id := NULL;
    expected_seq := chain.anchor_seq;
    prev := chain.anchor_hash;
    FOR s IN SELECT a.seq, a.entry_id, a.hash, l AS entry, l.id AS found
               FROM pdp.audit_seal a LEFT JOIN pdp.audit_log l ON l.id OPERATOR(pg_catalog.=) a.entry_id
              ORDER BY a.seq LOOP
        expected_seq := expected_seq + 1;
        IF s.seq OPERATOR(pg_catalog.<>) expected_seq OR s.found IS NULL THEN
            -- A seal is missing (an entry and its seal deleted), or its entry is.
            ok := false;
            first_bad_id := coalesce(s.found, s.entry_id);
            RETURN;
        END IF;
        h := pdp._audit_hash(prev, s.seq, (s.entry).id, (s.entry).at, pdp._audit_fields(s.entry));
        IF h OPERATOR(pg_catalog.<>) s.hash THEN
            ok := false;
            first_bad_id := s.entry_id;
            RETURN;
        END IF;
        prev := s.hash;
        entries := entries + 1;
    END LOOP;
    IF expected_seq OPERATOR(pg_catalog.<>) chain.head_seq OR prev OPERATOR(pg_catalog.<>) chain.head_hash THEN
        -- The newest entries were cut off.
        ok := false;
        first_bad_id := (SELECT max(a.entry_id) FROM pdp.audit_seal a);
        RETURN;
    END IF;
    -- An entry inserted with triggers disabled would never be sealed.
    IF NOT writable THEN
        RETURN;
    END IF;
    SELECT min(l.id) INTO first_bad_id FROM pdp.audit_log l
     WHERE NOT EXISTS (SELECT 1 FROM pdp.audit_seal a WHERE a.entry_id OPERATOR(pg_catalog.=) l.id);
    IF first_bad_id IS NOT NULL THEN
        ok := false;
    END IF;
END
$$;
COMMENT ON FUNCTION pdp.verify_audit_log() IS
    'seals what is pending, then checks the whole chain: ok, entries verified, and the first bad entry''s id; read-only (a standby), checks the sealed chain only';

CREATE FUNCTION pdp.trim_audit_log(keep interval DEFAULT '5 years') RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cut record;
    n bigint;
BEGIN
    PERFORM pdp._check_interval(keep, 'the audit log must keep at least one day', interval '1 day');
    PERFORM pdp.seal_audit_log(wait => true, max_entries => 2147483647);
    -- Cut the longest prefix of the chain whose entries are all older than
    -- keep (the chain is in sealing order, which only roughly follows time):
    -- its last seal becomes the anchor.  Nothing younger than keep goes.
    SELECT a.seq, a.hash INTO cut FROM pdp.audit_seal a
     WHERE a.seq < coalesce((SELECT min(b.seq) FROM pdp.audit_seal b JOIN pdp.audit_log l ON l.id OPERATOR(pg_catalog.=) b.entry_id
                              WHERE l.at >= pg_catalog.now() - keep), 9223372036854775807)
     ORDER BY a.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    n := pdp._audit_trim_delete(cut.seq);
    UPDATE pdp.audit_chain SET anchor_seq = cut.seq, anchor_hash = cut.hash, anchored_at = pg_catalog.now();
    PERFORM pdp._audit('trim_audit_log', 'pdp.audit_log', NULL,
                       pg_catalog.jsonb_build_object('entries_removed', n, 'anchor_seq', cut.seq, 'keep', keep::text));
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp.trim_audit_log(interval) IS
    'removes audit entries older than keep; the rest stays verifiable from the recorded anchor hash';

-- Durable entries (C, see src/audit_durable.c): committed by pdp_ext's audit
-- worker, in a transaction of its own, before the call returns.  For reads of
-- personal data (exports; reversals call the same path from C), whose entry
-- must outlive a rollback of the caller's transaction.
CREATE FUNCTION pdp._audit_durable(action text, object text, subject text DEFAULT NULL, details jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_audit_durable_write';
COMMENT ON FUNCTION pdp._audit_durable(text, text, text, jsonb) IS
    'writes an audit entry through the audit worker and returns once it is committed, whatever the caller''s transaction does; fails when it cannot be';
REVOKE ALL ON FUNCTION pdp._audit_durable(text, text, text, jsonb) FROM PUBLIC;

-- ===== src/sql/70_retention.sql =====
-- Retention: every row knows when it expires, and a purge deletes or
-- anonymises what has expired, in committed batches, skipping held and
-- restricted subjects.  See src/retention.c for where the expiry lives.

CREATE FUNCTION pdp._expiry(anchor timestamptz, period interval) RETURNS timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_expiry_timestamptz';
COMMENT ON FUNCTION pdp._expiry(timestamptz, interval) IS 'anchor plus period, computed in UTC (IMMUTABLE, so it can key an index)';
CREATE FUNCTION pdp._expiry(anchor timestamp, period interval) RETURNS timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_expiry_timestamp';
COMMENT ON FUNCTION pdp._expiry(timestamp, interval) IS 'anchor (read as UTC) plus period';
CREATE FUNCTION pdp._expiry(anchor date, period interval) RETURNS timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_expiry_date';
COMMENT ON FUNCTION pdp._expiry(date, interval) IS 'anchor (midnight UTC) plus period';
CREATE FUNCTION pdp._expiry(anchor bigint, period interval) RETURNS timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_expiry_epoch';
COMMENT ON FUNCTION pdp._expiry(bigint, interval) IS 'anchor (Unix epoch seconds) plus period';
CREATE FUNCTION pdp._retention_tag() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_retention_tag';
COMMENT ON FUNCTION pdp._retention_tag() IS 'trigger: records the expiry of rows of tables retained without an anchor';

CREATE TABLE pdp.retention_policy (
    tbl           regclass    PRIMARY KEY,
    period        interval    NOT NULL,
    anchor_column name,
    action        text        NOT NULL CHECK (action IN ('delete', 'anonymise')),
    set_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by        name        NOT NULL DEFAULT CURRENT_USER
);
COMMENT ON TABLE pdp.retention_policy IS 'retention per table; read pdp.retention_policies';
COMMENT ON COLUMN pdp.retention_policy.tbl IS 'the table';
COMMENT ON COLUMN pdp.retention_policy.period IS 'how long a row is kept after its anchor';
COMMENT ON COLUMN pdp.retention_policy.anchor_column IS 'the column the period runs from; NULL: the insertion time';
COMMENT ON COLUMN pdp.retention_policy.action IS 'delete, or anonymise (apply the column rules and keep the row)';
COMMENT ON COLUMN pdp.retention_policy.set_at IS 'when retention was set';
COMMENT ON COLUMN pdp.retention_policy.set_by IS 'who set it';
SELECT pg_catalog.pg_extension_config_dump('pdp.retention_policy', '');
CREATE TRIGGER retention_policy_check_period BEFORE INSERT OR UPDATE OF period ON pdp.retention_policy
    FOR EACH ROW EXECUTE FUNCTION pdp._check_period();
COMMENT ON TRIGGER retention_policy_check_period ON pdp.retention_policy IS 'a period must span a positive time however the row is written';

-- Expiries of rows of tables retained without an anchor.
CREATE TABLE pdp.retention_tag (
    tbl        oid         NOT NULL,
    row_key    text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tbl, row_key)
);
CREATE INDEX retention_tag_expiry_idx ON pdp.retention_tag (tbl, expires_at);
COMMENT ON TABLE pdp.retention_tag IS 'expiry of each row of tables retained from their insertion time';
COMMENT ON COLUMN pdp.retention_tag.tbl IS 'the table''s OID';
COMMENT ON COLUMN pdp.retention_tag.row_key IS 'the row''s primary key, in text form';
COMMENT ON COLUMN pdp.retention_tag.expires_at IS 'when it expires';
SELECT pg_catalog.pg_extension_config_dump('pdp.retention_tag', '');

-- Rows a purge anonymised: they stay, but are done.
CREATE TABLE pdp.anonymised_row (
    tbl            oid         NOT NULL,
    row_key        text        NOT NULL,
    anonymised_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tbl, row_key)
);
COMMENT ON TABLE pdp.anonymised_row IS 'rows the purge (or erasure) anonymised, so they are not processed again';
COMMENT ON COLUMN pdp.anonymised_row.tbl IS 'the table''s OID';
COMMENT ON COLUMN pdp.anonymised_row.row_key IS 'the row''s primary key, in text form';
COMMENT ON COLUMN pdp.anonymised_row.anonymised_at IS 'when';
SELECT pg_catalog.pg_extension_config_dump('pdp.anonymised_row', '');

CREATE TABLE pdp.subject_retention (
    singleton       boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    period          interval    NOT NULL,
    activity_table  regclass    NOT NULL,
    activity_column name        NOT NULL,
    set_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by          name        NOT NULL DEFAULT CURRENT_USER
);
COMMENT ON TABLE pdp.subject_retention IS 'inactivity retention: a subject''s rows expire together after this long without activity';
COMMENT ON COLUMN pdp.subject_retention.singleton IS 'there is at most one row';
COMMENT ON COLUMN pdp.subject_retention.period IS 'how long after the last activity';
COMMENT ON COLUMN pdp.subject_retention.activity_table IS 'the registered table that records activity';
COMMENT ON COLUMN pdp.subject_retention.activity_column IS 'its column holding the activity time';
COMMENT ON COLUMN pdp.subject_retention.set_at IS 'when it was set';
COMMENT ON COLUMN pdp.subject_retention.set_by IS 'who set it';
SELECT pg_catalog.pg_extension_config_dump('pdp.subject_retention', '');
CREATE TRIGGER subject_retention_check_period BEFORE INSERT OR UPDATE OF period ON pdp.subject_retention
    FOR EACH ROW EXECUTE FUNCTION pdp._check_period();
COMMENT ON TRIGGER subject_retention_check_period ON pdp.subject_retention IS 'a period must span a positive time however the row is written';

CREATE TABLE pdp.hold (
    id          bigserial   PRIMARY KEY,
    subject     text,
    tbl         regclass,
    reason      text        NOT NULL,
    until       timestamptz,
    placed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    placed_by   name        NOT NULL DEFAULT SESSION_USER,
    released_at timestamptz,
    released_by name,
    CONSTRAINT hold_target_check CHECK ((subject IS NULL) <> (tbl IS NULL))
);
CREATE INDEX hold_subject_idx ON pdp.hold (subject) WHERE released_at IS NULL;
COMMENT ON TABLE pdp.hold IS 'legal holds: a held subject''s rows (or a held table''s) are never purged or erased';
COMMENT ON SEQUENCE pdp.hold_id_seq IS 'numbers holds';
COMMENT ON COLUMN pdp.hold.id IS 'the hold''s number';
COMMENT ON COLUMN pdp.hold.subject IS 'the held subject (text form), or NULL for a table-wide hold';
COMMENT ON COLUMN pdp.hold.tbl IS 'the held table, or NULL for a subject hold';
COMMENT ON COLUMN pdp.hold.reason IS 'the legal ground: a dispute, a claim, a lawful request';
COMMENT ON COLUMN pdp.hold.until IS 'when it lapses by itself; NULL until released';
COMMENT ON COLUMN pdp.hold.placed_at IS 'when it was placed';
COMMENT ON COLUMN pdp.hold.placed_by IS 'the session user that placed it';
COMMENT ON COLUMN pdp.hold.released_at IS 'when it was released; NULL while in force';
COMMENT ON COLUMN pdp.hold.released_by IS 'the session user that released it';
SELECT pg_catalog.pg_extension_config_dump('pdp.hold', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.hold_id_seq', '');

CREATE TABLE pdp.purge_run (
    id          bigserial   PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at timestamptz,
    status      text        NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'finished', 'stopped at max_duration', 'interrupted', 'dry run')),
    dry_run     boolean     NOT NULL DEFAULT false,
    rows        jsonb       NOT NULL DEFAULT '{}',
    total_rows  bigint      NOT NULL DEFAULT 0,
    errors      jsonb       NOT NULL DEFAULT '[]',
    run_by      name        NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE pdp.purge_run IS 'each purge: start, end, rows per table and action, errors (no personal values)';
COMMENT ON SEQUENCE pdp.purge_run_id_seq IS 'numbers purge runs';
COMMENT ON COLUMN pdp.purge_run.id IS 'the run''s number';
COMMENT ON COLUMN pdp.purge_run.started_at IS 'when it started';
COMMENT ON COLUMN pdp.purge_run.finished_at IS 'when it ended; NULL while running (or if it was interrupted)';
COMMENT ON COLUMN pdp.purge_run.status IS 'running, finished, stopped at max_duration, interrupted, dry run';
COMMENT ON COLUMN pdp.purge_run.dry_run IS 'whether it only counted';
COMMENT ON COLUMN pdp.purge_run.rows IS 'rows per "table action", e.g. {"lms.grades anonymise": 120}';
COMMENT ON COLUMN pdp.purge_run.total_rows IS 'rows in all';
COMMENT ON COLUMN pdp.purge_run.errors IS 'errors per table: SQLSTATE and message, never a value';
COMMENT ON COLUMN pdp.purge_run.run_by IS 'the session user that ran it';
SELECT pg_catalog.pg_extension_config_dump('pdp.purge_run', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.purge_run_id_seq', '');

CREATE TABLE pdp.purge_summary (
    month  date   PRIMARY KEY,
    runs   bigint NOT NULL,
    rows   bigint NOT NULL
);
COMMENT ON TABLE pdp.purge_summary IS 'purge runs older than 90 days, compacted to one row per month';
COMMENT ON COLUMN pdp.purge_summary.month IS 'the month';
COMMENT ON COLUMN pdp.purge_summary.runs IS 'purge runs in it';
COMMENT ON COLUMN pdp.purge_summary.rows IS 'rows they purged';
SELECT pg_catalog.pg_extension_config_dump('pdp.purge_summary', '');

-- Setting retention --------------------------------------------------------

-- The SQL expression of a table's expiry, or NULL when it has no anchor.
CREATE FUNCTION pdp._expiry_expr(anchor name, period interval) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN anchor IS NOT NULL
                  THEN pg_catalog.format('pdp._expiry(%I, %L::interval)', anchor, period::text) END $$;
COMMENT ON FUNCTION pdp._expiry_expr(name, interval) IS 'the expiry expression an anchored table''s index and purge share';

-- The table's single-column primary key, or an error.
CREATE FUNCTION pdp._single_key(tbl regclass) RETURNS name
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k name;
BEGIN
    SELECT a.attname INTO k FROM pg_index i
      JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
     WHERE i.indrelid OPERATOR(pg_catalog.=) tbl::oid AND i.indisprimary AND i.indnatts OPERATOR(pg_catalog.=) 1;
    IF k IS NULL THEN
        RAISE EXCEPTION 'table "%" needs a single-column primary key', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Retention without an anchor column, and erasure receipts, identify rows by primary key.';
    END IF;
    RETURN k;
END
$$;
COMMENT ON FUNCTION pdp._single_key(regclass) IS 'a table''s single-column primary key, or an error';

CREATE FUNCTION pdp.set_retention(tbl regclass, period interval, anchor_column name DEFAULT NULL,
                                  action text DEFAULT 'delete') RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.set_retention(regclass, interval, name, text) IS
    'tags every row with its expiry (anchor plus period, or insertion time plus period) and sets the purge action';

CREATE FUNCTION pdp._api_set_retention(tbl regclass, period interval, anchor_column name, action text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype;
    expr text;
    idx name;
    k name;
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF anchor_column IS NULL THEN
        -- Without an anchor, a trigger tags new rows: it would run on the workers.
        PERFORM pdp._refuse_on_citus(tbl, 'set retention without an anchor column on');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _api_set_retention.tbl) THEN
        RAISE EXCEPTION 'table "%" is not registered', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register its subject columns first: holds and restrictions apply per subject.';
    END IF;
    PERFORM pdp._check_interval(period, 'retention period must be positive');
    IF action IS NULL OR action NOT IN ('delete', 'anonymise') THEN
        RAISE EXCEPTION 'unknown retention action' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'The action is "delete" or "anonymise".';
    END IF;
    IF action = 'anonymise' AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) _api_set_retention.tbl) THEN
        RAISE EXCEPTION 'table "%" has no column rules to anonymise with', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Declare rules with pdp.set_column_rule first.';
    END IF;
    k := pdp._single_key(tbl);
    IF anchor_column IS NOT NULL THEN
        SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname OPERATOR(pg_catalog.=) anchor_column
           AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of table "%" does not exist', anchor_column, pdp._relname(tbl)
                USING ERRCODE = 'undefined_column';
        END IF;
        IF typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype,
                       'integer'::regtype, 'bigint'::regtype) THEN
            RAISE EXCEPTION 'anchor column "%" has unsupported type %', anchor_column, typ
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'An anchor is timestamptz, timestamp, date, or integer/bigint Unix epoch seconds.';
        END IF;
    END IF;

    PERFORM pdp._drop_retention_objects(tbl);
    INSERT INTO pdp.retention_policy (tbl, period, anchor_column, action, set_by)
    VALUES (tbl, period, anchor_column, action, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT retention_policy_pkey DO UPDATE
       SET period = EXCLUDED.period, anchor_column = EXCLUDED.anchor_column, action = EXCLUDED.action,
           set_at = pg_catalog.now(), set_by = EXCLUDED.set_by;

    IF anchor_column IS NOT NULL THEN
        -- The expiry index is the tag.  An index with the same expression made
        -- beforehand (CREATE INDEX CONCURRENTLY on a large table) is reused.
        expr := pdp._expiry_expr(anchor_column, period);
        idx := pg_catalog.left('pdp_expiry_' || (SELECT c.relname FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid), 63);
        IF NOT EXISTS (SELECT 1 FROM pg_index i
                        WHERE i.indrelid OPERATOR(pg_catalog.=) tbl::oid
                          AND pg_catalog.pg_get_indexdef(i.indexrelid) LIKE '%' || pg_catalog.replace(expr, 'pdp._expiry', '_expiry') || '%') THEN
            EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (%s)', idx, tbl, expr);
        END IF;
    ELSE
        -- No anchor: a trigger records each new row's expiry; existing rows
        -- are tagged now, from today.
        EXECUTE pg_catalog.format('CREATE TRIGGER pdp_retention_tag AFTER INSERT ON %s '
                                  'REFERENCING NEW TABLE AS pdp_new_rows FOR EACH STATEMENT '
                                  'EXECUTE FUNCTION pdp._retention_tag(%L, %L)', tbl, k, period::text);
        INSERT INTO pdp.retention_tag (tbl, row_key, expires_at)
        SELECT tbl::oid, x.k, pdp._expiry(pg_catalog.now(), period)
          FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT t.%I::text FROM %s t', k, tbl)) AS x(k text)
        ON CONFLICT DO NOTHING;
    END IF;
    PERFORM pdp._audit('set_retention', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('period', period::text, 'anchor', anchor_column, 'action', action));
END
$$;
COMMENT ON FUNCTION pdp._api_set_retention(regclass, interval, name, text) IS
    'pdp.set_retention''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE FUNCTION pdp._drop_retention_objects(tbl regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    i name;
BEGIN
    FOR i IN SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) x.indexrelid
              WHERE x.indrelid OPERATOR(pg_catalog.=) tbl::oid AND c.relname LIKE 'pdp\_expiry\_%' LOOP
        EXECUTE pg_catalog.format('DROP INDEX %I.%I',
                                  (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                                    WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid), i);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl::oid
                 AND t.tgname OPERATOR(pg_catalog.=) 'pdp_retention_tag') THEN
        EXECUTE pg_catalog.format('DROP TRIGGER pdp_retention_tag ON %s', tbl);
    END IF;
    DELETE FROM pdp.retention_tag g WHERE g.tbl OPERATOR(pg_catalog.=) _drop_retention_objects.tbl::oid;
END
$$;
COMMENT ON FUNCTION pdp._drop_retention_objects(regclass) IS 'drops the expiry index or tagging trigger of a table';

CREATE FUNCTION pdp.drop_retention(tbl regclass) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_retention(regclass) IS 'removes a table''s retention';

CREATE FUNCTION pdp._api_drop_retention(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF NOT EXISTS (SELECT 1 FROM pdp.retention_policy p WHERE p.tbl OPERATOR(pg_catalog.=) _api_drop_retention.tbl) THEN
        RAISE EXCEPTION 'table "%" has no retention', pdp._relname(tbl) USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM pdp._drop_retention_objects(tbl);
    DELETE FROM pdp.retention_policy p WHERE p.tbl OPERATOR(pg_catalog.=) _api_drop_retention.tbl;
    PERFORM pdp._audit('drop_retention', tbl::text);
END
$$;
COMMENT ON FUNCTION pdp._api_drop_retention(regclass) IS
    'pdp.drop_retention''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE VIEW pdp.retention_policies AS
SELECT p.tbl AS table_name, p.period, p.anchor_column,
       CASE WHEN p.anchor_column IS NULL THEN 'insertion time' ELSE 'anchor column' END AS tagged_by,
       p.action, p.set_at, p.set_by
  FROM pdp.retention_policy p;
COMMENT ON VIEW pdp.retention_policies IS 'retention per table';

CREATE FUNCTION pdp.set_subject_retention(period interval, activity_table regclass, activity_column name) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.set_subject_retention(interval, regclass, name) IS
    'a subject''s rows in every registered table expire together when their last activity is older than period';

CREATE FUNCTION pdp._api_set_subject_retention(period interval, activity_table regclass, activity_column name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype;
BEGIN
    PERFORM pdp._require_owner(activity_table);
    PERFORM pdp._check_interval(period, 'retention period must be positive');
    IF NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) activity_table) THEN
        RAISE EXCEPTION 'table "%" is not registered', pdp._relname(activity_table)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) activity_table::oid AND a.attname OPERATOR(pg_catalog.=) activity_column
       AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', activity_column, pdp._relname(activity_table)
            USING ERRCODE = 'undefined_column';
    END IF;
    IF typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
        RAISE EXCEPTION 'activity column "%" has unsupported type %', activity_column, typ USING ERRCODE = 'datatype_mismatch';
    END IF;
    INSERT INTO pdp.subject_retention (period, activity_table, activity_column, set_by)
    VALUES (period, activity_table, activity_column, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT subject_retention_pkey DO UPDATE
       SET period = EXCLUDED.period, activity_table = EXCLUDED.activity_table,
           activity_column = EXCLUDED.activity_column, set_at = pg_catalog.now(), set_by = EXCLUDED.set_by;
    PERFORM pdp._audit('set_subject_retention', activity_table::text, NULL,
                       pg_catalog.jsonb_build_object('period', period::text, 'activity_column', activity_column));
END
$$;
COMMENT ON FUNCTION pdp._api_set_subject_retention(interval, regclass, name) IS
    'pdp.set_subject_retention''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE FUNCTION pdp.drop_subject_retention() RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM pdp.subject_retention;
    IF FOUND THEN
        PERFORM pdp._audit('drop_subject_retention', NULL);
        RETURN true;
    END IF;
    RETURN false;
END
$$;
COMMENT ON FUNCTION pdp.drop_subject_retention() IS 'removes inactivity retention; true if there was one';

-- Holds --------------------------------------------------------------------

CREATE FUNCTION pdp.place_hold(subject text, reason text, until timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL OR reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'subject and reason must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF until IS NOT NULL AND until <= pg_catalog.now() THEN
        RAISE EXCEPTION 'until must be in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pdp.hold (subject, reason, until) VALUES (place_hold.subject, place_hold.reason, place_hold.until)
    RETURNING hold.id INTO id;
    PERFORM pdp._audit('place_hold', NULL, subject, pg_catalog.jsonb_build_object('hold_id', id, 'until', until));
    RETURN id;
END
$$;
COMMENT ON FUNCTION pdp.place_hold(text, text, timestamptz) IS
    'places a legal hold on a subject: their rows are never purged or erased while it is in force';
CREATE FUNCTION pdp.place_hold(subject bigint, reason text, until timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.place_hold(subject::text, reason, until) $$;
COMMENT ON FUNCTION pdp.place_hold(bigint, text, timestamptz) IS 'place_hold for a bigint or integer subject';
CREATE FUNCTION pdp.place_hold(subject uuid, reason text, until timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.place_hold(subject::text, reason, until) $$;
COMMENT ON FUNCTION pdp.place_hold(uuid, text, timestamptz) IS 'place_hold for a uuid subject';

CREATE FUNCTION pdp.place_table_hold(tbl regclass, reason text, until timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    IF tbl IS NULL OR reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'table and reason must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF until IS NOT NULL AND until <= pg_catalog.now() THEN
        RAISE EXCEPTION 'until must be in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pdp.hold (tbl, reason, until) VALUES (place_table_hold.tbl, place_table_hold.reason, place_table_hold.until)
    RETURNING hold.id INTO id;
    PERFORM pdp._audit('place_table_hold', tbl::text, NULL, pg_catalog.jsonb_build_object('hold_id', id, 'until', until));
    RETURN id;
END
$$;
COMMENT ON FUNCTION pdp.place_table_hold(regclass, text, timestamptz) IS
    'places a legal hold on a whole table: nothing in it is purged while it is in force';

CREATE FUNCTION pdp.release_hold(hold_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h record;
BEGIN
    UPDATE pdp.hold SET released_at = pg_catalog.now(), released_by = SESSION_USER
     WHERE id OPERATOR(pg_catalog.=) hold_id AND released_at IS NULL
    RETURNING * INTO h;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hold % does not exist or is released already', hold_id USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM pdp._audit('release_hold', h.tbl::text, h.subject, pg_catalog.jsonb_build_object('hold_id', hold_id));
END
$$;
COMMENT ON FUNCTION pdp.release_hold(bigint) IS 'releases a hold; the release is recorded';

CREATE VIEW pdp.holds AS
SELECT h.id, h.subject, h.tbl AS table_name, h.reason, h.until, h.placed_at, h.placed_by, h.released_at, h.released_by,
       h.released_at IS NULL AND (h.until IS NULL OR h.until > pg_catalog.now()) AS in_force
  FROM pdp.hold h;
COMMENT ON VIEW pdp.holds IS 'every hold, with whether it is in force';

-- Is a subject held (or restricted) now?  Used by purge and erasure.
CREATE FUNCTION pdp._subject_held(subject text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM pdp.hold h WHERE h.subject OPERATOR(pg_catalog.=) _subject_held.subject
                        AND h.released_at IS NULL AND (h.until IS NULL OR h.until > pg_catalog.now())) $$;
COMMENT ON FUNCTION pdp._subject_held(text) IS 'whether a hold on the subject is in force';

-- Purge ----------------------------------------------------------------------

-- Registered tables in an order foreign keys accept for deletion: a table
-- comes before every registered table it references.
CREATE FUNCTION pdp._deletion_order() RETURNS TABLE (tbl regclass, depth integer)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE t AS (SELECT DISTINCT s.tbl::oid AS relid FROM pdp.subject_column s),
    refs AS (SELECT c.conrelid AS child, c.confrelid AS parent FROM pg_constraint c
              WHERE c.contype = 'f' AND c.conrelid IN (SELECT relid FROM t) AND c.confrelid IN (SELECT relid FROM t)
                AND c.conrelid OPERATOR(pg_catalog.<>) c.confrelid),
    chain(relid, depth) AS (
        SELECT relid, 0 FROM t
        UNION ALL
        SELECT r.parent, chain.depth + 1 FROM chain JOIN refs r ON r.child OPERATOR(pg_catalog.=) chain.relid
         WHERE chain.depth < 32)
    SELECT relid::regclass, max(depth)::integer FROM chain GROUP BY relid ORDER BY max(depth), relid
$$;
COMMENT ON FUNCTION pdp._deletion_order() IS 'registered tables, children before the parents they reference';

-- SQL that finds up to $1 expired rows of a table, for one reason
-- ('retention' or 'inactivity'), skipping held and restricted subjects and
-- rows already anonymised; NULL when the table has nothing to find for it.
-- It returns each row's ctid and its position pos (the expiry for anchored
-- retention, else NULL).  $2 is the last batch's highest position: the scan
-- resumes there instead of walking again, batch after batch, over the index
-- entries of rows the earlier batches removed.  Ties at $2 are seen again,
-- so none is skipped; '-infinity' starts from the beginning.  The statement
-- reads only the table, because it runs as the table's owner
-- (pdp._exec_as_owner): pdp's state comes in as parameters, $3 the held
-- subjects, $4 the restricted subjects, $5 the keys of expired tagged rows
-- (retention without an anchor) or the inactive subjects (inactivity), $6
-- the keys of rows already anonymised.  pdp._find_expired fills them in.
CREATE FUNCTION pdp._expired_rows_sql(tbl regclass, reason text, lock boolean) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    k name := pdp._single_key(tbl);
    cond text;
    order_by text;
    pos text := 'NULL::timestamptz';
    guard text;
BEGIN
    IF reason = 'retention' THEN
        SELECT * INTO p FROM pdp.retention_policy r WHERE r.tbl OPERATOR(pg_catalog.=) _expired_rows_sql.tbl;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        IF p.anchor_column IS NOT NULL THEN
            -- The same expression as the expiry index, so the scan is a range scan of it.
            order_by := pg_catalog.format('pdp._expiry(t.%I, %L::interval)', p.anchor_column, p.period::text);
            cond := order_by || ' OPERATOR(pg_catalog.<) pg_catalog.now() AND '
                    || order_by || ' OPERATOR(pg_catalog.>=) $2';
            pos := order_by;
        ELSE
            cond := pg_catalog.format('t.%I::text OPERATOR(pg_catalog.=) ANY ($5)', k);
            order_by := pg_catalog.format('t.%I', k);
        END IF;
    ELSE
        IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = 'pdp_inactive_subjects'
                         AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
                         AND pg_catalog.pg_get_userbyid(c.relowner) OPERATOR(pg_catalog.=) CURRENT_USER) THEN
            RETURN NULL;
        END IF;
        cond := pg_catalog.format('(%s)', (SELECT pg_catalog.string_agg(
                    pg_catalog.format('t.%I::text OPERATOR(pg_catalog.=) ANY ($5)', s.col), ' OR ')
                  FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _expired_rows_sql.tbl));
        order_by := pg_catalog.format('t.%I', k);
    END IF;
    -- Held and restricted subjects stay (restriction bars erasure too, GDPR
    -- Art. 18(1)(b)).  The sets are constants of the statement, so the
    -- planner hashes them once per batch instead of probing per row.
    SELECT pg_catalog.string_agg(pg_catalog.format(
               ' AND (t.%1$I IS NULL OR (t.%1$I::text OPERATOR(pg_catalog.<>) ALL ($3)'
               ' AND t.%1$I::text OPERATOR(pg_catalog.<>) ALL ($4)))', s.col), '')
      INTO guard
      FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _expired_rows_sql.tbl;
    IF pdp._purge_action(tbl) = 'anonymise' THEN
        guard := guard || pg_catalog.format(' AND t.%I::text OPERATOR(pg_catalog.<>) ALL ($6)', k);
    END IF;
    RETURN pg_catalog.format('SELECT t.ctid, %s AS pos FROM %s t WHERE %s%s ORDER BY %s LIMIT $1%s',
                             pos, tbl, cond, guard, order_by, CASE WHEN lock THEN ' FOR UPDATE SKIP LOCKED' ELSE '' END);
END
$$;
COMMENT ON FUNCTION pdp._expired_rows_sql(regclass, text, boolean) IS 'SQL finding a batch of a table''s expired, unheld rows';

-- A batch of a table's expired rows for one reason, found as the table's
-- owner: up to batch_size ctids after position "after" (or, with a NULL
-- batch_size, only how many there are).  Nothing while the table is held.
CREATE FUNCTION pdp._find_expired(tbl regclass, reason text, lock boolean, batch_size integer, after timestamptz,
                                  OUT ctids tid[], OUT pos timestamptz, OUT n bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q text;
    held text[];
    restricted text[];
    keys text[] := '{}';
    anonymised text[] := '{}';
BEGIN
    n := 0;
    IF tbl IS NULL OR reason IS NULL OR reason NOT IN ('retention', 'inactivity') THEN
        RAISE EXCEPTION 'table and reason (retention or inactivity) must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch_size IS NOT NULL AND batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _find_expired.tbl)
       OR EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) _find_expired.tbl AND h.released_at IS NULL
                    AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now())) THEN
        RETURN;
    END IF;
    q := pdp._expired_rows_sql(tbl, reason, coalesce(lock, false));
    IF q IS NULL THEN
        RETURN;
    END IF;
    held := ARRAY(SELECT h.subject FROM pdp.hold h WHERE h.subject IS NOT NULL AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
    restricted := ARRAY(SELECT r.subject FROM pdp.restriction r);
    IF reason = 'inactivity' THEN
        keys := ARRAY(SELECT i.subject FROM pg_temp.pdp_inactive_subjects i);
    ELSIF EXISTS (SELECT 1 FROM pdp.retention_policy p
                   WHERE p.tbl OPERATOR(pg_catalog.=) _find_expired.tbl AND p.anchor_column IS NULL) THEN
        keys := ARRAY(SELECT g.row_key FROM pdp.retention_tag g WHERE g.tbl OPERATOR(pg_catalog.=) _find_expired.tbl::oid
                         AND g.expires_at OPERATOR(pg_catalog.<) pg_catalog.now());
    END IF;
    IF pdp._purge_action(tbl) = 'anonymise' THEN
        anonymised := ARRAY(SELECT a.row_key FROM pdp.anonymised_row a WHERE a.tbl OPERATOR(pg_catalog.=) _find_expired.tbl::oid);
    END IF;
    IF batch_size IS NULL THEN
        SELECT x.n INTO n
          FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.count(*) FROM (%s) x', q),
                                  2147483647, '-infinity'::timestamptz, held, restricted, keys, anonymised) AS x(n bigint);
        RETURN;
    END IF;
    SELECT x.c, x.p INTO ctids, pos
      FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.array_agg(x.ctid), pg_catalog.max(x.pos) FROM (%s) x', q),
                              batch_size, coalesce(after, '-infinity'::timestamptz), held, restricted, keys, anonymised)
           AS x(c tid[], p timestamptz);
    n := coalesce(pg_catalog.cardinality(ctids), 0);
END
$$;
COMMENT ON FUNCTION pdp._find_expired(regclass, text, boolean, integer, timestamptz) IS
    'a batch of a table''s expired, unheld rows (ctids and position), or with a NULL batch size their count; read as the table''s owner';

-- The action a table's expired rows get: its retention action, else its on_erase.
CREATE FUNCTION pdp._purge_action(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce((SELECT p.action FROM pdp.retention_policy p WHERE p.tbl OPERATOR(pg_catalog.=) _purge_action.tbl),
                      (SELECT s.on_erase FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _purge_action.tbl LIMIT 1)) $$;
COMMENT ON FUNCTION pdp._purge_action(regclass) IS 'delete or anonymise: what purging a table does';

-- Delete or anonymise the rows at the given ctids; returns how many.
-- Anonymised rows are recorded so they are not processed again.  The
-- statement on the table runs as its owner; pdp's records are kept here.
-- Callable by no role (it would delete any row): pdp._purge_batch calls it.
CREATE FUNCTION pdp._purge_rows(tbl regclass, action text, ctids tid[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    set_list text;
    n bigint;
BEGIN
    -- A ctid is unique only within one shard: never delete by it on Citus.
    PERFORM pdp._refuse_on_citus(tbl, 'purge');
    IF action = 'delete' THEN
        IF EXISTS (SELECT 1 FROM pdp.retention_policy p
                    WHERE p.tbl OPERATOR(pg_catalog.=) _purge_rows.tbl AND p.anchor_column IS NULL) THEN
            -- Tagged rows: their tags go with them.
            WITH d AS (SELECT x.k FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                           'DELETE FROM %s t WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1) RETURNING t.%I::text',
                           tbl, pdp._single_key(tbl)), ctids) AS x(k text)),
                 g AS (DELETE FROM pdp.retention_tag g USING d WHERE g.tbl OPERATOR(pg_catalog.=) _purge_rows.tbl::oid
                          AND g.row_key OPERATOR(pg_catalog.=) d.k)
            SELECT pg_catalog.count(*) INTO n FROM d;
        ELSE
            SELECT pg_catalog.count(*) INTO n
              FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                       'DELETE FROM %s t WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1) RETURNING 1', tbl), ctids) AS x(one integer);
        END IF;
    ELSE
        SELECT pg_catalog.string_agg(pg_catalog.format('%I = %s', r.col, pg_catalog.format(rk.expr, r.col)), ', ')
          INTO set_list
          FROM pdp.column_rule r JOIN pdp.rule_kind rk ON rk.rule OPERATOR(pg_catalog.=) r.rule
         WHERE r.tbl OPERATOR(pg_catalog.=) _purge_rows.tbl;
        IF set_list IS NULL THEN
            RAISE EXCEPTION 'table "%" has no column rules to anonymise with', pdp._relname(tbl)
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        WITH u AS (SELECT x.k FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                       'UPDATE %s t SET %s WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1) RETURNING t.%I::text',
                       tbl, set_list, pdp._single_key(tbl)), ctids) AS x(k text)),
             a AS (INSERT INTO pdp.anonymised_row (tbl, row_key) SELECT _purge_rows.tbl::oid, u.k FROM u ON CONFLICT DO NOTHING)
        SELECT pg_catalog.count(*) INTO n FROM u;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp._purge_rows(regclass, text, tid[]) IS 'deletes or anonymises the given rows of a table';

-- One purge batch of a table for one reason: finds up to batch_size expired,
-- unheld rows after position "after" and deletes or anonymises them (the
-- table's purge action).  got is false when there were none.  What it
-- removes is decided by the table owner's retention alone, so any purger may
-- call it.
CREATE FUNCTION pdp._purge_batch(tbl regclass, reason text, batch_size integer, after timestamptz, lock boolean,
                                 OUT n bigint, OUT pos timestamptz, OUT got boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ctids tid[];
BEGIN
    IF batch_size IS NULL THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT f.ctids, f.pos INTO ctids, pos FROM pdp._find_expired(tbl, reason, lock, batch_size, after) f;
    got := ctids IS NOT NULL;
    n := CASE WHEN got THEN pdp._purge_rows(tbl, pdp._purge_action(tbl), ctids) ELSE 0 END;
END
$$;
COMMENT ON FUNCTION pdp._purge_batch(regclass, text, integer, timestamptz, boolean) IS
    'finds and purges one batch of a table''s expired, unheld rows; statements on the table run as its owner';

-- Work out the subjects whose last activity is older than the inactivity
-- period, into a temporary table for this session's purge.
CREATE FUNCTION pdp._collect_inactive_subjects() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    subj name;
    n bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = 'pdp_inactive_subjects'
                 AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()) THEN
        DROP TABLE pg_temp.pdp_inactive_subjects;
    END IF;
    SELECT * INTO r FROM pdp.subject_retention;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    CREATE TEMP TABLE pdp_inactive_subjects (subject text PRIMARY KEY);
    -- The activity table is read as its owner (pdp._exec_as_owner).
    FOR subj IN SELECT s.col FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) r.activity_table LOOP
        INSERT INTO pg_temp.pdp_inactive_subjects
        SELECT x.s FROM pdp._exec_as_owner(r.activity_table, pg_catalog.format(
            'SELECT %1$I::text FROM %2$s WHERE %1$I IS NOT NULL '
            'GROUP BY %1$I HAVING pg_catalog.max(pdp._expiry(%3$I, %4$L::interval)) OPERATOR(pg_catalog.<) pg_catalog.now()',
            subj, r.activity_table, r.activity_column, r.period::text)) AS x(s text)
        ON CONFLICT DO NOTHING;
    END LOOP;
    -- A subject active under any of the activity table's subject columns is active.
    FOR subj IN SELECT s.col FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) r.activity_table LOOP
        DELETE FROM pg_temp.pdp_inactive_subjects i
         WHERE i.subject IN (SELECT x.s FROM pdp._exec_as_owner(r.activity_table, pg_catalog.format(
                   'SELECT a.%1$I::text FROM %2$s a WHERE a.%1$I IS NOT NULL '
                   'AND pdp._expiry(a.%3$I, %4$L::interval) OPERATOR(pg_catalog.>=) pg_catalog.now()',
                   subj, r.activity_table, r.activity_column, r.period::text)) AS x(s text));
    END LOOP;
    SELECT pg_catalog.count(*) INTO n FROM pg_temp.pdp_inactive_subjects;
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp._collect_inactive_subjects() IS 'collects inactive subjects into pg_temp.pdp_inactive_subjects';

-- Start a run: compact old runs, mark interrupted ones, record this one.
CREATE FUNCTION pdp._begin_purge_run(dry_run boolean) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
    old bigint;
BEGIN
    INSERT INTO pdp.purge_summary AS s (month, runs, rows)
    SELECT pg_catalog.date_trunc('month', r.started_at)::date, pg_catalog.count(*), pg_catalog.sum(r.total_rows)
      FROM pdp.purge_run r WHERE r.started_at < pg_catalog.now() - interval '90 days' GROUP BY 1
    ON CONFLICT (month) DO UPDATE SET runs = s.runs + EXCLUDED.runs, rows = s.rows + EXCLUDED.rows;
    DELETE FROM pdp.purge_run r WHERE r.started_at < pg_catalog.now() - interval '90 days';
    -- A running purge holds a session lock on its run; a run marked running
    -- whose lock is free lost its session (a cancel, a crash): interrupted.
    FOR old IN SELECT r.id FROM pdp.purge_run r WHERE r.status = 'running' LOOP
        IF pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext('pdp_ext purge run'), old::integer) THEN
            UPDATE pdp.purge_run r SET status = 'interrupted' WHERE r.id OPERATOR(pg_catalog.=) old;
            PERFORM pg_catalog.pg_advisory_unlock(pg_catalog.hashtext('pdp_ext purge run'), old::integer);
        END IF;
    END LOOP;
    INSERT INTO pdp.purge_run (dry_run, status) VALUES (dry_run, CASE WHEN dry_run THEN 'dry run' ELSE 'running' END)
    RETURNING purge_run.id INTO id;
    -- Held for the session's life: tells later runs this one is alive.
    PERFORM pg_catalog.pg_advisory_lock(pg_catalog.hashtext('pdp_ext purge run'), id::integer);
    RETURN id;
END
$$;
COMMENT ON FUNCTION pdp._begin_purge_run(boolean) IS 'records a new purge run; compacts runs older than 90 days';

CREATE FUNCTION pdp._record_purge_batch(run_id bigint, tbl regclass, action text, n bigint, err jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key text := tbl::text || ' ' || action;
BEGIN
    IF n = 0 AND err IS NULL THEN
        RETURN;
    END IF;
    UPDATE pdp.purge_run r
       SET rows = pg_catalog.jsonb_set(r.rows, ARRAY[key], pg_catalog.to_jsonb(coalesce((r.rows->>key)::bigint, 0) + n)),
           total_rows = r.total_rows + n,
           errors = CASE WHEN err IS NULL THEN r.errors ELSE r.errors || err END
     WHERE r.id OPERATOR(pg_catalog.=) run_id;
    IF n > 0 THEN
        PERFORM pdp._audit('purge_batch', tbl::text, NULL,
                           pg_catalog.jsonb_build_object('run', run_id, 'action', action, 'rows', n));
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._record_purge_batch(bigint, regclass, text, bigint, jsonb) IS 'adds a batch''s count (or error) to its run';

CREATE FUNCTION pdp._end_purge_run(run_id bigint, status text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE pdp.purge_run r SET finished_at = pg_catalog.clock_timestamp(),
           status = CASE WHEN r.dry_run THEN 'dry run' ELSE _end_purge_run.status END
     WHERE r.id OPERATOR(pg_catalog.=) run_id;
    PERFORM pg_catalog.pg_advisory_unlock(pg_catalog.hashtext('pdp_ext purge run'), run_id::integer);
END
$$;
COMMENT ON FUNCTION pdp._end_purge_run(bigint, text) IS 'closes a purge run';

CREATE FUNCTION pdp.purge_expired(batch_size integer DEFAULT 5000, dry_run boolean DEFAULT false)
RETURNS TABLE (table_name regclass, action text, rows bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run_id bigint;
    t regclass;
    why text;
    pos timestamptz;
    n bigint;
    got boolean;
    total bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.current_setting('transaction_read_only') = 'on' THEN
        RAISE EXCEPTION 'cannot purge in a read-only transaction'
            USING ERRCODE = 'read_only_sql_transaction', DETAIL = 'Nothing was purged.',
                  HINT = 'Purge on the primary; on a primary, check default_transaction_read_only.';
    END IF;
    run_id := pdp._begin_purge_run(coalesce(dry_run, false));
    PERFORM pdp._collect_inactive_subjects();
    FOR t IN SELECT o.tbl FROM pdp._deletion_order() o LOOP
        IF EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) t AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until > pg_catalog.now())) THEN
            CONTINUE;
        END IF;
        CONTINUE WHEN pdp._citus_skip_purge(t, run_id);   -- not correct on Citus tables yet: skipped, recorded
        table_name := t;
        action := pdp._purge_action(t);
        total := 0;
        FOREACH why IN ARRAY ARRAY['retention', 'inactivity'] LOOP
            IF dry_run THEN
                total := total + (pdp._find_expired(t, why, false, NULL, NULL)).n;
                CONTINUE;
            END IF;
            pos := '-infinity';
            LOOP
                SELECT b.n, b.pos, b.got INTO n, pos, got FROM pdp._purge_batch(t, why, batch_size, pos, true) b;
                EXIT WHEN NOT got;
                PERFORM pdp._record_purge_batch(run_id, t, action, n);
                total := total + n;
                EXIT WHEN n = 0;
            END LOOP;
        END LOOP;
        IF total > 0 OR dry_run THEN
            rows := total;
            RETURN NEXT;
        END IF;
    END LOOP;
    PERFORM pdp._end_purge_run(run_id, 'finished');
END
$$;
COMMENT ON FUNCTION pdp.purge_expired(integer, boolean) IS
    'deletes or anonymises expired rows of every retained table, children first, skipping held and restricted subjects; dry_run only counts';

CREATE PROCEDURE pdp.purge(batch_size integer DEFAULT 5000, max_duration interval DEFAULT '1 hour')
LANGUAGE plpgsql
-- No SET clause (a procedure with one cannot COMMIT): every name is qualified.
AS $$
DECLARE
    run_id bigint;
    t regclass;
    why text;
    act text;
    got boolean;
    pos timestamptz;
    n bigint;
    deadline timestamptz;
    stopped boolean := false;
    err jsonb;
    failed integer := 0;
    failed_states text[] := '{}';
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pdp._check_interval(max_duration, 'max_duration must be positive');
    deadline := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) max_duration;
    IF pg_catalog.current_setting('transaction_read_only') = 'on' THEN
        RAISE EXCEPTION 'cannot purge in a read-only transaction'
            USING ERRCODE = 'read_only_sql_transaction', DETAIL = 'Nothing was purged.',
                  HINT = 'Purge on the primary; on a primary, check default_transaction_read_only.';
    END IF;
    run_id := pdp._begin_purge_run(false);
    PERFORM pdp._collect_inactive_subjects();
    COMMIT;
    <<tables>>
    FOR t IN SELECT o.tbl FROM pdp._deletion_order() o LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) t AND h.released_at IS NULL
                                AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
        CONTINUE WHEN pdp._citus_skip_purge(t, run_id);   -- not correct on Citus tables yet: skipped, recorded
        act := pdp._purge_action(t);
        FOREACH why IN ARRAY ARRAY['retention', 'inactivity'] LOOP
            pos := '-infinity';
            LOOP
                IF pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>) deadline THEN
                    stopped := true;
                    EXIT tables;
                END IF;
                err := NULL;
                n := 0;
                -- A batch need not wait for its commit to reach disk: if a crash
                -- loses it, it is lost whole (rows and count together), and the
                -- next run purges those rows again.
                PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
                -- One batch: found, deleted or anonymised, and counted in one transaction.
                BEGIN
                    -- One purger per table at a time: a second one skips the table.
                    IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('pdp_ext purge'), t::oid::integer) THEN
                        EXIT;
                    END IF;
                    -- Found and purged as the table's owner (pdp._purge_batch).
                    SELECT b.n, b.pos, b.got INTO n, pos, got
                      FROM pdp._purge_batch(t, why, batch_size, coalesce(pos, '-infinity'), false) b;
                EXCEPTION WHEN OTHERS THEN
                    -- SQLSTATE and message only: a detail could hold a key value.
                    err := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                               'table', t::text, 'sqlstate', SQLSTATE, 'message', SQLERRM));
                    got := false;
                END;
                PERFORM pdp._record_purge_batch(run_id, t, act, n, err);
                IF err IS NOT NULL THEN
                    failed := failed OPERATOR(pg_catalog.+) 1;
                    failed_states := pg_catalog.array_append(failed_states,
                                         pg_catalog.jsonb_extract_path_text(err, '0', 'sqlstate'));
                END IF;
                IF n > 0 THEN
                    RAISE NOTICE 'purge: % rows of table "%" (%)', n, pdp._relname(t), act;
                END IF;
                COMMIT;
                EXIT WHEN NOT got OR n = 0;
            END LOOP;
        END LOOP;
    END LOOP;
    PERFORM pdp._end_purge_run(run_id, CASE WHEN stopped THEN 'stopped at max_duration' ELSE 'finished' END);
    COMMIT;
    -- A failed batch (a full disk, a lock timeout) is left for the next run;
    -- say so, not only in the run's record.
    IF failed OPERATOR(pg_catalog.>) 0 THEN
        RAISE WARNING 'purge: % batch(es) failed and were left for the next run', failed
            USING DETAIL = pg_catalog.concat('SQLSTATE ', pg_catalog.array_to_string(
                               ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(failed_states) x ORDER BY 1), ', ')),
                  HINT = pg_catalog.format('See the errors of run %s in pdp.purge_log.', run_id);
    END IF;
END
$$;
COMMENT ON PROCEDURE pdp.purge(integer, interval) IS
    'purges expired rows committing after every batch; stops after max_duration; an interrupted run loses no batch and the next resumes';

CREATE VIEW pdp.purge_log AS
SELECT r.id, r.started_at, r.finished_at, r.status, r.dry_run, r.rows, r.total_rows, r.errors, r.run_by
  FROM pdp.purge_run r;
COMMENT ON VIEW pdp.purge_log IS 'purge runs of the last 90 days (older ones are compacted into pdp.purge_summary)';
CREATE VIEW pdp.purge_progress AS
SELECT r.id, r.started_at, pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) r.started_at AS running_for,
       r.rows, r.total_rows, r.errors
  FROM pdp.purge_run r WHERE r.status = 'running';
COMMENT ON VIEW pdp.purge_progress IS 'the purge running now, updated after every batch';

-- Scheduling with pg_cron ---------------------------------------------------

CREATE FUNCTION pdp._require_pg_cron() RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Install postgresql-15-cron, add pg_cron to shared_preload_libraries, set cron.database_name '
                         'to this database, restart the server, then CREATE EXTENSION pg_cron.';
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._require_pg_cron() IS 'raises, with a hint, unless pg_cron is installed here';

CREATE FUNCTION pdp.schedule_purge(schedule text DEFAULT '17 3 * * *') RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint;
BEGIN
    PERFORM pdp._require_pg_cron();
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job USING 'pdp_ext purge', schedule, 'CALL pdp.purge()';
    PERFORM pdp._audit('schedule_purge', 'pdp.purge', NULL, pg_catalog.jsonb_build_object('schedule', schedule, 'job', job));
    RETURN job;
END
$$;
COMMENT ON FUNCTION pdp.schedule_purge(text) IS 'schedules CALL pdp.purge() with pg_cron (job "pdp_ext purge"); returns the job id';

CREATE FUNCTION pdp.unschedule_purge() RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done boolean;
BEGIN
    PERFORM pdp._require_pg_cron();
    IF NOT EXISTS (SELECT 1 FROM cron.job j WHERE j.jobname OPERATOR(pg_catalog.=) 'pdp_ext purge') THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' INTO done USING 'pdp_ext purge';
    PERFORM pdp._audit('unschedule_purge', 'pdp.purge');
    RETURN done;
END
$$;
COMMENT ON FUNCTION pdp.unschedule_purge() IS 'removes the scheduled purge; false if none was scheduled';

-- ===== src/sql/80_rights.sql =====
-- Data-subject rights: access and portability, erasure, recipients and
-- disclosures, rectification notices, requests and their deadlines.

-- ISO 3166-1 alpha-2 country codes (249, from Debian's iso-codes package).
CREATE TABLE pdp.country (code char(2) PRIMARY KEY);
COMMENT ON TABLE pdp.country IS 'ISO 3166-1 alpha-2 country codes (read-only)';
COMMENT ON COLUMN pdp.country.code IS 'the code, e.g. KZ';
INSERT INTO pdp.country VALUES ('AD'), ('AE'), ('AF'), ('AG'), ('AI'), ('AL'), ('AM'), ('AO'), ('AQ'), ('AR'), ('AS'), ('AT'), ('AU'), ('AW'), ('AX'), ('AZ'), ('BA'), ('BB'), ('BD'), ('BE'), ('BF'), ('BG'), ('BH'), ('BI'), ('BJ'), ('BL'), ('BM'), ('BN'), ('BO'), ('BQ'), ('BR'), ('BS'), ('BT'), ('BV'), ('BW'), ('BY'), ('BZ'), ('CA'), ('CC'), ('CD'), ('CF'), ('CG'), ('CH'), ('CI'), ('CK'), ('CL'), ('CM'), ('CN'), ('CO'), ('CR'), ('CU'), ('CV'), ('CW'), ('CX'), ('CY'), ('CZ'), ('DE'), ('DJ'), ('DK'), ('DM'), ('DO'), ('DZ'), ('EC'), ('EE'), ('EG'), ('EH'), ('ER'), ('ES'), ('ET'), ('FI'), ('FJ'), ('FK'), ('FM'), ('FO'), ('FR'), ('GA'), ('GB'), ('GD'), ('GE'), ('GF'), ('GG'), ('GH'), ('GI'), ('GL'), ('GM'), ('GN'), ('GP'), ('GQ'), ('GR'), ('GS'), ('GT'), ('GU'), ('GW'), ('GY'), ('HK'), ('HM'), ('HN'), ('HR'), ('HT'), ('HU'), ('ID'), ('IE'), ('IL'), ('IM'), ('IN'), ('IO'), ('IQ'), ('IR'), ('IS'), ('IT'), ('JE'), ('JM'), ('JO'), ('JP'), ('KE'), ('KG'), ('KH'), ('KI'), ('KM'), ('KN'), ('KP'), ('KR'), ('KW'), ('KY'), ('KZ'), ('LA'), ('LB'), ('LC'), ('LI'), ('LK'), ('LR'), ('LS'), ('LT'), ('LU'), ('LV'), ('LY'), ('MA'), ('MC'), ('MD'), ('ME'), ('MF'), ('MG'), ('MH'), ('MK'), ('ML'), ('MM'), ('MN'), ('MO'), ('MP'), ('MQ'), ('MR'), ('MS'), ('MT'), ('MU'), ('MV'), ('MW'), ('MX'), ('MY'), ('MZ'), ('NA'), ('NC'), ('NE'), ('NF'), ('NG'), ('NI'), ('NL'), ('NO'), ('NP'), ('NR'), ('NU'), ('NZ'), ('OM'), ('PA'), ('PE'), ('PF'), ('PG'), ('PH'), ('PK'), ('PL'), ('PM'), ('PN'), ('PR'), ('PS'), ('PT'), ('PW'), ('PY'), ('QA'), ('RE'), ('RO'), ('RS'), ('RU'), ('RW'), ('SA'), ('SB'), ('SC'), ('SD'), ('SE'), ('SG'), ('SH'), ('SI'), ('SJ'), ('SK'), ('SL'), ('SM'), ('SN'), ('SO'), ('SR'), ('SS'), ('ST'), ('SV'), ('SX'), ('SY'), ('SZ'), ('TC'), ('TD'), ('TF'), ('TG'), ('TH'), ('TJ'), ('TK'), ('TL'), ('TM'), ('TN'), ('TO'), ('TR'), ('TT'), ('TV'), ('TW'), ('TZ'), ('UA'), ('UG'), ('UM'), ('US'), ('UY'), ('UZ'), ('VA'), ('VC'), ('VE'), ('VG'), ('VI'), ('VN'), ('VU'), ('WF'), ('WS'), ('YE'), ('YT'), ('ZA'), ('ZM'), ('ZW');

-- Recipients and disclosures ----------------------------------------------------

CREATE TABLE pdp.recipient (
    name         text        PRIMARY KEY,
    country      char(2)     NOT NULL,
    safeguards   text,
    description  text,
    defined_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    defined_by   name        NOT NULL DEFAULT CURRENT_USER,
    CONSTRAINT recipient_name_check CHECK (name ~ '^[^[:cntrl:]]{1,100}$')
);
COMMENT ON TABLE pdp.recipient IS 'register of third parties that receive personal data (GDPR Art. 30(1)(d), Law 94-V)';
COMMENT ON COLUMN pdp.recipient.name IS 'the recipient';
COMMENT ON COLUMN pdp.recipient.country IS 'where it processes the data (ISO 3166-1 alpha-2)';
COMMENT ON COLUMN pdp.recipient.safeguards IS 'for transfers outside Kazakhstan: SCC, adequacy, consent, BCR or derogation';
COMMENT ON COLUMN pdp.recipient.description IS 'what it does with the data';
COMMENT ON COLUMN pdp.recipient.defined_at IS 'when it was defined';
COMMENT ON COLUMN pdp.recipient.defined_by IS 'who defined it';
SELECT pg_catalog.pg_extension_config_dump('pdp.recipient', '');

CREATE TABLE pdp.disclosure (
    id          bigserial   PRIMARY KEY,
    subject     text        NOT NULL,
    recipient   text        NOT NULL,
    purpose     text        NOT NULL,
    categories  text[]      NOT NULL,
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    recorded_by name        NOT NULL DEFAULT SESSION_USER
);
CREATE INDEX disclosure_subject_idx ON pdp.disclosure (subject);
COMMENT ON TABLE pdp.disclosure IS 'which subject''s data went to which recipient, for what, of what kind';
COMMENT ON SEQUENCE pdp.disclosure_id_seq IS 'numbers disclosures';
COMMENT ON COLUMN pdp.disclosure.id IS 'the disclosure''s number';
COMMENT ON COLUMN pdp.disclosure.subject IS 'the subject (text form)';
COMMENT ON COLUMN pdp.disclosure.recipient IS 'the recipient';
COMMENT ON COLUMN pdp.disclosure.purpose IS 'the purpose of the disclosure';
COMMENT ON COLUMN pdp.disclosure.categories IS 'categories of data disclosed, e.g. {email,grades}';
COMMENT ON COLUMN pdp.disclosure.at IS 'when';
COMMENT ON COLUMN pdp.disclosure.recorded_by IS 'the session user that recorded it';
SELECT pg_catalog.pg_extension_config_dump('pdp.disclosure', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.disclosure_id_seq', '');

CREATE TABLE pdp.rectification_notice (
    id              bigserial   PRIMARY KEY,
    subject         text        NOT NULL,
    recipient       text        NOT NULL,
    tbl             regclass    NOT NULL,
    columns         text[]      NOT NULL,
    raised_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    acknowledged_at timestamptz,
    acknowledged_by name
);
COMMENT ON TABLE pdp.rectification_notice IS 'recipients to tell that a subject''s data changed (talap §5.1.4, GDPR Art. 19)';
COMMENT ON SEQUENCE pdp.rectification_notice_id_seq IS 'numbers notices';
COMMENT ON COLUMN pdp.rectification_notice.id IS 'the notice''s number';
COMMENT ON COLUMN pdp.rectification_notice.subject IS 'the subject (text form)';
COMMENT ON COLUMN pdp.rectification_notice.recipient IS 'the recipient to notify';
COMMENT ON COLUMN pdp.rectification_notice.tbl IS 'the table whose classified columns changed';
COMMENT ON COLUMN pdp.rectification_notice.columns IS 'the columns that changed (names, never values)';
COMMENT ON COLUMN pdp.rectification_notice.raised_at IS 'when the change happened';
COMMENT ON COLUMN pdp.rectification_notice.acknowledged_at IS 'when the notice was sent and closed';
COMMENT ON COLUMN pdp.rectification_notice.acknowledged_by IS 'who closed it';
SELECT pg_catalog.pg_extension_config_dump('pdp.rectification_notice', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.rectification_notice_id_seq', '');

CREATE FUNCTION pdp._rectification() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_rectification';
COMMENT ON FUNCTION pdp._rectification() IS 'trigger: raises a notice for every recipient of a subject whose classified data changed';
CREATE FUNCTION pdp._set_erasing(on_ boolean) RETURNS void
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_set_erasing';
COMMENT ON FUNCTION pdp._set_erasing(boolean) IS
    'lets erasure delete rows of restricted subjects until erasure turns it off, the subtransaction that turned it on aborts, or the transaction ends';

-- Keep the rectification trigger of a table in step with its subject and
-- classified columns (a classified column has a rule or a category).
CREATE FUNCTION pdp._sync_rectification_trigger(tbl regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    args text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl::oid
                 AND t.tgname OPERATOR(pg_catalog.=) 'pdp_rectification') THEN
        EXECUTE pg_catalog.format('DROP TRIGGER pdp_rectification ON %s', tbl);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _sync_rectification_trigger.tbl)
       OR NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) _sync_rectification_trigger.tbl) THEN
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_literal(a), ', ') INTO args FROM (
        SELECT 's:' || s.col AS a FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _sync_rectification_trigger.tbl
        UNION ALL
        SELECT 'c:' || r.col FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) _sync_rectification_trigger.tbl) x;
    PERFORM pdp._refuse_on_citus(tbl, 'install a rectification trigger on');
    EXECUTE pg_catalog.format('CREATE TRIGGER pdp_rectification AFTER UPDATE ON %s FOR EACH ROW '
                              'EXECUTE FUNCTION pdp._rectification(%s)', tbl, args);
END
$$;
COMMENT ON FUNCTION pdp._sync_rectification_trigger(regclass) IS
    'creates, rebuilds or drops a table''s rectification trigger';

CREATE FUNCTION pdp.define_recipient(name text, country text, safeguards text DEFAULT NULL, description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR country IS NULL THEN
        RAISE EXCEPTION 'recipient name and country must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name !~ '^[^[:cntrl:]]{1,100}$' THEN
        RAISE EXCEPTION 'a recipient''s name must be 1 to 100 characters without control characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.country c WHERE c.code OPERATOR(pg_catalog.=) pg_catalog.upper(country)) THEN
        RAISE EXCEPTION 'unknown country code' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Use an ISO 3166-1 alpha-2 code such as KZ, DE or US.';
    END IF;
    IF pg_catalog.upper(country) <> 'KZ' AND (safeguards IS NULL OR safeguards NOT IN ('SCC', 'adequacy', 'consent', 'BCR', 'derogation')) THEN
        RAISE EXCEPTION 'a recipient outside Kazakhstan is a cross-border transfer and needs its safeguards named'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'safeguards: SCC (standard contractual clauses), adequacy, consent, BCR or derogation.';
    END IF;
    INSERT INTO pdp.recipient AS r (name, country, safeguards, description)
    VALUES (define_recipient.name, pg_catalog.upper(define_recipient.country), define_recipient.safeguards,
            define_recipient.description)
    ON CONFLICT ON CONSTRAINT recipient_pkey DO UPDATE
       SET country = EXCLUDED.country, safeguards = EXCLUDED.safeguards, description = EXCLUDED.description,
           defined_at = pg_catalog.now(), defined_by = CURRENT_USER;
    PERFORM pdp._audit('define_recipient', name, NULL,
                       pg_catalog.jsonb_build_object('country', pg_catalog.upper(country), 'safeguards', safeguards));
END
$$;
COMMENT ON FUNCTION pdp.define_recipient(text, text, text, text) IS
    'registers a recipient; outside Kazakhstan its safeguards must be named (SCC, adequacy, consent, BCR, derogation)';

CREATE VIEW pdp.recipients AS
SELECT r.name, r.country, r.country OPERATOR(pg_catalog.<>) 'KZ' AS cross_border, r.safeguards, r.description,
       CASE WHEN r.country OPERATOR(pg_catalog.<>) 'KZ'
            THEN 'copies only: Law 94-V requires the primary personal database to be kept in Kazakhstan'
            ELSE 'in Kazakhstan' END AS localisation,
       (SELECT pg_catalog.count(*) FROM pdp.disclosure d WHERE d.recipient OPERATOR(pg_catalog.=) r.name) AS disclosures,
       r.defined_at, r.defined_by
  FROM pdp.recipient r;
COMMENT ON VIEW pdp.recipients IS 'the register of recipients, with cross-border transfers and data localisation flagged';

CREATE FUNCTION pdp.record_disclosure(subject text, recipient text, purpose text, categories text[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.recipient r WHERE r.name OPERATOR(pg_catalog.=) record_disclosure.recipient) THEN
        RAISE EXCEPTION 'unknown recipient' USING ERRCODE = 'undefined_object',
              HINT = 'pdp.define_recipient registers recipients; pdp.recipients lists them.';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    IF categories IS NULL OR pg_catalog.cardinality(categories) = 0 OR array_position(categories, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'categories must name at least one kind of data' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pdp.disclosure (subject, recipient, purpose, categories)
    VALUES (record_disclosure.subject, record_disclosure.recipient, record_disclosure.purpose, record_disclosure.categories)
    RETURNING disclosure.id INTO id;
    PERFORM pdp._audit('record_disclosure', recipient, subject,
                       pg_catalog.jsonb_build_object('disclosure_id', id, 'purpose', purpose, 'categories', categories));
    RETURN id;
END
$$;
COMMENT ON FUNCTION pdp.record_disclosure(text, text, text, text[]) IS 'records that a subject''s data went to a recipient';
CREATE FUNCTION pdp.record_disclosure(subject bigint, recipient text, purpose text, categories text[]) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.record_disclosure(subject::text, recipient, purpose, categories) $$;
COMMENT ON FUNCTION pdp.record_disclosure(bigint, text, text, text[]) IS 'record_disclosure for a bigint or integer subject';
CREATE FUNCTION pdp.record_disclosure(subject uuid, recipient text, purpose text, categories text[]) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.record_disclosure(subject::text, recipient, purpose, categories) $$;
COMMENT ON FUNCTION pdp.record_disclosure(uuid, text, text, text[]) IS 'record_disclosure for a uuid subject';

CREATE VIEW pdp.pending_notices AS
SELECT n.id, n.subject, n.recipient, r.country, n.tbl AS table_name, n.columns, n.raised_at
  FROM pdp.rectification_notice n LEFT JOIN pdp.recipient r ON r.name OPERATOR(pg_catalog.=) n.recipient
 WHERE n.acknowledged_at IS NULL;
COMMENT ON VIEW pdp.pending_notices IS 'rectifications still to be told to their recipients';

CREATE FUNCTION pdp.acknowledge_notice(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n record;
BEGIN
    UPDATE pdp.rectification_notice x SET acknowledged_at = pg_catalog.now(), acknowledged_by = SESSION_USER
     WHERE x.id OPERATOR(pg_catalog.=) acknowledge_notice.id AND x.acknowledged_at IS NULL
    RETURNING * INTO n;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'notice % does not exist or is acknowledged already', id USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM pdp._audit('acknowledge_notice', n.recipient, n.subject, pg_catalog.jsonb_build_object('notice_id', id));
END
$$;
COMMENT ON FUNCTION pdp.acknowledge_notice(bigint) IS 'closes a rectification notice once the recipient was told';

-- Requests and deadlines -------------------------------------------------------

CREATE TABLE pdp.request_deadline (
    jurisdiction text     NOT NULL,
    kind         text     NOT NULL CHECK (kind IN ('access', 'rectification', 'erasure', 'restriction',
                                                     'portability', 'withdrawal', 'objection')),
    period       interval,
    working_days integer  CHECK (working_days > 0),
    source       text     NOT NULL,
    PRIMARY KEY (jurisdiction, kind),
    CONSTRAINT request_deadline_one_measure CHECK ((period IS NULL) <> (working_days IS NULL))
);
COMMENT ON TABLE pdp.request_deadline IS 'how long the operator has to answer each kind of request, per jurisdiction (editable by pdp_admin)';
COMMENT ON COLUMN pdp.request_deadline.jurisdiction IS 'KZ (Law 94-V) or EU (GDPR), or any code you add';
COMMENT ON COLUMN pdp.request_deadline.kind IS 'access, rectification, erasure, restriction, portability, withdrawal, objection';
COMMENT ON COLUMN pdp.request_deadline.period IS 'a calendar period, or NULL when counted in working days';
COMMENT ON COLUMN pdp.request_deadline.working_days IS 'working days (Monday to Friday; public holidays are not known to pdp_ext)';
COMMENT ON COLUMN pdp.request_deadline.source IS 'where the deadline comes from';
CREATE TRIGGER request_deadline_check_period BEFORE INSERT OR UPDATE OF period ON pdp.request_deadline
    FOR EACH ROW EXECUTE FUNCTION pdp._check_period();
COMMENT ON TRIGGER request_deadline_check_period ON pdp.request_deadline IS 'a period must span a positive time however the row is written';

-- The deadlines pdp_ext ships.  CREATE EXTENSION inserts them, and a dump
-- carries only the rows a DBA added or changed (the filter below); on
-- restore, a dumped row replaces the shipped row of its key (the trigger
-- below).  Shipped rows can be edited but not deleted, so that every edit
-- survives a dump and restore.
CREATE FUNCTION pdp._request_deadline_defaults()
RETURNS TABLE (jurisdiction text, kind text, period interval, working_days integer, source text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'EU', k, interval '1 month', NULL::integer,
       'GDPR Art. 12(3): without undue delay and in any event within one month of receipt (extendable by two months, Art. 12(3))'
  FROM pg_catalog.unnest(ARRAY['access', 'rectification', 'erasure', 'restriction', 'portability', 'withdrawal', 'objection']) k
UNION ALL
SELECT 'KZ', k, NULL::interval, 3,
       'Law 94-V on personal data (Art. 24, operator''s obligations), as commonly cited: three working days; '
       'check against the law''s current text and edit this row if your counsel reads it otherwise'
  FROM pg_catalog.unnest(ARRAY['access', 'rectification', 'erasure', 'restriction', 'portability', 'withdrawal', 'objection']) k
$$;
COMMENT ON FUNCTION pdp._request_deadline_defaults() IS 'the request deadlines pdp_ext ships (inserted by CREATE EXTENSION)';

-- Is this row exactly a shipped one?  Periods are compared as written
-- ('30 days' is an edit of '1 mon', though the two compare equal).
CREATE FUNCTION pdp._request_deadline_is_default(jurisdiction text, kind text, period interval,
                                                 working_days integer, source text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT EXISTS (SELECT 1 FROM pdp._request_deadline_defaults() d
                WHERE d.jurisdiction OPERATOR(pg_catalog.=) $1 AND d.kind OPERATOR(pg_catalog.=) $2
                  AND d.period::text IS NOT DISTINCT FROM $3::text
                  AND d.working_days IS NOT DISTINCT FROM $4 AND d.source OPERATOR(pg_catalog.=) $5)
$$;
COMMENT ON FUNCTION pdp._request_deadline_is_default(text, text, interval, integer, text) IS
    'whether a request deadline row is exactly as shipped (such rows are not dumped)';
SELECT pg_catalog.pg_extension_config_dump('pdp.request_deadline',
    'WHERE NOT pdp._request_deadline_is_default(jurisdiction, kind, period, working_days, source)');

CREATE FUNCTION pdp._request_deadline_keep_edits() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- A row for a key whose row is still as shipped takes that row's place
        -- (a restore loads the edited row after CREATE EXTENSION inserted the
        -- shipped one): the shipped row is updated and the insert skipped.
        UPDATE pdp.request_deadline d
           SET period = NEW.period, working_days = NEW.working_days, source = NEW.source
         WHERE d.jurisdiction OPERATOR(pg_catalog.=) NEW.jurisdiction AND d.kind OPERATOR(pg_catalog.=) NEW.kind
           AND pdp._request_deadline_is_default(d.jurisdiction, d.kind, d.period, d.working_days, d.source);
        IF FOUND THEN
            RETURN NULL;
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'TRUNCATE' OR EXISTS (SELECT 1 FROM pdp._request_deadline_defaults() d
                                      WHERE d.jurisdiction OPERATOR(pg_catalog.=) OLD.jurisdiction
                                        AND d.kind OPERATOR(pg_catalog.=) OLD.kind) THEN
        RAISE EXCEPTION 'cannot delete a shipped request deadline' USING ERRCODE = 'feature_not_supported',
              DETAIL = 'CREATE EXTENSION inserts the shipped deadlines, so a deleted one would come back after a dump and restore.',
              HINT = 'Edit its period or working_days instead.';
    END IF;
    RETURN OLD;
END
$$;
COMMENT ON FUNCTION pdp._request_deadline_keep_edits() IS
    'trigger: an inserted deadline takes the place of an unedited shipped one of its key; shipped deadlines cannot be deleted';
CREATE TRIGGER request_deadline_keep_edits BEFORE INSERT OR DELETE ON pdp.request_deadline
    FOR EACH ROW EXECUTE FUNCTION pdp._request_deadline_keep_edits();
COMMENT ON TRIGGER request_deadline_keep_edits ON pdp.request_deadline IS 'edits of the shipped deadlines survive a dump and restore';
CREATE TRIGGER request_deadline_no_truncate BEFORE TRUNCATE ON pdp.request_deadline
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._request_deadline_keep_edits();
COMMENT ON TRIGGER request_deadline_no_truncate ON pdp.request_deadline IS 'shipped deadlines cannot be truncated away';

INSERT INTO pdp.request_deadline (jurisdiction, kind, period, working_days, source)
SELECT * FROM pdp._request_deadline_defaults();

CREATE TABLE pdp.subject_request (
    id           bigserial   PRIMARY KEY,
    subject      text        NOT NULL,
    kind         text        NOT NULL,
    jurisdiction text        NOT NULL,
    received_at  timestamptz NOT NULL,
    due_at       timestamptz NOT NULL,
    completed_at timestamptz,
    outcome      text,
    opened_by    name        NOT NULL DEFAULT SESSION_USER,
    completed_by name
);
COMMENT ON TABLE pdp.subject_request IS 'data-subject requests with their due dates';
COMMENT ON SEQUENCE pdp.subject_request_id_seq IS 'numbers requests';
COMMENT ON COLUMN pdp.subject_request.id IS 'the request''s number';
COMMENT ON COLUMN pdp.subject_request.subject IS 'the subject (text form)';
COMMENT ON COLUMN pdp.subject_request.kind IS 'what the subject asked for';
COMMENT ON COLUMN pdp.subject_request.jurisdiction IS 'whose deadlines apply';
COMMENT ON COLUMN pdp.subject_request.received_at IS 'when the request arrived';
COMMENT ON COLUMN pdp.subject_request.due_at IS 'when the answer is due';
COMMENT ON COLUMN pdp.subject_request.completed_at IS 'when it was answered';
COMMENT ON COLUMN pdp.subject_request.outcome IS 'how it was answered';
COMMENT ON COLUMN pdp.subject_request.opened_by IS 'who recorded it';
COMMENT ON COLUMN pdp.subject_request.completed_by IS 'who completed it';
SELECT pg_catalog.pg_extension_config_dump('pdp.subject_request', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.subject_request_id_seq', '');

-- received plus n working days (Monday to Friday).
CREATE FUNCTION pdp._add_working_days(t timestamptz, n integer) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d timestamptz := t;
    left_ integer := n;
BEGIN
    WHILE left_ > 0 LOOP
        d := d + interval '1 day';
        IF pg_catalog.date_part('isodow', d AT TIME ZONE 'Asia/Almaty') < 6 THEN
            left_ := left_ - 1;
        END IF;
    END LOOP;
    RETURN d;
END
$$;
COMMENT ON FUNCTION pdp._add_working_days(timestamptz, integer) IS 'adds working days (Monday to Friday, Almaty time)';

CREATE FUNCTION pdp.open_request(subject text, kind text, jurisdiction text DEFAULT 'KZ',
                                 received_at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record;
    id bigint;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL OR kind IS NULL OR jurisdiction IS NULL OR received_at IS NULL THEN
        RAISE EXCEPTION 'subject, kind, jurisdiction and received_at must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kind NOT IN ('access', 'rectification', 'erasure', 'restriction', 'portability', 'withdrawal', 'objection') THEN
        RAISE EXCEPTION 'unknown request kind' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'access, rectification, erasure, restriction, portability, withdrawal or objection.';
    END IF;
    SELECT * INTO d FROM pdp.request_deadline x
     WHERE x.jurisdiction OPERATOR(pg_catalog.=) open_request.jurisdiction AND x.kind OPERATOR(pg_catalog.=) open_request.kind;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no deadline for % requests in jurisdiction "%"', kind, jurisdiction
            USING ERRCODE = 'undefined_object', HINT = 'pdp.request_deadline lists the deadlines; pdp_admin may add rows.';
    END IF;
    IF d.period IS NOT NULL THEN
        PERFORM pdp._check_interval(d.period, 'request deadline must be positive');
    END IF;
    IF received_at > pg_catalog.now() + interval '1 minute' THEN
        RAISE EXCEPTION 'received_at is in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pdp.subject_request (subject, kind, jurisdiction, received_at, due_at)
    VALUES (open_request.subject, open_request.kind, open_request.jurisdiction, open_request.received_at,
            CASE WHEN d.period IS NOT NULL THEN open_request.received_at + d.period
                 ELSE pdp._add_working_days(open_request.received_at, d.working_days) END)
    RETURNING subject_request.id INTO id;
    PERFORM pdp._audit('open_request', kind, subject, pg_catalog.jsonb_build_object('request_id', id, 'jurisdiction', jurisdiction));
    RETURN id;
END
$$;
COMMENT ON FUNCTION pdp.open_request(text, text, text, timestamptz) IS
    'records a data-subject request and computes its due date from pdp.request_deadline';
CREATE FUNCTION pdp.open_request(subject bigint, kind text, jurisdiction text DEFAULT 'KZ',
                                 received_at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.open_request(subject::text, kind, jurisdiction, received_at) $$;
COMMENT ON FUNCTION pdp.open_request(bigint, text, text, timestamptz) IS 'open_request for a bigint or integer subject';
CREATE FUNCTION pdp.open_request(subject uuid, kind text, jurisdiction text DEFAULT 'KZ',
                                 received_at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.open_request(subject::text, kind, jurisdiction, received_at) $$;
COMMENT ON FUNCTION pdp.open_request(uuid, text, text, timestamptz) IS 'open_request for a uuid subject';

CREATE FUNCTION pdp.complete_request(id bigint, outcome text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    IF outcome IS NULL OR outcome = '' THEN
        RAISE EXCEPTION 'outcome must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE pdp.subject_request x SET completed_at = pg_catalog.now(), outcome = complete_request.outcome,
           completed_by = SESSION_USER
     WHERE x.id OPERATOR(pg_catalog.=) complete_request.id AND x.completed_at IS NULL
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % does not exist or is completed already', id USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM pdp._audit('complete_request', r.kind, r.subject,
                       pg_catalog.jsonb_build_object('request_id', id, 'late', r.completed_at > r.due_at));
END
$$;
COMMENT ON FUNCTION pdp.complete_request(bigint, text) IS 'records a request''s answer';

CREATE VIEW pdp.overdue_requests AS
SELECT r.id, r.subject, r.kind, r.jurisdiction, r.received_at, r.due_at,
       pg_catalog.now() OPERATOR(pg_catalog.-) r.due_at AS overdue_by
  FROM pdp.subject_request r WHERE r.completed_at IS NULL AND r.due_at < pg_catalog.now();
COMMENT ON VIEW pdp.overdue_requests IS 'open requests past their due date';

-- Access, portability, erasure -------------------------------------------------

CREATE TABLE pdp.erasure (
    subject_pseudonym text        PRIMARY KEY,
    receipt           jsonb       NOT NULL,
    erased_at         timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE pdp.erasure IS 'erasure receipts, keyed by the subject''s pseudonym (never the identifier)';
COMMENT ON COLUMN pdp.erasure.subject_pseudonym IS 'pdp._subject_pseudonym(subject), the audit trail''s pseudonym of the subject';
COMMENT ON COLUMN pdp.erasure.receipt IS 'tables, actions, row counts, time; no personal values';
COMMENT ON COLUMN pdp.erasure.erased_at IS 'when';
SELECT pg_catalog.pg_extension_config_dump('pdp.erasure', '');

-- WHERE clause matching a subject in a table's subject columns; each column
-- compares in its own type, so its indexes serve.  NULL when the subject
-- cannot be of any of the columns' types (e.g. a word for a bigint column).
CREATE FUNCTION pdp._subject_match(tbl regclass, subject text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    parts text[] := '{}';
    ok boolean;
BEGIN
    FOR s IN SELECT sc.col, a.atttypid::regtype AS typ FROM pdp.subject_column sc
               JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) sc.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) sc.attnum
              WHERE sc.tbl OPERATOR(pg_catalog.=) _subject_match.tbl ORDER BY sc.attnum LOOP
        BEGIN
            EXECUTE pg_catalog.format('SELECT $1::%s IS NOT NULL', s.typ) INTO ok USING subject;
            parts := parts || pg_catalog.format('t.%I OPERATOR(pg_catalog.=) $1::%s', s.col, s.typ);
        EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range OR string_data_right_truncation THEN
            NULL;   -- this column cannot hold the subject
        END;
    END LOOP;
    IF pg_catalog.cardinality(parts) = 0 THEN
        RETURN NULL;
    END IF;
    RETURN pg_catalog.array_to_string(parts, ' OR ');
END
$$;
COMMENT ON FUNCTION pdp._subject_match(regclass, text) IS 'SQL condition finding a subject''s rows in a registered table';

CREATE FUNCTION pdp.export_subject(subject text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    doc jsonb;
    data jsonb := '{}';
    t regclass;
    cond text;
    rows_ jsonb;
    erased jsonb;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    doc := pg_catalog.jsonb_build_object('format', 'pdp_ext subject export', 'format_version', 1,
                                         'generated_at', pg_catalog.now(), 'subject', subject);
    SELECT e.receipt INTO erased FROM pdp.erasure e
     WHERE e.subject_pseudonym OPERATOR(pg_catalog.=) pdp._subject_pseudonym(subject);
    IF FOUND THEN
        PERFORM pdp._audit_durable('export_subject', NULL, subject, '{"erased": true}');
        RETURN doc || pg_catalog.jsonb_build_object('erasure_receipt', erased);
    END IF;
    FOR t IN SELECT DISTINCT s.tbl FROM pdp.subject_column s ORDER BY 1 LOOP
        cond := pdp._subject_match(t, subject);
        CONTINUE WHEN cond IS NULL;
        -- Read as the table's owner: nothing of the table runs with pdp_ext's rights.
        SELECT x.r INTO rows_
          FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t.*)) FROM %s t WHERE %s', t, cond),
                                  subject) AS x(r jsonb);
        IF rows_ IS NOT NULL THEN
            data := data || pg_catalog.jsonb_build_object(t::text, rows_);
        END IF;
    END LOOP;
    doc := doc || pg_catalog.jsonb_build_object(
        'data', data,
        'consents', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c) ORDER BY c.event_id)
                                FROM pdp.consent_history(subject) c), '[]'),
        'active_consents', coalesce((SELECT pg_catalog.jsonb_agg(s.purpose ORDER BY s.purpose) FROM pdp.consent_state s
                                      WHERE s.subject OPERATOR(pg_catalog.=) export_subject.subject
                                        AND (s.valid_until IS NULL OR s.valid_until > pg_catalog.now())), '[]'),
        'restrictions', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('action', r.action, 'reason', r.reason, 'at', r.at) ORDER BY r.id)
                                   FROM pdp.restriction_event r WHERE r.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'),
        'holds', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', h.id, 'reason', h.reason, 'placed_at', h.placed_at,
                                                                                      'until', h.until, 'released_at', h.released_at) ORDER BY h.id)
                            FROM pdp.hold h WHERE h.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'),
        'disclosures', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('recipient', d.recipient, 'country', r.country,
                                                   'cross_border', r.country <> 'KZ', 'safeguards', r.safeguards, 'purpose', d.purpose,
                                                   'categories', d.categories, 'at', d.at) ORDER BY d.id)
                                  FROM pdp.disclosure d LEFT JOIN pdp.recipient r ON r.name OPERATOR(pg_catalog.=) d.recipient
                                 WHERE d.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'),
        'purposes', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('purpose', p.purpose, 'legal_basis', p.legal_basis,
                                                   'requires_consent', p.requires_consent, 'description', p.description) ORDER BY p.purpose)
                               FROM pdp.purpose p), '[]'),
        'retention', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', p.tbl::text, 'period', p.period::text,
                                                    'from', coalesce(p.anchor_column::text, 'insertion'), 'then', p.action) ORDER BY p.tbl::text)
                                FROM pdp.retention_policy p), '[]'),
        'requests', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', q.id, 'kind', q.kind, 'received_at', q.received_at,
                                                   'due_at', q.due_at, 'completed_at', q.completed_at, 'outcome', q.outcome) ORDER BY q.id)
                               FROM pdp.subject_request q WHERE q.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'));
    PERFORM pdp._audit_durable('export_subject', NULL, subject,
                       pg_catalog.jsonb_build_object('tables', (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_object_keys(data))));
    RETURN doc;
END
$$;
COMMENT ON FUNCTION pdp.export_subject(text) IS
    'every row of the subject in every registered table, with consents, restrictions, holds, disclosures, purposes and retention (GDPR Art. 15, 20)';
CREATE FUNCTION pdp.export_subject(subject bigint) RETURNS jsonb
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.export_subject(subject::text) $$;
COMMENT ON FUNCTION pdp.export_subject(bigint) IS 'export_subject for a bigint or integer subject';
CREATE FUNCTION pdp.export_subject(subject uuid) RETURNS jsonb
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.export_subject(subject::text) $$;
COMMENT ON FUNCTION pdp.export_subject(uuid) IS 'export_subject for a uuid subject';

CREATE FUNCTION pdp.erase_subject(subject text, reason text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    cond text;
    act text;
    n bigint;
    tables jsonb := '[]';
    set_list text;
    p text;
    withdrawn integer := 0;
    receipt jsonb;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL OR reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'subject and reason must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pdp._subject_held(subject) THEN
        RAISE EXCEPTION 'subject is under a legal hold'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Nothing was erased.',
                  HINT = 'pdp.holds lists the hold; pdp.release_hold releases it once its legal ground has ended.';
    END IF;
    PERFORM pdp._set_erasing(true);
    FOR t IN SELECT o.tbl FROM pdp._deletion_order() o LOOP
        cond := pdp._subject_match(t, subject);
        CONTINUE WHEN cond IS NULL;
        IF EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) t AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until > pg_catalog.now())) THEN
            SELECT x.n INTO n
              FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE %s', t, cond), subject) AS x(n bigint);
            IF n > 0 THEN
                RAISE EXCEPTION 'table "%" is under a legal hold', pdp._relname(t)
                    USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = 'Nothing was erased.';
            END IF;
            CONTINUE;
        END IF;
        act := (SELECT s.on_erase FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) t LIMIT 1);
        -- Every statement on the table runs as its owner (pdp._exec_as_owner).
        IF act = 'delete' THEN
            SELECT pg_catalog.count(*) INTO n
              FROM pdp._exec_as_owner(t, pg_catalog.format('DELETE FROM %s t WHERE %s RETURNING 1', t, cond), subject) AS x(one integer);
        ELSE
            -- Not on Citus tables yet (the whole erasure is refused, nothing is changed).
            PERFORM pdp._refuse_on_citus(t, 'anonymise rows of');
            -- Anonymise: apply the rules and cut the row's links to the subject:
            -- its subject columns, and its foreign keys into registered tables
            -- whose rows erasure deletes (an anonymised grade keeps no link to
            -- the deleted enrolment).
            SELECT pg_catalog.string_agg(x, ', ') INTO set_list FROM (
                SELECT pg_catalog.format('%I = %s', r.col, pg_catalog.format(rk.expr, r.col)) AS x
                  FROM pdp.column_rule r JOIN pdp.rule_kind rk ON rk.rule OPERATOR(pg_catalog.=) r.rule
                 WHERE r.tbl OPERATOR(pg_catalog.=) t
                UNION ALL
                SELECT pg_catalog.format('%1$I = CASE WHEN %1$I::text OPERATOR(pg_catalog.=) $1 THEN NULL ELSE %1$I END', s.col)
                  FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) t
                UNION
                SELECT pg_catalog.format('%I = NULL', a.attname)
                  FROM pg_constraint c
                  CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) k(attnum)
                  JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.conrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
                 WHERE c.contype = 'f' AND c.conrelid OPERATOR(pg_catalog.=) t::oid AND NOT a.attnotnull
                   AND EXISTS (SELECT 1 FROM pdp.subject_column p WHERE p.tbl::oid OPERATOR(pg_catalog.=) c.confrelid
                                 AND p.on_erase = 'delete')
                   AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s2 WHERE s2.tbl OPERATOR(pg_catalog.=) t
                                     AND s2.attnum OPERATOR(pg_catalog.=) a.attnum)) y;
            SELECT pg_catalog.count(*) INTO n
              FROM pdp._exec_as_owner(t, pg_catalog.format('UPDATE %s t SET %s WHERE %s RETURNING 1', t, set_list, cond), subject)
                   AS x(one integer);
        END IF;
        IF n > 0 THEN
            tables := tables || pg_catalog.jsonb_build_object('table', t::text, 'action', act, 'rows', n);
        END IF;
    END LOOP;
    FOR p IN SELECT s.purpose FROM pdp.consent_state s WHERE s.subject OPERATOR(pg_catalog.=) erase_subject.subject LOOP
        PERFORM pdp.withdraw_consent(subject, p);
        withdrawn := withdrawn + 1;
    END LOOP;
    PERFORM pdp._set_erasing(false);
    -- Tables, counts and time: the free-text reason stays out of the receipt,
    -- which must hold no personal value.
    receipt := pg_catalog.jsonb_build_object('subject_pseudonym', pdp._subject_pseudonym(subject),
                                             'erased_at', pg_catalog.now(),
                                             'tables', tables, 'consents_withdrawn', withdrawn);
    INSERT INTO pdp.erasure (subject_pseudonym, receipt) VALUES (pdp._subject_pseudonym(subject), receipt)
    ON CONFLICT (subject_pseudonym) DO UPDATE SET receipt = EXCLUDED.receipt, erased_at = EXCLUDED.erased_at;
    PERFORM pdp._audit('erase_subject', NULL, subject, pg_catalog.jsonb_build_object('tables', tables, 'consents_withdrawn', withdrawn));
    RETURN receipt;
END
$$;
COMMENT ON FUNCTION pdp.erase_subject(text, text) IS
    'deletes or anonymises (per on_erase) the subject''s rows in every registered table, children first, in one transaction; refused under a hold; returns and stores a receipt';
CREATE FUNCTION pdp.erase_subject(subject bigint, reason text) RETURNS jsonb
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.erase_subject(subject::text, reason) $$;
COMMENT ON FUNCTION pdp.erase_subject(bigint, text) IS 'erase_subject for a bigint or integer subject';
CREATE FUNCTION pdp.erase_subject(subject uuid, reason text) RETURNS jsonb
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.erase_subject(subject::text, reason) $$;
COMMENT ON FUNCTION pdp.erase_subject(uuid, text) IS 'erase_subject for a uuid subject';

-- ===== src/sql/90_register.sql =====
-- The record of processing (GDPR Art. 30; the list of necessary personal data,
-- Law 94-V Art. 25), PII discovery, and the compliance report.

CREATE FUNCTION pdp._classify_value(value text) RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_classify_value_sql';
COMMENT ON FUNCTION pdp._classify_value(text) IS
    'iin, bin, card, email, phone or ip when a value passes that validator (check digits, Luhn, syntax); else NULL';

-- Special categories (GDPR Art. 9): refused as a category unless
-- pdp.allow_special_categories is on (cap.kz's policy says it collects none).
CREATE TABLE pdp.special_category (name text PRIMARY KEY, meaning text NOT NULL);
COMMENT ON TABLE pdp.special_category IS 'category names treated as special categories of personal data (read-only)';
COMMENT ON COLUMN pdp.special_category.name IS 'the category name, lower case';
COMMENT ON COLUMN pdp.special_category.meaning IS 'what it covers';
INSERT INTO pdp.special_category VALUES
    ('health', 'health data'), ('medical', 'health data'), ('disability', 'health data'),
    ('religion', 'religious or philosophical beliefs'), ('religious_beliefs', 'religious or philosophical beliefs'),
    ('political_views', 'political opinions'), ('political_opinions', 'political opinions'),
    ('biometrics', 'biometric data'), ('biometric', 'biometric data'), ('genetic', 'genetic data'),
    ('ethnic_origin', 'racial or ethnic origin'), ('racial_origin', 'racial or ethnic origin'),
    ('trade_union', 'trade union membership'), ('sex_life', 'sex life or sexual orientation'),
    ('sexual_orientation', 'sex life or sexual orientation');

CREATE VIEW pdp.processing_register AS
SELECT s.tbl AS table_name,
       r.col AS column_name,
       r.category,
       r.rule,
       (SELECT pg_catalog.array_agg(x.col ORDER BY x.attnum) FROM pdp.subject_column x
         WHERE x.tbl OPERATOR(pg_catalog.=) s.tbl) AS subject_columns,
       -- Purposes some role may declare and that role may read the table.
       (SELECT pg_catalog.array_agg(DISTINCT p.purpose || ' (' || p.legal_basis || ')')
          FROM pdp.purpose p JOIN pdp.purpose_grant g ON g.purpose OPERATOR(pg_catalog.=) p.purpose
         WHERE pg_catalog.has_table_privilege(g.role, s.tbl, 'SELECT')) AS purposes,
       (SELECT p.period::text || ' from ' || coalesce(p.anchor_column::text, 'insertion') || ', then ' || p.action
          FROM pdp.retention_policy p WHERE p.tbl OPERATOR(pg_catalog.=) s.tbl) AS retention,
       (SELECT pg_catalog.array_agg(DISTINCT rc.name || ' (' || rc.country ||
                                    CASE WHEN rc.country <> 'KZ' THEN ', cross-border under ' || rc.safeguards ELSE '' END || ')')
          FROM pdp.disclosure d JOIN pdp.recipient rc ON rc.name OPERATOR(pg_catalog.=) d.recipient
         WHERE r.category OPERATOR(pg_catalog.=) ANY (d.categories)) AS recipients,
       CASE WHEN c.relforcerowsecurity AND EXISTS (SELECT 1 FROM pg_policy pp WHERE pp.polrelid OPERATOR(pg_catalog.=) c.oid
                                                     AND pp.polname = 'pdp_select') THEN 'protected, forced'
            WHEN EXISTS (SELECT 1 FROM pg_policy pp WHERE pp.polrelid OPERATOR(pg_catalog.=) c.oid AND pp.polname = 'pdp_select')
                 THEN 'protected'
            ELSE 'not protected' END
       || CASE WHEN r.col IS NOT NULL AND pdp._on_write_enabled(s.tbl) THEN ', pseudonymised on write' ELSE '' END AS protection
  FROM (SELECT DISTINCT sc.tbl FROM pdp.subject_column sc) s
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.tbl::oid
  LEFT JOIN pdp.column_rule r ON r.tbl OPERATOR(pg_catalog.=) s.tbl;
COMMENT ON VIEW pdp.processing_register IS
    'record of processing: per registered table and classified column, category, rule, subjects, purposes, retention, recipients, protection';

-- Column-name evidence, in Kazakh, Russian and English.
CREATE TABLE pdp.name_hint (category text NOT NULL, pattern text NOT NULL, PRIMARY KEY (category, pattern));
COMMENT ON TABLE pdp.name_hint IS 'column-name patterns (case-insensitive regular expressions) suggesting a category';
COMMENT ON COLUMN pdp.name_hint.category IS 'the category the name suggests';
COMMENT ON COLUMN pdp.name_hint.pattern IS 'the regular expression';
INSERT INTO pdp.name_hint VALUES
    ('email', '(^|_)(e_?mail|email_?address|mail|почта|пошта|электрон)'),
    ('phone', '(phone|^tel|_tel|mobile|msisdn|телефон|ұялы)'),
    ('iin', '(^|_)(iin|иин|жсн|ssn|national_id)($|_)'),
    ('name', '(^fio$|фио|full_?name|first_?name|last_?name|surname|^name$|имя|фамилия|отчество|^аты|тегі)'),
    ('address', '(address|^addr|адрес|мекенжай)'),
    ('ip', '(^|_)(ip|ip_?addr)($|_)'),
    ('card', '(card_?(no|num)|^pan$|карт)'),
    ('birth_date', '(birth|^dob$|рожден|туған)'),
    ('passport', '(passport|паспорт|удостоверен|куәлік)');

-- A sample of a column's values, classified: how many were sampled, the
-- commonest category and how many had it.  The sample is read as the
-- table's owner, whoever asks (the table's code never runs with a
-- superuser's or a DPO's rights); the caller must be allowed to read the table.
CREATE FUNCTION pdp._sample_column(tbl regclass, col name, pct float8, sample_rows integer,
                                   OUT n_sampled bigint, OUT top_k text, OUT top_n bigint)
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp._sample_column(regclass, name, float8, integer) IS
    'samples and classifies a column''s values as the table''s owner, for a caller who may read the table';

CREATE FUNCTION pdp._api__sample_column(tbl regclass, col name, pct float8, sample_rows integer,
                                        OUT n_sampled bigint, OUT top_k text, OUT top_n bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR col IS NULL OR pct IS NULL OR sample_rows IS NULL OR pct <= 0 OR pct > 100 OR sample_rows < 1 THEN
        RAISE EXCEPTION 'table, column, a percentage in (0, 100] and a positive sample size must be given'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_catalog.has_table_privilege(pdp._caller(), tbl, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', pdp._relname(tbl) USING ERRCODE = 'insufficient_privilege';
    END IF;
    WITH s AS (SELECT pdp._classify_value(x.v) AS k
                 FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                          'SELECT x.%1$I::text FROM %2$s x TABLESAMPLE SYSTEM (%3$s) WHERE x.%1$I IS NOT NULL LIMIT %4$s',
                          col, tbl, pct, sample_rows)) AS x(v text))
    SELECT (SELECT pg_catalog.count(*) FROM s), top.k, top.n INTO n_sampled, top_k, top_n
      FROM (SELECT 1) one LEFT JOIN
           (SELECT s.k, pg_catalog.count(*) AS n FROM s WHERE s.k IS NOT NULL GROUP BY s.k ORDER BY 2 DESC LIMIT 1) top ON true;
END
$$;
COMMENT ON FUNCTION pdp._api__sample_column(regclass, name, float8, integer) IS
    'pdp._sample_column''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE FUNCTION pdp.discover(schema_name name DEFAULT 'public', sample_rows integer DEFAULT 1000)
RETURNS TABLE (table_name regclass, column_name name, category text, confidence real, evidence text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    a record;
    pct float8;
    n_sampled bigint;
    top_k text;
    top_n bigint;
    by_name text;
BEGIN
    IF schema_name IS NULL OR sample_rows IS NULL OR sample_rows < 1 OR sample_rows > 1000000 THEN
        RAISE EXCEPTION 'schema_name must be given and sample_rows between 1 and 1000000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) schema_name) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema_name USING ERRCODE = 'invalid_schema_name';
    END IF;
    FOR t IN SELECT c.oid::regclass AS rel, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
              WHERE n.nspname OPERATOR(pg_catalog.=) schema_name AND c.relkind IN ('r', 'p')
                AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                AND pg_catalog.has_table_privilege(c.oid, 'SELECT') ORDER BY c.relname LOOP
        -- A sample, never the whole table: a share of its pages, at most sample_rows rows.
        pct := CASE WHEN t.reltuples <= 0 OR t.reltuples < sample_rows * 10 THEN 100
                    ELSE LEAST(100, GREATEST(0.01, sample_rows * 300.0 / t.reltuples)) END;
        FOR a IN SELECT att.attname, att.attnum, att.atttypid::regtype AS typ FROM pg_attribute att
                  WHERE att.attrelid OPERATOR(pg_catalog.=) t.rel::oid AND att.attnum > 0 AND NOT att.attisdropped
                    AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) t.rel
                                      AND r.attnum OPERATOR(pg_catalog.=) att.attnum)
                    AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) t.rel
                                      AND s.attnum OPERATOR(pg_catalog.=) att.attnum)
                  ORDER BY att.attnum LOOP
            table_name := t.rel;
            column_name := a.attname;
            SELECT h.category INTO by_name FROM pdp.name_hint h WHERE a.attname ~* h.pattern ORDER BY h.category LIMIT 1;
            top_k := NULL;
            top_n := 0;
            n_sampled := 0;
            IF a.typ IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype, 'bigint'::regtype,
                         'numeric'::regtype, 'inet'::regtype) THEN
                SELECT x.n_sampled, x.top_k, x.top_n INTO n_sampled, top_k, top_n
                  FROM pdp._sample_column(t.rel, a.attname, pct, sample_rows) x;
            END IF;
            IF top_k IS NOT NULL AND top_n::float8 / GREATEST(n_sampled, 1) >= 0.8 THEN
                category := top_k;
                confidence := LEAST(1.0, top_n::float8 / n_sampled + CASE WHEN by_name = top_k THEN 0.1 ELSE 0 END);
                evidence := pg_catalog.format('%s of %s sampled values pass the %s check%s', top_n, n_sampled,
                                              CASE top_k WHEN 'iin' THEN 'IIN check-digit' WHEN 'bin' THEN 'BIN check-digit'
                                                         WHEN 'card' THEN 'Luhn card-number' WHEN 'email' THEN 'e-mail syntax'
                                                         WHEN 'phone' THEN 'Kazakh phone-number' ELSE 'IP address' END,
                                              CASE WHEN by_name IS NOT NULL THEN '; the column''s name suggests ' || by_name ELSE '' END);
                RETURN NEXT;
            ELSIF by_name IS NOT NULL THEN
                category := by_name;
                confidence := 0.5;
                evidence := pg_catalog.format('the column''s name suggests %s (%s sampled values did not confirm it)', by_name, n_sampled);
                RETURN NEXT;
            ELSIF EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) t.rel) THEN
                category := 'unclassified';
                confidence := 0;
                evidence := 'a column of a registered table with no rule or category';
                RETURN NEXT;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp.discover(name, integer) IS
    'finds personal data nobody classified yet, from column names and sampled values checked by validators; never prints a value';

-- Report ---------------------------------------------------------------------

CREATE FUNCTION pdp._html(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
             coalesce(s, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;') $$;
COMMENT ON FUNCTION pdp._html(text) IS 'escapes text for HTML';

-- Names in the Markdown report (tables, columns, purposes, evidence) are
-- chosen by whoever made them: inline HTML is turned into entities, Markdown's
-- punctuation is escaped with a backslash and line breaks become spaces, so a
-- name renders as the text it is and cannot add markup, links or table cells.
CREATE FUNCTION pdp._md(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.regexp_replace(
             pg_catalog.translate(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                 s, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), E'\r\n', '  '),
             '([\\`*_{}\[\]()#!|~])', '\\\1', 'g') $$;
COMMENT ON FUNCTION pdp._md(text) IS 'escapes text for Markdown: inline HTML as entities, punctuation with a backslash, line breaks as spaces';

-- How many rows of a table retained from an anchor column expire within 30
-- days, and how many have expired: counted as the table's owner, for
-- whoever reads the report.
CREATE FUNCTION pdp._expiry_counts(tbl regclass, OUT soon bigint, OUT overdue bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
BEGIN
    SELECT * INTO p FROM pdp.retention_policy r WHERE r.tbl OPERATOR(pg_catalog.=) _expiry_counts.tbl AND r.anchor_column IS NOT NULL;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT x.soon, x.overdue INTO soon, overdue
      FROM pdp._exec_as_owner(tbl, pg_catalog.format(
               'SELECT pg_catalog.count(*) FILTER (WHERE e >= pg_catalog.now() AND e < pg_catalog.now() + interval ''30 days''), '
               'pg_catalog.count(*) FILTER (WHERE e < pg_catalog.now()) FROM (SELECT pdp._expiry(t.%I, %L::interval) e FROM %s t) x',
               p.anchor_column, p.period::text, tbl)) AS x(soon bigint, overdue bigint);
END
$$;
COMMENT ON FUNCTION pdp._expiry_counts(regclass) IS
    'rows of an anchor-retained table expiring within 30 days and already expired, counted as the table''s owner';

-- The report's facts from pdp's own tables that not every reader of the
-- report may select (consents, restrictions, the registry): counts only,
-- no subject, read as the extension's owner.  Whatever lives in users'
-- tables is read by pdp._report_json with the caller's rights.
CREATE FUNCTION pdp._report_counts() RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT pg_catalog.jsonb_build_object(
    'schemas', coalesce((SELECT pg_catalog.jsonb_agg(DISTINCT n.nspname ORDER BY n.nspname)
                           FROM pdp.subject_column s JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.tbl::oid
                           JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace), '[]'),
    'consents', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'purpose', pu.purpose, 'legal_basis', pu.legal_basis, 'requires_consent', pu.requires_consent,
                    'active', (SELECT pg_catalog.count(*) FROM pdp.consent_state s WHERE s.purpose OPERATOR(pg_catalog.=) pu.purpose
                                 AND (s.valid_until IS NULL OR s.valid_until OPERATOR(pg_catalog.>) pg_catalog.now())),
                    'withdrawn_last_30_days', (SELECT pg_catalog.count(*) FROM pdp.consent_event e
                                 WHERE e.purpose OPERATOR(pg_catalog.=) pu.purpose AND e.action OPERATOR(pg_catalog.=) 'withdraw'
                                   AND e.at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '30 days'))) ORDER BY pu.purpose)
                    FROM pdp.purpose pu), '[]'),
    'restricted_subjects', (SELECT pg_catalog.count(*) FROM pdp.restriction)) $$;
COMMENT ON FUNCTION pdp._report_counts() IS
    'the compliance report''s counts from pdp''s own tables (consents, restrictions, registered schemas), for every role that reads the report';

CREATE FUNCTION pdp._report_json() RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    findings jsonb := '[]';
    sch name;
    retention jsonb := '[]';
    p record;
    soon bigint;
    overdue bigint;
    counts jsonb := pdp._report_counts();
BEGIN
    FOR sch IN SELECT x FROM pg_catalog.jsonb_array_elements_text(counts->'schemas') x LOOP
        findings := findings || coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                        'table', d.table_name::text, 'column', d.column_name, 'category', d.category,
                        'confidence', pg_catalog.round(d.confidence::numeric, 2), 'evidence', d.evidence))
                      FROM pdp.discover(sch, 200) d WHERE d.category <> 'unclassified'), '[]');
    END LOOP;
    FOR p IN SELECT * FROM pdp.retention_policy ORDER BY tbl::text LOOP
        soon := NULL;
        overdue := NULL;
        IF p.anchor_column IS NOT NULL THEN
            SELECT c.soon, c.overdue INTO soon, overdue FROM pdp._expiry_counts(p.tbl) c;
        ELSE
            SELECT pg_catalog.count(*) FILTER (WHERE g.expires_at >= pg_catalog.now() AND g.expires_at < pg_catalog.now() + interval '30 days'),
                   pg_catalog.count(*) FILTER (WHERE g.expires_at < pg_catalog.now())
              INTO soon, overdue FROM pdp.retention_tag g WHERE g.tbl OPERATOR(pg_catalog.=) p.tbl::oid;
        END IF;
        retention := retention || pg_catalog.jsonb_build_object('table', p.tbl::text, 'period', p.period::text,
                        'action', p.action, 'expiring_in_30_days', soon, 'expired_not_purged', overdue);
    END LOOP;
    r := pg_catalog.jsonb_build_object(
        'title', 'pdp_ext compliance report',
        'database', pg_catalog.current_database(),
        'generated_at', pg_catalog.now(),
        'register', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x) ORDER BY x.table_name::text, x.column_name)
                                FROM pdp.processing_register x), '[]'),
        'unclassified_findings', findings,
        'consents', counts->'consents',
        'retention', retention,
        'last_purge', (SELECT pg_catalog.jsonb_build_object('started_at', l.started_at, 'status', l.status, 'rows', l.total_rows)
                         FROM pdp.purge_run l WHERE NOT l.dry_run ORDER BY l.id DESC LIMIT 1),
        'holds_in_force', (SELECT pg_catalog.count(*) FROM pdp.holds h WHERE h.in_force),
        'restricted_subjects', counts->'restricted_subjects',
        'overdue_requests', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', o.id, 'kind', o.kind,
                                'jurisdiction', o.jurisdiction, 'due_at', o.due_at) ORDER BY o.due_at) FROM pdp.overdue_requests o), '[]'),
        'pending_notices', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('recipient', x.recipient, 'count', x.n) ORDER BY x.recipient)
                                       FROM (SELECT n.recipient, pg_catalog.count(*) AS n FROM pdp.pending_notices n GROUP BY 1) x), '[]'),
        'recipients', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(rc) - 'defined_by' ORDER BY rc.name) FROM pdp.recipients rc), '[]'),
        'audit', (SELECT pg_catalog.to_jsonb(v) FROM pdp.verify_audit_log() v));
    RETURN r;
END
$$;
COMMENT ON FUNCTION pdp._report_json() IS 'the compliance report''s facts as JSON';

CREATE FUNCTION pdp.report(format text DEFAULT 'html') RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j jsonb;
    out text;
    x jsonb;
    maxv numeric;
    y integer;
    bars text;
BEGIN
    IF format IS NULL OR format NOT IN ('html', 'markdown', 'json') THEN
        RAISE EXCEPTION 'unknown report format' USING ERRCODE = 'invalid_parameter_value', HINT = 'Use html, markdown or json.';
    END IF;
    j := pdp._report_json();
    PERFORM pdp._audit('report', format);
    IF format = 'json' THEN
        RETURN pg_catalog.jsonb_pretty(j);
    END IF;

    IF format = 'markdown' THEN
        out := '# ' || pdp._md(j->>'title') || E'\n\nDatabase `' || pdp._md(j->>'database') || '`, ' || pdp._md(j->>'generated_at') || E'.\n\n';
        out := out || E'## Audit trail\n\n' || CASE WHEN (j->'audit'->>'ok')::boolean
                 THEN 'The hash chain verifies: ' || pdp._md(j->'audit'->>'entries') || E' entries.\n\n'
                 ELSE '**The hash chain is broken** at entry ' || pdp._md(j->'audit'->>'first_bad_id') || E'.\n\n' END;
        out := out || E'## Record of processing\n\n| table | column | category | rule | purposes | retention | recipients | protection |\n|---|---|---|---|---|---|---|---|\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'register') LOOP
            out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s | %s | %s | %s |\n', pdp._md(x->>'table_name'), coalesce(pdp._md(x->>'column_name'), '—'),
                       coalesce(pdp._md(x->>'category'), '—'), coalesce(pdp._md(x->>'rule'), '—'), coalesce(pdp._md(x->>'purposes'), '—'),
                       coalesce(pdp._md(x->>'retention'), '—'), coalesce(pdp._md(x->>'recipients'), '—'), pdp._md(x->>'protection'));
        END LOOP;
        out := out || E'\n## Personal data not yet classified\n\n';
        IF pg_catalog.jsonb_array_length(j->'unclassified_findings') = 0 THEN
            out := out || E'None found.\n';
        ELSE
            out := out || E'| table | column | category | confidence | evidence |\n|---|---|---|---|---|\n';
            FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'unclassified_findings') LOOP
                out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s |\n', pdp._md(x->>'table'), pdp._md(x->>'column'), pdp._md(x->>'category'),
                                                pdp._md(x->>'confidence'), pdp._md(x->>'evidence'));
            END LOOP;
        END IF;
        out := out || E'\n## Consents\n\n| purpose | legal basis | active consents | withdrawn in the last 30 days |\n|---|---|---:|---:|\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'consents') LOOP
            out := out || pg_catalog.format(E'| %s | %s | %s | %s |\n', pdp._md(x->>'purpose'), pdp._md(x->>'legal_basis'), pdp._md(x->>'active'), pdp._md(x->>'withdrawn_last_30_days'));
        END LOOP;
        out := out || E'\n## Retention\n\n| table | period | action | expiring in 30 days | expired, not purged |\n|---|---|---|---:|---:|\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'retention') LOOP
            out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s |\n', pdp._md(x->>'table'), pdp._md(x->>'period'), pdp._md(x->>'action'),
                                            pdp._md(coalesce(x->>'expiring_in_30_days', 'not readable')),
                                            pdp._md(coalesce(x->>'expired_not_purged', 'not readable')));
        END LOOP;
        out := out || E'\nLast purge: ' || coalesce(pdp._md(j->'last_purge'->>'started_at') || ', ' || pdp._md(j->'last_purge'->>'status') || ', '
                                                    || pdp._md(j->'last_purge'->>'rows') || ' rows', 'none') || E'.\n';
        out := out || E'\n## Open matters\n\n'
                   || '- Holds in force: ' || pdp._md(j->>'holds_in_force') || E'\n'
                   || '- Restricted subjects: ' || pdp._md(j->>'restricted_subjects') || E'\n'
                   || '- Overdue requests: ' || pg_catalog.jsonb_array_length(j->'overdue_requests') || E'\n'
                   || '- Pending rectification notices: ' || coalesce((SELECT pg_catalog.sum((e->>'count')::int)
                          FROM pg_catalog.jsonb_array_elements(j->'pending_notices') e), 0) || E'\n';
        RETURN out;
    END IF;

    -- HTML: one page, no external assets, readable printed; counts as bars.
    out := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>' || pdp._html(j->>'title') || '</title><style>'
        || 'body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}h1{margin-bottom:0}'
        || 'table{border-collapse:collapse;margin:1em 0;width:100%}th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}'
        || 'th{background:#eef}.ok{color:#060}.bad{color:#b00;font-weight:bold}.num{text-align:right}'
        || '@media print{body{margin:0}th{background:none}section{break-inside:avoid}}</style></head><body>'
        || '<h1>' || pdp._html(j->>'title') || '</h1><p>Database <code>' || pdp._html(j->>'database') || '</code>, '
        || pdp._html(j->>'generated_at') || '.</p>';
    out := out || '<section id="audit"><h2>Audit trail</h2>' || CASE WHEN (j->'audit'->>'ok')::boolean
               THEN '<p class="ok">The hash chain verifies: ' || (j->'audit'->>'entries') || ' entries.</p>'
               ELSE '<p class="bad">The hash chain is broken at entry ' || pdp._html(j->'audit'->>'first_bad_id') || '.</p>' END || '</section>';
    out := out || '<section id="register"><h2>Record of processing</h2><table><tr><th>Table</th><th>Column</th><th>Category</th><th>Rule</th>'
               || '<th>Purposes</th><th>Retention</th><th>Recipients</th><th>Protection</th></tr>';
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'register') LOOP
        out := out || '<tr><td>' || pdp._html(x->>'table_name') || '</td><td>' || pdp._html(coalesce(x->>'column_name', '—'))
                   || '</td><td>' || pdp._html(coalesce(x->>'category', '—')) || '</td><td>' || pdp._html(coalesce(x->>'rule', '—'))
                   || '</td><td>' || pdp._html(coalesce(x->>'purposes', '—')) || '</td><td>' || pdp._html(coalesce(x->>'retention', '—'))
                   || '</td><td>' || pdp._html(coalesce(x->>'recipients', '—')) || '</td><td>' || pdp._html(x->>'protection') || '</td></tr>';
    END LOOP;
    out := out || '</table></section><section id="findings"><h2>Personal data not yet classified</h2>';
    IF pg_catalog.jsonb_array_length(j->'unclassified_findings') = 0 THEN
        out := out || '<p class="ok">None found.</p>';
    ELSE
        out := out || '<table><tr><th>Table</th><th>Column</th><th>Category</th><th>Confidence</th><th>Evidence</th></tr>';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'unclassified_findings') LOOP
            out := out || '<tr><td>' || pdp._html(x->>'table') || '</td><td>' || pdp._html(x->>'column') || '</td><td>'
                       || pdp._html(x->>'category') || '</td><td class="num">' || pdp._html(x->>'confidence') || '</td><td>'
                       || pdp._html(x->>'evidence') || '</td></tr>';
        END LOOP;
        out := out || '</table>';
    END IF;
    -- Consents as horizontal bars (active, and withdrawn in the last 30 days).
    SELECT GREATEST(1, pg_catalog.max((e->>'active')::numeric)) INTO maxv FROM pg_catalog.jsonb_array_elements(j->'consents') e;
    bars := '';
    y := 0;
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'consents') LOOP
        bars := bars || pg_catalog.format('<text x="0" y="%s" font-size="12">%s</text><rect x="160" y="%s" width="%s" height="14" fill="#4a7"/>'
                                          '<text x="%s" y="%s" font-size="12">%s active, %s withdrawn (30 days)</text>',
                    y + 12, pdp._html(x->>'purpose'), y + 1, pg_catalog.round(300 * (x->>'active')::numeric / maxv) + 1,
                    pg_catalog.round(300 * (x->>'active')::numeric / maxv) + 166, y + 12, x->>'active', x->>'withdrawn_last_30_days');
        y := y + 20;
    END LOOP;
    out := out || '</section><section id="consents"><h2>Consents</h2>'
               || pg_catalog.format('<svg xmlns="http://www.w3.org/2000/svg" width="700" height="%s" role="img" aria-label="Consents per purpose">', y + 4)
               || bars || '</svg></section>';
    out := out || '<section id="retention"><h2>Retention</h2><table><tr><th>Table</th><th>Period</th><th>Action</th>'
               || '<th>Expiring in 30 days</th><th>Expired, not purged</th></tr>';
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'retention') LOOP
        out := out || '<tr><td>' || pdp._html(x->>'table') || '</td><td>' || pdp._html(x->>'period') || '</td><td>' || pdp._html(x->>'action')
                   || '</td><td class="num">' || coalesce(x->>'expiring_in_30_days', 'not readable') || '</td><td class="num">'
                   || coalesce(x->>'expired_not_purged', 'not readable') || '</td></tr>';
    END LOOP;
    out := out || '</table><p>Last purge: ' || pdp._html(coalesce((j->'last_purge'->>'started_at') || ', ' || (j->'last_purge'->>'status')
                                                        || ', ' || (j->'last_purge'->>'rows') || ' rows', 'none')) || '.</p></section>';
    out := out || '<section id="open"><h2>Open matters</h2><ul>'
               || '<li>Holds in force: ' || (j->>'holds_in_force') || '</li>'
               || '<li>Restricted subjects: ' || (j->>'restricted_subjects') || '</li>'
               || '<li>Overdue requests: ' || pg_catalog.jsonb_array_length(j->'overdue_requests') || '</li>'
               || '<li>Pending rectification notices: ' || coalesce((SELECT pg_catalog.sum((e->>'count')::int)
                      FROM pg_catalog.jsonb_array_elements(j->'pending_notices') e), 0) || '</li></ul></section></body></html>';
    RETURN out;
END
$$;
COMMENT ON FUNCTION pdp.report(text) IS
    'the compliance report: register, unclassified findings, consents, retention, holds, requests, notices, audit chain (html, markdown or json)';

-- ===== src/sql/99_privileges.sql =====
-- The privilege model in one place.  Everything is revoked from PUBLIC and
-- granted back only where an application role needs it.

REVOKE ALL ON ALL TABLES IN SCHEMA pdp FROM PUBLIC;
REVOKE ALL ON ALL ROUTINES IN SCHEMA pdp FROM PUBLIC;  -- functions and procedures
REVOKE ALL ON ALL SEQUENCES IN SCHEMA pdp FROM PUBLIC;

-- Helpers anyone may call (pure functions of their arguments).
GRANT EXECUTE ON FUNCTION pdp.is_subject_type(regtype) TO PUBLIC;

-- pdp_admin configures.  Registry functions run as the caller, so table
-- ownership is checked by the registry's trigger on every write.
GRANT SELECT, INSERT, UPDATE, DELETE ON pdp.subject_column TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.register_table(regclass, name, text) TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.unregister_table(regclass, name) TO pdp_admin;
GRANT SELECT ON pdp.registered_tables TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.key_status() TO pdp_admin, pdp_auditor;

-- Issue 14, classes 4 and 5 (internals, keyed functions) ------------------
-- Keyed functions compute deterministic tokens: whoever may call them can
-- reverse a token by computing the tokens of guessed inputs (every IIN of a
-- birth date, a list of e-mail addresses).  They are for pdp_pseudonymiser,
-- the application's pseudonymising role, not PUBLIC.  The on-write trigger
-- calls them without an EXECUTE check (it runs for every writer of a table
-- its owner configured); a masked view's readers need pdp_pseudonymiser for
-- its keyed columns, as PostgreSQL checks functions in a view against the
-- querying role.  Masks, generalisation and validators hold no key: PUBLIC.
GRANT EXECUTE ON FUNCTION
    pdp.pseudonym(text, text), pdp.pseudonym(bigint, text), pdp.pseudonym(uuid, text),
    pdp.pseudo_email(text, boolean), pdp.pseudo_phone(text), pdp.pseudo_iin(text, boolean),
    pdp.pseudo_name(text), pdp.pseudo_ip(inet),
    pdp.encrypt(text, text), pdp.fpe_encrypt(text, text, integer, integer), pdp.fpe_iin(text, integer)
TO pdp_pseudonymiser;
GRANT EXECUTE ON FUNCTION
    pdp.mask(text, integer, integer, text), pdp.mask_email(text), pdp.mask_phone(text), pdp.mask_card(text),
    pdp.generalize_date(date, text), pdp.age_band(text, integer),
    pdp.iin_is_valid(text), pdp.bin_is_valid(text), pdp.iin_birth_date(text), pdp.iin_sex(text),
    pdp.luhn_is_valid(text)
TO PUBLIC;
-- Internal helpers: pdp._subject_pseudonym is granted to no role (its
-- callers are SECURITY DEFINER).  pdp._audit is granted below to the roles
-- whose functions run as their caller and write audit entries, and refuses
-- every call that does not come from another pdp function (src/pdp_ext.c,
-- pdp_require_pdp_caller), so no role can write an entry of its own.
-- ---------------------------------------------------------------------------
GRANT EXECUTE ON FUNCTION
    pdp.decrypt(text), pdp.fpe_decrypt(text, text, integer, integer), pdp.fpe_iin_decrypt(text, integer)
TO pdp_reidentifier;

-- Column rules: configured by pdp_admin members on tables they own.
GRANT SELECT ON pdp.rule_kind, pdp.column_rules TO pdp_admin, pdp_auditor;
GRANT SELECT, INSERT, UPDATE, DELETE ON pdp.column_rule, pdp.apply_run TO pdp_admin;
GRANT SELECT ON pdp.apply_run TO pdp_auditor;
GRANT EXECUTE ON FUNCTION
    pdp.set_column_rule(regclass, name, text, text), pdp.drop_column_rule(regclass, name),
    pdp.pseudonymise_on_write(regclass, boolean), pdp.create_masked_view(regclass, text),
    pdp._rule_misfit(text, oid, integer, boolean), pdp._relname(regclass), pdp._require_owner(regclass),
    pdp._on_write_enabled(regclass), pdp._sync_on_write_trigger(regclass, boolean),
    pdp._pseudonymise_on_write()
TO pdp_admin;
GRANT EXECUTE ON PROCEDURE pdp.apply_rules(regclass, integer, boolean) TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._on_write_enabled(regclass) TO pdp_auditor;

-- Purposes and consent.  Recording consent and restrictions is pdp_admin's
-- by default: grant these functions to the application role that records
-- them (see doc/consent.md).  The row test is everyone's, because every
-- protected query calls it.
GRANT SELECT ON pdp.purpose, pdp.purpose_grant, pdp.purposes, pdp.policy_version, pdp.policies,
                pdp.protected_tables, pdp.protection TO pdp_admin, pdp_auditor;
GRANT SELECT ON pdp.consent_event, pdp.consent_state, pdp.restriction, pdp.restriction_event TO pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp._visible(bigint), pdp._visible(text), pdp._visible(uuid), pdp._unprotected(regclass) TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    pdp.define_purpose(text, text, text, boolean, boolean),
    pdp.allow_purpose(regrole, text), pdp.disallow_purpose(regrole, text),
    pdp.publish_policy(text, timestamptz, text),
    pdp.protect_table(regclass, boolean), pdp.unprotect_table(regclass), pdp._unprotect(regclass),
    pdp._require_purpose(text), pdp._sync_protection(regclass), pdp._install_protection(regclass, boolean),
    pdp._visibility_sql(regclass), pdp._refuse_restricted()
TO pdp_admin;
GRANT EXECUTE ON FUNCTION
    pdp.grant_consent(text, text, text, jsonb, timestamptz), pdp.grant_consent(bigint, text, text, jsonb, timestamptz),
    pdp.grant_consent(uuid, text, text, jsonb, timestamptz),
    pdp.withdraw_consent(text, text), pdp.withdraw_consent(bigint, text), pdp.withdraw_consent(uuid, text),
    pdp.restrict_subject(text, text), pdp.restrict_subject(bigint, text), pdp.restrict_subject(uuid, text),
    pdp.lift_restriction(text), pdp.lift_restriction(bigint), pdp.lift_restriction(uuid),
    pdp.import_consents(pdp.consent_import[]), pdp.import_consents_from(regclass), pdp._import_consents(pdp.consent_import[]),
    pdp.withdraw_consents(text[], text)
TO pdp_admin;
GRANT EXECUTE ON FUNCTION
    pdp.has_consent(text, text, timestamptz), pdp.has_consent(bigint, text, timestamptz),
    pdp.has_consent(uuid, text, timestamptz),
    pdp.consent_history(text), pdp.consent_history(bigint), pdp.consent_history(uuid),
    pdp.subjects_needing_reconsent(text)
TO pdp_admin, pdp_auditor;

-- Audit trail: read by pdp_auditor; written only through pdp._audit, which
-- the functions that run as their caller need.
GRANT SELECT ON pdp.audit_log, pdp.audit_seal, pdp.audit_chain TO pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.verify_audit_log(), pdp.seal_audit_log(boolean, integer) TO pdp_auditor, pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.trim_audit_log(interval) TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._audit(text, text, text, jsonb) TO pdp_admin, pdp_reidentifier;

-- Retention: configured and run by pdp_admin members (purges run as their
-- caller, who must be allowed to delete from the tables: the owner, or the
-- role pg_cron runs the job as).
GRANT SELECT ON pdp.retention_policies, pdp.retention_policy, pdp.subject_retention, pdp.holds, pdp.hold,
                pdp.purge_log, pdp.purge_progress, pdp.purge_summary, pdp.purge_run TO pdp_admin, pdp_auditor;
GRANT SELECT, INSERT, UPDATE, DELETE ON pdp.retention_policy, pdp.subject_retention, pdp.retention_tag,
                pdp.anonymised_row TO pdp_admin;
GRANT EXECUTE ON FUNCTION
    pdp.set_retention(regclass, interval, name, text), pdp.drop_retention(regclass),
    pdp.set_subject_retention(interval, regclass, name), pdp.drop_subject_retention(),
    pdp.place_hold(text, text, timestamptz), pdp.place_hold(bigint, text, timestamptz), pdp.place_hold(uuid, text, timestamptz),
    pdp.place_table_hold(regclass, text, timestamptz), pdp.release_hold(bigint),
    pdp.purge_expired(integer, boolean), pdp.schedule_purge(text), pdp.unschedule_purge(),
    pdp._expiry_expr(name, interval), pdp._single_key(regclass), pdp._drop_retention_objects(regclass),
    pdp._subject_held(text), pdp._deletion_order(), pdp._expired_rows_sql(regclass, text, boolean),
    pdp._purge_action(regclass), pdp._purge_rows(regclass, text, tid[]), pdp._collect_inactive_subjects(),
    pdp._begin_purge_run(boolean), pdp._record_purge_batch(bigint, regclass, text, bigint, jsonb),
    pdp._end_purge_run(bigint, text), pdp._require_pg_cron(), pdp._retention_tag()
TO pdp_admin;
GRANT EXECUTE ON PROCEDURE pdp.purge(integer, interval) TO pdp_admin;
-- Citus checks, called by the functions above that run as their caller.
GRANT EXECUTE ON FUNCTION pdp._citus_table_kind(regclass), pdp._refuse_on_citus(regclass, text),
                          pdp._citus_skip_purge(regclass, bigint) TO pdp_admin;
-- Every interval pdp_ext accepts is judged by one check (src/sql/05_checks.sql),
-- which functions running as their caller (pdp_admin members) call.
REVOKE ALL ON FUNCTION pdp._check_interval(interval, text, interval), pdp._check_period() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._check_interval(interval, text, interval), pdp._check_period() TO pdp_admin;
-- The expiry functions key indexes on application tables: anyone may evaluate them.
GRANT EXECUTE ON FUNCTION pdp._expiry(timestamptz, interval), pdp._expiry(timestamp, interval),
                          pdp._expiry(date, interval), pdp._expiry(bigint, interval) TO PUBLIC;

-- Subject rights: pdp_admin answers requests; pdp_auditor reads the registers.
GRANT SELECT ON pdp.country, pdp.recipient, pdp.recipients, pdp.disclosure, pdp.pending_notices,
                pdp.rectification_notice, pdp.request_deadline, pdp.subject_request, pdp.overdue_requests, pdp.erasure
TO pdp_admin, pdp_auditor;
GRANT INSERT, UPDATE, DELETE ON pdp.request_deadline TO pdp_admin;
-- Its triggers (run as the editing pdp_admin member) and pg_dump's filter read the shipped deadlines.
GRANT EXECUTE ON FUNCTION pdp._request_deadline_defaults(),
                          pdp._request_deadline_is_default(text, text, interval, integer, text) TO pdp_admin;
GRANT EXECUTE ON FUNCTION
    pdp.define_recipient(text, text, text, text),
    pdp.record_disclosure(text, text, text, text[]), pdp.record_disclosure(bigint, text, text, text[]),
    pdp.record_disclosure(uuid, text, text, text[]),
    pdp.acknowledge_notice(bigint),
    pdp.open_request(text, text, text, timestamptz), pdp.open_request(bigint, text, text, timestamptz),
    pdp.open_request(uuid, text, text, timestamptz), pdp.complete_request(bigint, text),
    pdp.export_subject(text), pdp.export_subject(bigint), pdp.export_subject(uuid),
    pdp.erase_subject(text, text), pdp.erase_subject(bigint, text), pdp.erase_subject(uuid, text),
    pdp._add_working_days(timestamptz, integer), pdp._subject_match(regclass, text),
    pdp._sync_rectification_trigger(regclass), pdp._rectification()
TO pdp_admin;

-- Register, discovery, report: for the DPO (pdp_auditor) and pdp_admin.
GRANT SELECT ON pdp.processing_register, pdp.special_category, pdp.name_hint, pdp.retention_tag TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.discover(name, integer), pdp.report(text), pdp._report_json(), pdp._html(text), pdp._md(text),
                          pdp._classify_value(text) TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp._audit(text, text, text, jsonb), pdp._on_write_enabled(regclass) TO pdp_auditor;

-- Escalation (issue 14, classes 1 and 2).  Statements on user tables run as
-- the table's owner through pdp._exec_as_owner, which refuses a caller that
-- does not own the table, so it is safe to grant.  pdp's state changes only
-- through pdp's functions (their implementations run as pdp_ext's owner and
-- check the caller): no role writes pdp's tables directly.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON pdp.subject_column, pdp.column_rule, pdp.apply_run, pdp.retention_policy,
       pdp.subject_retention, pdp.retention_tag, pdp.anonymised_row FROM pdp_admin;
REVOKE ALL ON FUNCTION pdp._purge_rows(regclass, text, tid[]) FROM pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._exec_as_owner(regclass, text), pdp._exec_as_owner(regclass, text, "any"), pdp._caller()
TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp._apply_progress(regclass, text, name[], text[], bigint),
                          pdp._find_expired(regclass, text, boolean, integer, timestamptz),
                          pdp._purge_batch(regclass, text, integer, timestamptz, boolean)
TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._expiry_counts(regclass), pdp._sample_column(regclass, name, float8, integer) TO pdp_admin, pdp_auditor;

-- Issue 14, class 7 (canonical subjects) ------------------------------------
-- The canonicaliser reads only which types the registered subject columns
-- have; the roles that enter subjects may ask it what a subject becomes.
GRANT EXECUTE ON FUNCTION pdp._canonical_subject(text) TO pdp_admin, pdp_auditor;
-- pdp._canonical_subject_or_null: for pdp._import_consents (SECURITY DEFINER) only.
-- ---------------------------------------------------------------------------

-- Issue 14, class 13 (roles that cannot do their job) -----------------------
-- PostgreSQL clones a partitioned table's row triggers onto every partition
-- created or attached, and checks EXECUTE on their functions for whoever
-- runs that DDL: a table owner outside pdp_admin must be able to extend a
-- protected table.  pdp._refuse_restricted only ever refuses updates and
-- deletes of restricted learners' rows, so it is safe for any table.
GRANT EXECUTE ON FUNCTION pdp._refuse_restricted() TO PUBLIC;
-- The report's counts from pdp's tables, for both roles that read the report.
GRANT EXECUTE ON FUNCTION pdp._report_counts() TO pdp_admin, pdp_auditor;
-- ---------------------------------------------------------------------------
