#!/usr/bin/env bash
# Retention: (1) the write cost of tagging, against plain inserts;
# (2) purging 1,000,000 expired rows of a 2,000,000-row table with
# CALL pdp.purge() against one plain DELETE of the same rows, with the
# longest time any lock on those rows was held (a plain DELETE holds them
# for its whole run; the purge for one batch).
set -euo pipefail
db=(psql -X -q -v ON_ERROR_STOP=1 -d "$PDP_DB")
q() { "${db[@]}" -A -t -c "$1"; }

"${db[@]}" <<'SQL'
CREATE TABLE bench.ins_plain (id bigint PRIMARY KEY, learner bigint, at timestamptz, payload text);
CREATE TABLE bench.ins_anchor (id bigint PRIMARY KEY, learner bigint, at timestamptz, payload text);
CREATE TABLE bench.ins_indexed (id bigint PRIMARY KEY, learner bigint, at timestamptz, payload text);
CREATE INDEX ON bench.ins_indexed (at);
CREATE TABLE bench.ins_noanchor (id bigint PRIMARY KEY, learner bigint, at timestamptz, payload text);
SELECT pdp.register_table('bench.ins_anchor', 'learner'), pdp.register_table('bench.ins_noanchor', 'learner');
SELECT pdp.set_retention('bench.ins_anchor', '3 years', 'at'), pdp.set_retention('bench.ins_noanchor', '3 years');
SELECT bench.measure('writes: retention tagging', 'plain INSERT of 200,000 rows',
  $$TRUNCATE bench.ins_plain; INSERT INTO bench.ins_plain SELECT g, g % 1000, now(), 'x' FROM generate_series(1, 200000) g$$, 5, true, 200000);
SELECT bench.measure('writes: retention tagging', 'INSERT, hand-written index on the anchor column (what a DBA would add)',
  $$TRUNCATE bench.ins_indexed; INSERT INTO bench.ins_indexed SELECT g, g % 1000, now(), 'x' FROM generate_series(1, 200000) g$$, 5, false, 200000);
SELECT bench.measure('writes: retention tagging', 'INSERT, anchored retention (expiry index)',
  $$TRUNCATE bench.ins_anchor; INSERT INTO bench.ins_anchor SELECT g, g % 1000, now(), 'x' FROM generate_series(1, 200000) g$$, 5, false, 200000);
SELECT bench.measure('writes: retention tagging', 'INSERT, retention without anchor (C tagging trigger)',
  $$TRUNCATE bench.ins_noanchor; DELETE FROM pdp.retention_tag WHERE tbl = 'bench.ins_noanchor'::regclass;
    INSERT INTO bench.ins_noanchor SELECT g, g % 1000, now(), 'x' FROM generate_series(1, 200000) g$$, 5, false, 200000);
CREATE TABLE bench.purge_t (id bigint PRIMARY KEY, learner bigint, at timestamptz, payload text);
SELECT pdp.register_table('bench.purge_t', 'learner');
SELECT pdp.set_retention('bench.purge_t', '1 year', 'at');
SQL

load() {   # 2,000,000 rows, the odd half of them expired
  "${db[@]}" -c "TRUNCATE bench.purge_t" \
    -c "INSERT INTO bench.purge_t SELECT g, g % 50000, CASE WHEN g % 2 = 1 THEN now() - interval '2 years' ELSE now() END, 'payload ' || g FROM generate_series(1, 2000000) g" \
    -c "VACUUM ANALYZE bench.purge_t"
}
for i in 1 2 3 4 5; do
  load
  ms=$(q "SELECT extract(epoch FROM clock_timestamp()) * 1000" )
  q "DELETE FROM bench.purge_t WHERE at < now() - interval '1 year'" >/dev/null
  end=$(q "SELECT extract(epoch FROM clock_timestamp()) * 1000")
  d=$(awk "BEGIN {print $end - $ms}")
  "${db[@]}" -c "INSERT INTO bench.timing VALUES ('purge: 1,000,000 expired of 2,000,000 rows', 'one plain DELETE ... WHERE at < now() - 1 year', true, $i, $d, 1000000)" \
             -c "INSERT INTO bench.timing VALUES ('purge: longest lock on the purged rows', 'one plain DELETE (held for the whole statement)', true, $i, $d, 1000000)"
done
for batch in 5000 50000; do
for i in 1 2 3 4 5; do
  load
  start=$(q "SELECT extract(epoch FROM clock_timestamp()) * 1000")
  # The purge is measured with the safety valve open (it removes half the table).
  "${db[@]}" -c "SET pdp.purge_max_share = 1" -c "CALL pdp.purge(batch_size => $batch)" >/dev/null 2>&1
  end=$(q "SELECT extract(epoch FROM clock_timestamp()) * 1000")
  d=$(awk "BEGIN {print $end - $start}")
  # Each batch holds its row locks from its start to its commit; the audit
  # entry of a batch is written at its end, so consecutive entries bound it.
  lock=$(q "SELECT coalesce(max(extract(epoch FROM at - prev) * 1000), 0) FROM (
             SELECT at, lag(at) OVER (ORDER BY id) AS prev FROM pdp.audit_log
              WHERE action = 'purge_batch' AND details->>'run' = (SELECT max(id)::text FROM pdp.purge_run)) x")
  "${db[@]}" -c "INSERT INTO bench.timing VALUES ('purge: 1,000,000 expired of 2,000,000 rows', 'CALL pdp.purge(batch_size => $batch)', false, $i, $d, 1000000)" \
             -c "INSERT INTO bench.timing VALUES ('purge: longest lock on the purged rows', 'CALL pdp.purge: longest batch of $batch', false, $i, $lock, $batch)"
done
done
