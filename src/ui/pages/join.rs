//! The page a device link opens (`/join/<token>`): it says what the link does and redeems it
//! only on a click (a POST), then brings the workspace's applications into this browser
//! through the Backup page's import of the server's copy.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::devices::redeem_device_link;
use crate::ui::components::PageHeader;

/// Where the browser goes once the link is redeemed: the import of the server's copy.
#[cfg(feature = "hydrate")]
const AFTER_JOIN: &str = "/backup?from=server";

#[component]
pub fn JoinPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read_untracked().get("token").unwrap_or_default();
    let working = RwSignal::new(false);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let redeem = move |_| {
        working.set(true);
        error.set(None);
        let token = token();
        spawn_local(async move {
            match redeem_device_link(token).await {
                Ok(()) => {
                    #[cfg(feature = "hydrate")]
                    let _ = window().location().assign(AFTER_JOIN);
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                    working.try_set(false);
                }
            }
        });
    };
    view! {
        <Title text="Open a workspace" />
        <PageHeader
            title="Open a workspace in this browser"
            lead="Someone with this workspace made this link to open it here: its applications, runtimes and settings, as the server's mirror holds them."
        />
        <section class="card" aria-labelledby="join-what" data-testid="join-page">
            <h2 id="join-what">"What happens"</h2>
            <ul>
                <li>"This browser is given its own key to the workspace. The link then stops working: it opens one browser, once, within 24 hours of being made."</li>
                <li>"You then see what the server holds and import it into this browser. The VM itself travels only in a backup with the VM."</li>
                <li>"Applications already in this browser stay; one with the same name is replaced only if you import."</li>
            </ul>
            <button type="button" class="button" data-testid="join-redeem" disabled=move || working.get() on:click=redeem>
                {move || if working.get() { "Opening…" } else { "Open the workspace here" }}
            </button>
            <noscript><p class="muted">"This needs JavaScript: the workspace is kept in this browser's storage."</p></noscript>
            {move || error.get().map(|message| view! { <p class="inline-error" role="alert" data-testid="join-error">{message}</p> })}
        </section>
    }
}
