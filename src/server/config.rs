//! Server configuration: embedded defaults, overridden by flags or environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use url::Url;

use crate::domain::fetch_policy::AllowedHost;

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
    /// Build each catalog runtime's layer (needs root: an overlay over the guest rootfs and a
    /// `linux32` chroot run the runtime's dpkg steps) into the layers directory; cached by
    /// the image, the `.deb`s and the builder, so a repeated run takes a second.
    BuildLayers,
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
    /// Its value (which may hold a password) is never printed by `--help`.
    #[arg(long = "database-url", env = "DATABASE_URL", hide_env_values = true)]
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

    /// Directory of the prebuilt runtime layers (`build-layers`) [default: <data-dir>/layers].
    #[arg(long = "layers-dir", env = "WEBVM_LAYERS_DIR")]
    pub layers_dir: Option<PathBuf>,

    /// The runtime catalog (TOML) [default: catalog/runtimes.toml if present, else the
    /// built-in copy]. A configured file that does not exist gives an empty catalog.
    #[arg(long = "catalog", env = "WEBVM_CATALOG")]
    pub catalog: Option<PathBuf>,

    /// Add the runtimes only the tests use (`catalog/test-fixtures.toml`: the tampered demo)
    /// after the catalog. For the end-to-end suite; never for users.
    #[arg(
        long = "test-fixtures",
        env = "WEBVM_TEST_FIXTURES",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub test_fixtures: bool,

    /// Directory of the built site (the wasm, JS and CSS bundle and public assets).
    #[arg(
        long = "site-root",
        env = "LEPTOS_SITE_ROOT",
        default_value = "target/site"
    )]
    pub site_root: PathBuf,

    /// What the HTTP edge allows: origin, timeouts, connection, concurrency and rate limits.
    #[command(flatten)]
    pub edge: EdgeConfig,

    /// What the server fetches for the `url` and `github` deploy sources.
    #[command(flatten)]
    pub fetch: FetchConfig,
}

/// The limits of the fetches the server makes for a user (`server::sources`).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct FetchConfig {
    /// A host the server may fetch from although it is loopback, private or link-local
    /// (`name`, `name:port`, `10.0.0.5`, `[::1]:8080`); repeat the flag or separate with commas.
    #[arg(
        long = "fetch-allow-host",
        env = "WEBVM_FETCH_ALLOW_HOSTS",
        value_delimiter = ',',
        value_parser = AllowedHost::parse
    )]
    pub allow_hosts: Vec<AllowedHost>,

    /// The largest archive (bytes) the server fetches for a deploy.
    #[arg(long = "fetch-max-bytes", env = "WEBVM_FETCH_MAX_BYTES", default_value_t = FetchConfig::DEFAULT_MAX_BYTES)]
    pub max_bytes: u64,

    /// Seconds a fetch may take in all, redirects and the streamed body included.
    #[arg(long = "fetch-timeout", env = "WEBVM_FETCH_TIMEOUT", default_value_t = FetchConfig::DEFAULT_TIMEOUT_SECS)]
    pub timeout_secs: u64,

    /// The GitHub API the `github` source asks (GitHub Enterprise: `https://host/api/v3`).
    /// Its host and port are allowed for that source, even on a private address.
    #[arg(long = "github-api-url", env = "WEBVM_GITHUB_API_URL", default_value = FetchConfig::DEFAULT_GITHUB_API, value_parser = parse_api_url)]
    pub github_api_url: Url,
}

impl FetchConfig {
    pub const DEFAULT_MAX_BYTES: u64 = 200 * 1024 * 1024;
    pub const DEFAULT_TIMEOUT_SECS: u64 = 120;
    pub const DEFAULT_GITHUB_API: &'static str = "https://api.github.com";
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            max_bytes: Self::DEFAULT_MAX_BYTES,
            timeout_secs: Self::DEFAULT_TIMEOUT_SECS,
            github_api_url: parse_api_url(Self::DEFAULT_GITHUB_API)
                .unwrap_or_else(|_| unreachable!("the default GitHub API URL parses")),
        }
    }
}

/// An http(s) base URL without credentials, query or fragment.
fn parse_api_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|error| format!("“{text}” is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("“{text}” is not an http:// or https:// URL"));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "“{text}” may not hold a user name, password, query or fragment (the token goes in a header)"
        ));
    }
    Ok(url)
}

/// The HTTP edge's settings. Each limit has a default a public server can live with.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct EdgeConfig {
    /// The origin browsers reach this server at, e.g. `https://apps.example.com`. An `https`
    /// origin means TLS (in front of the server): the workspace cookie becomes
    /// `__Host-`-prefixed and `Secure`, and pages send HSTS. Without it, writes must come
    /// from the origin named by the request's `Host`.
    #[arg(long = "public-origin", env = "WEBVM_PUBLIC_ORIGIN")]
    pub public_origin: Option<String>,

    /// Seconds a client has to send a request's headers before the connection is closed.
    #[arg(long = "header-read-timeout", env = "WEBVM_HEADER_READ_TIMEOUT", default_value_t = EdgeConfig::DEFAULT.header_read_timeout_secs)]
    pub header_read_timeout_secs: u64,

    /// Seconds a request may take until its response starts (the body may stream longer).
    #[arg(long = "request-timeout", env = "WEBVM_REQUEST_TIMEOUT", default_value_t = EdgeConfig::DEFAULT.request_timeout_secs)]
    pub request_timeout_secs: u64,

    /// Open connections at most, over all clients.
    #[arg(long = "max-connections", env = "WEBVM_MAX_CONNECTIONS", default_value_t = EdgeConfig::DEFAULT.max_connections)]
    pub max_connections: usize,

    /// Open connections at most from one client address.
    #[arg(long = "max-connections-per-client", env = "WEBVM_MAX_CONNECTIONS_PER_CLIENT", default_value_t = EdgeConfig::DEFAULT.max_connections_per_client)]
    pub max_connections_per_client: usize,

    /// Requests handled at once; more are refused with 503 (load shedding). `/healthz` is exempt.
    #[arg(long = "max-concurrent-requests", env = "WEBVM_MAX_CONCURRENT_REQUESTS", default_value_t = EdgeConfig::DEFAULT.max_concurrent_requests)]
    pub max_concurrent_requests: usize,

    /// Writes (server functions that change state) per minute from one client address.
    #[arg(long = "writes-per-minute", env = "WEBVM_WRITES_PER_MINUTE", default_value_t = EdgeConfig::DEFAULT.writes_per_minute)]
    pub writes_per_minute: u32,
}

impl EdgeConfig {
    /// The embedded defaults (the flags' defaults come from here).
    pub const DEFAULT: EdgeConfig = EdgeConfig {
        public_origin: None,
        header_read_timeout_secs: 10,
        request_timeout_secs: 30,
        max_connections: 2048,
        max_connections_per_client: 256,
        max_concurrent_requests: 256,
        writes_per_minute: 120,
    };
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
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

    /// The layers directory in effect: the configured one, or `layers` in the data directory.
    pub fn effective_layers_dir(&self) -> PathBuf {
        self.layers_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("layers"))
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
            test_fixtures: false,
            packages_dir: None,
            layers_dir: None,
            data_dir,
            database_url: None,
            guest_dir: None,
            v86_dir: PathBuf::from("node_modules/v86/build"),
            site_root: PathBuf::from("target/site"),
            edge: EdgeConfig::default(),
            fetch: FetchConfig::default(),
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
        assert!(!cli.config.test_fixtures);
        let cli = Cli::try_parse_from([
            "webvm-appserver",
            "--packages-dir",
            "/p",
            "--catalog",
            "/c.toml",
            "--test-fixtures",
            "fill-packages",
            "--update",
        ])
        .expect("parses");
        assert_eq!(cli.config.effective_packages_dir(), PathBuf::from("/p"));
        assert_eq!(cli.config.catalog, Some(PathBuf::from("/c.toml")));
        assert!(cli.config.test_fixtures);
        assert!(matches!(
            cli.command,
            Some(Command::FillPackages { update: true })
        ));
        let cli = Cli::try_parse_from(["webvm-appserver", "index-packages"]).expect("parses");
        assert!(matches!(cli.command, Some(Command::IndexPackages)));
    }

    #[test]
    fn help_never_shows_the_database_url() {
        use clap::CommandFactory;
        let command = Cli::command();
        let database_url = command
            .get_arguments()
            .find(|argument| argument.get_id() == "database_url")
            .expect("the database-url flag exists");
        assert!(database_url.is_hide_env_values_set());
    }

    #[test]
    fn edge_limits_have_embedded_defaults() {
        let cli = Cli::try_parse_from(["webvm-appserver"]).expect("defaults parse");
        assert_eq!(cli.config.edge, EdgeConfig::DEFAULT);
        let cli = Cli::try_parse_from([
            "webvm-appserver",
            "--public-origin",
            "https://apps.example.com",
            "--writes-per-minute",
            "5",
        ])
        .expect("flags parse");
        assert_eq!(
            cli.config.edge.public_origin.as_deref(),
            Some("https://apps.example.com")
        );
        assert_eq!(cli.config.edge.writes_per_minute, 5);
    }

    #[test]
    fn fetch_limits_have_defaults_and_flags() {
        let cli = Cli::try_parse_from(["webvm-appserver"]).expect("defaults parse");
        assert_eq!(cli.config.fetch, FetchConfig::default());
        assert_eq!(cli.config.fetch.max_bytes, 200 * 1024 * 1024);
        assert_eq!(
            cli.config.fetch.github_api_url.as_str(),
            "https://api.github.com/"
        );
        let cli = Cli::try_parse_from([
            "webvm-appserver",
            "--fetch-allow-host",
            "127.0.0.1:8080,intranet.example",
            "--fetch-allow-host",
            "[::1]",
            "--fetch-max-bytes",
            "1000",
            "--fetch-timeout",
            "5",
            "--github-api-url",
            "http://127.0.0.1:9000/github",
        ])
        .expect("flags parse");
        let shown: Vec<String> = cli
            .config
            .fetch
            .allow_hosts
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["127.0.0.1:8080", "intranet.example", "[::1]"]);
        assert_eq!(cli.config.fetch.max_bytes, 1000);
        assert_eq!(cli.config.fetch.timeout_secs, 5);
        for bad in [
            ["--fetch-allow-host", "http://x/"],
            ["--github-api-url", "ftp://x"],
            ["--github-api-url", "https://u:p@x"],
        ] {
            assert!(
                Cli::try_parse_from(["webvm-appserver", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bad_address_is_refused() {
        assert!(Cli::try_parse_from(["webvm-appserver", "--addr", "nowhere"]).is_err());
    }
}
