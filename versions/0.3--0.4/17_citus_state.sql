-- Issue 18, step 2: state where it is read (src/sql/15_citus.sql,
-- src/citus_state.c).  pdp.citus_sync_state(), on a Citus coordinator,
-- mirrors purposes, grants, consents and restrictions into reference tables
-- that the row check reads on the workers, kept in step by triggers it
-- installs.  The install script creates only the functions; the mirror
-- tables and triggers exist only where pdp.citus_sync_state has run.

CREATE OR REPLACE FUNCTION pdp._citus_mirror_name(source text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN source IN ('purpose', 'purpose_grant', 'consent_state', 'restriction')
                  THEN 'citus_' OPERATOR(pg_catalog.||) source END $$;

CREATE OR REPLACE FUNCTION pdp._citus_mirror_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k1 text[];
    k2 text[];
    v timestamptz[];
    b1 boolean[];
    b2 boolean[];
    b3 boolean[];
    p text;
    names text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE pg_catalog.format('DELETE FROM pdp.%I', pdp._citus_mirror_name(TG_TABLE_NAME));
        RETURN NULL;
    END IF;
    CASE TG_TABLE_NAME
    WHEN 'consent_state' THEN
        -- The keys gone: every old one (DELETE), or those no new row has (UPDATE).
        IF TG_OP = 'DELETE' THEN
            SELECT pg_catalog.array_agg(o.subject), pg_catalog.array_agg(o.purpose) INTO k1, k2 FROM old_rows o;
        ELSIF TG_OP = 'UPDATE' THEN
            SELECT pg_catalog.array_agg(o.subject), pg_catalog.array_agg(o.purpose) INTO k1, k2 FROM old_rows o
             WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.subject = o.subject AND n.purpose = o.purpose);
        END IF;
        IF k1 IS NOT NULL THEN
            DELETE FROM pdp.citus_consent_state m USING ROWS FROM (pg_catalog.unnest(k1), pg_catalog.unnest(k2)) AS d(subject, purpose)
             WHERE m.subject = d.subject AND m.purpose = d.purpose;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            SELECT pg_catalog.array_agg(n.subject), pg_catalog.array_agg(n.purpose), pg_catalog.array_agg(n.valid_until)
              INTO k1, k2, v FROM new_rows n;
            IF k1 IS NOT NULL THEN
                INSERT INTO pdp.citus_consent_state AS m (subject, purpose, valid_until)
                SELECT u.subject, u.purpose, u.valid_until FROM ROWS FROM (pg_catalog.unnest(k1), pg_catalog.unnest(k2), pg_catalog.unnest(v)) AS u(subject, purpose, valid_until)
                ON CONFLICT (subject, purpose) DO UPDATE SET valid_until = EXCLUDED.valid_until;
            END IF;
        END IF;
    WHEN 'restriction' THEN
        IF TG_OP = 'DELETE' THEN
            SELECT pg_catalog.array_agg(o.subject) INTO k1 FROM old_rows o;
        ELSIF TG_OP = 'UPDATE' THEN
            SELECT pg_catalog.array_agg(o.subject) INTO k1 FROM old_rows o
             WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.subject = o.subject);
        END IF;
        IF k1 IS NOT NULL THEN
            DELETE FROM pdp.citus_restriction m WHERE m.subject = ANY (k1);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            SELECT pg_catalog.array_agg(n.subject) INTO k1 FROM new_rows n;
            IF k1 IS NOT NULL THEN
                INSERT INTO pdp.citus_restriction (subject) SELECT u FROM pg_catalog.unnest(k1) u
                ON CONFLICT (subject) DO NOTHING;
            END IF;
        END IF;
    WHEN 'purpose' THEN
        IF TG_OP = 'DELETE' THEN
            SELECT pg_catalog.array_agg(o.purpose) INTO k1 FROM old_rows o;
        ELSIF TG_OP = 'UPDATE' THEN
            SELECT pg_catalog.array_agg(o.purpose) INTO k1 FROM old_rows o
             WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.purpose = o.purpose);
        END IF;
        IF k1 IS NOT NULL THEN
            DELETE FROM pdp.citus_purpose m WHERE m.purpose = ANY (k1);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            SELECT pg_catalog.array_agg(n.purpose), pg_catalog.array_agg(n.requires_consent),
                   pg_catalog.array_agg(n.restriction_exempt), pg_catalog.array_agg(n.maintenance)
              INTO k1, b1, b2, b3 FROM new_rows n;
            IF k1 IS NOT NULL THEN
                INSERT INTO pdp.citus_purpose AS m (purpose, requires_consent, restriction_exempt, maintenance)
                SELECT u.purpose, u.requires_consent, u.restriction_exempt, u.maintenance
                  FROM ROWS FROM (pg_catalog.unnest(k1), pg_catalog.unnest(b1), pg_catalog.unnest(b2), pg_catalog.unnest(b3)) AS u(purpose, requires_consent, restriction_exempt, maintenance)
                ON CONFLICT (purpose) DO UPDATE
                   SET requires_consent = EXCLUDED.requires_consent, restriction_exempt = EXCLUDED.restriction_exempt,
                       maintenance = EXCLUDED.maintenance;
            END IF;
        END IF;
    WHEN 'purpose_grant' THEN
        -- The grants of the purposes the statement touched, re-mirrored from
        -- pdp.purpose_grant: the roles' names are read here first (Citus
        -- cannot join the catalogs into a write to a reference table), and a
        -- role since dropped loses its mirrored grant.
        IF TG_OP = 'INSERT' THEN
            k1 := ARRAY(SELECT DISTINCT n.purpose FROM new_rows n);
        ELSIF TG_OP = 'DELETE' THEN
            k1 := ARRAY(SELECT DISTINCT o.purpose FROM old_rows o);
        ELSE
            k1 := ARRAY(SELECT o.purpose FROM old_rows o UNION SELECT n.purpose FROM new_rows n);
        END IF;
        FOREACH p IN ARRAY k1 LOOP
            names := ARRAY(SELECT DISTINCT a.rolname::text FROM pdp.purpose_grant g
                             JOIN pg_catalog.pg_roles a ON a.oid = g.role::oid WHERE g.purpose = p);
            DELETE FROM pdp.citus_purpose_grant m WHERE m.purpose = p AND m.role_name <> ALL (names);
            INSERT INTO pdp.citus_purpose_grant (role_name, purpose)
            SELECT n, p FROM pg_catalog.unnest(names) n
            ON CONFLICT (role_name, purpose) DO NOTHING;
        END LOOP;
    END CASE;
    RETURN NULL;
END
$$;

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

COMMENT ON FUNCTION pdp._citus_mirror_name(text) IS
    'the name of the Citus reference table mirroring one of pdp''s state tables (purpose, purpose_grant, consent_state, restriction)';
COMMENT ON FUNCTION pdp._citus_mirror_change() IS
    'statement trigger on pdp''s state tables, installed by pdp.citus_sync_state: writes each statement''s changes through to its Citus reference table';
COMMENT ON FUNCTION pdp.citus_sync_state() IS
    'on a Citus coordinator: mirrors purposes, grants, consents and restrictions into reference tables read by the row check on every worker, kept in step by triggers; returns the rows mirrored per table';
-- Privileges (as 99_privileges.sql).
REVOKE ALL ON FUNCTION pdp._citus_mirror_name(text), pdp._citus_mirror_change(), pdp.citus_sync_state() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.citus_sync_state() TO pdp_admin;
