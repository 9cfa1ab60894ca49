//! CloudEvents v1.0 for OSSA agents on std.
//!
//! This crate re-exports everything of [`ossa_events_core`] (the `no_std`
//! event model, formats and parsers) and adds what a server process has: a
//! real clock ([`SystemClock`]), fast random event ids ([`new_id`],
//! [`FastIds`]), the demo agent run ([`demo`]) and the `ossa-events` command
//! line tool.
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
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub use ossa_events_core::*;

/// The `no_std` core crate, for naming its items by their original paths.
pub use ossa_events_core as core;

mod clock;
pub mod demo;
mod errors;
mod ids;
mod metrics;
pub mod receiver;
mod retry;
#[cfg(feature = "http")]
mod retry_after;
#[cfg(feature = "cloudevents-sdk")]
#[cfg_attr(docsrs, doc(cfg(feature = "cloudevents-sdk")))]
pub mod sdk;
pub mod sink;
mod worker;

pub use clock::SystemClock;
pub use errors::{Error, Phase, Retry, SendError};
pub use ids::{new_id, FastIds};
pub use metrics::Metrics;
pub use retry::{BreakerConfig, RetryPolicy};
pub use worker::{Emitter, EmitterBuilder, FlushReport, Overflow, Reason, Undelivered};

/// The workspace README's Rust blocks, compiled and run as doc tests so the
/// quick start cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
