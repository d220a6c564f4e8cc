#!/usr/bin/env bash
# Audit writes under 8 concurrent clients (pgbench): pdp._audit (append,
# queue, opportunistic sealing) against a plain INSERT of the same row into an
# unchained table.  Each run is 5 seconds; the figure is milliseconds per
# 10,000 entries, from pgbench's throughput.
set -euo pipefail
db=(psql -X -q -v ON_ERROR_STOP=1 -d "$PDP_DB")
"${db[@]}" -c "CREATE TABLE bench.plain_log (LIKE pdp.audit_log INCLUDING DEFAULTS)" \
           -c "ALTER TABLE bench.plain_log ADD PRIMARY KEY (id)"
# pdp._audit refuses callers that are not pdp functions: the bench calls it
# through one of its own in schema pdp (dropped afterwards).
"${db[@]}" -c "CREATE FUNCTION pdp._bench_audit() RETURNS void LANGUAGE plpgsql AS \$\$ BEGIN PERFORM pdp._audit('bench', 'pgbench', NULL, '{\"n\": 1}'); END \$\$"
work=$(mktemp -d)
trap 'rm -rf "$work"; "${db[@]}" -c "DROP FUNCTION IF EXISTS pdp._bench_audit()"' EXIT
echo "SELECT pdp._bench_audit();" > "$work/chained.sql"
echo "INSERT INTO bench.plain_log (action, object, details) VALUES ('bench', 'pgbench', '{\"n\": 1}');" > "$work/plain.sql"
run() {   # name, script, is_baseline
  for i in 1 2 3 4 5; do
    tps=$(pgbench -n -c 8 -j 2 -T 5 -f "$2" "$PDP_DB" 2>/dev/null | awk '/^tps/ {print $3; exit}')
    "${db[@]}" -c "INSERT INTO bench.timing VALUES ('audit: inserts under 8 clients', '$1', $3, $i, 10000 * 1000.0 / $tps, 10000)"
  done
}
run 'unchained INSERT of the same row' "$work/plain.sql" true
run 'pdp._audit (chained, sealed)' "$work/chained.sql" false
"${db[@]}" -c "SELECT ok, entries FROM pdp.verify_audit_log()" -A -t | sed 's/^/bench: audit chain after the run (ok|entries): /'

# Latency of one audited call under 8 clients (issue 15): the median and the
# 99th percentile of pgbench's per-transaction latencies, for an append
# (pdp._audit: before issue 15 every 32nd one sealed inline; now the audit
# worker seals in the background) and a reversal (pdp.decrypt: its entry is
# now committed by the audit worker before the value is returned).
"${db[@]}" -c "CREATE TABLE bench.audit_token AS SELECT pdp.encrypt('bench value') AS t"
echo "SELECT pdp.decrypt(t) FROM bench.audit_token;" > "$work/reversal.sql"
latency() {   # name, script
  rm -f "$work"/lat*
  (cd "$work" && pgbench -n -c 8 -j 2 -T 10 -l --log-prefix=lat -f "$2" "$PDP_DB" >/dev/null 2>&1)
  cat "$work"/lat* | awk '{print $3}' | sort -n | awk -v name="$1" '
    { v[NR] = $1 } END { printf "bench: %s under 8 clients: median %.3f ms, p99 %.3f ms (%d calls)\n",
                         name, v[int(NR * 0.5)] / 1000, v[int(NR * 0.99)] / 1000, NR }'
}
latency 'pdp._audit' "$work/chained.sql"
latency 'pdp.decrypt' "$work/reversal.sql"

# Sealing before and after issue 15 point 3, in the same run: the row-wise
# sealer of before (one INSERT per entry in a PL/pgSQL loop,
# bench/audit_seal_rowwise.psql) is installed in place of the set-based one
# (pdp._audit_seal_chain, src/audit_seal.c), then the latter is restored.
# For each: sealing throughput (50,000 queued entries sealed by one call:
# entries appended directly, so that the audit worker is not asked to seal
# them meanwhile), and the latency of pdp._audit under 8 clients while the
# audit worker seals in the background with that sealer.
"${db[@]}" -A -t -c "SELECT pg_catalog.pg_get_functiondef('pdp.seal_audit_log(boolean, integer)'::regprocedure)" > "$work/setbased.sql"
echo ";" >> "$work/setbased.sql"
sealer() {   # rowwise | setbased
  if [ "$1" = rowwise ]; then "${db[@]}" -f bench/audit_seal_rowwise.psql; else "${db[@]}" -f "$work/setbased.sql"; fi
}
seal_rate() {   # name, is_baseline, run
  sleep 1.5   # the worker's sealing window after the last append closes
  "${db[@]}" -c "SELECT pdp.seal_audit_log(true, 2147483647)" >/dev/null
  "${db[@]}" -c "INSERT INTO pdp.audit_log (action, object, details) SELECT 'bench', 'seal throughput', jsonb_build_object('n', g) FROM generate_series(1, 50000) g"
  ms=$("${db[@]}" -A -t -c "SELECT extract(epoch FROM clock_timestamp() - t) * 1000 FROM (SELECT clock_timestamp() AS t, pdp.seal_audit_log(true, 2147483647) AS n) s WHERE n = 50000")
  [ -n "$ms" ] || { echo "bench: sealing did not seal the 50,000 entries" >&2; exit 1; }
  "${db[@]}" -c "INSERT INTO bench.timing VALUES ('audit: sealing 50,000 queued entries', '$1', $2, $3, $ms, 50000)"
  echo "bench: sealing, $1, run $3: $(awk -v ms="$ms" 'BEGIN { printf "%.0f entries/s", 50000 / (ms / 1000) }')"
}
for i in 1 2 3; do
  sealer rowwise;  seal_rate 'row-wise sealer (before: PL/pgSQL loop)' true $i
  sealer setbased; seal_rate 'set-based sealer (after: C chain, one INSERT ... unnest)' false $i
done
for s in rowwise setbased; do
  sealer $s
  latency "pdp._audit, worker sealing $s" "$work/chained.sql"
done
sealer setbased
"${db[@]}" -c "SELECT ok, entries FROM pdp.verify_audit_log()" -A -t | sed 's/^/bench: audit chain after the sealing runs (ok|entries): /'
