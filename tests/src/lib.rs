//! Shared fixtures for the end-to-end tests and benchmarks of ossa-events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events_core::ExtValue;

/// Directory of the CloudEvents reference documents (`../shared/spec` beside the clone).
pub fn spec_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec")
}

// ---------------------------------------------------------------------------
// Comparing with cloudevents-sdk
// ---------------------------------------------------------------------------

/// One round of percent-decoding (HTTP binding §3.1.3.2).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex escape"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8 after decoding")
}

/// Every extension type of the specification, as [`ext_kind`] names them.
pub const EXT_KINDS: [&str; 7] = [
    "string",
    "integer",
    "boolean",
    "uri",
    "uriref",
    "timestamp",
    "binary",
];

/// The name of an extension value's type (one of [`EXT_KINDS`], or `other`).
pub fn ext_kind(v: &ExtValue<'_>) -> &'static str {
    match v {
        ExtValue::String(_) => "string",
        ExtValue::Integer(_) => "integer",
        ExtValue::Boolean(_) => "boolean",
        ExtValue::Uri(_) => "uri",
        ExtValue::UriRef(_) => "uriref",
        ExtValue::Timestamp(_) => "timestamp",
        ExtValue::Binary(_) => "binary",
        _ => "other",
    }
}

// ---------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------

/// The typical `dev.ossa.tool.called` event the benchmarks measure: source
/// `/agents/researcher`, the four OSSA extensions and a ~200-byte JSON `data`
/// object (see `benches/README.md`).
pub mod typical {
    use ossa_events::ossa::ToolCalled;
    use ossa_events::{Event, RawJson, Timestamp};

    /// The event's source.
    pub const SOURCE: &str = "/agents/researcher";
    /// `ossaagentid`.
    pub const AGENT_ID: &str = "researcher";
    /// `ossainteractionid`.
    pub const INTERACTION_ID: &str = "i-7f3c2a";
    /// `ossatraceid`.
    pub const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    /// `ossaspanid`.
    pub const SPAN_ID: &str = "00f067aa0ba902b7";
    /// The tool called (also the subject).
    pub const TOOL: &str = "web_search";
    /// The call id.
    pub const CALL_ID: &str = "call_3k9q2w";
    /// The `query` inside [`ARGUMENTS`].
    pub const QUERY: &str = "CloudEvents extensions for agent tracing";
    /// The tool arguments as the model hands them over: JSON text.
    pub const ARGUMENTS: &str = r#"{"query":"CloudEvents extensions for agent tracing","max_results":10,"filters":{"lang":"en","domains":["cloudevents.io","github.com"]}}"#;
    /// A fixed id, for inputs that must be the same bytes on every run.
    pub const FIXED_ID: &str = "6f1a3e0c-9b7d-4c2e-8a15-3d9e7b2f4c60";
    /// A fixed time (same form as `SystemClock` gives: UTC, microseconds).
    pub const FIXED_TIME: &str = "2026-03-14T09:26:53.589793Z";

    /// The payload.
    pub fn tool_called() -> ToolCalled<'static> {
        ToolCalled {
            tool: TOOL,
            call_id: Some(CALL_ID),
            arguments: Some(RawJson::new(ARGUMENTS).expect("valid JSON")),
        }
    }

    /// The whole `data` object as a `serde_json::Value` built from Rust
    /// values, as the sdk wants it.
    pub fn data_value() -> serde_json::Value {
        serde_json::json!({
            "tool": TOOL,
            "call_id": CALL_ID,
            "arguments": {
                "query": QUERY,
                "max_results": 10,
                "filters": {
                    "lang": "en",
                    "domains": ["cloudevents.io", "github.com"],
                },
            },
        })
    }

    /// The event built by our builder with [`FIXED_ID`] and [`FIXED_TIME`].
    pub fn fixed_event<'a>(call: &'a ToolCalled<'a>) -> Event<'a> {
        Event::builder()
            .id(FIXED_ID)
            .source(SOURCE)
            .time(Timestamp::parse(FIXED_TIME).expect("valid time"))
            .ossa(call)
            .ossa_agent_id(AGENT_ID)
            .ossa_interaction_id(INTERACTION_ID)
            .ossa_trace_id(TRACE_ID)
            .ossa_span_id(SPAN_ID)
            .build()
            .expect("valid event")
    }
}

/// A port on 127.0.0.1 that nothing listens on: bound, read, closed.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The median of `v` (sorted in place; the upper one of an even count).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Mean ns per call of `f` over `iters` calls (one run of a bench's own
/// timing loop).
pub fn run_ns<O>(iters: usize, mut f: impl FnMut() -> O) -> f64 {
    let t = std::time::Instant::now();
    for _ in 0..iters {
        std::hint::black_box(f());
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

/// As [`run_ns`], with inputs made by `setup` before the clock starts and the
/// outputs dropped after it stops (what criterion's `iter_batched` does).
pub fn run_ns_batched<I, O>(
    iters: usize,
    mut setup: impl FnMut() -> I,
    mut routine: impl FnMut(I) -> O,
) -> f64 {
    let inputs: Vec<I> = (0..iters).map(|_| setup()).collect();
    let mut outputs = Vec::with_capacity(iters);
    let t = std::time::Instant::now();
    for i in inputs {
        outputs.push(routine(i));
    }
    let ns = t.elapsed().as_nanos() as f64 / iters as f64;
    drop(std::hint::black_box(outputs));
    ns
}

/// Runs each timer `runs` times, interleaved (the runs of every side
/// alternate, so load drifting on a shared machine hits all alike), after
/// one discarded warm-up round; returns the median of each.
pub fn interleaved<const K: usize>(
    runs: usize,
    mut timers: [&mut dyn FnMut() -> f64; K],
) -> [f64; K] {
    for t in timers.iter_mut() {
        t();
    }
    let mut samples: [Vec<f64>; K] = std::array::from_fn(|_| Vec::with_capacity(runs));
    for _ in 0..runs {
        for (t, s) in timers.iter_mut().zip(samples.iter_mut()) {
            s.push(t());
        }
    }
    samples.map(|mut s| median(&mut s))
}

/// Every HTTP binary-mode header line of `ev` (`name: value\r\n`, the `ce-`
/// attributes percent-encoded as needed, then `Content-Type`) written into
/// `buf` through a `SliceWriter`; the number of bytes written. What the
/// benches time as "HTTP binary headers, names and values written out".
#[inline]
pub fn write_http_header_lines(ev: &ossa_events::Event<'_>, buf: &mut [u8]) -> usize {
    use ossa_events::format::binary::{self, Binding};
    use ossa_events::io::{SliceWriter, write_all};
    let mut w = SliceWriter::new(buf);
    for h in binary::headers(ev, Binding::Http) {
        h.name().write_to(&mut w).unwrap();
        write_all(&mut w, b": ").unwrap();
        h.value().write_to(&mut w).unwrap();
        write_all(&mut w, b"\r\n").unwrap();
    }
    if let Some(ct) = binary::content_type(ev) {
        write_all(&mut w, b"Content-Type: ").unwrap();
        write_all(&mut w, ct.as_bytes()).unwrap();
        write_all(&mut w, b"\r\n").unwrap();
    }
    w.len()
}

/// How an interop test carried an event: the HTTP binding's three content
/// modes and the Kafka binding's two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// HTTP binary mode: attributes in `ce-` headers, data as the body.
    HttpBinary,
    /// HTTP structured mode: the event as a JSON body.
    HttpStructured,
    /// HTTP batched mode: a JSON array of events.
    HttpBatch,
    /// Kafka binary mode: attributes in `ce_` headers, data as the value.
    KafkaBinary,
    /// Kafka structured mode: the event as a JSON value.
    KafkaStructured,
}

impl Carried {
    /// Whether the attributes travel as headers (binary mode).
    pub fn binary(self) -> bool {
        matches!(self, Carried::HttpBinary | Carried::KafkaBinary)
    }
}

/// Events a [`collecting_receiver`] accepted, each as our JSON encoding.
pub type Collected = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// Our receiver on a free loopback port, with default settings, keeping each
/// event it accepts as its JSON (for tests that post to it): its handle (it
/// stops when dropped), the URL to post to, and the events so far.
pub fn collecting_receiver() -> (ossa_events::receiver::ReceiverHandle, String, Collected) {
    use ossa_events::receiver::{Receiver, ReceiverConfig};
    let got = Collected::default();
    let keep = std::sync::Arc::clone(&got);
    let handle = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())
        .unwrap()
        .spawn(move |ev: &ossa_events::Event<'_>| {
            keep.lock()
                .unwrap()
                .push(ossa_events::format::json::to_vec(ev).unwrap());
        })
        .unwrap();
    let url = format!("http://{}/events", handle.local_addr());
    (handle, url, got)
}

/// The lines `out` (a child process's stdout) gives, on a channel fed by a
/// thread of their own, so that every wait for one can have a bound
/// (`recv_timeout`). The channel closes when `out` ends.
pub fn lines_of(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    lines
}
