-- Credentials and secrets (password hashes, secrets, tokens): columns that
-- authenticate rather than describe a learner.  They are never exported
-- (pdp.export_subject says the column exists and that its value is
-- withheld), never shown in masked views (NULL), never sampled by
-- discovery nor listed in the report.

CREATE TABLE pdp.credential_column (
    tbl          regclass    NOT NULL,
    col          name        NOT NULL,
    attnum       smallint    NOT NULL,
    declared_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    declared_by  name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (tbl, attnum)
);
COMMENT ON TABLE pdp.credential_column IS 'declared credential columns; read pdp.credential_columns instead';
COMMENT ON COLUMN pdp.credential_column.tbl IS 'the table';
COMMENT ON COLUMN pdp.credential_column.col IS 'the column''s name, kept in step with renames';
COMMENT ON COLUMN pdp.credential_column.attnum IS 'the column''s attribute number, resolved from col on every write';
COMMENT ON COLUMN pdp.credential_column.declared_at IS 'when it was declared';
COMMENT ON COLUMN pdp.credential_column.declared_by IS 'who declared it';
SELECT pg_catalog.pg_extension_config_dump('pdp.credential_column', '');

-- Validates every write to pdp.credential_column and resolves attnum from
-- col (so a restored dump finds its columns again).
CREATE FUNCTION pdp._credential_column_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    att smallint;
BEGIN
    SELECT c.relkind, c.relowner, c.relnamespace, c.relname INTO rel
      FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) NEW.tbl::oid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', NEW.tbl::oid USING ERRCODE = 'undefined_table';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', rel.relname USING ERRCODE = 'wrong_object_type';
    END IF;
    IF rel.relnamespace IN ('pdp'::regnamespace, 'pg_catalog'::regnamespace, 'information_schema'::regnamespace) THEN
        RAISE EXCEPTION 'cannot declare a credential on table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT a.attnum INTO att FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) NEW.tbl::oid AND a.attname OPERATOR(pg_catalog.=) NEW.col
       AND NOT a.attisdropped AND a.attnum > 0;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', NEW.col, rel.relname USING ERRCODE = 'undefined_column';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.subject_column s
                WHERE s.tbl OPERATOR(pg_catalog.=) NEW.tbl AND s.attnum OPERATOR(pg_catalog.=) att) THEN
        RAISE EXCEPTION 'column "%" of table "%" is a registered subject column', NEW.col, rel.relname
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A subject column identifies a learner; a credential column authenticates one.';
    END IF;
    NEW.attnum := att;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._credential_column_check() IS 'trigger: validates and resolves every write to pdp.credential_column';
CREATE TRIGGER credential_column_check BEFORE INSERT OR UPDATE ON pdp.credential_column
    FOR EACH ROW EXECUTE FUNCTION pdp._credential_column_check();

-- Re-create the table's masked views (those pdp.create_masked_view made,
-- known by their comment) so that they follow the table's credentials.
CREATE FUNCTION pdp._refresh_masked_views(tbl regclass) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v name;
    n integer := 0;
    prefix text := pg_catalog.format('pdp_ext masked view of %s:', tbl);
BEGIN
    FOR v IN SELECT c.relname FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_description d ON d.objoid OPERATOR(pg_catalog.=) c.oid
                AND d.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass AND d.objsubid OPERATOR(pg_catalog.=) 0
              WHERE c.relkind OPERATOR(pg_catalog.=) 'v'
                AND c.relnamespace OPERATOR(pg_catalog.=) (SELECT t.relnamespace FROM pg_catalog.pg_class t
                                                           WHERE t.oid OPERATOR(pg_catalog.=) tbl::oid)
                AND pg_catalog.left(d.description, pg_catalog.length(prefix)) OPERATOR(pg_catalog.=) prefix LOOP
        BEGIN
            PERFORM pdp.create_masked_view(tbl, v);
        EXCEPTION WHEN invalid_table_definition OR datatype_mismatch OR feature_not_supported THEN
            -- CREATE OR REPLACE VIEW cannot rename or retype a column: the
            -- view is older than the table's last rename or type change.
            RAISE EXCEPTION 'could not re-create masked view "%" of table "%"', v, pdp._relname(tbl)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'The table''s columns were renamed or retyped since the view was made; nothing was changed.',
                      HINT = 'Drop the view, call pdp.create_masked_view again and grant it again, then repeat this call.';
        END;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION pdp._refresh_masked_views(regclass) IS
    're-creates the masked views pdp.create_masked_view made of a table; returns how many';

CREATE FUNCTION pdp.declare_credential(tbl regclass, col name) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.declare_credential(regclass, name) IS
    'declares a column a credential (password hash, secret, token): never exported, never in masked views or reports; idempotent';

CREATE FUNCTION pdp._api_declare_credential(tbl regclass, col name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF col IS NULL THEN
        RAISE EXCEPTION 'column must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO pdp.credential_column AS c (tbl, col, attnum, declared_by)
    VALUES (tbl, col, 0, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT credential_column_pkey DO NOTHING;
    IF FOUND THEN
        PERFORM pdp._refresh_masked_views(tbl);
        PERFORM pdp._audit('declare_credential', tbl::text, NULL, pg_catalog.jsonb_build_object('column', col));
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._api_declare_credential(regclass, name) IS
    'pdp.declare_credential''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE FUNCTION pdp.drop_credential(tbl regclass, col name) RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_credential(regclass, name) IS
    'removes a credential declaration; false if the column was not declared';

CREATE FUNCTION pdp._api_drop_credential(tbl regclass, col name) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF col IS NULL THEN
        RAISE EXCEPTION 'column must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM pdp.credential_column c
     WHERE c.tbl OPERATOR(pg_catalog.=) _api_drop_credential.tbl
       AND c.attnum OPERATOR(pg_catalog.=) (SELECT a.attnum FROM pg_catalog.pg_attribute a
                                             WHERE a.attrelid OPERATOR(pg_catalog.=) _api_drop_credential.tbl::oid
                                               AND a.attname OPERATOR(pg_catalog.=) _api_drop_credential.col
                                               AND NOT a.attisdropped);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pdp._refresh_masked_views(tbl);
    PERFORM pdp._audit('drop_credential', tbl::text, NULL, pg_catalog.jsonb_build_object('column', col));
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp._api_drop_credential(regclass, name) IS
    'pdp.drop_credential''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE VIEW pdp.credential_columns AS
SELECT c.tbl AS table_name, a.attname AS column_name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type, c.declared_at, c.declared_by
  FROM pdp.credential_column c
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.tbl::oid
                                AND a.attnum OPERATOR(pg_catalog.=) c.attnum AND NOT a.attisdropped;
COMMENT ON VIEW pdp.credential_columns IS 'declared credential columns with current names and types';

-- What pdp.export_subject shows of a table's rows (a JSON array of row
-- objects): every credential column's value replaced by a marker saying
-- the column exists and its value is withheld.
CREATE FUNCTION pdp._withhold_credentials(tbl regclass, rows_ jsonb) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN w.cols IS NULL OR rows_ IS NULL OR pg_catalog.jsonb_typeof(rows_) OPERATOR(pg_catalog.<>) 'array' THEN rows_
                ELSE (SELECT pg_catalog.jsonb_agg(CASE WHEN pg_catalog.jsonb_typeof(r) OPERATOR(pg_catalog.=) 'object'
                                                       THEN r OPERATOR(pg_catalog.||) w.cols ELSE r END ORDER BY o)
                        FROM pg_catalog.jsonb_array_elements(rows_) WITH ORDINALITY AS e(r, o)) END
      FROM (SELECT pg_catalog.jsonb_object_agg(a.attname, '{"withheld": "credential"}'::jsonb) AS cols
              FROM pdp.credential_column c
              JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.tbl::oid
                                            AND a.attnum OPERATOR(pg_catalog.=) c.attnum AND NOT a.attisdropped
             WHERE c.tbl OPERATOR(pg_catalog.=) _withhold_credentials.tbl) w
$$;
COMMENT ON FUNCTION pdp._withhold_credentials(regclass, jsonb) IS
    'an export''s rows of a table with every credential column''s value replaced by {"withheld": "credential"}';

-- Does consent evidence hold a credential?  A key anywhere in it named like
-- a password, secret, token or key, or like a declared credential column
-- (a row copied into the evidence would carry the password hash).
-- pdp.grant_consent and pdp.import_consents refuse such evidence.
-- pdp._import_consents applies the same rule to all its rows in one query:
-- keep the two alike.
CREATE FUNCTION pdp._credential_evidence(evidence jsonb) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.jsonb_path_query(evidence, 'strict $.**') v,
                      pg_catalog.jsonb_object_keys(CASE WHEN pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'object'
                                                        THEN v ELSE '{}'::jsonb END) k
         WHERE k OPERATOR(pg_catalog.~*) '(passw|secret|token|api_?key|private_?key|пароль)'
            OR EXISTS (SELECT 1 FROM pdp.credential_column c
                         JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.tbl::oid
                                                       AND a.attnum OPERATOR(pg_catalog.=) c.attnum
                        WHERE a.attname::text OPERATOR(pg_catalog.=) k))
$$;
COMMENT ON FUNCTION pdp._credential_evidence(jsonb) IS
    'whether consent evidence holds a key named like a password, secret, token or a declared credential column';
