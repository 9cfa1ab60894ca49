//! The `no_std` emitter: builds, validates and batches events, and writes them
//! to an [`embedded_io::Write`] when the batch fills, when the flush interval
//! has passed ([`Emitter::poll`]) or on request ([`Emitter::flush`]).
//!
//! No heap, no OS, no clock of its own: ids come from an [`IdSource`], times
//! from a [`Clock`], both supplied by the caller.
//!
//! ```
//! use ossa_events_core::emitter::{Config, Emitter};
//! use ossa_events_core::{batch::BatchFormat, ossa, FixedClock, RandomIds, Timestamp};
//!
//! let mut out = [0u8; 4096];
//! let mut uart: &mut [u8] = &mut out; // anything that is embedded_io::Write
//! let clock = FixedClock(Timestamp::parse("2026-11-25T12:00:00Z")?);
//! let mut seed = 1u8;
//! let ids = RandomIds(move |b: &mut [u8; 16]| { seed = seed.wrapping_add(1); b.fill(seed) });
//! let config = Config::new("/devices/sensor-7").batch_size(4).format(BatchFormat::JsonLines);
//! let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(config, &mut uart, ids, clock);
//! em.set_context(ossa::Context { agent_id: Some("thermo-agent"), ..Default::default() });
//! em.emit_ossa(&ossa::AgentStarted { agent_id: "thermo-agent", ..Default::default() })?;
//! em.flush()?;
//! assert_eq!(em.counters().delivered, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use embedded_io::Write;

use crate::batch::{Batch, BatchFormat, DrainError, PushErrorKind};
use crate::error::{PayloadError, ValidationError};
use crate::event::{Event, EventBuilder};
use crate::id::IdSource;
use crate::ossa;
use crate::time::{Clock, Timestamp};

/// Default events per flush.
pub const DEFAULT_BATCH_SIZE: usize = 16;
/// Default flush interval in milliseconds.
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1000;

/// Emitter settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config<'a> {
    source: &'a str,
    batch_size: usize,
    flush_interval_ms: u64,
    format: BatchFormat,
}

impl<'a> Config<'a> {
    /// Settings for events from `source` (a URI-reference).
    pub const fn new(source: &'a str) -> Self {
        Config {
            source,
            batch_size: DEFAULT_BATCH_SIZE,
            flush_interval_ms: DEFAULT_FLUSH_INTERVAL_MS,
            format: BatchFormat::JsonLines,
        }
    }
    /// Flush when this many events are pending (capped at the batch's `N`, at least 1).
    /// Defaults to [`DEFAULT_BATCH_SIZE`].
    pub const fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = if n == 0 { 1 } else { n };
        self
    }
    /// [`Emitter::poll`] flushes once the oldest pending event is this old.
    /// Defaults to [`DEFAULT_FLUSH_INTERVAL_MS`].
    pub const fn flush_interval_ms(mut self, ms: u64) -> Self {
        self.flush_interval_ms = ms;
        self
    }
    /// Framing of each flush. Defaults to JSON Lines.
    pub const fn format(mut self, format: BatchFormat) -> Self {
        self.format = format;
        self
    }
    /// The `source` attribute.
    pub const fn source(&self) -> &'a str {
        self.source
    }
}

/// What the emitter has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events accepted into the batch.
    pub emitted: u64,
    /// Events written and flushed to the writer.
    pub delivered: u64,
    /// Flushes that failed (the events stayed in the batch).
    pub failed_writes: u64,
    /// Events refused as invalid (or whose payload failed to serialize, or too large for the batch).
    pub rejected: u64,
    /// Valid events refused because the batch was full and flushing it failed.
    pub dropped: u64,
}

/// Why [`Emitter::emit`] did not accept an event. Every case is also counted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmitError<E> {
    /// The event breaks a CloudEvents rule (counted in `rejected`).
    Invalid(ValidationError),
    /// Its `T: Serialize` payload failed (counted in `rejected`).
    Payload(PayloadError),
    /// It is larger than the whole batch arena (counted in `rejected`).
    TooLarge,
    /// The batch was full and flushing it failed (counted in `dropped`): retry later.
    Full(DrainError<E>),
}

impl<E: fmt::Debug> fmt::Display for EmitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::Invalid(v) => write!(f, "event rejected: {v}"),
            EmitError::Payload(p) => write!(f, "event rejected: {p}"),
            EmitError::TooLarge => f.write_str("event rejected: larger than the batch capacity"),
            EmitError::Full(e) => write!(f, "event dropped: batch full and flush failed: {e}"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for EmitError<E> {}

/// Everything an emitter holds but its writer: shared by [`Emitter`] and
/// [`AsyncEmitter`], which only add the I/O.
struct Inner<'a, I: IdSource, C: Clock, const N: usize, const B: usize> {
    config: Config<'a>,
    context: ossa::Context<'a>,
    batch: Batch<N, B>,
    ids: I,
    clock: C,
    /// Unix milliseconds of the oldest pending event's emit.
    oldest_ms: Option<i64>,
    counters: Counters,
}

/// What staging an event into the batch led to.
enum Staged {
    /// Stored; `true` when the batch reached the configured size.
    Stored(bool),
    /// The batch has no room: flush, then [`Inner::push_again`].
    NoRoom,
}

fn millis(t: Timestamp) -> i64 {
    t.unix_seconds()
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos() / 1_000_000))
}

impl<'a, I: IdSource, C: Clock, const N: usize, const B: usize> Inner<'a, I, C, N, B> {
    fn new(config: Config<'a>, ids: I, clock: C) -> Self {
        Inner {
            batch: Batch::new(config.format),
            config,
            context: ossa::Context::default(),
            ids,
            clock,
            oldest_ms: None,
            counters: Counters::default(),
        }
    }

    /// Completes and checks the event; counts a rejection.
    fn complete<'e, E>(
        &mut self,
        event: EventBuilder<'e>,
        id: &'e str,
        now: Timestamp,
    ) -> Result<Event<'e>, EmitError<E>>
    where
        'a: 'e,
    {
        let mut b = event;
        b.fill_defaults(id, self.config.source, now);
        let ctx = self.context;
        for (name, value) in [
            (ossa::EXT_AGENT_ID, ctx.agent_id),
            (ossa::EXT_INTERACTION_ID, ctx.interaction_id),
            (ossa::EXT_TRACE_ID, ctx.trace_id),
            (ossa::EXT_SPAN_ID, ctx.span_id),
        ] {
            if let Some(v) = value {
                b.fill_ossa(name, v);
            }
        }
        b.build().map_err(|e| {
            self.counters.rejected += 1;
            EmitError::Invalid(e)
        })
    }

    /// Encodes the event into the batch.
    fn stage<E>(&mut self, ev: &Event<'_>, now: Timestamp) -> Result<Staged, EmitError<E>> {
        match self.batch.push_ref(ev) {
            Err(PushErrorKind::FullCount | PushErrorKind::FullBytes) => Ok(Staged::NoRoom),
            r => self.accepted(r, now),
        }
    }

    /// After a flush made room: encodes the event again (no room now means too large).
    fn push_again<E>(&mut self, ev: &Event<'_>, now: Timestamp) -> Result<bool, EmitError<E>> {
        let r = self.batch.push_ref(ev);
        match self.accepted(r, now)? {
            Staged::Stored(due) => Ok(due),
            Staged::NoRoom => Ok(false),
        }
    }

    fn accepted<E>(
        &mut self,
        r: Result<(), PushErrorKind>,
        now: Timestamp,
    ) -> Result<Staged, EmitError<E>> {
        match r {
            Ok(()) => {}
            Err(PushErrorKind::Payload(p)) => {
                self.counters.rejected += 1;
                return Err(EmitError::Payload(p));
            }
            Err(_) => {
                // Does not fit even in an empty arena.
                self.counters.rejected += 1;
                return Err(EmitError::TooLarge);
            }
        }
        self.counters.emitted += 1;
        if self.oldest_ms.is_none() {
            self.oldest_ms = Some(millis(now));
        }
        Ok(Staged::Stored(
            self.batch.len() >= self.config.batch_size.min(N),
        ))
    }

    fn due(&self, now: Timestamp) -> bool {
        matches!(self.oldest_ms, Some(t) if millis(now).saturating_sub(t) >= self.config.flush_interval_ms as i64)
    }

    fn next_flush_in_ms(&self, now: Timestamp) -> Option<u64> {
        let t = self.oldest_ms?;
        let waited = millis(now).saturating_sub(t).max(0) as u64;
        Some(self.config.flush_interval_ms.saturating_sub(waited))
    }

    fn drained<E>(&mut self, r: Result<usize, DrainError<E>>) -> Result<usize, DrainError<E>> {
        match r {
            Ok(n) => {
                self.counters.delivered += n as u64;
                if self.batch.is_empty() {
                    self.oldest_ms = None;
                }
                Ok(n)
            }
            Err(e) => {
                self.counters.failed_writes += 1;
                Err(e)
            }
        }
    }
}

macro_rules! common_methods {
    () => {
        /// Sets the OSSA extensions added to every event that does not set them itself.
        pub fn set_context(&mut self, context: ossa::Context<'a>) {
            self.inner.context = context;
        }
        /// The OSSA context.
        pub fn context(&self) -> &ossa::Context<'a> {
            &self.inner.context
        }
        /// The counters so far.
        pub fn counters(&self) -> Counters {
            self.inner.counters
        }
        /// Events waiting in the batch.
        pub fn pending(&self) -> usize {
            self.inner.batch.len()
        }
        /// The batch (read-only).
        pub fn batch(&self) -> &Batch<N, B> {
            &self.inner.batch
        }
        /// The writer.
        pub fn writer(&self) -> &W {
            &self.writer
        }
        /// The writer, mutably (e.g. to repair a connection).
        pub fn writer_mut(&mut self) -> &mut W {
            &mut self.writer
        }
        /// Gives back the writer; pending events are dropped (flush first).
        pub fn into_writer(self) -> W {
            self.writer
        }
        /// Milliseconds until `poll` would flush (0 if due now), or `None` when
        /// nothing is pending: how long a superloop may sleep.
        pub fn next_flush_in_ms(&self, now: Timestamp) -> Option<u64> {
            self.inner.next_flush_in_ms(now)
        }
    };
}

/// Batches events and writes them to `W`; `N` events and `B` bytes at most pending.
pub struct Emitter<'a, W: Write, I: IdSource, C: Clock, const N: usize, const B: usize> {
    inner: Inner<'a, I, C, N, B>,
    writer: W,
}

impl<W: Write, I: IdSource, C: Clock, const N: usize, const B: usize> fmt::Debug
    for Emitter<'_, W, I, C, N, B>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("config", &self.inner.config)
            .field("batch", &self.inner.batch)
            .field("counters", &self.inner.counters)
            .finish_non_exhaustive()
    }
}

impl<'a, W: Write, I: IdSource, C: Clock, const N: usize, const B: usize>
    Emitter<'a, W, I, C, N, B>
{
    /// An emitter writing to `writer`, with ids from `ids` and times from `clock`.
    pub fn new(config: Config<'a>, writer: W, ids: I, clock: C) -> Self {
        Emitter {
            inner: Inner::new(config, ids, clock),
            writer,
        }
    }

    common_methods!();

    /// Emits an OSSA event from its typed payload.
    pub fn emit_ossa<P: ossa::Payload>(&mut self, payload: &P) -> Result<(), EmitError<W::Error>> {
        self.emit(EventBuilder::new().ossa(payload))
    }

    /// Completes `event` (id, `source`, `time` and the OSSA extensions where it
    /// does not set them), validates it, encodes it into the batch, and flushes
    /// when the batch reaches the configured size. A full batch is flushed first
    /// to make room. A flush failure after the event was accepted is counted in
    /// `failed_writes` and does not fail the emit: the events wait for the next flush.
    pub fn emit(&mut self, event: EventBuilder<'_>) -> Result<(), EmitError<W::Error>> {
        let id = self.inner.ids.next_id();
        let now = self.inner.clock.now();
        let ev = self.inner.complete(event, id.as_str(), now)?;
        let due = match self.inner.stage(&ev, now)? {
            Staged::Stored(due) => due,
            Staged::NoRoom => {
                if let Err(e) = self.flush() {
                    self.inner.counters.dropped += 1;
                    return Err(EmitError::Full(e));
                }
                self.inner.push_again(&ev, now)?
            }
        };
        if due {
            // Counted in failed_writes; the events stay for the next flush.
            let _ = self.flush();
        }
        Ok(())
    }

    /// Flushes when the oldest pending event has waited at least the flush
    /// interval at `now`. Returns the events written (0 when nothing was due).
    pub fn poll(&mut self, now: Timestamp) -> Result<usize, DrainError<W::Error>> {
        if self.inner.due(now) {
            self.flush()
        } else {
            Ok(0)
        }
    }

    /// Writes every pending event now and flushes the writer. On failure the
    /// events stay pending and the failure is counted.
    pub fn flush(&mut self) -> Result<usize, DrainError<W::Error>> {
        let r = self.inner.batch.write_to(&mut self.writer);
        self.inner.drained(r)
    }
}

/// [`Emitter`] over an [`embedded_io_async::Write`] (embassy and other async
/// executors): the same batching, counters and guarantees, with `async` I/O.
#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub struct AsyncEmitter<
    'a,
    W: embedded_io_async::Write,
    I: IdSource,
    C: Clock,
    const N: usize,
    const B: usize,
> {
    inner: Inner<'a, I, C, N, B>,
    writer: W,
}

#[cfg(feature = "async")]
impl<W: embedded_io_async::Write, I: IdSource, C: Clock, const N: usize, const B: usize> fmt::Debug
    for AsyncEmitter<'_, W, I, C, N, B>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncEmitter")
            .field("config", &self.inner.config)
            .field("batch", &self.inner.batch)
            .field("counters", &self.inner.counters)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "async")]
impl<'a, W: embedded_io_async::Write, I: IdSource, C: Clock, const N: usize, const B: usize>
    AsyncEmitter<'a, W, I, C, N, B>
{
    /// An emitter writing to `writer`, with ids from `ids` and times from `clock`.
    pub fn new(config: Config<'a>, writer: W, ids: I, clock: C) -> Self {
        AsyncEmitter {
            inner: Inner::new(config, ids, clock),
            writer,
        }
    }

    common_methods!();

    /// Emits an OSSA event from its typed payload (see [`Emitter::emit_ossa`]).
    pub async fn emit_ossa<P: ossa::Payload>(
        &mut self,
        payload: &P,
    ) -> Result<(), EmitError<W::Error>> {
        self.emit(EventBuilder::new().ossa(payload)).await
    }

    /// See [`Emitter::emit`].
    pub async fn emit(&mut self, event: EventBuilder<'_>) -> Result<(), EmitError<W::Error>> {
        let id = self.inner.ids.next_id();
        let now = self.inner.clock.now();
        let ev = self.inner.complete(event, id.as_str(), now)?;
        let due = match self.inner.stage(&ev, now)? {
            Staged::Stored(due) => due,
            Staged::NoRoom => {
                if let Err(e) = self.flush().await {
                    self.inner.counters.dropped += 1;
                    return Err(EmitError::Full(e));
                }
                self.inner.push_again(&ev, now)?
            }
        };
        if due {
            let _ = self.flush().await;
        }
        Ok(())
    }

    /// See [`Emitter::poll`].
    pub async fn poll(&mut self, now: Timestamp) -> Result<usize, DrainError<W::Error>> {
        if self.inner.due(now) {
            self.flush().await
        } else {
            Ok(0)
        }
    }

    /// See [`Emitter::flush`].
    pub async fn flush(&mut self) -> Result<usize, DrainError<W::Error>> {
        let r = self.inner.batch.write_to_async(&mut self.writer).await;
        self.inner.drained(r)
    }
}
