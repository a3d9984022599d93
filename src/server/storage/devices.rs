//! Cross-device access to a workspace: one-time links, and the tokens of the browsers that
//! redeemed one. Every token is stored only as its SHA-256.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::{sha256_hex, Storage, StorageError, WorkspaceCredentials};

/// A new random token: 256 bits as 64 hex characters.
fn new_token() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

impl Storage {
    /// Makes a link that opens `workspace` in one other browser until `expires_at`, and
    /// returns its token, which only the caller ever sees.
    pub async fn create_device_link(
        &self,
        workspace: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<String, StorageError> {
        let token = new_token();
        sqlx::query(
            "INSERT INTO device_links (token_sha256, workspace_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256_hex(&token))
        .bind(workspace.to_string())
        .bind(Utc::now().to_rfc3339())
        .bind(expires_at.to_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// Redeems a device link: once, before it expires. The redeeming browser gets its own
    /// credentials for the workspace; `None` for an unknown, used or expired link. Two
    /// browsers redeeming one link at once: exactly one wins (the claim is one conditional
    /// update).
    pub async fn redeem_device_link(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<WorkspaceCredentials>, StorageError> {
        let hash = sha256_hex(token);
        let row = sqlx::query(
            "SELECT workspace_id, expires_at, redeemed_at FROM device_links WHERE token_sha256 = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let workspace: String = row.try_get("workspace_id")?;
        let expires_at: String = row.try_get("expires_at")?;
        let redeemed_at: Option<String> = row.try_get("redeemed_at")?;
        let expired = DateTime::parse_from_rfc3339(&expires_at)
            .map(|at| at.with_timezone(&Utc) <= now)
            .unwrap_or(true);
        if redeemed_at.is_some() || expired {
            return Ok(None);
        }
        let workspace =
            Uuid::parse_str(&workspace).map_err(|error| StorageError::CorruptDocument {
                kind: "workspace id",
                reason: error.to_string(),
            })?;
        let mut transaction = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE device_links SET redeemed_at = $1 WHERE token_sha256 = $2 AND redeemed_at IS NULL",
        )
        .bind(now.to_rfc3339())
        .bind(&hash)
        .execute(&mut *transaction)
        .await?;
        if claimed.rows_affected() != 1 {
            transaction.rollback().await?;
            return Ok(None);
        }
        let credentials = WorkspaceCredentials {
            id: workspace,
            token: new_token(),
        };
        sqlx::query(
            "INSERT INTO workspace_devices (token_sha256, workspace_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(sha256_hex(&credentials.token))
        .bind(workspace.to_string())
        .bind(now.to_rfc3339())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Some(credentials))
    }

    /// Whether `token` is the token of a browser that redeemed a link to `workspace`.
    pub(super) async fn is_device_token(
        &self,
        workspace: Uuid,
        token: &str,
    ) -> Result<bool, StorageError> {
        let row = sqlx::query(
            "SELECT 1 AS found FROM workspace_devices WHERE token_sha256 = $1 AND workspace_id = $2",
        )
        .bind(sha256_hex(token))
        .bind(workspace.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}
