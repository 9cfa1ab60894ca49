//! `HttpSink` and `OtlpSink` against hostile or broken collectors on a real
//! loopback socket: each server here writes exactly the bytes it wants.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ossa_events::sink::{Encoded, Encoding, HttpMode, HttpSink, Sink};
use ossa_events::{Emitter, Event, Reason, RetryPolicy};

use common::{Reports, fast_retry, read_head_lines, recorder};

/// A request head: headers lower-cased.
#[derive(Debug, Clone, Default)]
struct Head {
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        common::header(&self.headers, name)
    }
    fn len(&self) -> usize {
        self.get("content-length").map_or(0, |v| v.parse().unwrap())
    }
}

fn read_head(r: &mut impl BufRead) -> Option<Head> {
    read_head_lines(r).map(|headers| Head { headers })
}

fn read_body(r: &mut impl Read, head: &Head) -> Vec<u8> {
    let mut b = vec![0; head.len()];
    r.read_exact(&mut b).unwrap();
    b
}

type Handler =
    dyn Fn(usize, &Head, &mut BufReader<TcpStream>, &mut TcpStream) -> bool + Send + Sync + 'static;

/// A server that hands every request (numbered from 0, over all
/// connections) to `handler`; `false` closes the connection.
fn serve(
    handler: impl Fn(usize, &Head, &mut BufReader<TcpStream>, &mut TcpStream) -> bool
    + Send
    + Sync
    + 'static,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let handler: Arc<Handler> = Arc::new(handler);
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let (h, n) = (handler.clone(), n.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                while let Some(head) = read_head(&mut r) {
                    let i = n.fetch_add(1, Ordering::SeqCst);
                    if !h(i, &head, &mut r, &mut s) {
                        break;
                    }
                }
            });
        }
    });
    (addr, count)
}

/// [`serve`] with one answer to every request, its body read first:
/// `HTTP/1.1 {status}` (with any header lines after it), then `body`.
fn answering(status: &'static str, body: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    serve(move |_, head, r, s| {
        let _ = read_body(r, head);
        write!(
            s,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        true
    })
}

fn event(id: &str) -> Event<'_> {
    Event::builder()
        .id(id)
        .source("/agents/a")
        .ty("dev.example.tick")
        .build()
        .unwrap()
}

/// An emitter with an `OtlpSink` to `addr` (`retries` tries, undelivered
/// events into `reports`) that has emitted one lone event (its own span,
/// delivered when the request is accepted), and the sink's counts.
#[cfg(feature = "otlp")]
fn otlp_emitter(
    addr: SocketAddr,
    retries: u32,
    reports: &Reports,
) -> (Emitter, ossa_events::sink::otlp::OtlpStats) {
    let sink = ossa_events::sink::OtlpSink::builder(format!("http://{addr}"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let stats = sink.stats();
    let em = Emitter::builder("/agents/a")
        .sink(sink)
        .retry(fast_retry(retries))
        .on_undelivered(recorder(reports))
        .build()
        .unwrap();
    em.emit(Event::builder().id("lone-1").ty("dev.example.tick"))
        .unwrap();
    (em, stats)
}

/// What a bare sink's one `send` of one event makes of `answer`.
fn classify(answer: &'static [u8]) -> String {
    let (addr, _) = serve(move |_, head, r, s| {
        let _ = read_body(r, head);
        s.write_all(answer).unwrap();
        let _ = s.flush();
        std::thread::sleep(Duration::from_millis(300));
        false
    });
    let mut sink = HttpSink::builder(format!("http://{addr}/e"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let ev = event("e-1");
    let r = sink.send(&[Encoded::new(&ev, Encoding::Json).unwrap()]);
    match r {
        Ok(()) => "delivered".into(),
        Err(e) => format!("{:?} / {}", e.failure_of(0).map(|f| f.retry), e.error()),
    }
}

/// Answers a client must read past (1xx), answers it must not take for
/// success, and `Retry-After` values of every shape: how each is classified.
#[test]
fn odd_answers_are_classified_as_the_contract_says() {
    let yes = |s: u64| format!("Some(Yes {{ after: Some({s}s) }})");
    for (a, want) in [
        (&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..], "delivered".to_owned()),
        (b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "delivered".into()),
        (b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 503 Busy\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n", yes(3)),
        (b"HTTP/1.0 200 OK\r\n\r\nsome body", "delivered".into()),
        (b"HTTP/1.1 200\r\n\r\n", "delivered".into()),
        (b"HTTP/1.1 200 OK\n\n", "delivered".into()),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", "delivered".into()),
        // A 2xx whose body breaks off or is not valid chunked: still a 2xx.
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n", "delivered".into()),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", "delivered".into()),
        (b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n", "Some(Yes { after: None })".into()),
        (b"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n", "Some(No)".into()),
        (b"HTTP/1.1 307 Moved\r\nLocation: /other\r\nContent-Length: 0\r\n\r\n", "Some(No)".into()),
        (b"HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n", "Some(No)".into()),
        // No answer that can be read: a transport failure, retried.
        (b"garbage\r\n\r\n", "Some(Yes { after: None })".into()),
        (b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", "Some(Yes { after: None })".into()),
        (b"HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n", "Some(Yes { after: None })".into()),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n", "Some(Yes { after: None })".into()),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", "Some(Yes { after: None })".into()),
        // Retry-After: only delta-seconds and HTTP-dates; the first of two.
        (b"HTTP/1.1 503 X\r\nRetry-After: -5\r\nContent-Length: 0\r\n\r\n", "Some(Yes { after: None })".into()),
        (b"HTTP/1.1 503 X\r\nRetry-After: 1.5\r\nContent-Length: 0\r\n\r\n", "Some(Yes { after: None })".into()),
        (b"HTTP/1.1 429 Slow\r\nRetry-After: \xff\xfe\r\nContent-Length: 0\r\n\r\n", "Some(Yes { after: None })".into()),
        (b"HTTP/1.1 503 X\r\nRetry-After: 99999999999999999999999\r\nContent-Length: 0\r\n\r\n", yes(u64::MAX)),
        (b"HTTP/1.1 503 X\r\nRetry-After: 2\r\nRetry-After: 9\r\nContent-Length: 0\r\n\r\n", yes(2)),
        (b"HTTP/1.1 503 X\r\nRetry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\nContent-Length: 0\r\n\r\n", "Some(Yes { after: Some(0ns) })".into()),
    ] {
        let got = classify(a);
        assert!(
            got.starts_with(&want),
            "{:?}: {got}",
            String::from_utf8_lossy(a)
        );
    }
}

/// `common::noise` as letters and digits: a JSON string that does not
/// compress.
fn noise(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    common::noise(len, seed)
        .iter()
        .map(|&b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// A collector that takes no gzip (415 with `Accept-Encoding: identity`)
/// and refuses `Expect` (417, as a proxy before an HTTP/1.0 server must):
/// both are handled on their own (README: "a collector that refuses
/// `Expect` with 417 gets the body again without it"; a 415 to gzip gets
/// it again uncompressed). Together, the second refusal is returned as the
/// request's answer: a 417 or 415, which fails the events for good.
fn gzip_and_expect_refusing() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let (addr, _) = serve(move |_, head, r, s| {
        let gz = head.get("content-encoding") == Some("gzip");
        let expect = head.get("expect").is_some();
        log.lock()
            .unwrap()
            .push(format!("gzip={gz} expect={expect}"));
        if expect {
            s.write_all(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
            return false;
        }
        let _ = read_body(r, head);
        if gz {
            s.write_all(b"HTTP/1.1 415 Unsupported Media Type\r\nAccept-Encoding: identity\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        } else {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        }
        true
    });
    (addr, seen)
}

fn big_batch(n: usize, data: impl Fn(usize) -> String) -> (Vec<String>, Vec<String>) {
    let ids: Vec<String> = (0..n).map(|i| format!("e-{i}")).collect();
    let datas: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"pad":"{}"}}"#, data(i)))
        .collect();
    (ids, datas)
}

fn send_batch(
    addr: SocketAddr,
    ids: &[String],
    datas: &[String],
) -> Result<(), ossa_events::SendError> {
    let mut sink = HttpSink::builder(format!("http://{addr}/e"))
        .mode(HttpMode::Batched)
        .gzip(true)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    sink.send(&encoded(ids, datas))
}

/// The events of `big_batch`, encoded as JSON.
fn encoded(ids: &[String], datas: &[String]) -> Vec<Encoded> {
    ids.iter()
        .zip(datas)
        .map(|(id, d)| {
            let ev = Event::builder()
                .id(id)
                .source("/agents/a")
                .ty("dev.example.tick")
                .data_json(d)
                .build()
                .unwrap();
            Encoded::new(&ev, Encoding::Json).unwrap()
        })
        .collect()
}

#[test]
fn a_415_to_gzip_then_a_417_to_the_uncompressed_body_is_still_delivered() {
    let (addr, seen) = gzip_and_expect_refusing();
    // 100 events of 3 KB of one letter: 300 KB of JSON (past the 256 KiB
    // `Expect` threshold), a few KB gzipped (under it).
    let (ids, datas) = big_batch(100, |_| "a".repeat(3000));
    let r = send_batch(addr, &ids, &datas);
    let seen = seen.lock().unwrap().clone();
    assert!(
        r.is_ok(),
        "requests {seen:?}: {:?}",
        r.as_ref().err().map(|e| e.error().to_string())
    );
}

#[test]
fn a_417_then_a_415_to_the_gzip_body_without_expect_is_still_delivered() {
    let (addr, seen) = gzip_and_expect_refusing();
    // 100 events of 4 KB noise: gzipped still past the threshold.
    let (ids, datas) = big_batch(100, |i| noise(8000, i as u64 * 7919 + 7));
    let r = send_batch(addr, &ids, &datas);
    let seen = seen.lock().unwrap().clone();
    assert!(
        r.is_ok(),
        "requests {seen:?}: {:?}",
        r.as_ref().err().map(|e| e.error().to_string())
    );
}

/// A refusal's body excerpt goes into the error's text, which is logged and
/// handed to `on_undelivered`: a collector's line breaks, terminal escapes
/// and other control characters in it would forge log lines or drive the
/// terminal of whoever reads them. They come out as spaces; the text stays.
#[test]
fn a_refusal_body_cannot_put_control_characters_into_the_error() {
    let got = classify(
        b"HTTP/1.1 400 Bad\r\nContent-Length: 37\r\n\r\nbad id\n\x1b[31mINFO forged\r\nline\x07\x00\x7f\xc2\x85end",
    );
    assert!(got.starts_with("Some(No) / http status 400: "), "{got}");
    assert!(!got.chars().any(char::is_control), "{got:?}");
    assert!(
        got.ends_with("bad id  [31mINFO forged  line    end"),
        "{got:?}"
    );
}

/// A collector that answers one request twice (a stray second response,
/// as from a broken proxy). A client must not take the stray answer as
/// the next request's: the next event is refused (400) by the collector,
/// yet would be counted delivered.
#[test]
fn a_stray_second_answer_is_not_taken_for_the_next_requests() {
    let refused = Arc::new(Mutex::new(Vec::new()));
    let r2 = refused.clone();
    let (addr, _) = serve(move |i, head, r, s| {
        let body = read_body(r, head);
        if i == 0 {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        } else {
            r2.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 7\r\n\r\nrefused")
                .unwrap();
        }
        true
    });
    let mut sink = HttpSink::builder(format!("http://{addr}/e"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let (a, b) = (event("e-1"), event("e-2"));
    sink.send(&[Encoded::new(&a, Encoding::Json).unwrap()])
        .unwrap();
    // Let the stray answer arrive before the next request.
    std::thread::sleep(Duration::from_millis(100));
    let r = sink.send(&[Encoded::new(&b, Encoding::Json).unwrap()]);
    std::thread::sleep(Duration::from_millis(300));
    let refused = refused.lock().unwrap().len();
    assert!(
        !(r.is_ok() && refused > 0),
        "e-2 refused with 400 by the collector ({refused} request) but the sink answered delivered"
    );
}

/// OTLP/HTTP: a collector that takes a request only in part answers 200
/// with `partialSuccess.rejectedSpans` (the OTLP spec: the client must not
/// retry it, and should surface it). The sink reads no 2xx body: the
/// rejected spans are counted sent and their events delivered, and nothing
/// (`OtlpCounts::lost`, a log line) says they were dropped.
#[cfg(feature = "otlp")]
#[test]
fn otlp_partial_success_rejected_spans_are_not_lost_silently() {
    let (addr, requests) = answering(
        "200 OK\r\nContent-Type: application/json",
        br#"{"partialSuccess":{"rejectedSpans":"1","errorMessage":"span too old"}}"#,
    );
    let reports = Reports::default();
    let (em, stats) = otlp_emitter(addr, 3, &reports);
    let rep = em.shutdown().unwrap();
    assert!(stats.wait_closed(Duration::from_secs(10)));
    let c = stats.get();
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    // Which span was rejected the answer does not say: the event stays
    // delivered, and the span is counted lost (and logged).
    assert_eq!(rep.delivered, 1);
    assert!(reports.lock().unwrap().is_empty());
    assert_eq!(
        c.lost, 1,
        "one span rejected by the collector, yet delivered {} and counts {c:?}",
        rep.delivered
    );
}

/// A 503 whose `Retry-After` (an HTTP-date) lies past the shutdown
/// deadline: shutdown gives up at once on its events (shutdown-timeout,
/// each reported once), within the deadline.
#[test]
fn retry_after_dates_past_the_deadline_end_the_events_at_shutdown() {
    let (addr, _) = answering(
        "503 Busy\r\nRetry-After: Fri, 31 Dec 9999 23:59:59 GMT",
        b"",
    );
    let reports = Reports::default();
    let em = Emitter::builder("/agents/a")
        .sink(
            HttpSink::builder(format!("http://{addr}/e"))
                .build()
                .unwrap(),
        )
        .retry(fast_retry(10).retry_after_cap(Duration::from_secs(3600)))
        .on_undelivered(recorder(&reports))
        .build()
        .unwrap();
    for i in 0..5 {
        em.emit(
            Event::builder()
                .id(&format!("e-{i}"))
                .ty("dev.example.tick"),
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let t = std::time::Instant::now();
    let rep = em.shutdown_within(Duration::from_secs(2)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    let m = em.metrics();
    assert_eq!(
        m.emitted,
        m.delivered + m.failed + m.shutdown_timeout + m.queue_depth,
        "{m:?}"
    );
    assert_eq!(m.shutdown_timeout + m.failed, 5, "{m:?} {rep:?}");
    assert_eq!(reports.lock().unwrap().len(), 5);
}

/// A collector that answers each request with the next of a rotating set
/// of hostile answers (413, 429 with `Retry-After: 0`, 500, 400, 417, 3xx,
/// a stray 1xx, garbage, a reset, a cut answer, `Connection: close`…), over
/// pipelined lanes in each mode: every event ends once (counted once,
/// each undelivered one reported once), and the identity holds.
fn chaos(mode: HttpMode, pipeline: usize) {
    const N: usize = 400;
    // The ids of the events each request answered 2xx carried.
    let ok_ids = Arc::new(Mutex::new(std::collections::HashSet::<String>::new()));
    let ok_log = ok_ids.clone();
    let (addr, requests) = serve(move |i, head, r, s| {
        let expect = head.get("expect").is_some();
        let k = (i * 5 + 3) % 14;
        if expect {
            // Never here: bodies are small.
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        }
        let body = String::from_utf8(read_body(r, head)).unwrap();
        if matches!(k, 6 | 10 | 11 | 13) {
            let mut log = ok_log.lock().unwrap();
            if let Some(id) = head.get("ce-id") {
                log.insert(id.to_owned());
            }
            for part in body.split(r#""id":""#).skip(1) {
                log.insert(part.split('"').next().unwrap().to_owned());
            }
        }
        let answer: &[u8] = match k {
            0 => b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",
            1 => b"HTTP/1.1 429 Slow\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n",
            2 => b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops",
            3 => b"HTTP/1.1 400 Bad\r\nContent-Length: 3\r\n\r\nbad",
            4 => b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n",
            5 => b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
            6 => b"HTTP/1.1 103 Early\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
            7 => b"nonsense\r\n\r\n",
            8 => return false,
            9 => b"HTTP/1.1 200 OK\r\nContent-Len",
            10 => b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
            11 => b"HTTP/1.0 204 No Content\r\n\r\n",
            12 => b"HTTP/1.1 503 Busy\r\nRetry-After: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 0\r\n\r\n",
            _ => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        };
        let _ = s.write_all(answer);
        !matches!(k, 7 | 9 | 10 | 11)
    });
    let reports = Reports::default();
    let em = Emitter::builder("/agents/a")
        .sink(
            HttpSink::builder(format!("http://{addr}/e"))
                .mode(mode)
                .max_batch(10)
                .pipeline(pipeline)
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
        )
        .batch_size(10)
        .retry(fast_retry(4))
        .circuit_breaker(
            ossa_events::BreakerConfig::default()
                .threshold(3)
                .open_for(Duration::from_millis(5))
                .max_open_for(Duration::from_millis(20)),
        )
        .on_undelivered(recorder(&reports))
        .build()
        .unwrap();
    for i in 0..N {
        em.emit(
            Event::builder()
                .id(&format!("e-{i}"))
                .ty("dev.example.tick"),
        )
        .unwrap();
    }
    let rep = em.flush_within(Duration::from_secs(120)).unwrap();
    let m = em.metrics();
    let reports = reports.lock().unwrap().clone();
    let mut ids: Vec<&String> = reports.iter().map(|r| &r.1).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "an event reported twice: {reports:?}");
    assert_eq!(m.emitted, N as u64);
    assert_eq!(
        m.emitted,
        m.delivered + m.failed + m.shutdown_timeout + m.queue_depth,
        "{m:?}"
    );
    assert_eq!(m.queue_depth, 0, "{m:?} {rep:?}");
    assert_eq!(reports.len() as u64, m.failed + m.shutdown_timeout, "{m:?}");
    assert!(reports.iter().all(|r| r.0 == Reason::Failed), "{reports:?}");
    // Delivered exactly the events some 2xx answer carried.
    let ok = ok_ids.lock().unwrap();
    let reported: std::collections::HashSet<&String> = ids.iter().copied().collect();
    for i in 0..N {
        let id = format!("e-{i}");
        assert_eq!(
            ok.contains(&id),
            !reported.contains(&id),
            "{id}: answered 2xx {} / reported {}",
            ok.contains(&id),
            reported.contains(&id)
        );
    }
    eprintln!(
        "{mode:?} x{pipeline}: {m:?} requests {}",
        requests.load(Ordering::SeqCst)
    );
}

#[test]
fn chaos_structured() {
    chaos(HttpMode::Structured, 1);
}
#[test]
fn chaos_batched() {
    chaos(HttpMode::Batched, 1);
}
#[test]
fn chaos_binary_pipelined() {
    chaos(HttpMode::Binary, 4);
}
#[test]
fn chaos_batched_pipelined() {
    chaos(HttpMode::Batched, 8);
}

/// Shutdown in the middle of a collector that hangs now and then, refuses,
/// and asks for long pauses: bounded, and every event ends once.
fn chaos_shutdown(mode: HttpMode, pipeline: usize) {
    const N: usize = 300;
    let (addr, _) = serve(move |i, head, r, s| {
        let k = (i * 5 + 1) % 6;
        let _ = read_body(r, head);
        let answer: &[u8] = match k {
            0 => {
                std::thread::sleep(Duration::from_secs(3));
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
            }
            1 => b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
            2 => b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n",
            3 => b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
            4 => b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",
            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        };
        let _ = s.write_all(answer);
        true
    });
    let reports = Reports::default();
    let em = Emitter::builder("/agents/a")
        .sink(
            HttpSink::builder(format!("http://{addr}/e"))
                .mode(mode)
                .max_batch(10)
                .pipeline(pipeline)
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
        )
        .batch_size(10)
        .retry(RetryPolicy::default().base(Duration::from_millis(50)))
        .on_undelivered(recorder(&reports))
        .build()
        .unwrap();
    for i in 0..N {
        em.emit(
            Event::builder()
                .id(&format!("e-{i}"))
                .ty("dev.example.tick"),
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let t = std::time::Instant::now();
    let r = em.shutdown_within(Duration::from_millis(700));
    let took = t.elapsed();
    // A bound on a hang, not a timing.
    assert!(took < Duration::from_secs(20), "{took:?}");
    // The callbacks of what shutdown gave up on may still run: until the
    // reports match the counts (or 10 s, then the asserts say which).
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let mut m = em.metrics();
    while (reports.lock().unwrap().len() as u64) < m.failed + m.shutdown_timeout
        && std::time::Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(5));
        m = em.metrics();
    }
    let reports = reports.lock().unwrap().clone();
    let mut ids: Vec<&String> = reports.iter().map(|r| &r.1).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "an event reported twice: {reports:?}");
    assert_eq!(
        m.emitted,
        m.delivered + m.failed + m.shutdown_timeout + m.queue_depth,
        "{m:?}"
    );
    assert_eq!(m.queue_depth, 0, "{m:?}");
    assert_eq!(reports.len() as u64, m.failed + m.shutdown_timeout, "{m:?}");
    eprintln!("{mode:?} x{pipeline}: {r:?} {took:?} {m:?}");
}

#[test]
fn chaos_shutdown_structured() {
    chaos_shutdown(HttpMode::Structured, 1);
}
#[test]
fn chaos_shutdown_batched_pipelined() {
    chaos_shutdown(HttpMode::Batched, 6);
}
#[test]
fn chaos_shutdown_binary_pipelined() {
    chaos_shutdown(HttpMode::Binary, 3);
}

/// A request cut to the shutdown deadline and answered 417 late is sent
/// again with the whole of its first time limit, not with what is left of
/// it: the resend outlives the deadline ("an HTTP request gets only the
/// time left"). The same for the resend after a 415 to gzip.
#[test]
fn a_resend_after_a_late_417_keeps_to_the_deadline() {
    use ossa_events::sink::SendDeadline;
    let (addr, _) = serve(|i, head, r, s| {
        let _ = read_body(r, head);
        if i == 0 {
            std::thread::sleep(Duration::from_millis(2500));
            let _ = s.write_all(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n");
            true
        } else {
            std::thread::sleep(Duration::from_secs(30));
            false
        }
    });
    let mut sink = HttpSink::builder(format!("http://{addr}/e"))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let ev = event("e-1");
    let t0 = std::time::Instant::now();
    let r = sink.send_by(
        &[Encoded::new(&ev, Encoding::Json).unwrap()],
        SendDeadline::at(t0 + Duration::from_secs(3)),
    );
    let took = t0.elapsed();
    assert!(r.is_err());
    // A bound on the overrun (the resend would end 2.5 s past the deadline).
    assert!(
        took < Duration::from_millis(4500),
        "the resend outlived the 3 s deadline: {took:?}"
    );
}

/// OTLP/HTTP (opentelemetry-proto `docs/specification.md`, "Failures"):
/// only 429, 502, 503 and 504 may be retried; "all other 4xx or 5xx
/// response status codes MUST NOT be retried". `OtlpSink` retried 408,
/// 500 and every 5xx but 501, as `HttpSink` does.
#[cfg(feature = "otlp")]
#[test]
fn otlp_a_500_is_not_retried() {
    let (addr, requests) = answering("500 Internal Server Error", b"");
    let (em, _) = otlp_emitter(addr, 5, &Reports::default());
    let rep = em.flush().unwrap();
    assert_eq!(rep.failed, 1);
    assert_eq!(requests.load(Ordering::SeqCst), 1, "a 500 was retried");
}

/// A collector that answers `200` to the head of a request that asks for
/// `100 Continue`, without the body (a proxy or a collector that decides on
/// the headers alone): the client then sends no body (RFC 9110, section
/// 10.1.1), so the collector cannot have the events. They must not count
/// as delivered: the body is sent again without `Expect`, as after a 417.
#[test]
fn a_2xx_to_the_head_alone_is_no_delivery_of_a_body_never_sent() {
    let bodies = Arc::new(AtomicUsize::new(0));
    let took = bodies.clone();
    let (addr, _) = serve(move |_, head, r, s| {
        if head.get("expect").is_some() {
            // Answered before the body came: the client must not send it.
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
            return false;
        }
        let body = read_body(r, head);
        if !body.is_empty() {
            took.fetch_add(1, Ordering::SeqCst);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        true
    });
    // 100 events of 3 KB: 300 KB of JSON, past the 256 KiB `Expect` threshold.
    let (ids, datas) = big_batch(100, |_| "a".repeat(3000));
    let mut sink = HttpSink::builder(format!("http://{addr}/e"))
        .mode(HttpMode::Batched)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let enc = encoded(&ids, &datas);
    let r = sink.send(&enc);
    let took = bodies.load(Ordering::SeqCst);
    assert!(
        r.is_err() || took == 1,
        "the send was answered delivered, yet the collector got {took} bodies"
    );
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.error().to_string()));
}

/// A collector whose `100 Continue` carries a header line (RFC 9110,
/// section 15.2: a 1xx may have fields). ureq-proto 0.7 takes it for a
/// final answer, sends no body and waits for the rest of the answer, while
/// the collector waits for the body: every attempt of a body past the
/// `Expect` threshold timed out, and its events failed after the last
/// one. One such time-out turns `Expect` off; the retry delivers them.
#[test]
fn a_100_continue_with_a_header_line_still_gets_the_body() {
    let bodies = Arc::new(AtomicUsize::new(0));
    let took = bodies.clone();
    let (addr, _) = serve(move |_, head, r, s| {
        if head.get("expect").is_some() {
            s.write_all(b"HTTP/1.1 100 Continue\r\nX-Note: go on\r\n\r\n")
                .unwrap();
        }
        let mut body = vec![0; head.len()];
        if r.read_exact(&mut body).is_err() {
            return false; // the client gave up
        }
        took.fetch_add(1, Ordering::SeqCst);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        true
    });
    let reports = Reports::default();
    let sink = HttpSink::builder(format!("http://{addr}/e"))
        .mode(HttpMode::Batched)
        .timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let em = Emitter::builder("/agents/a")
        .sink(sink)
        .batch_size(100)
        .retry(fast_retry(3))
        .on_undelivered(recorder(&reports))
        .build()
        .unwrap();
    // 100 events of 3 KB: 300 KB of JSON, past the 256 KiB `Expect` threshold.
    let pad = format!(r#"{{"pad":"{}"}}"#, "a".repeat(3000));
    for i in 0..100 {
        let id = format!("e-{i}");
        em.emit(
            Event::builder()
                .id(&id)
                .ty("dev.example.tick")
                .data_json(&pad),
        )
        .unwrap();
    }
    let m = em.shutdown().unwrap();
    let reports = reports.lock().unwrap();
    assert_eq!(
        (m.delivered, m.failed, bodies.load(Ordering::SeqCst)),
        (100, 0, 1),
        "{:?}",
        reports.first()
    );
}

/// README, `circuit_breaker`: "stops sending to a dead collector, probes it
/// with one attempt". With requests in flight at once (`pipeline(4)`), each
/// open period must still end in one probe, not in one per lane.
#[test]
fn a_pipelined_sink_probes_an_open_breaker_with_one_request() {
    let times = Arc::new(Mutex::new(Vec::new()));
    let log = times.clone();
    let start = std::time::Instant::now();
    let (addr, _) = serve(move |_, head, r, s| {
        let _ = read_body(r, head);
        log.lock().unwrap().push(start.elapsed());
        s.write_all(b"HTTP/1.1 503 Down\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        true
    });
    let sink = HttpSink::builder(format!("http://{addr}/e"))
        .mode(HttpMode::Batched)
        .max_batch(1)
        .pipeline(4)
        .build()
        .unwrap();
    let open_for = Duration::from_millis(300);
    let em = Emitter::builder("/agents/a")
        .sink(sink)
        .batch_size(1)
        .retry(RetryPolicy::none())
        .shutdown_timeout(Duration::from_millis(100))
        .circuit_breaker(
            ossa_events::BreakerConfig::default()
                .threshold(1)
                .open_for(open_for)
                .max_open_for(open_for),
        )
        .build()
        .unwrap();
    for i in 0..40 {
        let id = format!("e-{i}");
        em.emit(Event::builder().id(&id).ty("dev.example.tick"))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(1600));
    drop(em);
    let times = times.lock().unwrap().clone();
    // Requests more than 100 ms after the first ones: the probes, each
    // `open_for` apart; count those that came together (within 50 ms).
    let first = times[0];
    let probes: Vec<Duration> = times
        .iter()
        .copied()
        .filter(|t| {
            *t > first + Duration::from_millis(100) && *t < first + Duration::from_millis(1500)
        })
        .collect();
    let mut bursts: Vec<usize> = Vec::new();
    let mut last: Option<Duration> = None;
    for t in &probes {
        match last {
            Some(l) if *t - l < Duration::from_millis(50) => *bursts.last_mut().unwrap() += 1,
            _ => bursts.push(1),
        }
        last = Some(*t);
    }
    assert!(
        !bursts.is_empty() && bursts.iter().all(|&n| n == 1),
        "requests per probe: {bursts:?} (times {times:?})"
    );
}

/// Every `tracing` event's fields, as `name=value` lines.
struct Lines(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Lines {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0 += &format!("{}={v:?} ", f.name());
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A URL with userinfo (`http://user:password@host/`): ureq sends it as
/// `Authorization: Basic`, so it is a credential like a header value, and
/// the sink's warnings (here: the collector refuses gzip) name the
/// endpoint without it.
#[test]
fn warnings_name_the_url_without_its_credentials() {
    let (addr, _) = gzip_and_expect_refusing();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (ids, datas) = big_batch(100, |i| noise(8000, i as u64 * 7919 + 7));
    let events = encoded(&ids, &datas);
    let mut sink = HttpSink::builder(format!("http://alice:s3cret@{addr}/e"))
        .mode(HttpMode::Batched)
        .gzip(true)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = tracing::subscriber::with_default(Lines(lines.clone()), || sink.send(&events));
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.error().to_string()));
    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("gzip") && l.contains("***@")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("s3cret")), "{lines:?}");
}

/// A rate limiter answers the batches a pipelined sink has in flight all at
/// once with `429` and `Retry-After: 2`: each may be sent again 2 s after
/// its answer (RFC 9110, section 10.2.3), so all of them go again after
/// about 2 s. Counted from when the worker got round to each answer, one
/// after the other, the waits added up: 2, 4, 6 and 8 s with 4 in flight,
/// and the emitter sent nothing else meanwhile.
#[test]
fn a_pipelined_sink_waits_out_a_retry_after_once_not_once_per_batch() {
    let times = Arc::new(Mutex::new(Vec::new()));
    let log = times.clone();
    let start = std::time::Instant::now();
    let (addr, _) = serve(move |i, head, r, s| {
        let _ = read_body(r, head);
        log.lock().unwrap().push((i, start.elapsed()));
        if i < 4 {
            s.write_all(b"HTTP/1.1 429 Slow\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        } else {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        }
        true
    });
    let sink = HttpSink::builder(format!("http://{addr}/e"))
        .mode(HttpMode::Batched)
        .max_batch(1)
        .pipeline(4)
        .build()
        .unwrap();
    let em = Emitter::builder("/agents/a")
        .sink(sink)
        .batch_size(1)
        .retry(fast_retry(5))
        .build()
        .unwrap();
    for i in 0..4 {
        let id = format!("e-{i}");
        em.emit(Event::builder().id(&id).ty("dev.example.tick"))
            .unwrap();
    }
    let rep = em.flush_within(Duration::from_secs(30)).unwrap();
    assert_eq!(rep.delivered, 4, "{rep:?}");
    let times = times.lock().unwrap().clone();
    assert_eq!(times.len(), 8, "{times:?}");
    let first_429 = times[..4].iter().map(|t| t.1).min().unwrap();
    let last_429 = times[..4].iter().map(|t| t.1).max().unwrap();
    for &(i, t) in &times[4..] {
        // Honoured: no retry before its 2 s are up (each counts from its
        // own answer, which came no earlier than the first)...
        assert!(
            t >= first_429 + Duration::from_millis(1900),
            "request {i} at {t:?}: {times:?}"
        );
        // ...and waited once, not once per batch before it.
        assert!(
            t < last_429 + Duration::from_millis(3500),
            "request {i} at {t:?}: {times:?}"
        );
    }
}
