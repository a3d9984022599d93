//! Execution configuration: how an application's process is run, restarted and probed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Port, SealedSecret};

string_enum! {
    /// When a stopped process is restarted (Docker's restart policies).
    #[derive(Default)]
    pub enum RestartPolicy {
        /// Never restart automatically.
        Never = "never",
        /// Restart only on non-zero exit.
        #[default]
        OnFailure = "on-failure",
        /// Always restart.
        Always = "always",
        /// Restart unless manually stopped.
        UnlessStopped = "unless-stopped",
    }
}

/// How to run an application's process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionConfig {
    /// Startup command.
    pub command: String,
    pub arguments: Vec<String>,
    pub working_directory: String,
    /// Primary port of the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_ports: Option<Vec<Port>>,
    pub environment: BTreeMap<String, String>,
    /// Secret variables, sealed in the browser; never clear text (see [`SealedSecret`]).
    pub secret_environment: BTreeMap<String, SealedSecret>,
    /// Master switch: when false the restart policy is treated as `never`.
    pub auto_restart: bool,
    pub restart_policy: RestartPolicy,
    /// Extension: for `on-failure`, the most restarts in a row (Docker's
    /// `on-failure:N`); absent or 0 means unlimited, as Docker's `MaximumRetryCount` 0.
    /// Refused with any other policy, as Docker does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_config: Option<HealthCheckConfig>,
    /// MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    /// Percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<f64>,
    /// Startup timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
}

impl Default for ExecutionConfig {
    /// No command yet; restarts on failure (autoRestart on), no limits, no health check.
    fn default() -> Self {
        ExecutionConfig {
            command: String::new(),
            arguments: Vec::new(),
            working_directory: String::new(),
            port: None,
            additional_ports: None,
            environment: BTreeMap::new(),
            secret_environment: BTreeMap::new(),
            auto_restart: true,
            restart_policy: RestartPolicy::OnFailure,
            max_retries: None,
            health_check_config: None,
            memory_limit: None,
            cpu_limit: None,
            timeout: None,
        }
    }
}

impl ExecutionConfig {
    /// Primary and additional ports, in that order.
    pub fn all_ports(&self) -> impl Iterator<Item = Port> + '_ {
        self.port
            .iter()
            .chain(self.additional_ports.iter().flatten())
            .copied()
    }

    /// The policy in effect, taking `autoRestart` into account.
    pub fn effective_restart_policy(&self) -> RestartPolicy {
        if self.auto_restart {
            self.restart_policy
        } else {
            RestartPolicy::Never
        }
    }
}

/// Health probe settings (Docker's HEALTHCHECK options). Times in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckConfig {
    pub enabled: bool,
    /// HTTP path probed on the primary port, e.g. `/healthz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Seconds between probes.
    pub interval: u32,
    /// Seconds before a probe counts as failed.
    pub timeout: u32,
    /// Consecutive failures that make the app unhealthy.
    pub retries: u32,
    /// Grace period in seconds after start during which failures don't count.
    pub start_period: u32,
    /// Seconds between probes while the app is still starting within its start period
    /// (Docker's `--health-start-interval`); absent or 0 means Docker's default, 5 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<u32>,
    /// Extension, not in Docker (moby#28400): restart the process when it becomes
    /// unhealthy, through its restart policy and the same backoff and restart count as a
    /// crash.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_on_unhealthy: bool,
}

impl Default for HealthCheckConfig {
    /// Docker's defaults: every 30 s, 30 s timeout, 3 retries, no start period (start
    /// interval 5 s); no restart when unhealthy.
    fn default() -> Self {
        HealthCheckConfig {
            enabled: true,
            path: Some("/".to_owned()),
            interval: 30,
            timeout: 30,
            retries: 3,
            start_period: 0,
            start_interval: None,
            restart_on_unhealthy: false,
        }
    }
}
