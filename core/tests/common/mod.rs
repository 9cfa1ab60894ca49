//! Shared by the behaviour tests: what a reader makes of the emitted stream,
//! and writers (blocking and async) that fail, write short or hang on a script.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "flash-spool")]
pub(crate) mod flash;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use ossa_events_core::Scratch;
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::parse::json::{BatchParser, parse_event};

/// What a line-oriented reader gets from the stream.
#[derive(Debug, Default)]
pub(crate) struct Reading {
    /// Ids of the events parsed, in stream order.
    pub(crate) ids: Vec<String>,
    /// Lines that parsed (an event, or a whole array).
    pub(crate) parsed: Vec<Vec<u8>>,
    /// Non-empty lines that did not parse.
    pub(crate) unparsed: Vec<Vec<u8>>,
}

/// Reads `bytes` as a reader of a byte pipe would: split at `\n`; in JSON Lines
/// every line that parses is an event; in JSON batch every line that parses
/// as a whole array gives its events (an array with any bad element is
/// dropped whole). Empty lines are skipped.
pub(crate) fn read(format: BatchFormat, bytes: &[u8]) -> Reading {
    let mut out = Reading::default();
    let mut scratch = vec![0u8; 4096];
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let ids = match format {
            BatchFormat::JsonLines => parse_event(line, &mut Scratch::new(&mut scratch))
                .map(|ev| vec![ev.id().to_string()])
                .ok(),
            _ => whole_array(line, &mut scratch),
        };
        match ids {
            Some(ids) => {
                out.ids.extend(ids);
                out.parsed.push(line.to_vec());
            }
            None => out.unparsed.push(line.to_vec()),
        }
    }
    out
}

fn whole_array(line: &[u8], scratch: &mut [u8]) -> Option<Vec<String>> {
    let mut p = BatchParser::new(line).ok()?;
    let mut ids = Vec::new();
    while let Some(ev) = p.next_event(scratch) {
        ids.push(ev.ok()?.id().to_string());
    }
    Some(ids)
}

impl Reading {
    /// The reader got `expected`, in order: exactly, or, after a call that
    /// failed yet passed bytes on (`duplicates_allowed`), with some events
    /// twice but none lost or out of order. Either way no line is glued.
    pub(crate) fn assert_got(&self, expected: &[String], duplicates_allowed: bool, stream: &[u8]) {
        self.assert_only_torn_fragments(stream);
        if !duplicates_allowed {
            assert_eq!(
                self.ids,
                expected,
                "the reader parses exactly what was counted delivered:\n{}",
                String::from_utf8_lossy(stream)
            );
            return;
        }
        let mut seen = std::collections::HashSet::new();
        let firsts: Vec<&String> = self.ids.iter().filter(|id| seen.insert(*id)).collect();
        let expected: Vec<&String> = expected.iter().collect();
        assert!(
            firsts.len() >= expected.len() && firsts[..expected.len()] == expected[..],
            "{firsts:?} does not start with {expected:?}:\n{}",
            String::from_utf8_lossy(stream)
        );
    }

    /// No glued lines: every line that does not parse is a torn fragment, a
    /// strict prefix of a line that does (the same event or array written
    /// again, whole, on a line of its own).
    pub(crate) fn assert_only_torn_fragments(&self, stream: &[u8]) {
        for bad in &self.unparsed {
            assert!(
                self.parsed
                    .iter()
                    .any(|good| good.len() > bad.len() && good.starts_with(bad)),
                "a line is neither an event nor a torn prefix of one: {:?}\nstream:\n{}",
                String::from_utf8_lossy(bad),
                String::from_utf8_lossy(stream)
            );
        }
    }
}

/// The far end of the pipe: bytes a `write` accepted sit in `unflushed` until
/// a `flush` succeeds; then the reader has them in `wire`.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    pub(crate) wire: Vec<u8>,
    pub(crate) unflushed: Vec<u8>,
    /// Calls that failed or never returned, yet passed bytes on: a `write`
    /// that errs after sending part of its buffer, a DMA write whose future is
    /// dropped, a `flush` that fails after its bytes went out. The documented
    /// cases where an event may arrive twice.
    pub(crate) passing_failures: usize,
    pub(crate) writes: usize,
}

impl Wire {
    /// Everything the writer took, as a reader would see it once the line drains.
    pub(crate) fn all(&self) -> Vec<u8> {
        let mut v = self.wire.clone();
        v.extend_from_slice(&self.unflushed);
        v
    }
}

/// What the writer does with the next `write` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    /// Takes everything.
    Accept,
    /// Takes at most this many bytes (at least one).
    Short(usize),
    /// Passes on up to `passed` bytes, then reports an error (a UART that
    /// fails mid-transfer: what went out is gone).
    Fail { passed: usize },
    /// Returns `Ok(0)`.
    Zero,
    /// Async only: passes on up to `passed` bytes (DMA) and never completes;
    /// the test drops the future. Blocking writers treat it as `Fail`.
    Hang { passed: usize },
    /// Async only: returns `Pending` once, then takes everything.
    Yield,
}

/// What the writer does with the next `flush` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlushAct {
    Ok,
    /// Fails and loses what was not yet flushed (a dropped connection).
    FailLossy,
    /// Fails, yet what was written had already gone out (duplicates follow).
    FailPassing,
    /// Async only: never completes; the test drops the future. Blocking: `Ok`.
    Hang,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Down;
impl core::fmt::Display for Down {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("link down")
    }
}
impl std::error::Error for Down {}
impl embedded_io::Error for Down {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::BrokenPipe
    }
}

/// A writer that follows a script, then takes everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scripted {
    pub(crate) wire: Rc<RefCell<Wire>>,
    pub(crate) writes: Rc<RefCell<VecDeque<Act>>>,
    pub(crate) flushes: Rc<RefCell<VecDeque<FlushAct>>>,
}

impl Scripted {
    pub(crate) fn new(writes: &[Act], flushes: &[FlushAct]) -> Self {
        Scripted {
            wire: Rc::default(),
            writes: Rc::new(RefCell::new(writes.iter().copied().collect())),
            flushes: Rc::new(RefCell::new(flushes.iter().copied().collect())),
        }
    }
    fn next_write(&self) -> Act {
        self.writes.borrow_mut().pop_front().unwrap_or(Act::Accept)
    }
    fn next_flush(&self) -> FlushAct {
        self.flushes
            .borrow_mut()
            .pop_front()
            .unwrap_or(FlushAct::Ok)
    }
    /// Passes on up to `n` bytes of a call that will fail or never return.
    fn pass(&self, buf: &[u8], n: usize) {
        if self.take(buf, n) > 0 {
            self.wire.borrow_mut().passing_failures += 1;
        }
    }
    fn take(&self, buf: &[u8], n: usize) -> usize {
        let n = n.min(buf.len());
        let mut w = self.wire.borrow_mut();
        w.unflushed.extend_from_slice(&buf[..n]);
        w.writes += 1;
        n
    }
    fn do_flush(&self, act: FlushAct) -> Result<(), Down> {
        let mut w = self.wire.borrow_mut();
        match act {
            FlushAct::FailLossy => {
                w.unflushed.clear();
                Err(Down)
            }
            FlushAct::FailPassing => {
                let p = std::mem::take(&mut w.unflushed);
                if !p.is_empty() {
                    w.passing_failures += 1;
                }
                w.wire.extend_from_slice(&p);
                Err(Down)
            }
            FlushAct::Ok | FlushAct::Hang => {
                let p = std::mem::take(&mut w.unflushed);
                w.wire.extend_from_slice(&p);
                Ok(())
            }
        }
    }
}

impl embedded_io::ErrorType for Scripted {
    type Error = Down;
}

impl embedded_io::Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Down> {
        match self.next_write() {
            Act::Accept | Act::Yield => Ok(self.take(buf, buf.len())),
            Act::Short(n) => Ok(self.take(buf, n.max(1))),
            Act::Fail { passed } | Act::Hang { passed } => {
                self.pass(buf, passed);
                Err(Down)
            }
            Act::Zero => Ok(0),
        }
    }
    fn flush(&mut self) -> Result<(), Down> {
        let act = self.next_flush();
        self.do_flush(act)
    }
}

/// `Pending` once, then ready.
struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

#[cfg(feature = "async")]
impl embedded_io_async::Write for Scripted {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Down> {
        match self.next_write() {
            Act::Accept => Ok(self.take(buf, buf.len())),
            Act::Yield => {
                YieldOnce(false).await;
                Ok(self.take(buf, buf.len()))
            }
            Act::Short(n) => Ok(self.take(buf, n.max(1))),
            Act::Fail { passed } => {
                self.pass(buf, passed);
                Err(Down)
            }
            Act::Zero => Ok(0),
            Act::Hang { passed } => {
                self.pass(buf, passed);
                std::future::pending().await
            }
        }
    }
    async fn flush(&mut self) -> Result<(), Down> {
        match self.next_flush() {
            FlushAct::Hang => std::future::pending().await,
            act => self.do_flush(act),
        }
    }
}

/// Polls `f` with a no-op waker up to `polls` times. `None` means it was still
/// pending and has been dropped: a cancellation, as `select` or a timeout does.
pub(crate) fn poll_or_drop<F: Future>(f: F, polls: usize) -> Option<F::Output> {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..polls {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}
