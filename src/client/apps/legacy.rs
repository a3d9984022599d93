//! Migration from legacy app hosting (the seed's `AppHostingMigration`), from its export: a
//! ZIP with the format 1 backup and each app's files (`domain::backup::legacy`).
//!
//! * `discoverExistingApps`: [`AppManager::preview_legacy`] reads the export, checks every
//!   file against its `FileRef` (size and SHA-256) and previews the migrated apps exactly as
//!   a JSON import does (names made valid and unique, ports, runtimes to install).
//! * `migrateApp` + `preserveAppData`: [`AppManager::apply_legacy`] saves the migrated apps
//!   in one write of the record (all or nothing), then deploys each app's files as its first
//!   release, so the files are in the VM as they were.
//! * `cleanupLegacySystem`: the export is only read. What a migration replaces (an earlier
//!   migration of the same apps: same ids) leaves the record in that same write, never before
//!   the new records are saved.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use sha2::{Digest, Sha256};

use super::bundle::SourceFile;
use super::{AppManager, ImportPreview};
use crate::domain::backup::legacy::{match_legacy_files, EntryFacts, LEGACY_INDEX};
use crate::domain::backup::{migrate_app, BackupError, BackupV1, Finding, Place};
use crate::model::{AppName, ApplicationId};

/// A legacy export that passed every check: the import's preview and each app's files.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyPreview {
    pub import: ImportPreview,
    /// The files of each migrated app, as its first release will hold them.
    pub files: BTreeMap<ApplicationId, Vec<SourceFile>>,
    /// Entries of the export that no app lists.
    pub left_out: Vec<Finding>,
}

impl LegacyPreview {
    /// Files in the export that go into releases.
    pub fn file_count(&self) -> usize {
        self.files.values().map(Vec::len).sum()
    }
}

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LegacyOutcome {
    pub saved: usize,
    /// Apps whose files are deployed, as their first release.
    pub deployed: Vec<AppName>,
    /// Apps saved without their files in the VM, with why (deploy them again later).
    pub not_deployed: Vec<(AppName, String)>,
}

/// True when `name` looks like a legacy export (a ZIP).
pub fn is_legacy_export(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".zip")
}

fn refused(message: impl Into<String>) -> BackupError {
    BackupError::Invalid {
        problems: vec![Finding::new(Place::Backup, "", message)],
    }
}

/// Reads every regular file of the export: its bytes by entry name. `max_bytes` caps the
/// total read (the deploy limits: the files all go into releases).
fn read_export(bytes: &[u8], max_bytes: u64) -> Result<BTreeMap<String, Vec<u8>>, BackupError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|error| refused(format!("the export is not a readable ZIP: {error}")))?;
    let mut files = BTreeMap::new();
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|error| refused(format!("entry {index} can't be read: {error}")))?;
        if !entry.is_file() {
            continue;
        }
        let name = entry.name().to_owned();
        total = total.saturating_add(entry.size());
        if total > max_bytes {
            return Err(refused(format!(
                "the export holds more than {} MiB of files, the deploy limit",
                max_bytes >> 20
            )));
        }
        let mut content = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry
            .by_ref()
            .take(max_bytes)
            .read_to_end(&mut content)
            .map_err(|error| refused(format!("'{name}' can't be read: {error}")))?;
        files.insert(name, content);
    }
    Ok(files)
}

impl AppManager {
    /// Reads and checks a legacy export and previews its migration. Changes nothing.
    pub async fn preview_legacy(
        &self,
        file_name: String,
        bytes: &[u8],
    ) -> Result<LegacyPreview, BackupError> {
        let max_bytes = self.settings().deploy_limits.max_total_bytes;
        let mut entries = read_export(bytes, max_bytes)?;
        let index = entries
            .get(LEGACY_INDEX)
            .ok_or_else(|| refused(format!("the export has no '{LEGACY_INDEX}'")))?;
        let index = String::from_utf8(index.clone())
            .map_err(|_| refused(format!("'{LEGACY_INDEX}' is not UTF-8 text")))?;
        let legacy: BackupV1 = serde_json::from_str(&index).map_err(|error| {
            refused(format!(
                "'{LEGACY_INDEX}' is not a legacy (version 1) backup: {error}"
            ))
        })?;
        let facts: BTreeMap<String, EntryFacts> = entries
            .iter()
            .map(|(name, content)| {
                (
                    name.clone(),
                    EntryFacts {
                        size: content.len() as u64,
                        sha256: hex::encode(Sha256::digest(content)),
                    },
                )
            })
            .collect();
        let matched = match_legacy_files(&legacy, &facts)
            .map_err(|problems| BackupError::Invalid { problems })?;
        let import = self.preview_import(file_name, &index).await?;
        let mut files = BTreeMap::new();
        for (app, sources) in legacy.apps.iter().zip(matched.by_app) {
            let id = migrate_app(app)?.id;
            let release = sources
                .into_iter()
                .map(|source| SourceFile {
                    bytes: entries.remove(&source.entry).unwrap_or_default(),
                    path: source.path,
                    executable: false,
                })
                .collect();
            files.insert(id, release);
        }
        Ok(LegacyPreview {
            import,
            files,
            left_out: matched.warnings,
        })
    }
}

#[cfg(feature = "hydrate")]
impl AppManager {
    /// Migrates a previewed export: the apps saved in one write (nothing on a failure),
    /// then each app's files deployed as its first release, one after another, `progress`
    /// told the app being deployed.
    pub async fn apply_legacy(
        &self,
        preview: &LegacyPreview,
        progress: impl Fn(&AppName),
    ) -> Result<LegacyOutcome, super::AppsError> {
        use super::bundle::SourceMaterial;
        use super::DeployInput;
        use crate::model::DeploymentStatus;

        let saved = self.apply_import(&preview.import).await?;
        let mut outcome = LegacyOutcome {
            saved,
            ..LegacyOutcome::default()
        };
        for application in &preview.import.plan.applications {
            let Some(files) = preview.files.get(&application.id) else {
                continue;
            };
            progress(&application.name);
            let deployed = self
                .deploy(
                    application.id,
                    DeployInput::Upload(SourceMaterial::Files(files.clone())),
                )
                .await;
            match deployed {
                Ok(operation) if operation.status == DeploymentStatus::Completed => {
                    outcome.deployed.push(application.name.clone());
                }
                Ok(operation) => outcome.not_deployed.push((
                    application.name.clone(),
                    operation
                        .error
                        .unwrap_or_else(|| operation.status.to_string()),
                )),
                Err(error) => outcome
                    .not_deployed
                    .push((application.name.clone(), error.to_string())),
            }
        }
        Ok(outcome)
    }
}

/// The server build's twin: the record and the VM live in the browser.
#[cfg(not(feature = "hydrate"))]
impl AppManager {
    /// Migrates a previewed export (browser only).
    pub async fn apply_legacy(
        &self,
        _preview: &LegacyPreview,
        _progress: impl Fn(&AppName),
    ) -> Result<LegacyOutcome, super::AppsError> {
        Err(super::AppsError::BrowserOnly)
    }
}
