-- Issue 16, points 3 and 9 (purge): anchors with "never" values and a
-- fallback for inactivity, system subjects, the safety valve
-- (pdp.purge_max_share) and checked scheduling with pg_cron's failed runs in
-- pdp.purge_log and the report.  See doc/retention.md.

-- Inactivity anchors: "never" values and a fallback column.
ALTER TABLE pdp.subject_retention ADD COLUMN never_values text[] NOT NULL DEFAULT '{}',
                                  ADD COLUMN fallback_column name;
COMMENT ON COLUMN pdp.subject_retention.never_values IS 'activity (and fallback) values that mean "never", like Moodle''s lastaccess = 0; NULL always does';
COMMENT ON COLUMN pdp.subject_retention.fallback_column IS 'the column of the activity table used where the activity is never (e.g. timecreated); NULL: none';
-- 0.4's default for an epoch-seconds activity column: 0 means never (0.3
-- read it as 1 January 1970 and purged users who had never logged in).
UPDATE pdp.subject_retention r SET never_values = '{0}'
 WHERE (SELECT a.atttypid FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) r.activity_table::oid
           AND a.attname OPERATOR(pg_catalog.=) r.activity_column) IN ('integer'::regtype, 'bigint'::regtype);
DROP FUNCTION pdp.set_subject_retention(interval, regclass, name);
DROP FUNCTION pdp._api_set_subject_retention(interval, regclass, name);
CREATE OR REPLACE FUNCTION pdp.set_subject_retention(period interval, activity_table regclass, activity_column name,
                                          never_values text[] DEFAULT NULL, fallback_column name DEFAULT NULL) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;
COMMENT ON FUNCTION pdp.set_subject_retention(interval, regclass, name, text[], name) IS
    'a subject''s rows in every registered table expire together when their last activity is older than period; '
    'activity values in never_values (and NULL) mean never and fall back to fallback_column';
CREATE OR REPLACE FUNCTION pdp._anchor_type(tbl regclass, col name, what text) RETURNS regtype
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype;
BEGIN
    SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname OPERATOR(pg_catalog.=) col
       AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', col, pdp._relname(tbl)
            USING ERRCODE = 'undefined_column';
    END IF;
    IF typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
        RAISE EXCEPTION '% column "%" has unsupported type %', what, col, typ USING ERRCODE = 'datatype_mismatch',
              HINT = 'It must be timestamptz, timestamp, date, or integer/bigint Unix epoch seconds.';
    END IF;
    RETURN typ;
END
$$;
COMMENT ON FUNCTION pdp._anchor_type(regclass, name, text) IS 'the type of a column usable as a time anchor, or an error';
CREATE OR REPLACE FUNCTION pdp._never_values_for(never_values text[], typ regtype) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text;
    ok text[] := '{}';
BEGIN
    FOREACH v IN ARRAY coalesce(never_values, '{}') LOOP
        BEGIN
            EXECUTE pg_catalog.format('SELECT $1::%s', typ) USING v;
            ok := ok || v;
        EXCEPTION WHEN data_exception THEN
            NULL;
        END;
    END LOOP;
    RETURN ok;
END
$$;
COMMENT ON FUNCTION pdp._never_values_for(text[], regtype) IS 'the "never" values that are values of the given type';
CREATE OR REPLACE FUNCTION pdp._api_set_subject_retention(period interval, activity_table regclass, activity_column name,
                                               never_values text[], fallback_column name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype;
    ftyp regtype;
BEGIN
    PERFORM pdp._require_owner(activity_table);
    PERFORM pdp._check_interval(period, 'retention period must be positive');
    IF NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) activity_table) THEN
        RAISE EXCEPTION 'table "%" is not registered', pdp._relname(activity_table)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF activity_column IS NULL THEN
        RAISE EXCEPTION 'activity column must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    typ := pdp._anchor_type(activity_table, activity_column, 'activity');
    IF fallback_column IS NOT NULL THEN
        IF fallback_column OPERATOR(pg_catalog.=) activity_column THEN
            RAISE EXCEPTION 'the fallback column must differ from the activity column' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        ftyp := pdp._anchor_type(activity_table, fallback_column, 'fallback');
    END IF;
    never_values := pdp._checked_never_values(never_values, typ, ftyp, 'activity');
    INSERT INTO pdp.subject_retention (period, activity_table, activity_column, set_by, never_values, fallback_column)
    VALUES (period, activity_table, activity_column, pg_catalog.pg_get_userbyid(pdp._caller()), never_values, fallback_column)
    ON CONFLICT ON CONSTRAINT subject_retention_pkey DO UPDATE
       SET period = EXCLUDED.period, activity_table = EXCLUDED.activity_table,
           activity_column = EXCLUDED.activity_column, set_at = pg_catalog.now(), set_by = EXCLUDED.set_by,
           never_values = EXCLUDED.never_values, fallback_column = EXCLUDED.fallback_column;
    PERFORM pdp._audit('set_subject_retention', activity_table::text, NULL,
                       pg_catalog.jsonb_build_object('period', period::text, 'activity_column', activity_column,
                                                     'never_values', pg_catalog.cardinality(never_values),
                                                     'fallback_column', fallback_column));
END
$$;
COMMENT ON FUNCTION pdp._api_set_subject_retention(interval, regclass, name, text[], name) IS
    'pdp.set_subject_retention''s implementation, run as pdp_ext''s owner (callable by no role)';

-- Table retention: an epoch-seconds anchor holding 0 is named when it is set.

-- System subjects.
CREATE TABLE pdp.system_subject (
    subject     text        PRIMARY KEY,
    reason      text        NOT NULL,
    declared_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    declared_by name        NOT NULL
);
COMMENT ON TABLE pdp.system_subject IS 'system subjects (guest, administrators, service accounts): never purged';
COMMENT ON COLUMN pdp.system_subject.subject IS 'the subject, in canonical text form';
COMMENT ON COLUMN pdp.system_subject.reason IS 'why the application needs it, e.g. "Moodle guest user"';
COMMENT ON COLUMN pdp.system_subject.declared_at IS 'when it was declared';
COMMENT ON COLUMN pdp.system_subject.declared_by IS 'the role that declared it';
SELECT pg_catalog.pg_extension_config_dump('pdp.system_subject', '');
CREATE OR REPLACE FUNCTION pdp.declare_system_subject(subject text, reason text) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;
COMMENT ON FUNCTION pdp.declare_system_subject(text, text) IS
    'declares a system subject (a guest, an administrator, a service account): a purge never removes its rows';
CREATE OR REPLACE FUNCTION pdp._api_declare_system_subject(subject text, reason text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF subject IS NULL OR reason IS NULL OR pg_catalog.btrim(reason) = '' THEN
        RAISE EXCEPTION 'subject and reason must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    subject := pdp._canonical_subject(subject);  -- one form per subject, as holds and restrictions
    INSERT INTO pdp.system_subject AS y (subject, reason, declared_by)
    VALUES (subject, reason, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT system_subject_pkey DO UPDATE
       SET reason = EXCLUDED.reason, declared_at = pg_catalog.now(), declared_by = EXCLUDED.declared_by;
    PERFORM pdp._audit('declare_system_subject', NULL, subject);
END
$$;
COMMENT ON FUNCTION pdp._api_declare_system_subject(text, text) IS
    'pdp.declare_system_subject''s implementation, run as pdp_ext''s owner (callable by no role)';
CREATE OR REPLACE FUNCTION pdp.drop_system_subject(subject text) RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;
COMMENT ON FUNCTION pdp.drop_system_subject(text) IS 'makes a system subject an ordinary one again; false if it was not one';
CREATE OR REPLACE FUNCTION pdp._api_drop_system_subject(subject text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    subject := pdp._canonical_subject(subject);
    DELETE FROM pdp.system_subject y WHERE y.subject OPERATOR(pg_catalog.=) _api_drop_system_subject.subject;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pdp._audit('drop_system_subject', NULL, subject);
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp._api_drop_system_subject(text) IS
    'pdp.drop_system_subject''s implementation, run as pdp_ext''s owner (callable by no role)';

-- Purges keep system subjects' rows and skip them in inactivity.
CREATE OR REPLACE FUNCTION pdp._find_expired(tbl regclass, reason text, lock boolean, batch_size integer, after timestamptz,
                                  OUT ctids tid[], OUT pos timestamptz, OUT n bigint, OUT tableoids oid[])
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q text;
    v record;
    w record;
BEGIN
    n := 0;
    IF batch_size IS NOT NULL AND batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v := pdp._expired_params(tbl, reason);
    IF NOT v.purgeable THEN
        RETURN;
    END IF;
    -- One statement finds the batch: the expired rows after $2 in position
    -- order, at most $1, locked when asked.
    w := pdp._expired_where_sql(tbl, reason);
    IF w.cond IS NULL THEN
        RETURN;
    END IF;
    q := pg_catalog.format('SELECT t.ctid, t.tableoid, %s AS pos FROM %s t WHERE %s ORDER BY %s LIMIT $1%s',
                           w.pos, tbl, w.cond, w.order_by, CASE WHEN lock THEN ' FOR UPDATE SKIP LOCKED' ELSE '' END);
    IF batch_size IS NULL AND pdp._citus_table_kind(tbl) IS NOT NULL THEN
        -- A Citus table: counted on every shard in parallel (no ctids).
        SELECT x.n INTO n
          FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE %s', tbl, w.cond),
                                  2147483647, '-infinity'::timestamptz, v.held, v.restricted, v.keys, v.anonymised) AS x(n bigint);
        RETURN;
    END IF;
    IF batch_size IS NULL THEN
        SELECT x.n INTO n
          FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.count(*) FROM (%s) x', q),
                                  2147483647, '-infinity'::timestamptz, v.held, v.restricted, v.keys, v.anonymised) AS x(n bigint);
        RETURN;
    END IF;
    SELECT x.c, x.p, x.o INTO ctids, pos, tableoids
      -- Both arrays are built from the same rows in the same order (one
      -- aggregation node feeds each row to both): no sort is needed, the
      -- TID scan of the delete sorts the ctids itself.
      FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.array_agg(x.ctid), %s, '
                                                     'pg_catalog.array_agg(x.tableoid) FROM (%s) x',
                                                     w.pos_max, q),
                              batch_size, coalesce(after, '-infinity'::timestamptz), v.held, v.restricted, v.keys, v.anonymised)
           AS x(c tid[], p timestamptz, o oid[]);
    n := coalesce(pg_catalog.cardinality(ctids), 0);
END
$$;
CREATE OR REPLACE FUNCTION pdp._collect_inactive_subjects() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    subj name;
    n bigint;
    typ regtype;
    ftyp regtype;
    e text;
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
    -- A row's activity time: the activity column, unless it is NULL or a
    -- "never" value ($1); then the fallback column, unless that is NULL or
    -- never too ($2); else none, and a subject with a row of no known time
    -- is not expired.
    typ := pdp._anchor_type(r.activity_table, r.activity_column, 'activity');
    e := pg_catalog.format('CASE WHEN a.%1$I IS NOT NULL AND a.%1$I OPERATOR(pg_catalog.<>) ALL ($1::%2$s[]) '
                           'THEN pdp._expiry(a.%1$I, $3::interval)', r.activity_column, typ);
    IF r.fallback_column IS NOT NULL THEN
        ftyp := pdp._anchor_type(r.activity_table, r.fallback_column, 'fallback');
        e := e || pg_catalog.format(' WHEN a.%1$I IS NOT NULL AND a.%1$I OPERATOR(pg_catalog.<>) ALL ($2::%2$s[]) '
                                    'THEN pdp._expiry(a.%1$I, $3::interval)', r.fallback_column, ftyp);
    END IF;
    e := e || ' END';
    -- The activity table is read as its owner (pdp._exec_as_owner).
    FOR subj IN SELECT s.col FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) r.activity_table LOOP
        INSERT INTO pg_temp.pdp_inactive_subjects
        SELECT x.s FROM pdp._exec_as_owner(r.activity_table, pg_catalog.format(
            'SELECT a.%1$I::text FROM %2$s a WHERE a.%1$I IS NOT NULL GROUP BY a.%1$I '
            'HAVING pg_catalog.bool_and(coalesce((%3$s) OPERATOR(pg_catalog.<) pg_catalog.now(), false))',
            subj, r.activity_table, e),
            pdp._never_values_for(r.never_values, typ), pdp._never_values_for(r.never_values, coalesce(ftyp, typ)),
            r.period::text) AS x(s text)
        ON CONFLICT DO NOTHING;
    END LOOP;
    -- A subject active (or of unknown activity) under any of the activity
    -- table's subject columns is not inactive.
    FOR subj IN SELECT s.col FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) r.activity_table LOOP
        DELETE FROM pg_temp.pdp_inactive_subjects i
         WHERE i.subject IN (SELECT x.s FROM pdp._exec_as_owner(r.activity_table, pg_catalog.format(
                   'SELECT a.%1$I::text FROM %2$s a WHERE a.%1$I IS NOT NULL '
                   'AND coalesce((%3$s) OPERATOR(pg_catalog.>=) pg_catalog.now(), true)',
                   subj, r.activity_table, e),
                   pdp._never_values_for(r.never_values, typ), pdp._never_values_for(r.never_values, coalesce(ftyp, typ)),
                   r.period::text) AS x(s text));
    END LOOP;
    -- System subjects (the guest, administrators, service accounts) are never purged.
    DELETE FROM pg_temp.pdp_inactive_subjects i USING pdp.system_subject y
     WHERE i.subject OPERATOR(pg_catalog.=) y.subject;
    SELECT pg_catalog.count(*) INTO n FROM pg_temp.pdp_inactive_subjects;
    RETURN n;
END
$$;

-- The safety valve.
ALTER TABLE pdp.purge_run ADD COLUMN max_share real, ADD COLUMN held_back jsonb NOT NULL DEFAULT '[]';
COMMENT ON COLUMN pdp.purge_run.max_share IS 'pdp.purge_max_share in force for the run';
COMMENT ON COLUMN pdp.purge_run.held_back IS 'what the safety valve (pdp.purge_max_share) kept the run from removing: per table, or the inactive subjects, with the counts (never a value)';
CREATE OR REPLACE FUNCTION pdp._begin_purge_run(dry_run boolean) RETURNS bigint
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
    INSERT INTO pdp.purge_run (dry_run, status, max_share)
    VALUES (dry_run, CASE WHEN dry_run THEN 'dry run' ELSE 'running' END, pdp._purge_max_share())
    RETURNING purge_run.id INTO id;
    -- A share raised in the session (SET, to let one run through) is audited.
    IF NOT dry_run AND pdp._purge_max_share() OPERATOR(pg_catalog.>)
                       coalesce((SELECT s.reset_val::real FROM pg_settings s WHERE s.name = 'pdp.purge_max_share'), 0.10::real) THEN
        PERFORM pdp._audit('purge_max_share_raised', 'pdp.purge', NULL, pg_catalog.jsonb_build_object(
            'run', id, 'max_share', pdp._purge_max_share(),
            'default', (SELECT s.reset_val::real FROM pg_settings s WHERE s.name = 'pdp.purge_max_share')));
    END IF;
    -- Held for the session's life: tells later runs this one is alive.
    PERFORM pg_catalog.pg_advisory_lock(pg_catalog.hashtext('pdp_ext purge run'), id::integer);
    RETURN id;
END
$$;
CREATE OR REPLACE FUNCTION pdp._purge_max_share() RETURNS real
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(NULLIF(pg_catalog.current_setting('pdp.purge_max_share', true), '')::real, 0.10::real) $$;
COMMENT ON FUNCTION pdp._purge_max_share() IS 'pdp.purge_max_share, or its default 0.10 where pdp_ext''s library is not loaded yet';
CREATE OR REPLACE FUNCTION pdp._hold_back(run_id bigint, what jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE pdp.purge_run r SET held_back = r.held_back OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(what)
     WHERE r.id OPERATOR(pg_catalog.=) run_id;
    PERFORM pdp._audit('purge_held_back', coalesce(what->>'table', what->>'inactivity'), NULL, what OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('run', run_id));
    RAISE WARNING 'purge: % held back: the run would remove % of % %, more than pdp.purge_max_share (%)',
                  CASE WHEN what ? 'table' THEN pg_catalog.format('table "%s"', what->>'table') ELSE 'inactivity' END,
                  what->>'would_remove', what->>'of', CASE WHEN what ? 'table' THEN 'rows' ELSE 'subjects' END,
                  what->>'max_share'
        USING DETAIL = CASE WHEN what ? 'table' THEN 'Nothing was removed from the table in this run.'
                            ELSE 'No subject''s rows were removed for inactivity in this run.' END,
              HINT = pg_catalog.format('Check the retention (pdp.purge_expired(dry_run => true), run %s in pdp.purge_log); '
                                       'if the share is right, let one run through with a larger share: '
                                       'SET pdp.purge_max_share = %s; CALL pdp.purge(); RESET pdp.purge_max_share;',
                                       run_id, pg_catalog.trim_scale(pg_catalog.round(LEAST(1, pg_catalog.ceil((what->>'share')::numeric * 100) / 100 + 0.01), 2)));
END
$$;
COMMENT ON FUNCTION pdp._hold_back(bigint, jsonb) IS 'records, audits and reports what the purge''s safety valve held back';
CREATE OR REPLACE FUNCTION pdp._purge_valve(run_id bigint, tbl regclass) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    share real := pdp._purge_max_share();
    n bigint;
    est float8;
    total bigint;
BEGIN
    IF share OPERATOR(pg_catalog.>=) 1 THEN
        RETURN false;
    END IF;
    n := (pdp._find_expired(tbl, 'retention', false, NULL, NULL)).n
         OPERATOR(pg_catalog.+) (pdp._find_expired(tbl, 'inactivity', false, NULL, NULL)).n;
    IF n OPERATOR(pg_catalog.=) 0 THEN
        RETURN false;
    END IF;
    -- Far below the share by both the planner's estimate and the live-row
    -- statistics (which follow every DELETE, and are 0 after a crash):
    -- no exact count of the table.
    SELECT LEAST(c.reltuples::float8, coalesce(st.n_live_tup, 0)::float8) INTO est
      FROM pg_class c LEFT JOIN pg_stat_all_tables st ON st.relid OPERATOR(pg_catalog.=) c.oid
     WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid;
    IF est OPERATOR(pg_catalog.>) 0 AND n OPERATOR(pg_catalog.<=) share * est / 2 THEN
        RETURN false;
    END IF;
    SELECT x.n INTO total FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', tbl)) AS x(n bigint);
    IF n OPERATOR(pg_catalog.<=) share * total THEN
        RETURN false;
    END IF;
    PERFORM pdp._hold_back(run_id, pg_catalog.jsonb_build_object(
        'table', tbl::text, 'would_remove', n, 'of', total,
        'share', pg_catalog.round(n::numeric / GREATEST(total, 1), 4), 'max_share', pg_catalog.trim_scale(pg_catalog.round(share::numeric, 4))));
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp._purge_valve(bigint, regclass) IS
    'whether the run would remove more than pdp.purge_max_share of the table''s rows (then it is recorded and skipped)';
CREATE OR REPLACE FUNCTION pdp._subject_valve(run_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    share real := pdp._purge_max_share();
    r record;
    n bigint;
    total bigint;
BEGIN
    IF share OPERATOR(pg_catalog.>=) 1 OR NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = 'pdp_inactive_subjects'
                 AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()) THEN
        RETURN false;
    END IF;
    SELECT pg_catalog.count(*) INTO n FROM pg_temp.pdp_inactive_subjects;
    IF n OPERATOR(pg_catalog.=) 0 THEN
        RETURN false;
    END IF;
    SELECT * INTO r FROM pdp.subject_retention;
    SELECT x.n INTO total FROM pdp._exec_as_owner(r.activity_table, pg_catalog.format(
        'SELECT pg_catalog.count(DISTINCT s.s) FROM %s a CROSS JOIN LATERAL (VALUES %s) s(s) WHERE s.s IS NOT NULL',
        r.activity_table, (SELECT pg_catalog.string_agg(pg_catalog.format('(a.%I::text)', c.col), ', ')
                             FROM pdp.subject_column c WHERE c.tbl OPERATOR(pg_catalog.=) r.activity_table))) AS x(n bigint);
    IF n OPERATOR(pg_catalog.<=) share * total THEN
        RETURN false;
    END IF;
    DELETE FROM pg_temp.pdp_inactive_subjects;
    PERFORM pdp._hold_back(run_id, pg_catalog.jsonb_build_object(
        'inactivity', r.activity_table::text, 'would_remove', n, 'of', total,
        'share', pg_catalog.round(n::numeric / GREATEST(total, 1), 4), 'max_share', pg_catalog.trim_scale(pg_catalog.round(share::numeric, 4))));
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp._subject_valve(bigint) IS
    'whether the run would purge more than pdp.purge_max_share of the activity table''s subjects (then none is, and it is recorded)';
CREATE OR REPLACE FUNCTION pdp.purge_expired(batch_size integer DEFAULT 5000, dry_run boolean DEFAULT false)
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
    IF NOT coalesce(dry_run, false) THEN
        PERFORM pdp._subject_valve(run_id);
    END IF;
    FOR t IN SELECT o.tbl FROM pdp._deletion_order() o LOOP
        IF EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) t AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until > pg_catalog.now())) THEN
            CONTINUE;
        END IF;
        CONTINUE WHEN pdp._citus_skip_purge(t, run_id);   -- a Citus table it cannot purge correctly: skipped, recorded
        CONTINUE WHEN NOT coalesce(dry_run, false) AND pdp._purge_valve(run_id, t);   -- the safety valve
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
        -- Links to inactive subjects in the rows kept are cut (a row of its own).
        n := pdp._cut_inactive_links(t, coalesce(dry_run, false));
        IF n > 0 THEN
            IF NOT coalesce(dry_run, false) THEN
                PERFORM pdp._record_purge_batch(run_id, t, 'cut links', n);
            END IF;
            action := 'cut links';
            rows := n;
            RETURN NEXT;
        END IF;
    END LOOP;
    PERFORM pdp._end_purge_run(run_id, 'finished');
END
$$;
CREATE OR REPLACE PROCEDURE pdp.purge(batch_size integer DEFAULT 5000, max_duration interval DEFAULT '1 hour')
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
    held boolean;
    blk bigint;
    span bigint;
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
    PERFORM pdp._subject_valve(run_id);
    COMMIT;
    <<tables>>
    FOR t IN SELECT o.tbl FROM pdp._deletion_order() o LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) t AND h.released_at IS NULL
                                AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
        CONTINUE WHEN pdp._citus_skip_purge(t, run_id);   -- a Citus table it cannot purge correctly: skipped, recorded
        act := pdp._purge_action(t);
        -- The safety valve.  A table it cannot count is left for the next
        -- run and recorded, as a failed batch is.
        BEGIN
            held := pdp._purge_valve(run_id, t);
        EXCEPTION WHEN OTHERS THEN
            held := true;
            PERFORM pdp._record_purge_batch(run_id, t, act, 0, pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                        'table', t::text, 'sqlstate', SQLSTATE, 'message', SQLERRM)));
            failed := failed OPERATOR(pg_catalog.+) 1;
            failed_states := pg_catalog.array_append(failed_states, SQLSTATE::text);
        END;
        CONTINUE WHEN held;
        FOREACH why IN ARRAY ARRAY['retention', 'inactivity'] LOOP
            pos := '-infinity';
            -- By block ranges (pdp._purge_by_range), or through the expiry
            -- index (span 0): decided at the first batch.
            blk := 0;
            span := NULL;
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
                    IF span IS NULL THEN
                        span := pdp._purge_by_range(t, why, batch_size);
                    END IF;
                    -- Found and purged as the table's owner (pdp._purge_range, pdp._purge_batch).
                    IF span OPERATOR(pg_catalog.>) 0 THEN
                        SELECT r.n, r.next_block, r.next_span, NOT r.done INTO n, blk, span, got
                          FROM pdp._purge_range(t, why, batch_size, blk, span) r;
                    ELSE
                        SELECT b.n, b.pos, b.got INTO n, pos, got
                          FROM pdp._purge_batch(t, why, batch_size, coalesce(pos, '-infinity'), false) b;
                        got := got AND n OPERATOR(pg_catalog.>) 0;
                    END IF;
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
                EXIT WHEN NOT got;
            END LOOP;
        END LOOP;
        -- Links to inactive subjects in the rows kept are cut, in one
        -- transaction per table, recorded like a batch.
        err := NULL;
        n := 0;
        BEGIN
            n := pdp._cut_inactive_links(t);
        EXCEPTION WHEN OTHERS THEN
            err := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                       'table', t::text, 'sqlstate', SQLSTATE, 'message', SQLERRM));
            failed := failed OPERATOR(pg_catalog.+) 1;
            failed_states := pg_catalog.array_append(failed_states, SQLSTATE::text);
        END;
        PERFORM pdp._record_purge_batch(run_id, t, 'cut links', n, err);
        IF n > 0 THEN
            RAISE NOTICE 'purge: % rows of table "%" (links to inactive subjects cut)', n, pdp._relname(t);
        END IF;
        COMMIT;
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

-- Checked scheduling; failed scheduled runs in the purge log and the report.
CREATE OR REPLACE FUNCTION pdp._hba_verdict(conn_type text, addr inet, role name, OUT ok boolean, OUT why text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h record;
    db name := pg_catalog.current_database();
BEGIN
    FOR h IN SELECT * FROM pg_catalog.pg_hba_file_rules r WHERE r.error IS NULL ORDER BY r.line_number LOOP
        CONTINUE WHEN conn_type = 'local' AND h.type <> 'local';
        CONTINUE WHEN conn_type = 'host' AND (h.type NOT IN ('host', 'hostssl', 'hostnossl')
                                               OR (h.type = 'hostssl' AND pg_catalog.current_setting('ssl') <> 'on')
                                               OR (h.type = 'hostnossl' AND pg_catalog.current_setting('ssl') = 'on'));
        CONTINUE WHEN NOT ('all' = ANY (h.database) OR db = ANY (h.database)
                           OR ('sameuser' = ANY (h.database) AND db = role)
                           OR (('samerole' = ANY (h.database) OR 'samegroup' = ANY (h.database))
                               AND EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = db)
                               AND pg_catalog.pg_has_role(role, db, 'MEMBER')));
        CONTINUE WHEN NOT ('all' = ANY (h.user_name) OR role = ANY (h.user_name)
                           OR EXISTS (SELECT 1 FROM pg_catalog.unnest(h.user_name) u
                                       WHERE u LIKE '+%' AND EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = pg_catalog.substr(u, 2))
                                         AND pg_catalog.pg_has_role(role, pg_catalog.substr(u, 2), 'MEMBER')));
        IF conn_type = 'host' THEN
            CONTINUE WHEN NOT (h.address IN ('all', 'samehost', 'samenet', 'localhost')
                               OR (h.address ~ '^[0-9a-fA-F.:]+$' AND h.netmask IS NOT NULL
                                   AND pg_catalog.family(h.address::inet) = pg_catalog.family(addr)
                                   AND (h.address::inet & h.netmask::inet) = (addr & h.netmask::inet)));
        END IF;
        ok := h.auth_method = 'trust'
              OR (h.auth_method = 'peer' AND h.options IS NULL AND role = pg_catalog.pg_get_userbyid(10));
        why := pg_catalog.format('pg_hba.conf line %s ("%s %s %s%s %s") %s', h.line_number, h.type,
                                 pg_catalog.array_to_string(h.database, ','), pg_catalog.array_to_string(h.user_name, ','),
                                 coalesce(' ' || h.address || coalesce('/' || (
                                     SELECT n FROM pg_catalog.generate_series(0, 128) n
                                      WHERE h.address ~ '^[0-9a-fA-F.:]+$'
                                        AND n OPERATOR(pg_catalog.<=) CASE pg_catalog.family(h.address::inet) WHEN 4 THEN 32 ELSE 128 END
                                        AND pg_catalog.netmask(pg_catalog.set_masklen(h.address::inet, n)) = h.netmask::inet
                                      ORDER BY n LIMIT 1), ''), ''), h.auth_method,
                                 CASE WHEN ok THEN 'lets it in'
                                      WHEN h.auth_method = 'reject' THEN 'rejects it'
                                      WHEN h.auth_method = 'peer' THEN pg_catalog.format(
                                          'asks the operating system, and pg_cron connects as the server''s user, not as "%s"', role)
                                      ELSE 'asks for a password, which pg_cron''s connection has not' END);
        RETURN;
    END LOOP;
    ok := false;
    why := 'no pg_hba.conf line matches it, so it is refused';
END
$$;
COMMENT ON FUNCTION pdp._hba_verdict(text, inet, name) IS
    'the first pg_hba.conf line matching a connection to this database as a role, and whether pg_cron''s connection gets through';
CREATE OR REPLACE FUNCTION pdp._cron_check(role name, OUT ok boolean, OUT problem text, OUT fix text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    db text := pg_catalog.current_setting('cron.database_name', true);
    host text := coalesce(NULLIF(pg_catalog.current_setting('cron.host', true), ''), 'localhost');
    sockets text[] := ARRAY(SELECT pg_catalog.btrim(x) FROM pg_catalog.unnest(pg_catalog.string_to_array(
                                pg_catalog.current_setting('unix_socket_directories'), ',')) x WHERE pg_catalog.btrim(x) <> '');
    listen text[] := ARRAY(SELECT pg_catalog.btrim(x) FROM pg_catalog.unnest(pg_catalog.string_to_array(
                               pg_catalog.current_setting('listen_addresses'), ',')) x WHERE pg_catalog.btrim(x) <> '');
    v record;
    a inet;
    judged integer := 0;
    local_fix text;
BEGIN
    ok := false;
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF db IS DISTINCT FROM pg_catalog.current_database() THEN
        problem := pg_catalog.format('pg_cron runs its jobs from database "%s", not from this one', coalesce(db, 'postgres'));
        fix := pg_catalog.format('cron.database_name = %L in postgresql.conf, then restart the server', pg_catalog.current_database());
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher') THEN
        problem := 'pg_cron''s scheduler is not running (pg_cron is not in shared_preload_libraries, or it stopped)';
        fix := 'pg_cron in shared_preload_libraries in postgresql.conf, then restart the server';
        RETURN;
    END IF;
    IF pg_catalog.current_setting('cron.use_background_workers', true) = 'on' THEN
        ok := true;
        RETURN;
    END IF;
    -- pg_cron connects with libpq to cron.host, this server's port, this database, as the job's role.
    IF pg_catalog.cardinality(sockets) > 0 THEN
        SELECT * INTO v FROM pdp._hba_verdict('local', NULL, role);
        IF v.ok THEN
            local_fix := pg_catalog.format('cron.host = %L in postgresql.conf, then restart the server', sockets[1]);
        END IF;
    END IF;
    fix := coalesce(local_fix, 'cron.use_background_workers = on (and max_worker_processes large enough) in postgresql.conf, '
                               'then restart the server');
    IF host LIKE '/%' THEN
        IF NOT host = ANY (sockets) THEN
            problem := pg_catalog.format('cron.host (%s) is not a socket directory of this server (unix_socket_directories)', host);
            RETURN;
        END IF;
        SELECT * INTO v FROM pdp._hba_verdict('local', NULL, role);
        IF NOT v.ok THEN
            problem := pg_catalog.format('pg_cron connects through the socket in %s as "%s": %s', host, role, v.why);
            fix := pg_catalog.format('a line "local %s %s trust" in pg_hba.conf above that one, then reload the server; '
                                     'or cron.use_background_workers = on in postgresql.conf, then restart the server',
                                     pg_catalog.quote_ident(pg_catalog.current_database()), pg_catalog.quote_ident(role));
            RETURN;
        END IF;
        ok := true;
        fix := NULL;
        RETURN;
    END IF;
    IF host NOT IN ('localhost', '127.0.0.1', '::1') THEN
        problem := pg_catalog.format('cron.host is %s: pg_cron connects over TCP to another host, which pdp_ext cannot check', host);
        RETURN;
    END IF;
    FOREACH a IN ARRAY CASE WHEN host = '127.0.0.1' THEN ARRAY['127.0.0.1'::inet] WHEN host = '::1' THEN ARRAY['::1'::inet]
                            ELSE ARRAY['::1'::inet, '127.0.0.1'::inet] END LOOP
        -- An address the server does not listen on refuses at once and libpq tries the next.
        CONTINUE WHEN NOT ('*' = ANY (listen) OR 'localhost' = ANY (listen) OR pg_catalog.host(a) = ANY (listen)
                           OR (pg_catalog.family(a) = 4 AND '0.0.0.0' = ANY (listen))
                           OR (pg_catalog.family(a) = 6 AND '::' = ANY (listen)));
        judged := judged + 1;
        SELECT * INTO v FROM pdp._hba_verdict('host', a, role);
        IF NOT v.ok THEN
            problem := pg_catalog.format('pg_cron connects over TCP to %s (cron.host = %s) as "%s": %s',
                                         pg_catalog.host(a), host, role, v.why);
            RETURN;
        END IF;
    END LOOP;
    IF judged = 0 THEN
        problem := pg_catalog.format('pg_cron connects over TCP to %s (cron.host), and the server does not listen there '
                                     '(listen_addresses = ''%s'')', host, pg_catalog.current_setting('listen_addresses'));
        RETURN;
    END IF;
    ok := true;
    fix := NULL;
END
$$;
COMMENT ON FUNCTION pdp._cron_check(name) IS
    'whether pg_cron can run a job in this database as the role (database, scheduler, connection, pg_hba.conf); else what fails and what to set';
CREATE OR REPLACE FUNCTION pdp.schedule_purge(schedule text DEFAULT '17 3 * * *') RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint;
    chk record;
BEGIN
    PERFORM pdp._require_pg_cron();
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- pg_cron judges the schedule; then, before the job commits, whether it
    -- can run it at all: it would take the job and fail it every night.
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job USING 'pdp_ext purge', schedule, 'CALL pdp.purge()';
    SELECT * INTO chk FROM pdp._cron_check(CURRENT_USER);
    IF NOT chk.ok THEN
        RAISE EXCEPTION 'pg_cron could not run the scheduled purge' USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = pg_catalog.concat(chk.problem, '. Nothing was scheduled.'),
              HINT = pg_catalog.concat('Set ', chk.fix, '. If the connection works in a way pdp_ext cannot see (a password in the ',
                                       'server user''s ~/.pgpass), schedule it yourself with SELECT cron.schedule(''pdp_ext purge'', ',
                                       '''17 3 * * *'', ''CALL pdp.purge()''); pdp.purge_log shows its failed runs.');
    END IF;
    PERFORM pdp._audit('schedule_purge', 'pdp.purge', NULL, pg_catalog.jsonb_build_object('schedule', schedule, 'job', job));
    RETURN job;
END
$$;
COMMENT ON FUNCTION pdp.schedule_purge(text) IS
    'schedules CALL pdp.purge() with pg_cron (job "pdp_ext purge") once it has checked that pg_cron can run it; returns the job id';
CREATE OR REPLACE FUNCTION pdp._failed_scheduled_purges()
RETURNS TABLE (cron_run bigint, job bigint, started_at timestamptz, finished_at timestamptz, message text, run_by name)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('cron.job_run_details') IS NULL OR pg_catalog.to_regclass('cron.job') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT d.runid::bigint, d.jobid::bigint, coalesce(d.start_time, d.end_time), d.end_time, '
        'coalesce(NULLIF(d.return_message, ''''), ''(pg_cron gave no message)''), d.username::name '
        'FROM cron.job_run_details d '
        'WHERE d.status OPERATOR(pg_catalog.=) ''failed'' '
        'AND (d.jobid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT j.jobid FROM cron.job j WHERE j.jobname OPERATOR(pg_catalog.=) ''pdp_ext purge'')) '
        '     OR d.command OPERATOR(pg_catalog.~) ''pdp\.purge\M'') '
        'AND coalesce(d.start_time, d.end_time, pg_catalog.now()) OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval ''90 days'') '
        'ORDER BY d.runid';
END
$$;
COMMENT ON FUNCTION pdp._failed_scheduled_purges() IS
    'scheduled purge runs pg_cron failed in the last 90 days (none without pg_cron), read as pdp_ext''s owner';
CREATE OR REPLACE FUNCTION pdp._purge_schedule_status() RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j record;
    chk record;
    failed jsonb;
BEGIN
    SELECT pg_catalog.jsonb_build_object('count', pg_catalog.count(*), 'last_at', pg_catalog.max(f.started_at),
                                         'last_message', (pg_catalog.array_agg(f.message ORDER BY f.cron_run DESC))[1])
      INTO failed FROM pdp._failed_scheduled_purges() f
     WHERE coalesce(f.started_at, f.finished_at, pg_catalog.now()) > pg_catalog.now() - interval '30 days';
    IF pg_catalog.to_regclass('cron.job') IS NULL THEN
        RETURN pg_catalog.jsonb_build_object('scheduled', false, 'failed_runs_30_days', failed);
    END IF;
    EXECUTE 'SELECT j.jobid::bigint AS jobid, j.schedule, j.username::name AS username, j.active FROM cron.job j '
            'WHERE j.jobname OPERATOR(pg_catalog.=) ''pdp_ext purge'' ORDER BY j.jobid LIMIT 1' INTO j;
    IF j.jobid IS NULL THEN
        RETURN pg_catalog.jsonb_build_object('scheduled', false, 'failed_runs_30_days', failed);
    END IF;
    SELECT * INTO chk FROM pdp._cron_check(j.username);
    RETURN pg_catalog.jsonb_build_object('scheduled', true, 'job', j.jobid, 'schedule', j.schedule, 'active', j.active,
                                         'runnable', chk.ok, 'problem', chk.problem, 'fix', chk.fix,
                                         'failed_runs_30_days', failed);
END
$$;
COMMENT ON FUNCTION pdp._purge_schedule_status() IS
    'the scheduled purge for the report: job, schedule, whether pg_cron can run it, failed runs of the last 30 days';
CREATE OR REPLACE VIEW pdp.purge_log AS
SELECT r.id, r.started_at, r.finished_at, r.status, r.dry_run, r.rows, r.total_rows, r.errors, r.run_by,
       r.held_back, r.max_share, NULL::bigint AS cron_run
  FROM pdp.purge_run r
UNION ALL
-- Scheduled runs pg_cron could not run (it could not connect, or the call failed).
SELECT NULL::bigint, f.started_at, f.finished_at, 'scheduled run failed', false, '{}'::jsonb, 0::bigint,
       pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('source', 'pg_cron', 'job', f.job, 'message', f.message)),
       f.run_by, '[]'::jsonb, NULL::real, f.cron_run
  FROM pdp._failed_scheduled_purges() f;
COMMENT ON VIEW pdp.purge_log IS
    'purge runs of the last 90 days (older ones are compacted into pdp.purge_summary), and scheduled runs that failed (id NULL, cron_run pg_cron''s run id)';
CREATE OR REPLACE FUNCTION pdp._report_json() RETURNS jsonb
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
    audit record;
BEGIN
    SELECT * INTO audit FROM pdp.verify_audit_log();
    FOR sch IN SELECT x FROM pg_catalog.jsonb_array_elements_text(counts->'schemas') x LOOP
        findings := findings || coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                        'table', d.table_name::text, 'column', d.column_name, 'attribute', d.attribute, 'category', d.category,
                        'confidence', pg_catalog.round(d.confidence::numeric, 2), 'evidence', d.evidence))
                      FROM pdp.discover(sch, 200) d), '[]');
    END LOOP;
    -- Real misses first: the most confident findings (values checked), then
    -- what only a column's name suggests, credential candidates last.
    findings := coalesce((SELECT pg_catalog.jsonb_agg(x ORDER BY (x->>'category') OPERATOR(pg_catalog.=) 'credential',
                                                      (x->>'confidence')::numeric DESC, x->>'table', x->>'column', x->>'attribute')
                            FROM pg_catalog.jsonb_array_elements(findings) x), '[]');
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
        'columns_without_rule', (SELECT pg_catalog.count(*) FROM pdp.unclassified_columns),
        'consents', counts->'consents',
        'retention', retention,
        'last_purge', (SELECT pg_catalog.jsonb_build_object('started_at', l.started_at, 'status', l.status, 'rows', l.total_rows,
                                                            'held_back', l.held_back)
                         FROM pdp.purge_run l WHERE NOT l.dry_run ORDER BY l.id DESC LIMIT 1),
        'scheduled_purge', pdp._purge_schedule_status(),
        'inactivity', (SELECT pg_catalog.jsonb_build_object('table', sr.activity_table::text, 'column', sr.activity_column,
                                                            'period', sr.period::text, 'never_values', sr.never_values,
                                                            'fallback_column', sr.fallback_column)
                         FROM pdp.subject_retention sr),
        'system_subjects', (SELECT pg_catalog.count(*) FROM pdp.system_subject),
        'holds_in_force', (SELECT pg_catalog.count(*) FROM pdp.holds h WHERE h.in_force),
        'restricted_subjects', counts->'restricted_subjects',
        'overdue_requests', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', o.id, 'kind', o.kind,
                                'jurisdiction', o.jurisdiction, 'due_at', o.due_at) ORDER BY o.due_at) FROM pdp.overdue_requests o), '[]'),
        'pending_notices', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('recipient', x.recipient, 'count', x.n) ORDER BY x.recipient)
                                       FROM (SELECT n.recipient, pg_catalog.count(*) AS n FROM pdp.pending_notices n GROUP BY 1) x), '[]'),
        'recipients', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(rc) - 'defined_by' ORDER BY rc.name) FROM pdp.recipients rc), '[]'),
        'audit', pg_catalog.to_jsonb(audit) OPERATOR(pg_catalog.-) 'nodes',
        'k_anonymity', pdp._k_anonymity_findings());
    -- On a Citus coordinator with workers (verify_audit_log gave nodes; else
    -- nothing changes): every node's audit chain and reversals, and the key
    -- fingerprints compared.
    IF audit.nodes IS NOT NULL THEN
        r := r OPERATOR(pg_catalog.||) pdp._report_nodes(audit.nodes, audit.ok);
    END IF;
    RETURN r;
END
$$;
CREATE OR REPLACE FUNCTION pdp.report(format text DEFAULT 'html') RETURNS text
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
                 WHEN j ? 'nodes' AND j->'audit'->>'first_bad_id' IS NULL
                 THEN E'**The audit trail does not verify on every node** (see the table below).\n\n'
                 ELSE '**The hash chain is broken** at entry ' || pdp._md(j->'audit'->>'first_bad_id') || E'.\n\n' END;
        IF j ? 'nodes' THEN
            out := out || CASE WHEN (j->>'key_mismatch')::boolean
                                THEN E'**The key file differs between nodes**: pseudonyms computed on the flagged workers differ.\n\n'
                                WHEN (j->>'key_mismatch')::boolean IS NULL
                                THEN E'**The key fingerprints of some nodes could not be read.**\n\n'
                                ELSE E'Every node has the same key fingerprints.\n\n' END
                       || 'Reversals recorded: ' || pdp._md(j->'reversals'->>'total') || ', ' || pdp._md(j->'reversals'->>'on_workers')
                       || E' of them on workers.\n\n| node | audit chain | entries | reversals | key |\n|---|---|---:|---:|---|\n';
            FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'nodes') LOOP
                out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s |\n', pdp._md(x->>'node'),
                           CASE WHEN (x->>'ok')::boolean THEN 'verifies' WHEN (x->>'ok')::boolean IS FALSE THEN '**broken**: '
                                ELSE '**not verified**: ' END || CASE WHEN (x->>'ok')::boolean THEN '' ELSE pdp._md(coalesce(x->>'message', '')) END,
                           coalesce(pdp._md(x->>'entries'), '—'), coalesce(pdp._md(x->>'reversals'), '—'),
                           CASE WHEN (x->>'key_mismatch')::boolean THEN '**differs**' WHEN (x->>'key_mismatch')::boolean IS FALSE THEN 'same'
                                ELSE '—' END);
            END LOOP;
            out := out || E'\n';
        END IF;
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
                out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s |\n', pdp._md(x->>'table'),
                                                pdp._md((x->>'column') || coalesce(' [' || (x->>'attribute') || ']', '')), pdp._md(x->>'category'),
                                                pdp._md(x->>'confidence'), pdp._md(x->>'evidence'));
            END LOOP;
        END IF;
        out := out || E'\nColumns of registered tables without a rule (not findings; `pdp.unclassified_columns` lists them): '
                   || pdp._md(j->>'columns_without_rule') || E'.\n';
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
        IF j->'inactivity' IS NOT NULL AND j->'inactivity' <> 'null'::jsonb THEN
            out := out || E'\nInactivity: a subject''s rows expire ' || pdp._md(j->'inactivity'->>'period') || ' after their last '
                       || pdp._md((j->'inactivity'->>'table') || '.' || (j->'inactivity'->>'column'))
                       || CASE WHEN pg_catalog.jsonb_array_length(j->'inactivity'->'never_values') > 0
                               THEN ' (' || pdp._md(pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.jsonb_array_elements_text(j->'inactivity'->'never_values')), ', '))
                                    || ' meaning never)' ELSE '' END
                       || coalesce(', else ' || pdp._md(j->'inactivity'->>'fallback_column'), '')
                       || '; system subjects, never purged: ' || pdp._md(j->>'system_subjects') || E'.\n';
        END IF;
        out := out || E'\nLast purge: ' || coalesce(pdp._md(j->'last_purge'->>'started_at') || ', ' || pdp._md(j->'last_purge'->>'status') || ', '
                                                    || pdp._md(j->'last_purge'->>'rows') || ' rows', 'none') || E'.\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(coalesce(j->'last_purge'->'held_back', '[]')) LOOP
            out := out || E'\n**Held back by the safety valve** (pdp.purge\\_max\\_share ' || pdp._md(x->>'max_share') || '): '
                       || coalesce('table ' || pdp._md(x->>'table'), 'inactivity of ' || pdp._md(x->>'inactivity')) || ', the run would have removed '
                       || pdp._md(x->>'would_remove') || ' of ' || pdp._md(x->>'of')
                       || CASE WHEN x ? 'table' THEN ' rows' ELSE ' subjects' END || E'.\n';
        END LOOP;
        out := out || E'\nScheduled purge: ' || CASE
                   WHEN NOT coalesce((j->'scheduled_purge'->>'scheduled')::boolean, false) THEN 'none'
                   WHEN (j->'scheduled_purge'->>'runnable')::boolean THEN 'job ' || pdp._md(j->'scheduled_purge'->>'job') || ' (`'
                        || pdp._md(j->'scheduled_purge'->>'schedule') || '`), pg_cron can run it'
                   ELSE 'job ' || pdp._md(j->'scheduled_purge'->>'job') || ' (`' || pdp._md(j->'scheduled_purge'->>'schedule')
                        || '`), **pg_cron cannot run it**: ' || pdp._md(coalesce(j->'scheduled_purge'->>'problem', '')) || '. Set '
                        || pdp._md(coalesce(j->'scheduled_purge'->>'fix', 'what the problem names')) END || E'.\n';
        IF (j->'scheduled_purge'->'failed_runs_30_days'->>'count')::bigint > 0 THEN
            out := out || E'\n**Scheduled runs that failed in the last 30 days: ' || pdp._md(j->'scheduled_purge'->'failed_runs_30_days'->>'count')
                       || '**, the last at ' || pdp._md(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_at', 'an unknown time')) || ': '
                       || pdp._md(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_message', '(no message)')) || E' (see pdp.purge\\_log).\n';
        END IF;
        out := out || E'\n## Open matters\n\n'
                   || '- Holds in force: ' || pdp._md(j->>'holds_in_force') || E'\n'
                   || '- Restricted subjects: ' || pdp._md(j->>'restricted_subjects') || E'\n'
                   || '- Overdue requests: ' || pg_catalog.jsonb_array_length(j->'overdue_requests') || E'\n'
                   || '- Pending rectification notices: ' || coalesce((SELECT pg_catalog.sum((e->>'count')::int)
                          FROM pg_catalog.jsonb_array_elements(j->'pending_notices') e), 0) || E'\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'k_anonymity') e WHERE (e->>'below_min_k')::boolean LOOP
            out := out || '- **Below k-anonymity ' || pdp._md(x->>'min_k') || '**: ' || pdp._md(x->>'table') || ' (k = '
                       || pdp._md(x->>'k') || E' over its quasi-identifiers)\n';
        END LOOP;
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
               WHEN j ? 'nodes' AND j->'audit'->>'first_bad_id' IS NULL
               THEN '<p class="bad">The audit trail does not verify on every node (see the table below).</p>'
               ELSE '<p class="bad">The hash chain is broken at entry ' || pdp._html(j->'audit'->>'first_bad_id') || '.</p>' END;
    IF j ? 'nodes' THEN
        out := out || CASE WHEN (j->>'key_mismatch')::boolean
                            THEN '<p class="bad">The key file differs between nodes: pseudonyms computed on the flagged workers differ.</p>'
                            WHEN (j->>'key_mismatch')::boolean IS NULL
                            THEN '<p class="bad">The key fingerprints of some nodes could not be read.</p>'
                            ELSE '<p class="ok">Every node has the same key fingerprints.</p>' END
                   || '<p>Reversals recorded: ' || pdp._html(j->'reversals'->>'total') || ', ' || pdp._html(j->'reversals'->>'on_workers')
                   || ' of them on workers.</p><table><tr><th>Node</th><th>Audit chain</th><th>Entries</th><th>Reversals</th><th>Key</th></tr>';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'nodes') LOOP
            out := out || '<tr><td>' || pdp._html(x->>'node') || '</td>'
                       || CASE WHEN (x->>'ok')::boolean THEN '<td class="ok">verifies</td>'
                               WHEN (x->>'ok')::boolean IS FALSE THEN '<td class="bad">broken: ' || pdp._html(coalesce(x->>'message', '')) || '</td>'
                               ELSE '<td class="bad">not verified: ' || pdp._html(coalesce(x->>'message', '')) || '</td>' END
                       || '<td class="num">' || pdp._html(coalesce(x->>'entries', '—')) || '</td><td class="num">'
                       || pdp._html(coalesce(x->>'reversals', '—')) || '</td>'
                       || CASE WHEN (x->>'key_mismatch')::boolean THEN '<td class="bad">differs</td>'
                               WHEN (x->>'key_mismatch')::boolean IS FALSE THEN '<td class="ok">same</td>' ELSE '<td>—</td>' END || '</tr>';
        END LOOP;
        out := out || '</table>';
    END IF;
    out := out || '</section>';
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
            out := out || '<tr><td>' || pdp._html(x->>'table') || '</td><td>'
                       || pdp._html((x->>'column') || coalesce(' [' || (x->>'attribute') || ']', '')) || '</td><td>'
                       || pdp._html(x->>'category') || '</td><td class="num">' || pdp._html(x->>'confidence') || '</td><td>'
                       || pdp._html(x->>'evidence') || '</td></tr>';
        END LOOP;
        out := out || '</table>';
    END IF;
    out := out || '<p>Columns of registered tables without a rule (not findings; <code>pdp.unclassified_columns</code> lists them): '
               || pdp._html(j->>'columns_without_rule') || '.</p>';
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
    out := out || '</table>';
    IF j->'inactivity' IS NOT NULL AND j->'inactivity' <> 'null'::jsonb THEN
        out := out || '<p>Inactivity: a subject''s rows expire ' || pdp._html(j->'inactivity'->>'period') || ' after their last <code>'
                   || pdp._html((j->'inactivity'->>'table') || '.' || (j->'inactivity'->>'column')) || '</code>'
                   || CASE WHEN pg_catalog.jsonb_array_length(j->'inactivity'->'never_values') > 0
                           THEN ' (' || pdp._html(pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.jsonb_array_elements_text(j->'inactivity'->'never_values')), ', '))
                                || ' meaning never)' ELSE '' END
                   || coalesce(', else <code>' || pdp._html(j->'inactivity'->>'fallback_column') || '</code>', '')
                   || '; system subjects, never purged: ' || pdp._html(j->>'system_subjects') || '.</p>';
    END IF;
    out := out || '<p>Last purge: ' || pdp._html(coalesce((j->'last_purge'->>'started_at') || ', ' || (j->'last_purge'->>'status')
                                                        || ', ' || (j->'last_purge'->>'rows') || ' rows', 'none')) || '.</p>';
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(coalesce(j->'last_purge'->'held_back', '[]')) LOOP
        out := out || '<p class="bad">Held back by the safety valve (pdp.purge_max_share ' || pdp._html(x->>'max_share') || '): '
                   || pdp._html(coalesce('table ' || (x->>'table'), 'inactivity of ' || (x->>'inactivity'))) || ', the run would have removed '
                   || pdp._html(x->>'would_remove') || ' of ' || pdp._html(x->>'of')
                   || CASE WHEN x ? 'table' THEN ' rows' ELSE ' subjects' END || '.</p>';
    END LOOP;
    out := out || CASE
               WHEN NOT coalesce((j->'scheduled_purge'->>'scheduled')::boolean, false) THEN '<p>Scheduled purge: none.</p>'
               WHEN (j->'scheduled_purge'->>'runnable')::boolean THEN '<p class="ok">Scheduled purge: job ' || pdp._html(j->'scheduled_purge'->>'job')
                    || ' (<code>' || pdp._html(j->'scheduled_purge'->>'schedule') || '</code>), pg_cron can run it.</p>'
               ELSE '<p class="bad">Scheduled purge: job ' || pdp._html(j->'scheduled_purge'->>'job') || ' (<code>'
                    || pdp._html(j->'scheduled_purge'->>'schedule') || '</code>), pg_cron cannot run it: '
                    || pdp._html(coalesce(j->'scheduled_purge'->>'problem', '')) || '. Set ' || pdp._html(coalesce(j->'scheduled_purge'->>'fix', 'what the problem names')) || '.</p>' END;
    IF (j->'scheduled_purge'->'failed_runs_30_days'->>'count')::bigint > 0 THEN
        out := out || '<p class="bad">Scheduled runs that failed in the last 30 days: ' || pdp._html(j->'scheduled_purge'->'failed_runs_30_days'->>'count')
                   || ', the last at ' || pdp._html(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_at', 'an unknown time')) || ': '
                   || pdp._html(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_message', '(no message)')) || ' (see pdp.purge_log).</p>';
    END IF;
    out := out || '</section>';
    out := out || '<section id="open"><h2>Open matters</h2><ul>'
               || '<li>Holds in force: ' || (j->>'holds_in_force') || '</li>'
               || '<li>Restricted subjects: ' || (j->>'restricted_subjects') || '</li>'
               || '<li>Overdue requests: ' || pg_catalog.jsonb_array_length(j->'overdue_requests') || '</li>'
               || '<li>Pending rectification notices: ' || coalesce((SELECT pg_catalog.sum((e->>'count')::int)
                      FROM pg_catalog.jsonb_array_elements(j->'pending_notices') e), 0) || '</li>'
               || coalesce((SELECT pg_catalog.string_agg('<li class="bad">Below k-anonymity ' || pdp._html(e->>'min_k') || ': '
                                                          || pdp._html(e->>'table') || ' (k = ' || pdp._html(e->>'k')
                                                          || ' over its quasi-identifiers)</li>', '' ORDER BY e->>'table')
                              FROM pg_catalog.jsonb_array_elements(j->'k_anonymity') e WHERE (e->>'below_min_k')::boolean), '')
               || '</ul></section></body></html>';
    RETURN out;
END
$$;

-- Privileges (as src/sql/99_privileges.sql).
REVOKE ALL ON pdp.system_subject FROM PUBLIC;
REVOKE ALL ON FUNCTION pdp.set_subject_retention(interval, regclass, name, text[], name),
    pdp._api_set_subject_retention(interval, regclass, name, text[], name),
    pdp._anchor_type(regclass, name, text), pdp._never_values_for(text[], regtype),
    pdp.declare_system_subject(text, text), pdp._api_declare_system_subject(text, text),
    pdp.drop_system_subject(text), pdp._api_drop_system_subject(text),
    pdp._purge_max_share(), pdp._hold_back(bigint, jsonb), pdp._purge_valve(bigint, regclass), pdp._subject_valve(bigint),
    pdp._hba_verdict(text, inet, name), pdp._cron_check(name), pdp._failed_scheduled_purges(), pdp._purge_schedule_status()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.set_subject_retention(interval, regclass, name, text[], name) TO pdp_admin;
GRANT SELECT ON pdp.system_subject TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.declare_system_subject(text, text), pdp.drop_system_subject(text),
                          pdp._purge_max_share(), pdp._purge_valve(bigint, regclass), pdp._subject_valve(bigint),
                          pdp._cron_check(name)
TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._failed_scheduled_purges(), pdp._purge_schedule_status() TO pdp_admin, pdp_auditor;
