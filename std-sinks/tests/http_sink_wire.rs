//! `HttpSink` against a real HTTP/1.1 server on 127.0.0.1: what each content
//! mode puts on the wire (parsed back with our parser), how every outcome is
//! classified, connection reuse and gzip request bodies.
//!
//! The server below is tiny but real: it reads requests off the socket
//! (request line, headers, `Content-Length` body, gzip bodies decoded) and
//! answers from a script, including hanging past the client's timeout and
//! closing the connection without an answer. `cloudevents-sdk` is a
//! dev-dependency of the separate `tests/` crate only, so the round trips here
//! use `ossa_events::parse::http::parse`.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ossa_events::sink::{Encoded, HttpMode, HttpSink, SendDeadline, Sink};
use ossa_events::{Error, Event, ExtValue, Phase, Retry, SendError, Timestamp};

use common::{dead_port, parse_events, read_request, serve_loopback};

// ---------------------------------------------------------------------------
// The test server
// ---------------------------------------------------------------------------

/// What the server does with one request.
#[derive(Clone, Debug)]
enum Reply {
    /// Answer with this status, extra headers and body (keep-alive).
    Status(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Read the request, then say nothing for this long, then close.
    Hang(Duration),
    /// Read the request, then close the connection without answering.
    Reset,
}

fn status(code: u16) -> Reply {
    Reply::Status(code, Vec::new(), Vec::new())
}

/// One request as the server read it.
#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    /// Names lower-cased, values as sent.
    headers: Vec<(String, String)>,
    /// The body as it came over the wire.
    raw_body: Vec<u8>,
    /// The body after `Content-Encoding: gzip` is undone.
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        common::header(&self.headers, name)
    }

    /// `req` with its body's `Content-Encoding: gzip` undone.
    fn from(req: common::Request) -> Recorded {
        let body = if common::header(&req.headers, "content-encoding") == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&req.body[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            req.body.clone()
        };
        Recorded {
            method: req.method,
            path: req.path,
            headers: req.headers,
            raw_body: req.body,
            body,
        }
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    requests: Vec<Recorded>,
    connections: usize,
}

struct Server {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Server {
    /// Starts a server that answers 200 when its script is empty.
    fn start() -> Server {
        let state = Arc::new(Mutex::new(State::default()));
        let st = Arc::clone(&state);
        // The accept loop lives as long as the test process; each connection
        // has its own thread, bounded by socket timeouts.
        let addr = serve_loopback(None, move |stream| {
            st.lock().unwrap().connections += 1;
            serve(stream, &st);
        });
        Server { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    // Anything malformed fails the connection loudly: the sink must not send it.
    while let Some(req) = read_request(&mut reader)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(Recorded::from)
    {
        let reply = {
            let mut st = state.lock().unwrap();
            st.requests.push(req);
            st.script.pop_front().unwrap_or_else(|| status(200))
        };
        match reply {
            Reply::Status(code, headers, body) => {
                let mut head = format!(
                    "HTTP/1.1 {code} Scripted\r\nContent-Length: {}\r\n",
                    body.len()
                );
                for (n, v) in headers {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                head.push_str("\r\n");
                if out.write_all(head.as_bytes()).is_err() || out.write_all(&body).is_err() {
                    return;
                }
            }
            Reply::Hang(d) => {
                thread::sleep(d);
                return;
            }
            Reply::Reset => return,
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const BINARY: &[u8] = &[0, 1, 2, 0xfe, 0xff, b'\r', b'\n', 0x80];

/// Events covering the interesting cases: non-ASCII subject, extensions of
/// several types, JSON, text and binary data, and no data at all.
fn events() -> Vec<Event<'static>> {
    let t = Timestamp::parse("2024-06-01T12:00:00.123456Z").unwrap();
    vec![
        Event::builder()
            .id("e-json")
            .source("/agents/researcher")
            .ty("ai.ossa.tool.called")
            .subject("Grüße € 😀 \"quoted\" %20")
            .time(t)
            .ossa_agent_id("agent-1")
            .extension("count", ExtValue::Integer(-42))
            .extension("flag", ExtValue::Boolean(true))
            .extension("where", ExtValue::Uri("https://example.com/x?y=1"))
            .extension("blob", ExtValue::Binary(b"\x00\x01bin"))
            .extension_str("note", "naïve, ok; semi: colon")
            .data_json(r#"{"q":"rust","n":[1,2.5,null],"nested":{"ü":"ß"}}"#)
            .build()
            .unwrap(),
        Event::builder()
            .id("e-text")
            .source("urn:ossa:test")
            .ty("ai.ossa.note")
            .subject("plain")
            .data_text("text/plain; charset=utf-8", "line one\nlíne two ✓")
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
            .build()
            .unwrap(),
    ]
}

fn encode(sink: &HttpSink, evs: &[Event<'_>]) -> Vec<Encoded> {
    evs.iter()
        .map(|e| Encoded::new(e, sink.encoding()).unwrap())
        .collect()
}

fn sink(server: &Server, mode: HttpMode) -> HttpSink {
    HttpSink::builder(server.url())
        .mode(mode)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

/// A few plain events for the fault scripts.
fn plain(n: usize, sink: &HttpSink) -> Vec<Encoded> {
    let ids: Vec<String> = (0..n).map(|i| format!("p-{i}")).collect();
    ids.iter()
        .map(|id| {
            let ev = Event::builder()
                .id(id)
                .source("/s")
                .ty("t")
                .data_json("{}")
                .build()
                .unwrap();
            Encoded::new(&ev, sink.encoding()).unwrap()
        })
        .collect()
}

/// Parses a recorded request back into events with our HTTP binding parser.
fn parse_back(req: &Recorded, check: impl Fn(usize, &Event<'_>)) -> usize {
    parse_events(&req.headers, &req.body, check).unwrap()
}

fn expect_err(r: Result<(), SendError>) -> SendError {
    match r {
        Ok(()) => panic!("expected a failure"),
        Err(e) => e,
    }
}

/// An IMF-fixdate for `t` (seconds since the epoch, UTC).
fn imf_fixdate(t: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

// ---------------------------------------------------------------------------
// 1. What each mode sends
// ---------------------------------------------------------------------------

#[test]
fn structured_mode_sends_one_json_event_per_request() {
    let server = Server::start();
    let mut sink = HttpSink::builder(server.url())
        .mode(HttpMode::Structured)
        .header("Authorization", "Bearer t0ken")
        .header("X-Tenant", "acme")
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let evs = events();
    let enc = encode(&sink, &evs);
    sink.send(&enc).unwrap();

    let reqs = server.requests();
    assert_eq!(reqs.len(), evs.len());
    for (i, req) in reqs.iter().enumerate() {
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/events")
        );
        assert_eq!(
            req.header("content-type"),
            Some("application/cloudevents+json; charset=utf-8")
        );
        assert_eq!(req.header("authorization"), Some("Bearer t0ken"));
        assert_eq!(req.header("x-tenant"), Some("acme"));
        assert_eq!(req.header("content-encoding"), None);
        assert!(
            req.header("user-agent")
                .unwrap()
                .starts_with("ossa-events/")
        );
        assert!(!req.headers.iter().any(|(n, _)| n.starts_with("ce-")));
        // The bytes encoded at emit, unchanged.
        assert_eq!(req.body, enc[i].json());
        let n = parse_back(req, |_, back| {
            assert!(back.same_as(&evs[i], true), "{back:?}\n!=\n{:?}", evs[i]);
        });
        assert_eq!(n, 1);
    }
}

#[test]
fn binary_mode_sends_ce_headers_and_the_data_as_body() {
    let server = Server::start();
    let mut sink = HttpSink::builder(server.url())
        .mode(HttpMode::Binary)
        .header("Authorization", "Bearer t0ken")
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let evs = events();
    let enc = encode(&sink, &evs);
    sink.send(&enc).unwrap();

    let reqs = server.requests();
    assert_eq!(reqs.len(), evs.len());
    for (i, req) in reqs.iter().enumerate() {
        assert_eq!(req.method, "POST");
        assert_eq!(req.header("authorization"), Some("Bearer t0ken"));
        assert_eq!(req.header("ce-specversion"), Some("1.0"));
        assert_eq!(req.header("ce-id"), Some(evs[i].id()));
        // Every ce- header exactly as encoded at emit (already percent-encoded).
        for (n, v) in enc[i].headers() {
            assert_eq!(req.header(n), Some(v), "{n}");
        }
        assert_eq!(req.header("content-type"), enc[i].content_type());
        assert_eq!(req.body, enc[i].body());
        let n = parse_back(req, |_, back| {
            assert!(back.same_as(&evs[i], false), "{back:?}\n!=\n{:?}", evs[i]);
        });
        assert_eq!(n, 1);
    }
    // Non-ASCII subject percent-encoded; binary data sent raw; no data → no Content-Type.
    assert!(reqs[0].header("ce-subject").unwrap().contains("%E2%82%AC"));
    assert_eq!(reqs[2].body, BINARY);
    assert_eq!(reqs[3].header("content-type"), None);
    assert!(reqs[3].body.is_empty());
}

#[test]
fn batched_mode_sends_a_json_array_per_max_batch_events() {
    let server = Server::start();
    let mut sink = HttpSink::builder(server.url())
        .mode(HttpMode::Batched)
        .max_batch(3)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    assert_eq!(sink.max_batch(), 3);
    let evs = events();
    let enc = encode(&sink, &evs);
    sink.send(&enc).unwrap();

    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "4 events at 3 per request");
    let mut seen = 0;
    for req in &reqs {
        assert_eq!(
            req.header("content-type"),
            Some("application/cloudevents-batch+json; charset=utf-8")
        );
        let n = parse_back(req, |k, back| {
            assert!(back.same_as(&evs[seen + k], true), "{back:?}");
        });
        seen += n;
    }
    assert_eq!(seen, evs.len());
    // `[` + the emit-time JSON joined by `,` + `]`, nothing re-serialized.
    let want: Vec<u8> = [
        &b"["[..],
        enc[0].json(),
        b",",
        enc[1].json(),
        b",",
        enc[2].json(),
        b"]",
    ]
    .concat();
    assert_eq!(reqs[0].body, want);
}

// ---------------------------------------------------------------------------
// 2. Classification
// ---------------------------------------------------------------------------

#[test]
fn retryable_statuses_carry_retry_after() {
    let server = Server::start();
    let mut sink = sink(&server, HttpMode::Structured);
    let one = plain(1, &sink);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let cases: Vec<(Reply, Option<Duration>)> = vec![
        (
            Reply::Status(503, vec![("Retry-After", "2".into())], b"busy".to_vec()),
            Some(Duration::from_secs(2)),
        ),
        (
            Reply::Status(
                503,
                vec![("Retry-After", imf_fixdate(now + 60))],
                Vec::new(),
            ),
            Some(Duration::from_secs(60)), // within a second or two, checked below
        ),
        (
            Reply::Status(
                503,
                vec![("Retry-After", "Fri, 31 Dec 1999 23:59:59 GMT".into())],
                Vec::new(),
            ),
            Some(Duration::ZERO),
        ),
        (
            Reply::Status(
                429,
                vec![("Retry-After", "1".into())],
                b"slow down".to_vec(),
            ),
            Some(Duration::from_secs(1)),
        ),
        (
            Reply::Status(503, vec![("Retry-After", "whenever".into())], Vec::new()),
            None,
        ),
        (status(408), None),
        (status(429), None),
        (status(500), None),
        (status(502), None),
        (status(503), None),
        (status(504), None),
        (status(507), None),
        (status(599), None),
    ];
    for (reply, want_after) in cases {
        let Reply::Status(code, ..) = reply else {
            unreachable!()
        };
        server.script([reply]);
        let e = expect_err(sink.send(&one));
        assert_eq!(e.failures()[0].events.start, 0);
        match *e.error() {
            Error::HttpStatus { status, .. } => assert_eq!(status, code),
            ref other => panic!("{code}: {other:?}"),
        }
        let Retry::Yes { after } = e.failures()[0].retry else {
            panic!("{code} must be retryable: {e:?}")
        };
        match (after, want_after) {
            (Some(got), Some(want)) if want == Duration::from_secs(60) => {
                assert!(
                    got <= want && got >= want - Duration::from_secs(3),
                    "HTTP-date Retry-After: {got:?}"
                );
            }
            (got, want) => assert_eq!(got, want, "{code}"),
        }
    }
    // The error body excerpt is kept for retryable statuses too.
    server.script([Reply::Status(503, Vec::new(), b"overloaded".to_vec())]);
    let e = expect_err(sink.send(&one));
    assert!(
        matches!(*e.error(), Error::HttpStatus { status: 503, ref body } if body == "overloaded")
    );
    // One connection throughout: error answers were drained and kept alive.
    assert_eq!(server.connections(), 1);
}

#[test]
fn fatal_statuses_report_the_status_and_a_body_excerpt() {
    let server = Server::start();
    let mut sink = sink(&server, HttpMode::Structured);
    let one = plain(1, &sink);
    let msg = "invalid event: attribute 'source' is missing";
    for code in [
        400u16, 401, 403, 404, 405, 409, 410, 415, 422, 431, 501, 301, 307,
    ] {
        server.script([Reply::Status(
            code,
            vec![
                ("Location", "http://127.0.0.1:9/elsewhere".into()),
                ("Retry-After", "5".into()),
            ],
            msg.as_bytes().to_vec(),
        )]);
        let e = expect_err(sink.send(&one));
        assert_eq!(
            e.failures()[0].retry,
            Retry::No,
            "{code} must not be retried"
        );
        assert_eq!(e.failures()[0].events.start, 0);
        match *e.error() {
            Error::HttpStatus { status, ref body } => {
                assert_eq!(status, code);
                assert_eq!(body, msg);
            }
            ref other => panic!("{code}: {other:?}"),
        }
        assert!(
            e.to_string().contains("attribute 'source' is missing"),
            "{e}"
        );
    }
    // Redirects are not followed: one request per send.
    assert_eq!(server.requests().len(), 13);

    // A long body is cut to an excerpt.
    server.script([Reply::Status(400, Vec::new(), vec![b'x'; 100_000])]);
    let e = expect_err(sink.send(&one));
    let Error::HttpStatus { status: 400, body } = e.error() else {
        panic!("{e:?}")
    };
    assert!(body.len() <= 256 && body.len() >= 100, "{}", body.len());
}

#[test]
fn two_hundreds_are_delivered() {
    let server = Server::start();
    let mut sink = sink(&server, HttpMode::Structured);
    let evs = plain(4, &sink);
    server.script([status(200), status(201), status(202), status(204)]);
    sink.send(&evs).unwrap();
    assert_eq!(server.requests().len(), 4);
    sink.send(&[]).unwrap();
    assert_eq!(server.requests().len(), 4, "nothing to send, no request");
}

#[test]
fn delivered_counts_the_requests_that_succeeded() {
    // Structured: stops at a failure that says the collector cannot take
    // more now.
    let server = Server::start();
    let mut s = sink(&server, HttpMode::Structured);
    let evs = plain(5, &s);
    server.script([status(200), status(200), status(503)]);
    let e = expect_err(s.send(&evs));
    assert_eq!(
        (e.failures()[0].events.start, e.failures()[0].retry),
        (2, Retry::Yes { after: None })
    );
    assert_eq!(server.requests().len(), 3, "no request after the failure");

    // Binary: a fatal status concerns its own event only; the rest are sent.
    let server = Server::start();
    let mut s = sink(&server, HttpMode::Binary);
    let evs = plain(5, &s);
    server.script([status(200), Reply::Status(400, Vec::new(), b"no".to_vec())]);
    let e = expect_err(s.send(&evs));
    assert_eq!(e.failures().len(), 1, "{e:?}");
    assert_eq!(
        (e.failures()[0].events.clone(), e.failures()[0].retry),
        (1..2, Retry::No)
    );
    assert!(
        (0..5)
            .filter(|&i| i != 1)
            .all(|i| e.failure_of(i).is_none())
    );
    assert_eq!(server.requests().len(), 5);

    // Batched: counts whole requests.
    let server = Server::start();
    let mut s = HttpSink::builder(server.url())
        .mode(HttpMode::Batched)
        .max_batch(2)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let evs = plain(5, &s);
    server.script([status(200), status(503)]);
    let e = expect_err(s.send(&evs));
    assert_eq!(
        (e.failures()[0].events.start, e.failures()[0].retry),
        (2, Retry::Yes { after: None })
    );
    assert_eq!(server.requests().len(), 2);
    // Then the rest goes through.
    s.send(&evs[2..]).unwrap();
    assert_eq!(server.requests().len(), 4);
    // A 500 is the request's own: its events are retried, and the next
    // request is made (a collector that chokes on one event takes the
    // others).
    server.script([status(200), status(500), status(200)]);
    let e = expect_err(s.send(&evs));
    assert_eq!(e.failures().len(), 1, "{e:?}");
    assert_eq!(
        (e.failures()[0].events.clone(), e.failures()[0].retry),
        (2..4, Retry::Yes { after: None })
    );
    assert_eq!(server.requests().len(), 7);
}

/// RFC 9110 §15.5.14: a server whose 413 is temporary says so with
/// `Retry-After`, and when the client may try again. Such a 413 is retried
/// then, whole (a batch is not split for it), and stops the send as a 503
/// would; a 413 without it is still refused for good.
#[test]
fn a_413_with_retry_after_is_retried_whole_after_it() {
    let server = Server::start();
    let mut single = sink(&server, HttpMode::Structured);
    let evs = plain(3, &single);
    let temporary = Reply::Status(413, vec![("Retry-After", "5".into())], b"busy".to_vec());
    server.script([status(200), temporary.clone()]);
    let e = expect_err(single.send(&evs));
    assert_eq!(e.failures().len(), 1, "{e:?}");
    assert_eq!(
        (e.failures()[0].events.clone(), e.failures()[0].retry),
        (
            1..evs.len(),
            Retry::Yes {
                after: Some(Duration::from_secs(5))
            }
        ),
        "the 413's event and the ones after it"
    );
    assert_eq!(server.requests().len(), 2);
    server.script([status(413)]);
    let e = expect_err(single.send(&evs[..1]));
    assert_eq!(e.failures()[0].retry, Retry::No);

    // Batched: the request is not split, it is retried whole.
    let mut batched = HttpSink::builder(server.url())
        .mode(HttpMode::Batched)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let evs = plain(4, &batched);
    let before = server.requests().len();
    server.script([temporary]);
    let e = expect_err(batched.send(&evs));
    assert_eq!(
        (e.failures()[0].events.clone(), e.failures()[0].retry),
        (
            0..evs.len(),
            Retry::Yes {
                after: Some(Duration::from_secs(5))
            }
        )
    );
    assert_eq!(
        server.requests().len(),
        before + 1,
        "one request, not split"
    );
}

/// An event that carries events (its `datacontenttype` a CloudEvents
/// format) goes structured from a binary-mode sink: the receiver reads that
/// event. (Sent binary, its content type was the message's, and the
/// receiver read the events it carried in its place, while the emitter
/// counted it delivered. Found by a review.)
#[test]
fn binary_mode_sends_an_event_that_carries_events_structured() {
    let server = Server::start();
    let mut s = sink(&server, HttpMode::Binary);
    let inner = r#"[{"specversion":"1.0","id":"inner-1","source":"/s","type":"t"},{"specversion":"1.0","id":"inner-2","source":"/s","type":"t"}]"#;
    let one = r#"{"specversion":"1.0","id":"inner-1","source":"/s","type":"t"}"#;
    for (ct, data) in [
        ("application/cloudevents-batch+json", inner),
        ("Application/CloudEvents+json; charset=utf-8", one),
    ] {
        let ev = Event::builder()
            .id("outer")
            .source("/s")
            .ty("dev.example.forwarded")
            .data_json(data)
            .datacontenttype(ct)
            .build()
            .unwrap();
        sends_structured(&server, &mut s, &ev);
    }
}

/// Sends `ev` through binary-mode sink `s` and checks that it went as one
/// structured message that reads back as `ev`.
fn sends_structured(server: &Server, s: &mut HttpSink, ev: &Event<'_>) {
    let enc = Encoded::for_sink(ev, &*s).unwrap();
    s.send(std::slice::from_ref(&enc)).unwrap();
    let reqs = server.requests();
    let req = reqs.last().unwrap();
    let ct_sent = req.header("content-type").unwrap_or("");
    assert!(
        ct_sent.starts_with("application/cloudevents+json"),
        "{ev:?}: {ct_sent}"
    );
    let n = parse_back(req, |_, back| {
        assert!(back.same_as(ev, false), "{back:?}\n!=\n{ev:?}");
    });
    assert_eq!(n, 1, "{ev:?}");
}

/// Data a binary body cannot carry goes structured from a binary-mode sink,
/// as `http_types::encode` writes it: empty data (an empty body is read as
/// no data) and bytes that are not JSON under a JSON `datacontenttype` (the
/// receiver reads the body as JSON and refuses the message). Sent binary,
/// the first came back without its data and the second was refused with
/// 400 and failed for good.
#[test]
fn binary_mode_sends_data_a_body_cannot_carry_structured() {
    let server = Server::start();
    let mut s = sink(&server, HttpMode::Binary);
    let b = || Event::builder().id("e").source("/s").ty("t");
    for ev in [
        b().data(ossa_events::Data::Text(""))
            .datacontenttype("text/plain"),
        b().data(ossa_events::Data::Binary(b"")),
        b().data(ossa_events::Data::Binary(&[0, 1, 2]))
            .datacontenttype("application/json"),
    ] {
        sends_structured(&server, &mut s, &ev.build().unwrap());
    }
    // Data a body carries still goes binary.
    let ev = b()
        .data(ossa_events::Data::Binary(&[0, 1, 2]))
        .build()
        .unwrap();
    let enc = Encoded::for_sink(&ev, &s).unwrap();
    s.send(std::slice::from_ref(&enc)).unwrap();
    let reqs = server.requests();
    assert!(reqs.last().unwrap().header("ce-id").is_some());
}

#[test]
fn events_in_the_wrong_encoding_are_refused_not_sent() {
    let server = Server::start();
    let mut s = sink(&server, HttpMode::Binary);
    let mut evs = plain(2, &s);
    let ev = Event::builder()
        .id("j")
        .source("/s")
        .ty("t")
        .build()
        .unwrap();
    evs.push(Encoded::new(&ev, ossa_events::sink::Encoding::KafkaBinary).unwrap());
    let e = expect_err(s.send(&evs));
    assert_eq!(
        (e.failures()[0].events.start, e.failures()[0].retry),
        (2, Retry::No)
    );
    assert!(matches!(*e.error(), Error::Encode(_)), "{e:?}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_hang_times_out_and_is_retryable() {
    let server = Server::start();
    let timeout = Duration::from_millis(400);
    let mut s = HttpSink::builder(server.url())
        .timeout(timeout)
        .build()
        .unwrap();
    let one = plain(1, &s);
    server.script([Reply::Hang(Duration::from_secs(3))]);
    let t0 = Instant::now();
    let e = expect_err(s.send(&one));
    let took = t0.elapsed();
    assert!(matches!(*e.error(), Error::Timeout(Phase::Send)), "{e:?}");
    assert_eq!(
        (e.failures()[0].events.start, e.failures()[0].retry),
        (0, Retry::Yes { after: None })
    );
    assert!(took >= timeout - Duration::from_millis(50), "{took:?}");
    assert!(took < timeout + Duration::from_millis(1500), "{took:?}");
    // The sink recovers on a new connection.
    s.send(&one).unwrap();
    assert_eq!(server.connections(), 2);
}

#[test]
fn send_by_cuts_each_request_to_the_deadline_and_starts_none_after_it() {
    let server = Server::start();
    // The sink's own limit is long; the deadline (the emitter's shutdown
    // deadline, in production) is what must hold.
    let mut s = HttpSink::builder(server.url())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let evs = plain(3, &s);
    server.script([status(200), Reply::Hang(Duration::from_secs(10))]);
    let t0 = Instant::now();
    let e = expect_err(s.send_by(&evs, SendDeadline::at(t0 + Duration::from_millis(600))));
    let took = t0.elapsed();
    assert_eq!(e.failures()[0].events.start, 1, "{e:?}");
    assert_eq!(e.failures()[0].retry, Retry::Yes { after: None });
    assert!(matches!(*e.error(), Error::Timeout(_)), "{e:?}");
    assert!(
        took < Duration::from_secs(5),
        "the request outlived its deadline: {took:?}"
    );
    // A deadline already past: nothing is sent at all.
    let before = server.requests().len();
    let e = expect_err(s.send_by(&evs[1..], SendDeadline::at(Instant::now())));
    assert_eq!(e.failures()[0].events.start, 0);
    assert!(
        matches!(*e.error(), Error::Timeout(Phase::Shutdown)),
        "{e:?}"
    );
    assert_eq!(server.requests().len(), before);
    // Without a deadline the sink works as before.
    server.script([status(200), status(200)]);
    s.send_by(&evs[1..], SendDeadline::NONE).unwrap();
}

#[test]
fn a_reset_is_a_retryable_transport_error() {
    let server = Server::start();
    let mut s = sink(&server, HttpMode::Structured);
    let evs = plain(3, &s);
    server.script([status(200), Reply::Reset]);
    let e = expect_err(s.send(&evs));
    assert!(matches!(*e.error(), Error::Transport(_)), "{e:?}");
    assert_eq!(
        (e.failures()[0].events.start, e.failures()[0].retry),
        (1, Retry::Yes { after: None })
    );
    // And the next attempt goes out on a fresh connection.
    s.send(&evs[1..]).unwrap();
    assert_eq!(server.requests().len(), 4);
    assert_eq!(server.connections(), 2);
}

#[test]
fn a_refused_connection_is_a_retryable_transport_error() {
    let port = dead_port();
    let mut s = HttpSink::builder(format!("http://127.0.0.1:{port}/events"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let one = plain(1, &s);
    let t0 = Instant::now();
    let e = expect_err(s.send(&one));
    assert!(
        matches!(
            *e.error(),
            Error::Transport(_) | Error::Timeout(Phase::Connect)
        ),
        "{e:?}"
    );
    assert_eq!(
        (e.failures()[0].events.start, e.failures()[0].retry),
        (0, Retry::Yes { after: None })
    );
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[test]
fn an_https_url_builds_a_tls_agent() {
    // Nothing is sent: the network is out of reach here.
    let s = HttpSink::builder("https://collector.example:8443/v1/events")
        .build()
        .unwrap();
    assert_eq!(s.url(), "https://collector.example:8443/v1/events");
    assert!(
        HttpSink::builder("ftp://collector.example/")
            .build()
            .is_err()
    );
}

// ---------------------------------------------------------------------------
// 3. Connection reuse
// ---------------------------------------------------------------------------

#[test]
fn many_sends_share_one_keep_alive_connection() {
    let server = Server::start();
    for mode in [HttpMode::Structured, HttpMode::Binary, HttpMode::Batched] {
        let before = server.connections();
        let mut s = sink(&server, mode);
        let evs = plain(10, &s);
        for _ in 0..20 {
            s.send(&evs).unwrap();
        }
        // Error answers with bodies do not cost the connection either.
        server.script([
            Reply::Status(400, Vec::new(), b"bad".to_vec()),
            Reply::Status(503, vec![("Retry-After", "1".into())], b"later".to_vec()),
        ]);
        // One event per request: the 400 fails one event, the 503 stops the
        // send; a batch takes one answer per send.
        assert!(s.send(&evs).is_err());
        if mode == HttpMode::Batched {
            assert!(s.send(&evs).is_err());
        }
        s.send(&evs).unwrap();
        assert_eq!(server.connections() - before, 1, "{mode:?}");
    }
    assert_eq!(
        server.requests().len(),
        2 * (20 * 10 + 2 + 10) + (20 + 2 + 1)
    );
}

// ---------------------------------------------------------------------------
// 4. gzip
// ---------------------------------------------------------------------------

/// A collector that answers 415 with an `Accept-Encoding` without gzip gets
/// the same body again uncompressed at once, and every later request
/// uncompressed; a 415 that does not say so (or says gzip is fine) is the
/// request's failure, and gzip stays on.
#[test]
fn a_collector_that_refuses_gzip_gets_the_body_again_uncompressed_and_from_then_on() {
    let server = Server::start();
    let mut s = HttpSink::builder(server.url())
        .mode(HttpMode::Batched)
        .gzip(true)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let evs = events();
    let enc = encode(&s, &evs);
    let refuse = |accept: Option<&str>| {
        let headers = accept.map(|a| vec![("Accept-Encoding", a.to_owned())]);
        Reply::Status(415, headers.unwrap_or_default(), b"no gzip".to_vec())
    };
    // Not said, then said to be fine: failures of their own, gzip kept.
    server.script([refuse(None), refuse(Some("gzip, identity"))]);
    for _ in 0..2 {
        let err = s.send(&enc).unwrap_err();
        assert!(
            matches!(err.error(), Error::HttpStatus { status: 415, .. }),
            "{err:?}"
        );
    }
    // Said: sent again uncompressed, delivered; the next send too.
    server.script([refuse(Some("identity"))]);
    s.send(&enc).unwrap();
    s.send(&enc).unwrap();
    let reqs = server.requests();
    let codings: Vec<Option<&str>> = reqs.iter().map(|r| r.header("content-encoding")).collect();
    assert_eq!(
        codings,
        [Some("gzip"), Some("gzip"), Some("gzip"), None, None],
        "{reqs:?}"
    );
    // The same events each time, whatever the coding.
    assert!(reqs.iter().all(|r| r.body == reqs[0].body));
    assert_eq!(&reqs[3].raw_body, &reqs[3].body);
}

#[test]
fn gzip_bodies_decode_to_the_same_bytes() {
    for mode in [HttpMode::Structured, HttpMode::Binary, HttpMode::Batched] {
        let server = Server::start();
        let mut s = HttpSink::builder(server.url())
            .mode(mode)
            .gzip(true)
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let evs = events();
        let enc = encode(&s, &evs);
        s.send(&enc).unwrap();
        s.send(&enc).unwrap(); // the gzip buffer is reused

        let reqs = server.requests();
        let per_send = if mode == HttpMode::Batched {
            1
        } else {
            evs.len()
        };
        assert_eq!(reqs.len(), 2 * per_send);
        let mut parsed = 0;
        for (i, req) in reqs.iter().enumerate() {
            assert_eq!(req.header("content-encoding"), Some("gzip"), "{mode:?}");
            assert_eq!(&req.raw_body[..2], &[0x1f, 0x8b], "gzip magic");
            let k = i % per_send;
            let want: Vec<u8> = match mode {
                HttpMode::Structured => enc[k].json().to_vec(),
                HttpMode::Binary => enc[k].body().to_vec(),
                _ => {
                    let parts: Vec<&[u8]> = enc.iter().map(Encoded::json).collect();
                    [&b"["[..], &parts.join(&b","[..]), b"]"].concat()
                }
            };
            assert_eq!(req.body, want, "{mode:?}");
            parsed += parse_back(req, |j, back| {
                assert!(
                    back.same_as(&evs[k + j], mode != HttpMode::Binary),
                    "{back:?}"
                );
            });
        }
        assert_eq!(parsed, 2 * evs.len());
    }
}
