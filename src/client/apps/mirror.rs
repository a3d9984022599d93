//! The server mirror's writes, through the queue of `domain::mirror_queue`: every change is
//! queued after the record is in IndexedDB, the queue is kept in IndexedDB too, and one loop
//! sends what is due (debounced, in batches, with backoff) and settles each answer by its
//! revision. A reload resumes the queue, so nothing queued is lost.

use chrono::Utc;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::record::{record_get, record_put};
use super::{AppManager, MirrorFailure};
use crate::client::vm::bridge::{js_message, sleep};
use crate::domain::mirror_queue::{MirrorQueue, MirrorWrite, Outcome, QueueError};
use crate::model::{ApplicationId, MirrorAnswer, MirrorEntry};

/// The IndexedDB key of the queue.
pub(super) const QUEUE_KEY: &str = "mirror-queue";
/// How often the loop looks for due writes.
const POLL_MS: u64 = 250;

impl AppManager {
    /// Reads the stored queue (resuming writes whose answers a reload lost), then sends
    /// what falls due, for as long as the page lives.
    pub(super) fn run_mirror(&self) {
        let manager = *self;
        spawn_local(async move {
            match record_get(QUEUE_KEY).await.map(|value| value.as_string()) {
                Ok(Some(text)) => match MirrorQueue::from_json(&text) {
                    Ok(mut stored) => {
                        stored.resume(Utc::now());
                        // Changes queued while it was being read go after the stored ones.
                        manager.queue.try_update(|queue| {
                            let fresh = std::mem::replace(queue, stored);
                            for (id, write) in fresh.pending {
                                queue.enqueue(id, write.write, Utc::now());
                            }
                        });
                    }
                    Err(error @ QueueError::Newer { .. }) => {
                        manager.notice.try_set(Some(format!(
                            "{error}; changes made here are still sent to the server."
                        )));
                    }
                    Err(error) => {
                        leptos::logging::warn!("webvm: {error}; starting an empty mirror queue");
                    }
                },
                Ok(None) => {}
                Err(error) => leptos::logging::warn!(
                    "webvm: the mirror queue could not be read: {}",
                    js_message(&error)
                ),
            }
            // After a batch is answered the queue is looked at again at once: a long queue
            // (an import, a reconnection) goes out batch after batch, not one per poll.
            let mut just_sent = false;
            loop {
                if !just_sent {
                    sleep(POLL_MS).await;
                }
                just_sent = false;
                let now = Utc::now();
                let ready = manager
                    .queue
                    .try_with_untracked(|queue| queue.next_due().is_some_and(|at| at <= now));
                match ready {
                    None => return,
                    Some(false) => continue,
                    Some(true) => {}
                }
                // Marked in flight in memory only: a reload sends in-flight writes again
                // anyway (`resume`), so the stored queue needs no copy of that mark.
                let Some(due) = manager.queue.try_update(|queue| queue.due(now)) else {
                    return;
                };
                let entries: Vec<MirrorEntry> = due
                    .iter()
                    .map(|(id, _, write)| MirrorEntry {
                        id: *id,
                        write: write.clone(),
                    })
                    .collect();
                let answer = manager.server.get_value().apply_writes(entries).await;
                let outcomes = outcomes_of(answer, due.len());
                let now = Utc::now();
                manager.queue.try_update(|queue| {
                    for ((id, revision, _), outcome) in due.into_iter().zip(outcomes) {
                        queue.settle(id, revision, outcome, now);
                    }
                });
                just_sent = true;
                manager.persist_queue().await;
            }
        });
    }

    /// Queues writes (each for its record) and keeps the queue in IndexedDB: one update and
    /// one stored copy of the queue however many writes there are (an import queues one per
    /// application).
    pub(super) fn enqueue_mirror(
        &self,
        writes: impl IntoIterator<Item = (ApplicationId, MirrorWrite)>,
    ) {
        self.queue.try_update(|queue| {
            let now = Utc::now();
            for (id, write) in writes {
                queue.enqueue(id, write, now);
            }
        });
        let manager = *self;
        spawn_local(async move { manager.persist_queue().await });
    }

    /// Writes the queue as it is now to IndexedDB (one write at a time, each of the latest
    /// queue, like the record).
    async fn persist_queue(&self) {
        let lock = self.writes.get_value();
        let _turn = lock.lock().await;
        let Some(Ok(text)) = self.queue.try_with_untracked(serde_json::to_string) else {
            return;
        };
        if let Err(error) = record_put(QUEUE_KEY, &text).await {
            leptos::logging::warn!(
                "webvm: the mirror queue could not be stored: {}",
                js_message(&error)
            );
        }
    }
}

/// Each write's outcome from the server's answer to its batch: its own answer, or, when the
/// whole request failed, that failure for every write.
fn outcomes_of(answer: Result<Vec<MirrorAnswer>, MirrorFailure>, writes: usize) -> Vec<Outcome> {
    match answer {
        Ok(answers) => {
            let mut outcomes: Vec<Outcome> = answers
                .into_iter()
                .take(writes)
                .map(|answer| match answer {
                    MirrorAnswer::Stored => Outcome::Stored,
                    MirrorAnswer::Refused { reasons } => Outcome::Refused(reasons),
                    MirrorAnswer::Failed { reason } => Outcome::Failed(reason),
                })
                .collect();
            // An answer short of the batch leaves the rest to be sent again.
            outcomes.resize(
                writes,
                Outcome::Failed("the server did not answer this write".to_string()),
            );
            outcomes
        }
        Err(failure) => {
            let outcome = match failure {
                MirrorFailure::Refused(reasons) => Outcome::Refused(reasons),
                MirrorFailure::Unreachable(reason) => Outcome::Unreachable(reason),
                MirrorFailure::Failed(reason) => Outcome::Failed(reason),
            };
            vec![outcome; writes]
        }
    }
}
