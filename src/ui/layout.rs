//! The page frame: skip link, header with navigation, main landmark and footer.

use leptos::prelude::*;
use leptos_router::components::{Outlet, A};

use super::vm_elsewhere::VmElsewhereBanner;
use crate::client::apps::AppManager;
use crate::domain::mirror_queue::SyncSummary;

/// The navigation entries, in order: (path, label).
pub const NAVIGATION: [(&str, &str); 5] = [
    ("/", "Dashboard"),
    ("/packages", "Packages"),
    ("/applications", "Applications"),
    ("/settings", "Settings"),
    ("/backup", "Backup"),
];

/// The frame of every operator page around its content.
#[component]
pub fn Frame(children: Children) -> impl IntoView {
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="site-header">
            <div class="site-header__inner">
                <A href="/" attr:class="brand">
                    <span class="brand__mark" aria-hidden="true">"▣"</span>
                    <span class="brand__name">"WebVM App Server"</span>
                </A>
                <nav class="site-nav" aria-label="Main">
                    <ul>
                        {NAVIGATION
                            .iter()
                            .map(|(href, label)| {
                                view! {
                                    <li>
                                        <A href=*href exact=true>
                                            {*label}
                                        </A>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                </nav>
                <SyncIndicator />
            </div>
        </header>
        <main id="main" class="site-main" tabindex="-1">
            <VmElsewhereBanner />
            {children()}
        </main>
        <footer class="site-footer">
            <p>
                "A real Debian Linux (i386) runs in this page, in the v86 emulator. "
                "Your apps and packages live in your browser; the server keeps a mirror."
            </p>
        </footer>
    }
}

/// Where this browser's changes stand with the server's mirror: synced, N pending,
/// offline, or refused. Shown once the record is read (the server's render can't know).
#[component]
fn SyncIndicator() -> impl IntoView {
    let manager = AppManager::expect();
    let summary = Memo::new(move |_| manager.sync_summary());
    let text = move || match summary.get() {
        SyncSummary::Synced => ("synced", "Synced with the server".to_owned()),
        SyncSummary::Pending(count) => ("pending", format!("{count} change(s) pending")),
        SyncSummary::Offline(count) => (
            "offline",
            format!("Server unreachable: {count} change(s) kept here"),
        ),
        SyncSummary::Refused { refused, .. } => (
            "refused",
            format!("{refused} change(s) refused by the server"),
        ),
    };
    view! {
        <Show when=move || manager.loaded.get()>
            <p class="sync-indicator" role="status" data-testid="sync-indicator" data-state=move || text().0>
                <span class="sync-indicator__dot" aria-hidden="true"></span>
                {move || text().1}
            </p>
        </Show>
    }
}

/// The parent route's view: the frame around the matched child route.
#[component]
pub fn Layout() -> impl IntoView {
    view! {
        <Frame>
            <Outlet />
        </Frame>
    }
}

/// The frame of public pages (status pages): no operator navigation.
#[component]
pub fn PublicFrame(children: Children) -> impl IntoView {
    view! {
        <header class="site-header site-header--public">
            <div class="site-header__inner">
                <span class="brand">
                    <span class="brand__mark" aria-hidden="true">"▣"</span>
                    <span class="brand__name">"Status"</span>
                </span>
            </div>
        </header>
        <main id="main" class="site-main site-main--narrow">
            {children()}
        </main>
        <footer class="site-footer">
            <p>"Served by WebVM App Server."</p>
        </footer>
    }
}
