//! JSON Lines to stdout, stderr, a file or any [`std::io::Write`].

use std::io::Write;

use crate::errors::{Error, SendError};
use crate::sink::{Encoded, Encoding, Sink};

/// Writes each event as one line of JSON (JSON Lines), or pretty-printed
/// (one indented JSON document per event, separated by a newline).
///
/// ```
/// use ossa_events::sink::WriterSink;
/// let sink = WriterSink::new(Vec::<u8>::new()).pretty(true);
/// # let _ = sink;
/// ```
#[derive(Debug)]
pub struct WriterSink<W: Write + Send + 'static> {
    out: W,
    pretty: bool,
    buf: Vec<u8>,
    /// The last write failed, possibly after writing part of a line.
    torn: bool,
}

impl WriterSink<std::io::Stdout> {
    /// JSON Lines on standard output.
    pub fn stdout() -> Self {
        WriterSink::new(std::io::stdout())
    }
}

impl WriterSink<std::io::Stderr> {
    /// JSON Lines on standard error.
    pub fn stderr() -> Self {
        WriterSink::new(std::io::stderr())
    }
}

impl WriterSink<std::fs::File> {
    /// JSON Lines appended to the file at `path` (created if missing).
    pub fn append_to(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(WriterSink::new(f))
    }
}

impl<W: Write + Send + 'static> WriterSink<W> {
    /// JSON Lines to `out`.
    pub fn new(out: W) -> Self {
        WriterSink {
            out,
            pretty: false,
            buf: Vec::new(),
            torn: false,
        }
    }
    /// Pretty-print each event (2-space indent) instead of one line each.
    /// Defaults to `false`.
    pub fn pretty(mut self, pretty: bool) -> Self {
        self.pretty = pretty;
        self
    }
    /// The writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }
    /// Gives back the writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send + 'static> Sink for WriterSink<W> {
    fn encoding(&self) -> Encoding {
        Encoding::Json
    }

    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        // The whole batch goes out in one write, then a flush; a failure
        // retries the whole batch. A write that failed part-way may have left
        // a torn line behind: the retry starts with a newline so that line
        // stays on its own and the retried events parse.
        self.buf.clear();
        if self.torn {
            self.buf.push(b'\n');
        }
        for e in events {
            if self.pretty {
                pretty(e.json(), &mut self.buf);
            } else {
                self.buf.extend_from_slice(e.json());
            }
            self.buf.push(b'\n');
        }
        let r = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        self.torn = r.is_err();
        r.map_err(|e| {
            let retry = !matches!(e.kind(), std::io::ErrorKind::BrokenPipe);
            if retry {
                SendError::retryable(0, Error::Io(e), None)
            } else {
                SendError::fatal(0, Error::Io(e))
            }
        })
    }

    fn flush(&mut self) -> Result<(), SendError> {
        self.out
            .flush()
            .map_err(|e| SendError::retryable(0, Error::Io(e), None))
    }
}

/// Re-indents compact JSON (as our encoder writes it) with two spaces.
pub(crate) fn pretty(json: &[u8], out: &mut Vec<u8>) {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.resize(out.len() + 2 * depth, b' ');
    };
    let mut i = 0;
    while let Some(&b) = json.get(i) {
        i += 1;
        if in_str {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => {
                in_str = true;
                out.push(b);
            }
            b'{' | b'[' => {
                out.push(b);
                // Keep empty containers on one line.
                if matches!(json.get(i), Some(b'}' | b']')) {
                    continue;
                }
                depth += 1;
                newline(out, depth);
            }
            b'}' | b']' => {
                if !matches!(out.last(), Some(b'{' | b'[')) {
                    depth = depth.saturating_sub(1);
                    newline(out, depth);
                }
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_output_is_the_same_json() {
        let compact = br#"{"a":"x, {y}: \"z\"","b":[1,{"c":[]},{}],"d":{"e":null}}"#;
        let mut out = Vec::new();
        pretty(compact, &mut out);
        let a: serde_json::Value = serde_json::from_slice(compact).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\n  \"b\": [\n    1,"), "{text}");
        assert!(text.contains("\"c\": []"), "{text}");
    }
}
