-- Faster consent import (issue 13, second step): each row's own rules and
-- its subject's canonical form in one C call (pdp._import_check), the
-- history check also telling whether an upsert is needed, one statement text
-- for the plain inserts and the upsert, and event numbers cached per session;
-- the set-based withdrawal's subjects canonicalised in one C call.

CREATE OR REPLACE FUNCTION pdp._import_check(consents pdp.consent_import[]) RETURNS text[]
LANGUAGE C STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pdp_import_check';
COMMENT ON FUNCTION pdp._import_check(pdp.consent_import[]) IS
    'for pdp._import_consents: checks each row''s own rules in one pass (naming the first bad row by its number) and returns the canonical subjects';
REVOKE ALL ON FUNCTION pdp._import_check(pdp.consent_import[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION pdp._import_consents(consents pdp.consent_import[]) RETURNS bigint
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

ALTER SEQUENCE pdp.consent_event_id_seq CACHE 100;

-- The set-based withdrawal canonicalises its subjects in one C call too.
CREATE OR REPLACE FUNCTION pdp._canonical_subjects(subjects text[]) RETURNS text[]
LANGUAGE C STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pdp_canonical_subjects';
COMMENT ON FUNCTION pdp._canonical_subjects(text[]) IS
    'pdp._canonical_subject of every element in one call (NULL stays NULL), for the bulk entry points';
REVOKE ALL ON FUNCTION pdp._canonical_subjects(text[]) FROM PUBLIC;

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
