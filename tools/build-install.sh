#!/usr/bin/env bash
# Build pdp_ext with warnings as errors and install it into the server's directories.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
make -s PG_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers" >/dev/null
"${sudo[@]}" make -s install >/dev/null
