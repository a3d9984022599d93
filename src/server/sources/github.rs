//! `POST /api/sources/github`: resolves a repository's branch or commit to its commit SHA
//! through the GitHub API, then streams that commit's zipball. The token (request header
//! `X-GitHub-Token`, optional) goes only to the API's origin; it is never logged, stored or
//! sent back.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::fetch::{Credential, Fetch, Opened};
use super::{SourceError, Sources, COMMIT_SHA_HEADER, GITHUB_TOKEN_HEADER};
use crate::domain::fetch_policy::{CommitSha, FetchPolicy, GitHubRef, GitHubRepository};

/// The most of GitHub's answer to the SHA request that is read (a SHA is 40 bytes).
const MAX_SHA_ANSWER: usize = 1024;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GitHubSourceRequest {
    repository: String,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    commit: Option<String>,
}

/// The handler: the zipball of the resolved commit, with `X-Commit-Sha`.
pub(super) async fn from_github(
    State(sources): State<Arc<Sources>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    fetch_zipball(&sources, &headers, &body)
        .await
        .unwrap_or_else(SourceError::into_response)
}

async fn fetch_zipball(
    sources: &Sources,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, SourceError> {
    let request: GitHubSourceRequest = serde_json::from_slice(body).map_err(|error| {
        SourceError::BadRequest(format!(
            "expected JSON {{\"repository\": \"owner/repo\", \"branch\"?: …, \"commit\"?: …}} ({error})"
        ))
    })?;
    let repository = GitHubRepository::parse(&request.repository)?;
    let reference = GitHubRef::parse(request.branch.as_deref(), request.commit.as_deref())?;
    let api = &sources.github_api;
    // The operator configured the API, so its host is allowed even on a private address.
    let policy = match FetchPolicy::host_of(api) {
        Some(host) => sources.policy.also_allowing(host),
        None => sources.policy.clone(),
    };
    let credential = token(headers)?.map(|authorization| Credential {
        origin: api.origin(),
        authorization,
    });
    let fetch = Fetch::new(sources, &policy, credential);

    let commit_target = policy.check_url(repository.commit_url(api, &reference))?;
    let opened = fetch
        .open(commit_target, "application/vnd.github.sha")
        .await?;
    check_status(&opened, &repository, &reference)?;
    let sha = CommitSha::parse(&fetch.read_text(opened, MAX_SHA_ANSWER).await?)?;
    tracing::info!(repository = %repository, %sha, "GitHub ref resolved");

    let zipball_target = policy.check_url(repository.zipball_url(api, &sha))?;
    let opened = fetch
        .open(zipball_target, "application/vnd.github+json")
        .await?;
    check_status(&opened, &repository, &GitHubRef::Commit(sha.to_string()))?;
    let sha_header = HeaderValue::from_str(sha.as_str())
        .map_err(|error| SourceError::Client(error.to_string()))?;
    fetch.stream(
        opened,
        vec![(HeaderName::from_static(COMMIT_SHA_HEADER), sha_header)],
    )
}

/// `Authorization: Bearer <token>` from `X-GitHub-Token`, marked sensitive; none when the
/// header is absent or blank.
fn token(headers: &HeaderMap) -> Result<Option<HeaderValue>, SourceError> {
    let Some(value) = headers.get(GITHUB_TOKEN_HEADER) else {
        return Ok(None);
    };
    let invalid = || {
        SourceError::BadRequest(
            "the X-GitHub-Token header must hold a token of visible ASCII characters".into(),
        )
    };
    let token = value.to_str().map_err(|_| invalid())?.trim();
    if token.is_empty() {
        return Ok(None);
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid());
    }
    let mut authorization =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| invalid())?;
    authorization.set_sensitive(true);
    Ok(Some(authorization))
}

/// GitHub's refusals as messages: a bad token, no access, no such ref.
fn check_status(
    opened: &Opened,
    repository: &GitHubRepository,
    reference: &GitHubRef,
) -> Result<(), SourceError> {
    let status = opened.response.status();
    match status {
        status if status.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED => Err(SourceError::GitHubUnauthorized {
            repository: repository.to_string(),
        }),
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Err(SourceError::GitHubNoAccess {
            repository: repository.to_string(),
            status: status.as_u16(),
        }),
        StatusCode::UNPROCESSABLE_ENTITY => Err(SourceError::GitHubRefNotFound {
            repository: repository.to_string(),
            reference: reference.to_string(),
        }),
        status => Err(SourceError::Status {
            url: opened.target.url().to_string(),
            status: status.to_string(),
        }),
    }
}
