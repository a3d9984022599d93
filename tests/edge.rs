//! Integration tests of the HTTP edge: limits, timeouts, panics, headers, cookies, CSRF,
//! status codes and concurrency, against the real router over loopback (SQLite, or a fresh
//! PostgreSQL database when `WEBVM_TEST_POSTGRES_URL` is set).
#![cfg(feature = "ssr")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use uuid::Uuid;
use webvm_appserver::host::build_app;
use webvm_appserver::model::catalog::PackageCatalogEntry;
use webvm_appserver::model::{
    AppName, Application, DeploymentConfig, ExecutionConfig, PackageId, RuntimeCategory,
    RuntimePackage,
};
use webvm_appserver::server::config::{Config, EdgeConfig};
use webvm_appserver::server::edge;
use webvm_appserver::server::storage::{Storage, StorageError, WorkspaceCredentials};

/// A server on a free loopback port, with its storage at hand.
struct TestServer {
    base: String,
    addr: SocketAddr,
    storage: Storage,
    config: Config,
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
        addr,
        storage: built.storage,
        config,
        _data: data,
    }
}

async fn start() -> TestServer {
    start_with(|_| {}).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// GETs a URL (a page, `/healthz`); `what` names it when the request fails.
async fn get(url: String, what: &str) -> reqwest::Response {
    client().get(url).send().await.expect(what)
}

/// POSTs to a server function with the given extra headers.
async fn call(
    server: &TestServer,
    function: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client()
        .post(format!("{}/api/{function}", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

/// The `Set-Cookie` header of a response ("" without one).
fn set_cookie_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn cookie(credentials: &WorkspaceCredentials) -> String {
    format!("webvm_workspace={}.{}", credentials.id, credentials.token)
}

fn application(name: &str) -> Application {
    let name = AppName::parse(name).expect("valid name");
    let deployment = DeploymentConfig {
        deployment_path: DeploymentConfig::default_path(&name),
        entry_point: "index.html".into(),
        ..DeploymentConfig::default()
    };
    Application::new(
        Uuid::new_v4(),
        name,
        deployment,
        ExecutionConfig::default(),
        Utc::now(),
    )
}

/// Reads from a raw connection until the server closes it or `limit` passes; true if closed.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn an_oversized_api_body_gets_413_declared_or_streamed() {
    let server = start().await;
    let big = "x".repeat(edge::DEFAULT_BODY_LIMIT + 1);
    let response = call(&server, "list_packages", &big, &[]).await;
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.expect("json error");
    assert!(body["TooLarge"]["limit_bytes"].is_number(), "{body}");

    // A chunked body names no length: it is cut off as it passes the limit.
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let chunk = "y".repeat(16 * 1024);
    let mut request = String::from(
        "POST /api/list_packages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for _ in 0..5 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut head = vec![0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut head))
        .await
        .expect("an answer")
        .expect("read");
    let head = String::from_utf8_lossy(&head[..read]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    // Within the limit, the function answers.
    let response = call(&server, "list_packages", "", &[]).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_slowloris_connection_is_closed() {
    let server = start_with(|edge| edge.header_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("partial headers");
    // One more byte now and then, never the end of the headers.
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if stream.write_all(b"a").await.is_err() {
                break;
            }
        }
    };
    trickle.await;
    assert!(
        closed_within(&mut stream, Duration::from_secs(10)).await,
        "the server must close a connection whose headers never end"
    );
    // An idle connection that sends nothing at all is closed too.
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    assert!(closed_within(&mut idle, Duration::from_secs(10)).await);
}

/// A TCP connection from another loopback address (so it counts as another client).
async fn connect_from(client: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((client, 0)))
        .expect("bind a loopback address");
    socket.connect(server).await.expect("connect")
}

#[tokio::test]
async fn a_connection_flood_does_not_starve_healthz() {
    let server = start_with(|edge| edge.max_connections_per_client = 16).await;
    let mut flood = Vec::new();
    for _ in 0..64 {
        flood.push(connect_from([127, 0, 0, 2], server.addr).await);
    }
    // The connections over the client's limit were closed at once.
    let mut closed = 0;
    for stream in flood.iter_mut() {
        if closed_within(stream, Duration::from_millis(200)).await {
            closed += 1;
        }
    }
    assert!(closed >= 64 - 16, "only {closed} of the flood were refused");
    let response = get(
        format!("{}/healthz", server.base),
        "healthz answers during the flood",
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn pool_exhaustion_fails_fast_with_503_and_recovers() {
    let server = start().await;
    let mut held = Vec::new();
    while let Ok(Ok(connection)) =
        tokio::time::timeout(Duration::from_millis(500), server.storage.pool().acquire()).await
    {
        held.push(connection);
    }
    assert!(!held.is_empty());
    let response = call(&server, "list_packages", "", &[]).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body, serde_json::json!("Unavailable"));
    let health = get(format!("{}/healthz", server.base), "healthz").await;
    assert_eq!(health.status(), 503);
    drop(held);
    let response = call(&server, "list_packages", "", &[]).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_panicking_request_is_a_500_with_a_reference_and_the_next_is_served() {
    let policy = edge::SitePolicy::default();
    let app = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                let values: Vec<&'static str> = Vec::new();
                // An index out of bounds, as a bug would cause.
                values[usize::from(values.is_empty())]
            }),
        )
        .route("/fine", axum::routing::get(|| async { "fine" }));
    let router = edge::harden(
        app,
        axum::Router::new(),
        policy,
        &EdgeConfig::default(),
        edge::EndpointTable::default(),
    );
    let addr = common::serve_router(router, &EdgeConfig::default()).await;
    for _ in 0..3 {
        let response = get(
            format!("http://{addr}/boom"),
            "an answer, not a dropped connection",
        )
        .await;
        assert_eq!(response.status(), 500);
        let body: serde_json::Value = response.json().await.expect("json");
        let reference = body["Internal"]["reference"].as_str().unwrap_or_default();
        assert_eq!(reference.len(), 8, "{body}");
        let response = get(format!("http://{addr}/fine"), "the next request is served").await;
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn writes_from_another_site_are_refused() {
    let server = start().await;
    let host = server.addr.to_string();
    let own_origin = format!("http://{host}");
    let cases: [(&[(&str, &str)], u16); 5] = [
        (&[("origin", "https://evil.example")], 403),
        (&[("sec-fetch-site", "cross-site")], 403),
        (&[("origin", "null")], 403),
        (
            &[
                ("origin", own_origin.as_str()),
                ("sec-fetch-site", "same-origin"),
            ],
            200,
        ),
        (&[], 200),
    ];
    for (headers, expected) in cases {
        let response = call(&server, "open_workspace", "", headers).await;
        assert_eq!(response.status(), expected, "{headers:?}");
        if expected == 403 {
            assert!(response.headers().get("set-cookie").is_none());
            let body: serde_json::Value = response.json().await.expect("json");
            assert!(body["Forbidden"]["reason"].is_string(), "{body}");
        }
    }
}

#[tokio::test]
async fn the_workspace_cookie_is_http_only_and_lax_and_secure_on_tls() {
    let server = start().await;
    let response = call(&server, "open_workspace", "", &[]).await;
    assert_eq!(response.status(), 200);
    let set_cookie = set_cookie_of(&response);
    assert!(set_cookie.starts_with("webvm_workspace="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["created"], true);
    // The cookie opens the same workspace again, without a new one.
    let value = set_cookie.split(';').next().unwrap_or_default().to_string();
    let response = call(&server, "open_workspace", "", &[("cookie", &value)]).await;
    assert!(response.headers().get("set-cookie").is_none());
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["created"], false);

    let tls = start_with(|edge| edge.public_origin = Some("https://apps.example.com".into())).await;
    let response = call(
        &tls,
        "open_workspace",
        "",
        &[("origin", "https://apps.example.com")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let set_cookie = set_cookie_of(&response);
    assert!(
        set_cookie.starts_with("__Host-webvm_workspace="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("; Secure") && set_cookie.contains("Path=/"));
    assert!(!set_cookie.contains("Domain"));
    let page = get(format!("{}/", tls.base), "page").await;
    assert!(page.headers().contains_key("strict-transport-security"));
    // Over TLS the origin must be the configured one, even if it matches the Host.
    let response = call(
        &tls,
        "open_workspace",
        "",
        &[("origin", &format!("http://{}", tls.addr))],
    )
    .await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_tossed_second_cookie_refuses_the_request() {
    let server = start().await;
    let owner = server.storage.create_workspace().await.expect("workspace");
    let planted = server.storage.create_workspace().await.expect("another");
    let both = format!("{}; {}", cookie(&planted), cookie(&owner));
    let response = call(&server, "list_applications", "", &[("cookie", &both)]).await;
    assert_eq!(response.status(), 400);
    let response = call(
        &server,
        "list_applications",
        "",
        &[("cookie", &cookie(&owner))],
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn writes_are_rate_limited_per_client() {
    let server = start_with(|edge| edge.writes_per_minute = 3).await;
    for _ in 0..3 {
        assert_eq!(call(&server, "open_workspace", "", &[]).await.status(), 200);
    }
    let response = call(&server, "open_workspace", "", &[]).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("Retry-After");
    assert!(retry_after >= 1);
    // Reads are not limited.
    assert_eq!(call(&server, "list_packages", "", &[]).await.status(), 200);
}

#[tokio::test]
async fn missing_things_are_404_and_bad_arguments_400_with_generic_messages() {
    let server = start().await;
    let owner = server.storage.create_workspace().await.expect("workspace");
    let with_cookie = [("cookie", cookie(&owner))];
    let with_cookie: Vec<(&str, &str)> = with_cookie
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    for name in ["nothing-here", "x", "a%2Fb"] {
        let response = call(
            &server,
            "get_application",
            &format!("name={name}"),
            &with_cookie,
        )
        .await;
        assert_eq!(response.status(), 404, "{name}");
    }
    // Arguments that can't be read: 400, and the parser's words stay in the log.
    let response = call(&server, "get_application", "nonsense=1", &with_cookie).await;
    assert_eq!(response.status(), 400);
    let text = response.text().await.expect("body");
    assert!(text.contains("could not be read (reference"), "{text}");
    assert!(!text.contains("missing field"), "{text}");
    let response = call(&server, "public_status", "token=abc", &[]).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_a_nonce_csp() {
    let server = start().await;
    let response = get(format!("{}/", server.base), "page").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "same-origin");
    assert_eq!(header("cache-control"), "private, no-store");
    let vary: Vec<String> = headers
        .get_all("vary")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_ascii_lowercase)
        .collect();
    assert!(
        vary.iter().any(|value| value.contains("cookie")),
        "{vary:?}"
    );
    assert!(
        headers.get("strict-transport-security").is_none(),
        "no HSTS without TLS"
    );
    assert!(headers.get("cross-origin-opener-policy").is_none());
    let csp = header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the CSP")
        .to_string();
    let html = response.text().await.expect("html");
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the page's scripts carry the CSP's nonce"
    );
    // Every inline script of the page carries it.
    for script in html.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap_or_default();
        if !tag.contains("src=") {
            assert!(
                tag.contains(&nonce),
                "an inline script without the nonce: <script{tag}>"
            );
        }
    }

    // A browser that runs CheerpX gets cross-origin isolation; an API answer no CSP.
    let response = client()
        .get(format!("{}/settings", server.base))
        .header("cookie", "webvm_engine=cheerpx")
        .send()
        .await
        .expect("page");
    assert_eq!(
        response
            .headers()
            .get("cross-origin-embedder-policy")
            .and_then(|value| value.to_str().ok()),
        Some("require-corp")
    );
    let response = call(&server, "list_packages", "", &[]).await;
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|value| value.to_str().ok()),
        Some("private, no-store")
    );
}

#[tokio::test]
async fn script_endings_in_names_and_descriptions_are_escaped() {
    let server = start().await;
    let attack = "</script><script>alert(1)</script>";
    // In the URL of an application page (it becomes the page's title, too).
    for (escaped, raw) in [
        ("%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E", attack),
        (
            "%3C%2Ftitle%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "</title><script>alert(1)</script>",
        ),
    ] {
        let path = format!("{}/applications/{escaped}", server.base);
        let response = get(path, "page").await;
        assert_eq!(response.status(), 404);
        let html = response.text().await.expect("html");
        assert!(
            !html.contains(raw),
            "the name is escaped in the page: {raw}"
        );
        assert!(!html.contains("<script>alert(1)"));
    }

    // In a description on a public status page.
    let owner = server.storage.create_workspace().await.expect("workspace");
    let mut app = application("xss-demo");
    app.description = Some(attack.to_string());
    server
        .storage
        .put_application(owner.id, &app)
        .await
        .expect("stored");
    let token = server
        .storage
        .create_share_link(owner.id, app.id, None)
        .await
        .expect("link");
    let response = get(format!("{}/status/{token}", server.base), "page").await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.expect("html");
    assert!(html.contains("xss-demo"));
    assert!(!html.contains(attack), "the description is escaped");
    assert!(!html.contains("<script>alert(1)"));
}

#[tokio::test]
async fn concurrent_writes_to_one_name_leave_exactly_one_winner() {
    let server = start().await;
    let owner = server.storage.create_workspace().await.expect("workspace");
    let writers: Vec<_> = (0..12)
        .map(|_| {
            let storage = server.storage.clone();
            tokio::spawn(async move {
                storage
                    .put_application(owner.id, &application("same-name"))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for writer in writers {
        match writer.await.expect("joined") {
            Ok(_) => won += 1,
            Err(StorageError::NameTaken { name }) => assert_eq!(name, "same-name"),
            Err(other) => panic!("a losing writer must see NameTaken, not {other}"),
        }
    }
    assert_eq!(won, 1);
    let stored = server
        .storage
        .list_applications(owner.id)
        .await
        .expect("list");
    assert_eq!(stored.len(), 1);
}

fn catalog(ids: &[&str], version: &str) -> Vec<PackageCatalogEntry> {
    ids.iter()
        .map(|id| PackageCatalogEntry {
            package: RuntimePackage::new(
                PackageId::parse(id).expect("valid id"),
                id,
                RuntimeCategory::Tool,
                version,
            ),
            catalog_error: None,
            details: Default::default(),
        })
        .collect()
}

#[tokio::test]
async fn readers_during_a_rescan_see_the_old_or_the_new_catalog_never_a_mix() {
    let server = start().await;
    let old = catalog(&["alpha", "beta", "gamma", "delta"], "1.0.0");
    let new = catalog(&["beta", "epsilon", "zeta"], "2.0.0");
    server
        .storage
        .replace_runtime_packages(&old)
        .await
        .expect("first catalog");
    let fingerprint = |entries: &[PackageCatalogEntry]| {
        let mut ids: Vec<String> = entries
            .iter()
            .map(|entry| format!("{}@{}", entry.package.id, entry.package.version))
            .collect();
        ids.sort();
        ids
    };
    let (old_print, new_print) = (fingerprint(&old), fingerprint(&new));
    let writer = {
        let storage = server.storage.clone();
        let (old, new) = (old.clone(), new.clone());
        tokio::spawn(async move {
            for round in 0..30 {
                let next = if round % 2 == 0 { &new } else { &old };
                storage
                    .replace_runtime_packages(next)
                    .await
                    .expect("rescan");
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads < 30 {
        let seen = server
            .storage
            .list_package_catalog()
            .await
            .expect("catalog read");
        let print = fingerprint(&seen);
        assert!(
            print == old_print || print == new_print,
            "a reader saw a mix: {print:?}"
        );
        reads += 1;
        if reads > 2_000 {
            break;
        }
    }
    writer.await.expect("writer");
}

#[tokio::test]
async fn a_corrupt_document_fails_cleanly_and_the_rest_still_serves() {
    let server = start().await;
    let owner = server.storage.create_workspace().await.expect("workspace");
    server
        .storage
        .put_application(owner.id, &application("good-app"))
        .await
        .expect("stored");
    sqlx::query(
        "INSERT INTO applications (workspace_id, id, name, name_key, status, document, updated_at)
         VALUES ($1, $2, 'bad-app', 'bad-app', 'draft', '{\"not\": json', '2026-01-01T00:00:00Z')",
    )
    .bind(owner.id.to_string())
    .bind(Uuid::new_v4().to_string())
    .execute(server.storage.pool())
    .await
    .expect("corrupt row written");
    let owner_cookie = cookie(&owner);
    let headers = [("cookie", owner_cookie.as_str())];
    // The list shows what can be read.
    let response = call(&server, "list_applications", "", &headers).await;
    assert_eq!(response.status(), 200);
    let list: serde_json::Value = response.json().await.expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    // The corrupt one is a 500 with a reference and no detail.
    let response = call(&server, "get_application", "name=bad-app", &headers).await;
    assert_eq!(response.status(), 500);
    let text = response.text().await.expect("body");
    assert!(text.contains("reference"), "{text}");
    assert!(
        !text.contains("expected") && !text.contains("json"),
        "{text}"
    );
    let response = call(&server, "get_application", "name=good-app", &headers).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_database_lost_after_start_up_is_reported_and_recovers() {
    if !common::database::is_postgres() {
        eprintln!("SKIPPED here: losing the database is tested on PostgreSQL (the PostgreSQL stage of scripts/test.sh)");
        return;
    }
    let server = start().await;
    let database = server
        .config
        .database_url
        .as_deref()
        .and_then(|url| url.rsplit('/').next())
        .map(|name| name.split('?').next().unwrap_or(name).to_string())
        .expect("a PostgreSQL database");
    set_connections_allowed(&database, false).await;
    let health = get(format!("{}/healthz", server.base), "healthz answers").await;
    assert_eq!(health.status(), 503);
    let body: serde_json::Value = health.json().await.expect("json");
    assert_eq!(body["database"], "unreachable");
    let response = call(&server, "list_packages", "", &[]).await;
    assert!(
        [500, 503].contains(&response.status().as_u16()),
        "{}",
        response.status()
    );
    set_connections_allowed(&database, true).await;
    let mut recovered = false;
    for _ in 0..20 {
        let health = get(format!("{}/healthz", server.base), "healthz").await;
        if health.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(recovered, "the server recovers when the database is back");
    assert_eq!(call(&server, "list_packages", "", &[]).await.status(), 200);
}

/// Takes a PostgreSQL database away from its clients (every session ended, no new ones) or
/// gives it back, through the admin connection the test run provides.
async fn set_connections_allowed(database: &str, allowed: bool) {
    use sqlx::Connection;
    let admin = std::env::var(common::database::POSTGRES_URL_VAR).expect("admin URL");
    let mut connection = sqlx::postgres::PgConnection::connect(&admin)
        .await
        .expect("admin connection");
    sqlx::query(&format!(
        "ALTER DATABASE \"{database}\" WITH ALLOW_CONNECTIONS {allowed}"
    ))
    .execute(&mut connection)
    .await
    .expect("alter database");
    if !allowed {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(database)
        .execute(&mut connection)
        .await
        .expect("sessions ended");
    }
}

#[tokio::test]
async fn slow_requests_time_out_and_excess_load_is_shed_but_healthz_answers() {
    let limits = EdgeConfig {
        request_timeout_secs: 3,
        max_concurrent_requests: 1,
        ..EdgeConfig::default()
    };
    let app = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/fast", axum::routing::get(|| async { "fast" }));
    let health = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let router = edge::harden(
        app,
        health,
        edge::SitePolicy::default(),
        &limits,
        edge::EndpointTable::default(),
    );
    let addr = common::serve_router(router, &limits).await;
    // One slow request holds the only slot until its timeout ends it with 503.
    let slow = tokio::spawn(async move { get(format!("http://{addr}/slow"), "slow").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shed = get(format!("http://{addr}/fast"), "fast").await;
    assert_eq!(shed.status(), 503, "a request over the limit is shed");
    assert!(shed.headers().contains_key("retry-after"));
    let health = get(format!("http://{addr}/healthz"), "healthz").await;
    assert_eq!(health.status(), 200, "the health check is exempt");
    let slow = slow.await.expect("joined");
    assert_eq!(slow.status(), 503, "the slow request timed out");
    let body: serde_json::Value = slow.json().await.expect("json");
    assert_eq!(body, serde_json::json!("Unavailable"));
    // With the slot free again, requests are served.
    assert_eq!(
        get(format!("http://{addr}/fast"), "fast").await.status(),
        200
    );
}
