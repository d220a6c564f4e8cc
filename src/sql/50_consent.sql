-- Purposes, consent, restriction and policy versions, and the row-level
-- security that enforces them on protected tables.
--
-- Subjects are keyed by the text form of their identifier everywhere, so
-- bigint, integer, text and uuid subject columns share one key space.

CREATE TABLE pdp.purpose (
    purpose            text        PRIMARY KEY,
    legal_basis        text        NOT NULL,
    description        text,
    requires_consent   boolean     NOT NULL,
    restriction_exempt boolean     NOT NULL,
    defined_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    defined_by         name        NOT NULL DEFAULT CURRENT_USER,
    maintenance        boolean     NOT NULL DEFAULT false,
    CONSTRAINT purpose_maintenance_check CHECK (NOT maintenance OR (restriction_exempt AND NOT requires_consent)),
    CONSTRAINT purpose_name_check CHECK (purpose ~ '^[^[:cntrl:]]{1,63}$'),
    CONSTRAINT purpose_legal_basis_check CHECK (legal_basis IN
        ('consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task', 'legitimate_interests'))
);
COMMENT ON TABLE pdp.purpose IS 'purposes of processing, each with its legal basis (GDPR Art. 6, Law 94-V Art. 7)';
COMMENT ON COLUMN pdp.purpose.purpose IS 'the purpose''s name, as sessions declare it in pdp.purpose';
COMMENT ON COLUMN pdp.purpose.legal_basis IS 'consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests';
COMMENT ON COLUMN pdp.purpose.description IS 'what the purpose is, in words for the register';
COMMENT ON COLUMN pdp.purpose.requires_consent IS 'rows are visible for this purpose only with the subject''s active consent';
COMMENT ON COLUMN pdp.purpose.restriction_exempt IS 'restricted subjects stay visible for this purpose (legal obligations and claims, vital and public interests)';
COMMENT ON COLUMN pdp.purpose.defined_at IS 'when the purpose was defined';
COMMENT ON COLUMN pdp.purpose.defined_by IS 'who defined it';
COMMENT ON COLUMN pdp.purpose.maintenance IS
    'a maintenance purpose (migrations, upgrades, the application''s cron): every row visible and changeable, restricted ones included; each session''s use is audited';
SELECT pg_catalog.pg_extension_config_dump('pdp.purpose', '');

CREATE TABLE pdp.purpose_grant (
    role       regrole     NOT NULL,
    purpose    text        NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    granted_by name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (role, purpose)
);
COMMENT ON TABLE pdp.purpose_grant IS 'which roles (and their members) may declare which purposes';
COMMENT ON COLUMN pdp.purpose_grant.role IS 'the role; its members inherit the grant';
COMMENT ON COLUMN pdp.purpose_grant.purpose IS 'the purpose it may declare';
COMMENT ON COLUMN pdp.purpose_grant.granted_at IS 'when';
COMMENT ON COLUMN pdp.purpose_grant.granted_by IS 'by whom';
SELECT pg_catalog.pg_extension_config_dump('pdp.purpose_grant', '');

CREATE TABLE pdp.policy_version (
    version         text        PRIMARY KEY,
    effective_from  timestamptz NOT NULL,
    document_sha256 text        NOT NULL,
    published_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    published_by    name        NOT NULL DEFAULT CURRENT_USER,
    CONSTRAINT policy_version_sha256_check CHECK (document_sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT policy_version_name_check CHECK (version ~ '^[^[:cntrl:]]{1,63}$')
);
COMMENT ON TABLE pdp.policy_version IS 'published versions of the privacy policy';
COMMENT ON COLUMN pdp.policy_version.version IS 'the version''s name';
COMMENT ON COLUMN pdp.policy_version.effective_from IS 'when it takes effect (published at least 10 days before)';
COMMENT ON COLUMN pdp.policy_version.document_sha256 IS 'SHA-256 of the published document, lower-case hex';
COMMENT ON COLUMN pdp.policy_version.published_at IS 'when it was published';
COMMENT ON COLUMN pdp.policy_version.published_by IS 'who published it';
SELECT pg_catalog.pg_extension_config_dump('pdp.policy_version', '');

-- Consent history: append-only facts.  A withdrawal is a new fact.
CREATE TABLE pdp.consent_event (
    id             bigserial   PRIMARY KEY,
    subject        text        NOT NULL,
    purpose        text        NOT NULL,
    action         text        NOT NULL CHECK (action IN ('grant', 'withdraw')),
    policy_version text,
    evidence       jsonb       NOT NULL DEFAULT '{}',
    valid_until    timestamptz,
    at             timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    recorded_by    name        NOT NULL DEFAULT SESSION_USER
);
CREATE INDEX consent_event_subject_idx ON pdp.consent_event (subject, purpose, at);
COMMENT ON TABLE pdp.consent_event IS 'every grant and withdrawal of consent, never updated or deleted';
COMMENT ON SEQUENCE pdp.consent_event_id_seq IS 'numbers consent events';
-- Each session takes event numbers 100 at a time (a bulk import one per
-- row, without touching the sequence's page for each): numbers are unique,
-- not gapless, and follow time only within a session; history is ordered by
-- its time, then its number.
ALTER SEQUENCE pdp.consent_event_id_seq CACHE 100;
COMMENT ON COLUMN pdp.consent_event.id IS 'the event''s number; grant_consent returns it';
COMMENT ON COLUMN pdp.consent_event.subject IS 'the subject''s identifier, in text form';
COMMENT ON COLUMN pdp.consent_event.purpose IS 'the purpose consented to or withdrawn from';
COMMENT ON COLUMN pdp.consent_event.action IS 'grant or withdraw';
COMMENT ON COLUMN pdp.consent_event.policy_version IS 'the privacy policy version the consent was given under';
COMMENT ON COLUMN pdp.consent_event.evidence IS 'how consent was given: form, IP, hash of the text shown (Law 94-V Art. 8, GDPR Art. 7(1))';
COMMENT ON COLUMN pdp.consent_event.valid_until IS 'when a time-limited consent expires';
COMMENT ON COLUMN pdp.consent_event.at IS 'when it happened';
COMMENT ON COLUMN pdp.consent_event.recorded_by IS 'the session user that recorded it';
SELECT pg_catalog.pg_extension_config_dump('pdp.consent_event', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.consent_event_id_seq', '');

-- Current consents, kept by grant_consent and withdraw_consent; derived from
-- consent_event, but indexed for the per-row visibility check.
CREATE TABLE pdp.consent_state (
    subject        text        NOT NULL,
    purpose        text        NOT NULL,
    event_id       bigint      NOT NULL,
    policy_version text,
    valid_until    timestamptz,
    PRIMARY KEY (subject, purpose)
);
COMMENT ON TABLE pdp.consent_state IS 'active consents (granted, not withdrawn; may have expired: see valid_until)';
COMMENT ON COLUMN pdp.consent_state.subject IS 'the subject''s identifier, in text form';
COMMENT ON COLUMN pdp.consent_state.purpose IS 'the purpose';
COMMENT ON COLUMN pdp.consent_state.event_id IS 'the grant event in pdp.consent_event';
COMMENT ON COLUMN pdp.consent_state.policy_version IS 'the policy version of that grant';
COMMENT ON COLUMN pdp.consent_state.valid_until IS 'when it expires; NULL for never';
SELECT pg_catalog.pg_extension_config_dump('pdp.consent_state', '');

CREATE TABLE pdp.restriction (
    subject       text        PRIMARY KEY,
    reason        text        NOT NULL,
    since         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    restricted_by name        NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE pdp.restriction IS 'subjects whose processing is restricted (GDPR Art. 18) or blocked (Law 94-V)';
COMMENT ON COLUMN pdp.restriction.subject IS 'the subject''s identifier, in text form';
COMMENT ON COLUMN pdp.restriction.reason IS 'why, as recorded with the request';
COMMENT ON COLUMN pdp.restriction.since IS 'when the restriction began';
COMMENT ON COLUMN pdp.restriction.restricted_by IS 'the session user that recorded it';
SELECT pg_catalog.pg_extension_config_dump('pdp.restriction', '');

CREATE TABLE pdp.restriction_event (
    id          bigserial   PRIMARY KEY,
    subject     text        NOT NULL,
    action      text        NOT NULL CHECK (action IN ('restrict', 'lift')),
    reason      text,
    at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    recorded_by name        NOT NULL DEFAULT SESSION_USER
);
CREATE INDEX restriction_event_subject_idx ON pdp.restriction_event (subject, at);
COMMENT ON TABLE pdp.restriction_event IS 'every restriction and lifting, never updated or deleted';
COMMENT ON SEQUENCE pdp.restriction_event_id_seq IS 'numbers restriction events';
COMMENT ON COLUMN pdp.restriction_event.id IS 'the event''s number';
COMMENT ON COLUMN pdp.restriction_event.subject IS 'the subject''s identifier, in text form';
COMMENT ON COLUMN pdp.restriction_event.action IS 'restrict or lift';
COMMENT ON COLUMN pdp.restriction_event.reason IS 'why';
COMMENT ON COLUMN pdp.restriction_event.at IS 'when';
COMMENT ON COLUMN pdp.restriction_event.recorded_by IS 'the session user that recorded it';
SELECT pg_catalog.pg_extension_config_dump('pdp.restriction_event', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.restriction_event_id_seq', '');

-- History is append-only: UPDATE and DELETE are refused, for the owner too.
-- The one change allowed: erasure (pdp._forget_subject, while the erasure
-- switch is on) replaces an erased subject's identifier with its audit
-- pseudonym and strips the evidence or reason; nothing else of the row.
CREATE FUNCTION pdp._refuse_history_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND pdp._erasing() AND NEW.subject LIKE '~erased:%' AND OLD.subject NOT LIKE '~erased:%'
       AND NEW.id OPERATOR(pg_catalog.=) OLD.id AND NEW.action OPERATOR(pg_catalog.=) OLD.action
       AND NEW.at OPERATOR(pg_catalog.=) OLD.at AND NEW.recorded_by OPERATOR(pg_catalog.=) OLD.recorded_by THEN
        IF TG_TABLE_NAME = 'consent_event' THEN
            IF NEW.evidence OPERATOR(pg_catalog.=) '{}'::jsonb
               AND pg_catalog.to_jsonb(NEW) - ARRAY['subject', 'evidence'] OPERATOR(pg_catalog.=) pg_catalog.to_jsonb(OLD) - ARRAY['subject', 'evidence'] THEN
                RETURN NEW;
            END IF;
        ELSIF NEW.reason IS NULL
              AND pg_catalog.to_jsonb(NEW) - ARRAY['subject', 'reason'] OPERATOR(pg_catalog.=) pg_catalog.to_jsonb(OLD) - ARRAY['subject', 'reason'] THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'table "%" is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'Consent and restriction history is never changed; record a new event instead.';
END
$$;
COMMENT ON FUNCTION pdp._refuse_history_change() IS
    'trigger: keeps consent and restriction history append-only (erasure only replaces an erased subject by its pseudonym)';
CREATE TRIGGER consent_event_append_only BEFORE UPDATE OR DELETE ON pdp.consent_event
    FOR EACH ROW EXECUTE FUNCTION pdp._refuse_history_change();
CREATE TRIGGER consent_event_no_truncate BEFORE TRUNCATE ON pdp.consent_event
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._refuse_history_change();
CREATE TRIGGER restriction_event_append_only BEFORE UPDATE OR DELETE ON pdp.restriction_event
    FOR EACH ROW EXECUTE FUNCTION pdp._refuse_history_change();
CREATE TRIGGER restriction_event_no_truncate BEFORE TRUNCATE ON pdp.restriction_event
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._refuse_history_change();

-- C helpers: the row test of the generated policies (src/visibility.c), the
-- invalidation that keeps every session's view of purposes and grants
-- current (src/consent.c), and the trigger refusing writes to restricted rows.
-- Consents and restrictions are read under each query's own snapshot: no
-- backend keeps a copy, and no invalidation is needed for them.
CREATE FUNCTION pdp._visible(subject bigint) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_int8';
COMMENT ON FUNCTION pdp._visible(bigint) IS
    'row test of protected tables: the declared purpose is allowed, consented to if needed, and the subject not restricted';
CREATE FUNCTION pdp._visible(subject text) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_text';
COMMENT ON FUNCTION pdp._visible(text) IS 'pdp._visible for text and varchar subjects';
CREATE FUNCTION pdp._visible(subject uuid) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_uuid';
COMMENT ON FUNCTION pdp._visible(uuid) IS 'pdp._visible for uuid subjects';
-- The SELECT policy's form: the row's ctid as well, so that a row the
-- statement is writing (no tuple identifier yet) passes without an OR in the
-- policy, which every protected query would plan.
CREATE FUNCTION pdp._visible(subject bigint, row_id tid) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_int8';
COMMENT ON FUNCTION pdp._visible(bigint, tid) IS
    'row test of the SELECT policy: pdp._visible(subject), and true for a row the statement is writing (its ctid is (4294967295,0))';
CREATE FUNCTION pdp._visible(subject text, row_id tid) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_text';
COMMENT ON FUNCTION pdp._visible(text, tid) IS 'pdp._visible(subject, ctid) for text and varchar subjects';
CREATE FUNCTION pdp._visible(subject uuid, row_id tid) RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_visible_uuid';
COMMENT ON FUNCTION pdp._visible(uuid, tid) IS 'pdp._visible(subject, ctid) for uuid subjects';

CREATE FUNCTION pdp._config_changed() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_config_changed';
COMMENT ON FUNCTION pdp._config_changed() IS
    'trigger: tells every session that purposes or purpose grants changed (at commit)';
CREATE TRIGGER purpose_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pdp.purpose
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._config_changed();
CREATE TRIGGER purpose_grant_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pdp.purpose_grant
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._config_changed();
-- Logical replication: a subscriber's apply worker runs with
-- session_replication_role = replica and fires only row triggers enabled for
-- replica mode, so these row-level twins of the triggers above (replica mode
-- only, hence no cost on the publisher) keep a subscriber's sessions current.
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
CREATE FUNCTION pdp._refuse_restricted() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_refuse_restricted';
COMMENT ON FUNCTION pdp._refuse_restricted() IS
    'trigger: refuses UPDATE and DELETE of rows whose registered subject is restricted';

-- Purposes -------------------------------------------------------------------

CREATE FUNCTION pdp.define_purpose(purpose text, legal_basis text, description text DEFAULT NULL,
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
COMMENT ON FUNCTION pdp.define_purpose(text, text, text, boolean, boolean) IS
    'defines (or redefines) a purpose; requires_consent defaults to true exactly for the consent basis';

-- A maintenance purpose: for the application's migrations, upgrades and
-- cron, which must see and change every row, restricted subjects' included
-- (a protected table applies its policies to its owner, see protect_table).
-- Its legal basis is the controller's legitimate interest in running the
-- system; the roles that may declare it are granted with allow_purpose; each
-- session's first query under it is recorded in the audit trail, durably.
CREATE FUNCTION pdp.define_maintenance_purpose(purpose text, description text DEFAULT NULL) RETURNS void
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

CREATE FUNCTION pdp._require_purpose(p text) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p IS NULL THEN
        RAISE EXCEPTION 'purpose must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.purpose x WHERE x.purpose OPERATOR(pg_catalog.=) p) THEN
        RAISE EXCEPTION 'unknown purpose' USING ERRCODE = 'undefined_object',
              HINT = 'pdp.define_purpose defines purposes; pdp.purposes lists them.';
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._require_purpose(text) IS 'raises unless the purpose is defined';

CREATE FUNCTION pdp.allow_purpose(role regrole, purpose text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    INSERT INTO pdp.purpose_grant (role, purpose) VALUES (allow_purpose.role, allow_purpose.purpose)
    ON CONFLICT DO NOTHING;
    PERFORM pdp._audit('allow_purpose', purpose, NULL, pg_catalog.jsonb_build_object('role', role::text));
END
$$;
COMMENT ON FUNCTION pdp.allow_purpose(regrole, text) IS 'lets a role (and its members) declare a purpose';

CREATE FUNCTION pdp.disallow_purpose(role regrole, purpose text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    DELETE FROM pdp.purpose_grant g
     WHERE g.role OPERATOR(pg_catalog.=) disallow_purpose.role AND g.purpose OPERATOR(pg_catalog.=) disallow_purpose.purpose;
    IF FOUND THEN
        PERFORM pdp._audit('disallow_purpose', purpose, NULL, pg_catalog.jsonb_build_object('role', role::text));
        RETURN true;
    END IF;
    RETURN false;
END
$$;
COMMENT ON FUNCTION pdp.disallow_purpose(regrole, text) IS 'withdraws a role''s right to declare a purpose; true if it had it';

CREATE VIEW pdp.purposes AS
SELECT p.purpose, p.legal_basis, p.requires_consent, p.restriction_exempt, p.description,
       coalesce((SELECT pg_catalog.array_agg(g.role ORDER BY g.role::text) FROM pdp.purpose_grant g
                  WHERE g.purpose OPERATOR(pg_catalog.=) p.purpose), '{}') AS allowed_roles,
       p.defined_at, p.defined_by, p.maintenance
  FROM pdp.purpose p;
COMMENT ON VIEW pdp.purposes IS 'purposes with their legal bases and the roles that may declare them';

-- Consent ------------------------------------------------------------------

CREATE FUNCTION pdp.grant_consent(subject text, purpose text, policy_version text DEFAULT NULL,
                                  evidence jsonb DEFAULT '{}', valid_until timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    event bigint;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    IF policy_version IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM pdp.policy_version v WHERE v.version OPERATOR(pg_catalog.=) grant_consent.policy_version) THEN
        RAISE EXCEPTION 'unknown policy version' USING ERRCODE = 'undefined_object',
              HINT = 'pdp.publish_policy publishes versions; pdp.policies lists them.';
    END IF;
    IF evidence IS NULL OR jsonb_typeof(evidence) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'evidence must be a JSON object' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'For example {"form": "signup-v3", "ip": "…", "text_sha256": "…"}.';
    END IF;
    IF pdp._credential_evidence(evidence) THEN   -- credentials are never evidence (34_credentials.sql)
        RAISE EXCEPTION 'evidence must not hold a credential' USING ERRCODE = 'invalid_parameter_value',
              DETAIL = 'A key of the evidence names a password, secret, token or a declared credential column.',
              HINT = 'Record how consent was given (form, IP, hash of the text shown), never what authenticates the learner.';
    END IF;
    IF valid_until IS NOT NULL AND valid_until <= pg_catalog.now() THEN
        RAISE EXCEPTION 'valid_until must be in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pdp.consent_event (subject, purpose, action, policy_version, evidence, valid_until)
    VALUES (grant_consent.subject, grant_consent.purpose, 'grant', grant_consent.policy_version,
            grant_consent.evidence, grant_consent.valid_until)
    RETURNING id INTO event;
    INSERT INTO pdp.consent_state AS s (subject, purpose, event_id, policy_version, valid_until)
    VALUES (grant_consent.subject, grant_consent.purpose, event, grant_consent.policy_version, grant_consent.valid_until)
    ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
       SET event_id = EXCLUDED.event_id, policy_version = EXCLUDED.policy_version, valid_until = EXCLUDED.valid_until;
    PERFORM pdp._audit('grant_consent', purpose, subject,
                       pg_catalog.jsonb_build_object('event_id', event, 'policy_version', policy_version,
                                                     'time_limited', valid_until IS NOT NULL));
    RETURN event;
END
$$;
COMMENT ON FUNCTION pdp.grant_consent(text, text, text, jsonb, timestamptz) IS
    'records a subject''s consent to a purpose with its evidence; returns the event''s id';
CREATE FUNCTION pdp.grant_consent(subject bigint, purpose text, policy_version text DEFAULT NULL,
                                  evidence jsonb DEFAULT '{}', valid_until timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE sql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.grant_consent(subject::text, purpose, policy_version, evidence, valid_until) $$;
COMMENT ON FUNCTION pdp.grant_consent(bigint, text, text, jsonb, timestamptz) IS 'grant_consent for a bigint or integer subject';
CREATE FUNCTION pdp.grant_consent(subject uuid, purpose text, policy_version text DEFAULT NULL,
                                  evidence jsonb DEFAULT '{}', valid_until timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE sql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.grant_consent(subject::text, purpose, policy_version, evidence, valid_until) $$;
COMMENT ON FUNCTION pdp.grant_consent(uuid, text, text, jsonb, timestamptz) IS 'grant_consent for a uuid subject';

CREATE FUNCTION pdp.withdraw_consent(subject text, purpose text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    DELETE FROM pdp.consent_state s
     WHERE s.subject OPERATOR(pg_catalog.=) withdraw_consent.subject
       AND s.purpose OPERATOR(pg_catalog.=) withdraw_consent.purpose;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO pdp.consent_event (subject, purpose, action)
    VALUES (withdraw_consent.subject, withdraw_consent.purpose, 'withdraw');
    PERFORM pdp._audit('withdraw_consent', purpose, subject);
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp.withdraw_consent(text, text) IS
    'withdraws a subject''s consent to a purpose; true if there was one to withdraw';
CREATE FUNCTION pdp.withdraw_consent(subject bigint, purpose text) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.withdraw_consent(subject::text, purpose) $$;
COMMENT ON FUNCTION pdp.withdraw_consent(bigint, text) IS 'withdraw_consent for a bigint or integer subject';
CREATE FUNCTION pdp.withdraw_consent(subject uuid, purpose text) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.withdraw_consent(subject::text, purpose) $$;
COMMENT ON FUNCTION pdp.withdraw_consent(uuid, text) IS 'withdraw_consent for a uuid subject';

-- Bulk consent --------------------------------------------------------------

CREATE TYPE pdp.consent_import AS (
    subject        text,
    purpose        text,
    given_at       timestamptz,
    policy_version text,
    evidence       jsonb,
    valid_until    timestamptz
);
COMMENT ON TYPE pdp.consent_import IS
    'one consent for pdp.import_consents: subject, purpose, when it was given, policy version, evidence, expiry';

-- One pass over the rows in C (src/import.c): every rule a row can break on
-- its own, grant_consent's, in its order, and each subject in canonical form
-- (issue 14, class 7).  The first row that breaks one refuses the call,
-- named by its number, never by its values.
CREATE FUNCTION pdp._import_check(consents pdp.consent_import[]) RETURNS text[]
LANGUAGE C STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pdp_import_check';
COMMENT ON FUNCTION pdp._import_check(pdp.consent_import[]) IS
    'for pdp._import_consents: checks each row''s own rules in one pass (naming the first bad row by its number) and returns the canonical subjects';

-- The set-based core of import_consents: validates every row first, then
-- records the grants in one statement and one audit entry, all or nothing.
-- Per row it calls no SQL or plpgsql function: pdp._import_check checks the
-- rows' own rules and canonicalises the subjects in one C call; the history
-- check is one join with pdp.consent_event (hashed for a large import,
-- probed for a small one), which also tells whether any subject may hold a
-- state for its purpose already.  Then the events and states are written by
-- one statement: plain inserts when none may, an upsert when one may (a
-- re-import), or when the plain inserts meet a state after all (two rows for
-- one subject and purpose): those are undone and the upsert does the same
-- work.  Consent changes of other sessions wait for the import (a lock).  Which row is named: the
-- first that breaks a rule of its own; else the first not newer than its
-- history; else the first that repeats an earlier row's subject and purpose.
CREATE FUNCTION pdp._import_consents(consents pdp.consent_import[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    hist record;
    total bigint;
    canon text[];
    upsert boolean;
BEGIN
    IF consents IS NULL THEN
        RAISE EXCEPTION 'consents must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- The history check must see every consent change committed before the
    -- import writes, and none may commit in between: grants and withdrawals
    -- (ROW EXCLUSIVE on pdp.consent_event) wait for the import to end, and
    -- it for them.  Under REPEATABLE READ or SERIALIZABLE the transaction's
    -- snapshot may predate the lock, so the check could miss a withdrawal.
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'pdp.import_consents must run in a READ COMMITTED transaction'
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = 'An older snapshot could miss a consent change another session committed before the import.',
                  HINT = 'Run it outside an explicit REPEATABLE READ or SERIALIZABLE transaction.';
    END IF;
    LOCK TABLE pdp.consent_event IN SHARE ROW EXCLUSIVE MODE;
    canon := pdp._import_check(consents);
    -- The first row not newer than the subject's recorded history for the
    -- purpose; and whether any subject may already hold a state for it:
    -- every withdrawal event follows a grant it ends, so a pair without
    -- more grants than withdrawals holds none.
    SELECT pg_catalog.min(u.n) FILTER (WHERE e.at OPERATOR(pg_catalog.>=) u.given_at) AS n,
           pg_catalog.count(*) FILTER (WHERE e.action OPERATOR(pg_catalog.=) 'grant')
             OPERATOR(pg_catalog.>) pg_catalog.count(*) FILTER (WHERE e.action OPERATOR(pg_catalog.=) 'withdraw') AS held
      INTO hist
      FROM ROWS FROM (pg_catalog.unnest(consents), pg_catalog.unnest(canon)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)
      JOIN pdp.consent_event e ON e.subject OPERATOR(pg_catalog.=) u.canon AND e.purpose OPERATOR(pg_catalog.=) u.purpose;
    IF hist.n IS NOT NULL THEN
        RAISE EXCEPTION 'row % of the import is not newer than the subject''s recorded consent history for the purpose', hist.n
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Nothing was imported.';
    END IF;
    upsert := hist.held;
    LOOP
        BEGIN
            EXECUTE
               'WITH ev AS (
                    INSERT INTO pdp.consent_event (subject, purpose, action, policy_version, evidence, valid_until, at, recorded_by)
                    SELECT u.canon, u.purpose, ''grant'', u.policy_version, coalesce(u.evidence, ''{}''), u.valid_until, u.given_at, $3
                      FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)
                     ORDER BY u.n
                    RETURNING id, subject, purpose, policy_version, valid_until)
                INSERT INTO pdp.consent_state AS s (subject, purpose, event_id, policy_version, valid_until)
                SELECT ev.subject, ev.purpose, ev.id, ev.policy_version, ev.valid_until FROM ev'
                || CASE WHEN upsert THEN '
                ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
                   SET event_id = EXCLUDED.event_id, policy_version = EXCLUDED.policy_version, valid_until = EXCLUDED.valid_until'
                   ELSE '' END
              USING consents, canon, SESSION_USER;  -- the column's default, read once
            GET DIAGNOSTICS total = ROW_COUNT;
            EXIT;
        EXCEPTION
            WHEN unique_violation THEN
                IF upsert THEN
                    RAISE;
                END IF;
                upsert := true;
            WHEN cardinality_violation THEN
                -- Two rows for one subject and purpose: only now is the input
                -- sorted to name the row.
                SELECT d.n INTO bad FROM (
                    SELECT u.n, pg_catalog.row_number() OVER (PARTITION BY u.canon, u.purpose ORDER BY u.n) AS k
                      FROM ROWS FROM (pg_catalog.unnest(consents), pg_catalog.unnest(canon)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)) d
                 WHERE d.k > 1 ORDER BY d.n LIMIT 1;
                RAISE EXCEPTION 'row % of the import repeats the subject and purpose of an earlier row', bad.n
                    USING ERRCODE = 'unique_violation', DETAIL = 'Nothing was imported.';
        END;
    END LOOP;
    PERFORM pdp._audit('import_consents', NULL, NULL, pg_catalog.jsonb_build_object('consents', total));
    RETURN total;
END
$$;
COMMENT ON FUNCTION pdp._import_consents(pdp.consent_import[]) IS
    'set-based core of pdp.import_consents';

CREATE FUNCTION pdp.import_consents(consents pdp.consent_import[]) RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp._import_consents(consents) $$;
COMMENT ON FUNCTION pdp.import_consents(pdp.consent_import[]) IS
    'records many consents at once, all or nothing, each with its history and evidence; one audit entry with the count; returns the count';

-- The rows are read here, as the caller (a view or function in the source
-- runs with the caller's rights, never pdp's), and handed over as an array.
CREATE FUNCTION pdp.import_consents_from(source regclass) RETURNS bigint
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
        'SELECT pg_catalog.array_agg(ROW(s.subject, s.purpose, s.given_at, s.policy_version, s.evidence, s.valid_until)::pdp.consent_import) FROM %s s',
        source) INTO rows;
    RETURN pdp._import_consents(coalesce(rows, '{}'));
EXCEPTION WHEN undefined_column THEN
    RAISE EXCEPTION 'source "%" lacks a column of pdp.consent_import', pdp._relname(source)
        USING ERRCODE = 'undefined_column',
              HINT = 'The source needs the columns subject, purpose, given_at, policy_version, evidence and valid_until.';
END
$$;
COMMENT ON FUNCTION pdp.import_consents_from(regclass) IS
    'import_consents from a table or view with the columns of pdp.consent_import, read with the caller''s rights';

CREATE FUNCTION pdp.withdraw_consents(subjects text[], purpose text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF subjects IS NULL THEN
        RAISE EXCEPTION 'subjects must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    subjects := pdp._canonical_subjects(subjects);  -- issue 14, class 7; one C call, not one per subject
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
COMMENT ON FUNCTION pdp.withdraw_consents(text[], text) IS
    'withdraws many subjects'' consent to a purpose at once; returns how many had one; one audit entry with the count';

-- Active consent now, or at a past moment (answered from the history).
CREATE FUNCTION pdp.has_consent(subject text, purpose text, at timestamptz DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e record;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    IF at IS NULL THEN
        RETURN EXISTS (SELECT 1 FROM pdp.consent_state s
                        WHERE s.subject OPERATOR(pg_catalog.=) has_consent.subject
                          AND s.purpose OPERATOR(pg_catalog.=) has_consent.purpose
                          AND (s.valid_until IS NULL OR s.valid_until > pg_catalog.now()));
    END IF;
    SELECT c.action, c.valid_until INTO e FROM pdp.consent_event c
     WHERE c.subject OPERATOR(pg_catalog.=) has_consent.subject
       AND c.purpose OPERATOR(pg_catalog.=) has_consent.purpose
       AND c.at <= has_consent.at
     ORDER BY c.at DESC, c.id DESC LIMIT 1;
    RETURN FOUND AND e.action = 'grant' AND (e.valid_until IS NULL OR e.valid_until > has_consent.at);
END
$$;
COMMENT ON FUNCTION pdp.has_consent(text, text, timestamptz) IS
    'whether the subject has active consent to the purpose now, or at the given past moment';
CREATE FUNCTION pdp.has_consent(subject bigint, purpose text, at timestamptz DEFAULT NULL) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.has_consent(subject::text, purpose, at) $$;
COMMENT ON FUNCTION pdp.has_consent(bigint, text, timestamptz) IS 'has_consent for a bigint or integer subject';
CREATE FUNCTION pdp.has_consent(subject uuid, purpose text, at timestamptz DEFAULT NULL) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.has_consent(subject::text, purpose, at) $$;
COMMENT ON FUNCTION pdp.has_consent(uuid, text, timestamptz) IS 'has_consent for a uuid subject';

CREATE FUNCTION pdp.consent_history(subject text)
RETURNS TABLE (event_id bigint, purpose text, action text, policy_version text, evidence jsonb,
               valid_until timestamptz, at timestamptz, recorded_by name)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY
    SELECT c.id, c.purpose, c.action, c.policy_version, c.evidence, c.valid_until, c.at, c.recorded_by
      FROM pdp.consent_event c WHERE c.subject OPERATOR(pg_catalog.=) consent_history.subject
     ORDER BY c.at, c.id;
END
$$;
COMMENT ON FUNCTION pdp.consent_history(text) IS 'every consent grant and withdrawal of a subject, oldest first';
CREATE FUNCTION pdp.consent_history(subject bigint)
RETURNS TABLE (event_id bigint, purpose text, action text, policy_version text, evidence jsonb,
               valid_until timestamptz, at timestamptz, recorded_by name)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM pdp.consent_history(subject::text) $$;
COMMENT ON FUNCTION pdp.consent_history(bigint) IS 'consent_history for a bigint or integer subject';
CREATE FUNCTION pdp.consent_history(subject uuid)
RETURNS TABLE (event_id bigint, purpose text, action text, policy_version text, evidence jsonb,
               valid_until timestamptz, at timestamptz, recorded_by name)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM pdp.consent_history(subject::text) $$;
COMMENT ON FUNCTION pdp.consent_history(uuid) IS 'consent_history for a uuid subject';

-- Restriction --------------------------------------------------------------

CREATE FUNCTION pdp.restrict_subject(subject text, reason text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL OR reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'subject and reason must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO pdp.restriction (subject, reason) VALUES (restrict_subject.subject, restrict_subject.reason)
    ON CONFLICT ON CONSTRAINT restriction_pkey DO NOTHING;
    IF FOUND THEN
        INSERT INTO pdp.restriction_event (subject, action, reason)
        VALUES (restrict_subject.subject, 'restrict', restrict_subject.reason);
        PERFORM pdp._raise_notices(subject, 'restriction');   -- every recipient of their data (GDPR Art. 19)
        PERFORM pdp._audit('restrict_subject', NULL, subject);
    END IF;
END
$$;
COMMENT ON FUNCTION pdp.restrict_subject(text, text) IS
    'restricts (blocks) processing of a subject: rows hidden from non-exempt purposes, updates and deletes refused';
CREATE FUNCTION pdp.restrict_subject(subject bigint, reason text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.restrict_subject(subject::text, reason) $$;
COMMENT ON FUNCTION pdp.restrict_subject(bigint, text) IS 'restrict_subject for a bigint or integer subject';
CREATE FUNCTION pdp.restrict_subject(subject uuid, reason text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.restrict_subject(subject::text, reason) $$;
COMMENT ON FUNCTION pdp.restrict_subject(uuid, text) IS 'restrict_subject for a uuid subject';

CREATE FUNCTION pdp.lift_restriction(subject text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM pdp.restriction r WHERE r.subject OPERATOR(pg_catalog.=) lift_restriction.subject;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO pdp.restriction_event (subject, action) VALUES (lift_restriction.subject, 'lift');
    PERFORM pdp._raise_notices(subject, 'restriction_lifted');
    PERFORM pdp._audit('lift_restriction', NULL, subject);
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp.lift_restriction(text) IS 'lifts a subject''s restriction; true if there was one';
CREATE FUNCTION pdp.lift_restriction(subject bigint) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.lift_restriction(subject::text) $$;
COMMENT ON FUNCTION pdp.lift_restriction(bigint) IS 'lift_restriction for a bigint or integer subject';
CREATE FUNCTION pdp.lift_restriction(subject uuid) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.lift_restriction(subject::text) $$;
COMMENT ON FUNCTION pdp.lift_restriction(uuid) IS 'lift_restriction for a uuid subject';

-- Policy versions ----------------------------------------------------------

CREATE FUNCTION pdp.publish_policy(version text, effective_from timestamptz, document_sha256 text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF version IS NULL OR effective_from IS NULL OR document_sha256 IS NULL THEN
        RAISE EXCEPTION 'version, effective_from and document_sha256 must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF effective_from < pg_catalog.now() + interval '10 days' THEN
        RAISE EXCEPTION 'a policy version must be published at least 10 days before it takes effect'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The earliest allowed effective date is %s.', pg_catalog.now() + interval '10 days'),
                  HINT = 'Law 94-V practice and talap''s policy section 6.4 require 10 days'' notice.';
    END IF;
    IF document_sha256 !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'document_sha256 must be 64 lower-case hexadecimal digits' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF version !~ '^[^[:cntrl:]]{1,63}$' THEN
        RAISE EXCEPTION 'a version''s name must be 1 to 63 characters without control characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.policy_version v WHERE v.version OPERATOR(pg_catalog.=) publish_policy.version) THEN
        RAISE EXCEPTION 'policy version "%" is already published', version USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO pdp.policy_version (version, effective_from, document_sha256)
    VALUES (publish_policy.version, publish_policy.effective_from, publish_policy.document_sha256);
    PERFORM pdp._audit('publish_policy', version, NULL,
                       pg_catalog.jsonb_build_object('effective_from', effective_from, 'document_sha256', document_sha256));
END
$$;
COMMENT ON FUNCTION pdp.publish_policy(text, timestamptz, text) IS
    'publishes a privacy policy version; refused unless it takes effect at least 10 days from now';

CREATE VIEW pdp.policies AS
SELECT v.version, v.effective_from, v.document_sha256, v.published_at, v.published_by,
       coalesce(v.version OPERATOR(pg_catalog.=) (SELECT w.version FROM pdp.policy_version w
                                                   WHERE w.effective_from <= pg_catalog.now()
                                                   ORDER BY w.effective_from DESC LIMIT 1), false) AS in_effect
  FROM pdp.policy_version v;
COMMENT ON VIEW pdp.policies IS 'published policy versions; in_effect marks the one in force now';

CREATE FUNCTION pdp.subjects_needing_reconsent(purpose text DEFAULT NULL)
RETURNS TABLE (subject text, consented_purpose text, policy_version text, granted_at timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    current record;
BEGIN
    IF subjects_needing_reconsent.purpose IS NOT NULL THEN
        PERFORM pdp._require_purpose(subjects_needing_reconsent.purpose);
    END IF;
    SELECT v.version, v.effective_from INTO current FROM pdp.policy_version v
     WHERE v.effective_from <= pg_catalog.now() ORDER BY v.effective_from DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT s.subject, s.purpose, s.policy_version, e.at
      FROM pdp.consent_state s
      JOIN pdp.consent_event e ON e.id OPERATOR(pg_catalog.=) s.event_id
      LEFT JOIN pdp.policy_version v ON v.version OPERATOR(pg_catalog.=) s.policy_version
     WHERE (subjects_needing_reconsent.purpose IS NULL OR s.purpose OPERATOR(pg_catalog.=) subjects_needing_reconsent.purpose)
       AND (s.valid_until IS NULL OR s.valid_until > pg_catalog.now())
       AND (v.version IS NULL OR v.effective_from < current.effective_from)
     ORDER BY s.subject, s.purpose;
END
$$;
COMMENT ON FUNCTION pdp.subjects_needing_reconsent(text) IS
    'subjects whose active consent was given under an older policy version (or none) than the one in effect';

-- Protection records ---------------------------------------------------------

-- What pdp.protect_table installed on each protected table.  DDL that later
-- changes it (drops or alters pdp's policies or trigger, disables row-level
-- security or un-forces it) is refused by the guard in 55_protection_guard.sql;
-- only pdp.unprotect_table (audited) removes a record.
CREATE TABLE pdp.protection (
    tbl          regclass    PRIMARY KEY,
    forced       boolean     NOT NULL,
    policies     text        NOT NULL,
    policy_nodes text        NOT NULL,
    protected_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    protected_by name        NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE pdp.protection IS 'tables protected by pdp.protect_table, with the protection as installed';
COMMENT ON COLUMN pdp.protection.tbl IS 'the protected table';
COMMENT ON COLUMN pdp.protection.forced IS 'whether row-level security is forced on its owner';
COMMENT ON COLUMN pdp.protection.policies IS 'pdp''s policies as installed (pdp._protection_state), compared after every DDL';
COMMENT ON COLUMN pdp.protection.policy_nodes IS
    'pdp''s policies as parsed expressions (pdp._protection_nodes), which renames do not change';
COMMENT ON COLUMN pdp.protection.protected_at IS 'when it was (last) protected';
COMMENT ON COLUMN pdp.protection.protected_by IS 'the session user that protected it';
SELECT pg_catalog.pg_extension_config_dump('pdp.protection', '');

-- pdp's policies on tbl (not the permissive bases), as text that names
-- columns, not numbers, so that it survives renames and a dump and restore.
CREATE FUNCTION pdp._protection_state(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(pg_catalog.string_agg(pg_catalog.format('%s %s %s %s using (%s) check (%s)',
                        p.polname, p.polcmd, CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                        p.polroles::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                        pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)), '; ' ORDER BY p.polname), '')
        FROM pg_catalog.pg_policy p
       WHERE p.polrelid OPERATOR(pg_catalog.=) tbl::oid
         AND p.polname IN ('pdp_select', 'pdp_insert', 'pdp_update', 'pdp_delete') $$;
COMMENT ON FUNCTION pdp._protection_state(regclass) IS 'pdp''s policies on a table, as comparable text';

CREATE FUNCTION pdp._protection_nodes(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(pg_catalog.string_agg(pg_catalog.format('%s %s %s %s %s %s', p.polname, p.polcmd, p.polpermissive,
                        p.polroles::text, p.polqual::text, p.polwithcheck::text), '; ' ORDER BY p.polname), '')
        FROM pg_catalog.pg_policy p
       WHERE p.polrelid OPERATOR(pg_catalog.=) tbl::oid
         AND p.polname IN ('pdp_select', 'pdp_insert', 'pdp_update', 'pdp_delete') $$;
COMMENT ON FUNCTION pdp._protection_nodes(regclass) IS 'pdp''s policies on a table as parsed expressions (OIDs and column numbers)';


-- The role a session acts as (after SET ROLE), outside any SECURITY DEFINER
-- function: whom the protection functions, which run as the extension's
-- owner, check ownership for.
CREATE FUNCTION pdp._outer_user() RETURNS regrole
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_outer_user';
COMMENT ON FUNCTION pdp._outer_user() IS 'the role the session acts as, outside SECURITY DEFINER functions';

CREATE FUNCTION pdp._protection_ddl(active boolean) RETURNS boolean
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_protection_ddl';
COMMENT ON FUNCTION pdp._protection_ddl(boolean) IS
    'while pdp''s protection functions change its policies the guard stands aside: sets the switch (NULL reads it), returns its previous value';

CREATE FUNCTION pdp._require_outer_owner(tbl regclass) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid
                     AND pg_catalog.pg_has_role(pdp._outer_user()::oid, c.relowner, 'USAGE')) THEN
        RAISE EXCEPTION 'must be owner of table %', pdp._relname(tbl) USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._require_outer_owner(regclass) IS
    'raises unless the role the session acts as owns the table (for functions running as the extension''s owner)';

-- Row visibility -------------------------------------------------------------

-- The row test of a protected table over its registered subject columns,
-- as SQL for a policy or a masked view's WHERE (NULL when none is
-- registered); with_row_id, in the SELECT policy's form, which passes each
-- call the row's ctid too (pdp._visible(subject, tid)).
CREATE FUNCTION pdp._visibility_sql(tbl regclass, with_row_id boolean) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ WITH RECURSIVE up(rel, depth) AS (
          SELECT tbl::oid, 0
          UNION ALL
          SELECT i.inhparent, up.depth + 1 FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) up.rel
           WHERE up.depth < 32),
      owner AS (   -- the table itself if registered, else its nearest registered ancestor
          SELECT up.rel FROM up WHERE EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl::oid OPERATOR(pg_catalog.=) up.rel)
           ORDER BY up.depth LIMIT 1)
      SELECT pg_catalog.string_agg(pg_catalog.format(CASE WHEN with_row_id THEN 'pdp._visible(%I, ctid)' ELSE 'pdp._visible(%I)' END,
                                                     s.col), ' AND ' ORDER BY s.attnum)
        FROM pdp.subject_column s JOIN owner ON s.tbl::oid OPERATOR(pg_catalog.=) owner.rel $$;
COMMENT ON FUNCTION pdp._visibility_sql(regclass, boolean) IS
    'the row test of a protected table, as SQL: its registered subject columns, or those of its nearest registered ancestor (NULL when none); with_row_id passes each call the row''s ctid (the SELECT policy''s form)';
CREATE FUNCTION pdp._visibility_sql(tbl regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp._visibility_sql(tbl, false) $$;
COMMENT ON FUNCTION pdp._visibility_sql(regclass) IS
    'the row test of a protected table, as SQL: its registered subject columns, or those of its nearest registered ancestor (NULL when none)';

-- The names of the subject columns the row test of tbl reads (its own, or
-- its nearest registered ancestor's), in pdp._visibility_sql's order.
CREATE FUNCTION pdp._subject_column_names(tbl regclass) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.array_agg(s.col::text ORDER BY s.attnum)
        FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) $1 $$;
COMMENT ON FUNCTION pdp._subject_column_names(regclass) IS
    'the names of a table''s registered subject columns, in attribute order (the arguments of its trigger on Citus shards)';

CREATE FUNCTION pdp.protect_table(tbl regclass, force boolean DEFAULT true) RETURNS void
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

-- (Re)creates protect_table's policies and trigger; the caller has checked
-- that it may.  Also run by the update script over every protected table.
-- pdp's policies are RESTRICTIVE, so no other policy on the table can widen
-- what they show; for each command that no other permissive policy covers, a
-- permissive pdp_base_<command> (true) lets the restrictive ones decide.  The
-- installed state is recorded in pdp.protection, and DDL that later weakens
-- it is refused at commit (pdp._check_protection).
-- On a Citus distributed or reference table Citus carries the policies, the
-- row-level security switches and the trigger to every shard; the trigger
-- needs citus.enable_unsafe_triggers, set here for the statement creating it
-- only (and reverted when this function returns), and it is given the
-- table's name and subject columns' names as arguments: the workers'
-- registry does not know the shards (pdp._refuse_restricted).
CREATE FUNCTION pdp._install_protection(tbl regclass, force boolean) RETURNS void
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
COMMENT ON FUNCTION pdp._install_protection(regclass, boolean) IS
    'creates protect_table''s policies and restricted-row trigger and records them, for the table''s owner (no audit)';

-- Drops what protect_table made, if anything, and its record, for the
-- table's owner; audited, since it is the only way around the guard.
CREATE FUNCTION pdp._unprotect(tbl regclass) RETURNS boolean
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
COMMENT ON FUNCTION pdp._unprotect(regclass) IS 'drops the policies, trigger and record of protect_table, for the table''s owner; audited';

CREATE FUNCTION pdp.unprotect_table(tbl regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF NOT pdp._unprotect(tbl) THEN
        RAISE EXCEPTION 'table "%" is not protected', pdp._relname(tbl) USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_policy pol WHERE pol.polrelid OPERATOR(pg_catalog.=) tbl::oid) THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', tbl);
        EXECUTE pg_catalog.format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', tbl);
    END IF;
END
$$;
COMMENT ON FUNCTION pdp.unprotect_table(regclass) IS
    'removes pdp_ext''s policies and trigger; row-level security is disabled if no other policy remains';

CREATE VIEW pdp.protected_tables AS
SELECT c.oid::regclass AS table_name, c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner_sees_all_unless_forced
  FROM pg_catalog.pg_class c
 WHERE EXISTS (SELECT 1 FROM pdp.protection r WHERE r.tbl::oid OPERATOR(pg_catalog.=) c.oid);
COMMENT ON VIEW pdp.protected_tables IS 'tables protected by pdp_ext; owners and BYPASSRLS roles see all rows unless forced';

-- Keeps a protected table's policies in step with its registered subject
-- columns; called by register_table and unregister_table.
CREATE FUNCTION pdp._sync_protection(tbl regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    forced boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pdp.protection r WHERE r.tbl OPERATOR(pg_catalog.=) _sync_protection.tbl) THEN
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
COMMENT ON FUNCTION pdp._sync_protection(regclass) IS
    'rebuilds a protected table''s policies after its subject columns change';
