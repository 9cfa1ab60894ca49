//! Issue 16's side-by-side measurement on the 551-byte `dev.ossa.tool.called`
//! event of `../shared/bench/sdk-shaped-event.json`, laid out as
//! cloudevents-sdk 0.9 writes it (attributes, then `data`: an 8-key object with
//! sorted keys, then the four OSSA extensions).
//!
//! Each side is given the same id string and parses the same RFC 3339 time
//! text. Rows:
//!
//! * `build_encode`: ours (builder, `#[derive(Serialize)]` payload through
//!   `data_serialize`, full validation in `build`, `json::to_slice` into a
//!   fixed buffer), the sdk (`EventBuilderV10` + `serde_json::to_vec`), and
//!   the floor: a hand-written writer of the same bytes into a fixed buffer
//!   (escape scan per string, integers by hand, nothing validated).
//! * `parse`: ours (`parse_event`, full validation), the sdk
//!   (`serde_json::from_slice::<cloudevents::Event>`), and the reference:
//!   `serde_json::from_slice` into a borrowed struct with no CloudEvents
//!   checks (`data` as a `&RawValue`, so it is still checked as JSON).
//! * `http_binary_headers`: from the parsed event, every header name and
//!   value written out as `name: value\r\n` into a reused buffer; the sdk's
//!   `http::Request::try_from(event)` then its headers written out alike.
//!
//! The own timing loop interleaves the runs of every side (15 runs of 2 000
//! calls, medians), so a load drifting on a shared machine hits all sides
//! alike, and prints the table with the issue's targets. Criterion follows
//! with short phases. See `README.md` beside this file.
//!
//! Instructions of build + encode, one side at a time (`--only`: 100 000
//! events of that side alone; `none` counts the process's fixed cost, to
//! subtract):
//!
//! ```sh
//! cargo bench -p ossa-events-tests --bench sdk_shaped --no-run
//! B=$(ls -t target/release/deps/sdk_shaped-* | grep -v '\.d$' | head -1)
//! for s in none build build_ref floor; do valgrind --tool=callgrind --callgrind-out-file=/dev/null "$B" --only $s 2>&1 | grep refs; done
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

use cloudevents::{EventBuilder as _, EventBuilderV10};
use criterion::{BatchSize, Criterion};
use ossa_events::format::json;
use ossa_events::parse::json::parse_event;
use ossa_events::{Event, Scratch, Timestamp};
use ossa_events_tests::{interleaved, run_ns, run_ns_batched, write_http_header_lines};

#[path = "shared/allocs.rs"]
mod allocs;
use allocs::allocs_per_op;
use serde::{Deserialize, Serialize};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The event as cloudevents-sdk writes it (the shared bench input).
const INPUT: &[u8] = include_bytes!("../../../shared/bench/sdk-shaped-event.json");

const ID: &str = "a6325a83-7e6a-4c28-995a-1a8115ecdb42";
const TY: &str = "dev.ossa.tool.called";
const SOURCE: &str = "ossa/my-agent";
const SUBJECT: &str = "search";
const TIME: &str = "2026-01-27T10:00:00Z";
const AGENT: &str = "my-agent";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const INTERACTION: &str = "conv-42";
const SPAN: &str = "00f067aa0ba902b7";

/// The `data` object, keys in the sorted order the sdk's map writes them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Payload<'a> {
    iteration: u32,
    lang: &'a str,
    max_results: u32,
    model: &'a str,
    query: &'a str,
    safe: bool,
    timeout_ms: u32,
    tool: &'a str,
}

fn payload() -> Payload<'static> {
    Payload {
        iteration: 1000,
        lang: "en",
        max_results: 10,
        model: "gpt-4o-mini",
        query: "cloudevents rust sdk serialization throughput on agent telemetry pipelines",
        safe: true,
        timeout_ms: 30000,
        tool: "search",
    }
}

// ---------------------------------------------------------------------------
// build + encode

/// Ours: builder with every attribute, the typed payload, the four OSSA
/// extensions in the sdk's order (inlined into each side below).
#[inline(always)]
fn ours_builder<'a>(p: &'a Payload<'a>) -> ossa_events::EventBuilder<'a> {
    Event::builder()
        .id(ID)
        .ty(TY)
        .source(SOURCE)
        .subject(SUBJECT)
        .time(Timestamp::parse(TIME).unwrap())
        .data_serialize(p)
        .ossa_agent_id(AGENT)
        .ossa_trace_id(TRACE)
        .ossa_interaction_id(INTERACTION)
        .ossa_span_id(SPAN)
}

/// Ours: [`ours_builder`], `build()` (full validation), `to_slice`.
fn ours_build_encode(p: &Payload<'_>, buf: &mut [u8; 1024]) -> usize {
    let ev = ours_builder(p).build().unwrap();
    json::to_slice(&ev, buf).unwrap()
}

/// Ours with [`ossa_events::EventBuilder::build_ref`]: the same checks, the
/// event encoded from the builder instead of moved out of it (what the
/// emitters do).
fn ours_build_ref_encode(p: &Payload<'_>, buf: &mut [u8; 1024]) -> usize {
    let mut b = ours_builder(p);
    json::to_slice(b.build_ref().unwrap(), buf).unwrap()
}

/// The sdk: `EventBuilderV10` with the same strings, the time parsed by
/// chrono, the payload through `serde_json::to_value`, `serde_json::to_vec`.
fn sdk_build_encode(p: &Payload<'_>) -> Vec<u8> {
    let ev = EventBuilderV10::new()
        .id(ID)
        .ty(TY)
        .source(SOURCE)
        .subject(SUBJECT)
        .time(
            chrono::DateTime::parse_from_rfc3339(TIME)
                .unwrap()
                .with_timezone(&chrono::Utc),
        )
        .data("application/json", serde_json::to_value(p).unwrap())
        .extension("ossaagentid", AGENT)
        .extension("ossatraceid", TRACE)
        .extension("ossainteractionid", INTERACTION)
        .extension("ossaspanid", SPAN)
        .build()
        .unwrap();
    serde_json::to_vec(&ev).unwrap()
}

/// A cursor over a fixed buffer for the hand-written floor.
struct Out<'b> {
    buf: &'b mut [u8; 1024],
    n: usize,
}

impl Out<'_> {
    #[inline]
    fn raw(&mut self, b: &[u8]) {
        self.buf[self.n..self.n + b.len()].copy_from_slice(b);
        self.n += b.len();
    }
    /// A JSON string: scans for what would need escaping (none of the
    /// fixture's strings does; a real writer would escape here).
    #[inline]
    fn str(&mut self, s: &str) {
        let needs = s.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\');
        assert!(!needs);
        self.raw(b"\"");
        self.raw(s.as_bytes());
        self.raw(b"\"");
    }
    #[inline]
    fn uint(&mut self, mut v: u32) {
        let mut tmp = [0u8; 10];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.raw(&tmp[i..]);
    }
}

/// The floor: the same bytes written by hand, nothing validated.
fn floor_encode(p: &Payload<'_>, buf: &mut [u8; 1024]) -> usize {
    let mut o = Out { buf, n: 0 };
    o.raw(br#"{"specversion":"1.0","id":"#);
    o.str(ID);
    o.raw(br#","type":"#);
    o.str(TY);
    o.raw(br#","source":"#);
    o.str(SOURCE);
    o.raw(br#","datacontenttype":"application/json","subject":"#);
    o.str(SUBJECT);
    o.raw(br#","time":"#);
    o.str(TIME);
    o.raw(br#","data":{"iteration":"#);
    o.uint(p.iteration);
    o.raw(br#","lang":"#);
    o.str(p.lang);
    o.raw(br#","max_results":"#);
    o.uint(p.max_results);
    o.raw(br#","model":"#);
    o.str(p.model);
    o.raw(br#","query":"#);
    o.str(p.query);
    o.raw(br#","safe":"#);
    o.raw(if p.safe { b"true" } else { b"false" });
    o.raw(br#","timeout_ms":"#);
    o.uint(p.timeout_ms);
    o.raw(br#","tool":"#);
    o.str(p.tool);
    o.raw(br#"},"ossaagentid":"#);
    o.str(AGENT);
    o.raw(br#","ossatraceid":"#);
    o.str(TRACE);
    o.raw(br#","ossainteractionid":"#);
    o.str(INTERACTION);
    o.raw(br#","ossaspanid":"#);
    o.str(SPAN);
    o.raw(b"}");
    o.n
}

/// `--only build|build_ref|floor|none`: 100 000 events of that side of
/// build + encode alone (`none`: no event, the process's fixed cost), for
/// callgrind: (side − none) / 100 000 is the side's instructions an event,
/// the figures in the README and `HISTORY.md`.
fn only(side: &str) {
    let p = payload();
    let mut buf = [0u8; 1024];
    let mut total = 0usize;
    let n = if side == "none" { 0 } else { 100_000 };
    for _ in 0..n {
        total += match side {
            "build" => ours_build_encode(black_box(&p), &mut buf),
            "build_ref" => ours_build_ref_encode(black_box(&p), &mut buf),
            "floor" => floor_encode(black_box(&p), &mut buf),
            other => panic!("--only build|build_ref|floor|none, not {other:?}"),
        };
    }
    println!("{side}: {n} events, {total} bytes");
}

// ---------------------------------------------------------------------------
// parse

fn ours_parse(input: &[u8]) -> usize {
    let mut buf = [0u8; 256];
    let ev = parse_event(input, &mut Scratch::new(&mut buf)).unwrap();
    black_box(&ev);
    ev.id().len()
}

fn sdk_parse(input: &[u8]) -> cloudevents::Event {
    serde_json::from_slice::<cloudevents::Event>(input).unwrap()
}

/// The reference: serde's borrowed parse, no CloudEvents checks.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Borrowed<'a> {
    specversion: &'a str,
    id: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    source: &'a str,
    datacontenttype: Option<&'a str>,
    subject: Option<&'a str>,
    time: Option<&'a str>,
    #[serde(borrow)]
    data: Option<&'a serde_json::value::RawValue>,
    ossaagentid: Option<&'a str>,
    ossatraceid: Option<&'a str>,
    ossainteractionid: Option<&'a str>,
    ossaspanid: Option<&'a str>,
}

fn serde_borrowed_parse(input: &[u8]) -> usize {
    let b: Borrowed<'_> = serde_json::from_slice(input).unwrap();
    black_box(&b);
    b.id.len()
}

// ---------------------------------------------------------------------------
// HTTP binary headers

/// Ours: every `ce-` header and `Content-Type`, names and values written out.
fn ours_headers(ev: &Event<'_>, head: &mut [u8; 1024]) -> usize {
    write_http_header_lines(ev, head)
}

/// The sdk: `http::Request::try_from(event)` (0.9 `http-binding`), then its
/// header names and values written out alike into a reused buffer.
fn sdk_headers(ev: cloudevents::Event, out: &mut Vec<u8>) -> usize {
    let req = http::Request::<Option<Vec<u8>>>::try_from(ev).unwrap();
    out.clear();
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    black_box(&req);
    out.len()
}

// ---------------------------------------------------------------------------
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--only") {
        only(args.get(i + 1).map(String::as_str).unwrap_or(""));
        return;
    }
    let bench_mode = args.iter().any(|a| a == "--bench");
    let (iters, runs) = if bench_mode { (2000, 15) } else { (20, 3) };

    // --- The three sides agree on the bytes and the event -------------------
    let p = payload();
    let input = INPUT.strip_suffix(b"\n").unwrap_or(INPUT);
    assert_eq!(input.len(), 551);
    let mut buf = [0u8; 1024];
    let n = floor_encode(&p, &mut buf);
    assert_eq!(&buf[..n], input, "the floor writes the sdk's bytes");
    let n = ours_build_encode(&p, &mut buf);
    assert_eq!(n, input.len());
    let mut by_ref = [0u8; 1024];
    assert_eq!(ours_build_ref_encode(&p, &mut by_ref), n);
    assert_eq!(by_ref[..n], buf[..n], "build_ref encodes what build does");
    let mut scratch2 = [0u8; 256];
    let from_input = parse_event(input, &mut Scratch::new(&mut scratch2)).unwrap();
    {
        let mut scratch = [0u8; 256];
        let ours_ev = parse_event(&buf[..n], &mut Scratch::new(&mut scratch)).unwrap();
        assert!(
            ours_ev.same_as(&from_input, false),
            "ours encodes the same event"
        );
    }
    let sdk_bytes = sdk_build_encode(&p);
    assert_eq!(sdk_bytes.len(), input.len());
    let sdk_ev = sdk_parse(&sdk_bytes);
    assert_eq!(sdk_ev, sdk_parse(input), "the sdk encodes the same event");
    let sdk_event = sdk_parse(input);
    let mut head = [0u8; 1024];
    let mut sdk_out = Vec::with_capacity(1024);
    let ours_head = ours_headers(&from_input, &mut head);
    let sdk_head = sdk_headers(sdk_event.clone(), &mut sdk_out);
    println!(
        "event: {} bytes; http binary header lines: ours {ours_head} bytes, sdk {sdk_head} bytes",
        input.len()
    );

    // --- Allocations per operation -------------------------------------------
    const N: usize = 200;
    let allocs = [
        (
            "build_encode/ours",
            allocs_per_op(GLOBAL, N, || ours_build_encode(&p, &mut buf)),
        ),
        (
            "build_encode/ours_build_ref",
            allocs_per_op(GLOBAL, N, || ours_build_ref_encode(&p, &mut buf)),
        ),
        (
            "build_encode/sdk",
            allocs_per_op(GLOBAL, N, || sdk_build_encode(&p)),
        ),
        (
            "build_encode/floor",
            allocs_per_op(GLOBAL, N, || floor_encode(&p, &mut buf)),
        ),
        ("parse/ours", allocs_per_op(GLOBAL, N, || ours_parse(input))),
        ("parse/sdk", allocs_per_op(GLOBAL, N, || sdk_parse(input))),
        (
            "parse/serde_borrowed",
            allocs_per_op(GLOBAL, N, || serde_borrowed_parse(input)),
        ),
        (
            "http_headers/ours",
            allocs_per_op(GLOBAL, N, || ours_headers(&from_input, &mut head)),
        ),
    ];
    println!("allocations per operation (allocs + reallocs):");
    for (name, a) in allocs {
        println!("  {name:<28} {a:>6.1}");
    }

    // --- Own timing -------------------------------------------------------------
    let mut buf2 = [0u8; 1024];
    let mut head2 = [0u8; 1024];
    let mut buf3 = [0u8; 1024];
    let [t_enc, t_enc_ref, t_enc_sdk, t_floor] = interleaved(
        runs,
        [
            &mut || run_ns(iters, || ours_build_encode(black_box(&p), &mut buf)),
            &mut || run_ns(iters, || ours_build_ref_encode(black_box(&p), &mut buf3)),
            &mut || run_ns(iters, || sdk_build_encode(black_box(&p))),
            &mut || run_ns(iters, || floor_encode(black_box(&p), &mut buf2)),
        ],
    );
    let [t_parse, t_parse_sdk, t_parse_serde] = interleaved(
        runs,
        [
            &mut || run_ns(iters, || ours_parse(black_box(input))),
            &mut || run_ns(iters, || sdk_parse(black_box(input))),
            &mut || run_ns(iters, || serde_borrowed_parse(black_box(input))),
        ],
    );
    let [t_head, t_head_sdk] = interleaved(
        runs,
        [
            &mut || run_ns(iters, || ours_headers(black_box(&from_input), &mut head2)),
            &mut || {
                run_ns_batched(
                    iters,
                    || sdk_event.clone(),
                    |e| sdk_headers(e, &mut sdk_out),
                )
            },
        ],
    );

    // --- Criterion (short phases) --------------------------------------------------
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    {
        let mut g = c.benchmark_group("sdk_shaped/build_encode");
        g.bench_function("ours", |b| {
            b.iter(|| ours_build_encode(black_box(&p), &mut buf))
        });
        g.bench_function("ours_build_ref", |b| {
            b.iter(|| ours_build_ref_encode(black_box(&p), &mut buf))
        });
        g.bench_function("sdk", |b| b.iter(|| sdk_build_encode(black_box(&p))));
        g.bench_function("floor", |b| {
            b.iter(|| floor_encode(black_box(&p), &mut buf))
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("sdk_shaped/parse");
        g.bench_function("ours", |b| b.iter(|| ours_parse(black_box(input))));
        g.bench_function("sdk", |b| b.iter(|| sdk_parse(black_box(input))));
        g.bench_function("serde_borrowed", |b| {
            b.iter(|| serde_borrowed_parse(black_box(input)))
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("sdk_shaped/http_binary_headers");
        g.bench_function("ours", |b| {
            b.iter(|| ours_headers(black_box(&from_input), &mut head))
        });
        g.bench_function("sdk", |b| {
            b.iter_batched(
                || sdk_event.clone(),
                |e| sdk_headers(e, &mut sdk_out),
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
    c.final_summary();

    // --- Summary ----------------------------------------------------------------------
    let len = input.len() as f64;
    println!();
    println!("summary: median of {runs} interleaved runs x {iters} calls, ns per event");
    println!(
        "  build+encode   ours {t_enc:>6.0}  sdk {t_enc_sdk:>6.0}  floor {t_floor:>5.0}   \
         sdk/ours {:>4.1}x (target >= 5x)   ours/floor {:>4.2}x (target <= 1.5x)",
        t_enc_sdk / t_enc,
        t_enc / t_floor
    );
    println!(
        "  ... build_ref  ours {t_enc_ref:>6.0}                             \
         sdk/ours {:>4.1}x                  ours/floor {:>4.2}x",
        t_enc_sdk / t_enc_ref,
        t_enc_ref / t_floor
    );
    println!(
        "  parse          ours {t_parse:>6.0}  sdk {t_parse_sdk:>6.0}  serde {t_parse_serde:>5.0}   \
         sdk/ours {:>4.1}x (target >= 8x)   ours {:.2} GB/s (target >= 1), serde borrowed {:.2} GB/s",
        t_parse_sdk / t_parse,
        len / t_parse,
        len / t_parse_serde
    );
    println!(
        "  http headers   ours {t_head:>6.0}  sdk {t_head_sdk:>6.0}                 \
         sdk/ours {:>4.1}x (target >= 10x)",
        t_head_sdk / t_head
    );
}
