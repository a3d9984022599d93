// Where a deploy's files come from in the page (src/client/apps/sources.rs and
// local_sync.rs): files and folders picked in an <input> or dropped, downloads through the
// server's source routes with byte progress, and local folders (File System Access API, or
// an OPFS folder in tests) scanned for changes. Reading, limits and decisions are the Rust
// side's; this module only reaches the browser APIs.
import { folderGet, folderPut, folderDelete } from "./idb_store.js";

// ---- picked and dropped files ----

// What an <input type=file> holds now: `[{ file, path }]`; `path` is the file's
// `webkitRelativePath` (a directory input: `<folder>/<sub>/<name>`) or its name.
export function captureInput(input) {
  const picked = [];
  for (const file of Array.from((input && input.files) || [])) {
    picked.push({ file, path: file.webkitRelativePath || file.name });
  }
  return picked;
}

// What a drop event carries, taken while the event is being dispatched (the browser empties
// `dataTransfer` afterwards): `[{ file, path } | { entry }]`, where an entry (a dropped
// folder, or a file the browser gives as an entry) is walked later by `listPicked`.
export function captureDrop(event) {
  event.preventDefault();
  const transfer = event.dataTransfer;
  const picked = [];
  if (!transfer) return picked;
  const items = Array.from(transfer.items || []).filter((item) => item.kind === "file");
  if (items.length > 0) {
    for (const item of items) {
      const entry = typeof item.webkitGetAsEntry === "function" ? item.webkitGetAsEntry() : null;
      if (entry) {
        picked.push({ entry });
      } else {
        const file = item.getAsFile();
        if (file) picked.push({ file, path: file.name });
      }
    }
    return picked;
  }
  for (const file of Array.from(transfer.files || [])) picked.push({ file, path: file.name });
  return picked;
}

const entryFile = (entry) => new Promise((resolve, reject) => entry.file(resolve, reject));

// One batch of a directory entry's children (empty once all are read).
const readBatch = (reader) => new Promise((resolve, reject) => reader.readEntries(resolve, reject));

// Expands what was captured into files `{ files: [{ path, size, file }], bytes, over }`,
// walking dropped folders depth first; stops as soon as there are more than `maxFiles` files
// (`over: "files"`) or `maxBytes` bytes (`over: "bytes"`), so a huge drop is refused before
// it is walked, let alone read.
export async function listPicked(picked, maxFiles, maxBytes) {
  const files = [];
  let bytes = 0;
  const add = (path, file) => {
    files.push({ path, size: file.size, file });
    bytes += file.size;
    if (files.length > maxFiles) return "files";
    if (bytes > maxBytes) return "bytes";
    return "";
  };
  const stack = [];
  for (const item of picked) {
    if (item.file) {
      const over = add(item.path, item.file);
      if (over) return { files, bytes, over };
    } else if (item.entry) {
      stack.push(item.entry);
    }
  }
  while (stack.length > 0) {
    const entry = stack.pop();
    const path = entry.fullPath.replace(/^\/+/, "");
    if (entry.isFile) {
      const over = add(path, await entryFile(entry));
      if (over) return { files, bytes, over };
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await readBatch(reader);
        if (batch.length === 0) break;
        stack.push(...batch);
      }
    }
  }
  return { files, bytes, over: "" };
}

// The bytes of a File (a snapshot: it fails with NotReadableError if the file changed on
// disk since it was listed).
export async function readFileBytes(file) {
  return new Uint8Array(await file.arrayBuffer());
}

// ---- downloads through the server ----

// The file name a Content-Disposition header gives, or "".
function dispositionName(header) {
  if (!header) return "";
  const encoded = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  if (encoded) {
    try {
      return decodeURIComponent(encoded[1].trim());
    } catch (_) {
      // fall through to the plain form
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(header);
  return plain ? plain[1].trim() : "";
}

// Sends `method` to `url` (same origin) with an optional JSON `body` and `headers` (an
// object). Resolves to `{ ok: true, reader, total, limit, name, commit }` to read with
// `readChunk` (`total`: Content-Length, 0 when unknown; `limit`: the server's cap,
// X-Fetch-Limit-Bytes; `name`: X-Source-Filename; `commit`: X-Commit-Sha), or `{ ok: false,
// status, statusText, body }` (the error answer's text); rejects only when the server can't
// be reached.
export async function openSource(url, method, body, headers) {
  const init = { method, headers: { ...(headers || {}) }, cache: "no-store", credentials: "same-origin" };
  if (body !== null && body !== undefined) {
    init.body = body;
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new Error(`the server could not be reached (${error.message || error})`);
  }
  if (!response.ok) {
    let text = "";
    try {
      text = await response.text();
    } catch (_) {
      // no body
    }
    return { ok: false, status: response.status, statusText: response.statusText, body: text };
  }
  let reader;
  if (response.body && response.body.getReader) {
    reader = response.body.getReader();
  } else {
    let done = false;
    reader = {
      read: async () => {
        if (done) return { done: true };
        done = true;
        return { done: false, value: new Uint8Array(await response.arrayBuffer()) };
      },
    };
  }
  return {
    ok: true,
    reader,
    total: Number(response.headers.get("Content-Length")) || 0,
    limit: Number(response.headers.get("X-Fetch-Limit-Bytes")) || 0,
    name: response.headers.get("X-Source-Filename") || dispositionName(response.headers.get("Content-Disposition")),
    commit: response.headers.get("X-Commit-Sha") || "",
  };
}

// The next chunk of an opened answer (a Uint8Array), or null at its end.
export async function readChunk(reader) {
  let result;
  try {
    result = await reader.read();
  } catch (error) {
    throw new Error(`${(error && error.message) || error}`);
  }
  return result.done ? null : result.value;
}

// ---- local folders (File System Access API) ----

export function directoryPickerSupported() {
  return typeof globalThis.showDirectoryPicker === "function";
}

// Asks the user for a folder (read only) and keeps its handle for application `appId`.
// Rejects with name AbortError when the user cancels.
export async function pickDirectory(appId) {
  const handle = await globalThis.showDirectoryPicker({ mode: "read" });
  await folderPut(appId, handle);
  return handle;
}

export const storedDirectory = (appId) => folderGet(appId);
export const storeDirectory = (appId, handle) => folderPut(appId, handle);
export const forgetDirectory = (appId) => folderDelete(appId);

export const directoryName = (handle) => handle.name;

// "granted", "prompt" or "denied" for reading `handle`; with `request`, asks the user
// (which needs a click or key press just before). Handles without permissions (OPFS in some
// browsers) are granted.
export async function directoryPermission(handle, request) {
  const descriptor = { mode: "read" };
  if (request && typeof handle.requestPermission === "function") return handle.requestPermission(descriptor);
  if (typeof handle.queryPermission === "function") return handle.queryPermission(descriptor);
  return "granted";
}

// Every file under `handle`: `{ files: [{ path, size, modified, file }], bytes, over }`,
// stopping once there are more than `maxFiles` files (`over: "files"`) or `maxBytes` bytes
// (`over: "bytes"`). Each directory's children are opened together.
export async function scanDirectory(handle, maxFiles, maxBytes) {
  const files = [];
  let bytes = 0;
  const pending = [{ dir: handle, prefix: "" }];
  while (pending.length > 0) {
    const { dir, prefix } = pending.pop();
    const children = [];
    for await (const child of dir.values()) children.push(child);
    const found = await Promise.all(
      children.map(async (child) => {
        const path = prefix + child.name;
        if (child.kind === "directory") {
          pending.push({ dir: child, prefix: `${path}/` });
          return null;
        }
        const file = await child.getFile();
        return { path, size: file.size, modified: file.lastModified, file };
      }),
    );
    for (const entry of found) {
      if (!entry) continue;
      files.push(entry);
      bytes += entry.size;
    }
    if (files.length > maxFiles) return { files, bytes, over: "files" };
    if (bytes > maxBytes) return { files, bytes, over: "bytes" };
  }
  return { files, bytes, over: "" };
}

// Calls onChange() whenever something under `handle` changes, through FileSystemObserver
// where the browser has it: resolves to the observer, or null (then the caller polls).
export async function observeDirectory(handle, onChange) {
  if (typeof globalThis.FileSystemObserver !== "function") return null;
  try {
    const observer = new globalThis.FileSystemObserver(() => onChange());
    await observer.observe(handle, { recursive: true });
    return observer;
  } catch (_) {
    return null;
  }
}

export function unobserve(observer) {
  if (observer && typeof observer.disconnect === "function") observer.disconnect();
}

// ---- OPFS folders (tests: same interface as a picked folder) ----

async function opfsRoot(name) {
  if (!globalThis.navigator || !navigator.storage || typeof navigator.storage.getDirectory !== "function") {
    throw new Error("this browser has no origin private file system");
  }
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(name, { create: true });
}

// The OPFS folder `name` (created if needed), kept as application `appId`'s picked folder.
export async function useOpfsFolder(appId, name) {
  const handle = await opfsRoot(name);
  await folderPut(appId, handle);
  return handle;
}

// Writes `bytes` to `path` (`/`-separated, directories created) in OPFS folder `name`.
export async function opfsWrite(name, path, bytes) {
  const parts = path.split("/").filter((part) => part.length > 0);
  if (parts.length === 0) throw new Error(`'${path}' names no file`);
  let dir = await opfsRoot(name);
  for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part, { create: true });
  const file = await dir.getFileHandle(parts[parts.length - 1], { create: true });
  const writable = await file.createWritable();
  await writable.write(bytes);
  await writable.close();
  return true;
}

// Deletes `path` (a file, or a folder with everything in it) in OPFS folder `name`.
export async function opfsDelete(name, path) {
  const parts = path.split("/").filter((part) => part.length > 0);
  if (parts.length === 0) throw new Error(`'${path}' names no file`);
  let dir = await opfsRoot(name);
  for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part);
  await dir.removeEntry(parts[parts.length - 1], { recursive: true });
  return true;
}
