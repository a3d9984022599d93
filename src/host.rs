//! The composition root of the server binary (feature `ssr`), above every layer: it hands
//! the pages (`app`) and the server functions' endpoint table (`api`) to the HTTP server
//! (`server`), which names neither.

use std::process::ExitCode;

use axum::Router;
use leptos::prelude::IntoView;

use crate::server::config::{Cli, Command, Config};
use crate::server::storage::StartupError;
use crate::server::{self, BuiltApp, ServeError, Site};

/// The app's page routes, generated once per process. Generating them runs the app with
/// resource loading suppressed process-wide (leptos_server's `SuppressResourceLoad`), so a
/// resource first polled meanwhile by another server's render never loads and that request
/// hangs (leptos#4773). The integration tests start servers in parallel in one process:
/// generating once, before any server exists, keeps every render outside that window.
static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();

/// What this program serves: the app's pages and server functions.
pub fn site() -> Site<impl IntoView> {
    Site {
        routes: ROUTES
            .get_or_init(|| leptos_axum::generate_route_list(crate::app::App))
            .clone(),
        shell: crate::app::shell,
        endpoints: crate::api::ENDPOINTS,
    }
}

/// Entry point of the binary: parse the command line, then run the chosen command.
pub async fn main_from_args() -> ExitCode {
    server::init_tracing();
    let cli = <Cli as clap::Parser>::parse();
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::FillPackages { update } => server::fill_packages(cli.config, update).await,
        Command::IndexPackages => server::index_packages(cli.config).await,
        Command::BuildLayers => server::build_layers(cli.config).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Opens storage and builds the full router of the app (see [`server::build_app`]).
pub async fn build_router(config: &Config) -> Result<Router, StartupError> {
    Ok(build_app(config).await?.router)
}

/// Like [`build_router`], and also hands back the storage.
pub async fn build_app(config: &Config) -> Result<BuiltApp, StartupError> {
    server::build_app(config, site()).await
}

/// Binds the configured address and serves the app until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    server::serve(config, site()).await
}
