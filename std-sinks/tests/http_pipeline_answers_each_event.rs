//! `HttpSink::pipeline(n)`: several batched requests in flight at once, each
//! on its own connection, against a real HTTP/1.1 server on loopback, and
//! still one answer per event: a batch refused for good (400) fails only its
//! own events, a batch answered 503 is retried and delivered once, every
//! other event is delivered exactly once; and the requests did overlap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{parse_events, read_request, serve_loopback, wait_for};
use ossa_events::receiver::{Receiver, ReceiverConfig};
use ossa_events::sink::{HttpMode, HttpSink};
use ossa_events::{Emitter, Event, EventBuilder, RetryPolicy};

#[derive(Default)]
struct Seen {
    /// How many times each id was answered 2xx.
    accepted: HashMap<String, usize>,
    refused: Vec<String>,
    /// Requests answered 503 (the first holding `retry-me`).
    unavailable: usize,
}

/// A collector on loopback, one thread a connection: for each request,
/// `answer` is given the ids of its events and says the status to answer
/// (after waiting as long as it likes).
fn collector(answer: impl Fn(Vec<String>) -> u16 + Send + Sync + 'static) -> SocketAddr {
    serve_loopback(None, move |stream: TcpStream| {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let Ok(mut w) = stream.try_clone() else {
            return;
        };
        let mut r = BufReader::new(stream);
        while let Ok(Some(req)) = read_request(&mut r) {
            // (Events that do not parse are missing from `ids`: the tests'
            // counts then fail.)
            let mut ids = Vec::new();
            let _ = parse_events(&req.headers, &req.body, |_, ev| {
                ids.push(ev.id().to_owned())
            });
            let status = answer(ids);
            let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            if w.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    })
}

#[test]
fn pipelined_batches_are_answered_per_event() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (s2, now2, most2) = (seen.clone(), now.clone(), most.clone());
    let addr = collector(move |ids| {
        let inside = now2.fetch_add(1, Ordering::SeqCst) + 1;
        most2.fetch_max(inside, Ordering::SeqCst);
        // Long enough for the next batches to be started meanwhile.
        thread::sleep(Duration::from_millis(20));
        let status = {
            let mut s = s2.lock().unwrap();
            if ids.iter().any(|i| i == "bad") {
                s.refused.extend(ids);
                400
            } else if ids.iter().any(|i| i == "retry-me") && s.unavailable == 0 {
                s.unavailable += 1;
                503
            } else {
                for i in ids {
                    *s.accepted.entry(i).or_default() += 1;
                }
                202
            }
        };
        now2.fetch_sub(1, Ordering::SeqCst);
        status
    });
    let sink = HttpSink::builder(format!("http://{addr}/events"))
        .mode(HttpMode::Batched)
        .max_batch(10)
        .pipeline(4)
        .build()
        .unwrap();
    let emitter = Emitter::builder("/agents/t")
        .sink(sink)
        .batch_size(10)
        .queue_capacity(1_000)
        .retry(RetryPolicy::default().base(Duration::from_millis(1)))
        .build()
        .unwrap();
    let ids: Vec<String> = (0..200)
        .map(|i| match i {
            35 => "bad".to_string(),
            117 => "retry-me".to_string(),
            i => format!("e-{i}"),
        })
        .collect();
    for id in &ids {
        emitter
            .emit(EventBuilder::new().id(id.as_str()).ty("dev.example.tick"))
            .unwrap();
    }
    let report = emitter.shutdown().unwrap();
    let m = emitter.metrics();
    let s = seen.lock().unwrap();
    // The batch with `bad` (events 30..40) is refused for good, only it.
    let mut refused = s.refused.clone();
    refused.sort();
    let mut want: Vec<String> = ids[30..40].to_vec();
    want.sort();
    assert_eq!(refused, want);
    assert_eq!((m.failed, report.delivered), (10, 190));
    // The batch answered 503 was sent again and delivered; no event twice.
    assert_eq!((s.unavailable, m.retried), (1, 10));
    for (i, id) in ids.iter().enumerate() {
        let times = s.accepted.get(id).copied().unwrap_or(0);
        assert_eq!(times, usize::from(!(30..40).contains(&i)), "{id}");
    }
    assert!(
        most.load(Ordering::SeqCst) >= 2,
        "requests never overlapped (at most {} at once)",
        most.load(Ordering::SeqCst)
    );
}

/// Against the crate's own receiver (what `listen` runs): every event of a
/// pipelined run arrives once, and the sink's threads end with it.
#[test]
fn pipelined_sink_delivers_everything_to_the_receiver() {
    let got = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let g2 = got.clone();
    let collector = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())
        .unwrap()
        .spawn(move |ev: &Event<'_>| {
            *g2.lock().unwrap().entry(ev.id().to_owned()).or_default() += 1;
        })
        .unwrap();
    let sink = HttpSink::builder(format!("http://{}/", collector.local_addr()))
        .mode(HttpMode::Batched)
        .pipeline(8)
        .build()
        .unwrap();
    let emitter = Emitter::builder("/agents/t")
        .sink(sink)
        .batch_size(50)
        .build()
        .unwrap();
    for i in 0..5_000 {
        let id = format!("p-{i}");
        emitter
            .emit(EventBuilder::new().id(id.as_str()).ty("dev.example.tick"))
            .unwrap();
    }
    assert_eq!(emitter.shutdown().unwrap().delivered, 5_000);
    let stats = collector.shutdown();
    assert_eq!(stats.events, 5_000);
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 5_000);
    assert!(got.values().all(|&n| n == 1));
}

/// A slow collector and a shutdown deadline: the requests in flight end by
/// it, what the collector confirmed by then may count delivered (never
/// more), the rest is counted given up on, and shutdown keeps to its time.
#[test]
fn pipelined_shutdown_keeps_to_its_deadline_and_never_overcounts() {
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let a2 = accepted.clone();
    let addr = collector(move |ids| {
        thread::sleep(Duration::from_millis(100));
        // Counted before answering: the client may count no more.
        a2.lock().unwrap().extend(ids);
        202
    });
    let sink = HttpSink::builder(format!("http://{addr}/events"))
        .mode(HttpMode::Structured)
        .max_batch(10)
        .pipeline(4)
        .build()
        .unwrap();
    let emitter = Emitter::builder("/agents/t")
        .sink(sink)
        .batch_size(10)
        .queue_capacity(1_000)
        .build()
        .unwrap();
    for i in 0..200 {
        let id = format!("d-{i}");
        emitter
            .emit(EventBuilder::new().id(id.as_str()).ty("dev.example.tick"))
            .unwrap();
    }
    // Some batches answered (one takes the collector 100 ms): not a sleep,
    // which a loaded machine outlasted with none answered yet.
    assert!(wait_for(
        || emitter.metrics().delivered > 0,
        Duration::from_secs(10)
    ));
    let t = std::time::Instant::now();
    let _ = emitter.shutdown_within(Duration::from_millis(500));
    let took = t.elapsed();
    let m = emitter.metrics();
    let confirmed = accepted.lock().unwrap().len() as u64;
    // The deadline, the settle grace (0.5 s) and some slack for a busy machine.
    assert!(took < Duration::from_millis(2_000), "{took:?}");
    assert!(m.delivered > 0, "{m:?}");
    assert!(m.delivered <= confirmed, "{m:?}, collector {confirmed}");
    assert_eq!(
        m.delivered + m.failed + m.shutdown_timeout + m.dropped,
        200,
        "{m:?}"
    );
}

/// A collector slow to answer one request (2 s) does not hold back the
/// next event: with lanes free it goes out on another connection about the
/// flush interval after it was emitted, not when the slow answer comes
/// (before `Sink::wait_ready`, 1.9 s later for a 50 ms interval). Both
/// are delivered once.
#[test]
fn a_slow_answer_does_not_hold_the_next_event_past_the_flush_interval() {
    let arrived = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let a2 = arrived.clone();
    let addr = collector(move |ids| {
        let now = Instant::now();
        let slow = ids.iter().any(|i| i == "slow");
        a2.lock().unwrap().extend(ids.into_iter().map(|i| (i, now)));
        if slow {
            thread::sleep(Duration::from_secs(2));
        }
        202
    });
    let sink = HttpSink::builder(format!("http://{addr}/events"))
        .mode(HttpMode::Structured)
        .pipeline(4)
        .build()
        .unwrap();
    let emitter = Emitter::builder("/agents/t")
        .sink(sink)
        .flush_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let at = |id: &str| {
        arrived
            .lock()
            .unwrap()
            .iter()
            .find(|a| a.0 == id)
            .map(|a| a.1)
    };
    emitter
        .emit(EventBuilder::new().id("slow").ty("dev.example.tick"))
        .unwrap();
    assert!(wait_for(|| at("slow").is_some(), Duration::from_secs(10)));
    thread::sleep(Duration::from_millis(100)); // its answer is being waited for
    let emitted = Instant::now();
    emitter
        .emit(EventBuilder::new().id("next").ty("dev.example.tick"))
        .unwrap();
    assert!(wait_for(|| at("next").is_some(), Duration::from_secs(10)));
    let waited = at("next").unwrap() - emitted;
    assert!(
        waited < Duration::from_millis(1_000),
        "the next event reached the collector {waited:?} after it was emitted"
    );
    let report = emitter.shutdown().unwrap();
    assert_eq!((report.delivered, report.failed), (2, 0), "{report:?}");
    assert_eq!(arrived.lock().unwrap().len(), 2, "an event went twice");
}
