//! The page's runtime packages: the server's catalog with this browser's install state, and
//! the actions install and remove, which carry out `domain::package_install` plans in the VM.
//!
//! ```text
//! Install ─ validate (conflicts, dependencies, disk) ─ confirm dependencies ─┐
//!   for each runtime, dependencies first:                                    │
//!   available ─▶ the route (domain::runtime_layer::choose_route): its prebuilt layer,
//!             │    or dpkg (no layer, or some of its packages came with another runtime)
//!             ▶ layer: fetch it + SHA-256; a mismatch refuses it (both hashes logged),
//!             │    nothing touched the VM, and dpkg installs instead
//!             │  installing: push it, one script checks the guest (else dpkg installs,
//!             │    nothing changed), extracts, merges the status stanzas, runs ldconfig
//!             │    and the catalog scripts
//!             ▶ dpkg: fetch every .deb (byte progress) + SHA-256 (WebCrypto); a mismatch
//!             │    ends here: error, nothing touched the VM
//!             │  installing: push into the guest (9p), dpkg --install per step,
//!             │    dpkg --configure -a, install and post-install scripts
//!             │  a failure: repair the guest (configure, roll back), error
//!             ▶ installed (installDate, installDuration) ─▶ VM checkpoint saved
//! Remove ─ blocked while an installed runtime or an application needs it ─
//!   removing: pre-remove script, dpkg --remove ─▶ available ─▶ VM checkpoint saved
//! ```
//!
//! The record ([`PackageBook`]) lives in IndexedDB and is written at every step, so a reload
//! in the middle of an operation is noticed on the next load: the operation failed, the
//! runtime is `error`, and the guest is repaired once the VM is ready. After each finished
//! operation the VM state is saved (a checkpoint), so a reload resumes a VM that has the
//! runtimes the record says. The guest side sits behind [`RuntimeInstaller`]:
//! [`LayerInstaller`] (a layer the server built) or [`DpkgInstaller`] (dpkg in the guest). In the server build the manager is an inert
//! twin.
//!
//! The manager is provided once, in `App`, and lives as long as the page. What the
//! Packages page loads through server functions (the catalog, the workspace's applications)
//! stays the page's: it hands the manager read-only views of it ([`PackageSources`]).
//!
//! Reactive state is fine-grained: a log line is written into the record without waking
//! it (only [`PackageManager::log_written`]), so it re-renders no package card; cards read
//! their own runtime's record through a Memo.
//!
//! The parts: [`record`] (the record in IndexedDB), [`fetch`] (downloads and SHA-256),
//! [`dpkg`] (the installer in the guest and its line runner), [`layer`] (a prebuilt layer), [`operations`] (install and
//! remove) and [`recovery`] (after a reload, and each time the VM starts).

use std::collections::BTreeSet;

use leptos::prelude::*;
use uuid::Uuid;

use crate::client::vm_controller::VmController;
use crate::domain::graph::PackageGraph;
use crate::domain::package_install::{PackageBook, PackageRecord};
use crate::domain::validation::ValidationRules;
use crate::model::catalog::{PackageCatalogEntry, RuntimeCatalog};
use crate::model::{
    Application, ApplicationServerSettings, PackageId, PackageStatus, RuntimePackage,
    SystemResources, ValidationResult,
};

/// What an operation in progress shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Activity {
    /// The operation.
    pub operation: Option<Uuid>,
    /// Its runtime.
    pub package_id: Option<PackageId>,
    /// 0–100.
    pub percent: u8,
    /// What is happening, in words.
    pub detail: String,
}

/// What installing a runtime takes, checked before anything starts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstallCheck {
    /// The domain's verdict: errors block, warnings and suggestions inform.
    pub validation: ValidationResult,
    /// What will be installed, dependencies first and the runtime itself last.
    pub to_install: Vec<PackageId>,
}

impl InstallCheck {
    /// Runtime dependencies that get installed first (need the user's confirmation).
    pub fn dependencies(&self) -> &[PackageId] {
        self.to_install
            .split_last()
            .map_or(&[], |(_, dependencies)| dependencies)
    }
}

/// What the Packages page hands the manager: read-only views of what it loads through
/// server functions. The page owns the resources; the manager reads them while the page is
/// open, and an operation takes what it needs when it starts.
#[derive(Clone, Copy, PartialEq)]
pub struct PackageSources {
    /// The server's catalog; `None` until it has loaded (or when it could not be).
    pub catalog: Signal<Option<RuntimeCatalog>>,
    /// The workspace's applications (removal is blocked while one requires a runtime);
    /// `None` until they have loaded.
    pub applications: Signal<Option<Vec<Application>>>,
}

/// The page's runtime packages (see the module docs). `Copy`: signals only.
#[derive(Clone, Copy)]
pub struct PackageManager {
    /// This browser's record: statuses, install data, operation history. A log line is
    /// appended without waking it: see [`PackageManager::log_written`].
    pub book: RwSignal<PackageBook>,
    /// Wakes whoever shows operation logs when a log line is appended to `book`.
    pub log_written: Trigger,
    /// The open Packages page's catalog and applications, if it is open.
    sources: RwSignal<Option<PackageSources>>,
    /// The catalog's packages with this browser's statuses.
    pub packages: Memo<Vec<RuntimePackage>>,
    /// Whether an operation may not start now: one is running, the guest is being repaired,
    /// checked or saved, or the record has not been read yet.
    pub busy: Memo<bool>,
    /// The operation in progress.
    pub activity: RwSignal<Activity>,
    /// A message about the last action that did not start or that needs attention.
    pub notice: RwSignal<Option<String>>,
    /// The record has been read from storage.
    pub loaded: RwSignal<bool>,
    /// Reading the record has begun (set at once, so the page starts it only once).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    started: StoredValue<bool>,
    /// The guest is being repaired, checked or saved: no operation may start meanwhile.
    pub maintenance: RwSignal<bool>,
    /// What recovery still has to do (browser build).
    #[cfg(feature = "hydrate")]
    recovery: StoredValue<recovery::RecoveryState>,
    /// The page's VM, which the runtimes are installed into (used by the browser build).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    vm: VmController,
}

impl PackageManager {
    fn new(vm: VmController) -> Self {
        let book = RwSignal::new(PackageBook::default());
        let sources: RwSignal<Option<PackageSources>> = RwSignal::new(None);
        let maintenance = RwSignal::new(false);
        let loaded = RwSignal::new(false);
        PackageManager {
            vm,
            book,
            log_written: Trigger::new(),
            sources,
            packages: Memo::new(move |_| {
                let catalog: Vec<RuntimePackage> = sources
                    .get()
                    .and_then(|sources| {
                        sources.catalog.try_with(|catalog| {
                            catalog.as_ref().map(|catalog| {
                                catalog
                                    .entries
                                    .iter()
                                    .map(|entry| entry.package.clone())
                                    .collect()
                            })
                        })
                    })
                    .flatten()
                    .unwrap_or_default();
                book.with(|book| book.apply_to(&catalog))
            }),
            busy: Memo::new(move |_| {
                book.with(|book| book.running().is_some()) || maintenance.get() || !loaded.get()
            }),
            activity: RwSignal::new(Activity::default()),
            notice: RwSignal::new(None),
            loaded,
            started: StoredValue::new(false),
            maintenance,
            #[cfg(feature = "hydrate")]
            recovery: StoredValue::new(recovery::RecoveryState::default()),
        }
    }

    /// Creates the manager and provides it as context: once, in `App`, after the
    /// [`VmController`]. In the browser it also installs `window.webvm` for both.
    pub fn provide() -> Self {
        let vm = VmController::expect();
        let manager = PackageManager::new(vm);
        provide_context(manager);
        #[cfg(feature = "hydrate")]
        {
            manager.watch_vm();
            crate::client::test_hook::install(vm, manager);
        }
        manager
    }

    /// The manager `App` provided. Panics without one: a second one is never made here.
    pub fn expect() -> Self {
        expect_context::<PackageManager>()
    }

    /// Takes the open page's catalog and applications, until `on_cleanup` of the page's
    /// owner (this call registers it) gives them back.
    pub fn attach(&self, sources: PackageSources) {
        self.sources.set(Some(sources));
        let attached = self.sources;
        on_cleanup(move || {
            attached.try_update(|current| {
                if *current == Some(sources) {
                    *current = None;
                }
            });
        });
    }

    /// The catalog as the open page has it (untracked).
    fn catalog_with<T>(&self, read: impl FnOnce(&RuntimeCatalog) -> T) -> Option<T> {
        self.sources
            .try_get_untracked()
            .flatten()
            .and_then(|sources| {
                sources
                    .catalog
                    .try_with_untracked(|catalog| catalog.as_ref().map(read))
            })
            .flatten()
    }

    /// The catalog entry of a runtime.
    pub fn entry(&self, id: &PackageId) -> Option<PackageCatalogEntry> {
        self.catalog_with(|catalog| {
            catalog
                .entries
                .iter()
                .find(|entry| &entry.package.id == id)
                .cloned()
        })
        .flatten()
    }

    /// The workspace's applications, `None` until they have loaded (untracked).
    fn applications(&self) -> Option<Vec<Application>> {
        self.sources
            .try_get_untracked()
            .flatten()
            .and_then(|sources| sources.applications.try_get_untracked())
            .flatten()
    }

    /// Appends a line to an operation's log. It goes into the record without waking
    /// `book`: only [`PackageManager::log_written`] wakes, so no package card re-renders.
    pub fn append_log(&self, operation: Uuid, line: String) {
        self.book
            .try_update_untracked(|book| book.log(operation, line));
        self.log_written.notify();
    }

    /// A Memo of one runtime's record: it changes only when that record does, so a card
    /// that reads it re-renders for its own runtime only.
    pub fn record(&self, id: PackageId) -> Memo<Option<PackageRecord>> {
        let book = self.book;
        Memo::new(move |_| book.with(|book| book.records.get(&id).cloned()))
    }

    /// What installing `id` needs and whether it may go ahead, with `resources` the VM's
    /// last sample (for the disk check).
    pub fn check_install(&self, id: &PackageId, resources: &SystemResources) -> InstallCheck {
        let packages = self.packages.get_untracked();
        let applications = self.applications().unwrap_or_default();
        let settings = ApplicationServerSettings::default();
        let rules = ValidationRules::new(packages.iter(), &applications, resources, &settings);
        let mut validation = rules.validate_package_installation(id.as_str());
        if let Some(reason) = self
            .entry(id)
            .and_then(|entry| entry.catalog_error)
            .filter(|_| {
                self.book.with_untracked(|book| book.status(id)) != PackageStatus::Installed
            })
        {
            validation.error(format!("{id} is unavailable on this server: {reason}"));
        }
        let installed: BTreeSet<PackageId> = packages
            .iter()
            .filter(|package| package.status == PackageStatus::Installed)
            .map(|package| package.id.clone())
            .collect();
        let graph = PackageGraph::from_packages(packages.iter()).graph;
        let to_install = graph.install_plan([id], &installed).unwrap_or_default();
        for dependency in to_install.iter().filter(|step| *step != id) {
            if let Some(reason) = self.entry(dependency).and_then(|entry| entry.catalog_error) {
                validation.error(format!(
                    "{id} needs {dependency}, which is unavailable on this server: {reason}"
                ));
            }
        }
        InstallCheck {
            validation,
            to_install,
        }
    }

    /// Whether `id` may be removed: blocked while an installed runtime or an application
    /// requires it (the errors say who).
    pub fn check_removal(&self, id: &PackageId) -> ValidationResult {
        let Some(applications) = self.applications() else {
            let mut result = ValidationResult::ok();
            result.error("the workspace's applications have not loaded yet, so it is not known whether one needs it; try again in a moment");
            return result;
        };
        let packages = self.packages.get_untracked();
        let settings = ApplicationServerSettings::default();
        let resources = SystemResources::default();
        ValidationRules::new(packages.iter(), &applications, &resources, &settings)
            .validate_package_removal(id.as_str())
    }
}

#[cfg(not(feature = "hydrate"))]
impl PackageManager {
    /// Reads the record and repairs after an interrupted operation (browser only).
    pub fn start(&self) {}
    /// Installs a runtime and its dependencies (browser only).
    pub fn install(&self, _id: PackageId) {}
    /// Removes a runtime (browser only).
    pub fn remove(&self, _id: PackageId) {}
}

#[cfg(feature = "hydrate")]
mod dpkg;
#[cfg(feature = "hydrate")]
mod fetch;
#[cfg(feature = "hydrate")]
mod layer;
#[cfg(feature = "hydrate")]
mod operations;
#[cfg(feature = "hydrate")]
mod record;
#[cfg(feature = "hydrate")]
mod recovery;

#[cfg(feature = "hydrate")]
pub use dpkg::{DpkgInstaller, InstallerError, Reporter, RuntimeInstaller};
#[cfg(feature = "hydrate")]
pub use layer::LayerInstaller;
#[cfg(feature = "hydrate")]
pub(crate) use record::BOOK_KEY as PACKAGE_RECORD_KEY;

/// A JS error's message.
#[cfg(feature = "hydrate")]
fn js_text(error: &wasm_bindgen::JsValue) -> String {
    crate::client::vm::bridge::js_message(error)
}

/// Bytes in MiB, for the log.
#[cfg(feature = "hydrate")]
fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}
