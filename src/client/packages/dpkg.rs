//! The guest side of package operations: [`RuntimeInstaller`] and today's implementation,
//! dpkg inside the emulated guest through the guest agent ([`DpkgInstaller`]), with the line
//! runner that streams a command's output into the operation's log.

use std::collections::BTreeMap;
use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::StreamExt;
use uuid::Uuid;

use crate::client::vm::{guest_env_pairs, ExecCommand, ExitStatus, ProcessEvent, VmError};
use crate::client::vm_controller::VmController;
use crate::domain::package_install::{
    parse_dpkg_status, DpkgState, InstallPlan, Phase, RemovalPlan, GUEST_DEB_PREFIX, POLICY_RC_D,
};

/// Where the 9p share is mounted in the guest.
pub(super) const GUEST_SHARE: &str = "/mnt/host";

/// Where a verified `.deb` of `operation` goes in the guest (straight into the share).
fn pushed_path(operation: Uuid, file: &str) -> String {
    format!("{GUEST_SHARE}/{GUEST_DEB_PREFIX}{operation}-{file}")
}
/// A dpkg call or script may run this long.
const STEP_TIMEOUT_MS: u64 = 30 * 60 * 1000;

/// Why a step in the guest failed. The messages go into the operation's log and error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InstallerError {
    /// The command did not start.
    #[error("`{label}` could not start: {reason}")]
    NotStarted { label: String, reason: VmError },
    /// It exited with an error, was killed or timed out; `detail` is `: <last stderr line>`
    /// or empty; `code` is the exit code, if it exited.
    #[error("`{label}` failed ({why}){detail}")]
    Failed {
        label: String,
        why: String,
        detail: String,
        code: Option<i32>,
    },
    /// The guest is not the one a layer was built on (nothing was changed): dpkg installs.
    #[error("the VM is not the one the layer was built on: {0}")]
    LayerMismatch(String),
    /// The guest agent lost it.
    #[error("`{label}` was lost: {reason}")]
    Lost { label: String, reason: String },
    /// A file could not be copied into the guest.
    #[error("could not copy {file} into the VM: {reason}")]
    Copy { file: String, reason: VmError },
    /// An install or post-install script failed.
    #[error("the {label} failed: {source}")]
    Script {
        label: &'static str,
        source: Box<InstallerError>,
    },
    /// dpkg-query could not be run.
    #[error("could not ask dpkg: {0}")]
    Query(VmError),
    /// A command for the check could not be run.
    #[error("{0}")]
    Vm(VmError),
    /// The package database is still inconsistent after a repair.
    #[error("dpkg --audit still reports: {0}")]
    Audit(String),
}

/// Where an operation reports its log lines and progress.
#[derive(Clone)]
pub struct Reporter {
    pub(super) log: Rc<dyn Fn(String)>,
    pub(super) phase: Rc<dyn Fn(Phase, String)>,
}

impl Reporter {
    /// Appends a line to the operation's log.
    pub fn log(&self, line: impl Into<String>) {
        (self.log)(line.into());
    }

    /// Moves the progress bar.
    pub fn phase(&self, phase: Phase, detail: impl Into<String>) {
        (self.phase)(phase, detail.into());
    }
}

/// Carries install and removal plans out in the guest. dpkg inside the emulated guest
/// ([`DpkgInstaller`]) is today's implementation; a faster one (pre-built runtime layers)
/// can replace it without touching the rest.
pub trait RuntimeInstaller {
    /// Installs verified files (`(name, bytes)`, in plan order) as the plan says.
    fn install<'a>(
        &'a self,
        operation: Uuid,
        plan: &'a InstallPlan,
        files: Vec<(String, Vec<u8>)>,
        report: &'a Reporter,
    ) -> LocalBoxFuture<'a, Result<(), InstallerError>>;
    /// Removes what the plan says.
    fn remove<'a>(
        &'a self,
        plan: &'a RemovalPlan,
        report: &'a Reporter,
    ) -> LocalBoxFuture<'a, Result<(), InstallerError>>;
    /// Brings the package database back to a consistent state; `roll_back` lists Debian
    /// packages to take out if they are left half-installed or were new in a failed
    /// install.
    fn repair<'a>(
        &'a self,
        roll_back: &'a [String],
        report: &'a Reporter,
    ) -> LocalBoxFuture<'a, Result<(), InstallerError>>;
    /// The state of these Debian packages in the guest.
    fn query<'a>(
        &'a self,
        names: &'a [String],
    ) -> LocalBoxFuture<'a, Result<BTreeMap<String, DpkgState>, InstallerError>>;
}

/// dpkg inside the guest, through the guest agent.
#[derive(Clone, Copy)]
pub struct DpkgInstaller {
    vm: VmController,
}

impl DpkgInstaller {
    /// The installer of the page's VM.
    pub fn new(vm: VmController) -> Self {
        DpkgInstaller { vm }
    }

    pub(super) fn command(program: &str, args: Vec<String>) -> ExecCommand {
        let mut command = ExecCommand::new(program, args);
        command.env = vec![("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())];
        command.env.extend(guest_env_pairs());
        command.timeout_ms = Some(STEP_TIMEOUT_MS);
        command
    }

    /// Runs a command, streaming its output into the log; Ok when it exits with 0.
    async fn run(&self, command: ExecCommand, report: &Reporter) -> Result<(), InstallerError> {
        let label = {
            let text = command.argv().join(" ");
            if text.chars().count() > 200 {
                format!("{}…", text.chars().take(200).collect::<String>())
            } else {
                text
            }
        };
        self.run_labelled(command, label, report).await
    }

    /// [`Self::run`], the command shown in the log as `label`.
    pub(super) async fn run_labelled(
        &self,
        command: ExecCommand,
        label: String,
        report: &Reporter,
    ) -> Result<(), InstallerError> {
        use futures::channel::mpsc;
        report.log(format!("$ {label}"));
        let (sender, mut events) = mpsc::unbounded::<ProcessEvent>();
        let listener = Rc::new(move |event: ProcessEvent| {
            let _ = sender.unbounded_send(event);
        });
        self.vm
            .spawn_process(command, listener)
            .await
            .map_err(|reason| InstallerError::NotStarted {
                label: label.clone(),
                reason,
            })?;
        let mut pending = [Vec::<u8>::new(), Vec::<u8>::new()];
        let mut last_error_line = String::new();
        let mut emit = |stream: usize, bytes: &[u8], flush: bool, last: &mut String| {
            pending[stream].extend_from_slice(bytes);
            while let Some(end) = pending[stream].iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = pending[stream].drain(..=end).collect();
                let line = String::from_utf8_lossy(&line).trim_end().to_string();
                if !line.is_empty() {
                    if stream == 1 {
                        *last = line.clone();
                    }
                    report.log(line);
                }
            }
            if flush && !pending[stream].is_empty() {
                let line = String::from_utf8_lossy(&pending[stream])
                    .trim_end()
                    .to_string();
                pending[stream].clear();
                if stream == 1 {
                    *last = line.clone();
                }
                report.log(line);
            }
        };
        while let Some(event) = events.next().await {
            match event {
                ProcessEvent::Stdout(bytes) => emit(0, &bytes, false, &mut last_error_line),
                ProcessEvent::Stderr(bytes) => emit(1, &bytes, false, &mut last_error_line),
                ProcessEvent::Exited(exit) => {
                    emit(0, &[], true, &mut last_error_line);
                    emit(1, &[], true, &mut last_error_line);
                    let code = match exit.status {
                        ExitStatus::Code(code) if !exit.timed_out => Some(code),
                        _ => None,
                    };
                    let why = match exit.status {
                        ExitStatus::Code(0) if !exit.timed_out => return Ok(()),
                        _ if exit.timed_out => "it took too long and was stopped".to_string(),
                        ExitStatus::Code(code) => format!("exit code {code}"),
                        ExitStatus::Signal { signal, .. } => {
                            format!("killed by signal {signal}")
                        }
                    };
                    let detail = if last_error_line.is_empty() {
                        String::new()
                    } else {
                        format!(": {last_error_line}")
                    };
                    return Err(InstallerError::Failed {
                        label,
                        why,
                        detail,
                        code,
                    });
                }
                ProcessEvent::Lost(reason) => {
                    return Err(InstallerError::Lost { label, reason });
                }
            }
        }
        Err(InstallerError::Lost {
            label,
            reason: "the VM stopped".into(),
        })
    }

    async fn shell(&self, script: &str, report: &Reporter) -> Result<(), InstallerError> {
        self.run(
            Self::command("sh", vec!["-c".into(), script.to_string()]),
            report,
        )
        .await
    }

    async fn install_inner(
        &self,
        operation: Uuid,
        plan: &InstallPlan,
        files: Vec<(String, Vec<u8>)>,
        report: &Reporter,
    ) -> Result<(), InstallerError> {
        let path = |file: &str| pushed_path(operation, file);
        let total = files.len();
        for (done, (name, bytes)) in files.into_iter().enumerate() {
            report.phase(
                Phase::Pushing { done, total },
                format!("Copying {name} into the VM"),
            );
            self.vm
                .push_file(path(&name), bytes)
                .await
                .map_err(|reason| InstallerError::Copy {
                    file: name.clone(),
                    reason,
                })?;
        }
        report.log(format!(
            "{total} files copied into the VM ({GUEST_SHARE}/{GUEST_DEB_PREFIX}{operation}-*)"
        ));
        self.shell(POLICY_RC_D, report).await?;
        let steps = plan.dpkg_steps.len();
        for (done, step) in plan.dpkg_steps.iter().enumerate() {
            let names: Vec<&str> = step
                .iter()
                .filter_map(|file| crate::domain::package_install::debian_package_name(file))
                .collect();
            report.phase(
                Phase::Installing { done, total: steps },
                format!("dpkg {}/{steps}: {}", done + 1, names.join(", ")),
            );
            // The guest's disk lives in this page's memory and is made durable by VM
            // snapshots, so dpkg's fsync calls buy nothing here and cost a lot in an
            // emulated disk.
            let mut args = vec!["--force-unsafe-io".to_string(), "--install".to_string()];
            args.extend(step.iter().map(|file| path(file)));
            self.run(Self::command("dpkg", args), report).await?;
        }
        report.phase(
            Phase::Installing {
                done: steps,
                total: steps,
            },
            "Configuring",
        );
        self.run(
            Self::command("dpkg", vec!["--configure".into(), "-a".into()]),
            report,
        )
        .await?;
        for (label, script) in [
            ("install script", plan.install_script.as_deref()),
            ("post-install script", plan.post_install_script.as_deref()),
        ] {
            if let Some(script) = script {
                report.phase(Phase::Scripts, format!("Running the {label}"));
                self.shell(script, report)
                    .await
                    .map_err(|error| InstallerError::Script {
                        label,
                        source: Box::new(error),
                    })?;
            }
        }
        Ok(())
    }
}

impl RuntimeInstaller for DpkgInstaller {
    fn install<'a>(
        &'a self,
        operation: Uuid,
        plan: &'a InstallPlan,
        files: Vec<(String, Vec<u8>)>,
        report: &'a Reporter,
    ) -> LocalBoxFuture<'a, Result<(), InstallerError>> {
        Box::pin(async move {
            let pushed: Vec<String> = files
                .iter()
                .map(|(name, _)| pushed_path(operation, name))
                .collect();
            let result = self.install_inner(operation, plan, files, report).await;
            // The copies are not needed any more, whatever happened. A read-only share
            // (CheerpX's) ignores the `rm`; discarding frees those bytes instead.
            let pattern = format!("{GUEST_SHARE}/{GUEST_DEB_PREFIX}{operation}-*");
            let _ = self
                .vm
                .exec(Self::command(
                    "sh",
                    vec!["-c".into(), format!("rm -f {pattern}")],
                ))
                .await;
            for path in &pushed {
                let _ = self.vm.discard_pushed_file(path).await;
            }
            result
        })
    }

    fn remove<'a>(
        &'a self,
        plan: &'a RemovalPlan,
        report: &'a Reporter,
    ) -> LocalBoxFuture<'a, Result<(), InstallerError>> {
        Box::pin(async move {
            if let Some(script) = &plan.pre_remove_script {
                report.phase(Phase::PreRemove, "Running the pre-remove script");
                if let Err(error) = self.shell(script, report).await {
                    report.log(format!(
                        "warning: the pre-remove script failed ({error}); removing anyway"
                    ));
                }
            }
            if plan.debian_packages.is_empty() {
                report.log("no Debian packages to remove (all are shared with other runtimes)");
                return Ok(());
            }
            report.phase(
                Phase::Removing,
                format!("dpkg --remove {}", plan.debian_packages.join(" ")),
            );
            let mut args = vec!["--remove".to_string()];
            args.extend(plan.debian_packages.iter().cloned());
            self.run(Self::command("dpkg", args), report).await
        })
    }

    fn repair<'a>(
        &'a self,
        roll_back: &'a [String],
        report: &'a Reporter,
    ) -> LocalBoxFuture<'a, Result<(), InstallerError>> {
        Box::pin(async move {
            report.log("repairing the package database in the VM");
            let _ = self
                .run(
                    Self::command("dpkg", vec!["--configure".into(), "-a".into()]),
                    report,
                )
                .await;
            let states = self.query(roll_back).await?;
            let present: Vec<String> = roll_back
                .iter()
                .filter(|name| {
                    states
                        .get(*name)
                        .is_some_and(|state| state.installed || state.broken)
                })
                .cloned()
                .collect();
            if !present.is_empty() {
                report.log(format!("rolling back: {}", present.join(", ")));
                let mut args = vec![
                    "--purge".to_string(),
                    "--force-depends".into(),
                    "--force-remove-reinstreq".into(),
                ];
                args.extend(present);
                self.run(Self::command("dpkg", args), report).await?;
            }
            self.run(
                Self::command("dpkg", vec!["--configure".into(), "-a".into()]),
                report,
            )
            .await?;
            let audit = self
                .vm
                .exec(Self::command("dpkg", vec!["--audit".into()]))
                .await
                .map_err(InstallerError::Vm)?;
            let findings = String::from_utf8_lossy(&audit.stdout).trim().to_string();
            if findings.is_empty() {
                report.log("the package database is consistent (dpkg --audit is clean)");
                Ok(())
            } else {
                Err(InstallerError::Audit(findings))
            }
        })
    }

    fn query<'a>(
        &'a self,
        names: &'a [String],
    ) -> LocalBoxFuture<'a, Result<BTreeMap<String, DpkgState>, InstallerError>> {
        Box::pin(async move {
            if names.is_empty() {
                return Ok(BTreeMap::new());
            }
            let mut args = vec![
                "-W".to_string(),
                "-f".into(),
                "${Package} ${db:Status-Abbrev}\\n".into(),
            ];
            args.extend(names.iter().cloned());
            // Exit code 1 only means some names are unknown.
            let result = self
                .vm
                .exec(Self::command("dpkg-query", args))
                .await
                .map_err(InstallerError::Query)?;
            Ok(parse_dpkg_status(&String::from_utf8_lossy(&result.stdout)))
        })
    }
}
