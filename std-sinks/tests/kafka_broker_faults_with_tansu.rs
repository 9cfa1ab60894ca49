//! `KafkaSink` behind an `Emitter` when the broker fails: a real tansu
//! broker killed with a request on the wire and started again on its port
//! (a fatal idempotence error), a broker that accepts connections and never
//! answers, and shutdown or drop during an outage. In each: every event ends in exactly one place (delivered, or
//! reported once to `on_undelivered`), the metrics agree, and nothing waits
//! past its deadline. (`kafka_with_tansu.rs` has the broker started late and
//! the missing topic; `kafka_sink_mock_cluster.rs` the mock cluster's faults.)
#![cfg(feature = "kafka")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::kafka_contract::{
    accounted, read_ids, reported_once, reporting, restart, restartable_broker_with_sink,
    wait_reported,
};
use common::kafka_events::{event, specs};
use common::tansu::free_port_for_later;
use ossa_events::sink::KafkaSink;
use ossa_events::{Emitter, Reason, RetryPolicy};

/// The consumer group that reads the topics back.
const GROUP: &str = "ossa-events-faults-test";

/// A loopback "broker" that accepts connections, reads what it is sent and
/// never answers. Stops (and closes its connections) when dropped.
struct Silent {
    port: u16,
    stop: Arc<AtomicBool>,
    accepted: Arc<Mutex<usize>>,
}

impl Silent {
    fn start() -> Silent {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        thread::spawn(move || {
            while !s.load(Ordering::Acquire) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        *a.lock().unwrap() += 1;
                        let s = s.clone();
                        thread::spawn(move || {
                            c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                            let mut buf = [0u8; 4096];
                            while !s.load(Ordering::Acquire) {
                                if let Ok(0) = c.read(&mut buf) {
                                    break;
                                }
                            }
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Silent {
            port,
            stop,
            accepted,
        }
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// A broker that takes the connection and never answers: each event's
/// delivery times out, is retried by the emitter, and fails once its
/// attempts are spent, reported once as timed out; the flush ends within
/// the delivery timeouts it is owed, not the sink's 5 s report grace per
/// attempt on top.
#[test]
fn a_broker_that_never_answers_times_out_every_event_once() {
    const N: usize = 30;
    let silent = Silent::start();
    let sink = KafkaSink::builder(silent.bootstrap(), "silent")
        .delivery_timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let (b, reported) = reporting(
        Emitter::builder("/agents/kafka-test")
            .sink(sink)
            .flush_interval(Duration::from_millis(10))
            .retry(
                RetryPolicy::default()
                    .base(Duration::from_millis(50))
                    .cap(Duration::from_millis(100))
                    .max_attempts(3),
            ),
    );
    let em = b.build().unwrap();
    for s in &specs("silent", N, false) {
        em.emit_event(&event(s)).unwrap();
    }
    let t = Instant::now();
    let report = em.flush_within(Duration::from_secs(15)).unwrap();
    let took = t.elapsed();
    assert_eq!(
        (report.delivered, report.failed),
        (0, N as u64),
        "{report:?}"
    );
    assert!(*silent.accepted.lock().unwrap() > 0, "never connected");
    let m = em.metrics();
    let by = reported_once(&reported);
    accounted(&m, N as u64, &by);
    assert!(m.retried > 0, "{m:?}");
    let got = reported.lock().unwrap().clone();
    assert!(
        got.iter()
            .all(|(r, _, e)| *r == Reason::Failed && e.contains("timed out")),
        "{:?}",
        got.first()
    );
    eprintln!(
        "silent broker: flushed in {took:?}; {m:?}; first: {:?}",
        got.first()
    );
    let t = Instant::now();
    em.shutdown().unwrap();
    drop(em);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

/// Shutdown during an outage (a broker that never answers, and one never
/// started) with a delivery timeout far longer than shutdown's limit:
/// `shutdown_within` returns at its limit, and every event is counted and
/// reported once, `ShutdownTimeout`.
#[test]
fn shutdown_within_during_an_outage_counts_every_event_once_at_its_limit() {
    const N: usize = 40;
    let silent = Silent::start();
    let never = format!("127.0.0.1:{}", free_port_for_later());
    for bootstrap in [silent.bootstrap(), never] {
        let sink = KafkaSink::builder(&bootstrap, "outage")
            .delivery_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let (b, reported) = reporting(
            Emitter::builder("/agents/kafka-test")
                .sink(sink)
                .flush_interval(Duration::from_millis(10)),
        );
        let em = b.build().unwrap();
        for s in &specs("outage", N, false) {
            em.emit_event(&event(s)).unwrap();
        }
        thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let r = em.shutdown_within(Duration::from_secs(1));
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(2500),
            "{bootstrap}: {took:?} {r:?}"
        );
        wait_reported(&reported, N, Duration::from_secs(3));
        let m = em.metrics();
        let by = reported_once(&reported);
        accounted(&m, N as u64, &by);
        assert_eq!(m.shutdown_timeout, N as u64, "{bootstrap}: {m:?}");
        let t = Instant::now();
        drop(em);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "drop took {:?}",
            t.elapsed()
        );
    }
}

/// The last handle dropped during an outage: with `wait_on_drop(true)` the
/// drop waits about the shutdown timeout, with `(false)` not at all; either
/// way every event is reported once, `ShutdownTimeout` or (its attempts
/// spent) `Failed`, within the shutdown timeout.
#[test]
fn drop_during_an_outage_reports_every_event_once_waiting_or_not() {
    const N: usize = 40;
    for (wait, delivery) in [
        (true, Duration::from_secs(30)),
        (false, Duration::from_secs(30)),
        (true, Duration::from_millis(300)),
        (false, Duration::from_millis(300)),
    ] {
        let bootstrap = format!("127.0.0.1:{}", free_port_for_later());
        let sink = KafkaSink::builder(&bootstrap, "dropped")
            .delivery_timeout(delivery)
            .build()
            .unwrap();
        let (b, reported) = reporting(
            Emitter::builder("/agents/kafka-test")
                .sink(sink)
                .flush_interval(Duration::from_millis(10))
                .shutdown_timeout(Duration::from_secs(1))
                .retry(RetryPolicy::default().base(Duration::from_millis(50)))
                .wait_on_drop(wait),
        );
        let em = b.build().unwrap();
        for s in &specs("dropped", N, false) {
            em.emit_event(&event(s)).unwrap();
        }
        thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        drop(em);
        let took = t.elapsed();
        if wait {
            assert!(
                took < Duration::from_millis(2500),
                "{wait} {delivery:?}: {took:?}"
            );
        } else {
            // Not the 1 s shutdown a waiting drop takes (room for a loaded
            // machine: it was 100 ms).
            assert!(
                took < Duration::from_millis(500),
                "{wait} {delivery:?}: {took:?}"
            );
        }
        wait_reported(&reported, N, Duration::from_secs(4));
        let by = reported_once(&reported);
        let n: u64 = by.values().sum();
        assert_eq!(
            n,
            N as u64,
            "{wait} {delivery:?}: {by:?} after {:?}",
            t.elapsed()
        );
        assert_eq!(by.get("Dropped"), None, "{by:?}");
    }
}

/// The broker frozen (SIGSTOP) with a produce request on the wire, then
/// killed and started again on its port: librdkafka's retry of that request
/// meets a broker that does not know the producer id, a fatal idempotence
/// error. The failed reports carry the cause (`UnknownProducerId`), not
/// `Fatal`: the sink must still start its new producer then, so that the
/// emitter's next attempt is delivered. (It kept the dead producer, whose
/// every produce then failed with `Fatal`: one attempt of the retry budget
/// lost per fatal error, and with two attempts every such event failed,
/// reported "Fatal (Local: Fatal error)", though the broker was back.)
#[test]
fn a_fatal_idempotence_error_starts_a_new_producer_before_the_next_attempt() {
    let topic = "fatal";
    let (port, broker, bootstrap, sink) = restartable_broker_with_sink(topic);
    let (b, reported) = reporting(
        Emitter::builder("/agents/kafka-test")
            .sink(sink)
            .flush_interval(Duration::from_millis(10))
            // One retry: enough once the broker is back.
            .retry(
                RetryPolicy::default()
                    .base(Duration::from_millis(50))
                    .max_attempts(2),
            ),
    );
    let em = b.build().unwrap();
    let all = specs("fatal", 100, false);
    for s in &all[..50] {
        em.emit_event(&event(s)).unwrap();
    }
    assert_eq!(em.flush().unwrap().delivered, 50);
    // Frozen: the next batch goes on the wire and gets no answer.
    broker.signal("-STOP");
    for s in &all[50..] {
        em.emit_event(&event(s)).unwrap();
    }
    thread::sleep(Duration::from_millis(500));
    let broker = restart(broker, port, topic);
    let t = Instant::now();
    let report = em.flush_within(Duration::from_secs(15));
    let took = t.elapsed();
    let m = em.metrics();
    em.shutdown().unwrap();
    let by = reported_once(&reported);
    accounted(&m, 100, &by);
    let got = reported.lock().unwrap().clone();
    assert_eq!(
        (m.delivered, m.failed),
        (100, 0),
        "{report:?} after {took:?}; first reported: {:?}",
        got.first()
    );
    // The restarted broker holds the 50 sent after it froze, each once
    // (the frozen broker never stored them).
    let ids = read_ids(&bootstrap, topic, GROUP, 50, Duration::from_secs(10));
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!((ids.len(), sorted.len()), (50, 50), "{ids:?}");
    drop(broker);
}

/// The tests above run side by side in this process, and one's "broker
/// never started" port must not be another's broker port (started there,
/// or restarted there after a kill): `free_port_for_later` gives each call
/// a port of its own. (Two calls gave the same port: each scan starts at
/// one place per process, and a port nobody has bound yet looks free.)
#[test]
fn free_ports_for_later_differ_within_a_process() {
    let ports: Vec<u16> = (0..8).map(|_| free_port_for_later()).collect();
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ports.len(), "{ports:?}");
}
