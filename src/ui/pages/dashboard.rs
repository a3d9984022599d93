//! Dashboard: the VM's state and resources, and the workspace at a glance.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{dashboard_summary, DashboardData};
use crate::model::WebVMStatus;
use crate::ui::components::{ErrorPanel, Loading, PageHeader, Stat, StatusBadge};
use crate::ui::format::{megabytes, timestamp};
use crate::ui::vm_panel::VmPanel;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let summary = Resource::new(|| (), |_| dashboard_summary());
    view! {
        <Title text="Dashboard" />
        <PageHeader
            title="Dashboard"
            lead="The Debian Linux VM in this page, and what runs in it."
        />
        <Suspense fallback=|| view! { <Loading label="Loading the dashboard…" /> }>
            {move || Suspend::new(async move {
                match summary.await {
                    Ok(summary) => view! { <DashboardBody summary /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn DashboardBody(summary: DashboardData) -> impl IntoView {
    let vm = summary.last_vm_status.clone().unwrap_or_default();
    let first_steps = summary.applications_total == 0 && summary.packages_installed == 0;
    view! {
        <VmPanel />
        <div class="grid grid--2">
            <VmCard vm />
            <section class="card" aria-labelledby="workspace-heading">
                <h2 id="workspace-heading">"Workspace"</h2>
                <dl class="stats">
                    <Stat
                        label="Applications"
                        value=summary.applications_total.to_string()
                        hint=format!("{} running", summary.applications_running)
                    />
                    <Stat
                        label="Runtime packages"
                        value=summary.packages_installed.to_string()
                        hint=format!("installed of {} in the catalog", summary.packages_in_catalog)
                    />
                </dl>
                <p class="muted">"Server version " {summary.server_version.clone()}</p>
            </section>
        </div>
        {first_steps
            .then(|| {
                view! {
                    <section class="card card--steps" aria-labelledby="first-steps">
                        <h2 id="first-steps">"Getting started"</h2>
                        <ol class="steps">
                            <li>
                                <strong>"Boot the VM."</strong>
                                " Debian boots right here in the page; after the first boot it resumes in seconds."
                            </li>
                            <li>
                                <strong>"Install a runtime."</strong>
                                " Pick a web server or language runtime on the "
                                <A href="/packages">"Packages"</A>
                                " page. Real Debian packages are verified and installed into the VM."
                            </li>
                            <li>
                                <strong>"Deploy an application."</strong>
                                " Upload files or a ZIP, or point at a URL or a GitHub repository, on the "
                                <A href="/applications">"Applications"</A>
                                " page, then open it at "
                                <code>"/apps/<name>/"</code>
                                "."
                            </li>
                        </ol>
                    </section>
                }
            })}
    }
}

/// The VM as the server last saw it (its mirror). Shown without JavaScript; once the page is
/// hydrated the live [`VmPanel`] replaces it (CSS).
#[component]
fn VmCard(vm: WebVMStatus) -> impl IntoView {
    let resources = vm.system_resources.clone();
    view! {
        <section class="card vm-card--mirror" aria-labelledby="vm-heading">
            <div class="card__header">
                <h2 id="vm-heading">"Linux VM"</h2>
                <StatusBadge status=vm.state />
            </div>
            {if resources.memory_total == 0 {
                view! {
                    <p class="muted">
                        "No resource figures yet: they are sampled from the guest while the VM runs."
                    </p>
                }
                    .into_any()
            } else {
                view! {
                    <dl class="stats stats--4">
                        <Stat
                            label="Memory"
                            value=megabytes(resources.memory_used as f64)
                            hint=format!("of {}", megabytes(resources.memory_total as f64))
                        />
                        <Stat
                            label="Disk"
                            value=megabytes(resources.disk_used as f64)
                            hint=format!("of {}", megabytes(resources.disk_total as f64))
                        />
                        <Stat label="CPU" value=format!("{:.0} %", resources.cpu_usage) />
                        <Stat label="Processes" value=resources.process_count.to_string() />
                    </dl>
                }
                    .into_any()
            }}
            <p class="muted">
                {match (vm.boot_time, vm.last_heartbeat) {
                    (Some(boot), Some(beat)) => {
                        format!("Booted {}; last heartbeat {}.", timestamp(&boot), timestamp(&beat))
                    }
                    (Some(boot), None) => format!("Booted {}.", timestamp(&boot)),
                    _ => "The VM has not been started in this workspace yet.".to_string(),
                }}
            </p>
            {vm.error_message.clone().map(|message| view! { <p class="inline-error">{message}</p> })}
        </section>
    }
}
