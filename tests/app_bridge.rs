//! The server's half of the `/apps/<name>/` bridge, through the real router over loopback:
//! the service worker's headers, the slash redirect, the "Opening <name>…" page that
//! installs the worker (behind the edge's CSP), 404 for names that are not app names and
//! 503 for writes that no worker carried.
#![cfg(feature = "ssr")]

mod common;

use std::time::Duration;

use reqwest::{Method, StatusCode};

struct Server {
    base: String,
    _data: tempfile::TempDir,
}

async fn start() -> Server {
    let data = tempfile::tempdir().expect("temp dir");
    let config = common::database::test_config(data.path().join("data")).await;
    let base = common::serve_on_loopback(&config).await;
    Server { base, _data: data }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn send(server: &Server, method: Method, path: &str) -> reqwest::Response {
    client()
        .request(method.clone(), format!("{}{path}", server.base))
        .send()
        .await
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_worker_and_its_bootstrap_are_served_as_scripts() {
    let server = start().await;
    let response = send(&server, Method::GET, "/apps-sw.js").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/javascript"));
    assert_eq!(header(&response, "service-worker-allowed"), "/apps/");
    assert_eq!(header(&response, "cache-control"), "no-cache");
    let worker = response.text().await.expect("body");
    assert!(worker.contains("webvm-bridge-probe"));
    assert!(worker.contains("webvm-bridge-request"));
    // The model's name rules were filled in.
    assert!(
        worker.contains("\"reserved\":[\"admin\","),
        "rules not filled"
    );
    assert!(!worker.contains("/* NAME_RULES */"));

    let response = send(&server, Method::GET, "/apps-bootstrap.js").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/javascript"));
    let bootstrap = response.text().await.expect("body");
    assert!(bootstrap.contains("register(SCRIPT, { scope: SCOPE })"));
    assert!(bootstrap.contains("location.reload()"));
}

#[tokio::test]
async fn an_app_without_its_slash_is_redirected_with_its_query() {
    let server = start().await;
    let cases = [
        (Method::GET, "/apps/hello", "/apps/hello/"),
        (
            Method::GET,
            "/apps/hello?x=1&y=a%20b",
            "/apps/hello/?x=1&y=a%20b",
        ),
        (Method::HEAD, "/apps/my.app_2", "/apps/my.app_2/"),
        (Method::POST, "/apps/hello?form=1", "/apps/hello/?form=1"),
    ];
    for (method, path, location) in cases {
        let response = send(&server, method.clone(), path).await;
        assert_eq!(
            response.status(),
            StatusCode::PERMANENT_REDIRECT,
            "{method} {path}"
        );
        assert_eq!(header(&response, "location"), location, "{method} {path}");
    }
}

#[tokio::test]
async fn without_a_worker_an_app_page_installs_it() {
    let server = start().await;
    for (path, name) in [
        ("/apps/hello/", "hello"),
        ("/apps/hello/other?x=1", "hello"),
        ("/apps/my.app_2/deep/path/index.html", "my.app_2"),
    ] {
        let response = send(&server, Method::GET, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(header(&response, "content-type").starts_with("text/html"));
        assert_eq!(header(&response, "cache-control"), "private, no-store");
        let csp = header(&response, "content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("worker-src 'self'"), "{csp}");
        let scripts = csp
            .split("; ")
            .find(|directive| directive.starts_with("script-src "))
            .unwrap_or_default();
        assert!(!scripts.contains("'unsafe-inline'"), "{csp}");
        let page = response.text().await.expect("body");
        assert!(
            page.contains(&format!("<title>Opening {name}…</title>")),
            "{page}"
        );
        assert!(page.contains("<script src=\"/apps-bootstrap.js\" defer></script>"));
        assert!(page.contains("<noscript>"));
        assert!(page.contains("id=\"bridge-unsupported\" hidden"));
        assert!(page.contains("href=\"/\""));
        // Every script is the external bootstrap: nothing inline for the CSP to refuse.
        assert_eq!(page.matches("<script").count(), 1, "{page}");
    }
    let response = send(&server, Method::HEAD, "/apps/hello/x").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/html"));
    assert!(response.bytes().await.expect("body").is_empty());
}

#[tokio::test]
async fn names_that_are_not_app_names_are_not_found() {
    let server = start().await;
    for path in [
        "/apps/ab/",
        "/apps/api/",
        "/apps/APPS/x",
        "/apps/-hello/",
        "/apps/hello-/",
        "/apps/he%6Clo/",
        "/apps/a%3Cb%3Ecd/",
        "/apps/ab",
        &format!("/apps/{}/", "a".repeat(51)),
    ] {
        let response = send(&server, Method::GET, path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(header(&response, "content-type").starts_with("text/html"));
        let page = response.text().await.expect("body");
        assert!(page.contains("No such app"), "{path}: {page}");
        assert!(!page.contains("<b>"), "{path}: unescaped");
    }
    let response = send(&server, Method::POST, "/apps/api/form").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn writes_without_a_worker_are_unavailable() {
    let server = start().await;
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        for path in ["/apps/hello/", "/apps/hello/form?x=1"] {
            let response = send(&server, method.clone(), path).await;
            assert_eq!(
                response.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{method} {path}"
            );
            assert!(header(&response, "content-type").starts_with("text/plain"));
            let text = response.text().await.expect("body");
            assert!(text.contains("service worker"), "{text}");
            assert!(text.contains("/apps/hello/"), "{text}");
        }
    }
}
