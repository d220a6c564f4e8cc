#!/usr/bin/env bash
# Render pdp.report('html') in headless Chromium and check what a person
# would see: the sections, the verified audit chain, the chart, a finding.
set -uo pipefail
cd "$(dirname "$0")/.."
db=pdp_report
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || exit 1
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL' || exit 1
CREATE EXTENSION pdp_ext;
CREATE TABLE users (id bigint PRIMARY KEY, email text, contact text, last_seen timestamptz);
INSERT INTO users SELECT g, 'u' || g || '@mail.kz', '+7 701 000 ' || lpad((g % 100)::text, 2, '0') || ' 11', now() FROM generate_series(1, 50) g;
SELECT pdp.register_table('users', 'id');
SELECT pdp.set_column_rule('users', 'email', 'pseudo_email', 'email');
SELECT pdp.define_purpose('marketing', 'consent', 'newsletters');
SELECT pdp.grant_consent(g, 'marketing') FROM generate_series(1, 30) g;
SELECT pdp.withdraw_consent(1, 'marketing');
SELECT pdp.set_retention('users', '3 years', 'last_seen');
SQL
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
psql -X -A -t -q -d "$db" -c "SELECT pdp.report('html')" > "$out/report.html" || exit 1
chmod -R a+rX "$out"
browser=$(command -v chromium || command -v chromium-browser)
[ -n "$browser" ] || { echo "not ok - chromium is not installed"; exit 1; }
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$out/profile" --dump-dom "file://$out/report.html" > "$out/dom.html" 2>"$out/chromium.log"
n=0; bad=0
check() {   # description, pattern
  n=$((n + 1))
  if grep -q -- "$2" "$out/dom.html"; then echo "ok $n - $1"; else echo "not ok $n - $1"; bad=$((bad + 1)); fi
}
check "Chromium rendered the page" "<body"
check "the title" "pdp_ext compliance report"
check "the record of processing, with the classified column" "<td>email</td>"
check "the audit chain verifies" "The hash chain verifies"
check "a finding nobody classified: phone numbers in a column named contact" "<td>contact</td>"
check "the consents chart" "<svg"
check "consent counts" "29 active, 1 withdrawn"
check "retention" "Expiring in 30 days"
absent() {  # description, pattern that must not appear
  n=$((n + 1))
  if grep -q -- "$2" "$out/dom.html"; then echo "not ok $n - $1"; bad=$((bad + 1)); else echo "ok $n - $1"; fi
}
absent "no e-mail address appears in the report" "@mail.kz"
absent "no phone number appears in the report" "+7 701" 
echo "1..$n"
psql -X -q -d postgres -c "DROP DATABASE $db" >/dev/null
[ "$bad" -eq 0 ]
