//! Settings: the workspace's application-server settings and facts about this server.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{get_settings, SettingsView};
use crate::ui::components::{ErrorPanel, Loading, PageHeader};
use crate::ui::format::humanize;

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
    }
}

/// Renders a settings value compactly: scalars as text, lists and maps as JSON.
fn setting_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => "—".to_string(),
        other => other.to_string(),
    }
}

#[component]
fn SettingsBody(view: SettingsView) -> impl IntoView {
    let entries = match serde_json::to_value(&view.settings) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    view! {
        <div class="grid grid--2">
            <section class="card" aria-labelledby="settings-current">
                <h2 id="settings-current">
                    {if view.has_workspace { "Workspace settings" } else { "Defaults" }}
                </h2>
                {(!view.has_workspace)
                    .then(|| {
                        view! {
                            <p class="muted">
                                "This browser has no workspace on the server yet, so these are the defaults. A workspace is created the first time the page saves state."
                            </p>
                        }
                    })}
                <dl class="facts">
                    {entries
                        .into_iter()
                        .map(|(key, value)| {
                            view! {
                                <dt>{humanize(&key)}</dt>
                                <dd>{setting_text(&value)}</dd>
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
