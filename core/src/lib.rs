#![cfg_attr(not(test), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]
#![doc = include_str!("../README.md")]
//!
//! # Guide
//!
//! Everything below works without `std` and without an allocator: events
//! borrow their strings, encoders write to an [`embedded_io::Write`] (a UART,
//! a socket, a [`io::SliceWriter`] over a stack buffer), parsers borrow from
//! their input and unescape into a caller-provided [`Scratch`], and batches
//! live in fixed-size arrays. Nothing panics on bad input or a failing writer;
//! every failure is a typed error.
//!
//! ## Building and validating events
//!
//! An [`Event`] is always valid: it comes from [`EventBuilder::build`] (start
//! with [`Event::builder`]) or from a parser, and both check every rule of
//! CloudEvents 1.0. Setters never fail; `build` returns the first problem as a
//! [`ValidationError`]: the [`Attribute`] at fault and the [`Rule`] it breaks.
//! Payloads are [`Data`] (raw JSON, text, bytes or any `T: Serialize`);
//! extensions are typed [`ExtValue`]s, at most [`MAX_EXTENSIONS`]. Ids come from
//! [`EventId`], times are [`Timestamp`]s.
//!
//! ```
//! use ossa_events_core::{Attribute, Event, ExtValue, Rule};
//! let ev = Event::builder()
//!     .id("evt-1")
//!     .source("/agents/planner")
//!     .ty("com.example.plan.ready")
//!     .time_str("2026-01-01T12:00:00Z")
//!     .extension("retries", ExtValue::Integer(0))
//!     .data_json(r#"{"steps":3}"#)
//!     .build()?;
//! assert_eq!(ev.datacontenttype(), Some("application/json"));
//!
//! let err = Event::builder().id("evt-2").source("/s").ty("t").dataschema("schema.json").build().unwrap_err();
//! assert_eq!((err.attribute, err.rule), (Attribute::DataSchema, Rule::NotAbsoluteUri));
//! # Ok::<(), ossa_events_core::ValidationError>(())
//! ```
//!
//! ## OSSA events and extensions
//!
//! The [`ossa`] module has the 11 OSSA event types (e.g. [`ossa::TOOL_CALLED`]),
//! a typed payload for each (e.g. [`ossa::ToolCalled`], all implementing
//! [`ossa::Payload`]) and the four extensions. [`EventBuilder::ossa`] sets
//! `type`, `subject` and `data` from a payload;
//! [`EventBuilder::ossa_context`] adds the agent, interaction, trace and span
//! ids from an [`ossa::Context`]. Embedded JSON (tool arguments, outputs) is a
//! [`RawJson`], checked once when it is made.
//!
//! ```
//! use ossa_events_core::{ossa, Event, RawJson};
//! let done = ossa::ToolCompleted {
//!     tool: "web_search",
//!     call_id: Some("call-1"),
//!     result: Some(RawJson::new(r#"{"hits":12}"#)?),
//!     duration_ms: Some(230),
//! };
//! let ctx = ossa::Context { agent_id: Some("researcher"), ..Default::default() };
//! let ev = Event::builder().id("1").source("/agents/researcher").ossa(&done).ossa_context(&ctx).build()?;
//! assert_eq!((ev.ty(), ev.subject()), (ossa::TOOL_COMPLETED, Some("web_search")));
//! assert_eq!(ev.ossa_agent_id(), Some("researcher"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Formats: JSON, batch, JSON Lines, HTTP and Kafka headers
//!
//! [`format::json`] writes the structured JSON format: one event
//! ([`format::json::write_json`], [`format::json::to_slice`],
//! [`format::json::to_heapless`], `to_vec` with `alloc`), a JSON batch
//! ([`format::json::write_batch`]) or JSON Lines
//! ([`format::json::write_jsonl`]). Output is compact and byte-reproducible.
//! [`format::binary`] is binary content mode: [`format::binary::headers`]
//! yields the `ce-` (HTTP, percent-encoded) or `ce_` (Kafka) headers for a
//! [`format::binary::Binding`], [`format::binary::content_type`] the content
//! type header, and [`format::binary::write_body`] /
//! [`format::binary::body_slice`] the body.
//!
//! ```
//! use ossa_events_core::{format::{binary::{self, Binding}, json}, io::SliceWriter, Event};
//! let ev = Event::builder().id("1").source("/s").ty("t").subject("a b").build()?;
//!
//! let mut buf = [0u8; 256];
//! let mut w = SliceWriter::new(&mut buf);
//! json::write_jsonl(&ev, &mut w)?; // one JSON Lines record
//! assert!(w.written().ends_with(b"\"subject\":\"a b\"}\n"));
//!
//! let subject = binary::headers(&ev, Binding::Http).find(|h| h.attribute() == "subject").ok_or("none")?;
//! assert_eq!((subject.name().to_string(), subject.value().to_string()), ("ce-subject".into(), "a%20b".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Parsing
//!
//! [`parse::json::parse_event`] reads one structured event,
//! [`parse::json::BatchParser`] a JSON batch event by event,
//! [`parse::http::parse`] an HTTP message in whichever content mode its
//! `Content-Type` selects, and [`parse::kafka::parse`] a Kafka record. All
//! borrow from the input; only escaped or percent-encoded strings are written
//! into the [`Scratch`] buffer you pass. Failures are a [`ParseError`].
//!
//! ```
//! use ossa_events_core::{parse::http, Scratch};
//! let headers: [(&str, &[u8]); 5] = [
//!     ("ce-specversion", b"1.0"),
//!     ("ce-id", b"1"),
//!     ("ce-source", b"/agents/planner"),
//!     ("ce-type", b"dev.ossa.turn.started"),
//!     ("content-type", b"application/json"),
//! ];
//! let mut scratch = [0u8; 256];
//! match http::parse(headers, br#"{"turn":1}"#, &mut Scratch::new(&mut scratch))? {
//!     http::Message::Event(ev) => assert_eq!(ev.source(), "/agents/planner"),
//!     _ => unreachable!("binary mode"),
//! }
//! # Ok::<(), ossa_events_core::ParseError>(())
//! ```
//!
//! ## Batching
//!
//! A [`Batch<N, B>`](Batch) holds up to `N` events encoded once, at push, in a
//! `B`-byte arena, and drains them framed as a [`BatchFormat`] (JSON batch or
//! JSON Lines) with [`Batch::write_to`]. A refused push hands the event back
//! ([`batch::PushError`]); a failed drain keeps every event for the next try
//! ([`batch::DrainError`]).
//!
//! ```
//! use ossa_events_core::{io::SliceWriter, Batch, BatchFormat, Event};
//! let mut batch: Batch<2, 512> = Batch::new(BatchFormat::JsonBatch);
//! let ev = Event::builder().id("1").source("/s").ty("t").build()?;
//! batch.push_ref(&ev)?;
//! batch.push_ref(&ev)?;
//! let err = batch.push(ev).unwrap_err(); // full: the event comes back
//! assert!(err.is_full());
//! let mut out = [0u8; 512];
//! assert_eq!(batch.write_to(&mut SliceWriter::new(&mut out))?, 2);
//! assert!(batch.push(err.event).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## The `no_std` emitter
//!
//! [`Emitter`] completes events (id from an [`IdSource`] such as
//! [`RandomIds`], time from a [`Clock`], `source` and the OSSA context from its
//! [`emitter::Config`]), validates, batches, and writes them when the batch
//! fills, when [`Emitter::poll`] finds the oldest event due, or on
//! [`Emitter::flush`]. [`emitter::Counters`] tell what happened;
//! [`EmitError`] why an event was refused. With the `async` feature,
//! `emitter::AsyncEmitter` does the same over `embedded_io_async::Write`.
//!
//! ```
//! use ossa_events_core::{emitter::Config, io::SliceWriter, ossa, Emitter, FixedClock, RandomIds, Timestamp};
//! let mut uart = [0u8; 2048];
//! let ids = RandomIds(|b: &mut [u8; 16]| b.fill(0x42)); // use the hardware RNG
//! let clock = FixedClock(Timestamp::UNIX_EPOCH);       // use the RTC
//! let mut em: Emitter<'_, _, _, _, 8, 2048> =
//!     Emitter::new(Config::new("/devices/7").flush_interval_ms(1000), SliceWriter::new(&mut uart), ids, clock);
//! em.emit_ossa(&ossa::AgentStarted { agent_id: "thermo", ..Default::default() })?;
//! // In the superloop: sleep `next_flush_in_ms`, then poll with the current time.
//! let now = Timestamp::from_unix(1, 0).ok_or("range")?;
//! assert_eq!(em.next_flush_in_ms(now), Some(0));
//! assert_eq!(em.poll(now)?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Errors
//!
//! Each error names its cause, implements [`core::error::Error`] and, for
//! enums, is `#[non_exhaustive]`:
//!
//! | Error | From | Tells |
//! |---|---|---|
//! | [`ValidationError`] | [`EventBuilder::build`], parsers | the [`Attribute`] and the [`Rule`] it breaks |
//! | [`EncodeError`] | encoders | the writer's error, a zero-byte write, or a payload failure |
//! | [`ParseError`] | parsers | malformed JSON ([`JsonError`], with its byte offset), a broken rule, a small scratch buffer… |
//! | [`TimeError`] | [`Timestamp::parse`] | which field is out of range, or where the syntax breaks |
//! | [`batch::PushError`], [`batch::DrainError`] | [`Batch`] | why a push or drain failed (the event or events are kept) |
//! | [`EmitError`] | [`Emitter::emit`] | invalid, too large, or dropped because the batch could not be flushed |
//!
//! ```
//! use ossa_events_core::{parse, Attribute, ParseError, Rule, Scratch};
//! let input = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad-Name":1}"#;
//! let mut scratch = [0u8; 64];
//! let result = parse::json::parse_event(input, &mut Scratch::new(&mut scratch));
//! match result {
//!     Err(ParseError::Invalid(e)) => {
//!         assert_eq!((e.attribute, e.rule), (Attribute::named("Bad-Name"), Rule::InvalidName));
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```
//!
//! ## Features in the API
//!
//! See "Cargo features" above. Items that need one are marked in these docs:
//! `format::json::to_vec` (`alloc`), and `emitter::AsyncEmitter` and
//! `Batch::write_to_async` (`async`). Without any feature the crate needs
//! only `core`.

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod attr;
pub mod base64;
pub mod batch;
pub mod emitter;
pub mod error;
pub mod event;
pub mod format;
pub mod id;
pub mod io;
pub mod json;
mod num;
pub mod ossa;
pub mod parse;
pub mod scratch;
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod simd;
#[cfg(feature = "flash-spool")]
#[cfg_attr(docsrs, doc(cfg(feature = "flash-spool")))]
pub mod spool;
mod swar;
pub mod time;
pub mod trace;
pub mod uri;

pub use attr::{ExtValue, Extension, Extensions, MAX_EXTENSIONS, SPEC_VERSION};
pub use batch::{Batch, BatchFormat};
pub use emitter::{EmitError, Emitter};
pub use error::{
    Attribute, EncodeError, InBatchError, ParseError, PayloadError, Rule, ValidationError,
};
pub use event::{Data, Event, EventBuilder, MAX_DATA_DEPTH};
pub use id::{EventId, IdSource, RandomIds};
pub use json::{JsonError, JsonErrorKind, JsonPayload};
pub use ossa::RawJson;
pub use scratch::{Scratch, ScratchFull};
pub use time::{Clock, FixedClock, Offset, TimeError, Timestamp};

pub use embedded_io;
pub use heapless;
