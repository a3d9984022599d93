//! One fetch for a deploy source: every hop checked by the policy (its name's addresses too,
//! and the connection pinned to them), redirects followed by hand, the body streamed through
//! under the size cap and the total deadline.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures::stream::{BoxStream, StreamExt};
use tokio::time::Instant;
use url::{Origin, Url};

use super::{SourceError, Sources, CONNECT_TIMEOUT, FILENAME_HEADER, LIMIT_HEADER};
use crate::domain::fetch_policy::{FetchPolicy, FetchTarget, RedirectChain};

/// Identifies the server to origins (GitHub's API requires a User-Agent).
const USER_AGENT: &str = concat!(
    "webvm-appserver/",
    env!("CARGO_PKG_VERSION"),
    " (deploy source fetch)"
);

/// A credential sent only to one origin (the GitHub API's), never to a redirect elsewhere.
pub(super) struct Credential {
    pub origin: Origin,
    /// `Authorization`, marked sensitive so no debug output shows it.
    pub authorization: HeaderValue,
}

/// A fetch under one policy, deadline and (optional) credential.
pub(super) struct Fetch<'a> {
    policy: &'a FetchPolicy,
    credential: Option<Credential>,
    deadline: Instant,
    timeout_secs: u64,
    max_bytes: u64,
}

/// An origin's answer (not a redirect) and the hop that gave it.
pub(super) struct Opened {
    pub target: FetchTarget,
    pub response: reqwest::Response,
}

impl<'a> Fetch<'a> {
    /// Starts the clock: the deadline covers every request of this fetch and the body.
    pub fn new(sources: &Sources, policy: &'a FetchPolicy, credential: Option<Credential>) -> Self {
        Self {
            policy,
            credential,
            deadline: Instant::now() + sources.timeout,
            timeout_secs: sources.timeout.as_secs(),
            max_bytes: sources.max_bytes,
        }
    }

    /// Requests `start` and follows redirects (each hop checked) to the first other answer.
    pub async fn open(&self, start: FetchTarget, accept: &str) -> Result<Opened, SourceError> {
        let mut chain = RedirectChain::new(&start);
        let mut current = start;
        loop {
            let response = self.request(&current, accept).await?;
            let status = response.status();
            if !matches!(
                status,
                StatusCode::MOVED_PERMANENTLY
                    | StatusCode::FOUND
                    | StatusCode::SEE_OTHER
                    | StatusCode::TEMPORARY_REDIRECT
                    | StatusCode::PERMANENT_REDIRECT
            ) {
                return Ok(Opened {
                    target: current,
                    response,
                });
            }
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| SourceError::RedirectWithoutLocation {
                    url: current.url().to_string(),
                    status: status.as_u16(),
                })?;
            current = chain.follow(self.policy, &current, &location)?;
            tracing::debug!(
                host = current.url().host_str().unwrap_or_default(),
                hops = chain.followed(),
                "deploy source redirected"
            );
        }
    }

    /// One GET of `target`, connected only to addresses the policy accepts.
    async fn request(
        &self,
        target: &FetchTarget,
        accept: &str,
    ) -> Result<reqwest::Response, SourceError> {
        let shown = target.url().to_string();
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(USER_AGENT);
        if let Some(domain) = target.domain() {
            let addresses = self.resolve(target, domain).await?;
            builder = builder.resolve_to_addrs(domain, &addresses);
        }
        let client = builder
            .build()
            .map_err(|error| SourceError::Client(error.to_string()))?;
        let mut request = client
            .get(target.url().clone())
            .header(header::ACCEPT, accept);
        if let Some(credential) = &self.credential {
            if target.url().origin() == credential.origin {
                request = request.header(header::AUTHORIZATION, credential.authorization.clone());
            }
        }
        match tokio::time::timeout_at(self.deadline, request.send()).await {
            Err(_) => Err(self.timed_out(&shown)),
            Ok(Err(error)) => Err(SourceError::Unreachable {
                url: shown,
                detail: describe(&error),
            }),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// The target name's addresses, each checked by the policy (one refused address refuses
    /// the name: a host that mixes public and private records is not fetched from).
    async fn resolve(
        &self,
        target: &FetchTarget,
        domain: &str,
    ) -> Result<Vec<SocketAddr>, SourceError> {
        let shown = target.url().to_string();
        let lookup = tokio::net::lookup_host((domain, target.port()));
        let addresses: Vec<SocketAddr> = match tokio::time::timeout_at(self.deadline, lookup).await
        {
            Err(_) => return Err(self.timed_out(&shown)),
            Ok(Err(error)) => {
                return Err(SourceError::Unreachable {
                    url: shown,
                    detail: format!("the name {domain} could not be resolved ({error})"),
                })
            }
            Ok(Ok(found)) => found.collect(),
        };
        if addresses.is_empty() {
            return Err(SourceError::Unreachable {
                url: shown,
                detail: format!("the name {domain} has no address"),
            });
        }
        for address in &addresses {
            self.policy.check_resolved(target, address.ip())?;
        }
        Ok(addresses)
    }

    /// A short text answer (e.g. a SHA), read up to `max` bytes before the deadline.
    pub async fn read_text(&self, opened: Opened, max: usize) -> Result<String, SourceError> {
        let url = opened.target.url().to_string();
        let read = async {
            let mut body = opened.response.bytes_stream();
            let mut text = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|error| SourceError::Body {
                    url: url.clone(),
                    detail: describe(&error),
                })?;
                let room = max.saturating_sub(text.len());
                text.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if text.len() >= max {
                    break;
                }
            }
            Ok(String::from_utf8_lossy(&text).into_owned())
        };
        tokio::time::timeout_at(self.deadline, read)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(&url)))
    }

    fn timed_out(&self, url: &str) -> SourceError {
        SourceError::TimedOut {
            url: url.to_string(),
            seconds: self.timeout_secs,
        }
    }

    /// The answer to the browser: the origin's body streamed through with its length when
    /// known (refused at once when that is over the cap), cut with an error when it passes
    /// the cap or the deadline. `extra` headers are added (e.g. the commit SHA).
    pub fn stream(
        &self,
        opened: Opened,
        extra: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Response, SourceError> {
        let Opened { target, response } = opened;
        let shown = target.url().to_string();
        let length = response.content_length();
        if let Some(size) = length.filter(|size| *size > self.max_bytes) {
            return Err(SourceError::TooLarge {
                url: shown,
                size,
                limit: self.max_bytes,
            });
        }
        let filename = file_name(&response, target.url());
        let state = BodyState {
            body: response.bytes_stream().boxed(),
            received: 0,
            limit: self.max_bytes,
            deadline: self.deadline,
            timeout_secs: self.timeout_secs,
            url: shown,
            finished: false,
        };
        let body = futures::stream::unfold(state, BodyState::next);
        let mut builder = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CACHE_CONTROL, "no-store")
            .header(LIMIT_HEADER, self.max_bytes)
            .header(FILENAME_HEADER, filename);
        if let Some(size) = length {
            builder = builder.header(header::CONTENT_LENGTH, size);
        }
        for (name, value) in extra {
            builder = builder.header(name, value);
        }
        builder
            .body(Body::from_stream(body))
            .map_err(|error| SourceError::Client(error.to_string()))
    }
}

/// The streamed body's progress.
struct BodyState {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    received: u64,
    limit: u64,
    deadline: Instant,
    timeout_secs: u64,
    url: String,
    finished: bool,
}

impl BodyState {
    /// The next chunk, or the error that ends the response.
    async fn next(mut self) -> Option<(Result<Bytes, SourceError>, Self)> {
        if self.finished {
            return None;
        }
        let item = match tokio::time::timeout_at(self.deadline, self.body.next()).await {
            Err(_) => Err(SourceError::TimedOut {
                url: self.url.clone(),
                seconds: self.timeout_secs,
            }),
            Ok(None) => return None,
            Ok(Some(Err(error))) => Err(SourceError::Body {
                url: self.url.clone(),
                detail: describe(&error),
            }),
            Ok(Some(Ok(chunk))) => {
                self.received = self.received.saturating_add(chunk.len() as u64);
                if self.received > self.limit {
                    Err(SourceError::CutOverLimit {
                        url: self.url.clone(),
                        limit: self.limit,
                    })
                } else {
                    Ok(chunk)
                }
            }
        };
        if let Err(error) = &item {
            tracing::warn!(%error, received = self.received, "deploy source download cut");
            self.finished = true;
        }
        Some((item, self))
    }
}

/// The archive's name: `Content-Disposition`'s `filename`, else the URL's last segment;
/// only letters, digits, `.`, `_` and `-` are kept.
fn file_name(response: &reqwest::Response, url: &Url) -> String {
    let from_disposition = response
        .headers()
        .get(header::CONTENT_DISPOSITION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value.split(';').find_map(|part| {
                let (key, name) = part.trim().split_once('=')?;
                key.eq_ignore_ascii_case("filename")
                    .then(|| name.trim().trim_matches('"').to_string())
            })
        });
    let from_url = || {
        url.path_segments()
            .and_then(|mut segments| segments.next_back().map(str::to_string))
    };
    let name: String = from_disposition
        .or_else(from_url)
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(100)
        .collect();
    if name.trim_matches('.').is_empty() {
        "download".to_string()
    } else {
        name
    }
}

/// A reqwest error as a short reason: its innermost cause (e.g. "Connection refused").
fn describe(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    if error.is_connect() {
        format!("the connection failed ({cause})")
    } else if error.is_timeout() {
        "the connection timed out".to_string()
    } else {
        cause.to_string()
    }
}
