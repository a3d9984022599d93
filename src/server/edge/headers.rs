//! Security and caching headers: the page CSP with Leptos' nonce, nosniff, referrer and frame
//! policy, HSTS on TLS, `private, no-store` for pages that embed workspace data, and COOP/COEP
//! only for a browser that chose the CheerpX engine (which needs cross-origin isolation).

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::SitePolicy;

use crate::model::{VmEngine, ENGINE_COOKIE};

/// The Content-Security-Policy of a rendered page. Scripts must be the server's own files or
/// carry this response's nonce (Leptos puts it on its hydration and resource scripts); wasm
/// may be compiled (v86 compiles guest code to wasm at run time); `style-src` allows inline
/// style attributes, which the server-rendered progress bars use.
pub fn page_csp(nonce: Option<&str>) -> String {
    let scripts = match nonce {
        Some(nonce) => format!("script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'"),
        None => "script-src 'self' 'wasm-unsafe-eval'".to_string(),
    };
    [
        "default-src 'self'",
        &scripts,
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
    .join("; ")
}

/// Puts the page CSP, with this render's nonce, on the page being rendered (called by the shell).
pub fn set_page_csp() {
    let nonce = leptos::nonce::use_nonce().map(|nonce| nonce.to_string());
    if let (Some(options), Ok(value)) = (
        leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
        HeaderValue::from_str(&page_csp(nonce.as_deref())),
    ) {
        options.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The values of every cookie named `name` in a request's `Cookie` headers, in order.
pub fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(cookie, _)| *cookie == name)
        .map(|(_, value)| value)
}

/// Whether the request's cookies say this browser runs the CheerpX engine.
fn wants_cross_origin_isolation(headers: &HeaderMap) -> bool {
    cookie_values(headers, ENGINE_COOKIE).any(|value| value.parse() == Ok(VmEngine::Cheerpx))
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"))
}

/// Adds the headers every response gets, and those of pages and `/api` answers.
pub async fn security_headers(
    State(policy): State<SitePolicy>,
    request: Request,
    next: Next,
) -> Response {
    let isolate = wants_cross_origin_isolation(request.headers());
    let is_api = request.uri().path().starts_with("/api/");
    let is_status_page = request.uri().path().starts_with("/status/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if is_status_page {
        // A public page reached by a secret link: the link never leaves in a Referer, search
        // engines don't index it, and any cache may keep it but must ask again each time (a
        // revoked link answers 404 at once). It holds no workspace data, so no Vary: Cookie.
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            HeaderName::from_static("x-robots-tag"),
            HeaderValue::from_static("noindex, nofollow"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, no-cache"),
        );
    }
    let set_default = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set_default(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Status pages carry their share token in the path: never send it to another site.
    set_default(headers, header::REFERRER_POLICY, "same-origin");
    set_default(headers, header::X_FRAME_OPTIONS, "SAMEORIGIN");
    if policy.tls {
        set_default(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000",
        );
    }
    let html = is_html(headers);
    if (html || is_api) && !is_status_page {
        // Pages and answers embed the workspace's documents: never stored by any cache.
        set_default(headers, header::CACHE_CONTROL, "private, no-store");
        headers.append(header::VARY, HeaderValue::from_static("Cookie"));
    }
    if html {
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            if let Ok(value) = HeaderValue::from_str(&page_csp(None)) {
                headers.insert(header::CONTENT_SECURITY_POLICY, value);
            }
        }
        if isolate {
            set_default(
                headers,
                HeaderName::from_static("cross-origin-opener-policy"),
                "same-origin",
            );
            set_default(
                headers,
                HeaderName::from_static("cross-origin-embedder-policy"),
                "require-corp",
            );
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_policy_allows_only_our_scripts() {
        let with_nonce = page_csp(Some("abc"));
        assert!(with_nonce.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval'"));
        assert!(with_nonce.contains("frame-ancestors 'self'"));
        assert!(with_nonce.contains("object-src 'none'"));
        let scripts = with_nonce
            .split("; ")
            .find(|directive| directive.starts_with("script-src "))
            .expect("a script-src directive");
        for forbidden in ["'unsafe-eval'", "'unsafe-inline'", "*", "data:"] {
            assert!(
                !scripts.split(' ').any(|source| source == forbidden),
                "{forbidden} in {scripts}"
            );
        }
        assert!(!page_csp(None).contains("nonce"));
    }

    #[test]
    fn only_the_cheerpx_choice_asks_for_isolation() {
        let cases = [
            ("webvm_engine=cheerpx", true),
            ("a=b; webvm_engine=cheerpx", true),
            ("webvm_engine=v86", false),
            ("xwebvm_engine=cheerpx", false),
            ("", false),
        ];
        for (cookie, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(cookie) {
                headers.insert(header::COOKIE, value);
            }
            assert_eq!(wants_cross_origin_isolation(&headers), expected, "{cookie}");
        }
    }
}
