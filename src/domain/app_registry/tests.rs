//! Table-driven tests of the application registry's record and its transitions.

use chrono::Duration;
use uuid::Uuid;

use super::*;
use crate::domain::testing::{application, id, now};
use crate::model::{ApplicationStatus as A, DeploymentStatus as D, PackageId};

fn draft(name: &str) -> Application {
    let mut app = application(name);
    app.status = A::Draft;
    app
}

fn deployment(app: &Application, n: u128) -> DeploymentOperation {
    DeploymentOperation::new(Uuid::from_u128(n), app.id, now())
}

fn compatible() -> RuntimeCompatibility {
    RuntimeCompatibility {
        can_start: true,
        last_checked: now(),
        ..RuntimeCompatibility::default()
    }
}

fn missing(runtime: &str) -> RuntimeCompatibility {
    RuntimeCompatibility {
        can_start: false,
        missing_runtimes: vec![id(runtime)],
        issues: vec![format!("required runtime {runtime} is not installed")],
        last_checked: now(),
        ..RuntimeCompatibility::default()
    }
}

fn book_with(app: &Application) -> AppBook {
    let mut book = AppBook::default();
    book.save(app.clone());
    book
}

#[test]
fn a_deployment_goes_draft_deploying_deployed_and_its_release_becomes_current() {
    let app = draft("shop");
    let mut book = book_with(&app);
    let op = deployment(&app, 1);
    book.begin_deployment(op.clone()).expect("begins");
    assert_eq!(book.applications[&app.id].status, A::Deploying);
    for (status, progress) in [(D::Uploading, 30), (D::Building, 60), (D::Deploying, 90)] {
        book.advance(app.id, op.id, status, progress)
            .expect("advances");
    }
    let later = now() + Duration::seconds(5);
    let facts = ReleaseFacts {
        served_directory: "dist".into(),
        file_count: 3,
        total_bytes: 10,
    };
    book.complete_deployment(app.id, op.id, facts, compatible(), later)
        .expect("completes");
    let saved = &book.applications[&app.id];
    assert_eq!(saved.status, A::Deployed);
    assert_eq!(saved.last_deployed, later);
    assert_eq!(book.current_release(app.id).map(|d| d.id), Some(op.id));
    let done = &book.history(app.id)[0];
    assert_eq!((done.status, done.progress), (D::Completed, 100));
    assert_eq!(done.served_directory.as_deref(), Some("dist"));
}

#[test]
fn deployment_steps_follow_the_lifecycle_table() {
    // (steps, the first refused step's index, if any)
    let cases: [(&[D], Option<usize>); 4] = [
        (&[D::Uploading, D::Building, D::Deploying], None),
        (&[D::Uploading, D::Deploying], None),
        (&[D::Building, D::Uploading], Some(1)),
        (&[D::Deploying, D::Building], Some(1)),
    ];
    for (steps, refused) in cases {
        let app = draft("shop");
        let mut book = book_with(&app);
        let op = deployment(&app, 1);
        book.begin_deployment(op.clone()).expect("begins");
        let first_error = steps
            .iter()
            .position(|step| book.advance(app.id, op.id, *step, 50).is_err());
        assert_eq!(first_error, refused, "{steps:?}");
    }
}

#[test]
fn a_failed_deployment_keeps_the_current_release_and_records_the_reason() {
    let app = draft("shop");
    let mut book = book_with(&app);
    let first = deployment(&app, 1);
    book.begin_deployment(first.clone()).expect("begins");
    book.advance(app.id, first.id, D::Deploying, 90)
        .expect("advances");
    book.complete_deployment(
        app.id,
        first.id,
        ReleaseFacts::default(),
        compatible(),
        now(),
    )
    .expect("completes");
    let second = deployment(&app, 2);
    book.begin_deployment(second.clone()).expect("begins");
    book.fail_deployment(app.id, second.id, "build timed out after 2 s", now())
        .expect("fails");
    let saved = &book.applications[&app.id];
    assert_eq!(saved.status, A::Failed);
    assert_eq!(
        saved.metrics.last_error.as_deref(),
        Some("build timed out after 2 s")
    );
    assert_eq!(book.current_release(app.id).map(|d| d.id), Some(first.id));
    assert_eq!(book.history(app.id)[1].status, D::Failed);
}

#[test]
fn only_one_deployment_at_a_time_and_unknown_ids_are_refused() {
    let app = draft("shop");
    let mut book = book_with(&app);
    book.begin_deployment(deployment(&app, 1)).expect("begins");
    let again = book.begin_deployment(deployment(&app, 2));
    assert!(matches!(
        again,
        Err(RegistryError::DeploymentRunning { .. })
    ));
    let stranger = draft("other");
    assert!(matches!(
        book.begin_deployment(deployment(&stranger, 3)),
        Err(RegistryError::UnknownApplication(_))
    ));
    assert!(matches!(
        book.advance(app.id, Uuid::from_u128(9), D::Uploading, 1),
        Err(RegistryError::UnknownDeployment { .. })
    ));
}

#[test]
fn a_reload_mid_deploy_fails_that_deployment_and_reports_it() {
    let app = draft("shop");
    let mut book = book_with(&app);
    let op = deployment(&app, 1);
    book.begin_deployment(op.clone()).expect("begins");
    book.advance(app.id, op.id, D::Uploading, 20)
        .expect("advances");
    let found = book.recover_interrupted(now());
    assert_eq!(
        found,
        vec![Interrupted {
            application: app.id,
            name: "shop".into(),
            deployment: op.id
        }]
    );
    assert_eq!(book.history(app.id)[0].status, D::Failed);
    assert!(book.history(app.id)[0]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("interrupted")));
    assert!(book.recover_interrupted(now()).is_empty(), "only once");
}

#[test]
fn the_history_keeps_the_newest_and_always_the_current_release() {
    let app = draft("shop");
    let mut book = book_with(&app);
    let first = deployment(&app, 1);
    book.begin_deployment(first.clone()).expect("begins");
    book.advance(app.id, first.id, D::Deploying, 90)
        .expect("advances");
    book.complete_deployment(
        app.id,
        first.id,
        ReleaseFacts::default(),
        compatible(),
        now(),
    )
    .expect("completes");
    for n in 2..(DEPLOYMENTS_KEPT as u128 + 5) {
        let op = deployment(&app, n);
        book.begin_deployment(op.clone()).expect("begins");
        book.fail_deployment(app.id, op.id, "no", now())
            .expect("fails");
    }
    let history = book.history(app.id);
    assert_eq!(history.len(), DEPLOYMENTS_KEPT);
    assert_eq!(
        history[0].id, first.id,
        "the current release's deployment stays"
    );
}

#[test]
fn saving_keeps_the_registry_owned_fields() {
    let app = draft("shop");
    let mut book = book_with(&app);
    let op = deployment(&app, 1);
    book.begin_deployment(op).expect("begins");
    let mut edited = app.clone();
    edited.status = A::Running;
    edited.description = Some("new words".into());
    book.save(edited);
    let saved = &book.applications[&app.id];
    assert_eq!(saved.status, A::Deploying, "a form can't set the status");
    assert_eq!(saved.description.as_deref(), Some("new words"));
}

#[test]
fn runtime_status_moves_apps_at_rest_in_and_out_of_runtime_missing() {
    // (status before, released?, runtime present?, status after)
    let cases = [
        (A::Draft, false, false, A::RuntimeMissing),
        (A::RuntimeMissing, false, true, A::Draft),
        (A::Deployed, true, false, A::RuntimeMissing),
        (A::RuntimeMissing, true, true, A::Deployed),
        (A::Deploying, false, false, A::Deploying),
        (A::Deployed, true, true, A::Deployed),
    ];
    for (before, released, present, after) in cases {
        let mut app = draft("shop");
        app.status = before;
        app.runtime.required_runtimes = vec![id("nginx")];
        let mut book = book_with(&app);
        if released {
            book.current_releases.insert(app.id, Uuid::from_u128(1));
        }
        book.apply_compatibility(|_| {
            if present {
                compatible()
            } else {
                missing("nginx")
            }
        });
        let saved = &book.applications[&app.id];
        assert_eq!(
            saved.status, after,
            "{before} released={released} present={present}"
        );
        assert_eq!(saved.runtime_status.can_start, present);
    }
}

#[test]
fn the_dependency_graph_lists_who_needs_each_runtime() {
    let mut web = draft("web");
    web.runtime.required_runtimes = vec![id("nginx"), id("python-311")];
    let mut api = draft("shop-api");
    api.runtime.required_runtimes = vec![id("python-311")];
    let mut book = book_with(&web);
    book.save(api.clone());
    let graph = book.dependency_graph();
    let users = |runtime: &str| {
        graph
            .runtime_dependencies
            .get(&PackageId::parse(runtime).expect("id"))
            .cloned()
    };
    assert_eq!(users("nginx"), Some(vec![web.id]));
    let mut python = users("python-311").unwrap_or_default();
    python.sort();
    let mut expected = vec![web.id, api.id];
    expected.sort();
    assert_eq!(python, expected);
}

#[test]
fn stored_records_are_read_by_schema_version() {
    let book = book_with(&draft("shop"));
    let text = serde_json::to_string(&book).expect("serializes");
    assert_eq!(AppBook::from_json(&text), Ok(book));
    let cases = [
        ("{\"applications\":{}}", "no schemaVersion"),
        ("{\"schemaVersion\":0}", "format 0 has no upgrade"),
        ("{\"schemaVersion\":99}", "newer version"),
        ("not json", "unreadable"),
    ];
    for (text, expected) in cases {
        let error = AppBook::from_json(text).expect_err(text).to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
}

#[test]
fn a_format_1_record_is_upgraded_with_the_default_settings() {
    let book = book_with(&draft("shop"));
    let mut value = serde_json::to_value(&book).expect("serializes");
    // Format 1 as it was written: no settings.
    let object = value.as_object_mut().expect("an object");
    object.remove("settings");
    object.insert("schemaVersion".into(), 1.into());
    let upgraded = AppBook::from_json(&value.to_string()).expect("upgraded");
    assert_eq!(upgraded.schema_version, APP_BOOK_SCHEMA_VERSION);
    assert_eq!(upgraded.settings, ApplicationServerSettings::default());
    assert_eq!(upgraded.applications, book.applications);

    // Each step alone: 1 → 2.
    let mut one = serde_json::json!({ "schemaVersion": 1, "applications": {} });
    assert_eq!(APP_BOOK_FORMAT.upgrade_to_current(&mut one), Ok(()));
    assert_eq!(one["schemaVersion"], 2);
    assert!(one["settings"]["portRange"].is_object(), "{one}");
    // A format 2 record keeps its own settings.
    let mut custom = book.clone();
    custom.settings.releases_kept = 7;
    let text = serde_json::to_string(&custom).expect("serializes");
    assert_eq!(
        AppBook::from_json(&text)
            .expect("read")
            .settings
            .releases_kept,
        7
    );
}

#[test]
fn run_statuses_keep_the_start_and_stop_times() {
    let mut app = draft("web");
    app.status = A::Deployed;
    let mut book = book_with(&app);
    let at = |seconds: i64| now() + Duration::seconds(seconds);
    // (to, at, lastStarted, startTime, lastStopped, running)
    let table = [
        (A::Starting, 1, Some(1), None, None, true),
        (A::Running, 3, Some(1), Some(3), None, true),
        (A::Stopping, 9, Some(1), Some(3), None, true),
        (A::Stopped, 10, Some(1), None, Some(10), false),
        (A::Starting, 20, Some(20), None, Some(10), true),
        (A::Error, 21, Some(20), None, Some(21), false),
        (A::Starting, 22, Some(22), None, Some(21), true),
        (A::Failed, 30, Some(22), None, Some(30), false),
    ];
    for (step, (to, when, started, start_time, stopped, running)) in table.into_iter().enumerate() {
        book.set_run_status(app.id, to, at(when))
            .unwrap_or_else(|error| panic!("step {step}: {error}"));
        let stored = &book.applications[&app.id];
        assert_eq!(stored.status, to, "step {step}");
        assert_eq!(stored.last_started, started.map(at), "step {step}");
        assert_eq!(stored.metrics.start_time, start_time.map(at), "step {step}");
        assert_eq!(stored.last_stopped, stopped.map(at), "step {step}");
        assert_eq!(book.running().contains(&app.id), running, "step {step}");
    }
    // A draft can't start, and nothing changed.
    let mut other = draft("other");
    other.status = A::Draft;
    book.save(other.clone());
    assert!(book.set_run_status(other.id, A::Starting, at(40)).is_err());
    assert_eq!(book.applications[&other.id].status, A::Draft);
}
