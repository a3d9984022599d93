//! Backup tests: round trip (property), refusal listing every problem, v1 migration,
//! export options and migrateApp.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::domain::testing::{application, catalog, file, id, now, port};
use crate::model::{
    HealthCheckConfig, LogEntry, PackageStatus, PerformanceSnapshot, RestartPolicy, SealedSecret,
    SystemResources,
};

fn installed_packages() -> Vec<RuntimePackage> {
    catalog()
        .into_iter()
        .filter(|package| package.status == PackageStatus::Installed)
        .collect()
}

fn webvm_state() -> WebVMStatus {
    WebVMStatus {
        installed_runtimes: vec![id("nginx"), id("nodejs-18")],
        system_resources: SystemResources {
            memory_total: 512,
            disk_total: 2000,
            disk_used: 400,
            ..SystemResources::default()
        },
        ..WebVMStatus::default()
    }
}

fn sealed(text: &str) -> SealedSecret {
    SealedSecret::from_parts(
        "k1",
        "AAECAwQFBgcICQoL",
        &format!("{text}{}", "Q".repeat(24)),
    )
    .expect("sealed")
}

/// Three valid apps with history and secrets.
fn sample_apps() -> Vec<Application> {
    ["blog", "shop", "wiki"]
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let mut app = application(name);
            app.execution.port = Some(port(8000 + index as i64));
            app.runtime.required_runtimes = vec![id("nginx")];
            app.execution.secret_environment =
                BTreeMap::from([("DB_PASSWORD".to_owned(), sealed("c2VjcmV0"))]);
            app.metrics.recent_logs = vec![LogEntry {
                message: "hello".into(),
                ..LogEntry::default()
            }];
            app.metrics.performance_history = vec![PerformanceSnapshot::default()];
            app
        })
        .collect()
}

fn export(apps: &[Application], options: ExportOptions) -> ApplicationServerBackup {
    let packages = installed_packages();
    let settings = ApplicationServerSettings::default();
    let state = webvm_state();
    let source = BackupSource {
        webvm_state: &state,
        applications: apps,
        packages: &packages,
        settings: &settings,
    };
    export_backup(source, now(), options)
}

fn problems_of(result: Result<ImportedBackup, BackupError>) -> Vec<String> {
    match result {
        Err(BackupError::Invalid { problems }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected an invalid backup, got {other:?}"),
    }
}

#[test]
fn export_then_import_gives_an_equal_value() {
    let backup = export(&sample_apps(), ExportOptions::default());
    let json = to_json(&backup).expect("serializable");
    let imported = import_backup(&json, &catalog()).expect("valid backup");
    assert_eq!(imported.backup, backup);
    assert!(!json.contains("hello"), "history is left out by default");
    assert!(json.contains("enc:v1:k1:"), "sealed secrets are kept");
}

#[test]
fn export_options_table() {
    let apps = sample_apps();
    let cases = [
        (ExportOptions::default(), false, true),
        (
            ExportOptions {
                include_history: true,
                include_sealed_secrets: true,
            },
            true,
            true,
        ),
        (
            ExportOptions {
                include_history: false,
                include_sealed_secrets: false,
            },
            false,
            false,
        ),
    ];
    for (options, history, secrets) in cases {
        let mut with_token = apps.clone();
        with_token[0].deployment.source_config.token = Some(sealed("dG9rZW4"));
        let backup = export(&with_token, options);
        let app = &backup.applications[0];
        assert_eq!(!app.metrics.recent_logs.is_empty(), history, "{options:?}");
        assert_eq!(
            !app.metrics.performance_history.is_empty(),
            history,
            "{options:?}"
        );
        assert_eq!(
            !app.execution.secret_environment.is_empty(),
            secrets,
            "{options:?}"
        );
        assert_eq!(
            app.deployment.source_config.token.is_some(),
            secrets,
            "{options:?}"
        );
        assert_eq!(backup.version, CURRENT_FORMAT_VERSION);
        assert_eq!(backup.timestamp, now());
    }
}

#[test]
fn a_bad_backup_is_refused_with_every_problem_listed() {
    let backup = export(&sample_apps(), ExportOptions::default());
    let mut value = serde_json::to_value(&backup).expect("serializable");
    value["applications"][0]["name"] = json!("api");
    value["applications"][1]["execution"]["secretEnvironment"]["DB_PASSWORD"] = json!("hunter2");
    value["applications"][2]["execution"]["port"] = json!(8000);
    value["applications"][2]["runtime"]["requiredRuntimes"] = json!(["nodejs-99"]);
    value["packages"][0]["conflicts"] = json!(["nginx"]);
    let problems = problems_of(import_backup(&value.to_string(), &catalog()));
    let expected = [
        "applications[0] 'api', name: application name 'api' is reserved",
        "applications[1] 'shop', execution.secretEnvironment.DB_PASSWORD: secret is not a sealed value",
        "applications[2] 'wiki', runtime: required runtime 'nodejs-99' is not in the package catalog",
        "packages: installed packages nginx and nodejs-18 conflict",
    ];
    for fragment in expected {
        assert!(
            problems.iter().any(|p| p.contains(fragment)),
            "'{fragment}' not in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
}

#[test]
fn structural_failures_table() {
    let valid =
        serde_json::to_value(export(&sample_apps(), ExportOptions::default())).expect("json");
    let without = |field: &str| {
        let mut value = valid.clone();
        value.as_object_mut().map(|object| object.remove(field));
        value.to_string()
    };
    let invalid = |findings: &[&str]| -> Vec<String> {
        findings
            .iter()
            .map(|finding| (*finding).to_owned())
            .collect()
    };
    type Case<'a> = (&'a str, String, Result<Vec<String>, BackupError>);
    let cases: Vec<Case> = vec![
        (
            "not json",
            "{".to_owned(),
            Err(BackupError::Malformed(
                "EOF while parsing an object at line 1 column 1".to_owned(),
            )),
        ),
        (
            "not an object",
            "[]".to_owned(),
            Err(BackupError::Malformed("the file is JSON but not an object: a backup is one {…} with a version, applications and packages".to_owned())),
        ),
        (
            "no version",
            json!({"apps": []}).to_string(),
            Ok(invalid(&["version: is missing: this is not a backup"])),
        ),
        (
            "a numeric version",
            json!({"version": 2}).to_string(),
            Ok(invalid(&["version: must be a string, not a number"])),
        ),
        (
            "no applications",
            without("applications"),
            Ok(invalid(&["applications: is missing"])),
        ),
        (
            "applications not a list",
            {
                let mut value = valid.clone();
                value["applications"] = json!({"a": 1});
                value.to_string()
            },
            Ok(invalid(&["applications: must be a list, not an object"])),
        ),
        (
            "bad timestamp",
            {
                let mut value = valid.clone();
                value["timestamp"] = json!("yesterday");
                value.to_string()
            },
            Ok(invalid(&["timestamp: 'yesterday' is not an ISO 8601 date and time (for example 2026-12-03T07:00:00Z)"])),
        ),
        (
            "a bad date inside an application",
            {
                let mut value = valid.clone();
                value["applications"][1]["createdAt"] = json!("last week");
                value.to_string()
            },
            Ok(invalid(&["applications[1] 'shop', createdAt: 'last week' is not an ISO 8601 date and time (for example 2026-12-03T07:00:00Z)"])),
        ),
        (
            "three bad fields in one application, each named",
            {
                let mut value = valid.clone();
                value["applications"][0]["execution"]["port"] = json!("http");
                value["applications"][0]["status"] = json!("sleeping");
                value["applications"][0]["lastStarted"] = json!("never");
                value.to_string()
            },
            Ok(invalid(&[
                "applications[0] 'blog', execution.port: invalid type: string \"http\", expected i64",
                "applications[0] 'blog', lastStarted: 'never' is not an ISO 8601 date and time (for example 2026-12-03T07:00:00Z)",
                "applications[0] 'blog', status: unknown variant `sleeping`, expected one of `draft`, `deploying`, `deployed`, `starting`, `running`, `stopping`, `stopped`, `error`, `runtime-missing`, `failed`",
            ])),
        ),
        (
            "a required field missing",
            {
                let mut value = valid.clone();
                value["applications"][2].as_object_mut().map(|app| app.remove("createdAt"));
                value.to_string()
            },
            Ok(invalid(&["applications[2] 'wiki', createdAt: missing field `createdAt`"])),
        ),
        (
            "bad v1",
            json!({"version": "1", "apps": 3}).to_string(),
            Ok(invalid(&[
                "legacy (version 1) backup: invalid type: integer `3`, expected a sequence",
            ])),
        ),
    ];
    for (name, json, expected) in cases {
        let got = match import_backup(&json, &catalog()) {
            Err(BackupError::Invalid { problems }) => {
                Ok(problems.iter().map(ToString::to_string).collect())
            }
            Err(other) => Err(other),
            Ok(_) => panic!("{name}: imported"),
        };
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn consistency_problems_table() {
    let base = export(&sample_apps(), ExportOptions::default());
    let mut duplicate_ids = base.clone();
    duplicate_ids.applications[1].id = duplicate_ids.applications[0].id;
    let mut duplicate_package = base.clone();
    duplicate_package
        .packages
        .push(duplicate_package.packages[0].clone());
    let mut missing_runtime = base.clone();
    missing_runtime
        .webvm_state
        .installed_runtimes
        .push(id("python-311"));
    let mut unknown_running = base.clone();
    unknown_running.webvm_state.running_apps = vec![Uuid::nil()];
    let cases = [
        (duplicate_ids, "is also the id of applications[0]"),
        (
            unknown_running,
            "webvmState.runningApps: lists unknown running application 00000000-0000-0000-0000-000000000000",
        ),
        (duplicate_package, "package nodejs-18 appears twice"),
        (
            missing_runtime,
            "webvmState.installedRuntimes: lists python-311 as installed",
        ),
    ];
    for (backup, fragment) in cases {
        let (problems, _) = validate_backup(&backup, &catalog());
        assert!(
            problems.iter().any(|p| p.to_string().contains(fragment)),
            "{fragment}: {problems:?}"
        );
    }
    let (problems, warnings) = validate_backup(&base, &catalog());
    assert!(problems.is_empty(), "{problems:?}");
    assert!(warnings.is_empty(), "{warnings:?}");
}

fn legacy(name: &str, files: &[&str]) -> LegacyApp {
    LegacyApp {
        name: name.to_owned(),
        files: files.iter().map(|path| file(path)).collect(),
        deployed_at: now(),
        last_updated: now() + chrono::Duration::hours(1),
    }
}

#[test]
fn migrate_app_table() {
    let cases = [
        (
            "node",
            &["package.json", "index.js"][..],
            "node",
            "nodejs-18",
            "npm",
            "package.json",
        ),
        (
            "flask",
            &["static/x.css", "app.py"][..],
            "flask",
            "python-311",
            "python3",
            "app.py",
        ),
        (
            "tool",
            &["main.py"][..],
            "tool",
            "python-311",
            "python3",
            "main.py",
        ),
        (
            "My Site!",
            &["about.html", "index.html"][..],
            "my-site",
            "nginx",
            "nginx",
            "index.html",
        ),
        (
            "docs",
            &["readme.txt"][..],
            "docs",
            "nginx",
            "nginx",
            "readme.txt",
        ),
    ];
    for (name, files, new_name, runtime, command, entry) in cases {
        let app = migrate_app(&legacy(name, files)).expect("migratable");
        assert_eq!(app.name.as_str(), new_name);
        assert_eq!(app.runtime.required_runtimes, vec![id(runtime)]);
        assert_eq!(app.execution.command, command);
        assert_eq!(app.deployment.entry_point, entry);
        assert_eq!(
            app.deployment.deployment_path,
            format!("/srv/apps/{new_name}")
        );
        assert_eq!(app.status, ApplicationStatus::Deployed);
        assert_eq!(app.created_at, now());
        assert_eq!(app.last_deployed, now() + chrono::Duration::hours(1));
        assert_eq!(
            app.id,
            migrate_app(&legacy(name, files)).expect("again").id,
            "stable id"
        );
        assert_eq!(app.id.get_version_num(), 8);
    }
    assert_eq!(
        migrate_app(&legacy("empty", &[]))
            .err()
            .map(|e| e.to_string()),
        Some("legacy app 'empty' cannot be migrated: it has no files".to_owned())
    );
}

#[test]
fn v1_backups_are_migrated_on_import() {
    let v1 = BackupV1 {
        version: LEGACY_FORMAT_VERSION.to_owned(),
        timestamp: now(),
        apps: vec![
            legacy("site", &["index.html"]),
            legacy("Site", &["index.html"]),
            legacy("api", &["app.py"]),
        ],
    };
    let json = serde_json::to_string(&v1).expect("json");
    let imported = import_backup(&json, &catalog()).expect("migrates");
    let backup = imported.backup;
    assert_eq!(backup.version, CURRENT_FORMAT_VERSION);
    assert_eq!(backup.timestamp, now());
    let names: Vec<&str> = backup
        .applications
        .iter()
        .map(|app| app.name.as_str())
        .collect();
    assert_eq!(names, vec!["site", "Site-2", "api-app"]);
    let ports: Vec<u16> = backup
        .applications
        .iter()
        .filter_map(|app| app.execution.port)
        .map(Port::get)
        .collect();
    assert_eq!(ports, vec![8000, 8001, 8002]);
    assert_eq!(
        backup.applications[1].deployment.deployment_path,
        "/srv/apps/site-2"
    );
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.to_string().contains("python-311 is not installed")),
        "{:?}",
        imported.warnings
    );

    let broken = BackupV1 {
        apps: vec![legacy("empty", &[]), legacy("none", &[])],
        ..v1
    };
    let problems = problems_of(import_backup(
        &serde_json::to_string(&broken).expect("json"),
        &catalog(),
    ));
    assert_eq!(problems.len(), 2);
}

#[test]
fn v1_migration_runs_out_of_ports_cleanly() {
    let apps = (0..1001)
        .map(|n| legacy(&format!("site-{n}"), &["index.html"]))
        .collect();
    let v1 = BackupV1 {
        version: "1".into(),
        timestamp: now(),
        apps,
    };
    let problems = match migrate_v1(&v1) {
        Err(BackupError::Invalid { problems }) => problems,
        other => panic!(
            "expected exhaustion, got {:?}",
            other.map(|b| b.applications.len())
        ),
    };
    assert_eq!(
        problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["apps: legacy app 'site-1000': every port of 8000-8999 is in use".to_owned()]
    );
}

use crate::model::Port;

prop_compose! {
    fn arb_app(index: usize)(
        stem in "[a-z][a-z0-9]{2,12}",
        description in proptest::option::of("\\PC{0,40}"),
        environment in proptest::collection::btree_map("[A-Z_][A-Z0-9_]{0,8}", "\\PC{0,20}", 0..4),
        policy in prop::sample::select(RestartPolicy::ALL),
        status in prop::sample::select(ApplicationStatus::ALL),
        memory in proptest::option::of(16u64..64),
        health in proptest::option::of((1u32..120, 1u32..60, 1u32..10, 0u32..300)),
        counters in (0u64..1_000_000, 0u32..1000, 0i32..40_000, 0i64..2_000_000_000, 0u32..1_000_000_000),
        uses_nodejs in any::<bool>(),
    ) -> Application {
        let mut app = application(&format!("{stem}-{index}"));
        app.id = Uuid::from_u128(index as u128 + 1);
        app.description = description;
        app.status = status;
        app.execution.port = Some(port(8000 + index as i64));
        app.execution.environment = environment.into_iter().filter(|(k, _)| !k.contains("TOKEN") && !k.contains("SECRET") && !k.contains("PASSWORD") && !k.contains("API_KEY") && !k.contains("PRIVATE_KEY")).collect();
        app.execution.restart_policy = policy;
        app.execution.memory_limit = memory;
        app.execution.health_check_config = health.map(|(interval, timeout, retries, start_period)| HealthCheckConfig {
            interval, timeout: timeout.min(interval), retries, start_period, ..HealthCheckConfig::default()
        });
        let (requests, restarts, quarter_ms, seconds, nanos) = counters;
        app.metrics.request_count = requests;
        app.metrics.restart_count = restarts;
        app.metrics.response_time = f64::from(quarter_ms) / 4.0;
        app.created_at = DateTime::from_timestamp(seconds, nanos).unwrap_or_default();
        app.runtime.required_runtimes = if uses_nodejs { vec![id("nodejs-18")] } else { vec![id("nginx")] };
        app
    }
}

fn arb_apps() -> impl Strategy<Value = Vec<Application>> {
    (0usize..8).prop_flat_map(|count| (0..count).map(arb_app).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_export_imports_to_an_equal_value(apps in arb_apps()) {
        let backup = export(&apps, ExportOptions::default());
        let json = to_json(&backup).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let imported = import_backup(&json, &catalog()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(imported.backup, backup);
    }
}

/// Hostile imports: deeply nested or very large JSON ends in an error or a result, never a
/// stack overflow, a panic or a hang.
mod hostile_input {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        for depth in [200, 10_000, 1_000_000] {
            let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert!(matches!(
                import_backup(&json, &catalog()),
                Err(BackupError::Malformed(_))
            ));
            let nested_object = format!(
                "{{\"version\":\"2\",\"settings\":{}1{}}}",
                "{\"a\":".repeat(depth),
                "}".repeat(depth)
            );
            assert!(import_backup(&nested_object, &catalog()).is_err());
        }
    }

    #[test]
    fn a_huge_backup_is_read_and_every_problem_listed() {
        let backup = ApplicationServerBackup {
            version: CURRENT_FORMAT_VERSION.to_owned(),
            timestamp: now(),
            webvm_state: webvm_state(),
            applications: Vec::new(),
            packages: installed_packages(),
            settings: Default::default(),
        };
        let mut value = serde_json::to_value(&backup).expect("serializes");
        // 20,000 apps, all with the same name and port: every duplicate is a problem.
        let mut app = application("same-name");
        app.execution.port = Some(port(8080));
        let app = serde_json::to_value(app).expect("serializes");
        value["applications"] = Value::Array(vec![app; 20_000]);
        let json = value.to_string();
        match import_backup(&json, &catalog()) {
            Err(BackupError::Invalid { problems }) => assert!(problems.len() >= 19_999),
            other => panic!("duplicates must be refused, got {other:?}"),
        }
        // A 16 MiB description is one long field: read, and judged by the rules.
        let mut app = application("long-text");
        app.description = Some("x".repeat(16 << 20));
        value["applications"] = json!([app]);
        assert!(matches!(
            import_backup(&value.to_string(), &catalog()),
            Ok(_) | Err(BackupError::Invalid { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "[\\[\\]{}\":,0-9a-z \\\\]{0,400}") {
            let _ = import_backup(&text, &catalog());
        }
    }
}
