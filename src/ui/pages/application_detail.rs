//! Application detail: one app's configuration, state and metrics.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::api::get_application;
use crate::model::Application;
use crate::ui::components::{ErrorPanel, Loading, PageHeader, Stat, StatusBadge};
use crate::ui::format::{duration_seconds, timestamp};

#[component]
pub fn ApplicationDetailPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let application = Resource::new(name, get_application);
    view! {
        <Title text=move || name() />
        <p class="breadcrumb">
            <A href="/applications">"← Applications"</A>
        </p>
        <Suspense fallback=|| view! { <Loading label="Loading the application…" /> }>
            {move || Suspend::new(async move {
                match application.await {
                    Ok(application) => view! { <ApplicationView application /> }.into_any(),
                    Err(error) => {
                        #[cfg(feature = "ssr")]
                        if matches!(error, crate::error::AppError::NotFound { .. }) {
                            crate::api::context::set_status(404);
                        }
                        view! { <ErrorPanel error /> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn ApplicationView(application: Application) -> impl IntoView {
    let metrics = application.metrics.clone();
    let execution = application.execution.clone();
    let command = std::iter::once(execution.command.clone())
        .chain(execution.arguments.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    view! {
        <PageHeader
            title="Application"
            lead=application.description.clone().unwrap_or_else(|| application.name.to_string())
        />
        <div class="grid grid--2">
            <section class="card" aria-labelledby="app-state">
                <div class="card__header">
                    <h2 id="app-state">{application.name.to_string()}</h2>
                    <StatusBadge status=application.status />
                </div>
                <dl class="stats stats--4">
                    <Stat label="Uptime" value=duration_seconds(metrics.uptime) />
                    <Stat label="Restarts" value=metrics.restart_count.to_string() />
                    <Stat label="Requests" value=metrics.request_count.to_string() />
                    <Stat label="Health" value=metrics.health_status.as_str() />
                </dl>
                <p class="muted">
                    "Created " {timestamp(&application.created_at)} "; last deployed "
                    {timestamp(&application.last_deployed)} "."
                </p>
            </section>
            <section class="card" aria-labelledby="app-config">
                <h2 id="app-config">"Configuration"</h2>
                <dl class="facts">
                    <dt>"Source"</dt>
                    <dd>{application.deployment.source_type.as_str()}</dd>
                    <dt>"Path in the VM"</dt>
                    <dd><code>{application.deployment.deployment_path.clone()}</code></dd>
                    <dt>"Command"</dt>
                    <dd><code>{command}</code></dd>
                    <dt>"Port"</dt>
                    <dd>{execution.port.map(|port| u16::from(port).to_string()).unwrap_or_else(|| "—".into())}</dd>
                    <dt>"Restart policy"</dt>
                    <dd>{execution.restart_policy.as_str()}</dd>
                    <dt>"Runtimes"</dt>
                    <dd>
                        {application
                            .runtime
                            .required_runtimes
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")}
                    </dd>
                </dl>
            </section>
        </div>
    }
}
