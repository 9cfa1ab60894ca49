//! What our `HttpSink` puts on the wire, read back by `cloudevents-sdk` 0.9
//! and by our own parser.
//!
//! A tiny HTTP/1.1 server on 127.0.0.1 (free port) records every request it
//! gets (method, path, headers, body) and answers `202`. Events with a
//! non-ASCII subject, `dataschema`, a `time` with fractional seconds and a
//! `-04:00` offset, extensions of every type and JSON, text, binary or no
//! data (and a `datacontenttype` without data) go through the sink in each
//! content mode — by `Sink::send` directly and through an `Emitter` followed
//! by `flush` — and each recorded request is rebuilt as an `http::Request`
//! and read:
//!
//! * binary and structured mode: `cloudevents::binding::http::to_event`;
//! * batched mode: `serde_json::from_slice::<Vec<cloudevents::Event>>` (the
//!   sdk has no batched-mode HTTP reader);
//! * every mode: our `parse::http::parse`.
//!
//! Where the sdk deviates from the specification the tests assert what the
//! spec requires of us and say so in a comment (`SDK DEVIATION`), as
//! `roundtrip_with_cloudevents_sdk.rs` does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader as _, Data as SdkData, Event as SdkEvent};
use ossa_events::parse::http::{self as http_parse, Message};
use ossa_events::sink::{Encoded, HttpMode, HttpSink, Sink};
use ossa_events::{Data, Emitter, Event, ExtValue, RawJson, Scratch, Timestamp, ossa};
use ossa_events_tests::{EXT_KINDS, ext_kind, percent_decode};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// The recording server
// ---------------------------------------------------------------------------

/// One request as it came over the socket.
#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    /// In order, names as sent (case kept), values as raw bytes.
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
    }

    /// The request as an `http::Request`, the type the sdk's HTTP binding reads.
    fn to_http(&self) -> http::Request<Vec<u8>> {
        let mut b = http::Request::builder()
            .method(self.method.as_str())
            .uri(self.path.as_str());
        for (n, v) in &self.headers {
            b = b.header(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        b.body(self.body.clone()).unwrap()
    }
}

/// A real HTTP/1.1 server: keep-alive, `Content-Length` bodies, `202` to all.
struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reqs = Arc::clone(&requests);
        // The accept loop lives as long as the test process; each connection
        // has its own thread, ended by EOF or the read timeout.
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let reqs = Arc::clone(&reqs);
                thread::spawn(move || serve(stream, &reqs));
            }
        });
        Server { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}/ingest", self.addr)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, requests: &Mutex<Vec<Recorded>>) {
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    while let Some(req) = read_request(&mut reader) {
        // Recorded before the answer: once the client has its 2xx, the request is visible.
        requests.lock().unwrap().push(req);
        if out
            .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// Reads one request; `None` at EOF or on a timeout.
fn read_request(r: &mut impl BufRead) -> Option<Recorded> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.trim_end().split(' ');
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    assert_eq!(parts.next(), Some("HTTP/1.1"), "request line {line:?}");
    let mut headers = Vec::new();
    loop {
        let mut h = Vec::new();
        if r.read_until(b'\n', &mut h).ok()? == 0 {
            return None;
        }
        let h = h.strip_suffix(b"\n").unwrap_or(&h);
        let h = h.strip_suffix(b"\r").unwrap_or(h);
        if h.is_empty() {
            break;
        }
        let colon = h.iter().position(|&b| b == b':').expect("header colon");
        let name = std::str::from_utf8(&h[..colon]).unwrap().to_owned();
        let value = h[colon + 1..].trim_ascii().to_vec();
        headers.push((name, value));
    }
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| std::str::from_utf8(v).unwrap().parse().unwrap());
    assert!(
        !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding")),
        "the sink sends sized bodies"
    );
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const BINARY: &[u8] = &[0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, b'\r', b'\n', b'"'];
const JSON_DATA: &str =
    r#" {"q":"rust \"cloudevents\"","n":[1,2.5,-3e2,true,null],"nested":{"ü":"ß 😀"}} "#;
const TEXT_DATA: &str = "line one\nlíne two ✓ 100% \"done\"";
const EXT_TIME: &str = "2024-02-29T23:59:59.123456789+05:30";
/// The first event's `time`: fractional seconds and an offset other than `Z`.
const EVENT_TIME: &str = "2024-03-01T05:29:59.987654321-04:00";

static TOOL_CALLED: ossa::ToolCalled<'static> = ossa::ToolCalled {
    tool: "web_search",
    call_id: Some("call_3k9q2w"),
    arguments: None,
};

/// The events every test sends: a non-ASCII subject and extensions of every
/// type (JSON data), text data, binary data, no data, and an OSSA event.
fn events() -> Vec<Event<'static>> {
    let t = Timestamp::parse("2024-06-01T12:00:00.123456Z").unwrap();
    vec![
        Event::builder()
            .id("e-json \"1\" ✓")
            .source("https://example.com/agents/researcher?x=1#f")
            .ty("ai.ossa.tool.called")
            .dataschema("https://example.com/schemas/call.json")
            .subject("Grüße € 😀 \"quoted\" 100% %20")
            .time(Timestamp::parse(EVENT_TIME).unwrap())
            .extension(
                "extstring",
                ExtValue::String("naïve, ok; semi: colon \\ \"q\""),
            )
            .extension("extint", ExtValue::Integer(-2_147_483_648))
            .extension("extintmax", ExtValue::Integer(i32::MAX))
            .extension("exttrue", ExtValue::Boolean(true))
            .extension("extfalse", ExtValue::Boolean(false))
            .extension("exturi", ExtValue::Uri("https://example.com/x?y=1&z=%41"))
            .extension("exturiref", ExtValue::UriRef("/relative/path?q=1"))
            .extension(
                "exttime",
                ExtValue::Timestamp(Timestamp::parse(EXT_TIME).unwrap()),
            )
            .extension("extbinary", ExtValue::Binary(&[0, 1, 2, 0xfe, 0xff]))
            .data_json(JSON_DATA)
            .build()
            .unwrap(),
        Event::builder()
            .id("e-text")
            .source("urn:ossa:test")
            .ty("ai.ossa.note")
            .subject("plain")
            .time(t)
            .extension("extint", ExtValue::Integer(7))
            .data_text("text/plain; charset=utf-8", TEXT_DATA)
            .build()
            .unwrap(),
        Event::builder()
            .id("e-bin")
            .source("/s")
            .ty("ai.ossa.blob")
            .extension_str(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .data_binary("application/octet-stream", BINARY)
            .build()
            .unwrap(),
        Event::builder()
            .id("e-none")
            .source("/s")
            .ty("ai.ossa.ping")
            .subject("ä")
            .build()
            .unwrap(),
        Event::builder()
            .id("e-ossa")
            .source("/agents/researcher")
            .time(t)
            .ossa(&TOOL_CALLED)
            .ossa_agent_id("researcher")
            .ossa_interaction_id("i-7f3c2a")
            .ossa_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .ossa_span_id("00f067aa0ba902b7")
            .build()
            .unwrap(),
    ]
}

fn sink(server: &Server, mode: HttpMode, max_batch: usize) -> HttpSink {
    HttpSink::builder(server.url())
        .mode(mode)
        .max_batch(max_batch)
        .timeout(IO_TIMEOUT)
        .build()
        .unwrap()
}

fn encode(sink: &HttpSink, evs: &[Event<'_>]) -> Vec<Encoded> {
    evs.iter()
        .map(|e| Encoded::new(e, sink.encoding()).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

fn same_instant(ours: Timestamp, sdk: &chrono::DateTime<chrono::Utc>) -> bool {
    ours.unix_seconds() == sdk.timestamp() && ours.nanos() == sdk.timestamp_subsec_nanos()
}

/// The JSON text our event's data serializes to (for `.ossa(&payload)` events).
fn data_json_text(ev: &Event<'_>) -> Option<String> {
    match ev.data()? {
        Data::Json(s) => Some((*s).to_owned()),
        Data::Serialize(_) => {
            let mut body = Vec::new();
            ossa_events::format::binary::write_body(ev, &mut body).unwrap();
            Some(String::from_utf8(body).unwrap())
        }
        _ => None,
    }
}

/// `ev` with a serialized payload (`.ossa(&payload)`) turned into the JSON
/// text it writes, since `Event::same_as` compares `Data::Serialize` unequal.
fn as_json_data<'a>(ev: &Event<'a>) -> Event<'a> {
    match ev.data() {
        Some(Data::Serialize(_)) => {
            let text: &'static str = String::leak(data_json_text(ev).unwrap());
            ev.to_builder().data_json(text).build().unwrap()
        }
        _ => ev.clone(),
    }
}

/// How a binary mode can tell the sender wrote `s` into a header: visible
/// ASCII only, no `"` (space, `"`, `%` and non-ASCII percent-encoded).
fn assert_header_safe(what: &str, v: &[u8]) {
    assert!(
        v.iter().all(|&b| (0x21..=0x7e).contains(&b) && b != b'"'),
        "{what}: header value {:?} is not percent-encoded",
        String::from_utf8_lossy(v)
    );
}

/// Checks an event the sdk read against the one we sent. `binary_mode`: the
/// sdk read it from `ce-` headers (string attributes in wire form, every
/// extension a string, the data the body's bytes); otherwise from JSON.
fn assert_sdk_matches(what: &str, sent: &Event<'_>, sdk: &SdkEvent, binary_mode: bool) {
    // SDK DEVIATION: cloudevents-sdk 0.9 does not percent-decode header
    // values (binding/http/deserializer.rs passes `to_str()` through), so in
    // binary mode it hands back string attributes in their wire form. The spec
    // (HTTP binding §3.1.3.2) requires the sender to percent-encode space,
    // `"`, `%` and everything outside U+0021-U+007E — asserted on the wire in
    // the binary-mode test — and the receiver to decode, which we do on the
    // sdk's values here before comparing. JSON modes need no decoding.
    let dec = |s: &str| {
        if binary_mode {
            percent_decode(s)
        } else {
            s.to_owned()
        }
    };
    assert_eq!(sdk.specversion().as_str(), "1.0", "{what}");
    assert_eq!(dec(sdk.id()), sent.id(), "{what}: id");
    assert_eq!(dec(sdk.source()), sent.source(), "{what}: source");
    assert_eq!(dec(sdk.ty()), sent.ty(), "{what}: type");
    assert_eq!(
        sdk.subject().map(dec).as_deref(),
        sent.subject(),
        "{what}: subject"
    );
    assert_eq!(
        sdk.dataschema().map(|u| u.as_str()),
        sent.dataschema(),
        "{what}: dataschema"
    );
    match (sent.time(), sdk.time()) {
        (None, None) => {}
        (Some(a), Some(b)) => assert!(same_instant(a, b), "{what}: time {a} vs {b}"),
        (a, b) => panic!("{what}: time {a:?} vs {b:?}"),
    }
    // The content type: in binary mode `Content-Type`, which carries the
    // effective type (JSON data without a datacontenttype goes as
    // application/json); in JSON modes the attribute as sent.
    if binary_mode {
        assert_eq!(
            sdk.datacontenttype(),
            ossa_events::format::binary::content_type(sent),
            "{what}: content type"
        );
    } else {
        assert_eq!(
            sdk.datacontenttype(),
            sent.datacontenttype(),
            "{what}: datacontenttype"
        );
    }

    assert_eq!(
        sdk.iter_extensions().count(),
        sent.extensions().len(),
        "{what}: extension count"
    );
    for e in sent.extensions() {
        let got = sdk
            .extension(e.name)
            .unwrap_or_else(|| panic!("{what}: sdk lost extension {}", e.name));
        let canonical = e.value.canonical().to_string();
        let want = match e.value {
            // In the JSON format Integer and Boolean keep their JSON type.
            ExtValue::Integer(i) if !binary_mode => ExtensionValue::Integer(i64::from(i)),
            ExtValue::Boolean(b) if !binary_mode => ExtensionValue::Boolean(b),
            _ => ExtensionValue::String(canonical.clone()),
        };
        match (got, binary_mode) {
            (ExtensionValue::String(s), true) => {
                assert_eq!(percent_decode(s), canonical, "{what}: extension {}", e.name);
            }
            (got, _) => assert_eq!(got, &want, "{what}: extension {}", e.name),
        }
    }

    let data = sdk.data();
    if binary_mode {
        // The sdk keeps a binary-mode body as bytes whatever its type.
        let body: Option<Vec<u8>> = match sent.data() {
            None => None,
            Some(Data::Text(t)) => Some(t.as_bytes().to_vec()),
            Some(Data::Binary(b)) => Some(b.to_vec()),
            Some(_) => Some(data_json_text(sent).unwrap().into_bytes()),
        };
        match (data, body) {
            (None, None) => {}
            (Some(SdkData::Binary(got)), Some(want)) => {
                if sent.data_is_json() {
                    // JSON data goes out as written (compact for a payload).
                    let a: serde_json::Value = serde_json::from_slice(got).unwrap();
                    let b: serde_json::Value = serde_json::from_slice(&want).unwrap();
                    assert_eq!(a, b, "{what}: body");
                } else {
                    assert_eq!(got, &want, "{what}: body");
                }
            }
            (got, want) => panic!("{what}: body {got:?} vs {want:?}"),
        }
    } else {
        match (sent.data(), data) {
            (None, None) => {}
            (Some(Data::Text(t)), Some(SdkData::String(s))) => assert_eq!(t, s, "{what}: data"),
            (Some(Data::Binary(b)), Some(SdkData::Binary(s))) => assert_eq!(b, s, "{what}: data"),
            (Some(_), Some(SdkData::Json(v))) => {
                let want: serde_json::Value =
                    serde_json::from_str(&data_json_text(sent).unwrap()).unwrap();
                assert_eq!(v, &want, "{what}: data");
            }
            (a, b) => panic!("{what}: data ours {a:?}, sdk {b:?}"),
        }
    }
}

/// Reads a recorded request with our HTTP binding parser; calls `check` with
/// each event and returns how many there were.
fn parse_with_ours(req: &Recorded, mut check: impl FnMut(usize, &Event<'_>)) -> usize {
    let headers: Vec<(&str, &[u8])> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let mut scratch = vec![0u8; 64 * 1024];
    let msg = http_parse::parse(
        headers.iter().copied(),
        &req.body,
        &mut Scratch::new(&mut scratch),
    )
    .unwrap_or_else(|e| panic!("our parser refused {req:?}: {e}"));
    match msg {
        Message::Event(ev) => {
            check(0, &ev);
            1
        }
        Message::Batch(mut batch) => {
            let mut n = 0;
            let mut buf = vec![0u8; 64 * 1024];
            while let Some(ev) = batch.next_event(&mut buf) {
                check(n, &ev.unwrap());
                n += 1;
            }
            n
        }
        other => panic!("unexpected message {other:?}"),
    }
}

/// Reads the requests of one mode with the sdk and with our parser and
/// checks them against `sent`, in order. Returns the number of requests.
fn check_requests(mode: HttpMode, reqs: &[Recorded], sent: &[Event<'_>]) -> usize {
    let mut next = 0;
    for (r, req) in reqs.iter().enumerate() {
        assert_eq!(req.method, "POST", "request {r}");
        assert_eq!(req.path, "/ingest", "request {r}");
        let http_req = req.to_http();

        // --- cloudevents-sdk ---
        let sdk_events: Vec<SdkEvent> = match mode {
            HttpMode::Batched => {
                assert_eq!(
                    req.header("content-type"),
                    Some("application/cloudevents-batch+json; charset=utf-8")
                );
                serde_json::from_slice::<Vec<SdkEvent>>(http_req.body()).unwrap_or_else(|e| {
                    panic!(
                        "request {r}: sdk refused our batch: {e}\n{}",
                        String::from_utf8_lossy(&req.body)
                    )
                })
            }
            _ => {
                let ev = cloudevents::binding::http::to_event(
                    http_req.headers(),
                    http_req.body().clone(),
                )
                .unwrap_or_else(|e| panic!("request {r} ({mode:?}): sdk refused it: {e}"));
                vec![ev]
            }
        };
        for (k, sdk) in sdk_events.iter().enumerate() {
            let sent = &sent[next + k];
            assert_sdk_matches(
                &format!("{mode:?} request {r} event {k} ({})", sent.id()),
                sent,
                sdk,
                mode == HttpMode::Binary,
            );
        }

        // --- ours ---
        let typed = mode != HttpMode::Binary;
        let n = parse_with_ours(req, |k, back| {
            let want = &as_json_data(&sent[next + k]);
            assert!(
                back.same_as(want, typed),
                "{mode:?} request {r} event {k}: ours read\n{back:?}\nsent\n{want:?}"
            );
            if !typed {
                // Binary mode: the spec behaviour, decoded by us.
                assert_eq!(back.subject(), want.subject());
                assert_eq!(back.id(), want.id());
            }
        });
        assert_eq!(n, sdk_events.len(), "request {r}: sdk and ours count alike");
        next += n;
    }
    assert_eq!(next, sent.len(), "{mode:?}: every event sent, once");
    reqs.len()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn fixtures_cover_every_extension_type_and_data_kind() {
    let evs = events();
    let ext_kinds: Vec<&str> = evs
        .iter()
        .flat_map(|e| e.extensions().iter())
        .map(|e| ext_kind(&e.value))
        .collect();
    for k in EXT_KINDS {
        assert!(ext_kinds.contains(&k), "no {k} extension");
    }
    assert!(!evs[0].subject().unwrap().is_ascii());
    let t = evs[0].time().unwrap();
    assert_eq!(t.nanos(), 987_654_321);
    assert_eq!(t.offset(), ossa_events::Offset::Minutes(-240));
    assert!(evs[0].dataschema().is_some());
    assert!(matches!(evs[0].data(), Some(Data::Json(_))));
    assert!(matches!(evs[1].data(), Some(Data::Text(_))));
    assert!(matches!(evs[2].data(), Some(Data::Binary(_))));
    assert!(evs[3].data().is_none());
    assert!(matches!(evs[4].data(), Some(Data::Serialize(_))));
}

#[test]
fn structured_mode_is_read_by_the_sdk_and_by_us() {
    let server = Server::start();
    let mut sink = sink(&server, HttpMode::Structured, 100);
    let evs = events();
    let enc = encode(&sink, &evs);
    sink.send(&enc).unwrap();
    let reqs = server.requests();
    for (req, e) in reqs.iter().zip(&enc) {
        assert_eq!(
            req.header("content-type"),
            Some("application/cloudevents+json; charset=utf-8")
        );
        assert!(!req.headers.iter().any(|(n, _)| n.starts_with("ce-")));
        assert_eq!(req.body, e.json(), "the bytes encoded at emit");
    }
    assert_eq!(check_requests(HttpMode::Structured, &reqs, &evs), evs.len());
}

#[test]
fn binary_mode_is_read_by_the_sdk_and_by_us() {
    let server = Server::start();
    let mut sink = sink(&server, HttpMode::Binary, 100);
    let evs = events();
    let enc = encode(&sink, &evs);
    sink.send(&enc).unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), evs.len(), "one request per event");
    for (req, ev) in reqs.iter().zip(&evs) {
        // HTTP binding §3.1.3.2: every ce- value is percent-encoded on the wire.
        for (n, v) in &req.headers {
            if n.starts_with("ce-") {
                assert_header_safe(&format!("{}: {n}", ev.id()), v);
            }
        }
        assert_eq!(req.header("ce-specversion"), Some("1.0"));
        assert_eq!(
            req.header("content-type"),
            ossa_events::format::binary::content_type(ev)
        );
    }
    // The non-ASCII subject, spelled out.
    assert_eq!(
        reqs[0].header("ce-subject"),
        Some("Gr%C3%BC%C3%9Fe%20%E2%82%AC%20%F0%9F%98%80%20%22quoted%22%20100%25%20%2520")
    );
    assert_eq!(
        reqs[0].header("ce-id"),
        Some("e-json%20%221%22%20%E2%9C%93")
    );
    // Binary data goes raw; no data → no body, no Content-Type.
    assert_eq!(reqs[2].body, BINARY);
    assert!(reqs[3].body.is_empty());
    assert_eq!(reqs[3].header("content-type"), None);
    assert_eq!(check_requests(HttpMode::Binary, &reqs, &evs), evs.len());
}

#[test]
fn batched_mode_is_read_by_the_sdk_and_by_us() {
    let server = Server::start();
    let mut sink = sink(&server, HttpMode::Batched, 3);
    let evs = events();
    let enc = encode(&sink, &evs);
    sink.send(&enc).unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "5 events at 3 per request");
    assert_eq!(check_requests(HttpMode::Batched, &reqs, &evs), 2);
    // `[` + the emit-time JSON joined by `,` + `]`.
    let want: Vec<u8> = [&b"["[..], enc[3].json(), b",", enc[4].json(), b"]"].concat();
    assert_eq!(reqs[1].body, want);
}

#[test]
fn emitter_output_in_every_mode_is_read_by_the_sdk_and_by_us() {
    for mode in [HttpMode::Structured, HttpMode::Binary, HttpMode::Batched] {
        let server = Server::start();
        let em = Emitter::builder("/agents/researcher")
            .sink(sink(&server, mode, 2))
            .batch_size(2)
            .agent_id("researcher")
            .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .flush_timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        // Events forwarded as they are…
        let mut sent = events();
        for ev in &sent {
            em.emit_event(ev).unwrap();
        }
        // …and typed OSSA events completed by the emitter (new id, source,
        // time, context): rebuilt from what our parser read, to compare.
        let failed = ossa::ToolFailed {
            tool: "fetch",
            call_id: Some("c2"),
            error: ossa::ErrorInfo {
                message: "timed out after 30 s — “quoted”",
                code: Some("timeout"),
                retryable: Some(true),
            },
            duration_ms: Some(30_000),
        };
        em.emit_ossa(&failed).unwrap();
        let started = ossa::AgentStarted {
            agent_id: "researcher",
            name: Some("Research Agent ✓"),
            version: Some("1.4.0"),
            input: Some(RawJson::new(r#"{"goal":"brief"}"#).unwrap()),
        };
        em.emit_ossa(&started).unwrap();
        let report = em.flush().unwrap();
        assert_eq!(
            (report.delivered, report.failed, report.pending),
            (7, 0, 0),
            "{mode:?}"
        );
        let reqs = server.requests();
        if mode == HttpMode::Batched {
            assert!(
                (4..=7).contains(&reqs.len()),
                "{mode:?}: {} requests",
                reqs.len()
            );
        } else {
            assert_eq!(reqs.len(), 7, "{mode:?}: one request per event");
        }

        // The emitter-made events (the last two): what our parser read,
        // checked for the completed attributes, then used as the expectation
        // for the sdk.
        let mut owned: Vec<Vec<u8>> = Vec::new();
        for req in &reqs {
            let n = parse_with_ours(req, |_, back| {
                owned.push(ossa_events::format::json::to_vec(back).unwrap());
            });
            assert!(n <= 2, "{mode:?}: at most batch_size events per request");
        }
        assert_eq!(owned.len(), 7, "{mode:?}");
        // Leaked so the parsed events can join `sent` (this is a test).
        let owned: &'static [Vec<u8>] = Vec::leak(owned.split_off(5));
        assert_eq!(owned.len(), 2, "{mode:?}");
        let scratch: &'static mut [Vec<u8>] =
            Vec::leak(owned.iter().map(|o| vec![0u8; o.len()]).collect());
        let mut emitted = Vec::new();
        for (o, s) in owned.iter().zip(scratch.iter_mut()) {
            emitted.push(ossa_events::parse::json::parse_event(o, &mut Scratch::new(s)).unwrap());
        }
        assert_eq!(emitted[0].ty(), ossa::TOOL_FAILED);
        assert_eq!(emitted[1].ty(), ossa::AGENT_STARTED);
        for back in &emitted {
            assert_eq!(back.source(), "/agents/researcher");
            assert!(back.time().is_some());
            assert_eq!(back.ossa_agent_id(), Some("researcher"));
            assert_eq!(
                back.ossa_trace_id(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736")
            );
        }
        assert_ne!(emitted[0].id(), emitted[1].id(), "new random ids");
        sent.extend(emitted);
        check_requests(mode, &reqs, &sent);
        em.shutdown().unwrap();
    }
}

#[test]
fn a_datacontenttype_without_data_reaches_the_sdk_in_every_mode() {
    let ev = Event::builder()
        .id("e-type-only")
        .source("/s")
        .ty("ai.ossa.ping")
        .datacontenttype("application/xml")
        .time(Timestamp::parse(EVENT_TIME).unwrap())
        .build()
        .unwrap();
    for mode in [HttpMode::Binary, HttpMode::Structured, HttpMode::Batched] {
        let server = Server::start();
        let mut sink = sink(&server, mode, 10);
        sink.send(&encode(&sink, std::slice::from_ref(&ev)))
            .unwrap();
        let reqs = server.requests();
        assert_eq!(reqs.len(), 1, "{mode:?}");
        if mode == HttpMode::Binary {
            assert_eq!(reqs[0].header("content-type"), Some("application/xml"));
            assert!(reqs[0].body.is_empty());
        }
        check_requests(mode, &reqs, std::slice::from_ref(&ev));
    }
}
