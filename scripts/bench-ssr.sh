#!/usr/bin/env bash
# Server-side rendering throughput (issue 14, item 8): one release server on a fresh data
# directory with the filled package catalog, then `wrk -t2 -c16` against /healthz and each
# server-rendered page in turn, in the same run. Prints requests/s, the share of /healthz's rate,
# the server's CPU time per request (user + system, from /proc: steadier than the rate on a
# shared machine, since wrk runs on the same two cores) and the page's size. Asserts nothing. Needs the release build (cargo leptos build --release)
# and installs Debian's wrk when it is missing.
#
# Usage: scripts/bench-ssr.sh [--seconds=N] [route…]   (default: 10 s; /applications / /packages)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh

SECONDS_PER_ROUTE=10
ROUTES=()
for arg in "$@"; do
  case "$arg" in
    --seconds=*) SECONDS_PER_ROUTE="${arg#--seconds=}" ;;
    /*) ROUTES+=("$arg") ;;
    *) echo "unknown argument: $arg (routes start with /)" >&2; exit 2 ;;
  esac
done
[ ${#ROUTES[@]} -gt 0 ] || ROUTES=(/applications / /packages)

if ! command -v wrk >/dev/null; then
  log "installing Debian's wrk"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
[ -x "$WEBVM_SERVER_BIN" ] || { echo "no release server at $WEBVM_SERVER_BIN: run cargo leptos build --release" >&2; exit 1; }

DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/webvm-bench-ssr.XXXXXX")"
PORT=$((20000 + RANDOM % 20000))
BASE="http://127.0.0.1:$PORT"
RUST_LOG=warn "$WEBVM_SERVER_BIN" --addr "127.0.0.1:$PORT" --data-dir "$DATA_DIR" \
  --site-root "${LEPTOS_SITE_ROOT:-$ROOT/target/site}" >"$DATA_DIR/server.log" 2>&1 &
SERVER_PID=$!
cleanup() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT
for _ in $(seq 1 300); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$DATA_DIR/server.log" >&2; exit 1; }
  sleep 0.1
done
# The server's CPU time so far, in clock ticks (user + system).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# One wrk run (2 threads, 16 connections): "requests/s CPU-µs-per-request"; a run with errors
# or non-2xx answers is reported as such rather than as a rate.
rate() {
  local output before after
  before="$(cpu_ticks)"
  output="$(wrk -t2 -c16 -d"${SECONDS_PER_ROUTE}s" "$BASE$1")"
  after="$(cpu_ticks)"
  if grep -q 'Non-2xx\|Socket errors' <<<"$output"; then
    echo "$output" >&2
    echo "errors —"
  else
    awk -v ticks=$((after - before)) -v tick_us="$TICK_US" '
      /^ *[0-9]+ requests in/ { requests = $1 }
      /^Requests\/sec:/ { rate = $2 }
      END { printf "%.0f %.0f", rate, (requests > 0 ? ticks * tick_us / requests : 0) }' <<<"$output"
  fi
}

# A short warm-up, so the first route measured doesn't pay for the server's first requests.
wrk -t2 -c16 -d2s "$BASE/healthz" >/dev/null
row() { printf '%-16s %12s %18s %16s %12s\n' "$@"; }
row "route" "requests/s" "share of /healthz" "CPU µs/request" "HTML bytes"
read -r healthz healthz_cpu <<<"$(rate /healthz)"
row "/healthz" "$healthz" "—" "$healthz_cpu" "$(curl -fsS "$BASE/healthz" | wc -c)"
for route in "${ROUTES[@]}"; do
  read -r requests cpu <<<"$(rate "$route")"
  share="—"
  if [[ "$requests" =~ ^[0-9]+$ && "$healthz" =~ ^[0-9]+$ && "$healthz" -gt 0 ]]; then
    share="$(awk -v r="$requests" -v h="$healthz" 'BEGIN { printf "%.1f %%", 100 * r / h }')"
  fi
  row "$route" "$requests" "$share" "$cpu" "$(curl -fsS "$BASE$route" | wc -c)"
done
