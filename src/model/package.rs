//! The runtime package model: catalog entries, their status and package operations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::PackageId;

string_enum! {
    /// What kind of software a runtime package provides.
    #[derive(Default)]
    pub enum RuntimeCategory {
        /// nginx, apache.
        WebServer = "web-server",
        /// nodejs, python, deno.
        #[default]
        Runtime = "runtime",
        /// nextjs, express, flask.
        Framework = "framework",
        /// postgresql, sqlite.
        Database = "database",
        /// git, curl, development tools.
        Tool = "tool",
    }
}

string_enum! {
    /// Where a runtime package is in its install/remove lifecycle.
    #[derive(Default)]
    pub enum PackageStatus {
        /// Ready for installation.
        #[default]
        Available = "available",
        /// Package files being transferred.
        Downloading = "downloading",
        /// Installation in progress.
        Installing = "installing",
        /// Successfully installed and ready.
        Installed = "installed",
        /// Removal in progress.
        Removing = "removing",
        /// Installation or removal failed.
        Error = "error",
    }
}

/// A runtime package of the catalog: a named group of `.deb` files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimePackage {
    /// `nodejs-20`, `python-311`, `nginx`.
    pub id: PackageId,
    /// `Node.js 20.x LTS`.
    pub name: String,
    pub description: String,
    pub category: RuntimeCategory,
    /// Version of the main program; Debian versions are read leniently as semver.
    pub version: String,
    /// Other runtime packages required.
    pub dependencies: Vec<PackageId>,
    /// Packages that cannot coexist with this one.
    pub conflicts: Vec<PackageId>,
    /// `.deb` files to install, in the catalog's order.
    pub deb_packages: Vec<String>,
    /// Total download size in MB.
    pub size: f64,
    /// Size after installation in MB.
    pub extracted_size: f64,
    /// File name → SHA-256 hex digest.
    pub checksums: BTreeMap<String, String>,
    pub status: PackageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_script: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_install_script: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_remove_script: Option<String>,
    /// Services managed by this package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "crate::model::time::optional")]
    pub install_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "crate::model::time::optional")]
    pub last_used: Option<DateTime<Utc>>,
    /// Milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_duration: Option<u64>,
}

impl RuntimePackage {
    /// A catalog entry with no dependencies, conflicts or files, status `available`.
    pub fn new(id: PackageId, name: &str, category: RuntimeCategory, version: &str) -> Self {
        RuntimePackage {
            id,
            name: name.to_owned(),
            description: String::new(),
            category,
            version: version.to_owned(),
            dependencies: Vec::new(),
            conflicts: Vec::new(),
            deb_packages: Vec::new(),
            size: 0.0,
            extracted_size: 0.0,
            checksums: BTreeMap::new(),
            status: PackageStatus::Available,
            install_script: None,
            post_install_script: None,
            pre_remove_script: None,
            service_names: None,
            install_date: None,
            last_used: None,
            install_duration: None,
        }
    }
}

string_enum! {
    /// What a package operation does.
    pub enum PackageOperationKind {
        Install = "install",
        Remove = "remove",
        Update = "update",
    }
}

string_enum! {
    /// Progress of a package operation.
    #[derive(Default)]
    pub enum OperationStatus {
        #[default]
        Pending = "pending",
        Running = "running",
        Completed = "completed",
        Failed = "failed",
    }
}

/// One install, remove or update of a runtime package, with its logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageOperation {
    pub id: Uuid,
    pub package_id: PackageId,
    pub operation: PackageOperationKind,
    pub status: OperationStatus,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub start_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "crate::model::time::optional")]
    pub end_time: Option<DateTime<Utc>>,
    pub logs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PackageOperation {
    /// A pending operation started at `now`.
    pub fn new(
        id: Uuid,
        package_id: PackageId,
        operation: PackageOperationKind,
        now: DateTime<Utc>,
    ) -> Self {
        PackageOperation {
            id,
            package_id,
            operation,
            status: OperationStatus::Pending,
            start_time: now,
            end_time: None,
            logs: Vec::new(),
            error: None,
        }
    }
}
