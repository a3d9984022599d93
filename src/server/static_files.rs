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
//!
//! Every file is sent by [`serve_file`], written here rather than taken from tower-http so that
//! it can refuse what it must not send: it opens with `O_NOFOLLOW` (a symbolic link placed in
//! a served directory is a 404, never its target's bytes) and `O_NONBLOCK` (a FIFO can't stall
//! it), checks the opened file's own metadata (a regular file, with the size the manifest or
//! index recorded), and answers `If-Match`, `If-None-Match` (weak comparison),
//! `If-Modified-Since`, `If-Unmodified-Since`, `If-Range` (strong comparison) and single
//! `Range`s as RFC 9110 says. Opening and reading run on tokio's blocking pool.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::UNIX_EPOCH;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::model::guest_image::GuestManifest;
use crate::model::Sha256;

/// Why a guest build directory can't be served.
#[derive(Debug, thiserror::Error)]
pub enum GuestImageError {
    #[error("no guest image at {0}: run guest/build.sh (the run and test scripts do)")]
    Missing(String),
    #[error("the guest manifest {path} is unreadable: {reason}")]
    BadManifest { path: String, reason: String },
    #[error("the guest build at {dir} lacks {file}, which its manifest lists")]
    MissingFile { dir: String, file: String },
    #[error(
        "{file} in the guest build at {dir} is not a regular file (symbolic links are not served)"
    )]
    NotRegular { dir: String, file: String },
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
    /// SHA-256 of the served file (its ETag).
    pub encoded_sha256: Sha256,
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

impl BootSnapshotRecord {
    /// Reads and checks one record: its file must be a plain `boot-snapshot-…` name in `dir`
    /// with the recorded size, and the encoding one the browser unpacks.
    pub fn load(dir: &Path, record_path: &Path) -> Result<Self, BootSnapshotError> {
        let path_text = record_path.display().to_string();
        let text =
            read_small_file(record_path).map_err(|reason| BootSnapshotError::Unreadable {
                path: path_text.clone(),
                reason,
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
        let metadata = std::fs::symlink_metadata(dir.join(&record.file)).ok();
        if metadata
            .as_ref()
            .is_some_and(|meta| !meta.file_type().is_file())
        {
            return Err(invalid(format!(
                "{} is not a regular file (symbolic links are not served)",
                record.file
            )));
        }
        let size = metadata.map(|meta| meta.len());
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
            &self.encoded_sha256.as_str()[..16]
        )
    }
}

/// A loaded, checked guest build: its directory and manifest.
///
/// Boot snapshots are looked up in the directory on each request (a few small files, read on
/// the blocking pool), so one built while the server runs is offered without a restart.
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
        if manifest.hash.is_empty() {
            return Err(GuestImageError::BadManifest {
                path: path.display().to_string(),
                reason: "its hash is empty".into(),
            });
        }
        for (name, file) in &manifest.files {
            let metadata = std::fs::symlink_metadata(dir.join(name)).ok();
            if metadata
                .as_ref()
                .is_some_and(|meta| !meta.file_type().is_file())
            {
                return Err(GuestImageError::NotRegular {
                    dir: dir.display().to_string(),
                    file: name.clone(),
                });
            }
            let size = metadata.map(|meta| meta.len());
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

/// What the manifest route says when there is no guest image. The reason (which names
/// directories on this server) is only logged.
pub const GUEST_UNAVAILABLE: &str = "the guest image is not available on this server";

/// Routes: `/guest/manifest.json`, `/guest/{hash}/{file}`, `/vendor/v86/{file}`,
/// `/vendor/xterm/{file}`, `/vendor/idb/{file}`.
pub fn routes<S: Clone + Send + Sync + 'static>(files: StaticFiles) -> Router<S> {
    let xterm_dir = xterm_dir(&files.v86_dir);
    let idb_dir = idb_dir(&files.v86_dir);
    if !idb_dir.join("build").join("index.js").is_file() {
        // Every page's script imports it: without it no page hydrates.
        tracing::warn!(
            dir = %idb_dir.display(),
            "npm's idb is missing (set WEBVM_IDB_DIR or run scripts/setup.sh): pages will not hydrate"
        );
    }
    let v86_version = served_v86_version(&files.v86_dir);
    let unavailable = GuestUnavailable {
        reference: crate::error::new_reference(),
        detail: files
            .guest_problem
            .clone()
            .unwrap_or_else(|| "no guest image".into()),
        logged: Once::new(),
    };
    let state = Arc::new(Served {
        files,
        v86_version,
        xterm_dir,
        idb_dir,
        unavailable,
    });
    Router::new()
        .route("/guest/manifest.json", get(guest_manifest))
        .route("/guest/{hash}/{file}", get(guest_file))
        .route("/vendor/v86/{file}", get(v86_file))
        .route("/vendor/xterm/{file}", get(xterm_file))
        .route("/vendor/idb/{file}", get(idb_file))
        .with_state(state)
}

/// The routes' state: the files, the v86 version served, the `@xterm` and `idb` directories,
/// and the answer for a missing guest image.
struct Served {
    files: StaticFiles,
    v86_version: Option<String>,
    xterm_dir: PathBuf,
    idb_dir: PathBuf,
    unavailable: GuestUnavailable,
}

/// The manifest route's answer without a guest image: a generic message and a short
/// reference; the reason goes to the log, once, under that reference.
struct GuestUnavailable {
    reference: String,
    detail: String,
    logged: Once,
}

impl GuestUnavailable {
    fn response(&self) -> Response {
        self.logged.call_once(|| {
            tracing::warn!(
                reference = %self.reference,
                detail = %self.detail,
                "the guest image is not available: /guest/manifest.json answers 503 with this reference"
            );
        });
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "error": GUEST_UNAVAILABLE,
                "reference": self.reference,
            })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
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

/// npm's `idb` package (the page's IndexedDB layer): `WEBVM_IDB_DIR`, else beside the v86
/// package (`<v86_dir>/../../idb`, i.e. `node_modules/idb` for the default v86 directory).
fn idb_dir(v86_dir: &Path) -> PathBuf {
    std::env::var_os("WEBVM_IDB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| v86_dir.join("..").join("..").join("idb"))
}

/// The file inside the `idb` package for a URL name, if it is one we serve (its ES module
/// build is one self-contained file).
fn idb_path(name: &str) -> Option<&'static str> {
    match name {
        "index.js" => Some("build/index.js"),
        _ => None,
    }
}

async fn idb_file(
    State(served): State<Arc<Served>>,
    UrlPath(name): UrlPath<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    listed_npm_file(&served.idb_dir, idb_path(&name), &name, &method, &headers).await
}

/// A file of an npm package directory that the route lists (`relative`), or a 404.
async fn listed_npm_file(
    dir: &Path,
    relative: Option<&str>,
    name: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let Some(relative) = relative else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let spec = FileSpec {
        last_modified: true,
        ..FileSpec::new(dir.join(relative), vendor_content_type(name))
    };
    vendor_response(&spec, method, headers).await
}

/// The media type of a vendored browser file, by its extension.
fn vendor_content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

async fn xterm_file(
    State(served): State<Arc<Served>>,
    UrlPath(name): UrlPath<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    listed_npm_file(
        &served.xterm_dir,
        xterm_path(&name),
        &name,
        &method,
        &headers,
    )
    .await
}

async fn v86_file(
    State(served): State<Arc<Served>>,
    UrlPath(name): UrlPath<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    const ALLOWED: [&str; 4] = ["libv86.js", "libv86.mjs", "v86.wasm", "v86-fallback.wasm"];
    if !ALLOWED.contains(&name.as_str()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let spec = FileSpec {
        last_modified: true,
        ..FileSpec::new(served.files.v86_dir.join(&name), vendor_content_type(&name))
    };
    vendor_response(&spec, &method, &headers).await
}

/// A vendored npm file, cached for an hour.
async fn vendor_response(spec: &FileSpec, method: &Method, headers: &HeaderMap) -> Response {
    match serve_file(spec, method, headers).await {
        Ok(mut response) => {
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            response
        }
        Err(error) => refused(&error),
    }
}

/// The answer for a file that is not sent: 404 (logged at WARN) when it is missing, a link,
/// not a regular file or not the recorded one, 500 (ERROR) when it can't be read.
fn refused(error: &FileError) -> Response {
    if error.is_unreadable() {
        tracing::error!(%error, "static file not served");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    } else {
        tracing::warn!(%error, "static file not served");
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn guest_manifest(State(served): State<Arc<Served>>) -> Response {
    let Some(guest) = served.files.guest.clone() else {
        return served.unavailable.response();
    };
    // Boot snapshot records are read from the directory on each request (blocking IO).
    let v86_version = served.v86_version.clone();
    let manifest =
        tokio::task::spawn_blocking(move || guest.served_manifest(v86_version.as_deref())).await;
    match manifest {
        Ok(manifest) => {
            let mut response = axum::Json(manifest).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "reading the guest manifest's boot snapshots failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn guest_file(
    State(served): State<Arc<Served>>,
    UrlPath((hash, name)): UrlPath<(String, String)>,
    method: Method,
    request_headers: HeaderMap,
) -> Response {
    let Some(guest) = served
        .files
        .guest
        .as_ref()
        .filter(|guest| guest.manifest.hash == hash)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (spec, gzip) = if let Some(entry) = guest.manifest.files.get(&name) {
        let spec = FileSpec {
            etag: Some(format!("\"{}\"", entry.sha256)),
            size: Some(entry.size),
            ..FileSpec::new(guest.dir.join(&name), "application/octet-stream")
        };
        (spec, false)
    } else if name.starts_with(BOOT_SNAPSHOT_PREFIX) {
        let lookup = Arc::clone(guest);
        let wanted = name.clone();
        let found = tokio::task::spawn_blocking(move || {
            let (found, _) = lookup.boot_snapshots();
            found.into_iter().find(|record| record.file == wanted)
        })
        .await;
        let record = match found {
            Ok(Some(record)) => record,
            Ok(None) => return StatusCode::NOT_FOUND.into_response(),
            Err(error) => {
                tracing::error!(%error, "looking up a boot snapshot failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let spec = FileSpec {
            etag: Some(format!("\"{}\"", record.encoded_sha256)),
            size: Some(record.encoded_size),
            ..FileSpec::new(guest.dir.join(&record.file), "application/octet-stream")
        };
        (spec, record.encoding.as_deref() == Some("gzip"))
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = match serve_file(&spec, &method, &request_headers).await {
        Ok(response) => response,
        Err(error) => return refused(&error),
    };
    let status = response.status();
    let headers = response.headers_mut();
    if gzip && matches!(status, StatusCode::OK | StatusCode::PARTIAL_CONTENT) {
        // The browser unpacks it; the compression layer leaves encoded bodies alone.
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

// --- sending one file ---------------------------------------------------------------------

/// Why a file is not sent.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path} is missing")]
    Missing { path: String },
    #[error("{path} is a symbolic link, and links are never followed")]
    Symlink { path: String },
    #[error("{path} is not a regular file")]
    NotRegular { path: String },
    #[error("{path} is not the recorded file: {detail}")]
    Changed { path: String, detail: String },
    #[error("{path} is unreadable: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("opening {path} did not complete: {reason}")]
    Task { path: String, reason: String },
}

impl FileError {
    /// True when the file is there but can't be read (a fault of the server, not of the
    /// directory's contents).
    pub fn is_unreadable(&self) -> bool {
        matches!(self, Self::Unreadable { .. } | Self::Task { .. })
    }

    /// The reason without the path.
    pub fn reason(&self) -> String {
        match self {
            Self::Missing { .. } => "missing".into(),
            Self::Symlink { .. } => "a symbolic link (links are never followed)".into(),
            Self::NotRegular { .. } => "not a regular file".into(),
            Self::Changed { detail, .. } => detail.clone(),
            Self::Unreadable { source, .. } => source.to_string(),
            Self::Task { reason, .. } => reason.clone(),
        }
    }
}

/// Opens `path` for reading without following a symbolic link in its last component
/// (`O_NOFOLLOW`) and without waiting for a writer if it is a FIFO (`O_NONBLOCK`, which
/// changes nothing for regular files), and returns it with the opened file's own metadata if
/// it is a regular file. Blocking: use [`open_regular`] from async code.
pub fn open_no_follow(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), FileError> {
    let shown = || path.display().to_string();
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    #[cfg(not(unix))]
    if std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink()) {
        return Err(FileError::Symlink { path: shown() });
    }
    let file = options.open(path).map_err(|source| {
        #[cfg(unix)]
        if source.raw_os_error() == Some(libc::ELOOP) {
            return FileError::Symlink { path: shown() };
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => FileError::Symlink { path: shown() },
            Ok(meta) if !meta.file_type().is_file() => FileError::NotRegular { path: shown() },
            _ if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
            {
                FileError::Missing { path: shown() }
            }
            _ => FileError::Unreadable {
                path: shown(),
                source,
            },
        }
    })?;
    let metadata = file.metadata().map_err(|source| FileError::Unreadable {
        path: shown(),
        source,
    })?;
    if !metadata.file_type().is_file() {
        return Err(FileError::NotRegular { path: shown() });
    }
    Ok((file, metadata))
}

/// [`open_no_follow`] on the blocking pool.
pub async fn open_regular(
    path: PathBuf,
) -> Result<(tokio::fs::File, std::fs::Metadata), FileError> {
    let shown = path.display().to_string();
    match tokio::task::spawn_blocking(move || open_no_follow(&path)).await {
        Ok(Ok((file, metadata))) => Ok((tokio::fs::File::from_std(file), metadata)),
        Ok(Err(error)) => Err(error),
        Err(error) => Err(FileError::Task {
            path: shown,
            reason: error.to_string(),
        }),
    }
}

/// Reads a small text file (a boot snapshot record) without following links; at most
/// `MAX_RECORD_BYTES` are read.
fn read_small_file(path: &Path) -> Result<String, String> {
    let (file, _) = open_no_follow(path).map_err(|error| error.reason())?;
    let mut text = String::new();
    file.take(MAX_RECORD_BYTES)
        .read_to_string(&mut text)
        .map_err(|error| error.to_string())?;
    Ok(text)
}

/// Longest boot snapshot record read (they are well under a kilobyte).
const MAX_RECORD_BYTES: u64 = 1 << 20;

/// One file to send, and what it must be.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub path: PathBuf,
    /// The `Content-Type` of a 200 or 206.
    pub content_type: &'static str,
    /// The strong ETag of its bytes, quoted (`"<sha256>"`), when they are known.
    pub etag: Option<String>,
    /// The size it must have (what the manifest or the index recorded).
    pub size: Option<u64>,
    /// The modification time (ns since the epoch) it must have.
    pub modified_ns: Option<i64>,
    /// Send `Last-Modified` and answer the date conditions (for files without an ETag).
    pub last_modified: bool,
}

impl FileSpec {
    /// A file with no ETag and nothing recorded about it.
    pub fn new(path: PathBuf, content_type: &'static str) -> Self {
        Self {
            path,
            content_type,
            etag: None,
            size: None,
            modified_ns: None,
            last_modified: false,
        }
    }
}

/// Bytes read from the file per body chunk.
const CHUNK_BYTES: u64 = 64 * 1024;

/// Sends the file `spec` names as the request's method and headers ask ([`select`]): 200, 206, 304, 412 or 416.
/// The caller adds its caching headers. The file is opened once; what is sent is what was
/// opened and checked, whatever happens to the path afterwards.
pub async fn serve_file(
    spec: &FileSpec,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, FileError> {
    let (mut file, metadata) = open_regular(spec.path.clone()).await?;
    let shown = || spec.path.display().to_string();
    let len = metadata.len();
    if let Some(size) = spec.size.filter(|size| *size != len) {
        return Err(FileError::Changed {
            path: shown(),
            detail: format!("it has {len} bytes, {size} were recorded"),
        });
    }
    if let Some(recorded) = spec.modified_ns {
        let modified = crate::server::packages::repository::modified_ns(&metadata);
        if modified != recorded {
            return Err(FileError::Changed {
                path: shown(),
                detail: format!("modified at {modified} ns, {recorded} ns was recorded"),
            });
        }
    }
    let modified_secs = spec
        .last_modified
        .then(|| {
            metadata
                .modified()
                .ok()
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                .and_then(|age| i64::try_from(age.as_secs()).ok())
        })
        .flatten();
    let validators = Validators {
        etag: spec.etag.as_deref(),
        modified_secs,
    };
    let selection = select(method, headers, len, validators);
    let head = method == Method::HEAD;
    let (status, body) = match selection {
        Selection::Full => (StatusCode::OK, (!head).then(|| file_body(file, len))),
        Selection::Partial { start, end } => {
            if !head {
                file.seek(std::io::SeekFrom::Start(start))
                    .await
                    .map_err(|source| FileError::Unreadable {
                        path: shown(),
                        source,
                    })?;
            }
            (
                StatusCode::PARTIAL_CONTENT,
                (!head).then(|| file_body(file, end - start + 1)),
            )
        }
        Selection::NotModified => (StatusCode::NOT_MODIFIED, None),
        Selection::PreconditionFailed => (StatusCode::PRECONDITION_FAILED, None),
        Selection::Unsatisfiable => (StatusCode::RANGE_NOT_SATISFIABLE, None),
    };
    let mut response = Response::new(body.unwrap_or_else(Body::empty));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(value) = spec
        .etag
        .as_deref()
        .and_then(|etag| HeaderValue::from_str(etag).ok())
    {
        headers.insert(header::ETAG, value);
    }
    if let Some(value) = modified_secs
        .and_then(http_date)
        .and_then(|date| HeaderValue::from_str(&date).ok())
    {
        headers.insert(header::LAST_MODIFIED, value);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let content_range = match selection {
        Selection::Full => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            None
        }
        Selection::Partial { start, end } => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
            Some(format!("bytes {start}-{end}/{len}"))
        }
        Selection::Unsatisfiable => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
            Some(format!("bytes */{len}"))
        }
        Selection::NotModified | Selection::PreconditionFailed => None,
    };
    if let Some(value) = content_range.and_then(|range| HeaderValue::from_str(&range).ok()) {
        headers.insert(header::CONTENT_RANGE, value);
    }
    if matches!(selection, Selection::Full | Selection::Partial { .. }) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(spec.content_type),
        );
    }
    Ok(response)
}

/// A body streaming `len` bytes of `file` from where it stands. A file that ends early (it
/// was truncated while being sent) fails the body, so the client sees a broken transfer
/// rather than a short file.
fn file_body(file: tokio::fs::File, len: u64) -> Body {
    let stream = futures::stream::unfold((file.take(len), len), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buffer = vec![0u8; usize::try_from(left.min(CHUNK_BYTES)).unwrap_or(4096)];
        match file.read(&mut buffer).await {
            Ok(0) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file ended before its recorded size",
                )),
                (file, 0),
            )),
            Ok(read) => {
                buffer.truncate(read);
                let left = left.saturating_sub(read as u64);
                Some((Ok(Bytes::from(buffer)), (file, left)))
            }
            Err(error) => Some((Err(error), (file, 0))),
        }
    });
    // Fused: the compression layer may poll a body again after its end, which an unfused
    // `unfold` answers with a panic.
    Body::from_stream(futures::StreamExt::fuse(stream))
}

// --- conditional and range requests (RFC 9110, sections 13 and 14) -------------------------

/// What a request gets of a file, from its method, its preconditions and its `Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// 200 with the whole file.
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 304.
    NotModified,
    /// 412.
    PreconditionFailed,
    /// 416.
    Unsatisfiable,
}

/// A file's validators: its strong ETag (quoted) and its modification time in whole seconds
/// (only for files served with `Last-Modified`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Validators<'a> {
    pub etag: Option<&'a str>,
    pub modified_secs: Option<i64>,
}

/// Evaluates, in RFC 9110's order: `If-Match` (strong comparison) or else
/// `If-Unmodified-Since` → 412; `If-None-Match` (weak comparison) or else
/// `If-Modified-Since` → 304; then, for GET only, `Range` (one satisfiable range → 206,
/// none → 416, several, or a field that does not parse → the whole file) unless an `If-Range`
/// that does not strongly match the current ETag (or equal `Last-Modified`) asks for the
/// whole file. A field that is not visible ASCII counts as not matching.
pub fn select(
    method: &Method,
    headers: &HeaderMap,
    len: u64,
    validators: Validators<'_>,
) -> Selection {
    let get_or_head = method == Method::GET || method == Method::HEAD;
    let date = |name: header::HeaderName| {
        single_field(headers, &name)
            .flatten()
            .and_then(parse_http_date)
    };
    if let Some(value) = list_field(headers, &header::IF_MATCH) {
        let matched = value
            .as_deref()
            .is_some_and(|value| match entity_tags(value) {
                EntityTags::Any => true,
                EntityTags::List(tags) => validators
                    .etag
                    .is_some_and(|etag| tags.iter().any(|tag| !tag.weak && tag.tag == etag)),
                EntityTags::Invalid => false,
            });
        if !matched {
            return Selection::PreconditionFailed;
        }
    } else if let (Some(since), Some(modified)) =
        (date(header::IF_UNMODIFIED_SINCE), validators.modified_secs)
    {
        if modified > since {
            return Selection::PreconditionFailed;
        }
    }
    if let Some(value) = list_field(headers, &header::IF_NONE_MATCH) {
        let matched = value
            .as_deref()
            .is_some_and(|value| match entity_tags(value) {
                EntityTags::Any => true,
                EntityTags::List(tags) => validators
                    .etag
                    .is_some_and(|etag| tags.iter().any(|tag| tag.tag == etag)),
                EntityTags::Invalid => false,
            });
        if matched {
            return if get_or_head {
                Selection::NotModified
            } else {
                Selection::PreconditionFailed
            };
        }
    } else if get_or_head {
        if let (Some(since), Some(modified)) =
            (date(header::IF_MODIFIED_SINCE), validators.modified_secs)
        {
            if modified <= since {
                return Selection::NotModified;
            }
        }
    }
    // Range handling is defined for GET only.
    if method != Method::GET {
        return Selection::Full;
    }
    let Some(Some(range)) = single_field(headers, &header::RANGE) else {
        return Selection::Full;
    };
    if let Some(if_range) = single_field(headers, &header::IF_RANGE) {
        if !if_range.is_some_and(|value| if_range_matches(value, validators)) {
            return Selection::Full;
        }
    }
    match parse_range(range, len) {
        RangeRequest::Ignored => Selection::Full,
        RangeRequest::Unsatisfiable => Selection::Unsatisfiable,
        RangeRequest::One { start, end } => Selection::Partial { start, end },
    }
}

/// A field that must occur once: `None` when absent, `Some(None)` when repeated or not
/// visible ASCII.
fn single_field<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Option<Option<&'a str>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return Some(None);
    }
    Some(first.to_str().ok())
}

/// A list field, its lines joined: `None` when absent, `Some(None)` when a line is not
/// visible ASCII.
fn list_field(headers: &HeaderMap, name: &header::HeaderName) -> Option<Option<String>> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let lines: Option<Vec<&str>> = values.map(|value| value.to_str().ok()).collect();
    Some(lines.map(|lines| lines.join(", ")))
}

/// Whether an `If-Range` value still names the current representation: an ETag that
/// strongly matches, or a date equal to `Last-Modified`.
fn if_range_matches(value: &str, validators: Validators<'_>) -> bool {
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        match entity_tags(value) {
            EntityTags::List(tags) => {
                tags.len() == 1 && !tags[0].weak && validators.etag == Some(tags[0].tag)
            }
            _ => false,
        }
    } else {
        parse_http_date(value).is_some_and(|date| validators.modified_secs == Some(date))
    }
}

/// An `If-Match` or `If-None-Match` value.
#[derive(Debug, PartialEq, Eq)]
enum EntityTags<'a> {
    /// `*`.
    Any,
    List(Vec<EntityTag<'a>>),
    /// Not the field's syntax: matches nothing.
    Invalid,
}

#[derive(Debug, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    /// The opaque tag with its quotes.
    tag: &'a str,
}

/// Parses `"*"` or a comma-separated list of entity tags (`"x"`, `W/"x"`), allowing empty
/// list elements; anything else is `Invalid`.
fn entity_tags(value: &str) -> EntityTags<'_> {
    if value.trim() == "*" {
        return EntityTags::Any;
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (weak, quoted) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let Some(opaque_and_rest) = quoted.strip_prefix('"') else {
            return EntityTags::Invalid;
        };
        let Some(close) = opaque_and_rest.find('"') else {
            return EntityTags::Invalid;
        };
        if opaque_and_rest[..close]
            .bytes()
            .any(|byte| byte <= b' ' || byte == 0x7f)
        {
            return EntityTags::Invalid;
        }
        tags.push(EntityTag {
            weak,
            tag: &quoted[..close + 2],
        });
        rest = opaque_and_rest[close + 1..].trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return EntityTags::Invalid;
        }
    }
    if tags.is_empty() {
        EntityTags::Invalid
    } else {
        EntityTags::List(tags)
    }
}

/// A `Range` field against a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Not a `bytes` range set we act on (bad syntax, another unit, several satisfiable
    /// ranges, an empty file): the whole file is sent.
    Ignored,
    /// No range of the set overlaps the file.
    Unsatisfiable,
    /// Exactly one range of the set overlaps the file: bytes `start..=end`.
    One { start: u64, end: u64 },
}

/// Parses `bytes=<range-set>` (RFC 9110 §14.1.2): `first-last`, `first-` and `-suffix`
/// ranges separated by commas; numbers too large for `u64` saturate (they lie past any
/// file); a `last` below its `first` makes the field invalid. Multipart responses are not
/// made, so two or more satisfiable ranges get the whole file.
pub fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some((unit, set)) = value.trim().split_once('=') else {
        return RangeRequest::Ignored;
    };
    if !unit.eq_ignore_ascii_case("bytes") || len == 0 {
        return RangeRequest::Ignored;
    }
    let mut specs = 0usize;
    let mut satisfiable = Vec::new();
    for spec in set.split(',') {
        let spec = spec.trim_matches([' ', '\t']);
        if spec.is_empty() {
            continue;
        }
        specs += 1;
        let Some((first, last)) = spec.split_once('-') else {
            return RangeRequest::Ignored;
        };
        let range = if first.is_empty() {
            let Some(suffix) = decimal(last) else {
                return RangeRequest::Ignored;
            };
            (suffix > 0).then(|| (len - suffix.min(len), len - 1))
        } else {
            let Some(first) = decimal(first) else {
                return RangeRequest::Ignored;
            };
            let last = if last.is_empty() {
                u64::MAX
            } else {
                match decimal(last) {
                    Some(last) if last >= first => last,
                    _ => return RangeRequest::Ignored,
                }
            };
            (first < len).then(|| (first, last.min(len - 1)))
        };
        satisfiable.extend(range);
    }
    match satisfiable.as_slice() {
        _ if specs == 0 => RangeRequest::Ignored,
        [] => RangeRequest::Unsatisfiable,
        [(start, end)] => RangeRequest::One {
            start: *start,
            end: *end,
        },
        _ => RangeRequest::Ignored,
    }
}

/// A non-empty run of ASCII digits, saturating at `u64::MAX`.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |value, digit| {
        value
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    }))
}

/// Seconds since the epoch of an HTTP date (IMF-fixdate, as RFC 2822 reads it).
fn parse_http_date(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|date| date.timestamp())
}

/// The IMF-fixdate of seconds since the epoch.
fn http_date(secs: i64) -> Option<String> {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .map(|date| date.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_vendor_files_are_served() {
        assert_eq!(xterm_path("xterm.js"), Some("xterm/lib/xterm.js"));
        assert_eq!(xterm_path("xterm.css"), Some("xterm/css/xterm.css"));
        assert_eq!(
            xterm_path("addon-fit.js"),
            Some("addon-fit/lib/addon-fit.js")
        );
        assert_eq!(xterm_path("../package.json"), None);
        assert_eq!(idb_path("index.js"), Some("build/index.js"));
        assert_eq!(idb_path("../package.json"), None);
        assert_eq!(idb_path("index.cjs"), None);
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
            (
                record("boot-snapshot-v86-1-256m.bin.gz", 5, "gzip")
                    .replace(&sha, &"AB".repeat(32)),
                Some("not a SHA-256"),
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

        // A snapshot file, or a record, that is a symbolic link is not offered.
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            std::fs::write(outside.path().join("state.bin.gz"), b"12345").unwrap();
            std::fs::remove_file(dir.path().join("boot-snapshot-v86-1-256m.bin.gz")).unwrap();
            std::os::unix::fs::symlink(
                outside.path().join("state.bin.gz"),
                dir.path().join("boot-snapshot-v86-1-256m.bin.gz"),
            )
            .unwrap();
            std::fs::write(&path, record("boot-snapshot-v86-1-256m.bin.gz", 5, "gzip")).unwrap();
            let error = BootSnapshotRecord::load(dir.path(), &path).unwrap_err();
            assert!(error.to_string().contains("not a regular file"), "{error}");

            std::fs::write(outside.path().join("record.json"), record("x", 5, "gzip")).unwrap();
            let linked = dir.path().join("boot-snapshot-v86-2-256m.json");
            std::os::unix::fs::symlink(outside.path().join("record.json"), &linked).unwrap();
            let error = BootSnapshotRecord::load(dir.path(), &linked).unwrap_err();
            assert!(error.to_string().contains("symbolic link"), "{error}");
        }
    }

    #[test]
    fn only_regular_files_are_opened_and_links_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        std::fs::write(&file, b"abc").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let (_, metadata) = open_no_follow(&file).unwrap();
        assert_eq!(metadata.len(), 3);
        let missing = dir.path().join("missing.bin");
        let mut cases = vec![
            (missing.clone(), "is missing"),
            (file.join("below-a-file"), "is missing"),
            (dir.path().join("sub"), "not a regular file"),
        ];
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&file, dir.path().join("link.bin")).unwrap();
            std::os::unix::fs::symlink(&missing, dir.path().join("dangling.bin")).unwrap();
            cases.push((dir.path().join("link.bin"), "symbolic link"));
            cases.push((dir.path().join("dangling.bin"), "symbolic link"));
            // A FIFO would block an ordinary open until a writer came; O_NONBLOCK doesn't.
            let fifo = dir.path().join("fifo.bin");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|status| status.success()) {
                cases.push((fifo, "not a regular file"));
            }
        }
        for (path, problem) in cases {
            let error = open_no_follow(&path).unwrap_err();
            assert!(
                error.to_string().contains(problem),
                "{}: {error}",
                path.display()
            );
            assert!(!error.is_unreadable(), "{error}");
        }
    }

    #[test]
    fn range_fields_are_read_as_rfc_9110_says() {
        use RangeRequest::{Ignored, One, Unsatisfiable};
        let one = |start, end| One { start, end };
        let cases = [
            ("bytes=0-9", 100, one(0, 9)),
            ("bytes=90-", 100, one(90, 99)),
            ("bytes=-10", 100, one(90, 99)),
            ("bytes=-1000", 100, one(0, 99)),
            ("bytes=50-1000", 100, one(50, 99)),
            ("Bytes=0-0", 100, one(0, 0)),
            ("bytes=0-9,", 100, one(0, 9)),
            ("bytes=0-1, 200-300", 100, one(0, 1)),
            ("bytes=0-1,5-6", 100, Ignored),
            ("bytes=0-5,3-8", 100, Ignored),
            ("bytes=200-300, 400-", 100, Unsatisfiable),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=99999999999999999999999-", 100, Unsatisfiable),
            ("bytes=0-99999999999999999999999", 100, one(0, 99)),
            ("bytes=-99999999999999999999999", 100, one(0, 99)),
            ("bytes=18446744073709551615-", 100, Unsatisfiable),
            ("bytes=5-3", 100, Ignored),
            ("bytes=0-1,5-3", 100, Ignored),
            ("bytes=", 100, Ignored),
            ("bytes=,", 100, Ignored),
            ("bytes=-", 100, Ignored),
            ("bytes=5", 100, Ignored),
            ("bytes=1-2-3", 100, Ignored),
            ("bytes=--1", 100, Ignored),
            ("bytes=+1-2", 100, Ignored),
            ("bytes=0x1-2", 100, Ignored),
            ("items=0-9", 100, Ignored),
            ("bytes 0-9", 100, Ignored),
            ("=0-9", 100, Ignored),
            ("bytes=0-9", 0, Ignored),
        ];
        for (value, len, expected) in cases {
            assert_eq!(parse_range(value, len), expected, "{value} of {len} bytes");
        }
    }

    #[test]
    fn preconditions_and_ranges_are_evaluated_in_rfc_9110_order() {
        use Selection::{Full, NotModified, Partial, PreconditionFailed, Unsatisfiable};
        let tagged = Validators {
            etag: Some("\"abc\""),
            modified_secs: None,
        };
        // 2000-01-01T00:00:00Z
        let dated = Validators {
            etag: None,
            modified_secs: Some(946_684_800),
        };
        const Y2K: &str = "Sat, 01 Jan 2000 00:00:00 GMT";
        const BEFORE: &str = "Fri, 31 Dec 1999 23:59:59 GMT";
        const AFTER: &str = "Sat, 01 Jan 2000 00:00:01 GMT";
        let part = Partial { start: 0, end: 1 };
        /// A request's method and headers, the file's validators, what must be sent.
        type Case<'a> = (Method, Vec<(&'a str, &'a str)>, Validators<'a>, Selection);
        let cases: Vec<Case> = vec![
            (Method::GET, vec![], tagged, Full),
            (
                Method::GET,
                vec![("if-none-match", "\"abc\"")],
                tagged,
                NotModified,
            ),
            (
                Method::HEAD,
                vec![("if-none-match", "\"abc\"")],
                tagged,
                NotModified,
            ),
            (
                Method::GET,
                vec![("if-none-match", "W/\"abc\"")],
                tagged,
                NotModified,
            ),
            (
                Method::GET,
                vec![("if-none-match", "\"x\", W/\"abc\"")],
                tagged,
                NotModified,
            ),
            (
                Method::GET,
                vec![("if-none-match", " * ")],
                tagged,
                NotModified,
            ),
            (Method::GET, vec![("if-none-match", "\"x\"")], tagged, Full),
            (
                Method::GET,
                vec![("if-none-match", "\"x\" \"abc\"")],
                tagged,
                Full,
            ),
            (
                Method::GET,
                vec![("if-none-match", "\"x\", *")],
                tagged,
                Full,
            ),
            (Method::GET, vec![("if-none-match", "abc")], tagged, Full),
            (
                Method::GET,
                vec![("if-none-match", "w/\"abc\"")],
                tagged,
                Full,
            ),
            (
                Method::GET,
                vec![("if-none-match", "\"a bc\"")],
                tagged,
                Full,
            ),
            (
                Method::GET,
                vec![("if-none-match", "\"x\""), ("if-none-match", "\"abc\"")],
                tagged,
                NotModified,
            ),
            (Method::GET, vec![("range", "bytes=0-1")], tagged, part),
            (Method::HEAD, vec![("range", "bytes=0-1")], tagged, Full),
            (
                Method::GET,
                vec![("range", "bytes=500-")],
                tagged,
                Unsatisfiable,
            ),
            (
                Method::GET,
                vec![("range", "bytes=0-1"), ("range", "bytes=2-3")],
                tagged,
                Full,
            ),
            (
                Method::GET,
                vec![("range", "bytes=0-1"), ("if-none-match", "\"abc\"")],
                tagged,
                NotModified,
            ),
            (
                Method::GET,
                vec![("range", "bytes=0-1"), ("if-range", "\"abc\"")],
                tagged,
                part,
            ),
            (
                Method::GET,
                vec![("range", "bytes=0-1"), ("if-range", "W/\"abc\"")],
                tagged,
                Full,
            ),
            (
                Method::GET,
                vec![("range", "bytes=0-1"), ("if-range", "\"x\"")],
                tagged,
                Full,
            ),
            (
                Method::GET,
                vec![("range", "bytes=0-1"), ("if-range", Y2K)],
                tagged,
                Full,
            ),
            (Method::GET, vec![("if-range", "\"x\"")], tagged, Full),
            (Method::GET, vec![("if-match", "\"abc\"")], tagged, Full),
            (Method::GET, vec![("if-match", "*")], tagged, Full),
            (
                Method::GET,
                vec![("if-match", "W/\"abc\"")],
                tagged,
                PreconditionFailed,
            ),
            (
                Method::GET,
                vec![("if-match", "\"x\"")],
                tagged,
                PreconditionFailed,
            ),
            (
                Method::GET,
                vec![("if-match", "\"x\"")],
                dated,
                PreconditionFailed,
            ),
            // Files validated by their modification time (the vendored npm files).
            (
                Method::GET,
                vec![("if-modified-since", Y2K)],
                dated,
                NotModified,
            ),
            (
                Method::GET,
                vec![("if-modified-since", AFTER)],
                dated,
                NotModified,
            ),
            (
                Method::GET,
                vec![("if-modified-since", BEFORE)],
                dated,
                Full,
            ),
            (
                Method::GET,
                vec![("if-modified-since", "yesterday")],
                dated,
                Full,
            ),
            (Method::GET, vec![("if-modified-since", Y2K)], tagged, Full),
            (
                Method::GET,
                vec![("if-none-match", "\"x\""), ("if-modified-since", Y2K)],
                dated,
                Full,
            ),
            (
                Method::GET,
                vec![("if-none-match", "*")],
                dated,
                NotModified,
            ),
            (
                Method::GET,
                vec![("if-unmodified-since", BEFORE)],
                dated,
                PreconditionFailed,
            ),
            (Method::GET, vec![("if-unmodified-since", Y2K)], dated, Full),
            (
                Method::GET,
                vec![("range", "bytes=0-1"), ("if-range", Y2K)],
                dated,
                part,
            ),
            (
                Method::GET,
                vec![("range", "bytes=0-1"), ("if-range", AFTER)],
                dated,
                Full,
            ),
        ];
        for (method, fields, validators, expected) in cases {
            let mut headers = HeaderMap::new();
            for (name, value) in &fields {
                headers.append(
                    header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            assert_eq!(
                select(&method, &headers, 100, validators),
                expected,
                "{method} {fields:?}"
            );
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_bytes(b"\"abc\" \xff").unwrap(),
        );
        assert_eq!(select(&Method::GET, &headers, 100, tagged), Full);
    }

    #[test]
    fn http_dates_round_trip() {
        assert_eq!(
            http_date(946_684_800).as_deref(),
            Some("Sat, 01 Jan 2000 00:00:00 GMT")
        );
        assert_eq!(
            parse_http_date("Sat, 01 Jan 2000 00:00:00 GMT"),
            Some(946_684_800)
        );
        assert_eq!(parse_http_date("not a date"), None);
    }

    #[test]
    fn vendored_files_get_their_media_types() {
        for (name, media_type) in [
            ("libv86.js", "text/javascript; charset=utf-8"),
            ("libv86.mjs", "text/javascript; charset=utf-8"),
            ("v86.wasm", "application/wasm"),
            ("xterm.css", "text/css; charset=utf-8"),
            ("README", "application/octet-stream"),
        ] {
            assert_eq!(vendor_content_type(name), media_type, "{name}");
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
