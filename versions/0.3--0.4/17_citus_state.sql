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
    p text;
    names text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE pg_catalog.format('DELETE FROM pdp.%I', pdp._citus_mirror_name(TG_TABLE_NAME));
        RETURN NULL;
    END IF;
    CASE TG_TABLE_NAME
    WHEN 'purpose' THEN
        IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.purpose IS DISTINCT FROM NEW.purpose) THEN
            DELETE FROM pdp.citus_purpose m WHERE m.purpose = OLD.purpose;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO pdp.citus_purpose AS m (purpose, requires_consent, restriction_exempt, maintenance)
            VALUES (NEW.purpose, NEW.requires_consent, NEW.restriction_exempt, NEW.maintenance)
            ON CONFLICT (purpose) DO UPDATE
               SET requires_consent = EXCLUDED.requires_consent, restriction_exempt = EXCLUDED.restriction_exempt,
                   maintenance = EXCLUDED.maintenance;
        END IF;
    WHEN 'purpose_grant' THEN
        -- The grants of the purposes the change touches, re-mirrored from
        -- pdp.purpose_grant: the roles' names are read here first (Citus
        -- cannot join the catalogs into a write to a reference table), and a
        -- role since dropped loses its mirrored grant.
        FOREACH p IN ARRAY ARRAY[CASE WHEN TG_OP <> 'INSERT' THEN OLD.purpose END,
                                 CASE WHEN TG_OP <> 'DELETE' THEN NEW.purpose END] LOOP
            CONTINUE WHEN p IS NULL;
            names := ARRAY(SELECT DISTINCT a.rolname::text FROM pdp.purpose_grant g
                             JOIN pg_catalog.pg_authid a ON a.oid = g.role::oid WHERE g.purpose = p);
            DELETE FROM pdp.citus_purpose_grant m WHERE m.purpose = p AND m.role_name <> ALL (names);
            INSERT INTO pdp.citus_purpose_grant (role_name, purpose)
            SELECT n, p FROM pg_catalog.unnest(names) n
            ON CONFLICT (role_name, purpose) DO NOTHING;
        END LOOP;
    WHEN 'consent_state' THEN
        IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (OLD.subject, OLD.purpose) IS DISTINCT FROM (NEW.subject, NEW.purpose)) THEN
            DELETE FROM pdp.citus_consent_state m WHERE m.subject = OLD.subject AND m.purpose = OLD.purpose;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO pdp.citus_consent_state AS m (subject, purpose, valid_until)
            VALUES (NEW.subject, NEW.purpose, NEW.valid_until)
            ON CONFLICT (subject, purpose) DO UPDATE SET valid_until = EXCLUDED.valid_until;
        END IF;
    WHEN 'restriction' THEN
        IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.subject IS DISTINCT FROM NEW.subject) THEN
            DELETE FROM pdp.citus_restriction m WHERE m.subject = OLD.subject;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO pdp.citus_restriction (subject) VALUES (NEW.subject) ON CONFLICT (subject) DO NOTHING;
        END IF;
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
                '  FROM pdp.purpose_grant g JOIN pg_catalog.pg_authid a ON a.oid OPERATOR(pg_catalog.=) g.role::oid'
            WHEN 'consent_state' THEN
                'INSERT INTO pdp.citus_consent_state SELECT c.subject, c.purpose, c.valid_until FROM pdp.consent_state c'
            ELSE
                'INSERT INTO pdp.citus_restriction SELECT r.subject FROM pdp.restriction r'
            END;
        GET DIAGNOSTICS n = ROW_COUNT;
        counts := counts OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(src, n);
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                        WHERE t.tgrelid OPERATOR(pg_catalog.=) ('pdp.' OPERATOR(pg_catalog.||) src)::regclass::oid
                          AND t.tgname OPERATOR(pg_catalog.=) 'citus_mirror') THEN
            EXECUTE pg_catalog.format('CREATE TRIGGER citus_mirror AFTER INSERT OR UPDATE OR DELETE ON pdp.%I '
                                      'FOR EACH ROW EXECUTE FUNCTION pdp._citus_mirror_change()', src);
            EXECUTE pg_catalog.format('CREATE TRIGGER citus_mirror_truncate AFTER TRUNCATE ON pdp.%I '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION pdp._citus_mirror_change()', src);
        END IF;
    END LOOP;
    PERFORM pdp._audit('citus_sync_state', NULL, NULL, counts);
    RETURN counts;
END
$$;

COMMENT ON FUNCTION pdp._citus_mirror_name(text) IS
    'the name of the Citus reference table mirroring one of pdp''s state tables (purpose, purpose_grant, consent_state, restriction)';
COMMENT ON FUNCTION pdp._citus_mirror_change() IS
    'trigger on pdp''s state tables, installed by pdp.citus_sync_state: writes each change through to its Citus reference table';
COMMENT ON FUNCTION pdp.citus_sync_state() IS
    'on a Citus coordinator: mirrors purposes, grants, consents and restrictions into reference tables read by the row check on every worker, kept in step by triggers; returns the rows mirrored per table';
-- Privileges (as 99_privileges.sql).
REVOKE ALL ON FUNCTION pdp._citus_mirror_name(text), pdp._citus_mirror_change(), pdp.citus_sync_state() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.citus_sync_state() TO pdp_admin;
