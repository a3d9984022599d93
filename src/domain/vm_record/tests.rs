//! The VM record's budgets, its stored format and what a reload shows.

use chrono::Duration;

use super::*;
use crate::domain::metrics::MAX_SNAPSHOTS;
use crate::domain::testing::{id, now};

fn resources(memory_used: u64) -> SystemResources {
    SystemResources {
        memory_used,
        memory_total: 256,
        disk_used: 700,
        disk_total: 2048,
        cpu_usage: 12.5,
        process_count: 31,
    }
}

fn failure(message: &str) -> ErrorInfo {
    ErrorInfo {
        name: "VmError".into(),
        message: message.into(),
    }
}

#[test]
fn the_system_log_keeps_the_newest_1000_entries() {
    let mut record = VmJournal::default();
    for index in 0..1_250 {
        record.log(
            now() + Duration::seconds(index),
            LogLevel::Info,
            &format!("event {index}"),
        );
    }
    assert_eq!(record.system_logs.len(), MAX_SYSTEM_LOGS);
    assert_eq!(record.system_logs[0].message, "event 250");
    assert_eq!(record.system_logs[999].message, "event 1249");
    assert!(record
        .system_logs
        .iter()
        .all(|entry| entry.source == LogSource::Webvm));
}

#[test]
fn errors_set_the_last_error_and_a_bounded_history() {
    let mut record = VmJournal::default();
    let long = "x".repeat(MAX_MESSAGE_CHARS + 50);
    let cases = [
        ("boot", None, None, "no answer", "boot: no answer"),
        (
            "install nginx",
            Some(id("nginx")),
            None,
            "checksum mismatch",
            "install nginx: checksum mismatch",
        ),
    ];
    for (index, (operation, package, application, message, logged)) in cases.iter().enumerate() {
        let event = record.record_error(
            Uuid::from_u128(index as u128 + 1),
            now(),
            failure(message),
            ErrorContext {
                operation: (*operation).into(),
                package_id: package.clone(),
                application_id: *application,
            },
        );
        assert_eq!(record.last_error.as_ref(), Some(&event.error));
        assert_eq!(record.error_history.last(), Some(&event));
        assert_eq!(event.package_id, *package);
        let entry = record.system_logs.last().expect("logged");
        assert_eq!(
            (entry.level, entry.message.as_str()),
            (LogLevel::Error, *logged)
        );
    }
    for index in 0..(MAX_ERROR_HISTORY + 20) {
        record.record_error(
            Uuid::from_u128(1_000 + index as u128),
            now(),
            failure(&long),
            ErrorContext::default(),
        );
    }
    assert_eq!(record.error_history.len(), MAX_ERROR_HISTORY);
    assert_eq!(record.error_history[0].id, Uuid::from_u128(1_020));
    let kept = &record.error_history[0].error.message;
    assert_eq!(
        kept.chars().count(),
        MAX_MESSAGE_CHARS + 1,
        "cut with an ellipsis"
    );
    assert!(kept.ends_with('…'));
}

#[test]
fn resources_are_sampled_every_5_minutes_for_24_hours() {
    let mut record = VmJournal::default();
    let limits = MetricsLimits::default();
    assert!(
        !record.sample(&SystemResources::default(), now(), &limits),
        "nothing reported yet"
    );
    let mut taken = 0;
    // Two days of heartbeats every 5 s would be 34,560 offers; one a minute is enough here.
    for minute in 0..(48 * 60) {
        if record.sample(
            &resources(minute),
            now() + Duration::minutes(minute as i64),
            &limits,
        ) {
            taken += 1;
        }
    }
    assert_eq!(taken, 48 * 12);
    let history = &record.performance_metrics.history;
    assert_eq!(history.len(), MAX_SNAPSHOTS);
    assert_eq!(history[history.len() - 1].memory_used, 48 * 60 - 5);
}

#[test]
fn a_reload_shows_the_last_known_facts_with_nothing_running() {
    let status = WebVMStatus {
        state: WebVMState::Ready,
        load_progress: 100,
        boot_time: Some(now()),
        last_heartbeat: Some(now() + Duration::minutes(3)),
        installed_runtimes: vec![id("nginx")],
        running_apps: vec![Uuid::from_u128(7)],
        system_resources: resources(90),
        error_message: Some("old".into()),
    };
    let record = VmRecord::new(status.clone(), VmJournal::default());
    let shown = record.shown_before_ready();
    assert_eq!(shown.state, WebVMState::Unloaded);
    assert_eq!(shown.load_progress, 0);
    assert!(shown.running_apps.is_empty());
    assert_eq!(shown.error_message, None);
    assert_eq!(shown.installed_runtimes, status.installed_runtimes);
    assert_eq!(shown.system_resources, status.system_resources);
    assert_eq!(shown.last_heartbeat, status.last_heartbeat);
}

#[test]
fn the_stored_record_round_trips_and_other_formats_are_refused() {
    let mut record = VmJournal::default();
    record.booted(now(), 1_850, true);
    record.round_trip(12);
    record.sample(&resources(80), now(), &MetricsLimits::default());
    record.record_error(
        Uuid::from_u128(3),
        now(),
        failure("stopped answering"),
        ErrorContext {
            operation: "heartbeat".into(),
            ..ErrorContext::default()
        },
    );
    let record = VmRecord::new(WebVMStatus::default(), record);
    let text = serde_json::to_string(&record).expect("serializes");
    for field in [
        "\"schemaVersion\":1",
        "systemLogs",
        "performanceMetrics",
        "lastError",
        "errorHistory",
        "bootDuration",
    ] {
        assert!(text.contains(field), "{field} in {text}");
    }
    assert_eq!(VmRecord::from_json(&text), Ok(record));
    let refused = [
        (r#"{"status":{}}"#, "it has no schemaVersion"),
        (r#"{"schemaVersion":2}"#, "newer version"),
        (r#"{"schemaVersion":0}"#, "format 0 has no upgrade"),
    ];
    for (text, expected) in refused {
        let error = VmRecord::from_json(text).expect_err(text).to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
    // The budgets: a full record stays within a few hundred KB.
    let mut full = VmJournal::default();
    for index in 0..MAX_SYSTEM_LOGS {
        full.log(
            now(),
            LogLevel::Info,
            &format!("VM restored from a snapshot in {index} ms"),
        );
    }
    for minute in 0..(24 * 60) {
        full.sample(
            &resources(minute),
            now() + Duration::minutes(minute as i64),
            &MetricsLimits::default(),
        );
    }
    for index in 0..MAX_ERROR_HISTORY {
        full.record_error(
            Uuid::from_u128(index as u128),
            now(),
            failure("the VM stopped answering: timed out"),
            ErrorContext::default(),
        );
    }
    let bytes = serde_json::to_string(&full).expect("serializes").len();
    assert!(bytes < 400_000, "{bytes} bytes");
}

#[test]
fn what_the_page_recorded_before_the_stored_journal_was_read_follows_it() {
    let mut stored = VmJournal::default();
    stored.log(now(), LogLevel::Info, "VM booted in 60000 ms");
    stored.booted(now(), 60_000, false);
    stored.record_error(
        Uuid::from_u128(1),
        now(),
        failure("old"),
        ErrorContext::default(),
    );
    let mut early = VmJournal::default();
    early.log(
        now() + Duration::minutes(1),
        LogLevel::Warn,
        "a saved VM state was ignored",
    );
    let cases = [
        (early.clone(), Some("old"), Some(60_000)),
        (
            {
                let mut later = early.clone();
                later.booted(now(), 1_500, true);
                later.record_error(
                    Uuid::from_u128(2),
                    now(),
                    failure("new"),
                    ErrorContext::default(),
                );
                later
            },
            Some("new"),
            Some(1_500),
        ),
    ];
    for (later, last_error, boot) in cases {
        let merged = stored.clone().followed_by(later.clone());
        assert_eq!(
            merged.system_logs.len(),
            stored.system_logs.len() + later.system_logs.len()
        );
        assert_eq!(merged.system_logs.first(), stored.system_logs.first());
        assert_eq!(
            merged
                .last_error
                .as_ref()
                .map(|error| error.message.as_str()),
            last_error
        );
        assert_eq!(merged.performance_metrics.boot_duration, boot);
        assert_eq!(
            merged.error_history.len(),
            stored.error_history.len() + later.error_history.len()
        );
    }
}
