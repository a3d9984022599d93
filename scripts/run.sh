#!/usr/bin/env bash
# Sets up what is missing, builds the release app, and serves it on its embedded defaults
# (http://127.0.0.1:3000, data in ./data). Flags after `--` go to the server, e.g. `-- --addr 0.0.0.0:8080`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
cargo leptos build --release
# The boot snapshot first visits restore (instant when cached); without it the VM cold-boots.
node scripts/build-boot-snapshot.mjs || echo "warning: building the boot snapshot failed; first visits cold-boot" >&2
# Fill the package repository from Debian (instant when already filled). A failure is not fatal:
# the server still starts and shows the affected runtimes as errors.
"$WEBVM_SERVER_BIN" fill-packages || echo "warning: filling the package repository failed; see above" >&2
"$WEBVM_SERVER_BIN" build-layers || echo "warning: building runtime layers failed; runtimes install with dpkg in the VM" >&2
[ "${1:-}" = "--" ] && shift
exec "$WEBVM_SERVER_BIN" "$@"
