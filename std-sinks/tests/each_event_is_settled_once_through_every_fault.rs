//! Regression tests for the faults issue 11 found by reading the worker and
//! the sinks (as of d6c118f), one test per numbered problem; each failed
//! there:
//!
//! 1. shutdown that begins while a send is in flight, followed by a
//!    `Retry-After: 60`, slept the whole backoff and left the batch uncounted;
//! 2. `WriterSink` wrote a batch again after a write that failed part-way or
//!    a flush that failed, so lines arrived twice;
//! 4. a `Retry::No` answer for one event failed every event behind it;
//! 5. a panicking `on_undelivered` killed the worker and events were
//!    counted twice;
//! 7. `flush()` compared counts, not positions, and could return while an
//!    older event was still unsettled.
//!
//! (3 and 10 are unit tests of the Kafka sink, 11 of the sinks' buffers, 6, 8
//! and 9 of the core crate.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, SendDeadline, Sink, Ticket, WriterSink};
use ossa_events::{Emitter, Error, EventBuilder, Reason, Retry, RetryPolicy, SendError};

type Log = Arc<Mutex<Vec<(Reason, String)>>>;

fn tick(id: &str) -> EventBuilder<'_> {
    EventBuilder::new().id(id).ty("dev.example.tick")
}

fn recorder() -> (
    Log,
    impl Fn(&ossa_events::Undelivered<'_>) + Send + Sync + 'static,
) {
    let log: Log = Arc::default();
    let l2 = log.clone();
    (log, move |u: &ossa_events::Undelivered<'_>| {
        l2.lock().unwrap().push((u.reason, u.id.to_owned()))
    })
}

/// Problem 1: the send in flight when shutdown begins answers "retry in
/// 60 s"; shutdown must not sleep that out, and must count the batch.
#[test]
fn shutdown_during_a_send_that_answers_retry_after_60_ends_at_its_deadline() {
    /// Tells `started` when its send begins.
    struct SlowThenRetryAfter(Arc<AtomicUsize>);
    impl Sink for SlowThenRetryAfter {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(300));
            let e = Error::HttpStatus {
                status: 503,
                body: String::new(),
            };
            Err(SendError::retryable(e, Some(Duration::from_secs(60))))
        }
    }
    let started = Arc::new(AtomicUsize::new(0));
    let (log, cb) = recorder();
    let em = Emitter::builder("/t")
        .sink(SlowThenRetryAfter(started.clone()))
        .flush_interval(Duration::from_millis(1))
        .shutdown_timeout(Duration::from_secs(10))
        .on_undelivered(cb)
        .build()
        .unwrap();
    em.emit(tick("a")).unwrap();
    // The send is in flight: seen begun, not hoped to have begun after a
    // sleep (a worker held off the core would begin it after shutdown).
    let t = Instant::now();
    while started.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(started.load(Ordering::SeqCst), 1);
    let t = Instant::now();
    let r = em.shutdown();
    let took = t.elapsed();
    assert!(r.is_ok(), "{r:?}");
    // The send returns within 300 ms; the 60 s retry is past the deadline:
    // given up then, not slept out to the 10 s deadline (the bound leaves a
    // loaded machine room: it was 700 ms of a 1 s deadline, and a run
    // niced under load took 2 s).
    assert!(took < Duration::from_secs(5), "{took:?}");
    let m = em.metrics();
    assert_eq!(
        (m.delivered, m.failed, m.shutdown_timeout, m.queue_depth),
        (0, 0, 1, 0),
        "{m:?}"
    );
    assert_eq!(
        *log.lock().unwrap(),
        [(Reason::ShutdownTimeout, "a".to_owned())]
    );
}

/// Problem 1, the stuck-sink side: a sink that ignores the deadline does
/// not hold shutdown up past it, and its batch is counted and reported once.
#[test]
fn a_sink_stuck_past_the_deadline_has_its_batch_counted_once_by_shutdown() {
    /// Holds its send until the test opens `gate` (or 10 s pass); counts
    /// the sends begun in the third field, those returned in the first.
    struct Stuck(
        Arc<AtomicUsize>,
        Arc<(Mutex<bool>, Condvar)>,
        Arc<AtomicUsize>,
    );
    impl Sink for Stuck {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            self.2.fetch_add(1, Ordering::SeqCst);
            let (m, cv) = &*self.1;
            let g = m.lock().unwrap();
            drop(cv.wait_timeout_while(g, Duration::from_secs(10), |open| !*open));
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(()) // "delivered", too late: shutdown counted it already
        }
    }
    let returned = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let gate: Arc<(Mutex<bool>, Condvar)> = Arc::default();
    let (log, cb) = recorder();
    let em = Emitter::builder("/t")
        .sink(Stuck(returned.clone(), gate.clone(), started.clone()))
        .flush_interval(Duration::from_millis(1))
        .shutdown_timeout(Duration::from_millis(200))
        .on_undelivered(cb)
        .build()
        .unwrap();
    em.emit(tick("a")).unwrap();
    em.emit(tick("b")).unwrap();
    // A send in the sink when shutdown begins: seen, not slept for.
    let t = Instant::now();
    while started.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(started.load(Ordering::SeqCst) > 0);
    let t = Instant::now();
    let r = em.shutdown();
    let took = t.elapsed();
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    // The deadline and the grace are 250 ms; waiting for the sink would be
    // until the gate opens below (10 s at most). (300 ms failed on a
    // loaded machine: 323–376 ms; 600 ms, against a sink that answered at
    // 800 ms, left little more room.)
    assert!(took < Duration::from_millis(2000), "{took:?}");
    let m = em.metrics();
    assert_eq!(
        (m.delivered, m.shutdown_timeout, m.queue_depth),
        (0, 2, 0),
        "{m:?}"
    );
    // The late answer changes nothing.
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    while returned.load(Ordering::SeqCst) == 0 {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(50));
    let m = em.metrics();
    assert_eq!((m.delivered, m.shutdown_timeout), (0, 2), "{m:?}");
    let mut got = log.lock().unwrap().clone();
    got.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        got,
        [
            (Reason::ShutdownTimeout, "a".into()),
            (Reason::ShutdownTimeout, "b".into())
        ]
    );
}

/// A writer that takes `cut` bytes, then fails once (a part of a line
/// written), then works; with `flush_fails`, its first flush fails instead.
#[derive(Clone, Default)]
struct Flaky {
    out: Arc<Mutex<Vec<u8>>>,
    cut: Option<usize>,
    flush_fails: bool,
    written: usize,
}

impl Write for Flaky {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(cut) = self.cut {
            let room = cut - self.written;
            if room == 0 {
                self.cut = None;
                return Err(std::io::Error::other("connection reset"));
            }
            let n = room.min(buf.len());
            self.out.lock().unwrap().extend_from_slice(&buf[..n]);
            self.written += n;
            return Ok(n);
        }
        self.out.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.flush_fails) {
            return Err(std::io::Error::other("flush failed"));
        }
        Ok(())
    }
}

fn ids_in(out: &[u8]) -> (Vec<String>, usize) {
    let text = String::from_utf8_lossy(out);
    let mut ids = Vec::new();
    let mut torn = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => ids.push(v["id"].as_str().unwrap().to_owned()),
            Err(_) => torn += 1,
        }
    }
    (ids, torn)
}

fn through_writer(w: impl Write + Send + 'static) -> ossa_events::Metrics {
    let em = Emitter::builder("/t")
        .sink(WriterSink::new(w))
        .batch_size(4)
        .retry(RetryPolicy::default().base(Duration::from_millis(1)))
        .build()
        .unwrap();
    for i in 0..4 {
        em.emit(tick(&format!("e{i}"))).unwrap();
    }
    em.flush().unwrap();
    em.shutdown().unwrap();
    em.metrics()
}

/// Problem 2: a write that fails after one and a half lines.
#[test]
fn a_writer_that_fails_part_way_gets_each_line_once() {
    // Find where the second line ends, to cut inside it.
    let probe = Flaky::default();
    through_writer(probe.clone());
    let full = probe.out.lock().unwrap().clone();
    let first_nl = full.iter().position(|&b| b == b'\n').unwrap();
    let w = Flaky {
        cut: Some(first_nl + 1 + 30),
        ..Flaky::default()
    };
    let m = through_writer(w.clone());
    let (ids, torn) = ids_in(&w.out.lock().unwrap());
    assert_eq!(ids, ["e0", "e1", "e2", "e3"], "each line once, none glued");
    assert_eq!(torn, 1, "the torn part of e1 on a line of its own");
    assert_eq!((m.delivered, m.failed), (4, 0), "{m:?}");
}

/// Problem 2: lines a `BufWriter` took but could not flush are not written again.
#[test]
fn a_flush_that_fails_is_retried_by_flushing_not_by_writing_again() {
    let inner = Flaky {
        flush_fails: true,
        ..Flaky::default()
    };
    let out = inner.out.clone();
    let m = through_writer(std::io::BufWriter::new(inner));
    let (ids, torn) = ids_in(&out.lock().unwrap());
    assert_eq!(ids, ["e0", "e1", "e2", "e3"], "no line twice");
    assert_eq!(torn, 0);
    assert_eq!((m.delivered, m.failed), (4, 0), "{m:?}");
    assert!(m.retried >= 4, "{m:?}");
}

/// Problem 4: a refusal for good of one event fails that event only.
#[test]
fn retry_no_for_one_event_fails_that_event_only() {
    #[derive(Clone, Default)]
    struct RefusesC(Arc<Mutex<Vec<String>>>);
    impl Sink for RefusesC {
        fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
            let mut err: Option<SendError> = None;
            for (i, e) in events.iter().enumerate() {
                if e.id() == "c" {
                    let f = Error::HttpStatus {
                        status: 422,
                        body: "no c".into(),
                    };
                    err = Some(SendError::fatal_at(i..i + 1, f));
                } else {
                    self.0.lock().unwrap().push(e.id().to_owned());
                }
            }
            err.map_or(Ok(()), Err)
        }
    }
    let sink = RefusesC::default();
    let (log, cb) = recorder();
    let em = Emitter::builder("/t")
        .sink(sink.clone())
        .batch_size(5)
        .on_undelivered(cb)
        .build()
        .unwrap();
    for id in ["a", "b", "c", "d", "e"] {
        em.emit(tick(id)).unwrap();
    }
    let r = em.flush().unwrap();
    assert_eq!((r.delivered, r.failed), (4, 1));
    assert_eq!(em.metrics().retried, 0);
    assert_eq!(*sink.0.lock().unwrap(), ["a", "b", "d", "e"]);
    assert_eq!(*log.lock().unwrap(), [(Reason::Failed, "c".to_owned())]);
}

/// Problem 5: a callback that panics neither kills the worker nor counts
/// or reports anything twice.
#[test]
fn a_panicking_on_undelivered_is_called_once_per_event_and_the_worker_goes_on() {
    struct Refuses;
    impl Sink for Refuses {
        fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
            if events.iter().any(|e| e.id().starts_with("bad")) {
                return Err(SendError::fatal(Error::Transport("refused".into())));
            }
            Ok(())
        }
    }
    // The callback's panics print nothing: with RUST_BACKTRACE=1 (as CI
    // has it) the default hook resolved a backtrace of this 38 MB binary on
    // the worker, and under load that outlasted the flush's 30 s (11 of 40
    // starved runs). Every other panic still goes to the default hook.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"callback bug") {
            default_hook(info);
        }
    }));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c2 = calls.clone();
    let em = Emitter::builder("/t")
        .sink(Refuses)
        .batch_size(1)
        .on_undelivered(move |u| {
            c2.lock().unwrap().push(u.id.to_owned());
            panic!("callback bug");
        })
        .build()
        .unwrap();
    em.emit(tick("bad-1")).unwrap();
    em.emit(tick("good-1")).unwrap();
    em.emit(tick("bad-2")).unwrap();
    let r = em.flush().unwrap();
    assert_eq!((r.delivered, r.failed), (1, 2));
    // The worker is alive: more events go through.
    em.emit(tick("good-2")).unwrap();
    assert_eq!(em.flush().unwrap().delivered, 2);
    em.shutdown().unwrap();
    let m = em.metrics();
    assert_eq!(
        (m.emitted, m.delivered, m.failed, m.shutdown_timeout),
        (4, 2, 2, 0)
    );
    assert_eq!(*calls.lock().unwrap(), ["bad-1", "bad-2"]);
}

/// Problem 7: with a pipelined sink, later batches that settle at once must
/// not let a flush return while an older batch is still waiting.
#[test]
fn flush_waits_for_the_oldest_event_not_for_a_count() {
    /// Batch "slow" is held until released; every other batch fails at start.
    #[derive(Clone, Default)]
    struct Held {
        release: Arc<(Mutex<bool>, Condvar)>,
    }
    impl Sink for Held {
        fn pipeline(&self) -> usize {
            4
        }
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            Ok(())
        }
        fn start(&mut self, events: &[Encoded], _: SendDeadline<'_>) -> Result<Ticket, SendError> {
            if events.iter().any(|e| e.id() == "slow") {
                return Ok(Ticket::new(1));
            }
            Err(SendError::fatal(Error::Transport(
                "refused at start".into(),
            )))
        }
        fn settle(
            &mut self,
            _: Ticket,
            _: &[Encoded],
            _: SendDeadline<'_>,
        ) -> Result<(), SendError> {
            let (m, cv) = &*self.release;
            let mut go = m.lock().unwrap();
            while !*go {
                go = cv.wait(go).unwrap();
            }
            Ok(())
        }
    }
    let sink = Held::default();
    let em = Emitter::builder("/t")
        .sink(sink.clone())
        .batch_size(1)
        .flush_interval(Duration::from_millis(1))
        .build()
        .unwrap();
    em.emit(tick("slow")).unwrap();
    em.emit(tick("x0")).unwrap();
    let flusher = {
        let em = em.clone();
        thread::spawn(move || em.flush_within(Duration::from_secs(10)))
    };
    thread::sleep(Duration::from_millis(30));
    // Events emitted after the flush, all settled at once (failed at start):
    // their count passes what the flush waits for.
    for i in 1..10 {
        em.emit(tick(&format!("x{i}"))).unwrap();
    }
    thread::sleep(Duration::from_millis(200));
    assert!(
        !flusher.is_finished(),
        "flush returned while 'slow' was unsettled"
    );
    {
        let (m, cv) = &*sink.release;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
    let r = flusher.join().unwrap().unwrap();
    assert!(r.delivered >= 1, "{r:?}");
    em.shutdown().unwrap();
    let m = em.metrics();
    assert_eq!((m.delivered, m.failed), (1, 10), "{m:?}");
}

/// Retry answers per event: only the events marked retry are sent again.
#[test]
fn only_the_events_marked_retry_are_sent_again() {
    #[derive(Clone, Default)]
    struct SecondLater(Arc<Mutex<Vec<Vec<String>>>>);
    impl Sink for SecondLater {
        fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
            let ids: Vec<String> = events.iter().map(|e| e.id().to_owned()).collect();
            let first = self.0.lock().unwrap().is_empty();
            self.0.lock().unwrap().push(ids);
            if first {
                return Err(
                    SendError::at(1..2, Retry::LATER, Error::Transport("reset".into())).and(
                        3..4,
                        Retry::LATER,
                        Error::Transport("reset".into()),
                    ),
                );
            }
            Ok(())
        }
    }
    let sink = SecondLater::default();
    let em = Emitter::builder("/t")
        .sink(sink.clone())
        .batch_size(5)
        .retry(RetryPolicy::default().base(Duration::from_millis(1)))
        .build()
        .unwrap();
    for id in ["a", "b", "c", "d", "e"] {
        em.emit(tick(id)).unwrap();
    }
    let r = em.flush().unwrap();
    assert_eq!((r.delivered, r.failed), (5, 0));
    let calls = sink.0.lock().unwrap().clone();
    assert_eq!(calls, [vec!["a", "b", "c", "d", "e"], vec!["b", "d"]]);
    assert_eq!(em.metrics().retried, 2);
}
