//! The public status page of one application, reached by its share token: rendered on the
//! server (it works without JavaScript), it shows availability now, uptime over 24 h, 7 d and
//! 30 d, a response-time chart, the incident timeline and the last deploy, and never the
//! app's configuration, environment, secrets or logs.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::{public_status, PublicStatusData};
use crate::domain::status_page::describe_span;
use crate::ui::chart::LineChart;
use crate::ui::components::{ErrorPanel, Loading, StatusBadge};
use crate::ui::format::timestamp;
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
                                    "This status link is invalid, has expired or has been revoked. Ask the application's owner for a new link."
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

fn milliseconds(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

/// "99.95 %", or "no data" when nothing was observed.
fn percent(value: Option<f64>) -> String {
    match value {
        Some(value) if value >= 99.995 => "100 %".to_owned(),
        Some(value) => format!("{value:.2} %"),
        None => "no data".to_owned(),
    }
}

/// How much of a window the samples cover, as a hint under its uptime.
fn observed(observed_seconds: i64, window_seconds: i64) -> String {
    if window_seconds <= 0 {
        return String::new();
    }
    let share = observed_seconds as f64 * 100.0 / window_seconds as f64;
    if share < 1.0 {
        format!(
            "of {} observed",
            describe_span(chrono::Duration::seconds(observed_seconds))
        )
    } else {
        format!("of the {share:.0} % of the time observed")
    }
}

#[component]
fn StatusBody(status: PublicStatusData) -> impl IntoView {
    let points = Signal::stored(status.response_points.clone());
    let last_seen = status
        .last_seen
        .map(|at| format!("Last report from the host browser: {}.", timestamp(&at)))
        .unwrap_or_else(|| "The host browser has not reported yet.".to_owned());
    view! {
        <Title text=format!("{} status", status.name) />
        <section class="card status-page" aria-labelledby="status-heading" data-testid="status-page" data-availability=format!("{:?}", status.availability).to_lowercase()>
            <div class="card__header">
                <h1 id="status-heading">{status.name.clone()}</h1>
                <StatusBadge status=status.availability />
            </div>
            {status.description.clone().map(|text| view! { <p class="lead">{text}</p> })}
            <p class="status-page__summary" data-testid="status-summary">{status.summary.clone()}</p>
            <p class="muted">{last_seen}</p>
            <h2>"Uptime"</h2>
            <dl class="stats" data-testid="status-uptime">
                {status.uptimes.iter().map(|figure| view! {
                    <div class="stat">
                        <dt>{figure.label.clone()}</dt>
                        <dd>
                            <span class="stat__value">{percent(figure.percent)}</span>
                            <span class="stat__hint">{observed(figure.observed_seconds, figure.window_seconds)}</span>
                        </dd>
                    </div>
                }).collect_view()}
            </dl>
            <LineChart
                title="Response time, last 24 hours"
                id="status-response"
                points
                format=milliseconds
                empty="No requests timed in the last 24 hours."
            />
            <h2>"Incidents"</h2>
            {if status.incidents.is_empty() {
                view! { <p class="muted" data-testid="status-incidents">"No incidents in the last 30 days."</p> }.into_any()
            } else {
                view! {
                    <ol class="incidents" data-testid="status-incidents">
                        {status.incidents.iter().map(|incident| view! {
                            <li class=if incident.bad { "incident incident--bad" } else { "incident" }>
                                <time datetime=incident.at.to_rfc3339()>{timestamp(&incident.at)}</time>
                                " "
                                <strong>{incident.title.clone()}</strong>
                                ": "
                                {incident.detail.clone()}
                            </li>
                        }).collect_view()}
                    </ol>
                }
                .into_any()
            }}
            <p class="muted" data-testid="status-last-deploy">
                "Last deployed " {timestamp(&status.last_deployed)} ". Page generated " {timestamp(&status.generated_at)} "."
            </p>
        </section>
    }
}
