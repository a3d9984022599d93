#!/usr/bin/env bash
# The deploy benchmark (end2end/bench/deploy-bench.mjs): from the boot snapshot, deploys into
# the guest through the page's test hooks (window.webvm.deployFiles / deployArchive) one 1 MiB
# file, 1,000 small files in nested folders and a 20 MiB ZIP, each into its own draft
# (static-busybox preset), and prints per deploy the total time, MiB/s and the phase split
# (pack, 9p copy, extract, switch, record + VM checkpoint) read from the deployment log; then
# the local-sync latency when the page has a hook for it. Prints figures and the goals beside
# them; asserts nothing. Needs the release build (cargo leptos build --release); builds the
# boot snapshot when it is missing. No runtime package is installed: a deploy does not need it.
# Arguments pick cases (one, many, zip, sync; default all); --runs=N repeats each deploy N
# times: scripts/bench-deploy.sh zip --runs=3
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
node scripts/build-boot-snapshot.mjs
exec node end2end/bench/deploy-bench.mjs "$@"
