//! Actions on one application shared by the Applications list and the app's page:
//! duplicate, and delete after a confirmation that names the files it removes from the VM.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;

use crate::client::apps::AppManager;
use crate::model::{AppName, ApplicationId};

/// "Duplicate": saves a copy under a new name and port, then opens it.
#[component]
pub fn DuplicateButton(id: ApplicationId, name: AppName) -> impl IntoView {
    let manager = AppManager::expect();
    let busy = RwSignal::new(false);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let navigate = use_navigate();
    let duplicate = move |_| {
        busy.set(true);
        error.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            match manager.duplicate(id).await {
                Ok(copy) => navigate(&format!("/applications/{}", copy.name), Default::default()),
                Err(failure) => error.set(Some(failure.to_string())),
            }
            busy.set(false);
        });
    };
    view! {
        <button
            type="button"
            class="button button--secondary button--small"
            aria-label=format!("Duplicate {name}")
            disabled=move || busy.get() || !manager.writable.get()
            on:click=duplicate
        >
            "Duplicate"
        </button>
        <Show when=move || error.with(Option::is_some)>
            <span class="inline-error" role="alert">{move || error.get().unwrap_or_default()}</span>
        </Show>
    }
}

/// "Delete": asks first, listing what is removed from the VM; then deletes and, when
/// `leave` is set, goes back to the list.
#[component]
pub fn DeleteButton(
    id: ApplicationId,
    name: AppName,
    #[prop(optional)] leave: bool,
) -> impl IntoView {
    let manager = AppManager::expect();
    let asking: RwSignal<Option<Vec<String>>> = RwSignal::new(None);
    let busy = RwSignal::new(false);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let navigate = use_navigate();
    let title_id = format!("delete-{id}");
    let label = name.to_string();
    let confirm = move |_| {
        busy.set(true);
        error.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            match manager.delete(id).await {
                Ok(()) => {
                    asking.set(None);
                    if leave {
                        navigate("/applications", Default::default());
                    }
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
            busy.set(false);
        });
    };
    view! {
        <button
            type="button"
            class="button button--danger button--small"
            aria-label=format!("Delete {label}")
            disabled=move || busy.get() || !manager.writable.get()
            on:click=move |_| asking.set(Some(manager.files_to_delete(id)))
        >
            "Delete"
        </button>
        {
            let title_id = title_id.clone();
            let label = label.clone();
            move || asking.get().map(|files| {
                let label = label.clone();
                view! {
                    <div class="confirm" role="alertdialog" aria-modal="false" aria-labelledby=title_id.clone()>
                        <p class="confirm__title" id=title_id.clone()>
                            {format!("Delete {label}? This removes its record, its deployment history and these files from the VM:")}
                        </p>
                        {if files.is_empty() {
                            view! { <p class="muted">"(no files in the VM yet)"</p> }.into_any()
                        } else {
                            view! {
                                <ul class="confirm__files">
                                    {files.into_iter().map(|file| view! { <li><code>{file}</code></li> }).collect_view()}
                                </ul>
                            }.into_any()
                        }}
                        <div class="confirm__actions">
                            <button type="button" class="button button--danger" disabled=move || busy.get() on:click=confirm.clone()>
                                {move || if busy.get() { "Deleting…" } else { "Delete permanently" }}
                            </button>
                            <button type="button" class="button button--secondary" on:click=move |_| asking.set(None)>
                                "Cancel"
                            </button>
                        </div>
                        <Show when=move || error.with(Option::is_some)>
                            <p class="inline-error" role="alert">{move || error.get().unwrap_or_default()}</p>
                        </Show>
                    </div>
                }
            })
        }
    }
}
