-- Roles and the schema's baseline privileges.
--
-- pdp_admin        configures pdp_ext (registry, rules, purposes, retention)
-- pdp_reidentifier may reverse reversible pseudonyms
-- pdp_auditor      reads the audit trail and the registers
-- pdp_pseudonymiser computes keyed tokens (pseudonyms, encryption, FPE): the
--                  application role that pseudonymises, and readers of masked
--                  views with keyed columns
--
-- Roles are cluster-wide, so they are created only if absent and are left in
-- place by DROP EXTENSION (other databases may use them).
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['pdp_admin', 'pdp_reidentifier', 'pdp_auditor', 'pdp_pseudonymiser'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$roles$;

-- Application roles need to reach the schema: pseudonym functions and the
-- row-visibility checks are called from their queries.  What they may call
-- is decided function by function in 99_privileges.sql.
GRANT USAGE ON SCHEMA pdp TO PUBLIC;
COMMENT ON SCHEMA pdp IS 'pdp_ext: personal-data protection objects';
