//! Packages: the runtime catalog (categories, search, each runtime's .deb files with their
//! checksums) and, in the browser, installing and removing runtimes in the VM with progress,
//! live logs, validation errors and suggestions, and the operation history.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::package_catalog;
use crate::client::apps::AppManager;
use uuid::Uuid;

use crate::client::packages::{PackageManager, PackageSources};
use crate::client::vm_controller::VmController;
use crate::model::catalog::PackageCatalogEntry;
use crate::model::{
    OperationStatus, PackageOperation, PackageOperationKind, RuntimeCategory, RuntimePackage,
    WebVMState,
};
use crate::ui::components::{EmptyState, ErrorPanel, Loading, PageHeader, StatusBadge};
use crate::ui::format::timestamp;

mod card;
mod install_for;

use card::PackageCard;
use install_for::InstallFor;

/// The category filter's choices: (category, label); `None` is every category.
const CATEGORIES: [(Option<RuntimeCategory>, &str); 6] = [
    (None, "All categories"),
    (Some(RuntimeCategory::WebServer), "Web servers"),
    (Some(RuntimeCategory::Runtime), "Runtimes"),
    (Some(RuntimeCategory::Framework), "Frameworks"),
    (Some(RuntimeCategory::Database), "Databases"),
    (Some(RuntimeCategory::Tool), "Tools"),
];

/// The category filter as the form sends it (`?category=web-server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryFilter {
    /// Every category (no value, or an empty one).
    All,
    /// One category.
    Only(RuntimeCategory),
    /// A value that names no category: nothing matches.
    Unknown,
}

impl CategoryFilter {
    /// The filter a form value asks for.
    pub fn parse(text: &str) -> Self {
        if text.is_empty() {
            CategoryFilter::All
        } else {
            text.parse()
                .map_or(CategoryFilter::Unknown, CategoryFilter::Only)
        }
    }

    /// The filter of a choice in [`CATEGORIES`].
    fn of(choice: Option<RuntimeCategory>) -> Self {
        choice.map_or(CategoryFilter::All, CategoryFilter::Only)
    }

    fn admits(self, category: RuntimeCategory) -> bool {
        match self {
            CategoryFilter::All => true,
            CategoryFilter::Only(only) => only == category,
            CategoryFilter::Unknown => false,
        }
    }
}

/// Whether a package matches the search text (id, name or description) and the category.
pub fn package_matches(package: &RuntimePackage, search: &str, category: CategoryFilter) -> bool {
    let search = search.trim().to_lowercase();
    let category_ok = category.admits(package.category);
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
    let manager = PackageManager::expect();
    let vm = VmController::expect();
    let catalog = Resource::new(|| (), |_| package_catalog());
    // This browser's registry (the source of truth), once read: until then removing a
    // runtime stays off, since an app might need it.
    let apps = AppManager::expect();
    // The resource stays this page's; the manager reads it through this while it is open.
    manager.attach(PackageSources {
        catalog: Memo::new(move |_| catalog.get().and_then(Result::ok)).into(),
        applications: Memo::new(move |_| {
            (apps.loaded.get() && apps.writable.get()).then(|| apps.applications.get())
        })
        .into(),
    });
    // Browser only (effects don't run on the server): read the record, start the VM.
    Effect::new(move |_| {
        manager.start();
        vm.start_on_load();
    });
    view! {
        <Title text="Packages" />
        <PageHeader
            title="Packages"
            lead="Runtime packages are groups of real Debian i386 packages, checked by SHA-256 and installed into the VM."
        />
        <VmStrip vm />
        <PackageNotice manager />
        <InstallFor manager />
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
                        .map(|(choice, label)| {
                            let value = choice.map_or("", RuntimeCategory::as_str);
                            let filter = CategoryFilter::of(*choice);
                            view! {
                                <option
                                    value=value
                                    selected=move || CategoryFilter::parse(&category.get()) == filter
                                >
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
    // Memos, so heartbeats and stats samples (which rewrite the status) wake nothing here.
    let state = vm.live_state;
    let load_progress = Memo::new(move |_| vm.status.with(|status| status.load_progress));
    let error_message = Memo::new(move |_| {
        vm.status
            .with(|status| status.error_message.clone())
            .unwrap_or_default()
    });
    let text = move || {
        match state.get() {
        WebVMState::Ready => "The VM is ready: runtimes install into it directly.".to_string(),
        WebVMState::Unloaded => "The VM is not running yet; it starts when this page opens in a browser with JavaScript.".to_string(),
        WebVMState::Loading => format!(
            "The VM is loading ({}%); installing becomes possible once it is ready.",
            load_progress.get()
        ),
        WebVMState::Booting => "The VM is booting; installing becomes possible once it is ready.".to_string(),
        WebVMState::Hibernating => "The VM is hibernating: resume it on the Dashboard to install or remove runtimes.".to_string(),
        WebVMState::Error => format!("The VM failed: {}", error_message.get()),
    }
    };
    let state = move || state.get();
    view! {
        <div class="vm-strip" data-vm-state=move || state().as_str()>
            {move || view! { <StatusBadge status=state() /> }}
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
    let running = matches!(
        operation.status,
        OperationStatus::Pending | OperationStatus::Running
    );
    let verb = match (operation.operation, running) {
        (PackageOperationKind::Remove, true) => "Removing",
        (PackageOperationKind::Update, true) => "Updating",
        (PackageOperationKind::Install, true) => "Installing",
        (PackageOperationKind::Remove, false) => "Removal of",
        (PackageOperationKind::Update, false) => "Update of",
        (PackageOperationKind::Install, false) => "Install of",
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

/// The running (or last) operation without its log: what the activity panel's header shows.
#[derive(Debug, Clone, PartialEq)]
struct ActivityHead {
    id: Uuid,
    title: String,
    status: OperationStatus,
    error: Option<String>,
}

/// The running (or last) operation: progress 0–100, what is happening, the live log.
#[component]
fn ActivityPanel(manager: PackageManager) -> impl IntoView {
    // The head changes with the operation's status, not with its log lines.
    let last = Memo::new(move |_| {
        manager.book.with(|book| {
            book.operations.last().map(|operation| ActivityHead {
                id: operation.id,
                title: operation_title(operation),
                status: operation.status,
                error: operation.error.clone(),
            })
        })
    });
    let log = Memo::new(move |_| {
        manager.log_written.track();
        manager.book.with(|book| {
            book.operations
                .last()
                .map(|operation| {
                    let skip = operation.logs.len().saturating_sub(400);
                    operation.logs[skip..].join("\n")
                })
                .unwrap_or_default()
        })
    });
    let percent = move || {
        last.with(|head| {
            let head = head.as_ref()?;
            Some(match head.status {
                OperationStatus::Completed => 100,
                _ => manager.activity.with(|activity| {
                    if activity.operation == Some(head.id) {
                        activity.percent
                    } else {
                        0
                    }
                }),
            })
        })
    };
    let detail = move || {
        last.with(|head| {
            let head = head.as_ref()?;
            Some(match head.status {
                OperationStatus::Failed => head.error.clone().unwrap_or_default(),
                _ => manager.activity.with(|activity| {
                    if activity.operation == Some(head.id) {
                        activity.detail.clone()
                    } else {
                        String::new()
                    }
                }),
            })
        })
    };
    let status = move || last.with(|head| head.as_ref().map(|head| head.status));
    // The live log follows its newest line.
    let log_box = NodeRef::<leptos::html::Pre>::new();
    Effect::new(move |_| {
        log.track();
        if let Some(element) = log_box.get() {
            element.set_scroll_top(element.scroll_height());
        }
    });
    view! {
        <Show when=move || last.with(Option::is_some)>
            <section
                class="card package-activity"
                data-testid="package-activity"
                data-status=move || status().map_or("", OperationStatus::as_str)
                aria-labelledby="package-activity-title"
            >
                <div class="card__header">
                    <h2 class="card__title" id="package-activity-title">
                        {move || last.with(|head| head.as_ref().map(|head| head.title.clone()).unwrap_or_default())}
                    </h2>
                    {move || status().map(|status| view! { <StatusBadge status /> })}
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
                <Show when=move || status() == Some(OperationStatus::Failed)>
                    <p class="inline-error" role="alert" data-testid="package-error">
                        {move || last.with(|head| head.as_ref().and_then(|head| head.error.clone())).unwrap_or_default()}
                    </p>
                </Show>
                <pre
                    class="operation-log"
                    data-testid="operation-log"
                    aria-live="polite"
                    aria-label="Operation log"
                    node_ref=log_box
                >
                    {move || log.get()}
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
    // After it has finished, an operation may still log (the VM checkpoint).
    let finished = |operation: &&PackageOperation| {
        matches!(
            operation.status,
            OperationStatus::Completed | OperationStatus::Failed
        )
    };
    // What identifies the history's content, cheap to compute on every log line: no logs
    // are cloned unless a finished operation's changed.
    let history_key = Memo::new(move |_| {
        manager.log_written.track();
        manager.book.with(|book| {
            book.operations
                .iter()
                .filter(finished)
                .map(|operation| (operation.id, operation.status, operation.logs.len()))
                .collect::<Vec<_>>()
        })
    });
    let operations = Memo::new(move |_| {
        history_key.track();
        manager.book.with_untracked(|book| {
            book.operations
                .iter()
                .rev()
                .filter(finished)
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
                                                <td><StatusBadge status=operation.status /></td>
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
        let search = search.get();
        let category = category.with(|category| CategoryFilter::parse(category));
        entries.with_value(|entries| {
            entries
                .iter()
                .filter(|entry| package_matches(&entry.package, &search, category))
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
