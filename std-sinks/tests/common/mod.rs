//! Support code shared by the integration tests of `ossa-events`: the parts
//! of the loopback HTTP/1.1 test servers that are the same everywhere
//! (accepting connections, reading a request, parsing it back with our HTTP
//! binding parser), running `ossa-events listen` and finding its port, and
//! small waiting helpers.
//!
//! Each test binary includes this with `mod common;` and uses a subset.
#![allow(dead_code)]

pub(crate) mod contract;
#[cfg(feature = "tracing")]
pub(crate) mod held;
#[cfg(feature = "kafka")]
pub(crate) mod kafka_contract;
pub(crate) mod kafka_events;
pub(crate) mod tansu;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use ossa_events::parse::http::{self as http_parse, Message};
use ossa_events::{Event, Scratch};

// ---------------------------------------------------------------------------
// Loopback HTTP/1.1 servers
// ---------------------------------------------------------------------------

/// Binds 127.0.0.1 on a free port and runs `serve` on a thread of its own for
/// each connection accepted. With `stop`, the accept loop ends at the first
/// connection accepted after it is set (connect once to wake it); without,
/// it lives as long as the test process. Connection threads end when their
/// client closes or their socket times out.
pub(crate) fn serve_loopback(
    stop: Option<Arc<AtomicBool>>,
    serve: impl Fn(TcpStream) + Send + Sync + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    thread::spawn(move || {
        for stream in listener.incoming() {
            if stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let serve = Arc::clone(&serve);
            thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// A port on 127.0.0.1 that nothing listens on: bound, read, closed.
pub(crate) fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Names lower-cased, values trimmed, in the order sent.
pub(crate) type Headers = Vec<(String, String)>;

/// One request as a test server read it off the socket.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Headers,
    /// The `Content-Length` bytes that followed the head, as sent.
    pub(crate) body: Vec<u8>,
}

/// The value of the first header called `name` (lower case).
pub(crate) fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Reads a request's head and gives its header lines, names lower-cased and
/// values trimmed (the request line is skipped); `None` at the end of the
/// connection, or for a header line without a colon.
pub(crate) fn read_head_lines(r: &mut impl BufRead) -> Option<Vec<(String, String)>> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Some(headers);
        }
        let (n, v) = l.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
}

/// What an emitter's `on_undelivered` callback was told: reason, id, error.
pub(crate) type Reports = Arc<std::sync::Mutex<Vec<(ossa_events::Reason, String, String)>>>;

/// An `on_undelivered` callback that records each report into `reports`.
pub(crate) fn recorder(
    reports: &Reports,
) -> impl Fn(&ossa_events::Undelivered<'_>) + Send + Sync + 'static + use<> {
    let reports = Arc::clone(reports);
    move |u| {
        reports
            .lock()
            .unwrap()
            .push((u.reason, u.id.to_owned(), u.error.to_string()));
    }
}

/// A retry policy of `n` attempts with millisecond backoff.
pub(crate) fn fast_retry(n: u32) -> ossa_events::RetryPolicy {
    ossa_events::RetryPolicy::default()
        .max_attempts(n)
        .base(Duration::from_millis(1))
        .cap(Duration::from_millis(5))
}

/// Reads one HTTP/1.1 request with a `Content-Length` body. `Ok(None)` when
/// the client closed (or went idle) between requests; `Err` for anything
/// malformed or cut short, and for a chunked body (the sink sends sized ones).
pub(crate) fn read_request(r: &mut impl BufRead) -> Result<Option<Request>, String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) | Err(_) => return Ok(None),
        Ok(_) => {}
    }
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(path), Some("HTTP/1.1")) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("request line {line:?}"));
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        match r.read_line(&mut h) {
            Ok(0) => return Err("connection closed inside the headers".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading headers: {e}")),
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':').ok_or_else(|| format!("header {h:?}"))?;
        headers.push((n.to_ascii_lowercase(), v.trim().to_owned()));
        if headers.len() > 100 {
            return Err("more than 100 headers".into());
        }
    }
    if header(&headers, "transfer-encoding").is_some() {
        return Err("the sink sends sized bodies, not chunked ones".into());
    }
    let len: usize = match header(&headers, "content-length") {
        Some(v) => v
            .parse()
            .map_err(|e| format!("content-length {v:?}: {e}"))?,
        None => 0,
    };
    if len > 16 << 20 {
        return Err(format!("body of {len} bytes"));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)
        .map_err(|e| format!("reading a {len}-byte body: {e}"))?;
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

/// Parses a request with our HTTP binding parser (structured, binary or
/// batched, from its `Content-Type`) and hands each event with its index to
/// `each`; the number of events.
pub(crate) fn parse_events(
    headers: &[(String, String)],
    body: &[u8],
    mut each: impl FnMut(usize, &Event<'_>),
) -> Result<usize, String> {
    let hs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let mut scratch = vec![0u8; 64 * 1024];
    let mut sc = Scratch::new(&mut scratch);
    let msg = http_parse::parse(hs.iter().copied(), body, &mut sc)
        .map_err(|e| format!("unparsable request: {e:?}"))?;
    match msg {
        Message::Event(ev) => {
            each(0, &ev);
            Ok(1)
        }
        Message::Batch(mut batch) => {
            let mut buf = vec![0u8; 64 * 1024];
            let mut n = 0;
            while let Some(ev) = batch.next_event(&mut buf) {
                each(n, &ev.map_err(|e| format!("batch event {n}: {e:?}"))?);
                n += 1;
            }
            Ok(n)
        }
        other => Err(format!("unexpected message {other:?}")),
    }
}

// ---------------------------------------------------------------------------
// `ossa-events listen`, run as the real binary
// ---------------------------------------------------------------------------

/// The `ossa-events` binary cargo built for these tests.
pub(crate) fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ossa-events"))
}

/// The built example `name`, checked to exist and to be newer than its source.
pub(crate) fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/examples_run-<hash> → target/<profile>/examples/<name>
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap_or_else(|| panic!("unexpected test binary path {}", exe.display()));
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let build = "`cargo test` builds the examples before the integration tests, but not \
                 when targets are selected (`--test examples_run`; `--examples` builds them \
                 as tests, elsewhere): run `cargo test -p ossa-events --all-features`, or \
                 `cargo build -p ossa-events --all-features --examples` first";
    assert!(
        bin.is_file(),
        "example binary {} is missing: {build}",
        bin.display()
    );
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.rs"));
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(b), Some(s)) = (modified(&bin), modified(&src)) {
        assert!(
            b >= s,
            "example binary {} is older than {}: {build}",
            bin.display(),
            src.display()
        );
    }
    bin
}

/// How long [`Listen::no_more_lines`] waits for output that must not come.
const QUIET: Duration = Duration::from_millis(300);

/// A running `listen` process; killed when dropped.
pub(crate) struct Listen {
    child: Child,
    pub(crate) addr: SocketAddr,
    lines: Receiver<String>,
    /// For its `listening on` line, each printed line and each socket read/write.
    io_timeout: Duration,
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Listen {
    /// Runs `ossa-events listen --http 127.0.0.1:0 EXTRA` and reads the port
    /// it bound from its first stderr line, waiting at most `io_timeout`.
    pub(crate) fn start(extra: &[&str], io_timeout: Duration) -> Listen {
        let mut child = bin()
            .args(["listen", "--http", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        thread::spawn(move || {
            let mut first = String::new();
            let mut r = BufReader::new(stderr);
            let _ = r.read_line(&mut first);
            let _ = tx.send(first);
            // Keep draining so the child never blocks on stderr.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let first = match rx.recv_timeout(io_timeout) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("listen printed no 'listening on' line");
            }
        };
        let addr: SocketAddr = first
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first stderr line: {first:?}"))
            .parse()
            .unwrap();
        assert_ne!(addr.port(), 0, "the real port is printed");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Listen {
            child,
            addr,
            lines,
            io_timeout,
        }
    }

    /// The process id of the `listen` process.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The next line printed on stdout.
    pub(crate) fn line(&self) -> String {
        self.lines.recv_timeout(self.io_timeout).unwrap()
    }

    /// The next `n` lines printed on stdout, each parsed as JSON.
    pub(crate) fn events(&self, n: usize) -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| {
                let line = self
                    .lines
                    .recv_timeout(self.io_timeout)
                    .unwrap_or_else(|e| panic!("listen line {i} of {n}: {e}"));
                serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("listen printed a line that is not JSON ({e}): {line}")
                })
            })
            .collect()
    }

    /// Asserts nothing more was printed (`listen` flushes before it answers,
    /// so anything delivered is already there).
    pub(crate) fn no_more_lines(&self) {
        match self.lines.recv_timeout(QUIET) {
            Err(RecvTimeoutError::Timeout) => {}
            other => panic!("unexpected output from listen: {other:?}"),
        }
    }

    /// Sends raw bytes on a new connection; the status code and the body.
    pub(crate) fn send(&self, req: &[u8]) -> (u16, String) {
        let mut s = TcpStream::connect_timeout(&self.addr, self.io_timeout).unwrap();
        s.set_read_timeout(Some(self.io_timeout)).unwrap();
        s.set_write_timeout(Some(self.io_timeout)).unwrap();
        s.write_all(req).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 16];
            let mut r = httparse::Response::new(&mut hs);
            if let httparse::Status::Complete(n) = r.parse(&buf).unwrap() {
                let len: usize = r
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |h| {
                        std::str::from_utf8(h.value).unwrap().parse().unwrap()
                    });
                let code = r.code.unwrap();
                while buf.len() < n + len {
                    let k = read_some(&mut s, &mut chunk);
                    assert!(k > 0, "closed inside the body");
                    buf.extend_from_slice(&chunk[..k]);
                }
                return (code, String::from_utf8_lossy(&buf[n..n + len]).into_owned());
            }
            let k = read_some(&mut s, &mut chunk);
            assert!(k > 0, "closed before a response");
            buf.extend_from_slice(&chunk[..k]);
        }
    }
}

/// A `POST /` with this `Content-Type` and body.
pub(crate) fn post(content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The smallest valid structured event, as `listen` prints it.
pub(crate) fn ev(id: &str) -> String {
    format!(r#"{{"specversion":"1.0","id":"{id}","source":"/s","type":"t"}}"#)
}

// ---------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------

/// `len` bytes of noise from `seed` (xorshift64): they do not compress, and
/// the same seed gives the same bytes.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A writer whose bytes a test reads while a `WriterSink` owns it.
#[derive(Clone, Default)]
pub(crate) struct Captured(pub(crate) Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// An emitter of `source` whose events, as JSON lines, land here.
    pub(crate) fn emitter(&self, source: &str) -> ossa_events::Emitter {
        ossa_events::Emitter::builder(source)
            .sink(ossa_events::sink::WriterSink::new(self.clone()))
            .build()
            .unwrap()
    }

    /// The JSON lines written so far.
    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Waits up to `limit` for `child` to exit: its status, or `None` (then it
/// is killed) if it is still running.
pub(crate) fn exit_within(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let mut status = None;
    wait_for(
        || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        },
        limit,
    );
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Polls `f` every 5 ms until it holds or `limit` has passed; its last answer.
pub(crate) fn wait_for(mut f: impl FnMut() -> bool, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    f()
}

// ---------------------------------------------------------------------------
// A recording sink
// ---------------------------------------------------------------------------

/// A sink that keeps every event it is sent (as JSON), in order, after
/// sleeping `delay` per batch.
#[derive(Clone, Default)]
pub(crate) struct Record {
    pub(crate) events: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    pub(crate) delay: Duration,
}

impl ossa_events::sink::Sink for Record {
    fn send(
        &mut self,
        events: &[ossa_events::sink::Encoded],
    ) -> Result<(), ossa_events::SendError> {
        thread::sleep(self.delay);
        let mut v = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        v.extend(
            events
                .iter()
                .map(|e| serde_json::from_slice(e.json()).unwrap()),
        );
        Ok(())
    }
}

impl Record {
    /// One that takes `delay` for every batch.
    pub(crate) fn slow(delay: Duration) -> Self {
        Record {
            delay,
            ..Record::default()
        }
    }
    /// Events received so far.
    pub(crate) fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }
    /// The events received so far.
    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
        self.events.lock().unwrap().clone()
    }
}

/// A loopback IPv4 TCP socket as `/proc/net/tcp` lists it.
pub(crate) struct Sock {
    pub(crate) local: u16,
    pub(crate) remote: u16,
    /// Bytes received and not read yet by the socket's process.
    pub(crate) rx_queue: u64,
    pub(crate) listening: bool,
}

/// Polls `/proc/net/tcp` (at most 10 s) until `done` holds for its
/// sockets: what another process has done with its sockets, seen from the
/// kernel, rather than a sleep that hopes it is done.
pub(crate) fn wait_for_tcp(what: &str, done: impl Fn(&[Sock]) -> bool) {
    let seen = wait_for(|| done(&tcp_sockets()), Duration::from_secs(10));
    assert!(seen, "never saw {what}");
}

/// The loopback IPv4 TCP sockets `/proc/net/tcp` lists now.
fn tcp_sockets() -> Vec<Sock> {
    let port = |a: &str| {
        a.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (_, rx) = f.get(4)?.split_once(':')?;
            Some(Sock {
                local: port(f.get(1)?)?,
                remote: port(f.get(2)?)?,
                rx_queue: u64::from_str_radix(rx, 16).ok()?,
                listening: *f.get(3)? == "0A",
            })
        })
        .collect()
}

/// One `read`, again while it is interrupted: a socket with a read timeout
/// answers a signal (or a stop and continue of the process) with `EINTR`
/// even under `SA_RESTART` (signal(7)), which `read` passes on.
pub(crate) fn read_some(s: &mut impl Read, buf: &mut [u8]) -> usize {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r.unwrap(),
        }
    }
}

// ---------------------------------------------------------------------------
// A collector slow for a while
// ---------------------------------------------------------------------------

/// Opens a [`Gated`] sink's gate: every send waits until then.
#[derive(Clone, Default)]
pub(crate) struct Gate(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    /// A sink whose sends wait for this gate to open, then deliver.
    pub(crate) fn sink(&self) -> Gated {
        Gated(self.clone())
    }

    /// Lets every send, waiting or to come, through.
    pub(crate) fn open(&self) {
        let (m, cv) = &*self.0;
        *m.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        cv.notify_all();
    }
}

/// Delivers once its [`Gate`] opens (a collector that is slow for a while).
pub(crate) struct Gated(Gate);

impl ossa_events::sink::Sink for Gated {
    fn send(&mut self, _: &[ossa_events::sink::Encoded]) -> Result<(), ossa_events::SendError> {
        let (m, cv) = &*(self.0).0;
        let mut open = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while !*open {
            open = cv
                .wait(open)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        Ok(())
    }
}
