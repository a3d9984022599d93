//! The host side of the guest agent (WV1, `guest/PROTOCOL.md`) on top of `crate::guest_protocol`.
//!
//! Two layers, both free of browser APIs so they are tested natively:
//!
//! - [`AgentCore`] (`machine.rs`) is a pure state machine: requests in, bytes out; bytes in,
//!   events out. It numbers requests, keeps the pending calls and the flow-control window (at
//!   most [`MAX_UNANSWERED_REQUEST_BYTES`] of requests sent and not yet answered; more wait
//!   in a queue), collects the output of commands run to completion, routes the output of
//!   background processes, and fails every pending call when a `HELLO` announces a new agent
//!   instance (the agent restarted).
//! - [`AgentClient`] (`client.rs`) wraps it in futures: each call has its own timeout and
//!   resolves with the reply or an error, never hangs. The transport (a function that sends
//!   bytes) and the timer (a function that sleeps) are injected, so tests drive it with a
//!   fake agent.
//!
//! [`MAX_UNANSWERED_REQUEST_BYTES`]: crate::guest_protocol::MAX_UNANSWERED_REQUEST_BYTES

mod client;
mod machine;

pub use self::client::{AgentClient, HelloListener, SendFn, SleepFn};
pub use self::machine::{
    AgentCore, AgentEvent, CallKind, ExecOutcome, Reply, Stream, MAX_COLLECTED_OUTPUT,
};

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

#[cfg(test)]
mod test_support {
    use crate::guest_protocol::{GuestMessage, Hello};

    pub fn hello(instance: &str) -> GuestMessage {
        GuestMessage::Hello(Hello {
            version: 1,
            instance: instance.into(),
            pid: 7,
            boot_id: "b".into(),
            agent: "webvm-agent/1.0".into(),
            features: vec!["exec".into()],
        })
    }
}
