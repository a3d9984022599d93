//! Settings: the workspace's application-server settings, facts about this server, and the VM
//! engine this browser uses.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{get_settings, SettingsView};
use crate::model::{ApplicationServerSettings, VM_MEMORY_MB};
use crate::ui::components::{ErrorPanel, Loading, PageHeader};
use crate::ui::vm_panel::EngineChoice;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let settings = Resource::new(|| (), |_| get_settings());
    view! {
        <Title text="Settings" />
        <PageHeader
            title="Settings"
            lead="How the VM and the application server behave in this workspace."
        />
        <Suspense fallback=|| view! { <Loading label="Loading settings…" /> }>
            {move || Suspend::new(async move {
                match settings.await {
                    Ok(view) => view! { <SettingsBody view /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
        <super::settings_form::WorkspaceSettingsForm />
        <section class="card settings-engine" aria-labelledby="settings-engine-heading">
            <h2 id="settings-engine-heading">"VM engine"</h2>
            <p class="muted">
                "Which emulator runs Debian in this browser. v86 is the default; CheerpX is optional and off unless chosen here."
            </p>
            <EngineChoice />
        </section>
    }
}

/// The settings as (label, value, explanation) rows, in the order the page shows them.
fn setting_rows(settings: &ApplicationServerSettings) -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "VM engine",
            settings.engine.as_str().to_string(),
            "The emulator that runs Debian in the page.",
        ),
        (
            "VM memory",
            // What the VM really boots with (the workspace's figure may predate it).
            format!("{} MB", VM_MEMORY_MB),
            "Memory given to the guest.",
        ),
        (
            "Port range",
            format!("{}–{}", settings.port_range.start, settings.port_range.end),
            "Ports handed to new applications, lowest free first.",
        ),
        (
            "Default restart policy",
            settings.default_restart_policy.as_str().to_string(),
            "Restart policy of new applications.",
        ),
        (
            "Log entries kept",
            format!("{} per application", settings.max_log_entries),
            "Oldest entries are dropped first.",
        ),
        (
            "Metrics history",
            format!(
                "{} h, sampled every {} min",
                settings.metrics_retention_hours,
                settings.metrics_sample_interval_seconds / 60
            ),
            "Performance snapshots kept per application.",
        ),
        (
            "Auto-hibernate",
            settings
                .auto_hibernate_minutes
                .map(|minutes| format!("after {minutes} idle minutes"))
                .unwrap_or_else(|| "never".to_string()),
            "Saves the VM to browser storage when idle.",
        ),
        (
            "Restore running apps",
            if settings.restore_running_apps {
                "yes"
            } else {
                "no"
            }
            .to_string(),
            "Start again the apps that ran when the page was closed.",
        ),
        (
            "Theme",
            settings.theme.as_str().to_string(),
            "Colour scheme of the interface.",
        ),
    ]
}

#[component]
fn SettingsBody(view: SettingsView) -> impl IntoView {
    let rows = setting_rows(&view.settings);
    view! {
        <div class="grid grid--2">
            <section class="card" aria-labelledby="settings-current">
                <h2 id="settings-current">"Defaults"</h2>
                <p class="muted">
                    "What a new workspace starts with. Your own settings are kept with your applications in this browser: change them below."
                </p>
                <dl class="facts">
                    {rows
                        .into_iter()
                        .map(|(label, value, explanation)| {
                            view! {
                                <dt>{label}</dt>
                                <dd>
                                    {value}
                                    <span class="cell-note">{explanation}</span>
                                </dd>
                            }
                        })
                        .collect_view()}
                </dl>
            </section>
            <section class="card" aria-labelledby="settings-server">
                <h2 id="settings-server">"Server"</h2>
                <dl class="facts">
                    <dt>"Version"</dt>
                    <dd>{view.server_version.clone()}</dd>
                    <dt>"Database"</dt>
                    <dd>{view.database_backend.clone()}</dd>
                </dl>
            </section>
        </div>
    }
}
