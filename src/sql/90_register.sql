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
                      FROM pg_catalog.jsonb_array_elements(j->'pending_notices') e), 0) || '</li></ul></section></body></html>';
    RETURN out;
END
$$;
COMMENT ON FUNCTION pdp.report(text) IS
    'the compliance report: register, unclassified findings, consents, retention, holds, requests, notices, audit chain (html, markdown or json)';
