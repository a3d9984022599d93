//! The `url` and `github` deploy sources over the real router: limits, redirects, refused
//! hosts, the cross-site guard, and the GitHub token going only to the API host and never
//! appearing in a response or in the log at `debug`. Local origin servers stand in for the
//! internet and for GitHub (API + codeload). Independent of the database backend.
#![cfg(feature = "ssr")]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use webvm_appserver::domain::fetch_policy::AllowedHost;
use webvm_appserver::error::AppError;
use webvm_appserver::host::build_app;
use webvm_appserver::server::config::Config;

const TOKEN: &str = "ghp_S3cretTokenThatMustNeverLeak42";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
/// The size cap the test servers run with.
const CAP: u64 = 64 * 1024;

/// Every log line of this test binary, at `debug`.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log() -> &'static CapturedLog {
    static LOG: OnceLock<CapturedLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = CapturedLog::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        log
    })
}

fn log_text() -> String {
    String::from_utf8_lossy(
        &log()
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    )
    .into_owned()
}

/// A small real .tar.gz with one top-level folder.
fn site_tarball() -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    let page = b"<h1>hello</h1>\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(page.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "site/index.html", &page[..])
        .expect("tar entry");
    builder.into_inner().expect("tar").finish().expect("gzip")
}

/// An empty but well-formed ZIP (only the end-of-central-directory record).
fn empty_zip() -> Vec<u8> {
    let mut zip = b"PK\x05\x06".to_vec();
    zip.extend_from_slice(&[0; 18]);
    zip
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("origin serves");
    });
    addr
}

/// The stand-in for the internet: archives, oversized bodies, redirects, slow answers.
async fn origin(other: Option<SocketAddr>) -> SocketAddr {
    let tarball = Bytes::from(site_tarball());
    let router = Router::new()
        .route(
            "/site.tar.gz",
            get(move || {
                let tarball = tarball.clone();
                async move { tarball }
            }),
        )
        .route(
            "/big-with-length",
            get(|| async { vec![7u8; (CAP * 4) as usize] }),
        )
        .route(
            "/big-streamed",
            get(|| async {
                let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 4096])));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/redirect/{hops}",
            get(|Path(hops): Path<u32>| async move {
                let next = match hops {
                    0 => "/site.tar.gz".to_string(),
                    // relative and absolute-path locations both
                    n if n % 2 == 0 => format!("/redirect/{}", n - 1),
                    n => format!("{}", n - 1),
                };
                (StatusCode::FOUND, [(header::LOCATION, next)])
            }),
        )
        .route(
            "/to-other",
            get(move || async move {
                let location = match other {
                    Some(other) => format!("http://{other}/site.tar.gz"),
                    None => "/site.tar.gz".to_string(),
                };
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, location)],
                )
            }),
        )
        .route(
            "/no-location",
            get(|| async { StatusCode::TEMPORARY_REDIRECT }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/slow-headers",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route(
            "/slow-body",
            get(|| async {
                let first = futures::stream::once(async {
                    Ok::<_, std::io::Error>(Bytes::from_static(b"first"))
                });
                let stall = futures::stream::once(async {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Ok::<_, std::io::Error>(Bytes::from_static(b"late"))
                });
                Body::from_stream(futures::StreamExt::chain(first, stall))
            }),
        );
    serve(router).await
}

/// What the fake GitHub saw.
#[derive(Default)]
struct GitHubLog {
    codeload_saw_authorization: AtomicBool,
    codeload_hits: AtomicUsize,
    api_saw_token: AtomicUsize,
}

#[derive(Clone)]
struct GitHubState {
    log: Arc<GitHubLog>,
    codeload: SocketAddr,
}

/// The refusal when the request lacks the token (`None`: authorised).
fn refusal(state: &GitHubState, headers: &HeaderMap) -> Option<Response> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match authorization {
        Some(value) if value == format!("Bearer {TOKEN}") || value == format!("token {TOKEN}") => {
            state.log.api_saw_token.fetch_add(1, Ordering::SeqCst);
            None
        }
        Some(_) => Some(
            (
                StatusCode::UNAUTHORIZED,
                "{\"message\":\"Bad credentials\"}",
            )
                .into_response(),
        ),
        // A private repository is invisible without a token.
        None => Some((StatusCode::NOT_FOUND, "{\"message\":\"Not Found\"}").into_response()),
    }
}

async fn commits(
    State(state): State<GitHubState>,
    Path((owner, repo, reference)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = refusal(&state, &headers) {
        return refusal;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    if accept != Some("application/vnd.github.sha") {
        return (
            StatusCode::BAD_REQUEST,
            "the sha media type was not asked for",
        )
            .into_response();
    }
    if (owner.as_str(), repo.as_str()) != ("demo", "site") {
        return StatusCode::NOT_FOUND.into_response();
    }
    match reference.as_str() {
        "main" | "HEAD" | "0123456" => SHA.into_response(),
        "garbage" => "<html>not a sha</html>".into_response(),
        _ => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{{\"message\":\"No commit found for SHA: {reference}\"}}"),
        )
            .into_response(),
    }
}

async fn zipball(
    State(state): State<GitHubState>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = refusal(&state, &headers) {
        return refusal;
    }
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            format!("http://{}/{owner}/{repo}/legacy.zip/{sha}", state.codeload),
        )],
    )
        .into_response()
}

async fn codeload(State(log): State<Arc<GitHubLog>>, headers: HeaderMap) -> Response {
    log.codeload_hits.fetch_add(1, Ordering::SeqCst);
    if headers.contains_key(header::AUTHORIZATION) {
        log.codeload_saw_authorization.store(true, Ordering::SeqCst);
        return (StatusCode::BAD_REQUEST, "a token reached codeload").into_response();
    }
    (
        [(
            header::CONTENT_DISPOSITION,
            "attachment; filename=demo-site-0123456.zip",
        )],
        empty_zip(),
    )
        .into_response()
}

/// A GitHub-shaped API and its codeload host, on two loopback ports.
async fn github() -> (SocketAddr, SocketAddr, Arc<GitHubLog>) {
    let log = Arc::new(GitHubLog::default());
    let codeload = serve(
        Router::new()
            .route("/{owner}/{repo}/legacy.zip/{sha}", get(codeload))
            .with_state(log.clone()),
    )
    .await;
    let api = serve(
        Router::new()
            .route("/repos/{owner}/{repo}/commits/{*reference}", get(commits))
            .route("/repos/{owner}/{repo}/zipball/{sha}", get(zipball))
            .with_state(GitHubState {
                log: log.clone(),
                codeload,
            }),
    )
    .await;
    (api, codeload, log)
}

/// The app under test, with the given allowed hosts and the GitHub API at `api`.
async fn app(
    allow: &[String],
    api: Option<SocketAddr>,
    edit: impl FnOnce(&mut Config),
) -> (String, tempfile::TempDir) {
    log();
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = common::database::test_config(data.path().join("data")).await;
    config.fetch.allow_hosts = allow
        .iter()
        .map(|entry| AllowedHost::parse(entry).expect("allow entry"))
        .collect();
    config.fetch.max_bytes = CAP;
    config.fetch.timeout_secs = 3;
    if let Some(api) = api {
        config.fetch.github_api_url = format!("http://{api}").parse().expect("api url");
    }
    edit(&mut config);
    let built = build_app(&config).await.expect("router builds");
    let addr = common::serve_router(built.router, &config.edge).await;
    (format!("http://{addr}"), data)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn fetch_url(base: &str, url: &str) -> reqwest::Response {
    client()
        .get(format!("{base}/api/sources/url"))
        .query(&[("url", url)])
        .send()
        .await
        .expect("the app answers")
}

/// An error answer: its status and the `AppError` JSON's message text.
async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/json"),
        "errors are JSON"
    );
    let body = response.text().await.expect("error body");
    let error: AppError = serde_json::from_str(&body).expect("AppError JSON");
    assert_eq!(error.status_code(), status, "the status is the error's own");
    let message = error.to_string();
    (status, message)
}

#[tokio::test]
async fn a_tarball_streams_through_with_its_length() {
    let origin = origin(None).await;
    let (base, _data) = app(&[origin.to_string()], None, |_| {}).await;
    let response = fetch_url(&base, &format!("http://{origin}/site.tar.gz")).await;
    assert_eq!(response.status(), 200);
    let expected = site_tarball();
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("content-length").and_then(|v| v.to_str().ok()),
        Some(expected.len().to_string().as_str()),
        "the length passes through for byte progress"
    );
    assert_eq!(
        headers
            .get("x-source-filename")
            .and_then(|v| v.to_str().ok()),
        Some("site.tar.gz")
    );
    assert_eq!(
        headers
            .get("x-fetch-limit-bytes")
            .and_then(|v| v.to_str().ok()),
        Some(CAP.to_string().as_str())
    );
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/octet-stream")
    );
    let body = response.bytes().await.expect("body");
    assert_eq!(body.as_ref(), expected.as_slice());
}

#[tokio::test]
async fn oversized_archives_are_refused_or_cut() {
    let origin = origin(None).await;
    let (base, _data) = app(&[origin.to_string()], None, |_| {}).await;
    // A declared length over the cap: refused before any byte.
    let (status, message) =
        error_of(fetch_url(&base, &format!("http://{origin}/big-with-length")).await).await;
    assert_eq!(status, 400);
    assert!(
        message.contains(&format!(
            "is {} bytes, over the limit of {CAP} bytes",
            CAP * 4
        )) && message.contains("--fetch-max-bytes"),
        "{message}"
    );
    // No length: the download starts and is cut at the cap, so the browser sees an error.
    let response = fetch_url(&base, &format!("http://{origin}/big-streamed")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-length").is_none());
    assert!(
        response.bytes().await.is_err(),
        "a body over the cap ends in an error"
    );
}

#[tokio::test]
async fn redirects_are_followed_five_times_at_most() {
    let origin = origin(None).await;
    let (base, _data) = app(&[origin.to_string()], None, |_| {}).await;
    // /redirect/4 → 3 → 2 → 1 → 0 → /site.tar.gz: five redirects.
    let response = fetch_url(&base, &format!("http://{origin}/redirect/4")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        site_tarball().as_slice()
    );
    let start = format!("http://{origin}/redirect/5");
    let (status, message) = error_of(fetch_url(&base, &start).await).await;
    assert_eq!(status, 400);
    assert_eq!(message, format!("{start} redirected more than 5 times."));
    let (status, message) =
        error_of(fetch_url(&base, &format!("http://{origin}/no-location")).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("without a Location"), "{message}");
    let (status, message) =
        error_of(fetch_url(&base, &format!("http://{origin}/missing")).await).await;
    assert_eq!(status, 400);
    assert!(
        message.contains("/missing answered 404 Not Found"),
        "{message}"
    );
}

#[tokio::test]
async fn every_redirect_hop_is_checked_again() {
    let other = origin(None).await;
    let first = origin(Some(other)).await;
    // Only the first host is allowed: its redirect to another loopback port is refused.
    let (base, _data) = app(&[first.to_string()], None, |_| {}).await;
    let (status, message) =
        error_of(fetch_url(&base, &format!("http://{first}/to-other")).await).await;
    assert_eq!(status, 403);
    assert_eq!(
        message,
        "127.0.0.1 is a loopback address; the operator can allow it with --fetch-allow-host."
    );
    // With both allowed it goes through.
    let (base, _data) = app(&[first.to_string(), other.to_string()], None, |_| {}).await;
    let response = fetch_url(&base, &format!("http://{first}/to-other")).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn loopback_needs_the_allow_list_and_bad_urls_are_refused() {
    let origin = origin(None).await;
    let url = format!("http://{origin}/site.tar.gz");
    let (base, _data) = app(&[], None, |_| {}).await;
    let cases = [
        (url.clone(), 403, "127.0.0.1 is a loopback address; the operator can allow it with --fetch-allow-host.".to_string()),
        (
            format!("http://localhost:{}/site.tar.gz", origin.port()),
            403,
            "localhost resolves to 127.0.0.1, a loopback address; the operator can allow the host with --fetch-allow-host.".to_string(),
        ),
        ("http://169.254.169.254/latest/meta-data/".to_string(), 403, "169.254.169.254 is a link-local address (where cloud metadata services answer); the operator can allow it with --fetch-allow-host.".to_string()),
        ("http://[::ffff:10.0.0.1]/a.zip".to_string(), 403, "::ffff:10.0.0.1 is a private address; the operator can allow it with --fetch-allow-host.".to_string()),
        ("ftp://example.com/site.zip".to_string(), 400, "ftp://example.com/site.zip: only http and https URLs can be fetched, not ftp:.".to_string()),
        ("file:///etc/passwd".to_string(), 400, "file:///etc/passwd: only http and https URLs can be fetched, not file:.".to_string()),
        ("nonsense".to_string(), 400, "“nonsense” is not a valid URL: relative URL without a base.".to_string()),
    ];
    for (url, status, message) in cases {
        assert_eq!(
            error_of(fetch_url(&base, &url).await).await,
            (status, message),
            "{url}"
        );
    }
    let response = client()
        .get(format!("{base}/api/sources/url"))
        .send()
        .await
        .expect("answer");
    let (status, message) = error_of(response).await;
    assert_eq!(status, 400);
    assert!(
        message.starts_with("The url parameter is missing"),
        "{message}"
    );

    // Allowed by the operator: fetched.
    let (base, _data) = app(&[origin.to_string()], None, |_| {}).await;
    assert_eq!(fetch_url(&base, &url).await.status(), 200);
    let (base, _data) = app(&["localhost".to_string()], None, |_| {}).await;
    let response = fetch_url(
        &base,
        &format!("http://localhost:{}/site.tar.gz", origin.port()),
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_total_timeout_is_enforced() {
    let origin = origin(None).await;
    let (base, _data) = app(&[origin.to_string()], None, |config| {
        config.fetch.timeout_secs = 1
    })
    .await;
    let url = format!("http://{origin}/slow-headers");
    let (status, message) = error_of(fetch_url(&base, &url).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        message,
        format!("{url} took longer than 1 s (the operator sets the limit with --fetch-timeout).")
    );
    let response = fetch_url(&base, &format!("http://{origin}/slow-body")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "a body past the deadline ends in an error"
    );
}

#[tokio::test]
async fn cross_site_pages_cant_make_the_server_fetch_and_fetches_are_rate_limited() {
    let origin = origin(None).await;
    let url = format!("http://{origin}/site.tar.gz");
    let (base, _data) = app(&[origin.to_string()], None, |config| {
        config.edge.writes_per_minute = 2
    })
    .await;
    let response = client()
        .get(format!("{base}/api/sources/url"))
        .query(&[("url", url.as_str())])
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("answer");
    assert_eq!(error_of(response).await.0, 403);
    let response = client()
        .post(format!("{base}/api/sources/github"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(r#"{"repository":"demo/site"}"#)
        .send()
        .await
        .expect("answer");
    assert_eq!(error_of(response).await.0, 403);
    assert_eq!(fetch_url(&base, &url).await.status(), 200);
    assert_eq!(fetch_url(&base, &url).await.status(), 200);
    let limited = fetch_url(&base, &url).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
}

async fn post_github(base: &str, body: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = client()
        .post(format!("{base}/api/sources/github"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.header("x-github-token", token);
    }
    request.send().await.expect("the app answers")
}

fn assert_no_token(headers: &reqwest::header::HeaderMap, body: &[u8], what: &str) {
    for (name, value) in headers {
        assert!(
            !String::from_utf8_lossy(value.as_bytes()).contains(TOKEN),
            "{what}: header {name} holds the token"
        );
    }
    assert!(
        !String::from_utf8_lossy(body).contains(TOKEN),
        "{what}: the body holds the token"
    );
}

#[tokio::test]
async fn github_archives_resolve_the_commit_and_keep_the_token_to_the_api() {
    let (api, codeload, seen) = github().await;
    // The API host is allowed because the operator configured it; codeload must be allowed.
    let (base, _data) = app(&[codeload.to_string()], Some(api), |_| {}).await;
    let response = post_github(
        &base,
        r#"{"repository":"demo/site","branch":"main"}"#,
        Some(TOKEN),
    )
    .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("x-commit-sha").and_then(|v| v.to_str().ok()),
        Some(SHA)
    );
    assert_eq!(
        headers
            .get("x-source-filename")
            .and_then(|v| v.to_str().ok()),
        Some("demo-site-0123456.zip")
    );
    let body = response.bytes().await.expect("zip");
    assert_eq!(body.as_ref(), empty_zip().as_slice());
    assert_no_token(&headers, &body, "the archive");
    assert_eq!(
        seen.api_saw_token.load(Ordering::SeqCst),
        2,
        "both API calls carried the token"
    );
    assert_eq!(seen.codeload_hits.load(Ordering::SeqCst), 1);
    assert!(
        !seen.codeload_saw_authorization.load(Ordering::SeqCst),
        "the token went to codeload"
    );

    // A short commit and the default branch resolve too.
    for body in [
        r#"{"repository":"demo/site","branch":"main","commit":"0123456"}"#,
        r#"{"repository":"demo/site"}"#,
    ] {
        let response = post_github(&base, body, Some(TOKEN)).await;
        assert_eq!(response.status(), 200, "{body}");
        assert_eq!(
            response
                .headers()
                .get("x-commit-sha")
                .and_then(|v| v.to_str().ok()),
            Some(SHA)
        );
    }
    assert!(
        !seen.codeload_saw_authorization.load(Ordering::SeqCst),
        "the token went to codeload"
    );

    // Refusals, each named; none echoes the token.
    let cases: [(&str, Option<&str>, u16, &str); 8] = [
        (r#"{"repository":"demo/site","branch":"main"}"#, None, 403, "GitHub: repository demo/site not found or the token has no access to it (404)."),
        (r#"{"repository":"demo/site","branch":"main"}"#, Some("ghp_wrong"), 403, "GitHub refused the token for demo/site (401): it is wrong, expired or revoked."),
        (r#"{"repository":"demo/other"}"#, Some(TOKEN), 403, "GitHub: repository demo/other not found or the token has no access to it (404)."),
        (r#"{"repository":"demo/site","branch":"nope"}"#, Some(TOKEN), 404, "GitHub: branch nope of demo/site was not found."),
        (r#"{"repository":"demo/site","branch":"garbage"}"#, Some(TOKEN), 400, "GitHub answered “<html>not a sha</html>” where a 40-character commit SHA was expected."),
        (r#"{"repository":"demo","branch":"main"}"#, Some(TOKEN), 400, "the repository “demo” is not valid: it has no “/” between the owner and the repository (expected owner/repo, e.g. rust-lang/rust)."),
        (r#"{"repository":"demo/site","branch":"a..b"}"#, Some(TOKEN), 400, "the branch “a..b” is not valid: a branch name can't hold “..”."),
        (r#"{"repository":"demo/site","commit":"xyz"}"#, Some(TOKEN), 400, "the commit “xyz” is not valid: a commit is 7 to 40 hexadecimal characters."),
    ];
    for (body, token, status, message) in cases {
        let response = post_github(&base, body, token).await;
        let headers = response.headers().clone();
        let (got_status, got_message) = error_of(response).await;
        assert_eq!(
            (got_status, got_message.as_str()),
            (status, message),
            "{body}"
        );
        assert_no_token(&headers, got_message.as_bytes(), body);
    }
    let response = post_github(
        &base,
        r#"{"repository":"demo/site","token":"x"}"#,
        Some(TOKEN),
    )
    .await;
    let (status, message) = error_of(response).await;
    assert_eq!(status, 400);
    assert!(
        message.starts_with("The request could not be read: expected JSON"),
        "{message}"
    );

    let log = log_text();
    assert!(log.contains("/api/sources/github"), "the log was captured");
    assert!(!log.contains(TOKEN), "the log holds the GitHub token");
}

#[tokio::test]
async fn a_codeload_host_outside_the_allow_list_is_refused() {
    let (api, _codeload, seen) = github().await;
    let (base, _data) = app(&[], Some(api), |_| {}).await;
    let response = post_github(
        &base,
        r#"{"repository":"demo/site","branch":"main"}"#,
        Some(TOKEN),
    )
    .await;
    let (status, message) = error_of(response).await;
    assert_eq!(status, 403);
    assert_eq!(
        message,
        "127.0.0.1 is a loopback address; the operator can allow it with --fetch-allow-host."
    );
    assert_eq!(seen.codeload_hits.load(Ordering::SeqCst), 0);
}
