//! The delivery contract with the disk spool on, under a sink that fails
//! at random: a property test (the spool's own property test,
//! `spool_property.rs`, drives it with a sink that delivers, is down, or
//! refuses whole numbers; `every_event_ends_in_exactly_one_place.rs` drives
//! a hostile sink without a spool — this crosses the two).
//!
//! The sink follows a script, one entry per call (`send_by`, `start`,
//! `settle`): a delay (none, short, polite — stops at the send deadline —
//! or stuck past every deadline), then an answer: delivered, the whole
//! batch retryable or refused for good, runs of events failed
//! (`SendError::at(..).and(..)`, the rest delivered), or a panic. With a
//! pipeline of 2–3 it hands out tickets. The spool is small (two 4 KiB
//! segments) under each `WhenFull` policy, written through a map or not;
//! the memory queue is tiny under `DropNewest` or `Block`. 2–3 threads
//! emit and flush (`flush`, `flush_within`, `flush_async`); the case ends
//! with `shutdown`, `shutdown_within`, `shutdown_async`, two shutdowns at
//! once, a shutdown while the threads emit, or the drop of the last handle.
//! Then 0–2 more emitters on the same spool replay what it holds into
//! sinks that fail at random (emitting nothing), and a last one drains it
//! to a sink that takes everything.
//!
//! The oracle (DESIGN, "life of an event"; the crate docs' counter table;
//! `Metrics::spooled`, `replayed`, `evicted`):
//!
//! 1. no id is reported twice, and only emitted ids are reported;
//! 2. an emit refused at once is reported `Dropped` and never reaches the sink;
//! 3. every accepted id not reported was confirmed delivered by the sink,
//!    in the first run or the drain; nothing reported `Failed` or
//!    `Dropped` or `ShutdownTimeout` was confirmed delivered, except by a
//!    sink call still running when shutdown's hard limit gave up on it
//!    (kept in the spool, unconfirmed, a later emitter sends it again and
//!    reports that outcome);
//! 4. the counters: `emitted + replayed == delivered + failed +
//!    shutdown_timeout + spooled + evicted` in each run, each run replays
//!    exactly what the one before left `spooled`, the totals over the runs
//!    equal the sets of 3, and a shutdown's report is the counters with
//!    nothing pending;
//! 5. a `flush` that returns `Ok` has seen every id accepted before it end;
//!    the counters do not change after shutdown returned, and shutdown
//!    returns within its limit (+ 1 s: a loose bound, for loaded machines).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, SendDeadline, Sink, Ticket};
use ossa_events::{
    BreakerConfig, Emitter, Error, Metrics, Overflow, Phase, Reason, RetryPolicy, SendError,
};
use proptest::collection::vec;
use proptest::prelude::*;

use common::contract::{
    Act, Answer, Delay, End, Ended, Refusal, SharedBook, act, fail, lock, ms, pause,
    quiet_scripted_panics, run_and_end, runs_answer, spool_config, whole,
};

// ---------------------------------------------------------------------------
// The scripted sink

#[derive(Clone, Debug)]
struct Call {
    delay: Delay,
    answer: Answer,
}

fn call() -> impl Strategy<Value = Call> {
    let delay = prop_oneof![
        24 => Just(Delay::None),
        10 => (0u64..=10).prop_map(Delay::Short),
        1 => (60u64..=200).prop_map(Delay::Polite),
        1 => (60u64..=200).prop_map(Delay::Stuck),
    ];
    let answer = prop_oneof![
        6 => Just(Answer::Delivered),
        3 => fail().prop_map(Answer::Whole),
        4 => vec((0usize..8, 0usize..5, fail()), 1..=3).prop_map(Answer::Runs),
        1 => Just(Answer::Panic),
    ];
    (delay, answer).prop_map(|(delay, answer)| Call { delay, answer })
}

#[derive(Default, Debug)]
struct Ledger {
    /// Ids the sink answered delivered, with when (times each).
    confirmed: HashMap<String, (Instant, u32)>,
    /// Every id the sink was handed.
    handed: HashSet<String>,
    violations: Vec<String>,
}

struct Scripted {
    ledger: Arc<Mutex<Ledger>>,
    script: VecDeque<Call>,
    pipeline: usize,
    max_batch: usize,
    tickets: VecDeque<(u64, Vec<String>)>,
    next: u64,
}

impl Scripted {
    fn play(
        &mut self,
        ids: &[String],
        deadline: SendDeadline<'_>,
        starting: bool,
    ) -> Result<(), SendError> {
        let call = self.script.pop_front().unwrap_or(Call {
            delay: Delay::None,
            answer: Answer::Delivered,
        });
        lock(&self.ledger).handed.extend(ids.iter().cloned());
        if !pause(call.delay, deadline) {
            return Err(SendError::retryable(Error::Timeout(Phase::Shutdown), None));
        }
        let (result, delivered): (Result<(), SendError>, Vec<usize>) = match &call.answer {
            Answer::Panic => panic!("scripted sink panic"),
            Answer::Delivered if starting => (Ok(()), Vec::new()),
            Answer::Delivered => (Ok(()), (0..ids.len()).collect()),
            Answer::Whole(f) => (Err(whole(*f)), Vec::new()),
            Answer::Runs(runs) => {
                let (err, delivered) = runs_answer(runs, ids.len());
                (Err(err), delivered)
            }
        };
        let mut l = lock(&self.ledger);
        let now = Instant::now();
        for i in delivered {
            let c = l.confirmed.entry(ids[i].clone()).or_insert((now, 0));
            c.0 = now;
            c.1 += 1;
        }
        result
    }
}

impl Sink for Scripted {
    fn max_batch(&self) -> usize {
        self.max_batch
    }
    fn pipeline(&self) -> usize {
        self.pipeline
    }
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        self.send_by(events, SendDeadline::NONE)
    }
    fn send_by(&mut self, events: &[Encoded], deadline: SendDeadline<'_>) -> Result<(), SendError> {
        let ids: Vec<String> = events.iter().map(|e| e.id().to_owned()).collect();
        self.play(&ids, deadline, false)
    }
    fn start(
        &mut self,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<Ticket, SendError> {
        let ids: Vec<String> = events.iter().map(|e| e.id().to_owned()).collect();
        self.play(&ids, deadline, true)?;
        let n = self.next;
        self.next += 1;
        self.tickets.push_back((n, ids));
        Ok(Ticket::new(n))
    }
    fn settle(
        &mut self,
        ticket: Ticket,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<(), SendError> {
        let ids: Vec<String> = events.iter().map(|e| e.id().to_owned()).collect();
        match self.tickets.pop_front() {
            Some((t, batch)) if t == ticket.get() && batch == ids => {}
            other => lock(&self.ledger).violations.push(format!(
                "settle of {} {ids:?}, oldest open {other:?}",
                ticket.get()
            )),
        }
        self.play(&ids, deadline, false)
    }
}

// ---------------------------------------------------------------------------
// A minimal executor for the async helpers

// ---------------------------------------------------------------------------
// The scenario

#[derive(Clone, Debug)]
struct Scenario {
    script: Vec<Call>,
    pipeline: usize,
    max_batch: usize,
    batch_size: usize,
    queue_capacity: usize,
    block_ms: Option<u64>,
    flush_interval_ms: u64,
    max_attempts: u32,
    breaker_threshold: u32,
    shutdown_timeout_ms: u64,
    spool: (u8, bool),
    /// Emitters started on the spool after the first, before the drain:
    /// each with its own script (no stuck calls) and the ms it runs before
    /// `shutdown_within` that many ms; they emit nothing, only replay.
    restarts: Vec<(Vec<Call>, u64)>,
    threads: Vec<Vec<Act>>,
    end: End,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let sink = (
        vec(call(), 0..=24),
        prop_oneof![Just(1usize), 2usize..=3],
        prop_oneof![3 => Just(usize::MAX), 1 => 1usize..=4],
    );
    let emitter = (
        1usize..=6,
        1usize..=12,
        proptest::option::weighted(0.3, 0u64..=5),
        prop_oneof![3 => 1u64..=20, 1 => Just(1000u64)],
        prop_oneof![3 => 1u32..=4, 1 => Just(u32::MAX)],
        1u32..=5,
        30u64..=250,
        (0u8..3, any::<bool>()),
    );
    let end = prop_oneof![
        Just(End::Shutdown),
        (0u64..=80).prop_map(End::ShutdownWithin),
        Just(End::ShutdownAsync),
        (0u64..=80, 0u64..=80).prop_map(|(a, b)| End::TwoShutdowns(a, b)),
        (0u64..=40).prop_map(End::ShutdownWhileEmitting),
        Just(End::Drop),
    ];
    let restart = (
        vec(call(), 0..=8).prop_map(|calls| {
            calls
                .into_iter()
                .map(|mut c| {
                    if let Delay::Stuck(n) = c.delay {
                        c.delay = Delay::Polite(n);
                    }
                    c
                })
                .collect::<Vec<_>>()
        }),
        0u64..=30,
    );
    let run = (vec(vec(act(), 0..=8), 2..=3), end, vec(restart, 0..=2));
    (sink, emitter, run).prop_map(
        |(
            (script, pipeline, max_batch),
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
            (threads, end, restarts),
        )| Scenario {
            script,
            pipeline,
            max_batch,
            batch_size,
            queue_capacity,
            block_ms,
            flush_interval_ms,
            max_attempts,
            breaker_threshold,
            shutdown_timeout_ms,
            spool,
            restarts,
            threads,
            end,
        },
    )
}

// ---------------------------------------------------------------------------
// One case

static CASE: AtomicU32 = AtomicU32::new(0);

fn build(
    s: &Scenario,
    ledger: &Arc<Mutex<Ledger>>,
    book: &SharedBook,
    dir: &PathBuf,
) -> Result<Emitter, Error> {
    let cb = book.clone();
    let sink = Scripted {
        ledger: ledger.clone(),
        script: s.script.iter().cloned().collect(),
        pipeline: s.pipeline,
        max_batch: s.max_batch,
        tickets: VecDeque::new(),
        next: 0,
    };
    Emitter::builder("/agents/spool-faults")
        .sink(sink)
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
        .spool(spool_config(dir, s.spool.0, s.spool.1))
        .on_undelivered(move |u| {
            let mut b = lock(&cb);
            if u.reason == Reason::Rejected {
                b.rejected_reports += 1;
            } else {
                b.reports.push((u.reason, u.id.to_owned()));
            }
        })
        .build()
}

fn run_case(s: &Scenario) -> Result<(), TestCaseError> {
    quiet_scripted_panics();
    let ledger: Arc<Mutex<Ledger>> = Arc::default();
    let book: SharedBook = Arc::default();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "spool_faults_{}_{}",
        std::process::id(),
        CASE.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let em = build(s, &ledger, &book, &dir).unwrap();
    let Ended {
        result: r,
        took,
        at_stop,
        em,
        first_limit,
        stop_at,
        ..
    } = run_and_end(em, &book, &s.threads, s.end, s.shutdown_timeout_ms)?;
    let hard_limit = matches!(r, Err(Error::Timeout(Phase::Shutdown))) || took >= first_limit;
    let m1 = em.as_ref().map(Emitter::metrics);
    if let (Some(a), Some(b)) = (at_stop, m1) {
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

    let open = |s: &Scenario| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match build(s, &ledger, &book, &dir) {
                Err(Error::SpoolLocked(_)) if Instant::now() < deadline => thread::sleep(ms(5)),
                r => break r.unwrap(),
            }
        }
    };
    // Restarts that replay what the spool holds into a sink that fails.
    let mut before = m1.map(|m| m.spooled);
    let mut restarts: Vec<Metrics> = Vec::new();
    for (script, n) in &s.restarts {
        let again = Scenario {
            script: script.clone(),
            ..s.clone()
        };
        let em = open(&again);
        thread::sleep(ms(*n));
        let r = em.shutdown_within(ms(*n));
        prop_assert!(r.is_ok(), "restart shutdown: {:?}", r);
        let m = em.metrics();
        drop(em);
        prop_assert_eq!(
            m.replayed,
            m.delivered + m.failed + m.shutdown_timeout + m.spooled + m.evicted,
            "restart {:?}",
            m
        );
        prop_assert_eq!((m.emitted, m.queue_depth), (0, 0), "restart {:?}", m);
        if let Some(b) = before {
            prop_assert_eq!(
                m.replayed,
                b,
                "restart {:?} replays what the one before left",
                m
            );
        }
        before = Some(m.spooled);
        restarts.push(m);
    }
    // The drain: a sink that takes everything.
    let calm = Scenario {
        script: Vec::new(),
        pipeline: 1,
        max_attempts: u32::MAX,
        breaker_threshold: 1000,
        ..s.clone()
    };
    let em2 = open(&calm);
    let f = em2.flush_within(Duration::from_secs(10));
    prop_assert!(f.is_ok(), "drain flush: {:?}", f);
    let sd = em2.shutdown_within(Duration::from_secs(5));
    prop_assert!(sd.is_ok(), "drain shutdown: {:?}", sd);
    let m2 = em2.metrics();
    drop(em2);
    let _ = std::fs::remove_dir_all(&dir);

    let b = lock(&book);
    let l = lock(&ledger);
    prop_assert!(b.violations.is_empty(), "violations: {:#?}", b.violations);
    prop_assert!(
        l.violations.is_empty(),
        "sink violations: {:#?}",
        l.violations
    );

    // 1.
    let emitted: HashSet<&String> = b
        .accepted
        .iter()
        .chain(b.refused.iter().map(|(id, _)| id))
        .collect();
    let mut reported: HashMap<&String, Reason> = HashMap::new();
    for (reason, id) in &b.reports {
        prop_assert!(emitted.contains(id), "report of {} never emitted", id);
        prop_assert!(
            reported.insert(id, *reason).is_none(),
            "{} reported twice: {:?}",
            id,
            b.reports
                .iter()
                .filter(|(_, i)| i == id)
                .collect::<Vec<_>>()
        );
    }
    // 2.
    let mut invalid = 0u64;
    for (id, why) in &b.refused {
        prop_assert!(!l.handed.contains(id), "{} refused at emit, sent", id);
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
    // 3.
    let (mut failed, mut timed_out, mut evicted, mut delivered) = (0u64, 0u64, 0u64, 0u64);
    for id in &b.accepted {
        let confirmed = l.confirmed.get(id);
        match (reported.get(id), confirmed) {
            (None, Some(_)) => delivered += 1,
            (None, None) => prop_assert!(
                false,
                "{} accepted, never reported, never confirmed (handed to the sink: {})",
                id,
                l.handed.contains(id)
            ),
            (Some(Reason::Failed), None) => failed += 1,
            (Some(Reason::Dropped), None) => evicted += 1,
            (Some(Reason::ShutdownTimeout), None) => timed_out += 1,
            // An answer that came too late: shutdown's hard limit gave up on
            // the event while the sink call for it still ran. Kept in the
            // spool (its outcome was never confirmed to it), a later
            // emitter sends it again, and that one's outcome is reported.
            (Some(r), Some((at, _))) if hard_limit && *at >= stop_at + first_limit => match r {
                Reason::ShutdownTimeout => timed_out += 1,
                Reason::Failed => failed += 1,
                Reason::Dropped => evicted += 1,
                r => prop_assert!(false, "{} reported {:?}", id, r),
            },
            (r, c) => prop_assert!(
                false,
                "{} accepted, reported {:?}, confirmed {:?} (hard limit {}, {:?} after the stop)",
                id,
                r,
                c.map(|c| c.1),
                hard_limit,
                c.map(|c| c.0.saturating_duration_since(stop_at))
            ),
        }
    }
    if std::env::var_os("SPOOL_FAULTS_STATS").is_some() {
        eprintln!(
            "STATS acc={} refused={} delivered={delivered} failed={failed} timed_out={timed_out} evicted={evicted} run1={:?} run2={:?}",
            b.accepted.len(),
            b.refused.len(),
            m1.map(|m| (m.spooled, m.evicted, m.spool_errors)),
            (m2.replayed, m2.delivered)
        );
    }
    // 4.
    prop_assert_eq!(
        m2.replayed,
        m2.delivered + m2.failed + m2.shutdown_timeout + m2.spooled + m2.evicted,
        "drain {:?}",
        m2
    );
    prop_assert_eq!(m2.spooled, 0, "drain {:?}", m2);
    if let Some(b) = before {
        prop_assert_eq!(
            m2.replayed,
            b,
            "the drain {:?} replays what the run before left",
            m2
        );
    }
    if let Some(m) = m1 {
        prop_assert_eq!(
            m.emitted + m.replayed,
            m.delivered + m.failed + m.shutdown_timeout + m.spooled + m.evicted,
            "run 1 {:?}",
            m
        );
        prop_assert_eq!(
            m.emitted,
            b.accepted.len() as u64,
            "emitted vs accepted; refused {:?}; {:?}",
            b.refused.len(),
            m
        );
        prop_assert_eq!((m.queue_depth, m.queue_bytes), (0, 0), "{:?}", m);
        let r = restarts.iter().fold((0, 0, 0), |a, m| {
            (a.0 + m.failed, a.1 + m.shutdown_timeout, a.2 + m.evicted)
        });
        prop_assert_eq!(
            (
                m.failed + m2.failed + r.0,
                m.shutdown_timeout + m2.shutdown_timeout + r.1,
                m.evicted + m2.evicted + r.2
            ),
            (failed, timed_out, evicted),
            "run 1 {:?} drain {:?}",
            m,
            m2
        );
        prop_assert_eq!(m.rejected, invalid, "rejected {:?}", m);
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
    fn every_event_ends_once_with_a_spool_and_a_sink_that_fails_at_random(s in scenario()) {
        run_case(&s)?;
    }
}
