-- Erasure with and without the sweep for leftovers (issue 17, point 4): a
-- learner with a classified e-mail, phone and name is erased from a
-- registered table beside an unregistered forum of 1,000,000 free-text posts
-- (some quoting learners' e-mails and phones, as real posts do).  The
-- baseline is the same erasure without sweep, in the same run; each run
-- erases another learner (the warm-up included).
CREATE TABLE bench.s_learner (id bigint PRIMARY KEY, email text, phone text, full_name text);
CREATE TABLE bench.s_post (id bigserial PRIMARY KEY, author bigint, body text);
CREATE TABLE bench.s_log (id bigserial PRIMARY KEY, other jsonb);
INSERT INTO bench.s_learner SELECT g, 'learner' || g || '@example.kz', '+7 701 ' || lpad(g::text, 7, '0'), 'Learner Number' || g
  FROM generate_series(1, 20000) g;
INSERT INTO bench.s_post (author, body)
SELECT 1 + g % 20000,
       CASE WHEN g % 1000 = 0 THEN 'please write to learner' || (1 + (g / 1000) % 20) || '@example.kz or call 8 (701) ' || lpad((1 + (g / 1000) % 20)::text, 7, '0')
            ELSE 'Lesson ' || g % 40 || ': I think the answer to question ' || g % 17 || ' is that the function grows faster than expected, see page ' || g % 300 END
  FROM generate_series(1, 1000000) g;
INSERT INTO bench.s_log (other)
SELECT jsonb_build_object('event', 'viewed', 'relateduser', 1 + g % 20000, 'note', 'course ' || g % 40)
  FROM generate_series(1, 100000) g;
SELECT pdp.register_table('bench.s_learner', 'id');
SELECT pdp.set_column_rule('bench.s_learner', 'email', 'mask_email', 'email'),
       pdp.set_column_rule('bench.s_learner', 'phone', 'mask_phone', 'phone'),
       pdp.set_column_rule('bench.s_learner', 'full_name', 'mask', 'name');
VACUUM ANALYZE bench.s_learner, bench.s_post, bench.s_log;

CREATE SEQUENCE bench.sweep_plain START 1;
CREATE SEQUENCE bench.sweep_swept START 11;
SELECT bench.measure('erasure sweep: one learner beside 1,000,000 free-text posts', 'pdp.erase_subject without sweep',
    $$SELECT pdp.erase_subject(nextval('bench.sweep_plain'), 'benchmark')$$, 3, true, 1000000);
SELECT bench.measure('erasure sweep: one learner beside 1,000,000 free-text posts',
    'pdp.erase_subject(..., sweep => true) (identifiers gathered first, every text and json column searched after)',
    $$SELECT pdp.erase_subject(nextval('bench.sweep_swept'), 'benchmark', sweep => true)$$, 3, false, 1000000);
-- The sweep found the posts quoting the swept learners (a check, not a timing).
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pdp.erasure e, jsonb_array_elements(e.receipt->'sweep'->'traces') t
                    WHERE t->>'table' = 'bench.s_post' AND (t->>'rows')::bigint > 0) THEN
        RAISE EXCEPTION 'bench: the sweep found no trace in bench.s_post';
    END IF;
END $$;
