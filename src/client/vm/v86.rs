//! The v86 engine (browser build only): the guest image from our server in v86, the guest
//! agent on COM2 (`serial1`), the user's console on COM1 (`serial0`), files over 9p
//! (`/mnt/host`), snapshots with `save_state`/`initial_state`, and page → guest TCP through
//! v86's fetch network adapter.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::StreamExt;
use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::agent::{AgentClient, SleepFn};
use super::bridge::{self, V86Machine};
use super::image::{
    v86_options, GuestManifest, LoadProgress, V86Settings, MANIFEST_URL, V86_VENDOR_BASE,
};
use super::transfer::{SharedDirectory, SharedDirs};
use super::{
    console_last_line as last_line, BootProgress, BootReport, BootRequest, Capabilities,
    EngineKind, ExecCommand, ExecResult, ProcessExit, ProcessHandle, ProcessListener, Snapshot,
    StatsSampler, TcpEvent, TcpStream, TcpStreamImpl, VmEngine, VmError, VmFuture,
};
use crate::guest_protocol::ExecSpec;
use crate::model::SystemResources;

/// Longest wait for the emulator to load its files and start.
const LOAD_TIMEOUT_MS: u64 = 180_000;
/// Longest wait from emulator start to the agent's `HELLO` on a cold boot.
const BOOT_TIMEOUT_MS: u64 = 300_000;
/// Longest wait for the restored agent to answer.
const RESTORE_TIMEOUT_MS: u64 = 60_000;
/// Guest-side limit of a command that names none.
const DEFAULT_EXEC_TIMEOUT_MS: u64 = 10 * 60_000;
/// Extra host-side time on top of a command's own limit (SIGTERM grace + slow serial).
const EXEC_MARGIN_MS: u64 = 20_000;
/// Timeout of small requests (ping, kill, stats).
const CALL_TIMEOUT_MS: u64 = 15_000;
/// Where the guest mounts the 9p share (tag `host9p`): files go both ways through it.
const SHARED: SharedDirs = SharedDirs {
    to_guest: "/mnt/host",
    from_guest: "/mnt/host",
};

/// The emulator and the closures it calls (kept alive as long as it runs).
struct Machine {
    js: V86Machine,
    _on_serial: Closure<dyn FnMut(u32, Uint8Array)>,
    _on_progress: Closure<dyn FnMut(String, f64, f64)>,
    _on_event: Closure<dyn FnMut(String, String)>,
}

#[derive(Default)]
struct Inner {
    settings: V86Settings,
    machine: RefCell<Option<Rc<Machine>>>,
    agent: RefCell<Option<AgentClient>>,
    paused: Cell<bool>,
    sampler: RefCell<StatsSampler>,
    image_hash: RefCell<String>,
}

/// The v86 engine. See the module docs.
#[derive(Clone, Default)]
pub struct V86Engine {
    inner: Rc<Inner>,
}

fn sleep_fn() -> SleepFn {
    Rc::new(|ms| Box::pin(bridge::sleep(ms)))
}

/// Request ids start at the current time in microseconds, so they never repeat the ids of
/// processes that still run in a restored snapshot from an earlier page.
fn first_request_id() -> u64 {
    (js_sys::Date::now().max(1.0) as u64).saturating_mul(1000)
}

enum MachineEvent {
    Started,
    DownloadError(String),
}

impl V86Engine {
    /// An engine with the given emulator settings.
    pub fn new(settings: V86Settings) -> Self {
        let inner = Inner {
            settings,
            ..Inner::default()
        };
        V86Engine {
            inner: Rc::new(inner),
        }
    }

    /// The settings (RAM size is part of what a snapshot must match).
    pub fn settings(&self) -> &V86Settings {
        &self.inner.settings
    }

    fn machine(&self) -> Result<Rc<Machine>, VmError> {
        if self.inner.paused.get() {
            return Err(VmError::NotRunning(" (it is hibernating)".into()));
        }
        self.inner
            .machine
            .borrow()
            .clone()
            .ok_or_else(|| VmError::NotRunning(" (it has not booted)".into()))
    }

    fn agent(&self) -> Result<AgentClient, VmError> {
        self.machine()?;
        self.inner
            .agent
            .borrow()
            .clone()
            .ok_or_else(|| VmError::NotRunning(" (its agent has not started)".into()))
    }

    async fn boot_inner(&self, request: BootRequest) -> Result<BootReport, VmError> {
        let started_at = bridge::now_ms();
        if self.inner.machine.borrow().is_some() {
            return Err(VmError::Invalid("the VM is already running".into()));
        }
        let progress = request.on_progress.clone();
        let restoring = request.snapshot.is_some();
        progress(BootProgress::Loading {
            percent: 0,
            detail: "Reading the guest image manifest".into(),
        });
        let text = bridge::fetch_text(MANIFEST_URL).await.map_err(|error| {
            VmError::Load(format!(
                "The guest image is unavailable: {}",
                bridge::js_message(&error)
            ))
        })?;
        let text = text.as_string().unwrap_or_default();
        let manifest = GuestManifest::parse(&text).map_err(VmError::Load)?;
        *self.inner.image_hash.borrow_mut() = manifest.hash.clone();
        progress(BootProgress::Loading {
            percent: 1,
            detail: "Loading the v86 emulator".into(),
        });
        bridge::load_script(&format!("{V86_VENDOR_BASE}/libv86.js"), "V86")
            .await
            .map_err(|error| {
                VmError::Load(format!(
                    "The emulator could not be loaded: {}",
                    bridge::js_message(&error)
                ))
            })?;

        // The agent writes through the machine, which exists only later: go through Inner.
        let weak: Weak<Inner> = Rc::downgrade(&self.inner);
        let agent = AgentClient::new(
            Rc::new(move |bytes: &[u8]| {
                if let Some(inner) = weak.upgrade() {
                    if let Some(machine) = inner.machine.borrow().as_ref() {
                        machine.js.send(1, bytes);
                    }
                }
            }),
            sleep_fn(),
            first_request_id(),
        );
        let (events_tx, mut events_rx) = mpsc::unbounded::<MachineEvent>();
        let console = request.on_console.clone();
        let console_tail = Rc::new(RefCell::new(String::new()));
        let booting = Rc::new(Cell::new(false));
        let on_serial = {
            let agent = agent.clone();
            let progress = progress.clone();
            let tail = console_tail.clone();
            let booting = booting.clone();
            Closure::<dyn FnMut(u32, Uint8Array)>::new(move |port: u32, bytes: Uint8Array| {
                let bytes = bytes.to_vec();
                match port {
                    1 => agent.on_bytes(&bytes),
                    0 => {
                        console(&bytes);
                        if booting.get() {
                            let mut tail = tail.borrow_mut();
                            tail.push_str(&String::from_utf8_lossy(&bytes));
                            if tail.len() > 2048 {
                                let cut = tail.len() - 1024;
                                let cut = (cut..tail.len())
                                    .find(|i| tail.is_char_boundary(*i))
                                    .unwrap_or(tail.len());
                                tail.drain(..cut);
                            }
                            if bytes.contains(&b'\n') {
                                let line = last_line(&tail);
                                if !line.is_empty() {
                                    progress(BootProgress::Booting { detail: line });
                                }
                            }
                        }
                    }
                    _ => {}
                }
            })
        };
        let on_progress = {
            let progress = progress.clone();
            let tracker = RefCell::new(LoadProgress::new(&manifest));
            Closure::<dyn FnMut(String, f64, f64)>::new(
                move |name: String, loaded: f64, total: f64| {
                    let percent = tracker.borrow_mut().update(
                        &name,
                        loaded.max(0.0) as u64,
                        total.max(0.0) as u64,
                    );
                    let file = name.rsplit('/').next().unwrap_or(&name).to_string();
                    progress(BootProgress::Loading {
                        percent: percent.max(2),
                        detail: format!("Downloading {file}"),
                    });
                },
            )
        };
        let on_event = {
            let events_tx = events_tx.clone();
            Closure::<dyn FnMut(String, String)>::new(move |name: String, detail: String| {
                let event = match name.as_str() {
                    "emulator-started" => Some(MachineEvent::Started),
                    "download-error" => Some(MachineEvent::DownloadError(detail)),
                    _ => None,
                };
                if let Some(event) = event {
                    let _ = events_tx.unbounded_send(event);
                }
            })
        };
        let options = v86_options(&manifest, &self.inner.settings).to_string();
        let initial_state: JsValue = request
            .snapshot
            .as_ref()
            .map(|snapshot| snapshot.buffer.clone().into())
            .unwrap_or(JsValue::NULL);
        let js = V86Machine::new(
            &options,
            &initial_state,
            &on_serial,
            &on_progress,
            &on_event,
        )
        .map_err(|error| {
            VmError::Load(format!(
                "The emulator could not start: {}",
                bridge::js_message(&error)
            ))
        })?;
        *self.inner.machine.borrow_mut() = Some(Rc::new(Machine {
            js,
            _on_serial: on_serial,
            _on_progress: on_progress,
            _on_event: on_event,
        }));
        *self.inner.agent.borrow_mut() = Some(agent.clone());
        self.inner.paused.set(false);

        // Until the emulator runs.
        let started = select(events_rx.next(), Box::pin(bridge::sleep(LOAD_TIMEOUT_MS))).await;
        match started {
            Either::Left((Some(MachineEvent::Started), _)) => {}
            Either::Left((Some(MachineEvent::DownloadError(file)), _)) => {
                return Err(VmError::Load(format!("Downloading {file} failed")));
            }
            Either::Left((None, _)) => {
                return Err(VmError::Load("The emulator stopped while loading".into()))
            }
            Either::Right(_) => {
                return Err(VmError::Timeout(format!(
                    "The emulator did not start within {} s",
                    LOAD_TIMEOUT_MS / 1000
                )))
            }
        }

        let instance = if let Some(snapshot) = &request.snapshot {
            progress(BootProgress::Restoring {
                detail: "Waking the restored guest".into(),
            });
            agent.resync(snapshot.agent_instance.clone());
            let deadline = bridge::now_ms() + RESTORE_TIMEOUT_MS as f64;
            let instance = loop {
                match agent.ping(1_000).await {
                    Ok(instance) => break instance,
                    Err(error) if bridge::now_ms() > deadline => {
                        return Err(VmError::Timeout(format!(
                            "The restored guest did not answer: {error}"
                        )))
                    }
                    Err(_) => {}
                }
            };
            if snapshot
                .agent_instance
                .as_deref()
                .is_some_and(|saved| saved != instance)
            {
                leptos::logging::warn!(
                    "the restored guest agent is a new instance ({instance}); processes started before the snapshot are not tracked"
                );
            }
            // Processes that ran when the snapshot was taken can still be waited for and
            // killed; later request ids stay above theirs.
            if let Ok(procs) = agent.list(CALL_TIMEOUT_MS).await {
                for entry in procs {
                    agent.adopt(entry.exec_id);
                }
            }
            instance
        } else {
            booting.set(true);
            progress(BootProgress::Booting {
                detail: "the kernel is starting".into(),
            });
            let hello = agent.wait_hello(BOOT_TIMEOUT_MS).await.map_err(|_| {
                let line = last_line(&console_tail.borrow());
                VmError::Timeout(format!(
                    "Linux did not finish booting within {} s{}",
                    BOOT_TIMEOUT_MS / 1000,
                    if line.is_empty() {
                        String::new()
                    } else {
                        format!(" (last console line: {line})")
                    }
                ))
            })?;
            booting.set(false);
            hello.instance
        };
        Ok(BootReport {
            restored: restoring,
            image_hash: manifest.hash,
            agent_instance: instance,
            duration_ms: (bridge::now_ms() - started_at).max(0.0) as u64,
        })
    }

    fn spec(command: &ExecCommand) -> ExecSpec {
        ExecSpec {
            argv: command.argv(),
            env: command.env.clone(),
            clear_env: false,
            cwd: command.cwd.clone(),
            stdin: false,
            timeout_ms: Some(command.timeout_ms.unwrap_or(DEFAULT_EXEC_TIMEOUT_MS)),
            grace_ms: None,
        }
    }

    async fn exec_inner(&self, command: ExecCommand) -> Result<ExecResult, VmError> {
        let agent = self.agent()?;
        let started = bridge::now_ms();
        let spec = Self::spec(&command);
        let host_timeout = spec.timeout_ms.unwrap_or(DEFAULT_EXEC_TIMEOUT_MS) + EXEC_MARGIN_MS;
        let outcome = agent.exec(spec, host_timeout).await?;
        Ok(ExecResult {
            status: outcome.status,
            timed_out: outcome.timed_out,
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            truncated: outcome.truncated,
            duration_ms: (bridge::now_ms() - started).max(0.0) as u64,
        })
    }

    async fn hibernate_inner(&self) -> Result<Snapshot, VmError> {
        let machine = self.machine()?;
        let instance = self
            .inner
            .agent
            .borrow()
            .as_ref()
            .and_then(AgentClient::instance);
        machine
            .js
            .stop()
            .await
            .map_err(|error| VmError::Js(bridge::js_message(&error)))?;
        match machine.js.save_state().await {
            Ok(buffer) => match buffer.dyn_into::<js_sys::ArrayBuffer>() {
                Ok(buffer) => {
                    self.inner.paused.set(true);
                    Ok(Snapshot {
                        size: u64::from(buffer.byte_length()),
                        buffer,
                        agent_instance: instance,
                    })
                }
                Err(_) => {
                    let _ = machine.js.run().await;
                    Err(VmError::Js("save_state returned no ArrayBuffer".into()))
                }
            },
            Err(error) => {
                let _ = machine.js.run().await;
                Err(VmError::Js(format!(
                    "saving the machine failed: {}",
                    bridge::js_message(&error)
                )))
            }
        }
    }

    async fn resume_inner(&self) -> Result<(), VmError> {
        let machine = self
            .inner
            .machine
            .borrow()
            .clone()
            .ok_or_else(|| VmError::NotRunning(" (nothing to resume)".into()))?;
        machine
            .js
            .run()
            .await
            .map_err(|error| VmError::Js(bridge::js_message(&error)))?;
        self.inner.paused.set(false);
        let agent = self.agent()?;
        let mut last = None;
        for _ in 0..10 {
            match agent.ping(2_000).await {
                Ok(_) => return Ok(()),
                Err(error) => last = Some(error),
            }
        }
        Err(last.map_or_else(|| VmError::Timeout("no answer".into()), VmError::from))
    }

    async fn shutdown_inner(&self) -> Result<(), VmError> {
        let agent = self.inner.agent.borrow_mut().take();
        if let Some(agent) = agent {
            agent.shutdown();
        }
        let machine = self.inner.machine.borrow_mut().take();
        self.inner.paused.set(false);
        if let Some(machine) = machine {
            machine.js.destroy().await;
        }
        Ok(())
    }
}

/// Both directions go through the 9p share.
impl SharedDirectory for V86Engine {
    fn write_shared<'a>(&'a self, name: &'a str, data: &'a [u8]) -> VmFuture<'a, ()> {
        let bytes = bridge::to_js_bytes(data);
        Box::pin(async move { bridge::js_done(self.machine()?.js.create_file(name, bytes).await) })
    }

    fn read_shared<'a>(&'a self, name: &'a str) -> VmFuture<'a, Vec<u8>> {
        Box::pin(async move { bridge::js_bytes(self.machine()?.js.read_file(name).await, "9p") })
    }

    fn dirs(&self) -> SharedDirs {
        SHARED
    }
}

struct V86Connection {
    connection: JsValue,
    _on_event: Closure<dyn FnMut(String, JsValue)>,
}

impl TcpStreamImpl for V86Connection {
    fn write(&self, data: &[u8]) {
        bridge::connection_write(&self.connection, bridge::to_js_bytes(data));
    }

    fn close(&self) {
        bridge::connection_close(&self.connection);
    }
}

impl VmEngine for V86Engine {
    fn kind(&self) -> EngineKind {
        EngineKind::V86
    }

    fn capabilities(&self) -> Capabilities {
        EngineKind::V86.capabilities()
    }

    fn boot(&self, request: BootRequest) -> VmFuture<'_, BootReport> {
        Box::pin(async move {
            let result = self.boot_inner(request).await;
            if result.is_err() {
                let _ = self.shutdown_inner().await;
            }
            result
        })
    }

    fn exec(&self, command: ExecCommand) -> VmFuture<'_, ExecResult> {
        Box::pin(self.exec_inner(command))
    }

    fn spawn(
        &self,
        command: ExecCommand,
        on_event: ProcessListener,
    ) -> VmFuture<'_, ProcessHandle> {
        Box::pin(async move {
            let agent = self.agent()?;
            let mut spec = Self::spec(&command);
            spec.timeout_ms = command.timeout_ms;
            let (id, pid) = agent
                .spawn(spec, Some(on_event), CALL_TIMEOUT_MS * 2)
                .await?;
            Ok(ProcessHandle { id, pid })
        })
    }

    fn attach(&self, process: u64, on_event: ProcessListener) -> bool {
        self.agent()
            .map(|agent| agent.attach(process, on_event))
            .unwrap_or(false)
    }

    fn signal(&self, process: u64, signal: u8) -> VmFuture<'_, ()> {
        Box::pin(async move {
            let agent = self.agent()?;
            agent.kill(process, signal, CALL_TIMEOUT_MS).await?;
            Ok(())
        })
    }

    fn wait(&self, process: u64, timeout_ms: u64) -> VmFuture<'_, ProcessExit> {
        Box::pin(async move {
            let agent = self.agent()?;
            Ok(agent.wait(process, timeout_ms).await?)
        })
    }

    fn stats(&self) -> VmFuture<'_, SystemResources> {
        Box::pin(async move {
            let agent = self.agent()?;
            let raw = agent.stats(CALL_TIMEOUT_MS).await?;
            Ok(self.inner.sampler.borrow_mut().sample(&raw))
        })
    }

    fn ping(&self) -> VmFuture<'_, ()> {
        Box::pin(async move {
            let agent = self.agent()?;
            agent.ping(CALL_TIMEOUT_MS).await?;
            Ok(())
        })
    }

    fn hibernate(&self) -> VmFuture<'_, Snapshot> {
        Box::pin(self.hibernate_inner())
    }

    fn resume(&self) -> VmFuture<'_, ()> {
        Box::pin(self.resume_inner())
    }

    fn connect(&self, port: u16, on_event: Rc<dyn Fn(TcpEvent)>) -> VmFuture<'_, TcpStream> {
        Box::pin(async move {
            let machine = self.machine()?;
            let closure =
                Closure::<dyn FnMut(String, JsValue)>::new(move |kind: String, data: JsValue| {
                    let event = match kind.as_str() {
                        "connect" => TcpEvent::Connected,
                        "data" => TcpEvent::Data(
                            data.dyn_into::<Uint8Array>()
                                .map(|bytes| bytes.to_vec())
                                .unwrap_or_default(),
                        ),
                        _ => TcpEvent::Closed,
                    };
                    on_event(event);
                });
            let connection = machine
                .js
                .connect(port, &closure)
                .map_err(|error| VmError::Js(bridge::js_message(&error)))?;
            Ok(TcpStream::new(Box::new(V86Connection {
                connection,
                _on_event: closure,
            })))
        })
    }

    fn console_send(&self, data: &[u8]) {
        if let Ok(machine) = self.machine() {
            machine.js.send(0, data);
        }
    }

    /// Tells the guest's console tty its size (`stty`, which signals SIGWINCH to the shell).
    fn console_resize(&self, cols: u16, rows: u16) {
        if self.agent().is_err() {
            return;
        }
        let engine = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let mut command = ExecCommand::new(
                "stty",
                [
                    "-F".to_string(),
                    "/dev/ttyS0".into(),
                    "cols".into(),
                    cols.to_string(),
                    "rows".into(),
                    rows.to_string(),
                ],
            );
            command.timeout_ms = Some(10_000);
            if let Err(error) = engine.exec_inner(command).await {
                leptos::logging::warn!("VM: could not set the console size: {error}");
            }
        });
    }

    fn shutdown(&self) -> VmFuture<'_, ()> {
        Box::pin(self.shutdown_inner())
    }
}
