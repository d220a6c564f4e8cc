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
