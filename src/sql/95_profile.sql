-- LMS profiles: one call registers an LMS's schema the way its DPO would
-- (doc/profiles.md).  A profile is a JSON file shipped with pdp_ext in
-- SHAREDIR/extension/pdp_ext_profiles/NAME.json; pdp.apply_profile turns it
-- into calls of pdp's own API, run as the caller (so every call is checked
-- as if the caller had typed it), skipping what is already in place.

CREATE FUNCTION pdp._profile_source(name text) RETURNS text
LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'pdp_profile_source';
COMMENT ON FUNCTION pdp._profile_source(text) IS
    'the text of the installed profile SHAREDIR/extension/pdp_ext_profiles/NAME.json (plain names only)';

-- A table a profile names, in the profile's schema (NULL when it is missing).
CREATE FUNCTION pdp._profile_rel(sch text, tbl text) RETURNS regclass
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', sch, tbl)) $$;
COMMENT ON FUNCTION pdp._profile_rel(text, text) IS 'a profile''s table in its schema, or NULL when the database has no such table';

CREATE FUNCTION pdp._profile_has_column(rel regclass, col text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) rel::oid
                        AND a.attname OPERATOR(pg_catalog.=) col AND a.attnum > 0 AND NOT a.attisdropped) $$;
COMMENT ON FUNCTION pdp._profile_has_column(regclass, text) IS 'whether a table has a (live) column of that name';

-- The steps a profile asks for, in order, each with the API call it makes;
-- skip says why a step cannot apply to this database (a table or column of
-- another LMS version, a profile field the site does not have).
CREATE FUNCTION pdp._profile_steps(doc jsonb)
RETURNS TABLE (step integer, kind text, what text, call text, args jsonb, skip text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sch text := coalesce(doc ->> 'schema', 'public');
    e jsonb;
    a jsonb;
    r regclass;
    r2 regclass;
    q text;
    v text;
    cfg text;
    vals text[];
    role_name text;
    n integer := 0;
    names regclass;
    listed text[];
BEGIN
    -- Purposes, and who may declare them ('@owner:TABLE' is that table's owner).
    FOR e IN SELECT x FROM pg_catalog.jsonb_array_elements(coalesce(doc -> 'purposes', '[]')) x LOOP
        n := n + 1; step := n; kind := 'define_purpose'; skip := NULL;
        what := pg_catalog.format('purpose %s (%s)', e ->> 'purpose', e ->> 'legal_basis');
        args := pg_catalog.jsonb_build_object('purpose', e ->> 'purpose', 'legal_basis', e ->> 'legal_basis',
                                              'description', e ->> 'description');
        call := pg_catalog.format('SELECT pdp.define_purpose(%L, %L, %L)', e ->> 'purpose', e ->> 'legal_basis', e ->> 'description');
        RETURN NEXT;
        FOR v IN SELECT x FROM pg_catalog.jsonb_array_elements_text(coalesce(e -> 'allow', '[]')) x LOOP
            n := n + 1; step := n; kind := 'allow_purpose'; skip := NULL; role_name := v;
            IF v LIKE '@owner:%' THEN
                r := pdp._profile_rel(sch, pg_catalog.substr(v, 8));
                role_name := (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c
                               WHERE c.oid OPERATOR(pg_catalog.=) r::oid);
                IF role_name IS NULL THEN skip := pg_catalog.format('table %s is missing', pg_catalog.substr(v, 8)); END IF;
            END IF;
            what := pg_catalog.format('role %s may declare %s', coalesce(role_name, v), e ->> 'purpose');
            args := pg_catalog.jsonb_build_object('role', role_name, 'purpose', e ->> 'purpose');
            call := pg_catalog.format('SELECT pdp.allow_purpose(%L::regrole, %L)', pg_catalog.quote_ident(coalesce(role_name, v)),
                                      e ->> 'purpose');
            RETURN NEXT;
        END LOOP;
    END LOOP;

    -- Columns that name a subject, each with its erase action.
    FOR e IN SELECT x FROM pg_catalog.jsonb_array_elements(coalesce(doc -> 'subject_columns', '[]')) x LOOP
        n := n + 1; step := n; kind := 'register_table';
        r := pdp._profile_rel(sch, e ->> 'table');
        skip := CASE WHEN r IS NULL THEN 'table is missing'
                     WHEN NOT pdp._profile_has_column(r, e ->> 'column') THEN 'column is missing' END;
        what := pg_catalog.format('%s.%s: %s', e ->> 'table', e ->> 'column',
                                  coalesce(e ->> 'erase', 'delete') || coalesce(' ' || (e ->> 'value'), ''));
        args := pg_catalog.jsonb_build_object('tbl', pg_catalog.format('%I.%I', sch, e ->> 'table'), 'col', e ->> 'column',
                                              'erase', coalesce(e ->> 'erase', 'delete'), 'value', e ->> 'value');
        call := CASE WHEN e ->> 'value' IS NULL
                     THEN pg_catalog.format('SELECT pdp.register_table(%L::regclass, %L, %L)', args ->> 'tbl', e ->> 'column', args ->> 'erase')
                     ELSE pg_catalog.format('SELECT pdp.register_table(%L::regclass, %L, %L, %L)', args ->> 'tbl', e ->> 'column',
                                            args ->> 'erase', e ->> 'value') END;
        RETURN NEXT;
    END LOOP;

    -- Links between rows that no foreign key declares.
    FOR e IN SELECT x FROM pg_catalog.jsonb_array_elements(coalesce(doc -> 'links', '[]')) x LOOP
        n := n + 1; step := n; kind := 'declare_link';
        r := pdp._profile_rel(sch, e ->> 'child');
        r2 := pdp._profile_rel(sch, e ->> 'parent');
        skip := CASE WHEN r IS NULL OR r2 IS NULL THEN 'table is missing'
                     WHEN NOT pdp._profile_has_column(r, e ->> 'child_column')
                       OR NOT pdp._profile_has_column(r2, coalesce(e ->> 'parent_column', 'id')) THEN 'column is missing' END;
        what := pg_catalog.format('%s.%s follows %s.%s (others'' rows: %s)', e ->> 'child', e ->> 'child_column', e ->> 'parent',
                                  coalesce(e ->> 'parent_column', 'id'), coalesce(e ->> 'on_other', 'delete'));
        args := pg_catalog.jsonb_build_object('child', pg_catalog.format('%I.%I', sch, e ->> 'child'), 'child_column', e ->> 'child_column',
                                              'parent', pg_catalog.format('%I.%I', sch, e ->> 'parent'),
                                              'parent_column', coalesce(e ->> 'parent_column', 'id'),
                                              'on_other', coalesce(e ->> 'on_other', 'delete'), 'reparent_value', e ->> 'reparent_value');
        call := pg_catalog.format('SELECT pdp.declare_link(%L::regclass, %L, %L::regclass, %L, %L, %L)', args ->> 'child',
                                  args ->> 'child_column', args ->> 'parent', args ->> 'parent_column', args ->> 'on_other',
                                  args ->> 'reparent_value');
        RETURN NEXT;
    END LOOP;

    -- When a subject's data expires, with the activity column's "never" values.
    e := doc -> 'subject_retention';
    IF e IS NOT NULL AND e <> 'null'::jsonb THEN
        n := n + 1; step := n; kind := 'set_subject_retention';
        r := pdp._profile_rel(sch, e ->> 'table');
        skip := CASE WHEN r IS NULL THEN 'table is missing'
                     WHEN NOT pdp._profile_has_column(r, e ->> 'column')
                       OR (e ->> 'fallback_column' IS NOT NULL AND NOT pdp._profile_has_column(r, e ->> 'fallback_column'))
                     THEN 'column is missing' END;
        what := pg_catalog.format('subjects expire %s after %s.%s', e ->> 'period', e ->> 'table', e ->> 'column');
        args := pg_catalog.jsonb_build_object('period', e ->> 'period', 'activity_table', pg_catalog.format('%I.%I', sch, e ->> 'table'),
                                              'activity_column', e ->> 'column', 'never_values', e -> 'never_values',
                                              'fallback_column', e ->> 'fallback_column');
        call := pg_catalog.format('SELECT pdp.set_subject_retention(%L::interval, %L::regclass, %L, %L::text[], %L)', e ->> 'period',
                                  args ->> 'activity_table', e ->> 'column',
                                  (SELECT pg_catalog.array_agg(x) FROM pg_catalog.jsonb_array_elements_text(coalesce(e -> 'never_values', '[]')) x),
                                  e ->> 'fallback_column');
        RETURN NEXT;
    END IF;

    -- System subjects: listed, or read from the LMS's own configuration.
    FOR e IN SELECT x FROM pg_catalog.jsonb_array_elements(coalesce(doc -> 'system_subjects', '[]')) x LOOP
        IF e ? 'subject' THEN
            n := n + 1; step := n; kind := 'declare_system_subject'; skip := NULL;
            what := pg_catalog.format('system subject: %s', e ->> 'reason');
            args := pg_catalog.jsonb_build_object('subject', e ->> 'subject', 'reason', e ->> 'reason');
            call := pg_catalog.format('SELECT pdp.declare_system_subject(%L, %L)', e ->> 'subject', e ->> 'reason');
            RETURN NEXT;
            CONTINUE;
        END IF;
        r := pdp._profile_rel(sch, e -> 'from' ->> 'table');
        IF r IS NULL OR NOT pdp._profile_has_column(r, e -> 'from' ->> 'column') THEN
            n := n + 1; step := n; kind := 'declare_system_subject'; args := NULL; call := NULL;
            what := pg_catalog.format('system subjects: %s', e ->> 'reason');
            skip := 'table or column is missing';
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- The conditions' values are parameters ($1[n]), in key order.
        q := pg_catalog.format('SELECT x.%I::text FROM %s x', e -> 'from' ->> 'column', r)
             || coalesce(' WHERE ' || (SELECT pg_catalog.string_agg(pg_catalog.format('x.%I::text OPERATOR(pg_catalog.=) $1[%s]', w.key, w.n),
                                                                    ' AND ' ORDER BY w.n)
                                         FROM (SELECT j.key, pg_catalog.row_number() OVER (ORDER BY j.key) AS n
                                                 FROM pg_catalog.jsonb_each_text(e -> 'from' -> 'where') j) w), '');
        vals := ARRAY(SELECT j.value FROM pg_catalog.jsonb_each_text(coalesce(e -> 'from' -> 'where', '{}')) j ORDER BY j.key);
        FOR cfg IN EXECUTE q USING vals LOOP
            FOR v IN SELECT DISTINCT pg_catalog.btrim(x) FROM pg_catalog.unnest(
                         CASE WHEN e -> 'from' ? 'split' THEN pg_catalog.string_to_array(cfg, e -> 'from' ->> 'split') ELSE ARRAY[cfg] END) x
                      WHERE pg_catalog.btrim(x) <> '' ORDER BY 1 LOOP
                n := n + 1; step := n; kind := 'declare_system_subject'; skip := NULL;
                what := pg_catalog.format('system subject: %s', e ->> 'reason');
                args := pg_catalog.jsonb_build_object('subject', v, 'reason', e ->> 'reason');
                call := pg_catalog.format('SELECT pdp.declare_system_subject(%L, %L)', v, e ->> 'reason');
                RETURN NEXT;
            END LOOP;
        END LOOP;
    END LOOP;

    -- Credentials and secrets.
    FOR e IN SELECT x FROM pg_catalog.jsonb_array_elements(coalesce(doc -> 'credentials', '[]')) x LOOP
        n := n + 1; step := n; kind := 'declare_credential';
        r := pdp._profile_rel(sch, e ->> 'table');
        skip := CASE WHEN r IS NULL THEN 'table is missing'
                     WHEN NOT pdp._profile_has_column(r, e ->> 'column') THEN 'column is missing' END;
        what := pg_catalog.format('%s.%s: credential', e ->> 'table', e ->> 'column');
        args := pg_catalog.jsonb_build_object('tbl', pg_catalog.format('%I.%I', sch, e ->> 'table'), 'col', e ->> 'column');
        call := pg_catalog.format('SELECT pdp.declare_credential(%L::regclass, %L)', args ->> 'tbl', e ->> 'column');
        RETURN NEXT;
    END LOOP;

    -- Entity-attribute-value columns, classified per attribute; attribute
    -- values (e.g. field ids) are looked up by name when the profile is applied.
    FOR e IN SELECT x FROM pg_catalog.jsonb_array_elements(coalesce(doc -> 'eav', '[]')) x LOOP
        r := pdp._profile_rel(sch, e ->> 'table');
        names := pdp._profile_rel(sch, e -> 'attribute_names' ->> 'table');
        listed := ARRAY(SELECT y ->> 'name' FROM pg_catalog.jsonb_array_elements(coalesce(e -> 'attributes', '[]')) y);
        FOR a IN SELECT y FROM pg_catalog.jsonb_array_elements(coalesce(e -> 'attributes', '[]')) y LOOP
            n := n + 1; step := n; kind := 'register_eav'; v := NULL; skip := NULL;
            IF r IS NULL OR NOT pdp._profile_has_column(r, e ->> 'value_column') OR NOT pdp._profile_has_column(r, e ->> 'attribute_column') THEN
                skip := 'table or column is missing';
            ELSIF e ? 'attribute_names' THEN
                IF names IS NULL THEN
                    skip := 'attribute table is missing';
                ELSE
                    EXECUTE pg_catalog.format('SELECT min(x.%I::text) FROM %s x WHERE x.%I::text = $1', e -> 'attribute_names' ->> 'key_column',
                                              names, e -> 'attribute_names' ->> 'name_column') INTO v USING a ->> 'name';
                    IF v IS NULL THEN skip := 'this site has no such attribute'; END IF;
                END IF;
            ELSE
                v := a ->> 'name';
            END IF;
            what := pg_catalog.format('%s.%s where %s = %s (%s): %s', e ->> 'table', e ->> 'value_column', e ->> 'attribute_column',
                                      coalesce(v, '?'), a ->> 'name', a ->> 'category');
            args := pg_catalog.jsonb_build_object('tbl', pg_catalog.format('%I.%I', sch, e ->> 'table'), 'value_column', e ->> 'value_column',
                                                  'attribute_column', e ->> 'attribute_column', 'attribute_value', v,
                                                  'category', a ->> 'category', 'rule', a ->> 'rule');
            call := pg_catalog.format('SELECT pdp.register_eav(%L::regclass, %L, %L, %L, %L, %L)', args ->> 'tbl', e ->> 'value_column',
                                      e ->> 'attribute_column', v, a ->> 'category', a ->> 'rule');
            RETURN NEXT;
        END LOOP;
        -- Attributes the site has and the profile does not classify: for review.
        IF names IS NOT NULL AND e ? 'attribute_names' THEN
            FOR a IN EXECUTE pg_catalog.format('SELECT pg_catalog.jsonb_build_object(''v'', x.%I::text, ''name'', x.%I::text) FROM %s x
                                                 WHERE x.%I::text <> ALL ($1) ORDER BY 1',
                                               e -> 'attribute_names' ->> 'key_column', e -> 'attribute_names' ->> 'name_column', names,
                                               e -> 'attribute_names' ->> 'name_column') USING listed LOOP
                n := n + 1; step := n; kind := 'review'; args := NULL; call := NULL;
                what := pg_catalog.format('%s.%s where %s = %s (%s)', e ->> 'table', e ->> 'value_column', e ->> 'attribute_column',
                                          a ->> 'v', a ->> 'name');
                skip := 'this attribute is not in the profile: classify it with pdp.register_eav';
                RETURN NEXT;
            END LOOP;
        END IF;
    END LOOP;

    -- Rules for personal-data columns (masked views, pseudonymisation).
    FOR e IN SELECT x FROM pg_catalog.jsonb_array_elements(coalesce(doc -> 'column_rules', '[]')) x LOOP
        n := n + 1; step := n; kind := 'set_column_rule';
        r := pdp._profile_rel(sch, e ->> 'table');
        skip := CASE WHEN r IS NULL THEN 'table is missing'
                     WHEN NOT pdp._profile_has_column(r, e ->> 'column') THEN 'column is missing' END;
        what := pg_catalog.format('%s.%s: rule %s (%s)', e ->> 'table', e ->> 'column', e ->> 'rule', e ->> 'category');
        args := pg_catalog.jsonb_build_object('tbl', pg_catalog.format('%I.%I', sch, e ->> 'table'), 'col', e ->> 'column',
                                              'rule', e ->> 'rule', 'category', e ->> 'category');
        call := pg_catalog.format('SELECT pdp.set_column_rule(%L::regclass, %L, %L, %L)', args ->> 'tbl', e ->> 'column',
                                  e ->> 'rule', e ->> 'category');
        RETURN NEXT;
    END LOOP;

    -- Tables protected by consent, purpose and restriction.
    FOR v IN SELECT x FROM pg_catalog.jsonb_array_elements_text(coalesce(doc -> 'protect', '[]')) x LOOP
        n := n + 1; step := n; kind := 'protect_table';
        r := pdp._profile_rel(sch, v);
        skip := CASE WHEN r IS NULL THEN 'table is missing' END;
        what := pg_catalog.format('%s: protected', v);
        args := pg_catalog.jsonb_build_object('tbl', pg_catalog.format('%I.%I', sch, v));
        call := pg_catalog.format('SELECT pdp.protect_table(%L::regclass)', args ->> 'tbl');
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp._profile_steps(jsonb) IS
    'the steps of a profile document, in order, each with the pdp API call it makes and why it does not apply (if so)';

-- Whether a catalog (when this pdp_ext has it) holds a row agreeing with want
-- on every key of want that the row has; NULL when there is no such catalog.
CREATE FUNCTION pdp._profile_catalog_has(catalog text, want jsonb) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found boolean;
BEGIN
    IF pg_catalog.to_regclass(catalog) IS NULL OR NOT pg_catalog.has_table_privilege(pg_catalog.to_regclass(catalog), 'SELECT') THEN
        RETURN NULL;
    END IF;
    EXECUTE pg_catalog.format(
        'SELECT EXISTS (SELECT 1 FROM %s x WHERE NOT EXISTS (
             SELECT 1 FROM pg_catalog.jsonb_each($1) w
              WHERE pg_catalog.to_jsonb(x) ? w.key AND pg_catalog.to_jsonb(x) -> w.key IS DISTINCT FROM w.value))',
        pg_catalog.to_regclass(catalog)) INTO found USING want;
    RETURN found;
END
$$;
COMMENT ON FUNCTION pdp._profile_catalog_has(text, jsonb) IS
    'whether pdp''s catalog table has a row agreeing with the given values (NULL when this version has no such table)';

-- Is a step already in place?  'already', a reason it differs, or NULL (to do).
CREATE FUNCTION pdp._profile_check(kind text, args jsonb) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    have text;
BEGIN
    CASE kind
    WHEN 'define_purpose' THEN
        SELECT pg_catalog.to_jsonb(p) INTO r FROM pdp.purpose p WHERE p.purpose OPERATOR(pg_catalog.=) (args ->> 'purpose');
        IF r IS NULL THEN RETURN NULL; END IF;
        IF r ->> 'legal_basis' = args ->> 'legal_basis' AND r ->> 'description' IS NOT DISTINCT FROM args ->> 'description' THEN
            RETURN 'already';
        END IF;
        RETURN NULL;    -- define_purpose redefines it
    WHEN 'allow_purpose' THEN
        IF EXISTS (SELECT 1 FROM pdp.purpose_grant g WHERE g.role::text OPERATOR(pg_catalog.=) pg_catalog.quote_ident(args ->> 'role')
                      AND g.purpose OPERATOR(pg_catalog.=) (args ->> 'purpose')) THEN
            RETURN 'already';
        END IF;
        RETURN NULL;
    WHEN 'register_table' THEN
        SELECT pg_catalog.to_jsonb(s) INTO r FROM pdp.subject_column s
         WHERE s.tbl OPERATOR(pg_catalog.=) (args ->> 'tbl')::regclass AND s.col OPERATOR(pg_catalog.=) (args ->> 'col');
        IF r IS NULL THEN RETURN NULL; END IF;
        -- 'anonymise' is 0.3's spelling of 'set_null'.
        have := pg_catalog.replace(r ->> 'on_erase', 'anonymise', 'set_null');
        IF have = pg_catalog.replace(args ->> 'erase', 'anonymise', 'set_null')
           AND (NOT r ? 'erase_value' OR r ->> 'erase_value' IS NOT DISTINCT FROM args ->> 'value') THEN
            RETURN 'already';
        END IF;
        RETURN pg_catalog.format('registered with on_erase %s%s; pdp.unregister_table first to change it', have,
                                 coalesce(' ' || (r ->> 'erase_value'), ''));
    WHEN 'set_column_rule' THEN
        IF EXISTS (SELECT 1 FROM pdp.column_rule c WHERE c.tbl OPERATOR(pg_catalog.=) (args ->> 'tbl')::regclass
                      AND c.col OPERATOR(pg_catalog.=) (args ->> 'col') AND c.rule OPERATOR(pg_catalog.=) (args ->> 'rule')
                      AND c.category IS NOT DISTINCT FROM args ->> 'category') THEN
            RETURN 'already';
        END IF;
        RETURN NULL;
    WHEN 'protect_table' THEN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) (args ->> 'tbl')::regclass::oid
                      AND p.polname OPERATOR(pg_catalog.=) 'pdp_select') THEN
            RETURN 'already';
        END IF;
        RETURN NULL;
    WHEN 'set_subject_retention' THEN
        SELECT pg_catalog.to_jsonb(s) INTO r FROM pdp.subject_retention s LIMIT 1;
        IF r IS NOT NULL AND (r ->> 'period')::interval = (args ->> 'period')::interval
           AND (r ->> 'activity_table')::regclass OPERATOR(pg_catalog.=) (args ->> 'activity_table')::regclass
           AND r ->> 'activity_column' = args ->> 'activity_column'
           AND (NOT r ? 'never_values' OR coalesce(r -> 'never_values', '[]') = coalesce(args -> 'never_values', '[]'))
           AND (NOT r ? 'fallback_column' OR r ->> 'fallback_column' IS NOT DISTINCT FROM args ->> 'fallback_column') THEN
            RETURN 'already';
        END IF;
        RETURN NULL;
    WHEN 'declare_system_subject' THEN
        IF pg_catalog.to_regclass('pdp.system_subject') IS NOT NULL
           AND pdp._profile_catalog_has('pdp.system_subject', pg_catalog.jsonb_build_object('subject', args ->> 'subject')) THEN
            RETURN 'already';
        END IF;
        RETURN NULL;
    WHEN 'declare_link' THEN
        IF pdp._profile_catalog_has('pdp.link', pg_catalog.jsonb_build_object(
               'child', (args ->> 'child')::regclass::text, 'child_column', args ->> 'child_column',
               'parent', (args ->> 'parent')::regclass::text, 'parent_column', args ->> 'parent_column',
               'on_other', args ->> 'on_other', 'reparent_value', args -> 'reparent_value')) THEN
            RETURN 'already';
        END IF;
        RETURN NULL;
    WHEN 'declare_credential' THEN
        IF pdp._profile_catalog_has('pdp.credential_column', pg_catalog.jsonb_build_object(
               'tbl', (args ->> 'tbl')::regclass::text, 'col', args ->> 'col')) THEN
            RETURN 'already';
        END IF;
        RETURN NULL;
    WHEN 'register_eav' THEN
        IF pdp._profile_catalog_has('pdp.eav_attribute', pg_catalog.jsonb_build_object(
               'tbl', (args ->> 'tbl')::regclass::text, 'value_col', args ->> 'value_column',
               'attribute_col', args ->> 'attribute_column', 'attribute_value', args ->> 'attribute_value',
               'category', args ->> 'category', 'rule', args -> 'rule')) THEN
            RETURN 'already';
        END IF;
        RETURN NULL;
    ELSE
        RETURN NULL;
    END CASE;
END
$$;
COMMENT ON FUNCTION pdp._profile_check(text, jsonb) IS
    'whether a profile step is already in place: ''already'', why it differs, or NULL when it is to be done';

-- Makes a step's API call, its values passed as values (the step's "call"
-- column shows the same call as text, for the reader).
CREATE FUNCTION pdp._profile_run(kind text, args jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE kind
    WHEN 'define_purpose' THEN
        PERFORM pdp.define_purpose(args ->> 'purpose', args ->> 'legal_basis', args ->> 'description');
    WHEN 'allow_purpose' THEN
        PERFORM pdp.allow_purpose(pg_catalog.quote_ident(args ->> 'role')::regrole, args ->> 'purpose');
    WHEN 'register_table' THEN
        IF args ->> 'value' IS NULL THEN
            PERFORM pdp.register_table((args ->> 'tbl')::regclass, (args ->> 'col')::name, args ->> 'erase');
        ELSE
            PERFORM pdp.register_table((args ->> 'tbl')::regclass, (args ->> 'col')::name, args ->> 'erase', args ->> 'value');
        END IF;
    WHEN 'declare_link' THEN
        PERFORM pdp.declare_link((args ->> 'child')::regclass, (args ->> 'child_column')::name, (args ->> 'parent')::regclass,
                                 (args ->> 'parent_column')::name, args ->> 'on_other', args ->> 'reparent_value');
    WHEN 'set_subject_retention' THEN
        PERFORM pdp.set_subject_retention((args ->> 'period')::interval, (args ->> 'activity_table')::regclass,
                                          (args ->> 'activity_column')::name,
                                          ARRAY(SELECT pg_catalog.jsonb_array_elements_text(coalesce(args -> 'never_values', '[]'))),
                                          (args ->> 'fallback_column')::name);
    WHEN 'declare_system_subject' THEN
        PERFORM pdp.declare_system_subject(args ->> 'subject', args ->> 'reason');
    WHEN 'declare_credential' THEN
        PERFORM pdp.declare_credential((args ->> 'tbl')::regclass, (args ->> 'col')::name);
    WHEN 'register_eav' THEN
        PERFORM pdp.register_eav((args ->> 'tbl')::regclass, (args ->> 'value_column')::name, (args ->> 'attribute_column')::name,
                                 args ->> 'attribute_value', args ->> 'category', args ->> 'rule');
    WHEN 'set_column_rule' THEN
        PERFORM pdp.set_column_rule((args ->> 'tbl')::regclass, (args ->> 'col')::name, args ->> 'rule', args ->> 'category');
    WHEN 'protect_table' THEN
        PERFORM pdp.protect_table((args ->> 'tbl')::regclass);
    END CASE;
END
$$;
COMMENT ON FUNCTION pdp._profile_run(text, jsonb) IS 'makes one profile step''s pdp API call';

CREATE FUNCTION pdp.apply_profile(name text, dry_run boolean DEFAULT false)
RETURNS TABLE (step integer, what text, call text, status text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src text;
    doc jsonb;
    s record;
    chk text;
    n_done integer := 0;
    n_failed integer := 0;
    e_state text;
    e_msg text;
BEGIN
    IF name IS NULL OR dry_run IS NULL THEN
        RAISE EXCEPTION 'profile name and dry_run must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    src := pdp._profile_source(name);
    BEGIN
        doc := src::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        RAISE EXCEPTION 'profile "%" is not valid JSON', name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'doc/profiles.md describes the file format.';
    END;
    IF pg_catalog.jsonb_typeof(doc) IS DISTINCT FROM 'object' OR doc ->> 'format' IS DISTINCT FROM '1'
       OR doc ->> 'profile' IS DISTINCT FROM name THEN
        RAISE EXCEPTION 'profile "%" is not a format-1 profile of that name', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A profile is a JSON object with "profile": its name and "format": 1 (doc/profiles.md).';
    END IF;
    -- A misspelt section would be skipped without a word: refuse it.
    SELECT k INTO e_msg FROM pg_catalog.jsonb_object_keys(doc) k
     WHERE k <> ALL (ARRAY['profile', 'format', 'describes', 'schema', 'why', 'purposes', 'subject_columns', 'links',
                           'subject_retention', 'system_subjects', 'credentials', 'eav', 'column_rules', 'protect'])
     ORDER BY 1 LIMIT 1;
    IF e_msg IS NOT NULL THEN
        RAISE EXCEPTION 'profile "%" has an unknown section "%"', name, e_msg
            USING ERRCODE = 'invalid_parameter_value', HINT = 'doc/profiles.md lists the sections of a format-1 profile.';
    END IF;
    FOR s IN SELECT * FROM pdp._profile_steps(doc) x ORDER BY x.step LOOP
        step := s.step; what := s.what; call := s.call; detail := NULL;
        IF s.kind = 'review' THEN
            status := 'review'; detail := s.skip;
        ELSIF s.skip IS NOT NULL THEN
            status := 'skipped'; detail := s.skip;
        ELSE
            chk := pdp._profile_check(s.kind, s.args);
            IF chk = 'already' THEN
                status := 'already';
            ELSIF chk IS NOT NULL THEN
                status := 'differs'; detail := chk;
            ELSIF dry_run THEN
                status := 'would run';
            ELSE
                BEGIN
                    PERFORM pdp._profile_run(s.kind, s.args);
                    status := 'done';
                    n_done := n_done + 1;
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT;
                    status := 'failed';
                    n_failed := n_failed + 1;
                    detail := e_state || ': ' || CASE WHEN e_state = '42883'
                                                      THEN 'this pdp_ext has no ' || pg_catalog.split_part(pg_catalog.substr(s.call, 8), '(', 1) || ' taking these arguments'
                                                      ELSE e_msg END;
                END;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF NOT dry_run THEN
        PERFORM pdp._audit('apply_profile', name, NULL,
                           pg_catalog.jsonb_build_object('done', n_done, 'failed', n_failed));
    END IF;
    IF n_failed > 0 THEN
        RAISE WARNING 'profile "%": % step(s) failed', name, n_failed
            USING HINT = 'The failed steps are listed with their errors; each was rolled back alone. Apply the profile again once fixed: steps in place are left alone.';
    END IF;
END
$$;
COMMENT ON FUNCTION pdp.apply_profile(text, boolean) IS
    'applies an LMS profile shipped with pdp_ext (e.g. ''moodle''), step by step as the caller; dry_run lists the steps; idempotent';

-- A profile is applied by a role that may make its calls (pdp_admin and the
-- owner of the LMS's tables); each call checks its own rights.
GRANT EXECUTE ON FUNCTION pdp.apply_profile(text, boolean), pdp._profile_source(text), pdp._profile_rel(text, text),
                          pdp._profile_has_column(regclass, text), pdp._profile_steps(jsonb),
                          pdp._profile_catalog_has(text, jsonb), pdp._profile_check(text, jsonb),
                          pdp._profile_run(text, jsonb)
TO pdp_admin;
