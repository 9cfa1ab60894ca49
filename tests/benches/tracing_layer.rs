//! Issue 15: the cost of `OssaLayer` per span, and of `context_from_tracing`
//! per event, on the caller's thread.
//!
//! ```sh
//! cargo bench -p ossa-events-tests --bench tracing_layer
//! ```
//!
//! 1. **Per span.** A GenAI span shaped as the conventions (and rig) write
//!    a tool call (`execute_tool` with the tool name and call id at
//!    creation, the result recorded late) created, entered, exited and
//!    closed, under a `tracing_subscriber::Registry` alone and under the
//!    same registry with an `OssaLayer` on an emitter whose sink discards
//!    (the worker drains as in production). Each span costs the layer two
//!    events (`tool.called`, `tool.completed`), each built, encoded and
//!    queued by `Emitter::emit` on this thread. Own loop: median of 31 runs
//!    × 10 000 spans of each, interleaved; allocations per span on the
//!    caller's thread (`stats_alloc`, worker idle). Target: ≤ 1 µs added
//!    per span (median). Criterion: `span/*`.
//! 2. **Per event.** `emit_ossa` of the typical tool call inside an
//!    `OssaLayer` span with `context_from_tracing(true)` vs an emitter with
//!    the same kind of ids configured (`trace_id`/`span_id`, so both events
//!    carry the same extensions): what the lookup of the current span's ids
//!    adds; and `current_span_ids()` alone. Criterion: `context/*`.
//!
//! Without `--bench` every part runs once with small counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ossa_events::sink::{Encoded, Sink};
use ossa_events::tracing_layer::{OssaLayer, current_span_ids};
use ossa_events::{Emitter, SendError};
use ossa_events_tests::median;
use ossa_events_tests::typical::{SOURCE, SPAN_ID, TRACE_ID, tool_called};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A sink that accepts every batch and keeps nothing.
struct Discard;

impl Sink for Discard {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        black_box(events.len());
        Ok(())
    }
}

fn emitter(context: bool, idle_worker: bool) -> Emitter {
    let b = Emitter::builder(SOURCE)
        .sink(Discard)
        .context_from_tracing(context)
        .queue_capacity(2_000_000)
        .queue_bytes(2 << 30)
        .flush_timeout(Duration::from_secs(300));
    let b = if idle_worker {
        b.batch_size(1_000_000)
            .flush_interval(Duration::from_secs(3600))
    } else {
        b
    };
    b.build().unwrap()
}

/// One tool span's life: create (name, call id), enter, record the result,
/// exit, close.
#[inline(never)]
fn one_span(i: u64) {
    let span = tracing::info_span!(
        "execute_tool",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = "web_search",
        gen_ai.tool.call.id = i,
        gen_ai.tool.call.result = tracing::field::Empty,
    );
    let entered = span.enter();
    span.record("gen_ai.tool.call.result", "[]");
    drop(entered);
    drop(span);
}

fn spans(dispatch: &Dispatch, n: u64) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let t = Instant::now();
        for i in 0..n {
            one_span(black_box(i));
        }
        t.elapsed().as_nanos() as f64 / n as f64
    })
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let (runs, per_run) = if bench_mode { (31, 10_000) } else { (3, 200) };

    // --- 1. Per span -------------------------------------------------------
    let plain = Dispatch::new(tracing_subscriber::registry());
    let em = emitter(false, false);
    let layered = Dispatch::new(tracing_subscriber::registry().with(OssaLayer::new(em.clone())));
    spans(&plain, per_run);
    spans(&layered, per_run);
    em.flush().unwrap();
    let (mut base, mut with) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        base.push(spans(&plain, per_run));
        with.push(spans(&layered, per_run));
        em.flush().unwrap();
    }
    let (base_ns, with_ns) = (median(&mut base), median(&mut with));
    let m = em.metrics();
    assert_eq!((m.dropped, m.rejected), (0, 0));
    assert_eq!(m.emitted, 2 * per_run * (runs as u64 + 1));

    // Allocations on the caller's thread (worker idle, queue grown first).
    let idle = emitter(false, true);
    let counted = Dispatch::new(tracing_subscriber::registry().with(OssaLayer::new(idle.clone())));
    spans(&counted, per_run);
    idle.flush().unwrap(); // the queue keeps its grown capacity
    let region = Region::new(GLOBAL);
    spans(&counted, per_run);
    let s = region.change();
    let allocs_with = (s.allocations + s.reallocations) as f64 / per_run as f64;
    let region = Region::new(GLOBAL);
    spans(&plain, per_run);
    let s = region.change();
    let allocs_base = (s.allocations + s.reallocations) as f64 / per_run as f64;
    idle.shutdown().unwrap();

    // --- 2. Per event: context_from_tracing ------------------------------
    let call = tool_called();
    let emit_in_span = |context: bool| {
        // Off: the same ids configured on the builder, so both events carry
        // the same extensions and only the lookup differs.
        let em = if context {
            emitter(true, false)
        } else {
            Emitter::builder(SOURCE)
                .sink(Discard)
                .trace_id(TRACE_ID)
                .span_id(SPAN_ID)
                .queue_capacity(2_000_000)
                .queue_bytes(2 << 30)
                .build()
                .unwrap()
        };
        let d = Dispatch::new(tracing_subscriber::registry().with(OssaLayer::new(em.clone())));
        let mut v = Vec::new();
        tracing::dispatcher::with_default(&d, || {
            let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "researcher");
            let _in = agent.enter();
            for _ in 0..runs {
                let t = Instant::now();
                for _ in 0..per_run {
                    em.emit_ossa(black_box(&call)).unwrap();
                }
                v.push(t.elapsed().as_nanos() as f64 / per_run as f64);
                em.flush().unwrap();
            }
        });
        median(&mut v)
    };
    let emit_off = emit_in_span(false);
    let emit_on = emit_in_span(true);
    let lookup_ns = tracing::dispatcher::with_default(&layered, || {
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "researcher");
        let _in = agent.enter();
        let mut v = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            for _ in 0..per_run {
                black_box(current_span_ids());
            }
            v.push(t.elapsed().as_nanos() as f64 / per_run as f64);
        }
        median(&mut v)
    });

    // --- Criterion ----------------------------------------------------------
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    {
        let mut g = c.benchmark_group("span");
        g.bench_function("registry_only", |b| {
            tracing::dispatcher::with_default(&plain, || b.iter(|| one_span(black_box(7))))
        });
        g.bench_function("with_ossa_layer", |b| {
            tracing::dispatcher::with_default(&layered, || b.iter(|| one_span(black_box(7))))
        });
        g.finish();
    }
    em.flush().unwrap();
    {
        let mut g = c.benchmark_group("context");
        g.bench_function("current_span_ids", |b| {
            tracing::dispatcher::with_default(&layered, || {
                let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "r");
                let _in = agent.enter();
                b.iter(|| black_box(current_span_ids()))
            })
        });
        g.finish();
    }
    em.shutdown().unwrap();
    c.final_summary();

    println!();
    println!("tracing_layer summary (caller thread, medians of {runs} runs x {per_run})");
    println!(
        "  span (create, enter, record, exit, close): registry alone {base_ns:.0} ns, with OssaLayer {with_ns:.0} ns: +{:.0} ns per span (target <= 1000), 2 events per span",
        with_ns - base_ns
    );
    println!(
        "  allocations per span on the caller thread: {allocs_base:.2} without, {allocs_with:.2} with the layer"
    );
    println!(
        "  emit_ossa in a span: ids configured {emit_off:.0} ns, context_from_tracing {emit_on:.0} ns (+{:.0} ns); current_span_ids() alone {lookup_ns:.1} ns",
        emit_on - emit_off
    );
}
