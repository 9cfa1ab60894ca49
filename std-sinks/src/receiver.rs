//! A blocking HTTP/1.1 CloudEvents receiver on `std` only: one accept thread,
//! one thread per connection, no async runtime.
//!
//! It understands all three content modes of the HTTP protocol binding
//! (binary, structured, batched — told apart by `Content-Type`), hands every
//! event of a request to a handler once the *whole* request is valid, and
//! answers:
//!
//! | Situation | Status |
//! |---|---|
//! | every event valid, handler called for each | `202 Accepted`, empty body |
//! | an invalid event (or any event of a batch invalid) | `400 Bad Request`, the reason as `text/plain` |
//! | unsupported event format (`application/cloudevents+avro`), or a `Content-Encoding` other than `identity` and `gzip` | `415 Unsupported Media Type` |
//! | method other than `POST`/`PUT` | `405 Method Not Allowed` (`Allow: POST, PUT`) |
//! | `Content-Length` over the body limit (checked before the body is read), chunked body growing over it, batch with too many events | `413 Content Too Large`, then close |
//! | request head over the header byte limit or header count | `431 Request Header Fields Too Large`, then close |
//! | request head or body not complete within the deadline | `408 Request Timeout`, then close |
//! | connection cap reached | `503 Service Unavailable` with `Retry-After: 1`, then close |
//!
//! It is meant to be safe to expose: every connection has a per-read timeout
//! and an overall deadline for one request (slowloris), idle keep-alive
//! connections are closed, the number of connections is capped, and memory per
//! connection is bounded by about `max_header_bytes + 2 × max_body_bytes`
//! (read buffer plus the scratch space the parsers decode into), or
//! `3 × max_body_bytes` for a gzipped body.
//!
//! With the `http` feature (on by default) a `Content-Encoding: gzip` body is
//! decompressed — as the crate's HTTP sink sends it with `gzip(true)` — and
//! the body limit applies to the decompressed size too, so a small "zip bomb"
//! is refused with `413`; without the feature such a request gets `415`.
//!
//! ```no_run
//! use ossa_events::receiver::{Receiver, ReceiverConfig};
//! let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new().max_body_bytes(64 * 1024))?;
//! let handle = rx.spawn(|ev: &ossa_events::Event<'_>| println!("{} {}", ev.ty(), ev.id()))?;
//! println!("listening on http://{}", handle.local_addr());
//! // … later:
//! println!("{:?}", handle.stats());
//! handle.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ossa_events_core::parse::http::{self, ContentMode, Message, content_mode};
use ossa_events_core::parse::json::BatchParser;
use ossa_events_core::{Event, ParseError, Scratch};

/// Default largest request body, in bytes (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default largest request head (request line and headers), in bytes (16 KiB).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default largest number of headers in a request.
pub const DEFAULT_MAX_HEADERS: usize = 64;
/// Default longest wait for the next bytes of a request that has started.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest wait for a request on an open connection (new or kept alive).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default deadline for reading one whole request (head and body) from its first byte.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest a response write may block on a client that does not read.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest number of connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Default largest number of events in one batched request.
pub const DEFAULT_MAX_BATCH_EVENTS: usize = 10_000;

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Longest chunk-size line (with extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 4096;
/// Read-buffer capacity kept on an idle connection after a large request.
const KEEP_CAPACITY: usize = 64 * 1024;
/// Bytes read and discarded after an error response before closing (so the
/// response is not destroyed by a TCP reset), and the time spent doing so.
const LINGER_BYTES: usize = 256 * 1024;
const LINGER_TIME: Duration = Duration::from_millis(500);

/// Limits and timeouts of a [`Receiver`].
///
/// ```
/// use std::time::Duration;
/// use ossa_events::receiver::ReceiverConfig;
/// let cfg = ReceiverConfig::new()
///     .max_body_bytes(256 * 1024)
///     .max_connections(16)
///     .read_timeout(Duration::from_secs(5));
/// assert_eq!(cfg.get_max_body_bytes(), 256 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    max_body_bytes: usize,
    max_header_bytes: usize,
    max_headers: usize,
    read_timeout: Duration,
    idle_timeout: Duration,
    request_timeout: Duration,
    write_timeout: Duration,
    max_connections: usize,
    max_batch_events: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ReceiverConfig {
    /// The default configuration (the `DEFAULT_*` constants of this module).
    ///
    /// ```
    /// use ossa_events::receiver::{self, ReceiverConfig};
    /// let cfg = ReceiverConfig::new();
    /// assert_eq!(cfg, ReceiverConfig::default());
    /// assert_eq!(cfg.get_max_body_bytes(), receiver::DEFAULT_MAX_BODY_BYTES);
    /// assert_eq!(cfg.get_read_timeout(), receiver::DEFAULT_READ_TIMEOUT);
    /// ```
    pub fn new() -> Self {
        ReceiverConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            read_timeout: DEFAULT_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_batch_events: DEFAULT_MAX_BATCH_EVENTS,
        }
    }

    /// Largest request body in bytes (after chunked decoding). A larger
    /// `Content-Length` is answered `413` before any of the body is read; a
    /// chunked body is refused with `413` as soon as it grows past the limit.
    /// See [`DEFAULT_MAX_BODY_BYTES`]. Defaults to `1 MiB`.
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::Event;
    /// # use std::io::{Read, Write};
    /// # /// Sends one POST with `extra` headers; returns the status line.
    /// # fn post(addr: std::net::SocketAddr, extra: &str, body: &str) -> std::io::Result<String> {
    /// #     let mut tcp = std::net::TcpStream::connect(addr)?;
    /// #     write!(tcp, "POST /events HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\
    /// #         Content-Type: application/cloudevents+json\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())?;
    /// #     let mut response = String::new();
    /// #     let _ = tcp.read_to_string(&mut response); // the receiver may close first
    /// #     Ok(response.lines().next().unwrap_or_default().to_owned())
    /// # }
    /// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new().max_body_bytes(200))?
    ///     .spawn(|_: &Event<'_>| {})?;
    /// let event = r#"{"specversion":"1.0","id":"e-1","source":"/agents/a","type":"dev.example.tick"}"#;
    /// assert_eq!(post(rx.local_addr(), "", event)?, "HTTP/1.1 202 Accepted");
    /// // Refused from the Content-Length alone, before the body is read.
    /// let big = format!("{{\"data\":\"{}\"}}", "x".repeat(300));
    /// assert!(post(rx.local_addr(), "", &big)?.starts_with("HTTP/1.1 413"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Largest request head (request line and all headers) in bytes; a larger
    /// one is answered `431` and the connection closed.
    /// Values below 64 count as 64; see [`DEFAULT_MAX_HEADER_BYTES`].
    /// Defaults to `16 KiB`.
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::Event;
    /// # use std::io::{Read, Write};
    /// # /// Sends one POST with `extra` headers; returns the status line.
    /// # fn post(addr: std::net::SocketAddr, extra: &str, body: &str) -> std::io::Result<String> {
    /// #     let mut tcp = std::net::TcpStream::connect(addr)?;
    /// #     write!(tcp, "POST /events HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\
    /// #         Content-Type: application/cloudevents+json\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())?;
    /// #     let mut response = String::new();
    /// #     let _ = tcp.read_to_string(&mut response); // the receiver may close first
    /// #     Ok(response.lines().next().unwrap_or_default().to_owned())
    /// # }
    /// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new().max_header_bytes(512))?
    ///     .spawn(|_: &Event<'_>| {})?;
    /// let cookie = format!("Cookie: {}\r\n", "c".repeat(600));
    /// assert!(post(rx.local_addr(), &cookie, r#"{"specversion":"1.0","id":"e-1","source":"/agents/a","type":"dev.example.tick"}"#)?.starts_with("HTTP/1.1 431"));
    /// // Values below 64 count as 64.
    /// assert_eq!(ReceiverConfig::new().max_header_bytes(0), ReceiverConfig::new().max_header_bytes(64));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes.max(64);
        self
    }

    /// Largest number of headers in a request; more are answered `431` and the
    /// connection closed. At least 1; see
    /// [`DEFAULT_MAX_HEADERS`]. Defaults to `64`.
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::Event;
    /// # use std::io::{Read, Write};
    /// # /// Sends one POST with `extra` headers; returns the status line.
    /// # fn post(addr: std::net::SocketAddr, extra: &str, body: &str) -> std::io::Result<String> {
    /// #     let mut tcp = std::net::TcpStream::connect(addr)?;
    /// #     write!(tcp, "POST /events HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\
    /// #         Content-Type: application/cloudevents+json\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())?;
    /// #     let mut response = String::new();
    /// #     let _ = tcp.read_to_string(&mut response); // the receiver may close first
    /// #     Ok(response.lines().next().unwrap_or_default().to_owned())
    /// # }
    /// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new().max_headers(8))?
    ///     .spawn(|_: &Event<'_>| {})?;
    /// let event = r#"{"specversion":"1.0","id":"e-1","source":"/agents/a","type":"dev.example.tick"}"#;
    /// assert_eq!(post(rx.local_addr(), "", event)?, "HTTP/1.1 202 Accepted"); // 4 headers
    /// let many: String = (0..10).map(|i| format!("X-Trace-{i}: {i}\r\n")).collect();
    /// assert!(post(rx.local_addr(), &many, event)?.starts_with("HTTP/1.1 431"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count.max(1);
        self
    }

    /// Longest wait for more bytes once a request has started (the socket read
    /// timeout). At least 1 ms; see
    /// [`DEFAULT_READ_TIMEOUT`]. Defaults to `10 s`.
    ///
    /// A client that stops sending in the middle of a request is answered
    /// `408` once it has been silent this long:
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::Event;
    /// let config = ReceiverConfig::new().read_timeout(Duration::from_millis(50));
    /// let rx = Receiver::bind("127.0.0.1:0", config)?.spawn(|_: &Event<'_>| {})?;
    /// let mut tcp = std::net::TcpStream::connect(rx.local_addr())?;
    /// tcp.write_all(b"POST /events HTTP/1.1\r\nHost: coll")?; // ... and nothing more
    /// let mut response = String::new();
    /// let _ = tcp.read_to_string(&mut response);
    /// assert!(response.starts_with("HTTP/1.1 408"));
    /// assert_eq!(rx.shutdown().timeouts, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = nonzero(timeout);
        self
    }

    /// Longest wait for the first byte of a request on an open connection —
    /// a new one or one kept alive after a response — before it is closed
    /// quietly. At least 1 ms; see
    /// [`DEFAULT_IDLE_TIMEOUT`]. Defaults to `10 s`.
    ///
    /// An idle connection is closed without a response (no request, nothing to
    /// answer):
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::Event;
    /// let config = ReceiverConfig::new().idle_timeout(Duration::from_millis(50));
    /// let rx = Receiver::bind("127.0.0.1:0", config)?.spawn(|_: &Event<'_>| {})?;
    /// let mut idle = std::net::TcpStream::connect(rx.local_addr())?;
    /// let mut response = Vec::new();
    /// let _ = idle.read_to_end(&mut response); // returns when the receiver closes
    /// assert!(response.is_empty());
    /// assert_eq!(rx.shutdown().timeouts, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = nonzero(timeout);
        self
    }

    /// Deadline for reading one whole request, head and body, counted from its
    /// first byte: a client trickling bytes just under the read timeout is cut
    /// off with `408` here. At least 1 ms; see
    /// [`DEFAULT_REQUEST_TIMEOUT`]. Defaults to `30 s`.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::{Duration, Instant};
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::Event;
    /// let config = ReceiverConfig::new()
    ///     .read_timeout(Duration::from_secs(5))
    ///     .request_timeout(Duration::from_millis(100));
    /// let rx = Receiver::bind("127.0.0.1:0", config)?.spawn(|_: &Event<'_>| {})?;
    /// let mut tcp = std::net::TcpStream::connect(rx.local_addr())?;
    /// // A byte every 20 ms keeps the read timeout at bay, not the request deadline.
    /// let started = Instant::now();
    /// let mut response = [0u8; 12];
    /// for &b in b"POST /events HTTP/1.1\r\nHost: collector\r\n".iter() {
    ///     if tcp.write_all(&[b]).is_err() {
    ///         break; // closed after the 408
    ///     }
    ///     std::thread::sleep(Duration::from_millis(20));
    ///     if started.elapsed() > Duration::from_millis(300) {
    ///         break;
    ///     }
    /// }
    /// tcp.read_exact(&mut response)?;
    /// assert_eq!(&response, b"HTTP/1.1 408");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = nonzero(timeout);
        self
    }

    /// Longest a response write may block on a client that does not read.
    /// At least 1 ms; see [`DEFAULT_WRITE_TIMEOUT`].
    /// Defaults to `10 s`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::receiver::ReceiverConfig;
    /// let config = ReceiverConfig::new().write_timeout(Duration::from_secs(2));
    /// # let _ = config;
    /// // Zero would mean "block forever" to the socket: it counts as 1 ms.
    /// assert_eq!(
    ///     ReceiverConfig::new().write_timeout(Duration::ZERO),
    ///     ReceiverConfig::new().write_timeout(Duration::from_millis(1)),
    /// );
    /// ```
    #[must_use]
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = nonzero(timeout);
        self
    }

    /// Largest number of connections served at once. A connection accepted
    /// while this many are open is answered `503 Service Unavailable` with
    /// `Retry-After: 1` and closed at once (it does not wait for a slot).
    /// At least 1; see [`DEFAULT_MAX_CONNECTIONS`].
    /// Defaults to `64`.
    ///
    /// ```
    /// use std::io::Read;
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::Event;
    /// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new().max_connections(1))?
    ///     .spawn(|_: &Event<'_>| {})?;
    /// let _first = std::net::TcpStream::connect(rx.local_addr())?; // holds the only slot
    /// let mut second = std::net::TcpStream::connect(rx.local_addr())?;
    /// let mut response = String::new();
    /// second.read_to_string(&mut response)?;
    /// assert!(response.starts_with("HTTP/1.1 503"));
    /// assert!(response.contains("Retry-After: 1\r\n"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn max_connections(mut self, count: usize) -> Self {
        self.max_connections = count.max(1);
        self
    }

    /// Largest number of events in one batched request; a longer batch is
    /// answered `413` and none of its events is handed over.
    /// See [`DEFAULT_MAX_BATCH_EVENTS`].
    /// Defaults to `10_000`.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::Event;
    /// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new().max_batch_events(2))?
    ///     .spawn(|_: &Event<'_>| {})?;
    /// let ev = |id| format!(r#"{{"specversion":"1.0","id":"{id}","source":"/a","type":"dev.example.tick"}}"#);
    /// let batch = format!("[{},{},{}]", ev(1), ev(2), ev(3));
    /// let mut tcp = std::net::TcpStream::connect(rx.local_addr())?;
    /// write!(tcp, "POST /events HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\
    ///     Content-Type: application/cloudevents-batch+json\r\nContent-Length: {}\r\n\r\n{batch}", batch.len())?;
    /// let mut response = String::new();
    /// let _ = tcp.read_to_string(&mut response);
    /// assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    /// assert_eq!(rx.shutdown().events, 0); // none of the batch is handed over
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn max_batch_events(mut self, count: usize) -> Self {
        self.max_batch_events = count;
        self
    }

    /// The body limit set with [`max_body_bytes`](Self::max_body_bytes).
    ///
    /// ```
    /// use ossa_events::receiver::ReceiverConfig;
    /// let config = ReceiverConfig::new().max_body_bytes(64 * 1024);
    /// assert_eq!(config.get_max_body_bytes(), 64 * 1024);
    /// ```
    pub fn get_max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The connection cap set with [`max_connections`](Self::max_connections).
    ///
    /// ```
    /// use ossa_events::receiver::ReceiverConfig;
    /// assert_eq!(ReceiverConfig::new().max_connections(16).get_max_connections(), 16);
    /// assert_eq!(ReceiverConfig::new().max_connections(0).get_max_connections(), 1); // at least 1
    /// ```
    pub fn get_max_connections(&self) -> usize {
        self.max_connections
    }

    /// The read timeout set with [`read_timeout`](Self::read_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::receiver::ReceiverConfig;
    /// let config = ReceiverConfig::new().read_timeout(Duration::ZERO);
    /// assert_eq!(config.get_read_timeout(), Duration::from_millis(1)); // at least 1 ms
    /// ```
    pub fn get_read_timeout(&self) -> Duration {
        self.read_timeout
    }
}

/// A zero timeout means "block forever" to `set_read_timeout` (and is an
/// error there); the smallest we use is 1 ms.
fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// Receives the events of valid requests.
///
/// Closures `Fn(&Event<'_>) + Send + Sync + 'static` are used through
/// [`Receiver::serve`] and [`Receiver::spawn`]; implement this trait to also
/// learn where a request ends (e.g. to flush output before the client is
/// answered) and pass it to [`Receiver::serve_with`] / [`Receiver::spawn_with`].
/// Methods are called from connection threads, concurrently.
///
/// ```
/// use std::io::Write;
/// use std::sync::{Mutex, PoisonError};
/// use ossa_events::receiver::{Handler, Receiver, ReceiverConfig};
/// use ossa_events::sink::HttpSink;
/// use ossa_events::{format::json, Emitter, Event, EventBuilder};
///
/// /// Appends events as JSON Lines; flushes before the client is answered,
/// /// so an accepted request is on disk (here: in the buffer).
/// struct JsonLines(Mutex<std::io::BufWriter<Vec<u8>>>);
/// impl Handler for JsonLines {
///     fn on_event(&self, ev: &Event<'_>) {
///         let mut out = self.0.lock().unwrap_or_else(PoisonError::into_inner);
///         if let Ok(line) = json::to_vec(ev) {
///             let _ = out.write_all(&line).and_then(|()| out.write_all(b"\n"));
///         }
///     }
///     fn on_request_done(&self, _events: usize) {
///         let _ = self.0.lock().unwrap_or_else(PoisonError::into_inner).flush();
///     }
/// }
///
/// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?;
/// let url = format!("http://{}/events", rx.local_addr()?);
/// let handle = rx.spawn_with(JsonLines(Mutex::new(std::io::BufWriter::new(Vec::new()))))?;
/// let emitter = Emitter::builder("/agents/a").sink(HttpSink::builder(url).build()?).build()?;
/// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
/// assert_eq!(emitter.flush()?.delivered, 1);
/// assert_eq!(handle.shutdown().events, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Called once for each event of a request, in order, only after every
    /// event of the request was found valid.
    ///
    /// A request with one invalid event hands over none of its events:
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use ossa_events::receiver::Handler;
    /// use ossa_events::Event;
    /// struct Count(AtomicUsize);
    /// impl Handler for Count {
    ///     fn on_event(&self, ev: &Event<'_>) {
    ///         debug_assert!(ev.validate().is_ok()); // always valid here
    ///         self.0.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// }
    /// let count = Count(AtomicUsize::new(0));
    /// let ev = Event::builder().id("e-1").source("/a").ty("dev.example.tick").build()?;
    /// count.on_event(&ev);
    /// assert_eq!(count.0.load(Ordering::Relaxed), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn on_event(&self, event: &Event<'_>);

    /// Called after the last `on_event` of a request (also when it held no
    /// events, e.g. an empty batch), before the response is sent.
    ///
    /// `events` is how many `on_event` calls the request made. The default does
    /// nothing:
    ///
    /// ```
    /// use ossa_events::receiver::Handler;
    /// use ossa_events::Event;
    /// struct Print;
    /// impl Handler for Print {
    ///     fn on_event(&self, ev: &Event<'_>) {
    ///         println!("{}", ev.id());
    ///     }
    ///     fn on_request_done(&self, events: usize) {
    ///         println!("-- {events} events");
    ///     }
    /// }
    /// Print.on_request_done(0); // an empty batch
    /// ```
    fn on_request_done(&self, events: usize) {
        let _ = events;
    }
}

/// Adapts a closure to [`Handler`].
struct FnHandler<F>(F);

impl<F> Handler for FnHandler<F>
where
    F: Fn(&Event<'_>) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event<'_>) {
        (self.0)(event);
    }
}

/// What a receiver has done so far (a snapshot; see [`ReceiverHandle::stats`]).
///
/// ```
/// use ossa_events::receiver::{Receiver, ReceiverConfig};
/// use ossa_events::sink::HttpSink;
/// use ossa_events::{Emitter, Event, EventBuilder};
/// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?.spawn(|_: &Event<'_>| {})?;
/// let emitter = Emitter::builder("/agents/a")
///     .sink(HttpSink::builder(format!("http://{}/events", rx.local_addr())).build()?)
///     .build()?;
/// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
/// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
/// emitter.shutdown()?;
/// let stats = rx.shutdown();
/// assert_eq!((stats.requests, stats.accepted, stats.events), (2, 2, 1 + 1));
/// assert_eq!(stats.connections, 1); // the sink keeps its connection alive
/// assert_eq!(stats.rejected_4xx + stats.rejected_5xx, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiverStats {
    /// Connections accepted and served.
    pub connections: u64,
    /// Connections refused with `503` because the cap was reached.
    pub connections_refused: u64,
    /// Requests answered (any status, `100 Continue` not counted).
    pub requests: u64,
    /// Events handed to the handler.
    pub events: u64,
    /// Requests answered with a 2xx status.
    pub accepted: u64,
    /// Requests answered with a 4xx status (invalid, too large, timed out, …).
    pub rejected_4xx: u64,
    /// Requests answered with a 5xx status (not counting refused connections).
    pub rejected_5xx: u64,
    /// Connections closed because a request did not arrive in time (idle ones
    /// closed quietly and those answered `408`).
    pub timeouts: u64,
    /// Bytes read from clients.
    pub bytes_received: u64,
    /// Bytes written to clients.
    pub bytes_sent: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    connections_refused: AtomicU64,
    requests: AtomicU64,
    events: AtomicU64,
    accepted: AtomicU64,
    rejected_4xx: AtomicU64,
    rejected_5xx: AtomicU64,
    timeouts: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> ReceiverStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReceiverStats {
            connections: g(&self.connections),
            connections_refused: g(&self.connections_refused),
            requests: g(&self.requests),
            events: g(&self.events),
            accepted: g(&self.accepted),
            rejected_4xx: g(&self.rejected_4xx),
            rejected_5xx: g(&self.rejected_5xx),
            timeouts: g(&self.timeouts),
            bytes_received: g(&self.bytes_received),
            bytes_sent: g(&self.bytes_sent),
        }
    }
}

/// State shared by the accept thread and the connection threads.
struct Shared {
    config: ReceiverConfig,
    handler: Arc<dyn Handler>,
    counters: Arc<Counters>,
    active: AtomicUsize,
    stop: Arc<AtomicBool>,
    /// Clones of the open connections' streams, to wake them on shutdown.
    open: Mutex<HashMap<u64, TcpStream>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A bound CloudEvents HTTP receiver, not yet serving.
///
/// Bind first, then serve: the address (with port `0`, the port picked) is
/// known before any request can arrive.
///
/// ```
/// use ossa_events::receiver::{Receiver, ReceiverConfig};
/// use ossa_events::Event;
/// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?;
/// let addr = rx.local_addr()?;
/// assert_ne!(addr.port(), 0);
/// let handle = rx.spawn(|ev: &Event<'_>| println!("{} {}", ev.ty(), ev.id()))?;
/// assert_eq!(handle.local_addr(), addr);
/// handle.shutdown();
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Receiver {
    listener: TcpListener,
    config: ReceiverConfig,
    counters: Arc<Counters>,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Binds a TCP listener to `addr` (port `0` picks a free port; see
    /// [`local_addr`](Self::local_addr)).
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?;
    /// // A port that is taken is an error at bind, not later.
    /// let taken = rx.local_addr()?;
    /// assert!(Receiver::bind(taken, ReceiverConfig::new()).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A, config: ReceiverConfig) -> io::Result<Receiver> {
        let listener = TcpListener::bind(addr)?;
        Ok(Receiver {
            listener,
            config,
            counters: Arc::new(Counters::default()),
        })
    }

    /// The address the listener is bound to.
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?;
    /// let addr = rx.local_addr()?;
    /// assert!(addr.ip().is_loopback());
    /// assert_ne!(addr.port(), 0); // the port the system picked
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What this receiver has done so far (all zero before it serves).
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig, ReceiverStats};
    /// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?;
    /// assert_eq!(rx.stats(), ReceiverStats::default());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> ReceiverStats {
        self.counters.snapshot()
    }

    /// Serves connections on the calling thread, forever, calling `handler`
    /// for each event of each valid request.
    ///
    /// For a process that only receives (as `ossa-events listen` does); it never
    /// returns, so this example is not run:
    ///
    /// ```no_run
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::Event;
    /// let rx = Receiver::bind("0.0.0.0:8080", ReceiverConfig::new())?;
    /// eprintln!("listening on http://{}", rx.local_addr()?);
    /// rx.serve(|ev: &Event<'_>| println!("{} {}", ev.ty(), ev.id()));
    /// # #[allow(unreachable_code)]
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn serve<F>(self, handler: F) -> !
    where
        F: Fn(&Event<'_>) + Send + Sync + 'static,
    {
        self.serve_with(FnHandler(handler))
    }

    /// Like [`serve`](Self::serve), with a [`Handler`] that also learns where
    /// each request ends.
    ///
    /// Never returns, so this example is not run:
    ///
    /// ```no_run
    /// use std::io::Write;
    /// use ossa_events::receiver::{Handler, Receiver, ReceiverConfig};
    /// use ossa_events::{format::json, Event};
    ///
    /// /// JSON Lines on stdout, flushed before each client is answered.
    /// struct Stdout;
    /// impl Handler for Stdout {
    ///     fn on_event(&self, ev: &Event<'_>) {
    ///         if let Ok(line) = json::to_vec(ev) {
    ///             let _ = std::io::stdout().lock().write_all(&[&line[..], b"\n"].concat());
    ///         }
    ///     }
    ///     fn on_request_done(&self, _events: usize) {
    ///         let _ = std::io::stdout().flush();
    ///     }
    /// }
    /// Receiver::bind("0.0.0.0:8080", ReceiverConfig::new())?.serve_with(Stdout);
    /// # #[allow(unreachable_code)]
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn serve_with<H: Handler>(self, handler: H) -> ! {
        let shared = Arc::new(self.shared(Arc::new(handler), Arc::new(AtomicBool::new(false))));
        loop {
            accept_loop(&self.listener, &shared);
        }
    }

    /// Serves connections on a background thread; the returned handle reads
    /// the stats and shuts the receiver down.
    ///
    /// The handler is called from connection threads: share what it collects
    /// through an `Arc<Mutex<…>>` (or send it down a channel).
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::sink::HttpSink;
    /// use ossa_events::{Emitter, Event, EventBuilder};
    ///
    /// let (tx, events) = mpsc::channel();
    /// let tx = std::sync::Mutex::new(tx);
    /// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?.spawn(move |ev: &Event<'_>| {
    ///     let _ = tx.lock().map(|tx| tx.send(ev.ty().to_owned()));
    /// })?;
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(HttpSink::builder(format!("http://{}/events", rx.local_addr())).build()?)
    ///     .build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.flush()?;
    /// assert_eq!(events.try_recv()?, "dev.example.tick");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F>(self, handler: F) -> io::Result<ReceiverHandle>
    where
        F: Fn(&Event<'_>) + Send + Sync + 'static,
    {
        self.spawn_with(FnHandler(handler))
    }

    /// Like [`spawn`](Self::spawn), with a [`Handler`] that also learns where
    /// each request ends.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use ossa_events::receiver::{Handler, Receiver, ReceiverConfig};
    /// use ossa_events::sink::{HttpMode, HttpSink};
    /// use ossa_events::{Emitter, Event, EventBuilder};
    ///
    /// #[derive(Default)]
    /// struct Counts { requests: AtomicUsize, events: AtomicUsize }
    /// /// Counts requests and events where the caller can read them.
    /// struct Count(Arc<Counts>);
    /// impl Handler for Count {
    ///     fn on_event(&self, _: &Event<'_>) {
    ///         self.0.events.fetch_add(1, Ordering::Relaxed);
    ///     }
    ///     fn on_request_done(&self, _events: usize) {
    ///         self.0.requests.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// }
    ///
    /// let counts = Arc::new(Counts::default());
    /// let handle = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?
    ///     .spawn_with(Count(counts.clone()))?;
    /// let sink = HttpSink::builder(format!("http://{}/events", handle.local_addr()))
    ///     .mode(HttpMode::Batched)
    ///     .build()?;
    /// let emitter = Emitter::builder("/agents/a").sink(sink).build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.flush()?;
    /// assert_eq!(counts.requests.load(Ordering::Relaxed), 1); // one batch
    /// assert_eq!(counts.events.load(Ordering::Relaxed), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_with<H: Handler>(self, handler: H) -> io::Result<ReceiverHandle> {
        let addr = self.listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(self.shared(Arc::new(handler), stop.clone()));
        let counters = self.counters.clone();
        let listener = self.listener;
        let thread = std::thread::Builder::new()
            .name("ossa-receiver-accept".into())
            .spawn(move || accept_loop(&listener, &shared))?;
        Ok(ReceiverHandle {
            addr,
            stop,
            counters,
            thread: Some(thread),
        })
    }

    fn shared(&self, handler: Arc<dyn Handler>, stop: Arc<AtomicBool>) -> Shared {
        Shared {
            config: self.config.clone(),
            handler,
            counters: self.counters.clone(),
            active: AtomicUsize::new(0),
            stop,
            open: Mutex::new(HashMap::new()),
        }
    }
}

/// A receiver serving on a background thread (from [`Receiver::spawn`]).
///
/// Dropping the handle shuts the receiver down, like [`shutdown`](Self::shutdown).
///
/// ```
/// use ossa_events::receiver::{Receiver, ReceiverConfig};
/// use ossa_events::Event;
/// let handle = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?.spawn(|_: &Event<'_>| {})?;
/// let addr = handle.local_addr();
/// drop(handle); // shuts the receiver down
/// assert!(std::net::TcpStream::connect(addr).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ReceiverHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for ReceiverHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverHandle")
            .field("local_addr", &self.addr)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl ReceiverHandle {
    /// The address the receiver listens on.
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::sink::HttpSink;
    /// use ossa_events::Event;
    /// let handle = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?.spawn(|_: &Event<'_>| {})?;
    /// let sink = HttpSink::builder(format!("http://{}/events", handle.local_addr())).build()?;
    /// assert!(sink.url().starts_with("http://127.0.0.1:"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the receiver has done so far.
    ///
    /// A snapshot while it serves; requests still in progress are not in it yet.
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::sink::HttpSink;
    /// use ossa_events::{Emitter, Event, EventBuilder};
    /// let handle = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?.spawn(|_: &Event<'_>| {})?;
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(HttpSink::builder(format!("http://{}/events", handle.local_addr())).build()?)
    ///     .build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.flush()?;
    /// // Handed over before the response was sent, so counted by now.
    /// assert_eq!(handle.stats().events, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> ReceiverStats {
        self.counters.snapshot()
    }

    /// Stops accepting connections, ends the open ones (a request whose
    /// handler is running is still answered; one still being read is dropped)
    /// and waits for all receiver threads to finish. Returns the final stats.
    ///
    /// A request already handed to the handler is still answered, so a client
    /// never sees an accepted event it was told failed:
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::sink::HttpSink;
    /// use ossa_events::{Emitter, Event, EventBuilder};
    /// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?.spawn(|_: &Event<'_>| {})?;
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(HttpSink::builder(format!("http://{}/events", rx.local_addr())).build()?)
    ///     .build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.flush()?;
    /// // Returns the final counts once every receiver thread has ended,
    /// // the sink's kept-alive connection included.
    /// let stats = rx.shutdown();
    /// assert_eq!(stats.events, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(mut self) -> ReceiverStats {
        self.stop_and_join();
        self.stats()
    }

    fn stop_and_join(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread, blocked in `accept`, with a connection of our own.
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let woke = TcpStream::connect_timeout(
            &SocketAddr::new(ip, self.addr.port()),
            Duration::from_secs(2),
        )
        .is_ok();
        if woke || thread.is_finished() {
            // A panic in the accept thread has nothing to tell us any more.
            let _ = thread.join();
        }
        // If we could not reach our own listener the accept thread is left
        // detached: it stops at its next connection.
    }
}

impl Drop for ReceiverHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Accepts connections until `shared.stop` is set, then ends and joins the
/// connection threads.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id: u64 = 0;
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match accepted {
            Ok((s, _)) => {
                backoff = Duration::from_millis(5);
                s
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait and retry.
                tracing::warn!(error = %e, ?backoff, "accept failed; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        threads.retain(|t| !t.is_finished());
        if shared.active.load(Ordering::SeqCst) >= shared.config.max_connections {
            add(&shared.counters.connections_refused, 1);
            tracing::warn!(
                peer = ?stream.peer_addr().ok(),
                max = shared.config.max_connections,
                "connection cap reached: 503"
            );
            refuse(stream, &shared.counters);
            continue;
        }
        let id = next_id;
        next_id = next_id.wrapping_add(1);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.open).insert(id, clone);
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        add(&shared.counters.connections, 1);
        let guard = ConnGuard {
            shared: shared.clone(),
            id,
        };
        let spawned = std::thread::Builder::new()
            .name("ossa-receiver-conn".into())
            .spawn(move || {
                let guard = guard;
                serve_connection(stream, &guard.shared);
            });
        match spawned {
            Ok(t) => threads.push(t),
            // The closure (and with it the guard and the stream) was dropped:
            // the connection is closed and unregistered.
            Err(_) => std::thread::sleep(backoff),
        }
    }
    // Wake connections waiting for bytes: their reads return end of stream.
    for s in lock(&shared.open).values() {
        let _ = s.shutdown(Shutdown::Read);
    }
    for t in threads {
        let _ = t.join();
    }
}

/// Unregisters a connection and frees its slot when its thread ends (even by
/// a panic).
struct ConnGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        lock(&self.shared.open).remove(&self.id);
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers a connection over the cap with `503` without blocking the accept
/// thread, and closes it.
fn refuse(stream: TcpStream, counters: &Counters) {
    const BODY: &str = "too many connections, retry later\n";
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut s = &stream;
    if let Ok(n) = s.write(resp.as_bytes()) {
        add(&counters.bytes_sent, n as u64);
    }
    let _ = stream.shutdown(Shutdown::Write);
    // Read what already arrived so closing does not reset the connection
    // (which could destroy the 503 before the client reads it).
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match s.read(&mut sink) {
            Ok(n) if n > 0 => add(&counters.bytes_received, n as u64),
            _ => break,
        }
    }
}

/// Why reading from a connection stopped.
enum Stop {
    /// The client closed (or shutdown woke us).
    Closed,
    /// No bytes within the timeout or the request deadline.
    Timeout,
    /// Any other socket error.
    Io,
}

/// A connection: its stream and the bytes read but not yet consumed (a
/// pipelined next request is kept here).
struct Conn<'s> {
    stream: TcpStream,
    buf: Vec<u8>,
    shared: &'s Shared,
}

impl Conn<'_> {
    /// Reads once (appending to `buf`), waiting at most `per_read` and never
    /// past `deadline`.
    fn fill(&mut self, deadline: Instant, per_read: Duration) -> Result<(), Stop> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Stop::Timeout);
        }
        self.stream
            .set_read_timeout(Some(nonzero(left.min(per_read))))
            .map_err(|_| Stop::Io)?;
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let r = loop {
            match self.stream.read(&mut self.buf[old..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        match r {
            Ok(0) => {
                self.buf.truncate(old);
                Err(Stop::Closed)
            }
            Ok(n) => {
                self.buf.truncate(old + n);
                add(&self.shared.counters.bytes_received, n as u64);
                Ok(())
            }
            Err(e) => {
                self.buf.truncate(old);
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    Err(Stop::Timeout)
                } else {
                    Err(Stop::Io)
                }
            }
        }
    }

    /// Makes `buf` hold at least `n` bytes.
    fn fill_to(&mut self, n: usize, deadline: Instant) -> Result<(), Stop> {
        while self.buf.len() < n {
            self.fill(deadline, self.shared.config.read_timeout)?;
        }
        Ok(())
    }

    /// Drops the consumed bytes `..*pos` from `buf` (once, not per chunk), then
    /// reads once more.
    fn compact_fill(&mut self, pos: &mut usize, deadline: Instant) -> Result<(), Stop> {
        self.buf.drain(..*pos);
        *pos = 0;
        self.fill(deadline, self.shared.config.read_timeout)
    }

    /// Decodes a chunked body into `body`, consuming it (and its trailers)
    /// from `buf`.
    ///
    /// Reads through `buf` with a cursor and compacts it only before a read,
    /// so tiny chunks cost no buffer shifts each. Every chunk-size line is
    /// checked here before `httparse` sees it: `httparse` alone would take a
    /// line without digits as the last chunk and any byte (a bare LF too) in
    /// an extension, which lets a lenient front end and this receiver
    /// disagree on where the request ends.
    fn read_chunked(&mut self, body: &mut Vec<u8>, deadline: Instant) -> Result<(), BodyError> {
        let max = self.shared.config.max_body_bytes;
        let mut pos = 0usize;
        loop {
            let line_end = loop {
                if let Some(i) = self.buf[pos..].iter().position(|&b| b == b'\n') {
                    break pos + i;
                }
                if self.buf.len() - pos > MAX_CHUNK_LINE {
                    return Err(BodyError::Malformed("chunk size line too long"));
                }
                self.compact_fill(&mut pos, deadline)?;
            };
            if line_end == pos || self.buf[line_end - 1] != b'\r' {
                return Err(BodyError::Malformed("chunk size line not ended by CRLF"));
            }
            if !valid_chunk_line(&self.buf[pos..line_end - 1]) {
                return Err(BodyError::Malformed("invalid chunk size line"));
            }
            let size = match httparse::parse_chunk_size(&self.buf[pos..=line_end]) {
                Ok(httparse::Status::Complete((n, size))) if pos + n == line_end + 1 => size,
                _ => return Err(BodyError::Malformed("invalid chunk size")),
            };
            pos = line_end + 1;
            if size == 0 {
                return self.skip_trailers(pos, deadline);
            }
            let size = match usize::try_from(size) {
                Ok(s) if s <= max.saturating_sub(body.len()) => s,
                _ => return Err(BodyError::TooLarge),
            };
            let mut left = size;
            while left > 0 {
                if pos == self.buf.len() {
                    self.compact_fill(&mut pos, deadline)?;
                }
                let n = left.min(self.buf.len() - pos);
                body.extend_from_slice(&self.buf[pos..pos + n]);
                pos += n;
                left -= n;
            }
            while self.buf.len() - pos < 2 {
                self.compact_fill(&mut pos, deadline)?;
            }
            if &self.buf[pos..pos + 2] != b"\r\n" {
                return Err(BodyError::Malformed("chunk data not followed by CRLF"));
            }
            pos += 2;
        }
    }

    /// Consumes the trailer section after the last chunk (ignored), starting
    /// at `pos` in `buf`, and with it everything before.
    fn skip_trailers(&mut self, mut pos: usize, deadline: Instant) -> Result<(), BodyError> {
        let limit = self.shared.config.max_header_bytes;
        let mut total = 0usize;
        loop {
            let end = loop {
                if let Some(i) = self.buf[pos..].iter().position(|&b| b == b'\n') {
                    break pos + i;
                }
                if self.buf.len() - pos + total > limit {
                    return Err(BodyError::Malformed("trailer section too large"));
                }
                self.compact_fill(&mut pos, deadline)?;
            };
            // Lines end in CRLF, and a CR or LF never stands alone inside one.
            if end == pos || self.buf[end - 1] != b'\r' || self.buf[pos..end - 1].contains(&b'\r') {
                return Err(BodyError::Malformed("trailer line not ended by CRLF"));
            }
            let len = end + 1 - pos;
            pos = end + 1;
            if len == 2 {
                self.buf.drain(..pos);
                return Ok(());
            }
            total += len;
            if total > limit {
                return Err(BodyError::Malformed("trailer section too large"));
            }
        }
    }

    /// Writes `resp`; `false` if the connection is unusable afterwards.
    fn respond(&mut self, resp: &Response, head_only: bool) -> bool {
        let c = &self.shared.counters;
        add(&c.requests, 1);
        match resp.status {
            200..=299 => add(&c.accepted, 1),
            400..=499 => add(&c.rejected_4xx, 1),
            500..=599 => add(&c.rejected_5xx, 1),
            _ => {}
        }
        if resp.status >= 400 {
            tracing::debug!(
                status = resp.status,
                reason = resp.body.trim_end(),
                "request refused"
            );
        }
        let out = resp.to_bytes(head_only);
        match self.stream.write_all(&out) {
            Ok(()) => {
                add(&c.bytes_sent, out.len() as u64);
                true
            }
            Err(_) => false,
        }
    }

    /// Closes after an error response: stop sending, then read and drop what
    /// the client still sends for a short while, so that our response is not
    /// destroyed by a reset caused by unread data.
    fn linger_close(mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + LINGER_TIME;
        let mut drained = 0usize;
        self.buf.clear();
        while drained < LINGER_BYTES {
            match self.fill(deadline, LINGER_TIME) {
                Ok(()) => {
                    drained += self.buf.len();
                    self.buf.clear();
                }
                Err(_) => break,
            }
        }
    }
}

enum BodyError {
    Stop(Stop),
    TooLarge,
    Malformed(&'static str),
}

impl From<Stop> for BodyError {
    fn from(s: Stop) -> Self {
        BodyError::Stop(s)
    }
}

/// A response to send.
struct Response {
    status: u16,
    body: String,
    /// Extra header lines, each ending in CRLF.
    extra: &'static str,
    close: bool,
    /// HTTP/1.0 client that asked for keep-alive: say we keep it.
    keep_alive_10: bool,
}

impl Response {
    fn empty(status: u16) -> Response {
        Response {
            status,
            body: String::new(),
            extra: "",
            close: false,
            keep_alive_10: false,
        }
    }

    fn text(status: u16, body: impl Into<String>) -> Response {
        let mut body = body.into();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Response {
            body,
            ..Response::empty(status)
        }
    }

    fn closing(mut self) -> Response {
        self.close = true;
        self
    }

    fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(160 + self.body.len());
        let _ = write!(
            s,
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.body.len()
        );
        if !self.body.is_empty() {
            s.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        }
        s.push_str(self.extra);
        if self.close {
            s.push_str("Connection: close\r\n");
        } else if self.keep_alive_10 {
            s.push_str("Connection: keep-alive\r\n");
        }
        s.push_str("\r\n");
        if !head_only {
            s.push_str(&self.body);
        }
        s.into_bytes()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// How the body of a request is delimited.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
}

/// What the connection loop needs from a request head.
struct Head {
    is_event_method: bool,
    is_head_method: bool,
    http10: bool,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
    mode: Result<ContentMode, ParseError>,
    encoding: Encoding,
}

/// The `Content-Encoding` of a request body.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Unsupported,
}

impl Head {
    fn has_body(&self) -> bool {
        self.framing != Framing::Length(0)
    }
}

/// Whether a chunk-size line (without its CRLF) is at least one hex digit,
/// then optional whitespace and a `;` extension of visible ASCII, SP and HTAB
/// (no other control bytes, so no bare CR or LF).
fn valid_chunk_line(line: &[u8]) -> bool {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    let visible = |b: &u8| *b == b'\t' || (b' '..=b'~').contains(b);
    let ext = rest.trim_ascii_start();
    digits > 0 && rest.iter().all(visible) && (ext.is_empty() || ext[0] == b';')
}

/// Whether `head` has an LF not preceded by CR (`httparse` accepts bare-LF
/// line endings; a front end that does not would frame the request
/// differently).
fn has_bare_lf(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Reads the parts of a parsed head that decide how the request is handled;
/// an error is the response to send (then close).
fn inspect(req: &httparse::Request<'_, '_>) -> Result<Head, Response> {
    let method = req.method.unwrap_or("");
    let http10 = req.version == Some(0);
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut te_seen = false;
    let mut close = false;
    let mut keep = false;
    let mut expect_continue = false;
    let mut content_type: Option<&[u8]> = None;
    let mut encoding = Encoding::Identity;
    for h in req.headers.iter() {
        let name = h.name;
        let v = h.value;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(v.trim_ascii())
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<usize>().ok());
            let Some(n) = n else {
                return Err(Response::text(400, "invalid Content-Length").closing());
            };
            if length.is_some_and(|l| l != n) {
                return Err(Response::text(400, "conflicting Content-Length headers").closing());
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if te_seen || !v.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(
                    Response::text(501, "only Transfer-Encoding: chunked is supported").closing(),
                );
            }
            te_seen = true;
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            close |= has_token(v, "close");
            keep |= has_token(v, "keep-alive");
        } else if name.eq_ignore_ascii_case("expect") {
            if v.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                expect_continue = !http10;
            } else {
                return Err(
                    Response::text(417, "only Expect: 100-continue is supported").closing(),
                );
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            if content_type.is_some() {
                return Err(Response::text(400, "more than one Content-Type header").closing());
            }
            content_type = Some(v);
        } else if name.eq_ignore_ascii_case("content-encoding") {
            let v = v.trim_ascii();
            encoding = if encoding != Encoding::Identity {
                // More than one encoding header: not worth supporting.
                Encoding::Unsupported
            } else if v.eq_ignore_ascii_case(b"identity") {
                Encoding::Identity
            } else if GZIP_SUPPORTED
                && (v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip"))
            {
                Encoding::Gzip
            } else {
                Encoding::Unsupported
            };
        }
    }
    let framing = match (chunked, length) {
        (true, Some(_)) => {
            // Both framings at once is the classic request-smuggling shape.
            return Err(Response::text(
                400,
                "both Transfer-Encoding and Content-Length are present",
            )
            .closing());
        }
        (true, None) if http10 => {
            return Err(Response::text(400, "chunked encoding in an HTTP/1.0 request").closing());
        }
        (true, None) => Framing::Chunked,
        (false, n) => Framing::Length(n.unwrap_or(0)),
    };
    let mode = match content_type {
        None => content_mode(None),
        Some(v) => match std::str::from_utf8(v) {
            Ok(s) => content_mode(Some(s)),
            Err(_) => Err(ParseError::InvalidHeader),
        },
    };
    Ok(Head {
        is_event_method: method == "POST" || method == "PUT",
        is_head_method: method == "HEAD",
        http10,
        framing,
        keep_alive: if http10 { keep && !close } else { !close },
        expect_continue,
        mode,
        encoding,
    })
}

/// What reading the next request head gave.
enum HeadRead {
    /// The head is complete: it is `n` bytes long.
    Complete(usize),
    /// Respond with this, then close.
    Reject(Response),
    /// Close without a response (client gone, truncated, I/O error).
    Close,
}

/// Serves one connection until the client closes, asks to close, times out or
/// errs.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    let cfg = &shared.config;
    let _ = stream.set_nodelay(true);
    if stream.set_write_timeout(Some(cfg.write_timeout)).is_err() {
        return;
    }
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        shared,
    };
    let mut head_buf: Vec<u8> = Vec::new();
    let mut chunked_body: Vec<u8> = Vec::new();
    let mut decoded: Vec<u8> = Vec::new();
    let mut scratch: Vec<u8> = Vec::new();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        // Wait for the first byte of the next request (unless pipelined).
        if conn.buf.is_empty() {
            if conn.buf.capacity() > KEEP_CAPACITY {
                conn.buf.shrink_to(KEEP_CAPACITY);
            }
            if chunked_body.capacity() > KEEP_CAPACITY {
                chunked_body = Vec::new();
            }
            if decoded.capacity() > KEEP_CAPACITY {
                decoded = Vec::new();
            }
            if scratch.capacity() > KEEP_CAPACITY {
                scratch = Vec::new();
            }
            match conn.fill(Instant::now() + cfg.idle_timeout, cfg.idle_timeout) {
                Ok(()) => {}
                Err(Stop::Timeout) => {
                    add(&shared.counters.timeouts, 1);
                    return;
                }
                Err(_) => return,
            }
        }
        let deadline = Instant::now() + cfg.request_timeout;

        let head_len = match read_head(&mut conn, deadline) {
            HeadRead::Complete(n) => n,
            HeadRead::Reject(resp) => {
                if resp.status == 408 {
                    add(&shared.counters.timeouts, 1);
                }
                conn.respond(&resp, false);
                conn.linger_close();
                return;
            }
            HeadRead::Close => return,
        };
        head_buf.clear();
        head_buf.extend_from_slice(&conn.buf[..head_len]);
        conn.buf.drain(..head_len);

        let mut headers = vec![httparse::EMPTY_HEADER; cfg.max_headers];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(&head_buf), Ok(httparse::Status::Complete(_))) {
            // Cannot happen: the same bytes parsed complete a moment ago.
            conn.respond(
                &Response::text(400, "malformed request head").closing(),
                false,
            );
            conn.linger_close();
            return;
        }
        let head = match inspect(&req) {
            Ok(h) => h,
            Err(resp) => {
                conn.respond(&resp, false);
                conn.linger_close();
                return;
            }
        };
        let head_only = head.is_head_method;
        let keep_alive_10 = head.http10 && head.keep_alive;

        // Refusals decided from the head alone, before any body is read.
        let early = if !head.is_event_method {
            let mut r = Response::text(405, "only POST and PUT carry events");
            r.extra = "Allow: POST, PUT\r\n";
            Some(r)
        } else if matches!(head.framing, Framing::Length(n) if n > cfg.max_body_bytes) {
            Some(
                Response::text(
                    413,
                    format!("request body larger than {} bytes", cfg.max_body_bytes),
                )
                .closing(),
            )
        } else if head.encoding == Encoding::Unsupported {
            Some(Response::text(
                415,
                if GZIP_SUPPORTED {
                    "only Content-Encoding: gzip or identity is supported"
                } else {
                    "Content-Encoding is not supported"
                },
            ))
        } else {
            match &head.mode {
                Err(e) => Some(response_for(e)),
                Ok(_) => None,
            }
        };
        if let Some(mut resp) = early {
            // The body was not read: the connection cannot carry another request.
            resp.close |= head.has_body() || !head.keep_alive || head_only;
            resp.keep_alive_10 = keep_alive_10;
            let ok = conn.respond(&resp, head_only);
            if resp.close || !ok {
                conn.linger_close();
                return;
            }
            continue;
        }

        if head.expect_continue && conn.buf.is_empty() && head.has_body() {
            let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
            if conn.stream.write_all(cont).is_err() {
                return;
            }
            add(&shared.counters.bytes_sent, cont.len() as u64);
        }

        // Read the body.
        match head.framing {
            Framing::Length(n) => {
                // Room for the whole body plus one read's worth, so that the last
                // read (which asks for `READ_CHUNK` bytes) does not regrow it.
                conn.buf
                    .reserve(n.saturating_sub(conn.buf.len()).saturating_add(READ_CHUNK));
                if let Err(stop) = conn.fill_to(n, deadline) {
                    body_failed(conn, BodyError::Stop(stop));
                    return;
                }
            }
            Framing::Chunked => {
                chunked_body.clear();
                if let Err(e) = conn.read_chunked(&mut chunked_body, deadline) {
                    body_failed(conn, e);
                    return;
                }
            }
        }
        let mut body: &[u8] = match head.framing {
            Framing::Length(n) => &conn.buf[..n],
            Framing::Chunked => &chunked_body,
        };
        let mut decode_error = None;
        if head.encoding == Encoding::Gzip {
            match gunzip(body, cfg.max_body_bytes, &mut decoded) {
                Ok(()) => body = &decoded,
                Err(resp) => decode_error = Some(resp),
            }
        }
        let mode = match head.mode {
            Ok(m) => m,
            Err(_) => ContentMode::Binary, // handled above
        };
        let mut resp = match decode_error {
            Some(resp) => resp,
            None => {
                let pairs = req.headers.iter().map(|h| (h.name, h.value));
                // Decoded strings never outgrow their source (body or head).
                scratch.clear();
                scratch.resize(body.len() + head_len + 64, 0);
                handle_request(mode, pairs, body, &mut scratch, shared)
            }
        };
        if let Framing::Length(n) = head.framing {
            conn.buf.drain(..n);
        }
        resp.close |= !head.keep_alive;
        resp.keep_alive_10 = keep_alive_10;
        let ok = conn.respond(&resp, false);
        if !ok {
            return;
        }
        if resp.close {
            conn.linger_close();
            return;
        }
    }
}

/// Whether `Content-Encoding: gzip` bodies are decompressed.
const GZIP_SUPPORTED: bool = cfg!(feature = "http");

/// Decompresses a gzip body into `out`, refusing (413) one that decompresses
/// to more than `max` bytes without producing more than `max + 1`.
#[cfg(feature = "http")]
fn gunzip(body: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), Response> {
    out.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(limit);
    if let Err(e) = dec.read_to_end(out) {
        return Err(Response::text(400, format!("invalid gzip body: {e}")));
    }
    if out.len() > max {
        return Err(Response::text(
            413,
            format!("decompressed request body larger than {max} bytes"),
        ));
    }
    Ok(())
}

#[cfg(not(feature = "http"))]
fn gunzip(_body: &[u8], _max: usize, _out: &mut Vec<u8>) -> Result<(), Response> {
    // Not reached: without the feature gzip bodies are refused from the head.
    Err(Response::text(415, "Content-Encoding is not supported"))
}

/// Answers a request whose body could not be read, and closes.
fn body_failed(mut conn: Conn<'_>, e: BodyError) {
    let max = conn.shared.config.max_body_bytes;
    let resp = match e {
        BodyError::TooLarge => Response::text(413, format!("request body larger than {max} bytes")),
        BodyError::Malformed(why) => Response::text(400, why),
        BodyError::Stop(Stop::Timeout) => {
            add(&conn.shared.counters.timeouts, 1);
            Response::text(408, "request not received in time")
        }
        BodyError::Stop(Stop::Closed | Stop::Io) => return,
    };
    conn.respond(&resp.closing(), false);
    conn.linger_close();
}

/// Reads until `conn.buf` starts with a complete request head.
fn read_head(conn: &mut Conn<'_>, deadline: Instant) -> HeadRead {
    let cfg = &conn.shared.config;
    let too_large = || {
        HeadRead::Reject(
            Response::text(
                431,
                format!(
                    "request head larger than {} bytes or more than {} headers",
                    cfg.max_header_bytes, cfg.max_headers
                ),
            )
            .closing(),
        )
    };
    loop {
        // Fresh slots each time: they borrow the buffer that reads then grow.
        let mut headers = vec![httparse::EMPTY_HEADER; cfg.max_headers];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&conn.buf) {
            Ok(httparse::Status::Complete(n)) => {
                return if n > cfg.max_header_bytes {
                    too_large()
                } else if has_bare_lf(&conn.buf[..n]) {
                    HeadRead::Reject(
                        Response::text(400, "request head lines must end in CRLF").closing(),
                    )
                } else {
                    HeadRead::Complete(n)
                };
            }
            Ok(httparse::Status::Partial) => {
                if conn.buf.len() > cfg.max_header_bytes {
                    return too_large();
                }
            }
            Err(httparse::Error::TooManyHeaders) => return too_large(),
            Err(httparse::Error::Version) => {
                return HeadRead::Reject(
                    Response::text(505, "only HTTP/1.0 and HTTP/1.1").closing(),
                );
            }
            Err(e) => {
                return HeadRead::Reject(
                    Response::text(400, format!("malformed request: {e}")).closing(),
                );
            }
        }
        match conn.fill(deadline, cfg.read_timeout) {
            Ok(()) => {}
            Err(Stop::Timeout) => {
                return HeadRead::Reject(
                    Response::text(408, "request head not received in time").closing(),
                );
            }
            Err(_) => return HeadRead::Close,
        }
    }
}

/// The response for a request that the core parser refused.
fn response_for(e: &ParseError) -> Response {
    match e {
        ParseError::UnsupportedFormat => Response::text(415, e.to_string()),
        ParseError::TooLarge { .. } => Response::text(413, e.to_string()),
        // The scratch is sized so this cannot happen.
        ParseError::ScratchFull => Response::text(500, e.to_string()),
        _ => Response::text(400, e.to_string()),
    }
}

/// Parses and validates the whole request, then hands its events over.
fn handle_request<'a, I>(
    mode: ContentMode,
    headers: I,
    body: &'a [u8],
    scratch: &'a mut [u8],
    shared: &Shared,
) -> Response
where
    I: Iterator<Item = (&'a str, &'a [u8])> + Clone,
{
    let handler = &*shared.handler;
    let counters = &shared.counters;
    let run = |f: &mut dyn FnMut() -> usize| -> Response {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(n) => {
                add(&counters.events, n as u64);
                Response::empty(202)
            }
            Err(_) => {
                tracing::error!("event handler panicked: 500");
                Response::text(500, "event handler failed").closing()
            }
        }
    };
    match mode {
        ContentMode::Batched => {
            // First pass: validate every element, so that a bad one anywhere
            // rejects the whole batch before anything is handed over.
            let mut batch = match BatchParser::new(body) {
                Ok(b) => b,
                Err(e) => return response_for(&e),
            };
            let mut count = 0usize;
            while let Some(r) = batch.next_event(scratch) {
                if let Err(e) = r {
                    return response_for(&e);
                }
                count += 1;
                if count > shared.config.max_batch_events {
                    return Response::text(
                        413,
                        format!(
                            "batch has more than {} events",
                            shared.config.max_batch_events
                        ),
                    );
                }
            }
            // Second pass: hand the (now known valid) events over.
            run(&mut || {
                let mut n = 0;
                if let Ok(mut batch) = BatchParser::new(body) {
                    while let Some(Ok(ev)) = batch.next_event(scratch) {
                        handler.on_event(&ev);
                        n += 1;
                    }
                }
                handler.on_request_done(n);
                n
            })
        }
        _ => match http::parse(headers, body, &mut Scratch::new(scratch)) {
            Ok(Message::Event(ev)) => run(&mut || {
                handler.on_event(&ev);
                handler.on_request_done(1);
                1
            }),
            Ok(_) => Response::text(500, "unexpected message kind"),
            Err(e) => response_for(&e),
        },
    }
}
