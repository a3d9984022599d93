//! The application form's contents as the user types them (text, before parsing), and the
//! one way from them to an [`Application`]: every field that does not parse is named with
//! its problem, and the rest of the draft is built anyway so the domain can check it.

use std::collections::{BTreeMap, BTreeSet};

use reactive_stores::Store;

use super::parse::{optional_number, parse_number, parse_pairs, parse_port};
use crate::model::{
    AppName, Application, BuildConfig, DeploymentSource, HealthCheckConfig, PackageId, Port,
    RestartPolicy, SealedSecret, SourceConfig,
};

/// A form field whose text must parse (the others are taken as typed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Name,
    MinimumVersions,
    RecommendedVersions,
    BuildEnvironment,
    BuildTimeout,
    Port,
    AdditionalPorts,
    Environment,
    MaxRetries,
    MemoryLimit,
    CpuLimit,
    StartupTimeout,
    HealthInterval,
    HealthTimeout,
    HealthRetries,
    HealthStartPeriod,
}

/// The form, field by field: a store, so each input wakes only for its own field.
#[derive(Debug, Clone, PartialEq, Default, Store)]
pub struct FormText {
    pub name: String,
    pub description: String,
    pub required_runtimes: BTreeSet<String>,
    pub optional_runtimes: BTreeSet<String>,
    /// `family=version`, one a line.
    pub minimum_versions: String,
    pub recommended_versions: String,
    pub source_type: DeploymentSource,
    pub url: String,
    pub repository: String,
    pub branch: String,
    pub commit: String,
    /// Sealed in the browser; the clear text is never kept.
    pub token: Option<SealedSecret>,
    pub local_path: String,
    pub watch_enabled: bool,
    pub deployment_path: String,
    pub entry_point: String,
    pub build_enabled: bool,
    pub build_command: String,
    pub build_directory: String,
    /// `NAME=value`, one a line.
    pub build_environment: String,
    pub build_timeout: String,
    pub command: String,
    /// One argument a line.
    pub arguments: String,
    pub working_directory: String,
    pub port: String,
    /// Separated by commas or spaces.
    pub additional_ports: String,
    pub environment: String,
    /// Names and sealed values; values are never shown.
    pub secret_environment: BTreeMap<String, SealedSecret>,
    pub auto_restart: bool,
    pub restart_policy: RestartPolicy,
    pub max_retries: String,
    pub memory_limit: String,
    pub cpu_limit: String,
    pub startup_timeout: String,
    pub health_enabled: bool,
    pub health_path: String,
    pub health_interval: String,
    pub health_timeout: String,
    pub health_retries: String,
    pub health_start_period: String,
    /// Restart the app when it turns unhealthy (opt-in, beyond Docker).
    pub health_restart: bool,
}

/// What the form's text makes: the draft, and the fields that did not parse (those keep
/// the base application's value in the draft).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub application: Application,
    pub problems: BTreeMap<Field, Vec<String>>,
}

impl Applied {
    /// The problems of one field.
    pub fn problems_of(&self, field: Field) -> Vec<String> {
        self.problems.get(&field).cloned().unwrap_or_default()
    }
}

fn number_text<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

fn pairs_text(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl FormText {
    /// The form showing `application`.
    pub fn from_application(application: &Application) -> Self {
        let source = &application.deployment.source_config;
        let build = application
            .deployment
            .build_config
            .clone()
            .unwrap_or_default();
        let execution = &application.execution;
        let health = execution.health_check_config.clone();
        let health_defaults = HealthCheckConfig::default();
        let ids = |ids: &[PackageId]| ids.iter().map(ToString::to_string).collect();
        FormText {
            name: application.name.to_string(),
            description: application.description.clone().unwrap_or_default(),
            required_runtimes: ids(&application.runtime.required_runtimes),
            optional_runtimes: ids(&application.runtime.optional_runtimes),
            minimum_versions: pairs_text(&application.runtime.minimum_versions),
            recommended_versions: pairs_text(&application.runtime.recommended_versions),
            source_type: application.deployment.source_type,
            url: source.url.clone().unwrap_or_default(),
            repository: source.repository.clone().unwrap_or_default(),
            branch: source.branch.clone().unwrap_or_default(),
            commit: source.commit.clone().unwrap_or_default(),
            token: source.token.clone(),
            local_path: source.local_path.clone().unwrap_or_default(),
            watch_enabled: source.watch_enabled.unwrap_or(false),
            deployment_path: application.deployment.deployment_path.clone(),
            entry_point: application.deployment.entry_point.clone(),
            build_enabled: build.enabled,
            build_command: build.build_command,
            build_directory: build.build_directory,
            build_environment: pairs_text(&build.environment_vars),
            build_timeout: build.timeout.to_string(),
            command: execution.command.clone(),
            arguments: execution.arguments.join("\n"),
            working_directory: execution.working_directory.clone(),
            port: number_text(execution.port.map(Port::get)),
            additional_ports: execution
                .additional_ports
                .iter()
                .flatten()
                .map(|port| port.get().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            environment: pairs_text(&execution.environment),
            secret_environment: execution.secret_environment.clone(),
            auto_restart: execution.auto_restart,
            restart_policy: execution.restart_policy,
            max_retries: number_text(execution.max_retries),
            memory_limit: number_text(execution.memory_limit),
            cpu_limit: number_text(execution.cpu_limit),
            startup_timeout: number_text(execution.timeout),
            health_enabled: health.as_ref().is_some_and(|health| health.enabled),
            health_path: health
                .as_ref()
                .and_then(|health| health.path.clone())
                .or(health_defaults.path)
                .unwrap_or_default(),
            health_interval: health
                .as_ref()
                .map_or(health_defaults.interval, |h| h.interval)
                .to_string(),
            health_timeout: health
                .as_ref()
                .map_or(health_defaults.timeout, |h| h.timeout)
                .to_string(),
            health_retries: health
                .as_ref()
                .map_or(health_defaults.retries, |h| h.retries)
                .to_string(),
            health_start_period: health
                .as_ref()
                .map_or(health_defaults.start_period, |h| h.start_period)
                .to_string(),
            health_restart: health.as_ref().is_some_and(|h| h.restart_on_unhealthy),
        }
    }

    /// The draft this text makes from `base` (its id, status, metrics and dates are kept).
    pub fn apply(&self, base: &Application) -> Applied {
        let mut problems: BTreeMap<Field, Vec<String>> = BTreeMap::new();
        let mut report = |field: Field, message: String| {
            problems.entry(field).or_default().push(message);
        };
        let mut app = base.clone();
        match AppName::parse(self.name.trim()) {
            Ok(name) => app.name = name,
            Err(_) => {
                for problem in AppName::problems(self.name.trim()) {
                    report(Field::Name, problem.to_string());
                }
            }
        }
        let description = self.description.trim();
        app.description = (!description.is_empty()).then(|| description.to_owned());
        let ids = |ids: &BTreeSet<String>| -> Vec<PackageId> {
            ids.iter()
                .filter_map(|id| PackageId::parse(id).ok())
                .collect()
        };
        app.runtime.required_runtimes = ids(&self.required_runtimes);
        app.runtime.optional_runtimes = ids(&self.optional_runtimes);
        let (minimum, errors) = parse_pairs("minimum versions", &self.minimum_versions);
        app.runtime.minimum_versions = minimum;
        errors
            .into_iter()
            .for_each(|e| report(Field::MinimumVersions, e));
        let (recommended, errors) = parse_pairs("recommended versions", &self.recommended_versions);
        app.runtime.recommended_versions = recommended;
        errors
            .into_iter()
            .for_each(|e| report(Field::RecommendedVersions, e));

        let deployment = &mut app.deployment;
        deployment.source_type = self.source_type;
        let text = |value: &str| {
            let value = value.trim();
            (!value.is_empty()).then(|| value.to_owned())
        };
        let files = deployment.source_config.files.take();
        deployment.source_config = match self.source_type {
            DeploymentSource::Upload => SourceConfig {
                files,
                ..SourceConfig::default()
            },
            DeploymentSource::Url => SourceConfig {
                url: text(&self.url),
                ..SourceConfig::default()
            },
            DeploymentSource::Github => SourceConfig {
                repository: text(&self.repository),
                branch: text(&self.branch),
                commit: text(&self.commit),
                token: self.token.clone(),
                ..SourceConfig::default()
            },
            DeploymentSource::LocalSync => SourceConfig {
                local_path: text(&self.local_path),
                watch_enabled: Some(self.watch_enabled),
                ..SourceConfig::default()
            },
        };
        deployment.deployment_path = self.deployment_path.trim().to_owned();
        deployment.entry_point = self.entry_point.trim().to_owned();
        let mut build = deployment.build_config.clone().unwrap_or_default();
        build.enabled = self.build_enabled;
        build.build_command = self.build_command.trim().to_owned();
        build.build_directory = self.build_directory.trim().to_owned();
        let (vars, errors) = parse_pairs("build environment", &self.build_environment);
        build.environment_vars = vars;
        errors
            .into_iter()
            .for_each(|e| report(Field::BuildEnvironment, e));
        if let Some(timeout) = parse_number(
            &mut report,
            Field::BuildTimeout,
            "build timeout",
            &self.build_timeout,
        ) {
            build.timeout = timeout;
        }
        let keep_build = build.enabled || build != BuildConfig::default();
        deployment.build_config = keep_build.then_some(build);

        let execution = &mut app.execution;
        execution.command = self.command.trim().to_owned();
        execution.arguments = self
            .arguments
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(str::to_owned)
            .collect();
        execution.working_directory = self.working_directory.trim().to_owned();
        let port_text = self.port.trim();
        if port_text.is_empty() {
            execution.port = None;
        } else if let Some(port) = parse_port(&mut report, Field::Port, "port", port_text) {
            execution.port = Some(port);
        }
        let mut additional = Vec::new();
        for part in self
            .additional_ports
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
        {
            if let Some(port) =
                parse_port(&mut report, Field::AdditionalPorts, "additional port", part)
            {
                additional.push(port);
            }
        }
        execution.additional_ports = (!additional.is_empty()).then_some(additional);
        let (environment, errors) = parse_pairs("environment", &self.environment);
        execution.environment = environment;
        errors
            .into_iter()
            .for_each(|e| report(Field::Environment, e));
        execution.secret_environment = self.secret_environment.clone();
        execution.auto_restart = self.auto_restart;
        execution.restart_policy = self.restart_policy;
        execution.max_retries = optional_number(
            &mut report,
            Field::MaxRetries,
            "max retries",
            &self.max_retries,
            execution.max_retries,
        );
        execution.memory_limit = optional_number(
            &mut report,
            Field::MemoryLimit,
            "memory limit",
            &self.memory_limit,
            execution.memory_limit,
        );
        execution.timeout = optional_number(
            &mut report,
            Field::StartupTimeout,
            "startup timeout",
            &self.startup_timeout,
            execution.timeout,
        );
        let cpu = self.cpu_limit.trim();
        if cpu.is_empty() {
            execution.cpu_limit = None;
        } else {
            match cpu.trim_end_matches('%').trim().parse::<f64>() {
                Ok(value) if value.is_finite() => execution.cpu_limit = Some(value),
                _ => report(
                    Field::CpuLimit,
                    format!("CPU limit '{cpu}' is not a number of percent"),
                ),
            }
        }
        let mut health = execution.health_check_config.clone().unwrap_or_default();
        health.enabled = self.health_enabled;
        health.restart_on_unhealthy = self.health_restart;
        let path = self.health_path.trim();
        health.path = (!path.is_empty()).then(|| path.to_owned());
        let fields = [
            (
                Field::HealthInterval,
                "health-check interval",
                &self.health_interval,
                &mut health.interval,
            ),
            (
                Field::HealthTimeout,
                "health-check timeout",
                &self.health_timeout,
                &mut health.timeout,
            ),
            (
                Field::HealthRetries,
                "health-check retries",
                &self.health_retries,
                &mut health.retries,
            ),
            (
                Field::HealthStartPeriod,
                "health-check start period",
                &self.health_start_period,
                &mut health.start_period,
            ),
        ];
        for (field, label, text, target) in fields {
            if let Some(value) = parse_number(&mut report, field, label, text) {
                *target = value;
            }
        }
        let keep_health = health.enabled || execution.health_check_config.is_some();
        execution.health_check_config = keep_health.then_some(health);
        Applied {
            application: app,
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::presets::{draft, PresetId};
    use crate::model::ApplicationServerSettings;
    use chrono::DateTime;
    use uuid::Uuid;

    fn base() -> Application {
        draft(
            PresetId::Node,
            Uuid::nil(),
            AppName::parse("shop").expect("valid"),
            Port::parse(8001).expect("valid"),
            &ApplicationServerSettings::default(),
            DateTime::default(),
        )
    }

    #[test]
    fn the_text_of_an_application_gives_it_back() {
        let app = base();
        let applied = FormText::from_application(&app).apply(&app);
        assert_eq!(applied.problems, BTreeMap::new());
        assert_eq!(applied.application, app);
    }

    #[test]
    fn each_bad_field_is_named_and_keeps_its_value() {
        type Edit = fn(&mut FormText);
        let cases: [(Edit, Field, &str); 8] = [
            (|t| t.name = "a".into(), Field::Name, "has 1 characters"),
            (
                |t| t.port = "80".into(),
                Field::Port,
                "port: port 80 is outside 1024-65535",
            ),
            (
                |t| t.port = "web".into(),
                Field::Port,
                "port 'web' is not a number",
            ),
            (
                |t| t.additional_ports = "9001, x".into(),
                Field::AdditionalPorts,
                "additional port 'x' is not a number",
            ),
            (
                |t| t.environment = "NODE_ENV".into(),
                Field::Environment,
                "environment, line 1: 'NODE_ENV' is not NAME=value",
            ),
            (
                |t| t.memory_limit = "-5".into(),
                Field::MemoryLimit,
                "memory limit '-5' is not a whole number of 0 or more",
            ),
            (
                |t| t.cpu_limit = "half".into(),
                Field::CpuLimit,
                "CPU limit 'half' is not a number of percent",
            ),
            (
                |t| t.health_retries = "".into(),
                Field::HealthRetries,
                "health-check retries '' is not a whole number of 0 or more",
            ),
        ];
        let app = base();
        for (edit, field, message) in cases {
            let mut text = FormText::from_application(&app);
            edit(&mut text);
            let applied = text.apply(&app);
            let problems = applied.problems_of(field);
            assert!(
                problems.iter().any(|problem| problem.contains(message)),
                "{field:?}: {problems:?}"
            );
            assert_eq!(
                applied.problems.len(),
                1,
                "{field:?}: {:?}",
                applied.problems
            );
            assert_eq!(applied.application.name, app.name);
            assert_eq!(applied.application.execution.port, app.execution.port);
        }
    }

    #[test]
    fn fields_of_other_sources_are_dropped() {
        let app = base();
        let mut text = FormText::from_application(&app);
        text.url = "https://example.com/site.tar.gz".into();
        text.repository = "owner/repo".into();
        text.source_type = DeploymentSource::Github;
        let source = text.apply(&app).application.deployment.source_config;
        assert_eq!(source.repository.as_deref(), Some("owner/repo"));
        assert_eq!(source.url, None);
        text.source_type = DeploymentSource::Url;
        let source = text.apply(&app).application.deployment.source_config;
        assert_eq!(
            (source.url.as_deref(), source.repository),
            (Some("https://example.com/site.tar.gz"), None)
        );
    }

    #[test]
    fn lists_parse() {
        let app = base();
        let mut text = FormText::from_application(&app);
        text.additional_ports = "9001 9002,9003".into();
        text.arguments = "server.js\n\n--verbose".into();
        text.build_enabled = true;
        text.build_command = "npm run build".into();
        let applied = text.apply(&app).application;
        let ports: Vec<u16> = applied
            .execution
            .additional_ports
            .iter()
            .flatten()
            .map(|p| p.get())
            .collect();
        assert_eq!(ports, [9001, 9002, 9003]);
        assert_eq!(applied.execution.arguments, ["server.js", "--verbose"]);
        assert_eq!(
            applied.deployment.build_config.map(|b| b.build_command),
            Some("npm run build".into())
        );
    }
}
