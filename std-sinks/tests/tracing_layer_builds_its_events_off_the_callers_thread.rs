//! `OssaLayer` puts its events off (the span's thread only pushes what an
//! event is made from; the emitter builds it later): the events still reach
//! the sink without a flush, a flush counts them, they keep their order
//! (a span's start before its end, before what is emitted inside it, and
//! before what is emitted after it, with threads making spans at once), a
//! full queue under `Overflow::Block` makes the worker send rather than
//! wait on itself, and at shutdown every event ends delivered or refused
//! and reported, none lost.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, Sink};
use ossa_events::tracing_layer::OssaLayer;
use ossa_events::{Emitter, EventBuilder, Overflow, Reason, SendError, ossa};
use serde_json::Value;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

mod common;
use common::{Record, wait_for};

fn layered(emitter: &Emitter) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(OssaLayer::new(emitter.clone())))
}

/// One tool span, entered once and closed: two events.
fn tool_span(call: u64) {
    tracing::info_span!(
        "execute_tool",
        gen_ai.tool.name = "search",
        gen_ai.tool.call.id = call
    )
    .in_scope(|| {});
}

fn ty(e: &Value) -> &str {
    e["type"].as_str().unwrap()
}

#[test]
fn events_reach_the_sink_without_a_flush() {
    let rec = Record::default();
    let emitter = Emitter::builder("/agents/t")
        .sink(rec.clone())
        .flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let d = layered(&emitter);
    for round in 1..=3u64 {
        // The worker's queue is empty: it sleeps until woken, and only the
        // span's push can tell it there is something to build.
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        tracing::dispatcher::with_default(&d, || tool_span(round));
        let want = 2 * round as usize;
        assert!(
            wait_for(|| rec.len() == want, Duration::from_secs(10)),
            "round {round}: {} of {want} events after {:?}, no flush",
            rec.len(),
            start.elapsed()
        );
        // The worker counts a batch delivered once the sink's call has
        // returned, a moment after the sink recorded it.
        assert!(
            wait_for(
                || emitter.metrics().delivered == want as u64,
                Duration::from_secs(10)
            ),
            "round {round}: {} delivered, {want} recorded",
            emitter.metrics().delivered
        );
    }
    // And while the worker sleeps until the interval (its queue not empty):
    // a user event queued first, then a span.
    emitter
        .emit(EventBuilder::new().ty("dev.example.first"))
        .unwrap();
    tracing::dispatcher::with_default(&d, || tool_span(9));
    assert!(wait_for(|| rec.len() == 9, Duration::from_secs(10)));
    let types: Vec<String> = rec.events().iter().map(|e| ty(e).to_owned()).collect();
    assert_eq!(
        types[6..],
        ["dev.example.first", ossa::TOOL_CALLED, ossa::TOOL_COMPLETED]
    );
}

#[test]
fn a_flush_counts_and_delivers_every_event_of_the_spans_before_it() {
    let rec = Record::default();
    // The worker would not send on its own for a minute.
    let emitter = Emitter::builder("/agents/t")
        .sink(rec.clone())
        .batch_size(100_000)
        .flush_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let d = layered(&emitter);
    for round in 1..=3u64 {
        tracing::dispatcher::with_default(&d, || (0..300).for_each(tool_span));
        let report = emitter.flush().unwrap();
        let want = 600 * round;
        assert_eq!((report.delivered, report.pending), (want, 0));
        assert_eq!(rec.len() as u64, want);
        let m = emitter.metrics();
        assert_eq!((m.emitted, m.delivered, m.queue_depth), (want, want, 0));
    }
    // A shutdown counts them too.
    tracing::dispatcher::with_default(&d, || (0..300).for_each(tool_span));
    assert_eq!(emitter.shutdown().unwrap().delivered, 2400);
    assert_eq!(rec.len(), 2400);
}

#[test]
fn order_is_kept_per_span_and_per_thread_with_threads_making_spans_at_once() {
    let rec = Record::default();
    let emitter = Emitter::builder("/agents/t")
        .sink(rec.clone())
        .context_from_tracing(true)
        .batch_size(7)
        .flush_interval(Duration::from_millis(1))
        .queue_capacity(1_000_000)
        .build()
        .unwrap();
    let d = layered(&emitter);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (d, emitter) = (d.clone(), emitter.clone());
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..150u64 {
                        let key = format!("t{t}-{i}");
                        let note = |what: &str| {
                            emitter
                                .emit(EventBuilder::new().ty(what).ossa_interaction_id(&key))
                                .unwrap();
                        };
                        let agent = tracing::info_span!(
                            "invoke_agent",
                            gen_ai.agent.name = "a",
                            gen_ai.conversation.id = key.as_str()
                        );
                        agent.in_scope(|| {
                            note("dev.example.in_agent");
                            let tool = tracing::info_span!(
                                "execute_tool",
                                gen_ai.tool.name = "search",
                                gen_ai.tool.call.id = i
                            );
                            tool.in_scope(|| note("dev.example.in_tool"));
                            drop(tool);
                            note("dev.example.after_tool");
                        });
                        drop(agent);
                        note("dev.example.after_agent");
                    }
                });
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = emitter.flush().unwrap();
    assert_eq!(report.delivered, 4 * 150 * 8);
    let m = emitter.metrics();
    assert_eq!((m.dropped, m.rejected, m.failed), (0, 0, 0));

    // Each key's events, in the order the sink got them.
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    for e in rec.events() {
        let key = e["ossainteractionid"].as_str().unwrap().to_owned();
        by_key.entry(key).or_default().push(ty(&e).to_owned());
    }
    assert_eq!(by_key.len(), 600);
    let want = [
        ossa::AGENT_STARTED,
        "dev.example.in_agent",
        ossa::TOOL_CALLED,
        "dev.example.in_tool",
        ossa::TOOL_COMPLETED,
        "dev.example.after_tool",
        ossa::AGENT_COMPLETED,
        "dev.example.after_agent",
    ];
    for (key, types) in &by_key {
        assert_eq!(types, &want, "{key}");
    }
}

/// A recording sink whose sends wait while `closed` is set.
#[derive(Clone, Default)]
struct Gated {
    rec: Record,
    closed: Arc<AtomicBool>,
}

impl Sink for Gated {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        while self.closed.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.rec.send(events)
    }
}

/// Under `Block`, an `emit` inside a span whose start waits to be built
/// has one limit in all, for that start and for itself: when the start could
/// not be queued within it (the queue full all that time), the emit is
/// refused at once. It waited a second limit of its own, and when room came
/// during that one it was queued before the start, which a drain that ran
/// out of time can leave held (a stress audit's proptest seed in
/// `tracing_layer_accounts_for_every_event_it_puts_off`).
#[test]
fn an_emit_behind_a_start_that_found_no_room_waits_one_limit_and_never_goes_first() {
    const LIMIT: Duration = Duration::from_millis(300);
    let sink = Gated::default();
    sink.closed.store(true, Ordering::SeqCst);
    let reports = Reports::default();
    let emitter = Emitter::builder("/agents/t")
        .sink(sink.clone())
        .batch_size(1)
        .queue_capacity(2)
        .flush_interval(Duration::from_millis(1))
        .overflow(Overflow::Block(LIMIT))
        .on_undelivered(reports.clone().recorder())
        .build()
        .unwrap();
    // Two events fill the queue: one in the stuck send, one waiting.
    for _ in 0..2 {
        emitter
            .emit(EventBuilder::new().ty("dev.example.before"))
            .unwrap();
    }
    let (note, took) = tracing::dispatcher::with_default(&layered(&emitter), || {
        tracing::info_span!("execute_tool", gen_ai.tool.name = "t").in_scope(|| {
            let start = Instant::now();
            let note = emitter.emit(EventBuilder::new().ty("dev.example.note"));
            (note, start.elapsed())
        })
    });
    sink.closed.store(false, Ordering::SeqCst);
    emitter.flush().unwrap();
    assert!(
        matches!(note, Err(ossa_events::Error::QueueFull)),
        "{note:?}"
    );
    // Two limits were 600 ms; the slack is for a loaded machine.
    assert!(took < LIMIT * 9 / 5, "the emit waited {took:?}");
    // The span's start is queued late (held) or refused at the limit;
    // either way it is not behind the note, which never went.
    let types: Vec<String> = sink.rec.events().iter().map(|e| ty(e).to_owned()).collect();
    let start_went = types.iter().any(|t| t == ossa::TOOL_CALLED);
    let mut want = vec!["dev.example.before", "dev.example.before"];
    if start_went {
        want.push(ossa::TOOL_CALLED);
    }
    want.push(ossa::TOOL_COMPLETED);
    assert_eq!(types, want);
    let m = emitter.metrics();
    let dropped = if start_went { 1 } else { 2 };
    assert_eq!(
        (m.delivered, m.dropped),
        (want.len() as u64, dropped),
        "{m:?}"
    );
    let all = reports.0.lock().unwrap();
    assert_eq!(all.len() as u64, dropped);
    assert!(all.iter().all(|(r, _)| *r == Reason::Dropped), "{all:?}");
}

#[test]
fn a_full_queue_under_block_makes_the_worker_send_not_wait_on_itself() {
    let rec = Record::slow(Duration::from_millis(1));
    let emitter = Emitter::builder("/agents/t")
        .sink(rec.clone())
        .queue_capacity(2)
        .batch_size(2)
        .flush_interval(Duration::from_millis(1))
        // Were the worker to wait for room it makes itself, each event
        // would take this long and then be dropped.
        .overflow(Overflow::Block(Duration::from_secs(30)))
        .build()
        .unwrap();
    let d = layered(&emitter);
    let start = Instant::now();
    tracing::dispatcher::with_default(&d, || (0..100).for_each(tool_span));
    // Without a flush: the worker builds them all, two at a time.
    assert!(wait_for(|| rec.len() == 200, Duration::from_secs(20)));
    assert!(start.elapsed() < Duration::from_secs(20));
    let m = emitter.metrics();
    assert_eq!((m.emitted, m.delivered, m.dropped), (200, 200, 0));
    let calls = rec
        .events()
        .iter()
        .filter(|e| ty(e) == ossa::TOOL_CALLED)
        .count();
    assert_eq!(calls, 100);
}

/// What `on_undelivered` was told, by reason.
#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<(Reason, String)>>>);

impl Reports {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    /// An `on_undelivered` callback that records into these.
    fn recorder(self) -> impl Fn(&ossa_events::Undelivered<'_>) + Send + Sync + 'static {
        move |u| {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((u.reason, u.id.to_owned()));
        }
    }
}

/// How many events `rec` holds, and how many of those were reported too.
///
/// A batch whose send ends past the shutdown deadline and its grace (a
/// worker held off the core that long on a loaded machine) is counted
/// `shutdown_timeout` and reported so, and the sink's late `Ok` changes
/// nothing (documented; tested by `a_sink_stuck_past_the_deadline…`): such
/// events are in the sink and reported, and must be reported as that alone.
fn held_and_late(rec: &Record, reports: &Reports, ctx: &str) -> (u64, u64) {
    let events = rec.events();
    let held: std::collections::HashSet<&str> =
        events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(held.len(), events.len(), "{ctx}: an event sent twice");
    let all = reports.0.lock().unwrap();
    let late: Vec<_> = all
        .iter()
        .filter(|(_, id)| held.contains(id.as_str()))
        .collect();
    for (reason, id) in &late {
        assert_eq!(
            *reason,
            Reason::ShutdownTimeout,
            "{ctx}: {id} delivered and reported"
        );
    }
    (held.len() as u64, late.len() as u64)
}

#[test]
fn at_shutdown_every_event_put_off_is_delivered_or_refused_and_reported() {
    for overflow in [
        Overflow::DropNewest,
        Overflow::Block(Duration::from_millis(20)),
    ] {
        // A slow sink: events pile up, queued and put off, when shutdown
        // begins with a deadline too short for them all.
        let rec = Record::slow(Duration::from_millis(3));
        let reports = Reports::default();
        let log = reports.clone();
        let emitter = Emitter::builder("/agents/t")
            .sink(rec.clone())
            .batch_size(5)
            .flush_interval(Duration::from_millis(1))
            .queue_capacity(40)
            .overflow(overflow)
            .shutdown_timeout(Duration::from_millis(60))
            .on_undelivered(log.recorder())
            .build()
            .unwrap();
        let d = layered(&emitter);
        let stop = Arc::new(AtomicBool::new(false));
        let spans = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (d, stop, spans) = (d.clone(), stop.clone(), spans.clone());
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&d, || {
                        // Spans before, during and after the shutdown.
                        let mut i = 0u64;
                        while !stop.load(Ordering::Relaxed) || i < 50 {
                            tool_span(i);
                            spans.fetch_add(1, Ordering::Relaxed);
                            i += 1;
                        }
                    });
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30));
        let _ = emitter.shutdown();
        std::thread::sleep(Duration::from_millis(20));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        // Spans made after the shutdown returned: refused at once.
        tracing::dispatcher::with_default(&d, || tool_span(7));
        spans.fetch_add(1, Ordering::Relaxed);

        let made = 2 * spans.load(Ordering::Relaxed);
        let m = emitter.metrics();
        let (held, late) = held_and_late(&rec, &reports, &format!("{overflow:?}"));
        let delivered = held - late;
        let reported = reports.count() as u64;
        assert_eq!(m.delivered, delivered, "{overflow:?} {m:?}");
        // Every event the layer made went through emit: queued or refused.
        assert_eq!(
            m.emitted + m.dropped + m.rejected,
            made,
            "{overflow:?} {m:?}"
        );
        // Every queued one ended.
        assert_eq!(m.queue_depth, 0, "{overflow:?} {m:?}");
        assert_eq!(
            m.emitted,
            m.delivered + m.failed + m.shutdown_timeout,
            "{overflow:?} {m:?}"
        );
        // Every one not delivered was reported, once.
        assert_eq!(
            reported,
            m.dropped + m.rejected + m.failed + m.shutdown_timeout,
            "{overflow:?} {m:?}"
        );
        assert_eq!(delivered + reported, made, "{overflow:?} {m:?}");
        assert!(m.dropped > 0, "spans after the shutdown: {m:?}");
        // Each event reported once (ids are unique).
        let all = reports.0.lock().unwrap();
        let ids: std::collections::HashSet<&str> = all.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(ids.len(), all.len());
    }
}

#[test]
fn dropping_the_last_handle_without_waiting_leaves_the_worker_to_end_every_event_put_off() {
    // (shutdown timeout, whether all are delivered)
    for (limit, all_delivered) in [
        (Duration::from_secs(30), true),
        (Duration::from_millis(20), false),
    ] {
        // A slow sink and batches of one: the worker builds one event at a
        // time, so most wait, put off, when the last handle goes.
        let rec = Record::slow(Duration::from_millis(4));
        let reports = Reports::default();
        let log = reports.clone();
        let emitter = Emitter::builder("/agents/t")
            .sink(rec.clone())
            .batch_size(1)
            .shutdown_timeout(limit)
            .wait_on_drop(false)
            .on_undelivered(log.recorder())
            .build()
            .unwrap();
        let d = layered(&emitter);
        tracing::dispatcher::with_default(&d, || (0..50).for_each(tool_span));
        let start = Instant::now();
        drop(d); // the layer's handle
        drop(emitter); // the last one: shutdown begins, nothing waits
        assert!(start.elapsed() < Duration::from_millis(500));
        let ended = || {
            let (held, late) = held_and_late(&rec, &reports, &format!("{limit:?}"));
            held + reports.count() as u64 - late
        };
        assert!(
            wait_for(|| ended() == 100, Duration::from_secs(20)),
            "{limit:?}: {} delivered, {} reported, of 100",
            rec.len(),
            reports.count()
        );
        if all_delivered {
            assert_eq!((rec.len(), reports.count()), (100, 0), "{limit:?}");
        } else {
            assert!(reports.count() > 0, "{limit:?}");
        }
    }
}

/// A sink whose sends hang until `release` is set (a collector that stopped
/// answering), counting what it was sent.
#[derive(Clone, Default)]
struct Stuck {
    release: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
}

impl Sink for Stuck {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        while !self.release.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.sent.fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// A span thread whose push finds the put-off events at capacity, under
/// `Overflow::Block`, builds them on its own thread and waits for room,
/// holding the drain: a `flush_within` or a `shutdown_within` meanwhile
/// keeps to its own limit. (Both waited for the drain as long as the other
/// thread did, its 5 s `Block` here: 9.8 s for a limit of 200 ms, and a
/// shutdown could not even begin meanwhile.)
#[test]
fn flush_and_shutdown_keep_their_limits_while_a_span_thread_waits_for_room() {
    for shutdown in [false, true] {
        let stuck = Stuck::default();
        let emitter = Emitter::builder("/agents/t")
            .sink(stuck.clone())
            .queue_capacity(2)
            .batch_size(1)
            .overflow(Overflow::Block(Duration::from_secs(5)))
            .build()
            .unwrap();
        // e0 in the send that hangs, e1 queued: the queue is full.
        emitter
            .emit(EventBuilder::new().ty("dev.example.tick").id("e0"))
            .unwrap();
        // (A batch of one is due at once: the worker takes it.)
        std::thread::sleep(Duration::from_millis(100));
        emitter
            .emit(EventBuilder::new().ty("dev.example.tick").id("e1"))
            .unwrap();
        let d = layered(&emitter);
        // The third span's push finds two put off (the capacity) and drains
        // on this thread, waiting for room.
        let spans = std::thread::spawn(move || {
            tracing::dispatcher::with_default(&d, || (0..3).for_each(tool_span));
        });
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        let r = if shutdown {
            emitter
                .shutdown_within(Duration::from_millis(200))
                .map(|_| ())
        } else {
            emitter.flush_within(Duration::from_millis(200)).map(|_| ())
        };
        let took = t.elapsed();
        assert!(r.is_err(), "shutdown {shutdown}: {r:?}");
        assert!(
            took < Duration::from_secs(2),
            "shutdown {shutdown}: {took:?}"
        );
        stuck.release.store(true, Ordering::Relaxed);
        spans.join().unwrap();
        let _ = emitter.shutdown();
    }
}

/// With a spool nothing is put off: when the span's call returns, its
/// events are queued (and on disk), even while the worker is stuck in a
/// send and could not build them (a `kill -9` then would lose them).
#[test]
fn with_a_spool_the_events_are_queued_before_the_span_returns() {
    let dir = std::env::temp_dir().join(format!("ossa-layer-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sink = Stuck::default();
    let emitter = Emitter::builder("/agents/t")
        .sink(sink.clone())
        .batch_size(1)
        .spool(ossa_events::spool::SpoolConfig::new(&dir))
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // The worker takes this one and hangs in the send.
    emitter
        .emit(EventBuilder::new().ty("dev.example.first"))
        .unwrap();
    assert!(wait_for(
        || emitter.metrics().queue_depth == 1,
        Duration::from_secs(10)
    ));
    let d = layered(&emitter);
    tracing::dispatcher::with_default(&d, || tool_span(1));
    // Queued (counted) at once, not waiting for the stuck worker.
    assert_eq!(emitter.metrics().emitted, 3);
    sink.release.store(true, Ordering::Relaxed);
    assert_eq!(emitter.flush().unwrap().delivered, 3);
    assert_eq!(sink.sent.load(Ordering::Relaxed), 3);
    emitter.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Put-off events past the queue's capacity follow the `Overflow` policy,
/// as a full queue does: `DropNewest` refuses them at once and `Block`
/// waits its limit once, not once for every event waiting; either way a
/// span's call returns in about that limit, and every event is accounted
/// for (delivered, or dropped and reported).
#[test]
fn a_full_deferred_queue_follows_the_overflow_policy_without_long_stalls() {
    for overflow in [
        Overflow::DropNewest,
        Overflow::Block(Duration::from_millis(50)),
    ] {
        let sink = Stuck::default();
        let dropped = Arc::new(AtomicU64::new(0));
        let d2 = dropped.clone();
        let emitter = Emitter::builder("/agents/t")
            .sink(sink.clone())
            .batch_size(5)
            .queue_capacity(20)
            .overflow(overflow)
            .on_undelivered(move |u| {
                if u.reason == Reason::Dropped {
                    d2.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build()
            .unwrap();
        let d = layered(&emitter);
        let mut slowest = Duration::ZERO;
        const SPANS: u64 = 40;
        for i in 0..SPANS {
            let t = Instant::now();
            tracing::dispatcher::with_default(&d, || tool_span(i));
            slowest = slowest.max(t.elapsed());
        }
        // Before: a push at capacity built all 20 waiting events itself,
        // each waiting out the Block limit (about a second a span).
        assert!(
            slowest < Duration::from_millis(500),
            "{overflow:?}: a span took {slowest:?}"
        );
        sink.release.store(true, Ordering::Relaxed);
        let r = emitter.flush().unwrap();
        let m = emitter.metrics();
        assert!(m.dropped > 0, "{overflow:?}: {m:?}");
        assert_eq!(
            r.delivered + m.dropped,
            2 * SPANS,
            "{overflow:?}: every event delivered or dropped: {m:?}"
        );
        assert_eq!(dropped.load(Ordering::Relaxed), m.dropped, "{overflow:?}");
        assert_eq!(sink.sent.load(Ordering::Relaxed), r.delivered);
        emitter.shutdown().unwrap();
    }
}

/// The events put off count against `queue_bytes` too, text fields
/// included: spans with 16 KB results, while the sink hangs, are refused
/// (and reported) once what waits reaches the byte cap, long before the
/// count cap; nothing is lost uncounted.
#[test]
fn put_off_events_are_bounded_by_queue_bytes() {
    let sink = Stuck::default();
    let emitter = Emitter::builder("/agents/t")
        .sink(sink.clone())
        .batch_size(1)
        .queue_capacity(10_000)
        .queue_bytes(64 * 1024)
        .overflow(Overflow::DropNewest)
        .build()
        .unwrap();
    let d = layered(&emitter);
    let big = "r".repeat(16 * 1024);
    const SPANS: u64 = 20;
    tracing::dispatcher::with_default(&d, || {
        for i in 0..SPANS {
            tracing::info_span!(
                "execute_tool",
                gen_ai.tool.name = "search",
                gen_ai.tool.call.id = i,
                gen_ai.tool.call.result = big.as_str()
            )
            .in_scope(|| {});
        }
    });
    let m = emitter.metrics();
    // 20 ends of ~16 KB each against 64 KiB: most are refused now.
    assert!(m.dropped >= 10, "{m:?}");
    sink.release.store(true, Ordering::Relaxed);
    let r = emitter.flush().unwrap();
    let m = emitter.metrics();
    assert_eq!(r.delivered + m.dropped, 2 * SPANS, "{m:?}");
    emitter.shutdown().unwrap();
}
