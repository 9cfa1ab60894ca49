//! Issue 12: events/s that `ossa-events listen` accepts in batched mode
//! (100 events per request, 8 concurrent keep-alive clients), and the p50 /
//! p99 request latency, for this tree's receiver (hyper) and the one before
//! it (one thread per connection, commit `f67fc1c`), in one run.
//!
//! ```sh
//! cargo bench -p ossa-events-tests --bench listen_throughput
//! ```
//!
//! Both are the real `listen` binaries, built `--release`: this tree's (built
//! here with `cargo build --release -p ossa-events`, or `OSSA_LISTEN_BIN`)
//! and the baseline (`OSSA_LISTEN_BASELINE`, else built once from
//! `git archive f67fc1c` into `~/.cache/ossa-events-tools/listen-baseline-f67fc1c`).
//! Each prints every event to a pipe that this process drains and counts, so
//! the work measured includes writing the JSON lines, as in production.
//!
//! The request body is the 551-byte `sdk-shaped-event.json` of
//! `../shared/bench`, 100 times in a batch (55 KB). Own loop first: for each
//! binary, 5 runs of 8 clients × 250 requests (200 000 events), median
//! events/s and per-request p50/p99 over all runs; then criterion (group
//! `listen_batched_100x8`), one iteration = 8 clients × 20 requests.
//!
//! Without `--bench` (as `cargo test --benches` runs it) it only checks that
//! this tree's binary answers and prints every event, with small counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

const CLIENTS: usize = 8;
const EVENTS_PER_REQUEST: usize = 100;
const BASELINE_COMMIT: &str = "f67fc1c";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cargo build --release` of the `ossa-events` binary in workspace `dir`
/// (into `target`, when given); whether it worked.
fn build_release(dir: &Path, target: Option<&Path>) -> bool {
    let mut cmd = cargo();
    cmd.current_dir(dir).args([
        "build",
        "--release",
        "-p",
        "ossa-events",
        "--bin",
        "ossa-events",
    ]);
    if let Some(t) = target {
        cmd.env("CARGO_TARGET_DIR", t);
    }
    cmd.status().is_ok_and(|s| s.success())
}

/// This tree's release `ossa-events` binary.
fn current_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("OSSA_LISTEN_BIN") {
        return p.into();
    }
    assert!(
        build_release(&workspace(), None),
        "building the release ossa-events binary failed"
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    target.join("release").join("ossa-events")
}

/// The baseline's release binary, built once from git into the tools cache.
fn baseline_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OSSA_LISTEN_BASELINE") {
        return Some(p.into());
    }
    let home = std::env::var_os("HOME")?;
    let dir = Path::new(&home)
        .join(".cache/ossa-events-tools")
        .join(format!("listen-baseline-{BASELINE_COMMIT}"));
    let bin = dir.join("target/release/ossa-events");
    if bin.exists() {
        return Some(bin);
    }
    let src = dir.join("src");
    std::fs::create_dir_all(&src).ok()?;
    eprintln!(
        "building the baseline listen ({BASELINE_COMMIT}) into {}",
        dir.display()
    );
    let archive = Command::new("git")
        .current_dir(workspace())
        .args(["archive", BASELINE_COMMIT])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let untar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&src)
        .stdin(archive.stdout?)
        .status()
        .ok()?;
    if !untar.success() {
        return None;
    }
    build_release(&src, Some(&dir.join("target"))).then_some(bin)
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

fn listen(bin: &Path) -> Listen {
    let mut child = Command::new(bin)
        .args(["listen", "--http", "127.0.0.1:0"])
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

fn request() -> Vec<u8> {
    let ev =
        std::fs::read_to_string(workspace().join("../shared/bench/sdk-shaped-event.json")).unwrap();
    let ev = ev.trim();
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

/// `CLIENTS` keep-alive clients send `per_client` requests each; the time
/// taken and each request's latency.
fn run(addr: SocketAddr, req: &[u8], per_client: usize) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let lat: Vec<Duration> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..CLIENTS)
            .map(|_| {
                sc.spawn(|| {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_nodelay(true).unwrap();
                    let mut buf = Vec::new();
                    (0..per_client)
                        .map(|_| {
                            let t = Instant::now();
                            s.write_all(req).unwrap();
                            assert_eq!(read_response(&mut s, &mut buf), 202);
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    (start.elapsed(), lat)
}

/// Waits until `listen` has printed `n` lines in all.
fn wait_printed(l: &Listen, n: u64) {
    let end = Instant::now() + Duration::from_secs(30);
    while l.lines.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < end,
            "printed {} of {n}",
            l.lines.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

struct Summary {
    name: String,
    events_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn own_loop(name: &str, l: &Listen, req: &[u8], runs: usize, per_client: usize) -> Summary {
    let mut rates = Vec::new();
    let mut lat = Vec::new();
    let mut printed = l.lines.load(Ordering::Relaxed);
    for _ in 0..runs {
        let (took, mut l1) = run(l.addr, req, per_client);
        let events = (CLIENTS * per_client * EVENTS_PER_REQUEST) as u64;
        printed += events;
        // 202 is sent after the events were written and flushed.
        wait_printed(l, printed);
        rates.push(events as f64 / took.as_secs_f64());
        lat.append(&mut l1);
    }
    rates.sort_by(f64::total_cmp);
    lat.sort();
    Summary {
        name: name.to_string(),
        events_per_sec: rates[rates.len() / 2],
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
    }
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let req = request();
    let current = current_binary();
    let mut bins = vec![("hyper (this tree)".to_string(), current)];
    if bench_mode {
        match baseline_binary() {
            Some(b) => bins.push((format!("threads ({BASELINE_COMMIT})"), b)),
            None => eprintln!("no baseline binary: set OSSA_LISTEN_BASELINE"),
        }
    }
    let (runs, per_client) = if bench_mode { (5, 250) } else { (1, 5) };
    let listens: Vec<(String, Listen)> = bins.iter().map(|(n, b)| (n.clone(), listen(b))).collect();
    let summaries: Vec<Summary> = listens
        .iter()
        .map(|(n, l)| own_loop(n, l, &req, runs, per_client))
        .collect();

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20)
        .configure_from_args();
    {
        let per_iter = 20;
        let mut g = c.benchmark_group("listen_batched_100x8");
        g.throughput(Throughput::Elements(
            (CLIENTS * per_iter * EVENTS_PER_REQUEST) as u64,
        ));
        for (name, l) in &listens {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += run(l.addr, &req, per_iter).0;
                    }
                    total
                })
            });
        }
        g.finish();
    }
    c.final_summary();

    println!(
        "\nlisten, batched: {EVENTS_PER_REQUEST} events/request, {CLIENTS} keep-alive clients, {runs} runs x {} requests",
        CLIENTS * per_client
    );
    println!(
        "  {:<22} {:>12} {:>10} {:>10}",
        "receiver", "events/s", "p50", "p99"
    );
    for s in &summaries {
        println!(
            "  {:<22} {:>12.0} {:>10.2?} {:>10.2?}",
            s.name, s.events_per_sec, s.p50, s.p99
        );
    }
    if let [new, old] = &summaries[..] {
        println!(
            "  this tree / baseline: {:.2} x events/s",
            new.events_per_sec / old.events_per_sec
        );
    }
}
