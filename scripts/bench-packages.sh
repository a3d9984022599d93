#!/usr/bin/env bash
# The runtime package benchmark (end2end/bench/packages-bench.mjs): from the boot snapshot,
# installs busybox-httpd, nginx and python-311 through the Packages page and measures the
# in-browser download + SHA-256 throughput. Prints figures; asserts nothing. Needs the release
# build; builds the boot snapshot and fills the package repository when they are missing.
# Arguments name other runtimes to install instead: scripts/bench-packages.sh sqlite curl
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
node scripts/build-boot-snapshot.mjs
"$WEBVM_SERVER_BIN" fill-packages
exec node end2end/bench/packages-bench.mjs "$@"
