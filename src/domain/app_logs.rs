//! An application's output as log entries: the raw stdout and stderr chunks of its process
//! (the agent's `OUT`/`ERR` frames, split anywhere, even inside a UTF-8 character) cut into
//! lines of bounded size, made safe to show (no terminal escapes, no control characters,
//! invalid UTF-8 replaced), given a level, filtered, and written out for a download.
//!
//! Lines: every `\r` is dropped before anything else (so `\r\n` ends a line as `\n`
//! does, and a progress bar's lone `\r`s vanish instead of moving a cursor we don't have).
//! A line longer than the limit is cut into pieces of at most that many bytes: each piece
//! that goes on ends with [`ELLIPSIS`] and the next starts with it. At most the limit is
//! buffered, whatever the process writes. A line that is empty only after sanitizing
//! (nothing but escape sequences) is dropped; a blank line stays blank.
//!
//! Levels: a level word near the start wins on either stream (`ERROR`, `[warn]`,
//! `error:`, `WARNING:root:`, nginx's `[error]` after its timestamp); then an HTTP access
//! log line (`"GET / HTTP/1.1" 200`) is `info`, or `error` for a 5xx; then stdout is `info`,
//! and stderr `error` when it mentions an error, fatal, panic, traceback, exception or
//! critical, else `warn`.

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::{LogEntry, LogLevel, LogSource};

/// Marks where a long line was cut, at the end of a piece and the start of the next.
pub const ELLIPSIS: &str = "…";
/// The smallest line limit (room for both marks and a few characters).
pub const MIN_LINE_BYTES: usize = 16;
/// A line limit for application logs.
pub const DEFAULT_LINE_BYTES: usize = 4096;

crate::model::string_enum! {
    /// Which pipe of the process a line came from.
    pub enum Stream {
        Stdout = "stdout",
        Stderr = "stderr",
    }
}

/// Cuts one stream's chunks into sanitized lines (one assembler per stream).
///
/// Bytes are decoded as they come (a character split between chunks waits for its other
/// bytes; invalid bytes become U+FFFD as in `String::from_utf8_lossy`), so the limit is
/// on the text shown and a piece is cut between characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAssembler {
    max: usize,
    /// The current piece, decoded, not sanitized yet.
    line: String,
    /// The first bytes of a character not complete yet (at most 3).
    pending: Vec<u8>,
    /// The current line was cut already and continues.
    continued: bool,
}

impl LineAssembler {
    /// An assembler whose lines have at most `max_line_bytes` bytes (at least
    /// [`MIN_LINE_BYTES`]).
    pub fn new(max_line_bytes: usize) -> Self {
        LineAssembler {
            max: max_line_bytes.max(MIN_LINE_BYTES),
            line: String::new(),
            pending: Vec::new(),
            continued: false,
        }
    }

    /// The line limit in bytes.
    pub fn max_line_bytes(&self) -> usize {
        self.max
    }

    /// Bytes held for a line not complete yet (never more than the limit).
    pub fn buffered(&self) -> usize {
        self.line.len() + self.pending.len()
    }

    /// Text of a piece: the limit less both marks, so a piece fits with them.
    fn piece_limit(&self) -> usize {
        self.max - 2 * ELLIPSIS.len()
    }

    /// The lines `chunk` completes, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in chunk {
            if byte == b'\r' {
                continue;
            }
            if !self.pending.is_empty() {
                if continues(&self.pending, byte) {
                    self.pending.push(byte);
                    if self.pending.len() == sequence_length(self.pending[0]) {
                        let decoded = std::str::from_utf8(&self.pending)
                            .ok()
                            .and_then(|text| text.chars().next())
                            .unwrap_or(char::REPLACEMENT_CHARACTER);
                        self.pending.clear();
                        self.add(decoded, &mut lines);
                    }
                    continue;
                }
                // The character broke off: one U+FFFD for it, and this byte starts afresh.
                self.pending.clear();
                self.add(char::REPLACEMENT_CHARACTER, &mut lines);
            }
            match byte {
                b'\n' => self.emit(false, &mut lines),
                0x00..=0x7F => self.add(char::from(byte), &mut lines),
                0xC2..=0xF4 => self.pending.push(byte),
                _ => self.add(char::REPLACEMENT_CHARACTER, &mut lines),
            }
        }
        lines
    }

    /// The last line when the stream ended without a newline.
    pub fn flush(&mut self) -> Option<String> {
        let mut lines = Vec::new();
        if !self.pending.is_empty() {
            self.pending.clear();
            self.add(char::REPLACEMENT_CHARACTER, &mut lines);
        }
        if !self.line.is_empty() {
            self.emit(false, &mut lines);
        }
        self.continued = false;
        // `add` cuts before the piece is full, so at most one line is left.
        lines.pop()
    }

    /// Adds a character, cutting the line first when it would not fit.
    fn add(&mut self, character: char, lines: &mut Vec<String>) {
        if self.line.len() + character.len_utf8() > self.piece_limit() {
            self.emit(true, lines);
        }
        self.line.push(character);
    }

    /// Emits the current piece; `cut` when the line goes on.
    fn emit(&mut self, cut: bool, lines: &mut Vec<String>) {
        let blank = self.line.is_empty() && !self.continued;
        let text = clean(&self.line);
        self.line.clear();
        if text.is_empty() {
            if blank {
                lines.push(String::new());
            }
            if !cut {
                self.continued = false;
            }
            return;
        }
        let lead = if self.continued { ELLIPSIS } else { "" };
        let tail = if cut { ELLIPSIS } else { "" };
        lines.push(format!("{lead}{text}{tail}"));
        self.continued = cut;
    }
}

/// The length of the UTF-8 sequence a lead byte starts.
fn sequence_length(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// True when `byte` may follow `pending` in a well-formed UTF-8 sequence (Unicode's table
/// 3-7: no overlong forms, surrogates or code points above U+10FFFF).
fn continues(pending: &[u8], byte: u8) -> bool {
    let range = match (pending.len(), pending[0]) {
        (1, 0xE0) => 0xA0..=0xBF,
        (1, 0xED) => 0x80..=0x9F,
        (1, 0xF0) => 0x90..=0xBF,
        (1, 0xF4) => 0x80..=0x8F,
        _ => 0x80..=0xBF,
    };
    range.contains(&byte)
}

/// `bytes` as text safe to show: escape sequences removed (CSI `ESC [ … final`, OSC and
/// the other string sequences `ESC ] P X ^ _ … BEL or ESC \`, and the short `ESC …
/// final` ones), invalid UTF-8 replaced by U+FFFD, control characters except tab removed,
/// and the bidirectional embeddings, overrides and isolates that could make a line read
/// differently than it is.
pub fn sanitize(bytes: &[u8]) -> String {
    clean(&String::from_utf8_lossy(bytes))
}

/// [`sanitize`] of text that is UTF-8 already.
fn clean(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut stripped = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == 0x1B {
            index = skip_escape(bytes, index);
        } else {
            stripped.push(bytes[index]);
            index += 1;
        }
    }
    // Only ASCII ranges were removed, so this is UTF-8 still.
    String::from_utf8_lossy(&stripped)
        .chars()
        .filter(|c| *c == '\t' || !(c.is_control() || is_bidi_control(*c)))
        .collect()
}

/// The index after the escape sequence starting at `start` (an ESC). A malformed sequence
/// ends at the byte that breaks it, which is kept.
fn skip_escape(bytes: &[u8], start: usize) -> usize {
    let Some(&kind) = bytes.get(start + 1) else {
        return start + 1;
    };
    match kind {
        b'[' => {
            let mut index = start + 2;
            while let Some(&byte) = bytes.get(index) {
                match byte {
                    0x40..=0x7E => return index + 1,
                    0x20..=0x3F => index += 1,
                    _ => return index,
                }
            }
            index
        }
        b']' | b'P' | b'X' | b'^' | b'_' => {
            let mut index = start + 2;
            while let Some(&byte) = bytes.get(index) {
                match byte {
                    0x07 => return index + 1,
                    0x1B if bytes.get(index + 1) == Some(&b'\\') => return index + 2,
                    0x1B => return index,
                    _ => index += 1,
                }
            }
            index
        }
        _ => {
            let mut index = start + 1;
            while bytes
                .get(index)
                .is_some_and(|byte| (0x20..=0x2F).contains(byte))
            {
                index += 1;
            }
            match bytes.get(index) {
                Some(0x30..=0x7E) => index + 1,
                _ => start + 1,
            }
        }
    }
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The level of a level word (`warning`, `ERR`, …), compared without case.
fn level_word(word: &str) -> Option<LogLevel> {
    let level = match word.to_ascii_lowercase().as_str() {
        "debug" | "trace" | "dbg" => LogLevel::Debug,
        "info" | "information" | "notice" => LogLevel::Info,
        "warn" | "warning" => LogLevel::Warn,
        "error" | "err" | "fatal" | "critical" | "crit" | "panic" | "emerg" | "alert"
        | "severe" => LogLevel::Error,
        _ => return None,
    };
    Some(level)
}

/// A level word among the first four words: bracketed (`[error]`, `<warn>`, `(info)`),
/// before a colon (`error:`, `WARNING:root:…`), or in capitals (`ERROR`).
fn leading_level(line: &str) -> Option<LogLevel> {
    line.split_whitespace().take(4).find_map(|word| {
        let bracketed = [('[', ']'), ('<', '>'), ('(', ')')]
            .iter()
            .find_map(|(open, close)| word.strip_prefix(*open)?.strip_suffix(*close));
        if let Some(inner) = bracketed {
            return level_word(inner);
        }
        if let Some((before, _)) = word.split_once(':') {
            return level_word(before);
        }
        let capitals = word.chars().all(|c| c.is_ascii_uppercase());
        if capitals {
            level_word(word)
        } else {
            None
        }
    })
}

/// The status of an HTTP access log line (`"GET /x HTTP/1.1" 404 -`).
fn access_log_status(line: &str) -> Option<u16> {
    const METHODS: [&str; 9] = [
        "GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
    ];
    let mut search = 0;
    while let Some(found) = line[search..].find(" HTTP/") {
        let at = search + found;
        search = at + 1;
        let Some(quote) = line[..at].rfind('"') else {
            continue;
        };
        if !METHODS
            .iter()
            .any(|method| line[quote + 1..].starts_with(method))
        {
            continue;
        }
        let after = line[at + " HTTP/".len()..]
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let Some(status) = after.strip_prefix("\" ") else {
            continue;
        };
        let digits = status.get(..3)?;
        let ends = status[3..].is_empty() || status[3..].starts_with(' ');
        if digits.chars().all(|c| c.is_ascii_digit()) && ends {
            return digits.parse().ok();
        }
    }
    None
}

/// The level of one line from `stream` (see the module docs).
pub fn level_of(stream: Stream, line: &str) -> LogLevel {
    if let Some(level) = leading_level(line) {
        return level;
    }
    if let Some(status) = access_log_status(line) {
        return if status >= 500 {
            LogLevel::Error
        } else {
            LogLevel::Info
        };
    }
    match stream {
        Stream::Stdout => LogLevel::Info,
        Stream::Stderr => {
            let lower = line.to_lowercase();
            let alarming = [
                "error",
                "fatal",
                "panic",
                "traceback",
                "exception",
                "critical",
            ]
            .iter()
            .any(|word| lower.contains(word));
            if alarming {
                LogLevel::Error
            } else {
                LogLevel::Warn
            }
        }
    }
}

/// The entry of one of the app's lines, written at `timestamp`.
pub fn entry(stream: Stream, line: String, timestamp: DateTime<Utc>) -> LogEntry {
    LogEntry {
        timestamp,
        level: level_of(stream, &line),
        message: line,
        source: LogSource::Application,
        details: None,
    }
}

/// Which entries the log view shows: an empty set or text lets everything through.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogFilter {
    pub levels: BTreeSet<LogLevel>,
    pub sources: BTreeSet<LogSource>,
    /// Found anywhere in the message, without regard to case; surrounding spaces ignored.
    pub text: String,
}

impl LogFilter {
    /// True when `entry` passes every part of the filter.
    pub fn matches(&self, entry: &LogEntry) -> bool {
        self.matches_with(entry, &self.needle())
    }

    /// The entries that pass, in order.
    pub fn apply<'a>(&self, entries: &'a [LogEntry]) -> Vec<&'a LogEntry> {
        let needle = self.needle();
        entries
            .iter()
            .filter(|entry| self.matches_with(entry, &needle))
            .collect()
    }

    fn needle(&self) -> String {
        self.text.trim().to_lowercase()
    }

    fn matches_with(&self, entry: &LogEntry, needle: &str) -> bool {
        (self.levels.is_empty() || self.levels.contains(&entry.level))
            && (self.sources.is_empty() || self.sources.contains(&entry.source))
            && (needle.is_empty() || entry.message.to_lowercase().contains(needle))
    }
}

/// The entries as a text file, one per line:
/// `2026-12-02T18:00:00.123Z [info] [application] message`. A message's own line breaks
/// continue on lines indented by two spaces; other control characters but tab are dropped.
pub fn to_text(entries: &[LogEntry]) -> String {
    let mut text = String::new();
    for entry in entries {
        text.push_str(&entry.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true));
        text.push_str(" [");
        text.push_str(entry.level.as_str());
        text.push_str("] [");
        text.push_str(entry.source.as_str());
        text.push_str("] ");
        for c in entry.message.chars() {
            match c {
                '\n' => text.push_str("\n  "),
                '\t' => text.push('\t'),
                c if c.is_control() || is_bidi_control(c) => {}
                c => text.push(c),
            }
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn all_lines(assembler: &mut LineAssembler, chunks: &[&[u8]]) -> Vec<String> {
        let mut lines = Vec::new();
        for chunk in chunks {
            lines.extend(assembler.push(chunk));
        }
        lines.extend(assembler.flush());
        lines
    }

    #[test]
    fn line_assembly_table() {
        type Case = (usize, &'static [&'static [u8]], &'static [&'static str]);
        let cases: &[Case] = &[
            (100, &[b"one\ntwo\n"], &["one", "two"]),
            (100, &[b"on", b"e\r", b"\ntw", b"o"], &["one", "two"]),
            (100, &[b"\n\r\n\n"], &["", "", ""]),
            (100, &[b"10%\r20%\r100%\n"], &["10%20%100%"]),
            (100, &[b"\x1b[2J\x1b[H\nreal\n"], &["real"]),
            (100, &[b"caf\xc3", b"\xa9\n"], &["café"]),
            (100, &[b"bad \xff byte\n"], &["bad \u{FFFD} byte"]),
            (100, &[b"cut \xe2\x82", b"\n"], &["cut \u{FFFD}"]),
            (
                100,
                &[b"\xed\xa0\x80 surrogate"],
                &["\u{FFFD}\u{FFFD}\u{FFFD} surrogate"],
            ),
            (100, &[b"\xf0\x9f", b"\xa6\x80 crab"], &["🦀 crab"]),
            (100, &[b"ends mid \xf0\x9f"], &["ends mid \u{FFFD}"]),
            (100, &[b"no newline at the end"], &["no newline at the end"]),
            (100, &[b""], &[]),
            // 16 bytes: 10 raw bytes a piece, the marks around them.
            (
                16,
                &[b"abcdefghijklmnopqrstuvwxyz\n"],
                &["abcdefghij…", "…klmnopqrst…", "…uvwxyz"],
            ),
            (16, &[b"abcdefghij\n"], &["abcdefghij"]),
            (16, &[b"abcdefghijk"], &["abcdefghij…", "…k"]),
            // A cut never splits a character: é (2 bytes) moves to the next piece.
            (16, &[b"abcdefghi\xc3\xa9z\n"], &["abcdefghi…", "…éz"]),
            // Invalid bytes grow to U+FFFD (3 bytes) and count as that.
            (
                16,
                &[b"\xff\xff\xff\xff\xff\n"],
                &["\u{FFFD}\u{FFFD}\u{FFFD}…", "…\u{FFFD}\u{FFFD}"],
            ),
            // A cut piece that is only escapes is dropped; the line goes on.
            (16, &[b"\x1b[0m\x1b[000mhello\n"], &["hello"]),
            // An escape sequence cut in two shows its second half (the cost of the bound).
            (
                16,
                &[b"\x1b]0;title-title\x07hello\n"],
                &["titlehell…", "…o"],
            ),
        ];
        for (max, chunks, expected) in cases {
            let mut assembler = LineAssembler::new(*max);
            let lines = all_lines(&mut assembler, chunks);
            assert_eq!(lines, *expected, "{chunks:?}");
            assert!(lines.iter().all(|line| line.len() <= *max), "{lines:?}");
            assert_eq!(assembler.buffered(), 0);
        }
        assert_eq!(LineAssembler::new(0).max_line_bytes(), MIN_LINE_BYTES);
    }

    #[test]
    fn a_long_line_is_never_buffered_whole() {
        let mut assembler = LineAssembler::new(64);
        let mut emitted = 0;
        for _ in 0..1000 {
            emitted += assembler.push(&[b'x'; 100]).len();
            assert!(assembler.buffered() <= 64);
        }
        assert!(emitted >= 1700, "{emitted}");
    }

    #[test]
    fn sanitize_table() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain text", "plain text"),
            (b"\x1b[31mred\x1b[0m", "red"),
            (b"\x1b[1;32;40mgreen\x1b[K", "green"),
            (b"\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"),
            (b"\x1b]0;window title\x07text", "text"),
            (b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
            (b"\x1bPdevice control\x1b\\after", "after"),
            (b"\x1b(Bcharset\x1b=keypad\x1b7", "charsetkeypad"),
            (b"lone \x1b", "lone "),
            (b"unterminated \x1b[12", "unterminated "),
            (b"unterminated osc \x1b]0;title", "unterminated osc "),
            (b"broken \x1b[1\xc3\xa9 csi", "broken é csi"),
            (
                b"tab\tkept, bell\x07 and nul\0 not",
                "tab\tkept, bell and nul not",
            ),
            (b"back\x08space \x7f del", "backspace  del"),
            (b"\xc2\x9b8-bit csi", "8-bit csi"),
            (b"invalid \xc3\x28 utf-8", "invalid \u{FFFD}( utf-8"),
            (
                "bidi \u{202E}evil\u{2066}x\u{2069}".as_bytes(),
                "bidi evilx",
            ),
            (
                "emoji 🦀 and rtl \u{200F}".as_bytes(),
                "emoji 🦀 and rtl \u{200F}",
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(sanitize(bytes), *expected, "{bytes:?}");
        }
    }

    #[test]
    fn level_table() {
        use LogLevel::*;
        use Stream::*;
        let cases = [
            (Stdout, "Listening on port 3000", Info),
            (Stdout, "ERROR could not open database", Error),
            (Stdout, "WARN disk almost full", Warn),
            (Stdout, "[debug] cache miss", Debug),
            (Stdout, "error: missing file", Error),
            (Stdout, "Error rate is 0%", Info),
            (Stdout, "TypeError: x is undefined", Info),
            (Stdout, "2024-05-01 12:00:00,123 CRITICAL boom", Error),
            (Stdout, "[2024-05-01T12:00:00Z INFO  app] ready", Info),
            (Stderr, "WARNING: This is a development server.", Warn),
            (Stderr, "INFO:werkzeug:started", Info),
            (
                Stderr,
                "2024/05/01 12:00:00 [error] 7#7: open() failed",
                Error,
            ),
            (Stderr, "2024/05/01 12:00:00 [notice] 7#7: start", Info),
            (
                Stderr,
                "127.0.0.1 - - [01/May/2024 12:00:00] \"GET / HTTP/1.1\" 200 -",
                Info,
            ),
            (
                Stderr,
                "127.0.0.1 - - [01/May/2024 12:00:00] \"GET /favicon.ico HTTP/1.1\" 404 -",
                Info,
            ),
            (
                Stderr,
                "127.0.0.1 - - [01/May/2024 12:00:00] \"POST /api HTTP/1.0\" 502 12",
                Error,
            ),
            (Stderr, "Traceback (most recent call last):", Error),
            (Stderr, "ZeroDivisionError: division by zero", Error),
            (Stderr, "thread 'main' panicked at src/main.rs:2", Error),
            (Stderr, "Unhandled exception in handler", Error),
            (Stderr, " * Running on http://127.0.0.1:8000", Warn),
            (Stderr, "  File \"app.py\", line 3, in <module>", Warn),
            (Stderr, "", Warn),
            (Stdout, "", Info),
        ];
        for (stream, line, level) in cases {
            assert_eq!(level_of(stream, line), level, "{stream} {line:?}");
        }
        let at = Utc
            .with_ymd_and_hms(2026, 12, 2, 18, 0, 0)
            .single()
            .expect("a date");
        let made = entry(Stderr, "fatal: oops".into(), at);
        assert_eq!(
            (
                made.level,
                made.source,
                made.message.as_str(),
                made.timestamp
            ),
            (Error, LogSource::Application, "fatal: oops", at)
        );
    }

    fn log(level: LogLevel, source: LogSource, message: &str, millis: i64) -> LogEntry {
        let base = Utc
            .with_ymd_and_hms(2026, 12, 2, 18, 0, 0)
            .single()
            .expect("a date");
        LogEntry {
            timestamp: base + chrono::Duration::milliseconds(millis),
            level,
            message: message.to_owned(),
            source,
            details: None,
        }
    }

    #[test]
    fn filter_table() {
        use LogLevel::*;
        use LogSource::*;
        let entries = [
            log(Info, Application, "GET / 200", 0),
            log(Error, Application, "Database unreachable", 1),
            log(Warn, System, "memory almost full", 2),
            log(Info, Webvm, "app started", 3),
        ];
        type Case = (
            &'static [LogLevel],
            &'static [LogSource],
            &'static str,
            &'static [usize],
        );
        let cases: [Case; 7] = [
            (&[], &[], "", &[0, 1, 2, 3]),
            (&[Error], &[], "", &[1]),
            (&[Warn, Error], &[], "", &[1, 2]),
            (&[], &[Webvm, System], "", &[2, 3]),
            (&[], &[], "  DATABASE ", &[1]),
            (&[Info], &[Application], "get", &[0]),
            (&[Debug], &[], "", &[]),
        ];
        for (levels, sources, text, expected) in cases {
            let filter = LogFilter {
                levels: levels.iter().copied().collect(),
                sources: sources.iter().copied().collect(),
                text: text.to_owned(),
            };
            let kept: Vec<usize> = entries
                .iter()
                .enumerate()
                .filter(|(_, entry)| filter.matches(entry))
                .map(|(index, _)| index)
                .collect();
            assert_eq!(kept, expected, "{filter:?}");
            assert_eq!(filter.apply(&entries).len(), expected.len());
        }
    }

    #[test]
    fn text_download() {
        let entries = [
            log(LogLevel::Info, LogSource::Application, "hello", 123),
            log(
                LogLevel::Error,
                LogSource::Webvm,
                "two\nlines\r\tand \x1b bell\x07",
                4_000,
            ),
        ];
        assert_eq!(
            to_text(&entries),
            "2026-12-02T18:00:00.123Z [info] [application] hello\n\
             2026-12-02T18:00:04.000Z [error] [webvm] two\n  lines\tand  bell\n"
        );
        assert_eq!(to_text(&[]), "");
    }

    /// Bytes with many newlines, carriage returns, escapes and multi-byte characters.
    fn log_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                4 => any::<u8>(),
                3 => Just(b'a'),
                2 => Just(b'\n'),
                1 => Just(b'\r'),
                1 => Just(0x1B),
                1 => Just(b'['),
                1 => Just(0xC3),
                1 => Just(0xA9),
                1 => Just(0xE2),
                1 => Just(0x80),
            ],
            0..700,
        )
    }

    proptest! {
        #[test]
        fn chunking_does_not_change_the_lines(
            bytes in log_bytes(),
            cuts in prop::collection::vec(any::<usize>(), 0..24),
            max in 16usize..80,
        ) {
            let mut whole = LineAssembler::new(max);
            let expected = all_lines(&mut whole, &[&bytes]);
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut assembler = LineAssembler::new(max);
            let mut lines = Vec::new();
            let mut start = 0;
            for cut in cuts {
                lines.extend(assembler.push(&bytes[start..cut]));
                prop_assert!(assembler.buffered() <= max);
                start = cut;
            }
            lines.extend(assembler.push(&bytes[start..]));
            lines.extend(assembler.flush());
            prop_assert_eq!(&lines, &expected);
            for line in &lines {
                prop_assert!(line.len() <= max, "{} bytes: {:?}", line.len(), line);
                prop_assert!(!line.contains(['\n', '\r', '\x1b']));
            }
        }

        #[test]
        fn each_line_is_its_sanitized_bytes(bytes in log_bytes()) {
            let mut assembler = LineAssembler::new(1 << 20);
            let lines = all_lines(&mut assembler, &[&bytes]);
            let segments: Vec<&[u8]> = bytes.split(|byte| *byte == b'\n').collect();
            let mut expected = Vec::new();
            for (index, segment) in segments.iter().enumerate() {
                // `\r` goes before anything else (it can't end an escape sequence).
                let without_cr: Vec<u8> =
                    segment.iter().copied().filter(|byte| *byte != b'\r').collect();
                let text = sanitize(&without_cr);
                let last = index + 1 == segments.len();
                if !text.is_empty() {
                    expected.push(text);
                } else if !last && without_cr.is_empty() {
                    expected.push(String::new());
                }
            }
            prop_assert_eq!(lines, expected);
        }

        #[test]
        fn printable_text_survives_cutting(
            text in "[ -~\n]{0,400}",
            max in 16usize..64,
        ) {
            let mut assembler = LineAssembler::new(max);
            let pieces = all_lines(&mut assembler, &[text.as_bytes()]);
            let mut joined = Vec::new();
            let mut current = String::new();
            for piece in &pieces {
                let body = piece.strip_prefix(ELLIPSIS).unwrap_or(piece);
                match body.strip_suffix(ELLIPSIS) {
                    Some(part) => current.push_str(part),
                    None => {
                        current.push_str(body);
                        joined.push(std::mem::take(&mut current));
                    }
                }
            }
            let mut expected: Vec<&str> = text.split('\n').collect();
            if expected.last() == Some(&"") {
                expected.pop();
            }
            prop_assert_eq!(joined, expected);
        }
    }
}
