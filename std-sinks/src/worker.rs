//! The emitter's background worker: takes batches from the queue, hands
//! them to the [`Sink`], settles every event exactly once, retries what may
//! succeed later and gives up on the rest.
//!
//! # The life of an event
//!
//! ```text
//!  emit() ──► rejected (invalid)      ─┐
//!     │  └──► dropped (queue full)     │  ends counted at emit
//!     ▼                                ─┘
//!   queued ──take_batch──► in flight ──send/settle──► delivered
//!     │                      │   ▲                 ├─► failed (Retry::No, or retries spent)
//!     │                      │   └──wait_retry─────┘   (Retry::Yes: only these go again)
//!     │                      ▼
//!     └──────────────────► shutdown-timeout (deadline passed: give_up_all)
//! ```
//!
//! Every end goes through [`Shared::settle`] (or [`Shared::give_up_all`],
//! which uses the same per-event `open` flags under the same lock): an event
//! is closed once, counted once in [`Metrics`], and reported
//! once to `on_undelivered`, after the lock is released.
//!
//! # Who waits on what
//!
//! ```text
//!  condvar  waited on by                    notified when
//!  wake     the worker (take_batch,         an event is queued into an empty queue or
//!           wait_retry)                     fills a batch, flush() asks, shutdown begins
//!  space    emit() under Overflow::Block    events settle, shutdown begins, the worker ends
//!  done     flush(), shutdown()             events settle, the worker ends
//! ```
//!
//! The shutdown state (`shutdown`, `deadline`) is read afresh after every
//! sink call and every wait; a sink sees the deadline live through
//! [`SendDeadline`]. When the worker is stuck in a sink past the deadline,
//! [`Shared::shutdown`] gives up on everything still open itself,
//! [`SHUTDOWN_GRACE`] after the deadline; the worker's later settles then
//! find those events closed and count nothing twice.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::errors::{Error, Phase, Retry, SendError};
use crate::handle::{Callback, Overflow, OwnedContext, Reason, Undelivered};
use crate::metrics::{Counters, Metrics};
use crate::queue::{Queue, Run};
use crate::retry::{Breaker, RetryPolicy};
use crate::sink::{Encoded, LiveDeadline, SendDeadline, Sink, Ticket};
use crate::spool::{Dropped, Spool, SpoolConfig, SyncPolicy, WhenFull};
use crate::thread_mark::ThreadMark;

/// How long past its deadline [`Shared::shutdown`] waits for a worker that
/// is stuck in a sink before it gives up on the open events itself.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_millis(50);

/// The emitter's settings, fixed at build.
pub(crate) struct Config {
    pub(crate) source: String,
    pub(crate) batch_size: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) queue_events: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) overflow: Overflow,
    pub(crate) retry: RetryPolicy,
    pub(crate) flush_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) context: OwnedContext,
    pub(crate) spool: Option<SpoolConfig>,
    pub(crate) sequence: bool,
    /// Write `traceparent` from the OSSA context.
    pub(crate) traceparent: bool,
    /// The `traceparent` of `context`'s own ids (empty without both, when
    /// they are not W3C ids, or when `traceparent` is off): each event's starts as a copy, so an event
    /// with these ids gets it without the ids being checked again.
    pub(crate) traceparent_text: crate::trace::TraceParentText,
    /// Take `ossatraceid`/`ossaspanid` from the current `tracing` span.
    #[cfg(feature = "tracing")]
    pub(crate) context_from_tracing: bool,
    /// Add `dataschema` to events that set none.
    pub(crate) dataschema: bool,
    /// Check each event's data against its schema.
    #[cfg(feature = "schemas")]
    pub(crate) schemas: Option<crate::schema::SchemaRegistry>,
}

/// A batch the worker took from the queue and has not settled in full.
struct Flight {
    id: u64,
    /// `seq` of its first event; the others follow without gaps.
    first_seq: u64,
    events: Arc<Vec<Encoded>>,
    /// Their spool sequence numbers (where spooled).
    spooled: Vec<Option<u64>>,
    /// Which events are not settled yet.
    open: Vec<bool>,
    open_count: usize,
}

#[derive(Default)]
struct State {
    queue: Queue,
    /// Batches in flight, in the order they were taken (in `seq` order but
    /// after a spool write failed while events waited on disk: see
    /// `low_water`).
    flights: VecDeque<Flight>,
    next_flight: u64,
    /// Open events in `flights`.
    in_flight: usize,
    /// Bytes of queued and open in-flight events.
    bytes: usize,
    /// When the oldest queued event arrived.
    oldest: Option<Instant>,
    /// The `seq` the next queued event gets (= events ever queued).
    next_seq: u64,
    /// Events accepted by `emit` (`Metrics::emitted`): counted here, under
    /// the lock each push holds anyway, and not in an atomic counter, whose
    /// locked add on a line of its own cost every `emit()` one more cache
    /// line passed between the cores.
    emitted: u64,
    /// A flush waits for every event below this `seq` to settle.
    flush_target: u64,
    shutdown: bool,
    /// When shutdown must be over (`None`: no limit).
    deadline: Option<Instant>,
    worker_done: bool,
    /// The worker thread is at its end: past `worker_done`, its sink is
    /// dropped too (a Kafka producer's drop waits for what librdkafka holds).
    worker_ended: bool,
    /// Settles whose `on_undelivered` reports are being made: a flush
    /// returns only after the reports of what it waited for.
    reporting: usize,
    /// The disk spool, if the emitter has one.
    spool: Option<Spool>,
    /// Events only in the spool, not in `queue`: replayed ones not read back
    /// yet, and new ones that came while others waited on disk. They have
    /// the queue `seq`s from `spill_seq` on, `spilled` of them, but for
    /// those in `spill_skips`.
    spilled: u64,
    spill_seq: u64,
    /// Events of spool segments that could not be read while running:
    /// passed over (not in `spilled`), left on disk for the next open
    /// (counted `spooled` when the worker stops), or dropped with their
    /// segment by [`WhenFull::DropOldest`].
    held_unreadable: u64,
    /// `seq`s among those of the events only on disk that went to events
    /// kept in memory instead (their spool write failed), oldest first:
    /// reading back passes over them, so that no two events share a `seq`.
    spill_skips: VecDeque<u64>,
    /// The worker waits in `take_batch` for events: only then does a new
    /// event need to wake it (a wake is a syscall on the emitting thread;
    /// a busy worker looks at the queue again before it waits).
    worker_idle: bool,
    /// Threads waiting on `Shared::space` and on `Shared::done`: a settle
    /// wakes them only when there are any (a `notify_all` is a futex
    /// syscall whether anyone waits or not; two per batch on the worker).
    space_waiters: usize,
    done_waiters: usize,
    /// An event found no room since the worker last took a batch (and, if
    /// it waits for room, since a settle last freed some): the queue is
    /// full, perhaps below a batch (its byte limit, or a capacity below
    /// `batch_size`), or the spool is at its cap under `WhenFull::Block`,
    /// and waiting for a full batch would wait for the flush interval while
    /// emitters block, drop or spill. The worker then sends what is queued.
    room_wanted: bool,
    /// A `flush_async` call was listed with a lower mark or an earlier
    /// deadline than the flush helper thread waits for: it is to look at
    /// its list again (see [`Shared::recheck_flushes`]).
    flush_recheck: bool,
}

impl State {
    /// Notes that an event found the queue full: the worker sends what is
    /// queued without waiting for a full batch. Returns whether that is
    /// news (then the worker is to be woken: once per batch taken, not per
    /// event that finds no room).
    fn wants_room(&mut self) -> bool {
        !std::mem::replace(&mut self.room_wanted, true)
    }

    /// The lowest `seq` not settled yet: every event below it has ended.
    /// A flush compares positions, not counts: later events that settle
    /// first cannot make it return early.
    ///
    /// The oldest of: the first open event of each flight, the queue's
    /// front, the first event only on disk. In the common case flights are
    /// older than the queue, and the queue than the spill; not after a
    /// spool write fails while events wait on disk: the event is queued in
    /// memory with a `seq` newer than theirs, and may be sent first.
    /// Whether every event below flush mark `target` has ended and been
    /// reported (or the worker is done: nothing more will end).
    fn flushed_to(&self, target: u64) -> bool {
        self.flushed_level().is_some_and(|level| target <= level)
    }

    /// The mark below which every event has ended and been reported, or
    /// `None` while a report is being made; `u64::MAX` once the worker is
    /// done.
    fn flushed_level(&self) -> Option<u64> {
        if self.worker_done {
            Some(u64::MAX)
        } else if self.reporting > 0 {
            None
        } else {
            Some(self.low_water())
        }
    }

    fn low_water(&self) -> u64 {
        let mut low = self.next_seq;
        if let Some(seq) = self.queue.front_seq() {
            low = low.min(seq);
        }
        if self.spilled > 0 {
            low = low.min(self.spill_seq);
        }
        for f in &self.flights {
            // Its events are no older than its first: one compare for each
            // flight after the oldest open one.
            if f.first_seq >= low || f.open_count == 0 {
                continue;
            }
            if let Some(i) = f.open.iter().position(|&o| o) {
                low = low.min(f.first_seq + i as u64);
            }
        }
        low
    }

    /// Passes over `n` events only on disk (read back, dropped or given
    /// up on): `spill_seq` goes to the next one's `seq`.
    fn pass_spilled(&mut self, n: u64) {
        let n = n.min(self.spilled);
        self.spilled -= n;
        for _ in 0..n {
            self.spill_seq += 1;
            while self.spill_skips.front() == Some(&self.spill_seq) {
                self.spill_skips.pop_front();
                self.spill_seq += 1;
            }
        }
        if self.spilled == 0 {
            self.spill_skips.clear();
        }
    }

    /// Events waiting: queued, in flight, or only in the spool.
    fn depth(&self) -> u64 {
        (self.queue.len() + self.in_flight) as u64 + self.spilled + self.held_unreadable
    }

    fn out_of_time(&self) -> bool {
        self.shutdown && self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// `now + d`, or `None` when that is past what an `Instant` can hold (no limit).
pub(crate) fn after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// When the worker tries the segments skipped as unreadable again
/// ([`Spool::retry_held`]), if events wait in them. Not while events wait
/// on disk (the retry waits for them, see `spool_upkeep`): a time past
/// then woke the waiting worker at once, again and again (a core spun for
/// as long as an open breaker held the queue).
fn held_retry_at(st: &State) -> Option<Instant> {
    if st.held_unreadable == 0 || st.spilled > 0 {
        return None;
    }
    st.spool.as_ref().and_then(Spool::held_retry_at)
}

/// The earlier of two times (`None`: never).
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Waits on `cv` until notified or `until` (forever when `None`).
fn wait_on<'a>(
    cv: &Condvar,
    st: MutexGuard<'a, State>,
    until: Option<Instant>,
) -> MutexGuard<'a, State> {
    match until {
        Some(t) => {
            let now = Instant::now();
            if t <= now {
                return st;
            }
            cv.wait_timeout(st, t - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0)
        }
        None => cv.wait(st).unwrap_or_else(|p| p.into_inner()),
    }
}

/// What writing an event to the spool came to.
enum Spooled {
    /// Written, with this sequence number.
    At(u64),
    /// Not written: the disk failed (the event goes to memory).
    Failed,
    /// Not written and not to be queued: the spool is full.
    Refused(Error),
    /// Not written, for want of room, by a caller that does not wait (or
    /// no longer): to be handed back.
    Later,
}

/// An event's end, as [`Shared::settle`] takes it.
enum End<'e> {
    Delivered,
    Undelivered(Reason, &'e Error),
}

/// Which events of a batch a settle ends, and how.
#[derive(Clone, Copy)]
enum Ends<'a, 'e> {
    /// Every event of the batch, delivered: the common case, said without
    /// a list (no allocation per batch: a list of a batch of 100 is a large
    /// block to glibc, whose allocation first consolidates every small
    /// block the sink freed, such as librdkafka's per-record headers).
    AllDelivered,
    /// These events, by position in the batch, each its own way.
    These(&'a [(usize, End<'e>)]),
}

/// How an event waits for room in the queue, and whether shutdown still
/// lets it in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct How {
    pub(crate) room: Room,
    /// An event that was made before now and is queued late (one
    /// `OssaLayer` put off): let in during shutdown until its deadline,
    /// like the events queued already, and timed out then as they are
    /// (not refused: see [`Shared::time_out_late`]).
    pub(crate) late: bool,
}

impl How {
    /// A caller's `emit`.
    pub(crate) const EMIT: How = How {
        room: Room::Policy(None),
        late: false,
    };
}

/// What an event does when the queue has no room.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Room {
    /// What the [`Overflow`] policy says, but waiting no later than this:
    /// then the event is handed back ([`Refused::Held`]) instead.
    Policy(Option<Instant>),
    /// Never wait, whatever the policy: hand the event back (the worker,
    /// which makes room by sending, building events put off).
    Hold,
    /// Wait for room no later than this, whatever the policy, then hand
    /// the event back: a flush queuing events put off, which were taken
    /// already (under `DropNewest` a flush that found the queue full for a
    /// moment dropped them; under `Block(limit)` after `limit`, however
    /// long the flush had left).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    Until(Option<Instant>),
    /// Refused as a full queue refuses it (counted `dropped`, reported),
    /// whatever room there is now: a caller's event behind events put off
    /// that its drain could not queue within the `Block` limit. Queued, it
    /// would go before them (before the start of the span it was emitted
    /// in), and wait for room a second limit.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    Behind,
}

/// An event built and encoded, handed back for want of room.
pub(crate) struct Held {
    event: Encoded,
    /// Its `sequence` number and source, for the spool.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    numbered: Option<(String, u64)>,
}

/// Why an event was not queued.
pub(crate) enum Refused {
    /// Refused, counted and reported.
    Error(Error),
    /// Not queued for want of room, and not counted: to be queued later.
    Held(Held),
}

/// How a drain of the events `OssaLayer` put off ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drained {
    /// Nothing is left (as far as this drainer saw).
    Empty,
    /// It stopped at its budget; more is left.
    Budget,
    /// The queue had no room: the built event is held at the front.
    Full,
    /// Another drainer is at work (or this thread is draining already).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    Busy,
}

/// Events put off the worker builds at most before it looks at its queue
/// again (and lets a caller that waits to emit after them have the drain).
const DRAIN_BUDGET: usize = 32;

/// How long the worker sleeps at most while another thread builds events
/// that were put off (it is told about what they queue, not about the end
/// of their drain).
const DRAIN_POLL: Duration = Duration::from_millis(1);

/// Longest the worker waits for the oldest started batch's outcome
/// ([`Sink::wait_ready`]) before it looks at its queue again, while nothing
/// is due and a lane is free; with an empty queue, the flush interval if
/// shorter, but not under the minimum (a worker that looks more often only
/// spins: events emitted meanwhile wait for the interval anyway). Well
/// under [`SHUTDOWN_GRACE`]: `wait_ready` is not told of a shutdown begun
/// meanwhile, so the worker sees it only after this wait (at 50 ms, as long
/// as the grace, `shutdown_within(0)` took 50 ms and often gave up on the
/// events itself, answering `Timeout`, where the settle answered at once).
const READY_LOOK: Duration = Duration::from_millis(10);
const READY_LOOK_MIN: Duration = Duration::from_millis(1);

/// While full batches come faster than this, the worker is busy: it naps
/// between looks at the queue instead of asking the emitting threads to wake
/// it (see [`Pace`]).
const BUSY_FILL: Duration = Duration::from_millis(5);

/// The shortest and the longest nap of a busy worker. The longest bounds how
/// late a full batch goes out; the shortest, how often a worker looks.
const NAP_MIN: Duration = Duration::from_micros(50);
const NAP_MAX: Duration = Duration::from_millis(1);

/// How fast full batches come, for the worker to choose between sleeping
/// until an emitting thread wakes it and napping.
///
/// A wake is a futex syscall made by the emitting thread that queues the
/// first event or fills a batch: 5-8 µs on a VM, in a call that otherwise
/// takes 1 µs, and with batches of 100 it is 1 % of calls, so it alone was
/// a single emitting thread's `emit()` p99 (issue 16). Under load (a full
/// batch at least every [`BUSY_FILL`]) the worker instead sleeps for a
/// while it chooses, about until the batch is full at the rate the last
/// one filled ([`NAP_MIN`]..[`NAP_MAX`]), and no `emit()` wakes it;
/// `flush()` and shutdown still do (and so does an `OssaLayer` push that
/// fills a batch of events put off, as for any timed wait). When full
/// batches stop for [`BUSY_FILL`], it sleeps until woken again.
#[derive(Debug, Default)]
struct Pace {
    /// When the last full batch was taken.
    last_full: Option<Instant>,
    /// How long the batch before it took to fill.
    fill: Option<Duration>,
}

impl Pace {
    /// A batch of `queued >= batch size` events was taken at `now`.
    fn full_batch(&mut self, now: Instant) {
        self.fill = self.last_full.map(|t| now.saturating_duration_since(t));
        self.last_full = Some(now);
    }

    /// How long to nap at `now` with `queued` of a batch of `batch`
    /// events waiting, when busy: about until the batch is full, at the
    /// rate the last one filled.
    fn nap(&self, now: Instant, queued: usize, batch: usize) -> Option<Duration> {
        let fill = self.fill?;
        let since = now.saturating_duration_since(self.last_full?);
        if fill >= BUSY_FILL || since >= BUSY_FILL {
            return None;
        }
        let batch = batch.max(1);
        let left = fill.as_nanos() * batch.saturating_sub(queued) as u128 / batch as u128;
        let left = Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX));
        Some(left.clamp(NAP_MIN, NAP_MAX))
    }
}

/// What the handles and the worker share.
pub(crate) struct Shared {
    /// How events are encoded for the sink.
    pub(crate) form: crate::sink::Form,
    state: Mutex<State>,
    /// Wakes the worker.
    wake: Condvar,
    /// Wakes emitters blocked on a full queue.
    space: Condvar,
    /// Wakes flush and shutdown waiters.
    done: Condvar,
    pub(crate) counters: Counters,
    pub(crate) config: Config,
    callback: Option<Callback>,
    /// Set once, by the worker itself before it runs anything.
    worker_thread: std::sync::OnceLock<std::thread::ThreadId>,
    /// Held while the spool's file upkeep (sync, ledger, deletions) runs:
    /// one at a time, so a ledger never goes back.
    upkeep: Mutex<()>,
    /// The spool's upkeep thread ([`spool_syncer`]), when there is a spool:
    /// an emit waiting for room on disk wakes it, so that confirmed
    /// segments are deleted now, not at its next round (up to a second).
    syncer: std::sync::OnceLock<std::thread::Thread>,
    /// The next `sequence` number per source.
    sequences: Mutex<std::collections::HashMap<String, u64>>,
    /// The events `OssaLayer` put off, not built yet.
    #[cfg(feature = "tracing")]
    pub(crate) deferred: crate::deferred::Deferred,
    /// The `flush_async` calls waiting, and whether a helper thread waits
    /// for them.
    pub(crate) flush_waiters: Mutex<crate::handle::FlushWaiters>,
}

/// Starts the worker thread for `sink`.
pub(crate) fn spawn(
    sink: Box<dyn Sink>,
    config: Config,
    callback: Option<Callback>,
    breaker: Breaker,
) -> Result<(Arc<Shared>, JoinHandle<()>), Error> {
    let counters = Counters::default();
    // What one send takes, and how many sends may be under way: asked here,
    // before the first `emit()` can queue anything, so that the queue's
    // runs are batches from the first event on. (Asked by the worker, an
    // emit that came first started a run of `batch_size`, and its events
    // went out in more, smaller batches.) User code: a panic is contained
    // like any other sink call, and answers the trait's default.
    fn caught<T>(f: impl FnOnce() -> T, fallback: T) -> T {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(fallback)
    }
    // The form events are encoded in, asked once each: a sink that panics
    // here fails its `build()` no more than one that panics in `max_batch`.
    let encoding = caught(|| sink.encoding(), crate::sink::Encoding::Json);
    let form = crate::sink::Form {
        encoding,
        structured_too: encoding != crate::sink::Encoding::Json
            && caught(|| sink.takes_structured(), false),
    };
    let max_batch = caught(|| sink.max_batch(), usize::MAX)
        .max(1)
        .min(config.batch_size.max(1))
        // No batch grows past the queue: a larger `batch_size` (even
        // `usize::MAX`) must not size the buffers made for one.
        .min(config.queue_events.max(1));
    let depth = caught(|| sink.pipeline(), 1).max(1);
    let mut state = State::default();
    state.queue.set_cap(max_batch);
    let mut sequences = std::collections::HashMap::new();
    if let Some(cfg) = config.spool.clone() {
        let (spool, rec) = Spool::open(cfg)?;
        sequences = spool.sequences();
        if rec.pending > 0 {
            tracing::info!(
                events = rec.pending,
                "spool: replaying events an earlier emitter left"
            );
        }
        Counters::add(&counters.replayed, rec.pending);
        state.spilled = rec.pending;
        state.next_seq = rec.pending;
        state.spool = Some(spool);
    }
    let shared = Arc::new(Shared {
        form,
        state: Mutex::new(state),
        wake: Condvar::new(),
        space: Condvar::new(),
        done: Condvar::new(),
        counters,
        config,
        callback,
        worker_thread: std::sync::OnceLock::new(),
        upkeep: Mutex::new(()),
        syncer: std::sync::OnceLock::new(),
        sequences: Mutex::new(sequences),
        #[cfg(feature = "tracing")]
        deferred: crate::deferred::Deferred::new(),
        flush_waiters: Mutex::default(),
    });
    let worker_shared = shared.clone();
    let handle = std::thread::Builder::new()
        .name("ossa-events-worker".into())
        .spawn(move || {
            // Before any sink call or report: set by the spawning thread,
            // it could come after the first.
            let _ = worker_shared.worker_thread.set(std::thread::current().id());
            // Dropped after `run` returns (or unwinds), the sink with it.
            let _end = ThreadEnd(&worker_shared);
            run(&worker_shared, sink, breaker, max_batch, depth);
        })?;
    if shared.lock().spool.is_some() {
        // The fsyncs and the ledger on a thread of their own: the worker
        // keeps sending while the disk catches up.
        let weak = Arc::downgrade(&shared);
        let syncer = std::thread::Builder::new()
            .name("ossa-events-spool".into())
            .spawn(move || spool_syncer(&weak))?;
        let _ = shared.syncer.set(syncer.thread().clone());
    }
    Ok((shared, handle))
}

/// What a wait of [`Shared::deadline`] is for, which says when this thread
/// would wait for itself.
#[derive(Clone, Copy)]
pub(crate) enum Waits {
    /// Room in the queue or the spool, which the worker makes: waits for
    /// itself on the worker (a sink, or `on_undelivered` there).
    ForRoom,
    /// Events to end: waits for itself on the worker, or in the reports of a
    /// give-up this thread makes ([`Shared::waits_for_itself`]).
    ForEnds,
}

impl Shared {
    /// Waits on `cv` until notified or `until`, counted in the state field
    /// `waiters` picks ([`State::space_waiters`], [`State::done_waiters`]).
    fn wait_counted<'a>(
        cv: &Condvar,
        mut st: MutexGuard<'a, State>,
        until: Option<Instant>,
        waiters: fn(&mut State) -> &mut usize,
    ) -> MutexGuard<'a, State> {
        *waiters(&mut st) += 1;
        let mut st = wait_on(cv, st, until);
        *waiters(&mut st) -= 1;
        st
    }

    fn wait_for_space<'a>(
        &self,
        st: MutexGuard<'a, State>,
        until: Option<Instant>,
    ) -> MutexGuard<'a, State> {
        Self::wait_counted(&self.space, st, until, |s| &mut s.space_waiters)
    }

    fn wait_for_done<'a>(
        &self,
        st: MutexGuard<'a, State>,
        until: Option<Instant>,
    ) -> MutexGuard<'a, State> {
        Self::wait_counted(&self.done, st, until, |s| &mut s.done_waiters)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing runs user code under this lock, and every change to the
        // state is made whole before it is released: keep going after a
        // poisoning panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the `on_undelivered` callback, if any; a panicking callback is
    /// contained (the event is counted already; the worker goes on).
    pub(crate) fn report(&self, reason: Reason, id: &str, event: Option<&Encoded>, error: &Error) {
        if let Some(cb) = &self.callback {
            // Not under the deferred queue's drain lock: made when the
            // drain this thread is in has released it.
            #[cfg(feature = "tracing")]
            if crate::deferred::postpone_report(&self.deferred, reason, id, event) {
                return;
            }
            let u = Undelivered {
                reason,
                id,
                event,
                error,
            };
            // What the callback logs is about this event, not the work of
            // the spans its thread is in.
            #[cfg(feature = "tracing")]
            let _in_callback = crate::tracing_layer::InCallback::enter();
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(&u)));
        }
    }

    /// Takes the next `sequence` number of `source`. At `u64::MAX` (a
    /// number an event carried itself, found in the spool at open) it
    /// stays there: `+= 1` overflowed, a panic in `emit()` (debug) or
    /// numbers starting again at 0 (release).
    pub(crate) fn next_sequence(&self, source: &str) -> u64 {
        let mut m = self.sequences.lock().unwrap_or_else(|p| p.into_inner());
        let next = m.entry(source.to_owned()).or_insert(1);
        let n = *next;
        *next = n.saturating_add(1);
        n
    }

    /// The next `sequence` number of `source`, not taken.
    pub(crate) fn peek_sequence(&self, source: &str) -> u64 {
        let m = self.sequences.lock().unwrap_or_else(|p| p.into_inner());
        m.get(source).copied().unwrap_or(1)
    }

    /// Counts a refusal at emit (queue full, shut down) and reports it.
    fn refuse(&self, e: &Encoded, err: Error) -> Error {
        tracing::debug!(id = e.id(), %err, "event dropped at emit");
        Counters::add(&self.counters.dropped, 1);
        self.report(Reason::Dropped, e.id(), Some(e), &err);
        err
    }

    /// Ends `e`, an event made before the shutdown and queued late (one
    /// `OssaLayer` put off), that shutdown's time ran out for: as the queued
    /// events end then, accepted and timed out (`emitted` and
    /// `shutdown_timeout`, under the lock, so every snapshot balances) and
    /// reported `ShutdownTimeout`. Not `dropped`: no overflow policy
    /// refused it, and it was made before the shutdown, not after it (a
    /// flush queuing it when the shutdown began counted it `dropped`).
    fn time_out_late(&self, mut st: MutexGuard<'_, State>, e: &Encoded) -> Error {
        st.emitted += 1;
        Counters::add(&self.counters.shutdown_timeout, 1);
        drop(st);
        tracing::debug!(id = e.id(), "event put off timed out at shutdown");
        self.report(Reason::ShutdownTimeout, e.id(), Some(e), &SHUTDOWN_TIMEOUT);
        Error::Timeout(Phase::Shutdown)
    }

    /// A caller's answer from the emit pipeline. `Held` cannot come of
    /// [`How::EMIT`]; were it to, the event is refused as the queue was full.
    pub(crate) fn answered_at_emit(&self, r: Result<(), Refused>) -> Result<(), Error> {
        match r {
            Ok(()) => Ok(()),
            Err(Refused::Error(e)) => Err(e),
            Err(Refused::Held(h)) => Err(self.refuse(&h.event, Error::QueueFull)),
        }
    }

    /// Queues an event handed back earlier ([`Refused::Held`]).
    #[cfg(feature = "tracing")]
    pub(crate) fn enqueue_held(&self, h: Held, how: How) -> Result<(), Refused> {
        let Held { event, numbered } = h;
        let numbered = numbered.as_ref().map(|(s, n)| (s.as_str(), *n));
        self.enqueue(event, numbered, how)
    }

    /// Queues `e`, waiting for room as `how` says (under [`Overflow::Block`]
    /// for a caller). With a spool the event is written there first; when
    /// the in-memory queue is full (or events wait on disk already) it stays
    /// only on disk.
    pub(crate) fn enqueue(
        &self,
        e: Encoded,
        numbered: Option<(&str, u64)>,
        how: How,
    ) -> Result<(), Refused> {
        let cfg = &self.config;
        let size = e.size();
        let mut st = self.lock();
        let fits = |st: &State| {
            st.queue.len() + st.in_flight < cfg.queue_events
                && (st.bytes + size <= cfg.queue_bytes || st.bytes == 0)
        };
        // No more events: the worker is gone, or shutdown has begun (an
        // event made before it is let in until its deadline).
        let closed = |st: &State| st.worker_done || st.shutdown && (!how.late || st.out_of_time());
        let held = |e: Encoded| {
            Refused::Held(Held {
                event: e,
                numbered: numbered.map(|(s, n)| (s.to_owned(), n)),
            })
        };
        if let Room::Behind = how.room {
            let err = if closed(&st) {
                Error::ShutDown
            } else {
                Error::QueueFull
            };
            drop(st);
            return Err(Refused::Error(self.refuse(&e, err)));
        }
        if st.spool.is_some() && !closed(&st) {
            let (spooled, st2) = self.spool_append(st, &e, numbered, how.room);
            st = st2;
            match spooled {
                Spooled::Refused(err) => {
                    drop(st);
                    return Err(Refused::Error(self.refuse(&e, err)));
                }
                Spooled::Later => {
                    drop(st);
                    return Err(held(e));
                }
                Spooled::At(sseq) => {
                    if st.spilled == 0 && fits(&st) {
                        if let Some(sp) = st.spool.as_mut() {
                            sp.skip_to_end(sseq);
                        }
                        if self.push(&mut st, e, Some(sseq)) {
                            drop(st);
                            self.wake.notify_one();
                        }
                    } else {
                        if st.spilled == 0 {
                            st.spill_seq = st.next_seq;
                        }
                        st.spilled += 1;
                        st.next_seq += 1;
                        st.emitted += 1;
                        // Spilled for want of room (not only behind others
                        // on disk): the worker sends what is queued.
                        let pressed = !fits(&st) && !st.queue.is_empty() && st.wants_room();
                        let wake = st.queue.is_empty() || pressed;
                        drop(st);
                        if wake {
                            self.wake.notify_one();
                        }
                    }
                    return Ok(());
                }
                // The disk failed: the in-memory queue takes it, as without
                // a spool.
                Spooled::Failed => {}
            }
        }
        // The worker is told (once a batch) that an event found no room:
        // woken after the lock is released, but before a wait for room.
        let mut wake = false;
        if !fits(&st) && !closed(&st) {
            wake = st.wants_room();
            match (how.room, cfg.overflow) {
                (Room::Hold, _) => {
                    drop(st);
                    if wake {
                        self.wake.notify_one();
                    }
                    return Err(held(e));
                }
                // Waiting as `Block` does, the caller's own time (`cap`)
                // and the policy's limit (`deadline`, none for a flush's
                // drain, which waits whatever the policy) both bounding it.
                (Room::Policy(cap), Overflow::Block(_)) | (Room::Until(cap), _) => {
                    let deadline = match (how.room, cfg.overflow) {
                        // On the worker (a sink, or `on_undelivered` there)
                        // no room comes while it waits: the worker makes it.
                        // Refused now, as `DropNewest` does.
                        (Room::Policy(_), Overflow::Block(limit)) => {
                            self.deadline(Waits::ForRoom, limit)
                        }
                        _ => None,
                    };
                    let until = earliest(deadline, cap);
                    while !fits(&st) && !closed(&st) {
                        if until.is_some_and(|d| Instant::now() >= d) {
                            break;
                        }
                        if std::mem::take(&mut wake) {
                            // Under the lock, once a batch: the wait
                            // below releases it.
                            self.wake.notify_one();
                        }
                        // A late event also wakes at the shutdown deadline.
                        let wake_at = earliest(until, st.deadline.filter(|_| st.shutdown));
                        st = self.wait_for_space(st, wake_at);
                        // Still no room after a settle (which clears the
                        // note when someone waits): the worker is to know
                        // again.
                        wake = !fits(&st) && st.wants_room();
                    }
                    let now = Instant::now();
                    if !fits(&st)
                        && !closed(&st)
                        && cap.is_some_and(|c| now >= c)
                        && deadline.is_none_or(|d| now < d)
                    {
                        // The caller's own time ran out before the policy's.
                        drop(st);
                        if wake {
                            self.wake.notify_one();
                        }
                        return Err(held(e));
                    }
                }
                (Room::Policy(_) | Room::Behind, _) => {}
            }
        }
        if closed(&st) {
            if how.late && st.shutdown {
                return Err(Refused::Error(self.time_out_late(st, &e)));
            }
            drop(st);
            return Err(Refused::Error(self.refuse(&e, Error::ShutDown)));
        }
        if !fits(&st) {
            drop(st);
            if wake {
                self.wake.notify_one();
            }
            return Err(Refused::Error(self.refuse(&e, Error::QueueFull)));
        }
        if st.spilled > 0 {
            // Its spool write failed while others wait on disk: its `seq`
            // is among theirs, and not one of them.
            let seq = st.next_seq;
            st.spill_skips.push_back(seq);
        }
        if self.push(&mut st, e, None) {
            drop(st);
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Builds and queues what `OssaLayer` put off (see [`crate::deferred`]).
    #[cfg(feature = "tracing")]
    fn drain_deferred(&self, room: Room, budget: usize) -> Drained {
        self.deferred.drain(self, room, budget)
    }

    #[cfg(not(feature = "tracing"))]
    #[inline]
    fn drain_deferred(&self, _: Room, _: usize) -> Drained {
        Drained::Empty
    }

    /// The worker's state, for a push to know whether to wake it (see
    /// [`crate::deferred`]). Before a sleep with no end: whether it may
    /// (nothing is put off).
    #[inline]
    fn deferred_waits_for_events(&self) -> bool {
        #[cfg(feature = "tracing")]
        return self.deferred.worker_waits_for_events();
        #[cfg(not(feature = "tracing"))]
        true
    }

    #[inline]
    fn deferred_waits_until(&self) {
        #[cfg(feature = "tracing")]
        self.deferred.worker_waits_until();
    }

    #[inline]
    fn deferred_busy(&self) {
        #[cfg(feature = "tracing")]
        self.deferred.worker_busy();
    }

    /// Events `OssaLayer` put off and nobody has queued yet.
    #[inline]
    fn put_off(&self) -> usize {
        #[cfg(feature = "tracing")]
        return self.deferred.len();
        #[cfg(not(feature = "tracing"))]
        0
    }

    /// Wakes the worker (after taking and releasing the state lock: the
    /// worker decides to sleep under it, so it is asleep or will look again).
    #[cfg(feature = "tracing")]
    pub(crate) fn wake_worker(&self) {
        drop(self.lock());
        self.wake.notify_one();
    }

    /// Puts `e` in the in-memory queue. Returns whether the worker must be
    /// woken, which the caller does after releasing the lock: a wake is a
    /// futex syscall, and made under the lock it kept the other emitting
    /// threads waiting for it (issue 16's `emit()` tail).
    #[must_use = "wake the worker after unlocking when this says so"]
    fn push(&self, st: &mut State, e: Encoded, spooled: Option<u64>) -> bool {
        st.bytes += e.size();
        let seq = st.next_seq;
        st.next_seq += 1;
        st.queue.push(seq, e, spooled);
        st.emitted += 1;
        // The worker may be sleeping without a deadline when the queue was
        // empty; past a full batch it is busy sending and looks at the
        // queue again before it sleeps. A queue that reaches its capacity
        // below a batch is due too (the worker sends it at once): without
        // a wake it waited for the flush interval, or for an emit refused
        // for want of room.
        let first = st.oldest.is_none();
        if first {
            st.oldest = Some(Instant::now());
        }
        let cfg = &self.config;
        st.worker_idle
            && (first
                || st.queue.len() == self.config.batch_size
                || st.queue.len() + st.in_flight >= cfg.queue_events
                || st.bytes >= cfg.queue_bytes)
    }

    /// Writes `e` to the spool, making room first as its [`WhenFull`] says.
    fn spool_append<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        e: &Encoded,
        numbered: Option<(&str, u64)>,
        room: Room,
    ) -> (Spooled, MutexGuard<'a, State>) {
        // What the record holds on disk: the bytes written (the spool adds
        // its record's fixed parts), not the memory the buffer holds (a
        // reused buffer can be larger; see `sink::pool`).
        let size = e.stored_len();
        let mut lost: Vec<Encoded> = Vec::new();
        // Events of dropped segments that could not be read: no id to report.
        let mut unnamed_lost = 0u64;
        let mut refused = false;
        if let Some(sp) = st.spool.as_mut() {
            sp.make_room(size);
        }
        // Larger than the cap: refused at once, whatever the policy (`Block`
        // waited out its limit for room that could never come, and
        // `DropOldest` dropped every older segment, their events with it,
        // before it refused the event all the same).
        if st.spool.as_ref().is_some_and(|sp| sp.never_fits(size)) {
            return (Spooled::Refused(Error::SpoolFull), st);
        }
        let when_full = st
            .spool
            .as_ref()
            .map_or(WhenFull::DropNewest, |sp| sp.config().when_full);
        if st.spool.as_ref().is_some_and(|sp| sp.would_overflow(size)) {
            match when_full {
                WhenFull::DropNewest => return (Spooled::Refused(Error::SpoolFull), st),
                WhenFull::Block(limit) => {
                    let Room::Policy(cap) = room else {
                        return (Spooled::Later, st);
                    };
                    // On the worker (a sink, or `on_undelivered` there) the
                    // room would come from its confirming the batch it is
                    // in: looked for once, then refused, rather than the
                    // worker stalled for the whole limit (as for
                    // `Overflow::Block`).
                    let deadline = self.deadline(Waits::ForRoom, limit);
                    // Room is looked for anew each time: a mapped spool's
                    // spare segment, prepared meanwhile for another emit,
                    // counts against the cap and is given back first.
                    while st.spool.as_mut().is_some_and(|sp| {
                        sp.make_room(size);
                        sp.would_overflow(size)
                    }) && !st.shutdown
                    {
                        let now = Instant::now();
                        if deadline.is_some_and(|d| now >= d) {
                            return (Spooled::Refused(Error::SpoolFull), st);
                        }
                        if cap.is_some_and(|c| now >= c) {
                            return (Spooled::Later, st);
                        }
                        // The worker deletes confirmed segments and says so.
                        // The events in memory are those it confirms next:
                        // it is to send them now, not once they make a
                        // batch or at the flush interval (while this emit
                        // would wait out its limit and drop its event).
                        // Set anew after each settle that clears it.
                        st.room_wanted = true;
                        self.wake.notify_one();
                        // And the upkeep thread deletes what is confirmed
                        // now: its rounds are up to a second apart, longer
                        // than a short limit (with the collector up, the
                        // emit failed at the cap for want of a deletion).
                        if let Some(t) = self.syncer.get() {
                            t.unpark();
                        }
                        st = self.wait_for_space(st, earliest(deadline, cap));
                    }
                    // The wait ended on shutdown with no room made: refused
                    // (written anyway, each waiting caller put one record
                    // past the cap).
                    if st.spool.as_ref().is_some_and(|sp| sp.would_overflow(size)) {
                        return (Spooled::Refused(Error::ShutDown), st);
                    }
                }
                WhenFull::DropOldest => {
                    while st.spool.as_ref().is_some_and(|sp| sp.would_overflow(size)) {
                        let Some(sp) = st.spool.as_mut() else { break };
                        match sp.drop_oldest() {
                            d if d.range.is_empty() => {
                                // Nothing left to drop but the segment being
                                // written: the new event goes, after what
                                // was dropped for it is counted and reported
                                // (returned at once, the segments dropped
                                // before took their events with them
                                // unreported: a spool reopened with a cap
                                // below its last segment lost them all).
                                refused = true;
                                break;
                            }
                            Dropped {
                                gone,
                                range,
                                held,
                                held_count,
                            } => {
                                let n = gone.len() as u64;
                                // They were the oldest of those only on disk.
                                st.pass_spilled(n);
                                lost.extend(gone);
                                // Skipped as unreadable, waiting for the next
                                // open: dropped now. Those it still cannot read
                                // are reported without an id.
                                let held_count = held_count.min(st.held_unreadable);
                                st.held_unreadable -= held_count;
                                let unnamed = held_count.saturating_sub(held.len() as u64);
                                lost.extend(held);
                                if unnamed > 0 {
                                    tracing::error!(
                                        events = unnamed,
                                        "spool full: dropped a segment that could not be read, its events with it"
                                    );
                                    Counters::add(&self.counters.dropped, unnamed);
                                    Counters::add(&self.counters.evicted, unnamed);
                                    unnamed_lost += unnamed;
                                }
                                // Those of its events that are in memory are
                                // still sent, but are no longer on disk.
                                let off_disk = |s: &mut Option<u64>| {
                                    if s.is_some_and(|x| range.contains(&x)) {
                                        *s = None;
                                    }
                                };
                                st.queue.spooled_mut().for_each(off_disk);
                                for f in &mut st.flights {
                                    f.spooled.iter_mut().for_each(off_disk);
                                }
                            }
                        }
                    }
                }
            }
        }
        if !lost.is_empty() || unnamed_lost > 0 {
            Counters::add(&self.counters.dropped, lost.len() as u64);
            Counters::add(&self.counters.evicted, lost.len() as u64);
            drop(st);
            if !lost.is_empty() {
                tracing::warn!(events = lost.len(), "spool full: oldest events dropped");
            }
            for old in &lost {
                self.report(Reason::Dropped, old.id(), Some(old), &Error::SpoolFull);
            }
            // Counted above, as they were found: one report each, as for
            // events lost from disk (see `Undelivered::id`).
            for _ in 0..unnamed_lost {
                self.report(Reason::Dropped, "", None, &Error::SpoolFull);
            }
            st = self.lock();
            // The lock was let go for the reports: an emit on another
            // thread may have taken the room made meanwhile, and written
            // now, this record went past the cap (a mapped spool's, by a
            // segment). The room is looked at anew; each round drops a
            // segment or refuses the event, so this ends.
            if !refused {
                return self.spool_append(st, e, numbered, room);
            }
        }
        if refused {
            return (Spooled::Refused(Error::SpoolFull), st);
        }
        let Some(sp) = st.spool.as_mut() else {
            return (Spooled::Failed, st);
        };
        // The number is the spool's to keep whether or not the record is
        // written: an event whose write fails is still sent (from memory)
        // with it, and the next emitter on the spool must not hand it out
        // again.
        if let Some((source, n)) = numbered {
            sp.numbered(source, n);
        }
        match sp.append(e) {
            Ok(sseq) => {
                // A sync that failed after the record was written.
                let errors = sp.take_io_errors();
                if errors > 0 {
                    Counters::add(&self.counters.spool_errors, errors);
                }
                (Spooled::At(sseq), st)
            }
            Err(err) => {
                Counters::add(&self.counters.spool_errors, 1);
                tracing::warn!(error = %err, "spool write failed: event kept in memory only");
                (Spooled::Failed, st)
            }
        }
    }

    /// Waits until every event queued before the call has ended, at most
    /// `limit`; returns the events still waiting then.
    pub(crate) fn flush_within(&self, limit: Duration) -> Result<u64, Error> {
        // Where nothing it waits for can end while it waits (see
        // `waits_for_itself`), answered now: it waited the whole limit, the
        // worker (or a shutdown) stalled with it, to time out all the same.
        let deadline = self.deadline(Waits::ForEnds, limit);
        let target = self
            .flush_mark_by(deadline)
            .ok_or(Error::Timeout(Phase::Flush))?;
        self.wait_flushed(target, deadline)
    }

    /// Queues what `OssaLayer` put off, on this thread (a flush waits for
    /// it too), waiting for room no later than `deadline` whatever the
    /// [`Overflow`] policy (those events were taken already: a flush does
    /// not drop them), then marks what the flush waits for (see
    /// [`Self::flush_mark`]); `None` when what was put off could not all be
    /// queued in time (the rest stays put off, for the worker).
    pub(crate) fn flush_mark_by(&self, deadline: Option<Instant>) -> Option<u64> {
        if self.drain_deferred(Room::Until(deadline), usize::MAX) == Drained::Full {
            return None;
        }
        Some(self.flush_mark())
    }

    /// For a flush whose wait runs on another thread (`flush_async`), made
    /// on the caller's without waiting: queues what `OssaLayer` put off
    /// when there is room and no other thread is at it, and marks what the
    /// flush waits for. Marked on the helper thread instead, the mark took
    /// in the events the caller emitted after the call, while the helper
    /// started. `None` when something put off is left: the flush helper
    /// thread queues it and marks then ([`Self::flush_mark_by`]).
    pub(crate) fn flush_mark_now(&self) -> Option<u64> {
        match self.drain_deferred(Room::Hold, usize::MAX) {
            Drained::Empty => Some(self.flush_mark()),
            Drained::Budget | Drained::Full | Drained::Busy => None,
        }
    }

    /// Marks every event queued now as what a flush waits for, and wakes
    /// the worker to send it; returns the mark.
    fn flush_mark(&self) -> u64 {
        let mut st = self.lock();
        let target = st.next_seq;
        st.flush_target = st.flush_target.max(target);
        self.wake.notify_one();
        target
    }

    /// Waits until every event below `target` (see [`Self::flush_mark`]) has
    /// ended and been reported, at most until `deadline`; returns the
    /// events still waiting then.
    pub(crate) fn wait_flushed(
        &self,
        target: u64,
        deadline: Option<Instant>,
    ) -> Result<u64, Error> {
        let mut st = self.lock();
        while !st.flushed_to(target) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout(Phase::Flush));
            }
            st = self.wait_for_done(st, deadline);
        }
        Ok((st.queue.len() + st.in_flight) as u64)
    }

    /// [`wait_flushed`](Self::wait_flushed) for many marks at once: waits
    /// until every event below `target` has ended and been reported, at
    /// most until `deadline`, and returns how far that is now (a mark
    /// below it is reached), or `None` while a report is being made.
    /// Returns early, too, when [`recheck_flushes`](Self::recheck_flushes)
    /// was called since it last returned.
    pub(crate) fn wait_flushed_until(&self, target: u64, deadline: Option<Instant>) -> Option<u64> {
        let mut st = self.lock();
        while !st.flushed_to(target)
            && !st.flush_recheck
            && deadline.is_none_or(|d| Instant::now() < d)
        {
            st = self.wait_for_done(st, deadline);
        }
        st.flush_recheck = false;
        st.flushed_level()
    }

    /// Has the flush helper thread's
    /// [`wait_flushed_until`](Self::wait_flushed_until) return (now, or at
    /// once when it is not waiting yet): a flush was listed that it does
    /// not wait for.
    pub(crate) fn recheck_flushes(&self) {
        let mut st = self.lock();
        st.flush_recheck = true;
        self.done.notify_all();
    }

    /// Begins shutdown (the first call sets the deadline) and returns: the
    /// worker delivers what it can by then and stops on its own.
    pub(crate) fn begin_shutdown(&self, limit: Duration) {
        drop(self.begin_shutdown_locked(limit));
    }

    fn begin_shutdown_locked(&self, limit: Duration) -> MutexGuard<'_, State> {
        let mut st = self.lock();
        if !st.shutdown {
            st.shutdown = true;
            st.deadline = after(limit);
        }
        // Events `OssaLayer` makes from now on are refused like a late
        // `emit`; those it put off before go out until the deadline.
        #[cfg(feature = "tracing")]
        self.deferred.close();
        self.wake.notify_all();
        self.space.notify_all();
        st
    }

    /// Whether this is the worker thread (a sink's call, or `on_undelivered`
    /// there).
    fn on_worker(&self) -> bool {
        self.worker_thread.get() == Some(&std::thread::current().id())
    }

    /// The deadline of a wait of at most `limit` for what only others make:
    /// now where this thread would wait for itself ([`Waits`]), so that the
    /// wait looks once and answers rather than stall the worker (or a
    /// shutdown's give-up) for the whole limit and fail all the same.
    pub(crate) fn deadline(&self, waits: Waits, limit: Duration) -> Option<Instant> {
        let itself = match waits {
            Waits::ForRoom => self.on_worker(),
            Waits::ForEnds => self.waits_for_itself(),
        };
        if itself {
            Some(Instant::now())
        } else {
            after(limit)
        }
    }

    /// Whether a wait for events to end, made on this thread, would wait for
    /// itself: on the worker, which ends them (a sink's call or
    /// `on_undelivered` there), or in `on_undelivered` called for a give-up
    /// this thread makes (a shutdown past its deadline), whose reports a
    /// flush waits for.
    fn waits_for_itself(&self) -> bool {
        self.on_worker() || ThreadMark::is_here(&GIVING_UP, self)
    }

    /// Begins shutdown and waits for the worker; past the deadline (plus
    /// [`SHUTDOWN_GRACE`]) gives up on every open event itself.
    pub(crate) fn shutdown(
        &self,
        worker: &Mutex<Option<JoinHandle<()>>>,
        limit: Duration,
    ) -> Result<(), Error> {
        let on_worker = self.on_worker();
        let mut limit = limit;
        if !on_worker {
            // What `OssaLayer` put off is queued on this thread first, as
            // much as fits now; the worker queues what is left during
            // shutdown, making room by sending, until the deadline. Not
            // under the `Overflow` policy, as an emit is: those events were
            // taken already, and are to be queued until the deadline (with
            // `DropNewest` each one that found the queue full was refused
            // at once, with `Block(limit)` after `limit`, however long the
            // shutdown had left).
            let until = after(limit);
            self.drain_deferred(Room::Hold, usize::MAX);
            if let Some(u) = until {
                limit = u.saturating_duration_since(Instant::now());
            }
        }
        let mut st = self.begin_shutdown_locked(limit);
        if on_worker {
            // Dropped from a callback on the worker itself: it stops on its
            // own once this call returns; waiting here would wait for itself.
            return Ok(());
        }
        let hard = st.deadline.and_then(|d| d.checked_add(SHUTDOWN_GRACE));
        while !st.worker_done {
            if hard.is_some_and(|h| Instant::now() >= h) {
                // The worker is stuck in a sink call that outlasts the
                // deadline: end what is open here, so nothing is left
                // uncounted when the process exits.
                self.give_up_all(
                    st,
                    Reason::ShutdownTimeout,
                    &Error::Timeout(Phase::Shutdown),
                );
                // Past the deadline: what `OssaLayer` put off ends timed
                // out, counted and reported (unless a drainer is at it
                // already: its drain ends them so).
                self.drain_deferred(Room::Hold, usize::MAX);
                return Err(Error::Timeout(Phase::Shutdown));
            }
            st = self.wait_for_done(st, hard);
        }
        // Every event has ended; the worker thread may still be dropping the
        // sink (a Kafka producer waits for what it holds). Every caller
        // waits for that, by the hard limit, not only the one that holds
        // the thread's handle: a second caller returned at once, the sink
        // still alive, to a program that took the return for its end (and
        // exited, or opened the port again).
        while !st.worker_ended && hard.is_none_or(|t| Instant::now() < t) {
            st = self.wait_for_done(st, hard);
        }
        let ended = st.worker_ended;
        drop(st);
        // Joined once ended (it has only its last steps to make); else left
        // where it is, to finish on its own.
        if ended {
            let handle = worker.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(h) = handle {
                let _ = h.join();
            }
        }
        Ok(())
    }

    /// The counters now.
    pub(crate) fn metrics(&self) -> Metrics {
        // Under the lock: settles count under it too, so `emitted ==
        // delivered + failed + shutdown_timeout + queue_depth` holds in
        // every snapshot.
        let st = self.lock();
        let spool_bytes = st.spool.as_ref().map_or(0, Spool::bytes);
        let mut m = self
            .counters
            .snapshot(st.emitted, st.depth(), st.bytes as u64, spool_bytes);
        if let Some(sp) = &st.spool {
            m.spool_corrupt += sp.corrupt;
        }
        m
    }

    /// Ends the open events of flight `id` named in `ends` (positions in
    /// `events`): each at most once, counted under the lock, reported after.
    /// Returns `false` when the flight was given up on already (shutdown's
    /// hard limit): then nothing is counted, a late answer changes nothing.
    /// A flight that ends here leaves its spool numbers' vector in
    /// `spooled_back` (if it has room: no allocation), for the worker to
    /// make a run of it with its batch's events vector.
    fn settle(
        &self,
        id: u64,
        events: &[Encoded],
        ends: Ends<'_, '_>,
        spooled_back: &mut Vec<Vec<Option<u64>>>,
    ) -> bool {
        let mut reports: Vec<(usize, Reason, &Error)> = Vec::new();
        // A settled flight is freed, and waiters are woken, after the lock
        // is released: emitting threads wait for it (issue 16's tail).
        let mut finished: Option<Flight> = None;
        // The common case, a whole batch delivered by its first send: what
        // it adds up is added up before the lock is taken, so that the
        // emitting threads do not wait for a loop over the batch. (Not with
        // a spool: each event is acknowledged to it under the lock anyway.)
        let all = matches!(ends, Ends::AllDelivered);
        let whole = (all && self.config.spool.is_none()).then(|| {
            let freed: usize = events.iter().map(Encoded::size).sum();
            let wire: u64 = events.iter().map(|e| e.wire_len() as u64).sum();
            (freed, wire)
        });
        let closed;
        let waiters;
        {
            let mut st = self.lock();
            let Some(pos) = st.flights.iter().position(|f| f.id == id) else {
                return false;
            };
            let mut freed = 0usize;
            let mut closed_here = 0usize;
            let (mut delivered, mut wire) = (0u64, 0u64);
            let (mut failed, mut timed_out, mut kept) = (0u64, 0u64, 0u64);
            let mut acks: Vec<u64> = Vec::new();
            let flight = st.flights.get_mut(pos);
            // (`whole` is only made without a spool: `st.spool` is opened
            // from the config's.)
            if let Some((all_bytes, all_wire)) = whole
                && flight
                    .as_ref()
                    .is_some_and(|f| f.open_count == events.len() && f.open.len() == events.len())
            {
                // Every event of the flight is open (none settled before)
                // and delivered now (no spool to acknowledge to): it ends
                // whole, with what was added up before the lock.
                closed_here = events.len();
                delivered = closed_here as u64;
                (freed, wire) = (all_bytes, all_wire);
                finished = st.flights.remove(pos);
            } else if let Some(f) = flight {
                let these = match ends {
                    Ends::AllDelivered => &[][..],
                    Ends::These(these) => these,
                };
                let every = (0..if all { events.len() } else { 0 }).map(|i| (i, &End::Delivered));
                for (i, end) in every.chain(these.iter().map(|(i, end)| (*i, end))) {
                    match f.open.get_mut(i) {
                        Some(open) if *open => *open = false,
                        _ => continue,
                    }
                    let Some(e) = events.get(i) else { continue };
                    let spooled = f.spooled.get(i).copied().flatten();
                    closed_here += 1;
                    freed += e.size();
                    match end {
                        End::Delivered => {
                            delivered += 1;
                            wire += e.wire_len() as u64;
                            acks.extend(spooled);
                        }
                        // Out of time, but on disk: the next emitter on the
                        // spool sends it. Not lost, so not reported.
                        End::Undelivered(Reason::ShutdownTimeout, _) if spooled.is_some() => {
                            kept += 1;
                        }
                        End::Undelivered(reason, error) => {
                            if *reason == Reason::ShutdownTimeout {
                                timed_out += 1;
                            } else {
                                failed += 1;
                                acks.extend(spooled);
                            }
                            reports.push((i, *reason, error));
                        }
                    }
                }
                f.open_count -= closed_here;
                if f.open_count == 0 {
                    finished = st.flights.remove(pos);
                }
            }
            st.in_flight -= closed_here;
            st.bytes = st.bytes.saturating_sub(freed);
            if closed_here > 0 && st.space_waiters > 0 {
                // Room again for the emitters waiting for it, woken below:
                // one that still finds none says so anew. (Without them the
                // note stays: events refused since are not coming back, and
                // the queue is still full.)
                st.room_wanted = false;
            }
            if let Some(sp) = st.spool.as_mut() {
                sp.ack_all(&acks);
            }
            let c = &self.counters;
            Counters::add(&c.spooled, kept);
            if delivered > 0 {
                Counters::add(&c.batches, 1);
            }
            Counters::add(&c.delivered, delivered);
            Counters::add(&c.bytes, wire);
            Counters::add(&c.failed, failed);
            Counters::add(&c.shutdown_timeout, timed_out);
            if !reports.is_empty() {
                st.reporting += 1;
            }
            closed = closed_here;
            waiters = (st.space_waiters > 0, st.done_waiters > 0);
        }
        if let Some(f) = finished
            && spooled_back.len() < spooled_back.capacity()
        {
            spooled_back.push(f.spooled);
        }
        if closed > 0 {
            if waiters.0 {
                self.space.notify_all();
            }
            if waiters.1 {
                self.done.notify_all();
            }
        }
        if reports.is_empty() {
            return true;
        }
        if let Some(&(_, reason, error)) = reports.first() {
            tracing::warn!(
                events = reports.len(),
                ?reason,
                %error,
                "events not delivered"
            );
        }
        for (i, reason, error) in reports {
            if let Some(e) = events.get(i) {
                self.report(reason, e.id(), Some(e), error);
            }
        }
        self.reported();
        true
    }

    /// The reports of one settle are made: wake a flush that waits for them.
    fn reported(&self) {
        let mut st = self.lock();
        st.reporting = st.reporting.saturating_sub(1);
        self.done.notify_all();
    }

    /// Ends every queued and open in-flight event with `reason`: the
    /// shutdown deadline passed, or the worker is gone.
    fn give_up_all(&self, st: MutexGuard<'_, State>, reason: Reason, error: &Error) {
        self.give_up(st, reason, error, true);
    }

    /// [`give_up_all`](Self::give_up_all), logging a warning if `warn`;
    /// returns how many events it gave up on (not those left in the spool).
    fn give_up(
        &self,
        mut st: MutexGuard<'_, State>,
        reason: Reason,
        error: &Error,
        warn: bool,
    ) -> usize {
        // What is in the spool is not lost: the next emitter on it sends it.
        let mut kept = st.spilled + std::mem::take(&mut st.held_unreadable);
        let n = st.spilled;
        st.pass_spilled(n);
        let mut queued: Vec<Encoded> = Vec::new();
        for (event, spooled) in st.queue.drain_all() {
            if spooled.is_some() {
                kept += 1;
            } else {
                queued.push(event);
            }
        }
        st.oldest = None;
        let mut open: Vec<(Arc<Vec<Encoded>>, Vec<usize>)> = Vec::new();
        for f in st.flights.drain(..) {
            let idx: Vec<usize> = (0..f.open.len())
                .filter(|&i| f.open.get(i).copied().unwrap_or(false))
                .collect();
            let (on_disk, lost): (Vec<usize>, Vec<usize>) = idx
                .into_iter()
                .partition(|&i| f.spooled.get(i).copied().flatten().is_some());
            kept += on_disk.len() as u64;
            open.push((f.events, lost));
        }
        let n = queued.len() + open.iter().map(|(_, i)| i.len()).sum::<usize>();
        if n > 0 && warn {
            tracing::warn!(events = n, ?reason, %error, "giving up on every open event");
        }
        if kept > 0 {
            tracing::info!(events = kept, "left in the spool for the next emitter");
        }
        st.in_flight = 0;
        st.bytes = 0;
        let c = &self.counters;
        Counters::add(&c.spooled, kept);
        if reason == Reason::ShutdownTimeout {
            Counters::add(&c.shutdown_timeout, n as u64);
        } else {
            Counters::add(&c.failed, n as u64);
        }
        self.space.notify_all();
        self.done.notify_all();
        if n == 0 {
            return 0;
        }
        st.reporting += 1;
        drop(st);
        let _here = ThreadMark::enter(&GIVING_UP, self);
        for e in &queued {
            self.report(reason, e.id(), Some(e), error);
        }
        for (events, idx) in &open {
            for e in idx.iter().filter_map(|&i| events.get(i)) {
                self.report(reason, e.id(), Some(e), error);
            }
        }
        self.reported();
        n
    }
}

/// The shutdown deadline as a sink sees it: read afresh at each look, since
/// shutdown can begin while a send waits.
impl LiveDeadline for Shared {
    fn now(&self) -> Option<Instant> {
        let st = self.lock();
        st.deadline.filter(|_| st.shutdown)
    }
}

thread_local! {
    /// The emitter (its [`Shared`]'s address) whose give-up this thread is
    /// reporting, or 0: see [`Shared::waits_for_itself`].
    static GIVING_UP: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the worker gone however it ends (a panic in our own code
/// included): whatever is still open is given up on, once, and every waiter
/// is woken.
struct WorkerExit<'a>(&'a Shared);

impl Drop for WorkerExit<'_> {
    fn drop(&mut self) {
        let sh = self.0;
        let _one = sh.upkeep.lock().unwrap_or_else(|p| p.into_inner());
        // What `OssaLayer` put off and nobody queued: built now (timed out
        // when shutdown's time is up), before the worker is marked done, so
        // a shutdown that returns has counted them; what it makes from now
        // on is refused at once.
        #[cfg(feature = "tracing")]
        sh.deferred.close();
        sh.drain_deferred(Room::Hold, usize::MAX);
        let mut st = sh.lock();
        if let Some(mut sp) = st.spool.take() {
            // Synced, ledger written, confirmed segments deleted, and the
            // directory's lock released before anyone is told the worker is
            // done: a shutdown that returns leaves the spool free for the
            // next emitter. (Under the lock: emits wait, briefly, at exit.)
            sp.close();
            Counters::add(&sh.counters.spool_corrupt, sp.corrupt);
        }
        st.worker_done = true;
        if std::thread::panicking() {
            tracing::error!("emitter worker panicked; its open events fail");
        } else {
            tracing::debug!("emitter worker stopped");
        }
        let err = Error::Transport("emitter worker stopped".into());
        sh.give_up_all(st, Reason::Failed, &err);
        // Any left (another thread was draining, or the queue was full):
        // ended now (timed out during a shutdown), counted and reported.
        sh.drain_deferred(Room::Policy(None), usize::MAX);
    }
}

/// Says the worker thread is at its end, to every shutdown waiting for it
/// (see [`Shared::shutdown`]): dropped last on that thread, after the sink.
struct ThreadEnd<'a>(&'a Shared);

impl Drop for ThreadEnd<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.worker_ended = true;
        drop(st);
        self.0.done.notify_all();
    }
}

/// Every sync interval: syncs the spool, writes its ledger and deletes
/// confirmed segments, the file work outside the emitter's lock. Ends with
/// the worker (whose exit does the last round). An emit waiting for room on
/// disk unparks it for a round at once.
fn spool_syncer(sh: &std::sync::Weak<Shared>) {
    loop {
        let every = {
            let Some(sh) = sh.upgrade() else { return };
            let st = sh.lock();
            if st.worker_done {
                return;
            }
            upkeep_every(st.spool.as_ref())
        };
        std::thread::park_timeout(every);
        let Some(sh) = sh.upgrade() else { return };
        let _one = sh.upkeep.lock().unwrap_or_else(|p| p.into_inner());
        let m = {
            let mut st = sh.lock();
            if st.worker_done {
                return;
            }
            st.spool.as_mut().map(Spool::maintenance)
        };
        let Some(m) = m else { return };
        let removed = m.run();
        if !removed.is_empty() {
            let mut st = sh.lock();
            if let Some(sp) = st.spool.as_mut() {
                sp.removed(&removed);
            }
            if st.space_waiters > 0 {
                // Room on disk for the emitters waiting for it, woken below:
                // one that still finds none says so anew (as after a settle
                // that frees room in memory). Left set, the next event
                // queued would go out at once in a batch of one.
                st.room_wanted = false;
            }
            sh.space.notify_all();
        }
    }
}

/// How often the spool is synced and its ledger written.
fn upkeep_every(spool: Option<&Spool>) -> Duration {
    match spool.map(|s| s.config().sync) {
        Some(SyncPolicy::Every(d)) => d.clamp(Duration::from_millis(1), Duration::from_secs(1)),
        _ => Duration::from_secs(1),
    }
}

/// A batch taken from the queue: its flight id and its events.
struct Taken {
    id: u64,
    events: Arc<Vec<Encoded>>,
    /// When it was taken, just before its first attempt (see
    /// [`Breaker::failure`]).
    at: Instant,
}

/// A batch the worker is done with gives its buffers back to the emitting
/// threads (see `sink::pool`), once no flight or sink holds it any more.
impl Drop for Taken {
    fn drop(&mut self) {
        if let Some(events) = Arc::get_mut(&mut self.events) {
            crate::sink::recycle(events);
        }
    }
}

/// What the worker does next.
enum Step {
    /// Send a batch, to the end (sinks without a pipeline).
    Send(Taken),
    /// Start a batch and go on (pipelined sinks).
    Start(Taken),
    /// Settle the oldest started batch; with an instant, only once the
    /// sink says its outcome is known, looking at the queue again if it is
    /// not by then ([`Sink::wait_ready`]).
    Settle(Option<Instant>),
    /// Nothing is left and shutdown was asked for.
    Stop,
}

struct Worker<'a> {
    sh: &'a Shared,
    sink: Box<dyn Sink>,
    breaker: Breaker,
    max_batch: usize,
    depth: usize,
    /// Events still to go out of a batch that reached `batch_size`, when
    /// the sink takes fewer a call: sent back to back, not left for the
    /// flush interval.
    owed: usize,
    /// Batches started and not settled, oldest first (pipelined sinks).
    started: VecDeque<(Ticket, Taken)>,
    /// How fast full batches come (nap or sleep until woken).
    pace: Pace,
    /// What the next batch taken from the queue needs, made before the
    /// queue lock is taken and kept when no batch was taken: the batch's
    /// shared handle and its open flags.
    spare: Option<Spare>,
    /// Empty runs for the queue (the emitting threads start runs with
    /// them), at most [`SPARE_RUNS`]: retired batches' vectors, or one made
    /// before the lock is taken when there is none. (With one slot, filled
    /// ahead at each look at the queue, a batch retired by the settle that
    /// look led to found it full, and its vector was freed as the next
    /// look made a new one: a 1.6 KB block to glibc per batch, which went
    /// through `malloc_consolidate`, 7 % of the worker's samples under
    /// `kafka_sink`.)
    spare_runs: Vec<Run>,
    /// Ended flights' spool numbers' vectors, at most [`SPARE_RUNS`] (see
    /// [`Shared::settle`]), for [`retire`](Self::retire) to pair with
    /// their batches' events vectors.
    spooled_back: Vec<Vec<Option<u64>>>,
    /// Events given up on since a shutdown gave up before its deadline (an
    /// open breaker or a `Retry-After` past it), to be logged once, when
    /// the worker stops.
    gave_up_early: usize,
}

/// See [`Worker::spare_runs`].
const SPARE_RUNS: usize = 2;

/// See [`Worker::spare`].
struct Spare {
    events: Arc<Vec<Encoded>>,
    open: Vec<bool>,
}

/// The worker thread: named phases in a loop. `max_batch` and `depth` are
/// the sink's, asked by [`spawn`] (which made the queue's runs that long).
fn run(sh: &Shared, sink: Box<dyn Sink>, breaker: Breaker, max_batch: usize, depth: usize) {
    let exit = WorkerExit(sh);
    let mut w = Worker {
        sh,
        sink,
        breaker,
        max_batch,
        depth,
        owed: 0,
        started: VecDeque::new(),
        spare: None,
        spare_runs: Vec::with_capacity(SPARE_RUNS),
        spooled_back: Vec::with_capacity(SPARE_RUNS),
        pace: Pace::default(),
        gave_up_early: 0,
    };
    loop {
        match w.take_batch() {
            Step::Send(t) => {
                let all = (0..t.events.len()).collect();
                w.deliver(&t, all, None);
                w.retire(t);
            }
            Step::Start(t) => w.start(t),
            Step::Settle(until) => w.settle_oldest(until),
            Step::Stop => break,
        }
    }
    if w.gave_up_early > 0 {
        tracing::warn!(
            events = w.gave_up_early,
            reason = ?Reason::ShutdownTimeout,
            error = %SHUTDOWN_TIMEOUT,
            "giving up on every open event: the breaker or a Retry-After ends past the shutdown deadline"
        );
    }
    drop(exit);
}

impl<'w> Worker<'w> {
    /// Phase 1: wait until there is something to do, and take the batch.
    fn take_batch(&mut self) -> Step {
        let sh = self.sh;
        let cfg = &sh.config;
        // A sink call's worth: the batch size, or fewer when the sink takes
        // fewer a call. Its buffers are made before the lock is taken: the
        // emitting threads wait for this lock, so under it the batch is
        // only moved, never allocated (issue 16's `emit()` tail).
        let cap = self.max_batch;
        let batch = cfg.batch_size.max(1);
        if self.spare.is_none() {
            self.spare = Some(Spare {
                events: Arc::new(Vec::new()),
                open: Vec::with_capacity(cap.min(crate::queue::PREALLOC_MAX)),
            });
        }
        if self.spare_runs.is_empty() {
            self.spare_runs.push(Run::with_capacity(cap));
        }
        loop {
            // First what `OssaLayer` put off, a batch's worth at a time and
            // without the state lock (the emit pipeline takes it); when the
            // queue is full the built event waits at the front and the
            // worker sends first.
            let drained = sh.drain_deferred(Room::Hold, cfg.batch_size.clamp(1, DRAIN_BUDGET));
            let mut st = sh.lock();
            st = self.spool_upkeep(st);
            // Out of time, or the breaker stays open past the deadline (no
            // send can happen in time): give up on everything still open.
            let breaker_past_deadline = match (st.shutdown, self.breaker.wait_until(), st.deadline)
            {
                (true, Some(b), Some(d)) => b >= d,
                _ => false,
            };
            if st.out_of_time() || breaker_past_deadline && !st.queue.is_empty() {
                // Shutdown is under way (both need it): nothing is left to
                // do but settle what was started, by the reports the sink
                // has (given up on unasked, an event whose report said
                // delivered was counted and reported as not delivered).
                if !self.started.is_empty() {
                    drop(st);
                    self.settle_started();
                    continue;
                }
                let timed_out = st.out_of_time();
                if timed_out && self.gave_up_early == 0 {
                    sh.give_up_all(st, Reason::ShutdownTimeout, &SHUTDOWN_TIMEOUT);
                    return Step::Stop;
                }
                // Once given up early, each look gives up on what it has
                // just built (below): one warning for them all, with their
                // count, made when the worker stops (a warning a look was
                // one an event put off, with batches of one).
                self.gave_up_early +=
                    sh.give_up(st, Reason::ShutdownTimeout, &SHUTDOWN_TIMEOUT, false);
                if timed_out {
                    return Step::Stop;
                }
                // Given up on before the deadline (the breaker or a
                // `Retry-After` ends past it): events `OssaLayer` put off
                // before the shutdown are still let in until then. The next
                // look builds them and gives them up the same way, and stops
                // once none is left (the queue empty, nothing put off).
                // Stopped now, the worker's exit built them and failed them
                // as "emitter worker stopped".
                continue;
            }
            let put_off = sh.put_off();
            if st.queue.is_empty() {
                if !self.started.is_empty() {
                    // An event emitted while the oldest batch's
                    // acknowledgement is slow to come is looked at soon,
                    // not after it (lanes are free, or will be).
                    let look = cfg.flush_interval.clamp(READY_LOOK_MIN, READY_LOOK);
                    return Step::Settle((!st.shutdown).then(|| Instant::now() + look));
                }
                if st.shutdown && put_off == 0 {
                    return Step::Stop;
                }
                if drained == Drained::Budget {
                    continue; // more to build before anything is due
                }
                // Sleep until woken by an event; while another thread
                // builds events put off, look again soon (its drain ends
                // without a word when it queues nothing).
                self.owed = 0;
                if let Some(nap) = self.pace.nap(Instant::now(), 0, batch) {
                    // Busy: events are due soon; look again without
                    // making the next `emit()` wake this thread.
                    sh.deferred_waits_until();
                    let until = after(if put_off > 0 {
                        nap.min(DRAIN_POLL)
                    } else {
                        nap
                    });
                    // Held until `continue`, as the next look takes it anew.
                    let _woken = wait_on(&sh.wake, st, until);
                    sh.deferred_busy();
                    continue;
                }
                let until = if put_off > 0 {
                    sh.deferred_waits_until();
                    after(DRAIN_POLL)
                } else if sh.deferred_waits_for_events() {
                    None
                } else {
                    continue; // something was put off meanwhile
                };
                // Events of a segment that could not be read: tried again
                // when its wait is over, idle or not.
                let until = earliest(until, held_retry_at(&st));
                st.worker_idle = true;
                st = wait_on(&sh.wake, st, until);
                st.worker_idle = false;
                sh.deferred_busy();
                continue;
            }
            let now = Instant::now();
            let flush_wanted = st.low_water() < st.flush_target;
            let interval_due = st
                .oldest
                .is_some_and(|t| now.duration_since(t) >= cfg.flush_interval);
            // A queue too full for the events put off, or for an emitted
            // one: send, to make room. So too with a queue at its capacity:
            // no batch grows past it (a capacity under `batch_size`), and
            // events read back from disk, which no emit waits for, went out
            // a queue-full per flush interval, the collector up.
            let at_capacity =
                st.queue.len() + st.in_flight >= cfg.queue_events || st.bytes >= cfg.queue_bytes;
            let pressed = drained == Drained::Full || st.room_wanted || at_capacity;
            // A full batch (`batch_size` events) is owed whole, in as many
            // sink calls as it takes: sent one call's worth at a time, the
            // rest would wait for the flush interval.
            let full = st.queue.len() >= batch;
            if full && self.owed == 0 {
                self.owed = batch;
            }
            let due = self.owed > 0 || flush_wanted || st.shutdown || interval_due || pressed;
            let held_back = self.breaker.wait_until();
            // An open breaker is probed with one attempt: while a batch is
            // in flight (the probe, or one started before it opened), no
            // other starts, else a pipelined sink probed with a batch per
            // lane (4 requests to a dead collector at each end of the open
            // period with `pipeline(4)`, 64 with Kafka's default).
            let probing = self.breaker.is_open() && !self.started.is_empty();
            if due && held_back.is_none() && !probing && self.started.len() < self.depth {
                if full {
                    self.pace.full_batch(now);
                }
                // Made above; empty (no allocation) in the case that cannot be.
                let Spare {
                    mut events,
                    mut open,
                } = self.spare.take().unwrap_or_else(|| Spare {
                    events: Arc::new(Vec::new()),
                    open: Vec::new(),
                });
                if st.queue.wants_spare()
                    && let Some(r) = self.spare_runs.pop()
                {
                    st.queue.give_spare(r);
                }
                // The front run, moved whole: the queue is not empty here.
                let Run {
                    first_seq,
                    events: taken,
                    spooled,
                } = st.queue.take_front(self.max_batch).unwrap_or_default();
                st.room_wanted = false;
                let n = taken.len();
                self.owed = self.owed.saturating_sub(n);
                match Arc::get_mut(&mut events) {
                    Some(v) => *v = taken,
                    None => events = Arc::new(taken),
                }
                open.clear();
                open.resize(n, true);
                let id = st.next_flight;
                st.next_flight += 1;
                st.in_flight += n;
                st.flights.push_back(Flight {
                    id,
                    first_seq,
                    spooled,
                    open,
                    open_count: n,
                    events: events.clone(),
                });
                // Events left behind are no younger than the oldest was: keep
                // its time, so they go out no later than its interval.
                if st.queue.is_empty() {
                    st.oldest = None;
                }
                let t = Taken {
                    id,
                    events,
                    at: Instant::now(),
                };
                return if self.depth == 1 {
                    Step::Send(t)
                } else {
                    Step::Start(t)
                };
            }
            if !self.started.is_empty() {
                // Nothing is due yet and a lane is free: the oldest batch is
                // settled once its outcome is known, or the queue looked at
                // again when its oldest event falls due, so that a slow
                // acknowledgement does not hold that event past the flush
                // interval. A full pipeline, an open breaker or shutdown
                // wait in the settle itself.
                let free = self.started.len() < self.depth;
                let until = match st.oldest {
                    Some(t) if free && !due && !st.shutdown => {
                        let due_at = t.checked_add(cfg.flush_interval);
                        earliest(due_at, after(READY_LOOK))
                    }
                    _ => None,
                };
                return Step::Settle(until);
            }
            if drained == Drained::Budget {
                continue; // more to build before sleeping
            }
            // Sleep until the interval, the breaker or the shutdown deadline.
            let mut until = st.oldest.and_then(|t| t.checked_add(cfg.flush_interval));
            if let Some(b) = held_back {
                until = Some(if due {
                    b
                } else {
                    until.map_or(b, |u| u.max(b))
                });
            }
            if let Some(d) = st.deadline {
                until = Some(until.map_or(d, |u| u.min(d)));
            }
            until = earliest(until, held_retry_at(&st));
            // Busy, and the batch is not due only because it is not full
            // yet: nap, and let the callers that fill it not wake this thread.
            let nap = if held_back.is_none() {
                self.pace.nap(now, st.queue.len(), batch)
            } else {
                None
            };
            if let Some(nap) = nap {
                until = earliest(until, after(nap));
            }
            st.worker_idle = nap.is_none();
            sh.deferred_waits_until();
            st = wait_on(&sh.wake, st, until);
            st.worker_idle = false;
            sh.deferred_busy();
        }
    }

    /// With a spool: reads events back from disk into the queue while there
    /// is room.
    fn spool_upkeep(&mut self, mut st: MutexGuard<'w, State>) -> MutexGuard<'w, State> {
        let sh = self.sh;
        let cfg = &sh.config;
        if st.spool.is_none() {
            return st;
        }
        if st.held_unreadable > 0 && st.spilled == 0 {
            st = self.retry_unreadable(st);
        }
        // Within the queue's limits, in bytes too: read back a batch at a
        // time whatever their size, large events took memory far past
        // `queue_bytes`. (The size of the next record is known once it is
        // read: the last one read may pass the limit, as an emitted event
        // may when the queue is empty.)
        while st.spilled > 0
            && !st.out_of_time()
            && st.queue.len() < cfg.batch_size.max(self.max_batch)
            && st.queue.len() + st.in_flight < cfg.queue_events
            && st.bytes < cfg.queue_bytes
        {
            let Some(sp) = st.spool.as_mut() else { break };
            let next = sp.read_next();
            let io_errors = sp.take_io_errors();
            if io_errors > 0 {
                Counters::add(&sh.counters.spool_errors, io_errors);
            }
            // Events of a segment that could not be read: still on disk
            // (not confirmed), tried again later (`retry_unreadable`), and
            // read by the next emitter on the spool. Not failed: held
            // (counted spooled when the worker stops, as the next open sends
            // them) and passed over, so that a flush does not wait for them.
            let unreadable = sp.take_unreadable().min(st.spilled);
            if unreadable > 0 {
                st.held_unreadable += unreadable;
                st.pass_spilled(unreadable);
                sh.done.notify_all();
            }
            match next {
                Ok(Some(rec)) => {
                    let seq = st.spill_seq;
                    st.pass_spilled(1);
                    // Written for another sink (or mode): in this one's encoding.
                    let event = rec.event.into_form(sh.form);
                    st.bytes += event.size();
                    st.queue.push(seq, event, Some(rec.seq));
                    if st.oldest.is_none() {
                        st.oldest = Some(Instant::now());
                    }
                }
                other => {
                    // Fewer records on disk than expected (destroyed after
                    // the spool was opened), or the disk fails: those events
                    // are gone.
                    let n = st.spilled;
                    let error = match other {
                        Err(e) => {
                            Counters::add(&sh.counters.spool_errors, 1);
                            tracing::error!(error = %e, events = n, "spool read failed: events lost");
                            std::io::Error::new(e.kind(), format!("spool read failed: {e}"))
                        }
                        Ok(_) => {
                            tracing::error!(events = n, "spool: events missing from disk");
                            std::io::Error::other(
                                "spool: event missing from disk (its record was deleted or damaged)",
                            )
                        }
                    };
                    Counters::add(&sh.counters.failed, n);
                    st.pass_spilled(n);
                    sh.done.notify_all();
                    if n == 0 {
                        break;
                    }
                    // Reported like any failed event, once each, outside the
                    // lock (the callback may read the metrics): with neither
                    // id nor event, which only the lost records held. A
                    // flush waits for these reports too.
                    st.reporting += 1;
                    drop(st);
                    let error = Error::Io(error);
                    for _ in 0..n {
                        sh.report(Reason::Failed, "", None, &error);
                    }
                    sh.reported();
                    st = sh.lock();
                    break;
                }
            }
        }
        st
    }

    /// Events of segments skipped as unreadable, once such a segment reads
    /// again ([`Spool::retry_held`]): queued as events to send, after those
    /// emitted since (nothing is spilled now, so they take the next queue
    /// places), each still confirmed in the spool by its record. Within the
    /// queue's room, in events and bytes, or one segment's worth when the queue is empty (a
    /// segment may hold more events than the queue; not every segment that
    /// reads again: a moment at the open-files limit skips every segment
    /// left, and the whole spool came back into memory at once).
    fn retry_unreadable<'s>(&self, mut st: MutexGuard<'s, State>) -> MutexGuard<'s, State> {
        let sh = self.sh;
        let cfg = &sh.config;
        let empty = st.queue.is_empty() && st.in_flight == 0;
        let room = (cfg.queue_events as u64).saturating_sub((st.queue.len() + st.in_flight) as u64);
        let bytes = (cfg.queue_bytes as u64).saturating_sub(st.bytes as u64);
        let Some(sp) = st.spool.as_mut() else {
            return st;
        };
        let back = sp.retry_held(Instant::now(), room, bytes, empty);
        if back.is_empty() {
            return st;
        }
        let n = (back.len() as u64).min(st.held_unreadable);
        st.held_unreadable -= n;
        for rec in back {
            // Written for another sink (or mode): in this one's encoding.
            let event = rec.event.into_form(sh.form);
            st.bytes += event.size();
            let seq = st.next_seq;
            st.next_seq += 1;
            st.queue.push(seq, event, Some(rec.seq));
        }
        if st.oldest.is_none() {
            st.oldest = Some(Instant::now());
        }
        st
    }

    /// Phase 2 (pipelined): start a batch; a start that fails is settled now.
    fn start(&mut self, t: Taken) {
        let sink = &mut self.sink;
        match guarded(|| sink.start(&t.events, SendDeadline::live(self.sh))) {
            Ok(ticket) => self.started.push_back((ticket, t)),
            Err(e) => {
                // Settled at once, like any send.
                let r = self.answered(Err(e), t.events.len());
                let all = (0..t.events.len()).collect();
                self.deliver(&t, all, Some((r, t.at)));
                self.retire(t);
            }
        }
    }

    /// Phase 3 (pipelined): settle the oldest started batch by its ticket.
    fn settle_oldest(&mut self, until: Option<Instant>) {
        let Some((ticket, t)) = self.started.pop_front() else {
            return;
        };
        let sink = &mut self.sink;
        if let Some(until) = until
            && !guarded(|| Ok(sink.wait_ready(ticket, until))).unwrap_or(true)
        {
            self.started.push_front((ticket, t));
            // A sink that says "not yet" before `until` (one that does not
            // wait): the rest is waited here, cut short by a flush, a
            // shutdown or an emit that wakes the worker, instead of asking
            // it again at once (2 million calls in 500 ms, the state lock
            // taken at each).
            let st = self.sh.lock();
            if !st.shutdown {
                drop(wait_on(&self.sh.wake, st, Some(until)));
            }
            return;
        }
        let r = guarded(|| sink.settle(ticket, &t.events, SendDeadline::live(self.sh)));
        match self.answered(r, t.events.len()) {
            Ok(()) => self.delivered_all(&t),
            r @ Err(_) => {
                let all = (0..t.events.len()).collect();
                self.deliver(&t, all, Some((r, t.at)));
            }
        }
        self.retire(t);
    }

    /// Settles every started batch, oldest first, before the rest is given
    /// up on at shutdown: past its deadline the sink answers at once from
    /// the acknowledgements it has (with the breaker open past it, it waits
    /// for them until the deadline).
    fn settle_started(&mut self) {
        while !self.started.is_empty() {
            self.settle_oldest(None);
        }
    }

    /// Done with batch `t`: its buffers go back to the emitting threads
    /// (see `sink::pool`), and its vector, emptied, with its flight's spool
    /// numbers' vector (see [`Shared::settle`]), holds the next run the
    /// queue is given, so that batches do not each allocate them (large
    /// blocks to glibc: see [`Ends::AllDelivered`] and [`Run::from_parts`]).
    /// Outside the lock: a flight given up on left no vector, one is made.
    fn retire(&mut self, mut t: Taken) {
        if let Some(events) = Arc::get_mut(&mut t.events) {
            crate::sink::recycle(events);
            if self.spare_runs.len() < SPARE_RUNS {
                let cap = events.capacity();
                let spooled = self
                    .spooled_back
                    .pop()
                    .filter(|v| v.capacity() >= cap)
                    .unwrap_or_else(|| Vec::with_capacity(cap));
                let run = Run::from_parts(std::mem::take(events), spooled);
                self.spare_runs.push(run);
            }
        }
    }

    /// The whole batch `t` was delivered (by its first send, or by a retry
    /// of all of it).
    fn delivered_all(&mut self, t: &Taken) {
        self.breaker.success();
        self.sh
            .settle(t.id, &t.events, Ends::AllDelivered, &mut self.spooled_back);
    }

    /// The sink's answer `r` for a call of `n` events, made whole: an answer
    /// that names no event of the call fails all of it, and after a call that
    /// delivered something the sink's `flush` runs (a failed flush fails what
    /// the call delivered).
    fn answered(&mut self, r: Result<(), SendError>, n: usize) -> Result<(), SendError> {
        let r = r.map_err(|e| e.clamped(n));
        let delivered_some = match &r {
            Ok(()) => n > 0,
            Err(e) => (0..n).any(|i| e.failure_of(i).is_none()),
        };
        if !delivered_some {
            return r;
        }
        let sink = &mut self.sink;
        match guarded(|| sink.flush()) {
            Ok(()) => r,
            Err(fe) => {
                let fe = fe.clamped(n);
                Err(match r {
                    Ok(()) => fe,
                    Err(e) => e.merge(fe),
                })
            }
        }
    }

    /// Phases 2–4 for one batch: send the events at `todo` (positions in
    /// `t.events`), settle what the sink answered, wait and retry what may
    /// succeed later. `first` is the answer of an attempt made already (a
    /// pipelined start or settle), with when that attempt started.
    fn deliver(
        &mut self,
        t: &Taken,
        mut todo: Vec<usize>,
        mut first: Option<(Result<(), SendError>, Instant)>,
    ) {
        let sh = self.sh;
        let cfg = &sh.config;
        let mut attempt = 0u32;
        while !todo.is_empty() {
            let (r, sent) = match first.take() {
                Some(r) => r,
                None => {
                    let st = sh.lock();
                    if attempt > 0 && !st.out_of_time() {
                        // A retry that happens: counted once it is sure to,
                        // and only for a batch still in flight.
                        if !st.flights.iter().any(|f| f.id == t.id) {
                            return;
                        }
                        Counters::add(&sh.counters.retried, todo.len() as u64);
                    }
                    if st.out_of_time() {
                        // Started batches first, by their reports (see `take_batch`).
                        let st = if self.started.is_empty() {
                            st
                        } else {
                            drop(st);
                            self.settle_started();
                            sh.lock()
                        };
                        sh.give_up_all(st, Reason::ShutdownTimeout, &SHUTDOWN_TIMEOUT);
                        return;
                    }
                    drop(st);
                    let part = subset(&t.events, &todo);
                    let sink = &mut self.sink;
                    let sent = Instant::now();
                    let r = guarded(|| sink.send_by(&part, SendDeadline::live(sh)));
                    (self.answered(r, part.len()), sent)
                }
            };
            attempt += 1;
            let err = match r {
                // `todo` only ever loses events, in order: as long as the
                // batch, it is all of it.
                Ok(()) if todo.len() == t.events.len() => {
                    self.delivered_all(t);
                    return;
                }
                Ok(()) => {
                    self.breaker.success();
                    let ends: Vec<(usize, End<'_>)> =
                        todo.iter().map(|&i| (i, End::Delivered)).collect();
                    sh.settle(t.id, &t.events, Ends::These(&ends), &mut self.spooled_back);
                    return;
                }
                Err(e) => e,
            };
            // Shutdown may have begun while the sink worked: read it now.
            let (shutting, deadline) = {
                let st = sh.lock();
                (st.shutdown, st.deadline)
            };
            let exhausted = attempt >= cfg.retry.attempts();
            let mut ends: Vec<(usize, End<'_>)> = Vec::with_capacity(todo.len());
            let mut again = Vec::new();
            let mut after: Option<Duration> = None;
            // The longest `Retry-After` of the answer, retried or not: it
            // holds back every request, the next batch's too.
            let mut asked: Option<Duration> = None;
            // A retryable failure on the last attempt is a failed attempt
            // too: the breaker counts it (else with one attempt a batch it
            // never opened).
            let mut spent = false;
            for (j, &i) in todo.iter().enumerate() {
                match err.failure_of(j) {
                    None => ends.push((i, End::Delivered)),
                    Some(f) => match f.retry {
                        Retry::No => ends.push((i, End::Undelivered(Reason::Failed, &f.error))),
                        Retry::Yes { after: a } if exhausted => {
                            spent = true;
                            asked = asked.max(a);
                            ends.push((i, End::Undelivered(Reason::Failed, &f.error)));
                        }
                        Retry::Yes { after: a } => {
                            after = after.max(a);
                            asked = asked.max(a);
                            again.push((i, &f.error));
                        }
                    },
                }
            }
            let delivered_some = ends.iter().any(|(_, e)| matches!(e, End::Delivered));
            // Refused for good, with nothing to retry (an HTTP 400): the
            // sink answered, which is all a probe asks. Left open, the
            // breaker took the next lone retryable failure for a failed
            // probe (open again at once, for twice as long) and kept a
            // pipelined sink at one batch in flight.
            let answered = again.is_empty() && !spent;
            if delivered_some || answered {
                self.breaker.success();
            }
            if !again.is_empty() || spent {
                let was_open = self.breaker.is_open();
                self.breaker.failure(sent);
                if self.breaker.is_open()
                    && let Some(until) = self.breaker.wait_until()
                {
                    let open_for = until.saturating_duration_since(Instant::now());
                    if was_open {
                        tracing::debug!(?open_for, "probe failed: circuit breaker stays open");
                    } else {
                        tracing::warn!(?open_for, "sink failing: circuit breaker open");
                    }
                }
            }
            // Bounded as the retry's wait is; `take_batch` holds back the
            // next batch by it as by an open breaker (and at shutdown gives
            // up at once on what it would hold past the deadline).
            if let Some(a) = asked {
                self.breaker.hold_for(cfg.retry.retry_after_bound(a));
            }
            // Phase 4: how long until the next attempt; give up now on what
            // could only go out after the shutdown deadline.
            let mut wait = Duration::ZERO;
            if !again.is_empty() {
                wait = cfg.retry.backoff(attempt, after, jitter_rand());
                if let Some(b) = self.breaker.wait_until() {
                    wait = wait.max(b.saturating_duration_since(Instant::now()));
                }
                // No deadline (an unlimited shutdown): never too late.
                let too_late = shutting
                    && deadline
                        .is_some_and(|d| Instant::now().checked_add(wait).is_none_or(|w| w >= d));
                if too_late {
                    ends.extend(
                        again
                            .drain(..)
                            .map(|(i, e)| (i, End::Undelivered(Reason::ShutdownTimeout, e))),
                    );
                }
            }
            let open = sh.settle(t.id, &t.events, Ends::These(&ends), &mut self.spooled_back);
            if again.is_empty() || !open {
                return;
            }
            if let Some(&(_, error)) = again.first() {
                tracing::debug!(attempt, events = again.len(), ?wait, %error, "retrying");
            }
            todo = again.iter().map(|&(i, _)| i).collect();
            drop(ends);
            drop(err);
            if !self.wait_retry(wait) {
                let ends: Vec<(usize, End<'_>)> = todo
                    .iter()
                    .map(|&i| {
                        (
                            i,
                            End::Undelivered(Reason::ShutdownTimeout, &SHUTDOWN_TIMEOUT),
                        )
                    })
                    .collect();
                sh.settle(t.id, &t.events, Ends::These(&ends), &mut self.spooled_back);
                return;
            }
        }
    }

    /// Phase 4: sleeps `wait` before a retry. Returns `false` as soon as
    /// shutdown has begun and its deadline comes before the retry would
    /// (shutdown can begin during the wait: it wakes this one).
    fn wait_retry(&self, wait: Duration) -> bool {
        let sh = self.sh;
        let until = after(wait);
        let mut st = sh.lock();
        loop {
            if st.shutdown {
                let before_deadline = match (until, st.deadline) {
                    (_, None) => true,
                    (None, Some(_)) => false,
                    (Some(u), Some(d)) => u < d,
                };
                if !before_deadline {
                    return false;
                }
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                return true;
            }
            st = wait_on(&sh.wake, st, until);
        }
    }
}

/// The error shutdown-timeout events are reported with when shutdown began
/// during their retry wait.
static SHUTDOWN_TIMEOUT: Error = Error::Timeout(Phase::Shutdown);

/// The events at `todo`: a slice when they are contiguous (the common
/// case), else copies.
fn subset<'e>(events: &'e [Encoded], todo: &[usize]) -> Cow<'e, [Encoded]> {
    let (Some(&a), Some(&b)) = (todo.first(), todo.last()) else {
        return Cow::Borrowed(&[]);
    };
    if b >= a
        && b - a + 1 == todo.len()
        && let Some(s) = events.get(a..=b)
    {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        todo.iter()
            .filter_map(|&i| events.get(i).cloned())
            .collect(),
    )
}

/// Runs a call into a sink; a panicking sink fails the events of that call
/// for good instead of killing the worker.
fn guarded<T>(f: impl FnOnce() -> Result<T, SendError>) -> Result<T, SendError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(SendError::fatal(Error::Transport("sink panicked".into()))))
}

/// A fast random number for jitter.
fn jitter_rand() -> u64 {
    fastrand::u64(..)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_worker_naps_only_while_full_batches_come_fast() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pace::default();
        // One full batch says nothing about the rate yet.
        assert_eq!(p.nap(t0, 0, 100), None);
        p.full_batch(t0);
        assert_eq!(p.nap(t0, 0, 100), None);
        // A full batch every 400 µs: nap until about the next one is full.
        let t1 = t0 + Duration::from_micros(400);
        p.full_batch(t1);
        assert_eq!(p.nap(t1, 0, 100), Some(Duration::from_micros(400)));
        assert_eq!(p.nap(t1, 75, 100), Some(Duration::from_micros(100)));
        // Never shorter than NAP_MIN (a full queue, or a faster rate) ...
        assert_eq!(p.nap(t1, 100, 100), Some(NAP_MIN));
        assert_eq!(p.nap(t1, 250, 100), Some(NAP_MIN));
        // ... nor longer than NAP_MAX.
        let t2 = t1 + ms(3);
        p.full_batch(t2);
        assert_eq!(p.nap(t2, 0, 100), Some(NAP_MAX));
        // Batches BUSY_FILL apart, or none for BUSY_FILL: sleep until woken.
        let t3 = t2 + BUSY_FILL;
        assert_eq!(p.nap(t3, 0, 100), None);
        p.full_batch(t3);
        assert_eq!(p.nap(t3, 0, 100), None);
        // A batch of 0 is taken as 1, and a clock that went back as no time.
        let t4 = t3 + ms(1);
        p.full_batch(t4);
        assert_eq!(p.nap(t4, 0, 0), Some(NAP_MAX));
        assert_eq!(p.nap(t0, 0, 100), Some(NAP_MAX));
    }

    #[test]
    fn subset_borrows_runs_and_copies_gaps() {
        let e = crate::sink::minimal_event("e");
        let all = vec![e.clone(), e.clone(), e.clone(), e];
        assert!(matches!(subset(&all, &[1, 2, 3]), Cow::Borrowed(s) if s.len() == 3));
        assert!(matches!(subset(&all, &[0, 2]), Cow::Owned(v) if v.len() == 2));
        assert!(subset(&all, &[]).is_empty());
    }

    #[test]
    fn low_water_is_the_oldest_open_event() {
        let mut st = State {
            next_seq: 10,
            ..State::default()
        };
        assert_eq!(st.low_water(), 10);
        st.flights.push_back(Flight {
            id: 0,
            first_seq: 4,
            events: Arc::new(Vec::new()),
            spooled: vec![None; 3],
            open: vec![false, false, true],
            open_count: 1,
        });
        assert_eq!(st.low_water(), 6);
        // Events waiting only in the spool, after the flights.
        st.flights.clear();
        st.spilled = 3;
        st.spill_seq = 7;
        assert_eq!(st.low_water(), 7);
    }

    /// A sink that holds each send until the test lets one through (a
    /// permit each), and keeps the ids it was given.
    #[derive(Clone, Default)]
    struct Gate {
        permits: Arc<(Mutex<u32>, Condvar)>,
        sent: Arc<Mutex<Vec<String>>>,
        entered: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Gate {
        /// A gate that lets every send through.
        fn unlimited() -> Gate {
            Gate {
                permits: Arc::new((Mutex::new(u32::MAX), Condvar::new())),
                ..Gate::default()
            }
        }
    }

    impl Sink for Gate {
        fn encoding(&self) -> crate::sink::Encoding {
            crate::sink::Encoding::Json
        }
        fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
            self.entered
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (m, c) = &*self.permits;
            let mut permits = m.lock().unwrap_or_else(|e| e.into_inner());
            while *permits == 0 {
                permits = c.wait(permits).unwrap_or_else(|e| e.into_inner());
            }
            *permits -= 1;
            let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            sent.extend(events.iter().map(|e| e.id().to_owned()));
            Ok(())
        }
    }

    /// An emitter on `gate` that sends one event a batch, holds 2 000 bytes
    /// in memory (a larger event goes to disk only), and spools as `spool`.
    impl Gate {
        /// Lets every send through from now on.
        fn open(&self) {
            let (m, c) = &*self.permits;
            *m.lock().unwrap_or_else(|e| e.into_inner()) = u32::MAX;
            c.notify_all();
        }

        /// Opens the gate, flushes and shuts `em` down, removes its spool
        /// `dir`: the final metrics and the ids sent.
        fn open_and_finish(
            &self,
            em: crate::Emitter,
            dir: &std::path::Path,
        ) -> (crate::Metrics, Vec<String>) {
            self.open();
            em.flush().unwrap();
            let m = em.metrics();
            em.shutdown().unwrap();
            let _ = std::fs::remove_dir_all(dir);
            (m, self.sent.lock().unwrap().clone())
        }
    }

    fn one_at_a_time(gate: &Gate, spool: SpoolConfig) -> crate::Emitter {
        crate::Emitter::builder("/agents/t")
            .sink(gate.clone())
            .batch_size(1)
            .queue_bytes(2_000)
            .spool(spool)
            .build()
            .unwrap()
    }

    /// Polls `f` for up to 10 s.
    pub(crate) fn eventually(what: &str, f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "not within 10 s: {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The emitter end to end, in the case `low_water` missed: e1 waits on
    /// disk when a spool write fails and e2, newer, is queued in memory and
    /// sent first. A flush begun before e2 must still wait for e1.
    #[test]
    fn a_flush_waits_for_an_event_on_disk_when_a_newer_one_went_to_memory() {
        let dir = std::env::temp_dir().join(format!(
            "ossa-events-low-water-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let gate = Gate::default();
        let Gate {
            permits,
            sent,
            entered,
        } = gate.clone();
        let allow = |n: u32| {
            let (m, c) = &*permits;
            *m.lock().unwrap() = n;
            c.notify_all();
        };
        let em = one_at_a_time(&gate, SpoolConfig::new(&dir));
        let tick = |id| crate::EventBuilder::new().ty("dev.example.tick").id(id);
        // e0 is taken and held in the sink.
        em.emit(tick("e0")).unwrap();
        eventually("e0 in the sink", || {
            entered.load(std::sync::atomic::Ordering::SeqCst) == 1
        });
        // e1 is too large for the bytes left in memory: on disk only.
        let big = "x".repeat(3_000);
        em.emit(tick("e1").data_text("text/plain", &big)).unwrap();
        assert_eq!(em.shared().lock().spilled, 1);
        // A flush for e0 and e1.
        let flusher = {
            let (em, sent) = (em.clone(), sent.clone());
            std::thread::spawn(move || {
                let r = em.flush();
                (r, sent.lock().unwrap().clone())
            })
        };
        eventually("the flush waits", || em.shared().lock().done_waiters == 1);
        // The disk fails: e2 goes to memory, with a seq after e1's.
        if let Some(sp) = em.shared().lock().spool.as_mut() {
            sp.fail_appends = true;
        }
        em.emit(tick("e2")).unwrap();
        // The disk works again for e3 (on disk, behind e1), then fails for
        // e4: e2's and e4's seqs are among those of the events on disk,
        // and reading back passes over them.
        if let Some(sp) = em.shared().lock().spool.as_mut() {
            sp.fail_appends = false;
        }
        em.emit(tick("e3")).unwrap();
        if let Some(sp) = em.shared().lock().spool.as_mut() {
            sp.fail_appends = true;
        }
        em.emit(tick("e4")).unwrap();
        {
            let st = em.shared().lock();
            assert_eq!((st.spilled, st.spill_seq), (2, 1));
            assert_eq!(st.spill_skips, [2, 4]);
        }
        assert_eq!(em.metrics().spool_errors, 2);
        // e0 delivered, which wakes the flush, while e2 (newer than e1) is
        // in the sink and e1 still on disk; a flush that missed e1 would
        // return now.
        allow(1);
        eventually("e2 in the sink", || {
            entered.load(std::sync::atomic::Ordering::SeqCst) == 2
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !flusher.is_finished(),
            "the flush returned with e1 on disk: sent {:?}",
            sent.lock().unwrap()
        );
        allow(u32::MAX);
        let (report, sent_then) = flusher.join().unwrap();
        let report = report.unwrap();
        assert!(
            sent_then.iter().any(|id| id == "e1"),
            "the flush returned before e1 (on disk) was sent: sent {sent_then:?}, {report:?}"
        );
        let report = em.flush().unwrap();
        assert_eq!((report.delivered, report.failed), (5, 0));
        let mut all = sent.lock().unwrap().clone();
        all.sort();
        assert_eq!(all, ["e0", "e1", "e2", "e3", "e4"], "each sent once");
        let st = em.shared().lock();
        assert_eq!((st.spilled, st.spill_seq, st.next_seq), (0, 5, 5));
        assert!(st.spill_skips.is_empty());
        drop(st);
        em.shutdown().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Reading events back from disk passes over the `seq`s that events kept
    /// in memory took meanwhile: e1 on disk (1), e2 in memory (2), e3 on
    /// disk (3), e4 in memory (4).
    #[test]
    fn events_read_back_get_their_own_seqs_past_those_kept_in_memory() {
        let mut st = State {
            next_seq: 5,
            spilled: 2,
            spill_seq: 1,
            spill_skips: VecDeque::from([2, 4]),
            ..State::default()
        };
        assert_eq!(st.low_water(), 1);
        st.pass_spilled(1);
        assert_eq!((st.spilled, st.spill_seq), (1, 3), "e3 is 3, not e2's 2");
        st.pass_spilled(1);
        assert_eq!((st.spilled, st.spill_seq), (0, 5));
        assert!(st.spill_skips.is_empty());
        // Given up on or lost together: the same.
        st.spilled = 3;
        st.spill_seq = 5;
        st.spill_skips = VecDeque::from([6, 7]);
        st.pass_spilled(3);
        assert_eq!((st.spilled, st.spill_seq), (0, 10));
    }

    /// A spool write that fails while events wait on disk queues the event
    /// in memory with a newer `seq` than theirs; it may even be sent first.
    /// A flush must still wait for them.
    #[test]
    fn low_water_sees_events_on_disk_older_than_the_queue_and_the_flights() {
        let flight = |id, first_seq, open: Vec<bool>| Flight {
            id,
            first_seq,
            events: Arc::new(Vec::new()),
            spooled: Vec::new(),
            open_count: open.iter().filter(|&&o| o).count(),
            open,
        };
        let mut st = State {
            next_seq: 9,
            spilled: 3,
            spill_seq: 5,
            ..State::default()
        };
        st.queue.push(8, crate::sink::minimal_event("8"), None);
        assert_eq!(st.low_water(), 5, "on disk: older than the queue");
        let _ = st.queue.take_front(10);
        st.flights.push_back(flight(0, 8, vec![true]));
        assert_eq!(st.low_water(), 5, "on disk: older than the flight");
        // Read back and sent after it.
        st.spilled = 0;
        st.spill_seq = 8;
        st.flights.push_back(flight(1, 5, vec![false, true, true]));
        assert_eq!(st.low_water(), 6, "a later flight with older events");
        st.flights.pop_back();
        assert_eq!(st.low_water(), 8);
        st.flights.clear();
        assert_eq!(st.low_water(), 9);
    }

    /// A spool directory of a test's own.
    fn test_dir(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "ossa-events-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ))
    }

    /// Under `SyncPolicy::Always`, the next appends' syncs fail (after the
    /// record is written) while `on`.
    fn fail_syncs(em: &crate::Emitter, on: bool) {
        if let Some(sp) = em.shared().lock().spool.as_mut() {
            sp.fail_syncs = on;
        }
    }

    fn tick(id: &str) -> crate::EventBuilder<'_> {
        crate::EventBuilder::new().ty("dev.example.tick").id(id)
    }

    /// A sync that fails after the record is written leaves the event the
    /// record's (on disk, counted in `spool_errors`), not in memory only
    /// with its record never confirmed: that record held back every
    /// deletion after it, and a spool at its cap under `Block` refused 99
    /// of the next 150 events, the collector up (the review's run).
    #[test]
    fn a_failed_sync_after_the_write_leaves_the_event_its_record() {
        let dir = test_dir("failed-sync");
        let em = crate::Emitter::builder("/agents/t")
            .sink(Gate::unlimited())
            .flush_interval(Duration::from_millis(5))
            .spool(
                SpoolConfig::new(&dir)
                    .sync(SyncPolicy::Always)
                    .segment_bytes(4096)
                    .max_bytes(8192)
                    .when_full(WhenFull::Block(Duration::from_millis(200))),
            )
            .build()
            .unwrap();
        fail_syncs(&em, true);
        em.emit(tick("e0")).unwrap();
        fail_syncs(&em, false);
        let mut refused = 0;
        for i in 0..150 {
            if em.emit(tick(&format!("n{i}"))).is_err() {
                refused += 1;
            }
            em.flush().unwrap();
        }
        let m = em.metrics();
        em.shutdown().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((refused, m.delivered, m.spool_errors), (0, 151, 1), "{m:?}");
    }

    /// The same while events wait on disk: each event is sent once, in its
    /// place (reading took the record of e2, which was in memory, for e3's,
    /// and passed over e3's: e2 went twice, e3 not before the next open),
    /// and the next emitter finds nothing left.
    #[test]
    fn a_failed_sync_while_events_wait_on_disk_sends_each_once() {
        let dir = test_dir("failed-sync-spilled");
        let gate = Gate::default();
        let Gate {
            permits,
            sent,
            entered,
        } = gate.clone();
        let build = || one_at_a_time(&gate, SpoolConfig::new(&dir).sync(SyncPolicy::Always));
        let em = build();
        em.emit(tick("e0")).unwrap();
        eventually("e0 in the sink", || {
            entered.load(std::sync::atomic::Ordering::SeqCst) == 1
        });
        // Past the queue's bytes: e1 waits on disk.
        em.emit(tick("e1").data_text("text/plain", &"x".repeat(3_000)))
            .unwrap();
        fail_syncs(&em, true);
        em.emit(tick("e2")).unwrap();
        fail_syncs(&em, false);
        em.emit(tick("e3")).unwrap();
        {
            let (m, c) = &*permits;
            *m.lock().unwrap() = u32::MAX;
            c.notify_all();
        }
        em.flush().unwrap();
        let m = em.metrics();
        em.shutdown().unwrap();
        drop(em);
        let mut first = std::mem::take(&mut *sent.lock().unwrap());
        first.sort();
        assert_eq!(first, ["e0", "e1", "e2", "e3"], "{m:?}");
        assert_eq!((m.delivered, m.failed, m.spool_errors), (4, 0, 1), "{m:?}");
        let em = build();
        em.flush().unwrap();
        let replayed = em.metrics().replayed;
        em.shutdown().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(replayed, 0);
        assert!(
            sent.lock().unwrap().is_empty(),
            "{:?}",
            sent.lock().unwrap()
        );
    }

    /// An emitter over `gate` with a spool in `dir` of two 4 KiB segments
    /// under `WhenFull::DropOldest`, batches of 1 and a 2 000-byte queue
    /// (larger events wait on disk).
    fn drop_oldest_emitter(dir: &std::path::Path, gate: &Gate) -> crate::EmitterBuilder {
        crate::Emitter::builder("/agents/t")
            .sink(gate.clone())
            .batch_size(1)
            .queue_bytes(2_000)
            .spool(
                SpoolConfig::new(dir)
                    .sync(SyncPolicy::Never)
                    .segment_bytes(4096)
                    .max_bytes(8192)
                    .when_full(WhenFull::DropOldest),
            )
    }

    /// `WhenFull::DropOldest` when the ledger cannot be written (here a
    /// directory stands where it is written first; a full disk does the
    /// same): the oldest segment's events that wait only on disk are still
    /// counted and reported dropped. Before, `drop_oldest` had forgotten the
    /// segment (and moved reading past it) when its ledger write failed,
    /// then returned the error in the place of those events: none was
    /// reported, and the worker later counted them failed as "missing from
    /// disk".
    #[test]
    fn a_segment_dropped_at_the_cap_reports_its_events_when_the_ledger_fails() {
        let dir = test_dir("drop-oldest-ledger");
        let gate = Gate::default();
        let reported = Arc::new(Mutex::new(Vec::<String>::new()));
        let r = reported.clone();
        let em = drop_oldest_emitter(&dir, &gate)
            .on_undelivered(move |u| r.lock().unwrap().push(u.id.to_owned()))
            .build()
            .unwrap();
        em.emit(tick("e0")).unwrap();
        eventually("e0 in the sink", || {
            gate.entered.load(std::sync::atomic::Ordering::SeqCst) == 1
        });
        // Each larger than the queue's bytes: they wait on disk, three a
        // segment, two segments to the cap.
        let big = "x".repeat(1_100);
        let mut ids = vec!["e0".to_owned()];
        for i in 1..=6 {
            let id = format!("e{i}");
            em.emit(tick(&id).data_text("text/plain", &big)).unwrap();
            ids.push(id);
        }
        std::fs::create_dir(dir.join("ledger.tmp")).unwrap();
        for i in 7..=9 {
            let id = format!("e{i}");
            let _ = em.emit(tick(&id).data_text("text/plain", &big));
            ids.push(id);
        }
        std::fs::remove_dir(dir.join("ledger.tmp")).unwrap();
        let (m, sent) = gate.open_and_finish(em, &dir);
        let reported = reported.lock().unwrap().clone();
        let unaccounted: Vec<&String> = ids
            .iter()
            .filter(|id| !sent.contains(id) && !reported.contains(id))
            .collect();
        assert!(unaccounted.is_empty(), "{unaccounted:?} {m:?}");
        assert_eq!(m.failed, 0, "{m:?}");
    }

    /// Events that wait only on disk and are gone from it when the worker
    /// reads them back (here their segment file is deleted behind the
    /// emitter's back; damage found while reading does the same) are
    /// counted failed and reported once each to `on_undelivered`, with an
    /// empty id and no event (neither is known: only their count is), and
    /// an error that names the spool. Before, they were counted failed and
    /// never reported, against the contract that every undelivered event
    /// is reported once.
    #[test]
    fn events_lost_from_the_spool_are_reported_without_an_id() {
        let dir = test_dir("lost-from-disk");
        let gate = Gate::default();
        let reported = Arc::new(Mutex::new(Vec::<(Reason, String, bool, String)>::new()));
        let r = reported.clone();
        let em = crate::Emitter::builder("/agents/t")
            .sink(gate.clone())
            .batch_size(1)
            .queue_bytes(2_000)
            .on_undelivered(move |u| {
                r.lock().unwrap().push((
                    u.reason,
                    u.id.to_owned(),
                    u.event.is_some(),
                    u.error.to_string(),
                ))
            })
            .spool(SpoolConfig::new(&dir).sync(SyncPolicy::Never))
            .build()
            .unwrap();
        em.emit(tick("e0")).unwrap();
        eventually("e0 in the sink", || {
            gate.entered.load(std::sync::atomic::Ordering::SeqCst) == 1
        });
        // Past the queue's bytes: e1 and e2 wait on disk only.
        let big = "x".repeat(3_000);
        em.emit(tick("e1").data_text("text/plain", &big)).unwrap();
        em.emit(tick("e2").data_text("text/plain", &big)).unwrap();
        assert_eq!(em.shared().lock().spilled, 2);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "seg") {
                std::fs::remove_file(path).unwrap();
            }
        }
        let (m, sent) = gate.open_and_finish(em, &dir);
        assert_eq!(sent, ["e0"], "{m:?}");
        assert_eq!((m.delivered, m.failed), (1, 2), "{m:?}");
        let reported = reported.lock().unwrap().clone();
        assert_eq!(
            reported.len(),
            2,
            "each lost event reported once: {reported:?}"
        );
        for (reason, id, event, error) in &reported {
            assert_eq!((*reason, id.as_str(), *event), (Reason::Failed, "", false));
            assert!(error.contains("spool"), "{error}");
        }
    }

    /// A segment that cannot be read for a moment while events wait on
    /// disk (here a symlink loop, `ELOOP`; `EMFILE` or `EIO` do the same)
    /// is left unconfirmed for the next open, which holds the spool's
    /// low-water mark at it. The segments after it are still deleted once
    /// all their records are confirmed: the spool does not reach its cap.
    /// Before, only segments below the low-water mark were deleted, so none
    /// was for the rest of the run, and under `Block` (or `DropNewest`)
    /// every event was refused once the cap was reached.
    #[test]
    fn an_unreadable_segment_does_not_stop_later_deletions() {
        for mapped in [false, true] {
            let dir = test_dir("unreadable-pins");
            let gate = Gate::default();
            let em = one_at_a_time(
                &gate,
                SpoolConfig::new(&dir)
                    .sync(SyncPolicy::Never)
                    .segment_bytes(4096)
                    .max_bytes(16384)
                    .when_full(WhenFull::Block(Duration::from_secs(1)))
                    .mapped(mapped),
            );
            em.emit(tick("e0")).unwrap();
            eventually("e0 in the sink", || {
                gate.entered.load(std::sync::atomic::Ordering::SeqCst) == 1
            });
            // Larger than the queue's bytes left: they wait on disk, three
            // a segment.
            let big = "x".repeat(1_100);
            for i in 1..=6 {
                em.emit(tick(&format!("e{i}")).data_text("text/plain", &big))
                    .unwrap();
            }
            let seg0 = dir.join(format!("{:020}.seg", 0));
            let aside = dir.join("aside");
            std::fs::rename(&seg0, &aside).unwrap();
            std::os::unix::fs::symlink(&seg0, &seg0).unwrap();
            gate.open();
            em.flush().unwrap();
            let mut refused = 0;
            for i in 0..60 {
                if em
                    .emit(tick(&format!("n{i}")).data_text("text/plain", &big))
                    .is_err()
                {
                    refused += 1;
                    break; // the cap stays reached: each would wait 1 s
                }
                em.flush().unwrap();
            }
            let m = em.metrics();
            let segments = std::fs::read_dir(&dir)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "seg"))
                })
                .count();
            let kept = std::fs::symlink_metadata(&seg0).is_ok();
            em.shutdown().unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            assert_eq!(
                refused, 0,
                "mapped {mapped}: {m:?}, {segments} segment files"
            );
            assert!(m.spool_errors >= 1, "the segment was read after all: {m:?}");
            assert!(
                kept,
                "mapped {mapped}: the unreadable segment is left for the next open"
            );
            assert!(
                segments <= 4,
                "mapped {mapped}: {segments} segment files, {m:?}"
            );
        }
    }

    /// `WhenFull::DropOldest` with several threads at the cap: the spool
    /// never holds more than its cap. Dropping the oldest segment reports
    /// its events outside the lock (here a callback that takes a moment);
    /// an emit on another thread can take the room meanwhile, so the room
    /// is looked at again before the record is written. Before, it was
    /// written all the same, a record past the cap (a mapped spool, a
    /// segment).
    #[test]
    fn drop_oldest_under_concurrent_emits_stays_under_the_cap() {
        let dir = test_dir("drop-oldest-race");
        let gate = Gate::default();
        let em = drop_oldest_emitter(&dir, &gate)
            .on_undelivered(|_| std::thread::sleep(Duration::from_millis(2)))
            .build()
            .unwrap();
        em.emit(tick("e0")).unwrap();
        eventually("e0 in the sink", || {
            gate.entered.load(std::sync::atomic::Ordering::SeqCst) == 1
        });
        let most = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (em, most) = (em.clone(), most.clone());
                std::thread::spawn(move || {
                    let big = "x".repeat(1_100);
                    for i in 0..40 {
                        let id = format!("t{t}-{i}");
                        let _ = em.emit(tick(&id).data_text("text/plain", &big));
                        let bytes = em.metrics().spool_bytes;
                        most.fetch_max(bytes, std::sync::atomic::Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (m, _) = gate.open_and_finish(em, &dir);
        let most = most.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            most <= 8192,
            "{most} bytes on disk, over the 8192 cap: {m:?}"
        );
        assert!(m.evicted > 0, "the cap was never reached: {m:?}");
    }

    /// An event whose spool record is larger than the spool reads back
    /// (64 MiB), under the default 1 GiB cap: `emit()` either refuses it
    /// (counted and reported) or the event is delivered. Before, it was
    /// appended, and read back from disk as damage: `emit()` had said `Ok`,
    /// and the event ended failed, counted in `spool_corrupt`.
    #[test]
    fn an_event_the_spool_cannot_read_back_is_refused_not_lost() {
        let dir = test_dir("record-too-large");
        let gate = Gate::default();
        let em = one_at_a_time(&gate, SpoolConfig::new(&dir).sync(SyncPolicy::Never));
        em.emit(tick("e0")).unwrap();
        eventually("e0 in the sink", || {
            gate.entered.load(std::sync::atomic::Ordering::SeqCst) == 1
        });
        // Past the queue's bytes: on disk only, read back when sent.
        let huge = "x".repeat((64 << 20) + 1);
        let accepted = em.emit(tick("huge").data_text("text/plain", &huge)).is_ok();
        drop(huge);
        let (m, sent) = gate.open_and_finish(em, &dir);
        assert_eq!(accepted, sent.contains(&"huge".to_owned()), "{m:?}");
        assert_eq!((m.failed, m.spool_corrupt), (0, 0), "{m:?}");
    }

    /// An event nearly as large as the spool's cap fills a segment of its
    /// own, past `segment_bytes`; once it is delivered, the spool takes the
    /// next events under every [`WhenFull`]. Before, that segment stayed the
    /// last one (only a segment with a later one is deleted, and
    /// `drop_oldest` keeps the segment being written), so every event of
    /// more than the few bytes left under the cap was refused
    /// (`SpoolFull`), for good: across restarts too, as the segment was
    /// reopened for appending. (Found by the spool review.)
    #[test]
    fn a_delivered_event_near_the_cap_does_not_wedge_the_spool() {
        let policies = [
            WhenFull::DropOldest,
            WhenFull::Block(Duration::from_millis(300)),
            WhenFull::DropNewest,
        ];
        for (when_full, mapped) in policies.into_iter().flat_map(|w| [(w, false), (w, true)]) {
            let dir = test_dir("near-cap");
            let em = crate::Emitter::builder("/agents/t")
                .sink(Gate::unlimited())
                .flush_interval(Duration::from_millis(5))
                .spool(
                    SpoolConfig::new(&dir)
                        .sync(SyncPolicy::Never)
                        .segment_bytes(4096)
                        .max_bytes(8192)
                        .when_full(when_full)
                        .mapped(mapped),
                )
                .build()
                .unwrap();
            let big = "b".repeat(7000);
            em.emit(tick("big").subject(&big)).unwrap();
            em.flush().unwrap();
            let small = "s".repeat(1500);
            let mut refused = 0;
            for i in 0..10 {
                if em.emit(tick(&format!("n{i}")).subject(&small)).is_err() {
                    refused += 1;
                }
                em.flush().unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            let m = em.metrics();
            em.shutdown().unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            assert_eq!(
                (refused, m.delivered),
                (0, 11),
                "{when_full:?}, mapped {mapped}: {m:?}"
            );
        }
    }

    /// A sink that takes `max` events a call and counts what it is given.
    struct Small {
        max: usize,
        got: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Sink for Small {
        fn max_batch(&self) -> usize {
            self.max
        }
        fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
            self.got
                .fetch_add(events.len(), std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    /// A sink that takes fewer events a call than the batch size: a full
    /// batch (the configured size) goes out at once, in the sink's calls,
    /// not one call now and the rest at the flush interval.
    #[test]
    fn a_full_batch_goes_out_at_once_to_a_sink_that_takes_fewer_a_call() {
        let got = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let em = crate::Emitter::builder("/agents/t")
            .sink(Small {
                max: 10,
                got: got.clone(),
            })
            .batch_size(100)
            .flush_interval(Duration::from_secs(60))
            .build()
            .unwrap();
        for i in 0..100 {
            em.emit(tick(&format!("e{i}"))).unwrap();
        }
        eventually("the full batch delivered", || {
            got.load(std::sync::atomic::Ordering::SeqCst) == 100
        });
        em.shutdown().unwrap();
    }

    /// A queue that reaches its capacity below a batch is sent at once, as
    /// `queue_capacity` says: the worker is woken, not left to sleep until
    /// the flush interval (or until an event is refused for want of room).
    #[test]
    fn a_queue_at_its_capacity_is_sent_at_once() {
        let got = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let em = crate::Emitter::builder("/agents/t")
            .sink(Small {
                max: usize::MAX,
                got: got.clone(),
            })
            .batch_size(100)
            .queue_capacity(3)
            .flush_interval(Duration::from_secs(60))
            .build()
            .unwrap();
        em.emit(tick("e0")).unwrap();
        // The worker has looked at the one event and sleeps.
        eventually("the worker sleeps", || em.shared().lock().worker_idle);
        em.emit(tick("e1")).unwrap();
        em.emit(tick("e2")).unwrap();
        eventually("the full queue delivered", || {
            got.load(std::sync::atomic::Ordering::SeqCst) == 3
        });
        em.shutdown().unwrap();
    }
}

#[cfg(test)]
mod shutdown_and_hold_back {
    use super::tests::eventually;
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    fn tick(id: &str) -> crate::EventBuilder<'_> {
        crate::EventBuilder::new().ty("dev.example.tick").id(id)
    }

    /// A sink that delivers everything and whose drop takes a while, as a
    /// Kafka producer's does while librdkafka hands over what it holds.
    struct SlowDrop {
        dropping: Arc<AtomicBool>,
        dropped: Arc<AtomicBool>,
    }

    impl Sink for SlowDrop {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            Ok(())
        }
    }

    impl Drop for SlowDrop {
        fn drop(&mut self) {
            self.dropping.store(true, SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            self.dropped.store(true, SeqCst);
        }
    }

    /// Two threads shut down while the worker drops its sink: neither
    /// returns before the sink is dropped. Before, the one that did not
    /// hold the worker's handle returned at once (every event had ended),
    /// the sink still being dropped.
    #[test]
    fn every_shutdown_returns_after_the_worker_thread_ended() {
        let dropping = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicBool::new(false));
        let em = crate::Emitter::builder("/agents/t")
            .sink(SlowDrop {
                dropping: dropping.clone(),
                dropped: dropped.clone(),
            })
            .shutdown_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        em.emit(tick("e0")).unwrap();
        let first = {
            let (em, dropped) = (em.clone(), dropped.clone());
            std::thread::spawn(move || {
                let r = em.shutdown().map(|r| r.delivered);
                (r, dropped.load(SeqCst))
            })
        };
        eventually("the sink is being dropped", || dropping.load(SeqCst));
        let second = em.shutdown().map(|r| r.delivered);
        assert!(
            dropped.load(SeqCst),
            "the second shutdown returned while the sink was being dropped: {second:?}"
        );
        let (first, first_saw_dropped) = first.join().unwrap();
        assert!(first_saw_dropped, "{first:?}");
        assert_eq!((first.unwrap(), second.unwrap()), (1, 1));
    }

    /// A collector that answers its first request `429` with `Retry-After`
    /// and takes the others; the times the sink was called.
    #[derive(Clone)]
    struct Throttled {
        after: Duration,
        calls: Arc<Mutex<Vec<Instant>>>,
    }

    impl Throttled {
        fn new(after: Duration) -> Throttled {
            Throttled {
                after,
                calls: Arc::default(),
            }
        }
        fn calls(&self) -> Vec<Instant> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Sink for Throttled {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            let mut calls = self.calls.lock().unwrap();
            calls.push(Instant::now());
            if calls.len() > 1 {
                return Ok(());
            }
            Err(SendError::retryable(
                Error::HttpStatus {
                    status: 429,
                    body: String::new(),
                },
                Some(self.after),
            ))
        }
    }

    fn throttled_emitter(sink: &Throttled, retry: RetryPolicy) -> crate::Emitter {
        crate::Emitter::builder("/agents/t")
            .sink(sink.clone())
            .batch_size(1)
            .flush_interval(Duration::from_millis(1))
            .retry(retry)
            .build()
            .unwrap()
    }

    /// With no retries, a `Retry-After` still holds back the next batch:
    /// the collector asked for no request before then (RFC 9110 §10.2.3).
    /// Before, e1 went at once, into the same refusal.
    #[test]
    fn a_retry_after_holds_back_the_next_batch() {
        let sink = Throttled::new(Duration::from_millis(700));
        let em = throttled_emitter(&sink, RetryPolicy::none());
        em.emit(tick("e0")).unwrap();
        em.flush().unwrap();
        let answered = Instant::now();
        assert_eq!(em.metrics().failed, 1);
        em.emit(tick("e1")).unwrap();
        let r = em.flush_within(Duration::from_secs(10)).unwrap();
        let calls = sink.calls();
        em.shutdown().unwrap();
        assert_eq!((r.delivered, r.failed, calls.len()), (1, 1, 2), "{r:?}");
        let held = calls[1].saturating_duration_since(answered);
        assert!(held >= Duration::from_millis(600), "e1 went after {held:?}");
    }

    /// The hold is bounded as the retry's is (`retry_after_cap`), and never
    /// outlasts shutdown's deadline: what it would keep past it ends
    /// `shutdown_timeout` then, the collector not asked again.
    #[test]
    fn a_retry_after_hold_is_capped_and_ends_at_the_shutdown_deadline() {
        let sink = Throttled::new(Duration::from_secs(3600));
        let capped = RetryPolicy::none().retry_after_cap(Duration::from_millis(100));
        let em = throttled_emitter(&sink, capped);
        em.emit(tick("e0")).unwrap();
        em.flush().unwrap();
        em.emit(tick("e1")).unwrap();
        let r = em.flush_within(Duration::from_secs(10)).unwrap();
        em.shutdown().unwrap();
        assert_eq!((r.delivered, r.failed, sink.calls().len()), (1, 1, 2));

        let sink = Throttled::new(Duration::from_secs(3600));
        let em = throttled_emitter(&sink, RetryPolicy::none());
        em.emit(tick("e0")).unwrap();
        em.flush().unwrap();
        em.emit(tick("e1")).unwrap();
        em.shutdown_within(Duration::from_millis(200)).unwrap();
        let m = em.metrics();
        let calls = sink.calls().len();
        assert_eq!((m.failed, m.shutdown_timeout, calls), (1, 1, 1), "{m:?}");
    }
}
