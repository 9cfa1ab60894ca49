//! Writing events: the JSON format (structured, batch, JSON Lines) and binary mode (headers + body).
//!
//! Both write to any [`embedded_io::Write`]; nothing allocates.
//!
//! ```
//! use ossa_events_core::{format::{binary::{self, Binding}, json}, io::SliceWriter, Event};
//! let ev = Event::builder().id("1").source("/s").ty("t").data_json(r#"{"ok":true}"#).build()?;
//!
//! // Structured mode: the whole event is one JSON object.
//! let mut buf = [0u8; 256];
//! let n = json::to_slice(&ev, &mut buf)?;
//! assert!(buf[..n].starts_with(br#"{"specversion":"1.0","id":"1""#));
//!
//! // Binary mode: attributes as `ce-` headers, data as the body.
//! assert_eq!(binary::headers(&ev, Binding::Http).count(), 4);
//! assert_eq!(binary::content_type(&ev), Some("application/json"));
//! let mut body = [0u8; 64];
//! let mut w = SliceWriter::new(&mut body);
//! binary::write_body(&ev, &mut w)?;
//! assert_eq!(w.written(), br#"{"ok":true}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod binary;
pub mod json;
