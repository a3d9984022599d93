//! The host side of the guest agent (WV1, `guest/PROTOCOL.md`) on top of `crate::guest_protocol`.
//!
//! Two layers, both free of browser APIs so they are tested natively:
//!
//! - [`AgentCore`] is a pure state machine: requests in, bytes out; bytes in, events out. It
//!   numbers requests, keeps the pending calls and the flow-control window (at most
//!   [`MAX_UNANSWERED_REQUEST_BYTES`] of requests sent and not yet answered; more wait in a
//!   queue), collects the output of commands run to completion, routes the output of
//!   background processes, and fails every pending call when a `HELLO` announces a new agent
//!   instance (the agent restarted).
//! - [`AgentClient`] wraps it in futures: each call has its own timeout and resolves with the
//!   reply or an error, never hangs. The transport (a function that sends bytes) and the
//!   timer (a function that sleeps) are injected, so tests drive it with a fake agent.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::Rc;

use futures::channel::oneshot;
use futures::future::{select, Either, LocalBoxFuture};

use crate::guest_protocol::{
    ExecSpec, ExitStatus, GuestDecoder, GuestMessage, Hello, Message, ProcEntry, RawStats, Request,
    MAX_UNANSWERED_REQUEST_BYTES,
};

use super::{ProcessEvent, ProcessExit, ProcessListener};

/// Output kept per command run to completion; beyond it output is dropped and flagged.
pub const MAX_COLLECTED_OUTPUT: usize = 16 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// No reply in time.
    #[error("the guest agent did not answer {what} within {ms} ms")]
    Timeout {
        /// The request type.
        what: String,
        /// The limit.
        ms: u64,
    },
    /// A new agent instance said HELLO: the call's process was orphaned.
    #[error("the guest agent restarted")]
    Restarted,
    /// The agent answered `ERROR`.
    #[error("{message}")]
    Guest {
        /// `errno` of the failed system call.
        errno: Option<i32>,
        /// The agent's message.
        message: String,
    },
    /// The agent answered with a frame that does not fit the request.
    #[error("{0}")]
    Protocol(String),
    /// The client was shut down (VM stopped).
    #[error("the VM was stopped")]
    Stopped,
    /// The request can't be sent (e.g. an empty command).
    #[error("{0}")]
    Invalid(String),
}

/// What a call waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `PING` → `PONG`.
    Ping,
    /// `EXEC` run to completion: `STARTED`, output, `EXIT`.
    Exec,
    /// `EXEC` in the background: done at `STARTED`; output and `EXIT` become events.
    Spawn,
    /// `STDIN`, `CLOSE` or `KILL` → `OK`.
    Ack,
    /// `GETSTATS` → `STATS`.
    Stats,
    /// `LIST` → `PROCS`.
    List,
}

/// The successful result of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Answer to `PING`.
    Pong {
        /// The answering agent's instance.
        instance: String,
    },
    /// A background process runs.
    Started {
        /// Its pid.
        pid: u32,
    },
    /// A command ran to completion.
    Exec(ExecOutcome),
    /// `OK`.
    Ack,
    /// Raw statistics texts.
    Stats(RawStats),
    /// Processes the agent runs.
    Procs(Vec<ProcEntry>),
}

/// A command's exit and its collected output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Its pid.
    pub pid: u32,
    /// Exit code or signal.
    pub status: ExitStatus,
    /// The guest-side timeout fired.
    pub timed_out: bool,
    /// stdout.
    pub stdout: Vec<u8>,
    /// stderr.
    pub stderr: Vec<u8>,
    /// Output beyond [`MAX_COLLECTED_OUTPUT`] was dropped.
    pub truncated: bool,
}

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

/// What [`AgentCore`] asks its owner to do or tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// Write these bytes to the agent's port.
    Send(Vec<u8>),
    /// The agent said HELLO; `restarted` when it replaced a known instance.
    Hello {
        /// The greeting.
        hello: Hello,
        /// A different instance was known before.
        restarted: bool,
    },
    /// A call finished.
    Done {
        /// Request id.
        id: u64,
        /// Its result.
        result: Result<Reply, AgentError>,
    },
    /// Output of a background process (or of any process no call collects).
    Output {
        /// The `EXEC` id.
        id: u64,
        /// Which stream.
        stream: Stream,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A background process ended.
    Exited {
        /// The `EXEC` id.
        id: u64,
        /// How.
        exit: ProcessExit,
    },
    /// A background process was orphaned by an agent restart.
    Lost {
        /// The `EXEC` id.
        id: u64,
    },
    /// A frame that could not be decoded or attributed (logged by the owner).
    Protocol(String),
}

#[derive(Debug)]
struct PendingCall {
    kind: CallKind,
    what: &'static str,
    pid: u32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    truncated: bool,
}

/// The flow-control window: request bytes sent and not yet answered, and what waits.
#[derive(Debug, Default)]
struct FlowWindow {
    in_flight: BTreeMap<u64, usize>,
    used: usize,
    queue: VecDeque<(u64, Vec<u8>)>,
}

impl FlowWindow {
    /// Bytes to send now, or `None` when the request had to queue.
    fn offer(&mut self, id: u64, bytes: Vec<u8>) -> Option<Vec<u8>> {
        if self.queue.is_empty() && self.fits(bytes.len()) {
            self.used += bytes.len();
            self.in_flight.insert(id, bytes.len());
            Some(bytes)
        } else {
            self.queue.push_back((id, bytes));
            None
        }
    }

    /// A request larger than the window may go alone.
    fn fits(&self, len: usize) -> bool {
        self.used == 0 || self.used + len <= MAX_UNANSWERED_REQUEST_BYTES
    }

    /// The request was answered (or given up): its bytes leave the window.
    fn release(&mut self, id: u64) {
        if let Some(len) = self.in_flight.remove(&id) {
            self.used -= len;
        }
        self.queue.retain(|(queued, _)| *queued != id);
    }

    /// Queued requests that fit now, in order.
    fn pump(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((_, bytes)) = self.queue.front() {
            if !self.fits(bytes.len()) {
                break;
            }
            let Some((id, bytes)) = self.queue.pop_front() else {
                break;
            };
            self.used += bytes.len();
            self.in_flight.insert(id, bytes.len());
            out.push(bytes);
        }
        out
    }

    fn clear(&mut self) {
        *self = FlowWindow::default();
    }
}

/// The pure WV1 client state machine (see the module docs).
#[derive(Debug)]
pub struct AgentCore {
    decoder: GuestDecoder,
    next_id: u64,
    instance: Option<String>,
    calls: BTreeMap<u64, PendingCall>,
    background: BTreeSet<u64>,
    window: FlowWindow,
}

impl AgentCore {
    /// A core whose request ids start at `first_id`. Ids must not repeat those of processes
    /// still running in the guest, so after a snapshot restore start above the old ones (the
    /// browser uses the current time in microseconds).
    pub fn new(first_id: u64) -> Self {
        AgentCore {
            decoder: GuestDecoder::new(),
            next_id: first_id.max(1),
            instance: None,
            calls: BTreeMap::new(),
            background: BTreeSet::new(),
            window: FlowWindow::default(),
        }
    }

    /// The agent instance last seen in `HELLO` or `PONG`.
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    /// Sets the expected instance (e.g. the one saved with a snapshot).
    pub fn set_instance(&mut self, instance: Option<String>) {
        self.instance = instance;
    }

    /// Number of calls waiting for their reply or exit.
    pub fn pending(&self) -> usize {
        self.calls.len()
    }

    /// Request bytes sent and not yet answered.
    pub fn unanswered_bytes(&self) -> usize {
        self.window.used
    }

    /// Requests waiting for room in the window.
    pub fn queued(&self) -> usize {
        self.window.queue.len()
    }

    /// Makes sure later request ids are above `id`.
    pub fn bump_ids_above(&mut self, id: u64) {
        self.next_id = self.next_id.max(id.saturating_add(1));
    }

    /// Starts a call: numbers the request built by `build`, and returns its id and the
    /// events to act on (the bytes to send, unless the window makes it wait).
    pub fn begin(
        &mut self,
        kind: CallKind,
        build: impl FnOnce(u64) -> Request,
    ) -> Result<(u64, Vec<AgentEvent>), AgentError> {
        let id = self.next_id;
        let request = build(id);
        if let Request::Exec { spec, .. } = &request {
            spec.validate()
                .map_err(|error| AgentError::Invalid(error.to_string()))?;
        }
        self.next_id += 1;
        let what = match request {
            Request::Ping { .. } => "PING",
            Request::Exec { .. } => "EXEC",
            Request::Stdin { .. } => "STDIN",
            Request::CloseStdin { .. } => "CLOSE",
            Request::Kill { .. } => "KILL",
            Request::GetStats { .. } => "GETSTATS",
            Request::List { .. } => "LIST",
        };
        self.calls.insert(
            id,
            PendingCall {
                kind,
                what,
                pid: 0,
                stdout: Vec::new(),
                stderr: Vec::new(),
                truncated: false,
            },
        );
        let events = self
            .window
            .offer(id, request.encode())
            .map(AgentEvent::Send)
            .into_iter()
            .collect();
        Ok((id, events))
    }

    /// The name of a pending call's request (for timeout messages).
    pub fn describe(&self, id: u64) -> &'static str {
        self.calls.get(&id).map_or("request", |call| call.what)
    }

    /// Gives up a call (its timeout fired): forgets it, frees its window share and returns
    /// the queued requests that may go now. Late frames for it are ignored.
    pub fn cancel(&mut self, id: u64) -> Vec<AgentEvent> {
        self.calls.remove(&id);
        self.window.release(id);
        self.window
            .pump()
            .into_iter()
            .map(AgentEvent::Send)
            .collect()
    }

    /// Fails every pending call and forgets every background process: the agent is gone
    /// (restart) or the VM stopped.
    pub fn fail_all(&mut self, error: AgentError) -> Vec<AgentEvent> {
        let mut events: Vec<AgentEvent> = std::mem::take(&mut self.calls)
            .into_keys()
            .map(|id| AgentEvent::Done {
                id,
                result: Err(error.clone()),
            })
            .collect();
        events.extend(
            std::mem::take(&mut self.background)
                .into_iter()
                .map(|id| AgentEvent::Lost { id }),
        );
        self.window.clear();
        events
    }

    /// After a snapshot restore: drop any partial line and skip noise until the next frame.
    pub fn resync(&mut self) {
        self.decoder.resync();
    }

    /// Feeds bytes from the agent's port.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<AgentEvent> {
        let mut events = Vec::new();
        for message in self.decoder.feed(bytes) {
            match message {
                Ok(message) => self.handle(message, &mut events),
                Err(error) => events.push(AgentEvent::Protocol(error.to_string())),
            }
        }
        events
    }

    fn reply_arrived(&mut self, id: u64, events: &mut Vec<AgentEvent>) {
        self.window.release(id);
        events.extend(self.window.pump().into_iter().map(AgentEvent::Send));
    }

    fn finish(&mut self, id: u64, result: Result<Reply, AgentError>, events: &mut Vec<AgentEvent>) {
        self.calls.remove(&id);
        events.push(AgentEvent::Done { id, result });
    }

    fn handle(&mut self, message: GuestMessage, events: &mut Vec<AgentEvent>) {
        let id = message.id();
        if let GuestMessage::Hello(hello) = message {
            let restarted = self
                .instance
                .as_ref()
                .is_some_and(|known| *known != hello.instance);
            if restarted {
                events.extend(self.fail_all(AgentError::Restarted));
            }
            self.instance = Some(hello.instance.clone());
            events.push(AgentEvent::Hello { hello, restarted });
            return;
        }
        // Every reply frame answers its request: free its window share first.
        let is_reply = matches!(
            message,
            GuestMessage::Pong { .. }
                | GuestMessage::Started { .. }
                | GuestMessage::Ok { .. }
                | GuestMessage::Stats { .. }
                | GuestMessage::Procs { .. }
                | GuestMessage::Error { .. }
        );
        if is_reply {
            self.reply_arrived(id, events);
        }
        let Some(kind) = self.calls.get(&id).map(|call| call.kind) else {
            self.unattributed(message, events);
            return;
        };
        let unexpected = |message: &GuestMessage| {
            Err(AgentError::Protocol(format!(
                "unexpected reply {message:?} to request {id}"
            )))
        };
        match (kind, message) {
            (_, GuestMessage::Error { errno, message, .. }) => {
                self.finish(id, Err(AgentError::Guest { errno, message }), events)
            }
            (CallKind::Ping, GuestMessage::Pong { instance, .. }) => {
                self.instance = Some(instance.clone());
                self.finish(id, Ok(Reply::Pong { instance }), events)
            }
            (CallKind::Ack, GuestMessage::Ok { .. }) => self.finish(id, Ok(Reply::Ack), events),
            (CallKind::Stats, GuestMessage::Stats { stats, .. }) => {
                self.finish(id, Ok(Reply::Stats(stats)), events)
            }
            (CallKind::List, GuestMessage::Procs { procs, .. }) => {
                self.finish(id, Ok(Reply::Procs(procs)), events)
            }
            (CallKind::Spawn, GuestMessage::Started { pid, .. }) => {
                self.background.insert(id);
                self.finish(id, Ok(Reply::Started { pid }), events)
            }
            (CallKind::Exec, GuestMessage::Started { pid, .. }) => {
                if let Some(call) = self.calls.get_mut(&id) {
                    call.pid = pid;
                }
            }
            (CallKind::Exec, GuestMessage::Stdout { data, .. }) => {
                self.collect(id, Stream::Stdout, data)
            }
            (CallKind::Exec, GuestMessage::Stderr { data, .. }) => {
                self.collect(id, Stream::Stderr, data)
            }
            (
                CallKind::Exec,
                GuestMessage::Exit {
                    status, timed_out, ..
                },
            ) => {
                if let Some(call) = self.calls.remove(&id) {
                    let outcome = ExecOutcome {
                        pid: call.pid,
                        status,
                        timed_out,
                        stdout: call.stdout,
                        stderr: call.stderr,
                        truncated: call.truncated,
                    };
                    events.push(AgentEvent::Done {
                        id,
                        result: Ok(Reply::Exec(outcome)),
                    });
                }
            }
            (_, message) => {
                let result = unexpected(&message);
                self.finish(id, result, events)
            }
        }
    }

    fn collect(&mut self, id: u64, stream: Stream, data: Vec<u8>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let total = call.stdout.len() + call.stderr.len();
        let room = MAX_COLLECTED_OUTPUT.saturating_sub(total);
        if data.len() > room {
            call.truncated = true;
        }
        let keep = &data[..data.len().min(room)];
        match stream {
            Stream::Stdout => call.stdout.extend_from_slice(keep),
            Stream::Stderr => call.stderr.extend_from_slice(keep),
        }
    }

    /// Frames for no pending call: background processes, adopted processes, late replies.
    fn unattributed(&mut self, message: GuestMessage, events: &mut Vec<AgentEvent>) {
        match message {
            GuestMessage::Stdout { id, data } => events.push(AgentEvent::Output {
                id,
                stream: Stream::Stdout,
                data,
            }),
            GuestMessage::Stderr { id, data } => events.push(AgentEvent::Output {
                id,
                stream: Stream::Stderr,
                data,
            }),
            GuestMessage::Exit {
                id,
                status,
                timed_out,
            } => {
                self.background.remove(&id);
                events.push(AgentEvent::Exited {
                    id,
                    exit: ProcessExit { status, timed_out },
                });
            }
            GuestMessage::Error { id: 0, message, .. } => {
                events.push(AgentEvent::Protocol(format!("agent error: {message}")))
            }
            // Late replies to calls that timed out: nothing waits for them any more.
            _ => {}
        }
    }
}

/// A function that resolves after the given number of milliseconds.
pub type SleepFn = Rc<dyn Fn(u64) -> LocalBoxFuture<'static, ()>>;
/// A function that writes bytes to the agent's port.
pub type SendFn = Rc<dyn Fn(&[u8])>;
/// Told about every `HELLO`: the greeting and whether the agent restarted.
pub type HelloListener = Rc<dyn Fn(&Hello, bool)>;

#[derive(Default)]
struct ProcRecord {
    listener: Option<ProcessListener>,
    exit: Option<Result<ProcessExit, String>>,
    waiters: Vec<oneshot::Sender<Result<ProcessExit, String>>>,
}

struct ClientState {
    core: AgentCore,
    waiters: HashMap<u64, oneshot::Sender<Result<Reply, AgentError>>>,
    procs: HashMap<u64, ProcRecord>,
    hello: Option<Hello>,
    hello_waiters: Vec<oneshot::Sender<Hello>>,
    hello_listener: Option<HelloListener>,
    protocol_errors: u64,
    last_protocol_error: Option<String>,
}

/// The asynchronous WV1 client (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct AgentClient {
    state: Rc<RefCell<ClientState>>,
    send: SendFn,
    sleep: SleepFn,
}

impl AgentClient {
    /// A client that writes with `send`, times out with `sleep` and numbers its requests from
    /// `first_id`.
    pub fn new(send: SendFn, sleep: SleepFn, first_id: u64) -> Self {
        AgentClient {
            state: Rc::new(RefCell::new(ClientState {
                core: AgentCore::new(first_id),
                waiters: HashMap::new(),
                procs: HashMap::new(),
                hello: None,
                hello_waiters: Vec::new(),
                hello_listener: None,
                protocol_errors: 0,
                last_protocol_error: None,
            })),
            send,
            sleep,
        }
    }

    /// Called on every `HELLO`.
    pub fn set_hello_listener(&self, listener: HelloListener) {
        self.state.borrow_mut().hello_listener = Some(listener);
    }

    /// The last agent instance seen.
    pub fn instance(&self) -> Option<String> {
        self.state.borrow().core.instance().map(str::to_owned)
    }

    /// Frames that could not be decoded, and the last such problem.
    pub fn protocol_errors(&self) -> (u64, Option<String>) {
        let state = self.state.borrow();
        (state.protocol_errors, state.last_protocol_error.clone())
    }

    /// Bytes arrived from the agent's port.
    pub fn on_bytes(&self, bytes: &[u8]) {
        let events = self.state.borrow_mut().core.feed(bytes);
        self.dispatch(events);
    }

    /// After a snapshot restore (see [`AgentCore::resync`]); `instance` is the one saved.
    pub fn resync(&self, instance: Option<String>) {
        let mut state = self.state.borrow_mut();
        state.core.resync();
        if instance.is_some() {
            state.core.set_instance(instance);
        }
    }

    /// Fails every pending call (the VM stops).
    pub fn shutdown(&self) {
        let events = self.state.borrow_mut().core.fail_all(AgentError::Stopped);
        self.dispatch(events);
    }

    fn dispatch(&self, events: Vec<AgentEvent>) {
        for event in events {
            match event {
                AgentEvent::Send(bytes) => (self.send)(&bytes),
                AgentEvent::Done { id, result } => {
                    let waiter = self.state.borrow_mut().waiters.remove(&id);
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(result);
                    }
                }
                AgentEvent::Output { id, stream, data } => {
                    let listener = self
                        .state
                        .borrow()
                        .procs
                        .get(&id)
                        .and_then(|record| record.listener.clone());
                    if let Some(listener) = listener {
                        listener(match stream {
                            Stream::Stdout => ProcessEvent::Stdout(data),
                            Stream::Stderr => ProcessEvent::Stderr(data),
                        });
                    }
                }
                AgentEvent::Exited { id, exit } => self.proc_ended(id, Ok(exit)),
                AgentEvent::Lost { id } => {
                    self.proc_ended(id, Err("the guest agent restarted".to_string()))
                }
                AgentEvent::Hello { hello, restarted } => {
                    let (waiters, listener) = {
                        let mut state = self.state.borrow_mut();
                        state.hello = Some(hello.clone());
                        (
                            std::mem::take(&mut state.hello_waiters),
                            state.hello_listener.clone(),
                        )
                    };
                    for waiter in waiters {
                        let _ = waiter.send(hello.clone());
                    }
                    if let Some(listener) = listener {
                        listener(&hello, restarted);
                    }
                }
                AgentEvent::Protocol(problem) => {
                    let mut state = self.state.borrow_mut();
                    state.protocol_errors += 1;
                    state.last_protocol_error = Some(problem);
                }
            }
        }
    }

    fn proc_ended(&self, id: u64, exit: Result<ProcessExit, String>) {
        let (listener, waiters) = {
            let mut state = self.state.borrow_mut();
            let record = state.procs.entry(id).or_default();
            record.exit = Some(exit.clone());
            (record.listener.clone(), std::mem::take(&mut record.waiters))
        };
        for waiter in waiters {
            let _ = waiter.send(exit.clone());
        }
        if let Some(listener) = listener {
            listener(match exit {
                Ok(exit) => ProcessEvent::Exited(exit),
                Err(reason) => ProcessEvent::Lost(reason),
            });
        }
    }

    /// Sends a request and waits up to `timeout_ms` for its result.
    pub async fn call(
        &self,
        kind: CallKind,
        build: impl FnOnce(u64) -> Request,
        timeout_ms: u64,
    ) -> Result<Reply, AgentError> {
        self.call_with(kind, build, timeout_ms, |_| {}).await
    }

    /// Like [`AgentClient::call`]; `prepare` runs with the id before anything is sent.
    async fn call_with(
        &self,
        kind: CallKind,
        build: impl FnOnce(u64) -> Request,
        timeout_ms: u64,
        prepare: impl FnOnce(u64),
    ) -> Result<Reply, AgentError> {
        let (sender, receiver) = oneshot::channel();
        let (id, events) = {
            let mut state = self.state.borrow_mut();
            let (id, events) = state.core.begin(kind, build)?;
            state.waiters.insert(id, sender);
            (id, events)
        };
        prepare(id);
        self.dispatch(events);
        match select(receiver, (self.sleep)(timeout_ms)).await {
            Either::Left((Ok(result), _)) => result,
            Either::Left((Err(_canceled), _)) => Err(AgentError::Stopped),
            Either::Right(((), _)) => {
                let (what, events) = {
                    let mut state = self.state.borrow_mut();
                    state.waiters.remove(&id);
                    let what = state.core.describe(id);
                    (what, state.core.cancel(id))
                };
                self.dispatch(events);
                Err(AgentError::Timeout {
                    what: what.to_string(),
                    ms: timeout_ms,
                })
            }
        }
    }

    /// Waits for the agent's `HELLO` (resolves at once if one was seen).
    pub async fn wait_hello(&self, timeout_ms: u64) -> Result<Hello, AgentError> {
        let receiver = {
            let mut state = self.state.borrow_mut();
            if let Some(hello) = &state.hello {
                return Ok(hello.clone());
            }
            let (sender, receiver) = oneshot::channel();
            state.hello_waiters.push(sender);
            receiver
        };
        match select(receiver, (self.sleep)(timeout_ms)).await {
            Either::Left((Ok(hello), _)) => Ok(hello),
            Either::Left((Err(_), _)) => Err(AgentError::Stopped),
            Either::Right(_) => Err(AgentError::Timeout {
                what: "HELLO".into(),
                ms: timeout_ms,
            }),
        }
    }

    /// `PING`: the answering agent's instance.
    pub async fn ping(&self, timeout_ms: u64) -> Result<String, AgentError> {
        match self
            .call(CallKind::Ping, |id| Request::Ping { id }, timeout_ms)
            .await?
        {
            Reply::Pong { instance } => Ok(instance),
            other => Err(AgentError::Protocol(format!("PING answered by {other:?}"))),
        }
    }

    /// Runs a command to completion.
    pub async fn exec(&self, spec: ExecSpec, timeout_ms: u64) -> Result<ExecOutcome, AgentError> {
        match self
            .call(CallKind::Exec, |id| Request::Exec { id, spec }, timeout_ms)
            .await?
        {
            Reply::Exec(outcome) => Ok(outcome),
            other => Err(AgentError::Protocol(format!("EXEC answered by {other:?}"))),
        }
    }

    /// Starts a background process; `listener` gets its output and exit. Returns its id
    /// (the `EXEC` id) and pid.
    pub async fn spawn(
        &self,
        spec: ExecSpec,
        listener: Option<ProcessListener>,
        timeout_ms: u64,
    ) -> Result<(u64, u32), AgentError> {
        let state = self.state.clone();
        let registered = Rc::new(std::cell::Cell::new(0u64));
        let registered_id = registered.clone();
        let result = self
            .call_with(
                CallKind::Spawn,
                |id| Request::Exec { id, spec },
                timeout_ms,
                move |id| {
                    // Registered before the request leaves, so no early output is lost.
                    registered_id.set(id);
                    state.borrow_mut().procs.insert(
                        id,
                        ProcRecord {
                            listener,
                            ..ProcRecord::default()
                        },
                    );
                },
            )
            .await;
        match result {
            Ok(Reply::Started { pid }) => Ok((registered.get(), pid)),
            Ok(other) => Err(AgentError::Protocol(format!("EXEC answered by {other:?}"))),
            Err(error) => {
                self.state.borrow_mut().procs.remove(&registered.get());
                Err(error)
            }
        }
    }

    /// Adopts a process started before a snapshot (found with [`AgentClient::list`]), so
    /// [`AgentClient::wait`] works for it.
    pub fn adopt(&self, exec_id: u64) {
        let mut state = self.state.borrow_mut();
        state.procs.entry(exec_id).or_default();
        state.core.bump_ids_above(exec_id);
    }

    /// Signals a background process's group.
    pub async fn kill(&self, proc_id: u64, signal: u8, timeout_ms: u64) -> Result<(), AgentError> {
        self.call(
            CallKind::Ack,
            |id| Request::Kill {
                id,
                proc_id,
                signal,
                group: true,
            },
            timeout_ms,
        )
        .await
        .map(|_| ())
    }

    /// Waits until a background process ends.
    pub async fn wait(&self, proc_id: u64, timeout_ms: u64) -> Result<ProcessExit, AgentError> {
        let receiver = {
            let mut state = self.state.borrow_mut();
            let record = state.procs.entry(proc_id).or_default();
            if let Some(exit) = &record.exit {
                return exit.clone().map_err(|_| AgentError::Restarted);
            }
            let (sender, receiver) = oneshot::channel();
            record.waiters.push(sender);
            receiver
        };
        match select(receiver, (self.sleep)(timeout_ms)).await {
            Either::Left((Ok(exit), _)) => exit.map_err(|_| AgentError::Restarted),
            Either::Left((Err(_), _)) => Err(AgentError::Stopped),
            Either::Right(_) => Err(AgentError::Timeout {
                what: format!("the exit of process {proc_id}"),
                ms: timeout_ms,
            }),
        }
    }

    /// `GETSTATS`.
    pub async fn stats(&self, timeout_ms: u64) -> Result<RawStats, AgentError> {
        match self
            .call(CallKind::Stats, |id| Request::GetStats { id }, timeout_ms)
            .await?
        {
            Reply::Stats(stats) => Ok(stats),
            other => Err(AgentError::Protocol(format!(
                "GETSTATS answered by {other:?}"
            ))),
        }
    }

    /// `LIST`.
    pub async fn list(&self, timeout_ms: u64) -> Result<Vec<ProcEntry>, AgentError> {
        match self
            .call(CallKind::List, |id| Request::List { id }, timeout_ms)
            .await?
        {
            Reply::Procs(procs) => Ok(procs),
            other => Err(AgentError::Protocol(format!("LIST answered by {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_protocol::{RequestDecoder, STDIN_CHUNK};
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;
    use std::cell::Cell;

    fn hello(instance: &str) -> GuestMessage {
        GuestMessage::Hello(Hello {
            version: 1,
            instance: instance.into(),
            pid: 7,
            boot_id: "b".into(),
            agent: "webvm-agent/1.0".into(),
            features: vec!["exec".into()],
        })
    }

    fn sent(events: &[AgentEvent]) -> Vec<Request> {
        let mut decoder = RequestDecoder::new();
        events
            .iter()
            .filter_map(|event| match event {
                AgentEvent::Send(bytes) => Some(bytes.clone()),
                _ => None,
            })
            .flat_map(|bytes| decoder.feed(&bytes))
            .map(|request| request.expect("valid request"))
            .collect()
    }

    fn done(events: &[AgentEvent]) -> Vec<(u64, Result<Reply, AgentError>)> {
        events
            .iter()
            .filter_map(|event| match event {
                AgentEvent::Done { id, result } => Some((*id, result.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn exec_collects_output_until_exit() {
        let mut core = AgentCore::new(10);
        let (id, events) = core
            .begin(CallKind::Exec, |id| Request::Exec {
                id,
                spec: ExecSpec::new(["uname", "-m"]),
            })
            .unwrap();
        assert_eq!(id, 10);
        assert_eq!(sent(&events).len(), 1);
        let mut bytes = b"[   1.0] kernel noise\n".to_vec();
        for message in [
            GuestMessage::Started { id, pid: 99 },
            GuestMessage::Stdout {
                id,
                data: b"i6".to_vec(),
            },
            GuestMessage::Stderr {
                id,
                data: b"warn".to_vec(),
            },
            GuestMessage::Stdout {
                id,
                data: b"86\n".to_vec(),
            },
        ] {
            bytes.extend(message.encode());
        }
        // Cut mid-frame: nothing completes yet.
        let exit = GuestMessage::Exit {
            id,
            status: ExitStatus::Code(0),
            timed_out: false,
        }
        .encode();
        bytes.extend_from_slice(&exit[..5]);
        assert!(done(&core.feed(&bytes)).is_empty());
        assert_eq!(core.unanswered_bytes(), 0, "STARTED answers the EXEC");
        let finished = done(&core.feed(&exit[5..]));
        assert_eq!(
            finished,
            vec![(
                id,
                Ok(Reply::Exec(ExecOutcome {
                    pid: 99,
                    status: ExitStatus::Code(0),
                    timed_out: false,
                    stdout: b"i686\n".to_vec(),
                    stderr: b"warn".to_vec(),
                    truncated: false,
                }))
            )]
        );
        assert_eq!(core.pending(), 0);
    }

    #[test]
    fn errors_and_unexpected_replies_fail_the_call() {
        let mut core = AgentCore::new(1);
        let (id, _) = core
            .begin(CallKind::Exec, |id| Request::Exec {
                id,
                spec: ExecSpec::new(["/no/such"]),
            })
            .unwrap();
        let events = core.feed(
            &GuestMessage::Error {
                id,
                errno: Some(2),
                message: "No such file".into(),
            }
            .encode(),
        );
        assert_eq!(
            done(&events),
            vec![(
                id,
                Err(AgentError::Guest {
                    errno: Some(2),
                    message: "No such file".into()
                })
            )]
        );
        let (id, _) = core
            .begin(CallKind::Ping, |id| Request::Ping { id })
            .unwrap();
        let events = core.feed(&GuestMessage::Ok { id }.encode());
        assert!(matches!(done(&events)[0].1, Err(AgentError::Protocol(_))));
        // Invalid requests are refused before anything is sent.
        assert!(matches!(
            core.begin(CallKind::Exec, |id| Request::Exec {
                id,
                spec: ExecSpec::default()
            }),
            Err(AgentError::Invalid(_))
        ));
    }

    #[test]
    fn background_processes_stream_and_exit() {
        let mut core = AgentCore::new(1);
        let (id, _) = core
            .begin(CallKind::Spawn, |id| Request::Exec {
                id,
                spec: ExecSpec::new(["sleep", "1000"]),
            })
            .unwrap();
        let mut bytes = GuestMessage::Started { id, pid: 5 }.encode();
        bytes.extend(
            GuestMessage::Stdout {
                id,
                data: b"tick".to_vec(),
            }
            .encode(),
        );
        let events = core.feed(&bytes);
        assert_eq!(done(&events), vec![(id, Ok(Reply::Started { pid: 5 }))]);
        assert!(events.contains(&AgentEvent::Output {
            id,
            stream: Stream::Stdout,
            data: b"tick".to_vec()
        }));
        let events = core.feed(
            &GuestMessage::Exit {
                id,
                status: ExitStatus::Signal {
                    signal: 15,
                    core_dumped: false,
                },
                timed_out: false,
            }
            .encode(),
        );
        assert!(matches!(events[0], AgentEvent::Exited { id: got, .. } if got == id));
    }

    #[test]
    fn new_hello_instance_fails_everything_pending() {
        let mut core = AgentCore::new(1);
        assert!(matches!(
            core.feed(&hello("aaaa").encode())[0],
            AgentEvent::Hello {
                restarted: false,
                ..
            }
        ));
        let (spawned, _) = core
            .begin(CallKind::Spawn, |id| Request::Exec {
                id,
                spec: ExecSpec::new(["sleep", "9"]),
            })
            .unwrap();
        core.feed(
            &GuestMessage::Started {
                id: spawned,
                pid: 3,
            }
            .encode(),
        );
        let (exec, _) = core
            .begin(CallKind::Exec, |id| Request::Exec {
                id,
                spec: ExecSpec::new(["sleep", "9"]),
            })
            .unwrap();
        // The same instance again changes nothing.
        let events = core.feed(&hello("aaaa").encode());
        assert!(done(&events).is_empty());
        let events = core.feed(&hello("bbbb").encode());
        assert_eq!(done(&events), vec![(exec, Err(AgentError::Restarted))]);
        assert!(events.contains(&AgentEvent::Lost { id: spawned }));
        assert!(events.contains(&AgentEvent::Hello {
            hello: match hello("bbbb") {
                GuestMessage::Hello(h) => h,
                _ => unreachable!(),
            },
            restarted: true
        }));
        assert_eq!(core.pending(), 0);
        assert_eq!(core.unanswered_bytes(), 0);
        assert_eq!(core.instance(), Some("bbbb"));
    }

    #[test]
    fn window_limits_unanswered_request_bytes() {
        let mut core = AgentCore::new(1);
        let data = vec![0x55u8; STDIN_CHUNK];
        let mut ids = Vec::new();
        let mut sent_now = 0;
        for _ in 0..6 {
            let (id, events) = core
                .begin(CallKind::Ack, |id| Request::Stdin {
                    id,
                    proc_id: 1,
                    data: data.clone(),
                })
                .unwrap();
            ids.push(id);
            sent_now += sent(&events).len();
            assert!(core.unanswered_bytes() <= MAX_UNANSWERED_REQUEST_BYTES);
        }
        // 8 KiB of data is ~10.9 KiB of base64 frame: only two fit in 32 KiB.
        assert_eq!(sent_now, 2);
        assert_eq!(core.queued(), 4);
        // Answering the first releases the next.
        let events = core.feed(&GuestMessage::Ok { id: ids[0] }.encode());
        assert_eq!(done(&events), vec![(ids[0], Ok(Reply::Ack))]);
        let released = sent(&events);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].id(), ids[2]);
        // A timed-out request frees its share too; a queued one just leaves the queue.
        let events = core.cancel(ids[1]);
        assert_eq!(sent(&events)[0].id(), ids[3]);
        core.cancel(ids[5]);
        assert_eq!(core.queued(), 1);
        // A request larger than the window goes alone once nothing is in flight.
        let mut core = AgentCore::new(1);
        let (_, events) = core
            .begin(CallKind::Ack, |id| Request::Stdin {
                id,
                proc_id: 1,
                data: vec![1; 40 * 1024],
            })
            .unwrap();
        assert_eq!(sent(&events).len(), 1);
    }

    #[test]
    fn unattributed_frames_are_events_or_ignored() {
        let mut core = AgentCore::new(1);
        let events = core.feed(
            &GuestMessage::Stdout {
                id: 77,
                data: b"x".to_vec(),
            }
            .encode(),
        );
        assert_eq!(events.len(), 1);
        // A late PONG for a cancelled call is ignored.
        let (id, _) = core
            .begin(CallKind::Ping, |id| Request::Ping { id })
            .unwrap();
        core.cancel(id);
        let events = core.feed(
            &GuestMessage::Pong {
                id,
                instance: "x".into(),
            }
            .encode(),
        );
        assert!(events.is_empty());
        // Garbage after sync is reported, not fatal.
        let events = core.feed(b"~WV1 OK 1 *00000000\n");
        assert!(matches!(events[0], AgentEvent::Protocol(_)));
    }

    // ------------------------------------------------------------ the async client

    type Timers = Rc<RefCell<Vec<(u64, oneshot::Sender<()>)>>>;

    /// A fake agent behind the client: answers what the test script says.
    struct Harness {
        client: AgentClient,
        outbox: Rc<RefCell<Vec<u8>>>,
        timers: Timers,
    }

    impl Harness {
        fn new() -> Self {
            let outbox = Rc::new(RefCell::new(Vec::new()));
            let timers: Timers = Rc::new(RefCell::new(Vec::new()));
            let out = outbox.clone();
            let timer_list = timers.clone();
            let client = AgentClient::new(
                Rc::new(move |bytes: &[u8]| out.borrow_mut().extend_from_slice(bytes)),
                Rc::new(move |ms| {
                    let (sender, receiver) = oneshot::channel();
                    timer_list.borrow_mut().push((ms, sender));
                    Box::pin(async move {
                        let _ = receiver.await;
                    })
                }),
                100,
            );
            Harness {
                client,
                outbox,
                timers,
            }
        }

        fn requests(&self) -> Vec<Request> {
            let bytes = std::mem::take(&mut *self.outbox.borrow_mut());
            RequestDecoder::new()
                .feed(&bytes)
                .into_iter()
                .map(|r| r.unwrap())
                .collect()
        }

        fn reply(&self, message: GuestMessage) {
            self.client.on_bytes(&message.encode());
        }

        fn fire_timers(&self) {
            for (_, timer) in self.timers.borrow_mut().drain(..) {
                let _ = timer.send(());
            }
        }
    }

    #[test]
    fn client_resolves_calls_and_times_out() {
        let mut pool = LocalPool::new();
        let h = Harness::new();
        let result = Rc::new(RefCell::new(None));
        let (client, slot) = (h.client.clone(), result.clone());
        pool.spawner()
            .spawn_local(async move {
                let out = client.exec(ExecSpec::new(["false"]), 5_000).await;
                *slot.borrow_mut() = Some(out);
            })
            .unwrap();
        pool.run_until_stalled();
        let requests = h.requests();
        assert_eq!(requests.len(), 1);
        let id = requests[0].id();
        assert_eq!(id, 100);
        h.reply(GuestMessage::Started { id, pid: 4 });
        h.reply(GuestMessage::Exit {
            id,
            status: ExitStatus::Code(1),
            timed_out: false,
        });
        pool.run_until_stalled();
        let outcome = result.borrow_mut().take().unwrap().unwrap();
        assert_eq!(outcome.status, ExitStatus::Code(1));

        // A call nobody answers fails with a timeout instead of hanging.
        let (client, slot) = (h.client.clone(), result.clone());
        let timed_out = Rc::new(RefCell::new(None));
        let t = timed_out.clone();
        pool.spawner()
            .spawn_local(async move {
                let _ = slot;
                *t.borrow_mut() = Some(client.ping(1_000).await);
            })
            .unwrap();
        pool.run_until_stalled();
        assert!(timed_out.borrow().is_none());
        h.fire_timers();
        pool.run_until_stalled();
        assert!(matches!(
            timed_out.borrow_mut().take(),
            Some(Err(AgentError::Timeout { ms: 1_000, .. }))
        ));
    }

    #[test]
    fn client_fails_pending_calls_when_the_agent_restarts() {
        let mut pool = LocalPool::new();
        let h = Harness::new();
        h.reply(hello("first"));
        let restarts = Rc::new(Cell::new(0));
        let r = restarts.clone();
        h.client.set_hello_listener(Rc::new(move |_, restarted| {
            if restarted {
                r.set(r.get() + 1);
            }
        }));
        let result = Rc::new(RefCell::new(None));
        let events = Rc::new(RefCell::new(Vec::new()));
        let (client, slot, seen) = (h.client.clone(), result.clone(), events.clone());
        pool.spawner()
            .spawn_local(async move {
                let listener: ProcessListener = Rc::new(move |event| seen.borrow_mut().push(event));
                let spawned = client
                    .spawn(ExecSpec::new(["sleep", "1000"]), Some(listener), 5_000)
                    .await;
                let exec = client.exec(ExecSpec::new(["sleep", "5"]), 60_000).await;
                *slot.borrow_mut() = Some((spawned, exec));
            })
            .unwrap();
        pool.run_until_stalled();
        let spawn_id = h.requests()[0].id();
        // STARTED and the first output in one chunk: the output is not lost.
        let mut chunk = GuestMessage::Started {
            id: spawn_id,
            pid: 50,
        }
        .encode();
        chunk.extend(
            GuestMessage::Stdout {
                id: spawn_id,
                data: b"early".to_vec(),
            }
            .encode(),
        );
        h.client.on_bytes(&chunk);
        pool.run_until_stalled();
        assert_eq!(h.requests().len(), 1, "the exec went out");
        h.reply(hello("second"));
        pool.run_until_stalled();
        let (spawned, exec) = result.borrow_mut().take().unwrap();
        assert_eq!(spawned, Ok((spawn_id, 50)));
        assert_eq!(exec, Err(AgentError::Restarted));
        assert_eq!(restarts.get(), 1);
        assert_eq!(
            *events.borrow(),
            vec![
                ProcessEvent::Stdout(b"early".to_vec()),
                ProcessEvent::Lost("the guest agent restarted".into())
            ]
        );
    }

    #[test]
    fn client_wait_and_adopt() {
        let mut pool = LocalPool::new();
        let h = Harness::new();
        h.client.adopt(5_000);
        let result = Rc::new(RefCell::new(None));
        let (client, slot) = (h.client.clone(), result.clone());
        pool.spawner()
            .spawn_local(async move {
                *slot.borrow_mut() = Some(client.wait(5_000, 60_000).await);
            })
            .unwrap();
        pool.run_until_stalled();
        h.reply(GuestMessage::Exit {
            id: 5_000,
            status: ExitStatus::Code(0),
            timed_out: false,
        });
        pool.run_until_stalled();
        assert_eq!(
            result.borrow_mut().take(),
            Some(Ok(ProcessExit {
                status: ExitStatus::Code(0),
                timed_out: false
            }))
        );
        // Ids of later requests are above the adopted one.
        let client = h.client.clone();
        pool.spawner()
            .spawn_local(async move {
                let _ = client.ping(10).await;
            })
            .unwrap();
        pool.run_until_stalled();
        assert!(h.requests()[0].id() > 5_000);
        // Shutting down fails what waits.
        h.client.shutdown();
        pool.run_until_stalled();
    }
}
