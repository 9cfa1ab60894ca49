//! The two failures issue 11 found by trying the CLI as a user would, against
//! a collector this project did not write (a small hand-written HTTP/1.1
//! server here), and the signal handling of `emit` and `listen`, run as the
//! real binary in a child process:
//!
//! - a collector that refuses one event of forty (400) gets the other
//!   thirty-nine, in structured and in binary mode, and `emit` counts one
//!   failure;
//! - SIGINT or SIGTERM stops `emit` reading, gives what is in hand
//!   `--deadline`, prints the summary and exits 130 / 143, never claiming
//!   more delivered than the collector confirmed; a second signal exits at
//!   once with the counts so far; `listen` finishes and exits 143.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{bin, parse_events, read_request, serve_loopback, wait_for_tcp};

/// What the collector saw: ids answered 2xx (in order) and ids refused.
#[derive(Default)]
struct Seen {
    accepted: Vec<String>,
    refused: Vec<String>,
}

/// A collector on 127.0.0.1 that answers 400 to any request holding the
/// event `bad_id`, 202 to the others, each after `delay`.
fn collector(bad_id: &'static str, delay: Duration) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    let addr = serve_loopback(None, move |stream: TcpStream| {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut w = match stream.try_clone() {
            Ok(w) => w,
            Err(_) => return,
        };
        let mut r = BufReader::new(stream);
        while let Ok(Some(req)) = read_request(&mut r) {
            let mut ids = Vec::new();
            let parsed = parse_events(&req.headers, &req.body, |_, ev| {
                ids.push(ev.id().to_owned())
            });
            thread::sleep(delay);
            let bad = parsed.is_err() || ids.iter().any(|i| i == bad_id);
            let (status, text) = if bad {
                (400, "Bad Request")
            } else {
                (202, "Accepted")
            };
            let body = if bad { "id refused" } else { "" };
            // Count before answering: what the client may count delivered is
            // never more than what is recorded here.
            {
                let mut s = s2.lock().unwrap();
                if bad {
                    s.refused.extend(ids);
                } else {
                    s.accepted.extend(ids);
                }
            }
            let resp = format!(
                "HTTP/1.1 {status} {text}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            if w.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    });
    (addr, seen)
}

fn event_line(id: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/agents/t","type":"dev.ossa.tool.called","data":{{"n":1}}}}"#
    ) + "\n"
}

/// `ossa-events emit --sink http --url http://ADDR/events EXTRA`, stdin
/// and stderr piped.
fn spawn_emit(addr: SocketAddr, extra: &[&str]) -> Child {
    bin()
        .args(["emit", "--sink", "http", "--url"])
        .arg(format!("http://{addr}/events"))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `emit: read N, delivered N, retried N, failed N, dropped N, invalid N`.
fn summary_field(stderr: &str, name: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("emit: read "))
        .unwrap_or_else(|| panic!("no summary line in {stderr:?}"));
    let pos = line
        .find(&format!("{name} "))
        .unwrap_or_else(|| panic!("no {name} in {line:?}"));
    line[pos + name.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {line:?}"))
}

/// Waits for `child` at most `limit`; kills it past that.
fn wait_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn stderr_of(child: &mut Child) -> thread::JoinHandle<String> {
    let mut e = child.stderr.take().unwrap();
    thread::spawn(move || {
        let mut s = String::new();
        let _ = e.read_to_string(&mut s);
        s
    })
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

#[test]
fn one_refused_event_does_not_sink_its_neighbours() {
    for mode in ["structured", "binary"] {
        let (addr, seen) = collector("bad-6", Duration::ZERO);
        let input: String = (1..=40)
            .map(|i| {
                event_line(&if i == 6 {
                    "bad-6".to_string()
                } else {
                    format!("ok-{i}")
                })
            })
            .collect();
        let mut child = spawn_emit(addr, &["--mode", mode]);
        let err = stderr_of(&mut child);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let status = wait_within(&mut child, Duration::from_secs(60));
        let stderr = err.join().unwrap();
        assert_eq!(status.code(), Some(1), "{mode}: one event failed: {stderr}");
        assert_eq!(summary_field(&stderr, "read"), 40, "{stderr}");
        assert_eq!(summary_field(&stderr, "delivered"), 39, "{mode}: {stderr}");
        assert_eq!(summary_field(&stderr, "failed"), 1, "{mode}: {stderr}");
        assert_eq!(
            summary_field(&stderr, "retried"),
            0,
            "{mode}: a 400 is not retried"
        );
        assert!(
            stderr.contains("bad-6"),
            "the refused event is named: {stderr}"
        );
        let s = seen.lock().unwrap();
        assert_eq!(s.refused, ["bad-6"], "{mode}");
        let want: Vec<String> = (1..=40)
            .filter(|&i| i != 6)
            .map(|i| format!("ok-{i}"))
            .collect();
        assert_eq!(s.accepted, want, "{mode}: each good event once, in order");
    }
}

/// `emit --sink http` reading from a stdin that stays open, to a collector
/// that takes `delay` per request; returns the child, its stdin (kept open)
/// and the collector's record.
fn slow_emit(
    delay: Duration,
    events: usize,
    deadline: &str,
) -> (Child, std::process::ChildStdin, Arc<Mutex<Seen>>) {
    let (addr, seen) = collector("none", delay);
    let mut child = spawn_emit(addr, &["--mode", "structured", "--deadline", deadline]);
    let mut stdin = child.stdin.take().unwrap();
    let input: String = (0..events).map(|i| event_line(&format!("e-{i}"))).collect();
    stdin.write_all(input.as_bytes()).unwrap();
    stdin.flush().unwrap();
    (child, stdin, seen)
}

#[test]
fn sigint_delivers_what_is_in_hand_within_the_deadline_and_exits_130() {
    let (mut child, _stdin, seen) = slow_emit(Duration::from_millis(100), 100, "1.5");
    let err = stderr_of(&mut child);
    thread::sleep(Duration::from_secs(1));
    signal(&child, "INT");
    let t = Instant::now();
    let status = wait_within(&mut child, Duration::from_secs(10));
    let took = t.elapsed();
    let stderr = err.join().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    // Within --deadline (1.5 s), plus the summary.
    assert!(took < Duration::from_millis(2500), "{took:?}: {stderr}");
    assert!(stderr.contains("stopped by SIGINT"), "{stderr}");
    let delivered = summary_field(&stderr, "delivered");
    let failed = summary_field(&stderr, "failed");
    assert_eq!(summary_field(&stderr, "read"), 100, "{stderr}");
    let confirmed = seen.lock().unwrap().accepted.len() as u64;
    assert!(delivered >= 5, "the slow collector got some: {stderr}");
    assert!(
        delivered <= confirmed,
        "claims {delivered} delivered, the collector confirmed {confirmed}: {stderr}"
    );
    // Nothing vanishes: every event read is delivered or counted failed.
    assert_eq!(delivered + failed, 100, "{stderr}");
}

#[test]
fn sigterm_exits_143_and_a_second_signal_exits_at_once() {
    let (mut child, _stdin, seen) = slow_emit(Duration::from_millis(100), 100, "60");
    let err = stderr_of(&mut child);
    thread::sleep(Duration::from_millis(800));
    signal(&child, "TERM");
    thread::sleep(Duration::from_millis(300));
    // Still delivering what is in hand (60 s allowed): a second signal ends it now.
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited before the second signal"
    );
    signal(&child, "TERM");
    let t = Instant::now();
    let status = wait_within(&mut child, Duration::from_secs(5));
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
    let stderr = err.join().unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    let delivered = summary_field(&stderr, "delivered");
    let confirmed = seen.lock().unwrap().accepted.len() as u64;
    assert!(
        delivered <= confirmed,
        "{delivered} > {confirmed}: {stderr}"
    );
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
}

/// `ossa-events listen` on a free port: the process, its stderr (past the
/// `listening on` line) and its address.
fn spawn_listen() -> (
    std::process::Child,
    BufReader<std::process::ChildStderr>,
    SocketAddr,
) {
    let mut child = bin()
        .args(["listen", "--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its first stderr line names the port.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
    let addr: SocketAddr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .parse()
        .unwrap();
    (child, stderr, addr)
}

/// Waits for `listen` to exit with `code` after saying `said` on stderr;
/// what it printed on stdout.
fn listen_ended(
    mut child: std::process::Child,
    mut stderr: BufReader<std::process::ChildStderr>,
    code: i32,
    said: &str,
) -> String {
    let status = wait_within(&mut child, Duration::from_secs(10));
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert_eq!(status.code(), Some(code), "{rest}");
    assert!(rest.contains(said), "{rest}");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[test]
fn listen_finishes_and_exits_143_on_sigterm() {
    let (child, stderr, addr) = spawn_listen();
    let mut s = TcpStream::connect(addr).unwrap();
    let body = event_line("l-1");
    let req = format!(
        "POST /events HTTP/1.1\r\nhost: x\r\ncontent-type: application/cloudevents+json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = [0u8; 12];
    s.read_exact(&mut resp).unwrap();
    assert_eq!(&resp, b"HTTP/1.1 202");
    drop(s);
    signal(&child, "TERM");
    let out = listen_ended(
        child,
        stderr,
        143,
        "listen: stopped by SIGTERM: 1 requests, 1 events",
    );
    let ids: HashMap<&str, usize> = out.lines().map(|l| (l, 1)).collect();
    assert_eq!(ids.len(), 1, "{out}");
    assert!(out.contains(r#""id":"l-1""#), "{out}");
}

/// The queue is full and `emit` waits for room (`Overflow::Block` for
/// `--deadline`) when the signal comes: the wait ends at once, what is in
/// hand gets `--deadline`, and every event read is counted.
#[test]
fn sigint_stops_an_emit_that_waits_for_room_in_a_full_queue() {
    // A collector that holds each request 10 s: nothing is confirmed in time.
    let (addr, seen) = collector("none", Duration::from_secs(10));
    let mut child = spawn_emit(addr, &["--mode", "structured", "--deadline", "4"]);
    let err = stderr_of(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    // More than the default queue (10 000 events): the last ones wait for room.
    let input: String = (0..12_000).map(|i| event_line(&format!("q-{i}"))).collect();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
        stdin // kept open: emit never sees the end of its input
    });
    thread::sleep(Duration::from_secs(2));
    signal(&child, "INT");
    let t = Instant::now();
    let status = wait_within(&mut child, Duration::from_secs(20));
    let took = t.elapsed();
    let stderr = err.join().unwrap();
    drop(writer);
    assert_eq!(status.code(), Some(130), "{stderr}");
    // --deadline (4 s), not what is left of a wait for room (up to 4 s:
    // it began 2 s before the signal) and then --deadline.
    assert!(took < Duration::from_secs(5), "{took:?}: {stderr}");
    let (read, delivered) = (
        summary_field(&stderr, "read"),
        summary_field(&stderr, "delivered"),
    );
    let failed = summary_field(&stderr, "failed");
    let dropped = summary_field(&stderr, "dropped");
    assert!(read > 10_000, "{stderr}");
    assert_eq!(
        delivered + failed + dropped,
        read,
        "every event read is counted: {stderr}"
    );
    assert!(
        delivered <= seen.lock().unwrap().accepted.len() as u64,
        "{stderr}"
    );
}

#[test]
fn listen_on_sigint_refuses_new_connections_and_finishes_the_request_in_progress() {
    let (child, stderr, addr) = spawn_listen();
    let post = |id: &str| {
        let body = event_line(id);
        format!(
            "POST /events HTTP/1.1\r\nhost: x\r\ncontent-type: application/cloudevents+json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    // An idle keep-alive connection, and one in the middle of a request body.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    idle.write_all(&post("before")).unwrap();
    let mut resp = [0u8; 12];
    idle.read_exact(&mut resp).unwrap();
    assert_eq!(&resp, b"HTTP/1.1 202");
    let mut busy = TcpStream::connect(addr).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = post("in-progress");
    let half = req.len() - 10;
    busy.write_all(&req[..half]).unwrap();
    // `listen` has read the half request (the connection is mid-request),
    // seen from the kernel's side: its socket's receive queue is empty.
    let busy_port = busy.local_addr().unwrap().port();
    wait_for_tcp("listen to read the half request", |socks| {
        socks
            .iter()
            .any(|s| s.local == addr.port() && s.remote == busy_port && s.rx_queue == 0)
    });

    signal(&child, "INT");
    // Its listening socket is closed.
    wait_for_tcp("listen to stop listening", |socks| {
        !socks.iter().any(|s| s.local == addr.port() && s.listening)
    });
    // No new connections.
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "still accepting after SIGINT"
    );
    // The idle one is closed (after its pending bytes, if any: none here).
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest);
    // The request in progress is finished and answered, then closed.
    busy.write_all(&req[half..]).unwrap();
    let mut answer = Vec::new();
    let _ = busy.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );

    let out = listen_ended(
        child,
        stderr,
        130,
        "listen: stopped by SIGINT: 2 requests, 2 events",
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains(r#""id":"in-progress""#), "{out}");
}

/// A collector that takes requests and never answers, and more lines than
/// the queue holds (10 000 events), then the end of the input: once an
/// event has waited the whole `--deadline` for room and been dropped, the
/// sink is known to take nothing, and `emit` ends within about `--deadline`
/// with exit 1, every event read counted. Each further line waited
/// `--deadline` again before: 12 000 lines with `--deadline 1` took about
/// 2 000 s (at the default 300 s, about a week).
#[test]
fn a_collector_that_never_answers_does_not_make_every_further_line_wait_the_deadline() {
    let (addr, seen) = collector("none", Duration::from_secs(600));
    let mut child = spawn_emit(
        addr,
        &[
            "--mode",
            "structured",
            "--timeout",
            "0.5",
            "--deadline",
            "1",
        ],
    );
    let err = stderr_of(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    let input: String = (0..12_000).map(|i| event_line(&format!("n-{i}"))).collect();
    // Dropped once written: emit sees the end of its input (or a broken
    // pipe, once it stops reading).
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let status = wait_within(&mut child, Duration::from_secs(30));
    let stderr = err.join().unwrap();
    writer.join().unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let read = summary_field(&stderr, "read");
    let (delivered, failed, dropped, invalid) = (
        summary_field(&stderr, "delivered"),
        summary_field(&stderr, "failed"),
        summary_field(&stderr, "dropped"),
        summary_field(&stderr, "invalid"),
    );
    assert_eq!(delivered, 0, "{stderr}");
    assert!(seen.lock().unwrap().accepted.is_empty());
    assert_eq!(
        delivered + failed + dropped + invalid,
        read,
        "every event read is counted: {stderr}"
    );
    assert!(read >= 10_000, "{stderr}");
}

/// A line over the longest `emit` reads (64 MiB) is not held in memory
/// while it grows (a file with no newline piped in by mistake took all
/// memory): it is
/// reported with its line number and counted invalid, and the lines after
/// it are sent.
#[test]
fn a_line_too_long_to_be_an_event_is_reported_and_the_rest_is_sent() {
    let mut child = bin()
        .args(["emit", "--sink", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = stderr_of(&mut child);
    let mut out = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(event_line("before").as_bytes()).unwrap();
    let piece = vec![b'x'; 1 << 20];
    for _ in 0..70 {
        stdin.write_all(&piece).unwrap(); // 70 MiB, no newline
    }
    stdin.write_all(b"\n").unwrap();
    stdin.write_all(event_line("after").as_bytes()).unwrap();
    drop(stdin);
    let status = wait_within(&mut child, Duration::from_secs(60));
    let stderr = err.join().unwrap();
    let stdout = reader.join().unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("<stdin>:2: line longer than 67108864 bytes"),
        "{stderr}"
    );
    let ids: Vec<&str> = stdout
        .lines()
        .map(|l| {
            if l.contains("\"before\"") {
                "before"
            } else if l.contains("\"after\"") {
                "after"
            } else {
                "?"
            }
        })
        .collect();
    assert_eq!(ids, ["before", "after"], "{stdout}");
    assert_eq!(summary_field(&stderr, "invalid"), 1, "{stderr}");
}
