//! The Overview tab: status, runtimes and whether they are installed (with the way to
//! install what is missing and come back), configuration, and the actions roll back,
//! duplicate and delete. The mirror's version renders on the server.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;

use crate::client::apps::{AppManager, MirrorState};
use crate::model::{Application, ApplicationId, ApplicationStatus, PackageId};
use crate::ui::components::{PageHeader, Stat, StatusBadge};
use crate::ui::format::{duration_seconds, timestamp};
use crate::ui::pages::app_actions::{DeleteButton, DuplicateButton};

use super::metrics::MetricsPanel;
use super::run::RunPanel;
use super::sharing::StatusLinks;

/// Where "Install" goes for the app's missing runtimes: the Packages page, which installs
/// them and offers the way back.
pub fn install_href(missing: &[PackageId], name: &str) -> String {
    let ids: Vec<&str> = missing.iter().map(PackageId::as_str).collect();
    format!(
        "/packages?install={}&return=/applications/{name}",
        ids.join(",")
    )
}

fn id_list(ids: &[PackageId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The app's facts and runtime state, the same from the mirror and from the record.
#[component]
fn Facts(
    application: Application,
    /// The live page shows the figures in its run panel instead.
    #[prop(optional)]
    live: bool,
) -> impl IntoView {
    let metrics = application.metrics.clone();
    let execution = application.execution.clone();
    let command = std::iter::once(execution.command.clone())
        .chain(execution.arguments.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let compat = application.runtime_status.clone();
    let missing = compat.missing_runtimes.clone();
    let name = application.name.to_string();
    let runtime_missing =
        application.status == ApplicationStatus::RuntimeMissing || !missing.is_empty();
    let deployed = application.status != ApplicationStatus::Draft;
    view! {
        <div class="grid grid--2">
            <section class="card" aria-labelledby="app-state">
                <div class="card__header">
                    <h2 id="app-state">{name.clone()}</h2>
                    <span data-testid="app-status"><StatusBadge status=application.status /></span>
                </div>
                {runtime_missing.then(|| {
                    let label = format!("Install {}", id_list(&missing));
                    view! {
                        <div class="vm-alert vm-alert--notice runtime-missing" role="status">
                            <p>{format!("The app needs runtimes that are not installed: {}.", id_list(&missing))}</p>
                            {(!missing.is_empty()).then(|| view! {
                                <A href=install_href(&missing, &name) attr:class="button">{label}</A>
                            })}
                        </div>
                    }
                })}
                {(!compat.issues.is_empty() && !runtime_missing).then(|| view! {
                    <ul class="problems package-warnings">
                        {compat.issues.iter().map(|issue| view! { <li>{issue.clone()}</li> }).collect_view()}
                    </ul>
                })}
                {(!live).then(|| view! {
                    <dl class="stats stats--4">
                        <Stat label="Uptime" value=duration_seconds(metrics.uptime) />
                        <Stat label="Restarts" value=metrics.restart_count.to_string() />
                        <Stat label="Requests" value=metrics.request_count.to_string() />
                        <Stat label="Health" value=metrics.health_status.as_str() />
                    </dl>
                })}
                <p class="muted">
                    "Created " {timestamp(&application.created_at)} "; "
                    {if deployed { format!("last deployed {}.", timestamp(&application.last_deployed)) } else { "not deployed yet.".to_string() }}
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
                    <dd>{execution.port.map(|port| port.get().to_string()).unwrap_or_else(|| "—".into())}</dd>
                    <dt>"Restart policy"</dt>
                    <dd>{execution.effective_restart_policy().as_str()}</dd>
                    <dt>"Runtimes"</dt>
                    <dd>
                        {id_list(&application.runtime.required_runtimes)}
                        {compat.can_start.then(|| view! { <span class="cell-note">"all installed"</span> })}
                    </dd>
                </dl>
            </section>
        </div>
    }
}

/// The mirror's copy (server-rendered).
#[component]
pub fn MirrorOverview(application: Application) -> impl IntoView {
    view! {
        <PageHeader
            title="Application"
            lead=application.description.clone().unwrap_or_else(|| application.name.to_string())
        />
        <Facts application />
    }
}

/// The record's app, following it.
#[component]
pub fn LiveOverview(id: ApplicationId) -> impl IntoView {
    let manager = AppManager::expect();
    let application = manager.application(id);
    let current = manager.current_release(id);
    let book = manager.book;
    let keep = manager.settings().releases_kept;
    let can_roll_back = Memo::new(move |_| {
        let current = current.get();
        book.with(|book| {
            crate::domain::release::rollback_target(book.history(id), current, keep).is_ok()
        })
    });
    let busy = Memo::new(move |_| book.with(|book| book.active_deployment(id).is_some()));
    let mirror = Memo::new(move |_| manager.mirror_state(id));
    let rolling = RwSignal::new(false);
    let roll_error: RwSignal<Option<String>> = RwSignal::new(None);
    let roll_back = move |_| {
        rolling.set(true);
        roll_error.set(None);
        spawn_local(async move {
            if let Err(error) = manager.roll_back(id).await {
                roll_error.try_set(Some(error.to_string()));
            }
            rolling.try_set(false);
        });
    };
    view! {
        {move || application.get().map(|application| {
            let name = application.name.clone();
            view! {
                <PageHeader
                    title="Application"
                    lead=application.description.clone().unwrap_or_else(|| application.name.to_string())
                >
                    <Show when=move || can_roll_back.get()>
                        <button
                            type="button"
                            class="button button--secondary"
                            disabled=move || rolling.get() || busy.get()
                            on:click=roll_back
                        >
                            {move || if rolling.get() { "Rolling back…" } else { "Roll back" }}
                        </button>
                    </Show>
                    <DuplicateButton id name=name.clone() />
                    <DeleteButton id name leave=true />
                </PageHeader>
                <Facts application live=true />
            }
        })}
        <RunPanel id />
        <MetricsPanel id />
        <StatusLinks id />
        {move || current.get().map(|release| view! {
            <p class="muted" data-testid="current-release">
                "Current release: " <code>{release.to_string()}</code>
                " (" <code>"current"</code> " points at " <code>{format!("releases/{release}")}</code> ")"
            </p>
        })}
        <Show when=move || roll_error.with(Option::is_some)>
            <p class="inline-error" role="alert">{move || roll_error.get().unwrap_or_default()}</p>
        </Show>
        {move || mirror.get().map(|state| match state {
            MirrorState::Pending => view! { <p class="muted mirror-state">"Saving to the server…"</p> }.into_any(),
            MirrorState::Retrying(reason) => view! {
                <p class="muted mirror-state" role="status">
                    {format!("The server's copy is not updated yet ({reason}); it is retried, and the app is safe in this browser.")}
                </p>
            }.into_any(),
            MirrorState::Refused(reason) => view! {
                <p class="inline-error mirror-state" role="alert">
                    {format!("The server refused this version ({reason}); the app is safe in this browser, and the next change is sent again.")}
                </p>
            }.into_any(),
        })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_links_name_the_runtimes_and_the_way_back() {
        let ids = |list: &[&str]| -> Vec<PackageId> {
            list.iter()
                .filter_map(|id| PackageId::parse(id).ok())
                .collect()
        };
        let cases = [
            (
                ids(&["flask"]),
                "shop",
                "/packages?install=flask&return=/applications/shop",
            ),
            (
                ids(&["python-311", "flask"]),
                "my.app",
                "/packages?install=python-311,flask&return=/applications/my.app",
            ),
        ];
        for (missing, name, expected) in cases {
            assert_eq!(install_href(&missing, name), expected);
        }
    }
}
