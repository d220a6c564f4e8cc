-- Faster consent import (issue 13): one canonicalising pass, purposes and
-- policy versions joined instead of looked up per row.

CREATE OR REPLACE FUNCTION pdp._import_consents(consents pdp.consent_import[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    bad_n bigint;
    total bigint;
BEGIN
    IF consents IS NULL THEN
        RAISE EXCEPTION 'consents must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- One form per subject (issue 14, class 7): the first row whose subject
    -- fits no registered subject column is named by its number; the later
    -- statements canonicalise as they read (a cheap C call, no copy).
    SELECT pg_catalog.min(u.n) INTO bad_n
      FROM pg_catalog.unnest(consents) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, n)
     WHERE u.subject OPERATOR(pg_catalog.<>) '' AND pdp._canonical_subject_or_null(u.subject) IS NULL;
    IF bad_n IS NOT NULL THEN
        RAISE EXCEPTION 'row % of the import has a subject that fits no registered subject column', bad_n
            USING ERRCODE = 'invalid_text_representation', DETAIL = 'Nothing was imported.';
    END IF;
    -- The first row that breaks a rule, and which rule.  Purposes and policy
    -- versions are joined (hashed once), not looked up per row.
    SELECT i.n, CASE
             WHEN i.subject IS NULL OR i.subject OPERATOR(pg_catalog.=) '' THEN 'has no subject'
             WHEN i.purpose IS NULL THEN 'has no purpose'
             WHEN p.purpose IS NULL THEN 'names an unknown purpose'
             WHEN i.given_at IS NULL THEN 'has no time of consent'
             WHEN i.given_at OPERATOR(pg_catalog.>) pg_catalog.now() THEN 'gives a time of consent in the future'
             WHEN i.policy_version IS NOT NULL AND v.version IS NULL THEN 'names an unknown policy version'
             WHEN pg_catalog.jsonb_typeof(i.evidence) OPERATOR(pg_catalog.<>) 'object' THEN 'has evidence that is not a JSON object'
             WHEN pdp._credential_evidence(i.evidence) THEN 'has evidence holding a credential'
             WHEN i.valid_until IS NOT NULL AND i.valid_until OPERATOR(pg_catalog.<=) pg_catalog.now()
                  THEN 'has a validity that has already ended'
             ELSE 'is not newer than the subject''s recorded consent history for the purpose'
           END AS rule,
           CASE WHEN (i.purpose IS NOT NULL AND p.purpose IS NULL) OR (i.policy_version IS NOT NULL AND v.version IS NULL)
                THEN '42704' WHEN i.subject IS NULL OR i.subject OPERATOR(pg_catalog.=) '' THEN '22P02'
                ELSE '22023' END AS state
      INTO bad
      FROM (SELECT u.n, coalesce(pdp._canonical_subject_or_null(u.subject), u.subject) AS subject, u.purpose, u.given_at,
                   u.policy_version, coalesce(u.evidence, '{}') AS evidence, u.valid_until
              FROM pg_catalog.unnest(consents) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, n)) i
      LEFT JOIN pdp.purpose p ON p.purpose OPERATOR(pg_catalog.=) i.purpose
      LEFT JOIN pdp.policy_version v ON v.version OPERATOR(pg_catalog.=) i.policy_version
     WHERE i.subject IS NULL OR i.subject OPERATOR(pg_catalog.=) '' OR i.purpose IS NULL OR i.given_at IS NULL
        OR i.given_at OPERATOR(pg_catalog.>) pg_catalog.now()
        OR pg_catalog.jsonb_typeof(i.evidence) OPERATOR(pg_catalog.<>) 'object'
        OR pdp._credential_evidence(i.evidence)
        OR (i.valid_until IS NOT NULL AND i.valid_until OPERATOR(pg_catalog.<=) pg_catalog.now())
        OR p.purpose IS NULL
        OR (i.policy_version IS NOT NULL AND v.version IS NULL)
        OR EXISTS (SELECT 1 FROM pdp.consent_event e
                    WHERE e.subject OPERATOR(pg_catalog.=) i.subject AND e.purpose OPERATOR(pg_catalog.=) i.purpose
                      AND e.at OPERATOR(pg_catalog.>=) i.given_at)
     ORDER BY i.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'row % of the import %', bad.n, bad.rule
            USING ERRCODE = bad.state, DETAIL = 'Nothing was imported.';
    END IF;
    -- Two rows for one subject and purpose make the upsert below fail
    -- (cardinality_violation); only then is the input sorted to name the row.
    BEGIN
        WITH ev AS (
            INSERT INTO pdp.consent_event (subject, purpose, action, policy_version, evidence, valid_until, at)
            SELECT coalesce(pdp._canonical_subject_or_null(u.subject), u.subject), u.purpose, 'grant', u.policy_version,
                   coalesce(u.evidence, '{}'), u.valid_until, u.given_at
              FROM pg_catalog.unnest(consents) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, n)
             ORDER BY u.n
            RETURNING id, subject, purpose, policy_version, valid_until)
        INSERT INTO pdp.consent_state AS s (subject, purpose, event_id, policy_version, valid_until)
        SELECT ev.subject, ev.purpose, ev.id, ev.policy_version, ev.valid_until FROM ev
        ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
           SET event_id = EXCLUDED.event_id, policy_version = EXCLUDED.policy_version, valid_until = EXCLUDED.valid_until;
        GET DIAGNOSTICS total = ROW_COUNT;
    EXCEPTION WHEN cardinality_violation THEN
        SELECT d.n INTO bad FROM (
            SELECT i.n, pg_catalog.row_number() OVER (PARTITION BY i.subject, i.purpose ORDER BY i.n) AS k
              FROM (SELECT u.n, coalesce(pdp._canonical_subject_or_null(u.subject), u.subject) AS subject, u.purpose
                      FROM pg_catalog.unnest(consents) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, n)) i) d
         WHERE d.k > 1 ORDER BY d.n LIMIT 1;
        RAISE EXCEPTION 'row % of the import repeats the subject and purpose of an earlier row', bad.n
            USING ERRCODE = 'unique_violation', DETAIL = 'Nothing was imported.';
    END;
    PERFORM pdp._audit('import_consents', NULL, NULL, pg_catalog.jsonb_build_object('consents', total));
    RETURN total;
END
$$;
