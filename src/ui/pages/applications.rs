//! Applications: the registry of the workspace's apps, with status, runtimes, port, last
//! deploy and actions. The server renders the mirror (so the list reads without
//! JavaScript); once this browser's record (the source of truth) has been read, the list
//! comes from it, with Deploy, Duplicate and Delete.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{list_applications, ApplicationSummary};
use crate::client::apps::AppManager;
use crate::model::{AppName, Application, ApplicationId, ApplicationStatus};
use crate::ui::components::{EmptyState, ErrorPanel, Loading, PageHeader, StatusBadge};
use crate::ui::format::timestamp;
use crate::ui::pages::app_actions::{DeleteButton, DuplicateButton};

/// One row of the list, from the mirror or from this browser's record.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    /// With the record's id the row offers Duplicate and Delete (browser only).
    live: Option<(ApplicationId, AppName)>,
    name: String,
    description: Option<String>,
    status: ApplicationStatus,
    runtimes: String,
    port: Option<u16>,
    last_deployed: Option<DateTime<Utc>>,
}

/// A draft has never been deployed: its `lastDeployed` is only its creation time.
fn deployed_at(status: ApplicationStatus, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (status != ApplicationStatus::Draft).then_some(at)
}

impl From<ApplicationSummary> for Row {
    fn from(summary: ApplicationSummary) -> Self {
        Row {
            live: None,
            last_deployed: deployed_at(summary.status, summary.last_deployed),
            name: summary.name,
            description: summary.description,
            status: summary.status,
            runtimes: summary.required_runtimes.join(", "),
            port: summary.port,
        }
    }
}

impl From<&Application> for Row {
    fn from(app: &Application) -> Self {
        Row {
            live: Some((app.id, app.name.clone())),
            name: app.name.to_string(),
            description: app.description.clone(),
            status: app.status,
            runtimes: app
                .runtime
                .required_runtimes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            port: app.execution.port.map(|port| port.get()),
            last_deployed: deployed_at(app.status, app.last_deployed),
        }
    }
}

#[component]
pub fn ApplicationsPage() -> impl IntoView {
    let manager = AppManager::expect();
    let mirror = Resource::new(|| (), |_| list_applications());
    let live = Memo::new(move |_| {
        manager
            .applications
            .with(|apps| apps.iter().map(Row::from).collect::<Vec<_>>())
    });
    view! {
        <Title text="Applications" />
        <PageHeader
            title="Applications"
            lead="Apps deployed into the VM. Each one is served at /apps/<name>/ while it runs."
        >
            <A href="/applications/new" attr:class="button">"New application"</A>
        </PageHeader>
        <Show when=move || manager.notice.with(Option::is_some)>
            <div class="vm-alert vm-alert--notice" role="alert">
                <p>{move || manager.notice.get().unwrap_or_default()}</p>
                <button class="button button--secondary" on:click=move |_| manager.notice.set(None)>"Dismiss"</button>
            </div>
        </Show>
        <Suspense fallback=|| view! { <Loading label="Loading applications…" /> }>
            {move || Suspend::new(async move {
                let mirrored = mirror.await;
                // The server's rows until this part has hydrated and this browser's record
                // has been read (so hydration sees what the server rendered), then the record's.
                let hydrated = RwSignal::new(false);
                Effect::new(move |_| hydrated.set(true));
                view! {
                    {move || {
                        if hydrated.get() && manager.loaded.get() {
                            view! { <ApplicationList rows=live.get() /> }.into_any()
                        } else {
                            match mirrored.clone() {
                                Ok(list) => {
                                    let rows = list.into_iter().map(Row::from).collect();
                                    view! { <ApplicationList rows /> }.into_any()
                                }
                                Err(error) => view! { <ErrorPanel error /> }.into_any(),
                            }
                        }
                    }}
                }
            })}
        </Suspense>
    }
}

#[component]
fn ApplicationList(rows: Vec<Row>) -> impl IntoView {
    if rows.is_empty() {
        return view! {
            <EmptyState
                title="No applications yet"
                body="An application is code you deploy into the VM — from files or a ZIP, a URL, a GitHub repository or a local folder — and run with a command, a port, restart policy and health check."
            >
                <p>
                    <A href="/applications/new" attr:class="button">"Create your first application"</A>
                </p>
                <p>
                    "It needs a runtime, installed from the "
                    <A href="/packages">"Packages"</A>
                    " page (a web server or Python, for example); the app's page offers to install what is missing."
                </p>
            </EmptyState>
        }
        .into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table app-table">
                <caption class="visually-hidden">"Applications"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Runtimes"</th>
                        <th scope="col">"Port"</th>
                        <th scope="col">"Last deployed"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|row| view! { <ApplicationRow row /> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn ApplicationRow(row: Row) -> impl IntoView {
    let href = format!("/applications/{}", row.name);
    let deploy_href = format!("{href}?tab=deploy");
    let name = row.name.clone();
    let data_name = row.name.clone();
    view! {
        <tr data-app=data_name>
            <th scope="row" data-label="Name">
                <A href=href.clone()>{row.name.clone()}</A>
                {row.description.clone().map(|text| view! { <span class="cell-note">{text}</span> })}
            </th>
            <td data-label="Status">
                <StatusBadge status=row.status />
            </td>
            <td data-label="Runtimes">{if row.runtimes.is_empty() { "—".to_string() } else { row.runtimes.clone() }}</td>
            <td data-label="Port">{row.port.map(|port| port.to_string()).unwrap_or_else(|| "—".to_string())}</td>
            <td data-label="Last deployed">
                {row.last_deployed.as_ref().map(timestamp).unwrap_or_else(|| "never".to_string())}
            </td>
            <td data-label="Actions">
                <div class="row-actions">
                    <A href=href attr:class="button button--secondary button--small" attr:aria-label=format!("Open {name}")>
                        "Open"
                    </A>
                    <A href=deploy_href attr:class="button button--secondary button--small" attr:aria-label=format!("Deploy {name}")>
                        "Deploy"
                    </A>
                    {row.live.clone().map(|(id, app_name)| {
                        view! {
                            <DuplicateButton id name=app_name.clone() />
                            <DeleteButton id name=app_name />
                        }
                    })}
                </div>
            </td>
        </tr>
    }
}
