//! What the rest of the page does with the running guest: commands, background processes,
//! files, page → guest TCP, the console, and waiting until the VM has settled.

use std::rc::Rc;

use futures::channel::{mpsc, oneshot};
use futures::future::{select, Either};
use futures::StreamExt;
use leptos::prelude::*;

use super::console::{ConsoleListener, ConsoleSubscription};
use super::runtime::now_ms;
use super::{VmController, VmViewStoreFields};
use crate::client::vm::{
    bridge, transfer, ExecCommand, ExecResult, ProcessExit, ProcessHandle, ProcessListener,
    TcpEvent, VmError,
};
use crate::model::WebVMState;

impl VmController {
    /// Subscribes a terminal to the console (the backlog is replayed first).
    pub fn subscribe_console(&self, listener: ConsoleListener) -> Option<ConsoleSubscription> {
        Some(self.runtime()?.console.subscribe(listener))
    }

    /// The terminal's size changed: tell the guest (now if it runs, else once it does).
    pub fn console_resize(&self, cols: u16, rows: u16) {
        let Some(runtime) = self.runtime() else {
            return;
        };
        runtime.console_size.set(Some((cols, rows)));
        if self.state() == WebVMState::Ready {
            if let Some(engine) = runtime.engine() {
                engine.console_resize(cols, rows);
            }
        }
    }

    /// Types into the guest console.
    pub fn console_send(&self, bytes: &[u8]) {
        if let Some(engine) = self.runtime().and_then(|runtime| runtime.engine()) {
            engine.console_send(bytes);
        }
    }

    /// The console output kept so far.
    pub fn console_text(&self) -> String {
        self.runtime()
            .map(|runtime| runtime.console.text())
            .unwrap_or_default()
    }

    /// Runs a command in the guest.
    pub async fn exec(&self, command: ExecCommand) -> Result<ExecResult, VmError> {
        self.ready_engine()?.exec(command).await
    }

    /// Starts a background process in the guest.
    pub async fn spawn_process(
        &self,
        command: ExecCommand,
        listener: ProcessListener,
    ) -> Result<ProcessHandle, VmError> {
        self.ready_engine()?.spawn(command, listener).await
    }

    /// Listens to a process a restored snapshot brought back (see
    /// [`crate::client::vm::VmEngine::attach`]).
    pub fn attach_process(&self, process: u64, listener: ProcessListener) -> bool {
        self.ready_engine()
            .map(|engine| engine.attach(process, listener))
            .unwrap_or(false)
    }

    /// Signals a background process.
    pub async fn signal(&self, process: u64, signal: u8) -> Result<(), VmError> {
        self.ready_engine()?.signal(process, signal).await
    }

    /// Waits for a background process to end.
    pub async fn wait(&self, process: u64, timeout_ms: u64) -> Result<ProcessExit, VmError> {
        self.ready_engine()?.wait(process, timeout_ms).await
    }

    /// Writes a file into the guest.
    pub async fn push_file(&self, path: String, data: Vec<u8>) -> Result<(), VmError> {
        self.ready_engine()?.push_file(path, data).await
    }

    /// Frees a file pushed straight into the shared directory once the guest is done with
    /// it (see [`transfer::discard_pushed_file`]).
    pub async fn discard_pushed_file(&self, path: &str) -> Result<(), VmError> {
        transfer::discard_pushed_file(&*self.ready_engine()?, path).await
    }

    /// Reads a file from the guest.
    pub async fn pull_file(&self, path: String) -> Result<Vec<u8>, VmError> {
        self.ready_engine()?.pull_file(path).await
    }

    /// Opens a TCP connection to `port` in the guest, sends `request` once connected and
    /// collects what comes back until the guest closes (or `timeout_ms` passes with
    /// nothing received). A refused connection closes with no data.
    pub async fn tcp_exchange(
        &self,
        port: u16,
        request: Vec<u8>,
        timeout_ms: u64,
    ) -> Result<Vec<u8>, VmError> {
        let mut connection = self.tcp_events(port, timeout_ms).await?;
        let mut received = Vec::new();
        loop {
            match connection.next().await {
                Some(TcpEvent::Connected) => connection.stream.write(&request),
                Some(TcpEvent::Data(data)) => received.extend(data),
                Some(TcpEvent::Closed) => break,
                None => {
                    connection.stream.close();
                    if received.is_empty() {
                        return Err(VmError::Timeout(format!(
                            "no answer from guest port {port} within {timeout_ms} ms"
                        )));
                    }
                    break;
                }
            }
        }
        Ok(received)
    }

    /// Whether something in the guest accepts TCP connections on `port`: connects, and
    /// closes at once (a refused connection closes without connecting). `false` after
    /// `timeout_ms` without an answer.
    pub async fn tcp_listening(&self, port: u16, timeout_ms: u64) -> Result<bool, VmError> {
        let mut connection = self.tcp_events(port, timeout_ms).await?;
        loop {
            match connection.next().await {
                Some(TcpEvent::Connected) => {
                    connection.stream.close();
                    return Ok(true);
                }
                Some(TcpEvent::Data(_)) => continue,
                Some(TcpEvent::Closed) => return Ok(false),
                None => {
                    connection.stream.close();
                    return Ok(false);
                }
            }
        }
    }

    /// A connection to `port` whose events are read with a deadline `timeout_ms` from now.
    async fn tcp_events(&self, port: u16, timeout_ms: u64) -> Result<TimedConnection, VmError> {
        let engine = self.ready_engine()?;
        let (sender, events) = mpsc::unbounded::<TcpEvent>();
        let stream = engine
            .connect(
                port,
                Rc::new(move |event| {
                    let _ = sender.unbounded_send(event);
                }),
            )
            .await?;
        Ok(TimedConnection {
            stream,
            events,
            deadline: now_ms() + timeout_ms as f64,
        })
    }

    /// Opens a TCP connection to `port` in the guest for a caller that streams: `on_event`
    /// gets the connection's events (see [`crate::client::vm::VmEngine::connect`]).
    pub async fn tcp_connect(
        &self,
        port: u16,
        on_event: Rc<dyn Fn(TcpEvent)>,
    ) -> Result<crate::client::vm::TcpStream, VmError> {
        self.ready_engine()?.connect(port, on_event).await
    }

    /// Waits until the VM is no longer loading or booting and no action is in progress
    /// (or `timeout_ms` passes); the state then.
    pub async fn settled(&self, timeout_ms: u64) -> WebVMState {
        let (sender, receiver) = oneshot::channel::<()>();
        let mut sender = Some(sender);
        let live_state = self.live_state;
        let view = self.view;
        let watch = Effect::watch(
            move || (live_state.get(), view.busy().with(Option::is_some)),
            move |(state, busy), _, _| {
                let starting = matches!(state, WebVMState::Loading | WebVMState::Booting);
                if !starting && !busy {
                    if let Some(sender) = sender.take() {
                        let _ = sender.send(());
                    }
                }
            },
            true,
        );
        let _ = select(receiver, Box::pin(bridge::sleep(timeout_ms))).await;
        watch.stop();
        self.state()
    }
}

/// A TCP connection's stream and events, read until a deadline.
struct TimedConnection {
    stream: crate::client::vm::TcpStream,
    events: mpsc::UnboundedReceiver<TcpEvent>,
    deadline: f64,
}

impl TimedConnection {
    /// The next event; `Closed` when the events end, `None` once the deadline passed.
    async fn next(&mut self) -> Option<TcpEvent> {
        let remaining = (self.deadline - now_ms()).max(0.0) as u64;
        match select(self.events.next(), Box::pin(bridge::sleep(remaining))).await {
            Either::Left((event, _)) => Some(event.unwrap_or(TcpEvent::Closed)),
            Either::Right(_) => None,
        }
    }
}
