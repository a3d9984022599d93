//! Reading and restoring the full backup archive: every header and entry checked (names,
//! sizes, SHA-256s against the manifest), the records read and validated, the snapshot
//! checked against this machine; then, on apply, the VM and the records replaced in an
//! order that an interruption can't leave half done.

use std::collections::BTreeSet;

use chrono::Utc;
use js_sys::{Array, Uint8Array};
use leptos::prelude::*;
use wasm_bindgen::JsValue;

use super::{browser, digest, ArchiveFile, ArchivePreview, ArchiveProgress};
use crate::client::apps::restore::sealed_elsewhere;
use crate::client::apps::sources::Picked;
use crate::client::apps::{mirror, record, AppManager, AppsError};
use crate::client::packages::PACKAGE_RECORD_KEY;
use crate::client::snapshot_store::{self, IMPORT_MARKER};
use crate::client::vm::bridge::js_message;
use crate::client::vm::image::SnapshotMeta;
use crate::domain::app_registry::AppBook;
use crate::domain::backup::archive::{
    check_against_manifest, padding, read_header, ArchiveError, ArchiveManifest, EntryKind,
    ReadEntry, BLOCK, MAX_ENTRIES,
};
use crate::domain::backup::{import_backup_into, BackupError};
use crate::domain::mirror_queue::MirrorWrite;
use crate::domain::package_install::PackageBook;
use crate::model::{PackageStatus, RuntimePackage};

/// Whether the picked file starts like a backup archive (a tar whose first entry is the
/// manifest), as opposed to a JSON backup.
pub async fn is_archive(picked: &Picked) -> bool {
    let Ok((_, size, file)) = picked.single_file() else {
        return false;
    };
    if size < BLOCK {
        return false;
    }
    match block(&file, 0).await {
        Ok(block) => matches!(
            read_header(0, &block),
            Ok(Some(head)) if head.kind == EntryKind::Manifest
        ),
        Err(_) => false,
    }
}

fn unreadable(error: &JsValue) -> ArchiveError {
    ArchiveError::Truncated(format!(
        "the file could not be read ({})",
        js_message(error)
    ))
}

/// The 512 bytes at `offset`.
async fn block(file: &JsValue, offset: u64) -> Result<Vec<u8>, ArchiveError> {
    let buffer = browser::file_slice(file, offset as f64, (offset + BLOCK) as f64)
        .await
        .map_err(|error| unreadable(&error))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// The JSON entries, as text.
#[derive(Default)]
struct Texts {
    backup: Option<String>,
    app_record: Option<String>,
    package_record: Option<String>,
}

/// The archive read through: its manifest, its texts, where the snapshot is, and every
/// entry's name, size and SHA-256.
struct ReadArchive {
    manifest: ArchiveManifest,
    texts: Texts,
    snapshot_at: u64,
    entries: Vec<ReadEntry>,
}

async fn read_archive(
    file: &JsValue,
    size: u64,
    progress: &impl Fn(ArchiveProgress),
) -> Result<ReadArchive, ArchiveError> {
    let mut offset = 0u64;
    let mut manifest = None;
    let mut texts = Texts::default();
    let mut snapshot_at = 0;
    let mut entries = Vec::new();
    for index in 0.. {
        if index > MAX_ENTRIES {
            return Err(ArchiveError::NotAnArchive(format!(
                "it has more than {MAX_ENTRIES} entries"
            )));
        }
        if offset + BLOCK > size {
            return Err(ArchiveError::Truncated(
                "it ends before the end-of-archive blocks".into(),
            ));
        }
        let Some(head) = read_header(index, &block(file, offset).await?)? else {
            break;
        };
        let start = offset + BLOCK;
        let end = start + head.size;
        if end > size {
            return Err(ArchiveError::Truncated(format!(
                "'{}' needs {} bytes, the file ends {} bytes into it",
                head.path,
                head.size,
                size.saturating_sub(start)
            )));
        }
        match (index, head.kind) {
            (0, EntryKind::Manifest) => {}
            (0, _) => {
                return Err(ArchiveError::NotAnArchive(format!(
                    "its first entry is '{}', not the manifest",
                    head.path
                )))
            }
            (_, EntryKind::Manifest) => {
                return Err(ArchiveError::Mismatch(vec![
                    "the manifest is in the archive twice".into(),
                ]))
            }
            _ => {}
        }
        progress(ArchiveProgress {
            step: format!("Checking {}", head.path),
            done: start,
            total: size,
        });
        let buffer = browser::file_slice(file, start as f64, end as f64)
            .await
            .map_err(|error| unreadable(&error))?;
        let text = || {
            String::from_utf8(Uint8Array::new(&buffer).to_vec()).map_err(|_| {
                ArchiveError::Mismatch(vec![format!("'{}' is not UTF-8 text", head.path)])
            })
        };
        match head.kind {
            EntryKind::Manifest => {
                manifest = Some(ArchiveManifest::from_json(&text()?)?);
                offset = end + padding(head.size);
                continue;
            }
            EntryKind::Backup => texts.backup = Some(text()?),
            EntryKind::AppRecord => texts.app_record = Some(text()?),
            EntryKind::PackageRecord => texts.package_record = Some(text()?),
            EntryKind::Snapshot => snapshot_at = start,
            EntryKind::Release(_) => {}
        }
        let sha256 = digest(&buffer).await.map_err(|error| {
            ArchiveError::Truncated(format!("it could not be hashed ({error})"))
        })?;
        entries.push(ReadEntry {
            path: head.path,
            size: head.size,
            sha256,
        });
        offset = end + padding(head.size);
    }
    let manifest =
        manifest.ok_or_else(|| ArchiveError::NotAnArchive("it has no manifest".into()))?;
    check_against_manifest(&manifest, &entries)?;
    Ok(ReadArchive {
        manifest,
        texts,
        snapshot_at,
        entries,
    })
}

fn record_problem(entry: &str, reason: impl std::fmt::Display) -> BackupError {
    BackupError::Archive(format!("'{entry}' is unreadable: {reason}"))
}

impl AppManager {
    /// Reads and checks the picked archive and says what restoring it changes. Changes
    /// nothing.
    pub async fn preview_archive(
        &self,
        picked: &Picked,
        progress: impl Fn(ArchiveProgress),
    ) -> Result<ArchivePreview, BackupError> {
        let (file_name, bytes, file) = picked
            .single_file()
            .map_err(|error| BackupError::Archive(error.to_string()))?;
        let read = read_archive(&file, bytes, &progress).await?;
        let (Some(backup), Some(app_record), Some(package_record)) = (
            read.texts.backup,
            read.texts.app_record,
            read.texts.package_record,
        ) else {
            return Err(ArchiveError::Mismatch(vec!["a record is missing".into()]).into());
        };
        // The portable backup: every problem by place and field, as for a JSON backup.
        let catalog: Vec<RuntimePackage> = self.catalog_packages();
        let imported = import_backup_into(&backup, &catalog, &BTreeSet::new())?;
        let book = AppBook::from_json(&app_record)
            .map_err(|error| record_problem("vm/applications.json", error))?;
        let package_book = PackageBook::from_json(&package_record)
            .map_err(|error| record_problem("vm/packages.json", error))?;
        let in_backup: BTreeSet<_> = imported
            .backup
            .applications
            .iter()
            .map(|app| app.id)
            .collect();
        let in_record: BTreeSet<_> = book.applications.keys().copied().collect();
        if in_backup != in_record {
            return Err(BackupError::Archive(
                "backup.json and vm/applications.json hold different applications".into(),
            ));
        }
        let meta: SnapshotMeta = serde_json::from_value(read.manifest.snapshot.clone())
            .map_err(|error| record_problem("the manifest's snapshot record", error))?;
        let snapshot_bytes = read
            .entries
            .iter()
            .find(|entry| entry.path == crate::domain::backup::archive::SNAPSHOT_ENTRY)
            .map_or(0, |entry| entry.size);
        if meta.size != snapshot_bytes {
            return Err(BackupError::Archive(format!(
                "the snapshot is {snapshot_bytes} bytes, its record says {}",
                meta.size
            )));
        }
        if let Some(reason) = self.vm.snapshot_misfit(&meta).await {
            return Err(BackupError::Archive(format!(
                "its VM can't run here: {reason}. Nothing was changed."
            )));
        }
        let mut runtimes: Vec<_> = package_book
            .apply_to(&catalog)
            .into_iter()
            .filter(|package| package.status == PackageStatus::Installed)
            .map(|package| package.id)
            .collect();
        runtimes.sort();
        let applications: Vec<_> = book
            .sorted()
            .into_iter()
            .map(|app| app.name.clone())
            .collect();
        let replaced_here = self.book.with_untracked(|here| {
            here.sorted()
                .into_iter()
                .map(|app| app.name.clone())
                .collect()
        });
        let restored: Vec<_> = book.applications.values().cloned().collect();
        Ok(ArchivePreview {
            file_name,
            bytes,
            releases: read.manifest.releases().len(),
            manifest: read.manifest,
            applications,
            replaced_here,
            runtimes,
            snapshot_bytes,
            saved_at: meta.saved_at,
            warnings: imported.warnings,
            sealed_elsewhere: sealed_elsewhere(&restored).await,
            book,
            package_book,
            snapshot_meta: serde_json::to_value(&meta).unwrap_or_default(),
            snapshot_at: read.snapshot_at,
            file: ArchiveFile { file },
        })
    }

    /// Restores a previewed archive: the VM, its runtimes and its applications replace this
    /// browser's, and the page reloads into the restored VM. All or nothing: until the
    /// records are written (one transaction) nothing of this browser's changes, and after
    /// it the snapshot's switch is finished by this call or by the next load.
    pub async fn apply_archive(
        &self,
        preview: &ArchivePreview,
        progress: impl Fn(ArchiveProgress),
    ) -> Result<(), AppsError> {
        if !self.writable.get_untracked() {
            return Err(AppsError::Storage(
                "the application record could not be read in this page, so it can't be replaced"
                    .into(),
            ));
        }
        self.wait_until_idle(&progress).await?;
        let total = preview.snapshot_bytes;
        let step = |step: &str, done: u64| {
            progress(ArchiveProgress {
                step: step.into(),
                done,
                total,
            })
        };
        step("Reading the VM snapshot", 0);
        let start = preview.snapshot_at;
        let buffer = browser::file_slice(
            &preview.file.file,
            start as f64,
            (start + preview.snapshot_bytes) as f64,
        )
        .await
        .map_err(|error| AppsError::Storage(js_message(&error)))?;
        let buffer: js_sys::ArrayBuffer = buffer.into();
        let meta: SnapshotMeta = serde_json::from_value(preview.snapshot_meta.clone())
            .map_err(|error| AppsError::Invalid(vec![error.to_string()]))?;
        step("Storing the VM snapshot in this browser", total / 3);
        snapshot_store::stage(&meta, &buffer)
            .await
            .map_err(|error| AppsError::Storage(error.to_string()))?;

        // The mirror learns of the change: this browser's applications that go, and every
        // restored one.
        let now = Utc::now();
        let mut queue = self.queue.get_untracked();
        self.book.with_untracked(|here| {
            for app in here.applications.values() {
                if !preview.book.applications.contains_key(&app.id) {
                    let name = app.name.to_string();
                    queue.enqueue(app.id, MirrorWrite::Delete { name }, now);
                }
            }
        });
        for app in preview.book.applications.values() {
            let application = Box::new(app.clone());
            queue.enqueue(app.id, MirrorWrite::Save { application }, now);
        }
        let texts = (
            serde_json::to_string(&preview.book),
            serde_json::to_string(&preview.package_book),
            serde_json::to_string(&queue),
        );
        let (Ok(book), Ok(packages), Ok(queue_text)) = texts else {
            snapshot_store::discard_staged().await;
            return Err(AppsError::Invalid(vec![
                "the records could not be written out".into(),
            ]));
        };
        let marker =
            serde_json::json!({ "importedAt": now, "file": preview.file_name }).to_string();
        let entries = Array::new();
        for (key, text) in [
            (record::BOOK_KEY, book),
            (PACKAGE_RECORD_KEY, packages),
            (mirror::QUEUE_KEY, queue_text),
            (IMPORT_MARKER, marker),
        ] {
            entries.push(&Array::of2(&key.into(), &text.into()));
        }

        step("Writing the records", total * 2 / 3);
        // No other write of this page may land after these: the page stops writing, then
        // reloads into the restored VM.
        let lock = self.writes.get_value();
        let turn = lock.lock().await;
        self.writable.set(false);
        self.runtimes.maintenance.set(true);
        if let Err(error) = crate::client::vm::bridge::workspace_records_put(&entries).await {
            drop(turn);
            self.writable.set(true);
            self.runtimes.maintenance.set(false);
            snapshot_store::discard_staged().await;
            return Err(AppsError::Storage(js_message(&error)));
        }
        if let Err(error) = snapshot_store::finish_pending_import().await {
            // The records are in; the next load puts the snapshot in place.
            leptos::logging::warn!(
                "webvm: the restored VM is put in place on the next load: {error}"
            );
        }
        step("Restarting the page into the restored VM", total);
        drop(turn);
        let _ = window().location().reload();
        Ok(())
    }

    /// The catalog's runtimes (without this browser's statuses).
    fn catalog_packages(&self) -> Vec<RuntimePackage> {
        self.catalog.with_untracked(|catalog| {
            catalog
                .iter()
                .flat_map(|catalog| &catalog.entries)
                .map(|entry| entry.package.clone())
                .collect()
        })
    }
}
