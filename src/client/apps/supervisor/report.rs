//! The VM tab's heartbeat to the server: every minute, each application's status, health
//! and traffic, which the public status pages are built from (`domain::status_page`). Only
//! a tab whose VM is ready reports; when none does, the pages say the host is offline.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::client::apps::AppManager;
use crate::model::{StatusReport, WebVMState};

impl AppManager {
    /// Sends one heartbeat in the background. A lost one is not retried: the next comes a
    /// minute later, and a page tells a missing heartbeat apart only after three.
    pub(super) fn report_status(&self) {
        if self.vm.state() != WebVMState::Ready {
            return;
        }
        let reports: Vec<StatusReport> = self.book.with_untracked(|book| {
            book.applications
                .values()
                .map(|app| StatusReport {
                    application_id: app.id,
                    status: app.status,
                    health: app.metrics.health_status,
                    response_ms: app.metrics.response_time,
                    request_count: app.metrics.request_count,
                    restart_count: app.metrics.restart_count,
                    last_deployed: app.last_deployed,
                })
                .collect()
        });
        if reports.is_empty() {
            return;
        }
        let sent = self.server.get_value().report_status(reports);
        spawn_local(async move {
            if let Err(error) = sent.await {
                leptos::logging::warn!("status heartbeat not delivered: {error}");
            }
        });
    }
}
