//! The page's VM: one [`VmController`] (a Leptos context, provided once by `App`) holding the
//! reactive [`WebVMStatus`] and [`VmView`] and the engine, with the actions boot, hibernate,
//! resume and restart.
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
//!
//! The browser half is split by concern: `runtime` (the engine and the shared helpers),
//! `boot` (page load, boot and restore), `boot_snapshot` (the server's boot snapshot),
//! `heartbeat`, `hibernate` (hibernate, checkpoint, resume), `journal` (the VM record in
//! IndexedDB: last known status, system log, metrics, errors), `ownership` (one tab runs the
//! VM; hand-over between tabs), `guest` (commands, files, TCP
//! and the console for the rest of the page) and [`console`] (the console hub).

use leptos::prelude::*;
use reactive_stores::Store;

use super::vm::{Capabilities, EngineKind};
use crate::domain::vm_record::VmJournal;
use crate::model::{WebVMState, WebVMStatus};

pub mod console;

#[cfg(feature = "hydrate")]
mod boot;
#[cfg(feature = "hydrate")]
mod boot_snapshot;
#[cfg(feature = "hydrate")]
mod guest;
#[cfg(feature = "hydrate")]
mod heartbeat;
#[cfg(feature = "hydrate")]
mod hibernate;
#[cfg(feature = "hydrate")]
mod journal;
#[cfg(feature = "hydrate")]
mod ownership;
#[cfg(feature = "hydrate")]
mod runtime;

pub use console::ConsoleSubscription;

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

/// Which tab runs the VM: exactly one tab of the browser profile owns it (a Web Lock); the
/// others show that and can take it over (`ownership`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmOwnership {
    /// Not known yet (the server's render, and the page before it asked).
    #[default]
    Checking,
    /// This tab runs the VM (or may start it).
    Owner,
    /// Another tab runs it; this one leaves it alone.
    OtherTab,
    /// This tab asked the owner to hand the VM over and waits for it.
    TakingOver,
    /// The owner is saving the VM for this tab.
    OwnerSaving,
    /// The owner did not let go in time; a forced take-over is offered.
    NoAnswer,
    /// This tab is saving its VM for another tab, then reloads.
    HandingOver,
}

impl VmOwnership {
    /// The name scripts see (`data-ownership`, `window.webvm.info().ownership`).
    pub fn key(self) -> &'static str {
        match self {
            VmOwnership::Checking => "checking",
            VmOwnership::Owner => "owner",
            VmOwnership::OtherTab => "other-tab",
            VmOwnership::TakingOver => "taking-over",
            VmOwnership::OwnerSaving => "owner-saving",
            VmOwnership::NoAnswer => "no-answer",
            VmOwnership::HandingOver => "handing-over",
        }
    }

    /// Whether another tab has the VM (this one must not start it).
    pub fn elsewhere(self) -> bool {
        matches!(
            self,
            VmOwnership::OtherTab
                | VmOwnership::TakingOver
                | VmOwnership::OwnerSaving
                | VmOwnership::NoAnswer
        )
    }
}

/// What the panel shows besides [`WebVMStatus`]: a store, so that a closure showing one
/// field wakes only when that field changes (`detail` changes on every download event).
#[derive(Debug, Clone, PartialEq, Default, Store)]
pub struct VmView {
    /// The engine in use (or to be used).
    pub engine: EngineKind,
    /// What is happening right now, in words.
    pub detail: String,
    /// An action in progress (`Saving the VM…`).
    pub busy: Option<String>,
    /// A problem that did not stop the VM (storage full, snapshot ignored).
    pub notice: Option<String>,
    /// Time the last boot or restore took (set once the VM is ready).
    pub boot_ms: Option<u64>,
    /// Where the VM comes from: while loading, the source being tried; once ready, the one
    /// that worked.
    pub source: Option<VmSource>,
    /// The saved hibernation state, if any.
    pub saved: Option<SavedState>,
    /// The last hibernate: time to save and store, size.
    pub last_hibernate: Option<(u64, u64)>,
    /// When the current boot started (`performance.now()` ms), for the elapsed time.
    pub boot_started_ms: Option<f64>,
    /// Which tab runs the VM.
    pub ownership: VmOwnership,
}

impl VmView {
    /// What the engine can do.
    pub fn capabilities(&self) -> Capabilities {
        self.engine.capabilities()
    }

    /// The running VM came from a saved state (a boot that finished from a snapshot).
    pub fn restored(&self) -> bool {
        self.boot_ms.is_some() && self.source.is_some_and(|source| source != VmSource::Cold)
    }
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
    /// Just the state of [`VmController::status`]: wakes only when the state changes, not
    /// on every progress event, heartbeat or resource sample.
    pub live_state: Memo<WebVMState>,
    /// Everything else the UI shows, field by field.
    pub view: Store<VmView>,
    /// The system log, the VM's performance metrics and its errors (kept in IndexedDB with
    /// the last known status: `journal`).
    pub journal: RwSignal<VmJournal>,
    #[cfg(feature = "hydrate")]
    runtime: StoredValue<std::rc::Rc<runtime::Runtime>, LocalStorage>,
}

impl VmController {
    fn new() -> Self {
        let status = RwSignal::new(WebVMStatus::default());
        VmController {
            status,
            live_state: Memo::new(move |_| status.with(|status| status.state)),
            view: Store::new(VmView {
                engine: super::settings::engine(),
                ..VmView::default()
            }),
            journal: RwSignal::new(VmJournal::default()),
            #[cfg(feature = "hydrate")]
            runtime: StoredValue::new_local(std::rc::Rc::new(runtime::Runtime::default())),
        }
    }

    /// Creates the controller and provides it as context: once, in `App`.
    pub fn provide() -> Self {
        let controller = VmController::new();
        provide_context(controller);
        #[cfg(feature = "hydrate")]
        controller.load_journal();
        controller
    }

    /// The controller `App` provided. Panics without one: a second VM is never made here.
    pub fn expect() -> Self {
        expect_context::<VmController>()
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
    /// Ask the tab that runs the VM to hand it over (browser only).
    pub fn take_over(&self) {}
    /// Take the VM from a tab that does not answer (browser only).
    pub fn force_take_over(&self) {}
    /// Records an error in the VM's history (browser only).
    pub fn record_error(
        &self,
        _name: &str,
        _message: &str,
        _context: crate::domain::vm_record::ErrorContext,
    ) {
    }
}
