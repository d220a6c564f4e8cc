-- Issue 18, step 5: pdp.protect_table on Citus distributed and reference
-- tables (src/sql/50_consent.sql, src/visibility.c).  Citus carries the
-- policies and row-level security to the shards; the restricted-row trigger
-- is created with citus.enable_unsafe_triggers set for that statement only,
-- and given the table's name and its subject columns' names as arguments,
-- which the trigger reads on the shards.  Tables protected under 0.3 were
-- never Citus tables (0.3 refused them), so nothing is re-created here.

CREATE OR REPLACE FUNCTION pdp._subject_column_names(tbl regclass) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.array_agg(s.col::text ORDER BY s.attnum)
        FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) $1 $$;
COMMENT ON FUNCTION pdp._subject_column_names(regclass) IS
    'the names of a table''s registered subject columns, in attribute order (the arguments of its trigger on Citus shards)';
REVOKE ALL ON FUNCTION pdp._subject_column_names(regclass) FROM PUBLIC;

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

CREATE OR REPLACE FUNCTION pdp._unprotect(tbl regclass) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p name;
    found_any boolean := false;
    guarded boolean;
    unsafe text;
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
        -- Citus: dropping a trigger of a distributed or reference table needs
        -- citus.enable_unsafe_triggers too (this statement only).
        IF pdp._citus_table_kind(tbl) IS NOT NULL THEN
            unsafe := pg_catalog.current_setting('citus.enable_unsafe_triggers', true);
            PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
        END IF;
        EXECUTE pg_catalog.format('DROP TRIGGER pdp_refuse_restricted ON %s', tbl);
        IF unsafe IS NOT NULL THEN
            PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', unsafe, true);
        END IF;
        found_any := true;
    END IF;
    IF found_any THEN
        PERFORM pdp._audit('unprotect_table', tbl::text);
    END IF;
    PERFORM pdp._protection_ddl(guarded);
    RETURN found_any;
END
$$;

-- pdp._guard_protection (which now refuses other policies on protected Citus
-- tables) is re-created by 40_audit.sql, after pdp._ddl_by_pdp exists: the
-- event trigger fires during this update.
