#!/usr/bin/env bash
# The whole test suite, in order: formatting, clippy (ssr and hydrate), cargo tests, then the
# Playwright end-to-end suite against a release build. Prints how long each stage took.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

declare -a SUMMARY=()
stage() {
  local name="$1"; shift
  printf '\n\033[1;35m==> %s\033[0m\n' "$name"
  local start=$SECONDS
  "$@"
  local took=$((SECONDS - start))
  SUMMARY+=("$(printf '%-28s %5ss' "$name" "$took")")
  printf '\033[1;35m<== %s took %ss\033[0m\n' "$name" "$took"
}

setup() {
  # shellcheck source=scripts/setup.sh
  . scripts/setup.sh
}
stage "setup" setup
stage "cargo fmt --check" cargo fmt --all -- --check
stage "clippy (ssr)" cargo clippy --features ssr --all-targets -- -D warnings
stage "clippy (hydrate)" cargo clippy --features hydrate --lib --target wasm32-unknown-unknown -- -D warnings
stage "purity of model/ and domain/" scripts/check-purity.sh
layers() { scripts/check-layers.sh --self-test && scripts/check-layers.sh; }
stage "import direction of layers" layers
# Unit tests check the embedded defaults, so the server's configuration variables that
# setup.sh exports for the end-to-end stage are left out of this stage.
unit_tests() {
  env -u WEBVM_ADDR -u WEBVM_DATA_DIR -u DATABASE_URL -u WEBVM_GUEST_DIR -u WEBVM_V86_DIR \
    -u WEBVM_PACKAGES_DIR -u WEBVM_CATALOG -u WEBVM_TEST_FIXTURES -u WEBVM_XTERM_DIR -u WEBVM_IDB_DIR -u LEPTOS_SITE_ROOT -u WEBVM_FETCH_ALLOW_HOSTS -u WEBVM_FETCH_MAX_BYTES -u WEBVM_FETCH_TIMEOUT -u WEBVM_GITHUB_API_URL \
    cargo test --features ssr
}
stage "cargo test" unit_tests
# The integration tests again, on a throwaway PostgreSQL cluster (scripts/postgres.sh; each
# test creates a database of its own on it). Skipped, loudly, only when Debian's postgresql
# package can't be installed; a cluster that is installed but fails fails the stage.
POSTGRES_DIR=""
stop_postgres() {
  if [ -n "$POSTGRES_DIR" ]; then
    scripts/postgres.sh stop "$POSTGRES_DIR" || true
    POSTGRES_DIR=""
  fi
}
postgres_integration_tests() {
  POSTGRES_DIR="$(mktemp -d "${TMPDIR:-/tmp}/webvm-postgres.XXXXXX")"
  trap stop_postgres EXIT
  local url status=0
  url="$(scripts/postgres.sh start "$POSTGRES_DIR")" || status=$?
  if [ "$status" = 3 ]; then
    stop_postgres
    printf '\n\033[1;41;97m %s \033[0m\n\n' \
      "SKIPPED: PostgreSQL not available (Debian's postgresql package could not be installed)" >&2
    SUMMARY+=("SKIPPED: PostgreSQL not available: the integration tests ran on SQLite only")
    return 0
  elif [ "$status" != 0 ]; then
    echo "scripts/postgres.sh failed (exit $status)" >&2
    return "$status"
  fi
  local tests=() file
  for file in tests/*.rs; do
    tests+=(--test "$(basename "$file" .rs)")
  done
  env -u WEBVM_ADDR -u WEBVM_DATA_DIR -u DATABASE_URL -u WEBVM_GUEST_DIR -u WEBVM_V86_DIR \
    -u WEBVM_PACKAGES_DIR -u WEBVM_CATALOG -u WEBVM_TEST_FIXTURES -u WEBVM_XTERM_DIR -u WEBVM_IDB_DIR -u LEPTOS_SITE_ROOT -u WEBVM_FETCH_ALLOW_HOSTS -u WEBVM_FETCH_MAX_BYTES -u WEBVM_FETCH_TIMEOUT -u WEBVM_GITHUB_API_URL \
    WEBVM_TEST_POSTGRES_URL="$url" cargo test --features ssr "${tests[@]}"
  stop_postgres
  trap - EXIT
}
stage "integration tests (PostgreSQL)" postgres_integration_tests
stage "release build" cargo leptos build --release
# The size of the release hydrate wasm, raw and gzipped (a budget of issue 14), in the summary.
wasm_size() {
  local wasm raw gzipped
  wasm="$(ls target/site/pkg/*.wasm 2>/dev/null | head -n 1)"
  if [ -z "$wasm" ]; then
    SUMMARY+=("hydrate wasm: not found under target/site/pkg")
    return 0
  fi
  raw="$(stat -c %s "$wasm")"
  gzipped="$(gzip -9 -c "$wasm" | wc -c)"
  SUMMARY+=("$(printf 'hydrate wasm %s: %s KB, %s KB gzipped' "$(basename "$wasm")" "$((raw / 1000))" "$((gzipped / 1000))")")
}
wasm_size
# The boot snapshot the VM tests restore: built once per image, v86 version and machine
# options (skipped in a second when cached next to the image).
stage "boot snapshot" node scripts/build-boot-snapshot.mjs
# With the test fixtures: the end-to-end suite's server lists the tampered demo, whose .deb
# fill-packages writes.
stage "fill package repository" env WEBVM_TEST_FIXTURES=1 "$WEBVM_SERVER_BIN" fill-packages
# Each runtime's layer, built natively in a chroot of the image (cached by image, .debs and
# builder; a second run takes about a second), then proven equal to dpkg's result.
stage "runtime layers" "$WEBVM_SERVER_BIN" build-layers
stage "layer equivalence (dpkg vs layer)" cargo test --features ssr --test runtime_layers -- --ignored
e2e() { (cd end2end && npx playwright test); }
stage "end-to-end (Playwright)" e2e

printf '\nStage times:\n'
printf '  %s\n' "${SUMMARY[@]}"
