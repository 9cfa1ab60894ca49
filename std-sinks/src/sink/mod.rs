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
#[cfg(feature = "otlp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
pub mod otlp;
pub mod writer;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use http::{HttpMode, HttpSink, HttpSinkBuilder};
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub use kafka::{KafkaMode, KafkaSink, KafkaSinkBuilder};
#[cfg(feature = "otlp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
pub use otlp::{OtlpSink, OtlpSinkBuilder};
pub use writer::WriterSink;

mod pool;
pub(crate) use pool::recycle;

use std::fmt;
use std::ops::Range;
use std::time::Instant;

use ossa_events_core::Event;
use ossa_events_core::format::binary::{self, Binding};
use ossa_events_core::format::json;

use crate::errors::{Error, SendError};

/// The wire form a sink wants its events in.
///
/// A sink names its encoding ([`Sink::encoding`]) and the emitter encodes
/// every event in it, once, at emit:
///
/// ```
/// use ossa_events::sink::{Encoded, Encoding};
/// use ossa_events::Event;
/// let ev = Event::builder()
///     .id("e-1")
///     .source("/agents/a")
///     .ty("dev.ossa.tool.called")
///     .data_json(r#"{"tool":"search"}"#)
///     .build()?;
/// let json = Encoded::new(&ev, Encoding::Json)?;
/// let http = Encoded::new(&ev, Encoding::HttpBinary)?;
/// let kafka = Encoded::new(&ev, Encoding::KafkaBinary)?;
/// assert!(json.json().starts_with(br#"{"specversion":"1.0","id":"e-1""#));
/// // The two binary bindings differ in their header prefix.
/// assert!(http.headers().any(|h| h == ("ce-id", "e-1")));
/// assert!(kafka.headers().any(|h| h == ("ce_id", "e-1")));
/// assert_eq!(http.body(), br#"{"tool":"search"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// What a [`Sink`] receives: the event's bytes ready for the wire, and its
/// `id` for logs and delivery reports.
///
/// ```
/// use ossa_events::sink::{Encoded, Encoding};
/// use ossa_events::Event;
/// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.ossa.agent.started").build()?;
/// let enc = Encoded::new(&ev, Encoding::Json)?;
/// assert_eq!(enc.id(), "e-1");
/// assert_eq!(enc.wire_len(), enc.json().len());
/// // The Debug form shows the id and size, not the content.
/// assert!(format!("{enc:?}").contains(r#"id: "e-1""#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// Binary modes: the event has data, and it writes no bytes (empty text
    /// or bytes). Kafka tells it from no data (an empty value, not none).
    data_empty: bool,
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

/// Bytes of an event's spool form before its buffer (see
/// [`Encoded::write_spool`]): a spool record holds these and
/// [`Encoded::stored_len`] bytes.
pub(crate) const SPOOL_FORM_HEAD: usize = SpoolLayout::LEN;

/// Where an encoded event's parts are in its buffer: the fixed part of its
/// spool form (see [`Encoded::write_spool`], checked against the buffer that
/// follows it), and what [`Encoded::new`] found while writing it.
struct SpoolLayout {
    encoding: Encoding,
    id_end: u32,
    head_end: u32,
    content_type: Option<(u32, u32)>,
    data_empty: bool,
}

impl SpoolLayout {
    /// Bytes before the buffer: the encoding and four offsets.
    const LEN: usize = 17;
    /// Set in the encoding's byte for [`Encoded::data_empty`]. (Records
    /// written before it have an empty body for no data, and are read so.)
    const DATA_EMPTY: u8 = 0x80;

    fn of(b: &[u8]) -> Option<SpoolLayout> {
        let u32_at = |i: usize| {
            b.get(i..i + 4)
                .and_then(|x| x.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let first = *b.first()?;
        let data_empty = first & Self::DATA_EMPTY != 0;
        let encoding = match first & !Self::DATA_EMPTY {
            0 if !data_empty => Encoding::Json,
            1 => Encoding::HttpBinary,
            2 => Encoding::KafkaBinary,
            _ => return None,
        };
        let (id_end, head_end) = (u32_at(1)?, u32_at(5)?);
        let (ct_a, ct_b) = (u32_at(9)?, u32_at(13)?);
        let buf = b.get(Self::LEN..)?;
        if id_end > head_end
            || u64::from(head_end) > buf.len() as u64
            || (data_empty && buf.len() != head_end as usize)
        {
            return None;
        }
        std::str::from_utf8(&buf[..id_end as usize]).ok()?;
        let content_type = if (ct_a, ct_b) == (u32::MAX, u32::MAX) {
            None
        } else if encoding != Encoding::Json && id_end <= ct_a && ct_a <= ct_b && ct_b == head_end {
            // The content type closes the head, as `encode_into` writes it.
            Some((ct_a, ct_b))
        } else {
            return None;
        };
        // What the accessors read as text is text: the JSON, or the header
        // fields and the content type; and the fields are `name\0value\0`
        // pairs with a name each, so that `headers` gives every one of them
        // (the CRC of a spool record catches a disk's damage, not a record
        // written that way).
        let head = std::str::from_utf8(buf.get(id_end as usize..head_end as usize)?).ok()?;
        if encoding != Encoding::Json {
            let fields =
                head.get(..content_type.map_or(head.len(), |(a, _)| (a - id_end) as usize))?;
            if let Some(fields) = (!fields.is_empty()).then_some(fields) {
                let mut parts = fields.strip_suffix('\0')?.split('\0');
                while let Some(name) = parts.next() {
                    parts.next()?; // the value
                    if name.is_empty() {
                        return None;
                    }
                }
            }
        }
        Some(SpoolLayout {
            encoding,
            id_end,
            head_end,
            content_type,
            data_empty,
        })
    }

    /// The event over `buf` (the bytes this layout was checked against).
    fn with(self, buf: Vec<u8>) -> Encoded {
        Encoded {
            buf,
            id_end: self.id_end,
            head_end: self.head_end,
            content_type: self.content_type,
            encoding: self.encoding,
            data_empty: self.data_empty,
        }
    }
}

/// Scratch capacity [`Encoded::new`] keeps between events (past it, the
/// buffer is let go after the event).
const SCRATCH_KEEP: usize = 64 * 1024;

thread_local! {
    /// Where [`Encoded::new`] writes an event before copying it out.
    static ENCODE_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn slice_str(buf: &[u8], from: usize, to: usize) -> &str {
    buf.get(from..to)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

impl Encoded {
    /// The buffer, for the next event to be written into (see `pool`).
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// Encodes `ev` for `encoding`.
    ///
    /// The emitter does this for you; a sink's tests do it by hand. The event is
    /// already valid (it was built); an [`Error::Encode`] comes only from a
    /// payload that fails to serialize.
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding};
    /// use ossa_events::Event;
    /// let ev = Event::builder()
    ///     .id("e-1")
    ///     .source("/agents/a")
    ///     .ty("dev.ossa.tool.called")
    ///     .data_text("text/plain", "hello")
    ///     .build()?;
    /// let enc = Encoded::new(&ev, Encoding::KafkaBinary)?;
    /// assert_eq!(enc.encoding(), Encoding::KafkaBinary);
    /// assert_eq!(enc.content_type(), Some("text/plain"));
    /// assert_eq!(enc.body(), b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// See [`for_sink`](Self::for_sink) for what the emitter does: the same,
    /// but as JSON where binary mode cannot carry an event and the sink
    /// takes it structured.
    pub fn new(ev: &Event<'_>, encoding: Encoding) -> Result<Encoded, Error> {
        Self::encode(ev, Form::exactly(encoding), <[u8]>::to_vec)
    }

    /// `ev` encoded for `sink`, as the emitter encodes it: in the sink's
    /// [`encoding`](Sink::encoding), but as structured JSON when the sink
    /// [takes structured events too](Sink::takes_structured) and binary
    /// mode cannot carry this one:
    /// - its `datacontenttype` is a CloudEvents format
    ///   (`application/cloudevents…`, an event that carries events): in
    ///   binary mode that would be the message's content type, and a
    ///   receiver takes a message of that content type for a structured
    ///   event or batch, reading the events carried in place of this one;
    /// - in HTTP binary mode, its `ce-` headers and content type would pass
    ///   [`HTTP_BINARY_HEADERS_MAX`];
    /// - its body would not read back as its data: bytes that are not JSON
    ///   under a JSON `datacontenttype` (a receiver reads the body as JSON
    ///   and refuses the message), empty data where an empty body is
    ///   read as none (in HTTP always, in Kafka under a JSON type), or
    ///   text or JSON (written as UTF-8) under a `charset` that reads
    ///   those bytes as other text ([`charset_reads_utf8`](crate::uri::charset_reads_utf8)).
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding, HttpMode, HttpSink};
    /// use ossa_events::Event;
    /// let sink = HttpSink::builder("http://127.0.0.1:9/events").mode(HttpMode::Binary).build()?;
    /// let forwarded = Event::builder()
    ///     .id("e-1")
    ///     .source("/agents/a")
    ///     .ty("dev.example.forwarded")
    ///     .data_json(r#"{"specversion":"1.0","id":"in","source":"/s","type":"t"}"#)
    ///     .datacontenttype("application/cloudevents+json")
    ///     .build()?;
    /// assert_eq!(Encoded::for_sink(&forwarded, &sink)?.encoding(), Encoding::Json);
    /// // Asked for binary by hand, it is binary.
    /// assert_eq!(Encoded::new(&forwarded, Encoding::HttpBinary)?.encoding(), Encoding::HttpBinary);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_sink<S: Sink + ?Sized>(ev: &Event<'_>, sink: &S) -> Result<Encoded, Error> {
        Self::encode(ev, Form::of(sink), <[u8]>::to_vec)
    }

    /// [`new`](Self::new) into a buffer of an event the emitter sent, when
    /// this thread has one that fits (see `pool`): what `emit()` does, so
    /// that in steady state it allocates nothing.
    pub(crate) fn new_pooled(ev: &Event<'_>, form: Form) -> Result<Encoded, Error> {
        Self::encode(ev, form, pool::buffer_for)
    }

    /// Writes `ev` into this thread's scratch (grown once), then copies it
    /// out with `copy_out`: one allocation per event whatever its size (a
    /// first guess of 640 bytes was a second one, a reallocation, for every
    /// event past it, as the typical event with its `traceparent` is), and
    /// no more capacity held while it is queued than `copy_out` gives.
    fn encode(
        ev: &Event<'_>,
        form: Form,
        copy_out: fn(&[u8]) -> Vec<u8>,
    ) -> Result<Encoded, Error> {
        let scratch = ENCODE_SCRATCH.try_with(|cell| {
            let Ok(mut buf) = cell.try_borrow_mut() else {
                // Encoding inside an encoding (a payload's `Serialize` that
                // emits): not through the scratch in use.
                return Self::encode_fresh(ev, form);
            };
            buf.clear();
            let layout = Self::encode_into(ev, form, &mut buf);
            let out = layout.map(|l| l.with(copy_out(buf.as_slice())));
            if buf.capacity() > SCRATCH_KEEP {
                // One huge event does not keep its buffer for the thread's life.
                *buf = Vec::new();
            }
            out
        });
        // The thread is ending and its scratch is gone.
        scratch.unwrap_or_else(|_| Self::encode_fresh(ev, form))
    }

    /// [`new`](Self::new) into a buffer of its own.
    fn encode_fresh(ev: &Event<'_>, form: Form) -> Result<Encoded, Error> {
        let mut buf = Vec::with_capacity(1024);
        let layout = Self::encode_into(ev, form, &mut buf)?;
        Ok(layout.with(buf))
    }

    /// Writes the id, then `ev` in `form`, into `buf` (empty); returns
    /// where the parts are.
    fn encode_into(ev: &Event<'_>, form: Form, buf: &mut Vec<u8>) -> Result<SpoolLayout, Error> {
        buf.extend_from_slice(ev.id().as_bytes());
        let id_end = buf.len();
        let enc_err = |e: ossa_events_core::EncodeError<std::convert::Infallible>| {
            Error::Encode(e.to_string())
        };
        let json = |buf: &mut Vec<u8>| -> Result<SpoolLayout, Error> {
            json::write_json(ev, buf).map_err(enc_err)?;
            Ok(SpoolLayout {
                encoding: Encoding::Json,
                id_end: id_end as u32,
                head_end: buf.len() as u32,
                content_type: None,
                data_empty: false,
            })
        };
        let binding = match form.encoding {
            Encoding::Json => return json(buf),
            // Its content type would make it a structured message.
            _ if form.structured_too && names_a_format(ev.datacontenttype()) => return json(buf),
            Encoding::HttpBinary => Binding::Http,
            Encoding::KafkaBinary => Binding::Kafka,
        };
        for h in binary::headers(ev, binding) {
            h.name().write_to(buf).map_err(enc_err)?;
            buf.push(0);
            h.value().write_to(buf).map_err(enc_err)?;
            buf.push(0);
        }
        let mut content_type = None;
        if let Some(ct) = binary::content_type(ev) {
            let start = buf.len();
            buf.extend_from_slice(ct.as_bytes());
            content_type = Some((start as u32, buf.len() as u32));
        }
        if form.structured_too
            && binding == Binding::Http
            && buf.len() - id_end > HTTP_BINARY_HEADERS_MAX
        {
            // Past what collectors take in a request's head.
            buf.truncate(id_end);
            return json(buf);
        }
        let head_end = buf.len();
        binary::write_body(ev, buf).map_err(enc_err)?;
        let reads_back = |body: &[u8]| match binding {
            Binding::Kafka => kafka_value_reads_back(ev, body),
            _ => binary_body_reads_back(ev, body),
        };
        if form.structured_too && !reads_back(&buf[head_end..]) {
            buf.truncate(id_end);
            return json(buf);
        }
        Ok(SpoolLayout {
            encoding: form.encoding,
            id_end: id_end as u32,
            head_end: head_end as u32,
            content_type,
            data_empty: ev.data().is_some() && buf.len() == head_end,
        })
    }

    /// Appends the spool form of this event to `out`: the encoding, the
    /// offsets and the buffer, as [`from_spool`](Self::from_spool) reads them.
    pub(crate) fn write_spool(&self, out: &mut Vec<u8>) {
        let encoding = match self.encoding {
            Encoding::Json => 0,
            Encoding::HttpBinary => 1,
            Encoding::KafkaBinary => 2,
        };
        out.push(
            encoding
                | if self.data_empty {
                    SpoolLayout::DATA_EMPTY
                } else {
                    0
                },
        );
        out.extend_from_slice(&self.id_end.to_le_bytes());
        out.extend_from_slice(&self.head_end.to_le_bytes());
        let (a, b) = self.content_type.unwrap_or((u32::MAX, u32::MAX));
        out.extend_from_slice(&a.to_le_bytes());
        out.extend_from_slice(&b.to_le_bytes());
        out.extend_from_slice(&self.buf);
    }

    /// An event from its spool form; `None` when the bytes cannot be one
    /// (offsets outside the buffer, an id that is not UTF-8).
    pub(crate) fn from_spool(b: &[u8]) -> Option<Encoded> {
        let layout = SpoolLayout::of(b)?;
        Some(layout.with(b[SpoolLayout::LEN..].to_vec()))
    }

    /// [`from_spool`](Self::from_spool) of `v[start..]`, reusing `v`'s
    /// allocation (the bytes before the event are cut off in place).
    pub(crate) fn from_spool_vec(mut v: Vec<u8>, start: usize) -> Option<Encoded> {
        let layout = SpoolLayout::of(v.get(start..)?)?;
        v.drain(..start + SpoolLayout::LEN);
        Some(layout.with(v))
    }

    /// Whether `b` is a valid spool form (nothing allocated).
    pub(crate) fn is_spool_form(b: &[u8]) -> bool {
        SpoolLayout::of(b).is_some()
    }

    /// The event's `id`.
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding};
    /// use ossa_events::Event;
    /// let ev = Event::builder().id("run-7/e-1").source("/agents/a").ty("dev.ossa.agent.started").build()?;
    /// // The same in every encoding, never percent-encoded.
    /// assert_eq!(Encoded::new(&ev, Encoding::HttpBinary)?.id(), "run-7/e-1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> &str {
        slice_str(&self.buf, 0, self.id_end as usize)
    }
    /// [`id`](Self::id)'s bytes, not checked for UTF-8 again: for a sink
    /// that only compares them.
    #[cfg(feature = "kafka")]
    pub(crate) fn id_bytes(&self) -> &[u8] {
        self.buf.get(..self.id_end as usize).unwrap_or(&[])
    }
    /// The encoding this event is in.
    ///
    /// A sink can check what it was handed (the emitter never mixes encodings):
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding};
    /// use ossa_events::Event;
    /// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.ossa.agent.started").build()?;
    /// let enc = Encoded::new(&ev, Encoding::HttpBinary)?;
    /// assert_eq!(enc.encoding(), Encoding::HttpBinary);
    /// assert!(enc.json().is_empty()); // binary: no JSON form
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }
    /// The compact JSON event ([`Encoding::Json`]); empty for binary encodings.
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding};
    /// use ossa_events::Event;
    /// let ev = Event::builder()
    ///     .id("e-1")
    ///     .source("/agents/a")
    ///     .ty("dev.ossa.tool.called")
    ///     .data_json(r#"{"tool":"search"}"#)
    ///     .build()?;
    /// let enc = Encoded::new(&ev, Encoding::Json)?;
    /// let text = std::str::from_utf8(enc.json())?;
    /// assert!(text.ends_with(r#""data":{"tool":"search"}}"#));
    /// assert!(!text.contains('\n')); // compact: one line per event in JSON Lines
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn json(&self) -> &[u8] {
        match self.encoding {
            Encoding::Json => self.buf.get(self.id_end as usize..).unwrap_or(&[]),
            _ => &[],
        }
    }
    /// The binary-mode headers as `(name, value)`, values already in wire form;
    /// empty for [`Encoding::Json`].
    ///
    /// HTTP values are percent-encoded as the HTTP binding says; Kafka values
    /// are raw UTF-8. The content type is not among them: see
    /// [`content_type`](Self::content_type).
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding};
    /// use ossa_events::Event;
    /// let ev = Event::builder()
    ///     .id("e-1")
    ///     .source("/agents/a")
    ///     .ty("dev.ossa.agent.started")
    ///     .subject("Euro €")
    ///     .build()?;
    /// let http = Encoded::new(&ev, Encoding::HttpBinary)?;
    /// assert!(http.headers().any(|h| h == ("ce-subject", "Euro%20%E2%82%AC")));
    /// let kafka = Encoded::new(&ev, Encoding::KafkaBinary)?;
    /// assert!(kafka.headers().any(|h| h == ("ce_subject", "Euro €")));
    /// assert_eq!(Encoded::new(&ev, Encoding::Json)?.headers().count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        // One UTF-8 check of the whole header part (names and values were
        // written as UTF-8 by `Encoded::new`, and a spool record whose part
        // is not is refused when read: a part that is not, which `Encoded`
        // never holds, would give no headers), then the fields: a NUL is
        // ASCII, so both ends of each are on character boundaries.
        let part = self.header_part();
        let text = std::str::from_utf8(part).unwrap_or("");
        header_fields(text.as_bytes()).map_while(move |(name, value)| {
            Some((
                text.get(name.start..name.end)?,
                text.get(value.start..value.end)?,
            ))
        })
    }
    /// [`headers`](Self::headers) with the values as bytes: the form a Kafka
    /// record takes them in. The part is checked as UTF-8 whole, values
    /// too, as in [`headers`](Self::headers): for a typical event's 334
    /// bytes, all its fields took 108-113 ns this way against 154-173 ns
    /// with a check of each name alone (and 122 ns through `headers()`,
    /// which checks each value's ends; interleaved runs of a loop).
    #[cfg(any(feature = "kafka", test))]
    pub(crate) fn header_bytes(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        let text = std::str::from_utf8(self.header_part()).unwrap_or("");
        header_fields(text.as_bytes())
            .map_while(move |(name, value)| Some((text.get(name)?, text.as_bytes().get(value)?)))
    }
    /// The bytes of the header fields (binary modes): `name\0value\0`…
    fn header_part(&self) -> &[u8] {
        let end = match (self.encoding, self.content_type) {
            (Encoding::Json, _) => self.id_end as usize,
            (_, Some((start, _))) => start as usize,
            _ => self.head_end as usize,
        };
        self.buf.get(self.id_end as usize..end).unwrap_or(&[])
    }
    /// The content type of the body (binary modes), if any.
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding};
    /// use ossa_events::Event;
    /// let with_data = Event::builder()
    ///     .id("e-1")
    ///     .source("/agents/a")
    ///     .ty("dev.ossa.tool.called")
    ///     .data_json(r#"{"tool":"search"}"#)
    ///     .build()?;
    /// let enc = Encoded::new(&with_data, Encoding::HttpBinary)?;
    /// assert_eq!(enc.content_type(), Some("application/json"));
    /// // No data, no content type; and none in JSON (it is inside the event).
    /// let bare = Event::builder().id("e-2").source("/agents/a").ty("dev.ossa.agent.started").build()?;
    /// assert_eq!(Encoded::new(&bare, Encoding::HttpBinary)?.content_type(), None);
    /// assert_eq!(Encoded::new(&with_data, Encoding::Json)?.content_type(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn content_type(&self) -> Option<&str> {
        self.content_type
            .map(|(s, e)| slice_str(&self.buf, s as usize, e as usize))
    }
    /// The body (binary modes): the event's data; empty for [`Encoding::Json`].
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding};
    /// use ossa_events::Event;
    /// let ev = Event::builder()
    ///     .id("e-1")
    ///     .source("/agents/a")
    ///     .ty("dev.example.blob")
    ///     .data_binary("application/octet-stream", &[0, 159, 146, 150])
    ///     .build()?;
    /// // Binary mode carries binary data as is (structured JSON would base64 it).
    /// assert_eq!(Encoded::new(&ev, Encoding::KafkaBinary)?.body(), [0, 159, 146, 150]);
    /// assert!(Encoded::new(&ev, Encoding::Json)?.body().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn body(&self) -> &[u8] {
        match self.encoding {
            Encoding::Json => &[],
            _ => self.buf.get(self.head_end as usize..).unwrap_or(&[]),
        }
    }
    /// Whether the event has data (binary modes): a body, or data that
    /// writes no bytes (empty text or bytes), which the Kafka binding sends
    /// as an empty value where no data is no value. Always `false` for
    /// [`Encoding::Json`] (the data is inside the event).
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding};
    /// use ossa_events::{Data, Event};
    /// let b = || Event::builder().id("e-1").source("/agents/a").ty("dev.example.t");
    /// let empty = b().data(Data::Binary(b"")).build()?;
    /// let none = b().datacontenttype("text/plain").build()?;
    /// let empty = Encoded::new(&empty, Encoding::KafkaBinary)?;
    /// let none = Encoded::new(&none, Encoding::KafkaBinary)?;
    /// assert!(empty.body().is_empty() && none.body().is_empty());
    /// assert!(empty.has_data());
    /// assert!(!none.has_data());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn has_data(&self) -> bool {
        self.encoding != Encoding::Json && (self.data_empty || !self.body().is_empty())
    }
    /// Bytes held in memory (what the queue's byte limit counts).
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding};
    /// use ossa_events::Event;
    /// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.ossa.agent.started").build()?;
    /// let enc = Encoded::new(&ev, Encoding::Json)?;
    /// // Memory held, so at least the bytes written (and the id kept beside them).
    /// assert!(enc.size() >= enc.wire_len() + enc.id().len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn size(&self) -> usize {
        self.buf.capacity()
    }
    /// Bytes written: the id and the wire form (what a spool record holds
    /// besides its framing). [`size`](Self::size) is at least this.
    pub(crate) fn stored_len(&self) -> usize {
        self.buf.len()
    }
    /// Bytes of the event in its wire form (JSON, or headers plus body).
    ///
    /// What [`Metrics::bytes`](crate::Metrics::bytes) adds up for delivered events.
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding};
    /// use ossa_events::Event;
    /// let ev = Event::builder()
    ///     .id("e-1")
    ///     .source("/agents/a")
    ///     .ty("dev.ossa.tool.called")
    ///     .data_json(r#"{"tool":"search"}"#)
    ///     .build()?;
    /// let json = Encoded::new(&ev, Encoding::Json)?;
    /// assert_eq!(json.wire_len(), json.json().len());
    /// let binary = Encoded::new(&ev, Encoding::HttpBinary)?;
    /// assert!(binary.wire_len() > binary.body().len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wire_len(&self) -> usize {
        self.buf.len().saturating_sub(self.id_end as usize)
    }

    /// This event in `form`, when it is in an encoding the sink does not
    /// take: an event read back from a spool that an emitter with another
    /// sink, or another content mode, wrote. Read back into an event and
    /// encoded again (the same event: its id and attributes are kept); as
    /// it is when it is taken, or cannot be read back (the sink then fails
    /// it, saying why).
    pub(crate) fn into_form(self, form: Form) -> Encoded {
        let taken = self.encoding == form.encoding
            || (form.structured_too && self.encoding == Encoding::Json);
        if taken {
            return self;
        }
        match self.reencode(form) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(id = self.id(), error = %e, "spooled event not re-encoded for the sink");
                self
            }
        }
    }

    pub(crate) fn reencode(&self, form: Form) -> Result<Encoded, Error> {
        use ossa_events_core::parse;
        let mut buf = vec![0u8; self.buf.len() + 64];
        let mut scratch = ossa_events_core::Scratch::new(&mut buf);
        let err = |e: ossa_events_core::ParseError| {
            Error::Encode(format!("event {:?} read back: {e}", self.id()))
        };
        let mut headers: Vec<(&str, &[u8])> =
            self.headers().map(|(n, v)| (n, v.as_bytes())).collect();
        if let Some(ct) = self.content_type() {
            headers.push(("content-type", ct.as_bytes()));
        }
        let ev = match self.encoding {
            Encoding::Json => parse::json::parse_event(self.json(), &mut scratch).map_err(err)?,
            Encoding::KafkaBinary => {
                let value = self.has_data().then(|| self.body());
                parse::kafka::parse(headers, None, value, &mut scratch)
                    .map_err(err)?
                    .event
            }
            Encoding::HttpBinary => {
                let ev =
                    parse::http::parse_binary(headers, self.body(), &mut scratch).map_err(err)?;
                // An empty body reads as no data (HTTP binding 3.1.1), but
                // the spool form says the event had empty data: kept (as
                // `parse::kafka` reads an empty value, 3.2.2), else a JSON
                // or Kafka sink sent the event without its `data`.
                if self.data_empty && ev.data().is_none() {
                    use ossa_events_core::{Data, uri};
                    let ct = ev.datacontenttype();
                    let empty = match ct {
                        Some(c) if uri::is_text_media_type(c) && !uri::is_json_media_type(c) => {
                            Data::Text("")
                        }
                        _ => Data::Binary(&[]),
                    };
                    ev.to_builder()
                        .data(empty)
                        .build()
                        .map_err(|e| Error::Invalid(Box::new(e)))?
                } else {
                    ev
                }
            }
        };
        Self::encode(&ev, form, <[u8]>::to_vec)
    }
}

/// How the emitter encodes events for its sink: in the sink's encoding,
/// or, for a binary sink that takes structured events too, as JSON where
/// binary mode cannot carry one ([`Encoded::for_sink`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Form {
    pub(crate) encoding: Encoding,
    pub(crate) structured_too: bool,
}

impl Form {
    /// In `encoding`, whatever the event.
    pub(crate) fn exactly(encoding: Encoding) -> Form {
        Form {
            encoding,
            structured_too: false,
        }
    }

    /// As `sink` takes events.
    pub(crate) fn of<S: Sink + ?Sized>(sink: &S) -> Form {
        Form {
            encoding: sink.encoding(),
            structured_too: sink.encoding() != Encoding::Json && sink.takes_structured(),
        }
    }
}

/// The most bytes of `ce-` headers (names and percent-encoded values) and
/// content type an event sends in HTTP binary mode: past that, a sink that
/// takes structured events gets it structured ([`Encoded::for_sink`]).
/// Collectors cap a request's head at 8 to 16 KiB (nginx and Apache 8 KiB a
/// line, Node.js 16 KiB, this crate's receiver 16 KiB) and answer 431 or
/// close, and ureq writes a head of at most 128 KiB; a structured body has
/// neither limit.
pub const HTTP_BINARY_HEADERS_MAX: usize = 8 * 1024;

/// Whether `body`, written for `ev` in HTTP binary mode, reads back as its
/// data (HTTP binding, 3.1.2: the body is the data). Not so for empty data
/// (`""`, no bytes: an empty body is read as no data, by this crate's
/// parser and the sdk's), nor for bytes that are not JSON under a JSON
/// `Content-Type` (the `datacontenttype`; a receiver reads such a body as JSON and refuses the
/// message): a sink that takes structured events gets those structured, as
/// `http_types::encode` writes them. (Other data under a JSON type is JSON
/// already: text is written as a JSON string.) Nor for text and JSON, which
/// are written as UTF-8, under a `charset` that reads those bytes as other
/// text (`utf-16`, non-ASCII under `iso-8859-1`): a peer decodes the body by
/// it (the C# SDK does), where the JSON `data` string is the text itself.
pub(crate) fn binary_body_reads_back(ev: &Event<'_>, body: &[u8]) -> bool {
    use ossa_events_core::Data;
    match ev.data() {
        None => true,
        Some(_) if body.is_empty() => false,
        Some(Data::Binary(_) | Data::Base64(_))
            if binary::content_type(ev).is_some_and(ossa_events_core::uri::is_json_media_type) =>
        {
            std::str::from_utf8(body).is_ok()
                && ossa_events_core::json::validate(body, ossa_events_core::MAX_DATA_DEPTH).is_ok()
        }
        Some(Data::Binary(_) | Data::Base64(_)) => true,
        Some(_) => binary::content_type(ev)
            .is_none_or(|ct| ossa_events_core::uri::charset_reads_utf8(ct, body)),
    }
}

/// Whether `value`, written for `ev` in Kafka binary mode, reads back as
/// its data (Kafka binding, 3.2.2: the value is the data, no data is no
/// value): as [`binary_body_reads_back`], but an empty value is empty data,
/// except under a JSON `content-type`, where `parse::kafka` reads it as no
/// data (JSON text is never empty).
pub(crate) fn kafka_value_reads_back(ev: &Event<'_>, value: &[u8]) -> bool {
    if ev.data().is_some() && value.is_empty() {
        return !binary::content_type(ev).is_some_and(ossa_events_core::uri::is_json_media_type);
    }
    binary_body_reads_back(ev, value)
}

/// Whether a content type is one of CloudEvents' own formats
/// (`application/cloudevents`, `+json`, `-batch+json`…): the prefix a
/// receiver tells a structured message by (HTTP and Kafka bindings, 3.).
pub(crate) fn names_a_format(ct: Option<&str>) -> bool {
    ct.is_some_and(ossa_events_core::format::binary::names_a_format)
}

/// Sends the events that are in `want` through `send`; an event in another
/// encoding (a sink misused by hand; the emitter never does it) is failed for
/// good, not sent: it could not be read back. The others are sent, in order.
/// A binary sink that [takes structured events](Sink::takes_structured)
/// also takes events in JSON, and sends them structured.
#[cfg(any(feature = "http", feature = "kafka"))]
pub(crate) fn takes(want: Encoding, got: Encoding) -> bool {
    got == want || got == Encoding::Json
}

#[cfg(any(feature = "http", feature = "kafka"))]
pub(crate) fn send_in_encoding(
    events: &[Encoded],
    want: Encoding,
    sink: &str,
    mut send: impl FnMut(&[Encoded]) -> Result<(), SendError>,
) -> Result<(), SendError> {
    let mut failed: Option<SendError> = None;
    let mut add = |e: SendError| {
        failed = Some(match failed.take() {
            Some(f) => f.merge(e),
            None => e,
        });
    };
    let mut start = 0;
    while start < events.len() {
        let rest = events.get(start..).unwrap_or(&[]);
        let good = rest
            .iter()
            .take_while(|e| takes(want, e.encoding()))
            .count();
        if good > 0
            && let Err(e) = send(rest.get(..good).unwrap_or(&[]))
        {
            add(e.clamped(good).shifted(start));
        }
        start += good;
        if let Some(b) = events.get(start) {
            add(SendError::fatal_at(
                start..start + 1,
                Error::Encode(format!(
                    "event {:?} is encoded as {:?}, the {sink} sink sends {want:?}",
                    b.id(),
                    b.encoding(),
                )),
            ));
            start += 1;
        }
    }
    failed.map_or(Ok(()), Err)
}

/// A pipelined batch, as [`Sink::start`] hands it out and [`Sink::settle`]
/// takes it back: the sink says which of its batches the worker means, so
/// nothing is paired by position.
///
/// ```
/// use ossa_events::sink::Ticket;
/// let t = Ticket::new(7);
/// assert_eq!(t.get(), 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

impl Ticket {
    /// A ticket with the sink's own number for the batch.
    pub const fn new(n: u64) -> Self {
        Ticket(n)
    }
    /// The sink's number for the batch.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// A destination for events. Implement it to send events anywhere; the
/// emitter's worker calls it from its own thread, one batch at a time.
///
/// A call that panics is contained: the events of that call (for
/// [`flush`](Self::flush), those of the call before it) fail for good, and
/// the worker goes on. [`encoding`](Self::encoding),
/// [`takes_structured`](Self::takes_structured),
/// [`max_batch`](Self::max_batch) and [`pipeline`](Self::pipeline) are
/// asked once, when the emitter is built; one that panics answers its
/// default.
///
/// A sink is not to [`flush`](crate::Emitter::flush) the emitter it belongs
/// to, nor `emit` into it under [`Overflow::Block`](crate::Overflow::Block):
/// either would wait for the worker, which is the caller, so a flush answers
/// at once ([`Error::Timeout`], its events still queued) and an `emit` into
/// a full queue is refused at once, as under `DropNewest`. A sink that
/// holds a clone of its emitter keeps the emitter alive: dropping every
/// other handle then neither shuts it down nor waits for its delivery (call
/// [`Emitter::shutdown`](crate::Emitter::shutdown), or hold a
/// [`WeakEmitter`](crate::WeakEmitter) instead).
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
    ///
    /// The emitter encodes every event in this form before the sink sees it:
    ///
    /// ```
    /// use std::sync::{Arc, Mutex, PoisonError};
    /// use ossa_events::sink::{Encoded, Encoding, Sink};
    /// use ossa_events::{Emitter, EventBuilder, SendError};
    ///
    /// /// Records the `ce-type` header of each event.
    /// struct Types(Arc<Mutex<Vec<String>>>);
    /// impl Sink for Types {
    ///     fn encoding(&self) -> Encoding {
    ///         Encoding::HttpBinary
    ///     }
    ///     fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
    ///         let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
    ///         for e in events {
    ///             let ty = e.headers().find(|(n, _)| *n == "ce-type").map(|(_, v)| v.to_owned());
    ///             seen.extend(ty);
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let emitter = Emitter::builder("/agents/a").sink(Types(seen.clone())).build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.flush()?;
    /// assert_eq!(*seen.lock().unwrap_or_else(PoisonError::into_inner), ["dev.example.tick"]);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    fn encoding(&self) -> Encoding {
        Encoding::Json
    }
    /// Whether this sink, when its [`encoding`](Self::encoding) is binary,
    /// also takes events encoded as JSON, which it sends in structured
    /// mode. Defaults to `false`: every event comes in the sink's encoding.
    ///
    /// With `true`, the emitter encodes as JSON an event binary mode cannot
    /// carry ([`Encoded::for_sink`]): one whose `datacontenttype` is a
    /// CloudEvents format, which receivers would take for a structured
    /// message, and, in HTTP binary mode, one whose headers would outgrow a
    /// request's head. The crate's HTTP and Kafka sinks say `true`.
    ///
    /// ```
    /// use ossa_events::sink::{HttpMode, HttpSink, NullSink, Sink};
    /// assert!(!NullSink::new().takes_structured());
    /// let http = HttpSink::builder("http://127.0.0.1:9/e").mode(HttpMode::Binary).build()?;
    /// assert!(http.takes_structured());
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    fn takes_structured(&self) -> bool {
        false
    }
    /// Most events the sink takes in one [`send`](Self::send). Defaults to no limit;
    /// `0` counts as `1`.
    ///
    /// The emitter never hands over more (it also keeps to its own
    /// [`batch_size`](crate::EmitterBuilder::batch_size)):
    ///
    /// ```
    /// use std::sync::{Arc, Mutex, PoisonError};
    /// use ossa_events::sink::{Encoded, Sink};
    /// use ossa_events::{Emitter, EventBuilder, SendError};
    ///
    /// /// Takes at most two events per call and records each call's size.
    /// struct Pairs(Arc<Mutex<Vec<usize>>>);
    /// impl Sink for Pairs {
    ///     fn max_batch(&self) -> usize {
    ///         2
    ///     }
    ///     fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
    ///         self.0.lock().unwrap_or_else(PoisonError::into_inner).push(events.len());
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let sizes = Arc::new(Mutex::new(Vec::new()));
    /// let emitter = Emitter::builder("/agents/a").sink(Pairs(sizes.clone())).build()?;
    /// for _ in 0..5 {
    ///     emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// }
    /// assert_eq!(emitter.flush()?.delivered, 5);
    /// let sizes = sizes.lock().unwrap_or_else(PoisonError::into_inner);
    /// assert!(sizes.iter().all(|&n| n <= 2));
    /// assert_eq!(sizes.iter().sum::<usize>(), 5);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    fn max_batch(&self) -> usize {
        usize::MAX
    }
    /// Delivers `events`, in order, and answers for each: `Ok(())` when
    /// every one was delivered, else a [`SendError`] naming the events that
    /// were not, each with its error and whether a retry may help. The
    /// worker counts the others delivered, fails for good those marked
    /// [`Retry::No`](crate::Retry::No), and retries only those marked
    /// [`Retry::Yes`](crate::Retry::Yes) under its
    /// [`RetryPolicy`](crate::RetryPolicy), so nothing delivered is sent twice
    /// (an event whose [`flush`](Self::flush) then failed is not delivered).
    ///
    /// ```
    /// use std::time::Duration;
    /// use std::sync::{Arc, Mutex, PoisonError};
    /// use ossa_events::sink::{Encoded, Sink};
    /// use ossa_events::{Emitter, Error, EventBuilder, Retry, RetryPolicy, SendError};
    ///
    /// /// Delivers the first event of its first batch, then loses the connection.
    /// struct Flaky {
    ///     ids: Arc<Mutex<Vec<String>>>,
    ///     failed: bool,
    /// }
    /// impl Sink for Flaky {
    ///     fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
    ///         let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
    ///         if !self.failed && events.len() > 1 {
    ///             self.failed = true;
    ///             ids.push(events[0].id().to_owned());
    ///             let err = Error::Transport("connection reset".into());
    ///             return Err(SendError::at(1..events.len(), Retry::LATER, err));
    ///         }
    ///         ids.extend(events.iter().map(|e| e.id().to_owned()));
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let ids = Arc::new(Mutex::new(Vec::new()));
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(Flaky { ids: ids.clone(), failed: false })
    ///     .retry(RetryPolicy::default().base(Duration::from_millis(1)))
    ///     .build()?;
    /// for _ in 0..3 {
    ///     emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// }
    /// assert_eq!(emitter.flush()?.delivered, 3);
    /// let m = emitter.metrics();
    /// assert_eq!((m.retried, m.failed), (2, 0)); // the two behind the failure
    /// let mut ids = ids.lock().unwrap_or_else(PoisonError::into_inner).clone();
    /// ids.dedup();
    /// assert_eq!(ids.len(), 3); // each event once
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError>;
    /// Pushes out anything the sink buffers itself. Defaults to nothing.
    ///
    /// The worker calls it after every [`send_by`](Self::send_by) or
    /// [`settle`](Self::settle) that delivered something, and after a
    /// [`start`](Self::start) that settled its batch at once (an `Err` that
    /// delivered some of it, as `send_by` answers), not after one that
    /// handed out a ticket; a failed flush fails the events that call
    /// delivered (with the flush's first error). Those it marks
    /// [`Retry::Yes`](crate::Retry::Yes) are retried as any are: handed to
    /// `send_by` again, so a sink that still holds them (staged, buffered)
    /// is to push them out then, not take them a second time.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex, PoisonError};
    /// use ossa_events::sink::{Encoded, Sink};
    /// use ossa_events::{Emitter, EventBuilder, SendError};
    ///
    /// /// Stages events and commits them on flush.
    /// struct Staged {
    ///     staged: Vec<String>,
    ///     committed: Arc<Mutex<Vec<String>>>,
    /// }
    /// impl Sink for Staged {
    ///     fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
    ///         self.staged.extend(events.iter().map(|e| e.id().to_owned()));
    ///         Ok(())
    ///     }
    ///     fn flush(&mut self) -> Result<(), SendError> {
    ///         let mut committed = self.committed.lock().unwrap_or_else(PoisonError::into_inner);
    ///         committed.append(&mut self.staged);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let committed = Arc::new(Mutex::new(Vec::new()));
    /// let sink = Staged { staged: Vec::new(), committed: committed.clone() };
    /// let emitter = Emitter::builder("/agents/a").sink(sink).build()?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
    /// emitter.flush()?;
    /// assert_eq!(committed.lock().unwrap_or_else(PoisonError::into_inner).len(), 2);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    fn flush(&mut self) -> Result<(), SendError> {
        Ok(())
    }
    /// [`send`](Self::send), giving up when `deadline` passes. The emitter's
    /// worker calls this one: once shutdown begins, `deadline` reports the
    /// shutdown deadline, so a sink that waits on its own (for delivery
    /// reports, for queue room) can stop waiting in time and let shutdown
    /// count what is left, instead of holding it up. Events not confirmed
    /// delivered by then are reported as not delivered, in the returned
    /// [`SendError`].
    ///
    /// Defaults to [`send`](Self::send), for sinks whose own time limits are
    /// short.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ossa_events::sink::SendDeadline;
    ///
    /// // No shutdown under way: no deadline.
    /// assert_eq!(SendDeadline::NONE.get(), None);
    /// let d = SendDeadline::at(Instant::now() + Duration::from_secs(5));
    /// assert!(!d.passed());
    /// assert!(SendDeadline::at(Instant::now()).passed());
    /// ```
    fn send_by(&mut self, events: &[Encoded], deadline: SendDeadline<'_>) -> Result<(), SendError> {
        let _ = deadline;
        self.send(events)
    }
    /// Most batches the emitter's worker may have [`start`](Self::start)ed
    /// and not yet [`settle`](Self::settle)d. Defaults to `1` (and `0`
    /// counts as `1`): the worker then calls only [`send_by`](Self::send_by),
    /// one batch at a time.
    ///
    /// A sink whose acknowledgements come back on their own (Kafka's
    /// delivery reports) returns more, so that the next batch is on its way
    /// while the previous one waits: the worker starts up to this many
    /// batches, then settles the oldest by its [`Ticket`], and counts each
    /// event as `settle` answers for it. Events of a batch whose settle says
    /// retry are sent again through `send_by`, under the emitter's retry policy.
    ///
    /// ```
    /// use ossa_events::sink::{NullSink, Sink};
    /// assert_eq!(NullSink::new().pipeline(), 1);
    /// ```
    fn pipeline(&self) -> usize {
        1
    }
    /// Starts delivering `events` without waiting for their
    /// acknowledgement, and hands out the [`Ticket`] that
    /// [`settle`](Self::settle) takes back for this batch. `Err` means the
    /// batch is settled already (as `send_by` would answer): the worker does
    /// not call `settle` for it. Called only when [`pipeline`](Self::pipeline)
    /// is more than 1.
    ///
    /// Defaults to [`send_by`](Self::send_by), which settles the batch
    /// here; the default [`settle`](Self::settle) then has nothing to wait for.
    ///
    /// ```
    /// use ossa_events::sink::{Encoded, Encoding, NullSink, SendDeadline, Sink};
    /// use ossa_events::Event;
    /// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.example.tick").build()?;
    /// let batch = [Encoded::new(&ev, Encoding::Json)?];
    /// let mut sink = NullSink::new();
    /// let ticket = sink.start(&batch, SendDeadline::NONE)?;
    /// sink.settle(ticket, &batch, SendDeadline::NONE)?; // the outcome of that batch
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn start(
        &mut self,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<Ticket, SendError> {
        self.send_by(events, deadline).map(|()| Ticket::new(0))
    }
    /// Waits for the outcome of the batch that [`start`](Self::start)
    /// handed out `ticket` for, which is `events`, and answers for each
    /// event as [`send`](Self::send) does. A ticket the sink does not know,
    /// or events that are not that batch's, fail the call for good (a bug in
    /// the caller: the sink cannot say what became of them).
    /// Defaults to `Ok(())` (the default `start` delivered it already).
    ///
    /// See [`start`](Self::start) for an example.
    fn settle(
        &mut self,
        ticket: Ticket,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<(), SendError> {
        let _ = (ticket, events, deadline);
        Ok(())
    }
    /// Waits until the outcome of the batch of `ticket` is known, so that
    /// [`settle`](Self::settle) would answer without waiting, or until
    /// `until` passes; returns whether it is known. Called only when
    /// [`pipeline`](Self::pipeline) is more than 1.
    ///
    /// The emitter's worker asks this before it settles the oldest batch
    /// while a lane is free, with `until` no later than when the oldest
    /// queued event falls due (the flush interval): an acknowledgement
    /// that is slow to come then holds back neither that event nor the
    /// shutdown, as a `settle` that waits for it would (`until` is a few
    /// milliseconds away at most, so a shutdown begun meanwhile is soon
    /// seen). Answer `true` for a ticket the sink does not know (`settle`
    /// says what is wrong). A sink that cannot wait may answer `false` at
    /// once: the worker then waits for `until` itself.
    ///
    /// Defaults to `true` at once: the worker then calls `settle`, which
    /// waits as long as it must, and events emitted meanwhile wait with it.
    ///
    /// ```
    /// use std::time::Instant;
    /// use ossa_events::sink::{Encoded, Encoding, NullSink, SendDeadline, Sink};
    /// use ossa_events::Event;
    /// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.example.tick").build()?;
    /// let batch = [Encoded::new(&ev, Encoding::Json)?];
    /// let mut sink = NullSink::new();
    /// let ticket = sink.start(&batch, SendDeadline::NONE)?;
    /// // Settled by `start` already: ready.
    /// assert!(sink.wait_ready(ticket, Instant::now()));
    /// sink.settle(ticket, &batch, SendDeadline::NONE)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn wait_ready(&mut self, ticket: Ticket, until: Instant) -> bool {
        let _ = (ticket, until);
        true
    }
}

/// When the send in progress must be over, as [`Sink::send_by`] sees it: no
/// limit, a fixed instant, or (from the emitter's worker) the emitter's
/// shutdown deadline, read afresh at each [`get`](Self::get) because shutdown
/// can begin while a send is waiting.
///
/// A sink that waits (for acknowledgements, for room) checks it, so the
/// emitter's shutdown is not held up:
///
/// ```
/// use std::time::{Duration, Instant};
/// use ossa_events::sink::{Encoded, SendDeadline, Sink};
/// use ossa_events::{Error, Phase, SendError};
///
/// /// Waits up to 10 s for an acknowledgement that does not come.
/// struct SlowAck;
/// impl Sink for SlowAck {
///     fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
///         self.send_by(events, SendDeadline::NONE)
///     }
///     fn send_by(&mut self, _: &[Encoded], deadline: SendDeadline<'_>) -> Result<(), SendError> {
///         let own_limit = Instant::now() + Duration::from_secs(10);
///         while Instant::now() < own_limit {
///             if deadline.passed() {
///                 return Err(SendError::retryable(Error::Timeout(Phase::Shutdown), None));
///             }
///             std::thread::sleep(Duration::from_millis(1));
///         }
///         Err(SendError::retryable(Error::Timeout(Phase::Send), None))
///     }
/// }
///
/// let started = Instant::now();
/// let soon = SendDeadline::at(Instant::now() + Duration::from_millis(20));
/// let err = SlowAck.send_by(&[], soon).unwrap_err();
/// assert!(matches!(err.error(), Error::Timeout(Phase::Shutdown)));
/// assert!(started.elapsed() < Duration::from_secs(1));
/// ```
#[derive(Clone, Copy)]
pub struct SendDeadline<'a> {
    fixed: Option<Instant>,
    live: Option<&'a dyn LiveDeadline>,
}

/// Where a live deadline comes from (the emitter's worker state).
pub(crate) trait LiveDeadline: Sync {
    /// The deadline as it stands now.
    fn now(&self) -> Option<Instant>;
}

impl fmt::Debug for SendDeadline<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SendDeadline").field(&self.get()).finish()
    }
}

impl SendDeadline<'static> {
    /// No deadline: the sink's own time limits apply.
    pub const NONE: SendDeadline<'static> = SendDeadline {
        fixed: None,
        live: None,
    };

    /// A fixed deadline.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ossa_events::sink::SendDeadline;
    /// let when = Instant::now() + Duration::from_secs(2);
    /// let d = SendDeadline::at(when);
    /// assert_eq!(d.get(), Some(when));
    /// assert!(!d.passed());
    /// ```
    pub const fn at(when: Instant) -> Self {
        SendDeadline {
            fixed: Some(when),
            live: None,
        }
    }
}

impl<'a> SendDeadline<'a> {
    /// A deadline that `now` reads afresh each time (the worker's shutdown deadline).
    pub(crate) fn live(now: &'a dyn LiveDeadline) -> Self {
        SendDeadline {
            fixed: None,
            live: Some(now),
        }
    }

    /// The deadline as it stands now, if any.
    ///
    /// A sink that waits uses it to bound each wait:
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ossa_events::sink::SendDeadline;
    /// let own_limit = Instant::now() + Duration::from_secs(30);
    /// let d = SendDeadline::at(Instant::now() + Duration::from_millis(50));
    /// let wait_until = d.get().map_or(own_limit, |t| t.min(own_limit));
    /// assert!(wait_until < own_limit);
    /// // No deadline: only the sink's own limit.
    /// assert_eq!(SendDeadline::NONE.get(), None);
    /// ```
    pub fn get(&self) -> Option<Instant> {
        let live = self.live.and_then(|l| l.now());
        match (self.fixed, live) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the deadline has passed.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ossa_events::sink::SendDeadline;
    /// assert!(SendDeadline::at(Instant::now()).passed());
    /// assert!(!SendDeadline::at(Instant::now() + Duration::from_secs(60)).passed());
    /// // No deadline never passes.
    /// assert!(!SendDeadline::NONE.passed());
    /// ```
    pub fn passed(&self) -> bool {
        self.get().is_some_and(|d| Instant::now() >= d)
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn encoding(&self) -> Encoding {
        (**self).encoding()
    }
    fn takes_structured(&self) -> bool {
        (**self).takes_structured()
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
    fn send_by(&mut self, events: &[Encoded], deadline: SendDeadline<'_>) -> Result<(), SendError> {
        (**self).send_by(events, deadline)
    }
    fn pipeline(&self) -> usize {
        (**self).pipeline()
    }
    fn start(
        &mut self,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<Ticket, SendError> {
        (**self).start(events, deadline)
    }
    fn settle(
        &mut self,
        ticket: Ticket,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<(), SendError> {
        (**self).settle(ticket, events, deadline)
    }
    fn wait_ready(&mut self, ticket: Ticket, until: Instant) -> bool {
        (**self).wait_ready(ticket, until)
    }
}

/// A sink that accepts everything and keeps nothing.
///
/// For benchmarks, tests, and a switch that turns event output off.
///
/// ```
/// use ossa_events::sink::NullSink;
/// use ossa_events::{Emitter, EventBuilder};
/// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
/// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
/// let report = emitter.flush()?;
/// // Everything counts as delivered.
/// assert_eq!((report.delivered, report.failed), (1, 0));
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl NullSink {
    /// The null sink.
    ///
    /// `const`, so it can be a `static` or a default in a `const` context.
    ///
    /// ```
    /// use ossa_events::sink::{NullSink, Sink};
    /// const OFF: NullSink = NullSink::new();
    /// let mut sink = OFF;
    /// assert!(sink.send(&[]).is_ok());
    /// assert_eq!(sink.max_batch(), usize::MAX);
    /// ```
    pub const fn new() -> Self {
        NullSink
    }
}

impl Sink for NullSink {
    fn send(&mut self, _events: &[Encoded]) -> Result<(), SendError> {
        Ok(())
    }
}

/// A minimal JSON event with id `id` (source `/s`, type `t`), for tests.
#[cfg(test)]
pub(crate) fn minimal_event(id: &str) -> Encoded {
    let ev = Event::builder().id(id).source("/s").ty("t").build();
    Encoded::new(&ev.expect("a valid event"), Encoding::Json).expect("encodes")
}

/// The `name\0value\0` fields of a header part, as ranges of `part`; they
/// end at the first empty name or at a field with no NUL after it.
///
/// The NULs are found a word at a time: fields are ~14 bytes, too short
/// for `memchr`'s set-up to pay (`split` with it put the Kafka sink's
/// thread at 9 % of its samples here under `kafka_sink`), and a byte loop
/// was half of the time its `launch` spent outside librdkafka.
fn header_fields(part: &[u8]) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
    let mut at = 0;
    let mut field = move || {
        let start = at;
        let end = nul_from(part, start)?;
        at = end + 1;
        Some(start..end)
    };
    std::iter::from_fn(move || {
        let name = field().filter(|n| !n.is_empty())?;
        Some((name, field()?))
    })
}

/// The index of the first NUL in `bytes` at or after `from`.
fn nul_from(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(w) = bytes.get(i..i + 8) {
        let x = <[u8; 8]>::try_from(w).map_or(u64::MAX, u64::from_le_bytes);
        // The lowest byte set here is the first zero byte (a borrow can
        // only mark bytes above one).
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(i + (zero.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let rest = bytes.get(i..)?;
    rest.iter().position(|&b| b == 0).map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary sink of a user's, which takes only what it asks for.
    struct Binary(Encoding);
    impl Sink for Binary {
        fn encoding(&self) -> Encoding {
            self.0
        }
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            Ok(())
        }
    }

    /// An event that carries events, or whose HTTP headers are too large,
    /// goes structured only to a sink that takes structured events: a
    /// user's binary sink gets every event in its own encoding. (The
    /// fallback applied to every sink, and a user's sink that reads
    /// `headers()` and `body()` found them empty: found by a review.)
    #[test]
    fn only_a_sink_that_takes_structured_events_gets_them() {
        let big = "s".repeat(HTTP_BINARY_HEADERS_MAX);
        let carrier = crate::Event::builder()
            .id("c")
            .source("/s")
            .ty("t")
            .data_json(r#"{"specversion":"1.0","id":"in","source":"/s","type":"t"}"#)
            .datacontenttype("application/cloudevents+json")
            .build()
            .unwrap();
        let large = crate::Event::builder()
            .id("l")
            .source("/s")
            .ty("t")
            .subject(&big)
            .build()
            .unwrap();
        let long_ct = format!("text/plain; p={big}");
        let long_type = crate::Event::builder()
            .id("t")
            .source("/s")
            .ty("t")
            .data_text(&long_ct, "x")
            .build()
            .unwrap();
        struct Taking(Encoding);
        impl Sink for Taking {
            fn encoding(&self) -> Encoding {
                self.0
            }
            fn takes_structured(&self) -> bool {
                true
            }
            fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
                Ok(())
            }
        }
        for enc in [Encoding::HttpBinary, Encoding::KafkaBinary] {
            for ev in [&carrier, &large, &long_type] {
                let mine = Encoded::for_sink(ev, &Binary(enc)).unwrap();
                assert_eq!(mine.encoding(), enc, "{}", ev.id());
                assert!(mine.headers().any(|(n, _)| n.ends_with("type")));
            }
            let taking = |ev| Encoded::for_sink(ev, &Taking(enc)).unwrap().encoding();
            assert_eq!(taking(&carrier), Encoding::Json);
            let http_only = if enc == Encoding::HttpBinary {
                Encoding::Json
            } else {
                enc
            };
            // The content type counts toward the head too.
            assert_eq!((taking(&large), taking(&long_type)), (http_only, http_only));
        }
    }

    /// The spool form of `enc` with `edit` applied to its bytes after the
    /// layout (the offsets stay as they are).
    fn edited(enc: &Encoded, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = Vec::new();
        enc.write_spool(&mut b);
        let mut buf = b.split_off(SpoolLayout::LEN);
        edit(&mut buf);
        b.extend_from_slice(&buf);
        b
    }

    #[test]
    fn a_spool_record_is_an_event_only_when_its_text_is_text_and_its_fields_pair_up() {
        let ev = Event::builder()
            .id("e-1")
            .source("/s")
            .ty("t")
            .subject("Euro €")
            .data_text("text/plain", "body \u{0}\u{ff}")
            .build()
            .unwrap();
        for encoding in [Encoding::Json, Encoding::HttpBinary, Encoding::KafkaBinary] {
            let enc = Encoded::new(&ev, encoding).unwrap();
            let same = edited(&enc, |_| {});
            let back = Encoded::from_spool(&same).expect("its own spool form reads back");
            assert_eq!(back.headers().count(), enc.headers().count());
            assert_eq!(
                (back.content_type(), back.body()),
                (enc.content_type(), enc.body())
            );
            // The € of the subject (JSON and Kafka; HTTP percent-encodes
            // it), cut in two: not text.
            let euro = enc.buf.windows(3).position(|w| w == "€".as_bytes());
            if let Some(at) = euro {
                let cut = edited(&enc, |b| b[at + 1] = b'x');
                assert!(
                    Encoded::from_spool(&cut).is_none(),
                    "{encoding:?}: not UTF-8"
                );
            }
        }
        let enc = Encoded::new(&ev, Encoding::KafkaBinary).unwrap();
        let start = enc.id_end as usize;
        // A name with no value: the NUL after the first value becomes text.
        let first_value_end = start
            + enc.buf[start..]
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == 0)
                .nth(1)
                .map(|(i, _)| i)
                .unwrap();
        let odd = edited(&enc, |b| b[first_value_end] = b'x');
        assert!(
            Encoded::from_spool(&odd).is_none(),
            "fields that do not pair up"
        );
        // An empty name: the first name "ce_specversion" becomes
        // "\0xx…x\0", so that the fields are "", "xx…x", "", "1.0", …
        // (as many as before, plus two).
        let name_len = enc.buf[start..].iter().position(|&b| b == 0).unwrap();
        let mut empty_name = Vec::new();
        enc.write_spool(&mut empty_name);
        let at = SpoolLayout::LEN + start;
        empty_name[at..at + name_len].fill(b'x');
        assert!(Encoded::from_spool(&empty_name).is_some());
        empty_name[at] = 0;
        empty_name[at + name_len - 1] = 0;
        assert!(Encoded::from_spool(&empty_name).is_none(), "an empty name");
        // The content type must close the head.
        let mut ct = Vec::new();
        enc.write_spool(&mut ct);
        let (a, b) = enc.content_type.unwrap();
        ct[9..13].copy_from_slice(&(a - 1).to_le_bytes());
        ct[13..17].copy_from_slice(&(b - 1).to_le_bytes());
        assert!(
            Encoded::from_spool(&ct).is_none(),
            "a content type inside the fields"
        );
    }

    #[test]
    fn empty_data_is_told_from_no_data_through_the_spool_and_older_records_read_as_before() {
        let b = || Event::builder().id("e-1").source("/s").ty("t");
        let empty = b()
            .data(ossa_events_core::Data::Binary(b""))
            .build()
            .unwrap();
        let empty_text = b().data_text("text/plain", "").build().unwrap();
        let none = b().datacontenttype("text/plain").build().unwrap();
        let some = b().data_text("text/plain", "x").build().unwrap();
        for encoding in [Encoding::HttpBinary, Encoding::KafkaBinary] {
            let has = |ev: &Event<'_>| {
                let enc = Encoded::new(ev, encoding).unwrap();
                let back = Encoded::from_spool(&edited(&enc, |_| {})).unwrap();
                assert_eq!(back.has_data(), enc.has_data(), "{encoding:?}: {ev:?}");
                enc.has_data()
            };
            assert_eq!(
                [has(&empty), has(&empty_text), has(&none), has(&some)],
                [true, true, false, true],
                "{encoding:?}"
            );
            // A record from before the flag (an empty body was no data).
            let enc = Encoded::new(&empty, encoding).unwrap();
            let mut old = edited(&enc, |_| {});
            old[0] &= !SpoolLayout::DATA_EMPTY;
            assert!(!Encoded::from_spool(&old).unwrap().has_data());
            // The flag over a body, or over JSON, is not a record we write.
            let mut over_body = edited(&Encoded::new(&some, encoding).unwrap(), |_| {});
            over_body[0] |= SpoolLayout::DATA_EMPTY;
            assert!(Encoded::from_spool(&over_body).is_none(), "{encoding:?}");
        }
        let json = Encoded::new(&empty, Encoding::Json).unwrap();
        assert!(!json.has_data());
        let mut flagged = edited(&json, |_| {});
        flagged[0] |= SpoolLayout::DATA_EMPTY;
        assert!(Encoded::from_spool(&flagged).is_none());
    }

    /// An event with empty data, spooled in HTTP binary mode for a sink
    /// that takes only that (its spool form says the data is empty), and
    /// read back by an emitter whose sink takes JSON or Kafka: it keeps its
    /// empty data. (Read back as an HTTP message, an empty body is no data,
    /// and the event went out without its `data`.)
    #[test]
    fn empty_data_spooled_in_http_binary_mode_stays_empty_data_in_another_form() {
        let b = || Event::builder().id("e-1").source("/s").ty("t");
        let cases = [
            (
                b().data_text("text/plain", "").build().unwrap(),
                r#""data":"""#,
            ),
            (
                b().data_binary("application/octet-stream", b"")
                    .build()
                    .unwrap(),
                r#""data_base64":"""#,
            ),
            (
                b().data_binary("application/json", b"").build().unwrap(),
                r#""data_base64":"""#,
            ),
        ];
        for (ev, member) in &cases {
            let http = Encoded::new(ev, Encoding::HttpBinary).unwrap();
            let spooled = Encoded::from_spool(&edited(&http, |_| {})).unwrap();
            let json = spooled.into_form(Form::exactly(Encoding::Json));
            let text = std::str::from_utf8(json.json()).unwrap();
            assert!(text.contains(member), "{ev:?}: {text}");
            assert_eq!(
                text,
                std::str::from_utf8(Encoded::new(ev, Encoding::Json).unwrap().json()).unwrap()
            );
            let spooled = Encoded::from_spool(&edited(&http, |_| {})).unwrap();
            let kafka = spooled.into_form(Form::exactly(Encoding::KafkaBinary));
            assert_eq!(kafka.encoding(), Encoding::KafkaBinary);
            assert!(kafka.has_data(), "{ev:?}");
        }
        // No data stays no data.
        let none = b().datacontenttype("text/plain").build().unwrap();
        let http = Encoded::new(&none, Encoding::HttpBinary).unwrap();
        let json = Encoded::from_spool(&edited(&http, |_| {}))
            .unwrap()
            .into_form(Form::exactly(Encoding::Json));
        assert!(!std::str::from_utf8(json.json()).unwrap().contains("data\""));
    }

    use proptest::strategy::Just;

    proptest::proptest! {
        /// The word-at-a-time search finds what a byte loop finds, from any
        /// start, in any text (NULs anywhere, bytes with the high bit set).
        #[test]
        fn nul_from_finds_the_first_nul(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![Just(0u8), Just(0x80u8), Just(1u8), proptest::num::u8::ANY],
                0..80,
            ),
            from in 0usize..90,
        ) {
            let want = bytes
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == 0))
                .map(|p| from + p);
            proptest::prop_assert_eq!(nul_from(&bytes, from), want);
        }
    }

    #[test]
    fn kafka_header_fields_are_split_whole_with_empty_and_multibyte_values() {
        let ev = Event::builder()
            .id("e-1")
            .source("/s")
            .ty("t")
            .subject("Euro € 😀")
            .extension("empty", ossa_events_core::ExtValue::String(""))
            .extension("zlast", ossa_events_core::ExtValue::String("z"))
            .data_text("text/plain", "body")
            .build()
            .unwrap();
        let enc = Encoded::new(&ev, Encoding::KafkaBinary).unwrap();
        let got: Vec<(&str, &[u8])> = enc.header_bytes().collect();
        assert_eq!(
            got,
            [
                ("ce_specversion", &b"1.0"[..]),
                ("ce_id", b"e-1"),
                ("ce_source", b"/s"),
                ("ce_type", b"t"),
                ("ce_subject", "Euro € 😀".as_bytes()),
                ("ce_empty", b""),
                ("ce_zlast", b"z"),
            ]
        );
        // The content type is not among them; the body follows.
        assert_eq!(enc.content_type(), Some("text/plain"));
        assert_eq!(enc.body(), b"body");
        let text: Vec<(&str, &str)> = enc.headers().collect();
        assert_eq!(text[4], ("ce_subject", "Euro € 😀"));
        assert_eq!(text[5], ("ce_empty", ""));
    }

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

    /// Kafka binding 3.2.1/3.2.2: in binary mode the value is the data and
    /// `content-type` its `datacontenttype`, so a receiver reads bytes that
    /// are not JSON under a JSON type as JSON (and refuses the record), and
    /// an empty value under a JSON type as no data. A sink that takes
    /// structured events gets those structured, as HTTP's does; empty data
    /// under another type stays an empty value (the parser reads it back).
    #[test]
    fn kafka_binary_sends_structured_what_its_value_would_not_read_back_as() {
        struct Taking;
        impl Sink for Taking {
            fn encoding(&self) -> Encoding {
                Encoding::KafkaBinary
            }
            fn takes_structured(&self) -> bool {
                true
            }
            fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
                Ok(())
            }
        }
        let b = |id: &'static str| Event::builder().id(id).source("/s").ty("t");
        let evs = [
            b("not-json")
                .data_binary("application/json", b"\xff\x00")
                .build()
                .unwrap(),
            b("empty-json")
                .data_binary("application/json", b"")
                .build()
                .unwrap(),
            b("empty-text").data_text("text/plain", "").build().unwrap(),
            b("empty-bytes")
                .data_binary("application/octet-stream", b"")
                .build()
                .unwrap(),
            b("none")
                .datacontenttype("application/json")
                .build()
                .unwrap(),
        ];
        for ev in &evs {
            let enc = Encoded::for_sink(ev, &Taking).unwrap();
            // The record a consumer gets, read with the binding's parser.
            let mut headers: Vec<(&str, &[u8])> = enc.header_bytes().collect();
            let structured = [("content-type", &b"application/cloudevents+json"[..])];
            let value = match enc.encoding() {
                Encoding::Json => {
                    headers = structured.to_vec();
                    Some(enc.json())
                }
                _ => {
                    if let Some(ct) = enc.content_type() {
                        headers.push(("content-type", ct.as_bytes()));
                    }
                    enc.has_data().then(|| enc.body())
                }
            };
            let mut scratch = vec![0u8; 1024];
            let back = ossa_events_core::parse::kafka::parse(
                headers.iter().copied(),
                None,
                value,
                &mut ossa_events_core::Scratch::new(&mut scratch),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", ev.id()));
            assert!(
                back.event.same_as(ev, false),
                "{}: {:?}",
                ev.id(),
                back.event
            );
        }
        // What reads back stays binary (bytes that are JSON are read as JSON).
        let json_bytes = b("json-bytes")
            .data_binary("application/json", b"[1]")
            .build()
            .unwrap();
        for ev in evs[2..].iter().chain([&json_bytes]) {
            let enc = Encoded::for_sink(ev, &Taking).unwrap();
            assert_eq!(enc.encoding(), Encoding::KafkaBinary, "{}", ev.id());
        }
    }
}
