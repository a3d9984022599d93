//! Recovery: reading the record when the page starts (an operation a reload interrupted is
//! marked failed), repairing the guest after it once the VM is ready and the catalog is
//! known, and, each time the VM (re)starts, checking that the installed runtimes are really
//! in it. An `Effect::watch` on the VM's state drives it.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use super::{DpkgInstaller, PackageManager, RuntimeInstaller};
use crate::client::vm_controller::VmViewStoreFields;
use crate::model::{PackageId, PackageStatus, WebVMState};

/// What recovery still has to do.
#[derive(Debug, Default)]
pub(super) struct RecoveryState {
    /// Runtimes whose operation a reload interrupted: the guest is repaired for them once.
    interrupted: Vec<PackageId>,
    /// The VM boot whose installed runtimes were last checked.
    checked_boot: Option<DateTime<Utc>>,
}

/// When recovery may act.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RecoveryGate {
    /// The VM is ready and not busy.
    ready: bool,
    /// The VM's boot.
    boot: Option<DateTime<Utc>>,
    /// The record is read and no operation, repair, check or save is going on.
    idle: bool,
    /// The open page has a catalog (a repair needs its entries).
    catalog_known: bool,
}

impl PackageManager {
    /// Reads the record; an operation a reload interrupted is marked failed, and the
    /// guest is repaired (and installed runtimes checked) once the VM is ready.
    pub fn start(&self) {
        if self.started.get_value() {
            return;
        }
        self.started.set_value(true);
        let manager = *self;
        wasm_bindgen_futures::spawn_local(async move {
            let Some(mut book) = manager.load_record().await else {
                return;
            };
            let interrupted = book.recover_interrupted(Utc::now());
            manager
                .recovery
                .update_value(|state| state.interrupted = interrupted.clone());
            manager.book.try_set(book);
            manager.loaded.try_set(true);
            if !interrupted.is_empty() {
                manager.persist().await;
            }
        });
    }

    /// Watches the VM (from `App`, for the page's lifetime): once it is ready, repairs
    /// after interrupted operations; and each time it (re)starts, checks that the installed
    /// runtimes are really in it.
    pub(super) fn watch_vm(&self) {
        let manager = *self;
        let vm = self.vm;
        Effect::watch(
            move || RecoveryGate {
                ready: vm.live_state.get() == WebVMState::Ready
                    && vm.view.busy().with(Option::is_none),
                boot: vm.status.with(|status| status.boot_time),
                idle: !manager.busy.get(),
                catalog_known: manager.catalog_known(),
            },
            move |gate, previous, _| {
                if previous != Some(gate) {
                    manager.recover(*gate);
                }
            },
            true,
        );
    }

    /// Whether the open page has a catalog with entries (tracked).
    fn catalog_known(&self) -> bool {
        self.sources
            .with(|sources| {
                sources.and_then(|sources| {
                    sources
                        .catalog
                        .try_with(|catalog| catalog.as_ref().map(|c| !c.entries.is_empty()))
                        .flatten()
                })
            })
            .unwrap_or(false)
    }

    /// Starts what recovery has to do now, if anything.
    fn recover(&self, gate: RecoveryGate) {
        if !gate.ready || !gate.idle {
            return;
        }
        let (interrupted, verify) = self.recovery.with_value(|state| {
            let repair = gate.catalog_known && !state.interrupted.is_empty();
            (repair, repair || gate.boot != state.checked_boot)
        });
        if !interrupted && !verify {
            return;
        }
        let interrupted = if interrupted {
            self.recovery
                .try_update_value(|state| std::mem::take(&mut state.interrupted))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        self.recovery
            .update_value(|state| state.checked_boot = gate.boot);
        self.maintenance.try_set(true);
        let manager = *self;
        wasm_bindgen_futures::spawn_local(async move {
            let installer = DpkgInstaller::new(manager.vm);
            if !interrupted.is_empty() {
                manager.repair_interrupted(&installer, interrupted).await;
            }
            manager.verify_installed(&installer).await;
            manager.maintenance.try_set(false);
        });
    }

    async fn repair_interrupted(&self, installer: &DpkgInstaller, interrupted: Vec<PackageId>) {
        for id in interrupted {
            let Some(entry) = self.entry(&id) else {
                continue;
            };
            let Some(operation) = self.book.with_untracked(|book| {
                book.operations
                    .iter()
                    .rev()
                    .find(|operation| operation.package_id == id)
                    .map(|operation| operation.id)
            }) else {
                continue;
            };
            let report = self.reporter(operation, &id);
            let names: Vec<String> = entry
                .package
                .deb_packages
                .iter()
                .filter_map(|file| crate::domain::package_install::debian_package_name(file))
                .map(str::to_string)
                .collect();
            let states = installer.query(&names).await.unwrap_or_default();
            let broken: Vec<String> = names
                .iter()
                .filter(|name| states.get(*name).is_some_and(|state| state.broken))
                .cloned()
                .collect();
            match installer.repair(&broken, &report).await {
                Ok(()) => report.log(format!("the VM was repaired after the interrupted operation; install {id} again to retry")),
                Err(error) => report.log(format!("repair failed: {error}")),
            }
            self.persist().await;
        }
    }

    /// Runtimes recorded as installed whose Debian packages are not in this VM (it
    /// started from a fresh image) become `error`, with the reason.
    async fn verify_installed(&self, installer: &DpkgInstaller) {
        let installed: Vec<(PackageId, Vec<String>)> = self.book.with_untracked(|book| {
            book.records
                .iter()
                .filter(|(_, record)| record.status == PackageStatus::Installed)
                .map(|(id, record)| {
                    (
                        id.clone(),
                        record
                            .installed_files
                            .iter()
                            .filter_map(|file| {
                                crate::domain::package_install::debian_package_name(file)
                            })
                            .map(str::to_string)
                            .collect(),
                    )
                })
                .collect()
        });
        let mut changed = false;
        for (id, names) in installed {
            let Ok(states) = installer.query(&names).await else {
                continue;
            };
            let missing: Vec<&String> = names
                .iter()
                .filter(|name| !states.get(*name).is_some_and(|state| state.installed))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let reason = format!(
                "not in this VM any more (it started from a fresh image): {} missing; install it again",
                missing.iter().map(|name| name.as_str()).collect::<Vec<_>>().join(", ")
            );
            self.book.try_update(|book| {
                if let Some(record) = book
                    .records
                    .get_mut(&id)
                    .filter(|record| record.status == PackageStatus::Installed)
                {
                    record.status = PackageStatus::Error;
                    record.error = Some(reason.clone());
                }
            });
            changed = true;
        }
        if changed {
            self.persist().await;
        }
    }
}
