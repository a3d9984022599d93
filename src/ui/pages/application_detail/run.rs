//! The run panel of the Overview tab: the app's process status with start, stop and
//! restart, "starting… N s" while it comes up, health, restarts, the last error, a pending
//! restart, limits the guest can't enforce, and the link to the app at `/apps/<name>/`.

use chrono::Utc;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::client::apps::AppManager;
use crate::client::vm_controller::{VmController, VmViewStoreFields};
use crate::model::{ApplicationId, ApplicationStatus as Status, HealthState, WebVMState};
use crate::ui::components::StatusBadge;
use crate::ui::format::duration_seconds;

/// Which run action is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunAction {
    Start,
    Stop,
    Restart,
}

/// Start, stop and restart, and what the supervisor knows.
#[component]
pub fn RunPanel(id: ApplicationId) -> impl IntoView {
    let manager = AppManager::expect();
    let application = manager.application(id);
    let status = Memo::new(move |_| application.with(|app| app.as_ref().map(|app| app.status)));
    let name = Memo::new(move |_| {
        application
            .with(|app| app.as_ref().map(|app| app.name.to_string()))
            .unwrap_or_default()
    });
    let last_started =
        Memo::new(move |_| application.with(|app| app.as_ref().and_then(|app| app.last_started)));
    let last_error = Memo::new(move |_| {
        application.with(|app| app.as_ref().and_then(|app| app.metrics.last_error.clone()))
    });
    let restarts = Memo::new(move |_| {
        application.with(|app| app.as_ref().map_or(0, |app| app.metrics.restart_count))
    });
    let uptime = Memo::new(move |_| {
        application.with(|app| app.as_ref().map_or(0, |app| app.metrics.uptime))
    });
    let requests = Memo::new(move |_| {
        application.with(|app| app.as_ref().map_or(0, |app| app.metrics.request_count))
    });
    let health = Memo::new(move |_| {
        application.with(|app| {
            app.as_ref().and_then(|app| {
                let config = app
                    .execution
                    .health_check_config
                    .as_ref()
                    .filter(|c| c.enabled)?;
                let state = app
                    .health_check
                    .as_ref()
                    .map(|check| (check.status, check.failing_streak));
                Some((config.path.clone(), state))
            })
        })
    });
    let notes = Memo::new(move |_| {
        manager
            .run_notes
            .with(|notes| notes.get(&id).cloned())
            .unwrap_or_default()
    });
    let action: RwSignal<Option<RunAction>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let run = move |wanted: RunAction| {
        action.set(Some(wanted));
        error.set(None);
        spawn_local(async move {
            let result = match wanted {
                RunAction::Start => manager.start_app(id).await,
                RunAction::Stop => manager.stop_app(id).await,
                RunAction::Restart => manager.restart_app(id).await,
            };
            if let Err(failure) = result {
                error.try_set(Some(failure.to_string()));
            }
            action.try_set(None);
        });
    };
    // A clock for "starting… N s" and a pending restart (browser only).
    let now = RwSignal::new(Utc::now());
    #[cfg(feature = "hydrate")]
    if let Ok(handle) = set_interval_with_handle(
        move || {
            now.try_set(Utc::now());
        },
        std::time::Duration::from_secs(1),
    ) {
        on_cleanup(move || handle.clear());
    }
    let vm = VmController::expect();
    let vm_state = vm.live_state;
    let vm_ready = move || vm_state.get() == WebVMState::Ready;
    // Another tab runs the VM: its apps are acted on there (the banner says so).
    let elsewhere = Memo::new(move |_| vm.view.ownership().get().elsewhere());
    let can_start = move || {
        vm_ready()
            && matches!(
                status.get(),
                Some(Status::Deployed | Status::Stopped | Status::Error | Status::Failed)
            )
    };
    let can_stop = move || {
        !elsewhere.get()
            && matches!(
                status.get(),
                Some(Status::Running | Status::Starting | Status::Error)
            )
    };
    let can_restart =
        move || !elsewhere.get() && matches!(status.get(), Some(Status::Running | Status::Error));
    let starting_for = move || {
        let started = last_started.get()?;
        (status.get() == Some(Status::Starting)).then(|| (now.get() - started).num_seconds().max(0))
    };
    let restart_in = move || {
        let at = notes.with(|notes| notes.restart_at)?;
        (status.get() == Some(Status::Error))
            .then(|| (at - now.get()).num_milliseconds().max(0) as f64 / 1000.0)
    };
    view! {
        <section class="card run-panel" aria-labelledby="app-run">
            <div class="card__header">
                <h2 id="app-run">"Process"</h2>
                <span data-testid="run-status">
                    {move || status.get().map(|status| view! { <StatusBadge status /> })}
                </span>
            </div>
            <div class="button-row">
                <button
                    type="button"
                    class="button"
                    data-testid="app-start"
                    disabled=move || action.with(Option::is_some) || !can_start()
                    on:click=move |_| run(RunAction::Start)
                >
                    {move || if action.get() == Some(RunAction::Start) { "Starting…" } else { "Start" }}
                </button>
                <button
                    type="button"
                    class="button button--secondary"
                    data-testid="app-stop"
                    disabled=move || action.with(Option::is_some) || !can_stop()
                    on:click=move |_| run(RunAction::Stop)
                >
                    {move || if action.get() == Some(RunAction::Stop) { "Stopping…" } else { "Stop" }}
                </button>
                <button
                    type="button"
                    class="button button--secondary"
                    data-testid="app-restart"
                    disabled=move || action.with(Option::is_some) || !can_restart()
                    on:click=move |_| run(RunAction::Restart)
                >
                    {move || if action.get() == Some(RunAction::Restart) { "Restarting…" } else { "Restart" }}
                </button>
                <Show when=move || status.get() == Some(Status::Running)>
                    <a
                        class="button button--secondary"
                        data-testid="app-open"
                        href=move || format!("/apps/{}/", name.get())
                        target="_blank"
                        rel="noopener"
                    >
                        "Open ↗"
                    </a>
                </Show>
            </div>
            {move || (!vm_ready() && !elsewhere.get()).then(|| view! {
                <p class="muted" role="status" data-testid="app-vm-waiting">
                    {format!("The VM is {}: start and stop work once it is ready.", vm_state.get())}
                </p>
            })}
            {move || starting_for().map(|seconds| view! {
                <p class="muted" role="status" data-testid="app-starting">
                    {format!("Starting… {seconds} s (waiting for it to listen on its port)")}
                </p>
            })}
            {move || restart_in().map(|seconds| view! {
                <p class="muted" role="status" data-testid="app-restart-pending">
                    {format!("Restarting in {seconds:.1} s (restart policy)")}
                </p>
            })}
            <dl class="stats stats--4">
                <div class="stat">
                    <dt>"Uptime"</dt>
                    <dd><span class="stat__value">{move || duration_seconds(uptime.get())}</span></dd>
                </div>
                <div class="stat" data-testid="app-restarts">
                    <dt>"Restarts"</dt>
                    <dd><span class="stat__value">{move || restarts.get().to_string()}</span></dd>
                </div>
                <div class="stat" data-testid="app-requests">
                    <dt>"Requests"</dt>
                    <dd><span class="stat__value">{move || requests.get().to_string()}</span></dd>
                </div>
                <div class="stat" data-testid="app-health">
                    <dt>"Health"</dt>
                    <dd>
                        <span class="stat__value">
                            {move || match health.get() {
                                None => "no check".to_owned(),
                                // Probing ends with the process (as in Docker).
                                Some(_) if !matches!(status.get(), Some(Status::Running | Status::Starting)) => {
                                    "not running".to_owned()
                                }
                                Some((_, None)) => "not checked yet".to_owned(),
                                Some((_, Some((HealthState::Unhealthy, streak)))) => {
                                    format!("unhealthy ({streak} failed)")
                                }
                                Some((_, Some((state, _)))) => state.to_string(),
                            }}
                        </span>
                    </dd>
                </div>
            </dl>
            {move || last_error.get().filter(|_| status.get() != Some(Status::Running)).map(|message| view! {
                <p class="inline-error" role="alert" data-testid="app-last-error">{message}</p>
            })}
            {move || {
                let limits = notes.with(|notes| notes.unenforced_limits.clone());
                (!limits.is_empty()).then(|| view! {
                    <ul class="problems package-warnings" data-testid="app-limits">
                        {limits.into_iter().map(|limit| view! { <li>{limit}</li> }).collect_view()}
                    </ul>
                })
            }}
            <Show when=move || error.with(Option::is_some)>
                <p class="inline-error" role="alert" data-testid="app-run-error">
                    {move || error.get().unwrap_or_default()}
                </p>
            </Show>
        </section>
    }
}
