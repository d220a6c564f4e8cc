#!/usr/bin/env bash
# Consent-aware visibility at scale (issue 13), at 100,000 and 1,000,000
# consents (BENCH_CONSENTS overrides the list; the growth run adds 10,000,000):
#  - primary-key lookups on a protected table (pgbench, 2 clients, 5 s runs,
#    5 rounds, the ways alternating within each round): unprotected table
#    (baseline), protected without churn, protected while a third client
#    grants and withdraws consents continuously; and, as its own group, that
#    last line against the unprotected table with the same churn client
#    running (on 2 cores the churn client takes one either way, so only this
#    ratio isolates pdp's cost under churn);
#  - a protected count(*) over as many rows as consents, each run a top-level
#    statement, 7 alternating rounds after a warm-up: owner's hand-written
#    filter (baseline), protected serial, protected with 2 workers; and the
#    2-worker count against the serial one as its own group;
#  - memory of pdp_ext's contexts in the backend in that count's transaction
#    and after it (kB, not ms);
#  - import_consents against a plain INSERT ... SELECT of the same rows into a
#    table of the same shape.
# Targets: lookups <= 1.1x unprotected without churn and <= 1.2x under churn;
# parallel count < 1.0x serial and <= 1.0x the owner's filter; memory
# flat; import >= 0.3x the plain INSERT's rate (<= 3.33x its time).
set -euo pipefail
db=(psql -X -q -v ON_ERROR_STOP=1 -d "$PDP_DB")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sizes=${BENCH_CONSENTS:-"100000 1000000"}
"${db[@]}" <<'SQL'
DO $$ BEGIN CREATE ROLE bench_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
SELECT pdp.define_purpose('bench_news', 'consent', 'consent-scale benchmark');
SELECT pdp.allow_purpose('bench_app', 'bench_news');
SELECT pdp.define_purpose('bench_import_' || r, 'consent', 'consent-scale benchmark: import rounds') FROM generate_series(1, 2) r;
GRANT USAGE ON SCHEMA bench TO bench_app;
SQL
# pgbench connects as bench_app the way the cluster lets the suites connect.
"${db[@]}" -v pw="${PGPASSWORD:-}" -c "SELECT 1" >/dev/null
[ -n "${PGPASSWORD:-}" ] && "${db[@]}" -v pw="$PGPASSWORD" <<'SQL'
ALTER ROLE bench_app PASSWORD :'pw';
SQL
for n in $sizes; do
  label=$(numfmt --grouping "$n" 2>/dev/null || echo "$n")
  "${db[@]}" -v n="$n" <<'SQL'
DROP TABLE IF EXISTS bench.learner, bench.learner_plain, bench.consent_plain;
SELECT pdp.withdraw_consents(ARRAY(SELECT subject FROM pdp.consent_state WHERE purpose = 'bench_news'), 'bench_news');
CREATE TABLE bench.learner (id bigint PRIMARY KEY, name text);
INSERT INTO bench.learner SELECT g, 'learner ' || g FROM generate_series(1, :n) g;
CREATE TABLE bench.learner_plain AS SELECT * FROM bench.learner;
ALTER TABLE bench.learner_plain ADD PRIMARY KEY (id);
SELECT pdp.register_table('bench.learner', 'id');
SELECT pdp.protect_table('bench.learner');
GRANT SELECT ON bench.learner, bench.learner_plain TO bench_app;
CREATE TABLE bench.consent_plain (subject text, purpose text, event_id bigint, policy_version text, valid_until timestamptz,
                                  PRIMARY KEY (subject, purpose));
VACUUM ANALYZE bench.learner, bench.learner_plain;
SQL
  # Import rate, against a plain INSERT of the same rows into a table of the
  # same shape, alternating: at up to 100,000 consents three rounds (the
  # first two import into purposes of their own, so that each import meets
  # an empty history, and are withdrawn after), at larger sizes one.  The
  # last round imports the lookups' purpose.
  rounds=1; [ "$n" -le 100000 ] && rounds=3
  for r in $(seq "$rounds"); do
    p=bench_news; [ "$r" -lt "$rounds" ] && p=bench_import_$r
    "${db[@]}" -c "TRUNCATE bench.consent_plain" >/dev/null
    t_plain=$("${db[@]}" -At -v n="$n" -v p="$p" <<'SQL'
\timing on
INSERT INTO bench.consent_plain SELECT g::text, :'p', g, NULL, NULL FROM generate_series(1, :n) g;
SQL
)
    t_import=$("${db[@]}" -At -v n="$n" -v p="$p" <<'SQL'
\timing on
SELECT pdp.import_consents(ARRAY(SELECT ROW(g::text, :'p', now(), NULL, '{}', NULL)::pdp.consent_import
                                  FROM generate_series(1, :n) g)) > 0;
SQL
)
    ms_plain=$(echo "$t_plain" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
    ms_import=$(echo "$t_import" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
    "${db[@]}" -c "INSERT INTO bench.timing VALUES ('consent import: $label consents', 'plain INSERT ... SELECT into a table of the same shape', true, $r, $ms_plain, $n),
                                                 ('consent import: $label consents', 'pdp.import_consents (history, evidence, audit)', false, $r, $ms_import, $n)"
    if [ "$p" != bench_news ]; then
      "${db[@]}" -v p="$p" >/dev/null <<'SQL'
SELECT pdp.withdraw_consents(ARRAY(SELECT subject FROM pdp.consent_state WHERE purpose = :'p'), :'p');
SQL
    fi
  done
  "${db[@]}" -c "VACUUM pdp.consent_state"
  "${db[@]}" -c "ANALYZE pdp.consent_state"
  # Primary-key lookups: pgbench latency, three ways.
  cat > "$work/plain.sql" <<SQL
\set id random(1, $n)
SELECT name FROM bench.learner_plain WHERE id = :id;
SQL
  cat > "$work/protected.sql" <<SQL
\set id random(1, $n)
SET pdp.purpose = 'bench_news';
SELECT name FROM bench.learner WHERE id = :id;
SQL
  sed -i 's/^SET pdp.purpose.*//' "$work/protected.sql"
  cat > "$work/churn.sql" <<SQL
\set s random(1, $n)
SELECT pdp.withdraw_consent(:s::bigint, 'bench_news');
SELECT pdp.grant_consent(:s::bigint, 'bench_news');
SQL
  # One round runs every way once, the rounds alternate (A/B/C/D, A/B/C/D, ...),
  # so that load from other work on the machine falls on all of them alike.
  lookup_once() {   # name, script, is_baseline, round
    lat=$(PGOPTIONS="-c pdp.purpose=bench_news" pgbench -n -U bench_app -c 2 -j 2 -T 5 -f "$2" "$PDP_DB" 2>/dev/null \
          | awk '/^latency average/ {print $4; exit}')
    "${db[@]}" -c "INSERT INTO bench.timing VALUES ('visibility: primary-key lookup, $label consents', '$1', $3, $4, $lat, 1)"
  }
  # The same lookups under churn, against the unprotected table under the
  # same churn: the churn client takes one of the two cores either way, so
  # this ratio is pdp's own cost under churn.
  lookup_churn_once() {   # name, script, is_baseline, round
    local churn_pid=
    pgbench -n -c 1 -T 6 -f "$work/churn.sql" "$PDP_DB" >/dev/null 2>&1 & churn_pid=$!
    lat=$(PGOPTIONS="-c pdp.purpose=bench_news" pgbench -n -U bench_app -c 2 -j 2 -T 5 -f "$2" "$PDP_DB" 2>/dev/null \
          | awk '/^latency average/ {print $4; exit}')
    wait "$churn_pid" || true
    "${db[@]}" -c "INSERT INTO bench.timing VALUES ('visibility: primary-key lookup under consent churn, $label consents', '$1', $3, $4, $lat, 1)"
    # The protected run under churn is also the old line against the
    # unprotected table without churn.
    [ "$3" = false ] && "${db[@]}" -c "INSERT INTO bench.timing VALUES ('visibility: primary-key lookup, $label consents', '$1', false, $4, $lat, 1)"
    return 0
  }
  for i in 1 2 3 4 5; do
    lookup_once 'unprotected table' "$work/plain.sql" true "$i"
    lookup_once 'protected, no consent churn' "$work/protected.sql" false "$i"
    lookup_churn_once 'unprotected table, the same churn client running' "$work/plain.sql" true "$i"
    lookup_churn_once 'protected, another client granting and withdrawing' "$work/protected.sql" false "$i"
  done
  # Whole-table counts, each a top-level statement (as an application sends
  # them), the three ways alternating in each of 7 rounds after a warm-up.
  {
    echo "GRANT SELECT ON bench.learner TO bench_app;"
    echo "SET parallel_setup_cost = 0;"
    echo "SET parallel_tuple_cost = 0;"
    for i in 0 1 2 3 4 5 6 7; do
      cat <<SQL
RESET ROLE;
SET max_parallel_workers_per_gather = 0;
\\echo MARK $i owner
\\timing on
SELECT count(*) FROM bench.learner e
 WHERE EXISTS (SELECT 1 FROM pdp.consent_state c WHERE c.subject = e.id::text AND c.purpose = 'bench_news'
                  AND (c.valid_until IS NULL OR c.valid_until > now()))
   AND NOT EXISTS (SELECT 1 FROM pdp.restriction r WHERE r.subject = e.id::text);
\\timing off
SET ROLE bench_app;
SET pdp.purpose = 'bench_news';
\\echo MARK $i serial
\\timing on
SELECT count(*) FROM bench.learner;
\\timing off
SET max_parallel_workers_per_gather = 2;
\\echo MARK $i parallel
\\timing on
SELECT count(*) FROM bench.learner;
\\timing off
SQL
    done
  } > "$work/counts.sql"
  "${db[@]}" -At -f "$work/counts.sql" | awk -v grp="visibility: count(*), $label rows and consents" -v n="$n" '
    /^MARK / { round = $2; way = $3; next }
    /^Time: / && way != "" {
      if (round > 0) {
        if (way == "owner") name = "owner, hand-written consent and restriction filter";
        else if (way == "serial") name = "protected, serial";
        else name = "protected, 2 workers";
        printf "INSERT INTO bench.timing VALUES (%s, %s, %s, %d, %s, %d);\n",
               "'\''" grp "'\''", "'\''" name "'\''", way == "owner" ? "true" : "false", round, $2, n;
      }
      way = "";
    }' > "$work/counts_timing.sql"
  "${db[@]}" -f "$work/counts_timing.sql"
  # The parallel count against the serial one, as its own group.
  "${db[@]}" -v label="$label" <<'SQL'
INSERT INTO bench.timing
SELECT 'visibility: protected count(*) with 2 workers against serial, ' || :'label' || ' rows and consents',
       name,
       name = 'protected, serial', run, ms, rows
  FROM bench.timing
 WHERE grp = 'visibility: count(*), ' || :'label' || ' rows and consents' AND name LIKE 'protected,%';
SQL
  # Memory: while the count's transaction is open (its set is still held),
  # and after it has ended (a backend holds no set between transactions).
  kb=$("${db[@]}" -At -v n="$n" <<'SQL'
BEGIN;
SET LOCAL ROLE bench_app;
SET LOCAL pdp.purpose = 'bench_news';
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT count(*) FROM bench.learner \g /dev/null
RESET ROLE;
SELECT round(coalesce(sum(total_bytes), 0) / 1024.0, 1) FROM pg_backend_memory_contexts WHERE name LIKE 'pdp_ext%';
COMMIT;
SELECT round(coalesce(sum(total_bytes), 0) / 1024.0, 1) FROM pg_backend_memory_contexts WHERE name LIKE 'pdp_ext%';
SQL
)
  kb_in=$(echo "$kb" | sed -n 1p)
  kb_after=$(echo "$kb" | sed -n 2p)
  "${db[@]}" -c "INSERT INTO bench.timing VALUES ('visibility: pdp_ext memory per backend in a count(*)''s transaction (kB, not ms)', '$label consents', false, 1, $kb_in, $n)"
  "${db[@]}" -c "INSERT INTO bench.timing VALUES ('visibility: pdp_ext memory per backend after a count(*) (kB, not ms)', '$label consents', false, 1, $kb_after, $n)"
done
"${db[@]}" -c "UPDATE bench.timing SET is_baseline = true WHERE grp LIKE 'visibility: pdp_ext memory%' AND rows = (SELECT min(rows) FROM bench.timing WHERE grp LIKE 'visibility: pdp_ext memory%')"
