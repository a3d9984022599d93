//! The database an integration test runs against: a SQLite file in the test's data directory,
//! or, when `WEBVM_TEST_POSTGRES_URL` holds a PostgreSQL admin URL (`scripts/postgres.sh`
//! prints one; `scripts/test.sh` sets it for its PostgreSQL stage), a fresh database of its
//! own on that server, so tests stay isolated however they run.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;

use sqlx::Connection;
use webvm_appserver::server::config::Config;
use webvm_appserver::server::storage::{redact_database_url, Backend};

/// The variable naming the PostgreSQL server the tests create their databases on.
pub const POSTGRES_URL_VAR: &str = "WEBVM_TEST_POSTGRES_URL";

/// The PostgreSQL admin URL the tests use, if any.
fn postgres_admin_url() -> Option<String> {
    let url = std::env::var(POSTGRES_URL_VAR).ok()?;
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    assert!(
        url.starts_with("postgres://") || url.starts_with("postgresql://"),
        "{POSTGRES_URL_VAR} must be a postgres:// URL, not {}",
        redact_database_url(url)
    );
    Some(url.to_string())
}

/// The backend the tests' servers use.
pub fn backend() -> Backend {
    if postgres_admin_url().is_some() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// The backend's name as the server reports it (`/healthz`, settings), e.g. `"Postgres"`.
pub fn backend_name() -> &'static str {
    match backend() {
        Backend::Sqlite => "Sqlite",
        Backend::Postgres => "Postgres",
    }
}

pub fn is_postgres() -> bool {
    backend() == Backend::Postgres
}

/// `Config::for_data_dir(data_dir)`, on a new empty PostgreSQL database when
/// `WEBVM_TEST_POSTGRES_URL` is set (else on the SQLite file in `data_dir`).
pub async fn test_config(data_dir: PathBuf) -> Config {
    let mut config = Config::for_data_dir(data_dir);
    if let Some(admin_url) = postgres_admin_url() {
        config.database_url = Some(create_database(&admin_url).await);
    }
    config
}

/// Creates a uniquely named database through the admin URL and returns its URL.
/// The databases are left behind: the throwaway cluster goes with them.
async fn create_database(admin_url: &str) -> String {
    let name = format!("webvm_test_{}", uuid::Uuid::new_v4().simple());
    let shown = redact_database_url(admin_url);
    let mut connection = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|error| panic!("{POSTGRES_URL_VAR} ({shown}) can't be reached: {error}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("CREATE DATABASE {name} on {shown}: {error}"));
    let _ = connection.close().await;
    url_with_database(admin_url, &name)
}

/// `url` with its database (the path) replaced by `database`; query parameters are kept.
pub fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}
