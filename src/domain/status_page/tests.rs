//! Status page figures: what is stored, availability, uptime, the response series and the
//! incident timeline, from hand-made sample sequences.

use chrono::TimeZone;

use super::*;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
        .single()
        .expect("valid")
}

fn minutes(count: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(count)
}

fn report(status: ApplicationStatus, health: HealthStatus) -> StatusReport {
    StatusReport {
        application_id: Uuid::nil(),
        status,
        health,
        response_ms: 12.0,
        request_count: 0,
        restart_count: 0,
        last_deployed: t0(),
    }
}

fn sample(at: i64, status: ApplicationStatus, health: HealthStatus) -> StatusSample {
    StatusSample {
        at: minutes(at),
        report: report(status, health),
    }
}

use ApplicationStatus::{Error, Running, Stopped};
use HealthStatus::{Healthy, Unhealthy, Unknown};

#[test]
fn what_is_stored_table() {
    let base = sample(0, Running, Healthy);
    let changed = |change: fn(&mut StatusSample)| {
        let mut next = sample(1, Running, Healthy);
        change(&mut next);
        next
    };
    let cases = [
        ("the first", None, sample(0, Running, Healthy), true),
        (
            "a minute later, unchanged",
            Some(&base),
            sample(1, Running, Healthy),
            false,
        ),
        (
            "five minutes later",
            Some(&base),
            sample(5, Running, Healthy),
            true,
        ),
        ("stopped", Some(&base), sample(1, Stopped, Healthy), true),
        (
            "unhealthy",
            Some(&base),
            sample(1, Running, Unhealthy),
            true,
        ),
        (
            "restarted",
            Some(&base),
            changed(|next| next.report.restart_count = 1),
            true,
        ),
        (
            "deployed",
            Some(&base),
            changed(|next| next.report.last_deployed = minutes(1)),
            true,
        ),
        (
            "only the response time moved",
            Some(&base),
            changed(|next| next.report.response_ms = 900.0),
            false,
        ),
    ];
    for (name, previous, next, expected) in cases {
        assert_eq!(should_store(previous, &next), expected, "{name}");
    }
}

#[test]
fn availability_table() {
    let now = minutes(10);
    let cases = [
        (
            "running, seen now",
            Some(sample(9, Running, Healthy)),
            Some(minutes(9)),
            Availability::Up,
        ),
        (
            "no health check",
            Some(sample(9, Running, Unknown)),
            Some(minutes(9)),
            Availability::Up,
        ),
        (
            "unhealthy",
            Some(sample(9, Running, Unhealthy)),
            Some(minutes(9)),
            Availability::Unhealthy,
        ),
        (
            "crashed",
            Some(sample(9, Error, Unknown)),
            Some(minutes(9)),
            Availability::Down(Error),
        ),
        (
            "no heartbeat for 4 min",
            Some(sample(5, Running, Healthy)),
            Some(minutes(6)),
            Availability::HostOffline {
                last_seen: Some(minutes(6)),
            },
        ),
        (
            "never reported",
            None,
            None,
            Availability::HostOffline { last_seen: None },
        ),
        (
            "online, never sampled",
            None,
            Some(minutes(9)),
            Availability::Down(Stopped),
        ),
    ];
    for (name, latest, heartbeat, expected) in cases {
        assert_eq!(
            availability(latest.as_ref(), heartbeat, now),
            expected,
            "{name}"
        );
    }
}

#[test]
fn uptime_table() {
    type Case<'a> = (&'a str, Vec<StatusSample>, i64, Option<f64>, i64);
    let cases: Vec<Case> = vec![
        ("nothing observed", vec![], 60, None, 0),
        (
            "up the whole hour, sampled every 5 min",
            (0..12).map(|n| sample(n * 5, Running, Healthy)).collect(),
            60,
            Some(100.0),
            3600,
        ),
        (
            "down for the second half hour",
            vec![
                sample(0, Running, Healthy),
                sample(30, Stopped, Unknown),
                sample(35, Stopped, Unknown),
                sample(40, Stopped, Unknown),
                sample(45, Stopped, Unknown),
                sample(50, Stopped, Unknown),
                sample(55, Stopped, Unknown),
            ],
            60,
            // The first sample covers only 6 min of its 30: the rest was not observed.
            Some(6.0 * 100.0 / 36.0),
            36 * 60,
        ),
        (
            "unhealthy counts as down",
            vec![sample(0, Running, Healthy), sample(5, Running, Unhealthy)],
            10,
            Some(50.0),
            600,
        ),
        (
            "a sample before the window counts from the window's start",
            vec![sample(-3, Running, Healthy), sample(2, Error, Unknown)],
            10,
            Some(2.0 * 100.0 / 8.0),
            8 * 60,
        ),
    ];
    for (name, samples, until, percent, observed) in cases {
        let now = minutes(until);
        let window = Duration::minutes(until.max(10));
        let got = uptime(&samples, now, window);
        assert_eq!(got.observed_seconds, observed, "{name}");
        match (got.percent, percent) {
            (Some(got), Some(expected)) => assert!((got - expected).abs() < 1e-9, "{name}: {got}"),
            (got, expected) => assert_eq!(got, expected, "{name}"),
        }
    }
}

#[test]
fn incidents_newest_first_table() {
    let mut deployed = sample(20, Running, Healthy);
    deployed.report.last_deployed = minutes(19);
    let mut restarted = sample(25, Running, Healthy);
    restarted.report.last_deployed = minutes(19);
    restarted.report.restart_count = 2;
    let samples = vec![
        sample(0, Running, Healthy),
        sample(5, Running, Unhealthy),
        sample(10, Running, Healthy),
        sample(15, Error, Unknown),
        deployed,
        restarted,
        {
            let mut later = sample(125, Running, Healthy);
            later.report.last_deployed = minutes(19);
            later.report.restart_count = 2;
            later
        },
    ];
    let timeline: Vec<(i64, IncidentKind, String)> = incidents(&samples)
        .into_iter()
        .map(|incident| {
            (
                (incident.at - t0()).num_minutes(),
                incident.kind,
                incident.detail,
            )
        })
        .collect();
    assert_eq!(
        timeline,
        vec![
            (
                125,
                IncidentKind::HostOffline,
                "no report for 1 h 40 min (the host browser was closed or offline)".to_owned()
            ),
            (25, IncidentKind::Restarted, "restarted 2 times".to_owned()),
            (
                20,
                IncidentKind::Recovered,
                "the app is running again".to_owned()
            ),
            (
                20,
                IncidentKind::Deployed,
                "a new release was deployed".to_owned()
            ),
            (
                15,
                IncidentKind::WentDown,
                "the app became error".to_owned()
            ),
            (
                10,
                IncidentKind::HealthyAgain,
                "its health check passes again".to_owned()
            ),
            (
                5,
                IncidentKind::BecameUnhealthy,
                "its health check started failing".to_owned()
            ),
        ]
    );
}

#[test]
fn response_series_only_while_running() {
    let samples = vec![
        sample(0, Running, Healthy),
        sample(5, Stopped, Unknown),
        sample(10, Running, Healthy),
    ];
    let series = response_series(&samples, minutes(10), Duration::minutes(8));
    assert_eq!(series, vec![(minutes(10).timestamp_millis(), 12.0)]);
}

#[test]
fn spans_table() {
    let cases = [
        (45, "45 s"),
        (60, "1 min"),
        (3600, "1 h"),
        (3600 + 20 * 60, "1 h 20 min"),
        (86400, "1 d"),
        (86400 * 3 + 3600 * 5, "3 d 5 h"),
        (-5, "0 s"),
    ];
    for (seconds, expected) in cases {
        assert_eq!(describe_span(Duration::seconds(seconds)), expected);
    }
}
