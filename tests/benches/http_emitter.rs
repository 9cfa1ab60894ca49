//! Issue 5: the std `Emitter` and `HttpSink`.
//!
//! ```sh
//! cargo bench -p ossa-events-tests --bench http_emitter
//! ```
//!
//! Three measurements, all printed in one summary table at the end:
//!
//! 1. **`emit()` on the caller thread.** An `Emitter` with a sink that
//!    discards (a `Sink` that returns `Ok`) and a large queue; `emit_ossa` of
//!    the typical `dev.ossa.tool.called` event of `core_vs_sdk.rs` (the four
//!    OSSA extensions from the emitter's context, ~560 bytes of JSON). Own
//!    loop: median of 31 runs × 10 000 emits with the worker draining as it
//!    would in production, per-call p50/p99 from 200 000 timed calls, and
//!    allocations per event counted by `stats_alloc` over 10 000 emits —
//!    caller thread only (worker idle: the count is exactly the caller's) and
//!    all threads amortized (worker delivering batches of 100). Targets:
//!    ≤ 1 µs median, ≤ 1 allocation per event. Criterion: `emit/emit_ossa`.
//! 2. **Events/s to a loopback receiver.** Our `Receiver` spawned in-process
//!    on 127.0.0.1:0 counts events. Ours: `Emitter` + `HttpSink` batched
//!    (100 and 500 events per request), N events emitted then `flush`ed.
//!    Baseline: one request per event, `cloudevents-sdk` (`EventBuilderV10`,
//!    `serde_json::to_vec`, structured) posted with a plain keep-alive `ureq`
//!    agent as `application/cloudevents+json`. Also ours in structured mode
//!    (one request per event) to separate batching from the rest. Target:
//!    batched ≥ 20 × the baseline. Criterion group `loopback`.
//! 3. **Memory with the collector down, 1 M emits** (run once, before
//!    criterion): `HttpSink` to a port nothing listens on, the default queue
//!    capacity, `Overflow::DropNewest`; every 100 000 emits it samples the
//!    queue (`metrics()`), the live heap (`stats_alloc`) and the process RSS
//!    and peak RSS (`VmRSS`/`VmHWM` of `/proc/self/status`). They must stay
//!    flat at the cap.
//!
//! Without `--bench` (as `cargo test --benches` runs it) every part runs with
//! small counts, as a smoke test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::hint::black_box;
use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloudevents::{EventBuilder as _, EventBuilderV10};
use criterion::{Criterion, Throughput};
use ossa_events::receiver::{Receiver, ReceiverConfig, ReceiverHandle};
use ossa_events::sink::{HttpMode, HttpSink};
use ossa_events::{Emitter, EmitterBuilder, Overflow, ossa};
use ossa_events_tests::typical::{
    self, AGENT_ID, INTERACTION_ID, SOURCE, SPAN_ID, TOOL, TRACE_ID, fixed_event, tool_called,
};
use ossa_events_tests::{dead_port, median};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

// ---------------------------------------------------------------------------
// The fixture: the typical `dev.ossa.tool.called` event of core_vs_sdk.rs
// (`ossa_events_tests::typical`).

// ---------------------------------------------------------------------------
// Helpers

/// `VmRSS` and `VmHWM` (peak) of this process, in KiB; 0 where unknown.
fn rss_kib() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return (0, 0);
    };
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Bytes allocated and not freed, as the counting allocator sees them.
fn live_heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------
// 1. emit() on the caller thread

#[path = "shared/emit_cost.rs"]
mod emit_cost;
use emit_cost::{Discard, builder, measure_emit};

// ---------------------------------------------------------------------------
// 2. Events/s to a loopback receiver

/// Our receiver on 127.0.0.1:0, counting events.
fn receiver() -> (ReceiverHandle, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new()).unwrap();
    let h = rx
        .spawn(move |ev| {
            black_box(ev.id());
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    (h, count)
}

/// Ours: an emitter with an `HttpSink` to `url`.
fn http_emitter(url: &str, mode: HttpMode, batch: usize) -> Emitter {
    let sink = HttpSink::builder(url)
        .mode(mode)
        .max_batch(batch)
        .build()
        .unwrap();
    builder()
        .sink(sink)
        .batch_size(batch)
        .queue_capacity(100_000)
        .queue_bytes(256 << 20)
        .overflow(Overflow::Block(Duration::from_secs(60)))
        .flush_timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// Emits `n` events and flushes; all must be delivered.
fn ours_send(em: &Emitter, call: &ossa::ToolCalled<'_>, n: usize) {
    let before = em.metrics().delivered;
    for _ in 0..n {
        em.emit_ossa(call).unwrap();
    }
    let r = em.flush().unwrap();
    assert_eq!(r.delivered - before, n as u64, "all delivered");
}

/// The sdk event of `core_vs_sdk.rs`, serialized structured.
fn sdk_event_json() -> Vec<u8> {
    let ev = EventBuilderV10::new()
        .id(uuid::Uuid::new_v4().to_string())
        .ty(ossa::TOOL_CALLED)
        .source(SOURCE)
        .subject(TOOL)
        .time(chrono::Utc::now())
        .extension("ossaagentid", AGENT_ID)
        .extension("ossainteractionid", INTERACTION_ID)
        .extension("ossatraceid", TRACE_ID)
        .extension("ossaspanid", SPAN_ID)
        .data("application/json", typical::data_value())
        .build()
        .unwrap();
    serde_json::to_vec(&ev).unwrap()
}

/// Baseline: one POST per event with the sdk and a plain keep-alive ureq agent.
fn sdk_send(agent: &ureq::Agent, url: &str, n: usize) {
    for _ in 0..n {
        let body = sdk_event_json();
        let mut resp = agent
            .post(url)
            .header("content-type", "application/cloudevents+json")
            .send(&body[..])
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        // Read to the end so the connection goes back to the pool.
        let mut sink = Vec::new();
        resp.body_mut().as_reader().read_to_end(&mut sink).unwrap();
    }
}

struct Rate {
    name: &'static str,
    events: usize,
    per_sec: f64,
}

/// Median events/s over `runs` runs of `f(n)`, checking the receiver counted them.
fn rate(
    name: &'static str,
    runs: usize,
    n: usize,
    count: &AtomicU64,
    mut f: impl FnMut(usize),
) -> Rate {
    f(n.min(200)); // warm-up: connection, buffers
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let before = count.load(Ordering::Relaxed);
        let t = Instant::now();
        f(n);
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(
            count.load(Ordering::Relaxed) - before,
            n as u64,
            "{name}: the receiver counted every event"
        );
        samples.push(n as f64 / secs);
    }
    Rate {
        name,
        events: n,
        per_sec: median(&mut samples),
    }
}

// ---------------------------------------------------------------------------
// 3. Memory with the collector down

struct MemSample {
    emits: usize,
    depth: u64,
    queue_bytes: u64,
    dropped: u64,
    live_heap: i64,
    rss_kib: u64,
    hwm_kib: u64,
}

fn collector_down(total: usize, every: usize) -> (Vec<MemSample>, Duration, u64) {
    let port = dead_port();
    let sink = HttpSink::builder(format!("http://127.0.0.1:{port}/"))
        .mode(HttpMode::Batched)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let em = builder()
        .sink(sink)
        .overflow(Overflow::DropNewest)
        .shutdown_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let call = tool_called();
    let mut samples = Vec::new();
    let (rss, hwm) = rss_kib();
    samples.push(MemSample {
        emits: 0,
        depth: 0,
        queue_bytes: 0,
        dropped: 0,
        live_heap: live_heap(),
        rss_kib: rss,
        hwm_kib: hwm,
    });
    let t = Instant::now();
    for i in 1..=total {
        let _ = em.emit_ossa(black_box(&call));
        if i % every == 0 {
            let m = em.metrics();
            let (rss, hwm) = rss_kib();
            samples.push(MemSample {
                emits: i,
                depth: m.queue_depth,
                queue_bytes: m.queue_bytes,
                dropped: m.dropped,
                live_heap: live_heap(),
                rss_kib: rss,
                hwm_kib: hwm,
            });
        }
    }
    let elapsed = t.elapsed();
    let m = em.metrics();
    assert_eq!(m.delivered, 0, "nothing can be delivered");
    assert_eq!(
        m.emitted + m.dropped,
        total as u64,
        "every emit queued or counted dropped"
    );
    // What is still queued is given up on when shutdown's time runs out.
    let _ = em.shutdown();
    let m = em.metrics();
    (samples, elapsed, m.failed + m.shutdown_timeout)
}

// ---------------------------------------------------------------------------

fn main() {
    // Criterion runs in test mode (each benchmark once) unless `--bench` is
    // given, as `cargo bench` does; the own loops follow suit.
    let bench_mode = std::env::args().any(|a| a == "--bench");

    // --- 3. Memory with the collector down (first: a fresh process) ----------
    let (mem_total, mem_every) = if bench_mode {
        (1_000_000, 100_000)
    } else {
        (20_000, 5_000)
    };
    let (mem, mem_time, mem_failed) = collector_down(mem_total, mem_every);
    let cap_events = EmitterBuilder::DEFAULT_QUEUE_EVENTS;
    let cap_bytes = EmitterBuilder::DEFAULT_QUEUE_BYTES;
    println!(
        "collector down: {mem_total} emits in {:.2} s, default queue cap {cap_events} events / {:.0} MiB, DropNewest",
        mem_time.as_secs_f64(),
        mib(cap_bytes as f64)
    );
    println!(
        "  {:>9} {:>7} {:>11} {:>9} {:>10} {:>9} {:>9}",
        "emits", "queued", "queue MiB", "dropped", "heap MiB", "RSS MiB", "peak MiB"
    );
    for s in &mem {
        println!(
            "  {:>9} {:>7} {:>11.2} {:>9} {:>10.2} {:>9.1} {:>9.1}",
            s.emits,
            s.depth,
            mib(s.queue_bytes as f64),
            s.dropped,
            mib(s.live_heap as f64),
            s.rss_kib as f64 / 1024.0,
            s.hwm_kib as f64 / 1024.0
        );
    }
    // Flat: from the first sample at the cap on, the queue, the live heap and
    // the RSS stay where they are.
    let at_cap: Vec<&MemSample> = mem.iter().filter(|s| s.emits >= cap_events).collect();
    let spread = |f: &dyn Fn(&MemSample) -> f64| {
        let v: Vec<f64> = at_cap.iter().map(|s| f(s)).collect();
        let max = v.iter().copied().fold(f64::MIN, f64::max);
        let min = v.iter().copied().fold(f64::MAX, f64::min);
        (min, max)
    };
    let (q_min, q_max) = spread(&|s| s.queue_bytes as f64);
    let (h_min, h_max) = spread(&|s| s.live_heap as f64);
    let (r_min, r_max) = spread(&|s| s.rss_kib as f64 * 1024.0);
    let max_depth = at_cap.iter().map(|s| s.depth).max().unwrap_or(0);
    let peak_hwm = mem.iter().map(|s| s.hwm_kib).max().unwrap_or(0);
    assert!(
        max_depth <= cap_events as u64,
        "queue depth {max_depth} over the cap"
    );
    assert!(q_max <= cap_bytes as f64, "queue bytes over the cap");

    // --- 1. emit() ------------------------------------------------------------
    let (runs, per_run, timed) = if bench_mode {
        (31, 10_000, 200_000)
    } else {
        (3, 1_000, 2_000)
    };
    let ef = measure_emit(GLOBAL, &|| Discard, runs, per_run, timed);

    // --- 2. Loopback throughput -----------------------------------------------
    let (rx, count) = receiver();
    let url = format!("http://{}/", rx.local_addr());
    let call = tool_called();
    let em100 = http_emitter(&url, HttpMode::Batched, 100);
    let em500 = http_emitter(&url, HttpMode::Batched, 500);
    let em_structured = http_emitter(&url, HttpMode::Structured, 100);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let (tp_runs, n_batched, n_single) = if bench_mode {
        (5, 50_000, 3_000)
    } else {
        (1, 1_000, 100)
    };
    let rates = [
        rate("ours batched 100", tp_runs, n_batched, &count, |n| {
            ours_send(&em100, &call, n)
        }),
        rate("ours batched 500", tp_runs, n_batched, &count, |n| {
            ours_send(&em500, &call, n)
        }),
        rate(
            "ours structured (1 req/event)",
            tp_runs,
            n_single,
            &count,
            |n| ours_send(&em_structured, &call, n),
        ),
        rate("sdk + ureq (1 req/event)", tp_runs, n_single, &count, |n| {
            sdk_send(&agent, &url, n)
        }),
    ];

    // --- Criterion ----------------------------------------------------------------
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    {
        let em = builder()
            .sink(Discard)
            .queue_capacity(2_000_000)
            .queue_bytes(2 << 30)
            .build()
            .unwrap();
        let mut g = c.benchmark_group("emit");
        g.throughput(Throughput::Elements(1));
        g.bench_function("emit_ossa (discarding sink)", |b| {
            b.iter(|| em.emit_ossa(black_box(&call)))
        });
        g.finish();
        em.flush().unwrap();
        let m = em.metrics();
        assert_eq!(
            (m.dropped, m.failed),
            (0, 0),
            "criterion's emits all queued"
        );
    }
    {
        let (n_b, n_s) = if bench_mode { (10_000, 300) } else { (200, 20) };
        let mut g = c.benchmark_group("loopback");
        g.sample_size(10);
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(4));
        g.throughput(Throughput::Elements(n_b as u64));
        g.bench_function("ours_batched_100", |b| {
            b.iter(|| ours_send(&em100, &call, n_b))
        });
        g.bench_function("ours_batched_500", |b| {
            b.iter(|| ours_send(&em500, &call, n_b))
        });
        g.throughput(Throughput::Elements(n_s as u64));
        g.bench_function("sdk_ureq_per_event", |b| {
            b.iter(|| sdk_send(&agent, &url, n_s))
        });
        g.finish();
    }
    c.final_summary();
    drop((em100, em500, em_structured));
    let stats = rx.shutdown();

    // --- Summary table ---------------------------------------------------------------
    println!();
    println!("summary (own loops; noisy under load)");
    println!(
        "emit() on the caller thread, dev.ossa.tool.called ({} bytes of JSON), discarding sink:",
        ossa_events::format::json::to_vec(&fixed_event(&tool_called()))
            .unwrap()
            .len()
    );
    let flag = |ok: bool| if ok { "" } else { "  MISSES target" };
    println!(
        "  median of {runs} runs x {per_run} emits  {:>7.0} ns/emit   (target <= 1000 ns){}",
        ef.median_ns,
        flag(ef.median_ns <= 1000.0)
    );
    println!(
        "  per call, {timed} calls               p50 {} ns, p99 {} ns, p99.9 {} ns (each incl. ~{:.0} ns of Instant::now)",
        ef.p50_ns, ef.p99_ns, ef.p999_ns, ef.timer_ns
    );
    println!(
        "  allocations per event, caller thread  {:>7.3}          (target <= 1){}",
        ef.allocs_caller,
        flag(ef.allocs_caller <= 1.0)
    );
    println!(
        "  allocations per event, all threads    {:>7.3}          (worker's batches of 100 included)",
        ef.allocs_all
    );
    let sdk_rate = rates[3].per_sec;
    println!("events/s to our receiver on loopback (median of {tp_runs} runs; emit + flush):");
    for r in &rates {
        let ratio = r.per_sec / sdk_rate;
        let target = if r.name.starts_with("ours batched") {
            format!("(target >= 20x){}", flag(ratio >= 20.0))
        } else {
            String::new()
        };
        println!(
            "  {:<32} {:>7} events {:>10.0} events/s {:>7.1}x sdk {target}",
            r.name, r.events, r.per_sec, ratio
        );
    }
    println!(
        "  receiver: {} requests, {} events, {} rejected",
        stats.requests,
        stats.events,
        stats.rejected_4xx + stats.rejected_5xx
    );
    println!(
        "memory with the collector down, {mem_total} emits (DropNewest, default cap {cap_events} events):"
    );
    println!(
        "  queue bytes after each {mem_every} emits: {:.2}..{:.2} MiB (max depth {max_depth}); \
         live heap {:.2}..{:.2} MiB; RSS {:.1}..{:.1} MiB; peak RSS {:.1} MiB; \
         {} dropped, {} given up at shutdown",
        mib(q_min),
        mib(q_max),
        mib(h_min),
        mib(h_max),
        mib(r_min),
        mib(r_max),
        peak_hwm as f64 / 1024.0,
        mem.last().map_or(0, |s| s.dropped),
        mem_failed,
    );
}
