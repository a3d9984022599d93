//! The browser half's shared parts: the engine and what goes with it ([`Runtime`]), the
//! lifecycle transitions, failures and notices, and the engine for guest calls.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use chrono::Utc;
use leptos::logging::warn;
use leptos::prelude::*;

use super::console::ConsoleHub;
use super::{VmController, VmViewStoreFields};
use crate::client::settings;
use crate::client::vm::cheerpx::{CheerpXEngine, CheerpXSettings};
use crate::client::vm::image::{SnapshotMeta, V86Settings, SNAPSHOT_SCHEMA_VERSION, V86_VERSION};
use crate::client::vm::v86::V86Engine;
use crate::client::vm::{bridge, EngineKind, Snapshot, VmEngine, VmError};
use crate::domain::lifecycle::StateMachine;
use crate::domain::vm_record::ErrorContext;
use crate::model::{LogLevel, WebVMState};

/// The engine and what goes with it.
#[derive(Default)]
pub struct Runtime {
    pub(super) engine: RefCell<Option<Rc<dyn VmEngine>>>,
    /// Bumped by every boot, restart, hibernate and resume: work of an older generation
    /// stops (progress, the heartbeat).
    pub(super) generation: Cell<u64>,
    /// The VM was started on page load already.
    pub(super) started: Cell<bool>,
    pub(super) console: Rc<ConsoleHub>,
    pub(super) settings: V86Settings,
    pub(super) image_hash: RefCell<String>,
    pub(super) agent_instance: RefCell<Option<String>>,
    pub(super) console_size: Cell<Option<(u16, u16)>>,
    /// The VM record was read (or started afresh), so writing it loses nothing.
    pub(super) journal_writable: Cell<bool>,
    /// A write of the VM record is in flight; `journal_dirty`: write again after it.
    pub(super) journal_writing: Cell<bool>,
    pub(super) journal_dirty: Cell<bool>,
}

impl Runtime {
    pub(super) fn next_generation(&self) -> u64 {
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        generation
    }

    pub(super) fn engine(&self) -> Option<Rc<dyn VmEngine>> {
        self.engine.borrow().clone()
    }
}

pub(super) fn now_ms() -> f64 {
    bridge::now_ms()
}

/// A message for people: first letter capitalised.
pub(super) fn sentence(error: &VmError) -> String {
    capitalized(&error.to_string())
}

/// `text` with its first letter capitalised.
pub(super) fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "Something went wrong".to_string(),
    }
}

pub(super) fn create_engine(kind: EngineKind, settings: &V86Settings) -> Rc<dyn VmEngine> {
    match kind {
        EngineKind::V86 => Rc::new(V86Engine::new(settings.clone())),
        EngineKind::Cheerpx => {
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
pub(super) fn snapshot_meta(
    runtime: &Runtime,
    engine: &dyn VmEngine,
    snapshot: &Snapshot,
) -> SnapshotMeta {
    SnapshotMeta {
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        engine: engine.kind(),
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
    pub(super) fn runtime(&self) -> Option<Rc<Runtime>> {
        self.runtime.try_get_value()
    }

    /// Applies a lifecycle transition; an illegal one is logged and refused.
    pub(super) fn set_state(&self, to: WebVMState) -> bool {
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

    pub(super) fn fail(&self, message: String) {
        warn!("VM error: {message}");
        self.record_error(
            "VmError",
            &message,
            ErrorContext {
                operation: "VM".into(),
                ..ErrorContext::default()
            },
        );
        if self.state() != WebVMState::Error && !self.set_state(WebVMState::Error) {
            // Unloaded can't fail directly: go through loading.
            self.set_state(WebVMState::Loading);
            self.set_state(WebVMState::Error);
        }
        self.status
            .try_update(|status| status.error_message = Some(message));
        self.view.busy().try_set(None);
        self.view.detail().try_set(String::new());
    }

    pub(super) fn notice(&self, message: impl Into<String>) {
        let message = message.into();
        warn!("VM: {message}");
        self.journal_log(LogLevel::Warn, &message);
        self.view.notice().try_set(Some(message));
    }

    pub(super) fn spawn(&self, task: impl std::future::Future<Output = ()> + 'static) {
        wasm_bindgen_futures::spawn_local(task);
    }

    /// The engine, when the VM is ready for guest calls.
    pub(super) fn ready_engine(&self) -> Result<Rc<dyn VmEngine>, VmError> {
        if self.state() != WebVMState::Ready {
            return Err(VmError::NotRunning(format!(" (it is {})", self.state())));
        }
        self.runtime()
            .and_then(|runtime| runtime.engine())
            .ok_or_else(|| VmError::NotRunning(String::new()))
    }
}
