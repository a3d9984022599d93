//! Applications: the registry of the workspace's apps.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{list_applications, ApplicationSummary};
use crate::ui::components::{EmptyState, ErrorPanel, Loading, PageHeader, StatusBadge};
use crate::ui::format::timestamp;

#[component]
pub fn ApplicationsPage() -> impl IntoView {
    let applications = Resource::new(|| (), |_| list_applications());
    view! {
        <Title text="Applications" />
        <PageHeader
            title="Applications"
            lead="Apps deployed into the VM. Each one is served at /apps/<name>/ while it runs."
        />
        <Suspense fallback=|| view! { <Loading label="Loading applications…" /> }>
            {move || Suspend::new(async move {
                match applications.await {
                    Ok(list) if list.is_empty() => {
                        view! {
                            <EmptyState
                                title="No applications yet"
                                body="An application is code you deploy into the VM — from files or a ZIP, a URL, a GitHub repository or a local folder — and run with a command, a port, restart policy and health check."
                            >
                                <p>
                                    "First install the runtime it needs on the "
                                    <A href="/packages">"Packages"</A>
                                    " page, for example a web server or Python."
                                </p>
                            </EmptyState>
                        }
                            .into_any()
                    }
                    Ok(list) => view! { <ApplicationTable list /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ApplicationTable(list: Vec<ApplicationSummary>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table">
                <caption class="visually-hidden">"Applications"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Runtimes"</th>
                        <th scope="col">"Port"</th>
                        <th scope="col">"Last deployed"</th>
                    </tr>
                </thead>
                <tbody>
                    {list
                        .into_iter()
                        .map(|application| {
                            let href = format!("/applications/{}", application.name);
                            view! {
                                <tr>
                                    <th scope="row">
                                        <A href=href>{application.name.clone()}</A>
                                        {application
                                            .description
                                            .clone()
                                            .map(|text| view! { <span class="cell-note">{text}</span> })}
                                    </th>
                                    <td>
                                        <StatusBadge status=application.status />
                                    </td>
                                    <td>{application.required_runtimes.join(", ")}</td>
                                    <td>
                                        {application
                                            .port
                                            .map(|port| port.to_string())
                                            .unwrap_or_else(|| "—".to_string())}
                                    </td>
                                    <td>{timestamp(&application.last_deployed)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}
