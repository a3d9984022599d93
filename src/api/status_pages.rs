//! Public status pages: the page's data (rendered on the server, for anyone with the link),
//! the owner's share links (made with an optional expiry, listed, revoked), and the VM tab's
//! status reports that the page is built from (`domain::status_page`).

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{ApplicationStatus, HealthStatus, StatusReport};

#[cfg(feature = "ssr")]
use super::context;

/// The largest `report_status` body: one report per application (about 250 bytes each).
pub const REPORT_BODY_LIMIT: usize = 512 * 1024;
/// The longest expiry a link may be given.
pub const MAX_LINK_DAYS: u32 = 365;

/// How the application is doing, in one word for the page's badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AvailabilityKind {
    Up,
    Degraded,
    Down,
    HostOffline,
}

impl AvailabilityKind {
    pub fn label(self) -> &'static str {
        match self {
            AvailabilityKind::Up => "Operational",
            AvailabilityKind::Degraded => "Degraded",
            AvailabilityKind::Down => "Down",
            AvailabilityKind::HostOffline => "Host offline",
        }
    }
}

/// Uptime over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UptimeView {
    pub label: String,
    pub percent: Option<f64>,
    pub observed_seconds: i64,
    pub window_seconds: i64,
}

/// One entry of the incident timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentView {
    pub at: DateTime<Utc>,
    pub title: String,
    pub detail: String,
    /// Whether it was a bad turn (down, unhealthy, offline) rather than a recovery or a deploy.
    pub bad: bool,
}

/// The public face of an application on its status page: never its configuration,
/// environment, secrets or logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicStatusData {
    pub name: String,
    pub description: Option<String>,
    pub availability: AvailabilityKind,
    pub summary: String,
    /// When the host browser last reported.
    pub last_seen: Option<DateTime<Utc>>,
    pub status: ApplicationStatus,
    pub health: HealthStatus,
    pub uptimes: Vec<UptimeView>,
    /// The last 24 hours' response times: (ms since the epoch, ms).
    pub response_points: Vec<(i64, f64)>,
    pub incidents: Vec<IncidentView>,
    pub last_deployed: DateTime<Utc>,
    /// When the page was made (the data is as of then).
    pub generated_at: DateTime<Utc>,
}

/// A share link just made: the only time its token is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedStatusLink {
    /// `/status/<token>`.
    pub path: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkState {
    Live,
    Expired,
    Revoked,
}

/// One share link as its owner sees it (never its token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusLinkView {
    /// Names the link to revoke it (the token's hash; it opens nothing).
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub state: LinkState,
}

/// The status page of the application a share token points at (404 when the token is
/// unknown, revoked or expired, or the application is gone).
#[server(prefix = "/api", endpoint = "public_status")]
pub async fn public_status(token: String) -> Result<PublicStatusData, AppError> {
    use chrono::Duration;

    use crate::domain::status_page::{
        availability, incidents, response_series, uptime, Availability, IncidentKind,
        UPTIME_WINDOWS,
    };
    let not_found = || AppError::not_found("This status page");
    if token.len() != 64 || !token.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        context::set_status(404);
        return Err(not_found());
    }
    let storage = context::storage()?;
    let now = Utc::now();
    let Some(shared) = storage.application_by_share_token(&token, now).await? else {
        context::set_status(404);
        return Err(not_found());
    };
    let application = &shared.application;
    let longest = UPTIME_WINDOWS
        .iter()
        .map(|(_, window)| *window)
        .max()
        .unwrap_or_else(|| Duration::days(30));
    let samples = storage
        .status_samples(shared.workspace, application.id, now - longest)
        .await?;
    let state = availability(samples.last(), shared.last_heartbeat, now);
    let kind = match &state {
        Availability::Up => AvailabilityKind::Up,
        Availability::Unhealthy => AvailabilityKind::Degraded,
        Availability::Down(_) => AvailabilityKind::Down,
        Availability::HostOffline { .. } => AvailabilityKind::HostOffline,
    };
    let latest = samples.last().map(|sample| &sample.report);
    let uptimes = UPTIME_WINDOWS
        .iter()
        .map(|(label, window)| {
            let figure = uptime(&samples, now, *window);
            UptimeView {
                label: (*label).to_owned(),
                percent: figure.percent,
                observed_seconds: figure.observed_seconds,
                window_seconds: figure.window_seconds,
            }
        })
        .collect();
    let incidents = incidents(&samples)
        .into_iter()
        .map(|incident| {
            let (title, bad) = match incident.kind {
                IncidentKind::WentDown => ("Down", true),
                IncidentKind::Recovered => ("Recovered", false),
                IncidentKind::BecameUnhealthy => ("Unhealthy", true),
                IncidentKind::HealthyAgain => ("Healthy again", false),
                IncidentKind::Restarted => ("Restarted", true),
                IncidentKind::Deployed => ("Deployed", false),
                IncidentKind::HostOffline => ("Host offline", true),
            };
            IncidentView {
                at: incident.at,
                title: title.to_owned(),
                detail: incident.detail,
                bad,
            }
        })
        .collect();
    Ok(PublicStatusData {
        name: application.name.to_string(),
        description: application.description.clone(),
        availability: kind,
        summary: state.describe(),
        last_seen: shared.last_heartbeat,
        status: latest.map_or(application.status, |report| report.status),
        health: latest.map_or(application.metrics.health_status, |report| report.health),
        uptimes,
        response_points: response_series(&samples, now, Duration::hours(24)),
        incidents,
        last_deployed: latest.map_or(application.last_deployed, |report| report.last_deployed),
        generated_at: now,
    })
}

/// Makes a status link to one of the caller's applications, valid for `expires_in_days`
/// (1 to 365) or until revoked. The token is in the answer only.
#[server(prefix = "/api", endpoint = "create_status_link")]
pub async fn create_status_link(
    application_id: Uuid,
    expires_in_days: Option<u32>,
) -> Result<CreatedStatusLink, AppError> {
    if let Some(days) = expires_in_days {
        if days == 0 || days > MAX_LINK_DAYS {
            return Err(AppError::invalid(
                "The link was not made.",
                vec![format!(
                    "expiresInDays: {days} is outside 1 to {MAX_LINK_DAYS} days"
                )],
            ));
        }
    }
    let storage = context::storage()?;
    let workspace = owned_application(&storage, application_id).await?;
    let expires_at =
        expires_in_days.map(|days| Utc::now() + chrono::Duration::days(i64::from(days)));
    let token = storage
        .create_share_link(workspace, application_id, expires_at)
        .await?;
    Ok(CreatedStatusLink {
        path: format!("/status/{token}"),
        expires_at,
    })
}

/// The status links of one of the caller's applications, newest first.
#[server(prefix = "/api", endpoint = "list_status_links")]
pub async fn list_status_links(application_id: Uuid) -> Result<Vec<StatusLinkView>, AppError> {
    let storage = context::storage()?;
    let workspace = owned_application(&storage, application_id).await?;
    let now = Utc::now();
    Ok(storage
        .list_share_links(workspace, application_id)
        .await?
        .into_iter()
        .map(|link| {
            let state = if link.revoked_at.is_some() {
                LinkState::Revoked
            } else if link.expires_at.is_some_and(|at| at <= now) {
                LinkState::Expired
            } else {
                LinkState::Live
            };
            StatusLinkView {
                id: link.id,
                created_at: link.created_at,
                expires_at: link.expires_at,
                revoked_at: link.revoked_at,
                state,
            }
        })
        .collect())
}

/// Revokes one of the caller's status links: its page answers 404 from now on.
#[server(prefix = "/api", endpoint = "revoke_status_link")]
pub async fn revoke_status_link(id: String) -> Result<(), AppError> {
    let not_found = || AppError::not_found("This status link");
    let storage = context::storage()?;
    let Some(workspace) = context::current_workspace(&storage).await? else {
        return Err(not_found());
    };
    if storage.revoke_share_link(workspace, &id).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// The VM tab's heartbeat: each application's status now. A browser without a workspace
/// has nothing mirrored to report on, and is answered with nothing stored.
#[server(prefix = "/api", endpoint = "report_status", input = server_fn::codec::Json)]
pub async fn report_status(reports: Vec<StatusReport>) -> Result<usize, AppError> {
    let storage = context::storage()?;
    let Some(workspace) = context::current_workspace(&storage).await? else {
        return Ok(0);
    };
    Ok(storage
        .record_status_reports(workspace, &reports, Utc::now())
        .await?)
}

/// The caller's workspace, when it has the application; else not found.
#[cfg(feature = "ssr")]
async fn owned_application(
    storage: &crate::server::storage::Storage,
    application_id: Uuid,
) -> Result<Uuid, AppError> {
    let not_found = || AppError::not_found("This application");
    let workspace = context::current_workspace(storage)
        .await?
        .ok_or_else(not_found)?;
    let owned = storage
        .list_applications(workspace)
        .await?
        .iter()
        .any(|application| application.id == application_id);
    if owned {
        Ok(workspace)
    } else {
        Err(not_found())
    }
}
