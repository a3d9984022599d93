//! The Settings page's form for the workspace's settings in this browser: new applications'
//! port range and restart policy, log and release retention, deploy limits. Checked by the
//! domain's rules on save; every refusal says which setting and why.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::client::apps::AppManager;
use crate::model::{ApplicationServerSettings, Port, RestartPolicy};

/// What the last save did.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Saved(Vec<String>),
    Refused(Vec<String>),
}

/// The form's fields, as typed.
#[derive(Debug, Clone, Copy)]
struct Fields {
    port_start: RwSignal<String>,
    port_end: RwSignal<String>,
    restart_policy: RwSignal<String>,
    log_entries: RwSignal<String>,
    releases_kept: RwSignal<String>,
    deploy_megabytes: RwSignal<String>,
    deploy_files: RwSignal<String>,
}

impl Fields {
    fn new() -> Self {
        let text = || RwSignal::new(String::new());
        Fields {
            port_start: text(),
            port_end: text(),
            restart_policy: text(),
            log_entries: text(),
            releases_kept: text(),
            deploy_megabytes: text(),
            deploy_files: text(),
        }
    }

    fn fill(&self, settings: &ApplicationServerSettings) {
        self.port_start.set(settings.port_range.start.to_string());
        self.port_end.set(settings.port_range.end.to_string());
        self.restart_policy
            .set(settings.default_restart_policy.as_str().to_string());
        self.log_entries.set(settings.max_log_entries.to_string());
        self.releases_kept.set(settings.releases_kept.to_string());
        self.deploy_megabytes
            .set((settings.deploy_limits.max_total_bytes / (1024 * 1024)).to_string());
        self.deploy_files
            .set(settings.deploy_limits.max_files.to_string());
    }

    /// The settings the fields describe, on top of `base`; every field that is not a
    /// number (or a port) is named.
    fn read(
        &self,
        base: &ApplicationServerSettings,
    ) -> Result<ApplicationServerSettings, Vec<String>> {
        let mut problems = Vec::new();
        let mut settings = base.clone();
        let mut number = |label: &str, field: RwSignal<String>| -> Option<u64> {
            let text = field.get_untracked();
            match text.trim().parse::<u64>() {
                Ok(value) => Some(value),
                Err(_) => {
                    problems.push(format!("{label}: '{text}' is not a whole number"));
                    None
                }
            }
        };
        let start = number("first port", self.port_start);
        let end = number("last port", self.port_end);
        let logs = number("log entries kept", self.log_entries);
        let releases = number("releases kept", self.releases_kept);
        let megabytes = number("deploy size", self.deploy_megabytes);
        let files = number("deploy files", self.deploy_files);
        for (label, value, target) in [
            ("first port", start, &mut settings.port_range.start),
            ("last port", end, &mut settings.port_range.end),
        ] {
            if let Some(value) = value {
                match Port::parse(value as i64) {
                    Ok(port) => *target = port,
                    Err(error) => problems.push(format!("{label}: {error}")),
                }
            }
        }
        match self.restart_policy.get_untracked().parse::<RestartPolicy>() {
            Ok(policy) => settings.default_restart_policy = policy,
            Err(_) => problems.push("restart policy: choose one of the list".into()),
        }
        let small =
            |value: Option<u64>| value.map(|value| u32::try_from(value).unwrap_or(u32::MAX));
        if let Some(value) = small(logs) {
            settings.max_log_entries = value;
        }
        if let Some(value) = small(releases) {
            settings.releases_kept = value;
        }
        if let Some(value) = megabytes {
            settings.deploy_limits.max_total_bytes = value.saturating_mul(1024 * 1024);
        }
        if let Some(value) = small(files) {
            settings.deploy_limits.max_files = value;
        }
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems)
        }
    }
}

#[component]
pub fn WorkspaceSettingsForm() -> impl IntoView {
    let manager = AppManager::expect();
    let fields = Fields::new();
    let outcome: RwSignal<Option<Outcome>> = RwSignal::new(None);
    let saving = RwSignal::new(false);
    let loaded = manager.loaded;
    // Filled from the record once it is read (and again after an import changes it).
    Effect::new(move |_| {
        if loaded.get() {
            fields.fill(&manager.settings_tracked());
        }
    });
    let save = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let settings = match fields.read(&manager.settings()) {
            Ok(settings) => settings,
            Err(problems) => {
                outcome.set(Some(Outcome::Refused(problems)));
                return;
            }
        };
        saving.set(true);
        spawn_local(async move {
            let result = manager.save_settings(settings).await;
            outcome.try_set(Some(match result {
                Ok(warnings) => Outcome::Saved(warnings),
                Err(error) => Outcome::Refused(vec![error.to_string()]),
            }));
            saving.try_set(false);
        });
    };
    let input =
        |id: &'static str, label: &'static str, field: RwSignal<String>, hint: &'static str| {
            view! {
                <div class="field">
                    <label for=id>{label}</label>
                    <input
                        id=id
                        data-testid=id
                        inputmode="numeric"
                        prop:value=move || field.get()
                        on:input=move |event| field.set(event_target_value(&event))
                    />
                    <span class="field-hint">{hint}</span>
                </div>
            }
        };
    let writable = manager.writable;
    view! {
        <section class="card" aria-labelledby="settings-edit" data-testid="settings-form">
            <h2 id="settings-edit">"Change the settings"</h2>
            <p class="muted">"Kept with your applications in this browser, and in its backups."</p>
            <form on:submit=save class="settings-form">
                <div class="grid grid--2">
                    {input("settings-port-start", "First port", fields.port_start, "New applications get the lowest free port from here.")}
                    {input("settings-port-end", "Last port", fields.port_end, "Up to here (at most 65535).")}
                </div>
                <div class="field">
                    <label for="settings-restart-policy">"Restart policy of new applications"</label>
                    <select
                        id="settings-restart-policy"
                        data-testid="settings-restart-policy"
                        prop:value=move || fields.restart_policy.get()
                        on:change=move |event| fields.restart_policy.set(event_target_value(&event))
                    >
                        {RestartPolicy::ALL.iter().map(|policy| view! {
                            <option value=policy.as_str()>{policy.as_str()}</option>
                        }).collect_view()}
                    </select>
                </div>
                <div class="grid grid--2">
                    {input("settings-log-entries", "Log entries kept per application", fields.log_entries, "1 to 1000; the oldest go first.")}
                    {input("settings-releases-kept", "Releases kept for roll back", fields.releases_kept, "1 to 20, the current one included.")}
                    {input("settings-deploy-megabytes", "Largest deploy, MB", fields.deploy_megabytes, "Files of one deploy, uncompressed.")}
                    {input("settings-deploy-files", "Most files in a deploy", fields.deploy_files, "Files, folders and links.")}
                </div>
                <button type="submit" class="button" data-testid="settings-save" disabled=move || saving.get() || !writable.get()>
                    {move || if saving.get() { "Saving…" } else { "Save settings" }}
                </button>
            </form>
            {move || outcome.get().map(|outcome| match outcome {
                Outcome::Saved(warnings) => view! {
                    <div role="status" data-testid="settings-saved">
                        <p>"Saved."</p>
                        <ul>{warnings.into_iter().map(|warning| view! { <li class="muted">{warning}</li> }).collect_view()}</ul>
                    </div>
                }
                .into_any(),
                Outcome::Refused(problems) => view! {
                    <div class="inline-error" role="alert" data-testid="settings-refused">
                        <p>"Not saved:"</p>
                        <ul>{problems.into_iter().map(|problem| view! { <li>{problem}</li> }).collect_view()}</ul>
                    </div>
                }
                .into_any(),
            })}
        </section>
    }
}
