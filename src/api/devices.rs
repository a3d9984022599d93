//! Opening a workspace in another browser: a one-time link made by a browser that has the
//! workspace, redeemed (a POST, so a link preview or a crawler can't use it up) by the other,
//! which is given its own workspace token and then pulls the mirror into its storage.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::context;
use crate::error::AppError;

/// How long a device link stays valid.
pub const DEVICE_LINK_HOURS: i64 = 24;

/// A device link just made: its path holds the token, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedDeviceLink {
    pub path: String,
    pub expires_at: DateTime<Utc>,
}

/// Makes a link that opens the caller's workspace in one other browser, for
/// [`DEVICE_LINK_HOURS`] hours.
#[server(prefix = "/api", endpoint = "create_device_link")]
pub async fn create_device_link() -> Result<CreatedDeviceLink, AppError> {
    let storage = context::storage()?;
    let Some(workspace) = context::current_workspace(&storage).await? else {
        return Err(AppError::not_found(
            "This browser's workspace on the server",
        ));
    };
    let expires_at = Utc::now() + chrono::Duration::hours(DEVICE_LINK_HOURS);
    let token = storage.create_device_link(workspace, expires_at).await?;
    Ok(CreatedDeviceLink {
        path: format!("/join/{token}"),
        expires_at,
    })
}

/// Whether `token` has a link token's shape (64 lowercase hex characters).
pub fn is_link_token(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// Redeems a device link: this browser's workspace cookie becomes the linked workspace's
/// (with a token of its own). A link works once, until it expires.
#[server(prefix = "/api", endpoint = "redeem_device_link")]
pub async fn redeem_device_link(token: String) -> Result<(), AppError> {
    let gone = || AppError::not_found("This link (it is wrong, has been used or has expired)");
    if !is_link_token(&token) {
        return Err(gone());
    }
    let storage = context::storage()?;
    let credentials = storage
        .redeem_device_link(&token, Utc::now())
        .await?
        .ok_or_else(gone)?;
    context::set_workspace_cookie(&credentials)
}
