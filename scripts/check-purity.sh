#!/usr/bin/env bash
# Fails when src/model, src/domain or src/guest_protocol.rs (which sits with domain, see
# scripts/check-layers.sh) import anything that does IO or belongs to one build only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pattern='\b(leptos|leptos_router|leptos_meta|leptos_axum|axum|sqlx|tokio|web_sys|wasm_bindgen|js_sys|gloo_storage|reqwest)\b|std::(fs|net|process|env)\b'
if grep -rnE "$pattern" src/model src/domain src/guest_protocol.rs; then
  echo "model/, domain/ and guest_protocol.rs must stay pure: the lines above import IO or a framework" >&2
  exit 1
fi
echo "model/, domain/ and guest_protocol.rs import nothing impure"
