//! Splits a process's streamed output into log lines (stdout and stderr each keep their own
//! unfinished line).

/// Longest line kept in the log; the rest of a longer one is cut off.
const MAX_LINE: usize = 2000;

/// The unfinished line of one stream.
#[derive(Debug, Default)]
pub(super) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// The complete lines in `bytes` (with what came before), without line ends; blank
    /// lines are dropped.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            if let Some(line) = text(&line) {
                lines.push(line);
            }
        }
        lines
    }

    /// The last line if it had no line end.
    pub(super) fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        text(&rest)
    }
}

fn text(bytes: &[u8]) -> Option<String> {
    let line = String::from_utf8_lossy(bytes);
    let line = line.trim_end();
    (!line.is_empty()).then(|| {
        if line.chars().count() > MAX_LINE {
            let mut cut: String = line.chars().take(MAX_LINE).collect();
            cut.push('…');
            cut
        } else {
            line.to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_table() {
        let cases: &[(&[&[u8]], &[&str])] = &[
            (&[b"one\ntwo\n"], &["one", "two"]),
            (&[b"par", b"tial\r\nnext"], &["partial", "next"]),
            (&[b"\n\n  \nx"], &["x"]),
            (&[b"caf\xc3", b"\xa9\n"], &["café"]),
            (&[b""], &[]),
        ];
        for (chunks, expected) in cases {
            let mut splitter = LineSplitter::default();
            let mut lines: Vec<String> = chunks.iter().flat_map(|c| splitter.push(c)).collect();
            lines.extend(splitter.finish());
            assert_eq!(lines, expected.to_vec(), "{chunks:?}");
        }
        let mut splitter = LineSplitter::default();
        let long =
            splitter.push(&[b'a'; 3000]).len() + splitter.finish().map_or(0, |l| l.chars().count());
        assert_eq!(long, MAX_LINE + 1);
    }
}
