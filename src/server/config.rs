//! Server configuration: embedded defaults, overridden by flags or environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Command line of the server binary. Every flag also reads an environment variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "webvm-appserver",
    version,
    about = "An application server whose Linux runs inside the web page"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the binary is asked to do; serving is the default.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the web app (the default).
    Serve,
}

/// Where the server listens and keeps its data.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long = "addr", env = "WEBVM_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Directory for the SQLite database and other server data; created on first run.
    #[arg(long = "data-dir", env = "WEBVM_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Database URL. Defaults to a SQLite file in the data directory; `postgres://…` uses PostgreSQL.
    #[arg(long = "database-url", env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// A guest build directory (with `manifest.json`) made by `guest/build.sh`.
    #[arg(long = "guest-dir", env = "WEBVM_GUEST_DIR")]
    pub guest_dir: Option<PathBuf>,

    /// Directory holding v86's `libv86.js` and `v86.wasm` (installed from npm).
    #[arg(
        long = "v86-dir",
        env = "WEBVM_V86_DIR",
        default_value = "node_modules/v86/build"
    )]
    pub v86_dir: PathBuf,

    /// Directory of the built site (the wasm, JS and CSS bundle and public assets).
    #[arg(
        long = "site-root",
        env = "LEPTOS_SITE_ROOT",
        default_value = "target/site"
    )]
    pub site_root: PathBuf,
}

impl Config {
    /// The database URL in effect: the configured one, or the SQLite file in the data directory.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_string(),
            _ => format!(
                "sqlite://{}",
                self.data_dir.join("webvm-appserver.db").display()
            ),
        }
    }

    /// A configuration for tests: a free port on loopback, and the given data directory.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url: None,
            guest_dir: None,
            v86_dir: PathBuf::from("node_modules/v86/build"),
            site_root: PathBuf::from("target/site"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_embedded() {
        let cli = Cli::try_parse_from(["webvm-appserver"]).expect("defaults parse");
        assert_eq!(cli.config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(cli.config.data_dir, PathBuf::from("data"));
        assert!(cli
            .config
            .effective_database_url()
            .starts_with("sqlite://data/"));
    }

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::try_parse_from([
            "webvm-appserver",
            "--addr",
            "0.0.0.0:8080",
            "--data-dir",
            "/tmp/x",
            "--database-url",
            "postgres://u@h/db",
        ])
        .expect("flags parse");
        assert_eq!(cli.config.addr.port(), 8080);
        assert_eq!(cli.config.effective_database_url(), "postgres://u@h/db");
    }

    #[test]
    fn bad_address_is_refused() {
        assert!(Cli::try_parse_from(["webvm-appserver", "--addr", "nowhere"]).is_err());
    }
}
