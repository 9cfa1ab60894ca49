//! Kafka records: content-mode detection from the `content-type` header,
//! binary mode (`ce_` headers, value = data) and structured mode.
//!
//! ```
//! use ossa_events_core::{parse::kafka, Scratch};
//! let headers: [(&str, &[u8]); 5] = [
//!     ("ce_specversion", b"1.0"),
//!     ("ce_id", b"1234-1234-1234"),
//!     ("ce_type", b"com.example.someevent"),
//!     ("ce_source", b"/mycontext/subcontext"),
//!     ("content-type", b"application/json"),
//! ];
//! let mut buf = [0u8; 256];
//! let rec = kafka::parse(headers, Some(b"key-1"), Some(br#"{"message":"Hello World!"}"#), &mut Scratch::new(&mut buf))?;
//! assert_eq!(rec.event.datacontenttype(), Some("application/json"));
//! assert_eq!(rec.key, Some(&b"key-1"[..]));
//! # Ok::<(), ossa_events_core::ParseError>(())
//! ```

use crate::error::{Attribute, ParseError, Rule, ValidationError};
use crate::event::Event;
use crate::scratch::Scratch;
use crate::uri::starts_with_ignore_ascii_case;

use super::binary::{BinaryReader, body_data};

/// A Kafka record read as a CloudEvent.
///
/// ```
/// use ossa_events_core::{parse::kafka, Scratch};
/// // Structured mode: the whole event is the record value.
/// let headers: [(&str, &[u8]); 1] = [("content-type", b"application/cloudevents+json")];
/// let value = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;
/// let mut buf = [0u8; 64];
/// let rec = kafka::parse(headers, Some(b"agent-7"), Some(value), &mut Scratch::new(&mut buf))?;
/// assert_eq!((rec.event.id(), rec.key), ("1", Some(&b"agent-7"[..])));
/// # Ok::<(), ossa_events_core::ParseError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Record<'a> {
    /// The event.
    pub event: Event<'a>,
    /// The record key, as it was (the binding maps it to no attribute).
    pub key: Option<&'a [u8]>,
}

/// Parses a Kafka record: structured when its `content-type` header starts with
/// `application/cloudevents` (matched case-insensitively), binary otherwise.
/// A batch (`application/cloudevents-batch…`) or an event format other than
/// JSON is [`ParseError::UnsupportedFormat`]: the Kafka binding has no batched mode.
///
/// ```
/// use ossa_events_core::{parse::kafka, ParseError, Scratch};
/// let headers: [(&str, &[u8]); 4] = [
///     ("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t"),
/// ];
/// let mut buf = [0u8; 64];
/// let rec = kafka::parse(headers, None, None, &mut Scratch::new(&mut buf))?; // binary mode, no data
/// assert!(rec.event.data().is_none());
/// // An empty value is empty data (no data is no value: a tombstone).
/// let text: [(&str, &[u8]); 5] = [
///     ("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t"),
///     ("content-type", b"text/plain"),
/// ];
/// let mut buf2 = [0u8; 64];
/// let rec = kafka::parse(text, None, Some(b""), &mut Scratch::new(&mut buf2))?;
/// assert!(matches!(rec.event.data(), Some(ossa_events_core::Data::Text(""))));
/// // Batches are an HTTP feature; the Kafka binding has none.
/// let batch: [(&str, &[u8]); 1] = [("content-type", b"application/cloudevents-batch+json")];
/// let err = kafka::parse(batch, None, Some(b"[]"), &mut Scratch::new(&mut [0u8; 64])).unwrap_err();
/// assert_eq!(err, ParseError::UnsupportedFormat);
/// # Ok::<(), ossa_events_core::ParseError>(())
/// ```
pub fn parse<'a, I>(
    headers: I,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    scratch: &mut Scratch<'a>,
) -> Result<Record<'a>, ParseError>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
    I::IntoIter: Clone,
{
    let headers = headers.into_iter();
    let mut ct = None;
    for (name, v) in headers.clone() {
        if name.eq_ignore_ascii_case("content-type") {
            if ct.is_some() {
                return Err(
                    ValidationError::new(Attribute::DataContentType, Rule::Duplicate).into(),
                );
            }
            // Kafka header values are raw bytes: unlike an HTTP field value
            // (RFC 9110 §5.5), there is no surrounding whitespace to strip,
            // so " application/json" is a datacontenttype with a space in it.
            ct = Some(core::str::from_utf8(v).map_err(|_| ParseError::InvalidHeader)?);
        }
    }
    if let Some(c) = ct
        && starts_with_ignore_ascii_case(c, "application/cloudevents")
    {
        if starts_with_ignore_ascii_case(c, "application/cloudevents-batch") {
            return Err(ParseError::UnsupportedFormat);
        }
        if super::http::content_mode(Some(c))? != super::http::ContentMode::Structured {
            return Err(ParseError::UnsupportedFormat);
        }
        let event = super::json::parse_event(value.unwrap_or(&[]), scratch)?;
        return Ok(Record { event, key });
    }
    let mut r = BinaryReader::new();
    // A second `ce_datacontenttype` header is a duplicate attribute, even
    // when it repeats the first one's value (as a second `ce_id` is).
    let mut ce_ct_seen = false;
    for (name, v) in headers {
        let Some(attr) = name.strip_prefix("ce_") else {
            continue;
        };
        let v = core::str::from_utf8(v).map_err(|_| {
            ParseError::Invalid(ValidationError::new(
                Attribute::named(attr),
                Rule::InvalidEncoding,
            ))
        })?;
        if attr == "datacontenttype" {
            // `content-type` is the binding's place for it (3.2.1), but
            // every attribute may have its `ce_` header too (3.2.3), as
            // other SDKs read it: taken when `content-type` is absent or
            // says the same; two different ones are refused.
            if core::mem::replace(&mut ce_ct_seen, true) {
                return Err(
                    ValidationError::new(Attribute::DataContentType, Rule::Duplicate).into(),
                );
            }
            match ct {
                None => ct = Some(v),
                Some(c) if c.eq_ignore_ascii_case(v) => {}
                Some(_) => {
                    return Err(
                        ValidationError::new(Attribute::DataContentType, Rule::Duplicate).into(),
                    );
                }
            }
            continue;
        }
        r.set(attr, v)?;
    }
    let data = match value {
        // No value is no data; an empty value is empty data (3.2.2), but
        // for a JSON content type (JSON text is never empty).
        Some([]) => match ct {
            Some(c) if crate::uri::is_json_media_type(c) => None,
            Some(c) if crate::uri::is_text_media_type(c) => Some(crate::Data::Text("")),
            _ => Some(crate::Data::Binary(&[])),
        },
        v => body_data(ct, v.unwrap_or(&[]))?,
    };
    Ok(Record {
        event: r.finish(ct, data)?,
        key,
    })
}
