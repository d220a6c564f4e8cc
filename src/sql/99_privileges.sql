-- The privilege model in one place.  Everything is revoked from PUBLIC and
-- granted back only where an application role needs it.

REVOKE ALL ON ALL TABLES IN SCHEMA pdp FROM PUBLIC;
REVOKE ALL ON ALL ROUTINES IN SCHEMA pdp FROM PUBLIC;  -- functions and procedures
REVOKE ALL ON ALL SEQUENCES IN SCHEMA pdp FROM PUBLIC;

-- Helpers anyone may call (pure functions of their arguments).
GRANT EXECUTE ON FUNCTION pdp.is_subject_type(regtype) TO PUBLIC;

-- pdp_admin configures.  Registry functions run as the caller, so table
-- ownership is checked by the registry's trigger on every write.
GRANT SELECT, INSERT, UPDATE, DELETE ON pdp.subject_column TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.register_table(regclass, name, text, text) TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.unregister_table(regclass, name) TO pdp_admin;
GRANT SELECT ON pdp.registered_tables TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.key_status() TO pdp_admin, pdp_auditor;
-- Crypto-shredding: pdp.unshred checks itself that its caller may read the
-- column (or a masked view of it); the store's status holds no key material.
GRANT EXECUTE ON FUNCTION pdp.unshred(regclass, name, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.subject_key_store_status() TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp._shred_subject_column(regclass) TO pdp_admin;
GRANT SELECT ON pdp.shred_domain TO pdp_admin, pdp_auditor;

-- Issue 14, classes 4 and 5 (internals, keyed functions) ------------------
-- Keyed functions compute deterministic tokens: whoever may call them can
-- reverse a token by computing the tokens of guessed inputs (every IIN of a
-- birth date, a list of e-mail addresses).  They are for pdp_pseudonymiser,
-- the application's pseudonymising role, not PUBLIC.  The on-write trigger
-- calls them without an EXECUTE check (it runs for every writer of a table
-- its owner configured); a masked view's readers need pdp_pseudonymiser for
-- its keyed columns, as PostgreSQL checks functions in a view against the
-- querying role.  Masks, generalisation and validators hold no key: PUBLIC.
GRANT EXECUTE ON FUNCTION
    pdp.pseudonym(text, text), pdp.pseudonym(bigint, text), pdp.pseudonym(uuid, text),
    pdp.pseudo_email(text, boolean), pdp.pseudo_phone(text), pdp.pseudo_iin(text, boolean),
    pdp.pseudo_name(text), pdp.pseudo_ip(inet), pdp.pseudo_ip_text(text), pdp._pseudo_ip_any(anyelement),
    pdp.encrypt(text, text), pdp.fpe_encrypt(text, text, integer, integer), pdp.fpe_iin(text, integer)
TO pdp_pseudonymiser;
GRANT EXECUTE ON FUNCTION
    pdp.mask(text, integer, integer, text), pdp.mask_email(text), pdp.mask_phone(text), pdp.mask_card(text),
    pdp.generalize_date(date, text), pdp.age_band(text, integer),
    pdp.iin_is_valid(text), pdp.bin_is_valid(text), pdp.iin_birth_date(text), pdp.iin_sex(text),
    pdp.luhn_is_valid(text)
TO PUBLIC;
-- Internal helpers: pdp._subject_pseudonym is granted to no role (its
-- callers are SECURITY DEFINER).  pdp._audit is granted below to the roles
-- whose functions run as their caller and write audit entries, and refuses
-- every call that does not come from another pdp function (src/pdp_ext.c,
-- pdp_require_pdp_caller), so no role can write an entry of its own.
-- ---------------------------------------------------------------------------
GRANT EXECUTE ON FUNCTION
    pdp.decrypt(text), pdp.fpe_decrypt(text, text, integer, integer), pdp.fpe_iin_decrypt(text, integer)
TO pdp_reidentifier;

-- Column rules: configured by pdp_admin members on tables they own.
GRANT SELECT ON pdp.rule_kind, pdp.column_rules TO pdp_admin, pdp_auditor;
GRANT SELECT, INSERT, UPDATE, DELETE ON pdp.column_rule, pdp.apply_run TO pdp_admin;
GRANT SELECT ON pdp.apply_run TO pdp_auditor;
GRANT EXECUTE ON FUNCTION
    pdp.set_column_rule(regclass, name, text, text), pdp.drop_column_rule(regclass, name),
    pdp.pseudonymise_on_write(regclass, boolean), pdp.create_masked_view(regclass, text),
    pdp._rule_misfit(text, oid, integer, boolean), pdp._relname(regclass), pdp._require_owner(regclass),
    pdp._on_write_enabled(regclass), pdp._sync_on_write_trigger(regclass, boolean),
    pdp._pseudonymise_on_write()
TO pdp_admin;
GRANT EXECUTE ON PROCEDURE pdp.apply_rules(regclass, integer, boolean) TO pdp_admin;
-- apply_rules on Citus tables: its helpers, and the keyed rules' IMMUTABLE
-- wrappers, which the table's owner runs on every node (a keyed rule is
-- declared by a member of pdp_pseudonymiser).
GRANT EXECUTE ON FUNCTION pdp._citus_rule_sql(regclass, text, name, oid, text), pdp._citus_distribution_column(regclass),
                          pdp._key_set() TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._citus_keyed(text, text, text), pdp._citus_keyed_inet(text, inet), pdp._key_set(),
                          pdp._citus_require_key_set(text) TO pdp_pseudonymiser;
GRANT EXECUTE ON FUNCTION pdp._rule_sql(text, name, oid), pdp._masked_column_sql(regclass, smallint),
                          pdp._guarded_rule_sql(regclass, smallint, text, name, oid, text) TO pdp_admin;
-- A masked view's readers run its guard and its failure counter (which
-- hold no key and never see a value); the counters are read through
-- pdp.rule_failures.
GRANT EXECUTE ON FUNCTION pdp._rule_accepts(text, text), pdp._rule_failed(oid, smallint, text) TO PUBLIC;
GRANT SELECT ON pdp.rule_failures TO pdp_admin, pdp_auditor;
-- Credentials: declared by their table's owner (a pdp_admin member).
GRANT SELECT ON pdp.credential_column, pdp.credential_columns TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.declare_credential(regclass, name), pdp.drop_credential(regclass, name) TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._on_write_enabled(regclass) TO pdp_auditor;

-- Purposes and consent.  Recording consent and restrictions is pdp_admin's
-- by default: grant these functions to the application role that records
-- them (see doc/consent.md).  The row test is everyone's, because every
-- protected query calls it.
GRANT SELECT ON pdp.purpose, pdp.purpose_grant, pdp.purposes, pdp.policy_version, pdp.policies,
                pdp.protected_tables, pdp.protection TO pdp_admin, pdp_auditor;
GRANT SELECT ON pdp.consent_event, pdp.consent_state, pdp.restriction, pdp.restriction_event TO pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp._visible(bigint), pdp._visible(text), pdp._visible(uuid),
    pdp._visible(bigint, tid), pdp._visible(text, tid), pdp._visible(uuid, tid), pdp._unprotected(regclass) TO PUBLIC;
-- The statements pdp's builders write run as the table's owner, whoever that
-- is, and may compare a text cell's other spellings of an integer.
GRANT EXECUTE ON FUNCTION pdp._integer_spelling(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    pdp.define_purpose(text, text, text, boolean, boolean), pdp.define_maintenance_purpose(text, text),
    pdp.allow_purpose(regrole, text), pdp.disallow_purpose(regrole, text),
    pdp.publish_policy(text, timestamptz, text),
    pdp.protect_table(regclass, boolean), pdp.unprotect_table(regclass), pdp._unprotect(regclass),
    pdp._require_purpose(text), pdp._sync_protection(regclass), pdp._install_protection(regclass, boolean),
    pdp._visibility_sql(regclass), pdp._visibility_sql(regclass, boolean), pdp._refuse_restricted()
TO pdp_admin;
GRANT EXECUTE ON FUNCTION
    pdp.grant_consent(text, text, text, jsonb, timestamptz), pdp.grant_consent(bigint, text, text, jsonb, timestamptz),
    pdp.grant_consent(uuid, text, text, jsonb, timestamptz),
    pdp.withdraw_consent(text, text), pdp.withdraw_consent(bigint, text), pdp.withdraw_consent(uuid, text),
    pdp.restrict_subject(text, text), pdp.restrict_subject(bigint, text), pdp.restrict_subject(uuid, text),
    pdp.lift_restriction(text), pdp.lift_restriction(bigint), pdp.lift_restriction(uuid),
    pdp.import_consents(pdp.consent_import[]), pdp.import_consents_from(regclass), pdp._import_consents(pdp.consent_import[]),
    pdp.withdraw_consents(text[], text)
TO pdp_admin;
GRANT EXECUTE ON FUNCTION
    pdp.has_consent(text, text, timestamptz), pdp.has_consent(bigint, text, timestamptz),
    pdp.has_consent(uuid, text, timestamptz),
    pdp.consent_history(text), pdp.consent_history(bigint), pdp.consent_history(uuid),
    pdp.subjects_needing_reconsent(text)
TO pdp_admin, pdp_auditor;

-- Audit trail: read by pdp_auditor; written only through pdp._audit, which
-- the functions that run as their caller need.
GRANT SELECT ON pdp.audit_log, pdp.audit_seal, pdp.audit_chain TO pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.verify_audit_log(), pdp.seal_audit_log(boolean, integer) TO pdp_auditor, pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.trim_audit_log(interval) TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._audit(text, text, text, jsonb) TO pdp_admin, pdp_reidentifier;
-- The keyed chain's head and anchors: read by pdp_auditor; anchors are
-- published (and scheduled, to a file outside the data directory) by pdp_admin.
GRANT SELECT ON pdp.audit_anchor TO pdp_auditor, pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.audit_head() TO pdp_auditor, pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.publish_audit_anchor(text), pdp.schedule_audit_anchor(text, text) TO pdp_admin;
GRANT SELECT ON pdp.audit_read_table TO pdp_auditor, pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.audit_reads(regclass, boolean) TO pdp_admin;

-- Retention: configured and run by pdp_admin members (purges run as their
-- caller, who must be allowed to delete from the tables: the owner, or the
-- role pg_cron runs the job as).
GRANT SELECT ON pdp.retention_policies, pdp.retention_policy, pdp.subject_retention, pdp.holds, pdp.hold,
                pdp.purge_log, pdp.purge_progress, pdp.purge_summary, pdp.purge_run TO pdp_admin, pdp_auditor;
GRANT SELECT, INSERT, UPDATE, DELETE ON pdp.retention_policy, pdp.subject_retention, pdp.retention_tag,
                pdp.anonymised_row TO pdp_admin;
GRANT EXECUTE ON FUNCTION
    pdp.set_retention(regclass, interval, name, text, text[], name), pdp.drop_retention(regclass),
    pdp.set_subject_retention(interval, regclass, name, text[], name), pdp.drop_subject_retention(),
    pdp.place_hold(text, text, timestamptz), pdp.place_hold(bigint, text, timestamptz), pdp.place_hold(uuid, text, timestamptz),
    pdp.place_table_hold(regclass, text, timestamptz), pdp.release_hold(bigint),
    pdp.purge_expired(integer, boolean), pdp.schedule_purge(text), pdp.unschedule_purge(),
    pdp._expiry_expr(name, interval), pdp._single_key(regclass), pdp._drop_retention_objects(regclass),
    pdp._subject_held(text), pdp._deletion_order(),
    pdp._purge_action(regclass), pdp._purge_rows(regclass, text, tid[], oid[]), pdp._collect_inactive_subjects(),
    pdp._begin_purge_run(boolean), pdp._record_purge_batch(bigint, regclass, text, bigint, jsonb),
    pdp._end_purge_run(bigint, text), pdp._require_pg_cron(), pdp._retention_tag()
TO pdp_admin;
GRANT EXECUTE ON PROCEDURE pdp.purge(integer, interval) TO pdp_admin;
-- Issue 16, points 3 and 9: system subjects, the safety valve, checked
-- scheduling.  System subjects are declared by pdp_admin only (the API
-- function runs as pdp_ext's owner); the valves and the pg_cron check are
-- called by pdp.purge and pdp.schedule_purge, which run as their caller;
-- what the valve records is written by pdp._hold_back, granted to no role.
GRANT SELECT ON pdp.system_subject TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.declare_system_subject(text, text), pdp.drop_system_subject(text),
                          pdp._purge_max_share(), pdp._purge_valve(bigint, regclass), pdp._subject_valve(bigint),
                          pdp._cron_check(name)
TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._failed_scheduled_purges(), pdp._purge_schedule_status() TO pdp_admin, pdp_auditor;
-- Citus checks, called by the functions above that run as their caller.
GRANT EXECUTE ON FUNCTION pdp._citus_table_kind(regclass), pdp._refuse_on_citus(regclass, text),
                          pdp._citus_skip_purge(regclass, bigint), pdp._has_children(regclass),
                          pdp._citus_purge_refusal(regclass), pdp._citus_purge_hint(), pdp._citus_cut_refusal(regclass),
                          pdp._citus_anonymise_refusal(regclass) TO pdp_admin;
-- pdp._purge_citus_batch deletes rows and is granted to no role: pdp._purge_batch calls it.
-- The report's readers ask whether this is a Citus coordinator, and read the
-- nodes' facts (through pdp.verify_audit_log and pdp.key_status, which run as
-- their owner).  pdp._citus_on_workers, pdp._key_status_local and
-- pdp._verify_audit_log_local are for those SECURITY DEFINER readers only.
GRANT EXECUTE ON FUNCTION pdp._citus_has_workers(), pdp._report_nodes(jsonb, boolean) TO pdp_admin, pdp_auditor;
-- pdp_admin mirrors the consent state to a Citus cluster's workers (issue 18, step 2);
-- the mirror's trigger and naming helper are pdp's own (the trigger runs as its owner).
GRANT EXECUTE ON FUNCTION pdp.citus_sync_state() TO pdp_admin;
-- pdp.pending_notices (read by pdp_admin and pdp_auditor, running as them)
-- adds the Citus workers' rectification notices through this reader.
GRANT EXECUTE ON FUNCTION pdp._citus_worker_notices() TO pdp_admin, pdp_auditor;
-- Every interval pdp_ext accepts is judged by one check (src/sql/05_checks.sql),
-- which functions running as their caller (pdp_admin members) call.
REVOKE ALL ON FUNCTION pdp._check_interval(interval, text, interval), pdp._check_period() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._check_interval(interval, text, interval), pdp._check_period() TO pdp_admin;
-- The expiry functions key indexes on application tables: anyone may evaluate them.
GRANT EXECUTE ON FUNCTION pdp._expiry(timestamptz, interval), pdp._expiry(timestamp, interval),
                          pdp._expiry(date, interval), pdp._expiry(bigint, interval) TO PUBLIC;

-- Subject rights: pdp_admin answers requests; pdp_auditor reads the registers.
GRANT SELECT ON pdp.country, pdp.recipient, pdp.recipients, pdp.disclosure, pdp.pending_notices,
                pdp.rectification_notice, pdp.request_deadline, pdp.subject_request, pdp.overdue_requests, pdp.erasure
TO pdp_admin, pdp_auditor;
GRANT INSERT, UPDATE, DELETE ON pdp.request_deadline TO pdp_admin;
-- Its triggers (run as the editing pdp_admin member) and pg_dump's filter read the shipped deadlines.
GRANT EXECUTE ON FUNCTION pdp._request_deadline_defaults(),
                          pdp._request_deadline_is_default(text, text, interval, integer, text) TO pdp_admin;
GRANT EXECUTE ON FUNCTION
    pdp.define_recipient(text, text, text, text),
    pdp.record_disclosure(text, text, text, text[]), pdp.record_disclosure(bigint, text, text, text[]),
    pdp.record_disclosure(uuid, text, text, text[]),
    pdp.acknowledge_notice(bigint),
    pdp.open_request(text, text, text, timestamptz), pdp.open_request(bigint, text, text, timestamptz),
    pdp.open_request(uuid, text, text, timestamptz), pdp.complete_request(bigint, text),
    pdp.export_subject(text), pdp.export_subject(bigint), pdp.export_subject(uuid),
    pdp.erase_subject(text, text, boolean), pdp.erase_subject(bigint, text, boolean), pdp.erase_subject(uuid, text, boolean),
    pdp._add_working_days(timestamptz, integer), pdp._subject_match(regclass, text, text[]),
    pdp._sync_rectification_trigger(regclass), pdp._rectification()
TO pdp_admin;

-- Register, discovery, report: for the DPO (pdp_auditor) and pdp_admin.
GRANT SELECT ON pdp.processing_register, pdp.special_category, pdp.name_hint, pdp.retention_tag TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.discover(name, integer), pdp.report(text), pdp._report_json(), pdp._html(text), pdp._md(text),
                          pdp._classify_value(text), pdp._is_placeholder(text), pdp._scan_text(text),
                          pdp._relates_to_subject(regclass, boolean), pdp._finding(jsonb, boolean, text),
                          pdp._profile_column(regclass, name, float8, integer, boolean, name) TO pdp_admin, pdp_auditor;
GRANT SELECT ON pdp.eav_attribute, pdp.eav_attributes, pdp.unclassified_columns TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.register_eav(regclass, name, name, text, text, text), pdp.drop_eav(regclass, name, text) TO pdp_admin;
-- The trace search (SECURITY DEFINER; it reads every table as its owner) is the DPO's.
GRANT EXECUTE ON FUNCTION pdp.find_subject_traces(text), pdp.find_subject_traces(bigint), pdp.find_subject_traces(uuid) TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._audit(text, text, text, jsonb), pdp._on_write_enabled(regclass) TO pdp_auditor;

-- Escalation (issue 14, classes 1 and 2).  Statements on user tables run as
-- the table's owner through pdp._exec_as_owner, which refuses a caller that
-- does not own the table, so it is safe to grant.  pdp's state changes only
-- through pdp's functions (their implementations run as pdp_ext's owner and
-- check the caller): no role writes pdp's tables directly.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON pdp.subject_column, pdp.column_rule, pdp.apply_run, pdp.retention_policy,
       pdp.subject_retention, pdp.retention_tag, pdp.anonymised_row FROM pdp_admin;
REVOKE ALL ON FUNCTION pdp._purge_rows(regclass, text, tid[], oid[]) FROM pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._exec_as_owner(regclass, text), pdp._exec_as_owner(regclass, text, "any"), pdp._caller()
TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp._apply_progress(regclass, text, name[], text[], bigint),
                          pdp._find_expired(regclass, text, boolean, integer, timestamptz),
                          pdp._purge_batch(regclass, text, integer, timestamptz, boolean),
                          pdp._purge_by_range(regclass, text, integer),
                          pdp._purge_range(regclass, text, integer, bigint, bigint),
                          pdp._cut_inactive_links(regclass, boolean)
TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp._expiry_counts(regclass), pdp._sample_column(regclass, name, float8, integer) TO pdp_admin, pdp_auditor;

-- Issue 14, class 7 (canonical subjects) ------------------------------------
-- The canonicaliser reads only which types the registered subject columns
-- have; the roles that enter subjects may ask it what a subject becomes.
GRANT EXECUTE ON FUNCTION pdp._canonical_subject(text) TO pdp_admin, pdp_auditor;
-- pdp._canonical_subject_or_null and pdp._import_check: for pdp._import_consents (SECURITY DEFINER) only;
-- pdp._canonical_subjects: for pdp.withdraw_consents (SECURITY DEFINER) only.
-- ---------------------------------------------------------------------------

-- Issue 14, class 13 (roles that cannot do their job) -----------------------
-- PostgreSQL clones a partitioned table's row triggers onto every partition
-- created or attached, and checks EXECUTE on their functions for whoever
-- runs that DDL: a table owner outside pdp_admin must be able to extend a
-- protected table.  pdp._refuse_restricted only ever refuses updates and
-- deletes of restricted learners' rows, so it is safe for any table.
GRANT EXECUTE ON FUNCTION pdp._refuse_restricted() TO PUBLIC;
-- The report's counts from pdp's tables, for both roles that read the report.
GRANT EXECUTE ON FUNCTION pdp._report_counts() TO pdp_admin, pdp_auditor;
-- ---------------------------------------------------------------------------

-- Issue 16, points 1, 2 and 4 (erase actions, links, holds) -----------------
-- Links change only through pdp.declare_link and pdp.drop_link, which check
-- that the caller owns both tables; pdp_admin and pdp_auditor read them.
GRANT SELECT ON pdp.link, pdp.links TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.declare_link(regclass, name, regclass, name, text, text), pdp.drop_link(regclass, name)
TO pdp_admin;
-- Read-only SQL builders that functions granted to pdp_admin above call
-- (pdp._subject_match, pdp._expired_where_sql).  pdp._follow_links deletes
-- rows and is granted to no role: erasure and pdp._purge_rows call it.
GRANT EXECUTE ON FUNCTION pdp._subject_types(text), pdp._subject_columns(regclass, regtype[]), pdp._match_sql(regclass, regtype[], text[]),
                          pdp._spellings_apply(), pdp._subject_eq_sql(regclass, name, regtype[]), pdp._cell_in_sql(regclass, name, text),
                          pdp._own_columns(regclass),
                          pdp._owned_by_sql(regclass, text), pdp._owned_by_other_sql(regclass, text),
                          pdp._link_returning(regclass), pdp._row_key_sql(regclass), pdp._require_row_key_sql(regclass)
TO pdp_admin;
-- ---------------------------------------------------------------------------

-- Issue 17, point 2 (anonymisation, k-anonymity) ------------------------------
-- Declared by the table's owner through the API functions (run as pdp_ext's
-- owner, which check the caller); read by pdp_admin and pdp_auditor, who
-- also measure registered tables (the report does, as its reader).
GRANT SELECT ON pdp.anonymise_column, pdp.quasi_identifier, pdp.quasi_identifiers TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp.set_anonymisation(regclass, name, text, text, text), pdp.drop_anonymisation(regclass, name),
                          pdp.declare_quasi_identifiers(regclass, name[])
TO pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.k_anonymity(regclass, text[]), pdp._k_anonymity_findings() TO pdp_admin, pdp_auditor;
-- ---------------------------------------------------------------------------
