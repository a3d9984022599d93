//! `GET|HEAD /packages/files/{file_name}`: serves an indexed `.deb` from the package
//! directory, with Range requests and a strong ETag (`"<sha256>"`).
//!
//! Only files that the last index recorded are served: the name must be a safe `.deb` name
//! (one path segment, no `..`, nothing hidden), it must be in the index, its canonical path
//! must lie inside the package directory, it must be a regular file (not a symlink), and its
//! size and modification time must still be the indexed ones (else 503 until a rescan), so
//! the ETag always names the bytes sent.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::repository::{is_safe_deb_name, modified_ns};
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
    mut request: Request,
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
    let Some(path) = inside(&state.dir, &file_name) else {
        return plain(StatusCode::NOT_FOUND, "no such package file");
    };
    let unchanged = std::fs::symlink_metadata(&path).is_ok_and(|meta| {
        meta.file_type().is_file()
            && meta.len() as i64 == indexed.size_bytes
            && modified_ns(&meta) == indexed.modified_ns
    });
    if !unchanged {
        tracing::warn!(file = %file_name, "package file changed since it was indexed; rescan (SIGHUP or restart)");
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the package file changed since it was indexed",
        );
    }
    let etag = format!("\"{}\"", indexed.sha256);
    let headers = request.headers();
    let not_modified = crate::server::static_files::if_none_match(headers, &etag);
    // If-Range: a Range applies only while the client's ETag is the current one.
    let range_still_valid = headers
        .get(header::IF_RANGE)
        .map(|value| value.to_str().ok() == Some(etag.as_str()));
    if range_still_valid == Some(false) {
        request.headers_mut().remove(header::RANGE);
    }
    request.headers_mut().remove(header::IF_RANGE);
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match ServeFile::new(&path).oneshot(request).await {
            Ok(response) => response.map(Body::new),
            Err(error) => {
                tracing::warn!(%error, file = %file_name, "package file failed");
                return plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the package file is unreadable",
                );
            }
        }
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if !not_modified {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(DEB_CONTENT_TYPE),
        );
    }
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

/// The path of `file_name` in `dir`, if it resolves to a file directly inside `dir`.
fn inside(dir: &Path, file_name: &str) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    let path = dir.join(file_name);
    let parent = path.canonicalize().ok()?.parent()?.to_path_buf();
    (parent == dir).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_direct_children_of_the_directory_are_inside() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("packages");
        std::fs::create_dir_all(dir.join("sub")).expect("dirs");
        std::fs::write(dir.join("a_1_all.deb"), b"x").expect("write");
        std::fs::write(root.path().join("secret.deb"), b"x").expect("write");
        assert!(inside(&dir, "a_1_all.deb").is_some());
        assert!(inside(&dir, "missing.deb").is_none());
        assert!(inside(&dir, "../secret.deb").is_none());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.path().join("secret.deb"), dir.join("link.deb"))
                .expect("symlink");
            assert!(inside(&dir, "link.deb").is_none());
        }
    }
}
