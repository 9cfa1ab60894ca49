//! The caller-thread cost of the std `Emitter::emit`, shared by the
//! `http_emitter` and `kafka_sink` benches (each includes this file with
//! `#[path]`; its counting allocator is the bench's own `GLOBAL`).

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, Sink};
use ossa_events::{Emitter, EmitterBuilder, SendError};
use ossa_events_tests::median;
use ossa_events_tests::typical::{
    AGENT_ID, INTERACTION_ID, SOURCE, SPAN_ID, TRACE_ID, tool_called,
};
use stats_alloc::{Region, StatsAlloc};

/// An emitter builder for the fixture's source and OSSA context.
pub(crate) fn builder() -> EmitterBuilder {
    Emitter::builder(SOURCE)
        .agent_id(AGENT_ID)
        .interaction_id(INTERACTION_ID)
        .trace_id(TRACE_ID)
        .span_id(SPAN_ID)
}

/// A sink that accepts every batch and keeps nothing.
pub(crate) struct Discard;

impl Sink for Discard {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        black_box(events.len());
        Ok(())
    }
}

/// The value at fraction `p` of `sorted`.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// What [`measure_emit`] found.
pub(crate) struct EmitFigures {
    pub(crate) median_ns: f64,
    pub(crate) p50_ns: u64,
    pub(crate) p99_ns: u64,
    pub(crate) p999_ns: u64,
    /// What one `Instant::now()` costs (the floor of each timed call).
    pub(crate) timer_ns: f64,
    pub(crate) allocs_caller: f64,
    pub(crate) allocs_all: f64,
}

/// `emit_ossa` of the typical tool call through an emitter on the sink
/// `make` gives: the median of `runs` × `per_run` emits with the worker
/// sending as in production, p50/p99/p99.9 of `timed_calls` timed one by
/// one, and allocations per event counted by `alloc` on all threads
/// (amortized) and on the caller alone (the worker idle).
pub(crate) fn measure_emit<S: Sink>(
    alloc: &'static StatsAlloc<System>,
    make: &dyn Fn() -> S,
    runs: usize,
    per_run: usize,
    timed_calls: usize,
) -> EmitFigures {
    measure_emit_with(alloc, make, &|b| b, runs, per_run, timed_calls)
}

/// [`measure_emit`] with `configure` applied to both emitters' builders
/// (e.g. a spool).
#[allow(dead_code)] // not every bench that includes this file uses it
pub(crate) fn measure_emit_with<S: Sink>(
    alloc: &'static StatsAlloc<System>,
    make: &dyn Fn() -> S,
    configure: &dyn Fn(EmitterBuilder) -> EmitterBuilder,
    runs: usize,
    per_run: usize,
    timed_calls: usize,
) -> EmitFigures {
    let call = tool_called();

    // Worker sending as in production, emitter defaults but a queue that
    // holds a run (no drops, no blocking).
    let em = configure(builder())
        .sink(make())
        .queue_capacity(2_000_000)
        .queue_bytes(2 << 30)
        .flush_timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    for _ in 0..per_run {
        em.emit_ossa(&call).unwrap();
    }
    em.flush().unwrap();
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        for _ in 0..per_run {
            em.emit_ossa(black_box(&call)).unwrap();
        }
        samples.push(t.elapsed().as_nanos() as f64 / per_run as f64);
        em.flush().unwrap();
    }
    let median_ns = median(&mut samples);

    // Per-call latency (each call between two `Instant::now()`).
    let timer_ns = {
        let t = Instant::now();
        for _ in 0..10_000 {
            black_box(Instant::now());
        }
        t.elapsed().as_nanos() as f64 / 10_000.0
    };
    let mut lat = Vec::with_capacity(timed_calls);
    for i in 0..timed_calls {
        let t = Instant::now();
        em.emit_ossa(black_box(&call)).unwrap();
        lat.push(t.elapsed().as_nanos() as u64);
        if i % 50_000 == 49_999 {
            em.flush().unwrap();
        }
    }
    em.flush().unwrap();
    lat.sort_unstable();

    // All threads, amortized: the worker's sends included (for Kafka: the
    // Rust side only; librdkafka allocates with C malloc, not counted).
    let region = Region::new(alloc);
    for _ in 0..per_run {
        em.emit_ossa(black_box(&call)).unwrap();
    }
    em.flush().unwrap();
    let s = region.change();
    let allocs_all = (s.allocations + s.reallocations) as f64 / per_run as f64;
    let m = em.metrics();
    assert_eq!((m.dropped, m.failed, m.rejected), (0, 0, 0));
    em.shutdown().unwrap();
    drop(em);

    // Caller thread only: the worker idle (the batch never fills and the
    // flush interval never passes during the count); the queue grown first,
    // so its own growth is not counted.
    let em = configure(builder())
        .sink(make())
        .batch_size(1_000_000)
        .flush_interval(Duration::from_secs(3600))
        .queue_capacity(2_000_000)
        .queue_bytes(2 << 30)
        .flush_timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    for _ in 0..per_run {
        em.emit_ossa(&call).unwrap();
    }
    em.flush().unwrap();
    let region = Region::new(alloc);
    for _ in 0..per_run {
        em.emit_ossa(black_box(&call)).unwrap();
    }
    let s = region.change();
    em.flush().unwrap();
    let allocs_caller = (s.allocations + s.reallocations) as f64 / per_run as f64;
    let m = em.metrics();
    assert_eq!((m.dropped, m.failed, m.rejected), (0, 0, 0));
    em.shutdown().unwrap();

    EmitFigures {
        median_ns,
        p50_ns: percentile(&lat, 0.50),
        p99_ns: percentile(&lat, 0.99),
        p999_ns: percentile(&lat, 0.999),
        timer_ns,
        allocs_caller,
        allocs_all,
    }
}
