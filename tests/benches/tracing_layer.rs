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
//!    same registry with an `OssaLayer` on an emitter whose sink discards.
//!    Each span makes two events (`tool.called`, `tool.completed`); the
//!    layer only puts them off on this thread (a snapshot of what each
//!    reads and a monotonic-clock read), and the emitter builds, encodes
//!    and queues them later: (a) on its worker, meanwhile, as in
//!    production (on 2 cores the worker and this thread share them with
//!    whatever else runs, so wall time here depends on the machine's load;
//!    on-CPU time is this thread's own work); (b) with the worker held in a
//!    sink call, so nothing builds them until the flush after each run:
//!    this thread's part alone. Own loop: median of 31 runs × 10 000 spans
//!    of each, interleaved, wall and on-CPU time (`CLOCK_THREAD_CPUTIME_ID`);
//!    allocations per span on this thread (`stats_alloc`, the worker
//!    held). Target: ≤ 1 µs added per span (median). Criterion: `span/*`
//!    (the emitter flushed after each sample, outside the timing).
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
use std::sync::{Arc, Condvar, Mutex};
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

/// A sink that, while held, waits in `send` until let go: the worker then
/// builds nothing the layer put off.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<(bool, bool)>, Condvar)>);

impl Gate {
    fn hold(&self, on: bool) {
        let (m, cv) = &*self.0;
        let mut g = m.lock().unwrap();
        *g = (on, false);
        cv.notify_all();
    }
    /// Until the worker is in `send`.
    fn wait_entered(&self) {
        let (m, cv) = &*self.0;
        let mut g = m.lock().unwrap();
        while !g.1 {
            g = cv.wait(g).unwrap();
        }
    }
}

impl Sink for Gate {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        let (m, cv) = &*self.0;
        let mut g = m.lock().unwrap();
        g.1 = true;
        cv.notify_all();
        while g.0 {
            g = cv.wait(g).unwrap();
        }
        black_box(events.len());
        Ok(())
    }
}

fn emitter(context: bool) -> Emitter {
    Emitter::builder(SOURCE)
        .sink(Discard)
        .context_from_tracing(context)
        .queue_capacity(2_000_000)
        .queue_bytes(2 << 30)
        .flush_timeout(Duration::from_secs(300))
        .build()
        .unwrap()
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
    timed_spans(dispatch, n).0
}

/// Wall-clock and on-CPU ns per span of `n` spans on this thread (on-CPU:
/// what the thread ran, not the time other threads and processes had the
/// core).
fn timed_spans(dispatch: &Dispatch, n: u64) -> (f64, f64) {
    tracing::dispatcher::with_default(dispatch, || {
        let cpu = thread_cpu_ns();
        let t = Instant::now();
        for i in 0..n {
            one_span(black_box(i));
        }
        let wall = t.elapsed().as_nanos() as f64 / n as f64;
        let cpu = match (cpu, thread_cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / n as f64,
            _ => f64::NAN,
        };
        (wall, cpu)
    })
}

/// This thread's CPU time so far, in ns (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_ns() -> Option<u64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let ns = i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
    u64::try_from(ns).ok()
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let (runs, per_run) = if bench_mode { (31, 10_000) } else { (3, 200) };

    // --- 1. Per span -------------------------------------------------------
    let plain = Dispatch::new(tracing_subscriber::registry());
    // (a) The worker builds the events meanwhile.
    let em = emitter(false);
    let layered = Dispatch::new(tracing_subscriber::registry().with(OssaLayer::new(em.clone())));
    // (b) The worker held in a sink call: nothing builds them until the
    // flush after each run (one event takes the worker into the sink).
    let gate = Gate::default();
    let held = Emitter::builder(SOURCE)
        .sink(gate.clone())
        .batch_size(1)
        .queue_capacity(2_000_000)
        .queue_bytes(2 << 30)
        .flush_timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let counted = Dispatch::new(tracing_subscriber::registry().with(OssaLayer::new(held.clone())));
    let hold = |on: bool| {
        gate.hold(on);
        if on {
            held.emit(ossa_events::EventBuilder::new().ty("dev.example.hold"))
                .unwrap();
            gate.wait_entered();
        }
    };
    let alone = || {
        hold(true);
        let t = timed_spans(&counted, per_run);
        hold(false);
        held.flush().unwrap(); // the queues keep their grown capacity
        t
    };
    let with = || {
        let t = timed_spans(&layered, per_run);
        em.flush().unwrap();
        t
    };
    timed_spans(&plain, per_run);
    with();
    alone();
    let (mut base, mut conc, mut solo) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        base.push(timed_spans(&plain, per_run));
        conc.push(with());
        solo.push(alone());
    }
    let medians = |v: &mut Vec<(f64, f64)>| {
        let mut wall: Vec<f64> = v.iter().map(|s| s.0).collect();
        let mut cpu: Vec<f64> = v.iter().map(|s| s.1).collect();
        (median(&mut wall), median(&mut cpu))
    };
    let (base_ns, base_cpu) = medians(&mut base);
    let (with_ns, with_cpu) = medians(&mut conc);
    let (alone_ns, alone_cpu) = medians(&mut solo);
    let m = em.metrics();
    assert_eq!((m.dropped, m.rejected), (0, 0));
    assert_eq!(m.emitted, 2 * per_run * (runs as u64 + 1));

    // Allocations on this thread, the worker held.
    hold(true);
    let region = Region::new(GLOBAL);
    spans(&counted, per_run);
    let s = region.change();
    let allocs_with = (s.allocations + s.reallocations) as f64 / per_run as f64;
    let region = Region::new(GLOBAL);
    spans(&plain, per_run);
    let s = region.change();
    let allocs_base = (s.allocations + s.reallocations) as f64 / per_run as f64;
    hold(false);
    let m = held.shutdown().unwrap();
    assert_eq!(m.delivered, (runs as u64 + 2) * (2 * per_run + 1));

    // --- 2. Per event: context_from_tracing ------------------------------
    let call = tool_called();
    let emit_in_span = |context: bool| {
        // Off: the same ids configured on the builder, so both events carry
        // the same extensions and only the lookup differs.
        let em = if context {
            emitter(true)
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
        // The emitter flushed after each sample, outside the timing (else
        // the events put off pile up while the worker builds them).
        let timed = |d: &Dispatch, iters: u64| {
            tracing::dispatcher::with_default(d, || {
                let t = Instant::now();
                for i in 0..iters {
                    one_span(black_box(i));
                }
                t.elapsed()
            })
        };
        g.bench_function("registry_only", |b| {
            b.iter_custom(|iters| timed(&plain, iters))
        });
        g.bench_function("with_ossa_layer", |b| {
            b.iter_custom(|iters| {
                let t = timed(&layered, iters);
                em.flush().unwrap();
                t
            })
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
        "  span (create, enter, record, exit, close), 2 events per span: registry alone {base_ns:.0} ns (on-CPU {base_cpu:.0} ns)"
    );
    println!(
        "  with OssaLayer, the worker building the events meanwhile: {with_ns:.0} ns: +{:.0} ns per span (target <= 1000); on-CPU {with_cpu:.0} ns: +{:.0} ns",
        with_ns - base_ns,
        with_cpu - base_cpu
    );
    println!(
        "  with OssaLayer, the worker held (this thread's part alone): {alone_ns:.0} ns: +{:.0} ns per span; on-CPU {alone_cpu:.0} ns: +{:.0} ns",
        alone_ns - base_ns,
        alone_cpu - base_cpu
    );
    println!(
        "  allocations per span on the caller thread: {allocs_base:.2} without, {allocs_with:.2} with the layer"
    );
    println!(
        "  emit_ossa in a span: ids configured {emit_off:.0} ns, context_from_tracing {emit_on:.0} ns (+{:.0} ns); current_span_ids() alone {lookup_ns:.1} ns",
        emit_on - emit_off
    );
}
