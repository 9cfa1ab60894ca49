//! An emitter used from inside its own code paths: from `on_undelivered`
//! (on the worker, and on the thread that ends a shutdown the worker could
//! not end), from a sink's `send` and from a sink's `Drop`, through a clone
//! of the emitter that the callback or the sink holds.
//!
//! A call that waits for the worker cannot be answered there: the worker is
//! the caller, or the reports the call would wait for are the caller's own.
//! Such a call answers at once, instead of stalling the worker (and every
//! other flush) or a shutdown for the whole flush timeout or block limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, Sink};
use ossa_events::{Emitter, Error, EventBuilder, Overflow, Phase, Reason, RetryPolicy, SendError};

fn tick() -> EventBuilder<'static> {
    EventBuilder::new().ty("dev.example.tick")
}

/// The clone a callback or a sink reaches its own emitter through.
type Slot = Arc<Mutex<Option<Emitter>>>;

fn own(slot: &Slot) -> Emitter {
    slot.lock().unwrap().clone().expect("the emitter is set")
}

/// What the callback or the sink saw its call answer, and how long it took.
type Answers = Arc<Mutex<Vec<(String, Duration)>>>;

/// Refuses every batch for good.
struct Refuses;
impl Sink for Refuses {
    fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
        Err(SendError::fatal(Error::HttpStatus {
            status: 400,
            body: "no".into(),
        }))
    }
}

/// Never returns from `send`.
struct Stuck;
impl Sink for Stuck {
    fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
        loop {
            std::thread::park();
        }
    }
}

/// Far longer than any answer here may take: a call that waits it out fails
/// the test by its time, not by hanging it.
const LONG: Duration = Duration::from_secs(5);
/// What "at once" is allowed on a loaded machine.
const SOON: Duration = Duration::from_millis(1500);

fn balanced(em: &Emitter) {
    let m = em.metrics();
    assert_eq!(
        m.emitted,
        m.delivered + m.failed + m.shutdown_timeout + m.queue_depth,
        "{m:?}"
    );
}

/// `flush` in `on_undelivered` on the worker: the worker is the caller, and
/// the flush waits for the reports it is in. It used to wait the whole
/// flush timeout, the worker stalled all that time (and the caller's own
/// flush with it), and then said `Timeout(Flush)`.
#[test]
fn a_flush_from_on_undelivered_on_the_worker_answers_at_once() {
    let slot: Slot = Arc::default();
    let answers: Answers = Arc::default();
    let (s, a) = (slot.clone(), answers.clone());
    let em = Emitter::builder("/agents/a")
        .sink(Refuses)
        .retry(RetryPolicy::none())
        .flush_timeout(LONG)
        .on_undelivered(move |u| {
            assert_eq!(u.reason, Reason::Failed);
            let start = Instant::now();
            let r = own(&s).flush();
            a.lock().unwrap().push((format!("{r:?}"), start.elapsed()));
        })
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(em.clone());
    em.emit(tick()).unwrap();
    let start = Instant::now();
    let report = em.flush().unwrap();
    assert!(
        start.elapsed() < SOON,
        "the caller's flush waited {:?}",
        start.elapsed()
    );
    assert_eq!((report.failed, report.pending), (1, 0));
    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(
        answers[0].0,
        format!("{:?}", Err::<(), _>(Error::Timeout(Phase::Flush)))
    );
    assert!(
        answers[0].1 < SOON,
        "the callback's flush waited {:?}",
        answers[0].1
    );
    slot.lock().unwrap().take();
    balanced(&em);
}

/// `flush_within` in a sink's `send`: the batch being sent is among what it
/// waits for, and only the caller can end it.
#[test]
fn a_flush_from_a_sink_answers_at_once_and_its_batch_is_delivered() {
    struct FlushesInSend(Slot, Answers);
    impl Sink for FlushesInSend {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            if self.1.lock().unwrap().is_empty() {
                let start = Instant::now();
                let r = own(&self.0).flush_within(LONG);
                let r = r.map_err(|e| matches!(e, Error::Timeout(Phase::Flush)));
                self.1
                    .lock()
                    .unwrap()
                    .push((format!("{r:?}"), start.elapsed()));
                // `flush_async` blocked on here is the same wait.
                let start = Instant::now();
                let r = block_on(own(&self.0).flush_async());
                let r = r.map_err(|e| matches!(e, Error::Timeout(Phase::Flush)));
                self.1
                    .lock()
                    .unwrap()
                    .push((format!("{r:?}"), start.elapsed()));
            }
            Ok(())
        }
    }
    let slot: Slot = Arc::default();
    let answers: Answers = Arc::default();
    let em = Emitter::builder("/agents/a")
        .sink(FlushesInSend(slot.clone(), answers.clone()))
        .flush_timeout(LONG)
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(em.clone());
    em.emit(tick()).unwrap();
    let start = Instant::now();
    assert_eq!(em.flush().unwrap().delivered, 1);
    assert!(
        start.elapsed() < SOON,
        "the caller's flush waited {:?}",
        start.elapsed()
    );
    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 2, "{answers:?}");
    for (answer, waited) in &answers {
        assert_eq!(answer, "Err(true)", "{answers:?}");
        assert!(*waited < SOON, "the sink's flush waited {waited:?}");
    }
    slot.lock().unwrap().take();
    balanced(&em);
}

/// Polls `f` to its end on this thread, parking between polls.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) =
            f.as_mut().poll(&mut std::task::Context::from_waker(&waker))
        {
            return v;
        }
        std::thread::park();
    }
}

/// The worker is stuck in a send past the shutdown deadline: the shutdown
/// gives up on the open events on its own thread, and reports them there.
/// A flush in that callback waited for those very reports, the flush
/// timeout for each event: a 300 ms shutdown of three events took 15 s.
#[test]
fn a_flush_from_on_undelivered_in_a_shutdown_that_gives_up_keeps_its_bound() {
    let slot: Slot = Arc::default();
    let answers: Answers = Arc::default();
    let (s, a) = (slot.clone(), answers.clone());
    let em = Emitter::builder("/agents/a")
        .sink(Stuck)
        .batch_size(1)
        .flush_timeout(LONG)
        .shutdown_timeout(Duration::from_millis(300))
        .on_undelivered(move |u| {
            assert_eq!(u.reason, Reason::ShutdownTimeout);
            let start = Instant::now();
            let r = own(&s).flush();
            let r = r.map_err(|e| matches!(e, Error::Timeout(Phase::Flush)));
            a.lock().unwrap().push((format!("{r:?}"), start.elapsed()));
        })
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(em.clone());
    for _ in 0..3 {
        em.emit(tick()).unwrap();
    }
    let start = Instant::now();
    let r = em.shutdown();
    let took = start.elapsed();
    assert!(matches!(r, Err(Error::Timeout(Phase::Shutdown))), "{r:?}");
    assert!(
        took < Duration::from_millis(300) + SOON,
        "the shutdown took {took:?}"
    );
    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 3, "each event reported once: {answers:?}");
    for (r, took) in &answers {
        assert_eq!(r, "Err(true)");
        assert!(*took < SOON, "a flush in the callback waited {took:?}");
    }
    let m = em.metrics();
    assert_eq!(
        (m.emitted, m.shutdown_timeout, m.queue_depth),
        (3, 3, 0),
        "{m:?}"
    );
    slot.lock().unwrap().take();
}

/// A sink that emits `event()` from its first `send`, into the emitter
/// `builder` makes (its room taken by the `before` events emitted first):
/// the emit must be refused at once with `refused` (it waited the whole
/// block limit before, the worker stalled, the caller's flush with it),
/// counted `dropped` and reported once, while the `before` events are
/// delivered.
fn an_emit_from_a_sink_is_refused_at_once(
    builder: ossa_events::EmitterBuilder,
    event: fn() -> EventBuilder<'static>,
    before: u64,
    refused: &str,
) {
    struct EmitsInSend(Slot, Answers, fn() -> EventBuilder<'static>);
    impl Sink for EmitsInSend {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            if self.1.lock().unwrap().is_empty() {
                let start = Instant::now();
                let r = own(&self.0).emit((self.2)());
                self.1
                    .lock()
                    .unwrap()
                    .push((format!("{r:?}"), start.elapsed()));
            }
            Ok(())
        }
    }
    let slot: Slot = Arc::default();
    let answers: Answers = Arc::default();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    let em = builder
        .sink(EmitsInSend(slot.clone(), answers.clone(), event))
        .on_undelivered(move |u| r.lock().unwrap().push(u.reason))
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(em.clone());
    for _ in 0..before {
        em.emit(event()).unwrap();
    }
    let start = Instant::now();
    assert_eq!(em.flush().unwrap().delivered, before);
    assert!(
        start.elapsed() < SOON,
        "the caller's flush waited {:?}",
        start.elapsed()
    );
    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers[0].0, refused, "{answers:?}");
    assert!(
        answers[0].1 < SOON,
        "the sink's emit waited {:?}",
        answers[0].1
    );
    slot.lock().unwrap().take();
    em.shutdown().unwrap();
    let m = em.metrics();
    assert_eq!(
        (m.emitted, m.delivered, m.dropped),
        (before, before, 1),
        "{m:?}"
    );
    assert_eq!(*reasons.lock().unwrap(), [Reason::Dropped]);
}

/// `emit` under `Overflow::Block` from a sink into a full queue: only the
/// worker, which is the caller, can make room. It is refused at once, as
/// `DropNewest` would.
#[test]
fn an_emit_under_block_from_a_sink_into_a_full_queue_is_refused_at_once() {
    an_emit_from_a_sink_is_refused_at_once(
        Emitter::builder("/agents/a")
            .queue_capacity(1)
            .overflow(Overflow::Block(LONG)),
        tick,
        1,
        "Err(QueueFull)",
    );
}

/// The same with a full disk spool under `WhenFull::Block`: the room comes
/// from the worker's confirming the batch it is sending.
#[test]
fn an_emit_under_a_blocking_spool_from_a_sink_into_a_full_spool_is_refused_at_once() {
    use ossa_events::spool::{SpoolConfig, WhenFull};
    /// About 3 KB of data: two such events fill a spool of two 4 KiB
    /// segments, a third does not fit.
    fn big() -> EventBuilder<'static> {
        static PAD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        tick().data_text("text/plain", PAD.get_or_init(|| "x".repeat(3000)))
    }
    let dir = std::env::temp_dir().join(format!("ossa-reent-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    an_emit_from_a_sink_is_refused_at_once(
        Emitter::builder("/agents/a")
            .batch_size(100)
            .flush_interval(Duration::from_secs(3600))
            .spool(
                SpoolConfig::new(&dir)
                    .segment_bytes(4096)
                    .max_bytes(8192)
                    .when_full(WhenFull::Block(LONG)),
            ),
        big,
        2,
        "Err(SpoolFull)",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sets its flag when dropped: the worker thread is at its end.
struct Ended(Arc<AtomicBool>);
impl Drop for Ended {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// As documented: the last handle, held only by `on_undelivered`, dropped
/// there on the worker, begins the shutdown without waiting for itself; the
/// worker ends and every event is counted and reported once.
#[test]
fn the_last_handle_dropped_in_on_undelivered_on_the_worker_ends_the_worker() {
    struct RefusesUntilDropped(#[allow(dead_code)] Ended);
    impl Sink for RefusesUntilDropped {
        fn send(&mut self, e: &[Encoded]) -> Result<(), SendError> {
            Refuses.send(e)
        }
    }
    let ended = Arc::new(AtomicBool::new(false));
    let slot: Slot = Arc::default();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let (s, r) = (slot.clone(), reports.clone());
    let em = Emitter::builder("/agents/a")
        .sink(RefusesUntilDropped(Ended(ended.clone())))
        .retry(RetryPolicy::none())
        .on_undelivered(move |u| {
            r.lock().unwrap().push(u.reason);
            drop(s.lock().unwrap().take());
        })
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(em.clone());
    em.emit(tick()).unwrap();
    em.emit(tick()).unwrap();
    drop(em); // the callback's clone is the last
    let start = Instant::now();
    while !ended.load(Ordering::SeqCst) {
        assert!(start.elapsed() < LONG, "the worker did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(*reports.lock().unwrap(), [Reason::Failed, Reason::Failed]);
}

/// As documented: a sink that shuts its emitter down in `send` is answered
/// at once (the shutdown cannot wait for its own thread), its batch is still
/// delivered, and an `emit` from its `Drop` at the worker's end is refused,
/// counted `dropped` and reported once.
#[test]
fn a_sink_that_shuts_its_emitter_down_and_emits_from_its_drop() {
    struct ShutsDown(Slot, Answers);
    impl Sink for ShutsDown {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            if self.1.lock().unwrap().is_empty() {
                let start = Instant::now();
                let r = own(&self.0).shutdown().map(|r| r.pending);
                self.1
                    .lock()
                    .unwrap()
                    .push((format!("{r:?}"), start.elapsed()));
            }
            Ok(())
        }
    }
    impl Drop for ShutsDown {
        fn drop(&mut self) {
            let r = own(&self.0).emit(tick());
            self.1
                .lock()
                .unwrap()
                .push((format!("{r:?}"), Duration::ZERO));
            // The last handle may be this one: dropped on the worker, it
            // does not wait for itself.
            self.0.lock().unwrap().take();
        }
    }
    let slot: Slot = Arc::default();
    let answers: Answers = Arc::default();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r = reports.clone();
    let em = Emitter::builder("/agents/a")
        .sink(ShutsDown(slot.clone(), answers.clone()))
        .on_undelivered(move |u| r.lock().unwrap().push(u.reason))
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(em.clone());
    em.emit(tick()).unwrap();
    let report = em.flush().unwrap();
    assert_eq!(report.delivered, 1);
    let report = em.shutdown().unwrap();
    assert_eq!((report.delivered, report.pending), (1, 0));
    let answers = answers.lock().unwrap().clone();
    assert_eq!(
        answers[0].0, "Ok(1)",
        "the batch being sent is pending: {answers:?}"
    );
    assert!(
        answers[0].1 < SOON,
        "the sink's shutdown waited {:?}",
        answers[0].1
    );
    assert_eq!(answers[1].0, "Err(ShutDown)", "{answers:?}");
    let m = em.metrics();
    assert_eq!((m.emitted, m.delivered, m.dropped), (1, 1, 1), "{m:?}");
    assert_eq!(*reports.lock().unwrap(), [Reason::Dropped]);
}

/// A sink that reaches its emitter through a `WeakEmitter` does not keep it
/// alive: the drop of the user's last handle shuts it down, waits for the
/// delivery of what is pending and ends the worker (the sink dropped),
/// while the sink's upgrades in `send` worked until then. With a strong
/// handle in the sink that drop did none of it.
#[test]
fn a_sink_holding_a_weak_handle_lets_the_last_drop_shut_down_and_deliver() {
    use ossa_events::WeakEmitter;
    use std::sync::OnceLock;
    struct Weak {
        own: Arc<OnceLock<WeakEmitter>>,
        delivered: Arc<Mutex<u64>>,
        upgraded: Arc<Mutex<u64>>,
        _ended: Ended,
    }
    impl Sink for Weak {
        fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
            if let Some(em) = self.own.get().and_then(WeakEmitter::upgrade) {
                // The upgraded handle reaches the emitter, and is dropped.
                assert!(em.metrics().emitted >= events.len() as u64);
                *self.upgraded.lock().unwrap() += 1;
            }
            *self.delivered.lock().unwrap() += events.len() as u64;
            Ok(())
        }
    }
    let own: Arc<OnceLock<WeakEmitter>> = Arc::default();
    let (delivered, upgraded) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
    let ended = Arc::new(AtomicBool::new(false));
    let em = Emitter::builder("/agents/a")
        .sink(Weak {
            own: own.clone(),
            delivered: delivered.clone(),
            upgraded: upgraded.clone(),
            _ended: Ended(ended.clone()),
        })
        .batch_size(2)
        // Only the drop's shutdown delivers the last event.
        .flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    own.set(em.downgrade()).unwrap();
    for _ in 0..4 {
        em.emit(tick()).unwrap();
    }
    // Sent while the user's handle lives: the sink's upgrades work.
    em.flush().unwrap();
    assert_eq!(*upgraded.lock().unwrap(), 2);
    em.emit(tick()).unwrap();
    let weak = em.downgrade();
    drop(em);
    // The drop waited for the shutdown: everything delivered, the worker
    // (and with it the sink) gone, no handle to be had any more.
    assert_eq!(*delivered.lock().unwrap(), 5);
    assert!(ended.load(Ordering::SeqCst), "the worker did not end");
    assert!(weak.upgrade().is_none());
    assert!(own.get().and_then(WeakEmitter::upgrade).is_none());
    // The last batch went out in the shutdown, the upgrade refused there.
    assert_eq!(*upgraded.lock().unwrap(), 2);
    assert!(WeakEmitter::new().upgrade().is_none());
}
