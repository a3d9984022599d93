//! The VM record in IndexedDB (`domain::vm_record`): read when the page starts, so the panel
//! shows the last known facts before the VM is up; written after each VM event (an error,
//! a boot, a hibernate, a notice) and every minute while the VM runs. Writes are coalesced:
//! one at a time, and the latest state wins.

use chrono::Utc;
use leptos::logging::warn;
use leptos::prelude::*;

use super::VmController;
use crate::client::stored_record::{self, Loaded};
use crate::domain::metrics::MetricsLimits;
use crate::domain::vm_record::{ErrorContext, VmJournal, VmRecord};
use crate::model::{ErrorInfo, LogLevel, SystemResources, WebVMState};

/// The IndexedDB key of the VM record.
pub(crate) const RECORD_KEY: &str = "webvm";
/// Heartbeats between two writes of the status while the VM runs (a minute).
pub(super) const WRITE_EVERY_BEATS: u32 = 12;

impl VmController {
    /// Reads the stored record: the status shown until the VM reports (if nothing started
    /// yet) and the journal, with whatever this page recorded meanwhile after it.
    pub(super) fn load_journal(&self) {
        let controller = *self;
        self.spawn(async move {
            let Some(runtime) = controller.runtime() else {
                return;
            };
            let record = match stored_record::load(RECORD_KEY, VmRecord::from_json).await {
                Loaded::Ready(record) => Some(record),
                Loaded::Reset {
                    fresh,
                    error,
                    kept_as,
                } => {
                    controller.notice(format!(
                        "{}; the VM's history was started afresh",
                        Loaded::<VmRecord>::reset_note(&error, &kept_as)
                    ));
                    Some(fresh)
                }
                Loaded::Newer(error) => {
                    controller.notice(format!(
                        "{error}. The VM's history is not saved until then."
                    ));
                    None
                }
                Loaded::Unavailable(message) => {
                    warn!("VM: the VM record could not be read: {message}");
                    None
                }
            };
            let Some(record) = record else {
                return;
            };
            controller.status.try_update(|status| {
                if status.state == WebVMState::Unloaded && status.boot_time.is_none() {
                    *status = record.shown_before_ready();
                }
            });
            controller.journal.try_update(|journal| {
                *journal = record.journal.followed_by(std::mem::take(journal));
            });
            runtime.journal_writable.set(true);
            controller.persist_journal();
        });
    }

    /// Changes the journal and writes the record.
    pub(super) fn journal_event(&self, change: impl FnOnce(&mut VmJournal)) {
        self.journal.try_update(change);
        self.persist_journal();
    }

    /// A VM event for the system log.
    pub(super) fn journal_log(&self, level: LogLevel, message: &str) {
        self.journal_event(|journal| journal.log(Utc::now(), level, message));
    }

    /// Records an error in the VM's error history (`lastError`, `errorHistory` and the
    /// system log): the VM's own failures, and a package operation's or an app's.
    pub fn record_error(&self, name: &str, message: &str, context: ErrorContext) {
        let error = ErrorInfo {
            name: name.to_owned(),
            message: message.to_owned(),
        };
        self.journal_event(|journal| {
            journal.record_error(uuid::Uuid::new_v4(), Utc::now(), error, context);
        });
    }

    /// A heartbeat: its round trip, and the resources sampled into the history when due.
    pub(super) fn journal_beat(&self, round_trip_ms: u64, resources: Option<&SystemResources>) {
        let limits = MetricsLimits::default();
        self.journal.try_update(|journal| {
            journal.round_trip(round_trip_ms);
            if let Some(resources) = resources {
                journal.sample(resources, Utc::now(), &limits);
            }
        });
    }

    /// Writes the record (the status as it is now and the journal), unless it could not be
    /// read; one write at a time, the latest state winning.
    pub(super) fn persist_journal(&self) {
        let Some(runtime) = self.runtime() else {
            return;
        };
        if !runtime.journal_writable.get() {
            return;
        }
        if runtime.journal_writing.replace(true) {
            runtime.journal_dirty.set(true);
            return;
        }
        let controller = *self;
        self.spawn(async move {
            loop {
                runtime.journal_dirty.set(false);
                let text = controller
                    .status
                    .try_with_untracked(|status| {
                        controller.journal.try_with_untracked(|journal| {
                            serde_json::to_string(&VmRecord::new(status.clone(), journal.clone()))
                        })
                    })
                    .flatten();
                if let Some(Ok(text)) = text {
                    if let Err(error) = stored_record::store(RECORD_KEY, &text).await {
                        warn!("VM: the VM record could not be saved: {error}");
                    }
                }
                if !runtime.journal_dirty.get() {
                    break;
                }
            }
            runtime.journal_writing.set(false);
        });
    }
}
