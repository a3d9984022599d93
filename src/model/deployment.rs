//! Deployment configuration: where an application's files come from, how they are built,
//! and the progress of a deployment.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AppName, ApplicationId, SealedSecret};

string_enum! {
    /// Where an application's files come from.
    #[derive(Default)]
    pub enum DeploymentSource {
        /// Direct file upload.
        #[default]
        Upload = "upload",
        /// GitHub repository.
        Github = "github",
        /// Remote URL (ZIP or tarball).
        Url = "url",
        /// Local folder synchronization.
        LocalSync = "local-sync",
    }
}

/// How to obtain and place an application's files.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfig {
    pub source_type: DeploymentSource,
    pub source_config: SourceConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_config: Option<BuildConfig>,
    /// Path within the VM filesystem; must stay inside [`DeploymentConfig::APP_AREA`].
    /// Relative paths are taken relative to it.
    pub deployment_path: String,
    /// `index.js`, `app.py`, `package.json`; relative to the deployment path.
    pub entry_point: String,
}

impl DeploymentConfig {
    /// The directory of the VM filesystem that holds all applications.
    pub const APP_AREA: &'static str = "/srv/apps";

    /// The conventional deployment path of an application: `/srv/apps/<name>`.
    pub fn default_path(name: &AppName) -> String {
        format!("{}/{}", Self::APP_AREA, name.normalized())
    }
}

/// A file stored as a blob (browser IndexedDB or server storage), referenced, not embedded.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRef {
    /// Path relative to the application root, `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    pub blob_id: Uuid,
}

/// Source settings; which fields matter depends on [`DeploymentSource`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceConfig {
    /// For upload: the uploaded files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileRef>>,
    /// For GitHub: `owner/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// For GitHub: `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// For GitHub: a commit SHA (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// For GitHub: access token, sealed like every secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SealedSecret>,
    /// For URL: an http or https URL of a ZIP or tarball.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For local sync: the folder's display path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_path: Option<String>,
    /// For local sync: re-deploy on change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_enabled: Option<bool>,
}

/// An optional build step run in the VM after the files are placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildConfig {
    pub enabled: bool,
    /// `npm run build`.
    pub build_command: String,
    /// `dist`, `build`.
    pub build_directory: String,
    pub environment_vars: BTreeMap<String, String>,
    /// Build timeout in seconds.
    pub timeout: u32,
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            enabled: false,
            build_command: String::new(),
            build_directory: String::new(),
            environment_vars: BTreeMap::new(),
            timeout: 600,
        }
    }
}

string_enum! {
    /// Progress of a deployment.
    #[derive(Default)]
    pub enum DeploymentStatus {
        #[default]
        Preparing = "preparing",
        Uploading = "uploading",
        Building = "building",
        Deploying = "deploying",
        Completed = "completed",
        Failed = "failed",
    }
}

/// One deployment of an application, with progress and logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentOperation {
    pub id: Uuid,
    pub application_id: ApplicationId,
    pub status: DeploymentStatus,
    /// Percent, 0–100.
    pub progress: u8,
    pub logs: Vec<String>,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub start_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "crate::model::time::optional")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Extension: where the files came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<DeploymentSource>,
    /// Extension: for a GitHub deploy, the commit SHA the branch or ref resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Extension: the directory, relative to the release, that `current` points at (the
    /// build directory when a build ran; empty for the release itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_directory: Option<String>,
    /// Extension: how many files and bytes the release holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    /// Extension: set when this operation is a roll back to an earlier release (that
    /// deployment's id) rather than a new release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<Uuid>,
}

impl DeploymentOperation {
    /// A deployment of `application_id` that starts preparing at `now`.
    pub fn new(id: Uuid, application_id: ApplicationId, now: DateTime<Utc>) -> Self {
        DeploymentOperation {
            id,
            application_id,
            status: DeploymentStatus::Preparing,
            progress: 0,
            logs: Vec::new(),
            start_time: now,
            end_time: None,
            error: None,
            source_type: None,
            commit: None,
            served_directory: None,
            file_count: None,
            total_bytes: None,
            rollback_to: None,
        }
    }
}
