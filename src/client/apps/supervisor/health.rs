//! Readiness within the startup timeout, and health probes while the app runs (Docker's
//! HTTP or TCP check, the rules in `domain::health`).

use chrono::Utc;
use leptos::prelude::*;

use crate::client::apps::AppManager;
use crate::client::vm::bridge;
use crate::domain::http_bridge::{probe_request, probe_verdict};
use crate::domain::launch;
use crate::domain::restart::RestartDecision;
use crate::model::{ApplicationId, ApplicationStatus as Status, HealthState, LogLevel};

/// How often readiness is checked while an app starts.
const READY_POLL_MS: u64 = 1000;
/// The longest wait between two checks of a health loop (so it notices a stop).
const HEALTH_TICK_MS: u64 = 1000;

impl AppManager {
    /// Waits until the app listens on its port, and is healthy if it has a health check,
    /// then marks it running; after the startup timeout it is stopped and failed.
    pub(super) async fn await_ready(&self, id: ApplicationId, generation: u64) {
        let Some(app) = self
            .book
            .with_untracked(|book| book.applications.get(&id).cloned())
        else {
            return;
        };
        let Some(port) = app.execution.port.map(|port| port.get()) else {
            return;
        };
        let timeout = launch::startup_timeout(&app);
        let started = Utc::now();
        let deadline = started + timeout;
        loop {
            if !self.is_current(id, generation) || self.status_of(id) != Some(Status::Starting) {
                return;
            }
            let now = Utc::now();
            if now >= deadline {
                break;
            }
            let listening = self.vm.tcp_listening(port, 2000).await.unwrap_or(false);
            if listening && self.healthy_enough(id, generation, port).await {
                if !self.is_current(id, generation) || self.status_of(id) != Some(Status::Starting)
                {
                    return;
                }
                let result = self
                    .change(|book| {
                        book.set_run_status(id, Status::Running, Utc::now())
                            .map_err(super::refused)
                    })
                    .await;
                if result.is_ok() {
                    let seconds = (Utc::now() - started).num_milliseconds() as f64 / 1000.0;
                    self.system_log(
                        id,
                        LogLevel::Info,
                        format!("running: listening on port {port} after {seconds:.1} s"),
                    );
                    let manager = *self;
                    leptos::task::spawn_local(
                        async move { manager.health_loop(id, generation).await },
                    );
                }
                return;
            }
            bridge::sleep(READY_POLL_MS).await;
        }
        // Out of time: stop it, and fail with the reason.
        let has_check = app
            .execution
            .health_check_config
            .as_ref()
            .is_some_and(|config| config.enabled);
        let reason = format!(
            "it did not {} within its startup timeout of {} s",
            if has_check {
                format!("listen on port {port} and pass its health check")
            } else {
                format!("listen on port {port}")
            },
            timeout.as_secs()
        );
        let process = self
            .with_run(id, generation, |run| {
                run.fatal = Some(reason.clone());
                run.process
            })
            .flatten();
        if let Some(process) = process {
            let _ = self.vm.signal(process.id, 15).await;
            bridge::sleep(launch::STOP_GRACE.as_millis() as u64 / 2).await;
            if self.is_current(id, generation) && self.status_of(id) == Some(Status::Starting) {
                let _ = self.vm.signal(process.id, 9).await;
            }
        } else {
            self.give_up(id, generation, &reason).await;
        }
    }

    /// True when the app has no health check, or its check has passed (probing as the
    /// monitor schedules: Docker's start interval during the start period).
    async fn healthy_enough(&self, id: ApplicationId, generation: u64, port: u16) -> bool {
        let Some(due) = self.with_run(id, generation, |run| {
            if run.health.next_probe_due().is_none()
                || run.health.status().status == HealthState::Healthy
            {
                return None;
            }
            Some(run.health.is_due(Utc::now()))
        }) else {
            return false;
        };
        // No check, or passed already.
        let Some(due) = due else {
            return true;
        };
        if due {
            self.probe(id, generation, port).await == Some(HealthState::Healthy)
        } else {
            false
        }
    }

    /// Probes while the app runs, records each result, and (opt-in) restarts it when it
    /// turns unhealthy, through the restart policy's backoff and count.
    pub(super) async fn health_loop(&self, id: ApplicationId, generation: u64) {
        let Some(port) = self.book.with_untracked(|book| {
            book.applications
                .get(&id)
                .and_then(|app| app.execution.port.map(|port| port.get()))
        }) else {
            return;
        };
        loop {
            if !self.is_current(id, generation) || self.status_of(id) != Some(Status::Running) {
                return;
            }
            let next = {
                let runs = self.runs();
                let runs = runs.borrow();
                runs.by_app
                    .get(&id)
                    .and_then(|run| run.health.next_probe_due())
            };
            let Some(next) = next else {
                return;
            };
            let wait = (next - Utc::now())
                .num_milliseconds()
                .clamp(0, HEALTH_TICK_MS as i64);
            if wait > 0 {
                bridge::sleep(wait as u64).await;
                continue;
            }
            let before = self.health_state(id);
            let Some(after) = self.probe(id, generation, port).await else {
                return;
            };
            if before != Some(after) {
                let level = match after {
                    HealthState::Unhealthy => LogLevel::Warn,
                    _ => LogLevel::Info,
                };
                self.system_log(id, level, format!("health: {after}"));
                if after == HealthState::Unhealthy {
                    self.unhealthy(id, generation).await;
                }
            }
        }
    }

    fn health_state(&self, id: ApplicationId) -> Option<HealthState> {
        let runs = self.runs();
        let runs = runs.borrow();
        runs.by_app.get(&id).map(|run| run.health.status().status)
    }

    /// Runs one probe and records it (in the monitor and the app's record); the state after.
    async fn probe(&self, id: ApplicationId, generation: u64, port: u16) -> Option<HealthState> {
        let (path, timeout) = {
            let config = self.book.with_untracked(|book| {
                book.applications
                    .get(&id)
                    .and_then(|app| app.execution.health_check_config.clone())
            })?;
            let timeout = self.with_run(id, generation, |run| run.health.probe_timeout())??;
            (config.path.filter(|path| !path.is_empty()), timeout)
        };
        let timeout_ms = timeout.as_millis() as u64;
        let start = Utc::now();
        let (passed, output) = match &path {
            Some(path) => match self
                .vm
                .tcp_exchange(port, probe_request(path, port), timeout_ms)
                .await
            {
                Ok(bytes) => {
                    let verdict = probe_verdict(&bytes);
                    (verdict.passed, verdict.output)
                }
                Err(error) => (false, error.to_string()),
            },
            None => match self.vm.tcp_listening(port, timeout_ms).await {
                Ok(true) => (true, format!("port {port} accepts connections")),
                Ok(false) => (false, format!("port {port} refused the connection")),
                Err(error) => (false, error.to_string()),
            },
        };
        let end = Utc::now();
        let (state, monitor) = self.with_run(id, generation, |run| {
            let state = run.health.record(start, end, passed, &output);
            (state, run.health.clone())
        })?;
        self.book.update_untracked(|book| {
            if let Some(app) = book.applications.get_mut(&id) {
                monitor.apply_to(&mut app.metrics);
                app.health_check = Some(monitor.status().clone());
            }
        });
        // The badge shows health: wake the record's readers.
        self.book.notify();
        self.flush_soon();
        Some(state)
    }

    /// The app turned unhealthy: with "restart when unhealthy" on, it is restarted through
    /// the policy (same backoff and count as a crash).
    async fn unhealthy(&self, id: ApplicationId, generation: u64) {
        let wants_restart = self.book.with_untracked(|book| {
            book.applications.get(&id).is_some_and(|app| {
                app.execution
                    .health_check_config
                    .as_ref()
                    .is_some_and(|config| config.enabled && config.restart_on_unhealthy)
            })
        });
        if !wants_restart {
            return;
        }
        let Some(Some(process)) = self.with_run(id, generation, |run| {
            let uptime = (Utc::now() - run.spawned_at).to_std().unwrap_or_default();
            let decision = run.restart.on_unhealthy(uptime, Utc::now());
            // The policy would not bring it back: it keeps running, unhealthy.
            matches!(decision, RestartDecision::Restart { .. }).then(|| {
                run.unhealthy_restart = Some(decision);
                run.process
            })
        }) else {
            return;
        };
        self.system_log(
            id,
            LogLevel::Warn,
            "unhealthy: stopping it so its restart policy can restart it",
        );
        if let Some(process) = process {
            let _ = self.vm.signal(process.id, 15).await;
            bridge::sleep(launch::STOP_GRACE.as_millis() as u64).await;
            if self.is_current(id, generation) && self.status_of(id) == Some(Status::Running) {
                let _ = self.vm.signal(process.id, 9).await;
            }
        }
    }
}
