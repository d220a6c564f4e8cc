-- Issue 18, step 5's second half: rectification notices reach the
-- coordinator (src/sql/15_citus.sql "Rectification notices from the
-- shards", src/rights.c, src/sql/80_rights.sql).  pdp.citus_sync_state also
-- mirrors pdp.disclosure's (subject, recipient) pairs into the reference
-- table pdp.citus_disclosure; the rectification trigger on a shard records
-- the notices in its node's pdp.rectification_notice from there;
-- pdp.pending_notices and pdp.acknowledge_notice on the coordinator collect
-- them from the workers.

--
-- pdp's rectification trigger (src/rights.c) finds the recipients of a
-- changed row's subjects in pdp.disclosure.  On a Citus table the trigger
-- fires on the shards (citus.enable_unsafe_triggers copies it there), on
-- workers whose pdp.disclosure is empty.  pdp.citus_sync_state() therefore
-- also mirrors pdp.disclosure's (subject, recipient) pairs into the Citus
-- reference table pdp.citus_disclosure, kept in step by statement triggers
-- on pdp.disclosure as the consent mirror is.  The trigger on a shard calls
-- pdp._citus_shard_notices, which reads the local placement of that mirror
-- and records the notices in the node's own pdp.rectification_notice, in
-- the statement's transaction (a rolled-back UPDATE leaves none), naming the
-- distributed table, not the shard, with a number unique in the cluster:
-- the node's Citus group times 10^15 plus its own sequence's next value.
-- Of a reference table's placements, only the one of the lowest group
-- records them (each placement runs the UPDATE).  Where the mirror or its
-- placement is missing, the change is refused (55000), never left without
-- its notices.  On the coordinator, pdp.pending_notices adds the workers'
-- pending notices (pdp._citus_worker_notices, collected on read through
-- run_command_on_workers, as the audit trail is), and
-- pdp.acknowledge_notice of a worker's notice first copies it into the
-- coordinator's pdp.rectification_notice (pdp._citus_collect_notice), where
-- it is acknowledged in the caller's transaction; a notice copied so is no
-- longer listed from the worker.

-- The statement trigger on pdp.disclosure: the (subject, recipient) pairs
-- of the subjects the statement touched, re-mirrored from pdp.disclosure in
-- two distributed statements (gathered into arrays first: Citus plans no
-- local table into a write to a reference table).
CREATE OR REPLACE FUNCTION pdp._citus_mirror_disclosure_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    touched text[];
    s text[];
    r text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM pdp.citus_disclosure;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        touched := ARRAY(SELECT DISTINCT n.subject FROM new_rows n);
    ELSIF TG_OP = 'DELETE' THEN
        touched := ARRAY(SELECT DISTINCT o.subject FROM old_rows o);
    ELSE
        touched := ARRAY(SELECT o.subject FROM old_rows o UNION SELECT n.subject FROM new_rows n);
    END IF;
    SELECT pg_catalog.array_agg(d.subject), pg_catalog.array_agg(d.recipient) INTO s, r
      FROM (SELECT DISTINCT x.subject, x.recipient FROM pdp.disclosure x WHERE x.subject = ANY (touched)) d;
    DELETE FROM pdp.citus_disclosure m WHERE m.subject = ANY (touched);
    IF s IS NOT NULL THEN
        INSERT INTO pdp.citus_disclosure (subject, recipient)
        SELECT u.subject, u.recipient FROM ROWS FROM (pg_catalog.unnest(s), pg_catalog.unnest(r)) AS u(subject, recipient)
        ON CONFLICT (subject, recipient) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION pdp._citus_mirror_disclosure_change() IS
    'statement trigger on pdp.disclosure, installed by pdp.citus_sync_state: re-mirrors the touched subjects'' recipients into pdp.citus_disclosure';

-- Create (first call) and refill pdp.citus_disclosure, and install its
-- triggers on pdp.disclosure; the rows mirrored.  Called by
-- pdp.citus_sync_state on the coordinator.
CREATE OR REPLACE FUNCTION pdp._citus_sync_disclosure() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text;
    n bigint;
BEGIN
    LOCK TABLE pdp.disclosure IN SHARE MODE;
    IF pg_catalog.to_regclass('pdp.citus_disclosure') IS NULL THEN
        CREATE TABLE pdp.citus_disclosure (subject text NOT NULL, recipient text NOT NULL, PRIMARY KEY (subject, recipient));
        COMMENT ON TABLE pdp.citus_disclosure IS
            'Citus reference table mirroring pdp.disclosure''s subjects and recipients for the rectification trigger on the shards (pdp.citus_sync_state)';
        REVOKE ALL ON pdp.citus_disclosure FROM PUBLIC;
    END IF;
    kind := pdp._citus_table_kind('pdp.citus_disclosure'::regclass);
    IF kind IS NULL THEN
        PERFORM pg_catalog.create_reference_table('pdp.citus_disclosure'::regclass);
    ELSIF kind <> 'reference' THEN
        RAISE EXCEPTION 'pdp''s mirror table "citus_disclosure" is a % table, not a reference table', kind
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Drop it and run pdp.citus_sync_state again.';
    END IF;
    DELETE FROM pdp.citus_disclosure;
    INSERT INTO pdp.citus_disclosure SELECT DISTINCT d.subject, d.recipient FROM pdp.disclosure d;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid OPERATOR(pg_catalog.=) 'pdp.disclosure'::regclass::oid
                      AND t.tgname OPERATOR(pg_catalog.=) 'citus_mirror_insert') THEN
        CREATE TRIGGER citus_mirror_insert AFTER INSERT ON pdp.disclosure REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_disclosure_change();
        CREATE TRIGGER citus_mirror_update AFTER UPDATE ON pdp.disclosure REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_disclosure_change();
        CREATE TRIGGER citus_mirror_delete AFTER DELETE ON pdp.disclosure REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_disclosure_change();
        CREATE TRIGGER citus_mirror_truncate AFTER TRUNCATE ON pdp.disclosure
            FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_disclosure_change();
    END IF;
    RETURN pg_catalog.jsonb_build_object('disclosure', n);
END
$$;
COMMENT ON FUNCTION pdp._citus_sync_disclosure() IS
    'inside pdp.citus_sync_state: mirrors pdp.disclosure''s subjects and recipients into the reference table pdp.citus_disclosure, kept in step by triggers';

-- Called by the rectification trigger for a table pdp's registry does not
-- name: records the notices of subject's change of columns on shard, a
-- Citus shard of a distributed or reference table, from the local
-- placement of pdp.citus_disclosure (see above).  Refuses (0A000) a table
-- that is no Citus shard, and (55000) a shard where the mirror or its
-- placement is missing.  Never names a value.
CREATE OR REPLACE FUNCTION pdp._citus_shard_notices(shard regclass, subject text, columns text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[];
    shardname text;
    shardnsp oid;
    shardid bigint;
    dist regclass;
    dist_kind text;
    groupid integer;
    placement regclass;
BEGIN
    -- (Not from pg_class: Citus hides shards there from a client's session.)
    parts := pg_catalog.parse_ident(shard::text);
    shardname := parts[pg_catalog.cardinality(parts)];
    -- (parse_ident gives the schema's name as it is, which to_regnamespace would parse again.)
    shardnsp := CASE WHEN pg_catalog.cardinality(parts) OPERATOR(pg_catalog.=) 2 THEN
                    (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) parts[1]) END;
    shardid := pg_catalog.substring(shardname, '_([0-9]{1,18})$')::bigint;
    IF shardid IS NOT NULL AND pg_catalog.to_regclass('pg_catalog.pg_dist_shard') IS NOT NULL THEN
        -- (Dynamic SQL: the catalogs exist only where Citus does.)
        EXECUTE 'SELECT s.logicalrelid FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.logicalrelid '
                ' WHERE s.shardid OPERATOR(pg_catalog.=) $1 AND c.relnamespace OPERATOR(pg_catalog.=) $2'
           INTO dist USING shardid, shardnsp;
    END IF;
    IF dist IS NULL THEN
        RAISE EXCEPTION 'cannot record the rectification notices of a change to table "%"', shardname
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'The table is not registered with pdp_ext on this server, nor a shard of a Citus table: '
                           'the recipients would not be told.',
                  HINT = 'See "Rectification notices on Citus" in doc/scaling.md: register the table, or distribute it '
                         'with its column rules and run pdp.citus_sync_state() on the coordinator.';
    END IF;
    IF pg_catalog.to_regclass('pdp.citus_disclosure') IS NULL THEN
        RAISE EXCEPTION 'cannot record the rectification notices of a change to table "%"', pdp._relname(dist)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'This node has no mirror of pdp.disclosure (pdp.citus_disclosure): the recipients would not be told.',
                  HINT = 'On the coordinator, run SELECT pdp.citus_sync_state(); see "Rectification notices on Citus" in doc/scaling.md.';
    END IF;
    EXECUTE 'SELECT g.groupid FROM pg_catalog.pg_dist_local_group g' INTO groupid;
    EXECUTE 'SELECT pg_catalog.to_regclass(pg_catalog.format(''pdp.%I'', ''citus_disclosure_'' OPERATOR(pg_catalog.||) s.shardid)) '
            '  FROM pg_catalog.pg_dist_shard s WHERE s.logicalrelid OPERATOR(pg_catalog.=) ''pdp.citus_disclosure''::pg_catalog.regclass'
       INTO placement;
    IF placement IS NULL THEN
        RAISE EXCEPTION 'cannot record the rectification notices of a change to table "%"', pdp._relname(dist)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'This node has no placement of pdp''s mirror of pdp.disclosure (pdp.citus_disclosure): the recipients would not be told.',
                  HINT = 'On the coordinator, run SELECT replicate_reference_tables(); then SELECT pdp.citus_sync_state(); '
                         'see "Rectification notices on Citus" in doc/scaling.md.';
    END IF;
    -- Each placement of a reference table runs the UPDATE: the lowest group records.
    dist_kind := pdp._citus_table_kind(dist);
    IF dist_kind = 'reference' THEN
        EXECUTE 'SELECT pg_catalog.min(p.groupid) OPERATOR(pg_catalog.=) $2 FROM pg_catalog.pg_dist_placement p '
                ' WHERE p.shardid OPERATOR(pg_catalog.=) $1'
           INTO STRICT dist_kind USING shardid, groupid;
        IF dist_kind IS DISTINCT FROM 'true' THEN
            RETURN;
        END IF;
    END IF;
    EXECUTE pg_catalog.format(
        'INSERT INTO pdp.rectification_notice (id, subject, recipient, tbl, columns) '
        'SELECT $1::bigint OPERATOR(pg_catalog.*) 1000000000000000 OPERATOR(pg_catalog.+) pg_catalog.nextval(''pdp.rectification_notice_id_seq''), '
        '       m.subject, m.recipient, $2, $3 '
        '  FROM (SELECT DISTINCT d.subject, d.recipient FROM %s d WHERE d.subject OPERATOR(pg_catalog.=) $4) m', placement)
        USING groupid, dist, columns, subject;
END
$$;
COMMENT ON FUNCTION pdp._citus_shard_notices(regclass, text, text[]) IS
    'rectification trigger on a Citus shard: records the notices of a subject''s change in this node''s pdp.rectification_notice, naming the distributed table, from the mirror of pdp.disclosure; refuses where the mirror is missing';

-- The pending rectification notices recorded on the workers (see above),
-- collected on read, those the coordinator has copied left out; on a
-- server that is not a coordinator with workers and a disclosure mirror,
-- none.  A worker that cannot be asked refuses the read (55000) rather than
-- leave its notices out.
CREATE OR REPLACE FUNCTION pdp._citus_worker_notices(OUT id bigint, OUT subject text, OUT recipient text, OUT tbl regclass,
                                          OUT columns text[], OUT raised_at timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
BEGIN
    IF pg_catalog.to_regclass('pdp.citus_disclosure') IS NULL OR NOT pdp._citus_has_workers() THEN
        RETURN;
    END IF;
    FOR w IN SELECT * FROM pdp._citus_on_workers(
            'SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(''id'', n.id, ''subject'', n.subject, '
            '''recipient'', n.recipient, ''tbl'', pg_catalog.format(''%I.%I'', s.nspname, c.relname), '
            '''columns'', n.columns, ''raised_at'', n.raised_at)), ''[]'') '
            '  FROM pdp.rectification_notice n LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) n.tbl::oid '
            '  LEFT JOIN pg_catalog.pg_namespace s ON s.oid OPERATOR(pg_catalog.=) c.relnamespace '
            ' WHERE n.acknowledged_at IS NULL AND n.kind OPERATOR(pg_catalog.=) ''rectification''') LOOP
        IF NOT w.ok THEN
            RAISE EXCEPTION 'cannot read the rectification notices recorded on worker %', w.node
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'The worker''s notices would be left out: bring it back (citus_get_active_worker_nodes()) and read again.';
        END IF;
        RETURN QUERY
            SELECT (e->>'id')::bigint, e->>'subject', e->>'recipient', pg_catalog.to_regclass(e->>'tbl'),
                   ARRAY(SELECT pg_catalog.jsonb_array_elements_text(e->'columns')), (e->>'raised_at')::timestamptz
              FROM pg_catalog.jsonb_array_elements(w.result::jsonb) e
             WHERE NOT EXISTS (SELECT 1 FROM pdp.rectification_notice x WHERE x.id OPERATOR(pg_catalog.=) (e->>'id')::bigint);
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp._citus_worker_notices() IS
    'on a Citus coordinator: the workers'' pending rectification notices not yet copied to the coordinator, collected through run_command_on_workers';

-- Before pdp.acknowledge_notice: a notice numbered as a worker's (10^15 and
-- above) that only a worker holds is copied, pending, into the coordinator's
-- pdp.rectification_notice, in the caller's transaction; nothing otherwise.
CREATE OR REPLACE FUNCTION pdp._citus_collect_notice(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF id IS NULL OR id OPERATOR(pg_catalog.<) 1000000000000000
       OR EXISTS (SELECT 1 FROM pdp.rectification_notice x WHERE x.id OPERATOR(pg_catalog.=) _citus_collect_notice.id) THEN
        RETURN;
    END IF;
    INSERT INTO pdp.rectification_notice (id, subject, recipient, tbl, columns, raised_at)
    SELECT w.id, w.subject, w.recipient, w.tbl, w.columns, w.raised_at
      FROM pdp._citus_worker_notices() w WHERE w.id OPERATOR(pg_catalog.=) _citus_collect_notice.id AND w.tbl IS NOT NULL
    ON CONFLICT ON CONSTRAINT rectification_notice_pkey DO NOTHING;   -- (copied meanwhile by a concurrent acknowledgement)
END
$$;
COMMENT ON FUNCTION pdp._citus_collect_notice(bigint) IS
    'before acknowledging a worker''s rectification notice: copies it into the coordinator''s pdp.rectification_notice';

CREATE OR REPLACE FUNCTION pdp.citus_sync_state() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src text;
    mirror text;
    kind text;
    n bigint;
    counts jsonb := '{}';
    groupid integer;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RAISE EXCEPTION 'Citus is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'pdp.citus_sync_state is for Citus clusters; on a single server pdp reads its own tables.';
    END IF;
    EXECUTE 'SELECT g.groupid FROM pg_catalog.pg_dist_local_group g' INTO groupid;
    IF groupid IS DISTINCT FROM 0 THEN
        RAISE EXCEPTION 'pdp.citus_sync_state runs on the Citus coordinator'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run it on the coordinator: it writes the state to every worker.';
    END IF;
    -- Writers of pdp's state wait until the mirror is full and its triggers
    -- are in place, so that no change falls between the copy and the triggers.
    LOCK TABLE pdp.purpose, pdp.purpose_grant, pdp.consent_state, pdp.restriction IN SHARE MODE;
    FOREACH src IN ARRAY ARRAY['purpose', 'purpose_grant', 'consent_state', 'restriction'] LOOP
        mirror := pdp._citus_mirror_name(src);
        IF pg_catalog.to_regclass('pdp.' OPERATOR(pg_catalog.||) mirror) IS NULL THEN
            EXECUTE CASE src
                WHEN 'purpose' THEN
                    'CREATE TABLE pdp.citus_purpose (purpose text PRIMARY KEY, requires_consent boolean NOT NULL, '
                    'restriction_exempt boolean NOT NULL, maintenance boolean NOT NULL)'
                WHEN 'purpose_grant' THEN
                    'CREATE TABLE pdp.citus_purpose_grant (role_name text NOT NULL, purpose text NOT NULL, '
                    'PRIMARY KEY (role_name, purpose))'
                WHEN 'consent_state' THEN
                    'CREATE TABLE pdp.citus_consent_state (subject text NOT NULL, purpose text NOT NULL, '
                    'valid_until timestamptz, PRIMARY KEY (subject, purpose))'
                ELSE
                    'CREATE TABLE pdp.citus_restriction (subject text PRIMARY KEY)'
                END;
            EXECUTE pg_catalog.format('COMMENT ON TABLE pdp.%I IS %L', mirror,
                'Citus reference table mirroring pdp.' OPERATOR(pg_catalog.||) src
                OPERATOR(pg_catalog.||) ' for the row check on the workers (pdp.citus_sync_state)');
            EXECUTE pg_catalog.format('REVOKE ALL ON pdp.%I FROM PUBLIC', mirror);
        END IF;
        kind := pdp._citus_table_kind(('pdp.' OPERATOR(pg_catalog.||) mirror)::regclass);
        IF kind IS NULL THEN
            EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING ('pdp.' OPERATOR(pg_catalog.||) mirror)::regclass;
        ELSIF kind <> 'reference' THEN
            RAISE EXCEPTION 'pdp''s mirror table "%" is a % table, not a reference table', mirror, kind
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Drop it and run pdp.citus_sync_state again.';
        END IF;
        EXECUTE pg_catalog.format('DELETE FROM pdp.%I', mirror);
        EXECUTE CASE src
            WHEN 'purpose' THEN
                'INSERT INTO pdp.citus_purpose SELECT p.purpose, p.requires_consent, p.restriction_exempt, p.maintenance '
                '  FROM pdp.purpose p'
            WHEN 'purpose_grant' THEN
                'INSERT INTO pdp.citus_purpose_grant SELECT DISTINCT a.rolname::text, g.purpose '
                '  FROM pdp.purpose_grant g JOIN pg_catalog.pg_roles a ON a.oid OPERATOR(pg_catalog.=) g.role::oid'
            WHEN 'consent_state' THEN
                'INSERT INTO pdp.citus_consent_state SELECT c.subject, c.purpose, c.valid_until FROM pdp.consent_state c'
            ELSE
                'INSERT INTO pdp.citus_restriction SELECT r.subject FROM pdp.restriction r'
            END;
        GET DIAGNOSTICS n = ROW_COUNT;
        counts := counts OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(src, n);
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                        WHERE t.tgrelid OPERATOR(pg_catalog.=) ('pdp.' OPERATOR(pg_catalog.||) src)::regclass::oid
                          AND t.tgname OPERATOR(pg_catalog.=) 'citus_mirror_insert') THEN
            EXECUTE pg_catalog.format('CREATE TRIGGER citus_mirror_insert AFTER INSERT ON pdp.%I '
                                      'REFERENCING NEW TABLE AS new_rows '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_change()', src);
            EXECUTE pg_catalog.format('CREATE TRIGGER citus_mirror_update AFTER UPDATE ON pdp.%I '
                                      'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_change()', src);
            EXECUTE pg_catalog.format('CREATE TRIGGER citus_mirror_delete AFTER DELETE ON pdp.%I '
                                      'REFERENCING OLD TABLE AS old_rows '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_change()', src);
            EXECUTE pg_catalog.format('CREATE TRIGGER citus_mirror_truncate AFTER TRUNCATE ON pdp.%I '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_change()', src);
        END IF;
    END LOOP;
    counts := counts OPERATOR(pg_catalog.||) pdp._citus_sync_disclosure();   -- for the rectification trigger on the shards
    PERFORM pdp._audit('citus_sync_state', NULL, NULL, counts);
    RETURN counts;
END
$$;

CREATE OR REPLACE VIEW pdp.pending_notices AS
SELECT n.id, n.subject, n.recipient, r.country, n.tbl AS table_name, n.columns, n.raised_at, n.kind
  FROM pdp.rectification_notice n LEFT JOIN pdp.recipient r ON r.name OPERATOR(pg_catalog.=) n.recipient
 WHERE n.acknowledged_at IS NULL
UNION ALL   -- on a Citus coordinator: the notices recorded on the workers' shards (src/sql/15_citus.sql)
SELECT w.id, w.subject, w.recipient, r.country, w.tbl, w.columns, w.raised_at, 'rectification'::text
  FROM pdp._citus_worker_notices() w LEFT JOIN pdp.recipient r ON r.name OPERATOR(pg_catalog.=) w.recipient;

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

-- Inside an erasure (pdp._forget_subject): the workers' pending rectification
-- notices of the erased subject are copied into the coordinator's
-- pdp.rectification_notice under the subject's erased name, closed as
-- superseded by the erasure, as its own pending notices are; they are then
-- no longer listed.  Returns how many.  (The workers' own rows keep the
-- identifier: nothing is written on a worker outside the transaction.)
CREATE OR REPLACE FUNCTION pdp._citus_forget_worker_notices(subject text, erased text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    IF NOT pdp._erasing() THEN
        RAISE EXCEPTION 'pdp._citus_forget_worker_notices runs only inside an erasure' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF pg_catalog.to_regclass('pdp.citus_disclosure') IS NULL OR NOT pdp._citus_has_workers() THEN
        RETURN 0;
    END IF;
    INSERT INTO pdp.rectification_notice (id, subject, recipient, tbl, columns, raised_at, acknowledged_at, acknowledged_by)
    SELECT w.id, erased, w.recipient, w.tbl, w.columns, w.raised_at, pg_catalog.now(), 'pdp: superseded by erasure'
      FROM pdp._citus_worker_notices() w
     WHERE w.subject OPERATOR(pg_catalog.=) _citus_forget_worker_notices.subject AND w.tbl IS NOT NULL
    ON CONFLICT ON CONSTRAINT rectification_notice_pkey DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp._citus_forget_worker_notices(text, text) IS
    'inside an erasure on a Citus coordinator: closes the workers'' pending rectification notices of the erased subject on the coordinator, under its erased name';

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

CREATE OR REPLACE FUNCTION pdp._sync_rectification_trigger(tbl regclass) RETURNS void
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

REVOKE ALL ON FUNCTION pdp._citus_forget_worker_notices(text, text), pdp._citus_mirror_disclosure_change(), pdp._citus_sync_disclosure(),
                       pdp._citus_shard_notices(regclass, text, text[]), pdp._citus_worker_notices(),
                       pdp._citus_collect_notice(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp._citus_worker_notices() TO pdp_admin, pdp_auditor;
