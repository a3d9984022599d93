//! Restart policies with Docker's semantics, as a pure supervisor state: the caller reports
//! exits, manual stops and starts (with the time), and is told whether and when to restart.
//!
//! Docker's rules (moby `restartmanager`): the delay before a restart starts at 100 ms and
//! doubles up to 1 minute; it resets when the process had run for at least 10 s. The delay
//! grows on every exit, even one that is not restarted. `on-failure` restarts only after a
//! non-zero exit, at most `max_retries` times since the last manual start. `unless-stopped`
//! and `always` restart after any exit. A manual stop suspends every policy until the next
//! manual start; the two differ only when the VM comes back ([`RestartSupervisor::should_start_on_boot`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{ApplicationMetrics, ExecutionConfig, RestartPolicy};

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
}

/// What to do after a process exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart after `after`, i.e. at `at`.
    Restart {
        after: Duration,
        at: DateTime<Utc>,
    },
    Stay(StayReason),
}

/// Restart state of one application's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartSupervisor {
    policy: RestartPolicy,
    max_retries: Option<u32>,
    restart_count: u32,
    last_error: Option<String>,
    manually_stopped: bool,
    /// Zero until the first exit, as in Docker.
    backoff: Duration,
    pending_restart: Option<DateTime<Utc>>,
}

impl RestartSupervisor {
    /// A supervisor for `policy`; `max_retries` limits `on-failure` (`None` = unlimited,
    /// Docker's 0).
    pub fn new(policy: RestartPolicy, max_retries: Option<u32>) -> Self {
        RestartSupervisor {
            policy,
            max_retries,
            restart_count: 0,
            last_error: None,
            manually_stopped: false,
            backoff: Duration::ZERO,
            pending_restart: None,
        }
    }

    /// A supervisor for an application's execution settings (autoRestart off = `never`).
    pub fn for_execution(config: &ExecutionConfig) -> Self {
        Self::new(config.effective_restart_policy(), config.max_retries)
    }

    /// The user started the process (`docker start`): restarts are allowed again and the
    /// restart count and delay start over. The last error is kept.
    pub fn on_start(&mut self) {
        self.manually_stopped = false;
        self.restart_count = 0;
        self.backoff = Duration::ZERO;
        self.pending_restart = None;
    }

    /// The user stopped the process: no restart until the next [`Self::on_start`], and a
    /// pending restart is cancelled.
    pub fn on_manual_stop(&mut self) {
        self.manually_stopped = true;
        self.pending_restart = None;
    }

    /// The process exited with `exit_code` after running for `uptime`.
    pub fn on_exit(
        &mut self,
        exit_code: i32,
        uptime: Duration,
        now: DateTime<Utc>,
    ) -> RestartDecision {
        if exit_code != 0 {
            self.last_error = Some(format!("process exited with code {exit_code}"));
        }
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
        let stay = match self.policy {
            RestartPolicy::OnFailure if exit_code == 0 => Some(StayReason::CleanExit),
            RestartPolicy::OnFailure => self
                .max_retries
                .filter(|max| self.restart_count >= *max)
                .map(|max_retries| StayReason::RetriesExhausted { max_retries }),
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
    }

    /// Whether to start the process when the VM comes back (page reload, resume), like
    /// Docker on daemon start: `always` yes, `unless-stopped` unless stopped by the user,
    /// `on-failure` if it was running (the VM going away interrupted it), `never` no.
    pub fn should_start_on_boot(&self, was_running: bool) -> bool {
        match self.policy {
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped => !self.manually_stopped,
            RestartPolicy::OnFailure => was_running && !self.manually_stopped,
            RestartPolicy::Never => false,
        }
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
                vec![Exit(
                    1,
                    SHORT,
                    Stay(StayReason::RetriesExhausted { max_retries: 0 }),
                )],
                0,
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

    #[test]
    fn boot_table() {
        use RestartPolicy as P;
        let cases = [
            (P::Always, true, false, true),
            (P::Always, true, true, true),
            (P::UnlessStopped, false, false, true),
            (P::UnlessStopped, true, true, false),
            (P::OnFailure, true, false, true),
            (P::OnFailure, false, false, false),
            (P::OnFailure, true, true, false),
            (P::Never, true, false, false),
        ];
        for (policy, was_running, stopped, expected) in cases {
            let mut supervisor = RestartSupervisor::new(policy, None);
            if stopped {
                supervisor.on_manual_stop();
            }
            assert_eq!(
                supervisor.should_start_on_boot(was_running),
                expected,
                "{policy}"
            );
        }
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
    }
}
