-- Subject rights for a learner with 10,000 rows (8,000 activity, 1,500
-- payments, 500 enrolments, plus the learner's own row) among 20,000 ordinary
-- learners: pdp.export_subject against a hand-written export of the same
-- tables, pdp.erase_subject against hand-written DELETEs, children first.
-- Erasure runs use a different heavy learner each time (warm-up included).
CREATE TABLE bench.r_learner (id bigint PRIMARY KEY, email text, full_name text);
CREATE TABLE bench.r_activity (id bigserial PRIMARY KEY, learner bigint NOT NULL REFERENCES bench.r_learner,
                               at timestamptz NOT NULL, what text);
CREATE TABLE bench.r_payment (id bigserial PRIMARY KEY, learner bigint NOT NULL REFERENCES bench.r_learner,
                              amount numeric(12, 2), paid_at timestamptz);
CREATE TABLE bench.r_enrolment (id bigserial PRIMARY KEY, learner bigint NOT NULL REFERENCES bench.r_learner,
                                course int, enrolled_at timestamptz);
CREATE INDEX ON bench.r_activity (learner);
CREATE INDEX ON bench.r_payment (learner);
CREATE INDEX ON bench.r_enrolment (learner);
INSERT INTO bench.r_learner SELECT g, 'learner' || g || '@example.kz', 'Learner ' || g FROM generate_series(1, 20000) g;
INSERT INTO bench.r_learner SELECT g, 'heavy' || g || '@example.kz', 'Heavy ' || g FROM generate_series(1000001, 1000012) g;
INSERT INTO bench.r_activity (learner, at, what) SELECT 1 + g % 20000, now() - g * interval '1 second', 'login' FROM generate_series(1, 500000) g;
INSERT INTO bench.r_payment (learner, amount, paid_at) SELECT 1 + g % 20000, 1000, now() FROM generate_series(1, 40000) g;
INSERT INTO bench.r_enrolment (learner, course, enrolled_at) SELECT 1 + g % 20000, g % 40, now() FROM generate_series(1, 40000) g;
INSERT INTO bench.r_activity (learner, at, what) SELECT h, now() - g * interval '1 minute', 'viewed lesson ' || g
  FROM generate_series(1000001, 1000012) h, generate_series(1, 8000) g;
INSERT INTO bench.r_payment (learner, amount, paid_at) SELECT h, 5000 + g, now() - g * interval '1 day'
  FROM generate_series(1000001, 1000012) h, generate_series(1, 1500) g;
INSERT INTO bench.r_enrolment (learner, course, enrolled_at) SELECT h, g, now() - g * interval '1 day'
  FROM generate_series(1000001, 1000012) h, generate_series(1, 500) g;
SELECT pdp.register_table('bench.r_learner', 'id'), pdp.register_table('bench.r_activity', 'learner'),
       pdp.register_table('bench.r_payment', 'learner'), pdp.register_table('bench.r_enrolment', 'learner');
VACUUM ANALYZE bench.r_learner, bench.r_activity, bench.r_payment, bench.r_enrolment;

SELECT bench.measure('rights: export of a learner with 10,000 rows', 'hand-written export of the same four tables (jsonb)', $$
SELECT jsonb_build_object(
    'learner', (SELECT jsonb_agg(to_jsonb(t)) FROM bench.r_learner t WHERE id = 1000001),
    'activity', (SELECT jsonb_agg(to_jsonb(t)) FROM bench.r_activity t WHERE learner = 1000001),
    'payment', (SELECT jsonb_agg(to_jsonb(t)) FROM bench.r_payment t WHERE learner = 1000001),
    'enrolment', (SELECT jsonb_agg(to_jsonb(t)) FROM bench.r_enrolment t WHERE learner = 1000001))$$, 5, true, 10001);
SELECT bench.measure('rights: export of a learner with 10,000 rows', 'pdp.export_subject (every registered table, consents, audit entry)',
    $$SELECT pdp.export_subject(1000001)$$, 5, false, 10001);

CREATE SEQUENCE bench.hand_erase START 1000001;
CREATE SEQUENCE bench.pdp_erase START 1000007;
CREATE FUNCTION bench.delete_learner(l bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint; total bigint := 0;
BEGIN
    DELETE FROM bench.r_activity WHERE learner = l; GET DIAGNOSTICS n = ROW_COUNT; total := total + n;
    DELETE FROM bench.r_payment WHERE learner = l; GET DIAGNOSTICS n = ROW_COUNT; total := total + n;
    DELETE FROM bench.r_enrolment WHERE learner = l; GET DIAGNOSTICS n = ROW_COUNT; total := total + n;
    DELETE FROM bench.r_learner WHERE id = l; GET DIAGNOSTICS n = ROW_COUNT; total := total + n;
    RETURN total;
END $$;
SELECT bench.measure('rights: erasure of a learner with 10,000 rows', 'hand-written DELETEs, children first',
    $$SELECT bench.delete_learner(nextval('bench.hand_erase'))$$, 5, true, 10001);
SELECT bench.measure('rights: erasure of a learner with 10,000 rows', 'pdp.erase_subject (order from the FKs, holds checked, receipt, audit)',
    $$SELECT pdp.erase_subject(nextval('bench.pdp_erase'), 'benchmark')$$, 5, false, 10001);
-- Every heavy learner is gone, whichever way.
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM bench.r_activity WHERE learner > 1000000) THEN
        RAISE EXCEPTION 'bench: an erased learner still has rows';
    END IF;
END $$;
