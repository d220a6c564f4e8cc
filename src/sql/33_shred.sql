-- Crypto-shredding (issue 17, point 5): the column rule "shred" encrypts
-- each value under a key of its row's own subject; erasure destroys the key,
-- so copies in base backups, WAL archives and dumps taken before the erasure
-- no longer decrypt.  Keys live outside the database, next to the key file
-- (src/shred.c, doc/keys.md).

INSERT INTO pdp.rule_kind VALUES
    ('shred', 'text', false, NULL, 'NULL',
     'AES-256-GCM under the row''s subject''s own key, destroyed by erasure (crypto-shredding); read through pdp.unshred or a masked view');

-- This database's shredding domain, bound into every subject's key tag:
-- databases that share a key file (and so a subject key store) and name
-- different people by the same identifier get different keys.  Made on the
-- first shredded write; base backups, standbys and pg_dump carry it (a
-- restore into a new database keeps its keys readable); a logical
-- subscriber gets it by subscribing to the table (doc/keys.md).
CREATE TABLE pdp.shred_domain (
    one      boolean     PRIMARY KEY DEFAULT true CHECK (one),
    domain   text        NOT NULL CHECK (domain ~ '^[0-9a-f]{32}$'),
    made_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE pdp.shred_domain IS
    'this database''s crypto-shredding domain (one row, made on the first shredded write; random, not secret); keep it with the data';
COMMENT ON COLUMN pdp.shred_domain.one IS 'always true: the table has at most one row';
COMMENT ON COLUMN pdp.shred_domain.domain IS '128 random bits in hex, bound into every subject key''s tag';
COMMENT ON COLUMN pdp.shred_domain.made_at IS 'when the first value was shredded here';
SELECT pg_catalog.pg_extension_config_dump('pdp.shred_domain', '');

-- The column naming the subject of a table's rows, whose key shreds them:
-- the one subject column registered on the table (or on a partitioned table
-- it is a partition of).  Raises when there is none or more than one.
CREATE FUNCTION pdp._shred_subject_column(tbl regclass) RETURNS name
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols name[];
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT s.col) INTO cols
      FROM pdp.subject_column s
     WHERE s.tbl OPERATOR(pg_catalog.=) _shred_subject_column.tbl
        OR s.tbl::oid IN (SELECT a.relid::oid FROM pg_catalog.pg_partition_ancestors(_shred_subject_column.tbl) a);
    IF coalesce(pg_catalog.cardinality(cols), 0) OPERATOR(pg_catalog.<>) 1 THEN
        RAISE EXCEPTION 'rule "shred" needs exactly one registered subject column on table "%"', pdp._relname(tbl)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('The table has %s registered subject columns.', coalesce(pg_catalog.cardinality(cols), 0)),
                  HINT = 'Each shredded value is encrypted under the key of its row''s subject: register the one column naming it with pdp.register_table first.';
    END IF;
    RETURN cols[1];
END
$$;
COMMENT ON FUNCTION pdp._shred_subject_column(regclass) IS
    'the one registered subject column whose subject''s key shreds the table''s values; raises when there is none or more than one';

CREATE FUNCTION pdp.unshred(tbl regclass, col name, value text, subject text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_unshred';
COMMENT ON FUNCTION pdp.unshred(regclass, name, text, text) IS
    'the clear value of a shredded value of the column in the subject''s row, for a role that may read the column or a masked view of it; NULL once the subject''s key was destroyed by erasure, or for a value not shredded for that subject';

-- What a static application of the rule (pdp.apply_rules) would do: shred
-- needs each row's subject, which only the on-write trigger sees.
CREATE FUNCTION pdp._shred_static(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'rule "shred" applies only on write'
        USING ERRCODE = 'feature_not_supported',
              DETAIL = 'Each value is encrypted under its row''s subject''s key, which only the on-write trigger sees.',
              HINT = 'Turn on pdp.pseudonymise_on_write for the table, then UPDATE it SET col = col: the trigger shreds every value not shredded yet.';
END
$$;
COMMENT ON FUNCTION pdp._shred_static(text) IS
    'the rule shred''s static form: refuses (pdp.apply_rules cannot shred; the on-write trigger does)';

-- Erasure's hook (pdp.erase_subject): the subject's keys are removed from
-- the store when the erasing transaction commits.
CREATE FUNCTION pdp._shred_erase_keys(subject text) RETURNS jsonb
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_shred_erase_keys';
COMMENT ON FUNCTION pdp._shred_erase_keys(text) IS
    'schedules the destruction of the subject''s shredding keys at commit; returns the receipt''s subject_keys entry (a count, never key material), {} when the subject has none';

CREATE FUNCTION pdp.subject_key_store_status(OUT path text, OUT subject_keys bigint, OUT bytes bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'pdp_subject_key_store_status';
COMMENT ON FUNCTION pdp.subject_key_store_status() IS
    'where the subject key store is (next to pdp.key_file), how many subject keys it holds and its size; never key material';
