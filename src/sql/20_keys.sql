-- Keys: the key file is read by the C module; SQL only ever sees fingerprints.

CREATE FUNCTION pdp._key_status_local(OUT version integer, OUT fingerprint text, OUT active boolean)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'pdp_key_status';
COMMENT ON FUNCTION pdp._key_status_local() IS
    'this server''s key versions in pdp.key_file with public fingerprints; active marks the version used for new values. Never returns key bytes';

-- On a Citus coordinator with workers, each worker's fingerprints are read
-- too (pdp._citus_on_workers runs pdp.key_status() there, which on a worker
-- answers for that worker alone): a row per node and key version, node
-- 'coordinator' or the worker's host:port, and mismatch true where a row
-- has no identical row (same version, fingerprint and active flag) on the
-- coordinator, or, for a coordinator row, on some worker.  A worker whose
-- keys cannot be read gives one row with NULL version and mismatch.  Either
-- raises a WARNING.  Without Citus workers, node and mismatch are NULL.
CREATE FUNCTION pdp.key_status(OUT version integer, OUT fingerprint text, OUT active boolean,
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
