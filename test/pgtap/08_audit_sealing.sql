-- pgTAP: the set-based sealer (issue 15, point 3).  pdp.seal_audit_log hands
-- the queue to pdp._audit_seal_chain, which chains a batch in C and writes it
-- with one INSERT ... unnest per chunk of 10,000 entries, one DELETE of the
-- queue and one UPDATE of the head.  These tests check that a batch larger
-- than a chunk, and one cut by max_entries, chain exactly as the row-by-row
-- definition says (the hash recomputed at a chunk boundary, the whole chain
-- verified), in entry id order, and that the C function is internal.  All
-- of it is rolled back.
BEGIN;
SELECT plan(12);

SELECT pdp.seal_audit_log(true, 2147483647);
CREATE TEMP TABLE before AS SELECT head_seq FROM pdp.audit_chain;
-- 25,001 entries appended directly (the trigger queues them; nothing seals
-- them meanwhile: the audit worker seals only committed entries).
INSERT INTO pdp.audit_log (action, object, details)
SELECT 'tap_seal', 'pgtap', jsonb_build_object('n', g) FROM generate_series(1, 25001) g;
SELECT is((SELECT count(*) FROM pdp.audit_unsealed), 25001::bigint, 'the 25,001 entries are queued');

SELECT is(pdp.seal_audit_log(true, 12345), 12345::bigint, 'max_entries cuts the batch: 12,345 sealed');
SELECT is((SELECT c.head_seq - b.head_seq FROM pdp.audit_chain c, before b), 12345::bigint, 'the head moved by as many');
SELECT is((SELECT count(*) FROM pdp.audit_unsealed), 12656::bigint, 'and only they left the queue');
SELECT is((SELECT min(l.id) FROM pdp.audit_log l JOIN pdp.audit_unsealed u ON u.entry_id = l.id),
          (SELECT max(a.entry_id) + 1 FROM pdp.audit_seal a), 'the batch took the lowest entry ids first');

SELECT is(pdp.seal_audit_log(true, 2147483647), 12656::bigint, 'the rest, more than one chunk, in one call');
SELECT is((SELECT count(*) FROM pdp.audit_unsealed), 0::bigint, 'the queue is empty');
SELECT is((SELECT count(*) FROM (SELECT a.entry_id < lag(a.entry_id) OVER (ORDER BY a.seq) AS back
                                   FROM pdp.audit_seal a, before b WHERE a.seq > b.head_seq) s WHERE back),
          0::bigint, 'seals follow entry id order');

-- The cut between the calls, the chunk boundary 10,000 entries into the
-- second call, and the last link chain like any other link.
SELECT is((SELECT count(*) FROM pdp.audit_seal a
             JOIN pdp.audit_seal p ON p.seq = a.seq - 1
             JOIN pdp.audit_log l ON l.id = a.entry_id, before b
            WHERE a.seq IN (b.head_seq + 12345, b.head_seq + 12346, b.head_seq + 12345 + 10000,
                            b.head_seq + 12345 + 10001, b.head_seq + 25001)
              AND a.hash = pdp._audit_hash(p.hash, a.seq, l.id, l.at, pdp._audit_fields(l))
              AND a.mac IS NOT NULL AND a.key_version = pdp._audit_key_version()),
          5::bigint, 'links across the cut and the chunk boundaries recompute to their hashes, each with a MAC');
SELECT is((SELECT ok FROM pdp.verify_audit_log()), true, 'the whole chain verifies, MACs included');

SELECT is(pdp.seal_audit_log(true, 0), 0::bigint, 'max_entries 0 seals nothing');
SELECT throws_ok('SELECT pdp._audit_seal_chain(NULL)', '42501', NULL,
                 'attack: the sealer proper cannot be called directly, by a superuser either');

SELECT * FROM finish();
ROLLBACK;
