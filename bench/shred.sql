-- Crypto-shredding (issue 17, point 5): writing and reading a "shred"
-- column against a plain column and against pdp.encrypt (AES-SIV, the other
-- reversible rule), over 200,000 rows of 2,000 learners (100 rows each: a
-- learner writes many rows) and 50,000 rows of learners written for the
-- first time (each creates the learner's key in the subject key store).
-- Target: within 1.5x pdp.encrypt for writes and reads.
\set rows 200000
SET max_parallel_workers_per_gather = 0;   -- single-core cost per row
CREATE TABLE bench.shred_src AS
SELECT g AS id, g % 2000 + 1 AS learner, 'a note about learner ' || g || ' and their course' AS note
  FROM generate_series(1, :rows) g;
CREATE TABLE bench.shred_plain (id bigint PRIMARY KEY, learner bigint, note text);
CREATE TABLE bench.shred_enc (id bigint PRIMARY KEY, learner bigint, note text);
CREATE TABLE bench.shred_col (id bigint PRIMARY KEY, learner bigint, note text);
CREATE TABLE bench.shred_new (id bigint PRIMARY KEY, learner bigint, note text);
SELECT pdp.register_table('bench.shred_enc', 'learner', 'keep');
SELECT pdp.register_table('bench.shred_col', 'learner', 'keep');
SELECT pdp.register_table('bench.shred_new', 'learner', 'keep');
SELECT pdp.set_column_rule('bench.shred_enc', 'note', 'encrypt');
SELECT pdp.set_column_rule('bench.shred_col', 'note', 'shred');
SELECT pdp.set_column_rule('bench.shred_new', 'note', 'shred');
SELECT pdp.pseudonymise_on_write('bench.shred_enc');
SELECT pdp.pseudonymise_on_write('bench.shred_col');
SELECT pdp.pseudonymise_on_write('bench.shred_new');

SELECT bench.measure('shred: writes', 'INSERT through the on-write trigger, rule encrypt (pdp.encrypt)',
    'TRUNCATE bench.shred_enc; INSERT INTO bench.shred_enc SELECT * FROM bench.shred_src', 5, true, :rows);
SELECT bench.measure('shred: writes', 'plain INSERT',
    'TRUNCATE bench.shred_plain; INSERT INTO bench.shred_plain SELECT * FROM bench.shred_src', 5, false, :rows);
SELECT bench.measure('shred: writes', 'INSERT through the on-write trigger, rule shred (learners'' keys exist)',
    'TRUNCATE bench.shred_col; INSERT INTO bench.shred_col SELECT * FROM bench.shred_src', 5, false, :rows);
-- Each run writes 50,000 learners never seen before (their keys are created,
-- the store grows by doubling and is fsynced once, at commit).
CREATE SEQUENCE bench.shred_new_learner;
SELECT bench.measure('shred: writes', 'INSERT through the on-write trigger, rule shred (50,000 new learners, per row)',
    $$TRUNCATE bench.shred_new; INSERT INTO bench.shred_new SELECT g, 1000000 + nextval('bench.shred_new_learner'), 'a note' FROM generate_series(1, 50000) g$$,
    3, false, 50000);

SELECT bench.measure('shred: reads', 'pdp.decrypt(token) (pdp.encrypt''s tokens)',
    'SELECT count(pdp.decrypt(note)) FROM bench.shred_enc', 5, true, :rows);
SELECT bench.measure('shred: reads', 'plain column',
    'SELECT count(note) FROM bench.shred_plain', 5, false, :rows);
SELECT bench.measure('shred: reads', 'pdp.unshred(shredded value)',
    $$SELECT count(pdp.unshred('bench.shred_col', 'note', note, learner::text)) FROM bench.shred_col$$, 5, false, :rows);
SELECT pdp.create_masked_view('bench.shred_col');
SELECT bench.measure('shred: reads', 'masked view of the shredded column',
    'SELECT count(note) FROM bench.shred_col_masked', 5, false, :rows);
-- Erasure (the store's rewrite happens at commit, after bench.measure's timing: not included).
SELECT bench.measure('shred: erasure', 'pdp.erase_subject of a learner with 100 shredded rows',
    $$SELECT pdp.erase_subject(nextval('bench.shred_new_learner') % 2000 + 1, 'bench')$$, 5, true, 1);
