//! The full backup archive (`domain::backup::archive`): exported with each application's
//! current release and the VM saved as it runs now; imported by checking every entry
//! against the manifest's SHA-256s and the snapshot against this machine before anything
//! is written, then restoring the VM, its runtimes and its applications in place of this
//! browser's.
//!
//! The archive is read from the picked file part by part and written as one `Blob` of
//! parts (`js/backup_archive.js`), so the snapshot never passes through wasm memory. The
//! import is all or nothing: the snapshot is staged beside the current one, the records
//! (applications, packages, the mirror's queue and a marker) are written in one IndexedDB
//! transaction, and the staged snapshot then replaces the hibernation one; a load that
//! finds the marker finishes that last step (`snapshot_store::finish_pending_import`).

use chrono::{DateTime, Utc};

#[cfg(not(feature = "hydrate"))]
use super::{AppManager, AppsError};
use crate::domain::app_registry::AppBook;
use crate::domain::backup::archive::{ArchiveError, ArchiveManifest};
use crate::domain::backup::{BackupError, Finding};
use crate::domain::package_install::PackageBook;
use crate::model::{AppName, PackageId};

/// Where a long archive step is, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveProgress {
    pub step: String,
    pub done: u64,
    pub total: u64,
}

impl ArchiveProgress {
    /// How far, 0–100.
    pub fn percent(&self) -> u8 {
        if self.total == 0 {
            return 0;
        }
        (self.done.min(self.total) * 100 / self.total) as u8
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveExported {
    pub file_name: String,
    pub bytes: u64,
    pub applications: usize,
    pub releases: usize,
    pub snapshot_bytes: u64,
}

/// The picked archive file (browser only).
#[derive(Clone)]
pub struct ArchiveFile {
    #[cfg(feature = "hydrate")]
    file: wasm_bindgen::JsValue,
}

impl PartialEq for ArchiveFile {
    fn eq(&self, _other: &Self) -> bool {
        #[cfg(feature = "hydrate")]
        return self.file == _other.file;
        #[cfg(not(feature = "hydrate"))]
        true
    }
}

impl std::fmt::Debug for ArchiveFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ArchiveFile")
    }
}

/// An archive that passed every check, with what restoring it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivePreview {
    pub file_name: String,
    pub bytes: u64,
    pub manifest: ArchiveManifest,
    /// The applications it restores.
    pub applications: Vec<AppName>,
    /// This browser's applications, which the restored VM replaces.
    pub replaced_here: Vec<AppName>,
    /// The runtimes installed in its VM.
    pub runtimes: Vec<PackageId>,
    pub releases: usize,
    pub snapshot_bytes: u64,
    pub saved_at: DateTime<Utc>,
    pub warnings: Vec<Finding>,
    pub sealed_elsewhere: Vec<String>,
    book: AppBook,
    package_book: PackageBook,
    snapshot_meta: serde_json::Value,
    snapshot_at: u64,
    file: ArchiveFile,
}

impl From<ArchiveError> for BackupError {
    fn from(error: ArchiveError) -> Self {
        BackupError::Archive(error.to_string())
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(module = "/js/backup_archive.js")]
    extern "C" {
        #[wasm_bindgen(js_name = fileSlice, catch)]
        pub async fn file_slice(file: &JsValue, start: f64, end: f64) -> Result<JsValue, JsValue>;
        #[wasm_bindgen(js_name = fileSliceText, catch)]
        pub async fn file_slice_text(
            file: &JsValue,
            start: f64,
            end: f64,
        ) -> Result<JsValue, JsValue>;
        #[wasm_bindgen(js_name = downloadParts, catch)]
        pub fn download_parts(name: &str, parts: &js_sys::Array) -> Result<JsValue, JsValue>;
    }
}

/// The SHA-256 of an `ArrayBuffer`, hex: WebCrypto's, natively, or (outside a secure
/// context) `sha2`'s over a copy.
#[cfg(feature = "hydrate")]
async fn digest(buffer: &wasm_bindgen::JsValue) -> Result<String, String> {
    use sha2::Digest;
    let native = crate::client::vm::bridge::sha256_hex(buffer)
        .await
        .map_err(|error| crate::client::vm::bridge::js_message(&error))?;
    Ok(match native.as_string() {
        Some(hex) => hex,
        None => hex::encode(sha2::Sha256::digest(
            js_sys::Uint8Array::new(buffer).to_vec(),
        )),
    })
}

#[cfg(feature = "hydrate")]
mod export;
#[cfg(feature = "hydrate")]
mod import;

#[cfg(feature = "hydrate")]
pub use import::is_archive;

/// The server build's twins: archives are made and read in the browser.
#[cfg(not(feature = "hydrate"))]
impl AppManager {
    /// Exports the archive (browser only).
    pub async fn export_archive(
        &self,
        _options: crate::domain::backup::ExportOptions,
        _progress: impl Fn(ArchiveProgress),
    ) -> Result<ArchiveExported, AppsError> {
        Err(AppsError::BrowserOnly)
    }

    /// Reads and checks an archive (browser only).
    pub async fn preview_archive(
        &self,
        _picked: &super::sources::Picked,
        _progress: impl Fn(ArchiveProgress),
    ) -> Result<ArchivePreview, BackupError> {
        Err(BackupError::Archive(
            "this needs the page's JavaScript".into(),
        ))
    }

    /// Restores an archive (browser only).
    pub async fn apply_archive(
        &self,
        _preview: &ArchivePreview,
        _progress: impl Fn(ArchiveProgress),
    ) -> Result<(), AppsError> {
        Err(AppsError::BrowserOnly)
    }
}

/// Whether the picked file is an archive (server build: never).
#[cfg(not(feature = "hydrate"))]
pub async fn is_archive(_picked: &super::sources::Picked) -> bool {
    false
}
