//! The HTTP edge: everything a request passes before a handler, and the socket loop under it.
//!
//! From the outside in: the request trace (URIs redacted), panic catching (a panicking
//! request is a 500 with a reference, and the next request is served), security headers,
//! then — for everything but `/healthz` — a per-request timeout and a concurrency limit that
//! sheds load with 503, and the `/api` guard (cross-site writes, body limits, write rate
//! limits, error statuses). `serve` adds the header-read timeout and connection limits.

mod api_guard;
pub mod headers;
pub mod origin;
pub mod redact;
pub mod serve;

use std::any::Any;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use server_fn::error::FromServerFnError;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;

pub use api_guard::{EndpointTable, DEFAULT_BODY_LIMIT};
use origin::{OriginError, PublicOrigin};

use crate::error::AppError;
use crate::server::config::EdgeConfig;

/// What the edge knows about how browsers reach the server.
#[derive(Debug, Clone, Default)]
pub struct SitePolicy {
    /// The configured public origin; without one, a write must come from its `Host`.
    pub public_origin: Option<PublicOrigin>,
    /// Browsers reach the server over TLS (a configured `https` origin).
    pub tls: bool,
}

impl SitePolicy {
    pub fn from_config(config: &EdgeConfig) -> Result<Self, OriginError> {
        let public_origin = config
            .public_origin
            .as_deref()
            .filter(|origin| !origin.trim().is_empty())
            .map(PublicOrigin::parse)
            .transpose()?;
        let tls = public_origin.as_ref().is_some_and(PublicOrigin::is_tls);
        Ok(Self { public_origin, tls })
    }

    /// The workspace cookie's name: `__Host-`-prefixed over TLS, so no sibling subdomain
    /// and no plain-HTTP page can set or shadow it.
    pub fn workspace_cookie_name(&self) -> &'static str {
        if self.tls {
            "__Host-webvm_workspace"
        } else {
            "webvm_workspace"
        }
    }

    /// The `Set-Cookie` value that gives a browser its workspace.
    pub fn workspace_cookie(&self, value: &str) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        format!(
            "{}={value}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax{secure}",
            self.workspace_cookie_name()
        )
    }
}

/// Wraps the application router (`app`) and the health check (`health`, exempt from the
/// timeout and load shedding so it answers under load) in the edge's layers.
pub fn harden(
    app: Router,
    health: Router,
    policy: SitePolicy,
    limits: &EdgeConfig,
    endpoints: EndpointTable,
) -> Router {
    let guard = api_guard::ApiGuard::new(policy.clone(), endpoints, limits.writes_per_minute);
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            guard,
            api_guard::guard,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                // Global: `Router::layer` makes one layer per route, and a plain concurrency
                // limit would then count each route apart.
                .layer(GlobalConcurrencyLimitLayer::new(
                    limits.max_concurrent_requests.max(1),
                ))
                .timeout(Duration::from_secs(limits.request_timeout_secs.max(1))),
        );
    health
        .merge(app)
        .layer(axum::middleware::from_fn_with_state(
            policy,
            headers::security_headers,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let uri = redact::loggable_uri(request.uri().path(), request.uri().query());
                    tracing::info_span!("request", method = %request.method(), uri = %uri)
                })
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
}

/// The answer when the server sheds load or a request runs out of time.
async fn overloaded(error: BoxError) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        tracing::warn!("too many requests at once: request refused with 503");
    } else if error.is::<tower::timeout::error::Elapsed>() {
        tracing::warn!("request timed out: answered with 503");
    } else {
        return edge_response(AppError::internal(error));
    }
    edge_response(AppError::Unavailable)
}

/// A panicking request: logged with a reference, answered with a 500 that names it.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    edge_response(AppError::internal(format!(
        "a request handler panicked: {message}"
    )))
}

/// An error as an answer of the edge, in the JSON shape server-function clients read, with
/// `Retry-After` where waiting helps.
pub(crate) fn edge_response(error: AppError) -> Response {
    let status =
        StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = match &error {
        AppError::RateLimited {
            retry_after_seconds,
        } => Some(*retry_after_seconds),
        AppError::Unavailable => Some(1),
        _ => None,
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        <AppError as FromServerFnError>::ser(&error),
    )
        .into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_follows_the_transport() {
        let plain = SitePolicy::from_config(&EdgeConfig::default()).expect("no origin is fine");
        assert_eq!(
            plain.workspace_cookie("v"),
            "webvm_workspace=v; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax"
        );
        let tls = SitePolicy::from_config(&EdgeConfig {
            public_origin: Some("https://apps.example.com".into()),
            ..EdgeConfig::default()
        })
        .expect("an https origin");
        assert!(tls.tls);
        assert_eq!(
            tls.workspace_cookie("v"),
            "__Host-webvm_workspace=v; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(SitePolicy::from_config(&EdgeConfig {
            public_origin: Some("apps.example.com".into()),
            ..EdgeConfig::default()
        })
        .is_err());
    }
}
