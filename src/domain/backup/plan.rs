//! What importing a validated backup into this browser's workspace would change (the
//! preview), and the change itself, applied to the record in one step.
//!
//! An import merges: each application of the backup **replaces** the one here with its id,
//! or else with its name (names are unique); any other is **added**; the applications here
//! that the backup does not hold are **kept**. The backup's settings replace this
//! browser's (the preview says so when they differ).
//! A JSON backup holds no files and no VM: each imported application arrives as a draft, to
//! be deployed again, and the runtimes it needs that are not installed here are listed to be
//! installed from this server's catalog.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::import::{needs_files, Finding, ImportedBackup, Place};
use crate::domain::app_registry::{AppBook, RUNNING};
use crate::domain::validation::ValidationRules;
use crate::model::{
    AppName, Application, ApplicationId, ApplicationMetrics, ApplicationServerSettings,
    ApplicationStatus, HealthStatus, PackageId, PackageStatus, RuntimeCompatibility,
    RuntimePackage, SystemResources,
};

/// One application the import replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// The imported application's name.
    pub name: AppName,
    /// The name of the one here that it replaces (the same, unless matched by id).
    pub previous: AppName,
    /// Matched by id (the same application), or else by name (another one).
    pub same_id: bool,
}

/// The import, checked against this workspace and ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPlan {
    /// The records to store, prepared for this VM (drafts: nothing of them is in it).
    pub applications: Vec<Application>,
    pub added: Vec<AppName>,
    pub replaced: Vec<Replacement>,
    /// How many applications here the backup leaves as they are.
    pub kept: usize,
    /// The ids of the applications here that the import removes (replaced ones).
    pub removed: Vec<ApplicationId>,
    /// Runtimes the backup had installed or its applications need, not installed here but
    /// in this server's catalog: to install after the import.
    pub runtimes_to_install: Vec<PackageId>,
    /// The same, but not in this server's catalog (their applications stay runtime-missing).
    pub runtimes_unavailable: Vec<PackageId>,
    /// Applications whose files only the user has (uploads, local folders).
    pub needing_files: Vec<AppName>,
    /// The backup's warnings, and the plan's.
    pub warnings: Vec<Finding>,
    /// The backup's settings, when they differ from this browser's (they replace them).
    pub settings: Option<ApplicationServerSettings>,
}

/// This workspace, as the plan needs it.
#[derive(Debug, Clone, Copy)]
pub struct Workspace<'a> {
    pub applications: &'a [Application],
    pub installed: &'a BTreeSet<PackageId>,
    /// This server's catalog.
    pub catalog: &'a [RuntimePackage],
    pub resources: &'a SystemResources,
    /// This browser's settings.
    pub settings: &'a ApplicationServerSettings,
}

/// Checks `imported` against `workspace` and says what applying it would do; refused, with
/// every problem, when an application it replaces is busy here or the merged workspace
/// breaks a rule (a port or folder of a kept application).
pub fn plan_import(
    imported: &ImportedBackup,
    workspace: Workspace<'_>,
    now: DateTime<Utc>,
) -> Result<ImportPlan, Vec<Finding>> {
    let backup = &imported.backup;
    let by_id: HashMap<ApplicationId, &Application> = workspace
        .applications
        .iter()
        .map(|application| (application.id, application))
        .collect();
    let by_name: HashMap<String, &Application> = workspace
        .applications
        .iter()
        .map(|application| (application.name.normalized(), application))
        .collect();
    let mut problems = Vec::new();
    let mut added = Vec::new();
    let mut replaced = Vec::new();
    let mut removed = BTreeSet::new();
    for (index, application) in backup.applications.iter().enumerate() {
        let here = by_id
            .get(&application.id)
            .or_else(|| by_name.get(&application.name.normalized()));
        let Some(here) = here else {
            added.push(application.name.clone());
            continue;
        };
        if RUNNING.contains(&here.status) || here.status == ApplicationStatus::Deploying {
            problems.push(Finding::new(
                Place::Application {
                    index,
                    name: Some(application.name.to_string()),
                },
                "name",
                format!(
                    "it would replace '{}', which is {} here: stop it first",
                    here.name, here.status
                ),
            ));
        }
        replaced.push(Replacement {
            name: application.name.clone(),
            previous: here.name.clone(),
            same_id: here.id == application.id,
        });
        removed.insert(here.id);
    }
    let kept: Vec<Application> = workspace
        .applications
        .iter()
        .filter(|application| !removed.contains(&application.id))
        .cloned()
        .collect();
    let prepared: Vec<Application> = backup
        .applications
        .iter()
        .map(|application| prepare_for_this_vm(application, now))
        .collect();
    let kept_count = kept.len();
    let merged: Vec<Application> = kept.into_iter().chain(prepared.iter().cloned()).collect();
    let rules = ValidationRules::new(
        workspace.catalog,
        &merged,
        workspace.resources,
        &backup.settings,
    )
    .in_order();
    for (index, application) in prepared.iter().enumerate() {
        let checks = rules.check_application(application);
        for group in ["name", "ports", "deployment"] {
            let errors = checks
                .groups()
                .into_iter()
                .find(|(name, _)| *name == group)
                .map(|(_, result)| result.errors.clone())
                .unwrap_or_default();
            for error in errors {
                problems.push(Finding::new(
                    Place::Application {
                        index,
                        name: Some(application.name.to_string()),
                    },
                    group,
                    format!("{error} (an application kept here)"),
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let catalog_ids: BTreeSet<&PackageId> = workspace
        .catalog
        .iter()
        .map(|package| &package.id)
        .collect();
    let wanted: BTreeSet<PackageId> = backup
        .webvm_state
        .installed_runtimes
        .iter()
        .cloned()
        .chain(
            backup
                .packages
                .iter()
                .filter(|package| package.status == PackageStatus::Installed)
                .map(|package| package.id.clone()),
        )
        .chain(
            backup
                .applications
                .iter()
                .flat_map(|application| application.runtime.required_runtimes.iter().cloned()),
        )
        .filter(|id| !workspace.installed.contains(id))
        .collect();
    let (runtimes_to_install, runtimes_unavailable): (Vec<PackageId>, Vec<PackageId>) =
        wanted.into_iter().partition(|id| catalog_ids.contains(id));
    let mut warnings = imported.warnings.clone();
    for runtime in &runtimes_unavailable {
        warnings.push(Finding::new(
            Place::Backup,
            "packages",
            format!("{runtime} is not in this server's catalog: the applications that need it stay runtime-missing"),
        ));
    }
    let needing_files = backup
        .applications
        .iter()
        .filter(|application| needs_files(application))
        .map(|application| application.name.clone())
        .collect();
    Ok(ImportPlan {
        applications: prepared,
        added,
        replaced,
        kept: kept_count,
        removed: removed.into_iter().collect(),
        runtimes_to_install,
        runtimes_unavailable,
        needing_files,
        warnings,
        settings: (backup.settings != *workspace.settings).then(|| backup.settings.clone()),
    })
}

/// An imported record as this VM knows it: a draft (none of its releases or processes are
/// here), its live figures cleared, its runtimes to be checked again. Its configuration,
/// counters, logs and history are kept.
pub fn prepare_for_this_vm(application: &Application, now: DateTime<Utc>) -> Application {
    let mut application = application.clone();
    application.status = ApplicationStatus::Draft;
    application.health_check = None;
    application.runtime_status = RuntimeCompatibility::unchecked(now);
    let metrics = &mut application.metrics;
    *metrics = ApplicationMetrics {
        request_count: metrics.request_count,
        restart_count: metrics.restart_count,
        last_error: metrics.last_error.take(),
        health_status: HealthStatus::Unknown,
        recent_logs: std::mem::take(&mut metrics.recent_logs),
        performance_history: std::mem::take(&mut metrics.performance_history),
        ..ApplicationMetrics::default()
    };
    application
}

impl ImportPlan {
    /// Applies the plan to the record in one step: the replaced applications go (with their
    /// deployments, release and process), the imported ones are saved.
    pub fn apply_to(&self, book: &mut AppBook) {
        for id in &self.removed {
            book.remove(*id);
        }
        for application in &self.applications {
            book.remove(application.id);
            book.save(application.clone());
        }
        if let Some(settings) = &self.settings {
            book.settings = settings.clone();
        }
    }
}

#[cfg(test)]
mod tests;
