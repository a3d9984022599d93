//! Backups written by other implementations of the seed's interfaces: free versions, ISO
//! 8601 dates, absent optional fields and settings, unknown fields, uploads without files.

use serde_json::{json, Value};

use super::*;
use crate::domain::testing::catalog;

/// A backup as a TypeScript implementation of the seed would write it: only the seed's
/// fields (and two of its own), `Date`s from `toJSON` and other ISO 8601 forms.
fn foreign() -> Value {
    json!({
        "version": "1.4.0",
        "timestamp": "2026-11-30T12:00:00.000Z",
        "exportedBy": "another-app-server",
        "webvmState": {
            "state": "ready",
            "loadProgress": 100,
            "installedRuntimes": ["nginx"],
            "runningApps": [],
            "systemResources": {
                "memoryUsed": 120, "memoryTotal": 512, "diskUsed": 300,
                "diskTotal": 2000, "cpuUsage": 3, "processCount": 21
            }
        },
        "applications": [{
            "id": "5b0f8a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            "name": "portfolio",
            "runtime": {
                "requiredRuntimes": ["nginx"], "optionalRuntimes": [],
                "minimumVersions": {}, "recommendedVersions": {}
            },
            "runtimeStatus": {
                "canStart": true, "missingRuntimes": [], "conflictingRuntimes": [],
                "versionMismatches": [], "lastChecked": "2026-11-30", "issues": []
            },
            "status": "running",
            "deployment": {
                "sourceType": "upload",
                "sourceConfig": {},
                "deploymentPath": "/srv/apps/portfolio",
                "entryPoint": "index.html"
            },
            "execution": {
                "command": "nginx", "arguments": ["-g", "daemon off;"],
                "workingDirectory": "/srv/apps/portfolio", "port": 8080,
                "environment": {}, "secretEnvironment": {},
                "autoRestart": true, "restartPolicy": "on-failure"
            },
            "metrics": {
                "memoryUsage": 3, "cpuUsage": 0, "diskUsage": 1, "requestCount": 10,
                "requestRate": 0, "responseTime": 5, "errorRate": 0, "uptime": 100,
                "restartCount": 0, "healthStatus": "healthy",
                "recentLogs": [{
                    "timestamp": "2026-11-30 11:59:00", "level": "info",
                    "message": "started", "source": "system"
                }],
                "performanceHistory": []
            },
            "createdAt": "2026-11-01T10:00:00Z",
            "lastDeployed": "20261102T100000+0100",
            "favourite": true
        }],
        "packages": [{
            "id": "nginx", "name": "nginx", "description": "HTTP server",
            "category": "web-server", "version": "1.22.1-9", "dependencies": [],
            "conflicts": [], "debPackages": ["nginx_1.22.1-9_i386.deb"], "size": 1.2,
            "extractedSize": 3.4, "checksums": {}, "status": "installed",
            "installDate": "2026-11-01"
        }],
        "settings": {}
    })
}

fn messages(findings: &[Finding]) -> Vec<String> {
    findings.iter().map(ToString::to_string).collect()
}

#[test]
fn a_backup_from_another_implementation_imports_with_warnings() {
    let imported = import_backup(&foreign().to_string(), &catalog()).expect("imports");
    let backup = &imported.backup;
    assert_eq!(backup.version, CURRENT_FORMAT_VERSION);
    assert_eq!(backup.applications.len(), 1);
    let app = &backup.applications[0];
    assert_eq!(app.last_deployed.to_rfc3339(), "2026-11-02T09:00:00+00:00");
    assert_eq!(
        app.metrics.recent_logs[0].timestamp.to_rfc3339(),
        "2026-11-30T11:59:00+00:00"
    );
    assert_eq!(backup.settings, ApplicationServerSettings::default());
    let warnings = messages(&imported.warnings);
    let expected = [
        "version: written as version '1.4.0', not this program's format 2: read as the seed's ApplicationServerBackup",
        "exportedBy: not a field this program knows: ignored",
        "applications[0] 'portfolio', favourite: not a field this program knows: ignored",
        "applications[0] 'portfolio', deployment.sourceConfig.files: the backup holds none of its files",
    ];
    for fragment in expected {
        assert!(
            warnings.iter().any(|warning| warning.contains(fragment)),
            "'{fragment}' not in {warnings:#?}"
        );
    }
}

#[test]
fn leniency_table() {
    type Case<'a> = (&'a str, fn(&mut Value), Result<(), &'a str>);
    let cases: Vec<Case> = vec![
        ("as written", |_| {}, Ok(())),
        (
            "settings absent",
            |value| {
                value
                    .as_object_mut()
                    .map(|object| object.remove("settings"));
            },
            Ok(()),
        ),
        (
            "one setting given",
            |value| value["settings"] = json!({"maxLogEntries": 500}),
            Ok(()),
        ),
        (
            "a setting out of range",
            |value| value["settings"] = json!({"maxLogEntries": 5000}),
            Err("settings: log retention 5000 must be 1 to 1000 entries per application"),
        ),
        (
            "optional application fields absent",
            |value| {
                let app = &mut value["applications"][0];
                for field in ["description", "healthCheck", "lastStarted", "lastStopped"] {
                    app.as_object_mut().map(|object| object.remove(field));
                }
                app["execution"]
                    .as_object_mut()
                    .map(|object| object.remove("port"));
            },
            Ok(()),
        ),
        (
            "an enum literal that is not the seed's",
            |value| value["applications"][0]["execution"]["restartPolicy"] = json!("sometimes"),
            Err(
                "applications[0] 'portfolio', execution.restartPolicy: unknown variant `sometimes`",
            ),
        ),
        (
            "the same name twice is one problem, on the second",
            |value| {
                let mut copy = value["applications"][0].clone();
                copy["id"] = json!("6b0f8a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
                copy["name"] = json!("Portfolio");
                copy["deployment"]["deploymentPath"] = json!("/srv/apps/portfolio-2");
                copy["execution"]["workingDirectory"] = json!("/srv/apps/portfolio-2");
                copy["execution"]["port"] = json!(8081);
                if let Some(apps) = value["applications"].as_array_mut() {
                    apps.push(copy);
                }
            },
            Err("applications[1] 'Portfolio', name: application name 'Portfolio' is already taken"),
        ),
    ];
    for (name, change, expected) in cases {
        let mut value = foreign();
        change(&mut value);
        let result = import_backup(&value.to_string(), &catalog());
        match (result, expected) {
            (Ok(_), Ok(())) => {}
            (Err(BackupError::Invalid { problems }), Err(fragment)) => {
                let problems = messages(&problems);
                assert_eq!(problems.len(), 1, "{name}: {problems:#?}");
                assert!(problems[0].starts_with(fragment), "{name}: {problems:#?}");
            }
            (other, expected) => panic!("{name}: got {other:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn every_bad_record_is_named_even_when_others_parse() {
    let mut value = foreign();
    let good = value["applications"][0].clone();
    let mut bad = good.clone();
    bad["id"] = json!("not-a-uuid");
    bad["name"] = json!("x");
    value["applications"] = json!([bad, good]);
    value["packages"][0]["status"] = json!("lost");
    let problems = match import_backup(&value.to_string(), &catalog()) {
        Err(BackupError::Invalid { problems }) => problems,
        other => panic!("refused expected, got {other:?}"),
    };
    let places: Vec<(Place, &str)> = problems
        .iter()
        .map(|problem| (problem.place.clone(), problem.field.as_str()))
        .collect();
    assert_eq!(
        places,
        vec![
            (
                Place::Application {
                    index: 0,
                    name: Some("x".to_owned())
                },
                "id"
            ),
            (
                Place::Application {
                    index: 0,
                    name: Some("x".to_owned())
                },
                "name"
            ),
            (
                Place::Package {
                    index: 0,
                    id: Some("nginx".to_owned())
                },
                "status"
            ),
        ],
        "{problems:#?}"
    );
}

#[test]
fn hostile_labels_are_shortened() {
    let mut value = foreign();
    value["applications"][0]["name"] = json!("n".repeat(10_000));
    value["applications"][0]["createdAt"] = json!("d".repeat(10_000));
    let problems = match import_backup(&value.to_string(), &catalog()) {
        Err(BackupError::Invalid { problems }) => problems,
        other => panic!("refused expected, got {other:?}"),
    };
    assert!(!problems.is_empty());
    for problem in &problems {
        assert!(problem.to_string().len() < 400, "{problem}");
    }
}

#[test]
fn a_legacy_backup_gets_ports_the_workspace_does_not_use() {
    let legacy = json!({
        "version": "1",
        "timestamp": "2026-11-30T12:00:00Z",
        "apps": [{
            "name": "old-site",
            "files": [{"path": "index.html", "size": 12, "sha256": "ab".repeat(32), "blobId": uuid::Uuid::nil()}],
            "deployedAt": "2026-01-01T00:00:00Z",
            "lastUpdated": "2026-02-01T00:00:00Z"
        }]
    });
    let taken = [8000, 8001]
        .into_iter()
        .map(|number| crate::model::Port::parse(number).expect("port"))
        .collect();
    let imported = import_backup_into(&legacy.to_string(), &catalog(), &taken).expect("migrates");
    let port = imported.backup.applications[0]
        .execution
        .port
        .map(u16::from);
    assert_eq!(port, Some(8002));
}
