//! The `no_std` emitter: builds, validates and batches events, and writes them
//! to an [`embedded_io::Write`] when the batch fills, when the flush interval
//! has passed ([`Emitter::poll`]) or on request ([`Emitter::flush`]).
//!
//! No heap, no OS, no clock of its own: ids come from an [`IdSource`], times
//! from a [`Clock`], both supplied by the caller.
//!
//! An event counts as delivered once its bytes were all written and the
//! writer's `flush` succeeded, never before. A flush cut short (a write error,
//! or an [`AsyncEmitter`] future dropped by a `select` or a timeout) keeps its
//! place in the batch; the next one goes on from there without gluing a line
//! or repeating one the writer took whole. The [`batch`](crate::batch) module
//! shows the states and what a reader sees; in short, what a reader parses is
//! what [`Counters::delivered`] counts, with one documented exception: a
//! failed `flush`, a replaced writer, or a writer that passes on part of a
//! write it fails (or whose future is dropped, e.g. DMA) can make the events
//! concerned arrive twice.
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
use crate::json::ser::JsonPayload;
use crate::ossa;
use crate::time::{Clock, Timestamp};
use crate::trace::TraceParentText;

/// Default events per flush.
pub const DEFAULT_BATCH_SIZE: usize = 16;
/// Default flush interval in milliseconds.
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1000;

/// Emitter settings.
///
/// ```
/// use ossa_events_core::{batch::BatchFormat, emitter::Config};
/// let config = Config::new("/devices/sensor-7")
///     .batch_size(32)
///     .flush_interval_ms(5_000)
///     .format(BatchFormat::JsonBatch);
/// assert_eq!(config.source(), "/devices/sensor-7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config<'a> {
    source: &'a str,
    /// Whether `source` is a URI-reference, found by `new`: at compile time
    /// for a constant `Config`, so its emitter does not carry the RFC 3986
    /// grammar (about 1.6 KiB on a Cortex-M) to check it on every event.
    source_is_uri: bool,
    pub(crate) batch_size: usize,
    pub(crate) flush_interval_ms: u64,
    format: BatchFormat,
    #[cfg(feature = "traceparent")]
    traceparent: bool,
}

impl<'a> Config<'a> {
    /// Settings for events from `source` (a URI-reference; checked here, an
    /// event from a `source` that is not one is rejected at emit). Make it a
    /// `const` on firmware: the check then runs at compile time.
    ///
    /// ```
    /// use ossa_events_core::emitter::{Config, DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_INTERVAL_MS};
    /// // `const`: settings can be a constant of the firmware.
    /// const CONFIG: Config<'static> = Config::new("/devices/sensor-7");
    /// assert_eq!(CONFIG, Config::new("/devices/sensor-7")
    ///     .batch_size(DEFAULT_BATCH_SIZE)
    ///     .flush_interval_ms(DEFAULT_FLUSH_INTERVAL_MS));
    /// ```
    pub const fn new(source: &'a str) -> Self {
        Config {
            source,
            source_is_uri: crate::uri::is_uri_reference(source),
            batch_size: DEFAULT_BATCH_SIZE,
            flush_interval_ms: DEFAULT_FLUSH_INTERVAL_MS,
            format: BatchFormat::JsonLines,
            #[cfg(feature = "traceparent")]
            traceparent: true,
        }
    }
    /// Flush when this many events are pending (capped at the batch's `N`, at least 1).
    /// Defaults to [`DEFAULT_BATCH_SIZE`].
    ///
    /// ```
    /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut out = [0u8; 2048];
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// let config = Config::new("/s").batch_size(2);
    /// let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(config, SliceWriter::new(&mut out), ids, clock);
    /// em.emit(Event::builder().ty("t"))?;
    /// assert_eq!(em.counters().delivered, 0);
    /// em.emit(Event::builder().ty("t"))?; // the second event triggers the flush
    /// assert_eq!(em.counters().delivered, 2);
    /// assert_eq!(Config::new("/s").batch_size(0), Config::new("/s").batch_size(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = if n == 0 { 1 } else { n };
        self
    }
    /// [`Emitter::poll`] flushes once the oldest pending event is this old.
    /// Any `u64` is honoured as written (`u64::MAX`: never by time).
    /// Defaults to [`DEFAULT_FLUSH_INTERVAL_MS`].
    ///
    /// ```
    /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut out = [0u8; 2048];
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// let config = Config::new("/s").flush_interval_ms(500);
    /// let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(config, SliceWriter::new(&mut out), ids, clock);
    /// em.emit(Event::builder().ty("t"))?; // at the clock's time, the epoch
    /// let at = |ms| Timestamp::from_unix_millis(ms).ok_or("range");
    /// assert_eq!(em.poll(at(499)?)?, 0);
    /// assert_eq!(em.poll(at(500)?)?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn flush_interval_ms(mut self, ms: u64) -> Self {
        self.flush_interval_ms = ms;
        self
    }
    /// Framing of each flush. Defaults to JSON Lines.
    ///
    /// ```
    /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut out = [0u8; 2048];
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// use ossa_events_core::batch::BatchFormat;
    /// let config = Config::new("/s").format(BatchFormat::JsonBatch);
    /// let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(config, SliceWriter::new(&mut out), ids, clock);
    /// em.emit(Event::builder().ty("t"))?;
    /// em.flush()?;
    /// assert!(em.writer().written().starts_with(b"[{"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn format(mut self, format: BatchFormat) -> Self {
        self.format = format;
        self
    }
    /// Whether events get a `traceparent` (W3C Trace Context) written from
    /// their `ossatraceid` and `ossaspanid` when they have none (see
    /// [`EventBuilder::derive_traceparent`]). On by default; off saves 72
    /// bytes an event (`,"traceparent":"00-…-01"`) on a link that no tracing
    /// backend reads.
    ///
    /// With the crate's `traceparent` feature (a default one). A firmware
    /// that never writes it leaves the feature out: its emitters then carry
    /// no code to derive it (about 1.3 KiB of flash on a Cortex-M4).
    ///
    /// ```
    /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, ossa, FixedClock, RandomIds, Timestamp};
    /// // One turn emitted under `config` into `out`; the bytes written.
    /// let run = |config: Config<'static>, out: &mut [u8]| -> Result<usize, Box<dyn std::error::Error>> {
    ///     # let ids = RandomIds(|b: &mut [u8; 16]| b.fill(1));
    ///     # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    ///     let mut em: Emitter<'_, _, _, _, 8, 2048> =
    ///         Emitter::new(config, SliceWriter::new(out), ids, clock);
    ///     em.set_context(ossa::Context {
    ///         trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
    ///         span_id: Some("00f067aa0ba902b7"),
    ///         ..Default::default()
    ///     });
    ///     em.emit_ossa(&ossa::TurnStarted { turn: 1, input: None })?;
    ///     em.flush()?;
    ///     Ok(em.writer().written().len())
    /// };
    /// let (mut off, mut on) = ([0u8; 2048], [0u8; 2048]);
    /// let off_len = run(Config::new("/s").traceparent(false), &mut off)?;
    /// assert!(!std::str::from_utf8(&off[..off_len])?.contains("traceparent"));
    /// // The 72 bytes an event it saves:
    /// assert_eq!(run(Config::new("/s"), &mut on)? - off_len, 72);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "traceparent")]
    #[cfg_attr(docsrs, doc(cfg(feature = "traceparent")))]
    pub const fn traceparent(mut self, on: bool) -> Self {
        self.traceparent = on;
        self
    }
    /// The `source` attribute.
    ///
    /// ```
    /// use ossa_events_core::emitter::Config;
    /// assert_eq!(Config::new("urn:device:7").source(), "urn:device:7");
    /// ```
    pub const fn source(&self) -> &'a str {
        self.source
    }
}

/// What the emitter has done so far.
///
/// ```
/// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
/// # let mut out = [0u8; 2048];
/// # let mut n = 0u8;
/// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
/// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
/// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
/// em.emit(Event::builder().ty("t"))?;
/// let _ = em.emit(Event::builder().ty("")); // rejected: empty type
/// em.flush()?;
/// let c = em.counters();
/// assert_eq!((c.emitted, c.delivered, c.rejected, c.failed_writes, c.dropped), (1, 1, 1, 0, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events accepted into the batch.
    pub emitted: u64,
    /// Events written whole and flushed to the writer: what a reader parses.
    pub delivered: u64,
    /// Flushes that failed (the events stayed in the batch).
    pub failed_writes: u64,
    /// Events refused as invalid (or whose payload failed to serialize, or too large for the batch).
    pub rejected: u64,
    /// Valid events refused because the batch was full and flushing it
    /// failed, and pending events given up with `discard_pending`.
    pub dropped: u64,
}

/// Why [`Emitter::emit`] did not accept an event. Every case is also counted.
///
/// ```
/// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
/// # let mut out = [0u8; 2048];
/// # let mut n = 0u8;
/// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
/// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
/// use ossa_events_core::{batch::DrainError, emitter::EmitError, io::SliceFull};
/// let mut broken = [0u8; 0]; // a writer that always fails
/// let mut em: Emitter<'_, _, _, _, 1, 512> = Emitter::new(Config::new("/s"), SliceWriter::new(&mut broken), ids, clock);
/// em.emit(Event::builder().ty("a"))?; // accepted; its flush failed and was counted
/// assert_eq!(em.counters().failed_writes, 1);
/// let err = em.emit(Event::builder().ty("b")).unwrap_err();
/// assert_eq!(err, EmitError::Full(DrainError::Io(SliceFull)));
/// assert_eq!(em.counters().dropped, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// The flash spool of a `spool::SpoolEmitter` (feature `flash-spool`)
    /// could not take the event: full with `WhenFull::DropNewest`, or failing
    /// while the RAM batch was full too (counted in `dropped`).
    SpoolFull,
}

impl<E: fmt::Debug> fmt::Display for EmitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::Invalid(v) => write!(f, "event rejected: {v}"),
            EmitError::Payload(p) => write!(f, "event rejected: {p}"),
            EmitError::TooLarge => f.write_str("event rejected: larger than the batch capacity"),
            EmitError::Full(e) => write!(f, "event dropped: batch full and flush failed: {e}"),
            EmitError::SpoolFull => f.write_str("event dropped: the flash spool is full"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for EmitError<E> {}

/// Everything an emitter holds but its writer: shared by [`Emitter`] and
/// [`AsyncEmitter`], which only add the I/O.
pub(crate) struct Inner<'a, I: IdSource, C: Clock, const N: usize, const B: usize> {
    pub(crate) config: Config<'a>,
    pub(crate) context: ossa::Context<'a>,
    /// The `traceparent` of `context`'s ids (empty when it has none, or
    /// they are not W3C ids): copied into each event's, so an event with
    /// the context's ids has it without the ids being checked again.
    #[cfg(feature = "traceparent")]
    traceparent: TraceParentText,
    pub(crate) batch: Batch<N, B>,
    pub(crate) ids: I,
    pub(crate) clock: C,
    /// Unix milliseconds of the oldest pending event's emit.
    pub(crate) oldest_ms: Option<i64>,
    pub(crate) counters: Counters,
}

/// What staging an event into the batch led to.
pub(crate) enum Staged {
    /// Stored; `true` when the batch reached the configured size.
    Stored(bool),
    /// The batch has no room: flush, then [`Inner::push_again`].
    NoRoom,
}

pub(crate) fn millis(t: Timestamp) -> i64 {
    t.unix_seconds()
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos() / 1_000_000))
}

impl<'a, I: IdSource, C: Clock, const N: usize, const B: usize> Inner<'a, I, C, N, B> {
    pub(crate) fn new(config: Config<'a>, ids: I, clock: C) -> Self {
        Inner {
            batch: Batch::new(config.format),
            config,
            context: ossa::Context::default(),
            #[cfg(feature = "traceparent")]
            traceparent: TraceParentText::new(),
            ids,
            clock,
            oldest_ms: None,
            counters: Counters::default(),
        }
    }

    /// Sets the OSSA context and derives its `traceparent` once.
    pub(crate) fn set_context(&mut self, context: ossa::Context<'a>) {
        self.context = context;
        #[cfg(feature = "traceparent")]
        {
            self.traceparent = TraceParentText::of_context(&context);
        }
    }

    /// Completes and checks the event in place (it is encoded from the
    /// builder, not moved out of it); counts a rejection.
    pub(crate) fn complete<'b, 'e, E>(
        &mut self,
        b: &'b mut EventBuilder<'e>,
        id: &'e str,
        now: Timestamp,
        traceparent: &'e mut TraceParentText,
    ) -> Result<&'b Event<'e>, EmitError<E>>
    where
        'a: 'e,
    {
        b.fill_defaults_checked(id, self.config.source, self.config.source_is_uri, now);
        b.fill_ossa_context(&self.context);
        #[cfg(feature = "traceparent")]
        if self.config.traceparent {
            traceparent.clone_from(&self.traceparent);
            b.fill_traceparent(traceparent);
        }
        #[cfg(not(feature = "traceparent"))]
        let _ = traceparent;
        b.build_ref().map_err(|e| {
            self.counters.rejected += 1;
            EmitError::Invalid(e)
        })
    }

    /// Encodes the event into the batch.
    pub(crate) fn stage<E>(
        &mut self,
        ev: &Event<'_>,
        now: Timestamp,
    ) -> Result<Staged, EmitError<E>> {
        match self.batch.push_ref(ev) {
            Err(PushErrorKind::FullCount | PushErrorKind::FullBytes) => Ok(Staged::NoRoom),
            r => self.accepted(r, now),
        }
    }

    /// After a flush made room: encodes the event again (no room now means too large).
    pub(crate) fn push_again<E>(
        &mut self,
        ev: &Event<'_>,
        now: Timestamp,
    ) -> Result<bool, EmitError<E>> {
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

    /// Takes back the event just staged (the batch's last): it is no longer
    /// counted as emitted.
    #[cfg(feature = "flash-spool")]
    pub(crate) fn unaccept_last(&mut self) {
        self.batch.pop_last();
        self.counters.emitted = self.counters.emitted.saturating_sub(1);
        if self.batch.is_empty() {
            self.oldest_ms = None;
        }
    }

    /// Whether `poll` flushes at `now`. A clock that went back past the
    /// oldest pending event's emit (an RTC reset, an NTP step) starts its
    /// wait over at `now`: how long it waited is unknown, and waiting for
    /// the clock to catch up could hold it for years. When it is due: `now`
    /// in Unix milliseconds.
    pub(crate) fn due_at(&mut self, now: Timestamp) -> Option<i64> {
        let now_ms = millis(now);
        let t = self.oldest_ms.as_mut()?;
        *t = (*t).min(now_ms);
        let waited = u64::try_from(now_ms.saturating_sub(*t)).unwrap_or(0);
        (waited >= self.config.flush_interval_ms).then_some(now_ms)
    }

    /// After a `poll` whose write `failed`, the wait starts over at `now`
    /// (the events are still pending): the next try is an interval later,
    /// not at every call while the link is down.
    pub(crate) fn failed_at(&mut self, failed: bool, now_ms: i64) {
        if failed && let Some(t) = self.oldest_ms.as_mut() {
            *t = now_ms;
        }
    }

    /// How long until [`due_at`](Self::due_at) says yes. The wait is
    /// compared as `u64` with the interval: an interval above `i64::MAX`
    /// must not wrap negative. A clock that went back past the oldest
    /// pending event's emit gives 0: the wait starts over only at the next
    /// `poll` (this takes `&self`), so a superloop that slept a whole
    /// interval first would find that poll starting the wait, not ending
    /// it, and flush an interval late.
    pub(crate) fn next_flush_in_ms(&self, now: Timestamp) -> Option<u64> {
        let t = self.oldest_ms?;
        Some(match u64::try_from(millis(now).saturating_sub(t)) {
            Ok(waited) => self.config.flush_interval_ms.saturating_sub(waited),
            Err(_) => 0,
        })
    }

    pub(crate) fn drained<E>(
        &mut self,
        r: Result<usize, DrainError<E>>,
    ) -> Result<usize, DrainError<E>> {
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
        ///
        /// ```
        /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
        /// # let mut out = [0u8; 2048];
        /// # let mut n = 0u8;
        /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
        /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
        /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
        /// use ossa_events_core::ossa;
        /// em.set_context(ossa::Context { agent_id: Some("thermo"), ..Default::default() });
        /// em.emit(Event::builder().ty("a"))?;
        /// em.emit(Event::builder().ty("b").ossa_agent_id("override"))?; // its own value wins
        /// em.flush()?;
        /// let text = std::str::from_utf8(em.writer().written())?;
        /// assert_eq!(text.matches(r#""ossaagentid":"thermo""#).count(), 1);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn set_context(&mut self, context: ossa::Context<'a>) {
            self.inner.set_context(context);
        }
        /// The OSSA context.
        ///
        /// ```
        /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
        /// # let mut out = [0u8; 2048];
        /// # let mut n = 0u8;
        /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
        /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
        /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
        /// use ossa_events_core::ossa;
        /// assert_eq!(em.context(), &ossa::Context::default());
        /// em.set_context(ossa::Context { trace_id: Some("t-1"), ..Default::default() });
        /// assert_eq!(em.context().trace_id, Some("t-1"));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn context(&self) -> &ossa::Context<'a> {
            &self.inner.context
        }
        /// The counters so far.
        ///
        /// ```
        /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
        /// # let mut out = [0u8; 2048];
        /// # let mut n = 0u8;
        /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
        /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
        /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
        /// em.emit(Event::builder().ty("t"))?;
        /// assert_eq!(em.counters().emitted, 1);
        /// assert_eq!(em.counters().delivered, 0); // still pending
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn counters(&self) -> Counters {
            self.inner.counters
        }
        /// Events waiting in the batch.
        ///
        /// ```
        /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
        /// # let mut out = [0u8; 2048];
        /// # let mut n = 0u8;
        /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
        /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
        /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
        /// em.emit(Event::builder().ty("t"))?;
        /// assert_eq!(em.pending(), 1);
        /// em.flush()?;
        /// assert_eq!(em.pending(), 0);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn pending(&self) -> usize {
            self.inner.batch.len()
        }
        /// The batch (read-only).
        ///
        /// ```
        /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
        /// # let mut out = [0u8; 2048];
        /// # let mut n = 0u8;
        /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
        /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
        /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
        /// em.emit(Event::builder().ty("t"))?;
        /// assert_eq!(em.batch().len(), 1);
        /// assert!(em.batch().bytes_len() > 0);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn batch(&self) -> &Batch<N, B> {
            &self.inner.batch
        }
        /// The writer.
        ///
        /// ```
        /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
        /// # let mut out = [0u8; 2048];
        /// # let mut n = 0u8;
        /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
        /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
        /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
        /// em.emit(Event::builder().ty("t"))?;
        /// em.flush()?;
        /// assert!(em.writer().written().ends_with(b"}\n")); // JSON Lines by default
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn writer(&self) -> &W {
            &self.writer
        }
        /// The writer, mutably (e.g. to repair a connection). If a flush was
        /// cut short (an error, or its future dropped), the batch is
        /// [rewound](Batch::rewind): the writer may be a new connection that
        /// never got the lines the old one took, so the next flush writes every
        /// pending event again (at-least-once; see [`crate::batch`]).
        ///
        /// ```
        /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
        /// # let mut out = [0u8; 2048];
        /// # let mut n = 0u8;
        /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
        /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
        /// let mut broken = [0u8; 0];
        /// let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/s"), SliceWriter::new(&mut broken), ids, clock);
        /// em.emit(Event::builder().ty("t"))?;
        /// assert!(em.flush().is_err()); // the event stays pending
        /// *em.writer_mut() = SliceWriter::new(&mut out); // e.g. reconnect
        /// assert_eq!(em.flush()?, 1);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn writer_mut(&mut self) -> &mut W {
            self.inner.batch.rewind();
            &mut self.writer
        }
        /// Gives back the writer when no event is pending; otherwise gives the
        /// emitter back, nothing lost: flush it (again), or
        /// [`discard_pending`](Self::discard_pending) to give up on the
        /// pending events, counted as dropped. (As `Rc::try_unwrap` gives
        /// back what it cannot take apart.)
        ///
        /// ```
        /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
        /// # let mut out = [0u8; 2048];
        /// # let mut n = 0u8;
        /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
        /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
        /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
        /// em.emit(Event::builder().ty("t"))?;
        /// let mut em = em.into_writer().err().ok_or("an event is pending")?;
        /// em.flush()?;
        /// let w = em.into_writer().ok().ok_or("flushed")?;
        /// assert_eq!(w.written().iter().filter(|&&b| b == b'\n').count(), 1);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        // The emitter is the error on purpose: it holds the pending events.
        #[allow(clippy::result_large_err)]
        pub fn into_writer(self) -> Result<W, Self> {
            if self.inner.batch.is_empty() {
                Ok(self.writer)
            } else {
                Err(self)
            }
        }
        /// Drops the pending events (for example before
        /// [`into_writer`](Self::into_writer) when the writer is gone for
        /// good), counted in [`Counters::dropped`]; returns how many. Part of
        /// the batch a cut flush wrote may have reached the reader already.
        ///
        /// ```
        /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
        /// # let mut n = 0u8;
        /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
        /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
        /// let mut broken = [0u8; 0];
        /// let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/s"), SliceWriter::new(&mut broken), ids, clock);
        /// em.emit(Event::builder().ty("t"))?;
        /// assert!(em.flush().is_err());
        /// assert_eq!(em.discard_pending(), 1);
        /// assert_eq!((em.pending(), em.counters().dropped), (0, 1));
        /// assert!(em.into_writer().is_ok());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn discard_pending(&mut self) -> usize {
            let n = self.inner.batch.len();
            self.inner.batch.clear();
            self.inner.oldest_ms = None;
            self.inner.counters.dropped += n as u64;
            n
        }
        /// Milliseconds until `poll` would flush (0 if due now), or `None` when
        /// nothing is pending: how long a superloop may sleep. Also 0 when the
        /// clock went back past the oldest pending event's emit: the `poll`
        /// then starts its wait over, and the next answer is one interval.
        ///
        /// ```
        /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
        /// # let mut out = [0u8; 2048];
        /// # let mut n = 0u8;
        /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
        /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
        /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
        /// let at = |ms| Timestamp::from_unix_millis(ms).ok_or("range");
        /// assert_eq!(em.next_flush_in_ms(at(0)?), None); // nothing pending: sleep until the next event
        /// em.emit(Event::builder().ty("t"))?; // at the epoch
        /// assert_eq!(em.next_flush_in_ms(at(400)?), Some(600)); // default interval: 1000 ms
        /// assert_eq!(em.next_flush_in_ms(at(5_000)?), Some(0));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn next_flush_in_ms(&self, now: Timestamp) -> Option<u64> {
            self.inner.next_flush_in_ms(now)
        }
    };
}

/// Batches events and writes them to `W`; `N` events and `B` bytes at most
/// pending. `N` is at least 1: an emitter for no events does not compile
/// (see [`Batch::new`]).
///
/// ```
/// use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, ossa, FixedClock, RandomIds, Timestamp};
/// let mut out = [0u8; 4096]; // stands in for a UART or socket
/// let ids = RandomIds(|b: &mut [u8; 16]| b.fill(0x42)); // use a real RNG
/// let clock = FixedClock(Timestamp::UNIX_EPOCH);       // use a real clock
/// let mut em: Emitter<'_, _, _, _, 16, 4096> =
///     Emitter::new(Config::new("/agents/thermo"), SliceWriter::new(&mut out), ids, clock);
/// em.emit_ossa(&ossa::TurnStarted { turn: 1, input: None })?;
/// // Superloop: sleep `next_flush_in_ms`, then `poll` with the current time.
/// let later = Timestamp::from_unix(2, 0).ok_or("range")?;
/// assert_eq!(em.poll(later)?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    ///
    /// ```
    /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut out = [0u8; 2048];
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// let config = Config::new("/sensors/7");
    /// let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(config, SliceWriter::new(&mut out), ids, clock);
    /// assert_eq!((em.pending(), em.counters().emitted), (0, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(config: Config<'a>, writer: W, ids: I, clock: C) -> Self {
        Emitter {
            inner: Inner::new(config, ids, clock),
            writer,
        }
    }

    common_methods!();

    /// Emits an OSSA event from its typed payload.
    ///
    /// ```
    /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut out = [0u8; 2048];
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
    /// use ossa_events_core::ossa;
    /// em.emit_ossa(&ossa::ToolCalled { tool: "read_sensor", ..Default::default() })?;
    /// em.flush()?;
    /// let text = std::str::from_utf8(em.writer().written())?;
    /// assert!(text.contains(r#""type":"dev.ossa.tool.called","datacontenttype":"application/json","subject":"read_sensor""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn emit_ossa<P: ossa::Payload>(&mut self, payload: &P) -> Result<(), EmitError<W::Error>> {
        self.emit_ossa_parts(P::TYPE, payload.subject(), payload)
    }

    /// [`emit_ossa`](Self::emit_ossa) past the payload's type: compiled once
    /// per emitter, not once per payload type (flash on firmware).
    #[inline(never)]
    fn emit_ossa_parts(
        &mut self,
        ty: &'static str,
        subject: Option<&str>,
        payload: &dyn JsonPayload,
    ) -> Result<(), EmitError<W::Error>> {
        self.emit(EventBuilder::new().ossa_parts(ty, subject, payload))
    }

    /// Completes `event` (id, `source`, `time` and the OSSA extensions where it
    /// does not set them), validates it, encodes it into the batch, and flushes
    /// when the batch reaches the configured size. A full batch is flushed first
    /// to make room. A flush failure after the event was accepted is counted in
    /// `failed_writes` and does not fail the emit: the events wait for the next flush.
    ///
    /// ```
    /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut out = [0u8; 2048];
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
    /// use ossa_events_core::{emitter::EmitError, Rule};
    /// em.emit(Event::builder().ty("com.example.reading").data_json(r#"{"celsius":21}"#))?;
    /// // Invalid events are refused with the rule they break, and counted.
    /// let err = em.emit(Event::builder().ty("t").subject("")).unwrap_err();
    /// assert!(matches!(err, EmitError::Invalid(ref v) if v.rule == Rule::Empty));
    /// em.flush()?;
    /// // id, source and time were filled in.
    /// let text = std::str::from_utf8(em.writer().written())?;
    /// assert!(text.contains(r#""source":"/sensors/7","type":"com.example.reading","datacontenttype":"application/json","time":"1970-01-01T00:00:00Z""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn emit(&mut self, event: EventBuilder<'_>) -> Result<(), EmitError<W::Error>> {
        let id = self.inner.ids.next_id();
        let now = self.inner.clock.now();
        let mut tp = TraceParentText::new();
        let mut event = event;
        let ev = self.inner.complete(&mut event, id.as_str(), now, &mut tp)?;
        let due = match self.inner.stage(ev, now)? {
            Staged::Stored(due) => due,
            Staged::NoRoom => {
                if let Err(e) = self.flush() {
                    self.inner.counters.dropped += 1;
                    return Err(EmitError::Full(e));
                }
                self.inner.push_again(ev, now)?
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
    /// If `now` is before that event's emit (the clock went back), its wait
    /// starts over at `now`. When the write fails, the events stay pending
    /// and the wait starts over at `now` too: the next try is one flush
    /// interval later ([`next_flush_in_ms`](Self::next_flush_in_ms) says
    /// so), not at every call; [`flush`](Self::flush) still tries at once.
    ///
    /// ```
    /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut out = [0u8; 2048];
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
    /// em.emit(Event::builder().ty("t"))?; // at the epoch; default interval 1000 ms
    /// assert_eq!(em.poll(Timestamp::from_unix(0, 999_000_000).ok_or("range")?)?, 0);
    /// assert_eq!(em.poll(Timestamp::from_unix(1, 0).ok_or("range")?)?, 1);
    /// assert_eq!(em.pending(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&mut self, now: Timestamp) -> Result<usize, DrainError<W::Error>> {
        if let Some(now_ms) = self.inner.due_at(now) {
            let r = self.flush();
            self.inner.failed_at(r.is_err(), now_ms);
            r
        } else {
            Ok(0)
        }
    }

    /// Writes every pending event now and flushes the writer. On failure the
    /// events stay pending and the failure is counted.
    ///
    /// ```
    /// # use ossa_events_core::{emitter::{Config, Emitter}, io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut out = [0u8; 2048];
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// # let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(Config::new("/sensors/7"), SliceWriter::new(&mut out), ids, clock);
    /// assert_eq!(em.flush()?, 0); // nothing pending: nothing written
    /// em.emit(Event::builder().ty("t"))?;
    /// em.emit(Event::builder().ty("t"))?;
    /// assert_eq!(em.flush()?, 2);
    /// assert_eq!(em.counters().delivered, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&mut self) -> Result<usize, DrainError<W::Error>> {
        let r = self.inner.batch.write_to(&mut self.writer);
        self.inner.drained(r)
    }
}

/// [`Emitter`] over an [`embedded_io_async::Write`] (embassy and other async
/// executors): the same batching, counters and guarantees, with `async` I/O.
///
/// Every future it returns may be dropped at any await point (`select`, a
/// timeout) without losing, gluing or over-counting an event: an `emit`
/// dropped before its event went in leaves `emitted` unchanged, and a flush
/// dropped mid-write leaves the batch torn, recovered by the next flush (see
/// [`crate::batch`]).
///
/// ```
/// # fn block_on<F: core::future::Future>(f: F) -> F::Output {
/// #     let mut f = core::pin::pin!(f);
/// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
/// #     loop {
/// #         if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
/// #     }
/// # }
/// # use ossa_events_core::{emitter::{AsyncEmitter, Config}, ossa, Event, FixedClock, RandomIds, Timestamp};
/// # let mut n = 0u8;
/// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
/// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
/// # let mut out = [0u8; 2048];
/// # let uart: &mut [u8] = &mut out;
/// let mut em: AsyncEmitter<'_, _, _, _, 8, 2048> = AsyncEmitter::new(Config::new("/sensors/7"), uart, ids, clock);
/// block_on(async {
///     em.emit_ossa(&ossa::AgentStarted { agent_id: "thermo", ..Default::default() }).await?;
///     em.flush().await?;
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })?;
/// assert_eq!(em.counters().delivered, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    ///
    /// ```
    /// # fn block_on<F: core::future::Future>(f: F) -> F::Output {
    /// #     let mut f = core::pin::pin!(f);
    /// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    /// #     loop {
    /// #         if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #     }
    /// # }
    /// # use ossa_events_core::{emitter::{AsyncEmitter, Config}, ossa, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// # let mut out = [0u8; 2048];
    /// # let uart: &mut [u8] = &mut out;
    /// // `N` = 8 events, `B` = 2048 bytes of batch arena, inline in the emitter.
    /// let em: AsyncEmitter<'_, _, _, _, 8, 2048> = AsyncEmitter::new(Config::new("/sensors/7"), uart, ids, clock);
    /// assert_eq!(em.pending(), 0);
    /// ```
    pub fn new(config: Config<'a>, writer: W, ids: I, clock: C) -> Self {
        AsyncEmitter {
            inner: Inner::new(config, ids, clock),
            writer,
        }
    }

    common_methods!();

    /// Emits an OSSA event from its typed payload (see [`Emitter::emit_ossa`]).
    ///
    /// ```
    /// # fn block_on<F: core::future::Future>(f: F) -> F::Output {
    /// #     let mut f = core::pin::pin!(f);
    /// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    /// #     loop {
    /// #         if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #     }
    /// # }
    /// # use ossa_events_core::{emitter::{AsyncEmitter, Config}, ossa, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// # let mut out = [0u8; 2048];
    /// # let uart: &mut [u8] = &mut out;
    /// # let mut em: AsyncEmitter<'_, _, _, _, 8, 2048> = AsyncEmitter::new(Config::new("/sensors/7"), uart, ids, clock);
    /// block_on(em.emit_ossa(&ossa::TurnStarted { turn: 1, input: None }))?;
    /// assert_eq!(em.pending(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn emit_ossa<P: ossa::Payload>(
        &mut self,
        payload: &P,
    ) -> Result<(), EmitError<W::Error>> {
        self.emit_ossa_parts(P::TYPE, payload.subject(), payload)
            .await
    }

    /// [`emit_ossa`](Self::emit_ossa) past the payload's type: compiled once
    /// per emitter, not once per payload type (flash on firmware).
    async fn emit_ossa_parts(
        &mut self,
        ty: &'static str,
        subject: Option<&str>,
        payload: &dyn JsonPayload,
    ) -> Result<(), EmitError<W::Error>> {
        self.emit(EventBuilder::new().ossa_parts(ty, subject, payload))
            .await
    }

    /// See [`Emitter::emit`].
    ///
    /// ```
    /// # fn block_on<F: core::future::Future>(f: F) -> F::Output {
    /// #     let mut f = core::pin::pin!(f);
    /// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    /// #     loop {
    /// #         if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #     }
    /// # }
    /// # use ossa_events_core::{emitter::{AsyncEmitter, Config}, ossa, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// # let mut out = [0u8; 2048];
    /// # let uart: &mut [u8] = &mut out;
    /// # let mut em: AsyncEmitter<'_, _, _, _, 8, 2048> = AsyncEmitter::new(Config::new("/sensors/7"), uart, ids, clock);
    /// block_on(em.emit(Event::builder().ty("com.example.reading")))?;
    /// assert_eq!(em.counters().emitted, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn emit(&mut self, event: EventBuilder<'_>) -> Result<(), EmitError<W::Error>> {
        let id = self.inner.ids.next_id();
        let now = self.inner.clock.now();
        let mut tp = TraceParentText::new();
        let mut event = event;
        let ev = self.inner.complete(&mut event, id.as_str(), now, &mut tp)?;
        let due = match self.inner.stage(ev, now)? {
            Staged::Stored(due) => due,
            Staged::NoRoom => {
                if let Err(e) = self.flush().await {
                    self.inner.counters.dropped += 1;
                    return Err(EmitError::Full(e));
                }
                self.inner.push_again(ev, now)?
            }
        };
        if due {
            let _ = self.flush().await;
        }
        Ok(())
    }

    /// See [`Emitter::poll`].
    ///
    /// ```
    /// # fn block_on<F: core::future::Future>(f: F) -> F::Output {
    /// #     let mut f = core::pin::pin!(f);
    /// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    /// #     loop {
    /// #         if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #     }
    /// # }
    /// # use ossa_events_core::{emitter::{AsyncEmitter, Config}, ossa, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// # let mut out = [0u8; 2048];
    /// # let uart: &mut [u8] = &mut out;
    /// # let mut em: AsyncEmitter<'_, _, _, _, 8, 2048> = AsyncEmitter::new(Config::new("/sensors/7"), uart, ids, clock);
    /// block_on(em.emit(Event::builder().ty("t")))?; // at the epoch
    /// let now = Timestamp::from_unix(1, 0).ok_or("range")?; // one interval later
    /// assert_eq!(block_on(em.poll(now))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn poll(&mut self, now: Timestamp) -> Result<usize, DrainError<W::Error>> {
        if let Some(now_ms) = self.inner.due_at(now) {
            let r = self.flush().await;
            self.inner.failed_at(r.is_err(), now_ms);
            r
        } else {
            Ok(0)
        }
    }

    /// See [`Emitter::flush`].
    ///
    /// ```
    /// # fn block_on<F: core::future::Future>(f: F) -> F::Output {
    /// #     let mut f = core::pin::pin!(f);
    /// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    /// #     loop {
    /// #         if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #     }
    /// # }
    /// # use ossa_events_core::{emitter::{AsyncEmitter, Config}, ossa, Event, FixedClock, RandomIds, Timestamp};
    /// # let mut n = 0u8;
    /// # let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
    /// # let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// # let mut out = [0u8; 2048];
    /// # let uart: &mut [u8] = &mut out;
    /// # let mut em: AsyncEmitter<'_, _, _, _, 8, 2048> = AsyncEmitter::new(Config::new("/sensors/7"), uart, ids, clock);
    /// block_on(em.emit(Event::builder().ty("t")))?;
    /// assert_eq!(block_on(em.flush())?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn flush(&mut self) -> Result<usize, DrainError<W::Error>> {
        let r = self.inner.batch.write_to_async(&mut self.writer).await;
        self.inner.drained(r)
    }
}
