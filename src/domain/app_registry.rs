//! The application registry as a browser records it (its IndexedDB record, [`AppBook`]):
//! applications, their deployment history and current releases, and the rules for changing
//! them. Every status change goes through `domain::lifecycle`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::lifecycle::{StateMachine, TransitionError};
pub use super::stored_record::RecordError;
use super::stored_record::RecordFormat;
use crate::model::{
    Application, ApplicationId, ApplicationServerSettings, ApplicationStatus, DependencyGraph,
    DeploymentOperation, DeploymentStatus, RuntimeCompatibility,
};

/// The record's format. Each version has an upgrade to the next ([`upgrade_record`]).
pub const APP_BOOK_SCHEMA_VERSION: u32 = 2;
/// How a stored application record is read: every record has carried `schemaVersion`.
pub const APP_BOOK_FORMAT: RecordFormat = RecordFormat {
    what: "application record",
    current: APP_BOOK_SCHEMA_VERSION,
    unversioned: None,
    upgrade: upgrade_record,
};
/// Deployments kept per application in the history (the newest).
pub const DEPLOYMENTS_KEPT: usize = 20;
/// Log lines kept per deployment (the newest; the first line then says lines were dropped).
pub const DEPLOYMENT_LOG_LINES: usize = 2000;

/// Why the registry refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("there is no application with id {0}")]
    UnknownApplication(ApplicationId),
    #[error("there is no deployment {deployment} of application '{application}'")]
    UnknownDeployment {
        application: String,
        deployment: Uuid,
    },
    #[error("'{application}' is being deployed already; wait for that deployment to end")]
    DeploymentRunning { application: String },
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

/// What a finished deployment left in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReleaseFacts {
    /// Directory inside the release that `current` points at (`""` for the release itself).
    pub served_directory: String,
    pub file_count: u32,
    pub total_bytes: u64,
}

/// A deployment that was running when the page went away, found on the next load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    pub application: ApplicationId,
    pub name: String,
    pub deployment: Uuid,
}

/// This browser's applications (see the module docs). Stored as JSON in IndexedDB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppBook {
    pub schema_version: u32,
    #[serde(default)]
    pub applications: BTreeMap<ApplicationId, Application>,
    /// Each application's deployments, oldest first, at most [`DEPLOYMENTS_KEPT`].
    #[serde(default)]
    pub deployments: BTreeMap<ApplicationId, Vec<DeploymentOperation>>,
    /// The deployment whose release `current` points at, per application.
    #[serde(default)]
    pub current_releases: BTreeMap<ApplicationId, Uuid>,
    /// The guest process of each application whose process runs (kept so that a page that
    /// resumes the VM from a snapshot adopts it instead of starting another).
    #[serde(default)]
    pub processes: BTreeMap<ApplicationId, RecordedProcess>,
    /// The workspace's settings (the seed's `ApplicationStore.settings`; format 2 on).
    #[serde(default)]
    pub settings: ApplicationServerSettings,
}

/// An application's process in the guest, as the agent knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedProcess {
    /// The agent's id for it (its `EXEC` id).
    pub exec_id: u64,
    /// Its pid in the guest (also its process group).
    pub pid: u32,
}

impl Default for AppBook {
    fn default() -> Self {
        AppBook {
            schema_version: APP_BOOK_SCHEMA_VERSION,
            applications: BTreeMap::new(),
            deployments: BTreeMap::new(),
            current_releases: BTreeMap::new(),
            processes: BTreeMap::new(),
            settings: ApplicationServerSettings::default(),
        }
    }
}

/// Upgrades a stored record of format `from` to the next format:
/// * 1 → 2: the workspace's settings move into the record (`settings`, the defaults: format
///   1 had none stored).
pub fn upgrade_record(
    object: &mut serde_json::Map<String, serde_json::Value>,
    from: u32,
) -> Result<(), String> {
    match from {
        1 => {
            let settings = serde_json::to_value(ApplicationServerSettings::default())
                .map_err(|error| error.to_string())?;
            object.entry("settings").or_insert(settings);
            Ok(())
        }
        other => Err(format!("format {other} has no upgrade")),
    }
}

/// Statuses in which the application's process exists.
pub const RUNNING: [ApplicationStatus; 3] = [
    ApplicationStatus::Starting,
    ApplicationStatus::Running,
    ApplicationStatus::Stopping,
];

/// Statuses in which nothing runs or is in progress: where a missing runtime shows.
const AT_REST: [ApplicationStatus; 5] = [
    ApplicationStatus::Draft,
    ApplicationStatus::Deployed,
    ApplicationStatus::Stopped,
    ApplicationStatus::Failed,
    ApplicationStatus::RuntimeMissing,
];

impl AppBook {
    /// Reads a stored record, upgrading older formats one version at a time (see
    /// [`upgrade_record`]); a record without `schemaVersion` is refused as unreadable.
    pub fn from_json(text: &str) -> Result<AppBook, RecordError> {
        APP_BOOK_FORMAT.read(text)
    }

    /// The applications by name (case-insensitive order).
    pub fn sorted(&self) -> Vec<&Application> {
        let mut list: Vec<&Application> = self.applications.values().collect();
        list.sort_by_key(|app| app.name.normalized());
        list
    }

    /// The application named `name` (case-insensitive).
    pub fn by_name(&self, name: &str) -> Option<&Application> {
        self.applications
            .values()
            .find(|app| app.name.as_str().eq_ignore_ascii_case(name))
    }

    /// Adds or replaces an application (a rename keeps its id). Its status, history and
    /// timestamps stay the registry's: a saved form can't set them.
    pub fn save(&mut self, mut application: Application) {
        if let Some(existing) = self.applications.get(&application.id) {
            application.status = existing.status;
            application.created_at = existing.created_at;
            application.last_deployed = existing.last_deployed;
            application.last_started = existing.last_started;
            application.last_stopped = existing.last_stopped;
            application.metrics = existing.metrics.clone();
            application.health_check = existing.health_check.clone();
        }
        self.applications.insert(application.id, application);
    }

    /// Removes an application with its history.
    pub fn remove(&mut self, id: ApplicationId) -> Option<Application> {
        self.deployments.remove(&id);
        self.current_releases.remove(&id);
        self.processes.remove(&id);
        self.applications.remove(&id)
    }

    /// The deployments of an application, oldest first.
    pub fn history(&self, id: ApplicationId) -> &[DeploymentOperation] {
        self.deployments.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The deployment of `id` in progress, if any.
    pub fn active_deployment(&self, id: ApplicationId) -> Option<&DeploymentOperation> {
        self.history(id)
            .iter()
            .find(|deployment| !deployment.status.is_terminal())
    }

    /// The deployment whose release is current.
    pub fn current_release(&self, id: ApplicationId) -> Option<&DeploymentOperation> {
        let current = self.current_releases.get(&id)?;
        self.history(id)
            .iter()
            .find(|deployment| deployment.id == *current)
    }

    /// Starts a deployment: the application becomes `deploying` and the operation is added
    /// to its history (the oldest beyond [`DEPLOYMENTS_KEPT`] are dropped, never the
    /// current release's).
    pub fn begin_deployment(
        &mut self,
        deployment: DeploymentOperation,
    ) -> Result<(), RegistryError> {
        let id = deployment.application_id;
        let application = self.application(id)?;
        if self.active_deployment(id).is_some() {
            return Err(RegistryError::DeploymentRunning {
                application: application.name.to_string(),
            });
        }
        let status = application
            .status
            .transition(ApplicationStatus::Deploying)?;
        self.application_mut(id)?.status = status;
        let current = self.current_releases.get(&id).copied();
        let history = self.deployments.entry(id).or_default();
        history.push(deployment);
        while history.len() > DEPLOYMENTS_KEPT {
            let Some(oldest) = history
                .iter()
                .position(|deployment| Some(deployment.id) != current)
            else {
                break;
            };
            history.remove(oldest);
        }
        Ok(())
    }

    /// Moves a deployment to `status` (through the lifecycle) at `progress` percent
    /// (progress never goes back).
    pub fn advance(
        &mut self,
        application: ApplicationId,
        deployment: Uuid,
        status: DeploymentStatus,
        progress: u8,
    ) -> Result<(), RegistryError> {
        let operation = self.deployment_mut(application, deployment)?;
        if operation.status != status {
            operation.status = operation.status.transition(status)?;
        }
        operation.progress = operation.progress.max(progress.min(100));
        Ok(())
    }

    /// Appends a line to a deployment's log (at most [`DEPLOYMENT_LOG_LINES`] are kept).
    pub fn log(&mut self, application: ApplicationId, deployment: Uuid, line: impl Into<String>) {
        if let Ok(operation) = self.deployment_mut(application, deployment) {
            operation.logs.push(line.into());
            let excess = operation.logs.len().saturating_sub(DEPLOYMENT_LOG_LINES);
            if excess > 0 {
                operation.logs.drain(..excess);
                operation.logs[0] = "… earlier lines dropped".to_owned();
            }
        }
    }

    /// Ends a deployment successfully at `now`: its release is current, the application is
    /// `deployed` (or `runtime-missing` when `compatibility` says it can't start) with
    /// `lastDeployed` set.
    pub fn complete_deployment(
        &mut self,
        application: ApplicationId,
        deployment: Uuid,
        facts: ReleaseFacts,
        compatibility: RuntimeCompatibility,
        now: DateTime<Utc>,
    ) -> Result<(), RegistryError> {
        let operation = self.deployment_mut(application, deployment)?;
        operation.status = operation.status.transition(DeploymentStatus::Completed)?;
        operation.progress = 100;
        operation.end_time = Some(now);
        operation.served_directory = Some(facts.served_directory);
        operation.file_count = Some(facts.file_count);
        operation.total_bytes = Some(facts.total_bytes);
        let target = operation.rollback_to.unwrap_or(deployment);
        self.current_releases.insert(application, target);
        let app = self.application_mut(application)?;
        let next = if compatibility.can_start {
            ApplicationStatus::Deployed
        } else {
            ApplicationStatus::RuntimeMissing
        };
        app.status = app.status.transition(next)?;
        app.runtime_status = compatibility;
        app.last_deployed = now;
        app.metrics.last_error = None;
        Ok(())
    }

    /// Ends a deployment as failed at `now` with `error`: the application is `failed` with
    /// the reason in `lastError`; the current release (if any) stays as it was.
    pub fn fail_deployment(
        &mut self,
        application: ApplicationId,
        deployment: Uuid,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RegistryError> {
        let operation = self.deployment_mut(application, deployment)?;
        operation.status = operation.status.transition(DeploymentStatus::Failed)?;
        operation.end_time = Some(now);
        operation.error = Some(error.to_owned());
        operation.logs.push(format!("failed: {error}"));
        let app = self.application_mut(application)?;
        app.status = app.status.transition(ApplicationStatus::Failed)?;
        app.metrics.last_error = Some(error.to_owned());
        Ok(())
    }

    /// The deployments still in progress in a record just loaded: the page that ran them
    /// went away. Each is failed ("interrupted") at `now` and returned, so the caller can
    /// report it and remove its partial release from the guest.
    pub fn recover_interrupted(&mut self, now: DateTime<Utc>) -> Vec<Interrupted> {
        let running: Vec<(ApplicationId, Uuid)> = self
            .deployments
            .iter()
            .flat_map(|(app, history)| {
                history
                    .iter()
                    .filter(|deployment| !deployment.status.is_terminal())
                    .map(move |deployment| (*app, deployment.id))
            })
            .collect();
        let mut found = Vec::new();
        for (application, deployment) in running {
            let name = self
                .applications
                .get(&application)
                .map(|app| app.name.to_string())
                .unwrap_or_default();
            let reason = "interrupted: the page was closed or reloaded during the deployment; the previous release was kept";
            if self
                .fail_deployment(application, deployment, reason, now)
                .is_ok()
            {
                found.push(Interrupted {
                    application,
                    name,
                    deployment,
                });
            }
        }
        found
    }

    /// Records each application's runtime compatibility (checked at `now` by the caller)
    /// and moves applications at rest between their status and `runtime-missing` as
    /// runtimes come and go. Returns whether anything changed.
    pub fn apply_compatibility(
        &mut self,
        check: impl Fn(&Application) -> RuntimeCompatibility,
    ) -> bool {
        let mut changed = false;
        let released: Vec<ApplicationId> = self.current_releases.keys().copied().collect();
        for app in self.applications.values_mut() {
            let compatibility = check(app);
            let target = if !compatibility.can_start {
                ApplicationStatus::RuntimeMissing
            } else if app.status == ApplicationStatus::RuntimeMissing {
                if released.contains(&app.id) {
                    ApplicationStatus::Deployed
                } else {
                    ApplicationStatus::Draft
                }
            } else {
                app.status
            };
            let verdict_changed = app.runtime_status.can_start != compatibility.can_start
                || app.runtime_status.missing_runtimes != compatibility.missing_runtimes
                || app.runtime_status.issues != compatibility.issues;
            if verdict_changed {
                app.runtime_status = compatibility;
                changed = true;
            }
            if target != app.status && AT_REST.contains(&app.status) {
                if let Ok(status) = app.status.transition(target) {
                    app.status = status;
                    changed = true;
                }
            }
        }
        changed
    }

    /// Moves an application through its run statuses (`domain::lifecycle` decides what is
    /// legal) at `now`, keeping the seed's timestamps true: `lastStarted` when it starts,
    /// `metrics.startTime` from the moment it runs, `lastStopped` and a zero uptime when
    /// its process ends (stopped, crashed or failed). Returns the status it left.
    pub fn set_run_status(
        &mut self,
        id: ApplicationId,
        to: ApplicationStatus,
        now: DateTime<Utc>,
    ) -> Result<ApplicationStatus, RegistryError> {
        let app = self.application_mut(id)?;
        let from = app.status;
        app.status = from.transition(to)?;
        match to {
            ApplicationStatus::Starting => {
                app.last_started = Some(now);
                app.metrics.start_time = None;
            }
            ApplicationStatus::Running => app.metrics.start_time = Some(now),
            ApplicationStatus::Stopped | ApplicationStatus::Error | ApplicationStatus::Failed => {
                self.processes.remove(&id);
                let app = self.application_mut(id)?;
                if RUNNING.contains(&from) {
                    app.last_stopped = Some(now);
                }
                app.metrics.start_time = None;
                app.metrics.uptime = 0;
            }
            _ => {}
        }
        Ok(from)
    }

    /// The applications whose process runs or is starting or stopping (the seed's
    /// `WebVMStatus.runningApps`), by id.
    pub fn running(&self) -> Vec<ApplicationId> {
        self.applications
            .values()
            .filter(|app| RUNNING.contains(&app.status))
            .map(|app| app.id)
            .collect()
    }

    /// Which applications require each runtime (the seed's `runtimeDependencies`).
    pub fn dependency_graph(&self) -> DependencyGraph {
        let mut graph = DependencyGraph::default();
        for app in self.applications.values() {
            for runtime in &app.runtime.required_runtimes {
                let users = graph
                    .runtime_dependencies
                    .entry(runtime.clone())
                    .or_default();
                if !users.contains(&app.id) {
                    users.push(app.id);
                }
            }
        }
        graph
    }

    fn application(&self, id: ApplicationId) -> Result<&Application, RegistryError> {
        self.applications
            .get(&id)
            .ok_or(RegistryError::UnknownApplication(id))
    }

    fn application_mut(&mut self, id: ApplicationId) -> Result<&mut Application, RegistryError> {
        self.applications
            .get_mut(&id)
            .ok_or(RegistryError::UnknownApplication(id))
    }

    fn deployment_mut(
        &mut self,
        application: ApplicationId,
        deployment: Uuid,
    ) -> Result<&mut DeploymentOperation, RegistryError> {
        let name = self.application(application)?.name.to_string();
        self.deployments
            .get_mut(&application)
            .and_then(|history| history.iter_mut().find(|op| op.id == deployment))
            .ok_or(RegistryError::UnknownDeployment {
                application: name,
                deployment,
            })
    }
}

#[cfg(test)]
mod tests;
