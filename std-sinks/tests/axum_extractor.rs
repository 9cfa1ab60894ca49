//! `ossa_events::axum::CloudEvents` in a real axum server on loopback: our
//! `HttpSink` delivers to it in all three content modes, and bad requests
//! sent by a plain HTTP client get the documented answers without the
//! handler ever seeing an event of them.
#![cfg(all(feature = "axum", feature = "http"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use ossa_events::axum::CloudEvents;
use ossa_events::sink::{HttpMode, HttpSink};
use ossa_events::{Emitter, EventBuilder};

/// One request as the handler saw it: `(batched, [(id, type, data)])`.
type Request = (bool, Vec<(String, String, Option<String>)>);
/// Every request the handler saw.
type Seen = Arc<Mutex<Vec<Request>>>;

/// An axum server on a free loopback port, stopped on drop.
struct Server {
    addr: SocketAddr,
    seen: Seen,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn collect(State(seen): State<Seen>, events: CloudEvents) -> StatusCode {
    let mut got = Vec::new();
    events.for_each(|ev| {
        let data = match ev.data() {
            Some(ossa_events::Data::Json(raw)) => Some(raw.to_string()),
            Some(other) => Some(format!("{other:?}")),
            None => None,
        };
        got.push((ev.id().to_owned(), ev.ty().to_owned(), data));
    });
    assert_eq!(got.len(), events.len());
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((events.is_batch(), got));
    StatusCode::ACCEPTED
}

impl Server {
    fn start(body_limit: usize) -> Server {
        Server::start_with(|r| r.layer(DefaultBodyLimit::max(body_limit)))
    }

    /// A server whose router `layers` dresses (its body limit, extensions).
    fn start_with(layers: impl FnOnce(Router<Seen>) -> Router<Seen>) -> Server {
        let seen: Seen = Arc::default();
        let app = layers(Router::new().route("/events", post(collect))).with_state(seen.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Server {
            addr: rx.recv().unwrap(),
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    fn seen(&self) -> Vec<Request> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn our_http_sink_delivers_to_an_axum_handler_in_every_mode() {
    for gzip in [false, true] {
        delivers_in_every_mode(gzip);
    }
}

/// Our `HttpSink`, gzipping its bodies or not, in each mode: every event
/// reaches the handler once, its data as sent (not the gzip bytes).
fn delivers_in_every_mode(gzip: bool) {
    let server = Server::start(2 * 1024 * 1024);
    for mode in [HttpMode::Structured, HttpMode::Binary, HttpMode::Batched] {
        let sink = HttpSink::builder(server.url()).mode(mode).gzip(gzip);
        let emitter = Emitter::builder("/agents/a")
            .sink(sink.build().unwrap())
            .build()
            .unwrap();
        for i in 0..5 {
            emitter
                .emit(
                    EventBuilder::new()
                        .id(&format!("{mode:?}-{i}"))
                        .ty("dev.ossa.tool.called")
                        .data_json(r#"{"tool":"search \"q\""}"#),
                )
                .unwrap();
        }
        let report = emitter.shutdown().unwrap();
        assert_eq!(report.delivered, 5, "{mode:?}, gzip {gzip}: {report:?}");
    }
    let seen = server.seen();
    let ids: Vec<&str> = seen
        .iter()
        .flat_map(|(_, evs)| evs.iter().map(|(id, _, _)| id.as_str()))
        .collect();
    let want: Vec<String> = ["Structured", "Binary", "Batched"]
        .iter()
        .flat_map(|m| (0..5).map(move |i| format!("{m}-{i}")))
        .collect();
    assert_eq!(ids, want, "gzip {gzip}: every event exactly once, in order");
    // 5 + 5 single-event requests, then the batch in one or more requests.
    assert!(
        seen[..10]
            .iter()
            .all(|(batched, evs)| !batched && evs.len() == 1)
    );
    assert!(seen[10..].iter().all(|(batched, _)| *batched));
    for (_, evs) in &seen {
        for (_, ty, data) in evs {
            assert_eq!(ty, "dev.ossa.tool.called");
            assert_eq!(
                data.as_deref(),
                Some(r#"{"tool":"search \"q\""}"#),
                "gzip {gzip}"
            );
        }
    }
}

fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Sends `body` with `headers`; the status and the response text.
fn send(url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut req = client().post(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let mut res = req.send(body).unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_to_string().unwrap())
}

#[test]
fn bad_requests_get_their_status_and_reason_and_reach_no_handler() {
    let server = Server::start(1024);
    let url = server.url();
    let binary = [("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-type", "t")];
    // No ce-source: 400 naming the attribute.
    let (status, text) = send(&url, &binary, b"");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("source"), "{text}");
    // One bad element in a batch: the whole request refused, nothing handed over.
    let batch = r#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"},
                    {"specversion":"1.0","id":"2","source":"/s","type":"t","dataschema":"http://x/s#f"}]"#;
    let (status, text) = send(
        &url,
        &[("content-type", "application/cloudevents-batch+json")],
        batch.as_bytes(),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("dataschema"), "{text}");
    // Another event format: 415.
    let (status, _) = send(
        &url,
        &[("content-type", "application/cloudevents+avro")],
        b"\x00",
    );
    assert_eq!(status, 415);
    // Over the router's body limit: 413.
    let big = format!(
        r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"{}"}}"#,
        "x".repeat(2048)
    );
    let (status, _) = send(
        &url,
        &[("content-type", "application/cloudevents+json")],
        big.as_bytes(),
    );
    assert_eq!(status, 413);
    assert!(server.seen().is_empty(), "{:?}", server.seen());
    // And a valid one still goes through, with its escapes decoded.
    let (status, text) = send(
        &url,
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "caf%C3%A9"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
        ],
        b"",
    );
    assert_eq!(status, 202, "{text}");
    assert_eq!(server.seen()[0].1[0].0, "café");
}

fn gzipped(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn content_codings_other_than_gzip_and_bad_gzip_are_refused_before_the_handler() {
    let server = Server::start(2 * 1024 * 1024);
    let url = server.url();
    let event = br#"{"specversion":"1.0","id":"z","source":"/s","type":"t","data":"x"}"#;
    let structured = ("content-type", "application/cloudevents+json");
    // A coding the extractor does not read: 415, naming it.
    let (status, text) = send(&url, &[structured, ("content-encoding", "br")], event);
    assert_eq!(status, 415, "{text}");
    assert!(text.contains("br"), "{text}");
    // A chain of codings: 415.
    let (status, _) = send(
        &url,
        &[
            structured,
            ("content-encoding", "gzip"),
            ("content-encoding", "gzip"),
        ],
        &gzipped(&gzipped(event)),
    );
    assert_eq!(status, 415);
    // Said to be gzip, is not: 400.
    let (status, text) = send(&url, &[structured, ("content-encoding", "gzip")], event);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("gzip"), "{text}");
    // 17 MiB of spaces after the event, about 17 KiB gzipped: over what the
    // extractor inflates, 413.
    let mut bomb = event.to_vec();
    bomb.resize(17 * 1024 * 1024, b' ');
    let bomb = gzipped(&bomb);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let (status, _) = send(&url, &[structured, ("content-encoding", "gzip")], &bomb);
    assert_eq!(status, 413);
    assert!(server.seen().is_empty(), "{:?}", server.seen());
    // `identity`, `x-gzip` and gzip in any case are read.
    let (status, text) = send(&url, &[structured, ("content-encoding", "identity")], event);
    assert_eq!(status, 202, "{text}");
    let (status, text) = send(
        &url,
        &[structured, ("content-encoding", "X-GZIP")],
        &gzipped(event),
    );
    assert_eq!(status, 202, "{text}");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|(_, evs)| evs[0].0 == "z" && evs[0].2.as_deref() == Some("\"x\""))
    );
}

/// Writes `head` (request line and headers, without the blank line) and
/// `body` on a new connection; the answer's status.
#[cfg(feature = "receiver")]
fn status_of_raw(addr: SocketAddr, head: &str, body: &[u8]) -> u16 {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

/// The same bytes get the same answer from the extractor as from the
/// built-in receiver (what `listen` runs). A request with two
/// `Content-Type` headers is refused by the receiver (`400`: which of them
/// picks the content mode is anyone's guess, and a proxy may pick the other
/// one), and so is a `Content-Type` with bytes outside visible ASCII (no
/// media type); the extractor took the first of two, read the other as
/// UTF-8, and handed the event over. An event format other than JSON is
/// `415` from the head, whatever the body: the extractor inflated a body
/// said to be gzip first, and answered `400` when it was not.
#[cfg(feature = "receiver")]
#[test]
fn the_extractor_refuses_what_the_built_in_receiver_refuses() {
    use ossa_events::receiver::{Receiver, ReceiverConfig};
    let server = Server::start(2 * 1024 * 1024);
    let listen = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())
        .unwrap()
        .spawn(|_: &ossa_events::Event<'_>| {})
        .unwrap();
    let event = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}"#;
    let cases: [(&str, &[u8]); 6] = [
        (
            "POST /events HTTP/1.1\r\nContent-Type: application/cloudevents+json; x=\u{e9}",
            event,
        ),
        (
            "POST /events HTTP/1.1\r\nContent-Type: text/plain; x=\u{e9}\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-source: /s\r\nce-type: t",
            b"hi",
        ),
        (
            "POST /events HTTP/1.1\r\nContent-Type: application/cloudevents+json\r\nContent-Type: text/plain",
            event,
        ),
        (
            "POST /events HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Type: application/cloudevents+json\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-source: /s\r\nce-type: t",
            event,
        ),
        (
            "POST /events HTTP/1.1\r\nContent-Type: application/cloudevents+avro\r\nContent-Encoding: gzip",
            event,
        ),
        (
            "POST /events HTTP/1.1\r\nContent-Type: application/cloudevents+json",
            event,
        ),
    ];
    for (head, body) in cases {
        let theirs = status_of_raw(listen.local_addr(), head, body);
        let ours = status_of_raw(server.addr, head, body);
        assert_eq!(ours, theirs, "{head:?}");
    }
    assert_eq!(server.seen().len(), 1, "{:?}", server.seen());
    listen.shutdown();
}

/// A content coding refused (`415`) names the ones taken in
/// `Accept-Encoding` (RFC 9110, section 15.5.16), as the built-in receiver
/// does; the extractor's answer had no such header.
#[cfg(feature = "receiver")]
#[test]
fn a_refused_content_coding_is_answered_with_the_codings_taken() {
    use ossa_events::receiver::{Receiver, ReceiverConfig};
    let server = Server::start(2 * 1024 * 1024);
    let listen = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())
        .unwrap()
        .spawn(|_: &ossa_events::Event<'_>| {})
        .unwrap();
    let event = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;
    let answer = |url: String| {
        let res = client()
            .post(url)
            .header("content-type", "application/cloudevents+json")
            .header("content-encoding", "br")
            .send(&event[..])
            .unwrap();
        let accept = res
            .headers()
            .get("accept-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        (res.status().as_u16(), accept)
    };
    let theirs = answer(format!("http://{}/events", listen.local_addr()));
    assert_eq!(theirs, (415, Some("gzip, identity".to_owned())));
    assert_eq!(answer(server.url()), theirs);
    assert!(server.seen().is_empty(), "{:?}", server.seen());
    listen.shutdown();
}

/// What the HTTP binding has a receiver refuse, refused by the extractor
/// with the built-in receiver's status, and what it must accept (a
/// quoted-string value, lower-case escapes, a batch) accepted: a
/// `ce-specversion` other than `1.0`, each required attribute missing, an
/// escape that is not one or decodes to bytes that are not UTF-8 (the
/// overlong `%C0%A0` of §3.1.3.2), `ce-datacontenttype` in binary mode,
/// an attribute given twice.
#[cfg(feature = "receiver")]
#[test]
fn spec_refusals_get_the_receivers_status_from_the_extractor() {
    use ossa_events::receiver::{Receiver, ReceiverConfig};
    let server = Server::start(2 * 1024 * 1024);
    let listen = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())
        .unwrap()
        .spawn(|_: &ossa_events::Event<'_>| {})
        .unwrap();
    let post = "POST /events HTTP/1.1";
    let ev = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;
    let bin = |extra: &str| {
        format!("{post}\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-source: /s\r\nce-type: t{extra}")
    };
    let cases: Vec<(u16, String, String)> = vec![
        (
            400,
            format!("{post}\r\nce-specversion: 0.3\r\nce-id: 1\r\nce-source: /s\r\nce-type: t"),
            String::new(),
        ),
        (
            400,
            format!("{post}\r\nce-specversion: 1.0\r\nce-source: /s\r\nce-type: t"),
            String::new(),
        ),
        (
            400,
            format!("{post}\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-type: t"),
            String::new(),
        ),
        (
            400,
            format!("{post}\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-source: /s"),
            String::new(),
        ),
        (
            400,
            format!("{post}\r\nce-id: 1\r\nce-source: /s\r\nce-type: t"),
            String::new(),
        ),
        (400, bin("\r\nce-subject: 100%"), String::new()),
        (400, bin("\r\nce-subject: %C0%A0"), String::new()),
        (400, bin("\r\nce-subject: \"open"), String::new()),
        (
            400,
            bin("\r\nce-datacontenttype: text/plain"),
            String::new(),
        ),
        (400, bin("\r\nce-id: 2"), String::new()),
        (
            202,
            bin("\r\nce-subject: \"a b\"\r\nce-x: caf%c3%a9%20%22%25"),
            String::new(),
        ),
        (
            400,
            format!("{post}\r\nContent-Type: application/cloudevents+json"),
            ev.replace("1.0", "0.3"),
        ),
        (
            202,
            format!("{post}\r\nContent-Type: application/cloudevents-batch+json"),
            format!("[{ev},{ev}]"),
        ),
        (
            400,
            format!("{post}\r\nContent-Type: application/cloudevents-batch+json"),
            ev.to_owned(),
        ),
        (
            400,
            format!("{post}\r\nContent-Type: application/cloudevents+json"),
            format!("[{ev}]"),
        ),
    ];
    for (want, head, body) in &cases {
        let theirs = status_of_raw(listen.local_addr(), head, body.as_bytes());
        let ours = status_of_raw(server.addr, head, body.as_bytes());
        assert_eq!((ours, theirs), (*want, *want), "{head:?} {body}");
    }
    assert_eq!(server.seen().len(), 2, "{:?}", server.seen());
    listen.shutdown();
}

/// `Content-Encoding` is a list, and a recipient MUST ignore its empty
/// elements (RFC 9110, sections 5.6.1 and 8.4): `gzip,`, `, gzip`, a `gzip`
/// line and an empty one all say gzip, and an empty value (no coding at
/// all) says identity. Both the extractor and the built-in receiver
/// answered each `415`. A chain (`gzip, gzip` on one line or two) is still
/// refused.
#[cfg(feature = "receiver")]
#[test]
fn empty_content_encoding_list_elements_are_ignored() {
    use ossa_events::receiver::{Receiver, ReceiverConfig};
    let server = Server::start(2 * 1024 * 1024);
    let listen = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())
        .unwrap()
        .spawn(|_: &ossa_events::Event<'_>| {})
        .unwrap();
    let event = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"x"}"#;
    let head = |coding: &str| {
        format!("POST /events HTTP/1.1\r\nContent-Type: application/cloudevents+json\r\n{coding}")
    };
    let gz = gzipped(event);
    let cases: [(u16, &str, &[u8]); 7] = [
        (202, "Content-Encoding: gzip,", &gz),
        (202, "Content-Encoding: , GZIP ,,", &gz),
        (202, "Content-Encoding: gzip\r\nContent-Encoding:", &gz),
        (202, "Content-Encoding:\r\nContent-Encoding: x-gzip", &gz),
        (202, "Content-Encoding: ", event),
        (202, "Content-Encoding: identity,", event),
        (
            415,
            "Content-Encoding: gzip,\r\nContent-Encoding: gzip",
            &gz,
        ),
    ];
    for (want, coding, body) in cases {
        let head = head(coding);
        let theirs = status_of_raw(listen.local_addr(), &head, body);
        let ours = status_of_raw(server.addr, &head, body);
        assert_eq!((ours, theirs), (want, want), "{coding:?}");
    }
    assert_eq!(server.seen().len(), 6, "{:?}", server.seen());
    listen.shutdown();
}

/// The router's `DefaultBodyLimit` bounds what the handler gets, gzip or
/// not, as the built-in receiver's `max_body_bytes` bounds the decoded body
/// too: 256 KiB of event in a few hundred gzip bytes went through a router
/// limited to 64 KiB (only `MAX_DECODED_BODY`, 16 MiB, bounded it), while
/// the same event sent plain was refused `413`.
#[test]
fn the_routers_body_limit_bounds_the_decoded_body() {
    let server = Server::start(64 * 1024);
    let url = server.url();
    let structured = ("content-type", "application/cloudevents+json");
    let event = |data_len: usize| {
        format!(
            r#"{{"specversion":"1.0","id":"z","source":"/s","type":"t","data":"{}"}}"#,
            "x".repeat(data_len)
        )
    };
    let big = event(256 * 1024);
    // Refused before it is all read: the answer is 413, or, when the
    // server closes first, the connection cut under the client's write.
    let plain = client()
        .post(&url)
        .header(structured.0, structured.1)
        .send(big.as_bytes());
    match plain {
        Ok(res) => assert_eq!(res.status().as_u16(), 413, "plain"),
        Err(ureq::Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "plain: {e}"
        ),
        Err(e) => panic!("plain: {e}"),
    }
    let gz = gzipped(big.as_bytes());
    assert!(gz.len() < 4 * 1024, "{}", gz.len());
    let (status, text) = send(&url, &[structured, ("content-encoding", "gzip")], &gz);
    assert_eq!(status, 413, "gzip: {text}");
    assert!(server.seen().is_empty(), "{:?}", server.seen());
    // Under the limit decoded: read, as before.
    let small = event(32 * 1024);
    let (status, text) = send(
        &url,
        &[structured, ("content-encoding", "gzip")],
        &gzipped(small.as_bytes()),
    );
    assert_eq!(status, 202, "{text}");
    assert_eq!(server.seen().len(), 1);
}

/// The decoded body is bounded by whatever limit the router has: axum's
/// 2 MiB default without a `DefaultBodyLimit` layer, none but
/// `MAX_DECODED_BODY` when the limit is disabled, and the router's own
/// limit still when other extensions ride along the request.
#[test]
fn the_decoded_body_limit_follows_the_router_with_no_layer_disabled_and_other_extensions() {
    use ossa_events::axum::MAX_DECODED_BODY;
    let structured = ("content-type", "application/cloudevents+json");
    let gzip = ("content-encoding", "gzip");
    let event = |data_len: usize| {
        gzipped(
            format!(
                r#"{{"specversion":"1.0","id":"z","source":"/s","type":"t","data":"{}"}}"#,
                "x".repeat(data_len)
            )
            .as_bytes(),
        )
    };
    let (two_mib_over, under) = (event(3 << 20), event(1 << 20));

    // No layer: axum's default 2 MiB.
    let server = Server::start_with(|r| r);
    let (status, text) = send(&server.url(), &[structured, gzip], &two_mib_over);
    assert_eq!(status, 413, "no layer, 3 MiB decoded: {text}");
    let (status, text) = send(&server.url(), &[structured, gzip], &under);
    assert_eq!(status, 202, "no layer, 1 MiB decoded: {text}");
    assert_eq!(server.seen().len(), 1);
    drop(server);

    // Disabled: only `MAX_DECODED_BODY`.
    let server = Server::start_with(|r| r.layer(DefaultBodyLimit::disable()));
    let (status, text) = send(&server.url(), &[structured, gzip], &two_mib_over);
    assert_eq!(status, 202, "disabled, 3 MiB decoded: {text}");
    let (status, text) = send(
        &server.url(),
        &[structured, gzip],
        &event(MAX_DECODED_BODY + 1),
    );
    assert_eq!(status, 413, "disabled, over MAX_DECODED_BODY: {text}");
    assert_eq!(server.seen().len(), 1);
    drop(server);

    // Other extensions beside the limit (either order): the limit holds,
    // and a body under it is read.
    #[derive(Clone)]
    struct Tag;
    for limit_first in [true, false] {
        let server = Server::start_with(|r| {
            if limit_first {
                r.layer(DefaultBodyLimit::max(64 * 1024))
                    .layer(axum::Extension(Tag))
            } else {
                r.layer(axum::Extension(Tag))
                    .layer(DefaultBodyLimit::max(64 * 1024))
            }
        });
        let (status, text) = send(&server.url(), &[structured, gzip], &event(256 * 1024));
        assert_eq!(status, 413, "with an extension: {text}");
        let (status, text) = send(&server.url(), &[structured, gzip], &event(16 * 1024));
        assert_eq!(status, 202, "with an extension: {text}");
        assert_eq!(server.seen().len(), 1);
    }
}
