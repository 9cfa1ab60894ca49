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
    ///
    /// Keeps `torn` up to date after every write (whether the last byte
    /// the writer took ends a line), so that it is right even when the
    /// writer panics part-way: the next send then starts on a new line.
    fn write_counted(&mut self) -> (usize, Option<std::io::Error>) {
        let mut written = 0;
        while written < self.buf.len() {
            match self.out.write(self.buf.get(written..).unwrap_or(&[])) {
                Ok(0) => {
                    let e =
                        std::io::Error::new(std::io::ErrorKind::WriteZero, "writer took no bytes");
                    return (written, Some(e));
                }
                Ok(n) => {
                    written += n;
                    self.torn = self.buf.get(..written).and_then(<[u8]>::last) != Some(&b'\n');
                }
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
    ///   those lines (they count delivered once a later flush succeeds);
    /// - a broken pipe, met writing or flushing, is not retried;
    /// - an event in a binary encoding (a sink misused by hand; the emitter
    ///   never does it) has no JSON form to write: it is failed for good,
    ///   not written as an empty line.
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        if events.iter().all(|e| e.encoding() == Encoding::Json) {
            return self.send_lines(events.iter(), events.len(), |k| k);
        }
        let json = || events.iter().filter(|e| e.encoding() == Encoding::Json);
        let mut failed: Option<SendError> = None;
        for (i, e) in events.iter().enumerate() {
            if e.encoding() != Encoding::Json {
                let err = SendError::fatal_at(
                    i..i + 1,
                    Error::Encode(format!(
                        "event {:?} is encoded as {:?}, the writer sink writes Json",
                        e.id(),
                        e.encoding(),
                    )),
                );
                failed = Some(match failed {
                    Some(f) => f.merge(err),
                    None => err,
                });
            }
        }
        // Position in `events` of the `k`th JSON event (its length past the
        // last): the failed ranges of the lines cover the events failed
        // above too, which keep their first failure.
        let pos = |k: usize| {
            events
                .iter()
                .enumerate()
                .filter(|(_, e)| e.encoding() == Encoding::Json)
                .nth(k)
                .map_or(events.len(), |(i, _)| i)
        };
        let lines = self.send_lines(json(), json().count(), pos);
        let failed = match (failed, lines) {
            (Some(f), Err(e)) => f.merge(e),
            (Some(f), Ok(())) => f,
            (None, r) => return r,
        };
        Err(failed)
    }
}

impl<W: Write + Send + 'static> WriterSink<W> {
    /// [`send`](Sink::send) for the `n` JSON events of `events`; `pos` maps
    /// a position among them (or `n`) to one in the batch the sink was
    /// handed, for the failures it answers.
    fn send_lines<'e>(
        &mut self,
        events: impl Iterator<Item = &'e Encoded> + Clone,
        n: usize,
        pos: impl Fn(usize) -> usize,
    ) -> Result<(), SendError> {
        // Events written by the last send whose flush failed, met again.
        let skip = {
            let held = &self.unflushed;
            let n = held
                .iter()
                .zip(events.clone())
                .take_while(|&(&(id, fp), e)| id == fp_id(e) && fp == fingerprint(e))
                .count();
            if n == held.len() { n } else { 0 }
        };
        self.unflushed.clear();
        self.buf.clear();
        if self.torn {
            self.buf.push(b'\n');
        }
        let mut ends = Vec::with_capacity(n);
        for e in events.clone().skip(skip) {
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
        // Torn (`write_counted` said): the write stopped inside a line (or
        // before the newline that ends a line torn earlier).
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
                .take(taken)
                .map(|e| (fp_id(e), fingerprint(e)))
                .collect();
            let retry = retry_of(&e);
            result = Some(SendError::at(0..pos(taken), retry, Error::Io(e)));
        }
        // A write that stopped just before the last line's newline took
        // every line whole: nothing failed (a failure that names no event
        // would fail the whole batch, and it would be written again).
        if let Some(e) = write_err.filter(|_| taken < n) {
            let retry = retry_of(&e);
            let rest = SendError::at(pos(taken)..pos(n), retry, Error::Io(e));
            result = Some(match result {
                Some(r) => r.merge(rest),
                None => rest,
            });
        }
        result.map_or(Ok(()), Err)
    }
}

/// Whether an I/O error of the writer may pass: not a broken pipe (the
/// reader is gone).
fn retry_of(e: &std::io::Error) -> Retry {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Retry::No
    } else {
        Retry::LATER
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

#[cfg(test)]
mod fault_tests {
    use super::*;
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::Duration;

    /// A writer the test keeps a handle to: takes `cut` bytes, then fails
    /// once with `kind`, then takes everything; its `flush` fails with
    /// `flush_fails` while that is set.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<State>>);
    #[derive(Default)]
    struct State {
        out: Vec<u8>,
        cut: Option<(usize, std::io::ErrorKind)>,
        /// Panics on the write after this many bytes, once.
        panic_at: Option<usize>,
        flush_fails: Option<std::io::ErrorKind>,
        flushes: usize,
    }
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = s.panic_at {
                let room = at - s.out.len();
                if room == 0 {
                    s.panic_at = None;
                    drop(s);
                    panic!("writer panics");
                }
                let n = room.min(buf.len());
                s.out.extend_from_slice(&buf[..n]);
                return Ok(n);
            }
            if let Some((cut, kind)) = s.cut {
                let room = cut - s.out.len();
                if room == 0 {
                    s.cut = None;
                    return Err(kind.into());
                }
                let n = room.min(buf.len());
                s.out.extend_from_slice(&buf[..n]);
                return Ok(n);
            }
            s.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            s.flushes += 1;
            match s.flush_fails {
                Some(kind) => Err(kind.into()),
                None => Ok(()),
            }
        }
    }

    fn event(id: &str) -> ossa_events_core::Event<'_> {
        ossa_events_core::Event::builder()
            .id(id)
            .source("/s")
            .ty("t")
            .build()
            .unwrap()
    }

    /// A write that stops just before the newline of the batch's last line
    /// took every event whole (the newline comes with the next write): the
    /// emitter counts them delivered once and writes none of them again.
    #[test]
    fn a_cut_before_the_last_newline_writes_no_event_twice_through_the_emitter() {
        let len = Encoded::new(&event("a"), Encoding::Json)
            .unwrap()
            .json()
            .len();
        let w = Shared::default();
        w.0.lock().unwrap().cut = Some((len, std::io::ErrorKind::Other));
        let emitter = crate::Emitter::builder("/s")
            .sink(WriterSink::new(w.clone()))
            .retry(crate::RetryPolicy::default().base(Duration::from_millis(1)))
            .build()
            .unwrap();
        emitter.emit_event(&event("a")).unwrap();
        emitter.flush().unwrap();
        emitter.emit_event(&event("b")).unwrap();
        let report = emitter.shutdown().unwrap();
        let out = String::from_utf8(w.0.lock().unwrap().out.clone()).unwrap();
        let ids: Vec<&str> = out
            .lines()
            .map(|l| if l.contains(r#""id":"a""#) { "a" } else { "b" })
            .collect();
        assert_eq!(ids, ["a", "b"], "{out:?}");
        assert_eq!((report.delivered, report.failed), (2, 0));
        assert_eq!(emitter.metrics().retried, 0);
    }

    /// An event in a binary encoding has no JSON form: the sink fails it
    /// for good, as the HTTP and Kafka sinks fail an event in an encoding
    /// they do not send, instead of writing an empty line and counting it
    /// delivered.
    #[test]
    fn an_event_with_no_json_form_is_failed_not_written_as_an_empty_line() {
        let ev = event("bin");
        let batch = [
            Encoded::new(&event("a"), Encoding::Json).unwrap(),
            Encoded::new(&ev, Encoding::HttpBinary).unwrap(),
            Encoded::new(&event("c"), Encoding::Json).unwrap(),
        ];
        let mut sink = WriterSink::new(Vec::new());
        let err = sink.send(&batch).unwrap_err();
        assert!(err.failure_of(0).is_none());
        assert_eq!(err.failure_of(1).map(|f| f.retry), Some(Retry::No));
        assert!(err.failure_of(2).is_none());
        let out = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(out.lines().count(), 2, "{out:?}");
        assert!(out.lines().all(|l| !l.is_empty()), "{out:?}");
    }

    /// A broken pipe met by the flush is final, as one met by a write is:
    /// the reader is gone, retrying only delays the end.
    #[test]
    fn a_broken_pipe_on_flush_is_not_retried() {
        let w = Shared::default();
        w.0.lock().unwrap().flush_fails = Some(std::io::ErrorKind::BrokenPipe);
        let mut sink = WriterSink::new(w.clone());
        let batch = [Encoded::new(&event("a"), Encoding::Json).unwrap()];
        let err = sink.send(&batch).unwrap_err();
        assert_eq!(err.failure_of(0).map(|f| f.retry), Some(Retry::No));
    }

    /// A writer that panics part-way through a line: the worker fails that
    /// batch, and the next line still starts on a line of its own, so the
    /// next event parses.
    #[test]
    fn a_writer_that_panics_mid_line_leaves_the_next_event_on_its_own_line() {
        let w = Shared::default();
        w.0.lock().unwrap().panic_at = Some(10);
        let emitter = crate::Emitter::builder("/s")
            .sink(WriterSink::new(w.clone()))
            .build()
            .unwrap();
        emitter.emit_event(&event("a")).unwrap();
        emitter.flush().unwrap();
        emitter.emit_event(&event("b")).unwrap();
        let report = emitter.shutdown().unwrap();
        assert_eq!((report.delivered, report.failed), (1, 1));
        let out = String::from_utf8(w.0.lock().unwrap().out.clone()).unwrap();
        let mut scratch = [0u8; 256];
        let parsed: Vec<String> = out
            .lines()
            .filter_map(|l| {
                ossa_events_core::parse::json::parse_event(
                    l.as_bytes(),
                    &mut ossa_events_core::Scratch::new(&mut scratch),
                )
                .ok()
                .map(|e| e.id().to_owned())
            })
            .collect();
        assert_eq!(parsed, ["b"], "{out:?}");
    }

    /// A write cut at every offset of three lines, a binary event among
    /// them, with or without a flush that fails once, compact or pretty:
    /// every JSON event is answered delivered once and read back once, each
    /// from a parseable unit of its own; the binary one is failed.
    #[test]
    fn every_cut_and_flush_failure_delivers_each_event_once() {
        let ev = |id| {
            ossa_events_core::Event::builder()
                .id(id)
                .source("/s")
                .ty("t")
                .data_json(r#"{"a":[1,{"b":"x\u2028y"}]}"#)
                .build()
                .unwrap()
        };
        let batch = vec![
            Encoded::new(&ev("a"), Encoding::Json).unwrap(),
            Encoded::new(&ev("bin"), Encoding::KafkaBinary).unwrap(),
            Encoded::new(&ev("b"), Encoding::Json).unwrap(),
            Encoded::new(&ev("c"), Encoding::Json).unwrap(),
        ];
        for pretty in [false, true] {
            let total = {
                let mut sink = WriterSink::new(Shared::default()).pretty(pretty);
                let _ = sink.send(&batch);
                sink.get_ref().0.lock().unwrap().out.len()
            };
            for cut in 0..=total {
                for flush_fails in [false, true] {
                    let w = Shared::default();
                    {
                        let mut s = w.0.lock().unwrap();
                        s.cut = (cut < total).then_some((cut, std::io::ErrorKind::Other));
                        s.flush_fails = flush_fails.then_some(std::io::ErrorKind::Other);
                    }
                    let mut sink = WriterSink::new(w.clone()).pretty(pretty);
                    // The worker's loop, by hand: each answer made whole as
                    // the worker makes it (`clamped`); the flush fails on
                    // the first send only.
                    let mut first = true;
                    let (delivered, failed) = {
                        let (mut d, mut f) = (Vec::new(), Vec::new());
                        let mut todo = batch.clone();
                        while !todo.is_empty() {
                            let r = sink.send(&todo).map_err(|e| e.clamped(todo.len()));
                            if first {
                                w.0.lock().unwrap().flush_fails = None;
                                first = false;
                            }
                            let mut again = Vec::new();
                            for (i, e) in todo.iter().enumerate() {
                                match r.as_ref().err().and_then(|err| err.failure_of(i)) {
                                    None => d.push(e.id().to_owned()),
                                    Some(x) if x.retry == Retry::No => f.push(e.id().to_owned()),
                                    Some(_) => again.push(e.clone()),
                                }
                            }
                            todo = again;
                        }
                        (d, f)
                    };
                    assert_eq!(
                        delivered,
                        ["a", "b", "c"],
                        "pretty {pretty} cut {cut} flush {flush_fails}"
                    );
                    assert_eq!(failed, ["bin"]);
                    let out = String::from_utf8(w.0.lock().unwrap().out.clone()).unwrap();
                    // Units: lines (compact), or documents that start with `{` at
                    // the start of a line and end with `}` alone on one (pretty).
                    let units: Vec<String> = if pretty {
                        let mut units = Vec::new();
                        let mut cur = String::new();
                        for l in out.lines() {
                            if l.starts_with('{') {
                                cur.clear();
                            }
                            cur.push_str(l);
                            cur.push('\n');
                            if l == "}" {
                                units.push(std::mem::take(&mut cur));
                            }
                        }
                        units
                    } else {
                        out.lines().map(str::to_owned).collect()
                    };
                    let mut scratch = [0u8; 512];
                    let ids: Vec<String> = units
                        .iter()
                        .filter_map(|u| {
                            ossa_events_core::parse::json::parse_event(
                                u.as_bytes(),
                                &mut ossa_events_core::Scratch::new(&mut scratch),
                            )
                            .ok()
                            .map(|e| e.id().to_owned())
                        })
                        .collect();
                    assert_eq!(
                        ids,
                        ["a", "b", "c"],
                        "pretty {pretty} cut {cut} flush {flush_fails}: {out:?}"
                    );
                }
            }
        }
    }
}
