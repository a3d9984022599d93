//! The JSON backup of this browser's workspace (the seed's `ApplicationServerBackup`): the
//! application record, the installed runtimes, the VM's status and the settings, made by
//! `domain::backup` with the options the user chose.

use chrono::Utc;
use leptos::prelude::*;

use super::{AppManager, AppsError};
use crate::domain::backup::{export_backup, to_json, BackupSource, ExportOptions};
use crate::model::{Application, PackageStatus, RuntimePackage};

impl AppManager {
    /// The backup as JSON text, and how many applications and runtimes it holds.
    pub fn backup_json(&self, options: ExportOptions) -> Result<(String, usize, usize), AppsError> {
        let applications: Vec<Application> = self
            .book
            .with_untracked(|book| book.applications.values().cloned().collect());
        let packages: Vec<RuntimePackage> = self.packages.with_untracked(|packages| {
            packages
                .iter()
                .filter(|package| package.status == PackageStatus::Installed)
                .cloned()
                .collect()
        });
        let webvm_state = self.vm.status.get_untracked();
        let settings = self.settings();
        let backup = export_backup(
            BackupSource {
                webvm_state: &webvm_state,
                applications: &applications,
                packages: &packages,
                settings: &settings,
            },
            Utc::now(),
            options,
        );
        let json = to_json(&backup).map_err(|error| AppsError::Invalid(vec![error.to_string()]))?;
        Ok((json, applications.len(), packages.len()))
    }
}
