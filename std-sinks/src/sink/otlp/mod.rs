//! OSSA lifecycle events as OpenTelemetry spans, sent with OTLP/HTTP JSON
//! (`POST {endpoint}/v1/traces`, `Content-Type: application/json`) or
//! written to a file, one `ExportTraceServiceRequest` a line.
//!
//! # Spans
//!
//! `workflow.started`/`completed`, `agent.started`/`completed`/`failed`,
//! `turn.started`/`completed` and `tool.called`/`completed`/`failed` pairs
//! become spans named `invoke_workflow {name}`, `invoke_agent {name}`,
//! `chat` and `execute_tool {tool}`, from the started event's `time` to the
//! end event's, status ERROR on `*.failed` and on a `*.completed` whose
//! `data.status` is `"failed"` (message `data.error.message`, `error.type`
//! from `data.error.code`), with the GenAI attributes of the
//! semantic conventions [`SEMCONV_VERSION`] (the mapping table is in the
//! README and in `semconv.rs`, one table).
//!
//! **Ids.** The trace id is `ossatraceid` when it is 32 lowercase hex digits,
//! else the `traceparent`'s; the span id is `ossaspanid` when it is 16 hex
//! digits, else the `traceparent`'s parent id. Ids that are not W3C-shaped
//! are hashed (FNV-1a) into ids of the right size, the same for every event
//! that carries them. A span id another span of the trace went out under
//! already (open, or lately closed: operations one after another under one
//! emitter-wide span id) is replaced by one derived from it, so that span
//! ids stay unique in their trace. A started and an end event pair when
//! they have the same trace id, span id, operation and key member (`workflow_id`,
//! `agent_id`, `turn` or `call_id`), and from agent level down the same
//! `ossaagentid` (two agents that share an emitter-wide context keep their
//! own turn 1). Events with no span id at all (an emitter with no span
//! context) use an id made of the operation and the agent.
//!
//! **Parents.** An event with the extension [`PARENT_EXT`]
//! (`ossaparentspanid`, 16 hex digits) names its span's parent (unless it
//! names the span itself: a span is not its own parent). Otherwise
//! the parent is the innermost span still open in the same trace whose
//! operation encloses this one (workflow ⊃ agent ⊃ turn ⊃ tool call): a tool
//! call's parent is the open turn of the same agent (`ossaagentid`), else
//! that agent's span, else the workflow's; a turn's is its agent's; an
//! agent's is the workflow's. Without one it is a root span. Events are
//! taken in the order they arrive, so the demo run and the firmware run come
//! out as one tree (workflow → agent → turns → tool calls).
//!
//! **Lone events** (`state.updated`, other types, a second started event of
//! an open operation, a second end, an end whose span was evicted): a span event on the open span whose id
//! the event carries, else on the innermost open span of its trace (from
//! agent level down, of the same `ossaagentid` in both cases). With no
//! open span to hold it, a log-like span of its own (zero length, named
//! after the event type, the event as its span event). An end without a
//! start becomes a span of its own, `data.duration_ms` long, marked
//! `ossa.span.incomplete`.
//!
//! **Bounds.** At most [`max_open_spans`](OtlpSinkBuilder::max_open_spans)
//! open spans: a started event past it evicts the oldest open span, which
//! goes out unfinished (`ossa.span.unfinished = "evicted: …"`) and is counted
//! ([`OtlpCounts::evicted`]). At most
//! [`max_span_events`](OtlpSinkBuilder::max_span_events) span events per
//! span: a lone event past it fails for good with that reason.
//!
//! # Delivery
//!
//! Each event is answered on its own, as every sink's are:
//!
//! | event | delivered when | retried / failed |
//! | --- | --- | --- |
//! | started event | the sink holds it in its open-span table (its span goes out later, see below) | — |
//! | lone event on an open span | held in that span, as above | fails when the span has its limit of span events |
//! | end event, lone event without an open span | the request carrying its span was accepted (2xx; or written to the file) | with the request's answer: 429, 502, 503, 504 and transport errors retried (honouring `Retry-After`), other 4xx and 5xx failed (OTLP/HTTP's rule) |
//!
//! A held event's span goes out when its end comes, when it is evicted, or
//! when the sink is dropped (the emitter's shutdown: every open span is sent
//! unfinished, `ossa.span.unfinished = "shutdown: …"`, within
//! [`shutdown_timeout`](OtlpSinkBuilder::shutdown_timeout), retried three
//! times). When a request fails and will be retried, the spans it closed
//! are open again, so the retried end event closes them again; when its end
//! event is never delivered, the span goes out unfinished later. A span
//! holding a delivered started event that cannot be sent (the collector
//! down at shutdown, a request refused for good) is counted in
//! [`OtlpCounts::lost`] and logged: never silently. Retries, backoff and the circuit
//! breaker are the emitter's, as for [`HttpSink`],
//! whose request code, TLS, gzip and headers this sink uses.
//!
//! ```
//! use ossa_events::sink::OtlpSink;
//! use ossa_events::{demo, Emitter, FastIds, SystemClock};
//!
//! // To a file (here, memory): one ExportTraceServiceRequest a line.
//! let sink = OtlpSink::to_writer(std::io::sink()).build()?;
//! let stats = sink.stats();
//! let emitter = Emitter::builder("/ossa/demo").sink(sink).build()?;
//! demo::agent_run("/ossa/demo", &SystemClock, &mut FastIds, |ev| emitter.emit_event(ev))?;
//! let report = emitter.shutdown()?;
//! assert_eq!(report.delivered, demo::EVENT_COUNT as u64);
//! // workflow, agent, 2 turns, 3 tool calls; state.updated is a span event.
//! assert_eq!((stats.get().spans, stats.get().span_events), (7, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod encode;
mod semconv;
mod spans;

pub use semconv::{SCHEMA_URL, SEMCONV_VERSION};
pub use spans::PARENT_EXT;

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ossa_events_core::Scratch;

use crate::errors::{Error, Retry, SendError};
use crate::sink::http::{Failure, HttpSink, HttpSinkBuilder};
use crate::sink::{Encoded, Encoding, SendDeadline, Sink};
use spans::{Fate, Input, Request, Span, Table};

/// Most open spans the sink keeps. 4096.
///
/// ```
/// use ossa_events::sink::otlp::{DEFAULT_MAX_OPEN_SPANS, DEFAULT_MAX_SPAN_EVENTS, DEFAULT_MAX_BATCH};
/// assert_eq!((DEFAULT_MAX_OPEN_SPANS, DEFAULT_MAX_SPAN_EVENTS, DEFAULT_MAX_BATCH), (4096, 128, 512));
/// ```
pub const DEFAULT_MAX_OPEN_SPANS: usize = 4096;
/// Most span events on one span. 128.
pub const DEFAULT_MAX_SPAN_EVENTS: usize = 128;
/// Most events per [`Sink::send`] (so at most this many spans per request,
/// plus unfinished ones). 512.
pub const DEFAULT_MAX_BATCH: usize = 512;
/// How long the sink's drop may take to send the spans still open. 5 s.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(ossa_events::sink::otlp::DEFAULT_SHUTDOWN_TIMEOUT, Duration::from_secs(5));
/// ```
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The `service.name` of the resource. `"ossa-events"`.
///
/// ```
/// assert_eq!(ossa_events::sink::otlp::DEFAULT_SERVICE_NAME, "ossa-events");
/// ```
pub const DEFAULT_SERVICE_NAME: &str = "ossa-events";

/// Attempts at the last request when the sink is dropped.
const DROP_ATTEMPTS: u32 = 3;

/// The OTLP/HTTP traces URL for `endpoint`: as given when it ends in
/// `/v1/traces`, else with `/v1/traces` appended (as the OpenTelemetry
/// exporters do with `OTEL_EXPORTER_OTLP_ENDPOINT`).
///
/// ```
/// use ossa_events::sink::otlp::traces_url;
/// assert_eq!(traces_url("http://127.0.0.1:4318"), "http://127.0.0.1:4318/v1/traces");
/// assert_eq!(traces_url("http://127.0.0.1:4318/"), "http://127.0.0.1:4318/v1/traces");
/// assert_eq!(traces_url("https://c.example/v1/traces"), "https://c.example/v1/traces");
/// ```
pub fn traces_url(endpoint: &str) -> String {
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    }
}

/// Where the requests go.
enum Output {
    Http(Box<HttpSink>),
    /// With whether a failed write may have left a torn line.
    Writer(Box<dyn Write + Send>, bool),
}

/// The OTLP sink: lifecycle events in, spans out. See the [module
/// docs](self) for the mapping, the parent rules and what "delivered" means.
///
/// ```
/// use ossa_events::sink::OtlpSink;
/// use ossa_events::{ossa, Emitter, EventBuilder};
/// let sink = OtlpSink::to_writer(std::io::sink()).build()?;
/// let stats = sink.stats();
/// let emitter = Emitter::builder("/agents/a")
///     .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
///     .span_id("00f067aa0ba902b7")
///     .sink(sink)
///     .build()?;
/// let call = ossa::ToolCalled { tool: "search", call_id: Some("c1"), ..Default::default() };
/// let done = ossa::ToolCompleted { tool: "search", call_id: Some("c1"), ..Default::default() };
/// emitter.emit(EventBuilder::new().ossa(&call))?;
/// emitter.emit(EventBuilder::new().ossa(&done))?;
/// assert_eq!(emitter.shutdown()?.delivered, 2);
/// assert_eq!((stats.get().spans, stats.get().unfinished), (1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OtlpSink {
    out: Output,
    table: Table,
    /// Unfinished spans whose request failed, for the next request.
    pending: Vec<Span>,
    service_name: String,
    max_batch: usize,
    shutdown_timeout: Duration,
    stats: OtlpStats,
    body: Vec<u8>,
    scratch: Vec<u8>,
}

impl fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let out = match &self.out {
            Output::Http(h) => super::http::redacted(h.url()).into_owned(),
            Output::Writer(..) => "writer".into(),
        };
        f.debug_struct("OtlpSink")
            .field("out", &out)
            .field("open_spans", &self.table.len())
            .field("max_open_spans", &self.table.max_open())
            .finish_non_exhaustive()
    }
}

/// Configures an [`OtlpSink`].
///
/// ```
/// use std::time::Duration;
/// use ossa_events::sink::OtlpSink;
/// let sink = OtlpSink::builder("http://127.0.0.1:4318")
///     .header("Authorization", "Bearer TOKEN")
///     .timeout(Duration::from_secs(5))
///     .gzip(true)
///     .service_name("researcher")
///     .max_open_spans(1000)
///     .build()?;
/// # let _ = sink;
/// # Ok::<(), ossa_events::Error>(())
/// ```
pub struct OtlpSinkBuilder {
    http: Option<HttpSinkBuilder>,
    writer: Option<Box<dyn Write + Send>>,
    service_name: String,
    max_open: usize,
    max_events: usize,
    max_batch: usize,
    shutdown_timeout: Duration,
}

impl fmt::Debug for OtlpSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSinkBuilder")
            .field("http", &self.http)
            .field("writer", &self.writer.is_some())
            .field("service_name", &self.service_name)
            .field("max_open", &self.max_open)
            .finish_non_exhaustive()
    }
}

impl OtlpSink {
    /// A sink that posts to the OTLP/HTTP collector at `endpoint` (the
    /// traces URL is [`traces_url`]`(endpoint)`).
    ///
    /// ```
    /// use ossa_events::sink::OtlpSink;
    /// let sink = OtlpSink::builder("http://127.0.0.1:4318").build()?;
    /// assert_eq!(sink.url(), Some("http://127.0.0.1:4318/v1/traces"));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn builder(endpoint: impl AsRef<str>) -> OtlpSinkBuilder {
        let http = HttpSink::builder(traces_url(endpoint.as_ref()));
        OtlpSinkBuilder::new(Some(http), None)
    }

    /// A sink that writes each request to `w` as one line of JSON (the
    /// OpenTelemetry file-exporter format), flushing after each.
    ///
    /// ```
    /// use ossa_events::sink::OtlpSink;
    /// let sink = OtlpSink::to_writer(std::io::sink()).build()?;
    /// assert_eq!(sink.url(), None);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn to_writer(w: impl Write + Send + 'static) -> OtlpSinkBuilder {
        OtlpSinkBuilder::new(None, Some(Box::new(w)))
    }

    /// The traces URL posted to (`None` when writing to a writer).
    ///
    /// ```
    /// use ossa_events::sink::OtlpSink;
    /// let sink = OtlpSink::builder("https://otel.example:4318/").build()?;
    /// assert_eq!(sink.url(), Some("https://otel.example:4318/v1/traces"));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn url(&self) -> Option<&str> {
        match &self.out {
            Output::Http(h) => Some(h.url()),
            Output::Writer(..) => None,
        }
    }

    /// A handle to this sink's span counters, readable after the sink has
    /// moved into an emitter (and after it is dropped).
    ///
    /// ```
    /// use ossa_events::sink::OtlpSink;
    /// let sink = OtlpSink::to_writer(std::io::sink()).build()?;
    /// let stats = sink.stats();
    /// drop(sink);
    /// assert_eq!(stats.get().spans, 0);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn stats(&self) -> OtlpStats {
        self.stats.clone()
    }
}

impl OtlpSinkBuilder {
    fn new(http: Option<HttpSinkBuilder>, writer: Option<Box<dyn Write + Send>>) -> Self {
        OtlpSinkBuilder {
            http: http.map(|h| h.mode(crate::sink::HttpMode::Structured)),
            writer,
            service_name: DEFAULT_SERVICE_NAME.into(),
            max_open: DEFAULT_MAX_OPEN_SPANS,
            max_events: DEFAULT_MAX_SPAN_EVENTS,
            max_batch: DEFAULT_MAX_BATCH,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    fn with_http(mut self, f: impl FnOnce(HttpSinkBuilder) -> HttpSinkBuilder) -> Self {
        self.http = self.http.map(f);
        self
    }

    /// An extra HTTP header on every request (e.g. an API key). Ignored when
    /// writing to a writer. A header the sink sets itself (`Content-Type`…)
    /// fails [`build`](Self::build).
    ///
    /// ```
    /// use ossa_events::sink::OtlpSink;
    /// assert!(OtlpSink::builder("http://127.0.0.1:4318").header("x-api-key", "k").build().is_ok());
    /// assert!(OtlpSink::builder("http://127.0.0.1:4318").header("Content-Type", "x").build().is_err());
    /// ```
    pub fn header(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_http(|h| h.header(name, value))
    }

    /// The time limit of one request. Defaults to
    /// [`http::DEFAULT_TIMEOUT`](crate::sink::http::DEFAULT_TIMEOUT).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::sink::OtlpSink;
    /// let sink = OtlpSink::builder("http://127.0.0.1:4318").timeout(Duration::from_secs(2)).build()?;
    /// # let _ = sink;
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with_http(|h| h.timeout(timeout))
    }

    /// Gzip request bodies (`Content-Encoding: gzip`). Defaults to `false`.
    ///
    /// ```
    /// use ossa_events::sink::OtlpSink;
    /// let sink = OtlpSink::builder("http://127.0.0.1:4318").gzip(true).build()?;
    /// # let _ = sink;
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn gzip(self, gzip: bool) -> Self {
        self.with_http(|h| h.gzip(gzip))
    }

    /// Trust only these PEM root certificates for https. Defaults to the
    /// webpki roots. PEM without a certificate fails [`build`](Self::build).
    ///
    /// ```
    /// use ossa_events::sink::OtlpSink;
    /// let r = OtlpSink::builder("https://otel.example").root_certificates_pem("no PEM here").build();
    /// assert!(r.is_err());
    /// ```
    pub fn root_certificates_pem(self, pem: impl AsRef<[u8]>) -> Self {
        self.with_http(|h| h.root_certificates_pem(pem))
    }

    /// The resource's `service.name`. Defaults to `"ossa-events"`.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex, PoisonError};
    /// use ossa_events::sink::OtlpSink;
    /// use ossa_events::{ossa, Emitter, EventBuilder};
    ///
    /// #[derive(Clone, Default)]
    /// struct Shared(Arc<Mutex<Vec<u8>>>);
    /// impl std::io::Write for Shared {
    ///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
    ///         self.0.lock().unwrap_or_else(PoisonError::into_inner).write(b)
    ///     }
    ///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
    /// }
    /// let out = Shared::default();
    /// let sink = OtlpSink::to_writer(out.clone()).service_name("researcher").build()?;
    /// let emitter = Emitter::builder("/agents/a").sink(sink).build()?;
    /// emitter.emit(EventBuilder::new().ossa(&ossa::StateUpdated { key: "k", ..Default::default() }))?;
    /// emitter.shutdown()?;
    /// let text = String::from_utf8(out.0.lock().unwrap_or_else(PoisonError::into_inner).clone())?;
    /// assert!(text.contains(r#"{"key":"service.name","value":{"stringValue":"researcher"}}"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// Most spans open at once (at least 1); past it the oldest is sent
    /// unfinished. Defaults to [`DEFAULT_MAX_OPEN_SPANS`].
    ///
    /// ```
    /// use ossa_events::sink::OtlpSink;
    /// use ossa_events::{ossa, Emitter, EventBuilder};
    /// let sink = OtlpSink::to_writer(std::io::sink()).max_open_spans(2).build()?;
    /// let stats = sink.stats();
    /// let emitter = Emitter::builder("/agents/a").sink(sink).build()?;
    /// for turn in 1..=5 {
    ///     let p = ossa::TurnStarted { turn, ..Default::default() };
    ///     let span = format!("{turn:016x}");
    ///     emitter.emit(EventBuilder::new().ossa(&p).ossa_trace_id("4bf92f3577b34da6a3ce929d0e0e4736").ossa_span_id(&span))?;
    /// }
    /// assert_eq!(emitter.shutdown()?.delivered, 5);
    /// let c = stats.get();
    /// assert_eq!((c.evicted, c.unfinished), (3, 5)); // 3 made room, 2 left at shutdown
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_open_spans(mut self, n: usize) -> Self {
        self.max_open = n.max(1);
        self
    }

    /// Most span events on one span; a lone event past it fails. Defaults
    /// to [`DEFAULT_MAX_SPAN_EVENTS`].
    ///
    /// ```
    /// use ossa_events::sink::OtlpSink;
    /// use ossa_events::{ossa, Emitter, EventBuilder};
    /// let sink = OtlpSink::to_writer(std::io::sink()).max_span_events(1).build()?;
    /// let emitter = Emitter::builder("/agents/a")
    ///     .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
    ///     .span_id("00f067aa0ba902b7")
    ///     .sink(sink)
    ///     .build()?;
    /// emitter.emit(EventBuilder::new().ossa(&ossa::TurnStarted { turn: 1, ..Default::default() }))?;
    /// for key in ["a", "b"] {
    ///     emitter.emit(EventBuilder::new().ossa(&ossa::StateUpdated { key, ..Default::default() }))?;
    /// }
    /// let m = emitter.shutdown()?;
    /// assert_eq!((m.delivered, m.failed), (2, 1)); // the second state update had no room
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_span_events(mut self, n: usize) -> Self {
        self.max_events = n;
        self
    }

    /// Most events per send. Defaults to [`DEFAULT_MAX_BATCH`].
    ///
    /// ```
    /// use ossa_events::sink::{OtlpSink, Sink};
    /// let sink = OtlpSink::to_writer(std::io::sink()).max_batch(100).build()?;
    /// assert_eq!(sink.max_batch(), 100);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// How long dropping the sink may take to send the spans still open.
    /// Defaults to [`DEFAULT_SHUTDOWN_TIMEOUT`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ossa_events::sink::OtlpSink;
    /// use ossa_events::{ossa, Emitter, EventBuilder};
    /// // A collector nothing listens on: the open span cannot go out.
    /// let sink = OtlpSink::builder("http://127.0.0.1:9")
    ///     .shutdown_timeout(Duration::from_millis(300))
    ///     .build()?;
    /// let stats = sink.stats();
    /// let emitter = Emitter::builder("/agents/a").sink(sink).build()?;
    /// emitter.emit(EventBuilder::new().ossa(&ossa::AgentStarted { agent_id: "a", ..Default::default() }))?;
    /// let t = Instant::now();
    /// emitter.shutdown()?;
    /// assert!(stats.wait_closed(Duration::from_secs(5)));
    /// assert!(t.elapsed() < Duration::from_secs(5));
    /// assert_eq!(stats.get().lost, 1); // counted, and logged
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// The sink; an [`Error::Io`] of kind `InvalidInput` for a bad URL or
    /// header, as [`HttpSinkBuilder::build`] says.
    ///
    /// ```
    /// use ossa_events::sink::OtlpSink;
    /// assert!(OtlpSink::builder("collector:4318").build().is_err());
    /// ```
    pub fn build(self) -> Result<OtlpSink, Error> {
        let out = match (self.http, self.writer) {
            (_, Some(w)) => Output::Writer(w, false),
            (Some(h), None) => {
                let mut h = h.build()?;
                // The 2xx body is read for `partialSuccess`.
                h.answer = Some(Vec::new());
                Output::Http(Box::new(h))
            }
            (None, None) => return Err(Error::Transport("otlp: no output".into())),
        };
        Ok(OtlpSink {
            out,
            table: Table::new(self.max_open, self.max_events),
            pending: Vec::new(),
            service_name: self.service_name,
            max_batch: self.max_batch,
            shutdown_timeout: self.shutdown_timeout,
            stats: OtlpStats::default(),
            body: Vec::new(),
            scratch: Vec::new(),
        })
    }
}

/// A handle to an [`OtlpSink`]'s counters (see [`OtlpSink::stats`]).
///
/// ```
/// use ossa_events::sink::OtlpSink;
/// let stats = OtlpSink::to_writer(std::io::sink()).build()?.stats();
/// let c = stats.get();
/// assert_eq!((c.requests, c.spans, c.lost), (0, 0, 0));
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct OtlpStats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    requests_failed: AtomicU64,
    spans: AtomicU64,
    span_events: AtomicU64,
    unfinished: AtomicU64,
    evicted: AtomicU64,
    lost: AtomicU64,
    open: AtomicU64,
    /// Set when the sink has been dropped and its last request is over.
    closed: Mutex<bool>,
    closed_cv: Condvar,
}

/// What an [`OtlpSink`] has done so far.
///
/// ```
/// use ossa_events::sink::otlp::OtlpCounts;
/// assert_eq!(OtlpCounts::default().unfinished, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OtlpCounts {
    /// Requests accepted by the collector (or written).
    pub requests: u64,
    /// Requests that failed (each retry counts).
    pub requests_failed: u64,
    /// Spans accepted, finished and unfinished ones.
    pub spans: u64,
    /// Span events in accepted spans.
    pub span_events: u64,
    /// Of `spans`, those sent without their end event (evicted, or open at shutdown).
    pub unfinished: u64,
    /// Spans evicted from the full open-span table.
    pub evicted: u64,
    /// Spans holding a delivered started event that could not be sent:
    /// unfinished ones not sent at shutdown or past the waiting bound, and
    /// spans of a request the collector refused for good (its end events
    /// are reported failed), and those a collector's 200 said it rejected
    /// (`partialSuccess.rejectedSpans`; which ones it does not say, so
    /// their events stay delivered).
    pub lost: u64,
    /// Spans open now.
    pub open: u64,
}

impl OtlpStats {
    /// The counts now (see [`OtlpStats`] for an example).
    pub fn get(&self) -> OtlpCounts {
        let c = &self.0;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OtlpCounts {
            requests: l(&c.requests),
            requests_failed: l(&c.requests_failed),
            spans: l(&c.spans),
            span_events: l(&c.span_events),
            unfinished: l(&c.unfinished),
            evicted: l(&c.evicted),
            lost: l(&c.lost),
            open: l(&c.open),
        }
    }

    /// Waits until the sink has been dropped and has sent (or given up on)
    /// its open spans, at most `limit`; whether it has. The emitter drops its
    /// sink after its last event has ended, so the counts are final only then.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::sink::OtlpSink;
    /// let sink = OtlpSink::to_writer(std::io::sink()).build()?;
    /// let stats = sink.stats();
    /// assert!(!stats.wait_closed(Duration::ZERO));
    /// drop(sink);
    /// assert!(stats.wait_closed(Duration::from_secs(1)));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn wait_closed(&self, limit: Duration) -> bool {
        let until = Instant::now().checked_add(limit);
        let mut closed = self.0.closed.lock().unwrap_or_else(PoisonError::into_inner);
        while !*closed {
            let left = until.map_or(Duration::from_secs(3600), |u| {
                u.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return false;
            }
            closed = self
                .0
                .closed_cv
                .wait_timeout(closed, left)
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
        true
    }

    fn set_closed(&self) {
        *self.0.closed.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.0.closed_cv.notify_all();
    }

    fn add(a: &AtomicU64, n: usize) {
        a.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn accepted<'s>(&self, spans: impl Iterator<Item = &'s Span>) {
        Self::add(&self.0.requests, 1);
        for s in spans {
            Self::add(&self.0.spans, 1);
            Self::add(&self.0.span_events, s.event_count());
            if s.is_unfinished() {
                Self::add(&self.0.unfinished, 1);
            }
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A copy of `e` for one more event's answer.
fn dup(e: &Error) -> Error {
    match e {
        Error::HttpStatus { status, body } => Error::HttpStatus {
            status: *status,
            body: body.clone(),
        },
        Error::Timeout(p) => Error::Timeout(*p),
        Error::Io(io) => Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        // Its text as it is: wrapped (below), it read "transport: transport: …".
        Error::Transport(s) => Error::Transport(s.clone()),
        other => Error::Transport(other.to_string()),
    }
}

impl OtlpSink {
    /// Sends one request body through the output.
    fn deliver(&mut self, deadline: SendDeadline<'_>) -> Result<(), Failure> {
        match &mut self.out {
            Output::Http(h) => h
                .post(&self.body, Some("application/json"), None, deadline)
                .map_err(otlp_retry),
            Output::Writer(w, torn) => {
                // After a failed write, end the line it may have torn, so
                // that the request goes on a line of its own.
                self.body.push(b'\n');
                let r = (if *torn { w.write_all(b"\n") } else { Ok(()) })
                    .and_then(|()| w.write_all(&self.body))
                    .and_then(|()| w.flush());
                self.body.pop();
                *torn = r.is_err();
                r.map_err(|e| Failure {
                    retry: e.kind() != std::io::ErrorKind::BrokenPipe,
                    after: None,
                    error: Error::Io(e),
                })
            }
        }
    }

    /// Reads the `partialSuccess` of the last accepted request's answer
    /// (OTLP/HTTP: a 200 for a request taken in part says how many spans
    /// it rejected; not to be retried): those spans are counted lost (of
    /// the `sent` the request carried) and logged, not dropped silently.
    /// Which ones the answer does not say, so their events stay delivered.
    fn partial_success(&mut self, sent: usize) {
        let Output::Http(h) = &mut self.out else {
            return;
        };
        let Some(body) = h.answer.as_mut() else {
            return;
        };
        let answer = std::mem::take(body);
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&answer) else {
            return;
        };
        let Some(p) = v.get("partialSuccess").or_else(|| v.get("partial_success")) else {
            return;
        };
        // An int64: a string in OTLP JSON, a number from some collectors.
        let rejected = p
            .get("rejectedSpans")
            .or_else(|| p.get("rejected_spans"))
            .and_then(|r| r.as_u64().or_else(|| r.as_str()?.parse().ok()))
            .unwrap_or(0);
        let message = p
            .get("errorMessage")
            .or_else(|| p.get("error_message"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        if rejected > 0 {
            let n = usize::try_from(rejected).unwrap_or(usize::MAX).min(sent);
            OtlpStats::add(&self.stats.0.lost, n);
            tracing::error!(
                spans = n,
                message,
                "otlp: spans rejected by the collector (partial success)"
            );
        } else if !message.is_empty() {
            tracing::warn!(message, "otlp: collector warning (partial success)");
        }
        *body = answer;
    }

    fn encode(&mut self, req: &Request) {
        self.body.clear();
        let spans = req
            .spans
            .iter()
            .map(|(s, _)| s)
            .chain(req.unfinished.iter());
        encode::write_request(&mut self.body, &self.service_name, spans);
    }

    /// Puts unfinished spans aside for the next request (bounded like the
    /// table; past it they are lost, counted).
    fn keep_pending(&mut self, spans: Vec<Span>) {
        for s in spans {
            if self.pending.len() >= self.table.max_open() {
                OtlpStats::add(&self.stats.0.lost, 1);
                tracing::error!("otlp: unfinished span dropped: too many waiting");
            } else {
                self.pending.push(s);
            }
        }
    }

    fn send_checked(
        &mut self,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<(), SendError> {
        let now = now_ns();
        let mut req = Request::default();
        req.unfinished.append(&mut self.pending);
        let evicted_before = req.unfinished.len();
        let mut refused: Vec<(usize, String)> = Vec::new();
        let mut scratch = std::mem::take(&mut self.scratch);
        for (i, e) in events.iter().enumerate() {
            if e.encoding() != Encoding::Json {
                refused.push((i, format!("otlp: event {:?} is not JSON-encoded", e.id())));
                continue;
            }
            scratch.clear();
            scratch.resize(e.json().len(), 0);
            let mut sc = Scratch::new(&mut scratch);
            let fate = match ossa_events_core::parse::json::parse_event(e.json(), &mut sc) {
                Ok(ev) => self.table.apply(&Input::new(&ev, now), i, &mut req),
                Err(err) => {
                    Fate::Refused(format!("otlp: event {:?} cannot be read: {err}", e.id()))
                }
            };
            if let Fate::Refused(why) = fate {
                refused.push((i, why));
            }
        }
        self.scratch = scratch;
        let evicted = req.unfinished.len() - evicted_before;
        OtlpStats::add(&self.stats.0.evicted, evicted);
        let mut answer: Option<SendError> = None;
        let mut add = |e: SendError| {
            answer = Some(match answer.take() {
                Some(a) => a.merge(e),
                None => e,
            });
        };
        for (i, why) in refused {
            add(SendError::fatal_at(i..i + 1, Error::Encode(why)));
        }
        if !req.is_empty() {
            self.encode(&req);
            crate::sink::writer::trim(&mut self.scratch);
            match self.deliver(deadline) {
                Ok(()) => {
                    let spans = req.spans.iter().map(|(s, _)| s);
                    self.stats.accepted(spans.chain(req.unfinished.iter()));
                    self.partial_success(req.spans.len() + req.unfinished.len());
                }
                Err(f) => {
                    OtlpStats::add(&self.stats.0.requests_failed, 1);
                    let retry = if f.retry {
                        Retry::Yes { after: f.after }
                    } else {
                        Retry::No
                    };
                    for (_, pos) in &req.spans {
                        add(SendError::at(*pos..*pos + 1, retry, dup(&f.error)));
                    }
                    if f.retry {
                        let mut evicted = Vec::new();
                        for (s, _) in req.spans {
                            self.table.reopen(s, &mut evicted);
                        }
                        OtlpStats::add(&self.stats.0.evicted, evicted.len());
                        evicted.extend(req.unfinished);
                        self.keep_pending(evicted);
                    } else {
                        // Refused for good: the end events fail (reported);
                        // the started events inside were delivered already.
                        let lost = req.unfinished.len()
                            + req
                                .spans
                                .iter()
                                .filter(|(s, _)| s.holds_delivered())
                                .count();
                        if lost > 0 {
                            OtlpStats::add(&self.stats.0.lost, lost);
                            tracing::error!(spans = lost, error = %f.error, "otlp: spans refused by the collector");
                        }
                    }
                }
            }
            crate::sink::writer::trim(&mut self.body);
        }
        OtlpStats::add_set(&self.stats.0.open, self.table.len());
        answer.map_or(Ok(()), Err)
    }

    /// The last request(s): every open and waiting span, unfinished.
    fn close(&mut self) {
        let mut spans = std::mem::take(&mut self.pending);
        spans.extend(self.table.drain_unfinished(now_ns()));
        OtlpStats::add_set(&self.stats.0.open, 0);
        if spans.is_empty() {
            return;
        }
        // `None`: a timeout past what an `Instant` holds, i.e. no limit
        // (`Instant + Duration::MAX` panicked here, in `Drop`).
        let until = Instant::now().checked_add(self.shutdown_timeout);
        let deadline = until.map_or(SendDeadline::NONE, SendDeadline::at);
        let mut rest = spans;
        while !rest.is_empty() {
            let n = rest.len().min(self.max_batch);
            let chunk = Request {
                spans: Vec::new(),
                unfinished: rest.drain(..n).collect(),
            };
            self.encode(&chunk);
            let mut attempt = 0;
            loop {
                match self.deliver(deadline) {
                    Ok(()) => {
                        self.stats.accepted(chunk.unfinished.iter());
                        self.partial_success(chunk.unfinished.len());
                        break;
                    }
                    Err(f) => {
                        OtlpStats::add(&self.stats.0.requests_failed, 1);
                        attempt += 1;
                        let wait = f
                            .after
                            .unwrap_or(Duration::from_millis(100 << attempt))
                            .min(Duration::from_secs(2));
                        let in_time = until.is_none_or(|u| Instant::now() + wait < u);
                        if f.retry && attempt < DROP_ATTEMPTS && in_time {
                            std::thread::sleep(wait);
                            continue;
                        }
                        OtlpStats::add(&self.stats.0.lost, chunk.unfinished.len());
                        tracing::error!(spans = chunk.unfinished.len(), error = %f.error, "otlp: unfinished spans not sent at shutdown");
                        break;
                    }
                }
            }
        }
    }
}

impl OtlpStats {
    fn add_set(a: &AtomicU64, n: usize) {
        a.store(n as u64, Ordering::Relaxed);
    }
}

impl Sink for OtlpSink {
    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        self.send_by(events, SendDeadline::NONE)
    }

    fn send_by(&mut self, events: &[Encoded], deadline: SendDeadline<'_>) -> Result<(), SendError> {
        self.send_checked(events, deadline)
    }
}

impl Drop for OtlpSink {
    /// Sends every span still open as unfinished, within the shutdown timeout.
    fn drop(&mut self) {
        self.close();
        self.stats.set_closed();
    }
}

/// OTLP/HTTP's retry rule (opentelemetry-proto `docs/specification.md`,
/// "Failures"): of the statuses, only 429, 502, 503 and 504 are retried;
/// "all other 4xx or 5xx response status codes MUST NOT be retried" (so
/// not 408 or 500, which `HttpSink` retries for CloudEvents collectors).
/// Errors without a status (connect, timeout, reset) stay retryable.
fn otlp_retry(mut f: Failure) -> Failure {
    if let Error::HttpStatus { status, .. } = &f.error
        && !matches!(status, 429 | 502 | 503 | 504)
    {
        f.retry = false;
    }
    f
}
