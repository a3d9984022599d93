//! Rules on where an application's files come from and how its process runs.

use std::collections::BTreeSet;

use super::ValidationRules;
use crate::model::{
    Application, BuildConfig, DeploymentConfig, DeploymentSource, ExecutionConfig, FileRef,
    HealthCheckConfig, RestartPolicy, Sha256, SourceConfig, ValidationResult,
};

/// Longest build timeout accepted without a warning, in seconds.
const LONG_BUILD_TIMEOUT: u32 = 3600;

impl ValidationRules<'_> {
    /// The path stays inside the app area, the entry point is present, each source type has
    /// its own fields (GitHub `owner/name`, hex commit SHA, http(s) URL only, …) and the
    /// build timeout is positive.
    pub fn validate_deployment_config(&self, config: &DeploymentConfig) -> ValidationResult {
        let mut result = ValidationResult::ok();
        check_deployment_path(&config.deployment_path, &mut result);
        if config.entry_point.trim().is_empty() {
            result.error("entry point is missing");
            result.suggest("name the file that starts the app, e.g. 'index.js' or 'app.py'");
        } else {
            check_relative_path("entry point", &config.entry_point, &mut result);
        }
        let source = &config.source_config;
        match config.source_type {
            DeploymentSource::Upload => check_upload(config, &mut result),
            DeploymentSource::Github => check_github(source, &mut result),
            DeploymentSource::Url => check_url(source, &mut result),
            DeploymentSource::LocalSync => {
                if source
                    .local_path
                    .as_deref()
                    .is_none_or(|path| path.trim().is_empty())
                {
                    result.error("local sync needs the folder to sync (localPath)");
                }
            }
        }
        warn_unused_source_fields(config.source_type, source, &mut result);
        if let Some(build) = &config.build_config {
            check_build(build, &mut result);
        }
        result
    }

    /// Command present, variable names valid and not both plain and secret, limits within
    /// the VM, health check settings usable, restart settings consistent. Ports are checked
    /// by the network rule.
    pub fn validate_execution_config(&self, config: &ExecutionConfig) -> ValidationResult {
        let mut result = ValidationResult::ok();
        if config.command.trim().is_empty() {
            result.error("startup command is missing");
        }
        if !config.working_directory.is_empty() && !config.working_directory.starts_with('/') {
            check_relative_path("working directory", &config.working_directory, &mut result);
        } else if !config.working_directory.is_empty() {
            check_deployment_path(&config.working_directory, &mut result);
        }
        check_variable_names("environment", config.environment.keys(), &mut result);
        check_variable_names(
            "secret environment",
            config.secret_environment.keys(),
            &mut result,
        );
        for name in config.environment.keys() {
            if config.secret_environment.contains_key(name) {
                result.error(format!(
                    "variable {name} is both a plain and a secret variable"
                ));
            } else if looks_secret(name) {
                result.warn(format!("plain variable {name} looks like a secret"));
                result.suggest(format!("move {name} to the secret environment"));
            }
        }
        if config.port.is_none() {
            result.warn("no port: the app cannot be opened in the browser");
        }
        match config.memory_limit {
            Some(0) => result.error("memory limit must be positive"),
            Some(limit) if limit > self.vm_memory() => result.error(format!(
                "memory limit {limit} MB exceeds the VM's {} MB",
                self.vm_memory()
            )),
            _ => {}
        }
        if let Some(cpu) = config.cpu_limit {
            if !(cpu > 0.0 && cpu <= 100.0) {
                result.error(format!("CPU limit {cpu}% must be above 0 and at most 100"));
            }
        }
        if config.timeout == Some(0) {
            result.error("startup timeout must be positive");
        }
        if !config.auto_restart && config.restart_policy != RestartPolicy::Never {
            result.warn(format!(
                "restart policy '{}' has no effect while autoRestart is off",
                config.restart_policy
            ));
        }
        // Docker refuses a maximum retry count with any other policy (moby
        // `api/types/container/hostconfig.go` `ValidateRestartPolicy`); 0 means none there.
        if config.max_retries.is_some_and(|max| max > 0)
            && config.restart_policy != RestartPolicy::OnFailure
        {
            result.error(format!(
                "execution.maxRetries can only be used with the 'on-failure' restart policy, \
                 not '{}'",
                config.restart_policy
            ));
            result.suggest("clear execution.maxRetries or choose the 'on-failure' policy");
        }
        if let Some(health) = &config.health_check_config {
            check_health(health, config.port.is_some(), &mut result);
        }
        result
    }
}

/// Errors unless `path` is a relative path without `..`, NUL or backslash.
fn check_relative_path(label: &str, path: &str, result: &mut ValidationResult) {
    if path.trim().is_empty() {
        result.error(format!("{label} is empty"));
    } else if path.starts_with('/') {
        result.error(format!("{label} '{path}' must be relative"));
    } else if path.contains(['\0', '\\']) {
        result.error(format!("{label} '{path}' contains a NUL or backslash"));
    } else if path.split('/').any(|part| part == "..") {
        result.error(format!("{label} '{path}' must not contain '..'"));
    }
}

impl<'a> ValidationRules<'a> {
    /// No two applications share a deployment folder or nest one inside the other:
    /// deleting or redeploying one would remove or replace the other's files.
    pub fn validate_deployment_path_unique(&self, application: &Application) -> ValidationResult {
        let mut result = ValidationResult::ok();
        let own = absolute_deployment_path(&application.deployment.deployment_path);
        let others = |users: &[&'a Application]| -> Vec<&'a Application> {
            users
                .iter()
                .filter(|other| self.conflicts_with(application.id, other.id))
                .copied()
                .collect()
        };
        if let Some(users) = self.deployment_paths.get(&own) {
            for other in others(users) {
                result.error(format!(
                    "deployment path '{own}' is already used by '{}'",
                    other.name
                ));
            }
        }
        // Folders that hold this one, then folders inside it (one lookup per level, one
        // range scan), so checking every application of a large import stays fast.
        let outer = own
            .match_indices('/')
            .map(|(at, _)| &own[..at])
            .filter(|prefix| !prefix.is_empty());
        let inner_start = format!("{own}/");
        let inner_end = format!("{own}0");
        let nested = outer
            .filter_map(|prefix| self.deployment_paths.get_key_value(prefix))
            .chain(self.deployment_paths.range::<str, _>((
                std::ops::Bound::Included(inner_start.as_str()),
                std::ops::Bound::Excluded(inner_end.as_str()),
            )));
        for (theirs, users) in nested {
            for other in others(users) {
                result.error(format!(
                    "deployment path '{own}' overlaps '{}''s '{theirs}': one is inside the other",
                    other.name
                ));
            }
        }
        let conventional = DeploymentConfig::default_path(&application.name);
        if !result.valid && conventional != own {
            result.suggest(format!("use {conventional}"));
        }
        result
    }
}

/// A deployment path as an absolute path without trailing slashes (relative ones are
/// inside the app area).
pub(super) fn absolute_deployment_path(path: &str) -> String {
    let path = path.trim_end_matches('/');
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", DeploymentConfig::APP_AREA)
    }
}

/// Errors unless `path` is a directory strictly inside the app area: either relative to it
/// or absolute under it, without `..`.
fn check_deployment_path(path: &str, result: &mut ValidationResult) {
    let area = DeploymentConfig::APP_AREA;
    if path.starts_with('/') {
        match path
            .strip_prefix(area)
            .and_then(|rest| rest.strip_prefix('/'))
        {
            Some(inside) if !inside.trim_matches('/').is_empty() => {
                check_relative_path("deployment path", inside, result);
            }
            _ => {
                result.error(format!(
                    "deployment path '{path}' must be a directory inside {area}"
                ));
            }
        }
    } else {
        check_relative_path("deployment path", path, result);
    }
}

fn check_upload(config: &DeploymentConfig, result: &mut ValidationResult) {
    // A draft has no files yet: they are picked when it is deployed.
    let files: &[FileRef] = config.source_config.files.as_deref().unwrap_or_default();
    if files.is_empty() {
        return;
    }
    let mut paths = BTreeSet::new();
    for file in files {
        check_relative_path("uploaded file path", &file.path, result);
        // Upper-case hex digits are accepted here, as they always were.
        if Sha256::parse(&file.sha256.to_ascii_lowercase()).is_err() {
            result.error(format!(
                "uploaded file '{}' has no valid SHA-256 (64 hex digits)",
                file.path
            ));
        }
        if !paths.insert(file.path.as_str()) {
            result.error(format!("uploaded file '{}' appears twice", file.path));
        }
    }
    let built = config
        .build_config
        .as_ref()
        .is_some_and(|build| build.enabled);
    if !built && !paths.contains(config.entry_point.as_str()) && !config.entry_point.is_empty() {
        result.warn(format!(
            "entry point '{}' is not among the uploaded files",
            config.entry_point
        ));
    }
}

fn check_github(source: &SourceConfig, result: &mut ValidationResult) {
    match source.repository.as_deref() {
        None | Some("") => result.error("GitHub source needs a repository (owner/name)"),
        Some(repository) if !is_github_repository(repository) => {
            result.error(format!(
                "repository '{repository}' is not in owner/name form"
            ));
            let trimmed = repository
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_start_matches("github.com/")
                .trim_end_matches('/')
                .trim_end_matches(".git");
            if is_github_repository(trimmed) {
                result.suggest(format!("use '{trimmed}'"));
            }
        }
        Some(_) => {}
    }
    if let Some(branch) = source.branch.as_deref() {
        if !is_git_branch(branch) {
            result.error(format!("branch '{branch}' is not a valid git branch name"));
        }
    }
    if let Some(commit) = source.commit.as_deref() {
        let length = commit.len();
        if !is_hex(commit) || !(7..=64).contains(&length) {
            result.error(format!("commit '{commit}' is not a hex SHA"));
        } else if length < 40 {
            result.warn(format!(
                "commit '{commit}' is abbreviated; it may become ambiguous"
            ));
        }
        if source.branch.is_some() {
            result.warn("both branch and commit are set; the commit is used");
        }
    }
}

fn check_url(source: &SourceConfig, result: &mut ValidationResult) {
    let Some(url) = source.url.as_deref().filter(|url| !url.is_empty()) else {
        result.error("URL source needs a URL");
        return;
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        result.error(format!(
            "URL '{url}' has no scheme; use http:// or https://"
        ));
        return;
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        result.error(format!(
            "URL scheme '{scheme}' is not allowed; use http or https"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        result.error("URL must not contain credentials");
    }
    let host_and_port = authority.rsplit('@').next().unwrap_or_default();
    let (host_name, port) = match host_and_port.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((address, after)) => (address, after.strip_prefix(':')),
            None => ("", None),
        },
        None => match host_and_port.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host_and_port, None),
        },
    };
    if host_name.is_empty() {
        result.error(format!("URL '{url}' has no host"));
    }
    if port.is_some_and(|port| port.parse::<u16>().is_err()) {
        result.error(format!("URL '{url}' has an invalid port"));
    }
    if url.chars().any(char::is_whitespace) {
        result.error(format!("URL '{url}' contains whitespace"));
    }
    if scheme == "http" {
        result.warn("plain http can be altered in transit; prefer https");
    }
}

fn warn_unused_source_fields(
    source_type: DeploymentSource,
    source: &SourceConfig,
    result: &mut ValidationResult,
) {
    let fields = [
        ("files", source.files.is_some(), DeploymentSource::Upload),
        (
            "repository",
            source.repository.is_some(),
            DeploymentSource::Github,
        ),
        ("branch", source.branch.is_some(), DeploymentSource::Github),
        ("commit", source.commit.is_some(), DeploymentSource::Github),
        ("token", source.token.is_some(), DeploymentSource::Github),
        ("url", source.url.is_some(), DeploymentSource::Url),
        (
            "localPath",
            source.local_path.is_some(),
            DeploymentSource::LocalSync,
        ),
        (
            "watchEnabled",
            source.watch_enabled.is_some(),
            DeploymentSource::LocalSync,
        ),
    ];
    for (field, present, owner) in fields {
        if present && owner != source_type {
            result.warn(format!(
                "{field} is ignored for source type '{source_type}'"
            ));
        }
    }
}

fn check_build(build: &BuildConfig, result: &mut ValidationResult) {
    if build.timeout == 0 {
        result.error("build timeout must be positive");
    } else if build.timeout > LONG_BUILD_TIMEOUT {
        result.warn(format!(
            "build timeout of {} s is over an hour",
            build.timeout
        ));
    }
    if build.enabled && build.build_command.trim().is_empty() {
        result.error("build is enabled but has no build command");
    }
    if !build.build_directory.is_empty() {
        check_relative_path("build directory", &build.build_directory, result);
    }
    check_variable_names("build environment", build.environment_vars.keys(), result);
}

fn check_health(health: &HealthCheckConfig, has_port: bool, result: &mut ValidationResult) {
    if !health.enabled {
        return;
    }
    let positive = [
        ("interval", health.interval),
        ("timeout", health.timeout),
        ("retries", health.retries),
    ];
    for (field, value) in positive {
        if value == 0 {
            result.error(format!("health check {field} must be positive"));
        }
    }
    if health
        .path
        .as_deref()
        .is_some_and(|path| !path.starts_with('/'))
    {
        result.error("health check path must start with '/'");
    }
    if !has_port {
        result.error("the HTTP health check needs a port");
    }
    if health.timeout > health.interval {
        result.warn("health check timeout is longer than its interval");
    }
}

fn check_variable_names<'n>(
    label: &str,
    names: impl Iterator<Item = &'n String>,
    result: &mut ValidationResult,
) {
    for name in names {
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            result.error(format!(
                "{label} variable name '{name}' is not a valid identifier"
            ));
        }
    }
}

/// Whether a variable's name says it holds a secret (`*_TOKEN`, `*_KEY`, `PASSWORD`,
/// `*_SECRET`, credentials…), so a plain one is offered a move to the secret environment.
/// `PWD` (the working directory) and `*_KEY_ID`-style names of public identifiers are not.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let last = words.last().copied().unwrap_or_default();
    const ANYWHERE: [&str; 6] = [
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "TOKEN",
        "CREDENTIAL",
    ];
    ANYWHERE.iter().any(|marker| upper.contains(marker))
        || matches!(last, "KEY" | "PASS" | "PAT" | "DSN" | "CREDENTIALS")
        || upper.contains("PRIVATE_KEY")
        || upper.contains("API_KEY")
}

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_hexdigit())
}

fn is_github_repository(text: &str) -> bool {
    let Some((owner, name)) = text.split_once('/') else {
        return false;
    };
    let owner_ok = (1..=39).contains(&owner.len())
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !owner.starts_with('-')
        && !owner.ends_with('-');
    let name_ok = (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "."
        && name != "..";
    owner_ok && name_ok
}

/// git's ref-name rules, as far as a branch name needs them.
fn is_git_branch(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(['-', '/'])
        && !text.ends_with(['/', '.'])
        && !text.ends_with(".lock")
        && !text.contains("..")
        && !text.contains("@{")
        && !text.contains("//")
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
}
