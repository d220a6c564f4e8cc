-- The record of processing (GDPR Art. 30; the list of necessary personal data,
-- Law 94-V Art. 25), PII discovery, and the compliance report.

CREATE FUNCTION pdp._classify_value(value text) RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_classify_value_sql';
COMMENT ON FUNCTION pdp._classify_value(text) IS
    'iin, bin, card, email, phone or ip when a value passes that validator (check digits, Luhn, syntax); else NULL';
CREATE FUNCTION pdp._is_placeholder(value text) RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_is_placeholder_sql';
COMMENT ON FUNCTION pdp._is_placeholder(text) IS
    'true for empty, blank and placeholder values (-, n/a, none, null, 0, ...), which discovery does not count against a validator';
CREATE FUNCTION pdp._scan_text(value text) RETURNS integer[]
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_scan_text_sql';
COMMENT ON FUNCTION pdp._scan_text(text) IS
    'how many e-mail addresses, phone numbers and IINs a free text or JSON value holds, as {emails, phones, iins}; never the values';

-- Special categories (GDPR Art. 9): refused as a category unless
-- pdp.allow_special_categories is on (cap.kz's policy says it collects none).
CREATE TABLE pdp.special_category (name text PRIMARY KEY, meaning text NOT NULL);
COMMENT ON TABLE pdp.special_category IS 'category names treated as special categories of personal data (read-only)';
COMMENT ON COLUMN pdp.special_category.name IS 'the category name, lower case';
COMMENT ON COLUMN pdp.special_category.meaning IS 'what it covers';
INSERT INTO pdp.special_category VALUES
    ('health', 'health data'), ('medical', 'health data'), ('disability', 'health data'),
    ('religion', 'religious or philosophical beliefs'), ('religious_beliefs', 'religious or philosophical beliefs'),
    ('political_views', 'political opinions'), ('political_opinions', 'political opinions'),
    ('biometrics', 'biometric data'), ('biometric', 'biometric data'), ('genetic', 'genetic data'),
    ('ethnic_origin', 'racial or ethnic origin'), ('racial_origin', 'racial or ethnic origin'),
    ('trade_union', 'trade union membership'), ('sex_life', 'sex life or sexual orientation'),
    ('sexual_orientation', 'sex life or sexual orientation');

-- Column-name evidence, in Kazakh, Russian and English.
CREATE TABLE pdp.name_hint (category text NOT NULL, pattern text NOT NULL, PRIMARY KEY (category, pattern));
COMMENT ON TABLE pdp.name_hint IS 'column-name patterns (case-insensitive regular expressions) suggesting a category';
COMMENT ON COLUMN pdp.name_hint.category IS 'the category the name suggests';
COMMENT ON COLUMN pdp.name_hint.pattern IS 'the regular expression';
INSERT INTO pdp.name_hint VALUES
    ('email', '(^|_)(e_?mail|email_?address|mail|почта|пошта|электрон)'),
    ('phone', '(phone|^tel|_tel|mobile|msisdn|телефон|ұялы)'),
    ('iin', '(^|_)(iin|иин|жсн|ssn|national_id)($|_)'),
    ('name', '(^fio$|фио|full_?name|first_?name|last_?name|surname|^name$|имя|фамилия|отчество|^аты|тегі)'),   -- ^name$ only in tables of people (pdp.discover)
    ('address', '(address|^addr|адрес|мекенжай)'),
    ('ip', '(^|_)(ip|ip_?addr)($|_)'),
    ('card', '(card_?(no|num)|^pan$|карт)'),
    ('birth_date', '(birth|^dob$|рожден|туған)'),
    ('passport', '(passport|паспорт|удостоверен|куәлік)'),
    ('credential', '(passw|secret|token|hash|salt|api_?key|private_?key|пароль|құпия)'),
    ('identifier', '(^|_)(id_?number|student_?(no|num|number|id)|matric(ulation)?_?(no|number)?|employee_?(no|number)|табельн)($|_)'),
    ('free_text', '(^|_)(description|bio|about|message|fullmessage|comment|remarks?|feedback|signature|описание|пікір)($|_)');

-- A sample of a column's values, classified: how many were sampled, the
-- commonest category and how many had it.  The sample is read as the
-- table's owner, whoever asks (the table's code never runs with a
-- superuser's or a DPO's rights); the caller must be allowed to read the table.
CREATE FUNCTION pdp._sample_column(tbl regclass, col name, pct float8, sample_rows integer,
                                   OUT n_sampled bigint, OUT top_k text, OUT top_n bigint)
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp._sample_column(regclass, name, float8, integer) IS
    'samples and classifies a column''s values as the table''s owner, for a caller who may read the table';

CREATE FUNCTION pdp._api__sample_column(tbl regclass, col name, pct float8, sample_rows integer,
                                        OUT n_sampled bigint, OUT top_k text, OUT top_n bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR col IS NULL OR pct IS NULL OR sample_rows IS NULL OR pct <= 0 OR pct > 100 OR sample_rows < 1 THEN
        RAISE EXCEPTION 'table, column, a percentage in (0, 100] and a positive sample size must be given'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_catalog.has_table_privilege(pdp._caller(), tbl, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', pdp._relname(tbl) USING ERRCODE = 'insufficient_privilege';
    END IF;
    WITH s AS (SELECT pdp._classify_value(x.v) AS k
                 FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                          'SELECT x.%1$I::text FROM %2$s x TABLESAMPLE SYSTEM (%3$s) WHERE x.%1$I IS NOT NULL LIMIT %4$s',
                          col, tbl, pct, sample_rows)) AS x(v text))
    SELECT (SELECT pg_catalog.count(*) FROM s), top.k, top.n INTO n_sampled, top_k, top_n
      FROM (SELECT 1) one LEFT JOIN
           (SELECT s.k, pg_catalog.count(*) AS n FROM s WHERE s.k IS NOT NULL GROUP BY s.k ORDER BY 2 DESC LIMIT 1) top ON true;
END
$$;
COMMENT ON FUNCTION pdp._api__sample_column(regclass, name, float8, integer) IS
    'pdp._sample_column''s implementation, run as pdp_ext''s owner (callable by no role)';

-- EAV (entity-attribute-value) columns: one value column told apart by an
-- attribute column (Moodle's mdl_user_info_data.data by fieldid).  Each
-- attribute value is classified on its own; discovery samples the value
-- column per attribute, and masked views apply each attribute's rule.
CREATE TABLE pdp.eav_attribute (
    tbl              regclass    NOT NULL,
    value_col        name        NOT NULL,
    value_attnum     smallint    NOT NULL,
    attribute_col    name        NOT NULL,
    attribute_attnum smallint    NOT NULL,
    attribute_value  text        NOT NULL,
    category         text        NOT NULL,
    rule             text        REFERENCES pdp.rule_kind(rule),
    declared_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    declared_by      name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (tbl, value_attnum, attribute_value)
);
COMMENT ON TABLE pdp.eav_attribute IS 'classified attributes of EAV value columns; read pdp.eav_attributes instead';
COMMENT ON COLUMN pdp.eav_attribute.tbl IS 'the table';
COMMENT ON COLUMN pdp.eav_attribute.value_col IS 'the column holding the values';
COMMENT ON COLUMN pdp.eav_attribute.value_attnum IS 'its attribute number, resolved from value_col on every write';
COMMENT ON COLUMN pdp.eav_attribute.attribute_col IS 'the column telling the values apart (e.g. fieldid)';
COMMENT ON COLUMN pdp.eav_attribute.attribute_attnum IS 'its attribute number, resolved from attribute_col on every write';
COMMENT ON COLUMN pdp.eav_attribute.attribute_value IS 'the attribute column''s value (its text form) whose values this row classifies';
COMMENT ON COLUMN pdp.eav_attribute.category IS 'personal-data category of those values (iin, phone, birth_date, address, ...)';
COMMENT ON COLUMN pdp.eav_attribute.rule IS 'the rule masked views apply to those values, or NULL';
COMMENT ON COLUMN pdp.eav_attribute.declared_at IS 'when it was declared';
COMMENT ON COLUMN pdp.eav_attribute.declared_by IS 'who declared it';
SELECT pg_catalog.pg_extension_config_dump('pdp.eav_attribute', '');

-- Validates every write to pdp.eav_attribute and resolves both attnums.
CREATE FUNCTION pdp._eav_attribute_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    val record;
    att smallint;
    misfit text;
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
        RAISE EXCEPTION 'cannot register an EAV column of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_has_role(pdp._caller(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table "%"', rel.relname USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT a.attnum, a.atttypid, a.atttypmod, a.attnotnull INTO val FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) NEW.tbl::oid AND a.attname OPERATOR(pg_catalog.=) NEW.value_col
       AND NOT a.attisdropped AND a.attnum > 0;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', NEW.value_col, rel.relname USING ERRCODE = 'undefined_column';
    END IF;
    SELECT a.attnum INTO att FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) NEW.tbl::oid AND a.attname OPERATOR(pg_catalog.=) NEW.attribute_col
       AND NOT a.attisdropped AND a.attnum > 0;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', NEW.attribute_col, rel.relname USING ERRCODE = 'undefined_column';
    END IF;
    IF att OPERATOR(pg_catalog.=) val.attnum THEN
        RAISE EXCEPTION 'the attribute column must differ from the value column' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.eav_attribute e WHERE e.tbl OPERATOR(pg_catalog.=) NEW.tbl
                 AND e.value_attnum OPERATOR(pg_catalog.=) val.attnum AND e.attribute_attnum OPERATOR(pg_catalog.<>) att) THEN
        RAISE EXCEPTION 'column "%" of table "%" is told apart by another attribute column', NEW.value_col, rel.relname
            USING ERRCODE = 'invalid_parameter_value', HINT = 'One value column has one attribute column; drop its attributes first.';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) NEW.tbl
                 AND s.attnum OPERATOR(pg_catalog.=) val.attnum) THEN
        RAISE EXCEPTION 'column "%" of table "%" is a registered subject column', NEW.value_col, rel.relname
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.category OPERATOR(pg_catalog.=) '' OR pg_catalog.length(NEW.category) > 63 THEN
        RAISE EXCEPTION 'category must be 1 to 63 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.attribute_value OPERATOR(pg_catalog.=) '' OR pg_catalog.length(NEW.attribute_value) > 200 THEN
        RAISE EXCEPTION 'attribute value must be 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pdp.special_category sc WHERE sc.name OPERATOR(pg_catalog.=) pg_catalog.lower(NEW.category))
       AND NOT coalesce(pg_catalog.current_setting('pdp.allow_special_categories', true)::boolean, false) THEN
        RAISE EXCEPTION 'category "%" is a special category of personal data', NEW.category
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A superuser may set pdp.allow_special_categories = on if the operator processes them lawfully.';
    END IF;
    IF NEW.rule IS NOT NULL THEN
        misfit := pdp._rule_misfit(NEW.rule, val.atttypid, val.atttypmod, val.attnotnull);
        IF misfit IS NOT NULL THEN
            RAISE EXCEPTION 'rule "%" does not fit column "%" of table "%"', NEW.rule, NEW.value_col, rel.relname
                USING ERRCODE = 'datatype_mismatch',
                      DETAIL = pg_catalog.format('The column is %s: %s.', pg_catalog.format_type(val.atttypid, val.atttypmod), misfit);
        END IF;
    END IF;
    NEW.value_attnum := val.attnum;
    NEW.attribute_attnum := att;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._eav_attribute_check() IS 'trigger: validates and resolves every write to pdp.eav_attribute';
CREATE TRIGGER eav_attribute_check BEFORE INSERT OR UPDATE ON pdp.eav_attribute
    FOR EACH ROW EXECUTE FUNCTION pdp._eav_attribute_check();

CREATE FUNCTION pdp.register_eav(tbl regclass, value_column name, attribute_column name, attribute_value text,
                                 category text, rule text DEFAULT NULL) RETURNS void
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.register_eav(regclass, name, name, text, text, text) IS
    'classifies the values of an EAV column that have one attribute value (e.g. fieldid = ''1'' holds IINs), with an optional rule for masked views; one call per attribute, a repeated call replaces';

CREATE FUNCTION pdp._api_register_eav(tbl regclass, value_column name, attribute_column name, attribute_value text,
                                      category text, rule text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    IF value_column IS NULL OR attribute_column IS NULL OR attribute_value IS NULL OR category IS NULL THEN
        RAISE EXCEPTION 'value column, attribute column, attribute value and category must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF rule IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pdp.rule_kind k WHERE k.rule OPERATOR(pg_catalog.=) _api_register_eav.rule) THEN
        RAISE EXCEPTION 'unknown column rule' USING ERRCODE = 'invalid_parameter_value', HINT = 'pdp.rule_kind lists the rules.';
    END IF;
    IF rule = 'shred' THEN  -- (src/sql/33_shred.sql)
        RAISE EXCEPTION 'rule "shred" cannot classify an EAV attribute'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Shredding encrypts values on write under their row''s subject''s key; an EAV attribute''s rule applies when the value is read.',
                  HINT = 'Shred the whole value column with pdp.set_column_rule, or choose another rule.';
    END IF;
    IF rule IN ('pseudonym', 'pseudo_email', 'pseudo_phone', 'pseudo_iin', 'pseudo_name', 'pseudo_ip', 'encrypt', 'fpe_iin')
       AND NOT pg_catalog.pg_has_role(pdp._caller(), 'pdp_pseudonymiser', 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to declare keyed column rule "%"', rule
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Declare it as a member of pdp_pseudonymiser, or choose a mask.';
    END IF;
    INSERT INTO pdp.eav_attribute AS e (tbl, value_col, value_attnum, attribute_col, attribute_attnum, attribute_value,
                                        category, rule, declared_by)
    VALUES (tbl, value_column, 0, attribute_column, 0, attribute_value, category, rule, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT eav_attribute_pkey DO UPDATE
       SET category = EXCLUDED.category, rule = EXCLUDED.rule, attribute_col = EXCLUDED.attribute_col,
           declared_at = pg_catalog.now(), declared_by = EXCLUDED.declared_by;
    PERFORM pdp._refresh_masked_views(tbl);
    PERFORM pdp._audit('register_eav', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('column', value_column, 'attribute_column', attribute_column,
                                                     'attribute_value', attribute_value, 'category', category, 'rule', rule));
END
$$;
COMMENT ON FUNCTION pdp._api_register_eav(regclass, name, name, text, text, text) IS
    'pdp.register_eav''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE FUNCTION pdp.drop_eav(tbl regclass, value_column name, attribute_value text) RETURNS boolean
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp.drop_eav(regclass, name, text) IS
    'removes one attribute''s classification of an EAV column; false if there was none';

CREATE FUNCTION pdp._api_drop_eav(tbl regclass, value_column name, attribute_value text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    DELETE FROM pdp.eav_attribute e
     WHERE e.tbl OPERATOR(pg_catalog.=) _api_drop_eav.tbl AND e.value_col OPERATOR(pg_catalog.=) _api_drop_eav.value_column
       AND e.attribute_value OPERATOR(pg_catalog.=) _api_drop_eav.attribute_value;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pdp._refresh_masked_views(tbl);
    PERFORM pdp._audit('drop_eav', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('column', value_column, 'attribute_value', attribute_value));
    RETURN true;
END
$$;
COMMENT ON FUNCTION pdp._api_drop_eav(regclass, name, text) IS
    'pdp.drop_eav''s implementation, run as pdp_ext''s owner (callable by no role)';

CREATE VIEW pdp.eav_attributes AS
SELECT e.tbl AS table_name, v.attname AS value_column, a.attname AS attribute_column, e.attribute_value,
       e.category, e.rule, e.declared_at, e.declared_by
  FROM pdp.eav_attribute e
  JOIN pg_catalog.pg_attribute v ON v.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND v.attnum OPERATOR(pg_catalog.=) e.value_attnum
                                AND NOT v.attisdropped
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) e.attribute_attnum
                                AND NOT a.attisdropped;
COMMENT ON VIEW pdp.eav_attributes IS 'classified attributes of EAV columns, with current column names';

-- Does the table hold data about a person?  It has a registered subject
-- column, a column naming a user, or a name like a table of people.
-- Discovery trusts column names (name hints) only in such tables.
CREATE FUNCTION pdp._relates_to_subject(tbl regclass, people_only boolean DEFAULT false) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (NOT people_only AND EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) _relates_to_subject.tbl))
        OR (NOT people_only AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attnum > 0 AND NOT a.attisdropped
                      AND a.attname OPERATOR(pg_catalog.~*) '^(user_?id|user|username|user_?id_?(from|to)|related_?user_?id|learner_?id|student_?id|person_?id|member_?id|author_?id|subject_?id|account_?id)$'))
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::oid
                      AND c.relname OPERATOR(pg_catalog.~*) '(^|_)(users?|persons?|people|learners?|students?|members?|accounts?|profiles?|employees?|staff|customers?|clients?)$')
$$;
COMMENT ON FUNCTION pdp._relates_to_subject(regclass, boolean) IS
    'whether a table holds data about a person (a registered subject column, a user-like column, or a people-like name; with people_only, the name only): discovery trusts column names only there';

-- A sample of a column's values, profiled: per attribute value (or one
-- group when attr_col is NULL) how many were sampled, how many were blank
-- or placeholders, the commonest category of the others and how many had
-- it, and, when scan is on, how many values hold e-mails, phones or IINs
-- inside their text.  Read as the table's owner; never a value.
CREATE FUNCTION pdp._profile_column(tbl regclass, col name, pct float8, sample_rows integer, scan boolean, attr_col name)
RETURNS jsonb
LANGUAGE C AS $$MODULE_PATHNAME$$, $$pdp_api_call$$;   -- dollar-quoted like SQL bodies, for the update-script tooling
COMMENT ON FUNCTION pdp._profile_column(regclass, name, float8, integer, boolean, name) IS
    'samples and profiles a column''s values (per attribute value of attr_col) as the table''s owner, for a caller who may read the table; counts only';

CREATE FUNCTION pdp._api__profile_column(tbl regclass, col name, pct float8, sample_rows integer, scan boolean, attr_col name)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
BEGIN
    IF tbl IS NULL OR col IS NULL OR pct IS NULL OR sample_rows IS NULL OR scan IS NULL
       OR pct <= 0 OR pct > 100 OR sample_rows < 1 OR sample_rows > 1000000 THEN
        RAISE EXCEPTION 'table, column, a percentage in (0, 100], a sample size from 1 to 1000000 and scan must be given'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_catalog.has_table_privilege(pdp._caller(), tbl, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', pdp._relname(tbl) USING ERRCODE = 'insufficient_privilege';
    END IF;
    WITH s AS (SELECT x.a, x.v, pdp._is_placeholder(x.v) AS ph
                 FROM pdp._exec_as_owner(tbl, pg_catalog.format(
                          'SELECT %5$s, x.%1$I::text FROM %2$s x TABLESAMPLE SYSTEM (%3$s) WHERE x.%1$I IS NOT NULL '
                          'ORDER BY pg_catalog.random() LIMIT %4$s',
                          col, tbl, pct, sample_rows,
                          CASE WHEN attr_col IS NULL THEN 'NULL::text' ELSE pg_catalog.format('x.%I::text', attr_col) END))
                      AS x(a text, v text)),
         c AS (SELECT s.a, s.ph, CASE WHEN NOT s.ph THEN pdp._classify_value(s.v) END AS k,
                      CASE WHEN scan AND NOT s.ph THEN pdp._scan_text(s.v) END AS h FROM s),
         g AS (SELECT c.a, pg_catalog.count(*) AS n, pg_catalog.count(*) FILTER (WHERE c.ph) AS blank,
                      pg_catalog.count(*) FILTER (WHERE c.h[1] > 0 OR c.h[2] > 0 OR c.h[3] > 0) AS text_values,
                      pg_catalog.count(*) FILTER (WHERE c.h[1] > 0) AS email_values,
                      pg_catalog.count(*) FILTER (WHERE c.h[2] > 0) AS phone_values,
                      pg_catalog.count(*) FILTER (WHERE c.h[3] > 0) AS iin_values,
                      coalesce(pg_catalog.sum(c.h[1]), 0) AS emails, coalesce(pg_catalog.sum(c.h[2]), 0) AS phones,
                      coalesce(pg_catalog.sum(c.h[3]), 0) AS iins
                 FROM c GROUP BY c.a),
         t AS (SELECT DISTINCT ON (c.a) c.a, c.k, pg_catalog.count(*) AS n FROM c WHERE c.k IS NOT NULL
                GROUP BY c.a, c.k ORDER BY c.a, pg_catalog.count(*) DESC, c.k)
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'attribute', g.a, 'sampled', g.n, 'blank', g.blank, 'top', t.k, 'top_n', coalesce(t.n, 0),
               'text_values', g.text_values, 'email_values', g.email_values, 'phone_values', g.phone_values,
               'iin_values', g.iin_values, 'emails', g.emails, 'phones', g.phones, 'iins', g.iins) ORDER BY g.a)
      INTO r
      FROM g LEFT JOIN t ON t.a IS NOT DISTINCT FROM g.a;
    RETURN coalesce(r, '[]');
END
$$;
COMMENT ON FUNCTION pdp._api__profile_column(regclass, name, float8, integer, boolean, name) IS
    'pdp._profile_column''s implementation, run as pdp_ext''s owner (callable by no role)';

-- One finding from a profile group (see pdp._profile_column), or NULL:
-- values that pass a validator (80% of the non-blank ones), else
-- personal data inside free text.  Integer columns are only ever IINs,
-- BINs or cards.
CREATE FUNCTION pdp._finding(g jsonb, numeric_column boolean, by_name text,
                             OUT category text, OUT confidence real, OUT evidence text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint := (g->>'sampled')::bigint;
    blank bigint := (g->>'blank')::bigint;
    nonblank bigint := n - blank;
    top text := g->>'top';
    top_n bigint := (g->>'top_n')::bigint;
    tv bigint := coalesce((g->>'text_values')::bigint, 0);
    skipped text := CASE WHEN blank > 0 THEN pg_catalog.format('; %s empty or placeholder values not counted', blank) ELSE '' END;
BEGIN
    IF top IS NOT NULL AND nonblank > 0 AND top_n::float8 / nonblank >= 0.8
       AND (NOT numeric_column OR top IN ('iin', 'bin', 'card')) THEN
        category := top;
        confidence := LEAST(1.0, top_n::float8 / nonblank + CASE WHEN by_name = top THEN 0.1 ELSE 0 END);
        evidence := pg_catalog.format('%s of %s non-empty sampled values pass the %s check%s%s', top_n, nonblank,
                                      CASE top WHEN 'iin' THEN 'IIN check-digit' WHEN 'bin' THEN 'BIN check-digit'
                                               WHEN 'card' THEN 'Luhn card-number' WHEN 'email' THEN 'e-mail syntax'
                                               WHEN 'phone' THEN 'Kazakh phone-number' ELSE 'IP address' END,
                                      skipped,
                                      CASE WHEN by_name IS NOT NULL THEN '; the column''s name suggests ' || by_name ELSE '' END);
    ELSIF tv > 0 AND NOT numeric_column THEN
        category := 'free_text';
        confidence := LEAST(1.0, 0.6 + 0.4 * tv::float8 / GREATEST(nonblank, 1));
        evidence := pg_catalog.format('personal data inside the text of %s of %s non-empty sampled values: '
                                      '%s e-mail addresses (in %s values), %s phone numbers (in %s), %s IINs (in %s)',
                                      tv, nonblank, g->>'emails', g->>'email_values', g->>'phones', g->>'phone_values',
                                      g->>'iins', g->>'iin_values');
    END IF;
END
$$;
COMMENT ON FUNCTION pdp._finding(jsonb, boolean, text) IS
    'a discovery finding from one profile group: validated values, or personal data inside free text; NULL when neither';

CREATE FUNCTION pdp.discover(schema_name name DEFAULT 'public', sample_rows integer DEFAULT 1000)
RETURNS TABLE (table_name regclass, column_name name, category text, confidence real, evidence text, attribute text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    a record;
    g jsonb;
    prof jsonb;
    f record;
    fc text;
    fconf real;
    fev text;
    est float8;
    pct float8;
    pct_text float8;
    relates boolean;
    by_name text;
    numeric_column boolean;
    textual boolean;
    found_any boolean;
    attr_col name;
    attr_name name;
BEGIN
    IF schema_name IS NULL OR sample_rows IS NULL OR sample_rows < 1 OR sample_rows > 1000000 THEN
        RAISE EXCEPTION 'schema_name must be given and sample_rows between 1 and 1000000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) schema_name) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema_name USING ERRCODE = 'invalid_schema_name';
    END IF;
    FOR t IN SELECT c.oid::regclass AS rel, c.reltuples, c.relpages FROM pg_class c JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
              WHERE n.nspname OPERATOR(pg_catalog.=) schema_name AND c.relkind IN ('r', 'p')
                AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                AND pg_catalog.has_table_privilege(c.oid, 'SELECT') ORDER BY c.relname LOOP
        -- A sample, never the whole table: a share of its pages, then at most
        -- sample_rows rows in random order (ten times as many for free text,
        -- where personal data is sparse).  A table never analysed is sized
        -- from its pages.
        est := CASE WHEN t.reltuples > 0 THEN t.reltuples
                    ELSE pg_catalog.pg_relation_size(t.rel)::float8 / 8192 * 50 END;
        pct := CASE WHEN est <= sample_rows * 3 THEN 100 ELSE LEAST(100, GREATEST(0.01, sample_rows * 300.0 / est)) END;
        pct_text := CASE WHEN est <= sample_rows * 30 THEN 100 ELSE LEAST(100, GREATEST(0.01, sample_rows * 3000.0 / est)) END;
        relates := pdp._relates_to_subject(t.rel);
        -- An attribute-like integer column makes the table a candidate EAV
        -- table.  Integer only: discovery prints the attribute's value
        -- (fieldid = 3), which in a text column could be a person's name.
        SELECT att.attname INTO attr_name FROM pg_attribute att
         WHERE att.attrelid OPERATOR(pg_catalog.=) t.rel::oid AND att.attnum > 0 AND NOT att.attisdropped
           AND att.atttypid IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype)
           AND att.attname OPERATOR(pg_catalog.~*) '^(field_?id|attribute_?id|attr_?id|property_?id|param(eter)?_?id|type_?id|key_?id)$'
         ORDER BY att.attnum LIMIT 1;
        FOR a IN SELECT att.attname, att.attnum, att.atttypid::regtype AS typ FROM pg_attribute att
                  WHERE att.attrelid OPERATOR(pg_catalog.=) t.rel::oid AND att.attnum > 0 AND NOT att.attisdropped
                    AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) t.rel
                                      AND r.attnum OPERATOR(pg_catalog.=) att.attnum)
                    AND NOT EXISTS (SELECT 1 FROM pdp.subject_column s WHERE s.tbl OPERATOR(pg_catalog.=) t.rel
                                      AND s.attnum OPERATOR(pg_catalog.=) att.attnum)
                    AND NOT EXISTS (SELECT 1 FROM pdp.credential_column cc WHERE cc.tbl OPERATOR(pg_catalog.=) t.rel
                                      AND cc.attnum OPERATOR(pg_catalog.=) att.attnum)
                  ORDER BY att.attnum LOOP
            table_name := t.rel;
            column_name := a.attname;
            attribute := NULL;
            numeric_column := a.typ IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype, 'numeric'::regtype,
                                        'real'::regtype, 'double precision'::regtype, 'oid'::regtype, 'boolean'::regtype);
            textual := a.typ IN ('text'::regtype, 'character varying'::regtype, 'json'::regtype, 'jsonb'::regtype);
            -- Column names count only in tables about people; integer and
            -- boolean columns are never e-mail, address, phone or name.
            by_name := NULL;
            IF relates THEN
                SELECT h.category INTO by_name FROM pdp.name_hint h WHERE a.attname ~* h.pattern
                 ORDER BY h.category OPERATOR(pg_catalog.=) 'credential' DESC, h.category OPERATOR(pg_catalog.=) 'email' DESC, h.category
                 LIMIT 1;
                -- A bare "name" names a person only in a table of people (mdl_event.name names an event).
                IF by_name OPERATOR(pg_catalog.=) 'name' AND a.attname OPERATOR(pg_catalog.~*) '^name$'
                   AND NOT pdp._relates_to_subject(t.rel, true) THEN
                    by_name := NULL;
                END IF;
                IF numeric_column AND by_name NOT IN ('iin', 'birth_date', 'identifier') THEN
                    by_name := NULL;
                END IF;
                IF by_name OPERATOR(pg_catalog.=) 'credential' AND a.typ NOT IN ('text'::regtype, 'character varying'::regtype,
                                                                               'character'::regtype, 'bytea'::regtype) THEN
                    by_name := NULL;
                END IF;
            END IF;
            -- Credentials are never sampled.
            IF by_name OPERATOR(pg_catalog.=) 'credential' THEN
                category := 'credential';
                confidence := 0.5;
                evidence := 'the column''s name suggests a credential (password, secret, token or hash); pdp.declare_credential keeps it out of exports and masked views';
                RETURN NEXT;
                CONTINUE;
            END IF;
            -- A registered EAV column: the attributes nobody classified, one by one.
            SELECT e.attribute_col INTO attr_col FROM pdp.eav_attribute e
             WHERE e.tbl OPERATOR(pg_catalog.=) t.rel AND e.value_attnum OPERATOR(pg_catalog.=) a.attnum LIMIT 1;
            IF FOUND THEN
                prof := pdp._profile_column(t.rel, a.attname, pct_text, LEAST(sample_rows * 10, 1000000), textual, attr_col);
                FOR g IN SELECT x FROM pg_catalog.jsonb_array_elements(prof) x
                          WHERE NOT EXISTS (SELECT 1 FROM pdp.eav_attribute e WHERE e.tbl OPERATOR(pg_catalog.=) t.rel
                                              AND e.value_attnum OPERATOR(pg_catalog.=) a.attnum
                                              AND e.attribute_value OPERATOR(pg_catalog.=) (x->>'attribute')) LOOP
                    SELECT x.category, x.confidence, x.evidence INTO fc, fconf, fev FROM pdp._finding(g, numeric_column, NULL) x;
                    IF fc IS NOT NULL THEN
                        category := fc;
                        confidence := fconf;
                        evidence := fev || '; an EAV attribute not yet classified (pdp.register_eav)';
                        attribute := pg_catalog.format('%s = %s', attr_col, g->>'attribute');
                        RETURN NEXT;
                    END IF;
                END LOOP;
                CONTINUE;
            END IF;
            found_any := false;
            IF textual OR numeric_column OR a.typ IN ('character'::regtype, 'inet'::regtype) THEN
                prof := pdp._profile_column(t.rel, a.attname, CASE WHEN textual THEN pct_text ELSE pct END,
                                            CASE WHEN textual THEN LEAST(sample_rows * 10, 1000000) ELSE sample_rows END, textual, NULL);
                g := prof->0;
                IF g IS NOT NULL THEN
                    -- As a whole column, values first; an EAV-shaped table's
                    -- mixed value column is then tried attribute by attribute,
                    -- and last the whole column's free text.
                    SELECT x.category, x.confidence, x.evidence INTO fc, fconf, fev
                      FROM pdp._finding(g - 'text_values', numeric_column, by_name) x;
                    IF fc IS NULL AND attr_name IS NOT NULL AND attr_name OPERATOR(pg_catalog.<>) a.attname
                       AND a.attname OPERATOR(pg_catalog.~*) '^(data|value|val|content)$' THEN
                        FOR f IN SELECT x AS g, y.category, y.confidence, y.evidence
                                   FROM pg_catalog.jsonb_array_elements(
                                            pdp._profile_column(t.rel, a.attname, pct_text, LEAST(sample_rows * 10, 1000000), textual, attr_name)) x,
                                        LATERAL pdp._finding(x, numeric_column, NULL) y
                                  -- At least three non-empty values per attribute: one-off settings are no pattern.
                                  WHERE y.category IS NOT NULL
                                    AND (x->>'sampled')::bigint - (x->>'blank')::bigint >= 3 LOOP
                            category := f.category;
                            confidence := f.confidence;
                            evidence := f.evidence || '; the column looks like an EAV value column (pdp.register_eav classifies it per attribute)';
                            attribute := pg_catalog.format('%s = %s', attr_name, f.g->>'attribute');
                            found_any := true;
                            RETURN NEXT;
                        END LOOP;
                        attribute := NULL;
                    END IF;
                    IF fc IS NULL AND NOT found_any THEN
                        SELECT x.category, x.confidence, x.evidence INTO fc, fconf, fev
                          FROM pdp._finding(g, numeric_column, by_name) x;
                    END IF;
                    IF fc IS NOT NULL THEN
                        category := fc;
                        confidence := fconf;
                        evidence := fev;
                        found_any := true;
                        RETURN NEXT;
                    END IF;
                END IF;
            END IF;
            IF NOT found_any AND by_name IS NOT NULL THEN
                category := by_name;
                confidence := CASE WHEN g IS NULL OR (g->>'sampled')::bigint OPERATOR(pg_catalog.=) (g->>'blank')::bigint
                                        OR by_name NOT IN ('email', 'phone', 'iin', 'ip', 'card') THEN 0.5 ELSE 0.3 END;
                evidence := CASE WHEN g IS NULL OR (g->>'sampled')::bigint = 0
                                 THEN 'the column''s name suggests ' || by_name || ' (no values sampled)'
                                 WHEN (g->>'sampled')::bigint OPERATOR(pg_catalog.=) (g->>'blank')::bigint
                                 THEN pg_catalog.format('the column''s name suggests %s (all %s sampled values are empty or placeholders)', by_name, g->>'sampled')
                                 WHEN by_name NOT IN ('email', 'phone', 'iin', 'ip', 'card')
                                 THEN pg_catalog.format('the column''s name suggests %s (%s non-empty sampled values; no validator checks %s)', by_name,
                                                        (g->>'sampled')::bigint - (g->>'blank')::bigint, by_name)
                                 ELSE pg_catalog.format('the column''s name suggests %s (%s of %s non-empty sampled values passed a check)', by_name,
                                                        coalesce(g->>'top_n', '0'), (g->>'sampled')::bigint - (g->>'blank')::bigint) END;
                RETURN NEXT;
            END IF;
            g := NULL;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pdp.discover(name, integer) IS
    'finds personal data nobody classified yet: validated values (blanks and placeholders not counted), personal data inside free text and JSON, EAV attributes one by one, column names in tables about people, credential candidates; never prints a value';

-- Columns of registered tables that nobody classified: not findings (no
-- evidence of personal data), but a list to review.
CREATE VIEW pdp.unclassified_columns AS
SELECT s.tbl AS table_name, a.attname AS column_name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type
  FROM (SELECT DISTINCT sc.tbl FROM pdp.subject_column sc) s
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE NOT EXISTS (SELECT 1 FROM pdp.subject_column x WHERE x.tbl OPERATOR(pg_catalog.=) s.tbl AND x.attnum OPERATOR(pg_catalog.=) a.attnum)
   AND NOT EXISTS (SELECT 1 FROM pdp.column_rule r WHERE r.tbl OPERATOR(pg_catalog.=) s.tbl AND r.attnum OPERATOR(pg_catalog.=) a.attnum)
   AND NOT EXISTS (SELECT 1 FROM pdp.credential_column c WHERE c.tbl OPERATOR(pg_catalog.=) s.tbl AND c.attnum OPERATOR(pg_catalog.=) a.attnum)
   AND NOT EXISTS (SELECT 1 FROM pdp.eav_attribute e WHERE e.tbl OPERATOR(pg_catalog.=) s.tbl AND e.value_attnum OPERATOR(pg_catalog.=) a.attnum);
COMMENT ON VIEW pdp.unclassified_columns IS
    'columns of registered tables with no rule, category, credential or EAV declaration and not a subject column: to review, not findings';

-- The record of processing.
CREATE VIEW pdp.processing_register AS
SELECT s.tbl AS table_name,
       r.col AS column_name,
       r.category,
       r.rule,
       (SELECT pg_catalog.array_agg(x.col ORDER BY x.attnum) FROM pdp.subject_column x
         WHERE x.tbl OPERATOR(pg_catalog.=) s.tbl) AS subject_columns,
       -- Purposes some role may declare and that role may read the table.
       (SELECT pg_catalog.array_agg(DISTINCT p.purpose || ' (' || p.legal_basis || ')')
          FROM pdp.purpose p JOIN pdp.purpose_grant g ON g.purpose OPERATOR(pg_catalog.=) p.purpose
         WHERE pg_catalog.has_table_privilege(g.role, s.tbl, 'SELECT')) AS purposes,
       (SELECT p.period::text || ' from ' || coalesce(p.anchor_column::text, 'insertion')
               || CASE WHEN p.fallback_column IS NOT NULL THEN ' (else ' || p.fallback_column::text || ')' ELSE '' END
               || ', then ' || p.action
          FROM pdp.retention_policy p WHERE p.tbl OPERATOR(pg_catalog.=) s.tbl) AS retention,
       (SELECT pg_catalog.array_agg(DISTINCT rc.name || ' (' || rc.country ||
                                    CASE WHEN rc.country <> 'KZ' THEN ', cross-border under ' || rc.safeguards ELSE '' END || ')')
          FROM pdp.disclosure d JOIN pdp.recipient rc ON rc.name OPERATOR(pg_catalog.=) d.recipient
         WHERE r.category OPERATOR(pg_catalog.=) ANY (d.categories)) AS recipients,
       CASE WHEN c.relforcerowsecurity AND EXISTS (SELECT 1 FROM pg_policy pp WHERE pp.polrelid OPERATOR(pg_catalog.=) c.oid
                                                     AND pp.polname = 'pdp_select') THEN 'protected, forced'
            WHEN EXISTS (SELECT 1 FROM pg_policy pp WHERE pp.polrelid OPERATOR(pg_catalog.=) c.oid AND pp.polname = 'pdp_select')
                 THEN 'protected'
            ELSE 'not protected' END
       || CASE WHEN r.col IS NOT NULL AND pdp._on_write_enabled(s.tbl) THEN ', pseudonymised on write' ELSE '' END AS protection
  FROM (SELECT DISTINCT sc.tbl FROM pdp.subject_column sc) s
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.tbl::oid
  -- Ruled columns (never credentials, which the register does not show),
  -- and each classified attribute of an EAV column as "column [attribute = value]".
  LEFT JOIN (SELECT x.tbl, x.col, x.category, x.rule FROM pdp.column_rule x
              WHERE NOT EXISTS (SELECT 1 FROM pdp.credential_column cc WHERE cc.tbl OPERATOR(pg_catalog.=) x.tbl
                                  AND cc.attnum OPERATOR(pg_catalog.=) x.attnum)
             UNION ALL
             SELECT e.tbl, pg_catalog.format('%s [%s = %s]', e.value_col, e.attribute_col, e.attribute_value)::name,
                    e.category, e.rule FROM pdp.eav_attribute e) r ON r.tbl OPERATOR(pg_catalog.=) s.tbl;
COMMENT ON VIEW pdp.processing_register IS
    'record of processing: per registered table and classified column, category, rule, subjects, purposes, retention, recipients, protection';

-- Report ---------------------------------------------------------------------

CREATE FUNCTION pdp._html(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
             coalesce(s, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;') $$;
COMMENT ON FUNCTION pdp._html(text) IS 'escapes text for HTML';

-- Names in the Markdown report (tables, columns, purposes, evidence) are
-- chosen by whoever made them: inline HTML is turned into entities, Markdown's
-- punctuation is escaped with a backslash and line breaks become spaces, so a
-- name renders as the text it is and cannot add markup, links or table cells.
CREATE FUNCTION pdp._md(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.regexp_replace(
             pg_catalog.translate(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                 s, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), E'\r\n', '  '),
             '([\\`*_{}\[\]()#!|~])', '\\\1', 'g') $$;
COMMENT ON FUNCTION pdp._md(text) IS 'escapes text for Markdown: inline HTML as entities, punctuation with a backslash, line breaks as spaces';

-- How many rows of a table retained from an anchor column expire within 30
-- days, and how many have expired: counted as the table's owner, for
-- whoever reads the report.
CREATE FUNCTION pdp._expiry_counts(tbl regclass, OUT soon bigint, OUT overdue bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
BEGIN
    SELECT * INTO p FROM pdp.retention_policy r WHERE r.tbl OPERATOR(pg_catalog.=) _expiry_counts.tbl AND r.anchor_column IS NOT NULL;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT x.soon, x.overdue INTO soon, overdue
      FROM pdp._exec_as_owner(tbl, pg_catalog.format(
               'SELECT pg_catalog.count(*) FILTER (WHERE e >= pg_catalog.now() AND e < pg_catalog.now() + interval ''30 days''), '
               'pg_catalog.count(*) FILTER (WHERE e < pg_catalog.now()) FROM (SELECT pdp._expiry(t.%I, %L::interval) e FROM %s t) x',
               p.anchor_column, p.period::text, tbl)) AS x(soon bigint, overdue bigint);
END
$$;
COMMENT ON FUNCTION pdp._expiry_counts(regclass) IS
    'rows of an anchor-retained table expiring within 30 days and already expired, counted as the table''s owner';

-- The report's facts from pdp's own tables that not every reader of the
-- report may select (consents, restrictions, the registry): counts only,
-- no subject, read as the extension's owner.  Whatever lives in users'
-- tables is read by pdp._report_json with the caller's rights.
CREATE FUNCTION pdp._report_counts() RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT pg_catalog.jsonb_build_object(
    'schemas', coalesce((SELECT pg_catalog.jsonb_agg(DISTINCT n.nspname ORDER BY n.nspname)
                           FROM pdp.subject_column s JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.tbl::oid
                           JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace), '[]'),
    'consents', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'purpose', pu.purpose, 'legal_basis', pu.legal_basis, 'requires_consent', pu.requires_consent,
                    'active', (SELECT pg_catalog.count(*) FROM pdp.consent_state s WHERE s.purpose OPERATOR(pg_catalog.=) pu.purpose
                                 AND (s.valid_until IS NULL OR s.valid_until OPERATOR(pg_catalog.>) pg_catalog.now())),
                    'withdrawn_last_30_days', (SELECT pg_catalog.count(*) FROM pdp.consent_event e
                                 WHERE e.purpose OPERATOR(pg_catalog.=) pu.purpose AND e.action OPERATOR(pg_catalog.=) 'withdraw'
                                   AND e.at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '30 days'))) ORDER BY pu.purpose)
                    FROM pdp.purpose pu), '[]'),
    'restricted_subjects', (SELECT pg_catalog.count(*) FROM pdp.restriction)) $$;
COMMENT ON FUNCTION pdp._report_counts() IS
    'the compliance report''s counts from pdp''s own tables (consents, restrictions, registered schemas), for every role that reads the report';

CREATE FUNCTION pdp._report_json() RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    findings jsonb := '[]';
    sch name;
    retention jsonb := '[]';
    p record;
    soon bigint;
    overdue bigint;
    counts jsonb := pdp._report_counts();
    audit record;
BEGIN
    SELECT * INTO audit FROM pdp.verify_audit_log();
    FOR sch IN SELECT x FROM pg_catalog.jsonb_array_elements_text(counts->'schemas') x LOOP
        findings := findings || coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                        'table', d.table_name::text, 'column', d.column_name, 'attribute', d.attribute, 'category', d.category,
                        'confidence', pg_catalog.round(d.confidence::numeric, 2), 'evidence', d.evidence))
                      FROM pdp.discover(sch, 200) d), '[]');
    END LOOP;
    -- Real misses first: the most confident findings (values checked), then
    -- what only a column's name suggests, credential candidates last.
    findings := coalesce((SELECT pg_catalog.jsonb_agg(x ORDER BY (x->>'category') OPERATOR(pg_catalog.=) 'credential',
                                                      (x->>'confidence')::numeric DESC, x->>'table', x->>'column', x->>'attribute')
                            FROM pg_catalog.jsonb_array_elements(findings) x), '[]');
    FOR p IN SELECT * FROM pdp.retention_policy ORDER BY tbl::text LOOP
        soon := NULL;
        overdue := NULL;
        IF p.anchor_column IS NOT NULL THEN
            SELECT c.soon, c.overdue INTO soon, overdue FROM pdp._expiry_counts(p.tbl) c;
        ELSE
            SELECT pg_catalog.count(*) FILTER (WHERE g.expires_at >= pg_catalog.now() AND g.expires_at < pg_catalog.now() + interval '30 days'),
                   pg_catalog.count(*) FILTER (WHERE g.expires_at < pg_catalog.now())
              INTO soon, overdue FROM pdp.retention_tag g WHERE g.tbl OPERATOR(pg_catalog.=) p.tbl::oid;
        END IF;
        retention := retention || pg_catalog.jsonb_build_object('table', p.tbl::text, 'period', p.period::text,
                        'action', p.action, 'expiring_in_30_days', soon, 'expired_not_purged', overdue);
    END LOOP;
    r := pg_catalog.jsonb_build_object(
        'title', 'pdp_ext compliance report',
        'database', pg_catalog.current_database(),
        'generated_at', pg_catalog.now(),
        'register', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x) ORDER BY x.table_name::text, x.column_name)
                                FROM pdp.processing_register x), '[]'),
        'unclassified_findings', findings,
        'columns_without_rule', (SELECT pg_catalog.count(*) FROM pdp.unclassified_columns),
        'consents', counts->'consents',
        'retention', retention,
        'last_purge', (SELECT pg_catalog.jsonb_build_object('started_at', l.started_at, 'status', l.status, 'rows', l.total_rows,
                                                            'held_back', l.held_back)
                         FROM pdp.purge_run l WHERE NOT l.dry_run ORDER BY l.id DESC LIMIT 1),
        'scheduled_purge', pdp._purge_schedule_status(),
        'inactivity', (SELECT pg_catalog.jsonb_build_object('table', sr.activity_table::text, 'column', sr.activity_column,
                                                            'period', sr.period::text, 'never_values', sr.never_values,
                                                            'fallback_column', sr.fallback_column)
                         FROM pdp.subject_retention sr),
        'system_subjects', (SELECT pg_catalog.count(*) FROM pdp.system_subject),
        'holds_in_force', (SELECT pg_catalog.count(*) FROM pdp.holds h WHERE h.in_force),
        'restricted_subjects', counts->'restricted_subjects',
        'overdue_requests', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', o.id, 'kind', o.kind,
                                'jurisdiction', o.jurisdiction, 'due_at', o.due_at) ORDER BY o.due_at) FROM pdp.overdue_requests o), '[]'),
        'pending_notices', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('recipient', x.recipient, 'count', x.n) ORDER BY x.recipient)
                                       FROM (SELECT n.recipient, pg_catalog.count(*) AS n FROM pdp.pending_notices n GROUP BY 1) x), '[]'),
        'recipients', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(rc) - 'defined_by' ORDER BY rc.name) FROM pdp.recipients rc), '[]'),
        'audit', pg_catalog.to_jsonb(audit) OPERATOR(pg_catalog.-) 'nodes',
        'k_anonymity', pdp._k_anonymity_findings());
    -- On a Citus coordinator with workers (verify_audit_log gave nodes; else
    -- nothing changes): every node's audit chain and reversals, and the key
    -- fingerprints compared.
    IF audit.nodes IS NOT NULL THEN
        r := r OPERATOR(pg_catalog.||) pdp._report_nodes(audit.nodes, audit.ok);
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION pdp._report_json() IS 'the compliance report''s facts as JSON';

-- The report's facts about the nodes of a Citus cluster, collected on read
-- (nodes and ok as pdp.verify_audit_log gave them, and pdp.key_status): nodes,
-- one object per node with its audit chain's verification, its reversals
-- and whether its key fingerprints match the coordinator's; reversals, in
-- all and on workers; key_mismatch.
CREATE FUNCTION pdp._report_nodes(nodes jsonb, cluster_ok boolean) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keys jsonb;
BEGIN
    SELECT coalesce(pg_catalog.jsonb_object_agg(k.node, k.differs), '{}') INTO keys
      FROM (SELECT s.node, pg_catalog.bool_or(s.mismatch) AS differs FROM pdp.key_status() s GROUP BY s.node) k;
    RETURN pg_catalog.jsonb_build_object(
        'nodes', (SELECT pg_catalog.jsonb_agg(x OPERATOR(pg_catalog.||)
                                              pg_catalog.jsonb_build_object('key_mismatch', keys->(x->>'node')) ORDER BY i)
                    FROM pg_catalog.jsonb_array_elements(nodes) WITH ORDINALITY AS e(x, i)),
        'reversals', pg_catalog.jsonb_build_object(
            'total', (SELECT pg_catalog.sum((x->>'reversals')::bigint) FROM pg_catalog.jsonb_array_elements(nodes) x),
            'on_workers', (SELECT coalesce(pg_catalog.sum((x->>'reversals')::bigint), 0) FROM pg_catalog.jsonb_array_elements(nodes) x
                            WHERE x->>'node' OPERATOR(pg_catalog.<>) 'coordinator')),
        -- true: some node's fingerprints differ; NULL: none differ, but some could not be read.
        'key_mismatch', (SELECT CASE WHEN pg_catalog.bool_or(d::boolean) THEN true
                                     WHEN pg_catalog.bool_or(d IS NULL) THEN NULL ELSE false END
                           FROM pg_catalog.jsonb_each_text(keys) AS j(n, d)),
        'cluster_audit_ok', cluster_ok);
END
$$;
COMMENT ON FUNCTION pdp._report_nodes(jsonb, boolean) IS
    'the compliance report''s facts about a Citus cluster''s nodes: each node''s audit chain, reversals and key fingerprints (collected on read)';

CREATE FUNCTION pdp.report(format text DEFAULT 'html') RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j jsonb;
    out text;
    x jsonb;
    maxv numeric;
    y integer;
    bars text;
BEGIN
    IF format IS NULL OR format NOT IN ('html', 'markdown', 'json') THEN
        RAISE EXCEPTION 'unknown report format' USING ERRCODE = 'invalid_parameter_value', HINT = 'Use html, markdown or json.';
    END IF;
    j := pdp._report_json();
    PERFORM pdp._audit('report', format);
    IF format = 'json' THEN
        RETURN pg_catalog.jsonb_pretty(j);
    END IF;

    IF format = 'markdown' THEN
        out := '# ' || pdp._md(j->>'title') || E'\n\nDatabase `' || pdp._md(j->>'database') || '`, ' || pdp._md(j->>'generated_at') || E'.\n\n';
        out := out || E'## Audit trail\n\n' || CASE WHEN (j->'audit'->>'ok')::boolean
                 THEN 'The hash chain verifies: ' || pdp._md(j->'audit'->>'entries') || E' entries.\n\n'
                 WHEN j ? 'nodes' AND j->'audit'->>'first_bad_id' IS NULL
                 THEN E'**The audit trail does not verify on every node** (see the table below).\n\n'
                 ELSE '**The hash chain is broken** at entry ' || pdp._md(j->'audit'->>'first_bad_id') || E'.\n\n' END;
        IF j ? 'nodes' THEN
            out := out || CASE WHEN (j->>'key_mismatch')::boolean
                                THEN E'**The key file differs between nodes**: pseudonyms computed on the flagged workers differ.\n\n'
                                WHEN (j->>'key_mismatch')::boolean IS NULL
                                THEN E'**The key fingerprints of some nodes could not be read.**\n\n'
                                ELSE E'Every node has the same key fingerprints.\n\n' END
                       || 'Reversals recorded: ' || pdp._md(j->'reversals'->>'total') || ', ' || pdp._md(j->'reversals'->>'on_workers')
                       || E' of them on workers.\n\n| node | audit chain | entries | reversals | key |\n|---|---|---:|---:|---|\n';
            FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'nodes') LOOP
                out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s |\n', pdp._md(x->>'node'),
                           CASE WHEN (x->>'ok')::boolean THEN 'verifies' WHEN (x->>'ok')::boolean IS FALSE THEN '**broken**: '
                                ELSE '**not verified**: ' END || CASE WHEN (x->>'ok')::boolean THEN '' ELSE pdp._md(coalesce(x->>'message', '')) END,
                           coalesce(pdp._md(x->>'entries'), '—'), coalesce(pdp._md(x->>'reversals'), '—'),
                           CASE WHEN (x->>'key_mismatch')::boolean THEN '**differs**' WHEN (x->>'key_mismatch')::boolean IS FALSE THEN 'same'
                                ELSE '—' END);
            END LOOP;
            out := out || E'\n';
        END IF;
        out := out || E'## Record of processing\n\n| table | column | category | rule | purposes | retention | recipients | protection |\n|---|---|---|---|---|---|---|---|\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'register') LOOP
            out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s | %s | %s | %s |\n', pdp._md(x->>'table_name'), coalesce(pdp._md(x->>'column_name'), '—'),
                       coalesce(pdp._md(x->>'category'), '—'), coalesce(pdp._md(x->>'rule'), '—'), coalesce(pdp._md(x->>'purposes'), '—'),
                       coalesce(pdp._md(x->>'retention'), '—'), coalesce(pdp._md(x->>'recipients'), '—'), pdp._md(x->>'protection'));
        END LOOP;
        out := out || E'\n## Personal data not yet classified\n\n';
        IF pg_catalog.jsonb_array_length(j->'unclassified_findings') = 0 THEN
            out := out || E'None found.\n';
        ELSE
            out := out || E'| table | column | category | confidence | evidence |\n|---|---|---|---|---|\n';
            FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'unclassified_findings') LOOP
                out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s |\n', pdp._md(x->>'table'),
                                                pdp._md((x->>'column') || coalesce(' [' || (x->>'attribute') || ']', '')), pdp._md(x->>'category'),
                                                pdp._md(x->>'confidence'), pdp._md(x->>'evidence'));
            END LOOP;
        END IF;
        out := out || E'\nColumns of registered tables without a rule (not findings; `pdp.unclassified_columns` lists them): '
                   || pdp._md(j->>'columns_without_rule') || E'.\n';
        out := out || E'\n## Consents\n\n| purpose | legal basis | active consents | withdrawn in the last 30 days |\n|---|---|---:|---:|\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'consents') LOOP
            out := out || pg_catalog.format(E'| %s | %s | %s | %s |\n', pdp._md(x->>'purpose'), pdp._md(x->>'legal_basis'), pdp._md(x->>'active'), pdp._md(x->>'withdrawn_last_30_days'));
        END LOOP;
        out := out || E'\n## Retention\n\n| table | period | action | expiring in 30 days | expired, not purged |\n|---|---|---|---:|---:|\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'retention') LOOP
            out := out || pg_catalog.format(E'| %s | %s | %s | %s | %s |\n', pdp._md(x->>'table'), pdp._md(x->>'period'), pdp._md(x->>'action'),
                                            pdp._md(coalesce(x->>'expiring_in_30_days', 'not readable')),
                                            pdp._md(coalesce(x->>'expired_not_purged', 'not readable')));
        END LOOP;
        IF j->'inactivity' IS NOT NULL AND j->'inactivity' <> 'null'::jsonb THEN
            out := out || E'\nInactivity: a subject''s rows expire ' || pdp._md(j->'inactivity'->>'period') || ' after their last '
                       || pdp._md((j->'inactivity'->>'table') || '.' || (j->'inactivity'->>'column'))
                       || CASE WHEN pg_catalog.jsonb_array_length(j->'inactivity'->'never_values') > 0
                               THEN ' (' || pdp._md(pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.jsonb_array_elements_text(j->'inactivity'->'never_values')), ', '))
                                    || ' meaning never)' ELSE '' END
                       || coalesce(', else ' || pdp._md(j->'inactivity'->>'fallback_column'), '')
                       || '; system subjects, never purged: ' || pdp._md(j->>'system_subjects') || E'.\n';
        END IF;
        out := out || E'\nLast purge: ' || coalesce(pdp._md(j->'last_purge'->>'started_at') || ', ' || pdp._md(j->'last_purge'->>'status') || ', '
                                                    || pdp._md(j->'last_purge'->>'rows') || ' rows', 'none') || E'.\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(coalesce(j->'last_purge'->'held_back', '[]')) LOOP
            out := out || E'\n**Held back by the safety valve** (pdp.purge\\_max\\_share ' || pdp._md(x->>'max_share') || '): '
                       || coalesce('table ' || pdp._md(x->>'table'), 'inactivity of ' || pdp._md(x->>'inactivity')) || ', the run would have removed '
                       || pdp._md(x->>'would_remove') || ' of ' || pdp._md(x->>'of')
                       || CASE WHEN x ? 'table' THEN ' rows' ELSE ' subjects' END || E'.\n';
        END LOOP;
        out := out || E'\nScheduled purge: ' || CASE
                   WHEN NOT coalesce((j->'scheduled_purge'->>'scheduled')::boolean, false) THEN 'none'
                   WHEN (j->'scheduled_purge'->>'runnable')::boolean THEN 'job ' || pdp._md(j->'scheduled_purge'->>'job') || ' (`'
                        || pdp._md(j->'scheduled_purge'->>'schedule') || '`), pg_cron can run it'
                   ELSE 'job ' || pdp._md(j->'scheduled_purge'->>'job') || ' (`' || pdp._md(j->'scheduled_purge'->>'schedule')
                        || '`), **pg_cron cannot run it**: ' || pdp._md(coalesce(j->'scheduled_purge'->>'problem', '')) || '. Set '
                        || pdp._md(coalesce(j->'scheduled_purge'->>'fix', 'what the problem names')) END || E'.\n';
        IF (j->'scheduled_purge'->'failed_runs_30_days'->>'count')::bigint > 0 THEN
            out := out || E'\n**Scheduled runs that failed in the last 30 days: ' || pdp._md(j->'scheduled_purge'->'failed_runs_30_days'->>'count')
                       || '**, the last at ' || pdp._md(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_at', 'an unknown time')) || ': '
                       || pdp._md(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_message', '(no message)')) || E' (see pdp.purge\\_log).\n';
        END IF;
        out := out || E'\n## Open matters\n\n'
                   || '- Holds in force: ' || pdp._md(j->>'holds_in_force') || E'\n'
                   || '- Restricted subjects: ' || pdp._md(j->>'restricted_subjects') || E'\n'
                   || '- Overdue requests: ' || pg_catalog.jsonb_array_length(j->'overdue_requests') || E'\n'
                   || '- Pending rectification notices: ' || coalesce((SELECT pg_catalog.sum((e->>'count')::int)
                          FROM pg_catalog.jsonb_array_elements(j->'pending_notices') e), 0) || E'\n';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'k_anonymity') e WHERE (e->>'below_min_k')::boolean LOOP
            out := out || '- **Below k-anonymity ' || pdp._md(x->>'min_k') || '**: ' || pdp._md(x->>'table') || ' (k = '
                       || pdp._md(x->>'k') || E' over its quasi-identifiers)\n';
        END LOOP;
        RETURN out;
    END IF;

    -- HTML: one page, no external assets, readable printed; counts as bars.
    out := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>' || pdp._html(j->>'title') || '</title><style>'
        || 'body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}h1{margin-bottom:0}'
        || 'table{border-collapse:collapse;margin:1em 0;width:100%}th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}'
        || 'th{background:#eef}.ok{color:#060}.bad{color:#b00;font-weight:bold}.num{text-align:right}'
        || '@media print{body{margin:0}th{background:none}section{break-inside:avoid}}</style></head><body>'
        || '<h1>' || pdp._html(j->>'title') || '</h1><p>Database <code>' || pdp._html(j->>'database') || '</code>, '
        || pdp._html(j->>'generated_at') || '.</p>';
    out := out || '<section id="audit"><h2>Audit trail</h2>' || CASE WHEN (j->'audit'->>'ok')::boolean
               THEN '<p class="ok">The hash chain verifies: ' || (j->'audit'->>'entries') || ' entries.</p>'
               WHEN j ? 'nodes' AND j->'audit'->>'first_bad_id' IS NULL
               THEN '<p class="bad">The audit trail does not verify on every node (see the table below).</p>'
               ELSE '<p class="bad">The hash chain is broken at entry ' || pdp._html(j->'audit'->>'first_bad_id') || '.</p>' END;
    IF j ? 'nodes' THEN
        out := out || CASE WHEN (j->>'key_mismatch')::boolean
                            THEN '<p class="bad">The key file differs between nodes: pseudonyms computed on the flagged workers differ.</p>'
                            WHEN (j->>'key_mismatch')::boolean IS NULL
                            THEN '<p class="bad">The key fingerprints of some nodes could not be read.</p>'
                            ELSE '<p class="ok">Every node has the same key fingerprints.</p>' END
                   || '<p>Reversals recorded: ' || pdp._html(j->'reversals'->>'total') || ', ' || pdp._html(j->'reversals'->>'on_workers')
                   || ' of them on workers.</p><table><tr><th>Node</th><th>Audit chain</th><th>Entries</th><th>Reversals</th><th>Key</th></tr>';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'nodes') LOOP
            out := out || '<tr><td>' || pdp._html(x->>'node') || '</td>'
                       || CASE WHEN (x->>'ok')::boolean THEN '<td class="ok">verifies</td>'
                               WHEN (x->>'ok')::boolean IS FALSE THEN '<td class="bad">broken: ' || pdp._html(coalesce(x->>'message', '')) || '</td>'
                               ELSE '<td class="bad">not verified: ' || pdp._html(coalesce(x->>'message', '')) || '</td>' END
                       || '<td class="num">' || pdp._html(coalesce(x->>'entries', '—')) || '</td><td class="num">'
                       || pdp._html(coalesce(x->>'reversals', '—')) || '</td>'
                       || CASE WHEN (x->>'key_mismatch')::boolean THEN '<td class="bad">differs</td>'
                               WHEN (x->>'key_mismatch')::boolean IS FALSE THEN '<td class="ok">same</td>' ELSE '<td>—</td>' END || '</tr>';
        END LOOP;
        out := out || '</table>';
    END IF;
    out := out || '</section>';
    out := out || '<section id="register"><h2>Record of processing</h2><table><tr><th>Table</th><th>Column</th><th>Category</th><th>Rule</th>'
               || '<th>Purposes</th><th>Retention</th><th>Recipients</th><th>Protection</th></tr>';
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'register') LOOP
        out := out || '<tr><td>' || pdp._html(x->>'table_name') || '</td><td>' || pdp._html(coalesce(x->>'column_name', '—'))
                   || '</td><td>' || pdp._html(coalesce(x->>'category', '—')) || '</td><td>' || pdp._html(coalesce(x->>'rule', '—'))
                   || '</td><td>' || pdp._html(coalesce(x->>'purposes', '—')) || '</td><td>' || pdp._html(coalesce(x->>'retention', '—'))
                   || '</td><td>' || pdp._html(coalesce(x->>'recipients', '—')) || '</td><td>' || pdp._html(x->>'protection') || '</td></tr>';
    END LOOP;
    out := out || '</table></section><section id="findings"><h2>Personal data not yet classified</h2>';
    IF pg_catalog.jsonb_array_length(j->'unclassified_findings') = 0 THEN
        out := out || '<p class="ok">None found.</p>';
    ELSE
        out := out || '<table><tr><th>Table</th><th>Column</th><th>Category</th><th>Confidence</th><th>Evidence</th></tr>';
        FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'unclassified_findings') LOOP
            out := out || '<tr><td>' || pdp._html(x->>'table') || '</td><td>'
                       || pdp._html((x->>'column') || coalesce(' [' || (x->>'attribute') || ']', '')) || '</td><td>'
                       || pdp._html(x->>'category') || '</td><td class="num">' || pdp._html(x->>'confidence') || '</td><td>'
                       || pdp._html(x->>'evidence') || '</td></tr>';
        END LOOP;
        out := out || '</table>';
    END IF;
    out := out || '<p>Columns of registered tables without a rule (not findings; <code>pdp.unclassified_columns</code> lists them): '
               || pdp._html(j->>'columns_without_rule') || '.</p>';
    -- Consents as horizontal bars (active, and withdrawn in the last 30 days).
    SELECT GREATEST(1, pg_catalog.max((e->>'active')::numeric)) INTO maxv FROM pg_catalog.jsonb_array_elements(j->'consents') e;
    bars := '';
    y := 0;
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'consents') LOOP
        bars := bars || pg_catalog.format('<text x="0" y="%s" font-size="12">%s</text><rect x="160" y="%s" width="%s" height="14" fill="#4a7"/>'
                                          '<text x="%s" y="%s" font-size="12">%s active, %s withdrawn (30 days)</text>',
                    y + 12, pdp._html(x->>'purpose'), y + 1, pg_catalog.round(300 * (x->>'active')::numeric / maxv) + 1,
                    pg_catalog.round(300 * (x->>'active')::numeric / maxv) + 166, y + 12, x->>'active', x->>'withdrawn_last_30_days');
        y := y + 20;
    END LOOP;
    out := out || '</section><section id="consents"><h2>Consents</h2>'
               || pg_catalog.format('<svg xmlns="http://www.w3.org/2000/svg" width="700" height="%s" role="img" aria-label="Consents per purpose">', y + 4)
               || bars || '</svg></section>';
    out := out || '<section id="retention"><h2>Retention</h2><table><tr><th>Table</th><th>Period</th><th>Action</th>'
               || '<th>Expiring in 30 days</th><th>Expired, not purged</th></tr>';
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(j->'retention') LOOP
        out := out || '<tr><td>' || pdp._html(x->>'table') || '</td><td>' || pdp._html(x->>'period') || '</td><td>' || pdp._html(x->>'action')
                   || '</td><td class="num">' || coalesce(x->>'expiring_in_30_days', 'not readable') || '</td><td class="num">'
                   || coalesce(x->>'expired_not_purged', 'not readable') || '</td></tr>';
    END LOOP;
    out := out || '</table>';
    IF j->'inactivity' IS NOT NULL AND j->'inactivity' <> 'null'::jsonb THEN
        out := out || '<p>Inactivity: a subject''s rows expire ' || pdp._html(j->'inactivity'->>'period') || ' after their last <code>'
                   || pdp._html((j->'inactivity'->>'table') || '.' || (j->'inactivity'->>'column')) || '</code>'
                   || CASE WHEN pg_catalog.jsonb_array_length(j->'inactivity'->'never_values') > 0
                           THEN ' (' || pdp._html(pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.jsonb_array_elements_text(j->'inactivity'->'never_values')), ', '))
                                || ' meaning never)' ELSE '' END
                   || coalesce(', else <code>' || pdp._html(j->'inactivity'->>'fallback_column') || '</code>', '')
                   || '; system subjects, never purged: ' || pdp._html(j->>'system_subjects') || '.</p>';
    END IF;
    out := out || '<p>Last purge: ' || pdp._html(coalesce((j->'last_purge'->>'started_at') || ', ' || (j->'last_purge'->>'status')
                                                        || ', ' || (j->'last_purge'->>'rows') || ' rows', 'none')) || '.</p>';
    FOR x IN SELECT * FROM pg_catalog.jsonb_array_elements(coalesce(j->'last_purge'->'held_back', '[]')) LOOP
        out := out || '<p class="bad">Held back by the safety valve (pdp.purge_max_share ' || pdp._html(x->>'max_share') || '): '
                   || pdp._html(coalesce('table ' || (x->>'table'), 'inactivity of ' || (x->>'inactivity'))) || ', the run would have removed '
                   || pdp._html(x->>'would_remove') || ' of ' || pdp._html(x->>'of')
                   || CASE WHEN x ? 'table' THEN ' rows' ELSE ' subjects' END || '.</p>';
    END LOOP;
    out := out || CASE
               WHEN NOT coalesce((j->'scheduled_purge'->>'scheduled')::boolean, false) THEN '<p>Scheduled purge: none.</p>'
               WHEN (j->'scheduled_purge'->>'runnable')::boolean THEN '<p class="ok">Scheduled purge: job ' || pdp._html(j->'scheduled_purge'->>'job')
                    || ' (<code>' || pdp._html(j->'scheduled_purge'->>'schedule') || '</code>), pg_cron can run it.</p>'
               ELSE '<p class="bad">Scheduled purge: job ' || pdp._html(j->'scheduled_purge'->>'job') || ' (<code>'
                    || pdp._html(j->'scheduled_purge'->>'schedule') || '</code>), pg_cron cannot run it: '
                    || pdp._html(coalesce(j->'scheduled_purge'->>'problem', '')) || '. Set ' || pdp._html(coalesce(j->'scheduled_purge'->>'fix', 'what the problem names')) || '.</p>' END;
    IF (j->'scheduled_purge'->'failed_runs_30_days'->>'count')::bigint > 0 THEN
        out := out || '<p class="bad">Scheduled runs that failed in the last 30 days: ' || pdp._html(j->'scheduled_purge'->'failed_runs_30_days'->>'count')
                   || ', the last at ' || pdp._html(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_at', 'an unknown time')) || ': '
                   || pdp._html(coalesce(j->'scheduled_purge'->'failed_runs_30_days'->>'last_message', '(no message)')) || ' (see pdp.purge_log).</p>';
    END IF;
    out := out || '</section>';
    out := out || '<section id="open"><h2>Open matters</h2><ul>'
               || '<li>Holds in force: ' || (j->>'holds_in_force') || '</li>'
               || '<li>Restricted subjects: ' || (j->>'restricted_subjects') || '</li>'
               || '<li>Overdue requests: ' || pg_catalog.jsonb_array_length(j->'overdue_requests') || '</li>'
               || '<li>Pending rectification notices: ' || coalesce((SELECT pg_catalog.sum((e->>'count')::int)
                      FROM pg_catalog.jsonb_array_elements(j->'pending_notices') e), 0) || '</li>'
               || coalesce((SELECT pg_catalog.string_agg('<li class="bad">Below k-anonymity ' || pdp._html(e->>'min_k') || ': '
                                                          || pdp._html(e->>'table') || ' (k = ' || pdp._html(e->>'k')
                                                          || ' over its quasi-identifiers)</li>', '' ORDER BY e->>'table')
                              FROM pg_catalog.jsonb_array_elements(j->'k_anonymity') e WHERE (e->>'below_min_k')::boolean), '')
               || '</ul></section></body></html>';
    RETURN out;
END
$$;
COMMENT ON FUNCTION pdp.report(text) IS
    'the compliance report: register, unclassified findings, consents, retention, holds, requests, notices, tables below pdp.min_k, audit chain (html, markdown or json)';
