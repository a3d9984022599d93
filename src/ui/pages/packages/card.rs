//! One runtime's card on the Packages page: its facts, status, install and remove actions
//! with their validation, and its .deb files with checksums.

use leptos::prelude::*;

use crate::client::packages::{InstallCheck, PackageManager};
use crate::client::vm_controller::VmController;
use crate::model::catalog::{PackageCatalogEntry, RuntimeLayer};
use crate::model::{PackageId, PackageStatus, ValidationResult, WebVMState};
use crate::ui::components::StatusBadge;
use crate::ui::format::{megabytes, timestamp};

/// What a card shows that changes: each a Memo, so that the card's closures wake only when
/// its own runtime's record changes (or whether operations may start, or the VM's state),
/// never for a log line.
#[derive(Clone, Copy)]
struct CardState {
    /// The runtime's status: this browser's record, or the catalog's.
    status: Memo<PackageStatus>,
    /// Why it failed or is unavailable.
    error: Memo<Option<String>>,
    /// When it was installed and how long that took.
    installed: Memo<Option<String>>,
    /// Operations may start now: none is running and the VM is ready.
    actions_enabled: Memo<bool>,
    /// The VM is ready.
    vm_ready: Memo<bool>,
}

impl CardState {
    fn new(manager: PackageManager, vm: VmController, entry: &PackageCatalogEntry) -> Self {
        let record = manager.record(entry.package.id.clone());
        let catalog_status = entry.package.status;
        let catalog_error = entry.catalog_error.clone();
        let vm_ready = Memo::new(move |_| vm.live_state.get() == WebVMState::Ready);
        CardState {
            status: Memo::new(move |_| {
                record.with(|record| {
                    record
                        .as_ref()
                        .map_or(catalog_status, |record| record.status)
                })
            }),
            error: Memo::new(move |_| {
                record
                    .with(|record| record.as_ref().and_then(|record| record.error.clone()))
                    .or_else(|| catalog_error.clone())
            }),
            installed: Memo::new(move |_| {
                record.with(|record| {
                    let record = record
                        .as_ref()
                        .filter(|record| record.status == PackageStatus::Installed)?;
                    let date = record.install_date?;
                    Some(format!(
                        "{} (took {:.1} s)",
                        timestamp(&date),
                        record.install_duration.unwrap_or(0) as f64 / 1000.0
                    ))
                })
            }),
            actions_enabled: Memo::new(move |_| !manager.busy.get() && vm_ready.get()),
            vm_ready,
        }
    }

    fn can_install(&self) -> bool {
        matches!(
            self.status.get(),
            PackageStatus::Available | PackageStatus::Error
        )
    }

    fn can_remove(&self) -> bool {
        self.status.get() == PackageStatus::Installed
    }
}

fn id_list(ids: &[PackageId]) -> String {
    if ids.is_empty() {
        "none".to_string()
    } else {
        ids.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Errors, warnings and suggestions of a validation.
#[component]
fn ValidationMessages(result: ValidationResult) -> impl IntoView {
    let suggestions = result.suggestions().to_vec();
    view! {
        {(!result.errors.is_empty()).then(|| view! {
            <ul class="problems inline-error" role="alert">
                {result.errors.iter().map(|error| view! { <li>{error.clone()}</li> }).collect_view()}
            </ul>
        })}
        {(!result.warnings.is_empty()).then(|| view! {
            <ul class="problems package-warnings">
                {result.warnings.iter().map(|warning| view! { <li>{warning.clone()}</li> }).collect_view()}
            </ul>
        })}
        {(!suggestions.is_empty()).then(|| view! {
            <p class="package-suggestions">"Suggestions: " {suggestions.join("; ")}</p>
        })}
    }
}

#[component]
pub(super) fn PackageCard(
    entry: PackageCatalogEntry,
    files_base_url: String,
    manager: PackageManager,
    vm: VmController,
) -> impl IntoView {
    let package = entry.package.clone();
    let id = package.id.clone();
    let state = CardState::new(manager, vm, &entry);
    let install_check: RwSignal<Option<InstallCheck>> = RwSignal::new(None);
    let removal_check: RwSignal<Option<ValidationResult>> = RwSignal::new(None);
    let start_install = {
        let id = id.clone();
        move |_| {
            removal_check.set(None);
            let resources = vm
                .status
                .with_untracked(|status| status.system_resources.clone());
            let check = manager.check_install(&id, &resources);
            if check.validation.valid && check.dependencies().is_empty() {
                install_check.set(None);
                manager.install(id.clone());
            } else {
                install_check.set(Some(check));
            }
        }
    };
    let confirm_install = {
        let id = id.clone();
        move |_| {
            install_check.set(None);
            manager.install(id.clone());
        }
    };
    let start_removal = {
        let id = id.clone();
        move |_| {
            install_check.set(None);
            removal_check.set(Some(manager.check_removal(&id)));
        }
    };
    let confirm_removal = {
        let id = id.clone();
        move |_| {
            removal_check.set(None);
            manager.remove(id.clone());
        }
    };
    let files: Vec<(String, u64, String)> = package
        .deb_packages
        .iter()
        .map(|file| {
            (
                file.clone(),
                entry.details.file_sizes.get(file).copied().unwrap_or(0),
                package.checksums.get(file).cloned().unwrap_or_default(),
            )
        })
        .collect();
    let steps = entry.details.install_steps.len();
    let scripts: Vec<(&'static str, String)> = [
        ("Install script", package.install_script.clone()),
        ("Post-install script", package.post_install_script.clone()),
        ("Pre-remove script", package.pre_remove_script.clone()),
    ]
    .into_iter()
    .filter_map(|(label, script)| script.filter(|s| !s.trim().is_empty()).map(|s| (label, s)))
    .collect();
    let warnings = entry.details.warnings.clone();
    let layer = entry.details.layer.clone();
    let name = package.name.clone();
    view! {
        <li class="card package-card" data-package=id.to_string() data-status=move || state.status.get().as_str()>
            <div class="card__header">
                <h2 class="card__title">{package.name.clone()}</h2>
                {move || view! { <StatusBadge status=state.status.get() /> }}
            </div>
            <p class="muted">
                <code>{id.to_string()}</code>
                " · "
                {package.category.as_str()}
                " · version "
                {package.version.clone()}
            </p>
            <p>{package.description.clone()}</p>
            <dl class="facts">
                <dt>"Download"</dt>
                <dd>{megabytes(package.size)}</dd>
                <dt>"Installed size"</dt>
                <dd>{megabytes(package.extracted_size)}</dd>
                <dt>"Depends on"</dt>
                <dd>{id_list(&package.dependencies)}</dd>
                <dt>"Conflicts with"</dt>
                <dd>{id_list(&package.conflicts)}</dd>
                {package.service_names.clone().filter(|names| !names.is_empty()).map(|names| view! {
                    <dt>"Services"</dt>
                    <dd>{names.join(", ")}</dd>
                })}
                <Show when=move || state.installed.with(Option::is_some)>
                    <dt>"Installed"</dt>
                    <dd>{move || state.installed.get().unwrap_or_default()}</dd>
                </Show>
            </dl>
            <Show when=move || state.error.with(Option::is_some)>
                <p class="inline-error package-card__error" role="alert">
                    {move || state.error.get().unwrap_or_default()}
                </p>
            </Show>
            <div class="package-actions">
                <Show when=move || state.can_install()>
                    <button
                        class="button"
                        data-action="install"
                        disabled=move || !state.actions_enabled.get()
                        on:click=start_install.clone()
                    >
                        {move || {
                            if state.status.get() == PackageStatus::Error {
                                "Retry install"
                            } else {
                                "Install"
                            }
                        }}
                    </button>
                </Show>
                <Show when=move || state.can_remove()>
                    <button
                        class="button button--secondary"
                        data-action="remove"
                        disabled=move || !state.actions_enabled.get()
                        on:click=start_removal.clone()
                    >
                        "Remove"
                    </button>
                </Show>
                <Show when=move || !state.vm_ready.get()>
                    <span class="muted package-actions__hint">"Waiting for the VM…"</span>
                </Show>
            </div>
            {
                let name = name.clone();
                move || install_check.get().map(|check| {
                    let dependencies = check.dependencies().to_vec();
                    let valid = check.validation.valid;
                    let name = name.clone();
                    view! {
                        <div class="package-check" data-testid="install-check">
                            <ValidationMessages result=check.validation.clone() />
                            {(valid && !dependencies.is_empty()).then(|| view! {
                                <p>
                                    {format!("{name} needs runtimes that are not installed yet. They are installed first: ")}
                                    <strong>{id_list(&dependencies)}</strong>
                                </p>
                            })}
                            <div class="package-actions">
                                {valid.then(|| view! {
                                    <button class="button" data-action="confirm-install" on:click=confirm_install.clone()>
                                        "Install all"
                                    </button>
                                })}
                                <button class="button button--secondary" on:click=move |_| install_check.set(None)>
                                    {if valid { "Cancel" } else { "Close" }}
                                </button>
                            </div>
                        </div>
                    }
                })
            }
            {
                let name = name.clone();
                move || removal_check.get().map(|check| {
                    let valid = check.valid;
                    let name = name.clone();
                    view! {
                        <div class="package-check" data-testid="removal-check">
                            <ValidationMessages result=check.clone() />
                            {valid.then(|| view! {
                                <p>{format!("Remove {name} from the VM? Its pre-remove script runs, then dpkg removes its packages.")}</p>
                            })}
                            <div class="package-actions">
                                {valid.then(|| view! {
                                    <button class="button" data-action="confirm-remove" on:click=confirm_removal.clone()>
                                        "Remove"
                                    </button>
                                })}
                                <button class="button button--secondary" on:click=move |_| removal_check.set(None)>
                                    {if valid { "Cancel" } else { "Close" }}
                                </button>
                            </div>
                        </div>
                    }
                })
            }
            <PackageDetails files files_base_url steps scripts warnings layer />
        </li>
    }
    .into_any()
}

/// A runtime's .deb files with sizes and SHA-256 checksums, its dpkg steps and its scripts.
#[component]
fn PackageDetails(
    files: Vec<(String, u64, String)>,
    files_base_url: String,
    steps: usize,
    scripts: Vec<(&'static str, String)>,
    warnings: Vec<String>,
    layer: Option<RuntimeLayer>,
) -> impl IntoView {
    let file_count = files.len();
    let layered = if layer.is_some() {
        ", a prebuilt layer"
    } else {
        ""
    };
    view! {
            <details class="package-details">
                <summary>{format!("{file_count} .deb files, {steps} dpkg steps{layered}, checksums")}</summary>
                {layer.map(|layer| view! {
                    <p class="package-layer" data-testid="package-layer">
                        "Installs from a prebuilt layer (the same files dpkg would write, built on the server): "
                        <code>{layer.file}</code>
                        {format!(", {:.1} MiB, {} Debian packages, SHA-256 ", layer.size as f64 / 1_048_576.0, layer.packages.len())}
                        <code class="checksum">{layer.sha256.to_string()}</code>
                        ". dpkg installs instead when the VM differs from the image it was built on."
                    </p>
                })}
                {(!warnings.is_empty()).then(|| view! {
                    <ul class="problems package-warnings">
                        {warnings.iter().map(|warning| view! { <li>{warning.clone()}</li> }).collect_view()}
                    </ul>
                })}
                <div class="table-wrap">
                    <table class="table package-files">
                        <thead>
                            <tr>
                                <th scope="col">"File"</th>
                                <th scope="col">"Size"</th>
                                <th scope="col">"SHA-256"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {files.into_iter().map(|(file, size, sha256)| {
                                let href = format!("{files_base_url}{file}");
                                view! {
                                    <tr>
                                        <th scope="row"><a href=href>{file}</a></th>
                                        <td>{format!("{:.1} KiB", size as f64 / 1024.0)}</td>
                                        <td><code class="checksum">{sha256}</code></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                {scripts.into_iter().map(|(label, script)| view! {
                    <p class="package-script__label">{label}</p>
                    <pre class="package-script">{script}</pre>
                }).collect_view()}
            </details>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    //! How many of the package cards' reactive closures one log line wakes. Each card's
    //! closures are modelled one for one as render effects (what `view!` makes of a
    //! `move ||` closure) reading what the card's closures read.

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use leptos::prelude::*;
    use leptos::reactive::effect::RenderEffect;
    use uuid::Uuid;

    use super::CardState;
    use crate::client::packages::PackageManager;
    use crate::client::vm_controller::VmController;
    use crate::model::catalog::{CatalogDetails, PackageCatalogEntry};
    use crate::model::{
        PackageId, PackageOperationKind, PackageStatus, RuntimeCategory, RuntimePackage,
    };

    const CARDS: usize = 10;

    fn entry(id: &PackageId) -> PackageCatalogEntry {
        PackageCatalogEntry {
            package: RuntimePackage::new(id.clone(), id.as_str(), RuntimeCategory::Runtime, "1"),
            catalog_error: None,
            details: CatalogDetails::default(),
        }
    }

    /// The card's reactive closures, as in `PackageCard`'s view: data-status, the badge,
    /// the installed fact's `Show`, the error's `Show`, install's `Show`, label and
    /// `disabled`, remove's `Show` and `disabled`, the waiting hint's `Show`.
    fn card_closures(state: CardState) -> Vec<Box<dyn Fn() + Send + Sync>> {
        vec![
            Box::new(move || {
                let _ = state.status.get().as_str();
            }),
            Box::new(move || {
                let _ = state.status.get();
            }),
            Box::new(move || {
                let _ = state.installed.with(Option::is_some);
            }),
            Box::new(move || {
                let _ = state.error.with(Option::is_some);
            }),
            Box::new(move || {
                let _ = state.can_install();
            }),
            Box::new(move || {
                let _ = state.status.get() == PackageStatus::Error;
            }),
            Box::new(move || {
                let _ = !state.actions_enabled.get();
            }),
            Box::new(move || {
                let _ = state.can_remove();
            }),
            Box::new(move || {
                let _ = !state.actions_enabled.get();
            }),
            Box::new(move || {
                let _ = !state.vm_ready.get();
            }),
        ]
    }

    async fn settle() {
        for _ in 0..10 {
            any_spawner::Executor::tick().await;
        }
    }

    #[tokio::test]
    async fn a_log_line_re_renders_no_package_card() {
        let _ = any_spawner::Executor::init_tokio();
        let owner = Owner::new();
        owner.set();
        VmController::provide();
        let manager = PackageManager::provide();
        let vm = VmController::expect();
        let ids: Vec<PackageId> = (0..CARDS)
            .map(|n| PackageId::parse(&format!("runtime-{n}")).expect("valid id"))
            .collect();
        let operation = Uuid::new_v4();
        manager.book.update(|book| {
            book.begin(
                operation,
                &ids[0],
                PackageOperationKind::Install,
                chrono::Utc::now(),
            )
            .expect("nothing else runs");
        });
        let runs: Vec<Arc<AtomicUsize>> = ids.iter().map(|_| Arc::default()).collect();
        let mut effects = Vec::new();
        for (id, runs) in ids.iter().zip(&runs) {
            let state = CardState::new(manager, vm, &entry(id));
            for closure in card_closures(state) {
                let runs = Arc::clone(runs);
                effects.push(RenderEffect::new_isomorphic(move |_| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    closure();
                }));
            }
        }
        settle().await;
        let count = |runs: &[Arc<AtomicUsize>]| -> Vec<usize> {
            runs.iter()
                .map(|runs| runs.load(Ordering::SeqCst))
                .collect()
        };
        let first = count(&runs);
        assert_eq!(
            first.iter().sum::<usize>(),
            CARDS * 10,
            "each closure ran once"
        );

        manager.append_log(operation, "dpkg: unpacking".to_string());
        settle().await;
        let after_log = count(&runs);
        let woken: usize = after_log.iter().zip(&first).map(|(a, b)| a - b).sum();
        println!("card closures woken by one log line: {woken} (of {CARDS} cards)");
        assert_eq!(woken, 0);
        let logged = manager.book.with_untracked(|book| {
            book.operation(operation)
                .map(|operation| operation.logs.clone())
        });
        assert_eq!(logged, Some(vec!["dpkg: unpacking".to_string()]));

        // A change to one runtime's record wakes that runtime's card only.
        manager.book.update(|book| {
            if let Some(record) = book.records.get_mut(&ids[0]) {
                record.status = PackageStatus::Installing;
            }
        });
        settle().await;
        let after_status = count(&runs);
        assert!(after_status[0] > after_log[0], "{after_status:?}");
        assert_eq!(after_status[1..], after_log[1..], "{after_status:?}");
        drop(effects);
    }
}
