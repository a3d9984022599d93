//! The `url` and `github` deploy sources: the server fetches an archive for the browser (a
//! page can't fetch most URLs cross-origin) and streams it through, with its length when
//! known, so the page shows byte progress. Not server functions: they stream bytes.
//!
//! - `GET /api/sources/url?url=<encoded>`: any http(s) ZIP or tarball.
//! - `POST /api/sources/github` `{repository, branch?, commit?}`, the token (optional) in
//!   `X-GitHub-Token`: the ref is resolved to a commit SHA (answered in `X-Commit-Sha`) and
//!   that commit's zipball is streamed.
//!
//! Every hop (redirects included, at most 5) passes `domain::fetch_policy`, and so does every
//! address a name resolves to; the connection goes to the checked addresses, so a name that
//! resolves differently a moment later (DNS rebinding) can't reach a refused address.
//! Errors before the body starts are `AppError` JSON bodies; a body cut short (over the size
//! cap, past the timeout, the origin failing) ends the response with an error, which the
//! browser sees as a failed download. The `/api` guard of the edge refuses cross-site
//! requests to both routes and counts them against the per-client write quota.

mod fetch;
mod github;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use url::Url;

use crate::domain::fetch_policy::{FetchPolicy, FetchPolicyError, GitHubRefError};
use crate::error::AppError;
use crate::server::config::FetchConfig;

/// The route that fetches a URL.
pub const URL_ROUTE: &str = "/api/sources/url";
/// The route that fetches a GitHub commit's archive.
pub const GITHUB_ROUTE: &str = "/api/sources/github";
/// The request header the GitHub token travels in (never the URL or body).
pub const GITHUB_TOKEN_HEADER: &str = "x-github-token";
/// The response header with the commit SHA a GitHub ref resolved to.
pub const COMMIT_SHA_HEADER: &str = "x-commit-sha";
/// The response header with the archive's file name (from the origin, sanitised).
pub const FILENAME_HEADER: &str = "x-source-filename";
/// The response header with the size cap, so the page can explain a cut download.
pub const LIMIT_HEADER: &str = "x-fetch-limit-bytes";

/// Whether `path` is one of the routes where the server fetches for a user (the edge guards
/// them like writes).
pub fn is_source_route(path: &str) -> bool {
    path == URL_ROUTE || path == GITHUB_ROUTE
}

/// Connecting to one address may take this long (the total timeout bounds it too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the routes need: the policy and limits from the configuration.
#[derive(Debug, Clone)]
pub struct Sources {
    policy: FetchPolicy,
    max_bytes: u64,
    timeout: Duration,
    github_api: Url,
}

impl Sources {
    pub fn from_config(config: &FetchConfig) -> Self {
        Self {
            policy: FetchPolicy::new(config.allow_hosts.clone()),
            max_bytes: config.max_bytes,
            timeout: Duration::from_secs(config.timeout_secs.max(1)),
            github_api: config.github_api_url.clone(),
        }
    }
}

/// The two routes, with their state.
pub fn routes<S: Clone + Send + Sync + 'static>(sources: Sources) -> Router<S> {
    Router::new()
        .route(URL_ROUTE, get(from_url))
        .route(GITHUB_ROUTE, post(github::from_github))
        .with_state(Arc::new(sources))
}

/// Why a fetch failed, as the user reads it.
#[derive(Debug, thiserror::Error)]
enum SourceError {
    #[error("{0}")]
    Policy(#[from] FetchPolicyError),
    #[error("{0}")]
    GitHubRef(#[from] GitHubRefError),
    #[error("The url parameter is missing: give the address of a ZIP or .tar.gz archive.")]
    MissingUrl,
    #[error("The request could not be read: {0}")]
    BadRequest(String),
    #[error("{url} is {size} bytes, over the limit of {limit} bytes the server fetches (the operator sets it with --fetch-max-bytes)")]
    TooLarge { url: String, size: u64, limit: u64 },
    #[error("{url} is over the limit of {limit} bytes the server fetches (the operator sets it with --fetch-max-bytes)")]
    CutOverLimit { url: String, limit: u64 },
    #[error(
        "{url} took longer than {seconds} s (the operator sets the limit with --fetch-timeout)"
    )]
    TimedOut { url: String, seconds: u64 },
    #[error("{url} could not be reached: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: String },
    #[error("{url} answered a redirect ({status}) without a Location to follow")]
    RedirectWithoutLocation { url: String, status: u16 },
    #[error("the download from {url} failed: {detail}")]
    Body { url: String, detail: String },
    #[error("GitHub refused the token for {repository} (401): it is wrong, expired or revoked")]
    GitHubUnauthorized { repository: String },
    #[error(
        "GitHub: repository {repository} not found or the token has no access to it ({status})"
    )]
    GitHubNoAccess { repository: String, status: u16 },
    #[error("{reference} of {repository}")]
    GitHubRefNotFound {
        repository: String,
        reference: String,
    },
    #[error("the server could not prepare the request: {0}")]
    Client(String),
}

impl SourceError {
    fn to_app_error(&self) -> AppError {
        let message = format!("{self}.");
        match self {
            Self::Policy(
                FetchPolicyError::RefusedAddress { .. } | FetchPolicyError::RefusedResolved { .. },
            )
            | Self::GitHubUnauthorized { .. }
            | Self::GitHubNoAccess { .. } => AppError::Forbidden { reason: message },
            Self::GitHubRefNotFound { .. } => AppError::not_found(format!("GitHub: {self}")),
            Self::Client(detail) => AppError::internal(detail),
            _ => AppError::invalid(message, Vec::new()),
        }
    }

    /// The answer: the error's status and `AppError` JSON body.
    fn into_response(self) -> Response {
        tracing::info!(error = %self, "deploy source refused or failed");
        crate::server::edge::edge_response(self.to_app_error())
    }
}

/// `?url=`.
#[derive(Debug, Deserialize)]
struct UrlQuery {
    url: Option<String>,
}

/// `GET /api/sources/url?url=…`: the archive at that URL, streamed.
async fn from_url(
    State(sources): State<Arc<Sources>>,
    query: Result<Query<UrlQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let outcome = async {
        let Query(query) = query.map_err(|error| SourceError::BadRequest(error.body_text()))?;
        let text = query
            .url
            .filter(|url| !url.trim().is_empty())
            .ok_or(SourceError::MissingUrl)?;
        let target = sources.policy.check(&text)?;
        let fetch = fetch::Fetch::new(&sources, &sources.policy, None);
        let opened = fetch.open(target, "*/*").await?;
        if !opened.response.status().is_success() {
            return Err(SourceError::Status {
                url: opened.target.url().to_string(),
                status: opened.response.status().to_string(),
            });
        }
        fetch.stream(opened, Vec::new())
    }
    .await;
    outcome.unwrap_or_else(SourceError::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_their_status_and_name_the_rule() {
        let policy = FetchPolicy::default();
        let refused = policy
            .check("http://127.0.0.1/a.zip")
            .expect_err("loopback");
        let scheme = policy.check("ftp://example.com/a.zip").expect_err("ftp");
        let cases = [
            (
                SourceError::Policy(refused),
                403,
                "127.0.0.1 is a loopback address; the operator can allow it with --fetch-allow-host.",
            ),
            (
                SourceError::Policy(scheme),
                400,
                "ftp://example.com/a.zip: only http and https URLs can be fetched, not ftp:.",
            ),
            (
                SourceError::TooLarge {
                    url: "https://x/y.zip".into(),
                    size: 300,
                    limit: 200,
                },
                400,
                "https://x/y.zip is 300 bytes, over the limit of 200 bytes",
            ),
            (
                SourceError::GitHubNoAccess {
                    repository: "demo/site".into(),
                    status: 404,
                },
                403,
                "repository demo/site not found or the token has no access to it (404).",
            ),
            (
                SourceError::GitHubRefNotFound {
                    repository: "demo/site".into(),
                    reference: "branch nope".into(),
                },
                404,
                "GitHub: branch nope of demo/site was not found.",
            ),
        ];
        for (error, status, message) in cases {
            let app = error.to_app_error();
            assert_eq!(app.status_code(), status, "{error:?}");
            assert!(app.to_string().contains(message), "{app}");
        }
    }
}
