//! The form's first sections: General (name, description), Runtime (required and optional
//! runtimes from the catalog, version requirements), Source (type and its fields, deployment
//! path, entry point) and Build.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::fields::{bind, Bound, CheckField, Checks, Kind, SelectField, TextField};
use super::text::{Field, FormTextStoreFields};
use super::FormState;
use crate::client::apps::local_sync;
use crate::model::{DeploymentSource, PackageStatus};
use crate::ui::components::StatusBadge;

/// The source choices: (source, label).
pub const SOURCES: [(DeploymentSource, &str); 4] = [
    (DeploymentSource::Upload, "Upload files"),
    (DeploymentSource::Url, "Archive URL (ZIP or .tar.gz)"),
    (DeploymentSource::Github, "GitHub repository"),
    (DeploymentSource::LocalSync, "Local folder (sync)"),
];

#[component]
pub fn GeneralSection(state: FormState) -> impl IntoView {
    let form = state.form;
    let hint = if state.is_new {
        "3–50 letters, digits, '-', '_' or '.'; the app is served at /apps/<name>/."
    } else {
        "Renaming keeps the app's files where they are; it is served at /apps/<new name>/."
    };
    view! {
        <fieldset class="form-section" aria-labelledby="section-general">
            <legend id="section-general">"General"</legend>
            <TextField
                id="app-name"
                label="Application name"
                bound=state.name_binding()
                hint=hint
                problems=state.problems(Field::Name)
            />
            <TextField id="app-description" label="Description" bound=bind(form.description()) kind=Kind::Lines />
            <Checks group="name" result=state.group(|checks| &checks.name) />
        </fieldset>
    }
}

#[component]
pub fn RuntimeSection(state: FormState) -> impl IntoView {
    let form = state.form;
    let runtimes = state.runtimes;
    // Catalog runtimes, plus any the app names that the catalog lacks (so they can be unticked).
    let rows = Memo::new(move |_| {
        let mut rows: Vec<(String, String, String, Option<PackageStatus>)> =
            runtimes.with(|packages| {
                packages
                    .iter()
                    .map(|package| {
                        (
                            package.id.to_string(),
                            package.name.clone(),
                            package.version.clone(),
                            Some(package.status),
                        )
                    })
                    .collect()
            });
        let named: Vec<String> = form.required_runtimes().with(|required| {
            form.optional_runtimes()
                .with(|optional| required.iter().chain(optional).cloned().collect())
        });
        for id in named {
            if !rows.iter().any(|row| row.0 == id) {
                rows.push((id.clone(), id, String::new(), None));
            }
        }
        rows
    });
    view! {
        <fieldset class="form-section" aria-labelledby="section-runtime">
            <legend id="section-runtime">"Runtime"</legend>
            <p class="muted">"Tick what the app needs. Missing runtimes can be installed from the app's page."</p>
            <div class="table-wrap">
                <table class="table runtime-table">
                    <thead>
                        <tr>
                            <th scope="col">"Runtime"</th>
                            <th scope="col">"Required"</th>
                            <th scope="col">"Optional"</th>
                            <th scope="col">"Here"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || rows.get()
                            key=|row| row.clone()
                            children=move |(id, name, version, status)| {
                                let required_id = id.clone();
                                let optional_id = id.clone();
                                let toggle_required = id.clone();
                                let toggle_optional = id.clone();
                                view! {
                                    <tr>
                                        <th scope="row">
                                            {name}
                                            <span class="cell-note"><code>{id.clone()}</code> " " {version}</span>
                                        </th>
                                        <td>
                                            <input
                                                type="checkbox"
                                                aria-label=format!("Requires {id}")
                                                prop:checked=move || form.required_runtimes().with(|set| set.contains(&required_id))
                                                on:change=move |event| {
                                                    let on = event_target_checked(&event);
                                                    form.required_runtimes().update(|set| {
                                                        if on { set.insert(toggle_required.clone()); } else { set.remove(&toggle_required); }
                                                    });
                                                }
                                            />
                                        </td>
                                        <td>
                                            <input
                                                type="checkbox"
                                                aria-label=format!("Optionally uses {id}")
                                                prop:checked=move || form.optional_runtimes().with(|set| set.contains(&optional_id))
                                                on:change=move |event| {
                                                    let on = event_target_checked(&event);
                                                    form.optional_runtimes().update(|set| {
                                                        if on { set.insert(toggle_optional.clone()); } else { set.remove(&toggle_optional); }
                                                    });
                                                }
                                            />
                                        </td>
                                        <td>
                                            {match status {
                                                Some(status) => view! { <StatusBadge status /> }.into_any(),
                                                None => view! { <span class="muted">"not in the catalog"</span> }.into_any(),
                                            }}
                                        </td>
                                    </tr>
                                }
                            }
                        />
                    </tbody>
                </table>
            </div>
            <div class="form-grid">
                <TextField
                    id="app-minimum-versions"
                    label="Minimum versions"
                    bound=bind(form.minimum_versions())
                    kind=Kind::Lines
                    placeholder="nodejs=18.0.0"
                    hint="family=version or a range (>=18, <22), one a line"
                    problems=state.problems(Field::MinimumVersions)
                />
                <TextField
                    id="app-recommended-versions"
                    label="Recommended versions"
                    bound=bind(form.recommended_versions())
                    kind=Kind::Lines
                    placeholder="nodejs=20.11.0"
                    problems=state.problems(Field::RecommendedVersions)
                />
            </div>
            <Checks group="runtime" result=state.group(|checks| &checks.runtime) />
        </fieldset>
    }
}

#[component]
pub fn SourceSection(state: FormState) -> impl IntoView {
    let form = state.form;
    let source = Memo::new(move |_| form.source_type().get());
    let has_token = Memo::new(move |_| form.token().with(Option::is_some));
    let pending: Bound<String> = bind(state.pending_token);
    view! {
        <fieldset class="form-section" aria-labelledby="section-source">
            <legend id="section-source">"Source"</legend>
            <SelectField
                id="app-source"
                label="Source"
                bound=bind(form.source_type())
                options=SOURCES.to_vec()
                key=DeploymentSource::as_str
            />
            <Show when=move || source.get() == DeploymentSource::Upload>
                <p class="muted">"Files, a folder or one ZIP / .tar.gz are picked on the app's Deploy tab, each time you deploy."</p>
            </Show>
            <Show when=move || source.get() == DeploymentSource::Url>
                <TextField
                    id="app-url"
                    label="Archive URL"
                    bound=bind(form.url())
                    placeholder="https://example.com/site.tar.gz"
                    hint="http or https; the server downloads it and streams it to this page"
                />
            </Show>
            <Show when=move || source.get() == DeploymentSource::Github>
                <div class="form-grid">
                    <TextField id="app-repository" label="Repository" bound=bind(form.repository()) placeholder="owner/name" />
                    <TextField id="app-branch" label="Branch" bound=bind(form.branch()) placeholder="main" />
                    <TextField id="app-commit" label="Commit" bound=bind(form.commit()) hint="a commit SHA instead of a branch (optional)" />
                </div>
                <div class="field">
                    <label for="app-token">"GitHub token"</label>
                    <input
                        id="app-token"
                        type="password"
                        autocomplete="off"
                        placeholder=move || if has_token.get() { "a token is saved; type to replace it" } else { "for a private repository (optional)" }
                        prop:value=move || pending.value.get()
                        on:input=move |event| pending.set.run(event_target_value(&event))
                    />
                    <span class="field-hint">
                        "Sealed in this browser when you save; it is never shown again and goes only to the GitHub API."
                    </span>
                    <Show when=move || has_token.get()>
                        <p class="token-saved">
                            "A sealed token is saved. "
                            <button type="button" class="button button--secondary button--small" on:click=move |_| form.token().set(None)>
                                "Remove token"
                            </button>
                        </p>
                    </Show>
                </div>
            </Show>
            <Show when=move || source.get() == DeploymentSource::LocalSync>
                <ChooseFolder state />
                <TextField
                    id="app-local-path"
                    label="Local folder"
                    bound=bind(form.local_path())
                    hint="the folder's name as shown to you"
                />
                <CheckField
                    id="app-watch"
                    label="Watch for changes"
                    bound=bind(form.watch_enabled())
                    hint="changes reach the VM within about 2 s (browsers without the File System Access API sync only when you deploy)"
                />
            </Show>
            <div class="form-grid">
                <TextField
                    id="app-deployment-path"
                    label="Deployment path"
                    bound=state.path_binding()
                    hint="inside /srv/apps; releases go in releases/, the live one is current/"
                />
                <TextField id="app-entry-point" label="Entry point" bound=bind(form.entry_point()) placeholder="index.html, app.py, index.js" />
            </div>
            <Checks group="deployment" result=state.group(|checks| &checks.deployment) />
        </fieldset>
    }
}

#[component]
pub fn BuildSection(state: FormState) -> impl IntoView {
    let form = state.form;
    let enabled = Memo::new(move |_| form.build_enabled().get());
    view! {
        <fieldset class="form-section" aria-labelledby="section-build">
            <legend id="section-build">"Build"</legend>
            <CheckField
                id="app-build-enabled"
                label="Run a build step"
                bound=bind(form.build_enabled())
                hint="runs in the new release before it goes live; a failed build leaves the current release as it is"
            />
            <Show when=move || enabled.get()>
                <div class="form-grid">
                    <TextField id="app-build-command" label="Build command" bound=bind(form.build_command()) placeholder="npm run build" />
                    <TextField id="app-build-directory" label="Build directory" bound=bind(form.build_directory()) placeholder="dist" hint="what the app serves or runs from (empty: the release itself)" />
                    <TextField
                        id="app-build-timeout"
                        label="Build timeout (s)"
                        bound=bind(form.build_timeout())
                        kind=Kind::Number
                        problems=state.problems(Field::BuildTimeout)
                    />
                </div>
                <TextField
                    id="app-build-environment"
                    label="Build environment"
                    bound=bind(form.build_environment())
                    kind=Kind::Lines
                    placeholder="NODE_ENV=production"
                    hint="NAME=value, one a line"
                    problems=state.problems(Field::BuildEnvironment)
                />
            </Show>
        </fieldset>
    }
}

/// "Choose folder": the File System Access API's picker; the handle is kept in this
/// browser under the app's id, and the folder's name fills "Local folder". Browsers
/// without the API are told so (they upload the folder on the Deploy tab, without watch).
#[component]
fn ChooseFolder(state: FormState) -> impl IntoView {
    let form = state.form;
    let id = state.id;
    let supported = local_sync::directory_picker_supported();
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let choose = move |_| {
        spawn_local(async move {
            match local_sync::pick_folder(id).await {
                Ok(folder) => {
                    form.local_path().try_set(folder.name().to_string());
                    error.try_set(None);
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
        });
    };
    if !supported {
        return view! {
            <p class="muted">
                "This browser has no File System Access API: a folder can't be watched here. Pick it on the Deploy tab each time you deploy."
            </p>
        }
        .into_any();
    }
    view! {
        <div class="package-actions">
            <button type="button" class="button button--secondary" on:click=choose>
                "Choose folder"
            </button>
            <Show when=move || error.with(Option::is_some)>
                <span class="inline-error" role="alert">{move || error.get().unwrap_or_default()}</span>
            </Show>
        </div>
    }
    .into_any()
}
