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
