//! Issue 14: what the disk spool costs.
//!
//! ```sh
//! cargo bench -p ossa-events-tests --bench spool
//! ```
//!
//! 1. **`emit()` on the caller thread with the spool on** (sync every
//!    100 ms, the default), against the same emitter without a spool in the
//!    same run: median of runs, per-call p50/p99, allocations per event
//!    (caller thread; all threads amortized). Target ≤ 2 µs, ≤ 1 allocation.
//!    Beside them, the floor of any spool that makes an event survive
//!    SIGKILL before `emit` returns without shared memory: one `write(2)` of
//!    a record of the same size appended to a file in the same directory
//!    (median of the same runs), and that plus the emit without a spool.
//!    The same with the spool written through a memory map
//!    (`SpoolConfig::mapped`), which has no system call per event.
//! 2. **Sustained events/s to a loopback receiver** (our `Receiver`,
//!    `HttpSink` batched 100) with and without the spool. Target ≥ 0.8×.
//! 3. **Replay after a restart**: 100 000 events left in a spool by an
//!    emitter whose collector was down; a new emitter (discarding sink) reads
//!    them back and delivers them: events/s from `build()` to the end of its
//!    `flush()`.
//!
//! Without `--bench` every part runs with small counts, as a smoke test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ossa_events::receiver::{Receiver, ReceiverConfig, ReceiverHandle};
use ossa_events::sink::{Encoded, HttpMode, HttpSink, Sink};
use ossa_events::spool::SpoolConfig;
use ossa_events::{Emitter, EmitterBuilder, Error, Overflow, SendError};
use ossa_events_tests::median;
use ossa_events_tests::typical::tool_called;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[path = "shared/emit_cost.rs"]
mod emit_cost;
use emit_cost::{Discard, builder, measure_emit, measure_emit_with};

/// A fresh spool directory under the target dir.
fn fresh_dir() -> PathBuf {
    static N: Mutex<u32> = Mutex::new(0);
    let mut n = N.lock().unwrap();
    *n += 1;
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "bench_spool_{}_{}",
        std::process::id(),
        *n
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn with_spool(b: EmitterBuilder) -> EmitterBuilder {
    b.spool(SpoolConfig::new(fresh_dir()))
}

/// The spool writing its segments through a memory map.
fn with_mapped_spool(b: EmitterBuilder) -> EmitterBuilder {
    b.spool(SpoolConfig::new(fresh_dir()).mapped(true))
}

fn receiver() -> (ReceiverHandle, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let h = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())
        .unwrap()
        .spawn(move |ev| {
            black_box(ev.id());
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    (h, count)
}

fn http_emitter(url: &str, spool: Option<bool>) -> Emitter {
    let sink = HttpSink::builder(url)
        .mode(HttpMode::Batched)
        .max_batch(100)
        .build()
        .unwrap();
    let b = builder()
        .sink(sink)
        .batch_size(100)
        .queue_capacity(100_000)
        .queue_bytes(256 << 20)
        .overflow(Overflow::Block(Duration::from_secs(60)))
        .flush_timeout(Duration::from_secs(120));
    let b = match spool {
        None => b,
        Some(false) => with_spool(b),
        Some(true) => with_mapped_spool(b),
    };
    b.build().unwrap()
}

/// Events/s of `n` emits + flush on each emitter, median of `runs`; the
/// emitters take turns in each run, so a drift of the machine's speed
/// falls on all of them alike.
fn rates<const E: usize>(ems: [&Emitter; E], count: &AtomicU64, runs: usize, n: usize) -> [f64; E] {
    let call = tool_called();
    let mut rates = [(); E].map(|()| Vec::new());
    for _ in 0..runs {
        for (em, r) in ems.iter().zip(rates.iter_mut()) {
            let before = count.load(Ordering::Relaxed);
            let t = Instant::now();
            for _ in 0..n {
                em.emit_ossa(&call).unwrap();
            }
            em.flush().unwrap();
            r.push(n as f64 / t.elapsed().as_secs_f64());
            assert_eq!(count.load(Ordering::Relaxed) - before, n as u64);
        }
    }
    rates.map(|mut r| median(&mut r))
}

/// A collector that is down.
struct Down;

impl Sink for Down {
    fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
        Err(SendError::retryable(Error::Transport("down".into()), None))
    }
}

/// Leaves `n` events in a spool, then times a new emitter replaying them.
fn replay(n: usize) -> (f64, u64) {
    let dir = fresh_dir();
    let call = tool_called();
    let em = builder()
        .sink(Down)
        .spool(SpoolConfig::new(&dir))
        .queue_capacity(1_000)
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    for _ in 0..n {
        em.emit_ossa(&call).unwrap();
    }
    let _ = em.shutdown();
    assert_eq!(em.metrics().spooled, n as u64);
    drop(em);
    let t = Instant::now();
    let em = builder()
        .sink(Discard)
        .spool(SpoolConfig::new(&dir))
        .flush_timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    em.flush().unwrap();
    let took = t.elapsed();
    let m = em.metrics();
    assert_eq!((m.replayed, m.delivered), (n as u64, n as u64));
    let bytes = m.spool_bytes;
    (n as f64 / took.as_secs_f64(), bytes)
}

/// Median ns of one `write(2)` appending `len` bytes to a file in a spool
/// directory: `runs` runs of `per_run` writes.
fn write_floor(len: usize, runs: usize, per_run: usize) -> f64 {
    use std::io::Write as _;
    let dir = fresh_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("floor");
    let record = vec![b'x'; len];
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let t = Instant::now();
        for _ in 0..per_run {
            f.write_all(&record).unwrap();
        }
        samples.push(t.elapsed().as_nanos() as f64 / per_run as f64);
        drop(f);
        std::fs::remove_file(&path).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
    median(&mut samples)
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let (runs, per_run, timed) = if bench_mode {
        (31, 10_000, 200_000)
    } else {
        (3, 1_000, 2_000)
    };
    let plain = measure_emit(GLOBAL, &|| Discard, runs, per_run, timed);
    let spooled = measure_emit_with(GLOBAL, &|| Discard, &with_spool, runs, per_run, timed);
    let mapped = measure_emit_with(
        GLOBAL,
        &|| Discard,
        &with_mapped_spool,
        runs,
        per_run,
        timed,
    );
    // A spool record: the encoded event and its 20-byte frame (length,
    // checksum, sequence number).
    let record_len = ossa_events::sink::Encoded::new(
        &ossa_events_tests::typical::fixed_event(&tool_called()),
        ossa_events::sink::Encoding::Json,
    )
    .unwrap()
    .size()
        + 20;
    let floor = write_floor(record_len, runs, per_run);

    let (rx, count) = receiver();
    let url = format!("http://{}/", rx.local_addr());
    let (tp_runs, n) = if bench_mode {
        (15, 100_000)
    } else {
        (1, 1_000)
    };
    let em_plain = http_emitter(&url, None);
    let em_spool = http_emitter(&url, Some(false));
    let em_mapped = http_emitter(&url, Some(true));
    let [r_plain, r_spool, r_mapped] =
        rates([&em_plain, &em_spool, &em_mapped], &count, tp_runs, n);

    let replay_n = if bench_mode { 100_000 } else { 2_000 };
    let (replay_rate, _) = replay(replay_n);

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    {
        let call = tool_called();
        let big = |b: EmitterBuilder| {
            b.sink(Discard)
                .queue_capacity(2_000_000)
                .queue_bytes(2 << 30)
                .build()
                .unwrap()
        };
        let no_spool = big(builder());
        let spool = big(with_spool(builder()));
        let mapped = big(with_mapped_spool(builder()));
        let mut g = c.benchmark_group("emit_spool");
        g.throughput(Throughput::Elements(1));
        g.bench_function("emit_ossa (no spool)", |b| {
            b.iter(|| no_spool.emit_ossa(black_box(&call)))
        });
        g.bench_function("emit_ossa (spool, sync every 100 ms)", |b| {
            b.iter(|| spool.emit_ossa(black_box(&call)))
        });
        g.bench_function("emit_ossa (mapped spool, sync every 100 ms)", |b| {
            b.iter(|| mapped.emit_ossa(black_box(&call)))
        });
        g.finish();
        no_spool.flush().unwrap();
        spool.flush().unwrap();
        mapped.flush().unwrap();
    }
    c.final_summary();

    println!("\nemit() on the caller thread (discarding sink)");
    println!(
        "  {:<28} {:>10} {:>8} {:>8} {:>9} {:>14} {:>12}",
        "", "median", "p50", "p99", "p99.9", "allocs/caller", "allocs/all"
    );
    for (name, f) in [
        ("no spool", &plain),
        ("spool, sync every 100 ms", &spooled),
        ("mapped spool, same sync", &mapped),
    ] {
        println!(
            "  {:<28} {:>8.0}ns {:>6}ns {:>6}ns {:>7}ns {:>14.2} {:>12.2}",
            name, f.median_ns, f.p50_ns, f.p99_ns, f.p999_ns, f.allocs_caller, f.allocs_all
        );
    }
    println!(
        "  floor: one write(2) of a {record_len}-byte record {floor:.0} ns; \
         + emit() without a spool = {:.0} ns (no spool that writes before emit() returns beats it)",
        floor + plain.median_ns
    );
    println!("  (one Instant::now() costs {:.0} ns)", plain.timer_ns);
    println!(
        "  spool / no spool: {:.2}x the median; mapped spool / no spool: {:.2}x",
        spooled.median_ns / plain.median_ns,
        mapped.median_ns / plain.median_ns
    );
    println!(
        "\nevents/s to a loopback receiver, HttpSink batched 100, {n} events, median of {tp_runs}"
    );
    println!(
        "  no spool {r_plain:.0}  spool {r_spool:.0}  ratio {:.2}x  mapped spool {r_mapped:.0}  ratio {:.2}x",
        r_spool / r_plain,
        r_mapped / r_plain
    );
    println!("\nreplay after a restart: {replay_n} events at {replay_rate:.0} events/s");
}
