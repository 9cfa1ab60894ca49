//! Extreme and contradictory retry / breaker options (found by review).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ossa_events::sink::{Encoded, Sink};
use ossa_events::{BreakerConfig, Emitter, Error, EventBuilder, RetryPolicy, SendError};

/// A collector that is down: every send fails, retryably.
#[derive(Clone, Default)]
struct Down {
    sends: Arc<AtomicUsize>,
}

impl Sink for Down {
    fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
        self.sends.fetch_add(1, Ordering::SeqCst);
        Err(SendError::retryable(
            Error::Io(std::io::Error::other("connection refused")),
            None,
        ))
    }
}

/// Waits (up to 30 s) until `sends` reaches `n`, then half a second more
/// for any send that should not come.
fn settle_at(sends: &AtomicUsize, n: usize, em: &Emitter) {
    let start = std::time::Instant::now();
    while sends.load(Ordering::SeqCst) < n && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = em.flush_within(Duration::from_millis(500));
}

/// An emitter sending one event a batch to `sink` under `retry` and
/// `breaker`, the breaker's longest open period an hour.
fn one_a_batch(sink: impl Sink + 'static, retry: RetryPolicy, breaker: BreakerConfig) -> Emitter {
    Emitter::builder("/t")
        .sink(sink)
        .batch_size(1)
        .retry(retry)
        .circuit_breaker(breaker.max_open_for(Duration::from_secs(3600)))
        .build()
        .unwrap()
}

/// Emits `n` ticks.
fn ticks(em: &Emitter, n: usize) {
    for _ in 0..n {
        em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
    }
}

/// `threshold` failed attempts in a row open the breaker, whatever the
/// retry policy: with no retries (`RetryPolicy::none()`) each failed
/// attempt is the last of its batch, and it must count all the same.
#[test]
fn the_breaker_opens_without_retries() {
    let down = Down::default();
    let em = one_a_batch(
        down.clone(),
        RetryPolicy::none(),
        BreakerConfig::default()
            .threshold(2)
            .open_for(Duration::from_secs(3600)),
    );
    ticks(&em, 5);
    settle_at(&down.sends, 2, &em);
    assert_eq!(
        down.sends.load(Ordering::SeqCst),
        2,
        "the breaker opened after 2 failed attempts in a row"
    );
    let _ = em.shutdown_within(Duration::ZERO);
    let m = em.metrics();
    assert_eq!(m.failed + m.shutdown_timeout, 5, "{m:?}");
}

/// The same with two attempts per batch: the breaker counts attempts, not
/// batches.
#[test]
fn the_breaker_counts_the_last_attempt_of_a_batch() {
    let down = Down::default();
    let em = one_a_batch(
        down.clone(),
        RetryPolicy::none().max_attempts(2).base(Duration::ZERO),
        BreakerConfig::default()
            .threshold(4)
            .open_for(Duration::from_secs(3600)),
    );
    ticks(&em, 5);
    settle_at(&down.sends, 4, &em);
    assert_eq!(down.sends.load(Ordering::SeqCst), 4);
    let _ = em.shutdown_within(Duration::ZERO);
    let m = em.metrics();
    assert_eq!(m.failed + m.shutdown_timeout, 5, "{m:?}");
}

/// A batch size beyond any queue (even `usize::MAX`, "as large as you
/// like") is accepted by the builder: the emitter must not panic nor
/// reserve room for that many events up front.
#[test]
fn a_huge_batch_size_is_bounded_by_the_queue() {
    for n in [usize::MAX, 1 << 40] {
        let em = Emitter::builder("/t")
            .sink(ossa_events::sink::NullSink::new())
            .batch_size(n)
            .queue_capacity(4)
            .build()
            .unwrap();
        for _ in 0..10 {
            let _ = em.emit(EventBuilder::new().ty("dev.example.tick"));
        }
        em.emit(EventBuilder::new().ty("dev.example.tick")).ok();
        let report = em.shutdown_within(Duration::from_secs(30)).unwrap();
        let m = em.metrics();
        assert_eq!(m.delivered + m.dropped, 11, "{report:?} {m:?}");
    }
}

/// Both unbounded: no capacity overflow either.
#[test]
fn unbounded_batch_and_queue_do_not_panic() {
    let em = Emitter::builder("/t")
        .sink(ossa_events::sink::NullSink::new())
        .batch_size(usize::MAX)
        .queue_capacity(usize::MAX)
        .flush_interval(Duration::ZERO)
        .build()
        .unwrap();
    for _ in 0..10 {
        em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
    }
    let report = em.shutdown_within(Duration::from_secs(30)).unwrap();
    assert_eq!(report.delivered, 10, "{report:?}");
}

/// A pipelined sink (Kafka's default is 64 batches in flight) whose
/// collector goes down: every batch in flight fails at about the same time.
/// Only the failures that opened the breaker, and failed probes, count: the
/// batches started before it opened are no probes, and must not double the
/// open period each (8 in flight: 2⁷ × `open_for` before the first probe).
#[test]
fn batches_in_flight_when_the_breaker_opens_are_no_failed_probes() {
    use ossa_events::sink::Ticket;
    use std::sync::{Condvar, Mutex};

    #[derive(Clone, Default)]
    struct Pipelined {
        /// Until set, the first `start` waits (so that 8 are started before
        /// the first is settled).
        gate: Arc<(Mutex<bool>, Condvar)>,
        started: Arc<AtomicUsize>,
        settled: Arc<AtomicUsize>,
    }
    impl Sink for Pipelined {
        fn pipeline(&self) -> usize {
            8
        }
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            Ok(())
        }
        fn start(
            &mut self,
            _: &[Encoded],
            _: ossa_events::sink::SendDeadline<'_>,
        ) -> Result<Ticket, SendError> {
            let n = self.started.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                let (m, cv) = &*self.gate;
                let mut open = m.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
            }
            Ok(Ticket::new(n as u64))
        }
        fn settle(
            &mut self,
            _: Ticket,
            _: &[Encoded],
            _: ossa_events::sink::SendDeadline<'_>,
        ) -> Result<(), SendError> {
            // The first 8 batches fail (the outage), the rest go through.
            if self.settled.fetch_add(1, Ordering::SeqCst) < 8 {
                Err(SendError::retryable(
                    Error::Io(std::io::Error::other("broker down")),
                    None,
                ))
            } else {
                Ok(())
            }
        }
    }

    let sink = Pipelined::default();
    let em = one_a_batch(
        sink.clone(),
        RetryPolicy::none(),
        BreakerConfig::default()
            .threshold(1)
            .open_for(Duration::from_millis(300)),
    );
    ticks(&em, 8);
    {
        let (m, cv) = &*sink.gate;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
    let report = em.flush_within(Duration::from_secs(60)).unwrap();
    assert_eq!(report.failed, 8, "{report:?}");
    assert_eq!(sink.started.load(Ordering::SeqCst), 8);
    // The collector is back: the probe comes after `open_for` (300 ms), not
    // after 2⁷ × 300 ms = 38 s.
    em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
    let report = em.flush_within(Duration::from_secs(15));
    assert!(
        matches!(report, Ok(ref r) if r.delivered == 1),
        "no probe within 15 s: {report:?}"
    );
}

/// A probe that the collector answers with a refusal (a non-retryable
/// failure: an HTTP 400, a record the broker refuses) found the collector
/// up: the breaker closes, as after a delivered probe. It stayed open (its
/// open period over), so the next retryable failure, alone and below the
/// threshold, counted as a failed probe and held every event back for twice
/// the open period.
#[test]
fn a_probe_answered_with_a_refusal_closes_the_breaker() {
    use std::sync::Mutex;
    use std::time::Instant;

    #[derive(Clone, Default)]
    struct Scripted {
        at: Arc<Mutex<Vec<Instant>>>,
    }
    impl Sink for Scripted {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            let n = {
                let mut at = self.at.lock().unwrap();
                at.push(Instant::now());
                at.len()
            };
            match n {
                // Down twice (the breaker opens), the probe refused, one
                // more failure, then up.
                1 | 2 | 4 => Err(SendError::retryable(
                    Error::Io(std::io::Error::other("connection refused")),
                    None,
                )),
                3 => Err(SendError::fatal(Error::Io(std::io::Error::other(
                    "400 Bad Request",
                )))),
                _ => Ok(()),
            }
        }
    }

    let sink = Scripted::default();
    // Long enough that a loaded machine's scheduling (the 5th send comes
    // at once after the 4th) stays far below it; before the fix that
    // send waited twice this.
    let open_for = Duration::from_secs(2);
    let em = one_a_batch(
        sink.clone(),
        RetryPolicy::none(),
        BreakerConfig::default().threshold(2).open_for(open_for),
    );
    ticks(&em, 5);
    let report = em.flush_within(Duration::from_secs(30)).unwrap();
    assert_eq!((report.failed, report.delivered), (4, 1), "{report:?}");
    let at = sink.at.lock().unwrap().clone();
    assert_eq!(at.len(), 5);
    // The breaker opened after the 2nd failure: the probe came no sooner
    // than `open_for` later.
    assert!(at[2] - at[1] >= open_for * 9 / 10, "{:?}", at[2] - at[1]);
    // The refused probe closed it: one failure (of 2) holds nothing back.
    assert!(
        at[4] - at[3] < open_for,
        "the 5th event waited {:?} after one failure below the threshold",
        at[4] - at[3]
    );
    let m = em.metrics();
    assert_eq!((m.failed, m.delivered), (4, 1), "{m:?}");
}
