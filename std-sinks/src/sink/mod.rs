//! Where events go: the [`Sink`] trait, the encoded form events travel in,
//! and the sinks that come with the crate.
//!
//! An event is encoded once, on the thread that emits it, into an
//! [`Encoded`] in the form its sink sends ([`Encoding`]); the worker only
//! forwards those bytes.

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod kafka;
pub mod writer;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use http::{HttpMode, HttpSink, HttpSinkBuilder};
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub use kafka::{KafkaMode, KafkaSink, KafkaSinkBuilder};
pub use writer::WriterSink;

use std::fmt;

use ossa_events_core::format::binary::{self, Binding};
use ossa_events_core::format::json;
use ossa_events_core::Event;

use crate::errors::{Error, SendError};

/// The wire form a sink wants its events in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// Compact structured JSON (also the unit of JSON batches and JSON Lines).
    Json,
    /// HTTP binary mode: percent-encoded `ce-` headers, `Content-Type`, the data as body.
    HttpBinary,
    /// Kafka binary mode: `ce_` headers, `content-type`, the data as value.
    KafkaBinary,
}

/// One event, encoded once at emit for its sink. Holds a single buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct Encoded {
    /// `id`, then (JSON) the event, or (binary) `name\0value\0` header pairs,
    /// then the body.
    buf: Vec<u8>,
    id_end: u32,
    head_end: u32,
    /// Content type, within the header part (binary modes).
    content_type: Option<(u32, u32)>,
    encoding: Encoding,
}

impl fmt::Debug for Encoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoded")
            .field("id", &self.id())
            .field("encoding", &self.encoding)
            .field("bytes", &self.buf.len())
            .finish()
    }
}

fn slice_str(buf: &[u8], from: usize, to: usize) -> &str {
    buf.get(from..to)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

impl Encoded {
    /// Encodes `ev` for `encoding`.
    pub fn new(ev: &Event<'_>, encoding: Encoding) -> Result<Encoded, Error> {
        let mut buf = Vec::with_capacity(640);
        buf.extend_from_slice(ev.id().as_bytes());
        let id_end = buf.len();
        let mut content_type = None;
        let enc_err = |e: ossa_events_core::EncodeError<std::convert::Infallible>| {
            Error::Encode(e.to_string())
        };
        let head_end = match encoding {
            Encoding::Json => {
                json::write_json(ev, &mut buf).map_err(enc_err)?;
                buf.len()
            }
            Encoding::HttpBinary | Encoding::KafkaBinary => {
                let binding = if encoding == Encoding::HttpBinary {
                    Binding::Http
                } else {
                    Binding::Kafka
                };
                for h in binary::headers(ev, binding) {
                    h.name().write_to(&mut buf).map_err(enc_err)?;
                    buf.push(0);
                    h.value().write_to(&mut buf).map_err(enc_err)?;
                    buf.push(0);
                }
                if let Some(ct) = binary::content_type(ev) {
                    let start = buf.len();
                    buf.extend_from_slice(ct.as_bytes());
                    content_type = Some((start as u32, buf.len() as u32));
                }
                let head_end = buf.len();
                binary::write_body(ev, &mut buf).map_err(enc_err)?;
                head_end
            }
        };
        Ok(Encoded {
            buf,
            id_end: id_end as u32,
            head_end: head_end as u32,
            content_type,
            encoding,
        })
    }

    /// The event's `id`.
    pub fn id(&self) -> &str {
        slice_str(&self.buf, 0, self.id_end as usize)
    }
    /// The encoding this event is in.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }
    /// The compact JSON event ([`Encoding::Json`]); empty for binary encodings.
    pub fn json(&self) -> &[u8] {
        match self.encoding {
            Encoding::Json => self.buf.get(self.id_end as usize..).unwrap_or(&[]),
            _ => &[],
        }
    }
    /// The binary-mode headers as `(name, value)`, values already in wire form;
    /// empty for [`Encoding::Json`].
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let end = match (self.encoding, self.content_type) {
            (Encoding::Json, _) => self.id_end as usize,
            (_, Some((start, _))) => start as usize,
            _ => self.head_end as usize,
        };
        let part = self.buf.get(self.id_end as usize..end).unwrap_or(&[]);
        let mut fields = part.split(|&b| b == 0);
        std::iter::from_fn(move || {
            let name = fields.next().filter(|n| !n.is_empty())?;
            let value = fields.next()?;
            Some((
                std::str::from_utf8(name).unwrap_or(""),
                std::str::from_utf8(value).unwrap_or(""),
            ))
        })
    }
    /// The content type of the body (binary modes), if any.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type
            .map(|(s, e)| slice_str(&self.buf, s as usize, e as usize))
    }
    /// The body (binary modes): the event's data; empty for [`Encoding::Json`].
    pub fn body(&self) -> &[u8] {
        match self.encoding {
            Encoding::Json => &[],
            _ => self.buf.get(self.head_end as usize..).unwrap_or(&[]),
        }
    }
    /// Bytes held in memory (what the queue's byte limit counts).
    pub fn size(&self) -> usize {
        self.buf.capacity()
    }
    /// Bytes of the event in its wire form (JSON, or headers plus body).
    pub fn wire_len(&self) -> usize {
        self.buf.len().saturating_sub(self.id_end as usize)
    }
}

/// Sends the events that are in `want`, in order, through `send`. An event in
/// another encoding (a sink misused by hand; the emitter never does it) and
/// everything after it are failed, not sent: they could not be read back.
pub(crate) fn send_in_encoding(
    events: &[Encoded],
    want: Encoding,
    sink: &str,
    send: impl FnOnce(&[Encoded]) -> Result<(), SendError>,
) -> Result<(), SendError> {
    let Some(pos) = events.iter().position(|e| e.encoding() != want) else {
        return send(events);
    };
    let (good, bad) = events.split_at(pos);
    let err = match bad.first() {
        Some(b) => Error::Encode(format!(
            "event {:?} is encoded as {:?}, the {sink} sink sends {want:?}",
            b.id(),
            b.encoding(),
        )),
        None => Error::Encode(String::new()),
    };
    send(good)?;
    Err(SendError::fatal(pos, err))
}

/// A destination for events. Implement it to send events anywhere; the
/// emitter's worker calls it from its own thread, one batch at a time.
///
/// ```
/// use ossa_events::sink::{Encoded, Encoding, Sink};
/// use ossa_events::SendError;
///
/// /// Counts events and throws them away.
/// struct Count(usize);
/// impl Sink for Count {
///     fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
///         self.0 += events.len();
///         Ok(())
///     }
/// }
/// ```
pub trait Sink: Send + 'static {
    /// The form events must be encoded in. Defaults to [`Encoding::Json`].
    fn encoding(&self) -> Encoding {
        Encoding::Json
    }
    /// Most events the sink takes in one [`send`](Self::send). Defaults to no limit.
    fn max_batch(&self) -> usize {
        usize::MAX
    }
    /// Delivers `events`, in order. On failure, say how many from the front
    /// were delivered and whether a retry may help; the worker retries the
    /// rest according to its [`RetryPolicy`](crate::RetryPolicy).
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError>;
    /// Pushes out anything the sink buffers itself. Defaults to nothing.
    fn flush(&mut self) -> Result<(), SendError> {
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn encoding(&self) -> Encoding {
        (**self).encoding()
    }
    fn max_batch(&self) -> usize {
        (**self).max_batch()
    }
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        (**self).send(events)
    }
    fn flush(&mut self) -> Result<(), SendError> {
        (**self).flush()
    }
}

/// A sink that accepts everything and keeps nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl NullSink {
    /// The null sink.
    pub const fn new() -> Self {
        NullSink
    }
}

impl Sink for NullSink {
    fn send(&mut self, _events: &[Encoded]) -> Result<(), SendError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_parts_round_trip_through_the_core_parser() {
        let ev = Event::builder()
            .id("e-1")
            .source("/s")
            .ty("t")
            .subject("Euro € 😀")
            .ossa_agent_id("a1")
            .data_json(r#"{"x":1}"#)
            .build()
            .unwrap();
        let enc = Encoded::new(&ev, Encoding::HttpBinary).unwrap();
        assert_eq!(enc.id(), "e-1");
        let headers: Vec<(&str, &str)> = enc.headers().collect();
        assert!(headers.contains(&("ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80")));
        assert_eq!(enc.content_type(), Some("application/json"));
        assert_eq!(enc.body(), br#"{"x":1}"#);
        let mut all: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        all.push(("content-type", b"application/json"));
        let mut scratch = vec![0u8; 256];
        let back = ossa_events_core::parse::http::parse_binary(
            all.iter().copied(),
            enc.body(),
            &mut ossa_events_core::Scratch::new(&mut scratch),
        )
        .unwrap();
        assert!(back.same_as(&ev, false));

        let j = Encoded::new(&ev, Encoding::Json).unwrap();
        assert!(j.json().starts_with(br#"{"specversion":"1.0","id":"e-1""#));
        assert_eq!(j.headers().count(), 0);
        assert!(j.body().is_empty());
    }
}
