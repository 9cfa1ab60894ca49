//! `HttpSink` against a collector that behaves like an ordinary HTTP/1.1
//! server: it keeps each connection open for the next request unless the
//! request says `Connection: close`, answers `Expect: 100-continue` with
//! `100 Continue`, and reads every body. Most collectors in the other
//! tests close after each answer, which hides what a kept-alive connection
//! does to the next request. Every path of the sink through it, in each
//! mode, with and without `pipeline` and gzip: each event ends delivered
//! or failed once, and an answer that was there is not waited past.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use ossa_events::sink::{HttpMode, HttpSink};
use ossa_events::{Emitter, Event, Metrics, Reason};

use common::{Reports, fast_retry, read_head_lines, recorder};

/// One request as the collector read it.
#[derive(Debug, Clone, Default)]
struct Req {
    /// Header lines, names lower-cased.
    headers: Vec<(String, String)>,
    /// The body, decompressed; empty when it was not read.
    body: Vec<u8>,
    /// Which connection it came on (from 0).
    conn: usize,
}

impl Req {
    fn get(&self, name: &str) -> Option<&str> {
        common::header(&self.headers, name)
    }

    fn len(&self) -> usize {
        self.get("content-length").map_or(0, |v| v.parse().unwrap())
    }

    /// The ids of the events it carried (a `ce-id` header, or `"id"`
    /// members of a JSON body).
    fn ids(&self) -> Vec<String> {
        if let Some(id) = self.get("ce-id") {
            return vec![id.to_owned()];
        }
        let body = String::from_utf8_lossy(&self.body);
        body.split(r#""id":""#)
            .skip(1)
            .map(|p| p.split('"').next().unwrap().to_owned())
            .collect()
    }

    /// Events in the request (read or not: by `Content-Length` alone it
    /// cannot be told, so only for read bodies).
    fn count(&self) -> usize {
        self.ids().len()
    }
}

/// What the collector does with a request.
#[derive(Debug, Clone)]
struct Reply {
    /// Written in turn, a short pause between them (separate segments).
    parts: Vec<Vec<u8>>,
    /// Read the body before answering (as an ordinary server does); when
    /// `false`, the answer goes after the head alone and the connection
    /// is closed.
    read_body: bool,
    /// Close after the answer even if the request did not ask for it.
    close: bool,
    /// Close at once, without answering.
    drop: bool,
    /// Written as soon as the head is read, before `100 Continue`.
    early: Vec<u8>,
}

fn reply(answer: &str) -> Reply {
    Reply {
        parts: vec![answer.as_bytes().to_vec()],
        read_body: true,
        close: false,
        drop: false,
        early: Vec::new(),
    }
}

impl Reply {
    fn then(mut self, more: &str) -> Reply {
        self.parts.push(more.as_bytes().to_vec());
        self
    }
    fn close(mut self) -> Reply {
        self.close = true;
        self
    }
    fn unread(mut self) -> Reply {
        self.read_body = false;
        self.close = true;
        self
    }
    fn dropped() -> Reply {
        Reply {
            parts: Vec::new(),
            read_body: true,
            close: true,
            drop: true,
            early: Vec::new(),
        }
    }
    /// The status of the final answer (the first status line from 200 on).
    fn status(&self) -> Option<u16> {
        let all: Vec<u8> = self.parts.concat();
        let text = String::from_utf8_lossy(&all);
        text.match_indices("HTTP/1.")
            .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse::<u16>().ok())
            .find(|s| *s >= 200)
    }
}

/// The requests a collector took, with what it answered them.
type Log = Arc<Mutex<Vec<(Req, Reply)>>>;

struct Collector {
    addr: SocketAddr,
    log: Log,
    conns: Arc<AtomicUsize>,
}

impl Collector {
    fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    /// The ids of the events some 2xx answered with their body read.
    fn accepted(&self) -> std::collections::HashSet<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, a)| a.read_body && a.status().is_some_and(|s| (200..300).contains(&s)))
            .flat_map(|(r, _)| r.ids())
            .collect()
    }
}

/// What a collector decides on a request's head alone.
type HeadFn = dyn Fn(&Req) -> Option<Reply> + Send + Sync;
/// How a collector answers a request, its body read.
type ScriptFn = dyn Fn(usize, &Req) -> Reply + Send + Sync;

/// A keep-alive collector: `script` gets each request (numbered from 0
/// over all connections), its body read, and says how to answer it.
fn keep_alive(script: impl Fn(usize, &Req) -> Reply + Send + Sync + 'static) -> Collector {
    keep_alive_with(|_| None, script)
}

/// [`keep_alive`], `head` asked first on the head alone: a reply that
/// does not read the body is the answer; its `early` bytes go at once.
fn keep_alive_with(
    head: impl Fn(&Req) -> Option<Reply> + Send + Sync + 'static,
    script: impl Fn(usize, &Req) -> Reply + Send + Sync + 'static,
) -> Collector {
    let head: Arc<HeadFn> = Arc::new(head);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let script: Arc<ScriptFn> = Arc::new(script);
    let log = Log::default();
    let conns = Arc::new(AtomicUsize::new(0));
    let (log2, conns2) = (log.clone(), conns.clone());
    let n = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let conn = conns2.fetch_add(1, Ordering::SeqCst);
            let (script, head, log, n) = (script.clone(), head.clone(), log2.clone(), n.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                while let Some(headers) = read_head_lines(&mut r) {
                    let mut req = Req {
                        headers,
                        body: Vec::new(),
                        conn,
                    };
                    let i = n.fetch_add(1, Ordering::SeqCst);
                    // Decided on the head alone when `head` says so.
                    let first = head(&req);
                    if let Some(early) = first.as_ref().filter(|f| !f.early.is_empty()) {
                        s.write_all(&early.early).unwrap();
                    }
                    let answer = match first {
                        Some(f) if !f.read_body => f,
                        _ => {
                            if req.get("expect").is_some() {
                                s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
                            }
                            let mut body = vec![0; req.len()];
                            if r.read_exact(&mut body).is_err() {
                                return;
                            }
                            if req.get("content-encoding") == Some("gzip") {
                                let mut plain = Vec::new();
                                flate2::read::GzDecoder::new(&body[..])
                                    .read_to_end(&mut plain)
                                    .unwrap();
                                body = plain;
                            }
                            req.body = body;
                            script(i, &req)
                        }
                    };
                    log.lock().unwrap().push((req.clone(), answer.clone()));
                    if answer.drop {
                        return;
                    }
                    for (k, part) in answer.parts.iter().enumerate() {
                        if k > 0 {
                            std::thread::sleep(Duration::from_millis(30));
                        }
                        if s.write_all(part).is_err() {
                            return;
                        }
                    }
                    let _ = s.flush();
                    if answer.close || req.get("connection") == Some("close") {
                        let _ = s.shutdown(std::net::Shutdown::Write);
                        // Let the client read the answer before the socket goes.
                        std::thread::sleep(Duration::from_millis(200));
                        return;
                    }
                }
            });
        }
    });
    Collector { addr, log, conns }
}

/// The configurations every path is driven through.
fn configs() -> Vec<(HttpMode, usize, bool)> {
    let mut all = Vec::new();
    for mode in [HttpMode::Structured, HttpMode::Binary, HttpMode::Batched] {
        for pipeline in [1, 4] {
            for gzip in [false, true] {
                all.push((mode, pipeline, gzip));
            }
        }
    }
    all
}

/// What became of `n` events (`data` as each one's JSON data) sent
/// through a sink to `c` (`attempts` tries each): checks that each ended
/// once, delivered exactly when a 2xx took its body, and gives the
/// metrics and the reports.
fn drive(
    c: &Collector,
    (mode, pipeline, gzip): (HttpMode, usize, bool),
    n: usize,
    attempts: u32,
    data: Option<&str>,
) -> (Metrics, Vec<(Reason, String, String)>) {
    let reports = Reports::default();
    let sink = HttpSink::builder(c.url())
        .mode(mode)
        .pipeline(pipeline)
        .gzip(gzip)
        .max_batch(5)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let em = Emitter::builder("/agents/a")
        .sink(sink)
        .batch_size(5)
        .retry(fast_retry(attempts))
        .on_undelivered(recorder(&reports))
        .build()
        .unwrap();
    for i in 0..n {
        let id = format!("e-{i}");
        let b = Event::builder().id(&id).ty("dev.example.tick");
        match data {
            Some(d) => em.emit(b.data_json(d)).unwrap(),
            None => em.emit(b).unwrap(),
        };
    }
    em.flush_within(Duration::from_secs(120)).unwrap();
    let m = em.metrics();
    em.shutdown().unwrap();
    let reports = reports.lock().unwrap().clone();
    let ctx = format!(
        "{mode:?} x{pipeline} gzip {gzip}: {m:?} {:?}",
        reports.first()
    );
    assert_eq!(m.emitted, n as u64, "{ctx}");
    assert_eq!(
        m.delivered + m.failed + m.shutdown_timeout,
        n as u64,
        "{ctx}"
    );
    assert_eq!(reports.len() as u64, m.failed + m.shutdown_timeout, "{ctx}");
    let mut ids: Vec<&String> = reports.iter().map(|r| &r.1).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), reports.len(), "an event reported twice: {ctx}");
    let accepted = c.accepted();
    for i in 0..n {
        let id = format!("e-{i}");
        assert_eq!(
            accepted.contains(&id),
            !ids.contains(&&id),
            "{id}: accepted by the collector / reported undelivered: {ctx}"
        );
    }
    (m, reports)
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/// The plain path: every answer a 200, every request on the one
/// kept-alive connection (with `pipeline(4)`, on at most four).
#[test]
fn plain_answers_reuse_the_connection() {
    for cfg in configs() {
        let c = keep_alive(|_, _| reply(OK));
        let (m, _) = drive(&c, cfg, 20, 1, None);
        assert_eq!((m.delivered, m.retried), (20, 0), "{cfg:?}");
        assert!(c.conns.load(Ordering::SeqCst) <= cfg.1, "{cfg:?}");
    }
}

/// 2xx answers with bodies: chunked, close-delimited, past the drain
/// limit, 204 and 205, HTTP/1.0; each delivered at the first attempt.
#[test]
fn two_hundreds_of_every_shape_deliver_at_once() {
    let big = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
        100_000,
        "x".repeat(100_000)
    );
    let answers: Vec<Reply> = vec![
        reply("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
        reply("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n").then("0\r\n\r\n"),
        reply(&big),
        reply("HTTP/1.1 204 No Content\r\n\r\n"),
        reply("HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n\r\n"),
        reply("HTTP/1.1 202 Accepted\r\n\r\naccepted").close(),
        reply("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        reply("HTTP/1.0 200 OK\r\n\r\nok").close(),
        reply("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"),
    ];
    for (k, a) in answers.into_iter().enumerate() {
        for cfg in configs() {
            let a = a.clone();
            let c = keep_alive(move |_, _| a.clone());
            let (m, _) = drive(&c, cfg, 10, 1, None);
            assert_eq!((m.delivered, m.retried), (10, 0), "answer {k} {cfg:?}");
        }
    }
}

/// Informational answers before the final one (RFC 9110, section 15.2:
/// a client must parse one or more 1xx before a final answer, even when
/// it expected none; a 1xx may carry header fields).
#[test]
fn informational_answers_before_the_final_one_are_read_past() {
    let answers: Vec<Reply> = vec![
        reply("HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n").then(OK),
        reply(&format!(
            "HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n{OK}"
        )),
        reply("HTTP/1.1 100 Continue\r\n\r\n").then(OK),
        reply("HTTP/1.1 102 Processing\r\n\r\n")
            .then("HTTP/1.1 102 Processing\r\n\r\n")
            .then(OK),
        reply("HTTP/1.1 100 Continue\r\nX-Note: go on\r\n\r\n").then(OK),
        reply(&format!("HTTP/1.1 100 Continue\r\nServer: c\r\n\r\n{OK}")),
    ];
    for (k, a) in answers.into_iter().enumerate() {
        for cfg in configs() {
            let a = a.clone();
            let c = keep_alive(move |_, _| a.clone());
            let (m, r) = drive(&c, cfg, 10, 2, None);
            assert_eq!(
                (m.delivered, m.retried),
                (10, 0),
                "answer {k} {cfg:?}: {:?}",
                r.first()
            );
        }
    }
}

/// Refusals on a kept-alive connection: 413 splits a batch, 431 sends a
/// binary event structured, 503 and 429 with `Retry-After` are retried;
/// the connection goes on serving the next request.
#[test]
fn refusals_on_a_kept_alive_connection() {
    for cfg in configs() {
        // 413 to a batch of more than one event.
        let c = keep_alive(|_, r| {
            if r.count() > 1 {
                reply("HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\n\r\nbig")
            } else {
                reply(OK)
            }
        });
        let (m, _) = drive(&c, cfg, 10, 1, None);
        assert_eq!((m.delivered, m.retried), (10, 0), "413 {cfg:?}");
        // 431 to a binary-mode request (ce- headers).
        let c = keep_alive(|_, r| {
            if r.get("ce-id").is_some() {
                reply("HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\n\r\n")
            } else {
                reply(OK)
            }
        });
        let (m, _) = drive(&c, cfg, 10, 1, None);
        assert_eq!((m.delivered, m.retried), (10, 0), "431 {cfg:?}");
        // 503 and 429 with Retry-After to every other request.
        for busy in [
            "HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 4\r\n\r\nbusy",
            "HTTP/1.1 429 Slow\r\nRetry-After: 0\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nslow\r\n0\r\n\r\n",
        ] {
            let c = keep_alive(move |i, _| if i % 2 == 0 { reply(busy) } else { reply(OK) });
            let (m, _) = drive(&c, cfg, 10, 20, None);
            assert_eq!(m.delivered, 10, "{busy} {cfg:?}");
        }
    }
}

/// A collector that closes an idle kept-alive connection as the next
/// request arrives (it reads the head, then closes without an answer):
/// the request failed as a transport error and is retried by the emitter
/// (a POST is not sent again by the transport: RFC 9112, section 9.3.1),
/// counted in `retried`, and each event still ends once.
#[test]
fn an_idle_connection_closed_as_the_next_request_goes() {
    for cfg in configs() {
        let served = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let c = keep_alive(move |_, r| {
            // One answer per connection; the second request meets a close.
            if served.lock().unwrap().insert(r.conn) {
                reply(OK)
            } else {
                Reply::dropped()
            }
        });
        let (m, r) = drive(&c, cfg, 10, 20, None);
        assert_eq!(m.delivered, 10, "{cfg:?} {m:?} {r:?}");
        // One connection in turn: each reuse meets the close.
        assert!(cfg.1 > 1 || m.retried > 0, "{cfg:?} {m:?}");
    }
}

/// A collector that answers before it has read the body and closes
/// (`Connection: close`): a refusal for good fails the events once, a
/// 2xx to a body never read delivers nothing.
#[test]
fn an_answer_before_the_body_then_close() {
    for cfg in configs() {
        let c = keep_alive_with(
            |_| {
                Some(
                    reply("HTTP/1.1 400 Bad\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad")
                        .unread(),
                )
            },
            |_, _| reply(OK),
        );
        let (m, _) = drive(&c, cfg, 10, 2, None);
        assert_eq!((m.delivered, m.failed), (0, 10), "{cfg:?}");
    }
}

/// 300 KB batches (past the sink's `Expect` threshold) to a keep-alive
/// collector: `100 Continue` and a final answer; a 413 before `100
/// Continue` splits the batch (the halves, under the threshold, are
/// answered 413 once read).
#[test]
fn large_bodies_with_expect_over_kept_alive_connections() {
    let pad = format!(r#"{{"pad":"{}"}}"#, noise(60_000));
    for cfg in configs().into_iter().filter(|c| c.0 == HttpMode::Batched) {
        let c = keep_alive(|_, _| reply(OK));
        let (m, _) = drive(&c, cfg, 10, 1, Some(&pad));
        assert_eq!((m.delivered, m.retried), (10, 0), "plain {cfg:?}");
        // 413 before the body to more than one event.
        let c = keep_alive_with(
            |r| {
                (r.get("expect").is_some())
                    .then(|| reply("HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n").unread())
            },
            |_, r| {
                if r.count() > 1 {
                    reply("HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
                } else {
                    reply(OK)
                }
            },
        );
        let (m, r) = drive(&c, cfg, 10, 1, Some(&pad));
        assert_eq!((m.delivered, m.retried), (10, 0), "413 {cfg:?} {m:?} {r:?}");
    }
}

/// An informational answer with a header line (`103 Early Hints` with
/// its `Link`) before `100 Continue` on a request that waits for it
/// (RFC 9110, section 15.2): the body still goes at once.
#[test]
fn early_hints_before_100_continue_do_not_hold_the_body() {
    let pad = format!(r#"{{"pad":"{}"}}"#, noise(60_000));
    for cfg in configs().into_iter().filter(|c| c.0 == HttpMode::Batched) {
        let c = keep_alive_with(
            |_| {
                let mut r = reply(OK);
                r.early = b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n".to_vec();
                Some(r)
            },
            |_, _| reply(OK),
        );
        let (m, r) = drive(&c, cfg, 10, 2, Some(&pad));
        assert_eq!(
            (m.delivered, m.retried),
            (10, 0),
            "{cfg:?}: {:?}",
            r.first()
        );
    }
}

/// Letters and digits that do not compress.
fn noise(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(ALPHABET[(x % ALPHABET.len() as u64) as usize])
        })
        .collect()
}
