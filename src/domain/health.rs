//! Health checks with Docker's semantics, as a pure monitor: the caller runs the probe and
//! reports its start, end and result; the monitor keeps the state and says when the next
//! probe is due.
//!
//! Docker's rules (moby `daemon/health.go`): the first probe runs one interval after the
//! start and each next one an interval after the previous ended. A probe that passes makes
//! the app healthy and resets the failing streak. A failure (a timeout is one) increments
//! the streak, except while the app is still `starting` and within its start period; once
//! the streak reaches `retries` the app is unhealthy. A success during the start period
//! ends it. The last 5 results are kept, output truncated to 4096 bytes. Zero interval,
//! timeout or retries fall back to Docker's defaults (30 s, 30 s, 3). A monitor lives for
//! one run of the process: make a new one on each start.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{
    ApplicationMetrics, HealthCheckConfig, HealthCheckStatus, HealthProbeResult, HealthState,
    HealthStatus, ProbeOutcome,
};

/// Probe results kept in the log.
pub const MAX_LOG_ENTRIES: usize = 5;
/// Longest probe output kept, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 4096;
/// Docker's default interval and timeout.
pub const DEFAULT_PROBE_SECONDS: u32 = 30;
/// Docker's default number of retries.
pub const DEFAULT_RETRIES: u32 = 3;

/// The user-facing health of a Docker health state: `starting` is `unknown`.
pub fn health_status_of(state: HealthState) -> HealthStatus {
    match state {
        HealthState::Starting => HealthStatus::Unknown,
        HealthState::Healthy => HealthStatus::Healthy,
        HealthState::Unhealthy => HealthStatus::Unhealthy,
    }
}

/// Health-check state of one run of an application's process.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthMonitor {
    /// `None` when health checks are off.
    timing: Option<Timing>,
    started_at: DateTime<Utc>,
    next_probe: Option<DateTime<Utc>>,
    last_probe: Option<DateTime<Utc>>,
    status: HealthCheckStatus,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Timing {
    interval: Duration,
    timeout: Duration,
    retries: u32,
    start_period: Duration,
}

impl HealthMonitor {
    /// A monitor for a process started at `started_at`; off when `config` is absent or
    /// disabled.
    pub fn new(config: Option<&HealthCheckConfig>, started_at: DateTime<Utc>) -> Self {
        let seconds = |value: u32, default: u32| {
            Duration::from_secs(u64::from(if value == 0 { default } else { value }))
        };
        let timing = config.filter(|config| config.enabled).map(|config| Timing {
            interval: seconds(config.interval, DEFAULT_PROBE_SECONDS),
            timeout: seconds(config.timeout, DEFAULT_PROBE_SECONDS),
            retries: if config.retries == 0 {
                DEFAULT_RETRIES
            } else {
                config.retries
            },
            start_period: Duration::from_secs(u64::from(config.start_period)),
        });
        HealthMonitor {
            next_probe: timing.map(|timing| started_at + timing.interval),
            timing,
            started_at,
            last_probe: None,
            status: HealthCheckStatus::default(),
        }
    }

    /// When the next probe should run; `None` when health checks are off.
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
    /// the timeout or longer, whatever `passed` says. Ignored when health checks are off.
    pub fn record(
        &mut self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        passed: bool,
        output: &str,
    ) -> HealthState {
        let Some(timing) = self.timing else {
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
        let output = match outcome {
            ProbeOutcome::TimedOut => format!(
                "health check exceeded timeout ({}s)",
                timing.timeout.as_secs()
            ),
            _ => truncate(output, MAX_OUTPUT_BYTES).to_owned(),
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
        self.next_probe = Some(end + timing.interval);
        self.status.status
    }

    /// The Docker-style state (for `Application.healthCheck`).
    pub fn status(&self) -> &HealthCheckStatus {
        &self.status
    }

    /// Healthy, unhealthy, or unknown (starting, or checks off).
    pub fn health_status(&self) -> HealthStatus {
        match self.timing {
            Some(_) => health_status_of(self.status.status),
            None => HealthStatus::Unknown,
        }
    }

    /// Copies healthStatus and lastHealthCheck into the app's metrics.
    pub fn apply_to(&self, metrics: &mut ApplicationMetrics) {
        metrics.health_status = self.health_status();
        if self.last_probe.is_some() {
            metrics.last_health_check = self.last_probe;
        }
    }
}

fn truncate(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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
        assert!(log
            .iter()
            .all(|entry| entry.output.len() <= MAX_OUTPUT_BYTES));
        assert_eq!(log[0].output.len(), 4096);
        monitor.record(at(10), at(20), true, "slow");
        let last = monitor.status().log.last().cloned();
        assert_eq!(
            last.map(|entry| (entry.outcome, entry.output)),
            Some((
                ProbeOutcome::TimedOut,
                "health check exceeded timeout (5s)".to_owned()
            ))
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
