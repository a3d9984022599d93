#!/usr/bin/env bash
# The request-bridge benchmark (end2end/bench/bridge-bench.mjs): from the boot snapshot, one
# static site (busybox httpd) started through window.webvm, then the median latency of a small
# GET through /apps/<name>/ against the raw connect(port) request in the same run (their
# ratio; goal ≤ 2×), the throughput of a 1 MiB response and 10 concurrent requests. Prints
# figures; asserts nothing. Needs the release build (cargo leptos build --release).
# Usage: scripts/bench-bridge.sh [--runs=N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
node scripts/build-boot-snapshot.mjs
exec node end2end/bench/bridge-bench.mjs "$@"
