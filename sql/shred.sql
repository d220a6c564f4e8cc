-- Crypto-shredding (issue 17, point 5): the rule "shred" encrypts each value
-- under a key of its row's subject; erasure destroys that key at commit.
-- Bad inputs fail with an SQLSTATE and no personal value; a value whose key
-- is gone, or that is not one shredded for that subject, reads as NULL.
\set SHOW_CONTEXT never
\set VERBOSITY terse

CREATE SCHEMA sh;
-- Runs a statement; its SQLSTATE and message instead of an error.
CREATE FUNCTION sh.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

CREATE TABLE sh.learner (id bigint PRIMARY KEY, note text, code varchar(20), other bigint);
CREATE TABLE sh.two (a bigint, b bigint, note text);

-- Declaring the rule: the table needs its one subject column, a text column.
SELECT pdp.set_column_rule('sh.learner', 'note', 'shred');
SELECT pdp.register_table('sh.learner', 'id');
SELECT pdp.register_table('sh.two', 'a');
SELECT pdp.register_table('sh.two', 'b', 'set_null');
SELECT pdp.set_column_rule('sh.two', 'note', 'shred');                -- two subject columns
SELECT pdp.set_column_rule('sh.learner', 'code', 'shred');            -- bounded varchar
SELECT pdp.set_column_rule('sh.learner', 'other', 'shred');           -- not text
SELECT pdp.set_column_rule('sh.learner', 'id', 'shred');              -- the subject column itself
CREATE ROLE regress_shred_admin;
GRANT pdp_admin TO regress_shred_admin;
GRANT USAGE ON SCHEMA sh TO regress_shred_admin;
ALTER TABLE sh.learner OWNER TO regress_shred_admin;
SET ROLE regress_shred_admin;
SELECT pdp.set_column_rule('sh.learner', 'note', 'shred');            -- keyed: pdp_pseudonymiser only
RESET ROLE;
ALTER TABLE sh.learner OWNER TO CURRENT_USER;
SELECT pdp.set_column_rule('sh.learner', 'note', 'shred');
SELECT rule, description FROM pdp.column_rules WHERE table_name = 'sh.learner'::regclass;
CALL pdp.apply_rules('sh.learner');                                    -- empty: nothing to refuse yet
INSERT INTO sh.learner VALUES (1, 'plain before the trigger');
CALL pdp.apply_rules('sh.learner', restart => true);                   -- static application cannot shred

-- On write.
SELECT pdp.pseudonymise_on_write('sh.learner');
UPDATE sh.learner SET note = note;                                     -- shreds what was written before
INSERT INTO sh.learner VALUES (2, 'secret of two'), (3, 'secret of three'), (4, NULL), (5, '');
SELECT id, note LIKE 'pdps1.%' AS shredded, length(note) > 40 AS long FROM sh.learner ORDER BY id;
SELECT count(*) AS clear_values FROM sh.learner WHERE note LIKE '%secret%' OR note LIKE '%plain%';
SELECT id, pdp.unshred('sh.learner', 'note', note, id::text) FROM sh.learner ORDER BY id;
-- Random IVs: the same value twice gives two different texts.
INSERT INTO sh.learner VALUES (6, 'same'), (7, 'same');
SELECT count(DISTINCT note) AS distinct_texts FROM sh.learner WHERE id IN (6, 7);
-- A value read back and written again (a copied row) is not shredded twice.
UPDATE sh.learner SET note = (SELECT note FROM sh.learner WHERE id = 2) WHERE id = 2;
SELECT pdp.unshred('sh.learner', 'note', note, id::text) FROM sh.learner WHERE id = 2;
-- Another subject's shredded value moved into a row is shredded as a text, never opened.
UPDATE sh.learner SET note = (SELECT note FROM sh.learner WHERE id = 3) WHERE id = 7;
SELECT pdp.unshred('sh.learner', 'note', note, '3') IS NULL AS not_three,
       pdp.unshred('sh.learner', 'note', note, '7') LIKE 'pdps1.%' AS seven_holds_the_text
  FROM sh.learner WHERE id = 7;
-- A row without a subject cannot be shredded: refused, no value in the message.
ALTER TABLE sh.learner DROP CONSTRAINT learner_pkey;
SELECT sh.try($$INSERT INTO sh.learner VALUES (NULL, 'secret without subject')$$);
ALTER TABLE sh.learner ADD PRIMARY KEY (id);

-- Reading: bad inputs read as NULL, never raise, never show a value.
SELECT pdp.unshred('sh.learner', 'note', note, '2') IS NULL AS wrong_subject FROM sh.learner WHERE id = 3;
SELECT pdp.unshred('sh.learner', 'note', 'not shredded', '2') IS NULL AS plain_text,
       pdp.unshred('sh.learner', 'note', 'pdps1.', '2') IS NULL AS empty_body,
       pdp.unshred('sh.learner', 'note', 'pdps1.!!!!', '2') IS NULL AS bad_base64,
       pdp.unshred('sh.learner', 'note', 'pdps1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '2') IS NULL AS version_zero,
       pdp.unshred('sh.learner', 'note', 'pdps1.AAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '2') IS NULL AS unknown_version,
       pdp.unshred('sh.learner', 'note', NULL, '2') IS NULL AS null_value;
-- (One character of the random ciphertext changed to another: 'A', or 'B' where it was 'A'.)
SELECT pdp.unshred('sh.learner', 'note',
                   overlay(note placing CASE WHEN substr(note, 20, 1) = 'A' THEN 'B' ELSE 'A' END from 20 for 1), '3') IS NULL AS altered
  FROM sh.learner WHERE id = 3;
SELECT sh.try($$SELECT pdp.unshred('sh.learner', 'nope', 'x', '2')$$);
SELECT sh.try($$SELECT pdp.unshred(0, 'note', 'x', '2')$$);

-- Who reads in clear: a role that may read the column, or its masked view.
SELECT pdp.create_masked_view('sh.learner');
CREATE ROLE regress_shred_reader;
CREATE ROLE regress_shred_outsider;
GRANT USAGE ON SCHEMA sh TO regress_shred_reader, regress_shred_outsider;
GRANT CREATE ON SCHEMA sh TO regress_shred_outsider;
GRANT SELECT ON sh.learner_masked TO regress_shred_reader;
SET ROLE regress_shred_reader;
SELECT id, note FROM sh.learner_masked WHERE id IN (2, 3, 4) ORDER BY id;
SELECT pdp.unshred('sh.learner', 'note', 'pdps1.x', '2') IS NULL AS reader_may_call;
RESET ROLE;
SET ROLE regress_shred_outsider;
SELECT sh.try($$SELECT pdp.unshred('sh.learner', 'note', 'pdps1.x', '2')$$);
-- A view of its own over the column does not make it a reader.
CREATE VIEW sh.mine AS SELECT pdp.unshred('sh.learner', 'note', note, id::text) FROM sh.learner;
SELECT sh.try($$SELECT pdp.unshred('sh.learner', 'note', 'pdps1.x', '2')$$);
RESET ROLE;
DROP VIEW sh.mine;
REVOKE CREATE ON SCHEMA sh FROM regress_shred_outsider;

-- Erasure: the receipt records the destruction, which happens at commit.
SELECT subject_keys FROM pdp.subject_key_store_status();
BEGIN;
SELECT pdp.erase_subject(3, 'request') -> 'subject_keys' AS receipt_keys;
SELECT subject_keys FROM pdp.subject_key_store_status();               -- not yet: at commit
ROLLBACK;
SELECT subject_keys FROM pdp.subject_key_store_status();               -- rolled back: kept
BEGIN;
SAVEPOINT s;
SELECT pdp.erase_subject(3, 'request') -> 'subject_keys' AS receipt_keys;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT subject_keys FROM pdp.subject_key_store_status();               -- the aborted savepoint forgot it
SELECT pdp.unshred('sh.learner', 'note', note, id::text) FROM sh.learner WHERE id = 3;
BEGIN;
SELECT pdp.erase_subject(3, 'request') -> 'subject_keys' AS receipt_keys;
PREPARE TRANSACTION 'shred';                                           -- refused: the keys go at commit
CREATE TABLE sh.copy AS SELECT * FROM sh.learner;
SELECT pdp.erase_subject(3, 'request') -> 'subject_keys' AS receipt_keys;
SELECT subject_keys FROM pdp.subject_key_store_status();
SELECT count(*) AS stored_receipts_with_keys FROM pdp.erasure WHERE receipt ? 'subject_keys';
-- The copy made before the erasure no longer decrypts; the others do.
SELECT id, pdp.unshred('sh.learner', 'note', note, id::text) FROM sh.copy WHERE id IN (2, 3) ORDER BY id;
SELECT pdp.erase_subject(3, 'again') ? 'subject_keys' AS nothing_left;
-- A subject without shredded values: no subject_keys entry in its receipt.
SELECT pdp.erase_subject(99, 'request') ? 'subject_keys' AS none_for_99;

-- Status: counts only; the path (where pdp.key_file is) for superusers only.
GRANT pdp_auditor TO regress_shred_reader;
SET ROLE regress_shred_reader;
SELECT path IS NULL AS path_hidden, subject_keys > 0 AS has_keys FROM pdp.subject_key_store_status();
RESET ROLE;
SELECT path LIKE '%.subjects' AS next_to_key_file FROM pdp.subject_key_store_status();
SELECT sh.try('SELECT pdp._shred_erase_keys(''2'')') LIKE '42501%' AS internal_for_public_denied
  FROM (SELECT set_config('role', 'regress_shred_outsider', true)) x;
RESET ROLE;

DROP SCHEMA sh CASCADE;
DROP ROLE regress_shred_admin, regress_shred_reader, regress_shred_outsider;
-- The database's shredding domain was made on the first shredded write: one row, random, not secret.
SELECT count(*) AS domains, bool_and(domain ~ '^[0-9a-f]{32}$') AS well_formed FROM pdp.shred_domain;
