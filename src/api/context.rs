//! What server functions take from the request: the storage handle, the caller's workspace, the status.

use axum::http::{header, HeaderMap, StatusCode};
use leptos::prelude::*;
use uuid::Uuid;

use crate::error::AppError;
use crate::server::storage::{Storage, WorkspaceCredentials};

/// Name of the cookie that carries `<workspace id>.<token>`.
pub const WORKSPACE_COOKIE: &str = "webvm_workspace";

/// The storage handle the router put into the reactive context.
pub fn storage() -> Result<Storage, AppError> {
    use_context::<Storage>().ok_or_else(|| AppError::internal("storage missing from context"))
}

/// Parses `<uuid>.<token>` from a Cookie header value, if present and well-formed.
pub fn credentials_from_cookies(headers: &HeaderMap) -> Option<WorkspaceCredentials> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == WORKSPACE_COOKIE)
        .and_then(|(_, value)| {
            let (id, token) = value.split_once('.')?;
            let id = Uuid::parse_str(id).ok()?;
            let token_ok = (32..=128).contains(&token.len())
                && token.bytes().all(|byte| byte.is_ascii_alphanumeric());
            token_ok.then(|| WorkspaceCredentials {
                id,
                token: token.to_string(),
            })
        })
}

/// The caller's workspace, when its cookie holds valid credentials.
pub async fn current_workspace(storage: &Storage) -> Result<Option<Uuid>, AppError> {
    let headers: HeaderMap = leptos_axum::extract().await.map_err(AppError::internal)?;
    match credentials_from_cookies(&headers) {
        Some(credentials) => Ok(storage.authenticate(&credentials).await?),
        None => Ok(None),
    }
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

    #[test]
    fn workspace_cookie_is_parsed_strictly() {
        let id = "0d9b3c1e-8f7a-4c2b-9a55-2f1e7c6d5b4a";
        let token = "a".repeat(64);
        let cases = [
            (format!("webvm_workspace={id}.{token}"), true),
            (format!("theme=dark; webvm_workspace={id}.{token}"), true),
            (format!("webvm_workspace={id}"), false),
            (format!("webvm_workspace=not-a-uuid.{token}"), false),
            (format!("webvm_workspace={id}.short"), false),
            (format!("webvm_workspace={id}.{}", "!".repeat(40)), false),
            (format!("other={id}.{token}"), false),
        ];
        for (cookie, valid) in cases {
            assert_eq!(
                credentials_from_cookies(&headers(&cookie)).is_some(),
                valid,
                "{cookie}"
            );
        }
    }
}
