//! The emitter and `HttpSink` together against a real HTTP/1.1 collector on
//! 127.0.0.1 whose behaviour is switched at runtime: 503 with `Retry-After`,
//! 429, 500, 400, a hang past the client's timeout, a connection closed
//! without an answer, and a request processed whose response is then lost.
//!
//! The collector is small but real (threads and `std::net`, keep-alive,
//! `Content-Length` bodies). It parses every request with
//! `ossa_events::parse::http::parse` (all three content modes) and records
//! each event it accepted by id, counting duplicates, so the tests can hold
//! the emitter to its contract: at-least-once delivery, duplicates only where
//! a response was lost, exact counters, bounded memory, a breaker that stops
//! hammering a dead collector, bounded shutdown, delivery on drop.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ossa_events::sink::{HttpMode, HttpSink};
use ossa_events::{
    BreakerConfig, Emitter, Error, Event, EventBuilder, ExtValue, Reason, RetryPolicy, Timestamp,
    Undelivered,
};

use common::{dead_port, header, parse_events, read_request, serve_loopback, wait_for};

// ---------------------------------------------------------------------------
// The collector
// ---------------------------------------------------------------------------

/// How long a keep-alive connection may sit idle before the collector closes
/// it. Longer than any test, so the client never reuses a connection the
/// collector has just closed (which would be a fault the test did not ask for).
const IDLE: Duration = Duration::from_secs(30);

/// What the collector does with one request (after reading all of it).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reply {
    /// `202 Accepted`; the events are recorded as received.
    Accept,
    /// This status, with `Retry-After` when given, and a text body.
    Status {
        code: u16,
        retry_after: Option<&'static str>,
        body: &'static str,
    },
    /// Say nothing for this long (past the client's timeout), then close.
    Hang(Duration),
    /// Close the connection without answering.
    Reset,
    /// Record the events as received, then close without answering: the
    /// collector processed them but the client never hears so.
    LoseResponse,
}

impl Reply {
    /// Whether the events of such a request count as received.
    fn records(&self) -> bool {
        matches!(self, Reply::Accept | Reply::LoseResponse)
    }
}

/// The collector's behaviour, switchable at runtime.
#[derive(Clone, Debug)]
enum Mode {
    /// The same reply to every request.
    Always(Reply),
    /// `fault` to request number `n` (from 0, since the collector started)
    /// when `when(n)`, `202` otherwise.
    Faults {
        fault: Reply,
        when: fn(usize) -> bool,
    },
}

impl Mode {
    fn reply_for(&self, n: usize) -> Reply {
        match self {
            Mode::Always(r) => r.clone(),
            Mode::Faults { fault, when } if when(n) => fault.clone(),
            Mode::Faults { .. } => Reply::Accept,
        }
    }
}

/// One request as the collector read and answered it.
#[derive(Debug)]
struct Request {
    n: usize,
    /// When it had been read whole.
    arrived: Instant,
    /// Just before the answer was written (or the connection closed).
    answered: Instant,
    reply: Reply,
    /// The ids of its events, in order, as our parser read them.
    ids: Vec<String>,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[derive(Debug, Default)]
struct Log {
    requests: Vec<Request>,
    /// Times each event id was received (accepted, or processed and the response lost).
    received: HashMap<String, usize>,
    connections: usize,
    /// Anything malformed or unparsable; every test expects none.
    errors: Vec<String>,
}

struct Collector {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    fn start(mode: Mode) -> Collector {
        let mode = Arc::new(Mutex::new(mode));
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, l) = (Arc::clone(&mode), Arc::clone(&log));
        let addr = serve_loopback(Some(Arc::clone(&stop)), move |stream| {
            l.lock().unwrap().connections += 1;
            serve(stream, &m, &l);
        });
        Collector {
            addr,
            mode,
            log,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    /// Switches the behaviour for the requests that follow.
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }

    fn requests(&self) -> usize {
        self.log().requests.len()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        // Wake the accept loop so it sees the flag; connection threads end
        // when their client closes or their socket times out.
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(stream: TcpStream, mode: &Mutex<Mode>, log: &Mutex<Log>) {
    let _ = stream.set_nodelay(true);
    if stream.set_read_timeout(Some(IDLE)).is_err()
        || stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .is_err()
    {
        return;
    }
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    loop {
        let (headers, body) = match read_request(&mut reader) {
            Ok(Some(req)) if req.method == "POST" && req.path == "/events" => {
                (req.headers, req.body)
            }
            Ok(Some(req)) => {
                let e = format!("request line {} {}", req.method, req.path);
                log.lock().unwrap().errors.push(e);
                return;
            }
            Ok(None) => return,
            Err(e) => {
                log.lock().unwrap().errors.push(e);
                return;
            }
        };
        let arrived = Instant::now();
        let mut ids = Vec::new();
        let parsed = parse_events(&headers, &body, |_, ev| ids.push(ev.id().to_owned()));
        let reply = {
            let mut lg = log.lock().unwrap();
            if let Err(e) = parsed {
                lg.errors.push(e);
            }
            let n = lg.requests.len();
            let reply = mode.lock().unwrap().reply_for(n);
            if reply.records() {
                for id in &ids {
                    *lg.received.entry(id.clone()).or_default() += 1;
                }
            }
            lg.requests.push(Request {
                n,
                arrived,
                answered: Instant::now(),
                reply: reply.clone(),
                ids,
                headers,
                body,
            });
            reply
        };
        match reply {
            Reply::Accept => {
                let head = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
                if out.write_all(head).is_err() {
                    return;
                }
            }
            Reply::Status {
                code,
                retry_after,
                body,
            } => {
                let retry_after = retry_after
                    .map(|v| format!("retry-after: {v}\r\n"))
                    .unwrap_or_default();
                // One write: no Nagle/delayed-ACK stall between head and body.
                let resp = format!(
                    "HTTP/1.1 {code} Scripted\r\ncontent-type: text/plain\r\n{retry_after}content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if out.write_all(resp.as_bytes()).is_err() {
                    return;
                }
            }
            Reply::Hang(d) => {
                thread::sleep(d);
                return;
            }
            Reply::Reset | Reply::LoseResponse => {
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Backoff of a few milliseconds; a collector's `Retry-After` honoured up to 50 ms.
const RETRY_AFTER_CAP: Duration = Duration::from_millis(50);
/// The breaker opens after 3 failures in a row, for 20 ms at first.
const BREAKER_OPEN_FOR: Duration = Duration::from_millis(20);

fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(20)
        .base(Duration::from_millis(1))
        .cap(Duration::from_millis(10))
        .retry_after_cap(RETRY_AFTER_CAP)
}

fn fast_breaker() -> BreakerConfig {
    BreakerConfig::default()
        .threshold(3)
        .open_for(BREAKER_OPEN_FOR)
        .max_open_for(Duration::from_millis(100))
}

/// 503 asking for a 1 s pause; the policy caps it at [`RETRY_AFTER_CAP`].
fn unavailable() -> Reply {
    Reply::Status {
        code: 503,
        retry_after: Some("1"),
        body: "overloaded, come back later",
    }
}

/// What the undelivered callback was told.
#[derive(Debug, Clone)]
struct Report {
    reason: Reason,
    id: String,
    error: String,
}

type Reports = Arc<Mutex<Vec<Report>>>;

fn recorder(reports: &Reports) -> impl Fn(&Undelivered<'_>) + Send + Sync + 'static + use<> {
    let reports = Arc::clone(reports);
    move |u| {
        reports.lock().unwrap().push(Report {
            reason: u.reason,
            id: u.id.to_owned(),
            error: u.error.to_string(),
        });
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:05}")).collect()
}

fn emit_all(em: &Emitter, ids: &[String]) {
    for (i, id) in ids.iter().enumerate() {
        let data = format!(r#"{{"seq":{i}}}"#);
        em.emit(
            Event::builder()
                .id(id)
                .ty("ai.ossa.test.fault")
                .data_json(&data),
        )
        .unwrap();
    }
}

/// The ids of the requests the collector answered `202`, in order.
fn accepted_in_order(log: &Log) -> Vec<String> {
    log.requests
        .iter()
        .filter(|r| r.reply == Reply::Accept)
        .flat_map(|r| r.ids.iter().cloned())
        .collect()
}

// ---------------------------------------------------------------------------
// 1. 10 000 events through each retryable fault, then recovery
// ---------------------------------------------------------------------------

/// Which requests get the fault: every 3rd of the first 15 (each retry then
/// succeeds), then 3 in a row (the same batch thrice: the breaker opens),
/// then recovery.
fn fault_plan(n: usize) -> bool {
    (n < 15 && n % 3 == 2) || (20..23).contains(&n)
}
const PLANNED_FAULTS: [usize; 8] = [2, 5, 8, 11, 14, 20, 21, 22];

fn survives(name: &str, fault: Reply, timeout: Duration) {
    const N: usize = 10_000;
    let collector = Collector::start(Mode::Faults {
        fault: fault.clone(),
        when: fault_plan,
    });
    let reports = Reports::default();
    let em = Emitter::builder("/agents/fault-test")
        .sink(
            HttpSink::builder(collector.url())
                .mode(HttpMode::Batched)
                .max_batch(100)
                .timeout(timeout)
                .build()
                .unwrap(),
        )
        .batch_size(100)
        .flush_interval(Duration::from_millis(200))
        .queue_capacity(2 * N)
        .queue_bytes(64 << 20)
        .retry(fast_retry())
        .circuit_breaker(fast_breaker())
        .on_undelivered(recorder(&reports))
        .build()
        .unwrap();
    let ids = ids("ev", N);
    let t0 = Instant::now();
    emit_all(&em, &ids);
    let report = em.flush().unwrap();
    let took = t0.elapsed();
    let m = em.metrics();

    let log = collector.log();
    assert!(log.errors.is_empty(), "{name}: {:?}", log.errors);
    assert_eq!(
        (report.delivered, report.failed, report.pending),
        (N as u64, 0, 0),
        "{name}: {report:?}"
    );

    // The collector saw exactly the planned faults, and after each one the
    // same events again, in the same order.
    let faulted: Vec<&Request> = log
        .requests
        .iter()
        .filter(|r| r.reply != Reply::Accept)
        .collect();
    assert_eq!(
        faulted.iter().map(|r| r.n).collect::<Vec<_>>(),
        PLANNED_FAULTS,
        "{name}"
    );
    assert!(faulted.iter().all(|r| r.reply == fault), "{name}");
    for f in &faulted {
        let next = &log.requests[f.n + 1];
        assert!(
            !f.ids.is_empty(),
            "{name}: request {} carried no events",
            f.n
        );
        assert_eq!(
            next.ids, f.ids,
            "{name}: request {} is the retry of {}",
            next.n, f.n
        );
    }
    // Every event arrived once, in emission order, among the 202s.
    assert_eq!(accepted_in_order(&log), ids, "{name}: accepted events");

    // At least once; more only for the events whose response was lost.
    let mut lost: HashMap<&str, usize> = HashMap::new();
    for r in log
        .requests
        .iter()
        .filter(|r| r.reply == Reply::LoseResponse)
    {
        for id in &r.ids {
            *lost.entry(id.as_str()).or_default() += 1;
        }
    }
    assert_eq!(log.received.len(), N, "{name}: distinct events received");
    for id in &ids {
        let want = 1 + lost.get(id.as_str()).copied().unwrap_or(0);
        assert_eq!(log.received.get(id), Some(&want), "{name}: {id}");
    }
    let duplicates: usize = log.received.values().map(|c| c - 1).sum();
    let faulted_events: usize = faulted.iter().map(|r| r.ids.len()).sum();
    if fault == Reply::LoseResponse {
        assert_eq!(duplicates, faulted_events, "{name}");
    } else {
        assert_eq!(duplicates, 0, "{name}");
    }

    // Counters exact: each faulted request's events were retried once.
    assert_eq!(
        (m.emitted, m.delivered, m.failed, m.dropped, m.rejected),
        (N as u64, N as u64, 0, 0, 0),
        "{name}: {m:?}"
    );
    assert_eq!(m.retried, faulted_events as u64, "{name}: {m:?}");
    assert!(m.retried > 0);
    let accepted_requests = log
        .requests
        .iter()
        .filter(|r| r.reply == Reply::Accept)
        .count();
    assert_eq!(m.batches, accepted_requests as u64, "{name}: {m:?}");
    assert_eq!((m.queue_depth, m.queue_bytes), (0, 0), "{name}: {m:?}");
    assert!(
        reports.lock().unwrap().is_empty(),
        "{name}: nothing undelivered"
    );

    // Keep-alive: an error answer keeps the connection; a fault that closes
    // it costs one new connection, no more.
    let closes = matches!(fault, Reply::Hang(_) | Reply::Reset | Reply::LoseResponse);
    let want_connections = if closes { 1 + faulted.len() } else { 1 };
    assert_eq!(log.connections, want_connections, "{name}: connections");

    // The third failure in a row opened the breaker: the next attempt waited.
    let (third, next) = (&log.requests[22], &log.requests[23]);
    assert!(
        next.arrived.duration_since(third.answered) >= BREAKER_OPEN_FOR,
        "{name}: the breaker let the next attempt through after {:?}",
        next.arrived.duration_since(third.answered)
    );
    // `Retry-After: 1` was honoured, up to the 50 ms cap.
    if matches!(
        fault,
        Reply::Status {
            retry_after: Some(_),
            ..
        }
    ) {
        for f in &faulted {
            let gap = log.requests[f.n + 1].arrived.duration_since(f.answered);
            assert!(
                gap >= RETRY_AFTER_CAP && gap < Duration::from_millis(900),
                "{name}: retry {gap:?} after a 503 with Retry-After: 1"
            );
        }
    }
    eprintln!(
        "{name}: {N} events in {} requests ({} faulted, {} connections), retried {}, duplicates {duplicates}, {took:?}",
        log.requests.len(),
        faulted.len(),
        log.connections,
        m.retried,
    );
}

#[test]
fn ten_thousand_events_survive_503_with_retry_after() {
    survives("503+Retry-After", unavailable(), Duration::from_secs(5));
}

#[test]
fn ten_thousand_events_survive_429() {
    let fault = Reply::Status {
        code: 429,
        retry_after: None,
        body: "slow down",
    };
    survives("429", fault, Duration::from_secs(5));
}

#[test]
fn ten_thousand_events_survive_500() {
    let fault = Reply::Status {
        code: 500,
        retry_after: None,
        body: "internal error",
    };
    survives("500", fault, Duration::from_secs(5));
}

#[test]
fn ten_thousand_events_survive_a_collector_that_hangs() {
    // The client gives up after 500 ms; the collector would answer never.
    survives(
        "hang",
        Reply::Hang(Duration::from_millis(1500)),
        Duration::from_millis(500),
    );
}

#[test]
fn ten_thousand_events_survive_connections_closed_without_an_answer() {
    survives("reset", Reply::Reset, Duration::from_secs(5));
}

#[test]
fn ten_thousand_events_survive_lost_responses_with_duplicates_only_there() {
    survives("lost-response", Reply::LoseResponse, Duration::from_secs(5));
}

// ---------------------------------------------------------------------------
// 2. 400: failed and reported, not retried
// ---------------------------------------------------------------------------

#[test]
fn a_400_fails_its_batch_reports_it_and_is_not_retried() {
    const N: usize = 1000;
    const BODY: &str = "bad batch: event 42 has no type";
    let collector = Collector::start(Mode::Faults {
        fault: Reply::Status {
            code: 400,
            retry_after: None,
            body: BODY,
        },
        when: |n| n == 3,
    });
    let reports = Reports::default();
    let em = Emitter::builder("/agents/fault-test")
        .sink(
            HttpSink::builder(collector.url())
                .mode(HttpMode::Batched)
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        )
        .batch_size(100)
        .retry(fast_retry())
        .circuit_breaker(fast_breaker())
        .on_undelivered(recorder(&reports))
        .build()
        .unwrap();
    let ids = ids("ev", N);
    emit_all(&em, &ids);
    let report = em.flush().unwrap();
    let m = em.metrics();
    let log = collector.log();
    assert!(log.errors.is_empty(), "{:?}", log.errors);

    let bad = &log.requests[3];
    assert!(matches!(bad.reply, Reply::Status { code: 400, .. }));
    let bad_ids: HashSet<&String> = bad.ids.iter().collect();
    assert!(!bad_ids.is_empty());
    // Seen exactly once: no other request carried any of its events.
    for r in log.requests.iter().filter(|r| r.n != 3) {
        assert!(
            r.ids.iter().all(|id| !bad_ids.contains(id)),
            "request {} re-sent events of the refused request",
            r.n
        );
    }
    // Later batches still delivered.
    assert!(log.requests.len() > 4);
    let want: Vec<String> = ids
        .iter()
        .filter(|id| !bad_ids.contains(id))
        .cloned()
        .collect();
    assert_eq!(accepted_in_order(&log), want);
    assert!(log.received.values().all(|&c| c == 1));

    let failed = bad.ids.len() as u64;
    assert_eq!(
        (report.delivered, report.failed, report.pending),
        (N as u64 - failed, failed, 0)
    );
    assert_eq!(
        (m.emitted, m.delivered, m.failed, m.retried, m.dropped),
        (N as u64, N as u64 - failed, failed, 0, 0),
        "{m:?}"
    );
    // Each refused event reported once, with the status and the body excerpt.
    let reports = reports.lock().unwrap();
    assert_eq!(
        reports.iter().map(|r| &r.id).collect::<Vec<_>>(),
        bad.ids.iter().collect::<Vec<_>>()
    );
    for r in reports.iter() {
        assert_eq!(r.reason, Reason::Failed, "{r:?}");
        assert!(r.error.contains("400") && r.error.contains(BODY), "{r:?}");
    }
}

// ---------------------------------------------------------------------------
// 3. A collector down for good, and one that comes back
// ---------------------------------------------------------------------------

#[test]
fn a_collector_down_for_good_opens_the_breaker_and_memory_stays_at_the_cap() {
    const CAP: usize = 200;
    const BYTES: usize = 1 << 20;
    let collector = Collector::start(Mode::Always(Reply::Reset));
    let reports = Reports::default();
    let shutdown_timeout = Duration::from_millis(500);
    let em = Emitter::builder("/agents/fault-test")
        .sink(
            HttpSink::builder(collector.url())
                .mode(HttpMode::Batched)
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
        )
        .batch_size(50)
        .flush_interval(Duration::from_millis(10))
        .queue_capacity(CAP)
        .queue_bytes(BYTES)
        // Without the breaker this policy would try every few milliseconds.
        .retry(
            RetryPolicy::default()
                .max_attempts(1000)
                .base(Duration::from_millis(1))
                .cap(Duration::from_millis(5)),
        )
        .circuit_breaker(
            BreakerConfig::default()
                .threshold(3)
                .open_for(Duration::from_millis(200))
                .max_open_for(Duration::from_secs(1)),
        )
        .shutdown_timeout(shutdown_timeout)
        .on_undelivered(recorder(&reports))
        .build()
        .unwrap();

    let ids = ids("down", 10 * CAP);
    let (mut kept, mut refused) = (Vec::new(), Vec::new());
    for (i, id) in ids.iter().enumerate() {
        let data = format!(r#"{{"seq":{i}}}"#);
        match em.emit(
            Event::builder()
                .id(id)
                .ty("ai.ossa.test.down")
                .data_json(&data),
        ) {
            Ok(()) => kept.push(id.clone()),
            Err(Error::QueueFull) => refused.push(id.clone()),
            Err(e) => panic!("{id}: {e:?}"),
        }
        let m = em.metrics();
        assert!(
            m.queue_depth <= CAP as u64 && m.queue_bytes <= BYTES as u64,
            "memory past the cap: {m:?}"
        );
    }
    assert_eq!((kept.len(), refused.len()), (CAP, 9 * CAP));

    // Over a second the breaker lets only a few probes through.
    let before = collector.requests();
    thread::sleep(Duration::from_secs(1));
    let (after, connections) = {
        let log = collector.log();
        (log.requests.len(), log.connections)
    };
    assert!(after >= 3, "the emitter tried: {after} requests");
    assert!(
        after <= 8 && after - before <= 5,
        "the breaker keeps the worker from hammering: {before} then {after} requests"
    );
    assert!(connections <= after + 1, "{connections} connections");

    let m = em.metrics();
    assert_eq!(
        (m.emitted, m.dropped, m.delivered, m.failed),
        (CAP as u64, 9 * CAP as u64, 0, 0),
        "{m:?}"
    );
    assert_eq!(
        m.queue_depth, CAP as u64,
        "every kept event still waits: {m:?}"
    );
    assert!(m.queue_bytes <= BYTES as u64, "{m:?}");
    {
        let reports = reports.lock().unwrap();
        assert!(reports.iter().all(|r| r.reason == Reason::Dropped));
        assert_eq!(
            reports.iter().map(|r| &r.id).collect::<Vec<_>>(),
            refused.iter().collect::<Vec<_>>()
        );
    }

    // Shutdown is bounded by its timeout; what is left is counted failed.
    let t = Instant::now();
    let r = em.shutdown();
    let took = t.elapsed();
    assert!(r.is_ok(), "{r:?}");
    assert!(
        took < shutdown_timeout + Duration::from_millis(700),
        "shutdown took {took:?}"
    );
    let m = em.metrics();
    assert_eq!(
        (
            m.emitted,
            m.dropped,
            m.delivered,
            m.failed + m.shutdown_timeout,
            m.queue_depth,
            m.queue_bytes
        ),
        (CAP as u64, 9 * CAP as u64, 0, CAP as u64, 0, 0),
        "{m:?}"
    );
    let reports = reports.lock().unwrap();
    let given_up: Vec<&Report> = reports
        .iter()
        .filter(|r| r.reason != Reason::Dropped)
        .collect();
    assert!(
        given_up
            .iter()
            .all(|r| matches!(r.reason, Reason::ShutdownTimeout | Reason::Failed))
    );
    let mut given_up_ids: Vec<&String> = given_up.iter().map(|r| &r.id).collect();
    given_up_ids.sort();
    assert_eq!(given_up_ids, kept.iter().collect::<Vec<_>>());
    drop(reports);
    assert!(matches!(
        em.emit(Event::builder().ty("late")),
        Err(Error::ShutDown)
    ));
    assert!(collector.log().received.is_empty());
    eprintln!(
        "down for good: {} requests over ~1 s, dropped {}, shutdown in {took:?}",
        after, m.dropped
    );
}

#[test]
fn a_dead_port_keeps_memory_at_the_byte_cap() {
    const BYTES: usize = 64 * 1024;
    let port = dead_port();
    let reports = Reports::default();
    let shutdown_timeout = Duration::from_millis(300);
    let em = Emitter::builder("/agents/fault-test")
        .sink(
            HttpSink::builder(format!("http://127.0.0.1:{port}/events"))
                .mode(HttpMode::Batched)
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
        )
        .batch_size(20)
        .flush_interval(Duration::from_millis(10))
        .queue_capacity(10_000)
        .queue_bytes(BYTES)
        .retry(fast_retry().max_attempts(1000))
        .circuit_breaker(
            BreakerConfig::default()
                .threshold(3)
                .open_for(Duration::from_millis(200)),
        )
        .shutdown_timeout(shutdown_timeout)
        .on_undelivered(recorder(&reports))
        .build()
        .unwrap();
    let ids = ids("dead", 1000);
    let mut refused = 0u64;
    for (i, id) in ids.iter().enumerate() {
        let data = format!(r#"{{"seq":{i}}}"#);
        match em.emit(
            Event::builder()
                .id(id)
                .ty("ai.ossa.test.down")
                .data_json(&data),
        ) {
            Ok(()) => {}
            Err(Error::QueueFull) => refused += 1,
            Err(e) => panic!("{id}: {e:?}"),
        }
        let m = em.metrics();
        assert!(m.queue_bytes <= BYTES as u64, "{m:?}");
    }
    let m = em.metrics();
    assert!(m.emitted > 0 && m.queue_depth == m.emitted, "{m:?}");
    // The cap is full to the event: what is left could not hold one more.
    // An event holds its exact size, and these differ by a few bytes at
    // most (the digits of `seq`, the time's fraction).
    let each = m.queue_bytes / m.queue_depth;
    assert!(BYTES as u64 - m.queue_bytes < each + 16, "{m:?}");
    assert_eq!(m.dropped, 1000 - m.emitted, "{m:?}");
    assert_eq!(m.dropped, refused);
    assert_eq!(
        reports
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.reason == Reason::Dropped)
            .count() as u64,
        refused
    );
    let t = Instant::now();
    em.shutdown().unwrap();
    let took = t.elapsed();
    assert!(
        took < shutdown_timeout + Duration::from_millis(700),
        "{took:?}"
    );
    let after = em.metrics();
    assert_eq!(
        (
            after.delivered,
            after.failed + after.shutdown_timeout,
            after.queue_depth,
            after.queue_bytes
        ),
        (0, m.emitted, 0, 0),
        "{after:?}"
    );
    assert_eq!(reports.lock().unwrap().len() as u64, refused + m.emitted);
}

#[test]
fn a_collector_that_comes_back_gets_everything_that_waited() {
    const N: usize = 300;
    let collector = Collector::start(Mode::Always(Reply::Reset));
    let reports = Reports::default();
    let em = Emitter::builder("/agents/fault-test")
        .sink(
            HttpSink::builder(collector.url())
                .mode(HttpMode::Batched)
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        )
        .batch_size(100)
        .flush_interval(Duration::from_millis(10))
        .retry(fast_retry().max_attempts(1000))
        .circuit_breaker(
            BreakerConfig::default()
                .threshold(3)
                .open_for(Duration::from_millis(50))
                .max_open_for(Duration::from_millis(200)),
        )
        .on_undelivered(recorder(&reports))
        .build()
        .unwrap();
    let ids = ids("back", N);
    emit_all(&em, &ids);
    assert!(wait_for(
        || collector.requests() >= 4,
        Duration::from_secs(5)
    ));
    assert_eq!(em.metrics().delivered, 0);
    // The collector recovers: the breaker's next probe gets through.
    collector.set(Mode::Always(Reply::Accept));
    let report = em.flush().unwrap();
    assert_eq!(
        (report.delivered, report.failed, report.pending),
        (N as u64, 0, 0)
    );
    let log = collector.log();
    assert_eq!(accepted_in_order(&log), ids);
    assert!(log.received.values().all(|&c| c == 1));
    let failed_events: usize = log
        .requests
        .iter()
        .filter(|r| r.reply == Reply::Reset)
        .map(|r| r.ids.len())
        .sum();
    let m = em.metrics();
    assert_eq!(m.retried, failed_events as u64, "{m:?}");
    assert_eq!((m.failed, m.dropped), (0, 0));
    assert!(reports.lock().unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// 4. Structured and binary modes: through a 503 phase, parsed back exactly
// ---------------------------------------------------------------------------

const WIRE_SOURCE: &str = "/agents/wire";
const WIRE_AGENT: &str = "agent-7";
const WIRE_BATCH: usize = 50;

/// The owned parts of one test event.
struct Spec {
    id: String,
    subject: String,
    json: String,
    text: String,
    bytes: Vec<u8>,
}

fn specs(prefix: &str, n: usize) -> Vec<Spec> {
    (0..n)
        .map(|i| Spec {
            id: format!("{prefix}-{i:05}"),
            subject: format!("Grüße € {i} \"q\" %20"),
            json: format!(r#"{{"seq":{i},"tool":"web_search","args":{{"q":"ü {i}"}},"ok":true}}"#),
            text: format!("line {i}\nlíne two ✓"),
            bytes: vec![0, 1, (i % 256) as u8, 0xfe, 0xff, b'\r', b'\n', 0x80],
        })
        .collect()
}

/// What is emitted: no source (the emitter's) and no agent id (the emitter's context).
fn wire_event(s: &Spec, i: usize) -> EventBuilder<'_> {
    let b = Event::builder()
        .id(&s.id)
        .ty("ai.ossa.test.wire")
        .subject(&s.subject)
        .time(Timestamp::parse("2024-06-01T12:00:00.123456Z").unwrap())
        .extension("seq", ExtValue::Integer(i as i32))
        .extension("flag", ExtValue::Boolean(i.is_multiple_of(2)));
    match i % 4 {
        0 => b.data_json(&s.json),
        1 => b.data_text("text/plain; charset=utf-8", &s.text),
        2 => b.data_binary("application/octet-stream", &s.bytes),
        _ => b,
    }
}

fn round_trips(name: &str, mode: HttpMode) {
    const N: usize = 500;
    let collector = Collector::start(Mode::Faults {
        fault: unavailable(),
        when: |n| (n < 40 && n % 4 == 1) || (60..63).contains(&n),
    });
    let reports = Reports::default();
    let em = Emitter::builder(WIRE_SOURCE)
        .sink(
            HttpSink::builder(collector.url())
                .mode(mode)
                .max_batch(WIRE_BATCH)
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        )
        .agent_id(WIRE_AGENT)
        .batch_size(WIRE_BATCH)
        // Long: every batch is sent full, so batch boundaries are every 50 events.
        .flush_interval(Duration::from_secs(60))
        .retry(fast_retry())
        .circuit_breaker(fast_breaker())
        .on_undelivered(recorder(&reports))
        .build()
        .unwrap();
    let specs = specs(name, N);
    let t0 = Instant::now();
    for (i, s) in specs.iter().enumerate() {
        em.emit(wire_event(s, i)).unwrap();
    }
    let report = em.flush().unwrap();
    let took = t0.elapsed();
    let m = em.metrics();
    let log = collector.log();
    assert!(log.errors.is_empty(), "{name}: {:?}", log.errors);
    assert_eq!(
        (report.delivered, report.failed, report.pending),
        (N as u64, 0, 0),
        "{name}"
    );

    // One event per request; all arrived once, in order.
    assert!(log.requests.iter().all(|r| r.ids.len() == 1), "{name}");
    let ids: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
    assert_eq!(accepted_in_order(&log), ids, "{name}");
    assert_eq!(log.received.len(), N);
    assert!(log.received.values().all(|&c| c == 1), "{name}: duplicates");

    // A failed request stops its send: the event and the rest of its batch
    // of 50 are retried, starting with the same event.
    let faulted: Vec<&Request> = log
        .requests
        .iter()
        .filter(|r| r.reply != Reply::Accept)
        .collect();
    assert_eq!(faulted.len(), 13, "{name}");
    let position = |id: &str| id.rsplit('-').next().unwrap().parse::<usize>().unwrap();
    let mut retried = 0;
    for f in &faulted {
        let next = &log.requests[f.n + 1];
        assert_eq!(next.ids, f.ids, "{name}: retry of request {}", f.n);
        let gap = next.arrived.duration_since(f.answered);
        assert!(
            gap >= RETRY_AFTER_CAP && gap < Duration::from_millis(900),
            "{name}: retry {gap:?} after a 503 with Retry-After: 1"
        );
        retried += WIRE_BATCH - position(&f.ids[0]) % WIRE_BATCH;
    }
    assert_eq!(
        (m.emitted, m.delivered, m.failed, m.dropped, m.retried),
        (N as u64, N as u64, 0, 0, retried as u64),
        "{name}: {m:?}"
    );
    // A batch counts once per sink call that delivered some of it: a 503
    // after part of a batch went through makes two.
    let split = faulted
        .iter()
        .filter(|f| position(&f.ids[0]) % WIRE_BATCH != 0)
        .count();
    assert_eq!(m.batches, (N / WIRE_BATCH + split) as u64, "{name}: {m:?}");
    assert!(reports.lock().unwrap().is_empty());

    // What went over the wire parses back to the event emitted.
    let expected: HashMap<&str, Event<'_>> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let ev = wire_event(s, i)
                .source(WIRE_SOURCE)
                .ossa_agent_id(WIRE_AGENT)
                .build()
                .unwrap();
            (s.id.as_str(), ev)
        })
        .collect();
    for r in &log.requests {
        let ct = header(&r.headers, "content-type");
        match mode {
            HttpMode::Structured => {
                assert!(
                    ct.unwrap().starts_with("application/cloudevents+json"),
                    "{ct:?}"
                );
                assert!(!r.headers.iter().any(|(n, _)| n.starts_with("ce-")));
            }
            _ => {
                assert_eq!(header(&r.headers, "ce-id"), Some(r.ids[0].as_str()));
                assert_eq!(header(&r.headers, "ce-specversion"), Some("1.0"));
                assert!(header(&r.headers, "ce-source").is_some());
                assert!(
                    header(&r.headers, "ce-subject")
                        .unwrap()
                        .contains("%E2%82%AC")
                );
            }
        }
        let n = parse_events(&r.headers, &r.body, |_, back| {
            let want = &expected[back.id()];
            assert!(
                back.same_as(want, mode == HttpMode::Structured),
                "{name}: {back:?}\n!=\n{want:?}"
            );
            assert_eq!(
                (back.ty(), back.data().is_some()),
                (want.ty(), want.data().is_some())
            );
        })
        .unwrap();
        assert_eq!(n, 1);
    }
    eprintln!(
        "{name}: {N} events in {} requests ({} faulted), retried {}, {took:?}",
        log.requests.len(),
        faulted.len(),
        m.retried
    );
}

#[test]
fn structured_mode_round_trips_through_a_503_phase() {
    round_trips("structured", HttpMode::Structured);
}

#[test]
fn binary_mode_round_trips_through_a_503_phase() {
    round_trips("binary", HttpMode::Binary);
}

// ---------------------------------------------------------------------------
// 5. Drop of the last handle, and the timer, against the real collector
// ---------------------------------------------------------------------------

#[test]
fn dropping_the_last_handle_delivers_what_is_pending() {
    const N: usize = 250;
    let collector = Collector::start(Mode::Always(Reply::Accept));
    let em = Emitter::builder("/agents/fault-test")
        .sink(
            HttpSink::builder(collector.url())
                .mode(HttpMode::Batched)
                .max_batch(100)
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        )
        .batch_size(1000)
        .flush_interval(Duration::from_secs(3600))
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let other = em.clone();
    let ids = ids("drop", N);
    let (a, b) = ids.split_at(N / 2);
    emit_all(&em, a);
    emit_all(&other, b);
    drop(em);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(collector.requests(), 0, "another handle is still alive");
    let t = Instant::now();
    drop(other);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Delivered before the drop returned.
    let log = collector.log();
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    assert_eq!(log.requests.len(), 3, "250 events at 100 per request");
    let mut got = accepted_in_order(&log);
    got.sort();
    assert_eq!(got, ids);
    assert!(log.received.values().all(|&c| c == 1));
}

#[test]
fn the_timer_sends_without_further_emits_or_a_flush() {
    let collector = Collector::start(Mode::Always(Reply::Accept));
    let em = Emitter::builder("/agents/fault-test")
        .sink(
            HttpSink::builder(collector.url())
                .mode(HttpMode::Batched)
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        )
        .batch_size(100)
        .flush_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let ids = ids("timer", 7);
    emit_all(&em, &ids);
    assert_eq!(collector.requests(), 0, "not before the interval");
    assert!(
        wait_for(
            || collector.log().received.len() == 7,
            Duration::from_secs(5)
        ),
        "the timer flush never came"
    );
    assert_eq!(accepted_in_order(&collector.log()), ids);
    // The collector records before it answers; the counters follow the 202,
    // and the worker settles the batch (queue depth) just after counting it.
    assert!(wait_for(
        || {
            let m = em.metrics();
            m.delivered == 7 && m.batches == 1 && m.queue_depth == 0
        },
        Duration::from_secs(5)
    ));
    let m = em.metrics();
    assert_eq!((m.delivered, m.batches, m.queue_depth), (7, 1, 0), "{m:?}");
}
