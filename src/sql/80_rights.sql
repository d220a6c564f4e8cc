-- Data-subject rights: access and portability, erasure, recipients and
-- disclosures, rectification notices, requests and their deadlines.

-- ISO 3166-1 alpha-2 country codes (249, from Debian's iso-codes package).
CREATE TABLE pdp.country (code char(2) PRIMARY KEY);
COMMENT ON TABLE pdp.country IS 'ISO 3166-1 alpha-2 country codes (read-only)';
COMMENT ON COLUMN pdp.country.code IS 'the code, e.g. KZ';
INSERT INTO pdp.country VALUES ('AD'), ('AE'), ('AF'), ('AG'), ('AI'), ('AL'), ('AM'), ('AO'), ('AQ'), ('AR'), ('AS'), ('AT'), ('AU'), ('AW'), ('AX'), ('AZ'), ('BA'), ('BB'), ('BD'), ('BE'), ('BF'), ('BG'), ('BH'), ('BI'), ('BJ'), ('BL'), ('BM'), ('BN'), ('BO'), ('BQ'), ('BR'), ('BS'), ('BT'), ('BV'), ('BW'), ('BY'), ('BZ'), ('CA'), ('CC'), ('CD'), ('CF'), ('CG'), ('CH'), ('CI'), ('CK'), ('CL'), ('CM'), ('CN'), ('CO'), ('CR'), ('CU'), ('CV'), ('CW'), ('CX'), ('CY'), ('CZ'), ('DE'), ('DJ'), ('DK'), ('DM'), ('DO'), ('DZ'), ('EC'), ('EE'), ('EG'), ('EH'), ('ER'), ('ES'), ('ET'), ('FI'), ('FJ'), ('FK'), ('FM'), ('FO'), ('FR'), ('GA'), ('GB'), ('GD'), ('GE'), ('GF'), ('GG'), ('GH'), ('GI'), ('GL'), ('GM'), ('GN'), ('GP'), ('GQ'), ('GR'), ('GS'), ('GT'), ('GU'), ('GW'), ('GY'), ('HK'), ('HM'), ('HN'), ('HR'), ('HT'), ('HU'), ('ID'), ('IE'), ('IL'), ('IM'), ('IN'), ('IO'), ('IQ'), ('IR'), ('IS'), ('IT'), ('JE'), ('JM'), ('JO'), ('JP'), ('KE'), ('KG'), ('KH'), ('KI'), ('KM'), ('KN'), ('KP'), ('KR'), ('KW'), ('KY'), ('KZ'), ('LA'), ('LB'), ('LC'), ('LI'), ('LK'), ('LR'), ('LS'), ('LT'), ('LU'), ('LV'), ('LY'), ('MA'), ('MC'), ('MD'), ('ME'), ('MF'), ('MG'), ('MH'), ('MK'), ('ML'), ('MM'), ('MN'), ('MO'), ('MP'), ('MQ'), ('MR'), ('MS'), ('MT'), ('MU'), ('MV'), ('MW'), ('MX'), ('MY'), ('MZ'), ('NA'), ('NC'), ('NE'), ('NF'), ('NG'), ('NI'), ('NL'), ('NO'), ('NP'), ('NR'), ('NU'), ('NZ'), ('OM'), ('PA'), ('PE'), ('PF'), ('PG'), ('PH'), ('PK'), ('PL'), ('PM'), ('PN'), ('PR'), ('PS'), ('PT'), ('PW'), ('PY'), ('QA'), ('RE'), ('RO'), ('RS'), ('RU'), ('RW'), ('SA'), ('SB'), ('SC'), ('SD'), ('SE'), ('SG'), ('SH'), ('SI'), ('SJ'), ('SK'), ('SL'), ('SM'), ('SN'), ('SO'), ('SR'), ('SS'), ('ST'), ('SV'), ('SX'), ('SY'), ('SZ'), ('TC'), ('TD'), ('TF'), ('TG'), ('TH'), ('TJ'), ('TK'), ('TL'), ('TM'), ('TN'), ('TO'), ('TR'), ('TT'), ('TV'), ('TW'), ('TZ'), ('UA'), ('UG'), ('UM'), ('US'), ('UY'), ('UZ'), ('VA'), ('VC'), ('VE'), ('VG'), ('VI'), ('VN'), ('VU'), ('WF'), ('WS'), ('YE'), ('YT'), ('ZA'), ('ZM'), ('ZW');

-- Recipients and disclosures ----------------------------------------------------

CREATE TABLE pdp.recipient (
    name         text        PRIMARY KEY,
    country      char(2)     NOT NULL,
    safeguards   text,
    description  text,
    defined_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    defined_by   name        NOT NULL DEFAULT CURRENT_USER,
    CONSTRAINT recipient_name_check CHECK (name ~ '^[^[:cntrl:]]{1,100}$')
);
COMMENT ON TABLE pdp.recipient IS 'register of third parties that receive personal data (GDPR Art. 30(1)(d), Law 94-V)';
COMMENT ON COLUMN pdp.recipient.name IS 'the recipient';
COMMENT ON COLUMN pdp.recipient.country IS 'where it processes the data (ISO 3166-1 alpha-2)';
COMMENT ON COLUMN pdp.recipient.safeguards IS 'for transfers outside Kazakhstan: SCC, adequacy, consent, BCR or derogation';
COMMENT ON COLUMN pdp.recipient.description IS 'what it does with the data';
COMMENT ON COLUMN pdp.recipient.defined_at IS 'when it was defined';
COMMENT ON COLUMN pdp.recipient.defined_by IS 'who defined it';
SELECT pg_catalog.pg_extension_config_dump('pdp.recipient', '');

CREATE TABLE pdp.disclosure (
    id          bigserial   PRIMARY KEY,
    subject     text        NOT NULL,
    recipient   text        NOT NULL,
    purpose     text        NOT NULL,
    categories  text[]      NOT NULL,
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    recorded_by name        NOT NULL DEFAULT SESSION_USER
);
CREATE INDEX disclosure_subject_idx ON pdp.disclosure (subject);
COMMENT ON TABLE pdp.disclosure IS 'which subject''s data went to which recipient, for what, of what kind';
COMMENT ON SEQUENCE pdp.disclosure_id_seq IS 'numbers disclosures';
COMMENT ON COLUMN pdp.disclosure.id IS 'the disclosure''s number';
COMMENT ON COLUMN pdp.disclosure.subject IS 'the subject (text form)';
COMMENT ON COLUMN pdp.disclosure.recipient IS 'the recipient';
COMMENT ON COLUMN pdp.disclosure.purpose IS 'the purpose of the disclosure';
COMMENT ON COLUMN pdp.disclosure.categories IS 'categories of data disclosed, e.g. {email,grades}';
COMMENT ON COLUMN pdp.disclosure.at IS 'when';
COMMENT ON COLUMN pdp.disclosure.recorded_by IS 'the session user that recorded it';
SELECT pg_catalog.pg_extension_config_dump('pdp.disclosure', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.disclosure_id_seq', '');

CREATE TABLE pdp.rectification_notice (
    id              bigserial   PRIMARY KEY,
    subject         text        NOT NULL,
    recipient       text        NOT NULL,
    tbl             regclass,
    columns         text[]      NOT NULL,
    raised_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    acknowledged_at timestamptz,
    acknowledged_by name,
    kind            text        NOT NULL DEFAULT 'rectification',
    CONSTRAINT rectification_notice_kind_check
        CHECK (kind IN ('rectification', 'erasure', 'restriction', 'restriction_lifted')),
    CONSTRAINT rectification_notice_tbl_check CHECK ((kind = 'rectification') = (tbl IS NOT NULL))
);
COMMENT ON TABLE pdp.rectification_notice IS
    'recipients to tell that a subject''s data was rectified or erased, or its processing restricted or the restriction lifted (talap §5.1.4, GDPR Art. 19)';
COMMENT ON SEQUENCE pdp.rectification_notice_id_seq IS 'numbers notices';
COMMENT ON COLUMN pdp.rectification_notice.id IS 'the notice''s number';
COMMENT ON COLUMN pdp.rectification_notice.subject IS 'the subject (text form)';
COMMENT ON COLUMN pdp.rectification_notice.recipient IS 'the recipient to notify';
COMMENT ON COLUMN pdp.rectification_notice.tbl IS 'the table whose classified columns changed (rectifications only)';
COMMENT ON COLUMN pdp.rectification_notice.columns IS 'the columns that changed (names, never values); empty for other kinds';
COMMENT ON COLUMN pdp.rectification_notice.raised_at IS 'when the change happened';
COMMENT ON COLUMN pdp.rectification_notice.acknowledged_at IS 'when the notice was sent and closed';
COMMENT ON COLUMN pdp.rectification_notice.acknowledged_by IS 'who closed it';
COMMENT ON COLUMN pdp.rectification_notice.kind IS 'rectification, erasure, restriction or restriction_lifted';
SELECT pg_catalog.pg_extension_config_dump('pdp.rectification_notice', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.rectification_notice_id_seq', '');

CREATE FUNCTION pdp._rectification() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_rectification';
COMMENT ON FUNCTION pdp._rectification() IS 'trigger: raises a notice for every recipient of a subject whose classified data changed';
CREATE FUNCTION pdp._set_erasing(on_ boolean) RETURNS void
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_set_erasing';
CREATE FUNCTION pdp._erasing() RETURNS boolean
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_erasing';
COMMENT ON FUNCTION pdp._erasing() IS 'whether an erasure is running (the switch pdp._set_erasing sets)';
COMMENT ON FUNCTION pdp._set_erasing(boolean) IS
    'lets erasure delete rows of restricted subjects until erasure turns it off, the subtransaction that turned it on aborts, or the transaction ends';

-- Keep the rectification trigger of a table in step with its subject and
-- classified columns (a classified column has a rule or a category).
CREATE FUNCTION pdp._sync_rectification_trigger(tbl regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    args text;
    kind text := pdp._citus_table_kind(tbl);
    unsafe text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid) THEN
        RETURN;
    END IF;
    -- On a distributed or reference table Citus creates and drops the
    -- trigger on every shard only with citus.enable_unsafe_triggers, turned
    -- on here for the two statements and restored; the shards' trigger
    -- records the notices from pdp.citus_disclosure (src/sql/15_citus.sql).
    IF kind IN ('distributed', 'reference') THEN
        unsafe := pg_catalog.current_setting('citus.enable_unsafe_triggers', true);
        PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl::oid
                 AND t.tgname OPERATOR(pg_catalog.=) 'pdp_rectification') THEN
        EXECUTE pg_catalog.format('DROP TRIGGER pdp_rectification ON %s', tbl);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _sync_rectification_trigger.tbl)
       OR NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) _sync_rectification_trigger.tbl) THEN
        IF unsafe IS NOT NULL THEN
            PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', unsafe, true);
        END IF;
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_literal(a), ', ') INTO args FROM (
        SELECT 's:' || s.col AS a FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _sync_rectification_trigger.tbl
        UNION ALL
        SELECT 'c:' || r.col FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) _sync_rectification_trigger.tbl) x;
    IF kind IS NULL OR kind NOT IN ('distributed', 'reference') OR pdp._has_children(tbl) THEN
        PERFORM pdp._refuse_on_citus(tbl, 'install a rectification trigger on');
    ELSIF pg_catalog.to_regclass('pdp.citus_disclosure') IS NULL THEN
        RAISE EXCEPTION 'cannot install a rectification trigger on % table "%"', kind, pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The trigger on the shards reads pdp''s mirror of pdp.disclosure on every node, which does not exist yet.',
                  HINT = 'Run SELECT pdp.citus_sync_state(); on the coordinator first; see "Rectification notices on Citus" in doc/scaling.md.';
    END IF;
    EXECUTE pg_catalog.format('CREATE TRIGGER pdp_rectification AFTER UPDATE ON %s FOR EACH ROW '
                              'EXECUTE FUNCTION pdp._rectification(%s)', tbl, args);
    IF unsafe IS NOT NULL THEN
        PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', unsafe, true);
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._sync_rectification_trigger(regclass) IS
    'creates, rebuilds or drops a table''s rectification trigger';

CREATE FUNCTION pdp.define_recipient(name text, country text, safeguards text DEFAULT NULL, description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR country IS NULL THEN
        RAISE EXCEPTION 'recipient name and country must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name !~ '^[^[:cntrl:]]{1,100}$' THEN
        RAISE EXCEPTION 'a recipient''s name must be 1 to 100 characters without control characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.country c WHERE c.code OPERATOR(pg_catalog.=) pg_catalog.upper(country)) THEN
        RAISE EXCEPTION 'unknown country code' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Use an ISO 3166-1 alpha-2 code such as KZ, DE or US.';
    END IF;
    IF pg_catalog.upper(country) <> 'KZ' AND (safeguards IS NULL OR safeguards NOT IN ('SCC', 'adequacy', 'consent', 'BCR', 'derogation')) THEN
        RAISE EXCEPTION 'a recipient outside Kazakhstan is a cross-border transfer and needs its safeguards named'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'safeguards: SCC (standard contractual clauses), adequacy, consent, BCR or derogation.';
    END IF;
    INSERT INTO pdp.recipient AS r (name, country, safeguards, description)
    VALUES (define_recipient.name, pg_catalog.upper(define_recipient.country), define_recipient.safeguards,
            define_recipient.description)
    ON CONFLICT ON CONSTRAINT recipient_pkey DO UPDATE
       SET country = EXCLUDED.country, safeguards = EXCLUDED.safeguards, description = EXCLUDED.description,
           defined_at = pg_catalog.now(), defined_by = CURRENT_USER;
    PERFORM pdp._audit('define_recipient', name, NULL,
                       pg_catalog.jsonb_build_object('country', pg_catalog.upper(country), 'safeguards', safeguards));
END
$$;
COMMENT ON FUNCTION pdp.define_recipient(text, text, text, text) IS
    'registers a recipient; outside Kazakhstan its safeguards must be named (SCC, adequacy, consent, BCR, derogation)';

CREATE VIEW pdp.recipients AS
SELECT r.name, r.country, r.country OPERATOR(pg_catalog.<>) 'KZ' AS cross_border, r.safeguards, r.description,
       CASE WHEN r.country OPERATOR(pg_catalog.<>) 'KZ'
            THEN 'copies only: Law 94-V requires the primary personal database to be kept in Kazakhstan'
            ELSE 'in Kazakhstan' END AS localisation,
       (SELECT pg_catalog.count(*) FROM pdp.disclosure d WHERE d.recipient OPERATOR(pg_catalog.=) r.name) AS disclosures,
       r.defined_at, r.defined_by
  FROM pdp.recipient r;
COMMENT ON VIEW pdp.recipients IS 'the register of recipients, with cross-border transfers and data localisation flagged';

CREATE FUNCTION pdp.record_disclosure(subject text, recipient text, purpose text, categories text[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.recipient r WHERE r.name OPERATOR(pg_catalog.=) record_disclosure.recipient) THEN
        RAISE EXCEPTION 'unknown recipient' USING ERRCODE = 'undefined_object',
              HINT = 'pdp.define_recipient registers recipients; pdp.recipients lists them.';
    END IF;
    PERFORM pdp._require_purpose(purpose);
    IF categories IS NULL OR pg_catalog.cardinality(categories) = 0 OR array_position(categories, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'categories must name at least one kind of data' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pdp.disclosure (subject, recipient, purpose, categories)
    VALUES (record_disclosure.subject, record_disclosure.recipient, record_disclosure.purpose, record_disclosure.categories)
    RETURNING disclosure.id INTO id;
    PERFORM pdp._audit('record_disclosure', recipient, subject,
                       pg_catalog.jsonb_build_object('disclosure_id', id, 'purpose', purpose, 'categories', categories));
    RETURN id;
END
$$;
COMMENT ON FUNCTION pdp.record_disclosure(text, text, text, text[]) IS 'records that a subject''s data went to a recipient';
CREATE FUNCTION pdp.record_disclosure(subject bigint, recipient text, purpose text, categories text[]) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.record_disclosure(subject::text, recipient, purpose, categories) $$;
COMMENT ON FUNCTION pdp.record_disclosure(bigint, text, text, text[]) IS 'record_disclosure for a bigint or integer subject';
CREATE FUNCTION pdp.record_disclosure(subject uuid, recipient text, purpose text, categories text[]) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.record_disclosure(subject::text, recipient, purpose, categories) $$;
COMMENT ON FUNCTION pdp.record_disclosure(uuid, text, text, text[]) IS 'record_disclosure for a uuid subject';

CREATE VIEW pdp.pending_notices AS
SELECT n.id, n.subject, n.recipient, r.country, n.tbl AS table_name, n.columns, n.raised_at, n.kind
  FROM pdp.rectification_notice n LEFT JOIN pdp.recipient r ON r.name OPERATOR(pg_catalog.=) n.recipient
 WHERE n.acknowledged_at IS NULL
UNION ALL   -- on a Citus coordinator: the notices recorded on the workers' shards (src/sql/15_citus.sql)
SELECT w.id, w.subject, w.recipient, r.country, w.tbl, w.columns, w.raised_at, 'rectification'::text
  FROM pdp._citus_worker_notices() w LEFT JOIN pdp.recipient r ON r.name OPERATOR(pg_catalog.=) w.recipient;
COMMENT ON VIEW pdp.pending_notices IS
    'rectifications, erasures, restrictions and lifted restrictions still to be told to the recipients of the subject''s data';

-- One notice of `kind` for every recipient that received data of `subject`
-- (its disclosures); returns how many.  Called by erasure, restriction and
-- lifting it; rectifications come from the rectification trigger.
CREATE FUNCTION pdp._raise_notices(subject text, kind text) RETURNS integer
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

-- After an erasure, pdp's own tables forget the subject: its identifier is
-- replaced by '~erased:' and its audit pseudonym, consent evidence and free-
-- text reasons (which may hold personal values) are stripped, current
-- consents and its restriction are deleted; what remains says that consent
-- existed, what was disclosed to whom, which requests were made and answered
-- and when, by whom.  Pending notices other than the erasure notices just
-- raised are closed as superseded by the erasure; an erasure notice keeps
-- the identifier (the recipient must know whom to erase) until it is
-- acknowledged.  Returns what it changed, table by table (counts only).
-- Runs inside erase_subject, with the erasure switch on.
CREATE FUNCTION pdp._forget_subject(subject text) RETURNS jsonb
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

CREATE FUNCTION pdp.acknowledge_notice(id bigint) RETURNS void
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

-- Requests and deadlines -------------------------------------------------------

CREATE TABLE pdp.request_deadline (
    jurisdiction text     NOT NULL,
    kind         text     NOT NULL CHECK (kind IN ('access', 'rectification', 'erasure', 'restriction',
                                                     'portability', 'withdrawal', 'objection')),
    period       interval,
    working_days integer  CHECK (working_days > 0),
    source       text     NOT NULL,
    PRIMARY KEY (jurisdiction, kind),
    CONSTRAINT request_deadline_one_measure CHECK ((period IS NULL) <> (working_days IS NULL))
);
COMMENT ON TABLE pdp.request_deadline IS 'how long the operator has to answer each kind of request, per jurisdiction (editable by pdp_admin)';
COMMENT ON COLUMN pdp.request_deadline.jurisdiction IS 'KZ (Law 94-V) or EU (GDPR), or any code you add';
COMMENT ON COLUMN pdp.request_deadline.kind IS 'access, rectification, erasure, restriction, portability, withdrawal, objection';
COMMENT ON COLUMN pdp.request_deadline.period IS 'a calendar period, or NULL when counted in working days';
COMMENT ON COLUMN pdp.request_deadline.working_days IS 'working days (Monday to Friday; public holidays are not known to pdp_ext)';
COMMENT ON COLUMN pdp.request_deadline.source IS 'where the deadline comes from';
CREATE TRIGGER request_deadline_check_period BEFORE INSERT OR UPDATE OF period ON pdp.request_deadline
    FOR EACH ROW EXECUTE FUNCTION pdp._check_period();
COMMENT ON TRIGGER request_deadline_check_period ON pdp.request_deadline IS 'a period must span a positive time however the row is written';

-- The deadlines pdp_ext ships.  CREATE EXTENSION inserts them, and a dump
-- carries only the rows a DBA added or changed (the filter below); on
-- restore, a dumped row replaces the shipped row of its key (the trigger
-- below).  Shipped rows can be edited but not deleted, so that every edit
-- survives a dump and restore.
CREATE FUNCTION pdp._request_deadline_defaults()
RETURNS TABLE (jurisdiction text, kind text, period interval, working_days integer, source text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'EU', k, interval '1 month', NULL::integer,
       'GDPR Art. 12(3): without undue delay and in any event within one month of receipt (extendable by two months, Art. 12(3))'
  FROM pg_catalog.unnest(ARRAY['access', 'rectification', 'erasure', 'restriction', 'portability', 'withdrawal', 'objection']) k
UNION ALL
SELECT 'KZ', k, NULL::interval, 3,
       'Law 94-V on personal data (Art. 24, operator''s obligations), as commonly cited: three working days; '
       'check against the law''s current text and edit this row if your counsel reads it otherwise'
  FROM pg_catalog.unnest(ARRAY['access', 'rectification', 'erasure', 'restriction', 'portability', 'withdrawal', 'objection']) k
$$;
COMMENT ON FUNCTION pdp._request_deadline_defaults() IS 'the request deadlines pdp_ext ships (inserted by CREATE EXTENSION)';

-- Is this row exactly a shipped one?  Periods are compared as written
-- ('30 days' is an edit of '1 mon', though the two compare equal).
CREATE FUNCTION pdp._request_deadline_is_default(jurisdiction text, kind text, period interval,
                                                 working_days integer, source text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT EXISTS (SELECT 1 FROM pdp._request_deadline_defaults() d
                WHERE d.jurisdiction OPERATOR(pg_catalog.=) $1 AND d.kind OPERATOR(pg_catalog.=) $2
                  AND d.period::text IS NOT DISTINCT FROM $3::text
                  AND d.working_days IS NOT DISTINCT FROM $4 AND d.source OPERATOR(pg_catalog.=) $5)
$$;
COMMENT ON FUNCTION pdp._request_deadline_is_default(text, text, interval, integer, text) IS
    'whether a request deadline row is exactly as shipped (such rows are not dumped)';
SELECT pg_catalog.pg_extension_config_dump('pdp.request_deadline',
    'WHERE NOT pdp._request_deadline_is_default(jurisdiction, kind, period, working_days, source)');

CREATE FUNCTION pdp._request_deadline_keep_edits() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- A row for a key whose row is still as shipped takes that row's place
        -- (a restore loads the edited row after CREATE EXTENSION inserted the
        -- shipped one): the shipped row is updated and the insert skipped.
        UPDATE pdp.request_deadline d
           SET period = NEW.period, working_days = NEW.working_days, source = NEW.source
         WHERE d.jurisdiction OPERATOR(pg_catalog.=) NEW.jurisdiction AND d.kind OPERATOR(pg_catalog.=) NEW.kind
           AND pdp._request_deadline_is_default(d.jurisdiction, d.kind, d.period, d.working_days, d.source);
        IF FOUND THEN
            RETURN NULL;
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'TRUNCATE' OR EXISTS (SELECT 1 FROM pdp._request_deadline_defaults() d
                                      WHERE d.jurisdiction OPERATOR(pg_catalog.=) OLD.jurisdiction
                                        AND d.kind OPERATOR(pg_catalog.=) OLD.kind) THEN
        RAISE EXCEPTION 'cannot delete a shipped request deadline' USING ERRCODE = 'feature_not_supported',
              DETAIL = 'CREATE EXTENSION inserts the shipped deadlines, so a deleted one would come back after a dump and restore.',
              HINT = 'Edit its period or working_days instead.';
    END IF;
    RETURN OLD;
END
$$;
COMMENT ON FUNCTION pdp._request_deadline_keep_edits() IS
    'trigger: an inserted deadline takes the place of an unedited shipped one of its key; shipped deadlines cannot be deleted';
CREATE TRIGGER request_deadline_keep_edits BEFORE INSERT OR DELETE ON pdp.request_deadline
    FOR EACH ROW EXECUTE FUNCTION pdp._request_deadline_keep_edits();
COMMENT ON TRIGGER request_deadline_keep_edits ON pdp.request_deadline IS 'edits of the shipped deadlines survive a dump and restore';
CREATE TRIGGER request_deadline_no_truncate BEFORE TRUNCATE ON pdp.request_deadline
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._request_deadline_keep_edits();
COMMENT ON TRIGGER request_deadline_no_truncate ON pdp.request_deadline IS 'shipped deadlines cannot be truncated away';

INSERT INTO pdp.request_deadline (jurisdiction, kind, period, working_days, source)
SELECT * FROM pdp._request_deadline_defaults();

CREATE TABLE pdp.subject_request (
    id           bigserial   PRIMARY KEY,
    subject      text        NOT NULL,
    kind         text        NOT NULL,
    jurisdiction text        NOT NULL,
    received_at  timestamptz NOT NULL,
    due_at       timestamptz NOT NULL,
    completed_at timestamptz,
    outcome      text,
    opened_by    name        NOT NULL DEFAULT SESSION_USER,
    completed_by name
);
COMMENT ON TABLE pdp.subject_request IS 'data-subject requests with their due dates';
COMMENT ON SEQUENCE pdp.subject_request_id_seq IS 'numbers requests';
COMMENT ON COLUMN pdp.subject_request.id IS 'the request''s number';
COMMENT ON COLUMN pdp.subject_request.subject IS 'the subject (text form)';
COMMENT ON COLUMN pdp.subject_request.kind IS 'what the subject asked for';
COMMENT ON COLUMN pdp.subject_request.jurisdiction IS 'whose deadlines apply';
COMMENT ON COLUMN pdp.subject_request.received_at IS 'when the request arrived';
COMMENT ON COLUMN pdp.subject_request.due_at IS 'when the answer is due';
COMMENT ON COLUMN pdp.subject_request.completed_at IS 'when it was answered';
COMMENT ON COLUMN pdp.subject_request.outcome IS 'how it was answered';
COMMENT ON COLUMN pdp.subject_request.opened_by IS 'who recorded it';
COMMENT ON COLUMN pdp.subject_request.completed_by IS 'who completed it';
SELECT pg_catalog.pg_extension_config_dump('pdp.subject_request', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.subject_request_id_seq', '');

-- received plus n working days (Monday to Friday).
CREATE FUNCTION pdp._add_working_days(t timestamptz, n integer) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d timestamptz := t;
    left_ integer := n;
BEGIN
    WHILE left_ > 0 LOOP
        d := d + interval '1 day';
        IF pg_catalog.date_part('isodow', d AT TIME ZONE 'Asia/Almaty') < 6 THEN
            left_ := left_ - 1;
        END IF;
    END LOOP;
    RETURN d;
END
$$;
COMMENT ON FUNCTION pdp._add_working_days(timestamptz, integer) IS 'adds working days (Monday to Friday, Almaty time)';

CREATE FUNCTION pdp.open_request(subject text, kind text, jurisdiction text DEFAULT 'KZ',
                                 received_at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record;
    id bigint;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL OR kind IS NULL OR jurisdiction IS NULL OR received_at IS NULL THEN
        RAISE EXCEPTION 'subject, kind, jurisdiction and received_at must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kind NOT IN ('access', 'rectification', 'erasure', 'restriction', 'portability', 'withdrawal', 'objection') THEN
        RAISE EXCEPTION 'unknown request kind' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'access, rectification, erasure, restriction, portability, withdrawal or objection.';
    END IF;
    SELECT * INTO d FROM pdp.request_deadline x
     WHERE x.jurisdiction OPERATOR(pg_catalog.=) open_request.jurisdiction AND x.kind OPERATOR(pg_catalog.=) open_request.kind;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no deadline for % requests in jurisdiction "%"', kind, jurisdiction
            USING ERRCODE = 'undefined_object', HINT = 'pdp.request_deadline lists the deadlines; pdp_admin may add rows.';
    END IF;
    IF d.period IS NOT NULL THEN
        PERFORM pdp._check_interval(d.period, 'request deadline must be positive');
    END IF;
    IF received_at > pg_catalog.now() + interval '1 minute' THEN
        RAISE EXCEPTION 'received_at is in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pdp.subject_request (subject, kind, jurisdiction, received_at, due_at)
    VALUES (open_request.subject, open_request.kind, open_request.jurisdiction, open_request.received_at,
            CASE WHEN d.period IS NOT NULL THEN open_request.received_at + d.period
                 ELSE pdp._add_working_days(open_request.received_at, d.working_days) END)
    RETURNING subject_request.id INTO id;
    PERFORM pdp._audit('open_request', kind, subject, pg_catalog.jsonb_build_object('request_id', id, 'jurisdiction', jurisdiction));
    RETURN id;
END
$$;
COMMENT ON FUNCTION pdp.open_request(text, text, text, timestamptz) IS
    'records a data-subject request and computes its due date from pdp.request_deadline';
CREATE FUNCTION pdp.open_request(subject bigint, kind text, jurisdiction text DEFAULT 'KZ',
                                 received_at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.open_request(subject::text, kind, jurisdiction, received_at) $$;
COMMENT ON FUNCTION pdp.open_request(bigint, text, text, timestamptz) IS 'open_request for a bigint or integer subject';
CREATE FUNCTION pdp.open_request(subject uuid, kind text, jurisdiction text DEFAULT 'KZ',
                                 received_at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT pdp.open_request(subject::text, kind, jurisdiction, received_at) $$;
COMMENT ON FUNCTION pdp.open_request(uuid, text, text, timestamptz) IS 'open_request for a uuid subject';

CREATE FUNCTION pdp.complete_request(id bigint, outcome text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    IF outcome IS NULL OR outcome = '' THEN
        RAISE EXCEPTION 'outcome must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE pdp.subject_request x SET completed_at = pg_catalog.now(), outcome = complete_request.outcome,
           completed_by = SESSION_USER
     WHERE x.id OPERATOR(pg_catalog.=) complete_request.id AND x.completed_at IS NULL
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % does not exist or is completed already', id USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM pdp._audit('complete_request', r.kind, r.subject,
                       pg_catalog.jsonb_build_object('request_id', id, 'late', r.completed_at > r.due_at));
END
$$;
COMMENT ON FUNCTION pdp.complete_request(bigint, text) IS 'records a request''s answer';

CREATE VIEW pdp.overdue_requests AS
SELECT r.id, r.subject, r.kind, r.jurisdiction, r.received_at, r.due_at,
       pg_catalog.now() OPERATOR(pg_catalog.-) r.due_at AS overdue_by
  FROM pdp.subject_request r WHERE r.completed_at IS NULL AND r.due_at < pg_catalog.now();
COMMENT ON VIEW pdp.overdue_requests IS 'open requests past their due date';

-- Access, portability, erasure -------------------------------------------------

CREATE TABLE pdp.erasure (
    subject_pseudonym text        PRIMARY KEY,
    receipt           jsonb       NOT NULL,
    erased_at         timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE pdp.erasure IS 'erasure receipts, keyed by the subject''s pseudonym (never the identifier)';
COMMENT ON COLUMN pdp.erasure.subject_pseudonym IS 'pdp._subject_pseudonym(subject), the audit trail''s pseudonym of the subject';
COMMENT ON COLUMN pdp.erasure.receipt IS 'tables, actions, row counts, time; no personal values';
COMMENT ON COLUMN pdp.erasure.erased_at IS 'when';
SELECT pg_catalog.pg_extension_config_dump('pdp.erasure', '');

-- The subject column types a subject can be a value of (bigint and integer
-- for a number in range, uuid for a uuid, text and varchar always).  Erasure
-- and export work it out once per call, not once per column.
CREATE FUNCTION pdp._subject_types(subject text) RETURNS regtype[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fit regtype[] := ARRAY['text'::regtype, 'character varying'::regtype];
    i bigint;
    u uuid;
BEGIN
    BEGIN
        i := subject::bigint;
        fit := fit || 'bigint'::regtype;
        IF i BETWEEN -2147483648 AND 2147483647 THEN
            fit := fit || 'integer'::regtype;
        END IF;
    EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
        NULL;
    END;
    BEGIN
        u := subject::uuid;
        fit := fit || 'uuid'::regtype;
    EXCEPTION WHEN invalid_text_representation THEN
        NULL;
    END;
    RETURN fit;
END
$$;
COMMENT ON FUNCTION pdp._subject_types(text) IS 'the subject column types a subject fits (pdp.is_subject_type types)';

-- A table's subject columns, their erase actions, and whether a subject
-- fitting the types fit can be a value of each one's type.
CREATE FUNCTION pdp._subject_columns(tbl regclass, fit regtype[])
RETURNS TABLE (col name, typ regtype, on_erase text, erase_value text, fits boolean)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT sc.col, a.atttypid::regtype, sc.on_erase, sc.erase_value, a.atttypid::regtype OPERATOR(pg_catalog.=) ANY (fit)
      FROM pdp.subject_column sc
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) sc.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) sc.attnum
     WHERE sc.tbl OPERATOR(pg_catalog.=) _subject_columns.tbl
     ORDER BY sc.attnum;
END
$$;
COMMENT ON FUNCTION pdp._subject_columns(regclass, regtype[]) IS
    'a registered table''s subject columns with their erase actions, and whether a subject of the given types fits each one';

-- WHERE clause matching a subject ($1) in a table's subject columns (those
-- whose on_erase is in actions, or all); each column compares in its own
-- type, so its indexes serve.  NULL when the subject cannot be of any of
-- the columns' types (e.g. a word for a bigint column).
CREATE FUNCTION pdp._match_sql(tbl regclass, fit regtype[], actions text[] DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT pg_catalog.string_agg(pdp._subject_eq_sql(_match_sql.tbl, a.attname, fit), ' OR '
                                         ORDER BY sc.attnum)
              FROM pdp.subject_column sc
              JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) sc.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) sc.attnum
             WHERE sc.tbl OPERATOR(pg_catalog.=) _match_sql.tbl AND a.atttypid::regtype OPERATOR(pg_catalog.=) ANY (fit)
               AND (actions IS NULL OR sc.on_erase OPERATOR(pg_catalog.=) ANY (actions)));
END
$$;
COMMENT ON FUNCTION pdp._match_sql(regclass, regtype[], text[]) IS
    'SQL condition finding a subject of the given types in a registered table''s subject columns (with the given erase actions, or all)';

CREATE FUNCTION pdp._subject_match(tbl regclass, subject text, actions text[] DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN pdp._match_sql(tbl, pdp._subject_types(subject), actions);
END
$$;
COMMENT ON FUNCTION pdp._subject_match(regclass, text, text[]) IS
    'SQL condition finding a subject''s rows in a registered table (in the columns with the given erase actions, or all)';

CREATE FUNCTION pdp.export_subject(subject text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    doc jsonb;
    data jsonb := '{}';
    t regclass;
    cond text;
    rows_ jsonb;
    erased jsonb;
    own_cond text;
    rets jsonb;
    todo jsonb := '[]';
    item jsonb;
    l record;
    v text[];
    seen jsonb := '{}';
    direct text;
    n bigint;
    linked jsonb := '{}';
    withheld jsonb := '{}';
    fit regtype[];
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    doc := pg_catalog.jsonb_build_object('format', 'pdp_ext subject export', 'format_version', 1,
                                         'generated_at', pg_catalog.now(), 'subject', subject);
    SELECT e.receipt INTO erased FROM pdp.erasure e
     WHERE e.subject_pseudonym OPERATOR(pg_catalog.=) pdp._subject_pseudonym(subject);
    IF FOUND THEN
        PERFORM pdp._audit_durable('export_subject', NULL, subject, '{"erased": true}');
        RETURN doc || pg_catalog.jsonb_build_object('erasure_receipt', erased);
    END IF;
    fit := pdp._subject_types(subject);
    FOR t IN SELECT DISTINCT s.tbl FROM pdp.subject_column s ORDER BY 1 LOOP
        cond := pdp._match_sql(t, fit);
        CONTINUE WHEN cond IS NULL;
        -- Read as the table's owner: nothing of the table runs with pdp_ext's rights.
        SELECT x.r INTO rows_
          FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t.*)) FROM %s t WHERE %s', t, cond),
                                  subject) AS x(r jsonb);
        rows_ := pdp._withhold_credentials(t, rows_);   -- credentials: named, value withheld (34_credentials.sql)
        IF rows_ IS NOT NULL THEN
            data := data || pg_catalog.jsonb_build_object(t::text, rows_);
        END IF;
        -- The rows the subject owns are followed through declared links.
        IF EXISTS (SELECT 1 FROM pdp.link x WHERE x.parent OPERATOR(pg_catalog.=) t) THEN
            own_cond := pdp._match_sql(t, fit,
                            CASE WHEN EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) t AND s.on_erase = 'delete')
                                 THEN ARRAY['delete'] ELSE ARRAY['set_null', 'set_value'] END);   -- as pdp._own_columns
            IF own_cond IS NOT NULL THEN
                SELECT pg_catalog.jsonb_agg(x.r) INTO rets
                  FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT %s FROM %s t WHERE %s', pdp._link_returning(t), t, own_cond),
                                          subject) AS x(r jsonb);
                IF rets IS NOT NULL THEN
                    todo := todo || pg_catalog.jsonb_build_object('tbl', t::oid, 'found', rets);
                END IF;
            END IF;
        END IF;
    END LOOP;
    -- Linked rows: those following the subject's rows, transitively, that
    -- are not in "data" already.  A dependant another subject wrote is
    -- withheld (their data, not the requester's) and only counted.  Each
    -- value is followed once per link, so cycles end.
    WHILE pg_catalog.jsonb_array_length(todo) > 0 LOOP
        item := todo->0;
        todo := todo OPERATOR(pg_catalog.-) 0;
        FOR l IN SELECT x.child, x.child_col, x.parent_col, pg_catalog.format_type(a.atttypid, NULL) AS typ
                   FROM pdp.link x
                   JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.child::oid AND a.attnum OPERATOR(pg_catalog.=) x.child_attnum
                  WHERE x.parent OPERATOR(pg_catalog.=) (item->>'tbl')::oid::regclass ORDER BY x.child::oid, x.child_attnum LOOP
            v := ARRAY(SELECT DISTINCT r->>('l:' || l.parent_col) FROM pg_catalog.jsonb_array_elements(item->'found') r
                        WHERE r->>('l:' || l.parent_col) IS NOT NULL
                       EXCEPT
                       SELECT pg_catalog.jsonb_array_elements_text(coalesce(seen->(l.child::oid::text || ':' || l.child_col), '[]')));
            CONTINUE WHEN pg_catalog.cardinality(v) = 0;
            seen := seen || pg_catalog.jsonb_build_object(l.child::oid::text || ':' || l.child_col,
                        coalesce(seen->(l.child::oid::text || ':' || l.child_col), '[]') || pg_catalog.to_jsonb(v));
            direct := coalesce(pdp._match_sql(l.child, fit), 'false');
            SELECT x.rows_, x.rets, x.n INTO rows_, rets, n
              FROM pdp._exec_as_owner(l.child, pg_catalog.format(
                       'SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t.*)) FILTER (WHERE NOT %4$s), '
                       'pg_catalog.jsonb_agg(%5$s) FILTER (WHERE NOT %4$s), pg_catalog.count(*) FILTER (WHERE %4$s) '
                       'FROM %1$s t WHERE t.%2$I OPERATOR(pg_catalog.=) ANY ($2::%3$s[]) AND NOT (%6$s)',
                       l.child, l.child_col, l.typ, pdp._owned_by_other_sql(l.child, '$3'), pdp._link_returning(l.child), direct),
                       subject, v, ARRAY[subject]) AS x(rows_ jsonb, rets jsonb, n bigint);
            IF rows_ IS NOT NULL THEN
                linked := linked || pg_catalog.jsonb_build_object(l.child::text,
                              coalesce(linked->(l.child::text), '[]') || rows_);
                todo := todo || pg_catalog.jsonb_build_object('tbl', l.child::oid, 'found', rets);
            END IF;
            IF n > 0 THEN
                withheld := withheld || pg_catalog.jsonb_build_object(l.child::text,
                                coalesce((withheld->>(l.child::text))::bigint, 0) + n);
            END IF;
        END LOOP;
    END LOOP;
    doc := doc || pg_catalog.jsonb_build_object(
        'data', data,
        'linked', linked,
        'linked_withheld', withheld,
        'consents', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c) ORDER BY c.event_id)
                                FROM pdp.consent_history(subject) c), '[]'),
        'active_consents', coalesce((SELECT pg_catalog.jsonb_agg(s.purpose ORDER BY s.purpose) FROM pdp.consent_state s
                                      WHERE s.subject OPERATOR(pg_catalog.=) export_subject.subject
                                        AND (s.valid_until IS NULL OR s.valid_until > pg_catalog.now())), '[]'),
        'restrictions', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('action', r.action, 'reason', r.reason, 'at', r.at) ORDER BY r.id)
                                   FROM pdp.restriction_event r WHERE r.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'),
        'holds', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', h.id, 'reason', h.reason, 'placed_at', h.placed_at,
                                                                                      'until', h.until, 'released_at', h.released_at) ORDER BY h.id)
                            FROM pdp.hold h WHERE h.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'),
        'disclosures', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('recipient', d.recipient, 'country', r.country,
                                                   'cross_border', r.country <> 'KZ', 'safeguards', r.safeguards, 'purpose', d.purpose,
                                                   'categories', d.categories, 'at', d.at) ORDER BY d.id)
                                  FROM pdp.disclosure d LEFT JOIN pdp.recipient r ON r.name OPERATOR(pg_catalog.=) d.recipient
                                 WHERE d.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'),
        'purposes', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('purpose', p.purpose, 'legal_basis', p.legal_basis,
                                                   'requires_consent', p.requires_consent, 'description', p.description) ORDER BY p.purpose)
                               FROM pdp.purpose p), '[]'),
        'retention', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', p.tbl::text, 'period', p.period::text,
                                                    'from', coalesce(p.anchor_column::text, 'insertion'), 'then', p.action) ORDER BY p.tbl::text)
                                FROM pdp.retention_policy p), '[]'),
        'requests', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', q.id, 'kind', q.kind, 'received_at', q.received_at,
                                                   'due_at', q.due_at, 'completed_at', q.completed_at, 'outcome', q.outcome) ORDER BY q.id)
                               FROM pdp.subject_request q WHERE q.subject OPERATOR(pg_catalog.=) export_subject.subject), '[]'));
    PERFORM pdp._audit_durable('export_subject', NULL, subject,
                       pg_catalog.jsonb_build_object('tables', (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_object_keys(data))));
    RETURN doc;
END
$$;
COMMENT ON FUNCTION pdp.export_subject(text) IS
    'every row of the subject in every registered table, the rows that follow theirs through declared links, with consents, restrictions, holds, disclosures, purposes and retention (GDPR Art. 15, 20)';
CREATE FUNCTION pdp.export_subject(subject bigint) RETURNS jsonb
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.export_subject(subject::text) $$;
COMMENT ON FUNCTION pdp.export_subject(bigint) IS 'export_subject for a bigint or integer subject';
CREATE FUNCTION pdp.export_subject(subject uuid) RETURNS jsonb
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.export_subject(subject::text) $$;
COMMENT ON FUNCTION pdp.export_subject(uuid) IS 'export_subject for a uuid subject';

-- Erasure, per column (doc/rights.md, "Erasure"):
--   a row naming the subject in a 'delete' column (an own column) is
--     deleted: delete wins over every other column's action, unless another
--     own column of the row names a held subject (the row is theirs too:
--     kept, counted as "held");
--   in every row left, each 'set_null' or 'set_value' column naming the
--     subject is set to NULL or to its erase_value; 'keep' columns stay;
--   a row so cut that names no subject any more (every subject column NULL
--     or at its erase_value) is anonymised: its ruled and declared columns
--     get unlinkable transforms (pdp._anonymisers: NULL, a constant, a
--     random value, a generalisation; never a keyed rule) and its nullable
--     foreign keys into tables erasure deletes from are emptied.  A row
--     still naming another subject (a learner's grade cut from its grader)
--     keeps its values;
--   rows that follow deleted rows through declared links are deleted too,
--     transitively (pdp._follow_links), except a held subject's and those
--     naming another restricted subject, and dependants written by other
--     subjects get their link's on_other.
-- The subject's own hold refuses the whole erasure; a table-wide hold
-- refuses it when the table holds the subject's rows.  Every statement on
-- a table runs as its owner (pdp._exec_as_owner).  With sweep, the
-- subject's identifiers are gathered before anything is erased and
-- searched for in every text, varchar and json(b) column afterwards
-- (92_traces.sql); the receipt lists where they still are (table, column,
-- row count, never a value).
CREATE FUNCTION pdp.erase_subject(subject text, reason text, sweep boolean DEFAULT false) RETURNS jsonb
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
    ids record;
    traces jsonb;
    z record;
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
    IF sweep IS NULL THEN
        RAISE EXCEPTION 'sweep must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Before anything is erased: afterwards the classified values are gone.
    IF sweep THEN
        SELECT * INTO ids FROM pdp._subject_identifiers(subject);
    END IF;
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
                cond := concat_ws(' OR ', cond, pdp._subject_eq_sql(t, c.col, fit));
            END IF;
            IF c.on_erase = 'delete' THEN
                -- (coalesce: a NULL column names nobody, so it must not make the test NULL)
                co_held := concat_ws(' OR ', co_held, pdp._cell_in_sql(t, c.col, '$2'));
                IF c.fits THEN
                    own_cond := concat_ws(' OR ', own_cond, pdp._subject_eq_sql(t, c.col, fit));
                END IF;
            END IF;
            IF c.on_erase IN ('set_null', 'set_value') THEN
                anon := concat_ws(' AND ', anon, pg_catalog.format(
                            '(t.%1$I IS NULL OR t.%1$I OPERATOR(pg_catalog.=) ($3)[%2$s]::%3$s%4$s)', c.col, i, c.typ,
                            CASE WHEN c.fits THEN ' OR ' || pdp._subject_eq_sql(t, c.col, fit) ELSE '' END));
                IF c.fits THEN
                    cut_cond := concat_ws(' OR ', cut_cond, pdp._subject_eq_sql(t, c.col, fit));
                    set_list := concat_ws(', ', set_list, pg_catalog.format(
                                    '%1$I = CASE WHEN %2$s THEN %3$s ELSE t.%1$I END', c.col, pdp._subject_eq_sql(t, c.col, fit),
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
        -- Following links from a Citus table needs a RETURNING list Citus
        -- refuses in a DELETE: the whole erasure is refused, nothing erased.
        IF own_cond IS NOT NULL AND EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) t) THEN
          IF pdp._citus_table_kind(t) IS NOT NULL THEN
            RAISE EXCEPTION 'cannot erase through the links declared from % table "%"', pdp._citus_table_kind(t), pdp._relname(t)
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'Following the links needs the deleted rows'' link columns, which Citus does not return from a DELETE on the shards; nothing was erased.',
                      HINT = 'See "What is refused on Citus tables" in doc/scaling.md: drop the links (pdp.drop_link), or keep the parent table local.';
          END IF;
        END IF;
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
        -- A row left naming nobody is anonymised: the table's rules, and its
        -- nullable foreign keys into tables with delete columns emptied (an
        -- anonymised grade keeps no link to the deleted enrolment).
        -- Never a column rule: its keyed pseudonym would let the key's holder
        -- re-link the row (76_anonymise.sql); the constants follow the
        -- subject columns' erase values in $3.
        SELECT * INTO z FROM pdp._anonymise_set(t, '$3', i, anon);
        erase_values := erase_values || z.vals;
        set_list := concat_ws(', ', set_list, z.set_list);
        -- On a Citus table, Citus runs the UPDATE on every shard or placement
        -- unless it is refused here (the whole erasure, nothing changed).
        PERFORM pdp._citus_anonymise_check(t, set_list);
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
    IF sweep THEN
        traces := coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', tr.table_name::text, 'column', tr.column_name,
                                                                                     'rows', tr.rows, 'registered', tr.registered)
                                                        ORDER BY tr.table_name::text, tr.column_name)
                              FROM pdp._find_traces(ids.emails, ids.phones, ids.iins, ids.names) tr), '[]');
    END IF;
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
    IF sweep THEN
        receipt := receipt || pg_catalog.jsonb_build_object('sweep', pg_catalog.jsonb_build_object(
                       'identifiers', pg_catalog.cardinality(ids.emails) + pg_catalog.cardinality(ids.phones)
                                      + pg_catalog.cardinality(ids.iins) + pg_catalog.cardinality(ids.names),
                       'traces', traces));
    END IF;
    receipt := receipt || pdp._shred_erase_keys(subject);  -- crypto-shredding: keys go at commit (src/shred.c)
    INSERT INTO pdp.erasure (subject_pseudonym, receipt) VALUES (pdp._subject_pseudonym(subject), receipt)
    ON CONFLICT (subject_pseudonym) DO UPDATE SET receipt = EXCLUDED.receipt, erased_at = EXCLUDED.erased_at;
    PERFORM pdp._audit('erase_subject', NULL, subject, pg_catalog.jsonb_build_object('tables', tables, 'followed', followed,
                                                                                     'consents_withdrawn', withdrawn)
                                                        || CASE WHEN sweep THEN pg_catalog.jsonb_build_object(
                                                               'sweep_traces', pg_catalog.jsonb_array_length(traces)) ELSE '{}' END);
    RETURN receipt;
END
$$;
COMMENT ON FUNCTION pdp.erase_subject(text, text, boolean) IS
    'erases the subject per column (delete the rows they own, set_null/set_value their links, keep, anonymise kept rows without keyed rules), following declared links; refused under their hold; with sweep, lists where their identifiers remain; returns and stores a receipt';
CREATE FUNCTION pdp.erase_subject(subject bigint, reason text, sweep boolean DEFAULT false) RETURNS jsonb
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.erase_subject(subject::text, reason, sweep) $$;
COMMENT ON FUNCTION pdp.erase_subject(bigint, text, boolean) IS 'erase_subject for a bigint or integer subject';
CREATE FUNCTION pdp.erase_subject(subject uuid, reason text, sweep boolean DEFAULT false) RETURNS jsonb
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT pdp.erase_subject(subject::text, reason, sweep) $$;
COMMENT ON FUNCTION pdp.erase_subject(uuid, text, boolean) IS 'erase_subject for a uuid subject';
