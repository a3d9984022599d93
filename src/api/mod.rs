//! Thin server functions shared by SSR and the hydrated client: check input, read storage, map errors.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::model::catalog::RuntimeCatalog;
use crate::model::{
    Application, ApplicationServerSettings, ApplicationStatus, RuntimePackage, WebVMStatus,
};

pub mod applications;
#[cfg(feature = "ssr")]
pub mod context;
pub mod devices;
pub mod server_link;
pub mod status_pages;

pub use status_pages::{public_status, PublicStatusData};

/// What the Dashboard shows besides the live VM: the workspace's mirrored state at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardData {
    pub has_workspace: bool,
    pub applications_total: usize,
    pub applications_running: usize,
    pub packages_in_catalog: usize,
    pub packages_installed: usize,
    pub last_vm_status: Option<WebVMStatus>,
    pub server_version: String,
}

/// One row of the application registry: what a list needs, never environment values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSummary {
    pub name: String,
    pub description: Option<String>,
    pub status: ApplicationStatus,
    pub required_runtimes: Vec<String>,
    pub port: Option<u16>,
    pub last_deployed: chrono::DateTime<chrono::Utc>,
}

impl From<&Application> for ApplicationSummary {
    fn from(application: &Application) -> Self {
        Self {
            name: application.name.to_string(),
            description: application.description.clone(),
            status: application.status,
            required_runtimes: application
                .runtime
                .required_runtimes
                .iter()
                .map(ToString::to_string)
                .collect(),
            port: application.execution.port.map(u16::from),
            last_deployed: application.last_deployed,
        }
    }
}

/// Settings as the Settings page shows them, with facts about the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub settings: ApplicationServerSettings,
    pub has_workspace: bool,
    pub database_backend: String,
    pub server_version: String,
}

/// What a backup of this workspace would hold right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupContents {
    pub has_workspace: bool,
    pub format_version: String,
    pub applications: usize,
    pub installed_packages: usize,
}

/// The caller's workspace as the server's mirror holds it, as one JSON backup (the seed's
/// `ApplicationServerBackup`, made by `domain::backup`): for a browser whose own data is
/// gone. A GET, so a plain link downloads it. Sealed secrets stay sealed; no history.
#[server(prefix = "/api", endpoint = "server_backup", input = server_fn::codec::GetUrl)]
pub async fn server_backup() -> Result<crate::model::ApplicationServerBackup, AppError> {
    use crate::domain::backup::{export_backup, BackupSource, ExportOptions};
    use crate::model::PackageStatus;

    let storage = context::storage()?;
    let Some(workspace) = context::current_workspace(&storage).await? else {
        return Err(AppError::not_found(
            "This browser's workspace on the server",
        ));
    };
    let applications = storage.list_applications(workspace).await?;
    let installed = storage.installed_package_ids(workspace).await?;
    let packages: Vec<RuntimePackage> = storage
        .list_runtime_packages()
        .await?
        .into_iter()
        .filter(|package| installed.iter().any(|id| id == package.id.as_str()))
        .map(|mut package| {
            package.status = PackageStatus::Installed;
            package
        })
        .collect();
    let webvm_state = storage
        .workspace_vm_status(workspace)
        .await?
        .unwrap_or_default();
    let settings = storage
        .workspace_settings(workspace)
        .await?
        .unwrap_or_default();
    let source = BackupSource {
        webvm_state: &webvm_state,
        applications: &applications,
        packages: &packages,
        settings: &settings,
    };
    Ok(export_backup(
        source,
        chrono::Utc::now(),
        ExportOptions::default(),
    ))
}

/// Counts and the VM status the browser last mirrored, for the Dashboard.
#[server(prefix = "/api", endpoint = "dashboard_summary")]
pub async fn dashboard_summary() -> Result<DashboardData, AppError> {
    let storage = context::storage()?;
    let workspace = context::current_workspace(&storage).await?;
    let catalog = storage.list_runtime_packages().await?;
    let (applications, installed, last_vm_status) = match workspace {
        Some(id) => (
            storage.list_applications(id).await?,
            storage.installed_package_ids(id).await?,
            storage.workspace_vm_status(id).await?,
        ),
        None => (Vec::new(), Vec::new(), None),
    };
    Ok(DashboardData {
        has_workspace: workspace.is_some(),
        applications_total: applications.len(),
        applications_running: applications
            .iter()
            .filter(|application| application.status == ApplicationStatus::Running)
            .count(),
        packages_in_catalog: catalog.len(),
        packages_installed: installed.len(),
        last_vm_status,
        server_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// The runtime package catalog.
#[server(prefix = "/api", endpoint = "list_packages")]
pub async fn list_packages() -> Result<Vec<RuntimePackage>, AppError> {
    let storage = context::storage()?;
    Ok(storage.list_runtime_packages().await?)
}

/// The runtime catalog with each entry's error reason and `dpkg -i` steps.
#[server(prefix = "/api", endpoint = "package_catalog")]
pub async fn package_catalog() -> Result<RuntimeCatalog, AppError> {
    let storage = context::storage()?;
    Ok(RuntimeCatalog {
        entries: storage.list_package_catalog().await?,
        files_base_url: crate::server::packages::http::FILES_BASE_URL.to_string(),
        layers_base_url: crate::server::packages::layers::LAYERS_BASE_URL.to_string(),
    })
}

/// The application registry of the caller's workspace.
#[server(prefix = "/api", endpoint = "list_applications")]
pub async fn list_applications() -> Result<Vec<ApplicationSummary>, AppError> {
    let storage = context::storage()?;
    let Some(workspace) = context::current_workspace(&storage).await? else {
        return Ok(Vec::new());
    };
    let applications = storage.list_applications(workspace).await?;
    Ok(applications.iter().map(ApplicationSummary::from).collect())
}

/// One application of the caller's workspace, by name.
#[server(prefix = "/api", endpoint = "get_application")]
pub async fn get_application(name: String) -> Result<Application, AppError> {
    let not_found = || AppError::not_found(format!("The application “{name}”"));
    // A name that breaks the naming rules can't exist: no query for it.
    if crate::model::AppName::parse(&name).is_err() {
        return Err(not_found());
    }
    let storage = context::storage()?;
    let Some(workspace) = context::current_workspace(&storage).await? else {
        return Err(not_found());
    };
    // Secret values are stored sealed (ciphertext only), so the document can be returned as is.
    storage
        .application_by_name(workspace, &name)
        .await?
        .ok_or_else(not_found)
}

/// Whether `open_workspace` made a new workspace or found the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceOpened {
    pub created: bool,
}

/// Gives the caller a workspace: the one its cookie names, or a new one (and its cookie).
#[server(prefix = "/api", endpoint = "open_workspace")]
pub async fn open_workspace() -> Result<WorkspaceOpened, AppError> {
    let storage = context::storage()?;
    if context::current_workspace(&storage).await?.is_some() {
        return Ok(WorkspaceOpened { created: false });
    }
    let credentials = storage.create_workspace().await?;
    context::set_workspace_cookie(&credentials)?;
    Ok(WorkspaceOpened { created: true })
}

/// What the HTTP edge needs to know of the server functions: which ones write (they are
/// rate-limited per client) and which take bodies over the default limit.
#[cfg(feature = "ssr")]
pub const ENDPOINTS: crate::server::edge::EndpointTable = crate::server::edge::EndpointTable {
    writes: &[
        <OpenWorkspace as server_fn::ServerFn>::PATH,
        <applications::SaveApplication as server_fn::ServerFn>::PATH,
        <applications::DeleteApplication as server_fn::ServerFn>::PATH,
        <applications::ApplyMirrorWrites as server_fn::ServerFn>::PATH,
        <status_pages::CreateStatusLink as server_fn::ServerFn>::PATH,
        <status_pages::RevokeStatusLink as server_fn::ServerFn>::PATH,
        <status_pages::ReportStatus as server_fn::ServerFn>::PATH,
        <devices::CreateDeviceLink as server_fn::ServerFn>::PATH,
        <devices::RedeemDeviceLink as server_fn::ServerFn>::PATH,
        <SaveSettings as server_fn::ServerFn>::PATH,
    ],
    body_limits: &[
        (
            <applications::SaveApplication as server_fn::ServerFn>::PATH,
            applications::SAVE_BODY_LIMIT,
        ),
        (
            <applications::ApplyMirrorWrites as server_fn::ServerFn>::PATH,
            applications::BATCH_BODY_LIMIT,
        ),
        (
            <status_pages::ReportStatus as server_fn::ServerFn>::PATH,
            status_pages::REPORT_BODY_LIMIT,
        ),
    ],
};

/// Stores the workspace's settings in the mirror (the browser's record has them first),
/// after checking them against the rules and the workspace's applications.
#[server(prefix = "/api", endpoint = "save_settings", input = server_fn::codec::Json)]
pub async fn save_settings(settings: ApplicationServerSettings) -> Result<(), AppError> {
    let storage = context::storage()?;
    let workspace = context::current_workspace(&storage).await?;
    crate::server::mirror::WorkspaceMirror::open(storage, workspace)
        .await?
        .save_settings(&settings)
        .await
}

/// The defaults and facts about this server.
#[server(prefix = "/api", endpoint = "get_settings")]
pub async fn get_settings() -> Result<SettingsView, AppError> {
    let storage = context::storage()?;
    let workspace = context::current_workspace(&storage).await?;
    Ok(SettingsView {
        settings: ApplicationServerSettings::default(),
        has_workspace: workspace.is_some(),
        database_backend: format!("{:?}", storage.backend()),
        server_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// What a backup of the caller's workspace would contain.
#[server(prefix = "/api", endpoint = "backup_overview")]
pub async fn backup_overview() -> Result<BackupContents, AppError> {
    let storage = context::storage()?;
    let workspace = context::current_workspace(&storage).await?;
    let (applications, installed) = match workspace {
        Some(id) => (
            storage.list_applications(id).await?.len(),
            storage.installed_package_ids(id).await?.len(),
        ),
        None => (0, 0),
    };
    Ok(BackupContents {
        has_workspace: workspace.is_some(),
        format_version: crate::domain::backup::CURRENT_FORMAT_VERSION.to_string(),
        applications,
        installed_packages: installed,
    })
}
