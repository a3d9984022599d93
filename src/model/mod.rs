//! The seed data model as Rust types, shared by server and browser; no IO.
//!
//! JSON keeps the seed's camelCase field names and exact enum literals. Dates are
//! `DateTime<Utc>`, ids are `Uuid`, maps are `BTreeMap` so serialized output is stable.
//! Names that carry rules (application name, package id, port, sealed secret, SHA-256) are
//! newtypes whose `parse` is the only way in; deserialization goes through `parse` too.

/// Declares a closed set of string literals as a Rust enum with exact serde names,
/// `as_str`, `ALL`, `Display` and `FromStr`.
macro_rules! string_enum {
    (
        $(#[$enum_meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$enum_meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The exact string literal used in JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::model::ParseError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::model::ParseError::UnknownVariant {
                        kind: stringify!($name),
                        value: text.to_owned(),
                    }),
                }
            }
        }
    };
}

/// The macro, for the domain's own closed sets (`crate::model::string_enum!`).
pub(crate) use string_enum;

mod application;
mod backup;
pub mod catalog;
mod deployment;
mod execution;
pub mod guest_image;
mod metrics;
mod mirror;
mod names;
mod package;
mod store;
pub mod time;
mod webvm;

pub use application::{
    Application, ApplicationId, ApplicationRuntime, ApplicationStatus, HealthCheckStatus,
    HealthProbeResult, HealthState, MismatchSeverity, ProbeOutcome, RuntimeCompatibility,
    VersionMismatch,
};
pub use backup::{ApplicationServerBackup, LegacyApp, ValidationResult};
pub use deployment::{
    BuildConfig, DeploymentConfig, DeploymentOperation, DeploymentSource, DeploymentStatus,
    FileRef, SourceConfig,
};
pub use execution::{ExecutionConfig, HealthCheckConfig, RestartPolicy};
pub use metrics::{
    ApplicationMetrics, HealthStatus, LogEntry, LogLevel, LogSource, PerformanceSnapshot,
    StatusReport,
};
pub use mirror::{MirrorAnswer, MirrorEntry, MirrorWrite};
pub use names::{
    AppName, PackageId, ParseError, Port, SealedSecret, Sha256, APP_NAME_MAX_LEN, APP_NAME_MIN_LEN,
    PORT_MAX, PORT_MIN, RESERVED_APP_NAMES,
};
pub use package::{
    OperationStatus, PackageOperation, PackageOperationKind, PackageStatus, RuntimeCategory,
    RuntimePackage,
};
pub use store::{
    ApplicationServerSettings, ApplicationStore, DependencyGraph, DeployLimits, PortRange, Theme,
    VmEngine, VM_MEMORY_MB,
};
pub use webvm::{
    ErrorEvent, ErrorInfo, SystemPerformanceMetrics, SystemResources, SystemSample, WebVMState,
    WebVMStatus, WebVMStore,
};

/// The cookie in which a browser tells the server which VM engine it runs (`v86` or
/// `cheerpx`), so that pages are served cross-origin isolated (COOP/COEP) only for CheerpX,
/// which needs it. Not a secret; set by the Settings page.
pub const ENGINE_COOKIE: &str = "webvm_engine";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use std::str::FromStr;
    use uuid::Uuid;

    /// Checks `as_str`, JSON and `FromStr` of every value against the seed's literals.
    fn literals<T>(all: &[T], expected: &[&str])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + FromStr + serde::Serialize,
    {
        let shown: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(shown, expected);
        for (value, text) in all.iter().zip(expected) {
            assert_eq!(
                serde_json::to_string(value).ok(),
                Some(format!("\"{text}\""))
            );
            assert_eq!(T::from_str(text).ok(), Some(*value));
        }
        assert!(T::from_str("no-such-value").is_err());
    }

    #[test]
    fn enum_literals_match_the_seed() {
        literals(
            WebVMState::ALL,
            &[
                "unloaded",
                "loading",
                "booting",
                "ready",
                "hibernating",
                "error",
            ],
        );
        literals(
            RuntimeCategory::ALL,
            &["web-server", "runtime", "framework", "database", "tool"],
        );
        literals(
            PackageStatus::ALL,
            &[
                "available",
                "downloading",
                "installing",
                "installed",
                "removing",
                "error",
            ],
        );
        literals(
            ApplicationStatus::ALL,
            &[
                "draft",
                "deploying",
                "deployed",
                "starting",
                "running",
                "stopping",
                "stopped",
                "error",
                "runtime-missing",
                "failed",
            ],
        );
        literals(
            DeploymentSource::ALL,
            &["upload", "github", "url", "local-sync"],
        );
        literals(
            RestartPolicy::ALL,
            &["never", "on-failure", "always", "unless-stopped"],
        );
        literals(MismatchSeverity::ALL, &["error", "warning"]);
        literals(HealthStatus::ALL, &["healthy", "unhealthy", "unknown"]);
        literals(LogLevel::ALL, &["debug", "info", "warn", "error"]);
        literals(LogSource::ALL, &["application", "system", "webvm"]);
        literals(PackageOperationKind::ALL, &["install", "remove", "update"]);
        literals(
            OperationStatus::ALL,
            &["pending", "running", "completed", "failed"],
        );
        literals(
            DeploymentStatus::ALL,
            &[
                "preparing",
                "uploading",
                "building",
                "deploying",
                "completed",
                "failed",
            ],
        );
        literals(HealthState::ALL, &["starting", "healthy", "unhealthy"]);
        literals(ProbeOutcome::ALL, &["passed", "failed", "timed-out"]);
        literals(VmEngine::ALL, &["v86", "cheerpx"]);
        literals(Theme::ALL, &["system", "light", "dark"]);
    }

    fn keys(value: &serde_json::Value) -> Vec<&str> {
        value
            .as_object()
            .map(|object| object.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    #[test]
    fn json_keeps_the_seed_field_names() {
        let now = DateTime::<Utc>::default();
        let name = AppName::parse("blog").expect("valid");
        let app = Application::new(
            Uuid::nil(),
            name,
            DeploymentConfig::default(),
            ExecutionConfig::default(),
            now,
        );
        let value = serde_json::to_value(&app).expect("serializable");
        assert_eq!(
            keys(&value),
            vec![
                "createdAt",
                "deployment",
                "execution",
                "id",
                "lastDeployed",
                "metrics",
                "name",
                "runtime",
                "runtimeStatus",
                "status",
            ]
        );
        assert_eq!(
            keys(&value["execution"]),
            vec![
                "arguments",
                "autoRestart",
                "command",
                "environment",
                "restartPolicy",
                "secretEnvironment",
                "workingDirectory",
            ]
        );
        assert_eq!(value["runtimeStatus"]["canStart"], serde_json::json!(false));
        let store = WebVMStore::default();
        let value = serde_json::to_value(&store).expect("serializable");
        assert_eq!(
            keys(&value),
            vec![
                "availablePackages",
                "errorHistory",
                "installedPackages",
                "packageOperations",
                "performanceMetrics",
                "status",
                "systemLogs",
            ]
        );
        let back: WebVMStore = serde_json::from_value(value).expect("round trip");
        assert_eq!(back, store);
    }

    #[test]
    fn constructors_and_helpers() {
        let now = DateTime::<Utc>::default();
        let package_id = PackageId::parse("nginx").expect("valid");
        let operation = PackageOperation::new(
            Uuid::nil(),
            package_id.clone(),
            PackageOperationKind::Install,
            now,
        );
        assert_eq!(
            (operation.status, operation.start_time),
            (OperationStatus::Pending, now)
        );
        let deployment = DeploymentOperation::new(Uuid::nil(), Uuid::nil(), now);
        assert_eq!(
            (deployment.status, deployment.progress),
            (DeploymentStatus::Preparing, 0)
        );
        assert_eq!(BuildConfig::default().timeout, 600);
        let resources = SystemResources {
            memory_used: 600,
            memory_total: 512,
            disk_used: 100,
            disk_total: 400,
            ..SystemResources::default()
        };
        assert_eq!((resources.memory_free(), resources.disk_free()), (0, 300));
        let range = PortRange::default();
        assert!(range.contains(Port::parse(8500).expect("valid")));
        assert!(!range.contains(Port::parse(9000).expect("valid")));
        let mut result = ValidationResult::ok();
        let mut other = ValidationResult::ok();
        other.error("e");
        other.warn("w");
        other.suggest("s");
        result.merge_with_context("app 'x'", other.clone());
        result.merge(other);
        assert_eq!(result.errors, vec!["app 'x': e", "e"]);
        assert_eq!(result.suggestions(), ["app 'x': s", "s"]);
        assert!(!result.valid);
    }
}
