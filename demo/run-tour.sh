#!/usr/bin/env bash
# The `make demo` tour, run inside the throwaway cluster of tools/with-cluster.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
for _ in $(seq 50); do pg_isready -q && break; sleep 0.2; done
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $PDP_DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$PDP_DB" -c "CREATE EXTENSION pg_cron" -f demo/lms.sql
echo "Sample LMS loaded into database \"$PDP_DB\": $(psql -XAtq -d "$PDP_DB" -c 'SELECT count(*) FROM lms.users') generated learners."
mkdir -p demo/out
report="$(pwd)/demo/out/compliance-report.html"
psql -X -v ON_ERROR_STOP=1 -v report_file="$report" -d "$PDP_DB" -f demo/tour.sql
