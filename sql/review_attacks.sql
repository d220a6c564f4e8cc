-- An outside review of the day's changes (branch review): attacks on the
-- new entry points, as an application role, pdp_admin and pdp_auditor
-- members and a malformed caller.  Each block says what it tries.
\set SHOW_CONTEXT never
\set VERBOSITY terse
CREATE SCHEMA ra;
GRANT USAGE ON SCHEMA ra TO PUBLIC;
CREATE ROLE regress_ra_app;
CREATE ROLE regress_ra_admin IN ROLE pdp_admin;
CREATE ROLE regress_ra_dpo IN ROLE pdp_auditor;
CREATE TABLE ra.users (id bigint PRIMARY KEY, email text);
CREATE TABLE ra.notes (id int PRIMARY KEY, "Learner ""Id"" x" text, body text);
INSERT INTO ra.users VALUES (7107, 'seven@example.org'), (7108, 'eight@example.org');
INSERT INTO ra.notes VALUES (1, '007107', 'a'), (2, 'x7107', 'b'), (3, '7108', 'c'), (4, '7107', 'd');
SELECT pdp.register_table('ra.users', 'id');
SELECT pdp.register_table('ra.notes', 'Learner "Id" x');
SELECT pdp.set_column_rule('ra.notes', 'body', 'mask', 'body');
SELECT pdp.define_purpose('ra_courses', 'contract');
SELECT pdp.define_purpose('ra_news', 'consent');
SELECT pdp.define_recipient('RA Mailer', 'KZ', NULL, 'mails');

-- 1. Rectification notices for a text cell spelling an integer subject
-- ('007107' is learner 7107 where integer and text subject columns are both
-- registered): the recipients of learner 7107's data must be told when the
-- note's classified column changes, as export and erasure find the row.
SELECT pdp.record_disclosure(7107, 'RA Mailer', 'ra_courses', '{body}') > 0 AS disclosed;
UPDATE ra.notes SET body = 'a2' WHERE id = 1;       -- learner 7107, spelled '007107'
UPDATE ra.notes SET body = 'b2' WHERE id = 2;       -- 'x7107': somebody else
UPDATE ra.notes SET body = 'd2' WHERE id = 4;       -- learner 7107, spelled '7107'
SELECT subject, recipient, table_name, columns, count(*) FROM pdp.pending_notices WHERE recipient = 'RA Mailer' GROUP BY 1, 2, 3, 4 ORDER BY 1;
SELECT count(*) AS acknowledged FROM (SELECT pdp.acknowledge_notice(id) FROM pdp.pending_notices WHERE recipient = 'RA Mailer') a;

-- 2. The new internals, as an application role: none may be called.
SET ROLE regress_ra_app;
SELECT pdp._import_check('{}'::pdp.consent_import[]);
SELECT pdp._canonical_subjects('{}');
SELECT pdp._citus_keyed('x', 'pseudonym', 'x');
SELECT pdp._citus_keyed_inet('x', '10.0.0.1');
SELECT pdp._key_set();
SELECT pdp._citus_shard_notices('ra.users', '7', '{email}');
SELECT count(*) FROM pdp._citus_worker_notices();
SELECT pdp._citus_collect_notice(1000000000000001);
SELECT pdp._citus_forget_worker_notices('7', 'x');
SELECT pdp._subject_eq_sql('ra.notes', 'body', '{bigint}');
SELECT pdp._cell_in_sql('ra.notes', 'body', '$1');
SELECT pdp.import_consents('{}');                   -- and so cannot take the import's lock
SELECT pdp._integer_spelling(' +007 ');             -- pure, PUBLIC
RESET ROLE;

-- 3. As pdp_admin and pdp_auditor members: no keyed pseudonym without
-- pdp_pseudonymiser, no forged notice, no erasure helper outside an erasure.
SET ROLE regress_ra_admin;
SELECT pdp._citus_keyed(pdp._key_set(), 'pseudonym', 'x');
SELECT pdp._citus_shard_notices('ra.users', '7', '{email}');
SELECT pdp._citus_collect_notice(1000000000000001);
SELECT pdp._citus_forget_worker_notices('7', 'x');
SELECT count(*) AS worker_notices FROM pdp._citus_worker_notices();   -- no Citus: none
SELECT pdp._import_check('{}'::pdp.consent_import[]);
RESET ROLE;
SET ROLE regress_ra_dpo;
SELECT pdp._key_set();
SELECT pdp._citus_collect_notice(1000000000000001);
SELECT count(*) AS worker_notices FROM pdp._citus_worker_notices();
RESET ROLE;

-- 4. The builders quote an odd column name (quotes, space, capitals).
SELECT pdp._subject_eq_sql('ra.notes', 'Learner "Id" x', '{bigint,text}');
SELECT pdp._cell_in_sql('ra.notes', 'Learner "Id" x', '$1');
SELECT jsonb_array_length(pdp.export_subject(7107::bigint)->'data'->'ra.notes') AS notes_of_7107;

-- 5. Malformed imports: NULL element, NULL fields, non-object evidence,
-- nested credentials, a multi-dimensional array and other bounds.
SELECT pdp._import_check(ARRAY[NULL::pdp.consent_import]);
SELECT pdp._import_check(ARRAY[ROW(NULL, NULL, NULL, NULL, NULL, NULL)::pdp.consent_import]);
SELECT pdp._import_check(ARRAY[ROW('7', NULL, NULL, NULL, NULL, NULL)::pdp.consent_import]);
SELECT pdp._import_check(ARRAY[ROW('7', 'ra_news', NULL, NULL, NULL, NULL)::pdp.consent_import]);
SELECT pdp._import_check(ARRAY[ROW('7', 'ra_news', now(), NULL, '[1]', NULL)::pdp.consent_import]);
SELECT pdp._import_check(ARRAY[ROW('7', 'ra_news', now(), NULL, '"s"', NULL)::pdp.consent_import]);
SELECT pdp._import_check(ARRAY[ROW('7', 'ra_news', now(), NULL, '{"a": [{"b": {"X_PassWord": 1}}]}', NULL)::pdp.consent_import]);
SELECT pdp._import_check(ARRAY[ROW('7', 'ra_news', now(), NULL, '{"a": [[{"api_key": 1}]]}', NULL)::pdp.consent_import]);
SELECT pdp._import_check(ARRAY[ROW('7', 'ra_news', 'infinity', NULL, NULL, NULL)::pdp.consent_import]);
SELECT pdp._import_check(ARRAY[ROW('7', 'ra_news', now(), NULL, NULL, '-infinity')::pdp.consent_import]);
SELECT pdp._import_check(ARRAY[ROW('', 'ra_news', now(), NULL, NULL, NULL)::pdp.consent_import]);
SELECT pdp._import_check(ARRAY[[ROW('007', 'ra_news', now(), NULL, NULL, NULL)::pdp.consent_import,
                                ROW('8', 'ra_news', now(), NULL, NULL, NULL)::pdp.consent_import],
                               [ROW('9', 'ra_news', now(), NULL, NULL, NULL)::pdp.consent_import, NULL]]);
SELECT pdp._import_check(ARRAY[[ROW('007', 'ra_news', now(), NULL, NULL, NULL)::pdp.consent_import,
                                ROW(' +8', 'ra_news', now(), NULL, NULL, NULL)::pdp.consent_import],
                               [ROW('9', 'ra_news', now(), NULL, NULL, NULL)::pdp.consent_import,
                                ROW('x10', 'ra_news', now(), NULL, '{}', NULL)::pdp.consent_import]]);
SELECT pdp._import_check('[5:6]={"(7,ra_news,\"2020-01-01\",,,)","(8,ra_news,\"2020-01-01\",,,)"}'::pdp.consent_import[]);
SELECT pdp._import_check('{}'::pdp.consent_import[]);
SELECT cardinality(pdp._import_check(array_agg(ROW(g::text, 'ra_news', now(), NULL, '{"k": "v"}', NULL)::pdp.consent_import)))
  FROM generate_series(1, 100000) g;
-- A 2-D import lands every row once, each subject canonical.
SELECT pdp.import_consents(ARRAY[[ROW('007', 'ra_news', '2020-01-01', NULL, NULL, NULL)::pdp.consent_import,
                                  ROW('8', 'ra_news', '2020-01-01', NULL, NULL, NULL)::pdp.consent_import],
                                 [ROW('09', 'ra_news', '2020-01-01', NULL, NULL, NULL)::pdp.consent_import,
                                  ROW('10', 'ra_news', '2020-01-01', NULL, NULL, NULL)::pdp.consent_import]]);
SELECT string_agg(subject, ',' ORDER BY subject::int) AS consenting FROM pdp.consent_state WHERE purpose = 'ra_news';

-- 6. pdp._canonical_subjects: NULL elements, two dimensions, bounds.
SELECT pdp._canonical_subjects(ARRAY[['007', NULL], [' +8', '9']]);
SELECT pdp._canonical_subjects('[3:4]={007,NULL}');
SELECT pdp._canonical_subjects('{}');
SELECT pdp._canonical_subjects(ARRAY['x7', NULL]);
SELECT pdp.withdraw_consents(ARRAY[['007', NULL], ['8', NULL]], 'ra_news');
SELECT string_agg(subject, ',' ORDER BY subject::int) AS consenting FROM pdp.consent_state WHERE purpose = 'ra_news';

-- 7. pdp._integer_spelling: overflow, whitespace, signs, '-0', empty.
SELECT n, pdp._integer_spelling(s) AS spelling
  FROM unnest(ARRAY['', ' ', '-', '+', '-0', '+0', '00', ' 7 ', E'\t7\n', '9223372036854775807', '9223372036854775808',
                    '-9223372036854775808', '-9223372036854775809', '0000000000000000000000001', '1e3', '7 7', '--7',
                    '+-7', '0x10']) WITH ORDINALITY AS u(s, n) ORDER BY n;

-- 8. The rectification trigger on a Citus shard (stand-in catalogs, as in
-- sql/citus.sql): the shard's schema is found from its qualified name, also
-- where the schema's name needs quoting (capitals, a space).  A lowercase
-- schema and an odd one each record learner 7107's notice, naming the
-- distributed table; a table that is no shard refuses.
SET allow_system_table_mods = on;
CREATE TABLE pg_catalog.pg_dist_partition (logicalrelid regclass, partmethod "char", colocationid integer, repmodel "char",
                                           partkey text);
CREATE TABLE pg_catalog.pg_dist_local_group (groupid integer);
CREATE TABLE pg_catalog.pg_dist_shard (logicalrelid regclass, shardid bigint);
RESET allow_system_table_mods;
INSERT INTO pg_catalog.pg_dist_local_group VALUES (1);
CREATE SCHEMA ra_sh;
CREATE SCHEMA "RA Shards";
CREATE TABLE ra_sh.t (id int PRIMARY KEY, learner bigint, body text);
CREATE TABLE "RA Shards"."T" (id int PRIMARY KEY, learner bigint, body text);
CREATE TABLE ra_sh.t_102008 (LIKE ra_sh.t);
CREATE TABLE "RA Shards"."T_102009" (LIKE "RA Shards"."T");
CREATE TABLE ra_sh.plain (LIKE ra_sh.t);
CREATE TABLE pdp.citus_disclosure (subject text NOT NULL, recipient text NOT NULL, PRIMARY KEY (subject, recipient));
CREATE TABLE pdp.citus_disclosure_105 (LIKE pdp.citus_disclosure INCLUDING ALL);
INSERT INTO pdp.citus_disclosure_105 VALUES ('7107', 'RA Mailer');
INSERT INTO pg_catalog.pg_dist_partition VALUES ('ra_sh.t', 'h', 1, 's', 'id'), ('"RA Shards"."T"', 'h', 1, 's', 'id'),
                                                 ('pdp.citus_disclosure', 'n', 2, 't', NULL);
INSERT INTO pg_catalog.pg_dist_shard VALUES ('ra_sh.t', 102008), ('"RA Shards"."T"', 102009), ('pdp.citus_disclosure', 105);
INSERT INTO ra_sh.t_102008 VALUES (1, 7107, 'a');
INSERT INTO "RA Shards"."T_102009" VALUES (1, 7107, 'a');
INSERT INTO ra_sh.plain VALUES (1, 7107, 'a');
CREATE TRIGGER pdp_rectification AFTER UPDATE ON ra_sh.t_102008 FOR EACH ROW EXECUTE FUNCTION pdp._rectification('s:learner', 'c:body');
CREATE TRIGGER pdp_rectification AFTER UPDATE ON "RA Shards"."T_102009" FOR EACH ROW EXECUTE FUNCTION pdp._rectification('s:learner', 'c:body');
CREATE TRIGGER pdp_rectification AFTER UPDATE ON ra_sh.plain FOR EACH ROW EXECUTE FUNCTION pdp._rectification('s:learner', 'c:body');
UPDATE ra_sh.t_102008 SET body = 'b';
UPDATE "RA Shards"."T_102009" SET body = 'b';
UPDATE ra_sh.plain SET body = 'b';
SELECT n.id >= 1000000000000000 AS workers_number, n.subject, n.recipient, n.tbl, n.columns
  FROM pdp.rectification_notice n WHERE n.acknowledged_at IS NULL AND n.recipient = 'RA Mailer' ORDER BY n.tbl::text;
DROP TABLE pdp.citus_disclosure, pdp.citus_disclosure_105;
SET allow_system_table_mods = on;
DROP TABLE pg_catalog.pg_dist_partition, pg_catalog.pg_dist_local_group, pg_catalog.pg_dist_shard;
RESET allow_system_table_mods;
DROP SCHEMA ra_sh, "RA Shards" CASCADE;

SELECT pdp.withdraw_consents(ARRAY['9', '10'], 'ra_news');
DROP SCHEMA ra CASCADE;
DROP ROLE regress_ra_app, regress_ra_admin, regress_ra_dpo;
