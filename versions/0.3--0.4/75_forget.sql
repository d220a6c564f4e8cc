-- Erasure that leaves nothing behind in pdp's own tables, and notices for
-- every correction the law counts (issue 17, points 1 and 3).

ALTER TABLE pdp.rectification_notice ALTER COLUMN tbl DROP NOT NULL;
ALTER TABLE pdp.rectification_notice ADD COLUMN kind text NOT NULL DEFAULT 'rectification';
ALTER TABLE pdp.rectification_notice ADD CONSTRAINT rectification_notice_kind_check
    CHECK (kind IN ('rectification', 'erasure', 'restriction', 'restriction_lifted'));
ALTER TABLE pdp.rectification_notice ADD CONSTRAINT rectification_notice_tbl_check
    CHECK ((kind = 'rectification') = (tbl IS NOT NULL));
COMMENT ON TABLE pdp.rectification_notice IS
    'recipients to tell that a subject''s data was rectified or erased, or its processing restricted or the restriction lifted (talap §5.1.4, GDPR Art. 19)';
COMMENT ON COLUMN pdp.rectification_notice.kind IS 'rectification, erasure, restriction or restriction_lifted';
COMMENT ON COLUMN pdp.rectification_notice.tbl IS 'the table whose classified columns changed (rectifications only)';
COMMENT ON COLUMN pdp.rectification_notice.columns IS 'the columns that changed (names, never values); empty for other kinds';

CREATE OR REPLACE VIEW pdp.pending_notices AS
SELECT n.id, n.subject, n.recipient, r.country, n.tbl AS table_name, n.columns, n.raised_at, n.kind
  FROM pdp.rectification_notice n LEFT JOIN pdp.recipient r ON r.name OPERATOR(pg_catalog.=) n.recipient
 WHERE n.acknowledged_at IS NULL;
COMMENT ON VIEW pdp.pending_notices IS
    'rectifications, erasures, restrictions and lifted restrictions still to be told to the recipients of the subject''s data';

CREATE OR REPLACE FUNCTION pdp._erasing() RETURNS boolean
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_erasing';
COMMENT ON FUNCTION pdp._erasing() IS 'whether an erasure is running (the switch pdp._set_erasing sets)';
REVOKE ALL ON FUNCTION pdp._erasing() FROM PUBLIC;

CREATE OR REPLACE FUNCTION pdp._refuse_history_change() RETURNS trigger
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

CREATE OR REPLACE FUNCTION pdp._raise_notices(subject text, kind text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO pdp.rectification_notice (subject, recipient, tbl, columns, kind)
    SELECT DISTINCT _raise_notices.subject, d.recipient, NULL::regclass, '{}'::text[], _raise_notices.kind
      FROM pdp.disclosure d WHERE d.subject OPERATOR(pg_catalog.=) _raise_notices.subject;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp._raise_notices(text, text) IS
    'raises a notice of a kind (erasure, restriction, restriction_lifted) for every recipient of a subject''s data';
REVOKE ALL ON FUNCTION pdp._raise_notices(text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION pdp._forget_subject(subject text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    erased text := '~erased:' || pdp._subject_pseudonym(subject);
    n integer;
    done jsonb := '{}';
BEGIN
    IF NOT pdp._erasing() THEN
        RAISE EXCEPTION 'pdp._forget_subject runs only inside an erasure' USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM pdp.consent_state c WHERE c.subject OPERATOR(pg_catalog.=) _forget_subject.subject;
    GET DIAGNOSTICS n = ROW_COUNT; done := done || pg_catalog.jsonb_build_object('consent_state', n);
    UPDATE pdp.consent_event c SET subject = erased, evidence = '{}' WHERE c.subject OPERATOR(pg_catalog.=) _forget_subject.subject;
    GET DIAGNOSTICS n = ROW_COUNT; done := done || pg_catalog.jsonb_build_object('consent_event', n);
    DELETE FROM pdp.restriction r WHERE r.subject OPERATOR(pg_catalog.=) _forget_subject.subject;
    GET DIAGNOSTICS n = ROW_COUNT; done := done || pg_catalog.jsonb_build_object('restriction', n);
    UPDATE pdp.restriction_event r SET subject = erased, reason = NULL WHERE r.subject OPERATOR(pg_catalog.=) _forget_subject.subject;
    GET DIAGNOSTICS n = ROW_COUNT; done := done || pg_catalog.jsonb_build_object('restriction_event', n);
    UPDATE pdp.disclosure d SET subject = erased WHERE d.subject OPERATOR(pg_catalog.=) _forget_subject.subject;
    GET DIAGNOSTICS n = ROW_COUNT; done := done || pg_catalog.jsonb_build_object('disclosure', n);
    UPDATE pdp.subject_request q SET subject = erased WHERE q.subject OPERATOR(pg_catalog.=) _forget_subject.subject;
    GET DIAGNOSTICS n = ROW_COUNT; done := done || pg_catalog.jsonb_build_object('subject_request', n);
    UPDATE pdp.rectification_notice x
       SET subject = erased,
           acknowledged_at = coalesce(x.acknowledged_at, pg_catalog.now()),
           acknowledged_by = coalesce(x.acknowledged_by, 'pdp: superseded by erasure')
     WHERE x.subject OPERATOR(pg_catalog.=) _forget_subject.subject
       AND (x.kind OPERATOR(pg_catalog.<>) 'erasure' OR x.acknowledged_at IS NOT NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    n := n + pdp._citus_forget_worker_notices(subject, erased);   -- those on Citus workers (src/sql/15_citus.sql)
    done := done || pg_catalog.jsonb_build_object('notice', n);
    -- Holds in force refuse the erasure, so these are released ones.
    UPDATE pdp.hold h SET subject = erased, reason = '(subject erased)' WHERE h.subject OPERATOR(pg_catalog.=) _forget_subject.subject;
    GET DIAGNOSTICS n = ROW_COUNT; done := done || pg_catalog.jsonb_build_object('hold', n);
    RETURN done;
END
$$;
COMMENT ON FUNCTION pdp._forget_subject(text) IS
    'inside erase_subject: pdp''s own tables keep only the erased subject''s pseudonym, no evidence or reasons; returns counts per table';
REVOKE ALL ON FUNCTION pdp._forget_subject(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION pdp.restrict_subject(subject text, reason text) RETURNS void
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
CREATE OR REPLACE FUNCTION pdp.lift_restriction(subject text) RETURNS boolean
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
CREATE OR REPLACE FUNCTION pdp.acknowledge_notice(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n record;
BEGIN
    PERFORM pdp._citus_collect_notice(id);   -- a notice recorded on a Citus worker: copied here first
    UPDATE pdp.rectification_notice x SET acknowledged_at = pg_catalog.now(), acknowledged_by = SESSION_USER
     WHERE x.id OPERATOR(pg_catalog.=) acknowledge_notice.id AND x.acknowledged_at IS NULL
    RETURNING * INTO n;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'notice % does not exist or is acknowledged already', id USING ERRCODE = 'undefined_object';
    END IF;
    IF n.kind = 'erasure' THEN
        -- The recipient has been told; the erased subject's identifier goes.
        UPDATE pdp.rectification_notice x SET subject = '~erased:' || pdp._subject_pseudonym(n.subject)
         WHERE x.id OPERATOR(pg_catalog.=) acknowledge_notice.id;
    END IF;
    PERFORM pdp._audit('acknowledge_notice', n.recipient, n.subject, pg_catalog.jsonb_build_object('notice_id', id, 'kind', n.kind));
END
$$;
COMMENT ON FUNCTION pdp.acknowledge_notice(bigint) IS
    'closes a notice once the recipient was told; an erasure notice then keeps only the subject''s pseudonym';
-- pdp.erase_subject: re-created with its sweep argument by 76_anonymise.sql.
