//! The storage of public status pages: share links (made, listed, revoked, expiring) and
//! the status samples the VM's tab reports, kept as `domain::status_page` decides.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::{decode, sha256_hex, Storage, StorageError};
use crate::domain::status_page::{should_store, StatusReport, StatusSample, RETENTION};
use crate::model::{Application, ApplicationStatus, HealthStatus};

/// One share link as its owner sees it: never the token (stored only as its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    /// The token's SHA-256 (hex): names the link to revoke it; it opens nothing.
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a live share token opens.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedApplication {
    pub workspace: Uuid,
    pub application: Application,
    pub last_heartbeat: Option<DateTime<Utc>>,
}

fn time(text: &str) -> Result<DateTime<Utc>, StorageError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| StorageError::CorruptDocument {
            kind: "timestamp",
            reason: error.to_string(),
        })
}

fn optional_time(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, StorageError> {
    row.try_get::<Option<String>, _>(column)?
        .map(|text| time(&text))
        .transpose()
}

impl Storage {
    /// Makes a share link to an application, valid until `expires_at` (or until revoked),
    /// and returns its token, which only the caller ever sees (it is stored hashed).
    pub async fn create_share_link(
        &self,
        workspace: Uuid,
        application: Uuid,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<String, StorageError> {
        let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        sqlx::query(
            "INSERT INTO share_links (token_sha256, workspace_id, application_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sha256_hex(&token))
        .bind(workspace.to_string())
        .bind(application.to_string())
        .bind(Utc::now().to_rfc3339())
        .bind(expires_at.map(|at| at.to_rfc3339()))
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// An application's share links, newest first.
    pub async fn list_share_links(
        &self,
        workspace: Uuid,
        application: Uuid,
    ) -> Result<Vec<ShareLink>, StorageError> {
        let rows = sqlx::query(
            "SELECT token_sha256, created_at, expires_at, revoked_at FROM share_links
             WHERE workspace_id = $1 AND application_id = $2 ORDER BY created_at DESC",
        )
        .bind(workspace.to_string())
        .bind(application.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ShareLink {
                    id: row.try_get("token_sha256")?,
                    created_at: time(&row.try_get::<String, _>("created_at")?)?,
                    expires_at: optional_time(row, "expires_at")?,
                    revoked_at: optional_time(row, "revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes one of the workspace's links, by its id; false when it has no such live link.
    pub async fn revoke_share_link(&self, workspace: Uuid, id: &str) -> Result<bool, StorageError> {
        let revoked = sqlx::query(
            "UPDATE share_links SET revoked_at = $1
             WHERE workspace_id = $2 AND token_sha256 = $3 AND revoked_at IS NULL",
        )
        .bind(Utc::now().to_rfc3339())
        .bind(workspace.to_string())
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(revoked > 0)
    }

    /// What a share token opens at `now`: nothing when it is unknown, revoked or expired,
    /// or its application is gone.
    pub async fn application_by_share_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SharedApplication>, StorageError> {
        let row = sqlx::query(
            "SELECT s.workspace_id, s.expires_at, a.document, w.last_heartbeat FROM share_links s
             JOIN applications a ON a.workspace_id = s.workspace_id AND a.id = s.application_id
             JOIN workspaces w ON w.id = s.workspace_id
             WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL",
        )
        .bind(sha256_hex(token))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if optional_time(&row, "expires_at")?.is_some_and(|expires| expires <= now) {
            return Ok(None);
        }
        let workspace: String = row.try_get("workspace_id")?;
        let workspace =
            Uuid::parse_str(&workspace).map_err(|error| StorageError::CorruptDocument {
                kind: "workspace id",
                reason: error.to_string(),
            })?;
        let document: String = row.try_get("document")?;
        Ok(Some(SharedApplication {
            workspace,
            application: decode("Application", &document)?,
            last_heartbeat: optional_time(&row, "last_heartbeat")?,
        }))
    }

    /// Records the VM tab's report at `now`: the workspace's heartbeat, and for each of its
    /// applications a sample when `should_store` says so. Reports of applications the
    /// workspace doesn't have are ignored. Returns how many samples were stored.
    pub async fn record_status_reports(
        &self,
        workspace: Uuid,
        reports: &[StatusReport],
        now: DateTime<Utc>,
    ) -> Result<usize, StorageError> {
        let workspace_text = workspace.to_string();
        let mut transaction = self.pool.begin().await?;
        sqlx::query("UPDATE workspaces SET last_heartbeat = $1 WHERE id = $2")
            .bind(now.to_rfc3339())
            .bind(&workspace_text)
            .execute(&mut *transaction)
            .await?;
        let mut stored = 0;
        for report in reports {
            let application = report.application_id.to_string();
            let known = sqlx::query(
                "SELECT 1 AS known FROM applications WHERE workspace_id = $1 AND id = $2",
            )
            .bind(&workspace_text)
            .bind(&application)
            .fetch_optional(&mut *transaction)
            .await?
            .is_some();
            if !known {
                continue;
            }
            let latest = sqlx::query(&format!(
                "{SAMPLE_COLUMNS} WHERE workspace_id = $1 AND application_id = $2
                 ORDER BY sampled_at DESC LIMIT 1"
            ))
            .bind(&workspace_text)
            .bind(&application)
            .fetch_optional(&mut *transaction)
            .await?
            .map(|row| sample(&row, report.application_id))
            .transpose()?;
            let next = StatusSample {
                at: now,
                report: report.clone(),
            };
            if !should_store(latest.as_ref(), &next) {
                continue;
            }
            sqlx::query(
                "INSERT INTO app_status_samples (workspace_id, application_id, sampled_at, status,
                   health, response_ms, request_count, restart_count, last_deployed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (workspace_id, application_id, sampled_at) DO NOTHING",
            )
            .bind(&workspace_text)
            .bind(&application)
            .bind(sample_time(now))
            .bind(report.status.as_str())
            .bind(report.health.as_str())
            .bind(report.response_ms)
            .bind(i64::try_from(report.request_count).unwrap_or(i64::MAX))
            .bind(i64::from(report.restart_count))
            .bind(report.last_deployed.to_rfc3339())
            .execute(&mut *transaction)
            .await?;
            stored += 1;
        }
        sqlx::query("DELETE FROM app_status_samples WHERE workspace_id = $1 AND sampled_at < $2")
            .bind(&workspace_text)
            .bind(sample_time(now - RETENTION))
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(stored)
    }

    /// An application's samples since `since`, oldest first, with the last one before it
    /// (it speaks for the window's start).
    pub async fn status_samples(
        &self,
        workspace: Uuid,
        application: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<StatusSample>, StorageError> {
        let (workspace, id) = (workspace.to_string(), application.to_string());
        let before = sqlx::query(&format!(
            "{SAMPLE_COLUMNS} WHERE workspace_id = $1 AND application_id = $2 AND sampled_at < $3
             ORDER BY sampled_at DESC LIMIT 1"
        ))
        .bind(&workspace)
        .bind(&id)
        .bind(sample_time(since))
        .fetch_optional(&self.pool)
        .await?;
        let rows = sqlx::query(&format!(
            "{SAMPLE_COLUMNS} WHERE workspace_id = $1 AND application_id = $2 AND sampled_at >= $3
             ORDER BY sampled_at"
        ))
        .bind(&workspace)
        .bind(&id)
        .bind(sample_time(since))
        .fetch_all(&self.pool)
        .await?;
        before
            .iter()
            .chain(rows.iter())
            .map(|row| sample(row, application))
            .collect()
    }
}

const SAMPLE_COLUMNS: &str = "SELECT sampled_at, status, health, response_ms, request_count,
    restart_count, last_deployed FROM app_status_samples";

/// Sample times are written with a fixed width (UTC, milliseconds), so text order is time
/// order in both databases.
fn sample_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn sample(row: &AnyRow, application: Uuid) -> Result<StatusSample, StorageError> {
    let corrupt = |what: &str| StorageError::CorruptDocument {
        kind: "status sample",
        reason: what.to_owned(),
    };
    let status: String = row.try_get("status")?;
    let health: String = row.try_get("health")?;
    Ok(StatusSample {
        at: time(&row.try_get::<String, _>("sampled_at")?)?,
        report: StatusReport {
            application_id: application,
            status: status
                .parse::<ApplicationStatus>()
                .map_err(|_| corrupt(&status))?,
            health: health
                .parse::<HealthStatus>()
                .map_err(|_| corrupt(&health))?,
            response_ms: row.try_get("response_ms")?,
            request_count: u64::try_from(row.try_get::<i64, _>("request_count")?).unwrap_or(0),
            restart_count: u32::try_from(row.try_get::<i64, _>("restart_count")?).unwrap_or(0),
            last_deployed: time(&row.try_get::<String, _>("last_deployed")?)?,
        },
    })
}
