//! `flush_async` on a server: hundreds of tasks each await a flush while the
//! collector is slow or down. Every pending flush of an emitter is waited
//! for by one helper thread, not one thread each (which were hundreds of
//! threads, each parked for up to the flush timeout); each future still
//! resolves when what it waits for is delivered, or at its own deadline,
//! and the helper ends when no flush is waiting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, Sink};
use ossa_events::{Emitter, Error, EventBuilder, Phase, SendError};

/// Holds every send until opened; counts the sends begun and what it
/// delivers.
#[derive(Clone, Default)]
struct Gate {
    open: Arc<(Mutex<bool>, Condvar)>,
    begun: Arc<AtomicUsize>,
    delivered: Arc<AtomicUsize>,
}

impl Gate {
    fn open(&self) {
        *self.open.0.lock().unwrap() = true;
        self.open.1.notify_all();
    }
}

impl Sink for Gate {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        self.begun.fetch_add(1, SeqCst);
        let (lock, cv) = &*self.open;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
        self.delivered.fetch_add(events.len(), SeqCst);
        Ok(())
    }
}

/// Threads of this process whose name starts with `prefix`.
fn threads(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .count()
}

fn eventually(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < end, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// Held by each test: the first counts this process's flush helper
/// threads, which the others' emitters would start too.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn tick() -> EventBuilder<'static> {
    EventBuilder::new().ty("dev.example.tick")
}

#[cfg(target_os = "linux")]
#[test]
fn hundreds_of_pending_flushes_share_one_helper_thread() {
    let _one = one_at_a_time();
    let gate = Gate::default();
    let em = Emitter::builder("/agents/a")
        .sink(gate.clone())
        .batch_size(10)
        .flush_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let rt = runtime();
    let before = threads("ossa-events-flu");
    let mut tasks = Vec::new();
    for _ in 0..300 {
        em.emit(tick()).unwrap();
        let f = em.flush_async();
        tasks.push(rt.spawn(f));
    }
    // Every flush is waiting: one helper thread waits for them all.
    std::thread::sleep(Duration::from_millis(200));
    assert!(tasks.iter().all(|t| !t.is_finished()));
    let helpers = threads("ossa-events-flu").saturating_sub(before);
    assert!(
        helpers <= 1,
        "{helpers} flush helper threads for 300 flushes"
    );
    gate.open();
    for t in tasks {
        let report = rt.block_on(t).unwrap().unwrap();
        assert!(report.delivered >= 1, "{report:?}");
    }
    assert_eq!(gate.delivered.load(SeqCst), 300);
    // No flush waits: the helper ends.
    eventually("the helper thread ends", Duration::from_secs(5), || {
        threads("ossa-events-flu") <= before
    });
    // And a new flush starts one again.
    em.emit(tick()).unwrap();
    let report = rt.block_on(em.flush_async()).unwrap();
    assert_eq!(report.delivered, 301);
    em.shutdown().unwrap();
}

/// Each future ends at its own deadline (the flush timeout from its call),
/// never before, while the collector holds every send.
#[test]
fn each_pending_flush_times_out_at_its_own_deadline() {
    let _one = one_at_a_time();
    let gate = Gate::default();
    let timeout = Duration::from_millis(300);
    let em = Emitter::builder("/agents/a")
        .sink(gate.clone())
        .flush_timeout(timeout)
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let rt = runtime();
    let mut tasks = Vec::new();
    for i in 0..20 {
        em.emit(tick()).unwrap();
        let called = Instant::now();
        let f = em.flush_async();
        tasks.push(rt.spawn(async move { (i, called, f.await, Instant::now()) }));
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in tasks {
        let (i, called, r, ended) = rt.block_on(t).unwrap();
        assert!(
            matches!(r, Err(Error::Timeout(Phase::Flush))),
            "flush {i}: {r:?}"
        );
        let took = ended - called;
        assert!(took >= timeout, "flush {i} ended after {took:?}");
        assert!(
            took < timeout + Duration::from_secs(2),
            "flush {i}: {took:?}"
        );
    }
    gate.open();
    let report = em.shutdown().unwrap();
    assert_eq!(report.delivered, 20);
}

/// A flush called after others resolves with them once its own events are
/// delivered, and one whose future is dropped leaves the others waiting.
#[test]
fn flushes_resolve_in_order_and_a_dropped_one_does_not_disturb_the_others() {
    let _one = one_at_a_time();
    let gate = Gate::default();
    let em = Emitter::builder("/agents/a")
        .sink(gate.clone())
        .flush_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let rt = runtime();
    em.emit(tick()).unwrap();
    let first = rt.spawn(em.flush_async());
    em.emit(tick()).unwrap();
    let dropped = em.flush_async();
    em.emit(tick()).unwrap();
    let last = rt.spawn(em.flush_async());
    drop(dropped);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!first.is_finished() && !last.is_finished());
    gate.open();
    let a = rt.block_on(first).unwrap().unwrap();
    let c = rt.block_on(last).unwrap().unwrap();
    assert!(a.delivered >= 1, "{a:?}");
    assert_eq!(c.delivered, 3, "{c:?}");
    em.shutdown().unwrap();
}

/// Flushes called while what `OssaLayer` put off cannot be queued (the
/// queue full, the collector holding every send) share the one helper
/// thread too: it queues what was put off once for all of them, then each
/// resolves when its events, those put off included, are delivered. A
/// thread each, as before, was a thread parked per task while the
/// collector was down.
#[cfg(all(target_os = "linux", feature = "tracing"))]
#[test]
fn flushes_behind_events_put_off_share_one_helper_thread() {
    let _one = one_at_a_time();
    let gate = Gate::default();
    let em = full_behind_events_put_off(&gate, Duration::from_secs(60));
    let rt = runtime();
    let before = threads("ossa-events-flu");
    let tasks: Vec<_> = (0..50).map(|_| rt.spawn(em.flush_async())).collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(tasks.iter().all(|t| !t.is_finished()));
    let helpers = threads("ossa-events-flu").saturating_sub(before);
    assert!(
        helpers <= 1,
        "{helpers} flush helper threads for 50 flushes behind events put off"
    );
    gate.open();
    for t in tasks {
        let report = rt.block_on(t).unwrap().unwrap();
        // The four emitted and the span's two.
        assert_eq!(report.delivered, 6, "{report:?}");
    }
    assert_eq!(gate.delivered.load(SeqCst), 6);
    em.shutdown().unwrap();
}

/// Flushes waiting behind events put off that find no room fail at their
/// deadline, on the one helper thread, and the events are still delivered
/// once the collector takes them.
#[cfg(all(target_os = "linux", feature = "tracing"))]
#[test]
fn flushes_behind_events_put_off_that_find_no_room_time_out_at_their_deadline() {
    let _one = one_at_a_time();
    let gate = Gate::default();
    let timeout = Duration::from_millis(400);
    let em = full_behind_events_put_off(&gate, timeout);
    let rt = runtime();
    let before = threads("ossa-events-flu");
    let called = Instant::now();
    let tasks: Vec<_> = (0..10).map(|_| rt.spawn(em.flush_async())).collect();
    std::thread::sleep(Duration::from_millis(100));
    let helpers = threads("ossa-events-flu").saturating_sub(before);
    assert!(
        helpers <= 1,
        "{helpers} flush helper threads for 10 flushes"
    );
    for t in tasks {
        let r = rt.block_on(t).unwrap();
        assert!(matches!(r, Err(Error::Timeout(Phase::Flush))), "{r:?}");
    }
    let took = called.elapsed();
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(5),
        "{took:?}"
    );
    gate.open();
    let report = em.shutdown().unwrap();
    assert_eq!(report.delivered, 6, "{report:?}");
}

/// An emitter whose queue is full (one event in a send `gate` holds, three
/// queued), behind a GenAI span's start and end that `OssaLayer` put off;
/// `Overflow::Block` for a minute, and the flush timeout `flush_timeout`.
#[cfg(all(target_os = "linux", feature = "tracing"))]
fn full_behind_events_put_off(gate: &Gate, flush_timeout: Duration) -> Emitter {
    use ossa_events::Overflow;
    use ossa_events::tracing_layer::OssaLayer;
    use tracing_subscriber::layer::SubscriberExt as _;

    let em = Emitter::builder("/agents/a")
        .sink(gate.clone())
        .batch_size(1)
        .queue_capacity(4)
        .overflow(Overflow::Block(Duration::from_secs(60)))
        .flush_timeout(flush_timeout)
        .build()
        .unwrap();
    // The capacity counts the events being sent.
    em.emit(tick()).unwrap();
    eventually(
        "the worker takes the first event",
        Duration::from_secs(5),
        || gate.begun.load(SeqCst) == 1,
    );
    for _ in 0..3 {
        em.emit(tick()).unwrap();
    }
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(em.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(
            "invoke_agent",
            gen_ai.agent.name = "a",
            gen_ai.conversation.id = "c"
        );
        drop(span.enter());
    });
    em
}

/// Each flush behind events put off has its own deadline, the flush
/// timeout from its call, on the one helper thread as on a thread each.
/// Flushes called while the helper was queueing what was put off for an
/// earlier one are marked together in its next round, which queues until
/// the earliest of their deadlines: when that passed with no room, all of
/// them failed then, a later one long before its own deadline (here 600 ms
/// early), although the collector came back in time for it.
#[cfg(all(target_os = "linux", feature = "tracing"))]
#[test]
fn a_flush_behind_events_put_off_is_not_failed_before_its_own_deadline() {
    let _one = one_at_a_time();
    let gate = Gate::default();
    let timeout = Duration::from_millis(1000);
    let em = full_behind_events_put_off(&gate, timeout);
    let rt = runtime();
    let t0 = Instant::now();
    // The helper queues what was put off for `first` until t0 + 1 s.
    let first = rt.spawn(em.flush_async());
    std::thread::sleep(Duration::from_millis(300));
    // Listed while it does: both wait for its next round.
    let early = rt.spawn(em.flush_async()); // deadline t0 + 1.3 s
    std::thread::sleep(Duration::from_millis(600));
    let late = rt.spawn(em.flush_async()); // deadline t0 + 1.9 s
    let r = rt.block_on(first).unwrap();
    assert!(matches!(r, Err(Error::Timeout(Phase::Flush))), "{r:?}");
    let r = rt.block_on(early).unwrap();
    assert!(matches!(r, Err(Error::Timeout(Phase::Flush))), "{r:?}");
    // The collector is back 200 ms after the early one's deadline, 400 ms
    // before the late one's.
    let back = t0 + Duration::from_millis(1500);
    std::thread::sleep(back.saturating_duration_since(Instant::now()));
    assert!(
        !late.is_finished(),
        "resolved before its deadline, at {:?} of 1.9 s: {:?}",
        t0.elapsed(),
        rt.block_on(late).unwrap()
    );
    gate.open();
    let report = rt.block_on(late).unwrap().unwrap();
    assert_eq!(report.delivered, 6, "{report:?}");
    em.shutdown().unwrap();
}
