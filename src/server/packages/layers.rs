//! Runtime layers on the server: the manifest `build-layers` writes next to each layer, the
//! catalog pinning a layer only when it was built from exactly the runtime's `.deb`s on
//! this guest image, and `GET /packages/layers/{file}`.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`build`] | the `build-layers` subcommand: overlays, a `linux32` chroot, two builds |
//! | [`manifest`] | a directory's file-system manifest (type, mode, owner, size, link, SHA-256) |

pub mod build;
pub mod manifest;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256 as Hasher};

use super::http::with_repository_headers;
use crate::domain::runtime_layer::BUILDER_VERSION;
use crate::model::catalog::{PackageCatalogEntry, RuntimeLayer};
use crate::model::PackageStatus;
use crate::server::static_files::{serve_file, FileSpec};
use crate::server::storage::Storage;

/// Where layers are served; the browser appends `layer.file`.
pub const LAYERS_BASE_URL: &str = "/packages/layers/";
/// Media type of a layer.
pub const LAYER_CONTENT_TYPE: &str = "application/gzip";

/// What `build-layers` writes beside a layer, as `<runtime>-<key>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerManifest {
    pub runtime: String,
    /// [`layer_key`] of the inputs.
    pub key: String,
    pub builder_version: String,
    /// The guest image's hash (`manifest.json`'s `hash`).
    pub image_hash: String,
    /// Each source `.deb` and its SHA-256, the runtime's catalog dependencies' included.
    pub debs: BTreeMap<String, String>,
    /// The layer, or `None` when the build refused to make one (`refused` says why).
    pub layer: Option<RuntimeLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Files and directories in the layer.
    pub entries: usize,
    /// The uncompressed tar's size.
    pub tar_bytes: u64,
    pub build_seconds: f64,
    pub built_at: String,
}

/// One runtime's inputs to a layer build, in the order the builder installs them: its
/// catalog dependencies first, then itself.
#[derive(Debug, Clone)]
pub struct LayerInputs<'a> {
    pub image_hash: &'a str,
    pub stack: Vec<&'a PackageCatalogEntry>,
}

impl LayerInputs<'_> {
    /// The runtime the layer is for.
    pub fn runtime(&self) -> &PackageCatalogEntry {
        self.stack[self.stack.len() - 1]
    }

    /// Every `.deb` of the stack and its SHA-256.
    pub fn debs(&self) -> BTreeMap<String, String> {
        self.stack
            .iter()
            .flat_map(|entry| {
                entry.package.deb_packages.iter().map(|file| {
                    let sum = entry.package.checksums.get(file).cloned();
                    (file.clone(), sum.unwrap_or_default())
                })
            })
            .collect()
    }

    /// The cache key: the builder's version, the image, and each stage's steps, `.deb`
    /// checksums and scripts (16 hex digits of a SHA-256).
    pub fn key(&self) -> String {
        let mut hasher = Hasher::new();
        hasher.update(format!(
            "builder {BUILDER_VERSION}\nimage {}\n",
            self.image_hash
        ));
        for entry in &self.stack {
            let package = &entry.package;
            hasher.update(format!("runtime {}\n", package.id));
            for step in &entry.details.install_steps {
                hasher.update(format!("step {}\n", step.join(" ")));
            }
            for file in &package.deb_packages {
                let sum = package.checksums.get(file).map_or("", String::as_str);
                hasher.update(format!("deb {file} {sum}\n"));
            }
            for script in [&package.install_script, &package.post_install_script] {
                hasher.update(format!("script {script:?}\n"));
            }
        }
        hex::encode(hasher.finalize())[..16].to_string()
    }
}

/// The entries `id` installs on, catalog dependencies first (each once), then `id`;
/// `None` when one of them is missing or not available.
pub fn stack_of<'a>(
    entries: &'a [PackageCatalogEntry],
    id: &str,
) -> Option<Vec<&'a PackageCatalogEntry>> {
    fn visit<'a>(
        entries: &'a [PackageCatalogEntry],
        id: &str,
        stack: &mut Vec<&'a PackageCatalogEntry>,
        depth: usize,
    ) -> Option<()> {
        if depth > entries.len() {
            return None; // a cycle (the catalog refuses them already)
        }
        let entry = entries
            .iter()
            .find(|entry| entry.package.id.as_str() == id)?;
        if entry.catalog_error.is_some() || entry.package.status == PackageStatus::Error {
            return None;
        }
        for dependency in &entry.package.dependencies {
            visit(entries, dependency.as_str(), stack, depth + 1)?;
        }
        if !stack.iter().any(|seen| seen.package.id == entry.package.id) {
            stack.push(entry);
        }
        Some(())
    }
    let mut stack = Vec::new();
    visit(entries, id, &mut stack, 0)?;
    Some(stack)
}

/// The image hash of a guest build directory (`manifest.json`'s `hash`).
pub fn image_hash(guest_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(guest_dir.join("manifest.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    manifest.get("hash")?.as_str().map(str::to_string)
}

/// The SHA-256 of a file, streamed.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Pins each entry's layer from `layers_dir`: only a manifest with this entry's key (so
/// the same image, `.deb`s, steps and scripts) whose tar has the recorded size and SHA-256.
/// Anything else is left out with a log line; the entry then installs with dpkg.
pub fn attach(entries: &mut [PackageCatalogEntry], layers_dir: &Path, guest_dir: Option<&Path>) {
    let Some(image) = guest_dir.and_then(image_hash) else {
        return;
    };
    let keys: Vec<(usize, String)> = (0..entries.len())
        .filter_map(|index| {
            let id = entries[index].package.id.to_string();
            let stack = stack_of(entries, &id)?;
            let inputs = LayerInputs {
                image_hash: &image,
                stack,
            };
            Some((index, format!("{id}-{}", inputs.key())))
        })
        .collect();
    for (index, stem) in keys {
        let path = layers_dir.join(format!("{stem}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let manifest: LayerManifest = match serde_json::from_str(&text) {
            Ok(manifest) => manifest,
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "unreadable layer manifest");
                continue;
            }
        };
        let Some(layer) = manifest.layer else {
            continue;
        };
        let tar = layers_dir.join(&layer.file);
        let checked = std::fs::metadata(&tar)
            .map(|meta| meta.len() == layer.size)
            .unwrap_or(false)
            && file_sha256(&tar).is_ok_and(|sum| sum == layer.sha256.as_str());
        if !checked {
            tracing::warn!(file = %tar.display(), "layer file missing or not the one its manifest pins; run `webvm-appserver build-layers`");
            continue;
        }
        entries[index].details.layer = Some(layer);
    }
}

/// Whether `name` can be a layer file name: one path segment ending in `.tar.gz`, nothing
/// hidden.
pub fn is_safe_layer_name(name: &str) -> bool {
    name.ends_with(".tar.gz")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-._+".contains(character))
}

struct LayersState {
    storage: Storage,
    dir: PathBuf,
}

/// The route serving the catalog's layers from `dir`.
pub fn routes<S: Clone + Send + Sync + 'static>(storage: Storage, dir: PathBuf) -> Router<S> {
    Router::new()
        .route("/packages/layers/{file_name}", get(layer_file))
        .with_state(Arc::new(LayersState { storage, dir }))
}

/// A layer the current catalog pins, with Range and `ETag: "<sha256>"`; anything else 404.
async fn layer_file(
    State(state): State<Arc<LayersState>>,
    UrlPath(file_name): UrlPath<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "no such layer").into_response();
    if !is_safe_layer_name(&file_name) {
        return not_found();
    }
    let pinned = match state.storage.list_package_catalog().await {
        Ok(entries) => entries
            .into_iter()
            .filter_map(|entry| entry.details.layer)
            .find(|layer| layer.file == file_name),
        Err(error) => {
            tracing::warn!(%error, "catalog lookup for a layer failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the catalog is unavailable",
            )
                .into_response();
        }
    };
    let Some(layer) = pinned else {
        return not_found();
    };
    let spec = FileSpec {
        etag: Some(format!("\"{}\"", layer.sha256)),
        size: Some(layer.size),
        ..FileSpec::new(state.dir.join(&file_name), LAYER_CONTENT_TYPE)
    };
    let response = match serve_file(&spec, &method, &headers).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(file = %file_name, %error, "pinned layer not served; rebuild layers and rescan");
            return not_found();
        }
    };
    with_repository_headers(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names() {
        let cases = [
            ("python-311-0123456789abcdef.tar.gz", true),
            ("nginx-00.tar.gz", true),
            ("../x.tar.gz", false),
            (".hidden.tar.gz", false),
            ("a/b.tar.gz", false),
            ("python.tar", false),
            ("a b.tar.gz", false),
        ];
        for (name, safe) in cases {
            assert_eq!(is_safe_layer_name(name), safe, "{name}");
        }
    }
}
