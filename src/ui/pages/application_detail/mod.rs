//! Application detail: one app's page, in five tabs (`?tab=`): Overview, Deploy, Logs,
//! Settings and History. The server renders the mirror's overview (it reads without JavaScript);
//! once this browser's record has been read, the page shows the record's app live.

mod deploy;
mod history;
mod logs;
mod metrics;
mod overview;
mod run;
mod sharing;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::get_application;
use crate::client::apps::AppManager;
use crate::client::vm_controller::VmController;
use crate::model::{Application, ApplicationId};
use crate::ui::components::{ErrorPanel, Loading};
use crate::ui::pages::application_form::ApplicationForm;

use deploy::DeployTab;
use history::HistoryTab;
use logs::LogsTab;
use overview::{LiveOverview, MirrorOverview};

/// The page's tabs: (query value, label).
const TABS: [(&str, &str); 5] = [
    ("overview", "Overview"),
    ("deploy", "Deploy"),
    ("logs", "Logs"),
    ("settings", "Settings"),
    ("history", "History"),
];

#[component]
pub fn ApplicationDetailPage() -> impl IntoView {
    let params = use_params_map();
    let name = Memo::new(move |_| params.read().get("name").unwrap_or_default());
    let manager = AppManager::expect();
    let mirror = Resource::new(move || name.get(), get_application);
    // The record's app of this name, by id: the live view is made once per app, and each
    // of its parts follows the record itself.
    let live_id = Memo::new(move |_| {
        let wanted = name.get();
        manager.applications.with(|apps| {
            apps.iter()
                .find(|app| app.name.as_str().eq_ignore_ascii_case(&wanted))
                .map(|app| app.id)
        })
    });
    view! {
        <Title text=move || name.get() />
        <p class="breadcrumb">
            <A href="/applications">"← Applications"</A>
        </p>
        <Suspense fallback=|| view! { <Loading label="Loading the application…" /> }>
            {move || Suspend::new(async move {
                let mirrored = mirror.await;
                // The mirror's view until this part has hydrated and the record has been
                // read, so hydration sees what the server rendered.
                let hydrated = RwSignal::new(false);
                Effect::new(move |_| hydrated.set(true));
                view! {
                    {move || match (hydrated.get() && manager.loaded.get(), live_id.get()) {
                        (true, Some(id)) => view! { <LiveApplication id /> }.into_any(),
                        _ => match mirrored.clone() {
                            Ok(application) => view! { <MirrorApplication application /> }.into_any(),
                            Err(error) => {
                                #[cfg(feature = "ssr")]
                                if matches!(error, crate::error::AppError::NotFound { .. }) {
                                    crate::api::context::set_status(404);
                                }
                                view! { <ErrorPanel error /> }.into_any()
                            }
                        },
                    }}
                }
            })}
        </Suspense>
    }
}

/// The server's copy: the overview, and where the rest is.
#[component]
fn MirrorApplication(application: Application) -> impl IntoView {
    let manager = AppManager::expect();
    view! {
        <MirrorOverview application />
        <p class="muted">
            {move || if manager.loaded.get() {
                "This browser's record has no application of this name: what shows is the server's copy. Deploying, settings and the deployment history are in the browser that created it."
            } else {
                "The server's copy. Deploying, settings and the deployment history (with logs) open here with the page's JavaScript: the app lives in your browser."
            }}
        </p>
    }
}

/// The record's app, live, with its tabs.
#[component]
fn LiveApplication(id: ApplicationId) -> impl IntoView {
    let manager = AppManager::expect();
    let vm = VmController::expect();
    // Deploying needs the VM: start it as the Packages page does.
    Effect::new(move |_| vm.start_on_load());
    let query = use_query_map();
    let tab = Memo::new(move |_| {
        let asked = query.with(|query| query.get("tab")).unwrap_or_default();
        TABS.iter()
            .map(|(key, _)| *key)
            .find(|key| *key == asked)
            .unwrap_or("overview")
    });
    let application = manager.application(id);
    let name = Memo::new(move |_| {
        application
            .with(|app| app.as_ref().map(|app| app.name.to_string()))
            .unwrap_or_default()
    });
    let base = Signal::derive(move || application.get());
    view! {
        <nav class="tabs" aria-label="Application sections">
            {TABS
                .iter()
                .map(|(key, label)| {
                    let key = *key;
                    view! {
                        // A plain link (the router still handles the click): `<A>` sets its
                        // own aria-current from the path alone, which every tab shares.
                        <a
                            href=move || format!("/applications/{}?tab={key}", name.get())
                            class="tabs__tab"
                            aria-current=move || (tab.get() == key).then_some("page")
                        >
                            {*label}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
        {move || match tab.get() {
            "deploy" => view! { <DeployTab id /> }.into_any(),
            "settings" => {
                // The form starts from the record as it is now; a save keeps what changed meanwhile.
                match base.get_untracked() {
                    Some(initial) => {
                        let latest = Signal::derive(move || base.get().unwrap_or_else(|| initial.clone()));
                        view! { <ApplicationForm base=latest is_new=false /> }.into_any()
                    }
                    None => ().into_any(),
                }
            }
            "history" => view! { <HistoryTab id /> }.into_any(),
            "logs" => view! { <LogsTab id /> }.into_any(),
            _ => view! { <LiveOverview id /> }.into_any(),
        }}
    }
}
