// Downloads made in the page: text as a Blob behind an object URL, which the browser reads
// without copying it into the link (a `data:` URL of a megabyte backup is slow to make and
// to follow). The URL is revoked a minute later; the download holds the Blob by then.
export function textObjectUrl(text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return url;
}
