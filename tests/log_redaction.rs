//! The server's log at `debug` level never holds a secret: no workspace cookie or token, no
//! share token, no database password. Its own binary, so it can own the global subscriber.
#![cfg(feature = "ssr")]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use uuid::Uuid;
use webvm_appserver::host::build_app;
use webvm_appserver::model::{AppName, Application, DeploymentConfig, ExecutionConfig};
use webvm_appserver::server::config::Config;

/// Every log line the process writes, kept in memory.
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

impl CapturedLog {
    fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
        .into_owned()
    }
}

#[tokio::test]
async fn the_debug_log_holds_no_token_cookie_or_password() {
    let log = CapturedLog::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    // A database URL with a password that can't be reached: the start-up error is logged as
    // the binary logs it.
    let data = tempfile::tempdir().expect("temp dir");
    let mut unreachable = Config::for_data_dir(data.path().join("unreachable"));
    unreachable.database_url =
        Some("postgres://webvm:Pa55-in-url@127.0.0.1:9/db?password=Pa55-in-query".into());
    match build_app(&unreachable).await {
        Ok(_) => panic!("nothing listens on port 9"),
        Err(error) => tracing::error!("{error}"),
    }

    let config = common::database::test_config(data.path().join("data")).await;
    let built = build_app(&config).await.expect("router builds");
    let base = format!(
        "http://{}",
        common::serve_router(built.router, &config.edge).await
    );

    let client = reqwest::Client::new();
    // A new workspace: its cookie travels in Set-Cookie.
    let response = client
        .post(format!("{base}/api/open_workspace"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .expect("open workspace");
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .expect("a cookie")
        .to_string();
    let cookie = set_cookie
        .split(';')
        .next()
        .expect("name=value")
        .to_string();
    let token = cookie
        .split_once('.')
        .map(|(_, token)| token.to_string())
        .expect("id.token");
    // Pages and functions called with it.
    for path in [
        "/",
        "/applications",
        "/settings",
        "/applications/no-such-app",
    ] {
        client
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("page");
    }
    // A shared status page, by path and through its function.
    let storage = built.storage;
    let owner = storage.create_workspace().await.expect("workspace");
    let name = AppName::parse("logged-app").expect("name");
    let application = Application::new(
        Uuid::new_v4(),
        name.clone(),
        DeploymentConfig {
            deployment_path: DeploymentConfig::default_path(&name),
            ..DeploymentConfig::default()
        },
        ExecutionConfig::default(),
        Utc::now(),
    );
    storage
        .put_application(owner.id, &application)
        .await
        .expect("stored");
    let share = storage
        .create_share_link(owner.id, application.id, None)
        .await
        .expect("share link");
    client
        .get(format!("{base}/status/{share}?token={share}"))
        .send()
        .await
        .expect("status page");
    client
        .post(format!("{base}/api/public_status"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={share}"))
        .send()
        .await
        .expect("status function");
    // A request that fails to parse, whose detail is logged.
    client
        .post(format!("{base}/api/get_application"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &cookie)
        .body(format!("secret={token}"))
        .send()
        .await
        .expect("bad arguments");

    let text = log.text();
    assert!(text.contains("request"), "the log was captured: {text}");
    assert!(
        text.contains("/status/***"),
        "status paths are logged redacted"
    );
    for secret in [
        token.as_str(),
        share.as_str(),
        owner.token.as_str(),
        "Pa55-in-url",
        "Pa55-in-query",
    ] {
        assert!(!text.contains(secret), "the log holds a secret: {secret}");
    }
}
