//! Application metrics: resource use, request figures, uptime, logs and history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

string_enum! {
    /// Health as shown to the user.
    #[derive(Default)]
    pub enum HealthStatus {
        Healthy = "healthy",
        Unhealthy = "unhealthy",
        #[default]
        Unknown = "unknown",
    }
}

/// Live and recent figures of one application.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationMetrics {
    /// Current MB.
    pub memory_usage: f64,
    /// Current percent.
    pub cpu_usage: f64,
    /// Current MB.
    pub disk_usage: f64,
    /// Total requests served.
    pub request_count: u64,
    /// Requests in the last minute.
    pub request_rate: f64,
    /// Average response time in ms over the last minute.
    pub response_time: f64,
    /// Percent of requests in the last minute that failed.
    pub error_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "crate::model::time::optional")]
    pub start_time: Option<DateTime<Utc>>,
    /// Seconds.
    pub uptime: u64,
    pub restart_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "crate::model::time::optional")]
    pub last_health_check: Option<DateTime<Utc>>,
    pub health_status: HealthStatus,
    /// At most 1000 entries, oldest first.
    pub recent_logs: Vec<LogEntry>,
    /// At most 288 snapshots (24 h at 5-minute sampling), oldest first.
    pub performance_history: Vec<PerformanceSnapshot>,
}

string_enum! {
    /// Severity of a log entry.
    #[derive(Default)]
    pub enum LogLevel {
        Debug = "debug",
        #[default]
        Info = "info",
        Warn = "warn",
        Error = "error",
    }
}

string_enum! {
    /// Who wrote a log entry.
    #[derive(Default)]
    pub enum LogSource {
        #[default]
        Application = "application",
        System = "system",
        Webvm = "webvm",
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    #[serde(deserialize_with = "crate::model::time::required")]
    pub timestamp: DateTime<Utc>,
    pub level: LogLevel,
    pub message: String,
    pub source: LogSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<BTreeMap<String, serde_json::Value>>,
}

/// One sample of an application's performance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerformanceSnapshot {
    #[serde(deserialize_with = "crate::model::time::required")]
    pub timestamp: DateTime<Utc>,
    /// MB.
    pub memory: f64,
    /// Percent.
    pub cpu: f64,
    /// Requests per minute at sampling time.
    pub requests: f64,
    /// Average response time in ms.
    pub response_time: f64,
}

/// What the VM's tab reports about one application (a wire type: the server stamps the
/// time, it does not trust the browser's clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub application_id: uuid::Uuid,
    pub status: super::ApplicationStatus,
    pub health: HealthStatus,
    /// Average response time of the last minute, ms.
    pub response_ms: f64,
    pub request_count: u64,
    pub restart_count: u32,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub last_deployed: DateTime<Utc>,
}
