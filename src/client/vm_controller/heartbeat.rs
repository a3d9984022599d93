//! The monitor while the VM is ready: a heartbeat (`ping`) every
//! [`MONITOR_INTERVAL_MS`]; [`MAX_MISSED_HEARTBEATS`] misses in a row put the VM in error.
//! Each beat also samples the guest's resources (into the VM record's history when a sample
//! is due), and every [`WRITE_EVERY_BEATS`] beats the VM record is written.

use chrono::Utc;
use leptos::logging::warn;
use leptos::prelude::*;

use super::journal::WRITE_EVERY_BEATS;
use super::runtime::now_ms;
use super::{VmController, MAX_MISSED_HEARTBEATS, MONITOR_INTERVAL_MS};
use crate::client::vm::bridge;
use crate::model::WebVMState;

impl VmController {
    /// Heartbeat and resource sampling while ready, until the generation changes.
    pub(super) fn monitor(&self, generation: u64) {
        let controller = *self;
        self.spawn(async move {
            let mut missed = 0;
            let mut beats: u32 = 0;
            let mut first = true;
            loop {
                if !first {
                    bridge::sleep(MONITOR_INTERVAL_MS).await;
                }
                first = false;
                let Some(runtime) = controller.runtime() else {
                    return;
                };
                let still_current = || runtime.generation.get() == generation;
                if !still_current() || controller.state() != WebVMState::Ready {
                    return;
                }
                let Some(engine) = runtime.engine() else {
                    return;
                };
                let sent_at = now_ms();
                let beat = engine.ping().await;
                let round_trip_ms = (now_ms() - sent_at).max(0.0) as u64;
                if !still_current() {
                    return;
                }
                match beat {
                    Ok(()) => {
                        missed = 0;
                        controller
                            .status
                            .try_update(|status| status.last_heartbeat = Some(Utc::now()));
                    }
                    Err(error) => {
                        missed += 1;
                        warn!("VM heartbeat missed ({missed}): {error}");
                        if missed >= MAX_MISSED_HEARTBEATS {
                            runtime.next_generation();
                            controller.fail(format!("The VM stopped answering: {error}"));
                            return;
                        }
                        continue;
                    }
                }
                let mut sampled = None;
                if engine.capabilities().stats {
                    if let Ok(resources) = engine.stats().await {
                        if still_current() {
                            controller
                                .status
                                .try_update(|status| status.system_resources = resources.clone());
                            sampled = Some(resources);
                        }
                    }
                }
                controller.journal_beat(round_trip_ms, sampled.as_ref());
                beats = beats.wrapping_add(1);
                if beats % WRITE_EVERY_BEATS == 1 {
                    controller.persist_journal();
                }
            }
        });
    }
}
