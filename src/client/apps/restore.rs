//! Importing a backup into this browser's workspace: read and checked by `domain::backup`
//! (every problem named by place and field), previewed against the record (`plan_import`:
//! added, replaced, kept, runtimes to install, secrets to enter again), then applied in one
//! write of the record, and mirrored to the server afterwards.

use std::collections::BTreeSet;

use chrono::Utc;
use leptos::prelude::*;

#[cfg(feature = "hydrate")]
use super::actions::save_write;
use super::{AppManager, AppsError};
#[cfg(feature = "hydrate")]
use crate::domain::app_registry::RUNNING;
use crate::domain::backup::{import_backup_into, plan_import, BackupError, ImportPlan, Workspace};
#[cfg(feature = "hydrate")]
use crate::domain::compat::check_compatibility;
#[cfg(feature = "hydrate")]
use crate::domain::mirror_queue::MirrorWrite;
use crate::domain::ports::ports_in_use;
use crate::model::{Application, PackageId, PackageStatus};

/// The largest backup file read (a JSON backup of 1,000 apps with history is a few MB).
pub const MAX_BACKUP_BYTES: u64 = 64 << 20;

/// A backup that passed every check, with what applying it would change.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPreview {
    pub file_name: String,
    pub plan: ImportPlan,
    /// Sealed values this browser can't open (sealed by another browser's key): each must be
    /// entered again after the import, as "'app': NAME".
    pub sealed_elsewhere: Vec<String>,
}

impl AppManager {
    /// Reads and checks `text` and plans its import into this workspace. Changes nothing.
    pub async fn preview_import(
        &self,
        file_name: String,
        text: &str,
    ) -> Result<ImportPreview, BackupError> {
        let packages = self.packages.get_untracked();
        let taken = self
            .book
            .with_untracked(|book| ports_in_use(book.applications.values()));
        let imported = import_backup_into(text, &packages, &taken)?;
        let installed: BTreeSet<PackageId> = packages
            .iter()
            .filter(|package| package.status == PackageStatus::Installed)
            .map(|package| package.id.clone())
            .collect();
        let existing: Vec<Application> = self
            .book
            .with_untracked(|book| book.applications.values().cloned().collect());
        let resources = self.vm.status.get_untracked().system_resources;
        let settings = self.settings();
        let workspace = Workspace {
            applications: &existing,
            installed: &installed,
            catalog: &packages,
            resources: &resources,
            settings: &settings,
        };
        let plan = plan_import(&imported, workspace, Utc::now())
            .map_err(|problems| BackupError::Invalid { problems })?;
        let sealed_elsewhere = sealed_elsewhere(&plan.applications).await;
        Ok(ImportPreview {
            file_name,
            plan,
            sealed_elsewhere,
        })
    }
}

#[cfg(feature = "hydrate")]
impl AppManager {
    /// Applies a previewed import: one write of the record (all of it or, on a storage
    /// failure, none: the page's record is put back), then the mirror's writes. Refused if
    /// an application it replaces has started or begun deploying since the preview.
    pub async fn apply_import(&self, preview: &ImportPreview) -> Result<usize, AppsError> {
        let plan = preview.plan.clone();
        let previous = self.book.get_untracked();
        let packages = self.packages.get_untracked();
        let applied = self
            .change(|book| {
                for id in &plan.removed {
                    let Some(here) = book.applications.get(id) else {
                        continue;
                    };
                    if RUNNING.contains(&here.status) || book.active_deployment(*id).is_some() {
                        return Err(AppsError::Busy(format!(
                            "'{}' is {} now: stop it, then import again",
                            here.name, here.status
                        )));
                    }
                }
                plan.apply_to(book);
                book.apply_compatibility(|app| {
                    check_compatibility(&app.runtime, packages.iter(), Utc::now())
                });
                Ok(())
            })
            .await;
        if let Err(error) = applied {
            if matches!(error, AppsError::Storage(_)) {
                self.book.try_set(previous);
            }
            return Err(error);
        }
        let imported: BTreeSet<_> = plan.applications.iter().map(|app| app.id).collect();
        let mut writes = Vec::new();
        for id in plan.removed.iter().filter(|id| !imported.contains(id)) {
            let name = previous
                .applications
                .get(id)
                .map(|app| app.name.to_string())
                .unwrap_or_default();
            self.stop_watch(*id);
            writes.push((*id, MirrorWrite::Delete { name }));
        }
        self.book.with_untracked(|book| {
            writes.extend(
                imported
                    .iter()
                    .filter_map(|id| book.applications.get(id).cloned())
                    .map(|application| (application.id, save_write(application))),
            )
        });
        // One queue update for the whole import, not one per application.
        self.enqueue_mirror(writes);
        Ok(plan.applications.len())
    }
}

/// The server build's twin: the record lives in the browser.
#[cfg(not(feature = "hydrate"))]
impl AppManager {
    /// Applies a previewed import (browser only).
    pub async fn apply_import(&self, _preview: &ImportPreview) -> Result<usize, AppsError> {
        Err(AppsError::BrowserOnly)
    }
}

/// The sealed values of `applications` that this browser's key does not open.
pub(super) async fn sealed_elsewhere(applications: &[Application]) -> Vec<String> {
    use crate::client::secrets::unseal;
    let mut unopened = Vec::new();
    for application in applications {
        for (name, sealed) in &application.execution.secret_environment {
            if unseal(sealed).await.is_err() {
                unopened.push(format!("'{}': {name}", application.name));
            }
        }
        if let Some(token) = &application.deployment.source_config.token {
            if unseal(token).await.is_err() {
                unopened.push(format!("'{}': the GitHub token", application.name));
            }
        }
    }
    unopened
}
