//! Issue 16, end to end through the CLI: events/s of what an operator pipes,
//! on 200 000 events of 426 bytes in a JSON Lines file:
//!
//! - `ossa-events validate events.jsonl | (count)`
//! - `ossa-events emit < events.jsonl | (count)` (the stdout sink)
//! - `ossa-events emit --sink http --mode batched --in-flight N < events.jsonl`
//!   into `ossa-events listen --http 127.0.0.1:0 | (count)`, for N = 1 and 4,
//!   and N = 4 with `--batch-size 500` (a baseline without `--in-flight`
//!   runs these with 1 in flight)
//!
//! ```sh
//! cargo bench -p ossa-events-tests --bench cli_pipelines
//! # against an older binary, in the same run (interleaved):
//! OSSA_CLI_BASELINE=/path/to/old/ossa-events cargo bench -p ossa-events-tests --bench cli_pipelines
//! ```
//!
//! The binary is this tree's release build (`cargo build --release -p
//! ossa-events`, run by the bench, or `OSSA_CLI_BIN`). Every output is read
//! through a pipe by this process and its lines counted, and a run counts
//! only when every event came out (and `emit` exited 0): the figures include
//! writing and reading the lines, as `| cat` would. 5 rounds, the
//! pipelines (and binaries) interleaved in each, median wall time per
//! pipeline; events/s = events / median. Targets on 2 cores: `validate` and
//! `emit` to stdout ≥ 1 000 000 events/s, `emit` → `listen` ≥ 300 000
//! events/s with several requests in flight. About 35 s (70 s with a baseline).
//!
//! Without `--bench` (as `cargo test --benches` runs it) every pipeline runs
//! once on 2 000 events, as a check that each delivers every event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const EVENTS: usize = 200_000;
const ROUNDS: usize = 5;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// This tree's release `ossa-events` binary, built here unless `OSSA_CLI_BIN` names one.
fn current_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("OSSA_CLI_BIN") {
        return p.into();
    }
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(workspace())
        .args([
            "build",
            "--release",
            "-p",
            "ossa-events",
            "--bin",
            "ossa-events",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "building the release ossa-events failed");
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from)
        .join("release")
        .join("ossa-events")
}

/// Event `i`: a `dev.ossa.tool.called` of 426 bytes, its own id and time.
fn event_line(i: usize) -> String {
    // A UUID v4 made from `i` (distinct ids, no randomness).
    let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
    let id = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        (i as u64) & 0xffff_ffff_ffff
    );
    format!(
        r#"{{"specversion":"1.0","id":"{id}","type":"dev.ossa.tool.called","source":"/agents/researcher","datacontenttype":"application/json","time":"2026-01-27T10:00:{:02}.{:06}Z","data":{{"tool":"web_search","call_id":"call-{i:06}","arguments":{{"query":"rust events"}}}},"ossaagentid":"researcher","ossainteractionid":"conv-42","ossatraceid":"4bf92f3577b34da6a3ce929d0e0e4736","ossaspanid":"00f067aa0ba902b7"}}"#,
        i % 60,
        i % 1_000_000
    )
}

/// The input file of `n` events, written once into the target directory.
fn input(n: usize) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from)
        .join("bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("cli-pipelines-{n}.jsonl"));
    if !path.exists() {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..n {
            writeln!(out, "{}", event_line(i)).unwrap();
        }
        out.flush().unwrap();
    }
    path
}

/// Counts the lines `out` gives until its end, on a thread of its own.
fn count_lines(out: impl Read + Send + 'static) -> (Arc<AtomicU64>, JoinHandle<()>) {
    let lines = Arc::new(AtomicU64::new(0));
    let count = lines.clone();
    let mut out = BufReader::with_capacity(1 << 20, out);
    let t = std::thread::spawn(move || {
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
    (lines, t)
}

/// Runs `cmd` with `stdin`, its stdout counted; the wall time until it
/// exited and its output ended, after checking it printed `n` lines and exited 0.
fn timed_run(mut cmd: Command, stdin: Option<&Path>, n: usize) -> Duration {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
        None => Stdio::null(),
    });
    let t = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let (lines, counter) = count_lines(child.stdout.take().unwrap());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    counter.join().unwrap();
    let took = t.elapsed();
    assert!(status.success(), "{cmd:?}: {status}: {err}");
    assert_eq!(lines.load(Ordering::Relaxed), n as u64, "{cmd:?}: {err}");
    took
}

/// A running `listen`, its stdout counted.
struct Listen {
    child: Child,
    url: String,
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
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    let (lines, _) = count_lines(child.stdout.take().unwrap());
    Listen {
        child,
        url: format!("{addr}/events"),
        lines,
    }
}

/// `emit --sink http` from `file` into `l` (started with the same binary):
/// the wall time until emit exited with all `n` delivered and printed.
fn emit_to_listen(
    bin: &Path,
    l: &Listen,
    file: &Path,
    n: usize,
    in_flight: usize,
    batch: usize,
) -> Duration {
    let before = l.lines.load(Ordering::Relaxed);
    let mut cmd = Command::new(bin);
    cmd.args([
        "emit", "--sink", "http", "--mode", "batched", "--url", &l.url,
    ]);
    if in_flight > 1 && has_in_flight(bin) {
        cmd.args(["--in-flight", &in_flight.to_string()]);
    }
    if batch != 100 {
        cmd.args(["--batch-size", &batch.to_string()]);
    }
    let t = Instant::now();
    let out = cmd
        .stdin(std::fs::File::open(file).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?}: {}: {err}", out.status);
    // listen prints (and flushes) a request's events before it answers.
    let end = Instant::now() + Duration::from_secs(10);
    while l.lines.load(Ordering::Relaxed) < before + n as u64 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = t.elapsed();
    assert_eq!(l.lines.load(Ordering::Relaxed), before + n as u64, "{err}");
    took
}

/// Whether `bin` knows `emit --in-flight` (a baseline from before it sends
/// one request at a time).
fn has_in_flight(bin: &Path) -> bool {
    Command::new(bin)
        .args(["emit", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--in-flight"))
}

/// The pipelines measured, by name.
const PIPELINES: [&str; 5] = [
    "validate FILE",
    "emit < FILE (stdout)",
    "emit --sink http -> listen",
    "  --in-flight 4",
    "  --in-flight 4 --batch-size 500",
];

fn run_pipeline(p: usize, bin: &Path, l: &Listen, file: &Path, n: usize) -> Duration {
    match p {
        0 => {
            let mut c = Command::new(bin);
            c.arg("validate").arg(file);
            timed_run(c, None, n)
        }
        1 => {
            let mut c = Command::new(bin);
            c.arg("emit");
            timed_run(c, Some(file), n)
        }
        2 => emit_to_listen(bin, l, file, n, 1, 100),
        3 => emit_to_listen(bin, l, file, n, 4, 100),
        _ => emit_to_listen(bin, l, file, n, 4, 500),
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let (n, rounds) = if bench_mode {
        (EVENTS, ROUNDS)
    } else {
        (2_000, 1)
    };
    let current = current_binary();
    let mut bins = vec![("this tree", current)];
    if let Some(b) = std::env::var_os("OSSA_CLI_BASELINE") {
        bins.push(("baseline", PathBuf::from(b)));
    } else if bench_mode {
        println!("(set OSSA_CLI_BASELINE=/path/to/ossa-events to compare with another binary)");
    }
    let file = input(n);
    let listens: Vec<Listen> = bins.iter().map(|(_, b)| listen(b)).collect();
    // times[binary][pipeline]
    let mut times = vec![vec![Vec::new(); PIPELINES.len()]; bins.len()];
    for _ in 0..rounds {
        for p in 0..PIPELINES.len() {
            for ((_, bin), (l, t)) in bins.iter().zip(listens.iter().zip(&mut times)) {
                let took = run_pipeline(p, bin, l, &file, n);
                if let Some(v) = t.get_mut(p) {
                    v.push(took);
                }
            }
        }
    }
    println!(
        "\ncli_pipelines: {n} events of {} bytes, {rounds} rounds, median wall time",
        event_line(0).len()
    );
    print!("{:<42}", "pipeline");
    for (name, _) in &bins {
        print!(" {:>24}", name);
    }
    println!();
    for (p, name) in PIPELINES.iter().enumerate() {
        print!("{name:<42}");
        for t in &mut times {
            let m = median(&mut t[p]);
            let rate = n as f64 / m.as_secs_f64();
            print!(" {:>11.3} s {:>8.0} k/s", m.as_secs_f64(), rate / 1e3);
        }
        println!();
    }
}
