//! Backup: what one backup file of this workspace holds.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{backup_overview, BackupContents};
use crate::ui::components::{EmptyState, ErrorPanel, Loading, PageHeader, Stat};

#[component]
pub fn BackupPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| backup_overview());
    view! {
        <Title text="Backup" />
        <PageHeader
            title="Backup"
            lead="Export the whole workspace — applications, packages, settings and VM state — to one file, and import it elsewhere."
        />
        <Suspense fallback=|| view! { <Loading label="Loading…" /> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(overview) => view! { <BackupBody overview /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn BackupBody(overview: BackupContents) -> impl IntoView {
    if overview.applications == 0 && overview.installed_packages == 0 {
        return view! {
            <EmptyState
                title="Nothing to back up yet"
                body="A backup holds your applications, installed runtime packages and settings. Install a package or deploy an application first; then a backup here captures it in one file."
            />
        }
        .into_any();
    }
    view! {
        <section class="card" aria-labelledby="backup-contents">
            <h2 id="backup-contents">"A backup now would contain"</h2>
            <dl class="stats">
                <Stat label="Applications" value=overview.applications.to_string() />
                <Stat label="Installed packages" value=overview.installed_packages.to_string() />
                <Stat label="Format version" value=overview.format_version.clone() />
            </dl>
            <p class="muted">"Secret environment values are never written into a backup in clear text."</p>
        </section>
    }
    .into_any()
}
