//! The form's last sections: Execution (command, arguments, ports, environment, sealed
//! secret environment, restarts, limits, startup timeout) and Health check.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::fields::{bind, CheckField, Checks, Kind, SelectField, TextField};
use super::text::{Field, FormTextStoreFields};
use super::FormState;
use crate::client::apps::AppManager;
use crate::model::RestartPolicy;

const RESTART_POLICIES: [(RestartPolicy, &str); 4] = [
    (
        RestartPolicy::OnFailure,
        "on-failure: restart after a non-zero exit",
    ),
    (RestartPolicy::Always, "always"),
    (RestartPolicy::UnlessStopped, "unless-stopped"),
    (RestartPolicy::Never, "never"),
];

#[component]
pub fn ExecutionSection(state: FormState) -> impl IntoView {
    let form = state.form;
    view! {
        <fieldset class="form-section" aria-labelledby="section-execution">
            <legend id="section-execution">"Execution"</legend>
            <div class="form-grid">
                <TextField id="app-command" label="Start command" bound=bind(form.command()) placeholder="node" />
                <TextField
                    id="app-working-directory"
                    label="Working directory"
                    bound=bind(form.working_directory())
                    hint="usually <deployment path>/current, the live release"
                />
            </div>
            <TextField
                id="app-arguments"
                label="Arguments"
                bound=bind(form.arguments())
                kind=Kind::Lines
                hint="one argument a line, passed as they are (no shell)"
            />
            <div class="form-grid">
                <TextField
                    id="app-port"
                    label="Primary port"
                    bound=state.port_binding()
                    kind=Kind::Number
                    hint="1024–65535; arguments and PORT follow when you change it"
                    problems=state.problems(Field::Port)
                />
                <div>
                    <TextField
                        id="app-additional-ports"
                        label="Additional ports"
                        bound=bind(form.additional_ports())
                        placeholder="9001, 9002"
                        problems=state.problems(Field::AdditionalPorts)
                    />
                    <AddFreePort state />
                </div>
            </div>
            <Checks group="ports" result=state.group(|checks| &checks.ports) />
            <TextField
                id="app-environment"
                label="Environment"
                bound=bind(form.environment())
                kind=Kind::Lines
                placeholder="NODE_ENV=production"
                hint="NAME=value, one a line; put passwords and keys in the secret environment"
                problems=state.problems(Field::Environment)
            />
            <SecretLookingVariables state />
            <SecretEnvironment state />
            <div class="form-grid">
                <CheckField id="app-auto-restart" label="Restart automatically" bound=bind(form.auto_restart()) />
                <SelectField
                    id="app-restart-policy"
                    label="Restart policy"
                    bound=bind(form.restart_policy())
                    options=RESTART_POLICIES.to_vec()
                    key=RestartPolicy::as_str
                />
                <TextField
                    id="app-max-retries"
                    label="Max retries"
                    bound=bind(form.max_retries())
                    kind=Kind::Number
                    hint="for on-failure; empty is unlimited"
                    problems=state.problems(Field::MaxRetries)
                />
            </div>
            <div class="form-grid">
                <TextField
                    id="app-memory-limit"
                    label="Memory limit (MB)"
                    bound=bind(form.memory_limit())
                    kind=Kind::Number
                    problems=state.problems(Field::MemoryLimit)
                />
                <TextField
                    id="app-cpu-limit"
                    label="CPU limit (%)"
                    bound=bind(form.cpu_limit())
                    kind=Kind::Number
                    problems=state.problems(Field::CpuLimit)
                />
                <TextField
                    id="app-startup-timeout"
                    label="Startup timeout (s)"
                    bound=bind(form.startup_timeout())
                    kind=Kind::Number
                    hint="interpreters start slowly in the emulator: allow about 60 s for Python"
                    problems=state.problems(Field::StartupTimeout)
                />
            </div>
            <Checks group="execution" result=state.group(|checks| &checks.execution) />
        </fieldset>
    }
}

/// "Add a free port": appends the lowest port of the range that no application uses and the
/// form does not list yet (rule 3, as the primary port was allocated at creation).
#[component]
fn AddFreePort(state: FormState) -> impl IntoView {
    let manager = use_context::<AppManager>();
    let problem: RwSignal<Option<String>> = RwSignal::new(None);
    let form = state.form;
    let add = move |_| {
        let Some(manager) = manager else {
            return;
        };
        let draft = state
            .applied
            .with_untracked(|applied| applied.application.clone());
        match manager.free_additional_port(&draft) {
            Ok(port) => {
                problem.set(None);
                form.additional_ports().update(|text| {
                    let listed = text.trim().trim_end_matches([',', ' ']);
                    *text = if listed.is_empty() {
                        port.to_string()
                    } else {
                        format!("{listed}, {port}")
                    };
                });
            }
            Err(error) => problem.set(Some(error.to_string())),
        }
    };
    view! {
        <button type="button" class="button button--secondary button--small" data-testid="app-add-port" on:click=add>
            "Add a free port"
        </button>
        {move || problem.get().map(|message| view! { <p class="inline-error" role="alert">{message}</p> })}
    }
}

/// Plain variables whose names say they are secrets, each with a button that seals its
/// value and moves it to the secret environment.
#[component]
fn SecretLookingVariables(state: FormState) -> impl IntoView {
    let form = state.form;
    let suspects = Memo::new(move |_| {
        form.environment().with(|text| {
            super::parse::parse_pairs("environment", text)
                .0
                .into_keys()
                .filter(|name| crate::domain::validation::looks_secret(name))
                .collect::<Vec<_>>()
        })
    });
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let move_to_secrets = move |name: String| {
        let value = form.environment().with_untracked(|text| {
            super::parse::parse_pairs("environment", text)
                .0
                .remove(&name)
        });
        let Some(value) = value else {
            return;
        };
        spawn_local(async move {
            match crate::client::secrets::seal(&value).await {
                Ok(sealed) => {
                    form.secret_environment().update(|secrets| {
                        secrets.insert(name.clone(), sealed);
                    });
                    form.environment()
                        .update(|text| *text = super::parse::without_variable(text, &name));
                    error.set(None);
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    view! {
        <Show when=move || suspects.with(|names| !names.is_empty())>
            <div class="secret-suspects" data-testid="secret-suspects" role="note">
                {move || suspects.get().into_iter().map(|name| {
                    let chosen = name.clone();
                    view! {
                        <p>
                            <code>{name.clone()}</code>
                            " looks like a secret: as a plain variable it is stored and mirrored as it is. "
                            <button
                                type="button"
                                class="button button--secondary button--small"
                                data-testid="move-to-secret"
                                on:click=move |_| move_to_secrets(chosen.clone())
                            >
                                {format!("Seal {name} as a secret")}
                            </button>
                        </p>
                    }
                }).collect_view()}
                {move || error.get().map(|message| view! { <p class="inline-error" role="alert">{message}</p> })}
            </div>
        </Show>
    }
}

/// Secret variables: names shown, values sealed at once in this browser and never shown.
#[component]
fn SecretEnvironment(state: FormState) -> impl IntoView {
    let form = state.form;
    let name = RwSignal::new(String::new());
    let value = RwSignal::new(String::new());
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let sealing = RwSignal::new(false);
    let add = move |_| {
        let key = name.get_untracked().trim().to_owned();
        let clear = value.get_untracked();
        if key.is_empty() || clear.is_empty() {
            error.set(Some("a secret needs a name and a value".to_owned()));
            return;
        }
        sealing.set(true);
        spawn_local(async move {
            match crate::client::secrets::seal(&clear).await {
                Ok(sealed) => {
                    form.secret_environment().update(|secrets| {
                        secrets.insert(key, sealed);
                    });
                    name.set(String::new());
                    value.set(String::new());
                    error.set(None);
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
            sealing.set(false);
        });
    };
    let names = Memo::new(move |_| {
        form.secret_environment()
            .with(|secrets| secrets.keys().cloned().collect::<Vec<_>>())
    });
    view! {
        <div class="secret-environment" role="group" aria-labelledby="secret-environment-title">
            <p class="field-label" id="secret-environment-title">"Secret environment"</p>
            <Show
                when=move || names.with(|names| !names.is_empty())
                fallback=|| view! { <p class="muted">"No secrets."</p> }
            >
                <ul class="secret-list">
                    {move || names.get().into_iter().map(|key| {
                        let remove = key.clone();
                        view! {
                            <li>
                                <code>{key.clone()}</code>
                                <span class="muted">" = •••• (sealed)"</span>
                                <button
                                    type="button"
                                    class="button button--secondary button--small"
                                    aria-label=format!("Remove secret {key}")
                                    on:click=move |_| form.secret_environment().update(|secrets| { secrets.remove(&remove); })
                                >
                                    "Remove"
                                </button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </Show>
            <div class="form-grid form-grid--inline">
                <TextField id="app-secret-name" label="Secret name" bound=bind(name) placeholder="API_KEY" />
                <div class="field">
                    <label for="app-secret-value">"Secret value"</label>
                    <input
                        id="app-secret-value"
                        type="password"
                        autocomplete="off"
                        prop:value=move || value.get()
                        on:input=move |event| value.set(event_target_value(&event))
                    />
                </div>
                <button type="button" class="button button--secondary" disabled=move || sealing.get() on:click=add>
                    "Add secret"
                </button>
            </div>
            <Show when=move || error.with(Option::is_some)>
                <p class="inline-error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
        </div>
    }
}

#[component]
pub fn HealthSection(state: FormState) -> impl IntoView {
    let form = state.form;
    let enabled = Memo::new(move |_| form.health_enabled().get());
    view! {
        <fieldset class="form-section" aria-labelledby="section-health">
            <legend id="section-health">"Health check"</legend>
            <CheckField
                id="app-health-enabled"
                label="Probe the app's health"
                bound=bind(form.health_enabled())
                hint="an HTTP GET on the primary port, as Docker's HEALTHCHECK"
            />
            <Show when=move || enabled.get()>
                <div class="form-grid">
                    <TextField id="app-health-path" label="Health path" bound=bind(form.health_path()) placeholder="/healthz" />
                    <TextField
                        id="app-health-interval"
                        label="Health interval (s)"
                        bound=bind(form.health_interval())
                        kind=Kind::Number
                        problems=state.problems(Field::HealthInterval)
                    />
                    <TextField
                        id="app-health-timeout"
                        label="Health timeout (s)"
                        bound=bind(form.health_timeout())
                        kind=Kind::Number
                        problems=state.problems(Field::HealthTimeout)
                    />
                    <TextField
                        id="app-health-retries"
                        label="Health retries"
                        bound=bind(form.health_retries())
                        kind=Kind::Number
                        problems=state.problems(Field::HealthRetries)
                    />
                    <TextField
                        id="app-health-start-period"
                        label="Health start period (s)"
                        bound=bind(form.health_start_period())
                        kind=Kind::Number
                        hint="failures in this time after start don't count"
                        problems=state.problems(Field::HealthStartPeriod)
                    />
                </div>
                <CheckField
                    id="app-health-restart"
                    label="Restart when unhealthy"
                    bound=bind(form.health_restart())
                    hint="through the restart policy's backoff and retry limit, so it can't loop faster than a crash"
                />
            </Show>
        </fieldset>
    }
}
