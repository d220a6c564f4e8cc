-- Protection for an application that owns its tables (issue 16, point 7):
-- protect_table applies the policies to the owner by default; maintenance
-- purposes; INSERT ... RETURNING under a consent purpose; an UPDATE or
-- DELETE of a restricted subject's rows fails instead of changing nothing.

ALTER TABLE pdp.purpose ADD COLUMN maintenance boolean NOT NULL DEFAULT false;
ALTER TABLE pdp.purpose ADD CONSTRAINT purpose_maintenance_check
    CHECK (NOT maintenance OR (restriction_exempt AND NOT requires_consent));
COMMENT ON COLUMN pdp.purpose.maintenance IS
    'a maintenance purpose (migrations, upgrades, the application''s cron): every row visible and changeable, restricted ones included; each session''s use is audited';

CREATE OR REPLACE FUNCTION pdp.define_purpose(purpose text, legal_basis text, description text DEFAULT NULL,
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
           defined_at = pg_catalog.now(), defined_by = CURRENT_USER, maintenance = false;
    PERFORM pdp._audit('define_purpose', purpose, NULL, pg_catalog.jsonb_build_object('legal_basis', legal_basis));
END
$$;

CREATE OR REPLACE FUNCTION pdp.define_maintenance_purpose(purpose text, description text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp.define_purpose(purpose, 'legitimate_interests',
                               coalesce(description, 'maintenance: migrations, upgrades and scheduled tasks'),
                               false, true);
    UPDATE pdp.purpose p SET maintenance = true WHERE p.purpose OPERATOR(pg_catalog.=) define_maintenance_purpose.purpose;
    PERFORM pdp._audit('define_maintenance_purpose', purpose);
END
$$;
COMMENT ON FUNCTION pdp.define_maintenance_purpose(text, text) IS
    'defines a maintenance purpose: every row of protected tables visible and changeable (restricted ones too), each session''s use audited';
REVOKE ALL ON FUNCTION pdp.define_maintenance_purpose(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.define_maintenance_purpose(text, text) TO pdp_admin;

CREATE OR REPLACE VIEW pdp.purposes AS
SELECT p.purpose, p.legal_basis, p.requires_consent, p.restriction_exempt, p.description,
       coalesce((SELECT pg_catalog.array_agg(g.role ORDER BY g.role::text) FROM pdp.purpose_grant g
                  WHERE g.purpose OPERATOR(pg_catalog.=) p.purpose), '{}') AS allowed_roles,
       p.defined_at, p.defined_by, p.maintenance
  FROM pdp.purpose p;

CREATE OR REPLACE FUNCTION pdp.protect_table(tbl regclass, force boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    -- Citus: hash-distributed and reference tables are protected on their
    -- shards (pdp._install_protection); Citus local tables, and Citus
    -- tables with partitions, are refused until that is made correct.
    IF pdp._citus_table_kind(tbl) IS DISTINCT FROM 'distributed' AND pdp._citus_table_kind(tbl) IS DISTINCT FROM 'reference'
       OR pdp._has_children(tbl) THEN
        PERFORM pdp._refuse_on_citus(tbl, 'protect');
    END IF;
    PERFORM pdp._install_protection(tbl, force);
    PERFORM pdp._audit('protect_table', tbl::text, NULL, pg_catalog.jsonb_build_object('force', force));
END
$$;
COMMENT ON FUNCTION pdp.protect_table(regclass, boolean) IS
    'enables row-level security with consent-, purpose- and restriction-aware policies, applied to the table''s owner too unless force is false';

CREATE OR REPLACE FUNCTION pdp._install_protection(tbl regclass, force boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vis text;
    cmd text;
    guarded boolean;
    unsafe text;
    citus boolean;
    kind text;
BEGIN
    PERFORM pdp._require_outer_owner(tbl);
    guarded := pdp._protection_ddl(true);
    vis := pdp._visibility_sql(tbl);
    IF vis IS NULL THEN
        RAISE EXCEPTION 'table "%" is not registered', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register its subject columns with pdp.register_table first.';
    END IF;
    citus := pdp._citus_table_kind(tbl) IS NOT NULL;
    -- Citus 12.1 re-creates every policy on the shards without AS
    -- RESTRICTIVE (its deparser drops it): there pdp's policies are the
    -- table's only ones, permissive, so that the shards' copies mean what
    -- the coordinator's do; a table with policies of its own is refused,
    -- and the guard refuses policies added later (55_protection_guard.sql).
    IF citus AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy pol
                          WHERE pol.polrelid OPERATOR(pg_catalog.=) tbl::oid AND pol.polname NOT LIKE 'pdp\_%') THEN
        RAISE EXCEPTION 'cannot protect Citus table "%" with row-level security policies of its own', pdp._relname(tbl)
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Citus creates every policy on the shards as PERMISSIVE (it drops AS RESTRICTIVE), so pdp''s policies could not narrow what another policy shows there.',
                  HINT = 'Drop the table''s own policies first; see "Protected tables on Citus" in doc/scaling.md.';
    END IF;
    PERFORM pdp._unprotect(tbl);
    -- A row the statement itself is writing (INSERT ... RETURNING, ON
    -- CONFLICT, UPDATE ... RETURNING check it against this policy before it
    -- is stored) has no tuple identifier yet: it passes, as its values came
    -- from the statement.  Every stored row has a valid one.  The SELECT
    -- policy's row test is given the ctid to tell (pdp._visible(subject, tid)).
    kind := CASE WHEN citus THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END;
    EXECUTE pg_catalog.format('CREATE POLICY pdp_select ON %s AS %s FOR SELECT USING (%s)', tbl, kind,
                              pdp._visibility_sql(tbl, true));
    EXECUTE pg_catalog.format('CREATE POLICY pdp_insert ON %s AS %s FOR INSERT WITH CHECK (true)', tbl, kind);
    EXECUTE pg_catalog.format('CREATE POLICY pdp_update ON %s AS %s FOR UPDATE USING (%s) WITH CHECK (true)', tbl, kind, vis);
    EXECUTE pg_catalog.format('CREATE POLICY pdp_delete ON %s AS %s FOR DELETE USING (%s)', tbl, kind, vis);
    FOREACH cmd IN ARRAY ARRAY['select', 'insert', 'update', 'delete'] LOOP
        CONTINUE WHEN citus;    -- pdp's permissive policies are the only ones
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
        IF NOT citus THEN
            EXECUTE pg_catalog.format('CREATE TRIGGER pdp_refuse_restricted BEFORE UPDATE OR DELETE ON %s '
                                      'FOR EACH ROW EXECUTE FUNCTION pdp._refuse_restricted()', tbl);
        ELSE
            unsafe := pg_catalog.current_setting('citus.enable_unsafe_triggers', true);
            PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
            EXECUTE pg_catalog.format('CREATE TRIGGER pdp_refuse_restricted BEFORE UPDATE OR DELETE ON %s '
                                      'FOR EACH ROW EXECUTE FUNCTION pdp._refuse_restricted(%s)', tbl,
                                      (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(a), ', ' ORDER BY o)
                                         FROM pg_catalog.unnest(pdp._relname(tbl) OPERATOR(pg_catalog.||)
                                                                pdp._subject_column_names(tbl)) WITH ORDINALITY AS x(a, o)));
            PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', coalesce(unsafe, 'off'), true);
        END IF;
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

-- Re-create every protected table's policies (the SELECT policy now passes
-- the rows a statement is writing), keeping each table's forced state; tell
-- the DBA about tables whose owner still bypasses them.  The guard stands
-- aside, and the old policies go without an unprotection entry in the trail.
DO $$
DECLARE
    t record;
    guarded boolean;
    tables regclass[];
    forced boolean[];
    child boolean[];
BEGIN
    guarded := pdp._protection_ddl(true);
    SELECT pg_catalog.array_agg(r.tbl ORDER BY r.tbl::text), pg_catalog.array_agg(r.forced ORDER BY r.tbl::text),
           pg_catalog.array_agg(EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pdp.protection q
                                          ON q.tbl::oid OPERATOR(pg_catalog.=) i.inhparent
                                         WHERE i.inhrelid OPERATOR(pg_catalog.=) r.tbl::oid) ORDER BY r.tbl::text)
      INTO tables, forced, child
      FROM pdp.protection r;
    DELETE FROM pdp.protection;
    FOR t IN SELECT u.tbl, u.forced, u.child FROM ROWS FROM (pg_catalog.unnest(tables), pg_catalog.unnest(forced), pg_catalog.unnest(child)) AS u(tbl, forced, child) LOOP
        EXECUTE pg_catalog.format('DROP POLICY IF EXISTS pdp_select ON %1$s; DROP POLICY IF EXISTS pdp_insert ON %1$s; '
                                  'DROP POLICY IF EXISTS pdp_update ON %1$s; DROP POLICY IF EXISTS pdp_delete ON %1$s; '
                                  'DROP POLICY IF EXISTS pdp_base_select ON %1$s; DROP POLICY IF EXISTS pdp_base_insert ON %1$s; '
                                  'DROP POLICY IF EXISTS pdp_base_update ON %1$s; DROP POLICY IF EXISTS pdp_base_delete ON %1$s', t.tbl);
        -- (A partition's copy of its parent's trigger goes with the parent's.)
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) t.tbl::oid
                     AND g.tgname OPERATOR(pg_catalog.=) 'pdp_refuse_restricted' AND g.tgparentid OPERATOR(pg_catalog.=) 0) THEN
            EXECUTE pg_catalog.format('DROP TRIGGER pdp_refuse_restricted ON %s', t.tbl);
        END IF;
    END LOOP;
    FOR t IN SELECT u.tbl, u.forced FROM ROWS FROM (pg_catalog.unnest(tables), pg_catalog.unnest(forced), pg_catalog.unnest(child)) AS u(tbl, forced, child)
              WHERE NOT u.child LOOP
        PERFORM pdp._install_protection(t.tbl, t.forced);
        IF NOT t.forced THEN
            RAISE WARNING 'the owner of protected table % bypasses its policies', t.tbl
                USING HINT = pg_catalog.format('Since pdp_ext 0.4 protection applies to the owner by default: '
                                               'SELECT pdp.protect_table(%L); (see doc/consent.md on maintenance purposes).', t.tbl::text);
        END IF;
    END LOOP;
    PERFORM pdp._protection_ddl(guarded);
END
$$;
