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

CREATE TABLE pdp.audit_log (
    id                bigserial   PRIMARY KEY,
    at                timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    role              name        NOT NULL DEFAULT SESSION_USER,
    session_role      name        NOT NULL DEFAULT SESSION_USER,
    action            text        NOT NULL,
    object            text,
    subject_pseudonym text,
    details           jsonb       NOT NULL DEFAULT '{}'
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
    hash     bytea  NOT NULL
);
COMMENT ON TABLE pdp.audit_seal IS 'the hash chain over audit entries, in sealing order';
COMMENT ON COLUMN pdp.audit_seal.seq IS 'position in the chain';
COMMENT ON COLUMN pdp.audit_seal.entry_id IS 'the sealed entry';
COMMENT ON COLUMN pdp.audit_seal.hash IS 'SHA-256 of the previous hash and the entry';
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
    anchored_at  timestamptz
);
COMMENT ON TABLE pdp.audit_chain IS 'the chain''s head and anchor (where verification starts after a trim)';
COMMENT ON COLUMN pdp.audit_chain.singleton IS 'there is one row';
COMMENT ON COLUMN pdp.audit_chain.head_seq IS 'the last sealed position';
COMMENT ON COLUMN pdp.audit_chain.head_hash IS 'its hash: publish it elsewhere to detect a rewrite of the whole chain';
COMMENT ON COLUMN pdp.audit_chain.anchor_seq IS 'the last position cut off by trim_audit_log (0: none)';
COMMENT ON COLUMN pdp.audit_chain.anchor_hash IS 'its hash, from which the rest verifies';
COMMENT ON COLUMN pdp.audit_chain.anchored_at IS 'when the last trim happened';
-- The row is made on first use, not here: pg_dump carries it, and a row made
-- by CREATE EXTENSION would collide with the restored one.
SELECT pg_catalog.pg_extension_config_dump('pdp.audit_chain', '');

CREATE FUNCTION pdp._audit_hash(prev bytea, seq bigint, entry_id bigint, at timestamptz, fields text[])
RETURNS bytea LANGUAGE C IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_audit_hash';
COMMENT ON FUNCTION pdp._audit_hash(bytea, bigint, bigint, timestamptz, text[]) IS
    'SHA-256 chain hash of one audit entry (canonical length-prefixed encoding)';

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

CREATE FUNCTION pdp.seal_audit_log(wait boolean DEFAULT true, max_entries integer DEFAULT 100000) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chain record;
    e pdp.audit_log;
    seq bigint;
    prev bytea;
    n bigint := 0;
BEGIN
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
    seq := chain.head_seq;
    prev := chain.head_hash;
    FOR e IN SELECT l.* FROM pdp.audit_unsealed u JOIN pdp.audit_log l ON l.id OPERATOR(pg_catalog.=) u.entry_id
              ORDER BY u.entry_id LIMIT max_entries LOOP
        seq := seq + 1;
        prev := pdp._audit_hash(prev, seq, e.id, e.at, pdp._audit_fields(e));
        INSERT INTO pdp.audit_seal VALUES (seq, e.id, prev);
        DELETE FROM pdp.audit_unsealed u WHERE u.entry_id OPERATOR(pg_catalog.=) e.id;
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        UPDATE pdp.audit_chain SET head_seq = seq, head_hash = prev;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp.seal_audit_log(boolean, integer) IS
    'chains committed audit entries that are not sealed yet; returns how many it sealed';

-- The writer every pdp_ext action calls (C, see src/audit.c): details must
-- hold no personal values; a subject is stored only as its pseudonym; the
-- actor is the caller's SET ROLE or session user, never chosen by the caller.
CREATE FUNCTION pdp._audit(action text, object text, subject text DEFAULT NULL, details jsonb DEFAULT '{}')
RETURNS void LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_audit_write';
COMMENT ON FUNCTION pdp._audit(text, text, text, jsonb) IS
    'writes an audit entry (the subject as its pseudonym, the caller as actor); the audit worker seals it in the background';

CREATE FUNCTION pdp.verify_audit_log(OUT ok boolean, OUT entries bigint, OUT first_bad_id bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chain record;
    s record;
    expected_seq bigint;
    prev bytea;
    h bytea;
    writable boolean;
BEGIN
    -- Seal what is waiting first.  A read-only transaction (a hot standby)
    -- cannot: it checks the sealed chain only, since there an entry without
    -- a seal may just be waiting for the primary to seal it.
    writable := pg_catalog.current_setting('transaction_read_only') OPERATOR(pg_catalog.=) 'off';
    IF writable THEN
        PERFORM pdp.seal_audit_log(wait => true, max_entries => 2147483647);
    END IF;
    SELECT * INTO chain FROM pdp.audit_chain;
    ok := true;
    entries := 0;
    first_bad_id := NULL;
    expected_seq := chain.anchor_seq;
    prev := chain.anchor_hash;
    FOR s IN SELECT a.seq, a.entry_id, a.hash, l AS entry, l.id AS found
               FROM pdp.audit_seal a LEFT JOIN pdp.audit_log l ON l.id OPERATOR(pg_catalog.=) a.entry_id
              ORDER BY a.seq LOOP
        expected_seq := expected_seq + 1;
        IF s.seq OPERATOR(pg_catalog.<>) expected_seq OR s.found IS NULL THEN
            -- A seal is missing (an entry and its seal deleted), or its entry is.
            ok := false;
            first_bad_id := coalesce(s.found, s.entry_id);
            RETURN;
        END IF;
        h := pdp._audit_hash(prev, s.seq, (s.entry).id, (s.entry).at, pdp._audit_fields(s.entry));
        IF h OPERATOR(pg_catalog.<>) s.hash THEN
            ok := false;
            first_bad_id := s.entry_id;
            RETURN;
        END IF;
        prev := s.hash;
        entries := entries + 1;
    END LOOP;
    IF expected_seq OPERATOR(pg_catalog.<>) chain.head_seq OR prev OPERATOR(pg_catalog.<>) chain.head_hash THEN
        -- The newest entries were cut off.
        ok := false;
        first_bad_id := (SELECT max(a.entry_id) FROM pdp.audit_seal a);
        RETURN;
    END IF;
    -- An entry inserted with triggers disabled would never be sealed.
    IF NOT writable THEN
        RETURN;
    END IF;
    SELECT min(l.id) INTO first_bad_id FROM pdp.audit_log l
     WHERE NOT EXISTS (SELECT 1 FROM pdp.audit_seal a WHERE a.entry_id OPERATOR(pg_catalog.=) l.id);
    IF first_bad_id IS NOT NULL THEN
        ok := false;
    END IF;
END
$$;
COMMENT ON FUNCTION pdp.verify_audit_log() IS
    'seals what is pending, then checks the whole chain: ok, entries verified, and the first bad entry''s id; read-only (a standby), checks the sealed chain only';

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
    SELECT a.seq, a.hash INTO cut FROM pdp.audit_seal a
     WHERE a.seq < coalesce((SELECT min(b.seq) FROM pdp.audit_seal b JOIN pdp.audit_log l ON l.id OPERATOR(pg_catalog.=) b.entry_id
                              WHERE l.at >= pg_catalog.now() - keep), 9223372036854775807)
     ORDER BY a.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    n := pdp._audit_trim_delete(cut.seq);
    UPDATE pdp.audit_chain SET anchor_seq = cut.seq, anchor_hash = cut.hash, anchored_at = pg_catalog.now();
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
