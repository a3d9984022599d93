//! Packages: the runtime catalog, with category filter and search (live with JS, a GET form without).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::list_packages;
use crate::model::RuntimePackage;
use crate::ui::components::{EmptyState, ErrorPanel, Loading, PageHeader, StatusBadge};
use crate::ui::format::{megabytes, wire_name};

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
    let packages = Resource::new(|| (), |_| list_packages());
    view! {
        <Title text="Packages" />
        <PageHeader
            title="Packages"
            lead="Runtime packages are groups of real Debian i386 packages, checked by SHA-256 and installed into the VM."
        />
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
                match packages.await {
                    Ok(all) if all.is_empty() => {
                        view! {
                            <EmptyState
                                title="The catalog is empty"
                                body="No runtime packages have been indexed on this server yet. The server fills its package repository from Debian's archive and indexes every .deb it finds; once it has, web servers, language runtimes, databases and tools appear here, ready to install into the VM."
                            />
                        }
                            .into_any()
                    }
                    Ok(all) => view! { <PackageList all search category /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn PackageList(
    all: Vec<RuntimePackage>,
    search: RwSignal<String>,
    category: RwSignal<String>,
) -> impl IntoView {
    let all = StoredValue::new(all);
    let visible = move || {
        let (search, category) = (search.get(), category.get());
        all.with_value(|all| {
            all.iter()
                .filter(|package| package_matches(package, &search, &category))
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    view! {
        <p class="muted" aria-live="polite">
            {move || format!("{} of {} packages", visible().len(), all.with_value(Vec::len))}
        </p>
        <ul class="card-list">
            {move || {
                visible()
                    .into_iter()
                    .map(|package| view! { <PackageCard package /> })
                    .collect_view()
            }}
        </ul>
    }
}

#[component]
fn PackageCard(package: RuntimePackage) -> impl IntoView {
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    let dependencies = list(
        &package
            .dependencies
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    );
    let conflicts = list(
        &package
            .conflicts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    );
    view! {
        <li class="card package-card">
            <div class="card__header">
                <h2 class="card__title">{package.name.clone()}</h2>
                <StatusBadge status=wire_name(&package.status) />
            </div>
            <p class="muted">
                <code>{package.id.to_string()}</code>
                " · "
                {wire_name(&package.category)}
                " · version "
                {package.version.clone()}
            </p>
            <p>{package.description.clone()}</p>
            <dl class="facts">
                <dt>"Download"</dt>
                <dd>{megabytes(package.size)}</dd>
                <dt>"Installed"</dt>
                <dd>{megabytes(package.extracted_size)}</dd>
                <dt>"Depends on"</dt>
                <dd>{dependencies}</dd>
                <dt>"Conflicts with"</dt>
                <dd>{conflicts}</dd>
            </dl>
        </li>
    }
}
