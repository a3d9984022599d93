//! [`AgentCore`], the pure WV1 client state machine: requests in, bytes out; bytes in,
//! events out (see the module docs of `agent`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::AgentError;
use crate::client::vm::ProcessExit;
use crate::guest_protocol::{
    ExitStatus, GuestDecoder, GuestMessage, Hello, Message, ProcEntry, RawStats, Request,
    MAX_UNANSWERED_REQUEST_BYTES,
};

/// Output kept per command run to completion; beyond it output is dropped and flagged.
pub const MAX_COLLECTED_OUTPUT: usize = 16 * 1024 * 1024;

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

#[cfg(test)]
mod tests {
    use super::super::test_support::hello;
    use super::*;
    use crate::guest_protocol::{ExecSpec, RequestDecoder, STDIN_CHUNK};

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
}
