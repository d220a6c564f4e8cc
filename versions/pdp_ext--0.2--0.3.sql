-- pdp_ext 0.2 -> 0.3
-- Every change here is also made in src/sql/*.sql (the 0.3 install script);
-- test/tap/010_upgrade.pl checks that an updated 0.2 (and 0.1) and a fresh 0.3
-- have the same catalog entries.
\echo Use "ALTER EXTENSION pdp_ext UPDATE TO '0.3'" to load this file. \quit

-- Hardening: intervals, call-scoped state, leaks, request deadlines (issue 14)

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

CREATE OR REPLACE FUNCTION pdp.trim_audit_log(keep interval DEFAULT '5 years') RETURNS bigint
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

CREATE OR REPLACE FUNCTION pdp.set_retention(tbl regclass, period interval, anchor_column name DEFAULT NULL,
                                  action text DEFAULT 'delete') RETURNS void
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
    IF NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) set_retention.tbl) THEN
        RAISE EXCEPTION 'table "%" is not registered', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register its subject columns first: holds and restrictions apply per subject.';
    END IF;
    PERFORM pdp._check_interval(period, 'retention period must be positive');
    IF action IS NULL OR action NOT IN ('delete', 'anonymise') THEN
        RAISE EXCEPTION 'unknown retention action' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'The action is "delete" or "anonymise".';
    END IF;
    IF action = 'anonymise' AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) set_retention.tbl) THEN
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
    INSERT INTO pdp.retention_policy (tbl, period, anchor_column, action)
    VALUES (tbl, period, anchor_column, action)
    ON CONFLICT ON CONSTRAINT retention_policy_pkey DO UPDATE
       SET period = EXCLUDED.period, anchor_column = EXCLUDED.anchor_column, action = EXCLUDED.action,
           set_at = pg_catalog.now(), set_by = CURRENT_USER;

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
        EXECUTE pg_catalog.format('INSERT INTO pdp.retention_tag (tbl, row_key, expires_at) '
                                  'SELECT %s, t.%I::text, pdp._expiry(pg_catalog.now(), %L::interval) FROM %s t '
                                  'ON CONFLICT DO NOTHING', tbl::oid, k, period::text, tbl);
    END IF;
    PERFORM pdp._audit('set_retention', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('period', period::text, 'anchor', anchor_column, 'action', action));
END
$$;
COMMENT ON FUNCTION pdp.set_retention(regclass, interval, name, text) IS
    'tags every row with its expiry (anchor plus period, or insertion time plus period) and sets the purge action';

CREATE OR REPLACE FUNCTION pdp.set_subject_retention(period interval, activity_table regclass, activity_column name) RETURNS void
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
    INSERT INTO pdp.subject_retention (period, activity_table, activity_column)
    VALUES (period, activity_table, activity_column)
    ON CONFLICT ON CONSTRAINT subject_retention_pkey DO UPDATE
       SET period = EXCLUDED.period, activity_table = EXCLUDED.activity_table,
           activity_column = EXCLUDED.activity_column, set_at = pg_catalog.now(), set_by = CURRENT_USER;
    PERFORM pdp._audit('set_subject_retention', activity_table::text, NULL,
                       pg_catalog.jsonb_build_object('period', period::text, 'activity_column', activity_column));
END
$$;
COMMENT ON FUNCTION pdp.set_subject_retention(interval, regclass, name) IS
    'a subject''s rows in every registered table expire together when their last activity is older than period';

CREATE OR REPLACE PROCEDURE pdp.purge(batch_size integer DEFAULT 5000, max_duration interval DEFAULT '1 hour')
LANGUAGE plpgsql
-- No SET clause (a procedure with one cannot COMMIT): every name is qualified.
AS $$
DECLARE
    run_id bigint;
    t regclass;
    why text;
    q text;
    act text;
    ctids tid[];
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
        act := pdp._purge_action(t);
        FOREACH why IN ARRAY ARRAY['retention', 'inactivity'] LOOP
            q := pdp._expired_rows_sql(t, why, false);
            CONTINUE WHEN q IS NULL;
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
                    EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(x.ctid), pg_catalog.max(x.pos) FROM (%s) x', q)
                        INTO ctids, pos USING batch_size, coalesce(pos, '-infinity');
                    IF ctids IS NOT NULL THEN
                        n := pdp._purge_rows(t, act, ctids);
                    END IF;
                EXCEPTION WHEN OTHERS THEN
                    -- SQLSTATE and message only: a detail could hold a key value.
                    err := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                               'table', t::text, 'sqlstate', SQLSTATE, 'message', SQLERRM));
                    ctids := NULL;
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
                EXIT WHEN ctids IS NULL OR n = 0;
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

CREATE OR REPLACE FUNCTION pdp.open_request(subject text, kind text, jurisdiction text DEFAULT 'KZ',
                                 received_at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record;
    id bigint;
BEGIN
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

CREATE TRIGGER retention_policy_check_period BEFORE INSERT OR UPDATE OF period ON pdp.retention_policy
    FOR EACH ROW EXECUTE FUNCTION pdp._check_period();

COMMENT ON TRIGGER retention_policy_check_period ON pdp.retention_policy IS 'a period must span a positive time however the row is written';

CREATE TRIGGER subject_retention_check_period BEFORE INSERT OR UPDATE OF period ON pdp.subject_retention
    FOR EACH ROW EXECUTE FUNCTION pdp._check_period();

COMMENT ON TRIGGER subject_retention_check_period ON pdp.subject_retention IS 'a period must span a positive time however the row is written';

CREATE TRIGGER request_deadline_check_period BEFORE INSERT OR UPDATE OF period ON pdp.request_deadline
    FOR EACH ROW EXECUTE FUNCTION pdp._check_period();

COMMENT ON TRIGGER request_deadline_check_period ON pdp.request_deadline IS 'a period must span a positive time however the row is written';

REVOKE ALL ON FUNCTION pdp._check_interval(interval, text, interval), pdp._check_period() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION pdp._check_interval(interval, text, interval), pdp._check_period() TO pdp_admin;

DROP FUNCTION pdp._begin_audit_trim();

CREATE FUNCTION pdp._audit_trim_delete(cut_seq bigint) RETURNS bigint
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_trim_delete';

COMMENT ON FUNCTION pdp._audit_trim_delete(bigint) IS
    'deletes the audit entries sealed up to cut_seq and their seals (for pdp.trim_audit_log; the append-only guard is lifted for this call only)';

REVOKE ALL ON FUNCTION pdp._audit_trim_delete(bigint) FROM PUBLIC;

COMMENT ON FUNCTION pdp._set_erasing(boolean) IS
    'lets erasure delete rows of restricted subjects until erasure turns it off, the subtransaction that turned it on aborts, or the transaction ends';

CREATE FUNCTION pdp._md(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.regexp_replace(
             pg_catalog.translate(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                 s, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), E'\r\n', '  '),
             '([\\`*_{}\[\]()#!|~])', '\\\1', 'g') $$;
COMMENT ON FUNCTION pdp._md(text) IS 'escapes text for Markdown: inline HTML as entities, punctuation with a backslash, line breaks as spaces';

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
                                            pdp._md(x->>'expiring_in_30_days'), pdp._md(x->>'expired_not_purged'));
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
                   || '</td><td class="num">' || coalesce(x->>'expiring_in_30_days', '0') || '</td><td class="num">'
                   || coalesce(x->>'expired_not_purged', '0') || '</td></tr>';
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

REVOKE ALL ON FUNCTION pdp._md(text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION pdp._md(text) TO pdp_admin, pdp_auditor;

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

REVOKE ALL ON FUNCTION pdp._request_deadline_defaults(), pdp._request_deadline_is_default(text, text, interval, integer, text), pdp._request_deadline_keep_edits() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION pdp._request_deadline_defaults(),
                          pdp._request_deadline_is_default(text, text, interval, integer, text) TO pdp_admin;
