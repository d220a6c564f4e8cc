-- The protection guard: after any DDL that may touch a protected table, each
-- table recorded in pdp.protection must still have what pdp.protect_table
-- installed (row-level security on, forced if it was, pdp's policies as they
-- were, the restricted-row trigger enabled), or the DDL is refused.  Renames
-- and a dump and restore change the recorded text, not the policies: the
-- record keeps two forms (column names, and the parsed expressions) and a
-- change of only one of them is followed.  New partitions and inheritance
-- children of a protected table are protected as they appear.
--
-- Every DDL command on a registered or protected table (and on its policies,
-- triggers and rules) is recorded in the audit chain with who ran it: a
-- refused one durably (pdp._audit_durable, so the refusal's rollback keeps
-- it), an allowed one in the DDL's own transaction, with the state of the
-- protection after it (row-level security, forced, pdp's triggers enabled).
-- Drops are recorded by pdp._audit_protection_drop (sql_drop).

CREATE FUNCTION pdp._ddl_by_pdp() RETURNS boolean
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_ddl_by_pdp';
COMMENT ON FUNCTION pdp._ddl_by_pdp() IS
    'for pdp''s event triggers: whether the DDL runs inside one of pdp''s own functions (which record their own actions)';

-- Record a refused weakening durably; if it cannot be (no audit worker), the
-- refusal still stands.
CREATE FUNCTION pdp._guard_refused(tbl regclass, what text, command text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._audit_durable('ddl_refused', tbl::text, NULL,
                               pg_catalog.jsonb_build_object('command', command,
                                                             'refused', what));
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;
COMMENT ON FUNCTION pdp._guard_refused(regclass, text, text) IS
    'records a refused DDL on a protected table in the audit chain, durably (the refusal rolls the DDL back)';

-- The facts recorded about a table's protection after a DDL.
CREATE FUNCTION pdp._protection_facts(tbl regclass) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT pg_catalog.jsonb_build_object(
    'registered', EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) $1),
    'protected', EXISTS (SELECT 1 FROM pdp.protection p WHERE p.tbl OPERATOR(pg_catalog.=) $1),
    'row_security', c.relrowsecurity, 'force_row_security', c.relforcerowsecurity,
    'pdp_triggers_disabled', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger t
                               WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid AND t.tgname LIKE 'pdp%'
                                 AND t.tgenabled OPERATOR(pg_catalog.=) 'D'),
    'owner', pg_catalog.pg_get_userbyid(c.relowner))
  FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1
$$;
COMMENT ON FUNCTION pdp._protection_facts(regclass) IS
    'a table''s protection state (registered, protected, row-level security, pdp triggers disabled, owner) for the audit trail';

CREATE FUNCTION pdp._guard_protection() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    child regclass;
    names text;
    nodes text;
    cmd record;
BEGIN
    IF pdp._protection_ddl(NULL) THEN
        RETURN;     -- pdp's own protection functions at work
    END IF;
    -- pdp's row policies are either restrictive next to pdp_base_* (true),
    -- or, on Citus tables, permissive and alone.  Both at once is what Citus
    -- makes of a table protected before it was distributed, on the workers'
    -- shards (it drops AS RESTRICTIVE): every row shown.  Refused, which
    -- refuses the create_distributed_table on the coordinator.
    IF tg_tag = 'CREATE POLICY' THEN
        FOR cmd IN SELECT DISTINCT p.polrelid FROM pg_catalog.pg_event_trigger_ddl_commands() d
                     JOIN pg_catalog.pg_policy p ON p.oid OPERATOR(pg_catalog.=) d.objid
                    WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::regclass LOOP
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy q WHERE q.polrelid OPERATOR(pg_catalog.=) cmd.polrelid
                          AND q.polname IN ('pdp_select', 'pdp_update', 'pdp_delete') AND q.polpermissive)
               AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy q WHERE q.polrelid OPERATOR(pg_catalog.=) cmd.polrelid
                              AND q.polname LIKE 'pdp\_base\_%') THEN
                RAISE EXCEPTION 'cannot make pdp_ext''s restrictive policies permissive on "%"', pdp._relname(cmd.polrelid::regclass)
                    USING ERRCODE = 'feature_not_supported',
                          DETAIL = 'Citus copies a protected table''s policies to its shards without AS RESTRICTIVE; next to pdp''s base policies they would show every row.',
                          HINT = 'On the Citus coordinator, run pdp.unprotect_table, distribute the table, then pdp.protect_table.';
            END IF;
        END LOOP;
    END IF;
    FOR r IN SELECT p.tbl, p.forced, p.policies, p.policy_nodes FROM pdp.protection p LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) r.tbl::oid);
        IF NOT (SELECT c.relrowsecurity AND (c.relforcerowsecurity OR NOT r.forced)
                  FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) r.tbl::oid) THEN
            PERFORM pdp._guard_refused(r.tbl, 'row_security_off', tg_tag);
            RAISE EXCEPTION 'cannot switch off row-level security of protected table "%"', pdp._relname(r.tbl)
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'pdp.unprotect_table removes pdp_ext''s protection, with an audit entry.';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                        WHERE t.tgrelid OPERATOR(pg_catalog.=) r.tbl::oid
                          AND t.tgname OPERATOR(pg_catalog.=) 'pdp_refuse_restricted'
                          AND t.tgenabled IN ('O', 'A')) THEN
            PERFORM pdp._guard_refused(r.tbl, 'pdp_trigger_dropped_or_disabled', tg_tag);
            RAISE EXCEPTION 'cannot drop or disable pdp_ext''s trigger on protected table "%"', pdp._relname(r.tbl)
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'pdp.unprotect_table removes pdp_ext''s protection, with an audit entry.';
        END IF;
        -- On a Citus table pdp's policies are permissive (Citus drops AS
        -- RESTRICTIVE on the shards, pdp._install_protection): any other
        -- policy would widen what they show.
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy pol
                    WHERE pol.polrelid OPERATOR(pg_catalog.=) r.tbl::oid AND pol.polname NOT LIKE 'pdp\_%')
           AND pdp._citus_table_kind(r.tbl) IS NOT NULL THEN
            PERFORM pdp._guard_refused(r.tbl, 'policy_on_citus_table', tg_tag);
            RAISE EXCEPTION 'cannot add a row-level security policy to protected Citus table "%"', pdp._relname(r.tbl)
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'Citus creates every policy on the shards as PERMISSIVE, so another policy would widen what pdp''s policies show.',
                      HINT = 'See "Protected tables on Citus" in doc/scaling.md.';
        END IF;
        names := pdp._protection_state(r.tbl);
        nodes := pdp._protection_nodes(r.tbl);
        IF names OPERATOR(pg_catalog.<>) r.policies AND nodes OPERATOR(pg_catalog.<>) r.policy_nodes THEN
            PERFORM pdp._guard_refused(r.tbl, 'pdp_policies_changed', tg_tag);
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
    -- The DDL is allowed: record it when it touched a registered or protected
    -- table, or a policy, trigger or rule of one, with who ran it (unless
    -- pdp's own functions ran it: they record their own actions).
    IF pdp._ddl_by_pdp() THEN
        RETURN;
    END IF;
    FOR cmd IN
        SELECT DISTINCT ON (t.rel) t.rel, d.command_tag, d.object_identity
          FROM pg_catalog.pg_event_trigger_ddl_commands() d,
               LATERAL (SELECT CASE d.classid
                                 WHEN 'pg_catalog.pg_class'::regclass THEN d.objid
                                 WHEN 'pg_catalog.pg_policy'::regclass THEN (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid OPERATOR(pg_catalog.=) d.objid)
                                 WHEN 'pg_catalog.pg_trigger'::regclass THEN (SELECT g.tgrelid FROM pg_catalog.pg_trigger g WHERE g.oid OPERATOR(pg_catalog.=) d.objid)
                                 WHEN 'pg_catalog.pg_rewrite'::regclass THEN (SELECT w.ev_class FROM pg_catalog.pg_rewrite w WHERE w.oid OPERATOR(pg_catalog.=) d.objid)
                               END AS rel) t
         WHERE t.rel IS NOT NULL
           AND (EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl::oid OPERATOR(pg_catalog.=) t.rel)
                OR EXISTS (SELECT 1 FROM pdp.protection p WHERE p.tbl::oid OPERATOR(pg_catalog.=) t.rel))
    LOOP
        PERFORM pdp._audit('ddl', cmd.rel::regclass::text, NULL,
                           pdp._protection_facts(cmd.rel::regclass)
                           OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('command', cmd.command_tag, 'object', cmd.object_identity));
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

-- Drops: of a registered or protected table, or of a policy, trigger or rule
-- on one.  Runs before pdp_on_sql_drop forgets the registration (event
-- triggers fire in name order).
CREATE FUNCTION pdp._audit_protection_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record;
BEGIN
    IF pdp._protection_ddl(NULL) OR pdp._ddl_by_pdp() THEN
        RETURN;     -- pdp's own functions at work: they record their own actions
    END IF;
    FOR d IN
        SELECT o.object_type, o.object_identity, t.rel
          FROM pg_catalog.pg_event_trigger_dropped_objects() o,
               LATERAL (SELECT CASE WHEN o.object_type IN ('table', 'partitioned table') THEN o.objid
                                    WHEN o.object_type IN ('policy', 'trigger', 'rule') AND pg_catalog.array_length(o.address_names, 1) OPERATOR(pg_catalog.=) 3
                                    THEN pg_catalog.to_regclass(pg_catalog.quote_ident(o.address_names[1]) OPERATOR(pg_catalog.||) '.'
                                                                OPERATOR(pg_catalog.||) pg_catalog.quote_ident(o.address_names[2]))::oid
                               END AS rel) t
         WHERE o.original AND t.rel IS NOT NULL
           AND (EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl::oid OPERATOR(pg_catalog.=) t.rel)
                OR EXISTS (SELECT 1 FROM pdp.protection p WHERE p.tbl::oid OPERATOR(pg_catalog.=) t.rel))
    LOOP
        PERFORM pdp._audit('ddl', CASE WHEN d.object_type LIKE '%table' THEN d.object_identity ELSE d.rel::regclass::text END, NULL,
                           pg_catalog.jsonb_build_object('command', tg_tag, 'object', d.object_identity, 'dropped', d.object_type));
    END LOOP;
    -- A dropped table's reads are no longer audited.
    DELETE FROM pdp.audit_read_table r USING pg_catalog.pg_event_trigger_dropped_objects() o
     WHERE o.object_type IN ('table', 'partitioned table') AND r.tbl::oid OPERATOR(pg_catalog.=) o.objid;
END
$$;
COMMENT ON FUNCTION pdp._audit_protection_drop() IS
    'event trigger: records drops of registered or protected tables, and of their policies, triggers and rules, in the audit trail';
CREATE EVENT TRIGGER pdp_audit_drop ON sql_drop EXECUTE FUNCTION pdp._audit_protection_drop();
COMMENT ON EVENT TRIGGER pdp_audit_drop IS 'records drops that touch a registered or protected table in the audit trail';
