-- A search for leftovers (issue 17, point 4): where a learner's identifiers
-- still sit in the database, registered or not.  Counts per table and
-- column, never a value.

-- The learner's identifiers, normalised for matching: e-mail addresses
-- lower-cased; phone numbers as their ten national digits (+7 701 234 56 78,
-- 8 (701) 234-56-78 and 87012345678 are one number) or all their digits
-- for other countries; IINs as twelve digits; names lower-cased, four
-- characters or more.  Gathered from the subject's rows of every registered
-- table, from the columns classified (rule or category) as e-mail, phone,
-- IIN, username or name, and the EAV attributes so classified.  Read as each
-- table's owner.  Internal: the values never leave pdp's functions.
CREATE FUNCTION pdp._subject_identifiers(subject text, OUT emails text[], OUT phones text[], OUT iins text[], OUT names text[])
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    cond text;
    c record;
    v text;
    kind text;
    d text;
BEGIN
    emails := '{}'; phones := '{}'; iins := '{}'; names := '{}';
    FOR t IN SELECT DISTINCT s.tbl FROM pdp.subject_column s ORDER BY 1 LOOP
        cond := pdp._subject_match(t, subject);
        CONTINUE WHEN cond IS NULL;
        FOR c IN SELECT pg_catalog.format('t.%I::text', a.attname) AS expr, NULL::text AS attr_cond,
                        CASE WHEN r.category IN ('email', 'phone', 'iin', 'name', 'username') THEN r.category
                             WHEN r.rule IN ('pseudo_email', 'mask_email') THEN 'email'
                             WHEN r.rule IN ('pseudo_phone', 'mask_phone') THEN 'phone'
                             WHEN r.rule IN ('pseudo_iin', 'fpe_iin') THEN 'iin'
                             WHEN r.rule OPERATOR(pg_catalog.=) 'pseudo_name' THEN 'name' END AS kind
                   FROM pdp.column_rule r
                   JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) r.attnum
                  WHERE r.tbl OPERATOR(pg_catalog.=) t
                 UNION ALL
                 SELECT pg_catalog.format('t.%I::text', v.attname),
                        pg_catalog.format('t.%I::text OPERATOR(pg_catalog.=) %L', a.attname, e.attribute_value),
                        CASE WHEN e.category IN ('email', 'phone', 'iin', 'name', 'username') THEN e.category
                             WHEN e.rule IN ('pseudo_email', 'mask_email') THEN 'email'
                             WHEN e.rule IN ('pseudo_phone', 'mask_phone') THEN 'phone'
                             WHEN e.rule IN ('pseudo_iin', 'fpe_iin') THEN 'iin' END
                   FROM pdp.eav_attribute e
                   JOIN pg_catalog.pg_attribute v ON v.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND v.attnum OPERATOR(pg_catalog.=) e.value_attnum
                   JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) e.attribute_attnum
                  WHERE e.tbl OPERATOR(pg_catalog.=) t LOOP
            CONTINUE WHEN c.kind IS NULL;
            FOR v IN SELECT x.v FROM pdp._exec_as_owner(t, pg_catalog.format(
                         'SELECT DISTINCT %s FROM %s t WHERE (%s)%s LIMIT 1000', c.expr, t, cond,
                         coalesce(' AND ' || c.attr_cond, '')), subject) AS x(v text)
                      WHERE x.v IS NOT NULL AND NOT pdp._is_placeholder(x.v) LOOP
                IF c.kind OPERATOR(pg_catalog.=) 'email' AND pg_catalog.strpos(v, '@') > 1 THEN
                    emails := emails || pg_catalog.lower(pg_catalog.btrim(v));
                ELSIF c.kind OPERATOR(pg_catalog.=) 'phone' THEN
                    d := pg_catalog.regexp_replace(v, '[^0-9]', '', 'g');
                    IF pg_catalog.length(d) OPERATOR(pg_catalog.=) 11 AND pg_catalog.left(d, 1) IN ('7', '8') THEN
                        d := pg_catalog.right(d, 10);
                    END IF;
                    IF pg_catalog.length(d) >= 10 THEN
                        phones := phones || d;
                    END IF;
                ELSIF c.kind OPERATOR(pg_catalog.=) 'iin' THEN
                    d := pg_catalog.regexp_replace(v, '[^0-9]', '', 'g');
                    IF pg_catalog.length(d) OPERATOR(pg_catalog.=) 12 THEN
                        iins := iins || d;
                    END IF;
                ELSIF c.kind IN ('name', 'username') AND pg_catalog.char_length(pg_catalog.btrim(v)) >= 4 THEN
                    names := names || pg_catalog.lower(pg_catalog.btrim(v));
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
    emails := ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(emails) x);
    phones := ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(phones) x);
    iins := ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(iins) x);
    names := ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(names) x);
END
$$;
COMMENT ON FUNCTION pdp._subject_identifiers(text) IS
    'internal: a subject''s e-mails, phones (national digits), IINs and names (lower case) from their classified columns, normalised for the trace search';

-- LIKE patterns finding each value anywhere in a text: the value, its
-- wildcards and escape character escaped, between %.
CREATE FUNCTION pdp._like_patterns(vals text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce(pg_catalog.array_agg('%' OPERATOR(pg_catalog.||)
                    pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(v, E'\\', E'\\\\'), '%', E'\\%'), '_', E'\\_')
                    OPERATOR(pg_catalog.||) '%'), '{}')
  FROM pg_catalog.unnest(vals) v WHERE v IS NOT NULL AND v OPERATOR(pg_catalog.<>) ''
$$;
COMMENT ON FUNCTION pdp._like_patterns(text[]) IS 'internal: LIKE patterns that find each value anywhere in a text (wildcards escaped)';

-- Where the given normalised identifiers (see pdp._subject_identifiers)
-- appear: every ordinary table outside pdp's and the system's schemas, one
-- scan per table and one count per text, varchar and json(b) column, read
-- as the table's owner.  Internal, so that erasure can gather a subject's
-- identifiers first and sweep after it has erased them.
CREATE FUNCTION pdp._find_traces(emails text[], phones text[], iins text[], names text[])
RETURNS TABLE (table_name regclass, column_name name, rows bigint, registered boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    exprs text;
    counts bigint[];
BEGIN
    IF coalesce(pg_catalog.cardinality(emails), 0) + coalesce(pg_catalog.cardinality(phones), 0)
       + coalesce(pg_catalog.cardinality(iins), 0) + coalesce(pg_catalog.cardinality(names), 0) = 0 THEN
        RETURN;
    END IF;
    FOR t IN SELECT c.oid::regclass AS rel,
                    pg_catalog.array_agg(a.attname ORDER BY a.attnum) AS cols
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
                AND n.nspname NOT IN ('pdp', 'pg_catalog', 'information_schema', 'pg_toast', 'cron')
                AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
                AND a.atttypid IN ('text'::regtype, 'character varying'::regtype, 'json'::regtype, 'jsonb'::regtype)
              GROUP BY c.oid ORDER BY c.oid::regclass::text LOOP
        -- Normalised matching: e-mails and names in any case, phones with
        -- their separators removed, IINs with their spaces removed.  Each
        -- kind is one LIKE ANY over its patterns (the values, their LIKE
        -- wildcards escaped, between %), and a kind with no identifier is
        -- left out, so a row costs a few string operations, not a subquery
        -- per identifier.
        SELECT pg_catalog.string_agg(pg_catalog.format(
                   'pg_catalog.count(*) FILTER (WHERE t.%1$I IS NOT NULL AND (false%2$s%3$s%4$s))', u.c,
                   CASE WHEN pg_catalog.cardinality(emails) > 0 OR pg_catalog.cardinality(names) > 0
                        THEN pg_catalog.format(' OR pg_catalog.lower(t.%I::text) OPERATOR(pg_catalog.~~) ANY ($1)', u.c) ELSE '' END,
                   CASE WHEN pg_catalog.cardinality(phones) > 0
                        THEN pg_catalog.format(' OR pg_catalog.translate(t.%I::text, ''- ().'', '''') OPERATOR(pg_catalog.~~) ANY ($2)', u.c) ELSE '' END,
                   CASE WHEN pg_catalog.cardinality(iins) > 0
                        THEN pg_catalog.format(' OR pg_catalog.replace(t.%I::text, '' '', '''') OPERATOR(pg_catalog.~~) ANY ($3)', u.c) ELSE '' END),
                   ', ' ORDER BY u.o)
          INTO exprs FROM pg_catalog.unnest(t.cols) WITH ORDINALITY AS u(c, o);
        SELECT x.n INTO counts
          FROM pdp._exec_as_owner(t.rel, pg_catalog.format('SELECT ARRAY[%s]::bigint[] FROM %s t', exprs, t.rel),
                                  pdp._like_patterns(coalesce(emails, '{}') || coalesce(names, '{}')),
                                  pdp._like_patterns(coalesce(phones, '{}')), pdp._like_patterns(coalesce(iins, '{}')))
               AS x(n bigint[]);
        FOR i IN 1 .. pg_catalog.cardinality(t.cols) LOOP
            CONTINUE WHEN counts[i] = 0;
            table_name := t.rel;
            column_name := t.cols[i];
            rows := counts[i];
            registered := EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) t.rel)
                          AND (EXISTS (SELECT 1 FROM pdp.column_rule r JOIN pg_catalog.pg_attribute a
                                         ON a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) r.attnum
                                        WHERE r.tbl OPERATOR(pg_catalog.=) t.rel AND a.attname OPERATOR(pg_catalog.=) t.cols[i])
                               OR EXISTS (SELECT 1 FROM pdp.eav_attribute e JOIN pg_catalog.pg_attribute a
                                         ON a.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) e.value_attnum
                                        WHERE e.tbl OPERATOR(pg_catalog.=) t.rel AND a.attname OPERATOR(pg_catalog.=) t.cols[i]));
            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp._find_traces(text[], text[], text[], text[]) IS
    'internal: where normalised identifiers appear in any text, varchar or json(b) column outside pdp: table, column, row count, whether classified; never a value';

CREATE FUNCTION pdp.find_subject_traces(subject text)
RETURNS TABLE (table_name regclass, column_name name, rows bigint, registered boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids record;
    kinds integer;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO ids FROM pdp._subject_identifiers(subject);
    kinds := pg_catalog.cardinality(ids.emails) + pg_catalog.cardinality(ids.phones)
             + pg_catalog.cardinality(ids.iins) + pg_catalog.cardinality(ids.names);
    IF kinds = 0 THEN
        RAISE NOTICE 'no identifiers of the subject were found in classified columns, so nothing was searched for'
            USING HINT = 'Classify e-mail, phone, IIN, username and name columns (pdp.set_column_rule, pdp.register_eav), and search before an erasure: afterwards the subject''s values are gone.';
    END IF;
    RETURN QUERY SELECT * FROM pdp._find_traces(ids.emails, ids.phones, ids.iins, ids.names);
    PERFORM pdp._audit('find_subject_traces', NULL, subject, pg_catalog.jsonb_build_object('identifiers', kinds));
END
$$;
COMMENT ON FUNCTION pdp.find_subject_traces(text) IS
    'where a subject''s e-mails, phones, IINs and names (from their classified columns, normalised) still appear in any text, varchar or json(b) column: table, column, row count, whether the column is classified; never a value';
CREATE FUNCTION pdp.find_subject_traces(subject bigint)
RETURNS TABLE (table_name regclass, column_name name, rows bigint, registered boolean)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT * FROM pdp.find_subject_traces(subject::text) $$;
COMMENT ON FUNCTION pdp.find_subject_traces(bigint) IS 'find_subject_traces for a bigint or integer subject';
CREATE FUNCTION pdp.find_subject_traces(subject uuid)
RETURNS TABLE (table_name regclass, column_name name, rows bigint, registered boolean)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT * FROM pdp.find_subject_traces(subject::text) $$;
COMMENT ON FUNCTION pdp.find_subject_traces(uuid) IS 'find_subject_traces for a uuid subject';
