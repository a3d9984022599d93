//! The application form: "New application" (`/applications/new`, starting from a preset)
//! and the Settings tab of an app's page (edit and rename). Validation runs as the user
//! types: the form's text (a store, one field per input) makes one draft (a Memo), which the
//! domain checks (another Memo); each section shows its group's errors, warnings and
//! suggestions, each field its own parse problems, and Save stays off while any error is
//! left, saying why.

mod execution;
mod fields;
mod parse;
mod sections;
mod text;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};
use reactive_stores::Store;

use crate::client::apps::AppManager;
use crate::domain::presets::{replace_path, replace_port, PresetId};
use crate::domain::validation::ApplicationChecks;
use crate::model::{
    Application, ApplicationId, DeploymentConfig, Port, RuntimePackage, ValidationResult,
};
use crate::ui::components::{PageHeader, StatusBadge};

use execution::{ExecutionSection, HealthSection};
use fields::Bound;
use sections::{BuildSection, GeneralSection, RuntimeSection, SourceSection};
use text::{Applied, Field, FormText, FormTextStoreFields};

/// What the sections share. `Copy`: signals only.
#[derive(Clone, Copy)]
pub struct FormState {
    form: Store<FormText>,
    applied: Memo<Applied>,
    checks: Memo<ApplicationChecks>,
    runtimes: Memo<Vec<RuntimePackage>>,
    /// A GitHub token typed but not sealed yet (sealed on save; never stored in clear).
    pending_token: RwSignal<String>,
    /// Creating (the name and port carry the paths and arguments along) or editing.
    is_new: bool,
    /// The application's id (a local-sync folder is kept under it).
    id: ApplicationId,
    /// The last valid primary port, which the arguments and `PORT` name.
    followed_port: StoredValue<Option<Port>>,
}

impl FormState {
    /// One field's parse problems, waking only when they change.
    fn problems(&self, field: Field) -> Signal<Vec<String>> {
        let applied = self.applied;
        Memo::new(move |_| applied.with(|applied| applied.problems_of(field))).into()
    }

    /// One group of the domain's checks, waking only when it changes. While the name does
    /// not parse, the name group is the field's own problems (shown under it) alone.
    fn group(&self, pick: fn(&ApplicationChecks) -> &ValidationResult) -> Signal<ValidationResult> {
        let checks = self.checks;
        let applied = self.applied;
        let name_broken =
            Memo::new(move |_| applied.with(|applied| applied.problems.contains_key(&Field::Name)));
        Memo::new(move |_| {
            checks.with(|checks| {
                let result = pick(checks);
                if name_broken.get() && std::ptr::eq(result, &checks.name) {
                    ValidationResult::ok()
                } else {
                    result.clone()
                }
            })
        })
        .into()
    }

    /// The name; while creating, a deployment path that is still the default follows it,
    /// and so do the working directory and arguments that name that path.
    fn name_binding(&self) -> Bound<String> {
        let form = self.form;
        let is_new = self.is_new;
        Bound {
            value: Signal::derive(move || form.name().get()),
            set: Callback::new(move |name: String| {
                let old = form.name().get_untracked();
                let old_path = default_path_of(&old);
                if is_new && form.deployment_path().get_untracked() == old_path {
                    follow_path(form, &old_path, &default_path_of(&name));
                }
                form.name().set(name);
            }),
        }
    }

    /// The deployment path; the working directory and arguments that name it follow.
    fn path_binding(&self) -> Bound<String> {
        let form = self.form;
        Bound {
            value: Signal::derive(move || form.deployment_path().get()),
            set: Callback::new(move |path: String| {
                let old = form.deployment_path().get_untracked();
                if !old.is_empty() && !path.is_empty() {
                    follow_path(form, &old, &path);
                }
                form.deployment_path().set(path);
            }),
        }
    }

    /// The primary port; arguments and environment (`PORT`) that name it follow: each time
    /// the text is a valid port again, the last valid one is replaced by it (what is typed
    /// in between, such as `80` on the way to `8080`, changes nothing).
    fn port_binding(&self) -> Bound<String> {
        let form = self.form;
        let followed = self.followed_port;
        Bound {
            value: Signal::derive(move || form.port().get()),
            set: Callback::new(move |port: String| {
                let valid = port
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .and_then(|number| Port::parse(number).ok());
                if let (Some(old), Some(new)) = (followed.get_value(), valid) {
                    let (old, new) = (old.get().to_string(), new.get().to_string());
                    form.arguments()
                        .update(|text| *text = replace_port(text, &old, &new));
                    form.environment()
                        .update(|text| *text = replace_port(text, &old, &new));
                }
                if valid.is_some() {
                    followed.set_value(valid);
                }
                form.port().set(port);
            }),
        }
    }
}

fn default_path_of(name: &str) -> String {
    format!(
        "{}/{}",
        DeploymentConfig::APP_AREA,
        name.trim().to_ascii_lowercase()
    )
}

fn follow_path(form: Store<FormText>, old: &str, new: &str) {
    form.deployment_path()
        .update(|text| *text = replace_path(text, old, new));
    form.working_directory()
        .update(|text| *text = replace_path(text, old, new));
    form.arguments()
        .update(|text| *text = replace_path(text, old, new));
}

/// `/applications/new`: the presets, then the form for the one picked (`?preset=<id>`).
#[component]
pub fn NewApplicationPage() -> impl IntoView {
    let query = use_query_map();
    let preset = Memo::new(move |_| {
        query
            .with(|query| query.get("preset"))
            .and_then(|text| text.parse::<PresetId>().ok())
    });
    let manager = AppManager::expect();
    view! {
        <Title text="New application" />
        <p class="breadcrumb">
            <A href="/applications">"← Applications"</A>
        </p>
        <PageHeader title="New application" lead="Start from a preset for your runtime; every field can be changed before you create it." />
        <nav class="preset-list" aria-label="Presets">
            {PresetId::ALL
                .iter()
                .map(|id| {
                    let id = *id;
                    let preset_of = id.preset();
                    view! {
                        <A
                            href=format!("/applications/new?preset={id}")
                            attr:class="preset-card"
                            attr:aria-current=move || (preset.get() == Some(id)).then_some("true")
                            attr:data-preset=id.as_str()
                        >
                            <span class="preset-card__label">{preset_of.label}</span>
                            <span class="preset-card__description">{preset_of.description}</span>
                            <span class="preset-card__runtimes">{preset_of.required_runtimes.join(" + ")}</span>
                        </A>
                    }
                })
                .collect_view()}
        </nav>
        {move || match (preset.get(), manager.loaded.get()) {
            (None, _) => view! { <p class="muted">"Pick a preset to fill in the form."</p> }.into_any(),
            (Some(_), false) => {
                view! {
                    <p class="muted needs-js">
                        "Applications are kept in this browser, so the form needs the page's JavaScript; it opens once this browser's applications have been read."
                    </p>
                }
                    .into_any()
            }
            (Some(id), true) => match manager.new_draft(id) {
                Ok(draft) => view! { <ApplicationForm base=Signal::stored(draft) is_new=true /> }.into_any(),
                Err(error) => view! { <p class="inline-error" role="alert">{error.to_string()}</p> }.into_any(),
            },
        }}
    }
}

/// The form over `base` (a new draft, or the saved app, tracked so a save keeps what changed
/// meanwhile, such as its status).
#[component]
pub fn ApplicationForm(base: Signal<Application>, is_new: bool) -> impl IntoView {
    let manager = AppManager::expect();
    let form = Store::new(FormText::from_application(&base.get_untracked()));
    let applied = Memo::new(move |_| {
        let text = form.get();
        base.with(|base| text.apply(base))
    });
    let checks = Memo::new(move |_| applied.with(|applied| manager.check(&applied.application)));
    let state = FormState {
        form,
        applied,
        checks,
        runtimes: manager.runtimes(),
        pending_token: RwSignal::new(String::new()),
        is_new,
        id: base.with_untracked(|base| base.id),
        followed_port: StoredValue::new(base.with_untracked(|base| base.execution.port)),
    };
    let blockers = Memo::new(move |_| {
        let mut reasons: Vec<String> =
            applied.with(|applied| applied.problems.values().flatten().cloned().collect());
        if !applied.with(|applied| applied.problems.contains_key(&Field::Name)) {
            reasons.extend(checks.with(|checks| checks.name.errors.clone()));
        }
        checks.with(|checks| {
            for (group, result) in checks.groups() {
                if group != "name" {
                    reasons.extend(result.errors.iter().cloned());
                }
            }
        });
        if !manager.writable.get() {
            reasons.push(
                "this browser's storage is not ready, so nothing can be saved yet".to_owned(),
            );
        }
        reasons
    });
    let saving = RwSignal::new(false);
    let outcome: RwSignal<Option<Result<String, String>>> = RwSignal::new(None);
    let navigate = use_navigate();
    let save = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if saving.get_untracked() || blockers.with_untracked(|reasons| !reasons.is_empty()) {
            return;
        }
        saving.set(true);
        outcome.set(None);
        let navigate = navigate.clone();
        let old_name = base.with_untracked(|base| base.name.clone());
        spawn_local(async move {
            let pending = state.pending_token.get_untracked();
            if !pending.is_empty() {
                match crate::client::secrets::seal(&pending).await {
                    Ok(sealed) => {
                        form.token().set(Some(sealed));
                        state.pending_token.set(String::new());
                    }
                    Err(error) => {
                        outcome.set(Some(Err(format!("GitHub token: {error}"))));
                        saving.set(false);
                        return;
                    }
                }
            }
            let draft = form.with_untracked(|text| base.with_untracked(|base| text.apply(base)));
            match manager.save(draft.application).await {
                Ok(saved) => {
                    outcome.set(Some(Ok(format!("Saved {}.", saved.name))));
                    if is_new {
                        navigate(&format!("/applications/{}", saved.name), Default::default());
                    } else if saved.name != old_name {
                        navigate(
                            &format!("/applications/{}?tab=settings", saved.name),
                            Default::default(),
                        );
                    }
                }
                Err(error) => outcome.set(Some(Err(error.to_string()))),
            }
            saving.set(false);
        });
    };
    let status = Memo::new(move |_| base.with(|base| base.status));
    view! {
        <form class="app-form" on:submit=save novalidate=true aria-label=if is_new { "New application" } else { "Application settings" }>
            <div class="app-form__status">
                <span class="muted">"Status "</span>
                {move || view! { <StatusBadge status=status.get() /> }}
            </div>
            // Each section's view type erased: the form's type stays shallow enough to compile.
            {view! { <GeneralSection state /> }.into_any()}
            {view! { <RuntimeSection state /> }.into_any()}
            {view! { <SourceSection state /> }.into_any()}
            {view! { <BuildSection state /> }.into_any()}
            {view! { <ExecutionSection state /> }.into_any()}
            {view! { <HealthSection state /> }.into_any()}
            <div class="app-form__footer">
                <Show when=move || blockers.with(|reasons| !reasons.is_empty())>
                    <div class="save-blockers" data-testid="save-blockers">
                        <p class="checks__title">"Can't save yet:"</p>
                        <ul class="problems">
                            {move || blockers.get().into_iter().map(|reason| view! { <li>{reason}</li> }).collect_view()}
                        </ul>
                    </div>
                </Show>
                <button
                    type="submit"
                    class="button"
                    disabled=move || saving.get() || blockers.with(|reasons| !reasons.is_empty())
                >
                    {move || match (saving.get(), is_new) {
                        (true, _) => "Saving…",
                        (false, true) => "Create application",
                        (false, false) => "Save changes",
                    }}
                </button>
                {move || outcome.get().map(|outcome| match outcome {
                    Ok(message) => view! { <p class="save-outcome" role="status">{message}</p> }.into_any(),
                    Err(message) => view! { <p class="inline-error save-outcome" role="alert">{message}</p> }.into_any(),
                })}
            </div>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::presets::draft;
    use crate::model::{AppName, ApplicationServerSettings};
    use uuid::Uuid;

    fn state_for(app: Application, is_new: bool) -> FormState {
        let form = Store::new(FormText::from_application(&app));
        let port = app.execution.port;
        let applied = Memo::new(move |_| form.get().apply(&app));
        FormState {
            form,
            applied,
            checks: Memo::new(|_| ApplicationChecks::default()),
            runtimes: Memo::new(|_| Vec::new()),
            pending_token: RwSignal::new(String::new()),
            is_new,
            id: Uuid::nil(),
            followed_port: StoredValue::new(port),
        }
    }

    #[test]
    fn the_port_and_a_new_name_carry_arguments_and_paths_along() {
        let owner = Owner::new();
        owner.set();
        let app = draft(
            PresetId::StaticBusybox,
            Uuid::nil(),
            AppName::parse("site").expect("valid"),
            Port::parse(8001).expect("valid"),
            &ApplicationServerSettings::default(),
            chrono::DateTime::default(),
        );
        let cases = [(true, "/srv/apps/blog"), (false, "/srv/apps/site")];
        for (is_new, path) in cases {
            let state = state_for(app.clone(), is_new);
            let port = state.port_binding();
            for text in ["", "9", "90", "900", "9000"] {
                port.set.run(text.to_owned());
            }
            let name = state.name_binding();
            for text in ["sit", "", "b", "blog"] {
                name.set.run(text.to_owned());
            }
            let applied = state.applied.get_untracked();
            let execution = &applied.application.execution;
            assert_eq!(
                execution.arguments.join(" "),
                format!("httpd -f -p 9000 -h {path}/current"),
                "new: {is_new}"
            );
            assert_eq!(
                execution.environment.get("PORT").map(String::as_str),
                Some("9000")
            );
            assert_eq!(applied.application.deployment.deployment_path, path);
            assert_eq!(execution.working_directory, format!("{path}/current"));
            assert_eq!(applied.application.name.as_str(), "blog");
        }
    }
}
