//! What server functions take from the request: the storage handle, the caller's workspace, the status.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use leptos::prelude::*;
use uuid::Uuid;

use crate::error::AppError;
use crate::server::edge::SitePolicy;
use crate::server::storage::{Storage, WorkspaceCredentials};

/// The storage handle the router put into the reactive context.
pub fn storage() -> Result<Storage, AppError> {
    use_context::<Storage>().ok_or_else(|| AppError::internal("storage missing from context"))
}

/// The site policy the router put into the reactive context (the defaults if absent).
pub fn site_policy() -> SitePolicy {
    use_context::<SitePolicy>().unwrap_or_default()
}

/// Why a request's cookies can't be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the request carries the workspace cookie more than once")]
pub struct ConflictingCookies;

/// Parses `<uuid>.<token>` from the cookie named `name`: `None` when absent or malformed, an
/// error when the name occurs more than once (cookie tossing: another page planted a second
/// one, and taking the first would let it choose the workspace).
pub fn credentials_from_cookies(
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<WorkspaceCredentials>, ConflictingCookies> {
    let mut values = crate::server::edge::headers::cookie_values(headers, name);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ConflictingCookies);
    }
    Ok(parse_credentials(value))
}

fn parse_credentials(value: &str) -> Option<WorkspaceCredentials> {
    let (id, token) = value.split_once('.')?;
    let id = Uuid::parse_str(id).ok()?;
    let token_ok =
        (32..=128).contains(&token.len()) && token.bytes().all(|byte| byte.is_ascii_alphanumeric());
    token_ok.then(|| WorkspaceCredentials {
        id,
        token: token.to_string(),
    })
}

/// The caller's workspace, when its cookie holds valid credentials.
pub async fn current_workspace(storage: &Storage) -> Result<Option<Uuid>, AppError> {
    let headers: HeaderMap = leptos_axum::extract().await.map_err(AppError::internal)?;
    match credentials_from_cookies(&headers, site_policy().workspace_cookie_name()) {
        Ok(Some(credentials)) => Ok(storage.authenticate(&credentials).await?),
        Ok(None) => Ok(None),
        Err(ConflictingCookies) => Err(AppError::invalid(
            "This browser sent two workspace cookies, so the request was refused.",
            vec!["Clear this site's cookies, then reload the page.".to_string()],
        )),
    }
}

/// Gives the browser the cookie of a workspace just created.
pub fn set_workspace_cookie(credentials: &WorkspaceCredentials) -> Result<(), AppError> {
    let value = format!("{}.{}", credentials.id, credentials.token);
    let cookie = HeaderValue::from_str(&site_policy().workspace_cookie(&value))
        .map_err(AppError::internal)?;
    let options = use_context::<leptos_axum::ResponseOptions>()
        .ok_or_else(|| AppError::internal("response options missing from context"))?;
    options.append_header(header::SET_COOKIE, cookie);
    Ok(())
}

/// Sets the HTTP status of the page or server-function response being rendered.
pub fn set_status(code: u16) {
    if let (Some(options), Ok(status)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        StatusCode::from_u16(code),
    ) {
        options.set_status(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, cookie.parse().expect("valid header"));
        headers
    }

    const NAME: &str = "webvm_workspace";

    #[test]
    fn workspace_cookie_is_parsed_strictly() {
        let id = "0d9b3c1e-8f7a-4c2b-9a55-2f1e7c6d5b4a";
        let token = "a".repeat(64);
        let cases = [
            (format!("webvm_workspace={id}.{token}"), Ok(true)),
            (
                format!("theme=dark; webvm_workspace={id}.{token}"),
                Ok(true),
            ),
            (format!("webvm_workspace={id}"), Ok(false)),
            (format!("webvm_workspace=not-a-uuid.{token}"), Ok(false)),
            (format!("webvm_workspace={id}.short"), Ok(false)),
            (
                format!("webvm_workspace={id}.{}", "!".repeat(40)),
                Ok(false),
            ),
            (format!("other={id}.{token}"), Ok(false)),
            // Over TLS only the __Host- cookie counts; a plain one can't shadow it.
            (format!("__Host-webvm_workspace={id}.{token}"), Ok(false)),
            // Cookie tossing: a second cookie of that name refuses the request.
            (
                format!("webvm_workspace={id}.{token}; webvm_workspace={id}.{token}"),
                Err(ConflictingCookies),
            ),
            (
                format!("webvm_workspace=x; a=b; webvm_workspace={id}.{token}"),
                Err(ConflictingCookies),
            ),
        ];
        for (cookie, expected) in cases {
            assert_eq!(
                credentials_from_cookies(&headers(&cookie), NAME).map(|found| found.is_some()),
                expected,
                "{cookie}"
            );
        }
    }

    #[test]
    fn cookies_in_several_headers_count_together() {
        let id = "0d9b3c1e-8f7a-4c2b-9a55-2f1e7c6d5b4a";
        let token = "b".repeat(64);
        let mut headers = HeaderMap::new();
        for _ in 0..2 {
            headers.append(
                header::COOKIE,
                format!("{NAME}={id}.{token}")
                    .parse()
                    .expect("valid header"),
            );
        }
        assert_eq!(
            credentials_from_cookies(&headers, NAME),
            Err(ConflictingCookies)
        );
    }

    proptest::proptest! {
        /// Any Cookie header parses without a panic, and credentials come out only when
        /// exactly one well-formed workspace cookie is in it.
        #[test]
        fn any_cookie_header_is_handled(cookie in "[ -~]{0,300}") {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                let mut headers = HeaderMap::new();
                headers.insert(header::COOKIE, value);
                let occurrences = cookie
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .filter(|(name, _)| *name == NAME)
                    .count();
                match credentials_from_cookies(&headers, NAME) {
                    Ok(Some(credentials)) => {
                        proptest::prop_assert_eq!(occurrences, 1);
                        proptest::prop_assert!(credentials.token.len() >= 32);
                    }
                    Ok(None) => proptest::prop_assert!(occurrences <= 1),
                    Err(ConflictingCookies) => proptest::prop_assert!(occurrences > 1),
                }
            }
        }
    }
}
