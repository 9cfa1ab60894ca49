//! `ossa-events` against `cloudevents-sdk` 0.9 on a typical OSSA event.
//!
//! The event is a `dev.ossa.tool.called` event of about 550 bytes of compact
//! JSON: id (UUID v4), type, source `/agents/researcher`, datacontenttype
//! `application/json`, subject (the tool), time, the four OSSA extensions and a
//! ~200-byte JSON `data` object. Three criterion groups put our code and the
//! SDK side by side:
//!
//! * `build_encode`: make a new id, read the clock, build the event, encode it
//!   as compact JSON into a reused buffer.
//! * `parse`: structured JSON bytes to an event.
//! * `http_binary_headers`: an already built event to everything HTTP binary
//!   mode puts on the wire (headers and body).
//!
//! Before criterion runs, the binary counts allocations per operation with a
//! counting global allocator and times every function with its own loop
//! (median of 31 runs), and it prints a summary table after criterion, so the
//! ratios appear in one run without reading criterion's output.
//! See `README.md` beside this file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

use cloudevents::{AttributesReader as _, EventBuilder as _, EventBuilderV10};
use criterion::{BatchSize, Criterion};
use ossa_events::format::binary::{self, Binding};
use ossa_events::format::json;
use ossa_events::io::SliceWriter;
use ossa_events::ossa::{self, ToolCalled};
use ossa_events::parse::json::parse_event;
use ossa_events::{Event, RawJson, Scratch, SystemClock};
use ossa_events_tests::{interleaved, run_ns, run_ns_batched, write_http_header_lines};

#[path = "shared/allocs.rs"]
mod allocs;
use allocs::{allocs_per_op, allocs_per_op_batched};
use ossa_events_tests::typical::{
    self, AGENT_ID, ARGUMENTS, CALL_ID, INTERACTION_ID, SOURCE, SPAN_ID, TOOL, TRACE_ID,
    fixed_event, tool_called,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

// ---------------------------------------------------------------------------
// The fixture: one typical `dev.ossa.tool.called` event
// (`ossa_events_tests::typical`).

/// The whole `data` object as JSON text (what `ToolCalled` writes).
fn data_json_text() -> String {
    format!(r#"{{"tool":"{TOOL}","call_id":"{CALL_ID}","arguments":{ARGUMENTS}}}"#)
}

/// The fixture event built by our builder with a fixed id and time, encoded:
/// the parse input.
fn fixture_json() -> Vec<u8> {
    let call = tool_called();
    let ev = fixed_event(&call);
    json::to_vec(&ev).unwrap()
}

/// The fixture with JSON escapes in attributes (which the parser must unescape
/// into scratch) and in `data` (which it only validates).
fn fixture_json_escaped() -> Vec<u8> {
    let plain = String::from_utf8(fixture_json()).unwrap();
    let out = plain
        .replace(
            r#""subject":"web_search""#,
            r#""subject":"web\u005fsearch""#,
        )
        .replace(
            r#""ossaagentid":"researcher""#,
            r#""ossaagentid":"research\u0065r \"Ad\u00e9le\"""#,
        )
        .replace(
            r#""query":"CloudEvents extensions for agent tracing""#,
            r#""query":"CloudEvents \"extensions\"\nfor agent tracing \u00e9\ud83d\ude00""#,
        );
    assert_ne!(out, plain);
    out.into_bytes()
}

// ---------------------------------------------------------------------------
// The functions measured. Each returns something for `black_box`.

/// Ours, build + encode: new id, `SystemClock`, `RawJson::new` of the
/// arguments text, builder with `.ossa(&ToolCalled)` and the 4 extensions,
/// `json::to_slice` into a reused stack buffer.
fn ours_build_encode_ossa(buf: &mut [u8; 1024]) -> usize {
    let id = ossa_events::new_id();
    let call = ToolCalled {
        tool: TOOL,
        call_id: Some(CALL_ID),
        arguments: Some(RawJson::new(ARGUMENTS).unwrap()),
    };
    let ev = Event::builder()
        .id(id.as_str())
        .source(SOURCE)
        .time_from(&SystemClock)
        .ossa(&call)
        .ossa_agent_id(AGENT_ID)
        .ossa_interaction_id(INTERACTION_ID)
        .ossa_trace_id(TRACE_ID)
        .ossa_span_id(SPAN_ID)
        .build()
        .unwrap();
    json::to_slice(&ev, buf).unwrap()
}

/// Ours, build + encode with the whole `data` given as JSON text
/// (`data_json(raw)`: checked by `build`, re-emitted compact by the encoder).
fn ours_build_encode_raw(data: &str, buf: &mut [u8; 1024]) -> usize {
    let id = ossa_events::new_id();
    let ev = Event::builder()
        .id(id.as_str())
        .source(SOURCE)
        .ty(ossa::TOOL_CALLED)
        .subject(TOOL)
        .time_from(&SystemClock)
        .ossa_agent_id(AGENT_ID)
        .ossa_interaction_id(INTERACTION_ID)
        .ossa_trace_id(TRACE_ID)
        .ossa_span_id(SPAN_ID)
        .data_json(data)
        .build()
        .unwrap();
    json::to_slice(&ev, buf).unwrap()
}

/// SDK, build + encode: uuid v4 (OS random) id string, `chrono::Utc::now()`,
/// `EventBuilderV10` with the 4 extensions and a `serde_json::Value` data
/// built with `json!`, then `serde_json::to_vec` — the baseline issue #3 names
/// (`out` is kept for the signature the timing loops share; a reused buffer
/// with `to_writer` saves the sdk 1 allocation and 3 reallocations).
fn sdk_build_encode(out: &mut Vec<u8>) -> usize {
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
    let v = serde_json::to_vec(&ev).unwrap();
    out.clear();
    std::hint::black_box(&v);
    v.len()
}

/// Ours, encode only: `json::to_slice` of an already built event.
fn ours_encode(ev: &Event<'_>, buf: &mut [u8; 1024]) -> usize {
    json::to_slice(ev, buf).unwrap()
}

/// SDK, encode only: `serde_json::to_writer` of an already built event into a
/// reused `Vec`.
fn sdk_encode(ev: &cloudevents::Event, out: &mut Vec<u8>) -> usize {
    out.clear();
    serde_json::to_writer(&mut *out, ev).unwrap();
    out.len()
}

/// Ours, parse: `parse_event` with a reused stack scratch buffer.
fn ours_parse(input: &[u8]) -> usize {
    let mut buf = [0u8; 512];
    let ev = parse_event(input, &mut Scratch::new(&mut buf)).unwrap();
    black_box(&ev);
    ev.id().len()
}

/// SDK, parse: `serde_json::from_slice::<cloudevents::Event>`.
fn sdk_parse(input: &[u8]) -> cloudevents::Event {
    serde_json::from_slice::<cloudevents::Event>(input).unwrap()
}

/// Ours, HTTP binary mode: every `name: value\r\n` header line (the `ce-`
/// attributes percent-encoded as needed, then `Content-Type`) into a reused
/// buffer through a `SliceWriter`, and the body: borrowed with `body_slice`
/// when the event holds JSON text, else written by `write_body` into a second
/// reused buffer (an `.ossa(&payload)` event serializes its payload here).
/// Returns header bytes + body bytes.
fn ours_http_binary(ev: &Event<'_>, head: &mut [u8; 1024], body: &mut [u8; 1024]) -> usize {
    let head_len = write_http_header_lines(ev, head);
    let body_len = match binary::body_slice(ev) {
        Some(b) => black_box(b).len(),
        None => {
            let mut bw = SliceWriter::new(body);
            binary::write_body(ev, &mut bw).unwrap();
            bw.len()
        }
    };
    head_len + body_len
}

type SdkRequest = http::Request<Option<Vec<u8>>>;

/// SDK, HTTP binary mode: `http::Request::<Option<Vec<u8>>>::try_from(event)`
/// (the 0.9 `http-binding` serializer: one `HeaderValue` per attribute, data
/// serialized to a `Vec` body). It consumes the event, so the event is cloned
/// outside the measurement.
fn sdk_http_binary(ev: cloudevents::Event) -> SdkRequest {
    SdkRequest::try_from(ev).unwrap()
}

// ---------------------------------------------------------------------------
// Own measurement: the summary rows (timers in `ossa_events_tests`,
// allocation counts in `shared/allocs.rs`).

struct Row {
    name: &'static str,
    ours: f64,
    sdk: f64,
    ours_allocs: f64,
    sdk_allocs: f64,
    target: Option<f64>,
}

// ---------------------------------------------------------------------------

fn main() {
    // Criterion runs the benchmarks in test mode (once each) unless `--bench`
    // is given, as `cargo bench` does; the own timing loop follows suit.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let (iters, runs) = if bench_mode { (2000, 31) } else { (20, 3) };

    // --- Fixtures and sanity checks -------------------------------------
    let data_text = data_json_text();
    let input = fixture_json();
    let input_escaped = fixture_json_escaped();
    let mut buf = [0u8; 1024];
    let ours_len = ours_build_encode_ossa(&mut buf);
    let ours_raw_len = ours_build_encode_raw(&data_text, &mut buf);
    let mut sdk_out = Vec::new();
    let sdk_len = sdk_build_encode(&mut sdk_out);
    assert!(
        (500..=600).contains(&ours_len),
        "fixture should be ~550 bytes, is {ours_len}"
    );
    assert_eq!(ours_len, ours_raw_len);
    assert_eq!(
        ours_len,
        input.len(),
        "fixture and built event differ in size"
    );

    let mut scratch = [0u8; 512];
    let parsed = parse_event(&input, &mut Scratch::new(&mut scratch)).unwrap();
    assert_eq!(parsed.ossa_trace_id(), Some(TRACE_ID));
    let mut scratch_e = [0u8; 512];
    let parsed_e = parse_event(&input_escaped, &mut Scratch::new(&mut scratch_e)).unwrap();
    assert_eq!(parsed_e.subject(), Some(TOOL));
    assert_eq!(parsed_e.ossa_agent_id(), Some("researcher \"Adéle\""));
    let sdk_parsed = sdk_parse(&input);
    let sdk_parsed_e = sdk_parse(&input_escaped);
    assert_eq!(sdk_parsed_e.subject(), Some(TOOL));

    // The events the header benchmarks start from.
    let call = tool_called();
    let built = fixed_event(&call);
    let sdk_event = sdk_parsed.clone();
    let sdk_built = sdk_parsed.clone();
    let mut head = [0u8; 1024];
    let mut body = [0u8; 1024];
    let ours_wire_parsed = ours_http_binary(&parsed, &mut head, &mut body);
    let ours_wire_built = ours_http_binary(&built, &mut head, &mut body);
    assert_eq!(ours_wire_parsed, ours_wire_built);
    let req = sdk_http_binary(sdk_event.clone());
    let sdk_headers = req.headers().len();
    let sdk_body = req.body().as_ref().map_or(0, Vec::len);
    let ours_headers = binary::headers(&parsed, Binding::Http).count() + 1;
    println!(
        "fixture: dev.ossa.tool.called, compact JSON {ours_len} bytes (data {} bytes); \
         sdk JSON {sdk_len} bytes; escaped variant {} bytes",
        data_text.len(),
        input_escaped.len()
    );
    println!(
        "http binary: ours {ours_headers} headers, {ours_wire_parsed} bytes of header lines + body; \
         sdk {sdk_headers} headers, body {sdk_body} bytes"
    );

    // --- Allocations per operation ---------------------------------------
    const N: usize = 200;
    let a_build_ossa = allocs_per_op(GLOBAL, N, || ours_build_encode_ossa(&mut buf));
    let a_build_raw = allocs_per_op(GLOBAL, N, || ours_build_encode_raw(&data_text, &mut buf));
    let a_build_sdk = allocs_per_op(GLOBAL, N, || sdk_build_encode(&mut sdk_out));
    let a_enc = allocs_per_op(GLOBAL, N, || ours_encode(&built, &mut buf));
    let a_enc_sdk = allocs_per_op(GLOBAL, N, || sdk_encode(&sdk_built, &mut sdk_out));
    let a_parse = allocs_per_op(GLOBAL, N, || ours_parse(&input));
    let a_parse_e = allocs_per_op(GLOBAL, N, || ours_parse(&input_escaped));
    let a_parse_sdk = allocs_per_op(GLOBAL, N, || sdk_parse(&input));
    let a_parse_sdk_e = allocs_per_op(GLOBAL, N, || sdk_parse(&input_escaped));
    let a_http_parsed = allocs_per_op(GLOBAL, N, || {
        ours_http_binary(&parsed, &mut head, &mut body)
    });
    let a_http_built = allocs_per_op(GLOBAL, N, || ours_http_binary(&built, &mut head, &mut body));
    let a_http_sdk = allocs_per_op_batched(GLOBAL, N, || sdk_event.clone(), sdk_http_binary);
    println!("allocations per operation (allocs + reallocs):");
    for (name, a) in [
        ("build_encode/ours_ossa_payload", a_build_ossa),
        ("build_encode/ours_data_json", a_build_raw),
        ("build_encode/sdk", a_build_sdk),
        ("encode_only/ours", a_enc),
        ("encode_only/sdk", a_enc_sdk),
        ("parse/ours", a_parse),
        ("parse/ours_escaped", a_parse_e),
        ("parse/sdk", a_parse_sdk),
        ("parse/sdk_escaped", a_parse_sdk_e),
        ("http_binary_headers/ours_body_slice", a_http_parsed),
        ("http_binary_headers/ours_body_written", a_http_built),
        ("http_binary_headers/sdk", a_http_sdk),
    ] {
        println!("  {name:<40} {a:>6.1}");
    }

    // --- Own timing (median of `runs` interleaved runs of `iters` calls) ---
    let mut buf2 = [0u8; 1024];
    let mut buf3 = [0u8; 1024];
    let mut sdk_out2 = Vec::new();
    let (mut head2, mut body2) = ([0u8; 1024], [0u8; 1024]);
    let [t_build_ossa, t_build_raw, t_build_sdk, t_uuid] = interleaved(
        runs,
        [
            &mut || run_ns(iters, || ours_build_encode_ossa(&mut buf)),
            &mut || run_ns(iters, || ours_build_encode_raw(&data_text, &mut buf2)),
            &mut || run_ns(iters, || sdk_build_encode(&mut sdk_out)),
            &mut || run_ns(iters, || uuid::Uuid::new_v4().to_string()),
        ],
    );
    let [t_enc, t_enc_sdk] = interleaved(
        runs,
        [
            &mut || run_ns(iters, || ours_encode(black_box(&built), &mut buf3)),
            &mut || run_ns(iters, || sdk_encode(black_box(&sdk_built), &mut sdk_out2)),
        ],
    );
    let [t_parse, t_parse_e, t_parse_sdk, t_parse_sdk_e] = interleaved(
        runs,
        [
            &mut || run_ns(iters, || ours_parse(black_box(&input))),
            &mut || run_ns(iters, || ours_parse(black_box(&input_escaped))),
            &mut || run_ns(iters, || sdk_parse(black_box(&input))),
            &mut || run_ns(iters, || sdk_parse(black_box(&input_escaped))),
        ],
    );
    let [t_http_parsed, t_http_built, t_http_sdk] = interleaved(
        runs,
        [
            &mut || {
                run_ns(iters, || {
                    ours_http_binary(black_box(&parsed), &mut head, &mut body)
                })
            },
            &mut || {
                run_ns(iters, || {
                    ours_http_binary(black_box(&built), &mut head2, &mut body2)
                })
            },
            &mut || run_ns_batched(iters, || sdk_event.clone(), sdk_http_binary),
        ],
    );

    // --- Criterion ----------------------------------------------------------
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();

    {
        let mut g = c.benchmark_group("build_encode");
        g.bench_function("ours_ossa_payload", |b| {
            b.iter(|| ours_build_encode_ossa(&mut buf))
        });
        g.bench_function("ours_data_json", |b| {
            b.iter(|| ours_build_encode_raw(&data_text, &mut buf))
        });
        g.bench_function("sdk", |b| b.iter(|| sdk_build_encode(&mut sdk_out)));
        g.bench_function("ours_encode_only", |b| {
            b.iter(|| ours_encode(black_box(&built), &mut buf))
        });
        g.bench_function("sdk_encode_only", |b| {
            b.iter(|| sdk_encode(black_box(&sdk_built), &mut sdk_out))
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("parse");
        g.bench_function("ours", |b| b.iter(|| ours_parse(black_box(&input))));
        g.bench_function("ours_escaped", |b| {
            b.iter(|| ours_parse(black_box(&input_escaped)))
        });
        g.bench_function("sdk", |b| b.iter(|| sdk_parse(black_box(&input))));
        g.bench_function("sdk_escaped", |b| {
            b.iter(|| sdk_parse(black_box(&input_escaped)))
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("http_binary_headers");
        g.bench_function("ours_body_slice", |b| {
            b.iter(|| ours_http_binary(black_box(&parsed), &mut head, &mut body))
        });
        g.bench_function("ours_body_written", |b| {
            b.iter(|| ours_http_binary(black_box(&built), &mut head, &mut body))
        });
        g.bench_function("sdk", |b| {
            b.iter_batched(|| sdk_event.clone(), sdk_http_binary, BatchSize::SmallInput)
        });
        g.finish();
    }
    c.final_summary();

    // --- Summary table --------------------------------------------------------
    let rows = [
        Row {
            name: "build_encode (ossa payload)",
            ours: t_build_ossa,
            sdk: t_build_sdk,
            ours_allocs: a_build_ossa,
            sdk_allocs: a_build_sdk,
            target: Some(6.0),
        },
        Row {
            name: "build_encode (data_json)",
            ours: t_build_raw,
            sdk: t_build_sdk,
            ours_allocs: a_build_raw,
            sdk_allocs: a_build_sdk,
            target: Some(6.0),
        },
        Row {
            name: "encode only (built event)",
            ours: t_enc,
            sdk: t_enc_sdk,
            ours_allocs: a_enc,
            sdk_allocs: a_enc_sdk,
            target: None,
        },
        Row {
            name: "parse",
            ours: t_parse,
            sdk: t_parse_sdk,
            ours_allocs: a_parse,
            sdk_allocs: a_parse_sdk,
            target: Some(6.0),
        },
        Row {
            name: "parse (escaped)",
            ours: t_parse_e,
            sdk: t_parse_sdk_e,
            ours_allocs: a_parse_e,
            sdk_allocs: a_parse_sdk_e,
            target: Some(6.0),
        },
        Row {
            name: "http_binary (body_slice)",
            ours: t_http_parsed,
            sdk: t_http_sdk,
            ours_allocs: a_http_parsed,
            sdk_allocs: a_http_sdk,
            target: Some(8.0),
        },
        Row {
            name: "http_binary (body written)",
            ours: t_http_built,
            sdk: t_http_sdk,
            ours_allocs: a_http_built,
            sdk_allocs: a_http_sdk,
            target: Some(8.0),
        },
    ];
    println!();
    println!(
        "summary (own loop: median of {runs} runs x {iters} calls; ns per event; noisy under load)"
    );
    println!(
        "{:<28} {:>9} {:>9} {:>7} {:>7} {:>13}",
        "benchmark", "ours ns", "sdk ns", "ratio", "target", "allocs o/sdk"
    );
    for r in &rows {
        let ratio = r.sdk / r.ours;
        let (target, flag) = match r.target {
            Some(t) => (
                format!("{t:.0}x"),
                if ratio >= t { "" } else { "  below target" },
            ),
            None => ("-".to_string(), ""),
        };
        println!(
            "{:<28} {:>9.0} {:>9.0} {:>6.1}x {:>7} {:>6.0}/{:<6.0}{flag}",
            r.name, r.ours, r.sdk, ratio, target, r.ours_allocs, r.sdk_allocs,
        );
    }
    println!(
        "(sdk build_encode includes uuid::Uuid::new_v4().to_string() = {t_uuid:.0} ns of OS randomness; \
         both sides read the real clock: SystemClock / chrono::Utc::now())"
    );
}
