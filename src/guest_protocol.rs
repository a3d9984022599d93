//! Host side of the WV1 guest-agent wire protocol (spec: `guest/PROTOCOL.md`).
//!
//! The guest agent (`guest/agent/webvm-agent`) speaks newline-terminated text
//! frames on a serial port. This module is the pure part of the host side: it
//! encodes requests, decodes the agent's frames from bytes that arrive in
//! arbitrary chunks, and parses the raw `/proc` text of a `STATS` reply. It
//! does no IO, so both the browser engine and native tests use it.
//!
//! ```text
//! ~WV1 <TYPE> <id> [<key>=<value> ...] *<sum32 as 8 lowercase hex digits>\n
//! ```
//!
//! Binary payloads (output, stdin, argv, env, messages) are base64 values;
//! numbers are decimal; the checksum is the sum, modulo 2^32, of every byte
//! before ` *`. A [`Decoder`] skips noise (boot messages, echo) until the first
//! valid frame and reports every bad line after that as an error, never
//! panicking and never losing the frames that follow.
//!
//! Request ids are the host's: unique among unanswered requests and never the
//! id of an `EXEC` whose process may still run. That includes the time after a
//! VM snapshot restore, when the restored agent still streams frames for the
//! exec ids of processes started before the snapshot: keep the id counter with
//! the snapshot (or continue above the ids a `LIST` reports).

use std::fmt;
use std::marker::PhantomData;

/// The environment every guest command starts with, as `KEY=VALUE` lines (CheerpX starts
/// processes with an empty environment; the package installer passes the same on v86).
pub const GUEST_ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "LANG=C.UTF-8",
    "USER=root",
    "SHELL=/bin/sh",
];

/// First token of every frame.
pub const MAGIC: &str = "~WV1";
/// Protocol version announced in `HELLO`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest line a [`Decoder`] accepts by default (the agent sends < 16 KiB).
pub const DEFAULT_MAX_LINE: usize = 1 << 20;
/// The host keeps at most this many request bytes sent but not yet answered
/// (every request gets exactly one reply frame), so the guest's serial input
/// buffers never overflow.
pub const MAX_UNANSWERED_REQUEST_BYTES: usize = 32 * 1024;
/// Suggested size of the data in one `STDIN` request.
pub const STDIN_CHUNK: usize = 8 * 1024;

/// Linux signal numbers (i386) the host commonly sends with [`Request::Kill`].
pub mod signal {
    /// SIGHUP
    pub const HUP: u8 = 1;
    /// SIGINT
    pub const INT: u8 = 2;
    /// SIGKILL
    pub const KILL: u8 = 9;
    /// SIGTERM
    pub const TERM: u8 = 15;
    /// SIGCONT
    pub const CONT: u8 = 18;
    /// SIGSTOP
    pub const STOP: u8 = 19;
}

/// Everything that can be wrong with a line or a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The line holds no `~WV1` frame.
    #[error("line is not a WV1 frame")]
    NotAFrame,
    /// The line exceeded the decoder's limit; it was discarded.
    #[error("line longer than {0} bytes discarded")]
    LineTooLong(usize),
    /// The frame does not end in ` *xxxxxxxx`.
    #[error("frame has no checksum")]
    MissingChecksum,
    /// The checksum does not match the frame's bytes.
    #[error("checksum mismatch: frame says {expected:08x}, bytes sum to {actual:08x}")]
    ChecksumMismatch {
        /// The value written in the frame.
        expected: u32,
        /// The sum of the received bytes.
        actual: u32,
    },
    /// The frame breaks the grammar.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A well-formed frame of a type this side does not accept.
    #[error("unexpected frame type {0:?}")]
    UnknownType(String),
    /// A required field is absent.
    #[error("{kind} frame lacks field {field:?}")]
    MissingField {
        /// Frame type.
        kind: String,
        /// Field name.
        field: &'static str,
    },
    /// A field is present but its value is unusable.
    #[error("{kind} frame: bad {field:?}: {reason}")]
    BadField {
        /// Frame type.
        kind: String,
        /// Field name.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

type Result<T> = std::result::Result<T, ProtocolError>;

// ---------------------------------------------------------------- base64

/// Standard padded base64 (the `base64` crate); the unused low bits of the last symbol are
/// ignored, not refused.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Standard padded base64 (RFC 4648 §4).
pub fn base64_encode(data: &[u8]) -> String {
    base64::Engine::encode(&BASE64, data)
}

/// Decodes standard padded base64; `None` on any deviation (length not a
/// multiple of 4, characters outside the alphabet, misplaced padding).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    base64::Engine::decode(&BASE64, text).ok()
}

// ---------------------------------------------------------------- frames

/// The sum, modulo 2^32, of the bytes (the frame checksum).
pub fn sum32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0u32, |acc, &b| acc.wrapping_add(u32::from(b)))
}

fn is_value_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

fn valid_kind(kind: &str) -> bool {
    (1..=16).contains(&kind.len()) && kind.bytes().all(|c| c.is_ascii_uppercase())
}

/// Replaces every byte that may not appear in a field value by `_`.
fn token(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii() && is_value_byte(c as u8) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One frame in its generic form: type, id and ordered `key=value` fields
/// (keys may repeat). The typed layer is [`Request`] and [`GuestMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    kind: String,
    id: u64,
    fields: Vec<(String, String)>,
}

impl Frame {
    /// A frame without fields. `kind` must be 1–16 ASCII capitals (the typed
    /// layer only passes constants).
    fn new(kind: &str, id: u64) -> Self {
        debug_assert!(valid_kind(kind));
        Frame {
            kind: kind.to_owned(),
            id,
            fields: Vec::new(),
        }
    }

    fn push(&mut self, key: &'static str, value: String) -> &mut Self {
        debug_assert!(valid_key(key) && value.bytes().all(is_value_byte));
        self.fields.push((key.to_owned(), value));
        self
    }

    fn push_num(&mut self, key: &'static str, value: impl fmt::Display) -> &mut Self {
        self.push(key, value.to_string())
    }

    fn push_bytes(&mut self, key: &'static str, value: &[u8]) -> &mut Self {
        self.push(key, base64_encode(value))
    }

    /// Frame type, e.g. `EXEC`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Request id (0 for unsolicited frames such as `HELLO`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Fields in wire order.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// All values of `key`, in order.
    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The wire form, including checksum and the final `\n`.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("{MAGIC} {} {}", self.kind, self.id);
        for (k, v) in &self.fields {
            s.push(' ');
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
        let sum = sum32(s.as_bytes());
        s.push_str(&format!(" *{sum:08x}\n"));
        s.into_bytes()
    }

    /// Parses one line (without its `\n`; a trailing `\r` is ignored). Bytes
    /// before the magic are ignored, so a frame glued to noise still parses.
    pub fn parse(line: &[u8]) -> Result<Frame> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let start = find(line, MAGIC.as_bytes()).ok_or(ProtocolError::NotAFrame)?;
        let line = &line[start..];
        if line.len() < MAGIC.len() + 10 || line[line.len() - 10..line.len() - 8] != *b" *" {
            return Err(ProtocolError::MissingChecksum);
        }
        let (body, check) = line.split_at(line.len() - 10);
        let expected = parse_hex8(&check[2..]).ok_or(ProtocolError::MissingChecksum)?;
        let actual = sum32(body);
        if expected != actual {
            return Err(ProtocolError::ChecksumMismatch { expected, actual });
        }
        if !body.iter().all(|&b| b == b' ' || is_value_byte(b)) {
            return Err(ProtocolError::Malformed(
                "bytes outside printable ASCII".into(),
            ));
        }
        // Only printable ASCII from here on, so this cannot fail.
        let body =
            std::str::from_utf8(body).map_err(|_| ProtocolError::Malformed("not ASCII".into()))?;
        let mut tokens = body.split(' ');
        if tokens.next() != Some(MAGIC) {
            return Err(ProtocolError::Malformed(
                "magic not followed by a space".into(),
            ));
        }
        let kind = tokens.next().unwrap_or("");
        if !valid_kind(kind) {
            return Err(ProtocolError::Malformed(format!("bad frame type {kind:?}")));
        }
        let id_text = tokens.next().unwrap_or("");
        let id = parse_decimal(id_text)
            .ok_or_else(|| ProtocolError::Malformed(format!("bad id {id_text:?}")))?;
        let mut fields = Vec::new();
        for t in tokens {
            let (k, v) = t
                .split_once('=')
                .ok_or_else(|| ProtocolError::Malformed(format!("bad field {t:?}")))?;
            if !valid_key(k) {
                return Err(ProtocolError::Malformed(format!("bad field name {k:?}")));
            }
            fields.push((k.to_owned(), v.to_owned()));
        }
        Ok(Frame {
            kind: kind.to_owned(),
            id,
            fields,
        })
    }

    fn err_missing(&self, field: &'static str) -> ProtocolError {
        ProtocolError::MissingField {
            kind: self.kind.clone(),
            field,
        }
    }

    fn err_bad(&self, field: &str, reason: impl Into<String>) -> ProtocolError {
        ProtocolError::BadField {
            kind: self.kind.clone(),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The single value of `key`; duplicates are an error.
    fn opt(&self, key: &'static str) -> Result<Option<&str>> {
        let mut it = self.values(key);
        let first = it.next();
        if it.next().is_some() {
            return Err(self.err_bad(key, "repeated"));
        }
        Ok(first)
    }

    fn req(&self, key: &'static str) -> Result<&str> {
        self.opt(key)?.ok_or_else(|| self.err_missing(key))
    }

    fn opt_num<T: std::str::FromStr>(&self, key: &'static str) -> Result<Option<T>> {
        match self.opt(key)? {
            None => Ok(None),
            Some(v) => {
                let ok = !v.is_empty()
                    && v.len() <= 20
                    && v.bytes()
                        .enumerate()
                        .all(|(i, c)| c.is_ascii_digit() || (i == 0 && c == b'-' && v.len() > 1));
                ok.then(|| v.parse().ok())
                    .flatten()
                    .map(Some)
                    .ok_or_else(|| self.err_bad(key, format!("not a number: {v:?}")))
            }
        }
    }

    fn req_num<T: std::str::FromStr>(&self, key: &'static str) -> Result<T> {
        self.opt_num(key)?.ok_or_else(|| self.err_missing(key))
    }

    fn flag(&self, key: &'static str) -> Result<bool> {
        match self.opt(key)? {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(v) => Err(self.err_bad(key, format!("expected 0 or 1, got {v:?}"))),
        }
    }

    fn decode_b64(&self, key: &str, value: &str) -> Result<Vec<u8>> {
        base64_decode(value).ok_or_else(|| self.err_bad(key, "invalid base64"))
    }

    fn decode_text(&self, key: &str, value: &str) -> Result<String> {
        String::from_utf8(self.decode_b64(key, value)?).map_err(|_| self.err_bad(key, "not UTF-8"))
    }

    fn req_bytes(&self, key: &'static str) -> Result<Vec<u8>> {
        let v = self.req(key)?;
        self.decode_b64(key, v)
    }

    fn opt_text(&self, key: &'static str) -> Result<Option<String>> {
        self.opt(key)?.map(|v| self.decode_text(key, v)).transpose()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_hex8(s: &[u8]) -> Option<u32> {
    if s.len() != 8 {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some((acc << 4) | u32::from(d))
    })
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A message type that travels in frames: [`Request`] (host → guest) or
/// [`GuestMessage`] (guest → host).
pub trait Message: Sized {
    /// Builds the typed message from a parsed frame.
    fn from_frame(frame: &Frame) -> Result<Self>;
    /// The generic frame for this message.
    fn to_frame(&self) -> Frame;
    /// The wire bytes, ready to send.
    fn encode(&self) -> Vec<u8> {
        self.to_frame().encode()
    }
}

// ---------------------------------------------------------------- requests

/// What to run and how (the `EXEC` request).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecSpec {
    /// Program and arguments; `argv[0]` is looked up in `PATH`. No shell is
    /// involved: pass `["sh", "-c", "..."]` for one.
    pub argv: Vec<String>,
    /// Variables set on top of the agent's environment (or of an empty one
    /// with `clear_env`). Names must be non-empty and free of `=` and NUL.
    pub env: Vec<(String, String)>,
    /// Start from an empty environment instead of the agent's.
    pub clear_env: bool,
    /// Working directory (`/` when `None`).
    pub cwd: Option<String>,
    /// Give the process a stdin pipe, fed by [`Request::Stdin`] and closed by
    /// [`Request::CloseStdin`]; otherwise stdin is `/dev/null`.
    pub stdin: bool,
    /// Guest-side timeout: SIGTERM to the process group after this many ms,
    /// SIGKILL `grace_ms` later. The host enforces its own timeout as well.
    pub timeout_ms: Option<u64>,
    /// Delay between SIGTERM and SIGKILL on timeout (agent default 2000 ms).
    pub grace_ms: Option<u64>,
}

impl ExecSpec {
    /// An `ExecSpec` for `argv` with everything else default.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecSpec {
            argv: argv.into_iter().map(Into::into).collect(),
            ..ExecSpec::default()
        }
    }

    /// Checks what the guest would reject or silently mangle.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, reason: &str| ProtocolError::BadField {
            kind: "EXEC".into(),
            field: field.into(),
            reason: reason.into(),
        };
        match self.argv.first() {
            None => return Err(bad("argv", "empty")),
            Some(a) if a.is_empty() => return Err(bad("argv", "empty program name")),
            _ => {}
        }
        if self.argv.iter().any(|a| a.contains('\0')) {
            return Err(bad("argv", "contains NUL"));
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return Err(bad("env", "names must be non-empty without '=' or NUL"));
            }
        }
        if let Some(cwd) = &self.cwd {
            if cwd.is_empty() || cwd.contains('\0') {
                return Err(bad("cwd", "empty or contains NUL"));
            }
        }
        Ok(())
    }
}

/// Host → guest. Every request gets exactly one reply frame with its id
/// (`PONG`, `STARTED`, `OK`, `STATS`, `PROCS` or `ERROR`); an `EXEC` that
/// started is then followed by `OUT`/`ERR` frames and one `EXIT` with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Liveness check; answered by [`GuestMessage::Pong`].
    Ping {
        /// Request id.
        id: u64,
    },
    /// Start a process in its own session and process group.
    Exec {
        /// Request id; also names the process in later frames.
        id: u64,
        /// What to run.
        spec: ExecSpec,
    },
    /// Write to the stdin pipe of process `proc_id`; `OK` once written.
    Stdin {
        /// Request id.
        id: u64,
        /// Id of the `EXEC` that started the process.
        proc_id: u64,
        /// Bytes to write (keep to about [`STDIN_CHUNK`]).
        data: Vec<u8>,
    },
    /// Close the stdin pipe (after queued writes); `OK` once closed.
    CloseStdin {
        /// Request id.
        id: u64,
        /// Id of the `EXEC` that started the process.
        proc_id: u64,
    },
    /// Send a signal to the process group (or only the leader).
    Kill {
        /// Request id.
        id: u64,
        /// Id of the `EXEC` that started the process.
        proc_id: u64,
        /// Signal number, see [`signal`].
        signal: u8,
        /// Whole process group (default) or just the process.
        group: bool,
    },
    /// Memory, disk, CPU and process statistics.
    GetStats {
        /// Request id.
        id: u64,
    },
    /// The processes the agent is running.
    List {
        /// Request id.
        id: u64,
    },
}

impl Request {
    /// The request id.
    pub fn id(&self) -> u64 {
        match self {
            Request::Ping { id }
            | Request::Exec { id, .. }
            | Request::Stdin { id, .. }
            | Request::CloseStdin { id, .. }
            | Request::Kill { id, .. }
            | Request::GetStats { id }
            | Request::List { id } => *id,
        }
    }
}

impl Message for Request {
    fn to_frame(&self) -> Frame {
        match self {
            Request::Ping { id } => Frame::new("PING", *id),
            Request::GetStats { id } => Frame::new("GETSTATS", *id),
            Request::List { id } => Frame::new("LIST", *id),
            Request::Exec { id, spec } => {
                let mut f = Frame::new("EXEC", *id);
                for a in &spec.argv {
                    f.push_bytes("argv", a.as_bytes());
                }
                for (k, v) in &spec.env {
                    f.push_bytes("env", format!("{k}={v}").as_bytes());
                }
                if spec.clear_env {
                    f.push_num("clearenv", 1);
                }
                if let Some(cwd) = &spec.cwd {
                    f.push_bytes("cwd", cwd.as_bytes());
                }
                if spec.stdin {
                    f.push_num("stdin", 1);
                }
                if let Some(t) = spec.timeout_ms {
                    f.push_num("timeout", t);
                }
                if let Some(g) = spec.grace_ms {
                    f.push_num("grace", g);
                }
                f
            }
            Request::Stdin { id, proc_id, data } => {
                let mut f = Frame::new("STDIN", *id);
                f.push_num("proc", proc_id).push_bytes("data", data);
                f
            }
            Request::CloseStdin { id, proc_id } => {
                let mut f = Frame::new("CLOSE", *id);
                f.push_num("proc", proc_id);
                f
            }
            Request::Kill {
                id,
                proc_id,
                signal,
                group,
            } => {
                let mut f = Frame::new("KILL", *id);
                f.push_num("proc", proc_id).push_num("signal", signal);
                if !group {
                    f.push_num("group", 0);
                }
                f
            }
        }
    }

    fn from_frame(f: &Frame) -> Result<Self> {
        let id = f.id;
        Ok(match f.kind.as_str() {
            "PING" => Request::Ping { id },
            "GETSTATS" => Request::GetStats { id },
            "LIST" => Request::List { id },
            "EXEC" => {
                let argv = f
                    .values("argv")
                    .map(|v| f.decode_text("argv", v))
                    .collect::<Result<Vec<_>>>()?;
                if argv.is_empty() {
                    return Err(f.err_missing("argv"));
                }
                let env = f
                    .values("env")
                    .map(|v| {
                        let kv = f.decode_text("env", v)?;
                        kv.split_once('=')
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .ok_or_else(|| f.err_bad("env", "expected NAME=VALUE"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Request::Exec {
                    id,
                    spec: ExecSpec {
                        argv,
                        env,
                        clear_env: f.flag("clearenv")?,
                        cwd: f.opt_text("cwd")?,
                        stdin: f.flag("stdin")?,
                        timeout_ms: f.opt_num("timeout")?,
                        grace_ms: f.opt_num("grace")?,
                    },
                }
            }
            "STDIN" => Request::Stdin {
                id,
                proc_id: f.req_num("proc")?,
                data: f.req_bytes("data")?,
            },
            "CLOSE" => Request::CloseStdin {
                id,
                proc_id: f.req_num("proc")?,
            },
            "KILL" => Request::Kill {
                id,
                proc_id: f.req_num("proc")?,
                signal: f.opt_num("signal")?.unwrap_or(signal::TERM),
                group: match f.opt("group")? {
                    None | Some("1") => true,
                    Some("0") => false,
                    Some(v) => return Err(f.err_bad("group", format!("expected 0 or 1: {v:?}"))),
                },
            },
            other => return Err(ProtocolError::UnknownType(other.to_owned())),
        })
    }
}

// ---------------------------------------------------------------- guest messages

/// The agent's greeting, sent once per agent start. A new `instance` means the
/// agent restarted: every call pending on the old instance has failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version ([`PROTOCOL_VERSION`]).
    pub version: u32,
    /// Random id of this agent run (32 hex digits).
    pub instance: String,
    /// The agent's pid.
    pub pid: u32,
    /// The guest kernel's boot id: changes on reboot, not on agent restart.
    pub boot_id: String,
    /// Agent name and version, e.g. `webvm-agent/1.0`.
    pub agent: String,
    /// Capabilities, e.g. `exec`, `stdin`, `kill`, `timeout`, `stats`, `procs`.
    pub features: Vec<String>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Normal exit with this code.
    Code(i32),
    /// Killed by a signal.
    Signal {
        /// Signal number.
        signal: i32,
        /// A core dump was written.
        core_dumped: bool,
    },
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Code(0))
    }

    /// The code a shell would show in `$?` (128 + signal for signals).
    pub fn shell_code(&self) -> i32 {
        match self {
            ExitStatus::Code(c) => *c,
            ExitStatus::Signal { signal, .. } => 128 + signal,
        }
    }
}

/// A process the agent runs (from `PROCS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcEntry {
    /// Id of the `EXEC` that started it.
    pub exec_id: u64,
    /// Its pid (also its process group id).
    pub pid: u32,
}

/// The raw texts of a `STATS` reply; [`RawStats::summary`] parses them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawStats {
    /// `/proc/meminfo`.
    pub meminfo: String,
    /// The `cpu*`, `procs_*`, `processes`, `ctxt` and `btime` lines of `/proc/stat`.
    pub stat: String,
    /// Output of `df -kP /`.
    pub df: String,
    /// `/proc/loadavg`.
    pub loadavg: String,
    /// `/proc/uptime`.
    pub uptime: String,
    /// Number of processes in the guest.
    pub procs: u32,
    /// Number of processes the agent runs.
    pub managed: u32,
}

/// Aggregate CPU jiffies from the `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// All jiffies (user + nice + system + idle + iowait + irq + softirq + steal).
    pub total: u64,
    /// Idle + iowait jiffies.
    pub idle: u64,
}

impl CpuTimes {
    /// Busy fraction (0.0–1.0) between an earlier sample and this one.
    pub fn busy_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let idle = self.idle.checked_sub(earlier.idle)?;
        if total == 0 || idle > total {
            return None;
        }
        Some((total - idle) as f64 / total as f64)
    }
}

/// The numbers a host usually wants from [`RawStats`]; `None` where the
/// guest's text lacked them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatsSummary {
    /// `MemTotal` in KiB.
    pub mem_total_kib: Option<u64>,
    /// `MemAvailable` in KiB.
    pub mem_available_kib: Option<u64>,
    /// Size of `/` in KiB.
    pub disk_total_kib: Option<u64>,
    /// Used space on `/` in KiB.
    pub disk_used_kib: Option<u64>,
    /// Free space on `/` in KiB.
    pub disk_available_kib: Option<u64>,
    /// CPU jiffies; diff two samples with [`CpuTimes::busy_since`].
    pub cpu: Option<CpuTimes>,
    /// 1-minute load average.
    pub load1: Option<f64>,
    /// Seconds since boot.
    pub uptime_secs: Option<f64>,
    /// Number of processes in the guest.
    pub procs: u32,
}

impl RawStats {
    /// Parses the texts; never fails, missing values are `None`.
    pub fn summary(&self) -> StatsSummary {
        let meminfo = |key: &str| {
            self.meminfo.lines().find_map(|l| {
                let rest = l.strip_prefix(key)?.strip_prefix(':')?;
                rest.split_whitespace().next()?.parse().ok()
            })
        };
        let df: Vec<u64> = self
            .df
            .lines()
            .skip(1)
            .last()
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(3)
                    .map_while(|v| v.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let cpu = self.stat.lines().find_map(|l| {
            let rest = l.strip_prefix("cpu ")?;
            let v: Vec<u64> = rest
                .split_whitespace()
                .take(8)
                .map_while(|x| x.parse().ok())
                .collect();
            if v.len() < 4 {
                return None;
            }
            Some(CpuTimes {
                total: v.iter().sum(),
                idle: v[3] + v.get(4).copied().unwrap_or(0),
            })
        });
        let first_f64 = |s: &str| s.split_whitespace().next().and_then(|v| v.parse().ok());
        StatsSummary {
            mem_total_kib: meminfo("MemTotal"),
            mem_available_kib: meminfo("MemAvailable"),
            disk_total_kib: df.first().copied(),
            disk_used_kib: df.get(1).copied(),
            disk_available_kib: df.get(2).copied(),
            cpu,
            load1: first_f64(&self.loadavg),
            uptime_secs: first_f64(&self.uptime),
            procs: self.procs,
        }
    }
}

/// Guest → host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestMessage {
    /// The agent (re)started (id 0).
    Hello(Hello),
    /// Reply to `PING`, naming the running agent instance.
    Pong {
        /// Request id.
        id: u64,
        /// [`Hello::instance`] of the agent that answered.
        instance: String,
    },
    /// Reply to `EXEC`: the process runs.
    Started {
        /// The `EXEC` id.
        id: u64,
        /// Pid, also the process group id.
        pid: u32,
    },
    /// Bytes the process wrote to stdout.
    Stdout {
        /// The `EXEC` id.
        id: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Bytes the process wrote to stderr.
    Stderr {
        /// The `EXEC` id.
        id: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The process ended; no more frames for this id follow.
    Exit {
        /// The `EXEC` id.
        id: u64,
        /// Code or signal.
        status: ExitStatus,
        /// The guest-side timeout fired.
        timed_out: bool,
    },
    /// Reply to `STDIN`, `CLOSE` or `KILL`: done.
    Ok {
        /// Request id.
        id: u64,
    },
    /// The request failed (id 0: a line the agent could not attribute).
    Error {
        /// Request id.
        id: u64,
        /// `errno` when a system call failed (2 = ENOENT for a missing program).
        errno: Option<i32>,
        /// What went wrong.
        message: String,
    },
    /// Reply to `GETSTATS`.
    Stats {
        /// Request id.
        id: u64,
        /// The raw texts.
        stats: RawStats,
    },
    /// Reply to `LIST`.
    Procs {
        /// Request id.
        id: u64,
        /// Running processes, by exec id.
        procs: Vec<ProcEntry>,
    },
}

impl GuestMessage {
    /// The id this frame belongs to (0 for `HELLO`).
    pub fn id(&self) -> u64 {
        match self {
            GuestMessage::Hello(_) => 0,
            GuestMessage::Pong { id, .. }
            | GuestMessage::Started { id, .. }
            | GuestMessage::Stdout { id, .. }
            | GuestMessage::Stderr { id, .. }
            | GuestMessage::Exit { id, .. }
            | GuestMessage::Ok { id }
            | GuestMessage::Error { id, .. }
            | GuestMessage::Stats { id, .. }
            | GuestMessage::Procs { id, .. } => *id,
        }
    }

    /// True for the frame that completes a request: every reply except
    /// `STARTED` (whose `EXEC` ends with `EXIT`), `OUT`, `ERR` and `HELLO`.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            GuestMessage::Hello(_)
                | GuestMessage::Started { .. }
                | GuestMessage::Stdout { .. }
                | GuestMessage::Stderr { .. }
        )
    }
}

impl Message for GuestMessage {
    fn to_frame(&self) -> Frame {
        match self {
            GuestMessage::Hello(h) => {
                let mut f = Frame::new("HELLO", 0);
                f.push_num("version", h.version)
                    .push("instance", token(&h.instance))
                    .push_num("pid", h.pid)
                    .push("boot", token(&h.boot_id))
                    .push("agent", token(&h.agent))
                    .push("features", token(&h.features.join(",")));
                f
            }
            GuestMessage::Pong { id, instance } => {
                let mut f = Frame::new("PONG", *id);
                f.push("instance", token(instance));
                f
            }
            GuestMessage::Started { id, pid } => {
                let mut f = Frame::new("STARTED", *id);
                f.push_num("pid", pid);
                f
            }
            GuestMessage::Stdout { id, data } => {
                let mut f = Frame::new("OUT", *id);
                f.push_bytes("data", data);
                f
            }
            GuestMessage::Stderr { id, data } => {
                let mut f = Frame::new("ERR", *id);
                f.push_bytes("data", data);
                f
            }
            GuestMessage::Exit {
                id,
                status,
                timed_out,
            } => {
                let mut f = Frame::new("EXIT", *id);
                match status {
                    ExitStatus::Code(c) => {
                        f.push_num("code", c);
                    }
                    ExitStatus::Signal {
                        signal,
                        core_dumped,
                    } => {
                        f.push_num("signal", signal);
                        if *core_dumped {
                            f.push_num("core", 1);
                        }
                    }
                }
                if *timed_out {
                    f.push_num("timedout", 1);
                }
                f
            }
            GuestMessage::Ok { id } => Frame::new("OK", *id),
            GuestMessage::Error { id, errno, message } => {
                let mut f = Frame::new("ERROR", *id);
                if let Some(e) = errno {
                    f.push_num("errno", e);
                }
                f.push_bytes("msg", message.as_bytes());
                f
            }
            GuestMessage::Stats { id, stats } => {
                let mut f = Frame::new("STATS", *id);
                f.push_bytes("meminfo", stats.meminfo.as_bytes())
                    .push_bytes("stat", stats.stat.as_bytes())
                    .push_bytes("df", stats.df.as_bytes())
                    .push_bytes("loadavg", stats.loadavg.as_bytes())
                    .push_bytes("uptime", stats.uptime.as_bytes())
                    .push_num("procs", stats.procs)
                    .push_num("managed", stats.managed);
                f
            }
            GuestMessage::Procs { id, procs } => {
                let mut f = Frame::new("PROCS", *id);
                for p in procs {
                    f.push("proc", format!("{}:{}", p.exec_id, p.pid));
                }
                f
            }
        }
    }

    fn from_frame(f: &Frame) -> Result<Self> {
        let id = f.id;
        Ok(match f.kind.as_str() {
            "HELLO" => GuestMessage::Hello(Hello {
                version: f.req_num("version")?,
                instance: f.req("instance")?.to_owned(),
                pid: f.req_num("pid")?,
                boot_id: f.opt("boot")?.unwrap_or_default().to_owned(),
                agent: f.opt("agent")?.unwrap_or_default().to_owned(),
                features: f
                    .opt("features")?
                    .map(|v| {
                        v.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            "PONG" => GuestMessage::Pong {
                id,
                instance: f.opt("instance")?.unwrap_or_default().to_owned(),
            },
            "STARTED" => GuestMessage::Started {
                id,
                pid: f.req_num("pid")?,
            },
            "OUT" => GuestMessage::Stdout {
                id,
                data: f.req_bytes("data")?,
            },
            "ERR" => GuestMessage::Stderr {
                id,
                data: f.req_bytes("data")?,
            },
            "EXIT" => {
                let code: Option<i32> = f.opt_num("code")?;
                let sig: Option<i32> = f.opt_num("signal")?;
                let status = match (code, sig) {
                    (Some(c), None) => ExitStatus::Code(c),
                    (None, Some(s)) => ExitStatus::Signal {
                        signal: s,
                        core_dumped: f.flag("core")?,
                    },
                    (None, None) => return Err(f.err_missing("code")),
                    (Some(_), Some(_)) => {
                        return Err(f.err_bad("code", "both code and signal present"))
                    }
                };
                GuestMessage::Exit {
                    id,
                    status,
                    timed_out: f.flag("timedout")?,
                }
            }
            "OK" => GuestMessage::Ok { id },
            "ERROR" => GuestMessage::Error {
                id,
                errno: f.opt_num("errno")?,
                message: match f.opt("msg")? {
                    None => String::new(),
                    Some(v) => String::from_utf8_lossy(&f.decode_b64("msg", v)?).into_owned(),
                },
            },
            "STATS" => GuestMessage::Stats {
                id,
                stats: RawStats {
                    meminfo: f.opt_text("meminfo")?.unwrap_or_default(),
                    stat: f.opt_text("stat")?.unwrap_or_default(),
                    df: f.opt_text("df")?.unwrap_or_default(),
                    loadavg: f.opt_text("loadavg")?.unwrap_or_default(),
                    uptime: f.opt_text("uptime")?.unwrap_or_default(),
                    procs: f.opt_num("procs")?.unwrap_or(0),
                    managed: f.opt_num("managed")?.unwrap_or(0),
                },
            },
            "PROCS" => GuestMessage::Procs {
                id,
                procs: f
                    .values("proc")
                    .map(|v| {
                        v.split_once(':')
                            .and_then(|(e, p)| {
                                Some(ProcEntry {
                                    exec_id: parse_decimal(e)?,
                                    pid: u32::try_from(parse_decimal(p)?).ok()?,
                                })
                            })
                            .ok_or_else(|| f.err_bad("proc", format!("expected id:pid, got {v:?}")))
                    })
                    .collect::<Result<Vec<_>>>()?,
            },
            other => return Err(ProtocolError::UnknownType(other.to_owned())),
        })
    }
}

// ---------------------------------------------------------------- decoder

/// Incremental decoder: feed bytes as they arrive, take messages out.
///
/// Until the first valid frame the decoder is *unsynced* and silently skips
/// everything else (boot noise, echoed requests, a frame cut in half by a
/// snapshot restore). Once synced, every bad line yields one `Err` and
/// decoding continues with the next line. [`Decoder::resync`] returns to the
/// unsynced state (e.g. after restoring a VM snapshot).
#[derive(Debug, Clone)]
pub struct Decoder<M> {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    start: usize,
    /// Bytes of `buf[start..]` already known to hold no newline.
    scanned: usize,
    max_line: usize,
    synced: bool,
    discarding: bool,
    noise_lines: u64,
    _message: PhantomData<fn() -> M>,
}

/// Decoder for what the agent sends (the host's side).
pub type GuestDecoder = Decoder<GuestMessage>;
/// Decoder for requests (a fake agent's side, used in tests).
pub type RequestDecoder = Decoder<Request>;

impl<M: Message> Default for Decoder<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Message> Decoder<M> {
    /// A decoder with the [`DEFAULT_MAX_LINE`] limit.
    pub fn new() -> Self {
        Self::with_max_line(DEFAULT_MAX_LINE)
    }

    /// A decoder that discards lines longer than `max_line` bytes.
    pub fn with_max_line(max_line: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_line: max_line.max(MAGIC.len() + 16),
            synced: false,
            discarding: false,
            noise_lines: 0,
            _message: PhantomData,
        }
    }

    /// Whether a valid frame has been seen since creation or [`Self::resync`].
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Lines skipped while unsynced.
    pub fn noise_lines(&self) -> u64 {
        self.noise_lines
    }

    /// Back to skipping noise until the next valid frame; drops a partial line.
    pub fn resync(&mut self) {
        self.synced = false;
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
        self.discarding = false;
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Appends bytes and returns every message (or error) completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<M>> {
        self.push(bytes);
        std::iter::from_fn(|| self.next_message()).collect()
    }

    /// The next complete message or error, `None` when more bytes are needed.
    pub fn next_message(&mut self) -> Option<Result<M>> {
        loop {
            let pending = &self.buf[self.start..];
            let Some(nl) = pending[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = pending.len();
                if pending.len() > self.max_line {
                    // Too long and still no newline: drop it, skip to the next newline.
                    let was_discarding = self.discarding;
                    self.discarding = true;
                    self.start = self.buf.len();
                    self.scanned = 0;
                    if !was_discarding {
                        return self.report(ProtocolError::LineTooLong(self.max_line));
                    }
                }
                return None;
            };
            let end = self.start + self.scanned + nl;
            let line_start = self.start;
            self.start = end + 1;
            self.scanned = 0;
            if self.discarding {
                self.discarding = false;
                continue;
            }
            let line = &self.buf[line_start..end];
            if line.len() > self.max_line {
                if let Some(r) = self.report(ProtocolError::LineTooLong(self.max_line)) {
                    return Some(r);
                }
                continue;
            }
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            match Frame::parse(line).and_then(|f| M::from_frame(&f)) {
                Ok(m) => {
                    self.synced = true;
                    return Some(Ok(m));
                }
                Err(e) => {
                    if let Some(r) = self.report(e) {
                        return Some(r);
                    }
                }
            }
        }
    }

    fn report(&mut self, e: ProtocolError) -> Option<Result<M>> {
        if self.synced {
            Some(Err(e))
        } else {
            self.noise_lines += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hello() -> GuestMessage {
        GuestMessage::Hello(Hello {
            version: 1,
            instance: "0123456789abcdef0123456789abcdef".into(),
            pid: 97,
            boot_id: "5b1e2c1a-3f47-4a36-9d1b-2d9b1b3c4d5e".into(),
            agent: "webvm-agent/1.0".into(),
            features: vec!["exec".into(), "stdin".into()],
        })
    }

    fn sample_messages() -> Vec<GuestMessage> {
        vec![
            hello(),
            GuestMessage::Pong {
                id: 1,
                instance: "abc".into(),
            },
            GuestMessage::Started { id: 2, pid: 123 },
            GuestMessage::Stdout {
                id: 2,
                data: b"i686\n".to_vec(),
            },
            GuestMessage::Stderr {
                id: 2,
                data: vec![0, 255, 10, 13],
            },
            GuestMessage::Exit {
                id: 2,
                status: ExitStatus::Code(0),
                timed_out: false,
            },
            GuestMessage::Exit {
                id: 3,
                status: ExitStatus::Signal {
                    signal: 9,
                    core_dumped: false,
                },
                timed_out: true,
            },
            GuestMessage::Ok { id: 4 },
            GuestMessage::Error {
                id: 5,
                errno: Some(2),
                message: "exec nope: No such file or directory".into(),
            },
            GuestMessage::Stats {
                id: 6,
                stats: RawStats {
                    meminfo: "MemTotal: 1 kB\n".into(),
                    procs: 3,
                    ..RawStats::default()
                },
            },
            GuestMessage::Procs {
                id: 7,
                procs: vec![ProcEntry {
                    exec_id: 2,
                    pid: 123,
                }],
            },
            GuestMessage::Procs {
                id: 8,
                procs: vec![],
            },
        ]
    }

    fn stream(msgs: &[GuestMessage]) -> Vec<u8> {
        msgs.iter().flat_map(|m| m.encode()).collect()
    }

    fn decode_all(bytes: &[u8]) -> Vec<Result<GuestMessage>> {
        GuestDecoder::new().feed(bytes)
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases: [(&str, &str); 7] = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in cases {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).as_deref(), Some(plain.as_bytes()));
        }
    }

    #[test]
    fn base64_rejects_malformed() {
        for bad in [
            "A", "AB=", "A===", "====", "AB=C", "AB==AB==", "ab$d", "Zm9v\n", "Zg",
        ] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_all_byte_values() {
        let all: Vec<u8> = (0..=255).collect();
        for n in 0..all.len() {
            let enc = base64_encode(&all[n..]);
            assert_eq!(base64_decode(&enc).unwrap(), &all[n..]);
        }
    }

    #[test]
    fn frame_wire_form_is_exact() {
        let wire = Request::Ping { id: 7 }.encode();
        let body = "~WV1 PING 7";
        let expect = format!("{body} *{:08x}\n", sum32(body.as_bytes()));
        assert_eq!(String::from_utf8(wire).unwrap(), expect);
        // The example in PROTOCOL.md.
        assert_eq!(sum32(b"~WV1 PING 7"), 0x301);
    }

    #[test]
    fn protocol_md_examples_parse() {
        let hello = "~WV1 HELLO 0 version=1 instance=3f2a9c0e5b7d41c8a6e0f19d2b4c7e85 pid=151 boot=8b0e5a52-6c1f-4f0e-9a57-2f3d1c0b9e44 agent=webvm-agent/1.0 features=exec,stdin,kill,timeout,stats,procs *00003a7a\n";
        let got = decode_all(hello.as_bytes());
        assert!(
            matches!(&got[0], Ok(GuestMessage::Hello(h)) if h.pid == 151 && h.features.len() == 6)
        );
        let exec = "~WV1 EXEC 12 argv=c2g= argv=LWM= argv=ZWNobyAkWCA+JjI7IGV4aXQgMw== env=WD1oaQ== cwd=L3RtcA== *00001cb4\n";
        let mut spec = ExecSpec::new(["sh", "-c", "echo $X >&2; exit 3"]);
        spec.env.push(("X".into(), "hi".into()));
        spec.cwd = Some("/tmp".into());
        let req = Request::Exec { id: 12, spec };
        assert_eq!(req.encode(), exec.as_bytes());
        assert_eq!(RequestDecoder::new().feed(exec.as_bytes()), vec![Ok(req)]);
        let err = "~WV1 ERROR 14 errno=2 msg=ZXhlYyAvbm8vc3VjaDogTm8gc3VjaCBmaWxlIG9yIGRpcmVjdG9yeQ== *00001b97\n";
        assert_eq!(
            decode_all(err.as_bytes()),
            vec![Ok(GuestMessage::Error {
                id: 14,
                errno: Some(2),
                message: "exec /no/such: No such file or directory".into()
            })]
        );
        let exit = "~WV1 EXIT 13 signal=15 timedout=1 *00000a74\n";
        assert_eq!(
            decode_all(exit.as_bytes()),
            vec![Ok(GuestMessage::Exit {
                id: 13,
                status: ExitStatus::Signal {
                    signal: 15,
                    core_dumped: false
                },
                timed_out: true
            })]
        );
    }

    #[test]
    fn exec_request_round_trip() {
        let spec = ExecSpec {
            argv: vec!["sh".into(), "-c".into(), "echo héllo; exit 3".into()],
            env: vec![("A".into(), "1=2".into()), ("EMPTY".into(), String::new())],
            clear_env: true,
            cwd: Some("/tmp".into()),
            stdin: true,
            timeout_ms: Some(5000),
            grace_ms: Some(100),
        };
        spec.validate().unwrap();
        let req = Request::Exec { id: 42, spec };
        let out = RequestDecoder::new().feed(&req.encode());
        assert_eq!(out, vec![Ok(req)]);
    }

    #[test]
    fn exec_spec_validation() {
        assert!(ExecSpec::new(Vec::<String>::new()).validate().is_err());
        assert!(ExecSpec::new([""]).validate().is_err());
        assert!(ExecSpec::new(["a\0b"]).validate().is_err());
        let mut s = ExecSpec::new(["true"]);
        s.env.push(("A=B".into(), "x".into()));
        assert!(s.validate().is_err());
        assert!(ExecSpec::new(["true"]).validate().is_ok());
    }

    #[test]
    fn all_guest_messages_round_trip() {
        let msgs = sample_messages();
        let got: Vec<_> = decode_all(&stream(&msgs))
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(got, msgs);
    }

    #[test]
    fn split_at_every_byte() {
        let msgs = sample_messages();
        let bytes = stream(&msgs);
        // One byte at a time.
        let mut d = GuestDecoder::new();
        let mut got = Vec::new();
        for b in &bytes {
            got.extend(d.feed(std::slice::from_ref(b)));
        }
        assert_eq!(
            got.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(),
            msgs
        );
        // Two pieces, split at every position.
        for cut in 0..=bytes.len() {
            let mut d = GuestDecoder::new();
            let mut got = d.feed(&bytes[..cut]);
            got.extend(d.feed(&bytes[cut..]));
            let got: Vec<_> = got.into_iter().map(|r| r.unwrap()).collect();
            assert_eq!(got, msgs, "cut at {cut}");
        }
    }

    #[test]
    fn binary_payload_all_256_values() {
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let m = GuestMessage::Stdout { id: 9, data };
        let wire = m.encode();
        assert!(wire[..wire.len() - 1]
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b)));
        assert_eq!(decode_all(&wire), vec![Ok(m)]);
    }

    #[test]
    fn noise_before_first_frame_is_skipped() {
        let mut bytes = b"\x00\xff garbage\r\n[    1.23] kernel: hi\n\n".to_vec();
        bytes.extend_from_slice(&Request::Ping { id: 1 }.encode()); // echoed request
        bytes.extend_from_slice(b"~WV1 HELLO 0 version=1 *00000000\n"); // bad checksum
        bytes.extend_from_slice(b"line without newline then ");
        bytes.extend_from_slice(&hello().encode());
        let mut d = GuestDecoder::new();
        let got = d.feed(&bytes);
        assert_eq!(got, vec![Ok(hello())]);
        assert_eq!(d.noise_lines(), 4);
        assert!(d.is_synced());
    }

    #[test]
    fn crlf_and_prefix_garbage_tolerated() {
        let mut wire = b"\x1b[0m".to_vec();
        let mut frame = GuestMessage::Ok { id: 3 }.encode();
        frame.pop();
        wire.extend_from_slice(&frame);
        wire.extend_from_slice(b"\r\n");
        assert_eq!(decode_all(&wire), vec![Ok(GuestMessage::Ok { id: 3 })]);
    }

    #[test]
    fn malformed_frames_after_sync_are_errors_and_decoding_continues() {
        let ok = GuestMessage::Ok { id: 1 };
        let good = ok.encode();
        let mut corrupt = good.clone();
        corrupt[6] = b'X'; // "OK" -> "OX": checksum no longer matches
        let mut dropped = good.clone();
        dropped.remove(6);
        let with_sum = |body: &str| format!("{body} *{:08x}\n", sum32(body.as_bytes()));
        type ErrCheck = fn(&ProtocolError) -> bool;
        let cases: Vec<(Vec<u8>, ErrCheck)> = vec![
            (corrupt, |e| {
                matches!(e, ProtocolError::ChecksumMismatch { .. })
            }),
            (dropped, |e| {
                matches!(e, ProtocolError::ChecksumMismatch { .. })
            }),
            (b"hello\n".to_vec(), |e| *e == ProtocolError::NotAFrame),
            (b"~WV1 OK 1\n".to_vec(), |e| {
                *e == ProtocolError::MissingChecksum
            }),
            (b"~WV1 OK 1 *0000zz00\n".to_vec(), |e| {
                *e == ProtocolError::MissingChecksum
            }),
            (with_sum("~WV1 ok 1").into_bytes(), |e| {
                matches!(e, ProtocolError::Malformed(_))
            }),
            (with_sum("~WV1 OK x").into_bytes(), |e| {
                matches!(e, ProtocolError::Malformed(_))
            }),
            (with_sum("~WV1 OK 99999999999999999999").into_bytes(), |e| {
                matches!(e, ProtocolError::Malformed(_))
            }),
            (with_sum("~WV1 OK 1  a=b").into_bytes(), |e| {
                matches!(e, ProtocolError::Malformed(_))
            }),
            (with_sum("~WV1 OK 1 A=b").into_bytes(), |e| {
                matches!(e, ProtocolError::Malformed(_))
            }),
            (with_sum("~WV1 OK 1 novalue").into_bytes(), |e| {
                matches!(e, ProtocolError::Malformed(_))
            }),
            (with_sum("~WV1 OK 1 a=\u{e9}").into_bytes(), |e| {
                matches!(e, ProtocolError::Malformed(_))
            }),
            (with_sum("~WV1 PING 1").into_bytes(), |e| {
                *e == ProtocolError::UnknownType("PING".into())
            }),
            (with_sum("~WV1 OUT 1 data=!!!!").into_bytes(), |e| {
                matches!(e, ProtocolError::BadField { .. })
            }),
            (with_sum("~WV1 OUT 1").into_bytes(), |e| {
                matches!(e, ProtocolError::MissingField { field: "data", .. })
            }),
            (with_sum("~WV1 STARTED 1 pid=-3").into_bytes(), |e| {
                matches!(e, ProtocolError::BadField { .. })
            }),
            (with_sum("~WV1 STARTED 1 pid=1 pid=2").into_bytes(), |e| {
                matches!(e, ProtocolError::BadField { .. })
            }),
            (with_sum("~WV1 EXIT 1").into_bytes(), |e| {
                matches!(e, ProtocolError::MissingField { .. })
            }),
            (with_sum("~WV1 EXIT 1 code=0 signal=9").into_bytes(), |e| {
                matches!(e, ProtocolError::BadField { .. })
            }),
            (
                with_sum("~WV1 EXIT 1 code=0 timedout=2").into_bytes(),
                |e| matches!(e, ProtocolError::BadField { .. }),
            ),
            (with_sum("~WV1 PROCS 1 proc=3").into_bytes(), |e| {
                matches!(e, ProtocolError::BadField { .. })
            }),
            (with_sum("~WV1 HELLO 0 instance=x").into_bytes(), |e| {
                matches!(e, ProtocolError::MissingField { .. })
            }),
        ];
        for (i, (line, check)) in cases.into_iter().enumerate() {
            let mut d = GuestDecoder::new();
            assert_eq!(d.feed(&good), vec![Ok(ok.clone())]);
            let mut bytes = line.clone();
            bytes.extend_from_slice(&good);
            let got = d.feed(&bytes);
            assert_eq!(
                got.len(),
                2,
                "case {i}: {:?}",
                String::from_utf8_lossy(&line)
            );
            let err = got[0].as_ref().unwrap_err();
            assert!(check(err), "case {i}: {err:?}");
            assert_eq!(got[1], Ok(ok.clone()), "case {i}");
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let body = "~WV1 STARTED 4 pid=10 future=yes";
        let line = format!("{body} *{:08x}\n", sum32(body.as_bytes()));
        assert_eq!(
            decode_all(line.as_bytes()),
            vec![Ok(GuestMessage::Started { id: 4, pid: 10 })]
        );
    }

    #[test]
    fn overlong_lines_are_discarded_once() {
        let ok = GuestMessage::Ok { id: 1 }.encode();
        let mut d = GuestDecoder::with_max_line(64);
        assert_eq!(d.feed(&ok).len(), 1);
        let mut got = Vec::new();
        for _ in 0..10 {
            got.extend(d.feed(&[b'x'; 50]));
        }
        got.extend(d.feed(b"tail\n"));
        got.extend(d.feed(&ok));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], Err(ProtocolError::LineTooLong(64)));
        assert_eq!(got[1], Ok(GuestMessage::Ok { id: 1 }));
        // An overlong line that arrives complete in one push.
        let mut long = vec![b'y'; 200];
        long.push(b'\n');
        long.extend_from_slice(&ok);
        let got = d.feed(&long);
        assert_eq!(got[0], Err(ProtocolError::LineTooLong(64)));
        assert_eq!(got[1], Ok(GuestMessage::Ok { id: 1 }));
        // Unsynced: silently skipped.
        let mut d = GuestDecoder::with_max_line(64);
        assert_eq!(d.feed(&long), vec![Ok(GuestMessage::Ok { id: 1 })]);
    }

    #[test]
    fn resync_drops_partial_line_and_skips_noise_again() {
        let mut d = GuestDecoder::new();
        let ok = GuestMessage::Ok { id: 1 }.encode();
        d.feed(&ok);
        d.feed(&ok[..5]);
        d.resync();
        assert!(!d.is_synced());
        let mut bytes = b"noise\n".to_vec();
        bytes.extend_from_slice(&ok);
        assert_eq!(d.feed(&bytes), vec![Ok(GuestMessage::Ok { id: 1 })]);
    }

    #[test]
    fn arbitrary_garbage_never_panics() {
        let mut d = GuestDecoder::with_max_line(100);
        let mut x: u32 = 12345;
        for _ in 0..20_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let b = (x >> 16) as u8;
            let chunk = [b, b'~', b'W', b'V', b'1', b' ', b'\n'];
            let n = (x as usize >> 8) % chunk.len();
            let _ = d.feed(&chunk[..n.max(1)]);
        }
    }

    #[test]
    fn exit_status_helpers() {
        assert!(ExitStatus::Code(0).success());
        assert!(!ExitStatus::Code(1).success());
        let s = ExitStatus::Signal {
            signal: 9,
            core_dumped: false,
        };
        assert_eq!(s.shell_code(), 137);
        assert!(!s.success());
    }

    #[test]
    fn final_frames() {
        assert!(!hello().is_final());
        assert!(!GuestMessage::Started { id: 1, pid: 1 }.is_final());
        assert!(GuestMessage::Ok { id: 1 }.is_final());
        assert!(GuestMessage::Exit {
            id: 1,
            status: ExitStatus::Code(0),
            timed_out: false
        }
        .is_final());
    }

    #[test]
    fn kill_defaults() {
        let body = "~WV1 KILL 3 proc=2";
        let line = format!("{body} *{:08x}\n", sum32(body.as_bytes()));
        assert_eq!(
            RequestDecoder::new().feed(line.as_bytes()),
            vec![Ok(Request::Kill {
                id: 3,
                proc_id: 2,
                signal: signal::TERM,
                group: true
            })]
        );
    }

    #[test]
    fn stats_summary_parses_guest_texts() {
        let raw = RawStats {
            meminfo: "MemTotal:         253948 kB\nMemFree:          180000 kB\nMemAvailable:     200123 kB\n".into(),
            stat: "cpu  100 5 50 1000 20 0 3 0 0 0\ncpu0 100 5 50 1000 20 0 3 0 0 0\nprocs_running 1\n".into(),
            df: "Filesystem     1024-blocks   Used Available Capacity Mounted on\n/dev/sda            403440 120000    283440      30% /\n".into(),
            loadavg: "0.52 0.20 0.07 1/45 321\n".into(),
            uptime: "63.21 50.00\n".into(),
            procs: 45,
            managed: 1,
        };
        let s = raw.summary();
        assert_eq!(s.mem_total_kib, Some(253_948));
        assert_eq!(s.mem_available_kib, Some(200_123));
        assert_eq!(s.disk_total_kib, Some(403_440));
        assert_eq!(s.disk_used_kib, Some(120_000));
        assert_eq!(s.disk_available_kib, Some(283_440));
        assert_eq!(
            s.cpu,
            Some(CpuTimes {
                total: 1178,
                idle: 1020
            })
        );
        assert_eq!(s.load1, Some(0.52));
        assert_eq!(s.uptime_secs, Some(63.21));
        assert_eq!(s.procs, 45);
        let later = CpuTimes {
            total: 1278,
            idle: 1070,
        };
        assert_eq!(later.busy_since(&s.cpu.unwrap()), Some(0.5));
        assert_eq!(s.cpu.unwrap().busy_since(&later), None);
        assert_eq!(RawStats::default().summary(), StatsSummary::default());
    }

    fn arb_u64() -> impl Strategy<Value = u64> {
        prop_oneof![0..1000u64, any::<u64>()]
    }

    fn arb_token() -> impl Strategy<Value = String> {
        "[!-~&&[^,]]{1,40}"
    }

    fn arb_request() -> impl Strategy<Value = Request> {
        let spec = (
            prop::collection::vec(".{1,20}", 1..5),
            prop::collection::vec(("[A-Za-z_][A-Za-z0-9_]{0,10}", ".{0,20}"), 0..4),
            any::<bool>(),
            prop::option::of("/[a-z/]{0,20}"),
            any::<bool>(),
            prop::option::of(arb_u64()),
            prop::option::of(arb_u64()),
        )
            .prop_map(|(argv, env, clear_env, cwd, stdin, timeout_ms, grace_ms)| {
                ExecSpec {
                    argv,
                    env,
                    clear_env,
                    cwd,
                    stdin,
                    timeout_ms,
                    grace_ms,
                }
            });
        prop_oneof![
            arb_u64().prop_map(|id| Request::Ping { id }),
            (arb_u64(), spec).prop_map(|(id, spec)| Request::Exec { id, spec }),
            (
                arb_u64(),
                arb_u64(),
                prop::collection::vec(any::<u8>(), 0..300)
            )
                .prop_map(|(id, proc_id, data)| Request::Stdin { id, proc_id, data }),
            (arb_u64(), arb_u64()).prop_map(|(id, proc_id)| Request::CloseStdin { id, proc_id }),
            (arb_u64(), arb_u64(), 0..=64u8, any::<bool>()).prop_map(
                |(id, proc_id, signal, group)| Request::Kill {
                    id,
                    proc_id,
                    signal,
                    group
                }
            ),
            arb_u64().prop_map(|id| Request::GetStats { id }),
            arb_u64().prop_map(|id| Request::List { id }),
        ]
    }

    fn arb_guest() -> impl Strategy<Value = GuestMessage> {
        let bytes = || prop::collection::vec(any::<u8>(), 0..400);
        prop_oneof![
            (
                arb_token(),
                any::<u32>(),
                arb_token(),
                arb_token(),
                prop::collection::vec(arb_token(), 0..4)
            )
                .prop_map(|(instance, pid, boot_id, agent, features)| {
                    GuestMessage::Hello(Hello {
                        version: PROTOCOL_VERSION,
                        instance,
                        pid,
                        boot_id,
                        agent,
                        features,
                    })
                }),
            (arb_u64(), arb_token()).prop_map(|(id, instance)| GuestMessage::Pong { id, instance }),
            (arb_u64(), any::<u32>()).prop_map(|(id, pid)| GuestMessage::Started { id, pid }),
            (arb_u64(), bytes()).prop_map(|(id, data)| GuestMessage::Stdout { id, data }),
            (arb_u64(), bytes()).prop_map(|(id, data)| GuestMessage::Stderr { id, data }),
            (
                arb_u64(),
                any::<i32>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(id, n, sig, core_dumped, timed_out)| GuestMessage::Exit {
                    id,
                    status: if sig {
                        ExitStatus::Signal {
                            signal: n,
                            core_dumped,
                        }
                    } else {
                        ExitStatus::Code(n)
                    },
                    timed_out,
                }),
            arb_u64().prop_map(|id| GuestMessage::Ok { id }),
            (arb_u64(), prop::option::of(any::<i32>()), ".{0,40}")
                .prop_map(|(id, errno, message)| GuestMessage::Error { id, errno, message }),
            (arb_u64(), ".{0,60}", ".{0,60}", any::<u32>()).prop_map(|(id, meminfo, df, procs)| {
                GuestMessage::Stats {
                    id,
                    stats: RawStats {
                        meminfo,
                        df,
                        procs,
                        ..RawStats::default()
                    },
                }
            }),
            (
                arb_u64(),
                prop::collection::vec((arb_u64(), any::<u32>()), 0..5)
            )
                .prop_map(|(id, p)| GuestMessage::Procs {
                    id,
                    procs: p
                        .into_iter()
                        .map(|(exec_id, pid)| ProcEntry { exec_id, pid })
                        .collect(),
                }),
        ]
    }

    proptest! {
        #[test]
        fn prop_requests_round_trip(reqs in prop::collection::vec(arb_request(), 1..8), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6)) {
            let bytes: Vec<u8> = reqs.iter().flat_map(|r| r.encode()).collect();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut d = RequestDecoder::new();
            let mut got = Vec::new();
            let mut last = 0;
            for p in points.into_iter().chain(std::iter::once(bytes.len())) {
                got.extend(d.feed(&bytes[last..p]));
                last = p;
            }
            let got: Vec<Request> = got.into_iter().collect::<Result<_>>().unwrap();
            prop_assert_eq!(got, reqs);
        }

        #[test]
        fn prop_guest_messages_round_trip(msgs in prop::collection::vec(arb_guest(), 1..8), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6)) {
            let bytes = stream(&msgs);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut d = GuestDecoder::new();
            let mut got = Vec::new();
            let mut last = 0;
            for p in points.into_iter().chain(std::iter::once(bytes.len())) {
                got.extend(d.feed(&bytes[last..p]));
                last = p;
            }
            let got: Vec<GuestMessage> = got.into_iter().collect::<Result<_>>().unwrap();
            prop_assert_eq!(got, msgs);
        }

        #[test]
        fn prop_decoder_never_panics(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..20)) {
            let mut d = GuestDecoder::with_max_line(128);
            for c in chunks {
                let _ = d.feed(&c);
            }
        }

        #[test]
        fn prop_base64_round_trip(data in prop::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(base64_decode(&base64_encode(&data)), Some(data));
        }
    }
}
