//! JSON Lines to stdout, stderr, a file or any [`std::io::Write`].

use std::io::Write;

use crate::errors::{Error, SendError};
use crate::sink::{Encoded, Encoding, Sink};

/// Writes each event as one line of JSON (JSON Lines), or pretty-printed
/// (one indented JSON document per event, separated by a newline).
///
/// A write that fails is retried by the emitter's worker (a broken pipe is
/// not: the reader is gone); a retried batch starts on a new line, so a line
/// torn by the failed write stays on its own and the retried events parse.
///
/// The emitter owns its sink, so to read what it wrote give it a writer that
/// shares its buffer:
///
/// ```
/// use std::io::Write;
/// use std::sync::{Arc, Mutex, PoisonError};
/// use ossa_events::{ossa, sink::WriterSink, Emitter};
///
/// /// A `Vec<u8>` the emitter writes into while we keep a handle to it.
/// #[derive(Clone, Default)]
/// struct SharedBuf(Arc<Mutex<Vec<u8>>>);
/// impl Write for SharedBuf {
///     fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
///         self.0.lock().unwrap_or_else(PoisonError::into_inner).write(buf)
///     }
///     fn flush(&mut self) -> std::io::Result<()> {
///         Ok(())
///     }
/// }
///
/// let buf = SharedBuf::default();
/// let emitter = Emitter::builder("/agents/researcher")
///     .sink(WriterSink::new(buf.clone()))
///     .build()?;
/// emitter.emit_ossa(&ossa::AgentStarted { agent_id: "researcher", ..Default::default() })?;
/// emitter.emit_ossa(&ossa::AgentCompleted { agent_id: "researcher", ..Default::default() })?;
/// emitter.flush()?;
/// let out = String::from_utf8(buf.0.lock().unwrap_or_else(PoisonError::into_inner).clone())?;
/// assert_eq!(out.lines().count(), 2);
/// assert!(out.contains(r#""type":"dev.ossa.agent.completed""#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
    ///
    /// The emitter's default sink; naming it says so in the code.
    ///
    /// ```
    /// use ossa_events::{ossa, sink::WriterSink, Emitter};
    /// let emitter = Emitter::builder("/agents/researcher")
    ///     .sink(WriterSink::stdout())
    ///     .build()?;
    /// emitter.emit_ossa(&ossa::AgentStarted { agent_id: "researcher", ..Default::default() })?;
    /// // One line of JSON on stdout, once the worker has written it.
    /// assert_eq!(emitter.shutdown()?.delivered, 1);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn stdout() -> Self {
        WriterSink::new(std::io::stdout())
    }
}

impl WriterSink<std::io::Stderr> {
    /// JSON Lines on standard error.
    ///
    /// For a program whose stdout is its own output (a filter, a CLI): the
    /// events go to stderr, out of its way.
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding, Sink, WriterSink};
    /// use ossa_events::Event;
    /// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.ossa.agent.started").build()?;
    /// let mut sink = WriterSink::stderr();
    /// sink.send(&[Encoded::new(&ev, Encoding::Json)?])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stderr() -> Self {
        WriterSink::new(std::io::stderr())
    }
}

impl WriterSink<std::fs::File> {
    /// JSON Lines appended to the file at `path` (created if missing).
    ///
    /// Every open appends, so a restarted process adds to the same log:
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding, Sink, WriterSink};
    /// use ossa_events::Event;
    /// let path = std::env::temp_dir().join(format!("ossa-events-doc-{}.jsonl", std::process::id()));
    /// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.ossa.agent.started").build()?;
    /// let batch = [Encoded::new(&ev, Encoding::Json)?];
    /// WriterSink::append_to(&path)?.send(&batch)?;
    /// WriterSink::append_to(&path)?.send(&batch)?; // a second run
    /// let log = std::fs::read_to_string(&path)?;
    /// std::fs::remove_file(&path)?;
    /// assert_eq!(log.lines().count(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// Any writer: a `Vec<u8>`, a socket, a `BufWriter`. Each
    /// [`send`](Sink::send) writes the whole batch, then flushes the writer.
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding, Sink, WriterSink};
    /// use ossa_events::Event;
    /// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.ossa.agent.started").build()?;
    /// let mut sink = WriterSink::new(Vec::new());
    /// sink.send(&[Encoded::new(&ev, Encoding::Json)?])?;
    /// let out = String::from_utf8(sink.into_inner())?;
    /// assert!(out.starts_with(r#"{"specversion":"1.0","id":"e-1""#));
    /// assert!(out.ends_with("}\n")); // one event, one line
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// For people reading along; the output is still one JSON document per event,
    /// but no longer one per line (not JSON Lines).
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding, Sink, WriterSink};
    /// use ossa_events::Event;
    /// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.ossa.agent.started").build()?;
    /// let mut sink = WriterSink::new(Vec::new()).pretty(true);
    /// sink.send(&[Encoded::new(&ev, Encoding::Json)?])?;
    /// let out = String::from_utf8(sink.into_inner())?;
    /// assert!(out.starts_with("{\n  \"specversion\": \"1.0\",\n  \"id\": \"e-1\",\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pretty(mut self, pretty: bool) -> Self {
        self.pretty = pretty;
        self
    }
    /// The writer.
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding, Sink, WriterSink};
    /// use ossa_events::Event;
    /// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.ossa.agent.started").build()?;
    /// let mut sink = WriterSink::new(Vec::new());
    /// assert!(sink.get_ref().is_empty());
    /// sink.send(&[Encoded::new(&ev, Encoding::Json)?])?;
    /// assert_eq!(sink.get_ref().iter().filter(|&&b| b == b'\n').count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_ref(&self) -> &W {
        &self.out
    }
    /// Gives back the writer.
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding, Sink, WriterSink};
    /// use ossa_events::Event;
    /// let a = Event::builder().id("a").source("/agents/a").ty("dev.ossa.agent.started").build()?;
    /// let b = Event::builder().id("b").source("/agents/a").ty("dev.ossa.agent.completed").build()?;
    /// let mut sink = WriterSink::new(Vec::new());
    /// sink.send(&[Encoded::new(&a, Encoding::Json)?, Encoded::new(&b, Encoding::Json)?])?;
    /// let lines = String::from_utf8(sink.into_inner())?;
    /// let ids: Vec<_> = lines
    ///     .lines()
    ///     .map(|l| ossa_events::parse::json::parse_event(l.as_bytes(), &mut ossa_events::Scratch::new(&mut [0; 256])).map(|e| e.id().to_owned()))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(ids, ["a", "b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
