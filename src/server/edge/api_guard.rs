//! The guard in front of the server functions (`/api/*`): cross-site writes refused, bodies
//! bounded, writes rate-limited per client, and each error answered with its own status.
//!
//! `server_fn` answers every error with 500. The guard reads the `AppError` in such an answer
//! and gives it its status (404, 400, 503…), so a missing thing is not logged as a server
//! failure, and it replaces a server-side `Transport` error (arguments that could not be
//! read) with a generic message whose detail goes to the log under a reference.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use server_fn::error::FromServerFnError;

use super::origin::{check_write, WriteRequest};
use super::serve::client_address;
use super::{edge_response, SitePolicy};
use crate::error::AppError;

/// The largest body a server function takes unless its endpoint says otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// The largest error answer the guard reads back to give it its status.
const MAX_ERROR_BODY: usize = 256 * 1024;
/// The header `server_fn` marks its error answers with.
const SERVER_FN_ERROR_HEADER: &str = "serverfnerror";

/// What the server functions tell the edge about themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointTable {
    /// Paths of the functions that change state (rate-limited per client).
    pub writes: &'static [&'static str],
    /// Paths that take bodies over [`DEFAULT_BODY_LIMIT`], with their limit in bytes.
    pub body_limits: &'static [(&'static str, usize)],
}

impl EndpointTable {
    fn body_limit(&self, path: &str) -> usize {
        self.body_limits
            .iter()
            .find(|(endpoint, _)| *endpoint == path)
            .map_or(DEFAULT_BODY_LIMIT, |(_, limit)| *limit)
    }

    fn is_write(&self, path: &str) -> bool {
        self.writes.contains(&path)
    }
}

/// The guard's state: the site policy, the endpoint table and the per-client write limiter.
#[derive(Clone)]
pub struct ApiGuard {
    policy: SitePolicy,
    endpoints: EndpointTable,
    writes: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl ApiGuard {
    pub fn new(policy: SitePolicy, endpoints: EndpointTable, writes_per_minute: u32) -> Self {
        let quota =
            Quota::per_minute(NonZeroU32::new(writes_per_minute).unwrap_or(NonZeroU32::MIN));
        let writes = Arc::new(RateLimiter::keyed(quota));
        // Forget clients whose buckets are full again, so the table stays small.
        let weak = Arc::downgrade(&writes);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
                loop {
                    every.tick().await;
                    let Some(limiter) = weak.upgrade() else { break };
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
            });
        }
        Self {
            policy,
            endpoints,
            writes,
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware: runs for every request; acts on `/api/*` only.
pub async fn guard(State(guard): State<ApiGuard>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if !path.starts_with("/api/") {
        return next.run(request).await;
    }
    // The deploy-source routes make the server fetch for the caller: guarded like writes,
    // GET included.
    let server_fetch = crate::server::sources::is_source_route(&path);
    if !is_safe(request.method()) || server_fetch {
        let header = |name| {
            request
                .headers()
                .get(name)
                .and_then(|value: &HeaderValue| value.to_str().ok())
        };
        let verdict = check_write(
            guard.policy.public_origin.as_ref(),
            WriteRequest {
                fetch_site: header(header::HeaderName::from_static("sec-fetch-site")),
                origin: header(header::ORIGIN),
                host: header(header::HOST),
            },
        );
        if let Err(reason) = verdict {
            tracing::warn!(%path, reason, "cross-site request refused");
            return edge_response(AppError::Forbidden {
                reason: format!("Refused: {reason}."),
            });
        }
    }
    if guard.endpoints.is_write(&path) || server_fetch {
        let client = client_address(&request)
            .map(|address| address.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if let Err(not_until) = guard.writes.check_key(&client) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            tracing::warn!(%client, %path, "write rate limit reached");
            return edge_response(AppError::RateLimited {
                retry_after_seconds: wait.as_secs().max(1),
            });
        }
    }
    // Bounded before the function reads it: a declared length over the limit is refused at
    // once, a streamed body as soon as it passes the limit.
    let limit = guard.endpoints.body_limit(&path);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return edge_response(AppError::TooLarge {
            limit_bytes: limit as u64,
        });
    }
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return edge_response(AppError::TooLarge {
                limit_bytes: limit as u64,
            })
        }
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    give_errors_their_status(&path, response).await
}

/// Reads a server function's error answer and sends it on with the error's own status.
async fn give_errors_their_status(path: &str, response: Response) -> Response {
    if !response.headers().contains_key(SERVER_FN_ERROR_HEADER) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY).await else {
        return edge_response(AppError::internal(format!(
            "{path}: an error answer was unreadable"
        )));
    };
    let error = match serde_json::from_slice::<AppError>(&bytes) {
        Ok(AppError::Transport { detail }) => {
            let reference = crate::error::new_reference();
            tracing::warn!(%reference, %path, %detail, "a server function's request could not be read");
            AppError::invalid(
                format!("The request could not be read (reference {reference})."),
                Vec::new(),
            )
        }
        Ok(error) => error,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    parts.status = StatusCode::from_u16(error.status_code()).unwrap_or(parts.status);
    parts.headers.remove(header::CONTENT_LENGTH);
    if matches!(error, AppError::Unavailable) {
        parts
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Response::from_parts(
        parts,
        Body::from(<AppError as FromServerFnError>::ser(&error)),
    )
}
