//! Tests of the deployment and execution configuration rules.

use super::{check, resources, Expect};
use crate::domain::testing::{catalog, file, port};
use crate::domain::validation::ValidationRules;
use crate::model::{
    ApplicationServerSettings, BuildConfig, DeploymentConfig, DeploymentSource, ExecutionConfig,
    FileRef, HealthCheckConfig, RestartPolicy, SealedSecret, SourceConfig,
};

fn source(source_type: DeploymentSource, config: SourceConfig) -> DeploymentConfig {
    DeploymentConfig {
        source_type,
        source_config: config,
        build_config: None,
        deployment_path: "/srv/apps/blog".to_owned(),
        entry_point: "index.js".to_owned(),
    }
}

fn upload() -> DeploymentConfig {
    source(
        DeploymentSource::Upload,
        SourceConfig {
            files: Some(vec![file("index.js")]),
            ..SourceConfig::default()
        },
    )
}

fn github(repository: &str) -> DeploymentConfig {
    source(
        DeploymentSource::Github,
        SourceConfig {
            repository: Some(repository.to_owned()),
            ..SourceConfig::default()
        },
    )
}

fn url(url: &str) -> DeploymentConfig {
    source(
        DeploymentSource::Url,
        SourceConfig {
            url: Some(url.to_owned()),
            ..SourceConfig::default()
        },
    )
}

fn build(timeout: u32, command: &str) -> Option<BuildConfig> {
    Some(BuildConfig {
        enabled: true,
        build_command: command.to_owned(),
        build_directory: "dist".to_owned(),
        timeout,
        ..BuildConfig::default()
    })
}

#[test]
fn deployment_config_rule() {
    let packages = catalog();
    let resources = resources();
    let settings = ApplicationServerSettings::default();
    let rules = ValidationRules::new(&packages, &[], &resources, &settings);
    let secret = SealedSecret::parse("enc:v1:k:AAECAwQFBgcICQoL:Y2lwaGVydGV4dC1hbmQtaXRzLXRhZw")
        .expect("sealed");
    let cases: Vec<(&str, DeploymentConfig, Expect)> = vec![
        (
            "upload",
            upload(),
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "relative path",
            DeploymentConfig {
                deployment_path: "blog".into(),
                ..upload()
            },
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "outside the app area",
            DeploymentConfig {
                deployment_path: "/etc/blog".into(),
                ..upload()
            },
            Expect {
                errors: &["must be a directory inside /srv/apps"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "the app area itself",
            DeploymentConfig {
                deployment_path: "/srv/apps/".into(),
                ..upload()
            },
            Expect {
                errors: &["must be a directory inside /srv/apps"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "a sibling of the app area",
            DeploymentConfig {
                deployment_path: "/srv/appsx/blog".into(),
                ..upload()
            },
            Expect {
                errors: &["must be a directory inside"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "absolute escape",
            DeploymentConfig {
                deployment_path: "/srv/apps/../etc".into(),
                ..upload()
            },
            Expect {
                errors: &["must not contain '..'"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "relative escape",
            DeploymentConfig {
                deployment_path: "blog/../../etc".into(),
                ..upload()
            },
            Expect {
                errors: &["must not contain '..'"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "backslash",
            DeploymentConfig {
                deployment_path: "blog\\x".into(),
                ..upload()
            },
            Expect {
                errors: &["NUL or backslash"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "empty path",
            DeploymentConfig {
                deployment_path: " ".into(),
                ..upload()
            },
            Expect {
                errors: &["deployment path is empty"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "no entry point",
            DeploymentConfig {
                entry_point: String::new(),
                ..upload()
            },
            Expect {
                errors: &["entry point is missing"],
                warnings: &[],
                suggestions: &["index.js"],
            },
        ),
        (
            "absolute entry point",
            DeploymentConfig {
                entry_point: "/index.js".into(),
                ..upload()
            },
            Expect {
                errors: &["entry point '/index.js' must be relative"],
                warnings: &["not among the uploaded files"],
                suggestions: &[],
            },
        ),
        (
            "upload without files yet (a draft: they are picked at deploy time)",
            source(DeploymentSource::Upload, SourceConfig::default()),
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "bad files",
            source(
                DeploymentSource::Upload,
                SourceConfig {
                    files: Some(vec![
                        file("index.js"),
                        file("index.js"),
                        FileRef {
                            sha256: "xyz".into(),
                            ..file("../a.js")
                        },
                    ]),
                    ..SourceConfig::default()
                },
            ),
            Expect {
                errors: &[
                    "'index.js' appears twice",
                    "'../a.js' has no valid SHA-256",
                    "must not contain '..'",
                ],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "entry point produced by the build",
            DeploymentConfig {
                entry_point: "dist/server.js".into(),
                build_config: build(600, "npm run build"),
                ..upload()
            },
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "github",
            github("owner/repo"),
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "github without repository",
            github(""),
            Expect {
                errors: &["needs a repository"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "github URL instead of owner/name",
            github("https://github.com/owner/repo.git"),
            Expect {
                errors: &["not in owner/name form"],
                warnings: &[],
                suggestions: &["use 'owner/repo'"],
            },
        ),
        (
            "github bad owner",
            github("-owner/repo"),
            Expect {
                errors: &["not in owner/name form"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "github dot name",
            github("owner/.."),
            Expect {
                errors: &["not in owner/name form"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "github commit and branch",
            DeploymentConfig {
                source_config: SourceConfig {
                    repository: Some("o/r".into()),
                    branch: Some("main".into()),
                    commit: Some("abc1234".into()),
                    token: Some(secret.clone()),
                    ..SourceConfig::default()
                },
                ..github("o/r")
            },
            Expect {
                errors: &[],
                warnings: &["abbreviated", "the commit is used"],
                suggestions: &[],
            },
        ),
        (
            "github full sha",
            DeploymentConfig {
                source_config: SourceConfig {
                    repository: Some("o/r".into()),
                    commit: Some("a".repeat(40)),
                    ..SourceConfig::default()
                },
                ..github("o/r")
            },
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "github bad commit and branch",
            DeploymentConfig {
                source_config: SourceConfig {
                    repository: Some("o/r".into()),
                    branch: Some("bad..branch".into()),
                    commit: Some("zzz".into()),
                    ..SourceConfig::default()
                },
                ..github("o/r")
            },
            Expect {
                errors: &[
                    "'zzz' is not a hex SHA",
                    "'bad..branch' is not a valid git branch",
                ],
                warnings: &["the commit is used"],
                suggestions: &[],
            },
        ),
        (
            "url https",
            url("https://example.com/app.zip"),
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "url ipv6 with port",
            url("https://[::1]:8443/app.zip"),
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "url ftp",
            url("ftp://example.com/app.zip"),
            Expect {
                errors: &["scheme 'ftp' is not allowed"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "url http with credentials",
            url("http://user:pw@example.com/a.zip"),
            Expect {
                errors: &["must not contain credentials"],
                warnings: &["plain http"],
                suggestions: &[],
            },
        ),
        (
            "url without scheme",
            url("example.com/a.zip"),
            Expect {
                errors: &["has no scheme"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "url without host",
            url("https:///a.zip"),
            Expect {
                errors: &["has no host"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "url bad port",
            url("https://example.com:99999/a"),
            Expect {
                errors: &["invalid port"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "url unterminated ipv6",
            url("https://[::1/a"),
            Expect {
                errors: &["has no host"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "url whitespace",
            url("https://example.com/a b.zip"),
            Expect {
                errors: &["contains whitespace"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "url missing",
            url(""),
            Expect {
                errors: &["needs a URL"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "local sync",
            source(
                DeploymentSource::LocalSync,
                SourceConfig {
                    local_path: Some("~/site".into()),
                    watch_enabled: Some(true),
                    url: Some("https://x.y".into()),
                    ..SourceConfig::default()
                },
            ),
            Expect {
                errors: &[],
                warnings: &["url is ignored for source type 'local-sync'"],
                suggestions: &[],
            },
        ),
        (
            "local sync without folder",
            source(DeploymentSource::LocalSync, SourceConfig::default()),
            Expect {
                errors: &["needs the folder"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "build timeout zero",
            DeploymentConfig {
                build_config: build(0, "make"),
                ..upload()
            },
            Expect {
                errors: &["build timeout must be positive"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "build long and without command",
            DeploymentConfig {
                build_config: build(7200, " "),
                ..upload()
            },
            Expect {
                errors: &["no build command"],
                warnings: &["over an hour"],
                suggestions: &[],
            },
        ),
        (
            "build escapes and bad variable",
            DeploymentConfig {
                build_config: Some(BuildConfig {
                    build_directory: "../out".into(),
                    environment_vars: [("1BAD".to_owned(), "x".to_owned())].into(),
                    ..build(60, "make").unwrap_or_default()
                }),
                ..upload()
            },
            Expect {
                errors: &[
                    "build directory '../out'",
                    "'1BAD' is not a valid identifier",
                ],
                warnings: &[],
                suggestions: &[],
            },
        ),
    ];
    for (name, config, expect) in &cases {
        check(name, &rules.validate_deployment_config(config), expect);
    }
}

fn execution() -> ExecutionConfig {
    ExecutionConfig {
        command: "node".into(),
        arguments: vec!["index.js".into()],
        port: Some(port(8000)),
        auto_restart: true,
        ..ExecutionConfig::default()
    }
}

#[test]
fn execution_config_rule() {
    let packages = catalog();
    let resources = resources();
    let settings = ApplicationServerSettings::default();
    let rules = ValidationRules::new(&packages, &[], &resources, &settings);
    let secret = SealedSecret::parse("enc:v1:k:AAECAwQFBgcICQoL:Y2lwaGVydGV4dC1hbmQtaXRzLXRhZw")
        .expect("sealed");
    let health = HealthCheckConfig::default();
    let cases: Vec<(&str, ExecutionConfig, Expect)> = vec![
        (
            "valid",
            execution(),
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "no command",
            ExecutionConfig {
                command: " ".into(),
                ..execution()
            },
            Expect {
                errors: &["startup command is missing"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "no port",
            ExecutionConfig {
                port: None,
                ..execution()
            },
            Expect {
                errors: &[],
                warnings: &["no port"],
                suggestions: &[],
            },
        ),
        (
            "working directories",
            ExecutionConfig {
                working_directory: "../x".into(),
                ..execution()
            },
            Expect {
                errors: &["working directory '../x'"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "absolute working directory inside",
            ExecutionConfig {
                working_directory: "/srv/apps/blog/src".into(),
                ..execution()
            },
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "absolute working directory outside",
            ExecutionConfig {
                working_directory: "/tmp".into(),
                ..execution()
            },
            Expect {
                errors: &["inside /srv/apps"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "plain and secret variable",
            ExecutionConfig {
                environment: [
                    ("DB".to_owned(), "x".to_owned()),
                    ("API_TOKEN".to_owned(), "t".to_owned()),
                    ("BAD-NAME".to_owned(), "x".to_owned()),
                ]
                .into(),
                secret_environment: [("DB".to_owned(), secret.clone())].into(),
                ..execution()
            },
            Expect {
                errors: &[
                    "DB is both a plain and a secret variable",
                    "'BAD-NAME' is not a valid identifier",
                ],
                warnings: &["API_TOKEN looks like a secret"],
                suggestions: &["move API_TOKEN to the secret environment"],
            },
        ),
        (
            "zero memory",
            ExecutionConfig {
                memory_limit: Some(0),
                ..execution()
            },
            Expect {
                errors: &["memory limit must be positive"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "memory above the VM",
            ExecutionConfig {
                memory_limit: Some(4096),
                ..execution()
            },
            Expect {
                errors: &["4096 MB exceeds the VM's 512 MB"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "cpu limits",
            ExecutionConfig {
                cpu_limit: Some(150.0),
                timeout: Some(0),
                ..execution()
            },
            Expect {
                errors: &["CPU limit 150%", "startup timeout must be positive"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "fine limits",
            ExecutionConfig {
                cpu_limit: Some(50.0),
                memory_limit: Some(256),
                timeout: Some(30),
                ..execution()
            },
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "restart off with a policy",
            ExecutionConfig {
                auto_restart: false,
                restart_policy: RestartPolicy::Always,
                max_retries: Some(3),
                ..execution()
            },
            Expect {
                errors: &["execution.maxRetries can only be used with the 'on-failure' restart policy, not 'always'"],
                warnings: &["'always' has no effect"],
                suggestions: &["clear execution.maxRetries or choose the 'on-failure' policy"],
            },
        ),
        (
            "maxRetries with unless-stopped",
            ExecutionConfig {
                restart_policy: RestartPolicy::UnlessStopped,
                max_retries: Some(1),
                ..execution()
            },
            Expect {
                errors: &["maxRetries can only be used with the 'on-failure' restart policy, not 'unless-stopped'"],
                warnings: &[],
                suggestions: &["choose the 'on-failure' policy"],
            },
        ),
        (
            "maxRetries with never",
            ExecutionConfig {
                restart_policy: RestartPolicy::Never,
                max_retries: Some(3),
                ..execution()
            },
            Expect {
                errors: &["not 'never'"],
                warnings: &[],
                suggestions: &["clear execution.maxRetries"],
            },
        ),
        (
            "maxRetries 0 is Docker's none and fits any policy",
            ExecutionConfig {
                restart_policy: RestartPolicy::Always,
                max_retries: Some(0),
                ..execution()
            },
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "maxRetries with on-failure",
            ExecutionConfig {
                restart_policy: RestartPolicy::OnFailure,
                max_retries: Some(5),
                ..execution()
            },
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "health check fine",
            ExecutionConfig {
                health_check_config: Some(health.clone()),
                ..execution()
            },
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "health check broken",
            ExecutionConfig {
                port: None,
                health_check_config: Some(HealthCheckConfig {
                    interval: 0,
                    retries: 0,
                    path: Some("healthz".into()),
                    ..health.clone()
                }),
                ..execution()
            },
            Expect {
                errors: &[
                    "interval must be positive",
                    "retries must be positive",
                    "must start with '/'",
                    "needs a port",
                ],
                warnings: &["no port", "timeout is longer than its interval"],
                suggestions: &[],
            },
        ),
        (
            "health check disabled",
            ExecutionConfig {
                health_check_config: Some(HealthCheckConfig {
                    enabled: false,
                    interval: 0,
                    ..health
                }),
                ..execution()
            },
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
    ];
    for (name, config, expect) in &cases {
        check(name, &rules.validate_execution_config(config), expect);
    }
}

#[test]
fn secret_looking_names_table() {
    let cases = [
        ("GITHUB_TOKEN", true),
        ("STRIPE_KEY", true),
        ("api_key", true),
        ("AWS_SECRET_ACCESS_KEY", true),
        ("DB_PASSWORD", true),
        ("PASSWORD", true),
        ("SMTP_PASS", true),
        ("SENTRY_DSN", true),
        ("GOOGLE_APPLICATION_CREDENTIALS", true),
        ("SSH_PRIVATE_KEY_PATH", true),
        ("PWD", false),
        ("PORT", false),
        ("NODE_ENV", false),
        ("KEYBOARD_LAYOUT", false),
        ("SORT_KEYS", false),
        ("PASSENGER_COUNT", false),
    ];
    for (name, expected) in cases {
        assert_eq!(
            crate::domain::validation::looks_secret(name),
            expected,
            "{name}"
        );
    }
}
