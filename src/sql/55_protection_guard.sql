-- The protection guard: after any DDL that may touch a protected table, each
-- table recorded in pdp.protection must still have what pdp.protect_table
-- installed (row-level security on, forced if it was, pdp's policies as they
-- were, the restricted-row trigger enabled), or the DDL is refused.  Renames
-- and a dump and restore change the recorded text, not the policies: the
-- record keeps two forms (column names, and the parsed expressions) and a
-- change of only one of them is followed.  New partitions and inheritance
-- children of a protected table are protected as they appear.

CREATE FUNCTION pdp._guard_protection() RETURNS event_trigger
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
COMMENT ON FUNCTION pdp._guard_protection() IS
    'event trigger: refuses DDL that weakens a protected table''s protection; protects new partitions and children';
CREATE EVENT TRIGGER pdp_guard_protection ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE POLICY', 'ALTER POLICY', 'DROP POLICY',
                 'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER', 'CREATE RULE', 'DROP RULE')
    EXECUTE FUNCTION pdp._guard_protection();
COMMENT ON EVENT TRIGGER pdp_guard_protection IS
    'refuses DDL that switches off a protected table''s protection; protects new partitions and inheritance children';
