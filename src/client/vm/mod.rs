//! The VM engine interface: one trait for every emulator that can run the guest in the page.
//!
//! An engine boots the guest (reporting progress), runs commands through the guest agent,
//! starts and signals background processes, moves files in and out, samples resource usage,
//! hibernates and resumes, and opens TCP connections to guest ports. Engines differ in what
//! they can do, so each one states its [`Capabilities`]; the UI shows what an engine lacks as
//! unavailable instead of failing when it is used.
//!
//! The types here are plain Rust and compile in both builds; the engines themselves
//! ([`v86`], [`cheerpx`]) exist only in the browser build. wasm is single-threaded, so the
//! futures are `!Send` ([`LocalBoxFuture`]).

pub mod agent;
pub mod image;
pub mod transfer;

#[cfg(feature = "hydrate")]
pub mod bridge;
#[cfg(feature = "hydrate")]
pub mod cheerpx;
#[cfg(feature = "hydrate")]
pub mod v86;

use std::fmt;
use std::rc::Rc;

use futures::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use crate::guest_protocol::{CpuTimes, RawStats};
pub use crate::guest_protocol::{ExitStatus, GUEST_ENV};
use crate::model::SystemResources;

/// [`GUEST_ENV`] as `(key, value)` pairs, the shape of [`ExecCommand::env`].
pub fn guest_env_pairs() -> Vec<(String, String)> {
    GUEST_ENV
        .iter()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// A future returned by an engine.
pub type VmFuture<'a, T> = LocalBoxFuture<'a, Result<T, VmError>>;

/// Which emulator runs the guest: the model's [`crate::model::VmEngine`] (the name
/// `VmEngine` is the engine trait's here).
pub use crate::model::VmEngine as EngineKind;

/// What each engine can do is known where the engines are, so it is defined here.
impl EngineKind {
    /// What the engine can do.
    pub fn capabilities(self) -> Capabilities {
        match self {
            EngineKind::V86 => Capabilities::ALL,
            EngineKind::Cheerpx => Capabilities {
                boot_progress: false,
                exec: true,
                separate_stderr: true,
                background_processes: true,
                streamed_output: false,
                signals: true,
                file_transfer: true,
                stats: true,
                hibernate: false,
                tcp_connect: false,
                console: true,
            },
        }
    }
}

/// What an engine can do. Features that need a missing capability are shown as unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Reports download progress while loading.
    pub boot_progress: bool,
    /// Runs a command and returns its exit status and output.
    pub exec: bool,
    /// Keeps stdout and stderr apart.
    pub separate_stderr: bool,
    /// Starts processes that keep running after the call returns.
    pub background_processes: bool,
    /// Streams a background process's output while it runs.
    pub streamed_output: bool,
    /// Sends signals to processes it started.
    pub signals: bool,
    /// Pushes files into the guest and pulls them out.
    pub file_transfer: bool,
    /// Samples memory, disk, CPU and process counts.
    pub stats: bool,
    /// Saves the whole machine (hibernate) and restores it (resume).
    pub hibernate: bool,
    /// Opens TCP connections from the page to a guest port.
    pub tcp_connect: bool,
    /// Has a user console (terminal).
    pub console: bool,
}

impl Capabilities {
    /// Everything.
    pub const ALL: Capabilities = Capabilities {
        boot_progress: true,
        exec: true,
        separate_stderr: true,
        background_processes: true,
        streamed_output: true,
        signals: true,
        file_transfer: true,
        stats: true,
        hibernate: true,
        tcp_connect: true,
        console: true,
    };

    /// Names of the capabilities this engine lacks, for the UI.
    pub fn missing(&self) -> Vec<&'static str> {
        [
            (self.boot_progress, "download progress"),
            (self.exec, "running commands"),
            (self.separate_stderr, "separate error output"),
            (self.background_processes, "background processes"),
            (self.streamed_output, "live process output"),
            (self.signals, "signals"),
            (self.file_transfer, "file transfer"),
            (self.stats, "resource statistics"),
            (self.hibernate, "hibernate and resume"),
            (
                self.tcp_connect,
                "opening apps in the browser (TCP into the guest)",
            ),
            (self.console, "terminal"),
        ]
        .into_iter()
        .filter(|(has, _)| !has)
        .map(|(_, name)| name)
        .collect()
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities::ALL
    }
}

/// Everything that can go wrong with a VM operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VmError {
    /// The VM is not running (not booted, hibernating, or stopped).
    #[error("the VM is not running{0}")]
    NotRunning(String),
    /// The engine can't do this at all.
    #[error("{engine} cannot {what}")]
    Unsupported {
        /// Engine name.
        engine: &'static str,
        /// The missing capability.
        what: &'static str,
    },
    /// The guest image or emulator could not be loaded.
    #[error("{0}")]
    Load(String),
    /// Something took too long.
    #[error("{0}")]
    Timeout(String),
    /// The guest agent restarted; the operation's process was orphaned.
    #[error("the guest agent restarted, so the command was lost")]
    AgentRestarted,
    /// The guest refused or failed the operation.
    #[error("{message}")]
    Guest {
        /// `errno` of the failed system call, when there was one.
        errno: Option<i32>,
        /// What the guest said.
        message: String,
    },
    /// Browser storage is full.
    #[error("browser storage is full: {0}")]
    QuotaExceeded(String),
    /// Browser storage failed otherwise.
    #[error("browser storage failed: {0}")]
    Storage(String),
    /// The request itself is invalid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A JavaScript call failed.
    #[error("{0}")]
    Js(String),
}

impl From<agent::AgentError> for VmError {
    fn from(error: agent::AgentError) -> Self {
        use agent::AgentError as A;
        match error {
            A::Timeout { .. } => VmError::Timeout(error.to_string()),
            A::Restarted => VmError::AgentRestarted,
            A::Guest { errno, message } => VmError::Guest { errno, message },
            A::Stopped => VmError::NotRunning(" (it was stopped)".into()),
            A::Invalid(message) => VmError::Invalid(message),
            A::Protocol(message) => VmError::Js(format!("guest agent protocol: {message}")),
        }
    }
}

/// A command to run in the guest. No shell is involved: use `sh -c` for one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecCommand {
    /// Program, looked up in `PATH`.
    pub command: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Working directory (`/` when absent).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Time limit in milliseconds; the process group gets SIGTERM, then SIGKILL.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

impl ExecCommand {
    /// `command args…` with everything else default.
    pub fn new<I, S>(command: impl Into<String>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecCommand {
            command: command.into(),
            args: args.into_iter().map(Into::into).collect(),
            ..ExecCommand::default()
        }
    }

    /// `sh -c script`.
    pub fn shell(script: impl Into<String>) -> Self {
        ExecCommand::new("sh", ["-c".to_string(), script.into()])
    }

    /// The full argument vector.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.command.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// What a finished command left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    /// Exit code or signal.
    pub status: ExitStatus,
    /// The time limit fired.
    pub timed_out: bool,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// Output beyond the collection limit was dropped.
    pub truncated: bool,
    /// Wall time from request to exit, in milliseconds.
    pub duration_ms: u64,
}

impl ExecResult {
    /// The exit code, if the process exited normally.
    pub fn exit_code(&self) -> Option<i32> {
        match self.status {
            ExitStatus::Code(code) => Some(code),
            ExitStatus::Signal { .. } => None,
        }
    }

    /// The signal that ended the process, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.status {
            ExitStatus::Signal { signal, .. } => Some(signal),
            ExitStatus::Code(_) => None,
        }
    }
}

/// A process started in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessHandle {
    /// The engine's id for the process (the agent's `EXEC` id for v86).
    pub id: u64,
    /// Its pid in the guest (also its process group), 0 if unknown.
    pub pid: u32,
}

/// How a background process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessExit {
    /// Exit code or signal.
    pub status: ExitStatus,
    /// Its time limit fired.
    pub timed_out: bool,
}

/// What a background process did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessEvent {
    /// Bytes on stdout.
    Stdout(Vec<u8>),
    /// Bytes on stderr.
    Stderr(Vec<u8>),
    /// It ended.
    Exited(ProcessExit),
    /// The engine lost track of it (the agent restarted or the VM stopped).
    Lost(String),
}

/// A callback for a background process's events.
pub type ProcessListener = Rc<dyn Fn(ProcessEvent)>;

/// Where a boot is.
#[derive(Debug, Clone, PartialEq)]
pub enum BootProgress {
    /// Downloading the emulator and the guest's boot files.
    Loading {
        /// 0–100.
        percent: u8,
        /// What is being fetched.
        detail: String,
    },
    /// The emulator runs; the guest kernel and init are starting.
    Booting {
        /// The last console line, for people who like to watch.
        detail: String,
    },
    /// A saved machine state is being restored.
    Restoring {
        /// What is happening.
        detail: String,
    },
}

/// A callback for boot progress.
pub type ProgressListener = Rc<dyn Fn(BootProgress)>;
/// A callback for console (terminal) output bytes.
pub type ConsoleListener = Rc<dyn Fn(&[u8])>;

/// How to boot.
pub struct BootRequest {
    /// Restore this saved state instead of booting cold.
    pub snapshot: Option<Snapshot>,
    /// Called as the boot advances.
    pub on_progress: ProgressListener,
    /// Called with the guest console's output.
    pub on_console: ConsoleListener,
}

/// What a boot achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct BootReport {
    /// The guest came from a saved state.
    pub restored: bool,
    /// The guest image's hash (empty if the engine has none).
    pub image_hash: String,
    /// The guest agent's instance id.
    pub agent_instance: String,
    /// Wall time of the boot, in milliseconds.
    pub duration_ms: u64,
}

/// A saved machine state. In the browser it holds the engine's `ArrayBuffer` as is, so a
/// snapshot of tens of megabytes is never copied into wasm memory.
#[derive(Clone)]
pub struct Snapshot {
    /// Size in bytes.
    pub size: u64,
    /// The guest agent instance that ran when it was saved.
    pub agent_instance: Option<String>,
    /// The state bytes (browser build only).
    #[cfg(feature = "hydrate")]
    pub buffer: js_sys::ArrayBuffer,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("size", &self.size)
            .finish()
    }
}

/// Events of a page → guest TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpEvent {
    /// The guest accepted the connection.
    Connected,
    /// Bytes from the guest.
    Data(Vec<u8>),
    /// The guest closed its side.
    Closed,
}

/// The engine-specific half of a [`TcpStream`].
pub trait TcpStreamImpl {
    /// Sends bytes to the guest.
    fn write(&self, data: &[u8]);
    /// Closes the connection.
    fn close(&self);
}

/// A page → guest TCP connection (see [`VmEngine::connect`]).
pub struct TcpStream {
    inner: Box<dyn TcpStreamImpl>,
}

impl TcpStream {
    /// Wraps an engine's connection.
    pub fn new(inner: Box<dyn TcpStreamImpl>) -> Self {
        TcpStream { inner }
    }

    /// Sends bytes to the guest.
    pub fn write(&self, data: &[u8]) {
        self.inner.write(data);
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.inner.close();
    }
}

/// One engine interface. Every method that needs a running VM fails with
/// [`VmError::NotRunning`] before `boot` completed and while hibernating; a method whose
/// capability is missing fails with [`VmError::Unsupported`]. Files move through the
/// directory the engine shares with the guest ([`transfer::SharedDirectory`]).
pub trait VmEngine: transfer::SharedDirectory {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;

    /// What it can do.
    fn capabilities(&self) -> Capabilities {
        self.kind().capabilities()
    }

    /// Loads the emulator and boots the guest (or restores `request.snapshot`); resolves once
    /// the guest agent answers.
    fn boot(&self, request: BootRequest) -> VmFuture<'_, BootReport>;

    /// Runs a command to its end and collects its output.
    fn exec(&self, command: ExecCommand) -> VmFuture<'_, ExecResult>;

    /// Starts a command in the background; `on_event` gets its output and its exit.
    fn spawn(&self, command: ExecCommand, on_event: ProcessListener)
        -> VmFuture<'_, ProcessHandle>;

    /// Sends `signal` to a background process's whole process group.
    fn signal(&self, process: u64, signal: u8) -> VmFuture<'_, ()>;

    /// Listens to a background process that a restored snapshot brought back (started by
    /// an earlier page): its output and exit go to `on_event` from now on. False when the
    /// engine does not know the process (or can't restore processes at all).
    fn attach(&self, process: u64, on_event: ProcessListener) -> bool {
        let _ = (process, on_event);
        false
    }

    /// Waits until a background process ends (or `timeout_ms` passes).
    fn wait(&self, process: u64, timeout_ms: u64) -> VmFuture<'_, ProcessExit>;

    /// Writes a file into the guest (parent directories are created): through the shared
    /// directory, as [`transfer::push_file`] does for every engine.
    fn push_file(&self, path: String, data: Vec<u8>) -> VmFuture<'_, ()> {
        Box::pin(transfer::push_file(self, path, data))
    }

    /// Reads a file from the guest, as [`transfer::pull_file`] does for every engine.
    fn pull_file(&self, path: String) -> VmFuture<'_, Vec<u8>> {
        Box::pin(transfer::pull_file(self, path))
    }

    /// Samples memory, disk, CPU and process count.
    fn stats(&self) -> VmFuture<'_, SystemResources>;

    /// Checks that the guest answers (the heartbeat).
    fn ping(&self) -> VmFuture<'_, ()>;

    /// Pauses the machine and returns its saved state.
    fn hibernate(&self) -> VmFuture<'_, Snapshot>;

    /// Continues a machine paused by [`VmEngine::hibernate`] in this page.
    fn resume(&self) -> VmFuture<'_, ()>;

    /// Opens a TCP connection from the page to `port` in the guest.
    fn connect(&self, port: u16, on_event: Rc<dyn Fn(TcpEvent)>) -> VmFuture<'_, TcpStream>;

    /// Types bytes into the guest console.
    fn console_send(&self, data: &[u8]);

    /// Tells the console its size in characters.
    fn console_resize(&self, _cols: u16, _rows: u16) {}

    /// Stops the machine and frees everything it holds.
    fn shutdown(&self) -> VmFuture<'_, ()>;
}

/// Turns the agent's `STATS` replies into [`SystemResources`], keeping the previous CPU
/// counters so CPU usage is the busy share since the last sample.
#[derive(Debug, Clone, Default)]
pub struct StatsSampler {
    last_cpu: Option<CpuTimes>,
}

impl StatsSampler {
    /// A sampler without history.
    pub fn new() -> Self {
        StatsSampler::default()
    }

    /// Sizes in MB (MiB), CPU in percent (the first sample averages since boot).
    pub fn sample(&mut self, raw: &RawStats) -> SystemResources {
        let summary = raw.summary();
        let mb = |kib: Option<u64>| kib.unwrap_or(0) / 1024;
        let memory_total = summary.mem_total_kib;
        let memory_used = match (summary.mem_total_kib, summary.mem_available_kib) {
            (Some(total), Some(available)) => Some(total.saturating_sub(available)),
            _ => None,
        };
        let cpu_usage = match (summary.cpu, self.last_cpu) {
            (Some(now), Some(before)) => now.busy_since(&before),
            (Some(now), None) => now.busy_since(&CpuTimes { total: 0, idle: 0 }),
            _ => None,
        }
        .map(|busy| (busy * 1000.0).round() / 10.0)
        .unwrap_or(0.0);
        if summary.cpu.is_some() {
            self.last_cpu = summary.cpu;
        }
        SystemResources {
            memory_used: mb(memory_used),
            memory_total: mb(memory_total),
            disk_used: mb(summary.disk_used_kib),
            disk_total: mb(summary.disk_total_kib),
            cpu_usage,
            process_count: summary.procs,
        }
    }
}

/// Strips control sequences and keeps the last printable line of console output.
pub fn console_last_line(tail: &str) -> String {
    let mut clean = String::new();
    let mut chars = tail.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        if c == '\n' || !c.is_control() {
            clean.push(c);
        }
    }
    clean
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_last_line_strips_control_sequences() {
        assert_eq!(
            console_last_line("a\n\x1b[1;32mroot@webvm\x1b[0m:~# \n\n"),
            "root@webvm:~#"
        );
        assert_eq!(console_last_line(""), "");
    }

    #[test]
    fn cheerpx_lacks_hibernate_and_tcp() {
        let caps = EngineKind::Cheerpx.capabilities();
        assert!(!caps.hibernate && !caps.tcp_connect);
        let missing = caps.missing();
        assert!(missing.contains(&"hibernate and resume"));
        assert!(EngineKind::V86.capabilities().missing().is_empty());
    }

    #[test]
    fn exec_command_builds_argv() {
        assert_eq!(
            ExecCommand::new("uname", ["-m"]).argv(),
            vec!["uname".to_string(), "-m".to_string()]
        );
        assert_eq!(
            ExecCommand::shell("echo hi").argv(),
            vec!["sh", "-c", "echo hi"]
        );
    }

    #[test]
    fn exec_result_code_and_signal() {
        let mut result = ExecResult {
            status: ExitStatus::Code(1),
            timed_out: false,
            stdout: vec![],
            stderr: vec![],
            truncated: false,
            duration_ms: 5,
        };
        assert_eq!((result.exit_code(), result.signal()), (Some(1), None));
        result.status = ExitStatus::Signal {
            signal: 9,
            core_dumped: false,
        };
        assert_eq!((result.exit_code(), result.signal()), (None, Some(9)));
    }

    fn raw(stat: &str) -> RawStats {
        RawStats {
            meminfo: "MemTotal:  262144 kB\nMemFree: 100000 kB\nMemAvailable: 200704 kB\n".into(),
            stat: stat.into(),
            df: "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda 403440 102400 301040 26% /\n".into(),
            procs: 42,
            ..RawStats::default()
        }
    }

    #[test]
    fn sampler_converts_units_and_diffs_cpu() {
        let mut sampler = StatsSampler::new();
        let first = sampler.sample(&raw("cpu  50 0 50 900 0 0 0 0\n"));
        assert_eq!(first.memory_total, 256);
        assert_eq!(first.memory_used, 60);
        assert_eq!(first.disk_total, 393);
        assert_eq!(first.disk_used, 100);
        assert_eq!(first.process_count, 42);
        assert_eq!(first.cpu_usage, 10.0);
        let second = sampler.sample(&raw("cpu  100 0 100 1000 0 0 0 0\n"));
        // 100 busy of 200 jiffies since the last sample.
        assert_eq!(second.cpu_usage, 50.0);
        // Missing texts give zeros, never a panic.
        let empty = sampler.sample(&RawStats::default());
        assert_eq!(empty, SystemResources::default());
    }
}
