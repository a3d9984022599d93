//! The Backup page's export with the VM: one archive with the JSON backup, each app's
//! current files and the VM as it runs now (runtimes installed, apps deployed), written
//! with a progress bar.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::client::apps::{AppManager, ArchiveExported, ArchiveProgress};
use crate::client::vm_controller::VmController;
use crate::domain::backup::ExportOptions;
use crate::model::WebVMState;
use crate::ui::components::ProgressBar;
use crate::ui::format::megabytes;

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Idle,
    Writing(ArchiveProgress),
    Written(ArchiveExported),
    Failed(String),
}

#[component]
pub fn ArchiveExport(
    include_history: Signal<bool>,
    include_secrets: Signal<bool>,
) -> impl IntoView {
    let manager = AppManager::expect();
    let vm = VmController::expect();
    let stage = RwSignal::new(Stage::Idle);
    let writing = Memo::new(move |_| matches!(stage.get(), Stage::Writing(_)));
    // The archive holds the VM as it runs: the page starts (or resumes) it, as a VM view does.
    Effect::new(move |_| vm.start_on_load());
    let vm_ready = move || vm.status.with(|status| status.state == WebVMState::Ready);
    let export = move |_| {
        let options = ExportOptions {
            include_history: include_history.get_untracked(),
            include_sealed_secrets: include_secrets.get_untracked(),
        };
        stage.set(Stage::Writing(ArchiveProgress {
            step: "Starting".into(),
            done: 0,
            total: 1,
        }));
        spawn_local(async move {
            let outcome = manager
                .export_archive(options, |progress| {
                    stage.try_set(Stage::Writing(progress));
                })
                .await;
            stage.try_set(match outcome {
                Ok(written) => Stage::Written(written),
                Err(error) => Stage::Failed(format!("No archive was written: {error}")),
            });
        });
    };
    let percent = Signal::derive(move || match stage.get() {
        Stage::Writing(progress) => progress.percent(),
        _ => 0,
    });
    let detail = Signal::derive(move || match stage.get() {
        Stage::Writing(progress) => progress.step,
        _ => String::new(),
    });
    view! {
        <div class="backup-export__vm" data-testid="backup-archive">
            <h3>"With the VM"</h3>
            <p class="muted">
                "One .tar file: the same JSON backup, each application's current files, and the VM as it runs now, "
                "with its runtimes installed and its applications deployed (tens of MB). Importing it elsewhere brings all of it back."
            </p>
            <button
                type="button"
                class="button button--secondary"
                data-testid="backup-archive-download"
                disabled=move || writing.get() || !vm_ready()
                on:click=export
            >
                "Download backup with the VM"
            </button>
            <Show when=move || !vm_ready() && !writing.get()>
                <span class="field-hint">{move || format!("The VM is {}: it must be running, since it is saved as it is now.", vm.status.with(|status| status.state))}</span>
            </Show>
            {move || match stage.get() {
                Stage::Idle => ().into_any(),
                Stage::Writing(_) => view! {
                    <div role="status" data-testid="backup-archive-progress">
                        <ProgressBar label="Writing the backup archive" percent detail />
                    </div>
                }
                .into_any(),
                Stage::Written(written) => view! {
                    <p class="muted" role="status" data-testid="backup-archive-written">
                        {format!(
                            "Wrote {}: {} application(s), {} with their files, and the VM ({}), {} in all.",
                            written.file_name,
                            written.applications,
                            written.releases,
                            megabytes(written.snapshot_bytes as f64 / 1_048_576.0),
                            megabytes(written.bytes as f64 / 1_048_576.0),
                        )}
                    </p>
                }
                .into_any(),
                Stage::Failed(message) => view! {
                    <p class="inline-error" role="alert" data-testid="backup-archive-failed">{message}</p>
                }
                .into_any(),
            }}
        </div>
    }
}
