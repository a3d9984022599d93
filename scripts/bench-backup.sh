#!/usr/bin/env bash
# The backup benchmark in the browser (end2end/bench/backup-bench.mjs): on the Backup page of a
# fresh profile, imports a 1,000-app backup (preview, then apply), times the mirror's replay of
# the 1,000 queued writes to the server, exports the workspace again and prints bytes per app.
# Prints figures; asserts nothing. Needs the release build (cargo leptos build --release). The
# export and import of a backup with the VM are timed by end2end/tests/apps-run.spec.ts (6c).
# Usage: scripts/bench-backup.sh [--apps=N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
exec node end2end/bench/backup-bench.mjs "$@"
