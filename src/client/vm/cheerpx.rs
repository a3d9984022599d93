//! The CheerpX engine (browser build only), written against CheerpX's documented API (see
//! `js/cheerpx_bridge.js`). CheerpX has no guest agent channel, no snapshots and no
//! page → guest TCP, so:
//!
//! - commands run with `cx.run` under `sh`, their stdout and stderr redirected into files of
//!   an IDBDevice mounted at `/mnt/out`, read back when they end; exit status from `cx.run`;
//!   time limits with coreutils `timeout`;
//! - background processes write their pid there too, so they can be signalled (`kill`); their
//!   output arrives when they end, not while they run;
//! - files go through a DataDevice mounted at `/mnt/host` (to the guest) and `/mnt/out`
//!   (from it), copied into place by `transfer`, the path every engine shares;
//! - hibernate, resume and `connect` are [`VmError::Unsupported`].
//!
//! It loads from its vendor's CDN and needs a cross-origin isolated page, neither of which is
//! available where this project is tested, so this engine is untested. Its root disk must be
//! an ext2 image (our guest image is ext4 for v86): by default the vendor's public Debian
//! image, configurable with the `webvm.cheerpx.disk` setting.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use futures::future::{select, Either};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::bridge::{self, CheerpXMachine};
use super::transfer::{self, SharedDirectory, SharedDirs};
use super::{
    BootProgress, BootReport, BootRequest, EngineKind, ExecCommand, ExecResult, ExitStatus,
    ProcessEvent, ProcessExit, ProcessHandle, ProcessListener, Snapshot, StatsSampler, TcpEvent,
    TcpStream, VmEngine, VmError, VmFuture,
};
use crate::guest_protocol::RawStats;
use crate::model::SystemResources;

/// The CheerpX build loaded from the vendor's CDN.
pub const DEFAULT_CDN_URL: &str = "https://cxrtnc.leaningtech.com/1.1.5/cx.esm.js";
/// The vendor's public Debian disk (ext2, streamed over WebSocket).
pub const DEFAULT_DISK_URL: &str = "wss://disks.webvm.io/debian_large_20230522_5044875331.ext2";

/// Where CheerpX finds what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheerpXSettings {
    /// URL of `cx.esm.js`.
    pub cdn_url: String,
    /// URL of the ext2 root disk.
    pub disk_url: String,
    /// IndexedDB name prefix of the writable overlay.
    pub cache_id: String,
}

impl Default for CheerpXSettings {
    fn default() -> Self {
        CheerpXSettings {
            cdn_url: DEFAULT_CDN_URL.into(),
            disk_url: DEFAULT_DISK_URL.into(),
            cache_id: "webvm-cheerpx".into(),
        }
    }
}

/// Where the DataDevice (files from the page) is mounted.
const DATA_DIR: &str = "/mnt/host";
/// Where the IDBDevice (command output, files for the page) is mounted.
const OUT_DIR: &str = "/mnt/out";

type ConsoleClosure = Closure<dyn FnMut(Uint8Array)>;

#[derive(Default)]
struct ProcSlot {
    pid: u32,
    exit: Option<ProcessExit>,
    waiters: Vec<oneshot::Sender<ProcessExit>>,
}

#[derive(Default)]
struct Inner {
    settings: CheerpXSettings,
    machine: RefCell<Option<CheerpXMachine>>,
    on_console: RefCell<Option<ConsoleClosure>>,
    procs: RefCell<HashMap<u64, ProcSlot>>,
    sampler: RefCell<StatsSampler>,
}

/// The CheerpX engine. See the module docs.
#[derive(Clone, Default)]
pub struct CheerpXEngine {
    inner: Rc<Inner>,
}

/// `sh -c` script that runs `"$0" "$@"` with its output in `/mnt/out/<name>.out|.err`.
fn redirect_script(name: &str, background: bool, timeout_s: Option<u64>) -> String {
    let pid = if background {
        format!("echo $$ > {OUT_DIR}/{name}.pid; ")
    } else {
        String::new()
    };
    let limit = timeout_s
        .map(|s| format!("timeout -k 2 {s} "))
        .unwrap_or_default();
    format!("{pid}exec {limit}\"$0\" \"$@\" > {OUT_DIR}/{name}.out 2> {OUT_DIR}/{name}.err")
}

/// Exit status of `sh` → code or signal (128 + n), and whether `timeout` fired (124).
fn status_of(status: i32) -> (ExitStatus, bool) {
    match status {
        124 => (ExitStatus::Code(124), true),
        129..=192 => (
            ExitStatus::Signal {
                signal: status - 128,
                core_dumped: false,
            },
            false,
        ),
        code => (ExitStatus::Code(code), false),
    }
}

/// The environment of the user's console shell: [`super::GUEST_ENV`] with bash and a
/// terminal.
fn login_env() -> Array {
    super::GUEST_ENV
        .iter()
        .map(|line| match line.split_once('=') {
            Some(("SHELL", _)) => "SHELL=/bin/bash",
            _ => line,
        })
        .chain(["TERM=xterm"])
        .map(JsValue::from_str)
        .collect()
}

impl CheerpXEngine {
    /// An engine with these settings.
    pub fn new(settings: CheerpXSettings) -> Self {
        CheerpXEngine {
            inner: Rc::new(Inner {
                settings,
                ..Inner::default()
            }),
        }
    }

    fn with_machine<T>(&self, f: impl FnOnce(&CheerpXMachine) -> T) -> Result<T, VmError> {
        self.inner
            .machine
            .borrow()
            .as_ref()
            .map(f)
            .ok_or_else(|| VmError::NotRunning(" (it has not booted)".into()))
    }

    fn machine(&self) -> Result<CheerpXMachine, VmError> {
        self.with_machine(|machine| {
            let value: &JsValue = machine.as_ref();
            value.clone().unchecked_into::<CheerpXMachine>()
        })
    }

    async fn run(
        &self,
        argv: &[String],
        env: &[(String, String)],
        cwd: &str,
    ) -> Result<i32, VmError> {
        let machine = self.machine()?;
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| VmError::Invalid("empty command".into()))?;
        let args: Array = args.iter().map(|a| JsValue::from_str(a)).collect();
        let env: Array = super::GUEST_ENV
            .iter()
            .map(|e| JsValue::from_str(e))
            .chain(
                env.iter()
                    .map(|(k, v)| JsValue::from_str(&format!("{k}={v}"))),
            )
            .collect();
        let status = machine
            .run(program, args, env, cwd)
            .await
            .map_err(|error| VmError::Js(bridge::js_message(&error)))?;
        Ok(status.as_f64().unwrap_or(-1.0) as i32)
    }

    async fn read_out(&self, name: &str) -> Vec<u8> {
        let Ok(machine) = self.machine() else {
            return Vec::new();
        };
        match machine.read_out(name).await {
            Ok(value) => value
                .dyn_into::<Uint8Array>()
                .map(|bytes| bytes.to_vec())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    async fn cleanup(&self, name: &str) {
        let script =
            format!("rm -f {OUT_DIR}/{name}.out {OUT_DIR}/{name}.err {OUT_DIR}/{name}.pid");
        let _ = self
            .run(&["/bin/sh".into(), "-c".into(), script], &[], "/")
            .await;
    }

    fn argv_for(command: &ExecCommand, name: &str, background: bool) -> Vec<String> {
        let script = redirect_script(
            name,
            background,
            command.timeout_ms.map(|ms| ms.div_ceil(1000)),
        );
        ["/bin/sh".to_string(), "-c".to_string(), script]
            .into_iter()
            .chain(command.argv())
            .collect()
    }

    async fn exec_inner(&self, command: ExecCommand) -> Result<ExecResult, VmError> {
        let started = bridge::now_ms();
        let (_, name) = transfer::temp_name("cmd");
        let argv = Self::argv_for(&command, &name, false);
        let cwd = command.cwd.clone().unwrap_or_else(|| "/".into());
        let status = self.run(&argv, &command.env, &cwd).await?;
        let stdout = self.read_out(&format!("{name}.out")).await;
        let stderr = self.read_out(&format!("{name}.err")).await;
        self.cleanup(&name).await;
        let (status, timed_out) = status_of(status);
        Ok(ExecResult {
            status,
            timed_out,
            stdout,
            stderr,
            truncated: false,
            duration_ms: (bridge::now_ms() - started).max(0.0) as u64,
        })
    }

    async fn spawn_inner(
        &self,
        command: ExecCommand,
        on_event: ProcessListener,
    ) -> Result<ProcessHandle, VmError> {
        let (id, name) = transfer::temp_name("cmd");
        let argv = Self::argv_for(&command, &name, true);
        let cwd = command.cwd.clone().unwrap_or_else(|| "/".into());
        self.inner
            .procs
            .borrow_mut()
            .insert(id, ProcSlot::default());
        let engine = self.clone();
        let env = command.env.clone();
        let run_name = name.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let status = engine.run(&argv, &env, &cwd).await;
            let stdout = engine.read_out(&format!("{run_name}.out")).await;
            let stderr = engine.read_out(&format!("{run_name}.err")).await;
            engine.cleanup(&run_name).await;
            if !stdout.is_empty() {
                on_event(ProcessEvent::Stdout(stdout));
            }
            if !stderr.is_empty() {
                on_event(ProcessEvent::Stderr(stderr));
            }
            let exit = match status {
                Ok(status) => {
                    let (status, timed_out) = status_of(status);
                    ProcessExit { status, timed_out }
                }
                Err(error) => {
                    on_event(ProcessEvent::Lost(error.to_string()));
                    return;
                }
            };
            let waiters = {
                let mut procs = engine.inner.procs.borrow_mut();
                let slot = procs.entry(id).or_default();
                slot.exit = Some(exit);
                std::mem::take(&mut slot.waiters)
            };
            for waiter in waiters {
                let _ = waiter.send(exit);
            }
            on_event(ProcessEvent::Exited(exit));
        });
        // The pid file appears once the shell runs.
        let mut pid = 0;
        for _ in 0..50 {
            let text = self.read_out(&format!("{name}.pid")).await;
            if let Ok(found) = String::from_utf8_lossy(&text).trim().parse::<u32>() {
                pid = found;
                break;
            }
            bridge::sleep(200).await;
        }
        if let Some(slot) = self.inner.procs.borrow_mut().get_mut(&id) {
            slot.pid = pid;
        }
        Ok(ProcessHandle { id, pid })
    }

    async fn stats_inner(&self) -> Result<SystemResources, VmError> {
        const SEP: &str = "--webvm-section--";
        let script = format!(
            "cat /proc/meminfo; echo {SEP}; grep '^cpu' /proc/stat; echo {SEP}; df -kP / | tail -n 1 | sed 's/^/x /'; echo {SEP}; ls -d /proc/[0-9]* 2>/dev/null | wc -l"
        );
        let result = self.exec_inner(ExecCommand::shell(script)).await?;
        let text = String::from_utf8_lossy(&result.stdout).into_owned();
        let mut parts = text.split(SEP).map(str::trim);
        let meminfo = parts.next().unwrap_or_default().to_string();
        let stat = parts.next().unwrap_or_default().to_string();
        let df = format!("Filesystem\n{}", parts.next().unwrap_or_default());
        let procs = parts
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        let raw = RawStats {
            meminfo,
            stat,
            df,
            procs,
            ..RawStats::default()
        };
        Ok(self.inner.sampler.borrow_mut().sample(&raw))
    }
}

/// Pushed files go through the DataDevice at `/mnt/host`, which the guest can only read;
/// pulled files through the IDBDevice at `/mnt/out`.
impl SharedDirectory for CheerpXEngine {
    fn dirs(&self) -> SharedDirs {
        SharedDirs {
            to_guest: DATA_DIR,
            from_guest: OUT_DIR,
        }
    }

    fn write_shared<'a>(&'a self, name: &'a str, data: &'a [u8]) -> VmFuture<'a, ()> {
        let bytes = bridge::to_js_bytes(data);
        Box::pin(async move { bridge::js_done(self.machine()?.write_data(name, bytes).await) })
    }

    /// A DataDevice file can't be deleted: it is emptied, which frees its bytes.
    fn discard_pushed<'a>(&'a self, name: &'a str) -> VmFuture<'a, ()> {
        self.write_shared(name, &[])
    }

    fn read_shared<'a>(&'a self, name: &'a str) -> VmFuture<'a, Vec<u8>> {
        Box::pin(async move { bridge::js_bytes(self.machine()?.read_out(name).await, "IDBDevice") })
    }
}

impl VmEngine for CheerpXEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Cheerpx
    }

    fn boot(&self, request: BootRequest) -> VmFuture<'_, BootReport> {
        Box::pin(async move {
            let started = bridge::now_ms();
            (request.on_progress)(BootProgress::Loading {
                percent: 0,
                detail: format!(
                    "Loading {} from its vendor's CDN",
                    EngineKind::Cheerpx.label()
                ),
            });
            let console = request.on_console.clone();
            let on_console = Closure::<dyn FnMut(Uint8Array)>::new(move |bytes: Uint8Array| {
                console(&bytes.to_vec());
            });
            let settings = &self.inner.settings;
            let kind = if settings.disk_url.starts_with("http") {
                "bytes"
            } else {
                "cloud"
            };
            let machine = CheerpXMachine::create(
                &settings.cdn_url,
                &settings.disk_url,
                kind,
                &settings.cache_id,
                &on_console,
            )
            .await
            .map_err(|error| {
                VmError::Load(format!(
                    "{} could not start: {}",
                    EngineKind::Cheerpx.label(),
                    bridge::js_message(&error)
                ))
            })?;
            let machine: CheerpXMachine = machine.unchecked_into();
            *self.inner.on_console.borrow_mut() = Some(on_console);
            (request.on_progress)(BootProgress::Booting {
                detail: "Starting the shell".into(),
            });
            machine.start_shell(login_env());
            *self.inner.machine.borrow_mut() = Some(machine);
            // The first command proves the machine runs.
            self.exec_inner(ExecCommand::new("true", Vec::<String>::new()))
                .await?;
            Ok(BootReport {
                restored: false,
                image_hash: String::new(),
                agent_instance: String::new(),
                duration_ms: (bridge::now_ms() - started).max(0.0) as u64,
            })
        })
    }

    fn spawn(
        &self,
        command: ExecCommand,
        on_event: ProcessListener,
    ) -> VmFuture<'_, ProcessHandle> {
        Box::pin(self.spawn_inner(command, on_event))
    }

    fn signal(&self, process: u64, signal: u8) -> VmFuture<'_, ()> {
        Box::pin(async move {
            let pid = self
                .inner
                .procs
                .borrow()
                .get(&process)
                .map(|slot| slot.pid)
                .filter(|pid| *pid > 0)
                .ok_or_else(|| VmError::Invalid(format!("no running process {process}")))?;
            let argv = ["kill".to_string(), format!("-{signal}"), format!("-{pid}")];
            let status = self.run(&argv, &[], "/").await?;
            if status == 0 {
                Ok(())
            } else {
                Err(VmError::Guest {
                    errno: None,
                    message: format!("kill exited with {status}"),
                })
            }
        })
    }

    fn wait(&self, process: u64, timeout_ms: u64) -> VmFuture<'_, ProcessExit> {
        Box::pin(async move {
            let receiver = {
                let mut procs = self.inner.procs.borrow_mut();
                let slot = procs
                    .get_mut(&process)
                    .ok_or_else(|| VmError::Invalid(format!("no process {process}")))?;
                if let Some(exit) = slot.exit {
                    return Ok(exit);
                }
                let (sender, receiver) = oneshot::channel();
                slot.waiters.push(sender);
                receiver
            };
            match select(receiver, Box::pin(bridge::sleep(timeout_ms))).await {
                Either::Left((Ok(exit), _)) => Ok(exit),
                Either::Left((Err(_), _)) => Err(VmError::NotRunning(String::new())),
                Either::Right(_) => Err(VmError::Timeout(format!(
                    "process {process} still runs after {timeout_ms} ms"
                ))),
            }
        })
    }

    fn exec(&self, command: ExecCommand) -> VmFuture<'_, ExecResult> {
        Box::pin(self.exec_inner(command))
    }

    fn stats(&self) -> VmFuture<'_, SystemResources> {
        Box::pin(self.stats_inner())
    }

    fn ping(&self) -> VmFuture<'_, ()> {
        Box::pin(async move {
            let result = self
                .exec_inner(ExecCommand::new("true", Vec::<String>::new()))
                .await?;
            if result.status.success() {
                Ok(())
            } else {
                Err(VmError::Guest {
                    errno: None,
                    message: "`true` failed".into(),
                })
            }
        })
    }

    fn hibernate(&self) -> VmFuture<'_, Snapshot> {
        Box::pin(async {
            Err(VmError::Unsupported {
                engine: EngineKind::Cheerpx.label(),
                what: "hibernate (it has no snapshots)",
            })
        })
    }

    fn resume(&self) -> VmFuture<'_, ()> {
        Box::pin(async {
            Err(VmError::Unsupported {
                engine: EngineKind::Cheerpx.label(),
                what: "resume (it has no snapshots)",
            })
        })
    }

    fn connect(&self, _port: u16, _on_event: Rc<dyn Fn(TcpEvent)>) -> VmFuture<'_, TcpStream> {
        Box::pin(async {
            Err(VmError::Unsupported {
                engine: EngineKind::Cheerpx.label(),
                what: "open TCP connections into the guest",
            })
        })
    }

    fn console_send(&self, data: &[u8]) {
        let _ = self.with_machine(|machine| machine.console_send(data));
    }

    fn shutdown(&self) -> VmFuture<'_, ()> {
        Box::pin(async move {
            if let Some(machine) = self.inner.machine.borrow_mut().take() {
                machine.destroy();
            }
            self.inner.on_console.borrow_mut().take();
            Ok(())
        })
    }
}
