-- Set-based sealing (issue 15, point 3): pdp.seal_audit_log hands the
-- queued entries to pdp._audit_seal_chain (C, src/audit_seal.c), which
-- computes the hash and MAC chain over the batch and writes it with one
-- INSERT ... SELECT FROM unnest(...) per chunk and one DELETE of the queue,
-- instead of one INSERT per entry in a PL/pgSQL loop.

CREATE FUNCTION pdp._audit_seal_chain(max_entries bigint) RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_audit_seal_chain';
COMMENT ON FUNCTION pdp._audit_seal_chain(bigint) IS
    'chains up to max_entries queued audit entries (NULL: all) from the locked head; for pdp.seal_audit_log only';
REVOKE ALL ON FUNCTION pdp._audit_seal_chain(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION pdp.seal_audit_log(wait boolean DEFAULT true, max_entries integer DEFAULT 100000) RETURNS bigint
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
