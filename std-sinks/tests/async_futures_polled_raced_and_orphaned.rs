//! The emitter's async futures (`flush_async`, `shutdown_async`) on real
//! tokio runtimes in the cases a caller does not plan for: a future moved
//! between tasks, made after the shutdown, raced by another shutdown (sync
//! or async) while the worker drops its sink, woken through a waker that
//! panics, or orphaned by a runtime that shuts down; and the drop of the
//! last handle with `wait_on_drop(false)`. Each report agrees with
//! `metrics()`, and every shutdown returns after the worker thread ended.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, Sink};
use ossa_events::{Emitter, EventBuilder, FlushReport, Metrics, SendError};

/// Takes `delay` a send and counts the sends begun (`sending`) and what it
/// delivers; its drop takes `drop_delay` and is noted (`dropped`) when done.
struct Slow {
    delay: Duration,
    drop_delay: Duration,
    sending: Arc<AtomicUsize>,
    delivered: Arc<AtomicUsize>,
    dropping: Arc<AtomicBool>,
    dropped: Arc<AtomicBool>,
}

#[derive(Clone, Default)]
struct Seen {
    sending: Arc<AtomicUsize>,
    delivered: Arc<AtomicUsize>,
    dropping: Arc<AtomicBool>,
    dropped: Arc<AtomicBool>,
}

impl Seen {
    fn sink(&self, delay: Duration, drop_delay: Duration) -> Slow {
        Slow {
            delay,
            drop_delay,
            sending: self.sending.clone(),
            delivered: self.delivered.clone(),
            dropping: self.dropping.clone(),
            dropped: self.dropped.clone(),
        }
    }
}

impl Sink for Slow {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        self.sending.fetch_add(1, SeqCst);
        std::thread::sleep(self.delay);
        self.delivered.fetch_add(events.len(), SeqCst);
        Ok(())
    }
}

impl Drop for Slow {
    fn drop(&mut self) {
        self.dropping.store(true, SeqCst);
        std::thread::sleep(self.drop_delay);
        self.dropped.store(true, SeqCst);
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn tick() -> EventBuilder<'static> {
    EventBuilder::new().ty("dev.example.tick")
}

fn report_of(m: &Metrics) -> (u64, u64, u64, u64) {
    (m.delivered, m.failed, m.shutdown_timeout, m.queue_depth)
}

fn parts(r: &FlushReport) -> (u64, u64, u64, u64) {
    (r.delivered, r.failed, r.shutdown_timeout, r.pending)
}

fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < until, "never: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A `flush_async` polled first by one task, then moved to and awaited by
/// another: it resolves (the latest task is woken) with what `metrics()`
/// says.
#[test]
fn a_flush_async_moved_between_tasks_resolves_for_the_last_one() {
    let seen = Seen::default();
    let rt = multi_thread();
    rt.block_on(async {
        let em = Emitter::builder("/agents/async")
            .sink(seen.sink(Duration::from_millis(100), Duration::ZERO))
            .build()
            .unwrap();
        em.emit(tick()).unwrap();
        let mut flush = Box::pin(em.flush_async());
        // Polled once by this task (pending: the send takes 100 ms) ...
        let first = std::future::poll_fn(|cx| Poll::Ready(flush.as_mut().poll(cx).is_pending()));
        assert!(first.await);
        // ... then awaited by another.
        let r = tokio::spawn(flush).await.unwrap().unwrap();
        assert_eq!(parts(&r), report_of(&em.metrics()));
        assert_eq!(parts(&r), (1, 0, 0, 0));
        em.shutdown_async().await.unwrap();
    });
}

/// `flush_async` and `shutdown_async` made after the shutdown resolve at
/// once with the counters `metrics()` reads.
#[test]
fn futures_made_after_the_shutdown_resolve_at_once_with_the_metrics() {
    let seen = Seen::default();
    let rt = current_thread();
    rt.block_on(async {
        let em = Emitter::builder("/agents/async")
            .sink(seen.sink(Duration::from_millis(5), Duration::ZERO))
            .build()
            .unwrap();
        for _ in 0..3 {
            em.emit(tick()).unwrap();
        }
        em.shutdown().unwrap();
        let started = Instant::now();
        let f = tokio::time::timeout(Duration::from_secs(5), em.flush_async())
            .await
            .expect("flush_async after shutdown hangs")
            .unwrap();
        let s = tokio::time::timeout(Duration::from_secs(5), em.shutdown_async())
            .await
            .expect("shutdown_async after shutdown hangs")
            .unwrap();
        // At once: not a flush or shutdown timeout (room for a loaded
        // machine, where 500 ms failed).
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        let m = em.metrics();
        assert_eq!(parts(&f), report_of(&m));
        assert_eq!(parts(&s), report_of(&m));
        assert_eq!(parts(&s), (3, 0, 0, 0));
    });
}

/// A `shutdown_async` and a sync `shutdown` on another thread, and two
/// `shutdown_async`s, while the worker drops a sink whose drop takes
/// 300 ms: none returns before the sink is dropped (the worker thread
/// ended).
#[test]
fn every_shutdown_async_returns_after_the_worker_thread_ended() {
    for with_sync in [true, false] {
        let seen = Seen::default();
        let rt = multi_thread();
        let em = Emitter::builder("/agents/async")
            .sink(seen.sink(Duration::from_millis(50), Duration::from_millis(300)))
            .shutdown_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        em.emit(tick()).unwrap();
        let other = {
            let (em, dropped) = (em.clone(), seen.dropped.clone());
            if with_sync {
                std::thread::spawn(move || {
                    let r = em.shutdown().map(|r| r.delivered);
                    (r, dropped.load(SeqCst))
                })
            } else {
                let h = rt.handle().clone();
                std::thread::spawn(move || {
                    let r = h.block_on(em.shutdown_async()).map(|r| r.delivered);
                    (r, dropped.load(SeqCst))
                })
            }
        };
        eventually("the sink is being dropped", || seen.dropping.load(SeqCst));
        let (mine, saw) = rt.block_on(async {
            let r = em.shutdown_async().await.map(|r| r.delivered);
            (r, seen.dropped.load(SeqCst))
        });
        let (theirs, they_saw) = other.join().unwrap();
        assert!(
            saw && they_saw,
            "with_sync {with_sync}: {mine:?} {theirs:?}"
        );
        assert_eq!((mine.unwrap(), theirs.unwrap()), (1, 1));
    }
}

/// Wakes by panicking, once `armed`.
struct PanickyWaker {
    armed: AtomicBool,
    woken: AtomicUsize,
}

impl Wake for PanickyWaker {
    fn wake(self: Arc<Self>) {
        self.woken.fetch_add(1, SeqCst);
        if self.armed.load(SeqCst) {
            panic!("a waker that panics");
        }
    }
}

/// A waker that panics when the helper thread wakes it: the report is
/// kept, and the next poll returns it (and it agrees with `metrics()`).
#[test]
fn a_waker_that_panics_loses_no_report() {
    let seen = Seen::default();
    let em = Emitter::builder("/agents/async")
        .sink(seen.sink(Duration::from_millis(500), Duration::ZERO))
        .build()
        .unwrap();
    let w = Arc::new(PanickyWaker {
        armed: AtomicBool::new(true),
        woken: AtomicUsize::new(0),
    });
    let waker = Waker::from(w.clone());
    let mut cx = Context::from_waker(&waker);
    type Boxed = Pin<Box<dyn Future<Output = Result<FlushReport, ossa_events::Error>>>>;
    for (sent_before, shutdown) in [false, true].into_iter().enumerate() {
        // A send of 500 ms for each future to wait for, so that its first
        // poll is pending and the helper thread is the one to wake it. (The
        // shutdown had none, only the worker's end: a test thread held off
        // the core that long, niced under load, found it ready at once.)
        em.emit(tick()).unwrap();
        w.woken.store(0, SeqCst);
        let mut f: Boxed = if shutdown {
            Box::pin(em.shutdown_async())
        } else {
            Box::pin(em.flush_async())
        };
        assert!(f.as_mut().poll(&mut cx).is_pending());
        eventually("the waker is called", || w.woken.load(SeqCst) == 1);
        let r = loop {
            if let Poll::Ready(r) = f.as_mut().poll(&mut cx) {
                break r.unwrap();
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        assert_eq!(parts(&r), report_of(&em.metrics()));
        assert_eq!(r.delivered, sent_before as u64 + 1);
    }
}

/// A runtime shut down while a task awaits `shutdown_async` (the task's
/// future dropped with it): the shutdown goes on, the event is delivered,
/// and the worker ends (the sink is dropped) without anyone waiting.
#[test]
fn a_runtime_shut_down_under_a_pending_shutdown_async_loses_nothing() {
    let seen = Seen::default();
    let rt = multi_thread();
    let em = Emitter::builder("/agents/async")
        .sink(seen.sink(Duration::from_millis(300), Duration::ZERO))
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    em.emit(tick()).unwrap();
    let em2 = em.clone();
    rt.spawn(async move {
        let _ = em2.shutdown_async().await;
    });
    std::thread::sleep(Duration::from_millis(50));
    rt.shutdown_timeout(Duration::from_millis(10));
    eventually("the sink dropped", || seen.dropped.load(SeqCst));
    assert_eq!(seen.delivered.load(SeqCst), 1);
    let m = em.metrics();
    assert_eq!(report_of(&m), (1, 0, 0, 0));
}

/// `wait_on_drop(false)`: the drop of the last handle in a task on a
/// current-thread runtime returns at once, and every event is delivered
/// (the worker, then the sink's drop, run on without anyone waiting).
#[test]
fn a_drop_that_does_not_wait_still_delivers_everything() {
    let seen = Seen::default();
    let rt = current_thread();
    let took = rt.block_on(async {
        // Three sends of a second: a drop that waited would take 3 s; the
        // bound below leaves a loaded machine room (it was 250 ms against
        // 300 ms of sends; the drop starts a helper thread, and a niced
        // run under load took 0.8 s for one).
        let em = Emitter::builder("/agents/async")
            .sink(seen.sink(Duration::from_secs(1), Duration::ZERO))
            .batch_size(10)
            .wait_on_drop(false)
            .build()
            .unwrap();
        for _ in 0..25 {
            em.emit(tick()).unwrap();
        }
        let started = Instant::now();
        drop(em);
        started.elapsed()
    });
    assert!(took < Duration::from_millis(1500), "drop took {took:?}");
    eventually("the sink dropped", || seen.dropped.load(SeqCst));
    assert_eq!(seen.delivered.load(SeqCst), 25);
}

/// `wait_on_drop(true)` (the default): the drop of the last handle in a
/// task on a current-thread runtime blocks that thread until the worker
/// ended (it does not deadlock), as the docs say.
#[test]
fn a_drop_that_waits_blocks_the_current_thread_runtime_until_delivery() {
    let seen = Seen::default();
    let rt = current_thread();
    let reported: Arc<Mutex<Vec<String>>> = Arc::default();
    let (took, delivered, dropped) = rt.block_on(async {
        let r2 = reported.clone();
        let em = Emitter::builder("/agents/async")
            .sink(seen.sink(Duration::from_millis(100), Duration::from_millis(100)))
            .on_undelivered(move |u| {
                r2.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(u.id.to_owned())
            })
            .build()
            .unwrap();
        em.emit(tick()).unwrap();
        let started = Instant::now();
        drop(em);
        (
            started.elapsed(),
            seen.delivered.load(SeqCst),
            seen.dropped.load(SeqCst),
        )
    });
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert_eq!((delivered, dropped), (1, true));
    assert!(reported.lock().unwrap().is_empty());
}

/// How long the stuck sink's send takes: far past the 100 ms deadlines
/// below, and past the bounds that say nothing waited for it.
const STUCK: Duration = Duration::from_secs(3);

/// The futures made after a shutdown that timed out (the worker stuck in a
/// sink call past the deadline) resolve at once, with what `metrics()`
/// says; and a drop that does not wait, with the worker stuck, still has
/// every event reported by the deadline.
#[test]
fn futures_after_a_timed_out_shutdown_and_a_drop_that_does_not_wait_with_a_stuck_sink() {
    let rt = current_thread();
    let seen = Seen::default();
    let reported: Arc<Mutex<Vec<ossa_events::Reason>>> = Arc::default();
    let r2 = reported.clone();
    let em = Emitter::builder("/agents/async")
        .sink(seen.sink(STUCK, Duration::ZERO))
        .batch_size(1)
        .shutdown_timeout(Duration::from_millis(100))
        .on_undelivered(move |u| {
            r2.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(u.reason)
        })
        .build()
        .unwrap();
    for _ in 0..3 {
        em.emit(tick()).unwrap();
    }
    // The worker in the sink when shutdown begins: seen, as a worker held
    // off the core past the 100 ms deadline would send nothing, and the
    // shutdown then ends in time (a loaded run saw it).
    eventually("the first send begun", || seen.sending.load(SeqCst) == 1);
    assert!(em.shutdown().is_err(), "the sink is stuck");
    rt.block_on(async {
        let started = Instant::now();
        let f = em.flush_async().await.unwrap();
        let s = em.shutdown_async().await;
        // Not the stuck send's 3 s (room for a loaded machine, where
        // 500 ms failed).
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "{took:?}");
        assert!(s.is_err(), "{s:?}");
        assert_eq!(parts(&f), report_of(&em.metrics()));
        assert_eq!(parts(&f), (0, 0, 3, 0));
    });
    assert_eq!(reported.lock().unwrap().len(), 3);

    let seen = Seen::default();
    let reported: Arc<Mutex<Vec<ossa_events::Reason>>> = Arc::default();
    let r2 = reported.clone();
    rt.block_on(async {
        let em = Emitter::builder("/agents/async")
            .sink(seen.sink(STUCK, Duration::ZERO))
            .batch_size(1)
            .shutdown_timeout(Duration::from_millis(100))
            .wait_on_drop(false)
            .on_undelivered(move |u| {
                r2.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(u.reason)
            })
            .build()
            .unwrap();
        for _ in 0..3 {
            em.emit(tick()).unwrap();
        }
        // The first send stuck in the sink when the drop comes: seen, as a
        // worker held off the core past the 100 ms deadline would send none.
        eventually("the first send begun", || seen.sending.load(SeqCst) == 1);
        let started = Instant::now();
        drop(em);
        // Not the stuck send's 3 s (room for a loaded machine).
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "{took:?}");
    });
    eventually("every event reported", || {
        reported.lock().unwrap().len() == 3
    });
    // The stuck send's late answer, then the worker ends and drops the
    // sink: waited for, not slept for (it was 1.6 s against a 1.5 s send).
    eventually("the sink dropped", || seen.dropped.load(SeqCst));
    assert_eq!(reported.lock().unwrap().len(), 3, "reported once each");
    assert_eq!(seen.delivered.load(SeqCst), 1, "the stuck send's event");
}

/// A collector that is down: every send fails and may be retried.
struct Down;

impl Sink for Down {
    fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
        std::thread::sleep(Duration::from_millis(5));
        Err(SendError::retryable(
            ossa_events::Error::Transport("down".into()),
            None,
        ))
    }
}

/// A `flush_async` that holds the last handle (the caller dropped its own)
/// and times out, collector down: the poll that resolves it drops that
/// handle. With `wait_on_drop(false)` that poll returns at once, and the
/// event is still reported by the shutdown deadline. (With `true`, the
/// default, it waits for the shutdown there, as its docs say.)
#[test]
fn a_flush_async_holding_the_last_handle_resolves_without_blocking_when_drops_do_not_wait() {
    let rt = current_thread();
    let reported: Arc<Mutex<Vec<ossa_events::Reason>>> = Arc::default();
    let r2 = reported.clone();
    let (longest, r) = rt.block_on(async {
        let em = Emitter::builder("/agents/async")
            .sink(Down)
            .retry(ossa_events::RetryPolicy::default().max_attempts(u32::MAX))
            .flush_timeout(Duration::from_millis(100))
            .shutdown_timeout(Duration::from_secs(2))
            .wait_on_drop(false)
            .on_undelivered(move |u| {
                r2.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(u.reason)
            })
            .build()
            .unwrap();
        em.emit(tick()).unwrap();
        let mut flush = Box::pin(em.flush_async());
        drop(em);
        let mut longest = Duration::ZERO;
        let r = std::future::poll_fn(|cx| {
            let started = Instant::now();
            let p = flush.as_mut().poll(cx);
            longest = longest.max(started.elapsed());
            p
        })
        .await;
        (longest, r)
    });
    assert!(r.is_err(), "the collector is down: {r:?}");
    // A poll that waited for the shutdown would take its 2 s; the bound
    // leaves a loaded machine room (it was 250 ms).
    assert!(
        longest < Duration::from_millis(1000),
        "a poll of flush_async blocked for {longest:?}"
    );
    eventually("the event reported", || {
        reported.lock().unwrap().as_slice() == [ossa_events::Reason::ShutdownTimeout]
    });
}

/// `shutdown_async` begins the shutdown when it is called, as `shutdown`
/// does, not when its helper thread gets to run: an `emit` right after the
/// call, before any poll, is refused (and counted), and the future then
/// reports every event emitted before it delivered.
#[test]
fn shutdown_async_begins_the_shutdown_when_called() {
    for _ in 0..50 {
        let seen = Seen::default();
        let em = Emitter::builder("/agents/a")
            .sink(seen.sink(Duration::from_millis(1), Duration::ZERO))
            .build()
            .unwrap();
        em.emit(tick()).unwrap();
        let f = em.shutdown_async();
        assert!(em.emit(tick()).is_err(), "an emit after shutdown_async()");
        let report = current_thread().block_on(f).unwrap();
        assert_eq!(report.delivered, 1, "{report:?}");
        assert_eq!(seen.delivered.load(SeqCst), 1);
        assert_eq!(
            em.metrics().rejected + em.metrics().dropped,
            1,
            "{:?}",
            em.metrics()
        );
    }
}
