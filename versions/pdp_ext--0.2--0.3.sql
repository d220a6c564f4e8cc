-- pdp_ext 0.2 -> 0.3
-- Every change here is also made in src/sql/*.sql (the 0.3 install script);
-- test/tap/010_upgrade.pl checks that an updated 0.2 (and 0.1) and a fresh 0.3
-- have the same catalog entries.
\echo Use "ALTER EXTENSION pdp_ext UPDATE TO '0.3'" to load this file. \quit


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
AS $$ SELECT pg_catalog.string_agg(pg_catalog.format('pdp._visible(%I)', s.col), ' AND ' ORDER BY s.attnum)
        FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _visibility_sql.tbl $$;
CREATE OR REPLACE FUNCTION pdp.protect_table(tbl regclass, force boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    PERFORM pdp._install_protection(tbl, force);
    PERFORM pdp._audit('protect_table', tbl::text, NULL, pg_catalog.jsonb_build_object('force', force));
END
$$;
CREATE OR REPLACE FUNCTION pdp._install_protection(tbl regclass, force boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vis text := pdp._visibility_sql(tbl);
BEGIN
    IF vis IS NULL THEN
        RAISE EXCEPTION 'table "%" is not registered', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register its subject columns with pdp.register_table first.';
    END IF;
    PERFORM pdp._unprotect(tbl);
    EXECUTE pg_catalog.format('CREATE POLICY pdp_select ON %s FOR SELECT USING (%s)', tbl, vis);
    EXECUTE pg_catalog.format('CREATE POLICY pdp_insert ON %s FOR INSERT WITH CHECK (true)', tbl);
    EXECUTE pg_catalog.format('CREATE POLICY pdp_update ON %s FOR UPDATE USING (%s) WITH CHECK (true)', tbl, vis);
    EXECUTE pg_catalog.format('CREATE POLICY pdp_delete ON %s FOR DELETE USING (%s)', tbl, vis);
    EXECUTE pg_catalog.format('CREATE TRIGGER pdp_refuse_restricted BEFORE UPDATE OR DELETE ON %s '
                              'FOR EACH ROW EXECUTE FUNCTION pdp._refuse_restricted()', tbl);
    EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    IF force THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
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
    IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) tbl::oid
                     AND p.polname OPERATOR(pg_catalog.=) 'pdp_select') THEN
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
CREATE OR REPLACE FUNCTION pdp.import_consents(source regclass) RETURNS bigint
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
        'SELECT pg_catalog.array_agg(pg_catalog.row(s.subject, s.purpose, s.given_at, s.policy_version, s.evidence, s.valid_until)::pdp.consent_import) FROM %s s',
        source) INTO rows;
    RETURN pdp._import_consents(coalesce(rows, '{}'));
EXCEPTION WHEN undefined_column THEN
    RAISE EXCEPTION 'source "%" lacks a column of pdp.consent_import', source::text
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
COMMENT ON FUNCTION pdp.import_consents(regclass) IS
    'import_consents from a table or view with the columns of pdp.consent_import, read with the caller''s rights';
COMMENT ON FUNCTION pdp.withdraw_consents(text[], text) IS
    'withdraws many subjects'' consent to a purpose at once; returns how many had one; one audit entry with the count';
REVOKE ALL ON FUNCTION pdp._visibility_sql(regclass), pdp._install_protection(regclass, boolean),
    pdp._import_consents(pdp.consent_import[]), pdp.import_consents(pdp.consent_import[]),
    pdp.import_consents(regclass), pdp.withdraw_consents(text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._install_protection(regclass, boolean), pdp._visibility_sql(regclass),
    pdp.import_consents(pdp.consent_import[]), pdp.import_consents(regclass), pdp._import_consents(pdp.consent_import[]),
    pdp.withdraw_consents(text[], text)
TO pdp_admin;
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT c.oid::regclass AS tbl, c.relforcerowsecurity AS forced
               FROM pg_catalog.pg_class c
              WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                             WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid
                               AND p.polname OPERATOR(pg_catalog.=) 'pdp_select') LOOP
        PERFORM pdp._install_protection(t.tbl, t.forced);
    END LOOP;
END
$$;
