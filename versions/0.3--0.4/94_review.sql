-- The day's review (branch review): the rectification trigger on a Citus
-- shard found the shard's schema with to_regnamespace, which parses the
-- name parse_ident had already unquoted, so a shard in a schema whose name
-- needs quoting (capitals, a space) refused every change of a classified
-- column (sql/review_attacks.sql, section 8).

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
