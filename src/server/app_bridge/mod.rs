//! The server's half of the `/apps/<name>/` request bridge: the `/apps/` service worker, the
//! page that installs it, and what `/apps/…` answers when no worker did.
//!
//! Apps run in the VM of an open page of this site (the "VM tab"). A service worker scoped
//! to `/apps/` (`service_worker.js`, served at [`SERVICE_WORKER_PATH`]) forwards each request
//! under `/apps/<name>/` to that tab over a `MessageChannel` (`js/app_bridge.js` there; the
//! message protocol is written at the top of both files). A request reaches these routes
//! only when no worker controls the page: a first visit, a bookmark in a fresh browser, a
//! hard reload. Then:
//!
//! - `GET|HEAD /apps/{name}/…` is a small "Opening <name>…" page whose script
//!   (`bootstrap.js`, an external file at [`BOOTSTRAP_PATH`], so the page CSP's
//!   `script-src 'self'` takes it) registers the worker, waits until it controls the page
//!   and reloads; without service workers (no secure context) or without JavaScript the page
//!   explains why and links to the site's home page;
//! - other methods are 503 with a plain explanation (no worker to carry them);
//! - `/apps/{name}` is a 308 to `/apps/{name}/`, query kept;
//! - a name [`AppName::parse`] refuses is a 404 page.
//!
//! The name is read from the raw path (never percent-decoded), as the worker reads it, so
//! the two always agree on which addresses are apps'.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

use crate::model::{AppName, ParseError, APP_NAME_MAX_LEN, APP_NAME_MIN_LEN, RESERVED_APP_NAMES};

/// Where the service worker is served.
pub const SERVICE_WORKER_PATH: &str = "/apps-sw.js";
/// Where the bootstrap page's script is served.
pub const BOOTSTRAP_PATH: &str = "/apps-bootstrap.js";
/// The service worker's scope, and the prefix of every app's address.
pub const APPS_SCOPE: &str = "/apps/";

const SERVICE_WORKER_SOURCE: &str = include_str!("service_worker.js");
const BOOTSTRAP_SOURCE: &str = include_str!("bootstrap.js");
/// The name rules' literal in `service_worker.js`, replaced by the model's when served.
const NAME_RULES_MARKER: &str = "{ min: 3, max: 50, reserved: [] } /* NAME_RULES */";

/// The worker as served: its name rules are the model's.
static SERVICE_WORKER: LazyLock<String> = LazyLock::new(|| {
    let rules = serde_json::json!({
        "min": APP_NAME_MIN_LEN,
        "max": APP_NAME_MAX_LEN,
        "reserved": RESERVED_APP_NAMES,
    });
    SERVICE_WORKER_SOURCE.replacen(NAME_RULES_MARKER, &rules.to_string(), 1)
});

/// The bridge's routes (stateless; merged into the site's router).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(SERVICE_WORKER_PATH, get(service_worker))
        .route(BOOTSTRAP_PATH, get(bootstrap_script))
        .route("/apps/{name}", any(add_slash))
        .route("/apps/{name}/", get(opening_page).fallback(no_worker))
        .route(
            "/apps/{name}/{*rest}",
            get(opening_page).fallback(no_worker),
        )
}

async fn service_worker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::HeaderName::from_static("service-worker-allowed"),
                APPS_SCOPE,
            ),
        ],
        SERVICE_WORKER.as_str(),
    )
        .into_response()
}

async fn bootstrap_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        BOOTSTRAP_SOURCE,
    )
        .into_response()
}

/// The raw (still percent-encoded) name segment of an `/apps/<name>…` path.
fn raw_name(uri: &Uri) -> &str {
    let rest = uri.path().strip_prefix(APPS_SCOPE).unwrap_or_default();
    rest.split('/').next().unwrap_or_default()
}

/// The app a path names, or why it names none.
fn app_of(uri: &Uri) -> Result<AppName, ParseError> {
    AppName::parse(raw_name(uri))
}

/// `/apps/{name}` → 308 to `/apps/{name}/`, with the query.
async fn add_slash(uri: Uri) -> Response {
    if let Err(problem) = app_of(&uri) {
        return not_found(&problem);
    }
    let target = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    match HeaderValue::from_str(&target) {
        Ok(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// `GET|HEAD /apps/{name}/…` without a worker: the page that installs it.
async fn opening_page(uri: Uri) -> Response {
    match app_of(&uri) {
        Ok(app) => html(StatusCode::OK, opening_html(app.as_str())),
        Err(problem) => not_found(&problem),
    }
}

/// Any other method without a worker: nothing can carry it to the app.
async fn no_worker(uri: Uri) -> Response {
    let app = match app_of(&uri) {
        Ok(app) => app,
        Err(problem) => return not_found(&problem),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!(
            "{app} runs in a VM inside your browser, and its requests are carried there by a \
             service worker, which does not control this request. Open /apps/{app}/ in the \
             browser first (that installs it), with the app started in a webvm-appserver tab, \
             then try again.\n"
        ),
    )
        .into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn not_found(problem: &ParseError) -> Response {
    let reason = problem.to_string();
    let reason = html_escape::encode_text(&reason);
    html(
        StatusCode::NOT_FOUND,
        document(
            "No such app",
            &format!(
                "<h1>No such app</h1>\n<p>There is no app at this address: {reason}.</p>\n\
                 <p><a href=\"/\">Go to webvm-appserver</a></p>"
            ),
            "",
        ),
    )
}

/// The "Opening <name>…" page; `bootstrap.js` fills its `#bridge-…` elements.
fn opening_html(app: &str) -> String {
    let name = html_escape::encode_text(app);
    let body = format!(
        "<h1>Opening {name}…</h1>\n\
         <p id=\"bridge-status\" hidden></p>\n\
         <noscript><p>{name} runs in a virtual machine inside your browser, and a service \
         worker carries its requests there. Both need JavaScript, which is off for this page. \
         Turn it on and reload, or go to <a href=\"/\">webvm-appserver</a>.</p></noscript>\n\
         <div id=\"bridge-unsupported\" hidden><p>{name} runs in a virtual machine inside \
         your browser, and a service worker carries its requests there; browsers run service \
         workers only on https:// addresses and on localhost. Open the app from \
         <a href=\"/\">webvm-appserver's home page</a> instead, or reach this server over \
         https or as localhost.</p></div>\n\
         <div id=\"bridge-stuck\" hidden><p>Reload this page to try again, or open \
         <a href=\"/\">webvm-appserver</a>, start {name} there and come back.</p></div>"
    );
    document(
        &format!("Opening {app}…"),
        &body,
        &format!("<script src=\"{BOOTSTRAP_PATH}\" defer></script>\n"),
    )
}

/// An HTML document; `title` is text (escaped here), `body` and `head` are markup.
fn document(title: &str, body: &str, head: &str) -> String {
    let title = html_escape::encode_text(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n{head}\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;\
         padding:0 1rem;line-height:1.5;color:#1f2328}}h1{{font-size:1.4rem}}</style>\n\
         </head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_worker_has_the_models_name_rules() {
        assert!(SERVICE_WORKER_SOURCE.contains(NAME_RULES_MARKER));
        assert!(!SERVICE_WORKER.contains(NAME_RULES_MARKER));
        for expected in [
            format!("\"min\":{APP_NAME_MIN_LEN}"),
            format!("\"max\":{APP_NAME_MAX_LEN}"),
            "\"reserved\":[\"admin\",\"api\",".to_string(),
        ] {
            assert!(SERVICE_WORKER.contains(&expected), "{expected}");
        }
    }

    #[test]
    fn the_name_is_the_raw_first_segment() {
        let cases = [
            ("/apps/hello/", "hello"),
            ("/apps/hello", "hello"),
            ("/apps/hello/a/b?x=1", "hello"),
            ("/apps/he%6Clo/", "he%6Clo"),
            ("/apps/", ""),
        ];
        for (path, expected) in cases {
            let uri: Uri = path.parse().expect("a uri");
            assert_eq!(raw_name(&uri), expected, "{path}");
        }
    }

    #[test]
    fn which_paths_are_apps() {
        let cases = [
            ("/apps/hello/", true),
            ("/apps/my.app-2/", true),
            ("/apps/he%6Clo/", false),
            ("/apps/ab/", false),
            ("/apps/api/", false),
            ("/apps/-bad/", false),
        ];
        for (path, expected) in cases {
            let uri: Uri = path.parse().expect("a uri");
            assert_eq!(app_of(&uri).is_ok(), expected, "{path}");
        }
    }

    #[test]
    fn the_opening_page_escapes_the_name_and_loads_the_script() {
        let page = opening_html("a<b>");
        assert!(page.contains("<title>Opening a&lt;b&gt;…</title>"));
        assert!(!page.contains("<b>"));
        assert!(page.contains("<script src=\"/apps-bootstrap.js\" defer></script>"));
        assert!(page.contains("<noscript>"));
    }
}
