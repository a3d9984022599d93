#!/usr/bin/env bash
# The runtime package benchmark (end2end/bench/packages-bench.mjs): from the boot snapshot,
# installs busybox-httpd, nginx, python-311 and flask through the Packages page, from their
# prebuilt layers and with dpkg side by side (median of 3), and measures the in-browser
# download + SHA-256 throughput. Prints figures; asserts nothing. Needs the release build;
# builds the boot snapshot, the package repository and the layers when they are missing.
# Arguments name other runtimes: scripts/bench-packages.sh --runs=1 --paths=layer sqlite curl
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
node scripts/build-boot-snapshot.mjs
"$WEBVM_SERVER_BIN" fill-packages
"$WEBVM_SERVER_BIN" build-layers
exec node end2end/bench/packages-bench.mjs "$@"
