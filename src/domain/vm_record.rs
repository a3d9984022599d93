//! The VM's part of the seed's `WebVMStore` as this browser records it ([`VmRecord`], in
//! IndexedDB): the last known status, the system log, the VM's performance metrics, the last
//! error and the error history, each within its budget. (The store's package parts are the
//! package record, `package_install::PackageBook`, and the catalog the server renders.)
//!
//! On a reload the page shows [`VmRecord::shown_before_ready`] at once, then replaces it
//! with what the guest reports.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::metrics::{push_log, record_snapshot, MetricsLimits, MAX_LOG_ENTRIES};
use super::stored_record::{no_upgrade, RecordError, RecordFormat};
use crate::model::{
    ApplicationId, ErrorEvent, ErrorInfo, LogEntry, LogLevel, LogSource, PackageId,
    SystemPerformanceMetrics, SystemResources, SystemSample, WebVMState, WebVMStatus,
};

/// The record's format ([`VM_RECORD_FORMAT`]).
pub const VM_RECORD_SCHEMA_VERSION: u32 = 1;
/// How a stored VM record is read: format 1 is the first.
pub const VM_RECORD_FORMAT: RecordFormat = RecordFormat {
    what: "VM record",
    current: VM_RECORD_SCHEMA_VERSION,
    unversioned: None,
    upgrade: no_upgrade,
};
/// System log entries kept (the seed's rolling buffer of 1000).
pub const MAX_SYSTEM_LOGS: usize = MAX_LOG_ENTRIES;
/// Errors kept in the history (the newest).
pub const MAX_ERROR_HISTORY: usize = 100;
/// Characters kept of one log or error message (the rest is cut, with `…`).
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// This browser's record of its VM (see the module docs): the status when it was last
/// written and the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmRecord {
    pub schema_version: u32,
    pub status: WebVMStatus,
    #[serde(flatten)]
    pub journal: VmJournal,
}

impl Default for VmRecord {
    fn default() -> Self {
        VmRecord::new(WebVMStatus::default(), VmJournal::default())
    }
}

/// What the page keeps about its VM besides the status: the seed's `systemLogs`,
/// `performanceMetrics`, `lastError` and `errorHistory`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmJournal {
    /// VM events, oldest first, at most [`MAX_SYSTEM_LOGS`].
    #[serde(default)]
    pub system_logs: Vec<LogEntry>,
    #[serde(default)]
    pub performance_metrics: SystemPerformanceMetrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorInfo>,
    /// Oldest first, at most [`MAX_ERROR_HISTORY`].
    #[serde(default)]
    pub error_history: Vec<ErrorEvent>,
}

/// What an error was about, for its [`ErrorEvent`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ErrorContext {
    /// What was being done: `boot`, `install nginx`, `start blog`.
    pub operation: String,
    pub package_id: Option<PackageId>,
    pub application_id: Option<ApplicationId>,
}

fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

impl VmRecord {
    /// The record to store: `status` as it is now, and the journal.
    pub fn new(status: WebVMStatus, journal: VmJournal) -> Self {
        VmRecord {
            schema_version: VM_RECORD_SCHEMA_VERSION,
            status,
            journal,
        }
    }

    /// Reads a stored record (see [`VM_RECORD_FORMAT`]).
    pub fn from_json(text: &str) -> Result<VmRecord, RecordError> {
        VM_RECORD_FORMAT.read(text)
    }

    /// What the page shows on load, before the VM is up: the last known facts (runtimes,
    /// resources, boot and heartbeat times), with nothing running and nothing loading.
    pub fn shown_before_ready(&self) -> WebVMStatus {
        WebVMStatus {
            state: WebVMState::Unloaded,
            load_progress: 0,
            running_apps: Vec::new(),
            error_message: None,
            ..self.status.clone()
        }
    }
}

impl VmJournal {
    /// This (stored) journal followed by what `later` recorded since the page started,
    /// within the budgets: the page may log before the stored record is read.
    pub fn followed_by(mut self, later: VmJournal) -> VmJournal {
        for entry in later.system_logs {
            push_log(&mut self.system_logs, entry, MAX_SYSTEM_LOGS);
        }
        self.error_history.extend(later.error_history);
        let excess = self.error_history.len().saturating_sub(MAX_ERROR_HISTORY);
        self.error_history.drain(..excess);
        if later.last_error.is_some() {
            self.last_error = later.last_error;
        }
        let metrics = &mut self.performance_metrics;
        let newer = later.performance_metrics;
        if newer.boot_duration.is_some() {
            metrics.boot_duration = newer.boot_duration;
            metrics.restored_from_snapshot = newer.restored_from_snapshot;
        }
        if newer.exec_round_trip.is_some() {
            metrics.exec_round_trip = newer.exec_round_trip;
        }
        metrics.history.extend(newer.history);
        self
    }

    /// Appends a system log entry (message bounded), dropping the oldest beyond the budget.
    pub fn log(&mut self, at: DateTime<Utc>, level: LogLevel, message: &str) {
        let entry = LogEntry {
            timestamp: at,
            level,
            message: bounded(message),
            source: LogSource::Webvm,
            details: None,
        };
        push_log(&mut self.system_logs, entry, MAX_SYSTEM_LOGS);
    }

    /// Records an error: the last error, the history (the oldest dropped beyond its budget)
    /// and an `error` log entry. Returns the event.
    pub fn record_error(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        error: ErrorInfo,
        context: ErrorContext,
    ) -> ErrorEvent {
        let error = ErrorInfo {
            name: bounded(&error.name),
            message: bounded(&error.message),
        };
        let event = ErrorEvent {
            id,
            timestamp: at,
            operation: bounded(&context.operation),
            error: error.clone(),
            package_id: context.package_id,
            application_id: context.application_id,
        };
        self.log(
            at,
            LogLevel::Error,
            &format!("{}: {}", event.operation, error.message),
        );
        self.last_error = Some(error);
        self.error_history.push(event.clone());
        let excess = self.error_history.len().saturating_sub(MAX_ERROR_HISTORY);
        self.error_history.drain(..excess);
        event
    }

    /// The VM is up after `duration_ms`, from a snapshot or a cold boot.
    pub fn booted(&mut self, at: DateTime<Utc>, duration_ms: u64, restored_from_snapshot: bool) {
        let metrics = &mut self.performance_metrics;
        metrics.boot_duration = Some(duration_ms);
        metrics.restored_from_snapshot = restored_from_snapshot;
        let how = if restored_from_snapshot {
            "restored from a snapshot"
        } else {
            "booted"
        };
        self.log(at, LogLevel::Info, &format!("VM {how} in {duration_ms} ms"));
    }

    /// A heartbeat's round trip to the guest agent.
    pub fn round_trip(&mut self, milliseconds: u64) {
        self.performance_metrics.exec_round_trip = Some(milliseconds);
    }

    /// Samples the VM's resources into the history when a sample is due (the sampling
    /// interval and retention of `limits`: the seed's 24 h at 5 minutes). Resources the
    /// guest has not reported yet (`memory_total` 0) are not sampled. Returns whether it was.
    pub fn sample(
        &mut self,
        resources: &SystemResources,
        at: DateTime<Utc>,
        limits: &MetricsLimits,
    ) -> bool {
        if resources.memory_total == 0 {
            return false;
        }
        let sample = SystemSample {
            timestamp: at,
            memory_used: resources.memory_used,
            cpu_usage: resources.cpu_usage,
            disk_used: resources.disk_used,
            process_count: resources.process_count,
        };
        record_snapshot(&mut self.performance_metrics.history, sample, limits)
    }
}

#[cfg(test)]
mod tests;
