//! The supervisor: runs each application's process in the guest and keeps it running the
//! way Docker would. The rules are the domain's (`domain::restart`, `domain::health`,
//! `domain::launch`, `domain::lifecycle` through the registry); this module only drives them
//! with real processes and timers.
//!
//! ```text
//! start ─ checks (status, runtimes, release, rule 4) ─ secrets unsealed ─ launch plan
//!       ─ spawn (wrapper: port check, cgroup limits, cd, exec) ─ starting
//!       ─ listening on its port (and healthy, if checked) within the startup timeout ─ running
//! exit  ─ stop requested? stopped : restart policy ─ error + restart after the backoff
//!                                                 └ stopped / error / failed
//! ```
//!
//! Each start gets a new generation; every task (output, readiness, health, a pending
//! restart) carries the generation it belongs to and ends when it is no longer current, so
//! a stop, a crash or a new start can never be acted on twice.

mod boot;
mod health;
mod process;
mod report;
mod usage;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use super::{AppManager, AppsError, RunNotes};
use crate::client::vm::ProcessHandle;
use crate::domain::app_logs::LineAssembler;
use crate::domain::app_usage::GroupTotals;
use crate::domain::health::HealthMonitor;
use crate::domain::launch::LaunchNotice;
use crate::domain::metrics::{MetricsLimits, RequestWindow};
use crate::domain::restart::{RestartDecision, RestartSupervisor};
use crate::model::{ApplicationId, LogEntry, LogLevel, LogSource};

/// Longest log line kept from an application's output, in bytes.
const MAX_LINE_BYTES: usize = 4096;

/// Why a process is being started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StartReason {
    /// The user (or `window.webvm`) started it: like `docker start`, the restart count and
    /// backoff start over.
    Manual,
    /// Its restart policy restarts it after an exit.
    Restart,
    /// The VM came up and the policy starts it (Docker's daemon start, which also resets
    /// the count).
    Boot,
}

/// One application's supervision in this page.
pub(super) struct Run {
    generation: u64,
    process: Option<ProcessHandle>,
    /// When the current process was spawned (its uptime at exit).
    spawned_at: DateTime<Utc>,
    restart: RestartSupervisor,
    health: HealthMonitor,
    /// The user asked it to stop: its exit is a stop, not a crash.
    stop_requested: bool,
    /// The launch wrapper or the startup watch reported why it can't run (port in use, no
    /// command, startup timeout): the exit is a failure that no policy retries.
    fatal: Option<String>,
    /// The health monitor asked for a restart (opt-in restart when unhealthy).
    unhealthy_restart: Option<RestartDecision>,
    /// `oom_kill` of the app's memory group before this process (to tell an OOM kill).
    oom_kills_before: u64,
    stdout: LineAssembler,
    stderr: LineAssembler,
}

impl Run {
    fn new(
        generation: u64,
        restart: RestartSupervisor,
        health: HealthMonitor,
        oom_kills_before: u64,
    ) -> Self {
        Run {
            generation,
            process: None,
            spawned_at: Utc::now(),
            restart,
            health,
            stop_requested: false,
            fatal: None,
            unhealthy_restart: None,
            oom_kills_before,
            stdout: LineAssembler::new(MAX_LINE_BYTES),
            stderr: LineAssembler::new(MAX_LINE_BYTES),
        }
    }
}

/// Everything the supervisor keeps in memory (browser only).
#[derive(Default)]
pub(super) struct Runs {
    by_app: BTreeMap<ApplicationId, Run>,
    next_generation: u64,
    /// Requests through the bridge in the last minute, per application.
    pub(super) windows: BTreeMap<ApplicationId, RequestWindow>,
    /// A debounced write of the record (logs and figures) is pending.
    flush_pending: bool,
    /// The VM's start has been handled in this page (apps started by their policy).
    pub(super) booted: bool,
    /// Usage samples taken (every few also measure the deployment folders).
    usage_samples: u64,
    /// Each app's process-group totals at its last usage sample, and when (ms).
    usage: BTreeMap<ApplicationId, (GroupTotals, f64)>,
}

pub(super) type SharedRuns = Rc<RefCell<Runs>>;

impl AppManager {
    fn runs(&self) -> SharedRuns {
        self.runs.get_value()
    }

    /// Runs `change` on `id`'s run if `generation` is still current (no borrow outlives it).
    fn with_run<T>(
        &self,
        id: ApplicationId,
        generation: u64,
        change: impl FnOnce(&mut Run) -> T,
    ) -> Option<T> {
        let runs = self.runs();
        let mut runs = runs.borrow_mut();
        runs.by_app
            .get_mut(&id)
            .filter(|run| run.generation == generation)
            .map(change)
    }

    /// Whether `generation` is still `id`'s current run.
    fn is_current(&self, id: ApplicationId, generation: u64) -> bool {
        self.runs()
            .borrow()
            .by_app
            .get(&id)
            .is_some_and(|run| run.generation == generation)
    }

    /// Appends a line to the application's rolling log (the seed's 1,000 entries) without
    /// waking the record; the record is written a moment later.
    pub(super) fn app_log(
        &self,
        id: ApplicationId,
        level: LogLevel,
        source: LogSource,
        message: impl Into<String>,
    ) {
        let limits = MetricsLimits::from_settings(&self.settings());
        let entry = LogEntry {
            timestamp: Utc::now(),
            level,
            message: message.into(),
            source,
            details: None,
        };
        self.book.update_untracked(|book| {
            if let Some(app) = book.applications.get_mut(&id) {
                crate::domain::metrics::record_log(&mut app.metrics, entry, &limits);
            }
        });
        self.log_written.notify();
        self.flush_soon();
    }

    /// A supervisor event in the app's log.
    pub(super) fn system_log(
        &self,
        id: ApplicationId,
        level: LogLevel,
        message: impl Into<String>,
    ) {
        self.app_log(id, level, LogSource::System, message);
    }

    /// Writes the record in a second or two (log lines and figures are batched).
    pub(super) fn flush_soon(&self) {
        let runs = self.runs();
        if std::mem::replace(&mut runs.borrow_mut().flush_pending, true) {
            return;
        }
        let manager = *self;
        leptos::task::spawn_local(async move {
            crate::client::vm::bridge::sleep(1500).await;
            runs.borrow_mut().flush_pending = false;
            if let Err(error) = manager.flush().await {
                leptos::logging::warn!("webvm: saving application logs failed: {error}");
            }
        });
    }

    fn set_notes(&self, id: ApplicationId, change: impl FnOnce(&mut RunNotes)) {
        self.run_notes
            .try_update(|notes| change(notes.entry(id).or_default()));
    }

    /// Records a launch notice from the wrapper's stderr.
    fn on_launch_notice(&self, id: ApplicationId, generation: u64, notice: LaunchNotice) {
        let message = notice.to_string();
        match notice {
            LaunchNotice::LimitUnsupported { .. } => {
                self.set_notes(id, |notes| notes.unenforced_limits.push(message.clone()));
                self.system_log(id, LogLevel::Warn, message);
            }
            _ => {
                if let Some(run) = self.runs().borrow_mut().by_app.get_mut(&id) {
                    if run.generation == generation {
                        run.fatal = Some(message.clone());
                    }
                }
                self.system_log(id, LogLevel::Error, message);
            }
        }
    }
}

/// Maps a registry refusal to the manager's error.
fn refused(error: impl std::fmt::Display) -> AppsError {
    AppsError::Busy(error.to_string())
}
