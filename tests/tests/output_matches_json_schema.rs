//! Everything our JSON writer produces validates against the CloudEvents JSON
//! schema (tests/fixtures/cloudevents.schema.json, a copy of the spec's
//! cloudevents.json) with format validation on, and is well-formed JSON; JSON
//! Lines output has one line per event and batch output is a JSON array.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use ossa_events::format::json::{to_vec, write_batch, write_json, write_jsonl};
use ossa_events::parse::json::{BatchParser, parse_event};
use ossa_events::{Data, Event, EventBuilder, ExtValue, RawJson, Scratch, Timestamp, ossa};
use serde_json::{Value, json};

const SCHEMA: &str = include_str!("../fixtures/cloudevents.schema.json");

fn schema() -> Value {
    serde_json::from_str(SCHEMA).unwrap()
}

fn validator(formats: bool) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(formats)
        .build(&schema())
        .unwrap()
}

/// Checks `bytes` is one JSON value that the schema accepts, and that our own
/// parser reads it back.
#[track_caller]
fn assert_valid_output(v: &jsonschema::Validator, bytes: &[u8]) -> Value {
    let text = std::str::from_utf8(bytes).expect("output is UTF-8");
    let doc: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    let errors: Vec<String> = v
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "schema errors {errors:?} in {text}");
    let mut buf = vec![0u8; 1 << 16];
    parse_event(bytes, &mut Scratch::new(&mut buf))
        .unwrap_or_else(|e| panic!("our parser rejects our output ({e}): {text}"));
    doc
}

fn base(id: &'static str) -> EventBuilder<'static> {
    Event::builder().id(id).source("/s").ty("com.example.test")
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

#[derive(serde::Serialize)]
struct Inner {
    ok: bool,
    score: Option<f64>,
}

#[derive(serde::Serialize)]
struct Payload {
    name: String,
    count: u32,
    ratio: f64,
    negative: i64,
    tags: Vec<&'static str>,
    inner: Inner,
    missing: Option<Inner>,
    map: BTreeMap<String, i32>,
    note: &'static str,
    unit: (),
    tuple: (u8, char),
}

fn payload() -> Payload {
    Payload {
        name: "widget".into(),
        count: 3,
        ratio: 0.25,
        negative: -9_007_199_254_740_993,
        tags: vec!["a", "b"],
        inner: Inner {
            ok: true,
            score: Some(1e-7),
        },
        missing: None,
        map: [("x".to_owned(), 1), ("y".to_owned(), -2)]
            .into_iter()
            .collect(),
        note: "line\nbreak \"quoted\" \\ tab\t \u{1} € 😀 \u{2028}",
        unit: (),
        tuple: (7, 'ß'),
    }
}

/// Runs `f` with one event of every shape our model can express.
fn with_all_events<R>(f: impl FnOnce(&[Event<'_>]) -> R) -> R {
    let all_bytes: Vec<u8> = (0..=255).collect();
    let p = payload();
    let t = ts("2018-04-05T17:31:00Z");
    let events = vec![
        // Every core attribute and every extension type.
        base("all-attributes")
            .subject("sub \"quoted\" € 😀")
            .dataschema("https://example.com/schemas/v1.json")
            .time(ts("2018-04-05T17:31:00.123456789+02:00"))
            .extension(
                "exstring",
                ExtValue::String("value with \\ and \" and \u{2028}"),
            )
            .extension("exinteger", ExtValue::Integer(i32::MIN))
            .extension("exinteger2", ExtValue::Integer(i32::MAX))
            .extension("exboolean", ExtValue::Boolean(true))
            .extension(
                "exuri",
                ExtValue::Uri("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"),
            )
            .extension("exuriref", ExtValue::UriRef("../relative/ref?q=1#f"))
            .extension(
                "extimestamp",
                ExtValue::Timestamp(ts("1990-12-31T15:59:59.5-08:00")),
            )
            .extension("exbinary", ExtValue::Binary(b"\x00\xff\x10binary"))
            .data_text("text/plain; charset=utf-8", "hello")
            .build()
            .unwrap(),
        // Required attributes only.
        base("minimal").build().unwrap(),
        // Source shapes from the schema's examples.
        base("src-mailto")
            .source("mailto:cncf-wg-serverless@lists.cncf.io")
            .build()
            .unwrap(),
        base("src-relative")
            .source("cloudevents/spec/pull/123")
            .build()
            .unwrap(),
        base("src-phone").source("1-555-123-4567").build().unwrap(),
        base("src-https")
            .source("https://github.com/cloudevents")
            .build()
            .unwrap(),
        // Time forms.
        base("time-utc").time(t).build().unwrap(),
        base("time-lower")
            .time_str("2018-04-05t17:31:00.5z")
            .build()
            .unwrap(),
        base("time-offset")
            .time_str("2018-04-05T17:31:00-05:30")
            .build()
            .unwrap(),
        base("time-unknown-offset")
            .time_str("2018-04-05T17:31:00-00:00")
            .build()
            .unwrap(),
        base("time-leap")
            .time_str("2016-12-31T23:59:60Z")
            .build()
            .unwrap(),
        // Every data kind.
        base("json-object")
            .data_json("{\n  \"a\" : [1, 2.5, -3e2, true, null, \"s\"],\n  \"b\" : {}\n}")
            .build()
            .unwrap(),
        base("json-number").data_json("1.5").build().unwrap(),
        base("json-string")
            .data_json(r#""I'm just a string""#)
            .build()
            .unwrap(),
        base("json-null").data_json("null").build().unwrap(),
        base("json-array").data_json("[]").build().unwrap(),
        base("json-untyped")
            .data(Data::Json(r#"{"k":"v"}"#))
            .build()
            .unwrap(),
        base("json-plus")
            .datacontenttype("application/vnd.example+json")
            .data(Data::Json("[1]"))
            .build()
            .unwrap(),
        base("text-xml")
            .data_text("text/xml", r#"<much wow="xml"/>"#)
            .build()
            .unwrap(),
        base("text-multiline")
            .data_text("text/plain", "line 1\nline 2\r\n\ttabbed \u{0} nul")
            .build()
            .unwrap(),
        base("text-json-type")
            .data_text("application/json", "a string")
            .build()
            .unwrap(),
        base("binary-typed")
            .data_binary("application/octet-stream", &all_bytes)
            .build()
            .unwrap(),
        base("binary-untyped")
            .data(Data::Binary(&all_bytes))
            .build()
            .unwrap(),
        base("binary-empty")
            .data_binary("application/octet-stream", b"")
            .build()
            .unwrap(),
        base("base64")
            .datacontenttype("image/png")
            .data(Data::Base64("iVBORw0KGgo="))
            .build()
            .unwrap(),
        base("serialize").data_serialize(&p).build().unwrap(),
    ];
    f(&events)
}

/// Runs `f` with one event of each of the 11 OSSA types.
fn with_ossa_events<R>(f: impl FnOnce(&[Event<'_>]) -> R) -> R {
    let ctx = ossa::Context {
        agent_id: Some("researcher"),
        interaction_id: Some("conv-42"),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        span_id: Some("00f067aa0ba902b7"),
    };
    let args = RawJson::new(r#"{ "query" : "rust no_std", "limit": 5 }"#).unwrap();
    let out = RawJson::new(r#"{"answer":"42","sources":["a","b"]}"#).unwrap();
    let err = ossa::ErrorInfo {
        message: "timed out \"badly\"",
        code: Some("timeout"),
        retryable: Some(true),
    };
    let ws = ossa::WorkflowStarted {
        workflow_id: "wf-1",
        name: Some("research"),
        input: Some(args),
    };
    let wc = ossa::WorkflowCompleted {
        workflow_id: "wf-1",
        status: "success",
        output: Some(out),
        duration_ms: Some(1234),
    };
    let ast = ossa::AgentStarted {
        agent_id: "researcher",
        name: Some("Researcher"),
        version: Some("1.2.3"),
        input: Some(args),
    };
    let ac = ossa::AgentCompleted {
        agent_id: "researcher",
        status: "success",
        output: Some(out),
        duration_ms: Some(99),
    };
    let af = ossa::AgentFailed {
        agent_id: "researcher",
        error: err,
        duration_ms: None,
    };
    let tst = ossa::TurnStarted {
        turn: 1,
        input: Some(RawJson::new(r#""hello""#).unwrap()),
    };
    let tco = ossa::TurnCompleted {
        turn: 1,
        output: Some(out),
        usage: Some(ossa::TokenUsage {
            input_tokens: 1000,
            output_tokens: u64::MAX,
        }),
        duration_ms: Some(0),
    };
    let tc = ossa::ToolCalled {
        tool: "web_search",
        call_id: Some("call-1"),
        arguments: Some(args),
    };
    let tcd = ossa::ToolCompleted {
        tool: "web_search",
        call_id: Some("call-1"),
        result: Some(out),
        duration_ms: Some(7),
    };
    let tf = ossa::ToolFailed {
        tool: "web_search",
        call_id: None,
        error: ossa::ErrorInfo {
            message: "no network",
            code: None,
            retryable: None,
        },
        duration_ms: Some(3),
    };
    let su = ossa::StateUpdated {
        key: "memory.notes",
        value: Some(RawJson::new("[1,2,3]").unwrap()),
    };
    let b = |id: &'static str| {
        Event::builder()
            .id(id)
            .source("/agents/researcher")
            .time(ts("2025-01-02T03:04:05.678Z"))
            .ossa_context(&ctx)
    };
    let events = vec![
        b("o1").ossa(&ws).build().unwrap(),
        b("o2").ossa(&wc).build().unwrap(),
        b("o3").ossa(&ast).build().unwrap(),
        b("o4").ossa(&ac).build().unwrap(),
        b("o5").ossa(&af).build().unwrap(),
        b("o6").ossa(&tst).build().unwrap(),
        b("o7").ossa(&tco).build().unwrap(),
        b("o8").ossa(&tc).build().unwrap(),
        b("o9").ossa(&tcd).build().unwrap(),
        b("o10").ossa(&tf).build().unwrap(),
        b("o11").ossa(&su).build().unwrap(),
    ];
    f(&events)
}

// -------------------------------------------------------------------- tests

#[test]
fn schema_asserts_formats_uri_uri_reference_and_date_time() {
    let strict = validator(true);
    let lax = validator(false);
    let ok = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t",
        "dataschema": "https://example.com/s", "time": "2018-04-05T17:31:00Z"});
    assert!(strict.is_valid(&ok));
    for (member, bad) in [
        ("source", "has space"),
        ("source", "a%zz"),
        ("dataschema", "relative/path"),
        ("dataschema", "has space"),
        ("time", "2018-04-05 17:31:00Z"),
        ("time", "2018-13-05T17:31:00Z"),
        ("time", "not a time"),
    ] {
        let mut doc = ok.clone();
        doc[member] = json!(bad);
        assert!(
            !strict.is_valid(&doc),
            "format check must reject {member}: {bad:?}"
        );
        // Only the format check catches it: without formats the document passes.
        assert!(
            lax.is_valid(&doc),
            "{member}: {bad:?} fails for another reason"
        );
    }
}

#[test]
fn schema_rejects_documents_that_break_the_basic_rules() {
    let v = validator(true);
    let ok = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"});
    assert!(v.is_valid(&ok));
    for required in ["specversion", "id", "source", "type"] {
        let mut doc = ok.clone();
        doc.as_object_mut().unwrap().remove(required);
        assert!(!v.is_valid(&doc), "missing {required}");
        let mut doc = ok.clone();
        doc[required] = json!("");
        assert!(!v.is_valid(&doc), "empty {required}");
        let mut doc = ok.clone();
        doc[required] = json!(1);
        assert!(!v.is_valid(&doc), "number {required}");
    }
    assert!(!v.is_valid(&json!([ok])), "an event is an object");
}

#[test]
fn every_attribute_extension_type_and_data_kind_validates() {
    let v = validator(true);
    with_all_events(|events| {
        assert!(events.len() >= 25);
        for ev in events {
            let out = to_vec(ev).unwrap();
            let doc = assert_valid_output(&v, &out);
            assert_eq!(doc["id"], ev.id());
            assert_eq!(doc["specversion"], "1.0");
        }
    });
}

#[test]
fn extension_types_map_to_the_right_json_types() {
    let v = validator(true);
    with_all_events(|events| {
        let ev = &events[0];
        let doc = assert_valid_output(&v, &to_vec(ev).unwrap());
        assert_eq!(doc["exstring"], "value with \\ and \" and \u{2028}");
        assert_eq!(doc["exinteger"], json!(i32::MIN));
        assert_eq!(doc["exinteger2"], json!(i32::MAX));
        assert_eq!(doc["exboolean"], json!(true));
        assert_eq!(
            doc["exuri"],
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"
        );
        assert_eq!(doc["exuriref"], "../relative/ref?q=1#f");
        assert_eq!(doc["extimestamp"], "1990-12-31T15:59:59.5-08:00");
        assert_eq!(doc["exbinary"], "AP8QYmluYXJ5");
        assert_eq!(doc["subject"], "sub \"quoted\" € 😀");
        assert_eq!(doc["time"], "2018-04-05T17:31:00.123456789+02:00");
        assert_eq!(doc["dataschema"], "https://example.com/schemas/v1.json");
        assert_eq!(doc["datacontenttype"], "text/plain; charset=utf-8");
        assert_eq!(doc["data"], "hello");
    });
}

#[test]
fn data_kinds_are_written_as_the_json_format_requires() {
    let v = validator(true);
    with_all_events(|events| {
        let by_id: BTreeMap<&str, Value> = events
            .iter()
            .map(|ev| (ev.id(), assert_valid_output(&v, &to_vec(ev).unwrap())))
            .collect();
        assert_eq!(
            by_id["json-object"]["data"],
            json!({"a": [1, 2.5, -3e2, true, null, "s"], "b": {}})
        );
        assert_eq!(by_id["json-number"]["data"], json!(1.5));
        assert_eq!(by_id["json-string"]["data"], json!("I'm just a string"));
        assert_eq!(by_id["json-null"]["data"], Value::Null);
        assert!(by_id["json-null"].as_object().unwrap().contains_key("data"));
        assert_eq!(by_id["json-untyped"]["data"], json!({"k": "v"}));
        assert!(by_id["json-untyped"].get("datacontenttype").is_none());
        assert_eq!(by_id["text-xml"]["data"], json!(r#"<much wow="xml"/>"#));
        assert_eq!(
            by_id["text-multiline"]["data"],
            json!("line 1\nline 2\r\n\ttabbed \u{0} nul")
        );
        let all: Vec<u8> = (0..=255).collect();
        for id in ["binary-typed", "binary-untyped"] {
            let b64 = by_id[id]["data_base64"].as_str().unwrap();
            assert_eq!(decode_b64(b64), all, "{id}");
            assert!(by_id[id].get("data").is_none());
        }
        assert!(by_id["binary-untyped"].get("datacontenttype").is_none());
        assert_eq!(by_id["binary-empty"]["data_base64"], "");
        assert_eq!(by_id["base64"]["data_base64"], "iVBORw0KGgo=");
        let p = serde_json::to_value(payload()).unwrap();
        assert_eq!(by_id["serialize"]["data"], p);
        assert_eq!(by_id["serialize"]["datacontenttype"], "application/json");
    });
}

/// Decodes standard padded Base64 (test helper, independent of the crate's own).
fn decode_b64(s: &str) -> Vec<u8> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = acc << 6 | A.iter().position(|&a| a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn every_ossa_payload_validates() {
    let v = validator(true);
    with_ossa_events(|events| {
        let mut types = BTreeSet::new();
        for ev in events {
            let doc = assert_valid_output(&v, &to_vec(ev).unwrap());
            types.insert(doc["type"].as_str().unwrap().to_owned());
            assert_eq!(doc["datacontenttype"], "application/json");
            assert!(doc["data"].is_object(), "{doc}");
            assert_eq!(doc["ossaagentid"], "researcher");
            assert_eq!(doc["ossainteractionid"], "conv-42");
            assert_eq!(doc["ossatraceid"], "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(doc["ossaspanid"], "00f067aa0ba902b7");
            assert_eq!(doc["source"], "/agents/researcher");
        }
        let want: BTreeSet<String> = ossa::EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect();
        assert_eq!(types, want, "all 11 OSSA types covered");
    });
}

#[test]
fn ossa_payload_data_has_the_documented_members() {
    let v = validator(true);
    with_ossa_events(|events| {
        let docs: BTreeMap<String, Value> = events
            .iter()
            .map(|ev| {
                (
                    ev.ty().to_owned(),
                    assert_valid_output(&v, &to_vec(ev).unwrap()),
                )
            })
            .collect();
        let args = json!({"query": "rust no_std", "limit": 5});
        let out = json!({"answer": "42", "sources": ["a", "b"]});
        assert_eq!(
            docs[ossa::TOOL_CALLED]["data"],
            json!({"tool": "web_search", "call_id": "call-1", "arguments": args})
        );
        assert_eq!(docs[ossa::TOOL_CALLED]["subject"], "web_search");
        assert_eq!(
            docs[ossa::TOOL_FAILED]["data"],
            json!({"tool": "web_search", "error": {"message": "no network"}, "duration_ms": 3})
        );
        assert_eq!(
            docs[ossa::AGENT_FAILED]["data"],
            json!({"agent_id": "researcher", "error": {"message": "timed out \"badly\"", "code": "timeout", "retryable": true}})
        );
        assert_eq!(
            docs[ossa::TURN_COMPLETED]["data"],
            json!({"turn": 1, "output": out, "usage": {"input_tokens": 1000, "output_tokens": u64::MAX}, "duration_ms": 0})
        );
        assert!(docs[ossa::TURN_STARTED].get("subject").is_none());
        assert_eq!(
            docs[ossa::STATE_UPDATED]["data"],
            json!({"key": "memory.notes", "value": [1, 2, 3]})
        );
        assert_eq!(docs[ossa::STATE_UPDATED]["subject"], "memory.notes");
        assert_eq!(docs[ossa::WORKFLOW_STARTED]["subject"], "wf-1");
    });
}

#[test]
fn json_lines_output_has_one_line_per_event() {
    let v = validator(true);
    with_all_events(|a| {
        with_ossa_events(|b| {
            let events: Vec<&Event<'_>> = a.iter().chain(b.iter()).collect();
            let mut out = Vec::new();
            for ev in &events {
                write_jsonl(ev, &mut out).unwrap();
            }
            assert_eq!(out.last(), Some(&b'\n'));
            let text = String::from_utf8(out).unwrap();
            let lines: Vec<&str> = text.split_terminator('\n').collect();
            assert_eq!(lines.len(), events.len(), "one line per event");
            assert_eq!(text.matches('\n').count(), events.len());
            for (line, ev) in lines.iter().zip(&events) {
                assert!(!line.contains('\r'), "{line}");
                let doc = assert_valid_output(&v, line.as_bytes());
                assert_eq!(doc["id"], ev.id());
                // The line is exactly the structured form.
                let mut single = Vec::new();
                write_json(ev, &mut single).unwrap();
                assert_eq!(line.as_bytes(), &single[..]);
            }
        });
    });
}

#[test]
fn batch_output_is_a_json_array_of_valid_events() {
    let v = validator(true);
    with_all_events(|a| {
        with_ossa_events(|b| {
            let events: Vec<&Event<'_>> = a.iter().chain(b.iter()).collect();
            let mut out = Vec::new();
            write_batch(events.iter().copied(), &mut out).unwrap();
            let doc: Value = serde_json::from_slice(&out).unwrap();
            let arr = doc.as_array().expect("batch is a JSON array");
            assert_eq!(arr.len(), events.len());
            for (el, ev) in arr.iter().zip(&events) {
                let errors: Vec<String> = v.iter_errors(el).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{errors:?} in {el}");
                assert_eq!(el["id"], ev.id());
            }
            // Our batch parser reads it back, event for event.
            let mut p = BatchParser::new(&out).unwrap();
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0;
            while let Some(r) = p.next_event(&mut buf) {
                let back = r.unwrap();
                assert_eq!(back.id(), events[n].id());
                n += 1;
            }
            assert_eq!(n, events.len());
        });
    });
    // An empty batch is `[]`.
    let mut out = Vec::new();
    write_batch(std::iter::empty::<&Event<'_>>(), &mut out).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), json!([]));
}

#[test]
fn parsed_spec_style_events_re_encode_to_valid_documents() {
    // Attributes given as null (allowed on input) are simply left out on
    // output; `"data": null` is an explicit null payload and is kept.
    let v = validator(true);
    let input = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":null,
        "time":null,"dataschema":null,"datacontenttype":null,"ext":null,"data":null}"#;
    let mut buf = [0u8; 256];
    let ev = parse_event(input, &mut Scratch::new(&mut buf)).unwrap();
    let doc = assert_valid_output(&v, &to_vec(&ev).unwrap());
    assert_eq!(
        doc,
        json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": null})
    );
}
