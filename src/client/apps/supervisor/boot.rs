//! The VM's lifecycle as the supervisor sees it: when the VM is up, apps start by their
//! restart policy (Docker's daemon start); when it is lost, running apps are `error`; and
//! `WebVMStatus.runningApps` follows the record.

use chrono::Utc;
use leptos::prelude::*;
use leptos::task::spawn_local;

use std::rc::Rc;

use futures::channel::mpsc;

use super::{Run, StartReason};
use crate::client::apps::AppManager;
use crate::client::vm::{ProcessEvent, ProcessHandle};
use crate::client::vm_controller::VmViewStoreFields;
use crate::domain::app_registry::RUNNING;
use crate::domain::health::HealthMonitor;
use crate::domain::launch::STOP_GRACE;
use crate::domain::metrics::{self, MetricsLimits};
use crate::domain::restart::RestartSupervisor;
use crate::domain::vm_events::vm_event;
use crate::model::Application;
use crate::model::{ApplicationStatus as Status, LogLevel, LogSource, WebVMState};

/// How often running apps' figures are refreshed.
const METRICS_TICK_MS: u64 = 5000;
/// Every how many ticks their memory, CPU and disk are sampled in the guest (15 s).
const USAGE_EVERY_TICKS: u64 = 3;
/// Every how many ticks the status heartbeat goes to the server (`REPORT_EVERY`, 60 s).
const REPORT_EVERY_TICKS: u64 =
    (crate::domain::status_page::REPORT_EVERY.num_milliseconds() as u64) / METRICS_TICK_MS;

impl AppManager {
    /// Watches the VM: starts apps by policy once it is ready (once per boot), marks them
    /// `error` when it is lost, and keeps `runningApps` true.
    pub(in crate::client::apps) fn supervise(&self) {
        let manager = *self;
        let live_state = self.vm.live_state;
        Effect::new(move |previous: Option<WebVMState>| {
            let state = live_state.get();
            let loaded = manager.loaded.get();
            if !loaded {
                return state;
            }
            if let Some(previous) = previous.filter(|previous| *previous != state) {
                manager.log_vm_event(previous, state);
            }
            let runs = manager.runs();
            match state {
                WebVMState::Ready => {
                    let first = !std::mem::replace(&mut runs.borrow_mut().booted, true);
                    if first {
                        spawn_local(async move { manager.start_with_vm().await });
                    }
                }
                WebVMState::Error | WebVMState::Unloaded
                    if previous.is_some_and(|previous| previous != state) =>
                {
                    runs.borrow_mut().booted = false;
                    let reason = match state {
                        WebVMState::Error => "the VM stopped responding",
                        _ => "the VM was shut down",
                    };
                    spawn_local(async move { manager.lost_with_vm(reason).await });
                }
                _ => {}
            }
            state
        });
        spawn_local(async move { manager.refresh_metrics().await });
        let book = self.book;
        let status = self.vm.status;
        Effect::new(move |_| {
            let running = book.with(|book| book.running());
            if status.with_untracked(|status| status.running_apps != running) {
                status.update(|status| status.running_apps = running);
            }
        });
    }

    /// A `webvm` entry in each running app's log for a VM change that concerns it.
    fn log_vm_event(&self, from: WebVMState, to: WebVMState) {
        let how =
            self.vm
                .view
                .source()
                .get_untracked()
                .map(|source| match source.snapshot_name() {
                    Some(snapshot) => format!("restored from {snapshot}"),
                    None => "booted cold".to_owned(),
                });
        let reason = self
            .vm
            .status
            .with_untracked(|status| status.error_message.clone());
        let Some((level, message)) = vm_event(from, to, how.as_deref(), reason.as_deref()) else {
            return;
        };
        let running = self.book.with_untracked(|book| book.running());
        for id in running {
            self.app_log(id, level, LogSource::Webvm, message.clone());
        }
    }

    /// Every few seconds while the page lives: each running app's uptime and request figures,
    /// and its performance history when a sample is due (the domain's windows).
    async fn refresh_metrics(&self) {
        let mut tick: u64 = 0;
        loop {
            crate::client::vm::bridge::sleep(METRICS_TICK_MS).await;
            tick += 1;
            if tick % REPORT_EVERY_TICKS == 1 {
                self.report_status();
            }
            let running = self.book.with_untracked(|book| book.running());
            if running.is_empty() {
                continue;
            }
            if tick.is_multiple_of(USAGE_EVERY_TICKS) {
                self.sample_usage().await;
            }
            let limits = MetricsLimits::from_settings(&self.settings());
            let now = Utc::now();
            let runs = self.runs();
            let mut runs = runs.borrow_mut();
            let mut p95 = Vec::with_capacity(running.len());
            let updated = self.book.try_update(|book| {
                for id in &running {
                    if let Some(app) = book.applications.get_mut(id) {
                        let window = runs.windows.entry(*id).or_default();
                        let figures = metrics::refresh(&mut app.metrics, window, now, &limits);
                        p95.push((*id, figures.p95_response_ms));
                    }
                }
            });
            drop(runs);
            if updated.is_none() {
                return;
            }
            // Only a changed figure wakes the page's readers of the notes.
            for (id, p95) in p95 {
                let known = self
                    .run_notes
                    .with_untracked(|notes| notes.get(&id).map(|notes| notes.p95_response_ms));
                if known != Some(p95) {
                    self.set_notes(id, |notes| notes.p95_response_ms = p95);
                }
            }
            self.flush_soon();
        }
    }

    /// The VM came up: apps the record shows as running were interrupted (their processes
    /// went with the previous VM); then each app starts if its policy says so.
    async fn start_with_vm(&self) {
        let apps: Vec<_> = self
            .book
            .with_untracked(|book| book.applications.values().cloned().collect());
        for app in apps {
            let id = app.id;
            let was_running = RUNNING.contains(&app.status);
            if was_running && self.adopt(&app) {
                continue;
            }
            if was_running {
                let result = self
                    .change(|book| {
                        let to = if app.status == Status::Stopping {
                            Status::Stopped
                        } else {
                            Status::Error
                        };
                        book.set_run_status(id, to, Utc::now())
                            .map_err(super::refused)?;
                        if let Some(app) = book.applications.get_mut(&id) {
                            if to == Status::Error {
                                app.metrics.last_error =
                                    Some("interrupted: the page or the VM went away".to_owned());
                            }
                        }
                        Ok(())
                    })
                    .await;
                if result.is_err() {
                    continue;
                }
            }
            let Some(app) = self
                .book
                .with_untracked(|book| book.applications.get(&id).cloned())
            else {
                continue;
            };
            let supervisor = RestartSupervisor::restore(&app.execution, &app);
            if !supervisor.should_start_on_boot(&app, was_running) {
                continue;
            }
            if let Err(error) = self.launch(id, StartReason::Boot).await {
                self.system_log(
                    id,
                    LogLevel::Error,
                    format!("could not start with the VM: {error}"),
                );
            }
        }
    }

    /// The VM came back from a snapshot with the app's process still running (a
    /// hibernation, or a checkpoint taken while it ran): supervise that process again,
    /// without a restart. False when the process did not survive.
    fn adopt(&self, app: &Application) -> bool {
        let id = app.id;
        let Some(recorded) = self
            .book
            .with_untracked(|book| book.processes.get(&id).copied())
        else {
            return false;
        };
        let (sender, events) = mpsc::unbounded::<ProcessEvent>();
        let listener = Rc::new(move |event: ProcessEvent| {
            let _ = sender.unbounded_send(event);
        });
        if !self.vm.attach_process(recorded.exec_id, listener) {
            return false;
        }
        let now = Utc::now();
        let generation = {
            let runs = self.runs();
            let mut runs = runs.borrow_mut();
            runs.next_generation += 1;
            let generation = runs.next_generation;
            let mut run = Run::new(
                generation,
                RestartSupervisor::restore(&app.execution, app),
                HealthMonitor::resume(
                    app.execution.health_check_config.as_ref(),
                    now,
                    app.health_check.as_ref(),
                ),
                0,
            );
            run.process = Some(ProcessHandle {
                id: recorded.exec_id,
                pid: recorded.pid,
            });
            run.spawned_at = app.metrics.start_time.or(app.last_started).unwrap_or(now);
            run.stop_requested = app.status == Status::Stopping;
            runs.by_app.insert(id, run);
            generation
        };
        self.system_log(
            id,
            LogLevel::Info,
            format!(
                "adopted: the VM resumed with it running (pid {})",
                recorded.pid
            ),
        );
        let manager = *self;
        spawn_local(async move { manager.follow(id, generation, events).await });
        match app.status {
            Status::Running => {
                spawn_local(async move { manager.health_loop(id, generation).await });
            }
            Status::Starting => {
                spawn_local(async move { manager.await_ready(id, generation).await });
            }
            _ => {
                // It was stopping: SIGTERM again, and SIGKILL if it outlives the grace period.
                let vm = self.vm;
                spawn_local(async move {
                    let _ = vm.signal(recorded.exec_id, 15).await;
                    crate::client::vm::bridge::sleep(STOP_GRACE.as_millis() as u64).await;
                    if manager.is_current(id, generation)
                        && manager.status_of(id) == Some(Status::Stopping)
                    {
                        manager.system_log(
                            id,
                            LogLevel::Warn,
                            format!("still running after {} s: SIGKILL", STOP_GRACE.as_secs()),
                        );
                        let _ = vm.signal(recorded.exec_id, 9).await;
                    }
                });
            }
        }
        true
    }

    /// The VM is gone: every app whose process ran is `error`, with the reason; pending
    /// restarts and probes end (their generation is dropped).
    async fn lost_with_vm(&self, reason: &str) {
        let running: Vec<_> = self.book.with_untracked(|book| book.running());
        self.runs().borrow_mut().by_app.clear();
        for id in running {
            let result = self
                .change(|book| {
                    book.set_run_status(id, Status::Error, Utc::now())
                        .map_err(super::refused)?;
                    if let Some(app) = book.applications.get_mut(&id) {
                        app.metrics.last_error = Some(reason.to_owned());
                    }
                    Ok(())
                })
                .await;
            if result.is_ok() {
                self.system_log(id, LogLevel::Error, format!("stopped: {reason}"));
            }
        }
    }
}
