-- Tamper-evident audit trail.
--
-- Entries are appended to pdp.audit_log without taking any lock, so
-- concurrent writers never wait for one another.  A sealer then chains
-- committed entries, in the order it finds them, into pdp.audit_seal:
--
--   hash(seq) = SHA-256(hash(seq - 1) || seq || entry id || entry time ||
--                       role, session role, action, object, subject, details)
--
-- starting from the chain's anchor (32 zero bytes, or the hash of the last
-- entry cut off by pdp.trim_audit_log).  Writers only append: pdp_ext's
-- audit worker seals what is pending in the background (src/audit_durable.c),
-- and pdp.verify_audit_log() and pdp.trim_audit_log() seal whatever is left
-- before they work.  Editing, deleting or reordering sealed entries,
-- even by a superuser with triggers disabled, breaks the chain.
--
-- Every seal also carries a MAC that only the holder of the key file can
-- compute (src/audit_chain.c):
--
--   mac(seq) = HMAC-SHA-256(K_audit, seq || hash(seq) || mac(seq - 1))
--
-- so recomputing the chain without the key is detected.  Seals made before
-- 0.4 have no MAC: they form the legacy segment (up to audit_chain.legacy_seq),
-- verified by their hashes alone.  The head is published regularly (pdp.
-- publish_audit_anchor, scheduled by pdp.schedule_audit_anchor) to the server
-- log, pdp.audit_anchor and an optional file outside the data directory;
-- verification checks the chain against every published anchor, which also
-- exposes a rewrite made with the key (by a superuser through pdp's own
-- functions).

CREATE TABLE pdp.audit_log (
    id                bigserial   PRIMARY KEY,
    at                timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    role              name        NOT NULL DEFAULT SESSION_USER,
    session_role      name        NOT NULL DEFAULT SESSION_USER,
    action            text        NOT NULL,
    object            text,
    subject_pseudonym text,
    details           jsonb       COMPRESSION lz4 NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE pdp.audit_log IS 'append-only, hash-chained record of every pdp_ext action; no personal values';
COMMENT ON SEQUENCE pdp.audit_log_id_seq IS 'numbers audit entries';
COMMENT ON COLUMN pdp.audit_log.id IS 'the entry''s number';
COMMENT ON COLUMN pdp.audit_log.at IS 'when';
COMMENT ON COLUMN pdp.audit_log.role IS 'the role that acted: the session''s SET ROLE, or its login role';
COMMENT ON COLUMN pdp.audit_log.session_role IS 'the login role of the session (session_user)';
COMMENT ON COLUMN pdp.audit_log.action IS 'what was done, e.g. grant_consent, erase_subject, reverse';
COMMENT ON COLUMN pdp.audit_log.object IS 'what it was done to: a table, purpose, function';
COMMENT ON COLUMN pdp.audit_log.subject_pseudonym IS 'the subject concerned, as pdp._subject_pseudonym(subject) (an internal key domain), never the identifier';
COMMENT ON COLUMN pdp.audit_log.details IS 'further facts, with no personal values';
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_log_id_seq', '');

CREATE TABLE pdp.audit_seal (
    seq      bigint PRIMARY KEY,
    entry_id bigint NOT NULL UNIQUE,
    hash     bytea  NOT NULL,
    key_version integer,
    mac      bytea
);
COMMENT ON TABLE pdp.audit_seal IS 'the hash chain over audit entries, in sealing order';
COMMENT ON COLUMN pdp.audit_seal.seq IS 'position in the chain';
COMMENT ON COLUMN pdp.audit_seal.entry_id IS 'the sealed entry';
COMMENT ON COLUMN pdp.audit_seal.hash IS 'SHA-256 of the previous hash and the entry';
COMMENT ON COLUMN pdp.audit_seal.key_version IS 'the key version the MAC was made with (NULL: a legacy seal, made before 0.4)';
COMMENT ON COLUMN pdp.audit_seal.mac IS 'HMAC-SHA-256 of seq, hash and the previous MAC under the key file''s audit subkey (NULL: legacy)';
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_seal', '');

-- Entries waiting to be sealed: a work queue, not part of the record.  It is
-- UNLOGGED (no WAL: a second logged insert per entry would halve the write
-- rate) and not dumped.  A crash empties it, and so does a restore; the
-- marker table below is emptied with it, and when the sealer finds the
-- marker gone it rebuilds the queue from the log once.
CREATE UNLOGGED TABLE pdp.audit_unsealed (entry_id bigint PRIMARY KEY);
COMMENT ON TABLE pdp.audit_unsealed IS 'audit entries not sealed yet';
COMMENT ON COLUMN pdp.audit_unsealed.entry_id IS 'the entry';
CREATE UNLOGGED TABLE pdp.audit_queue_marker (intact boolean PRIMARY KEY);
COMMENT ON TABLE pdp.audit_queue_marker IS 'present while pdp.audit_unsealed is known complete (gone after a crash or restore)';
COMMENT ON COLUMN pdp.audit_queue_marker.intact IS 'always true';

CREATE TABLE pdp.audit_chain (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    head_seq     bigint      NOT NULL DEFAULT 0,
    head_hash    bytea       NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000',
    anchor_seq   bigint      NOT NULL DEFAULT 0,
    anchor_hash  bytea       NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000',
    anchored_at  timestamptz,
    head_mac     bytea,
    anchor_mac   bytea,
    legacy_seq   bigint      NOT NULL DEFAULT 0
);
COMMENT ON TABLE pdp.audit_chain IS 'the chain''s head and anchor (where verification starts after a trim)';
COMMENT ON COLUMN pdp.audit_chain.singleton IS 'there is one row';
COMMENT ON COLUMN pdp.audit_chain.head_seq IS 'the last sealed position';
COMMENT ON COLUMN pdp.audit_chain.head_hash IS 'its hash: publish it elsewhere to detect a rewrite of the whole chain';
COMMENT ON COLUMN pdp.audit_chain.anchor_seq IS 'the last position cut off by trim_audit_log (0: none)';
COMMENT ON COLUMN pdp.audit_chain.anchor_hash IS 'its hash, from which the rest verifies';
COMMENT ON COLUMN pdp.audit_chain.anchored_at IS 'when the last trim happened';
COMMENT ON COLUMN pdp.audit_chain.head_mac IS 'the MAC of the last sealed position (NULL while it is a legacy seal)';
COMMENT ON COLUMN pdp.audit_chain.anchor_mac IS 'the MAC of the last position cut off by trim_audit_log (NULL: none, or a legacy seal)';
COMMENT ON COLUMN pdp.audit_chain.legacy_seq IS 'the last seal made before 0.4, without a MAC (0: none); later seals all carry one';
-- The row is made on first use, not here: pg_dump carries it, and a row made
-- by CREATE EXTENSION would collide with the restored one.
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_chain', '');

CREATE FUNCTION pdp._audit_hash(prev bytea, seq bigint, entry_id bigint, at timestamptz, fields text[])
RETURNS bytea LANGUAGE C IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_audit_hash';
COMMENT ON FUNCTION pdp._audit_hash(bytea, bigint, bigint, timestamptz, text[]) IS
    'SHA-256 chain hash of one audit entry (canonical length-prefixed encoding)';

-- The keyed chain (C, see src/audit_chain.c).  Only pdp_ext's own functions
-- may call these: the MAC function would otherwise be an oracle for forging.
CREATE FUNCTION pdp._audit_mac(prev_mac bytea, seq bigint, hash bytea, key_version integer)
RETURNS bytea LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_audit_mac';
COMMENT ON FUNCTION pdp._audit_mac(bytea, bigint, bytea, integer) IS
    'HMAC-SHA-256 of a seal under the key file''s audit subkey (pdp_ext''s own functions only)';
CREATE FUNCTION pdp._audit_key_version() RETURNS integer
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_audit_key_version';
COMMENT ON FUNCTION pdp._audit_key_version() IS 'the version of the key new seals are made with; raises without a key file';
CREATE FUNCTION pdp._audit_log_line(line text, json boolean) RETURNS boolean
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_log_line';
COMMENT ON FUNCTION pdp._audit_log_line(text, boolean) IS
    'writes one LOG line: an entry as JSON (only with pdp.audit_log_json on) or an anchor';
CREATE FUNCTION pdp._audit_anchor_file_check(path text) RETURNS text
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_anchor_file_check';
COMMENT ON FUNCTION pdp._audit_anchor_file_check(text) IS
    'the resolved path of an anchor file; refuses one inside the data directory, the key file, or a file pdp_ext did not create';
CREATE FUNCTION pdp._audit_anchor_file_append(path text, line text) RETURNS void
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_anchor_file_append';
COMMENT ON FUNCTION pdp._audit_anchor_file_append(text, text) IS 'appends an anchor line to the anchor file and flushes it';
CREATE FUNCTION pdp._audit_anchor_file_read(path text) RETURNS text
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_anchor_file_read';
COMMENT ON FUNCTION pdp._audit_anchor_file_read(text) IS 'the anchor file''s content (NULL when it does not exist)';

-- Published heads.  Each is also written to the server log and, if one is
-- named, to an anchor file outside the data directory.
CREATE TABLE pdp.audit_anchor (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    seq         bigint      NOT NULL,
    entry_id    bigint,
    hash        bytea       NOT NULL,
    mac         bytea,
    key_version integer,
    file        text,
    chain_ok    boolean
);
COMMENT ON TABLE pdp.audit_anchor IS 'the audit chain''s heads as published (server log, anchor file): verification checks the chain against each';
COMMENT ON SEQUENCE pdp.audit_anchor_id_seq IS 'numbers anchors';
COMMENT ON COLUMN pdp.audit_anchor.id IS 'the anchor''s number';
COMMENT ON COLUMN pdp.audit_anchor.at IS 'when it was published';
COMMENT ON COLUMN pdp.audit_anchor.seq IS 'the head''s position in the chain';
COMMENT ON COLUMN pdp.audit_anchor.entry_id IS 'the head''s entry';
COMMENT ON COLUMN pdp.audit_anchor.hash IS 'the head''s hash';
COMMENT ON COLUMN pdp.audit_anchor.mac IS 'the head''s MAC (NULL: a legacy head)';
COMMENT ON COLUMN pdp.audit_anchor.key_version IS 'the key version of the MAC';
COMMENT ON COLUMN pdp.audit_anchor.file IS 'the anchor file it was also appended to, if any';
COMMENT ON COLUMN pdp.audit_anchor.chain_ok IS 'whether the chain verified (against the earlier anchors) when this one was published; NULL without the key';
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_anchor', '');
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_anchor_id_seq', '');

CREATE FUNCTION pdp._audit_append_only() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_audit_append_only';
COMMENT ON FUNCTION pdp._audit_append_only() IS 'trigger: refuses UPDATE, DELETE and TRUNCATE of the audit trail';
CREATE FUNCTION pdp._audit_trim_delete(cut_seq bigint) RETURNS bigint
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_trim_delete';
COMMENT ON FUNCTION pdp._audit_trim_delete(bigint) IS
    'deletes the audit entries sealed up to cut_seq and their seals (for pdp.trim_audit_log; the append-only guard is lifted for this call only)';

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON pdp.audit_log
    FOR EACH ROW EXECUTE FUNCTION pdp._audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON pdp.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._audit_append_only();
CREATE TRIGGER audit_seal_append_only BEFORE UPDATE OR DELETE ON pdp.audit_seal
    FOR EACH ROW EXECUTE FUNCTION pdp._audit_append_only();
CREATE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON pdp.audit_seal
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._audit_append_only();
CREATE TRIGGER audit_anchor_append_only BEFORE UPDATE OR DELETE ON pdp.audit_anchor
    FOR EACH ROW EXECUTE FUNCTION pdp._audit_append_only();
CREATE TRIGGER audit_anchor_no_truncate BEFORE TRUNCATE ON pdp.audit_anchor
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._audit_append_only();

-- Every new entry joins the sealing queue (C, see src/audit.c).
CREATE FUNCTION pdp._audit_enqueue() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'pdp_audit_enqueue';
COMMENT ON FUNCTION pdp._audit_enqueue() IS 'trigger: queues a new audit entry for sealing';
CREATE TRIGGER audit_log_enqueue AFTER INSERT ON pdp.audit_log
    FOR EACH ROW EXECUTE FUNCTION pdp._audit_enqueue();

-- The fields of an entry, in hashing order.
CREATE FUNCTION pdp._audit_fields(e pdp.audit_log) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY[e.role::text, e.session_role::text, e.action, e.object, e.subject_pseudonym, e.details::text] $$;
COMMENT ON FUNCTION pdp._audit_fields(pdp.audit_log) IS 'an audit entry''s fields in hashing order';

-- The sealer proper (C, see src/audit_seal.c): reads the queue in entry id
-- order, computes the hash and MAC chain in C, writes the seals with one
-- INSERT ... SELECT FROM unnest(...) per chunk, empties the queue with one
-- DELETE and moves the head.  No statement per entry.
CREATE FUNCTION pdp._audit_seal_chain(max_entries bigint) RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_audit_seal_chain';
COMMENT ON FUNCTION pdp._audit_seal_chain(bigint) IS
    'chains up to max_entries queued audit entries (NULL: all) from the locked head; for pdp.seal_audit_log only';

CREATE FUNCTION pdp.seal_audit_log(wait boolean DEFAULT true, max_entries integer DEFAULT 100000) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chain record;
    json boolean;
    n bigint;
BEGIN
    -- Sealing needs the key: without it nothing is sealed (the entries wait),
    -- and the error says why.
    PERFORM pdp._audit_key_version();
    json := coalesce(pg_catalog.current_setting('pdp.audit_log_json', true), 'off') OPERATOR(pg_catalog.=) 'on';
    -- One sealer at a time; writers pass by rather than wait.
    IF wait THEN
        PERFORM pg_advisory_xact_lock(pg_catalog.hashtext('pdp_ext audit seal'));
    ELSIF NOT pg_try_advisory_xact_lock(pg_catalog.hashtext('pdp_ext audit seal')) THEN
        RETURN 0;
    END IF;
    INSERT INTO pdp.audit_chain DEFAULT VALUES ON CONFLICT DO NOTHING;
    SELECT * INTO chain FROM pdp.audit_chain FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM pdp.audit_queue_marker) THEN
        -- After a crash, a restore or CREATE EXTENSION: rebuild the queue.
        INSERT INTO pdp.audit_unsealed
        SELECT l.id FROM pdp.audit_log l
         WHERE NOT EXISTS (SELECT 1 FROM pdp.audit_seal a WHERE a.entry_id OPERATOR(pg_catalog.=) l.id)
        ON CONFLICT DO NOTHING;
        INSERT INTO pdp.audit_queue_marker VALUES (true) ON CONFLICT DO NOTHING;
    END IF;
    DELETE FROM pdp.audit_unsealed u USING pdp.audit_seal a WHERE a.entry_id OPERATOR(pg_catalog.=) u.entry_id;
    n := pdp._audit_seal_chain(max_entries);
    IF json AND n OPERATOR(pg_catalog.>) 0 THEN
        -- One line per entry for a SIEM (doc/audit.md shows the format), in
        -- chain order: the function runs after the sort.
        PERFORM pdp._audit_log_line(pg_catalog.json_build_object(
                    'id', l.id, 'seq', a.seq, 'at', l.at, 'role', l.role, 'session_role', l.session_role,
                    'action', l.action, 'object', l.object, 'subject', l.subject_pseudonym, 'details', l.details,
                    'hash', pg_catalog.encode(a.hash, 'hex'), 'mac', pg_catalog.encode(a.mac, 'hex'))::text, true)
           FROM pdp.audit_seal a JOIN pdp.audit_log l ON l.id OPERATOR(pg_catalog.=) a.entry_id
          WHERE a.seq OPERATOR(pg_catalog.>) chain.head_seq
          ORDER BY a.seq;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp.seal_audit_log(boolean, integer) IS
    'chains committed audit entries that are not sealed yet, in entry id order and set at a time (pdp._audit_seal_chain); returns how many it sealed';

-- The writer every pdp_ext action calls (C, see src/audit.c): details must
-- hold no personal values; a subject is stored only as its pseudonym; the
-- actor is the caller's SET ROLE or session user, never chosen by the caller.
CREATE FUNCTION pdp._audit(action text, object text, subject text DEFAULT NULL, details jsonb DEFAULT '{}')
RETURNS void LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_audit_write';
COMMENT ON FUNCTION pdp._audit(text, text, text, jsonb) IS
    'writes an audit entry (the subject as its pseudonym, the caller as actor); the audit worker seals it in the background';

CREATE FUNCTION pdp._verify_audit_log_local(OUT ok boolean, OUT entries bigint, OUT first_bad_id bigint,
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

-- The audit trail's verification.  Without Citus workers: this server's
-- chain (pdp._verify_audit_log_local), nodes NULL.  On a Citus coordinator
-- with workers, collected on read: each worker verifies its own chain
-- (pdp.verify_audit_log() there, which on a worker is local) and counts
-- the reversals it recorded (entries "reverse", e.g. a pdp.decrypt pushed
-- down to a worker's shard); nodes holds one object per node (coordinator
-- first, then host:port), and ok, message tell the whole cluster: false if
-- any chain is broken, NULL if one could not be checked (unreachable, or
-- without its key).  entries and the ids stay the coordinator's.
CREATE FUNCTION pdp.verify_audit_log(OUT ok boolean, OUT entries bigint, OUT first_bad_id bigint,
                                     OUT keyed boolean, OUT legacy_entries bigint, OUT anchors bigint,
                                     OUT last_anchor_id bigint, OUT first_unanchored_id bigint, OUT message text,
                                     OUT nodes jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
    r jsonb;
    broken text;
    unchecked text;
BEGIN
    SELECT * INTO ok, entries, first_bad_id, keyed, legacy_entries, anchors, last_anchor_id, first_unanchored_id, message
      FROM pdp._verify_audit_log_local();
    IF NOT pdp._citus_has_workers() THEN
        RETURN;
    END IF;
    nodes := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
        'node', 'coordinator', 'ok', ok, 'entries', entries, 'first_bad_id', first_bad_id, 'keyed', keyed, 'message', message,
        'reversals', (SELECT pg_catalog.count(*) FROM pdp.audit_log l WHERE l.action OPERATOR(pg_catalog.=) 'reverse')));
    FOR w IN SELECT * FROM pdp._citus_on_workers(
                 'SELECT pg_catalog.jsonb_build_object(''ok'', v.ok, ''entries'', v.entries, ''first_bad_id'', v.first_bad_id, '
                 '''keyed'', v.keyed, ''message'', v.message, ''reversals'', (SELECT pg_catalog.count(*) FROM pdp.audit_log l '
                 'WHERE l.action OPERATOR(pg_catalog.=) ''reverse'')) FROM pdp.verify_audit_log() v') LOOP
        IF w.ok THEN
            r := pg_catalog.jsonb_build_object('node', w.node) OPERATOR(pg_catalog.||) w.result::jsonb;
        ELSE
            r := pg_catalog.jsonb_build_object('node', w.node, 'ok', NULL, 'message',
                                               'could not verify: ' OPERATOR(pg_catalog.||) coalesce(w.result, 'no answer'));
        END IF;
        nodes := nodes OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(r);
        IF (r->>'ok')::boolean IS FALSE THEN
            broken := coalesce(broken OPERATOR(pg_catalog.||) ', ', '') OPERATOR(pg_catalog.||) w.node;
        ELSIF (r->>'ok')::boolean IS NULL THEN
            unchecked := coalesce(unchecked OPERATOR(pg_catalog.||) ', ', '') OPERATOR(pg_catalog.||) w.node;
        END IF;
    END LOOP;
    IF ok IS FALSE THEN
        RETURN;   -- the coordinator's own chain is broken: its message says where
    END IF;
    IF broken IS NOT NULL THEN
        ok := false;
        message := pg_catalog.format('the audit chain of worker(s) %s failed verification (see nodes); the coordinator''s: %s',
                                     broken, message);
    ELSIF unchecked IS NOT NULL THEN
        ok := NULL;
        message := pg_catalog.format('the audit chain of worker(s) %s could not be verified (see nodes); the coordinator''s: %s',
                                     unchecked, message);
    ELSIF ok THEN
        message := pg_catalog.format('ok: %s entries on the coordinator, %s on %s worker(s)', entries,
                                     (SELECT pg_catalog.sum((x->>'entries')::bigint) FROM pg_catalog.jsonb_array_elements(nodes) x
                                       WHERE x->>'node' OPERATOR(pg_catalog.<>) 'coordinator'),
                                     pg_catalog.jsonb_array_length(nodes) OPERATOR(pg_catalog.-) 1);
    END IF;
END
$$;
COMMENT ON FUNCTION pdp.verify_audit_log() IS
    'seals what is pending, then checks the whole chain (hashes, MACs under the key file, the published anchors): ok (NULL when the MACs could not be checked), entries, the first bad entry, and the first entry after the last good anchor; read-only (a standby), checks the sealed chain only; on a Citus coordinator, every worker''s chain too (nodes: one object per node, with its reversals)';

CREATE FUNCTION pdp.trim_audit_log(keep interval DEFAULT '5 years') RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cut record;
    n bigint;
BEGIN
    PERFORM pdp._check_interval(keep, 'the audit log must keep at least one day', interval '1 day');
    PERFORM pdp.seal_audit_log(wait => true, max_entries => 2147483647);
    -- Cut the longest prefix of the chain whose entries are all older than
    -- keep (the chain is in sealing order, which only roughly follows time):
    -- its last seal becomes the anchor.  Nothing younger than keep goes.
    SELECT a.seq, a.hash, a.mac INTO cut FROM pdp.audit_seal a
     WHERE a.seq < coalesce((SELECT min(b.seq) FROM pdp.audit_seal b JOIN pdp.audit_log l ON l.id OPERATOR(pg_catalog.=) b.entry_id
                              WHERE l.at >= pg_catalog.now() - keep), 9223372036854775807)
     ORDER BY a.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    n := pdp._audit_trim_delete(cut.seq);
    UPDATE pdp.audit_chain SET anchor_seq = cut.seq, anchor_hash = cut.hash, anchor_mac = cut.mac, anchored_at = pg_catalog.now();
    PERFORM pdp._audit('trim_audit_log', 'pdp.audit_log', NULL,
                       pg_catalog.jsonb_build_object('entries_removed', n, 'anchor_seq', cut.seq, 'keep', keep::text));
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp.trim_audit_log(interval) IS
    'removes audit entries older than keep; the rest stays verifiable from the recorded anchor hash';

-- Durable entries (C, see src/audit_durable.c): committed by pdp_ext's audit
-- worker, in a transaction of its own, before the call returns.  For reads of
-- personal data (exports; reversals call the same path from C), whose entry
-- must outlive a rollback of the caller's transaction.
CREATE FUNCTION pdp._audit_durable(action text, object text, subject text DEFAULT NULL, details jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_audit_durable_write';
COMMENT ON FUNCTION pdp._audit_durable(text, text, text, jsonb) IS
    'writes an audit entry through the audit worker and returns once it is committed, whatever the caller''s transaction does; fails when it cannot be';
REVOKE ALL ON FUNCTION pdp._audit_durable(text, text, text, jsonb) FROM PUBLIC;

-- The head, and its publication ------------------------------------------

CREATE FUNCTION pdp.audit_head(OUT entry_id bigint, OUT seq bigint, OUT hash bytea, OUT mac bytea,
                               OUT key_version integer, OUT at timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT c.head_seq, c.head_hash, c.head_mac INTO seq, hash, mac FROM pdp.audit_chain c;
    IF NOT FOUND THEN
        seq := 0;
        hash := '\x0000000000000000000000000000000000000000000000000000000000000000';
        RETURN;
    END IF;
    SELECT a.entry_id, a.key_version, l.at INTO entry_id, key_version, at
      FROM pdp.audit_seal a LEFT JOIN pdp.audit_log l ON l.id OPERATOR(pg_catalog.=) a.entry_id
     WHERE a.seq OPERATOR(pg_catalog.=) audit_head.seq;
END
$$;
COMMENT ON FUNCTION pdp.audit_head() IS
    'the audit chain''s current head: its entry, position, hash, MAC, key version and the entry''s time (publish it elsewhere)';

CREATE FUNCTION pdp.publish_audit_anchor(file text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    path text;
    v record;
    h record;
    anchor bigint;
    line text;
BEGIN
    IF pg_catalog.current_setting('transaction_read_only') OPERATOR(pg_catalog.=) 'on' THEN
        RAISE EXCEPTION 'cannot publish an audit anchor in a read-only transaction'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Publish anchors on the primary.';
    END IF;
    IF file IS NOT NULL THEN
        -- The server writes the file as its operating-system user: only a
        -- superuser may choose where.
        IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) pdp._outer_user()::oid) THEN
            RAISE EXCEPTION 'only a superuser may name an audit anchor file'
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Publish without a file (the server log and pdp.audit_anchor), or have a superuser schedule the job with one.';
        END IF;
        path := pdp._audit_anchor_file_check(file);
    END IF;
    -- Seal everything (this needs the key), then check the chain against the
    -- anchors published so far before publishing the new head: a rewrite
    -- since the last anchor is reported here, in the log, at the latest.
    PERFORM pdp.seal_audit_log(wait => true, max_entries => 2147483647);
    SELECT * INTO v FROM pdp._verify_audit_log_local();
    IF v.ok IS DISTINCT FROM true THEN
        RAISE WARNING 'pdp_ext audit chain failed verification before publishing an anchor: %', v.message
            USING ERRCODE = 'data_corrupted',
                  DETAIL = pg_catalog.format('First entry not vouched for: %s.', coalesce(v.first_bad_id::text, 'none')),
                  HINT = 'Compare the anchors in the server log and the anchor file with pdp.audit_seal.';
    END IF;
    SELECT * INTO h FROM pdp.audit_head();
    INSERT INTO pdp.audit_anchor (seq, entry_id, hash, mac, key_version, file, chain_ok)
    VALUES (h.seq, h.entry_id, h.hash, h.mac, h.key_version, path, v.ok)
    RETURNING id INTO anchor;
    line := pg_catalog.format('%s %s %s %s %s %s', h.seq, coalesce(h.entry_id, 0),
                              coalesce(pg_catalog.to_char(h.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '-'),
                              pg_catalog.encode(h.hash, 'hex'), coalesce(pg_catalog.encode(h.mac, 'hex'), '-'),
                              coalesce(h.key_version::text, '-'));
    PERFORM pdp._audit_log_line(line || CASE WHEN v.ok IS DISTINCT FROM true THEN ' chain_not_ok' ELSE '' END, false);
    IF path IS NOT NULL THEN
        PERFORM pdp._audit_anchor_file_append(path, line);
    END IF;
    RETURN anchor;
END
$$;
COMMENT ON FUNCTION pdp.publish_audit_anchor(text) IS
    'seals, verifies, then publishes the audit head to the server log, pdp.audit_anchor and the anchor file if named (outside the data directory); returns the anchor id';

CREATE FUNCTION pdp.schedule_audit_anchor(schedule text DEFAULT '*/10 * * * *', file text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint;
    path text;
BEGIN
    PERFORM pdp._require_pg_cron();
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF file IS NOT NULL THEN
        IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
            RAISE EXCEPTION 'only a superuser may name an audit anchor file'
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Schedule without a file (the server log and pdp.audit_anchor), or have a superuser schedule the job with one.';
        END IF;
        path := pdp._audit_anchor_file_check(file);
    END IF;
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
      USING 'pdp_ext audit anchor', schedule,
            'SELECT pdp.publish_audit_anchor(' || coalesce(pg_catalog.quote_literal(path), 'NULL') || ')';
    PERFORM pdp._audit('schedule_audit_anchor', 'pdp.audit_anchor', NULL,
                       pg_catalog.jsonb_build_object('schedule', schedule, 'job', job, 'file', path));
    RETURN job;
END
$$;
COMMENT ON FUNCTION pdp.schedule_audit_anchor(text, text) IS
    'schedules pdp.publish_audit_anchor(file) with pg_cron (job "pdp_ext audit anchor"); returns the job id';

-- Read-access logging, opt-in per table (C, see src/audit_reads.c) ----------

CREATE TABLE pdp.audit_read_table (
    tbl        regclass    PRIMARY KEY,
    enabled_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    enabled_by name        NOT NULL
);
COMMENT ON TABLE pdp.audit_read_table IS 'tables whose every read is recorded in the audit trail (pdp.audit_reads)';
COMMENT ON COLUMN pdp.audit_read_table.tbl IS 'the table';
COMMENT ON COLUMN pdp.audit_read_table.enabled_at IS 'since when';
COMMENT ON COLUMN pdp.audit_read_table.enabled_by IS 'who switched it on';
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_read_table', '');

CREATE FUNCTION pdp._audit_reads_changed() RETURNS void
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_reads_changed';
COMMENT ON FUNCTION pdp._audit_reads_changed() IS
    'tells every backend, at commit, that pdp.audit_read_table changed';

CREATE FUNCTION pdp.audit_reads(tbl regclass, enabled boolean DEFAULT true) RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.audit_reads(regclass, boolean) IS
    'records every statement that reads the table (time, role, purpose, rows returned; never a value) in the audit trail, or stops (enabled false); returns whether it changed anything';

CREATE FUNCTION pdp._api_audit_reads(tbl regclass, enabled boolean) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    changed boolean;
BEGIN
    IF tbl IS NULL OR enabled IS NULL THEN
        RAISE EXCEPTION 'table and enabled must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relowner INTO rel FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid;
    IF NOT pg_catalog.pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', pdp._relname(tbl) USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF enabled AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _api_audit_reads.tbl)
               AND NOT EXISTS (SELECT 1 FROM pdp.protection p WHERE p.tbl OPERATOR(pg_catalog.=) _api_audit_reads.tbl) THEN
        RAISE EXCEPTION 'table % is neither registered nor protected', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register it with pdp.register_table (or protect it with pdp.protect_table) first.';
    END IF;
    IF enabled THEN
        INSERT INTO pdp.audit_read_table (tbl, enabled_by) VALUES (tbl, pg_catalog.pg_get_userbyid(pdp._caller()))
        ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM pdp.audit_read_table r WHERE r.tbl OPERATOR(pg_catalog.=) _api_audit_reads.tbl;
    END IF;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed THEN
        PERFORM pdp._audit_reads_changed();
        PERFORM pdp._audit('audit_reads', tbl::text, NULL, pg_catalog.jsonb_build_object('enabled', enabled));
    END IF;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION pdp._api_audit_reads(regclass, boolean) IS
    'pdp.audit_reads''s implementation, run as pdp_ext''s owner (callable by no role)';
