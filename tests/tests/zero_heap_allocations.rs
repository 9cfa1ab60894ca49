#![allow(clippy::unwrap_used, clippy::expect_used)]
// A global allocator cannot be written without `unsafe`.
#![allow(unsafe_code)]
//! The core builds, encodes and parses events without touching the heap.
//!
//! A counting `#[global_allocator]` wraps `System` and counts, per thread,
//! every allocation and reallocation. Each test measures only the closure it
//! hands to [`allocations`]: the test harness runs on other threads, and every
//! check that could print (assertions) happens after the measured region.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use ossa_events_core::format::binary::{self, Binding};
use ossa_events_core::format::json;
use ossa_events_core::io::SliceWriter;
use ossa_events_core::parse::{self, json::BatchParser};
use ossa_events_core::{Data, Event, EventId, ExtValue, RawJson, Scratch, Timestamp, ossa};

struct Counting;

thread_local! {
    /// Allocations (and reallocations) made by this thread.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the allocator may run while the thread-local is being torn down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the number of heap allocations it made
/// on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCS.with(Cell::get);
    let r = black_box(f());
    let after = ALLOCS.with(Cell::get);
    (r, after - before)
}

#[test]
fn the_counter_counts() {
    let (v, n) = allocations(|| Vec::<u8>::with_capacity(1));
    assert_eq!(n, 1, "Vec::with_capacity(1)");
    drop(v);
    let (b, n) = allocations(|| Box::new(7u64));
    assert_eq!(n, 1, "Box::new");
    drop(b);
    let (s, n) = allocations(|| {
        let mut s = String::with_capacity(1);
        s.push_str("grows past its capacity");
        s
    });
    assert_eq!(n, 2, "alloc + realloc");
    drop(s);
    let ((), n) = allocations(|| {
        black_box(Vec::<u8>::new());
        black_box([0u8; 64]);
    });
    assert_eq!(n, 0, "no allocation for an empty Vec or a stack array");
    // Allocations made inside the core are seen too.
    let ev = Event::builder()
        .id("1")
        .source("/s")
        .ty("t")
        .build()
        .unwrap();
    let (v, n) = allocations(|| json::to_vec(&ev).unwrap());
    assert!(n >= 1, "json::to_vec allocates its Vec");
    drop(v);
}

const ARGS: &str = r#"{"query":"rust \"no_std\" cloudevents","limit":10,"lang":"en"}"#;

/// Builds a typical OSSA `tool.called` event and writes it to `buf`.
fn build_and_encode_tool_called(buf: &mut [u8]) -> usize {
    let id = EventId::from_random_bytes([0x42; 16]);
    let call = ossa::ToolCalled {
        tool: "web_search",
        call_id: Some("call-0001"),
        arguments: Some(RawJson::new(ARGS).unwrap()),
    };
    let ctx = ossa::Context {
        agent_id: Some("researcher"),
        interaction_id: Some("conv-42"),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        span_id: Some("00f067aa0ba902b7"),
    };
    let ev = Event::builder()
        .id(id.as_str())
        .source("/agents/researcher")
        .time(Timestamp::from_unix_millis(1_764_000_000_123).unwrap())
        .ossa(&call)
        .ossa_context(&ctx)
        .build()
        .unwrap();
    json::to_slice(&ev, buf).unwrap()
}

#[test]
fn building_and_encoding_an_ossa_tool_called_event() {
    let mut buf = [0u8; 1024];
    let (n, allocs) = allocations(|| build_and_encode_tool_called(&mut buf));
    assert_eq!(allocs, 0);
    assert_eq!(
        std::str::from_utf8(&buf[..n]).unwrap(),
        concat!(
            r#"{"specversion":"1.0","id":"42424242-4242-4242-8242-424242424242","source":"/agents/researcher","#,
            r#""type":"dev.ossa.tool.called","datacontenttype":"application/json","subject":"web_search","#,
            r#""time":"2025-11-24T16:00:00.123Z","ossaagentid":"researcher","ossainteractionid":"conv-42","#,
            r#""ossatraceid":"4bf92f3577b34da6a3ce929d0e0e4736","ossaspanid":"00f067aa0ba902b7","#,
            r#""data":{"tool":"web_search","call_id":"call-0001","arguments":{"query":"rust \"no_std\" cloudevents","limit":10,"lang":"en"}}}"#
        )
    );
}

#[derive(serde::Serialize)]
struct Reading<'a> {
    sensor: &'a str,
    values: [f64; 3],
    count: u64,
    delta: i32,
    ok: bool,
    note: Option<&'a str>,
    tags: &'a [&'a str],
    position: Position,
    kind: Kind,
}

#[derive(serde::Serialize)]
struct Position {
    lat: f32,
    lon: f32,
}

#[derive(serde::Serialize)]
enum Kind {
    Periodic { every_s: u32 },
}

#[test]
fn encoding_a_serde_payload() {
    let mut buf = [0u8; 512];
    let (n, allocs) = allocations(|| {
        let reading = Reading {
            sensor: "t-1 \"outdoor\" é",
            values: [1.5, -0.25, 1e21],
            count: u64::MAX,
            delta: -7,
            ok: true,
            note: None,
            tags: &["a\\b", "c\nd"],
            position: Position {
                lat: 47.37,
                lon: 8.54,
            },
            kind: Kind::Periodic { every_s: 60 },
        };
        let ev = Event::builder()
            .id("r-1")
            .source("/sensors/t-1")
            .ty("com.example.reading")
            .time_str("2025-01-01T00:00:00.5+01:00")
            .extension("seq", ExtValue::Integer(9))
            .data_serialize(&reading)
            .build()
            .unwrap();
        json::to_slice(&ev, &mut buf).unwrap()
    });
    assert_eq!(allocs, 0);
    let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(v["data"]["sensor"], "t-1 \"outdoor\" é");
    assert_eq!(v["data"]["count"], u64::MAX);
    assert_eq!(v["data"]["tags"][1], "c\nd");
    assert_eq!(v["data"]["kind"]["Periodic"]["every_s"], 60);
}

/// Writes every header of `ev` for `binding` as `name: value\r\n` lines into `out`,
/// through `write_into` on small stack buffers; returns the length.
fn headers_via_write_into(ev: &Event<'_>, binding: Binding, out: &mut [u8]) -> usize {
    let mut len = 0;
    let mut push = |b: &[u8]| {
        out[len..len + b.len()].copy_from_slice(b);
        len += b.len();
    };
    for h in binary::headers(ev, binding) {
        let mut name = [0u8; 64];
        let mut value = [0u8; 256];
        push(h.name().write_into(&mut name).unwrap().as_bytes());
        push(b": ");
        push(h.value().write_into(&mut value).unwrap().as_bytes());
        push(b"\r\n");
    }
    if let Some(ct) = binary::content_type(ev) {
        push(binding.content_type_header().as_bytes());
        push(b": ");
        push(ct.as_bytes());
        push(b"\r\n");
    }
    len
}

/// The same through `write_to` a `SliceWriter`, plus the body.
fn headers_via_write_to(ev: &Event<'_>, binding: Binding, out: &mut [u8]) -> usize {
    let mut w = SliceWriter::new(out);
    for h in binary::headers(ev, binding) {
        h.name().write_to(&mut w).unwrap();
        ossa_events_core::io::write_all(&mut w, b": ").unwrap();
        h.value().write_to(&mut w).unwrap();
        ossa_events_core::io::write_all(&mut w, b"\r\n").unwrap();
    }
    if let Some(ct) = binary::content_type(ev) {
        ossa_events_core::io::write_all(&mut w, binding.content_type_header().as_bytes()).unwrap();
        ossa_events_core::io::write_all(&mut w, b": ").unwrap();
        ossa_events_core::io::write_all(&mut w, ct.as_bytes()).unwrap();
        ossa_events_core::io::write_all(&mut w, b"\r\n").unwrap();
    }
    ossa_events_core::io::write_all(&mut w, b"\r\n").unwrap();
    binary::write_body(ev, &mut w).unwrap();
    w.len()
}

fn header_test_event<'a>(call: &'a ossa::ToolCalled<'a>) -> Event<'a> {
    Event::builder()
        .id("id with space")
        .source("/agents/researcher")
        .time_str("2025-01-01T00:00:00-08:00")
        .ossa(call)
        .subject("Euro € 😀 100%")
        .ossa_agent_id("researcher")
        .ossa_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
        .extension("retries", ExtValue::Integer(3))
        .extension("cached", ExtValue::Boolean(false))
        .extension(
            "deadline",
            ExtValue::Timestamp(Timestamp::from_unix(1_700_000_000, 0).unwrap()),
        )
        .extension("sig", ExtValue::Binary(&[0xde, 0xad, 0xbe, 0xef]))
        .extension(
            "schemaref",
            ExtValue::Uri("https://example.com/s?q=%22x%22"),
        )
        .build()
        .unwrap()
}

#[test]
fn building_binary_mode_headers() {
    let call = ossa::ToolCalled {
        tool: "web_search",
        call_id: Some("c1"),
        arguments: Some(RawJson::new(ARGS).unwrap()),
    };
    let ev = header_test_event(&call);
    let mut http_a = [0u8; 2048];
    let mut http_b = [0u8; 2048];
    let mut kafka_a = [0u8; 2048];
    let mut kafka_b = [0u8; 2048];
    let ((ha, hb, ka, kb), allocs) = allocations(|| {
        (
            headers_via_write_into(&ev, Binding::Http, &mut http_a),
            headers_via_write_to(&ev, Binding::Http, &mut http_b),
            headers_via_write_into(&ev, Binding::Kafka, &mut kafka_a),
            headers_via_write_to(&ev, Binding::Kafka, &mut kafka_b),
        )
    });
    assert_eq!(allocs, 0);
    let http = std::str::from_utf8(&http_a[..ha]).unwrap();
    assert!(
        http.contains("ce-subject: Euro%20%E2%82%AC%20%F0%9F%98%80%20100%25\r\n"),
        "{http}"
    );
    assert!(http.contains("ce-id: id%20with%20space\r\n"), "{http}");
    assert!(
        http.contains("ce-schemaref: https://example.com/s?q=%2522x%2522\r\n"),
        "{http}"
    );
    assert!(http.contains("ce-sig: 3q2+7w==\r\n"), "{http}");
    assert!(
        http.contains("ce-time: 2025-01-01T00:00:00-08:00\r\n"),
        "{http}"
    );
    assert!(
        http.ends_with("Content-Type: application/json\r\n"),
        "{http}"
    );
    assert!(http_b[..hb].starts_with(&http_a[..ha]));
    let kafka = std::str::from_utf8(&kafka_a[..ka]).unwrap();
    assert!(kafka.contains("ce_subject: Euro € 😀 100%\r\n"), "{kafka}");
    assert!(
        kafka.ends_with("content-type: application/json\r\n"),
        "{kafka}"
    );
    assert!(kafka_b[..kb].starts_with(&kafka_a[..ka]));
    // Body after the blank line.
    let body = &kafka_b[ka + 2..kb];
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["tool"], "web_search");
}

const STRUCTURED: &[u8] = br#"{
  "specversion" : "1.0",
  "id" : "A234-1234-1234 \"esc\" \u00e9\ud83d\ude00",
  "source" : "https://github.com/cloudevents/spec/pull",
  "type" : "com.github.pull_request.opened",
  "subject" : "back\\slash \/ \u20ac \"q\"",
  "time" : "2018-04-05T17:31:00.120+02:00",
  "comexampleextension1" : "value",
  "comexampleothervalue" : 5,
  "flag" : true,
  "unsetextension" : null,
  "datacontenttype" : "text/xml",
  "data" : "<much wow=\"xml\" \u00e9/>"
}"#;

#[test]
fn parsing_structured_json() {
    let (ok, allocs) = allocations(|| {
        let mut buf = [0u8; 256];
        let ev = parse::json::parse_event(STRUCTURED, &mut Scratch::new(&mut buf)).unwrap();
        ev.id() == "A234-1234-1234 \"esc\" é😀"
            && ev.subject() == Some("back\\slash / € \"q\"")
            && ev.extension("comexampleothervalue") == Some(ExtValue::Integer(5))
            && ev.extension("flag") == Some(ExtValue::Boolean(true))
            && ev.extension("unsetextension").is_none()
            && matches!(ev.data(), Some(Data::Text("<much wow=\"xml\" é/>")))
            && ev.time().is_some_and(|t| t.unix_seconds() == 1_522_942_260)
    });
    assert_eq!(allocs, 0);
    assert!(ok);
}

#[test]
fn parsing_and_reencoding_structured_json_with_json_and_base64_data() {
    let input = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":{ "a" : [ 1, 2, {"b":"c\"d"} ] }}"#;
    let input_b64 =
        br#"{"specversion":"1.0","id":"2","source":"/s","type":"t","data_base64":"3q2+7w=="}"#;
    let mut out = [0u8; 512];
    let mut out_b64 = [0u8; 512];
    let ((n, m, body_ok), allocs) = allocations(|| {
        let mut buf = [0u8; 64];
        let ev = parse::json::parse_event(input, &mut Scratch::new(&mut buf)).unwrap();
        let n = json::to_slice(&ev, &mut out).unwrap();
        let mut buf = [0u8; 64];
        let ev = parse::json::parse_event(input_b64, &mut Scratch::new(&mut buf)).unwrap();
        let m = json::to_slice(&ev, &mut out_b64).unwrap();
        let mut body = [0u8; 16];
        let mut w = SliceWriter::new(&mut body);
        binary::write_body(&ev, &mut w).unwrap();
        (n, m, w.written() == [0xde, 0xad, 0xbe, 0xef])
    });
    assert_eq!(allocs, 0);
    assert!(body_ok);
    assert_eq!(
        &out[..n],
        br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":{"a":[1,2,{"b":"c\"d"}]}}"#
    );
    assert_eq!(&out_b64[..m], input_b64);
}

const BATCH: &[u8] = br#"[
  {"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"x":1}},
  {"specversion":"1.0","id":"2 \"two\"","source":"/s","type":"t","ossaagentid":"a\u00e9","data_base64":"AAEC"},
  {"specversion":"1.0","id":"3","source":"urn:x","type":"t","datacontenttype":"text/plain","data":"line\nbreak"}
]"#;

#[test]
fn parsing_a_batch() {
    let ((count, ok), allocs) = allocations(|| {
        let mut parser = BatchParser::new(BATCH).unwrap();
        let mut buf = [0u8; 128];
        let mut count = 0;
        let mut ok = true;
        while let Some(ev) = parser.next_event(&mut buf) {
            let ev = ev.unwrap();
            ok &= match count {
                0 => matches!(ev.data(), Some(Data::Json("{\"x\":1}"))),
                1 => ev.id() == "2 \"two\"" && ev.ossa_agent_id() == Some("aé"),
                _ => matches!(ev.data(), Some(Data::Text("line\nbreak"))),
            };
            count += 1;
        }
        (count, ok)
    });
    assert_eq!(allocs, 0);
    assert_eq!(count, 3);
    assert!(ok);
}

#[test]
fn parsing_http_binary_mode_with_percent_encoded_values() {
    let headers: [(&str, &[u8]); 11] = [
        ("Host", b"example.com"),
        ("CE-SpecVersion", b"1.0"),
        ("ce-id", b"id%20with%20space"),
        ("ce-source", b"/agents/researcher"),
        ("ce-type", b"dev.ossa.tool.called"),
        ("ce-subject", b"Euro%20%E2%82%AC%20%F0%9F%98%80%20100%25"),
        ("ce-time", b"2025-01-01T00:00:00-08:00"),
        ("Ce-OssaAgentId", b"\"quoted \\\"agent\\\"\""),
        ("ce-retries", b"3"),
        ("ce-dataschema", b"https://example.com/s?q=%2522x%2522"),
        ("Content-Type", b"application/json; charset=utf-8"),
    ];
    let body = br#"{"tool":"web_search"}"#;
    let (ok, allocs) = allocations(|| {
        let mut buf = [0u8; 256];
        let msg = parse::http::parse(headers, body, &mut Scratch::new(&mut buf)).unwrap();
        let parse::http::Message::Event(ev) = msg else {
            return false;
        };
        ev.id() == "id with space"
            && ev.subject() == Some("Euro € 😀 100%")
            && ev.ossa_agent_id() == Some("quoted \"agent\"")
            && ev.extension("retries") == Some(ExtValue::String("3"))
            && ev.dataschema() == Some("https://example.com/s?q=%22x%22")
            && ev.datacontenttype() == Some("application/json; charset=utf-8")
            && matches!(ev.data(), Some(Data::Json(_)))
    });
    assert_eq!(allocs, 0);
    assert!(ok);
}

#[test]
fn http_binary_round_trip_through_stack_buffers() {
    let call = ossa::ToolCalled {
        tool: "web_search",
        call_id: Some("c1"),
        arguments: Some(RawJson::new(ARGS).unwrap()),
    };
    let ev = header_test_event(&call);
    let (same, allocs) = allocations(|| {
        // Encode every header value into one stack buffer, remembering the spans.
        let mut store = [0u8; 1024];
        let mut spans = [(0usize, 0usize, ""); 16];
        let mut n = 0;
        let mut used = 0;
        for h in binary::headers(&ev, Binding::Http) {
            let mut w = SliceWriter::new(&mut store[used..]);
            h.value().write_to(&mut w).unwrap();
            let len = w.len();
            spans[n] = (used, used + len, h.attribute());
            used += len;
            n += 1;
        }
        let mut names = [[0u8; 32]; 16];
        let mut name_lens = [0usize; 16];
        for (i, h) in binary::headers(&ev, Binding::Http).enumerate() {
            name_lens[i] = h.name().write_into(&mut names[i]).unwrap().len();
        }
        let mut body = [0u8; 256];
        let mut bw = SliceWriter::new(&mut body);
        binary::write_body(&ev, &mut bw).unwrap();
        let body = bw.into_written();
        let ct = binary::content_type(&ev).unwrap();
        let header_iter = (0..n)
            .map(|i| {
                let name = std::str::from_utf8(&names[i][..name_lens[i]]).unwrap();
                (name, &store[spans[i].0..spans[i].1])
            })
            .chain(core::iter::once(("Content-Type", ct.as_bytes())));
        let mut buf = [0u8; 512];
        let parsed =
            parse::http::parse_binary(header_iter, body, &mut Scratch::new(&mut buf)).unwrap();
        // A `Serialize` payload comes back as the JSON text it was written as.
        let expected = ev
            .to_builder()
            .data(Data::Json(std::str::from_utf8(body).unwrap()))
            .build()
            .unwrap();
        parsed.same_as(&expected, false) && !parsed.same_as(&ev, false)
    });
    assert_eq!(allocs, 0);
    assert!(same);
}

#[test]
fn parsing_kafka_records() {
    let binary_headers: [(&str, &[u8]); 7] = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"1234-1234-1234"),
        ("ce_type", b"dev.ossa.tool.called"),
        ("ce_source", b"/agents/researcher"),
        ("ce_subject", "Euro € 😀 100%".as_bytes()),
        ("ce_ossaagentid", b"researcher"),
        ("content-type", b"application/json"),
    ];
    let structured_headers: [(&str, &[u8]); 1] = [(
        "content-type",
        b"application/cloudevents+json; charset=utf-8",
    )];
    let structured = br#"{"specversion":"1.0","id":"9","source":"/s","type":"t","ossatraceid":"abc","data":[1,2,3]}"#;
    let value = br#"{"tool":"web_search","arguments":{"q":"x"}}"#;
    let ((a, b), allocs) = allocations(|| {
        let mut buf = [0u8; 128];
        let rec = parse::kafka::parse(
            binary_headers,
            Some(b"key-1"),
            Some(value),
            &mut Scratch::new(&mut buf),
        )
        .unwrap();
        let a = rec.key == Some(&b"key-1"[..])
            && rec.event.subject() == Some("Euro € 😀 100%")
            && rec.event.ossa_agent_id() == Some("researcher")
            && matches!(rec.event.data(), Some(Data::Json(_)));
        let mut buf = [0u8; 128];
        let rec = parse::kafka::parse(
            structured_headers,
            None,
            Some(structured),
            &mut Scratch::new(&mut buf),
        )
        .unwrap();
        let b = rec.key.is_none() && rec.event.ossa_trace_id() == Some("abc");
        (a, b)
    });
    assert_eq!(allocs, 0);
    assert!(a && b);
}

#[test]
fn rejecting_invalid_input_allocates_nothing_either() {
    let inputs: [&[u8]; 6] = [
        br#"{"specversion":"1.0","id":"1","source":"/s"}"#,
        br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","BadName":1}"#,
        br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","averyveryveryverylongextensionnamethatiscut":[1]}"#,
        br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"2018-02-30T00:00:00Z"}"#,
        br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"#,
        br#"[1,2]"#,
    ];
    let (errors, allocs) = allocations(|| {
        let mut errors = 0;
        for input in inputs {
            let mut buf = [0u8; 64];
            errors +=
                usize::from(parse::json::parse_event(input, &mut Scratch::new(&mut buf)).is_err());
        }
        let bad = Event::builder().id("").source("not a uri").ty("t").build();
        errors += usize::from(bad.is_err());
        let headers: [(&str, &[u8]); 3] = [
            ("ce-specversion", b"1.0"),
            ("ce-id", b"%ZZ"),
            ("ce-type", b"t"),
        ];
        let mut buf = [0u8; 64];
        errors += usize::from(
            parse::http::parse_binary(headers, &[], &mut Scratch::new(&mut buf)).is_err(),
        );
        errors
    });
    assert_eq!(allocs, 0);
    assert_eq!(errors, 8);
}

#[test]
fn timestamps_ids_and_comparisons() {
    let ((same, len), allocs) = allocations(|| {
        let t = Timestamp::parse("1985-04-12T23:20:50.52-00:00").unwrap();
        let mut buf = [0u8; Timestamp::MAX_LEN];
        let len = t.write_to(&mut buf).len();
        let id = EventId::from_random_bytes([1; 16]);
        let a = Event::builder()
            .id(id.as_str())
            .source("/s")
            .ty("t")
            .time(t)
            .build()
            .unwrap();
        let b = a
            .to_builder()
            .extension("x", ExtValue::Binary(b"foo"))
            .build()
            .unwrap();
        let c = a
            .to_builder()
            .extension("x", ExtValue::String("Zm9v"))
            .build()
            .unwrap();
        (
            b.same_as(&c, false) && b.same_as(&c, true) && !a.same_as(&b, false),
            len,
        )
    });
    assert_eq!(allocs, 0);
    assert!(same);
    assert_eq!(len, "1985-04-12T23:20:50.52-00:00".len());
}

/// The std crate's side: `Encoded::new` (what `emit()` does after building,
/// with a sent event's buffer when it has one: see the next test) makes one
/// allocation an event, the event's own exact-size buffer, in
/// every encoding and whatever the event's size; before, a first guess of
/// 640 bytes cost a reallocation for every larger event (the typical
/// `tool.called` with its `traceparent` is one).
#[test]
fn the_std_encoded_form_is_one_allocation_an_event() {
    use ossa_events::sink::{Encoded, Encoding};
    let big_text = "x".repeat(5_000);
    let data = [
        Data::Json(r#"{"n":1}"#),
        Data::Json(ARGS),
        Data::Text(&big_text),
    ];
    for encoding in [Encoding::Json, Encoding::HttpBinary, Encoding::KafkaBinary] {
        for d in &data {
            let ev = Event::builder()
                .id("42424242-4242-4242-8242-424242424242")
                .source("/agents/researcher")
                .ty("dev.example.note")
                .ossa_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
                .ossa_span_id("00f067aa0ba902b7")
                .traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .extension_str("note", "a \"quoted\" value, a \\ and ünïcode")
                .data(*d)
                .build()
                .unwrap();
            // This thread's scratch grows on its first events.
            Encoded::new(&ev, Encoding::Json).unwrap();
            Encoded::new(&ev, encoding).unwrap();
            let (enc, allocs) = allocations(|| Encoded::new(&ev, encoding).unwrap());
            assert_eq!(allocs, 1, "{encoding:?}, {} bytes", enc.size());
            let again = Encoded::new(&ev, encoding).unwrap();
            assert_eq!(enc.body(), again.body());
            assert_eq!(enc.size(), again.size());
        }
    }
}

/// `Emitter::emit` on the caller's thread: one allocation an event (the
/// encoded event) while no batch has come back, none once the worker has
/// sent some: their buffers are reused (`sink::pool`). The worker is idle
/// while the calls are counted, so that nothing it does is counted. Only
/// this test in the binary emits, so nothing else takes from the pool.
#[test]
fn std_emit_is_one_allocation_an_event_and_none_once_buffers_come_back() {
    use std::time::Duration;
    let emitter = || {
        ossa_events::Emitter::builder("/agents/researcher")
            .sink(ossa_events::sink::NullSink::new())
            .batch_size(100_000)
            .flush_interval(Duration::from_secs(3600))
            .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .span_id("00f067aa0ba902b7")
            .build()
            .unwrap()
    };
    let call = ossa::ToolCalled {
        tool: "web_search",
        call_id: Some("call-0001"),
        arguments: Some(RawJson::new(ARGS).unwrap()),
    };
    let measured = emitter();
    // Its queue grows to its size on a first round, not in the count.
    for _ in 0..200 {
        measured.emit_ossa(&call).unwrap();
    }
    measured.flush().unwrap();
    // A second emitter sends 200 events and stops: once its worker has
    // ended, their buffers are in the pool.
    let other = emitter();
    for _ in 0..200 {
        other.emit_ossa(&call).unwrap();
    }
    assert_eq!(other.shutdown().unwrap().delivered, 200);
    let (_, reused) = allocations(|| {
        for _ in 0..100 {
            measured.emit_ossa(&call).unwrap();
        }
    });
    // At most the stash this thread keeps buffers in.
    assert!(reused <= 1, "{reused} allocations for 100 emits");
    assert_eq!(measured.flush().unwrap().delivered, 300);
}
