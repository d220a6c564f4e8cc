-- Parallel query: the visibility check, the consent lookups and the
-- pseudonym functions are PARALLEL SAFE and run inside parallel workers,
-- with the same answers as a serial plan.
\set SHOW_CONTEXT never
\set VERBOSITY terse

CREATE SCHEMA par;
CREATE TABLE par.activity (id bigserial PRIMARY KEY, learner bigint NOT NULL, email text NOT NULL);
INSERT INTO par.activity (learner, email)
SELECT g % 1000, 'learner' || g || '@mail.kz' FROM generate_series(1, 60000) g;
SELECT pdp.register_table('par.activity', 'learner');
SELECT pdp.define_purpose('par_research', 'consent', 'parallel plans');
SELECT count(pdp.grant_consent(g, 'par_research')) AS consents FROM generate_series(0, 999, 2) g;
SELECT pdp.restrict_subject(2, 'objection');
CREATE ROLE par_reader IN ROLE pdp_pseudonymiser;
GRANT USAGE ON SCHEMA par TO par_reader;
GRANT SELECT ON par.activity TO par_reader;
SELECT pdp.allow_purpose('par_reader', 'par_research');
SELECT pdp.protect_table('par.activity');
ANALYZE par.activity;

-- How many workers a query's plan launched (EXPLAIN ANALYZE, JSON).
CREATE FUNCTION par.workers_launched(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q INTO plan;
    RETURN coalesce((SELECT sum((m[1])::int) FROM regexp_matches(plan::text, '"Workers Launched": (\d+)', 'g') m), 0);
END $$;
GRANT USAGE ON SCHEMA par TO par_reader;
GRANT EXECUTE ON FUNCTION par.workers_launched(text) TO par_reader;

-- Make every scan parallel, whatever its size.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;   -- the workers do every row

SET ROLE par_reader;
SET pdp.purpose = 'par_research';
-- The policy's check is evaluated below the Gather, in the workers.
EXPLAIN (COSTS OFF) SELECT count(*) FROM par.activity;
SELECT par.workers_launched('SELECT count(*) FROM par.activity') > 0 AS ran_in_workers;
SELECT count(*) AS visible_in_parallel FROM par.activity;
-- The pseudonym functions in the workers.
EXPLAIN (COSTS OFF)
SELECT count(DISTINCT pdp.pseudonym(email)) FROM par.activity WHERE pdp.pseudo_email(email) IS NOT NULL;
SELECT par.workers_launched($$SELECT max(pdp.pseudonym(email) || pdp.pseudo_email(email)
                                           || pdp.pseudo_phone('+77011234567') || pdp.encrypt(email))
                                FROM par.activity$$) > 0 AS ran_in_workers;
-- A withdrawal reaches the next statement's workers.
RESET ROLE;
SELECT pdp.withdraw_consent(0, 'par_research');
SET ROLE par_reader;
SELECT count(*) AS visible_after_withdrawal FROM par.activity;
-- No purpose: the workers see nothing either (fail closed).
RESET pdp.purpose;
SELECT count(*) AS visible_without_purpose FROM par.activity;
SELECT par.workers_launched('SELECT count(*) FROM par.activity') > 0 AS ran_in_workers;
RESET ROLE;

-- The same answers from a serial plan.
SET max_parallel_workers_per_gather = 0;
SET ROLE par_reader;
SET pdp.purpose = 'par_research';
SELECT par.workers_launched('SELECT count(*) FROM par.activity') AS workers_when_serial;
SELECT count(*) AS visible_serial FROM par.activity;
RESET ROLE;
RESET pdp.purpose;
RESET max_parallel_workers_per_gather;

-- The workers' pseudonyms and consent answers equal the leader's (the owner
-- reads here, so every row counts).
SELECT par.workers_launched($$SELECT count(*) FROM par.activity WHERE pdp.has_consent(learner, 'par_research')$$) > 0
       AS ran_in_workers;
SELECT count(*) AS with_consent FROM par.activity WHERE pdp.has_consent(learner, 'par_research');
\set digest 'SELECT md5(string_agg(pdp.pseudonym(email) || pdp.pseudo_email(email) || pdp.encrypt(email), \',\' ORDER BY id)) AS digest FROM par.activity'
SELECT par.workers_launched(:'digest') > 0 AS ran_in_workers;
:digest \gset parallel_
SET max_parallel_workers_per_gather = 0;
SELECT par.workers_launched(:'digest') AS workers_when_serial;
SELECT count(*) AS with_consent_serial FROM par.activity WHERE pdp.has_consent(learner, 'par_research');
SELECT (:digest) = :'parallel_digest' AS same_pseudonyms_as_parallel;
RESET max_parallel_workers_per_gather;

-- Every function that only reads (STABLE or IMMUTABLE) is PARALLEL SAFE,
-- internal helpers included; a new one shows up here until it is marked.
SELECT p.oid::regprocedure AS reader_not_parallel_safe
  FROM pg_proc p
 WHERE p.pronamespace = 'pdp'::regnamespace
   AND p.prokind = 'f'
   AND p.prorettype <> 'trigger'::regtype
   AND p.proparallel <> 's'
   AND p.provolatile <> 'v'
   -- Except the internal subject pseudonym: it checks that a pdp function
   -- called it, which a parallel worker cannot see.
   AND p.oid <> 'pdp._subject_pseudonym(text)'::regprocedure
 ORDER BY 1;
-- And no function that writes (audit entries, consents, runs) is: a worker
-- cannot write.
SELECT p.oid::regprocedure AS writer_marked_parallel_safe
  FROM pg_proc p
 WHERE p.pronamespace = 'pdp'::regnamespace AND p.provolatile = 'v' AND p.proparallel = 's'
 ORDER BY 1;

DROP SCHEMA par CASCADE;
SELECT pdp.lift_restriction(2);
SELECT pdp.disallow_purpose('par_reader', 'par_research');
DROP OWNED BY par_reader;
DROP ROLE par_reader;
