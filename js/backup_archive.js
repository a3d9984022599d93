// The browser's side of the backup archive (src/client/apps/archive.rs): parts of a picked
// file read as they are needed, and the archive written as one Blob from its parts, so the
// VM snapshot (tens of megabytes) never passes through wasm memory.

// Bytes [start, end) of `file` as an ArrayBuffer.
export function fileSlice(file, start, end) {
  return file.slice(start, end).arrayBuffer();
}

// Bytes [start, end) of `file` as UTF-8 text (rejecting invalid UTF-8).
export async function fileSliceText(file, start, end) {
  const buffer = await file.slice(start, end).arrayBuffer();
  return new TextDecoder("utf-8", { fatal: true }).decode(buffer);
}

// Saves `parts` (ArrayBuffers and Uint8Arrays, in order) as the download `name`; resolves to
// the file's size.
export function downloadParts(name, parts) {
  const blob = new Blob(parts, { type: "application/x-tar" });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.style.display = "none";
  document.body.appendChild(link);
  link.click();
  link.remove();
  // The download has its own reference to the Blob once it has started.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return blob.size;
}
