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
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;
COMMENT ON FUNCTION pdp.set_retention(regclass, interval, name, text) IS
    'tags every row with its expiry (anchor plus period, or insertion time plus period) and sets the purge action';

CREATE OR REPLACE FUNCTION pdp.set_subject_retention(period interval, activity_table regclass, activity_column name) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;
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

CREATE OR REPLACE FUNCTION pdp.open_request(subject text, kind text, jurisdiction text DEFAULT 'KZ',
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


-- Citus: refuse what is unsafe on distributed tables (issue 18, step 1)
-- (src/sql/15_citus.sql, and the checks in the entry points below).
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
REVOKE ALL ON FUNCTION pdp._citus_table_kind(regclass), pdp._refuse_on_citus(regclass, text),
                       pdp._citus_skip_purge(regclass, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._citus_table_kind(regclass), pdp._refuse_on_citus(regclass, text),
                          pdp._citus_skip_purge(regclass, bigint) TO pdp_admin;

CREATE OR REPLACE FUNCTION pdp.set_retention(tbl regclass, period interval, anchor_column name DEFAULT NULL,
                                  action text DEFAULT 'delete') RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;
COMMENT ON FUNCTION pdp.set_retention(regclass, interval, name, text) IS
    'tags every row with its expiry (anchor plus period, or insertion time plus period) and sets the purge action';

CREATE OR REPLACE FUNCTION pdp._purge_rows(tbl regclass, action text, ctids tid[]) RETURNS bigint
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

CREATE OR REPLACE FUNCTION pdp._sync_on_write_trigger(tbl regclass, enable boolean) RETURNS void
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

CREATE OR REPLACE FUNCTION pdp.set_column_rule(tbl regclass, col name, rule text, category text DEFAULT NULL)
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;
COMMENT ON FUNCTION pdp.set_column_rule(regclass, name, text, text) IS
    'declares (or replaces) the rule a column gets; refused when the rule''s output does not fit the column';

CREATE OR REPLACE FUNCTION pdp.pseudonymise_on_write(tbl regclass, enable boolean DEFAULT true) RETURNS void
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

CREATE OR REPLACE PROCEDURE pdp.apply_rules(tbl regclass, batch_size integer DEFAULT 10000, restart boolean DEFAULT false)
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

CREATE OR REPLACE FUNCTION pdp._sync_rectification_trigger(tbl regclass) RETURNS void
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

CREATE OR REPLACE FUNCTION pdp.erase_subject(subject text, reason text) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION pdp.protect_table(tbl regclass, force boolean DEFAULT false) RETURNS void
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

-- Visibility core (issue 13): no backend copies consents or restrictions any
-- more.  pdp._visible reads them under each query's snapshot (src/visibility.c),
-- so the invalidation triggers on consent_state and restriction go; the
-- restricted-row trigger reads the registry instead of column names in its
-- arguments, so every protected table's policies and trigger are re-created.
DROP TRIGGER restriction_changed ON pdp.restriction;
DROP TRIGGER restriction_replicated ON pdp.restriction;
DROP TRIGGER consent_state_changed ON pdp.consent_state;
DROP TRIGGER consent_state_replicated ON pdp.consent_state;
COMMENT ON FUNCTION pdp._config_changed() IS
    'trigger: tells every session that purposes or purpose grants changed (at commit)';
COMMENT ON FUNCTION pdp._refuse_restricted() IS
    'trigger: refuses UPDATE and DELETE of rows whose registered subject is restricted';
CREATE OR REPLACE FUNCTION pdp._visibility_sql(tbl regclass) RETURNS text
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
CREATE OR REPLACE FUNCTION pdp.protect_table(tbl regclass, force boolean DEFAULT false) RETURNS void
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
CREATE OR REPLACE FUNCTION pdp._install_protection(tbl regclass, force boolean) RETURNS void
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
CREATE OR REPLACE FUNCTION pdp._sync_protection(tbl regclass) RETURNS void
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
CREATE OR REPLACE FUNCTION pdp.create_masked_view(tbl regclass, view_name text DEFAULT NULL) RETURNS regclass
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
COMMENT ON FUNCTION pdp._visibility_sql(regclass) IS
    'the row test of a protected table, as SQL (NULL when it has no registered subject column)';
COMMENT ON FUNCTION pdp._install_protection(regclass, boolean) IS
    'creates protect_table''s policies and restricted-row trigger (no ownership check, no audit)';
CREATE TYPE pdp.consent_import AS (
    subject        text,
    purpose        text,
    given_at       timestamptz,
    policy_version text,
    evidence       jsonb,
    valid_until    timestamptz
);
CREATE OR REPLACE FUNCTION pdp._import_consents(consents pdp.consent_import[]) RETURNS bigint
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
CREATE OR REPLACE FUNCTION pdp.import_consents(consents pdp.consent_import[]) RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp._import_consents(consents) $$;
CREATE OR REPLACE FUNCTION pdp.import_consents_from(source regclass) RETURNS bigint
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
CREATE OR REPLACE FUNCTION pdp.withdraw_consents(subjects text[], purpose text) RETURNS bigint
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
COMMENT ON TYPE pdp.consent_import IS
    'one consent for pdp.import_consents: subject, purpose, when it was given, policy version, evidence, expiry';
COMMENT ON FUNCTION pdp._import_consents(pdp.consent_import[]) IS
    'set-based core of pdp.import_consents';
COMMENT ON FUNCTION pdp.import_consents(pdp.consent_import[]) IS
    'records many consents at once, all or nothing, each with its history and evidence; one audit entry with the count; returns the count';
COMMENT ON FUNCTION pdp.import_consents_from(regclass) IS
    'import_consents from a table or view with the columns of pdp.consent_import, read with the caller''s rights';
COMMENT ON FUNCTION pdp.withdraw_consents(text[], text) IS
    'withdraws many subjects'' consent to a purpose at once; returns how many had one; one audit entry with the count';
REVOKE ALL ON FUNCTION pdp._visibility_sql(regclass), pdp._install_protection(regclass, boolean),
    pdp._import_consents(pdp.consent_import[]), pdp.import_consents(pdp.consent_import[]),
    pdp.import_consents_from(regclass), pdp.withdraw_consents(text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._install_protection(regclass, boolean), pdp._visibility_sql(regclass),
    pdp.import_consents(pdp.consent_import[]), pdp.import_consents_from(regclass), pdp._import_consents(pdp.consent_import[]),
    pdp.withdraw_consents(text[], text)
TO pdp_admin;

-- Protection guard (issue 14, classes 6 and 8): pdp's policies become
-- RESTRICTIVE (with permissive bases where no other policy permits), each
-- protected table's protection is recorded, DDL that weakens it is refused by
-- an event trigger, and partitions and inheritance children are protected too.
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
CREATE OR REPLACE FUNCTION pdp._protection_state(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(pg_catalog.string_agg(pg_catalog.format('%s %s %s %s using (%s) check (%s)',
                        p.polname, p.polcmd, CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                        p.polroles::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                        pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)), '; ' ORDER BY p.polname), '')
        FROM pg_catalog.pg_policy p
       WHERE p.polrelid OPERATOR(pg_catalog.=) tbl::oid
         AND p.polname IN ('pdp_select', 'pdp_insert', 'pdp_update', 'pdp_delete') $$;
CREATE OR REPLACE FUNCTION pdp._protection_nodes(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(pg_catalog.string_agg(pg_catalog.format('%s %s %s %s %s %s', p.polname, p.polcmd, p.polpermissive,
                        p.polroles::text, p.polqual::text, p.polwithcheck::text), '; ' ORDER BY p.polname), '')
        FROM pg_catalog.pg_policy p
       WHERE p.polrelid OPERATOR(pg_catalog.=) tbl::oid
         AND p.polname IN ('pdp_select', 'pdp_insert', 'pdp_update', 'pdp_delete') $$;
CREATE OR REPLACE FUNCTION pdp._outer_user() RETURNS regrole
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_outer_user';
CREATE OR REPLACE FUNCTION pdp._protection_ddl(active boolean) RETURNS boolean
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_protection_ddl';
CREATE OR REPLACE FUNCTION pdp._require_outer_owner(tbl regclass) RETURNS void
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
CREATE OR REPLACE FUNCTION pdp._visibility_sql(tbl regclass) RETURNS text
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
CREATE OR REPLACE FUNCTION pdp._install_protection(tbl regclass, force boolean) RETURNS void
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
CREATE OR REPLACE FUNCTION pdp._unprotect(tbl regclass) RETURNS boolean
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
CREATE OR REPLACE FUNCTION pdp.unprotect_table(tbl regclass) RETURNS void
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
CREATE OR REPLACE FUNCTION pdp._sync_protection(tbl regclass) RETURNS void
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
CREATE OR REPLACE FUNCTION pdp._guard_protection() RETURNS event_trigger
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
COMMENT ON FUNCTION pdp._protection_state(regclass) IS 'pdp''s policies on a table, as comparable text';
COMMENT ON FUNCTION pdp._protection_nodes(regclass) IS 'pdp''s policies on a table as parsed expressions (OIDs and column numbers)';
COMMENT ON FUNCTION pdp._outer_user() IS 'the role the session acts as, outside SECURITY DEFINER functions';
COMMENT ON FUNCTION pdp._protection_ddl(boolean) IS
    'while pdp''s protection functions change its policies the guard stands aside: sets the switch (NULL reads it), returns its previous value';
COMMENT ON FUNCTION pdp._require_outer_owner(regclass) IS
    'raises unless the role the session acts as owns the table (for functions running as the extension''s owner)';
COMMENT ON FUNCTION pdp._visibility_sql(regclass) IS
    'the row test of a protected table, as SQL: its registered subject columns, or those of its nearest registered ancestor (NULL when none)';
COMMENT ON FUNCTION pdp._install_protection(regclass, boolean) IS
    'creates protect_table''s policies and restricted-row trigger and records them, for the table''s owner (no audit)';
COMMENT ON FUNCTION pdp._unprotect(regclass) IS 'drops the policies, trigger and record of protect_table, for the table''s owner; audited';
COMMENT ON FUNCTION pdp.unprotect_table(regclass) IS
    'removes pdp_ext''s policies and trigger; row-level security is disabled if no other policy remains';
COMMENT ON FUNCTION pdp._guard_protection() IS
    'event trigger: refuses DDL that weakens a protected table''s protection; protects new partitions and children';
CREATE OR REPLACE VIEW pdp.protected_tables AS
SELECT c.oid::regclass AS table_name, c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner_sees_all_unless_forced
  FROM pg_catalog.pg_class c
 WHERE EXISTS (SELECT 1 FROM pdp.protection r WHERE r.tbl::oid OPERATOR(pg_catalog.=) c.oid);
COMMENT ON VIEW pdp.protected_tables IS 'tables protected by pdp_ext; owners and BYPASSRLS roles see all rows unless forced';
CREATE EVENT TRIGGER pdp_guard_protection ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE POLICY', 'ALTER POLICY', 'DROP POLICY',
                 'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER', 'CREATE RULE', 'DROP RULE')
    EXECUTE FUNCTION pdp._guard_protection();
COMMENT ON EVENT TRIGGER pdp_guard_protection IS
    'refuses DDL that switches off a protected table''s protection; protects new partitions and inheritance children';
REVOKE ALL ON FUNCTION pdp._protection_state(regclass), pdp._protection_nodes(regclass), pdp._outer_user(),
    pdp._protection_ddl(boolean), pdp._require_outer_owner(regclass), pdp._guard_protection() FROM PUBLIC;
REVOKE ALL ON pdp.protection FROM PUBLIC;
GRANT SELECT ON pdp.protection TO pdp_admin, pdp_auditor;

-- Escalation: run user-table code as its owner; no direct writes to pdp's tables (issue 14, classes 1 and 2)

CREATE OR REPLACE FUNCTION pdp._exec_as_owner(tbl regclass, sql text) RETURNS SETOF record
LANGUAGE C VOLATILE AS $$MODULE_PATHNAME$$, $$pdp_exec_as_owner$$;

CREATE OR REPLACE FUNCTION pdp._exec_as_owner(tbl regclass, sql text, VARIADIC args "any") RETURNS SETOF record
LANGUAGE C VOLATILE AS $$MODULE_PATHNAME$$, $$pdp_exec_as_owner$$;

CREATE OR REPLACE FUNCTION pdp._caller() RETURNS regrole
LANGUAGE C VOLATILE AS $$MODULE_PATHNAME$$, $$pdp_caller$$;

CREATE OR REPLACE FUNCTION pdp.register_table(tbl regclass, subject_column name, on_erase text DEFAULT 'delete')
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;

CREATE OR REPLACE FUNCTION pdp.unregister_table(tbl regclass, subject_column name DEFAULT NULL)
RETURNS integer
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;

CREATE OR REPLACE FUNCTION pdp.set_column_rule(tbl regclass, col name, rule text, category text DEFAULT NULL)
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;

CREATE OR REPLACE FUNCTION pdp.drop_column_rule(tbl regclass, col name) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;

CREATE OR REPLACE FUNCTION pdp._apply_progress(tbl regclass, op text, keys name[], key text[], n bigint) RETURNS pdp.apply_run
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;

CREATE OR REPLACE FUNCTION pdp.set_retention(tbl regclass, period interval, anchor_column name DEFAULT NULL,
                                  action text DEFAULT 'delete') RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;

CREATE OR REPLACE FUNCTION pdp.drop_retention(tbl regclass) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;

CREATE OR REPLACE FUNCTION pdp.set_subject_retention(period interval, activity_table regclass, activity_column name) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;

CREATE OR REPLACE FUNCTION pdp._sample_column(tbl regclass, col name, pct float8, sample_rows integer,
                                   OUT n_sampled bigint, OUT top_k text, OUT top_n bigint)
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;

CREATE OR REPLACE FUNCTION pdp._subject_column_check() RETURNS trigger
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

CREATE OR REPLACE FUNCTION pdp._api_register_table(tbl regclass, subject_column name, on_erase text)
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

CREATE OR REPLACE FUNCTION pdp._api_unregister_table(tbl regclass, subject_column name)
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

CREATE OR REPLACE FUNCTION pdp._require_owner(tbl regclass) RETURNS void
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

CREATE OR REPLACE FUNCTION pdp._column_rule_check() RETURNS trigger
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

CREATE OR REPLACE FUNCTION pdp._api_set_column_rule(tbl regclass, col name, rule text, category text)
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

CREATE OR REPLACE FUNCTION pdp._api_drop_column_rule(tbl regclass, col name)
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

CREATE OR REPLACE FUNCTION pdp._api__apply_progress(tbl regclass, op text, keys name[], key text[], n bigint) RETURNS pdp.apply_run
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

CREATE OR REPLACE FUNCTION pdp.create_masked_view(tbl regclass, view_name text DEFAULT NULL) RETURNS regclass
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

CREATE OR REPLACE FUNCTION pdp._api_set_retention(tbl regclass, period interval, anchor_column name, action text)
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

CREATE OR REPLACE FUNCTION pdp._api_drop_retention(tbl regclass)
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

CREATE OR REPLACE FUNCTION pdp._api_set_subject_retention(period interval, activity_table regclass, activity_column name)
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

CREATE OR REPLACE FUNCTION pdp._expired_rows_sql(tbl regclass, reason text, lock boolean) RETURNS text
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

CREATE OR REPLACE FUNCTION pdp._find_expired(tbl regclass, reason text, lock boolean, batch_size integer, after timestamptz,
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

CREATE OR REPLACE FUNCTION pdp._purge_rows(tbl regclass, action text, ctids tid[]) RETURNS bigint
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

CREATE OR REPLACE FUNCTION pdp._purge_batch(tbl regclass, reason text, batch_size integer, after timestamptz, lock boolean,
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

CREATE OR REPLACE FUNCTION pdp._collect_inactive_subjects() RETURNS bigint
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

CREATE OR REPLACE FUNCTION pdp.export_subject(subject text) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION pdp.erase_subject(subject text, reason text) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION pdp._expiry_counts(tbl regclass, OUT soon bigint, OUT overdue bigint)
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

CREATE OR REPLACE FUNCTION pdp._api__sample_column(tbl regclass, col name, pct float8, sample_rows integer,
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

CREATE OR REPLACE FUNCTION pdp.discover(schema_name name DEFAULT 'public', sample_rows integer DEFAULT 1000)
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

CREATE OR REPLACE PROCEDURE pdp.apply_rules(tbl regclass, batch_size integer DEFAULT 10000, restart boolean DEFAULT false)
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

COMMENT ON FUNCTION pdp._exec_as_owner(regclass, text) IS
    'runs one statement on a table as its owner (security-restricted); refused unless it is a table, or unless the caller owns it';

COMMENT ON FUNCTION pdp._exec_as_owner(regclass, text, "any") IS
    'runs one statement on a table as its owner (security-restricted), with the arguments as its parameters $1, $2, ...';

COMMENT ON FUNCTION pdp._caller() IS
    'the role that called the pdp API function now running, or else the current user (ownership checks use it)';

COMMENT ON FUNCTION pdp._api_register_table(regclass, name, text) IS
    'pdp.register_table''s implementation, run as pdp_ext''s owner (callable by no role)';

COMMENT ON FUNCTION pdp._api_unregister_table(regclass, name) IS
    'pdp.unregister_table''s implementation, run as pdp_ext''s owner (callable by no role)';

COMMENT ON FUNCTION pdp._require_owner(regclass) IS 'raises unless the caller (pdp._caller()) owns the table';

COMMENT ON FUNCTION pdp._api_set_column_rule(regclass, name, text, text) IS
    'pdp.set_column_rule''s implementation, run as pdp_ext''s owner (callable by no role)';

COMMENT ON FUNCTION pdp._api_drop_column_rule(regclass, name) IS
    'pdp.drop_column_rule''s implementation, run as pdp_ext''s owner (callable by no role)';

COMMENT ON FUNCTION pdp._apply_progress(regclass, text, name[], text[], bigint) IS
    'reads (locked) or records the progress of pdp.apply_rules on a table the caller owns';

COMMENT ON FUNCTION pdp._api__apply_progress(regclass, text, name[], text[], bigint) IS
    'pdp._apply_progress''s implementation, run as pdp_ext''s owner (callable by no role)';

COMMENT ON FUNCTION pdp._api_set_retention(regclass, interval, name, text) IS
    'pdp.set_retention''s implementation, run as pdp_ext''s owner (callable by no role)';

COMMENT ON FUNCTION pdp._api_drop_retention(regclass) IS
    'pdp.drop_retention''s implementation, run as pdp_ext''s owner (callable by no role)';

COMMENT ON FUNCTION pdp._api_set_subject_retention(interval, regclass, name) IS
    'pdp.set_subject_retention''s implementation, run as pdp_ext''s owner (callable by no role)';

COMMENT ON FUNCTION pdp._find_expired(regclass, text, boolean, integer, timestamptz) IS
    'a batch of a table''s expired, unheld rows (ctids and position), or with a NULL batch size their count; read as the table''s owner';

COMMENT ON FUNCTION pdp._purge_batch(regclass, text, integer, timestamptz, boolean) IS
    'finds and purges one batch of a table''s expired, unheld rows; statements on the table run as its owner';

COMMENT ON FUNCTION pdp._sample_column(regclass, name, float8, integer) IS
    'samples and classifies a column''s values as the table''s owner, for a caller who may read the table';

COMMENT ON FUNCTION pdp._api__sample_column(regclass, name, float8, integer) IS
    'pdp._sample_column''s implementation, run as pdp_ext''s owner (callable by no role)';

COMMENT ON FUNCTION pdp._expiry_counts(regclass) IS
    'rows of an anchor-retained table expiring within 30 days and already expired, counted as the table''s owner';

REVOKE ALL ON FUNCTION pdp._exec_as_owner(regclass, text), pdp._exec_as_owner(regclass, text, "any"), pdp._caller(),
    pdp._api_register_table(regclass, name, text), pdp._api_unregister_table(regclass, name),
    pdp._api_set_column_rule(regclass, name, text, text), pdp._api_drop_column_rule(regclass, name),
    pdp._apply_progress(regclass, text, name[], text[], bigint), pdp._api__apply_progress(regclass, text, name[], text[], bigint),
    pdp._api_set_retention(regclass, interval, name, text), pdp._api_drop_retention(regclass),
    pdp._api_set_subject_retention(interval, regclass, name),
    pdp._find_expired(regclass, text, boolean, integer, timestamptz), pdp._purge_batch(regclass, text, integer, timestamptz, boolean),
    pdp._expiry_counts(regclass), pdp._sample_column(regclass, name, float8, integer), pdp._api__sample_column(regclass, name, float8, integer)
FROM PUBLIC;
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

-- Internals, keyed functions, canonical subjects, roles (issue 14, classes 4, 5, 7, 11, 13)
-- (src/sql/00_roles.sql, 10_registry.sql, 30_pseudonym.sql, 50_consent.sql,
-- 70_retention.sql, 80_rights.sql, 90_register.sql, 99_privileges.sql).

-- The role that computes keyed tokens.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'pdp_pseudonymiser') THEN
        CREATE ROLE pdp_pseudonymiser NOLOGIN;
    END IF;
END
$roles$;

-- Class 4: the audit trail's subject pseudonym, under a domain no SQL
-- function reaches.
CREATE FUNCTION pdp._subject_pseudonym(subject text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'pdp_subject_pseudonym';
COMMENT ON FUNCTION pdp._subject_pseudonym(text) IS
    'internal: the pseudonym under which the audit trail and pdp.erasure know a subject; callable only from pdp_ext''s own functions';
REVOKE ALL ON FUNCTION pdp._subject_pseudonym(text) FROM PUBLIC;
COMMENT ON COLUMN pdp.audit_log.subject_pseudonym IS 'the subject concerned, as pdp._subject_pseudonym(subject) (an internal key domain), never the identifier';
COMMENT ON COLUMN pdp.erasure.subject_pseudonym IS 'pdp._subject_pseudonym(subject), the audit trail''s pseudonym of the subject';

-- Class 5: keyed functions are pdp_pseudonymiser's, not PUBLIC's.
REVOKE EXECUTE ON FUNCTION
    pdp.pseudonym(text, text), pdp.pseudonym(bigint, text), pdp.pseudonym(uuid, text),
    pdp.pseudo_email(text, boolean), pdp.pseudo_phone(text), pdp.pseudo_iin(text, boolean),
    pdp.pseudo_name(text), pdp.pseudo_ip(inet),
    pdp.encrypt(text, text), pdp.fpe_encrypt(text, text, integer, integer), pdp.fpe_iin(text, integer)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    pdp.pseudonym(text, text), pdp.pseudonym(bigint, text), pdp.pseudonym(uuid, text),
    pdp.pseudo_email(text, boolean), pdp.pseudo_phone(text), pdp.pseudo_iin(text, boolean),
    pdp.pseudo_name(text), pdp.pseudo_ip(inet),
    pdp.encrypt(text, text), pdp.fpe_encrypt(text, text, integer, integer), pdp.fpe_iin(text, integer)
TO pdp_pseudonymiser;

CREATE OR REPLACE FUNCTION pdp.set_column_rule(tbl regclass, col name, rule text, category text DEFAULT NULL)
RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;

-- Class 7: one canonical form per subject.
CREATE FUNCTION pdp._canonical_subject(subject text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pdp_canonical_subject';
COMMENT ON FUNCTION pdp._canonical_subject(text) IS
    'the canonical text form of a subject for the registered subject columns'' types; 22P02 when it has none of them';
REVOKE ALL ON FUNCTION pdp._canonical_subject(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._canonical_subject(text) TO pdp_admin, pdp_auditor;
CREATE FUNCTION pdp._canonical_subject_or_null(subject text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pdp_canonical_subject_or_null';
COMMENT ON FUNCTION pdp._canonical_subject_or_null(text) IS
    'pdp._canonical_subject, but NULL for a subject of none of the registered types (bulk entry points name the row)';
REVOKE ALL ON FUNCTION pdp._canonical_subject_or_null(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION pdp.grant_consent(subject text, purpose text, policy_version text DEFAULT NULL,
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
CREATE OR REPLACE FUNCTION pdp.withdraw_consent(subject text, purpose text) RETURNS boolean
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
CREATE OR REPLACE FUNCTION pdp._import_consents(consents pdp.consent_import[]) RETURNS bigint
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
CREATE OR REPLACE FUNCTION pdp.withdraw_consents(subjects text[], purpose text) RETURNS bigint
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
CREATE OR REPLACE FUNCTION pdp.has_consent(subject text, purpose text, at timestamptz DEFAULT NULL) RETURNS boolean
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
CREATE OR REPLACE FUNCTION pdp.consent_history(subject text)
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
CREATE OR REPLACE FUNCTION pdp.restrict_subject(subject text, reason text) RETURNS void
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
CREATE OR REPLACE FUNCTION pdp.lift_restriction(subject text) RETURNS boolean
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
CREATE OR REPLACE FUNCTION pdp.place_hold(subject text, reason text, until timestamptz DEFAULT NULL) RETURNS bigint
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
CREATE OR REPLACE FUNCTION pdp.record_disclosure(subject text, recipient text, purpose text, categories text[]) RETURNS bigint
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
CREATE OR REPLACE FUNCTION pdp.open_request(subject text, kind text, jurisdiction text DEFAULT 'KZ',
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
CREATE OR REPLACE FUNCTION pdp.export_subject(subject text) RETURNS jsonb
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
CREATE OR REPLACE FUNCTION pdp.erase_subject(subject text, reason text) RETURNS jsonb
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

-- Subjects stored in another spelling become canonical where that is safe:
-- a subject that is not canonical for the registered types is left as it
-- is, and where two spellings of one learner meet under a key, the newer
-- consent and either restriction are kept.  The audit trail is append-only
-- and hash-chained, and erasure receipts know subjects only by pseudonym:
-- those keep what they recorded.
DO $canon$
DECLARE
    r record;
    c text;
BEGIN
    ALTER TABLE pdp.consent_event DISABLE TRIGGER USER;
    ALTER TABLE pdp.restriction_event DISABLE TRIGGER USER;
    FOR r IN SELECT DISTINCT x.subject FROM (
                 SELECT subject FROM pdp.consent_event UNION SELECT subject FROM pdp.consent_state
                 UNION SELECT subject FROM pdp.restriction UNION SELECT subject FROM pdp.restriction_event
                 UNION SELECT subject FROM pdp.hold WHERE subject IS NOT NULL
                 UNION SELECT subject FROM pdp.subject_request UNION SELECT subject FROM pdp.disclosure
                 UNION SELECT subject FROM pdp.rectification_notice) x
              WHERE x.subject !~ '^(0|-?[1-9][0-9]{0,18}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$' LOOP
        BEGIN
            c := pdp._canonical_subject(r.subject);
        EXCEPTION WHEN invalid_text_representation THEN
            CONTINUE;
        END;
        CONTINUE WHEN c OPERATOR(pg_catalog.=) r.subject;
        DELETE FROM pdp.consent_state s WHERE s.subject OPERATOR(pg_catalog.=) c
           AND EXISTS (SELECT 1 FROM pdp.consent_state o WHERE o.subject OPERATOR(pg_catalog.=) r.subject
                          AND o.purpose OPERATOR(pg_catalog.=) s.purpose AND o.event_id > s.event_id);
        DELETE FROM pdp.consent_state o WHERE o.subject OPERATOR(pg_catalog.=) r.subject
           AND EXISTS (SELECT 1 FROM pdp.consent_state s WHERE s.subject OPERATOR(pg_catalog.=) c
                          AND s.purpose OPERATOR(pg_catalog.=) o.purpose);
        UPDATE pdp.consent_state SET subject = c WHERE subject OPERATOR(pg_catalog.=) r.subject;
        DELETE FROM pdp.restriction o WHERE o.subject OPERATOR(pg_catalog.=) r.subject
           AND EXISTS (SELECT 1 FROM pdp.restriction s WHERE s.subject OPERATOR(pg_catalog.=) c);
        UPDATE pdp.restriction SET subject = c WHERE subject OPERATOR(pg_catalog.=) r.subject;
        UPDATE pdp.consent_event SET subject = c WHERE subject OPERATOR(pg_catalog.=) r.subject;
        UPDATE pdp.restriction_event SET subject = c WHERE subject OPERATOR(pg_catalog.=) r.subject;
        UPDATE pdp.hold SET subject = c WHERE subject OPERATOR(pg_catalog.=) r.subject;
        UPDATE pdp.subject_request SET subject = c WHERE subject OPERATOR(pg_catalog.=) r.subject;
        UPDATE pdp.disclosure SET subject = c WHERE subject OPERATOR(pg_catalog.=) r.subject;
        UPDATE pdp.rectification_notice SET subject = c WHERE subject OPERATOR(pg_catalog.=) r.subject;
    END LOOP;
    ALTER TABLE pdp.consent_event ENABLE TRIGGER USER;
    ALTER TABLE pdp.restriction_event ENABLE TRIGGER USER;
END
$canon$;

-- Class 13: partitions of protected tables, and the report for the DPO.
GRANT EXECUTE ON FUNCTION pdp._refuse_restricted() TO PUBLIC;
CREATE OR REPLACE FUNCTION pdp.discover(schema_name name DEFAULT 'public', sample_rows integer DEFAULT 1000)
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
CREATE OR REPLACE FUNCTION pdp._report_counts() RETURNS jsonb
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
REVOKE ALL ON FUNCTION pdp._report_counts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._report_counts() TO pdp_admin, pdp_auditor;
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

-- Last: re-create every protected table's policies and trigger (restrictive
-- policies, the registry-reading trigger) and record them.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT c.oid::regclass AS tbl, c.relforcerowsecurity AS forced
               FROM pg_catalog.pg_class c
              WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                             WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid
                               AND p.polname OPERATOR(pg_catalog.=) 'pdp_select') LOOP
        -- The old policies and trigger go first (no record guards them yet),
        -- so re-creating them is not an unprotection in the audit trail.
        EXECUTE pg_catalog.format('DROP POLICY IF EXISTS pdp_select ON %1$s; DROP POLICY IF EXISTS pdp_insert ON %1$s; '
                                  'DROP POLICY IF EXISTS pdp_update ON %1$s; DROP POLICY IF EXISTS pdp_delete ON %1$s; '
                                  'DROP TRIGGER IF EXISTS pdp_refuse_restricted ON %1$s', t.tbl);
        PERFORM pdp._install_protection(t.tbl, t.forced);
    END LOOP;
END
$$;

-- Audit: durable entries, keyed chain, sealing in the background (issue 15)

CREATE FUNCTION pdp._audit_durable(action text, object text, subject text DEFAULT NULL, details jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_audit_durable_write';
COMMENT ON FUNCTION pdp._audit_durable(text, text, text, jsonb) IS
    'writes an audit entry through the audit worker and returns once it is committed, whatever the caller''s transaction does; fails when it cannot be';
REVOKE ALL ON FUNCTION pdp._audit_durable(text, text, text, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION pdp.export_subject(subject text) RETURNS jsonb
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

COMMENT ON FUNCTION pdp._audit(text, text, text, jsonb) IS
    'writes an audit entry (the subject as its pseudonym, the caller as actor); the audit worker seals it in the background';
