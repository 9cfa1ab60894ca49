//! JSON Lines to stdout, stderr, a file or any [`std::io::Write`].

use std::io::Write;

use crate::errors::{Error, Retry, SendError};
use crate::sink::{Encoded, Encoding, Sink};

/// Writes each event as one line of JSON (JSON Lines), or pretty-printed
/// (one indented JSON document per event, separated by a newline).
///
/// Each event's outcome is its own: the lines a failing writer took whole
/// are not written again; the line a failed write tore and those after it
/// are retried by the emitter's worker (a broken pipe is not: the reader is
/// gone), starting on a new line, so the torn part stays on its own and the
/// retried events parse. See [`send`](Sink::send) for the details.
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
    /// The last write failed part-way through a line.
    torn: bool,
    /// (length, fingerprint) of the events the last send wrote but could
    /// not flush, in order.
    unflushed: Vec<(usize, u64)>,
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
            unflushed: Vec::new(),
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

/// Buffers above this size are given back after a send, so one huge batch
/// does not hold its memory for the life of the sink.
pub(crate) const KEEP_BUF: usize = 256 * 1024;

/// Gives `buf` back when it outgrew [`KEEP_BUF`].
pub(crate) fn trim(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_BUF {
        *buf = Vec::new();
    }
}

/// A cheap fingerprint of an event's bytes, to know a retried event again.
fn fingerprint(e: &Encoded) -> u64 {
    crate::ids::fnv1a(crate::ids::FNV_START, e.json())
}

impl<W: Write + Send + 'static> WriterSink<W> {
    /// Writes `buf` with as many `write` calls as it takes; returns how many
    /// bytes the writer accepted, and the error that stopped it.
    fn write_counted(&mut self) -> (usize, Option<std::io::Error>) {
        let mut written = 0;
        while written < self.buf.len() {
            match self.out.write(self.buf.get(written..).unwrap_or(&[])) {
                Ok(0) => {
                    let e =
                        std::io::Error::new(std::io::ErrorKind::WriteZero, "writer took no bytes");
                    return (written, Some(e));
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return (written, Some(e)),
            }
        }
        (written, None)
    }
}

impl<W: Write + Send + 'static> Sink for WriterSink<W> {
    fn encoding(&self) -> Encoding {
        Encoding::Json
    }

    /// Writes the batch, then flushes the writer, and answers per event:
    ///
    /// - an event whose line the writer took whole, and whose flush
    ///   succeeded, is delivered;
    /// - a write that fails part-way leaves the lines before it with the
    ///   writer: they are flushed (delivered if that works), the line it
    ///   tore and those after it are retried (not a broken pipe: the reader
    ///   is gone), and the retry starts with a newline so the torn part stays
    ///   on a line of its own;
    /// - lines the writer took but could not flush are not written again
    ///   when the emitter retries them: the retry only flushes, so no line is
    ///   written twice. This relies on the writer keeping what it took when
    ///   its `flush` fails, as `BufWriter`, `LineWriter`, files, sockets and
    ///   stdout do; a writer that drops its buffer on a failed flush loses
    ///   those lines (they count delivered once a later flush succeeds).
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        // Events written by the last send whose flush failed, met again.
        let skip = {
            let held = &self.unflushed;
            let n = held
                .iter()
                .zip(events)
                .take_while(|&(&(id, fp), e)| id == fp_id(e) && fp == fingerprint(e))
                .count();
            if n == held.len() { n } else { 0 }
        };
        self.unflushed.clear();
        self.buf.clear();
        if self.torn {
            self.buf.push(b'\n');
        }
        let mut ends = Vec::with_capacity(events.len());
        for e in events.iter().skip(skip) {
            if self.pretty {
                pretty(e.json(), &mut self.buf);
            } else {
                self.buf.extend_from_slice(e.json());
            }
            self.buf.push(b'\n');
            ends.push(self.buf.len());
        }
        let (written, write_err) = self.write_counted();
        // Lines the writer took whole (the skipped ones were taken before).
        // A line cut just before its newline is whole too: the newline the
        // next write starts with (it is torn) ends it; writing it again
        // would put it on the wire twice.
        let taken = skip
            + ends
                .iter()
                .take_while(|&&end| end <= written.saturating_add(1))
                .count();
        // Torn: the write stopped inside a line (or before the newline
        // that ends a line torn earlier).
        let start = usize::from(self.torn);
        self.torn = write_err.is_some() && written != start && !ends.contains(&written);
        trim(&mut self.buf);
        let flush_err = if taken > 0 {
            self.out.flush().err()
        } else {
            None
        };
        let mut result: Option<SendError> = None;
        if let Some(e) = flush_err {
            // Taken, not confirmed: retried by flushing only.
            self.unflushed = events
                .iter()
                .take(taken)
                .map(|e| (fp_id(e), fingerprint(e)))
                .collect();
            result = Some(SendError::at(0..taken, Retry::LATER, Error::Io(e)));
        }
        if let Some(e) = write_err {
            let retry = if e.kind() == std::io::ErrorKind::BrokenPipe {
                Retry::No
            } else {
                Retry::LATER
            };
            let rest = SendError::at(taken..events.len(), retry, Error::Io(e));
            result = Some(match result {
                Some(r) => r.merge(rest),
                None => rest,
            });
        }
        result.map_or(Ok(()), Err)
    }
}

/// The part of an event's identity the unflushed list keeps beside its
/// fingerprint: its length.
fn fp_id(e: &Encoded) -> usize {
    e.json().len()
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

#[cfg(test)]
mod buffer_tests {
    use super::*;
    use ossa_events_core::Event;

    /// Issue 11, problem 11: one huge batch does not keep its buffer.
    #[test]
    fn a_huge_batch_gives_its_buffer_back() {
        let data = format!("\"{}\"", "x".repeat(2 * KEEP_BUF));
        let ev = Event::builder()
            .id("big")
            .source("/s")
            .ty("t")
            .data_json(&data)
            .build()
            .unwrap();
        let enc = Encoded::new(&ev, Encoding::Json).unwrap();
        let mut sink = WriterSink::new(Vec::new());
        sink.send(&[enc]).unwrap();
        assert!(sink.buf.capacity() <= KEEP_BUF, "{}", sink.buf.capacity());
        assert!(sink.get_ref().len() > 2 * KEEP_BUF);
    }
}

#[cfg(test)]
mod torn_tests {
    use super::*;

    /// Takes `cut` bytes, then fails once, then takes everything.
    struct CutOnce {
        out: Vec<u8>,
        cut: Option<usize>,
    }

    impl Write for CutOnce {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(cut) = self.cut {
                let room = cut - self.out.len();
                if room == 0 {
                    self.cut = None;
                    return Err(std::io::Error::other("reset"));
                }
                let n = room.min(buf.len());
                self.out.extend_from_slice(&buf[..n]);
                return Ok(n);
            }
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A write cut at every offset of two lines: each event ends up on its
    /// own line exactly once (a cut just before a newline included), and the
    /// events the first send answered delivered are not sent again.
    #[test]
    fn a_cut_at_any_offset_puts_each_line_on_the_wire_once() {
        let evs: Vec<Encoded> = ["a", "b"].map(crate::sink::minimal_event).to_vec();
        let total = evs.iter().map(|e| e.json().len() + 1).sum::<usize>();
        for cut in 0..total {
            let mut sink = WriterSink::new(CutOnce {
                out: Vec::new(),
                cut: Some(cut),
            });
            let retry: Vec<Encoded> = match sink.send(&evs) {
                Ok(()) => Vec::new(),
                Err(e) => (0..evs.len())
                    .filter(|&i| e.failure_of(i).is_some())
                    .map(|i| evs[i].clone())
                    .collect(),
            };
            if !retry.is_empty() {
                sink.send(&retry).unwrap();
            }
            let out = String::from_utf8(sink.into_inner().out).unwrap();
            let ids: Vec<&str> = out
                .lines()
                .filter(|l| l.ends_with('}') && l.starts_with('{'))
                .map(|l| if l.contains(r#""id":"a""#) { "a" } else { "b" })
                .collect();
            assert_eq!(ids, ["a", "b"], "cut at {cut}: {out:?}");
        }
    }
}
