//! Serves the guest image (content-addressed, with Range, strong ETags and long-lived caching)
//! and the vendored browser files installed from npm: the v86 emulator and xterm.js (the VM
//! console's terminal).

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

/// A loaded, checked guest build: its directory and manifest.
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
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }
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
        .with_state(Arc::new(files))
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

async fn guest_manifest(State(files): State<Arc<StaticFiles>>) -> Response {
    match &files.guest {
        Some(guest) => {
            let mut response = axum::Json(&guest.manifest).into_response();
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
    State(files): State<Arc<StaticFiles>>,
    UrlPath((hash, name)): UrlPath<(String, String)>,
    request: Request,
) -> Response {
    let Some(guest) = files
        .guest
        .as_ref()
        .filter(|guest| guest.manifest.hash == hash)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(entry) = guest.manifest.files.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", entry.sha256);
    let matches_etag = if_none_match(request.headers(), &etag);
    let mut response = if matches_etag {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        serve_file(&guest.dir.join(&name), request).await
    };
    let headers = response.headers_mut();
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
    State(files): State<Arc<StaticFiles>>,
    UrlPath(name): UrlPath<String>,
    request: Request,
) -> Response {
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
