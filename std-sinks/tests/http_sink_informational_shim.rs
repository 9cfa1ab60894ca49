//! The transport under `HttpSink` that reads informational (1xx) answers
//! past, against a collector that writes each answer in scripted pieces
//! (cut at every byte, or a byte at a time): ordinary answers, 1xx with
//! and without header lines, chunked, HTTP/1.0, bare LF, bodies that look
//! like a status line, answers past ureq's input buffer, a 1xx at the
//! held-back limit, a connection that ends inside a 1xx, and 1xx answers
//! that never end. Each event ends delivered or failed once, and the
//! kept-alive connection goes on serving.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use ossa_events::sink::{HttpMode, HttpSink};
use ossa_events::{Emitter, Event, Metrics, Undelivered};

use common::{fast_retry, read_head_lines};

/// How one answer goes on the wire.
#[derive(Clone)]
enum Cut {
    /// In two writes, cut before this byte.
    At(usize),
    /// A byte a write.
    Bytes,
}

/// The answer to request `i` (numbered over all connections), its pieces,
/// and whether the connection closes after it.
type Script = dyn Fn(usize) -> (Vec<Vec<u8>>, bool) + Send + Sync;

struct Collector {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    /// Ids of the events in requests answered 2xx (their bodies read).
    accepted: Arc<Mutex<Vec<String>>>,
}

fn pieces(answer: &[u8], cut: &Cut) -> Vec<Vec<u8>> {
    match cut {
        Cut::At(k) => {
            let k = (*k).min(answer.len());
            vec![answer[..k].to_vec(), answer[k..].to_vec()]
        }
        Cut::Bytes => answer.iter().map(|b| vec![*b]).collect(),
    }
}

/// A keep-alive collector: reads each request whole (`100 Continue` first,
/// with a header line, when asked), then writes `script`'s pieces with a
/// pause between them.
fn collector(script: impl Fn(usize) -> (Vec<Vec<u8>>, bool) + Send + Sync + 'static) -> Collector {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let script: Arc<Script> = Arc::new(script);
    let conns = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let (conns2, accepted2) = (conns.clone(), accepted.clone());
    let n = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            s.set_nodelay(true).unwrap();
            conns2.fetch_add(1, Ordering::SeqCst);
            let (script, n, accepted) = (script.clone(), n.clone(), accepted2.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                while let Some(headers) = read_head_lines(&mut r) {
                    let get = |name: &str| {
                        headers
                            .iter()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v.clone())
                    };
                    if get("expect").is_some() {
                        // A byte a write: cut at every place while ureq waits for it.
                        for b in b"HTTP/1.1 100 Continue\r\nServer: c\r\n\r\n" {
                            s.write_all(&[*b]).unwrap();
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    let len: usize = get("content-length").map_or(0, |v| v.parse().unwrap());
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    if get("content-encoding").as_deref() == Some("gzip") {
                        let mut plain = Vec::new();
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_end(&mut plain)
                            .unwrap();
                        body = plain;
                    }
                    let i = n.fetch_add(1, Ordering::SeqCst);
                    let (parts, close) = script(i);
                    let all = parts.concat();
                    let ok = all.starts_with(b"HTTP/1.")
                        && String::from_utf8_lossy(&all)
                            .match_indices("HTTP/1.")
                            .filter_map(|(p, _)| {
                                let code = all.get(p + 9..p + 12)?;
                                String::from_utf8_lossy(code).parse::<u16>().ok()
                            })
                            .find(|s| *s >= 200)
                            .is_some_and(|s| (200..300).contains(&s));
                    if ok {
                        let text = String::from_utf8_lossy(&body);
                        let ids = match get("ce-id") {
                            Some(id) => vec![id],
                            None => text
                                .split(r#""id":""#)
                                .skip(1)
                                .map(|p| p.split('"').next().unwrap().to_owned())
                                .collect(),
                        };
                        accepted.lock().unwrap().extend(ids);
                    }
                    for (k, part) in parts.iter().enumerate() {
                        if k > 0 {
                            std::thread::sleep(Duration::from_millis(3));
                        }
                        if s.write_all(part).is_err() {
                            return;
                        }
                    }
                    if close {
                        let _ = s.shutdown(std::net::Shutdown::Write);
                        std::thread::sleep(Duration::from_millis(100));
                        return;
                    }
                }
            });
        }
    });
    Collector {
        addr,
        conns,
        accepted,
    }
}

/// `n` events (`data` as each one's data), one a request, through a sink
/// (`timeout`, `attempts` tries each) to `c`: checks each ended once,
/// delivered exactly when a 2xx took it; gives the metrics, the reports.
fn drive(
    c: &Collector,
    mode: HttpMode,
    gzip: bool,
    n: usize,
    attempts: u32,
    timeout: Duration,
    data: Option<&str>,
) -> (Metrics, Vec<(String, String)>) {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r2 = reports.clone();
    let sink = HttpSink::builder(format!("http://{}/events", c.addr))
        .mode(mode)
        .gzip(gzip)
        .max_batch(1)
        .timeout(timeout)
        .build()
        .unwrap();
    let em = Emitter::builder("/agents/a")
        .sink(sink)
        .batch_size(1)
        .retry(fast_retry(attempts))
        .on_undelivered(move |u: &Undelivered<'_>| {
            r2.lock()
                .unwrap()
                .push((u.id.to_owned(), u.error.to_string()));
        })
        .build()
        .unwrap();
    for i in 0..n {
        let id = format!("e-{i}");
        let b = Event::builder().id(&id).ty("dev.example.tick");
        match data {
            Some(d) => em.emit(b.data_json(d)).unwrap(),
            None => em.emit(b).unwrap(),
        };
        // One request at a time, in order: request i is answered by script(i).
        em.flush_within(Duration::from_secs(60)).unwrap();
    }
    let m = em.metrics();
    em.shutdown().unwrap();
    let reports = reports.lock().unwrap().clone();
    assert_eq!(m.emitted, n as u64, "{m:?}");
    assert_eq!(m.delivered + m.failed, n as u64, "{m:?} {reports:?}");
    assert_eq!(reports.len() as u64, m.failed, "{m:?} {reports:?}");
    let mut ids: Vec<&String> = reports.iter().map(|r| &r.0).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), reports.len(), "an event reported twice");
    let accepted = c.accepted.lock().unwrap().clone();
    for i in 0..n {
        let id = format!("e-{i}");
        assert_eq!(
            accepted.contains(&id),
            !ids.contains(&&id),
            "{id}: accepted / reported undelivered: {m:?} {reports:?}"
        );
    }
    (m, reports)
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// `drive` with `n` events of ~300 KB each (past the sink's `Expect`
/// threshold), batched, one attempt each, requests limited to `timeout`.
fn drive_large(c: &Collector, n: usize, timeout: Duration) -> (Metrics, Vec<(String, String)>) {
    let pad = format!(r#"{{"pad":"{}"}}"#, "z".repeat(300_000));
    drive(c, HttpMode::Batched, false, n, 1, timeout, Some(&pad))
}

/// Answers that must deliver, each on one kept-alive connection.
fn good_answers() -> Vec<String> {
    let lookalike = "HTTP/1.1 100 Continue\r\nServer: x\r\n\r\n";
    vec![
        OK.to_owned(),
        format!("HTTP/1.1 100 Continue\r\nServer: c\r\nDate: d\r\n\r\n{OK}"),
        format!("HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n{OK}"),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHTTP/\r\n3\r\n1 1\r\n0\r\n\r\n"
            .to_owned(),
        format!("HTTP/1.0 100 Continue\r\nServer: c\r\n\r\n{OK}"),
        "HTTP/1.1 103 Early\nLink: a\n\nHTTP/1.1 100 Continue\nX: y\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\nok"
            .to_owned(),
        // A body that starts like a 1xx answer, then the next request.
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{lookalike}",
            lookalike.len()
        ),
        format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{lookalike}\r\n0\r\n\r\n",
            lookalike.len()
        ),
        "HTTP/1.1 204 No Content\r\n\r\n".to_owned(),
    ]
}

/// Each answer cut before every byte in turn: every event delivered at the
/// first attempt, all over the one connection.
#[test]
fn every_answer_cut_at_every_byte_delivers_once() {
    for (k, answer) in good_answers().into_iter().enumerate() {
        let len = answer.len();
        let a = answer.clone();
        let c = collector(move |i| (pieces(a.as_bytes(), &Cut::At(i % (len + 1))), false));
        let (m, r) = drive(
            &c,
            HttpMode::Structured,
            false,
            len + 1,
            1,
            Duration::from_secs(3),
            None,
        );
        assert_eq!(
            (m.delivered, m.retried),
            (len as u64 + 1, 0),
            "{k} {answer:?}: {r:?}"
        );
        assert_eq!(c.conns.load(Ordering::SeqCst), 1, "{k} {answer:?}");
    }
}

/// Each answer a byte a write, in each mode, with and without gzip.
#[test]
fn every_answer_a_byte_at_a_time_delivers_once() {
    for (k, answer) in good_answers().into_iter().enumerate() {
        for mode in [HttpMode::Structured, HttpMode::Binary, HttpMode::Batched] {
            for gzip in [false, true] {
                let a = answer.clone();
                let c = collector(move |_| (pieces(a.as_bytes(), &Cut::Bytes), false));
                let (m, r) = drive(&c, mode, gzip, 3, 1, Duration::from_secs(3), None);
                assert_eq!(
                    (m.delivered, m.retried),
                    (3, 0),
                    "{k} {mode:?} {gzip}: {r:?}"
                );
                assert_eq!(c.conns.load(Ordering::SeqCst), 1, "{k} {answer:?}");
            }
        }
    }
}

/// Large bodies (with `Expect`, answered by a `100 Continue` with a header
/// line) and answers past ureq's input buffer, with a 1xx in the same
/// write: delivered, over one connection.
#[test]
fn large_requests_and_answers_past_the_input_buffer() {
    let big = "y".repeat(300_000);
    let answer = format!(
        "HTTP/1.1 103 Early\r\nLink: a\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    for cut in [Cut::At(0), Cut::At(12), Cut::At(30), Cut::At(200_000)] {
        let a = answer.clone();
        let c = collector(move |_| (pieces(a.as_bytes(), &cut), false));
        let (m, r) = drive_large(&c, 3, Duration::from_secs(5));
        assert_eq!((m.delivered, m.retried), (3, 0), "{r:?}");
        // `Expect` goes with `Connection: close`: a connection a request.
        assert_eq!(c.conns.load(Ordering::SeqCst), 3);
    }
}

/// A 1xx head just under the held-back limit is read past; one past it
/// ends once either way.
#[test]
fn a_1xx_at_the_limit() {
    let under = format!(
        "HTTP/1.1 103 Early\r\nLink: {}\r\n\r\n{OK}",
        "a".repeat(60 * 1024)
    );
    let c = collector(move |_| (pieces(under.as_bytes(), &Cut::At(30_000)), false));
    let (m, r) = drive(
        &c,
        HttpMode::Structured,
        false,
        3,
        1,
        Duration::from_secs(3),
        None,
    );
    assert_eq!((m.delivered, m.retried), (3, 0), "{r:?}");
    let over = format!(
        "HTTP/1.1 103 Early\r\nLink: {}\r\n\r\n{OK}",
        "a".repeat(70 * 1024)
    );
    let c = collector(move |_| (pieces(over.as_bytes(), &Cut::At(30_000)), false));
    // Read past when its head ends within a read that starts under the
    // limit, else refused by ureq: either way each event ends once
    // (`drive` checks).
    drive(
        &c,
        HttpMode::Structured,
        false,
        3,
        2,
        Duration::from_secs(3),
        None,
    );
}

/// The connection ends inside a 1xx (status line, or header lines): the
/// attempt fails, the retry on a new connection delivers.
#[test]
fn a_connection_that_ends_inside_a_1xx() {
    for partial in [
        "HTTP/1.1 1",
        "HTTP/1.1 103 Early",
        "HTTP/1.1 103 Early\r\nLink: a\r\n",
        "HTTP/1.1 100 Continue\r\nServer: c\r\n\r",
    ] {
        let c = collector(move |i| {
            if i % 2 == 0 {
                (vec![partial.as_bytes().to_vec()], true)
            } else {
                (vec![OK.as_bytes().to_vec()], false)
            }
        });
        let (m, r) = drive(
            &c,
            HttpMode::Structured,
            false,
            3,
            3,
            Duration::from_secs(3),
            None,
        );
        assert_eq!((m.delivered, m.retried), (3, 3), "{partial:?}: {r:?}");
    }
}

/// 1xx answers that never end (a `102` every 100 ms; a status line a byte
/// every 100 ms): the request's time limit holds.
#[test]
fn endless_1xx_answers_end_at_the_time_limit() {
    let endless: Vec<Vec<u8>> =
        std::iter::repeat_n(b"HTTP/1.1 102 Processing\r\n\r\n".to_vec(), 300).collect();
    // ~30 s of answer either way: far past the 1 s limit and the bound
    // below, which leaves room for a loaded machine.
    let drip: Vec<Vec<u8>> = [b"HTTP/1.1 103 Early\r\nLink: ".as_slice(), &[b'a'; 280]]
        .concat()
        .iter()
        .map(|b| vec![*b])
        .collect();
    for parts in [endless, drip] {
        let c = collector(move |_| {
            let slow = parts
                .iter()
                .flat_map(|p| {
                    // 3 ms between writes in the collector; pad to ~100 ms.
                    std::iter::once(p.clone()).chain(std::iter::repeat_n(Vec::new(), 30))
                })
                .collect();
            (slow, false)
        });
        let started = Instant::now();
        let (m, r) = drive(
            &c,
            HttpMode::Structured,
            false,
            1,
            1,
            Duration::from_secs(1),
            None,
        );
        let took = started.elapsed();
        assert_eq!(m.failed, 1, "{m:?} {r:?}");
        assert!(took < Duration::from_secs(10), "{took:?} {r:?}");
    }
}

/// `101 Switching Protocols` is a final answer to the sink (not read
/// past): the events fail once each, and the connection is not reused.
#[test]
fn switching_protocols_fails_once() {
    let c = collector(|_| {
        (
            pieces(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
                &Cut::At(10),
            ),
            true,
        )
    });
    let (m, r) = drive(
        &c,
        HttpMode::Structured,
        false,
        2,
        2,
        Duration::from_secs(2),
        None,
    );
    assert_eq!(m.failed, 2, "{m:?} {r:?}");
}

/// A 1xx cut while the sink waits for `100 Continue`, its rest after the
/// wait ran out (the body went without it): read past, delivered.
#[test]
fn a_1xx_cut_across_the_wait_for_100_continue() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let conns = Arc::new(AtomicUsize::new(0));
    let (acc2, conns2) = (accepted.clone(), conns.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            conns2.fetch_add(1, Ordering::SeqCst);
            let acc = acc2.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                while let Some(headers) = read_head_lines(&mut r) {
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .map_or(0, |(_, v)| v.parse().unwrap());
                    s.write_all(b"HTTP/1.1 10").unwrap();
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let text = String::from_utf8_lossy(&body);
                    acc.lock().unwrap().extend(
                        text.split(r#""id":""#)
                            .skip(1)
                            .map(|p| p.split('"').next().unwrap().to_owned()),
                    );
                    s.write_all(b"3 Early Hints\r\nLink: </x>\r\n\r\n").unwrap();
                    s.write_all(OK.as_bytes()).unwrap();
                }
            });
        }
    });
    let c = Collector {
        addr,
        conns,
        accepted,
    };
    let (m, r) = drive_large(&c, 2, Duration::from_secs(3));
    assert_eq!((m.delivered, m.retried), (2, 0), "{r:?}");
}

/// A second answer nobody asked for, in the same write as the end of the
/// first (a 1xx, or a whole final answer): the first delivers, and the
/// connection is not used again (the stray answer is not taken for the
/// next request's).
#[test]
fn a_stray_answer_after_the_first_closes_the_connection() {
    for stray in ["HTTP/1.1 103 Early\r\nLink: a\r\n\r\n", OK] {
        let c = collector(move |i| {
            let a = if i == 0 {
                format!("{OK}{stray}")
            } else {
                OK.to_owned()
            };
            (pieces(a.as_bytes(), &Cut::At(OK.len() - 1)), false)
        });
        let (m, r) = drive(
            &c,
            HttpMode::Structured,
            false,
            3,
            1,
            Duration::from_secs(3),
            None,
        );
        assert_eq!((m.delivered, m.retried), (3, 0), "{stray:?} {r:?}");
        assert_eq!(c.conns.load(Ordering::SeqCst), 2, "{stray:?}");
    }
}
