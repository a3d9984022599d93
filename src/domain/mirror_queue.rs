//! The server mirror's write queue (the seed's `PersistenceManager`): every change to the
//! application record is written to IndexedDB first, then queued here for the server, and
//! the queue itself is kept in IndexedDB, so a closed tab, an offline spell or a server
//! restart loses nothing. Pure: the clock is passed in.
//!
//! * **Coalesced and debounced.** One pending write per record: a newer change replaces the
//!   queued one and raises its revision, and waits [`DEBOUNCE`], so a burst of edits is one
//!   write.
//! * **Batched.** [`MirrorQueue::due`] hands out at most [`BATCH`] writes, and at most
//!   [`BATCH_BYTES`] of them, at a time: the browser sends them as one request, which the
//!   server's write quota counts once, so replaying a long queue is a few requests.
//! * **Retried with backoff.** A write the server could not take (unreachable, busy) is
//!   retried after 1 s, doubling to [`MAX_RETRY`]. A write it *refused* (the domain's rules)
//!   is held with the reasons until the record changes again: resending can't help.
//! * **Idempotent.** A save replaces by id and deleting a record the server lacks succeeds,
//!   so a write sent twice (its answer lost to a reload) does no harm; an answer settles a
//!   write only if it is for the revision now pending.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::model::ApplicationId;

/// The queue's record format in IndexedDB.
pub const QUEUE_SCHEMA_VERSION: u32 = 1;
/// A change waits this long for the next before it is sent.
pub const DEBOUNCE: Duration = Duration::milliseconds(400);
/// The most writes handed out at once.
pub const BATCH: usize = 100;
/// The most bytes of writes (as JSON) handed out at once; a single larger write goes alone.
pub const BATCH_BYTES: usize = 768 * 1024;
/// The first retry's delay; it doubles with each failure.
pub const FIRST_RETRY: Duration = Duration::seconds(1);
/// The longest delay between retries.
pub const MAX_RETRY: Duration = Duration::minutes(5);

pub use crate::model::MirrorWrite;

/// The queue's key for the workspace's settings: the nil id, which no application has
/// (application ids are random UUIDs), so the settings are one more record with one
/// pending write, coalesced and retried like the others.
pub const SETTINGS_RECORD: ApplicationId = uuid::Uuid::nil();

/// Where a pending write stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum WriteState {
    /// Waiting for its time (`not_before`).
    Waiting,
    /// Sent; no answer yet.
    InFlight,
    /// The server could not take it; retried at `not_before`.
    Retrying { reason: String },
    /// The server's rules refused it; held until the record changes.
    Refused { reasons: Vec<String> },
}

/// One record's pending write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingWrite {
    pub revision: u64,
    pub write: MirrorWrite,
    pub queued_at: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub attempts: u32,
    pub state: WriteState,
}

/// How the server answered one write.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Stored,
    /// Refused by the rules, with every reason.
    Refused(Vec<String>),
    /// Not reached (network, server down).
    Unreachable(String),
    /// Reached, but it failed or was busy.
    Failed(String),
}

/// The queue, as kept in IndexedDB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorQueue {
    pub schema_version: u32,
    /// The revision the next change gets (revisions only grow).
    pub next_revision: u64,
    pub pending: BTreeMap<ApplicationId, PendingWrite>,
    /// Set by an unreachable answer, cleared by any answer from the server.
    #[serde(default)]
    pub unreachable_since: Option<DateTime<Utc>>,
}

impl Default for MirrorQueue {
    fn default() -> Self {
        MirrorQueue {
            schema_version: QUEUE_SCHEMA_VERSION,
            next_revision: 1,
            pending: BTreeMap::new(),
            unreachable_since: None,
        }
    }
}

/// Why a stored queue could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the mirror queue was written by a newer version of this program (format {found}, this one reads up to {QUEUE_SCHEMA_VERSION})")]
    Newer { found: u32 },
    #[error("the stored mirror queue is unreadable: {0}")]
    Unreadable(String),
}

/// The whole queue at a glance, for the sync indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncSummary {
    Synced,
    Pending(usize),
    /// The server can't be reached; this many writes wait.
    Offline(usize),
    /// This many writes were refused (and others may wait).
    Refused {
        refused: usize,
        pending: usize,
    },
}

impl MirrorQueue {
    /// Reads the stored queue, upgrading older formats (there are none before 1 yet).
    pub fn from_json(text: &str) -> Result<Self, QueueError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|error| QueueError::Unreadable(error.to_string()))?;
        let version = value
            .get("schemaVersion")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if version > u64::from(QUEUE_SCHEMA_VERSION) {
            return Err(QueueError::Newer {
                found: u32::try_from(version).unwrap_or(u32::MAX),
            });
        }
        serde_json::from_value(value).map_err(|error| QueueError::Unreadable(error.to_string()))
    }

    /// Queues `write` for the record `id` at `now`, replacing what was pending for it.
    /// Returns the write's revision.
    pub fn enqueue(&mut self, id: ApplicationId, write: MirrorWrite, now: DateTime<Utc>) -> u64 {
        let revision = self.next_revision;
        self.next_revision += 1;
        let queued_at = self
            .pending
            .get(&id)
            .map_or(now, |previous| previous.queued_at);
        self.pending.insert(
            id,
            PendingWrite {
                revision,
                write,
                queued_at,
                not_before: now + DEBOUNCE,
                attempts: 0,
                state: WriteState::Waiting,
            },
        );
        revision
    }

    /// The writes whose time has come, oldest first, at most [`BATCH`] of them and
    /// [`BATCH_BYTES`] of JSON (always at least one when any is due); each is marked in
    /// flight.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<(ApplicationId, u64, MirrorWrite)> {
        let mut ready: Vec<(&ApplicationId, &PendingWrite)> = self
            .pending
            .iter()
            .filter(|(_, write)| {
                matches!(
                    write.state,
                    WriteState::Waiting | WriteState::Retrying { .. }
                ) && write.not_before <= now
            })
            .collect();
        ready.sort_by_key(|(id, write)| (write.queued_at, **id));
        let mut chosen: Vec<ApplicationId> = Vec::new();
        let mut bytes = 0;
        for (id, pending) in ready.into_iter().take(BATCH) {
            let size = write_size(&pending.write);
            if !chosen.is_empty() && bytes + size > BATCH_BYTES {
                break;
            }
            bytes += size;
            chosen.push(*id);
        }
        chosen
            .into_iter()
            .filter_map(|id| {
                let write = self.pending.get_mut(&id)?;
                write.state = WriteState::InFlight;
                Some((id, write.revision, write.write.clone()))
            })
            .collect()
    }

    /// Applies the server's answer to the write of `id` at `revision` (an answer for an
    /// older revision only says the server is reachable).
    pub fn settle(
        &mut self,
        id: ApplicationId,
        revision: u64,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) {
        match &outcome {
            Outcome::Unreachable(_) => {
                self.unreachable_since.get_or_insert(now);
            }
            _ => self.unreachable_since = None,
        }
        let Some(write) = self.pending.get_mut(&id) else {
            return;
        };
        if write.revision != revision {
            return;
        }
        match outcome {
            Outcome::Stored => {
                self.pending.remove(&id);
            }
            Outcome::Refused(reasons) => write.state = WriteState::Refused { reasons },
            Outcome::Unreachable(reason) | Outcome::Failed(reason) => {
                write.attempts += 1;
                write.not_before = now + retry_delay(write.attempts);
                write.state = WriteState::Retrying { reason };
            }
        }
    }

    /// After a reload: writes that were in flight lost their answer, so they are sent again
    /// (writes are idempotent).
    pub fn resume(&mut self, now: DateTime<Utc>) {
        for write in self.pending.values_mut() {
            if write.state == WriteState::InFlight {
                write.state = WriteState::Waiting;
                write.not_before = now;
            }
        }
    }

    /// When the next write falls due, if any waits.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.pending
            .values()
            .filter(|write| {
                matches!(
                    write.state,
                    WriteState::Waiting | WriteState::Retrying { .. }
                )
            })
            .map(|write| write.not_before)
            .min()
    }

    /// The queue at a glance.
    pub fn summary(&self) -> SyncSummary {
        let refused = self
            .pending
            .values()
            .filter(|write| matches!(write.state, WriteState::Refused { .. }))
            .count();
        let pending = self.pending.len() - refused;
        match (refused, pending, self.unreachable_since) {
            (0, 0, _) => SyncSummary::Synced,
            (0, pending, Some(_)) => SyncSummary::Offline(pending),
            (0, pending, None) => SyncSummary::Pending(pending),
            (refused, pending, _) => SyncSummary::Refused { refused, pending },
        }
    }
}

/// How many bytes `write` takes as JSON.
fn write_size(write: &MirrorWrite) -> usize {
    serde_json::to_vec(write).map_or(0, |json| json.len())
}

/// The delay before retry number `attempts` (1 s, 2 s, 4 s … at most [`MAX_RETRY`]).
pub fn retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(20);
    let delay = FIRST_RETRY * 2i32.pow(doublings);
    delay.min(MAX_RETRY)
}

#[cfg(test)]
mod tests;
