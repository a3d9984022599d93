//! The WebVM system model: VM status and state, resources, and the WebVM state store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApplicationId, LogEntry, PackageId, PackageOperation, RuntimePackage};

string_enum! {
    /// Lifecycle state of the Linux VM running in the page.
    #[derive(Default)]
    pub enum WebVMState {
        /// WebVM not yet initialized.
        #[default]
        Unloaded = "unloaded",
        /// Downloading WebVM assets.
        Loading = "loading",
        /// Linux kernel starting up.
        Booting = "booting",
        /// Available for operations.
        Ready = "ready",
        /// Suspended to save resources.
        Hibernating = "hibernating",
        /// Failed to load or operate.
        Error = "error",
    }
}

/// What the page knows about its VM right now.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebVMStatus {
    pub state: WebVMState,
    /// Load progress in percent, 0–100.
    pub load_progress: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "crate::model::time::optional")]
    pub boot_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "crate::model::time::optional")]
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub installed_runtimes: Vec<PackageId>,
    /// Ids of the applications whose process is running.
    pub running_apps: Vec<ApplicationId>,
    pub system_resources: SystemResources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// Resource usage of the VM. Sizes in MB, CPU in percent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemResources {
    pub memory_used: u64,
    pub memory_total: u64,
    pub disk_used: u64,
    pub disk_total: u64,
    pub cpu_usage: f64,
    pub process_count: u32,
}

impl SystemResources {
    /// Free disk in MB (zero when the numbers are inconsistent).
    pub fn disk_free(&self) -> u64 {
        self.disk_total.saturating_sub(self.disk_used)
    }

    /// Free memory in MB (zero when the numbers are inconsistent).
    pub fn memory_free(&self) -> u64 {
        self.memory_total.saturating_sub(self.memory_used)
    }
}

/// One sample of VM-wide resource usage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemSample {
    #[serde(deserialize_with = "crate::model::time::required")]
    pub timestamp: DateTime<Utc>,
    /// MB.
    pub memory_used: u64,
    /// Percent.
    pub cpu_usage: f64,
    /// MB.
    pub disk_used: u64,
    pub process_count: u32,
}

/// VM-wide performance figures (named by the seed's `WebVMStore`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemPerformanceMetrics {
    /// Time from page load to a ready VM, in milliseconds (cold boot or snapshot restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_duration: Option<u64>,
    /// True when the VM came up from a boot snapshot rather than a cold boot.
    #[serde(default)]
    pub restored_from_snapshot: bool,
    /// Last measured agent command round trip, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_round_trip: Option<u64>,
    /// Samples at the metrics sampling interval, oldest first (same retention as apps).
    #[serde(default)]
    pub history: Vec<SystemSample>,
}

/// A JavaScript-style error value: the seed's `lastError?: Error`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    /// Error class, e.g. `ChecksumMismatch`, `TypeError`.
    pub name: String,
    pub message: String,
}

/// An error that happened, with where and when (the seed's `errorHistory` entries).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEvent {
    pub id: Uuid,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub timestamp: DateTime<Utc>,
    /// What was being done, e.g. `boot`, `install nodejs-20`, `start blog`.
    pub operation: String,
    pub error: ErrorInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<PackageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<ApplicationId>,
}

/// The browser's store of VM and package state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebVMStore {
    pub status: WebVMStatus,
    pub available_packages: Vec<RuntimePackage>,
    pub installed_packages: BTreeMap<PackageId, RuntimePackage>,
    pub package_operations: Vec<PackageOperation>,
    pub system_logs: Vec<LogEntry>,
    pub performance_metrics: SystemPerformanceMetrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorInfo>,
    pub error_history: Vec<ErrorEvent>,
}
