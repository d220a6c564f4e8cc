-- The privilege model in one place.  Everything is revoked from PUBLIC and
-- granted back only where an application role needs it.

REVOKE ALL ON ALL TABLES IN SCHEMA pdp FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pdp FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA pdp FROM PUBLIC;

-- Helpers anyone may call (pure functions of their arguments).
GRANT EXECUTE ON FUNCTION pdp.is_subject_type(regtype) TO PUBLIC;

-- pdp_admin configures.  Registry functions run as the caller, so table
-- ownership is checked by the registry's trigger on every write.
GRANT SELECT, INSERT, UPDATE, DELETE ON pdp.subject_column TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.register_table(regclass, name, text) TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.unregister_table(regclass, name) TO pdp_admin;
GRANT SELECT ON pdp.registered_tables TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.key_status() TO pdp_admin, pdp_auditor;
