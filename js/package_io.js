// Browser IO for runtime package installs (src/client/packages.rs): downloads with byte
// progress and the workspace's package record in IndexedDB. (SHA-256 is v86_bridge.js's
// sha256Hex, shared with the boot snapshot check.)

// Downloads `url` into one Uint8Array, calling onProgress(loadedBytes, totalBytes) as chunks
// arrive (total is 0 when the server sends no Content-Length). `no-cache` revalidates with
// the ETag, so a changed file is never taken from the HTTP cache.
export async function fetchBytes(url, onProgress) {
  let response;
  try {
    response = await fetch(url, { cache: "no-cache" });
  } catch (error) {
    throw new Error(`could not download ${url}: ${error.message || error}`);
  }
  if (!response.ok) {
    throw new Error(`could not download ${url}: HTTP ${response.status} ${response.statusText}`.trim());
  }
  const total = Number(response.headers.get("Content-Length")) || 0;
  const chunks = [];
  let loaded = 0;
  if (response.body && response.body.getReader) {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      onProgress(loaded, total);
    }
  } else {
    const whole = new Uint8Array(await response.arrayBuffer());
    chunks.push(whole);
    loaded = whole.length;
    onProgress(loaded, total);
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

const DB_NAME = "webvm-workspace";
const STORE = "records";

function open() {
  return new Promise((resolve, reject) => {
    if (!globalThis.indexedDB) {
      reject(new Error("this browser has no IndexedDB"));
      return;
    }
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      if (!request.result.objectStoreNames.contains(STORE)) request.result.createObjectStore(STORE);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error || new Error("IndexedDB open failed"));
    request.onblocked = () => reject(new Error("IndexedDB is blocked by another tab"));
  });
}

// The JSON text stored under `key`, or null.
export async function recordGet(key) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, "readonly");
    const request = tx.objectStore(STORE).get(key);
    request.onsuccess = () => resolve(typeof request.result === "string" ? request.result : null);
    tx.oncomplete = () => db.close();
    tx.onerror = () => {
      db.close();
      reject(tx.error || new Error("IndexedDB read failed"));
    };
  });
}

// Stores JSON text under `key` (one transaction; resolves once it is durable).
export async function recordPut(key, text) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).put(text, key);
    tx.oncomplete = () => {
      db.close();
      resolve(true);
    };
    tx.onabort = tx.onerror = () => {
      db.close();
      reject(tx.error || new Error("IndexedDB write failed"));
    };
  });
}
