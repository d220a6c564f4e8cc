#!/usr/bin/env bash
# Read-access logging (issue 15, point 4): the cost of pdp.audit_reads on a
# registered table of 1,000,000 rows, for a primary-key lookup (one client,
# pgbench, milliseconds per 10,000 lookups) and a full scan (count(*), one
# statement, milliseconds), each against the same statement with read
# logging off.  Off and on alternate, five runs each; then the lookup under
# 8 clients (pgbench -c 8 -T 20), off and on alternating, two runs each.
# Target: at most 1.2x.
# Never fails on a number.
set -euo pipefail
db=(psql -X -q -v ON_ERROR_STOP=1 -d "$PDP_DB")
"${db[@]}" -c "CREATE TABLE bench.read_learners (id bigint PRIMARY KEY, email text NOT NULL)" \
           -c "INSERT INTO bench.read_learners SELECT g, 'learner' || g || '@mail.kz' FROM generate_series(1, 1000000) g" \
           -c "VACUUM ANALYZE bench.read_learners" \
           -c "SELECT pdp.register_table('bench.read_learners', 'id')"
work=$(mktemp -d)
trap 'rm -rf "$work"; "${db[@]}" -c "SELECT pdp.audit_reads('"'"'bench.read_learners'"'"', false)" >/dev/null 2>&1 || true' EXIT
printf '%s\n' '\set id random(1, 1000000)' 'SELECT email FROM bench.read_learners WHERE id = :id;' > "$work/pk.sql"
echo "SELECT count(*) FROM bench.read_learners;" > "$work/scan.sql"
entries() { "${db[@]}" -A -t -c "SELECT count(*) || ' entries listing ' || coalesce(sum(coalesce((details->>'count')::int, jsonb_array_length(details->'statements'))), 0) || ' statements' FROM pdp.audit_log WHERE action = 'read'"; }
switch() { "${db[@]}" -c "SELECT pdp.audit_reads('bench.read_learners', $1)" >/dev/null; }
# Let the audit worker catch up (commit and seal the previous run's entries)
# so that one run's backlog does not compete with the next run for the CPU.
settle() { sleep 2; "${db[@]}" -c "SELECT pdp.seal_audit_log()" >/dev/null; }
for i in 1 2 3 4 5; do
  for mode in false true; do
    switch $mode
    settle
    if [ $mode = true ]; then name='read logging on'; base=false; else name='read logging off'; base=true; fi
    lat=$(pgbench -n -c 1 -t 3 -f "$work/scan.sql" "$PDP_DB" 2>/dev/null | awk '/^latency average/ {print $4; exit}')
    "${db[@]}" -c "INSERT INTO bench.timing VALUES ('audit reads: count(*) of 1,000,000 rows', '$name', $base, $i, $lat, 1000000)"
    settle
    tps=$(pgbench -n -c 1 -T 5 -f "$work/pk.sql" "$PDP_DB" 2>/dev/null | awk '/^tps/ {print $3; exit}')
    "${db[@]}" -c "INSERT INTO bench.timing VALUES ('audit reads: primary-key lookup, 1 client', '$name', $base, $i, 10000 * 1000.0 / $tps, 10000)"
  done
done
for i in 1 2; do
  for mode in false true; do
    switch $mode
    settle
    if [ $mode = true ]; then name='read logging on'; base=false; else name='read logging off'; base=true; fi
    tps=$(pgbench -n -c 8 -j 2 -T 20 -f "$work/pk.sql" "$PDP_DB" 2>/dev/null | awk '/^tps/ {print $3; exit}')
    "${db[@]}" -c "INSERT INTO bench.timing VALUES ('audit reads: primary-key lookup, 8 clients', '$name', $base, $i, 10000 * 1000.0 / $tps, 10000)"
    echo "bench: primary-key lookup, 8 clients, $name, run $i: $tps statements/s"
  done
done
switch false
sleep 1
echo "bench: read logging recorded $(entries)"
"${db[@]}" -c "SELECT ok, entries FROM pdp.verify_audit_log()" -A -t | sed 's/^/bench: audit chain after the read-logging run (ok|entries): /'
