//! `OssaLayer` in setups an adversarial review found broken (each test
//! failed before its fix): two layers on one subscriber, an ERROR event in
//! a span of an operation the layer does not map, and an `on_undelivered`
//! callback that waits for a lock an emitting thread holds; and two layers
//! with a tool span that starts late.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use ossa_events::sink::WriterSink;
use ossa_events::tracing_layer::OssaLayer;
use ossa_events::{Emitter, EventBuilder, Overflow, ossa};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt as _;

use common::Captured as Shared;

fn ty(e: &Value) -> &str {
    e["type"].as_str().unwrap()
}

/// Two `OssaLayer`s on one subscriber (one emitter per destination, say a
/// file and a collector): creating a GenAI span must not panic, and each
/// emitter gets the span's events.
#[test]
fn two_layers_on_one_subscriber_neither_panic_nor_steal_each_others_spans() {
    let (out_a, out_b) = (Shared::default(), Shared::default());
    let (a, b) = (out_a.emitter("/agents/a"), out_b.emitter("/agents/b"));
    let subscriber = tracing_subscriber::registry()
        .with(OssaLayer::new(a.clone()))
        .with(OssaLayer::new(b.clone()));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tracing::subscriber::with_default(subscriber, || {
            let tool = tracing::info_span!("execute_tool", gen_ai.tool.name = "t");
            tool.in_scope(|| {});
        });
    }));
    a.flush().unwrap();
    b.flush().unwrap();
    assert!(
        r.is_ok(),
        "creating a GenAI span under two OssaLayers panicked"
    );
    let types = |o: &Shared| {
        o.events()
            .iter()
            .map(|e| ty(e).to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(types(&out_a), [ossa::TOOL_CALLED, ossa::TOOL_COMPLETED]);
    assert_eq!(types(&out_b), [ossa::TOOL_CALLED, ossa::TOOL_COMPLETED]);
    // Both name the same trace and span.
    let ids = |o: &Shared| {
        o.events()
            .iter()
            .map(|e| (e["ossatraceid"].clone(), e["ossaspanid"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&out_a), ids(&out_b));
}

/// An ERROR event inside a span that has a `gen_ai.operation.name` the
/// layer does not map (an `embeddings` call, say) inside an agent span: that
/// span emits nothing, so it is a plain span for the layer, and the docs
/// say an ERROR event "inside a plain span within it" fails the agent.
#[test]
fn an_error_inside_an_unmapped_operation_fails_the_genai_span_around_it() {
    let out = Shared::default();
    let em = Emitter::builder("/agents/a")
        .sink(WriterSink::new(out.clone()))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(em.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "a");
        agent.in_scope(|| {
            let emb = tracing::info_span!("embed", gen_ai.operation.name = "embeddings");
            emb.in_scope(|| tracing::error!("embedding model unreachable"));
            // The same inside a span with no GenAI field at all: fails it.
            // tracing::info_span!("embed").in_scope(|| tracing::error!("x"));
        });
    });
    em.flush().unwrap();
    let types: Vec<String> = out.events().iter().map(|e| ty(e).to_owned()).collect();
    assert_eq!(types, [ossa::AGENT_STARTED, ossa::AGENT_FAILED]);
}

/// The `on_undelivered` callback was run while the deferred queue's drain
/// lock is held (for the layer's events refused when built). A callback that takes a lock (here the application's own
/// log of undelivered events) then deadlocks with any thread that holds
/// that lock while it calls `emit()` under `DropNewest` (an `emit()` that
/// never waits without the layer): that `emit()` waits for the drain lock.
///
/// The layer's events are refused here by the emitter's payload schemas (a
/// tool name they forbid): since 07a9c76 a name CloudEvents refuses in an
/// attribute is cleaned there, no longer a refusal.
#[cfg(feature = "schemas")]
#[test]
fn a_callback_that_takes_a_lock_does_not_deadlock_an_emit_made_under_that_lock() {
    // The tool events of a tool named `refused` break these schemas.
    let dir = std::env::temp_dir().join(format!("ossa-layer-refused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let refuse = r#"{"type":"object","properties":{"tool":{"not":{"const":"refused"}}}}"#;
    for ty in [ossa::TOOL_CALLED, ossa::TOOL_COMPLETED] {
        std::fs::write(dir.join(format!("{ty}.json")), refuse).unwrap();
    }
    let schemas = ossa_events::schema::SchemaRegistry::builder()
        .dir(&dir)
        .build();
    let _ = std::fs::remove_dir_all(&dir);
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let (in_cb_tx, in_cb_rx) = mpsc::channel::<()>();
    let in_cb_tx = Mutex::new(in_cb_tx);
    let cb_log = log.clone();
    let em = Emitter::builder("/agents/a")
        .sink(WriterSink::new(Shared::default()))
        .overflow(Overflow::DropNewest)
        .schemas(schemas.unwrap())
        .on_undelivered(move |u| {
            let _ = in_cb_tx.lock().unwrap().send(());
            cb_log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(u.id.to_owned());
        })
        .build()
        .unwrap();
    // Another thread holds the log's lock while it emits (it logs what it
    // emits, under the same guard).
    let guard_taken = Arc::new(std::sync::Barrier::new(2));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (em2, log2, gt) = (em.clone(), log.clone(), guard_taken.clone());
    std::thread::spawn(move || {
        let mut g = log2.lock().unwrap();
        gt.wait();
        go_rx.recv().unwrap();
        g.push("emitting".to_owned());
        let _ = em2.emit(EventBuilder::new().ty("dev.example.note"));
        drop(g);
        let _ = done_tx.send(());
    });
    guard_taken.wait();
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(em.clone()));
    tracing::subscriber::with_default(subscriber, || {
        // A tool whose name the schemas refuse: its events are rejected
        // when built, and reported (from inside the drain).
        let tool = tracing::info_span!("execute_tool", gen_ai.tool.name = "refused");
        tool.in_scope(|| {});
    });
    // Whoever drains (the worker, or this thread) is in the callback now,
    // waiting for the log: the other thread emits.
    let drainer = {
        let em = em.clone();
        std::thread::spawn(move || {
            let _ = em.emit(EventBuilder::new().ty("dev.example.kick"));
        })
    };
    in_cb_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the callback ran");
    // Until both refused events are counted (they are whenever no drain is
    // stuck in the callback); a bound, then the other thread goes anyway.
    for _ in 0..500 {
        if em.metrics().rejected == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    go_tx.send(()).unwrap();
    let r = done_rx.recv_timeout(Duration::from_secs(20));
    assert!(
        r.is_ok(),
        "emit() under DropNewest hung: deadlock between the drain lock and the callback"
    );
    drainer.join().unwrap();
}

/// A span that started before shutdown and ends after it: its end event is
/// refused, counted once (dropped) and reported once.
#[test]
fn a_span_open_across_shutdown_has_its_end_counted_and_reported_once() {
    let reported = Arc::new(AtomicU64::new(0));
    let r = reported.clone();
    let out = Shared::default();
    let em = Emitter::builder("/agents/a")
        .sink(WriterSink::new(out.clone()))
        .on_undelivered(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(em.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "a");
        let g = agent.enter();
        em.shutdown().unwrap();
        drop(g);
        drop(agent);
    });
    let m = em.metrics();
    assert_eq!((m.emitted, m.delivered, m.dropped), (1, 1, 1), "{m:?}");
    assert_eq!(reported.load(Ordering::SeqCst), 1);
}

/// Two layers, a tool span entered before it knew its tool (as rig's is)
/// inside an agent span that was named after the tool span was made: for
/// each emitter, the tool's `tool.called` comes before an event emitted in
/// it and before the turn in it, and every span's events name the agent.
#[test]
fn two_layers_start_a_waiting_tool_span_before_what_happens_in_it() {
    let (out_a, out_b) = (Shared::default(), Shared::default());
    let a = Emitter::builder("/agents/a")
        .sink(WriterSink::new(out_a.clone()))
        .build()
        .unwrap();
    let b = Emitter::builder("/agents/b")
        .sink(WriterSink::new(out_b.clone()))
        .context_from_tracing(true)
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(OssaLayer::new(a.clone()))
        .with(OssaLayer::new(b.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = tracing::field::Empty);
        let tool = tracing::info_span!(
            parent: &agent,
            "execute_tool",
            gen_ai.tool.name = tracing::field::Empty
        );
        agent.record("gen_ai.agent.name", "planner");
        let _a = agent.enter();
        tool.in_scope(|| {
            tracing::Span::current().record("gen_ai.tool.name", "t");
            b.emit(EventBuilder::new().ty("dev.example.note")).unwrap();
            tracing::info_span!("chat").in_scope(|| {});
        });
    });
    a.flush().unwrap();
    b.flush().unwrap();
    for (out, note) in [(out_a, false), (out_b, true)] {
        let events = out.events();
        let types: Vec<&str> = events.iter().map(ty).collect();
        let mut want = vec![ossa::AGENT_STARTED, ossa::TOOL_CALLED];
        if note {
            want.push("dev.example.note");
        }
        want.extend([
            ossa::TURN_STARTED,
            ossa::TURN_COMPLETED,
            ossa::TOOL_COMPLETED,
            ossa::AGENT_COMPLETED,
        ]);
        assert_eq!(types, want);
        for e in events.iter().filter(|e| ty(e) != "dev.example.note") {
            assert_eq!(e["ossaagentid"], "planner", "{e:#?}");
        }
    }
}
