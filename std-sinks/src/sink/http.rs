//! CloudEvents over HTTP (the [HTTP protocol binding]) with [`ureq`]:
//! structured, binary or batched content mode, one keep-alive connection pool
//! per sink, https through rustls with the webpki roots.
//!
//! The sink makes **one attempt** per request of a [`Sink::send`] and
//! classifies each request's answer for the events it carried (one event in
//! structured and binary mode, a chunk in batched mode); retries, backoff and
//! the circuit breaker are the emitter's worker's. A request refused for good
//! fails only its own events and the send goes on with the next request, as
//! does one the collector answered with another status a retry may fix (a
//! 500 for one event: the events after it are sent, not failed with it). A
//! failure that says the collector cannot take more now (no answer, a
//! timeout, 408, 429, 502, 503, 504, `Retry-After`, or a second 500 in a
//! row) stops the send there, and that request's events and the ones after
//! it are answered "retry". In batched mode, a 413 splits the request in
//! two, down to the one event too large, which fails alone (a 413 with
//! `Retry-After` is a temporary condition: the request is retried whole).
//!
//! | outcome | [`Retry`] | [`Error`] |
//! | --- | --- | --- |
//! | 2xx | — (delivered) | — |
//! | 408, 429, 5xx except 501, 413 with `Retry-After` (temporary: RFC 9110, section 15.5.14) | `Yes { after: Retry-After }` | [`Error::HttpStatus`] |
//! | connect error, reset, other I/O or TLS failure | `Yes { after: None }` | [`Error::Transport`] |
//! | time limit reached | `Yes { after: None }` | [`Error::Timeout`] |
//! | 501, 3xx, other 4xx (400, 401, 403, 404, 413 without `Retry-After`, 415, 422…) | `No` | [`Error::HttpStatus`] with a body excerpt |
//!
//! A `431` to an event in binary mode (its attributes, as headers, over
//! the collector's head limit) sends it again at once, structured: a JSON
//! body has no such limit. The structured request's answer is the event's,
//! and later events with as many header bytes go structured at once.
//!
//! Three answers get the same request again at once instead: a `417` to
//! `Expect: 100-continue` (without it), a 2xx to such a request's head
//! alone, before `100 Continue`, its body never sent (without it: that 2xx
//! delivered nothing), and a `415` to a gzip body whose `Accept-Encoding`
//! leaves gzip out (uncompressed, and so is every later request; see
//! [`HttpSinkBuilder::gzip`]). A request with `Expect` that gets no answer
//! in time, its body never sent, turns `Expect` off for the sink's later
//! requests (the collector's `100 Continue` cannot be read).
//!
//! [HTTP protocol binding]: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use ureq::http::{HeaderName, HeaderValue, Uri};

use crate::errors::{Error, Phase, Retry, SendError};
use crate::retry_after;
use crate::sink::writer::trim;
use crate::sink::{Encoded, Encoding, SendDeadline, Sink, Ticket};

/// The time limit of one request, connecting included. 10 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events per request in [`HttpMode::Batched`], and per [`Sink::send`] in
/// every mode. 100.
pub const DEFAULT_MAX_BATCH: usize = 100;
/// Requests in flight at once ([`HttpSinkBuilder::pipeline`]): 1, each
/// send waits for its answers before the next starts.
pub const DEFAULT_PIPELINE: usize = 1;
/// Largest [`HttpSinkBuilder::pipeline`]: 64 requests (connections, threads).
pub const MAX_PIPELINE: usize = 64;
/// The content mode: [`HttpMode::Structured`], which every CloudEvents HTTP
/// receiver accepts.
pub const DEFAULT_MODE: HttpMode = HttpMode::Structured;

/// `Content-Type` of a structured-mode request.
const STRUCTURED_CT: &str = "application/cloudevents+json; charset=utf-8";
/// `Content-Type` of a batched-mode request.
const BATCH_CT: &str = "application/cloudevents-batch+json; charset=utf-8";
/// Most response-body bytes read to keep a connection reusable; a longer body
/// is left unread and its connection closed.
const DRAIN_LIMIT: usize = 64 * 1024;
/// Most response-body bytes kept for [`Error::HttpStatus`].
const EXCERPT_LIMIT: usize = 200;

/// How events are put into HTTP requests.
///
/// Every mode carries the same events; they differ in requests per event
/// and in where the attributes go. `Batched` makes the fewest requests;
/// `Binary` suits collectors that route on `ce-type` headers without
/// reading bodies. The crate's own [`receiver`](crate::receiver) takes all
/// three:
///
/// ```
/// use std::sync::{Arc, Mutex, PoisonError};
/// use ossa_events::receiver::{Receiver, ReceiverConfig};
/// use ossa_events::sink::{HttpMode, HttpSink};
/// use ossa_events::{Emitter, Event, EventBuilder};
///
/// let types = Arc::new(Mutex::new(Vec::new()));
/// let seen = types.clone();
/// let collector = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?.spawn(move |ev: &Event<'_>| {
///     seen.lock().unwrap_or_else(PoisonError::into_inner).push(ev.ty().to_owned())
/// })?;
/// let url = format!("http://{}/events", collector.local_addr());
/// for mode in [HttpMode::Structured, HttpMode::Binary, HttpMode::Batched] {
///     let emitter = Emitter::builder("/agents/a")
///         .sink(HttpSink::builder(&url).mode(mode).build()?)
///         .build()?;
///     emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
///     emitter.emit(EventBuilder::new().ty("dev.example.tock"))?;
///     assert_eq!(emitter.shutdown()?.delivered, 2);
/// }
/// let stats = collector.shutdown();
/// assert_eq!(stats.events, 6);
/// // One request per event in Structured and Binary, one for both in Batched.
/// assert_eq!(stats.requests, 2 + 2 + 1);
/// assert_eq!(types.lock().unwrap_or_else(PoisonError::into_inner)[..2], ["dev.example.tick", "dev.example.tock"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HttpMode {
    /// One event per request, the whole event as JSON in the body
    /// (`application/cloudevents+json`).
    #[default]
    Structured,
    /// One event per request, attributes as percent-encoded `ce-` headers,
    /// the data as body with its own `Content-Type`.
    Binary,
    /// Up to [`HttpSinkBuilder::max_batch`] events per request as a JSON
    /// array (`application/cloudevents-batch+json`).
    Batched,
}

/// Sends events to an HTTP endpoint. Built by [`HttpSink::builder`].
///
/// Each sink has its own [`ureq::Agent`]: connections are kept alive and
/// reused from one request to the next. `https` goes through rustls with the
/// webpki root certificates, or only those given to
/// [`HttpSinkBuilder::root_certificates_pem`]. Proxies are taken from `ALL_PROXY`,
/// `HTTPS_PROXY`/`HTTP_PROXY` and `NO_PROXY` (either case) as ureq reads them.
/// Redirects are not followed (a 3xx is a failure not retried).
///
/// ```
/// use std::time::Duration;
/// use ossa_events::sink::{HttpMode, HttpSink};
/// let sink = HttpSink::builder("https://collector.example/events")
///     .mode(HttpMode::Batched)
///     .header("Authorization", "Bearer t0ken")
///     .timeout(Duration::from_secs(5))
///     .gzip(true)
///     .max_batch(500)
///     .build()?;
/// # let _ = sink;
/// # Ok::<(), ossa_events::Error>(())
/// ```
pub struct HttpSink {
    agent: ureq::Agent,
    uri: Uri,
    url: String,
    mode: HttpMode,
    headers: Vec<(HeaderName, HeaderValue)>,
    gzip: bool,
    /// The collector said it takes no gzip (a 415): shared with the lane
    /// copies, so that one refusal turns compression off for all of them.
    gzip_refused: Arc<AtomicBool>,
    /// A request that waited for `100 Continue` got no answer in time, its
    /// body never sent, on a connection made: the collector's `100
    /// Continue` cannot be read (see `post`). Shared with the
    /// lane copies; bodies go without `Expect` from then on.
    expect_refused: Arc<AtomicBool>,
    /// The collector answered 431 to a binary-mode event: the smallest
    /// such event's `ce-` header bytes (0: none yet). Events with as many
    /// go structured at once. Shared with the lane copies.
    headers_refused: Arc<AtomicUsize>,
    max_batch: usize,
    /// The configured time limit per request.
    timeout: Duration,
    /// The batch body, reused.
    buf: Vec<u8>,
    /// The gzipped body, reused.
    gz: Vec<u8>,
    /// Batches in flight at once ([`HttpSinkBuilder::pipeline`]).
    pipeline: usize,
    /// With `pipeline > 1`: the connection threads, once the first batch
    /// is started.
    lanes: Option<Lanes>,
    /// When set (the OTLP sink's), a 2xx answer's body is kept here, up to
    /// [`DRAIN_LIMIT`] bytes: OTLP answers a request taken only in part
    /// with a 200 whose body says how many spans it rejected.
    pub(crate) answer: Option<Vec<u8>>,
}

impl fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values stay out: they are often credentials.
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpSink")
            .field("url", &redacted(&self.url))
            .field("mode", &self.mode)
            .field("headers", &names)
            .field("gzip", &self.gzip)
            .field("max_batch", &self.max_batch)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

/// Configures an [`HttpSink`]; from [`HttpSink::builder`].
///
/// It is `Clone`: keep a configured builder and build several sinks with
/// the same settings, each with its own connection pool.
///
/// ```
/// use std::time::Duration;
/// use ossa_events::sink::{HttpMode, HttpSink};
/// let config = HttpSink::builder("https://collector.example/events")
///     .mode(HttpMode::Batched)
///     .header("Authorization", "Bearer t0ken")
///     .timeout(Duration::from_secs(5));
/// let audit = config.clone().build()?; // one per emitter
/// let traces = config.build()?;
/// assert_eq!(audit.url(), traces.url());
/// assert_eq!(traces.mode(), HttpMode::Batched);
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Clone)]
pub struct HttpSinkBuilder {
    url: String,
    mode: HttpMode,
    headers: Vec<(String, String)>,
    timeout: Duration,
    gzip: bool,
    max_batch: usize,
    pipeline: usize,
    /// PEM text given to [`HttpSinkBuilder::root_certificates_pem`], checked
    /// by [`HttpSinkBuilder::build`]; `None` for the webpki roots.
    root_pem: Option<Vec<u8>>,
}

impl fmt::Debug for HttpSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpSinkBuilder")
            .field("url", &redacted(&self.url))
            .field("mode", &self.mode)
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .field("gzip", &self.gzip)
            .field("max_batch", &self.max_batch)
            .field("pipeline", &self.pipeline)
            .field("custom_roots", &self.root_pem.is_some())
            .finish()
    }
}

impl HttpSink {
    /// Starts configuring a sink that POSTs to `url` (`http://` or `https://`).
    ///
    /// Nothing is checked or connected until [`build`](HttpSinkBuilder::build),
    /// and connecting waits for the first send: a collector that is not up yet is
    /// not an error here.
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::sink::HttpSink;
    /// use ossa_events::{Emitter, Event, EventBuilder};
    ///
    /// let collector = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?.spawn(|_: &Event<'_>| {})?;
    /// let sink = HttpSink::builder(format!("http://{}/events", collector.local_addr())).build()?;
    /// let emitter = Emitter::builder("/agents/a").sink(sink).build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// assert_eq!(emitter.flush()?.delivered, 1);
    /// assert_eq!(collector.shutdown().accepted, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(url: impl Into<String>) -> HttpSinkBuilder {
        HttpSinkBuilder {
            url: url.into(),
            mode: DEFAULT_MODE,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            gzip: false,
            max_batch: DEFAULT_MAX_BATCH,
            pipeline: DEFAULT_PIPELINE,
            root_pem: None,
        }
    }

    /// The endpoint, as given. Credentials in its userinfo
    /// (`https://user:password@host/`, sent as `Authorization: Basic`)
    /// are shown as `***@` in `Debug` output, logs and errors.
    ///
    /// ```
    /// use ossa_events::sink::HttpSink;
    /// let sink = HttpSink::builder("http://127.0.0.1:8080/events").build()?;
    /// assert_eq!(sink.url(), "http://127.0.0.1:8080/events");
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The content mode.
    ///
    /// ```
    /// use ossa_events::sink::{Encoding, HttpMode, HttpSink, Sink};
    /// let sink = HttpSink::builder("http://127.0.0.1:8080/events").build()?;
    /// assert_eq!(sink.mode(), HttpMode::Structured);
    /// // The mode decides the encoding the emitter produces for the sink.
    /// assert_eq!(sink.encoding(), Encoding::Json);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn mode(&self) -> HttpMode {
        self.mode
    }
}

impl HttpSinkBuilder {
    /// The content mode. Defaults to [`HttpMode::Structured`] ([`DEFAULT_MODE`]).
    ///
    /// ```
    /// use ossa_events::sink::{Encoding, HttpMode, HttpSink, Sink};
    /// let sink = HttpSink::builder("http://127.0.0.1:8080/events")
    ///     .mode(HttpMode::Binary)
    ///     .build()?;
    /// assert_eq!(sink.encoding(), Encoding::HttpBinary);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn mode(mut self, mode: HttpMode) -> Self {
        self.mode = mode;
        self
    }

    /// Adds a header to every request, e.g. `Authorization`. Names and values
    /// are checked by [`build`](Self::build); `Content-Type`,
    /// `Content-Encoding`, `Content-Length`, `Transfer-Encoding` and `ce-*`
    /// are the sink's own and refused. Defaults to none.
    ///
    /// ```
    /// use ossa_events::sink::HttpSink;
    /// let sink = HttpSink::builder("https://collector.example/events")
    ///     .header("Authorization", "Bearer t0ken")
    ///     .header("X-Tenant", "acme")
    ///     .build()?;
    /// // Values stay out of Debug output: they are often credentials.
    /// assert!(!format!("{sink:?}").contains("t0ken"));
    /// // The sink's own headers cannot be overridden.
    /// let refused = HttpSink::builder("https://collector.example/events")
    ///     .header("Content-Type", "text/plain")
    ///     .build();
    /// assert!(matches!(refused, Err(ossa_events::Error::Io(e)) if e.kind() == std::io::ErrorKind::InvalidInput));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The time limit of one request, from connecting to the end of the
    /// response; also the limit on connecting alone. Defaults to 10 seconds
    /// ([`DEFAULT_TIMEOUT`]).
    ///
    /// A collector that accepts the connection but never answers costs one
    /// timeout per attempt; the failure is retryable:
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::sink::{Encoded, Encoding, HttpSink, Sink};
    /// use ossa_events::{Error, Event, Retry};
    ///
    /// // Listens, but never reads or answers.
    /// let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut sink = HttpSink::builder(format!("http://{}/events", silent.local_addr()?))
    ///     .timeout(Duration::from_millis(100))
    ///     .build()?;
    /// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.example.tick").build()?;
    /// let Err(err) = sink.send(&[Encoded::new(&ev, Encoding::Json)?]) else {
    ///     panic!("no collector answered");
    /// };
    /// assert!(matches!(err.error(), Error::Timeout(_)));
    /// assert!(err.failure_of(0).is_some_and(|f| matches!(f.retry, Retry::Yes { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Compresses request bodies with gzip and says so in
    /// `Content-Encoding: gzip`. Defaults to `false`.
    ///
    /// Worth it for batches (JSON compresses well); the crate's
    /// [`receiver`](crate::receiver) decompresses with the `http` feature.
    /// A collector that answers `415` with an `Accept-Encoding` that does
    /// not take gzip (RFC 9110, section 12.5.3) gets that request again
    /// uncompressed at once, and every later one uncompressed too (a
    /// warning is logged once).
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::sink::{HttpMode, HttpSink};
    /// use ossa_events::{Emitter, Event, EventBuilder};
    ///
    /// let collector = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?.spawn(|_: &Event<'_>| {})?;
    /// let sink = HttpSink::builder(format!("http://{}/events", collector.local_addr()))
    ///     .mode(HttpMode::Batched)
    ///     .gzip(true)
    ///     .build()?;
    /// let emitter = Emitter::builder("/agents/a").sink(sink).build()?;
    /// for _ in 0..50 {
    ///     emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// }
    /// assert_eq!(emitter.flush()?.delivered, 50);
    /// let stats = collector.shutdown();
    /// assert_eq!(stats.events, 50);
    /// // Far fewer bytes than the JSON (over 100 bytes an event).
    /// assert!(stats.bytes_received < 50 * 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    /// Most events per [`Sink::send`], and so per request in
    /// [`HttpMode::Batched`]; 0 counts as 1. Defaults to 100
    /// ([`DEFAULT_MAX_BATCH`]).
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::sink::{HttpMode, HttpSink};
    /// use ossa_events::{Emitter, Event, EventBuilder};
    ///
    /// let collector = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?.spawn(|_: &Event<'_>| {})?;
    /// let sink = HttpSink::builder(format!("http://{}/events", collector.local_addr()))
    ///     .mode(HttpMode::Batched)
    ///     .max_batch(2)
    ///     .build()?;
    /// let emitter = Emitter::builder("/agents/a").sink(sink).build()?;
    /// for _ in 0..5 {
    ///     emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// }
    /// assert_eq!(emitter.flush()?.delivered, 5);
    /// let stats = collector.shutdown();
    /// assert_eq!((stats.requests, stats.events), (3, 5)); // 2 + 2 + 1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// Most requests in flight at once, each on its own keep-alive
    /// connection and thread: the emitter's worker hands the sink its next
    /// batch ([`Sink::start`]) while earlier ones wait for their answers, and
    /// counts each batch, oldest first, once its answers are in
    /// ([`Sink::settle`]). 0 counts as 1, more than [`MAX_PIPELINE`] as
    /// that. Defaults to 1 ([`DEFAULT_PIPELINE`]): every send waits for its
    /// answers before the next starts.
    ///
    /// Each event is still answered for by its own request: delivered,
    /// failed for good, or retried (a retry is sent on the worker's thread,
    /// under the emitter's retry policy). Order: batches in flight at once
    /// can reach the collector in any order among themselves (the events
    /// of one batch keep theirs); keep 1 when the collector needs the
    /// order of emission.
    ///
    /// ```
    /// use ossa_events::receiver::{Receiver, ReceiverConfig};
    /// use ossa_events::sink::{HttpMode, HttpSink, Sink};
    /// use ossa_events::{Emitter, Event, EventBuilder};
    ///
    /// let collector = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?.spawn(|_: &Event<'_>| {})?;
    /// let sink = HttpSink::builder(format!("http://{}/events", collector.local_addr()))
    ///     .mode(HttpMode::Batched)
    ///     .max_batch(10)
    ///     .pipeline(4)
    ///     .build()?;
    /// assert_eq!(sink.pipeline(), 4);
    /// let emitter = Emitter::builder("/agents/a").sink(sink).batch_size(10).build()?;
    /// for _ in 0..100 {
    ///     emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// }
    /// assert_eq!(emitter.shutdown()?.delivered, 100);
    /// assert_eq!(collector.shutdown().events, 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pipeline(mut self, requests: usize) -> Self {
        self.pipeline = requests.clamp(1, MAX_PIPELINE);
        self
    }

    /// Trusts the certificates in `pem` (one or more `CERTIFICATE` blocks;
    /// other blocks, such as keys, are skipped) as the roots for `https`:
    /// a private CA, or a collector's self-signed certificate. When given,
    /// ONLY these roots are trusted, not the webpki ones; a second call
    /// replaces the first. Checked by [`build`](Self::build). Defaults to the
    /// webpki roots.
    ///
    /// ```
    /// use ossa_events::sink::HttpSink;
    /// # let pem = rcgen::generate_simple_self_signed(vec!["collector.internal".into()])?.cert.pem();
    /// // let pem = std::fs::read("/etc/ossa/collector-ca.pem")?;
    /// let sink = HttpSink::builder("https://collector.internal/events")
    ///     .root_certificates_pem(&pem)
    ///     .build()?;
    /// # let _ = sink;
    /// // Text without a certificate is refused at build, not at the first send.
    /// let no_cert = HttpSink::builder("https://collector.internal/events")
    ///     .root_certificates_pem("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")
    ///     .build();
    /// assert!(no_cert.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn root_certificates_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.root_pem = Some(pem.as_ref().to_vec());
        self
    }

    /// Checks the URL, headers and root certificates and makes the sink with
    /// its own connection pool. Fails with [`Error::Io`] of kind
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput) for a URL that is
    /// not absolute `http`/`https` or whose port is not a number up to
    /// 65535, a header that is not valid HTTP, or
    /// [`root_certificates_pem`](Self::root_certificates_pem) text that is not
    /// PEM or has no certificate.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use ossa_events::sink::HttpSink;
    /// use ossa_events::Error;
    /// let sink = HttpSink::builder("https://collector.example/events").build()?;
    /// assert_eq!(sink.url(), "https://collector.example/events");
    /// for bad in ["collector.example/events", "ftp://collector.example/events", "http:///events"] {
    ///     let r = HttpSink::builder(bad).build();
    ///     assert!(matches!(r, Err(Error::Io(e)) if e.kind() == ErrorKind::InvalidInput), "{bad}");
    /// }
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn build(self) -> Result<HttpSink, Error> {
        // Credentials in the URL stay out of the errors, as in `Debug`.
        let shown = redacted(&self.url);
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| invalid(format!("url {shown:?}: {e}")))?;
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
            _ => return Err(invalid(format!("url {shown:?}: not http or https"))),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid(format!("url {shown:?}: no host")));
        }
        // A port that is no TCP port (`:99999`, `:abc`) is read by ureq as
        // none, and the request goes to the scheme's default port.
        if let Some(auth) = uri.authority() {
            let host_port = auth.as_str().rsplit('@').next().unwrap_or("");
            let port = host_port
                .strip_prefix(auth.host())
                .and_then(|p| p.strip_prefix(':'))
                .unwrap_or("");
            if !port.is_empty() && auth.port_u16().is_none() {
                return Err(invalid(format!(
                    "url {shown:?}: port {port:?} is not a number from 0 to 65535"
                )));
            }
        }
        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let n = HeaderName::try_from(name.as_str())
                .map_err(|e| invalid(format!("header name {name:?}: {e}")))?;
            let reserved = [
                "content-type",
                "content-encoding",
                "content-length",
                "transfer-encoding",
            ];
            if reserved.contains(&n.as_str()) || n.as_str().starts_with("ce-") {
                return Err(invalid(format!("header {name:?} is set by the sink")));
            }
            let v = HeaderValue::try_from(value.as_str())
                .map_err(|e| invalid(format!("header {name:?} value: {e}")))?;
            headers.push((n, v));
        }
        let mut config = ureq::Agent::config_builder();
        if let Some(pem) = &self.root_pem {
            // Only these roots: `RootCerts::Specific` replaces the webpki ones.
            let roots = ureq::tls::RootCerts::new_with_certs(&root_certs(pem)?);
            config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
        }
        let config = config
            .http_status_as_error(false)
            // A redirected POST is not what the collector was configured to
            // receive: 3xx is reported, not followed.
            .max_redirects(0)
            .timeout_global(Some(self.timeout))
            .timeout_connect(Some(self.timeout))
            // The answer's body is read only to give the connection back:
            // one that stalls is dropped (the status stands), rather than
            // holding the send for the whole request timeout (a 2xx whose
            // body never ended cost every request its 10 s).
            .timeout_recv_body(Some(self.timeout.min(RECV_BODY_LIMIT)))
            // A connection per request in flight stays open for the next.
            .max_idle_connections(self.pipeline.max(10))
            .max_idle_connections_per_host(self.pipeline.max(3))
            .user_agent(concat!("ossa-events/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(HttpSink {
            agent: ureq::Agent::with_parts(
                config,
                Connect(ureq::unversioned::transport::DefaultConnector::new()),
                Resolve::default(),
            ),
            uri,
            url: self.url,
            mode: self.mode,
            headers,
            gzip: self.gzip,
            gzip_refused: Arc::default(),
            expect_refused: Arc::default(),
            headers_refused: Arc::default(),
            max_batch: self.max_batch,
            timeout: self.timeout,
            buf: Vec::new(),
            gz: Vec::new(),
            pipeline: self.pipeline,
            lanes: None,
            answer: None,
        })
    }
}

/// How long a host name's addresses are used before it is looked up again.
const RESOLVE_TTL: Duration = Duration::from_secs(5);

/// ureq's resolver, minus the thread per request: ureq looks the host up
/// before every request, even one that goes out on a pooled connection,
/// and with a time limit set it does so on a new thread (2 003 `clone3`
/// for 2 000 requests of `emit --sink http`, with the signal-mask and
/// stack calls around each). An IP address is used as it is; a name's
/// addresses are kept for [`RESOLVE_TTL`] (a failed lookup is not kept).
#[derive(Debug, Default)]
struct Resolve {
    inner: ureq::unversioned::resolver::DefaultResolver,
    /// The last name looked up (`host:port`), when, and its addresses.
    last: std::sync::Mutex<Option<(String, std::time::Instant, ResolvedAddrs)>>,
}

type ResolvedAddrs = ureq::unversioned::resolver::ResolvedSocketAddrs;

impl ureq::unversioned::resolver::Resolver for Resolve {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ResolvedAddrs, ureq::Error> {
        use ureq::unversioned::resolver::DefaultResolver;
        let key = uri
            .scheme()
            .zip(uri.authority())
            .and_then(|(s, a)| DefaultResolver::host_and_port(s, a));
        let Some(key) = key else {
            return self.inner.resolve(uri, config, timeout);
        };
        if let Ok(addr) = key.parse::<std::net::SocketAddr>() {
            let mut v = self.empty();
            for a in config.ip_family().keep_wanted([addr].into_iter()) {
                v.push(a);
            }
            if v.is_empty() {
                return Err(ureq::Error::HostNotFound);
            }
            return Ok(v);
        }
        let now = std::time::Instant::now();
        {
            let last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((k, at, addrs)) = &*last
                && *k == key
                && now.duration_since(*at) < RESOLVE_TTL
            {
                return Ok(addrs.clone());
            }
        }
        // Looked up without the lock: each request's lookup is bounded by
        // its own timeout, and a resolver that does not answer cannot queue
        // the pipeline's requests behind one another (64 lanes waiting 10 s
        // each outlasted any shutdown deadline). Lanes that miss at once may
        // each look up; the last answer is kept.
        let addrs = self.inner.resolve(uri, config, timeout)?;
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((key, now, addrs.clone()));
        Ok(addrs)
    }
}

/// The certificates of `pem`, at least one; an [`invalid`] error otherwise.
fn root_certs(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, Error> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        // Keys and other kinds are skipped: not roots.
        let item = item.map_err(|e| invalid(format!("root certificates: {e}")))?;
        if let ureq::tls::PemItem::Certificate(c) = item {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(invalid(
            "root certificates: no PEM certificate found".into(),
        ));
    }
    Ok(certs)
}

/// `url` with the userinfo of its authority (`user:password@`, which ureq
/// sends as `Authorization: Basic`) shown as `***@`: what `Debug` output,
/// logs and errors show of the endpoint.
pub(crate) fn redacted(url: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}").into(),
        None => url.into(),
    }
}

fn invalid(msg: String) -> Error {
    Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg))
}

/// Why one request failed (also what the OTLP sink, which posts through an
/// `HttpSink`, classifies its requests by).
pub(crate) struct Failure {
    /// Whether a retry may succeed (408, 429, 5xx except 501, transport).
    pub(crate) retry: bool,
    /// The collector's `Retry-After`, when it gave one.
    pub(crate) after: Option<Duration>,
    pub(crate) error: Error,
}

impl Failure {
    /// Whether the collector cannot take more now, so that the requests
    /// after this one would fail as it did: no answer (a connect error, a
    /// reset, a time limit), an answer that says so (408, 429, 502, 503,
    /// 504, or any with `Retry-After`), or another status a retry may fix
    /// (a 500) right after one (`after_one`: the request before failed
    /// too). A single 500 can be this request's own (an event the
    /// collector chokes on): the next requests are made; a second in a row
    /// is taken for a collector that is down, which is not sent the whole
    /// batch on every attempt.
    fn stops(&self, after_one: bool) -> bool {
        match &self.error {
            Error::HttpStatus { status, .. } => {
                self.retry
                    && (after_one
                        || self.after.is_some()
                        || matches!(status, 408 | 429 | 502..=504))
            }
            _ => self.retry,
        }
    }

    /// Whether the collector refused the request's body as too large (413)
    /// for good: a 413 with `Retry-After` is a temporary condition, retried.
    fn too_large(&self) -> bool {
        !self.retry && matches!(self.error, Error::HttpStatus { status: 413, .. })
    }

    /// The failure of the events at `events`.
    fn at(self, events: std::ops::Range<usize>) -> SendError {
        let retry = if self.retry {
            Retry::Yes { after: self.after }
        } else {
            Retry::No
        };
        SendError::at(events, retry, self.error)
    }
}

impl Sink for HttpSink {
    fn takes_structured(&self) -> bool {
        true
    }

    fn encoding(&self) -> Encoding {
        match self.mode {
            HttpMode::Binary => Encoding::HttpBinary,
            HttpMode::Structured | HttpMode::Batched => Encoding::Json,
        }
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        self.send_by(events, SendDeadline::NONE)
    }

    /// Each request's time limit is cut to what is left before `deadline`,
    /// and no request starts after it: the emitter's shutdown deadline holds
    /// even when the configured [`timeout`](HttpSinkBuilder::timeout) is longer.
    fn send_by(&mut self, events: &[Encoded], deadline: SendDeadline<'_>) -> Result<(), SendError> {
        let want = self.encoding();
        super::send_in_encoding(events, want, "HTTP", |ev| self.send_checked(ev, deadline))
    }

    fn pipeline(&self) -> usize {
        self.pipeline
    }

    /// Hands `events` to a connection thread, which sends them as
    /// [`send_by`](Sink::send_by) would, within `deadline` as `start` and
    /// `settle` last saw it; `settle` waits for its answer.
    fn start(
        &mut self,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<Ticket, SendError> {
        if self.pipeline <= 1 {
            return self.send_by(events, deadline).map(|()| Ticket::new(0));
        }
        let lanes = match &mut self.lanes {
            Some(l) => l,
            None => self
                .lanes
                .insert(Lanes::start(self.lane_copy(), self.pipeline)),
        };
        lanes.deadline.set(deadline.get());
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let job = Job {
            events: events.to_vec(),
            reply,
        };
        if lanes.jobs.send(job).is_err() {
            // No connection thread is left (one cannot be started): sent
            // here instead, settled now.
            return self.send_by(events, deadline).map(|()| Ticket::new(0));
        }
        let ticket = lanes.next;
        lanes.next += 1;
        lanes.waiting.push((
            ticket,
            events.len(),
            Answer {
                rx: answer,
                came: None,
            },
        ));
        Ok(Ticket::new(ticket))
    }

    /// Waits for the answer of the batch of `ticket`, passing `deadline` on
    /// to the connection threads: requests they start after it is known end
    /// by it, and the events delivered by then are answered for as
    /// delivered. A request already under way when shutdown began keeps its
    /// own `timeout`. An answer still missing shortly after the deadline
    /// counts its events timed out (retryable: the emitter, shutting down,
    /// gives up on them), so a collector may still receive events that were
    /// reported as shutdown-timeout: at-least-once, as the retries are.
    fn settle(
        &mut self,
        ticket: Ticket,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<(), SendError> {
        let Some(lanes) = self.lanes.as_mut().filter(|_| ticket.get() != 0) else {
            // `start` sent it already (ticket 0: on the worker's thread).
            return Ok(());
        };
        let Some(at) = lanes.waiting.iter().position(|w| w.0 == ticket.get()) else {
            return Err(SendError::fatal(Error::Transport(
                "http: settle of a ticket this sink did not hand out".into(),
            )));
        };
        let (_, n, mut answer) = lanes.waiting.swap_remove(at);
        if n != events.len() {
            return Err(SendError::fatal(Error::Transport(
                "http: settle with events that are not the batch of its ticket".into(),
            )));
        }
        loop {
            // Woken now and then to pass on a shutdown deadline set
            // meanwhile: the connection threads cut their requests to it,
            // and answer for what they could deliver by then.
            let d = deadline.get();
            lanes.deadline.set(d);
            if d.is_some_and(|d| std::time::Instant::now() > d + SETTLE_GRACE) {
                // The answer should have come by now: its events are not
                // confirmed (the request may still arrive).
                return Err(SendError::at(
                    0..n,
                    Retry::LATER,
                    Error::Timeout(Phase::Shutdown),
                ));
            }
            match answer.recv_timeout(SETTLE_POLL) {
                // A `Retry-After` counts from the answer, not from now: the
                // worker settles one batch at a time, and waits out each
                // retry before the next settle (4 batches in flight answered
                // `429` with `Retry-After: 2` together went again after 2,
                // 4, 6 and 8 s).
                Ok((at, r)) => return r.map_err(|e| e.aged(at.elapsed())),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    // The connection thread ended without an answer (it panicked).
                    return Err(SendError::at(
                        0..n,
                        Retry::LATER,
                        Error::Transport("http: the request's connection thread ended".into()),
                    ));
                }
            }
        }
    }

    /// Waits for the answer of the batch of `ticket` until `until`, and
    /// keeps it for `settle`.
    fn wait_ready(&mut self, ticket: Ticket, until: std::time::Instant) -> bool {
        let Some(lanes) = self.lanes.as_mut() else {
            return true;
        };
        let Some((_, _, answer)) = lanes.waiting.iter_mut().find(|w| w.0 == ticket.get()) else {
            return true;
        };
        let wait = until.saturating_duration_since(std::time::Instant::now());
        match answer.recv_timeout(wait) {
            Ok(a) => {
                answer.came = Some(a);
                true
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
            // `settle` says what became of it.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => true,
        }
    }
}

/// How long past the shutdown deadline [`HttpSink::settle`] waits for a
/// connection thread's answer (requests started once the deadline is known
/// end at it).
const SETTLE_GRACE: Duration = Duration::from_millis(500);

/// The emitter's shutdown deadline as the worker last passed it on, read by
/// the connection threads at each request.
#[derive(Default)]
struct DeadlineCell(std::sync::Mutex<Option<std::time::Instant>>);

impl DeadlineCell {
    fn set(&self, d: Option<std::time::Instant>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = d;
    }
}

impl super::LiveDeadline for DeadlineCell {
    fn now(&self) -> Option<std::time::Instant> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How often [`HttpSink::settle`] looks at the shutdown deadline while it waits.
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// A started batch's answer, with when it came.
type Answered = (std::time::Instant, Result<(), SendError>);

/// Where a started batch's answer arrives, and the answer once
/// [`Sink::wait_ready`] took it (for `settle`).
struct Answer {
    rx: std::sync::mpsc::Receiver<Answered>,
    came: Option<Answered>,
}

impl Answer {
    /// The answer taken already, else the next within `wait`.
    fn recv_timeout(
        &mut self,
        wait: Duration,
    ) -> Result<Answered, std::sync::mpsc::RecvTimeoutError> {
        match self.came.take() {
            Some(a) => Ok(a),
            None => self.rx.recv_timeout(wait),
        }
    }
}

/// A batch for a connection thread, and where its answer goes.
struct Job {
    events: Vec<Encoded>,
    reply: std::sync::mpsc::SyncSender<Answered>,
}

/// The connection threads of a pipelined sink: each takes the next batch,
/// sends it on its own connection (from the shared pool) and answers.
///
/// ```text
///  worker ── start ──▶ jobs ──▶ lane 1..N ── requests ──▶ collector
///     ▲                            │
///     └──── settle (oldest first) ◀┘ one answer per batch
/// ```
struct Lanes {
    jobs: std::sync::mpsc::Sender<Job>,
    /// The shutdown deadline, passed on to the connection threads.
    deadline: std::sync::Arc<DeadlineCell>,
    /// (ticket, events, answer) of each batch started and not settled.
    waiting: Vec<(u64, usize, Answer)>,
    next: u64,
}

impl Lanes {
    /// Starts `n` connection threads, each with its copy of `sink`. The
    /// threads end when the sink (and with it `jobs`) is dropped, after the
    /// request they are in, if any.
    fn start(sink: HttpSink, n: usize) -> Lanes {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let deadline = std::sync::Arc::new(DeadlineCell::default());
        for i in 0..n {
            let (rx, cell) = (rx.clone(), deadline.clone());
            let mut sink = sink.lane_copy();
            // A thread that cannot start leaves its jobs to the others; with
            // none, `start` sends on the worker's thread.
            let _ = std::thread::Builder::new()
                .name(format!("ossa-events-http-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let rx = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            rx.recv()
                        };
                        let Ok(job) = job else { break };
                        // A panic is the request's fatal answer, as the
                        // worker's own sink calls get, and the lane lives on.
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            sink.send_by(&job.events, SendDeadline::live(&*cell))
                        }))
                        .unwrap_or_else(|_| {
                            Err(SendError::fatal(Error::Transport(
                                "HTTP connection thread panicked".into(),
                            )))
                        });
                        // The worker may have stopped waiting (shutdown).
                        let _ = job.reply.send((std::time::Instant::now(), r));
                    }
                });
        }
        Lanes {
            jobs,
            deadline,
            waiting: Vec::new(),
            next: 1,
        }
    }
}

impl HttpSink {
    /// Requests in flight at once (see [`HttpSinkBuilder::pipeline`]).
    ///
    /// ```
    /// use ossa_events::sink::{HttpSink, Sink};
    /// let sink = HttpSink::builder("http://127.0.0.1:8080/events").pipeline(8).build()?;
    /// assert_eq!(Sink::pipeline(&sink), 8);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn pipeline(&self) -> usize {
        self.pipeline
    }

    /// A sink for one connection thread: this one's settings and
    /// connection pool, one request at a time.
    fn lane_copy(&self) -> HttpSink {
        HttpSink {
            agent: self.agent.clone(),
            uri: self.uri.clone(),
            url: self.url.clone(),
            mode: self.mode,
            headers: self.headers.clone(),
            gzip: self.gzip,
            gzip_refused: Arc::clone(&self.gzip_refused),
            expect_refused: Arc::clone(&self.expect_refused),
            headers_refused: Arc::clone(&self.headers_refused),
            max_batch: self.max_batch,
            timeout: self.timeout,
            buf: Vec::new(),
            gz: Vec::new(),
            pipeline: 1,
            lanes: None,
            answer: None,
        }
    }

    /// The time limit of the next request, or the failure when `deadline`
    /// has passed already.
    pub(crate) fn limit(&self, deadline: SendDeadline<'_>) -> Result<Option<Duration>, Failure> {
        let Some(d) = deadline.get() else {
            return Ok(None);
        };
        let left = d.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(Failure {
                retry: true,
                after: None,
                error: Error::Timeout(Phase::Shutdown),
            });
        }
        Ok((left < self.timeout).then_some(left))
    }

    /// Sends `events`, one request per event (structured, binary) or per
    /// chunk (batched), and answers per event: a request refused for good
    /// (a 4xx), or answered with a status a retry may fix (a 500), fails
    /// only its own events and the next request goes on; a failure that
    /// says the collector cannot take more now ([`Failure::stops`]) stops
    /// the send there, and that request's events and the rest are retried.
    /// A batch answered 413 is sent again in two halves (see the module).
    fn send_checked(
        &mut self,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<(), SendError> {
        let per_request = match self.mode {
            HttpMode::Batched => self.max_batch.max(1),
            HttpMode::Structured | HttpMode::Binary => 1,
        };
        let mut failed: Option<SendError> = None;
        // The requests to make, in order: a split one's halves go first.
        let mut todo: std::collections::VecDeque<std::ops::Range<usize>> = (0..events.len())
            .step_by(per_request)
            .map(|s| s..(s + per_request).min(events.len()))
            .collect();
        // Whether the last request failed and a retry may fix it.
        let mut failed_last = false;
        while let Some(here) = todo.pop_front() {
            let chunk = events.get(here.clone()).unwrap_or(&[]);
            let r = self.post_chunk(chunk, deadline);
            let Err(f) = r else {
                failed_last = false;
                continue;
            };
            if f.too_large() && here.len() > 1 {
                let mid = here.start + here.len() / 2;
                todo.push_front(mid..here.end);
                todo.push_front(here.start..mid);
                continue;
            }
            let stop = f.stops(failed_last);
            failed_last = f.retry;
            let err = f.at(if stop { here.start..events.len() } else { here });
            failed = Some(match failed {
                Some(prev) => prev.merge(err),
                None => err,
            });
            if stop {
                break;
            }
        }
        trim(&mut self.buf);
        trim(&mut self.gz);
        failed.map_or(Ok(()), Err)
    }

    /// One request for `chunk` in this sink's mode.
    fn post_chunk(&mut self, chunk: &[Encoded], deadline: SendDeadline<'_>) -> Result<(), Failure> {
        match (self.mode, chunk) {
            (HttpMode::Batched, _) => {
                self.buf.clear();
                self.buf.push(b'[');
                for (i, e) in chunk.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    self.buf.extend_from_slice(e.json());
                }
                self.buf.push(b']');
                let body = std::mem::take(&mut self.buf);
                let r = self.post(&body, Some(BATCH_CT), None, deadline);
                self.buf = body;
                r
            }
            (HttpMode::Structured, [e]) => self.post(e.json(), Some(STRUCTURED_CT), None, deadline),
            // An event binary mode cannot carry (see `Encoded::for_sink`).
            (HttpMode::Binary, [e]) if e.encoding() == Encoding::Json => {
                self.post(e.json(), Some(STRUCTURED_CT), None, deadline)
            }
            (HttpMode::Binary, [e]) => {
                let head = e.wire_len().saturating_sub(e.body().len());
                let refused_at = self.headers_refused.load(Ordering::Relaxed);
                if refused_at > 0
                    && head >= refused_at
                    && let Some(answer) = self.post_as_structured(e, deadline)
                {
                    // As large as an event the collector refused: structured
                    // at once, not after a refused request of its own.
                    return answer;
                }
                match self.post(e.body(), e.content_type(), Some(e), deadline) {
                    Err(f) if matches!(f.error, Error::HttpStatus { status: 431, .. }) => {
                        self.post_structured_after_431(e, head, f, deadline)
                    }
                    answer => answer,
                }
            }
            // Never: one event per request in these modes. Not sent, so not delivered.
            _ => Err(Failure {
                retry: false,
                after: None,
                error: Error::Transport("http: a request without its one event".into()),
            }),
        }
    }

    /// `e` sent structured, after the collector answered its binary-mode
    /// request `431 Request Header Fields Too Large` (`refused`): its
    /// attributes fit in a structured body, which has no header limit, and
    /// the HTTP binding lets a sender pick the content mode per message.
    /// The structured request's answer is the event's; when the event
    /// cannot be read back to be encoded as JSON, the 431 is. `head` (its
    /// `ce-` header bytes) is kept when it is the smallest refused yet:
    /// later events with as many go structured at once.
    fn post_structured_after_431(
        &mut self,
        e: &Encoded,
        head: usize,
        refused: Failure,
        deadline: SendDeadline<'_>,
    ) -> Result<(), Failure> {
        let was = self
            .headers_refused
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                (p == 0 || head < p).then_some(head.max(1))
            });
        if was == Ok(0) {
            tracing::warn!(
                url = %redacted(&self.url),
                "the collector answered 431 to an event's headers in binary mode: such events are sent structured"
            );
        }
        self.post_as_structured(e, deadline).unwrap_or(Err(refused))
    }

    /// Binary-mode event `e` read back, encoded as JSON and sent
    /// structured; `None` when it does not read back (not sent).
    fn post_as_structured(
        &mut self,
        e: &Encoded,
        deadline: SendDeadline<'_>,
    ) -> Option<Result<(), Failure>> {
        let json = e.reencode(super::Form::exactly(Encoding::Json)).ok()?;
        Some(self.post(json.json(), Some(STRUCTURED_CT), None, deadline))
    }

    /// One POST: `body` (gzipped if configured), `content_type`, the
    /// configured headers and, in binary mode, the `ce-` headers of `binary`
    /// (in wire form already); each request (a resend after a 417 or 415
    /// too) within what is left before `deadline` when that is shorter
    /// than the sink's timeout, and none started after it.
    pub(crate) fn post(
        &mut self,
        body: &[u8],
        content_type: Option<&str>,
        binary: Option<&Encoded>,
        deadline: SendDeadline<'_>,
    ) -> Result<(), Failure> {
        // Each refusal is answered once, whichever comes first: a 415 to
        // gzip followed by a 417 to the (now larger) uncompressed body, or
        // a 417 followed by a 415 to the gzip body sent without `Expect`,
        // gets the request a third time (a 415 or 417 returned here would
        // fail its events for good); so is a 2xx to the head alone.
        // `expect` only goes from true to false, and gzip, once refused,
        // stays off: at most three requests.
        let mut expect = !self.expect_refused.load(Ordering::Relaxed);
        loop {
            // Afresh for each request: a resend gets only the time left.
            let limit = self.limit(deadline)?;
            let gzip = self.gzips();
            let (answer, went) = self.post_once(body, content_type, binary, limit, expect);
            match answer {
                Ok(()) if went == BodyOut::Whole => return Ok(()),
                // A 2xx to the head alone, before `100 Continue`: the body
                // was never sent (RFC 9110, section 10.1.1), so the
                // collector cannot have these events. Sent again without
                // `Expect`, as after a 417 (only a request with `Expect`
                // can go without its body, so this happens once).
                Ok(()) => expect = false,
                // No answer in time on a connection made, and the body
                // never sent: the client took something for a final answer
                // before `100 Continue` and waited for the rest (ureq-proto
                // 0.7 reads a 1xx with header lines, which RFC 9110 section
                // 15.2 allows, as one; `Informational` hands it none now,
                // this stays for what else may do so), while the collector
                // waited for the body. Every request with `Expect` would
                // meet the same: later ones go without it (the worker
                // retries this one), and it is said once.
                Err(f)
                    if expect
                        && went == BodyOut::Nothing
                        && matches!(f.error, Error::Timeout(Phase::Send)) =>
                {
                    if !self.expect_refused.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            url = %redacted(&self.url),
                            "no answer to a request that waited for 100 Continue, its body unsent: sending bodies without Expect"
                        );
                    }
                    return Err(f);
                }
                // `Expect` refused (a proxy before an HTTP/1.0 server must):
                // the body is sent without it, as curl does. (Whether it had
                // one depends on the size on the wire, gzipped or not; a 417
                // to a request without one meets the same answer again.)
                Err(Failure {
                    error: Error::HttpStatus { status: 417, .. },
                    ..
                }) if expect => expect = false,
                // The collector said it does not take gzip (`post_once` turned
                // it off): the same body, uncompressed.
                Err(Failure {
                    error: Error::HttpStatus { status: 415, .. },
                    ..
                }) if gzip && !self.gzips() => {}
                Err(f) => return Err(f),
            }
        }
    }

    /// Whether bodies go gzipped: configured, and not refused.
    fn gzips(&self) -> bool {
        self.gzip && !self.gzip_refused.load(Ordering::Relaxed)
    }

    /// One request; with `expect`, a body from [`EXPECT_CONTINUE_FROM`] on
    /// waits for `100 Continue`, at most a quarter of the request's time
    /// (ureq's 1 s at most), so that a collector that ignores `Expect`
    /// leaves the request time to send it.
    ///
    /// Returns the answer, and how much of the body went (a request with
    /// `Expect` may be answered, or fail, without it).
    fn post_once(
        &mut self,
        body: &[u8],
        content_type: Option<&str>,
        binary: Option<&Encoded>,
        limit: Option<Duration>,
        expect: bool,
    ) -> (Result<(), Failure>, BodyOut) {
        let gzip = self.gzips();
        if gzip {
            self.gz.clear();
            let mut enc = flate2::write::GzEncoder::new(
                std::mem::take(&mut self.gz),
                flate2::Compression::fast(),
            );
            let gz = enc.write_all(body).and_then(|()| enc.finish());
            match gz {
                Ok(gz) => self.gz = gz,
                Err(e) => {
                    let f = Failure {
                        retry: false,
                        after: None,
                        error: Error::Io(e),
                    };
                    return (Err(f), BodyOut::Part);
                }
            }
        }
        let gz = std::mem::take(&mut self.gz);
        let wire: &[u8] = if gzip { &gz } else { body };
        let expect = expect && wire.len() >= EXPECT_CONTINUE_FROM;
        let mut req = self.agent.post(&self.uri);
        if limit.is_some() || expect {
            let budget = limit.unwrap_or(self.timeout);
            req = req
                .config()
                .timeout_global(Some(budget))
                .timeout_connect(Some(budget))
                .timeout_await_100(Some((budget / 4).min(Duration::from_secs(1))))
                .build();
        }
        for (n, v) in &self.headers {
            req = req.header(n.clone(), v.clone());
        }
        for (n, v) in binary.into_iter().flat_map(Encoded::headers) {
            req = req.header(n, v);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if gzip {
            req = req.header("content-encoding", "gzip");
        }
        // With `Expect`, the body is read through `unsent`, which tells
        // afterwards whether ureq sent all of it: a final answer that comes
        // before `100 Continue` leaves it unsent. (Sized by hand, as ureq
        // sends a reader's body chunked.)
        let mut unsent: &[u8] = if expect { wire } else { &[] };
        CONNECT_FAILED.set(false);
        // `Connection: close` with it: a final answer that comes before `100
        // Continue` (a 417, a 413, a 2xx to the head) is read by ureq 3.5
        // only once more bytes or the connection's end follow it, and a
        // server that keeps the connection open sends neither, so the
        // request waited out its time limit; a server closes after its
        // answer to such a request (RFC 9112, section 9.6).
        let result = if expect {
            req.header("expect", "100-continue")
                .header("connection", "close")
                .header("content-length", wire.len())
                .send(ureq::SendBody::from_reader(&mut unsent))
        } else {
            req.send(wire)
        };
        let went = if unsent.is_empty() {
            BodyOut::Whole
        } else if unsent.len() < wire.len() || CONNECT_FAILED.get() {
            // Not sent for want of a connection: that says nothing of
            // how the collector answers `Expect`.
            BodyOut::Part
        } else {
            BodyOut::Nothing
        };
        self.gz = gz;
        let mut resp = match result {
            Ok(resp) => resp,
            Err(e) => return (Err(transport_failure(e)), went),
        };
        (self.answer_to(&mut resp, gzip), went)
    }

    /// What the collector's answer `resp` to a request (`gzip`: with a
    /// gzip body) says of its events.
    fn answer_to(
        &mut self,
        resp: &mut ureq::http::Response<ureq::Body>,
        gzip: bool,
    ) -> Result<(), Failure> {
        let status = resp.status().as_u16();
        let after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after::parse(v, SystemTime::now()));
        let success = (200..300).contains(&status);
        if status == 415 && gzip {
            let accepted = resp
                .headers()
                .get("accept-encoding")
                .map(|v| accepts_gzip(v.as_bytes()));
            // Turned off once for every lane; said once.
            if accepted == Some(false) && !self.gzip_refused.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    url = %redacted(&self.url),
                    "the collector does not take gzip bodies (415 with Accept-Encoding without gzip): sending them uncompressed"
                );
            }
        }
        // Read the body (bounded) so the connection goes back to the pool;
        // a failure while reading it does not change a 2xx into an error.
        if success && let Some(kept) = &mut self.answer {
            kept.clear();
            let mut body = resp.body_mut().as_reader().take(DRAIN_LIMIT as u64);
            // A failure while reading does not change the 2xx either.
            let _ = body.read_to_end(kept);
            return Ok(());
        }
        let excerpt = drain(resp.body_mut().as_reader(), !success);
        if success {
            return Ok(());
        }
        // A 413 with `Retry-After` says the condition is temporary and when
        // to try again (RFC 9110, section 15.5.14): retried then, whole.
        let retry = matches!(status, 408 | 429)
            || (500..600).contains(&status) && status != 501
            || status == 413 && after.is_some();
        Err(Failure {
            retry,
            after: if retry { after } else { None },
            error: Error::HttpStatus {
                status,
                body: excerpt,
            },
        })
    }
}

/// How much of a request's body went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyOut {
    /// All of it (always so without `Expect`: ureq sends the whole body
    /// before it reads an answer).
    Whole,
    /// None of it, over a connection made: the collector had the head alone.
    Nothing,
    /// Some of it, or none for want of a connection.
    Part,
}

std::thread_local! {
    /// Whether the last connection this thread tried to make failed (set by
    /// [`Connect`], cleared before each request): a request that did not
    /// get its body out for want of a connection says nothing of how the
    /// collector answers `Expect`.
    static CONNECT_FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// ureq's connector, noting in [`CONNECT_FAILED`] whether a connection
/// could be made (ureq connects on the thread that makes the request; a
/// connection taken from the pool is not made again).
#[derive(Debug)]
struct Connect(ureq::unversioned::transport::DefaultConnector);

impl ureq::unversioned::transport::Connector for Connect {
    type Out = Box<dyn ureq::unversioned::transport::Transport>;

    fn connect(
        &self,
        details: &ureq::unversioned::transport::ConnectionDetails<'_>,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let made = self.0.connect(details, chained);
        CONNECT_FAILED.set(!matches!(made, Ok(Some(_))));
        let made = made?;
        Ok(made.map(|inner| {
            let c = details.config;
            Box::new(Informational {
                inner,
                buffers: ureq::unversioned::transport::LazyBuffers::new(
                    c.input_buffer_size(),
                    c.output_buffer_size(),
                ),
                at_start: false,
                held: Vec::new(),
                ready: std::collections::VecDeque::new(),
            }) as Self::Out
        }))
    }
}

/// Most bytes of a possible informational answer's head held back while
/// it arrives: past this, they go to ureq as they are.
const INFORMATIONAL_HEAD_LIMIT: usize = 64 * 1024;

/// A connection that hands ureq each informational (1xx) answer without
/// its header fields: `100 Continue` as its bare status line, any other
/// 1xx (`102 Processing`, `103 Early Hints`) not at all.
///
/// RFC 9110, section 15.2: a client must parse one or more 1xx answers
/// before the final one, even when it expected none, and a 1xx may carry
/// header fields. ureq-proto 0.7 fails a request whose `100 Continue` has
/// a header line ("received headers with 100-continue response": events
/// the collector accepted with the 200 after it failed, every attempt),
/// and, while a request waits for `100 Continue`, takes a 1xx with a header
/// line (a `103 Early Hints` and its `Link`) for the final answer: the body
/// never went, and the request waited out its time limit.
///
/// Only the start of an answer (after the sink wrote to the connection) is
/// looked at; the rest goes through unchanged.
struct Informational {
    inner: Box<dyn ureq::unversioned::transport::Transport>,
    /// What ureq reads and writes.
    buffers: ureq::unversioned::transport::LazyBuffers,
    /// The next bytes read start an answer.
    at_start: bool,
    /// Bytes of an answer's head not yet judged (maybe a 1xx).
    held: Vec<u8>,
    /// Bytes for ureq that did not fit its input buffer yet.
    ready: std::collections::VecDeque<u8>,
}

impl fmt::Debug for Informational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Informational")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The length of the head at the start of `bytes` (through its empty
/// line, CRLF or bare LF), once it is all there.
fn head_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(nl) = bytes.get(at..)?.iter().position(|&b| b == b'\n') {
        let line_end = at + nl + 1;
        match bytes.get(line_end..) {
            Some([b'\n', ..]) => return Some(line_end + 1),
            Some([b'\r', b'\n', ..]) => return Some(line_end + 2),
            _ => at = line_end,
        }
    }
    None
}

impl Informational {
    /// Judges the held bytes while they start an answer: each complete
    /// 1xx head is dropped (`100` kept as its status line alone); a final
    /// answer's status line, or too many bytes, ends the judging.
    fn judge(&mut self, ended: bool) {
        while self.at_start && !self.held.is_empty() {
            let line_end = self.held.iter().position(|&b| b == b'\n');
            let code = |l: &[u8]| -> Option<u16> {
                let digits = l.get(9..12)?;
                (l.starts_with(b"HTTP/1.") && l.get(8) == Some(&b' '))
                    .then(|| std::str::from_utf8(digits).ok()?.parse().ok())
                    .flatten()
            };
            let informational = match line_end {
                Some(end) => code(self.held.get(..end).unwrap_or(&[]))
                    .is_some_and(|c| (100..200).contains(&c) && c != 101),
                // The status line so far could still start a 1xx.
                None => {
                    let so_far = &self.held[..];
                    let maybe = b"HTTP/1.x 1"
                        .iter()
                        .zip(so_far)
                        .all(|(w, g)| w == g || *w == b'x');
                    maybe && !ended && self.held.len() < INFORMATIONAL_HEAD_LIMIT
                }
            };
            if !informational {
                self.at_start = false;
                break;
            }
            let Some(len) = head_len(&self.held) else {
                if ended || self.held.len() >= INFORMATIONAL_HEAD_LIMIT {
                    self.at_start = false;
                }
                break;
            };
            let line = self.held.get(..line_end.unwrap_or(0)).unwrap_or(&[]);
            if code(line) == Some(100) {
                self.ready.extend(line.get(..12).unwrap_or(&[]));
                self.ready.extend(b" Continue\r\n\r\n");
            }
            self.held.drain(..len);
        }
        if !self.at_start {
            self.ready.extend(self.held.drain(..));
        }
    }

    /// Moves ready bytes into ureq's input buffer: how many.
    fn hand_over(&mut self) -> usize {
        use ureq::unversioned::transport::Buffers;
        let free = self.buffers.input_append_buf();
        let n = free.len().min(self.ready.len());
        for (slot, b) in free.iter_mut().zip(self.ready.drain(..n)) {
            *slot = b;
        }
        self.buffers.input_appended(n);
        n
    }
}

impl ureq::unversioned::transport::Transport for Informational {
    fn buffers(&mut self) -> &mut dyn ureq::unversioned::transport::Buffers {
        &mut self.buffers
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<(), ureq::Error> {
        use ureq::unversioned::transport::Buffers;
        // What comes back after this (a request's head or body) starts an answer.
        self.at_start = true;
        let mut from = 0;
        while from < amount {
            let out = self.buffers.output();
            let part = out.get(from..amount).unwrap_or(&[]);
            let dst = self.inner.buffers().output();
            let n = dst.len().min(part.len());
            if n == 0 {
                // No room below (never so with ureq's own transports): an
                // error, not a loop that makes no progress.
                return Err(ureq::Error::Io(std::io::ErrorKind::WriteZero.into()));
            }
            dst[..n].copy_from_slice(&part[..n]);
            self.inner.transmit_output(n, timeout)?;
            from += n;
        }
        Ok(())
    }

    fn await_input(
        &mut self,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<bool, ureq::Error> {
        use ureq::unversioned::transport::time::Duration as Limit;
        let started = std::time::Instant::now();
        loop {
            if !self.ready.is_empty() {
                return Ok(self.hand_over() > 0);
            }
            // What the inner connection read already, else what it reads now
            // (within what is left of `timeout`).
            let mut ended = false;
            if self.inner.buffers().input().is_empty() {
                let mut left = timeout;
                if let Limit::Exact(d) = timeout.after {
                    let rest = d.saturating_sub(started.elapsed());
                    if rest.is_zero() {
                        return Err(ureq::Error::Timeout(timeout.reason));
                    }
                    left.after = Limit::Exact(rest);
                }
                ended = !self.inner.await_input(left)?;
            }
            let input = self.inner.buffers().input();
            let n = input.len();
            if self.at_start {
                self.held.extend_from_slice(input);
            } else {
                self.ready.extend(input);
            }
            self.inner.buffers().input_consume(n);
            self.judge(ended);
            if ended {
                self.ready.extend(self.held.drain(..));
                return Ok(self.hand_over() > 0);
            }
        }
    }

    fn is_open(&mut self) -> bool {
        self.ready.is_empty()
            && self.held.is_empty()
            && self.inner.buffers().input().is_empty()
            && self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// Whether an `Accept-Encoding` value (RFC 9110, section 12.5.3) takes
/// gzip: listed as `gzip` or `x-gzip`, or covered by `*`, with a weight
/// above 0. An empty value takes no coding.
fn accepts_gzip(value: &[u8]) -> bool {
    let text = String::from_utf8_lossy(value);
    let mut named = None;
    let mut any = None;
    for item in text.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        if coding.is_empty() {
            continue;
        }
        // `q=0` (or `0.0`, `0.000`): not acceptable.
        let weight_zero = parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>() == Ok(0.0)
            })
        });
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            named = Some(!weight_zero);
        } else if coding == "*" {
            any = Some(!weight_zero);
        }
    }
    named.or(any).unwrap_or(false)
}

/// Bodies from this size on are sent after the collector says
/// `100 Continue` (`Expect: 100-continue`): 256 KiB.
///
/// A collector that refuses a body as too large answers 413 and closes
/// without reading it (this crate's receiver does, so do others); past what
/// the sockets buffer, the rest of the body then meets a reset, and the 413
/// was lost: the request failed as a connection reset, retried until its
/// attempts ran out, its batch never split. Waiting for `100 Continue`, the
/// 413 comes before the body. A collector that ignores `Expect` costs a
/// wait before each such body (a quarter of the request's time limit, 1 s
/// at most), and one that refuses it (417) gets the body again without it;
/// smaller bodies fit the socket buffers and never wait.
const EXPECT_CONTINUE_FROM: usize = 256 * 1024;

/// Most time an answer's body is read for (it is read to give the
/// connection back, and for an error's excerpt): 250 ms, or the request
/// timeout when that is shorter.
const RECV_BODY_LIMIT: Duration = Duration::from_millis(250);

/// Reads up to [`DRAIN_LIMIT`] bytes of `body`, keeping the first
/// [`EXCERPT_LIMIT`] (when `keep`) as lossy UTF-8 without a cut character,
/// each control character (line breaks, escapes, C1) as a space: the
/// excerpt is the collector's text, and goes into logs and reports.
fn drain(mut body: impl Read, keep: bool) -> String {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut total = 0usize;
    while total < DRAIN_LIMIT {
        match body.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                if keep && head.len() < EXCERPT_LIMIT {
                    let take = n.min(EXCERPT_LIMIT - head.len());
                    head.extend_from_slice(chunk.get(..take).unwrap_or(&[]));
                }
                total += n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if let Err(e) = std::str::from_utf8(&head)
        && e.error_len().is_none()
    {
        // Cut inside a character by the limit: drop its first bytes.
        head.truncate(e.valid_up_to());
    }
    let text: String = String::from_utf8_lossy(&head)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    text.trim().to_owned()
}

/// Classifies an error below the HTTP status level.
fn transport_failure(e: ureq::Error) -> Failure {
    use ureq::Timeout as T;
    let (retry, error) = match e {
        ureq::Error::Timeout(T::Connect | T::Resolve) => (true, Error::Timeout(Phase::Connect)),
        ureq::Error::Timeout(_) => (true, Error::Timeout(Phase::Send)),
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            (true, Error::Timeout(Phase::Send))
        }
        // A request that cannot be made as configured: no retry will help.
        e @ (ureq::Error::Http(_)
        | ureq::Error::BadUri(_)
        | ureq::Error::RequireHttpsOnly(_)
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::BodyExceedsLimit(_)
        | ureq::Error::RedirectFailed
        | ureq::Error::TooManyRedirects
        | ureq::Error::Pem(_)) => (false, Error::Transport(e.to_string())),
        // Connect errors, resets, TLS and protocol failures: maybe next time.
        e => (true, Error::Transport(e.to_string())),
    };
    Failure {
        retry,
        after: None,
        error,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn accept_encoding_takes_gzip_when_listed_or_covered_with_a_weight() {
        for yes in [
            "gzip",
            "identity, GZIP",
            "x-gzip",
            "br;q=1, gzip;q=0.5",
            "*",
            "identity, *;q=0.1",
        ] {
            assert!(super::accepts_gzip(yes.as_bytes()), "{yes}");
        }
        for no in [
            "",
            "identity",
            "br, deflate",
            "gzip;q=0",
            "gzip; q=0.000, identity",
            "*, gzip;q=0",
            "*;q=0",
        ] {
            assert!(!super::accepts_gzip(no.as_bytes()), "{no}");
        }
    }

    use super::*;

    #[test]
    fn build_checks_url_and_headers() {
        for bad in ["", "not a url", "ftp://h/x", "/relative", "http://"] {
            assert!(HttpSink::builder(bad).build().is_err(), "{bad:?}");
        }
        assert!(HttpSink::builder("http://127.0.0.1:1/x").build().is_ok());
        assert!(
            HttpSink::builder("https://collector.example/events")
                .build()
                .is_ok()
        );
        for (n, v) in [
            ("bad name", "v"),
            ("x", "bad\nvalue"),
            ("Content-Type", "x"),
            ("ce-id", "1"),
        ] {
            let r = HttpSink::builder("http://h/").header(n, v).build();
            assert!(
                matches!(r, Err(Error::Io(ref e)) if e.kind() == std::io::ErrorKind::InvalidInput),
                "{n}"
            );
        }
    }

    #[test]
    fn debug_hides_header_values() {
        let s = HttpSink::builder("http://h/").header("Authorization", "Bearer secret");
        assert!(!format!("{s:?}").contains("secret"));
        let s = s.build().unwrap();
        let d = format!("{s:?}");
        assert!(d.contains("authorization") && !d.contains("secret"), "{d}");
    }

    /// A port that is no TCP port (`:99999`, `:abc`) is refused: ureq
    /// reads it as none and connects to the scheme's default port, so the
    /// events went to whatever listens on port 80 (or 443).
    #[test]
    fn a_port_out_of_range_is_refused_not_taken_for_the_default_one() {
        for bad in [
            "http://127.0.0.1:99999/e",
            "http://127.0.0.1:65616/e",
            "http://localhost:abc/e",
            "https://[::1]:70000/e",
            "http://u:p@127.0.0.1:65536/e",
        ] {
            let r = HttpSink::builder(bad).build();
            assert!(
                matches!(r, Err(Error::Io(ref e)) if e.kind() == std::io::ErrorKind::InvalidInput
                    && e.to_string().contains("port")),
                "{bad}: {r:?}"
            );
        }
        for good in [
            "http://127.0.0.1:65535/e",
            "http://127.0.0.1:/e",
            "http://[::1]/e",
            "http://[::1]:8080/e",
            "http://u:p@h:8080/e",
            "https://collector.example",
        ] {
            assert!(HttpSink::builder(good).build().is_ok(), "{good}");
        }
    }

    /// The userinfo of a URL (`http://user:password@host/`) is a credential
    /// ureq sends as `Authorization: Basic`: kept out of `Debug` output and
    /// errors, as header values are.
    #[test]
    fn debug_and_errors_hide_url_credentials() {
        for url in [
            "http://alice:s3cret@collector.example/e",
            "https://s3cret@collector.example:8443/e?q=1",
            "http://alice:s3cret@[::1]:8080",
        ] {
            let b = HttpSink::builder(url).header("Authorization", "Bearer t0ken");
            let d = format!("{b:?}");
            assert!(!d.contains("s3cret") && d.contains("***@"), "{d}");
            let s = b.build().unwrap();
            let d = format!("{s:?}");
            assert!(!d.contains("s3cret") && d.contains("***@"), "{d}");
            // What the caller gave is still what `url` answers.
            assert_eq!(s.url(), url);
            #[cfg(feature = "otlp")]
            {
                let otlp = crate::sink::OtlpSink::builder(url).build().unwrap();
                let d = format!("{otlp:?}");
                assert!(!d.contains("s3cret") && d.contains("***@"), "{d}");
            }
        }
        for bad in [
            "http://alice:s3cret@collector.example:99999/e",
            "ftp://alice:s3cret@collector.example/e",
            "http://alice:s3cret@collector.example/a b",
        ] {
            let e = HttpSink::builder(bad).build().unwrap_err().to_string();
            assert!(
                !e.contains("s3cret") && e.contains("collector.example"),
                "{e}"
            );
        }
        assert_eq!(redacted("http://h/x@y"), "http://h/x@y");
        assert_eq!(redacted("http://a@b@h:1/x"), "http://***@h:1/x");
        assert_eq!(redacted("not a url @ all"), "not a url @ all");
    }

    #[test]
    fn encoding_and_max_batch_follow_the_mode() {
        let s = HttpSink::builder("http://h/").build().unwrap();
        assert_eq!(
            (s.encoding(), s.max_batch(), s.mode()),
            (Encoding::Json, DEFAULT_MAX_BATCH, HttpMode::Structured)
        );
        let s = HttpSink::builder("http://h/")
            .mode(HttpMode::Binary)
            .max_batch(0)
            .build()
            .unwrap();
        assert_eq!((s.encoding(), s.max_batch()), (Encoding::HttpBinary, 1));
        let s = HttpSink::builder("http://h/")
            .mode(HttpMode::Batched)
            .max_batch(7)
            .build()
            .unwrap();
        assert_eq!((s.encoding(), s.max_batch()), (Encoding::Json, 7));
    }

    #[test]
    fn head_len_finds_the_empty_line() {
        assert_eq!(head_len(b"HTTP/1.1 100 Continue\r\n\r\nrest"), Some(25));
        assert_eq!(head_len(b"HTTP/1.1 103 X\nLink: a\n\nrest"), Some(24));
        assert_eq!(head_len(b"HTTP/1.1 103 X\r\nLink: a\r\n"), None);
        assert_eq!(head_len(b""), None);
    }

    #[test]
    fn drain_keeps_a_clean_excerpt() {
        let body = "é".repeat(300); // 600 bytes; byte 200 is a character boundary
        assert_eq!(drain(body.as_bytes(), true).len(), 200);
        let body = format!("x{}", "é".repeat(300)); // byte 200 cuts a character
        let ex = drain(body.as_bytes(), true);
        assert_eq!(ex.len(), 199);
        assert!(!ex.contains('\u{FFFD}'));
        assert_eq!(drain(&b"  bad request \n"[..], true), "bad request");
        assert_eq!(drain(&b"ignored"[..], false), "");
        assert_eq!(drain(&b"a\r\nb\x1b[0m\x00"[..], true), "a  b [0m");
    }
}
