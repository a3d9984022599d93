//! Runs a deployment in the guest as an atomic release (the rules and the scripts are
//! `domain::release`'s; this module carries them out through the VM controller).
//!
//! ```text
//! run: plan everything first (paths, served folder, build, prune list, scripts)
//!   uploading 30  push the bundle's tar.gz into the 9p share (one write)
//!   uploading 40  one EXEC: mkdir releases/<id>, tar -xzf, delete the archive
//!   building  50  (buildConfig.enabled) sh -c "$buildCommand" in the release with its
//!                 variables, output streamed into the log, time limit = the agent's EXEC
//!                 timeout (it kills the process group)
//!   deploying 90  one EXEC: check the served folder, ln -sfn + mv -T `current`, prune
//!   any failure ─▶ one EXEC removes the partial release and re-points `current` at the
//!                  caller's current release: `current` never shows a partial release
//! ```
//!
//! Reporting: [`DeployReporter::step`] gets every status the deployment passes (each change
//! checked by `domain::lifecycle`) with its progress; the terminal status (`completed`
//! with the [`Release`], or `failed` with the [`DeployError`]) and the VM checkpoint that
//! follows are the caller's, who records them.
//!
//! The API (browser build only; the page's actions are its only callers): [`run`] (a new
//! release), [`switch_to`] (roll back), [`apply_sync`] (a watched folder's changes, into the
//! current release in place), [`remove_application_files`] (deleting an app) and
//! [`clean_interrupted`] (after a reload).

#[cfg(feature = "hydrate")]
mod guest;

use uuid::Uuid;

#[cfg(feature = "hydrate")]
pub use guest::{
    apply_sync, clean_interrupted, remove_application_files, run, switch_to, SyncApplied,
};

use crate::client::vm::VmError;
use crate::domain::lifecycle::TransitionError;
use crate::domain::release::ReleaseError;
use crate::model::{DeploymentOperation, DeploymentStatus};

/// Where a deployment reports its progress and log.
pub trait DeployReporter {
    /// The deployment is at `status` (a legal next status) and `progress` percent.
    fn step(&self, status: DeploymentStatus, progress: u8, detail: &str);
    /// A line for the deployment's log.
    fn log(&self, line: &str);
}

/// What the caller knows about the application's releases, for pruning and for putting
/// `current` back after a failure.
#[derive(Debug, Clone, Copy)]
pub struct Retention<'a> {
    /// The application's deployments (any order).
    pub history: &'a [DeploymentOperation],
    /// The deployment whose release `current` points at now.
    pub current: Option<Uuid>,
    /// `releases_kept` from the settings.
    pub releases_kept: u32,
}

impl Retention<'_> {
    /// The current release and its served folder.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn current_release(&self) -> Option<(Uuid, String)> {
        let id = self.current?;
        let served = self
            .history
            .iter()
            .find(|operation| operation.id == id)
            .and_then(|operation| operation.served_directory.clone())
            .unwrap_or_default();
        Some((id, served))
    }
}

/// What a completed deployment left in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The folder, relative to the release, that `current` points at (`""`: the release).
    pub served_directory: String,
    pub file_count: u32,
    pub total_bytes: u64,
    /// Releases deleted to keep `releases_kept`.
    pub pruned: Vec<Uuid>,
}

/// Why a deployment, roll back or removal failed; `current` was left as it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeployError {
    /// The configuration can't be carried out (path, build directory, variables).
    #[error("{0}")]
    Plan(#[from] ReleaseError),
    #[error("could not copy the files into the VM: {0}")]
    Copy(VmError),
    #[error("release folder {0} already exists in the VM; nothing was changed")]
    ReleaseExists(String),
    #[error("unpacking the files in the VM failed: {0}")]
    Extract(String),
    #[error("build timed out after {0} s")]
    BuildTimedOut(u32),
    #[error("build failed with exit code {code}{detail}")]
    BuildFailed { code: i32, detail: String },
    #[error("build was killed by signal {signal}{detail}")]
    BuildKilled { signal: i32, detail: String },
    #[error("the build could not start: {0}")]
    BuildNotStarted(VmError),
    #[error("the build was lost: {0}")]
    BuildLost(String),
    #[error("build directory '{0}' does not exist after the build")]
    BuildDirectoryMissing(String),
    #[error("release {0} is not in the VM any more")]
    ReleaseMissing(Uuid),
    #[error("switching the app to the release failed: {0}")]
    Switch(String),
    #[error("removing the app's files from the VM failed: {0}")]
    Remove(String),
    #[error("cleaning up the interrupted deployment failed: {0}")]
    Cleanup(String),
    /// A guest command could not run.
    #[error("the VM failed: {0}")]
    Vm(VmError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("the changed files were refused: {0}")]
    Changes(crate::client::apps::bundle::BundleError),
}
