-- Issue 18, step 6: one audit trail and one key across a Citus cluster,
-- collected on read (src/sql/15_citus.sql).  pdp.key_status() gains the
-- columns node and mismatch, and reads each worker's fingerprints on a
-- coordinator; pdp.verify_audit_log() gains nodes (re-created with it by
-- 40_audit.sql, which runs after this part) and verifies each worker's
-- chain; the report shows both.  Without Citus workers nothing changes but
-- the two new columns, NULL.

CREATE OR REPLACE FUNCTION pdp._citus_has_workers() RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL
       OR pg_catalog.to_regclass('pg_catalog.pg_dist_node') IS NULL THEN
        RETURN false;
    END IF;
    -- Dynamic SQL: the catalogs exist only where the citus extension does.
    EXECUTE 'SELECT CASE WHEN (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) OPERATOR(pg_catalog.=) 0 '
            '            THEN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_node d '
            '                   WHERE d.isactive AND d.noderole::text OPERATOR(pg_catalog.=) ''primary'' '
            '                     AND d.groupid OPERATOR(pg_catalog.<>) 0) '
            '            ELSE 0 END'
       INTO n;
    RETURN n OPERATOR(pg_catalog.>) 0;
END
$$;
COMMENT ON FUNCTION pdp._citus_has_workers() IS
    'whether this server is a Citus coordinator with active workers (false without Citus and on a worker)';

CREATE OR REPLACE FUNCTION pdp._citus_on_workers(command text, OUT node text, OUT ok boolean, OUT result text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE
        'SELECT w.nodename OPERATOR(pg_catalog.||) '':'' OPERATOR(pg_catalog.||) w.nodeport::text, w.success, w.result '
        '  FROM pg_catalog.run_command_on_workers($1) w ORDER BY w.nodename, w.nodeport'
        USING command;
END
$$;
COMMENT ON FUNCTION pdp._citus_on_workers(text) IS
    'runs one of pdp''s read-only queries on every active Citus worker: per worker (host:port), success and the value or error';

-- key_status returns two more columns: it is a plpgsql reader now, over the
-- C function renamed _key_status_local.
DROP FUNCTION pdp.key_status();
CREATE OR REPLACE FUNCTION pdp._key_status_local(OUT version integer, OUT fingerprint text, OUT active boolean)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'pdp_key_status';
COMMENT ON FUNCTION pdp._key_status_local() IS
    'this server''s key versions in pdp.key_file with public fingerprints; active marks the version used for new values. Never returns key bytes';
CREATE OR REPLACE FUNCTION pdp.key_status(OUT version integer, OUT fingerprint text, OUT active boolean,
                               OUT node text, OUT mismatch boolean)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    nodes jsonb;
    differ text;
    unread text;
    any_mismatch boolean;
BEGIN
    IF NOT pdp._citus_has_workers() THEN
        RETURN QUERY SELECT k.version, k.fingerprint, k.active, NULL::text, NULL::boolean FROM pdp._key_status_local() k;
        RETURN;
    END IF;
    SELECT pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('node', 'coordinator', 'ok', true, 'keys',
               coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('version', k.version, 'fingerprint', k.fingerprint,
                                                                         'active', k.active)), '[]')))
      INTO nodes FROM pdp._key_status_local() k;
    SELECT nodes OPERATOR(pg_catalog.||) coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'node', w.node, 'ok', w.ok, 'keys', CASE WHEN w.ok THEN w.result::jsonb END, 'error', CASE WHEN NOT w.ok THEN w.result END)
               ORDER BY w.node), '[]')
      INTO nodes
      FROM pdp._citus_on_workers('SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(''version'', k.version, '
                                 '''fingerprint'', k.fingerprint, ''active'', k.active)), ''[]'') FROM pdp.key_status() k') w;
    WITH n AS (SELECT x->>'node' AS node, (x->>'ok')::boolean AS ok, x->'keys' AS keys FROM pg_catalog.jsonb_array_elements(nodes) x),
         k AS (SELECT n.node, (e->>'version')::integer AS version, e->>'fingerprint' AS fingerprint, (e->>'active')::boolean AS active
                 FROM n, pg_catalog.jsonb_array_elements(n.keys) e WHERE n.ok),
         loc AS (SELECT * FROM k WHERE k.node OPERATOR(pg_catalog.=) 'coordinator'),
         wk AS (SELECT * FROM k WHERE k.node OPERATOR(pg_catalog.<>) 'coordinator'),
         r AS (SELECT l.version, l.fingerprint, l.active, l.node,
                      EXISTS (SELECT 1 FROM n WHERE n.ok AND n.node OPERATOR(pg_catalog.<>) 'coordinator'
                                 AND NOT EXISTS (SELECT 1 FROM wk WHERE wk.node OPERATOR(pg_catalog.=) n.node
                                                    AND wk.version OPERATOR(pg_catalog.=) l.version
                                                    AND wk.fingerprint OPERATOR(pg_catalog.=) l.fingerprint
                                                    AND wk.active OPERATOR(pg_catalog.=) l.active)) AS mismatch
                 FROM loc l
               UNION ALL
               SELECT w.version, w.fingerprint, w.active, w.node,
                      NOT EXISTS (SELECT 1 FROM loc l WHERE l.version OPERATOR(pg_catalog.=) w.version
                                     AND l.fingerprint OPERATOR(pg_catalog.=) w.fingerprint
                                     AND l.active OPERATOR(pg_catalog.=) w.active)
                 FROM wk w
               UNION ALL
               SELECT NULL, NULL, NULL, n.node, NULL FROM n WHERE NOT n.ok)
    SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) ORDER BY r.node OPERATOR(pg_catalog.<>) 'coordinator', r.node, r.version)
      INTO nodes FROM r;
    SELECT pg_catalog.string_agg(DISTINCT s.node, ', ') FILTER (WHERE s.mismatch AND s.node OPERATOR(pg_catalog.<>) 'coordinator'),
           pg_catalog.string_agg(DISTINCT s.node, ', ') FILTER (WHERE s.version IS NULL),
           pg_catalog.bool_or(s.mismatch)
      INTO differ, unread, any_mismatch
      FROM pg_catalog.jsonb_to_recordset(nodes) AS s(version integer, fingerprint text, active boolean, node text, mismatch boolean);
    IF any_mismatch THEN
        RAISE WARNING 'the key file differs between the nodes of the Citus cluster'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Workers whose key fingerprints differ from the coordinator''s: %s.', coalesce(differ, 'none')),
                  HINT = 'Give every node the same pdp.key_file (one file from pdp-keygen, copied to each node): '
                         'otherwise pseudonyms computed on workers differ and their tokens cannot be reversed elsewhere.';
    END IF;
    IF unread IS NOT NULL THEN
        RAISE WARNING 'could not read the key fingerprints of every Citus worker'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Unread: %s.', unread),
                  HINT = 'Check that the worker is reachable and that pdp_ext and its key file are set up there.';
    END IF;
    RETURN QUERY SELECT (e.x->>'version')::integer, e.x->>'fingerprint', (e.x->>'active')::boolean, e.x->>'node',
                        (e.x->>'mismatch')::boolean
                   FROM pg_catalog.jsonb_array_elements(nodes) WITH ORDINALITY AS e(x, i)
                  ORDER BY e.i;
END
$$;
COMMENT ON FUNCTION pdp.key_status() IS
    'key versions in pdp.key_file with public fingerprints; active marks the version used for new values; on a Citus '
    'coordinator, every worker''s too (node, and mismatch where a node''s fingerprints differ). Never returns key bytes';

-- This server's chain; pdp.verify_audit_log (40_audit.sql) adds the workers'.
CREATE OR REPLACE FUNCTION pdp._verify_audit_log_local(OUT ok boolean, OUT entries bigint, OUT first_bad_id bigint,
                                                   OUT keyed boolean, OUT legacy_entries bigint, OUT anchors bigint,
                                            OUT last_anchor_id bigint, OUT first_unanchored_id bigint, OUT message text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chain record;
    s record;
    an record;
    expected_seq bigint;
    prev bytea;
    prev_mac bytea;
    h bytea;
    writable boolean;
    key_error text;
    missing_versions integer[] := '{}';
    v integer;
    f text;
    content text;
    bad_anchor_seq bigint;
    good_anchor_seq bigint;
BEGIN
    writable := pg_catalog.current_setting('transaction_read_only') OPERATOR(pg_catalog.=) 'off';
    -- Can the MACs be checked?  Without the key file, say so: the hash chain
    -- and the anchors are still checked, but ok is not true.
    BEGIN
        PERFORM pdp._audit_key_version();
    EXCEPTION WHEN OTHERS THEN
        key_error := SQLSTATE;
    END;
    -- Seal what is waiting first.  A read-only transaction (a hot standby)
    -- cannot: it checks the sealed chain only, since there an entry without
    -- a seal may just be waiting for the primary to seal it.
    IF writable AND key_error IS NULL THEN
        PERFORM pdp.seal_audit_log(wait => true, max_entries => 2147483647);
    END IF;
    IF key_error IS NULL THEN
        FOR v IN SELECT DISTINCT a.key_version FROM pdp.audit_seal a WHERE a.key_version IS NOT NULL LOOP
            BEGIN
                PERFORM pdp._audit_mac(NULL, 0, pg_catalog.sha256(''::bytea), v);
            EXCEPTION WHEN OTHERS THEN
                missing_versions := missing_versions || v;
            END;
        END LOOP;
    END IF;
    SELECT * INTO chain FROM pdp.audit_chain;
    IF NOT FOUND THEN
        SELECT * INTO chain FROM (SELECT true AS singleton, 0::bigint AS head_seq,
                                         '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea AS head_hash,
                                         0::bigint AS anchor_seq,
                                         '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea AS anchor_hash,
                                         NULL::timestamptz AS anchored_at, NULL::bytea AS head_mac, NULL::bytea AS anchor_mac,
                                         0::bigint AS legacy_seq) c;
    END IF;
    ok := true;
    keyed := key_error IS NULL;
    entries := 0;
    legacy_entries := 0;
    anchors := 0;
    first_bad_id := NULL;
    expected_seq := chain.anchor_seq;
    prev := chain.anchor_hash;
    prev_mac := chain.anchor_mac;
    FOR s IN SELECT a.seq, a.entry_id, a.hash, a.mac, a.key_version, l AS entry, l.id AS found
               FROM pdp.audit_seal a LEFT JOIN pdp.audit_log l ON l.id OPERATOR(pg_catalog.=) a.entry_id
              ORDER BY a.seq LOOP
        expected_seq := expected_seq + 1;
        IF s.seq OPERATOR(pg_catalog.<>) expected_seq OR s.found IS NULL THEN
            -- A seal is missing (an entry and its seal deleted), or its entry is.
            ok := false;
            first_bad_id := coalesce(s.found, s.entry_id);
            message := 'a seal or its entry is missing';
            RETURN;
        END IF;
        h := pdp._audit_hash(prev, s.seq, (s.entry).id, (s.entry).at, pdp._audit_fields(s.entry));
        IF h OPERATOR(pg_catalog.<>) s.hash THEN
            ok := false;
            first_bad_id := s.entry_id;
            message := 'an entry does not match its seal''s hash';
            RETURN;
        END IF;
        IF s.seq OPERATOR(pg_catalog.<=) chain.legacy_seq THEN
            -- The legacy segment (sealed before 0.4): hashes only.
            IF s.mac IS NOT NULL OR s.key_version IS NOT NULL THEN
                ok := false;
                first_bad_id := s.entry_id;
                message := 'a seal of the legacy segment carries a MAC';
                RETURN;
            END IF;
            legacy_entries := legacy_entries + 1;
        ELSIF s.mac IS NULL OR s.key_version IS NULL THEN
            -- Every seal after the legacy segment has a MAC: one without is forged.
            ok := false;
            first_bad_id := s.entry_id;
            message := 'a seal after the legacy segment has no MAC';
            RETURN;
        ELSIF key_error IS NOT NULL OR s.key_version OPERATOR(pg_catalog.=) ANY (missing_versions) THEN
            keyed := false;
        ELSIF pdp._audit_mac(prev_mac, s.seq, s.hash, s.key_version) OPERATOR(pg_catalog.<>) s.mac THEN
            ok := false;
            first_bad_id := s.entry_id;
            message := 'a seal''s MAC does not match: the chain was rewritten without the key, or the key file is another one';
            RETURN;
        END IF;
        prev := s.hash;
        prev_mac := s.mac;
        entries := entries + 1;
    END LOOP;
    IF expected_seq OPERATOR(pg_catalog.<>) chain.head_seq OR prev OPERATOR(pg_catalog.<>) chain.head_hash
       OR prev_mac IS DISTINCT FROM chain.head_mac AND expected_seq OPERATOR(pg_catalog.>) chain.anchor_seq THEN
        -- The newest entries were cut off.
        ok := false;
        first_bad_id := (SELECT max(a.entry_id) FROM pdp.audit_seal a);
        message := 'the chain does not end at its recorded head: the newest entries were cut off';
        RETURN;
    END IF;
    -- The published anchors: each must still be in the chain as published.
    -- They come from pdp.audit_anchor and from every anchor file named there
    -- (lines "seq entry_id at hash mac key_version").
    FOR an IN
        WITH published AS (
            SELECT a.seq, a.hash, a.mac FROM pdp.audit_anchor a
            UNION
            SELECT m[1]::bigint, pg_catalog.decode(m[4], 'hex'), CASE WHEN m[5] OPERATOR(pg_catalog.=) '-' THEN NULL ELSE pg_catalog.decode(m[5], 'hex') END
              FROM (SELECT DISTINCT a.file FROM pdp.audit_anchor a WHERE a.file IS NOT NULL) fl,
                   LATERAL pg_catalog.regexp_matches(coalesce(pdp._audit_anchor_file_read(fl.file), ''),
                                                     '^(\d+) (\d+) (\S+) ([0-9a-f]{64}) ([0-9a-f]{64}|-) (\d+|-)$', 'gn') m
        )
        SELECT p.seq, p.hash, p.mac, a.entry_id AS entry_id, a.hash AS sealed_hash, a.mac AS sealed_mac
          FROM published p LEFT JOIN pdp.audit_seal a ON a.seq OPERATOR(pg_catalog.=) p.seq
         WHERE p.seq OPERATOR(pg_catalog.>=) chain.anchor_seq
         ORDER BY p.seq
    LOOP
        anchors := anchors + 1;
        IF an.seq OPERATOR(pg_catalog.=) 0 THEN
            CONTINUE;
        ELSIF an.seq OPERATOR(pg_catalog.=) chain.anchor_seq THEN
            IF an.hash OPERATOR(pg_catalog.=) chain.anchor_hash AND an.mac IS NOT DISTINCT FROM chain.anchor_mac THEN
                good_anchor_seq := an.seq;
                CONTINUE;
            END IF;
        ELSIF an.sealed_hash OPERATOR(pg_catalog.=) an.hash AND an.mac IS NOT DISTINCT FROM an.sealed_mac THEN
            good_anchor_seq := an.seq;
            CONTINUE;
        END IF;
        bad_anchor_seq := an.seq;
        EXIT;
    END LOOP;
    last_anchor_id := (SELECT a.entry_id FROM pdp.audit_seal a WHERE a.seq OPERATOR(pg_catalog.=) good_anchor_seq);
    first_unanchored_id := (SELECT a.entry_id FROM pdp.audit_seal a
                             WHERE a.seq OPERATOR(pg_catalog.>) coalesce(good_anchor_seq, chain.anchor_seq)
                             ORDER BY a.seq LIMIT 1);
    IF bad_anchor_seq IS NOT NULL THEN
        -- Rewritten (with the key, or recomputed) since an anchor was published:
        -- nothing after the last good anchor can be trusted.
        ok := false;
        first_bad_id := coalesce(first_unanchored_id, (SELECT min(l.id) FROM pdp.audit_log l));
        message := pg_catalog.format('the chain does not match the anchor published at position %s: '
                                     'it was rewritten after the last good anchor', bad_anchor_seq);
        RETURN;
    END IF;
    -- An entry inserted with triggers disabled would never be sealed.
    IF writable AND key_error IS NULL THEN
        SELECT min(l.id) INTO first_bad_id FROM pdp.audit_log l
         WHERE NOT EXISTS (SELECT 1 FROM pdp.audit_seal a WHERE a.entry_id OPERATOR(pg_catalog.=) l.id);
        IF first_bad_id IS NOT NULL THEN
            ok := false;
            message := 'an entry was never sealed (inserted with triggers disabled)';
            RETURN;
        END IF;
    END IF;
    IF NOT keyed THEN
        ok := NULL;
        message := CASE WHEN key_error IS NOT NULL
                        THEN pg_catalog.format('keyed verification was not possible: the key file could not be loaded (SQLSTATE %s); '
                                               'only the hashes and the anchors were checked', key_error)
                        ELSE pg_catalog.format('keyed verification was not possible: key version(s) %s are not in the key file; '
                                               'only the hashes and the anchors were checked', pg_catalog.array_to_string(missing_versions, ', '))
                   END;
        RAISE WARNING '%', message USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run pdp.verify_audit_log() where pdp.key_file names the key file the chain was sealed with.';
        RETURN;
    END IF;
    message := CASE WHEN legacy_entries OPERATOR(pg_catalog.>) 0
                    THEN pg_catalog.format('ok: %s entries, %s of them in the unkeyed legacy segment (before 0.4)', entries, legacy_entries)
                    ELSE pg_catalog.format('ok: %s entries', entries) END;
END
$$;
COMMENT ON FUNCTION pdp._verify_audit_log_local() IS
    'seals what is pending, then checks this server''s whole chain (hashes, MACs under the key file, the published anchors): ok (NULL when the MACs could not be checked), entries, the first bad entry, and the first entry after the last good anchor; read-only (a standby), checks the sealed chain only';

CREATE OR REPLACE FUNCTION pdp._report_nodes(nodes jsonb, cluster_ok boolean) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keys jsonb;
BEGIN
    SELECT coalesce(pg_catalog.jsonb_object_agg(k.node, k.differs), '{}') INTO keys
      FROM (SELECT s.node, pg_catalog.bool_or(s.mismatch) AS differs FROM pdp.key_status() s GROUP BY s.node) k;
    RETURN pg_catalog.jsonb_build_object(
        'nodes', (SELECT pg_catalog.jsonb_agg(x OPERATOR(pg_catalog.||)
                                              pg_catalog.jsonb_build_object('key_mismatch', keys->(x->>'node')) ORDER BY i)
                    FROM pg_catalog.jsonb_array_elements(nodes) WITH ORDINALITY AS e(x, i)),
        'reversals', pg_catalog.jsonb_build_object(
            'total', (SELECT pg_catalog.sum((x->>'reversals')::bigint) FROM pg_catalog.jsonb_array_elements(nodes) x),
            'on_workers', (SELECT coalesce(pg_catalog.sum((x->>'reversals')::bigint), 0) FROM pg_catalog.jsonb_array_elements(nodes) x
                            WHERE x->>'node' OPERATOR(pg_catalog.<>) 'coordinator')),
        -- true: some node's fingerprints differ; NULL: none differ, but some could not be read.
        'key_mismatch', (SELECT CASE WHEN pg_catalog.bool_or(d::boolean) THEN true
                                     WHEN pg_catalog.bool_or(d IS NULL) THEN NULL ELSE false END
                           FROM pg_catalog.jsonb_each_text(keys) AS j(n, d)),
        'cluster_audit_ok', cluster_ok);
END
$$;
COMMENT ON FUNCTION pdp._report_nodes(jsonb, boolean) IS
    'the compliance report''s facts about a Citus cluster''s nodes: each node''s audit chain, reversals and key fingerprints (collected on read)';

-- Privileges (as 99_privileges.sql).
REVOKE ALL ON FUNCTION pdp._citus_has_workers(), pdp._citus_on_workers(text), pdp._key_status_local(),
    pdp.key_status(), pdp._verify_audit_log_local(), pdp._report_nodes(jsonb, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.key_status() TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp._citus_has_workers(), pdp._report_nodes(jsonb, boolean) TO pdp_admin, pdp_auditor;
