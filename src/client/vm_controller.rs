//! The page's VM: one [`VmController`] (a Leptos context, provided once by `App`) holding the
//! reactive [`WebVMStatus`] and the engine, with the actions boot, hibernate, resume and
//! restart.
//!
//! State flow (every change goes through `domain::lifecycle`'s `WebVMState` transitions):
//!
//! ```text
//! page load ── hibernation snapshot in this browser fits? ─yes─▶ loading ─▶ ready (restore)
//!          ├─ else the server's boot snapshot fits? ────yes─▶ loading ─▶ ready (download,
//!          │                                                              verify, restore)
//!          └─ else (each reason logged and shown) ─────────▶ loading ─▶ booting ─▶ ready
//!             a restore that fails falls through to the next source, with a notice
//! ready ── Hibernate ─▶ hibernating  (paused, saved to IndexedDB)  ── Resume ─▶ ready
//!             └ storage full / save failed ─▶ ready again, message shown
//! any failure ─▶ error (message) ── Retry / Boot ─▶ loading …
//! ready/hibernating ── Restart ─▶ unloaded ─▶ loading ─▶ booting ─▶ ready
//! ```
//!
//! While ready, a monitor pings the guest agent every 5 s (the heartbeat) and samples its
//! resources. In the server build the controller is an inert twin: the status stays
//! `unloaded` and the actions do nothing.

use leptos::prelude::*;

use super::vm::{Capabilities, EngineKind};
use crate::model::{WebVMState, WebVMStatus};

/// Interval of the heartbeat and of resource sampling.
pub const MONITOR_INTERVAL_MS: u64 = 5_000;
/// Heartbeats in a row that may fail before the VM counts as failed.
pub const MAX_MISSED_HEARTBEATS: u32 = 3;

/// Where the running (or starting) VM comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmSource {
    /// Booted from the image.
    Cold,
    /// Restored from this browser's hibernation snapshot.
    Hibernation,
    /// Restored from the server's boot snapshot (saved right after a cold boot).
    BootSnapshot,
}

impl VmSource {
    /// The name scripts see (`window.webvm.info().source`, `data-source`).
    pub fn key(self) -> &'static str {
        match self {
            VmSource::Cold => "cold",
            VmSource::Hibernation => "hibernation",
            VmSource::BootSnapshot => "boot-snapshot",
        }
    }

    /// What was restored, for people (`None` for a cold boot).
    pub fn snapshot_name(self) -> Option<&'static str> {
        match self {
            VmSource::Cold => None,
            VmSource::Hibernation => Some("the saved VM state"),
            VmSource::BootSnapshot => Some("the server's boot snapshot"),
        }
    }
}

/// What the panel shows besides [`WebVMStatus`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VmView {
    /// The engine in use (or to be used).
    pub engine: EngineKind,
    /// Its capabilities.
    pub capabilities: Capabilities,
    /// What is happening right now, in words.
    pub detail: String,
    /// An action in progress (`Saving the VM…`).
    pub busy: Option<String>,
    /// A problem that did not stop the VM (storage full, snapshot ignored).
    pub notice: Option<String>,
    /// Time the last boot or restore took.
    pub boot_ms: Option<u64>,
    /// The VM came from a saved state.
    pub restored: bool,
    /// Where the VM comes from: while loading, the source being tried; once ready, the one
    /// that worked.
    pub source: Option<VmSource>,
    /// The saved hibernation state, if any.
    pub saved: Option<SavedState>,
    /// The last hibernate: time to save and store, size.
    pub last_hibernate: Option<(u64, u64)>,
    /// When the current boot started (`performance.now()` ms), for the elapsed time.
    pub boot_started_ms: Option<f64>,
}

/// A hibernation snapshot in this browser.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedState {
    /// When it was saved.
    pub saved_at: chrono::DateTime<chrono::Utc>,
    /// Bytes.
    pub size: u64,
}

/// The page's VM (see the module docs). `Copy`: signals and an arena handle.
#[derive(Clone, Copy)]
pub struct VmController {
    /// The VM's status, as the seed's model describes it.
    pub status: RwSignal<WebVMStatus>,
    /// Everything else the UI shows.
    pub view: RwSignal<VmView>,
    #[cfg(feature = "hydrate")]
    runtime: StoredValue<std::rc::Rc<runtime::Runtime>, LocalStorage>,
}

impl VmController {
    fn new() -> Self {
        let engine = super::settings::engine();
        VmController {
            status: RwSignal::new(WebVMStatus::default()),
            view: RwSignal::new(VmView {
                engine,
                capabilities: engine.capabilities(),
                ..VmView::default()
            }),
            #[cfg(feature = "hydrate")]
            runtime: StoredValue::new_local(std::rc::Rc::new(runtime::Runtime::default())),
        }
    }

    /// Creates the controller and provides it as context (once, in `App`).
    pub fn provide() -> Self {
        let controller = VmController::new();
        provide_context(controller);
        #[cfg(feature = "hydrate")]
        super::test_hook::install(controller);
        controller
    }

    /// The provided controller, or a new one provided here.
    pub fn use_or_provide() -> Self {
        use_context::<VmController>().unwrap_or_else(VmController::provide)
    }

    /// The current state.
    pub fn state(&self) -> WebVMState {
        self.status
            .try_with_untracked(|status| status.state)
            .unwrap_or_default()
    }
}

#[cfg(not(feature = "hydrate"))]
impl VmController {
    /// Starts the VM the first time a VM view appears (browser only).
    pub fn start_on_load(&self) {}
    /// Cold boot (browser only).
    pub fn boot(&self) {}
    /// Resume a saved or start again after an error (browser only).
    pub fn retry(&self) {}
    /// Hibernate (browser only).
    pub fn hibernate(&self) {}
    /// Resume (browser only).
    pub fn resume(&self) {}
    /// Restart (browser only).
    pub fn restart(&self) {}
}

#[cfg(feature = "hydrate")]
pub use runtime::ConsoleSubscription;

#[cfg(feature = "hydrate")]
mod runtime {
    //! The browser half: the engine, the console hub and the actions.

    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;
    use std::rc::Rc;

    use chrono::Utc;
    use leptos::logging::warn;
    use leptos::prelude::*;

    use super::{SavedState, VmController, VmSource, MAX_MISSED_HEARTBEATS, MONITOR_INTERVAL_MS};
    use crate::client::settings;
    use crate::client::snapshot_store;
    use crate::client::vm::bridge;
    use crate::client::vm::cheerpx::{CheerpXEngine, CheerpXSettings};
    use crate::client::vm::image::{
        snapshot_mismatch, BootSnapshotChoice, BootSnapshotEntry, GuestManifest, SnapshotMeta,
        V86Settings, MANIFEST_URL, SNAPSHOT_SCHEMA_VERSION, V86_VERSION,
    };
    use crate::client::vm::v86::V86Engine;
    use crate::client::vm::{
        BootProgress, BootRequest, EngineKind, ExecCommand, ExecResult, ProcessExit, ProcessHandle,
        ProcessListener, Snapshot, TcpEvent, VmEngine, VmError,
    };
    use crate::domain::lifecycle::StateMachine;
    use crate::model::WebVMState;

    /// Console output kept for terminals that open later and for `consoleText()`.
    const CONSOLE_BACKLOG: usize = 256 * 1024;
    /// Share of the progress bar the boot snapshot's download takes (the emulator's own
    /// files take the rest).
    const DOWNLOAD_SHARE: u8 = 85;
    const MIB: f64 = 1_048_576.0;

    /// One way to start the VM; [`VmController::run_boot`] tries a list of them in order.
    enum BootSource {
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

    type ConsoleListener = Rc<dyn Fn(&[u8])>;

    /// Fans the guest console out to the open terminals and keeps a backlog.
    #[derive(Default)]
    pub struct ConsoleHub {
        backlog: RefCell<VecDeque<u8>>,
        listeners: RefCell<Vec<(u64, ConsoleListener)>>,
        next: Cell<u64>,
    }

    impl ConsoleHub {
        pub fn push(&self, bytes: &[u8]) {
            {
                let mut backlog = self.backlog.borrow_mut();
                backlog.extend(bytes.iter().copied());
                let excess = backlog.len().saturating_sub(CONSOLE_BACKLOG);
                backlog.drain(..excess);
            }
            let listeners: Vec<ConsoleListener> = self
                .listeners
                .borrow()
                .iter()
                .map(|(_, listener)| listener.clone())
                .collect();
            for listener in listeners {
                listener(bytes);
            }
        }

        fn subscribe(&self, listener: ConsoleListener) -> u64 {
            let backlog: Vec<u8> = self.backlog.borrow().iter().copied().collect();
            if !backlog.is_empty() {
                listener(&backlog);
            }
            let id = self.next.get() + 1;
            self.next.set(id);
            self.listeners.borrow_mut().push((id, listener));
            id
        }

        fn unsubscribe(&self, id: u64) {
            self.listeners
                .borrow_mut()
                .retain(|(other, _)| *other != id);
        }

        pub fn text(&self) -> String {
            let bytes: Vec<u8> = self.backlog.borrow().iter().copied().collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    /// The engine and what goes with it.
    #[derive(Default)]
    pub struct Runtime {
        pub engine: RefCell<Option<Rc<dyn VmEngine>>>,
        generation: Cell<u64>,
        started: Cell<bool>,
        pub console: ConsoleHub,
        settings: V86Settings,
        image_hash: RefCell<String>,
        agent_instance: RefCell<Option<String>>,
        console_size: Cell<Option<(u16, u16)>>,
    }

    impl Runtime {
        fn next_generation(&self) -> u64 {
            let generation = self.generation.get() + 1;
            self.generation.set(generation);
            generation
        }

        fn engine(&self) -> Option<Rc<dyn VmEngine>> {
            self.engine.borrow().clone()
        }
    }

    /// Keeps a terminal subscribed to the console; unsubscribes when dropped.
    pub struct ConsoleSubscription {
        runtime: Rc<Runtime>,
        id: u64,
    }

    impl Drop for ConsoleSubscription {
        fn drop(&mut self) {
            self.runtime.console.unsubscribe(self.id);
        }
    }

    fn now_ms() -> f64 {
        bridge::now_ms()
    }

    /// A message for people: first letter capitalised.
    fn sentence(error: &VmError) -> String {
        capitalized(&error.to_string())
    }

    /// `text` with its first letter capitalised.
    fn capitalized(text: &str) -> String {
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => "Something went wrong".to_string(),
        }
    }

    fn create_engine(kind: EngineKind, settings: &V86Settings) -> Rc<dyn VmEngine> {
        match kind {
            EngineKind::V86 => Rc::new(V86Engine::new(settings.clone())),
            EngineKind::CheerpX => {
                let (cdn, disk) = settings::cheerpx_sources();
                let defaults = CheerpXSettings::default();
                Rc::new(CheerpXEngine::new(CheerpXSettings {
                    cdn_url: cdn.unwrap_or(defaults.cdn_url),
                    disk_url: disk.unwrap_or(defaults.disk_url),
                    cache_id: defaults.cache_id,
                }))
            }
        }
    }

    /// The record stored next to a snapshot of `engine`'s machine.
    fn snapshot_meta(
        runtime: &Runtime,
        engine: &dyn VmEngine,
        snapshot: &Snapshot,
    ) -> SnapshotMeta {
        SnapshotMeta {
            schema_version: SNAPSHOT_SCHEMA_VERSION,
            engine: engine.kind().key().to_string(),
            image_hash: runtime.image_hash.borrow().clone(),
            v86_version: V86_VERSION.to_string(),
            memory_mb: runtime.settings.memory_mb,
            saved_at: Utc::now(),
            size: snapshot.size,
            agent_instance: snapshot
                .agent_instance
                .clone()
                .or_else(|| runtime.agent_instance.borrow().clone()),
        }
    }

    impl VmController {
        fn runtime(&self) -> Option<Rc<Runtime>> {
            self.runtime.try_get_value()
        }

        /// Applies a lifecycle transition; an illegal one is logged and refused.
        fn set_state(&self, to: WebVMState) -> bool {
            let mut changed = false;
            self.status
                .try_update(|status| match status.state.transition(to) {
                    Ok(next) => {
                        status.state = next;
                        if next != WebVMState::Error {
                            status.error_message = None;
                        }
                        changed = true;
                    }
                    Err(error) => warn!("VM: {error}"),
                });
            changed
        }

        fn fail(&self, message: String) {
            warn!("VM error: {message}");
            if self.state() != WebVMState::Error && !self.set_state(WebVMState::Error) {
                // Unloaded can't fail directly: go through loading.
                self.set_state(WebVMState::Loading);
                self.set_state(WebVMState::Error);
            }
            self.status
                .try_update(|status| status.error_message = Some(message));
            self.view.try_update(|view| {
                view.busy = None;
                view.detail.clear();
            });
        }

        fn notice(&self, message: impl Into<String>) {
            let message = message.into();
            warn!("VM: {message}");
            self.view.try_update(|view| view.notice = Some(message));
        }

        fn spawn(&self, task: impl std::future::Future<Output = ()> + 'static) {
            wasm_bindgen_futures::spawn_local(task);
        }

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
                if !snapshot_store::persist().await {
                    leptos::logging::log!("VM: storage is not persistent; the browser may evict a saved VM under pressure");
                }
                controller.resume_saved_or_boot(settings::autoboot()).await;
            });
        }

        /// Cold boot (the Boot button): always from the image.
        pub fn boot(&self) {
            let controller = *self;
            self.spawn(async move {
                controller.run_boot(vec![BootSource::Cold]).await;
            });
        }

        /// After an error: resume the saved state if it fits, else the server's boot
        /// snapshot, else boot cold.
        pub fn retry(&self) {
            let controller = *self;
            self.spawn(async move { controller.resume_saved_or_boot(true).await });
        }

        /// Pauses the VM and saves it into IndexedDB.
        pub fn hibernate(&self) {
            let controller = *self;
            self.spawn(async move { controller.run_hibernate().await });
        }

        /// Continues a hibernated VM (in this page, or from storage after a reload).
        pub fn resume(&self) {
            let controller = *self;
            self.spawn(async move { controller.run_resume().await });
        }

        /// Stops the VM and boots it again from the image (a real cold boot).
        pub fn restart(&self) {
            let controller = *self;
            self.spawn(async move {
                controller.run_boot(vec![BootSource::Cold]).await;
            });
        }

        /// Subscribes a terminal to the console (the backlog is replayed first).
        pub fn subscribe_console(&self, listener: ConsoleListener) -> Option<ConsoleSubscription> {
            let runtime = self.runtime()?;
            let id = runtime.console.subscribe(listener);
            Some(ConsoleSubscription { runtime, id })
        }

        /// The terminal's size changed: tell the guest (now if it runs, else once it does).
        pub fn console_resize(&self, cols: u16, rows: u16) {
            let Some(runtime) = self.runtime() else {
                return;
            };
            runtime.console_size.set(Some((cols, rows)));
            if self.state() == WebVMState::Ready {
                if let Some(engine) = runtime.engine() {
                    engine.console_resize(cols, rows);
                }
            }
        }

        /// Types into the guest console.
        pub fn console_send(&self, bytes: &[u8]) {
            if let Some(engine) = self.runtime().and_then(|runtime| runtime.engine()) {
                engine.console_send(bytes);
            }
        }

        /// The console output kept so far.
        pub fn console_text(&self) -> String {
            self.runtime()
                .map(|runtime| runtime.console.text())
                .unwrap_or_default()
        }

        fn ready_engine(&self) -> Result<Rc<dyn VmEngine>, VmError> {
            if self.state() != WebVMState::Ready {
                return Err(VmError::NotRunning(format!(" (it is {})", self.state())));
            }
            self.runtime()
                .and_then(|runtime| runtime.engine())
                .ok_or_else(|| VmError::NotRunning(String::new()))
        }

        /// Runs a command in the guest.
        pub async fn exec(&self, command: ExecCommand) -> Result<ExecResult, VmError> {
            self.ready_engine()?.exec(command).await
        }

        /// Starts a background process in the guest.
        pub async fn spawn_process(
            &self,
            command: ExecCommand,
            listener: ProcessListener,
        ) -> Result<ProcessHandle, VmError> {
            self.ready_engine()?.spawn(command, listener).await
        }

        /// Signals a background process.
        pub async fn signal(&self, process: u64, signal: u8) -> Result<(), VmError> {
            self.ready_engine()?.signal(process, signal).await
        }

        /// Waits for a background process to end.
        pub async fn wait(&self, process: u64, timeout_ms: u64) -> Result<ProcessExit, VmError> {
            self.ready_engine()?.wait(process, timeout_ms).await
        }

        /// Writes a file into the guest.
        pub async fn push_file(&self, path: String, data: Vec<u8>) -> Result<(), VmError> {
            self.ready_engine()?.push_file(path, data).await
        }

        /// Reads a file from the guest.
        pub async fn pull_file(&self, path: String) -> Result<Vec<u8>, VmError> {
            self.ready_engine()?.pull_file(path).await
        }

        /// Opens a TCP connection to `port` in the guest, sends `request` once connected and
        /// collects what comes back until the guest closes (or `timeout_ms` passes with
        /// nothing received). A refused connection closes with no data.
        pub async fn tcp_exchange(
            &self,
            port: u16,
            request: Vec<u8>,
            timeout_ms: u64,
        ) -> Result<Vec<u8>, VmError> {
            use futures::channel::mpsc;
            use futures::future::{select, Either};
            use futures::StreamExt;

            let engine = self.ready_engine()?;
            let (sender, mut events) = mpsc::unbounded::<TcpEvent>();
            let stream = engine
                .connect(
                    port,
                    Rc::new(move |event| {
                        let _ = sender.unbounded_send(event);
                    }),
                )
                .await?;
            let deadline = now_ms() + timeout_ms as f64;
            let mut received = Vec::new();
            loop {
                let remaining = (deadline - now_ms()).max(0.0) as u64;
                match select(events.next(), Box::pin(bridge::sleep(remaining))).await {
                    Either::Left((Some(TcpEvent::Connected), _)) => stream.write(&request),
                    Either::Left((Some(TcpEvent::Data(data)), _)) => received.extend(data),
                    Either::Left((Some(TcpEvent::Closed) | None, _)) => break,
                    Either::Right(_) => {
                        stream.close();
                        if received.is_empty() {
                            return Err(VmError::Timeout(format!(
                                "no answer from guest port {port} within {timeout_ms} ms"
                            )));
                        }
                        break;
                    }
                }
            }
            Ok(received)
        }

        /// Waits until the VM is no longer loading or booting; the state then.
        pub async fn settled(&self, timeout_ms: u64) -> WebVMState {
            let deadline = now_ms() + timeout_ms as f64;
            loop {
                let state = self.state();
                let busy = self
                    .view
                    .try_with_untracked(|view| view.busy.is_some())
                    .unwrap_or(false);
                if !matches!(state, WebVMState::Loading | WebVMState::Booting) && !busy {
                    return state;
                }
                if now_ms() > deadline {
                    return state;
                }
                bridge::sleep(100).await;
            }
        }

        async fn fetch_manifest(&self) -> Result<GuestManifest, VmError> {
            let text = bridge::fetch_text(MANIFEST_URL)
                .await
                .map_err(|error| VmError::Load(bridge::js_message(&error)))?;
            GuestManifest::parse(&text.as_string().unwrap_or_default()).map_err(VmError::Load)
        }

        /// The saved snapshot if one exists and fits the server's current image. A snapshot
        /// that can't fit any more is deleted, with the reason logged and shown.
        async fn fitting_snapshot(&self, manifest: Option<&GuestManifest>) -> Option<Snapshot> {
            let runtime = self.runtime()?;
            let meta = match snapshot_store::load_meta().await {
                Ok(Some(meta)) => meta,
                Ok(None) => return None,
                Err(error) => {
                    self.notice(format!("A saved VM state was ignored: {error}"));
                    let _ = snapshot_store::delete().await;
                    return None;
                }
            };
            self.view.try_update(|view| {
                view.saved = Some(SavedState {
                    saved_at: meta.saved_at,
                    size: meta.size,
                })
            });
            // Without a manifest the cold boot reports the problem.
            let manifest = manifest?;
            if let Some(reason) = snapshot_mismatch(&meta, &manifest.hash, &runtime.settings) {
                self.notice(format!(
                    "The saved VM state was ignored and the VM boots fresh: {reason}."
                ));
                let _ = snapshot_store::delete().await;
                self.view.try_update(|view| view.saved = None);
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

        /// The server's boot snapshot if it fits this page's machine; why not is logged and
        /// shown.
        fn fitting_boot_snapshot(&self, manifest: &GuestManifest) -> Option<BootSnapshotEntry> {
            let runtime = self.runtime()?;
            match manifest.boot_snapshot(&runtime.settings) {
                BootSnapshotChoice::Fits(entry) => Some(entry),
                BootSnapshotChoice::None => {
                    leptos::logging::log!(
                        "VM: the server has no boot snapshot of image {}; booting cold",
                        manifest.hash
                    );
                    None
                }
                BootSnapshotChoice::Unfit(reason) => {
                    self.notice(format!(
                        "The server's boot snapshot was ignored and the VM boots fresh (about a minute): {reason}."
                    ));
                    None
                }
            }
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
        async fn run_boot(&self, plan: Vec<BootSource>) -> bool {
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
        ) -> Result<(Rc<dyn VmEngine>, crate::client::vm::BootReport), VmError> {
            let kind = settings::engine();
            let from = source.kind();
            self.status.try_update(|status| {
                status.load_progress = 0;
                status.boot_time = None;
                status.last_heartbeat = None;
                status.error_message = None;
            });
            self.view.try_update(|view| {
                view.engine = kind;
                view.capabilities = kind.capabilities();
                view.detail = match from {
                    VmSource::Cold => "Starting".into(),
                    VmSource::Hibernation => "Restoring the saved VM".into(),
                    VmSource::BootSnapshot => "Fetching a ready-booted VM from the server".into(),
                };
                view.busy = None;
                view.boot_ms = None;
                view.restored = false;
                view.source = Some(from);
                view.boot_started_ms = Some(now_ms());
            });
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
            let console_runtime = runtime.clone();
            let on_console = Rc::new(move |bytes: &[u8]| console_runtime.console.push(bytes));
            let report = engine
                .boot(BootRequest {
                    snapshot,
                    on_progress,
                    on_console,
                })
                .await?;
            Ok((engine, report))
        }

        /// Downloads the server's boot snapshot (progress in the first [`DOWNLOAD_SHARE`] %)
        /// and checks it against its SHA-256.
        async fn download_boot_snapshot(
            &self,
            generation: u64,
            entry: &BootSnapshotEntry,
        ) -> Result<Snapshot, VmError> {
            use wasm_bindgen::prelude::Closure;
            use wasm_bindgen::JsCast;

            let controller = *self;
            let on_progress =
                Closure::<dyn FnMut(f64, f64)>::new(move |loaded: f64, total: f64| {
                    let current = controller
                        .runtime()
                        .is_some_and(|runtime| runtime.generation.get() == generation);
                    if !current || total <= 0.0 {
                        return;
                    }
                    let percent = ((loaded / total) * f64::from(DOWNLOAD_SHARE))
                        .clamp(0.0, f64::from(DOWNLOAD_SHARE))
                        as u8;
                    controller
                        .status
                        .try_update(|status| status.load_progress = percent);
                    controller.view.try_update(|view| {
                        view.detail = format!(
                            "Downloading a ready-booted VM: {:.0} of {:.0} MB",
                            loaded / MIB,
                            total / MIB
                        )
                    });
                });
            let started = now_ms();
            let buffer = bridge::fetch_state(&entry.url, entry.meta.size as f64, &on_progress)
                .await
                .map_err(|error| {
                    VmError::Load(format!(
                        "downloading it failed: {}",
                        bridge::js_message(&error)
                    ))
                })?;
            let buffer = buffer
                .dyn_into::<js_sys::ArrayBuffer>()
                .map_err(|_| VmError::Load("the download gave no bytes".into()))?;
            let downloaded_ms = (now_ms() - started).max(0.0) as u64;
            self.view
                .try_update(|view| view.detail = "Checking the ready-booted VM".into());
            match bridge::sha256_hex(&buffer).await {
                Ok(digest) => match digest.as_string() {
                    Some(digest) if digest.eq_ignore_ascii_case(&entry.sha256) => {}
                    Some(digest) => {
                        return Err(VmError::Load(format!(
                            "it is corrupt: its SHA-256 is {digest}, its record says {}",
                            entry.sha256
                        )))
                    }
                    None => leptos::logging::log!(
                        "VM: no WebCrypto here (plain HTTP?), so the boot snapshot is not verified"
                    ),
                },
                Err(error) => warn!(
                    "VM: the boot snapshot could not be verified: {}",
                    bridge::js_message(&error)
                ),
            }
            leptos::logging::log!(
                "VM boot snapshot: {} bytes downloaded in {downloaded_ms} ms, checked in {} ms",
                entry.meta.size,
                ((now_ms() - started).max(0.0) as u64).saturating_sub(downloaded_ms)
            );
            Ok(Snapshot {
                size: u64::from(buffer.byte_length()),
                agent_instance: entry.meta.agent_instance.clone(),
                buffer,
            })
        }

        /// The VM is up: record how it came, start the monitor.
        fn on_ready(
            &self,
            runtime: &Rc<Runtime>,
            generation: u64,
            engine: Rc<dyn VmEngine>,
            report: crate::client::vm::BootReport,
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
                .try_with_untracked(|view| view.boot_started_ms)
                .flatten()
                .map_or(report.duration_ms, |started| {
                    (now_ms() - started).max(0.0) as u64
                });
            let seconds = duration_ms as f64 / 1000.0;
            self.view.try_update(|view| {
                view.boot_ms = Some(duration_ms);
                view.restored = report.restored;
                view.source = Some(source);
                view.detail = match source {
                    VmSource::Cold => format!("Booted in {seconds:.0} s"),
                    VmSource::Hibernation => format!("Restored in {seconds:.1} s"),
                    VmSource::BootSnapshot => {
                        format!("Started from the server's boot snapshot in {seconds:.1} s")
                    }
                };
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

        /// Engine progress; its loading percentage fills the bar from `base` % on.
        fn on_progress(&self, generation: u64, base: u8, progress: BootProgress) {
            let current = self
                .runtime()
                .is_some_and(|runtime| runtime.generation.get() == generation);
            if !current {
                return;
            }
            match progress {
                BootProgress::Loading { percent, detail } => {
                    let base = u32::from(base.min(99));
                    let scaled = base + u32::from(percent.min(100)) * (100 - base) / 100;
                    self.status
                        .try_update(|status| status.load_progress = scaled.min(99) as u8);
                    self.view.try_update(|view| view.detail = detail);
                }
                BootProgress::Booting { detail } => {
                    if self.state() == WebVMState::Loading {
                        self.status.try_update(|status| status.load_progress = 100);
                        self.set_state(WebVMState::Booting);
                    }
                    self.view.try_update(|view| view.detail = detail);
                }
                BootProgress::Restoring { detail } => {
                    self.status.try_update(|status| status.load_progress = 100);
                    self.view.try_update(|view| view.detail = detail);
                }
            }
        }

        /// Heartbeat and resource sampling while ready, until the generation changes.
        fn monitor(&self, generation: u64) {
            let controller = *self;
            self.spawn(async move {
                let mut missed = 0;
                let mut first = true;
                loop {
                    if !first {
                        bridge::sleep(MONITOR_INTERVAL_MS).await;
                    }
                    first = false;
                    let Some(runtime) = controller.runtime() else {
                        return;
                    };
                    let still_current = || runtime.generation.get() == generation;
                    if !still_current() || controller.state() != WebVMState::Ready {
                        return;
                    }
                    let Some(engine) = runtime.engine() else {
                        return;
                    };
                    let beat = engine.ping().await;
                    if !still_current() {
                        return;
                    }
                    match beat {
                        Ok(()) => {
                            missed = 0;
                            controller
                                .status
                                .try_update(|status| status.last_heartbeat = Some(Utc::now()));
                        }
                        Err(error) => {
                            missed += 1;
                            warn!("VM heartbeat missed ({missed}): {error}");
                            if missed >= MAX_MISSED_HEARTBEATS {
                                runtime.next_generation();
                                controller.fail(format!("The VM stopped answering: {error}"));
                                return;
                            }
                            continue;
                        }
                    }
                    if engine.capabilities().stats {
                        if let Ok(resources) = engine.stats().await {
                            if still_current() {
                                controller
                                    .status
                                    .try_update(|status| status.system_resources = resources);
                            }
                        }
                    }
                }
            });
        }

        async fn run_hibernate(&self) {
            let Some(runtime) = self.runtime() else {
                return;
            };
            let Some(engine) = runtime.engine() else {
                return;
            };
            if !engine.capabilities().hibernate {
                self.notice(format!(
                    "{} cannot hibernate: it has no snapshots.",
                    engine.kind()
                ));
                return;
            }
            if self.state() != WebVMState::Ready {
                return;
            }
            runtime.next_generation();
            self.set_state(WebVMState::Hibernating);
            self.view.try_update(|view| {
                view.busy = Some("Saving the VM…".into());
                view.notice = None;
                view.detail = "Saving the VM into this browser".into();
            });
            let started = now_ms();
            let snapshot = match engine.hibernate().await {
                Ok(snapshot) => snapshot,
                Err(error) => {
                    self.keep_running(
                        &engine,
                        &runtime,
                        format!("Could not hibernate: {error}. The VM keeps running."),
                    )
                    .await;
                    return;
                }
            };
            let meta = snapshot_meta(&runtime, engine.as_ref(), &snapshot);
            match snapshot_store::save(&meta, &snapshot).await {
                Ok(()) => {
                    let took = (now_ms() - started).max(0.0) as u64;
                    leptos::logging::log!(
                        "VM hibernated: {} bytes in {took} ms",
                        snapshot.size
                    );
                    self.view.try_update(|view| {
                        view.busy = None;
                        view.saved = Some(SavedState {
                            saved_at: meta.saved_at,
                            size: meta.size,
                        });
                        view.last_hibernate = Some((took, snapshot.size));
                        view.detail = "Hibernated: paused and saved in this browser".into();
                    });
                }
                Err(VmError::QuotaExceeded(reason)) => {
                    self.keep_running(&engine, &runtime, format!(
                        "Could not hibernate: the browser's storage is full ({reason}). The VM keeps running."
                    ))
                    .await
                }
                Err(error) => {
                    self.keep_running(&engine, &runtime, format!("Could not hibernate: {error}. The VM keeps running."))
                        .await
                }
            }
        }

        /// Saves the running VM into this browser (as hibernate does) and lets it run on, so
        /// that a reload resumes from here: called after a package install or removal.
        /// Returns the snapshot's size. The VM stays `ready` throughout.
        pub async fn checkpoint(&self) -> Result<u64, VmError> {
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
            self.view.try_update(|view| {
                view.saved = Some(SavedState {
                    saved_at: meta.saved_at,
                    size: meta.size,
                })
            });
            Ok(snapshot.size)
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
            self.view.try_update(|view| {
                view.busy = None;
                view.detail = "Running".into();
            });
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
                    self.view.try_update(|view| {
                        view.busy = Some("Resuming…".into());
                        view.notice = None;
                    });
                    let started = now_ms();
                    match engine.resume().await {
                        Ok(()) => {
                            self.set_state(WebVMState::Ready);
                            let took = (now_ms() - started).max(0.0) as u64;
                            self.status
                                .try_update(|status| status.last_heartbeat = Some(Utc::now()));
                            self.view.try_update(|view| {
                                view.busy = None;
                                view.detail = format!("Resumed in {:.1} s", took as f64 / 1000.0);
                            });
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
    }
}
