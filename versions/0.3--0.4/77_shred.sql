-- Crypto-shredding that reaches backups (issue 17, point 5; helper "shred"):
-- the column rule shred, pdp.unshred, the subject key store's status, and
-- erasure's hook destroying the subject's keys.  See doc/keys.md.

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
CREATE OR REPLACE FUNCTION pdp._shred_subject_column(tbl regclass) RETURNS name
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

CREATE OR REPLACE FUNCTION pdp.unshred(tbl regclass, col name, value text, subject text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_unshred';
COMMENT ON FUNCTION pdp.unshred(regclass, name, text, text) IS
    'the clear value of a shredded value of the column in the subject''s row, for a role that may read the column or a masked view of it; NULL once the subject''s key was destroyed by erasure, or for a value not shredded for that subject';

-- What a static application of the rule (pdp.apply_rules) would do: shred
-- needs each row's subject, which only the on-write trigger sees.
CREATE OR REPLACE FUNCTION pdp._shred_static(value text) RETURNS text
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
CREATE OR REPLACE FUNCTION pdp._shred_erase_keys(subject text) RETURNS jsonb
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_shred_erase_keys';
COMMENT ON FUNCTION pdp._shred_erase_keys(text) IS
    'schedules the destruction of the subject''s shredding keys at commit; returns the receipt''s subject_keys entry (a count, never key material), {} when the subject has none';

CREATE OR REPLACE FUNCTION pdp.subject_key_store_status(OUT path text, OUT subject_keys bigint, OUT bytes bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'pdp_subject_key_store_status';
COMMENT ON FUNCTION pdp.subject_key_store_status() IS
    'where the subject key store is (next to pdp.key_file), how many subject keys it holds and its size; never key material';

-- Changed bodies: masked views read shredded columns through pdp.unshred,
-- apply_rules refuses shred, set_column_rule checks its subject column,
-- erasure destroys the subject's keys (the receipt's subject_keys).
CREATE OR REPLACE FUNCTION pdp._rule_sql(rule text, col name, typ oid) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN k.rule OPERATOR(pg_catalog.=) 'pseudo_ip' AND typ OPERATOR(pg_catalog.<>) 'inet'::regtype
                THEN pg_catalog.format('pdp.pseudo_ip_text(%I)', col)
                -- shred needs the row's subject, which only the on-write trigger sees
                WHEN k.rule OPERATOR(pg_catalog.=) 'shred' THEN pg_catalog.format('pdp._shred_static(%I)', col)
                WHEN k.rule OPERATOR(pg_catalog.=) 'pseudo_ip' THEN pg_catalog.format('pdp.pseudo_ip(%I)', col)
                ELSE pg_catalog.format(k.expr, col) END
      FROM pdp.rule_kind k WHERE k.rule OPERATOR(pg_catalog.=) _rule_sql.rule
$$;

CREATE OR REPLACE FUNCTION pdp._masked_column_sql(tbl regclass, attnum smallint) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    att record;
    rule_ text;
    typ text;
    base text;
    e record;
    arms text := '';
    attr name;
BEGIN
    SELECT a.attname, a.atttypid, a.atttypmod INTO att FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attnum OPERATOR(pg_catalog.=) _masked_column_sql.attnum;
    typ := pg_catalog.format_type(att.atttypid, att.atttypmod);
    IF EXISTS (SELECT 1 FROM pdp.credential_column cc WHERE cc.tbl OPERATOR(pg_catalog.=) _masked_column_sql.tbl
                 AND cc.attnum OPERATOR(pg_catalog.=) _masked_column_sql.attnum) THEN
        RETURN pg_catalog.format('NULL::%s AS %I', typ, att.attname);
    END IF;
    SELECT r.rule INTO rule_ FROM pdp.column_rule r
     WHERE r.tbl OPERATOR(pg_catalog.=) _masked_column_sql.tbl AND r.attnum OPERATOR(pg_catalog.=) _masked_column_sql.attnum;
    base := CASE WHEN rule_ IS NULL THEN pg_catalog.format('%I', att.attname)
                 -- a shredded value in clear for the view's readers, NULL once its subject is erased
                 WHEN rule_ OPERATOR(pg_catalog.=) 'shred'
                 THEN pg_catalog.format('pdp.unshred(%L::pg_catalog.regclass, %L, %I, %I::text)::%s', tbl::oid, att.attname,
                                        att.attname, pdp._shred_subject_column(tbl), typ)
                 ELSE pdp._guarded_rule_sql(tbl, _masked_column_sql.attnum, rule_, att.attname, att.atttypid, typ) END;
    FOR e IN SELECT x.attribute_value, x.rule, a.attname AS attr FROM pdp.eav_attribute x
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.tbl::oid
                                             AND a.attnum OPERATOR(pg_catalog.=) x.attribute_attnum
              WHERE x.tbl OPERATOR(pg_catalog.=) _masked_column_sql.tbl
                AND x.value_attnum OPERATOR(pg_catalog.=) _masked_column_sql.attnum AND x.rule IS NOT NULL
              ORDER BY x.attribute_value LOOP
        arms := arms || pg_catalog.format(' WHEN %L THEN %s', e.attribute_value,
                                          pdp._guarded_rule_sql(tbl, _masked_column_sql.attnum, e.rule, att.attname, att.atttypid, typ));
        attr := e.attr;
    END LOOP;
    IF arms OPERATOR(pg_catalog.<>) '' THEN
        base := pg_catalog.format('CASE %I::text%s ELSE %s END', attr, arms, base);
    END IF;
    RETURN pg_catalog.format('%s AS %I', base, att.attname);
END
$$;

CREATE OR REPLACE FUNCTION pdp._api_set_column_rule(tbl regclass, col name, rule text, category text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pdp._require_owner(tbl);
    -- Distributed and reference tables take rules (pdp.apply_rules rewrites
    -- them by key range; the triggers rules need are refused where they are
    -- installed); Citus local tables are refused.
    IF coalesce(pdp._citus_table_kind(tbl), 'none') NOT IN ('none', 'distributed', 'reference') THEN
        PERFORM pdp._refuse_on_citus(tbl, 'set column rules on');
    END IF;
    IF col IS NULL OR rule IS NULL THEN
        RAISE EXCEPTION 'column and rule must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pdp.rule_kind k WHERE k.rule OPERATOR(pg_catalog.=) _api_set_column_rule.rule) THEN
        RAISE EXCEPTION 'unknown column rule'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'pdp.rule_kind lists the rules.';
    END IF;
    -- A keyed rule makes the table's writers compute tokens: only a role that
    -- may compute them itself declares one (issue 14, class 5).
    IF rule IN ('pseudonym', 'pseudo_email', 'pseudo_phone', 'pseudo_iin', 'pseudo_name', 'pseudo_ip', 'encrypt', 'fpe_iin', 'shred')
       AND NOT pg_catalog.pg_has_role(pdp._caller(), 'pdp_pseudonymiser', 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to declare keyed column rule "%"', rule
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Keyed rules compute deterministic tokens, which whoever computes them can reverse by guessing.',
                  HINT = 'Declare it as a member of pdp_pseudonymiser, or choose a mask.';
    END IF;
    IF rule = 'shred' THEN
        PERFORM pdp._shred_subject_column(tbl);  -- the key of each row's subject encrypts it
    END IF;
    -- On Citus, what apply_rules could not do is refused now (the
    -- distribution column, shred, keyed rules on other types).
    IF pdp._citus_table_kind(tbl) IS NOT NULL THEN
        PERFORM pdp._citus_rule_sql(tbl, rule, col,
                                    (SELECT a.atttypid FROM pg_catalog.pg_attribute a
                                      WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::oid AND a.attname OPERATOR(pg_catalog.=) col
                                        AND NOT a.attisdropped AND a.attnum > 0), '');
    END IF;
    INSERT INTO pdp.column_rule AS r (tbl, col, attnum, rule, category, set_by)
    VALUES (tbl, col, 0, rule, category, pg_catalog.pg_get_userbyid(pdp._caller()))
    ON CONFLICT ON CONSTRAINT column_rule_pkey DO UPDATE
       SET rule = EXCLUDED.rule, category = EXCLUDED.category,
           set_at = pg_catalog.now(), set_by = EXCLUDED.set_by;
    IF pdp._on_write_enabled(tbl) THEN
        PERFORM pdp._sync_on_write_trigger(tbl, true);
    END IF;
    PERFORM pdp._sync_rectification_trigger(tbl);
    PERFORM pdp._audit('set_column_rule', tbl::text, NULL,
                       pg_catalog.jsonb_build_object('column', col, 'rule', rule, 'category', category));
END
$$;

CREATE OR REPLACE FUNCTION pdp.erase_subject(subject text, reason text, sweep boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    cond text;
    own_cond text;
    cut_cond text;
    co_held text;
    n bigint;
    m bigint;
    rets jsonb;
    tables jsonb := '[]';
    followed jsonb := '[]';
    held text[];
    set_list text;
    anon text;
    cut_actions text;
    erase_values text[];
    f record;
    fit regtype[];
    c record;
    i integer;
    p text;
    withdrawn integer := 0;
    receipt jsonb;
    notices integer;
    forgotten jsonb;
    ids record;
    traces jsonb;
    z record;
BEGIN
    subject := pdp._canonical_subject(subject);  -- one form per subject (issue 14, class 7)
    IF subject IS NULL OR reason IS NULL OR reason = '' THEN
        RAISE EXCEPTION 'subject and reason must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pdp._subject_held(subject) THEN
        RAISE EXCEPTION 'subject is under a legal hold'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Nothing was erased.',
                  HINT = 'pdp.holds lists the hold; pdp.release_hold releases it once its legal ground has ended.';
    END IF;
    -- A system subject (the guest, an administrator, a service account) is
    -- part of the application, not a learner: erasing it would break it.
    IF EXISTS (SELECT 1 FROM pdp.system_subject y WHERE y.subject OPERATOR(pg_catalog.=) erase_subject.subject) THEN
        RAISE EXCEPTION 'subject is a system subject'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Nothing was erased.',
                  HINT = 'If the account really belongs to a person who asked for erasure, pdp.drop_system_subject first.';
    END IF;
    held := ARRAY(SELECT h.subject FROM pdp.hold h WHERE h.subject IS NOT NULL AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()));
    IF sweep IS NULL THEN
        RAISE EXCEPTION 'sweep must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Before anything is erased: afterwards the classified values are gone.
    IF sweep THEN
        SELECT * INTO ids FROM pdp._subject_identifiers(subject);
    END IF;
    fit := pdp._subject_types(subject);
    PERFORM pdp._set_erasing(true);
    FOR t IN SELECT o.tbl FROM pdp._deletion_order() o LOOP
        -- One pass over the table's subject columns builds every condition:
        -- the subject in any column (cond), in an own column (own_cond), in
        -- a link column (cut_cond); a held subject in an own column
        -- (co_held); the cuts (set_list); and "names nobody once cut"
        -- (anon: every subject column NULL, at its erase value, or a cut
        -- column naming the subject).  $3 holds the erase values.
        cond := NULL; own_cond := NULL; cut_cond := NULL; co_held := NULL; set_list := NULL; anon := NULL;
        cut_actions := NULL; erase_values := '{}'; i := 0;
        FOR c IN SELECT * FROM pdp._subject_columns(t, fit) LOOP
            i := i + 1;
            erase_values := erase_values || c.erase_value;
            IF c.fits THEN
                cond := concat_ws(' OR ', cond, pdp._subject_eq_sql(t, c.col, fit));
            END IF;
            IF c.on_erase = 'delete' THEN
                -- (coalesce: a NULL column names nobody, so it must not make the test NULL)
                co_held := concat_ws(' OR ', co_held, pdp._cell_in_sql(t, c.col, '$2'));
                IF c.fits THEN
                    own_cond := concat_ws(' OR ', own_cond, pdp._subject_eq_sql(t, c.col, fit));
                END IF;
            END IF;
            IF c.on_erase IN ('set_null', 'set_value') THEN
                anon := concat_ws(' AND ', anon, pg_catalog.format(
                            '(t.%1$I IS NULL OR t.%1$I OPERATOR(pg_catalog.=) ($3)[%2$s]::%3$s%4$s)', c.col, i, c.typ,
                            CASE WHEN c.fits THEN ' OR ' || pdp._subject_eq_sql(t, c.col, fit) ELSE '' END));
                IF c.fits THEN
                    cut_cond := concat_ws(' OR ', cut_cond, pdp._subject_eq_sql(t, c.col, fit));
                    set_list := concat_ws(', ', set_list, pg_catalog.format(
                                    '%1$I = CASE WHEN %2$s THEN %3$s ELSE t.%1$I END', c.col, pdp._subject_eq_sql(t, c.col, fit),
                                    CASE WHEN c.on_erase = 'set_null' THEN 'NULL' ELSE pg_catalog.format('($3)[%s]::%s', i, c.typ) END));
                    cut_actions := CASE WHEN cut_actions IS NULL OR cut_actions = c.on_erase THEN c.on_erase
                                        ELSE 'set_null+set_value' END;
                END IF;
            ELSE
                anon := concat_ws(' AND ', anon, pg_catalog.format('t.%I IS NULL', c.col));
            END IF;
        END LOOP;
        CONTINUE WHEN cond IS NULL;
        co_held := '(' || coalesce(co_held, 'false') || ')';
        anon := '(' || anon || ')';
        IF EXISTS (SELECT 1 FROM pdp.hold h WHERE h.tbl OPERATOR(pg_catalog.=) t AND h.released_at IS NULL
                     AND (h.until IS NULL OR h.until > pg_catalog.now())) THEN
            SELECT x.n INTO n
              FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE %s', t, cond), subject) AS x(n bigint);
            IF n > 0 THEN
                RAISE EXCEPTION 'table "%" is under a legal hold', pdp._relname(t)
                    USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = 'Nothing was erased.';
            END IF;
            CONTINUE;
        END IF;

        -- 1. Rows the subject owns are deleted (delete wins), and what follows them.
        -- Following links from a Citus table needs a RETURNING list Citus
        -- refuses in a DELETE: the whole erasure is refused, nothing erased.
        IF own_cond IS NOT NULL AND EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) t) THEN
          IF pdp._citus_table_kind(t) IS NOT NULL THEN
            RAISE EXCEPTION 'cannot erase through the links declared from % table "%"', pdp._citus_table_kind(t), pdp._relname(t)
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'Following the links needs the deleted rows'' link columns, which Citus does not return from a DELETE on the shards; nothing was erased.',
                      HINT = 'See "What is refused on Citus tables" in doc/scaling.md: drop the links (pdp.drop_link), or keep the parent table local.';
          END IF;
        END IF;
        IF own_cond IS NOT NULL THEN
            SELECT pg_catalog.count(*), pg_catalog.jsonb_agg(x.r) INTO n, rets
              FROM pdp._exec_as_owner(t, pg_catalog.format('DELETE FROM %s t WHERE (%s) AND NOT %s RETURNING %s',
                                                           t, own_cond, co_held,
                                                           -- (only what links need: Citus refuses a STABLE RETURNING)
                                                           CASE WHEN EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) t)
                                                                THEN pdp._link_returning(t) ELSE 'NULL::jsonb' END),
                                      subject, held) AS x(r jsonb);
            IF n > 0 THEN
                tables := tables || pg_catalog.jsonb_build_object('table', t::text, 'action', 'delete', 'rows', n);
            END IF;
            IF pg_catalog.cardinality(held) > 0 THEN
                SELECT x.n INTO m
                  FROM pdp._exec_as_owner(t, pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE (%s) AND %s',
                                                               t, own_cond, co_held), subject, held) AS x(n bigint);
                IF m > 0 THEN
                    tables := tables || pg_catalog.jsonb_build_object('table', t::text, 'action', 'held', 'rows', m);
                END IF;
            END IF;
            IF n > 0 AND EXISTS (SELECT 1 FROM pdp.link l WHERE l.parent OPERATOR(pg_catalog.=) t) THEN
                -- Another restricted subject's dependants are kept too: restriction bars processing them.
                FOR f IN SELECT * FROM pdp._follow_links(t, rets, ARRAY[subject], held,
                                                         ARRAY(SELECT r.subject FROM pdp.restriction r
                                                                WHERE r.subject OPERATOR(pg_catalog.<>) erase_subject.subject)) LOOP
                    followed := followed || pg_catalog.jsonb_build_object('table', f.tbl::text, 'action', f.action,
                                                                          'via', f.via, 'rows', f.rows);
                END LOOP;
            END IF;
        END IF;

        -- 2. In the rows left, links to the subject are cut, column by column.
        CONTINUE WHEN cut_cond IS NULL;
        -- A row left naming nobody is anonymised: the table's rules, and its
        -- nullable foreign keys into tables with delete columns emptied (an
        -- anonymised grade keeps no link to the deleted enrolment).
        -- Never a column rule: its keyed pseudonym would let the key's holder
        -- re-link the row (76_anonymise.sql); the constants follow the
        -- subject columns' erase values in $3.
        SELECT * INTO z FROM pdp._anonymise_set(t, '$3', i, anon);
        erase_values := erase_values || z.vals;
        set_list := concat_ws(', ', set_list, z.set_list);
        -- On a Citus table, Citus runs the UPDATE on every shard or placement
        -- unless it is refused here (the whole erasure, nothing changed).
        PERFORM pdp._citus_anonymise_check(t, set_list);
        SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE x.anonymised) INTO n, m
          FROM pdp._exec_as_owner(t, pg_catalog.format('UPDATE %s t SET %s WHERE %s RETURNING %s', t, set_list, cut_cond, anon),
                                  subject, held, erase_values) AS x(anonymised boolean);
        IF n > 0 THEN
            tables := tables || pg_catalog.jsonb_build_object('table', t::text, 'action', cut_actions, 'rows', n, 'anonymised', m);
        END IF;
    END LOOP;
    FOR p IN SELECT s.purpose FROM pdp.consent_state s WHERE s.subject OPERATOR(pg_catalog.=) erase_subject.subject LOOP
        PERFORM pdp.withdraw_consent(subject, p);
        withdrawn := withdrawn + 1;
    END LOOP;
    -- Recipients of the learner's data are to be told (GDPR Art. 19); then
    -- pdp's own tables forget the learner (issue 17).
    notices := pdp._raise_notices(subject, 'erasure');
    forgotten := pdp._forget_subject(subject);
    PERFORM pdp._set_erasing(false);
    IF sweep THEN
        traces := coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', tr.table_name::text, 'column', tr.column_name,
                                                                                     'rows', tr.rows, 'registered', tr.registered)
                                                        ORDER BY tr.table_name::text, tr.column_name)
                              FROM pdp._find_traces(ids.emails, ids.phones, ids.iins, ids.names) tr), '[]');
    END IF;
    -- Followed rows, summed per table, action and link column.
    followed := coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', g.t, 'action', g.a, 'via', g.v, 'rows', g.n)
                                                      ORDER BY g.t, g.v, g.a)
                            FROM (SELECT e->>'table' AS t, e->>'action' AS a, e->>'via' AS v, pg_catalog.sum((e->>'rows')::bigint) AS n
                                    FROM pg_catalog.jsonb_array_elements(followed) e GROUP BY 1, 2, 3) g), '[]');
    -- Tables, counts and time: the free-text reason stays out of the receipt,
    -- which must hold no personal value.
    receipt := pg_catalog.jsonb_build_object('subject_pseudonym', pdp._subject_pseudonym(subject),
                                             'erased_at', pg_catalog.now(),
                                             'tables', tables, 'followed', followed, 'consents_withdrawn', withdrawn,
                                             'pdp_tables', forgotten, 'notices_raised', notices);
    IF sweep THEN
        receipt := receipt || pg_catalog.jsonb_build_object('sweep', pg_catalog.jsonb_build_object(
                       'identifiers', pg_catalog.cardinality(ids.emails) + pg_catalog.cardinality(ids.phones)
                                      + pg_catalog.cardinality(ids.iins) + pg_catalog.cardinality(ids.names),
                       'traces', traces));
    END IF;
    receipt := receipt || pdp._shred_erase_keys(subject);  -- crypto-shredding: keys go at commit (src/shred.c)
    INSERT INTO pdp.erasure (subject_pseudonym, receipt) VALUES (pdp._subject_pseudonym(subject), receipt)
    ON CONFLICT (subject_pseudonym) DO UPDATE SET receipt = EXCLUDED.receipt, erased_at = EXCLUDED.erased_at;
    PERFORM pdp._audit('erase_subject', NULL, subject, pg_catalog.jsonb_build_object('tables', tables, 'followed', followed,
                                                                                     'consents_withdrawn', withdrawn)
                                                        || CASE WHEN sweep THEN pg_catalog.jsonb_build_object(
                                                               'sweep_traces', pg_catalog.jsonb_array_length(traces)) ELSE '{}' END);
    RETURN receipt;
END
$$;

CREATE OR REPLACE FUNCTION pdp._api_register_eav(tbl regclass, value_column name, attribute_column name, attribute_value text,
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

REVOKE ALL ON FUNCTION pdp._shred_subject_column(regclass), pdp.unshred(regclass, name, text, text),
    pdp._shred_static(text), pdp._shred_erase_keys(text), pdp.subject_key_store_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.unshred(regclass, name, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION pdp.subject_key_store_status() TO pdp_admin, pdp_auditor;
GRANT EXECUTE ON FUNCTION pdp._shred_subject_column(regclass) TO pdp_admin;
REVOKE ALL ON pdp.shred_domain FROM PUBLIC;
GRANT SELECT ON pdp.shred_domain TO pdp_admin, pdp_auditor;
