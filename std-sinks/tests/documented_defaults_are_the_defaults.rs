//! What the README's configuration tables and the rustdoc promise about
//! defaults and counters, checked against the code: each documented default
//! is the constant, the constant is what a builder starts with, and the
//! counters mean what `Metrics` says they mean.
//!
//! One table per area. A row names the README text it holds to (found
//! verbatim in the workspace README) and the value the code has; a changed
//! default then fails here until the README says the new one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ossa_events::receiver::{self, ReceiverConfig};
use ossa_events::schema::HttpRegistry;
use ossa_events::sink::otlp::{self, OtlpSink};
use ossa_events::sink::{Encoded, HttpSink, Sink, http};
use ossa_events::spool::{self, SpoolConfig, SyncPolicy, WhenFull};
use ossa_events::{
    BreakerConfig, Emitter, EmitterBuilder, Error, EventBuilder, Retry, RetryPolicy, SendError,
};

/// The workspace README (users read it first; it is the crate's docs too).
fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `10000` as the README writes it: `10 000`.
fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A duration as the README writes it: `100 ms`, `1 s`.
fn dur(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{} s", count(d.as_secs()))
    }
}

/// Whole minutes as the README writes them: `5 min`.
fn mins(d: Duration) -> String {
    assert!(
        d.as_secs().is_multiple_of(60),
        "{d:?} is no whole number of minutes"
    );
    format!("{} min", d.as_secs() / 60)
}

/// Bytes as the README writes them: `8 KiB`, `16 MiB`, `1 GiB`.
fn bytes(b: u64) -> String {
    for (unit, name) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if b >= unit && b.is_multiple_of(unit) {
            return format!("{} {name}", b / unit);
        }
    }
    format!("{b} B")
}

/// Every row's README text is in the README.
fn assert_rows(area: &str, rows: &[String]) {
    let text = readme();
    // The README wraps prose at any space: compare with single spaces.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let missing: Vec<&String> = rows.iter().filter(|r| !flat.contains(r.as_str())).collect();
    assert!(
        missing.is_empty(),
        "{area}: the README does not say what the code does: {missing:#?}"
    );
}

#[test]
fn emitter_builder_defaults() {
    type B = EmitterBuilder;
    let r = RetryPolicy::default();
    let b = BreakerConfig::default();
    assert_rows(
        "Emitter::builder",
        &[
            format!("| `batch_size(n)` | {} |", B::DEFAULT_BATCH_SIZE),
            format!(
                "| `flush_interval(d)` | {} |",
                dur(B::DEFAULT_FLUSH_INTERVAL)
            ),
            format!(
                "| `queue_capacity(n)` / `queue_bytes(b)` | {} events / {} |",
                count(B::DEFAULT_QUEUE_EVENTS as u64),
                bytes(B::DEFAULT_QUEUE_BYTES as u64)
            ),
            "| `overflow(o)` | `Overflow::DropNewest` |".into(),
            format!(
                "| `retry(RetryPolicy)` | {} attempts, {} base, {} cap, `Retry-After` up to {} |",
                r.attempts(),
                dur(RetryPolicy::DEFAULT_BASE),
                dur(RetryPolicy::DEFAULT_CAP),
                dur(RetryPolicy::DEFAULT_RETRY_AFTER_CAP)
            ),
            format!(
                "| `circuit_breaker(BreakerConfig)` | opens after {} failures, {} doubling to {} |",
                BreakerConfig::DEFAULT_THRESHOLD,
                dur(BreakerConfig::DEFAULT_OPEN_FOR),
                dur(BreakerConfig::DEFAULT_MAX_OPEN_FOR)
            ),
            format!(
                "| `flush_timeout(d)` / `shutdown_timeout(d)` | {} / {} |",
                dur(B::DEFAULT_FLUSH_TIMEOUT),
                dur(B::DEFAULT_SHUTDOWN_TIMEOUT)
            ),
        ],
    );
    // The constants are what a builder starts with.
    let debug = format!("{:?}", Emitter::builder("/a"));
    for field in [
        format!("batch_size: {}", B::DEFAULT_BATCH_SIZE),
        format!("flush_interval: {:?}", B::DEFAULT_FLUSH_INTERVAL),
        format!("queue_events: {}", B::DEFAULT_QUEUE_EVENTS),
        format!("queue_bytes: {}", B::DEFAULT_QUEUE_BYTES),
        "overflow: DropNewest".into(),
    ] {
        assert!(debug.contains(&field), "{field} not in {debug}");
    }
    // The retry policy's numbers, as its backoff applies them: the wait is
    // the random draw modulo (bound + 1 ns), so a draw of the bound itself
    // waits the bound, one more waits nothing.
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap();
    let (base, cap) = (RetryPolicy::DEFAULT_BASE, RetryPolicy::DEFAULT_CAP);
    assert_eq!(r.attempts(), RetryPolicy::DEFAULT_MAX_ATTEMPTS);
    assert_eq!(r.backoff(1, None, nanos(base)), base);
    assert_eq!(r.backoff(1, None, nanos(base) + 1), Duration::ZERO);
    assert_eq!(r.backoff(2, None, nanos(2 * base)), 2 * base);
    assert_eq!(r.backoff(64, None, nanos(cap)), cap);
    assert_eq!(r.backoff(64, None, nanos(cap) + 1), Duration::ZERO);
    let hour = Some(Duration::from_secs(3600));
    assert_eq!(r.backoff(1, hour, 0), RetryPolicy::DEFAULT_RETRY_AFTER_CAP);
    assert_eq!(
        b,
        BreakerConfig::default()
            .threshold(BreakerConfig::DEFAULT_THRESHOLD)
            .open_for(BreakerConfig::DEFAULT_OPEN_FOR)
            .max_open_for(BreakerConfig::DEFAULT_MAX_OPEN_FOR)
    );
}

#[test]
fn spool_defaults() {
    assert_rows(
        "SpoolConfig",
        &[
            format!("| `max_bytes(b)` | {} |", bytes(spool::DEFAULT_MAX_BYTES)),
            "| `when_full(WhenFull)` | `DropOldest` | at the cap:".into(),
            "| `sync(SyncPolicy)` | `Every(100 ms)` |".into(),
            format!(
                "| `segment_bytes(b)` | {} |",
                bytes(spool::DEFAULT_SEGMENT_BYTES)
            ),
            "| `mapped(bool)` | off |".into(),
        ],
    );
    assert_eq!(
        spool::DEFAULT_SYNC,
        SyncPolicy::Every(Duration::from_millis(100))
    );
    let dir = std::env::temp_dir();
    assert_eq!(
        SpoolConfig::new(&dir),
        SpoolConfig::new(&dir)
            .max_bytes(spool::DEFAULT_MAX_BYTES)
            .segment_bytes(spool::DEFAULT_SEGMENT_BYTES)
            .sync(spool::DEFAULT_SYNC)
            .when_full(WhenFull::DropOldest)
            .mapped(false)
    );
}

#[test]
fn http_sink_defaults() {
    assert_rows(
        "HttpSink::builder",
        &[
            "| `mode(HttpMode)` | `Structured` |".into(),
            format!(
                "pass {}, `HTTP_BINARY_HEADERS_MAX`",
                bytes(ossa_events::sink::HTTP_BINARY_HEADERS_MAX as u64)
            ),
            format!(
                "| `max_batch(n)` | {} | most events per batched request",
                http::DEFAULT_MAX_BATCH
            ),
            format!(
                "| `pipeline(n)` | {} | requests in flight at once (up to {})",
                http::DEFAULT_PIPELINE,
                http::MAX_PIPELINE
            ),
            format!("| `timeout(d)` | {} |", dur(http::DEFAULT_TIMEOUT)),
            "| `gzip(bool)` | off |".into(),
        ],
    );
    let b = HttpSink::builder("http://127.0.0.1:9/");
    let debug = format!("{b:?}");
    for field in [
        format!("mode: {:?}", http::DEFAULT_MODE),
        format!("timeout: {:?}", http::DEFAULT_TIMEOUT),
        "gzip: false".into(),
    ] {
        assert!(debug.contains(&field), "{field} not in {debug}");
    }
    let sink = b.build().unwrap();
    assert_eq!(Sink::max_batch(&sink), http::DEFAULT_MAX_BATCH);
    assert_eq!(Sink::pipeline(&sink), http::DEFAULT_PIPELINE);
    let most = HttpSink::builder("http://127.0.0.1:9/")
        .pipeline(usize::MAX)
        .build()
        .unwrap();
    assert_eq!(Sink::pipeline(&most), http::MAX_PIPELINE);
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_sink_defaults() {
    use ossa_events::sink::kafka;
    assert_rows(
        "KafkaSink::builder",
        &[
            "| `mode(KafkaMode)` | `Binary` |".into(),
            format!("| `client_id(id)` | `{}` |", kafka::DEFAULT_CLIENT_ID),
            format!(
                "| `delivery_timeout(d)` | {} |",
                dur(kafka::DEFAULT_DELIVERY_TIMEOUT)
            ),
            format!(
                "| `max_batch(n)` | {} |",
                count(kafka::DEFAULT_MAX_BATCH as u64)
            ),
            format!("| `pipeline(n)` | {} |", kafka::DEFAULT_PIPELINE),
        ],
    );
    let sink = ossa_events::sink::KafkaSink::builder("127.0.0.1:9", "t")
        .build()
        .unwrap();
    assert_eq!(Sink::max_batch(&sink), kafka::DEFAULT_MAX_BATCH);
    assert_eq!(Sink::pipeline(&sink), kafka::DEFAULT_PIPELINE);
}

#[test]
fn otlp_sink_defaults() {
    assert_rows(
        "OtlpSink::builder",
        &[
            format!("| `service_name(s)` | `{}` |", otlp::DEFAULT_SERVICE_NAME),
            format!(
                "| `max_open_spans(n)` | {} |",
                count(otlp::DEFAULT_MAX_OPEN_SPANS as u64)
            ),
            format!(
                "| `max_span_events(n)` | {} |",
                otlp::DEFAULT_MAX_SPAN_EVENTS
            ),
            format!("| `max_batch(n)` | {} |", otlp::DEFAULT_MAX_BATCH),
            format!(
                "| `shutdown_timeout(d)` | {} |",
                dur(otlp::DEFAULT_SHUTDOWN_TIMEOUT)
            ),
            format!(
                "At most `max_open_spans` ({}) open spans",
                count(otlp::DEFAULT_MAX_OPEN_SPANS as u64)
            ),
            format!(
                "At most `max_span_events` ({}) span events per span",
                otlp::DEFAULT_MAX_SPAN_EVENTS
            ),
        ],
    );
    let b = OtlpSink::builder("http://127.0.0.1:9");
    let debug = format!("{b:?}");
    for field in [
        format!("timeout: {:?}", http::DEFAULT_TIMEOUT),
        "gzip: false".into(),
        format!("service_name: {:?}", otlp::DEFAULT_SERVICE_NAME),
        format!("max_open: {}", otlp::DEFAULT_MAX_OPEN_SPANS),
    ] {
        assert!(debug.contains(&field), "{field} not in {debug}");
    }
    let sink = b.build().unwrap();
    assert_eq!(Sink::max_batch(&sink), otlp::DEFAULT_MAX_BATCH);
}

#[test]
fn schema_registry_defaults() {
    assert_rows(
        "HttpRegistry",
        &[
            format!(
                "refreshed in the background every {} (`refresh`), each fetch within {} (`timeout`), bodies ≤ {}; at most {} types and URIs kept (`max_schemas`",
                mins(HttpRegistry::DEFAULT_REFRESH),
                dur(HttpRegistry::DEFAULT_TIMEOUT),
                bytes(HttpRegistry::MAX_SCHEMA_BYTES),
                count(HttpRegistry::DEFAULT_MAX_SCHEMAS as u64)
            ),
            format!(
                "A failed fetch is tried again after {} (`retry_after`)",
                dur(HttpRegistry::DEFAULT_RETRY_AFTER)
            ),
        ],
    );
    let debug = format!("{:?}", HttpRegistry::new("http://127.0.0.1:9"));
    for field in [
        format!("timeout: {:?}", HttpRegistry::DEFAULT_TIMEOUT),
        format!("refresh: {:?}", HttpRegistry::DEFAULT_REFRESH),
        format!("retry_after: {:?}", HttpRegistry::DEFAULT_RETRY_AFTER),
    ] {
        assert!(debug.contains(&field), "{field} not in {debug}");
    }
}

#[test]
fn receiver_and_core_limits() {
    assert_rows(
        "receiver, listen and the core",
        &[
            format!(
                "at `--max-connections` ({}) the connection idle the longest is closed",
                count(receiver::DEFAULT_MAX_CONNECTIONS as u64)
            ),
            format!(
                "{} per address",
                count(receiver::DEFAULT_MAX_CONNECTIONS_PER_PEER as u64)
            ),
            format!(
                "finishes the requests in progress (for up to {})",
                dur(receiver::DEFAULT_SHUTDOWN_TIMEOUT)
            ),
            format!(
                "(`MAX_DATA_DEPTH` = {})",
                ossa_events::event::MAX_DATA_DEPTH
            ),
            format!("and up to {} extensions", ossa_events::attr::MAX_EXTENSIONS),
        ],
    );
    let c = ReceiverConfig::new();
    assert_eq!(c.get_max_connections(), receiver::DEFAULT_MAX_CONNECTIONS);
    assert_eq!(
        c.get_max_connections_per_peer(),
        receiver::DEFAULT_MAX_CONNECTIONS_PER_PEER
    );
    assert_eq!(c.get_shutdown_timeout(), receiver::DEFAULT_SHUTDOWN_TIMEOUT);
    assert_eq!(c.get_max_body_bytes(), receiver::DEFAULT_MAX_BODY_BYTES);
}

/// A sink that answers from a script, one answer per call, and records
/// how many events each call was handed.
#[derive(Clone, Default)]
struct Scripted {
    calls: Arc<Mutex<Vec<usize>>>,
    /// For call `i`: the positions to answer "retry" for (none: all delivered).
    retry: Arc<Mutex<Vec<std::ops::Range<usize>>>>,
    wire: Arc<AtomicUsize>,
}

impl Sink for Scripted {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let i = calls.len();
        calls.push(events.len());
        let script = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
        match script.get(i).filter(|r| !r.is_empty()) {
            Some(r) => {
                let delivered: usize = events
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| !r.contains(j))
                    .map(|(_, e)| e.wire_len())
                    .sum();
                self.wire.fetch_add(delivered, Ordering::Relaxed);
                Err(SendError::at(
                    r.clone(),
                    Retry::LATER,
                    Error::Transport("scripted".into()),
                ))
            }
            None => {
                let all: usize = events.iter().map(Encoded::wire_len).sum();
                self.wire.fetch_add(all, Ordering::Relaxed);
                Ok(())
            }
        }
    }
}

/// `Metrics::retried` ("an event retried twice counts twice"),
/// `Metrics::batches` ("sink calls that delivered at least one event") and
/// `Metrics::bytes` ("bytes of events delivered, in their wire form").
#[test]
fn counters_mean_what_metrics_says() {
    let sink = Scripted::default();
    // Call 0: of 3 events, the 2nd and 3rd to retry. Call 1: the 3rd again.
    // Call 2: delivered.
    *sink.retry.lock().unwrap() = vec![1..3, 1..2, 0..0];
    let em = Emitter::builder("/a")
        .sink(sink.clone())
        .batch_size(3)
        .flush_interval(Duration::from_secs(60))
        .retry(RetryPolicy::default().base(Duration::from_millis(1)))
        .build()
        .unwrap();
    for _ in 0..3 {
        em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
    }
    let r = em.flush_within(Duration::from_secs(10)).unwrap();
    assert_eq!((r.delivered, r.failed), (3, 0));
    let m = em.metrics();
    assert_eq!(*sink.calls.lock().unwrap(), [3, 2, 1]);
    // Two events sent again, then one of them again: three retries.
    assert_eq!(m.retried, 3);
    // Every call delivered at least one event.
    assert_eq!(m.batches, 3);
    assert_eq!(m.bytes, sink.wire.load(Ordering::Relaxed) as u64);
}

/// "10 attempts" (the first included): an event a sink always answers
/// "retry" for is sent ten times, retried nine, then failed.
#[test]
fn default_attempts_are_ten() {
    let sink = Scripted::default();
    *sink.retry.lock().unwrap() = vec![0..1; 100];
    let em = Emitter::builder("/a")
        .sink(sink.clone())
        .retry(
            RetryPolicy::default()
                .base(Duration::from_millis(1))
                .cap(Duration::from_millis(1)),
        )
        .circuit_breaker(BreakerConfig::default().threshold(u32::MAX))
        .build()
        .unwrap();
    em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
    let r = em.flush_within(Duration::from_secs(10)).unwrap();
    assert_eq!((r.delivered, r.failed), (0, 1));
    let sends = sink.calls.lock().unwrap().len() as u32;
    assert_eq!(sends, RetryPolicy::DEFAULT_MAX_ATTEMPTS);
    assert_eq!(
        em.metrics().retried,
        u64::from(RetryPolicy::DEFAULT_MAX_ATTEMPTS - 1)
    );
}

/// "opens after 5 failures": five failed attempts in a row, and the next
/// batch is not sent until the breaker's open time has passed.
#[test]
fn default_breaker_opens_after_five_failures() {
    let sink = Scripted::default();
    *sink.retry.lock().unwrap() = vec![0..1; 100];
    let em = Emitter::builder("/a")
        .sink(sink.clone())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    for i in 0..BreakerConfig::DEFAULT_THRESHOLD as usize {
        em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
        em.flush_within(Duration::from_secs(10)).unwrap();
        assert_eq!(sink.calls.lock().unwrap().len(), i + 1);
    }
    em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
    // Open for 5 s: this flush times out with nothing sent.
    assert!(em.flush_within(Duration::from_millis(300)).is_err());
    assert_eq!(
        sink.calls.lock().unwrap().len(),
        BreakerConfig::DEFAULT_THRESHOLD as usize
    );
    // "an open breaker that would end after [shutdown's deadline] gives up
    // at once": the event ends shutdown-timeout, without waiting the 1 s.
    let t = std::time::Instant::now();
    let report = em.shutdown_within(Duration::from_secs(1)).unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!((report.delivered, report.shutdown_timeout), (0, 1));
}

/// The spool's cap is `max_bytes` raised to two segments
/// (`SpoolConfig::max_bytes`): an event over `max_bytes` but within that
/// is taken; one over the raised cap is refused at once, `SpoolFull`.
#[test]
fn spool_cap_is_max_bytes_raised_to_two_segments() {
    let dir = std::env::temp_dir().join(format!("ossa-claims-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let segment = 64 * 1024;
    let em = Emitter::builder("/a")
        .sink(ossa_events::sink::NullSink::new())
        .spool(
            SpoolConfig::new(&dir)
                .max_bytes(1024)
                .segment_bytes(segment),
        )
        .build()
        .unwrap();
    let data = |n: usize| format!("\"{}\"", "x".repeat(n));
    // Over `max_bytes`, within two segments: taken.
    em.emit(EventBuilder::new().ty("t").data_json(&data(4096)))
        .unwrap();
    // Over two segments: refused at once.
    let big = em.emit(
        EventBuilder::new()
            .ty("t")
            .data_json(&data(2 * segment as usize)),
    );
    assert!(matches!(big, Err(Error::SpoolFull)), "{big:?}");
    let r = em.shutdown_within(Duration::from_secs(10)).unwrap();
    assert_eq!(r.delivered, 1);
    drop(em);
    let _ = std::fs::remove_dir_all(&dir);
}
