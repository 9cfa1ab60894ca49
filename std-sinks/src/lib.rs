//! CloudEvents v1.0 for OSSA agents on std: a background [`Emitter`] that
//! delivers events to stdout, a file, an HTTP collector, Kafka or an
//! OpenTelemetry (OTLP/HTTP) collector, an HTTP
//! [`receiver`], and the `ossa-events` command line tool.
//!
//! This crate re-exports everything of [`ossa_events_core`] (the `no_std`
//! event model, formats and parsers: [`Event`], [`EventBuilder`], the
//! [`ossa`] payloads, [`format`](mod@format) and [`parse`]) and adds what a server
//! process has: a real clock ([`SystemClock`]), fast random event ids
//! ([`new_id`], [`FastIds`]), threads and sockets.
//!
//! # Quick start
//!
//! Build an emitter once, emit from anywhere (it is `Clone + Send + Sync`),
//! and flush or shut down before the process exits:
//!
//! ```
//! use ossa_events::{ossa, sink::WriterSink, Emitter, RawJson};
//!
//! let emitter = Emitter::builder("/agents/researcher")
//!     .sink(WriterSink::new(Vec::new())) // or WriterSink::stdout(), HttpSink, KafkaSink
//!     .agent_id("researcher")
//!     .build()?;
//! emitter.emit_ossa(&ossa::AgentStarted { agent_id: "researcher", ..Default::default() })?;
//! emitter.emit_ossa(&ossa::ToolCalled {
//!     tool: "web_search",
//!     call_id: Some("c1"),
//!     arguments: Some(RawJson::new(r#"{"q":"rust"}"#)?),
//! })?;
//! let report = emitter.shutdown()?; // delivers what is queued, then stops
//! assert_eq!((report.delivered, report.failed, report.pending), (2, 0, 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An event can also be built and encoded by hand, without an emitter:
//!
//! ```
//! use ossa_events::{format::json, ossa, Event, RawJson, SystemClock};
//! let id = ossa_events::new_id();
//! let call = ossa::ToolCalled { tool: "web_search", call_id: Some("c1"), arguments: Some(RawJson::new(r#"{"q":"rust"}"#)?) };
//! let ev = Event::builder()
//!     .id(id.as_str())
//!     .source("/agents/researcher")
//!     .time_from(&SystemClock)
//!     .ossa(&call)
//!     .build()?;
//! let line = json::to_vec(&ev)?;
//! assert!(line.starts_with(br#"{"specversion":"1.0""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The emitter and its delivery contract
//!
//! [`Emitter::emit`] completes the event (id, `source`, time, the OSSA
//! context set on the builder), validates it and encodes it **on the calling
//! thread**, then queues it and returns; one background worker thread per
//! emitter sends the queue to the [`Sink`](sink::Sink) in batches: when
//! [`batch_size`](EmitterBuilder::batch_size) events wait, when the oldest has
//! waited [`flush_interval`](EmitterBuilder::flush_interval), on
//! [`flush`](Emitter::flush) and at shutdown.
//!
//! Delivery is **at least once**: an event counts as delivered when the sink
//! says so for that event (a 2xx answer to its request, its Kafka delivery
//! report, a completed write and flush). A retried event may reach a
//! collector that had already taken it (the README's delivery contract says
//! exactly when, per sink), so receivers should deduplicate by `source` +
//! `id` where it matters. Every event ends up in exactly one of the
//! [`Metrics`] counters, counted once and reported once:
//!
//! | counter | meaning | [`Reason`] given to `on_undelivered` |
//! | --- | --- | --- |
//! | `emitted` | accepted into the queue | — |
//! | `delivered` | the sink confirmed it | — |
//! | `failed` | queued, then given up on: a non-retryable error, or retries exhausted | [`Failed`](Reason::Failed) |
//! | `shutdown_timeout` | queued, and not confirmed when shutdown's time ran out | [`ShutdownTimeout`](Reason::ShutdownTimeout) |
//! | `dropped` | refused at emit: queue full ([`Error::QueueFull`]) or emitter shut down ([`Error::ShutDown`]); with a spool under `DropOldest`, also dropped from disk after it (counted in `evicted` too) | [`Dropped`](Reason::Dropped) |
//! | `rejected` | refused at emit: breaks a CloudEvents rule ([`Error::Invalid`]), cannot be encoded, or (with [`EmitterBuilder::schemas`]) its payload breaks its schema or the schema cannot be had | [`Rejected`](Reason::Rejected) |
//!
//! so `emitted == delivered + failed + shutdown_timeout + queue_depth` at any time.
//!
//! **When the collector is down**, a failed send is classified by the sink,
//! event by event ([`SendError`]: which events were not delivered, each with
//! its error and [`Retry`] or not): the others count as delivered, those
//! refused for good fail, and only the retryable ones are sent again. They
//! are retried with exponential backoff and full jitter
//! ([`RetryPolicy`]), honouring a collector's `Retry-After`; after
//! [`BreakerConfig`]'s threshold of failures in a row the circuit breaker
//! stops sending for a while, then probes with one attempt. Meanwhile events
//! keep queueing, up to [`queue_capacity`](EmitterBuilder::queue_capacity)
//! events and [`queue_bytes`](EmitterBuilder::queue_bytes) bytes; past that
//! the [`Overflow`] policy applies: `DropNewest` refuses new events at once,
//! `Block(d)` makes `emit` wait up to `d` for room. Memory stays bounded
//! whatever the collector does.
//!
//! ```
//! use std::time::Duration;
//! use ossa_events::{sink::HttpSink, BreakerConfig, Emitter, Error, EventBuilder, Overflow, RetryPolicy};
//!
//! // Nothing listens on port 9: every send fails, fast, and is retried
//! // once, up to 200 ms later (the two stay queued meanwhile).
//! let emitter = Emitter::builder("/agents/a")
//!     .sink(HttpSink::builder("http://127.0.0.1:9/events").build()?)
//!     .queue_capacity(2)
//!     .overflow(Overflow::DropNewest)
//!     .retry(RetryPolicy::default().max_attempts(2).base(Duration::from_millis(200)))
//!     .circuit_breaker(BreakerConfig::default().threshold(10))
//!     .flush_interval(Duration::from_secs(60))
//!     .build()?;
//! emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
//! emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
//! // The queue holds two: the third is refused, not buffered without bound.
//! let third = emitter.emit(EventBuilder::new().ty("dev.example.tick"));
//! assert!(matches!(third, Err(Error::QueueFull)));
//! let report = emitter.flush()?; // two attempts each, then given up on
//! assert_eq!((report.delivered, report.failed), (0, 2));
//! let m = emitter.metrics();
//! assert_eq!((m.emitted, m.failed, m.dropped), (2, 2, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Sinks
//!
//! A sink is anything that implements [`sink::Sink`] (one method, `send`).
//! Those that come with the crate:
//!
//! - [`WriterSink`](sink::WriterSink): JSON Lines to stdout (the default), stderr, a file
//!   or any `std::io::Write`:
//!   ```
//!   # use ossa_events::sink::WriterSink;
//!   let to_stdout = WriterSink::stdout();
//!   let pretty = WriterSink::stderr().pretty(true);
//!   let log = WriterSink::append_to(std::env::temp_dir().join("agent-events.jsonl"))?;
//!   # let _ = (to_stdout, pretty, log);
//!   # Ok::<(), std::io::Error>(())
//!   ```
//! - `HttpSink` (feature `http`, on by default): CloudEvents over HTTP,
//!   structured, binary or batched, gzip, custom headers and roots:
//!   ```
//!   # #[cfg(feature = "http")] {
//!   use std::time::Duration;
//!   use ossa_events::sink::{HttpMode, HttpSink};
//!   let sink = HttpSink::builder("https://collector.example/events")
//!       .mode(HttpMode::Batched)
//!       .header("Authorization", "Bearer t0ken")
//!       .timeout(Duration::from_secs(5))
//!       .gzip(true)
//!       .build()?;
//!   # let _ = sink; }
//!   # Ok::<(), ossa_events::Error>(())
//!   ```
//! - `KafkaSink` (feature `kafka`): CloudEvents over Kafka, binary or
//!   structured, an idempotent producer, counted delivered on its delivery
//!   report; any librdkafka property passes through `set`:
//!   ```no_run
//!   # #[cfg(feature = "kafka")] {
//!   use ossa_events::sink::{KafkaMode, KafkaSink};
//!   let sink = KafkaSink::builder("broker1:9092,broker2:9092", "agent-events")
//!       .mode(KafkaMode::Binary)
//!       .key_field("ossaagentid")
//!       .set("compression.type", "lz4")
//!       .build()?;
//!   # let _ = sink; }
//!   # Ok::<(), ossa_events::Error>(())
//!   ```
//! - `OtlpSink` (feature `otlp`, on through `cli`): OSSA lifecycle events as
//!   OpenTelemetry spans (GenAI conventions), posted with OTLP/HTTP JSON or
//!   written to a file.
//! - [`NullSink`](sink::NullSink): accepts everything, keeps nothing.
//!
//! # Metrics and the `on_undelivered` callback
//!
//! [`Emitter::metrics`] returns a [`Metrics`] snapshot at any time, for a
//! health endpoint or a periodic log line: atomic counters read under the
//! emitter's state lock (held for a few loads, so the sums hold in every
//! snapshot), which `emit()` takes too: call it at a human pace, not per
//! event.
//! [`EmitterBuilder::on_undelivered`] is called once for each event that is
//! not delivered, with the [`Reason`], the event's id, its encoded form when
//! it got that far (to store it for a later replay) and the [`Error`]:
//!
//! ```
//! use std::sync::{Arc, Mutex, PoisonError};
//! use ossa_events::{sink::NullSink, Emitter, EventBuilder, Reason};
//!
//! let lost = Arc::new(Mutex::new(Vec::new()));
//! let log = lost.clone();
//! let emitter = Emitter::builder("/agents/a")
//!     .sink(NullSink::new())
//!     .on_undelivered(move |u| {
//!         log.lock().unwrap_or_else(PoisonError::into_inner).push((u.reason, u.error.to_string()))
//!     })
//!     .build()?;
//! // A type is required: this one is rejected at emit, and reported.
//! assert!(emitter.emit(EventBuilder::new()).is_err());
//! assert_eq!(emitter.metrics().rejected, 1);
//! assert_eq!(lost.lock().unwrap_or_else(PoisonError::into_inner)[0].0, Reason::Rejected);
//! # Ok::<(), ossa_events::Error>(())
//! ```
//!
//! # Flush and shutdown
//!
//! [`Emitter::flush`] waits (up to [`flush_timeout`](EmitterBuilder::flush_timeout))
//! until everything emitted before it is delivered or given up on.
//! [`Emitter::shutdown`] — or dropping the last handle — delivers what is
//! pending within [`shutdown_timeout`](EmitterBuilder::shutdown_timeout),
//! counts what is left in `shutdown_timeout` (not in `failed`) and reports
//! it ([`Reason::ShutdownTimeout`]), and stops the worker; later emits get
//! [`Error::ShutDown`]. Call `shutdown` (or `flush`) before `main` returns:
//! the drop is the same, but its outcome is only in the metrics.
//!
//! ```
//! use std::time::Duration;
//! use ossa_events::sink::{Encoded, Sink};
//! use ossa_events::{Emitter, Error, EventBuilder, SendError};
//! /// A collector that takes a second to answer.
//! struct Slow;
//! impl Sink for Slow {
//!     fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
//!         std::thread::sleep(Duration::from_secs(1));
//!         Ok(())
//!     }
//! }
//! let emitter = Emitter::builder("/agents/a")
//!     .sink(Slow)
//!     .shutdown_timeout(Duration::from_millis(100))
//!     .build()?;
//! emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
//! // The send outlasts the limit: shutdown says so, and counts the event.
//! assert!(matches!(emitter.shutdown(), Err(Error::Timeout(_))));
//! let m = emitter.metrics();
//! assert_eq!((m.delivered, m.failed, m.shutdown_timeout), (0, 0, 1));
//! assert!(matches!(emitter.emit(EventBuilder::new().ty("dev.example.tick")), Err(Error::ShutDown)));
//! # Ok::<(), ossa_events::Error>(())
//! ```
//!
//! # Diagnostics
//!
//! The emitter, its sinks and the receiver report what goes wrong as
//! [`tracing`](https://docs.rs/tracing) events (target `ossa_events::…`):
//! retries at `debug`, the circuit breaker opening at `warn` and closing at
//! `info`, undelivered events at `warn` (one line per batch), the worker's
//! end at `debug` (a panic at `error`), the receiver's refusals at `debug`.
//! A delivered event logs nothing. Install any subscriber to see them; the
//! CLI does with `-v` or `RUST_LOG`.
//!
//! The other way round, with the `tracing` feature, an agent instrumented
//! with `tracing` spans named per the OpenTelemetry GenAI conventions
//! (`invoke_agent`, `chat`, `execute_tool`, `invoke_workflow`, as rig and
//! others write them) gets its OSSA events from `tracing_layer::OssaLayer`,
//! and `EmitterBuilder::context_from_tracing` gives the events it emits
//! itself the ids of the span they are emitted in.
//!
//! # Cargo features
//!
//! - `cli` (default): the `ossa-events` binary (implies `http`, `otlp`,
//!   `receiver`, `receiver-tls` and `schemas`; adds `tracing-subscriber` for
//!   its `-v` / `RUST_LOG` output).
//! - `schemas` (default, through `cli`): the [`schema`] module, each event's
//!   data checked against its JSON Schema (the built-in OSSA schemas, a
//!   directory, an HTTP or Confluent-compatible registry), at emit
//!   ([`EmitterBuilder::schemas`]) and in a receiver ([`receiver::Handler::check`]).
//!   Implies `http`.
//! - `http` (default): `HttpSink` on ureq + rustls, with gzip request bodies.
//!   Without it: no HTTP client.
//! - `otlp` (default, through `cli`): `OtlpSink`, OSSA lifecycle events as
//!   OpenTelemetry spans (GenAI semantic conventions) posted with OTLP/HTTP
//!   JSON or written to a file. Implies `http`.
//! - `kafka`: `KafkaSink` on rdkafka; compiles the bundled librdkafka (needs
//!   a C and a C++ compiler, make and zlib).
//! - `cloudevents-sdk`: the `sdk` module, conversions between this crate's
//!   [`Event`] and the official CloudEvents SDK's `cloudevents::Event`.
//! - `axum`: the `axum` module, an extractor that hands an axum handler the
//!   checked events of a request in any content mode (implies `http-types`).
//! - `receiver` (default, through `cli`): the [`receiver`] module, a
//!   CloudEvents HTTP receiver on hyper with a blocking API (it owns its
//!   tokio runtime), hardened for clients it does not trust; gzip bodies.
//!   Implies `http-types`.
//! - `receiver-tls` (default, through `cli`): the receiver over HTTPS
//!   (rustls), `Receiver::tls` and `receiver::tls_config_from_pem`.
//! - `tracing`: the `tracing_layer` module: `OssaLayer`, a
//!   `tracing_subscriber` layer that turns GenAI spans into OSSA events, and
//!   `EmitterBuilder::context_from_tracing` (adds tracing-subscriber's
//!   `registry`).
//! - `opentelemetry` (implies `tracing`): span ids from the OpenTelemetry
//!   spans that a `tracing_opentelemetry` layer keeps (tracing-opentelemetry
//!   0.34, opentelemetry 0.33).
//! - `http-types`: the `http_types` module, events parsed from and built into
//!   the `http` crate's `Request`, `Response` and `HeaderMap` (the types of
//!   hyper, axum, reqwest and tonic), in every content mode.
//!
//! # The `ossa-events` command line tool
//!
//! The binary (feature `cli`, on by default) wraps the same pieces: `demo`
//! prints a realistic agent run ([`demo`]) as JSON Lines; `validate` checks
//! events (a JSON event, a batch or JSON Lines) and prints them canonically;
//! `listen` runs the [`receiver`] and prints what arrives; `emit` delivers
//! JSON Lines from files or stdin (or the demo run) to stdout, HTTP, Kafka (feature
//! `kafka`) or an OTLP collector through an [`Emitter`]; `consume` (feature
//! `kafka`) prints the events of a Kafka topic. Run `ossa-events help
//! <COMMAND>` for the options; the exit status is `0` on success, `1` for
//! invalid input, an event not delivered or an I/O error, `2` for bad
//! arguments, and 130/143 when `emit`, `consume` or `listen` is stopped by
//! SIGINT/SIGTERM.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]
// docs.rs builds with `--cfg docsrs` on nightly: mark feature-gated items.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use ossa_events_core::*;

/// The `no_std` core crate, for naming its items by their original paths.
pub use ossa_events_core as core;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod clock;
mod completion;
#[cfg(feature = "tracing")]
mod deferred;
pub mod demo;
mod errors;
mod handle;
#[cfg(feature = "http-types")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-types")))]
pub mod http_types;
mod ids;
mod metrics;
mod queue;
#[cfg(feature = "receiver")]
#[cfg_attr(docsrs, doc(cfg(feature = "receiver")))]
pub mod receiver;
mod retry;
#[cfg(feature = "http")]
mod retry_after;
#[cfg(feature = "schemas")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemas")))]
pub mod schema;
#[cfg(feature = "cloudevents-sdk")]
#[cfg_attr(docsrs, doc(cfg(feature = "cloudevents-sdk")))]
pub mod sdk;
pub mod sink;
#[cfg(feature = "tracing")]
mod span_ids;
pub mod spool;
mod thread_mark;
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub mod tracing_layer;
mod worker;

pub use clock::SystemClock;
pub use errors::{Error, Failure, Phase, Retry, SendError};
pub use handle::{
    Emitter, EmitterBuilder, FlushReport, Overflow, Reason, Undelivered, WeakEmitter,
};
pub use ids::{FastIds, new_id, reseed_ids};
pub use metrics::Metrics;
pub use retry::{BreakerConfig, RetryPolicy};
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use tracing_layer::OssaLayer;

/// The workspace README's Rust blocks, compiled and run as doc tests so the
/// quick start cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The crate README's (its crates.io page) Rust blocks, as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct CrateReadmeDoctests;
