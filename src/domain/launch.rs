//! How an application's process is started in the guest, and what its end means: the
//! argv, working directory, environment and resource limits of one start; the checks a
//! start makes first (business rule 4: memory limits within the VM); the guest's
//! machine-readable notices; OOM kills from cgroup v2's `memory.events`; exit descriptions;
//! the stop grace period and the startup timeout.
//!
//! The agent spawns argv directly (`guest/PROTOCOL.md`: no shell, its own session), so a
//! start is a small POSIX wrapper, [`LaunchPlan::argv`]:
//!
//! ```text
//! sh -c <wrapper> webvm-app-<name> <command> <arguments...>
//! ```
//!
//! The wrapper, in a subshell (so none of its variables reach the app's environment; `$$`
//! there is still the wrapper's pid):
//!
//! 1. refuses a port that is taken: a socket in `LISTEN` state (`st` `0A`) on the primary
//!    or an additional port in `/proc/net/tcp` or `/proc/net/tcp6`, its owner found by
//!    matching `socket:[inode]` among the `/proc/<pid>/fd/*` links (the lowest pid wins,
//!    the master of a forking server), prints [`PortInUse`](LaunchNotice::PortInUse) and
//!    exits [`EXIT_PORT_IN_USE`] (98, Linux's `EADDRINUSE`). The check is a courtesy: it
//!    races with other starts, and a bind that still fails shows in the app's own log;
//! 2. when a limit is set, applies it with cgroup v2 (mounting it at the root if it is not
//!    there yet): `+memory`/`+cpu` in the root's and the `webvm` group's
//!    `cgroup.subtree_control`, the group `<root>/webvm/<name>`, `memory.max` in bytes
//!    (`memory.swap.max` 0 where it exists), `cpu.max` as `<quota> 100000` (quota = percent
//!    × 1000, so 100 % is one core), then moves itself into the group. A limit that can't
//!    be applied prints [`LimitUnsupported`](LaunchNotice::LimitUnsupported) and the app
//!    starts without it, as on a kernel without the controller;
//! 3. changes to the working directory ([`EXIT_NO_DIRECTORY`] and
//!    [`NoDirectory`](LaunchNotice::NoDirectory) when it is missing), checks the command
//!    with `command -v` ([`EXIT_NO_COMMAND`] and [`NoCommand`](LaunchNotice::NoCommand)),
//!    and `exec`s it, so the app keeps the wrapper's pid, session and group.
//!
//! Every value in the wrapper is a literal quoted with [`quote`] or a number; the command
//! and its arguments are only ever `"$@"`. The environment (plain variables, the decrypted
//! secrets, `PORT`) travels in the `EXEC`'s `env` fields, never on a command line, where
//! every process in the guest could read it. Notices are lines on stderr starting with
//! [`NOTICE_PREFIX`]; an app could print one too, so a notice is a message for the user,
//! never a decision.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use super::release::{quote, AppPaths, ReleaseError};
use crate::model::{AppName, Application, Port};

/// Where the guest's cgroup v2 hierarchy is (mounted there by the wrapper if needed).
pub const GUEST_CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The group under the cgroup root that holds one group per application.
pub const CGROUP_PARENT: &str = "webvm";
/// The period of `cpu.max`, µs (the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota `cpu.max` accepts, µs.
pub const CPU_MIN_QUOTA_US: u64 = 1_000;
/// The first word of every notice line the wrapper prints on stderr.
pub const NOTICE_PREFIX: &str = "webvm-launch: ";
/// Exit status of the wrapper when the working directory is missing.
pub const EXIT_NO_DIRECTORY: i32 = 97;
/// Exit status of the wrapper when a port is taken (Linux's `EADDRINUSE`).
pub const EXIT_PORT_IN_USE: i32 = 98;
/// Exit status of the wrapper when the command is not found (the shell's own).
pub const EXIT_NO_COMMAND: i32 = 127;
/// The working directory to `EXEC` [`LaunchPlan::argv`] in: the wrapper changes to
/// [`LaunchPlan::cwd`] itself, so a missing folder is a notice, not an agent `ERROR`.
pub const SPAWN_CWD: &str = "/";
/// How long a stop waits between SIGTERM and SIGKILL (both to the process group):
/// `docker stop`'s default of 10 s.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// The startup timeout of an app whose runtime has no default of its own.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Runtime family (or command) → default startup timeout in seconds, the presets' values
/// (`domain::presets`). Python is slow to start in v86: `python3 -c 'import json,
/// sqlite3, http.server'` alone takes 7.7–16 s there.
const STARTUP_DEFAULTS: &[(&str, u32)] = &[
    ("python", 60),
    ("flask", 60),
    ("django", 60),
    ("gunicorn", 60),
    ("nodejs", 45),
    ("node", 45),
    ("nginx", 30),
    ("busybox", 20),
];

/// Why an application can't be started.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LaunchError {
    #[error("the startup command is missing")]
    NoCommand,
    #[error("the startup command contains a control character")]
    CommandControl,
    #[error("argument {index} of the startup command contains a NUL character")]
    ArgumentNul { index: usize },
    #[error("{app} has no port: set one, the app is reached on it and told it in PORT")]
    NoPort { app: String },
    #[error("environment variable name '{name}' is not valid (letters, digits and '_', not starting with a digit)")]
    VariableName { name: String },
    #[error("the value of environment variable {name} contains a NUL character")]
    VariableNul { name: String },
    #[error("secret variable {name} could not be decrypted; enter its value again")]
    SecretMissing { name: String },
    #[error("working directory '{path}' {why}")]
    WorkingDirectory { path: String, why: &'static str },
    #[error(transparent)]
    Deployment(#[from] ReleaseError),
    #[error("the memory limit must be positive")]
    MemoryLimitZero,
    #[error("the CPU limit {percent}% must be a positive number")]
    CpuLimit { percent: f64 },
    #[error("starting {app} needs {needs} MB but the VM has only {vm} MB")]
    MemoryLimitTooLarge { app: String, needs: u64, vm: u64 },
    #[error("starting {app} needs {needs} MB; running apps already reserve {reserved} MB of the VM's {vm} MB ({holders})")]
    MemoryBudget {
        app: String,
        needs: u64,
        reserved: u64,
        vm: u64,
        /// `blog 128 MB, api 72 MB`.
        holders: String,
    },
}

/// Where the wrapper finds cgroup v2, and whether it may mount it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroups {
    pub root: String,
    /// `mount -t cgroup2 none <root>` when `<root>/cgroup.controllers` is missing.
    pub mount: bool,
}

impl Cgroups {
    /// The guest's: [`GUEST_CGROUP_ROOT`], mounted on first use.
    pub fn guest() -> Self {
        Cgroups {
            root: GUEST_CGROUP_ROOT.to_owned(),
            mount: true,
        }
    }

    /// The application's group: `<root>/webvm/<name>`, the name lowercased as
    /// [`AppName::normalized`] (names are unique case-insensitively); a character an
    /// application name can't have becomes `_`, so any text stays one folder.
    pub fn group(&self, name: &str) -> String {
        let folder: String = name
            .chars()
            .enumerate()
            .map(|(index, c)| match c.to_ascii_lowercase() {
                '.' if index == 0 => '_',
                c @ ('a'..='z' | '0'..='9' | '-' | '_' | '.') => c,
                _ => '_',
            })
            .collect();
        let folder = if folder.is_empty() {
            "_".to_owned()
        } else {
            folder
        };
        format!(
            "{}/{CGROUP_PARENT}/{folder}",
            self.root.trim_end_matches('/')
        )
    }

    /// argv that prints the group's `memory.events`, or nothing (and exits 0) when the
    /// group does not exist.
    pub fn events_argv(&self, name: &str) -> Vec<String> {
        shell(format!(
            "cat -- {} 2>/dev/null\nexit 0",
            quote(&format!("{}/memory.events", self.group(name)))
        ))
    }

    /// argv that removes the group after the app exited (run it after the `EXIT` and before
    /// the next start): processes the app left behind are killed first (`cgroup.kill`), as
    /// Docker ends a container's processes with its main process. Exits 0 when the group is
    /// gone or never existed, 1 when it was still busy after a second.
    pub fn cleanup_argv(&self, name: &str) -> Vec<String> {
        shell(format!(
            "g={group}\n\
             [ -d \"$g\" ] || exit 0\n\
             [ ! -f \"$g/cgroup.kill\" ] || {{ echo 1 > \"$g/cgroup.kill\"; }} 2>/dev/null\n\
             n=0\n\
             until rmdir -- \"$g\" 2>/dev/null; do\n  \
               n=$((n + 1))\n  \
               [ \"$n\" -lt 10 ] || exit 1\n  \
               sleep 0.1\n\
             done\n\
             exit 0",
            group = quote(&self.group(name))
        ))
    }
}

/// [`Cgroups::events_argv`] in the guest.
pub fn cgroup_events_script(name: &str) -> Vec<String> {
    Cgroups::guest().events_argv(name)
}

/// [`Cgroups::cleanup_argv`] in the guest.
pub fn cleanup_script(name: &str) -> Vec<String> {
    Cgroups::guest().cleanup_argv(name)
}

fn shell(script: String) -> Vec<String> {
    vec!["sh".to_owned(), "-c".to_owned(), script]
}

/// The cgroup v2 limits of one start; empty when the app sets none (then it gets no group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitPlan {
    /// `memory.max`: the limit's MB as MiB (`docker run -m 128m`).
    pub memory_max_bytes: Option<u64>,
    /// `cpu.max`'s quota per [`CPU_PERIOD_US`]: percent × 1000, at least
    /// [`CPU_MIN_QUOTA_US`].
    pub cpu_quota_us: Option<u64>,
}

impl LimitPlan {
    /// The limits `memoryLimit` (MB) and `cpuLimit` (percent, 100 = one core) ask for.
    pub fn of(
        memory_limit_mb: Option<u64>,
        cpu_limit_percent: Option<f64>,
    ) -> Result<Self, LaunchError> {
        let memory_max_bytes = match memory_limit_mb {
            None => None,
            Some(0) => return Err(LaunchError::MemoryLimitZero),
            Some(mb) => Some(mb.saturating_mul(1024 * 1024)),
        };
        let cpu_quota_us = match cpu_limit_percent {
            None => None,
            Some(percent) if !(percent.is_finite() && percent > 0.0) => {
                return Err(LaunchError::CpuLimit { percent })
            }
            // Finite and positive: the cast saturates, the floor keeps the kernel's minimum.
            Some(percent) => Some(((percent * 1000.0).round() as u64).max(CPU_MIN_QUOTA_US)),
        };
        Ok(LimitPlan {
            memory_max_bytes,
            cpu_quota_us,
        })
    }

    /// No limit asked for.
    pub fn is_empty(&self) -> bool {
        self.memory_max_bytes.is_none() && self.cpu_quota_us.is_none()
    }

    /// The line written to `cpu.max`, e.g. `50000 100000`.
    pub fn cpu_max(&self) -> Option<String> {
        self.cpu_quota_us
            .map(|quota| format!("{quota} {CPU_PERIOD_US}"))
    }
}

/// One start of an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchPlan {
    /// What the agent spawns (from [`SPAWN_CWD`]): the wrapper, then the command and its
    /// arguments.
    pub argv: Vec<String>,
    /// The working directory the wrapper changes to before `exec`.
    pub cwd: String,
    /// The `EXEC`'s variables, each name once: the plain ones by name, then the secrets by
    /// name, then `PORT`; a later one replaces an earlier one of the same name.
    pub env: Vec<(String, String)>,
    pub limits: LimitPlan,
    /// The app's cgroup when it has limits (for [`Cgroups::events_argv`] and
    /// [`Cgroups::cleanup_argv`]).
    pub cgroup: Option<String>,
}

/// [`plan_launch_with`] in the guest's cgroup hierarchy.
pub fn plan_launch(
    app: &Application,
    secrets: &BTreeMap<String, String>,
) -> Result<LaunchPlan, LaunchError> {
    plan_launch_with(app, secrets, &Cgroups::guest())
}

/// The start of `app`, with `secrets` the decrypted values of its secret variables (every
/// sealed name must have one; other names are ignored). Refuses an app without a command or
/// a port, invalid variable names, NUL characters, a working directory that leaves its
/// release, and zero or negative limits. The memory budget is [`check_memory_budget`]'s.
pub fn plan_launch_with(
    app: &Application,
    secrets: &BTreeMap<String, String>,
    cgroups: &Cgroups,
) -> Result<LaunchPlan, LaunchError> {
    let execution = &app.execution;
    if execution.command.is_empty() {
        return Err(LaunchError::NoCommand);
    }
    if execution.command.chars().any(char::is_control) {
        return Err(LaunchError::CommandControl);
    }
    if let Some(index) = execution
        .arguments
        .iter()
        .position(|argument| argument.contains('\0'))
    {
        return Err(LaunchError::ArgumentNul { index: index + 1 });
    }
    let port = execution.port.ok_or_else(|| LaunchError::NoPort {
        app: app.name.to_string(),
    })?;
    let env = environment(app, secrets, port)?;
    let cwd = working_directory(app)?;
    let limits = LimitPlan::of(execution.memory_limit, execution.cpu_limit)?;
    let cgroup = (!limits.is_empty()).then(|| cgroups.group(app.name.as_str()));
    let ports: Vec<Port> = execution.all_ports().collect();
    let script = wrapper_script(&ports, &limits, cgroups, cgroup.as_deref(), &cwd);
    let mut argv = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        script,
        format!("webvm-app-{}", app.name),
        execution.command.clone(),
    ];
    argv.extend(execution.arguments.iter().cloned());
    Ok(LaunchPlan {
        argv,
        cwd,
        env,
        limits,
        cgroup,
    })
}

fn environment(
    app: &Application,
    secrets: &BTreeMap<String, String>,
    port: Port,
) -> Result<Vec<(String, String)>, LaunchError> {
    let mut env: Vec<(String, String)> = Vec::new();
    for (name, value) in &app.execution.environment {
        env.push((name.clone(), value.clone()));
    }
    for name in app.execution.secret_environment.keys() {
        let value = secrets
            .get(name)
            .ok_or_else(|| LaunchError::SecretMissing { name: name.clone() })?;
        env.push((name.clone(), value.clone()));
    }
    env.push(("PORT".to_owned(), port.get().to_string()));
    for (name, value) in &env {
        if !is_variable_name(name) {
            return Err(LaunchError::VariableName { name: name.clone() });
        }
        if value.contains('\0') {
            return Err(LaunchError::VariableNul { name: name.clone() });
        }
    }
    let mut kept = Vec::with_capacity(env.len());
    for (index, (name, value)) in env.iter().enumerate() {
        if !env[index + 1..].iter().any(|(later, _)| later == name) {
            kept.push((name.clone(), value.clone()));
        }
    }
    Ok(kept)
}

/// A POSIX variable name: letters, digits and `_`, not starting with a digit.
fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The folder the app runs in: its `current` release when `workingDirectory` is empty,
/// relative to it when relative (without `..`), else the absolute path as given.
pub fn working_directory(app: &Application) -> Result<String, LaunchError> {
    let path = app.execution.working_directory.as_str();
    let refuse = |why| LaunchError::WorkingDirectory {
        path: path.to_owned(),
        why,
    };
    if path.chars().any(char::is_control) {
        return Err(refuse("contains a NUL or control character"));
    }
    if path.starts_with('/') {
        return Ok(path.to_owned());
    }
    let current = AppPaths::of(&app.deployment)?.current();
    let mut segments = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(refuse("must not contain '..'")),
            name => segments.push(name),
        }
    }
    if segments.is_empty() {
        Ok(current)
    } else {
        Ok(format!("{current}/{}", segments.join("/")))
    }
}

/// The port check: one function, called once per port with its decimal and the hex
/// `/proc/net/tcp` writes.
const PORT_CHECK: &str = r#"webvm_port() {
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    while read -r _ l _ s _ _ _ _ _ i _; do
      [ "$s" = 0A ] && [ "${l##*:}" = "$2" ] || continue
      pid=
      comm=
      case "$i" in
      '' | *[!0-9]*) ;;
      *)
        for d in /proc/[0-9]*; do
          links=$(readlink "$d"/fd/* 2>/dev/null)
          case "
$links
" in
          *"
socket:[$i]
"*)
            p=${d#/proc/}
            if [ -z "$pid" ] || [ "$p" -lt "$pid" ]; then
              pid=$p
              comm=
              { read -r comm < "$d/comm"; } 2>/dev/null
            fi
            ;;
          esac
        done
        ;;
      esac
      if [ -n "$pid" ]; then
        printf 'webvm-launch: port-in-use port=%s pid=%s comm=%s\n' "$1" "$pid" "$comm" >&2
      else
        printf 'webvm-launch: port-in-use port=%s\n' "$1" >&2
      fi
      exit 98
    done < "$f"
  done
}
"#;

/// Applying one limit: `webvm_limit <controller> <file> <value>`; on failure `r` holds the
/// reason.
const LIMIT_FUNCTIONS: &str = r#"webvm_unsupported() {
  printf 'webvm-launch: limit-unsupported limit=%s reason=%s\n' "$1" "$2" >&2
}
webvm_limit() {
  [ -z "$why" ] || { r=$why; return 1; }
  case " $available " in
  *" $1 "*) ;;
  *) r=controller-unavailable; return 1 ;;
  esac
  { echo "+$1" > "$cg/cgroup.subtree_control" && echo "+$1" > "$cg/webvm/cgroup.subtree_control"; } 2>/dev/null || { r=enable-failed; return 1; }
  [ -e "$g/$2" ] || { r=controller-unavailable; return 1; }
  { echo "$3" > "$g/$2"; } 2>/dev/null || { r=write-failed; return 1; }
}
"#;

/// The wrapper script (see the module docs).
fn wrapper_script(
    ports: &[Port],
    limits: &LimitPlan,
    cgroups: &Cgroups,
    group: Option<&str>,
    cwd: &str,
) -> String {
    let mut script =
        String::from("(\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
    script.push_str(PORT_CHECK);
    for port in ports {
        let _ = writeln!(script, "webvm_port {0} {0:04X}", port.get());
    }
    if let (Some(group), false) = (group, limits.is_empty()) {
        script.push_str(LIMIT_FUNCTIONS);
        let root = cgroups.root.trim_end_matches('/');
        let _ = writeln!(script, "cg={}\ng={}\nwhy=", quote(root), quote(group));
        if cgroups.mount {
            script.push_str(
                "[ -f \"$cg/cgroup.controllers\" ] || mount -t cgroup2 none \"$cg\" 2>/dev/null\n",
            );
        }
        script.push_str(
            "if [ ! -f \"$cg/cgroup.controllers\" ]; then\n  why=no-cgroup2\n\
             elif ! mkdir -p -- \"$g\" 2>/dev/null; then\n  why=mkdir-failed\nfi\n\
             available=\n\
             [ -n \"$why\" ] || { read -r available < \"$cg/cgroup.controllers\"; } 2>/dev/null\n\
             applied=\n",
        );
        if let Some(bytes) = limits.memory_max_bytes {
            let _ = writeln!(
                script,
                "if webvm_limit memory memory.max {bytes}; then\n  \
                 [ ! -f \"$g/memory.swap.max\" ] || {{ echo 0 > \"$g/memory.swap.max\"; }} 2>/dev/null\n  \
                 applied=\"$applied memory\"\nelse\n  webvm_unsupported memory \"$r\"\nfi"
            );
        }
        if let Some(cpu_max) = limits.cpu_max() {
            let _ = writeln!(
                script,
                "if webvm_limit cpu cpu.max {}; then\n  applied=\"$applied cpu\"\nelse\n  webvm_unsupported cpu \"$r\"\nfi",
                quote(&cpu_max)
            );
        }
        script.push_str(
            "if [ -n \"$applied\" ] && ! { echo $$ > \"$g/cgroup.procs\"; } 2>/dev/null; then\n  \
             for l in $applied; do webvm_unsupported \"$l\" move-failed; done\nfi\n",
        );
    }
    let cwd = quote(cwd);
    let _ = write!(
        script,
        ") || exit\n\
         cd {cwd} 2>/dev/null || {{ printf 'webvm-launch: no-directory path=%s\\n' {cwd} >&2; exit {EXIT_NO_DIRECTORY}; }}\n\
         command -v \"$1\" >/dev/null 2>&1 || {{ printf 'webvm-launch: no-command command=%s\\n' \"$1\" >&2; exit {EXIT_NO_COMMAND}; }}\n\
         exec \"$@\""
    );
    script
}

crate::model::string_enum! {
    /// A resource limit of the wrapper.
    pub enum LimitKind {
        Memory = "memory",
        Cpu = "cpu",
    }
}

/// A notice the wrapper printed on stderr (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchNotice {
    /// A port of the app is taken; the owner when it could be found.
    PortInUse {
        port: u16,
        pid: Option<u32>,
        comm: Option<String>,
    },
    /// A limit was not applied; the app runs without it. `reason` is the wrapper's token
    /// (`no-cgroup2`, `mkdir-failed`, `controller-unavailable`, `enable-failed`,
    /// `write-failed`, `move-failed`).
    LimitUnsupported { limit: LimitKind, reason: String },
    /// The working directory does not exist.
    NoDirectory { path: String },
    /// The command was not found in `PATH`.
    NoCommand { command: String },
}

impl fmt::Display for LaunchNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchNotice::PortInUse {
                port,
                pid: Some(pid),
                comm: Some(comm),
            } => write!(f, "port {port} is already in use by {comm} (pid {pid})"),
            LaunchNotice::PortInUse {
                port,
                pid: Some(pid),
                comm: None,
            } => write!(f, "port {port} is already in use by process {pid}"),
            LaunchNotice::PortInUse { port, .. } => {
                write!(f, "port {port} is already in use by another process")
            }
            LaunchNotice::LimitUnsupported { limit, reason } => {
                let why = match reason.as_str() {
                    "no-cgroup2" => "the VM has no cgroup v2 file system".to_owned(),
                    "mkdir-failed" => "the app's control group could not be created".to_owned(),
                    "controller-unavailable" => {
                        format!("the VM's kernel has no {limit} controller")
                    }
                    "enable-failed" => format!("the {limit} controller could not be enabled"),
                    "write-failed" => "the kernel refused the value".to_owned(),
                    "move-failed" => "the app could not join its control group".to_owned(),
                    other => other.to_owned(),
                };
                write!(
                    f,
                    "the {limit} limit was not applied ({why}); the app runs without it"
                )
            }
            LaunchNotice::NoDirectory { path } => {
                write!(f, "working directory '{path}' does not exist in the VM")
            }
            LaunchNotice::NoCommand { command } => write!(
                f,
                "command '{command}' was not found in the VM (is its runtime installed?)"
            ),
        }
    }
}

/// The notice in one stderr line of a start, if it is one.
pub fn parse_launch_lines(line: &str) -> Option<LaunchNotice> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.strip_prefix(NOTICE_PREFIX)?.split_once(' ')?;
    match kind {
        "port-in-use" => {
            let rest = rest.strip_prefix("port=")?;
            let (port, owner) = rest.split_once(' ').unwrap_or((rest, ""));
            let port = port.parse().ok()?;
            if owner.is_empty() {
                return Some(LaunchNotice::PortInUse {
                    port,
                    pid: None,
                    comm: None,
                });
            }
            let (pid, comm) = owner.strip_prefix("pid=")?.split_once(' ')?;
            let comm = comm.strip_prefix("comm=")?;
            Some(LaunchNotice::PortInUse {
                port,
                pid: Some(pid.parse().ok()?),
                comm: (!comm.is_empty()).then(|| comm.to_owned()),
            })
        }
        "limit-unsupported" => {
            let (limit, reason) = rest.strip_prefix("limit=")?.split_once(' ')?;
            Some(LaunchNotice::LimitUnsupported {
                limit: limit.parse().ok()?,
                reason: reason.strip_prefix("reason=")?.to_owned(),
            })
        }
        "no-directory" => Some(LaunchNotice::NoDirectory {
            path: rest.strip_prefix("path=")?.to_owned(),
        }),
        "no-command" => Some(LaunchNotice::NoCommand {
            command: rest.strip_prefix("command=")?.to_owned(),
        }),
        _ => None,
    }
}

/// Business rule 4 at start: the memory limits of the `running` apps plus the
/// `candidate`'s fit in the VM's `vm_memory_mb`. An app without a limit counts 0 (the rule
/// is on limits; such an app may still use all memory, which validation warns about); the
/// candidate itself in `running` is not counted twice.
pub fn check_memory_budget(
    candidate: &Application,
    running: &[&Application],
    vm_memory_mb: u64,
) -> Result<(), LaunchError> {
    let Some(needs) = candidate.execution.memory_limit else {
        return Ok(());
    };
    let app = candidate.name.to_string();
    if needs > vm_memory_mb {
        return Err(LaunchError::MemoryLimitTooLarge {
            app,
            needs,
            vm: vm_memory_mb,
        });
    }
    let holders: Vec<(&AppName, u64)> = running
        .iter()
        .filter(|other| other.id != candidate.id)
        .filter_map(|other| other.execution.memory_limit.map(|mb| (&other.name, mb)))
        .collect();
    // In u128 so that no sum of u64 limits overflows.
    let total: u128 = holders.iter().map(|(_, mb)| u128::from(*mb)).sum();
    let reserved = u64::try_from(total).unwrap_or(u64::MAX);
    if total + u128::from(needs) > u128::from(vm_memory_mb) {
        let holders: Vec<String> = holders
            .iter()
            .map(|(name, mb)| format!("{name} {mb} MB"))
            .collect();
        return Err(LaunchError::MemoryBudget {
            app,
            needs,
            reserved,
            vm: vm_memory_mb,
            holders: holders.join(", "),
        });
    }
    Ok(())
}

/// The `oom_kill` count of a cgroup v2 `memory.events` file, if it has one.
pub fn oom_kills(memory_events: &str) -> Option<u64> {
    memory_events.lines().find_map(|line| {
        let (key, value) = line.trim().split_once(char::is_whitespace)?;
        (key == "oom_kill").then(|| value.trim().parse().ok())?
    })
}

/// The name of a Linux signal (i386/x86 numbering), e.g. `SIGKILL` for 9.
pub fn signal_name(signal: i32) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(signal)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|index| NAMES.get(index).copied())
}

/// How a process ended, for people: its exit `code` or `signal` (the agent's `EXIT`), and
/// the OOM kills its cgroup counted meanwhile (`memory.events`' `oom_kill` after the exit
/// minus before the start; the group starts at 0 when [`Cgroups::cleanup_argv`] removed
/// the previous one).
pub fn describe_exit(
    code: Option<i32>,
    signal: Option<i32>,
    oom_kills_delta: u64,
    memory_limit_mb: Option<u64>,
) -> String {
    let limit = memory_limit_mb
        .map(|mb| format!(" (limit {mb} MB)"))
        .unwrap_or_default();
    if oom_kills_delta > 0 && signal == Some(9) {
        return format!("killed: out of memory{limit}");
    }
    let base = match (signal, code) {
        (Some(signal), _) => match signal_name(signal) {
            Some(name) => format!("killed by signal {signal} ({name})"),
            None => format!("killed by signal {signal}"),
        },
        (None, Some(0)) => "exited normally (code 0)".to_owned(),
        (None, Some(126)) => "exited with code 126 (the command could not be run)".to_owned(),
        (None, Some(127)) => "exited with code 127 (command not found)".to_owned(),
        (None, Some(code)) => format!("exited with code {code}"),
        (None, None) => "ended".to_owned(),
    };
    match oom_kills_delta {
        0 => base,
        1 => format!("{base}; the out-of-memory killer stopped one of its processes{limit}"),
        n => format!("{base}; the out-of-memory killer stopped {n} of its processes{limit}"),
    }
}

/// How long a start may take before it counts as failed: `execution.timeout` when set
/// (and positive), else the default of the slowest runtime the app needs (by family:
/// `python-311` is Python's), else of its command, else [`DEFAULT_STARTUP_TIMEOUT`].
pub fn startup_timeout(app: &Application) -> Duration {
    if let Some(seconds) = app.execution.timeout.filter(|seconds| *seconds > 0) {
        return Duration::from_secs(u64::from(seconds));
    }
    let by_runtime = app
        .runtime
        .required_runtimes
        .iter()
        .flat_map(|runtime| {
            STARTUP_DEFAULTS
                .iter()
                .filter(|(family, _)| runtime.is_in_family(family))
                .map(|(_, seconds)| *seconds)
        })
        .max();
    let command = app.execution.command.rsplit('/').next().unwrap_or_default();
    let by_command = || {
        STARTUP_DEFAULTS
            .iter()
            .filter(|(family, _)| {
                command.strip_prefix(family).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_digit() || c == '.')
                })
            })
            .map(|(_, seconds)| *seconds)
            .max()
    };
    by_runtime
        .or_else(by_command)
        .map(|seconds| Duration::from_secs(u64::from(seconds)))
        .unwrap_or(DEFAULT_STARTUP_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::presets::{draft, PresetId};
    use crate::domain::testing::{application, id, now, port};
    use crate::model::{ApplicationServerSettings, SealedSecret};
    use uuid::Uuid;

    fn app_with(change: impl FnOnce(&mut Application)) -> Application {
        let mut app = application("hello");
        app.execution.port = Some(port(8080));
        change(&mut app);
        app
    }

    fn sealed() -> SealedSecret {
        SealedSecret::parse("enc:v1:k:AAECAwQFBgcICQoL:Y2lwaGVydGV4dC1hbmQtaXRzLXRhZw")
            .expect("sealed")
    }

    #[test]
    fn argv_is_the_wrapper_then_the_command() {
        let app = app_with(|app| {
            app.execution.command = "python3".into();
            app.execution.arguments = vec!["-m".into(), "it's $HOME".into()];
        });
        let plan = plan_launch(&app, &BTreeMap::new()).expect("plan");
        assert_eq!(plan.argv[0..2], ["sh", "-c"]);
        assert_eq!(
            plan.argv[3..],
            ["webvm-app-hello", "python3", "-m", "it's $HOME"]
        );
        let script = &plan.argv[2];
        assert!(script.contains("webvm_port 8080 1F90\n"), "{script}");
        assert!(script.ends_with("exec \"$@\""), "{script}");
        assert!(!script.contains("python3"), "the command is only \"$@\"");
        assert!(!script.contains("cgroup"), "no limits, no cgroup: {script}");
        assert_eq!(plan.cwd, "/srv/apps/hello/current");
        assert_eq!(plan.cgroup, None);
        assert!(plan.limits.is_empty());
    }

    #[test]
    fn working_directory_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("", Ok("/srv/apps/hello/current")),
            (".", Ok("/srv/apps/hello/current")),
            ("public", Ok("/srv/apps/hello/current/public")),
            ("./site//www/", Ok("/srv/apps/hello/current/site/www")),
            ("/srv/apps/hello/current", Ok("/srv/apps/hello/current")),
            ("/opt/my app", Ok("/opt/my app")),
            (
                "../other",
                Err("working directory '../other' must not contain '..'"),
            ),
            ("a/../../b", Err("must not contain '..'")),
            ("a\nb", Err("contains a NUL or control character")),
            ("/a\0", Err("contains a NUL or control character")),
        ];
        for (directory, expected) in cases {
            let app = app_with(|app| app.execution.working_directory = (*directory).into());
            let got = working_directory(&app).map_err(|error| error.to_string());
            match expected {
                Ok(path) => assert_eq!(got.as_deref(), Ok(*path), "{directory:?}"),
                Err(part) => {
                    let error = got.expect_err(directory);
                    assert!(error.contains(part), "{directory:?}: {error}");
                }
            }
        }
        let outside = app_with(|app| app.deployment.deployment_path = "/etc".into());
        assert!(working_directory(&outside)
            .expect_err("outside")
            .to_string()
            .contains("/srv/apps"));
    }

    #[test]
    fn environment_order_and_refusals() {
        let secret = sealed();
        let app = app_with(|app| {
            app.execution.environment = BTreeMap::from([
                ("B".to_owned(), "2".to_owned()),
                ("A".to_owned(), "1".to_owned()),
                ("PORT".to_owned(), "9999".to_owned()),
                ("TOKEN".to_owned(), "plain".to_owned()),
            ]);
            app.execution.secret_environment = BTreeMap::from([
                ("TOKEN".to_owned(), secret.clone()),
                ("DB_PASSWORD".to_owned(), secret.clone()),
            ]);
        });
        let secrets = BTreeMap::from([
            ("TOKEN".to_owned(), "t0k3n".to_owned()),
            ("DB_PASSWORD".to_owned(), "p w'd".to_owned()),
            ("UNUSED".to_owned(), "x".to_owned()),
        ]);
        let plan = plan_launch(&app, &secrets).expect("plan");
        let pairs: Vec<(&str, &str)> = plan
            .env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("A", "1"),
                ("B", "2"),
                ("DB_PASSWORD", "p w'd"),
                ("TOKEN", "t0k3n"),
                ("PORT", "8080"),
            ]
        );
        assert!(
            plan.argv.iter().all(|arg| !arg.contains("t0k3n")),
            "secrets never on the command line"
        );

        type Case = (fn(&mut Application), &'static str);
        let refusals: [Case; 8] = [
            (|app| app.execution.port = None, "hello has no port"),
            (
                |app| app.execution.command.clear(),
                "the startup command is missing",
            ),
            (
                |app| app.execution.command = "node\n".into(),
                "the startup command contains a control character",
            ),
            (
                |app| app.execution.arguments = vec!["ok".into(), "a\0b".into()],
                "argument 2 of the startup command contains a NUL character",
            ),
            (
                |app| {
                    app.execution.environment.insert("1X".into(), String::new());
                },
                "environment variable name '1X' is not valid",
            ),
            (
                |app| {
                    app.execution
                        .environment
                        .insert("A-B".into(), String::new());
                },
                "environment variable name 'A-B' is not valid",
            ),
            (
                |app| {
                    app.execution.environment.insert("X".into(), "a\0".into());
                },
                "the value of environment variable X contains a NUL character",
            ),
            (
                |app| app.execution.memory_limit = Some(0),
                "the memory limit must be positive",
            ),
        ];
        for (change, message) in refusals {
            let mut broken = app_with(|_| {});
            change(&mut broken);
            let error = plan_launch(&broken, &BTreeMap::new()).expect_err(message);
            assert!(error.to_string().starts_with(message), "{error}");
        }
        let missing = plan_launch(&app, &BTreeMap::new()).expect_err("no secrets");
        assert_eq!(
            missing.to_string(),
            "secret variable DB_PASSWORD could not be decrypted; enter its value again"
        );
        let nul = BTreeMap::from([
            ("TOKEN".to_owned(), "x".to_owned()),
            ("DB_PASSWORD".to_owned(), "\0".to_owned()),
        ]);
        let error = plan_launch(&app, &nul).expect_err("NUL secret");
        assert_eq!(
            error,
            LaunchError::VariableNul {
                name: "DB_PASSWORD".into()
            }
        );
        assert!(
            !error.to_string().contains('\0'),
            "the value is never shown"
        );
    }

    /// Memory MB, CPU percent, and the bytes and `cpu.max` line or the error.
    type LimitCase = (
        Option<u64>,
        Option<f64>,
        Result<(Option<u64>, Option<&'static str>), &'static str>,
    );

    #[test]
    fn limit_plan_table() {
        let cases: &[LimitCase] = &[
            (None, None, Ok((None, None))),
            (Some(64), None, Ok((Some(64 << 20), None))),
            (None, Some(50.0), Ok((None, Some("50000 100000")))),
            (None, Some(100.0), Ok((None, Some("100000 100000")))),
            (None, Some(12.5), Ok((None, Some("12500 100000")))),
            (None, Some(0.1), Ok((None, Some("1000 100000")))),
            (
                Some(128),
                Some(25.0),
                Ok((Some(128 << 20), Some("25000 100000"))),
            ),
            (Some(0), None, Err("the memory limit must be positive")),
            (
                None,
                Some(0.0),
                Err("the CPU limit 0% must be a positive number"),
            ),
            (None, Some(-5.0), Err("the CPU limit -5%")),
            (None, Some(f64::NAN), Err("the CPU limit NaN%")),
            (None, Some(f64::INFINITY), Err("the CPU limit inf%")),
        ];
        for (memory, cpu, expected) in cases {
            let got = LimitPlan::of(*memory, *cpu);
            match expected {
                Ok((bytes, cpu_max)) => {
                    let plan = got.expect("valid");
                    assert_eq!(plan.memory_max_bytes, *bytes, "{memory:?} {cpu:?}");
                    assert_eq!(plan.cpu_max().as_deref(), *cpu_max, "{memory:?} {cpu:?}");
                    assert_eq!(plan.is_empty(), bytes.is_none() && cpu_max.is_none());
                }
                Err(part) => {
                    let error = got.expect_err("refused").to_string();
                    assert!(error.starts_with(part), "{error}");
                }
            }
        }
    }

    #[test]
    fn limits_put_the_app_in_its_own_group() {
        let app = app_with(|app| {
            app.execution.memory_limit = Some(64);
            app.execution.cpu_limit = Some(50.0);
            app.execution.additional_ports = Some(vec![port(9090)]);
        });
        let plan = plan_launch(&app, &BTreeMap::new()).expect("plan");
        assert_eq!(plan.cgroup.as_deref(), Some("/sys/fs/cgroup/webvm/hello"));
        let script = &plan.argv[2];
        for part in [
            "webvm_port 8080 1F90\nwebvm_port 9090 2382\n",
            "cg='/sys/fs/cgroup'\ng='/sys/fs/cgroup/webvm/hello'\n",
            "mount -t cgroup2 none \"$cg\"",
            "webvm_limit memory memory.max 67108864",
            "webvm_limit cpu cpu.max '50000 100000'",
            "echo $$ > \"$g/cgroup.procs\"",
        ] {
            assert!(script.contains(part), "{part:?} in\n{script}");
        }
        let test_root = Cgroups {
            root: "/tmp/it's/".into(),
            mount: false,
        };
        let plan = plan_launch_with(&app, &BTreeMap::new(), &test_root).expect("plan");
        assert_eq!(plan.cgroup.as_deref(), Some("/tmp/it's/webvm/hello"));
        assert!(plan.argv[2].contains("cg='/tmp/it'\\''s'\n"));
        assert!(!plan.argv[2].contains("mount "));
    }

    #[test]
    fn group_scripts_quote_the_group() {
        let name = AppName::parse("My.App").expect("valid");
        assert_eq!(
            Cgroups::guest().group(name.as_str()),
            format!("/sys/fs/cgroup/webvm/{}", name.normalized())
        );
        for (text, folder) in [
            ("../x", "_._x"),
            ("a/b c", "a_b_c"),
            ("..", "_."),
            ("", "_"),
        ] {
            assert_eq!(
                Cgroups::guest().group(text),
                format!("/sys/fs/cgroup/webvm/{folder}")
            );
        }
        let events = cgroup_events_script(name.as_str());
        assert_eq!(
            events,
            [
                "sh",
                "-c",
                "cat -- '/sys/fs/cgroup/webvm/my.app/memory.events' 2>/dev/null\nexit 0"
            ]
        );
        let cleanup = cleanup_script(name.as_str());
        assert_eq!(cleanup[..2], ["sh", "-c"]);
        assert!(cleanup[2].starts_with("g='/sys/fs/cgroup/webvm/my.app'\n"));
        assert!(cleanup[2].contains("echo 1 > \"$g/cgroup.kill\""));
        assert!(cleanup[2].contains("until rmdir -- \"$g\""));
    }

    #[test]
    fn notices_parse_and_read_well() {
        let cases: &[(&str, Option<LaunchNotice>, &str)] = &[
            (
                "webvm-launch: port-in-use port=8080 pid=123 comm=busybox",
                Some(LaunchNotice::PortInUse {
                    port: 8080,
                    pid: Some(123),
                    comm: Some("busybox".into()),
                }),
                "port 8080 is already in use by busybox (pid 123)",
            ),
            (
                "webvm-launch: port-in-use port=8080 pid=7 comm=my server=x\r",
                Some(LaunchNotice::PortInUse {
                    port: 8080,
                    pid: Some(7),
                    comm: Some("my server=x".into()),
                }),
                "port 8080 is already in use by my server=x (pid 7)",
            ),
            (
                "webvm-launch: port-in-use port=8080 pid=7 comm=",
                Some(LaunchNotice::PortInUse {
                    port: 8080,
                    pid: Some(7),
                    comm: None,
                }),
                "port 8080 is already in use by process 7",
            ),
            (
                "webvm-launch: port-in-use port=3000",
                Some(LaunchNotice::PortInUse {
                    port: 3000,
                    pid: None,
                    comm: None,
                }),
                "port 3000 is already in use by another process",
            ),
            (
                "webvm-launch: limit-unsupported limit=memory reason=no-cgroup2",
                Some(LaunchNotice::LimitUnsupported {
                    limit: LimitKind::Memory,
                    reason: "no-cgroup2".into(),
                }),
                "the memory limit was not applied (the VM has no cgroup v2 file system); the app runs without it",
            ),
            (
                "webvm-launch: limit-unsupported limit=cpu reason=controller-unavailable",
                Some(LaunchNotice::LimitUnsupported {
                    limit: LimitKind::Cpu,
                    reason: "controller-unavailable".into(),
                }),
                "the cpu limit was not applied (the VM's kernel has no cpu controller); the app runs without it",
            ),
            (
                "webvm-launch: limit-unsupported limit=cpu reason=something new",
                Some(LaunchNotice::LimitUnsupported {
                    limit: LimitKind::Cpu,
                    reason: "something new".into(),
                }),
                "the cpu limit was not applied (something new); the app runs without it",
            ),
            (
                "webvm-launch: no-directory path=/srv/apps/x/current/my dir",
                Some(LaunchNotice::NoDirectory {
                    path: "/srv/apps/x/current/my dir".into(),
                }),
                "working directory '/srv/apps/x/current/my dir' does not exist in the VM",
            ),
            (
                "webvm-launch: no-command command=python3",
                Some(LaunchNotice::NoCommand {
                    command: "python3".into(),
                }),
                "command 'python3' was not found in the VM (is its runtime installed?)",
            ),
            ("webvm-launch: port-in-use port=eighty", None, ""),
            ("webvm-launch: port-in-use port=8080 pid=x comm=a", None, ""),
            ("webvm-launch: limit-unsupported limit=disk reason=x", None, ""),
            ("webvm-launch: reboot now", None, ""),
            ("webvm-launch:", None, ""),
            ("  webvm-launch: no-command command=x", None, ""),
            ("Traceback (most recent call last):", None, ""),
        ];
        for (line, expected, message) in cases {
            let got = parse_launch_lines(line);
            assert_eq!(&got, expected, "{line:?}");
            if let Some(notice) = got {
                assert_eq!(notice.to_string(), *message, "{line:?}");
            }
        }
    }

    fn running(name: &str, limit: Option<u64>) -> Application {
        let mut app = application(name);
        app.execution.memory_limit = limit;
        app
    }

    #[test]
    fn memory_budget_table() {
        let blog = running("blog", Some(128));
        let api = running("api-1", Some(72));
        let free = running("free", None);
        /// The candidate's limit, the running apps, the VM's memory, the outcome.
        type Case<'a> = (Option<u64>, &'a [&'a Application], u64, Result<(), &'a str>);
        let cases: &[Case] = &[
            (Some(56), &[&blog, &api], 256, Ok(())),
            (None, &[&blog, &api], 256, Ok(())),
            (Some(100), &[&free], 256, Ok(())),
            (Some(256), &[], 256, Ok(())),
            (
                Some(128),
                &[&blog, &api, &free],
                256,
                Err("starting hello needs 128 MB; running apps already reserve 200 MB of the VM's 256 MB (blog 128 MB, api-1 72 MB)"),
            ),
            (
                Some(300),
                &[],
                256,
                Err("starting hello needs 300 MB but the VM has only 256 MB"),
            ),
            (
                Some(57),
                &[&blog, &api],
                256,
                Err("needs 57 MB; running apps already reserve 200 MB"),
            ),
        ];
        for (limit, others, vm, expected) in cases {
            let candidate = running("hello", *limit);
            let got = check_memory_budget(&candidate, others, *vm).map_err(|e| e.to_string());
            match expected {
                Ok(()) => assert_eq!(got, Ok(()), "{limit:?}"),
                Err(part) => {
                    let error = got.expect_err("refused");
                    assert!(error.contains(part), "{error}");
                }
            }
        }
        // The candidate listed among the running apps is not counted twice.
        let me = running("hello", Some(200));
        assert_eq!(check_memory_budget(&me, &[&me], 256), Ok(()));
        let huge = running("huge", Some(u64::MAX));
        let small = running("small", Some(1));
        assert!(check_memory_budget(&small, &[&huge, &huge], u64::MAX).is_err());
    }

    #[test]
    fn oom_kills_table() {
        let cases = [
            (
                "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n",
                Some(2),
            ),
            ("oom_kill 0", Some(0)),
            ("oom_kill   17  \n", Some(17)),
            ("oom 3\noom_group_kill 1\n", None),
            ("oom_kill many\n", None),
            ("", None),
        ];
        for (events, expected) in cases {
            assert_eq!(oom_kills(events), expected, "{events:?}");
        }
    }

    #[test]
    fn describe_exit_table() {
        let cases = [
            (Some(0), None, 0, None, "exited normally (code 0)"),
            (Some(3), None, 0, None, "exited with code 3"),
            (Some(127), None, 0, None, "exited with code 127 (command not found)"),
            (Some(126), None, 0, None, "exited with code 126 (the command could not be run)"),
            (None, Some(9), 0, Some(64), "killed by signal 9 (SIGKILL)"),
            (None, Some(15), 0, None, "killed by signal 15 (SIGTERM)"),
            (None, Some(11), 0, None, "killed by signal 11 (SIGSEGV)"),
            (None, Some(64), 0, None, "killed by signal 64"),
            (None, Some(-1), 0, None, "killed by signal -1"),
            (None, Some(9), 1, Some(64), "killed: out of memory (limit 64 MB)"),
            (None, Some(9), 1, None, "killed: out of memory"),
            (
                Some(1),
                None,
                1,
                Some(64),
                "exited with code 1; the out-of-memory killer stopped one of its processes (limit 64 MB)",
            ),
            (
                None,
                Some(15),
                3,
                None,
                "killed by signal 15 (SIGTERM); the out-of-memory killer stopped 3 of its processes",
            ),
            (None, None, 0, None, "ended"),
        ];
        for (code, signal, oom, limit, expected) in cases {
            assert_eq!(describe_exit(code, signal, oom, limit), expected);
        }
        assert_eq!(signal_name(1), Some("SIGHUP"));
        assert_eq!(signal_name(31), Some("SIGSYS"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(32), None);
    }

    #[test]
    fn stop_grace_is_dockers() {
        assert_eq!(STOP_GRACE, Duration::from_secs(10));
    }

    #[test]
    fn startup_timeout_follows_the_presets() {
        let settings = ApplicationServerSettings::default();
        for preset in PresetId::ALL {
            let mut app = draft(
                *preset,
                Uuid::nil(),
                AppName::parse("site").expect("valid"),
                port(8001),
                &settings,
                now(),
            );
            let preset_timeout = Duration::from_secs(u64::from(preset.preset().startup_timeout));
            assert_eq!(startup_timeout(&app), preset_timeout, "{preset}");
            app.execution.timeout = None;
            assert_eq!(startup_timeout(&app), preset_timeout, "{preset} by runtime");
        }
        type Case = (&'static [&'static str], &'static str, Option<u32>, u64);
        let cases: [Case; 9] = [
            (&["python-312"], "python3", None, 60),
            (&["nginx", "python-311"], "sh", None, 60),
            (&["nodejs-20"], "node", Some(5), 5),
            (&["nodejs-20"], "node", Some(0), 45),
            (&[], "/usr/bin/python3.11", None, 60),
            (&[], "node", None, 45),
            (&[], "nodemon", None, 30),
            (&[], "./server", None, 30),
            (&["redis"], "redis-server", None, 30),
        ];
        for (runtimes, command, timeout, seconds) in cases {
            let app = app_with(|app| {
                app.runtime.required_runtimes = runtimes.iter().map(|r| id(r)).collect();
                app.execution.command = command.into();
                app.execution.timeout = timeout;
            });
            assert_eq!(
                startup_timeout(&app),
                Duration::from_secs(seconds),
                "{runtimes:?} {command}"
            );
        }
    }
}
