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
    GET DIAGNOSTICS n = ROW_COUNT; done := done || pg_catalog.jsonb_build_object('notice', n);
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
CREATE OR REPLACE FUNCTION pdp.erase_subject(subject text, reason text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    cond text;
    own_cond text;
    cut_cond text;
    co_held text;
    n bigint;
    m bigint;
    rets jsonb;
    tables jsonb := '[]';
    followed jsonb := '[]';
    held text[];
    set_list text;
    anon text;
    cut_actions text;
    erase_values text[];
    f record;
    fit regtype[];
    c record;
    i integer;
    p text;
    withdrawn integer := 0;
    receipt jsonb;
    notices integer;
    forgotten jsonb;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL OR reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'subject and reason must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pdp._subject_held(subject) THEN
        RAISE EXCEPTION 'subject is under a legal hold'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Nothing was erased.',
                  HINT = 'pdp.holds lists the hold; pdp.release_hold releases it once its legal ground has ended.';
    END IF;
    -- A system subject (the guest, an administrator, a service account) is
    -- part of the application, not a learner: erasing it would break it.
    IF EXISTS (SELECT 1 FROM pdp.system_subject y WHERE y.subject OPERATOR(pg_catalog.=) erase_subject.subject) THEN
        RAISE EXCEPTION 'subject is a system subject'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Nothing was erased.',
                  HINT = 'If the account really belongs to a person who asked for erasure, pdp.drop_system_subject first.';
    END IF;
    held := ARRAY(SELECT h.subject FROM pdp.hold h WHERE h.subject IS NOT NULL AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
    fit := pdp._subject_types(subject);
    PERFORM pdp._set_erasing(true);
    FOR t IN SELECT o.tbl FROM pdp._deletion_order() o LOOP
        -- One pass over the table's subject columns builds every condition:
        -- the subject in any column (cond), in an own column (own_cond), in
        -- a link column (cut_cond); a held subject in an own column
        -- (co_held); the cuts (set_list); and "names nobody once cut"
        -- (anon: every subject column NULL, at its erase value, or a cut
        -- column naming the subject).  $3 holds the erase values.
        cond := NULL; own_cond := NULL; cut_cond := NULL; co_held := NULL; set_list := NULL; anon := NULL;
        cut_actions := NULL; erase_values := '{}'; i := 0;
        FOR c IN SELECT * FROM pdp._subject_columns(t, fit) LOOP
            i := i + 1;
            erase_values := erase_values || c.erase_value;
            IF c.fits THEN
                cond := concat_ws(' OR ', cond, pg_catalog.format('t.%I OPERATOR(pg_catalog.=) $1::%s', c.col, c.typ));
            END IF;
            IF c.on_erase = 'delete' THEN
                -- (coalesce: a NULL column names nobody, so it must not make the test NULL)
                co_held := concat_ws(' OR ', co_held, pg_catalog.format('coalesce(t.%I::text OPERATOR(pg_catalog.=) ANY ($2), false)', c.col));
                IF c.fits THEN
                    own_cond := concat_ws(' OR ', own_cond, pg_catalog.format('t.%I OPERATOR(pg_catalog.=) $1::%s', c.col, c.typ));
                END IF;
            END IF;
            IF c.on_erase IN ('set_null', 'set_value') THEN
                anon := concat_ws(' AND ', anon, pg_catalog.format(
                            '(t.%1$I IS NULL OR t.%1$I OPERATOR(pg_catalog.=) ($3)[%2$s]::%3$s%4$s)', c.col, i, c.typ,
                            CASE WHEN c.fits THEN pg_catalog.format(' OR t.%I OPERATOR(pg_catalog.=) $1::%s', c.col, c.typ) ELSE '' END));
                IF c.fits THEN
                    cut_cond := concat_ws(' OR ', cut_cond, pg_catalog.format('t.%I OPERATOR(pg_catalog.=) $1::%s', c.col, c.typ));
                    set_list := concat_ws(', ', set_list, pg_catalog.format(
                                    '%1$I = CASE WHEN t.%1$I OPERATOR(pg_catalog.=) $1::%2$s THEN %3$s ELSE t.%1$I END', c.col, c.typ,
                                    CASE WHEN c.on_erase = 'set_null' THEN 'NULL' ELSE pg_catalog.format('($3)[%s]::%s', i, c.typ) END));
                    cut_actions := CASE WHEN cut_actions IS NULL OR cut_actions = c.on_erase THEN c.on_erase
                                        ELSE 'set_null+set_value' END;
                END IF;
            ELSE
                anon := concat_ws(' AND ', anon, pg_catalog.format('t.%I IS NULL', c.col));
            END IF;
        END LOOP;
        CONTINUE WHEN cond IS NULL;
        co_held := '(' || coalesce(co_held, 'false') || ')';
        anon := '(' || anon || ')';
        IF EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) t AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until > pg_catalog.now())) THEN
            SELECT x.n INTO n
              FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE %s', t, cond), subject) AS x(n bigint);
            IF n > 0 THEN
                RAISE EXCEPTION 'table "%" is under a legal hold', pdp._relname(t)
                    USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = 'Nothing was erased.';
            END IF;
            CONTINUE;
        END IF;

        -- 1. Rows the subject owns are deleted (delete wins), and what follows them.
        IF own_cond IS NOT NULL THEN
            SELECT pg_catalog.count(*), pg_catalog.jsonb_agg(x.r) INTO n, rets
              FROM pdp._exec_as_owner(t, pg_catalog.format('DELETE FROM %s t WHERE (%s) AND NOT %s RETURNING %s',
                                                           t, own_cond, co_held,
                                                           -- (only what links need: Citus refuses a STABLE RETURNING)
                                                           CASE WHEN EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) t)
                                                                THEN pdp._link_returning(t) ELSE 'NULL::jsonb' END),
                                      subject, held) AS x(r jsonb);
            IF n > 0 THEN
                tables := tables || pg_catalog.jsonb_build_object('table', t::text, 'action', 'delete', 'rows', n);
            END IF;
            IF pg_catalog.cardinality(held) > 0 THEN
                SELECT x.n INTO m
                  FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE (%s) AND %s',
                                                               t, own_cond, co_held), subject, held) AS x(n bigint);
                IF m > 0 THEN
                    tables := tables || pg_catalog.jsonb_build_object('table', t::text, 'action', 'held', 'rows', m);
                END IF;
            END IF;
            IF n > 0 AND EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) t) THEN
                -- Another restricted subject's dependants are kept too: restriction bars processing them.
                FOR f IN SELECT * FROM pdp._follow_links(t, rets, ARRAY[subject], held,
                                                         ARRAY(SELECT r.subject FROM pdp.restriction r
                                                                WHERE r.subject OPERATOR(pg_catalog.<>) erase_subject.subject)) LOOP
                    followed := followed || pg_catalog.jsonb_build_object('table', f.tbl::text, 'action', f.action,
                                                                          'via', f.via, 'rows', f.rows);
                END LOOP;
            END IF;
        END IF;

        -- 2. In the rows left, links to the subject are cut, column by column.
        CONTINUE WHEN cut_cond IS NULL;
        -- Not on Citus tables yet (the whole erasure is refused, nothing is changed).
        PERFORM pdp._refuse_on_citus(t, 'anonymise rows of');
        -- A row left naming nobody is anonymised: the table's rules, and its
        -- nullable foreign keys into tables with delete columns emptied (an
        -- anonymised grade keeps no link to the deleted enrolment).
        SELECT concat_ws(', ', set_list, pg_catalog.string_agg(y.x, ', ')) INTO set_list FROM (
            SELECT pg_catalog.format('%I = CASE WHEN %s THEN %s ELSE t.%I END', r.col, anon, pg_catalog.format(rk.expr, r.col), r.col) AS x
              FROM pdp.column_rule r JOIN pdp.rule_kind rk ON rk.rule OPERATOR(pg_catalog.=) r.rule
             WHERE r.tbl OPERATOR(pg_catalog.=) t
               AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s2 WHERE s2.tbl OPERATOR(pg_catalog.=) t
                                 AND s2.attnum OPERATOR(pg_catalog.=) r.attnum)
            UNION
            SELECT pg_catalog.format('%1$I = CASE WHEN %2$s THEN NULL ELSE t.%1$I END', a.attname, anon)
              FROM pg_constraint k
              CROSS JOIN LATERAL pg_catalog.unnest(k.conkey) ka(attnum)
              JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid AND a.attnum OPERATOR(pg_catalog.=) ka.attnum
             WHERE k.contype = 'f' AND k.conrelid OPERATOR(pg_catalog.=) t::oid AND NOT a.attnotnull
               AND EXISTS (SELECT 1 FROM pdp.subject_column p WHERE p.tbl::oid OPERATOR(pg_catalog.=) k.confrelid
                             AND p.on_erase = 'delete')
               AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s2 WHERE s2.tbl OPERATOR(pg_catalog.=) t
                                 AND s2.attnum OPERATOR(pg_catalog.=) a.attnum)
               AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r2 WHERE r2.tbl OPERATOR(pg_catalog.=) t
                                 AND r2.attnum OPERATOR(pg_catalog.=) a.attnum)) y;
        SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE x.anonymised) INTO n, m
          FROM pdp._exec_as_owner(t, pg_catalog.format('UPDATE %s t SET %s WHERE %s RETURNING %s', t, set_list, cut_cond, anon),
                                  subject, held, erase_values) AS x(anonymised boolean);
        IF n > 0 THEN
            tables := tables || pg_catalog.jsonb_build_object('table', t::text, 'action', cut_actions, 'rows', n, 'anonymised', m);
        END IF;
    END LOOP;
    FOR p IN SELECT s.purpose FROM pdp.consent_state s WHERE s.subject OPERATOR(pg_catalog.=) erase_subject.subject LOOP
        PERFORM pdp.withdraw_consent(subject, p);
        withdrawn := withdrawn + 1;
    END LOOP;
    -- Recipients of the learner's data are to be told (GDPR Art. 19); then
    -- pdp's own tables forget the learner (issue 17).
    notices := pdp._raise_notices(subject, 'erasure');
    forgotten := pdp._forget_subject(subject);
    PERFORM pdp._set_erasing(false);
    -- Followed rows, summed per table, action and link column.
    followed := coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', g.t, 'action', g.a, 'via', g.v, 'rows', g.n)
                                                      ORDER BY g.t, g.v, g.a)
                            FROM (SELECT e->>'table' AS t, e->>'action' AS a, e->>'via' AS v, pg_catalog.sum((e->>'rows')::bigint) AS n
                                    FROM pg_catalog.jsonb_array_elements(followed) e GROUP BY 1, 2, 3) g), '[]');
    -- Tables, counts and time: the free-text reason stays out of the receipt,
    -- which must hold no personal value.
    receipt := pg_catalog.jsonb_build_object('subject_pseudonym', pdp._subject_pseudonym(subject),
                                             'erased_at', pg_catalog.now(),
                                             'tables', tables, 'followed', followed, 'consents_withdrawn', withdrawn,
                                             'pdp_tables', forgotten, 'notices_raised', notices);
    receipt := receipt || pdp._shred_erase_keys(subject);  -- crypto-shredding: keys go at commit (src/shred.c)
    INSERT INTO pdp.erasure (subject_pseudonym, receipt) VALUES (pdp._subject_pseudonym(subject), receipt)
    ON CONFLICT (subject_pseudonym) DO UPDATE SET receipt = EXCLUDED.receipt, erased_at = EXCLUDED.erased_at;
    PERFORM pdp._audit('erase_subject', NULL, subject, pg_catalog.jsonb_build_object('tables', tables, 'followed', followed,
                                                                                     'consents_withdrawn', withdrawn));
    RETURN receipt;
END
$$;
