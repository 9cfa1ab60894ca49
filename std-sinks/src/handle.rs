//! The std emitter: a cheap, cloneable handle that encodes events on the
//! caller's thread and hands them to one background worker per emitter,
//! which delivers them to a [`Sink`] in batches.
//!
//! The worker sends when a batch fills, when the flush interval has passed
//! since the oldest waiting event (whether or not anything else is emitted),
//! on [`Emitter::flush`], and on [`Emitter::shutdown`] or the drop of the
//! last handle. Memory is bounded by the queue capacity (events and bytes);
//! every event that is not delivered is counted in [`Metrics`] and reported
//! to the [`EmitterBuilder::on_undelivered`] callback.
//!
//! ```
//! use ossa_events::{ossa, sink::WriterSink, Emitter};
//! let emitter = Emitter::builder("/agents/researcher")
//!     .sink(WriterSink::new(Vec::<u8>::new()))
//!     .agent_id("researcher")
//!     .batch_size(50)
//!     .build()?;
//! emitter.emit_ossa(&ossa::AgentStarted { agent_id: "researcher", ..Default::default() })?;
//! let report = emitter.flush()?;
//! assert_eq!(report.delivered, 1);
//! # Ok::<(), ossa_events::Error>(())
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ossa_events_core::{
    Attribute, Clock, Data, Event, EventBuilder, MAX_EXTENSIONS, Rule, ValidationError, ossa,
};

use crate::SystemClock;
use crate::errors::Error;
use crate::metrics::{Counters, Metrics};
use crate::retry::{Breaker, BreakerConfig, RetryPolicy};
use crate::sink::{Encoded, Sink, WriterSink};
use crate::worker::{self, Config, How, Refused, Shared};
/// What to do with an event when the queue is full. (A full queue is
/// sent at once, a whole batch or not: the wait is for the sink.)
///
/// ```
/// use std::time::Duration;
/// use ossa_events::sink::{Encoded, Sink};
/// use ossa_events::{Emitter, Error, EventBuilder, Overflow, SendError};
/// /// A collector that takes 200 ms a request.
/// struct Slow;
/// impl Sink for Slow {
///     fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
///         std::thread::sleep(Duration::from_millis(200));
///         Ok(())
///     }
/// }
/// let emitter = Emitter::builder("/agents/a")
///     .sink(Slow)
///     .queue_capacity(1)
///     .overflow(Overflow::Block(Duration::from_millis(20)))
///     .build()?;
/// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
/// // The one place is held until that event's send ends: refused after
/// // waiting 20 ms.
/// let second = emitter.emit(EventBuilder::new().ty("dev.example.tick"));
/// assert!(matches!(second, Err(Error::QueueFull)));
/// assert_eq!(emitter.metrics().dropped, 1);
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse it at once ([`Error::QueueFull`]), counted in `dropped`.
    DropNewest,
    /// Wait up to this long for room, then refuse it as with `DropNewest`.
    /// On the worker thread (an `emit` from a sink, or from
    /// `on_undelivered` there) refused at once: only the worker makes room.
    Block(Duration),
}

/// Why an event was not delivered, as told to the
/// [`on_undelivered`](EmitterBuilder::on_undelivered) callback.
///
/// ```
/// use std::sync::{Arc, Mutex, PoisonError};
/// use ossa_events::{sink::NullSink, Emitter, Error, EventBuilder, Reason};
/// let reasons = Arc::new(Mutex::new(Vec::new()));
/// let log = reasons.clone();
/// let emitter = Emitter::builder("/agents/a")
///     .sink(NullSink::new())
///     .on_undelivered(move |u| log.lock().unwrap_or_else(PoisonError::into_inner).push(u.reason))
///     .build()?;
/// emitter.shutdown()?;
/// let late = emitter.emit(EventBuilder::new().ty("dev.example.tick"));
/// assert!(matches!(late, Err(Error::ShutDown)));
/// assert_eq!(*reasons.lock().unwrap_or_else(PoisonError::into_inner), [Reason::Dropped]);
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The queue was full at emit.
    Dropped,
    /// The event broke a CloudEvents rule, could not be encoded, or (with
    /// [`EmitterBuilder::schemas`]) its data broke its schema or the schema
    /// could not be had.
    Rejected,
    /// The sink refused it for good, or every retry failed; or, with a
    /// spool, it waited only on disk and its record was gone when the
    /// worker read it back (the segment file deleted or damaged while the
    /// emitter ran, or the read failed): then [`Undelivered::id`] is empty
    /// and [`Undelivered::event`] is `None`, as only the record held them,
    /// and the error ([`Error::Io`]) names the spool. Each such event is
    /// still reported once.
    Failed,
    /// It was still waiting when shutdown's time ran out.
    ShutdownTimeout,
}

/// An event that was not delivered.
///
/// Keep what was lost, to replay it later:
///
/// ```
/// use std::sync::{Arc, Mutex, PoisonError};
/// use ossa_events::sink::{Encoded, Sink};
/// use ossa_events::{Emitter, Error, EventBuilder, SendError};
///
/// /// A collector that refuses everything for good.
/// struct Refuses;
/// impl Sink for Refuses {
///     fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
///         Err(SendError::fatal(Error::HttpStatus { status: 400, body: "bad".into() }))
///     }
/// }
/// let dead_letters = Arc::new(Mutex::new(Vec::new()));
/// let keep = dead_letters.clone();
/// let emitter = Emitter::builder("/agents/a")
///     .sink(Refuses)
///     .on_undelivered(move |u| {
///         if let Some(ev) = u.event {
///             keep.lock().unwrap_or_else(PoisonError::into_inner).push(ev.json().to_vec());
///         }
///     })
///     .build()?;
/// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
/// assert_eq!(emitter.flush()?.failed, 1);
/// let lines = dead_letters.lock().unwrap_or_else(PoisonError::into_inner);
/// assert!(lines[0].starts_with(br#"{"specversion":"1.0""#));
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Debug)]
pub struct Undelivered<'a> {
    /// Why.
    pub reason: Reason,
    /// The event's `id` (empty if it never got one, or if it was lost
    /// from the spool's disk before it could be read back: see
    /// [`Reason::Failed`]; or, under [`WhenFull::DropOldest`](crate::spool::WhenFull::DropOldest),
    /// if it was [`Reason::Dropped`] in a segment that could not be read).
    pub id: &'a str,
    /// The encoded event, when it got that far and is still known (to log
    /// or store it).
    pub event: Option<&'a Encoded>,
    /// The error behind it.
    pub error: &'a Error,
}

pub(crate) type Callback = Arc<dyn Fn(&Undelivered<'_>) + Send + Sync>;

/// The outcome of a [`flush`](Emitter::flush) or [`shutdown`](Emitter::shutdown).
///
/// ```
/// use ossa_events::{sink::NullSink, Emitter, EventBuilder, FlushReport};
/// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
/// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
/// let FlushReport { delivered, failed, pending, .. } = emitter.flush()?;
/// // Totals since the start, not just this flush.
/// assert_eq!((delivered, failed, pending), (1, 0, 0));
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FlushReport {
    /// Events delivered since the emitter started.
    pub delivered: u64,
    /// Events given up on since the emitter started (refused for good, or
    /// every retry failed).
    pub failed: u64,
    /// Events still unconfirmed when shutdown's time ran out, since the
    /// emitter started (zero until a shutdown).
    pub shutdown_timeout: u64,
    /// Events still waiting (as [`Metrics::queue_depth`] counts them: in
    /// memory, being sent, or only in the spool).
    pub pending: u64,
}

impl FlushReport {
    /// The report of the counters now, all of one snapshot: `pending` is
    /// [`Metrics::queue_depth`] (events only on disk included), as the
    /// other numbers are those of the same moment (read apart, an event
    /// that settled between the two reads was in both).
    fn now(shared: &Shared) -> Self {
        let m = shared.metrics();
        FlushReport {
            delivered: m.delivered,
            failed: m.failed,
            shutdown_timeout: m.shutdown_timeout,
            pending: m.queue_depth,
        }
    }
}

/// Settings for [`Emitter`]; start with [`Emitter::builder`].
///
/// Every setting has a default (the `DEFAULT_*` constants); a typical
/// service sets the sink, the context and the limits it cares about:
///
/// ```
/// use std::time::Duration;
/// use ossa_events::{sink::WriterSink, Emitter, EmitterBuilder, Overflow};
/// let emitter = Emitter::builder("/agents/researcher")
///     .sink(WriterSink::new(Vec::new()))
///     .agent_id("researcher")
///     .batch_size(200)
///     .flush_interval(Duration::from_millis(500))
///     .queue_capacity(50_000)
///     .overflow(Overflow::Block(Duration::from_millis(10)))
///     .shutdown_timeout(Duration::from_secs(2))
///     .build()?;
/// assert_eq!(EmitterBuilder::DEFAULT_BATCH_SIZE, 100);
/// # drop(emitter);
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[must_use = "call .build() to start the emitter"]
pub struct EmitterBuilder {
    source: String,
    sink: Option<Box<dyn Sink>>,
    batch_size: usize,
    flush_interval: Duration,
    queue_events: usize,
    queue_bytes: usize,
    overflow: Overflow,
    retry: RetryPolicy,
    breaker: BreakerConfig,
    flush_timeout: Duration,
    shutdown_timeout: Duration,
    wait_on_drop: bool,
    spool: Option<crate::spool::SpoolConfig>,
    sequence: bool,
    traceparent: bool,
    #[cfg(feature = "tracing")]
    context_from_tracing: bool,
    dataschema: bool,
    #[cfg(feature = "schemas")]
    schemas: Option<crate::schema::SchemaRegistry>,
    context: OwnedContext,
    callback: Option<Callback>,
}

impl fmt::Debug for EmitterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmitterBuilder")
            .field("source", &self.source)
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("queue_events", &self.queue_events)
            .field("queue_bytes", &self.queue_bytes)
            .field("overflow", &self.overflow)
            .finish_non_exhaustive()
    }
}

/// The OSSA context, owned.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnedContext {
    agent_id: Option<String>,
    interaction_id: Option<String>,
    trace_id: Option<String>,
    span_id: Option<String>,
}

impl OwnedContext {
    pub(crate) fn borrow(&self) -> ossa::Context<'_> {
        ossa::Context {
            agent_id: self.agent_id.as_deref(),
            interaction_id: self.interaction_id.as_deref(),
            trace_id: self.trace_id.as_deref(),
            span_id: self.span_id.as_deref(),
        }
    }
}

impl EmitterBuilder {
    /// Default events per batch.
    pub const DEFAULT_BATCH_SIZE: usize = 100;
    /// Default flush interval.
    pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
    /// Default queue capacity in events.
    pub const DEFAULT_QUEUE_EVENTS: usize = 10_000;
    /// Default queue capacity in bytes.
    pub const DEFAULT_QUEUE_BYTES: usize = 16 * 1024 * 1024;
    /// Default time [`Emitter::flush`] waits.
    pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default time shutdown (and the drop of the last handle) waits for delivery.
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

    fn new(source: String) -> Self {
        EmitterBuilder {
            source,
            sink: None,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            flush_interval: Self::DEFAULT_FLUSH_INTERVAL,
            queue_events: Self::DEFAULT_QUEUE_EVENTS,
            queue_bytes: Self::DEFAULT_QUEUE_BYTES,
            overflow: Overflow::DropNewest,
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            flush_timeout: Self::DEFAULT_FLUSH_TIMEOUT,
            shutdown_timeout: Self::DEFAULT_SHUTDOWN_TIMEOUT,
            wait_on_drop: true,
            spool: None,
            sequence: false,
            traceparent: true,
            #[cfg(feature = "tracing")]
            context_from_tracing: false,
            dataschema: false,
            #[cfg(feature = "schemas")]
            schemas: None,
            context: OwnedContext::default(),
            callback: None,
        }
    }

    /// Where events go. Defaults to JSON Lines on stdout ([`WriterSink::stdout`]).
    ///
    /// ```
    /// use ossa_events::{sink::{NullSink, Sink, WriterSink}, Emitter};
    /// let quiet = std::env::var_os("EVENTS_OFF").is_some();
    /// // One emitter type whatever the sink: box it to choose at run time.
    /// let sink: Box<dyn Sink> = if quiet { Box::new(NullSink::new()) } else { Box::new(WriterSink::new(Vec::new())) };
    /// let emitter = Emitter::builder("/agents/a").sink(sink).build()?;
    /// # drop(emitter);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sink = Some(Box::new(sink));
        self
    }
    /// Events per batch; a full batch is sent at once. Defaults to `100`;
    /// `0` is taken as `1`.
    ///
    /// "At once" is within a millisecond under load: while full batches
    /// come at least every 5 ms the worker is not woken by the `emit()` that
    /// fills one (a syscall on the caller's thread) but looks at the queue
    /// again on its own, about when the next batch should be full and at
    /// most 1 ms later.
    ///
    /// A full batch goes out at once, without waiting for the flush interval:
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .batch_size(2)
    ///     .flush_interval(Duration::from_secs(60))
    ///     .build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// let start = Instant::now();
    /// while emitter.metrics().delivered < 2 && start.elapsed() < Duration::from_secs(1) {
    ///     std::thread::sleep(Duration::from_millis(1));
    /// }
    /// assert_eq!(emitter.metrics().delivered, 2);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }
    /// Longest wait of the oldest queued event before its batch is sent. Defaults to `1 s`.
    ///
    /// A lone event goes out after this long even if nothing else is emitted:
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .flush_interval(Duration::from_millis(20))
    ///     .build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// let start = Instant::now();
    /// while emitter.metrics().delivered < 1 && start.elapsed() < Duration::from_secs(1) {
    ///     std::thread::sleep(Duration::from_millis(5));
    /// }
    /// assert_eq!(emitter.metrics().delivered, 1);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d;
        self
    }
    /// Most events waiting (queued or being sent). Defaults to `10 000`;
    /// `0` is taken as `1`.
    /// A queue at its capacity is sent at once (no batch grows past it).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::sink::{Encoded, Sink};
    /// use ossa_events::{Emitter, Error, EventBuilder, SendError};
    /// /// A collector that takes a second a request.
    /// struct Slow;
    /// impl Sink for Slow {
    ///     fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
    ///         std::thread::sleep(Duration::from_secs(1));
    ///         Ok(())
    ///     }
    /// }
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(Slow)
    ///     .queue_capacity(1)
    ///     .build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// // Queued, or being sent: the one place is held until its send ends.
    /// assert!(matches!(emitter.emit(EventBuilder::new().ty("dev.example.tick")), Err(Error::QueueFull)));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.queue_events = events.max(1);
        self
    }
    /// Most bytes of encoded events waiting. Defaults to `16 MiB`; `0` is
    /// taken as `1` (one event at a time, see below).
    ///
    /// One event is always let in, however large, when the queue is empty;
    /// events a [`spool`](Self::spool) hands back are read while the queue
    /// is below the limit (the last one read may pass it); a queue at its
    /// limit is sent at once, without waiting for a full batch or the flush
    /// interval:
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .queue_bytes(1)
    ///     .flush_interval(Duration::from_secs(60))
    ///     .build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// let report = emitter.flush_within(Duration::from_secs(10))?;
    /// assert_eq!(report.delivered, 1);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes.max(1);
        self
    }
    /// What happens when the queue is full. Defaults to [`Overflow::DropNewest`].
    /// With a [`spool`](Self::spool) a full queue sends new events to the
    /// disk instead; the spool's [`WhenFull`](crate::spool::WhenFull) says
    /// what happens when that is full too (this policy applies only while the
    /// disk fails).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::{sink::NullSink, Emitter, Overflow};
    /// // Backpressure: slow the agent down rather than lose events.
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .overflow(Overflow::Block(Duration::from_millis(100)))
    ///     .build()?;
    /// # drop(emitter);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn overflow(mut self, o: Overflow) -> Self {
        self.overflow = o;
        self
    }
    /// How failed batches are retried. Defaults to [`RetryPolicy::default`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::{sink::NullSink, Emitter, RetryPolicy};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .retry(RetryPolicy::default().max_attempts(5).cap(Duration::from_secs(2)))
    ///     .build()?;
    /// # drop(emitter);
    /// // Or count failures at once, e.g. in a CLI that reports them itself:
    /// let strict = Emitter::builder("/agents/a").sink(NullSink::new()).retry(RetryPolicy::none()).build()?;
    /// # drop(strict);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn retry(mut self, p: RetryPolicy) -> Self {
        self.retry = p;
        self
    }
    /// When to stop sending to a failing sink for a while. Defaults to [`BreakerConfig::default`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::{sink::NullSink, BreakerConfig, Emitter};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .circuit_breaker(BreakerConfig::default().threshold(3).open_for(Duration::from_secs(1)))
    ///     .build()?;
    /// # drop(emitter);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn circuit_breaker(mut self, b: BreakerConfig) -> Self {
        self.breaker = b;
        self
    }
    /// How long [`Emitter::flush`] waits. Defaults to `30 s`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::{sink::NullSink, Emitter};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .flush_timeout(Duration::from_secs(2))
    ///     .build()?;
    /// assert_eq!(emitter.flush()?.pending, 0);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn flush_timeout(mut self, d: Duration) -> Self {
        self.flush_timeout = d;
        self
    }
    /// How long shutdown (or the drop of the last handle) waits for pending
    /// events to be delivered. Defaults to `5 s`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::{sink::NullSink, Emitter};
    /// // A short-lived CLI: never hold the exit up more than a second.
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .shutdown_timeout(Duration::from_secs(1))
    ///     .build()?;
    /// emitter.shutdown()?;
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// Whether dropping the last handle waits for the worker (up to the
    /// shutdown timeout) to deliver what is pending. Defaults to `true`: a
    /// program that ends by dropping its emitter loses nothing.
    ///
    /// Set it to `false` in async code, where a drop must not block the
    /// runtime thread: the drop then only begins the shutdown, the worker
    /// delivers what is pending within the shutdown timeout on its own, and
    /// [`Emitter::shutdown_async`] (awaited before the program ends) is how
    /// to wait for that. Either way every event ends in exactly one place and
    /// is counted and reported, provided the process lives until the worker
    /// is done (the shutdown timeout at most): a program that exits right
    /// after a drop that does not wait ends the worker with it, and what was
    /// pending is neither delivered nor reported.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ossa_events::{sink::HttpSink, Emitter, EventBuilder};
    /// // Nothing listens on port 9: every attempt fails and is retried.
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(HttpSink::builder("http://127.0.0.1:9/events").build()?)
    ///     .shutdown_timeout(Duration::from_secs(5))
    ///     .wait_on_drop(false)
    ///     .build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// let started = Instant::now();
    /// drop(emitter); // the worker gives up on its own within 5 s
    /// assert!(started.elapsed() < Duration::from_millis(100));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_on_drop(mut self, wait: bool) -> Self {
        self.wait_on_drop = wait;
        self
    }

    /// Keeps every accepted event in a disk spool until the sink confirms
    /// it (see [`spool`](crate::spool)): events survive `kill -9`, restarts
    /// and outages longer than the in-memory queue holds, and what an earlier
    /// emitter left in the directory is sent first. Off by default.
    ///
    /// [`build`](Self::build) fails when the directory cannot be created or
    /// another emitter (in any process) has it open.
    ///
    /// ```
    /// use ossa_events::spool::SpoolConfig;
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let dir = std::env::temp_dir().join(format!("spool-builder-{}", std::process::id()));
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .spool(SpoolConfig::new(&dir))
    ///     .build()?;
    /// // One spool, one emitter: a second one is refused.
    /// assert!(Emitter::builder("/agents/b").spool(SpoolConfig::new(&dir)).build().is_err());
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.flush()?;
    /// assert_eq!(emitter.metrics().delivered, 1);
    /// # drop(emitter);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn spool(mut self, config: crate::spool::SpoolConfig) -> Self {
        self.spool = Some(config);
        self
    }

    /// Numbers the events of each `source` with the CloudEvents `sequence`
    /// extension: `1`, `2`, … as 20-digit zero-padded strings (so they sort
    /// as text, as the extension asks), in the order the `emit()` calls took
    /// them, so a receiver can prove it has every event: a gap is an event
    /// that was dropped, failed or timed out at shutdown (and was reported),
    /// a repeat a duplicate delivery (`ossa-events validate --sequence`
    /// checks a stream). An event that sets its own `sequence` keeps it; one
    /// refused as invalid or that could not be encoded takes no number. Off
    /// by default.
    ///
    /// The events of one thread are numbered and sent in the order it
    /// emitted them. Events emitted on several threads at once can reach
    /// the sink out of number order (a number is taken before the event is
    /// encoded and queued, and another thread can queue a later one
    /// meanwhile): a receiver orders by the number, and looks for gaps in
    /// the numbers it has, not in the order they came.
    ///
    /// With a [`spool`](Self::spool) the numbers go on across restarts (they
    /// are kept with the spool); without one each emitter starts at 1 again.
    /// Each distinct `source` keeps its counter for the emitter's life (and
    /// in the spool's ledger, written whole at each sync): number a bounded
    /// set of sources, not one source per request.
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).sequence(true).build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick").source("/agents/b"))?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// assert_eq!(emitter.next_sequence("/agents/a"), 3);
    /// assert_eq!(emitter.next_sequence("/agents/b"), 2);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn sequence(mut self, on: bool) -> Self {
        self.sequence = on;
        self
    }

    /// Whether events get a W3C `traceparent` (the CloudEvents
    /// distributed-tracing extension) written from their `ossatraceid` and
    /// `ossaspanid` when they have none and both are W3C ids (32 and 16
    /// lowercase hex digits). On by default. An event whose own
    /// `traceparent` names another trace or span than its OSSA context is
    /// refused ([`Rule::TraceContextConflict`](crate::Rule::TraceContextConflict)).
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
    ///     .span_id("00f067aa0ba902b7")
    ///     .build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?; // gets 00-4bf9…-00f0…-01
    /// let off = Emitter::builder("/agents/b").sink(NullSink::new()).traceparent(false).build()?;
    /// off.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn traceparent(mut self, on: bool) -> Self {
        self.traceparent = on;
        self
    }
    /// Whether `emit()` gives an event that sets neither `ossatraceid` nor
    /// `ossaspanid` the ids of the `tracing` span it is emitted in (and so a
    /// matching `traceparent`): those [`OssaLayer`](crate::tracing_layer::OssaLayer)
    /// gave the nearest GenAI span around it or, with the `opentelemetry`
    /// feature, those of the OpenTelemetry span `tracing-opentelemetry`
    /// keeps for it ([`current_span_ids`](crate::tracing_layer::current_span_ids)).
    /// Outside any span the configured [`trace_id`](Self::trace_id) and
    /// [`span_id`](Self::span_id) apply as before. Off by default; the
    /// lookup allocates nothing.
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, tracing_layer::OssaLayer, Emitter, EventBuilder};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .context_from_tracing(true)
    ///     .build()?;
    /// let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "researcher");
    ///     // Gets the agent span's ossatraceid, ossaspanid and traceparent.
    ///     agent.in_scope(|| emitter.emit(EventBuilder::new().ty("dev.example.note")))
    /// })?;
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    #[cfg(feature = "tracing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
    pub fn context_from_tracing(mut self, on: bool) -> Self {
        self.context_from_tracing = on;
        self
    }
    /// Sets `dataschema` on events that do not set their own, to the URI of
    /// their type's schema: the built-in OSSA schemas'
    /// (`https://ossa.dev/schemas/events/v1/TYPE.json`, see
    /// [`ossa::schema_uri`]), and with [`schemas`](Self::schemas) any type
    /// whose schema the registry holds now. Events of other types get none.
    /// Off by default.
    ///
    /// ```
    /// use ossa_events::{ossa, sink::{Encoded, Sink}, Emitter, EventBuilder, SendError};
    /// # use std::sync::{Arc, Mutex, PoisonError};
    /// # struct Keep(Arc<Mutex<Vec<String>>>);
    /// # impl Sink for Keep {
    /// #     fn send(&mut self, e: &[Encoded]) -> Result<(), SendError> {
    /// #         let mut v = self.0.lock().unwrap_or_else(PoisonError::into_inner);
    /// #         v.extend(e.iter().map(|e| String::from_utf8_lossy(e.json()).into_owned()));
    /// #         Ok(())
    /// #     }
    /// # }
    /// # let out = Arc::new(Mutex::new(Vec::new()));
    /// let emitter = Emitter::builder("/agents/a").sink(Keep(out.clone())).dataschema(true).build()?;
    /// emitter.emit_ossa(&ossa::ToolCalled { tool: "search", ..Default::default() })?;
    /// emitter.emit(EventBuilder::new().ty("com.example.tick"))?;
    /// emitter.flush()?;
    /// let out = out.lock().unwrap_or_else(PoisonError::into_inner);
    /// assert!(out[0].contains(r#""dataschema":"https://ossa.dev/schemas/events/v1/dev.ossa.tool.called.json""#));
    /// assert!(!out[1].contains("dataschema"));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn dataschema(mut self, on: bool) -> Self {
        self.dataschema = on;
        self
    }

    /// Checks each event's data against its JSON Schema at emit, on the
    /// caller's thread (see [`crate::schema`]): an event whose data breaks
    /// its schema is refused with [`Error::Schema`], counted in `rejected`
    /// and reported to [`on_undelivered`](Self::on_undelivered) with
    /// [`Reason::Rejected`], like an event that breaks a CloudEvents rule.
    /// Off by default.
    ///
    /// `emit` never waits for a schema: one that an HTTP registry is still
    /// fetching (the first events of a type), or that could not be fetched,
    /// refuses the event the same way with reason "schema unavailable" —
    /// never a silent pass. Call
    /// [`SchemaRegistry::prefetch`](crate::schema::SchemaRegistry::prefetch)
    /// before emitting to have the remote schemas at hand. Events of types
    /// with no schema pass unless the registry
    /// [requires one](crate::schema::SchemaRegistryBuilder::require_schema).
    ///
    /// ```
    /// use ossa_events::schema::SchemaRegistry;
    /// use ossa_events::{sink::NullSink, Emitter, Error, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .schemas(SchemaRegistry::builtin())
    ///     .build()?;
    /// let bad = emitter.emit(EventBuilder::new().ty("dev.ossa.tool.called").data_json(r#"{"tol":3}"#));
    /// assert!(matches!(bad, Err(Error::Schema(_))));
    /// assert_eq!(emitter.metrics().rejected, 1);
    /// emitter.emit(EventBuilder::new().ty("dev.ossa.tool.called").data_json(r#"{"tool":"search"}"#))?;
    /// assert_eq!(emitter.flush()?.delivered, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "schemas")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schemas")))]
    pub fn schemas(mut self, registry: crate::schema::SchemaRegistry) -> Self {
        self.schemas = Some(registry);
        self
    }

    /// `ossaagentid` for events that do not set it. Defaults to none.
    ///
    /// ```
    /// use ossa_events::{sink::{Encoded, Sink}, Emitter, EventBuilder, SendError};
    /// # use std::sync::{Arc, Mutex, PoisonError};
    /// # struct Keep(Arc<Mutex<Vec<String>>>);
    /// # impl Sink for Keep {
    /// #     fn send(&mut self, e: &[Encoded]) -> Result<(), SendError> {
    /// #         let mut v = self.0.lock().unwrap_or_else(PoisonError::into_inner);
    /// #         v.extend(e.iter().map(|e| String::from_utf8_lossy(e.json()).into_owned()));
    /// #         Ok(())
    /// #     }
    /// # }
    /// # let out = Arc::new(Mutex::new(Vec::new()));
    /// let emitter = Emitter::builder("/agents/a").sink(Keep(out.clone())).agent_id("researcher").build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// // An event that sets it keeps its own.
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick").ossa_agent_id("critic"))?;
    /// emitter.flush()?;
    /// let out = out.lock().unwrap_or_else(PoisonError::into_inner);
    /// assert!(out[0].contains(r#""ossaagentid":"researcher""#));
    /// assert!(out[1].contains(r#""ossaagentid":"critic""#));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn agent_id(mut self, v: impl Into<String>) -> Self {
        self.context.agent_id = Some(v.into());
        self
    }
    /// `ossainteractionid` for events that do not set it. Defaults to none.
    ///
    /// One emitter per conversation, say:
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .interaction_id("int-42")
    ///     .build()?;
    /// # drop(emitter);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn interaction_id(mut self, v: impl Into<String>) -> Self {
        self.context.interaction_id = Some(v.into());
        self
    }
    /// `ossatraceid` for events that do not set it (nor carry a
    /// `traceparent` of their own, whose trace they keep). Defaults to none.
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
    ///     .build()?;
    /// # drop(emitter);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn trace_id(mut self, v: impl Into<String>) -> Self {
        self.context.trace_id = Some(v.into());
        self
    }
    /// `ossaspanid` for events that do not set it (nor carry a
    /// `traceparent` of their own). Defaults to none.
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
    ///     .span_id("00f067aa0ba902b7")
    ///     .build()?;
    /// # drop(emitter);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn span_id(mut self, v: impl Into<String>) -> Self {
        self.context.span_id = Some(v.into());
        self
    }
    /// Called for every event that is not delivered, once each. Defaults
    /// to none (the counters still count). An event whose `id` is no
    /// longer known (lost from the spool's disk before it was read back,
    /// or dropped from the spool unread) is reported all the same, with an
    /// empty `id` and no `event` (see [`Undelivered::id`]).
    ///
    /// It runs on the thread where the event ended: the emitting thread
    /// (dropped or rejected at emit; for events
    /// [`OssaLayer`](crate::tracing_layer::OssaLayer) put off, whichever
    /// thread builds them), the worker (failed, or out of shutdown time),
    /// or, when the worker is stuck in a sink call past the shutdown
    /// deadline, the thread that waits for the shutdown: a
    /// [`shutdown`](Emitter::shutdown) caller, the drop of the last handle
    /// (an async runtime's thread, when a task drops it), or the helper
    /// thread of [`Emitter::shutdown_async`] or of a drop that does not wait.
    ///
    /// Keep it short and do not emit or flush from it: on the worker thread
    /// that would wait for the worker itself. A [`flush`](Emitter::flush)
    /// called from it on the worker thread, or on a thread that reports a
    /// shutdown's give-up (it would wait for its own reports), answers at
    /// once: [`Error::Timeout`] unless nothing was left to wait for; an
    /// `emit` there under [`Overflow::Block`] into a full queue is refused
    /// at once, as under `DropNewest`. A [`shutdown`](Emitter::shutdown)
    /// called from it on the worker thread begins the shutdown and returns
    /// at once (it cannot wait for the thread it runs on). A callback that
    /// holds an [`Emitter`] keeps the emitter alive (call
    /// [`Emitter::shutdown`]); one that holds a [`WeakEmitter`] does not.
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(NullSink::new())
    ///     .on_undelivered(|u| eprintln!("event {} not delivered ({:?}): {}", u.id, u.reason, u.error))
    ///     .build()?;
    /// assert!(emitter.emit(EventBuilder::new()).is_err()); // no type: rejected, and logged
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn on_undelivered(mut self, f: impl Fn(&Undelivered<'_>) + Send + Sync + 'static) -> Self {
        self.callback = Some(Arc::new(f));
        self
    }

    /// Starts the worker thread and returns the first handle.
    ///
    /// ```
    /// use ossa_events::{Emitter, Error};
    /// let emitter = Emitter::builder("/agents/a").build()?; // JSON Lines on stdout
    /// # drop(emitter);
    /// // The source must be a URI-reference.
    /// assert!(matches!(Emitter::builder("not a uri").build(), Err(Error::Invalid(_))));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn build(self) -> Result<Emitter, Error> {
        if !ossa_events_core::uri::is_uri_reference(&self.source) {
            return Err(Error::Invalid(Box::new(
                ossa_events_core::ValidationError::new(
                    ossa_events_core::Attribute::Source,
                    ossa_events_core::Rule::NotUriReference,
                ),
            )));
        }
        let sink = self.sink.unwrap_or_else(|| Box::new(WriterSink::stdout()));
        // Empty when traceparent is off: each event's copy then stays empty.
        let traceparent_text = if self.traceparent {
            crate::trace::TraceParentText::of_context(&self.context.borrow())
        } else {
            crate::trace::TraceParentText::new()
        };
        let config = Config {
            source: self.source,
            batch_size: self.batch_size,
            flush_interval: self.flush_interval,
            queue_events: self.queue_events,
            queue_bytes: self.queue_bytes,
            overflow: self.overflow,
            retry: self.retry,
            flush_timeout: self.flush_timeout,
            shutdown_timeout: self.shutdown_timeout,
            context: self.context,
            spool: self.spool,
            sequence: self.sequence,
            traceparent: self.traceparent,
            traceparent_text,
            #[cfg(feature = "tracing")]
            context_from_tracing: self.context_from_tracing,
            dataschema: self.dataschema,
            #[cfg(feature = "schemas")]
            schemas: self.schemas,
        };
        let (shared, handle) =
            worker::spawn(sink, config, self.callback, Breaker::new(self.breaker))?;
        Ok(Emitter {
            shared: shared.clone(),
            guard: Arc::new(Guard {
                shared,
                worker: Arc::new(Mutex::new(Some(handle))),
                wait: self.wait_on_drop,
            }),
        })
    }
}

/// Signals shutdown when the last handle goes, and joins the worker unless
/// [`EmitterBuilder::wait_on_drop`] said not to.
struct Guard {
    shared: Arc<Shared>,
    /// Shared with a `shutdown_async` helper thread, which joins the worker
    /// without holding a handle (see [`Emitter::shutdown_async`]).
    worker: Arc<Mutex<Option<JoinHandle<()>>>>,
    wait: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let limit = self.shared.config.shutdown_timeout;
        if self.wait {
            let _ = self.shared.shutdown(&self.worker, limit);
        } else {
            // The worker drains within `limit` and ends on its own.
            self.shared.begin_shutdown(limit);
            // Unless a sink call outlasts the deadline (a sink that does not
            // look at it): then nobody would end the open events, and they
            // went uncounted and unreported for as long as the call lasts,
            // forever for one that never returns. A helper thread keeps the
            // deadline as a waiting drop does, off the dropping thread (an
            // async runtime's). With no deadline there is nothing to keep;
            // with no worker handle, a shutdown call has waited already.
            let handle = self
                .worker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(handle) = handle
                && worker::after(limit).is_some()
            {
                let shared = self.shared.clone();
                // No thread to be had: the worker still ends on its own.
                let _ = std::thread::Builder::new()
                    .name("ossa-events-shutdown".into())
                    .spawn(move || {
                        let _ = shared.shutdown(&Mutex::new(Some(handle)), limit);
                    });
            }
        }
    }
}

/// A handle to an emitter: `Clone + Send + Sync`, cheap to clone. The worker
/// stops, after delivering what is pending (bounded by the shutdown timeout),
/// when [`shutdown`](Self::shutdown) is called or the last handle is dropped.
///
/// ```
/// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
/// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
/// let threads: Vec<_> = (0..4)
///     .map(|_| {
///         let emitter = emitter.clone();
///         std::thread::spawn(move || emitter.emit(EventBuilder::new().ty("dev.example.tick")))
///     })
///     .collect();
/// for t in threads {
///     t.join().expect("thread")?;
/// }
/// assert_eq!(emitter.shutdown()?.delivered, 4);
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Clone)]
pub struct Emitter {
    shared: Arc<Shared>,
    guard: Arc<Guard>,
}

/// A handle to an [`Emitter`] that does not keep it alive: the drop of the
/// last [`Emitter`] still shuts the emitter down (and waits, as
/// [`wait_on_drop`](EmitterBuilder::wait_on_drop) says) while weak handles
/// remain. Made by [`Emitter::downgrade`]; [`upgrade`](Self::upgrade) gives
/// an [`Emitter`] back while one is alive.
///
/// For what belongs to the emitter and needs to reach it: a [`Sink`] or an
/// [`on_undelivered`](EmitterBuilder::on_undelivered) callback that holds an
/// [`Emitter`] keeps its own emitter alive, so dropping every other handle
/// neither shuts it down nor waits for its delivery, and what is pending
/// when the program ends is lost. A weak handle breaks that cycle.
///
/// ```
/// use std::sync::{Arc, OnceLock};
/// use ossa_events::{sink::NullSink, Emitter, EventBuilder, WeakEmitter};
/// let slot: Arc<OnceLock<WeakEmitter>> = Arc::default();
/// let in_callback = slot.clone();
/// let emitter = Emitter::builder("/agents/a")
///     .sink(NullSink::new())
///     .on_undelivered(move |u| {
///         // Reaches the emitter without keeping it alive.
///         if let Some(em) = in_callback.get().and_then(WeakEmitter::upgrade) {
///             eprintln!("{} not delivered; {} delivered so far", u.id, em.metrics().delivered);
///         }
///     })
///     .build()?;
/// let _ = slot.set(emitter.downgrade());
/// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
/// drop(emitter); // the last handle: shuts down and waits, the weak one notwithstanding
/// assert!(slot.get().and_then(WeakEmitter::upgrade).is_none());
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct WeakEmitter {
    guard: std::sync::Weak<Guard>,
}

impl WeakEmitter {
    /// A weak handle to no emitter: [`upgrade`](Self::upgrade) gives `None`
    /// (to hold in a slot until the emitter is built).
    ///
    /// ```
    /// assert!(ossa_events::WeakEmitter::new().upgrade().is_none());
    /// ```
    pub fn new() -> WeakEmitter {
        WeakEmitter::default()
    }

    /// An [`Emitter`] handle, while another one is alive; `None` once the
    /// last was dropped (its shutdown begun). The handle given keeps the
    /// emitter alive in turn: drop it when done. Dropped last (every other
    /// handle gone meanwhile), its drop is the one that shuts down.
    pub fn upgrade(&self) -> Option<Emitter> {
        let guard = self.guard.upgrade()?;
        Some(Emitter {
            shared: guard.shared.clone(),
            guard,
        })
    }
}

impl fmt::Debug for WeakEmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakEmitter")
            .field("alive", &(self.guard.strong_count() > 0))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl Emitter {
    /// Tests: what the emitting threads and the worker share.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("source", &self.shared.config.source)
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// Settings for an emitter of events from `source` (a URI-reference).
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter};
    /// let emitter = Emitter::builder("https://agents.example.com/researcher")
    ///     .sink(NullSink::new())
    ///     .build()?;
    /// # drop(emitter);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn builder(source: impl Into<String>) -> EmitterBuilder {
        EmitterBuilder::new(source.into())
    }

    /// Emits an OSSA event from its typed payload.
    ///
    /// ```
    /// use ossa_events::{ossa, sink::NullSink, Emitter};
    /// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
    /// emitter.emit_ossa(&ossa::ToolCalled { tool: "web_search", call_id: Some("c1"), arguments: None })?;
    /// assert_eq!(emitter.flush()?.delivered, 1);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn emit_ossa<P: ossa::Payload>(&self, payload: &P) -> Result<(), Error> {
        self.emit(EventBuilder::new().ossa(payload))
    }

    /// Completes `event` (a new id, this emitter's `source`, the current
    /// time and the OSSA context, where the event does not set them),
    /// validates and encodes it on this thread, and queues it. Events the
    /// `tracing` layer has put off and nobody has built yet are built and
    /// queued first, on this thread (so an event emitted inside a span
    /// comes after the span's start event). Under [`Overflow::Block`] they
    /// and this event share one limit: when it runs out with one of them
    /// still unqueued, this event is refused ([`Error::QueueFull`], counted
    /// `dropped` and reported) rather than queued ahead of it.
    ///
    /// An invalid event is refused here, on the caller's thread, not later:
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter, Error, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick").subject("job-7").data_json(r#"{"n":1}"#))?;
    /// let bad = emitter.emit(EventBuilder::new().ty("dev.example.tick").id("")); // empty id
    /// assert!(matches!(bad, Err(Error::Invalid(_))));
    /// assert_eq!(emitter.metrics().rejected, 1);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn emit(&self, event: EventBuilder<'_>) -> Result<(), Error> {
        // Events `OssaLayer` put off go first: an event emitted inside a
        // span comes after that span's start event (a span of the thread's
        // that waits to start, starts now).
        #[cfg(feature = "tracing")]
        crate::tracing_layer::start_waiting_spans();
        #[cfg(feature = "tracing")]
        let how = self.shared.drain_deferred_first();
        #[cfg(not(feature = "tracing"))]
        let how = How::EMIT;
        let r = emit_on(&self.shared, event, how);
        self.shared.answered_at_emit(r)
    }

    /// Queues an event exactly as it is (attributes, extensions and data
    /// unchanged): how `ossa-events emit` forwards events it read. Events
    /// the `tracing` layer put off go first, as for [`emit`](Self::emit).
    ///
    /// ```
    /// use ossa_events::{parse::json::parse_event, sink::NullSink, Emitter, Scratch};
    /// let emitter = Emitter::builder("/agents/forwarder").sink(NullSink::new()).build()?;
    /// let line = br#"{"specversion":"1.0","id":"e-1","source":"/agents/a","type":"dev.example.tick"}"#;
    /// let mut buf = [0u8; 256];
    /// let ev = parse_event(line, &mut Scratch::new(&mut buf))?;
    /// emitter.emit_event(&ev)?; // keeps id "e-1" and source "/agents/a"
    /// assert_eq!(emitter.flush()?.delivered, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn emit_event(&self, ev: &Event<'_>) -> Result<(), Error> {
        #[cfg(feature = "tracing")]
        crate::tracing_layer::start_waiting_spans();
        #[cfg(feature = "tracing")]
        let how = self.shared.drain_deferred_first();
        #[cfg(not(feature = "tracing"))]
        let how = How::EMIT;
        check_payload(&self.shared, ev)?;
        let r = encode_and_queue(&self.shared, ev, None, how);
        self.shared.answered_at_emit(r)
    }

    /// What the emitting threads and the worker share (`OssaLayer` keeps it
    /// for a span whose start waits, to put that start off here).
    #[cfg(feature = "tracing")]
    pub(crate) fn shared_arc(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Puts off an event of `OssaLayer`'s: it is built, encoded and queued
    /// later, off the caller's thread (see [`crate::deferred`]).
    #[cfg(feature = "tracing")]
    #[inline]
    pub(crate) fn defer(&self, later: crate::tracing_layer::Later) {
        self.shared.defer(later);
    }

    /// The `sequence` number the next event of `source` gets (see
    /// [`EmitterBuilder::sequence`]); `1` for a source not seen yet.
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).sequence(true).build()?;
    /// assert_eq!(emitter.next_sequence("/agents/a"), 1);
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// assert_eq!(emitter.next_sequence("/agents/a"), 2);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn next_sequence(&self, source: &str) -> u64 {
        self.shared.peek_sequence(source)
    }

    /// Sends everything queued now and waits until it is delivered (or given
    /// up on), at most the flush timeout. On timeout the events stay queued.
    /// Events the `tracing` layer has put off are built and queued first, on
    /// this thread, and waited for too.
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// let report = emitter.flush()?;
    /// assert_eq!((report.delivered, report.pending), (1, 0));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn flush(&self) -> Result<FlushReport, Error> {
        self.flush_within(self.shared.config.flush_timeout)
    }

    /// [`flush`](Self::flush) with its own time limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::sink::{Encoded, Sink};
    /// use ossa_events::{Emitter, Error, EventBuilder, Phase, SendError};
    /// /// Takes 200 ms per send.
    /// struct Slow;
    /// impl Sink for Slow {
    ///     fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
    ///         std::thread::sleep(Duration::from_millis(200));
    ///         Ok(())
    ///     }
    /// }
    /// let emitter = Emitter::builder("/agents/a").sink(Slow).build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// let r = emitter.flush_within(Duration::from_millis(10));
    /// assert!(matches!(r, Err(Error::Timeout(Phase::Flush)))); // still being sent
    /// assert_eq!(emitter.flush_within(Duration::from_secs(1))?.delivered, 1);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn flush_within(&self, limit: Duration) -> Result<FlushReport, Error> {
        flush_report(&self.shared, limit)
    }

    /// Stops the worker after delivering what is pending, within the shutdown
    /// timeout; what is left then is counted in `shutdown_timeout` and reported. Later emits
    /// are refused with [`Error::ShutDown`]. Dropping the last handle does the same.
    /// Every call, from any handle or thread, returns once the worker thread
    /// has ended, its sink dropped (or the time limit passed).
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter, Error, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
    /// let handle = emitter.clone();
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// assert_eq!(emitter.shutdown()?.delivered, 1);
    /// // Every handle sees it.
    /// assert!(matches!(handle.emit(EventBuilder::new().ty("dev.example.tick")), Err(Error::ShutDown)));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn shutdown(&self) -> Result<FlushReport, Error> {
        self.shutdown_within(self.shared.config.shutdown_timeout)
    }

    /// [`shutdown`](Self::shutdown) with its own time limit instead of the
    /// configured shutdown timeout: what a program that was asked to stop
    /// (a signal, a deploy) gives its events. A limit set by an earlier
    /// shutdown call is kept. Returns [`Error::Timeout`] when a sink call
    /// outlasted the limit; every event is counted all the same, and those
    /// still open are reported before the return, but reports the worker
    /// itself was making at that moment (of events it had just ended) may
    /// come after it: a bounded shutdown does not wait for a callback.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// let report = emitter.shutdown_within(Duration::from_secs(2))?;
    /// assert_eq!((report.delivered, report.pending), (1, 0));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn shutdown_within(&self, limit: Duration) -> Result<FlushReport, Error> {
        shutdown_report(&self.shared, &self.guard.worker, limit)
    }

    /// [`flush`](Self::flush) for async code: a future that resolves when
    /// every event emitted before the call has ended (or the flush timeout
    /// passed), without blocking the task's thread. Runtime-agnostic: the
    /// wait runs on a helper thread that wakes the task, one per emitter for
    /// all the flushes pending at once (started by the first, ending when
    /// none is left), not one per call.
    ///
    /// The future holds a handle until it resolves or is dropped, not the
    /// helper thread: a flush given up on (its future dropped, e.g. by a
    /// timeout) leaves the emitter to the other handles, so the drop of the
    /// last of them shuts it down as usual. When the future's handle is the
    /// last one (the caller dropped its own before awaiting), the poll that
    /// resolves it, or its drop, is the drop of the last handle: with
    /// [`wait_on_drop`](EmitterBuilder::wait_on_drop) on (the default) it
    /// waits there, on the task's thread, for the shutdown.
    /// Fails as [`flush`](Self::flush) does, and with [`Error::Io`] when no
    /// helper thread could be started. Made on the worker thread (in a sink,
    /// or in [`on_undelivered`](EmitterBuilder::on_undelivered) there), it
    /// resolves at once, as `flush` answers there.
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// // Any executor; here the simplest one.
    /// let report = futures_lite_block_on(emitter.flush_async())?;
    /// assert_eq!(report.delivered, 1);
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct T(std::thread::Thread);
    /// #     impl Wake for T { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn flush_async(
        &self,
    ) -> impl std::future::Future<Output = Result<FlushReport, Error>> + Send + 'static + use<>
    {
        // The helper thread holds what the handles share, not a handle: the
        // future holds that, until it resolves or is dropped. Held by the
        // helper, a flush given up on (its future dropped) kept the emitter
        // alive until the flush timeout: the caller's drop of its last
        // handle was not the last one, did not shut down or wait, and what
        // was pending was lost when the program ended there.
        let em = self.clone();
        let shared = self.shared.clone();
        // What the flush waits for is marked now, on the caller's thread
        // (without waiting): marked by the helper thread once it ran, it
        // took in events emitted after this call.
        let limit = self.shared.config.flush_timeout;
        // Made where nothing it waits for can end while it waits (the
        // worker, or a give-up's reports), it resolves at once, as `flush`
        // answers there: blocked on, it held the worker for the whole limit.
        let deadline = self.shared.deadline(worker::Waits::ForEnds, limit);
        // `None`: what `OssaLayer` put off could not be queued now (no
        // room, or another thread at it); the helper thread queues it and
        // marks, once for every flush waiting so (a thread each, while the
        // collector was down and the queue full, was hundreds of threads).
        let target = self.shared.flush_mark_now();
        wait_flushed_async(shared, target, deadline).keeping(em)
    }

    /// [`shutdown`](Self::shutdown) for async code: a future that resolves
    /// once the worker has delivered what is pending and stopped (bounded by
    /// the shutdown timeout), without blocking the task's thread. Await it
    /// before an async program ends; see [`EmitterBuilder::wait_on_drop`].
    /// The shutdown begins when this is called, not when the future is first
    /// polled: an `emit` after the call is refused. Dropped before it
    /// resolves, the shutdown goes on; the future holds a handle until then,
    /// the helper thread none (so the drop of the last handle still waits as
    /// `wait_on_drop` says). Fails as [`shutdown`](Self::shutdown) does
    /// ([`Error::Timeout`] when a sink call outlasted the deadline), and with
    /// [`Error::Io`] when no helper thread could be started to wait for it:
    /// the worker then ends the shutdown on its own by the deadline.
    pub fn shutdown_async(
        &self,
    ) -> impl std::future::Future<Output = Result<FlushReport, Error>> + Send + 'static + use<>
    {
        // As in `flush_async`: the future holds the handle, the helper
        // thread only what it needs, so that a shutdown given up on leaves
        // the caller's drop of its last handle the last one (it then waits
        // as `wait_on_drop` says).
        let em = self.clone();
        let shared = self.shared.clone();
        let worker = self.guard.worker.clone();
        let limit = self.shared.config.shutdown_timeout;
        // Begun here, on the caller's thread (it does not wait): an `emit`
        // after this call is refused as after `shutdown`, and a shutdown
        // whose helper thread cannot start still happens (the worker ends
        // it on its own by the deadline).
        self.shared.begin_shutdown(limit);
        let done = crate::completion::run_off_thread("ossa-events-shutdown", move || {
            shutdown_report(&shared, &worker, limit)
        });
        done.keeping(em)
    }

    /// A [`WeakEmitter`]: reaches this emitter without keeping it alive
    /// (for a sink or a callback of its own, see there).
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter};
    /// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
    /// let weak = emitter.downgrade();
    /// assert!(weak.upgrade().is_some());
    /// drop(emitter);
    /// assert!(weak.upgrade().is_none());
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn downgrade(&self) -> WeakEmitter {
        WeakEmitter {
            guard: Arc::downgrade(&self.guard),
        }
    }

    /// The counters now.
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, Emitter, EventBuilder};
    /// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.flush()?;
    /// let m = emitter.metrics();
    /// assert_eq!((m.emitted, m.delivered, m.queue_depth), (1, 1, 0));
    /// assert!(m.bytes > 0);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn metrics(&self) -> Metrics {
        self.shared.metrics()
    }
}

/// [`Emitter::flush_within`] on what the handles share (also run by
/// `flush_async`'s helper thread, which holds no handle).
fn flush_report(shared: &Shared, limit: Duration) -> Result<FlushReport, Error> {
    shared.flush_within(limit)?;
    Ok(FlushReport::now(shared))
}

/// The [`Emitter::flush_async`] calls of an emitter waiting for their
/// events (a mark each, or none yet, and a deadline). One helper thread
/// waits for all of
/// them, started by the first and ending when none is left: a server whose
/// tasks each awaited a flush while the collector was down had a thread
/// parked per task, for up to the flush timeout.
#[derive(Default)]
pub(crate) struct FlushWaiters {
    waiting: Vec<FlushWaiter>,
    /// A helper thread serves `waiting`.
    helper: bool,
    /// The mark and deadline the helper waits for now: a flush listed with
    /// a lower mark or an earlier deadline (two calls racing, the one that
    /// marked first listed last) has it look again.
    serving: Option<(u64, Option<std::time::Instant>)>,
}

struct FlushWaiter {
    /// `None` until what `OssaLayer` put off before the call is queued (by
    /// the helper thread) and the flush marked.
    target: Option<u64>,
    deadline: Option<std::time::Instant>,
    done: crate::completion::Resolver<FlushReport>,
}

fn lock_waiters(shared: &Shared) -> std::sync::MutexGuard<'_, FlushWaiters> {
    // Nothing is left half changed under this lock: go on after a panic.
    shared
        .flush_waiters
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A future that resolves once every event below mark `target` has ended
/// and been reported (to the report then), or at `deadline` (to
/// [`Error::Timeout`]), waited for by the emitter's flush helper thread.
/// With no mark, the helper queues what was put off and marks first.
fn wait_flushed_async(
    shared: Arc<Shared>,
    target: Option<u64>,
    deadline: Option<std::time::Instant>,
) -> crate::completion::Completion<Result<FlushReport, Error>> {
    let (done, resolver) = crate::completion::pending();
    let mut w = lock_waiters(&shared);
    w.waiting.push(FlushWaiter {
        target,
        deadline,
        done: resolver,
    });
    if w.helper {
        let sooner = w.serving.is_some_and(|(t, d)| {
            target.is_none_or(|target| target < t)
                || deadline.is_some_and(|mine| d.is_none_or(|d| mine < d))
        });
        drop(w);
        if sooner {
            shared.recheck_flushes();
        }
    } else {
        let theirs = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("ossa-events-flush".into())
            .spawn(move || serve_flushes(&theirs));
        match spawned {
            Ok(_) => w.helper = true,
            // With no helper, the list held no other waiter.
            Err(e) => {
                let mine = w.waiting.pop();
                drop(w);
                if let Some(mine) = mine {
                    mine.done.resolve(Err(Error::Io(e)));
                }
            }
        }
    }
    done
}

/// The flush helper thread: waits for the lowest mark of the waiting
/// flushes (or the earliest deadline), resolves each flush whose mark is
/// reached or whose deadline passed, and goes on until none is waiting.
fn serve_flushes(shared: &Shared) {
    /// On a panic (none is known): the waiting flushes fail, as each
    /// `Resolver` dropped unresolved does, and the next flush starts a
    /// helper again.
    struct Gone<'a>(&'a Shared);
    impl Drop for Gone<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let mut w = lock_waiters(self.0);
                w.helper = false;
                w.serving = None;
                let failed = std::mem::take(&mut w.waiting);
                drop(w);
                drop(failed);
            }
        }
    }
    let _gone = Gone(shared);
    loop {
        mark_unmarked(shared);
        let (target, deadline) = {
            let mut w = lock_waiters(shared);
            if w.waiting.is_empty() {
                w.helper = false;
                w.serving = None;
                return;
            }
            // Listed while this thread marked: marked in the next round.
            let Some(target) = w.waiting.iter().filter_map(|x| x.target).min() else {
                continue;
            };
            // `None`, no deadline, is the latest.
            let deadline = w
                .waiting
                .iter()
                .map(|x| x.deadline)
                .reduce(|a, b| match (a, b) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                })
                .flatten();
            w.serving = Some((target, deadline));
            (target, deadline)
        };
        let level = shared.wait_flushed_until(target, deadline);
        let now = std::time::Instant::now();
        let reached = |x: &FlushWaiter| x.target.is_some_and(|t| level.is_some_and(|l| t <= l));
        let due: Vec<FlushWaiter> = {
            let mut w = lock_waiters(shared);
            let (due, left) = std::mem::take(&mut w.waiting)
                .into_iter()
                .partition(|x| reached(x) || x.deadline.is_some_and(|d| now >= d));
            w.waiting = left;
            due
        };
        // Resolved outside the lock: a waker is the task's code.
        for x in due {
            let ok = reached(&x);
            x.done.resolve(if ok {
                Ok(FlushReport::now(shared))
            } else {
                Err(Error::Timeout(crate::errors::Phase::Flush))
            });
        }
    }
}

/// For the flushes listed without a mark (see [`Emitter::flush_async`]):
/// queues what `OssaLayer` put off, waiting for room no later than the
/// earliest of their deadlines, and marks them all at once; or, when that
/// could not be queued in time, fails those whose deadline passed as
/// [`Emitter::flush`] fails (the others wait for the next round).
fn mark_unmarked(shared: &Shared) {
    let (n, deadline) = {
        let mut w = lock_waiters(shared);
        let unmarked = w.waiting.iter().filter(|x| x.target.is_none());
        let n = unmarked.clone().count();
        let deadline = unmarked.filter_map(|x| x.deadline).min();
        // Not waiting for a mark while draining: a flush listed meanwhile
        // is seen in the next round.
        w.serving = None;
        (n, deadline)
    };
    if n == 0 {
        return;
    }
    let mark = shared.flush_mark_by(deadline);
    // Out of time at the earliest deadline: only the flushes whose own
    // deadline has passed fail (as each would on a thread of its own); the
    // others are left unmarked, queued for in the next round until the
    // next deadline. Given up on sooner (the drain waits for room until
    // the deadline, so none is known), all fail, as a flush does, rather
    // than the helper going round again at once.
    let now = std::time::Instant::now();
    let ran_out = deadline.is_some_and(|d| now >= d);
    let expired = |x: &FlushWaiter| !ran_out || x.deadline.is_some_and(|d| now >= d);
    // Waiters are listed at the end and removed in order: the first `n`
    // unmarked ones are those listed before the drain began.
    let failed: Vec<FlushWaiter> = {
        let mut w = lock_waiters(shared);
        let mut seen = 0;
        let (failed, left) = std::mem::take(&mut w.waiting)
            .into_iter()
            .partition::<Vec<_>, _>(|x| {
                let mine = x.target.is_none() && seen < n;
                seen += usize::from(x.target.is_none());
                mine && mark.is_none() && expired(x)
            });
        w.waiting = left;
        if let Some(mark) = mark {
            for x in w.waiting.iter_mut().filter(|x| x.target.is_none()).take(n) {
                x.target = Some(mark);
            }
        }
        failed
    };
    for x in failed {
        x.done
            .resolve(Err(Error::Timeout(crate::errors::Phase::Flush)));
    }
}

/// [`Emitter::shutdown_within`] on what the handles share (also run by
/// `shutdown_async`'s helper thread, which holds no handle).
fn shutdown_report(
    shared: &Shared,
    worker: &Mutex<Option<JoinHandle<()>>>,
    limit: Duration,
) -> Result<FlushReport, Error> {
    shared.shutdown(worker, limit)?;
    Ok(FlushReport::now(shared))
}

/// The emit pipeline, on whichever thread calls it (a caller's `emit`, or
/// whoever builds the events `OssaLayer` put off): completes `event` (a new
/// id, the emitter's `source`, the current time and the OSSA context, where
/// the event does not set them), validates and encodes it, and queues it
/// as `how` says. A refusal is counted and reported here.
pub(crate) fn emit_on(sh: &Shared, event: EventBuilder<'_>, how: How) -> Result<(), Refused> {
    let id = crate::new_id();
    let cfg = &sh.config;
    let ctx = cfg.context.borrow();
    // The current `tracing` span's ids, for an event that names no span
    // of its own (before the configured context, which they override).
    #[cfg(feature = "tracing")]
    let span_ids = (cfg.context_from_tracing
        && !event.has_extension(ossa::EXT_TRACE_ID)
        && !event.has_extension(ossa::EXT_SPAN_ID))
    .then(crate::span_ids::current_span_ids)
    .flatten();
    // The context's own traceparent, reused when the event has its ids.
    let mut tp = cfg.traceparent_text.clone();
    let uri = dataschema_for(cfg, &event);
    // Completed in place: each by-value setter would copy the builder
    // (~900 bytes; nine copies were 15 % of `emit()`).
    let mut b = event;
    #[cfg(feature = "tracing")]
    if let Some(ids) = &span_ids {
        // Neither is set (checked above): filling is setting.
        b.fill_ossa_context(&ossa::Context {
            trace_id: Some(ids.trace_id()),
            span_id: Some(ids.span_id()),
            ..ossa::Context::default()
        });
    }
    b.fill_defaults(id.as_str(), &cfg.source, SystemClock.now());
    b.fill_ossa_context(&ctx);
    if cfg.traceparent {
        b.fill_traceparent(&mut tp);
    }
    if let Some(u) = &uri {
        b.set_dataschema(u.as_str());
    }
    // Reported under the event's own id when it set one.
    let own_id = b.id_set();
    let numbered = cfg.sequence && !b.has_extension(SEQUENCE);
    let again = numbered.then(|| b.clone());

    // `build_ref`: encoded from the builder, not copied out of it.
    match b.build_ref() {
        // Numbered only once known valid: a refused event leaves no gap.
        Ok(ev) => match check_payload(sh, ev).map(|()| again) {
            Err(e) => Err(Refused::Error(e)),
            // Every extension slot is taken: no room for the number. Refused
            // before it takes one, so it leaves no gap.
            Ok(Some(_)) if ev.extensions().len() >= MAX_EXTENSIONS => {
                let e = ValidationError::new(Attribute::named(SEQUENCE), Rule::TooManyExtensions);
                Err(reject(sh, ev.id(), Error::Invalid(Box::new(e))))
            }
            Ok(Some(b)) => {
                // A `T: Serialize` payload is written only as the event is
                // encoded, and can fail there: tried before the number is
                // taken, so that an event rejected for it leaves no gap either.
                if matches!(ev.data(), Some(Data::Serialize(_)))
                    && let Err(err) = Encoded::new_pooled(ev, sh.form)
                {
                    return Err(reject(sh, ev.id(), err));
                }
                let n = sh.next_sequence(ev.source());
                let text = format!("{n:020}");
                match b.extension_str(SEQUENCE, &text).build() {
                    Ok(ev) => encode_and_queue(sh, &ev, Some(n), how),
                    Err(e) => Err(reject(sh, ev.id(), Error::Invalid(Box::new(e)))),
                }
            }
            Ok(None) => encode_and_queue(sh, ev, None, how),
        },
        Err(e) => {
            Counters::add(&sh.counters.rejected, 1);
            let err = Error::Invalid(Box::new(e));
            let rid = own_id.unwrap_or(id.as_str());
            sh.report(Reason::Rejected, rid, None, &err);
            Err(Refused::Error(err))
        }
    }
}

/// Counts `err`, the refusal of event `id` at emit, as rejected and
/// reports it.
fn reject(sh: &Shared, id: &str, err: Error) -> Refused {
    Counters::add(&sh.counters.rejected, 1);
    sh.report(Reason::Rejected, id, None, &err);
    Refused::Error(err)
}

/// The `dataschema` to add to `b` (see [`EmitterBuilder::dataschema`]).
fn dataschema_for(cfg: &Config, b: &EventBuilder<'_>) -> Option<SchemaUri> {
    if !cfg.dataschema || b.dataschema_set().is_some() {
        return None;
    }
    let ty = b.ty_set()?;
    #[cfg(feature = "schemas")]
    if let Some(r) = &cfg.schemas {
        return r.schema_uri(ty).map(SchemaUri::Shared);
    }
    ossa::schema_uri(ty).map(SchemaUri::Static)
}

/// Checks `ev`'s data against its schema when the emitter was built with
/// [`EmitterBuilder::schemas`]; a refusal is counted and reported.
#[cfg(feature = "schemas")]
fn check_payload(sh: &Shared, ev: &Event<'_>) -> Result<(), Error> {
    let Some(r) = &sh.config.schemas else {
        return Ok(());
    };
    match r.check(ev) {
        Ok(_) => Ok(()),
        Err(e) => {
            Counters::add(&sh.counters.rejected, 1);
            let err = Error::Schema(Box::new(e));
            sh.report(Reason::Rejected, ev.id(), None, &err);
            Err(err)
        }
    }
}

#[cfg(not(feature = "schemas"))]
#[inline]
fn check_payload(_: &Shared, _: &Event<'_>) -> Result<(), Error> {
    Ok(())
}

/// Encodes and queues `ev`; `number` is the `sequence` this emitter gave it
/// (the spool keeps the highest it wrote, per source).
fn encode_and_queue(
    sh: &Shared,
    ev: &Event<'_>,
    number: Option<u64>,
    how: How,
) -> Result<(), Refused> {
    let encoded = match Encoded::new_pooled(ev, sh.form) {
        Ok(e) => e,
        Err(err) => {
            Counters::add(&sh.counters.rejected, 1);
            sh.report(Reason::Rejected, ev.id(), None, &err);
            return Err(Refused::Error(err));
        }
    };
    sh.enqueue(encoded, number.map(|n| (ev.source(), n)), how)
}

/// A `dataschema` URI the emitter adds (see [`EmitterBuilder::dataschema`]).
enum SchemaUri {
    Static(&'static str),
    #[cfg(feature = "schemas")]
    Shared(Arc<str>),
}

impl SchemaUri {
    fn as_str(&self) -> &str {
        match self {
            SchemaUri::Static(s) => s,
            #[cfg(feature = "schemas")]
            SchemaUri::Shared(s) => s,
        }
    }
}

/// The CloudEvents `sequence` extension (see [`EmitterBuilder::sequence`]).
pub(crate) const SEQUENCE: &str = "sequence";

#[cfg(test)]
mod tests {
    use std::sync::PoisonError;

    use super::*;
    use crate::sink::NullSink;

    /// An event with its own W3C `traceparent` is sent with it, not
    /// refused for the emitter's trace and span ids (`TraceContextConflict`
    /// before); events without one get the emitter's ids and the
    /// `traceparent` made of them.
    #[test]
    fn an_event_with_its_own_traceparent_keeps_it_beside_the_emitters_trace() {
        use crate::SendError;
        use crate::sink::{Encoded, Sink};
        struct Keep(Arc<Mutex<Vec<String>>>);
        impl Sink for Keep {
            fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
                let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                kept.extend(
                    events
                        .iter()
                        .map(|e| String::from_utf8_lossy(e.json()).into_owned()),
                );
                Ok(())
            }
        }
        const THEIRS: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let kept = Arc::new(Mutex::new(Vec::new()));
        let emitter = Emitter::builder("/agents/a")
            .sink(Keep(kept.clone()))
            .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .span_id("00f067aa0ba902b7")
            .build()
            .unwrap();
        emitter
            .emit(EventBuilder::new().ty("t").traceparent(THEIRS))
            .unwrap();
        emitter.emit(EventBuilder::new().ty("t")).unwrap();
        emitter.shutdown().unwrap();
        let m = emitter.metrics();
        assert_eq!((m.delivered, m.rejected), (2, 0), "{m:?}");
        let kept = kept.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let v: Vec<serde_json::Value> = kept
            .iter()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect();
        assert_eq!(v[0]["traceparent"], THEIRS);
        assert!(v[0].get("ossatraceid").is_none(), "{}", kept[0]);
        assert_eq!(v[1]["ossatraceid"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            v[1]["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    /// An event with every extension slot taken has no room for the
    /// `sequence` number: it is rejected, counted and reported once, like
    /// any invalid event, and takes no number.
    #[test]
    fn an_event_with_no_room_for_its_sequence_is_rejected_counted_and_reported() {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let log = reports.clone();
        let emitter = Emitter::builder("/agents/a")
            .sink(NullSink::new())
            .sequence(true)
            .traceparent(false)
            .on_undelivered(move |u| {
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((u.id.to_owned(), u.reason));
            })
            .build()
            .unwrap();
        let names: Vec<String> = (0..ossa_events_core::MAX_EXTENSIONS)
            .map(|i| format!("x{i}"))
            .collect();
        let mut b = EventBuilder::new().ty("dev.example.tick").id("full");
        for n in &names {
            b = b.extension_str(n, "v");
        }
        assert!(matches!(emitter.emit(b), Err(Error::Invalid(_))));
        let m = emitter.metrics();
        assert_eq!((m.emitted, m.rejected), (0, 1), "{m:?}");
        assert_eq!(
            *reports.lock().unwrap_or_else(PoisonError::into_inner),
            [("full".to_owned(), Reason::Rejected)]
        );
        // No number was taken: the next event gets 1, no gap.
        assert_eq!(emitter.next_sequence("/agents/a"), 1);
    }

    /// An event whose `T: Serialize` payload fails to encode is rejected
    /// (counted and reported `Rejected`), like one that breaks a rule: it
    /// takes no `sequence` number, so the delivered numbers have no gap a
    /// receiver would take for a lost event.
    #[test]
    fn an_event_whose_payload_cannot_be_encoded_takes_no_sequence_number() {
        use std::collections::HashMap;
        let emitter = Emitter::builder("/agents/a")
            .sink(NullSink::new())
            .sequence(true)
            .build()
            .unwrap();
        // JSON object keys must be strings: a tuple key cannot be written.
        let bad: HashMap<(u8, u8), u32> = HashMap::from([((1, 2), 3)]);
        let r = emitter.emit(
            EventBuilder::new()
                .ty("dev.example.tick")
                .data_serialize(&bad),
        );
        assert!(matches!(r, Err(Error::Encode(_))), "{r:?}");
        assert_eq!(emitter.metrics().rejected, 1);
        assert_eq!(
            emitter.next_sequence("/agents/a"),
            1,
            "a rejected event took a number"
        );
    }

    /// Events numbered with `sequence` on several threads at once get each
    /// number once, with no gap (they may reach the sink out of order: see
    /// [`EmitterBuilder::sequence`]).
    #[test]
    fn sequence_numbers_from_many_threads_have_no_gap_and_no_repeat() {
        use crate::SendError;
        use crate::sink::{Encoded, Sink};
        struct Keep(Arc<Mutex<Vec<u64>>>);
        impl Sink for Keep {
            fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
                let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                for e in events {
                    let v: serde_json::Value = serde_json::from_slice(e.json()).unwrap();
                    kept.push(v["sequence"].as_str().unwrap().parse().unwrap());
                }
                Ok(())
            }
        }
        let kept = Arc::new(Mutex::new(Vec::new()));
        let emitter = Emitter::builder("/agents/a")
            .sink(Keep(kept.clone()))
            .sequence(true)
            .queue_capacity(1_000_000)
            .build()
            .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let em = emitter.clone();
                std::thread::spawn(move || {
                    for _ in 0..5_000 {
                        em.emit(EventBuilder::new().ty("t")).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        emitter.shutdown().unwrap();
        let kept = kept.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut sorted = kept.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().copied().eq(1..=20_000), "a gap or a repeat");
    }
}

#[cfg(test)]
mod flush_waiters_tests {
    use std::sync::{Condvar, PoisonError};
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::SendError;
    use crate::sink::{Encoded, Sink};

    /// Delivers the first send (none when made with `true`); holds every
    /// later one until opened.
    struct SecondHeld(Arc<(Mutex<bool>, Condvar)>, bool);
    impl Sink for SecondHeld {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            if std::mem::replace(&mut self.1, true) {
                let (lock, cv) = &*self.0;
                let mut open = lock.lock().unwrap_or_else(PoisonError::into_inner);
                while !*open {
                    open = cv.wait(open).unwrap_or_else(PoisonError::into_inner);
                }
            }
            Ok(())
        }
    }

    /// Polls `fut` every 10 ms until it resolves, for at most `within`.
    fn poll_for<F: Future>(fut: F, within: Duration) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        let end = std::time::Instant::now() + within;
        loop {
            if let Poll::Ready(r) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                return Some(r);
            }
            if std::time::Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Two `flush_async` calls racing: the one that marked first (the
    /// lower mark) is listed second, while the helper already waits for
    /// the other's mark, which is held. The first's events are delivered:
    /// its future resolves now, not when the other's mark is reached or
    /// at the deadline, a flush timeout later.
    #[test]
    fn a_flush_listed_after_a_higher_mark_is_resolved_when_its_own_is_reached() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let em = Emitter::builder("/agents/a")
            .sink(SecondHeld(gate.clone(), false))
            .batch_size(1)
            .flush_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        em.emit(EventBuilder::new().ty("t")).unwrap();
        em.flush().unwrap();
        let low = em.shared.flush_mark_now();
        em.emit(EventBuilder::new().ty("t")).unwrap();
        let high = em.shared.flush_mark_now();
        assert!(low.is_some() && low < high);
        let deadline = worker::after(Duration::from_secs(30));
        let _held = wait_flushed_async(em.shared.clone(), high, deadline);
        // The helper waits for `high` now.
        std::thread::sleep(Duration::from_millis(100));
        let mine = wait_flushed_async(em.shared.clone(), low, deadline);
        let done = poll_for(mine, Duration::from_secs(3));
        *gate.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        gate.1.notify_all();
        let report = done
            .expect("the flush of delivered events is resolved")
            .unwrap();
        assert_eq!(report.delivered, 1, "{report:?}");
    }

    /// The same race for deadlines: a flush listed with an earlier deadline
    /// than the helper waits until fails at its own deadline, not at the
    /// other's.
    #[test]
    fn a_flush_listed_after_a_later_deadline_times_out_at_its_own() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let em = Emitter::builder("/agents/a")
            .sink(SecondHeld(gate.clone(), true))
            .flush_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        em.emit(EventBuilder::new().ty("t")).unwrap();
        let target = em.shared.flush_mark_now();
        assert!(target.is_some());
        let _late = wait_flushed_async(
            em.shared.clone(),
            target,
            worker::after(Duration::from_secs(30)),
        );
        std::thread::sleep(Duration::from_millis(100));
        let mine = wait_flushed_async(
            em.shared.clone(),
            target,
            worker::after(Duration::from_millis(200)),
        );
        let done = poll_for(mine, Duration::from_secs(3));
        *gate.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        gate.1.notify_all();
        let err = done.expect("resolved at its own deadline").unwrap_err();
        assert!(
            matches!(err, Error::Timeout(crate::errors::Phase::Flush)),
            "{err:?}"
        );
    }
}
