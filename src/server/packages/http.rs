//! `GET|HEAD /packages/files/{file_name}`: serves an indexed `.deb` from the package
//! directory, with Range requests and a strong ETag (`"<sha256>"`).
//!
//! Only files that the last index recorded are served: the name must be a safe `.deb` name
//! (one path segment, no `..`, nothing hidden) and it must be in the index. The file is then
//! opened with `O_NOFOLLOW` (a symbolic link is a 404, never its target's bytes) and the
//! opened file's own metadata must say it is a regular file with the indexed size and
//! modification time (else 503 until a rescan), so the ETag always names the bytes sent. A
//! file deleted since the index was made is a 404, logged at WARN. Sending is
//! [`static_files::serve_file`](crate::server::static_files::serve_file): conditional
//! requests and Range as RFC 9110 says, opening and reading on the blocking pool.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::repository::is_safe_deb_name;
use crate::server::static_files::{serve_file, FileError, FileSpec};
use crate::server::storage::Storage;

/// Media type of a Debian binary package.
pub const DEB_CONTENT_TYPE: &str = "application/vnd.debian.binary-package";
/// Where the files are served; the browser appends a `debPackages` file name.
pub const FILES_BASE_URL: &str = "/packages/files/";

struct FilesState {
    storage: Storage,
    dir: PathBuf,
}

/// The route serving the repository's files from `dir`.
pub fn routes<S: Clone + Send + Sync + 'static>(storage: Storage, dir: PathBuf) -> Router<S> {
    Router::new()
        .route("/packages/files/{file_name}", get(package_file))
        .with_state(Arc::new(FilesState { storage, dir }))
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

async fn package_file(
    State(state): State<Arc<FilesState>>,
    UrlPath(file_name): UrlPath<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if !is_safe_deb_name(&file_name) {
        return plain(StatusCode::NOT_FOUND, "no such package file");
    }
    let indexed = match state.storage.package_file(&file_name).await {
        Ok(Some(indexed)) => indexed,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "no such package file"),
        Err(error) => {
            tracing::warn!(%error, "package file lookup failed");
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the package index is unavailable",
            );
        }
    };
    // A safe name is one path segment, so with O_NOFOLLOW the file opened is a regular file
    // directly inside the directory.
    let spec = FileSpec {
        etag: Some(format!("\"{}\"", indexed.sha256)),
        // A negative size can't be a file's: it never matches.
        size: Some(u64::try_from(indexed.size_bytes).unwrap_or(u64::MAX)),
        modified_ns: Some(indexed.modified_ns),
        ..FileSpec::new(state.dir.join(&file_name), DEB_CONTENT_TYPE)
    };
    let response = match serve_file(&spec, &method, &headers).await {
        Ok(response) => response,
        Err(error @ FileError::Changed { .. }) => {
            tracing::warn!(file = %file_name, %error, "package file changed since it was indexed; rescan (SIGHUP or restart)");
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the package file changed since it was indexed",
            );
        }
        Err(error) if error.is_unreadable() => {
            tracing::error!(file = %file_name, %error, "package file unreadable");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the package file is unreadable",
            );
        }
        Err(error) => {
            tracing::warn!(file = %file_name, %error, "indexed package file not served; rescan (SIGHUP or restart)");
            return plain(StatusCode::NOT_FOUND, "no such package file");
        }
    };
    with_repository_headers(response)
}

/// A repository file's headers: cacheable for a day (its name or ETag changes with its
/// bytes), and never sniffed. `.deb`s and layers both get them.
pub fn with_repository_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
