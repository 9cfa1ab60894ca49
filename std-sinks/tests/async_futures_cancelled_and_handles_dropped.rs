//! The emitter's async futures (`flush_async`, `shutdown_async`) on real
//! tokio runtimes when they are cancelled (dropped before they resolve),
//! and the drop of the last handle after that: a future that is gone holds
//! no handle, so the drop of the caller's last handle is the last one and
//! does what `wait_on_drop` says. Also `emit()` and `flush_async()` from
//! many tasks on a multi-thread runtime: every event counted once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, Sink};
use ossa_events::{Emitter, Error, EventBuilder, Reason, RetryPolicy, SendError};

/// Takes `delay` a send, then counts the events delivered.
struct Slow {
    delay: Duration,
    delivered: Arc<AtomicUsize>,
}

impl Sink for Slow {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        std::thread::sleep(self.delay);
        self.delivered.fetch_add(events.len(), Ordering::SeqCst);
        Ok(())
    }
}

/// A collector that is down: every send fails and may be retried.
struct Down;

impl Sink for Down {
    fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
        std::thread::sleep(Duration::from_millis(5));
        Err(SendError::retryable(Error::Transport("down".into()), None))
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn tick() -> EventBuilder<'static> {
    EventBuilder::new().ty("dev.example.tick")
}

/// Emits one event to a sink that takes 400 ms a send, gives up on the
/// future `cancel` makes after 20 ms, runs `then`, drops the caller's last
/// handle (`wait_on_drop` on, the default): how many events were delivered
/// when that drop returned.
fn delivered_when_the_drop_returns<F: std::future::Future>(
    cancel: impl FnOnce(&Emitter) -> F,
    then: impl FnOnce(&Emitter),
) -> usize {
    let delivered = Arc::new(AtomicUsize::new(0));
    current_thread().block_on(async {
        let em = Emitter::builder("/agents/async")
            .sink(Slow {
                delay: Duration::from_millis(400),
                delivered: delivered.clone(),
            })
            .shutdown_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        em.emit(tick()).unwrap();
        let r = tokio::time::timeout(Duration::from_millis(20), cancel(&em)).await;
        assert!(r.is_err(), "the send takes 400 ms");
        then(&em);
        drop(em);
        delivered.load(Ordering::SeqCst)
    })
}

/// A `flush_async` given up on (its future dropped, as `tokio::time::timeout`
/// or `select!` drop it) while the send is under way: the drop of the
/// caller's last handle (`wait_on_drop` on, the default) waits for the
/// delivery, as it does without the cancelled flush. Before, the flush's
/// helper thread held a handle until the flush ended, so the caller's drop
/// was not the last one and returned at once with the event not delivered
/// (lost, had the program ended there).
#[test]
fn a_cancelled_flush_async_does_not_keep_the_emitter_from_its_drop() {
    let seen_after_drop = delivered_when_the_drop_returns(Emitter::flush_async, |_| {});
    assert_eq!(
        seen_after_drop, 1,
        "the drop of the last handle returned before delivery"
    );
}

/// The same with a collector that is down: the drop of the last handle ends
/// every event by the shutdown deadline (reported `ShutdownTimeout`), not
/// when the cancelled flush's own 30 s timeout runs out.
#[test]
fn a_cancelled_flush_async_leaves_no_event_unreported_after_the_drop() {
    let reasons: Arc<Mutex<Vec<Reason>>> = Arc::default();
    let r2 = reasons.clone();
    let rt = current_thread();
    let (took, reported) = rt.block_on(async {
        let em = Emitter::builder("/agents/async")
            .sink(Down)
            .retry(RetryPolicy::default().max_attempts(u32::MAX))
            .shutdown_timeout(Duration::from_millis(300))
            .on_undelivered(move |u| {
                r2.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(u.reason)
            })
            .build()
            .unwrap();
        for _ in 0..5 {
            em.emit(tick()).unwrap();
        }
        let r = tokio::time::timeout(Duration::from_millis(50), em.flush_async()).await;
        assert!(r.is_err(), "the collector is down: {r:?}");
        let started = Instant::now();
        drop(em);
        let took = started.elapsed();
        let reported = reasons
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        (took, reported)
    });
    assert!(took < Duration::from_secs(3), "drop took {took:?}");
    assert_eq!(reported, [Reason::ShutdownTimeout; 5], "after the drop");
}

/// A `shutdown_async` given up on while the last send is under way: the
/// shutdown goes on, and the drop of the caller's last handle waits for it
/// (`wait_on_drop` on) instead of returning with the event not delivered.
#[test]
fn a_cancelled_shutdown_async_leaves_the_drop_waiting_for_the_delivery() {
    let seen_after_drop = delivered_when_the_drop_returns(Emitter::shutdown_async, |em| {
        // Shut down all the same: later events are refused.
        assert!(matches!(em.emit(tick()), Err(Error::ShutDown)));
    });
    assert_eq!(
        seen_after_drop, 1,
        "the drop of the last handle returned before delivery"
    );
}

/// A pending `flush_async` keeps the emitter alive as it did: the caller
/// may drop its handle and still await the flush, which then sees every
/// event delivered, and the drop does not wait (the future holds a handle).
#[test]
fn a_pending_flush_async_outlives_the_callers_handle() {
    let delivered = Arc::new(AtomicUsize::new(0));
    let rt = current_thread();
    let (drop_took, report) = rt.block_on(async {
        // A drop that waited would wait out this second; the bound below
        // leaves a loaded machine half of it (it was 100 ms of 200 ms).
        let em = Emitter::builder("/agents/async")
            .sink(Slow {
                delay: Duration::from_secs(1),
                delivered: delivered.clone(),
            })
            .build()
            .unwrap();
        em.emit(tick()).unwrap();
        let flush = em.flush_async();
        let started = Instant::now();
        drop(em);
        let drop_took = started.elapsed();
        (drop_took, flush.await)
    });
    assert!(drop_took < Duration::from_millis(500), "{drop_took:?}");
    let report = report.unwrap();
    assert_eq!((report.delivered, report.pending), (1, 0));
    assert_eq!(delivered.load(Ordering::SeqCst), 1);
}

/// Many tasks on a multi-thread runtime emit and flush at once: every event
/// is delivered once, every flush sees at least its own task's events.
#[test]
fn many_tasks_on_a_multi_thread_runtime_emit_and_flush() {
    let delivered = Arc::new(AtomicUsize::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let report = rt.block_on(async {
        let em = Emitter::builder("/agents/async")
            .sink(Slow {
                delay: Duration::from_millis(1),
                delivered: delivered.clone(),
            })
            .batch_size(7)
            .wait_on_drop(false)
            .build()
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let em = em.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    em.emit(tick()).unwrap();
                    if i % 10 == 9 {
                        tokio::task::yield_now().await;
                    }
                }
                let r = em.flush_async().await.unwrap();
                assert!(r.delivered >= 50, "{r:?}");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        em.shutdown_async().await.unwrap()
    });
    assert_eq!((report.delivered, report.pending), (1600, 0));
    assert_eq!(delivered.load(Ordering::SeqCst), 1600);
}

/// Takes `0` a send: a sink call that outlasts any shutdown deadline here.
/// Counts the sends begun in `1`.
struct Stuck(Duration, Arc<AtomicUsize>);

impl Sink for Stuck {
    fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.0);
        Ok(())
    }
}

/// Waits (10 s at most) until the sink's first send has begun: the worker
/// is in the sink when the shutdown begins. Left to the shutdown to send,
/// the event went out only if the worker got the core within the 100 ms
/// deadline; on a loaded machine it did not, the worker gave up on it
/// itself and reported it on its own thread.
fn until_in_the_sink(sends: &AtomicUsize) {
    let t = Instant::now();
    while sends.load(Ordering::SeqCst) == 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "no send began");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// An emitter whose sink outlasts its 100 ms shutdown deadline, noting the
/// thread each `on_undelivered` report is made on; the third value counts
/// the sends begun.
fn stuck_emitter(
    wait_on_drop: bool,
) -> (
    Emitter,
    Arc<Mutex<Vec<std::thread::Thread>>>,
    Arc<AtomicUsize>,
) {
    let threads: Arc<Mutex<Vec<std::thread::Thread>>> = Arc::default();
    let t2 = threads.clone();
    let sends = Arc::new(AtomicUsize::new(0));
    let em = Emitter::builder("/agents/async")
        .sink(Stuck(Duration::from_millis(1500), sends.clone()))
        // Sent at once, not when the shutdown begins.
        .flush_interval(Duration::from_millis(1))
        .shutdown_timeout(Duration::from_millis(100))
        .wait_on_drop(wait_on_drop)
        .on_undelivered(move |_| {
            t2.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(std::thread::current())
        })
        .build()
        .unwrap();
    (em, threads, sends)
}

/// Where `on_undelivered` runs when the worker is stuck in a sink call past
/// the shutdown deadline: on the thread that waits for the shutdown, which
/// for `shutdown_async` is its helper thread, and for the drop of the last
/// handle that waits is the dropping thread (the runtime's, in a task).
#[test]
fn on_undelivered_runs_on_the_thread_that_ends_the_shutdown() {
    let rt = current_thread();
    let (em, threads, sends) = stuck_emitter(true);
    let r = rt.block_on(async {
        em.emit(tick()).unwrap();
        until_in_the_sink(&sends);
        em.shutdown_async().await
    });
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    let names: Vec<_> = threads
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|t| t.name().map(str::to_owned))
        .collect();
    assert_eq!(names, [Some("ossa-events-shutdown".to_owned())]);

    let (em, threads, sends) = stuck_emitter(true);
    let runtime_thread = rt.block_on(async move {
        em.emit(tick()).unwrap();
        until_in_the_sink(&sends);
        drop(em);
        std::thread::current().id()
    });
    let ids: Vec<_> = threads
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(std::thread::Thread::id)
        .collect();
    assert_eq!(ids, [runtime_thread]);
}

/// Under the default `Overflow::DropNewest`, `emit()` into a full queue
/// (the sink holds its send until the emits are done) returns at once from
/// a task: refused, counted `dropped`, and never holding up the runtime's
/// thread.
#[test]
fn emit_into_a_full_queue_returns_at_once_in_a_task() {
    /// Holds each send until `open` is set (10 s at most).
    struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);
    impl Sink for Gate {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            let (m, cv) = &*self.0;
            let g = m.lock().unwrap_or_else(PoisonError::into_inner);
            drop(cv.wait_timeout_while(g, Duration::from_secs(10), |open| !*open));
            Ok(())
        }
    }
    let gate: Arc<(Mutex<bool>, std::sync::Condvar)> = Arc::default();
    let rt = current_thread();
    let (slowest, m) = rt.block_on(async {
        // No room is made while the emits run: an emit that waited for
        // room would wait for the gate (10 s). The bound below is far from
        // that and leaves a loaded machine, which held the runtime's thread
        // off the core for up to 0.8 s, room (it was 50 ms, against a sink
        // that made room every 300 ms).
        let em = Emitter::builder("/agents/async")
            .sink(Gate(gate.clone()))
            .queue_capacity(2)
            .batch_size(1)
            .wait_on_drop(false)
            .build()
            .unwrap();
        let mut slowest = Duration::ZERO;
        for _ in 0..200 {
            let started = Instant::now();
            let _ = em.emit(tick());
            slowest = slowest.max(started.elapsed());
            tokio::task::yield_now().await;
        }
        let m = em.metrics();
        *gate.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        gate.1.notify_all();
        em.shutdown_async().await.unwrap();
        (slowest, m)
    });
    assert!(slowest < Duration::from_secs(3), "an emit took {slowest:?}");
    assert!(m.dropped >= 190, "{m:?}");
    assert_eq!(m.emitted + m.dropped, 200, "{m:?}");
}
