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
    set_by        name        NOT NULL DEFAULT CURRENT_USER,
    never_values  text[]      NOT NULL DEFAULT '{}',
    fallback_column name
);
COMMENT ON TABLE pdp.retention_policy IS 'retention per table; read pdp.retention_policies';
COMMENT ON COLUMN pdp.retention_policy.never_values IS 'anchor (and fallback) values that mean "never", like 0 in an epoch-seconds column; NULL always does';
COMMENT ON COLUMN pdp.retention_policy.fallback_column IS 'the column the period runs from where the anchor is never (e.g. timecreated); NULL: none';
COMMENT ON COLUMN pdp.retention_policy.tbl IS 'the table';
COMMENT ON COLUMN pdp.retention_policy.period IS 'how long a row is kept after its anchor';
COMMENT ON COLUMN pdp.retention_policy.anchor_column IS 'the column the period runs from; NULL: the insertion time';
COMMENT ON COLUMN pdp.retention_policy.action IS 'delete, or anonymise (keep the row, its ruled and declared columns made unlinkable: pdp.set_anonymisation)';
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
    set_by          name        NOT NULL DEFAULT CURRENT_USER,
    never_values    text[]      NOT NULL DEFAULT '{}',
    fallback_column name
);
COMMENT ON TABLE pdp.subject_retention IS 'inactivity retention: a subject''s rows expire together after this long without activity';
COMMENT ON COLUMN pdp.subject_retention.singleton IS 'there is at most one row';
COMMENT ON COLUMN pdp.subject_retention.period IS 'how long after the last activity';
COMMENT ON COLUMN pdp.subject_retention.activity_table IS 'the registered table that records activity';
COMMENT ON COLUMN pdp.subject_retention.activity_column IS 'its column holding the activity time';
COMMENT ON COLUMN pdp.subject_retention.set_at IS 'when it was set';
COMMENT ON COLUMN pdp.subject_retention.set_by IS 'who set it';
COMMENT ON COLUMN pdp.subject_retention.never_values IS 'activity (and fallback) values that mean "never", like Moodle''s lastaccess = 0; NULL always does';
COMMENT ON COLUMN pdp.subject_retention.fallback_column IS 'the column of the activity table used where the activity is never (e.g. timecreated); NULL: none';
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
    run_by      name        NOT NULL DEFAULT SESSION_USER,
    max_share   real,
    held_back   jsonb       NOT NULL DEFAULT '[]'
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
COMMENT ON COLUMN pdp.purge_run.max_share IS 'pdp.purge_max_share in force for the run';
COMMENT ON COLUMN pdp.purge_run.held_back IS 'what the safety valve (pdp.purge_max_share) kept the run from removing: per table, or the inactive subjects, with the counts (never a value)';
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

-- The expiry expression of an anchored table's retention, which its expiry
-- index and its purges share (the planner matches them): the anchor plus
-- the period, where an anchor value in never_values counts as NULL (never),
-- and where the anchor is never, the fallback column plus the period.  Only
-- columns and literals of the policy: an IMMUTABLE expression.  NULL when
-- the table has no anchored retention.
CREATE FUNCTION pdp._retention_expiry_sql(tbl regclass) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    c name;
    typ regtype;
    nv text[];
    part text;
    parts text[] := '{}';
BEGIN
    SELECT * INTO p FROM pdp.retention_policy r WHERE r.tbl OPERATOR(pg_catalog.=) _retention_expiry_sql.tbl;
    IF NOT FOUND OR p.anchor_column IS NULL THEN
        RETURN NULL;
    END IF;
    IF pg_catalog.cardinality(p.never_values) = 0 AND p.fallback_column IS NULL THEN
        RETURN pdp._expiry_expr(p.anchor_column, p.period);   -- as 0.3 wrote it: existing indexes still match
    END IF;
    FOREACH c IN ARRAY ARRAY[p.anchor_column, p.fallback_column] LOOP
        CONTINUE WHEN c IS NULL;
        SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname OPERATOR(pg_catalog.=) c AND NOT a.attisdropped;
        nv := pdp._never_values_for(p.never_values, typ);
        part := CASE WHEN pg_catalog.cardinality(nv) = 0 THEN pg_catalog.format('%I', c)
                     ELSE pg_catalog.format('CASE WHEN %1$I IN (%2$s) THEN NULL ELSE %1$I END', c,
                                            (SELECT pg_catalog.string_agg(pg_catalog.format('%L::%s', v, typ), ', ') FROM pg_catalog.unnest(nv) v))
                END;
        parts := parts || pg_catalog.format('pdp._expiry(%s, %L::interval)', part, p.period::text);
    END LOOP;
    RETURN CASE WHEN pg_catalog.cardinality(parts) = 1 THEN parts[1]
                ELSE pg_catalog.format('COALESCE(%s)', pg_catalog.array_to_string(parts, ', ')) END;
END
$$;
COMMENT ON FUNCTION pdp._retention_expiry_sql(regclass) IS
    'the expiry expression of a table''s anchored retention (never values and fallback included), which its index and purges share';

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
                  HINT = 'Retention without an anchor column tags rows by primary key; give it an anchor column, or a one-column key.';
    END IF;
    RETURN k;
END
$$;
COMMENT ON FUNCTION pdp._single_key(regclass) IS 'a table''s single-column primary key, or an error';

-- SQL text (on alias t) of a row's primary key in text form: the key
-- column's text for a one-column key (as pdp.retention_tag and
-- pdp.anonymised_row have always held it), ROW(...)::text for a composite
-- key; NULL for a table without a primary key.  Purge, erasure and receipts
-- need no one-column key (issue 14, class 6).
CREATE FUNCTION pdp._row_key_sql(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.count(*) = 1 THEN pg_catalog.format('t.%I::text', pg_catalog.min(a.attname))
                WHEN pg_catalog.count(*) > 1
                THEN 'ROW(' || pg_catalog.string_agg(pg_catalog.format('t.%I', a.attname), ', ' ORDER BY k.i) || ')::text' END
      FROM pg_catalog.pg_index x
      CROSS JOIN LATERAL pg_catalog.unnest(x.indkey::smallint[]) WITH ORDINALITY k(attnum, i)
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
     WHERE x.indrelid OPERATOR(pg_catalog.=) tbl::oid AND x.indisprimary
$$;
COMMENT ON FUNCTION pdp._row_key_sql(regclass) IS 'SQL of a row''s primary key as text (one column or composite), NULL without one';

-- The same, or an error saying why a row key is needed.
CREATE FUNCTION pdp._require_row_key_sql(tbl regclass) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text := pdp._row_key_sql(tbl);
BEGIN
    IF k IS NULL THEN
        RAISE EXCEPTION 'table "%" needs a primary key', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Anonymising purges record the rows they anonymised by primary key.';
    END IF;
    RETURN k;
END
$$;
COMMENT ON FUNCTION pdp._require_row_key_sql(regclass) IS 'pdp._row_key_sql, or an error when the table has no primary key';

CREATE FUNCTION pdp.set_retention(tbl regclass, period interval, anchor_column name DEFAULT NULL,
                                  action text DEFAULT 'delete', never_values text[] DEFAULT NULL,
                                  fallback_column name DEFAULT NULL) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.set_retention(regclass, interval, name, text, text[], name) IS
    'tags every row with its expiry (anchor plus period, or insertion time plus period) and sets the purge action; '
    'anchor values in never_values (and NULL) mean never and fall back to fallback_column';

CREATE FUNCTION pdp._api_set_retention(tbl regclass, period interval, anchor_column name, action text,
                                       never_values text[], fallback_column name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype;
    expr text;
    idx name;
    k name;
    zeros bigint;
    ftyp regtype;
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
    IF action = 'anonymise' AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) _api_set_retention.tbl)
       AND NOT EXISTS (SELECT 1 FROM pdp.anonymise_column x WHERE x.tbl OPERATOR(pg_catalog.=) _api_set_retention.tbl) THEN
        RAISE EXCEPTION 'table "%" has no column rules to anonymise with', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Declare rules with pdp.set_column_rule, or anonymisations with pdp.set_anonymisation, first.';
    END IF;
    -- An anonymised row names nobody: a NOT NULL column that owns its rows
    -- (on_erase delete) has no value that does.
    IF action = 'anonymise' AND EXISTS (SELECT 1 FROM pdp.subject_column s
                                          JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid
                                                             AND a.attnum OPERATOR(pg_catalog.=) s.attnum
                                         WHERE s.tbl OPERATOR(pg_catalog.=) _api_set_retention.tbl
                                           AND s.on_erase = 'delete' AND a.attnotnull) THEN
        RAISE EXCEPTION 'table "%" cannot be anonymised: a subject column is NOT NULL and owns its rows', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Purge the table with action delete, or register the column with on_erase set_value and an erase value.';
    END IF;
    IF anchor_column IS NULL THEN
        k := pdp._single_key(tbl);   -- the tagging trigger records rows by it
    END IF;
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
        IF fallback_column IS NOT NULL THEN
            IF fallback_column OPERATOR(pg_catalog.=) anchor_column THEN
                RAISE EXCEPTION 'the fallback column must differ from the anchor column' USING ERRCODE = 'invalid_parameter_value';
            END IF;
            ftyp := pdp._anchor_type(tbl, fallback_column, 'fallback');
        END IF;
        never_values := pdp._checked_never_values(never_values, typ, ftyp, 'anchor');
        -- Epoch seconds: 0 is 1 January 1970, which applications often write
        -- for "not yet".  Unless 0 means never, say so rather than purge
        -- those rows silently.
        IF typ IN ('integer'::regtype, 'bigint'::regtype) AND NOT '0' OPERATOR(pg_catalog.=) ANY (never_values) THEN
            SELECT x.n INTO zeros FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                'SELECT pg_catalog.count(*) FROM %s t WHERE t.%I OPERATOR(pg_catalog.=) 0', tbl, anchor_column)) AS x(n bigint);
            IF zeros > 0 THEN
                RAISE WARNING 'anchor column "%" of table "%" holds 0 in % rows, read as 1 January 1970: they expire at once',
                              anchor_column, pdp._relname(tbl), zeros
                    USING HINT = 'If 0 means "never" there, say so: never_values => ''{0}'' (a NULL anchor never expires either). '
                                 'A purge that would remove more than pdp.purge_max_share of the table is held back.';
            END IF;
        END IF;
    ELSIF never_values IS NOT NULL OR fallback_column IS NOT NULL THEN
        RAISE EXCEPTION 'never_values and fallback_column need an anchor column' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Without an anchor a row expires from when it was written, which is never "never".';
    END IF;

    PERFORM pdp._drop_retention_objects(tbl);
    INSERT INTO pdp.retention_policy (tbl, period, anchor_column, action, set_by, never_values, fallback_column)
    VALUES (tbl, period, anchor_column, action, pg_catalog.pg_get_userbyid(pdp._caller()), coalesce(never_values, '{}'), fallback_column)
    ON CONFLICT ON CONSTRAINT retention_policy_pkey DO UPDATE
       SET period = EXCLUDED.period, anchor_column = EXCLUDED.anchor_column, action = EXCLUDED.action,
           set_at = pg_catalog.now(), set_by = EXCLUDED.set_by,
           never_values = EXCLUDED.never_values, fallback_column = EXCLUDED.fallback_column;

    IF anchor_column IS NOT NULL THEN
        -- The expiry index is the tag.  An index with the same expression made
        -- beforehand (CREATE INDEX CONCURRENTLY on a large table) is reused.
        expr := pdp._retention_expiry_sql(tbl);
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
                       pg_catalog.jsonb_build_object('period', period::text, 'anchor', anchor_column, 'action', action,
                                                     'never_values', never_values, 'fallback', fallback_column));
END
$$;
COMMENT ON FUNCTION pdp._api_set_retention(regclass, interval, name, text, text[], name) IS
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
       p.action, p.set_at, p.set_by, p.never_values, p.fallback_column
  FROM pdp.retention_policy p;
COMMENT ON VIEW pdp.retention_policies IS 'retention per table';

CREATE FUNCTION pdp.set_subject_retention(period interval, activity_table regclass, activity_column name,
                                          never_values text[] DEFAULT NULL, fallback_column name DEFAULT NULL) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.set_subject_retention(interval, regclass, name, text[], name) IS
    'a subject''s rows in every registered table expire together when their last activity is older than period; '
    'activity values in never_values (and NULL) mean never and fall back to fallback_column';

-- The type of a column of a table usable as a time anchor, or an error.
CREATE FUNCTION pdp._anchor_type(tbl regclass, col name, what text) RETURNS regtype
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

-- Those of a list of "never" values that are values of a type (the others
-- apply to a column of another type).
CREATE FUNCTION pdp._never_values_for(never_values text[], typ regtype) RETURNS text[]
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

-- A table's or the subjects' list of "never" values, checked against the
-- anchor (or activity) column's type and the fallback column's: the list
-- given, or by default '{0}' where either is an epoch-seconds integer
-- (nobody's data dates from 1 January 1970; applications write 0 for "not
-- yet").  An error names the rule a value failed, never the value.
CREATE FUNCTION pdp._checked_never_values(never_values text[], typ regtype, ftyp regtype, what text) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text;
BEGIN
    IF never_values IS NULL THEN
        RETURN CASE WHEN typ IN ('integer'::regtype, 'bigint'::regtype)
                      OR ftyp IN ('integer'::regtype, 'bigint'::regtype) THEN '{0}'::text[] ELSE '{}'::text[] END;
    END IF;
    IF pg_catalog.array_position(never_values, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'never_values must not contain NULL' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'NULL always means never; list only the other values that do, e.g. ''{0}''.';
    END IF;
    FOREACH v IN ARRAY never_values LOOP
        IF pg_catalog.cardinality(pdp._never_values_for(ARRAY[v], typ)) = 0
           AND (ftyp IS NULL OR pg_catalog.cardinality(pdp._never_values_for(ARRAY[v], ftyp)) = 0) THEN
            RAISE EXCEPTION 'a value in never_values is not a value of the % or fallback column''s type', what
                USING ERRCODE = 'invalid_text_representation',
                      HINT = pg_catalog.format('The %s column is %s%s.', what, typ,
                                               CASE WHEN ftyp IS NOT NULL THEN ', the fallback column ' || ftyp ELSE '' END);
        END IF;
    END LOOP;
    RETURN never_values;
END
$$;
COMMENT ON FUNCTION pdp._checked_never_values(text[], regtype, regtype, text) IS
    'a list of "never" values checked against the anchor and fallback columns'' types, or the default (''{0}'' for epoch seconds)';

CREATE FUNCTION pdp._api_set_subject_retention(period interval, activity_table regclass, activity_column name,
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

-- System subjects --------------------------------------------------------------

-- Accounts an application needs to work (Moodle's guest, the site
-- administrators, service accounts): never purged, whatever their activity.
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

CREATE FUNCTION pdp.declare_system_subject(subject text, reason text) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.declare_system_subject(text, text) IS
    'declares a system subject (a guest, an administrator, a service account): a purge never removes its rows';

CREATE FUNCTION pdp._api_declare_system_subject(subject text, reason text)
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

CREATE FUNCTION pdp.drop_system_subject(subject text) RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_system_subject(text) IS 'makes a system subject an ordinary one again; false if it was not one';

CREATE FUNCTION pdp._api_drop_system_subject(subject text)
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
-- It returns each row's ctid, its tableoid (a ctid is unique only within
-- one partition or inheritance child) and its position pos (the expiry for
-- anchored retention, else NULL).  $2 is the last batch's highest position: the scan
-- resumes there instead of walking again, batch after batch, over the index
-- entries of rows the earlier batches removed.  Ties at $2 are seen again,
-- so none is skipped; '-infinity' starts from the beginning.  The statement
-- reads only the table, because it runs as the table's owner
-- (pdp._exec_as_owner): pdp's state comes in as parameters, $3 the held
-- subjects, $4 the restricted subjects, $5 the keys of expired tagged rows
-- (retention without an anchor) or the inactive subjects (inactivity), $6
-- the keys of rows already anonymised.  pdp._find_expired fills them in.
CREATE FUNCTION pdp._expired_where_sql(tbl regclass, reason text, OUT cond text, OUT order_by text, OUT pos text,
                                       OUT pos_max text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    k name;
    guard text;
BEGIN
    pos := 'NULL::timestamptz';
    pos_max := 'NULL::timestamptz';
    IF reason = 'retention' THEN
        SELECT * INTO p FROM pdp.retention_policy r WHERE r.tbl OPERATOR(pg_catalog.=) _expired_where_sql.tbl;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF p.anchor_column IS NOT NULL THEN
            -- The same expression as the expiry index, so the scan is a range scan of it.
            order_by := pdp._retention_expiry_sql(tbl);
            cond := order_by || ' OPERATOR(pg_catalog.<) pg_catalog.now() AND '
                    || order_by || ' OPERATOR(pg_catalog.>=) $2';
            IF pg_catalog.cardinality(p.never_values) = 0 AND p.fallback_column IS NULL THEN
                -- The position is the anchor; the batch's is the expiry of
                -- its greatest one (the expiry grows with the anchor), so the
                -- expiry is not computed again for every row.
                pos := pg_catalog.format('t.%I', p.anchor_column);
                pos_max := pg_catalog.format('pdp._expiry(pg_catalog.max(x.pos), %L::interval)', p.period::text);
            ELSE
                pos := order_by;
                pos_max := 'pg_catalog.max(x.pos)';
            END IF;
        ELSE
            k := pdp._single_key(tbl);   -- tagged rows: set_retention required one
            cond := pg_catalog.format('t.%I::text OPERATOR(pg_catalog.=) ANY ($5)', k);
            order_by := pg_catalog.format('t.%I', k);
        END IF;
    ELSE
        IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = 'pdp_inactive_subjects'
                         AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
                         AND pg_catalog.pg_get_userbyid(c.relowner) OPERATOR(pg_catalog.=) CURRENT_USER) THEN
            RETURN;
        END IF;
        -- An anonymised table with no delete column: its inactive subjects'
        -- rows are theirs through set_null or set_value columns, and cutting
        -- those links (pdp._cut_inactive_links) is what anonymises them, as
        -- erasure does it: a row then naming nobody gets the anonymisers, a
        -- row still naming an active subject stays theirs (a grade keeps its
        -- active grader), and a table with nothing declared to anonymise
        -- with (a post whose only personal column is its author) is cut.
        IF pdp._purge_action(tbl) = 'anonymise'
           AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _expired_where_sql.tbl
                             AND s.on_erase = 'delete') THEN
            RETURN;
        END IF;
        -- An inactive subject's rows are those they own (pdp._own_columns):
        -- a learner's grade is not expired because its grader is inactive.
        cond := pdp._owned_by_sql(tbl, '$5');
        order_by := coalesce(pdp._row_key_sql(tbl), 't.ctid');
    END IF;
    -- Held subjects' rows stay: those where a held subject is in an own
    -- column (a hold keeps the subject's data, not every row naming them).
    -- Restricted subjects' rows stay wherever they are named (restriction
    -- bars erasure too, GDPR Art. 18(1)(b)).  The sets are constants of the
    -- statement, so the planner hashes them once per batch instead of
    -- probing per row.
    SELECT pg_catalog.string_agg(pg_catalog.format(
               ' AND NOT (%s%s)', pdp._cell_in_sql(_expired_where_sql.tbl, s.col, '$4'),
               CASE WHEN s.col IN (SELECT o.col FROM pdp._own_columns(_expired_where_sql.tbl) o)
                    THEN ' OR ' || pdp._cell_in_sql(_expired_where_sql.tbl, s.col, '$3') ELSE '' END), '')
      INTO guard
      FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _expired_where_sql.tbl;
    IF pdp._purge_action(tbl) = 'anonymise' AND pdp._citus_table_kind(tbl) IS NOT NULL THEN
        -- A Citus table: the rows anonymised already are known by their
        -- values (pdp._citus_anonymise_sql), not by key; none when the
        -- purge of the table is refused.
        guard := guard || coalesce(' AND NOT (' || (pdp._citus_anonymise_sql(tbl)).done || ')', ' AND false');
    ELSIF pdp._purge_action(tbl) = 'anonymise' THEN
        guard := guard || pg_catalog.format(' AND %s OPERATOR(pg_catalog.<>) ALL ($6)', pdp._require_row_key_sql(tbl));
    END IF;
    cond := cond || guard;
END
$$;
COMMENT ON FUNCTION pdp._expired_where_sql(regclass, text) IS
    'the condition (parameters: $2 the last position, $3 held, $4 restricted, $5 expired or inactive keys, $6 anonymised keys) of a table''s expired, unheld rows, their order, position and a batch''s position';

-- The values of a purge statement's parameters $3 to $6, read now (see
-- pdp._expired_where_sql): held and system subjects, restricted subjects,
-- the keys of expired tagged rows or the inactive subjects, the rows
-- already anonymised.  purgeable is false while nothing of the table may
-- go: no subject column, or a hold on the whole table.
CREATE FUNCTION pdp._expired_params(tbl regclass, reason text, OUT purgeable boolean, OUT held text[],
                                    OUT restricted text[], OUT keys text[], OUT anonymised text[])
LANGUAGE plpgsql   -- (reads the session's temporary table: not for parallel workers)
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR reason IS NULL OR reason NOT IN ('retention', 'inactivity') THEN
        RAISE EXCEPTION 'table and reason (retention or inactivity) must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    keys := '{}';
    anonymised := '{}';
    purgeable := EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _expired_params.tbl)
                 AND NOT EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) _expired_params.tbl AND h.released_at IS NULL
                                   AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
    IF NOT purgeable THEN
        RETURN;
    END IF;
    held := ARRAY(SELECT h.subject FROM pdp.hold h WHERE h.subject IS NOT NULL AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
    -- A purge keeps system subjects' rows as it keeps held subjects'.
    held := held OPERATOR(pg_catalog.||) ARRAY(SELECT y.subject FROM pdp.system_subject y);
    restricted := ARRAY(SELECT r.subject FROM pdp.restriction r);
    IF reason = 'inactivity' THEN
        -- Only pdp's own table (a session's role could have made a temporary
        -- view of that name, whose code would run here as pdp_ext's owner).
        IF EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = 'pdp_inactive_subjects' AND c.relkind = 'r'
                     AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
                     AND pg_catalog.pg_get_userbyid(c.relowner) OPERATOR(pg_catalog.=) CURRENT_USER) THEN
            keys := ARRAY(SELECT i.subject FROM pg_temp.pdp_inactive_subjects i);
        END IF;
    ELSIF EXISTS (SELECT 1 FROM pdp.retention_policy p
                   WHERE p.tbl OPERATOR(pg_catalog.=) _expired_params.tbl AND p.anchor_column IS NULL) THEN
        keys := ARRAY(SELECT g.row_key FROM pdp.retention_tag g WHERE g.tbl OPERATOR(pg_catalog.=) _expired_params.tbl::oid
                         AND g.expires_at OPERATOR(pg_catalog.<) pg_catalog.now());
    END IF;
    IF pdp._purge_action(tbl) = 'anonymise' THEN
        anonymised := ARRAY(SELECT a.row_key FROM pdp.anonymised_row a WHERE a.tbl OPERATOR(pg_catalog.=) _expired_params.tbl::oid);
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._expired_params(regclass, text) IS
    'whether a table may be purged now, and the held, restricted, expired or inactive and anonymised keys its purge statements take';

-- A batch of a table's expired rows for one reason, found as the table's
-- owner: up to batch_size ctids after position "after" (or, with a NULL
-- batch_size, only how many there are).  Nothing while the table is held.
CREATE FUNCTION pdp._find_expired(tbl regclass, reason text, lock boolean, batch_size integer, after timestamptz,
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
COMMENT ON FUNCTION pdp._find_expired(regclass, text, boolean, integer, timestamptz) IS
    'a batch of a table''s expired, unheld rows (ctids, their tableoids and position), or with a NULL batch size their count; read as the table''s owner';

-- The action a table's expired rows get: its retention action, else delete
-- when it has an own ('delete') column, else anonymise (0.3's per-table on_erase).
CREATE FUNCTION pdp._purge_action(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce((SELECT p.action FROM pdp.retention_policy p WHERE p.tbl OPERATOR(pg_catalog.=) _purge_action.tbl),
                      CASE WHEN EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _purge_action.tbl
                                          AND s.on_erase = 'delete') THEN 'delete'
                           WHEN EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _purge_action.tbl)
                           THEN 'anonymise' END) $$;
COMMENT ON FUNCTION pdp._purge_action(regclass) IS
    'delete or anonymise: what purging a table does (its retention action; else delete if it has a delete column, else anonymise)';

-- Delete or anonymise the rows at the given ctids; returns how many.
-- Anonymised rows are recorded so they are not processed again.  Deleted
-- rows are followed through declared links (pdp._follow_links): nothing
-- that hangs off a purged row is orphaned silently, dependants a held
-- subject owns or that name a restricted subject stay, dependants written by subjects other than the
-- purged rows' owners get their link's on_other, and what was followed is
-- audited (purge_follow).  The statements on tables run as their owners;
-- pdp's records are kept here.  Callable by no role (it would delete any
-- row): pdp._purge_batch calls it.  tableoids, one per ctid, tell apart the
-- rows of a partitioned (or inheritance) parent's partitions, whose ctids
-- repeat from one partition to the next.
CREATE FUNCTION pdp._purge_rows(tbl regclass, action text, ctids tid[], tableoids oid[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    set_list text;
    n bigint;
    rets jsonb;
    tagged boolean;
    linked boolean;
    owners text[];
    keep text[];
    f record;
    -- The ctids as an InitPlan, not a constant: the planner estimates a
    -- constant array of many thousand TIDs as costlier than a sequential
    -- scan, and then tests every row of the table against the array.
    loc text := 't.ctid OPERATOR(pg_catalog.=) ANY ((SELECT $1)::pg_catalog.tid[])';
    vals text[];
BEGIN
    -- A ctid is unique only within one shard: never delete by it on Citus.
    PERFORM pdp._refuse_on_citus(tbl, 'purge');
    -- Nor within a partitioned table: each partition numbers its own.
    IF pdp._has_children(tbl) THEN
        IF tableoids IS NULL OR pg_catalog.cardinality(tableoids) OPERATOR(pg_catalog.<>) pg_catalog.cardinality(ctids) THEN
            RAISE EXCEPTION 'rows of table "%" must be named by tableoid and ctid', pdp._relname(tbl)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'The table has partitions or inheritance children, whose ctids repeat.';
        END IF;
        loc := loc || ' AND (t.tableoid, t.ctid) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.oid[]), pg_catalog.unnest($1::pg_catalog.tid[])))';
    END IF;
    IF action = 'delete' THEN
        tagged := EXISTS (SELECT 1 FROM pdp.retention_policy p
                           WHERE p.tbl OPERATOR(pg_catalog.=) _purge_rows.tbl AND p.anchor_column IS NULL);
        linked := EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) _purge_rows.tbl);
        IF NOT tagged AND NOT linked THEN
            -- No RETURNING: it would fetch every deleted row again.
            RETURN pdp._exec_as_owner_count(tbl, pg_catalog.format('DELETE FROM %s t WHERE %s', tbl, loc), ctids, tableoids);
        END IF;
        -- Tagged rows: their tags go with them.  Linked rows: their dependants follow.
        SELECT pg_catalog.count(*), pg_catalog.jsonb_agg(x.r) INTO n, rets
          FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                   'DELETE FROM %s t WHERE %s RETURNING %s || pg_catalog.jsonb_build_object(''k'', %s)',
                   tbl, loc, pdp._link_returning(tbl), CASE WHEN tagged THEN pg_catalog.format('t.%I::text', pdp._single_key(tbl))
                                                            ELSE 'NULL::text' END), ctids, tableoids) AS x(r jsonb);
        IF tagged THEN
            DELETE FROM pdp.retention_tag g
             WHERE g.tbl OPERATOR(pg_catalog.=) _purge_rows.tbl::oid
               AND g.row_key IN (SELECT r->>'k' FROM pg_catalog.jsonb_array_elements(rets) r);
        END IF;
        IF linked AND n > 0 THEN
            owners := ARRAY(SELECT DISTINCT e.value FROM pg_catalog.jsonb_array_elements(rets) r
                              CROSS JOIN LATERAL pg_catalog.jsonb_each_text(r) e
                             WHERE e.key LIKE 'o:%' AND e.value IS NOT NULL);
            keep := ARRAY(SELECT h.subject FROM pdp.hold h WHERE h.subject IS NOT NULL AND h.released_at IS NULL
                             AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
            FOR f IN SELECT * FROM pdp._follow_links(tbl, rets, owners, keep, ARRAY(SELECT r.subject FROM pdp.restriction r)) LOOP
                PERFORM pdp._audit('purge_follow', f.tbl::text, NULL,
                                   pg_catalog.jsonb_build_object('parent', tbl::text, 'action', f.action, 'via', f.via, 'rows', f.rows));
            END LOOP;
        END IF;
    ELSE
        -- An anonymised row names nobody: its subject columns are cut as
        -- erasure cuts them (set_null and nullable delete columns to NULL,
        -- set_value columns to their erase value; keep columns stay), its
        -- anonymisers applied (unlinkable transforms, never the keyed column
        -- rules: 76_anonymise.sql) and its foreign keys into deleted rows
        -- emptied (pdp._anonymise_set).  Constants in $3, erase values first.
        vals := '{}';
        FOR f IN SELECT s.col, s.on_erase, s.erase_value, a.atttypid::regtype AS typ, a.attnotnull
                   FROM pdp.subject_column s
                   JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) s.attnum
                  WHERE s.tbl OPERATOR(pg_catalog.=) _purge_rows.tbl
                  ORDER BY s.attnum LOOP
            IF f.on_erase = 'set_value' THEN
                vals := vals || f.erase_value;
                set_list := concat_ws(', ', set_list, pg_catalog.format('%I = ($3)[%s]::%s', f.col,
                                                                        pg_catalog.cardinality(vals), f.typ));
            ELSIF f.on_erase = 'set_null' OR (f.on_erase = 'delete' AND NOT f.attnotnull) THEN
                set_list := concat_ws(', ', set_list, pg_catalog.format('%I = NULL', f.col));
            ELSIF f.on_erase = 'delete' THEN
                RAISE EXCEPTION 'table "%" cannot be anonymised: a subject column is NOT NULL and owns its rows', pdp._relname(tbl)
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          HINT = 'Purge the table with action delete, or register the column with on_erase set_value and an erase value.';
            END IF;
        END LOOP;
        SELECT * INTO f FROM pdp._anonymise_set(tbl, '$3', pg_catalog.cardinality(vals), NULL);
        IF f.anonymisers = 0 THEN
            RAISE EXCEPTION 'table "%" has no column rules or anonymisations to anonymise with', pdp._relname(tbl)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'pdp.set_column_rule or pdp.set_anonymisation declares what its personal columns become.';
        END IF;
        vals := vals || f.vals;
        set_list := concat_ws(', ', set_list, f.set_list);
        WITH u AS (SELECT x.k FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                       'UPDATE %s t SET %s WHERE %s RETURNING %s',
                       tbl, set_list, loc, pdp._require_row_key_sql(tbl)), ctids, tableoids, vals) AS x(k text)),
             a AS (INSERT INTO pdp.anonymised_row (tbl, row_key) SELECT _purge_rows.tbl::oid, u.k FROM u ON CONFLICT DO NOTHING)
        SELECT pg_catalog.count(*) INTO n FROM u;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp._purge_rows(regclass, text, tid[], oid[]) IS 'deletes or anonymises the given rows of a table, following declared links';

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
    tableoids oid[];
BEGIN
    IF batch_size IS NULL THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pdp._citus_table_kind(tbl) IS NOT NULL THEN
        -- A distributed or reference table: by primary key, shard by shard.
        SELECT c.n, c.pos INTO n, pos FROM pdp._purge_citus_batch(tbl, reason, batch_size, after) c;
        got := n OPERATOR(pg_catalog.>) 0;
        RETURN;
    END IF;
    SELECT f.ctids, f.pos, f.tableoids INTO ctids, pos, tableoids FROM pdp._find_expired(tbl, reason, lock, batch_size, after) f;
    got := ctids IS NOT NULL;
    n := CASE WHEN got THEN pdp._purge_rows(tbl, pdp._purge_action(tbl), ctids, tableoids) ELSE 0 END;
END
$$;
COMMENT ON FUNCTION pdp._purge_batch(regclass, text, integer, timestamptz, boolean) IS
    'finds and purges one batch of a table''s expired, unheld rows; statements on the table run as its owner';

-- Purging by block ranges.  Where much of a large table has expired (a
-- first purge, a long-unpurged table), finding each batch through the
-- expiry index and deleting it by ctid reads every expired row twice, and
-- the index walk itself costs as much as the delete.  Such a table is
-- purged instead in consecutive ranges of blocks, one DELETE per range with
-- the same condition as the index path (pdp._expired_where_sql), which
-- reads the table once, in order, as a plain DELETE does, and resumes at
-- the next block whatever a concurrent snapshot keeps alive.  A range is
-- sized to hold about batch_size expired rows, and re-sized after each
-- batch from what it held, so each batch's locks stay bounded as on the
-- index path.  Only for plain tables whose expired rows are deleted with
-- nothing to follow: no partitions, no tagged rows, no declared links,
-- not anonymised, not on Citus.

-- Whether a table may be purged by block ranges at all: a plain table whose
-- expired rows are deleted with nothing to follow (no partitions, no tagged
-- rows, no declared links, not anonymised, not on Citus).
CREATE FUNCTION pdp._range_purgeable(tbl regclass) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp._purge_action(tbl) IS NOT DISTINCT FROM 'delete' AND pdp._citus_table_kind(tbl) IS NULL
         AND NOT pdp._has_children(tbl)
         AND NOT EXISTS (SELECT 1 FROM pdp.retention_policy p
                          WHERE p.tbl OPERATOR(pg_catalog.=) _range_purgeable.tbl AND p.anchor_column IS NULL)
         AND NOT EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) _range_purgeable.tbl) $$;
COMMENT ON FUNCTION pdp._range_purgeable(regclass) IS
    'whether a table''s purge may go by block ranges (a plain table whose expired rows are deleted with nothing to follow)';

-- The blocks the first range of a table should span, or 0 where the index
-- path is better: a small table (fewer than 1024 blocks), or one where a
-- sample of its blocks finds less than a fifth of its rows expired.
CREATE FUNCTION pdp._purge_by_range(tbl regclass, reason text, batch_size integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    blocks bigint;
    w record;
    v record;
    expired bigint;
    sampled bigint;
    pct real;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v := pdp._expired_params(tbl, reason);
    IF NOT v.purgeable OR NOT pdp._range_purgeable(tbl) THEN
        RETURN 0;
    END IF;
    blocks := pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::bigint;
    IF blocks OPERATOR(pg_catalog.<) 1024 THEN
        RETURN 0;
    END IF;
    w := pdp._expired_where_sql(tbl, reason);
    IF w.cond IS NULL THEN
        RETURN 0;
    END IF;
    -- About 256 blocks, at random.
    pct := LEAST(100, 25600.0 / blocks);
    SELECT x.e, x.n INTO expired, sampled
      FROM pdp._exec_as_owner(tbl, pg_catalog.format(
               'SELECT pg_catalog.count(*) FILTER (WHERE %s), pg_catalog.count(*) FROM %s t TABLESAMPLE SYSTEM ($7)', w.cond, tbl),
               batch_size, '-infinity'::timestamptz, v.held, v.restricted, v.keys, v.anonymised, pct) AS x(e bigint, n bigint);
    IF sampled OPERATOR(pg_catalog.=) 0 OR expired OPERATOR(pg_catalog.*) 5 OPERATOR(pg_catalog.<) sampled THEN
        RETURN 0;
    END IF;
    -- Blocks holding about batch_size expired rows, at the sample's density.
    RETURN GREATEST(1, pg_catalog.ceil(batch_size::numeric OPERATOR(pg_catalog./) (expired::numeric OPERATOR(pg_catalog./) (blocks * pct / 100.0)))::bigint);
END
$$;
COMMENT ON FUNCTION pdp._purge_by_range(regclass, text, integer) IS
    'how many blocks a purge''s first block range of the table should span (0: purge it through the expiry index instead)';

-- One block-range batch: deletes the table's expired, unheld rows in blocks
-- first_block to first_block + span - 1, as the table's owner.  Returns how
-- many went, where the next range starts, how many blocks it should span
-- (re-sized towards batch_size rows, at most four times larger or smaller),
-- and whether the table's end was reached.
CREATE FUNCTION pdp._purge_range(tbl regclass, reason text, batch_size integer, first_block bigint, span bigint,
                                 OUT n bigint, OUT next_block bigint, OUT next_span bigint, OUT done boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
    v record;
    blocks bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 OR first_block IS NULL OR first_block < 0 OR span IS NULL OR span < 1
       OR span > 4294967295 THEN
        RAISE EXCEPTION 'batch_size and span must be at least 1, first_block at least 0' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    n := 0;
    next_block := first_block;
    next_span := span;
    done := true;
    v := pdp._expired_params(tbl, reason);
    w := pdp._expired_where_sql(tbl, reason);
    -- The same tables as pdp._purge_by_range, checked again at each batch
    -- (a link, a partition or a tagged retention may have come meanwhile).
    IF NOT v.purgeable OR w.cond IS NULL OR NOT pdp._range_purgeable(tbl) THEN
        RETURN;
    END IF;
    blocks := pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::bigint;
    IF first_block OPERATOR(pg_catalog.>=) blocks THEN
        RETURN;
    END IF;
    span := LEAST(span, blocks OPERATOR(pg_catalog.-) first_block);
    n := pdp._exec_as_owner_count(tbl, pg_catalog.format(
             'DELETE FROM %s t WHERE t.ctid OPERATOR(pg_catalog.>=) $7 AND t.ctid OPERATOR(pg_catalog.<) $8 AND %s', tbl, w.cond),
             batch_size, '-infinity'::timestamptz, v.held, v.restricted, v.keys, v.anonymised,
             pg_catalog.format('(%s,0)', first_block)::tid, pg_catalog.format('(%s,0)', first_block OPERATOR(pg_catalog.+) span)::tid);
    next_block := first_block OPERATOR(pg_catalog.+) span;
    next_span := LEAST(4294967295 OPERATOR(pg_catalog.-) next_block, span * 4,
                       GREATEST(1, span / 4, CASE WHEN n OPERATOR(pg_catalog.=) 0 THEN span * 4
                                                  ELSE pg_catalog.ceil(span::numeric * batch_size / n)::bigint END));
    done := next_block OPERATOR(pg_catalog.>=) blocks OR next_span OPERATOR(pg_catalog.<) 1;
END
$$;
COMMENT ON FUNCTION pdp._purge_range(regclass, text, integer, bigint, bigint) IS
    'deletes a table''s expired, unheld rows in one range of blocks, as its owner; says where the next range starts and how long it should be';

-- An inactive subject's links are cut as erasure cuts them: in the rows a
-- purge for inactivity keeps (a learner's grade whose grader is an inactive
-- teacher), each set_null or set_value column naming an inactive subject is
-- set to NULL or to its erase_value; keep columns stay; a row so cut that
-- names nobody any more is anonymised (pdp._anonymisers).  Held subjects'
-- links are not cut (a hold keeps the subject's data), nor anything in a row
-- naming a restricted subject.  One statement per table, as its owner;
-- with dry_run, only counts.  Returns the rows changed (or that would be).
CREATE FUNCTION pdp._cut_inactive_links(tbl regclass, dry_run boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v record;
    c record;
    i integer := 0;
    vals text[] := '{}';
    cond text;
    set_list text;
    guard text;
    subjects text[];
    anon text;
    z record;
BEGIN
    v := pdp._expired_params(tbl, 'inactivity');
    -- (A Citus table the purges skip is never cut: pdp._citus_skip_purge.)
    IF NOT v.purgeable OR pdp._citus_purge_refusal(tbl) IS NOT NULL THEN
        RETURN 0;
    END IF;
    subjects := ARRAY(SELECT k FROM pg_catalog.unnest(v.keys) k WHERE k OPERATOR(pg_catalog.<>) ALL (v.held));
    IF pg_catalog.cardinality(subjects) = 0 THEN
        RETURN 0;
    END IF;
    FOR c IN SELECT s.col, s.on_erase, s.erase_value, a.atttypid::regtype AS typ
               FROM pdp.subject_column s
               JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) s.attnum
              WHERE s.tbl OPERATOR(pg_catalog.=) _cut_inactive_links.tbl
              ORDER BY s.attnum LOOP
        guard := concat_ws(' AND ', guard, 'NOT ' || pdp._cell_in_sql(tbl, c.col, '$3'));
        IF c.on_erase NOT IN ('set_null', 'set_value') THEN
            anon := concat_ws(' AND ', anon, pg_catalog.format('t.%I IS NULL', c.col));
            CONTINUE;
        END IF;
        i := i + 1;
        vals := vals || c.erase_value;
        anon := concat_ws(' AND ', anon, pg_catalog.format(
                    '(t.%1$I IS NULL OR t.%1$I OPERATOR(pg_catalog.=) ($2)[%2$s]::%3$s OR %4$s)',
                    c.col, i, c.typ, pdp._cell_in_sql(tbl, c.col, '$1')));
        cond := concat_ws(' OR ', cond, pdp._cell_in_sql(tbl, c.col, '$1'));
        set_list := concat_ws(', ', set_list, pg_catalog.format(
                        '%1$I = CASE WHEN %3$s THEN %2$s ELSE t.%1$I END', c.col,
                        CASE WHEN c.on_erase = 'set_null' THEN 'NULL' ELSE pg_catalog.format('($2)[%s]::%s', i, c.typ) END,
                        pdp._cell_in_sql(tbl, c.col, '$1')));
    END LOOP;
    IF cond IS NULL THEN
        RETURN 0;
    END IF;
    -- A row so cut that names nobody any more is anonymised as erasure
    -- anonymises it (pdp._anonymise_set): unlinkable transforms, never a
    -- keyed rule, and no foreign key into a deleted row; their constants
    -- follow the erase values in $2.
    SELECT * INTO z FROM pdp._anonymise_set(tbl, '$2', i, '(' || anon || ')');
    vals := vals || z.vals;
    set_list := concat_ws(', ', set_list, z.set_list);
    -- On a Citus table Citus runs the UPDATE on every shard or placement,
    -- unless this refuses it (0A000; the purges skip such tables first).
    PERFORM pdp._citus_anonymise_check(tbl, set_list);
    IF coalesce(dry_run, false) THEN
        RETURN (SELECT x.n FROM pdp._exec_as_owner(tbl, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE (%s) AND %s',
                                                                         tbl, cond, guard), subjects, vals, v.restricted) AS x(n bigint));
    END IF;
    RETURN pdp._exec_as_owner_count(tbl, pg_catalog.format('UPDATE %s t SET %s WHERE (%s) AND %s', tbl, set_list, cond, guard),
                                    subjects, vals, v.restricted);
END
$$;
COMMENT ON FUNCTION pdp._cut_inactive_links(regclass, boolean) IS
    'sets the set_null/set_value columns naming inactive (unheld) subjects to NULL or their erase value, as erasure does; with dry_run counts';

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

-- The safety valve ------------------------------------------------------------
-- A purge run that would remove more than pdp.purge_max_share of a table's
-- rows, or of the activity table's subjects, leaves that table (or every
-- inactive subject) alone, warns, and records what it would have removed:
-- a mistaken anchor ("0 means never") then costs a warning, not half the
-- users.  A larger share for one run lets it through.

CREATE FUNCTION pdp._purge_max_share() RETURNS real
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(NULLIF(pg_catalog.current_setting('pdp.purge_max_share', true), '')::real, 0.10::real) $$;
COMMENT ON FUNCTION pdp._purge_max_share() IS 'pdp.purge_max_share, or its default 0.10 where pdp_ext''s library is not loaded yet';

-- Records what the valve held back in the run, audits it and warns.
CREATE FUNCTION pdp._hold_back(run_id bigint, what jsonb) RETURNS void
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

-- Whether the valve holds a table back in this run (it then records it).
-- Counts the rows the run would remove, for both reasons, as a dry run
-- would; a table far below the share by its statistics is not counted in
-- full.
CREATE FUNCTION pdp._purge_valve(run_id bigint, tbl regclass) RETURNS boolean
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

-- The valve for inactivity: when the inactive subjects are more than the
-- share of the activity table's subjects, none of them is purged this run.
CREATE FUNCTION pdp._subject_valve(run_id bigint) RETURNS boolean
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
COMMENT ON FUNCTION pdp.purge_expired(integer, boolean) IS
    'deletes or anonymises expired rows of every retained table, children first, skipping held and restricted subjects, and cuts links to inactive subjects; dry_run only counts';

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
COMMENT ON PROCEDURE pdp.purge(integer, interval) IS
    'purges expired rows committing after every batch; stops after max_duration; an interrupted run loses no batch and the next resumes';

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

-- How pg_hba.conf answers a connection of one type ('local', or 'host' from
-- an address) to this database as a role: the first line that matches,
-- judged as PostgreSQL judges it, and whether pg_cron's connection (no
-- password, the server's operating-system user) gets through.  pg_cron
-- reads no password but the server user's ~/.pgpass, which cannot be seen
-- from here: a line asking for a password counts as refused.
CREATE FUNCTION pdp._hba_verdict(conn_type text, addr inet, role name, OUT ok boolean, OUT why text)
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

-- Whether pg_cron can run a job in this database as a role: the right
-- database, its scheduler running, and a connection it can make (background
-- workers, or libpq to cron.host as pg_hba.conf judges it).  problem says
-- what fails, fix exactly what to set.  Reads pg_hba.conf's rules, which
-- only superusers may, so it runs as pdp_ext's owner.
CREATE FUNCTION pdp._cron_check(role name, OUT ok boolean, OUT problem text, OUT fix text)
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

CREATE FUNCTION pdp.schedule_purge(schedule text DEFAULT '17 3 * * *') RETURNS bigint
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

-- Scheduled purges that failed in the last 90 days, from pg_cron's run
-- details (nothing when pg_cron is not installed).  pg_cron shows a role
-- only its own runs: read as pdp_ext's owner, limited to purge jobs.
CREATE FUNCTION pdp._failed_scheduled_purges()
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

-- The scheduled purge for the report: the job, whether pg_cron can run it
-- now, and its failed runs of the last 30 days.
CREATE FUNCTION pdp._purge_schedule_status() RETURNS jsonb
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

CREATE VIEW pdp.purge_log AS
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
