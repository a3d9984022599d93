//! The page's applications: the registry in IndexedDB (the source of truth), mirrored to the
//! server, and deployments into the VM from the four sources, as atomic releases.
//!
//! ```text
//! save ─ domain validation (name, runtimes, deployment, execution, ports) ─ IndexedDB ─ mirror
//! deploy ─ source (upload | url | github | local-sync) ─▶ SourceMaterial
//!        ─▶ bundle: archive rules, limits, one tar.gz ─▶ push over 9p ─▶ extract into
//!           releases/<id>/ ─▶ build (timeout) ─▶ switch `current` ─▶ prune ─▶ checkpoint
//! ```
//!
//! The parts: `bundle` (checks and packs files), `deploy` (runs a deployment in the guest),
//! `sources` (files, drops, URL and GitHub downloads), `local_sync` (a picked folder, watched),
//! `watching` (a watched folder's changes into the release), `record` (the IndexedDB record), `registry` (create, save, duplicate, delete) and
//! `mirror` (server writes). In the server build the manager is an inert twin.

pub mod bundle;
pub mod deploy;
pub mod local_sync;
pub mod sources;

pub use archive::{is_archive, ArchiveExported, ArchivePreview, ArchiveProgress};
pub use legacy::{is_legacy_export, LegacyOutcome, LegacyPreview};
pub use restore::{ImportPreview, MAX_BACKUP_BYTES};

use std::collections::BTreeMap;

use chrono::Utc;
use futures::future::LocalBoxFuture;
use leptos::prelude::*;
use uuid::Uuid;

use crate::client::packages::PackageManager;
use crate::client::vm_controller::VmController;
use crate::domain::app_registry::AppBook;
use crate::domain::mirror_queue::{MirrorQueue, SyncSummary, WriteState};
use crate::domain::ports::{allocate_additional, allocate_port, ports_in_use};
use crate::domain::presets::PresetId;
use crate::domain::validation::{unique_name, ApplicationChecks, ValidationRules};
use crate::model::catalog::RuntimeCatalog;
use crate::model::{
    AppName, Application, ApplicationId, ApplicationServerSettings, DeploymentOperation, LogEntry,
    MirrorAnswer, MirrorEntry, Port, RuntimePackage,
};

/// What the page shows about a supervised application beyond its record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunNotes {
    /// When the pending restart happens.
    pub restart_at: Option<chrono::DateTime<Utc>>,
    /// Limits the guest could not enforce, each with the reason.
    pub unenforced_limits: Vec<String>,
    /// 95th percentile of the last minute's response times, in ms (0 without requests).
    pub p95_response_ms: f64,
    /// The latest usage and traffic samples of this page (every 15 s, the last
    /// [`LIVE_SAMPLES`]), for the live charts; the record's history has one every 5 min.
    pub live: std::collections::VecDeque<crate::model::PerformanceSnapshot>,
}

/// How many live samples the page keeps per app (10 minutes at one every 15 s).
pub const LIVE_SAMPLES: usize = 40;

/// Where an application's latest change stands with the server mirror (none: the server
/// has it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorState {
    /// Queued or being written.
    Pending,
    /// The server could not take it; it is retried with backoff.
    Retrying(String),
    /// The server's rules refused it; it waits for the next change.
    Refused(String),
}

/// Why the server did not take a mirror write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorFailure {
    /// Refused by the server's rules (or for good, e.g. too large): resending won't help.
    #[error("{}", .0.join("; "))]
    Refused(Vec<String>),
    /// The server could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// The server failed or was busy.
    #[error("{0}")]
    Failed(String),
}

/// The watch of a local-sync application's folder, on this page (a reload ends it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// The folder's name.
    pub folder: String,
    /// The release its changes go into.
    pub release: Uuid,
    /// Change sets applied so far.
    pub changes_applied: u32,
    /// What the last one did.
    pub last_change: Option<String>,
    /// Why the last one could not be applied (cleared by the next that is).
    pub error: Option<String>,
}

impl SyncStatus {
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn watching(folder: String, release: Uuid) -> Self {
        SyncStatus {
            folder,
            release,
            changes_applied: 0,
            last_change: None,
            error: None,
        }
    }

    /// Records how applying a change set went.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn record(&mut self, outcome: Result<String, String>) {
        match outcome {
            Ok(line) => {
                self.changes_applied += 1;
                self.last_change = Some(line);
                self.error = None;
            }
            Err(error) => self.error = Some(error),
        }
    }
}

/// Why an action on an application did not happen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppsError {
    /// The record breaks a rule; each message names it.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("there is no application with id {0}")]
    NotFound(ApplicationId),
    /// Another deployment or action is in progress for it.
    #[error("{0}")]
    Busy(String),
    /// The browser's storage failed; nothing was changed.
    #[error("this browser's storage failed: {0}")]
    Storage(String),
    /// The VM, the source or the guest failed.
    #[error("{0}")]
    Deploy(String),
    /// Only in the browser.
    #[error("this needs the page's JavaScript")]
    BrowserOnly,
    /// Another tab of this browser runs the VM; only that tab acts on its apps.
    #[error("the VM runs in another tab of this browser: start, stop and restart the app there, or run the VM here")]
    VmElsewhere,
}

/// What the registry needs from the server. The `app` layer passes it in (server functions
/// belong to the `api` layer, which the client can't import): opening the workspace, the
/// runtime catalog, and the mirror's writes. Errors are the server's words for users.
pub trait ServerLink {
    /// Gives this browser a workspace (its cookie) if it has none.
    fn open_workspace(&self) -> LocalBoxFuture<'static, Result<(), String>>;
    /// The runtime catalog.
    fn catalog(&self) -> LocalBoxFuture<'static, Result<RuntimeCatalog, String>>;
    /// Sends a batch of queued mirror writes in one request; the server checks each with
    /// the rules again and answers each, in order.
    fn apply_writes(
        &self,
        writes: Vec<MirrorEntry>,
    ) -> LocalBoxFuture<'static, Result<Vec<MirrorAnswer>, MirrorFailure>>;
    /// The VM tab's heartbeat: each application's status now (status pages read it).
    fn report_status(
        &self,
        reports: Vec<crate::model::StatusReport>,
    ) -> LocalBoxFuture<'static, Result<(), String>>;
}

/// What a deploy takes: files the user picked or dropped (upload), or the source saved in
/// the application's configuration (url, github, local-sync).
pub enum DeployInput {
    /// Files or one archive picked or dropped now.
    Upload(bundle::SourceMaterial),
    /// The application's saved source.
    Saved,
}

/// The page's applications (see the module docs). `Copy`: signals only.
#[derive(Clone, Copy)]
pub struct AppManager {
    /// This browser's record: applications, deployments, current releases. A log line is
    /// appended without waking it: see [`AppManager::log_written`].
    pub book: RwSignal<AppBook>,
    /// Wakes whoever shows deployment logs when a line is appended.
    pub log_written: Trigger,
    /// The record has been read from IndexedDB.
    pub loaded: RwSignal<bool>,
    /// The record was read and may be written (false before loading, or when storage
    /// failed or holds a newer format).
    pub writable: RwSignal<bool>,
    /// The applications by name.
    pub applications: Memo<Vec<Application>>,
    /// The server mirror's write queue (`domain::mirror_queue`), kept in IndexedDB.
    pub queue: RwSignal<MirrorQueue>,
    /// A message about the last action that needs attention (e.g. an interrupted deploy).
    pub notice: RwSignal<Option<String>>,
    /// The watched folders of local-sync applications (see `watching`).
    pub sync: RwSignal<BTreeMap<ApplicationId, SyncStatus>>,
    #[cfg(feature = "hydrate")]
    watches: StoredValue<BTreeMap<ApplicationId, local_sync::WatchHandle>, LocalStorage>,
    /// What the supervisor shows beyond the record: a pending restart, unenforced limits.
    pub run_notes: RwSignal<BTreeMap<ApplicationId, RunNotes>>,
    /// The supervisor's processes, timers and request windows (see `supervisor`).
    #[cfg(feature = "hydrate")]
    runs: StoredValue<supervisor::SharedRuns, LocalStorage>,
    /// The server's runtime catalog, once loaded.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    catalog: RwSignal<Option<RuntimeCatalog>>,
    /// The catalog's runtimes with this browser's install statuses.
    packages: Memo<Vec<RuntimePackage>>,
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    vm: VmController,
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    runtimes: PackageManager,
    /// The server's side (see [`ServerLink`]). Browser only: a local value must not be
    /// dropped on another thread, which the server's runtime would do.
    #[cfg(feature = "hydrate")]
    server: StoredValue<std::rc::Rc<dyn ServerLink>, LocalStorage>,
    /// Record writes run one at a time (see `record::change`).
    #[cfg(feature = "hydrate")]
    writes: StoredValue<std::rc::Rc<futures::lock::Mutex<()>>, LocalStorage>,
}

impl AppManager {
    fn new(
        vm: VmController,
        runtimes: PackageManager,
        server: std::rc::Rc<dyn ServerLink>,
    ) -> Self {
        #[cfg(not(feature = "hydrate"))]
        let _ = server;
        let book = RwSignal::new(AppBook::default());
        let catalog: RwSignal<Option<RuntimeCatalog>> = RwSignal::new(None);
        let installs = runtimes.book;
        AppManager {
            book,
            log_written: Trigger::new(),
            loaded: RwSignal::new(false),
            writable: RwSignal::new(false),
            applications: Memo::new(move |_| {
                book.with(|book| book.sorted().into_iter().cloned().collect())
            }),
            queue: RwSignal::new(MirrorQueue::default()),
            notice: RwSignal::new(None),
            sync: RwSignal::new(BTreeMap::new()),
            #[cfg(feature = "hydrate")]
            watches: StoredValue::new_local(BTreeMap::new()),
            run_notes: RwSignal::new(BTreeMap::new()),
            #[cfg(feature = "hydrate")]
            runs: StoredValue::new_local(Default::default()),
            catalog,
            packages: Memo::new(move |_| {
                catalog.with(|catalog| {
                    let entries: Vec<RuntimePackage> = catalog
                        .iter()
                        .flat_map(|catalog| &catalog.entries)
                        .map(|entry| entry.package.clone())
                        .collect();
                    installs.with(|record| record.apply_to(&entries))
                })
            }),
            vm,
            runtimes,
            #[cfg(feature = "hydrate")]
            server: StoredValue::new_local(server),
            #[cfg(feature = "hydrate")]
            writes: StoredValue::new_local(std::rc::Rc::new(futures::lock::Mutex::new(()))),
        }
    }

    /// Creates the manager and provides it as context: once, in `App`, after the
    /// `PackageManager`, with the server's side. In the browser it reads the record and
    /// opens the workspace.
    pub fn provide(server: impl ServerLink + 'static) -> Self {
        let manager = AppManager::new(
            VmController::expect(),
            PackageManager::expect(),
            std::rc::Rc::new(server),
        );
        provide_context(manager);
        #[cfg(feature = "hydrate")]
        {
            manager.start();
            crate::client::test_hook::install_apps(manager);
        }
        manager
    }

    /// The manager `App` provided.
    pub fn expect() -> Self {
        expect_context::<AppManager>()
    }

    /// One application, tracked.
    pub fn application(&self, id: ApplicationId) -> Signal<Option<Application>> {
        let applications = self.applications;
        Signal::derive(move || {
            applications.with(|list| list.iter().find(|app| app.id == id).cloned())
        })
    }

    /// One application by name (case-insensitive), tracked.
    pub fn by_name(&self, name: String) -> Signal<Option<Application>> {
        let applications = self.applications;
        Signal::derive(move || {
            applications.with(|list| {
                list.iter()
                    .find(|app| app.name.as_str().eq_ignore_ascii_case(&name))
                    .cloned()
            })
        })
    }

    /// An application's deployments, newest first, tracked (logs included: it also wakes
    /// on [`AppManager::log_written`]).
    pub fn deployments(&self, id: ApplicationId) -> Signal<Vec<DeploymentOperation>> {
        let book = self.book;
        let log_written = self.log_written;
        Signal::derive(move || {
            log_written.track();
            book.with(|book| book.history(id).iter().rev().cloned().collect())
        })
    }

    /// An application's rolling log (its output and the supervisor's events), tracked:
    /// lines are appended without waking the record, so this also wakes on
    /// [`AppManager::log_written`].
    pub fn app_logs(&self, id: ApplicationId) -> Signal<Vec<LogEntry>> {
        let book = self.book;
        let log_written = self.log_written;
        Signal::derive(move || {
            log_written.track();
            book.with(|book| {
                book.applications
                    .get(&id)
                    .map(|app| app.metrics.recent_logs.clone())
                    .unwrap_or_default()
            })
        })
    }

    /// The id of the deployment whose release `current` points at, tracked.
    pub fn current_release(&self, id: ApplicationId) -> Signal<Option<Uuid>> {
        let book = self.book;
        Signal::derive(move || book.with(|book| book.current_releases.get(&id).copied()))
    }

    /// The catalog's runtimes with this browser's install statuses, tracked.
    pub fn runtimes(&self) -> Memo<Vec<RuntimePackage>> {
        self.packages
    }

    /// Where the application's latest change stands with the server (tracked); `None`
    /// when the server has it.
    pub fn mirror_state(&self, id: ApplicationId) -> Option<MirrorState> {
        self.queue.with(|queue| {
            queue.pending.get(&id).map(|write| match &write.state {
                WriteState::Waiting | WriteState::InFlight => MirrorState::Pending,
                WriteState::Retrying { reason } => MirrorState::Retrying(reason.clone()),
                WriteState::Refused { reasons } => MirrorState::Refused(reasons.join("; ")),
            })
        })
    }

    /// The whole mirror at a glance, for the sync indicator (tracked).
    pub fn sync_summary(&self) -> SyncSummary {
        self.queue.with(MirrorQueue::summary)
    }

    /// Whether the server's runtime catalog has loaded (tracked): checking a backup's
    /// runtimes needs it.
    pub fn catalog_loaded(&self) -> bool {
        self.catalog.with(Option::is_some)
    }

    /// The settings in effect: this browser's record's (the defaults until changed).
    pub fn settings(&self) -> ApplicationServerSettings {
        self.book.with_untracked(|book| book.settings.clone())
    }

    /// A new draft from a preset: its name made unique, a port allocated from the
    /// settings' range (rule 3), deployment path `/srv/apps/<name>`. Not saved. Refused
    /// only when every port of the range is taken.
    pub fn new_draft(&self, preset: PresetId) -> Result<Application, AppsError> {
        let settings = self.settings();
        let (name, port) = self.book.with_untracked(|book| {
            let taken = |candidate: &str| book.by_name(candidate).is_some();
            let name = unique_name(preset.as_str(), taken);
            let port = allocate_port(
                settings.port_range,
                &ports_in_use(book.applications.values()),
            );
            (name, port)
        });
        let name =
            AppName::parse(&name).map_err(|error| AppsError::Invalid(vec![error.to_string()]))?;
        let port = port.map_err(|error| AppsError::Invalid(vec![error.to_string()]))?;
        Ok(crate::domain::presets::draft(
            preset,
            Uuid::new_v4(),
            name,
            port,
            &settings,
            Utc::now(),
        ))
    }

    /// The lowest free port for one more additional port of `draft` (rule 3): not used by
    /// another application, nor by the draft itself.
    pub fn free_additional_port(&self, draft: &Application) -> Result<Port, AppsError> {
        let settings = self.settings();
        let in_use = self.book.with_untracked(|book| {
            ports_in_use(book.applications.values().filter(|app| app.id != draft.id))
        });
        let own: Vec<Port> = draft.execution.all_ports().collect();
        allocate_additional(settings.port_range, &in_use, &own, 1)
            .map_err(|error| AppsError::Invalid(vec![error.to_string()]))?
            .pop()
            .ok_or_else(|| AppsError::Invalid(vec!["no port was allocated".to_owned()]))
    }

    /// The domain's checks of a draft, grouped by the field they concern (for the form, as
    /// the user types): against the other applications, the catalog and what is
    /// installed, and the VM's memory.
    pub fn check(&self, draft: &Application) -> ApplicationChecks {
        let settings = self.settings();
        let resources = self
            .vm
            .status
            .with_untracked(|status| status.system_resources.clone());
        self.packages.with(|packages| {
            self.book.with(|book| {
                let others: Vec<Application> = book
                    .applications
                    .values()
                    .filter(|app| app.id != draft.id)
                    .cloned()
                    .collect();
                ValidationRules::new(packages.iter(), &others, &resources, &settings)
                    .check_application(draft)
            })
        })
    }

    /// The guest paths that deleting the application removes (for the confirmation).
    pub fn files_to_delete(&self, id: ApplicationId) -> Vec<String> {
        self.book.with_untracked(|book| {
            book.applications
                .get(&id)
                .map(|app| crate::domain::release::paths_to_remove(&app.deployment))
                .unwrap_or_default()
        })
    }
}

/// The server build's twin: nothing runs outside the browser.
#[cfg(not(feature = "hydrate"))]
impl AppManager {
    /// Creates or updates an application (browser only).
    pub async fn save(&self, _draft: Application) -> Result<Application, AppsError> {
        Err(AppsError::BrowserOnly)
    }
    /// Saves a copy under a new unique name and port (browser only).
    pub async fn duplicate(&self, _id: ApplicationId) -> Result<Application, AppsError> {
        Err(AppsError::BrowserOnly)
    }
    /// Deletes the application, its files in the guest and its mirror (browser only).
    pub async fn delete(&self, _id: ApplicationId) -> Result<(), AppsError> {
        Err(AppsError::BrowserOnly)
    }
    /// Deploys the application (browser only).
    pub async fn deploy(
        &self,
        _id: ApplicationId,
        _input: DeployInput,
    ) -> Result<DeploymentOperation, AppsError> {
        Err(AppsError::BrowserOnly)
    }
    /// Switches `current` back to the previous kept release (browser only).
    pub async fn roll_back(&self, _id: ApplicationId) -> Result<DeploymentOperation, AppsError> {
        Err(AppsError::BrowserOnly)
    }
    /// Starts the application's process (browser only).
    pub async fn start_app(&self, _id: ApplicationId) -> Result<(), AppsError> {
        Err(AppsError::BrowserOnly)
    }
    /// Stops the application's process (browser only).
    pub async fn stop_app(&self, _id: ApplicationId) -> Result<(), AppsError> {
        Err(AppsError::BrowserOnly)
    }
    /// Restarts the application's process (browser only).
    pub async fn restart_app(&self, _id: ApplicationId) -> Result<(), AppsError> {
        Err(AppsError::BrowserOnly)
    }
}

#[cfg(feature = "hydrate")]
mod actions;
#[cfg(feature = "hydrate")]
mod app_bridge;
mod archive;
mod backup;
mod legacy;
#[cfg(feature = "hydrate")]
mod mirror;
#[cfg(feature = "hydrate")]
mod record;
mod restore;
#[cfg(feature = "hydrate")]
mod supervisor;
#[cfg(feature = "hydrate")]
mod watching;
mod workspace_settings;
