#!/usr/bin/env bash
# Build and install Citus 12.1.12 into the system PostgreSQL 15 from the source
# tarball in ../shared/fixtures/citus/, for test/tap/012_citus.pl.
#
# Does nothing (and says nothing) when the fixture is absent or Citus 12.1.12 is
# already installed (citus.control's 12.1-N and the version string in
# citus.so).  Installs the Debian build dependencies only if missing.
# Builds in a scratch directory under /tmp; Citus's source never enters the
# repository.  Fails loudly, with the tail of the build log, on a real failure.
set -euo pipefail
cd "$(dirname "$0")/.."

version=12.1.12
tarball=../shared/fixtures/citus/citus-$version.tar.gz
[ -f "$tarball" ] || exit 0
tarball=$(readlink -f "$tarball")

pg_config=$(command -v /usr/lib/postgresql/15/bin/pg_config || command -v pg_config)
libdir=$("$pg_config" --pkglibdir)
sharedir=$("$pg_config" --sharedir)
control="$sharedir/extension/citus.control"
if [ -f "$libdir/citus.so" ] && [ -f "$control" ] &&
   grep -Eq "^default_version *= *'${version%.*}-[0-9]+'" "$control" &&
   grep -aq "Citus $version on " "$libdir/citus.so"; then
  exit 0
fi

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)

deps=(libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libssl-dev
      libselinux1-dev libxslt1-dev libxml2-dev libpam0g-dev libreadline-dev zlib1g-dev
      autoconf flex bison make gcc postgresql-server-dev-15)
missing=()
for p in "${deps[@]}"; do
  grep -q 'install ok installed' <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-citus: installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/citus-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
log="$work/build.log"
fail() {
  echo "build-citus: $1 failed; last lines of the log:" >&2
  tail -n 40 "$log" >&2
  exit 1
}

echo "build-citus: building Citus $version (about two minutes)"
start=$(date +%s)
tar -xzf "$tarball" -C "$work"
cd "$work/citus-$version"
./configure PG_CONFIG="$pg_config" >"$log" 2>&1 || fail configure
make -j"$(nproc)" >>"$log" 2>&1 || fail make
"${sudo[@]}" make install >>"$log" 2>&1 || fail "make install"
echo "build-citus: Citus $version installed in $(( $(date +%s) - start ))s"
