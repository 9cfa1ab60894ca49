//! The delivery contract end to end, through a real [`HttpSink`] and a
//! loopback collector that answers at random: a property test.
//!
//! Each case starts a collector (a plain HTTP/1.1 server written here) that
//! answers request number `n` by its script: `200`/`202`/`204` (or `202`
//! after an interim `1xx`), a status a retry
//! may fix (`500`, `503`, `408`, `429` with or without `Retry-After`), a
//! refusal for good (`400`, `404`, `501`), the connection closed after the
//! request was read (the answer lost), a `200` cut off in its body, or a
//! stall past the sink's time limit. Past the script it answers `202`. The
//! emitter crosses that with: structured, binary or batched mode, a
//! pipeline of 1–3 requests, tiny queues under `DropNewest` or `Block`, the
//! disk spool (off, or on with a small cap under each `WhenFull` policy), a
//! circuit breaker, retries with small budgets; 2–3 threads emit, flush,
//! `flush_within`, `flush_async`, and the case ends with `shutdown`,
//! `shutdown_within`, `shutdown_async`, two shutdowns at once, a shutdown
//! while the threads still emit, or the drop of the last handle. With a
//! spool, a second emitter on the same directory drains it to a collector
//! that takes everything.
//!
//! The oracle, from the DESIGN's "life of an event" and the crate docs'
//! table of counters:
//!
//! 1. no id is reported to `on_undelivered` twice, and every report is of
//!    an id that was emitted;
//! 2. an emit refused with `QueueFull`/`ShutDown`/`SpoolFull` is reported
//!    `Dropped`, and the collector never sees it;
//! 3. every accepted id that was not reported undelivered was answered with
//!    a 2xx by the collector (delivered needs one), in the first run or
//!    (spooled) in the drain; an id the collector refused for good (400,
//!    404, 501) is reported `Failed` (or `ShutdownTimeout`, when a shutdown
//!    gave up before the answer was read) and never sent again;
//! 4. the counters equal those sets: `emitted` = accepted, `failed`,
//!    `shutdown_timeout` = the reports of each reason, `dropped` and
//!    `rejected` = the refusals at emit, `delivered` = accepted − reported
//!    (− spooled), `emitted + replayed == delivered + failed +
//!    shutdown_timeout + spooled + evicted`, the drain replays what the
//!    first run left spooled, `queue_depth` = 0 after shutdown, and a
//!    shutdown's report is those counters with nothing pending;
//! 5. a `flush` that returns `Ok` has seen every id accepted before it end;
//! 6. the counters do not change after shutdown returned, and shutdown
//!    returns within its limit (+ 1 s: a loose bound, for loaded machines;
//!    `every_event_ends_in_exactly_one_place` checks the tight one).
//!
//! A collector that received a request but whose answer was lost may see
//! its events again, and they may still end reported (at least once: the
//! README's contract); nothing here counts that as a fault.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ossa_events::sink::{HttpMode, HttpSink};
use ossa_events::{BreakerConfig, Emitter, Error, Metrics, Overflow, Reason, RetryPolicy};
use proptest::collection::vec;
use proptest::prelude::*;

use common::contract::{
    Act, End, Ended, Refusal, SharedBook, act, lock, ms, run_and_end, spool_config,
};
use common::{parse_events, read_request, serve_loopback};

// ---------------------------------------------------------------------------
// The collector

/// How the collector answers one request (read whole first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Ok(u16),
    /// An interim `1xx` answer (`100`, `102`, `103`), then `202`.
    Interim(u16),
    /// A status, with `Retry-After: 0` when the flag says so.
    Status(u16, bool),
    /// Closes the connection without a word: the events were received,
    /// the answer is lost.
    Close,
    /// A `200` whose body is cut off (a 2xx all the same).
    Cut,
    /// Says nothing for this long, then closes.
    Stall(u64),
}

#[derive(Default, Debug)]
struct Seen {
    /// Ids in requests answered 2xx (written whole), times each.
    acked: HashMap<String, u32>,
    /// Ids in any request read whole.
    received: HashSet<String>,
    requests: u32,
    /// Ids in requests answered with a refusal for good (400, 404, 501),
    /// and ids received again after that answer was written.
    refused: HashSet<String>,
    resent_after_refusal: Vec<String>,
    errors: Vec<String>,
}

struct Collector {
    addr: SocketAddr,
    script: Arc<Mutex<Vec<Answer>>>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    fn start(script: Vec<Answer>) -> Collector {
        let script = Arc::new(Mutex::new(script));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sc, se) = (script.clone(), seen.clone());
        let addr = serve_loopback(Some(stop.clone()), move |s| serve(s, &sc, &se));
        Collector {
            addr,
            script,
            seen,
            stop,
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(stream: TcpStream, script: &Mutex<Vec<Answer>>, seen: &Mutex<Seen>) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    loop {
        let req = match read_request(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                // A client that gave up mid-request (its time limit) is not
                // an error of the client's encoding.
                if !e.contains("reading") && !e.contains("closed") {
                    lock(seen).errors.push(e);
                }
                return;
            }
        };
        let mut ids = Vec::new();
        if let Err(e) = parse_events(&req.headers, &req.body, |_, ev| {
            ids.push(ev.id().to_owned())
        }) {
            lock(seen).errors.push(e);
            return;
        }
        let answer = {
            let mut s = lock(seen);
            let n = s.requests as usize;
            s.requests += 1;
            s.received.extend(ids.iter().cloned());
            let again: Vec<String> = ids
                .iter()
                .filter(|id| s.refused.contains(*id))
                .cloned()
                .collect();
            s.resent_after_refusal.extend(again);
            lock(script).get(n).copied().unwrap_or(Answer::Ok(202))
        };
        match answer {
            Answer::Ok(_) | Answer::Interim(_) => {
                let head = match answer {
                    Answer::Interim(code) => format!(
                        "HTTP/1.1 {code} Interim\r\nlink: </a>\r\n\r\nHTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"
                    ),
                    Answer::Ok(code) => format!("HTTP/1.1 {code} OK\r\ncontent-length: 0\r\n\r\n"),
                    _ => unreachable!(),
                };
                // Counted once the answer is on its way: before the write
                // (after it, the client may have read it and gone on).
                {
                    let mut s = lock(seen);
                    for id in &ids {
                        *s.acked.entry(id.clone()).or_default() += 1;
                    }
                }
                if out.write_all(head.as_bytes()).is_err() {
                    return;
                }
            }
            Answer::Status(code, retry_after) => {
                if matches!(code, 400 | 404 | 501) {
                    lock(seen).refused.extend(ids.iter().cloned());
                }
                let ra = if retry_after {
                    "retry-after: 0\r\n"
                } else {
                    ""
                };
                let resp = format!(
                    "HTTP/1.1 {code} Scripted\r\ncontent-type: text/plain\r\n{ra}content-length: 2\r\n\r\nno"
                );
                if out.write_all(resp.as_bytes()).is_err() {
                    return;
                }
            }
            Answer::Close => {
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            Answer::Cut => {
                // The status line says 2xx: the sink takes that for
                // delivered without waiting for the body (see
                // `http_sink_does_not_wait_on_a_stalled_answer_body`).
                {
                    let mut s = lock(seen);
                    for id in &ids {
                        *s.acked.entry(id.clone()).or_default() += 1;
                    }
                }
                let _ = out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nab");
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            Answer::Stall(n) => {
                thread::sleep(ms(n));
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// A minimal executor for the async helpers

// ---------------------------------------------------------------------------
// The scenario

#[derive(Clone, Debug)]
struct Scenario {
    script: Vec<Answer>,
    mode: u8,
    pipeline: usize,
    max_batch: usize,
    http_timeout_ms: u64,
    batch_size: usize,
    queue_capacity: usize,
    block_ms: Option<u64>,
    flush_interval_ms: u64,
    max_attempts: u32,
    breaker_threshold: u32,
    shutdown_timeout_ms: u64,
    /// None: no spool; else its policy at a small cap.
    spool: Option<(u8, bool)>,
    threads: Vec<Vec<Act>>,
    end: End,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => prop_oneof![Just(200u16), Just(202), Just(204)].prop_map(Answer::Ok),
        1 => prop_oneof![Just(100u16), Just(102), Just(103)].prop_map(Answer::Interim),
        3 => (prop_oneof![Just(500u16), Just(503), Just(408), Just(429), Just(502)], any::<bool>())
            .prop_map(|(c, r)| Answer::Status(c, r)),
        1 => prop_oneof![Just(400u16), Just(404), Just(501)].prop_map(|c| Answer::Status(c, false)),
        1 => Just(Answer::Close),
        1 => Just(Answer::Cut),
        1 => (60u64..=120).prop_map(Answer::Stall),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let http = (
        vec(
            (answer(), prop_oneof![3 => Just(1usize), 1 => 2usize..=10]),
            0..=12,
        )
        .prop_map(|runs| {
            runs.into_iter()
                .flat_map(|(a, n)| std::iter::repeat_n(a, n))
                .collect::<Vec<_>>()
        }),
        0u8..3,
        1usize..=3,
        prop_oneof![Just(100usize), 1usize..=4],
        30u64..=60,
    );
    let emitter = (
        1usize..=6,
        1usize..=12,
        proptest::option::weighted(0.3, 0u64..=5),
        prop_oneof![3 => 1u64..=20, 1 => Just(1000u64)],
        prop_oneof![3 => 1u32..=4, 1 => Just(u32::MAX)],
        1u32..=5,
        30u64..=250,
        proptest::option::weighted(0.4, (0u8..3, any::<bool>())),
    );
    let end = prop_oneof![
        Just(End::Shutdown),
        (0u64..=80).prop_map(End::ShutdownWithin),
        Just(End::ShutdownAsync),
        (0u64..=80, 0u64..=80).prop_map(|(a, b)| End::TwoShutdowns(a, b)),
        (0u64..=40).prop_map(End::ShutdownWhileEmitting),
        Just(End::Drop),
    ];
    let run = (vec(vec(act(), 0..=8), 2..=3), end);
    (http, emitter, run).prop_map(
        |(
            (script, mode, pipeline, max_batch, http_timeout_ms),
            (
                batch_size,
                queue_capacity,
                block_ms,
                flush_interval_ms,
                max_attempts,
                breaker_threshold,
                shutdown_timeout_ms,
                spool,
            ),
            (threads, end),
        )| Scenario {
            script,
            mode,
            pipeline,
            max_batch,
            http_timeout_ms,
            batch_size,
            queue_capacity,
            block_ms,
            flush_interval_ms,
            max_attempts,
            breaker_threshold,
            shutdown_timeout_ms,
            spool,
            threads,
            end,
        },
    )
}

// ---------------------------------------------------------------------------
// One case

static CASE: AtomicU32 = AtomicU32::new(0);

fn sink(c: &Collector, s: &Scenario) -> HttpSink {
    let mode = match s.mode {
        0 => HttpMode::Structured,
        1 => HttpMode::Binary,
        _ => HttpMode::Batched,
    };
    HttpSink::builder(format!("http://{}/events", c.addr))
        .mode(mode)
        .pipeline(s.pipeline)
        .max_batch(s.max_batch)
        .timeout(ms(s.http_timeout_ms))
        .build()
        .unwrap()
}

fn build(
    s: &Scenario,
    c: &Collector,
    book: &SharedBook,
    dir: Option<&PathBuf>,
) -> Result<Emitter, Error> {
    let cb = book.clone();
    let mut b = Emitter::builder("/agents/http-faults")
        .sink(sink(c, s))
        .batch_size(s.batch_size)
        .queue_capacity(s.queue_capacity)
        .overflow(
            s.block_ms
                .map_or(Overflow::DropNewest, |n| Overflow::Block(ms(n))),
        )
        .flush_interval(ms(s.flush_interval_ms))
        .retry(
            RetryPolicy::default()
                .base(ms(1))
                .cap(ms(5))
                .retry_after_cap(ms(5))
                .max_attempts(s.max_attempts),
        )
        .circuit_breaker(
            BreakerConfig::default()
                .threshold(s.breaker_threshold)
                .open_for(ms(5))
                .max_open_for(ms(20)),
        )
        .flush_timeout(Duration::from_secs(5))
        .shutdown_timeout(ms(s.shutdown_timeout_ms))
        .on_undelivered(move |u| {
            let mut b = lock(&cb);
            if u.reason == Reason::Rejected {
                b.rejected_reports += 1;
            } else {
                b.reports.push((u.reason, u.id.to_owned()));
            }
        });
    if let (Some(dir), Some((policy, mapped))) = (dir, s.spool) {
        b = b.spool(spool_config(dir, policy, mapped));
    }
    b.build()
}

fn run_case(s: &Scenario) -> Result<(), TestCaseError> {
    let c = Collector::start(s.script.clone());
    let book: SharedBook = Arc::default();
    let dir = s.spool.map(|_| {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "http_faults_{}_{}",
            std::process::id(),
            CASE.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    });
    let em = build(s, &c, &book, dir.as_ref()).unwrap();
    let Ended { at_stop, em, .. } =
        run_and_end(em, &book, &s.threads, s.end, s.shutdown_timeout_ms)?;
    let final_run1 = em.as_ref().map(Emitter::metrics);
    if let (Some(a), Some(b)) = (at_stop, final_run1) {
        let mut later = b;
        later.dropped = a.dropped;
        later.rejected = a.rejected;
        // A gauge, not a counter: a worker stuck past shutdown's hard limit
        // closes the spool when its sink call returns, and from then on no
        // spool is open to measure (the files stay for the next emitter).
        later.spool_bytes = a.spool_bytes;
        prop_assert_eq!(a, later, "the counters changed after shutdown returned");
    }
    drop(em);

    // With a spool: a second emitter drains it to a collector that takes all.
    let mut drained: Option<Metrics> = None;
    let reports_run1 = lock(&book).reports.len();
    if let Some(dir) = &dir {
        lock(&c.script).clear();
        let mut calm = s.clone();
        calm.max_attempts = u32::MAX;
        calm.breaker_threshold = 1000;
        let deadline = Instant::now() + Duration::from_secs(10);
        let em2 = loop {
            match build(&calm, &c, &book, Some(dir)) {
                Err(Error::SpoolLocked(_)) if Instant::now() < deadline => thread::sleep(ms(5)),
                r => break r.unwrap(),
            }
        };
        let f = em2.flush_within(Duration::from_secs(10));
        prop_assert!(f.is_ok(), "drain flush: {:?}", f);
        let sd = em2.shutdown_within(Duration::from_secs(5));
        prop_assert!(sd.is_ok(), "drain shutdown: {:?}", sd);
        drained = Some(em2.metrics());
        let _ = std::fs::remove_dir_all(dir);
    }

    // Let stalled connections answer nothing more.
    let b = lock(&book);
    let seen = lock(&c.seen);
    prop_assert!(b.violations.is_empty(), "violations: {:#?}", b.violations);
    prop_assert!(
        seen.errors.is_empty(),
        "collector errors: {:#?}",
        seen.errors
    );

    // 1. Reported once, and only what was emitted.
    let emitted: HashSet<&String> = b
        .accepted
        .iter()
        .chain(b.refused.iter().map(|(id, _)| id))
        .collect();
    let mut reported: HashMap<&String, Reason> = HashMap::new();
    for (i, (reason, id)) in b.reports.iter().enumerate() {
        prop_assert!(emitted.contains(id), "report of {} never emitted", id);
        prop_assert!(
            reported.insert(id, *reason).is_none(),
            "{} reported twice: {:?} (report {} of {}; {} in the first run)",
            id,
            b.reports
                .iter()
                .filter(|(_, i)| i == id)
                .collect::<Vec<_>>(),
            i,
            b.reports.len(),
            reports_run1
        );
    }
    // 2. Refused at emit: reported dropped, never sent.
    let mut invalid = 0u64;
    for (id, why) in &b.refused {
        prop_assert!(!seen.received.contains(id), "{} refused at emit, sent", id);
        match why {
            Refusal::Invalid => {
                invalid += 1;
                prop_assert!(!reported.contains_key(id), "{} rejected, reported", id);
            }
            Refusal::Dropped => prop_assert_eq!(
                reported.get(id).copied(),
                Some(Reason::Dropped),
                "{} refused at emit",
                id
            ),
        }
    }
    prop_assert_eq!(b.rejected_reports, invalid, "rejected reports");
    // A refusal for good is not retried, and fails its events.
    prop_assert!(
        seen.resent_after_refusal.is_empty(),
        "sent again after a refusal for good: {:?}",
        seen.resent_after_refusal
    );
    // Failed, or given up on by a shutdown past its deadline: the refusal is
    // counted here before it is written, and a shutdown that gives up first
    // ends the events it has not read an answer for (as for a 2xx, below).
    for id in &seen.refused {
        let r = reported.get(id).copied();
        prop_assert!(
            matches!(r, Some(Reason::Failed | Reason::ShutdownTimeout)),
            "{} refused for good by the collector, reported {:?}",
            id,
            r
        );
    }
    // 3. Every accepted id not reported was delivered: the collector 2xx'd it.
    let (mut failed, mut timed_out, mut evicted, mut delivered) = (0u64, 0u64, 0u64, 0u64);
    for id in &b.accepted {
        match reported.get(id) {
            None => {
                delivered += 1;
                prop_assert!(
                    seen.acked.contains_key(id),
                    "{} accepted, never reported, never answered 2xx (received: {})",
                    id,
                    seen.received.contains(id)
                );
            }
            Some(Reason::Failed) => failed += 1,
            Some(Reason::ShutdownTimeout) => timed_out += 1,
            Some(Reason::Dropped) => evicted += 1,
            Some(r) => prop_assert!(false, "{} accepted, reported {:?}", id, r),
        }
    }
    if std::env::var_os("HTTP_FAULTS_STATS").is_some() {
        eprintln!(
            "STATS spool={} acc={} refused={} delivered={delivered} failed={failed} timed_out={timed_out} evicted={evicted} run1={:?} run2={:?}",
            s.spool.is_some(),
            b.accepted.len(),
            b.refused.len(),
            final_run1.map(|m| (m.spooled, m.retried)),
            drained.map(|m| (m.replayed, m.delivered))
        );
    }
    // 4. The counters.
    match (final_run1, drained) {
        (Some(m), None) => {
            prop_assert_eq!(
                (m.emitted, m.delivered, m.failed, m.shutdown_timeout),
                (b.accepted.len() as u64, delivered, failed, timed_out),
                "(emitted, delivered, failed, shutdown_timeout) {:?}",
                m
            );
            prop_assert_eq!(m.evicted, 0);
            prop_assert_eq!(
                m.dropped,
                b.refused
                    .iter()
                    .filter(|(_, w)| *w == Refusal::Dropped)
                    .count() as u64
            );
            prop_assert_eq!(m.rejected, invalid);
            prop_assert_eq!((m.queue_depth, m.queue_bytes), (0, 0), "{:?}", m);
        }
        (Some(m), Some(m2)) => {
            prop_assert_eq!(
                m.emitted + m.replayed,
                m.delivered + m.failed + m.shutdown_timeout + m.spooled + m.evicted,
                "run 1 {:?}",
                m
            );
            prop_assert_eq!(m.replayed, 0);
            prop_assert_eq!((m.queue_depth, m.queue_bytes), (0, 0), "{:?}", m);
            prop_assert_eq!(m2.replayed, m.spooled, "run 2 {:?}, run 1 {:?}", m2, m);
            prop_assert_eq!(
                m2.replayed,
                m2.delivered + m2.failed + m2.shutdown_timeout + m2.spooled + m2.evicted,
                "run 2 {:?}",
                m2
            );
            prop_assert_eq!(
                (
                    m.failed + m2.failed,
                    m.shutdown_timeout + m2.shutdown_timeout
                ),
                (failed, timed_out),
                "run 1 {:?} run 2 {:?}",
                m,
                m2
            );
            prop_assert_eq!(
                m.evicted + m2.evicted,
                evicted,
                "run 1 {:?} run 2 {:?}",
                m,
                m2
            );
            prop_assert_eq!(
                m.delivered + m2.delivered,
                delivered,
                "run 1 {:?} run 2 {:?}",
                m,
                m2
            );
        }
        _ => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
        max_shrink_iters: 64,
        max_shrink_time: 30_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_event_ends_once_through_a_real_http_sink_under_random_faults(s in scenario()) {
        run_case(&s)?;
    }
}
