#!/usr/bin/env bash
# Install the Debian 12 packages pdp_ext needs to build, test and demo, if any
# are missing.  Safe to run again: it only calls apt-get when something is absent.
set -euo pipefail

packages=(
  postgresql-15                          # the server
  postgresql-contrib                     # pgcrypto, a benchmark baseline
  postgresql-server-dev-15               # PGXS, headers, pg_regress, isolation tester, TAP modules
  libssl-dev                             # OpenSSL 3: HMAC, HKDF, AES, RAND
  postgresql-15-cron                     # pg_cron, for scheduled purges
  postgresql-15-pgtap                    # pgTAP
  libtap-parser-sourcehandler-pgtap-perl # pg_prove
  libipc-run-perl                        # PostgreSQL::Test::Cluster (TAP suites)
  clang                                  # libFuzzer targets and sanitizers
  valgrind                               # the SQL suites under memcheck (make valgrind-server)
  python3                                # the valgrind report filter, the benchmark plot
  chromium                               # renders the HTML compliance report in a test
  pgbouncer                              # the transaction-pooling test (test/tap/016_pooler.pl)
  make gcc perl openssl
)

missing=()
for p in "${packages[@]}"; do
  grep -q 'install ok installed' <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "pdp_ext: installing missing packages: ${missing[*]}"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian creates and starts a "main" cluster on install; pdp_ext never uses it.
