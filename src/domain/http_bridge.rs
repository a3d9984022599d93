//! The request bridge to an app in the VM as pure HTTP/1.1 framing: the request bytes to
//! write to the guest, an incremental parser of the one response on that `Connection: close`
//! socket, and the header rewriting that lets an app that believes it lives at `/` work
//! under `/apps/<name>`.
//!
//! The page opens a raw TCP connection to the app's guest port for each request the service
//! worker forwards, so this module plays the part of a reverse proxy (nginx `proxy_pass`,
//! Traefik): hop-by-hop headers (RFC 9110 §7.6.1) are dropped in both directions, the
//! `X-Forwarded-*` headers are set from the bridge and never passed through from the
//! browser, and `Location`/`Set-Cookie` are rewritten like nginx's `proxy_redirect` and
//! `proxy_cookie_path`. The response body is framed by RFC 9112 §6.3: no body for `HEAD`,
//! 1xx, 204 and 304; chunked when the last transfer coding is `chunked`; else
//! `Content-Length`; else until the app closes the connection. No IO and no clock here.

/// The path under which the browser sees every app: `/apps/<name>/...`.
pub const APPS_PREFIX: &str = "/apps/";
/// The default limit of a response head (status line and headers), as in nginx's
/// `proxy_buffer_size` order of magnitude.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 64 * 1024;
/// The default limit of one chunk-size line (size and extensions).
pub const DEFAULT_MAX_CHUNK_LINE: usize = 4 * 1024;
/// The most headers a response head may have.
pub const MAX_RESPONSE_HEADERS: usize = 128;
/// How many bytes of a probe's response body [`probe_verdict`] quotes.
pub const PROBE_OUTPUT_BODY_BYTES: usize = 4096;
/// The `User-Agent` of health probes.
pub const PROBE_USER_AGENT: &str = "webvm-health/1";

/// Heads up to this size are re-parsed on every push, so that garbage is reported at once;
/// larger ones only when a blank line has arrived (keeps byte-by-byte feeding linear).
const EAGER_PARSE_BYTES: usize = 1024;
/// Host names an app inside the VM uses for itself in absolute URLs.
const GUEST_HOSTS: [&str; 4] = ["127.0.0.1", "localhost", "[::1]", "0.0.0.0"];
/// Hop-by-hop headers (RFC 9110 §7.6.1), besides every `Proxy-*` and those named in
/// `Connection`.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Splits a browser path under [`APPS_PREFIX`] into the app's name and the target to send
/// to the app: `"/apps/hello/x/y?q=1"` -> `("hello", "/x/y?q=1")`, `"/apps/hello"` ->
/// `("hello", "/")`. The name is only required to be non-empty (it cannot contain `/`);
/// nothing is percent-decoded. `"/apps/hello?q=1"` gives `None`: the target would have to
/// be built (`"/?q=1"`), so the caller redirects to `"/apps/hello/?q=1"` instead, as nginx
/// does for a directory without its slash.
pub fn split_app_path(path_and_query: &str) -> Option<(&str, &str)> {
    let rest = path_and_query.strip_prefix(APPS_PREFIX)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (name, target) = rest.split_at(end);
    if name.is_empty() {
        return None;
    }
    match target.as_bytes().first() {
        None => Some((name, "/")),
        Some(b'/') => Some((name, target)),
        Some(_) => None,
    }
}

/// Where a request comes from and goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardContext {
    /// The app's prefix as the browser sees it, e.g. `"/apps/hello"` (no trailing slash).
    pub prefix: String,
    /// The browser-visible `host[:port]`, e.g. `"127.0.0.1:3000"`.
    pub host: String,
    /// The browser-visible scheme: `"http"` or `"https"`.
    pub proto: String,
    /// The port the app listens on inside the VM.
    pub guest_port: u16,
}

impl ForwardContext {
    /// The context of app `app_name` (prefix `/apps/<app_name>`).
    pub fn new(
        app_name: &str,
        host: impl Into<String>,
        proto: impl Into<String>,
        guest_port: u16,
    ) -> Self {
        ForwardContext {
            prefix: format!("{APPS_PREFIX}{app_name}"),
            host: host.into(),
            proto: proto.into(),
            guest_port,
        }
    }
}

/// A request as the service worker hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BridgeRequest {
    pub method: String,
    /// The path under the app, starting with `/`, with the query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request could not be sent or a response not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    #[error("the request method {0:?} is not a valid HTTP method (letters, digits and !#$%&'*+-.^_`|~ only)")]
    InvalidMethod(String),
    #[error("the request path {0:?} must start with '/' and contain only visible ASCII characters (no spaces or control characters)")]
    InvalidTarget(String),
    #[error("the request header name {0:?} is not a valid HTTP header name")]
    InvalidHeaderName(String),
    /// The value is not quoted: it may be a secret.
    #[error("the request header {0:?} has a value containing a line break or a NUL byte")]
    InvalidHeaderValue(String),
    #[error("the request bridge was set up with an invalid {field} {value:?}")]
    InvalidContext { field: &'static str, value: String },
    #[error("the app's response head is larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    #[error("the app sent a malformed HTTP response: {0}")]
    MalformedResponse(String),
    #[error("the app switched protocols (101), which the request bridge does not support")]
    SwitchingProtocols,
    #[error("the app's response has an invalid Content-Length: {0}")]
    InvalidContentLength(String),
    #[error("the app's response uses the transfer coding {0:?}; only chunked is supported")]
    UnsupportedTransferEncoding(String),
    #[error("the app sent a malformed chunk: {0}")]
    MalformedChunk(String),
    #[error("the app sent a chunk-size line longer than {limit} bytes")]
    ChunkLineTooLong { limit: usize },
    #[error("the app sent trailers larger than {limit} bytes")]
    TrailersTooLarge { limit: usize },
    #[error("the app sent more than the {expected} bytes its Content-Length announced")]
    BodyTooLong { expected: u64 },
    #[error("the app sent data after the end of its response")]
    DataAfterEnd,
    #[error("the app closed the connection without sending a response")]
    ClosedBeforeHead,
    #[error(
        "the app closed the connection in the middle of the response head (after {received} bytes)"
    )]
    ClosedInHead { received: usize },
    #[error("the app closed the connection after {received} of {expected} bytes")]
    ClosedMidBody { received: u64, expected: u64 },
    #[error(
        "the app closed the connection in the middle of a chunked body (after {received} bytes)"
    )]
    ClosedMidChunk { received: u64 },
}

fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_tchar)
}

/// Header values may not break the framing: no CR, LF or NUL.
fn is_safe_value(text: &str) -> bool {
    !text.bytes().any(|byte| matches!(byte, b'\r' | b'\n' | 0))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// True for a hop-by-hop header: `Connection`, `Keep-Alive`, `TE`, `Trailer`,
/// `Transfer-Encoding`, `Upgrade` and every `Proxy-*` (`Proxy-Connection`,
/// `Proxy-Authorization`, ...). Headers named in `Connection` are hop-by-hop as well; see
/// [`connection_options`].
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop))
        || starts_with_ignore_case(name, "proxy-")
}

/// The header names listed in the `Connection` headers, lowercased.
pub fn connection_options<'a>(
    headers: impl IntoIterator<Item = &'a (String, String)>,
) -> Vec<String> {
    headers
        .into_iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(','))
        .map(|option| option.trim().to_ascii_lowercase())
        .filter(|option| !option.is_empty())
        .collect()
}

fn is_nominated(name: &str, nominated: &[String]) -> bool {
    nominated
        .iter()
        .any(|option| option.eq_ignore_ascii_case(name))
}

/// Request headers the bridge sets itself, so the browser's are dropped.
fn is_replaced_request_header(name: &str) -> bool {
    ["host", "content-length", "forwarded"]
        .iter()
        .any(|replaced| name.eq_ignore_ascii_case(replaced))
        || starts_with_ignore_case(name, "x-forwarded-")
}

fn push_header(head: &mut String, name: &str, value: &str) {
    head.push_str(name);
    head.push_str(": ");
    head.push_str(value);
    head.push_str("\r\n");
}

fn validate_context(context: &ForwardContext) -> Result<(), BridgeError> {
    let invalid = |field: &'static str, value: &str| BridgeError::InvalidContext {
        field,
        value: value.to_string(),
    };
    if context.host.is_empty()
        || !is_safe_value(&context.host)
        || context
            .host
            .bytes()
            .any(|byte| byte == b' ' || byte == b'/')
    {
        return Err(invalid("host", &context.host));
    }
    if !is_token(&context.proto) {
        return Err(invalid("scheme", &context.proto));
    }
    if !context.prefix.starts_with('/') || !is_safe_value(&context.prefix) {
        return Err(invalid("prefix", &context.prefix));
    }
    Ok(())
}

/// The request head to write to the guest: the request line and headers, ending with the
/// blank line (the body is not included; [`encode_request`] appends it).
///
/// Hop-by-hop headers (see [`is_hop_by_hop`], and any named in `Connection`) and the
/// browser's `Host`, `Content-Length`, `Forwarded` and `X-Forwarded-*` are dropped; the
/// bridge then sets:
/// - `Host`: the browser-visible host, as a reverse proxy that preserves the host
///   (nginx `proxy_set_header Host $http_host`). Apps build absolute URLs and check
///   CSRF origins from `Host`; with the browser's host those URLs point back at the
///   browser's origin, and [`rewrite_response_head`] turns them into prefix paths. With
///   `127.0.0.1:<guest_port>` an app's `Origin` check would fail for every form post.
/// - `X-Forwarded-For: 127.0.0.1`, `X-Forwarded-Host`, `X-Forwarded-Proto`,
///   `X-Forwarded-Prefix` (the prefix, for apps that can serve under one).
/// - `Content-Length` when the body is not empty or the method is POST, PUT or PATCH.
/// - `Connection: close`: one request per connection, so the response ends at the
///   latest when the app closes.
///
/// Errors: a method that is not a token, a target that does not start with `/` or holds
/// spaces, control or non-ASCII characters, a header name that is not a token, a header
/// value with CR, LF or NUL (every header is checked, even those dropped), or an invalid
/// context.
pub fn encode_request_head(
    request: &BridgeRequest,
    context: &ForwardContext,
) -> Result<Vec<u8>, BridgeError> {
    if !is_token(&request.method) {
        return Err(BridgeError::InvalidMethod(request.method.clone()));
    }
    if !request.target.starts_with('/')
        || !request.target.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(BridgeError::InvalidTarget(request.target.clone()));
    }
    validate_context(context)?;
    for (name, value) in &request.headers {
        if !is_token(name) {
            return Err(BridgeError::InvalidHeaderName(name.clone()));
        }
        if !is_safe_value(value) {
            return Err(BridgeError::InvalidHeaderValue(name.clone()));
        }
    }
    let nominated = connection_options(&request.headers);
    let mut head = String::with_capacity(256);
    head.push_str(&request.method);
    head.push(' ');
    head.push_str(&request.target);
    head.push_str(" HTTP/1.1\r\n");
    push_header(&mut head, "Host", &context.host);
    for (name, value) in &request.headers {
        if is_hop_by_hop(name) || is_nominated(name, &nominated) || is_replaced_request_header(name)
        {
            continue;
        }
        push_header(&mut head, name, value);
    }
    push_header(&mut head, "X-Forwarded-For", "127.0.0.1");
    push_header(&mut head, "X-Forwarded-Host", &context.host);
    push_header(&mut head, "X-Forwarded-Proto", &context.proto);
    push_header(&mut head, "X-Forwarded-Prefix", &context.prefix);
    if !request.body.is_empty() || matches!(request.method.as_str(), "POST" | "PUT" | "PATCH") {
        push_header(&mut head, "Content-Length", &request.body.len().to_string());
    }
    push_header(&mut head, "Connection", "close");
    head.push_str("\r\n");
    Ok(head.into_bytes())
}

/// The bytes to write to the guest: [`encode_request_head`] followed by the body.
pub fn encode_request(
    request: &BridgeRequest,
    context: &ForwardContext,
) -> Result<Vec<u8>, BridgeError> {
    let mut bytes = encode_request_head(request, context)?;
    bytes.extend_from_slice(&request.body);
    Ok(bytes)
}

/// A response's status line and headers. Header values that are not UTF-8 are converted
/// lossily; names keep the app's spelling and order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What [`ResponseParser`] found in the bytes fed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseEvent {
    /// The final response head (interim 1xx heads are skipped).
    Head(ResponseHead),
    /// Decoded body bytes (chunk framing removed).
    Body(Vec<u8>),
    /// The response is complete.
    End,
}

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line (without its LF so far).
    Size {
        line: Vec<u8>,
    },
    Data {
        remaining: u64,
    },
    /// After a chunk's data: its CRLF.
    DataEnd {
        seen_cr: bool,
    },
    /// After the last chunk: trailer lines up to a blank one, discarded.
    Trailer {
        line_len: usize,
        total: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Head,
    Length {
        remaining: u64,
        total: u64,
    },
    Chunked(Chunk),
    UntilClose,
    /// `content_length` tells which error more bytes are.
    Done {
        content_length: Option<u64>,
    },
    Failed(BridgeError),
}

/// Incremental parser of the one response on a `Connection: close` socket. Feed the bytes
/// as they arrive, split anywhere; the events are the same whatever the split. Only the
/// unparsed head and one partial chunk-size line are buffered: body bytes are passed on
/// in the events of the push that brought them. After an error every call repeats it.
#[derive(Debug, Clone)]
pub struct ResponseParser {
    head_request: bool,
    max_head_bytes: usize,
    max_chunk_line: usize,
    state: State,
    head_buf: Vec<u8>,
    /// How much of `head_buf` was searched for a blank line.
    scanned: usize,
    /// Body bytes passed on so far.
    decoded: u64,
}

impl ResponseParser {
    /// A parser for the response to a `request_method` request (`HEAD`: no body), with
    /// the default limits.
    pub fn new(request_method: &str) -> Self {
        Self::with_limits(
            request_method,
            DEFAULT_MAX_HEAD_BYTES,
            DEFAULT_MAX_CHUNK_LINE,
        )
    }

    /// A parser with a limit on the head (each interim head, the final head and the
    /// trailers each at most `max_head_bytes`) and on each chunk-size line.
    pub fn with_limits(request_method: &str, max_head_bytes: usize, max_chunk_line: usize) -> Self {
        ResponseParser {
            head_request: request_method == "HEAD",
            max_head_bytes,
            max_chunk_line,
            state: State::Head,
            head_buf: Vec::new(),
            scanned: 0,
            decoded: 0,
        }
    }

    /// Feeds the next bytes from the app.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<ResponseEvent>, BridgeError> {
        let mut events = Vec::new();
        self.push_into(bytes, &mut events)?;
        Ok(events)
    }

    /// As [`Self::push`], but the events found before an error are kept in `events`.
    pub fn push_into(
        &mut self,
        bytes: &[u8],
        events: &mut Vec<ResponseEvent>,
    ) -> Result<(), BridgeError> {
        if let State::Failed(error) = &self.state {
            return Err(error.clone());
        }
        self.step(bytes, events).inspect_err(|error| {
            self.state = State::Failed(error.clone());
            self.head_buf = Vec::new();
        })
    }

    /// The app closed the connection: ends a body read until close; an error when the
    /// head or a `Content-Length` or chunked body is incomplete. Nothing after the end.
    pub fn finish(&mut self) -> Result<Vec<ResponseEvent>, BridgeError> {
        let error = match &self.state {
            State::Failed(error) => return Err(error.clone()),
            State::Done { .. } => return Ok(Vec::new()),
            State::UntilClose => {
                self.state = State::Done {
                    content_length: None,
                };
                return Ok(vec![ResponseEvent::End]);
            }
            State::Head => self.head_error_at_close(),
            State::Length { remaining, total } => BridgeError::ClosedMidBody {
                received: total - remaining,
                expected: *total,
            },
            State::Chunked(_) => BridgeError::ClosedMidChunk {
                received: self.decoded,
            },
        };
        self.state = State::Failed(error.clone());
        self.head_buf = Vec::new();
        Err(error)
    }

    /// True once the response is complete.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }

    /// Body bytes passed on so far.
    pub fn body_bytes(&self) -> u64 {
        self.decoded
    }

    fn head_error_at_close(&self) -> BridgeError {
        if self.head_buf.iter().all(u8::is_ascii_whitespace) {
            return BridgeError::ClosedBeforeHead;
        }
        match parse_head(&self.head_buf) {
            Err(error) => error,
            Ok(_) => BridgeError::ClosedInHead {
                received: self.head_buf.len(),
            },
        }
    }

    fn step(&mut self, bytes: &[u8], events: &mut Vec<ResponseEvent>) -> Result<(), BridgeError> {
        let leftover: Vec<u8>;
        let mut input = bytes;
        if self.state == State::Head {
            if bytes.is_empty() {
                return Ok(());
            }
            self.head_buf.extend_from_slice(bytes);
            match self.read_heads(events)? {
                Some(rest) => {
                    leftover = rest;
                    input = &leftover;
                }
                None => return Ok(()),
            }
        }
        self.read_body(input, events)
    }

    /// Parses heads from `head_buf`, skipping interim ones; on the final head, sets the
    /// body state and returns the bytes after the head.
    fn read_heads(
        &mut self,
        events: &mut Vec<ResponseEvent>,
    ) -> Result<Option<Vec<u8>>, BridgeError> {
        loop {
            let Some((head, consumed)) = self.complete_head()? else {
                return Ok(None);
            };
            let rest = self.head_buf.split_off(consumed);
            self.scanned = 0;
            if head.status < 200 {
                if head.status == 101 {
                    return Err(BridgeError::SwitchingProtocols);
                }
                self.head_buf = rest;
                if self.head_buf.is_empty() {
                    return Ok(None);
                }
                continue;
            }
            let framing = response_framing(&head, self.head_request)?;
            self.head_buf = Vec::new();
            events.push(ResponseEvent::Head(head));
            self.state = match framing {
                Framing::Empty => {
                    events.push(ResponseEvent::End);
                    State::Done {
                        content_length: None,
                    }
                }
                Framing::Length(0) => {
                    events.push(ResponseEvent::End);
                    State::Done {
                        content_length: Some(0),
                    }
                }
                Framing::Length(total) => State::Length {
                    remaining: total,
                    total,
                },
                Framing::Chunked => State::Chunked(Chunk::Size { line: Vec::new() }),
                Framing::UntilClose => State::UntilClose,
            };
            return Ok(Some(rest));
        }
    }

    /// A complete head at the start of `head_buf`, if one has arrived.
    fn complete_head(&mut self) -> Result<Option<(ResponseHead, usize)>, BridgeError> {
        let from = self.scanned.saturating_sub(2).min(self.head_buf.len());
        let blank_line = has_blank_line(&self.head_buf[from..]);
        self.scanned = self.head_buf.len();
        let over = self.head_buf.len() > self.max_head_bytes;
        let too_large = BridgeError::HeadTooLarge {
            limit: self.max_head_bytes,
        };
        if blank_line || over || self.head_buf.len() <= EAGER_PARSE_BYTES {
            if let Some((head, consumed)) = parse_head(&self.head_buf)? {
                if consumed > self.max_head_bytes {
                    return Err(too_large);
                }
                return Ok(Some((head, consumed)));
            }
        }
        if over {
            Err(too_large)
        } else {
            Ok(None)
        }
    }

    fn read_body(
        &mut self,
        mut input: &[u8],
        events: &mut Vec<ResponseEvent>,
    ) -> Result<(), BridgeError> {
        while !input.is_empty() {
            match &mut self.state {
                State::Head | State::Failed(_) => return Ok(()),
                State::Done { content_length } => {
                    return Err(match content_length {
                        Some(expected) => BridgeError::BodyTooLong {
                            expected: *expected,
                        },
                        None => BridgeError::DataAfterEnd,
                    });
                }
                State::UntilClose => {
                    emit_body(events, input, &mut self.decoded);
                    return Ok(());
                }
                State::Length { remaining, total } => {
                    let take = usize::try_from(*remaining)
                        .map_or(input.len(), |left| left.min(input.len()));
                    let (data, rest) = input.split_at(take);
                    emit_body(events, data, &mut self.decoded);
                    *remaining -= data.len() as u64;
                    input = rest;
                    if *remaining == 0 {
                        let total = *total;
                        events.push(ResponseEvent::End);
                        self.state = State::Done {
                            content_length: Some(total),
                        };
                    }
                }
                State::Chunked(chunk) => {
                    let limits = (self.max_chunk_line, self.max_head_bytes);
                    let (rest, ended) =
                        chunk_step(chunk, input, limits, events, &mut self.decoded)?;
                    input = rest;
                    if ended {
                        events.push(ResponseEvent::End);
                        self.state = State::Done {
                            content_length: None,
                        };
                    }
                }
            }
        }
        Ok(())
    }
}

/// Appends body bytes, merging with a preceding `Body` event.
fn emit_body(events: &mut Vec<ResponseEvent>, data: &[u8], decoded: &mut u64) {
    if data.is_empty() {
        return;
    }
    *decoded += data.len() as u64;
    if let Some(ResponseEvent::Body(previous)) = events.last_mut() {
        previous.extend_from_slice(data);
    } else {
        events.push(ResponseEvent::Body(data.to_vec()));
    }
}

/// True when `bytes` hold a blank line (`\n\n` or `\n\r\n`), i.e. maybe the end of a head.
fn has_blank_line(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .enumerate()
        .any(|(at, pair)| pair == b"\n\n" || (pair == b"\n\r" && bytes.get(at + 2) == Some(&b'\n')))
}

/// Parses a response head with httparse: `None` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, BridgeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(consumed)) => {
            let status = response.code.unwrap_or(0);
            if status < 100 {
                return Err(BridgeError::MalformedResponse(format!(
                    "invalid status code {status:03}"
                )));
            }
            let head = ResponseHead {
                status,
                reason: response.reason.unwrap_or("").to_string(),
                headers: response
                    .headers
                    .iter()
                    .map(|header| {
                        (
                            header.name.to_string(),
                            String::from_utf8_lossy(header.value).into_owned(),
                        )
                    })
                    .collect(),
            };
            Ok(Some((head, consumed)))
        }
        Err(error) => Err(BridgeError::MalformedResponse(error.to_string())),
    }
}

/// The comma-separated tokens of every `name` header, trimmed and lowercased.
fn header_tokens(head: &ResponseHead, name: &str) -> Vec<String> {
    head.headers
        .iter()
        .filter(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
        .flat_map(|(_, value)| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

/// RFC 9112 §6.3 for a response.
fn response_framing(head: &ResponseHead, head_request: bool) -> Result<Framing, BridgeError> {
    if head_request || head.status < 200 || head.status == 204 || head.status == 304 {
        return Ok(Framing::Empty);
    }
    let codings: Vec<String> = header_tokens(head, "transfer-encoding")
        .into_iter()
        .filter(|coding| coding != "identity")
        .collect();
    if !codings.is_empty() {
        // Content-Length is ignored when a transfer coding is present.
        return if codings == ["chunked"] {
            Ok(Framing::Chunked)
        } else {
            Err(BridgeError::UnsupportedTransferEncoding(codings.join(", ")))
        };
    }
    let mut length: Option<u64> = None;
    for value in header_tokens(head, "content-length") {
        let parsed = if value.bytes().all(|byte| byte.is_ascii_digit()) {
            value.parse::<u64>().ok()
        } else {
            None
        };
        let Some(parsed) = parsed else {
            return Err(BridgeError::InvalidContentLength(format!(
                "{value:?} is not a number"
            )));
        };
        match length {
            Some(previous) if previous != parsed => {
                return Err(BridgeError::InvalidContentLength(format!(
                    "conflicting values {previous} and {parsed}"
                )));
            }
            _ => length = Some(parsed),
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// A short printable rendering of bytes for error messages.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
    format!("{text:?}")
}

/// The size from a chunk-size line (without its LF): `1a`, `1a;name=value`, `1A ; x`.
fn parse_chunk_size(line: &[u8]) -> Result<u64, BridgeError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line
        .iter()
        .take_while(|byte| byte.is_ascii_hexdigit())
        .count();
    if digits == 0 {
        return Err(BridgeError::MalformedChunk(format!(
            "invalid chunk size line {}",
            shown(line)
        )));
    }
    let (hex, rest) = line.split_at(digits);
    let significant = hex.iter().skip_while(|byte| **byte == b'0');
    if significant.clone().count() > 16 {
        return Err(BridgeError::MalformedChunk(
            "the chunk size is too large".into(),
        ));
    }
    let size = significant.fold(0u64, |size, byte| {
        let digit = char::from(*byte).to_digit(16).unwrap_or(0);
        (size << 4) | u64::from(digit)
    });
    let after = rest
        .iter()
        .position(|byte| *byte != b' ' && *byte != b'\t')
        .map_or(&rest[rest.len()..], |at| &rest[at..]);
    if !after.is_empty() && after[0] != b';' {
        return Err(BridgeError::MalformedChunk(format!(
            "invalid chunk size line {}",
            shown(line)
        )));
    }
    Ok(size)
}

/// Decodes as much of `input` as the current chunk state takes; returns the rest and
/// whether the trailers (the end of the body) were read. `limits` = (chunk line, trailers).
fn chunk_step<'a>(
    chunk: &mut Chunk,
    input: &'a [u8],
    (max_line, max_trailers): (usize, usize),
    events: &mut Vec<ResponseEvent>,
    decoded: &mut u64,
) -> Result<(&'a [u8], bool), BridgeError> {
    match chunk {
        Chunk::Size { line } => {
            let newline = input.iter().position(|byte| *byte == b'\n');
            let (part, rest) = match newline {
                Some(at) => (&input[..at], &input[at + 1..]),
                None => (input, &input[input.len()..]),
            };
            line.extend_from_slice(part);
            if line.len() > max_line {
                return Err(BridgeError::ChunkLineTooLong { limit: max_line });
            }
            if newline.is_some() {
                let size = parse_chunk_size(line)?;
                *chunk = if size == 0 {
                    Chunk::Trailer {
                        line_len: 0,
                        total: 0,
                    }
                } else {
                    Chunk::Data { remaining: size }
                };
            }
            Ok((rest, false))
        }
        Chunk::Data { remaining } => {
            let take =
                usize::try_from(*remaining).map_or(input.len(), |left| left.min(input.len()));
            let (data, rest) = input.split_at(take);
            emit_body(events, data, decoded);
            *remaining -= data.len() as u64;
            if *remaining == 0 {
                *chunk = Chunk::DataEnd { seen_cr: false };
            }
            Ok((rest, false))
        }
        Chunk::DataEnd { seen_cr } => {
            let Some((byte, rest)) = input.split_first() else {
                return Ok((input, false));
            };
            match byte {
                b'\r' if !*seen_cr => *seen_cr = true,
                b'\n' => *chunk = Chunk::Size { line: Vec::new() },
                _ => {
                    return Err(BridgeError::MalformedChunk(
                        "the chunk data is longer than its size".into(),
                    ))
                }
            }
            Ok((rest, false))
        }
        Chunk::Trailer { line_len, total } => {
            for (at, byte) in input.iter().enumerate() {
                *total += 1;
                if *total > max_trailers {
                    return Err(BridgeError::TrailersTooLarge {
                        limit: max_trailers,
                    });
                }
                match byte {
                    b'\n' if *line_len == 0 => return Ok((&input[at + 1..], true)),
                    b'\n' => *line_len = 0,
                    b'\r' => {}
                    _ => *line_len += 1,
                }
            }
            Ok((&input[input.len()..], false))
        }
    }
}

/// True when `path` is the prefix or below it.
fn is_under_prefix(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
}

/// An absolute path of the app as the browser's: `/login` -> `/apps/hello/login`; a path
/// already under the prefix is left alone.
fn prefixed_path(path: &str, prefix: &str) -> String {
    if is_under_prefix(path, prefix) {
        path.to_string()
    } else {
        format!("{prefix}{path}")
    }
}

/// True when `authority` (`host[:port]`) is the app itself: the browser-visible host, or a
/// loopback/any address of the VM with the guest port (`default_port` when it has none).
fn is_guest_authority(
    authority: &str,
    default_port: Option<u16>,
    context: &ForwardContext,
) -> bool {
    if authority.eq_ignore_ascii_case(&context.host) {
        return true;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !authority.ends_with(']') => match port.parse::<u16>() {
            Ok(port) => (host, Some(port)),
            Err(_) => return false,
        },
        _ => (authority, default_port),
    };
    port == Some(context.guest_port)
        && GUEST_HOSTS
            .iter()
            .any(|guest| host.eq_ignore_ascii_case(guest))
}

/// `Location`/`Content-Location` as the browser must see it (nginx `proxy_redirect`):
/// an absolute path gets the prefix unless it already has it; an absolute URL (or a
/// scheme-relative `//host/...`) pointing at the app — `http://127.0.0.1:<guest port>`,
/// `http://localhost:<guest port>`, or the browser-visible host — becomes a prefixed path;
/// other hosts and relative references are left alone.
pub fn rewrite_location(value: &str, context: &ForwardContext) -> String {
    let (after_scheme, default_port) = if let Some(rest) = value.strip_prefix("//") {
        (rest, None)
    } else if value.starts_with('/') {
        return prefixed_path(value, &context.prefix);
    } else {
        match value.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (rest, Some(80)),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (rest, Some(443)),
            _ => return value.to_string(),
        }
    };
    let end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let (authority, path) = after_scheme.split_at(end);
    if !is_guest_authority(authority, default_port, context) {
        return value.to_string();
    }
    if path.starts_with('/') {
        prefixed_path(path, &context.prefix)
    } else {
        // "", "?q", "#f": the root of the app.
        format!("{}/{path}", context.prefix)
    }
}

/// A cookie path under the prefix (nginx `proxy_cookie_path / /apps/hello/`): `/x` ->
/// `/apps/hello/x`, `/` -> `/apps/hello/`; a path already under the prefix is kept; an
/// empty or relative one (which browsers replace by the default path) -> `<prefix>/`.
fn prefixed_cookie_path(path: &str, prefix: &str) -> String {
    if !path.starts_with('/') {
        return format!("{prefix}/");
    }
    let under = path
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if under {
        path.to_string()
    } else {
        format!("{prefix}{path}")
    }
}

/// One `Set-Cookie` value scoped to the app: `Path` prefixed (a missing one becomes
/// `Path=<prefix>/`), `Domain` removed (the cookie stays host-only); the name, value and
/// other attributes are kept as sent.
pub fn rewrite_set_cookie(value: &str, context: &ForwardContext) -> String {
    let mut parts = value.split(';');
    let mut cookie = parts.next().unwrap_or("").trim().to_string();
    let mut has_path = false;
    for attribute in parts
        .map(str::trim)
        .filter(|attribute| !attribute.is_empty())
    {
        let (key, attribute_value) = attribute.split_once('=').unwrap_or((attribute, ""));
        let key = key.trim();
        if key.eq_ignore_ascii_case("domain") {
            continue;
        }
        cookie.push_str("; ");
        if key.eq_ignore_ascii_case("path") {
            has_path = true;
            cookie.push_str("Path=");
            cookie.push_str(&prefixed_cookie_path(
                attribute_value.trim(),
                &context.prefix,
            ));
        } else {
            cookie.push_str(attribute);
        }
    }
    if !has_path {
        cookie.push_str("; Path=");
        cookie.push_str(&context.prefix);
        cookie.push('/');
    }
    cookie
}

/// Rewrites a response head for the browser: drops hop-by-hop headers (and any named in
/// `Connection`), `Transfer-Encoding` (the body events are decoded) and, when the app
/// sent a chunked body, `Content-Length`; rewrites `Location` and `Content-Location` with
/// [`rewrite_location`] and each `Set-Cookie` with [`rewrite_set_cookie`] (they stay
/// separate headers). Other headers keep their order.
pub fn rewrite_response_head(head: &mut ResponseHead, context: &ForwardContext) {
    let nominated = connection_options(&head.headers);
    let chunked = header_tokens(head, "transfer-encoding")
        .iter()
        .any(|coding| coding == "chunked");
    let headers = std::mem::take(&mut head.headers);
    head.headers = headers
        .into_iter()
        .filter(|(name, _)| {
            !(is_hop_by_hop(name)
                || is_nominated(name, &nominated)
                || (chunked && name.eq_ignore_ascii_case("content-length")))
        })
        .map(|(name, value)| {
            let value = if name.eq_ignore_ascii_case("location")
                || name.eq_ignore_ascii_case("content-location")
            {
                rewrite_location(&value, context)
            } else if name.eq_ignore_ascii_case("set-cookie") {
                rewrite_set_cookie(&value, context)
            } else {
                value
            };
            (name, value)
        })
        .collect();
}

/// The request of an HTTP health probe (Docker's `HEALTHCHECK` with `curl -f`):
/// `GET <path> HTTP/1.1` to `127.0.0.1:<guest_port>`, `Connection: close`. A path without
/// a leading `/` gets one; spaces, control and non-ASCII bytes are percent-encoded so the
/// request line cannot break.
pub fn probe_request(path: &str, guest_port: u16) -> Vec<u8> {
    let mut target = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        target.push('/');
    }
    for byte in path.bytes() {
        if byte.is_ascii_graphic() {
            target.push(char::from(byte));
        } else {
            target.push_str(&format!("%{byte:02X}"));
        }
    }
    format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{guest_port}\r\nUser-Agent: {PROBE_USER_AGENT}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// The result of a health probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeVerdict {
    /// A 2xx or 3xx status (as `curl -f`, which does not follow redirects here).
    pub passed: bool,
    /// `HTTP <status> <reason>`, then the first [`PROBE_OUTPUT_BODY_BYTES`] of the body
    /// (lossy UTF-8) on the next line; or why there was no response.
    pub output: String,
}

/// Judges the bytes a probe read back (all of them, or the first few KiB: a body cut
/// short does not change the verdict, which depends on the status only). No bytes or no
/// HTTP status line fail with the reason.
pub fn probe_verdict(response: &[u8]) -> ProbeVerdict {
    let mut parser = ResponseParser::new("GET");
    let mut events = Vec::new();
    let outcome = parser
        .push_into(response, &mut events)
        .and_then(|()| parser.finish().map(|more| events.extend(more)));
    let mut head = None;
    let mut body = Vec::new();
    for event in events {
        match event {
            ResponseEvent::Head(found) => head = Some(found),
            ResponseEvent::Body(bytes) => {
                let room = PROBE_OUTPUT_BODY_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            ResponseEvent::End => {}
        }
    }
    let Some(head) = head else {
        let reason = outcome
            .err()
            .unwrap_or(BridgeError::ClosedBeforeHead)
            .to_string();
        return ProbeVerdict {
            passed: false,
            output: format!("no HTTP response: {reason}"),
        };
    };
    let mut output = format!("HTTP {} {}", head.status, head.reason)
        .trim_end()
        .to_string();
    if !body.is_empty() {
        output.push('\n');
        output.push_str(&String::from_utf8_lossy(&body));
    }
    ProbeVerdict {
        passed: (200..400).contains(&head.status),
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Headers = Vec<(String, String)>;

    fn ctx() -> ForwardContext {
        ForwardContext::new("hello", "127.0.0.1:3000", "http", 8080)
    }

    fn strings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> BridgeRequest {
        BridgeRequest {
            method: method.into(),
            target: target.into(),
            headers: strings(headers),
            body: body.to_vec(),
        }
    }

    const FORWARDED: &str = "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: 127.0.0.1:3000\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Prefix: /apps/hello\r\n";

    #[test]
    fn split_app_path_table() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("/apps/hello/x/y?q=1", Some(("hello", "/x/y?q=1"))),
            ("/apps/hello", Some(("hello", "/"))),
            ("/apps/hello/", Some(("hello", "/"))),
            ("/apps/my%20app/a", Some(("my%20app", "/a"))),
            ("/apps/hello?q=1", None),
            ("/apps/", None),
            ("/apps//x", None),
            ("/apps", None),
            ("/other/hello", None),
            ("", None),
        ];
        for (path, expected) in cases {
            assert_eq!(split_app_path(path), *expected, "{path}");
        }
    }

    #[test]
    fn encode_request_table() {
        let cases: Vec<(&str, BridgeRequest, String)> = vec![
            (
                "plain GET: Host replaced, no Content-Length",
                request("GET", "/x?q=1", &[("Host", "evil"), ("Accept", "*/*")], b""),
                format!("GET /x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nAccept: */*\r\n{FORWARDED}Connection: close\r\n\r\n"),
            ),
            (
                "hop-by-hop and forwarded headers dropped",
                request(
                    "GET",
                    "/",
                    &[
                        ("Connection", "keep-alive, X-Secret"),
                        ("Keep-Alive", "timeout=5"),
                        ("Proxy-Authorization", "Basic x"),
                        ("TE", "trailers"),
                        ("Trailer", "X"),
                        ("Transfer-Encoding", "chunked"),
                        ("Upgrade", "websocket"),
                        ("x-secret", "1"),
                        ("X-Forwarded-For", "6.6.6.6"),
                        ("x-forwarded-prefix", "/evil"),
                        ("Forwarded", "for=6.6.6.6"),
                        ("Content-Length", "99"),
                        ("Cookie", "a=1"),
                    ],
                    b"",
                ),
                format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nCookie: a=1\r\n{FORWARDED}Connection: close\r\n\r\n"),
            ),
            (
                "POST with body: Content-Length set, body appended",
                request("POST", "/form", &[("Content-Type", "text/plain")], b"hi"),
                format!("POST /form HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nContent-Type: text/plain\r\n{FORWARDED}Content-Length: 2\r\nConnection: close\r\n\r\nhi"),
            ),
            (
                "empty PUT still says Content-Length: 0",
                request("PUT", "/x", &[], b""),
                format!("PUT /x HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n{FORWARDED}Content-Length: 0\r\nConnection: close\r\n\r\n"),
            ),
            (
                "DELETE with a body",
                request("DELETE", "/x", &[], b"abc"),
                format!("DELETE /x HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n{FORWARDED}Content-Length: 3\r\nConnection: close\r\n\r\nabc"),
            ),
        ];
        for (name, request, expected) in cases {
            let bytes =
                encode_request(&request, &ctx()).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(String::from_utf8_lossy(&bytes), expected, "{name}");
        }
        let head =
            encode_request_head(&request("POST", "/", &[], b"body"), &ctx()).unwrap_or_default();
        assert!(head.ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn encode_request_errors() {
        let mut bad_context = ctx();
        bad_context.host = "a\r\nX: y".into();
        let cases: Vec<(&str, BridgeRequest, ForwardContext, BridgeError)> = vec![
            (
                "method with space",
                request("GE T", "/", &[], b""),
                ctx(),
                BridgeError::InvalidMethod("GE T".into()),
            ),
            (
                "empty method",
                request("", "/", &[], b""),
                ctx(),
                BridgeError::InvalidMethod(String::new()),
            ),
            (
                "target with space",
                request("GET", "/a b", &[], b""),
                ctx(),
                BridgeError::InvalidTarget("/a b".into()),
            ),
            (
                "target with CRLF",
                request("GET", "/a\r\nX: y", &[], b""),
                ctx(),
                BridgeError::InvalidTarget("/a\r\nX: y".into()),
            ),
            (
                "relative target",
                request("GET", "a", &[], b""),
                ctx(),
                BridgeError::InvalidTarget("a".into()),
            ),
            (
                "non-ASCII target",
                request("GET", "/é", &[], b""),
                ctx(),
                BridgeError::InvalidTarget("/é".into()),
            ),
            (
                "header name with colon",
                request("GET", "/", &[("X:Y", "1")], b""),
                ctx(),
                BridgeError::InvalidHeaderName("X:Y".into()),
            ),
            (
                "empty header name",
                request("GET", "/", &[("", "1")], b""),
                ctx(),
                BridgeError::InvalidHeaderName(String::new()),
            ),
            (
                "header value with LF",
                request("GET", "/", &[("X-A", "1\nX-B: 2")], b""),
                ctx(),
                BridgeError::InvalidHeaderValue("X-A".into()),
            ),
            (
                "header value with NUL",
                request("GET", "/", &[("X-A", "1\0")], b""),
                ctx(),
                BridgeError::InvalidHeaderValue("X-A".into()),
            ),
            (
                "dropped header still checked",
                request("GET", "/", &[("Upgrade", "a\rb")], b""),
                ctx(),
                BridgeError::InvalidHeaderValue("Upgrade".into()),
            ),
            (
                "bad host in context",
                request("GET", "/", &[], b""),
                bad_context,
                BridgeError::InvalidContext {
                    field: "host",
                    value: "a\r\nX: y".into(),
                },
            ),
        ];
        for (name, request, context, expected) in cases {
            assert_eq!(encode_request(&request, &context), Err(expected), "{name}");
        }
    }

    #[test]
    fn error_messages_are_for_users() {
        let message = BridgeError::ClosedMidBody {
            received: 3,
            expected: 10,
        }
        .to_string();
        assert_eq!(message, "the app closed the connection after 3 of 10 bytes");
        let message = BridgeError::InvalidHeaderValue("Cookie".into()).to_string();
        assert!(!message.contains("secret"));
    }

    #[test]
    fn rewrite_location_table() {
        let cases: &[(&str, &str)] = &[
            ("/login", "/apps/hello/login"),
            ("/", "/apps/hello/"),
            ("/login?next=/x", "/apps/hello/login?next=/x"),
            ("/apps/hello/login", "/apps/hello/login"),
            ("/apps/hello", "/apps/hello"),
            ("/apps/hello?x", "/apps/hello?x"),
            ("/apps/helloworld", "/apps/hello/apps/helloworld"),
            ("http://127.0.0.1:8080/x?y", "/apps/hello/x?y"),
            ("http://localhost:8080", "/apps/hello/"),
            ("HTTP://LOCALHOST:8080?q", "/apps/hello/?q"),
            ("http://[::1]:8080/a", "/apps/hello/a"),
            ("http://0.0.0.0:8080/a", "/apps/hello/a"),
            ("http://127.0.0.1:3000/x", "/apps/hello/x"),
            ("http://127.0.0.1:3000/apps/hello/x", "/apps/hello/x"),
            ("https://127.0.0.1:3000/x", "/apps/hello/x"),
            ("//127.0.0.1:8080/x", "/apps/hello/x"),
            ("http://127.0.0.1:9999/x", "http://127.0.0.1:9999/x"),
            ("http://127.0.0.1/x", "http://127.0.0.1/x"),
            ("https://example.com/x", "https://example.com/x"),
            ("//example.com/x", "//example.com/x"),
            (
                "http://user@127.0.0.1:8080/x",
                "http://user@127.0.0.1:8080/x",
            ),
            ("login", "login"),
            ("../up", "../up"),
            ("?page=2", "?page=2"),
            ("mailto:a@b", "mailto:a@b"),
        ];
        for (value, expected) in cases {
            assert_eq!(rewrite_location(value, &ctx()), *expected, "{value}");
        }
        let port_80 = ForwardContext::new("hello", "127.0.0.1:3000", "http", 80);
        assert_eq!(
            rewrite_location("http://localhost/x", &port_80),
            "/apps/hello/x"
        );
    }

    #[test]
    fn rewrite_set_cookie_table() {
        let cases: &[(&str, &str)] = &[
            ("sid=1; Path=/", "sid=1; Path=/apps/hello/"),
            (
                "sid=1; Path=/x; HttpOnly",
                "sid=1; Path=/apps/hello/x; HttpOnly",
            ),
            ("sid=1", "sid=1; Path=/apps/hello/"),
            (
                "sid=1; HttpOnly; SameSite=Lax",
                "sid=1; HttpOnly; SameSite=Lax; Path=/apps/hello/",
            ),
            (
                "sid=1; Domain=localhost; path=/a",
                "sid=1; Path=/apps/hello/a",
            ),
            ("sid=1; Path=/apps/hello/x", "sid=1; Path=/apps/hello/x"),
            ("sid=1; Path=relative", "sid=1; Path=/apps/hello/"),
            (
                "sid=1;Path=/a;;Secure;",
                "sid=1; Path=/apps/hello/a; Secure",
            ),
            (
                "sid=a=b; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
                "sid=a=b; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/apps/hello/",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(rewrite_set_cookie(value, &ctx()), *expected, "{value}");
        }
    }

    #[test]
    fn rewrite_response_head_table() {
        let cases: Vec<(&str, Headers, Headers)> = vec![
            (
                "redirect, cookies stay separate, hop-by-hop dropped",
                strings(&[
                    ("Location", "/login"),
                    ("Set-Cookie", "a=1"),
                    ("Set-Cookie", "b=2; Path=/x"),
                    ("Connection", "close, X-Hop"),
                    ("X-Hop", "1"),
                    ("Keep-Alive", "timeout=5"),
                    ("Content-Length", "0"),
                ]),
                strings(&[
                    ("Location", "/apps/hello/login"),
                    ("Set-Cookie", "a=1; Path=/apps/hello/"),
                    ("Set-Cookie", "b=2; Path=/apps/hello/x"),
                    ("Content-Length", "0"),
                ]),
            ),
            (
                "chunked: Transfer-Encoding and Content-Length dropped",
                strings(&[
                    ("Transfer-Encoding", "chunked"),
                    ("Content-Length", "10"),
                    ("Content-Location", "http://localhost:8080/doc"),
                    ("Content-Type", "text/html"),
                ]),
                strings(&[
                    ("Content-Location", "/apps/hello/doc"),
                    ("Content-Type", "text/html"),
                ]),
            ),
            (
                "other hosts untouched",
                strings(&[
                    ("location", "https://example.com/"),
                    ("Proxy-Authenticate", "Basic"),
                ]),
                strings(&[("location", "https://example.com/")]),
            ),
        ];
        for (name, headers, expected) in cases {
            let mut head = ResponseHead {
                status: 302,
                reason: "Found".into(),
                headers,
            };
            rewrite_response_head(&mut head, &ctx());
            assert_eq!(head.headers, expected, "{name}");
            assert_eq!(head.status, 302);
        }
    }

    /// What feeding a response gives: the head, the decoded body, the number of `End`s.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Outcome {
        head: Option<ResponseHead>,
        body: Vec<u8>,
        ends: usize,
        done: bool,
    }

    fn feed(method: &str, parts: &[&[u8]], finish: bool) -> Result<Outcome, BridgeError> {
        feed_with(ResponseParser::new(method), parts, finish)
    }

    fn feed_with(
        mut parser: ResponseParser,
        parts: &[&[u8]],
        finish: bool,
    ) -> Result<Outcome, BridgeError> {
        let mut outcome = Outcome {
            head: None,
            body: Vec::new(),
            ends: 0,
            done: false,
        };
        let mut events = Vec::new();
        for part in parts {
            events.extend(parser.push(part)?);
        }
        if finish {
            events.extend(parser.finish()?);
        }
        for event in events {
            match event {
                ResponseEvent::Head(head) => {
                    assert!(outcome.head.is_none(), "two heads");
                    outcome.head = Some(head);
                }
                ResponseEvent::Body(bytes) => {
                    assert!(
                        outcome.head.is_some() && outcome.ends == 0,
                        "body out of place"
                    );
                    assert!(!bytes.is_empty(), "empty body event");
                    outcome.body.extend(bytes);
                }
                ResponseEvent::End => outcome.ends += 1,
            }
        }
        outcome.done = parser.is_done();
        Ok(outcome)
    }

    /// Expected result of a parser case: (status, body, ended) or the error.
    type Expected = Result<(u16, &'static [u8], bool), BridgeError>;
    /// (name, request method, the pushes, whether the app then closes, expected).
    type ParserCase = (
        &'static str,
        &'static str,
        Vec<&'static [u8]>,
        bool,
        Expected,
    );

    #[test]
    fn parser_table() {
        let ok = |status: u16, body: &'static [u8], ended: bool| -> Expected {
            Ok((status, body, ended))
        };
        let cases: Vec<ParserCase> = vec![
            ("content-length", "GET", vec![b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"], false, ok(200, b"hello", true)),
            ("content-length split in the head", "GET", vec![b"HTTP/1.1 200 OK\r\nConte", b"nt-Length: 5\r", b"\n\r", b"\nhel", b"lo"], false, ok(200, b"hello", true)),
            ("content-length 0", "GET", vec![b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], false, ok(200, b"", true)),
            ("repeated equal content-length", "GET", vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok"], false, ok(200, b"ok", true)),
            ("no reason phrase, LF only", "GET", vec![b"HTTP/1.0 200\nContent-Length: 2\n\nok"], false, ok(200, b"ok", true)),
            ("leading blank line", "GET", vec![b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"], false, ok(200, b"x", true)),
            (
                "chunked with extensions and trailers",
                "GET",
                vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=val\r\nhello\r\n6 ; x\r\n world\r\n000\r\nX-Trailer: 1\r\nY: 2\r\n\r\n"],
                false,
                ok(200, b"hello world", true),
            ),
            ("chunked, LF only and uppercase hex", "GET", vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\nabcdefghij\n0\n\n"], false, ok(200, b"abcdefghij", true)),
            ("chunked wins over content-length", "GET", vec![b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: identity, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"], false, ok(200, b"x", true)),
            ("read until close", "GET", vec![b"HTTP/1.1 200 OK\r\n\r\nsome", b" bytes"], true, ok(200, b"some bytes", true)),
            ("read until close, not finished", "GET", vec![b"HTTP/1.0 200 OK\r\n\r\nsome"], false, ok(200, b"some", false)),
            ("HEAD has no body", "HEAD", vec![b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"], false, ok(200, b"", true)),
            ("HEAD with chunked has no body", "HEAD", vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"], true, ok(200, b"", true)),
            ("204", "GET", vec![b"HTTP/1.1 204 No Content\r\n\r\n"], true, ok(204, b"", true)),
            ("304 with content-length", "GET", vec![b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"], false, ok(304, b"", true)),
            ("100 continue then 200", "POST", vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], false, ok(200, b"ok", true)),
            ("100 and 103 split", "POST", vec![b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\n", b"Content-Length: 1\r\n\r\n!"], false, ok(201, b"!", true)),
            ("1xx only, then close", "POST", vec![b"HTTP/1.1 100 Continue\r\n\r\n"], true, Err(BridgeError::ClosedBeforeHead)),
            ("garbage", "GET", vec![b"hello there\r\n\r\n"], false, Err(BridgeError::MalformedResponse("invalid HTTP version".into()))),
            ("garbage detected early", "GET", vec![b"SSH-2.0-OpenSSH"], false, Err(BridgeError::MalformedResponse("invalid HTTP version".into()))),
            ("bad status", "GET", vec![b"HTTP/1.1 2x0 OK\r\n\r\n"], false, Err(BridgeError::MalformedResponse("invalid response status".into()))),
            ("status below 100", "GET", vec![b"HTTP/1.1 099 Odd\r\n\r\n"], false, Err(BridgeError::MalformedResponse("invalid status code 099".into()))),
            ("101", "GET", vec![b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"], false, Err(BridgeError::SwitchingProtocols)),
            ("bad content-length", "GET", vec![b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"], false, Err(BridgeError::InvalidContentLength("\"-1\" is not a number".into()))),
            ("conflicting content-length", "GET", vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"], false, Err(BridgeError::InvalidContentLength("conflicting values 1 and 2".into()))),
            ("gzip transfer coding", "GET", vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"], false, Err(BridgeError::UnsupportedTransferEncoding("gzip, chunked".into()))),
            ("body longer than content-length", "GET", vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokX"], false, Err(BridgeError::BodyTooLong { expected: 2 })),
            ("body longer, later push", "GET", vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"X"], false, Err(BridgeError::BodyTooLong { expected: 2 })),
            ("data after last chunk", "GET", vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX"], false, Err(BridgeError::DataAfterEnd)),
            ("data after 204", "GET", vec![b"HTTP/1.1 204 No Content\r\n\r\nX"], false, Err(BridgeError::DataAfterEnd)),
            ("closed before anything", "GET", vec![], true, Err(BridgeError::ClosedBeforeHead)),
            ("closed in the head", "GET", vec![b"HTTP/1.1 200 OK\r\nX-A"], true, Err(BridgeError::ClosedInHead { received: 20 })),
            ("closed mid content-length", "GET", vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], true, Err(BridgeError::ClosedMidBody { received: 3, expected: 10 })),
            ("closed mid chunk", "GET", vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"], true, Err(BridgeError::ClosedMidChunk { received: 2 })),
            ("closed in trailers", "GET", vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX: 1\r\n"], true, Err(BridgeError::ClosedMidChunk { received: 1 })),
            ("chunk size not hex", "GET", vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"], false, Err(BridgeError::MalformedChunk("invalid chunk size line \"zz\"".into()))),
            ("chunk size with junk", "GET", vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\n"], false, Err(BridgeError::MalformedChunk("invalid chunk size line \"5 x\"".into()))),
            ("chunk size overflow", "GET", vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n"], false, Err(BridgeError::MalformedChunk("the chunk size is too large".into()))),
            ("chunk longer than its size", "GET", vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"], false, Err(BridgeError::MalformedChunk("the chunk data is longer than its size".into()))),
        ];
        for (name, method, parts, finish, expected) in cases {
            let got = feed(method, &parts, finish).map(|outcome| {
                assert!(outcome.ends <= 1, "{name}: several ends");
                assert_eq!(outcome.done, outcome.ends == 1, "{name}: is_done");
                (
                    outcome.head.map_or(0, |head| head.status),
                    outcome.body,
                    outcome.ends == 1,
                )
            });
            let expected = expected.map(|(status, body, ended)| (status, body.to_vec(), ended));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn head_fields_and_interim_skipped() {
        let outcome = feed(
            "GET",
            &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nX-A:  spaced \r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n"],
            false,
        );
        let head = outcome.ok().and_then(|outcome| outcome.head);
        assert_eq!(
            head,
            Some(ResponseHead {
                status: 404,
                reason: "Not Found".into(),
                headers: strings(&[
                    ("X-A", "spaced"),
                    ("Set-Cookie", "a=1"),
                    ("Set-Cookie", "b=2"),
                    ("Content-Length", "0")
                ]),
            })
        );
    }

    #[test]
    fn body_bytes_pass_straight_through() {
        let mut parser = ResponseParser::new("GET");
        let head = parser
            .push(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap_or_default();
        assert!(matches!(head.as_slice(), [ResponseEvent::Head(_)]));
        // A partial chunk's data is passed on at once; a partial size line is not.
        let cases: &[(&[u8], Vec<ResponseEvent>)] = &[
            (b"a\r\nab", vec![ResponseEvent::Body(b"ab".to_vec())]),
            (b"cdefghij", vec![ResponseEvent::Body(b"cdefghij".to_vec())]),
            (b"\r\n1", vec![]),
            (b"0\r\n", vec![]),
            (
                b"0123456789abcdef",
                vec![ResponseEvent::Body(b"0123456789abcdef".to_vec())],
            ),
            (b"\r\n0\r\n", vec![]),
            (b"\r\n", vec![ResponseEvent::End]),
        ];
        for (step, (bytes, expected)) in cases.iter().enumerate() {
            assert_eq!(parser.push(bytes).as_ref(), Ok(expected), "step {step}");
        }
        assert!(parser.is_done());
        assert_eq!(parser.body_bytes(), 26);
        assert_eq!(parser.finish(), Ok(vec![]));
    }

    #[test]
    fn errors_stick() {
        let mut parser = ResponseParser::new("GET");
        let error = BridgeError::MalformedResponse("invalid HTTP version".into());
        assert_eq!(parser.push(b"nope"), Err(error.clone()));
        assert_eq!(parser.push(b"HTTP/1.1 200 OK\r\n\r\n"), Err(error.clone()));
        assert_eq!(parser.finish(), Err(error));
    }

    #[test]
    fn limits() {
        let big_header = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "a".repeat(2000));
        let head_limit = BridgeError::HeadTooLarge { limit: 1000 };
        let line_limit = BridgeError::ChunkLineTooLong { limit: 8 };
        let trailer_limit = BridgeError::TrailersTooLarge { limit: 1000 };
        let long_trailers = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: {}\r\n\r\n",
            "t".repeat(1000)
        );
        let cases: Vec<(&str, Vec<Vec<u8>>, BridgeError)> = vec![
            (
                "oversize head whole",
                vec![big_header.clone().into_bytes()],
                head_limit.clone(),
            ),
            (
                "oversize head byte by byte",
                big_header.bytes().map(|byte| vec![byte]).collect(),
                head_limit.clone(),
            ),
            (
                "endless head",
                vec![
                    b"HTTP/1.1 200 OK\r\n".to_vec(),
                    format!("X: {}\r\n", "y".repeat(30)).repeat(40).into_bytes(),
                ],
                head_limit,
            ),
            (
                "long chunk line",
                vec![
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;aaaaaaaaaaaa\r\n"
                        .to_vec(),
                ],
                line_limit.clone(),
            ),
            (
                "long chunk line, no LF yet",
                vec![
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;aaaa".to_vec(),
                    b"aaaaaaa".to_vec(),
                ],
                line_limit,
            ),
            (
                "long trailers",
                vec![long_trailers.into_bytes()],
                trailer_limit,
            ),
        ];
        for (name, parts, expected) in cases {
            let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let got = feed_with(ResponseParser::with_limits("GET", 1000, 8), &parts, false);
            assert_eq!(got, Err(expected), "{name}");
        }
        let fits = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\nContent-Length: 3\r\n\r\nabc",
            "a".repeat(900)
        );
        let got = feed_with(
            ResponseParser::with_limits("GET", 1000, 8),
            &[fits.as_bytes()],
            false,
        );
        assert_eq!(got.map(|outcome| outcome.body), Ok(b"abc".to_vec()));
    }

    #[test]
    fn probe_request_bytes() {
        let cases: &[(&str, u16, &str)] = &[
            ("/health", 8080, "GET /health HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: webvm-health/1\r\nConnection: close\r\n\r\n"),
            ("ready?x=1", 80, "GET /ready?x=1 HTTP/1.1\r\nHost: 127.0.0.1:80\r\nUser-Agent: webvm-health/1\r\nConnection: close\r\n\r\n"),
            ("/a b\r\n", 1, "GET /a%20b%0D%0A HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUser-Agent: webvm-health/1\r\nConnection: close\r\n\r\n"),
        ];
        for (path, port, expected) in cases {
            assert_eq!(
                String::from_utf8_lossy(&probe_request(path, *port)),
                *expected,
                "{path}"
            );
        }
    }

    #[test]
    fn probe_verdict_table() {
        let long_body = format!(
            "HTTP/1.1 500 Internal Server Error\r\n\r\n{}",
            "e".repeat(5000)
        );
        let cases: Vec<(&str, Vec<u8>, bool, String)> = vec![
            ("200", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(), true, "HTTP 200 OK\nok".into()),
            ("204 no reason", b"HTTP/1.1 204\r\n\r\n".to_vec(), true, "HTTP 204".into()),
            ("301", b"HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n".to_vec(), true, "HTTP 301 Moved Permanently".into()),
            ("404", b"HTTP/1.1 404 Not Found\r\n\r\nnope".to_vec(), false, "HTTP 404 Not Found\nnope".into()),
            ("500 chunked", b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nboom\r\n0\r\n\r\n".to_vec(), false, "HTTP 500 Internal Server Error\nboom".into()),
            ("body capped", long_body.into_bytes(), false, format!("HTTP 500 Internal Server Error\n{}", "e".repeat(PROBE_OUTPUT_BODY_BYTES))),
            ("truncated body still judged by status", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial".to_vec(), true, "HTTP 200 OK\npartial".into()),
            ("too long body still judged by status", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab".to_vec(), true, "HTTP 200 OK\na".into()),
            ("invalid UTF-8 body", b"HTTP/1.1 503 Busy\r\n\r\n\xff!".to_vec(), false, "HTTP 503 Busy\n\u{fffd}!".into()),
            ("empty", Vec::new(), false, "no HTTP response: the app closed the connection without sending a response".into()),
            ("garbage", b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(), false, "no HTTP response: the app sent a malformed HTTP response: invalid HTTP version".into()),
            ("cut head", b"HTTP/1.1 200 OK\r\n".to_vec(), false, "no HTTP response: the app closed the connection in the middle of the response head (after 17 bytes)".into()),
        ];
        for (name, response, passed, output) in cases {
            assert_eq!(
                probe_verdict(&response),
                ProbeVerdict { passed, output },
                "{name}"
            );
        }
    }

    /// A response with a generated head and body; `chunks` selects chunked framing with
    /// those chunk sizes (cycled), extensions and trailers.
    fn build_response(
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
        chunked: Option<(Vec<usize>, bool, bool)>,
        interim: bool,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        if interim {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        out.extend_from_slice(format!("HTTP/1.1 {status} Status\r\n").as_bytes());
        for (name, value) in headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        match chunked {
            None => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            Some((sizes, extensions, trailers)) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = body;
                let mut sizes = sizes.into_iter().cycle();
                while !rest.is_empty() {
                    let size = sizes.next().unwrap_or(1).clamp(1, rest.len());
                    let (chunk, tail) = rest.split_at(size);
                    let extension = if extensions { ";ext=\"v\"" } else { "" };
                    out.extend_from_slice(format!("{size:x}{extension}\r\n").as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                    rest = tail;
                }
                out.extend_from_slice(b"0\r\n");
                if trailers {
                    out.extend_from_slice(b"X-Checksum: abc\r\nX-Other: 1\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    fn split_at_points<'a>(bytes: &'a [u8], points: &[prop::sample::Index]) -> Vec<&'a [u8]> {
        let mut cuts: Vec<usize> = points
            .iter()
            .map(|point| point.index(bytes.len() + 1))
            .collect();
        cuts.sort_unstable();
        let mut parts = Vec::new();
        let mut start = 0;
        for cut in cuts {
            parts.push(&bytes[start..cut]);
            start = cut;
        }
        parts.push(&bytes[start..]);
        parts
    }

    fn header_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec(("X-[A-Za-z0-9-]{1,12}", "[!-~]([ -~]{0,30}[!-~])?"), 0..6)
    }

    fn response_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, bool)> {
        (
            prop_oneof![Just(200u16), Just(201), Just(404), Just(500)],
            header_strategy(),
            proptest::collection::vec(any::<u8>(), 0..1500),
            proptest::option::of((
                proptest::collection::vec(1usize..300, 1..6),
                any::<bool>(),
                any::<bool>(),
            )),
            any::<bool>(),
        )
            .prop_map(|(status, headers, body, chunked, interim)| {
                let is_chunked = chunked.is_some();
                (
                    build_response(status, &headers, &body, chunked, interim),
                    body,
                    is_chunked,
                )
            })
    }

    proptest! {
        #[test]
        fn any_split_decodes_like_whole(
            (response, body, _chunked) in response_strategy(),
            points in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
            finish in any::<bool>(),
        ) {
            let whole = feed("GET", &[&response], finish);
            let split = feed("GET", &split_at_points(&response, &points), finish);
            let bytes: Vec<&[u8]> = response.chunks(1).collect();
            let byte_by_byte = feed("GET", &bytes, finish);
            prop_assert_eq!(&split, &whole);
            prop_assert_eq!(&byte_by_byte, &whole);
            let whole = whole.map_err(|error| TestCaseError::fail(error.to_string()))?;
            prop_assert_eq!(whole.body, body);
            prop_assert_eq!(whole.ends, 1);
            prop_assert!(whole.done);
        }

        #[test]
        fn any_truncation_is_reported(
            (response, _body, chunked) in response_strategy(),
            cut in any::<prop::sample::Index>(),
        ) {
            let cut = cut.index(response.len());
            let outcome = feed("GET", &[&response[..cut]], true);
            let bytes: Vec<&[u8]> = response[..cut].chunks(1).collect();
            prop_assert_eq!(&feed("GET", &bytes, true), &outcome);
            // Content-Length and chunked responses cut anywhere are incomplete.
            prop_assert!(outcome.is_err(), "cut at {} of {} (chunked {}) accepted", cut, response.len(), chunked);
        }

        #[test]
        fn rewritten_locations_stay_under_the_prefix(path in "/[ -~]{0,40}") {
            prop_assume!(!path.starts_with("//"));
            let rewritten = rewrite_location(&path, &ctx());
            prop_assert!(is_under_prefix(&rewritten, "/apps/hello"));
            let cookie = rewrite_set_cookie(&format!("a=1; Path={path}"), &ctx());
            prop_assert!(cookie.contains("Path=/apps/hello"));
        }
    }
}
