//! Live interop with the official CloudEvents Python SDK (PyPI
//! `cloudevents`, pinned to [`SDK_VERSION`], its 2.x `cloudevents.core` API:
//! `core.bindings.http`, `core.bindings.kafka`, `core.formats.json`).
//!
//! The SDK runs in a child process, `tests/interop/python/ce_py.py`, that
//! talks JSON lines over stdin/stdout; it is found through
//! `OSSA_PY_CLOUDEVENTS` (a virtualenv with the SDK), then
//! `$OSSA_TOOLS/py-cloudevents` and `$HOME/.cache/ossa-events-tools/py-cloudevents`
//! (where `bash scripts/test.sh` installs it). Missing, the tests fail and say so.
//!
//! Covered, both ways (what we write is read by the SDK; what the SDK writes
//! is read by our parsers), attribute by attribute and data byte for byte
//! (as JSON values for JSON data):
//!
//! * HTTP binary mode (`http_types::to_request` / `http_types::parse`),
//!   HTTP structured mode, HTTP batched mode (the SDK has no batched mode:
//!   the script splits or joins the JSON array and the SDK's JSON format
//!   reads or writes each element), Kafka binary and structured records
//!   (headers + key + value as our `KafkaSink` produces them, `Encoded`;
//!   `parse::kafka::parse`), no broker;
//! * events: an OSSA `tool.called` as `typical` builds it (the four OSSA
//!   extensions), one with `traceparent`; JSON data (object, array, string,
//!   number, null), text (`text/plain; charset=utf-8`), binary
//!   (`application/octet-stream`, `data_base64` in JSON), no data; subject,
//!   `time` with fractions and offsets, `dataschema` present and absent;
//!   string extensions with space, `%`, `"`, `é` and an emoji (percent-encoded
//!   in HTTP headers), integer and boolean extensions;
//! * over real sockets: our `HttpSink` behind an `Emitter` posting to an HTTP
//!   server in Python that reads with the SDK (binary and structured), and
//!   the SDK posting to our `receiver`.
//!
//! SDK DEVIATIONS (the spec decides; asserted as the spec says for us, and
//! noted where the SDK's reading differs):
//!
//! * the SDK's `CloudEvent` sets `time` to now when an event has none, also
//!   when it *reads* one (spec §3.1.4 `time` is OPTIONAL: a receiver must
//!   not invent it); an event we send without `time` comes back with one;
//! * it writes a boolean extension into a binary-mode header as Python's
//!   `True`/`False` (spec "Type System": Boolean is `true` or `false`); we
//!   read such a header as the string it is (binary mode has no types);
//! * it reads `time` to microseconds (Python `datetime`): nanoseconds are
//!   cut, compared to the microsecond;
//! * it cannot tell JSON `null` data from no data (both `None`);
//! * in binary mode it JSON-serializes only a dict: JSON array data is
//!   written as Python's `str()` (`[1, 'two', None]`) and JSON string data
//!   as its bare text, under `application/json` (HTTP binding §3.1.1, JSON
//!   format §3.1); we refuse such a body (a typed `data` error, `400` from
//!   the receiver). Its structured mode writes both as JSON;
//! * its Kafka binary mode writes an event without data as an empty value
//!   (Kafka binding §3.2.2: no value), which we read as empty data;
//! * it matches JSON media types case-sensitively (`Application/JSON` data
//!   goes into the JSON format as a string of Python's `str()`; RFC 9110
//!   §8.3.1: case-insensitive) — not asserted here;
//! * it writes an integer extension outside the 32-bit range the spec's
//!   Integer has (§ "Type System") into the JSON format; we refuse it with a
//!   typed error (`any_integer_the_sdk_writes_outside_32_bits_is_refused`);
//! * it writes control characters and noncharacters in strings, a `source`
//!   that is no URI-reference and a relative `dataschema`; we refuse each,
//!   in all four encodings
//!   (`what_the_sdk_writes_against_the_spec_is_refused_with_a_typed_error`).
//!
//! The SDK 2.x moved 1.x's `cloudevents.http` / `cloudevents.conversion` /
//! `cloudevents.kafka` to `cloudevents.v1.*` (the 1.x API, kept; its HTTP
//! binary mode writes `a é %` into a header as it is, without the
//! percent-encoding of HTTP binding §3.1.3.2); the new `cloudevents.core`
//! bindings used here encode and decode as §3.1.3.2 says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver as Rx;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ossa_events::format::binary;
use ossa_events::http_types::{self, ContentMode, Message};
use ossa_events::ossa;
use ossa_events::sink::{Encoded, Encoding, HttpMode, HttpSink};
use ossa_events::{
    Attribute, Data, Emitter, Event, ExtValue, Offset, ParseError, RawJson, Scratch, Timestamp,
};
use ossa_events_tests::Carried as Mode;
use ossa_events_tests::typical;
use serde_json::{Value, json};

/// The SDK version `scripts/test.sh` installs (PyPI `cloudevents`).
const SDK_VERSION: &str = "2.2.0";
/// Every wait on the child process.
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The Python side
// ---------------------------------------------------------------------------

/// The Python of the virtualenv that holds the SDK.
fn sdk_python() -> PathBuf {
    let how = "`bash scripts/test.sh` installs it (a virtualenv with PyPI cloudevents \
               into $OSSA_TOOLS/py-cloudevents)";
    if let Some(dir) = std::env::var_os("OSSA_PY_CLOUDEVENTS").filter(|p| !p.is_empty()) {
        let py = PathBuf::from(dir).join("bin/python3");
        assert!(
            py.is_file(),
            "OSSA_PY_CLOUDEVENTS: {} is not a file; {how}",
            py.display()
        );
        return py;
    }
    let tools = std::env::var_os("OSSA_TOOLS")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ossa-events-tools"))
        });
    if let Some(tools) = tools {
        let py = tools.join("py-cloudevents/bin/python3");
        if py.is_file() {
            return py;
        }
    }
    panic!(
        "the CloudEvents Python SDK was not found (OSSA_PY_CLOUDEVENTS, \
         $OSSA_TOOLS/py-cloudevents, $HOME/.cache/ossa-events-tools/py-cloudevents): {how}"
    );
}

/// `ce_py.py` with `arg`: stdin and stdout piped, killed when dropped.
struct Py {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Rx<String>,
}

impl Py {
    fn start(arg: &str) -> Py {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/python/ce_py.py");
        let mut child = Command::new(sdk_python())
            .arg(&script)
            .arg(arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", script.display()));
        let stdout = child.stdout.take().unwrap();
        let lines = ossa_events_tests::lines_of(stdout);
        Py {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// The next line the script prints, as JSON.
    fn next(&self, what: &str) -> Value {
        let line = self.lines.recv_timeout(WAIT).unwrap_or_else(|e| {
            panic!("{what}: no answer from the Python SDK script within {WAIT:?} ({e})")
        });
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}: {e}: {line}"))
    }

    /// One request, its answer; panics on a refusal (`error`).
    fn call(&mut self, what: &str, req: &Value) -> Value {
        let answer = self.try_call(what, req);
        if let Some(e) = answer.get("error") {
            panic!(
                "{what}: the SDK refused it: {e}\n{}",
                answer["trace"].as_str().unwrap_or("")
            );
        }
        answer
    }

    /// One request, its answer as it is (with `error` on a refusal).
    fn try_call(&mut self, what: &str, req: &Value) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{req}").unwrap();
        stdin.flush().unwrap();
        self.next(what)
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        // EOF ends both modes; the kill is for a script that hangs.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

fn unb64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap()).unwrap()
}

// ---------------------------------------------------------------------------
// Fixtures: ours
// ---------------------------------------------------------------------------

const TEXT: &str = "line one\nlíne two ✓ 100% \"done\" 😀";
/// Not UTF-8, so that the SDK keeps it as bytes in binary mode too.
const BYTES: &[u8] = &[0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, b'\r', b'\n', b'"', b'%'];
const AWKWARD: &str = "a b %20 100% \"q\" é 😀 ,;:\\";

static CALL: std::sync::LazyLock<ossa::ToolCalled<'static>> =
    std::sync::LazyLock::new(typical::tool_called);

/// Our events: each data kind, optional attributes present and absent.
fn ours() -> Vec<Event<'static>> {
    let t = |s| Timestamp::parse(s).unwrap();
    let base = |id: &'static str| {
        Event::builder()
            .id(id)
            .source("/agents/researcher")
            .ty("dev.ossa.test")
    };
    vec![
        typical::fixed_event(&CALL),
        Event::builder()
            .id("tp")
            .source("/agents/researcher")
            .time(t("2026-03-14T09:26:53Z"))
            .ossa(&*CALL)
            .ossa_agent_id(typical::AGENT_ID)
            .traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .build()
            .unwrap(),
        base("json-array awkward")
            .subject(AWKWARD)
            .dataschema("https://example.com/schemas/a.json")
            .time(t("2024-02-29T23:59:59.123456789+05:30"))
            .datacontenttype("application/json; charset=utf-8")
            .extension("extstring", ExtValue::String(AWKWARD))
            .extension("extintmin", ExtValue::Integer(i32::MIN))
            .extension("extint", ExtValue::Integer(42))
            .extension("exttrue", ExtValue::Boolean(true))
            .extension("extfalse", ExtValue::Boolean(false))
            .extension("ossaagentid", ExtValue::String("agent é 😀"))
            .extension("exturi", ExtValue::Uri("https://example.com/x?y=1&z=%41"))
            .extension("exturiref", ExtValue::UriRef("/relative/path?q=1"))
            .extension(
                "exttime",
                ExtValue::Timestamp(t("2024-02-29T23:59:59.123456789-00:00")),
            )
            .extension("extbinary", ExtValue::Binary(&[0, 1, 2, 0xfe, 0xff]))
            .data_json(r#"[1, "two", {"three": [3.5, null, true]}, "é 😀"]"#)
            .build()
            .unwrap(),
        base("json-string")
            .time(t("2024-03-01T05:29:59.987-04:00"))
            .data_json(r#""a JSON string é""#)
            .build()
            .unwrap(),
        base("json-number").data_json("-12.5e3").build().unwrap(),
        base("json-null").data_json("null").build().unwrap(),
        base("text")
            .subject("plain")
            .extension("partitionkey", ExtValue::String("agent-7 é"))
            .data_text("text/plain; charset=utf-8", TEXT)
            .build()
            .unwrap(),
        base("binary")
            .data_binary("application/octet-stream", BYTES)
            .build()
            .unwrap(),
        base("none").build().unwrap(),
    ]
}

/// Data as compared: JSON as a value, the rest as bytes.
#[derive(Debug, PartialEq)]
enum DataView {
    Json(Value),
    Bytes(Vec<u8>),
}

fn our_data(ev: &Event<'_>) -> Option<DataView> {
    Some(match ev.data()? {
        Data::Json(_) | Data::Serialize(_) => {
            let mut body = Vec::new();
            binary::write_body(ev, &mut body).unwrap();
            DataView::Json(serde_json::from_slice(&body).unwrap())
        }
        Data::Text(s) => DataView::Bytes(s.as_bytes().to_vec()),
        Data::Binary(b) => DataView::Bytes(b.to_vec()),
        Data::Base64(s) => DataView::Bytes(B64.decode(s).unwrap()),
        other => panic!("data {other:?}"),
    })
}

/// `got` (the script's `describe` of what the SDK read) is our `ev`.
fn assert_sdk_read(what: &str, ev: &Event<'_>, got: &Value, mode: Mode) {
    let attrs = got["attributes"].as_object().unwrap();
    let mut want = serde_json::Map::new();
    want.insert("specversion".into(), json!({"str": "1.0"}));
    want.insert("id".into(), json!({"str": ev.id()}));
    want.insert("source".into(), json!({"str": ev.source()}));
    want.insert("type".into(), json!({"str": ev.ty()}));
    if let Some(s) = ev.subject() {
        want.insert("subject".into(), json!({"str": s}));
    }
    if let Some(s) = ev.dataschema() {
        want.insert("dataschema".into(), json!({"str": s}));
    }
    // Binary mode: the content type header, the effective type.
    let ct = if mode.binary() {
        binary::content_type(ev)
    } else {
        ev.datacontenttype()
    };
    if let Some(ct) = ct {
        want.insert("datacontenttype".into(), json!({"str": ct}));
    }
    for e in ev.extensions() {
        let v = match e.value {
            ExtValue::Integer(i) if !mode.binary() => json!({"int": i}),
            ExtValue::Boolean(b) if !mode.binary() => json!({"bool": b}),
            ref v => json!({"str": v.canonical().to_string()}),
        };
        want.insert(e.name.to_owned(), v);
    }
    let mut rest = attrs.clone();
    let time = rest.remove("time");
    assert_eq!(rest, want, "{what} ({mode:?}): attributes the SDK read");
    match (ev.time(), time) {
        (Some(ours), Some(t)) => assert_same_time(what, ours, t["time"].as_str().unwrap()),
        // SDK DEVIATION: its CloudEvent sets a missing `time` to now, also
        // on reading (spec §3.1.4: OPTIONAL). We sent none.
        (None, Some(t)) => assert!(t["time"].is_string(), "{what}"),
        (a, b) => panic!("{what} ({mode:?}): time ours {a:?}, sdk {b:?}"),
    }
    assert_eq!(
        sdk_data(what, &got["data"], our_data(ev).as_ref()),
        our_data(ev),
        "{what} ({mode:?}): data"
    );
}

/// The SDK's data, read as `want` is (it hands a JSON string over as
/// Python `str`, and UTF-8 bytes of a binary body too).
fn sdk_data(what: &str, d: &Value, want: Option<&DataView>) -> Option<DataView> {
    if d.is_null() {
        // SDK DEVIATION: JSON `null` data and no data are both `None`.
        return match want {
            Some(DataView::Json(Value::Null)) => Some(DataView::Json(Value::Null)),
            _ => None,
        };
    }
    Some(match (d["kind"].as_str().unwrap(), want) {
        ("json", _) => DataView::Json(d["value"].clone()),
        ("text", Some(DataView::Json(_))) => DataView::Json(d["value"].clone()),
        ("text", _) => DataView::Bytes(d["value"].as_str().unwrap().as_bytes().to_vec()),
        ("bytes", _) => DataView::Bytes(unb64(&d["base64"])),
        (k, _) => panic!("{what}: data kind {k}"),
    })
}

/// The SDK's `time` (a Python `isoformat`) is `ours` to the microsecond,
/// with the same offset.
fn assert_same_time(what: &str, ours: Timestamp, sdk: &str) {
    let t = Timestamp::parse(sdk).unwrap_or_else(|e| panic!("{what}: sdk time {sdk}: {e}"));
    assert_eq!(
        t.unix_seconds(),
        ours.unix_seconds(),
        "{what}: time {sdk} vs {ours}"
    );
    assert_eq!(
        t.nanos(),
        ours.nanos() / 1000 * 1000,
        "{what}: time {sdk} vs {ours}"
    );
    let minutes = |o: Offset| match o {
        Offset::Minutes(m) => m,
        _ => 0,
    };
    assert_eq!(
        minutes(t.offset()),
        minutes(ours.offset()),
        "{what}: offset {sdk} vs {ours}"
    );
}

/// An HTTP request as the script takes it.
fn http_req(req: &http::Request<Vec<u8>>) -> Value {
    let mut headers = serde_json::Map::new();
    for (n, v) in req.headers() {
        let prev = headers.insert(n.as_str().to_owned(), json!(v.to_str().unwrap()));
        assert!(prev.is_none(), "one {n} header");
    }
    json!({"headers": headers, "body_base64": b64(req.body())})
}

/// A Kafka record as our `KafkaSink` produces it (its key: the
/// `partitionkey` extension, Kafka binding §3.1).
fn kafka_record(ev: &Event<'_>, structured: bool) -> Value {
    let key = ev
        .extension("partitionkey")
        .map(|k| b64(k.canonical().to_string().as_bytes()));
    let mut headers = serde_json::Map::new();
    if structured {
        let enc = Encoded::new(ev, Encoding::Json).unwrap();
        headers.insert(
            "content-type".into(),
            json!(b64(b"application/cloudevents+json; charset=UTF-8")),
        );
        return json!({"headers": headers, "key_base64": key, "value_base64": b64(enc.json())});
    }
    let enc = Encoded::new(ev, Encoding::KafkaBinary).unwrap();
    for (n, v) in enc.headers() {
        headers.insert(n.to_owned(), json!(b64(v.as_bytes())));
    }
    if let Some(ct) = enc.content_type() {
        headers.insert("content-type".into(), json!(b64(ct.as_bytes())));
    }
    // No data is no value (Kafka binding §3.2.2).
    let value = enc.has_data().then(|| b64(enc.body()));
    json!({"headers": headers, "key_base64": key, "value_base64": value})
}

// ---------------------------------------------------------------------------
// Fixtures: the SDK's
// ---------------------------------------------------------------------------

/// Events for the SDK to make: `attributes` as JSON, `data` by kind.
fn sdk_specs() -> Vec<Value> {
    let ossa = json!({
        "id": "sdk-ossa", "source": "/agents/researcher", "type": "dev.ossa.tool.called",
        "subject": "web_search", "time": "2026-03-14T09:26:53.589793+02:00",
        "datacontenttype": "application/json",
        "ossaagentid": typical::AGENT_ID, "ossainteractionid": typical::INTERACTION_ID,
        "ossatraceid": typical::TRACE_ID, "ossaspanid": typical::SPAN_ID,
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    });
    let awkward = json!({
        "id": "sdk-awkward é", "source": "https://example.com/a?b=1#c", "type": "t.awkward",
        "subject": AWKWARD, "dataschema": "https://example.com/schemas/a.json",
        "time": "2024-02-29T23:59:59.123456-04:00",
        "datacontenttype": "application/json; charset=utf-8",
        "partitionkey": "agent-7 é", "extstring": AWKWARD, "extint": 42, "extneg": -7, "exttrue": true, "extfalse": false,
    });
    let min =
        |id: &str| json!({"id": id, "source": "/s", "type": "t", "time": "2024-06-01T12:00:00Z"});
    let with = |id: &str, ct: &str| {
        let mut m = min(id);
        m["datacontenttype"] = json!(ct);
        m
    };
    vec![
        json!({"attributes": ossa, "data": {"kind": "json", "value": typical::data_value()}}),
        json!({"attributes": awkward, "data": {"kind": "json", "value": {"a": [1, "two", {"3": null}, "é 😀"]}}}),
        // SDK DEVIATION (both): in binary mode the SDK JSON-serializes only
        // a dict; a list is written as Python's `str()` (`[1, 'two', None]`)
        // and a str as its bare UTF-8, under `application/json` (HTTP
        // binding §3.1.1 and JSON format §3.1: the body is the data as its
        // content type says, JSON). Its structured mode writes both as JSON.
        // We refuse such a body (`sdk_binary_body_not_json`).
        json!({"attributes": with("sdk-array", "application/json"), "data": {"kind": "json", "value": [1, "two", null, true]},
            "sdk_binary_body_not_json": true}),
        json!({"attributes": with("sdk-text", "text/plain; charset=utf-8"), "data": {"kind": "text", "value": TEXT}}),
        json!({"attributes": with("sdk-bytes", "application/octet-stream"), "data": {"kind": "bytes", "base64": b64(BYTES)}}),
        json!({"attributes": with("sdk-number", "application/json"), "data": {"kind": "json", "value": -12.5}}),
        json!({"attributes": with("sdk-string", "application/json"), "data": {"kind": "json", "value": "é"},
            "sdk_binary_body_not_json": true}),
        json!({"attributes": min("sdk-json-no-type"), "data": {"kind": "json", "value": {"a": [1]}}}),
        json!({"attributes": {"id": "sdk-none", "source": "/s", "type": "t"}, "data": null, "drop_time": true}),
    ]
}

/// Our reading of an SDK-made event is the spec `spec` it was made from.
fn assert_we_read(what: &str, ev: &Event<'_>, spec: &Value, mode: Mode) {
    let a = spec["attributes"].as_object().unwrap();
    let s = |k: &str| a.get(k).map(|v| v.as_str().unwrap());
    assert_eq!(ev.specversion(), "1.0", "{what}");
    assert_eq!(Some(ev.id()), s("id"), "{what}: id");
    assert_eq!(Some(ev.source()), s("source"), "{what}: source");
    assert_eq!(Some(ev.ty()), s("type"), "{what}: type");
    assert_eq!(ev.subject(), s("subject"), "{what}: subject");
    assert_eq!(ev.dataschema(), s("dataschema"), "{what}: dataschema");
    assert_eq!(
        ev.datacontenttype(),
        s("datacontenttype"),
        "{what}: datacontenttype"
    );
    match (ev.time(), s("time")) {
        (None, None) => {}
        (Some(t), Some(want)) => {
            let want = Timestamp::parse(want).unwrap();
            assert_eq!(
                (t.unix_seconds(), t.nanos()),
                (want.unix_seconds(), want.nanos()),
                "{what}: time"
            );
            assert_eq!(t.offset(), want.offset(), "{what}: offset");
        }
        (a, b) => panic!("{what}: time ours {a:?}, spec {b:?}"),
    }
    let builtin = [
        "id",
        "source",
        "type",
        "specversion",
        "subject",
        "dataschema",
        "datacontenttype",
        "time",
    ];
    let exts: Vec<_> = a
        .iter()
        .filter(|(k, _)| !builtin.contains(&k.as_str()))
        .collect();
    assert_eq!(
        ev.extensions().len(),
        exts.len(),
        "{what}: extensions {:?}",
        ev.extensions()
    );
    for (name, v) in exts {
        let got = &ev
            .extensions()
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{what}: extension {name} lost"))
            .value;
        let want = match v {
            Value::String(s) => ExtValue::String(s),
            // Binary mode has no types: the header's text. SDK DEVIATION:
            // Python's `str(True)` is `True`; the spec's Boolean is `true`.
            Value::Bool(b) if mode.binary() => ExtValue::String(if *b { "True" } else { "False" }),
            Value::Bool(b) => ExtValue::Boolean(*b),
            Value::Number(n) if mode.binary() => ExtValue::String(String::leak(n.to_string())),
            Value::Number(n) => ExtValue::Integer(i32::try_from(n.as_i64().unwrap()).unwrap()),
            other => panic!("{what}: {other}"),
        };
        assert_eq!(got, &want, "{what} ({mode:?}): extension {name}");
    }
    if a.contains_key("ossaagentid") {
        assert_eq!(ev.ossa_agent_id(), Some(typical::AGENT_ID), "{what}");
        assert_eq!(
            ev.ossa_interaction_id(),
            Some(typical::INTERACTION_ID),
            "{what}"
        );
        assert_eq!(ev.ossa_trace_id(), Some(typical::TRACE_ID), "{what}");
        assert_eq!(ev.ossa_span_id(), Some(typical::SPAN_ID), "{what}");
        assert_eq!(
            ev.traceparent().map(|tp| tp.parent_id()),
            Some(typical::SPAN_ID),
            "{what}"
        );
    }
    let want = match &spec["data"] {
        Value::Null => None,
        d => Some(match d["kind"].as_str().unwrap() {
            "json" => DataView::Json(d["value"].clone()),
            "text" => DataView::Bytes(d["value"].as_str().unwrap().as_bytes().to_vec()),
            _ => DataView::Bytes(unb64(&d["base64"])),
        }),
    };
    // A JSON body without a type (binary mode) is bytes to us: compare them as JSON.
    let got = match (our_data(ev), &want) {
        // SDK DEVIATION: its Kafka binary mode writes an event without data
        // as an empty value (`KafkaMessage.value` is `bytes`); Kafka binding
        // §3.2.2: no data is no value, and an empty value is empty data,
        // which is what we read.
        (Some(DataView::Bytes(b)), None) if mode == Mode::KafkaBinary && b.is_empty() => None,
        (Some(DataView::Bytes(b)), Some(DataView::Json(_))) if ev.datacontenttype().is_none() => {
            Some(DataView::Json(serde_json::from_slice(&b).unwrap()))
        }
        (got, _) => got,
    };
    assert_eq!(got, want, "{what} ({mode:?}): data");
}

/// The SDK's binary-mode body for JSON data that is not JSON (see
/// `sdk_specs`) is refused with a typed error about `data`.
fn assert_refused_as_not_json(what: &str, r: Result<(), ParseError>) {
    let err = r.expect_err(what);
    assert!(
        matches!(&err, ParseError::Invalid(v) if v.attribute == Attribute::Data),
        "{what}: {err:?}"
    );
}

/// Every event of an HTTP message, parsed by us.
fn parse_http(req: &http::Request<Vec<u8>>, mut each: impl FnMut(usize, &Event<'_>)) -> usize {
    let mut scratch = vec![0u8; 64 * 1024];
    match http_types::parse_request(req, &mut Scratch::new(&mut scratch))
        .unwrap_or_else(|e| panic!("we refused {req:?}: {e}"))
    {
        Message::Event(ev) => {
            each(0, &ev);
            1
        }
        Message::Batch(mut b) => {
            let mut buf = vec![0u8; 64 * 1024];
            let mut n = 0;
            while let Some(ev) = b.next_event(&mut buf) {
                each(n, &ev.unwrap());
                n += 1;
            }
            n
        }
        other => panic!("{other:?}"),
    }
}

/// The script's Kafka record: header names, header values, the value.
fn kafka_parts(rec: &Value) -> (Vec<String>, Vec<Vec<u8>>, Vec<u8>) {
    let h = rec["headers"].as_object().unwrap();
    (
        h.keys().cloned().collect(),
        h.values().map(unb64).collect(),
        unb64(&rec["value_base64"]),
    )
}

/// The script's HTTP message as an `http::Request`.
fn to_http(m: &Value) -> http::Request<Vec<u8>> {
    let mut b = http::Request::builder().method("POST").uri("/");
    for (n, v) in m["headers"].as_object().unwrap() {
        b = b.header(n.as_str(), v.as_str().unwrap());
    }
    b.body(unb64(&m["body_base64"])).unwrap()
}

// ---------------------------------------------------------------------------
// Tests: ours read by the SDK
// ---------------------------------------------------------------------------

#[test]
fn the_pinned_sdk_version_runs() {
    let mut py = Py::start("stdio");
    assert_eq!(
        py.call("version", &json!({"op": "version"}))["version"],
        SDK_VERSION
    );
}

#[test]
fn our_http_messages_and_kafka_records_are_read_by_the_sdk() {
    let mut py = Py::start("stdio");
    let evs = ours();
    for ev in &evs {
        for (mode, cm) in [
            (Mode::HttpBinary, ContentMode::Binary),
            (Mode::HttpStructured, ContentMode::Structured),
        ] {
            let req = http_types::to_request(ev, cm, "http://127.0.0.1/").unwrap();
            if mode == Mode::HttpBinary {
                // HTTP binding §3.1.3.2: visible ASCII but `"`, space, `%` kept.
                for (n, v) in req.headers() {
                    assert!(
                        v.as_bytes()
                            .iter()
                            .all(|&b| (0x21..=0x7e).contains(&b) && b != b'"')
                            || n == "content-type",
                        "{}: {n}: {v:?}",
                        ev.id()
                    );
                }
            }
            let mut r = http_req(&req);
            r["op"] = json!("read_http");
            let got = py.call(ev.id(), &r);
            assert_sdk_read(ev.id(), ev, &got, mode);
        }
        for (mode, structured) in [(Mode::KafkaBinary, false), (Mode::KafkaStructured, true)] {
            let mut r = kafka_record(ev, structured);
            r["op"] = json!("read_kafka");
            let got = py.call(ev.id(), &r);
            assert_sdk_read(ev.id(), ev, &got, mode);
        }
    }
    // One batch of them all.
    let req = http_types::batch_request(&evs, "http://127.0.0.1/").unwrap();
    let mut r = http_req(&req);
    r["op"] = json!("read_batch");
    let got = py.call("batch", &r);
    let got = got["events"].as_array().unwrap();
    assert_eq!(got.len(), evs.len());
    for (ev, got) in evs.iter().zip(got) {
        assert_sdk_read(ev.id(), ev, got, Mode::HttpBatch);
    }
}

// ---------------------------------------------------------------------------
// Tests: the SDK's read by us
// ---------------------------------------------------------------------------

#[test]
fn the_sdks_http_messages_and_kafka_records_are_read_by_us() {
    let mut py = Py::start("stdio");
    let specs = sdk_specs();
    let mut jsons = Vec::new();
    for spec in &specs {
        let what = spec["attributes"]["id"].as_str().unwrap();
        let enc = py.call(what, &json!({"op": "write", "event": spec}));
        let not_json = spec["sdk_binary_body_not_json"] == true;
        for (mode, key) in [
            (Mode::HttpBinary, "http_binary"),
            (Mode::HttpStructured, "http_structured"),
        ] {
            let req = to_http(&enc[key]);
            if not_json && mode.binary() {
                assert_refused_as_not_json(
                    what,
                    http_types::parse_request(&req, &mut Scratch::new(&mut [0u8; 4096]))
                        .map(|_| ()),
                );
                continue;
            }
            let n = parse_http(&req, |_, ev| assert_we_read(what, ev, spec, mode));
            assert_eq!(n, 1, "{what}");
        }
        for (mode, key) in [
            (Mode::KafkaBinary, "kafka_binary"),
            (Mode::KafkaStructured, "kafka_structured"),
        ] {
            let rec = &enc[key];
            let (names, values, value) = kafka_parts(rec);
            let headers: Vec<(&str, &[u8])> = names
                .iter()
                .map(String::as_str)
                .zip(values.iter().map(Vec::as_slice))
                .collect();
            // The SDK's key: the `partitionkey` extension (Kafka binding §3.1).
            let key = rec["key_base64"].as_str().map(|k| B64.decode(k).unwrap());
            let want_key = spec["attributes"]["partitionkey"]
                .as_str()
                .map(str::as_bytes);
            assert_eq!(key.as_deref(), want_key, "{what} ({mode:?}): key");
            let mut scratch = vec![0u8; 64 * 1024];
            let r = ossa_events::parse::kafka::parse(
                headers.iter().copied(),
                key.as_deref(),
                Some(&value),
                &mut Scratch::new(&mut scratch),
            );
            if not_json && mode.binary() {
                assert_refused_as_not_json(what, r.map(|_| ()));
                continue;
            }
            let r = r.unwrap_or_else(|e| panic!("{what} ({mode:?}): we refused it: {e}"));
            assert_eq!(r.key, want_key, "{what} ({mode:?}): key");
            assert_we_read(what, &r.event, spec, mode);
        }
        jsons.push(unb64(&enc["event_json_base64"]));
    }
    // The SDK's JSON format, joined into a batch (it has no batched mode).
    let body = [b"[".to_vec(), jsons.join(&b","[..]), b"]".to_vec()].concat();
    let req = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("content-type", "application/cloudevents-batch+json")
        .body(body)
        .unwrap();
    let n = parse_http(&req, |i, ev| {
        assert_we_read(ev.id(), ev, &specs[i], Mode::HttpBatch)
    });
    assert_eq!(n, specs.len());
}

#[test]
fn any_integer_the_sdk_writes_outside_32_bits_is_refused() {
    // SDK DEVIATION: the SDK writes any Python int as an Integer extension;
    // the spec's Integer is 32-bit ("Type System"). In the JSON format we
    // must refuse it (typed error); in binary mode it is a string.
    let mut py = Py::start("stdio");
    let spec = json!({"attributes": {"id": "big", "source": "/s", "type": "t",
        "extbig": 1_i64 << 40}, "data": null});
    let enc = py.call("big", &json!({"op": "write", "event": spec}));
    let req = to_http(&enc["http_structured"]);
    let mut scratch = vec![0u8; 4096];
    let err = http_types::parse_request(&req, &mut Scratch::new(&mut scratch)).unwrap_err();
    assert!(err.to_string().contains("extbig"), "{err}");
    let req = to_http(&enc["http_binary"]);
    let mut scratch = vec![0u8; 4096];
    let Message::Event(ev) =
        http_types::parse_request(&req, &mut Scratch::new(&mut scratch)).unwrap()
    else {
        panic!("binary mode")
    };
    assert_eq!(
        ev.extension("extbig"),
        Some(ExtValue::String("1099511627776"))
    );
}

// ---------------------------------------------------------------------------
// Tests: over real sockets
// ---------------------------------------------------------------------------

#[test]
fn our_emitter_posts_to_a_python_server_that_reads_with_the_sdk() {
    for mode in [HttpMode::Binary, HttpMode::Structured] {
        let server = Py::start("serve");
        let port = server.next("the server's port")["port"].as_u64().unwrap();
        let em = Emitter::builder("/agents/researcher")
            .sink(
                HttpSink::builder(format!("http://127.0.0.1:{port}/events"))
                    .mode(mode)
                    .timeout(WAIT)
                    .build()
                    .unwrap(),
            )
            .agent_id(typical::AGENT_ID)
            .interaction_id(typical::INTERACTION_ID)
            .trace_id(typical::TRACE_ID)
            .span_id(typical::SPAN_ID)
            .flush_timeout(WAIT)
            .build()
            .unwrap();
        let evs = ours();
        for ev in &evs {
            em.emit_event(ev).unwrap();
        }
        let started = ossa::AgentStarted {
            agent_id: typical::AGENT_ID,
            name: Some("Research Agent ✓"),
            version: Some("1.4.0"),
            input: Some(RawJson::new(r#"{"goal":"brief é"}"#).unwrap()),
        };
        em.emit_ossa(&started).unwrap();
        em.emit_ossa(&*CALL).unwrap();
        let report = em.flush().unwrap();
        assert_eq!(
            (report.delivered, report.failed, report.pending),
            (evs.len() as u64 + 2, 0, 0),
            "{mode:?}"
        );
        em.shutdown().unwrap();
        // One line per request, printed before its answer.
        let mut got: Vec<Value> = (0..evs.len() + 2)
            .map(|i| server.next(&format!("{mode:?} request {i}")))
            .collect();
        for g in &got {
            assert!(g.get("error").is_none(), "{mode:?}: the SDK refused {g}");
        }
        let m = if mode == HttpMode::Binary {
            Mode::HttpBinary
        } else {
            Mode::HttpStructured
        };
        let made = got.split_off(evs.len());
        for (ev, g) in evs.iter().zip(&got) {
            assert_sdk_read(ev.id(), ev, g, m);
        }
        for (g, ty) in made.iter().zip([ossa::AGENT_STARTED, ossa::TOOL_CALLED]) {
            let a = &g["attributes"];
            assert_eq!(a["type"]["str"], ty, "{mode:?}");
            assert_eq!(a["source"]["str"], "/agents/researcher");
            assert_eq!(a["ossaagentid"]["str"], typical::AGENT_ID);
            assert_eq!(a["ossainteractionid"]["str"], typical::INTERACTION_ID);
            assert_eq!(a["ossatraceid"]["str"], typical::TRACE_ID);
            assert_eq!(a["ossaspanid"]["str"], typical::SPAN_ID);
            assert!(a["time"]["time"].is_string());
            // The emitter's `traceparent` (on by default) from its context.
            assert_eq!(
                a["traceparent"]["str"],
                format!("00-{}-{}-01", typical::TRACE_ID, typical::SPAN_ID)
            );
            assert_eq!(g["data"]["kind"], "json", "{mode:?} {g}");
        }
        assert_eq!(made[0]["data"]["value"]["input"]["goal"], "brief é");
        assert_eq!(made[1]["data"]["value"], typical::data_value());
    }
}

#[test]
fn the_sdk_posts_to_our_receiver() {
    let (handle, url, got) = ossa_events_tests::collecting_receiver();
    let mut py = Py::start("stdio");
    let specs = sdk_specs();
    let mut sent = Vec::new();
    for mode in ["binary", "structured"] {
        for spec in &specs {
            let what = format!("{mode} {}", spec["attributes"]["id"]);
            let r = py.call(
                &what,
                &json!({"op": "post", "url": url, "mode": mode, "event": spec}),
            );
            if mode == "binary" && spec["sdk_binary_body_not_json"] == true {
                // Not JSON under `application/json` (see `sdk_specs`): refused.
                assert_eq!(r["status"], 400, "{what}");
                continue;
            }
            assert_eq!(r["status"], 202, "{what}");
            sent.push((mode, spec));
        }
    }
    handle.shutdown();
    let got = got.lock().unwrap();
    assert_eq!(got.len(), sent.len(), "one event per request");
    for (json, (mode, spec)) in got.iter().zip(&sent) {
        let mut scratch = vec![0u8; json.len()];
        let ev =
            ossa_events::parse::json::parse_event(json, &mut Scratch::new(&mut scratch)).unwrap();
        let m = if *mode == "binary" {
            Mode::HttpBinary
        } else {
            Mode::HttpStructured
        };
        assert_we_read(&format!("{mode} {}", ev.id()), &ev, spec, m);
    }
}

#[test]
fn what_the_sdk_writes_against_the_spec_is_refused_with_a_typed_error() {
    // SDK DEVIATION: the SDK checks only that attributes are non-empty
    // strings; it writes control characters and noncharacters (spec
    // "Type System", String), a `source` that is no URI-reference and a
    // relative `dataschema` (§3.1.1, §3.1.3: URI-reference, absolute URI).
    // In each of its four encodings we refuse them, naming the attribute.
    let mut py = Py::start("stdio");
    let cases = [
        ("subject", json!({"subject": "line\nbreak"}), "subject"),
        ("subject", json!({"subject": "c1 \u{85}"}), "subject"),
        ("subject", json!({"subject": "nonchar \u{fffe}"}), "subject"),
        ("extension", json!({"extctl": "tab\there"}), "extctl"),
        ("source", json!({"source": "a b"}), "source"),
        (
            "dataschema",
            json!({"dataschema": "schemas/x.json"}),
            "dataschema",
        ),
    ];
    for (what, extra, attribute) in cases {
        let mut a =
            json!({"id": "bad", "source": "/s", "type": "t", "time": "2024-06-01T12:00:00Z"});
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        let enc = py.call(
            what,
            &json!({"op": "write", "event": {"attributes": a, "data": null}}),
        );
        let want = |r: Result<(), ParseError>, mode: &str| match r {
            Err(ParseError::Invalid(v)) if v.attribute == Attribute::named(attribute) => {}
            other => panic!("{what} {extra} ({mode}): {other:?}"),
        };
        for key in ["http_binary", "http_structured"] {
            let req = to_http(&enc[key]);
            let mut scratch = vec![0u8; 4096];
            want(
                http_types::parse_request(&req, &mut Scratch::new(&mut scratch)).map(|_| ()),
                key,
            );
        }
        for key in ["kafka_binary", "kafka_structured"] {
            let (names, values, value) = kafka_parts(&enc[key]);
            let headers: Vec<(&str, &[u8])> = names
                .iter()
                .map(String::as_str)
                .zip(values.iter().map(Vec::as_slice))
                .collect();
            let mut scratch = vec![0u8; 4096];
            let r = ossa_events::parse::kafka::parse(
                headers.iter().copied(),
                None,
                Some(&value),
                &mut Scratch::new(&mut scratch),
            );
            want(r.map(|_| ()), key);
        }
    }
}
