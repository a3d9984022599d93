//! Presets for new applications: per runtime, the command, arguments, port, health path,
//! entry point and timeouts of a typical app, and the complete draft [`Application`] built
//! from one.
//!
//! Arguments are templates: `{port}` becomes the app's port and `{current}` its current
//! release (`<deploymentPath>/current`), so the command line names them literally, as the
//! process sees it. v86 is slow to start interpreters, so Python and Flask get a 60 s
//! startup timeout and health-check start period.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::model::{
    AppName, Application, ApplicationId, ApplicationServerSettings, DeploymentConfig,
    DeploymentSource, ExecutionConfig, HealthCheckConfig, PackageId, Port, SourceConfig,
};

crate::model::string_enum! {
    /// Which preset a new application starts from.
    pub enum PresetId {
        /// A static site served by BusyBox httpd.
        StaticBusybox = "static-busybox",
        /// A static site served by nginx.
        StaticNginx = "static-nginx",
        /// A directory served by Python's `http.server`.
        PythonHttp = "python-http",
        /// A Flask app (`app.py`).
        Flask = "flask",
        /// A Node.js app (`index.js`).
        Node = "node",
    }
}

impl PresetId {
    /// This preset's settings.
    pub fn preset(self) -> &'static Preset {
        match self {
            PresetId::StaticBusybox => &PRESETS[0],
            PresetId::StaticNginx => &PRESETS[1],
            PresetId::PythonHttp => &PRESETS[2],
            PresetId::Flask => &PRESETS[3],
            PresetId::Node => &PRESETS[4],
        }
    }
}

/// A typical app for one runtime (see the module docs for the argument templates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub id: PresetId,
    pub label: &'static str,
    pub description: &'static str,
    /// Catalog runtime ids the app needs.
    pub required_runtimes: &'static [&'static str],
    /// Runtime family → minimum version.
    pub minimum_versions: &'static [(&'static str, &'static str)],
    pub command: &'static str,
    /// Templates: `{port}`, `{current}`.
    pub arguments: &'static [&'static str],
    /// Plain environment besides `PORT`.
    pub environment: &'static [(&'static str, &'static str)],
    /// Relative to the release.
    pub entry_point: &'static str,
    pub health_path: &'static str,
    /// Startup timeout, seconds.
    pub startup_timeout: u32,
    /// Health-check grace period after start, seconds.
    pub health_start_period: u32,
}

/// The presets, in [`PresetId::ALL`] order.
pub const PRESETS: [Preset; 5] = [
    Preset {
        id: PresetId::StaticBusybox,
        label: "Static site (BusyBox httpd)",
        description: "HTML, CSS and JavaScript files served by BusyBox's tiny web server: the lightest choice.",
        required_runtimes: &["busybox-httpd"],
        minimum_versions: &[],
        command: "busybox",
        arguments: &["httpd", "-f", "-p", "{port}", "-h", "{current}"],
        environment: &[],
        entry_point: "index.html",
        health_path: "/",
        startup_timeout: 20,
        health_start_period: 10,
    },
    Preset {
        id: PresetId::StaticNginx,
        label: "Static site (nginx)",
        description: "Static files served by nginx, with MIME types and index pages; the server's configuration is written at start.",
        required_runtimes: &["nginx"],
        minimum_versions: &[],
        command: "sh",
        arguments: &[
            "-c",
            "printf 'pid /tmp/nginx-{port}.pid; events {} http { include /etc/nginx/mime.types; access_log off; server { listen {port}; root {current}; index index.html; } }' > /tmp/nginx-{port}.conf && exec nginx -c /tmp/nginx-{port}.conf -g 'daemon off;'",
        ],
        environment: &[],
        entry_point: "index.html",
        health_path: "/",
        startup_timeout: 30,
        health_start_period: 15,
    },
    Preset {
        id: PresetId::PythonHttp,
        label: "Python http.server",
        description: "A directory served by Python's built-in http.server module: no dependencies beyond Python.",
        required_runtimes: &["python-311"],
        minimum_versions: &[("python", "3.7.0")],
        command: "python3",
        arguments: &["-m", "http.server", "{port}", "--bind", "0.0.0.0", "--directory", "{current}"],
        environment: &[("PYTHONUNBUFFERED", "1")],
        entry_point: "index.html",
        health_path: "/",
        startup_timeout: 60,
        health_start_period: 60,
    },
    Preset {
        id: PresetId::Flask,
        label: "Flask",
        description: "A Flask app in app.py, run by Flask's server; the catalog's Flask runtime brings Flask, Werkzeug and Jinja2.",
        required_runtimes: &["python-311", "flask"],
        minimum_versions: &[("flask", "2.2.0")],
        command: "python3",
        arguments: &["-m", "flask", "--app", "app", "run", "--host", "0.0.0.0", "--port", "{port}"],
        environment: &[("PYTHONUNBUFFERED", "1")],
        entry_point: "app.py",
        health_path: "/",
        startup_timeout: 60,
        health_start_period: 60,
    },
    Preset {
        id: PresetId::Node,
        label: "Node.js",
        description: "A Node.js app started with node index.js; it listens on the port in the PORT variable.",
        required_runtimes: &["nodejs-18"],
        minimum_versions: &[("nodejs", "18.0.0")],
        command: "node",
        arguments: &["index.js"],
        environment: &[("NODE_ENV", "production")],
        entry_point: "index.js",
        health_path: "/",
        startup_timeout: 45,
        health_start_period: 30,
    },
];

/// The directory the app runs from: `<deploymentPath>/current`.
pub fn current_directory(deployment_path: &str) -> String {
    format!("{}/current", deployment_path.trim_end_matches('/'))
}

/// A preset's arguments with `{port}` and `{current}` filled in.
pub fn arguments(preset: &Preset, port: Port, current: &str) -> Vec<String> {
    preset
        .arguments
        .iter()
        .map(|template| {
            template
                .replace("{port}", &port.get().to_string())
                .replace("{current}", current)
        })
        .collect()
}

/// A complete draft application from a preset: uploaded files as its source, deployed to
/// `/srv/apps/<name>`, run from its current release on `port` (also in `PORT`), with the
/// preset's health check and the settings' restart policy. Not validated: the caller checks
/// it (the name's uniqueness, the port's) like any other.
pub fn draft(
    preset: PresetId,
    id: ApplicationId,
    name: AppName,
    port: Port,
    settings: &ApplicationServerSettings,
    now: DateTime<Utc>,
) -> Application {
    let preset = preset.preset();
    let deployment_path = DeploymentConfig::default_path(&name);
    let current = current_directory(&deployment_path);
    let deployment = DeploymentConfig {
        source_type: DeploymentSource::Upload,
        source_config: SourceConfig::default(),
        build_config: None,
        deployment_path,
        entry_point: preset.entry_point.to_owned(),
    };
    let mut environment: BTreeMap<String, String> = preset
        .environment
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    environment.insert("PORT".to_owned(), port.get().to_string());
    let execution = ExecutionConfig {
        command: preset.command.to_owned(),
        arguments: arguments(preset, port, &current),
        working_directory: current,
        port: Some(port),
        environment,
        restart_policy: settings.default_restart_policy,
        health_check_config: Some(HealthCheckConfig {
            enabled: true,
            path: Some(preset.health_path.to_owned()),
            interval: 30,
            timeout: 10,
            retries: 3,
            start_period: preset.health_start_period,
            ..HealthCheckConfig::default()
        }),
        timeout: Some(preset.startup_timeout),
        ..ExecutionConfig::default()
    };
    let mut application = Application::new(id, name, deployment, execution, now);
    application.description = Some(preset.description.to_owned());
    application.runtime.required_runtimes = preset
        .required_runtimes
        .iter()
        .filter_map(|runtime| PackageId::parse(runtime).ok())
        .collect();
    application.runtime.minimum_versions = preset
        .minimum_versions
        .iter()
        .map(|(family, version)| ((*family).to_owned(), (*version).to_owned()))
        .collect();
    application
}

/// `text` with every occurrence of the port number `old` that is not part of a longer
/// number replaced by `new` (the form keeps arguments and `PORT` in step with the port).
pub fn replace_port(text: &str, old: &str, new: &str) -> String {
    replace_bounded(text, old, new, |c| c.is_ascii_digit())
}

/// `text` with every occurrence of the path `old` that is not part of a longer name
/// (`/srv/apps/site` in `/srv/apps/site/current`, not in `/srv/apps/site-2`) replaced by
/// `new` (the form keeps the working directory and arguments in step with the path).
pub fn replace_path(text: &str, old: &str, new: &str) -> String {
    replace_bounded(text, old, new, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
    })
}

fn replace_bounded(text: &str, old: &str, new: &str, continues: fn(char) -> bool) -> String {
    if old.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut previous: Option<char> = None;
    while let Some(found) = rest.find(old) {
        let before = rest[..found].chars().last().or(previous);
        let after = rest[found + old.len()..].chars().next();
        let bounded = !before.is_some_and(continues) && !after.is_some_and(continues);
        out.push_str(&rest[..found]);
        out.push_str(if bounded { new } else { old });
        previous = old.chars().last();
        rest = &rest[found + old.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{now, port};
    use crate::domain::validation::ValidationRules;
    use crate::model::{RuntimePackage, SystemResources};
    use uuid::Uuid;

    fn name(text: &str) -> AppName {
        AppName::parse(text).expect("valid name")
    }

    #[test]
    fn preset_ids_round_trip() {
        let expected = [
            "static-busybox",
            "static-nginx",
            "python-http",
            "flask",
            "node",
        ];
        for (preset, text) in PresetId::ALL.iter().zip(expected) {
            assert_eq!(preset.as_str(), text);
            assert_eq!(text.parse::<PresetId>().ok(), Some(*preset));
            assert_eq!(
                serde_json::to_string(preset).ok(),
                Some(format!("\"{text}\""))
            );
            assert_eq!(preset.preset().id, *preset, "table order of {text}");
        }
        assert_eq!(PresetId::ALL.len(), PRESETS.len());
        assert!("django".parse::<PresetId>().is_err());
    }

    #[test]
    fn each_preset_builds_its_command_line() {
        /// Preset, runtimes, command, arguments, entry point, startup timeout.
        type Case = (
            PresetId,
            &'static [&'static str],
            &'static str,
            &'static str,
            &'static str,
            u32,
        );
        let cases: [Case; 5] = [
            (
                PresetId::StaticBusybox,
                &["busybox-httpd"],
                "busybox",
                "httpd -f -p 8001 -h /srv/apps/site/current",
                "index.html",
                20,
            ),
            (
                PresetId::StaticNginx,
                &["nginx"],
                "sh",
                "-c printf 'pid /tmp/nginx-8001.pid; events {} http { include /etc/nginx/mime.types; access_log off; server { listen 8001; root /srv/apps/site/current; index index.html; } }' > /tmp/nginx-8001.conf && exec nginx -c /tmp/nginx-8001.conf -g 'daemon off;'",
                "index.html",
                30,
            ),
            (
                PresetId::PythonHttp,
                &["python-311"],
                "python3",
                "-m http.server 8001 --bind 0.0.0.0 --directory /srv/apps/site/current",
                "index.html",
                60,
            ),
            (
                PresetId::Flask,
                &["python-311", "flask"],
                "python3",
                "-m flask --app app run --host 0.0.0.0 --port 8001",
                "app.py",
                60,
            ),
            (
                PresetId::Node,
                &["nodejs-18"],
                "node",
                "index.js",
                "index.js",
                45,
            ),
        ];
        let settings = ApplicationServerSettings::default();
        for (preset, runtimes, command, arguments, entry_point, timeout) in cases {
            let app = draft(
                preset,
                Uuid::nil(),
                name("site"),
                port(8001),
                &settings,
                now(),
            );
            let required: Vec<&str> = app
                .runtime
                .required_runtimes
                .iter()
                .map(PackageId::as_str)
                .collect();
            assert_eq!(required, runtimes, "{preset}");
            assert_eq!(app.execution.command, command, "{preset}");
            assert_eq!(app.execution.arguments.join(" "), arguments, "{preset}");
            assert_eq!(app.deployment.entry_point, entry_point, "{preset}");
            assert_eq!(app.execution.timeout, Some(timeout), "{preset}");
            assert_eq!(app.execution.port, Some(port(8001)), "{preset}");
            assert_eq!(
                app.execution.environment.get("PORT").map(String::as_str),
                Some("8001")
            );
            assert_eq!(app.deployment.deployment_path, "/srv/apps/site");
            assert_eq!(app.execution.working_directory, "/srv/apps/site/current");
            assert_eq!(app.deployment.source_type, DeploymentSource::Upload);
            let health = app.execution.health_check_config.expect("health check");
            assert_eq!(health.path.as_deref(), Some("/"));
            assert!(health.start_period <= timeout, "{preset}");
        }
    }

    #[test]
    fn python_presets_allow_for_a_slow_start() {
        for preset in [PresetId::PythonHttp, PresetId::Flask] {
            let preset = preset.preset();
            assert!(preset.startup_timeout >= 60, "{}", preset.id);
            assert!(preset.health_start_period >= 60, "{}", preset.id);
        }
    }

    #[test]
    fn every_draft_passes_the_validation_rules() {
        let catalog: Vec<RuntimePackage> =
            ["busybox-httpd", "nginx", "python-311", "flask", "nodejs-18"]
                .into_iter()
                .map(|id| {
                    crate::domain::testing::package(
                        id,
                        "18.20.4",
                        crate::model::PackageStatus::Available,
                    )
                })
                .collect();
        let resources = SystemResources::default();
        let settings = ApplicationServerSettings::default();
        let rules = ValidationRules::new(catalog.iter(), &[], &resources, &settings);
        for preset in PresetId::ALL {
            let app = draft(
                *preset,
                Uuid::nil(),
                name("my-app"),
                port(8080),
                &settings,
                now(),
            );
            let checks = rules.check_application(&app);
            assert!(checks.valid(), "{preset}: {:?}", checks.errors());
            assert_eq!(
                app.execution.restart_policy,
                settings.default_restart_policy
            );
        }
    }

    #[test]
    fn ports_and_paths_are_replaced_where_they_stand_alone() {
        let ports = [
            (
                "-p 8001 -h /srv/apps/site/current",
                "8001",
                "8002",
                "-p 8002 -h /srv/apps/site/current",
            ),
            (
                "listen 8001; pid /tmp/nginx-8001.pid",
                "8001",
                "9000",
                "listen 9000; pid /tmp/nginx-9000.pid",
            ),
            ("80010 18001 8001", "8001", "8002", "80010 18001 8002"),
            (
                "PORT=8001\nNODE_ENV=production",
                "8001",
                "8002",
                "PORT=8002\nNODE_ENV=production",
            ),
            ("nothing here", "", "x", "nothing here"),
        ];
        for (text, old, new, expected) in ports {
            assert_eq!(replace_port(text, old, new), expected, "{text}");
        }
        let paths = [
            (
                "/srv/apps/site/current",
                "/srv/apps/site",
                "/srv/apps/blog",
                "/srv/apps/blog/current",
            ),
            (
                "/srv/apps/site-2/current",
                "/srv/apps/site",
                "/srv/apps/blog",
                "/srv/apps/site-2/current",
            ),
            (
                "-h /srv/apps/site/current",
                "/srv/apps/site",
                "/srv/apps/b",
                "-h /srv/apps/b/current",
            ),
        ];
        for (text, old, new, expected) in paths {
            assert_eq!(replace_path(text, old, new), expected, "{text}");
        }
    }
}
