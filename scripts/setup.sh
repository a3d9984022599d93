#!/usr/bin/env bash
# Installs whatever the build and tests need and is missing: the wasm32 target, cargo-leptos,
# wasm-bindgen-cli, npm packages (wasm-opt from binaryen, Playwright) and Debian's Chromium.
# Safe to run again: each step is skipped when its tool is already there.
# Source it (`. scripts/setup.sh`) to get PATH set up for the build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION="0.3.10"
WASM_BINDGEN_VERSION="0.2.130"

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust with rustup first" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  log "installing cargo-leptos $CARGO_LEPTOS_VERSION (compiles for 20-35 minutes, once)"
  cargo install --locked cargo-leptos --version "$CARGO_LEPTOS_VERSION"
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# Compiled artifacts live outside the clone, so a fresh clone (as in CI) rebuilds only this
# crate; cargo's fingerprints key them by content.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/webvm-appserver/target}"
export WEBVM_SERVER_BIN="$CARGO_TARGET_DIR/release/webvm-appserver"

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi

# npm packages: the lock files pin them; the npm cache (~/.npm) makes repeat installs offline-fast.
npm_install() {
  local dir="$1"
  local stamp="$dir/node_modules/.installed-lock"
  if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then
    return 0
  fi
  log "installing npm packages in ${dir}"
  (cd "$dir" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)
  cp "$dir/package-lock.json" "$stamp"
}
npm_install "$ROOT"
npm_install "$ROOT/end2end"

if ! wasm-opt --version 2>/dev/null | grep -q "version 132"; then
  echo "wasm-opt 132 from npm binaryen is not on PATH; check $ROOT/node_modules/.bin" >&2
  exit 1
fi

# The Debian i386 guest image: built from Debian packages into a cache outside the repo, keyed
# by the hash of guest/'s inputs (instant when cached). The server serves it from here.
if [ -z "${WEBVM_GUEST_DIR:-}" ]; then
  log "building or reusing the guest image (guest/build.sh)"
  WEBVM_GUEST_DIR="$(bash "$ROOT/guest/build.sh" | tail -n 1)"
fi
export WEBVM_GUEST_DIR
# The package repository's .deb files, downloaded from Debian by `webvm-appserver fill-packages`.
export WEBVM_PACKAGES_DIR="${WEBVM_PACKAGES_DIR:-$HOME/.cache/webvm-appserver/packages}"
export WEBVM_V86_DIR="${WEBVM_V86_DIR:-$ROOT/node_modules/v86/build}"
# Prebuilt runtime layers, made by `webvm-appserver build-layers` from the image and the .debs.
export WEBVM_LAYERS_DIR="${WEBVM_LAYERS_DIR:-$HOME/.cache/webvm-appserver/layers}"
