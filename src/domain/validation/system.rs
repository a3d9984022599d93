//! Rules on the whole system: memory of running apps (business rule 4) and ports
//! (business rule 3).

use super::{quoted_list, ValidationRules};
use crate::domain::ports::allocate_port;
use crate::model::{Application, ApplicationStatus, Port, ValidationResult};

/// Share of memory or disk in use above which a warning is given, in percent.
const HIGH_USAGE_PERCENT: u64 = 90;
/// Least VM memory that boots Debian, MB.
const MIN_VM_MEMORY_MB: u64 = 64;
/// The most releases an application may keep for roll back.
pub const MAX_RELEASES_KEPT: u32 = 20;

impl ValidationRules<'_> {
    /// Business rule 4: the memory limits of the running apps fit within the VM. Apps
    /// without a limit and a nearly full VM are warned about.
    pub fn validate_system_resources(&self) -> ValidationResult {
        let mut result = ValidationResult::ok();
        let capacity = self.vm_memory();
        let running: Vec<&Application> = self
            .applications
            .iter()
            .filter(|app| {
                matches!(
                    app.status,
                    ApplicationStatus::Starting
                        | ApplicationStatus::Running
                        | ApplicationStatus::Stopping
                )
            })
            .collect();
        let reserved: u64 = running
            .iter()
            .filter_map(|app| app.execution.memory_limit)
            .sum();
        if reserved > capacity {
            let limits: Vec<String> = running
                .iter()
                .filter_map(|app| {
                    app.execution
                        .memory_limit
                        .map(|limit| format!("{} {limit} MB", app.name))
                })
                .collect();
            result.error(format!(
                "running applications may use {reserved} MB ({}) but the VM has {capacity} MB",
                limits.join(", ")
            ));
            result.suggest("stop an application or lower its memory limit");
        }
        for app in running
            .iter()
            .filter(|app| app.execution.memory_limit.is_none())
        {
            result.warn(format!(
                "running application '{}' has no memory limit and may use all of the VM's memory",
                app.name
            ));
        }
        let resources = self.resources;
        let usage = [
            ("memory", resources.memory_used, resources.memory_total),
            ("disk", resources.disk_used, resources.disk_total),
        ];
        for (what, used, total) in usage {
            if total > 0 && used > total {
                result.warn(format!("{what} use {used} MB exceeds the total {total} MB"));
            } else if total > 0 && used * 100 >= total * HIGH_USAGE_PERCENT {
                result.warn(format!("{what} is more than {HIGH_USAGE_PERCENT}% used"));
            }
        }
        result
    }

    /// Business rule 3: every port (primary and additional) used once, within
    /// 1024–65535, and preferably within the configured range.
    pub fn validate_network_configuration(&self) -> ValidationResult {
        let mut result = ValidationResult::ok();
        let range = self.settings.port_range;
        if range.start > range.end {
            result.error(format!(
                "port range {}-{} is empty: its start is after its end",
                range.start, range.end
            ));
        }
        let mut clashes: Vec<(&Port, &Vec<&Application>)> = self
            .port_users
            .iter()
            .filter(|(_, users)| users.len() > 1)
            .collect();
        clashes.sort_by_key(|(port, _)| **port);
        for (port, users) in clashes {
            result.error(port_clash_message(*port, users));
            if let Ok(free) = allocate_port(range, &self.ports_in_use_with([])) {
                result.suggest(format!("use port {free}, the lowest free port"));
            }
        }
        for app in self.applications {
            for port in app
                .execution
                .all_ports()
                .filter(|port| !range.contains(*port))
            {
                result.warn(format!(
                    "port {port} of '{}' is outside the configured range {}-{}",
                    app.name, range.start, range.end
                ));
            }
        }
        result
    }

    /// Global settings: VM memory that boots, retention within the seed's budgets.
    pub fn validate_settings(&self) -> ValidationResult {
        let mut result = ValidationResult::ok();
        let settings = self.settings;
        if settings.vm_memory_mb < MIN_VM_MEMORY_MB {
            result.error(format!(
                "VM memory {} MB is below the {MIN_VM_MEMORY_MB} MB Debian needs",
                settings.vm_memory_mb
            ));
        }
        if settings.max_log_entries == 0 || settings.max_log_entries > 1000 {
            result.error(format!(
                "log retention {} must be 1 to 1000 entries per application",
                settings.max_log_entries
            ));
        }
        if settings.metrics_retention_hours == 0 || settings.metrics_retention_hours > 24 {
            result.error(format!(
                "metrics retention {} h must be 1 to 24 hours",
                settings.metrics_retention_hours
            ));
        }
        if settings.metrics_sample_interval_seconds < 300 {
            result.error(format!(
                "metrics sampling every {} s is below the 5-minute minimum",
                settings.metrics_sample_interval_seconds
            ));
        }
        if settings.auto_hibernate_minutes == Some(0) {
            result.error("auto-hibernate after 0 minutes would hibernate at once");
        }
        let range = settings.port_range;
        if range.start > range.end {
            result.error(format!(
                "port range {}–{} ends before it starts",
                range.start, range.end
            ));
        }
        if !(1..=MAX_RELEASES_KEPT).contains(&settings.releases_kept) {
            result.error(format!(
                "releases kept {} must be 1 to {MAX_RELEASES_KEPT} (the current one included)",
                settings.releases_kept
            ));
        }
        if settings.deploy_limits.max_files == 0 || settings.deploy_limits.max_total_bytes == 0 {
            result.error("deploy limits of 0 files or 0 bytes would refuse every deploy");
        }
        for app in self.applications {
            let outside: Vec<String> = app
                .execution
                .all_ports()
                .filter(|port| !range.contains(*port))
                .map(|port| port.to_string())
                .collect();
            if !outside.is_empty() && range.start <= range.end {
                result.warn(format!(
                    "{} uses port {} outside the new range; it keeps it, and new applications get ports from the range",
                    app.name,
                    outside.join(", ")
                ));
            }
        }
        result
    }

    /// One application's ports: within 1024–65535 (by type), not repeated within the app,
    /// and not used by another application.
    pub fn validate_application_ports(&self, application: &Application) -> ValidationResult {
        let mut result = ValidationResult::ok();
        let own: Vec<Port> = application.execution.all_ports().collect();
        for (index, port) in own.iter().enumerate() {
            if own[..index].contains(port) {
                result.error(format!("port {port} is listed twice"));
            }
            let others: Vec<&str> = self
                .port_users
                .get(port)
                .into_iter()
                .flatten()
                .filter(|other| self.conflicts_with(application.id, other.id))
                .map(|other| other.name.as_str())
                .collect();
            if !others.is_empty() {
                result.error(format!(
                    "port {port} is already used by {}",
                    quoted_list(&others)
                ));
                let in_use = self.ports_in_use_with(own.iter().copied());
                if let Ok(free) = allocate_port(self.settings.port_range, &in_use) {
                    result.suggest(format!("use port {free}, the lowest free port"));
                }
            }
        }
        result
    }
}

fn port_clash_message(port: Port, users: &[&Application]) -> String {
    let mut names: Vec<&str> = users.iter().map(|app| app.name.as_str()).collect();
    names.dedup();
    if names.len() == 1 {
        format!("port {port} is listed twice by '{}'", names[0])
    } else {
        format!("port {port} is used by {}", quoted_list(&names))
    }
}
