//! The app's public status links: make one (with an optional expiry), see it once in full,
//! list them with their state, and revoke one. The pages themselves are rendered by the
//! server from the heartbeat this tab's VM sends (`ui::pages::status`).

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::status_pages::{
    create_status_link, list_status_links, revoke_status_link, CreatedStatusLink, LinkState,
};
use crate::model::ApplicationId;
use crate::ui::format::timestamp;

/// The expiries offered, in days (`None`: until revoked).
const EXPIRIES: [(&str, Option<u32>); 4] = [
    ("Until revoked", None),
    ("1 day", Some(1)),
    ("7 days", Some(7)),
    ("30 days", Some(30)),
];

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
pub fn StatusLinks(id: ApplicationId) -> impl IntoView {
    let changed = RwSignal::new(0u32);
    let links = Resource::new(move || changed.get(), move |_| list_status_links(id));
    let expiry = RwSignal::new(0usize);
    let created: RwSignal<Option<CreatedStatusLink>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let working = RwSignal::new(false);
    let create = move |_| {
        working.set(true);
        error.set(None);
        let days = EXPIRIES
            .get(expiry.get_untracked())
            .and_then(|(_, days)| *days);
        spawn_local(async move {
            match create_status_link(id, days).await {
                Ok(link) => {
                    created.try_set(Some(link));
                    changed.try_update(|count| *count += 1);
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
            working.try_set(false);
        });
    };
    let revoke = move |link: String| {
        error.set(None);
        spawn_local(async move {
            match revoke_status_link(link).await {
                Ok(()) => {
                    created.try_set(None);
                    changed.try_update(|count| *count += 1);
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
        });
    };
    view! {
        <section class="card status-links" aria-labelledby="status-links-title" data-testid="status-links-panel">
            <h2 id="status-links-title">"Public status page"</h2>
            <p class="muted">
                "A secret link to a page anyone can open, without signing in and without JavaScript: status, uptime, response times and incidents, never settings, environment or logs. "
                "It is updated while this browser runs the VM."
            </p>
            <div class="status-links__make">
                <label for="status-link-expiry">"Valid"</label>
                <select
                    id="status-link-expiry"
                    data-testid="status-link-expiry"
                    on:change=move |event| expiry.set(event_target_value(&event).parse().unwrap_or(0))
                >
                    {EXPIRIES.iter().enumerate().map(|(index, (label, _))| view! {
                        <option value=index.to_string()>{*label}</option>
                    }).collect_view()}
                </select>
                <button type="button" class="button" data-testid="status-link-create" disabled=move || working.get() on:click=create>
                    {move || if working.get() { "Making…" } else { "Make a status link" }}
                </button>
            </div>
            {move || created.get().map(|link| {
                let url = format!("{}{}", origin(), link.path);
                view! {
                    <div class="status-links__new" role="status">
                        <p>"Copy the link now: it is shown only this once."</p>
                        <input class="status-links__url" readonly=true data-testid="status-link-new" prop:value=url.clone() on:focus=move |event| {
                            #[cfg(feature = "hydrate")]
                            {
                                use leptos::wasm_bindgen::JsCast;
                                if let Some(input) = event.target().and_then(|target| target.dyn_into::<leptos::web_sys::HtmlInputElement>().ok()) {
                                    input.select();
                                }
                            }
                            #[cfg(not(feature = "hydrate"))]
                            let _ = event;
                        } />
                        <a href=link.path.clone() target="_blank" rel="noopener noreferrer">"Open it"</a>
                        {link.expires_at.map(|at| view! { <span class="muted">" · expires " {timestamp(&at)}</span> })}
                    </div>
                }
            })}
            {move || error.get().map(|message| view! { <p class="inline-error" role="alert">{message}</p> })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match links.await {
                        Ok(links) if links.is_empty() => view! { <p class="muted">"No links yet."</p> }.into_any(),
                        Ok(links) => view! {
                            <ul class="status-links__list" data-testid="status-links">
                                {links.into_iter().map(|link| {
                                    let state = match link.state {
                                        LinkState::Live => "live",
                                        LinkState::Expired => "expired",
                                        LinkState::Revoked => "revoked",
                                    };
                                    let id = link.id.clone();
                                    view! {
                                        <li data-state=state>
                                            <code>{link.id.chars().take(12).collect::<String>()}</code>
                                            " · made " {timestamp(&link.created_at)}
                                            {match (link.state, link.expires_at, link.revoked_at) {
                                                (LinkState::Revoked, _, Some(at)) => format!(" · revoked {}", timestamp(&at)),
                                                (LinkState::Expired, Some(at), _) => format!(" · expired {}", timestamp(&at)),
                                                (_, Some(at), _) => format!(" · expires {}", timestamp(&at)),
                                                _ => " · until revoked".to_owned(),
                                            }}
                                            {(link.state == LinkState::Live).then(|| view! {
                                                " "
                                                <button type="button" class="button button--secondary button--small" data-testid="status-link-revoke" on:click=move |_| revoke(id.clone())>
                                                    "Revoke"
                                                </button>
                                            })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }
                        .into_any(),
                        Err(failure) => view! {
                            <p class="muted">{format!("The links could not be listed: {failure}")}</p>
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
