//! Plans runtime package installs and removals in the guest, and keeps the browser's record of
//! them: which `.deb` files to fetch and verify, the dpkg calls and scripts to run, the
//! operation's progress, and what a page reload in the middle of an operation leaves behind.
//!
//! The browser's installer (`client::packages`) carries these plans out; everything it
//! decides is decided here, so the rules have table-driven tests and no IO.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::lifecycle::StateMachine;
use super::stored_record::{RecordError, RecordFormat};
use crate::model::{
    OperationStatus, PackageId, PackageOperation, PackageOperationKind, PackageStatus,
    RuntimePackage, Sha256,
};

/// Operations kept in the history (oldest dropped first).
pub const MAX_OPERATIONS: usize = 50;
/// Log lines kept per operation (oldest dropped first, with a note).
pub const MAX_LOG_LINES: usize = 1_000;
/// Operations that keep their whole log; older ones keep their last [`OLD_LOG_LINES`].
pub const FULL_LOG_OPERATIONS: usize = 5;
/// Log lines an older operation keeps.
pub const OLD_LOG_LINES: usize = 100;
/// Characters kept of one log line (the rest cut, with `…`).
pub const MAX_LOG_LINE_CHARS: usize = 300;
/// The seed's package metadata budget (~1–5 MB in total): a record at every limit above
/// stays under it.
pub const PACKAGE_RECORD_BUDGET_BYTES: usize = 5 << 20;
/// Name prefix of the `.deb` copies an operation puts at the top of the 9p share (v86's 9p
/// file creation needs an existing parent directory, so they are not put in a subdirectory):
/// `<prefix><operation id>-<file name>`.
pub const GUEST_DEB_PREFIX: &str = "webvm-deb-";

/// Why a catalog entry can't be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The server marked the runtime unusable.
    #[error("{id} is unavailable on this server: {reason}")]
    Unavailable { id: PackageId, reason: String },
    /// A file the runtime lists has no usable checksum: it could not be verified.
    #[error("the catalog lists {file} for {id} without a valid SHA-256, so it can't be verified")]
    MissingChecksum { id: PackageId, file: String },
    /// A file name that could escape its directory or is not a `.deb`.
    #[error("the catalog lists {file:?} for {id}, which is not a plain .deb file name")]
    BadFileName { id: PackageId, file: String },
    /// The dpkg steps don't cover the runtime's files exactly.
    #[error("the catalog's install steps for {id} don't match its files ({detail})")]
    StepsMismatch { id: PackageId, detail: String },
}

/// One `.deb` to download and verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileToFetch {
    /// File name (also its name in the repository URL).
    pub name: String,
    /// Expected SHA-256.
    pub sha256: Sha256,
    /// Size in bytes if the catalog knows it (0 otherwise; the download reports it).
    pub size: u64,
}

/// What installing one runtime does in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallPlan {
    /// The runtime.
    pub package_id: PackageId,
    /// Files to download and verify, in install order (files another installed runtime
    /// already put in the guest are left out).
    pub files: Vec<FileToFetch>,
    /// The `dpkg --install` calls, in order; each lists file names from `files`.
    pub dpkg_steps: Vec<Vec<String>>,
    /// Debian package names this runtime owns, in install order.
    pub debian_packages: Vec<String>,
    /// Runs after dpkg (`sh -c`).
    pub install_script: Option<String>,
    /// Runs last (`sh -c`).
    pub post_install_script: Option<String>,
}

impl InstallPlan {
    /// Bytes to download (the sizes the catalog knows).
    pub fn download_bytes(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }

    /// All the runtime's file names as the record keeps them.
    pub fn file_names(&self) -> Vec<String> {
        self.files.iter().map(|file| file.name.clone()).collect()
    }
}

/// Keeps maintainer scripts from starting services (there is no init system to manage
/// them; the app supervisor starts what it needs). Run before every dpkg install, in the
/// guest and in the layer builder.
pub const POLICY_RC_D: &str = "[ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d; }";

/// The Debian package name in a `.deb` file name (`nginx_1.22.1-9_i386.deb` → `nginx`).
pub fn debian_package_name(file: &str) -> Option<&str> {
    let stem = file.strip_suffix(".deb")?;
    let name = stem.split('_').next()?;
    let valid = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
    valid.then_some(name)
}

fn is_plain_deb_name(name: &str) -> bool {
    !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.')
        && debian_package_name(name).is_some()
}

/// Plans installing `package` (a catalog entry with its `install_steps`), leaving out files
/// in `present`: those another installed runtime already installed.
pub fn plan_install(
    package: &RuntimePackage,
    catalog_error: Option<&str>,
    install_steps: &[Vec<String>],
    file_sizes: &BTreeMap<String, u64>,
    present: &BTreeSet<String>,
) -> Result<InstallPlan, PlanError> {
    let id = package.id.clone();
    if let Some(reason) = catalog_error {
        return Err(PlanError::Unavailable {
            id,
            reason: reason.to_string(),
        });
    }
    let listed: BTreeSet<&str> = package.deb_packages.iter().map(String::as_str).collect();
    let stepped: Vec<&str> = install_steps.iter().flatten().map(String::as_str).collect();
    let stepped_set: BTreeSet<&str> = stepped.iter().copied().collect();
    if stepped.len() != stepped_set.len() || stepped_set != listed {
        let missing: Vec<&str> = listed.difference(&stepped_set).copied().collect();
        let extra: Vec<&str> = stepped_set.difference(&listed).copied().collect();
        return Err(PlanError::StepsMismatch {
            id,
            detail: format!(
                "not in a step: [{}]; not a file of the runtime: [{}]; listed twice: {}",
                missing.join(", "),
                extra.join(", "),
                stepped.len() != stepped_set.len()
            ),
        });
    }
    let mut files = Vec::new();
    for name in &stepped {
        if !is_plain_deb_name(name) {
            return Err(PlanError::BadFileName {
                id,
                file: name.to_string(),
            });
        }
        let sha256 = package
            .checksums
            .get(*name)
            .and_then(|sum| Sha256::parse(&sum.to_ascii_lowercase()).ok())
            .ok_or_else(|| PlanError::MissingChecksum {
                id: id.clone(),
                file: name.to_string(),
            })?;
        if present.contains(*name) {
            continue;
        }
        files.push(FileToFetch {
            name: name.to_string(),
            sha256,
            size: file_sizes.get(*name).copied().unwrap_or(0),
        });
    }
    let fetched: BTreeSet<&str> = files.iter().map(|file| file.name.as_str()).collect();
    let dpkg_steps = install_steps
        .iter()
        .map(|step| {
            step.iter()
                .filter(|name| fetched.contains(name.as_str()))
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|step| !step.is_empty())
        .collect();
    let debian_packages = stepped
        .iter()
        .filter_map(|name| debian_package_name(name))
        .map(str::to_string)
        .collect();
    Ok(InstallPlan {
        package_id: id,
        files,
        dpkg_steps,
        debian_packages,
        install_script: non_empty(package.install_script.as_deref()),
        post_install_script: non_empty(package.post_install_script.as_deref()),
    })
}

fn non_empty(script: Option<&str>) -> Option<String> {
    script
        .map(str::trim)
        .filter(|script| !script.is_empty())
        .map(str::to_string)
}

/// What removing one runtime does in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovalPlan {
    /// The runtime.
    pub package_id: PackageId,
    /// Runs first (`sh -c`); a failure is logged and the removal goes on.
    pub pre_remove_script: Option<String>,
    /// Debian packages to `dpkg --remove`, dependents first. Packages that another installed
    /// runtime also installed stay.
    pub debian_packages: Vec<String>,
}

/// Plans removing a runtime whose install put `installed_files` into the guest; Debian
/// packages of the files in `kept` (other runtimes' files, any version) stay.
pub fn plan_removal(
    package: &RuntimePackage,
    installed_files: &[String],
    kept: &BTreeSet<String>,
) -> RemovalPlan {
    let kept_names: BTreeSet<&str> = kept
        .iter()
        .filter_map(|file| debian_package_name(file))
        .collect();
    let mut debian_packages: Vec<String> = installed_files
        .iter()
        .filter_map(|file| debian_package_name(file))
        .filter(|name| !kept_names.contains(name))
        .map(str::to_string)
        .collect();
    // Installed dependencies first, so remove in reverse.
    debian_packages.reverse();
    let mut seen = BTreeSet::new();
    debian_packages.retain(|name| seen.insert(name.clone()));
    RemovalPlan {
        package_id: package.id.clone(),
        pre_remove_script: non_empty(package.pre_remove_script.as_deref()),
        debian_packages,
    }
}

/// Where an operation is, for its progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Checking the plan.
    Preparing,
    /// `done` of `total` bytes downloaded and verified.
    Downloading { done: u64, total: u64 },
    /// `done` of `total` files pushed into the guest.
    Pushing { done: usize, total: usize },
    /// `done` of `total` dpkg calls finished.
    Installing { done: usize, total: usize },
    /// Install and post-install scripts.
    Scripts,
    /// The pre-remove script (the start of a removal).
    PreRemove,
    /// `dpkg --remove`.
    Removing,
    /// Finished.
    Done,
}

impl Phase {
    /// Progress from 0 to 100: downloads 0–50 (by bytes), pushing 50–60, dpkg 60–95,
    /// scripts 95–99, done 100. Removal: pre-remove script 10, dpkg 50, done 100.
    pub fn percent(self) -> u8 {
        fn share(done: u64, total: u64, from: u64, span: u64) -> u8 {
            let fraction = (done.min(total) * span).checked_div(total).unwrap_or(0);
            (from + fraction) as u8
        }
        match self {
            Phase::Preparing => 0,
            Phase::Downloading { done, total } => share(done, total, 0, 50),
            Phase::Pushing { done, total } => share(done as u64, total as u64, 50, 10),
            Phase::Installing { done, total } => share(done as u64, total as u64, 60, 35),
            Phase::Scripts => 95,
            Phase::PreRemove => 10,
            Phase::Removing => 50,
            Phase::Done => 100,
        }
    }
}

/// Whether a downloaded file's SHA-256 (hex) is the expected one; the error says which file
/// and both values.
pub fn verify_checksum(file: &str, expected: &Sha256, actual: &str) -> Result<(), String> {
    if expected.as_str().eq_ignore_ascii_case(actual) {
        Ok(())
    } else {
        Err(format!(
            "{file} failed verification: its SHA-256 is {actual}, the catalog expects {expected}. \
             Nothing was installed."
        ))
    }
}

/// One Debian package's state as `dpkg-query -W -f '${Package} ${db:Status-Abbrev}\n'`
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpkgState {
    /// Fully installed (`ii`).
    pub installed: bool,
    /// Half-installed, unpacked, half-configured, trigger-pending or reinstall-required.
    pub broken: bool,
}

/// Parses `dpkg-query -W -f '${Package} ${db:Status-Abbrev}\n'` output. Lines it doesn't
/// understand are skipped.
pub fn parse_dpkg_status(text: &str) -> BTreeMap<String, DpkgState> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let name = parts.next()?;
            let abbrev = parts.next()?;
            let name = name.split(':').next()?;
            let mut flags = abbrev.chars();
            let _wanted = flags.next()?;
            let status = flags.next()?;
            let error = flags.next().unwrap_or(' ');
            Some((
                name.to_string(),
                DpkgState {
                    installed: status == 'i' && error == ' ',
                    broken: matches!(status, 'U' | 'F' | 'H' | 'W' | 't') || error == 'R',
                },
            ))
        })
        .collect()
}

/// The browser's record of one runtime in this workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageRecord {
    /// The runtime's status.
    pub status: PackageStatus,
    /// When it was installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_date: Option<DateTime<Utc>>,
    /// How long the install took (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_duration: Option<u64>,
    /// When it was last used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<DateTime<Utc>>,
    /// The version installed.
    #[serde(default)]
    pub version: String,
    /// The `.deb` files this runtime put into the guest (in install order).
    #[serde(default)]
    pub installed_files: Vec<String>,
    /// Why the status is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PackageRecord {
    fn new(status: PackageStatus) -> Self {
        PackageRecord {
            status,
            install_date: None,
            install_duration: None,
            last_used: None,
            version: String::new(),
            installed_files: Vec::new(),
            error: None,
        }
    }
}

/// Why a state change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// Another operation is running.
    #[error("{running} is still being worked on; wait until it finishes")]
    Busy { running: PackageId },
    /// The lifecycle forbids the change.
    #[error("{0}")]
    Transition(String),
    /// No such operation.
    #[error("operation {0} is not running")]
    UnknownOperation(uuid::Uuid),
}

/// `line`, cut at [`MAX_LOG_LINE_CHARS`] characters.
fn bounded_line(line: String) -> String {
    match line.char_indices().nth(MAX_LOG_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Keeps the last `count` lines of `logs`, the first of them saying that lines were dropped.
fn keep_last_lines(logs: &mut Vec<String>, count: usize) {
    let excess = logs.len().saturating_sub(count);
    if excess > 0 {
        logs.drain(..excess);
        logs[0] = "… earlier lines dropped".into();
    }
}

/// The package record's format ([`PACKAGE_BOOK_FORMAT`]).
pub const PACKAGE_BOOK_SCHEMA_VERSION: u32 = 2;
/// How a stored package record is read. Format 1 is the record as written before it carried
/// `schemaVersion`; 1 → 2 only adds the version.
pub const PACKAGE_BOOK_FORMAT: RecordFormat = RecordFormat {
    what: "package record",
    current: PACKAGE_BOOK_SCHEMA_VERSION,
    unversioned: Some(1),
    upgrade: upgrade_package_record,
};

/// Upgrades a package record of format `from` to the next (see [`PACKAGE_BOOK_FORMAT`]).
pub fn upgrade_package_record(
    _object: &mut serde_json::Map<String, serde_json::Value>,
    from: u32,
) -> Result<(), String> {
    match from {
        1 => Ok(()),
        other => Err(format!("format {other} has no upgrade")),
    }
}

/// The browser's package state for one workspace: a record per runtime it touched and the
/// operation history (newest last). Stored as JSON in IndexedDB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageBook {
    pub schema_version: u32,
    /// Records by runtime id; a runtime without a record is `available`.
    #[serde(default)]
    pub records: BTreeMap<PackageId, PackageRecord>,
    /// The operation history, oldest first, at most [`MAX_OPERATIONS`].
    #[serde(default)]
    pub operations: Vec<PackageOperation>,
}

impl Default for PackageBook {
    fn default() -> Self {
        PackageBook {
            schema_version: PACKAGE_BOOK_SCHEMA_VERSION,
            records: BTreeMap::new(),
            operations: Vec::new(),
        }
    }
}

impl PackageBook {
    /// Reads a stored record, upgrading older formats (see [`PACKAGE_BOOK_FORMAT`]).
    pub fn from_json(text: &str) -> Result<PackageBook, RecordError> {
        PACKAGE_BOOK_FORMAT.read(text)
    }

    /// The status of a runtime.
    pub fn status(&self, id: &PackageId) -> PackageStatus {
        self.records
            .get(id)
            .map_or(PackageStatus::Available, |record| record.status)
    }

    /// The running operation, if any.
    pub fn running(&self) -> Option<&PackageOperation> {
        self.operations.iter().rev().find(|operation| {
            matches!(
                operation.status,
                OperationStatus::Pending | OperationStatus::Running
            )
        })
    }

    /// The operation with this id.
    pub fn operation(&self, id: uuid::Uuid) -> Option<&PackageOperation> {
        self.operations.iter().find(|operation| operation.id == id)
    }

    /// Files another runtime may still have in the guest: those of every record other than
    /// `except` that is not `available` (an `error` record may have left its packages).
    /// Removal keeps their Debian packages.
    pub fn files_kept_by_others(&self, except: &PackageId) -> BTreeSet<String> {
        self.records
            .iter()
            .filter(|(id, record)| *id != except && record.status != PackageStatus::Available)
            .flat_map(|(_, record)| record.installed_files.iter().cloned())
            .collect()
    }

    /// Files installed by the installed runtimes other than `except`.
    pub fn files_of_others(&self, except: Option<&PackageId>) -> BTreeSet<String> {
        self.records
            .iter()
            .filter(|(id, record)| Some(*id) != except && record.status == PackageStatus::Installed)
            .flat_map(|(_, record)| record.installed_files.iter().cloned())
            .collect()
    }

    /// Moves a runtime's status along its lifecycle.
    pub fn set_status(&mut self, id: &PackageId, to: PackageStatus) -> Result<(), OperationError> {
        let record = self
            .records
            .entry(id.clone())
            .or_insert_with(|| PackageRecord::new(PackageStatus::Available));
        record.status = record
            .status
            .transition(to)
            .map_err(|error| OperationError::Transition(error.to_string()))?;
        if to != PackageStatus::Error {
            record.error = None;
        }
        Ok(())
    }

    /// Starts an operation (running at once): refused while another one runs. The runtime
    /// moves to `downloading` (install) or `removing` (remove).
    pub fn begin(
        &mut self,
        id: uuid::Uuid,
        package_id: &PackageId,
        kind: PackageOperationKind,
        now: DateTime<Utc>,
    ) -> Result<(), OperationError> {
        if let Some(running) = self.running() {
            return Err(OperationError::Busy {
                running: running.package_id.clone(),
            });
        }
        let to = match kind {
            PackageOperationKind::Install | PackageOperationKind::Update => {
                PackageStatus::Downloading
            }
            PackageOperationKind::Remove => PackageStatus::Removing,
        };
        self.set_status(package_id, to)?;
        let mut operation = PackageOperation::new(id, package_id.clone(), kind, now);
        operation.status = OperationStatus::Running;
        self.operations.push(operation);
        let excess = self.operations.len().saturating_sub(MAX_OPERATIONS);
        self.operations.drain(..excess);
        let older = self.operations.len().saturating_sub(FULL_LOG_OPERATIONS);
        for operation in &mut self.operations[..older] {
            keep_last_lines(&mut operation.logs, OLD_LOG_LINES);
        }
        Ok(())
    }

    /// Appends a log line to an operation (keeping the last [`MAX_LOG_LINES`]).
    pub fn log(&mut self, id: uuid::Uuid, line: impl Into<String>) {
        if let Some(operation) = self.operations.iter_mut().find(|op| op.id == id) {
            let line = line.into();
            operation
                .logs
                .push(match line.char_indices().nth(MAX_LOG_LINE_CHARS) {
                    Some((cut, _)) => format!("{}…", &line[..cut]),
                    None => line,
                });
            keep_last_lines(&mut operation.logs, MAX_LOG_LINES);
        }
    }

    /// Ends an install successfully: the runtime is `installed`, with its date, duration
    /// and files.
    pub fn finish_install(
        &mut self,
        id: uuid::Uuid,
        version: &str,
        installed_files: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<(), OperationError> {
        let package_id = self.running_package(id)?;
        self.set_status(&package_id, PackageStatus::Installed)?;
        self.end(id, OperationStatus::Completed, None, now)?;
        let started = self
            .operation(id)
            .map(|operation| operation.start_time)
            .unwrap_or(now);
        if let Some(record) = self.records.get_mut(&package_id) {
            record.install_date = Some(now);
            record.install_duration = Some((now - started).num_milliseconds().max(0) as u64);
            record.version = version.to_string();
            record.installed_files = installed_files;
        }
        Ok(())
    }

    /// Ends a removal successfully: the runtime is `available` again, its record cleared.
    pub fn finish_removal(
        &mut self,
        id: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), OperationError> {
        let package_id = self.running_package(id)?;
        self.set_status(&package_id, PackageStatus::Available)?;
        self.end(id, OperationStatus::Completed, None, now)?;
        self.records.remove(&package_id);
        Ok(())
    }

    /// Ends an operation with an error: the runtime's status is `error` with the reason,
    /// and the log is kept.
    pub fn fail(
        &mut self,
        id: uuid::Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), OperationError> {
        let package_id = self.end(id, OperationStatus::Failed, Some(reason), now)?;
        let record = self
            .records
            .entry(package_id)
            .or_insert_with(|| PackageRecord::new(PackageStatus::Available));
        // Every running state may fail; force it so a broken record can't hide the error.
        record.status = PackageStatus::Error;
        record.error = Some(reason.to_string());
        Ok(())
    }

    /// The runtime of a running operation.
    fn running_package(&self, id: uuid::Uuid) -> Result<PackageId, OperationError> {
        self.operation(id)
            .filter(|operation| {
                matches!(
                    operation.status,
                    OperationStatus::Pending | OperationStatus::Running
                )
            })
            .map(|operation| operation.package_id.clone())
            .ok_or(OperationError::UnknownOperation(id))
    }

    fn end(
        &mut self,
        id: uuid::Uuid,
        status: OperationStatus,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<PackageId, OperationError> {
        let operation = self
            .operations
            .iter_mut()
            .find(|operation| operation.id == id)
            .filter(|operation| {
                matches!(
                    operation.status,
                    OperationStatus::Pending | OperationStatus::Running
                )
            })
            .ok_or(OperationError::UnknownOperation(id))?;
        operation.status = operation
            .status
            .transition(status)
            .map_err(|error| OperationError::Transition(error.to_string()))?;
        operation.end_time = Some(now);
        if let Some(reason) = error {
            operation.error = Some(reason.to_string());
            operation
                .logs
                .push(bounded_line(format!("error: {reason}")));
            keep_last_lines(&mut operation.logs, MAX_LOG_LINES);
        }
        Ok(operation.package_id.clone())
    }

    /// After a page load: operations that were running when the page went away failed, and
    /// their runtimes are `error` (the guest needs a repair before anything else). Returns
    /// the runtimes concerned.
    pub fn recover_interrupted(&mut self, now: DateTime<Utc>) -> Vec<PackageId> {
        let interrupted: Vec<uuid::Uuid> = self
            .operations
            .iter()
            .filter(|operation| {
                matches!(
                    operation.status,
                    OperationStatus::Pending | OperationStatus::Running
                )
            })
            .map(|operation| operation.id)
            .collect();
        let mut packages = Vec::new();
        for id in interrupted {
            if let Some(operation) = self.operation(id) {
                packages.push(operation.package_id.clone());
            }
            let _ = self.fail(
                id,
                "interrupted: the page was closed or reloaded during the operation",
                now,
            );
        }
        // A record stuck in a running state without an operation is broken too.
        for (id, record) in &mut self.records {
            if matches!(
                record.status,
                PackageStatus::Downloading | PackageStatus::Installing | PackageStatus::Removing
            ) {
                record.status = PackageStatus::Error;
                record.error = Some(
                    "interrupted: the page was closed or reloaded during the operation".into(),
                );
                if !packages.contains(id) {
                    packages.push(id.clone());
                }
            }
        }
        packages
    }

    /// The catalog with this workspace's statuses and install data applied. A runtime the
    /// server marks `error` stays `error` unless it is installed here.
    pub fn apply_to(&self, catalog: &[RuntimePackage]) -> Vec<RuntimePackage> {
        catalog
            .iter()
            .map(|package| {
                let mut package = package.clone();
                if let Some(record) = self.records.get(&package.id) {
                    package.status = record.status;
                    package.install_date = record.install_date;
                    package.install_duration = record.install_duration;
                    package.last_used = record.last_used;
                }
                package
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RuntimeCategory;

    fn id(text: &str) -> PackageId {
        PackageId::parse(text).unwrap()
    }

    fn sum(byte: char) -> String {
        byte.to_string().repeat(64)
    }

    fn nginx() -> (RuntimePackage, Vec<Vec<String>>) {
        let mut package =
            RuntimePackage::new(id("nginx"), "nginx", RuntimeCategory::WebServer, "1.22.1");
        package.deb_packages = vec![
            "nginx-common_1.22.1-9_all.deb".into(),
            "libpcre2-8-0_10.42-1_i386.deb".into(),
            "nginx_1.22.1-9_i386.deb".into(),
        ];
        for (file, byte) in package.deb_packages.iter().zip(['a', 'b', 'c']) {
            package.checksums.insert(file.clone(), sum(byte));
        }
        package.post_install_script = Some(" nginx -t ".into());
        package.pre_remove_script = Some("".into());
        let steps = vec![
            vec!["libpcre2-8-0_10.42-1_i386.deb".into()],
            vec![
                "nginx-common_1.22.1-9_all.deb".into(),
                "nginx_1.22.1-9_i386.deb".into(),
            ],
        ];
        (package, steps)
    }

    #[test]
    fn debian_names_come_from_file_names() {
        let cases = [
            ("nginx_1.22.1-9_i386.deb", Some("nginx")),
            ("libstdc++6_12.2.0-14_i386.deb", Some("libstdc++6")),
            ("perl-base_5.36.0-7%3a1_i386.deb", Some("perl-base")),
            ("nginx.tar", None),
            ("_1.0_i386.deb", None),
            ("Nginx_1_i386.deb", None),
        ];
        for (file, want) in cases {
            assert_eq!(debian_package_name(file), want, "{file}");
        }
    }

    #[test]
    fn install_plans_follow_steps_and_skip_present_files() {
        let (package, steps) = nginx();
        let sizes = BTreeMap::from([("nginx_1.22.1-9_i386.deb".to_string(), 600_000)]);
        let present = BTreeSet::from(["libpcre2-8-0_10.42-1_i386.deb".to_string()]);
        let plan = plan_install(&package, None, &steps, &sizes, &present).unwrap();
        assert_eq!(
            plan.file_names(),
            vec!["nginx-common_1.22.1-9_all.deb", "nginx_1.22.1-9_i386.deb"]
        );
        assert_eq!(plan.dpkg_steps.len(), 1, "the emptied step is dropped");
        assert_eq!(plan.download_bytes(), 600_000);
        assert_eq!(
            plan.debian_packages,
            vec!["libpcre2-8-0", "nginx-common", "nginx"]
        );
        assert_eq!(plan.post_install_script.as_deref(), Some("nginx -t"));
        assert_eq!(plan.install_script, None);
    }

    #[test]
    fn install_plans_refuse_what_cannot_be_verified() {
        let (package, steps) = nginx();
        let none = BTreeSet::new();
        let sizes = BTreeMap::new();
        let mut no_sum = package.clone();
        no_sum.checksums.remove("nginx_1.22.1-9_i386.deb");
        let mut short_sum = package.clone();
        short_sum
            .checksums
            .insert("nginx_1.22.1-9_i386.deb".into(), "abc".into());
        let mut traversal = package.clone();
        traversal.deb_packages[0] = "../etc_1_all.deb".into();
        let traversal_steps = vec![vec![
            "../etc_1_all.deb".to_string(),
            "libpcre2-8-0_10.42-1_i386.deb".into(),
            "nginx_1.22.1-9_i386.deb".into(),
        ]];
        type Case<'a> = (RuntimePackage, Option<&'a str>, Vec<Vec<String>>, &'a str);
        let cases: Vec<Case> = vec![
            (
                package.clone(),
                Some("nginx.deb is unreadable"),
                steps.clone(),
                "unavailable on this server: nginx.deb is unreadable",
            ),
            (no_sum, None, steps.clone(), "without a valid SHA-256"),
            (short_sum, None, steps.clone(), "without a valid SHA-256"),
            (traversal, None, traversal_steps, "not a plain .deb"),
            (
                package.clone(),
                None,
                vec![steps[0].clone()],
                "not in a step: [nginx-common",
            ),
            (
                package.clone(),
                None,
                vec![steps[0].clone(), steps[0].clone(), steps[1].clone()],
                "listed twice: true",
            ),
        ];
        for (package, error, steps, want) in cases {
            let got = plan_install(&package, error, &steps, &sizes, &none)
                .unwrap_err()
                .to_string();
            assert!(got.contains(want), "{got}");
        }
    }

    #[test]
    fn removal_keeps_what_other_runtimes_use_and_goes_in_reverse() {
        let (package, _) = nginx();
        let installed = package.deb_packages.clone();
        let kept = BTreeSet::from(["libpcre2-8-0_10.42-1_i386.deb".to_string()]);
        let plan = plan_removal(&package, &installed, &kept);
        assert_eq!(plan.debian_packages, vec!["nginx", "nginx-common"]);
        assert_eq!(plan.pre_remove_script, None, "blank scripts are skipped");
        // Another runtime's file of a newer version still keeps the package.
        let newer = BTreeSet::from(["libpcre2-8-0_10.43-1_i386.deb".to_string()]);
        let plan = plan_removal(&package, &installed, &newer);
        assert_eq!(plan.debian_packages, vec!["nginx", "nginx-common"]);
    }

    #[test]
    fn progress_moves_through_phases() {
        let cases = [
            (Phase::Preparing, 0),
            (Phase::Downloading { done: 0, total: 0 }, 0),
            (
                Phase::Downloading {
                    done: 50,
                    total: 100,
                },
                25,
            ),
            (
                Phase::Downloading {
                    done: 500,
                    total: 100,
                },
                50,
            ),
            (Phase::Pushing { done: 1, total: 2 }, 55),
            (Phase::Installing { done: 2, total: 2 }, 95),
            (Phase::Scripts, 95),
            (Phase::PreRemove, 10),
            (Phase::Removing, 50),
            (Phase::Done, 100),
        ];
        for (phase, want) in cases {
            assert_eq!(phase.percent(), want, "{phase:?}");
        }
    }

    #[test]
    fn checksums_compare_without_case_and_explain() {
        let expected = Sha256::parse(&sum('a')).unwrap();
        assert!(verify_checksum("a.deb", &expected, &sum('A')).is_ok());
        let error = verify_checksum("a.deb", &expected, &sum('b')).unwrap_err();
        assert!(error.contains("a.deb failed verification") && error.contains(&sum('b')));
    }

    #[test]
    fn dpkg_status_lines_parse() {
        let text = "nginx ii \nlibfoo:i386 iU \nbar iF \nbaz rc \nqux iHR\ngarbage\n";
        let states = parse_dpkg_status(text);
        let cases = [
            ("nginx", true, false),
            ("libfoo", false, true),
            ("bar", false, true),
            ("baz", false, false),
            ("qux", false, true),
        ];
        for (name, installed, broken) in cases {
            assert_eq!(states[name], DpkgState { installed, broken }, "{name}");
        }
        assert!(!states.contains_key("garbage"));
    }

    fn now(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn op(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    #[test]
    fn an_install_runs_through_the_lifecycle() {
        let mut book = PackageBook::default();
        let nginx = id("nginx");
        book.begin(op(1), &nginx, PackageOperationKind::Install, now(0))
            .unwrap();
        assert_eq!(book.status(&nginx), PackageStatus::Downloading);
        let busy = book.begin(op(2), &id("curl"), PackageOperationKind::Install, now(1));
        assert_eq!(
            busy,
            Err(OperationError::Busy {
                running: nginx.clone()
            })
        );
        book.set_status(&nginx, PackageStatus::Installing).unwrap();
        book.log(op(1), "dpkg: ok");
        book.finish_install(op(1), "1.22.1", vec!["nginx_1_i386.deb".into()], now(12))
            .unwrap();
        let record = &book.records[&nginx];
        assert_eq!(record.status, PackageStatus::Installed);
        assert_eq!(record.install_duration, Some(12_000));
        assert_eq!(record.install_date, Some(now(12)));
        let operation = book.operation(op(1)).unwrap();
        assert_eq!(operation.status, OperationStatus::Completed);
        assert_eq!(operation.logs, vec!["dpkg: ok"]);
        assert!(book.files_of_others(None).contains("nginx_1_i386.deb"));
        assert!(book.files_of_others(Some(&nginx)).is_empty());
        assert!(book
            .files_kept_by_others(&id("curl"))
            .contains("nginx_1_i386.deb"));
        assert!(book.files_kept_by_others(&nginx).is_empty());
        // Removal returns it to available and clears the record.
        book.begin(op(3), &nginx, PackageOperationKind::Remove, now(20))
            .unwrap();
        assert_eq!(book.status(&nginx), PackageStatus::Removing);
        book.finish_removal(op(3), now(21)).unwrap();
        assert_eq!(book.status(&nginx), PackageStatus::Available);
        assert!(book.finish_removal(op(3), now(22)).is_err(), "ended twice");
    }

    #[test]
    fn failures_keep_the_log_and_allow_a_retry() {
        let mut book = PackageBook::default();
        let demo = id("tampered-demo");
        book.begin(op(1), &demo, PackageOperationKind::Install, now(0))
            .unwrap();
        book.log(op(1), "downloading");
        book.fail(op(1), "bad checksum", now(1)).unwrap();
        assert_eq!(book.status(&demo), PackageStatus::Error);
        assert_eq!(book.records[&demo].error.as_deref(), Some("bad checksum"));
        let operation = book.operation(op(1)).unwrap();
        assert_eq!(operation.status, OperationStatus::Failed);
        assert_eq!(operation.logs, vec!["downloading", "error: bad checksum"]);
        // Retry from error.
        book.begin(op(2), &demo, PackageOperationKind::Install, now(5))
            .unwrap();
        assert_eq!(book.status(&demo), PackageStatus::Downloading);
        assert_eq!(book.records[&demo].error, None);
    }

    #[test]
    fn a_reload_mid_operation_marks_it_failed() {
        let mut book = PackageBook::default();
        let nginx = id("nginx");
        book.begin(op(1), &nginx, PackageOperationKind::Install, now(0))
            .unwrap();
        book.set_status(&nginx, PackageStatus::Installing).unwrap();
        let json = serde_json::to_string(&book).unwrap();
        let mut reloaded: PackageBook = serde_json::from_str(&json).unwrap();
        assert_eq!(reloaded.recover_interrupted(now(30)), vec![nginx.clone()]);
        assert_eq!(reloaded.status(&nginx), PackageStatus::Error);
        assert!(reloaded.records[&nginx]
            .error
            .as_deref()
            .unwrap()
            .contains("interrupted"));
        assert_eq!(reloaded.running(), None);
        assert!(
            reloaded.recover_interrupted(now(31)).is_empty(),
            "only once"
        );
    }

    #[test]
    fn history_and_logs_are_bounded() {
        let mut book = PackageBook::default();
        let curl = id("curl");
        for n in 0..(MAX_OPERATIONS as u128 + 5) {
            book.begin(op(n), &curl, PackageOperationKind::Install, now(0))
                .unwrap();
            book.fail(op(n), "x", now(1)).unwrap();
        }
        assert_eq!(book.operations.len(), MAX_OPERATIONS);
        let last = op(MAX_OPERATIONS as u128 + 4);
        book.begin(op(999), &curl, PackageOperationKind::Install, now(2))
            .unwrap();
        for line in 0..(MAX_LOG_LINES + 10) {
            book.log(op(999), format!("line {line}"));
        }
        let logs = &book.operation(op(999)).unwrap().logs;
        assert_eq!(logs.len(), MAX_LOG_LINES);
        assert!(logs[0].contains("dropped"));
        assert!(book.operation(last).is_some());
    }

    #[test]
    fn the_catalog_shows_this_workspace_statuses() {
        let (package, _) = nginx();
        let mut book = PackageBook::default();
        book.begin(op(1), &package.id, PackageOperationKind::Install, now(0))
            .unwrap();
        book.set_status(&package.id, PackageStatus::Installing)
            .unwrap();
        book.finish_install(op(1), "1.22.1", vec![], now(3))
            .unwrap();
        let shown = book.apply_to(std::slice::from_ref(&package));
        assert_eq!(shown[0].status, PackageStatus::Installed);
        assert_eq!(shown[0].install_duration, Some(3_000));
    }

    #[test]
    fn package_records_before_versions_are_upgraded_and_newer_ones_refused() {
        let written = serde_json::to_string(&PackageBook::default()).expect("serializes");
        assert!(written.contains("\"schemaVersion\":2"), "{written}");
        let cases: [(&str, Result<usize, &str>); 4] = [
            // Format 1: the record as written before it carried a version.
            (r#"{"records":{},"operations":[]}"#, Ok(0)),
            (r#"{"schemaVersion":2,"records":{},"operations":[]}"#, Ok(0)),
            (r#"{"schemaVersion":3,"records":{}}"#, Err("newer version")),
            ("{", Err("package record is unreadable")),
        ];
        for (text, expected) in cases {
            match (PackageBook::from_json(text), expected) {
                (Ok(book), Ok(operations)) => {
                    assert_eq!(book.schema_version, PACKAGE_BOOK_SCHEMA_VERSION);
                    assert_eq!(book.operations.len(), operations);
                }
                (Err(error), Err(expected)) => {
                    assert!(error.to_string().contains(expected), "{text}: {error}")
                }
                (found, expected) => panic!("{text}: {found:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn a_record_at_every_limit_stays_within_the_package_metadata_budget() {
        let mut book = PackageBook::default();
        let long_line = "x".repeat(MAX_LOG_LINE_CHARS * 3);
        for index in 0..(MAX_OPERATIONS + 7) {
            let operation = uuid::Uuid::from_u128(index as u128 + 1);
            book.begin(
                operation,
                &id("nginx"),
                PackageOperationKind::Install,
                now(0),
            )
            .expect("begins");
            for _ in 0..(MAX_LOG_LINES + 5) {
                book.log(operation, long_line.as_str());
            }
            book.fail(operation, "stopped", now(1)).expect("fails");
        }
        assert_eq!(book.operations.len(), MAX_OPERATIONS);
        let newest = book.operations.last().expect("one");
        assert_eq!(newest.logs.len(), MAX_LOG_LINES);
        assert_eq!(newest.logs[0], "… earlier lines dropped");
        assert_eq!(newest.logs[1].chars().count(), MAX_LOG_LINE_CHARS + 1);
        assert_eq!(book.operations[0].logs.len(), OLD_LOG_LINES);
        let bytes = serde_json::to_string(&book).expect("serializes").len();
        assert!(bytes < PACKAGE_RECORD_BUDGET_BYTES, "{bytes} bytes");
    }
}
