-- The keyed audit chain (issue 15, points 2, 4, 5, 6): a MAC per seal under
-- the key file's audit subkey, published anchors, the JSON log line, DDL on
-- registered or protected tables recorded, and read-access logging.  Seals
-- made by 0.1-0.3 have no MAC: they stay verifiable, by their hashes, as the
-- legacy segment (up to audit_chain.legacy_seq).

ALTER TABLE pdp.audit_seal ADD COLUMN key_version integer, ADD COLUMN mac bytea;
COMMENT ON COLUMN pdp.audit_seal.key_version IS 'the key version the MAC was made with (NULL: a legacy seal, made before 0.4)';
COMMENT ON COLUMN pdp.audit_seal.mac IS 'HMAC-SHA-256 of seq, hash and the previous MAC under the key file''s audit subkey (NULL: legacy)';
ALTER TABLE pdp.audit_chain ADD COLUMN head_mac bytea, ADD COLUMN anchor_mac bytea,
                            ADD COLUMN legacy_seq bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN pdp.audit_chain.head_mac IS 'the MAC of the last sealed position (NULL while it is a legacy seal)';
COMMENT ON COLUMN pdp.audit_chain.anchor_mac IS 'the MAC of the last position cut off by trim_audit_log (NULL: none, or a legacy seal)';
COMMENT ON COLUMN pdp.audit_chain.legacy_seq IS 'the last seal made before 0.4, without a MAC (0: none); later seals all carry one';
-- Everything sealed so far is the legacy segment.
UPDATE pdp.audit_chain SET legacy_seq = head_seq;

CREATE OR REPLACE FUNCTION pdp._audit_mac(prev_mac bytea, seq bigint, hash bytea, key_version integer)
RETURNS bytea LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_audit_mac';
COMMENT ON FUNCTION pdp._audit_mac(bytea, bigint, bytea, integer) IS
    'HMAC-SHA-256 of a seal under the key file''s audit subkey (pdp_ext''s own functions only)';
CREATE OR REPLACE FUNCTION pdp._audit_key_version() RETURNS integer
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_audit_key_version';
COMMENT ON FUNCTION pdp._audit_key_version() IS 'the version of the key new seals are made with; raises without a key file';
CREATE OR REPLACE FUNCTION pdp._audit_log_line(line text, json boolean) RETURNS boolean
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_log_line';
COMMENT ON FUNCTION pdp._audit_log_line(text, boolean) IS
    'writes one LOG line: an entry as JSON (only with pdp.audit_log_json on) or an anchor';
CREATE OR REPLACE FUNCTION pdp._audit_anchor_file_check(path text) RETURNS text
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_anchor_file_check';
COMMENT ON FUNCTION pdp._audit_anchor_file_check(text) IS
    'the resolved path of an anchor file; refuses one inside the data directory, the key file, or a file pdp_ext did not create';
CREATE OR REPLACE FUNCTION pdp._audit_anchor_file_append(path text, line text) RETURNS void
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_anchor_file_append';
COMMENT ON FUNCTION pdp._audit_anchor_file_append(text, text) IS 'appends an anchor line to the anchor file and flushes it';
CREATE OR REPLACE FUNCTION pdp._audit_anchor_file_read(path text) RETURNS text
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_anchor_file_read';
COMMENT ON FUNCTION pdp._audit_anchor_file_read(text) IS 'the anchor file''s content (NULL when it does not exist)';

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
CREATE TRIGGER audit_anchor_append_only BEFORE UPDATE OR DELETE ON pdp.audit_anchor
    FOR EACH ROW EXECUTE FUNCTION pdp._audit_append_only();
CREATE TRIGGER audit_anchor_no_truncate BEFORE TRUNCATE ON pdp.audit_anchor
    FOR EACH STATEMENT EXECUTE FUNCTION pdp._audit_append_only();

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
    'chains committed audit entries that are not sealed yet; returns how many it sealed';

-- verify_audit_log returns more columns now.
DROP FUNCTION pdp.verify_audit_log();
CREATE OR REPLACE FUNCTION pdp.verify_audit_log(OUT ok boolean, OUT entries bigint, OUT first_bad_id bigint,
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

CREATE OR REPLACE FUNCTION pdp.trim_audit_log(keep interval DEFAULT '5 years') RETURNS bigint
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

CREATE OR REPLACE FUNCTION pdp.audit_head(OUT entry_id bigint, OUT seq bigint, OUT hash bytea, OUT mac bytea,
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

CREATE OR REPLACE FUNCTION pdp.publish_audit_anchor(file text DEFAULT NULL) RETURNS bigint
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

CREATE OR REPLACE FUNCTION pdp.schedule_audit_anchor(schedule text DEFAULT '*/10 * * * *', file text DEFAULT NULL) RETURNS bigint
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

-- DDL on registered or protected tables is recorded (55_protection_guard.sql).
CREATE OR REPLACE FUNCTION pdp._ddl_by_pdp() RETURNS boolean
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_ddl_by_pdp';
COMMENT ON FUNCTION pdp._ddl_by_pdp() IS
    'for pdp''s event triggers: whether the DDL runs inside one of pdp''s own functions (which record their own actions)';
CREATE OR REPLACE FUNCTION pdp._guard_refused(tbl regclass, what text, command text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._audit_durable('ddl_refused', tbl::text, NULL,
                               pg_catalog.jsonb_build_object('command', command,
                                                             'refused', what));
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;
COMMENT ON FUNCTION pdp._guard_refused(regclass, text, text) IS
    'records a refused DDL on a protected table in the audit chain, durably (the refusal rolls the DDL back)';
CREATE OR REPLACE FUNCTION pdp._protection_facts(tbl regclass) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT pg_catalog.jsonb_build_object(
    'registered', EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) $1),
    'protected', EXISTS (SELECT 1 FROM pdp.protection p WHERE p.tbl OPERATOR(pg_catalog.=) $1),
    'row_security', c.relrowsecurity, 'force_row_security', c.relforcerowsecurity,
    'pdp_triggers_disabled', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger t
                               WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid AND t.tgname LIKE 'pdp%'
                                 AND t.tgenabled OPERATOR(pg_catalog.=) 'D'),
    'owner', pg_catalog.pg_get_userbyid(c.relowner))
  FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1
$$;
COMMENT ON FUNCTION pdp._protection_facts(regclass) IS
    'a table''s protection state (registered, protected, row-level security, pdp triggers disabled, owner) for the audit trail';
CREATE OR REPLACE FUNCTION pdp._guard_protection() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    child regclass;
    names text;
    nodes text;
    cmd record;
BEGIN
    IF pdp._protection_ddl(NULL) THEN
        RETURN;     -- pdp's own protection functions at work
    END IF;
    -- pdp's row policies are either restrictive next to pdp_base_* (true),
    -- or, on Citus tables, permissive and alone.  Both at once is what Citus
    -- makes of a table protected before it was distributed, on the workers'
    -- shards (it drops AS RESTRICTIVE): every row shown.  Refused, which
    -- refuses the create_distributed_table on the coordinator.
    IF tg_tag = 'CREATE POLICY' THEN
        FOR cmd IN SELECT DISTINCT p.polrelid FROM pg_catalog.pg_event_trigger_ddl_commands() d
                     JOIN pg_catalog.pg_policy p ON p.oid OPERATOR(pg_catalog.=) d.objid
                    WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::regclass LOOP
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy q WHERE q.polrelid OPERATOR(pg_catalog.=) cmd.polrelid
                          AND q.polname IN ('pdp_select', 'pdp_update', 'pdp_delete') AND q.polpermissive)
               AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy q WHERE q.polrelid OPERATOR(pg_catalog.=) cmd.polrelid
                              AND q.polname LIKE 'pdp\_base\_%') THEN
                RAISE EXCEPTION 'cannot make pdp_ext''s restrictive policies permissive on "%"', pdp._relname(cmd.polrelid::regclass)
                    USING ERRCODE = 'feature_not_supported',
                          DETAIL = 'Citus copies a protected table''s policies to its shards without AS RESTRICTIVE; next to pdp''s base policies they would show every row.',
                          HINT = 'On the Citus coordinator, run pdp.unprotect_table, distribute the table, then pdp.protect_table.';
            END IF;
        END LOOP;
    END IF;
    FOR r IN SELECT p.tbl, p.forced, p.policies, p.policy_nodes FROM pdp.protection p LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) r.tbl::oid);
        IF NOT (SELECT c.relrowsecurity AND (c.relforcerowsecurity OR NOT r.forced)
                  FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) r.tbl::oid) THEN
            PERFORM pdp._guard_refused(r.tbl, 'row_security_off', tg_tag);
            RAISE EXCEPTION 'cannot switch off row-level security of protected table "%"', pdp._relname(r.tbl)
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'pdp.unprotect_table removes pdp_ext''s protection, with an audit entry.';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                        WHERE t.tgrelid OPERATOR(pg_catalog.=) r.tbl::oid
                          AND t.tgname OPERATOR(pg_catalog.=) 'pdp_refuse_restricted'
                          AND t.tgenabled IN ('O', 'A')) THEN
            PERFORM pdp._guard_refused(r.tbl, 'pdp_trigger_dropped_or_disabled', tg_tag);
            RAISE EXCEPTION 'cannot drop or disable pdp_ext''s trigger on protected table "%"', pdp._relname(r.tbl)
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'pdp.unprotect_table removes pdp_ext''s protection, with an audit entry.';
        END IF;
        -- On a Citus table pdp's policies are permissive (Citus drops AS
        -- RESTRICTIVE on the shards, pdp._install_protection): any other
        -- policy would widen what they show.
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy pol
                    WHERE pol.polrelid OPERATOR(pg_catalog.=) r.tbl::oid AND pol.polname NOT LIKE 'pdp\_%')
           AND pdp._citus_table_kind(r.tbl) IS NOT NULL THEN
            PERFORM pdp._guard_refused(r.tbl, 'policy_on_citus_table', tg_tag);
            RAISE EXCEPTION 'cannot add a row-level security policy to protected Citus table "%"', pdp._relname(r.tbl)
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'Citus creates every policy on the shards as PERMISSIVE, so another policy would widen what pdp''s policies show.',
                      HINT = 'See "Protected tables on Citus" in doc/scaling.md.';
        END IF;
        names := pdp._protection_state(r.tbl);
        nodes := pdp._protection_nodes(r.tbl);
        IF names OPERATOR(pg_catalog.<>) r.policies AND nodes OPERATOR(pg_catalog.<>) r.policy_nodes THEN
            PERFORM pdp._guard_refused(r.tbl, 'pdp_policies_changed', tg_tag);
            RAISE EXCEPTION 'cannot drop or change pdp_ext''s policies on protected table "%"', pdp._relname(r.tbl)
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'pdp.unprotect_table removes pdp_ext''s protection, with an audit entry; pdp.protect_table re-creates it.';
        END IF;
        IF names OPERATOR(pg_catalog.<>) r.policies OR nodes OPERATOR(pg_catalog.<>) r.policy_nodes THEN
            -- A rename, or a restore: the same policies under other names or OIDs.
            UPDATE pdp.protection p SET policies = names, policy_nodes = nodes WHERE p.tbl OPERATOR(pg_catalog.=) r.tbl;
        END IF;
        -- Partitions and inheritance children that appeared: protect them too.
        FOR child IN SELECT i.inhrelid::regclass FROM pg_catalog.pg_inherits i
                      WHERE i.inhparent OPERATOR(pg_catalog.=) r.tbl::oid
                        AND NOT EXISTS (SELECT 1 FROM pdp.protection q WHERE q.tbl::oid OPERATOR(pg_catalog.=) i.inhrelid) LOOP
            PERFORM pdp._install_protection(child, r.forced);
            PERFORM pdp._audit('protect_table', child::text, NULL,
                               pg_catalog.jsonb_build_object('force', r.forced, 'inherited_from', r.tbl::text));
        END LOOP;
    END LOOP;
    -- The DDL is allowed: record it when it touched a registered or protected
    -- table, or a policy, trigger or rule of one, with who ran it (unless
    -- pdp's own functions ran it: they record their own actions).
    IF pdp._ddl_by_pdp() THEN
        RETURN;
    END IF;
    FOR cmd IN
        SELECT DISTINCT ON (t.rel) t.rel, d.command_tag, d.object_identity
          FROM pg_catalog.pg_event_trigger_ddl_commands() d,
               LATERAL (SELECT CASE d.classid
                                 WHEN 'pg_catalog.pg_class'::regclass THEN d.objid
                                 WHEN 'pg_catalog.pg_policy'::regclass THEN (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid OPERATOR(pg_catalog.=) d.objid)
                                 WHEN 'pg_catalog.pg_trigger'::regclass THEN (SELECT g.tgrelid FROM pg_catalog.pg_trigger g WHERE g.oid OPERATOR(pg_catalog.=) d.objid)
                                 WHEN 'pg_catalog.pg_rewrite'::regclass THEN (SELECT w.ev_class FROM pg_catalog.pg_rewrite w WHERE w.oid OPERATOR(pg_catalog.=) d.objid)
                               END AS rel) t
         WHERE t.rel IS NOT NULL
           AND (EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl::oid OPERATOR(pg_catalog.=) t.rel)
                OR EXISTS (SELECT 1 FROM pdp.protection p WHERE p.tbl::oid OPERATOR(pg_catalog.=) t.rel))
    LOOP
        PERFORM pdp._audit('ddl', cmd.rel::regclass::text, NULL,
                           pdp._protection_facts(cmd.rel::regclass)
                           OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('command', cmd.command_tag, 'object', cmd.object_identity));
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp._guard_protection() IS
    'event trigger: refuses DDL that weakens a protected table''s protection; protects new partitions and children';
CREATE OR REPLACE FUNCTION pdp._audit_protection_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record;
BEGIN
    IF pdp._protection_ddl(NULL) OR pdp._ddl_by_pdp() THEN
        RETURN;     -- pdp's own functions at work: they record their own actions
    END IF;
    FOR d IN
        SELECT o.object_type, o.object_identity, t.rel
          FROM pg_catalog.pg_event_trigger_dropped_objects() o,
               LATERAL (SELECT CASE WHEN o.object_type IN ('table', 'partitioned table') THEN o.objid
                                    WHEN o.object_type IN ('policy', 'trigger', 'rule') AND pg_catalog.array_length(o.address_names, 1) OPERATOR(pg_catalog.=) 3
                                    THEN pg_catalog.to_regclass(pg_catalog.quote_ident(o.address_names[1]) OPERATOR(pg_catalog.||) '.'
                                                                OPERATOR(pg_catalog.||) pg_catalog.quote_ident(o.address_names[2]))::oid
                               END AS rel) t
         WHERE o.original AND t.rel IS NOT NULL
           AND (EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl::oid OPERATOR(pg_catalog.=) t.rel)
                OR EXISTS (SELECT 1 FROM pdp.protection p WHERE p.tbl::oid OPERATOR(pg_catalog.=) t.rel))
    LOOP
        PERFORM pdp._audit('ddl', CASE WHEN d.object_type LIKE '%table' THEN d.object_identity ELSE d.rel::regclass::text END, NULL,
                           pg_catalog.jsonb_build_object('command', tg_tag, 'object', d.object_identity, 'dropped', d.object_type));
    END LOOP;
    -- A dropped table's reads are no longer audited.
    DELETE FROM pdp.audit_read_table r USING pg_catalog.pg_event_trigger_dropped_objects() o
     WHERE o.object_type IN ('table', 'partitioned table') AND r.tbl::oid OPERATOR(pg_catalog.=) o.objid;
END
$$;
COMMENT ON FUNCTION pdp._audit_protection_drop() IS
    'event trigger: records drops of registered or protected tables, and of their policies, triggers and rules, in the audit trail';
CREATE EVENT TRIGGER pdp_audit_drop ON sql_drop EXECUTE FUNCTION pdp._audit_protection_drop();
COMMENT ON EVENT TRIGGER pdp_audit_drop IS 'records drops that touch a registered or protected table in the audit trail';

-- Read-access logging (src/audit_reads.c).
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
CREATE OR REPLACE FUNCTION pdp._audit_reads_changed() RETURNS void
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pdp_audit_reads_changed';
COMMENT ON FUNCTION pdp._audit_reads_changed() IS
    'tells every backend, at commit, that pdp.audit_read_table changed';
CREATE OR REPLACE FUNCTION pdp.audit_reads(tbl regclass, enabled boolean DEFAULT true) RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;
COMMENT ON FUNCTION pdp.audit_reads(regclass, boolean) IS
    'records every statement that reads the table (time, role, purpose, rows returned; never a value) in the audit trail, or stops (enabled false); returns whether it changed anything';
CREATE OR REPLACE FUNCTION pdp._api_audit_reads(tbl regclass, enabled boolean) RETURNS boolean
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

-- Privileges (as 99_privileges.sql).
REVOKE ALL ON pdp.audit_anchor, pdp.audit_read_table FROM PUBLIC;
REVOKE ALL ON SEQUENCE pdp.audit_anchor_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION pdp._audit_mac(bytea, bigint, bytea, integer), pdp._audit_key_version(),
    pdp._audit_log_line(text, boolean), pdp._audit_anchor_file_check(text),
    pdp._audit_anchor_file_append(text, text), pdp._audit_anchor_file_read(text),
    pdp.verify_audit_log(), pdp.audit_head(), pdp.publish_audit_anchor(text), pdp.schedule_audit_anchor(text, text),
    pdp._ddl_by_pdp(), pdp._guard_refused(regclass, text, text), pdp._protection_facts(regclass),
    pdp._audit_protection_drop(), pdp._audit_reads_changed(), pdp.audit_reads(regclass, boolean),
    pdp._api_audit_reads(regclass, boolean)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.verify_audit_log() TO pdp_auditor, pdp_admin;
GRANT SELECT ON pdp.audit_anchor TO pdp_auditor, pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.audit_head() TO pdp_auditor, pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.publish_audit_anchor(text), pdp.schedule_audit_anchor(text, text) TO pdp_admin;
GRANT SELECT ON pdp.audit_read_table TO pdp_auditor, pdp_admin;
GRANT EXECUTE ON FUNCTION pdp.audit_reads(regclass, boolean) TO pdp_admin;
