#!/usr/bin/env bash
# How cost grows: pseudonymisation, the protected scan and the purge at
# 1,000,000 and 10,000,000 rows (GROWTH_SCALES overrides, for trying the
# script at small sizes).  Each scale is its own group, with its own baseline
# measured in the same run, so bench/plot.py can compare cost per row.
set -euo pipefail
db=(psql -X -q -v ON_ERROR_STOP=1 -d "$PDP_DB")
q() { "${db[@]}" -A -t -c "$1"; }
scales=${GROWTH_SCALES:-1000000 10000000}
commas() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

"${db[@]}" <<'SQL'
SELECT pdp.define_purpose('growth_marketing', 'consent', 'growth benchmark');
-- 100,000 learners, half of them consenting, at every scale: rows per
-- learner grow with the table.
SELECT count(pdp.grant_consent(g, 'growth_marketing')) FROM generate_series(0, 99999, 2) g;
CREATE ROLE growth_reader;
GRANT USAGE ON SCHEMA bench TO growth_reader;
SELECT pdp.allow_purpose('growth_reader', 'growth_marketing');
SQL

for n in $scales; do
  label=$(commas "$n")
  echo "bench: growth at $label rows"
  "${db[@]}" -v n="$n" -v label="$label" <<'SQL'
SET max_parallel_workers_per_gather = 0;
CREATE TABLE bench.g_people AS
SELECT g AS id, g % 100000 AS learner, 'learner' || g || '@example.kz' AS email FROM generate_series(1, :n) g;
VACUUM ANALYZE bench.g_people;
SELECT bench.measure('growth: pseudonymisation, ' || :'label' || ' rows', 'md5(email)',
    'SELECT count(md5(email)) FROM bench.g_people', 5, true, :n);
SELECT bench.measure('growth: pseudonymisation, ' || :'label' || ' rows', 'pdp.pseudonym(email)',
    'SELECT count(pdp.pseudonym(email)) FROM bench.g_people', 5, false, :n);
SELECT bench.measure('growth: pseudonymisation, ' || :'label' || ' rows', 'pdp.pseudo_email(email)',
    'SELECT count(pdp.pseudo_email(email)) FROM bench.g_people', 5, false, :n);

SELECT pdp.register_table('bench.g_people', 'learner');
GRANT SELECT ON bench.g_people TO growth_reader;
SELECT pdp.protect_table('bench.g_people');
SELECT bench.measure('growth: protected count(*), ' || :'label' || ' rows', 'owner, hand-written consent and restriction filter', $$
SELECT count(*) FROM bench.g_people e
 WHERE EXISTS (SELECT 1 FROM pdp.consent_state c WHERE c.subject = e.learner::text AND c.purpose = 'growth_marketing'
                  AND (c.valid_until IS NULL OR c.valid_until > now()))
   AND NOT EXISTS (SELECT 1 FROM pdp.restriction r WHERE r.subject = e.learner::text)$$, 5, true, :n);
SET ROLE growth_reader;
SET pdp.purpose = 'growth_marketing';
SELECT bench.measure('growth: protected count(*), ' || :'label' || ' rows', 'protected table, purpose declared',
    'SELECT count(*) FROM bench.g_people', 5, false, :n);
RESET ROLE;
RESET pdp.purpose;
DROP TABLE bench.g_people;

CREATE TABLE bench.g_purge (id bigint PRIMARY KEY, learner bigint, at timestamptz, payload text);
SELECT pdp.register_table('bench.g_purge', 'learner');
SELECT pdp.set_retention('bench.g_purge', '1 year', 'at');
SQL
  grp="growth: purge, $label expired of $(commas $((2 * n))) rows"
  load() {
    "${db[@]}" -c "TRUNCATE bench.g_purge" \
      -c "INSERT INTO bench.g_purge SELECT g, g % 50000, CASE WHEN g % 2 = 1 THEN now() - interval '2 years' ELSE now() END, 'payload ' || g FROM generate_series(1, $((2 * n))) g" \
      -c "VACUUM ANALYZE bench.g_purge"
  }
  for i in 1 2 3 4 5; do
    load
    start=$(q "SELECT extract(epoch FROM clock_timestamp()) * 1000")
    q "DELETE FROM bench.g_purge WHERE at < now() - interval '1 year'" >/dev/null
    end=$(q "SELECT extract(epoch FROM clock_timestamp()) * 1000")
    "${db[@]}" -c "INSERT INTO bench.timing VALUES ('$grp', 'one plain DELETE', true, $i, $end - $start, $n)"
    load
    start=$(q "SELECT extract(epoch FROM clock_timestamp()) * 1000")
    "${db[@]}" -c "SET pdp.purge_max_share = 1" -c "CALL pdp.purge(batch_size => 5000)" >/dev/null 2>&1   # valve open: half the table goes
    end=$(q "SELECT extract(epoch FROM clock_timestamp()) * 1000")
    "${db[@]}" -c "INSERT INTO bench.timing VALUES ('$grp', 'CALL pdp.purge(batch_size => 5000)', false, $i, $end - $start, $n)"
  done
  "${db[@]}" -c "SELECT pdp.drop_retention('bench.g_purge')" -c "DROP TABLE bench.g_purge"
done
# Consent-aware visibility at 10,000,000 consents (and rows), beside the
# default 100,000 and 1,000,000 of bench/consent_scale.sh.
[ -z "${GROWTH_SCALES:-}" ] && BENCH_CONSENTS=10000000 "$(dirname "$0")/consent_scale.sh"
