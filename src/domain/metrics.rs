//! Metrics windows: a rolling log buffer (at most 1000 entries per app, oldest dropped
//! first), performance history (24 h at 5-minute sampling: at most 288 snapshots), and
//! request figures over the last minute (rate per minute, average response time, error
//! percentage) plus uptime.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{
    ApplicationMetrics, ApplicationServerSettings, LogEntry, PerformanceSnapshot, SystemSample,
};

/// The seed's log budget per application.
pub const MAX_LOG_ENTRIES: usize = 1000;
/// The seed's sampling interval.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The seed's history retention.
pub const HISTORY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Snapshots in a full history: 24 h / 5 min.
pub const MAX_SNAPSHOTS: usize = 288;
/// The window of the request figures.
pub const REQUEST_WINDOW: Duration = Duration::from_secs(60);

/// Retention limits, from the settings but never above the seed's budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsLimits {
    pub max_log_entries: usize,
    pub sample_interval: Duration,
    pub retention: Duration,
}

impl Default for MetricsLimits {
    fn default() -> Self {
        MetricsLimits {
            max_log_entries: MAX_LOG_ENTRIES,
            sample_interval: SAMPLE_INTERVAL,
            retention: HISTORY_RETENTION,
        }
    }
}

impl MetricsLimits {
    /// Limits from the settings: at most 1000 log entries, at most 24 h of history, and a
    /// sampling interval of at least 5 minutes (so at most 288 snapshots).
    pub fn from_settings(settings: &ApplicationServerSettings) -> Self {
        let hours = u64::from(settings.metrics_retention_hours.clamp(1, 24));
        let interval = u64::from(settings.metrics_sample_interval_seconds);
        MetricsLimits {
            max_log_entries: (settings.max_log_entries as usize).min(MAX_LOG_ENTRIES),
            sample_interval: Duration::from_secs(interval.max(SAMPLE_INTERVAL.as_secs())),
            retention: Duration::from_secs(hours * 3600),
        }
    }

    /// Most snapshots kept: retention / interval.
    pub fn max_snapshots(&self) -> usize {
        (self.retention.as_secs() / self.sample_interval.as_secs().max(1)) as usize
    }
}

/// Appends `entry`, dropping the oldest entries beyond `capacity`.
pub fn push_log(logs: &mut Vec<LogEntry>, entry: LogEntry, capacity: usize) {
    logs.push(entry);
    let excess = logs.len().saturating_sub(capacity);
    logs.drain(..excess);
}

/// Appends a log entry to the app's rolling buffer.
pub fn record_log(metrics: &mut ApplicationMetrics, entry: LogEntry, limits: &MetricsLimits) {
    push_log(&mut metrics.recent_logs, entry, limits.max_log_entries);
}

/// A sample of a history kept at the sampling interval: an app's [`PerformanceSnapshot`] or
/// the VM's [`SystemSample`].
pub trait Sampled {
    /// When it was taken.
    fn taken_at(&self) -> DateTime<Utc>;
}

impl Sampled for PerformanceSnapshot {
    fn taken_at(&self) -> DateTime<Utc> {
        self.timestamp
    }
}

impl Sampled for SystemSample {
    fn taken_at(&self) -> DateTime<Utc> {
        self.timestamp
    }
}

/// True when a new snapshot is due at `now`.
pub fn snapshot_due<S: Sampled>(history: &[S], now: DateTime<Utc>, limits: &MetricsLimits) -> bool {
    history
        .last()
        .is_none_or(|last| now - last.taken_at() >= chrono_duration(limits.sample_interval))
}

/// Adds `snapshot` if one is due, then drops snapshots older than the retention and beyond
/// the budget. Returns whether it was added.
pub fn record_snapshot<S: Sampled>(
    history: &mut Vec<S>,
    snapshot: S,
    limits: &MetricsLimits,
) -> bool {
    let taken_at = snapshot.taken_at();
    if !snapshot_due(history, taken_at, limits) {
        return false;
    }
    let oldest_kept = taken_at - chrono_duration(limits.retention);
    history.push(snapshot);
    history.retain(|kept| kept.taken_at() > oldest_kept);
    let excess = history.len().saturating_sub(limits.max_snapshots());
    history.drain(..excess);
    true
}

/// A snapshot of the app's current figures.
pub fn take_snapshot(metrics: &ApplicationMetrics, now: DateTime<Utc>) -> PerformanceSnapshot {
    PerformanceSnapshot {
        timestamp: now,
        memory: metrics.memory_usage,
        cpu: metrics.cpu_usage,
        requests: metrics.request_rate,
        response_time: metrics.response_time,
    }
}

/// Refreshes uptime and request figures, and samples the history when due. Returns the
/// request figures (the p95 is not part of the seed's metrics).
pub fn refresh(
    metrics: &mut ApplicationMetrics,
    window: &mut RequestWindow,
    now: DateTime<Utc>,
    limits: &MetricsLimits,
) -> RequestFigures {
    metrics.uptime = uptime_seconds(metrics.start_time, now);
    let figures = window.figures(now);
    metrics.request_rate = figures.requests_per_minute;
    metrics.response_time = figures.average_response_ms;
    metrics.error_rate = figures.error_percent;
    let snapshot = take_snapshot(metrics, now);
    record_snapshot(&mut metrics.performance_history, snapshot, limits);
    figures
}

/// Whole seconds since `start_time` (0 when not running or when the clock went back).
pub fn uptime_seconds(start_time: Option<DateTime<Utc>>, now: DateTime<Utc>) -> u64 {
    start_time.map_or(0, |start| {
        u64::try_from((now - start).num_seconds()).unwrap_or(0)
    })
}

/// Request figures over the last minute.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RequestFigures {
    pub requests_per_minute: f64,
    pub average_response_ms: f64,
    /// 95th percentile of the response times (nearest rank).
    pub p95_response_ms: f64,
    pub error_percent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct SecondBucket {
    requests: u64,
    errors: u64,
    total_response_ms: f64,
}

/// Response times kept for the p95: the most recent this many of the window (at more than
/// this many requests a minute the p95 is of the latest ones).
pub const P95_SAMPLES: usize = 1000;

/// Requests of the last minute in per-second buckets, and the latest response times for the
/// p95 (bounded memory at any rate).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestWindow {
    buckets: BTreeMap<i64, SecondBucket>,
    /// `(second, response ms)`, oldest first, at most [`P95_SAMPLES`].
    recent: std::collections::VecDeque<(i64, f64)>,
}

impl RequestWindow {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request that ended at `at`; also adds it to the app's total.
    pub fn record(
        &mut self,
        metrics: &mut ApplicationMetrics,
        at: DateTime<Utc>,
        response_ms: f64,
        is_error: bool,
    ) {
        metrics.request_count += 1;
        let bucket = self.buckets.entry(at.timestamp()).or_default();
        bucket.requests += 1;
        bucket.errors += u64::from(is_error);
        bucket.total_response_ms += response_ms.max(0.0);
        if self.recent.len() == P95_SAMPLES {
            self.recent.pop_front();
        }
        self.recent
            .push_back((at.timestamp(), response_ms.max(0.0)));
        self.prune(at);
    }

    /// Figures over the minute before `now`.
    pub fn figures(&mut self, now: DateTime<Utc>) -> RequestFigures {
        self.prune(now);
        let (requests, errors, total_ms) = self.buckets.range(..=now.timestamp()).fold(
            (0u64, 0u64, 0f64),
            |(r, e, t), (_, bucket)| {
                (
                    r + bucket.requests,
                    e + bucket.errors,
                    t + bucket.total_response_ms,
                )
            },
        );
        if requests == 0 {
            return RequestFigures::default();
        }
        let mut times: Vec<f64> = self
            .recent
            .iter()
            .filter(|(second, _)| *second <= now.timestamp())
            .map(|(_, ms)| *ms)
            .collect();
        times.sort_by(f64::total_cmp);
        // Nearest rank: the smallest time that at least 95 % of the requests did not exceed.
        let rank = (times.len() * 95).div_ceil(100).max(1);
        RequestFigures {
            requests_per_minute: requests as f64,
            average_response_ms: total_ms / requests as f64,
            p95_response_ms: times.get(rank - 1).copied().unwrap_or_default(),
            error_percent: errors as f64 * 100.0 / requests as f64,
        }
    }

    /// Drops buckets that are a minute or more older than `now`.
    fn prune(&mut self, now: DateTime<Utc>) {
        let first_kept = now.timestamp() - REQUEST_WINDOW.as_secs() as i64 + 1;
        self.buckets = self.buckets.split_off(&first_kept);
        while self
            .recent
            .front()
            .is_some_and(|(second, _)| *second < first_kept)
        {
            self.recent.pop_front();
        }
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::now;
    use crate::model::LogLevel;

    fn at(seconds: i64) -> DateTime<Utc> {
        now() + chrono::Duration::seconds(seconds)
    }

    fn log(n: usize) -> LogEntry {
        LogEntry {
            timestamp: now(),
            level: LogLevel::Info,
            message: format!("line {n}"),
            ..LogEntry::default()
        }
    }

    #[test]
    fn log_buffer_table() {
        for (pushed, capacity, kept, first) in [
            (5, 1000, 5, 0),
            (1000, 1000, 1000, 0),
            (1001, 1000, 1000, 1),
            (2500, 1000, 1000, 1500),
            (3, 2, 2, 1),
        ] {
            let mut logs = Vec::new();
            for n in 0..pushed {
                push_log(&mut logs, log(n), capacity);
            }
            assert_eq!(logs.len(), kept);
            assert_eq!(logs[0].message, format!("line {first}"));
        }
        let mut metrics = ApplicationMetrics::default();
        for n in 0..1005 {
            record_log(&mut metrics, log(n), &MetricsLimits::default());
        }
        assert_eq!(metrics.recent_logs.len(), MAX_LOG_ENTRIES);
        assert_eq!(metrics.recent_logs[0].message, "line 5");
    }

    #[test]
    fn history_holds_24_hours_at_5_minutes() {
        let limits = MetricsLimits::default();
        assert_eq!(limits.max_snapshots(), MAX_SNAPSHOTS);
        let mut history = Vec::new();
        let mut accepted = 0;
        // Two days, offered every minute: only every fifth is due.
        for minute in 0..(48 * 60) {
            let snapshot = PerformanceSnapshot {
                timestamp: at(minute * 60),
                ..PerformanceSnapshot::default()
            };
            if record_snapshot(&mut history, snapshot, &limits) {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 48 * 12);
        assert_eq!(history.len(), MAX_SNAPSHOTS);
        let span = history[history.len() - 1].timestamp - history[0].timestamp;
        assert_eq!(span, chrono::Duration::minutes(5 * 287));
        // A gap longer than the retention leaves only the new snapshot.
        let late = PerformanceSnapshot {
            timestamp: at(10 * 24 * 3600),
            ..PerformanceSnapshot::default()
        };
        assert!(record_snapshot(&mut history, late, &limits));
        assert_eq!(history.len(), 1);
    }

    #[test]
    fn limits_from_settings_are_capped_by_the_seed() {
        let cases = [
            ((1000, 24, 300), (1000, 300, 24 * 3600, 288)),
            ((5000, 48, 60), (1000, 300, 24 * 3600, 288)),
            ((100, 1, 600), (100, 600, 3600, 6)),
            ((100, 0, 0), (100, 300, 3600, 12)),
        ];
        for ((logs, hours, interval), (max_logs, sample, retention, snapshots)) in cases {
            let settings = ApplicationServerSettings {
                max_log_entries: logs,
                metrics_retention_hours: hours,
                metrics_sample_interval_seconds: interval,
                ..ApplicationServerSettings::default()
            };
            let limits = MetricsLimits::from_settings(&settings);
            assert_eq!(limits.max_log_entries, max_logs);
            assert_eq!(limits.sample_interval.as_secs(), sample);
            assert_eq!(limits.retention.as_secs(), retention);
            assert_eq!(limits.max_snapshots(), snapshots);
        }
    }

    #[test]
    fn request_figures_over_the_last_minute() {
        let mut metrics = ApplicationMetrics::default();
        let mut window = RequestWindow::new();
        // 30 requests at t=0..30 s: 10 ms each, every third fails.
        for second in 0..30 {
            window.record(&mut metrics, at(second), 10.0, second % 3 == 0);
        }
        // 30 more at t=40..70 s: 30 ms each, none fail.
        for second in 40..70 {
            window.record(&mut metrics, at(second), 30.0, false);
        }
        assert_eq!(metrics.request_count, 60);
        let figures = window.figures(at(70));
        // The window (11..70] holds 19 + 30 requests.
        assert_eq!(figures.requests_per_minute, 49.0);
        let expected_ms = (19.0 * 10.0 + 30.0 * 30.0) / 49.0;
        assert!((figures.average_response_ms - expected_ms).abs() < 1e-9);
        let errors = (11..30).filter(|s| s % 3 == 0).count() as f64;
        assert!((figures.error_percent - errors * 100.0 / 49.0).abs() < 1e-9);
        // 19 of 49 took 10 ms, so the 95th percentile is 30 ms.
        assert_eq!(figures.p95_response_ms, 30.0);
        assert_eq!(window.figures(at(200)), RequestFigures::default());
    }

    #[test]
    fn p95_is_the_nearest_rank_of_the_latest_times() {
        // (response times, p95)
        let cases: &[(&[f64], f64)] = &[
            (&[5.0], 5.0),
            (&[1.0, 2.0], 2.0),
            (&[100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 100.0),
            (&[1.0; 19], 1.0),
        ];
        for (times, expected) in cases {
            let mut metrics = ApplicationMetrics::default();
            let mut window = RequestWindow::new();
            for ms in *times {
                window.record(&mut metrics, at(0), *ms, false);
            }
            assert_eq!(
                window.figures(at(1)).p95_response_ms,
                *expected,
                "{times:?}"
            );
        }
        // One slow request, then as many fast ones as are kept: the slow one falls out.
        let mut metrics = ApplicationMetrics::default();
        let mut window = RequestWindow::new();
        window.record(&mut metrics, at(0), 900.0, false);
        for _ in 0..P95_SAMPLES {
            window.record(&mut metrics, at(1), 1.0, false);
        }
        assert_eq!(window.figures(at(2)).p95_response_ms, 1.0);
        assert_eq!(window.recent.len(), P95_SAMPLES);
    }

    #[test]
    fn refresh_sets_uptime_figures_and_history() {
        let limits = MetricsLimits::default();
        let mut metrics = ApplicationMetrics {
            start_time: Some(now()),
            memory_usage: 64.0,
            cpu_usage: 12.5,
            ..ApplicationMetrics::default()
        };
        let mut window = RequestWindow::new();
        window.record(&mut metrics, at(100), 20.0, true);
        window.record(&mut metrics, at(110), 40.0, false);
        refresh(&mut metrics, &mut window, at(120), &limits);
        assert_eq!(metrics.uptime, 120);
        assert_eq!(metrics.request_rate, 2.0);
        assert_eq!(metrics.response_time, 30.0);
        assert_eq!(metrics.error_rate, 50.0);
        assert_eq!(metrics.performance_history.len(), 1);
        assert_eq!(
            metrics.performance_history[0],
            PerformanceSnapshot {
                timestamp: at(120),
                memory: 64.0,
                cpu: 12.5,
                requests: 2.0,
                response_time: 30.0
            }
        );
        refresh(&mut metrics, &mut window, at(180), &limits);
        assert_eq!(metrics.performance_history.len(), 1, "not due yet");
        assert_eq!(uptime_seconds(None, now()), 0);
        assert_eq!(uptime_seconds(Some(at(10)), now()), 0, "clock went back");
    }
}
