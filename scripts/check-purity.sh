#!/usr/bin/env bash
# Fails when src/model or src/domain import anything that does IO or belongs to one build only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pattern='\b(leptos|leptos_router|leptos_meta|leptos_axum|axum|sqlx|tokio|web_sys|wasm_bindgen|js_sys|gloo_storage|reqwest)\b|std::(fs|net|process|env)\b'
if grep -rnE "$pattern" src/model src/domain; then
  echo "model/ and domain/ must stay pure: the lines above import IO or a framework" >&2
  exit 1
fi
echo "model/ and domain/ import nothing impure"
