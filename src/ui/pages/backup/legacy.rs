//! The Backup page's migration from legacy app hosting: what an export's migration brings
//! (its apps, as the import preview shows them, and their files), and what it did.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::client::apps::{LegacyOutcome, LegacyPreview};

/// The files an export brings, beside the import's preview of its apps.
#[component]
pub fn LegacyFiles(preview: LegacyPreview) -> impl IntoView {
    let apps = preview.files.len();
    let files = preview.file_count();
    let left_out: Vec<String> = preview
        .left_out
        .iter()
        .map(|finding| finding.message.clone())
        .collect();
    view! {
        <div class="backup-import__legacy" data-testid="backup-legacy-files">
            <p>
                {format!(
                    "Legacy app hosting export: {files} file(s) for {apps} app(s), each checked against its SHA-256. Migrating saves the apps, then deploys each one's files as its first release."
                )}
            </p>
            {(!left_out.is_empty()).then(|| view! {
                <details class="backup-import__warnings">
                    <summary>{format!("{} file(s) no app lists, left out", left_out.len())}</summary>
                    <ul>{left_out.into_iter().map(|message| view! { <li>{message}</li> }).collect_view()}</ul>
                </details>
            })}
        </div>
    }
}

/// What a migration did: the apps saved, those deployed and those that still need a deploy.
#[component]
pub fn LegacyDone(outcome: LegacyOutcome) -> impl IntoView {
    let names = |names: Vec<String>| names.join(", ");
    let deployed = names(outcome.deployed.iter().map(ToString::to_string).collect());
    let not_deployed = outcome.not_deployed.clone();
    view! {
        <div class="backup-import__applied" role="status" data-testid="backup-legacy-done">
            <p>{format!("Migrated {} app(s).", outcome.saved)}</p>
            {(!outcome.deployed.is_empty()).then(|| view! {
                <p data-testid="backup-legacy-deployed">"Deployed with their files: " {deployed}</p>
            })}
            {(!not_deployed.is_empty()).then(|| view! {
                <div class="inline-error" data-testid="backup-legacy-not-deployed">
                    <p>"Saved, but their files are not in the VM yet (deploy them again from their page):"</p>
                    <ul>
                        {not_deployed.into_iter().map(|(name, reason)| view! { <li><strong>{name.to_string()}</strong> ": " {reason}</li> }).collect_view()}
                    </ul>
                </div>
            })}
            <div class="package-actions">
                <A href="/applications" attr:class="button button--secondary">"Your applications"</A>
            </div>
        </div>
    }
}
