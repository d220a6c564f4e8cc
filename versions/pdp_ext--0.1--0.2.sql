-- pdp_ext 0.1 -> 0.2
-- Every change here is also made in src/sql/*.sql (the 0.2 install script);
-- test/tap/010_upgrade.pl checks that an updated 0.1 and a fresh 0.2 have the
-- same catalog entries.
\echo Use "ALTER EXTENSION pdp_ext UPDATE TO '0.2'" to load this file. \quit

-- Parallel query: every function that only reads may run in a parallel worker.
ALTER FUNCTION pdp._add_working_days(timestamp with time zone,integer) PARALLEL SAFE;
ALTER FUNCTION pdp._audit_fields(pdp.audit_log) PARALLEL SAFE;
ALTER FUNCTION pdp._deletion_order() PARALLEL SAFE;
ALTER FUNCTION pdp._expired_rows_sql(regclass,text,boolean) PARALLEL SAFE;
ALTER FUNCTION pdp._expiry_expr(name,interval) PARALLEL SAFE;
ALTER FUNCTION pdp._html(text) PARALLEL SAFE;
ALTER FUNCTION pdp._on_write_enabled(regclass) PARALLEL SAFE;
ALTER FUNCTION pdp._purge_action(regclass) PARALLEL SAFE;
ALTER FUNCTION pdp._relname(regclass) PARALLEL SAFE;
ALTER FUNCTION pdp._require_owner(regclass) PARALLEL SAFE;
ALTER FUNCTION pdp._require_pg_cron() PARALLEL SAFE;
ALTER FUNCTION pdp._require_purpose(text) PARALLEL SAFE;
ALTER FUNCTION pdp._rule_misfit(text,oid,integer,boolean) PARALLEL SAFE;
ALTER FUNCTION pdp._single_key(regclass) PARALLEL SAFE;
ALTER FUNCTION pdp._subject_held(text) PARALLEL SAFE;
ALTER FUNCTION pdp._subject_match(regclass,text) PARALLEL SAFE;
ALTER FUNCTION pdp.consent_history(bigint) PARALLEL SAFE;
ALTER FUNCTION pdp.consent_history(text) PARALLEL SAFE;
ALTER FUNCTION pdp.consent_history(uuid) PARALLEL SAFE;
ALTER FUNCTION pdp.has_consent(bigint,text,timestamp with time zone) PARALLEL SAFE;
ALTER FUNCTION pdp.has_consent(text,text,timestamp with time zone) PARALLEL SAFE;
ALTER FUNCTION pdp.has_consent(uuid,text,timestamp with time zone) PARALLEL SAFE;
ALTER FUNCTION pdp.subjects_needing_reconsent(text) PARALLEL SAFE;

-- Logical replication: keep a subscriber's caches current (row triggers that
-- fire only in replica mode, as the apply worker runs), and check replicated
-- registrations against the subscriber's own tables.
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
CREATE TRIGGER restriction_replicated AFTER INSERT OR UPDATE OR DELETE ON pdp.restriction
    FOR EACH ROW EXECUTE FUNCTION pdp._config_changed();
ALTER TABLE pdp.restriction ENABLE REPLICA TRIGGER restriction_replicated;
COMMENT ON TRIGGER restriction_replicated ON pdp.restriction IS
    'replica mode only: a change applied by logical replication reaches every session''s cache';
CREATE TRIGGER consent_state_replicated AFTER INSERT OR UPDATE OR DELETE ON pdp.consent_state
    FOR EACH ROW EXECUTE FUNCTION pdp._config_changed();
ALTER TABLE pdp.consent_state ENABLE REPLICA TRIGGER consent_state_replicated;
COMMENT ON TRIGGER consent_state_replicated ON pdp.consent_state IS
    'replica mode only: a change applied by logical replication reaches every session''s cache';
ALTER TABLE pdp.subject_column ENABLE ALWAYS TRIGGER subject_column_check;

-- Masked views apply the table's consent-aware visibility themselves: a view
-- reads with its owner's rights, and the owner bypasses row-level security,
-- so a 0.1 masked view of a protected table showed every row.
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
    SELECT pg_catalog.string_agg(pg_catalog.format('pdp._visible(%I)', s.col), ' AND ' ORDER BY s.attnum)
      INTO vis FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) create_masked_view.tbl;
    EXECUTE pg_catalog.format('CREATE OR REPLACE VIEW %s WITH (security_barrier) AS SELECT %s FROM %s '
                              'WHERE (SELECT pdp._unprotected(%L::regclass)) OR (%s)',
                              target, cols, tbl, tbl::oid, coalesce(vis, 'false'));
    EXECUTE pg_catalog.format('COMMENT ON VIEW %s IS %L', target,
                              pg_catalog.format('pdp_ext masked view of %s: columns with rules show the rule''s output', tbl));
    PERFORM pdp._audit('create_masked_view', tbl::text, NULL, pg_catalog.jsonb_build_object('view', target));
    RETURN target::regclass;
END
$$;
COMMENT ON FUNCTION pdp.create_masked_view(regclass, text) IS
    'creates (or replaces) a security-barrier view showing each ruled column''s rule output and, while the table is protected, only the rows its policy shows; grant it instead of the table';
REVOKE ALL ON FUNCTION pdp._unprotected(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._unprotected(regclass) TO PUBLIC;
-- Masked views made by 0.1 are user objects, which an extension script may
-- not replace: name each one, with the call that re-creates it.
DO $masked_views$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT DISTINCT c.oid::regclass AS view, c.relname, d.refobjid::regclass AS tbl
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_description de ON de.objoid OPERATOR(pg_catalog.=) c.oid
                    AND de.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
               JOIN pg_catalog.pg_rewrite rw ON rw.ev_class OPERATOR(pg_catalog.=) c.oid
               JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::regclass
                    AND d.objid OPERATOR(pg_catalog.=) rw.oid
                    AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
                    AND d.refobjid OPERATOR(pg_catalog.<>) c.oid
               JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) d.refobjid AND t.relkind IN ('r', 'p')
              WHERE c.relkind OPERATOR(pg_catalog.=) 'v'
                AND de.description LIKE 'pdp\_ext masked view of %'
    LOOP
        RAISE WARNING 'masked view % shows rows of % without its consent-aware visibility', v.view, v.tbl
            USING DETAIL = 'Masked views made by pdp_ext 0.1 do not filter rows; a view reads with its owner''s rights, which bypass row-level security.',
                  HINT = pg_catalog.format('Re-create it: SELECT pdp.create_masked_view(%L, %L);', v.tbl::text, v.relname);
    END LOOP;
END
$masked_views$;

-- verify_audit_log works on a hot standby (read-only): it checks the sealed
-- chain there without sealing.
CREATE OR REPLACE FUNCTION pdp.verify_audit_log(OUT ok boolean, OUT entries bigint, OUT first_bad_id bigint)
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

-- pdp.purge warns when batches failed (they are left for the next run).
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
    IF max_duration IS NULL OR max_duration <= interval '0' THEN
        RAISE EXCEPTION 'max_duration must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
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
