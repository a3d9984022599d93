//! `/packages?install=a,b&return=/applications/<name>`: the runtimes an application is
//! missing (or, with `return=/applications`, an imported backup's), with "Install for <app>" (the usual install flow, one runtime and its
//! dependencies at a time) and, once they are all installed, "Back to <app>".

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use crate::client::packages::PackageManager;
use crate::model::{PackageId, PackageStatus};
use crate::ui::components::StatusBadge;

/// What the query asks for: the runtimes, and the application page to go back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallRequest {
    pub runtimes: Vec<PackageId>,
    /// Only an application's page of this site (`/applications/<name>`).
    pub back: Option<(String, String)>,
}

impl InstallRequest {
    /// Reads `install` (comma-separated ids; bad ones are left out) and `return` (kept only
    /// when it is `/applications/<name>` or `/applications`, so the link can't lead off the
    /// site).
    pub fn parse(install: &str, back: &str) -> Option<Self> {
        let runtimes: Vec<PackageId> = install
            .split(',')
            .filter_map(|id| PackageId::parse(id.trim()).ok())
            .collect();
        if runtimes.is_empty() {
            return None;
        }
        let back = if back == "/applications" {
            Some(("/applications".to_string(), "your applications".to_string()))
        } else {
            back.strip_prefix("/applications/")
                .filter(|name| crate::model::AppName::parse(name).is_ok())
                .map(|name| (format!("/applications/{name}"), name.to_string()))
        };
        Some(InstallRequest { runtimes, back })
    }
}

#[component]
pub fn InstallFor(manager: PackageManager) -> impl IntoView {
    let query = use_query_map();
    let request = Memo::new(move |_| {
        query.with(|query| {
            InstallRequest::parse(
                &query.get("install").unwrap_or_default(),
                &query.get("return").unwrap_or_default(),
            )
        })
    });
    let statuses = Memo::new(move |_| {
        let Some(request) = request.get() else {
            return Vec::new();
        };
        manager.packages.with(|packages| {
            request
                .runtimes
                .iter()
                .map(|id| {
                    let status = packages
                        .iter()
                        .find(|package| &package.id == id)
                        .map(|package| package.status);
                    (id.clone(), status)
                })
                .collect::<Vec<_>>()
        })
    });
    let next = Memo::new(move |_| {
        statuses.with(|statuses| {
            statuses
                .iter()
                .find(|(_, status)| {
                    matches!(
                        status,
                        Some(PackageStatus::Available | PackageStatus::Error)
                    )
                })
                .map(|(id, _)| id.clone())
        })
    });
    let all_installed = Memo::new(move |_| {
        statuses.with(|statuses| {
            !statuses.is_empty()
                && statuses
                    .iter()
                    .all(|(_, status)| *status == Some(PackageStatus::Installed))
        })
    });
    let app = move || request.with(|request| request.as_ref().and_then(|r| r.back.clone()));
    let app_name = move || {
        app()
            .map(|(_, name)| name)
            .unwrap_or_else(|| "the application".to_string())
    };
    view! {
        <Show when=move || request.with(Option::is_some)>
            <section class="card install-for" data-testid="install-for" aria-labelledby="install-for-title">
                <h2 class="card__title" id="install-for-title">{move || format!("Runtimes for {}", app_name())}</h2>
                <ul class="install-for__list">
                    {move || statuses.get().into_iter().map(|(id, status)| view! {
                        <li data-package=id.to_string()>
                            <code>{id.to_string()}</code>
                            " "
                            {match status {
                                Some(status) => view! { <StatusBadge status /> }.into_any(),
                                None => view! { <span class="muted">"not in this server's catalog"</span> }.into_any(),
                            }}
                        </li>
                    }).collect_view()}
                </ul>
                <div class="package-actions">
                    <Show when=move || next.with(Option::is_some)>
                        <button
                            type="button"
                            class="button"
                            disabled=move || manager.busy.get()
                            on:click=move |_| {
                                if let Some(id) = next.get_untracked() {
                                    manager.install(id);
                                }
                            }
                        >
                            {move || format!("Install for {}", app_name())}
                        </button>
                    </Show>
                    <Show when=move || all_installed.get()>
                        <p role="status">"Everything it needs is installed."</p>
                    </Show>
                    {move || app().map(|(href, name)| view! {
                        <A href=href attr:class=move || if all_installed.get() { "button" } else { "button button--secondary" }>
                            {format!("Back to {name}")}
                        </A>
                    })}
                </div>
            </section>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_requests_keep_only_ids_and_app_pages() {
        let cases = [
            (
                "python-311,flask",
                "/applications/shop",
                Some((vec!["python-311", "flask"], Some("shop"))),
            ),
            (
                "nginx, Bad!",
                "https://evil.example/",
                Some((vec!["nginx"], None)),
            ),
            (
                "nginx",
                "/applications/../settings",
                Some((vec!["nginx"], None)),
            ),
            ("", "/applications/shop", None),
            (
                "nginx,python-311",
                "/applications",
                Some((vec!["nginx", "python-311"], Some("your applications"))),
            ),
        ];
        for (install, back, expected) in cases {
            let parsed = InstallRequest::parse(install, back).map(|request| {
                (
                    request
                        .runtimes
                        .iter()
                        .map(|id| id.as_str().to_string())
                        .collect::<Vec<_>>(),
                    request.back.map(|(_, name)| name),
                )
            });
            let expected = expected.map(|(ids, name)| {
                (
                    ids.into_iter().map(str::to_string).collect::<Vec<_>>(),
                    name.map(str::to_string),
                )
            });
            assert_eq!(parsed, expected, "{install} {back}");
        }
    }
}
