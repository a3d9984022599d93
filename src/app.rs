//! The HTML shell, the `<App/>` root and the route table.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};

use crate::ui::layout::Layout;
use crate::ui::pages::{
    ApplicationDetailPage, ApplicationsPage, BackupPage, DashboardPage, JoinPage,
    NewApplicationPage, NotFoundPage, PackagesPage, SettingsPage, StatusPage,
};

/// The document around the app: rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The page's Content-Security-Policy carries the nonce Leptos puts on its own scripts.
    #[cfg(feature = "ssr")]
    crate::server::edge::headers::set_page_csp();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The document title of a page. leptos_meta writes the title into the server's HTML as it
/// is, and a page title may come from the URL (`/applications/<name>`), so the server escapes
/// it; in the browser it becomes `document.title`, which is text.
fn page_title(page: &str) -> String {
    let title = format!("{page} · WebVM App Server");
    #[cfg(feature = "ssr")]
    let title = html_escape::encode_text(&title).into_owned();
    title
}

/// The root component: metadata, stylesheet and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // The page's VM lives as long as the page, across client-side navigation.
    crate::client::vm_controller::VmController::provide();
    // So are the runtime packages and their operations.
    crate::client::packages::PackageManager::provide();
    // And the applications: the registry in IndexedDB, deployments into the VM.
    crate::client::apps::AppManager::provide(crate::api::server_link::ServerFunctions);
    // Marks the document once hydration has run, so tests (and people) can tell.
    #[cfg(feature = "hydrate")]
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/webvm-appserver.css" />
        <Link rel="icon" href="/favicon.ico" />
        <Meta name="description" content="Run a real Debian Linux in your browser and host applications in it." />
        <Title formatter=|page: String| page_title(&page) />
        <Router>
            <Routes fallback=NotFoundPage>
                <ParentRoute path=path!("") view=Layout ssr=SsrMode::Async>
                    <Route path=path!("") view=DashboardPage ssr=SsrMode::Async />
                    <Route path=path!("packages") view=PackagesPage ssr=SsrMode::Async />
                    <Route path=path!("applications") view=ApplicationsPage ssr=SsrMode::Async />
                    <Route path=path!("applications/new") view=NewApplicationPage ssr=SsrMode::Async />
                    <Route
                        path=path!("applications/:name")
                        view=ApplicationDetailPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("settings") view=SettingsPage ssr=SsrMode::Async />
                    <Route path=path!("backup") view=BackupPage ssr=SsrMode::Async />
                    <Route path=path!("join/:token") view=JoinPage ssr=SsrMode::Async />
                </ParentRoute>
                <Route path=path!("status/:token") view=StatusPage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
