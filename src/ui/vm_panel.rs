//! The live VM panel of the dashboard: state, load/boot progress, boot time and heartbeat,
//! live resources, the Boot / Hibernate / Resume / Restart actions, errors with a retry, and
//! a terminal on the guest console (ttyS0).
//!
//! It renders the same markup on the server (state `unloaded`) as on the first hydrated
//! render, so hydration matches; it is hidden until the page is hydrated (CSS), where the
//! server-rendered mirror card stands in for it.

use leptos::html;
use leptos::prelude::*;

use crate::client::settings;
use crate::client::vm::EngineKind;
use crate::client::vm_controller::{VmController, VmOwnership, VmSource, VmViewStoreFields};
use crate::model::{SystemResources, WebVMState};
use crate::ui::components::StatusBadge;
use crate::ui::format::megabytes;

fn clock(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%H:%M:%S UTC").to_string()
}

fn seconds(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{:.0} s", ms as f64 / 1000.0)
    }
}

/// The live VM panel. Each closure reads only what it shows: the fields of the VM's view
/// store, and Memos over the parts of its status (which changes on every progress event,
/// heartbeat and resource sample).
#[component]
pub fn VmPanel() -> impl IntoView {
    let vm = VmController::expect();
    let status = vm.status;
    let view = vm.view;

    // Runs in the browser only (effects don't run on the server).
    Effect::new(move |_| vm.start_on_load());

    let state = vm.live_state;
    let state_name = move || state.get().as_str();
    let busy = Memo::new(move |_| view.busy().get());
    let caps = Memo::new(move |_| view.engine().get().capabilities());
    let has_saved = Memo::new(move |_| view.saved().with(Option::is_some));
    // Only the tab that owns the VM acts on it (another tab may run it: `VmElsewhereBanner`).
    let owner = Memo::new(move |_| view.ownership().get() == VmOwnership::Owner);

    let can_boot =
        move || owner.get() && matches!(state.get(), WebVMState::Unloaded | WebVMState::Error);
    let can_hibernate = move || {
        state.get() == WebVMState::Ready && caps.get().hibernate && busy.with(Option::is_none)
    };
    let can_resume = move || {
        owner.get()
            && caps.get().hibernate
            && busy.with(Option::is_none)
            && match state.get() {
                WebVMState::Hibernating => true,
                WebVMState::Unloaded | WebVMState::Error => has_saved.get(),
                _ => false,
            }
    };
    let can_restart = move || {
        owner.get()
            && busy.with(Option::is_none)
            && matches!(
                state.get(),
                WebVMState::Ready | WebVMState::Hibernating | WebVMState::Error
            )
    };

    let in_progress =
        Memo::new(move |_| matches!(state.get(), WebVMState::Loading | WebVMState::Booting));
    let percent = Memo::new(move |_| status.with(|s| s.load_progress));
    // A clock for the elapsed boot time (browser only; 0 on the server).
    let now = RwSignal::new(0.0f64);
    #[cfg(feature = "hydrate")]
    if let Ok(handle) = set_interval_with_handle(
        move || {
            now.try_set(crate::client::vm::bridge::now_ms());
        },
        std::time::Duration::from_secs(1),
    ) {
        on_cleanup(move || handle.clear());
    }
    let elapsed = move || {
        let now = now.get();
        view.boot_started_ms()
            .get()
            .filter(|_| now > 0.0)
            .map(|started| ((now - started) / 1000.0).max(0.0) as u64)
    };
    let progress_label = Memo::new(move |_| {
        let detail = view.detail().with(|detail| {
            if detail.is_empty() {
                String::new()
            } else {
                format!(" — {detail}")
            }
        });
        let restoring = view
            .source()
            .with(|source| source.is_some_and(|source| source != VmSource::Cold));
        match state.get() {
            WebVMState::Loading if restoring => {
                format!("Restoring a ready VM {}%{detail}", percent.get())
            }
            WebVMState::Loading => format!("Loading {}%{detail}", percent.get()),
            WebVMState::Booting => {
                let seconds = elapsed().map(|s| format!(" {s} s,")).unwrap_or_default();
                format!("Booting Linux:{seconds} a cold boot takes about a minute{detail}")
            }
            _ => detail,
        }
    });

    // Figures once the guest reported some, "—" before.
    let resources = Memo::new(move |_| status.with(|s| s.system_resources.clone()));
    let known = move |show: fn(&SystemResources) -> String| {
        resources.with(|resources| {
            if resources.memory_total > 0 {
                show(resources)
            } else {
                "—".to_string()
            }
        })
    };
    let booted_at = Memo::new(move |_| status.with(|s| s.boot_time.as_ref().map(clock)));
    let heartbeat_at = Memo::new(move |_| status.with(|s| s.last_heartbeat.as_ref().map(clock)));
    let boot_fact = move || {
        let took = view.boot_ms().get().map(|ms| (ms, view.source().get()));
        match (booted_at.get(), took) {
            (Some(at), Some((ms, Some(VmSource::BootSnapshot)))) => {
                format!("{at} (from the server's boot snapshot in {})", seconds(ms))
            }
            (Some(at), Some((ms, Some(VmSource::Hibernation)))) => {
                format!("{at} (restored in {})", seconds(ms))
            }
            (Some(at), Some((ms, _))) => format!("{at} (booted in {})", seconds(ms)),
            (Some(at), None) => at,
            _ => "—".to_string(),
        }
    };
    let heartbeat_fact = move || heartbeat_at.get().unwrap_or_else(|| "—".to_string());
    // Figures from the VM record, shown until the VM reports again after a reload.
    let last_known = Memo::new(move |_| {
        state.get() != WebVMState::Ready && resources.with(|resources| resources.memory_total > 0)
    });
    let saved_fact = move || {
        view.saved().with(|saved| {
            saved.as_ref().map(|saved| {
                format!(
                    "{} ({})",
                    clock(&saved.saved_at),
                    megabytes(saved.size as f64 / 1_048_576.0)
                )
            })
        })
    };
    let missing = move || caps.get().missing();
    let engine_label = move || view.engine().get().label();
    let error_message = Memo::new(move |_| status.with(|s| s.error_message.clone()));
    let notice = move || view.notice().get();
    let source_name = move || view.source().get().map(VmSource::key).unwrap_or("");

    view! {
        <section
            class="card vm-panel"
            aria-labelledby="vm-live-heading"
            data-state=state_name
            data-source=source_name
            data-ownership=move || view.ownership().get().key()
        >
            <div class="card__header">
                <h2 id="vm-live-heading">
                    "Linux VM " <span class="vm-panel__engine">"(" {engine_label} ")"</span>
                </h2>
                <span class="vm-panel__badge" aria-live="polite">
                    <span class="visually-hidden">"State: "</span>
                    {move || view! { <StatusBadge status=state.get() /> }}
                </span>
            </div>

            <div class="vm-progress" hidden=move || !in_progress.get() aria-live="polite">
                <label for="vm-progress-bar" class="vm-progress__label">
                    {move || progress_label.get()}
                </label>
                <progress
                    id="vm-progress-bar"
                    max="100"
                    value=move || (state.get() == WebVMState::Loading).then(|| percent.get().to_string())
                    aria-valuetext=move || progress_label.get()
                    aria-busy=move || in_progress.get().to_string()
                ></progress>
            </div>
            <p class="vm-panel__detail muted" hidden=move || in_progress.get()>
                {move || view.detail().get()}
            </p>

            {move || {
                error_message
                    .get()
                    .map(|message| {
                        view! {
                            <div class="vm-alert vm-alert--error" role="alert">
                                <p>
                                    <strong>"The VM failed. "</strong>
                                    {message}
                                </p>
                                <button type="button" class="button" on:click=move |_| vm.retry()>
                                    "Retry"
                                </button>
                            </div>
                        }
                    })
            }}
            {move || {
                notice()
                    .map(|message| {
                        view! {
                            <p class="vm-alert vm-alert--notice" role="status">
                                {message}
                            </p>
                        }
                    })
            }}

            <div class="vm-actions" role="group" aria-label="VM actions">
                <button
                    type="button"
                    class="button"
                    disabled=move || !can_boot()
                    on:click=move |_| vm.boot()
                >
                    "Boot"
                </button>
                <button
                    type="button"
                    class="button button--secondary"
                    disabled=move || !can_hibernate()
                    title=move || (!caps.get().hibernate).then(|| format!("{} cannot hibernate", engine_label()))
                    on:click=move |_| vm.hibernate()
                >
                    "Hibernate"
                </button>
                <button
                    type="button"
                    class="button button--secondary"
                    disabled=move || !can_resume()
                    on:click=move |_| vm.resume()
                >
                    "Resume"
                </button>
                <button
                    type="button"
                    class="button button--secondary"
                    disabled=move || !can_restart()
                    on:click=move |_| vm.restart()
                >
                    "Restart"
                </button>
                <span class="vm-actions__busy" aria-live="polite">{move || busy.get().unwrap_or_default()}</span>
            </div>

            <dl class="stats stats--4 vm-resources">
                <LiveStat
                    label="Memory"
                    value=move || known(|r| megabytes(r.memory_used as f64))
                    hint=move || known(|r| format!("of {}", megabytes(r.memory_total as f64)))
                />
                <LiveStat
                    label="Disk"
                    value=move || known(|r| megabytes(r.disk_used as f64))
                    hint=move || known(|r| format!("of {}", megabytes(r.disk_total as f64)))
                />
                <LiveStat
                    label="CPU"
                    value=move || known(|r| format!("{:.0} %", r.cpu_usage))
                    hint=|| "busy".to_string()
                />
                <LiveStat
                    label="Processes"
                    value=move || known(|r| r.process_count.to_string())
                    hint=|| "in the guest".to_string()
                />
            </dl>

            <p class="vm-last-known muted" data-testid="vm-last-known" hidden=move || !last_known.get()>
                {move || format!(
                    "Last known figures, from {}; the VM reports again once it is up.",
                    heartbeat_at.get().unwrap_or_else(|| "an earlier visit".to_string())
                )}
            </p>

            <dl class="facts vm-facts">
                <dt>"Started"</dt>
                <dd>{boot_fact}</dd>
                <dt>"Last heartbeat"</dt>
                <dd>{heartbeat_fact}</dd>
                <dt>"Saved state"</dt>
                <dd>{move || saved_fact().unwrap_or_else(|| "none".to_string())}</dd>
            </dl>
            {move || {
                let missing = missing();
                (!missing.is_empty())
                    .then(|| {
                        view! {
                            <p class="vm-unavailable muted">
                                {format!("Not available with {}: {}.", engine_label(), missing.join(", "))}
                            </p>
                        }
                    })
            }}

            <VmJournalView vm />

            <VmTerminal vm />
        </section>
    }
}

/// Entries of the system log the panel lists (the newest).
const JOURNAL_SHOWN: usize = 20;

/// The VM's history from its record: the newest system log entries (VM events and errors
/// from packages and apps), with the counts.
#[component]
fn VmJournalView(vm: VmController) -> impl IntoView {
    let journal = vm.journal;
    let counts = Memo::new(move |_| {
        journal.with(|journal| (journal.system_logs.len(), journal.error_history.len()))
    });
    let newest = Memo::new(move |_| {
        journal.with(|journal| {
            journal
                .system_logs
                .iter()
                .rev()
                .take(JOURNAL_SHOWN)
                .map(|entry| (clock(&entry.timestamp), entry.level, entry.message.clone()))
                .collect::<Vec<_>>()
        })
    });
    let last_error = Memo::new(move |_| {
        journal.with(|journal| {
            journal
                .last_error
                .as_ref()
                .map(|error| error.message.clone())
        })
    });
    view! {
        <details class="vm-journal" data-testid="vm-journal">
            <summary>
                {move || {
                    let (events, errors) = counts.get();
                    format!("VM history: {events} events, {errors} errors")
                }}
            </summary>
            {move || last_error.get().map(|message| view! {
                <p class="vm-journal__last-error" data-testid="vm-last-error">
                    <strong>"Last error: "</strong>{message}
                </p>
            })}
            <ol class="vm-journal__entries" reversed>
                {move || {
                    newest
                        .get()
                        .into_iter()
                        .map(|(at, level, message)| view! {
                            <li class=format!("vm-journal__entry vm-journal__entry--{}", level.as_str())>
                                <time>{at}</time> " " {message}
                            </li>
                        })
                        .collect_view()
                }}
            </ol>
        </details>
    }
}

/// Chooses the VM engine for this browser (localStorage `webvm.engine`), used from the next
/// boot. Meant for the Settings page: `<EngineChoice />`.
#[component]
pub fn EngineChoice() -> impl IntoView {
    // The server renders the default; the browser then shows what it has stored.
    let chosen = settings::use_engine_setting();
    let message = RwSignal::new(None::<String>);
    let on_change = move |event| {
        let kind: EngineKind = event_target_value(&event).parse().unwrap_or_default();
        message.set(Some(match chosen.set(kind) {
            Ok(()) => format!(
                "{} will run the VM from its next boot (Restart on the dashboard).",
                kind.label()
            ),
            Err(error) => format!("The choice could not be saved: {error}"),
        }));
    };
    view! {
        <div class="field engine-choice">
            <label for="vm-engine">"VM engine in this browser"</label>
            <select
                id="vm-engine"
                aria-describedby="vm-engine-hint"
                prop:value=move || chosen.get().as_str()
                on:change=on_change
            >
                {EngineKind::ALL
                    .iter()
                    .copied()
                    .map(|kind| {
                        let label = if kind == EngineKind::default() {
                            format!("{} (default)", kind.label())
                        } else {
                            format!("{} (optional)", kind.label())
                        };
                        view! {
                            <option value=kind.as_str() selected=move || chosen.get() == kind>
                                {label}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            <p class="muted" id="vm-engine-hint">
                {move || {
                    let kind = chosen.get();
                    if kind.capabilities().missing().is_empty() {
                        format!("{} runs offline from this server; everything is available.", kind.label())
                    } else {
                        format!(
                            "{} loads from its vendor's site; what it can't do is unavailable while it runs the VM.",
                            kind.label()
                        )
                    }
                }}
            </p>
            <dl class="facts engine-choice__capabilities">
                {EngineKind::ALL
                    .iter()
                    .copied()
                    .map(|kind| {
                        let missing = kind.capabilities().missing();
                        let text = if missing.is_empty() {
                            "everything available".to_string()
                        } else {
                            format!("unavailable: {}", missing.join(", "))
                        };
                        view! {
                            <dt>{kind.label()}</dt>
                            <dd data-engine=kind.as_str()>{text}</dd>
                        }
                    })
                    .collect_view()}
            </dl>
            <p role="status">{move || message.get()}</p>
        </div>
    }
}

/// A figure that follows the VM (like `Stat`, but reactive).
#[component]
fn LiveStat(
    label: &'static str,
    value: impl Fn() -> String + Send + Sync + 'static,
    hint: impl Fn() -> String + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <div class="stat">
            <dt>{label}</dt>
            <dd>
                <span class="stat__value">{value}</span>
                <span class="stat__hint">{hint}</span>
            </dd>
        </div>
    }
}

/// The guest console in an xterm.js terminal (browser only; the server renders the frame).
#[component]
fn VmTerminal(vm: VmController) -> impl IntoView {
    let host = NodeRef::<html::Div>::new();
    let ready = move || vm.live_state.get() == WebVMState::Ready;
    #[cfg(feature = "hydrate")]
    terminal::mount(vm, host);
    #[cfg(not(feature = "hydrate"))]
    let _ = vm;
    view! {
        <div class="vm-terminal-frame">
            <h3 class="vm-terminal__title" id="vm-console-heading">
                "Console"
            </h3>
            <p class="muted vm-terminal__hint" id="vm-console-hint">
                {move || {
                    if ready() {
                        "A root shell on the guest's serial console: click it and type."
                    } else {
                        "The guest's serial console; it shows the boot and takes commands once the VM is ready."
                    }
                }}
            </p>
            <div
                class="vm-terminal"
                node_ref=host
                role="region"
                aria-labelledby="vm-console-heading"
                aria-describedby="vm-console-hint"
            ></div>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod terminal {
    //! Opens the terminal once its element exists and ties it to the console hub.

    use std::rc::Rc;

    use js_sys::Uint8Array;
    use leptos::html;
    use leptos::prelude::*;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    use crate::client::vm::bridge::{self, ConsoleHandle};
    use crate::client::vm_controller::{ConsoleSubscription, VmController};

    /// What must live as long as the terminal; dropping it closes the terminal.
    struct Mounted {
        handle: ConsoleHandle,
        _subscription: Option<ConsoleSubscription>,
        _on_data: Closure<dyn FnMut(Uint8Array)>,
        _on_resize: Closure<dyn FnMut(u32, u32)>,
    }

    impl Drop for Mounted {
        fn drop(&mut self) {
            self.handle.dispose();
        }
    }

    pub fn mount(vm: VmController, host: NodeRef<html::Div>) {
        let slot: StoredValue<Option<Mounted>, LocalStorage> = StoredValue::new_local(None);
        Effect::new(move |opened: Option<bool>| {
            if opened == Some(true) {
                return true;
            }
            let Some(element) = host.get() else {
                return false;
            };
            let element: web_sys::HtmlElement = element.unchecked_into();
            wasm_bindgen_futures::spawn_local(async move {
                let on_data = Closure::<dyn FnMut(Uint8Array)>::new(move |bytes: Uint8Array| {
                    vm.console_send(&bytes.to_vec());
                });
                let on_resize = Closure::<dyn FnMut(u32, u32)>::new(move |cols: u32, rows: u32| {
                    let clamp = |n: u32| u16::try_from(n.clamp(2, 1000)).unwrap_or(80);
                    vm.console_resize(clamp(cols), clamp(rows));
                });
                let handle: ConsoleHandle = bridge::open_terminal(&element, &on_data, &on_resize)
                    .await
                    .unchecked_into();
                let writer: ConsoleHandle = JsValue::clone(handle.as_ref()).unchecked_into();
                let subscription =
                    vm.subscribe_console(Rc::new(move |bytes: &[u8]| writer.write(bytes)));
                element.set_attribute("data-terminal", &handle.kind()).ok();
                let mounted = Mounted {
                    handle,
                    _subscription: subscription,
                    _on_data: on_data,
                    _on_resize: on_resize,
                };
                if slot.try_set_value(Some(mounted)).is_some() {
                    // The panel is already gone; `mounted` came back and is dropped here.
                }
            });
            true
        });
    }
}
