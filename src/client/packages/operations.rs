//! Install and remove: each carries a `domain::package_install` plan out, writing the record
//! at every step, and saves a VM checkpoint when it is done.

use std::rc::Rc;

use chrono::Utc;
use leptos::prelude::*;
use uuid::Uuid;

use super::{
    fetch, mib, Activity, DpkgInstaller, InstallerError, LayerInstaller, PackageManager, Reporter,
    RuntimeInstaller,
};
use crate::client::vm::VmError;
use crate::client::vm_controller::VmController;
use crate::domain::package_install::{plan_install, plan_removal, FileToFetch, Phase};
use crate::domain::runtime_layer::{choose_route, InstallRoute};
use crate::domain::vm_record::ErrorContext;
use crate::model::catalog::PackageCatalogEntry;
use crate::model::{PackageId, PackageOperationKind, PackageStatus, WebVMState};

/// Where the catalog's files are served: `.deb`s and layers.
#[derive(Debug, Clone, Default)]
struct Urls {
    files: String,
    layers: String,
}

fn reason(error: &VmError) -> String {
    error.to_string()
}

impl PackageManager {
    pub(super) fn vm(&self) -> VmController {
        self.vm
    }

    pub(super) fn reporter(&self, operation: Uuid, package_id: &PackageId) -> Reporter {
        let manager = *self;
        let manager_for_phase = *self;
        let package_id = package_id.clone();
        let started = crate::client::vm::bridge::now_ms();
        Reporter {
            log: Rc::new(move |line| {
                // Seconds since the operation (re)started, so slow steps stand out.
                let elapsed = (crate::client::vm::bridge::now_ms() - started).max(0.0) / 1000.0;
                let line = format!("[{elapsed:6.1}s] {line}");
                manager.append_log(operation, line);
            }),
            phase: Rc::new(move |phase, detail| {
                // Byte progress is frequent; every other step is worth saving, so that a
                // reload keeps the log up to there.
                if !matches!(phase, Phase::Downloading { .. }) {
                    wasm_bindgen_futures::spawn_local(async move {
                        manager_for_phase.persist().await;
                    });
                }
                manager_for_phase.activity.try_set(Activity {
                    operation: Some(operation),
                    package_id: Some(package_id.clone()),
                    percent: phase.percent(),
                    detail,
                });
            }),
        }
    }

    /// Why `action` (install, remove) on `id` can't start now, if it can't: the record is
    /// not read yet, the guest is being repaired, checked or saved, or the VM isn't ready.
    fn not_now(&self, action: &str, id: &PackageId) -> Option<String> {
        if self.maintenance.get_untracked() || !self.loaded.get_untracked() {
            return Some(format!(
                "The VM's packages are being checked or saved; {action} {id} in a moment."
            ));
        }
        let state = self.vm().state();
        (state != WebVMState::Ready).then(|| {
            format!("The VM is {state}; start it (Dashboard) and wait until it is ready to {action} {id}.")
        })
    }

    /// Installs `id` after its runtime dependencies (the UI has shown them and the user
    /// confirmed). Refused with a notice when validation fails.
    pub fn install(&self, id: PackageId) {
        if let Some(refusal) = self.not_now("install", &id) {
            self.notice.try_set(Some(refusal));
            return;
        }
        let resources = self
            .vm()
            .status
            .with_untracked(|status| status.system_resources.clone());
        let check = self.check_install(&id, &resources);
        if !check.validation.valid {
            self.notice.try_set(Some(format!(
                "{id} can't be installed: {}",
                check.validation.errors.join("; ")
            )));
            return;
        }
        self.notice.try_set(None);
        // What the steps need from the catalog is taken now: the page that holds it may
        // close while they run.
        let urls = self
            .catalog_with(|catalog| Urls {
                files: catalog.files_base_url.clone(),
                layers: catalog.layers_base_url.clone(),
            })
            .unwrap_or_default();
        let steps: Vec<(PackageId, Option<PackageCatalogEntry>)> = check
            .to_install
            .into_iter()
            .map(|step| {
                let entry = self.entry(&step);
                (step, entry)
            })
            .collect();
        let manager = *self;
        wasm_bindgen_futures::spawn_local(async move {
            for (step, entry) in steps {
                if manager.install_one(&step, entry, &urls).await.is_err() {
                    break;
                }
            }
        });
    }

    fn fail(&self, operation: Uuid, reason: &str) {
        let failed = self
            .book
            .try_update(|book| {
                book.fail(operation, reason, Utc::now())
                    .ok()
                    .and_then(|()| book.operation(operation).cloned())
            })
            .flatten();
        if let Some(failed) = failed {
            self.vm.record_error(
                "PackageOperationFailed",
                reason,
                ErrorContext {
                    operation: format!("{} {}", failed.operation, failed.package_id),
                    package_id: Some(failed.package_id),
                    application_id: None,
                },
            );
        }
        self.activity.try_update(|activity| {
            activity.detail = format!("Failed: {reason}");
        });
    }

    async fn install_one(
        &self,
        id: &PackageId,
        entry: Option<PackageCatalogEntry>,
        urls: &Urls,
    ) -> Result<(), String> {
        let Some(entry) = entry else {
            let reason = format!("{id} is not in the catalog");
            self.notice.try_set(Some(reason.clone()));
            return Err(reason);
        };
        let operation = Uuid::new_v4();
        let begun = self
            .book
            .try_update(|book| book.begin(operation, id, PackageOperationKind::Install, Utc::now()))
            .unwrap_or(Ok(()));
        if let Err(error) = begun {
            self.notice.try_set(Some(error.to_string()));
            return Err(error.to_string());
        }
        let report = self.reporter(operation, id);
        report.phase(
            Phase::Preparing,
            format!("Preparing {}", entry.package.name),
        );
        self.persist().await;
        let started = crate::client::vm::bridge::now_ms();
        let result = self
            .install_steps(operation, &entry, urls, &report, started)
            .await;
        if let Err(reason) = &result {
            self.fail(operation, reason);
        }
        self.persist().await;
        result
    }

    async fn install_steps(
        &self,
        operation: Uuid,
        entry: &PackageCatalogEntry,
        urls: &Urls,
        report: &Reporter,
        started: f64,
    ) -> Result<(), String> {
        let id = &entry.package.id;
        let present = self
            .book
            .with_untracked(|book| book.files_of_others(Some(id)));
        let plan = plan_install(
            &entry.package,
            entry.catalog_error.as_deref(),
            &entry.details.install_steps,
            &entry.details.file_sizes,
            &present,
        )
        .map_err(|error| error.to_string())?;
        report.log(format!(
            "installing {} {}: {} .deb files ({}) in {} dpkg calls, unless its prebuilt layer applies",
            entry.package.name,
            entry.package.version,
            plan.files.len(),
            mib(plan.download_bytes()),
            plan.dpkg_steps.len()
        ));
        let skipped = entry.package.deb_packages.len() - plan.files.len();
        if skipped > 0 {
            report.log(format!(
                "{skipped} files are already in the VM (installed by another runtime)"
            ));
        }

        // 1. The route, and a layer downloaded and verified before anything touches the VM.
        let route = choose_route(
            entry.details.layer.as_ref(),
            &plan,
            entry.package.deb_packages.len(),
        );
        let layered = match (&route, &entry.details.layer) {
            (InstallRoute::Layer, Some(layer)) => {
                report.log(format!(
                    "installing from the prebuilt layer {} ({}, SHA-256 pinned by the catalog) instead of running dpkg in the VM",
                    layer.file,
                    mib(layer.size)
                ));
                let file = FileToFetch {
                    name: layer.file.clone(),
                    sha256: layer.sha256.clone(),
                    size: layer.size,
                };
                match fetch::download_files(&[file], &urls.layers, report).await {
                    Ok(verified) => Some((layer.clone(), verified)),
                    Err(reason) => {
                        report.log(format!(
                            "the layer was refused, installing with dpkg instead: {reason}"
                        ));
                        None
                    }
                }
            }
            (InstallRoute::Dpkg { reason }, _) => {
                report.log(format!("installing with dpkg in the VM: {reason}"));
                None
            }
            (InstallRoute::Layer, None) => None,
        };
        // dpkg's .debs: downloaded and verified before anything touches the VM too.
        let debs = match layered {
            Some(_) => None,
            None => Some(fetch::download_verified(&plan, &urls.files, report).await?),
        };

        // 2. Into the guest.
        self.book
            .try_update(|book| book.set_status(id, PackageStatus::Installing))
            .transpose()
            .map_err(|error| error.to_string())?;
        self.persist().await;
        let vm = self.vm();
        if vm.state() != WebVMState::Ready {
            return Err(format!(
                "the VM is {}, so nothing was installed",
                vm.state()
            ));
        }
        let dpkg = DpkgInstaller::new(vm);
        report.phase(
            Phase::Pushing {
                done: 0,
                total: plan.files.len(),
            },
            "Checking what the VM already has",
        );
        // What is there already must never be rolled back: without knowing it, stop here.
        let before = dpkg
            .query(&plan.debian_packages)
            .await
            .map_err(|error| format!("{error}, so nothing was installed"))?;
        let others: std::collections::BTreeSet<String> = self.book.with_untracked(|book| {
            book.files_kept_by_others(id)
                .iter()
                .filter_map(|file| crate::domain::package_install::debian_package_name(file))
                .map(str::to_string)
                .collect()
        });
        let new_ones: Vec<String> = plan
            .debian_packages
            .iter()
            .filter(|name| !before.get(*name).is_some_and(|state| state.installed))
            .filter(|name| !others.contains(*name))
            .cloned()
            .collect();
        let mut debs = debs;
        if let Some((layer, verified)) = layered {
            let installer = LayerInstaller::new(vm, layer);
            match installer.install(operation, &plan, verified, report).await {
                Ok(()) => report.log("installed from the prebuilt layer"),
                Err(InstallerError::LayerMismatch(reason)) => {
                    report.log(format!(
                        "the VM is not the one the layer was built on ({reason}); nothing was changed, installing with dpkg instead"
                    ));
                    debs = Some(fetch::download_verified(&plan, &urls.files, report).await?);
                }
                Err(error) => {
                    return Err(Self::repaired(&installer, error, &new_ones, report).await)
                }
            }
        }
        if let Some(verified) = debs {
            if let Err(error) = dpkg.install(operation, &plan, verified, report).await {
                return Err(Self::repaired(&dpkg, error, &new_ones, report).await);
            }
        }
        let took = (crate::client::vm::bridge::now_ms() - started).max(0.0);
        report.log(format!(
            "{} installed in {:.1} s",
            entry.package.name,
            took / 1000.0
        ));
        self.book
            .try_update(|book| {
                book.finish_install(
                    operation,
                    &entry.package.version,
                    entry.package.deb_packages.clone(),
                    Utc::now(),
                )
            })
            .transpose()
            .map_err(|error| error.to_string())?;
        report.phase(Phase::Done, format!("{} is installed", entry.package.name));
        self.persist().await;
        self.checkpoint(report).await;
        Ok(())
    }

    /// After a failed install: the guest repaired (the new packages rolled back), and the
    /// failure's message.
    async fn repaired(
        installer: &dyn RuntimeInstaller,
        error: InstallerError,
        new_ones: &[String],
        report: &Reporter,
    ) -> String {
        report.log(format!("install failed: {error}"));
        if let Err(repair) = installer.repair(new_ones, report).await {
            report.log(format!("repair failed: {repair}"));
        }
        error.to_string()
    }

    /// Saves the VM so that a reload resumes with this change.
    async fn checkpoint(&self, report: &Reporter) {
        self.maintenance.try_set(true);
        report.phase(Phase::Done, "Saving the VM state in this browser");
        let saved = self.vm().checkpoint().await;
        self.maintenance.try_set(false);
        match saved {
            Ok(size) => report.log(format!(
                "VM state saved in this browser ({}), so a reload keeps this change",
                mib(size)
            )),
            Err(error) => {
                let message = format!(
                    "the VM state could not be saved ({}); after a reload this change must be made again",
                    reason(&error)
                );
                report.log(format!("warning: {message}"));
                self.notice.try_set(Some(message));
            }
        }
        self.persist().await;
    }

    /// Removes `id`: blocked (with the reason) while something requires it.
    pub fn remove(&self, id: PackageId) {
        if let Some(refusal) = self.not_now("remove", &id) {
            self.notice.try_set(Some(refusal));
            return;
        }
        let check = self.check_removal(&id);
        if !check.valid {
            self.notice.try_set(Some(format!(
                "{id} can't be removed: {}",
                check.errors.join("; ")
            )));
            return;
        }
        let Some(entry) = self.entry(&id) else {
            self.notice
                .try_set(Some(format!("{id} is not in the catalog")));
            return;
        };
        let manager = *self;
        wasm_bindgen_futures::spawn_local(async move {
            let vm = manager.vm();
            let (installed_files, kept) = manager.book.with_untracked(|book| {
                (
                    book.records
                        .get(&id)
                        .map(|record| record.installed_files.clone())
                        .unwrap_or_default(),
                    book.files_kept_by_others(&id),
                )
            });
            let installed_files = if installed_files.is_empty() {
                entry.package.deb_packages.clone()
            } else {
                installed_files
            };
            let operation = Uuid::new_v4();
            let begun = manager
                .book
                .try_update(|book| {
                    book.begin(operation, &id, PackageOperationKind::Remove, Utc::now())
                })
                .unwrap_or(Ok(()));
            if let Err(error) = begun {
                manager.notice.try_set(Some(error.to_string()));
                return;
            }
            manager.notice.try_set(None);
            let report = manager.reporter(operation, &id);
            report.phase(Phase::PreRemove, format!("Removing {}", entry.package.name));
            manager.persist().await;
            let plan = plan_removal(&entry.package, &installed_files, &kept);
            let installer = DpkgInstaller::new(vm);
            match installer.remove(&plan, &report).await {
                Ok(()) => {
                    report.log(format!("{} removed", entry.package.name));
                    let _ = manager
                        .book
                        .try_update(|book| book.finish_removal(operation, Utc::now()));
                    report.phase(Phase::Done, format!("{} was removed", entry.package.name));
                    manager.persist().await;
                    manager.checkpoint(&report).await;
                }
                Err(error) => {
                    if let Err(repair) = installer.repair(&[], &report).await {
                        report.log(format!("repair failed: {repair}"));
                    }
                    manager.fail(operation, &error.to_string());
                    manager.persist().await;
                }
            }
        });
    }
}
