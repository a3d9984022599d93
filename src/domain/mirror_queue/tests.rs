//! The mirror queue: coalescing, debounce, batches, answers by revision, backoff, refusals,
//! the reload, the summary, replaying a thousand changes, and the stored format.

use chrono::TimeZone;
use uuid::Uuid;

use super::*;
use crate::domain::testing::application;

fn t(ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
        .single()
        .expect("valid")
        + Duration::milliseconds(ms)
}

fn save(name: &str) -> MirrorWrite {
    MirrorWrite::Save {
        application: Box::new(application(name)),
    }
}

fn id(n: u128) -> ApplicationId {
    Uuid::from_u128(n)
}

#[test]
fn changes_coalesce_and_wait_for_the_debounce() {
    let mut queue = MirrorQueue::default();
    let first = queue.enqueue(id(1), save("blog"), t(0));
    let second = queue.enqueue(id(1), save("blog-2"), t(100));
    assert!(second > first);
    assert_eq!(queue.pending.len(), 1, "one write per record");
    assert!(
        queue.due(t(300)).is_empty(),
        "still within the debounce of the last change"
    );
    let due = queue.due(t(500));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].1, second, "the latest revision is sent");
    assert!(
        queue.due(t(600)).is_empty(),
        "in flight: not handed out twice"
    );
}

#[test]
fn answers_table() {
    type Case<'a> = (&'a str, Outcome, bool, Option<WriteState>, SyncSummary);
    let cases: Vec<Case> = vec![
        ("stored", Outcome::Stored, true, None, SyncSummary::Synced),
        (
            "refused",
            Outcome::Refused(vec!["port 8000 is taken".into()]),
            true,
            Some(WriteState::Refused {
                reasons: vec!["port 8000 is taken".into()],
            }),
            SyncSummary::Refused {
                refused: 1,
                pending: 0,
            },
        ),
        (
            "unreachable",
            Outcome::Unreachable("offline".into()),
            true,
            Some(WriteState::Retrying {
                reason: "offline".into(),
            }),
            SyncSummary::Offline(1),
        ),
        (
            "busy",
            Outcome::Failed("busy".into()),
            true,
            Some(WriteState::Retrying {
                reason: "busy".into(),
            }),
            SyncSummary::Pending(1),
        ),
        (
            "an answer for an older revision settles nothing",
            Outcome::Stored,
            false,
            Some(WriteState::InFlight),
            SyncSummary::Pending(1),
        ),
    ];
    for (name, outcome, current, state, summary) in cases {
        let mut queue = MirrorQueue::default();
        let revision = queue.enqueue(id(1), save("blog"), t(0));
        queue.due(t(1000));
        let answered = if current { revision } else { revision - 1 };
        queue.settle(id(1), answered, outcome, t(1000));
        assert_eq!(
            queue.pending.get(&id(1)).map(|w| w.state.clone()),
            state,
            "{name}"
        );
        assert_eq!(queue.summary(), summary, "{name}");
    }
}

#[test]
fn a_change_during_flight_is_sent_after_it() {
    let mut queue = MirrorQueue::default();
    let first = queue.enqueue(id(1), save("blog"), t(0));
    queue.due(t(1000));
    let second = queue.enqueue(id(1), save("blog-renamed"), t(1100));
    queue.settle(id(1), first, Outcome::Stored, t(1200));
    assert_eq!(
        queue.pending[&id(1)].revision,
        second,
        "the newer change stays"
    );
    let due = queue.due(t(2000));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].1, second);
}

#[test]
fn retries_back_off_to_five_minutes() {
    let delays: Vec<i64> = (1..=12).map(|n| retry_delay(n).num_seconds()).collect();
    assert_eq!(
        delays,
        vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    );
    let mut queue = MirrorQueue::default();
    let revision = queue.enqueue(id(1), save("blog"), t(0));
    queue.due(t(1000));
    queue.settle(
        id(1),
        revision,
        Outcome::Unreachable("down".into()),
        t(1000),
    );
    assert!(queue.due(t(1500)).is_empty());
    assert_eq!(queue.next_due(), Some(t(2000)));
    assert_eq!(queue.due(t(2000)).len(), 1);
}

#[test]
fn a_reload_sends_in_flight_writes_again() {
    let mut queue = MirrorQueue::default();
    queue.enqueue(id(1), save("blog"), t(0));
    queue.due(t(1000));
    let stored = serde_json::to_string(&queue).expect("serializes");
    let mut reloaded = MirrorQueue::from_json(&stored).expect("reads");
    reloaded.resume(t(5000));
    assert_eq!(reloaded.due(t(5000)).len(), 1);
}

#[test]
fn batches_are_oldest_first_and_bounded() {
    let mut queue = MirrorQueue::default();
    for n in 0..(BATCH as u128 + 5) {
        queue.enqueue(
            id(n),
            MirrorWrite::Delete {
                name: format!("app-{n}"),
            },
            t(n as i64),
        );
    }
    let first = queue.due(t(10_000));
    assert_eq!(first.len(), BATCH);
    assert_eq!(first[0].0, id(0));
    assert_eq!(queue.due(t(10_000)).len(), 5);
}

#[test]
fn batches_stay_within_their_byte_budget_and_a_large_write_goes_alone() {
    // Deletes whose names make each write about a quarter of the budget.
    let quarter = |n: u128| MirrorWrite::Delete {
        name: format!("{n}{}", "x".repeat(BATCH_BYTES / 4 - 40)),
    };
    let huge = MirrorWrite::Delete {
        name: "y".repeat(BATCH_BYTES * 2),
    };
    let mut queue = MirrorQueue::default();
    queue.enqueue(id(0), huge, t(0));
    for n in 1..=5u128 {
        queue.enqueue(id(n), quarter(n), t(n as i64));
    }
    let batches: Vec<Vec<ApplicationId>> = (0..3)
        .map(|_| {
            queue
                .due(t(10_000))
                .into_iter()
                .map(|(record, _, _)| record)
                .collect()
        })
        .collect();
    assert_eq!(batches[0], vec![id(0)], "the oversized write goes alone");
    assert_eq!(batches[1], vec![id(1), id(2), id(3), id(4)]);
    assert_eq!(batches[2], vec![id(5)]);
}

#[test]
fn a_thousand_queued_changes_replay_to_an_empty_queue() {
    let mut queue = MirrorQueue::default();
    for n in 0..1000u128 {
        queue.enqueue(id(n % 400), save("blog"), t(n as i64));
    }
    assert_eq!(queue.pending.len(), 400, "coalesced per record");
    let mut sent = 0;
    let mut batches = 0;
    let mut now = 5000;
    while let Some(next) = queue.next_due() {
        now = now.max((next - t(0)).num_milliseconds());
        batches += 1;
        for (record, revision, _) in queue.due(t(now)) {
            queue.settle(record, revision, Outcome::Stored, t(now));
            sent += 1;
        }
    }
    assert_eq!(sent, 400);
    assert_eq!(queue.summary(), SyncSummary::Synced);
    assert!(
        batches <= 400_usize.div_ceil(BATCH) + 1,
        "{batches} batches"
    );
}

#[test]
fn stored_format_table() {
    let cases = [
        (
            r#"{"schemaVersion":1,"nextRevision":3,"pending":{},"unreachableSince":null}"#,
            Ok(()),
        ),
        (
            r#"{"schemaVersion":2,"nextRevision":3,"pending":{}}"#,
            Err("newer version"),
        ),
        ("{", Err("unreadable")),
    ];
    for (text, expected) in cases {
        match (MirrorQueue::from_json(text), expected) {
            (Ok(_), Ok(())) => {}
            (Err(error), Err(fragment)) => assert!(error.to_string().contains(fragment), "{error}"),
            (got, expected) => panic!("{text}: {got:?} vs {expected:?}"),
        }
    }
}
