-- Consent-aware visibility over 1,000,000 enrolment rows of 100,000 subjects,
-- half of them consenting to marketing: a protected query against the owner's
-- hand-written equivalent filter on the same table.
\set rows 1000000
CREATE TABLE bench.enrolment (id bigserial PRIMARY KEY, user_id bigint NOT NULL, course int NOT NULL);
INSERT INTO bench.enrolment (user_id, course) SELECT g % 100000, g % 50 FROM generate_series(1, :rows) g;
SELECT pdp.register_table('bench.enrolment', 'user_id');
SELECT pdp.define_purpose('bench_marketing', 'consent', 'benchmark purpose');
SELECT count(pdp.grant_consent(g, 'bench_marketing')) FROM generate_series(0, 99999, 2) g;
SELECT pdp.restrict_subject(1, 'benchmark restriction');
CREATE ROLE bench_reader;
GRANT USAGE ON SCHEMA bench TO bench_reader;
GRANT SELECT ON bench.enrolment TO bench_reader;
SELECT pdp.allow_purpose('bench_reader', 'bench_marketing');
SELECT pdp.protect_table('bench.enrolment');
VACUUM ANALYZE bench.enrolment;
ANALYZE pdp.consent_state;
SET max_parallel_workers_per_gather = 0;

-- The owner (the table owner bypasses RLS) with the hand-written filter.
SELECT bench.measure('visibility: count(*) over 1M rows', 'owner, hand-written consent and restriction filter', $$
SELECT count(*) FROM bench.enrolment e
 WHERE EXISTS (SELECT 1 FROM pdp.consent_state c WHERE c.subject = e.user_id::text AND c.purpose = 'bench_marketing'
                  AND (c.valid_until IS NULL OR c.valid_until > now()))
   AND NOT EXISTS (SELECT 1 FROM pdp.restriction r WHERE r.subject = e.user_id::text)$$, 7, true, :rows);
SELECT bench.measure('visibility: count(*) over 1M rows', 'owner, no filter at all (floor)',
    'SELECT count(*) FROM bench.enrolment', 7, false, :rows);
SET ROLE bench_reader;
SET pdp.purpose = 'bench_marketing';
SELECT bench.measure('visibility: count(*) over 1M rows', 'protected table, purpose declared',
    'SELECT count(*) FROM bench.enrolment', 7, false, :rows);
RESET ROLE;
RESET pdp.purpose;

-- The same scans as parallel plans (2 workers, forced), the check running in
-- the workers.
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SELECT bench.measure('visibility: parallel count(*) over 1M rows, 2 workers', 'owner, hand-written filter, parallel', $$
SELECT count(*) FROM bench.enrolment e
 WHERE EXISTS (SELECT 1 FROM pdp.consent_state c WHERE c.subject = e.user_id::text AND c.purpose = 'bench_marketing'
                  AND (c.valid_until IS NULL OR c.valid_until > now()))
   AND NOT EXISTS (SELECT 1 FROM pdp.restriction r WHERE r.subject = e.user_id::text)$$, 7, true, :rows);
SET ROLE bench_reader;
SET pdp.purpose = 'bench_marketing';
SELECT bench.measure('visibility: parallel count(*) over 1M rows, 2 workers', 'protected table, parallel',
    'SELECT count(*) FROM bench.enrolment', 7, false, :rows);
SET max_parallel_workers_per_gather = 0;
SELECT bench.measure('visibility: parallel count(*) over 1M rows, 2 workers', 'protected table, serial (for scale)',
    'SELECT count(*) FROM bench.enrolment', 7, false, :rows);
RESET ROLE;
RESET pdp.purpose;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
SET max_parallel_workers_per_gather = 0;

-- Primary-key lookups: 20,000 of them per run, protected against unprotected.
CREATE TABLE bench.enrolment_plain AS SELECT * FROM bench.enrolment;
ALTER TABLE bench.enrolment_plain ADD PRIMARY KEY (id);
GRANT SELECT ON bench.enrolment_plain TO bench_reader;
VACUUM ANALYZE bench.enrolment_plain;
CREATE FUNCTION bench.lookups(tbl regclass, n int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE total bigint := 0; c bigint;
BEGIN
    FOR i IN 1 .. n LOOP
        EXECUTE format('SELECT count(*) FROM %s WHERE id = $1', tbl) INTO c USING (i * 7919) % 1000000 + 1;
        total := total + c;
    END LOOP;
    RETURN total;
END $$;
SET ROLE bench_reader;
SET pdp.purpose = 'bench_marketing';
SELECT bench.measure('visibility: 20,000 primary-key lookups', 'unprotected table',
    $$SELECT bench.lookups('bench.enrolment_plain', 20000)$$, 7, true, 20000);
SELECT bench.measure('visibility: 20,000 primary-key lookups', 'protected table, purpose declared',
    $$SELECT bench.lookups('bench.enrolment', 20000)$$, 7, false, 20000);
RESET ROLE;
