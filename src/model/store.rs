//! The application state store, the dependency graph record and the global settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Application, ApplicationId, DeploymentOperation, PackageId, Port, RestartPolicy};

/// The browser's store of applications.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStore {
    /// Application id → application.
    pub applications: BTreeMap<ApplicationId, Application>,
    pub dependency_graph: DependencyGraph,
    /// Deployment id → deployment.
    pub deployments: BTreeMap<uuid::Uuid, DeploymentOperation>,
    pub settings: ApplicationServerSettings,
}

/// Who depends on what, as recorded data (computed by `domain::graph`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyGraph {
    /// Runtime package → ids of the applications that require it.
    pub runtime_dependencies: BTreeMap<PackageId, Vec<ApplicationId>>,
    /// Package → the packages it depends on.
    pub package_dependencies: BTreeMap<PackageId, Vec<PackageId>>,
}

string_enum! {
    /// The x86 emulator that runs the VM.
    #[derive(Default)]
    pub enum VmEngine {
        /// v86, self-hosted: offline, snapshots, page → guest TCP.
        #[default]
        V86 = "v86",
        /// CheerpX from its vendor's CDN: no snapshots, no page → guest TCP.
        Cheerpx = "cheerpx",
    }
}

impl VmEngine {
    /// A name for people.
    pub fn label(self) -> &'static str {
        match self {
            VmEngine::V86 => "v86",
            VmEngine::Cheerpx => "CheerpX",
        }
    }
}

/// Memory the VM boots with, MB: the v86 machine's RAM and the default of
/// [`ApplicationServerSettings::vm_memory_mb`].
pub const VM_MEMORY_MB: u32 = 256;

string_enum! {
    /// Colour scheme of the UI.
    #[derive(Default)]
    pub enum Theme {
        #[default]
        System = "system",
        Light = "light",
        Dark = "dark",
    }
}

/// An inclusive range of ports that applications are given from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRange {
    pub start: Port,
    pub end: Port,
}

impl PortRange {
    /// True when `port` lies within the range.
    pub fn contains(&self, port: Port) -> bool {
        self.start <= port && port <= self.end
    }
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            start: Port::parse(8000).unwrap_or(Port::MIN),
            end: Port::parse(8999).unwrap_or(Port::MAX),
        }
    }
}

/// Global settings of the application server. The seed spells out none of its fields, so
/// each one that is absent (a backup from another implementation) takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApplicationServerSettings {
    pub engine: VmEngine,
    /// Memory given to the VM, MB.
    pub vm_memory_mb: u64,
    /// Ports given to new applications.
    pub port_range: PortRange,
    /// Restart policy of new applications.
    pub default_restart_policy: RestartPolicy,
    /// Log entries kept per application (the seed's rolling buffer, at most 1000).
    pub max_log_entries: u32,
    /// Hours of performance history kept (the seed's 24 h).
    pub metrics_retention_hours: u32,
    /// Seconds between performance samples (the seed's 5 minutes).
    pub metrics_sample_interval_seconds: u32,
    /// Hibernate the VM after this many idle minutes; absent = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_hibernate_minutes: Option<u32>,
    /// Start the applications that were running when the page was closed.
    pub restore_running_apps: bool,
    pub theme: Theme,
    /// Limits on what one deploy may bring into the VM.
    #[serde(default)]
    pub deploy_limits: DeployLimits,
    /// Releases kept per application for roll back (the current one included).
    #[serde(default = "default_releases_kept")]
    pub releases_kept: u32,
}

fn default_releases_kept() -> u32 {
    3
}

/// Limits on one deploy's files (uploads, archives, fetched URLs and repositories).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployLimits {
    /// Total bytes of the files, uncompressed.
    pub max_total_bytes: u64,
    /// Number of entries (files, directories, links).
    pub max_files: u32,
}

impl Default for DeployLimits {
    /// 200 MiB and 20,000 files.
    fn default() -> Self {
        DeployLimits {
            max_total_bytes: 200 * 1024 * 1024,
            max_files: 20_000,
        }
    }
}

impl Default for ApplicationServerSettings {
    fn default() -> Self {
        ApplicationServerSettings {
            engine: VmEngine::V86,
            vm_memory_mb: u64::from(VM_MEMORY_MB),
            port_range: PortRange::default(),
            default_restart_policy: RestartPolicy::OnFailure,
            max_log_entries: 1000,
            metrics_retention_hours: 24,
            metrics_sample_interval_seconds: 300,
            auto_hibernate_minutes: None,
            restore_running_apps: true,
            theme: Theme::System,
            deploy_limits: DeployLimits::default(),
            releases_kept: default_releases_kept(),
        }
    }
}
