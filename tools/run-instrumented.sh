#!/usr/bin/env bash
# The pg_regress, isolation and pgTAP suites against an instrumented server,
# in a cluster of their own.  Fails on any report that involves pdp_ext.
#
#   tools/run-instrumented.sh sanitize   (make sanitize-server)
#       pdp_ext.so built with -fsanitize=address,undefined (gcc; any report
#       aborts the backend).  Debian's server binary is not instrumented:
#       preloading the ASan runtime into it deadlocks in glibc's
#       bindtextdomain() at start-up, so the runtime arrives with pdp_ext.so
#       through shared_preload_libraries (verify_asan_link_order=0).  Loaded
#       that late, ASan cannot intercept the server's siglongjmp (every ERROR),
#       which leaves stack redzones poisoned and gives false reports, so stacks
#       are not instrumented (--param asan-stack=0).  This checks UBSan on all
#       of pdp_ext's code and ASan on its global data.
#
#   tools/run-instrumented.sh valgrind   (make valgrind-server)
#       The normal pdp_ext.so, every server process under valgrind memcheck:
#       reads and writes outside allocated blocks, use of uninitialised memory
#       in branches and system calls, bad frees.  The server is not built with
#       USE_VALGRIND, so memory inside a palloc block is one allocation to
#       memcheck, and PostgreSQL's own known reports (padding bytes written to
#       WAL and files, the regex cache's overlapping memcpy) are there too:
#       only reports with a pdp_ext frame in their stack fail the run.
#
# In sanitize mode the sanitized library replaces the installed one for the
# run; the normal build is installed again afterwards, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
mode=${1:?usage: tools/run-instrumented.sh sanitize|valgrind}
case "$mode" in sanitize|valgrind) ;; *) echo "unknown mode $mode" >&2; exit 2 ;; esac

bindir=$(pg_config --bindir)
libdir=$(pg_config --pkglibdir)
work=$(mktemp -d "/tmp/pdp_$mode.XXXXXX")
chmod 0755 "$work"
server_user=$(id -un)
[ "$(id -u)" -ne 0 ] || server_user=postgres
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$server_user" -- "$@"; else "$@"; fi; }

stop_server() {
  if [ -f "$work/data/postmaster.pid" ]; then
    kill -TERM "$(head -1 "$work/data/postmaster.pid")" 2>/dev/null || true
    for _ in $(seq 300); do [ -f "$work/data/postmaster.pid" ] || break; sleep 0.2; done
    kill -KILL "$(head -1 "$work/data/postmaster.pid" 2>/dev/null)" 2>/dev/null || true
  fi
}
cleanup() {
  stop_server
  [ "$mode" = sanitize ] && make -s -C "$src" install >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$mode" = sanitize ]; then
  echo "sanitize-server: building pdp_ext.so with -fsanitize=address,undefined"
  mkdir -p "$work/build"
  git -C "$src" ls-files -z | (cd "$src" && xargs -0 cp --parents -t "$work/build")
  flags="-fsanitize=address,undefined --param asan-stack=0 -fno-sanitize-recover=all -fno-omit-frame-pointer -O1 -g"
  make -s -C "$work/build" PG_CFLAGS="$flags" PG_LDFLAGS="-fsanitize=address,undefined" >/dev/null
  make -s -C "$work/build" PG_CFLAGS="$flags" PG_LDFLAGS="-fsanitize=address,undefined" install >/dev/null
  grep -q libasan <<<"$(ldd "$libdir/pdp_ext.so")" || { echo "sanitize-server: the installed library is not sanitized" >&2; exit 1; }
else
  command -v valgrind >/dev/null || { echo "valgrind-server: valgrind is missing (tools/ensure-deps.sh installs it)" >&2; exit 1; }
fi

# A cluster of its own; the postmaster loads pdp_ext (and pg_cron) at start.
mkdir -m 0700 "$work/keys"
chown "$server_user" "$work/keys"
tools/pdp-keygen --owner "$server_user" "$work/keys/pdp.keys" >/dev/null
chown "$server_user" "$work"
as_server env PATH="$bindir:$PATH" initdb -D "$work/data" -U postgres -A trust >/dev/null
port=$((20000 + RANDOM % 10000))
cat >> "$work/data/postgresql.conf" <<EOF
port = $port
listen_addresses = ''
unix_socket_directories = '$work'
shared_preload_libraries = 'pg_cron,pdp_ext'
cron.database_name = 'pdp_regress'
pdp.key_file = '$work/keys/pdp.keys'
max_worker_processes = 16
EOF
# Under valgrind, no JIT: loading LLVM there costs minutes and brings the
# dynamic loader's known strncmp over-reads into the report.
[ "$mode" = valgrind ] && echo "jit = off" >> "$work/data/postgresql.conf"
# Under valgrind the audit worker starts and commits many times slower: give
# a reversal's acknowledgement time (the fail-closed path itself is tested
# without valgrind, in test/tap/015_audit_durable.pl).
[ "$mode" = valgrind ] && echo "pdp.audit_timeout = '300s'" >> "$work/data/postgresql.conf"
if [ "$mode" = sanitize ]; then
  as_server env ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=0:abort_on_error=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$bindir/postgres" -D "$work/data" >"$work/server.log" 2>&1 &
else
  as_server valgrind --quiet --trace-children=yes --leak-check=no --num-callers=30 --error-limit=no --fullpath-after= \
    --log-file="$work/valgrind.%p.log" "$bindir/postgres" -D "$work/data" >"$work/server.log" 2>&1 &
fi
export PGHOST="$work" PGPORT="$port" PGUSER=postgres
for _ in $(seq 600); do pg_isready -q && break; sleep 0.2; done
pg_isready -q || { echo "$mode-server: the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE pdp_regress" -c "CREATE DATABASE pdp_isolation" -c "CREATE DATABASE pdp_tap"
psql -X -q -v ON_ERROR_STOP=1 -d pdp_regress -c "CREATE EXTENSION pg_cron"
psql -X -q -v ON_ERROR_STOP=1 -d pdp_isolation -c "CREATE EXTENSION pdp_ext"
psql -X -q -v ON_ERROR_STOP=1 -d pdp_tap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION pdp_ext"

failed=0
mkdir "$work/out"
# (The isolation spec key_reload rewrites the key file the server names: this
# cluster's own.)
if ! make -s -C "$src" installcheck CONTRIB_TESTDB=pdp_regress ISOLATION_TESTDB=pdp_isolation \
     REGRESS_OPTS="--inputdir=$src --outputdir=$work/out --use-existing --dbname=pdp_regress" \
     ISOLATION_OPTS="--inputdir=$src --outputdir=$work/out/iso --use-existing --dbname=pdp_isolation" >/dev/null; then
  echo "$mode-server: pg_regress or isolation failed" >&2
  cat "$work"/out/regression.diffs "$work"/out/iso/regression.diffs 2>/dev/null | head -100 >&2 || true
  failed=1
fi
pg_prove -d pdp_tap --failures "$src"/test/pgtap/*.sql >/dev/null 2>&1 || { echo "$mode-server: pgTAP failed" >&2; failed=1; }
stop_server

if grep -E -n "AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:|terminated by signal|was terminated by" "$work/server.log" >&2; then
  echo "$mode-server: sanitizer reports or crashes in the server log (above)" >&2
  failed=1
fi
if [ "$mode" = valgrind ]; then
  python3 "$src/tools/valgrind-reports.py" "$src" "$work"/valgrind.*.log || failed=1
fi
[ "$failed" -eq 0 ] && echo "$mode-server: every suite passed, no report involving pdp_ext"
exit "$failed"
