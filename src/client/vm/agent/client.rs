//! [`AgentClient`], the asynchronous WV1 client around [`AgentCore`]: each call has its own
//! timeout and resolves with the reply or an error, never hangs (see the module docs of
//! `agent`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use futures::future::{select, Either, LocalBoxFuture};

use super::machine::{AgentCore, AgentEvent, CallKind, ExecOutcome, Reply, Stream};
use super::AgentError;
use crate::client::vm::{ProcessEvent, ProcessExit, ProcessListener};
use crate::guest_protocol::{ExecSpec, Hello, ProcEntry, RawStats, Request};

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

    /// Gives an adopted process (see [`AgentClient::adopt`]) a listener for its output and
    /// exit from now on; an exit already seen is delivered at once. False when the process
    /// is unknown (it did not survive the snapshot, or the agent restarted).
    pub fn attach(&self, exec_id: u64, listener: ProcessListener) -> bool {
        let exit = {
            let mut state = self.state.borrow_mut();
            let Some(record) = state.procs.get_mut(&exec_id) else {
                return false;
            };
            record.listener = Some(listener.clone());
            record.exit.clone()
        };
        if let Some(exit) = exit {
            listener(match exit {
                Ok(exit) => ProcessEvent::Exited(exit),
                Err(reason) => ProcessEvent::Lost(reason),
            });
        }
        true
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
    use std::cell::Cell;

    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;

    use super::super::test_support::hello;
    use super::*;
    use crate::guest_protocol::{ExitStatus, GuestMessage, Message, RequestDecoder};

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
