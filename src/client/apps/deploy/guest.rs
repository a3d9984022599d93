//! The browser half of deploying: the steps of [`run`] and the other guest changes, each one
//! agent round trip (see the parent module).

use std::rc::Rc;

use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::StreamExt;
use uuid::Uuid;

use super::{DeployError, DeployReporter, Release, Retention};
use crate::client::apps::bundle::Bundle;
use crate::client::apps::local_sync::SyncPlan;
use crate::client::vm::{
    bridge, guest_env_pairs, ExecCommand, ExecResult, ExitStatus, ProcessEvent,
};
use crate::client::vm_controller::VmController;
use crate::domain::app_logs::LineAssembler;
use crate::domain::lifecycle::StateMachine;
use crate::domain::release::{
    build_invocation, cleanup_script, current_target, extract_script, releases_to_prune, removal,
    served_directory, switch_script, sync_script, AppPaths, BuildInvocation, DeployStep,
    EXIT_RELEASE_EXISTS, EXIT_TARGET_MISSING,
};
use crate::model::{Application, DeployLimits, DeploymentOperation, DeploymentStatus};

/// Where the page → guest share is mounted in the guest (both engines).
const GUEST_SHARE: &str = "/mnt/host";
/// Time limit of the unpack, switch and removal commands.
const SCRIPT_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// How long past the build's own limit the page waits before it gives up on the agent.
const BUILD_GRACE_MS: u64 = 30_000;
/// Longest build-log line kept, in bytes (longer ones continue on the next line).
const BUILD_LOG_LINE_BYTES: usize = 2000;

/// Where a deployment's archive goes: straight into the share, so pushing it is one write.
fn archive_path(deployment: Uuid) -> String {
    format!("{GUEST_SHARE}/.webvm-deploy-{deployment}.tar.gz")
}

/// `bytes` in MiB, for the log.
fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The last non-empty line of a command's stderr (or stdout), or what happened.
fn reason(result: &ExecResult) -> String {
    let text = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .rev()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(str::to_string)
    };
    text(&result.stderr)
        .or_else(|| text(&result.stdout))
        .unwrap_or_else(|| match (result.timed_out, result.status) {
            (true, _) => "it took too long and was stopped".to_string(),
            (false, ExitStatus::Code(code)) => format!("exit code {code}"),
            (false, ExitStatus::Signal { signal, .. }) => format!("killed by signal {signal}"),
        })
}

/// Runs `sh -c script` in the guest with the guest's environment.
async fn shell(vm: &VmController, script: String) -> Result<ExecResult, DeployError> {
    let mut command = ExecCommand::shell(script);
    command.env = guest_env_pairs();
    command.timeout_ms = Some(SCRIPT_TIMEOUT_MS);
    vm.exec(command).await.map_err(DeployError::Vm)
}

/// Moves the deployment through its steps, each status change checked by the lifecycle.
struct Steps<'a> {
    status: DeploymentStatus,
    reporter: &'a dyn DeployReporter,
}

impl Steps<'_> {
    fn enter(&mut self, step: DeployStep, detail: &str) -> Result<(), DeployError> {
        if step.status() != self.status {
            self.status = self.status.transition(step.status())?;
        }
        self.reporter.step(self.status, step.progress(), detail);
        Ok(())
    }
}

/// Deploys `bundle` as the release `deployment` of `application` (see the module docs).
/// The deployment is `preparing` when this is called; it returns at `deploying`, the caller
/// recording `completed` (and saving a VM checkpoint) or `failed`.
pub async fn run(
    vm: VmController,
    application: &Application,
    deployment: Uuid,
    bundle: Bundle,
    retention: Retention<'_>,
    reporter: &dyn DeployReporter,
) -> Result<Release, DeployError> {
    // Everything is planned before the VM is touched.
    let paths = AppPaths::of(&application.deployment)?;
    let build_config = application.deployment.build_config.as_ref();
    let served = served_directory(build_config)?;
    let build = build_config
        .filter(|build| build.enabled)
        .map(|build| build_invocation(&paths, deployment, build))
        .transpose()?;
    let pruned = releases_to_prune(retention.history, deployment, retention.releases_kept);
    let switch = switch_script(&paths, deployment, &served, &pruned)?;
    let archive = archive_path(deployment);
    let (file_count, total_bytes) = (bundle.file_count, bundle.total_bytes);
    let mut steps = Steps {
        status: DeploymentStatus::Preparing,
        reporter,
    };

    steps.enter(
        DeployStep::Copying,
        &format!("copying {} into the VM", mib(bundle.tar_gz.len() as u64)),
    )?;
    let packed = bundle.tar_gz.len() as u64;
    if let Err(error) = vm.push_file(archive.clone(), bundle.tar_gz).await {
        let _ = vm.discard_pushed_file(&archive).await;
        return Err(DeployError::Copy(error));
    }
    reporter.log(&format!("copied {} into the VM ({archive})", mib(packed)));

    steps.enter(
        DeployStep::Extracting,
        &format!(
            "unpacking {file_count} files into {}",
            paths.release(deployment)
        ),
    )?;
    let unpacked = shell(&vm, extract_script(&paths, deployment, &archive)).await;
    let _ = vm.discard_pushed_file(&archive).await;
    let unpacked = unpacked?;
    match unpacked.exit_code() {
        Some(0) => reporter.log(&format!(
            "unpacked {file_count} files ({}) into {}",
            mib(total_bytes),
            paths.release(deployment)
        )),
        Some(EXIT_RELEASE_EXISTS) => {
            return Err(DeployError::ReleaseExists(paths.release(deployment)));
        }
        // The script removed the partial folder itself.
        _ => return Err(DeployError::Extract(reason(&unpacked))),
    }

    let finished = async {
        if let Some(build) = &build {
            steps.enter(
                DeployStep::Building,
                &format!("running `{}`", build.argv[2]),
            )?;
            run_build(&vm, build, reporter).await?;
        }
        steps.enter(
            DeployStep::Switching,
            &format!(
                "switching {} to {}",
                paths.current(),
                current_target(deployment, &served)
            ),
        )?;
        let switched = shell(&vm, switch).await?;
        match switched.exit_code() {
            Some(0) => Ok(switched),
            Some(EXIT_TARGET_MISSING) if !served.is_empty() => {
                Err(DeployError::BuildDirectoryMissing(served.clone()))
            }
            Some(EXIT_TARGET_MISSING) => Err(DeployError::ReleaseMissing(deployment)),
            _ => Err(DeployError::Switch(reason(&switched))),
        }
    }
    .await;
    let switched = match finished {
        Ok(switched) => switched,
        Err(error) => {
            let current = retention.current_release();
            let script = cleanup_script(
                &paths,
                deployment,
                current.as_ref().map(|(id, served)| (*id, served.as_str())),
                &archive,
            );
            match shell(&vm, script).await {
                Ok(result) if result.status.success() => {
                    reporter.log(&format!(
                        "removed the partial release {}",
                        paths.release(deployment)
                    ));
                }
                Ok(result) => reporter.log(&format!(
                    "warning: the partial release could not be removed: {}",
                    reason(&result)
                )),
                Err(cleanup) => reporter.log(&format!(
                    "warning: the partial release could not be removed: {cleanup}"
                )),
            }
            return Err(error);
        }
    };
    for line in String::from_utf8_lossy(&switched.stderr).lines() {
        reporter.log(line);
    }
    reporter.log(&format!(
        "{} -> {}",
        paths.current(),
        current_target(deployment, &served)
    ));
    if !pruned.is_empty() {
        let names: Vec<String> = pruned.iter().map(Uuid::to_string).collect();
        reporter.log(&format!("old releases removed: {}", names.join(", ")));
    }
    Ok(Release {
        served_directory: served,
        file_count,
        total_bytes,
        pruned,
    })
}

/// Runs the build with its output streamed into the log; Ok when it exits with 0.
async fn run_build(
    vm: &VmController,
    build: &BuildInvocation,
    reporter: &dyn DeployReporter,
) -> Result<(), DeployError> {
    let mut env: Vec<(String, String)> = guest_env_pairs()
        .into_iter()
        .filter(|(name, _)| !build.env.iter().any(|(own, _)| own == name))
        .collect();
    env.extend(build.env.iter().cloned());
    let command = ExecCommand {
        command: build.argv[0].clone(),
        args: build.argv[1..].to_vec(),
        env,
        cwd: Some(build.cwd.clone()),
        timeout_ms: Some(build.timeout_ms),
    };
    reporter.log(&format!(
        "$ {}   (in {}, limit {} s)",
        build.argv[2], build.cwd, build.timeout_secs
    ));
    let (sender, mut events) = mpsc::unbounded::<ProcessEvent>();
    let listener = Rc::new(move |event: ProcessEvent| {
        let _ = sender.unbounded_send(event);
    });
    let process = vm
        .spawn_process(command, listener)
        .await
        .map_err(DeployError::BuildNotStarted)?;
    // The same line cutting and sanitizing as an app's output; blank lines are left out.
    let (mut stdout, mut stderr) = (
        LineAssembler::new(BUILD_LOG_LINE_BYTES),
        LineAssembler::new(BUILD_LOG_LINE_BYTES),
    );
    let shown = |line: &String| !line.trim().is_empty();
    let mut last_error = String::new();
    let mut guard = Box::pin(bridge::sleep(build.timeout_ms + BUILD_GRACE_MS));
    loop {
        let event = match select(events.next(), guard).await {
            Either::Left((event, pending)) => {
                guard = pending;
                event
            }
            Either::Right(_) => {
                // The agent did not end it in time: kill its process group from here.
                let _ = vm.signal(process.id, 9).await;
                return Err(DeployError::BuildTimedOut(build.timeout_secs));
            }
        };
        match event {
            Some(ProcessEvent::Stdout(bytes)) => {
                for line in stdout.push(&bytes).into_iter().filter(shown) {
                    reporter.log(&line);
                }
            }
            Some(ProcessEvent::Stderr(bytes)) => {
                for line in stderr.push(&bytes).into_iter().filter(shown) {
                    reporter.log(&line);
                    last_error = line;
                }
            }
            Some(ProcessEvent::Exited(exit)) => {
                if let Some(line) = stdout.flush().filter(shown) {
                    reporter.log(&line);
                }
                if let Some(line) = stderr.flush().filter(shown) {
                    reporter.log(&line);
                    last_error = line;
                }
                let detail = if last_error.is_empty() {
                    String::new()
                } else {
                    format!(": {last_error}")
                };
                return match exit.status {
                    _ if exit.timed_out => Err(DeployError::BuildTimedOut(build.timeout_secs)),
                    ExitStatus::Code(0) => {
                        reporter.log("build succeeded");
                        Ok(())
                    }
                    ExitStatus::Code(code) => Err(DeployError::BuildFailed { code, detail }),
                    ExitStatus::Signal { signal, .. } => {
                        Err(DeployError::BuildKilled { signal, detail })
                    }
                };
            }
            Some(ProcessEvent::Lost(reason)) => return Err(DeployError::BuildLost(reason)),
            None => return Err(DeployError::BuildLost("the VM stopped".to_string())),
        }
    }
}

/// Switches `current` to the kept release `release` (its `served_directory`) atomically:
/// a roll back. Fails, leaving `current` as it was, when that release is gone.
pub async fn switch_to(
    vm: VmController,
    application: &Application,
    release: Uuid,
    served_directory: &str,
) -> Result<(), DeployError> {
    let paths = AppPaths::of(&application.deployment)?;
    let result = shell(&vm, switch_script(&paths, release, served_directory, &[])?).await?;
    match result.exit_code() {
        Some(0) => Ok(()),
        Some(EXIT_TARGET_MISSING) => Err(DeployError::ReleaseMissing(release)),
        _ => Err(DeployError::Switch(reason(&result))),
    }
}

/// Removes the application's folder from the guest (what
/// `domain::release::paths_to_remove` lists).
pub async fn remove_application_files(
    vm: VmController,
    application: &Application,
) -> Result<(), DeployError> {
    let paths = AppPaths::of(&application.deployment)?;
    let result = shell(&vm, removal(&paths).script).await?;
    if result.status.success() {
        Ok(())
    } else {
        Err(DeployError::Remove(reason(&result)))
    }
}

/// After a reload: removes what the interrupted `deployment` (a release or a roll back)
/// left in the guest (its archive, its release folder) and points `current` back at the
/// record's `current` release (or removes a `current` that points into the interrupted
/// release when the record has none).
pub async fn clean_interrupted(
    vm: VmController,
    application: &Application,
    deployment: Uuid,
    current: Option<&DeploymentOperation>,
) -> Result<(), DeployError> {
    let paths = AppPaths::of(&application.deployment)?;
    let current = current.map(|operation| {
        (
            operation.rollback_to.unwrap_or(operation.id),
            operation.served_directory.clone().unwrap_or_default(),
        )
    });
    let archive = archive_path(deployment);
    let script = cleanup_script(
        &paths,
        deployment,
        current.as_ref().map(|(id, served)| (*id, served.as_str())),
        &archive,
    );
    let result = shell(&vm, script).await;
    let _ = vm.discard_pushed_file(&archive).await;
    let result = result?;
    if result.status.success() {
        Ok(())
    } else {
        Err(DeployError::Cleanup(reason(&result)))
    }
}

/// What [`apply_sync`] changed in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncApplied {
    /// Files written (new or changed).
    pub written: u32,
    /// Files and folders deleted.
    pub deleted: u32,
    /// Bytes of the written files.
    pub bytes: u64,
}

/// Applies a watched folder's changes to the release `release` in place (deletions first,
/// then the changed files as one archive): one push and one EXEC, whatever the number of
/// files. The files are checked by the archive rules before the VM is touched.
pub async fn apply_sync(
    vm: VmController,
    application: &Application,
    release: Uuid,
    plan: SyncPlan,
    limits: &DeployLimits,
) -> Result<SyncApplied, DeployError> {
    let paths = AppPaths::of(&application.deployment)?;
    let bundle = if plan.files.is_empty() {
        None
    } else {
        Some(
            Bundle::pack_changes(&plan.files, limits, |_| bridge::sleep(0))
                .await
                .map_err(DeployError::Changes)?,
        )
    };
    let archive = format!("{GUEST_SHARE}/.webvm-sync-{release}.tar.gz");
    let applied = SyncApplied {
        written: bundle.as_ref().map_or(0, |bundle| bundle.file_count),
        deleted: plan.delete.len() as u32,
        bytes: bundle.as_ref().map_or(0, |bundle| bundle.total_bytes),
    };
    let pushed = bundle.is_some();
    if let Some(bundle) = bundle {
        if let Err(error) = vm.push_file(archive.clone(), bundle.tar_gz).await {
            let _ = vm.discard_pushed_file(&archive).await;
            return Err(DeployError::Copy(error));
        }
    }
    let script = sync_script(
        &paths,
        release,
        &plan.delete,
        pushed.then_some(archive.as_str()),
    );
    let result = shell(&vm, script).await;
    if pushed {
        let _ = vm.discard_pushed_file(&archive).await;
    }
    let result = result?;
    match result.exit_code() {
        Some(0) => Ok(applied),
        Some(EXIT_TARGET_MISSING) => Err(DeployError::ReleaseMissing(release)),
        _ => Err(DeployError::Extract(reason(&result))),
    }
}
