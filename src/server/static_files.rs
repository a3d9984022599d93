//! Serves the guest image (content-addressed, with Range, strong ETags and long-lived caching),
//! its boot snapshot when one was built, and the vendored browser files installed from npm:
//! the v86 emulator and xterm.js (the VM console's terminal).
//!
//! A boot snapshot is a v86 state saved right after a cold boot of the image
//! (`scripts/build-boot-snapshot.mjs`). It sits in the image's directory as
//! `boot-snapshot-v86-<version>-<memory>m.bin.gz` (gzip) with a JSON record of the same stem,
//! so it is keyed by image (the directory), v86 build and machine options. The manifest the
//! page reads gains a `bootSnapshot` entry for it; the file is served with
//! `Content-Encoding: gzip`, so the browser unpacks it while it downloads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use tower_http::services::ServeFile;

/// One file of a guest build, as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestFile {
    pub size: u64,
    pub sha256: String,
}

/// The parts of `guest/build.sh`'s `manifest.json` the server and the page rely on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestManifest {
    pub hash: String,
    pub kernel_cmdline: String,
    pub files: BTreeMap<String, GuestFile>,
    /// Everything else the build recorded, passed through to the page untouched.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Why a guest build directory can't be served.
#[derive(Debug, thiserror::Error)]
pub enum GuestImageError {
    #[error("no guest image at {0}: run guest/build.sh (the run and test scripts do)")]
    Missing(String),
    #[error("the guest manifest {path} is unreadable: {reason}")]
    BadManifest { path: String, reason: String },
    #[error("the guest build at {dir} lacks {file}, which its manifest lists")]
    MissingFile { dir: String, file: String },
}

/// File names of boot snapshots (and of their records) start with this.
pub const BOOT_SNAPSHOT_PREFIX: &str = "boot-snapshot-";

/// The JSON record written next to a boot snapshot. The page checks the fields of its
/// snapshot metadata (`schemaVersion`, `engine`, `imageHash`, `v86Version`, `memoryMb`,
/// `size`, `sha256`, `agentInstance`, …); the server needs the ones below and passes the rest
/// through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootSnapshotRecord {
    /// The guest image it was made from.
    pub image_hash: String,
    /// The v86 build it was made with.
    pub v86_version: String,
    /// When it was saved (RFC 3339).
    pub saved_at: String,
    /// The served file, in the image's directory.
    pub file: String,
    /// `gzip` when the file is gzip-compressed (served with `Content-Encoding: gzip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Bytes of the served file.
    pub encoded_size: u64,
    /// SHA-256 of the served file, hex (its ETag).
    pub encoded_sha256: String,
    /// Everything else, passed through to the page.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Why a boot snapshot record in the image's directory is not offered.
#[derive(Debug, thiserror::Error)]
pub enum BootSnapshotError {
    #[error("{path} is unreadable: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

fn is_hex_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

impl BootSnapshotRecord {
    /// Reads and checks one record: its file must be a plain `boot-snapshot-…` name in `dir`
    /// with the recorded size, and the encoding one the browser unpacks.
    pub fn load(dir: &Path, record_path: &Path) -> Result<Self, BootSnapshotError> {
        let path_text = record_path.display().to_string();
        let text = std::fs::read_to_string(record_path).map_err(|error| {
            BootSnapshotError::Unreadable {
                path: path_text.clone(),
                reason: error.to_string(),
            }
        })?;
        let record: BootSnapshotRecord =
            serde_json::from_str(&text).map_err(|error| BootSnapshotError::Invalid {
                path: path_text.clone(),
                reason: error.to_string(),
            })?;
        let invalid = |reason: String| BootSnapshotError::Invalid {
            path: path_text.clone(),
            reason,
        };
        if !is_plain_file_name(&record.file)
            || !record.file.starts_with(BOOT_SNAPSHOT_PREFIX)
            || record.file.ends_with(".json")
        {
            return Err(invalid(format!(
                "{:?} is not a boot snapshot file name",
                record.file
            )));
        }
        if !matches!(record.encoding.as_deref(), None | Some("gzip")) {
            return Err(invalid(format!(
                "encoding {:?} is not gzip",
                record.encoding.as_deref().unwrap_or_default()
            )));
        }
        if !is_hex_sha256(&record.encoded_sha256) {
            return Err(invalid("encodedSha256 is not a SHA-256".into()));
        }
        let size = std::fs::metadata(dir.join(&record.file))
            .map(|meta| meta.len())
            .ok();
        if size != Some(record.encoded_size) {
            return Err(invalid(match size {
                Some(size) => format!(
                    "{} has {size} bytes, the record says {}",
                    record.file, record.encoded_size
                ),
                None => format!("{} is missing", record.file),
            }));
        }
        Ok(record)
    }

    /// Where the page downloads it; the query names the content, so a rebuilt snapshot of
    /// the same key is never taken from a stale HTTP cache.
    pub fn url(&self, image_hash: &str) -> String {
        format!(
            "/guest/{image_hash}/{}?sha256={}",
            self.file,
            &self.encoded_sha256[..16]
        )
    }
}

/// A loaded, checked guest build: its directory and manifest.
///
/// Boot snapshots are looked up in the directory on each request (a few small files), so one
/// built while the server runs is offered without a restart.
#[derive(Debug, Clone)]
pub struct GuestImage {
    pub dir: PathBuf,
    pub manifest: GuestManifest,
}

impl GuestImage {
    /// Reads `manifest.json` in `dir` and checks that every listed file is there with its size.
    pub fn load(dir: &Path) -> Result<Self, GuestImageError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|_| GuestImageError::Missing(dir.display().to_string()))?;
        let manifest: GuestManifest =
            serde_json::from_str(&text).map_err(|error| GuestImageError::BadManifest {
                path: path.display().to_string(),
                reason: error.to_string(),
            })?;
        let hex =
            |text: &str| text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit());
        if !manifest.files.values().all(|file| hex(&file.sha256)) || manifest.hash.is_empty() {
            return Err(GuestImageError::BadManifest {
                path: path.display().to_string(),
                reason: "hash or sha256 values are malformed".into(),
            });
        }
        for (name, file) in &manifest.files {
            let size = std::fs::metadata(dir.join(name))
                .map(|meta| meta.len())
                .ok();
            if size != Some(file.size) || !is_plain_file_name(name) {
                return Err(GuestImageError::MissingFile {
                    dir: dir.display().to_string(),
                    file: name.clone(),
                });
            }
        }
        let image = Self {
            dir: dir.to_path_buf(),
            manifest,
        };
        let (found, problems) = image.boot_snapshots();
        for problem in problems {
            tracing::warn!(%problem, "boot snapshot ignored");
        }
        for record in &found {
            tracing::info!(file = %record.file, v86 = %record.v86_version, "boot snapshot found");
        }
        if found.is_empty() {
            tracing::info!(
                "no boot snapshot for this guest image: first visits cold-boot (scripts/build-boot-snapshot.mjs makes one)"
            );
        }
        Ok(image)
    }

    /// The usable boot snapshot records in the directory, and why others are not.
    pub fn boot_snapshots(&self) -> (Vec<BootSnapshotRecord>, Vec<BootSnapshotError>) {
        let mut found = Vec::new();
        let mut problems = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return (found, problems);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with(BOOT_SNAPSHOT_PREFIX) && name.ends_with(".json")) {
                continue;
            }
            match BootSnapshotRecord::load(&self.dir, &entry.path()) {
                Ok(record) => found.push(record),
                Err(problem) => problems.push(problem),
            }
        }
        (found, problems)
    }

    /// The boot snapshot to offer: made from this image, preferably with the v86 build the
    /// server serves, newest first. One that does not fit the page is still offered, so the
    /// page can say why it cold-boots.
    pub fn boot_snapshot(&self, served_v86_version: Option<&str>) -> Option<BootSnapshotRecord> {
        let (found, _) = self.boot_snapshots();
        found.into_iter().max_by(|a, b| {
            let rank = |record: &BootSnapshotRecord| {
                (
                    record.image_hash == self.manifest.hash,
                    served_v86_version == Some(record.v86_version.as_str()),
                    record.saved_at.clone(),
                    record.file.clone(),
                )
            };
            rank(a).cmp(&rank(b))
        })
    }

    /// The manifest as served: the build's manifest plus `bootSnapshot` (the record and its
    /// `url`) when there is one.
    pub fn served_manifest(&self, served_v86_version: Option<&str>) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.manifest).unwrap_or_default();
        if let (Some(record), Some(object)) = (
            self.boot_snapshot(served_v86_version),
            value.as_object_mut(),
        ) {
            let url = record.url(&self.manifest.hash);
            if let Ok(serde_json::Value::Object(mut entry)) = serde_json::to_value(&record) {
                entry.insert("url".into(), url.into());
                object.insert("bootSnapshot".into(), entry.into());
            }
        }
        value
    }
}

/// The version of the v86 package in `v86_dir` (`<v86_dir>/../package.json`), without build
/// metadata (`0.5.462+g5f9a90f` → `0.5.462`).
pub fn served_v86_version(v86_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(v86_dir.join("..").join("package.json")).ok()?;
    let package: serde_json::Value = serde_json::from_str(&text).ok()?;
    let version = package.get("version")?.as_str()?;
    Some(version.split('+').next().unwrap_or(version).to_string())
}

/// What the static-file routes serve from.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    pub guest: Option<Arc<GuestImage>>,
    pub guest_problem: Option<String>,
    pub v86_dir: PathBuf,
}

/// A single path segment of ordinary characters: no separators, no `..`, nothing hidden.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_'))
}

/// Routes: `/guest/manifest.json`, `/guest/{hash}/{file}`, `/vendor/v86/{file}`,
/// `/vendor/xterm/{file}`.
pub fn routes<S: Clone + Send + Sync + 'static>(files: StaticFiles) -> Router<S> {
    let xterm_dir = Arc::new(xterm_dir(&files.v86_dir));
    let v86_version = served_v86_version(&files.v86_dir);
    let state = Arc::new(Served { files, v86_version });
    Router::new()
        .route("/guest/manifest.json", get(guest_manifest))
        .route("/guest/{hash}/{file}", get(guest_file))
        .route("/vendor/v86/{file}", get(v86_file))
        .route(
            "/vendor/xterm/{file}",
            get(move |UrlPath(name): UrlPath<String>, request: Request| {
                let dir = xterm_dir.clone();
                async move { xterm_file(&dir, &name, request).await }
            }),
        )
        .with_state(state)
}

/// The routes' state: the files and the v86 version served.
struct Served {
    files: StaticFiles,
    v86_version: Option<String>,
}

/// npm's `@xterm` directory: `WEBVM_XTERM_DIR`, else beside the v86 package
/// (`<v86_dir>/../../@xterm`, i.e. `node_modules/@xterm` for the default v86 directory).
fn xterm_dir(v86_dir: &Path) -> PathBuf {
    std::env::var_os("WEBVM_XTERM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| v86_dir.join("..").join("..").join("@xterm"))
}

/// The file inside the `@xterm` directory for a URL name, if it is one we serve.
fn xterm_path(name: &str) -> Option<&'static str> {
    match name {
        "xterm.js" => Some("xterm/lib/xterm.js"),
        "xterm.css" => Some("xterm/css/xterm.css"),
        "addon-fit.js" => Some("addon-fit/lib/addon-fit.js"),
        _ => None,
    }
}

async fn xterm_file(dir: &Path, name: &str, request: Request) -> Response {
    let Some(relative) = xterm_path(name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = serve_file(&dir.join(relative), request).await;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

async fn guest_manifest(State(served): State<Arc<Served>>) -> Response {
    let files = &served.files;
    match &files.guest {
        Some(guest) => {
            let manifest = guest.served_manifest(served.v86_version.as_deref());
            let mut response = axum::Json(manifest).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "error": files.guest_problem.clone().unwrap_or_else(|| "no guest image".into())
            })),
        )
            .into_response(),
    }
}

async fn guest_file(
    State(served): State<Arc<Served>>,
    UrlPath((hash, name)): UrlPath<(String, String)>,
    request: Request,
) -> Response {
    let Some(guest) = served
        .files
        .guest
        .as_ref()
        .filter(|guest| guest.manifest.hash == hash)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (sha256, gzip) = if let Some(entry) = guest.manifest.files.get(&name) {
        (entry.sha256.clone(), false)
    } else if name.starts_with(BOOT_SNAPSHOT_PREFIX) {
        let (found, _) = guest.boot_snapshots();
        match found.into_iter().find(|record| record.file == name) {
            Some(record) => (
                record.encoded_sha256,
                record.encoding.as_deref() == Some("gzip"),
            ),
            None => return StatusCode::NOT_FOUND.into_response(),
        }
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{sha256}\"");
    let matches_etag = if_none_match(request.headers(), &etag);
    let mut response = if matches_etag {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        serve_file(&guest.dir.join(&name), request).await
    };
    let headers = response.headers_mut();
    if gzip {
        // The browser unpacks it; the compression layer leaves encoded bodies alone.
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

async fn v86_file(
    State(served): State<Arc<Served>>,
    UrlPath(name): UrlPath<String>,
    request: Request,
) -> Response {
    let files = &served.files;
    const ALLOWED: [&str; 4] = ["libv86.js", "libv86.mjs", "v86.wasm", "v86-fallback.wasm"];
    if !ALLOWED.contains(&name.as_str()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut response = serve_file(&files.v86_dir.join(&name), request).await;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// Whether the request's `If-None-Match` names `etag` (or `*`): the client's copy is current.
pub fn if_none_match(headers: &axum::http::HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        })
}

/// Serves one file with Range, HEAD and Last-Modified support from tower-http.
async fn serve_file(path: &Path, request: Request) -> Response {
    match ServeFile::new(path).oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "static file failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_xterm_files_are_served() {
        assert_eq!(xterm_path("xterm.js"), Some("xterm/lib/xterm.js"));
        assert_eq!(xterm_path("xterm.css"), Some("xterm/css/xterm.css"));
        assert_eq!(
            xterm_path("addon-fit.js"),
            Some("addon-fit/lib/addon-fit.js")
        );
        assert_eq!(xterm_path("../package.json"), None);
        assert_eq!(
            xterm_dir(Path::new("node_modules/v86/build")),
            Path::new("node_modules/v86/build/../../@xterm")
        );
    }

    #[test]
    fn the_served_v86_version_drops_build_metadata() {
        let root = tempfile::tempdir().unwrap();
        let build = root.path().join("v86").join("build");
        std::fs::create_dir_all(&build).unwrap();
        assert_eq!(served_v86_version(&build), None);
        std::fs::write(
            root.path().join("v86").join("package.json"),
            r#"{"name":"v86","version":"0.5.462+g5f9a90f"}"#,
        )
        .unwrap();
        assert_eq!(served_v86_version(&build).as_deref(), Some("0.5.462"));
    }

    #[test]
    fn boot_snapshot_records_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "ab".repeat(32);
        std::fs::write(dir.path().join("boot-snapshot-v86-1-256m.bin.gz"), b"12345").unwrap();
        let record = |file: &str, size: u64, encoding: &str| {
            serde_json::json!({
                "imageHash": "h", "v86Version": "1", "savedAt": "2026-01-01T00:00:00Z",
                "file": file, "encoding": encoding, "encodedSize": size,
                "encodedSha256": sha, "memoryMb": 256
            })
            .to_string()
        };
        let path = dir.path().join("boot-snapshot-v86-1-256m.json");
        let cases = [
            (record("boot-snapshot-v86-1-256m.bin.gz", 5, "gzip"), None),
            (
                record("boot-snapshot-v86-1-256m.bin.gz", 6, "gzip"),
                Some("the record says 6"),
            ),
            (
                record("boot-snapshot-v86-2-256m.bin.gz", 5, "gzip"),
                Some("is missing"),
            ),
            (
                record("../rootfs.ext4", 5, "gzip"),
                Some("not a boot snapshot file name"),
            ),
            (
                record("rootfs.ext4", 5, "gzip"),
                Some("not a boot snapshot file name"),
            ),
            (
                record("boot-snapshot-v86-1-256m.bin.gz", 5, "br"),
                Some("not gzip"),
            ),
            ("{".to_string(), Some("EOF")),
        ];
        for (text, problem) in cases {
            std::fs::write(&path, &text).unwrap();
            match (BootSnapshotRecord::load(dir.path(), &path), problem) {
                (Ok(record), None) => {
                    assert_eq!(record.extra["memoryMb"], 256);
                    assert_eq!(
                        record.url("h"),
                        "/guest/h/boot-snapshot-v86-1-256m.bin.gz?sha256=abababababababab"
                    );
                }
                (Err(error), Some(problem)) => {
                    assert!(error.to_string().contains(problem), "{text}: {error}")
                }
                (other, _) => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_plain_file_names_pass() {
        let cases = [
            ("rootfs.ext4", true),
            ("v86.wasm", true),
            ("../etc/passwd", false),
            ("..", false),
            (".hidden", false),
            ("a/b", false),
            ("", false),
            ("name with space", false),
        ];
        for (name, ok) in cases {
            assert_eq!(is_plain_file_name(name), ok, "{name}");
        }
    }
}
