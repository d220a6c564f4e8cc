-- Faster consent import (issue 13): one canonicalising pass, purposes and
-- policy versions joined instead of looked up per row.

CREATE OR REPLACE FUNCTION pdp._import_consents(consents pdp.consent_import[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    bad_n bigint;
    hist_n bigint;
    cred_n bigint;
    cred_names text[];
    total bigint;
    canon text[];
BEGIN
    IF consents IS NULL THEN
        RAISE EXCEPTION 'consents must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- One form per subject (issue 14, class 7): NULL in canon where a subject
    -- fits no registered subject column; the first such row is named by its
    -- number.
    canon := ARRAY(SELECT pdp._canonical_subject_or_null(u.subject)
                     FROM pg_catalog.unnest(consents) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, n)
                    ORDER BY u.n);
    SELECT pg_catalog.min(u.n) INTO bad_n
      FROM ROWS FROM (pg_catalog.unnest(consents), pg_catalog.unnest(canon)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)
     WHERE u.subject OPERATOR(pg_catalog.<>) '' AND u.canon IS NULL;
    IF bad_n IS NOT NULL THEN
        RAISE EXCEPTION 'row % of the import has a subject that fits no registered subject column', bad_n
            USING ERRCODE = 'invalid_text_representation', DETAIL = 'Nothing was imported.';
    END IF;
    -- The first row not newer than the subject's recorded history for the
    -- purpose (one join: hashed for a large import, probed for a small one).
    SELECT pg_catalog.min(i.n) INTO hist_n
      FROM (SELECT u.n, coalesce(u.canon, u.subject) AS subject, u.purpose, u.given_at
              FROM ROWS FROM (pg_catalog.unnest(consents), pg_catalog.unnest(canon)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)) i
     WHERE EXISTS (SELECT 1 FROM pdp.consent_event e
                    WHERE e.subject OPERATOR(pg_catalog.=) i.subject AND e.purpose OPERATOR(pg_catalog.=) i.purpose
                      AND e.at OPERATOR(pg_catalog.>=) i.given_at);
    -- The first row whose evidence holds a credential: the rule of
    -- pdp._credential_evidence (keep the two alike), over all rows in one
    -- query, with the declared credential columns' names read once.
    cred_names := ARRAY(SELECT a.attname::text FROM pdp.credential_column c
                          JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.tbl::oid
                                                        AND a.attnum OPERATOR(pg_catalog.=) c.attnum);
    SELECT pg_catalog.min(u.n) INTO cred_n
      FROM ROWS FROM (pg_catalog.unnest(consents)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, n)
     WHERE u.evidence IS NOT NULL AND pg_catalog.jsonb_typeof(u.evidence) OPERATOR(pg_catalog.=) 'object'
       AND u.evidence OPERATOR(pg_catalog.<>) '{}'::jsonb
       AND EXISTS (SELECT 1 FROM pg_catalog.jsonb_path_query(u.evidence, 'strict $.**') v,
                                 pg_catalog.jsonb_object_keys(CASE WHEN pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'object'
                                                                   THEN v ELSE '{}'::jsonb END) k
                    WHERE k OPERATOR(pg_catalog.~*) '(passw|secret|token|api_?key|private_?key|пароль)'
                       OR k OPERATOR(pg_catalog.=) ANY (cred_names));
    -- The first row that breaks a rule (up to hist_n), and which rule.
    -- Purposes and policy versions are joined (hashed once), not looked up
    -- per row.
    SELECT i.n, CASE
             WHEN i.subject IS NULL OR i.subject OPERATOR(pg_catalog.=) '' THEN 'has no subject'
             WHEN i.purpose IS NULL THEN 'has no purpose'
             WHEN p.purpose IS NULL THEN 'names an unknown purpose'
             WHEN i.given_at IS NULL THEN 'has no time of consent'
             WHEN i.given_at OPERATOR(pg_catalog.>) pg_catalog.now() THEN 'gives a time of consent in the future'
             WHEN i.policy_version IS NOT NULL AND v.version IS NULL THEN 'names an unknown policy version'
             WHEN pg_catalog.jsonb_typeof(i.evidence) OPERATOR(pg_catalog.<>) 'object' THEN 'has evidence that is not a JSON object'
             WHEN i.n OPERATOR(pg_catalog.=) cred_n THEN 'has evidence holding a credential'
             WHEN i.valid_until IS NOT NULL AND i.valid_until OPERATOR(pg_catalog.<=) pg_catalog.now()
                  THEN 'has a validity that has already ended'
             ELSE 'is not newer than the subject''s recorded consent history for the purpose'
           END AS rule,
           CASE WHEN (i.purpose IS NOT NULL AND p.purpose IS NULL) OR (i.policy_version IS NOT NULL AND v.version IS NULL)
                THEN '42704' WHEN i.subject IS NULL OR i.subject OPERATOR(pg_catalog.=) '' THEN '22P02'
                ELSE '22023' END AS state
      INTO bad
      FROM (SELECT u.n, coalesce(u.canon, u.subject) AS subject, u.purpose, u.given_at,
                   u.policy_version, coalesce(u.evidence, '{}') AS evidence, u.valid_until
              FROM ROWS FROM (pg_catalog.unnest(consents), pg_catalog.unnest(canon)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)) i
      LEFT JOIN pdp.purpose p ON p.purpose OPERATOR(pg_catalog.=) i.purpose
      LEFT JOIN pdp.policy_version v ON v.version OPERATOR(pg_catalog.=) i.policy_version
     WHERE (hist_n IS NULL OR i.n OPERATOR(pg_catalog.<=) hist_n)
       AND (i.subject IS NULL OR i.subject OPERATOR(pg_catalog.=) '' OR i.purpose IS NULL OR i.given_at IS NULL
        OR i.given_at OPERATOR(pg_catalog.>) pg_catalog.now()
        OR pg_catalog.jsonb_typeof(i.evidence) OPERATOR(pg_catalog.<>) 'object'
        OR i.n OPERATOR(pg_catalog.=) cred_n
        OR (i.valid_until IS NOT NULL AND i.valid_until OPERATOR(pg_catalog.<=) pg_catalog.now())
        OR p.purpose IS NULL
        OR (i.policy_version IS NOT NULL AND v.version IS NULL))
     ORDER BY i.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'row % of the import %', bad.n, bad.rule
            USING ERRCODE = bad.state, DETAIL = 'Nothing was imported.';
    END IF;
    IF hist_n IS NOT NULL THEN
        RAISE EXCEPTION 'row % of the import is not newer than the subject''s recorded consent history for the purpose', hist_n
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Nothing was imported.';
    END IF;
    -- Most imports record consents nobody has yet: the events and states
    -- are then plain inserts.  A subject that already has a state for the
    -- purpose (or a concurrent grant, or two rows for one subject and
    -- purpose) fails that attempt with a unique violation; it is undone and
    -- the upsert below does the same work.
    BEGIN
        WITH ev AS (
            INSERT INTO pdp.consent_event (subject, purpose, action, policy_version, evidence, valid_until, at)
            SELECT coalesce(u.canon, u.subject), u.purpose, 'grant', u.policy_version,
                   coalesce(u.evidence, '{}'), u.valid_until, u.given_at
              FROM ROWS FROM (pg_catalog.unnest(consents), pg_catalog.unnest(canon)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)
             ORDER BY u.n
            RETURNING id, subject, purpose, policy_version, valid_until)
        INSERT INTO pdp.consent_state (subject, purpose, event_id, policy_version, valid_until)
        SELECT ev.subject, ev.purpose, ev.id, ev.policy_version, ev.valid_until FROM ev;
        GET DIAGNOSTICS total = ROW_COUNT;
    EXCEPTION WHEN unique_violation THEN
        total := NULL;
    END;
    -- Two rows for one subject and purpose make the upsert below fail
    -- (cardinality_violation); only then is the input sorted to name the row.
    IF total IS NULL THEN
    BEGIN
        WITH ev AS (
            INSERT INTO pdp.consent_event (subject, purpose, action, policy_version, evidence, valid_until, at)
            SELECT coalesce(u.canon, u.subject), u.purpose, 'grant', u.policy_version,
                   coalesce(u.evidence, '{}'), u.valid_until, u.given_at
              FROM ROWS FROM (pg_catalog.unnest(consents), pg_catalog.unnest(canon)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)
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
              FROM (SELECT u.n, coalesce(u.canon, u.subject) AS subject, u.purpose
                      FROM ROWS FROM (pg_catalog.unnest(consents), pg_catalog.unnest(canon)) WITH ORDINALITY AS u(subject, purpose, given_at, policy_version, evidence, valid_until, canon, n)) i) d
         WHERE d.k > 1 ORDER BY d.n LIMIT 1;
        RAISE EXCEPTION 'row % of the import repeats the subject and purpose of an earlier row', bad.n
            USING ERRCODE = 'unique_violation', DETAIL = 'Nothing was imported.';
    END;
    END IF;
    PERFORM pdp._audit('import_consents', NULL, NULL, pg_catalog.jsonb_build_object('consents', total));
    RETURN total;
END
$$;
