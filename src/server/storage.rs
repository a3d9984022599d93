//! Server-side storage through sqlx: SQLite by default, PostgreSQL when `DATABASE_URL` says so.
//!
//! One pool (`AnyPool`) and one set of portable migrations serve both backends. Documents are
//! stored as JSON text in the seed's camelCase shape; timestamps as RFC 3339 text.

use std::path::Path;

use chrono::Utc;
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use uuid::Uuid;

mod devices;
mod status_pages;

pub use status_pages::{ShareLink, SharedApplication};

use super::config::Config;
use crate::model::catalog::{CatalogDetails, PackageCatalogEntry};
use crate::model::{Application, ApplicationServerSettings, RuntimePackage, WebVMStatus};

/// Why the server could not start its storage. Each message tells the operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("the data directory {path} is not writable: {source}. Choose another with --data-dir or WEBVM_DATA_DIR")]
    DataDirNotWritable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the database at {url} can't be reached: {source}. Check DATABASE_URL")]
    DatabaseUnreachable {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database schema could not be migrated: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported DATABASE_URL scheme in {0}: use sqlite:// or postgres://")]
    UnsupportedDatabase(String),
    #[error("{0}. Check --public-origin or WEBVM_PUBLIC_ORIGIN")]
    PublicOrigin(#[from] super::edge::origin::OriginError),
}

/// A failure while reading or writing stored data.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a stored {kind} document is unreadable: {reason}")]
    CorruptDocument { kind: &'static str, reason: String },
    #[error("a document could not be encoded: {0}")]
    Encode(String),
    #[error("the name “{name}” is already taken in this workspace")]
    NameTaken { name: String },
}

impl From<StorageError> for crate::error::AppError {
    fn from(error: StorageError) -> Self {
        use crate::error::AppError;
        match error {
            // Every connection is busy (or the database stopped answering): the caller may
            // retry; logged as a warning, since a flood of these is load, not a bug.
            StorageError::Database(sqlx::Error::PoolTimedOut) => {
                tracing::warn!("database pool exhausted: request refused with 503");
                AppError::Unavailable
            }
            StorageError::Database(sqlx::Error::Io(_))
            | StorageError::Database(sqlx::Error::PoolClosed) => {
                tracing::warn!(%error, "database unreachable: request refused with 503");
                AppError::Unavailable
            }
            StorageError::NameTaken { name } => AppError::invalid(
                format!("The name “{name}” is already taken."),
                vec![format!("name: another application is called “{name}”")],
            ),
            other => AppError::internal(other),
        }
    }
}

/// Which database engine the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How long a request waits for a database connection before it is refused with 503.
pub const POOL_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The server's database handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    pool: AnyPool,
    backend: Backend,
}

/// A workspace's credentials: its id and the secret token the browser keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceCredentials {
    pub id: Uuid,
    pub token: String,
}

/// Hex SHA-256 of a secret, as stored in the database (secrets themselves never are).
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Strips the passwords from a database URL so it can be shown in messages and logs: the
/// one in the user-info part and any `password`-like query parameter (`?password=…`,
/// `&sslpassword=…`).
pub fn redact_database_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &base[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}://{}:***@{}", &base[..scheme_end], user, &base[at + 1..])
        }
        _ => base.to_string(),
    };
    match query {
        None => base,
        Some(query) => {
            let parameters: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{base}?{}", parameters.join("&"))
        }
    }
}

fn ensure_writable_dir(dir: &Path) -> Result<(), StartupError> {
    let not_writable = |source| StartupError::DataDirNotWritable {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(not_writable)?;
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"ok").map_err(not_writable)?;
    std::fs::remove_file(&probe).map_err(not_writable)?;
    Ok(())
}

impl Storage {
    /// Opens (creating if needed) the configured database and applies the migrations.
    pub async fn open(config: &Config) -> Result<Self, StartupError> {
        sqlx::any::install_default_drivers();
        let url = config.effective_database_url();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StartupError::UnsupportedDatabase(redact_database_url(&url)));
        };
        let connect_url = match backend {
            Backend::Sqlite => {
                ensure_writable_dir(&config.data_dir)?;
                if url.contains('?') {
                    url.clone()
                } else {
                    format!("{url}?mode=rwc")
                }
            }
            Backend::Postgres => url.clone(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            })
            // Fail fast when every connection is busy: a request waits at most this long,
            // then gets a 503, instead of piling up behind a starved pool.
            .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *connection)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *connection)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(|source| StartupError::DatabaseUnreachable {
                url: redact_database_url(&url),
                source,
            })?;
        if backend == Backend::Sqlite {
            // WAL lets readers and the writer work at once; set once per database file.
            let _ = sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await;
        }
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool (tests hold its connections to prove that exhaustion fails fast).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A cheap query that proves the database answers, within [`POOL_ACQUIRE_TIMEOUT`].
    pub async fn ping(&self) -> Result<(), StorageError> {
        match tokio::time::timeout(
            POOL_ACQUIRE_TIMEOUT,
            sqlx::query("SELECT 1").fetch_one(&self.pool),
        )
        .await
        {
            Ok(result) => result.map(|_| ()).map_err(StorageError::from),
            Err(_) => Err(StorageError::Database(sqlx::Error::PoolTimedOut)),
        }
    }

    /// Creates a workspace and returns its credentials; only the token's hash is stored.
    pub async fn create_workspace(&self) -> Result<WorkspaceCredentials, StorageError> {
        let credentials = WorkspaceCredentials {
            id: Uuid::new_v4(),
            token: format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()),
        };
        let now = Utc::now().to_rfc3339();
        sqlx::query(
            "INSERT INTO workspaces (id, token_sha256, created_at, updated_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(credentials.id.to_string())
        .bind(sha256_hex(&credentials.token))
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(credentials)
    }

    /// The workspace these credentials open, if they are valid.
    pub async fn authenticate(
        &self,
        credentials: &WorkspaceCredentials,
    ) -> Result<Option<Uuid>, StorageError> {
        let row = sqlx::query("SELECT token_sha256 FROM workspaces WHERE id = $1")
            .bind(credentials.id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stored: String = row.try_get("token_sha256")?;
        // Constant time, so the comparison leaks nothing about the stored hash.
        let equal: bool = subtle::ConstantTimeEq::ct_eq(
            stored.as_bytes(),
            sha256_hex(&credentials.token).as_bytes(),
        )
        .into();
        // Else the token of another browser that redeemed a device link (looked up by its
        // hash: a random 256-bit token's hash reveals nothing by timing).
        if equal
            || self
                .is_device_token(credentials.id, &credentials.token)
                .await?
        {
            Ok(Some(credentials.id))
        } else {
            Ok(None)
        }
    }

    /// Stores the workspace's settings (the browser's, mirrored).
    pub async fn put_settings(
        &self,
        workspace: Uuid,
        settings: &ApplicationServerSettings,
    ) -> Result<(), StorageError> {
        let json =
            serde_json::to_string(settings).map_err(|error| StorageError::CorruptDocument {
                kind: "ApplicationServerSettings",
                reason: error.to_string(),
            })?;
        sqlx::query("UPDATE workspaces SET settings = $1, updated_at = $2 WHERE id = $3")
            .bind(json)
            .bind(Utc::now().to_rfc3339())
            .bind(workspace.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The workspace's settings as last mirrored, or `None` if none were.
    pub async fn workspace_settings(
        &self,
        workspace: Uuid,
    ) -> Result<Option<ApplicationServerSettings>, StorageError> {
        let row = sqlx::query("SELECT settings FROM workspaces WHERE id = $1")
            .bind(workspace.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row
            .map(|row| row.try_get::<Option<String>, _>("settings"))
            .transpose()?
            .flatten()
        {
            Some(json) => decode("ApplicationServerSettings", &json).map(Some),
            None => Ok(None),
        }
    }

    /// The last VM status the workspace's browser mirrored, if any.
    pub async fn workspace_vm_status(
        &self,
        workspace: Uuid,
    ) -> Result<Option<WebVMStatus>, StorageError> {
        let row = sqlx::query("SELECT webvm_status FROM workspaces WHERE id = $1")
            .bind(workspace.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row
            .map(|row| row.try_get::<Option<String>, _>("webvm_status"))
            .transpose()?
            .flatten()
        {
            Some(json) => decode("WebVMStatus", &json).map(Some),
            None => Ok(None),
        }
    }

    /// Stores (inserts or replaces, by id) one application document in a workspace's mirror
    /// and returns when: a rename is a put with the same id and a new name. A name another
    /// application of the workspace has (case-insensitively) is [`StorageError::NameTaken`].
    pub async fn put_application(
        &self,
        workspace: Uuid,
        application: &Application,
    ) -> Result<chrono::DateTime<Utc>, StorageError> {
        let document = encode(application)?;
        let updated_at = Utc::now();
        let status = application.status.as_str();
        let name = application.name.to_string();
        sqlx::query(
            "INSERT INTO applications (workspace_id, id, name, name_key, status, document, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (workspace_id, id) DO UPDATE SET
               name = excluded.name, name_key = excluded.name_key, status = excluded.status,
               document = excluded.document, updated_at = excluded.updated_at",
        )
        .bind(workspace.to_string())
        .bind(application.id.to_string())
        .bind(&name)
        .bind(name.to_lowercase())
        .bind(status)
        .bind(document)
        .bind(updated_at.to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(|error| match &error {
            // Two writers raced for one name: the unique index keeps exactly one.
            sqlx::Error::Database(database) if database.is_unique_violation() => {
                StorageError::NameTaken { name: name.clone() }
            }
            _ => StorageError::from(error),
        })?;
        Ok(updated_at)
    }

    /// Removes one application of a workspace with every share link to it and its status
    /// samples, in one transaction; false when the workspace has no application with that id.
    pub async fn delete_application(
        &self,
        workspace: Uuid,
        application: Uuid,
    ) -> Result<bool, StorageError> {
        let (workspace, application) = (workspace.to_string(), application.to_string());
        let mut transaction = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM applications WHERE workspace_id = $1 AND id = $2")
            .bind(&workspace)
            .bind(&application)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if deleted == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        for table in ["share_links", "app_status_samples"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE workspace_id = $1 AND application_id = $2"
            ))
            .bind(&workspace)
            .bind(&application)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// All applications of a workspace, by name.
    pub async fn list_applications(
        &self,
        workspace: Uuid,
    ) -> Result<Vec<Application>, StorageError> {
        let rows = sqlx::query(
            "SELECT document FROM applications WHERE workspace_id = $1 ORDER BY name_key",
        )
        .bind(workspace.to_string())
        .fetch_all(&self.pool)
        .await?;
        // One unreadable document must not hide the others: it is logged and left out (and
        // opening it alone fails with a reference).
        Ok(rows
            .iter()
            .filter_map(|row| match decode_column("Application", row) {
                Ok(application) => Some(application),
                Err(error) => {
                    let reference = crate::error::new_reference();
                    tracing::error!(%reference, %workspace, %error, "an application document is unreadable; left out of the list");
                    None
                }
            })
            .collect())
    }

    /// One application of a workspace, by name (compared case-insensitively).
    pub async fn application_by_name(
        &self,
        workspace: Uuid,
        name: &str,
    ) -> Result<Option<Application>, StorageError> {
        let row = sqlx::query(
            "SELECT document FROM applications WHERE workspace_id = $1 AND name_key = $2",
        )
        .bind(workspace.to_string())
        .bind(name.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| decode_column("Application", &row))
            .transpose()
    }

    /// The runtime package catalog, by category then id.
    pub async fn list_runtime_packages(&self) -> Result<Vec<RuntimePackage>, StorageError> {
        let rows = sqlx::query("SELECT document FROM runtime_packages ORDER BY category, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| decode_column("RuntimePackage", row))
            .collect()
    }

    /// The catalog with each runtime's `catalogError` and install details, by category then id.
    pub async fn list_package_catalog(&self) -> Result<Vec<PackageCatalogEntry>, StorageError> {
        let rows = sqlx::query(
            "SELECT document, catalog_error, details FROM runtime_packages ORDER BY category, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let package: RuntimePackage = decode_column("RuntimePackage", row)?;
                let catalog_error: Option<String> = row.try_get("catalog_error")?;
                let details: Option<String> = row.try_get("details")?;
                let details: CatalogDetails = match details {
                    Some(json) => decode("CatalogDetails", &json)?,
                    None => CatalogDetails::default(),
                };
                Ok(PackageCatalogEntry {
                    package,
                    catalog_error,
                    details,
                })
            })
            .collect()
    }

    /// Replaces the whole runtime catalog (one transaction: readers see the old or the new one).
    pub async fn replace_runtime_packages(
        &self,
        entries: &[PackageCatalogEntry],
    ) -> Result<(), StorageError> {
        let now = Utc::now().to_rfc3339();
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM runtime_packages")
            .execute(&mut *transaction)
            .await?;
        for entry in entries {
            sqlx::query(
                "INSERT INTO runtime_packages (id, category, document, catalog_error, details, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(entry.package.id.to_string())
            .bind(entry.package.category.as_str())
            .bind(encode(&entry.package)?)
            .bind(entry.catalog_error.clone())
            .bind(encode(&entry.details)?)
            .bind(&now)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Every indexed package file (the previous index, reused by a rescan).
    pub async fn package_file_index(&self) -> Result<Vec<StoredPackageFile>, StorageError> {
        let rows = sqlx::query(&format!("{PACKAGE_FILE_COLUMNS} ORDER BY file_name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored_package_file).collect()
    }

    /// One indexed package file by name.
    pub async fn package_file(
        &self,
        file_name: &str,
    ) -> Result<Option<StoredPackageFile>, StorageError> {
        let row = sqlx::query(&format!("{PACKAGE_FILE_COLUMNS} WHERE file_name = $1"))
            .bind(file_name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(stored_package_file).transpose()
    }

    /// Replaces the index of package files (one transaction).
    pub async fn replace_package_files(
        &self,
        files: &[StoredPackageFile],
    ) -> Result<(), StorageError> {
        let now = Utc::now().to_rfc3339();
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM package_files")
            .execute(&mut *transaction)
            .await?;
        for file in files {
            sqlx::query(
                "INSERT INTO package_files (file_name, package, version, architecture, control,
                   sha256, size_bytes, installed_size_kib, modified_ns, indexed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&file.file_name)
            .bind(&file.package)
            .bind(&file.version)
            .bind(&file.architecture)
            .bind(&file.control)
            .bind(&file.sha256)
            .bind(file.size_bytes)
            .bind(file.installed_size_kib)
            .bind(file.modified_ns)
            .bind(&now)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Ids of the runtime packages a workspace's browser reported as installed.
    pub async fn installed_package_ids(
        &self,
        workspace: Uuid,
    ) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query(
            "SELECT package_id FROM workspace_packages WHERE workspace_id = $1 AND status = 'installed' ORDER BY package_id",
        )
        .bind(workspace.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                row.try_get::<String, _>("package_id")
                    .map_err(StorageError::from)
            })
            .collect()
    }
}

/// One row of `package_files`: an indexed `.deb` of the package repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPackageFile {
    pub file_name: String,
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// The package's `control` file text.
    pub control: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub installed_size_kib: i64,
    /// Modification time (ns since the epoch) when indexed; a rescan re-hashes on change.
    pub modified_ns: i64,
}

const PACKAGE_FILE_COLUMNS: &str =
    "SELECT file_name, package, version, architecture, control, sha256,
    size_bytes, installed_size_kib, modified_ns FROM package_files";

fn stored_package_file(row: &AnyRow) -> Result<StoredPackageFile, StorageError> {
    Ok(StoredPackageFile {
        file_name: row.try_get("file_name")?,
        package: row.try_get("package")?,
        version: row.try_get("version")?,
        architecture: row.try_get("architecture")?,
        control: row.try_get("control")?,
        sha256: row.try_get("sha256")?,
        size_bytes: row.try_get("size_bytes")?,
        installed_size_kib: row.try_get("installed_size_kib")?,
        modified_ns: row.try_get("modified_ns")?,
    })
}

fn encode<T: Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|error| StorageError::Encode(error.to_string()))
}

fn decode<T: DeserializeOwned>(kind: &'static str, json: &str) -> Result<T, StorageError> {
    serde_json::from_str(json).map_err(|error| StorageError::CorruptDocument {
        kind,
        reason: error.to_string(),
    })
}

fn decode_column<T: DeserializeOwned>(kind: &'static str, row: &AnyRow) -> Result<T, StorageError> {
    let json: String = row.try_get("document")?;
    decode(kind, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted() {
        let cases = [
            (
                "postgres://user:secret@db:5432/app",
                "postgres://user:***@db:5432/app",
            ),
            ("postgres://db/app", "postgres://db/app"),
            ("sqlite://data/x.db", "sqlite://data/x.db"),
            (
                "postgres://db/app?user=u&password=secret",
                "postgres://db/app?user=u&password=***",
            ),
            (
                "postgres://u:pw@db/app?sslmode=require&PassWord=x&sslpassword=y",
                "postgres://u:***@db/app?sslmode=require&PassWord=***&sslpassword=***",
            ),
            ("postgres://db/app?password", "postgres://db/app?password"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_database_url(url), expected, "{url}");
        }
    }

    #[test]
    fn secrets_hash_to_hex() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
