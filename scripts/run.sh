#!/usr/bin/env bash
# Sets up what is missing, builds the release app, and serves it on its embedded defaults
# (http://127.0.0.1:3000, data in ./data). Flags after `--` go to the server, e.g. `-- --addr 0.0.0.0:8080`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
cargo leptos build --release
[ "${1:-}" = "--" ] && shift
exec "$WEBVM_SERVER_BIN" "$@"
