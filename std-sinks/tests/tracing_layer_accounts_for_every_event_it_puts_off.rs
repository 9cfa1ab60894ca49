//! Property: whatever the interleaving of span creation, enters, exits,
//! closes, events emitted inside spans, flushes and pauses (the worker
//! building what was put off meanwhile), on a queue of a few events that
//! drops (`Overflow::DropNewest`) or blocks (`Overflow::Block`), every event
//! the layer made (a start per entered GenAI span, an end per closed one)
//! and every event emitted by hand is counted once: queued (`emitted`) or
//! refused (`dropped`, `rejected`); every queued one ends (delivered,
//! failed, timed out) and every undelivered one is reported once; and in
//! the sink a span's start comes before what was emitted inside it, which
//! comes before its end.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ossa_events::tracing_layer::OssaLayer;
use ossa_events::{Emitter, EventBuilder, Overflow, ossa};
use proptest::prelude::*;
use tracing_subscriber::layer::SubscriberExt as _;

mod common;
use common::Record;

#[derive(Debug, Clone)]
enum Op {
    /// A new span of kind `0..3`, inside the live span at this index (if
    /// any).
    New(u8, Option<usize>),
    Enter(usize),
    Exit(usize),
    /// Drops its handle and enter guards (it closes once the spans inside
    /// it have).
    Close(usize),
    /// An event emitted inside a live span that has started.
    Emit(usize),
    Flush,
    /// Lets the worker build what waits.
    Pause(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3, proptest::option::of(0usize..8)).prop_map(|(k, p)| Op::New(k, p)),
        3 => (0usize..8).prop_map(Op::Enter),
        1 => (0usize..8).prop_map(Op::Exit),
        2 => (0usize..8).prop_map(Op::Close),
        2 => (0usize..8).prop_map(Op::Emit),
        1 => Just(Op::Flush),
        1 => (0u8..3).prop_map(Op::Pause),
    ]
}

#[derive(Debug, Clone)]
struct Setup {
    queue: usize,
    batch: usize,
    block: bool,
    delay_ms: u64,
}

fn setup() -> impl Strategy<Value = Setup> {
    (1usize..6, 1usize..4, any::<bool>(), 0u64..2).prop_map(|(queue, batch, block, delay_ms)| {
        Setup {
            queue,
            batch,
            block,
            delay_ms,
        }
    })
}

struct Live {
    n: usize,
    span: tracing::Span,
    entered: Vec<tracing::span::EnteredSpan>,
}

fn new_span(kind: u8, n: usize, parent: Option<&tracing::Span>) -> tracing::Span {
    let key = format!("s{n}");
    let parent = parent.and_then(|p| p.id());
    match kind {
        0 => {
            tracing::info_span!(parent: parent, "invoke_agent", gen_ai.agent.name = "a", gen_ai.conversation.id = key.as_str())
        }
        1 => tracing::info_span!(parent: parent, "chat", gen_ai.conversation.id = key.as_str()),
        _ => {
            tracing::info_span!(parent: parent, "execute_tool", gen_ai.tool.name = "t", gen_ai.conversation.id = key.as_str())
        }
    }
}

fn run(s: &Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    let rec = Record {
        delay: Duration::from_millis(s.delay_ms),
        ..Record::default()
    };
    let reported = Arc::new(Mutex::new(0u64));
    let count = reported.clone();
    let overflow = if s.block {
        Overflow::Block(Duration::from_millis(5))
    } else {
        Overflow::DropNewest
    };
    let emitter = Emitter::builder("/agents/prop")
        .sink(rec.clone())
        .queue_capacity(s.queue)
        .batch_size(s.batch)
        .flush_interval(Duration::from_millis(2))
        .overflow(overflow)
        .on_undelivered(move |_| *count.lock().unwrap_or_else(PoisonError::into_inner) += 1)
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
    // Per span: entered; events emitted by hand (and whether each was taken).
    let mut entered: Vec<bool> = Vec::new();
    let (mut by_hand, mut taken) = (0u64, 0u64);
    tracing::subscriber::with_default(subscriber, || {
        let mut live: Vec<Live> = Vec::new();
        let pick = |i: usize, live: &Vec<Live>| (!live.is_empty()).then(|| i % live.len());
        for op in ops {
            match *op {
                Op::New(kind, parent) => {
                    let n = entered.len();
                    let p = parent.and_then(|i| pick(i, &live)).map(|i| &live[i].span);
                    let span = new_span(kind, n, p);
                    entered.push(false);
                    live.push(Live {
                        n,
                        span,
                        entered: Vec::new(),
                    });
                }
                Op::Enter(i) => {
                    if let Some(i) = pick(i, &live) {
                        let l = &mut live[i];
                        l.entered.push(l.span.clone().entered());
                        entered[l.n] = true;
                    }
                }
                Op::Exit(i) => {
                    if let Some(i) = pick(i, &live) {
                        drop(live[i].entered.pop());
                    }
                }
                Op::Close(i) => {
                    if let Some(i) = pick(i, &live) {
                        let l = live.swap_remove(i);
                        drop(l.entered);
                        drop(l.span);
                    }
                }
                Op::Emit(i) => {
                    if let Some(i) = pick(i, &live).filter(|&i| entered[live[i].n]) {
                        let key = format!("s{}", live[i].n);
                        by_hand += 1;
                        let r = live[i].span.in_scope(|| {
                            emitter.emit(
                                EventBuilder::new()
                                    .ty("dev.example.note")
                                    .ossa_interaction_id(&key),
                            )
                        });
                        taken += u64::from(r.is_ok());
                    }
                }
                Op::Flush => {
                    let _ = emitter.flush();
                }
                Op::Pause(ms) => std::thread::sleep(Duration::from_millis(u64::from(ms))),
            }
        }
        // The rest close here.
        for l in live.drain(..) {
            drop(l.entered);
            drop(l.span);
        }
    });
    let made = 2 * entered.iter().filter(|&&e| e).count() as u64;
    let report = emitter.shutdown().unwrap();
    let m = emitter.metrics();
    let sunk = rec.events.lock().unwrap().clone();
    let reported = *reported.lock().unwrap();

    // Counted once: queued or refused.
    prop_assert_eq!(
        m.emitted + m.dropped + m.rejected,
        made + by_hand,
        "{:?}",
        m
    );
    prop_assert_eq!(m.rejected, 0);
    // What emit() answered Ok to is what it queued, beside the layer's.
    prop_assert!(m.emitted >= taken);
    // Every queued one ended; every undelivered one reported once.
    prop_assert_eq!(report.pending, 0);
    prop_assert_eq!(
        m.emitted,
        m.delivered + m.failed + m.shutdown_timeout,
        "{:?}",
        m
    );
    prop_assert_eq!(m.delivered, sunk.len() as u64);
    prop_assert_eq!(
        reported,
        m.dropped + m.failed + m.shutdown_timeout,
        "{:?}",
        m
    );
    if !s.block {
        prop_assert_eq!(m.shutdown_timeout, 0);
    }

    // Order in the sink, per span: start, notes, end.
    let mut by_span: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in &sunk {
        let key = e["ossainteractionid"].as_str().unwrap();
        by_span
            .entry(key)
            .or_default()
            .push(e["type"].as_str().unwrap());
    }
    let starts = [ossa::AGENT_STARTED, ossa::TURN_STARTED, ossa::TOOL_CALLED];
    for (key, types) in &by_span {
        let rank = |t: &str| {
            if starts.contains(&t) {
                0
            } else if t == "dev.example.note" {
                1
            } else {
                2
            }
        };
        let ranks: Vec<u8> = types.iter().map(|t| rank(t)).collect();
        prop_assert!(
            ranks.windows(2).all(|w| w[0] <= w[1]),
            "{}: {:?}",
            key,
            types
        );
        prop_assert!(ranks.iter().filter(|&&r| r == 0).count() <= 1);
        prop_assert!(ranks.iter().filter(|&&r| r == 2).count() <= 1);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn every_event_put_off_is_counted_once_and_keeps_its_order(
        s in setup(),
        ops in proptest::collection::vec(op(), 1..50),
    ) {
        run(&s, &ops)?;
    }
}

/// Events put off before a shutdown that gives up before its deadline (a
/// `Retry-After` that ends past it) end as the queued ones do: timed out at
/// shutdown. The worker stopped as soon as it had given up on its queue,
/// and its exit built what was still put off and failed it as "emitter
/// worker stopped" (`Reason::Failed`, counted `failed`): 5 999 of 6 001
/// events, with `shutdown_async` (or the drop of a last handle that does
/// not wait), which leave the building to the worker.
#[test]
fn events_put_off_before_a_shutdown_that_gives_up_early_time_out_not_fail() {
    for end in ["shutdown_async", "drop"] {
        let calls = Arc::new(Mutex::new(0usize));
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let emitter = common::held::held_builder(&calls)
            .wait_on_drop(false)
            .on_undelivered(logs_into(reasons.clone()))
            .build()
            .unwrap();
        // The worker waits out the hold; the layer puts off 2 000 events.
        common::held::hold_and_put_off(&emitter, &calls);
        if end == "drop" {
            // No handle is left to read the counters from: the reports say it.
            drop(emitter);
        } else {
            let done = common::contract::block_on(emitter.shutdown_async());
            assert!(done.is_ok(), "{done:?}");
            let m = emitter.metrics();
            assert_eq!(m.emitted, 2001, "{m:?}");
            assert_eq!((m.failed, m.shutdown_timeout), (0, 2001), "{m:?}");
        }
        // Every report made (the drop does not wait for them).
        let start = std::time::Instant::now();
        while reasons.lock().unwrap_or_else(PoisonError::into_inner).len() < 2001
            && start.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let reasons = reasons.lock().unwrap_or_else(PoisonError::into_inner);
        let failed: Vec<_> = reasons
            .iter()
            .filter(|(r, _)| *r != ossa_events::Reason::ShutdownTimeout)
            .collect();
        assert_eq!(reasons.len(), 2001, "{end}");
        assert!(
            failed.is_empty(),
            "{end}: {} of 2001 reported otherwise, the first {:?}",
            failed.len(),
            failed.first()
        );
    }
}

/// Events put off before a shutdown are queued during it, until its
/// deadline (the README), however the shutdown is made and whatever the
/// `Overflow` policy: a queue full when it begins (the sink slow for
/// 100 ms of a 5 s shutdown) makes them wait, not go. `shutdown()` built
/// them first on its own thread, under the emitter's policy: with
/// `DropNewest` each one that found the queue full was refused at once
/// (`QueueFull`, counted `dropped`), and with `Block(limit)` after `limit`.
/// What an emitter reported undelivered: reason and error text.
type Undelivered = Arc<Mutex<Vec<(ossa_events::Reason, String)>>>;

/// An `on_undelivered` callback that logs each report's reason and error.
fn logs_into(log: Undelivered) -> impl Fn(&ossa_events::Undelivered<'_>) + Send + Sync + 'static {
    move |u| {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((u.reason, u.error.to_string()));
    }
}

/// An emitter whose queue is full (a batch of two in a `Gated` sink, two
/// queued), behind four events `OssaLayer` put off, under `overflow`; what
/// it reports undelivered goes to the list returned. The sink opens after
/// `open_after` (the thread returned).
fn full_behind_events_put_off(
    overflow: Overflow,
    open_after: Duration,
) -> (Emitter, Undelivered, std::thread::JoinHandle<()>) {
    let gate = common::Gate::default();
    let reasons = Undelivered::default();
    let emitter = Emitter::builder("/agents/slow")
        .sink(gate.sink())
        .queue_capacity(4)
        .batch_size(2)
        .overflow(overflow)
        .flush_interval(Duration::from_millis(1))
        .flush_timeout(Duration::from_secs(5))
        .shutdown_timeout(Duration::from_secs(5))
        .on_undelivered(logs_into(reasons.clone()))
        .build()
        .unwrap();
    // The queue full: a batch in the sink, one queued.
    for _ in 0..4 {
        emitter
            .emit(EventBuilder::new().ty("dev.example.tick"))
            .unwrap();
    }
    // Four events put off (the layer holds up to the queue's capacity).
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..2 {
            let key = format!("c{i}");
            let span = tracing::info_span!("chat", gen_ai.conversation.id = key.as_str());
            drop(span.enter());
        }
    });
    let opener = std::thread::spawn(move || {
        std::thread::sleep(open_after);
        gate.open();
    });
    (emitter, reasons, opener)
}

const OVERFLOWS: [Overflow; 2] = [
    Overflow::DropNewest,
    Overflow::Block(Duration::from_millis(5)),
];

#[test]
fn events_put_off_wait_for_room_during_a_shutdown_not_dropped() {
    for overflow in OVERFLOWS {
        for end in ["shutdown", "shutdown_async", "drop"] {
            let (emitter, reasons, opener) =
                full_behind_events_put_off(overflow, Duration::from_millis(100));
            let metrics = match end {
                "shutdown" => {
                    emitter.shutdown().unwrap();
                    Some(emitter.metrics())
                }
                "shutdown_async" => {
                    common::contract::block_on(emitter.shutdown_async()).unwrap();
                    Some(emitter.metrics())
                }
                _ => {
                    drop(emitter);
                    None
                }
            };
            opener.join().unwrap();
            let reasons = reasons.lock().unwrap_or_else(PoisonError::into_inner);
            assert!(reasons.is_empty(), "{overflow:?} {end}: {reasons:?}");
            if let Some(m) = metrics {
                assert_eq!((m.emitted, m.delivered, m.dropped), (8, 8, 0), "{m:?}");
            }
        }
    }
}

/// The same for a flush: what the layer put off waits for room until the
/// flush's deadline, whatever the `Overflow` policy. Under `DropNewest` a
/// flush that found the queue full for a moment dropped them (under
/// `Block(limit)` after `limit`), though the worker would have queued them
/// as it made room.
#[test]
fn events_put_off_wait_for_room_during_a_flush_not_dropped() {
    for overflow in OVERFLOWS {
        for how in ["flush", "flush_async"] {
            let (emitter, reasons, opener) =
                full_behind_events_put_off(overflow, Duration::from_millis(100));
            let report = match how {
                "flush" => emitter.flush(),
                _ => common::contract::block_on(emitter.flush_async()),
            };
            opener.join().unwrap();
            let report = report.unwrap();
            assert_eq!(report.delivered, 8, "{overflow:?} {how}: {report:?}");
            let reasons = reasons.lock().unwrap_or_else(PoisonError::into_inner);
            assert!(reasons.is_empty(), "{overflow:?} {how}: {reasons:?}");
            let m = emitter.metrics();
            assert_eq!((m.emitted, m.delivered, m.dropped), (8, 8, 0), "{m:?}");
            drop(reasons);
            emitter.shutdown().unwrap();
        }
    }
}

/// A flush that is queuing events put off (the queue full, the sink slow)
/// when a shutdown begins on another thread: those events were made before
/// the shutdown, so they are its to send until its deadline, as the queued
/// ones are. Delivered when the deadline allows; else they end as the
/// queued ones do, timed out at shutdown (`shutdown_timeout`, reported
/// `ShutdownTimeout`), never `dropped` (the README: `Dropped` is a full
/// queue at emit, or an emit after the shutdown; no overflow policy refused
/// these). They were refused as a late `emit` (`Error::ShutDown`, counted
/// `dropped`) once the deadline passed.
#[test]
fn a_flush_queuing_events_put_off_when_a_shutdown_begins_never_drops_them() {
    for overflow in OVERFLOWS {
        // (the sink opens after, the shutdown's limit, all delivered)
        for (open_after, limit, all_delivered) in [
            (Duration::from_millis(300), Duration::from_secs(5), true),
            (Duration::from_secs(1), Duration::from_millis(200), false),
        ] {
            let (emitter, reasons, opener) = full_behind_events_put_off(overflow, open_after);
            let flusher = {
                let em = emitter.clone();
                std::thread::spawn(move || em.flush())
            };
            // The flush has taken the four events put off and waits for
            // room for the first.
            std::thread::sleep(Duration::from_millis(100));
            let done = emitter.shutdown_within(limit);
            let _ = flusher.join().unwrap();
            opener.join().unwrap();
            let m = emitter.metrics();
            let ctx = format!("{overflow:?} {limit:?}: {done:?} {m:?}");
            assert_eq!((m.emitted, m.dropped, m.queue_depth), (8, 0, 0), "{ctx}");
            let reasons = reasons.lock().unwrap_or_else(PoisonError::into_inner);
            if all_delivered {
                assert!(done.is_ok(), "{ctx}");
                assert_eq!(m.delivered, 8, "{ctx}");
                assert!(reasons.is_empty(), "{ctx}: {reasons:?}");
            } else {
                assert_eq!((m.delivered, m.shutdown_timeout), (0, 8), "{ctx}");
                assert_eq!(reasons.len(), 8, "{ctx}: {reasons:?}");
                assert!(
                    reasons
                        .iter()
                        .all(|(r, _)| *r == ossa_events::Reason::ShutdownTimeout),
                    "{ctx}: {reasons:?}"
                );
            }
        }
    }
}

/// A flush waits for every event made before it, whoever is queuing it:
/// one thread makes spans (their events put off, and built on that thread
/// whenever the queue is full under `Block`), another flushes. Once a flush
/// returns, the events of every span closed before the call are delivered
/// (the docs of `flush`: events put off are built and queued first, and
/// waited for too).
#[test]
fn a_flush_waits_for_events_put_off_that_another_thread_is_queuing() {
    for how in ["flush", "flush_async"] {
        let rec = Record {
            delay: Duration::from_micros(300),
            ..Record::default()
        };
        let emitter = Emitter::builder("/agents/busy")
            .sink(rec.clone())
            .queue_capacity(8)
            .batch_size(2)
            .overflow(Overflow::Block(Duration::from_secs(30)))
            .flush_interval(Duration::from_millis(50))
            .flush_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let closed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spans = {
            let (em, closed, stop) = (emitter.clone(), closed.clone(), stop.clone());
            std::thread::spawn(move || {
                let subscriber = tracing_subscriber::registry().with(OssaLayer::new(em));
                tracing::subscriber::with_default(subscriber, || {
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let key = format!("c{i}");
                        let span =
                            tracing::info_span!("chat", gen_ai.conversation.id = key.as_str());
                        drop(span.enter());
                        drop(span);
                        i += 1;
                        closed.store(i, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            })
        };
        let mut short = Vec::new();
        for round in 0..200 {
            let before = 2 * closed.load(std::sync::atomic::Ordering::SeqCst);
            let r = match how {
                "flush" => emitter.flush(),
                _ => common::contract::block_on(emitter.flush_async()),
            };
            assert!(r.is_ok(), "{how} round {round}: {r:?}");
            let m = emitter.metrics();
            if m.delivered < before {
                short.push((round, before, m.delivered));
            }
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        spans.join().unwrap();
        let m = emitter.metrics();
        emitter.shutdown().unwrap();
        assert_eq!(m.dropped, 0, "{how}: {m:?}");
        assert!(
            short.is_empty(),
            "{how}: {} of 200 flushes returned before the events made before them were delivered, e.g. (round, made, delivered) {:?}",
            short.len(),
            &short[..short.len().min(5)]
        );
    }
}
