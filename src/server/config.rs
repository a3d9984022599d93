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
    /// Download every catalog runtime's .deb closure from Debian (apt-get download) into the
    /// packages directory; idempotent (a stamp makes a repeated run take milliseconds).
    FillPackages {
        /// Run `apt-get update` even when apt already has i386 package indexes.
        #[arg(long)]
        update: bool,
    },
    /// Index the packages directory into the database (as the server does at start-up and
    /// on SIGHUP), print what was found and exit.
    IndexPackages,
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

    /// Directory of the .deb files of the package repository [default: <data-dir>/packages].
    #[arg(long = "packages-dir", env = "WEBVM_PACKAGES_DIR")]
    pub packages_dir: Option<PathBuf>,

    /// The runtime catalog (TOML) [default: catalog/runtimes.toml if present, else the
    /// built-in copy]. A configured file that does not exist gives an empty catalog.
    #[arg(long = "catalog", env = "WEBVM_CATALOG")]
    pub catalog: Option<PathBuf>,

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

    /// The package directory in effect: the configured one, or `packages` in the data directory.
    pub fn effective_packages_dir(&self) -> PathBuf {
        self.packages_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("packages"))
    }

    /// A configuration for tests: a free port on loopback, and the given data directory.
    /// Its catalog is `catalog.toml` in the data directory, absent unless a test writes it,
    /// so the catalog starts empty.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            catalog: Some(data_dir.join("catalog.toml")),
            packages_dir: None,
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
    fn package_options_default_to_the_data_dir_and_parse_subcommands() {
        let cli = Cli::try_parse_from(["webvm-appserver", "--data-dir", "/d"]).expect("parses");
        assert_eq!(
            cli.config.effective_packages_dir(),
            PathBuf::from("/d/packages")
        );
        assert_eq!(cli.config.catalog, None);
        let cli = Cli::try_parse_from([
            "webvm-appserver",
            "--packages-dir",
            "/p",
            "--catalog",
            "/c.toml",
            "fill-packages",
            "--update",
        ])
        .expect("parses");
        assert_eq!(cli.config.effective_packages_dir(), PathBuf::from("/p"));
        assert_eq!(cli.config.catalog, Some(PathBuf::from("/c.toml")));
        assert!(matches!(
            cli.command,
            Some(Command::FillPackages { update: true })
        ));
        let cli = Cli::try_parse_from(["webvm-appserver", "index-packages"]).expect("parses");
        assert!(matches!(cli.command, Some(Command::IndexPackages)));
    }

    #[test]
    fn bad_address_is_refused() {
        assert!(Cli::try_parse_from(["webvm-appserver", "--addr", "nowhere"]).is_err());
    }
}
