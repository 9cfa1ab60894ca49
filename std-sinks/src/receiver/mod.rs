//! A CloudEvents HTTP receiver on hyper: a blocking API (no async runtime
//! needed by the caller) over a tokio runtime the receiver owns.
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
//! | an event refused by [`Handler::check`] (e.g. a payload that breaks its schema) | its [`Refusal`]'s status (`400`, or `503` with `Retry-After: 1`) and reason |
//! | a malformed request: bytes that cannot begin a request line (a TLS handshake on the plain port; refused as they arrive, not at the deadline), bare-LF line ends, both `Content-Length` and `Transfer-Encoding`, conflicting lengths, a `Transfer-Encoding` not ending in `chunked` (or in an HTTP/1.0 request), a bad chunk-size line, a request target that is no URI, the asterisk form `*` with a method other than `OPTIONS` (RFC 9112, section 3.2.4), a version that is not `HTTP/` digit `.` digit | `400`, then close |
//! | a transfer coding before `chunked` (`Transfer-Encoding: gzip, chunked`) | `501 Not Implemented`, then close |
//! | an HTTP/1.1 request without `Host`, or any request with more than one `Host` or one that is not a host and port (RFC 9112, section 3.2) | `400` (then close, if a body was sent) |
//! | an `Expect` other than `100-continue` (on any of its lines) | `417 Expectation Failed` |
//! | unsupported event format (`application/cloudevents+avro`), or a `Content-Encoding` other than `identity` and `gzip` | `415 Unsupported Media Type` |
//! | the CloudEvents webhook validation handshake: `OPTIONS` with `WebHook-Request-Origin` ("HTTP 1.1 Web Hooks for Event Delivery", section 4) | `200 OK` with `WebHook-Allowed-Origin` (the origin asked for: every origin is granted), `WebHook-Allowed-Rate: *` and `Allow: OPTIONS, POST, PUT`; a `WebHook-Request-Callback` is not called; two `WebHook-Request-Origin` lines get `400`, an `Expect` other than `100-continue` `417` |
//! | `OPTIONS` without `WebHook-Request-Origin` (RFC 9110, section 9.3.7) | `200 OK` with `Allow: OPTIONS, POST, PUT`, no body (no CORS headers: a browser's preflight is not granted) |
//! | method other than `POST`, `PUT` or `OPTIONS` | `405 Method Not Allowed` (`Allow: OPTIONS, POST, PUT`) |
//! | `Content-Length` over the body limit (checked before the body is read), chunked body growing over it, batch with too many events | `413 Content Too Large`, then close |
//! | request head over the header byte limit or header count | `431 Request Header Fields Too Large`, then close |
//! | request line over the header byte limit (its target too long) | `414 URI Too Long`, then close |
//! | request head or body not complete within the deadline | `408 Request Timeout`, then close |
//! | HTTP version other than 1.0 and 1.1 | `505 HTTP Version Not Supported`, then close |
//! | over the connection cap with no idle connection to close, or over the per-address cap | `503 Service Unavailable` with `Retry-After: 1`, then close |
//!
//! It is meant to be exposed to clients it does not trust:
//!
//! - A connection is a task, not a thread: until its first byte it costs its
//!   socket and a task (well under a KiB); then hyper's buffers (8 KiB to
//!   start). Ten thousand idle connections fit in tens of MiB.
//! - A request head must keep arriving (`read_timeout` between reads) and be
//!   complete within `request_timeout`, or it is answered `408`; the same
//!   holds for its body. A connection with no request in progress is closed
//!   after `idle_timeout`.
//! - At most `max_connections` are open, at most `max_connections_per_peer`
//!   from one IP address. At the cap, the connection idle the longest is
//!   closed to make room for the new one; only when none is idle is the new
//!   one answered `503`.
//! - Memory per request is bounded by about `3 × max_body_bytes` (the body,
//!   its gzip-decoded form, the parser's scratch space).
//!
//! With the `receiver-tls` feature, [`Receiver::tls`] serves HTTPS (rustls).
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

mod guard;
mod server;
mod service;
#[cfg(feature = "receiver-tls")]
mod tls;

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ossa_events_core::Event;

#[cfg(feature = "receiver-tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "receiver-tls")))]
pub use tls::{rustls, tls_config_from_pem};

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
/// Default largest number of connections open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default largest number of connections open at once from one IP address.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 1_000;
/// Default largest number of events in one batched request.
pub const DEFAULT_MAX_BATCH_EVENTS: usize = 10_000;
/// Default longest [`ReceiverHandle::shutdown`] waits for requests in progress.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

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
    max_connections_per_peer: usize,
    max_batch_events: usize,
    shutdown_timeout: Duration,
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
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
            max_batch_events: DEFAULT_MAX_BATCH_EVENTS,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
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

    /// Largest number of connections open at once. When a connection
    /// arrives with this many open, the one idle the longest (no request in
    /// progress) is closed to make room; a connection in the middle of a
    /// request is never closed for it. Only when none is idle is the new one
    /// answered `503 Service Unavailable` with `Retry-After: 1` and closed.
    /// At least 1; see [`DEFAULT_MAX_CONNECTIONS`]. Defaults to `10_000`.
    ///
    /// Each connection is a file descriptor: keep the cap below the process's
    /// open-files limit (`ulimit -n`; `ossa-events listen` raises its own to
    /// the hard limit). When accepting fails for lack of descriptors, the
    /// oldest idle connection is closed too.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::Event;
    /// let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new().max_connections(1))?
    ///     .spawn(|_: &Event<'_>| {})?;
    /// // The only slot, in the middle of a request: not idle, so kept.
    /// let mut busy = std::net::TcpStream::connect(rx.local_addr())?;
    /// busy.write_all(b"POST / HTTP/1.1\r\n")?;
    /// std::thread::sleep(std::time::Duration::from_millis(100));
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

    /// Largest number of connections open at once from one IP address; more
    /// are answered `503` with `Retry-After: 1` and closed, whatever the
    /// global cap. At least 1; see [`DEFAULT_MAX_CONNECTIONS_PER_PEER`].
    /// Defaults to `1_000`. Behind a proxy or load balancer every client has
    /// the proxy's address: raise it to the global cap there.
    ///
    /// ```
    /// use ossa_events::receiver::ReceiverConfig;
    /// let cfg = ReceiverConfig::new().max_connections_per_peer(0);
    /// assert_eq!(cfg.get_max_connections_per_peer(), 1); // at least 1
    /// ```
    #[must_use]
    pub fn max_connections_per_peer(mut self, count: usize) -> Self {
        self.max_connections_per_peer = count.max(1);
        self
    }

    /// Longest [`ReceiverHandle::shutdown`] (and the handle's drop) waits for
    /// requests in progress to be answered before closing what is left. See
    /// [`DEFAULT_SHUTDOWN_TIMEOUT`]. Defaults to 10 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::receiver::ReceiverConfig;
    /// let cfg = ReceiverConfig::new().shutdown_timeout(Duration::from_secs(2));
    /// assert_eq!(cfg.get_shutdown_timeout(), Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
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

    /// The per-address cap set with
    /// [`max_connections_per_peer`](Self::max_connections_per_peer).
    ///
    /// ```
    /// use ossa_events::receiver::{self, ReceiverConfig};
    /// assert_eq!(
    ///     ReceiverConfig::new().get_max_connections_per_peer(),
    ///     receiver::DEFAULT_MAX_CONNECTIONS_PER_PEER
    /// );
    /// ```
    pub fn get_max_connections_per_peer(&self) -> usize {
        self.max_connections_per_peer
    }

    /// The bound set with [`shutdown_timeout`](Self::shutdown_timeout).
    ///
    /// ```
    /// use ossa_events::receiver::{self, ReceiverConfig};
    /// assert_eq!(ReceiverConfig::new().get_shutdown_timeout(), receiver::DEFAULT_SHUTDOWN_TIMEOUT);
    /// ```
    pub fn get_shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
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

/// A zero timeout would expire before any byte could arrive; the smallest we
/// use is 1 ms.
/// A receiver timeout: at least 1 ms, and at most a century (a
/// `Duration::MAX` given for "no limit" is added to the clock per request,
/// which overflows an `Instant` and panicked the request's task).
fn nonzero(d: Duration) -> Duration {
    d.clamp(
        Duration::from_millis(1),
        Duration::from_secs(100 * 365 * 86_400),
    )
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

    /// Called for each event of a request, after it passed every
    /// CloudEvents rule and before any `on_event` of the request: a
    /// [`Refusal`] refuses the whole request with its status and reason, and
    /// none of its events is handed over. The place for checks of your own,
    /// such as a payload's JSON Schema (what `ossa-events listen --schemas`
    /// does). The default accepts every event.
    ///
    /// ```
    /// use ossa_events::receiver::{Handler, Refusal};
    /// use ossa_events::Event;
    /// struct OnlyOssa;
    /// impl Handler for OnlyOssa {
    ///     fn on_event(&self, _: &Event<'_>) {}
    ///     fn check(&self, ev: &Event<'_>) -> Result<(), Refusal> {
    ///         if ev.ty().starts_with("dev.ossa.") {
    ///             Ok(())
    ///         } else {
    ///             Err(Refusal::bad_request(format!("type {} is not an OSSA type", ev.ty())))
    ///         }
    ///     }
    /// }
    /// let ev = Event::builder().id("1").source("/a").ty("com.example.tick").build()?;
    /// assert_eq!(OnlyOssa.check(&ev).unwrap_err().status(), 400);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn check(&self, event: &Event<'_>) -> Result<(), Refusal> {
        let _ = event;
        Ok(())
    }
}

/// Why a [`Handler::check`] refused an event: the status the request is
/// answered with (`400` or `503`) and the reason sent in its body.
///
/// ```
/// use ossa_events::receiver::Refusal;
/// let r = Refusal::unavailable("schema registry unreachable");
/// assert_eq!((r.status(), r.reason()), (503, "schema registry unreachable"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    status: u16,
    reason: String,
}

impl Refusal {
    /// The event is wrong: `400 Bad Request` (the client should not retry it).
    ///
    /// ```
    /// use ossa_events::receiver::Refusal;
    /// assert_eq!(Refusal::bad_request("no").status(), 400);
    /// ```
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Refusal {
            status: 400,
            reason: reason.into(),
        }
    }
    /// The event cannot be judged now (e.g. its schema cannot be fetched):
    /// `503 Service Unavailable` with `Retry-After: 1`, so the sender retries.
    ///
    /// ```
    /// use ossa_events::receiver::Refusal;
    /// assert_eq!(Refusal::unavailable("later").status(), 503);
    /// ```
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Refusal {
            status: 503,
            reason: reason.into(),
        }
    }
    /// The status the request is answered with.
    ///
    /// ```
    /// use ossa_events::receiver::Refusal;
    /// assert_eq!(Refusal::bad_request("x").status(), 400);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }
    /// The reason, sent as the response body.
    ///
    /// ```
    /// use ossa_events::receiver::Refusal;
    /// assert_eq!(Refusal::bad_request("bad tool").reason(), "bad tool");
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
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
    /// Connections refused with `503`: the cap was reached with none idle, or
    /// their address's cap was.
    pub connections_refused: u64,
    /// Idle connections closed to make room for new ones at the cap.
    pub connections_evicted: u64,
    /// TLS handshakes that failed or did not finish (in time, or before the
    /// connection was closed at the cap or at shutdown).
    pub tls_failures: u64,
    /// Requests answered (any status, `100 Continue` not counted).
    pub requests: u64,
    /// Events handed to the handler, in requests it finished (those of a
    /// request whose handler panicked are in `events_failed` instead).
    pub events: u64,
    /// Events of requests answered `500` because the handler panicked while
    /// they were handed over: all of the request's events, those it got
    /// before the panic too (the client was told none was taken).
    pub events_failed: u64,
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
    connections_evicted: AtomicU64,
    tls_failures: AtomicU64,
    requests: AtomicU64,
    events: AtomicU64,
    events_failed: AtomicU64,
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
            connections_evicted: g(&self.connections_evicted),
            tls_failures: g(&self.tls_failures),
            requests: g(&self.requests),
            events: g(&self.events),
            events_failed: g(&self.events_failed),
            accepted: g(&self.accepted),
            rejected_4xx: g(&self.rejected_4xx),
            rejected_5xx: g(&self.rejected_5xx),
            timeouts: g(&self.timeouts),
            // `Acquire`: pairs with the guard's count of bytes read (see
            // `guard::read_some`), so a connection whose bytes show is busy.
            bytes_received: self.bytes_received.load(Ordering::Acquire),
            bytes_sent: g(&self.bytes_sent),
        }
    }
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
    runtime: OwnedRuntime,
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    config: ReceiverConfig,
    counters: Arc<Counters>,
    #[cfg(feature = "receiver-tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("local_addr", &self.local_addr)
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
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("ossa-receiver")
            .enable_io()
            .enable_time()
            .build()?;
        let listener = {
            let _in_runtime = runtime.enter();
            server::listen(&addrs)?
        };
        let local_addr = listener.local_addr()?;
        Ok(Receiver {
            runtime: OwnedRuntime(Some(runtime)),
            listener,
            local_addr,
            config,
            counters: Arc::new(Counters::default()),
            #[cfg(feature = "receiver-tls")]
            tls: None,
        })
    }

    /// Serves HTTPS instead of HTTP, with this rustls configuration (see
    /// [`tls_config_from_pem`] to make one from PEM files). The handshake
    /// must finish within the request timeout. The receiver speaks HTTP/1.x
    /// only: protocols other than `http/1.1` and `http/1.0` are taken out of
    /// the configuration's ALPN list, so no client agrees on `h2` with it.
    ///
    /// ```no_run
    /// use ossa_events::receiver::{self, Receiver, ReceiverConfig};
    /// let tls = receiver::tls_config_from_pem("cert.pem".as_ref(), "key.pem".as_ref())?;
    /// let rx = Receiver::bind("0.0.0.0:8443", ReceiverConfig::new())?.tls(tls);
    /// let handle = rx.spawn(|ev: &ossa_events::Event<'_>| println!("{}", ev.id()))?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "receiver-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "receiver-tls")))]
    #[must_use]
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Receiver {
        // A protocol selected by ALPN is the one the server then speaks (RFC
        // 7301, section 3.2): HTTP/2 clients would get HTTP/1.1 answers.
        let serves = |p: &Vec<u8>| p == b"http/1.1" || p == b"http/1.0";
        let config = if config.alpn_protocols.iter().all(serves) {
            config
        } else {
            let mut own = Arc::unwrap_or_clone(config);
            own.alpn_protocols.retain(serves);
            Arc::new(own)
        };
        self.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        self
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
        Ok(self.local_addr)
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
        let shared = self.shared(Arc::new(handler));
        let Receiver {
            runtime, listener, ..
        } = self;
        // Nothing stops this receiver: the accept loop never returns.
        if let Some(rt) = runtime.take() {
            rt.block_on(server::accept_loop(shared, listener));
        }
        loop {
            std::thread::park();
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
        let shared = self.shared(Arc::new(handler));
        let Receiver {
            runtime,
            listener,
            local_addr,
            counters,
            ..
        } = self;
        let runtime = runtime
            .take()
            .ok_or_else(|| io::Error::other("receiver runtime already taken"))?;
        runtime.spawn(server::accept_loop(shared.clone(), listener));
        Ok(ReceiverHandle {
            addr: local_addr,
            shared,
            counters,
            runtime: Some(runtime),
        })
    }

    fn shared(&self, handler: Arc<dyn Handler>) -> Arc<server::Shared> {
        Arc::new(server::Shared::new(
            self.config.clone(),
            handler,
            self.counters.clone(),
            #[cfg(feature = "receiver-tls")]
            self.tls.clone(),
        ))
    }
}

/// A receiver serving in the background (from [`Receiver::spawn`]), on the
/// runtime it owns.
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
    shared: Arc<server::Shared>,
    counters: Arc<Counters>,
    runtime: Option<tokio::runtime::Runtime>,
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

    /// Stops accepting connections, ends the open ones and waits for all
    /// receiver threads to finish; returns the final stats. A request whose
    /// head has arrived is still read to its end and answered, for up to
    /// [`ReceiverConfig::shutdown_timeout`] (a client still sending its body
    /// is not cut off mid-event); one whose head is still arriving is
    /// dropped; what is left at the timeout is closed.
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
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        self.shared.stop();
        let shared = self.shared.clone();
        let grace = shared.config.shutdown_timeout;
        let wait = move || {
            runtime.block_on(async {
                let _ = tokio::time::timeout(grace, shared.closed()).await;
            });
            // What is left (requests past the grace period) is dropped.
            runtime.shutdown_timeout(Duration::from_secs(1));
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Inside an async context a runtime may be neither blocked on nor
            // dropped: do both on a thread of our own.
            let _ = std::thread::Builder::new()
                .name("ossa-receiver-stop".into())
                .spawn(wait)
                .map(std::thread::JoinHandle::join);
        } else {
            wait();
        }
    }
}

impl Drop for ReceiverHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The receiver's runtime while it is not serving yet. Dropping a tokio
/// runtime inside an async context panics; a `Receiver` bound (say, in an
/// async test) and dropped unserved shuts its runtime down in the background
/// instead.
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    fn take(mut self) -> Option<tokio::runtime::Runtime> {
        self.0.take()
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            // Nothing was spawned on it: nothing to wait for.
            rt.shutdown_background();
        }
    }
}

/// The reason phrase of a status this receiver sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
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
