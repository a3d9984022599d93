//! Hibernation: saving the machine into this browser (Hibernate, and the checkpoint after a
//! package change), resuming it in this page or after a reload, and the saved snapshot that
//! a page load may restore.

use std::rc::Rc;

use chrono::Utc;
use leptos::prelude::*;

use super::boot::BootSource;
use super::runtime::{now_ms, snapshot_meta, Runtime};
use super::{SavedState, VmController, VmViewStoreFields};
use crate::client::snapshot_store;
use crate::client::vm::image::{snapshot_mismatch, GuestManifest, SnapshotMeta};
use crate::client::vm::{Snapshot, VmEngine, VmError};
use crate::model::WebVMState;

impl VmController {
    /// Pauses the VM and saves it into IndexedDB.
    pub fn hibernate(&self) {
        let controller = *self;
        self.spawn(async move {
            let _shown = controller.run_hibernate().await;
        });
    }

    /// Continues a hibernated VM (in this page, or from storage after a reload).
    pub fn resume(&self) {
        if !self.owns_vm() {
            return;
        }
        let controller = *self;
        self.spawn(async move { controller.run_resume().await });
    }

    /// Pauses and saves the VM; on failure it runs on and the error is returned (and shown).
    pub(super) async fn run_hibernate(&self) -> Result<(), String> {
        let runtime = self
            .runtime()
            .ok_or_else(|| "the VM is not running".to_string())?;
        let engine = runtime
            .engine()
            .ok_or_else(|| "the VM is not running".to_string())?;
        if !engine.capabilities().hibernate {
            let message = format!(
                "{} cannot hibernate: it has no snapshots.",
                engine.kind().label()
            );
            self.notice(message.clone());
            return Err(message);
        }
        if self.state() != WebVMState::Ready {
            return Err(format!("the VM is {}", self.state()));
        }
        runtime.next_generation();
        self.set_state(WebVMState::Hibernating);
        self.view.busy().try_set(Some("Saving the VM…".into()));
        self.view.notice().try_set(None);
        self.view
            .detail()
            .try_set("Saving the VM into this browser".into());
        let started = now_ms();
        let saved = match engine.hibernate().await {
            Ok(snapshot) => {
                let meta = snapshot_meta(&runtime, engine.as_ref(), &snapshot);
                snapshot_store::save(&meta, &snapshot)
                    .await
                    .map(|()| (meta, snapshot.size))
            }
            Err(error) => Err(error),
        };
        match saved {
            Ok((meta, size)) => {
                let took = (now_ms() - started).max(0.0) as u64;
                leptos::logging::log!("VM hibernated: {size} bytes in {took} ms");
                self.view.busy().try_set(None);
                self.view.saved().try_set(Some(SavedState {
                    saved_at: meta.saved_at,
                    size: meta.size,
                }));
                self.view.last_hibernate().try_set(Some((took, size)));
                self.journal_log(
                    crate::model::LogLevel::Info,
                    &format!("VM hibernated: {size} bytes saved in {took} ms"),
                );
                self.view
                    .detail()
                    .try_set("Hibernated: paused and saved in this browser".into());
                Ok(())
            }
            Err(error) => {
                let message = match error {
                    VmError::QuotaExceeded(reason) => format!(
                        "Could not hibernate: the browser's storage is full ({reason}). The VM keeps running."
                    ),
                    error => format!("Could not hibernate: {error}. The VM keeps running."),
                };
                self.keep_running(&engine, &runtime, message.clone()).await;
                Err(message)
            }
        }
    }

    /// Saves the running VM into this browser (as hibernate does) and lets it run on, so
    /// that a reload resumes from here: called after a package install or removal.
    /// Returns the snapshot's size. The VM stays `ready` throughout.
    pub async fn checkpoint(&self) -> Result<u64, VmError> {
        self.checkpoint_snapshot()
            .await
            .map(|(_, snapshot)| snapshot.size)
    }

    /// [`VmController::checkpoint`], returning the snapshot and its record (for a backup
    /// archive, which holds the machine as it is now).
    pub async fn checkpoint_snapshot(&self) -> Result<(SnapshotMeta, Snapshot), VmError> {
        let runtime = self
            .runtime()
            .ok_or_else(|| VmError::NotRunning(String::new()))?;
        let engine = self.ready_engine()?;
        if !engine.capabilities().hibernate {
            return Err(VmError::Unsupported {
                engine: engine.kind().label(),
                what: "save its state",
            });
        }
        let saved = engine.hibernate().await;
        let resumed = engine.resume().await;
        let snapshot = saved?;
        resumed?;
        let meta = snapshot_meta(&runtime, engine.as_ref(), &snapshot);
        snapshot_store::save(&meta, &snapshot).await?;
        self.view.saved().try_set(Some(SavedState {
            saved_at: meta.saved_at,
            size: meta.size,
        }));
        Ok((meta, snapshot))
    }

    /// Why a snapshot with record `meta` (from a backup archive) can't be restored into
    /// this page's machine: another guest image, emulator build or memory size.
    pub async fn snapshot_misfit(&self, meta: &SnapshotMeta) -> Option<String> {
        let Some(runtime) = self.runtime() else {
            return Some("this page has no VM".into());
        };
        match self.fetch_manifest().await {
            Ok(manifest) => snapshot_mismatch(meta, &manifest.hash, &runtime.settings),
            Err(error) => Some(format!("the server's guest image is unknown ({error})")),
        }
    }

    /// After a failed hibernate: the VM runs on, and the user learns why.
    async fn keep_running(
        &self,
        engine: &Rc<dyn VmEngine>,
        runtime: &Rc<Runtime>,
        message: String,
    ) {
        if let Err(error) = engine.resume().await {
            self.fail(format!("{message} Resuming failed too: {error}"));
            return;
        }
        self.set_state(WebVMState::Ready);
        self.view.busy().try_set(None);
        self.view.detail().try_set("Running".into());
        self.notice(message);
        let generation = runtime.next_generation();
        self.monitor(generation);
    }

    async fn run_resume(&self) {
        let Some(runtime) = self.runtime() else {
            return;
        };
        match (self.state(), runtime.engine()) {
            (WebVMState::Hibernating, Some(engine)) => {
                self.view.busy().try_set(Some("Resuming…".into()));
                self.view.notice().try_set(None);
                let started = now_ms();
                match engine.resume().await {
                    Ok(()) => {
                        self.set_state(WebVMState::Ready);
                        let took = (now_ms() - started).max(0.0) as u64;
                        self.status
                            .try_update(|status| status.last_heartbeat = Some(Utc::now()));
                        self.view.busy().try_set(None);
                        self.view
                            .detail()
                            .try_set(format!("Resumed in {:.1} s", took as f64 / 1000.0));
                        let generation = runtime.next_generation();
                        self.monitor(generation);
                    }
                    Err(error) => self.fail(format!("Could not resume: {error}")),
                }
            }
            (WebVMState::Unloaded | WebVMState::Error, _) => {
                let manifest = self.fetch_manifest().await.ok();
                match self.fitting_snapshot(manifest.as_ref()).await {
                    Some(snapshot) => {
                        self.run_boot(vec![BootSource::Hibernation(snapshot)]).await;
                    }
                    None => self.notice("There is no saved VM state to resume."),
                }
            }
            _ => {}
        }
    }

    /// The saved snapshot if one exists and fits the server's current image. A snapshot
    /// that can't fit any more is deleted, with the reason logged and shown.
    pub(super) async fn fitting_snapshot(
        &self,
        manifest: Option<&GuestManifest>,
    ) -> Option<Snapshot> {
        let runtime = self.runtime()?;
        if let Err(error) = snapshot_store::finish_pending_import().await {
            self.notice(format!("An imported VM could not be put in place: {error}"));
        }
        let meta = match snapshot_store::load_meta().await {
            Ok(Some(meta)) => meta,
            Ok(None) => return None,
            Err(error) => {
                self.notice(format!("A saved VM state was ignored: {error}"));
                let _ = snapshot_store::delete().await;
                return None;
            }
        };
        self.view.saved().try_set(Some(SavedState {
            saved_at: meta.saved_at,
            size: meta.size,
        }));
        // Without a manifest the cold boot reports the problem.
        let manifest = manifest?;
        if let Some(reason) = snapshot_mismatch(&meta, &manifest.hash, &runtime.settings) {
            self.notice(format!(
                "The saved VM state was ignored and the VM boots fresh: {reason}."
            ));
            let _ = snapshot_store::delete().await;
            self.view.saved().try_set(None);
            return None;
        }
        match snapshot_store::load(&meta).await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                self.notice(format!("The saved VM state could not be read: {error}"));
                None
            }
        }
    }
}
