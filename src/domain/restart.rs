//! Restart policies with Docker's semantics, as a pure supervisor state: the caller reports
//! exits, unhealthy verdicts, manual stops and starts (with the time), and is told whether
//! and when to restart.
//!
//! Docker's rules (moby `daemon/internal/restartmanager/restartmanager.go`, formerly
//! `restartmanager/restartmanager.go`): the delay before a restart starts at 100 ms and
//! doubles up to 1 minute; it resets when the process had run for at least 10 s. The delay
//! grows on every exit, even one that is not restarted. `on-failure` restarts only after a
//! non-zero exit, at most `max_retries` times since the last manual start; 0 or absent means
//! unlimited ("the default value of 0 for MaximumRetryCount means that we will not enforce a
//! maximum count"). `unless-stopped` and `always` restart after any exit. A manual stop
//! suspends every policy until the next manual start (moby `daemon/kill.go` sets
//! `HasBeenManuallyStopped` and `ExitOnNext` cancels the restart manager); the two differ
//! only when the VM comes back.
//!
//! When the VM comes back (a page reload or a resume: Docker's daemon start, moby
//! `daemon/daemon.go` `restore`), nothing of the old supervisor is left, so the decision is
//! taken from the persisted application: [`RestartSupervisor::restore`] rebuilds the restart
//! count from `metrics.restartCount` and the manual-stop flag from the status, and
//! [`RestartSupervisor::should_start_on_boot`] applies Docker's `ShouldRestart` to it
//! ([`RestartSupervisor::boot_decision`] on [`BootFacts`]). A start at that point resets the count and the delay, as Docker's restore
//! calls `containerStart(..., resetRestartManager=true)`: [`RestartSupervisor::on_boot`]
//! decides and, when it starts, calls [`RestartSupervisor::on_start`].
//!
//! Where we depart from Docker, deliberately:
//! - The default policy is `on-failure` ([`RestartPolicy::default`]) where Docker's is `no`:
//!   an app in a web page should come back after a crash without the user setting anything.
//! - With `healthCheckConfig.restartOnUnhealthy` an app that turns unhealthy is restarted
//!   ([`RestartSupervisor::on_unhealthy`]); Docker only reports it and leaves the restart to
//!   an orchestrator (moby#28400). It goes through the same delay, restart count and limits
//!   as a crash, so an unhealthy loop restarts no faster than a crash loop.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{
    Application, ApplicationMetrics, ApplicationStatus, ExecutionConfig, RestartPolicy,
};

/// The first delay before a restart.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest delay before a restart.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A process that ran at least this long resets the delay.
pub const BACKOFF_RESET_UPTIME: Duration = Duration::from_secs(10);

/// Why a process is not restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StayReason {
    /// The policy is `never` (or autoRestart is off).
    PolicyNever,
    /// The user stopped it; restarts resume after the next start.
    ManuallyStopped,
    /// `on-failure` and the exit code was 0.
    CleanExit,
    /// `on-failure` and the retry budget is spent.
    RetriesExhausted { max_retries: u32 },
    /// The app is unhealthy but `restartOnUnhealthy` is off: it keeps running, as in Docker.
    UnhealthyRestartOff,
}

/// What to do after a process exited or turned unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart after `after`, i.e. at `at` (after an unhealthy verdict: stop the process
    /// first).
    Restart {
        after: Duration,
        at: DateTime<Utc>,
    },
    Stay(StayReason),
}

/// What the persisted application says about its last run, for the decision at VM start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootFacts {
    /// It was started at least once (`lastStarted` is set): Docker's `HasBeenStartedBefore`;
    /// Docker never starts a container that was only created.
    pub started_before: bool,
    /// It was `starting` or `running` when the VM went away: for `on-failure` that is a
    /// non-zero exit, as Docker's restore records exit code 255 for a container whose
    /// process is gone.
    pub was_running: bool,
    /// It had crashed (`error`): a non-zero exit its policy may still restart.
    pub crashed: bool,
    /// Its status allows a start: not a draft, not mid-deploy, not missing its runtimes.
    pub startable: bool,
}

impl BootFacts {
    /// The facts of a persisted application.
    pub fn of(app: &Application) -> Self {
        use ApplicationStatus as S;
        BootFacts {
            started_before: app.last_started.is_some(),
            was_running: matches!(app.status, S::Starting | S::Running),
            crashed: app.status == S::Error,
            startable: !matches!(app.status, S::Draft | S::Deploying | S::RuntimeMissing),
        }
    }
}

/// Restart state of one application's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartSupervisor {
    policy: RestartPolicy,
    /// `None` = unlimited (a configured 0 is stored as `None`).
    max_retries: Option<u32>,
    restart_on_unhealthy: bool,
    /// The health check's `retries` (Docker's default 3 for 0): the failed probes in a row
    /// that make an app unhealthy, for the error message.
    unhealthy_after: u32,
    restart_count: u32,
    last_error: Option<String>,
    manually_stopped: bool,
    /// Zero until the first exit, as in Docker.
    backoff: Duration,
    pending_restart: Option<DateTime<Utc>>,
    /// An unhealthy verdict asked for a restart: the exit of the stopped process is that
    /// restart, not a new failure.
    stopping_unhealthy: bool,
}

impl RestartSupervisor {
    /// A supervisor for `policy`; `max_retries` limits `on-failure` (`None` or `Some(0)` =
    /// unlimited, Docker's `MaximumRetryCount` 0). No restart when unhealthy (see
    /// [`Self::with_restart_on_unhealthy`]).
    pub fn new(policy: RestartPolicy, max_retries: Option<u32>) -> Self {
        RestartSupervisor {
            policy,
            max_retries: max_retries.filter(|max| *max > 0),
            restart_on_unhealthy: false,
            unhealthy_after: crate::domain::health::DEFAULT_RETRIES,
            restart_count: 0,
            last_error: None,
            manually_stopped: false,
            backoff: Duration::ZERO,
            pending_restart: None,
            stopping_unhealthy: false,
        }
    }

    /// The same supervisor, restarting (or not) when the app turns unhealthy.
    pub fn with_restart_on_unhealthy(mut self, restart: bool) -> Self {
        self.restart_on_unhealthy = restart;
        self
    }

    /// A supervisor for an application's execution settings (autoRestart off = `never`;
    /// restart when unhealthy only with an enabled health check that asks for it).
    pub fn for_execution(config: &ExecutionConfig) -> Self {
        let health = config.health_check_config.as_ref();
        let on_unhealthy =
            health.is_some_and(|health| health.enabled && health.restart_on_unhealthy);
        let mut supervisor = Self::new(config.effective_restart_policy(), config.max_retries)
            .with_restart_on_unhealthy(on_unhealthy);
        if let Some(retries) = health
            .map(|health| health.retries)
            .filter(|retries| *retries > 0)
        {
            supervisor.unhealthy_after = retries;
        }
        supervisor
    }

    /// The supervisor of a persisted application when the VM comes back (page reload,
    /// resume), like Docker's daemon restore rebuilding its restart manager from the saved
    /// `RestartCount` and `HasBeenManuallyStopped`.
    ///
    /// The restart count and last error come from `app.metrics`. The manual-stop flag comes
    /// from the status, which is how it persists across reloads: `stopping` and `stopped`
    /// mean the user stopped it (the supervisor gives up with `error` or `failed`), and
    /// Docker too sets the flag as the stop begins (moby `daemon/kill.go`). The only other
    /// way to `stopped` is a clean exit that `on-failure` or `never` does not restart, and
    /// for those policies no start at VM start is due either way, so reading it as a manual
    /// stop changes no decision. A redeploy moves a stopped app on to `deployed` and so
    /// clears it. The delay starts at zero and no restart is pending.
    pub fn restore(config: &ExecutionConfig, app: &Application) -> Self {
        let mut supervisor = Self::for_execution(config);
        supervisor.restart_count = app.metrics.restart_count;
        supervisor.last_error = app.metrics.last_error.clone();
        supervisor.manually_stopped = matches!(
            app.status,
            ApplicationStatus::Stopping | ApplicationStatus::Stopped
        );
        supervisor
    }

    /// The user started the process (`docker start`): restarts are allowed again and the
    /// restart count and delay start over. The last error is kept.
    pub fn on_start(&mut self) {
        self.manually_stopped = false;
        self.restart_count = 0;
        self.backoff = Duration::ZERO;
        self.pending_restart = None;
        self.stopping_unhealthy = false;
    }

    /// The user stopped the process: no restart until the next [`Self::on_start`], and a
    /// pending restart is cancelled.
    pub fn on_manual_stop(&mut self) {
        self.manually_stopped = true;
        self.pending_restart = None;
        self.stopping_unhealthy = false;
    }

    /// The process exited with `exit_code` after running for `uptime`.
    ///
    /// After [`Self::on_unhealthy`] decided a restart, the exit of the process the caller
    /// stopped is that restart: the same decision comes back (with the time left) and
    /// nothing is counted twice.
    pub fn on_exit(
        &mut self,
        exit_code: i32,
        uptime: Duration,
        now: DateTime<Utc>,
    ) -> RestartDecision {
        if self.stopping_unhealthy {
            if let Some(at) = self.pending_restart {
                self.stopping_unhealthy = false;
                return RestartDecision::Restart {
                    after: (at - now).to_std().unwrap_or_default(),
                    at,
                };
            }
        }
        self.stopping_unhealthy = false;
        if exit_code != 0 {
            self.last_error = Some(format!("process exited with code {exit_code}"));
        }
        self.decide(exit_code != 0, uptime, now)
    }

    /// The health check turned the app unhealthy, `uptime` after it started. Call it on the
    /// change to unhealthy, not on every failed probe.
    ///
    /// Beyond Docker (moby#28400), and only with `restartOnUnhealthy`: it is handled as a
    /// crash, with the same growing delay, restart count and rules (`on-failure` counts it
    /// as a failure and respects `max_retries`; a manual stop and `never` keep the app as it
    /// is). On [`RestartDecision::Restart`] the caller stops the process and restarts it at
    /// `at`; reporting that exit through [`Self::on_exit`] returns the same decision. Without
    /// the option, or on `Stay`, the unhealthy process keeps running, as in Docker.
    pub fn on_unhealthy(&mut self, uptime: Duration, now: DateTime<Utc>) -> RestartDecision {
        if !self.restart_on_unhealthy {
            return RestartDecision::Stay(StayReason::UnhealthyRestartOff);
        }
        if let Some(at) = self.pending_restart {
            return RestartDecision::Restart {
                after: (at - now).to_std().unwrap_or_default(),
                at,
            };
        }
        self.last_error = Some(format!(
            "unhealthy: {} consecutive failed health checks",
            self.unhealthy_after
        ));
        let decision = self.decide(true, uptime, now);
        self.stopping_unhealthy = matches!(decision, RestartDecision::Restart { .. });
        decision
    }

    /// Docker's `ShouldRestart` after a failure (`failed`) or a clean exit: the delay grows,
    /// and a restart is counted and scheduled unless the policy says stay.
    fn decide(&mut self, failed: bool, uptime: Duration, now: DateTime<Utc>) -> RestartDecision {
        if self.policy == RestartPolicy::Never {
            return RestartDecision::Stay(StayReason::PolicyNever);
        }
        if self.manually_stopped {
            return RestartDecision::Stay(StayReason::ManuallyStopped);
        }
        if uptime >= BACKOFF_RESET_UPTIME {
            self.backoff = Duration::ZERO;
        }
        self.backoff = if self.backoff.is_zero() {
            INITIAL_BACKOFF
        } else {
            (self.backoff * 2).min(MAX_BACKOFF)
        };
        let stay = match (self.policy, self.max_retries) {
            (RestartPolicy::OnFailure, _) if !failed => Some(StayReason::CleanExit),
            (RestartPolicy::OnFailure, Some(max_retries)) if !self.retries_left() => {
                Some(StayReason::RetriesExhausted { max_retries })
            }
            _ => None,
        };
        if let Some(reason) = stay {
            return RestartDecision::Stay(reason);
        }
        self.restart_count += 1;
        let at = now + self.backoff;
        self.pending_restart = Some(at);
        RestartDecision::Restart {
            after: self.backoff,
            at,
        }
    }

    /// True while `on-failure` may still restart: no limit, or fewer restarts than it.
    fn retries_left(&self) -> bool {
        self.max_retries.is_none_or(|max| self.restart_count < max)
    }

    /// Records an error that is not an exit code (e.g. a startup timeout).
    pub fn record_error(&mut self, message: impl Into<String>) {
        self.last_error = Some(message.into());
    }

    /// True when a restart is pending and its time has come.
    pub fn restart_due(&self, now: DateTime<Utc>) -> bool {
        self.pending_restart.is_some_and(|at| at <= now)
    }

    /// The pending restart was carried out.
    pub fn on_restarted(&mut self) {
        self.pending_restart = None;
        self.stopping_unhealthy = false;
    }

    /// Whether to start `app`'s process when the VM comes back, from the persisted app
    /// ([`BootFacts::of`]); `was_running` says the caller knows it was running before it
    /// marked the interruption (e.g. `running` already turned to `error`). Ask a supervisor
    /// made by [`Self::restore`] from the same app, before any start; see
    /// [`Self::boot_decision`] for the rules and [`Self::on_boot`] for the start.
    pub fn should_start_on_boot(&self, app: &Application, was_running: bool) -> bool {
        let facts = BootFacts::of(app);
        self.boot_decision(&BootFacts {
            was_running: facts.was_running || was_running,
            ..facts
        })
    }

    /// Docker's daemon restore (`cfg.AutoRestart && c.ShouldRestart() &&
    /// c.HasBeenStartedBefore`, moby `daemon/daemon.go`) on `facts`.
    ///
    /// Only an app started before and in a startable status is considered. Then `always`
    /// starts it (even after a manual stop, as Docker does on daemon start),
    /// `unless-stopped` unless the user stopped it, `on-failure` if it was running (the VM
    /// going away is a non-zero exit, Docker's 255) or had crashed, and its retry limit is
    /// not spent (the restored count), `never` not.
    pub fn boot_decision(&self, facts: &BootFacts) -> bool {
        if !facts.started_before || !facts.startable {
            return false;
        }
        match self.policy {
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped => !self.manually_stopped,
            RestartPolicy::OnFailure => {
                (facts.was_running || facts.crashed)
                    && !self.manually_stopped
                    && self.retries_left()
            }
            RestartPolicy::Never => false,
        }
    }

    /// [`Self::should_start_on_boot`], and when it says start, [`Self::on_start`]: the
    /// restart count and delay start over, as Docker's restore starts containers with
    /// `resetRestartManager=true`. Returns whether to start the process. A caller that
    /// decides with [`Self::should_start_on_boot`] calls [`Self::on_start`] itself.
    pub fn on_boot(&mut self, app: &Application, was_running: bool) -> bool {
        let start = self.should_start_on_boot(app, was_running);
        if start {
            self.on_start();
        }
        start
    }

    /// Copies restartCount and lastError into the app's metrics.
    pub fn apply_to(&self, metrics: &mut ApplicationMetrics) {
        metrics.restart_count = self.restart_count;
        if let Some(error) = &self.last_error {
            metrics.last_error = Some(error.clone());
        }
    }

    pub fn policy(&self) -> RestartPolicy {
        self.policy
    }

    /// The `on-failure` limit; `None` = unlimited.
    pub fn max_retries(&self) -> Option<u32> {
        self.max_retries
    }

    pub fn restarts_on_unhealthy(&self) -> bool {
        self.restart_on_unhealthy
    }

    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn is_manually_stopped(&self) -> bool {
        self.manually_stopped
    }

    pub fn pending_restart(&self) -> Option<DateTime<Utc>> {
        self.pending_restart
    }

    /// The delay used for the latest restart decision.
    pub fn current_backoff(&self) -> Duration {
        self.backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::now;

    const SHORT: Duration = Duration::from_secs(1);
    const LONG: Duration = Duration::from_secs(10);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// What happens after an exit.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Expected {
        After(Duration),
        Stay(StayReason),
    }

    enum Event {
        Exit(i32, Duration, Expected),
        ManualStop,
        Start,
    }

    fn run(policy: RestartPolicy, max_retries: Option<u32>, events: &[Event]) -> RestartSupervisor {
        let mut supervisor = RestartSupervisor::new(policy, max_retries);
        for (step, event) in events.iter().enumerate() {
            match event {
                Event::Exit(code, uptime, expected) => {
                    let got = match supervisor.on_exit(*code, *uptime, now()) {
                        RestartDecision::Restart { after, at } => {
                            assert_eq!(at, now() + after);
                            Expected::After(after)
                        }
                        RestartDecision::Stay(reason) => Expected::Stay(reason),
                    };
                    assert_eq!(got, *expected, "{policy} step {step}");
                }
                Event::ManualStop => supervisor.on_manual_stop(),
                Event::Start => supervisor.on_start(),
            }
        }
        supervisor
    }

    #[test]
    fn policy_table() {
        use Event::*;
        use Expected::*;
        use RestartPolicy as P;
        let cases: Vec<(P, Option<u32>, Vec<Event>, u32)> = vec![
            (
                P::Never,
                None,
                vec![
                    Exit(1, SHORT, Stay(StayReason::PolicyNever)),
                    Exit(0, SHORT, Stay(StayReason::PolicyNever)),
                ],
                0,
            ),
            (
                P::OnFailure,
                None,
                vec![
                    Exit(0, SHORT, Stay(StayReason::CleanExit)),
                    Exit(1, SHORT, After(ms(200))),
                    Exit(2, SHORT, After(ms(400))),
                ],
                2,
            ),
            (
                P::OnFailure,
                Some(2),
                vec![
                    Exit(1, SHORT, After(ms(100))),
                    Exit(1, SHORT, After(ms(200))),
                    Exit(
                        1,
                        SHORT,
                        Stay(StayReason::RetriesExhausted { max_retries: 2 }),
                    ),
                    Start,
                    Exit(1, SHORT, After(ms(100))),
                ],
                1,
            ),
            (
                P::OnFailure,
                Some(0),
                vec![
                    Exit(1, SHORT, After(ms(100))),
                    Exit(1, SHORT, After(ms(200))),
                    Exit(1, SHORT, After(ms(400))),
                    Exit(0, SHORT, Stay(StayReason::CleanExit)),
                ],
                3,
            ),
            (
                P::OnFailure,
                Some(1),
                vec![
                    Exit(1, SHORT, After(ms(100))),
                    Exit(
                        1,
                        SHORT,
                        Stay(StayReason::RetriesExhausted { max_retries: 1 }),
                    ),
                ],
                1,
            ),
            (
                P::Always,
                None,
                vec![
                    Exit(0, SHORT, After(ms(100))),
                    Exit(1, SHORT, After(ms(200))),
                    ManualStop,
                    Exit(0, SHORT, Stay(StayReason::ManuallyStopped)),
                    Start,
                    Exit(0, SHORT, After(ms(100))),
                ],
                1,
            ),
            (
                P::UnlessStopped,
                None,
                vec![
                    Exit(0, SHORT, After(ms(100))),
                    ManualStop,
                    Exit(137, SHORT, Stay(StayReason::ManuallyStopped)),
                ],
                1,
            ),
            (
                P::Always,
                None,
                vec![
                    Exit(1, SHORT, After(ms(100))),
                    Exit(1, SHORT, After(ms(200))),
                    Exit(1, LONG, After(ms(100))),
                    Exit(1, ms(9_999), After(ms(200))),
                ],
                4,
            ),
        ];
        for (policy, max_retries, events, restarts) in cases {
            let supervisor = run(policy, max_retries, &events);
            assert_eq!(supervisor.restart_count(), restarts, "{policy}");
        }
    }

    #[test]
    fn backoff_doubles_to_one_minute() {
        let mut supervisor = RestartSupervisor::new(RestartPolicy::Always, None);
        let delays: Vec<u64> = (0..12)
            .map(|_| match supervisor.on_exit(1, SHORT, now()) {
                RestartDecision::Restart { after, .. } => after.as_millis() as u64,
                RestartDecision::Stay(_) => 0,
            })
            .collect();
        assert_eq!(
            delays,
            vec![100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 51_200, 60_000, 60_000]
        );
        assert_eq!(supervisor.current_backoff(), MAX_BACKOFF);
    }

    #[test]
    fn clean_exit_still_grows_the_delay_like_docker() {
        let mut supervisor = RestartSupervisor::new(RestartPolicy::OnFailure, None);
        assert_eq!(
            supervisor.on_exit(0, SHORT, now()),
            RestartDecision::Stay(StayReason::CleanExit)
        );
        assert_eq!(supervisor.current_backoff(), ms(100));
        assert!(
            matches!(supervisor.on_exit(1, SHORT, now()), RestartDecision::Restart { after, .. } if after == ms(200))
        );
    }

    #[test]
    fn pending_restart_is_due_and_cancelled_by_manual_stop() {
        let mut supervisor = RestartSupervisor::new(RestartPolicy::UnlessStopped, None);
        supervisor.on_exit(3, SHORT, now());
        assert!(!supervisor.restart_due(now()));
        assert!(supervisor.restart_due(now() + ms(100)));
        assert_eq!(supervisor.pending_restart(), Some(now() + ms(100)));
        supervisor.on_restarted();
        assert!(!supervisor.restart_due(now() + ms(100)));
        supervisor.on_exit(3, SHORT, now());
        supervisor.on_manual_stop();
        assert!(supervisor.is_manually_stopped());
        assert_eq!(supervisor.pending_restart(), None);
    }

    #[test]
    fn restart_count_and_last_error_are_kept() {
        let mut supervisor = RestartSupervisor::new(RestartPolicy::Always, None);
        supervisor.on_exit(2, SHORT, now());
        supervisor.on_exit(0, SHORT, now());
        assert_eq!(supervisor.last_error(), Some("process exited with code 2"));
        let mut metrics = ApplicationMetrics::default();
        supervisor.apply_to(&mut metrics);
        assert_eq!(metrics.restart_count, 2);
        assert_eq!(
            metrics.last_error.as_deref(),
            Some("process exited with code 2")
        );
        supervisor.on_start();
        supervisor.record_error("startup timed out after 30 s");
        supervisor.apply_to(&mut metrics);
        assert_eq!(metrics.restart_count, 0);
        assert_eq!(
            metrics.last_error.as_deref(),
            Some("startup timed out after 30 s")
        );
        let fresh = RestartSupervisor::new(RestartPolicy::Never, None);
        fresh.apply_to(&mut metrics);
        assert_eq!(
            metrics.last_error.as_deref(),
            Some("startup timed out after 30 s")
        );
    }

    /// (policy, maxRetries, persisted status, started before, persisted restart count,
    /// start at VM start?)
    type BootRow = (
        RestartPolicy,
        Option<u32>,
        ApplicationStatus,
        bool,
        u32,
        bool,
    );

    #[test]
    fn boot_table() {
        use ApplicationStatus as S;
        use RestartPolicy as P;
        let cases: [BootRow; 26] = [
            // always: every app started before, even one the user stopped.
            (P::Always, None, S::Running, true, 0, true),
            (P::Always, None, S::Stopped, true, 0, true),
            (P::Always, None, S::Error, true, 7, true),
            (P::Always, None, S::Failed, true, 0, true),
            (P::Always, None, S::Deployed, false, 0, false),
            (P::Always, None, S::Draft, false, 0, false),
            (P::Always, None, S::RuntimeMissing, true, 0, false),
            (P::Always, None, S::Deploying, true, 0, false),
            // unless-stopped: likewise, unless the user stopped it.
            (P::UnlessStopped, None, S::Running, true, 0, true),
            (P::UnlessStopped, None, S::Deployed, true, 0, true),
            (P::UnlessStopped, None, S::Stopped, true, 0, false),
            (P::UnlessStopped, None, S::Stopping, true, 0, false),
            (P::UnlessStopped, None, S::Running, false, 0, false),
            // on-failure: interrupted or crashed, within its retry limit.
            (P::OnFailure, None, S::Running, true, 0, true),
            (P::OnFailure, None, S::Starting, true, 0, true),
            (P::OnFailure, None, S::Error, true, 40, true),
            (P::OnFailure, Some(0), S::Error, true, 40, true),
            (P::OnFailure, Some(3), S::Error, true, 2, true),
            (P::OnFailure, Some(3), S::Error, true, 3, false),
            (P::OnFailure, Some(3), S::Running, true, 3, false),
            (P::OnFailure, None, S::Stopped, true, 0, false),
            (P::OnFailure, None, S::Deployed, true, 0, false),
            (P::OnFailure, None, S::Failed, true, 0, false),
            (P::OnFailure, None, S::Running, false, 0, false),
            // never.
            (P::Never, None, S::Running, true, 0, false),
            (P::Never, None, S::Error, true, 0, false),
        ];
        for (policy, max_retries, status, started, restarts, expected) in cases {
            let mut app = crate::domain::testing::application("blog");
            app.execution.restart_policy = policy;
            app.execution.max_retries = max_retries;
            app.status = status;
            app.last_started = started.then(now);
            app.metrics.restart_count = restarts;
            let mut supervisor = RestartSupervisor::restore(&app.execution, &app);
            let row = format!("{policy} {max_retries:?} {status} {started} {restarts}");
            assert_eq!(
                supervisor.boot_decision(&BootFacts::of(&app)),
                expected,
                "{row}"
            );
            assert_eq!(
                supervisor.should_start_on_boot(&app, false),
                expected,
                "{row}"
            );
            assert_eq!(supervisor.on_boot(&app, false), expected, "{row}");
            let count_after = if expected { 0 } else { restarts };
            assert_eq!(supervisor.restart_count(), count_after, "{row}");
        }
    }

    #[test]
    fn restore_reads_the_persisted_app_and_a_boot_start_resets_it() {
        let mut app = crate::domain::testing::application("blog");
        app.execution.restart_policy = RestartPolicy::OnFailure;
        app.execution.max_retries = Some(3);
        app.status = ApplicationStatus::Error;
        app.last_started = Some(now());
        app.metrics.restart_count = 2;
        app.metrics.last_error = Some("process exited with code 1".to_owned());
        let mut supervisor = RestartSupervisor::restore(&app.execution, &app);
        assert_eq!(supervisor.restart_count(), 2);
        assert_eq!(supervisor.last_error(), Some("process exited with code 1"));
        assert!(!supervisor.is_manually_stopped());
        assert_eq!(supervisor.max_retries(), Some(3));
        assert!(supervisor.on_boot(&app, false));
        assert_eq!(supervisor.restart_count(), 0);
        assert_eq!(supervisor.current_backoff(), Duration::ZERO);
        assert!(matches!(
            supervisor.on_exit(1, SHORT, now()),
            RestartDecision::Restart { after, .. } if after == INITIAL_BACKOFF
        ));

        // The caller may already have marked an interrupted run; its word counts too.
        app.status = ApplicationStatus::Deployed;
        let supervisor = RestartSupervisor::restore(&app.execution, &app);
        assert!(!supervisor.should_start_on_boot(&app, false));
        assert!(supervisor.should_start_on_boot(&app, true));
        app.status = ApplicationStatus::Stopped;
        let supervisor = RestartSupervisor::restore(&app.execution, &app);
        assert!(!supervisor.should_start_on_boot(&app, true));

        for (status, stopped) in [
            (ApplicationStatus::Stopped, true),
            (ApplicationStatus::Stopping, true),
            (ApplicationStatus::Running, false),
            (ApplicationStatus::Failed, false),
            (ApplicationStatus::Deployed, false),
        ] {
            app.status = status;
            let supervisor = RestartSupervisor::restore(&app.execution, &app);
            assert_eq!(supervisor.is_manually_stopped(), stopped, "{status}");
        }
    }

    /// (policy, maxRetries, restartOnUnhealthy, manually stopped, events before, expected)
    type UnhealthyRow = (
        RestartPolicy,
        Option<u32>,
        bool,
        bool,
        &'static [i32],
        Expected,
    );

    #[test]
    fn unhealthy_table() {
        use Expected::*;
        use RestartPolicy as P;
        let exhausted = Stay(StayReason::RetriesExhausted { max_retries: 2 });
        let cases: [UnhealthyRow; 10] = [
            (
                P::Always,
                None,
                false,
                false,
                &[],
                Stay(StayReason::UnhealthyRestartOff),
            ),
            (
                P::OnFailure,
                None,
                false,
                false,
                &[1],
                Stay(StayReason::UnhealthyRestartOff),
            ),
            (P::Always, None, true, false, &[], After(ms(100))),
            (P::UnlessStopped, None, true, false, &[], After(ms(100))),
            (P::OnFailure, None, true, false, &[], After(ms(100))),
            // The same backoff as crashes: two crashes before, so the third delay.
            (P::OnFailure, None, true, false, &[1, 1], After(ms(400))),
            (P::Always, None, true, false, &[0, 0], After(ms(400))),
            // Counted against the retry limit like a crash.
            (P::OnFailure, Some(2), true, false, &[1, 1], exhausted),
            (
                P::Never,
                None,
                true,
                false,
                &[],
                Stay(StayReason::PolicyNever),
            ),
            (
                P::Always,
                None,
                true,
                true,
                &[],
                Stay(StayReason::ManuallyStopped),
            ),
        ];
        for (policy, max_retries, on, stopped, exits, expected) in cases {
            let mut supervisor =
                RestartSupervisor::new(policy, max_retries).with_restart_on_unhealthy(on);
            for code in exits {
                supervisor.on_exit(*code, SHORT, now());
                supervisor.on_restarted();
            }
            if stopped {
                supervisor.on_manual_stop();
            }
            let before = supervisor.restart_count();
            let got = match supervisor.on_unhealthy(SHORT, now()) {
                RestartDecision::Restart { after, at } => {
                    assert_eq!(at, now() + after);
                    After(after)
                }
                RestartDecision::Stay(reason) => Stay(reason),
            };
            let row = format!("{policy} {max_retries:?} {on} {stopped} {exits:?}");
            assert_eq!(got, expected, "{row}");
            let counted = u32::from(matches!(got, After(_)));
            assert_eq!(supervisor.restart_count(), before + counted, "{row}");
            if on && policy != P::Never && !stopped {
                assert_eq!(
                    supervisor.last_error(),
                    Some("unhealthy: 3 consecutive failed health checks"),
                    "{row}"
                );
            }
        }
    }

    #[test]
    fn the_exit_of_a_process_stopped_for_being_unhealthy_is_not_counted_again() {
        let mut supervisor = RestartSupervisor::new(RestartPolicy::OnFailure, Some(5))
            .with_restart_on_unhealthy(true);
        let first = supervisor.on_unhealthy(LONG, now());
        assert_eq!(
            first,
            RestartDecision::Restart {
                after: ms(100),
                at: now() + ms(100)
            }
        );
        // A second verdict before the restart changes nothing.
        assert_eq!(supervisor.on_unhealthy(LONG, now()), first);
        let later = now() + ms(40);
        assert_eq!(
            supervisor.on_exit(137, LONG, later),
            RestartDecision::Restart {
                after: ms(60),
                at: now() + ms(100)
            }
        );
        assert_eq!(supervisor.restart_count(), 1);
        assert_eq!(
            supervisor.last_error(),
            Some("unhealthy: 3 consecutive failed health checks")
        );
        supervisor.on_restarted();
        // The next exit is a crash again.
        assert!(matches!(
            supervisor.on_exit(1, SHORT, now()),
            RestartDecision::Restart { after, .. } if after == ms(200)
        ));
        assert_eq!(supervisor.restart_count(), 2);
    }

    #[test]
    fn auto_restart_off_means_never() {
        let config = ExecutionConfig {
            auto_restart: false,
            restart_policy: RestartPolicy::Always,
            ..ExecutionConfig::default()
        };
        assert_eq!(
            RestartSupervisor::for_execution(&config).policy(),
            RestartPolicy::Never
        );
        let config = ExecutionConfig {
            auto_restart: true,
            max_retries: Some(5),
            ..config
        };
        let supervisor = RestartSupervisor::for_execution(&config);
        assert_eq!(supervisor.policy(), RestartPolicy::Always);
        assert!(!supervisor.restarts_on_unhealthy());
        for (enabled, restart, expected) in [
            (true, true, true),
            (false, true, false),
            (true, false, false),
        ] {
            let config = ExecutionConfig {
                health_check_config: Some(crate::model::HealthCheckConfig {
                    enabled,
                    restart_on_unhealthy: restart,
                    ..crate::model::HealthCheckConfig::default()
                }),
                ..config.clone()
            };
            let supervisor = RestartSupervisor::for_execution(&config);
            assert_eq!(supervisor.restarts_on_unhealthy(), expected);
        }
        assert_eq!(
            RestartSupervisor::new(RestartPolicy::OnFailure, Some(0)).max_retries(),
            None
        );
        let config = ExecutionConfig {
            health_check_config: Some(crate::model::HealthCheckConfig {
                retries: 5,
                restart_on_unhealthy: true,
                ..crate::model::HealthCheckConfig::default()
            }),
            ..config
        };
        let mut supervisor = RestartSupervisor::for_execution(&config);
        supervisor.on_unhealthy(SHORT, now());
        assert_eq!(
            supervisor.last_error(),
            Some("unhealthy: 5 consecutive failed health checks")
        );
    }
}
