//! Issue 15: OTLP export, events/s to a loopback collector.
//!
//! ```sh
//! cargo bench -p ossa-events-tests --bench otlp_export
//! ```
//!
//! The workload: 100 demo runs (`demo::agent_run`, 15 events each: a
//! workflow, an agent, two turns, three tool calls, one failing, a state
//! update), ids all distinct, 1 500 events per iteration, emitted through an
//! `Emitter` and `flush`ed. A loopback collector (a std `TcpListener`,
//! keep-alive, `httparse`) reads each request whole and answers 200.
//!
//! - `otlp_http`: `OtlpSink` to the collector (spans, OTLP/HTTP JSON,
//!   512 events per request).
//! - `otlp_file`: `OtlpSink` to `io::sink()` (the span assembly and the
//!   OTLP JSON alone, no I/O).
//! - `http_batched` (baseline): the same events as CloudEvents with
//!   `HttpSink` in batched mode (500 per request) to the same collector.
//! - `sink_alone`: `OtlpSink::send` to `io::sink()` on the pre-encoded
//!   events in batches of 500, no emitter (a new sink each iteration): the
//!   sink's own cost per event.
//!
//! Criterion reports elements/s for each; the README gives the ratio.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use ossa_events::sink::{Encoded, Encoding, HttpMode, HttpSink, OtlpSink, Sink};
use ossa_events::{Emitter, Event, FastIds, Scratch, SystemClock, demo};

const RUNS: usize = 100;

/// A collector on loopback: reads whole requests (answering `Expect:
/// 100-continue`), answers 200; counts them.
fn collector() -> (String, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let r2 = requests.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let count = r2.clone();
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let mut head = Vec::new();
                let mut body = Vec::new();
                loop {
                    head.clear();
                    // The head, up to the blank line.
                    loop {
                        let n = r.read_until(b'\n', &mut head).unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        if head.ends_with(b"\r\n\r\n") {
                            break;
                        }
                    }
                    let mut hs = [httparse::EMPTY_HEADER; 32];
                    let mut req = httparse::Request::new(&mut hs);
                    req.parse(&head).unwrap();
                    let len: usize = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                        .unwrap_or(0);
                    // As servers do (hyper, nginx, Go, Node): a large body
                    // waits for it (without it, each waited the sink's 1 s).
                    let expects = req.headers.iter().any(|h| {
                        h.name.eq_ignore_ascii_case("expect")
                            && h.value.eq_ignore_ascii_case(b"100-continue")
                    });
                    if expects && w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
                        return;
                    }
                    body.resize(len, 0);
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), requests)
}

/// `RUNS` demo runs as parsed events (leaked: they live for the bench).
fn workload() -> Vec<Event<'static>> {
    let mut out = Vec::new();
    for _ in 0..RUNS {
        demo::agent_run("/ossa/demo/researcher", &SystemClock, &mut FastIds, |ev| {
            let mut v = Vec::new();
            ossa_events::format::json::write_json(ev, &mut v).map(|()| {
                let line: &'static [u8] = Vec::leak(v);
                let scratch: &'static mut [u8] = Vec::leak(vec![0u8; line.len()]);
                let ev = ossa_events::parse::json::parse_event(line, &mut Scratch::new(scratch))
                    .unwrap();
                out.push(ev);
            })
        })
        .unwrap();
    }
    out
}

fn emitter(sink: impl Sink) -> Emitter {
    Emitter::builder("/bench")
        .sink(sink)
        .batch_size(512)
        .flush_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

fn run(em: &Emitter, events: &[Event<'static>]) {
    for ev in events {
        em.emit_event(ev).unwrap();
    }
    let r = em.flush().unwrap();
    assert_eq!(r.failed, 0);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let events = workload();
    let (url, requests) = collector();
    let mut g = c.benchmark_group("otlp_export");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(20);

    let otlp = emitter(OtlpSink::builder(&url).build().unwrap());
    g.bench_function("otlp_http", |b| b.iter(|| run(&otlp, &events)));
    let file = emitter(OtlpSink::to_writer(std::io::sink()).build().unwrap());
    g.bench_function("otlp_file", |b| b.iter(|| run(&file, &events)));
    let http = emitter(
        HttpSink::builder(&url)
            .mode(HttpMode::Batched)
            .max_batch(500)
            .build()
            .unwrap(),
    );
    g.bench_function("http_batched", |b| b.iter(|| run(&http, &events)));
    let encoded: Vec<Encoded> = events
        .iter()
        .map(|e| Encoded::new(e, Encoding::Json).unwrap())
        .collect();
    g.bench_function("sink_alone", |b| {
        b.iter_batched(
            || OtlpSink::to_writer(std::io::sink()).build().unwrap(),
            |mut sink| {
                for chunk in encoded.chunks(500) {
                    sink.send(chunk).unwrap();
                }
                sink
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
    for em in [otlp, file, http] {
        assert_eq!(em.shutdown().unwrap().failed, 0);
    }
    assert!(requests.load(Ordering::Relaxed) > 0);
    c.final_summary();
}
