//! Backup export and import with format versions, v1 → v2 migration, and the migration of
//! legacy apps (`migrateApp`).
//!
//! * **Format versions.** `version` is the backup *format*: `"2"` is the current
//!   [`ApplicationServerBackup`]; `"1"` is the legacy app-hosting export ([`BackupV1`]: a
//!   timestamp and a list of [`LegacyApp`]s), migrated on import.
//! * **Import is all or nothing.** [`import_backup`] parses every part separately and runs
//!   every validation rule, then returns either a new validated value (with the warnings)
//!   or [`BackupError::Invalid`] listing *every* problem. It changes nothing; applying the
//!   value is the caller's job.
//! * **Secrets.** A backup never carries a secret in clear text, by construction: secret
//!   environment values and GitHub tokens are [`crate::model::SealedSecret`]s, which cannot
//!   hold clear text, so a backup with a clear-text secret fails to parse and is refused.
//!   Export keeps the sealed values (they are useless without the key, which never leaves
//!   the browser that made it); [`ExportOptions::include_sealed_secrets`] `false` drops them
//!   for a backup meant for another browser, where they would have to be entered again.
//! * **History.** Logs and performance history are runtime data and are left out unless
//!   [`ExportOptions::include_history`] is set, which keeps a backup near the seed's
//!   budget of about 1 KB per application.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ports::allocate_port;
use super::validation::{slugify, unique_name};
use crate::model::{
    AppName, Application, ApplicationRuntime, ApplicationServerBackup, ApplicationServerSettings,
    ApplicationStatus, DeploymentConfig, DeploymentSource, ExecutionConfig, LegacyApp, PackageId,
    RuntimeCompatibility, RuntimePackage, SourceConfig, WebVMStatus,
};

/// The format written by [`export_backup`].
pub const CURRENT_FORMAT_VERSION: &str = "2";
/// The legacy app-hosting export format.
pub const LEGACY_FORMAT_VERSION: &str = "1";
/// Runtime a migrated static site is served with.
pub const LEGACY_STATIC_RUNTIME: &str = "nginx";
/// Runtime a migrated Node.js app (one with `package.json`) needs.
pub const LEGACY_NODE_RUNTIME: &str = "nodejs-18";
/// Runtime a migrated Python app (one with `app.py` or `main.py`) needs.
pub const LEGACY_PYTHON_RUNTIME: &str = "python-311";

/// Why a backup could not be written, read or migrated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    #[error("backup is not valid JSON: {0}")]
    Malformed(String),
    #[error("backup refused, {} problem(s): {}", .problems.len(), join_findings(.problems))]
    Invalid { problems: Vec<Finding> },
    #[error("legacy app '{name}' cannot be migrated: {reason}")]
    Migration { name: String, reason: String },
    #[error("backup could not be written: {0}")]
    Write(String),
    /// A backup archive that can't be read or doesn't match its manifest.
    #[error("{0}")]
    Archive(String),
}

fn join_findings(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The v1 (legacy app-hosting) backup shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupV1 {
    pub version: String,
    pub timestamp: DateTime<Utc>,
    pub apps: Vec<LegacyApp>,
}

/// What an export includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOptions {
    /// Keep each app's recent logs and performance history.
    pub include_history: bool,
    /// Keep sealed secrets (drop them for a backup meant for another browser).
    pub include_sealed_secrets: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            include_history: false,
            include_sealed_secrets: true,
        }
    }
}

/// The state an export is made from.
#[derive(Debug, Clone, Copy)]
pub struct BackupSource<'a> {
    pub webvm_state: &'a WebVMStatus,
    pub applications: &'a [Application],
    /// The installed packages (their catalog entries, status `installed`).
    pub packages: &'a [RuntimePackage],
    pub settings: &'a ApplicationServerSettings,
}

/// Makes a current-format backup of `source` at `now`.
pub fn export_backup(
    source: BackupSource<'_>,
    now: DateTime<Utc>,
    options: ExportOptions,
) -> ApplicationServerBackup {
    let applications = source
        .applications
        .iter()
        .map(|application| {
            let mut application = application.clone();
            if !options.include_history {
                application.metrics.recent_logs.clear();
                application.metrics.performance_history.clear();
            }
            if !options.include_sealed_secrets {
                application.execution.secret_environment.clear();
                application.deployment.source_config.token = None;
            }
            application
        })
        .collect();
    ApplicationServerBackup {
        version: CURRENT_FORMAT_VERSION.to_owned(),
        timestamp: now,
        webvm_state: source.webvm_state.clone(),
        applications,
        packages: source.packages.to_vec(),
        settings: source.settings.clone(),
    }
}

/// The backup as JSON text.
pub fn to_json(backup: &ApplicationServerBackup) -> Result<String, BackupError> {
    serde_json::to_string(backup).map_err(|error| BackupError::Write(error.to_string()))
}

/// Migrates a v1 backup: each legacy app through [`migrate_app`], names made unique, and
/// ports given from the default range.
pub fn migrate_v1(legacy: &BackupV1) -> Result<ApplicationServerBackup, BackupError> {
    migrate_v1_around(legacy, &BTreeSet::new())
}

/// [`migrate_v1`], giving ports that `taken` (the workspace the backup goes into) lacks.
pub fn migrate_v1_around(
    legacy: &BackupV1,
    taken: &BTreeSet<crate::model::Port>,
) -> Result<ApplicationServerBackup, BackupError> {
    let settings = ApplicationServerSettings::default();
    let mut applications: Vec<Application> = Vec::new();
    let mut problems = Vec::new();
    let mut ports = taken.clone();
    for app in &legacy.apps {
        let mut migrated = match migrate_app(app) {
            Ok(migrated) => migrated,
            Err(error) => {
                problems.push(Finding::new(Place::Backup, "apps", error.to_string()));
                continue;
            }
        };
        let taken = |name: &str| {
            applications
                .iter()
                .any(|other| other.name.as_str().eq_ignore_ascii_case(name))
        };
        let name = unique_name(migrated.name.as_str(), taken);
        if let Ok(name) = AppName::parse(&name) {
            migrated.deployment.deployment_path = DeploymentConfig::default_path(&name);
            migrated.name = name;
        }
        match allocate_port(settings.port_range, &ports) {
            Ok(port) => {
                ports.insert(port);
                migrated.execution.port = Some(port);
            }
            Err(error) => problems.push(Finding::new(
                Place::Backup,
                "apps",
                format!("legacy app '{}': {error}", app.name),
            )),
        }
        applications.push(migrated);
    }
    if !problems.is_empty() {
        return Err(BackupError::Invalid { problems });
    }
    Ok(ApplicationServerBackup {
        version: CURRENT_FORMAT_VERSION.to_owned(),
        timestamp: legacy.timestamp,
        webvm_state: WebVMStatus::default(),
        applications,
        packages: Vec::new(),
        settings,
    })
}

/// The seed's `migrateApp`: a legacy app becomes a deployed upload app. Its name is kept
/// if valid, else made URL-safe ([`slugify`]); its kind is guessed from its files
/// (`package.json` → Node.js, `app.py`/`main.py` → Python, else a static site served by
/// nginx). The id is derived from the legacy name and deploy time, so migrating twice
/// gives the same id. No port is given here (see [`migrate_v1`]).
pub fn migrate_app(legacy: &LegacyApp) -> Result<Application, BackupError> {
    let refuse = |reason: &str| BackupError::Migration {
        name: legacy.name.clone(),
        reason: reason.to_owned(),
    };
    if legacy.files.is_empty() {
        return Err(refuse("it has no files"));
    }
    let name = AppName::parse(&legacy.name)
        .or_else(|_| AppName::parse(&slugify(&legacy.name)))
        .map_err(|error| refuse(&error.to_string()))?;
    let has = |path: &str| legacy.files.iter().any(|file| file.path == path);
    let (runtime, command, arguments, entry_point) = if has("package.json") {
        (
            LEGACY_NODE_RUNTIME,
            "npm",
            vec!["start".to_owned()],
            "package.json",
        )
    } else if let Some(entry) = ["app.py", "main.py"].into_iter().find(|path| has(path)) {
        (
            LEGACY_PYTHON_RUNTIME,
            "python3",
            vec![entry.to_owned()],
            entry,
        )
    } else {
        let entry = if has("index.html") {
            "index.html"
        } else {
            legacy
                .files
                .first()
                .map_or("index.html", |file| file.path.as_str())
        };
        (
            LEGACY_STATIC_RUNTIME,
            "nginx",
            vec!["-g".to_owned(), "daemon off;".to_owned()],
            entry,
        )
    };
    let runtime = PackageId::parse(runtime).map_err(|error| refuse(&error.to_string()))?;
    let deployment = DeploymentConfig {
        source_type: DeploymentSource::Upload,
        source_config: SourceConfig {
            files: Some(legacy.files.clone()),
            ..SourceConfig::default()
        },
        build_config: None,
        deployment_path: DeploymentConfig::default_path(&name),
        entry_point: entry_point.to_owned(),
    };
    let execution = ExecutionConfig {
        command: command.to_owned(),
        arguments,
        auto_restart: true,
        ..ExecutionConfig::default()
    };
    let id = legacy_id(legacy);
    let mut application = Application::new(id, name, deployment, execution, legacy.deployed_at);
    application.runtime = ApplicationRuntime {
        required_runtimes: vec![runtime],
        ..ApplicationRuntime::default()
    };
    application.runtime_status = RuntimeCompatibility::unchecked(legacy.last_updated);
    application.status = ApplicationStatus::Deployed;
    application.last_deployed = legacy.last_updated;
    Ok(application)
}

/// A stable UUID (version 8) from the legacy name and deploy time (FNV-1a, 128 bit).
fn legacy_id(legacy: &LegacyApp) -> Uuid {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let key = format!(
        "legacy-app:{}:{}",
        legacy.name,
        legacy.deployed_at.to_rfc3339()
    );
    let hash = key.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u128::from(byte)).wrapping_mul(PRIME)
    });
    uuid::Builder::from_custom_bytes(hash.to_be_bytes()).into_uuid()
}

pub mod archive;
mod import;
pub mod legacy;
mod plan;

pub use import::{
    import_backup, import_backup_into, needs_files, validate_backup, Finding, ImportedBackup, Place,
};
pub use plan::{plan_import, prepare_for_this_vm, ImportPlan, Replacement, Workspace};

#[cfg(test)]
mod tests;
