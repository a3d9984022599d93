//! Backup: what one backup file of this workspace holds (the server's mirror, rendered on
//! the server), and the export of this browser's workspace as one JSON file (the seed's
//! `ApplicationServerBackup`, made by `domain::backup`), and the import of a backup file
//! (`import`).

mod archive;
mod device_link;
mod import;
mod legacy;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{backup_overview, BackupContents};
use crate::client::apps::AppManager;
use crate::domain::backup::ExportOptions;
use crate::ui::components::{EmptyState, ErrorPanel, Loading, PageHeader, Stat};
use crate::ui::download::offer_download;

#[component]
pub fn BackupPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| backup_overview());
    view! {
        <Title text="Backup" />
        <PageHeader
            title="Backup"
            lead="Export the whole workspace — applications, packages, settings and VM state — to one file, and import it elsewhere."
        />
        <BrowserExport />
        <import::BackupImport />
        <device_link::DeviceLink />
        <Suspense fallback=|| view! { <Loading label="Loading…" /> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(overview) => view! { <BackupBody overview /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn BackupBody(overview: BackupContents) -> impl IntoView {
    if overview.applications == 0 && overview.installed_packages == 0 {
        return view! {
            <EmptyState
                title="Nothing to back up yet"
                body="A backup holds your applications, installed runtime packages and settings. Install a package or deploy an application first; then a backup here captures it in one file."
            />
        }
        .into_any();
    }
    view! {
        <section class="card" aria-labelledby="backup-contents">
            <h2 id="backup-contents">"A backup now would contain"</h2>
            <dl class="stats">
                <Stat label="Applications" value=overview.applications.to_string() />
                <Stat label="Installed packages" value=overview.installed_packages.to_string() />
                <Stat label="Format version" value=overview.format_version.clone() />
            </dl>
            <p class="muted">"Secret environment values are never written into a backup in clear text."</p>
            <a class="button button--secondary" data-testid="backup-server-download" href="/api/server_backup" download="webvm-server-backup.json">
                "Download the server's copy"
            </a>
            <p class="muted">"The server's copy is what this browser last mirrored to it: for when this browser's own data is gone."</p>
        </section>
    }
    .into_any()
}

/// Export from this browser: the options, and a link that writes the file when clicked.
#[component]
fn BrowserExport() -> impl IntoView {
    let manager = AppManager::expect();
    let include_history = RwSignal::new(false);
    let include_secrets = RwSignal::new(true);
    let outcome: RwSignal<Option<Result<String, String>>> = RwSignal::new(None);
    let file_name = move || {
        format!(
            "webvm-backup-{}.json",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        )
    };
    let download = move |event: leptos::ev::MouseEvent| {
        let options = ExportOptions {
            include_history: include_history.get_untracked(),
            include_sealed_secrets: include_secrets.get_untracked(),
        };
        match manager.backup_json(options) {
            Ok((json, applications, packages)) => {
                offer_download(&event, "application/json", &json);
                outcome.set(Some(Ok(format!(
                    "Exported {applications} application(s) and {packages} installed runtime(s), {} KB.",
                    json.len().div_ceil(1024)
                ))));
            }
            Err(error) => {
                event.prevent_default();
                outcome.set(Some(Err(error.to_string())));
            }
        }
    };
    view! {
        <section class="card backup-export" aria-labelledby="backup-export">
            <h2 id="backup-export">"Export this browser's workspace"</h2>
            <p class="muted">
                "One JSON file: every application (configuration, status, deployments), the installed runtimes, the VM's status and the settings. "
                "Sealed secrets stay sealed: only this browser can open them."
            </p>
            <div class="backup-export__options">
                <label>
                    <input
                        type="checkbox"
                        data-testid="backup-include-history"
                        prop:checked=move || include_history.get()
                        on:change=move |event| include_history.set(event_target_checked(&event))
                    />
                    "Include logs and performance history"
                </label>
                <label>
                    <input
                        type="checkbox"
                        data-testid="backup-include-secrets"
                        checked=true
                        prop:checked=move || include_secrets.get()
                        on:change=move |event| include_secrets.set(event_target_checked(&event))
                    />
                    "Include sealed secrets (leave out for a backup meant for another browser)"
                </label>
            </div>
            <a
                class="button"
                data-testid="backup-download"
                href="#"
                download=file_name
                on:click=download
            >
                "Download backup"
            </a>
            {move || outcome.get().map(|outcome| match outcome {
                Ok(message) => view! { <p class="muted" role="status" data-testid="backup-exported">{message}</p> }.into_any(),
                Err(message) => view! { <p class="inline-error" role="alert">{message}</p> }.into_any(),
            })}
            <archive::ArchiveExport include_history=include_history.into() include_secrets=include_secrets.into() />
        </section>
    }
}
