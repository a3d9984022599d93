//! The Deploy tab: for uploads, files (multi-select), a whole folder or a drop; for a URL,
//! GitHub or a local folder, one Deploy from the saved configuration (a local folder is
//! picked, or reconnected after a reload, here). The running deployment shows its progress
//! and live log.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos::web_sys::HtmlInputElement;

use super::history::ActiveDeployment;
use crate::client::apps::local_sync::{self, Permission};
use crate::client::apps::sources::{read_picked, Picked, ReadProgress};
use crate::client::apps::{AppManager, DeployInput};
use crate::client::vm_controller::VmController;
use crate::model::{ApplicationId, DeploymentSource, DeploymentStatus, WebVMState};
use crate::ui::components::{ProgressBar, StatusBadge};
use crate::ui::format::megabytes;

/// How the last deploy from this tab went.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Done(String),
    Failed(String),
}

#[component]
pub fn DeployTab(id: ApplicationId) -> impl IntoView {
    let manager = AppManager::expect();
    let vm = VmController::expect();
    let application = manager.application(id);
    let source = Memo::new(move |_| {
        application.with(|app| app.as_ref().map(|app| app.deployment.source_type))
    });
    let summary = Memo::new(move |_| {
        application.with(|app| {
            let Some(app) = app else { return String::new() };
            let config = &app.deployment.source_config;
            match app.deployment.source_type {
                DeploymentSource::Upload => String::new(),
                DeploymentSource::Url => format!("From {}", config.url.clone().unwrap_or_default()),
                DeploymentSource::Github => format!(
                    "From GitHub {} at {}",
                    config.repository.clone().unwrap_or_default(),
                    config
                        .commit
                        .clone()
                        .or_else(|| config.branch.clone())
                        .unwrap_or_else(|| "the default branch".to_string())
                ),
                DeploymentSource::LocalSync => format!(
                    "From the folder {}{}",
                    config.local_path.clone().unwrap_or_default(),
                    if config.watch_enabled == Some(true) {
                        ", watched for changes"
                    } else {
                        ""
                    }
                ),
            }
        })
    });
    // Shown only after hydration, so asking the browser here is safe.
    let picker = local_sync::directory_picker_supported();
    // Without the File System Access API a local folder is uploaded through the inputs.
    let upload_inputs = Memo::new(move |_| match source.get() {
        Some(DeploymentSource::Upload) => true,
        Some(DeploymentSource::LocalSync) => !picker,
        _ => false,
    });
    let busy = Memo::new(move |_| {
        manager
            .book
            .with(|book| book.active_deployment(id).is_some())
    });
    let vm_ready = Memo::new(move |_| vm.live_state.get() == WebVMState::Ready);
    let reading: RwSignal<Option<ReadProgress>> = RwSignal::new(None);
    let outcome: RwSignal<Option<Outcome>> = RwSignal::new(None);
    let working = RwSignal::new(false);
    let run = move |input: DeployInput| {
        spawn_local(async move {
            let result = manager.deploy(id, input).await;
            outcome.try_set(Some(match result {
                Ok(operation) if operation.status == DeploymentStatus::Completed => {
                    Outcome::Done(format!(
                        "Deployed {} files ({}); the app's current release is the new one.",
                        operation.file_count.unwrap_or_default(),
                        megabytes(operation.total_bytes.unwrap_or_default() as f64 / 1_048_576.0)
                    ))
                }
                Ok(operation) => Outcome::Failed(format!(
                    "The deployment failed: {}. The previous release is still current.",
                    operation
                        .error
                        .unwrap_or_else(|| operation.status.to_string())
                )),
                Err(error) => Outcome::Failed(error.to_string()),
            }));
            working.try_set(false);
        });
    };
    // Upload: what was picked or dropped waits here until "Deploy files".
    let picked: StoredValue<Option<Picked>, LocalStorage> = StoredValue::new_local(None);
    let picked_count = RwSignal::new(0usize);
    let take = move |chosen: Picked| {
        picked_count.set(chosen.len());
        picked.set_value(Some(chosen));
        outcome.set(None);
    };
    let deploy_picked = move |_| {
        let Some(chosen) = picked.try_update_value(Option::take).flatten() else {
            return;
        };
        picked_count.set(0);
        working.set(true);
        outcome.set(None);
        spawn_local(async move {
            let limits = manager.settings().deploy_limits;
            match read_picked(chosen, limits, move |progress| {
                reading.try_set(Some(progress));
            })
            .await
            {
                Ok(material) => {
                    reading.try_set(None);
                    run(DeployInput::Upload(material));
                }
                Err(error) => {
                    reading.try_set(None);
                    outcome.try_set(Some(Outcome::Failed(error.to_string())));
                    working.try_set(false);
                }
            }
        });
    };
    let deploy_saved = move |_| {
        working.set(true);
        outcome.set(None);
        run(DeployInput::Saved);
    };
    let disabled = move || working.get() || busy.get() || !vm_ready.get();
    let reading_percent = Signal::derive(move || {
        reading.with(|progress| {
            progress.as_ref().map_or(0, |p| {
                (p.bytes_done.saturating_mul(100) / p.bytes_total.max(1)).min(100) as u8
            })
        })
    });
    let reading_detail = Signal::derive(move || {
        reading.with(|progress| {
            progress
                .as_ref()
                .map(|p| format!("read {} of {} files", p.files_done, p.files_total))
                .unwrap_or_default()
        })
    });
    view! {
        <section class="card deploy-panel" aria-labelledby="deploy-title">
            <div class="card__header">
                <h2 id="deploy-title">"Deploy"</h2>
                {move || view! { <StatusBadge status=vm.live_state.get() /> }}
            </div>
            <Show when=move || !vm_ready.get()>
                <p class="muted">"Deploying needs the VM: it is starting (see the Dashboard)."</p>
            </Show>
            <Show when=move || upload_inputs.get()>
                <p>"Pick files (several at once), a whole folder, or one ZIP or .tar.gz; a single top-level folder is stripped."</p>
                <Show when=move || source.get() == Some(DeploymentSource::LocalSync)>
                    <p class="muted">"This browser has no File System Access API, so the folder can't be watched: pick it here each time you deploy."</p>
                </Show>
                <div class="deploy-inputs">
                    <div class="field">
                        <label for="deploy-files">"Files to deploy"</label>
                        <input
                            id="deploy-files"
                            type="file"
                            multiple=true
                            on:change=move |event| take(Picked::from_input(&event_target::<HtmlInputElement>(&event)))
                        />
                    </div>
                    <div class="field">
                        <label for="deploy-folder">"Folder to deploy"</label>
                        <input
                            id="deploy-folder"
                            type="file"
                            prop:webkitdirectory=true
                            on:change=move |event| take(Picked::from_input(&event_target::<HtmlInputElement>(&event)))
                        />
                    </div>
                </div>
                <div
                    class="drop-zone"
                    role="region"
                    aria-label="Drop files or a folder here"
                    data-testid="drop-zone"
                    on:dragover=move |event| event.prevent_default()
                    on:drop=move |event| take(Picked::from_drop(&event))
                >
                    "Drop files or a folder here"
                </div>
                <div class="package-actions">
                    <button
                        type="button"
                        class="button"
                        disabled=move || disabled() || picked_count.get() == 0
                        on:click=deploy_picked
                    >
                        "Deploy files"
                    </button>
                    <span class="muted" aria-live="polite">
                        {move || match picked_count.get() {
                            0 => "Nothing chosen yet.".to_string(),
                            1 => "1 item chosen.".to_string(),
                            count => format!("{count} items chosen."),
                        }}
                    </span>
                </div>
                <Show when=move || reading.with(Option::is_some)>
                    <ProgressBar label="Reading files" percent=reading_percent detail=reading_detail />
                </Show>
            </Show>
            <Show when=move || !upload_inputs.get() && source.get().is_some()>
                <p>{move || summary.get()}</p>
                <Show when=move || source.get() == Some(DeploymentSource::LocalSync)>
                    <LocalFolder id />
                </Show>
                <div class="package-actions">
                    <button type="button" class="button" disabled=disabled on:click=deploy_saved>
                        "Deploy"
                    </button>
                    <span class="muted">"Change the source on the Settings tab."</span>
                </div>
            </Show>
            {move || outcome.get().map(|outcome| match outcome {
                Outcome::Done(message) => view! { <p class="save-outcome" role="status">{message}</p> }.into_any(),
                Outcome::Failed(message) => view! { <p class="inline-error" role="alert" data-testid="deploy-error">{message}</p> }.into_any(),
            })}
        </section>
        <ActiveDeployment id />
    }
}

/// The local-sync folder: which one is connected, "Choose folder", and "Reconnect folder"
/// after a reload (the browser asks again, which needs a click).
#[component]
fn LocalFolder(id: ApplicationId) -> impl IntoView {
    let folder: RwSignal<Option<(String, Permission)>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    Effect::new(move |_| {
        spawn_local(async move {
            match local_sync::stored_folder(id).await {
                Ok(found) => {
                    folder.try_set(
                        found.map(|(folder, permission)| (folder.name().to_string(), permission)),
                    );
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
        });
    });
    let choose = move |_| {
        spawn_local(async move {
            match local_sync::pick_folder(id).await {
                Ok(picked) => {
                    folder.try_set(Some((picked.name().to_string(), Permission::Granted)));
                    error.try_set(None);
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
        });
    };
    let reconnect = move |_| {
        spawn_local(async move {
            match local_sync::reconnect(id).await {
                Ok(found) => {
                    folder.try_set(Some((found.name().to_string(), Permission::Granted)));
                    error.try_set(None);
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
        });
    };
    view! {
        <div class="local-folder">
            <p>
                {move || match folder.get() {
                    Some((name, Permission::Granted)) => format!("Connected folder: {name}"),
                    Some((name, _)) => format!("Folder {name}: this browser needs your permission again."),
                    None => "No folder chosen yet.".to_string(),
                }}
            </p>
            <div class="package-actions">
                <button type="button" class="button button--secondary" on:click=choose>"Choose folder"</button>
                <Show when=move || folder.with(|folder| matches!(folder, Some((_, Permission::Prompt))))>
                    <button type="button" class="button button--secondary" on:click=reconnect>"Reconnect folder"</button>
                </Show>
            </div>
            <Show when=move || error.with(Option::is_some)>
                <p class="inline-error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
            <SyncLine id />
        </div>
    }
}

/// Whether the folder is being watched on this page, and what its last change did.
#[component]
fn SyncLine(id: ApplicationId) -> impl IntoView {
    let sync = AppManager::expect().sync;
    let status = Memo::new(move |_| sync.with(|states| states.get(&id).cloned()));
    move || {
        status.get().map(|status| {
            let summary = match status.changes_applied {
                0 => format!("Watching '{}': changes go into the VM as you save them.", status.folder),
                count => format!(
                    "Watching '{}': {count} change{} applied; last: {}.",
                    status.folder,
                    if count == 1 { "" } else { "s" },
                    status.last_change.clone().unwrap_or_default()
                ),
            };
            view! {
                <p class="sync-status" data-testid="sync-status" aria-live="polite">{summary}</p>
                {status.error.map(|error| view! {
                    <p class="inline-error" role="alert">{format!("The last change could not be applied: {error}")}</p>
                })}
            }
        })
    }
}
