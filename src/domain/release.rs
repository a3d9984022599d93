//! Atomic releases of an application in the guest (Capistrano-style): where each release
//! goes, what `current` points at, which releases are kept and which pruned, where a roll
//! back goes, the steps of a deployment with their status and progress, and the guest shell
//! scripts that carry it out, including the clean-up after a deployment a reload interrupted
//! (pure strings, every value quoted with [`quote`]; which deployments were interrupted is
//! `app_registry`'s `recover_interrupted`).
//!
//! ```text
//! <root>/releases/<deployment-id>/       one per deploy (<root>: the deployment path,
//!                                        default /srv/apps/<name>; relative paths are
//!                                        relative to /srv/apps)
//! <root>/current -> releases/<id>[/<buildDirectory>]
//!        switched by `ln -sfn <target> current.tmp-<id> && mv -T current.tmp-<id> current`
//!        (an atomic rename) only after the release is complete and its build succeeded
//! ```
//!
//! A release is a completed deployment that is not a roll back. The newest
//! `releases_kept` releases are kept, the current one always among them; a roll back
//! switches `current` to the kept release before the current one.

use std::fmt::Write as _;

use uuid::Uuid;

use crate::model::{BuildConfig, DeploymentConfig, DeploymentOperation, DeploymentStatus};

/// The folder of the releases, under the app's root.
pub const RELEASES_DIR: &str = "releases";
/// The symlink the app is served or run from, under the app's root.
pub const CURRENT_LINK: &str = "current";
/// Exit status of [`extract_script`] when the release folder exists already.
pub const EXIT_RELEASE_EXISTS: i32 = 17;
/// Exit status of [`switch_script`] when the folder `current` would point at is missing.
pub const EXIT_TARGET_MISSING: i32 = 18;

/// Why a release could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error(
        "deployment path '{path}' must be a folder inside {}",
        DeploymentConfig::APP_AREA
    )]
    PathOutside { path: String },
    #[error("deployment path '{path}' {why}")]
    PathInvalid { path: String, why: &'static str },
    #[error("build directory '{directory}' {why}")]
    BuildDirectory {
        directory: String,
        why: &'static str,
    },
    #[error("build variable '{name}' is not a valid variable name (letters, digits and '_', not starting with a digit)")]
    VariableName { name: String },
    #[error("build timeout must be at least 1 second")]
    ZeroTimeout,
    #[error("build command is empty")]
    EmptyBuildCommand,
    #[error("no release is current, so there is nothing to roll back from")]
    NoCurrent,
    #[error("there is no earlier release to roll back to (the last {kept} releases are kept)")]
    NoEarlierRelease { kept: u32 },
    #[error("release {0} is the one being made current and cannot be pruned")]
    PruneCurrent(Uuid),
}

/// The folders of one application in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPaths {
    root: String,
}

impl AppPaths {
    /// The application's folders: its deployment path.
    pub fn of(deployment: &DeploymentConfig) -> Result<Self, ReleaseError> {
        AppPaths::parse(deployment.deployment_path.trim())
    }

    /// A deployment path, absolute under `/srv/apps` or relative to it.
    pub fn parse(deployment_path: &str) -> Result<Self, ReleaseError> {
        let invalid = |why| ReleaseError::PathInvalid {
            path: deployment_path.to_string(),
            why,
        };
        if deployment_path.chars().any(char::is_control) {
            return Err(invalid("contains a NUL or control character"));
        }
        if deployment_path.contains('\\') {
            return Err(invalid("contains a backslash"));
        }
        let area = DeploymentConfig::APP_AREA;
        let relative = if deployment_path.starts_with('/') {
            deployment_path
                .strip_prefix(area)
                .and_then(|rest| rest.strip_prefix('/'))
                .ok_or_else(|| ReleaseError::PathOutside {
                    path: deployment_path.to_string(),
                })?
        } else {
            deployment_path
        };
        let mut segments = Vec::new();
        for segment in relative.split('/') {
            match segment {
                "" | "." => {}
                ".." => return Err(invalid("must not contain '..'")),
                name => segments.push(name),
            }
        }
        if segments.is_empty() {
            return Err(ReleaseError::PathOutside {
                path: deployment_path.to_string(),
            });
        }
        Ok(AppPaths {
            root: format!("{area}/{}", segments.join("/")),
        })
    }

    /// The application's folder, e.g. `/srv/apps/blog`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// `<root>/releases`.
    pub fn releases(&self) -> String {
        format!("{}/{RELEASES_DIR}", self.root)
    }

    /// `<root>/releases/<id>`.
    pub fn release(&self, id: Uuid) -> String {
        format!("{}/{}", self.root, release_relative(id))
    }

    /// `<root>/current`.
    pub fn current(&self) -> String {
        format!("{}/{CURRENT_LINK}", self.root)
    }
}

/// `releases/<id>`, relative to the root.
fn release_relative(id: Uuid) -> String {
    format!("{RELEASES_DIR}/{id}")
}

/// The folder, relative to the release, that `current` points at: the normalized build
/// directory when a build is enabled and names one, else `""` (the release itself).
pub fn served_directory(build: Option<&BuildConfig>) -> Result<String, ReleaseError> {
    let Some(build) = build.filter(|build| build.enabled) else {
        return Ok(String::new());
    };
    let directory = build.build_directory.trim();
    let refuse = |why| ReleaseError::BuildDirectory {
        directory: directory.to_string(),
        why,
    };
    if directory.starts_with('/') {
        return Err(refuse("must be relative to the release folder"));
    }
    if directory.chars().any(char::is_control) {
        return Err(refuse("contains a NUL or control character"));
    }
    if directory.contains('\\') {
        return Err(refuse("contains a backslash"));
    }
    let mut segments = Vec::new();
    for segment in directory.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(refuse("must not contain '..'")),
            name => segments.push(name),
        }
    }
    Ok(segments.join("/"))
}

/// What `current` points at, relative to the root: `releases/<id>[/<served>]`.
pub fn current_target(release: Uuid, served: &str) -> String {
    if served.is_empty() {
        release_relative(release)
    } else {
        format!("{}/{served}", release_relative(release))
    }
}

/// The releases in `history` (completed deployments, roll backs excluded), newest first.
pub fn releases(history: &[DeploymentOperation]) -> Vec<&DeploymentOperation> {
    let mut releases: Vec<&DeploymentOperation> = history
        .iter()
        .filter(|operation| {
            operation.status == DeploymentStatus::Completed && operation.rollback_to.is_none()
        })
        .collect();
    releases.sort_by(|a, b| b.start_time.cmp(&a.start_time).then(b.id.cmp(&a.id)));
    releases
}

/// The releases kept when `current` is current: it, and the newest others up to `keep` in
/// all (at least 1), newest first.
pub fn kept_releases(
    history: &[DeploymentOperation],
    current: Option<Uuid>,
    keep: u32,
) -> Vec<&DeploymentOperation> {
    let keep = keep.max(1) as usize;
    let all = releases(history);
    let has_current = current.is_some_and(|id| all.iter().any(|release| release.id == id));
    let mut others = keep - usize::from(has_current);
    all.into_iter()
        .filter(|release| {
            if Some(release.id) == current {
                true
            } else if others > 0 {
                others -= 1;
                true
            } else {
                false
            }
        })
        .collect()
}

/// The releases to delete once `current` is current (it may be a deployment that is not
/// completed yet in `history`: the one being deployed). A release pruned earlier is listed
/// again, and removing it again is a no-op.
pub fn releases_to_prune(history: &[DeploymentOperation], current: Uuid, keep: u32) -> Vec<Uuid> {
    let others = keep.max(1) as usize - 1;
    releases(history)
        .into_iter()
        .filter(|release| release.id != current)
        .skip(others)
        .map(|release| release.id)
        .collect()
}

/// The release a roll back switches to: the kept release just before the current one.
pub fn rollback_target(
    history: &[DeploymentOperation],
    current: Option<Uuid>,
    keep: u32,
) -> Result<&DeploymentOperation, ReleaseError> {
    let current = current.ok_or(ReleaseError::NoCurrent)?;
    let kept = kept_releases(history, Some(current), keep);
    let position = kept
        .iter()
        .position(|release| release.id == current)
        .ok_or(ReleaseError::NoCurrent)?;
    kept.get(position + 1)
        .copied()
        .ok_or(ReleaseError::NoEarlierRelease { kept: keep.max(1) })
}

/// The steps of a deployment in the guest, each with the status it reports and the progress
/// it starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployStep {
    /// The archive goes into the VM.
    Copying,
    /// One command unpacks it into the release folder.
    Extracting,
    /// The build command runs.
    Building,
    /// `current` switches to the release; old releases are pruned.
    Switching,
}

impl DeployStep {
    /// The deployment status during this step.
    pub fn status(self) -> DeploymentStatus {
        match self {
            DeployStep::Copying | DeployStep::Extracting => DeploymentStatus::Uploading,
            DeployStep::Building => DeploymentStatus::Building,
            DeployStep::Switching => DeploymentStatus::Deploying,
        }
    }

    /// Progress (0–100) when the step starts (`preparing`, fetching and packing the
    /// files, has 0–30).
    pub fn progress(self) -> u8 {
        match self {
            DeployStep::Copying => 30,
            DeployStep::Extracting => 40,
            DeployStep::Building => 50,
            DeployStep::Switching => 90,
        }
    }

    /// The steps of a deployment, in order.
    pub fn plan(build: bool) -> Vec<DeployStep> {
        let mut steps = vec![DeployStep::Copying, DeployStep::Extracting];
        if build {
            steps.push(DeployStep::Building);
        }
        steps.push(DeployStep::Switching);
        steps
    }
}

/// `text` as one POSIX shell word: single-quoted, each `'` written as `'\''`.
pub fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for character in text.chars() {
        if character == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(character);
        }
    }
    quoted.push('\'');
    quoted
}

/// How the build runs: `sh -c "$buildCommand"` in the release folder with the build's
/// variables; the time limit is the agent's (it kills the process group), not a shell's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInvocation {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub timeout_ms: u64,
    /// The limit in seconds, for the error.
    pub timeout_secs: u32,
}

/// The build of `release` as [`BuildConfig`] says (variable names and the timeout checked).
pub fn build_invocation(
    paths: &AppPaths,
    release: Uuid,
    build: &BuildConfig,
) -> Result<BuildInvocation, ReleaseError> {
    if build.build_command.trim().is_empty() {
        return Err(ReleaseError::EmptyBuildCommand);
    }
    if build.timeout == 0 {
        return Err(ReleaseError::ZeroTimeout);
    }
    let mut env = Vec::new();
    for (name, value) in &build.environment_vars {
        let valid = name
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ReleaseError::VariableName { name: name.clone() });
        }
        env.push((name.clone(), value.clone()));
    }
    Ok(BuildInvocation {
        argv: vec!["sh".into(), "-c".into(), build.build_command.clone()],
        env,
        cwd: paths.release(release),
        timeout_ms: u64::from(build.timeout) * 1000,
        timeout_secs: build.timeout,
    })
}

/// Unpacks the pushed `archive` into a new `releases/<id>` (failing with
/// [`EXIT_RELEASE_EXISTS`] if it exists already); a failed unpack removes the folder. The
/// archive is deleted either way (silently where the share is read-only).
pub fn extract_script(paths: &AppPaths, release: Uuid, archive: &str) -> String {
    format!(
        r#"root={root}
release={release}
archive={archive}
if [ -e "$release" ] || [ -L "$release" ]; then
  echo "release folder $release already exists" >&2
  rm -f -- "$archive" 2>/dev/null
  exit {exists}
fi
mkdir -p -- "$root/{RELEASES_DIR}" && mkdir -- "$release" || exit 1
tar -xzf "$archive" -C "$release" --no-same-owner
status=$?
[ "$status" -eq 0 ] || rm -rf -- "$release"
rm -f -- "$archive" 2>/dev/null
exit "$status""#,
        root = quote(paths.root()),
        release = quote(&paths.release(release)),
        archive = quote(archive),
        exists = EXIT_RELEASE_EXISTS,
    )
}

/// Packs the release `release` into the plain tar `out` (for a backup archive), its
/// paths relative to the release folder; exits with [`EXIT_TARGET_MISSING`] when the
/// release is gone. A failed pack leaves no partial `out`.
pub fn pack_release_script(paths: &AppPaths, release: Uuid, out: &str) -> String {
    format!(
        r#"release={release}
out={out}
if [ ! -d "$release" ]; then
  echo "release folder $release is not in the VM" >&2
  exit {missing}
fi
tar -cf "$out" -C "$release" . || {{ rm -f -- "$out"; exit 1; }}"#,
        release = quote(&paths.release(release)),
        out = quote(out),
        missing = EXIT_TARGET_MISSING,
    )
}

/// The two lines that point `current` at `target` atomically (a temporary link renamed
/// over it), from the root folder.
fn switch_lines(script: &mut String, target: &str, temp: &str) {
    let _ = writeln!(
        script,
        "ln -sfn -- {target} {temp} && mv -Tf -- {temp} {CURRENT_LINK} || {{ rm -f -- {temp}; exit 1; }}",
        target = quote(target),
        temp = quote(temp),
    );
}

/// `current.tmp-<id>`.
fn temp_link(id: Uuid) -> String {
    format!("{CURRENT_LINK}.tmp-{id}")
}

/// Switches `current` to `release` (its `served` folder) atomically, after checking the
/// folder exists ([`EXIT_TARGET_MISSING`] otherwise), then deletes the `prune` releases
/// (only `releases/<id>` folders; failing to delete one is a warning, not a failure).
pub fn switch_script(
    paths: &AppPaths,
    release: Uuid,
    served: &str,
    prune: &[Uuid],
) -> Result<String, ReleaseError> {
    if prune.contains(&release) {
        return Err(ReleaseError::PruneCurrent(release));
    }
    let target = current_target(release, served);
    let mut script = format!(
        "cd -- {root} || exit 1\nif [ ! -d {target} ]; then\n  echo {missing} >&2\n  exit {EXIT_TARGET_MISSING}\nfi\n",
        root = quote(paths.root()),
        target = quote(&target),
        missing = quote(&format!("'{target}' is not a folder in the VM")),
    );
    switch_lines(&mut script, &target, &temp_link(release));
    if !prune.is_empty() {
        let folders: Vec<String> = prune
            .iter()
            .map(|id| quote(&release_relative(*id)))
            .collect();
        let _ = writeln!(
            script,
            "rm -rf -- {} || echo 'warning: some old releases could not be removed' >&2",
            folders.join(" ")
        );
    }
    script.push_str("exit 0");
    Ok(script)
}

/// Applies a synced folder's changes to the kept release `release` in place (local sync with
/// watch): deletes `delete` (paths relative to the release, already checked to stay inside
/// it), then unpacks `archive` (the changed files, if any) over the release. Exits with
/// [`EXIT_TARGET_MISSING`] when the release is gone; the archive is always removed.
pub fn sync_script(
    paths: &AppPaths,
    release: Uuid,
    delete: &[String],
    archive: Option<&str>,
) -> String {
    let folder = paths.release(release);
    let remove_archive = archive
        .map(|archive| format!("rm -f -- {} 2>/dev/null; ", quote(archive)))
        .unwrap_or_default();
    let mut script = format!(
        "if [ ! -d {folder} ]; then\n  echo {missing} >&2\n  {remove_archive}exit {EXIT_TARGET_MISSING}\nfi\ncd -- {folder} || exit 1\n",
        folder = quote(&folder),
        missing = quote(&format!("release folder {folder} is not in the VM any more")),
    );
    if !delete.is_empty() {
        let quoted: Vec<String> = delete.iter().map(|path| quote(path)).collect();
        let _ = writeln!(script, "rm -rf -- {} || exit 1", quoted.join(" "));
    }
    match archive {
        Some(archive) => {
            let _ = write!(
                script,
                "tar -xzf {archive} --no-same-owner\nstatus=$?\nrm -f -- {archive} 2>/dev/null\nexit \"$status\"",
                archive = quote(archive),
            );
        }
        None => script.push_str("exit 0"),
    }
    script
}

/// What deleting an application removes in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The paths to name in the confirmation: the app's folder, `current` and the
    /// releases.
    pub paths: Vec<String>,
    /// The script: removes the app's folder (always strictly inside `/srv/apps`).
    pub script: String,
}

/// The removal of an application's files.
pub fn removal(paths: &AppPaths) -> Removal {
    Removal {
        paths: vec![paths.root().to_string(), paths.current(), paths.releases()],
        script: format!("rm -rf -- {}", quote(paths.root())),
    }
}

/// The guest paths deleting the application removes, for the confirmation (none when its
/// deployment path is unusable: then nothing is removed either).
pub fn paths_to_remove(deployment: &DeploymentConfig) -> Vec<String> {
    AppPaths::of(deployment)
        .map(|paths| removal(&paths).paths)
        .unwrap_or_default()
}

/// Cleans up after an interrupted deployment or roll back (`interrupted`): deletes its
/// pushed `archive` and its release folder, and points `current` back at the record's
/// current release (`current`: its id and served folder) if that is still there, or removes
/// `current` when the record has none and it points into the interrupted release.
pub fn cleanup_script(
    paths: &AppPaths,
    interrupted: Uuid,
    current: Option<(Uuid, &str)>,
    archive: &str,
) -> String {
    let mut script = format!(
        "rm -f -- {archive} 2>/dev/null\ncd -- {root} 2>/dev/null || exit 0\nrm -f -- {temp}\n",
        archive = quote(archive),
        root = quote(paths.root()),
        temp = quote(&temp_link(interrupted)),
    );
    match current {
        Some((release, served)) => {
            let target = current_target(release, served);
            let _ = writeln!(script, "if [ -d {} ]; then", quote(&target));
            switch_lines(&mut script, &target, &temp_link(interrupted));
            script.push_str("fi\n");
        }
        None => {
            let own = release_relative(interrupted);
            let _ = writeln!(
                script,
                "case \"$(readlink {CURRENT_LINK} 2>/dev/null)\" in {own}|{own}/*) rm -f -- {CURRENT_LINK} ;; esac",
                own = quote(&own),
            );
        }
    }
    if current.is_none_or(|(release, _)| release != interrupted) {
        let _ = writeln!(
            script,
            "rm -rf -- {}",
            quote(&release_relative(interrupted))
        );
    }
    script.push_str("exit 0");
    script
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Duration;

    use super::*;
    use crate::domain::lifecycle::StateMachine;
    use crate::domain::testing::{application, now};

    fn uuid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// Deployment `n`, started `n` minutes after the fixture's time.
    fn deployment(n: u128, status: DeploymentStatus) -> DeploymentOperation {
        let mut operation =
            DeploymentOperation::new(uuid(n), uuid(999), now() + Duration::minutes(n as i64));
        operation.status = status;
        operation
    }

    fn completed(n: u128) -> DeploymentOperation {
        deployment(n, DeploymentStatus::Completed)
    }

    fn ids(operations: &[&DeploymentOperation]) -> Vec<u128> {
        operations
            .iter()
            .map(|operation| operation.id.as_u128())
            .collect()
    }

    #[test]
    fn paths_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("/srv/apps/blog", Ok("/srv/apps/blog")),
            ("/srv/apps/team/blog/", Ok("/srv/apps/team/blog")),
            ("blog", Ok("/srv/apps/blog")),
            ("./team//blog", Ok("/srv/apps/team/blog")),
            ("my site", Ok("/srv/apps/my site")),
            ("/srv/apps", Err("must be a folder inside /srv/apps")),
            ("/srv/apps/", Err("must be a folder inside /srv/apps")),
            ("/srv/appsx/blog", Err("must be a folder inside /srv/apps")),
            ("/etc", Err("must be a folder inside /srv/apps")),
            ("../etc", Err("must not contain '..'")),
            ("/srv/apps/a/../../etc", Err("must not contain '..'")),
            (".", Err("must be a folder inside /srv/apps")),
            ("a\\b", Err("contains a backslash")),
            ("a\nb", Err("contains a NUL or control character")),
        ];
        for (path, expected) in cases {
            let got = AppPaths::parse(path)
                .map(|paths| paths.root().to_string())
                .map_err(|error| error.to_string());
            match expected {
                Ok(root) => assert_eq!(got.as_deref(), Ok(*root), "{path}"),
                Err(part) => {
                    let error = got.expect_err(path);
                    assert!(error.contains(part), "{path}: {error}");
                }
            }
        }
    }

    #[test]
    fn release_naming() {
        let paths = AppPaths::of(&application("blog").deployment).expect("valid");
        let id = uuid(7);
        assert_eq!(paths.root(), "/srv/apps/blog");
        assert_eq!(paths.releases(), "/srv/apps/blog/releases");
        assert_eq!(
            paths.release(id),
            "/srv/apps/blog/releases/00000000-0000-0000-0000-000000000007"
        );
        assert_eq!(paths.current(), "/srv/apps/blog/current");
        assert_eq!(
            current_target(id, ""),
            "releases/00000000-0000-0000-0000-000000000007"
        );
        assert_eq!(
            current_target(id, "dist/web"),
            "releases/00000000-0000-0000-0000-000000000007/dist/web"
        );
    }

    #[test]
    fn served_directory_table() {
        let build = |enabled: bool, directory: &str| BuildConfig {
            enabled,
            build_command: "make".into(),
            build_directory: directory.into(),
            ..BuildConfig::default()
        };
        let cases: &[(Option<BuildConfig>, Result<&str, &str>)] = &[
            (None, Ok("")),
            (Some(build(false, "dist")), Ok("")),
            (Some(build(true, "")), Ok("")),
            (Some(build(true, ".")), Ok("")),
            (Some(build(true, "dist")), Ok("dist")),
            (Some(build(true, "./public/build/")), Ok("public/build")),
            (
                Some(build(true, "/dist")),
                Err("must be relative to the release folder"),
            ),
            (Some(build(true, "../dist")), Err("must not contain '..'")),
            (Some(build(true, "a/../../x")), Err("must not contain '..'")),
            (Some(build(true, "a\\b")), Err("contains a backslash")),
            (Some(build(true, "a\0")), Err("contains a NUL")),
        ];
        for (build, expected) in cases {
            let got = served_directory(build.as_ref()).map_err(|error| error.to_string());
            match expected {
                Ok(served) => assert_eq!(got.as_deref(), Ok(*served), "{build:?}"),
                Err(part) => {
                    let error = got.expect_err("refused");
                    assert!(error.starts_with("build directory '"), "{error}");
                    assert!(error.contains(part), "{error}");
                }
            }
        }
    }

    /// (current, keep, kept newest first, pruned once current).
    type RetentionCase = (Option<u128>, u32, &'static [u128], &'static [u128]);

    #[test]
    fn retention_table() {
        // 1..=5 completed, 6 failed, 7 a roll back, 8 in progress.
        let mut history: Vec<DeploymentOperation> = (1..=5).map(completed).collect();
        history.push(deployment(6, DeploymentStatus::Failed));
        let mut rollback = completed(7);
        rollback.rollback_to = Some(uuid(3));
        history.push(rollback);
        history.push(deployment(8, DeploymentStatus::Building));
        assert_eq!(ids(&releases(&history)), vec![5, 4, 3, 2, 1]);
        let cases: &[RetentionCase] = &[
            // (current, keep, kept newest first, pruned once current)
            (Some(5), 3, &[5, 4, 3], &[2, 1]),
            (Some(5), 1, &[5], &[4, 3, 2, 1]),
            (Some(5), 0, &[5], &[4, 3, 2, 1]),
            (Some(5), 10, &[5, 4, 3, 2, 1], &[]),
            // After a roll back to 3 the current one is always kept.
            (Some(3), 2, &[5, 3], &[4, 2, 1]),
            (Some(1), 3, &[5, 4, 1], &[3, 2]),
            // The deployment being made current (not completed yet).
            (Some(8), 3, &[5, 4, 3], &[3, 2, 1]),
            (None, 2, &[5, 4], &[]),
        ];
        for (current, keep, kept, pruned) in cases {
            let current = current.map(uuid);
            assert_eq!(
                ids(&kept_releases(&history, current, *keep)),
                kept.to_vec(),
                "kept with {current:?}, {keep}"
            );
            if let Some(current) = current {
                let got: Vec<u128> = releases_to_prune(&history, current, *keep)
                    .iter()
                    .map(|id| id.as_u128())
                    .collect();
                assert_eq!(got, pruned.to_vec(), "pruned with {current}, {keep}");
            }
        }
    }

    #[test]
    fn pruned_after_a_deploy_matches_what_is_kept() {
        // Deploy 8 on top of 1..=5 keeping 3: 8, 5, 4 stay; 3, 2, 1 go.
        let history: Vec<DeploymentOperation> = (1..=5).map(completed).collect();
        let pruned = releases_to_prune(&history, uuid(8), 3);
        assert_eq!(pruned, vec![uuid(3), uuid(2), uuid(1)]);
        let mut after = history.clone();
        after.push(completed(8));
        assert_eq!(ids(&kept_releases(&after, Some(uuid(8)), 3)), vec![8, 5, 4]);
    }

    #[test]
    fn roll_back_table() {
        let history: Vec<DeploymentOperation> = (1..=4).map(completed).collect();
        let cases: &[(Option<u128>, u32, Result<u128, &str>)] = &[
            (Some(4), 3, Ok(3)),
            (Some(3), 3, Ok(2)),
            // 2 is current: kept are 4, 3, 2; nothing older is kept.
            (
                Some(2),
                3,
                Err("there is no earlier release to roll back to (the last 3 releases are kept)"),
            ),
            (Some(4), 1, Err("no earlier release")),
            (Some(1), 5, Err("no earlier release")),
            (None, 3, Err("no release is current")),
            (Some(42), 3, Err("no release is current")),
        ];
        for (current, keep, expected) in cases {
            let got = rollback_target(&history, current.map(uuid), *keep)
                .map(|release| release.id.as_u128())
                .map_err(|error| error.to_string());
            match expected {
                Ok(id) => assert_eq!(got, Ok(*id), "{current:?} {keep}"),
                Err(part) => assert!(got.expect_err("refused").contains(part)),
            }
        }
    }

    #[test]
    fn deployment_steps_follow_the_state_machine() {
        for build in [false, true] {
            let plan = DeployStep::plan(build);
            assert_eq!(plan.contains(&DeployStep::Building), build);
            let mut status = DeploymentStatus::Preparing;
            let mut progress = 0;
            for step in &plan {
                if step.status() != status {
                    status = status
                        .transition(step.status())
                        .unwrap_or_else(|error| panic!("{step:?}: {error}"));
                }
                assert!(step.progress() > progress, "{step:?} moves progress on");
                progress = step.progress();
            }
            assert!(progress < 100);
            assert_eq!(status, DeploymentStatus::Deploying);
            assert!(status.can_become(DeploymentStatus::Completed));
            // A failure at any step is a legal transition.
            for step in &plan {
                assert!(
                    step.status().can_become(DeploymentStatus::Failed),
                    "{step:?}"
                );
            }
        }
        // What the machine refuses: no going back, no skipping to completed.
        let refused = [
            (DeploymentStatus::Building, DeploymentStatus::Uploading),
            (DeploymentStatus::Uploading, DeploymentStatus::Completed),
            (DeploymentStatus::Completed, DeploymentStatus::Deploying),
            (DeploymentStatus::Failed, DeploymentStatus::Preparing),
        ];
        for (from, to) in refused {
            assert!(from.transition(to).is_err(), "{from} -> {to}");
        }
    }

    #[test]
    fn quote_table() {
        let cases = [
            ("plain", "'plain'"),
            ("", "''"),
            ("it's", "'it'\\''s'"),
            ("''", "''\\'''\\'''"),
            (
                "$(rm -rf /) `x` $HOME \\ \" ;&|",
                "'$(rm -rf /) `x` $HOME \\ \" ;&|'",
            ),
            ("new\nline", "'new\nline'"),
            ("-rf", "'-rf'"),
            ("ünï *?[]", "'ünï *?[]'"),
        ];
        for (text, quoted) in cases {
            assert_eq!(quote(text), quoted, "{text:?}");
        }
    }

    fn paths(root: &str) -> AppPaths {
        AppPaths::parse(root).expect("valid")
    }

    #[test]
    fn build_invocation_table() {
        let app = paths("/srv/apps/it's");
        let mut build = BuildConfig {
            enabled: true,
            build_command: "npm ci && npm run build".into(),
            build_directory: "dist".into(),
            environment_vars: BTreeMap::from([
                ("NODE_ENV".to_string(), "production".to_string()),
                ("_X1".to_string(), "a b'c".to_string()),
            ]),
            timeout: 2,
        };
        let run = build_invocation(&app, uuid(1), &build).expect("valid");
        assert_eq!(run.argv, vec!["sh", "-c", "npm ci && npm run build"]);
        assert_eq!(
            run.cwd,
            "/srv/apps/it's/releases/00000000-0000-0000-0000-000000000001"
        );
        assert_eq!((run.timeout_ms, run.timeout_secs), (2000, 2));
        assert_eq!(run.env[1], ("_X1".to_string(), "a b'c".to_string()));
        type Refusal = (fn(&mut BuildConfig), &'static str);
        let refusals: [Refusal; 4] = [
            (|b| b.timeout = 0, "build timeout must be at least 1 second"),
            (|b| b.build_command = "  ".into(), "build command is empty"),
            (
                |b| {
                    b.environment_vars.insert("A=B".into(), String::new());
                },
                "build variable 'A=B' is not a valid variable name",
            ),
            (
                |b| {
                    b.environment_vars.insert("1X".into(), String::new());
                },
                "build variable '1X'",
            ),
        ];
        for (change, message) in refusals {
            let mut broken = build.clone();
            change(&mut broken);
            let error = build_invocation(&app, uuid(1), &broken).expect_err(message);
            assert!(error.to_string().starts_with(message), "{error}");
        }
        build.enabled = false;
        assert!(build_invocation(&app, uuid(1), &build).is_ok());
    }

    #[test]
    fn extract_script_quotes_and_refuses_an_existing_release() {
        let script = extract_script(&paths("/srv/apps/it's"), uuid(1), "/mnt/host/.d 1.tar.gz");
        let expected = [
            "root='/srv/apps/it'\\''s'\n",
            "release='/srv/apps/it'\\''s/releases/00000000-0000-0000-0000-000000000001'\n",
            "archive='/mnt/host/.d 1.tar.gz'\n",
            "exit 17\n",
            "mkdir -p -- \"$root/releases\" && mkdir -- \"$release\" || exit 1\n",
            "tar -xzf \"$archive\" -C \"$release\" --no-same-owner\n",
            "[ \"$status\" -eq 0 ] || rm -rf -- \"$release\"\n",
        ];
        for part in expected {
            assert!(script.contains(part), "{part:?} in\n{script}");
        }
        assert!(
            !script.contains("timeout "),
            "the agent enforces time limits"
        );
    }

    #[test]
    fn switch_script_is_atomic_and_prunes_only_releases() {
        let app = paths("/srv/apps/blog");
        let script = switch_script(&app, uuid(9), "dist", &[uuid(2), uuid(1)]).expect("valid");
        let target = "releases/00000000-0000-0000-0000-000000000009/dist";
        let temp = "current.tmp-00000000-0000-0000-0000-000000000009";
        assert_eq!(
            script,
            format!(
                "cd -- '/srv/apps/blog' || exit 1\n\
                 if [ ! -d '{target}' ]; then\n  echo ''\\''{target}'\\'' is not a folder in the VM' >&2\n  exit 18\nfi\n\
                 ln -sfn -- '{target}' '{temp}' && mv -Tf -- '{temp}' current || {{ rm -f -- '{temp}'; exit 1; }}\n\
                 rm -rf -- 'releases/00000000-0000-0000-0000-000000000002' 'releases/00000000-0000-0000-0000-000000000001' || echo 'warning: some old releases could not be removed' >&2\n\
                 exit 0"
            )
        );
        let plain = switch_script(&app, uuid(9), "", &[]).expect("valid");
        assert!(plain.contains("ln -sfn -- 'releases/00000000-0000-0000-0000-000000000009' "));
        assert!(!plain.contains("rm -rf"));
        assert_eq!(
            switch_script(&app, uuid(9), "", &[uuid(9)]),
            Err(ReleaseError::PruneCurrent(uuid(9)))
        );
    }

    #[test]
    fn removal_lists_and_removes_the_app_folder_only() {
        let app = paths("team/my 'site'");
        let removal = removal(&app);
        assert_eq!(
            removal.paths,
            vec![
                "/srv/apps/team/my 'site'",
                "/srv/apps/team/my 'site'/current",
                "/srv/apps/team/my 'site'/releases",
            ]
        );
        assert_eq!(
            removal.script,
            "rm -rf -- '/srv/apps/team/my '\\''site'\\'''"
        );
        let mut deployment = application("blog").deployment;
        assert_eq!(paths_to_remove(&deployment)[0], "/srv/apps/blog");
        deployment.deployment_path = "/etc".into();
        assert!(paths_to_remove(&deployment).is_empty());
    }

    #[test]
    fn cleanup_script_restores_current_and_removes_the_partial_release() {
        let app = paths("/srv/apps/blog");
        let own = "releases/00000000-0000-0000-0000-000000000005";
        let with_current =
            cleanup_script(&app, uuid(5), Some((uuid(4), "dist")), "/mnt/host/a.tgz");
        for part in [
            "rm -f -- '/mnt/host/a.tgz' 2>/dev/null\n",
            "cd -- '/srv/apps/blog' 2>/dev/null || exit 0\n",
            "if [ -d 'releases/00000000-0000-0000-0000-000000000004/dist' ]; then\nln -sfn -- 'releases/00000000-0000-0000-0000-000000000004/dist' ",
            &format!("rm -rf -- '{own}'\nexit 0"),
        ] {
            assert!(with_current.contains(part), "{part:?} in\n{with_current}");
        }
        let without = cleanup_script(&app, uuid(5), None, "/mnt/host/a.tgz");
        assert!(without.contains(&format!(
            "case \"$(readlink current 2>/dev/null)\" in '{own}'|'{own}'/*) rm -f -- current ;; esac\n"
        )));
        // The record's current release is never removed.
        let same = cleanup_script(&app, uuid(4), Some((uuid(4), "")), "/mnt/host/a.tgz");
        assert!(!same.contains("rm -rf"), "{same}");
    }
}
