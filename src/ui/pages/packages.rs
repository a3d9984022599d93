//! Packages: the runtime catalog (categories, search, each runtime's .deb files with their
//! checksums) and, in the browser, installing and removing runtimes in the VM with progress,
//! live logs, validation errors and suggestions, and the operation history.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::{package_catalog, workspace_applications, PackageCatalogEntry};
use crate::client::packages::{InstallCheck, PackageManager};
use crate::client::vm_controller::VmController;
use crate::model::{
    OperationStatus, PackageId, PackageOperation, PackageStatus, RuntimePackage, ValidationResult,
    WebVMState,
};
use crate::ui::components::{EmptyState, ErrorPanel, Loading, PageHeader, StatusBadge};
use crate::ui::format::{megabytes, timestamp, wire_name};

/// The category filter's choices: (wire value, label).
const CATEGORIES: [(&str, &str); 6] = [
    ("", "All categories"),
    ("web-server", "Web servers"),
    ("runtime", "Runtimes"),
    ("framework", "Frameworks"),
    ("database", "Databases"),
    ("tool", "Tools"),
];

/// Whether a package matches the search text (id, name or description) and the category.
pub fn package_matches(package: &RuntimePackage, search: &str, category: &str) -> bool {
    let search = search.trim().to_lowercase();
    let category_ok = category.is_empty() || wire_name(&package.category) == category;
    let search_ok = search.is_empty()
        || [
            package.id.to_string(),
            package.name.clone(),
            package.description.clone(),
        ]
        .iter()
        .any(|text| text.to_lowercase().contains(&search));
    category_ok && search_ok
}

#[component]
pub fn PackagesPage() -> impl IntoView {
    let query = use_query_map();
    let initial = query.with_untracked(|query| {
        (
            query.get("q").unwrap_or_default(),
            query.get("category").unwrap_or_default(),
        )
    });
    let search = RwSignal::new(initial.0);
    let category = RwSignal::new(initial.1);
    let manager = PackageManager::use_or_provide();
    let vm = VmController::use_or_provide();
    let catalog = Resource::new(|| (), |_| package_catalog());
    let applications = LocalResource::new(workspace_applications);
    // Browser only (effects don't run on the server): read the record, start the VM.
    Effect::new(move |_| {
        manager.start();
        vm.start_on_load();
    });
    Effect::new(move |_| {
        if let Some(Ok(catalog)) = catalog.get() {
            manager.set_catalog(catalog);
        }
    });
    Effect::new(move |_| {
        match applications.get() {
            Some(Ok(list)) => manager.applications.set(Some(list)),
            Some(Err(error)) => manager.notice.set(Some(format!(
                "The workspace's applications could not be loaded ({error}); removing runtimes stays off until they are."
            ))),
            None => {}
        }
    });
    view! {
        <Title text="Packages" />
        <PageHeader
            title="Packages"
            lead="Runtime packages are groups of real Debian i386 packages, checked by SHA-256 and installed into the VM."
        />
        <VmStrip vm />
        <PackageNotice manager />
        <ActivityPanel manager />
        <form class="toolbar" method="get" action="/packages" role="search">
            <div class="field">
                <label for="package-search">"Search"</label>
                <input
                    id="package-search"
                    name="q"
                    type="search"
                    placeholder="nginx, python, database…"
                    value=search.get_untracked()
                    prop:value=move || search.get()
                    on:input=move |event| search.set(event_target_value(&event))
                />
            </div>
            <div class="field">
                <label for="package-category">"Category"</label>
                <select
                    id="package-category"
                    name="category"
                    on:change=move |event| category.set(event_target_value(&event))
                >
                    {CATEGORIES
                        .iter()
                        .map(|(value, label)| {
                            view! {
                                <option value=*value selected=move || category.get() == *value>
                                    {*label}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </div>
            <button type="submit" class="button button--secondary">"Filter"</button>
        </form>
        <Suspense fallback=|| view! { <Loading label="Loading the catalog…" /> }>
            {move || Suspend::new(async move {
                match catalog.await {
                    Ok(catalog) if catalog.entries.is_empty() => {
                        view! {
                            <EmptyState
                                title="The catalog is empty"
                                body="No runtime packages have been indexed on this server yet. The server fills its package repository from Debian's archive and indexes every .deb it finds; once it has, web servers, language runtimes, databases and tools appear here, ready to install into the VM."
                            />
                        }
                            .into_any()
                    }
                    Ok(catalog) => {
                        view! {
                            <PackageList
                                entries=catalog.entries
                                files_base_url=catalog.files_base_url
                                search
                                category
                                manager
                                vm
                            />
                        }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
        <OperationHistory manager />
    }
    .into_any()
}

/// The VM's state as far as installing goes, with a way to start it.
#[component]
fn VmStrip(vm: VmController) -> impl IntoView {
    let state = move || vm.status.with(|status| status.state);
    let text = move || {
        match state() {
        WebVMState::Ready => "The VM is ready: runtimes install into it directly.".to_string(),
        WebVMState::Unloaded => "The VM is not running yet; it starts when this page opens in a browser with JavaScript.".to_string(),
        WebVMState::Loading => format!(
            "The VM is loading ({}%); installing becomes possible once it is ready.",
            vm.status.with(|status| status.load_progress)
        ),
        WebVMState::Booting => "The VM is booting; installing becomes possible once it is ready.".to_string(),
        WebVMState::Hibernating => "The VM is hibernating: resume it on the Dashboard to install or remove runtimes.".to_string(),
        WebVMState::Error => format!(
            "The VM failed: {}",
            vm.status
                .with(|status| status.error_message.clone())
                .unwrap_or_default()
        ),
    }
    };
    view! {
        <div class="vm-strip" data-vm-state=move || wire_name(&state())>
            {move || view! { <StatusBadge status=wire_name(&state()) /> }}
            <span class="vm-strip__text">{text}</span>
            <a class="vm-strip__link" href="/">"Dashboard"</a>
            <Show when=move || state() == WebVMState::Error>
                <button class="button button--secondary" on:click=move |_| vm.retry()>
                    "Retry"
                </button>
            </Show>
        </div>
    }
    .into_any()
}

/// Why the last action did not start, or what needs attention.
#[component]
fn PackageNotice(manager: PackageManager) -> impl IntoView {
    view! {
        <Show when=move || manager.notice.with(Option::is_some)>
            <div class="vm-alert vm-alert--notice package-notice" role="alert">
                <p>{move || manager.notice.get().unwrap_or_default()}</p>
                <button class="button button--secondary" on:click=move |_| manager.notice.set(None)>
                    "Dismiss"
                </button>
            </div>
        </Show>
    }
    .into_any()
}

fn operation_title(operation: &PackageOperation) -> String {
    let verb = match operation.status {
        OperationStatus::Pending | OperationStatus::Running => {
            match wire_name(&operation.operation).as_str() {
                "remove" => "Removing",
                "update" => "Updating",
                _ => "Installing",
            }
        }
        _ => match wire_name(&operation.operation).as_str() {
            "remove" => "Removal of",
            "update" => "Update of",
            _ => "Install of",
        },
    };
    format!("{verb} {}", operation.package_id)
}

fn took(operation: &PackageOperation) -> String {
    operation
        .end_time
        .map(|end| {
            let ms = (end - operation.start_time).num_milliseconds().max(0);
            format!("{:.1} s", ms as f64 / 1000.0)
        })
        .unwrap_or_else(|| "—".to_string())
}

/// The running (or last) operation: progress 0–100, what is happening, the live log.
#[component]
fn ActivityPanel(manager: PackageManager) -> impl IntoView {
    let last = move || manager.book.with(|book| book.operations.last().cloned());
    let percent = move || {
        let operation = last()?;
        Some(match operation.status {
            OperationStatus::Completed => 100,
            _ => manager.activity.with(|activity| {
                if activity.operation == Some(operation.id) {
                    activity.percent
                } else {
                    0
                }
            }),
        })
    };
    let detail = move || {
        let operation = last()?;
        Some(match operation.status {
            OperationStatus::Failed => operation.error.clone().unwrap_or_default(),
            _ => manager.activity.with(|activity| {
                if activity.operation == Some(operation.id) {
                    activity.detail.clone()
                } else {
                    String::new()
                }
            }),
        })
    };
    let log = move || {
        last()
            .map(|operation| {
                let skip = operation.logs.len().saturating_sub(400);
                operation.logs[skip..].join("\n")
            })
            .unwrap_or_default()
    };
    let status = move || {
        last()
            .map(|operation| wire_name(&operation.status))
            .unwrap_or_default()
    };
    // The live log follows its newest line.
    let log_box = NodeRef::<leptos::html::Pre>::new();
    Effect::new(move |_| {
        let _ = log();
        if let Some(element) = log_box.get() {
            element.set_scroll_top(element.scroll_height());
        }
    });
    view! {
        <Show when=move || last().is_some()>
            <section class="card package-activity" data-testid="package-activity" data-status=status aria-labelledby="package-activity-title">
                <div class="card__header">
                    <h2 class="card__title" id="package-activity-title">
                        {move || last().map(|operation| operation_title(&operation)).unwrap_or_default()}
                    </h2>
                    {move || view! { <StatusBadge status=status() /> }}
                </div>
                <div class="vm-progress">
                    <span class="vm-progress__label" data-testid="package-progress-label">
                        {move || format!("{}% — {}", percent().unwrap_or(0), detail().unwrap_or_default())}
                    </span>
                    <progress
                        max="100"
                        prop:value=move || percent().unwrap_or(0)
                        aria-label="Operation progress"
                    ></progress>
                </div>
                <Show when=move || last().is_some_and(|operation| operation.status == OperationStatus::Failed)>
                    <p class="inline-error" role="alert" data-testid="package-error">
                        {move || last().and_then(|operation| operation.error).unwrap_or_default()}
                    </p>
                </Show>
                <pre
                    class="operation-log"
                    data-testid="operation-log"
                    aria-live="polite"
                    aria-label="Operation log"
                    node_ref=log_box
                >
                    {log}
                </pre>
            </section>
        </Show>
    }
    .into_any()
}

/// Earlier operations, newest first, each with its log.
#[component]
fn OperationHistory(manager: PackageManager) -> impl IntoView {
    // Finished operations only (the running one is in the activity panel), in a memo: a new
    // log line of the running operation re-renders nothing here, so open logs stay open.
    let operations = Memo::new(move |_| {
        manager.book.with(|book| {
            book.operations
                .iter()
                .rev()
                .filter(|operation| {
                    matches!(
                        operation.status,
                        OperationStatus::Completed | OperationStatus::Failed
                    )
                })
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    view! {
        <Show when=move || operations.with(|operations| !operations.is_empty())>
            <section class="package-history">
                <h2>"Operation history"</h2>
                <div class="table-wrap">
                    <table class="table">
                        <thead>
                            <tr>
                                <th scope="col">"Operation"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"Started"</th>
                                <th scope="col">"Took"</th>
                                <th scope="col">"Log"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {move || {
                                operations
                                    .get()
                                    .into_iter()
                                    .map(|operation| {
                                        let lines = operation.logs.len();
                                        view! {
                                            <tr>
                                                <th scope="row">
                                                    {operation_title(&operation)}
                                                    {operation.error.clone().map(|error| view! { <span class="cell-note">{error}</span> })}
                                                </th>
                                                <td><StatusBadge status=wire_name(&operation.status) /></td>
                                                <td>{timestamp(&operation.start_time)}</td>
                                                <td>{took(&operation)}</td>
                                                <td>
                                                    <details>
                                                        <summary>{format!("{lines} lines")}</summary>
                                                        <pre class="operation-log">{operation.logs.join("\n")}</pre>
                                                    </details>
                                                </td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()
                            }}
                        </tbody>
                    </table>
                </div>
            </section>
        </Show>
    }
    .into_any()
}

#[component]
fn PackageList(
    entries: Vec<PackageCatalogEntry>,
    files_base_url: String,
    search: RwSignal<String>,
    category: RwSignal<String>,
    manager: PackageManager,
    vm: VmController,
) -> impl IntoView {
    let total = entries.len();
    let entries = StoredValue::new(entries);
    let files_base_url = StoredValue::new(files_base_url);
    let visible = move || {
        let (search, category) = (search.get(), category.get());
        entries.with_value(|entries| {
            entries
                .iter()
                .filter(|entry| package_matches(&entry.package, &search, &category))
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    view! {
        <p class="muted" aria-live="polite">
            {move || format!("{} of {total} packages", visible().len())}
        </p>
        <ul class="card-list">
            <For
                each=visible
                key=|entry| entry.package.id.clone()
                children=move |entry| {
                    view! { <PackageCard entry files_base_url=files_base_url.get_value() manager vm /> }
                }
            />
        </ul>
    }
    .into_any()
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
fn PackageCard(
    entry: PackageCatalogEntry,
    files_base_url: String,
    manager: PackageManager,
    vm: VmController,
) -> impl IntoView {
    let package = entry.package.clone();
    let id = package.id.clone();
    let catalog_status = package.status;
    let record = {
        let id = id.clone();
        move || manager.book.with(|book| book.records.get(&id).cloned())
    };
    let status = {
        let record = record.clone();
        move || record().map_or(catalog_status, |record| record.status)
    };
    let install_check: RwSignal<Option<InstallCheck>> = RwSignal::new(None);
    let removal_check: RwSignal<Option<ValidationResult>> = RwSignal::new(None);
    let vm_ready = move || vm.status.with(|status| status.state == WebVMState::Ready);
    let busy = move || manager.busy();
    let can_install = {
        let status = status.clone();
        move || matches!(status(), PackageStatus::Available | PackageStatus::Error)
    };
    let can_remove = {
        let status = status.clone();
        move || status() == PackageStatus::Installed
    };
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
    let error_text = {
        let record = record.clone();
        let catalog_error = entry.catalog_error.clone();
        move || {
            record()
                .and_then(|record| record.error)
                .or_else(|| catalog_error.clone())
        }
    };
    let installed_fact = {
        let record = record.clone();
        move || {
            record()
                .filter(|record| record.status == PackageStatus::Installed)
                .and_then(|record| {
                    let date = record.install_date?;
                    Some(format!(
                        "{} (took {:.1} s)",
                        timestamp(&date),
                        record.install_duration.unwrap_or(0) as f64 / 1000.0
                    ))
                })
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
    let name = package.name.clone();
    let status_text = {
        let status = status.clone();
        move || wire_name(&status())
    };
    view! {
        <li class="card package-card" data-package=id.to_string() data-status=status_text.clone()>
            <div class="card__header">
                <h2 class="card__title">{package.name.clone()}</h2>
                {let status_text = status_text.clone(); move || view! { <StatusBadge status=status_text() /> }}
            </div>
            <p class="muted">
                <code>{id.to_string()}</code>
                " · "
                {wire_name(&package.category)}
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
                <Show when={
                    let installed_fact = installed_fact.clone();
                    move || installed_fact().is_some()
                }>
                    <dt>"Installed"</dt>
                    <dd>{
                        let installed_fact = installed_fact.clone();
                        move || installed_fact().unwrap_or_default()
                    }</dd>
                </Show>
            </dl>
            <Show when={
                let error_text = error_text.clone();
                move || error_text().is_some()
            }>
                <p class="inline-error package-card__error" role="alert">{
                    let error_text = error_text.clone();
                    move || error_text().unwrap_or_default()
                }</p>
            </Show>
            <div class="package-actions">
                <Show when=can_install.clone()>
                    <button
                        class="button"
                        data-action="install"
                        disabled=move || busy() || !vm_ready()
                        on:click=start_install.clone()
                    >
                        {
                            let status = status.clone();
                            move || if status() == PackageStatus::Error { "Retry install" } else { "Install" }
                        }
                    </button>
                </Show>
                <Show when=can_remove.clone()>
                    <button
                        class="button button--secondary"
                        data-action="remove"
                        disabled=move || busy() || !vm_ready()
                        on:click=start_removal.clone()
                    >
                        "Remove"
                    </button>
                </Show>
                <Show when=move || !vm_ready()>
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
            <PackageDetails files files_base_url steps scripts warnings />
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
) -> impl IntoView {
    let file_count = files.len();
    view! {
            <details class="package-details">
                <summary>{format!("{file_count} .deb files, {steps} dpkg steps, checksums")}</summary>
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
