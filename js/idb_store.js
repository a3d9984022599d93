// The page's IndexedDB, through npm `idb` (served at /vendor/idb/): one opener for every
// database, the VM snapshot store (src/client/snapshot_store.rs), the workspace record
// (src/client/packages/record.rs) and this browser's own keys and picked folders (below).
import { openDB } from "/vendor/idb/index.js";

// Opens database `name` at `version`, creating the object `stores` it lacks. Rejects when
// the browser has no IndexedDB or another tab holds an older version open (`blocked`),
// instead of waiting for that tab forever.
function openDatabase(name, version, stores) {
  if (!globalThis.indexedDB) return Promise.reject(new Error("this browser has no IndexedDB"));
  return new Promise((resolve, reject) => {
    openDB(name, version, {
      upgrade(db) {
        for (const store of stores) {
          if (!db.objectStoreNames.contains(store)) db.createObjectStore(store);
        }
      },
      blocked() {
        reject(new Error("IndexedDB is blocked by another tab"));
      },
    }).then(resolve, (error) => reject(error || new Error("IndexedDB open failed")));
  });
}

// VM snapshots: their own database, so they never race other stores' schema upgrades. Two
// object stores under the same key: the small JSON metadata and the (tens to hundreds of
// megabytes) state, in parts, written in one transaction, so reading the metadata never
// loads the state.
const DB_NAME = "webvm-snapshots";
const DB_VERSION = 1;
const META = "meta";
const DATA = "data";

const open = () => openDatabase(DB_NAME, DB_VERSION, [META, DATA]);

// Runs `work(tx)` in one transaction over both stores and resolves to its result once the
// transaction has committed (rejecting, with the browser's error, if it aborts).
async function run(mode, work) {
  const db = await open();
  try {
    const tx = db.transaction([META, DATA], mode);
    const [result] = await Promise.all([work(tx), tx.done]);
    return result;
  } finally {
    db.close();
  }
}

const get = (store, key) =>
  run("readonly", async (tx) => {
    const value = await tx.objectStore(store).get(key);
    return value === undefined ? null : value;
  });

// Chromium refuses single IndexedDB values above about 127 MiB, and a VM that has run for a
// while saves more than that; so the state is stored as parts of at most PART bytes under
// `<key>#<n>`, with `{ parts, size }` under the key itself.
const PART = 32 * 1024 * 1024;
const partKey = (key, n) => `${key}#${n}`;
const partRange = (key) => IDBKeyRange.bound(`${key}#`, `${key}#\uffff`);

export function snapshotMeta(key) {
  return get(META, key);
}

// The stored state as one ArrayBuffer (or null), reassembled from its parts.
export function snapshotData(key) {
  return run("readonly", async (tx) => {
    const store = tx.objectStore(DATA);
    const value = await store.get(key);
    if (value === undefined || value === null) return null;
    if (value instanceof ArrayBuffer) return value; // written before parts existed
    const parts = await Promise.all(Array.from({ length: value.parts }, (_, n) => store.get(partKey(key, n))));
    if (parts.some((part) => !(part instanceof ArrayBuffer))) return null;
    const whole = new Uint8Array(value.size);
    let offset = 0;
    for (const part of parts) {
      if (offset + part.byteLength > value.size) return null;
      whole.set(new Uint8Array(part), offset);
      offset += part.byteLength;
    }
    return offset === value.size ? whole.buffer : null;
  });
}

const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;

// Stores meta (JSON text) and state (ArrayBuffer). Rejects with name "QuotaExceededError"
// when the browser's storage can't take it.
export async function snapshotPut(key, metaJson, buffer) {
  if (navigator.storage && navigator.storage.estimate) {
    try {
      const { usage, quota } = await navigator.storage.estimate();
      let replaced = 0;
      const old = await snapshotMeta(key);
      if (old) replaced = Number(JSON.parse(old).size) || 0;
      if (typeof quota === "number" && typeof usage === "number") {
        const free = quota - usage + replaced;
        if (free < buffer.byteLength) {
          const error = new Error(`the snapshot needs ${mb(buffer.byteLength)}, only ${mb(Math.max(free, 0))} of ${mb(quota)} are free`);
          error.name = "QuotaExceededError";
          throw error;
        }
      }
    } catch (error) {
      if (error.name === "QuotaExceededError") throw error;
      // estimate() failing is no reason not to try
    }
  }
  try {
    await run("readwrite", (tx) => {
      const data = tx.objectStore(DATA);
      const writes = [data.delete(partRange(key))];
      const parts = Math.ceil(buffer.byteLength / PART);
      for (let n = 0; n < parts; n++) {
        writes.push(data.put(buffer.slice(n * PART, Math.min((n + 1) * PART, buffer.byteLength)), partKey(key, n)));
      }
      writes.push(data.put({ parts, size: buffer.byteLength }, key));
      writes.push(tx.objectStore(META).put(metaJson, key));
      return Promise.all(writes);
    });
  } catch (error) {
    if (error && error.name === "QuotaExceededError") {
      const full = new Error(`the browser refused ${mb(buffer.byteLength)} (${error.message})`);
      full.name = "QuotaExceededError";
      throw full;
    }
    throw error;
  }
}

export function snapshotDelete(key) {
  return run("readwrite", (tx) =>
    Promise.all([
      tx.objectStore(DATA).delete(key),
      tx.objectStore(DATA).delete(partRange(key)),
      tx.objectStore(META).delete(key),
    ]),
  );
}

// Moves the snapshot under `from` to `to` (replacing what `to` held) in one transaction, so
// a crash leaves either the old snapshot or the new one. Resolves to whether `from` existed.
export function snapshotPromote(from, to) {
  return run("readwrite", async (tx) => {
    const data = tx.objectStore(DATA);
    const meta = tx.objectStore(META);
    const [head, text] = await Promise.all([data.get(from), meta.get(from)]);
    if (head === undefined || text === undefined) return false;
    const parts = head instanceof ArrayBuffer ? [] : await Promise.all(Array.from({ length: head.parts }, (_, n) => data.get(partKey(from, n))));
    await data.delete(partRange(to));
    await Promise.all(parts.map((part, n) => data.put(part, partKey(to, n))));
    await Promise.all([data.put(head, to), meta.put(text, to)]);
    await Promise.all([data.delete(from), data.delete(partRange(from)), meta.delete(from)]);
    return true;
  });
}

// Asks the browser not to evict our storage under pressure; resolves to whether it agreed.
export async function persistStorage() {
  try {
    if (navigator.storage && navigator.storage.persist) return await navigator.storage.persist();
  } catch (_) {
    // not granted
  }
  return false;
}

// The workspace record: JSON text per key in `webvm-workspace`/`records`.
const RECORD_DB = "webvm-workspace";
const RECORDS = "records";
const openRecords = () => openDatabase(RECORD_DB, 1, [RECORDS]);

// The JSON text stored under `key`, or null.
export async function recordGet(key) {
  const db = await openRecords();
  try {
    const value = await db.get(RECORDS, key);
    return typeof value === "string" ? value : null;
  } finally {
    db.close();
  }
}

// Stores JSON text under `key` (one transaction; resolves once it has committed).
export async function recordPut(key, text) {
  const db = await openRecords();
  try {
    const tx = db.transaction(RECORDS, "readwrite");
    await Promise.all([tx.store.put(text, key), tx.done]);
    return true;
  } finally {
    db.close();
  }
}

// Writes several records in one transaction: `entries` is an array of [key, text], where a
// null text deletes the key. All of them or none are written.
export async function recordsPut(entries) {
  const db = await openRecords();
  try {
    const tx = db.transaction(RECORDS, "readwrite");
    const writes = entries.map(([key, text]) => (text === null ? tx.store.delete(key) : tx.store.put(text, key)));
    await Promise.all([...writes, tx.done]);
    return true;
  } finally {
    db.close();
  }
}

// What belongs to this browser alone and never leaves it: the non-extractable AES-GCM key that
// seals secrets (js/secret_box.js) and the folders picked for local sync
// (js/app_sources.js), both structured-cloned objects (CryptoKey, FileSystemDirectoryHandle)
// that IndexedDB stores as they are.
const DEVICE_DB = "webvm-device";
const SECRET_KEYS = "secret-keys";
const FOLDERS = "folders";
const openDevice = () => openDatabase(DEVICE_DB, 1, [SECRET_KEYS, FOLDERS]);

// The sealing key `{ id, key }` stored under `name`, or null.
export async function secretKeyGet(name) {
  const db = await openDevice();
  try {
    const value = await db.get(SECRET_KEYS, name);
    return value === undefined ? null : value;
  } finally {
    db.close();
  }
}

// Stores `record` under `name` unless one is there already, in one transaction (so two tabs
// that generate a key at once agree on the first); resolves to the record kept.
export async function secretKeyPutIfAbsent(name, record) {
  const db = await openDevice();
  try {
    const tx = db.transaction(SECRET_KEYS, "readwrite");
    const kept = (async () => {
      const existing = await tx.store.get(name);
      if (existing !== undefined) return existing;
      await tx.store.put(record, name);
      return record;
    })();
    const [result] = await Promise.all([kept, tx.done]);
    return result;
  } finally {
    db.close();
  }
}

// The directory handle picked for application `appId`, or null.
export async function folderGet(appId) {
  const db = await openDevice();
  try {
    const value = await db.get(FOLDERS, appId);
    return value === undefined ? null : value;
  } finally {
    db.close();
  }
}

export async function folderPut(appId, handle) {
  const db = await openDevice();
  try {
    const tx = db.transaction(FOLDERS, "readwrite");
    await Promise.all([tx.store.put(handle, appId), tx.done]);
    return true;
  } finally {
    db.close();
  }
}

export async function folderDelete(appId) {
  const db = await openDevice();
  try {
    const tx = db.transaction(FOLDERS, "readwrite");
    await Promise.all([tx.store.delete(appId), tx.done]);
    return true;
  } finally {
    db.close();
  }
}
