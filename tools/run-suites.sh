#!/usr/bin/env bash
# Run every suite against the cluster set up by tools/with-cluster.sh:
# pg_regress and isolation specs (make installcheck), pgTAP (pg_prove) and the
# Perl TAP suites that start clusters of their own.  Exits non-zero if any fails.
set -uo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n===== %s =====\n' "$*"; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
failed=()

# Wait for the server, then make the suites' databases.  pg_cron schedules in
# $PDP_DB (cron.database_name), so that is where the regression suite runs.
for _ in $(seq 50); do pg_isready -q && break; sleep 0.2; done
psql_q -d postgres -c "CREATE DATABASE $PDP_DB" -c "CREATE DATABASE pdp_isolation" -c "CREATE DATABASE pdp_tap"
psql_q -d "$PDP_DB" -c "CREATE EXTENSION pg_cron"
psql_q -d pdp_isolation -c "CREATE EXTENSION pdp_ext"
psql_q -d pdp_tap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION pdp_ext"

section "pg_regress and isolation specs"
rm -rf results output_iso regression.diffs regression.out
if ! make -s installcheck CONTRIB_TESTDB="$PDP_DB" ISOLATION_TESTDB=pdp_isolation; then
  failed+=("pg_regress/isolation")
  for f in regression.diffs output_iso/regression.diffs; do
    [ -f "$f" ] && { echo "--- $f"; cat "$f"; }
  done
fi

section "pgTAP"
if ls test/pgtap/*.sql >/dev/null 2>&1; then
  pg_prove -d pdp_tap --failures test/pgtap/*.sql || failed+=("pgTAP")
fi

section "compliance report rendered in headless Chromium"
tools/check-report.sh || failed+=("report")

section "TAP suites (clusters of their own)"
# Citus, for test/tap/012_citus.pl, built from ../shared/fixtures/citus/ when
# the fixture is there (a no-op when it is absent or Citus is installed).
tools/build-citus.sh || failed+=("Citus build")
if ls test/tap/*.pl >/dev/null 2>&1; then
  tools/run-tap.sh || failed+=("TAP")
fi

section "Moodle 4.3 with the Moodle profile (test/moodle, issue 16)"
# Builds Moodle from ../shared/fixtures/moodle with its own installer and
# generator and runs Moodle's code against it; skipped when the fixture is absent.
test/moodle/run.sh || failed+=("Moodle")

section "summary"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all suites passed"
