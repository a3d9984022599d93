//! Samples each running app's memory, CPU and disk in the guest (one command for all of
//! them, read by `domain::app_usage`) into its metrics, which the history then samples.

use leptos::prelude::*;

use crate::client::apps::{AppManager, LIVE_SAMPLES};
use crate::client::vm::{bridge, guest_env_pairs, ExecCommand};
use crate::domain::app_usage::{app_usage, parse_usage, usage_script};
use crate::domain::metrics::take_snapshot;
use crate::model::{ApplicationId, WebVMState};

/// Every how many usage samples the deployment folders are measured too (`du` walks them).
const DISK_EVERY: u64 = 4;
/// A sample that takes longer than this is given up (the VM is busy; the next one tries).
const SAMPLE_TIMEOUT_MS: u64 = 10_000;

impl AppManager {
    /// One sample of the running apps' usage, written into their metrics.
    pub(super) async fn sample_usage(&self) {
        if self.vm.state() != WebVMState::Ready {
            return;
        }
        let targets: Vec<(ApplicationId, u32, String)> = self.book.with_untracked(|book| {
            book.running()
                .into_iter()
                .filter_map(|id| {
                    let process = book.processes.get(&id)?;
                    let app = book.applications.get(&id)?;
                    Some((id, process.pid, app.deployment.deployment_path.clone()))
                })
                .collect()
        });
        if targets.is_empty() {
            return;
        }
        let runs = self.runs();
        let count = {
            let mut runs = runs.borrow_mut();
            runs.usage_samples += 1;
            runs.usage_samples
        };
        let with_disk = count % DISK_EVERY == 1;
        let script = usage_script(
            targets
                .iter()
                .filter(|_| with_disk)
                .map(|(_, _, folder)| folder.as_str()),
        );
        let command = ExecCommand {
            command: "sh".to_owned(),
            args: vec!["-c".to_owned(), script],
            env: guest_env_pairs(),
            cwd: None,
            timeout_ms: Some(SAMPLE_TIMEOUT_MS),
        };
        let output = match self.vm.exec(command).await {
            Ok(result) if result.status.success() => result.stdout,
            Ok(_) | Err(_) => return,
        };
        let sample = parse_usage(&String::from_utf8_lossy(&output));
        let now_ms = bridge::now_ms();
        let now = chrono::Utc::now();
        let mut live = Vec::with_capacity(targets.len());
        let mut runs = runs.borrow_mut();
        self.book.try_update(|book| {
            for (id, pid, folder) in &targets {
                let Some(app) = book.applications.get_mut(id) else {
                    continue;
                };
                let previous = runs.usage.get(id).copied();
                match app_usage(&sample, *pid, folder, now_ms, previous) {
                    Some((usage, totals)) => {
                        app.metrics.memory_usage = usage.memory_mb;
                        app.metrics.cpu_usage = usage.cpu_percent;
                        if let Some(disk) = usage.disk_mb {
                            app.metrics.disk_usage = disk;
                        }
                        runs.usage.insert(*id, (totals, now_ms));
                        live.push((*id, take_snapshot(&app.metrics, now)));
                    }
                    None => {
                        runs.usage.remove(id);
                    }
                }
            }
        });
        drop(runs);
        for (id, snapshot) in live {
            self.set_notes(id, |notes| {
                if notes.live.len() == LIVE_SAMPLES {
                    notes.live.pop_front();
                }
                notes.live.push_back(snapshot);
            });
        }
    }
}
