//! What a public status page says about one application, from the status samples the VM's
//! tab mirrors to the server: availability now (up, unhealthy, down, or the host browser
//! offline), uptime over 24 h, 7 d and 30 d, the response-time series and the incident
//! timeline (went down, recovered, unhealthy, healthy again, restarted, deployed).
//!
//! The app runs in a browser tab, so "the host browser is offline" (no heartbeat for
//! [`OFFLINE_AFTER`]) is told apart from "the app is down" (the heartbeat says so). Uptime is
//! the share of the *observed* time (the time covered by samples) in which the app ran and
//! was not unhealthy; the page also says how much of the window was observed.
//!
//! Storage stays small: a sample is stored when something changed, or else once every
//! [`SAMPLE_EVERY`] (the seed's 5-minute sampling); samples older than [`RETENTION`] go.

use chrono::{DateTime, Duration, Utc};

pub use crate::model::StatusReport;
use crate::model::{ApplicationStatus, HealthStatus};

/// How often the VM's tab reports (its heartbeat).
pub const REPORT_EVERY: Duration = Duration::seconds(60);
/// No report for this long: the host browser is offline (three missed heartbeats).
pub const OFFLINE_AFTER: Duration = Duration::seconds(180);
/// A sample is stored at least this often while nothing changes.
pub const SAMPLE_EVERY: Duration = Duration::seconds(300);
/// A sample speaks for at most this long after it; a longer gap is time not observed.
pub const SAMPLE_COVERS: Duration = Duration::seconds(360);
/// Samples are kept this long (the longest uptime window).
pub const RETENTION: Duration = Duration::days(30);
/// The uptime windows a page shows.
pub const UPTIME_WINDOWS: [(&str, Duration); 3] = [
    ("24 h", Duration::hours(24)),
    ("7 d", Duration::days(7)),
    ("30 d", Duration::days(30)),
];
/// Incidents shown, newest first.
pub const INCIDENTS_SHOWN: usize = 20;

/// One stored sample: a report and when the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusSample {
    pub at: DateTime<Utc>,
    pub report: StatusReport,
}

/// Whether `next` is stored after `previous` (the latest stored sample of the app): a
/// change of status, health, restarts or deploy, or [`SAMPLE_EVERY`] since it.
pub fn should_store(previous: Option<&StatusSample>, next: &StatusSample) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    let (before, now) = (&previous.report, &next.report);
    before.status != now.status
        || before.health != now.health
        || before.restart_count != now.restart_count
        || before.last_deployed != now.last_deployed
        || next.at - previous.at >= SAMPLE_EVERY
}

/// Whether a sample counts as up: running and not unhealthy.
fn is_up(report: &StatusReport) -> bool {
    report.status == ApplicationStatus::Running && report.health != HealthStatus::Unhealthy
}

/// The application's state now, as the page says it.
#[derive(Debug, Clone, PartialEq)]
pub enum Availability {
    /// Running and healthy (or without a health check).
    Up,
    /// Running, but its health check fails.
    Unhealthy,
    /// The host browser reports it is not running (with its status there).
    Down(ApplicationStatus),
    /// No heartbeat for [`OFFLINE_AFTER`]: the browser that runs it is closed or offline.
    HostOffline { last_seen: Option<DateTime<Utc>> },
}

impl Availability {
    /// Words for the page.
    pub fn describe(&self) -> String {
        match self {
            Availability::Up => "The app is running and answering.".to_owned(),
            Availability::Unhealthy => "Degraded: the health check fails".to_owned(),
            Availability::Down(status) => format!("Down: the app is {status}"),
            Availability::HostOffline { .. } => {
                "The host browser is offline: the app can't be reached until it is back".to_owned()
            }
        }
    }
}

/// The state now, from the latest sample and the workspace's last heartbeat.
pub fn availability(
    latest: Option<&StatusSample>,
    last_heartbeat: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Availability {
    let online = last_heartbeat.is_some_and(|at| now - at < OFFLINE_AFTER);
    match latest {
        _ if !online => Availability::HostOffline {
            last_seen: last_heartbeat,
        },
        None => Availability::Down(ApplicationStatus::Stopped),
        Some(sample) if is_up(&sample.report) => Availability::Up,
        Some(sample) if sample.report.status == ApplicationStatus::Running => {
            Availability::Unhealthy
        }
        Some(sample) => Availability::Down(sample.report.status),
    }
}

/// Uptime over a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uptime {
    /// Percent of the observed time the app was up; `None` when nothing was observed.
    pub percent: Option<f64>,
    /// Seconds of the window the samples cover.
    pub observed_seconds: i64,
    pub window_seconds: i64,
}

/// Uptime over `window` before `now`. `samples` are oldest first; each speaks for the time
/// until the next one, at most [`SAMPLE_COVERS`] (and not past `now`).
pub fn uptime(samples: &[StatusSample], now: DateTime<Utc>, window: Duration) -> Uptime {
    let start = now - window;
    let mut observed = Duration::zero();
    let mut up = Duration::zero();
    for (index, sample) in samples.iter().enumerate() {
        let covers_until = (sample.at + SAMPLE_COVERS).min(now);
        let until = samples
            .get(index + 1)
            .map_or(covers_until, |next| next.at.min(covers_until));
        let from = sample.at.max(start);
        if until <= from {
            continue;
        }
        let span = until - from;
        observed += span;
        if is_up(&sample.report) {
            up += span;
        }
    }
    let observed_seconds = observed.num_seconds();
    Uptime {
        percent: (observed_seconds > 0)
            .then(|| up.num_milliseconds() as f64 * 100.0 / observed.num_milliseconds() as f64),
        observed_seconds,
        window_seconds: window.num_seconds(),
    }
}

/// Response times over `window` before `now`, as (time in ms since the epoch, ms) points,
/// only while the app ran.
pub fn response_series(
    samples: &[StatusSample],
    now: DateTime<Utc>,
    window: Duration,
) -> Vec<(i64, f64)> {
    samples
        .iter()
        .filter(|sample| sample.at >= now - window)
        .filter(|sample| sample.report.status == ApplicationStatus::Running)
        .map(|sample| (sample.at.timestamp_millis(), sample.report.response_ms))
        .collect()
}

/// What happened to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentKind {
    WentDown,
    Recovered,
    BecameUnhealthy,
    HealthyAgain,
    Restarted,
    Deployed,
    /// The samples stop for longer than [`SAMPLE_COVERS`]: the host browser was away.
    HostOffline,
}

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub at: DateTime<Utc>,
    pub kind: IncidentKind,
    pub detail: String,
}

/// The timeline, newest first (at most [`INCIDENTS_SHOWN`]), from consecutive samples.
pub fn incidents(samples: &[StatusSample]) -> Vec<Incident> {
    let mut timeline = Vec::new();
    for pair in samples.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let (was, now) = (&before.report, &after.report);
        let at = after.at;
        let mut push = |kind, detail: String| timeline.push(Incident { at, kind, detail });
        if after.at - before.at > SAMPLE_COVERS {
            push(
                IncidentKind::HostOffline,
                format!(
                    "no report for {} (the host browser was closed or offline)",
                    describe_span(after.at - before.at)
                ),
            );
        }
        if now.last_deployed != was.last_deployed {
            push(
                IncidentKind::Deployed,
                "a new release was deployed".to_owned(),
            );
        }
        if now.restart_count > was.restart_count {
            let times = now.restart_count - was.restart_count;
            push(
                IncidentKind::Restarted,
                if times == 1 {
                    "restarted after it stopped".to_owned()
                } else {
                    format!("restarted {times} times")
                },
            );
        }
        let (was_running, is_running) = (
            was.status == ApplicationStatus::Running,
            now.status == ApplicationStatus::Running,
        );
        if was_running && !is_running {
            push(
                IncidentKind::WentDown,
                format!("the app became {}", now.status),
            );
        } else if !was_running && is_running {
            push(
                IncidentKind::Recovered,
                "the app is running again".to_owned(),
            );
        } else if is_running {
            match (was.health, now.health) {
                (HealthStatus::Unhealthy, HealthStatus::Unhealthy) => {}
                (_, HealthStatus::Unhealthy) => push(
                    IncidentKind::BecameUnhealthy,
                    "its health check started failing".to_owned(),
                ),
                (HealthStatus::Unhealthy, _) => push(
                    IncidentKind::HealthyAgain,
                    "its health check passes again".to_owned(),
                ),
                _ => {}
            }
        }
    }
    timeline.reverse();
    timeline.truncate(INCIDENTS_SHOWN);
    timeline
}

/// "3 h 20 min", "12 min", "45 s".
pub fn describe_span(span: Duration) -> String {
    let seconds = span.num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86400 => match (seconds % 3600) / 60 {
            0 => format!("{} h", seconds / 3600),
            minutes => format!("{} h {minutes} min", seconds / 3600),
        },
        _ => match (seconds % 86400) / 3600 {
            0 => format!("{} d", seconds / 86400),
            hours => format!("{} d {hours} h", seconds / 86400),
        },
    }
}

#[cfg(test)]
mod tests;
