//! The package repository (feature `ssr`): real Debian i386 `.deb` files in a directory,
//! their control data and checksums indexed into the database, and the runtime catalog
//! built from them.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`deb`] | `.deb` reader (ar → `control.tar.{gz,xz,zst}` → `control`) and a small builder |
//! | [`control`] | deb822 paragraphs, relation fields, the control fields used here |
//! | [`version`] | Debian version comparison (dpkg's algorithm) |
//! | [`repository`] | scans the directory: control data, SHA-256, size |
//! | [`base`] | what the guest's base image already has |
//! | [`resolve`] | a runtime's `.deb` closure, install order and `dpkg -i` steps |
//! | [`catalog`] | the operator's TOML catalog → `RuntimePackage`s with status and reason |
//! | [`fill`] | the `fill-packages` subcommand (apt-get download) |
//! | [`fixture`] | the deliberately tampered `tampered-demo` package |
//! | [`http`] | `GET /packages/files/{file_name}` with Range and a strong ETag |
//! | [`layers`] | prebuilt runtime layers: `build-layers`, their pinning in the catalog, `GET /packages/layers/{file}` |
//!
//! Indexing ([`index_repository`]) runs at start-up, on SIGHUP and with the
//! `index-packages` subcommand; it never stops the server: problems are logged and shown as
//! runtimes with status `error` and a reason.

pub mod base;
pub mod catalog;
pub mod control;
pub mod deb;
pub mod fill;
pub mod fixture;
pub mod http;
pub mod layers;
pub mod repository;
pub mod resolve;
pub mod version;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base::BaseImage;
use catalog::{CatalogError, CatalogSource};
use repository::{KnownFile, RepositoryError};
use resolve::Universe;

use super::config::Config;
use super::storage::{Storage, StorageError, StoredPackageFile};
use crate::model::catalog::PackageCatalogEntry;

/// Why indexing failed (the server keeps running with the previous index).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("the indexing task stopped: {0}")]
    Task(String),
}

/// What an indexing run found.
#[derive(Debug, Clone, Default)]
pub struct IndexSummary {
    pub packages_dir: PathBuf,
    pub files: usize,
    pub broken: Vec<String>,
    pub skipped: usize,
    pub hashed: usize,
    pub reused: usize,
    pub bytes_hashed: u64,
    pub missing_dir: bool,
    pub catalog: String,
    pub runtimes: usize,
    /// `id: reason` of every runtime with status `error`.
    pub errors: Vec<String>,
    pub base: String,
    pub elapsed: Duration,
}

/// Only one indexing run at a time (start-up, SIGHUP and the subcommand may overlap).
static INDEX_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Scans the package directory, stores its index, rebuilds the catalog and stores it.
/// The catalog is replaced only when the catalog file is valid.
pub async fn index_repository(
    config: &Config,
    storage: &Storage,
) -> Result<IndexSummary, IndexError> {
    let _guard = INDEX_LOCK.lock().await;
    let started = Instant::now();
    let dir = config.effective_packages_dir();
    let known: BTreeMap<String, KnownFile> = storage
        .package_file_index()
        .await?
        .into_iter()
        .map(|file| {
            (
                file.file_name.clone(),
                KnownFile {
                    sha256: file.sha256,
                    size_bytes: u64::try_from(file.size_bytes).unwrap_or(0),
                    modified_ns: file.modified_ns,
                    control_text: file.control,
                },
            )
        })
        .collect();
    let scan_dir = dir.clone();
    let scan = tokio::task::spawn_blocking(move || repository::scan(&scan_dir, &known))
        .await
        .map_err(|error| IndexError::Task(error.to_string()))??;
    let rows: Vec<StoredPackageFile> = scan
        .files
        .iter()
        .map(|file| StoredPackageFile {
            file_name: file.file_name.clone(),
            package: file.control.package.clone(),
            version: file.control.version.clone(),
            architecture: file.control.architecture.clone(),
            control: file.control_text.clone(),
            sha256: file.sha256.clone(),
            size_bytes: i64::try_from(file.size_bytes).unwrap_or(i64::MAX),
            installed_size_kib: i64::try_from(file.control.installed_size_kib).unwrap_or(0),
            modified_ns: file.modified_ns,
        })
        .collect();
    storage.replace_package_files(&rows).await?;

    let source = CatalogSource::from_config(config);
    let base = BaseImage::load(config.guest_dir.as_deref());
    let mut summary = IndexSummary {
        packages_dir: dir,
        files: scan.files.len(),
        broken: scan
            .broken
            .iter()
            .map(|file| format!("{}: {}", file.file_name, file.reason))
            .collect(),
        skipped: scan.skipped.len(),
        hashed: scan.hashed,
        reused: scan.reused,
        bytes_hashed: scan.bytes_hashed,
        missing_dir: scan.missing_dir,
        catalog: source.describe(),
        base: format!("{:?}", base.source),
        ..IndexSummary::default()
    };
    for (name, reason) in &scan.skipped {
        tracing::warn!(file = %name, %reason, "package file skipped");
    }
    let layers_dir = config.effective_layers_dir();
    let guest_dir = config.guest_dir.clone();
    let entries = match source.load()? {
        Some(catalog) => {
            let broken = scan.broken.clone();
            let universe = Universe::new(scan.files.iter().map(|file| file.candidate()));
            tokio::task::spawn_blocking(move || {
                let mut entries = catalog::build(&catalog, &universe, &broken, &base);
                layers::attach(&mut entries, &layers_dir, guest_dir.as_deref());
                entries
            })
            .await
            .map_err(|error| IndexError::Task(error.to_string()))?
        }
        None => {
            tracing::info!(catalog = %summary.catalog, "no catalog file: the catalog is empty");
            Vec::new()
        }
    };
    summary.runtimes = entries.len();
    summary.errors = entries
        .iter()
        .filter_map(|entry| {
            entry
                .catalog_error
                .as_ref()
                .map(|reason| format!("{}: {reason}", entry.package.id))
        })
        .collect();
    for entry in &entries {
        for warning in &entry.details.warnings {
            tracing::warn!(runtime = %entry.package.id, "{warning}");
        }
    }
    storage.replace_runtime_packages(&entries).await?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The catalog as the repository resolves it now, without the database: for `build-layers`.
/// The test fixtures are left out (their `.deb`s are deliberately broken).
pub fn resolve_catalog(config: &Config) -> Result<Vec<PackageCatalogEntry>, IndexError> {
    let dir = config.effective_packages_dir();
    let scan = repository::scan(&dir, &BTreeMap::new())?;
    let source = CatalogSource {
        test_fixtures: false,
        ..CatalogSource::from_config(config)
    };
    let base = BaseImage::load(config.guest_dir.as_deref());
    let universe = Universe::new(scan.files.iter().map(|file| file.candidate()));
    Ok(match source.load()? {
        Some(catalog) => catalog::build(&catalog, &universe, &scan.broken, &base),
        None => Vec::new(),
    })
}

/// `build-layers`: resolves the catalog, then builds each runtime's layer.
pub fn build_layers(config: &Config) -> Result<Vec<layers::build::RuntimeOutcome>, String> {
    let entries = resolve_catalog(config).map_err(|error| error.to_string())?;
    let options = layers::build::BuildOptions {
        guest_dir: config.guest_dir.clone(),
        packages_dir: config.effective_packages_dir(),
        layers_dir: config.effective_layers_dir(),
    };
    layers::build::build_layers(&options, &entries).map_err(|error| error.to_string())
}

/// Prints what `build-layers` did, one runtime a line.
pub fn print_layer_report(outcomes: &[layers::build::RuntimeOutcome]) {
    println!(
        "{:<16} {:>8} {:>10} {:>10} {:>8}  outcome",
        "runtime", "entries", "tar MiB", "gz MiB", "seconds"
    );
    for outcome in outcomes {
        println!(
            "{:<16} {:>8} {:>10.1} {:>10.1} {:>8.1}  {}",
            outcome.id,
            outcome.entries,
            outcome.tar_bytes as f64 / 1_048_576.0,
            outcome.gz_bytes as f64 / 1_048_576.0,
            outcome.seconds,
            outcome.outcome
        );
    }
}

/// Indexes at start-up: logs the outcome, never fails.
pub async fn index_at_startup(config: &Config, storage: &Storage) {
    match index_repository(config, storage).await {
        Ok(summary) => log_summary(&summary),
        Err(error) => {
            tracing::error!(%error, "package indexing failed; the previous catalog stays")
        }
    }
}

fn log_summary(summary: &IndexSummary) {
    tracing::info!(
        dir = %summary.packages_dir.display(),
        files = summary.files,
        hashed = summary.hashed,
        reused = summary.reused,
        runtimes = summary.runtimes,
        errors = summary.errors.len(),
        elapsed_ms = summary.elapsed.as_millis() as u64,
        "package repository indexed"
    );
    if summary.missing_dir {
        tracing::warn!(
            dir = %summary.packages_dir.display(),
            "the package directory does not exist: run `webvm-appserver fill-packages`"
        );
    }
    for broken in &summary.broken {
        tracing::warn!("unreadable package file {broken}");
    }
    for error in &summary.errors {
        tracing::warn!("runtime unavailable: {error}");
    }
}

/// Re-indexes whenever the process receives SIGHUP (`kill -HUP <pid>`).
#[cfg(unix)]
pub fn spawn_rescan_on_sighup(config: Config, storage: Storage) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::warn!(%error, "can't listen for SIGHUP; rescans need a restart");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: rescanning the package repository");
            index_at_startup(&config, &storage).await;
        }
    });
}

/// Re-indexing on a signal is only available on Unix.
#[cfg(not(unix))]
pub fn spawn_rescan_on_sighup(_config: Config, _storage: Storage) {}

/// Prints an indexing summary for the `index-packages` subcommand.
pub fn print_summary(summary: &IndexSummary) {
    println!(
        "indexed {} .deb files in {} ({} hashed, {:.1} MiB; {} unchanged) in {} ms",
        summary.files,
        summary.packages_dir.display(),
        summary.hashed,
        summary.bytes_hashed as f64 / 1_048_576.0,
        summary.reused,
        summary.elapsed.as_millis()
    );
    println!(
        "catalog: {} ({} runtimes); base image: {}",
        summary.catalog, summary.runtimes, summary.base
    );
    for broken in &summary.broken {
        println!("  unreadable: {broken}");
    }
    for error in &summary.errors {
        println!("  error: {error}");
    }
}

/// Prints a fill report.
pub fn print_fill_report(report: &fill::FillReport) {
    if report.up_to_date {
        println!(
            "packages are up to date (stamp matches; {} ms)",
            report.elapsed.as_millis()
        );
        return;
    }
    println!("base image: {}", report.base);
    println!("{:<16} {:>6} {:>10}  status", "runtime", "debs", "MiB");
    for runtime in &report.runtimes {
        println!(
            "{:<16} {:>6} {:>10.2}  {}",
            runtime.id,
            runtime.files,
            runtime.bytes as f64 / 1_048_576.0,
            runtime.error.as_deref().unwrap_or("ok")
        );
    }
    println!(
        "downloaded {} files ({:.1} MiB), {} already present, in {:.1} s",
        report.downloaded,
        report.downloaded_bytes as f64 / 1_048_576.0,
        report.already_present,
        report.elapsed.as_secs_f64()
    );
    for failure in &report.failures {
        println!("  failed: {failure}");
    }
}
