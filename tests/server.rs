//! Integration tests: the real router on a temporary SQLite file, or on a fresh PostgreSQL
//! database when `WEBVM_TEST_POSTGRES_URL` is set (see `common::database`), called over HTTP.
#![cfg(feature = "ssr")]

mod common;

use common::database;

use chrono::Utc;
use uuid::Uuid;
use webvm_appserver::host::serve;
use webvm_appserver::model::{
    AppName, Application, ApplicationStatus, DeploymentConfig, ExecutionConfig, Port,
};
use webvm_appserver::server::config::Config;
use webvm_appserver::server::storage::{StartupError, Storage, WorkspaceCredentials};
use webvm_appserver::server::ServeError;

/// A server running on a free loopback port with its own data directory.
struct TestServer {
    base: String,
    config: Config,
    _data: tempfile::TempDir,
}

async fn start_server() -> TestServer {
    let data = tempfile::tempdir().expect("temp dir");
    let config = database::test_config(data.path().join("data")).await;
    let base = common::serve_on_loopback(&config).await;
    TestServer {
        base,
        config,
        _data: data,
    }
}

fn cookie(credentials: &WorkspaceCredentials) -> String {
    format!("webvm_workspace={}.{}", credentials.id, credentials.token)
}

fn sample_application(name: &str) -> Application {
    let name = AppName::parse(name).expect("valid name");
    let deployment = DeploymentConfig {
        deployment_path: DeploymentConfig::default_path(&name),
        entry_point: "index.html".into(),
        ..DeploymentConfig::default()
    };
    let execution = ExecutionConfig {
        command: "busybox".into(),
        arguments: vec!["httpd".into(), "-f".into()],
        port: Some(Port::parse(8080).expect("valid port")),
        ..ExecutionConfig::default()
    };
    let mut application = Application::new(Uuid::new_v4(), name, deployment, execution, Utc::now());
    application.description = Some("A static site".into());
    application.status = ApplicationStatus::Running;
    application
}

async fn call(
    server: &TestServer,
    function: &str,
    body: &str,
    cookie: Option<&str>,
) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("{}/api/{function}", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body.to_string());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json)
}

#[tokio::test]
async fn healthz_reports_the_database() {
    let server = start_server().await;
    let response = reqwest::get(format!("{}/healthz", server.base))
        .await
        .expect("healthz");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], database::backend_name());
    let sqlite_file = server.config.data_dir.join("webvm-appserver.db");
    if database::is_postgres() {
        assert!(
            !sqlite_file.exists(),
            "no SQLite file when PostgreSQL is configured"
        );
    } else {
        assert!(
            sqlite_file.exists(),
            "database file created in the data dir"
        );
    }
}

#[tokio::test]
async fn server_functions_without_a_workspace_return_empty_state() {
    let server = start_server().await;
    let (status, body) = call(&server, "dashboard_summary", "", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hasWorkspace"], false);
    assert_eq!(body["applicationsTotal"], 0);

    let (status, body) = call(&server, "list_applications", "", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!([]));

    let (status, body) = call(&server, "list_packages", "", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!([]));

    let (status, body) = call(&server, "get_settings", "", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["hasWorkspace"], false);
    assert_eq!(body["databaseBackend"], database::backend_name());
}

#[tokio::test]
async fn a_workspace_sees_its_own_applications_and_nobody_else_does() {
    let server = start_server().await;
    let storage = Storage::open(&server.config).await.expect("storage");
    let owner = storage.create_workspace().await.expect("workspace");
    let stranger = storage.create_workspace().await.expect("workspace");
    storage
        .put_application(owner.id, &sample_application("blog"))
        .await
        .expect("stored");

    let (status, body) = call(&server, "list_applications", "", Some(&cookie(&owner))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["name"], "blog");
    assert_eq!(body[0]["status"], "running");
    assert_eq!(body[0]["port"], 8080);

    let (_, body) = call(&server, "dashboard_summary", "", Some(&cookie(&owner))).await;
    assert_eq!(body["applicationsTotal"], 1);
    assert_eq!(body["applicationsRunning"], 1);

    let (_, body) = call(&server, "list_applications", "", Some(&cookie(&stranger))).await;
    assert_eq!(body, serde_json::json!([]));

    let forged = WorkspaceCredentials {
        id: owner.id,
        token: "f".repeat(64),
    };
    let (_, body) = call(&server, "list_applications", "", Some(&cookie(&forged))).await;
    assert_eq!(body, serde_json::json!([]), "a wrong token opens nothing");

    let (status, body) = call(
        &server,
        "get_application",
        "name=BLOG",
        Some(&cookie(&owner)),
    )
    .await;
    assert_eq!(status, 200, "names compare case-insensitively: {body}");
    assert_eq!(body["deployment"]["deploymentPath"], "/srv/apps/blog");

    let (status, body) = call(
        &server,
        "get_application",
        "name=missing",
        Some(&cookie(&owner)),
    )
    .await;
    assert_eq!(status, 404, "a missing application is a 404: {body}");
    assert_eq!(body["NotFound"]["what"], "The application “missing”");
}

#[tokio::test]
async fn pages_render_on_the_server() {
    let server = start_server().await;
    let storage = Storage::open(&server.config).await.expect("storage");
    let owner = storage.create_workspace().await.expect("workspace");
    storage
        .put_application(owner.id, &sample_application("shop"))
        .await
        .expect("stored");
    let client = reqwest::Client::new();

    let page = |path: &str, with_cookie: bool| {
        let mut request = client.get(format!("{}{path}", server.base));
        if with_cookie {
            request = request.header("cookie", cookie(&owner));
        }
        request.send()
    };

    let response = page("/applications", true).await.expect("page");
    assert_eq!(response.status(), 200);
    let html = response.text().await.expect("html");
    assert!(
        html.contains("shop") && html.contains("A static site"),
        "registry lists the app"
    );

    let response = page("/applications/shop", true).await.expect("page");
    assert_eq!(response.status(), 200);
    assert!(response
        .text()
        .await
        .expect("html")
        .contains("/srv/apps/shop"));

    let response = page("/applications/shop", false).await.expect("page");
    assert_eq!(response.status(), 404, "another browser can't see the app");

    let response = page("/definitely/not/here", false).await.expect("page");
    assert_eq!(response.status(), 404);
    assert!(response
        .text()
        .await
        .expect("html")
        .contains("This page does not exist"));
}

#[tokio::test]
async fn public_status_pages_follow_share_links() {
    let server = start_server().await;
    let storage = Storage::open(&server.config).await.expect("storage");
    let owner = storage.create_workspace().await.expect("workspace");
    let application = sample_application("status-demo");
    storage
        .put_application(owner.id, &application)
        .await
        .expect("stored");
    let token = storage
        .create_share_link(owner.id, application.id, None)
        .await
        .expect("link");

    let response = reqwest::get(format!("{}/status/{token}", server.base))
        .await
        .expect("page");
    assert_eq!(response.status(), 200);
    let html = response.text().await.expect("html");
    assert!(html.contains("status-demo"));
    assert!(
        !html.contains("busybox"),
        "the public page shows no configuration"
    );

    let (status, body) = call(&server, "public_status", &format!("token={token}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "status-demo");

    for bad in ["nope".to_string(), "0".repeat(64)] {
        let response = reqwest::get(format!("{}/status/{bad}", server.base))
            .await
            .expect("page");
        assert_eq!(response.status(), 404, "{bad}");
    }
}

#[tokio::test]
async fn each_test_server_has_a_database_of_its_own() {
    let first = start_server().await;
    let second = start_server().await;
    assert_ne!(
        first.config.effective_database_url(),
        second.config.effective_database_url()
    );
    let first_storage = Storage::open(&first.config).await.expect("storage");
    let second_storage = Storage::open(&second.config).await.expect("storage");
    assert_eq!(first_storage.backend(), database::backend());
    let owner = first_storage.create_workspace().await.expect("workspace");
    first_storage
        .put_application(owner.id, &sample_application("alone"))
        .await
        .expect("stored");
    assert_eq!(
        first_storage.authenticate(&owner).await.expect("query"),
        Some(owner.id)
    );
    assert_eq!(
        second_storage.authenticate(&owner).await.expect("query"),
        None,
        "the other server's database has no such workspace"
    );
    let (_, body) = call(&second, "list_applications", "", Some(&cookie(&owner))).await;
    assert_eq!(body, serde_json::json!([]));
}

// SQLite only: a PostgreSQL database does not live in the data directory.
#[tokio::test]
async fn start_up_fails_clearly_when_the_data_dir_is_not_writable() {
    let data = tempfile::tempdir().expect("temp dir");
    let blocker = data.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").expect("write");
    let config = Config::for_data_dir(blocker.join("data"));
    let error = Storage::open(&config).await.expect_err("must fail");
    assert!(matches!(error, StartupError::DataDirNotWritable { .. }));
    assert!(error.to_string().contains("not writable"), "{error}");
}

#[tokio::test]
async fn start_up_fails_clearly_when_the_database_is_unreachable() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_data_dir(data.path().to_path_buf());
    config.database_url = Some("postgres://user:secret@127.0.0.1:9/nothing".into());
    let error = serve(config).await.expect_err("must fail");
    let message = error.to_string();
    assert!(
        matches!(
            error,
            ServeError::Startup(StartupError::DatabaseUnreachable { .. })
        ),
        "{message}"
    );
    assert!(message.contains("can't be reached"), "{message}");
    assert!(
        !message.contains("secret"),
        "the password is redacted: {message}"
    );
}
