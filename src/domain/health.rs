//! Health checks with Docker's semantics, as a pure monitor: the caller runs the probe and
//! reports its start, end and result; the monitor keeps the state and says when the next
//! probe is due.
//!
//! Docker's rules (moby `daemon/health.go`): the first probe runs one interval after the
//! start and each next one an interval after the previous ended; while the app is still
//! `starting` and within its start period the start interval (`--health-start-interval`,
//! default 5 s) is used instead, so an app that comes up quickly is seen healthy quickly.
//! A probe that passes makes the app healthy and resets the failing streak. A failure (a
//! timeout is one) increments the streak, except while the app is still `starting` and
//! within its start period; once the streak reaches `retries` the app is unhealthy. A
//! success during the start period ends it. The last 5 results are kept, output cut to 4096
//! bytes with `...` appended (moby's `limitedBuffer`). Zero interval, timeout, retries or
//! start interval fall back to Docker's defaults (30 s, 30 s, 3, 5 s).
//!
//! A monitor lives for one run of the process: make a new one on each start with
//! [`HealthMonitor::resume`], which keeps the probe log of the previous runs and starts over
//! as `starting` with no streak, as Docker's `initHealthMonitor` does on a start, restart or
//! restore. On a stop ([`HealthMonitor::on_stop`]) Docker only stops probing
//! (`stopHealthchecks`): the last state and log stay as they were, and a probe still running
//! is ignored. What the monitor does with an unhealthy app is the restart supervisor's
//! business (`domain::restart`, `restartOnUnhealthy`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{
    ApplicationMetrics, HealthCheckConfig, HealthCheckStatus, HealthProbeResult, HealthState,
    HealthStatus, ProbeOutcome,
};

/// Probe results kept in the log.
pub const MAX_LOG_ENTRIES: usize = 5;
/// Longest probe output kept, in bytes, before the [`TRUNCATED_MARKER`].
pub const MAX_OUTPUT_BYTES: usize = 4096;
/// Appended to an output that was cut, as Docker does.
pub const TRUNCATED_MARKER: &str = "...";
/// Docker's default interval and timeout.
pub const DEFAULT_PROBE_SECONDS: u32 = 30;
/// Docker's default number of retries.
pub const DEFAULT_RETRIES: u32 = 3;
/// Docker's default start interval (`--health-start-interval`).
pub const DEFAULT_START_INTERVAL_SECONDS: u32 = 5;

/// The user-facing health of a Docker health state: `starting` is `unknown`.
pub fn health_status_of(state: HealthState) -> HealthStatus {
    match state {
        HealthState::Starting => HealthStatus::Unknown,
        HealthState::Healthy => HealthStatus::Healthy,
        HealthState::Unhealthy => HealthStatus::Unhealthy,
    }
}

/// When the probe after `previous_end` is due (the first one: `previous_end` = the start)
/// for a process started at `started_at` and now in `state`: the start interval while
/// `starting` within the start period, the interval otherwise (moby `monitor`'s
/// `getInterval`). Docker's defaults replace zero settings.
pub fn health_probe_due_at(
    config: &HealthCheckConfig,
    started_at: DateTime<Utc>,
    state: HealthState,
    previous_end: DateTime<Utc>,
) -> DateTime<Utc> {
    Timing::of(config).next_after(started_at, state, previous_end)
}

/// Health-check state of one run of an application's process.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthMonitor {
    /// `None` when health checks are off.
    timing: Option<Timing>,
    started_at: DateTime<Utc>,
    next_probe: Option<DateTime<Utc>>,
    last_probe: Option<DateTime<Utc>>,
    stopped: bool,
    status: HealthCheckStatus,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Timing {
    interval: Duration,
    timeout: Duration,
    retries: u32,
    start_period: Duration,
    start_interval: Duration,
}

impl Timing {
    fn of(config: &HealthCheckConfig) -> Self {
        let seconds = |value: u32, default: u32| {
            Duration::from_secs(u64::from(if value == 0 { default } else { value }))
        };
        Timing {
            interval: seconds(config.interval, DEFAULT_PROBE_SECONDS),
            timeout: seconds(config.timeout, DEFAULT_PROBE_SECONDS),
            retries: if config.retries == 0 {
                DEFAULT_RETRIES
            } else {
                config.retries
            },
            start_period: Duration::from_secs(u64::from(config.start_period)),
            start_interval: seconds(
                config.start_interval.unwrap_or(0),
                DEFAULT_START_INTERVAL_SECONDS,
            ),
        }
    }

    /// moby's `getInterval`, evaluated when the previous probe ended (or at the start).
    fn next_after(
        &self,
        started_at: DateTime<Utc>,
        state: HealthState,
        from: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let since_start = (from - started_at).to_std().unwrap_or_default();
        let wait = if since_start < self.start_period && state == HealthState::Starting {
            self.start_interval
        } else {
            self.interval
        };
        from + wait
    }
}

impl HealthMonitor {
    /// A monitor for a process started at `started_at`, with an empty log; off when
    /// `config` is absent or disabled.
    pub fn new(config: Option<&HealthCheckConfig>, started_at: DateTime<Utc>) -> Self {
        Self::resume(config, started_at, None)
    }

    /// A monitor for a new run of the process (a start, a restart, or a start after the VM
    /// came back), keeping the log of `previous` (at most the last 5 entries): the state goes
    /// back to `starting` and the failing streak to 0, as Docker's `initHealthMonitor` keeps
    /// `State.Health.Log` and resets the rest.
    pub fn resume(
        config: Option<&HealthCheckConfig>,
        started_at: DateTime<Utc>,
        previous: Option<&HealthCheckStatus>,
    ) -> Self {
        let timing = config.filter(|config| config.enabled).map(Timing::of);
        let mut log = previous
            .map(|status| status.log.clone())
            .unwrap_or_default();
        let excess = log.len().saturating_sub(MAX_LOG_ENTRIES);
        log.drain(..excess);
        HealthMonitor {
            next_probe: timing
                .map(|timing| timing.next_after(started_at, HealthState::Starting, started_at)),
            timing,
            started_at,
            last_probe: None,
            stopped: false,
            status: HealthCheckStatus {
                status: HealthState::Starting,
                failing_streak: 0,
                log,
            },
        }
    }

    /// The process stopped (by the user, a crash, or the VM going away): no more probes, and
    /// the result of one still running is ignored. The state and log stay as they were, as
    /// Docker's `stopHealthchecks` only closes the monitor; the user-facing health becomes
    /// unknown, as `docker ps` shows health only for running containers.
    pub fn on_stop(&mut self) {
        self.stopped = true;
        self.next_probe = None;
    }

    /// When the next probe should run; `None` when health checks are off or stopped.
    pub fn next_probe_due(&self) -> Option<DateTime<Utc>> {
        self.next_probe
    }

    /// True when a probe should run now.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.next_probe.is_some_and(|due| due <= now)
    }

    /// How long the caller may let a probe run before giving up on it.
    pub fn probe_timeout(&self) -> Option<Duration> {
        self.timing.map(|timing| timing.timeout)
    }

    /// Records a probe that ran from `start` to `end`. It counts as timed out when it took
    /// the timeout or longer, whatever `passed` says. Ignored when health checks are off or
    /// the process stopped.
    pub fn record(
        &mut self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        passed: bool,
        output: &str,
    ) -> HealthState {
        let Some(timing) = self.timing.filter(|_| !self.stopped) else {
            return self.status.status;
        };
        let elapsed = (end - start).to_std().unwrap_or_default();
        let outcome = if elapsed >= timing.timeout {
            ProbeOutcome::TimedOut
        } else if passed {
            ProbeOutcome::Passed
        } else {
            ProbeOutcome::Failed
        };
        if outcome == ProbeOutcome::Passed {
            self.status.failing_streak = 0;
            self.status.status = HealthState::Healthy;
        } else {
            let since_start = (start - self.started_at).to_std().unwrap_or_default();
            let in_start_period =
                self.status.status == HealthState::Starting && since_start < timing.start_period;
            if !in_start_period {
                self.status.failing_streak += 1;
                if self.status.failing_streak >= timing.retries {
                    self.status.status = HealthState::Unhealthy;
                }
            }
        }
        let output = truncate_output(output);
        let output = match outcome {
            ProbeOutcome::TimedOut => {
                let limit = go_duration(timing.timeout);
                if output.is_empty() {
                    format!("Health check exceeded timeout ({limit})")
                } else {
                    format!("Health check exceeded timeout ({limit}): {output}")
                }
            }
            _ => output,
        };
        self.status.log.push(HealthProbeResult {
            start,
            end,
            outcome,
            output,
        });
        let excess = self.status.log.len().saturating_sub(MAX_LOG_ENTRIES);
        self.status.log.drain(..excess);
        self.last_probe = Some(end);
        self.next_probe = Some(timing.next_after(self.started_at, self.status.status, end));
        self.status.status
    }

    /// The Docker-style state (for `Application.healthCheck`).
    pub fn status(&self) -> &HealthCheckStatus {
        &self.status
    }

    /// Healthy, unhealthy, or unknown (starting, checks off, or stopped).
    pub fn health_status(&self) -> HealthStatus {
        match self.timing {
            Some(_) if !self.stopped => health_status_of(self.status.status),
            _ => HealthStatus::Unknown,
        }
    }

    /// True once [`Self::on_stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Copies healthStatus and lastHealthCheck into the app's metrics.
    pub fn apply_to(&self, metrics: &mut ApplicationMetrics) {
        metrics.health_status = self.health_status();
        if self.last_probe.is_some() {
            metrics.last_health_check = self.last_probe;
        }
    }
}

/// The output as Docker keeps it: at most [`MAX_OUTPUT_BYTES`] (cut at a character
/// boundary here, where Go cuts bytes), then [`TRUNCATED_MARKER`] if anything was cut.
fn truncate_output(text: &str) -> String {
    if text.len() <= MAX_OUTPUT_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_OUTPUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED_MARKER}", &text[..end])
}

/// Whole seconds as Go prints a `time.Duration`: `5s`, `1m30s`, `1h0m0s`.
fn go_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::now;

    fn config(interval: u32, timeout: u32, retries: u32, start_period: u32) -> HealthCheckConfig {
        HealthCheckConfig {
            enabled: true,
            path: Some("/healthz".into()),
            interval,
            timeout,
            retries,
            start_period,
            start_interval: None,
            restart_on_unhealthy: false,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        now() + chrono::Duration::seconds(seconds)
    }

    /// Probe results as (start second, duration seconds, passed) → expected state and streak.
    type Row = (
        &'static str,
        HealthCheckConfig,
        &'static [(i64, i64, bool)],
        HealthState,
        u32,
    );

    #[test]
    fn probe_table() {
        use HealthState::*;
        let cases: Vec<Row> = vec![
            (
                "one success makes it healthy",
                config(5, 2, 3, 0),
                &[(5, 1, true)],
                Healthy,
                0,
            ),
            (
                "retries failures make it unhealthy",
                config(5, 2, 3, 0),
                &[(5, 1, false), (11, 1, false), (17, 1, false)],
                Unhealthy,
                3,
            ),
            (
                "fewer failures keep starting",
                config(5, 2, 3, 0),
                &[(5, 1, false), (11, 1, false)],
                Starting,
                2,
            ),
            (
                "failures in the start period don't count",
                config(5, 2, 2, 30),
                &[(5, 1, false), (11, 1, false), (17, 1, false)],
                Starting,
                0,
            ),
            (
                "after the start period they do",
                config(5, 2, 2, 10),
                &[(5, 1, false), (11, 1, false), (17, 1, false)],
                Unhealthy,
                2,
            ),
            (
                "a success ends the start period",
                config(5, 2, 1, 60),
                &[(5, 1, true), (11, 1, false)],
                Unhealthy,
                1,
            ),
            (
                "a success resets the streak",
                config(5, 2, 3, 0),
                &[(5, 1, false), (11, 1, false), (17, 1, true), (23, 1, false)],
                Healthy,
                1,
            ),
            (
                "unhealthy recovers with one success",
                config(5, 2, 1, 0),
                &[(5, 1, false), (11, 1, true)],
                Healthy,
                0,
            ),
            (
                "a timeout is a failure even if it passed",
                config(5, 2, 1, 0),
                &[(5, 2, true)],
                Unhealthy,
                1,
            ),
            (
                "zero settings use Docker's defaults",
                config(0, 0, 0, 0),
                &[(30, 29, true)],
                Healthy,
                0,
            ),
        ];
        for (name, config, probes, state, streak) in cases {
            let mut monitor = HealthMonitor::new(Some(&config), now());
            for (start, duration, passed) in probes {
                monitor.record(at(*start), at(start + duration), *passed, "HTTP 200");
            }
            assert_eq!(monitor.status().status, state, "{name}");
            assert_eq!(monitor.status().failing_streak, streak, "{name}");
        }
    }

    #[test]
    fn schedule_follows_the_interval() {
        let monitor_config = config(10, 3, 3, 0);
        let mut monitor = HealthMonitor::new(Some(&monitor_config), now());
        assert_eq!(monitor.next_probe_due(), Some(at(10)));
        assert!(!monitor.is_due(at(9)));
        assert!(monitor.is_due(at(10)));
        assert_eq!(monitor.probe_timeout(), Some(Duration::from_secs(3)));
        monitor.record(at(10), at(12), true, "ok");
        assert_eq!(monitor.next_probe_due(), Some(at(22)));
    }

    #[test]
    fn log_keeps_the_last_five_with_truncated_output() {
        let monitor_config = config(1, 5, 3, 0);
        let mut monitor = HealthMonitor::new(Some(&monitor_config), now());
        let long = "\u{e9}".repeat(3000);
        for second in 0..7 {
            monitor.record(at(second), at(second), second % 2 == 0, &long);
        }
        let log = &monitor.status().log;
        assert_eq!(log.len(), MAX_LOG_ENTRIES);
        assert_eq!(log[0].start, at(2));
        assert!(log.iter().all(|entry| entry.output.len()
            == MAX_OUTPUT_BYTES + TRUNCATED_MARKER.len()
            && entry.output.ends_with("\u{e9}...")));
        monitor.record(at(10), at(20), true, "slow");
        monitor.record(at(20), at(30), true, "");
        let last: Vec<_> = monitor.status().log[3..]
            .iter()
            .map(|entry| (entry.outcome, entry.output.as_str()))
            .collect();
        assert_eq!(
            last,
            vec![
                (
                    ProbeOutcome::TimedOut,
                    "Health check exceeded timeout (5s): slow"
                ),
                (ProbeOutcome::TimedOut, "Health check exceeded timeout (5s)"),
            ]
        );
    }

    #[test]
    fn output_truncation_table() {
        let cut_in_char = format!("{}\u{e9}tail", "a".repeat(MAX_OUTPUT_BYTES - 1));
        let cases: Vec<(String, String)> = vec![
            (String::new(), String::new()),
            ("HTTP 200".into(), "HTTP 200".into()),
            ("a".repeat(MAX_OUTPUT_BYTES), "a".repeat(MAX_OUTPUT_BYTES)),
            (
                "a".repeat(MAX_OUTPUT_BYTES + 1),
                format!("{}...", "a".repeat(MAX_OUTPUT_BYTES)),
            ),
            (
                cut_in_char,
                format!("{}...", "a".repeat(MAX_OUTPUT_BYTES - 1)),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(truncate_output(&input), expected, "{}", input.len());
        }
        let durations = [
            (5, "5s"),
            (59, "59s"),
            (90, "1m30s"),
            (3600, "1h0m0s"),
            (3725, "1h2m5s"),
        ];
        for (seconds, text) in durations {
            assert_eq!(go_duration(Duration::from_secs(seconds)), text);
        }
    }

    /// (config, probes as (start, duration, passed), expected due second after each).
    type ScheduleRow = (
        &'static str,
        HealthCheckConfig,
        i64,
        &'static [(i64, i64, bool, i64)],
    );

    #[test]
    fn start_interval_table() {
        let with_start = |start_period: u32, start_interval: Option<u32>| HealthCheckConfig {
            start_interval,
            ..config(30, 3, 3, start_period)
        };
        let cases: Vec<ScheduleRow> = vec![
            (
                "no start period: the interval from the start",
                with_start(0, Some(2)),
                30,
                &[(30, 1, false, 61)],
            ),
            (
                "in the start period: Docker's default 5 s",
                with_start(20, None),
                5,
                &[
                    (5, 1, false, 11),
                    (11, 1, false, 17),
                    (17, 1, false, 23),
                    (23, 1, false, 54),
                ],
            ),
            (
                "a configured start interval; zero means the default",
                with_start(20, Some(2)),
                2,
                &[(2, 1, false, 5), (5, 1, false, 8)],
            ),
            (
                "zero start interval means 5 s",
                with_start(20, Some(0)),
                5,
                &[(5, 1, false, 11)],
            ),
            (
                "healthy within the start period: the interval",
                with_start(60, Some(2)),
                2,
                &[(2, 1, true, 33)],
            ),
        ];
        for (name, config, first, probes) in cases {
            let mut monitor = HealthMonitor::new(Some(&config), now());
            assert_eq!(monitor.next_probe_due(), Some(at(first)), "{name}");
            assert_eq!(
                health_probe_due_at(&config, now(), HealthState::Starting, now()),
                at(first),
                "{name}"
            );
            for (start, duration, passed, due) in probes {
                let state = monitor.record(at(*start), at(start + duration), *passed, "x");
                assert_eq!(monitor.next_probe_due(), Some(at(*due)), "{name} {start}");
                assert_eq!(
                    health_probe_due_at(&config, now(), state, at(start + duration)),
                    at(*due),
                    "{name} {start}"
                );
            }
        }
    }

    #[test]
    fn resume_keeps_the_log_and_starts_over() {
        let monitor_config = config(5, 2, 1, 0);
        let mut first = HealthMonitor::new(Some(&monitor_config), now());
        first.record(at(5), at(6), false, "HTTP 500");
        assert_eq!(first.status().status, HealthState::Unhealthy);
        let cases: [(Option<&HealthCheckStatus>, usize); 2] =
            [(None, 0), (Some(first.status()), 1)];
        for (previous, kept) in cases {
            let monitor = HealthMonitor::resume(Some(&monitor_config), at(100), previous);
            assert_eq!(monitor.status().status, HealthState::Starting);
            assert_eq!(monitor.status().failing_streak, 0);
            assert_eq!(monitor.status().log.len(), kept);
            assert_eq!(monitor.next_probe_due(), Some(at(105)));
            assert_eq!(monitor.health_status(), HealthStatus::Unknown);
        }
        let long = HealthCheckStatus {
            log: vec![first.status().log[0].clone(); 8],
            ..HealthCheckStatus::default()
        };
        let mut monitor = HealthMonitor::resume(Some(&monitor_config), at(100), Some(&long));
        assert_eq!(monitor.status().log.len(), MAX_LOG_ENTRIES);
        monitor.record(at(105), at(106), true, "HTTP 200");
        let log = &monitor.status().log;
        assert_eq!(log.len(), MAX_LOG_ENTRIES);
        assert_eq!(log[0].output, "HTTP 500");
        assert_eq!(log[4].output, "HTTP 200");
    }

    #[test]
    fn stop_ends_probing_and_keeps_the_state() {
        let monitor_config = config(5, 2, 3, 0);
        let mut monitor = HealthMonitor::new(Some(&monitor_config), now());
        monitor.record(at(5), at(6), true, "HTTP 200");
        monitor.on_stop();
        assert!(monitor.is_stopped());
        assert_eq!(monitor.next_probe_due(), None);
        assert!(!monitor.is_due(at(1000)));
        assert_eq!(
            monitor.record(at(11), at(12), false, "late"),
            HealthState::Healthy
        );
        assert_eq!(monitor.status().status, HealthState::Healthy);
        assert_eq!(monitor.status().log.len(), 1);
        assert_eq!(monitor.health_status(), HealthStatus::Unknown);
        let mut metrics = ApplicationMetrics::default();
        monitor.apply_to(&mut metrics);
        assert_eq!(
            (metrics.health_status, metrics.last_health_check),
            (HealthStatus::Unknown, Some(at(6)))
        );
    }

    #[test]
    fn health_status_mapping_and_metrics() {
        let cases = [
            (HealthState::Starting, HealthStatus::Unknown),
            (HealthState::Healthy, HealthStatus::Healthy),
            (HealthState::Unhealthy, HealthStatus::Unhealthy),
        ];
        for (state, status) in cases {
            assert_eq!(health_status_of(state), status);
        }
        let monitor_config = config(5, 2, 1, 0);
        let mut monitor = HealthMonitor::new(Some(&monitor_config), now());
        let mut metrics = ApplicationMetrics::default();
        monitor.apply_to(&mut metrics);
        assert_eq!(
            (metrics.health_status, metrics.last_health_check),
            (HealthStatus::Unknown, None)
        );
        monitor.record(at(5), at(6), false, "HTTP 500");
        monitor.apply_to(&mut metrics);
        assert_eq!(
            (metrics.health_status, metrics.last_health_check),
            (HealthStatus::Unhealthy, Some(at(6)))
        );
    }

    #[test]
    fn disabled_checks_stay_unknown_and_schedule_nothing() {
        let off = HealthCheckConfig {
            enabled: false,
            ..config(5, 2, 1, 0)
        };
        for config in [None, Some(&off)] {
            let mut monitor = HealthMonitor::new(config, now());
            assert_eq!(monitor.next_probe_due(), None);
            assert!(!monitor.is_due(at(1000)));
            assert_eq!(monitor.probe_timeout(), None);
            assert_eq!(
                monitor.record(at(5), at(6), false, "x"),
                HealthState::Starting
            );
            assert_eq!(monitor.health_status(), HealthStatus::Unknown);
            assert!(monitor.status().log.is_empty());
        }
    }
}
