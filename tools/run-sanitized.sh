#!/usr/bin/env bash
# `make sanitize-server`: the pg_regress suites, the isolation specs and the
# pgTAP suites against a server whose pdp_ext.so is built with
# AddressSanitizer and UndefinedBehaviorSanitizer (gcc; any report aborts).
# Fails on any sanitizer report or crash in the server's log.
#
# The server binary is Debian's, not instrumented.  Preloading the ASan
# runtime into it deadlocks in glibc's bindtextdomain() at start-up, so the
# runtime comes in with pdp_ext.so through shared_preload_libraries
# (verify_asan_link_order=0).  Loaded that late, ASan cannot intercept the
# server's siglongjmp (every ERROR), which leaves unwound frames' stack
# redzones poisoned and gives false reports, so stacks are not instrumented
# (--param asan-stack=0).  What this run checks: UBSan on all of pdp_ext's
# code, ASan on its global data.  Heap blocks come from palloc and libc's
# malloc, with no redzones.  The plain-C engine's unit tests and fuzzers run
# fully instrumented (make sanitize, make fuzz); full ASan of the glue code
# needs an instrumented server build, which this target does not make.
#
# The sanitized library replaces the installed one for the run and the
# normal build is installed again afterwards, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

bindir=$(pg_config --bindir)
libdir=$(pg_config --pkglibdir)
work=$(mktemp -d /tmp/pdp_sanitize.XXXXXX)
chmod 0755 "$work"
server_user=$(id -un)
[ "$(id -u)" -ne 0 ] || server_user=postgres
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

restore() {
  as_server env PATH="$bindir:$PATH" pg_ctl -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  make -s -C "$src" install >/dev/null
  rm -rf "$work"
}
trap restore EXIT

echo "sanitize-server: building pdp_ext.so with -fsanitize=address,undefined"
mkdir -p "$work/build"
git -C "$src" ls-files -z | (cd "$src" && xargs -0 cp --parents -t "$work/build")
# No stack instrumentation: see above.
flags="-fsanitize=address,undefined --param asan-stack=0 -fno-sanitize-recover=all -fno-omit-frame-pointer -O1 -g"
make -s -C "$work/build" PG_CFLAGS="$flags" PG_LDFLAGS="-fsanitize=address,undefined" >/dev/null
make -s -C "$work/build" PG_CFLAGS="$flags" PG_LDFLAGS="-fsanitize=address,undefined" install >/dev/null
ldd "$libdir/pdp_ext.so" | grep -q libasan || { echo "sanitize-server: the installed library is not sanitized" >&2; exit 1; }

# A cluster of its own; the postmaster loads the sanitized library at start.
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
as_server env PATH="$bindir:$PATH" \
  ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=0:abort_on_error=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  pg_ctl -D "$work/data" -l "$work/server.log" -w start >/dev/null

export PGHOST="$work" PGPORT="$port" PGUSER=postgres
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE pdp_regress" -c "CREATE DATABASE pdp_isolation" -c "CREATE DATABASE pdp_tap"
psql -X -q -v ON_ERROR_STOP=1 -d pdp_regress -c "CREATE EXTENSION pg_cron"
psql -X -q -v ON_ERROR_STOP=1 -d pdp_isolation -c "CREATE EXTENSION pdp_ext"
psql -X -q -v ON_ERROR_STOP=1 -d pdp_tap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION pdp_ext"

failed=0
rm -rf "$work/out"; mkdir "$work/out"
# The isolation spec key_reload rewrites the key file named by the server's
# setting; it is this cluster's own.
if ! make -s -C "$src" installcheck CONTRIB_TESTDB=pdp_regress ISOLATION_TESTDB=pdp_isolation \
     REGRESS_OPTS="--inputdir=$src --outputdir=$work/out --use-existing --dbname=pdp_regress" \
     ISOLATION_OPTS="--inputdir=$src --outputdir=$work/out/iso --use-existing --dbname=pdp_isolation" >/dev/null; then
  echo "sanitize-server: pg_regress or isolation failed" >&2
  cat "$work"/out/regression.diffs "$work"/out/iso/regression.diffs 2>/dev/null | head -100 >&2 || true
  failed=1
fi
pg_prove -d pdp_tap --failures "$src"/test/pgtap/*.sql >/dev/null || { echo "sanitize-server: pgTAP failed" >&2; failed=1; }

if grep -E -n "AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:|terminated by signal|server process .* was terminated" "$work/server.log" >&2; then
  echo "sanitize-server: sanitizer reports or crashes in the server log (above)" >&2
  failed=1
fi
[ "$failed" -eq 0 ] && echo "sanitize-server: all suites passed, no sanitizer report"
exit "$failed"
