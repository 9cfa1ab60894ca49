//! The `Emitter` handle's public contract when its calls race: flush and
//! shutdown from many threads in any order, emits during the drain, what
//! each call returns, and the counters at rest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, Sink};
use ossa_events::{Emitter, Error, EventBuilder, Reason, SendError};

/// Delivers, a little slowly, and notes when each event arrived.
#[derive(Clone, Default)]
struct Slowish {
    at: Arc<Mutex<Vec<Instant>>>,
}

impl Sink for Slowish {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        std::thread::sleep(Duration::from_micros(200));
        let now = Instant::now();
        self.at.lock().unwrap().extend(events.iter().map(|_| now));
        Ok(())
    }
}

fn tick() -> EventBuilder<'static> {
    EventBuilder::new().ty("dev.example.tick")
}

/// Emitting, flushing and shutting down threads race; every emit is
/// accepted or refused `ShutDown`/`QueueFull` and counted so; each report
/// agrees with the counters; at rest nothing is left waiting.
#[test]
fn flushes_and_shutdowns_racing_emits_agree_with_the_counters() {
    for round in 0..5 {
        let reported = Arc::new(AtomicU64::new(0));
        let r = reported.clone();
        let em = Emitter::builder("/agents/a")
            .sink(Slowish::default())
            .batch_size(7)
            .queue_capacity(50)
            .flush_interval(Duration::from_millis(5))
            .on_undelivered(move |_| {
                r.fetch_add(1, Ordering::Relaxed);
            })
            .build()
            .unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for _ in 0..4 {
            let (em, accepted, refused) = (em.clone(), accepted.clone(), refused.clone());
            threads.push(std::thread::spawn(move || {
                for _ in 0..2_000 {
                    match em.emit(tick()) {
                        Ok(()) => accepted.fetch_add(1, Ordering::Relaxed),
                        Err(Error::ShutDown | Error::QueueFull) => {
                            refused.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => panic!("{e}"),
                    };
                }
            }));
        }
        let mut reporters = Vec::new();
        for i in 0..3 {
            let em = em.clone();
            reporters.push(std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..50 {
                    let r = if i == 2 {
                        em.flush_within(Duration::ZERO)
                    } else {
                        em.flush()
                    };
                    match r {
                        Ok(r) => {
                            assert!(r.delivered >= last, "delivered went back: {r:?}");
                            // One moment's numbers: no event both ended and waiting.
                            let ended = r.delivered + r.failed + r.shutdown_timeout;
                            let emitted = em.metrics().emitted;
                            assert!(ended + r.pending <= emitted, "{r:?} of {emitted}");
                            last = r.delivered;
                        }
                        Err(Error::Timeout(ossa_events::Phase::Flush)) if i == 2 => {}
                        Err(e) => panic!("flush: {e}"),
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(3 + round));
        let shut = {
            let em = em.clone();
            std::thread::spawn(move || em.shutdown())
        };
        let first = em.shutdown().unwrap();
        let other = shut.join().unwrap().unwrap();
        for t in threads.into_iter().chain(reporters) {
            t.join().unwrap();
        }
        let again = em.shutdown().unwrap();
        let after = em.flush().unwrap();
        let m = em.metrics();
        let (acc, refd) = (
            accepted.load(Ordering::Relaxed),
            refused.load(Ordering::Relaxed),
        );
        assert_eq!(m.emitted, acc, "{m:?}");
        assert_eq!(m.dropped, refd, "{m:?}");
        assert_eq!(
            m.emitted,
            m.delivered + m.failed + m.shutdown_timeout + m.queue_depth,
            "{m:?}"
        );
        assert_eq!((m.queue_depth, m.queue_bytes), (0, 0), "{m:?}");
        assert_eq!(
            reported.load(Ordering::Relaxed),
            m.dropped + m.failed + m.shutdown_timeout,
            "{m:?}"
        );
        for r in [first, other, again, after] {
            assert_eq!(
                (r.delivered, r.failed, r.shutdown_timeout, r.pending),
                (m.delivered, m.failed, m.shutdown_timeout, 0),
                "{r:?} vs {m:?}"
            );
        }
    }
}

/// A lone event waits about the flush interval, not much more, when nothing
/// else happens: also right after a burst of full batches (the worker naps
/// while they come fast) and between quiet spells.
#[test]
fn a_lone_event_waits_about_the_flush_interval() {
    let sink = Slowish::default();
    let em = Emitter::builder("/agents/a")
        .sink(sink.clone())
        .batch_size(10)
        .flush_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut worst = Duration::ZERO;
    for round in 0..6 {
        if round % 2 == 1 {
            // A burst of full batches first.
            for _ in 0..100 {
                em.emit(tick()).unwrap();
            }
            em.flush().unwrap();
        }
        let n = sink.at.lock().unwrap().len();
        let sent = Instant::now();
        em.emit(tick()).unwrap();
        let deadline = sent + Duration::from_secs(3);
        while sink.at.lock().unwrap().len() == n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let at = sink
            .at
            .lock()
            .unwrap()
            .get(n)
            .copied()
            .expect("not sent in 3 s");
        let waited = at - sent;
        assert!(
            waited >= Duration::from_millis(45),
            "sent early: {waited:?}"
        );
        worst = worst.max(waited);
        std::thread::sleep(Duration::from_millis(20));
    }
    // Generous for a loaded machine: a timer that waits for anything but
    // the interval (the next emit, a full batch) waits the 3 s out.
    assert!(worst < Duration::from_millis(50 + 950), "waited {worst:?}");
}

/// A callback that reads the counters and emits (refused once shut down)
/// neither deadlocks nor miscounts; one that panics is contained.
#[test]
fn a_callback_that_reads_metrics_emits_or_panics_is_contained() {
    let slot: Arc<Mutex<Option<Emitter>>> = Arc::default();
    let s = slot.clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let em = Emitter::builder("/agents/a")
        .sink(ossa_events::sink::NullSink::new())
        .on_undelivered(move |u| {
            seen2.lock().unwrap().push(u.reason);
            let em = s.lock().unwrap().clone();
            if let Some(em) = em {
                let _ = em.metrics();
                if u.reason == Reason::Rejected {
                    // Once: the emitter is shut down, this is refused.
                    let r = em.emit(EventBuilder::new().ty("dev.example.again"));
                    assert!(matches!(r, Err(Error::ShutDown)), "{r:?}");
                }
            }
            panic!("callback panics");
        })
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(em.clone());
    em.shutdown().unwrap();
    assert!(em.emit(EventBuilder::new()).is_err()); // rejected: no type
    slot.lock().unwrap().take();
    let m = em.metrics();
    assert_eq!((m.rejected, m.dropped), (1, 1), "{m:?}");
    assert_eq!(*seen.lock().unwrap(), [Reason::Rejected, Reason::Dropped]);
}
