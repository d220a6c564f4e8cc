#!/usr/bin/env bash
# pdp_ext on Citus (issue 18): a coordinator and two workers on this machine
# (three local clusters on spare loopback ports, Citus and pdp_ext preloaded,
# one key file for all three, torn down afterwards), 1,000,000 rows each way:
#  - a protected count(*) (consent purpose, half the learners consenting) over
#    a hash-distributed table against the same rows in a protected ordinary
#    table on one node (the coordinator), as an application role, with the
#    purpose declared by SET LOCAL (citus.propagate_set_commands = 'local')
#    and the consent state mirrored by pdp.citus_sync_state;
#  - a pseudonymising scan, count(pdp.pseudonym(email)), pushed down to the
#    shards, against the same scan on one node;
#  - CALL pdp.purge of 500,000 expired of 1,000,000 rows of a distributed
#    table against the same purge of an ordinary table on one node, and the
#    distributed purge's rows per worker (each worker's shards' share: the
#    workers delete in parallel, so each one's rate is its rows over the
#    whole run's time).
# Every ratio is against the one-node figure measured in the same run.  The
# timings are recorded on the coordinator (bench/lib.sql's bench.measure)
# and copied into the bench database's bench.timing.  Skipped, with a line
# saying why, when Citus is not installed.  BENCH_CITUS_ROWS overrides the
# row count (for trying the script).
set -euo pipefail
cd "$(dirname "$0")/.."
bindir=$(pg_config --bindir)
pkglibdir=$(pg_config --pkglibdir)
if [ ! -f "$pkglibdir/citus.so" ]; then
  echo "bench: citus.sh skipped: Citus is not installed in $pkglibdir (tools/build-citus.sh builds it)"
  exit 0
fi
rows=${BENCH_CITUS_ROWS:-1000000}
group() { echo "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }
label=$(group "$rows")
half=$((rows / 2))
hlabel=$(group "$half")
main=(psql -X -q -v ON_ERROR_STOP=1 -d "$PDP_DB")

# The servers run as "postgres" when we are root, as ourselves otherwise.
server_user=${PDP_SERVER_USER:-$(id -un)}
[ "$(id -u)" -ne 0 ] || server_user=postgres
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$server_user" -- "$@"; else "$@"; fi; }
key_file=${PDP_KEY_FILE:?the key file of the bench cluster}

work=$(mktemp -d /tmp/pdp_citus_bench.XXXXXX)
chmod 0755 "$work"
chown "$server_user" "$work"
nodes=(coordinator worker1 worker2)
declare -A port
cleanup() {
  for n in "${nodes[@]}"; do
    [ -f "$work/$n/postmaster.pid" ] && as_server "$bindir/pg_ctl" -D "$work/$n" -m immediate -w stop >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Spare loopback ports, one per node.
ports=($(python3 -c "
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in ss))"))
i=0
for n in "${nodes[@]}"; do
  port[$n]=${ports[$i]}
  i=$((i + 1))
  as_server "$bindir/initdb" -D "$work/$n" -A trust -U postgres >/dev/null
  cat >>"$work/$n/postgresql.conf" <<CONF
shared_preload_libraries = 'citus,pdp_ext'
pdp.key_file = '$key_file'
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
port = ${port[$n]}
max_worker_processes = 16
max_prepared_transactions = 20
max_parallel_workers_per_gather = 0
citus.node_conninfo = 'sslmode=disable'
citus.shard_count = 8
log_min_messages = warning
CONF
  as_server "$bindir/pg_ctl" -D "$work/$n" -l "$work/$n.log" -w start >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${port[$n]}" -U postgres -d postgres \
    -c "CREATE EXTENSION citus" -c "CREATE EXTENSION pdp_ext"
done
c=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${port[coordinator]}" -U postgres -d postgres)
"${c[@]}" -c "SELECT citus_set_coordinator_host('127.0.0.1', ${port[coordinator]})" \
  -c "SELECT citus_add_node('127.0.0.1', ${port[worker1]})" -c "SELECT citus_add_node('127.0.0.1', ${port[worker2]})" >/dev/null
"${c[@]}" -c "SET client_min_messages = error" -f bench/lib.sql   # (bench.timing stays local: no Citus notice)

# The same rows twice: distributed (by id, 8 shards over 2 workers) and in an
# ordinary table on the coordinator.  Learners 0..49,999, the even ones
# consenting to bench_news.
"${c[@]}" -v rows="$rows" <<'SQL' >/dev/null
CREATE ROLE bench_app LOGIN;
GRANT USAGE ON SCHEMA bench TO bench_app;
CREATE TABLE people_dist (id bigint PRIMARY KEY, learner bigint NOT NULL, email text NOT NULL);
CREATE TABLE people_one (id bigint PRIMARY KEY, learner bigint NOT NULL, email text NOT NULL);
SELECT create_distributed_table('people_dist', 'id');
INSERT INTO people_dist SELECT g, g % 50000, 'learner' || g || '@example.kz' FROM generate_series(1, :rows) g;
INSERT INTO people_one SELECT * FROM people_dist;
SELECT pdp.register_table(t, 'learner') FROM unnest(ARRAY['people_dist', 'people_one']::regclass[]) t;
SELECT pdp.protect_table(t) FROM unnest(ARRAY['people_dist', 'people_one']::regclass[]) t;
GRANT SELECT ON people_dist, people_one TO bench_app;
SELECT pdp.define_purpose('bench_news', 'consent', 'Citus benchmark');
SELECT pdp.allow_purpose('bench_app', 'bench_news');
SELECT pdp.import_consents(ARRAY(SELECT ROW(g::text, 'bench_news', now(), NULL, '{}', NULL)::pdp.consent_import
                                  FROM generate_series(0, 49999, 2) g));
SELECT pdp.citus_sync_state();
VACUUM ANALYZE people_dist, people_one;
SQL

# Protected count(*), as the application: the purpose in the transaction.
grp="citus: protected count(*) over $label rows"
"${c[@]}" -v grp="$grp" -v rows="$rows" <<'SQL' >/dev/null
BEGIN;
SET LOCAL ROLE bench_app;
SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL pdp.purpose = 'bench_news';
SELECT bench.measure(:'grp', 'one node: protected ordinary table', 'SELECT count(*) FROM people_one', 5, true, :rows);
SELECT bench.measure(:'grp', 'distributed: protected, 2 workers x 4 shards', 'SELECT count(*) FROM people_dist', 5, false, :rows);
COMMIT;
SQL

# Pseudonymising scan: count(pdp.pseudonym(email)), pushed down to the shards.
grp="citus: pseudonymising scan over $label rows"
"${c[@]}" -v grp="$grp" -v rows="$rows" <<'SQL' >/dev/null
SELECT bench.measure(:'grp', 'one node: count(pdp.pseudonym(email))', 'SELECT count(pdp.pseudonym(email)) FROM people_one', 5, true, :rows);
SELECT bench.measure(:'grp', 'distributed: count(pdp.pseudonym(email)), 2 workers', 'SELECT count(pdp.pseudonym(email)) FROM people_dist', 5, false, :rows);
SQL
# (The pseudonyms are the same on the shards as on one node: one key file.)
same=$("${c[@]}" -At -c "SELECT (SELECT md5(string_agg(pdp.pseudonym(email), ',' ORDER BY id)) FROM people_dist WHERE id <= 1000)
                              = (SELECT md5(string_agg(pdp.pseudonym(email), ',' ORDER BY id)) FROM people_one WHERE id <= 1000)")
[ "$same" = t ] || echo "bench: citus.sh: the shards' pseudonyms differ from one node's" >&2

# Purge throughput: the odd half of the rows expired (anchors spread over a
# year, every one distinct, as an application's timestamps are), in the
# table measured only (the other one empty), anchored retention, action
# delete.
"${c[@]}" <<'SQL' >/dev/null
DROP TABLE people_dist, people_one;
CREATE TABLE purge_dist (id bigint PRIMARY KEY, learner bigint NOT NULL, at timestamptz NOT NULL, note text);
CREATE TABLE purge_one (id bigint PRIMARY KEY, learner bigint NOT NULL, at timestamptz NOT NULL, note text);
SELECT create_distributed_table('purge_dist', 'id');
SELECT pdp.register_table(t, 'learner') FROM unnest(ARRAY['purge_dist', 'purge_one']::regclass[]) t;
SELECT pdp.set_retention(t, '1 year', 'at') FROM unnest(ARRAY['purge_dist', 'purge_one']::regclass[]) t;
SQL
q() { "${c[@]}" -At -c "$1"; }
load() {   # $1: the table to fill; the other one is emptied
  local other=purge_one
  [ "$1" = purge_one ] && other=purge_dist
  "${c[@]}" -v rows="$rows" -c "TRUNCATE purge_dist, purge_one" \
    -c "INSERT INTO $1 SELECT g, g % 50000, CASE WHEN g % 2 = 1 THEN now() - interval '1 year 1 day' - g * interval '30 s' ELSE now() - g * interval '15 s' END, 'note ' || g FROM generate_series(1, $rows) g" \
    -c "VACUUM ANALYZE $1, $other" >/dev/null
}
grp="citus: CALL pdp.purge, $hlabel expired of $label rows"
for i in 1 2 3; do
  for t in purge_one purge_dist; do
    load "$t"
    # Each worker's share of the expired rows (its shards').
    per_worker=""
    [ "$t" = purge_dist ] && per_worker=$(q "SELECT p.nodeport || ' ' || sum(p.result::bigint)
        FROM run_command_on_placements('purge_dist', \$\$SELECT count(*) FROM %s WHERE at < now() - interval '1 year'\$\$) p
       GROUP BY p.nodeport ORDER BY p.nodeport")
    start=$(q "SELECT extract(epoch FROM clock_timestamp()) * 1000")
    "${c[@]}" -c "SET pdp.purge_max_share = 1" -c "CALL pdp.purge(batch_size => 50000)" >/dev/null 2>&1 || true
    end=$(q "SELECT extract(epoch FROM clock_timestamp()) * 1000")
    d=$(awk "BEGIN {print $end - $start}")
    n=$(q "SELECT $rows - count(*) FROM $t")
    [ "$n" -eq "$half" ] || echo "bench: citus.sh: the purge of $t removed $n rows, not $half" >&2
    if [ "$t" = purge_one ]; then
      q "INSERT INTO bench.timing VALUES ('$grp', 'one node: CALL pdp.purge(batch_size => 50000)', true, $i, $d, $n)" >/dev/null
    else
      q "INSERT INTO bench.timing VALUES ('$grp', 'distributed: CALL pdp.purge(batch_size => 50000), 2 workers', false, $i, $d, $n)" >/dev/null
      w=0
      while read -r wport wrows; do
        w=$((w + 1))
        q "INSERT INTO bench.timing VALUES ('$grp', 'distributed: worker $w''s shards (its rows, the run''s time)', false, $i, $d, $wrows)" >/dev/null
      done <<<"$per_worker"
    fi
  done
done

# Into the bench database's timings, which bench/run.sh reports.
"${c[@]}" -c "COPY bench.timing TO STDOUT" | "${main[@]}" -c "COPY bench.timing FROM STDIN"
