#!/usr/bin/env bash
# Run a command inside a throwaway PostgreSQL 15 cluster (Debian's pg_virtualenv)
# with pg_cron and pdp_ext preloaded and a freshly generated key file.
#
# The command sees the usual PG* variables plus:
#   PDP_DB        the database pg_cron schedules in and the suites use
#   PDP_KEY_FILE  the key file the cluster is configured with
#   PDP_WORKDIR   a scratch directory, removed afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

export PDP_DB="${PDP_DB:-pdp_regress}"
PDP_WORKDIR=$(mktemp -d /tmp/pdp_ext.XXXXXX)
export PDP_WORKDIR
chmod 0755 "$PDP_WORKDIR"
trap 'rm -rf "$PDP_WORKDIR"' EXIT

# The server runs as "postgres" when we are root, as ourselves otherwise.
server_user=$(id -un)
[ "$(id -u)" -ne 0 ] || server_user=postgres
mkdir -m 0700 "$PDP_WORKDIR/keys"
chown "$server_user" "$PDP_WORKDIR/keys"
export PDP_KEY_FILE="$PDP_WORKDIR/keys/pdp.keys"
tools/pdp-keygen --owner "$server_user" "$PDP_KEY_FILE" >/dev/null
export PDP_SERVER_USER="$server_user"

pg_virtualenv -t -v 15 \
  -o "shared_preload_libraries=pg_cron,pdp_ext" \
  -o "cron.database_name=$PDP_DB" \
  -o "pdp.key_file=$PDP_KEY_FILE" \
  -o "log_min_messages=info" \
  -o "max_worker_processes=16" \
  "$@"
