#!/usr/bin/env bash
# Run the Perl TAP suites in test/tap with PostgreSQL's own test modules
# (PostgreSQL::Test::Cluster).  initdb refuses to run as root, so as root the
# suites run as the "postgres" user from a scratch copy it can write to.
set -euo pipefail
cd "$(dirname "$0")/.."

bindir=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
pgxs=$(dirname "$(pg_config --pgxs)")/../..
work=$(mktemp -d /tmp/pdp_tap.XXXXXX)
cleanup() {
  mountpoint -q "$work/smallfs" 2>/dev/null && umount "$work/smallfs"
  rm -rf "$work"
}
trap cleanup EXIT
cp -r test/tap "$work/t"
mkdir -p "$work/tmp_check"

run=()
if [ "$(id -u)" -eq 0 ]; then
  # A 4 MB file system that a test can fill, for a real "No space left on
  # device" (011_full_disk.pl); mounting needs root.
  mkdir "$work/smallfs"
  if mount -t tmpfs -o size=4m,mode=0700 tmpfs "$work/smallfs"; then
    export PDP_SMALL_FS="$work/smallfs"
  else
    echo "run-tap: could not mount a small tmpfs; 011_full_disk.pl will skip" >&2
  fi
  chown -R postgres "$work"
  chmod 0755 "$work"
  run=(runuser -u postgres --)
fi
cd "$work"
# PDP_TAP_ONLY="006 010_upgrade" runs only the files whose names start so (default: all).
tests=(t/*.pl)
if [ -n "${PDP_TAP_ONLY:-}" ]; then
  tests=()
  for f in $PDP_TAP_ONLY; do tests+=(t/"${f%.pl}"*.pl); done
fi
"${run[@]}" env PATH="$bindir:$PATH" TESTDIR="$work" PG_REGRESS=/bin/true PDP_SMALL_FS="${PDP_SMALL_FS:-}" \
  PERL5LIB="$pgxs/src/test/perl${PERL5LIB:+:$PERL5LIB}" \
  prove ${PROVE_FLAGS:-} "${tests[@]}"
