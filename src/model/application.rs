//! The application model: identity, runtime requirements, compatibility, status and health.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AppName, ApplicationMetrics, DeploymentConfig, ExecutionConfig, PackageId};

/// Applications are identified by a UUID; names can change, ids never do.
pub type ApplicationId = Uuid;

/// A deployed (or to-be-deployed) user application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: ApplicationId,
    /// User-defined, used for routing at `/apps/<name>/`.
    pub name: AppName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub runtime: ApplicationRuntime,
    pub runtime_status: RuntimeCompatibility,
    pub status: ApplicationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckStatus>,
    pub deployment: DeploymentConfig,
    pub execution: ExecutionConfig,
    pub metrics: ApplicationMetrics,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub created_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub last_deployed: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "crate::model::time::optional")]
    pub last_started: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "crate::model::time::optional")]
    pub last_stopped: Option<DateTime<Utc>>,
}

impl Application {
    /// A new draft application created at `now`, with no runtime requirements yet.
    pub fn new(
        id: ApplicationId,
        name: AppName,
        deployment: DeploymentConfig,
        execution: ExecutionConfig,
        now: DateTime<Utc>,
    ) -> Self {
        Application {
            id,
            name,
            description: None,
            runtime: ApplicationRuntime::default(),
            runtime_status: RuntimeCompatibility::unchecked(now),
            status: ApplicationStatus::Draft,
            health_check: None,
            deployment,
            execution,
            metrics: ApplicationMetrics::default(),
            created_at: now,
            last_deployed: now,
            last_started: None,
            last_stopped: None,
        }
    }
}

/// Which runtime packages an application needs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRuntime {
    /// `['nodejs-20', 'nginx']`.
    pub required_runtimes: Vec<PackageId>,
    /// `['python-311']`, for enhanced features.
    pub optional_runtimes: Vec<PackageId>,
    /// Runtime family → minimum version, e.g. `{'nodejs': '18.0.0'}`; a semver range is
    /// accepted too (`>=18, <22`).
    pub minimum_versions: BTreeMap<String, String>,
    /// Runtime family → recommended version, e.g. `{'nodejs': '20.11.0'}`.
    pub recommended_versions: BTreeMap<String, String>,
}

/// Whether an application can start with the packages installed, and why not.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeCompatibility {
    pub can_start: bool,
    pub missing_runtimes: Vec<PackageId>,
    pub conflicting_runtimes: Vec<PackageId>,
    pub version_mismatches: Vec<VersionMismatch>,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub last_checked: DateTime<Utc>,
    pub issues: Vec<String>,
}

impl RuntimeCompatibility {
    /// Not checked yet: cannot start until the compatibility check has run.
    pub fn unchecked(now: DateTime<Utc>) -> Self {
        RuntimeCompatibility {
            can_start: false,
            last_checked: now,
            issues: vec!["runtime compatibility not checked yet".to_owned()],
            ..RuntimeCompatibility::default()
        }
    }
}

string_enum! {
    /// How bad a version mismatch is.
    pub enum MismatchSeverity {
        /// Below the minimum version: the app cannot start.
        Error = "error",
        /// Below the recommended version: the app can start.
        Warning = "warning",
    }
}

/// An installed runtime whose version does not meet a requirement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionMismatch {
    /// The installed package id, or the family when nothing of it is installed.
    pub runtime: String,
    /// The requirement as written, e.g. `>=18.0.0`.
    pub required: String,
    /// The installed version as the package states it.
    pub installed: String,
    pub severity: MismatchSeverity,
    pub recommendation: String,
}

string_enum! {
    /// Where an application is in its lifecycle.
    #[derive(Default)]
    pub enum ApplicationStatus {
        /// Created but not deployed.
        #[default]
        Draft = "draft",
        /// Deployment in progress.
        Deploying = "deploying",
        /// Deployed but not running.
        Deployed = "deployed",
        /// Start sequence initiated.
        Starting = "starting",
        /// Active and serving requests.
        Running = "running",
        /// Shutdown sequence initiated.
        Stopping = "stopping",
        /// Cleanly stopped.
        Stopped = "stopped",
        /// Runtime error occurred.
        Error = "error",
        /// Required runtimes not available.
        RuntimeMissing = "runtime-missing",
        /// Failed to start or deploy.
        Failed = "failed",
    }
}

string_enum! {
    /// Docker's health states.
    #[derive(Default)]
    pub enum HealthState {
        /// No conclusive probe yet.
        #[default]
        Starting = "starting",
        Healthy = "healthy",
        Unhealthy = "unhealthy",
    }
}

string_enum! {
    /// Result of one health probe.
    pub enum ProbeOutcome {
        Passed = "passed",
        Failed = "failed",
        /// Took longer than the configured timeout; counts as a failure.
        TimedOut = "timed-out",
    }
}

/// One health probe, as in Docker's `State.Health.Log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthProbeResult {
    #[serde(deserialize_with = "crate::model::time::required")]
    pub start: DateTime<Utc>,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub end: DateTime<Utc>,
    pub outcome: ProbeOutcome,
    /// HTTP status or error text, truncated.
    pub output: String,
}

/// Health of a running application, as in Docker's `State.Health`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckStatus {
    pub status: HealthState,
    /// Consecutive failures counted so far.
    pub failing_streak: u32,
    /// The last few probes, oldest first.
    pub log: Vec<HealthProbeResult>,
}
