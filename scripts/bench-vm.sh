#!/usr/bin/env bash
# The VM benchmark (end2end/bench/vm-bench.mjs): cold boot, first visit from the boot
# snapshot, hibernate, reload, exec round trips. Prints figures; asserts nothing. Needs the
# release build (cargo leptos build --release); builds the boot snapshot when it is missing.
# Flags go to the benchmark: --no-cold skips the cold boot.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
node scripts/build-boot-snapshot.mjs
exec node end2end/bench/vm-bench.mjs "$@"
