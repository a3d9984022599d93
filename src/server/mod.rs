//! The HTTP server (feature `ssr`): start-up, router, health check and graceful shutdown.
//!
//! It serves a [`Site`] it is handed (the pages and the server functions' endpoint table):
//! the composition root, `crate::host`, makes it, so this layer names neither `app` nor `api`.

pub mod app_bridge;
pub mod config;
pub mod edge;
pub mod mirror;
pub mod packages;
pub mod sources;
pub mod static_files;
pub mod storage;

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::{provide_context, IntoView};
use leptos_axum::{AxumRouteListing, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

use config::Config;
use storage::{StartupError, Storage};

/// What the layers above the server hand it to serve.
pub struct Site<View> {
    /// The page routes (`leptos_axum::generate_route_list` of the app).
    pub routes: Vec<AxumRouteListing>,
    /// Renders the HTML document around a page.
    pub shell: fn(LeptosOptions) -> View,
    /// Which server functions write and which take bodies over the default limit.
    pub endpoints: edge::EndpointTable,
}

/// Shared state of every handler.
#[derive(Clone, axum::extract::FromRef)]
pub struct ServerState {
    pub leptos_options: LeptosOptions,
    pub storage: Storage,
}

/// Why the server could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("can't listen on {addr}: {source}. Is another server using it? Choose another with --addr or WEBVM_ADDR")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server stopped with an error: {0}")]
    Serve(#[source] std::io::Error),
    #[error("fill-packages: {0}")]
    Fill(#[from] packages::fill::FillError),
    #[error("fill-packages did not complete: {0}")]
    FillIncomplete(String),
    #[error("build-layers: {0}")]
    Layers(String),
    #[error("index-packages: {0}")]
    Index(#[from] packages::IndexError),
}

/// `fill-packages`: downloads the catalog's .deb closures into the packages directory.
pub async fn fill_packages(config: Config, force_update: bool) -> Result<(), ServeError> {
    let options = packages::fill::FillOptions {
        packages_dir: config.effective_packages_dir(),
        catalog: packages::catalog::CatalogSource::from_config(&config),
        guest_dir: config.guest_dir.clone(),
        force_update,
    };
    let report = tokio::task::spawn_blocking(move || packages::fill::fill(&options))
        .await
        .map_err(|error| ServeError::FillIncomplete(error.to_string()))??;
    packages::print_fill_report(&report);
    if report.is_complete() {
        Ok(())
    } else {
        Err(ServeError::FillIncomplete(format!(
            "{} runtime(s) unresolved, {} file(s) failed; the server marks them `error`",
            report.runtimes.iter().filter(|r| r.error.is_some()).count(),
            report.failures.len()
        )))
    }
}

/// `build-layers`: builds (or finds cached) every catalog runtime's layer and prints a table.
pub async fn build_layers(config: Config) -> Result<(), ServeError> {
    let outcomes = tokio::task::spawn_blocking(move || packages::build_layers(&config))
        .await
        .map_err(|error| ServeError::Layers(error.to_string()))?
        .map_err(|error| ServeError::Layers(error.to_string()))?;
    packages::print_layer_report(&outcomes);
    Ok(())
}

/// `index-packages`: indexes the packages directory into the database and prints a summary.
pub async fn index_packages(config: Config) -> Result<(), ServeError> {
    let storage = Storage::open(&config).await?;
    let summary = packages::index_repository(&config, &storage).await?;
    packages::print_summary(&summary);
    Ok(())
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info,sqlx=warn`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// The Leptos options for this configuration: embedded defaults, no `Cargo.toml` needed at run time.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    let env = match std::env::var("LEPTOS_ENV").as_deref() {
        Ok("DEV") | Ok("dev") | Ok("development") => leptos::config::Env::DEV,
        _ => leptos::config::Env::PROD,
    };
    LeptosOptions::builder()
        .output_name("webvm-appserver")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .env(env)
        .build()
}

/// The router and the storage it serves from (tests reach into the storage).
pub struct BuiltApp {
    pub router: Router,
    pub storage: Storage,
}

/// Opens storage and builds the full router for `site`: pages, server functions, `/healthz`
/// and static files, behind the edge's layers.
pub async fn build_app<View: IntoView + 'static>(
    config: &Config,
    site: Site<View>,
) -> Result<BuiltApp, StartupError> {
    let Site {
        routes,
        shell,
        endpoints,
    } = site;
    let policy = edge::SitePolicy::from_config(&config.edge)?;
    let storage = Storage::open(config).await?;
    packages::index_at_startup(config, &storage).await;
    packages::spawn_rescan_on_sighup(config.clone(), storage.clone());
    let leptos_options = leptos_options(config);
    let state = ServerState {
        leptos_options: leptos_options.clone(),
        storage: storage.clone(),
    };
    let static_files = load_static_files(config);
    let context_storage = storage.clone();
    let context_policy = policy.clone();
    let app = Router::new()
        .merge(static_files::routes(static_files))
        .merge(app_bridge::routes())
        .merge(packages::http::routes(
            storage.clone(),
            config.effective_packages_dir(),
        ))
        .merge(packages::layers::routes(
            storage.clone(),
            config.effective_layers_dir(),
        ))
        .merge(sources::routes(sources::Sources::from_config(
            &config.fetch,
        )))
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(context_storage.clone());
                provide_context(context_policy.clone());
            },
            move || shell(leptos_options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<ServerState, _>(shell))
        .layer(
            // .deb files are compressed already and served with Range requests; the guest
            // image and snapshots are binary, large and streamed (the snapshot is gzipped
            // ahead of time).
            tower_http::compression::CompressionLayer::new().compress_when(
                DefaultPredicate::new()
                    .and(NotForContentType::const_new(
                        packages::http::DEB_CONTENT_TYPE,
                    ))
                    .and(NotForContentType::const_new("application/octet-stream"))
                    .and(NotForContentType::const_new(
                        packages::layers::LAYER_CONTENT_TYPE,
                    )),
            ),
        )
        .with_state(state.clone());
    let health = Router::new()
        .route("/healthz", get(healthz))
        .with_state(state);
    let router = edge::harden(app, health, policy, &config.edge, endpoints);
    Ok(BuiltApp { router, storage })
}

/// The guest image and v86 files to serve; a missing or broken guest build is logged, not fatal.
fn load_static_files(config: &Config) -> static_files::StaticFiles {
    let (guest, guest_problem) = match &config.guest_dir {
        Some(dir) => match static_files::GuestImage::load(dir) {
            Ok(image) => {
                tracing::info!(hash = %image.manifest.hash, "guest image ready");
                (Some(std::sync::Arc::new(image)), None)
            }
            Err(error) => {
                tracing::warn!(%error, "guest image unavailable");
                (None, Some(error.to_string()))
            }
        },
        None => (
            None,
            Some(
                "no guest image configured: set WEBVM_GUEST_DIR (the run script does)".to_string(),
            ),
        ),
    };
    static_files::StaticFiles {
        guest,
        guest_problem,
        v86_dir: config.v86_dir.clone(),
    }
}

async fn healthz(State(storage): State<Storage>) -> impl IntoResponse {
    match storage.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(
                serde_json::json!({"status": "ok", "database": format!("{:?}", storage.backend())}),
            ),
        ),
        Err(error) => {
            tracing::warn!(%error, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "database": "unreachable"})),
            )
        }
    }
}

/// Binds the configured address and serves `site` until SIGINT or SIGTERM.
pub async fn serve<View: IntoView + 'static>(
    config: Config,
    site: Site<View>,
) -> Result<(), ServeError> {
    let router = build_app(&config, site).await?.router;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })?;
    let local = listener.local_addr().map_err(ServeError::Serve)?;
    tracing::info!(data_dir = %config.data_dir.display(), "storage ready");
    println!("webvm-appserver is listening: open http://{local}/");
    edge::serve::serve(listener, router, &config.edge, shutdown_signal())
        .await
        .map_err(ServeError::Serve)?;
    tracing::info!("server stopped");
    Ok(())
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "can't listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "can't listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, finishing open requests");
}
