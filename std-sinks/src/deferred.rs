//! The events [`OssaLayer`](crate::tracing_layer::OssaLayer) has put off:
//! what each needs to be built later, in the order the spans made them,
//! off the thread that made them.
//!
//! A span's start and end events cost the layer only a push here (a
//! snapshot of what the event reads, taken with a monotonic-clock read when
//! it happened). The events are built, validated, encoded and queued by the
//! normal emit pipeline later, by whoever drains first:
//!
//! ```text
//!  span enter/close ──push──► deferred ──drain──► emit pipeline ──► queue ──► worker …
//!                               │  ▲                (ids, traceparent, schemas,
//!      full: the pusher drains ─┘  │                 sequence, spool, counters)
//!                                  │
//!   drainers: the worker, before it takes a batch (never waits: when the
//!             queue is full it keeps the built event first in line and sends);
//!             emit()/emit_event() when something is put off (an event made
//!             inside a span goes after that span's start);
//!             flush(), shutdown(), the drop of the last handle (so they count
//!             every event made before them)
//! ```
//!
//! One drainer at a time (the `drain` lock), taking items in order: a
//! span's start is queued before its end, and before what any thread emits
//! after it. Until drained, an event is not `emitted` in
//! [`Metrics`](crate::Metrics). At most `queue_capacity` events, holding at
//! most `queue_bytes` (snapshots and their text), wait here;
//! a push past that follows the emitter's [`Overflow`] policy: `DropNewest`
//! refuses the new event (counted in `dropped`, reported under a new id, as
//! it was never built), `Block` builds what waits on the pusher's thread,
//! waiting for room at most its limit in all, then refuses it. A caller's
//! `emit` that drains first waits for room at most that limit in all too,
//! its own event included; when the limit runs out with an event put off
//! still unqueued (held first in line, for the worker), the caller's event
//! is refused rather than queued ahead of it.
//! With a spool nothing is put off: the layer's events are built on the
//! span's thread, so they are on disk when the span call returns. Events put off before shutdown began are built and
//! queued during it (until its deadline, like queued ones); those still
//! here then (or still being queued, by a flush say) end as the queued
//! ones do, counted in `emitted` and `shutdown_timeout` and reported
//! `ShutdownTimeout` (they were made before the shutdown: no overflow
//! policy refused them); those made after it began are refused with
//! [`Error::ShutDown`], counted and reported like a late `emit`.
//!
//! Waking the worker: a push wakes it only when it sleeps until woken (its
//! queue was empty) and this is the first item, or when the items fill a
//! batch; else it finds them when it next wakes, within the flush interval.
//! The worker sets its state, then reads the item count; a push adds to the
//! count, then reads the state (both sequentially consistent): one of the
//! two sees the other, and the pusher takes the worker's lock before it
//! notifies, so the worker is asleep by then or will look again.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use crate::errors::Error;
use crate::handle::{Overflow, Reason, emit_on};
use crate::metrics::Counters;
use crate::thread_mark::ThreadMark;
use crate::tracing_layer::Later;
use crate::worker::{Drained, Held, How, Refused, Room, Shared};

/// Room for this many items is kept between drains (~1 MB); a buffer a
/// burst grew past it is let go once drained.
const KEEP_ITEMS: usize = 4096;

/// The worker is working (sending, settling, draining).
const BUSY: u8 = 0;
/// The worker sleeps until a time it knows (the interval, the breaker).
const WAITS_UNTIL: u8 = 1;
/// The worker sleeps until woken: only a push can tell it about new items.
const WAITS_FOR_EVENTS: u8 = 2;

/// What the one drainer at a time holds: what it took from the queue and
/// has not built yet, older than anything in the queue.
#[derive(Default)]
struct Taken {
    /// Built and encoded already, and handed back by a queue without room
    /// (the worker does not wait for room): the first to go next time.
    held: Option<Held>,
    /// Taken from the queue all at once (a swap of two buffers, so a push
    /// never waits for more than that).
    later: VecDeque<Later>,
}

struct Items {
    queue: VecDeque<Later>,
    /// Shutdown has begun: later pushes are emitted at once (and refused).
    closed: bool,
}

/// The deferred queue, in the emitter's shared state.
pub(crate) struct Deferred {
    items: Mutex<Items>,
    /// Items pushed and not yet through the emit pipeline (being drained
    /// included): 0 means every push so far has been queued or refused.
    len: AtomicUsize,
    /// Memory the waiting items hold ([`Later::size`]), bounded by the
    /// emitter's `queue_bytes` as `len` is by `queue_capacity`.
    bytes: AtomicUsize,
    /// Held by the one drainer at a time.
    drain: Mutex<Taken>,
    /// What the worker is doing ([`BUSY`], [`WAITS_UNTIL`],
    /// [`WAITS_FOR_EVENTS`]), for the push to know when to wake it.
    worker: AtomicU8,
}

thread_local! {
    /// The deferred queue this thread is draining (its address), if any: an
    /// `on_undelivered` callback that emits from inside a drain must not
    /// wait for the drain lock its own thread holds.
    static DRAINING: Cell<usize> = const { Cell::new(0) };
}

thread_local! {
    /// Reports made while this thread drains (under the drain lock), made
    /// once the lock is released: an `on_undelivered` callback that waits
    /// for a lock that an emitting thread holds would otherwise hold up
    /// that thread's `emit()` (which waits for the drain lock) for good.
    static POSTPONED: RefCell<Vec<(Reason, String, Option<crate::sink::Encoded>)>> =
        const { RefCell::new(Vec::new()) };
}

/// From [`Shared::report`]: whether this report is to be made after the
/// drain this thread is in (see [`POSTPONED`]); it is kept if so.
pub(crate) fn postpone_report(
    d: &Deferred,
    reason: Reason,
    id: &str,
    event: Option<&crate::sink::Encoded>,
) -> bool {
    if !ThreadMark::is_here(&DRAINING, d) {
        return false;
    }
    // Gone when this thread is ending (a drain made from a thread-local's
    // destructor, after this one's ran): the report is made now, as outside
    // a drain. `with` panicked there, and a panic in a thread-local's
    // destructor aborts the process.
    POSTPONED
        .try_with(|p| p.borrow_mut().push((reason, id.to_owned(), event.cloned())))
        .is_ok()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is whole before release.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// [`lock`], waiting no later than `until`: `None` then. Another drainer
/// holds the drain lock while it waits for room (a span thread at capacity
/// under `Overflow::Block`, up to its limit), and a flush or a shutdown
/// that waited for it with a plain `lock` overran its own limit by the
/// other's (9.8 s for a 200 ms `flush_within` behind a 5 s `Block`), and a
/// shutdown could not even begin. Polled: the lock is contended only while
/// two threads drain, and a `parking_lot` mutex (`try_lock_until`) would
/// add a crate to the `tracing` feature for this one wait.
fn lock_until<T>(m: &Mutex<T>, until: std::time::Instant) -> Option<MutexGuard<'_, T>> {
    const STEP: std::time::Duration = std::time::Duration::from_micros(200);
    loop {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return None;
                }
                std::thread::sleep(left.min(STEP));
            }
        }
    }
}

impl Deferred {
    pub(crate) fn new() -> Self {
        Deferred {
            items: Mutex::new(Items {
                queue: VecDeque::new(),
                closed: false,
            }),
            len: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            drain: Mutex::new(Taken::default()),
            worker: AtomicU8::new(BUSY),
        }
    }

    /// Items waiting (or being drained).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether an item of `size` bytes finds no room (by count, or by
    /// bytes unless nothing waits: one item always fits, as in the queue).
    fn full(&self, sh: &Shared, size: usize) -> bool {
        let len = self.len.load(Ordering::Relaxed);
        len >= sh.config.queue_events
            || len > 0
                && self.bytes.load(Ordering::Relaxed).saturating_add(size) > sh.config.queue_bytes
    }

    /// Puts `later` off. At capacity the emitter's `Overflow` policy
    /// decides: under `Block` the caller drains first (it pays), under
    /// `DropNewest` the event is refused (counted and reported dropped).
    /// After shutdown began it is emitted at once (and refused, counted and
    /// reported like a late `emit`). Wakes a worker that sleeps until woken
    /// when this is the first item, and one that sleeps at all when the
    /// items fill a batch or the capacity; never under a lock.
    pub(crate) fn push(&self, sh: &Shared, later: Later) {
        let size = later.size();
        if self.full(sh, size) {
            // At capacity the emitter's `Overflow` policy decides, as for a
            // full queue: `DropNewest` refuses this event at once; `Block`
            // builds what waits on this thread, waiting for room at most
            // its limit in all (not per event), then refuses it.
            if let Overflow::Block(_) = sh.config.overflow {
                self.drain(sh, caller_room(sh), usize::MAX);
            }
            if self.full(sh, size) {
                refuse_new(sh);
                return;
            }
        }
        let mut items = lock(&self.items);
        if items.closed {
            drop(items);
            self.drain(sh, Room::Policy(None), usize::MAX);
            let _ = sh.answered_at_emit(build(sh, later, How::EMIT));
            return;
        }
        items.queue.push_back(later);
        self.bytes.fetch_add(size, Ordering::Relaxed);
        let n = self.len.fetch_add(1, Ordering::SeqCst) + 1;
        drop(items);
        // Against the worker's check (it sets its state, then reads `len`):
        // one of the two sees the other. Items that reach the capacity
        // below a batch wake it too, as a queue at its capacity does: left
        // until the flush interval, the next push found no room and was
        // refused under `DropNewest`.
        let worker = self.worker.load(Ordering::SeqCst);
        let at_capacity = n >= sh.config.queue_events
            || self.bytes.load(Ordering::Relaxed) >= sh.config.queue_bytes;
        if worker == WAITS_FOR_EVENTS && n == 1
            || worker != BUSY && (n == sh.config.batch_size.max(1) || at_capacity)
        {
            sh.wake_worker();
        }
    }

    /// The worker, before it sleeps until woken: whether it may (nothing is
    /// put off). Called under the worker's state lock, which a waking
    /// pusher takes before it notifies, so no wake is lost.
    pub(crate) fn worker_waits_for_events(&self) -> bool {
        self.worker.store(WAITS_FOR_EVENTS, Ordering::SeqCst);
        if self.len.load(Ordering::SeqCst) == 0 {
            return true;
        }
        self.worker.store(WAITS_UNTIL, Ordering::SeqCst);
        false
    }

    /// The worker sleeps until a time it knows.
    pub(crate) fn worker_waits_until(&self) {
        self.worker.store(WAITS_UNTIL, Ordering::SeqCst);
    }

    /// The worker is at work again.
    pub(crate) fn worker_busy(&self) {
        self.worker.store(BUSY, Ordering::Relaxed);
    }

    /// Shutdown has begun: from now on a push emits at once.
    pub(crate) fn close(&self) {
        lock(&self.items).closed = true;
    }

    /// Builds and queues up to `budget` items in order, waiting for room as
    /// `room` says (the worker: never; it then holds the built event at the
    /// front and stops). With [`Room::Hold`] it does not wait for another
    /// drainer either.
    pub(crate) fn drain(&self, sh: &Shared, room: Room, budget: usize) -> Drained {
        if self.len() == 0 {
            return Drained::Empty;
        }
        if ThreadMark::is_here(&DRAINING, self) {
            return Drained::Busy;
        }
        let mut taken = match room {
            Room::Hold | Room::Behind => match self.drain.try_lock() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return Drained::Busy,
            },
            Room::Policy(None) | Room::Until(None) => lock(&self.drain),
            // Not done by then: what is left stays put off (for the worker).
            Room::Policy(Some(until)) | Room::Until(Some(until)) => {
                match lock_until(&self.drain, until) {
                    Some(g) => g,
                    None => return Drained::Full,
                }
            }
        };
        let mark = ThreadMark::enter(&DRAINING, self);
        let how = How { room, late: true };
        let mut done = 0usize;
        let mut freed = 0usize;
        // Reports of the events refused in this drain, made after it.
        let mut reports: Vec<(Reason, String, Option<crate::sink::Encoded>, Error)> = Vec::new();
        let end = loop {
            if done >= budget {
                break Drained::Budget;
            }
            let r = if let Some(h) = taken.held.take() {
                sh.enqueue_held(h, how)
            } else {
                if taken.later.is_empty() {
                    let mut items = lock(&self.items);
                    if items.queue.is_empty() {
                        break Drained::Empty;
                    }
                    // `taken.later` is empty: its buffer goes to the pushers
                    // (not kept at a burst's size).
                    if taken.later.capacity() > KEEP_ITEMS {
                        taken.later = VecDeque::new();
                    }
                    std::mem::swap(&mut items.queue, &mut taken.later);
                }
                let Some(later) = taken.later.pop_front() else {
                    continue;
                };
                freed += later.size();
                build(sh, later, how)
            };
            let mut postponed = POSTPONED
                .try_with(|p| std::mem::take(&mut *p.borrow_mut()))
                .unwrap_or_default();
            let last = match &r {
                Err(Refused::Error(_)) => postponed.pop(),
                _ => None,
            };
            // One report per refused event, with the error it returns; any
            // other (none is made today) goes with its error's text.
            for (reason, id, event) in postponed {
                let err = Error::Transport(format!("{reason:?}"));
                reports.push((reason, id, event, err));
            }
            let r = match (r, last) {
                (Err(Refused::Error(e)), Some((reason, id, event))) => {
                    reports.push((reason, id, event, e));
                    Err(Refused::Error(Error::QueueFull))
                }
                (r, _) => r,
            };
            match r {
                Err(Refused::Held(h)) => {
                    // First again next time.
                    taken.held = Some(h);
                    break Drained::Full;
                }
                // Queued, or refused and counted by the pipeline.
                Ok(()) | Err(Refused::Error(_)) => done += 1,
            }
        };
        // Once per drain, not per item: the pushers write `len` too.
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
        self.len.fetch_sub(done, Ordering::Release);
        drop(taken);
        drop(mark);
        for (reason, id, event, err) in reports {
            sh.report(reason, &id, event.as_ref(), &err);
        }
        end
    }
}

/// How long a caller's drain (its `emit`, or a push at capacity) may wait
/// for room: the `Block` limit once for the whole drain, not once for each
/// event it builds; what is left when it runs out stays for the worker.
fn caller_room(sh: &Shared) -> Room {
    match sh.config.overflow {
        Overflow::Block(limit) => Room::Policy(crate::worker::after(limit)),
        Overflow::DropNewest => Room::Policy(None),
    }
}

/// A put-off event refused for want of room: counted in `dropped` and
/// reported, under a new id (it was never built, so it has none yet).
fn refuse_new(sh: &Shared) {
    Counters::add(&sh.counters.dropped, 1);
    sh.report(
        Reason::Dropped,
        crate::new_id().as_str(),
        None,
        &Error::QueueFull,
    );
}

/// Builds the event `later` describes and sends it through the emit
/// pipeline (a `Later` makes exactly one event).
fn build(sh: &Shared, later: Later, how: How) -> Result<(), Refused> {
    let mut r = Ok(());
    later.emit(&mut |b| r = emit_on(sh, b, how));
    r
}

impl Shared {
    /// Before a caller's `emit`: what the layer put off goes first. Returns
    /// how the caller's own event is to be queued: under `Block`, within
    /// what is left of the one limit the drain began (not a second limit
    /// of its own), and refused outright when the drain left an event it
    /// could not queue in time (queued, the caller's event would go before
    /// it: before the start of the span it was emitted in).
    #[inline]
    pub(crate) fn drain_deferred_first(&self) -> How {
        if self.deferred.len() == 0 {
            return How::EMIT;
        }
        let room = caller_room(self);
        let room = match self.deferred.drain(self, room, usize::MAX) {
            Drained::Full => Room::Behind,
            _ => room,
        };
        How { room, late: false }
    }

    /// Puts an event of the layer off; with a spool, builds it now.
    #[inline]
    pub(crate) fn defer(&self, later: Later) {
        if self.config.spool.is_some() {
            // With a spool, an event is on disk when the call that made it
            // returns (it survives `kill -9`); one put off would live in
            // memory only, for as long as the worker is in a send or a
            // retry wait. So it is built here, as `emit` builds one.
            let how = self.drain_deferred_first();
            let _ = self.answered_at_emit(build(self, later, how));
            return;
        }
        self.deferred.push(self, later);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use tracing_subscriber::layer::SubscriberExt as _;

    use crate::sink::{Encoded, Sink};
    use crate::tracing_layer::OssaLayer;
    use crate::worker::tests::eventually;
    use crate::{Emitter, SendError};

    /// Counts the events it is given.
    struct Count(Arc<AtomicU64>);

    impl Sink for Count {
        fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
            self.0.fetch_add(events.len() as u64, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Events put off up to the queue's capacity, below a batch, wake the
    /// sleeping worker to build and queue them (and send the queue, full
    /// now), as a queue at its capacity does: left until the flush
    /// interval, the next event put off found no room and was dropped
    /// under `DropNewest`.
    #[test]
    fn events_put_off_up_to_the_capacity_wake_the_worker() {
        let got = Arc::new(AtomicU64::new(0));
        let em = Emitter::builder("/agents/t")
            .sink(Count(got.clone()))
            .batch_size(100)
            .queue_capacity(4)
            .flush_interval(Duration::from_secs(60))
            .build()
            .unwrap();
        let subscriber = tracing_subscriber::registry().with(OssaLayer::new(em.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span =
                || tracing::info_span!("execute_tool", gen_ai.tool.name = "t").in_scope(|| ());
            // Two events queued at once (not put off), so that the worker
            // sleeps until the interval. (A first span here raced the
            // worker: its start woke it, and an end put off after the
            // worker had drained waited out the 60 s interval.)
            for _ in 0..2 {
                em.emit(crate::EventBuilder::new().ty("dev.example.tick"))
                    .unwrap();
            }
            eventually("the first two events queued", || {
                em.metrics().emitted == 2
                    && em.shared().deferred.worker.load(Ordering::SeqCst) == super::WAITS_UNTIL
            });
            // Two more: four events put off, the capacity.
            span();
            span();
            eventually("the events put off built and queued", || {
                em.metrics().emitted == 6
            });
            // So the next ones find room.
            span();
        });
        let m = em.shutdown().map(|_| em.metrics()).unwrap();
        assert_eq!((m.emitted, m.delivered, m.dropped), (8, 8, 0), "{m:?}");
        assert_eq!(got.load(Ordering::SeqCst), 8);
    }
}
