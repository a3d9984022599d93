//! Writing the full backup archive: each current release packed in the guest and pulled,
//! the VM saved as it runs, the records and the JSON backup, every part hashed, then the
//! manifest and the tar written as one download.

use chrono::Utc;
use js_sys::{Array, Uint8Array};
use leptos::prelude::*;

use super::{browser, digest, ArchiveExported, ArchiveProgress};
use crate::client::apps::{AppManager, AppsError};
use crate::client::vm::ExecCommand;
use crate::domain::backup::archive::{
    entry_header, padding, release_entry, ArchiveManifest, ManifestEntry, APP_RECORD_ENTRY,
    ARCHIVE_FORMAT, ARCHIVE_KIND, BACKUP_ENTRY, END_OF_ARCHIVE, MANIFEST_ENTRY,
    PACKAGE_RECORD_ENTRY, SNAPSHOT_ENTRY,
};
use crate::domain::backup::ExportOptions;
use crate::domain::release::{pack_release_script, AppPaths};
use crate::model::{Sha256, WebVMState};

/// Longest wait for the runtimes before a backup with the VM refuses (ms).
pub(super) const RUNTIME_WAIT_MS: u64 = 120_000;

/// One entry's bytes: small ones in wasm, the snapshot in the browser's own buffer.
enum Body {
    Bytes(Vec<u8>),
    Buffer(js_sys::ArrayBuffer),
}

impl Body {
    fn size(&self) -> u64 {
        match self {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::Buffer(buffer) => u64::from(buffer.byte_length()),
        }
    }

    fn js(&self) -> wasm_bindgen::JsValue {
        match self {
            Body::Bytes(bytes) => Uint8Array::from(bytes.as_slice()).buffer().into(),
            Body::Buffer(buffer) => buffer.into(),
        }
    }
}

fn invalid(message: impl Into<String>) -> AppsError {
    AppsError::Invalid(vec![message.into()])
}

impl AppManager {
    /// Writes the archive and offers it as a download. Needs the VM running (it is saved as
    /// it is now, and each release is read from it) and no deploy or runtime operation in
    /// progress (the saved VM would hold it half done).
    pub async fn export_archive(
        &self,
        options: ExportOptions,
        progress: impl Fn(ArchiveProgress),
    ) -> Result<ArchiveExported, AppsError> {
        let state = self.vm.state();
        if state != WebVMState::Ready {
            return Err(invalid(format!(
                "the VM is {state}: a backup with the VM saves it as it runs, so start it first"
            )));
        }
        self.wait_until_idle(&progress).await?;
        let releases: Vec<_> = self.book.with_untracked(|book| {
            book.current_releases
                .iter()
                .filter_map(|(id, release)| {
                    let app = book.applications.get(id)?;
                    Some((*id, *release, app.name.clone(), app.deployment.clone()))
                })
                .collect()
        });
        let steps = releases.len() as u64 + 3;
        let report = |step: String, done: u64| {
            progress(ArchiveProgress {
                step,
                done,
                total: steps,
            })
        };
        let mut entries: Vec<(String, Body)> = Vec::new();
        for (done, (id, release, name, deployment)) in releases.into_iter().enumerate() {
            report(format!("Copying the files of {name}"), done as u64);
            let paths = AppPaths::of(&deployment).map_err(|error| invalid(error.to_string()))?;
            let temp = format!("/tmp/webvm-backup-{id}.tar");
            let packed = self
                .vm
                .exec(ExecCommand::shell(pack_release_script(
                    &paths, release, &temp,
                )))
                .await
                .map_err(|error| AppsError::Deploy(error.to_string()))?;
            if !packed.status.success() {
                return Err(AppsError::Deploy(format!(
                    "the files of {name} could not be packed in the VM: {}",
                    String::from_utf8_lossy(&packed.stderr).trim()
                )));
            }
            let bytes = self.vm.pull_file(temp.clone()).await;
            let _ = self
                .vm
                .exec(ExecCommand::new("rm", ["-f", "--", temp.as_str()]))
                .await;
            let bytes = bytes.map_err(|error| AppsError::Deploy(error.to_string()))?;
            entries.push((release_entry(id), Body::Bytes(bytes)));
        }
        let done = steps - 3;
        report("Saving the VM".into(), done);
        let (meta, snapshot) =
            self.vm.checkpoint_snapshot().await.map_err(|error| {
                AppsError::Deploy(format!("the VM could not be saved: {error}"))
            })?;
        // The records as they are at the moment the VM was saved.
        let book = self
            .book
            .with_untracked(serde_json::to_vec)
            .map_err(|error| invalid(error.to_string()))?;
        let package_book = self
            .runtimes
            .book
            .with_untracked(serde_json::to_vec)
            .map_err(|error| invalid(error.to_string()))?;
        let (backup, applications, _) = self.backup_json(options)?;
        let mut all = vec![
            (BACKUP_ENTRY.to_string(), Body::Bytes(backup.into_bytes())),
            (APP_RECORD_ENTRY.to_string(), Body::Bytes(book)),
            (PACKAGE_RECORD_ENTRY.to_string(), Body::Bytes(package_book)),
        ];
        let release_count = entries.len();
        all.append(&mut entries);
        let snapshot_bytes = snapshot.size;
        all.push((SNAPSHOT_ENTRY.to_string(), Body::Buffer(snapshot.buffer)));

        report("Computing checksums".into(), done + 1);
        let mut listed = Vec::with_capacity(all.len());
        for (path, body) in &all {
            let sha = digest(&body.js()).await.map_err(AppsError::Storage)?;
            let sha256 = Sha256::parse(&sha).map_err(|error| invalid(error.to_string()))?;
            listed.push(ManifestEntry {
                path: path.clone(),
                size: body.size(),
                sha256,
            });
        }
        let now = Utc::now();
        let manifest = ArchiveManifest {
            kind: ARCHIVE_KIND.into(),
            format_version: ARCHIVE_FORMAT,
            created_at: now,
            entries: listed,
            snapshot: serde_json::to_value(&meta).map_err(|error| invalid(error.to_string()))?,
        };
        let manifest = serde_json::to_vec(&manifest).map_err(|error| invalid(error.to_string()))?;

        report("Writing the archive".into(), done + 2);
        let parts = Array::new();
        let zeros = [0u8; 512];
        let push = |path: &str, body: &Body| -> Result<(), AppsError> {
            let header =
                entry_header(path, body.size(), now).map_err(|error| invalid(error.to_string()))?;
            parts.push(&Uint8Array::from(header.as_slice()));
            parts.push(&body.js());
            let pad = padding(body.size()) as usize;
            if pad > 0 {
                parts.push(&Uint8Array::from(&zeros[..pad]));
            }
            Ok(())
        };
        push(MANIFEST_ENTRY, &Body::Bytes(manifest))?;
        for (path, body) in &all {
            push(path, body)?;
        }
        parts.push(&Uint8Array::from(END_OF_ARCHIVE.as_slice()));
        let file_name = format!("webvm-backup-{}.tar", now.format("%Y%m%d-%H%M%S"));
        let bytes = browser::download_parts(&file_name, &parts)
            .map_err(|error| AppsError::Storage(crate::client::vm::bridge::js_message(&error)))?
            .as_f64()
            .unwrap_or(0.0) as u64;
        report("Done".into(), steps);
        Ok(ArchiveExported {
            file_name,
            bytes,
            applications,
            releases: release_count,
            snapshot_bytes,
        })
    }

    /// Waits, up to [`RUNTIME_WAIT_MS`], while the runtimes are busy (the check of the
    /// guest's runtimes after the VM starts takes a few seconds), saying so through
    /// `progress`; then refuses if a runtime operation or a deploy still runs.
    pub(super) async fn wait_until_idle(
        &self,
        progress: &impl Fn(ArchiveProgress),
    ) -> Result<(), AppsError> {
        let mut waited = 0;
        while self.runtimes.busy.get_untracked() && waited < RUNTIME_WAIT_MS {
            if waited == 0 {
                progress(ArchiveProgress {
                    step: "Waiting for the runtimes to be checked or for their operation to end"
                        .into(),
                    done: 0,
                    total: 1,
                });
            }
            crate::client::vm::bridge::sleep(250).await;
            waited += 250;
        }
        self.refuse_when_busy()
    }

    /// Refuses while a deploy or a runtime operation runs: the VM would be saved, or
    /// replaced, half way through it.
    fn refuse_when_busy(&self) -> Result<(), AppsError> {
        if self.runtimes.busy.get_untracked() {
            return Err(AppsError::Busy(
                "a runtime is being installed or removed, or the guest is being checked: wait for it to finish".into(),
            ));
        }
        let deploying = self.book.with_untracked(|book| {
            book.applications
                .values()
                .find(|app| book.active_deployment(app.id).is_some())
                .map(|app| app.name.to_string())
        });
        match deploying {
            Some(name) => Err(AppsError::Busy(format!(
                "{name} is being deployed: wait for it to finish"
            ))),
            None => Ok(()),
        }
    }
}
