//! Integration tests of the application mirror's writes (`save_application`,
//! `delete_application`): the real router over loopback HTTP, on a temporary SQLite file or a
//! fresh PostgreSQL database when `WEBVM_TEST_POSTGRES_URL` is set (see `common::database`).
#![cfg(feature = "ssr")]

mod common;

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;
use webvm_appserver::api::applications::SAVE_BODY_LIMIT;
use webvm_appserver::host::build_app;
use webvm_appserver::model::catalog::PackageCatalogEntry;
use webvm_appserver::model::{
    AppName, Application, DeploymentConfig, ExecutionConfig, PackageId, Port, RuntimeCategory,
    RuntimePackage,
};
use webvm_appserver::server::config::EdgeConfig;
use webvm_appserver::server::storage::Storage;

/// A server on a free loopback port, with its storage at hand.
struct TestServer {
    base: String,
    storage: Storage,
    _data: tempfile::TempDir,
}

async fn start_with(edit: impl FnOnce(&mut EdgeConfig)) -> TestServer {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = common::database::test_config(data.path().join("data")).await;
    edit(&mut config.edge);
    let built = build_app(&config).await.expect("router builds");
    let addr = common::serve_router(built.router, &config.edge).await;
    TestServer {
        base: format!("http://{addr}"),
        storage: built.storage,
        _data: data,
    }
}

async fn start() -> TestServer {
    start_with(|_| {}).await
}

/// One answer of a server function or page.
struct Answer {
    status: u16,
    set_cookie: Option<String>,
    body: Value,
}

impl Answer {
    /// The `name=value` part of the `Set-Cookie` header, to send back as `Cookie`.
    fn cookie(&self) -> String {
        let set_cookie = self.set_cookie.as_deref().expect("a Set-Cookie header");
        set_cookie.split(';').next().unwrap_or_default().to_string()
    }

    /// The problems of an `Invalid` error, joined.
    fn problems(&self) -> String {
        assert_eq!(self.status, 400, "{}", self.body);
        let problems = self.body["Invalid"]["problems"]
            .as_array()
            .unwrap_or_else(|| panic!("an Invalid error: {}", self.body));
        problems
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// POSTs `body` with `content_type` to a server function, with extra headers.
async fn post(
    server: &TestServer,
    function: &str,
    content_type: &str,
    body: String,
    headers: &[(&str, &str)],
) -> Answer {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut request = client
        .post(format!("{}/api/{function}", server.base))
        .header("content-type", content_type)
        .header("accept", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        set_cookie,
        body,
    }
}

fn cookie_header(cookie: &Option<String>) -> Vec<(&str, &str)> {
    cookie
        .iter()
        .map(|cookie| ("cookie", cookie.as_str()))
        .collect()
}

/// `save_application` with a record given as JSON (so tests can send what the model refuses).
async fn save_json(server: &TestServer, record: &Value, cookie: &Option<String>) -> Answer {
    let body = json!({ "application": record }).to_string();
    post(
        server,
        "save_application",
        "application/json",
        body,
        &cookie_header(cookie),
    )
    .await
}

async fn save(server: &TestServer, application: &Application, cookie: &Option<String>) -> Answer {
    save_json(server, &record(application), cookie).await
}

async fn delete(server: &TestServer, id: Uuid, cookie: &Option<String>) -> Answer {
    let body = json!({ "id": id }).to_string();
    post(
        server,
        "delete_application",
        "application/json",
        body,
        &cookie_header(cookie),
    )
    .await
}

/// A read-only server function, called as the page's client calls it (form-encoded).
async fn read(server: &TestServer, function: &str, body: &str, cookie: &Option<String>) -> Answer {
    post(
        server,
        function,
        "application/x-www-form-urlencoded",
        body.to_string(),
        &cookie_header(cookie),
    )
    .await
}

async fn page(server: &TestServer, path: &str, cookie: &Option<String>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", server.base));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("page");
    let status = response.status().as_u16();
    (status, response.text().await.expect("html"))
}

/// A draft static site on `port`.
fn application(name: &str, port: u16) -> Application {
    let name = AppName::parse(name).expect("valid name");
    let deployment = DeploymentConfig {
        deployment_path: DeploymentConfig::default_path(&name),
        entry_point: "index.html".into(),
        ..DeploymentConfig::default()
    };
    let execution = ExecutionConfig {
        command: "busybox".into(),
        arguments: vec!["httpd".into(), "-f".into()],
        port: Some(Port::parse(i64::from(port)).expect("valid port")),
        ..ExecutionConfig::default()
    };
    let mut application = Application::new(Uuid::new_v4(), name, deployment, execution, Utc::now());
    application.description = Some("A static site".into());
    application
}

fn record(application: &Application) -> Value {
    serde_json::to_value(application).expect("json")
}

/// The workspace id in a `webvm_workspace=<id>.<token>` cookie.
fn workspace_of(cookie: &Option<String>) -> Uuid {
    let value = cookie.as_deref().and_then(|cookie| cookie.split_once('='));
    let id = value
        .and_then(|(_, value)| value.split_once('.'))
        .map(|(id, _)| id);
    Uuid::parse_str(id.unwrap_or_default()).expect("a workspace id in the cookie")
}

/// Saves `application` into a new workspace and returns that workspace's cookie.
async fn save_first(server: &TestServer, application: &Application) -> Option<String> {
    let answer = save(server, application, &None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    Some(answer.cookie())
}

#[tokio::test]
async fn the_first_save_makes_the_workspace_and_the_pages_show_the_app() {
    let server = start().await;
    let blog = application("blog", 8080);
    let answer = save(&server, &blog, &None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["created"], true);
    assert_eq!(answer.body["id"], blog.id.to_string());
    assert_eq!(answer.body["name"], "blog");
    assert!(answer.body["updatedAt"].is_string(), "{}", answer.body);
    let set_cookie = answer.set_cookie.clone().expect("a workspace cookie");
    assert!(set_cookie.starts_with("webvm_workspace="), "{set_cookie}");
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    let cookie = Some(answer.cookie());

    // The cookie opens the same workspace: no second cookie, the record replaced.
    let again = save(&server, &blog, &cookie).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["created"], false);
    assert!(again.set_cookie.is_none());

    let list = read(&server, "list_applications", "", &cookie).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body.as_array().map(Vec::len), Some(1), "{}", list.body);
    assert_eq!(list.body[0]["name"], "blog");
    assert_eq!(list.body[0]["status"], "draft");
    assert_eq!(list.body[0]["port"], 8080);

    let got = read(&server, "get_application", "name=Blog", &cookie).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(
        got.body,
        record(&blog),
        "the document comes back as it was sent"
    );

    let (status, html) = page(&server, "/applications", &cookie).await;
    assert_eq!(status, 200);
    assert!(html.contains("blog") && html.contains("A static site"));
    let (status, html) = page(&server, "/applications/blog", &cookie).await;
    assert_eq!(status, 200);
    assert!(html.contains("/srv/apps/blog"));
    let (status, _) = page(&server, "/applications/blog", &None).await;
    assert_eq!(status, 404, "another browser can't see it");
}

#[tokio::test]
async fn over_tls_the_first_save_sets_the_host_prefixed_secure_cookie() {
    // The cookie's attributes are tested in edge.rs; this checks that a save (not only
    // open_workspace) gives the TLS cookie.
    let server =
        start_with(|edge| edge.public_origin = Some("https://apps.example.com".into())).await;
    let body = json!({ "application": record(&application("shop", 8080)) }).to_string();
    let answer = post(
        &server,
        "save_application",
        "application/json",
        body,
        &[("origin", "https://apps.example.com")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let set_cookie = answer.set_cookie.expect("a workspace cookie");
    assert!(
        set_cookie.starts_with("__Host-webvm_workspace=") && set_cookie.contains("; Secure"),
        "{set_cookie}"
    );
}

#[tokio::test]
async fn a_rename_is_a_save_with_the_same_id() {
    let server = start().await;
    let mut app = application("old-name", 8080);
    let cookie = save_first(&server, &app).await;
    app.name = AppName::parse("New-Name").expect("valid");
    let answer = save(&server, &app, &cookie).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["created"], false);
    assert_eq!(answer.body["name"], "New-Name");

    let list = read(&server, "list_applications", "", &cookie).await;
    let names: Vec<&str> = list
        .body
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|row| row["name"].as_str())
        .collect();
    assert_eq!(names, ["New-Name"]);
    assert_eq!(
        read(&server, "get_application", "name=old-name", &cookie)
            .await
            .status,
        404
    );
    assert_eq!(
        read(&server, "get_application", "name=new-name", &cookie)
            .await
            .status,
        200
    );
    // A change of case only is a rename too (the app keeps its own name).
    app.name = AppName::parse("new-name").expect("valid");
    assert_eq!(save(&server, &app, &cookie).await.status, 200);
}

#[tokio::test]
async fn a_name_another_app_has_is_refused_whatever_its_case() {
    let server = start().await;
    let cookie = save_first(&server, &application("blog", 8080)).await;
    let answer = save(&server, &application("BLOG", 8081), &cookie).await;
    let problems = answer.problems();
    assert!(
        problems.contains("application name 'BLOG' is already taken"),
        "{problems}"
    );
    let list = read(&server, "list_applications", "", &cookie).await;
    assert_eq!(
        list.body.as_array().map(Vec::len),
        Some(1),
        "nothing stored"
    );
}

#[tokio::test]
async fn names_that_break_the_rules_are_refused_naming_the_rule() {
    let server = start().await;
    let base = record(&application("valid-name", 8080));
    let cases = [
        ("ab", "has 2 characters; it must have 3 to 50"),
        ("api", "is reserved by the router"),
        ("Applications", "is reserved by the router"),
        ("my app", "contains ' '; only letters, digits"),
        ("a/b/c", "contains '/'"),
        ("-edge-", "must start and end with a letter or digit"),
    ];
    for (name, rule) in cases {
        let mut record = base.clone();
        record["name"] = json!(name);
        let answer = save_json(&server, &record, &None).await;
        let problems = answer.problems();
        assert!(
            problems.contains(&format!("application.name: application name '{name}'"))
                && problems.contains(rule),
            "{name}: {problems}"
        );
        assert!(
            answer.set_cookie.is_none(),
            "a refused save makes no workspace"
        );
    }
}

#[tokio::test]
async fn a_port_another_app_uses_is_refused() {
    let server = start().await;
    let cookie = save_first(&server, &application("first", 8080)).await;
    let answer = save(&server, &application("second", 8080), &cookie).await;
    let problems = answer.problems();
    assert!(
        problems.contains("port 8080 is already used by 'first'"),
        "{problems}"
    );
    // Every reason is listed, not only the first.
    let mut both = record(&application("third", 8080));
    both["execution"]["command"] = json!("");
    let problems = save_json(&server, &both, &cookie).await.problems();
    assert!(
        problems.contains("port 8080 is already used by 'first'")
            && problems.contains("startup command is missing"),
        "{problems}"
    );
    assert_eq!(
        save(&server, &application("second", 8081), &cookie)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn clear_text_secrets_are_refused_and_sealed_ones_kept() {
    let server = start().await;
    let mut record = record(&application("secretive", 8080));
    record["execution"]["secretEnvironment"] = json!({ "API_KEY": "hunter2-clear" });
    let answer = save_json(&server, &record, &None).await;
    let problems = answer.problems();
    assert!(
        problems.contains("application.execution.secretEnvironment.API_KEY")
            && problems.contains("clear-text secrets are refused"),
        "{problems}"
    );
    assert!(
        !answer.body.to_string().contains("hunter2"),
        "the value is not echoed"
    );

    let sealed = "enc:v1:key1:AAECAwQFBgcICQoL:Y2lwaGVydGV4dC1hbmQtaXRzLXRhZw";
    record["execution"]["secretEnvironment"] = json!({ "API_KEY": sealed });
    let answer = save_json(&server, &record, &None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let cookie = Some(answer.cookie());
    let got = read(&server, "get_application", "name=secretive", &cookie).await;
    assert_eq!(
        got.body["execution"]["secretEnvironment"]["API_KEY"], sealed,
        "{}",
        got.body
    );
}

#[tokio::test]
async fn a_runtime_that_is_not_installed_warns_and_an_unknown_one_refuses() {
    let server = start().await;
    let catalog = [PackageCatalogEntry {
        package: RuntimePackage::new(
            PackageId::parse("nodejs-20").expect("valid id"),
            "Node.js 20",
            RuntimeCategory::Runtime,
            "20.11.0",
        ),
        catalog_error: None,
        details: Default::default(),
    }];
    server
        .storage
        .replace_runtime_packages(&catalog)
        .await
        .expect("catalog");
    let mut app = application("node-app", 3000);
    app.runtime.required_runtimes = vec![PackageId::parse("nodejs-20").expect("valid id")];
    let answer = save(&server, &app, &None).await;
    assert_eq!(
        answer.status, 200,
        "a draft saves before its runtime is installed"
    );
    let warnings = answer.body["warnings"].to_string();
    assert!(
        warnings.contains("nodejs-20 is not installed"),
        "{warnings}"
    );

    let cookie = Some(answer.cookie());
    let mut other = application("typo-app", 3001);
    other.runtime.required_runtimes = vec![PackageId::parse("nodejs-2").expect("valid id")];
    let problems = save(&server, &other, &cookie).await.problems();
    assert!(
        problems.contains("required runtime 'nodejs-2' is not in the package catalog"),
        "{problems}"
    );
}

#[tokio::test]
async fn bodies_are_bounded_at_the_save_limit() {
    let server = start().await;
    // Over the default 64 KiB, within the save limit: accepted.
    let mut app = application("roomy", 8080);
    app.description = Some("d".repeat(100 * 1024));
    let answer = save(&server, &app, &None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Over the save limit: 413 before the function runs.
    app.description = Some("d".repeat(SAVE_BODY_LIMIT));
    let cookie = Some(answer.cookie());
    let answer = save(&server, &app, &cookie).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(
        answer.body["TooLarge"]["limit_bytes"],
        SAVE_BODY_LIMIT as u64
    );
    // delete_application keeps the default limit.
    let big = json!({ "id": Uuid::new_v4(), "padding": "p".repeat(64 * 1024) }).to_string();
    let answer = post(
        &server,
        "delete_application",
        "application/json",
        big,
        &cookie_header(&cookie),
    )
    .await;
    assert_eq!(answer.status, 413, "{}", answer.body);
}

#[tokio::test]
async fn writes_from_another_site_are_refused() {
    let server = start().await;
    let app = application("guarded", 8080);
    let cookie = save_first(&server, &app).await;
    let mut headers = cookie_header(&cookie);
    headers.push(("origin", "https://evil.example"));
    for (function, body) in [
        (
            "save_application",
            json!({ "application": record(&application("planted", 8081)) }),
        ),
        ("delete_application", json!({ "id": app.id })),
    ] {
        let answer = post(
            &server,
            function,
            "application/json",
            body.to_string(),
            &headers,
        )
        .await;
        assert_eq!(answer.status, 403, "{function}: {}", answer.body);
        assert!(answer.body["Forbidden"]["reason"].is_string());
    }
    let list = read(&server, "list_applications", "", &cookie).await;
    let names: Vec<&str> = list
        .body
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|row| row["name"].as_str())
        .collect();
    assert_eq!(names, ["guarded"], "nothing changed");
}

#[tokio::test]
async fn delete_removes_the_app_and_its_share_links() {
    let server = start().await;
    let app = application("short-lived", 8080);
    let cookie = save_first(&server, &app).await;
    let workspace = workspace_of(&cookie);
    let token = server
        .storage
        .create_share_link(workspace, app.id, None)
        .await
        .expect("link");
    let (status, _) = page(&server, &format!("/status/{token}"), &None).await;
    assert_eq!(status, 200);

    let answer = delete(&server, app.id, &cookie).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        read(&server, "get_application", "name=short-lived", &cookie)
            .await
            .status,
        404
    );
    assert_eq!(
        read(&server, "list_applications", "", &cookie).await.body,
        json!([])
    );
    let answer = delete(&server, app.id, &cookie).await;
    assert_eq!(answer.status, 404, "deleted twice: {}", answer.body);
    assert_eq!(answer.body["NotFound"]["what"], "This application");
    let answer = delete(&server, Uuid::new_v4(), &cookie).await;
    assert_eq!(answer.status, 404, "unknown id: {}", answer.body);
    assert_eq!(
        delete(&server, app.id, &None).await.status,
        404,
        "no workspace"
    );

    // The link went with the app: saving the same id again does not revive it.
    assert_eq!(save(&server, &app, &cookie).await.status, 200);
    let (status, _) = page(&server, &format!("/status/{token}"), &None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn another_workspace_can_neither_read_nor_delete_nor_overwrite() {
    let server = start().await;
    let app = application("private", 8080);
    let owner = save_first(&server, &app).await;
    let stranger = save_first(&server, &application("elsewhere", 8080)).await;
    assert_ne!(owner, stranger);

    assert_eq!(
        read(&server, "get_application", "name=private", &stranger)
            .await
            .status,
        404
    );
    assert_eq!(delete(&server, app.id, &stranger).await.status, 404);
    // The same id saved by another workspace is that workspace's own record.
    let mut copy = app.clone();
    copy.name = AppName::parse("copied").expect("valid");
    copy.execution.port = Some(Port::parse(8082).expect("valid port"));
    assert_eq!(save(&server, &copy, &stranger).await.status, 200);

    let got = read(&server, "get_application", "name=private", &owner).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body, record(&app));
    assert_eq!(
        read(&server, "get_application", "name=copied", &owner)
            .await
            .status,
        404
    );
}

/// A `report_status` body: the VM tab's heartbeat for one app.
fn status_report(application: &Application, status: &str, health: &str) -> String {
    json!({ "reports": [{
        "applicationId": application.id,
        "status": status,
        "health": health,
        "responseMs": 12.5,
        "requestCount": 3,
        "restartCount": 0,
        "lastDeployed": application.last_deployed,
    }]})
    .to_string()
}

#[tokio::test]
async fn status_links_are_made_listed_and_revoked_and_the_page_follows_the_reports() {
    let server = start().await;
    let app = application("status-site", 8080);
    let cookie = save_first(&server, &app).await;
    let body = format!("application_id={}&expires_in_days=7", app.id);
    let made = read(&server, "create_status_link", &body, &cookie).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let path = made.body["path"].as_str().expect("a path").to_string();
    assert!(
        path.starts_with("/status/") && path.len() == "/status/".len() + 64,
        "{path}"
    );
    assert!(made.body["expiresAt"].is_string());

    // Before any report: the host browser has not been seen.
    let response = reqwest::get(format!("{}{path}", server.base))
        .await
        .expect("page");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-robots-tag"], "noindex, nofollow");
    assert_eq!(headers["cache-control"], "public, no-cache");
    let html = response.text().await.expect("html");
    assert!(html.contains("data-availability=\"hostoffline\""), "{html}");
    assert!(html.contains("has not reported yet"));

    // The VM tab reports the app running, then crashed.
    let headers = cookie_header(&cookie);
    let report = |status: &'static str| {
        post(
            &server,
            "report_status",
            "application/json",
            status_report(&app, status, "healthy"),
            &headers,
        )
    };
    let answer = report("running").await;
    assert_eq!((answer.status, answer.body.clone()), (200, json!(1)));
    let (status, html) = page(&server, &path, &None).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-availability=\"up\""), "{html}");
    assert!(html.contains("Operational"));
    assert!(
        !html.contains("busybox"),
        "no configuration on the public page"
    );
    let answer = report("error").await;
    assert_eq!(answer.body, json!(1), "a change is stored at once");
    let (_, html) = page(&server, &path, &None).await;
    assert!(html.contains("data-availability=\"down\""), "{html}");
    assert!(
        html.contains("the app became error"),
        "the incident: {html}"
    );

    // Reports of an app the workspace doesn't have are ignored.
    let stranger = application("not-mine", 8081);
    let answer = post(
        &server,
        "report_status",
        "application/json",
        status_report(&stranger, "running", "healthy"),
        &cookie_header(&cookie),
    )
    .await;
    assert_eq!(answer.body, json!(0));

    // Listed, then revoked: the page is gone.
    let listed = read(
        &server,
        "list_status_links",
        &format!("application_id={}", app.id),
        &cookie,
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body[0]["state"], "live");
    let id = listed.body[0]["id"].as_str().expect("an id").to_string();
    assert!(!path.contains(&id), "the listed id is not the token");
    let other = save_first(&server, &application("another-owner", 8082)).await;
    let refused = read(&server, "revoke_status_link", &format!("id={id}"), &other).await;
    assert_eq!(refused.status, 404, "another workspace can't revoke it");
    let refused = read(
        &server,
        "create_status_link",
        &format!("application_id={}", app.id),
        &other,
    )
    .await;
    assert_eq!(refused.status, 404, "nor make a link to the app");
    let revoked = read(&server, "revoke_status_link", &format!("id={id}"), &cookie).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(page(&server, &path, &None).await.0, 404);
    let listed = read(
        &server,
        "list_status_links",
        &format!("application_id={}", app.id),
        &cookie,
    )
    .await;
    assert_eq!(listed.body[0]["state"], "revoked");

    // An expiry out of range is refused; an expired link answers 404.
    let refused = read(
        &server,
        "create_status_link",
        &format!("application_id={}&expires_in_days=0", app.id),
        &cookie,
    )
    .await;
    assert!(
        refused.problems().contains("expiresInDays"),
        "{}",
        refused.body
    );
    let expired = server
        .storage
        .create_share_link(
            workspace_of(&cookie),
            app.id,
            Some(Utc::now() - chrono::Duration::seconds(1)),
        )
        .await
        .expect("link");
    assert_eq!(
        page(&server, &format!("/status/{expired}"), &None).await.0,
        404
    );
}

#[tokio::test]
async fn the_server_gives_its_copy_of_the_workspace_as_a_backup_that_imports() {
    let server = start().await;
    let app = application("mirrored-site", 8080);
    let cookie = save_first(&server, &app).await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/server_backup", server.base))
        .header("cookie", cookie.clone().unwrap_or_default())
        .send()
        .await
        .expect("backup");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("json");
    let catalog: Vec<RuntimePackage> = server
        .storage
        .list_runtime_packages()
        .await
        .expect("catalog");
    let imported = webvm_appserver::domain::backup::import_backup(&text, &catalog)
        .expect("the server's backup imports");
    let names: Vec<&str> = imported
        .backup
        .applications
        .iter()
        .map(|app| app.name.as_str())
        .collect();
    assert_eq!(names, ["mirrored-site"]);
    let response = reqwest::get(format!("{}/api/server_backup", server.base))
        .await
        .expect("answer");
    assert_eq!(response.status(), 404, "no workspace, no backup");
}

#[tokio::test]
async fn a_device_link_opens_the_workspace_in_one_other_browser_once() {
    let server = start().await;
    let app = application("shared-site", 8080);
    let cookie = save_first(&server, &app).await;
    let made = read(&server, "create_device_link", "", &cookie).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let path = made.body["path"].as_str().expect("a path").to_string();
    let token = path
        .strip_prefix("/join/")
        .expect("a /join/ path")
        .to_string();
    assert_eq!(token.len(), 64);
    assert!(made.body["expiresAt"].is_string());
    let (status, html) = page(&server, &path, &None).await;
    assert_eq!(status, 200);
    assert!(html.contains("Open the workspace here"), "{html}");

    // Another browser (no cookie) redeems it and gets a key of its own to the workspace.
    let redeemed = read(
        &server,
        "redeem_device_link",
        &format!("token={token}"),
        &None,
    )
    .await;
    assert_eq!(redeemed.status, 200, "{}", redeemed.body);
    let other = Some(redeemed.cookie());
    assert_eq!(workspace_of(&other), workspace_of(&cookie));
    assert_ne!(other, cookie, "the other browser has its own token");
    let listed = read(&server, "list_applications", "", &other).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(
        listed.body.to_string().contains("shared-site"),
        "{}",
        listed.body
    );
    let second = application("from-the-other-browser", 8081);
    assert_eq!(save(&server, &second, &other).await.status, 200);
    let listed = read(&server, "list_applications", "", &cookie).await;
    assert!(
        listed.body.to_string().contains("from-the-other-browser"),
        "{}",
        listed.body
    );

    // Once only; unknown, malformed and expired links are all simply not found.
    let again = read(
        &server,
        "redeem_device_link",
        &format!("token={token}"),
        &None,
    )
    .await;
    assert_eq!(again.status, 404, "{}", again.body);
    assert!(again.set_cookie.is_none());
    let unknown = "0".repeat(64);
    for token in [unknown.as_str(), "not-a-token", ""] {
        let answer = read(
            &server,
            "redeem_device_link",
            &format!("token={token}"),
            &None,
        )
        .await;
        assert_eq!(answer.status, 404, "{token}: {}", answer.body);
    }
    let expired = server
        .storage
        .create_device_link(
            workspace_of(&cookie),
            Utc::now() - chrono::Duration::minutes(1),
        )
        .await
        .expect("stored");
    let answer = read(
        &server,
        "redeem_device_link",
        &format!("token={expired}"),
        &None,
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    // Without a workspace there is nothing to link.
    assert_eq!(
        read(&server, "create_device_link", "", &None).await.status,
        404
    );
    // A forged device token for the workspace opens nothing.
    let forged = Some(format!(
        "webvm_workspace={}.{}",
        workspace_of(&cookie),
        "a".repeat(64)
    ));
    let listed = read(&server, "list_applications", "", &forged).await;
    assert!(
        !listed.body.to_string().contains("shared-site"),
        "{}",
        listed.body
    );
}

#[tokio::test]
async fn settings_are_mirrored_after_the_rules_and_the_server_backup_carries_them() {
    let server = start().await;
    let app = application("settled-site", 8080);
    let cookie = save_first(&server, &app).await;
    let mut settings = webvm_appserver::model::ApplicationServerSettings {
        releases_kept: 0,
        ..Default::default()
    };
    let body = |settings: &webvm_appserver::model::ApplicationServerSettings| {
        json!({ "settings": settings }).to_string()
    };
    let refused = post(
        &server,
        "save_settings",
        "application/json",
        body(&settings),
        &cookie_header(&cookie),
    )
    .await;
    assert!(
        refused.problems().contains("releases kept 0"),
        "{}",
        refused.body
    );
    settings.releases_kept = 7;
    let saved = post(
        &server,
        "save_settings",
        "application/json",
        body(&settings),
        &cookie_header(&cookie),
    )
    .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let stored = server
        .storage
        .workspace_settings(workspace_of(&cookie))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.releases_kept, 7);
    let backup: Value = reqwest::Client::new()
        .get(format!("{}/api/server_backup", server.base))
        .header("cookie", cookie.clone().unwrap_or_default())
        .send()
        .await
        .expect("backup")
        .json()
        .await
        .expect("json");
    assert_eq!(backup["settings"]["releasesKept"], 7, "{backup}");
    // No workspace, nothing to store them in.
    let answer = post(
        &server,
        "save_settings",
        "application/json",
        body(&settings),
        &[],
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.body);
}

#[tokio::test]
async fn two_hundred_concurrent_writers_lose_no_write() {
    let server = start_with(|edge| edge.writes_per_minute = 10_000).await;
    let cookie = save_first(&server, &application("first-writer", 9000)).await;
    let writers: Vec<_> = (0..200u16)
        .map(|n| {
            let (base, cookie) = (server.base.clone(), cookie.clone());
            tokio::spawn(async move {
                let app = application(&format!("writer-{n:03}"), 8000 + n);
                let body = json!({ "application": record(&app) }).to_string();
                let response = reqwest::Client::new()
                    .post(format!("{base}/api/save_application"))
                    .header("content-type", "application/json")
                    .header("accept", "application/json")
                    .header("cookie", cookie.unwrap_or_default())
                    .body(body)
                    .send()
                    .await;
                response.map(|response| response.status().as_u16())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for writer in writers {
        statuses.push(writer.await.expect("joined").expect("answered"));
    }
    let refused: Vec<&u16> = statuses.iter().filter(|status| **status != 200).collect();
    // A busy server may shed load (503); the browser's queue retries those. None may be lost
    // once answered 200, and here none is shed.
    assert!(refused.is_empty(), "not stored: {refused:?}");
    let stored = server
        .storage
        .list_applications(workspace_of(&cookie))
        .await
        .expect("listed");
    assert_eq!(stored.len(), 201, "every write is in the mirror, once");
}

#[tokio::test]
async fn two_server_instances_on_one_database_share_the_mirror() {
    let data = tempfile::tempdir().expect("temp dir");
    let config = common::database::test_config(data.path().join("data")).await;
    let mut servers = Vec::new();
    for _ in 0..2 {
        let built = build_app(&config).await.expect("router builds");
        let addr = common::serve_router(built.router, &config.edge).await;
        servers.push(TestServer {
            base: format!("http://{addr}"),
            storage: built.storage,
            _data: tempfile::tempdir().expect("temp dir"),
        });
    }
    let cookie = save_first(&servers[0], &application("on-the-first", 8000)).await;
    // Writes alternate between the instances, some at the same moment.
    let mut handles = Vec::new();
    for n in 0..20u16 {
        let base = servers[usize::from(n % 2)].base.clone();
        let cookie = cookie.clone();
        handles.push(tokio::spawn(async move {
            let app = application(&format!("shared-{n:02}"), 8100 + n);
            let body = json!({ "application": record(&app) }).to_string();
            reqwest::Client::new()
                .post(format!("{base}/api/save_application"))
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .header("cookie", cookie.unwrap_or_default())
                .body(body)
                .send()
                .await
                .map(|response| response.status().as_u16())
        }));
    }
    for handle in handles {
        assert_eq!(handle.await.expect("joined").expect("answered"), 200);
    }
    for server in &servers {
        let listed = read(server, "list_applications", "", &cookie).await;
        assert_eq!(listed.status, 200);
        assert_eq!(
            listed.body.as_array().map(Vec::len),
            Some(21),
            "each instance sees every write once: {}",
            listed.body
        );
    }
    drop(data);
}

/// `apply_mirror_writes` with `entries` (JSON values, so tests can send what the model refuses).
async fn apply_batch(server: &TestServer, entries: Vec<Value>, cookie: &Option<String>) -> Answer {
    let body = json!({ "writes": entries }).to_string();
    post(
        server,
        "apply_mirror_writes",
        "application/json",
        body,
        &cookie_header(cookie),
    )
    .await
}

fn save_entry(application: &Application) -> Value {
    json!({ "id": application.id, "kind": "save", "application": record(application) })
}

#[tokio::test]
async fn a_batch_answers_each_write_in_order_and_one_refusal_holds_up_no_other() {
    let server = start().await;
    let first = application("batch-first", 8080);
    let clash = application("batch-clash", 8080);
    let later = application("batch-later", 8081);
    let settings = webvm_appserver::model::ApplicationServerSettings {
        releases_kept: 4,
        ..Default::default()
    };
    let mut mismatched = save_entry(&application("batch-odd", 8082));
    mismatched["id"] = json!(Uuid::new_v4());
    let entries = vec![
        save_entry(&first),
        save_entry(&clash),
        json!({ "id": Uuid::new_v4(), "kind": "delete", "name": "never-mirrored" }),
        json!({ "id": Uuid::nil(), "kind": "settings", "settings": settings }),
        json!({ "id": "not-a-uuid", "kind": "delete", "name": "x" }),
        mismatched,
        save_entry(&later),
    ];
    let answer = apply_batch(&server, entries, &None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answers = answer.body.as_array().expect("an answer per write");
    assert_eq!(answers.len(), 7, "{}", answer.body);
    let outcome = |index: usize| answers[index]["outcome"].as_str().unwrap_or_default();
    let reasons = |index: usize| answers[index]["reasons"].to_string();
    assert_eq!(outcome(0), "stored");
    assert_eq!(outcome(1), "refused");
    assert!(
        reasons(1).contains("port 8080 is already used by 'batch-first'"),
        "{}",
        reasons(1)
    );
    assert_eq!(
        outcome(2),
        "stored",
        "deleting what the mirror lacks is idempotent"
    );
    assert_eq!(outcome(3), "stored");
    assert_eq!(outcome(4), "refused");
    assert!(reasons(4).contains("writes[4].id: "), "{}", reasons(4));
    assert_eq!(outcome(5), "refused");
    assert!(
        reasons(5).contains("id: the entry is for"),
        "{}",
        reasons(5)
    );
    assert_eq!(outcome(6), "stored");

    // The first stored save made the workspace: the batch's writes are all in it.
    let cookie = Some(answer.cookie());
    let workspace = workspace_of(&cookie);
    let stored: Vec<String> = server
        .storage
        .list_applications(workspace)
        .await
        .expect("list")
        .iter()
        .map(|application| application.name.to_string())
        .collect();
    assert_eq!(stored, ["batch-first", "batch-later"]);
    let settings = server
        .storage
        .workspace_settings(workspace)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(settings.releases_kept, 4);

    // A delete in a later batch, and the same batch sent twice (its answer lost), agree.
    let delete = json!({ "id": first.id, "kind": "delete", "name": "batch-first" });
    for _ in 0..2 {
        let answer = apply_batch(&server, vec![delete.clone()], &cookie).await;
        assert_eq!(answer.body[0]["outcome"], "stored", "{}", answer.body);
    }
    let left = server
        .storage
        .list_applications(workspace)
        .await
        .expect("list");
    assert_eq!(left.len(), 1);
}

#[tokio::test]
async fn a_batch_counts_once_against_the_write_quota_and_is_bounded() {
    let server = start_with(|edge| edge.writes_per_minute = 3).await;
    let mut cookie = None;
    let batch_size = webvm_appserver::api::applications::MAX_BATCH_ENTRIES;
    // Three requests carry 300 writes under a quota of three writes a minute.
    for round in 0..3 {
        let entries: Vec<Value> = (0..batch_size)
            .map(|n| {
                let port = 3000 + u16::try_from(round * batch_size + n).expect("port");
                save_entry(&application(&format!("quota-{round}-{n}"), port))
            })
            .collect();
        let answer = apply_batch(&server, entries, &cookie).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let stored = answer
            .body
            .as_array()
            .expect("answers")
            .iter()
            .filter(|answer| answer["outcome"] == "stored")
            .count();
        assert_eq!(stored, batch_size);
        if cookie.is_none() {
            cookie = Some(answer.cookie());
        }
    }
    let stored = server
        .storage
        .list_applications(workspace_of(&cookie))
        .await
        .expect("list");
    assert_eq!(stored.len(), 3 * batch_size);
    assert_eq!(apply_batch(&server, Vec::new(), &cookie).await.status, 429);

    // More entries than a batch may hold are refused as a whole, saying why.
    let server = start().await;
    let entries = (0..=batch_size)
        .map(|n| json!({ "id": Uuid::new_v4(), "kind": "delete", "name": format!("x{n}") }))
        .collect();
    let answer = apply_batch(&server, entries, &None).await;
    assert!(
        answer
            .problems()
            .contains("more than the 100 a batch may hold"),
        "{}",
        answer.body
    );
}
