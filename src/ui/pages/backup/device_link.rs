//! The Backup page's link for another browser: made on request, shown once in full, valid
//! once for 24 hours. The other browser opens it (`ui::pages::join`) and imports the
//! server's copy.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::devices::{create_device_link, CreatedDeviceLink};
use crate::ui::format::timestamp;

/// The page's origin, to show a link in full (empty in the server's render).
fn origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        window().location().origin().unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        String::new()
    }
}

#[component]
pub fn DeviceLink() -> impl IntoView {
    let created: RwSignal<Option<CreatedDeviceLink>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let working = RwSignal::new(false);
    let create = move |_| {
        working.set(true);
        error.set(None);
        spawn_local(async move {
            match create_device_link().await {
                Ok(link) => {
                    created.try_set(Some(link));
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
            working.try_set(false);
        });
    };
    view! {
        <section class="card device-link" aria-labelledby="device-link-title" data-testid="device-link">
            <h2 id="device-link-title">"Open this workspace in another browser"</h2>
            <p class="muted">
                "A secret link for your other computer or browser: it gets this workspace's applications, runtimes and settings from the server's copy. "
                "Anyone with the link can open the workspace, so send it only to yourself. It works once, for 24 hours."
            </p>
            <button type="button" class="button button--secondary" data-testid="device-link-create" disabled=move || working.get() on:click=create>
                {move || if working.get() { "Making…" } else { "Make a link" }}
            </button>
            {move || created.get().map(|link| {
                let url = format!("{}{}", origin(), link.path);
                view! {
                    <div class="status-links__new" role="status">
                        <p>"Copy the link now: it is shown only this once."</p>
                        <input class="status-links__url" readonly=true aria-label="Link for another browser" data-testid="device-link-new" prop:value=url />
                        <span class="muted">"Expires " {timestamp(&link.expires_at)}</span>
                    </div>
                }
            })}
            {move || error.get().map(|message| view! { <p class="inline-error" role="alert">{message}</p> })}
        </section>
    }
}
