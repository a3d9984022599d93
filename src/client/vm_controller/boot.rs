//! Starting the VM: on page load, Boot, Retry and Restart; the plan of sources tried in
//! order (hibernation snapshot, the server's boot snapshot, a cold boot), one attempt, the
//! engine's progress, and what happens once the VM is ready.

use std::rc::Rc;

use chrono::Utc;
use leptos::logging::warn;
use leptos::prelude::*;

use super::boot_snapshot::DOWNLOAD_SHARE;
use super::runtime::{capitalized, create_engine, now_ms, sentence, Runtime};
use super::{VmController, VmSource, VmViewStoreFields};
use crate::client::settings;
use crate::client::snapshot_store;
use crate::client::vm::image::{BootSnapshotEntry, GuestManifest, MANIFEST_URL};
use crate::client::vm::{
    bridge, BootProgress, BootReport, BootRequest, ExecCommand, Snapshot, VmEngine, VmError,
};
use crate::model::WebVMState;

/// One way to start the VM; [`VmController::run_boot`] tries a list of them in order.
pub(super) enum BootSource {
    Cold,
    Hibernation(Snapshot),
    BootSnapshot(BootSnapshotEntry),
}

impl BootSource {
    fn kind(&self) -> VmSource {
        match self {
            BootSource::Cold => VmSource::Cold,
            BootSource::Hibernation(_) => VmSource::Hibernation,
            BootSource::BootSnapshot(_) => VmSource::BootSnapshot,
        }
    }
}

impl VmController {
    /// Starts the VM the first time a VM view appears: resumes the saved hibernation
    /// state when it fits this image, otherwise cold-boots (unless autoboot is off).
    pub fn start_on_load(&self) {
        let Some(runtime) = self.runtime() else {
            return;
        };
        if runtime.started.replace(true) {
            return;
        }
        let controller = *self;
        self.spawn(async move {
            if !controller.claim_vm().await {
                return;
            }
            if !snapshot_store::persist().await {
                leptos::logging::log!("VM: storage is not persistent; the browser may evict a saved VM under pressure");
            }
            controller.resume_saved_or_boot(settings::autoboot()).await;
        });
    }

    /// Cold boot (the Boot button): always from the image.
    pub fn boot(&self) {
        if !self.owns_vm() {
            return;
        }
        let controller = *self;
        self.spawn(async move {
            controller.run_boot(vec![BootSource::Cold]).await;
        });
    }

    /// After an error: resume the saved state if it fits, else the server's boot
    /// snapshot, else boot cold.
    pub fn retry(&self) {
        if !self.owns_vm() {
            return;
        }
        let controller = *self;
        self.spawn(async move { controller.resume_saved_or_boot(true).await });
    }

    /// Stops the VM and boots it again from the image (a real cold boot).
    pub fn restart(&self) {
        if !self.owns_vm() {
            return;
        }
        let controller = *self;
        self.spawn(async move {
            controller.run_boot(vec![BootSource::Cold]).await;
        });
    }

    pub(super) async fn fetch_manifest(&self) -> Result<GuestManifest, VmError> {
        let text = bridge::fetch_text(MANIFEST_URL)
            .await
            .map_err(|error| VmError::Load(bridge::js_message(&error)))?;
        GuestManifest::parse(&text.as_string().unwrap_or_default()).map_err(VmError::Load)
    }

    /// Page load (and Retry): this browser's hibernation snapshot if it fits, else the
    /// server's boot snapshot if it fits, else (when `cold_boot`) a cold boot. A restore
    /// that fails falls through to the next of these.
    async fn resume_saved_or_boot(&self, cold_boot: bool) {
        let mut plan = Vec::new();
        if settings::engine().capabilities().hibernate {
            let manifest = self.fetch_manifest().await.ok();
            if let Some(snapshot) = self.fitting_snapshot(manifest.as_ref()).await {
                plan.push(BootSource::Hibernation(snapshot));
            }
            if cold_boot {
                if let Some(entry) = manifest
                    .as_ref()
                    .and_then(|manifest| self.fitting_boot_snapshot(manifest))
                {
                    plan.push(BootSource::BootSnapshot(entry));
                }
            }
        }
        if cold_boot {
            plan.push(BootSource::Cold);
        }
        if !plan.is_empty() {
            self.run_boot(plan).await;
        }
    }

    /// Starts the VM from the first source of `plan` that works; each failure but the
    /// last is a notice, the last one puts the VM in error. True when the VM became ready.
    pub(super) async fn run_boot(&self, plan: Vec<BootSource>) -> bool {
        let Some(runtime) = self.runtime() else {
            return false;
        };
        let generation = runtime.next_generation();
        let old = runtime.engine.borrow_mut().take();
        if let Some(old) = old {
            let _ = old.shutdown().await;
        }
        if matches!(self.state(), WebVMState::Ready | WebVMState::Hibernating) {
            self.set_state(WebVMState::Unloaded);
        }
        if !self.set_state(WebVMState::Loading) {
            return false;
        }
        let mut plan = plan.into_iter().peekable();
        while let Some(source) = plan.next() {
            let kind = source.kind();
            let result = self.boot_attempt(&runtime, generation, source).await;
            if runtime.generation.get() != generation {
                return false; // superseded by a restart
            }
            let error = match result {
                Ok((engine, report)) => {
                    self.on_ready(&runtime, generation, engine, report, kind);
                    return true;
                }
                Err(error) => error,
            };
            runtime.engine.borrow_mut().take();
            match (kind.snapshot_name(), plan.peek()) {
                (Some(what), Some(next)) => {
                    let then = match next.kind() {
                        VmSource::Cold => "booting fresh (about a minute)",
                        VmSource::BootSnapshot => "using the server's boot snapshot",
                        VmSource::Hibernation => "trying the saved VM state",
                    };
                    self.notice(capitalized(&format!(
                        "{what} could not be restored ({error}); {then}."
                    )));
                }
                _ => {
                    self.fail(sentence(&error));
                    return false;
                }
            }
        }
        false
    }

    /// One start of the VM from `source`: the engine and its report, or why not.
    async fn boot_attempt(
        &self,
        runtime: &Rc<Runtime>,
        generation: u64,
        source: BootSource,
    ) -> Result<(Rc<dyn VmEngine>, BootReport), VmError> {
        let kind = settings::engine();
        let from = source.kind();
        self.status.try_update(|status| {
            status.load_progress = 0;
            status.boot_time = None;
            status.last_heartbeat = None;
            status.error_message = None;
        });
        let view = self.view;
        view.engine().try_set(kind);
        view.detail().try_set(match from {
            VmSource::Cold => "Starting".into(),
            VmSource::Hibernation => "Restoring the saved VM".into(),
            VmSource::BootSnapshot => "Fetching a ready-booted VM from the server".into(),
        });
        view.busy().try_set(None);
        view.boot_ms().try_set(None);
        view.source().try_set(Some(from));
        view.boot_started_ms().try_set(Some(now_ms()));
        if !runtime.console.text().is_empty() {
            runtime
                .console
                .push(b"\r\n\x1b[2m--- the VM starts again ---\x1b[0m\r\n");
        }
        let (snapshot, progress_base) = match source {
            BootSource::Cold => (None, 0),
            BootSource::Hibernation(snapshot) => (Some(snapshot), 0),
            BootSource::BootSnapshot(entry) => (
                Some(self.download_boot_snapshot(generation, &entry).await?),
                DOWNLOAD_SHARE,
            ),
        };
        if runtime.generation.get() != generation {
            return Err(VmError::NotRunning(" (superseded by a restart)".into()));
        }
        let engine = create_engine(kind, &runtime.settings);
        *runtime.engine.borrow_mut() = Some(engine.clone());
        let controller = *self;
        let on_progress = Rc::new(move |progress: BootProgress| {
            controller.on_progress(generation, progress_base, progress)
        });
        let console = runtime.console.clone();
        let on_console = Rc::new(move |bytes: &[u8]| console.push(bytes));
        let report = engine
            .boot(BootRequest {
                snapshot,
                on_progress,
                on_console,
            })
            .await?;
        Ok((engine, report))
    }

    /// The VM is up: record how it came, start the monitor.
    fn on_ready(
        &self,
        runtime: &Rc<Runtime>,
        generation: u64,
        engine: Rc<dyn VmEngine>,
        report: BootReport,
        source: VmSource,
    ) {
        *runtime.image_hash.borrow_mut() = report.image_hash.clone();
        *runtime.agent_instance.borrow_mut() = Some(report.agent_instance.clone());
        self.status.try_update(|status| status.load_progress = 100);
        self.set_state(WebVMState::Ready);
        let now = Utc::now();
        self.status.try_update(|status| {
            status.boot_time = Some(now);
            status.last_heartbeat = Some(now);
        });
        // From the start of this attempt: for the boot snapshot, download and restore.
        let duration_ms = self
            .view
            .boot_started_ms()
            .try_get_untracked()
            .flatten()
            .map_or(report.duration_ms, |started| {
                (now_ms() - started).max(0.0) as u64
            });
        let seconds = duration_ms as f64 / 1000.0;
        self.view.boot_ms().try_set(Some(duration_ms));
        self.view.source().try_set(Some(source));
        self.journal_event(|journal| journal.booted(now, duration_ms, source != VmSource::Cold));
        self.view.detail().try_set(match source {
            VmSource::Cold => format!("Booted in {seconds:.0} s"),
            VmSource::Hibernation => format!("Restored in {seconds:.1} s"),
            VmSource::BootSnapshot => {
                format!("Started from the server's boot snapshot in {seconds:.1} s")
            }
        });
        leptos::logging::log!(
            "VM ready: {} in {} ms",
            match source {
                VmSource::Cold => "cold boot",
                VmSource::Hibernation => "restored",
                VmSource::BootSnapshot => "restored from the boot snapshot",
            },
            duration_ms
        );
        if let Some((cols, rows)) = runtime.console_size.get() {
            engine.console_resize(cols, rows);
        }
        if report.restored {
            Self::refresh_restored_guest(engine, source);
        }
        self.monitor(generation);
    }

    /// A restored guest's clock stands where it was saved: set it to now. A guest from
    /// the server's boot snapshot also shares its random pool with every other visitor:
    /// mix fresh bytes from the browser into it. Best effort.
    fn refresh_restored_guest(engine: Rc<dyn VmEngine>, source: VmSource) {
        let seconds = (js_sys::Date::now() / 1000.0) as u64;
        let entropy = if source == VmSource::BootSnapshot {
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )
        } else {
            String::new()
        };
        wasm_bindgen_futures::spawn_local(async move {
            let mut command = ExecCommand::new(
                "sh",
                [
                    "-c".to_string(),
                    r#"date -u -s "@$0" >/dev/null && { [ -z "$1" ] || printf %s "$1" > /dev/urandom; }"#
                        .to_string(),
                    seconds.to_string(),
                    entropy,
                ],
            );
            command.timeout_ms = Some(10_000);
            match engine.exec(command).await {
                Ok(result) if result.status.success() => {}
                Ok(result) => warn!(
                    "VM: could not set the restored guest's clock: {}",
                    String::from_utf8_lossy(&result.stderr).trim()
                ),
                Err(error) => warn!("VM: could not set the restored guest's clock: {error}"),
            }
        });
    }

    /// Whether `generation` is still the current one (work of an older one stops).
    pub(super) fn is_current(&self, generation: u64) -> bool {
        self.runtime()
            .is_some_and(|runtime| runtime.generation.get() == generation)
    }

    /// Engine progress; its loading percentage fills the bar from `base` % on.
    fn on_progress(&self, generation: u64, base: u8, progress: BootProgress) {
        if !self.is_current(generation) {
            return;
        }
        match progress {
            BootProgress::Loading { percent, detail } => {
                let base = u32::from(base.min(99));
                let scaled = base + u32::from(percent.min(100)) * (100 - base) / 100;
                self.status
                    .try_update(|status| status.load_progress = scaled.min(99) as u8);
                self.view.detail().try_set(detail);
            }
            BootProgress::Booting { detail } => {
                if self.state() == WebVMState::Loading {
                    self.status.try_update(|status| status.load_progress = 100);
                    self.set_state(WebVMState::Booting);
                }
                self.view.detail().try_set(detail);
            }
            BootProgress::Restoring { detail } => {
                self.status.try_update(|status| status.load_progress = 100);
                self.view.detail().try_set(detail);
            }
        }
    }
}
