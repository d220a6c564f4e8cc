-- Benchmark harness: bench.measure(group, name, sql, runs) runs sql `runs`
-- times and records each wall-clock time; bench.report lists medians and
-- ratios against the group's baseline, measured in the same run.
CREATE SCHEMA bench;
CREATE TABLE bench.timing (
    grp text, name text, is_baseline boolean, run int, ms double precision, rows bigint
);
CREATE FUNCTION bench.measure(grp text, name text, stmt text, runs int DEFAULT 5,
                              is_baseline boolean DEFAULT false, rows bigint DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
BEGIN
    EXECUTE stmt;                       -- warm-up, not recorded
    FOR i IN 1 .. runs LOOP
        t0 := clock_timestamp();
        EXECUTE stmt;
        INSERT INTO bench.timing VALUES (grp, name, is_baseline, i,
            extract(epoch FROM clock_timestamp() - t0) * 1000, rows);
    END LOOP;
END $$;
CREATE VIEW bench.report AS
WITH s AS (
    SELECT grp, name, is_baseline, max(rows) AS rows,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median_ms,
           min(ms) AS min_ms, max(ms) AS max_ms, count(*) AS runs
      FROM bench.timing GROUP BY grp, name, is_baseline)
SELECT s.grp, s.name, s.is_baseline, s.rows, s.runs,
       round(s.median_ms::numeric, 1) AS median_ms, round(s.min_ms::numeric, 1) AS min_ms,
       round(s.max_ms::numeric, 1) AS max_ms,
       round((s.median_ms / b.median_ms)::numeric, 2) AS ratio,
       b.name AS baseline
  FROM s JOIN s b ON b.grp = s.grp AND b.is_baseline
 ORDER BY s.grp, s.is_baseline DESC, s.median_ms;
-- Scenarios measure as other roles too (a protected table's reader).
GRANT USAGE ON SCHEMA bench TO PUBLIC;
GRANT INSERT ON bench.timing TO PUBLIC;
