//! Starting, stopping and restarting an application's process, and what its exit means.

use std::collections::BTreeMap;
use std::rc::Rc;

use chrono::Utc;
use futures::channel::mpsc;
use futures::StreamExt;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{refused, Run, StartReason};
use crate::client::apps::{AppManager, AppsError};
use crate::client::vm::{
    bridge, ExecCommand, ExitStatus, ProcessEvent, ProcessExit, ProcessHandle,
};
use crate::client::vm_controller::VmViewStoreFields;
use crate::domain::app_logs::{self, Stream};
use crate::domain::app_registry::RecordedProcess;
use crate::domain::health::HealthMonitor;
use crate::domain::launch;
use crate::domain::lifecycle::StateMachine;
use crate::domain::restart::{RestartDecision, RestartSupervisor, StayReason};
use crate::domain::vm_record::ErrorContext;
use crate::model::{Application, ApplicationId, ApplicationStatus as Status, LogLevel, LogSource};

/// How often a stop checks whether the process is gone.
const STOP_POLL_MS: u64 = 200;
/// How often a restart due while the VM is paused looks whether it has resumed.
const HIBERNATED_POLL_MS: u64 = 500;

impl AppManager {
    /// Starts the application (`docker start`): its restart count starts over.
    pub async fn start_app(&self, id: ApplicationId) -> Result<(), AppsError> {
        self.refuse_if_vm_elsewhere()?;
        self.launch(id, StartReason::Manual).await
    }

    /// Run actions belong to the tab that runs the VM (another tab has the same records).
    fn refuse_if_vm_elsewhere(&self) -> Result<(), AppsError> {
        if self.vm.view.ownership().get_untracked().elsewhere() {
            return Err(AppsError::VmElsewhere);
        }
        Ok(())
    }

    /// Stops the application (`docker stop`): SIGTERM to its process group, SIGKILL after
    /// the grace period; no policy restarts it until it is started again. A pending
    /// restart is cancelled.
    pub async fn stop_app(&self, id: ApplicationId) -> Result<(), AppsError> {
        self.refuse_if_vm_elsewhere()?;
        let app = self.stored(id)?;
        /// What stopping means for the app as it is.
        enum Stop {
            /// Its process runs: signal it.
            Process(Option<crate::client::vm::ProcessHandle>),
            /// It crashed with a restart pending (or given up on): cancel, and stop.
            Pending,
        }
        let stop = {
            let runs = self.runs();
            let mut runs = runs.borrow_mut();
            let run = runs.by_app.get_mut(&id);
            match (app.status, run) {
                (Status::Running | Status::Starting, Some(run)) => {
                    run.stop_requested = true;
                    run.restart.on_manual_stop();
                    Stop::Process(run.process)
                }
                (Status::Error, run) => {
                    if let Some(run) = run {
                        run.generation = u64::MAX;
                        run.restart.on_manual_stop();
                    }
                    Stop::Pending
                }
                (status, _) => {
                    return Err(AppsError::Busy(format!(
                        "{} is {status}: there is nothing to stop",
                        app.name
                    )))
                }
            }
        };
        let process = match stop {
            Stop::Process(process) => process,
            Stop::Pending => {
                self.set_notes(id, |notes| notes.restart_at = None);
                self.change(|book| {
                    book.set_run_status(id, Status::Stopped, Utc::now())
                        .map_err(refused)
                })
                .await?;
                self.system_log(
                    id,
                    LogLevel::Info,
                    "stopped (its pending restart was cancelled)",
                );
                return Ok(());
            }
        };
        self.change(|book| {
            book.set_run_status(id, Status::Stopping, Utc::now())
                .map_err(refused)
        })
        .await?;
        self.system_log(id, LogLevel::Info, "stopping: SIGTERM to its process group");
        let Some(process) = process else {
            return Ok(());
        };
        let _ = self.vm.signal(process.id, 15).await;
        let grace_ms = launch::STOP_GRACE.as_millis() as u64;
        let mut waited = 0;
        while waited < grace_ms && self.status_of(id) == Some(Status::Stopping) {
            bridge::sleep(STOP_POLL_MS).await;
            waited += STOP_POLL_MS;
        }
        if self.status_of(id) == Some(Status::Stopping) {
            self.system_log(
                id,
                LogLevel::Warn,
                format!("still running after {} s: SIGKILL", grace_ms / 1000),
            );
            let _ = self.vm.signal(process.id, 9).await;
            let mut waited = 0;
            while waited < 5000 && self.status_of(id) == Some(Status::Stopping) {
                bridge::sleep(STOP_POLL_MS).await;
                waited += STOP_POLL_MS;
            }
        }
        match self.status_of(id) {
            Some(Status::Stopping) => Err(AppsError::Deploy(format!(
                "{} did not end after SIGKILL; the VM may be stuck",
                app.name
            ))),
            _ => Ok(()),
        }
    }

    /// Stops the application if it runs, then starts it again.
    pub async fn restart_app(&self, id: ApplicationId) -> Result<(), AppsError> {
        if matches!(
            self.status_of(id),
            Some(Status::Running | Status::Starting | Status::Error)
        ) {
            self.stop_app(id).await?;
        }
        self.start_app(id).await
    }

    pub(super) fn status_of(&self, id: ApplicationId) -> Option<Status> {
        self.book
            .with_untracked(|book| book.applications.get(&id).map(|app| app.status))
    }

    fn stored(&self, id: ApplicationId) -> Result<Application, AppsError> {
        self.book
            .with_untracked(|book| book.applications.get(&id).cloned())
            .ok_or(AppsError::NotFound(id))
    }

    /// Starts the process: every check first, so a refusal changes nothing.
    pub(super) async fn launch(
        &self,
        id: ApplicationId,
        reason: StartReason,
    ) -> Result<(), AppsError> {
        let app = self.stored(id)?;
        let vm_state = self.vm.state();
        if vm_state != crate::model::WebVMState::Ready {
            return Err(AppsError::Busy(format!(
                "{} can't start yet: the VM is {vm_state}; it starts once the VM is ready",
                app.name
            )));
        }
        if !app.status.can_become(Status::Starting) {
            return Err(AppsError::Busy(match app.status {
                Status::Draft => format!("{} has never been deployed: deploy it first", app.name),
                status => format!("{} can't start while it is {status}", app.name),
            }));
        }
        if !app.runtime_status.can_start {
            let missing: Vec<String> = app
                .runtime_status
                .missing_runtimes
                .iter()
                .map(ToString::to_string)
                .collect();
            let message = format!(
                "{} can't start: its runtimes are not installed ({}); install them on the Packages page",
                app.name,
                missing.join(", ")
            );
            if app.status.can_become(Status::RuntimeMissing) {
                let _ = self
                    .change(|book| {
                        book.set_run_status(id, Status::RuntimeMissing, Utc::now())
                            .map_err(refused)
                    })
                    .await;
            }
            return Err(AppsError::Invalid(vec![message]));
        }
        if self.current_release(id).get_untracked().is_none() {
            return Err(AppsError::Invalid(vec![format!(
                "{} has no deployed release: deploy it first",
                app.name
            )]));
        }
        // The VM's memory in MB, once its first sample is in (rule 4 waits for it).
        let vm_memory_mb = self
            .vm
            .status
            .with_untracked(|status| status.system_resources.memory_total);
        if vm_memory_mb > 0 {
            self.book.with_untracked(|book| {
                let running: Vec<&Application> = book
                    .applications
                    .values()
                    .filter(|other| {
                        other.id != id
                            && crate::domain::app_registry::RUNNING.contains(&other.status)
                    })
                    .collect();
                launch::check_memory_budget(&app, &running, vm_memory_mb)
                    .map_err(|error| AppsError::Invalid(vec![error.to_string()]))
            })?;
        }
        let mut secrets = BTreeMap::new();
        for (name, sealed) in &app.execution.secret_environment {
            let clear = crate::client::secrets::unseal(sealed).await.map_err(|error| {
                AppsError::Invalid(vec![format!(
                    "the secret variable {name} could not be unsealed in this browser ({error}); enter it again in Settings"
                )])
            })?;
            secrets.insert(name.clone(), clear);
        }
        let plan = launch::plan_launch(&app, &secrets)
            .map_err(|error| AppsError::Invalid(vec![error.to_string()]))?;
        drop(secrets);
        let oom_kills_before = self.oom_kills(&app).await;

        // The run: a new generation; the restart state carries over between restarts. The
        // status is checked again here: another start (or a stop) may have happened while
        // the secrets were unsealed. From here to the `starting` write nothing awaits.
        let now = Utc::now();
        if !self
            .status_of(id)
            .is_some_and(|status| status.can_become(Status::Starting))
        {
            return Err(AppsError::Busy(format!(
                "{} was started or stopped meanwhile",
                app.name
            )));
        }
        let generation = {
            let runs = self.runs();
            let mut runs = runs.borrow_mut();
            runs.next_generation += 1;
            let generation = runs.next_generation;
            let previous = runs.by_app.remove(&id);
            let mut restart = match (&previous, reason) {
                (Some(run), StartReason::Restart) => run.restart.clone(),
                _ => RestartSupervisor::restore(&app.execution, &app),
            };
            if reason != StartReason::Restart {
                restart.on_start();
            }
            restart.on_restarted();
            let health = HealthMonitor::resume(
                app.execution.health_check_config.as_ref(),
                now,
                app.health_check.as_ref(),
            );
            runs.by_app
                .insert(id, Run::new(generation, restart, health, oom_kills_before));
            generation
        };
        self.set_notes(id, |notes| {
            notes.restart_at = None;
            notes.unenforced_limits.clear();
        });
        self.change(|book| {
            book.set_run_status(id, Status::Starting, now)
                .map_err(refused)?;
            if let Some(app) = book.applications.get_mut(&id) {
                app.metrics.restart_count = match reason {
                    StartReason::Restart => app.metrics.restart_count,
                    _ => 0,
                };
            }
            Ok(())
        })
        .await
        .inspect_err(|_| {
            self.runs().borrow_mut().by_app.remove(&id);
        })?;
        self.system_log(
            id,
            LogLevel::Info,
            format!(
                "starting{}: {}",
                match reason {
                    StartReason::Manual => "",
                    StartReason::Restart => " again (restart policy)",
                    StartReason::Boot => " with the VM (restart policy)",
                },
                std::iter::once(app.execution.command.as_str())
                    .chain(app.execution.arguments.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );

        let (sender, events) = mpsc::unbounded::<ProcessEvent>();
        let listener = Rc::new(move |event: ProcessEvent| {
            let _ = sender.unbounded_send(event);
        });
        let mut argv = plan.argv.into_iter();
        let command = ExecCommand {
            command: argv.next().unwrap_or_default(),
            args: argv.collect(),
            env: plan.env,
            cwd: None,
            timeout_ms: None,
        };
        match self.vm.spawn_process(command, listener).await {
            Ok(process) => {
                let stop_requested = self.with_run(id, generation, |run| {
                    run.process = Some(process);
                    run.spawned_at = Utc::now();
                    run.stop_requested
                });
                match stop_requested {
                    // Superseded while it was being spawned: nobody supervises it.
                    None => {
                        let _ = self.vm.signal(process.id, 9).await;
                        return Err(AppsError::Busy(format!(
                            "{} was started or stopped meanwhile",
                            app.name
                        )));
                    }
                    // Stopped while it was being spawned: the stop found no process to signal.
                    Some(true) => {
                        let _ = self.vm.signal(process.id, 15).await;
                    }
                    Some(false) => {}
                }
                self.record_process(id, process).await;
            }
            Err(error) => {
                let message = format!("the process could not be started: {error}");
                self.give_up(id, generation, &message).await;
                return Err(AppsError::Deploy(message));
            }
        }
        let manager = *self;
        spawn_local(async move { manager.follow(id, generation, events).await });
        spawn_local(async move { manager.await_ready(id, generation).await });
        Ok(())
    }

    /// Keeps the process in the record, so a page that resumes this VM adopts it.
    pub(super) async fn record_process(&self, id: ApplicationId, process: ProcessHandle) {
        let recorded = RecordedProcess {
            exec_id: process.id,
            pid: process.pid,
        };
        let result = self
            .change(|book| {
                book.processes.insert(id, recorded);
                Ok(())
            })
            .await;
        if let Err(error) = result {
            leptos::logging::warn!("webvm: recording an app's process failed: {error}");
        }
    }

    /// The memory group's `oom_kill` count (0 when there is none or no limit).
    async fn oom_kills(&self, app: &Application) -> u64 {
        if app.execution.memory_limit.is_none() {
            return 0;
        }
        let argv = launch::cgroup_events_script(app.name.as_str());
        let mut argv = argv.into_iter();
        let command = ExecCommand::new(argv.next().unwrap_or_default(), argv);
        match self.vm.exec(command).await {
            Ok(result) => launch::oom_kills(&String::from_utf8_lossy(&result.stdout)).unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Feeds the process's output into the log and handles its end.
    pub(super) async fn follow(
        &self,
        id: ApplicationId,
        generation: u64,
        mut events: mpsc::UnboundedReceiver<ProcessEvent>,
    ) {
        while let Some(event) = events.next().await {
            match event {
                ProcessEvent::Stdout(bytes) => self.output(id, generation, Stream::Stdout, &bytes),
                ProcessEvent::Stderr(bytes) => self.output(id, generation, Stream::Stderr, &bytes),
                ProcessEvent::Exited(exit) => {
                    self.flush_output(id, generation);
                    self.exited(id, generation, Some(exit), None).await;
                    return;
                }
                ProcessEvent::Lost(reason) => {
                    self.exited(id, generation, None, Some(reason)).await;
                    return;
                }
            }
        }
    }

    fn output(&self, id: ApplicationId, generation: u64, stream: Stream, bytes: &[u8]) {
        let Some(lines) = self.with_run(id, generation, |run| match stream {
            Stream::Stdout => run.stdout.push(bytes),
            Stream::Stderr => run.stderr.push(bytes),
        }) else {
            return;
        };
        for line in lines {
            self.output_line(id, generation, stream, line);
        }
    }

    fn flush_output(&self, id: ApplicationId, generation: u64) {
        let Some(rest) = self.with_run(id, generation, |run| {
            [
                (Stream::Stdout, run.stdout.flush()),
                (Stream::Stderr, run.stderr.flush()),
            ]
        }) else {
            return;
        };
        for (stream, line) in rest {
            if let Some(line) = line {
                self.output_line(id, generation, stream, line);
            }
        }
    }

    fn output_line(&self, id: ApplicationId, generation: u64, stream: Stream, line: String) {
        if stream == Stream::Stderr {
            if let Some(notice) = launch::parse_launch_lines(&line) {
                self.on_launch_notice(id, generation, notice);
                return;
            }
        }
        let level = app_logs::level_of(stream, &line);
        self.app_log(id, level, LogSource::Application, line);
    }

    /// The process ended (or the engine lost it): a stop, a failure, or a crash that the
    /// restart policy decides about.
    pub(super) async fn exited(
        &self,
        id: ApplicationId,
        generation: u64,
        exit: Option<ProcessExit>,
        lost: Option<String>,
    ) {
        let Ok(app) = self.stored(id) else {
            return;
        };
        let Some((spawned_at, stop_requested, fatal, unhealthy, oom_before)) =
            self.with_run(id, generation, |run| {
                run.process = None;
                (
                    run.spawned_at,
                    run.stop_requested,
                    run.fatal.take(),
                    run.unhealthy_restart.take(),
                    run.oom_kills_before,
                )
            })
        else {
            return;
        };
        let now = Utc::now();
        let (code, signal) = match exit.map(|exit| exit.status) {
            Some(ExitStatus::Code(code)) => (Some(code), None),
            Some(ExitStatus::Signal { signal, .. }) => (None, Some(signal)),
            None => (None, None),
        };
        let oom_delta = if signal == Some(9) && app.execution.memory_limit.is_some() {
            self.oom_kills(&app).await.saturating_sub(oom_before)
        } else {
            0
        };
        let description = match &lost {
            Some(reason) => format!("lost track of the process: {reason}"),
            None => launch::describe_exit(code, signal, oom_delta, app.execution.memory_limit),
        };
        let uptime = (now - spawned_at).to_std().unwrap_or_default();
        self.cleanup_group(&app);
        // A stop asked for while the OOM count was read counts as asked before the exit.
        let stop_requested = stop_requested
            || self
                .with_run(id, generation, |run| run.stop_requested)
                .unwrap_or(false);

        if stop_requested {
            self.system_log(id, LogLevel::Info, format!("stopped ({description})"));
            self.finish(id, generation, Status::Stopped, None).await;
            return;
        }
        if let Some(reason) = fatal {
            self.give_up(id, generation, &reason).await;
            return;
        }
        let level = if code == Some(0) {
            LogLevel::Info
        } else {
            LogLevel::Error
        };
        self.system_log(id, level, format!("exited: {description}"));
        let exit_code = code.unwrap_or_else(|| 128 + signal.unwrap_or(0));
        let decision = {
            let runs = self.runs();
            let mut runs = runs.borrow_mut();
            let Some(run) = runs.by_app.get_mut(&id) else {
                return;
            };
            let decision = unhealthy.unwrap_or_else(|| run.restart.on_exit(exit_code, uptime, now));
            if exit_code != 0 || unhealthy.is_some() {
                run.restart.record_error(description.clone());
            }
            decision
        };
        match decision {
            RestartDecision::Restart { after, at } => {
                let error = Some(description);
                self.finish(id, generation, Status::Error, error).await;
                let millis = after.as_millis() as u64;
                self.system_log(
                    id,
                    LogLevel::Info,
                    format!(
                        "restarting in {millis} ms (restart policy {})",
                        app.execution.effective_restart_policy()
                    ),
                );
                self.set_notes(id, |notes| notes.restart_at = Some(at));
                let manager = *self;
                spawn_local(async move {
                    bridge::sleep(millis).await;
                    // A restart that falls due while the VM is paused waits for its resume.
                    while manager.vm.state() == crate::model::WebVMState::Hibernating
                        && manager.is_current(id, generation)
                    {
                        bridge::sleep(HIBERNATED_POLL_MS).await;
                    }
                    if !manager.is_current(id, generation)
                        || manager.status_of(id) != Some(Status::Error)
                    {
                        return;
                    }
                    if let Err(error) = manager.launch(id, StartReason::Restart).await {
                        manager.system_log(id, LogLevel::Error, format!("restart failed: {error}"));
                    }
                });
            }
            RestartDecision::Stay(StayReason::RetriesExhausted { max_retries }) => {
                let message = format!("{description}; gave up after {max_retries} restarts");
                self.system_log(id, LogLevel::Error, &message);
                self.finish(id, generation, Status::Failed, Some(message))
                    .await;
            }
            RestartDecision::Stay(_) if exit_code == 0 => {
                self.finish(id, generation, Status::Stopped, None).await;
            }
            RestartDecision::Stay(_) => {
                self.finish(id, generation, Status::Error, Some(description))
                    .await;
            }
        }
    }

    /// Puts the run's end into the record: the status, the restart figures, and health
    /// marked as Docker does on stop.
    async fn finish(&self, id: ApplicationId, generation: u64, to: Status, error: Option<String>) {
        let Some((health_status, restart)) = self.with_run(id, generation, |run| {
            if matches!(to, Status::Stopped | Status::Failed) {
                run.health.on_stop();
            }
            (run.health.clone(), run.restart.clone())
        }) else {
            return;
        };
        if let Some(message) = &error {
            let name = self
                .book
                .try_with_untracked(|book| {
                    book.applications.get(&id).map(|app| app.name.to_string())
                })
                .flatten()
                .unwrap_or_default();
            self.vm.record_error(
                "ApplicationExited",
                message,
                ErrorContext {
                    operation: format!("run {name}"),
                    package_id: None,
                    application_id: Some(id),
                },
            );
        }
        let result = self
            .change(|book| {
                let app = book
                    .applications
                    .get_mut(&id)
                    .ok_or(AppsError::NotFound(id))?;
                let from = app.status;
                if from != to {
                    // A running app that can't go straight to `to` (failed) crashes first.
                    if !from.can_become(to) && from.can_become(Status::Error) {
                        book.set_run_status(id, Status::Error, Utc::now())
                            .map_err(refused)?;
                    }
                    book.set_run_status(id, to, Utc::now()).map_err(refused)?;
                }
                let app = book
                    .applications
                    .get_mut(&id)
                    .ok_or(AppsError::NotFound(id))?;
                restart.apply_to(&mut app.metrics);
                if let Some(error) = error {
                    app.metrics.last_error = Some(error);
                }
                health_status.apply_to(&mut app.metrics);
                if app
                    .execution
                    .health_check_config
                    .as_ref()
                    .is_some_and(|config| config.enabled)
                {
                    app.health_check = Some(health_status.status().clone());
                }
                Ok(())
            })
            .await;
        if let Err(error) = result {
            leptos::logging::warn!("webvm: recording the end of a process failed: {error}");
        }
        if to != Status::Error {
            self.set_notes(id, |notes| notes.restart_at = None);
        }
    }

    /// The start can't succeed (port in use, no command, startup timeout, spawn failure):
    /// `failed` with the reason, and no policy retries it.
    pub(super) async fn give_up(&self, id: ApplicationId, generation: u64, reason: &str) {
        if let Some(run) = self.runs().borrow_mut().by_app.get_mut(&id) {
            if run.generation == generation {
                run.restart.record_error(reason.to_owned());
            }
        }
        self.system_log(id, LogLevel::Error, format!("failed: {reason}"));
        self.finish(id, generation, Status::Failed, Some(reason.to_owned()))
            .await;
    }

    /// Removes the app's memory group after its process ended (in the background).
    fn cleanup_group(&self, app: &Application) {
        if app.execution.memory_limit.is_none() && app.execution.cpu_limit.is_none() {
            return;
        }
        let mut argv = launch::cleanup_script(app.name.as_str()).into_iter();
        let command = ExecCommand::new(argv.next().unwrap_or_default(), argv);
        let vm = self.vm;
        spawn_local(async move {
            let _ = vm.exec(command).await;
        });
    }
}
