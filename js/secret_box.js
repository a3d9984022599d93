// Sealing of secrets (src/client/secrets.rs): AES-256-GCM through WebCrypto, with one
// non-extractable key per browser, generated on first use and kept in IndexedDB
// (idb_store.js). The sealed text is `enc:v1:<keyId>:<nonce>:<ciphertext>`, each part
// base64url without padding; the prefix and key id are bound to the ciphertext as
// additional data. Errors carry a `name` the Rust side maps to a message:
// `InsecureContextError`, `OtherBrowserError`, `DamagedSecretError`.
import { secretKeyGet, secretKeyPutIfAbsent } from "./idb_store.js";

const KEY_NAME = "aes-gcm-v1";
const PREFIX = "enc:v1:";

function failure(name, message) {
  const error = new Error(message);
  error.name = name;
  return error;
}

function subtle() {
  if (!globalThis.isSecureContext || !globalThis.crypto || !globalThis.crypto.subtle) {
    throw failure(
      "InsecureContextError",
      "secrets can only be sealed on a page served over HTTPS or from localhost (WebCrypto needs a secure context)",
    );
  }
  return globalThis.crypto.subtle;
}

function toBase64Url(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const additionalData = (keyId) => new TextEncoder().encode(`${PREFIX}${keyId}`);

// This browser's key `{ id, key }`, generated and stored the first time.
async function browserKey() {
  const crypto = subtle();
  const stored = await secretKeyGet(KEY_NAME);
  if (stored) return stored;
  const key = await crypto.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  const id = toBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(9)));
  return secretKeyPutIfAbsent(KEY_NAME, { id, key });
}

// Seals `clear` (text): resolves to the sealed text form.
export async function sealSecret(clear) {
  const crypto = subtle();
  const { id, key } = await browserKey();
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const ciphertext = await crypto.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: additionalData(id) },
    key,
    new TextEncoder().encode(clear),
  );
  return `${PREFIX}${id}:${toBase64Url(nonce)}:${toBase64Url(new Uint8Array(ciphertext))}`;
}

// Opens a value sealed with key `keyId`: resolves to the clear text.
export async function unsealSecret(keyId, nonce, ciphertext) {
  const crypto = subtle();
  const stored = await secretKeyGet(KEY_NAME);
  if (!stored || stored.id !== keyId) {
    throw failure(
      "OtherBrowserError",
      "this secret was sealed in another browser (or this browser's storage was cleared); enter it again here",
    );
  }
  let clear;
  try {
    clear = await crypto.decrypt(
      { name: "AES-GCM", iv: fromBase64Url(nonce), additionalData: additionalData(keyId) },
      stored.key,
      fromBase64Url(ciphertext),
    );
  } catch (_) {
    throw failure("DamagedSecretError", "this sealed secret is damaged and cannot be opened; enter it again");
  }
  return new TextDecoder().decode(clear);
}
