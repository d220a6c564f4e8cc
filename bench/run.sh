#!/usr/bin/env bash
# `make bench`: run every bench/*.sql scenario in the throwaway cluster of
# tools/with-cluster.sh and write BENCHMARKS.md and bench/results.csv.
# Benchmarks report; they never fail because of a number.
# BENCH=word runs only the scenarios whose file name contains it and prints
# their report instead of rewriting BENCHMARKS.md (for work on one of them).
set -euo pipefail
cd "$(dirname "$0")/.."
for _ in $(seq 50); do pg_isready -q && break; sleep 0.2; done
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $PDP_DB"
db=(psql -X -q -v ON_ERROR_STOP=1 -d "$PDP_DB")
"${db[@]}" -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION pdp_ext" -f bench/lib.sql
for f in bench/[0-9a-z]*.sql bench/[0-9a-z]*.sh; do
  case "$f" in bench/lib.sql|bench/run.sh|bench/report.sh) continue ;; esac
  [[ -n "${BENCH:-}" && "$f" != *"$BENCH"* ]] && continue
  echo "bench: $f"
  case "$f" in
    *.sql) "${db[@]}" -f "$f" ;;
    *.sh)  "$f" ;;
  esac
done
"${db[@]}" -A -F, -c "COPY (SELECT * FROM bench.report) TO STDOUT WITH CSV HEADER" > bench/results.new.csv
if [[ -n "${BENCH:-}" ]]; then
  bench/report.sh bench/results.new.csv
  rm -f bench/results.new.csv
  exit 0
fi
mv bench/results.new.csv bench/results.csv
PLOT_SVG=bench/growth.svg bench/report.sh bench/results.csv > BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md and bench/results.csv"
