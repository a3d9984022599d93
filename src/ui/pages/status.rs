//! The public status page of one application, reached by its share token.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::{public_status, PublicStatusData};
use crate::ui::components::{ErrorPanel, Loading, Stat, StatusBadge};
use crate::ui::format::{duration_seconds, timestamp};
use crate::ui::layout::PublicFrame;

#[component]
pub fn StatusPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let status = Resource::new(token, public_status);
    view! {
        <PublicFrame>
            <Suspense fallback=|| view! { <Loading label="Loading status…" /> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(status) => view! { <StatusBody status /> }.into_any(),
                        Err(error) => {
                            view! {
                                <Title text="Status unavailable" />
                                <ErrorPanel error />
                                <p class="muted">
                                    "This status link is invalid or has been revoked. Ask the application's owner for a new link."
                                </p>
                            }
                                .into_any()
                        }
                    }
                })}
            </Suspense>
        </PublicFrame>
    }
}

#[component]
fn StatusBody(status: PublicStatusData) -> impl IntoView {
    view! {
        <Title text=format!("{} status", status.name) />
        <section class="card" aria-labelledby="status-heading">
            <div class="card__header">
                <h1 id="status-heading">{status.name.clone()}</h1>
                <StatusBadge status=status.status />
            </div>
            {status.description.clone().map(|text| view! { <p class="lead">{text}</p> })}
            <dl class="stats stats--4">
                <Stat label="Health" value=status.health_status.as_str() />
                <Stat label="Uptime" value=duration_seconds(status.uptime_seconds) />
                <Stat label="Requests" value=status.request_count.to_string() />
                <Stat label="Errors" value=format!("{:.1} %", status.error_rate) />
            </dl>
            <p class="muted">
                "Last deployed " {timestamp(&status.last_deployed)}
                {status.last_started.map(|at| format!("; started {}", timestamp(&at)))} "."
            </p>
        </section>
    }
}
