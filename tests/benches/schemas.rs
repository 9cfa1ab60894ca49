//! Issue 18: what checking payloads against their JSON Schema costs.
//!
//! ```sh
//! cargo bench -p ossa-events-tests --bench schemas
//! ```
//!
//! 1. **`SchemaRegistry::check` alone**, on the 551-byte `dev.ossa.tool.called`
//!    event of `../shared/bench/sdk-shaped-event.json` (parsed once; its data
//!    is JSON text): median of 31 runs × 20 000 checks, and allocations per
//!    check (`stats_alloc`).
//! 2. **`emit()` with the schema check vs without**, on the caller thread: two
//!    emitters with a discarding sink and a large queue, `emit(event.to_builder())`
//!    of that event, the runs of both interleaved (31 × 20 000 emits, median
//!    per emit); the difference is what `EmitterBuilder::schemas` adds. Also
//!    `emit_ossa` of the typed `ToolCalled` of `core_vs_sdk` (a payload the
//!    check has to serialize first). Target: ≤ 1 µs added.
//! 3. **`listen --schemas builtin` vs `listen`**: events/s of the real release
//!    binary (built here with `cargo build --profile bench -p ossa-events`, or
//!    `OSSA_LISTEN_BIN`), batched requests of 100 copies of that event from 8
//!    keep-alive clients, each binary's output drained by this process; own
//!    loop of 5 runs × 8 × 250 requests per binary, interleaved, median.
//!
//! Criterion groups `schema_check`, `emit_schemas` and `listen_schemas`
//! follow; the summary table is printed last. Without `--bench` (as `cargo
//! test --benches` runs it) everything runs once with small counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ossa_events::schema::{Checked, SchemaRegistry};
use ossa_events::sink::{Encoded, Sink};
use ossa_events::{Emitter, Event, Scratch, SendError, parse::json::parse_event};
use ossa_events_tests::median;
use ossa_events_tests::typical::tool_called;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The 551-byte event of the issue.
fn event_text() -> String {
    let p = workspace().join("../shared/bench/sdk-shaped-event.json");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

struct Discard;

impl Sink for Discard {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        black_box(events.len());
        Ok(())
    }
}

fn emitter(schemas: bool) -> Emitter {
    let b = Emitter::builder("/bench")
        .sink(Discard)
        .queue_capacity(2_000_000)
        .queue_bytes(2 << 30)
        .flush_timeout(Duration::from_secs(300));
    let b = if schemas {
        b.schemas(SchemaRegistry::builtin())
    } else {
        b
    };
    b.build().unwrap()
}

/// ns per call of `f`, median of `runs` runs of `per_run` calls.
fn per_call(runs: usize, per_run: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_run {
                f();
            }
            t.elapsed().as_nanos() as f64 / per_run as f64
        })
        .collect();
    median(&mut v)
}

/// Medians of `runs` interleaved runs of `per_run` emits through each
/// emitter (flushed after each run): `(without, with)` in ns per emit.
fn emit_pair(ev: &Event<'_>, runs: usize, per_run: usize) -> (f64, f64) {
    let (plain, checked) = (emitter(false), emitter(true));
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..runs {
        for (em, out) in [(&plain, &mut a), (&checked, &mut b)] {
            let t = Instant::now();
            for _ in 0..per_run {
                em.emit(black_box(ev).to_builder()).unwrap();
            }
            out.push(t.elapsed().as_nanos() as f64 / per_run as f64);
            em.flush().unwrap();
        }
    }
    for em in [&plain, &checked] {
        let m = em.metrics();
        assert_eq!((m.rejected, m.dropped), (0, 0));
    }
    (median(&mut a), median(&mut b))
}

fn emit_ossa_pair(runs: usize, per_run: usize) -> (f64, f64) {
    let call = tool_called();
    let (plain, checked) = (emitter(false), emitter(true));
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..runs {
        for (em, out) in [(&plain, &mut a), (&checked, &mut b)] {
            let t = Instant::now();
            for _ in 0..per_run {
                em.emit_ossa(black_box(&call)).unwrap();
            }
            out.push(t.elapsed().as_nanos() as f64 / per_run as f64);
            em.flush().unwrap();
        }
    }
    assert_eq!(checked.metrics().rejected, 0);
    (median(&mut a), median(&mut b))
}

// ---------------------------------------------------------------------------
// listen --schemas
// ---------------------------------------------------------------------------

const CLIENTS: usize = 8;
const EVENTS_PER_REQUEST: usize = 100;

/// The release `ossa-events` binary of this tree (bench profile, so it
/// shares the compiled dependencies of this bench).
fn listen_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("OSSA_LISTEN_BIN") {
        return p.into();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let ok = Command::new(cargo)
        .current_dir(workspace())
        .args([
            "build",
            "--profile",
            "bench",
            "-p",
            "ossa-events",
            "--bin",
            "ossa-events",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "building the ossa-events binary failed");
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from)
        .join("release/ossa-events")
}

/// A running `listen`, its stdout drained and its lines counted.
struct Listen {
    child: Child,
    addr: SocketAddr,
    lines: Arc<AtomicU64>,
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listen(bin: &Path, extra: &[&str]) -> Listen {
    let mut child = Command::new(bin)
        .args(["listen", "--http", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    err.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    let lines = Arc::new(AtomicU64::new(0));
    let count = lines.clone();
    let mut out = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    std::thread::spawn(move || {
        loop {
            let buf = match out.fill_buf() {
                Ok([]) | Err(_) => break,
                Ok(b) => b,
            };
            let n = buf.len();
            let nl = buf.iter().filter(|&&b| b == b'\n').count();
            count.fetch_add(nl as u64, Ordering::Relaxed);
            out.consume(n);
        }
    });
    Listen { child, addr, lines }
}

fn request(ev: &str) -> Vec<u8> {
    let body = format!("[{}]", vec![ev; EVENTS_PER_REQUEST].join(","));
    let mut req = format!(
        "POST /events HTTP/1.1\r\nHost: bench\r\nContent-Type: application/cloudevents-batch+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    req
}

/// Reads one response; its status.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    loop {
        let mut hs = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Response::new(&mut hs);
        if let httparse::Status::Complete(n) = r.parse(buf).unwrap() {
            let len: usize = r
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map_or(0, |h| {
                    std::str::from_utf8(h.value).unwrap().parse().unwrap()
                });
            let code = r.code.unwrap();
            while buf.len() < n + len {
                let mut chunk = [0u8; 4096];
                let k = s.read(&mut chunk).unwrap();
                assert!(k > 0);
                buf.extend_from_slice(&chunk[..k]);
            }
            buf.drain(..n + len);
            return code;
        }
        let mut chunk = [0u8; 4096];
        let k = s.read(&mut chunk).unwrap();
        assert!(k > 0, "closed before a response");
        buf.extend_from_slice(&chunk[..k]);
    }
}

/// `CLIENTS` keep-alive clients send `per_client` requests each; the time taken.
fn run(addr: SocketAddr, req: &[u8], per_client: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..CLIENTS {
            sc.spawn(|| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let mut buf = Vec::new();
                for _ in 0..per_client {
                    s.write_all(req).unwrap();
                    assert_eq!(read_response(&mut s, &mut buf), 202);
                }
            });
        }
    });
    start.elapsed()
}

/// Waits until `listen` has printed `n` lines in all.
fn wait_printed(l: &Listen, n: u64) {
    let end = Instant::now() + Duration::from_secs(60);
    while l.lines.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < end,
            "printed {} of {n}",
            l.lines.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Median events/s of each listen, runs interleaved.
fn listen_rates(ls: &[&Listen], req: &[u8], runs: usize, per_client: usize) -> Vec<f64> {
    let mut rates = vec![Vec::new(); ls.len()];
    let mut printed: Vec<u64> = ls.iter().map(|l| l.lines.load(Ordering::Relaxed)).collect();
    for _ in 0..runs {
        for (i, l) in ls.iter().enumerate() {
            let took = run(l.addr, req, per_client);
            let events = (CLIENTS * per_client * EVENTS_PER_REQUEST) as u64;
            printed[i] += events;
            wait_printed(l, printed[i]);
            rates[i].push(events as f64 / took.as_secs_f64());
        }
    }
    rates.iter_mut().map(|r| median(r)).collect()
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let text = event_text();
    let mut scratch = vec![0u8; 4096];
    let ev = parse_event(text.as_bytes(), &mut Scratch::new(&mut scratch)).unwrap();
    assert_eq!(text.len(), 551);
    let schemas = SchemaRegistry::builtin();
    assert!(matches!(schemas.check(&ev), Ok(Checked::Valid { .. })));

    let (runs, per_run) = if bench_mode { (31, 20_000) } else { (1, 100) };
    // 1. The check alone, and its allocations.
    let check_ns = per_call(runs, per_run, || {
        black_box(schemas.check(black_box(&ev)).unwrap());
    });
    let region = Region::new(GLOBAL);
    for _ in 0..1000 {
        black_box(schemas.check(black_box(&ev)).unwrap());
    }
    let s = region.change();
    let check_allocs = (s.allocations + s.reallocations) as f64 / 1000.0;
    // For comparison: reading the whole data into a `serde_json::Value` (the
    // check builds only the members the schema can look at).
    let data = match ev.data() {
        Some(ossa_events::Data::Json(d)) => *d,
        other => panic!("{other:?}"),
    };
    let parse_ns = per_call(runs, per_run, || {
        black_box(serde_json::from_str::<serde_json::Value>(black_box(data)).unwrap());
    });
    // 2. emit() with and without.
    let (emit_plain, emit_checked) = emit_pair(&ev, runs, per_run);
    let (ossa_plain, ossa_checked) = emit_ossa_pair(runs, per_run);
    // 3. listen with and without.
    let bin = listen_binary();
    let plain = listen(&bin, &[]);
    let checked = listen(&bin, &["--schemas", "builtin"]);
    let req = request(&text);
    let (lruns, per_client) = if bench_mode { (5, 250) } else { (1, 3) };
    let rates = listen_rates(&[&plain, &checked], &req, lruns, per_client);

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args();
    {
        let mut g = c.benchmark_group("schema_check");
        g.bench_function("check_551_byte_tool_called", |b| {
            b.iter(|| black_box(schemas.check(black_box(&ev)).unwrap()))
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("emit_schemas");
        for (name, on) in [("without", false), ("with", true)] {
            let em = emitter(on);
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        em.emit(black_box(&ev).to_builder()).unwrap();
                    }
                    let took = t.elapsed();
                    em.flush().unwrap();
                    took
                })
            });
        }
        g.finish();
    }
    {
        let per_iter = 10;
        let mut g = c.benchmark_group("listen_schemas");
        g.throughput(Throughput::Elements(
            (CLIENTS * per_iter * EVENTS_PER_REQUEST) as u64,
        ));
        for (name, l) in [("without", &plain), ("with_builtin", &checked)] {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run(l.addr, &req, per_iter)).sum())
            });
        }
        g.finish();
    }
    c.final_summary();

    println!(
        "\npayload schemas, the 551-byte dev.ossa.tool.called event ({runs} runs x {per_run})"
    );
    println!(
        "  SchemaRegistry::check alone          {check_ns:>9.0} ns   {check_allocs:.1} allocations"
    );
    println!("  (whole data -> serde_json::Value     {parse_ns:>9.0} ns, not done by check)");
    println!(
        "  emit(): without / with schemas       {emit_plain:>9.0} / {emit_checked:.0} ns   added {:+.0} ns (target <= 1000)",
        emit_checked - emit_plain
    );
    println!(
        "  emit_ossa(ToolCalled): without / with {ossa_plain:>8.0} / {ossa_checked:.0} ns   added {:+.0} ns",
        ossa_checked - ossa_plain
    );
    println!(
        "  listen events/s ({CLIENTS} clients, {EVENTS_PER_REQUEST}/request, {lruns} runs): without {:.0}, --schemas builtin {:.0}, ratio {:.2}",
        rates[0],
        rates[1],
        rates[1] / rates[0]
    );
}
