// Downloads for runtime package installs (src/client/packages/fetch.rs), with byte progress.
// (SHA-256 is v86_bridge.js's sha256Hex, shared with the boot snapshot check; the package
// record is in IndexedDB through idb_store.js.)

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
