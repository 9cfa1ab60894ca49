//! Binary content mode: attributes as protocol headers, data as the body.
//!
//! [`Headers`] iterates `(name, value)` pairs for HTTP (`ce-` names, values
//! percent-encoded as the HTTP binding §3.1.3.2 requires) or Kafka (`ce_`
//! names, UTF-8 values as they are). `datacontenttype` is not among them: it
//! travels as `Content-Type` / `content-type` ([`content_type`]). The body is
//! written by [`write_body`] or borrowed by [`body_slice`].
//!
//! ```
//! use ossa_events_core::{format::binary::{self, Binding}, Event};
//! let ev = Event::builder().id("1").source("/s").ty("t").subject("Euro € 😀").build()?;
//! let headers: Vec<(String, String)> = binary::headers(&ev, Binding::Http)
//!     .map(|h| (h.name().to_string(), h.value().to_string()))
//!     .collect();
//! assert_eq!(headers[4], ("ce-subject".into(), "Euro%20%E2%82%AC%20%F0%9F%98%80".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use embedded_io::Write;

use crate::attr::ExtValue;
use crate::error::EncodeError;
use crate::event::{Data, Event};
use crate::io::write_all;
use crate::time::Timestamp;

/// The protocol whose header conventions to follow.
///
/// ```
/// use ossa_events_core::{format::binary::{self, Binding}, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").subject("a b").build()?;
/// let subject = |b| binary::headers(&ev, b).find(|h| h.attribute() == "subject").map(|h| (h.name().to_string(), h.value().to_string()));
/// assert_eq!(subject(Binding::Http), Some(("ce-subject".into(), "a%20b".into())));
/// assert_eq!(subject(Binding::Kafka), Some(("ce_subject".into(), "a b".into())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Binding {
    /// HTTP: `ce-` prefix, percent-encoded values.
    Http,
    /// Kafka: `ce_` prefix, values as UTF-8.
    Kafka,
}

impl Binding {
    /// The header name prefix: `ce-` or `ce_`.
    ///
    /// ```
    /// use ossa_events_core::format::binary::Binding;
    /// assert_eq!(Binding::Http.prefix(), "ce-");
    /// assert_eq!(Binding::Kafka.prefix(), "ce_");
    /// ```
    pub const fn prefix(self) -> &'static str {
        match self {
            Binding::Http => "ce-",
            Binding::Kafka => "ce_",
        }
    }
    /// The name of the content type header: `Content-Type` or `content-type`.
    ///
    /// ```
    /// use ossa_events_core::format::binary::Binding;
    /// assert_eq!(Binding::Http.content_type_header(), "Content-Type");
    /// assert_eq!(Binding::Kafka.content_type_header(), "content-type");
    /// ```
    pub const fn content_type_header(self) -> &'static str {
        match self {
            Binding::Http => "Content-Type",
            Binding::Kafka => "content-type",
        }
    }
}

/// The value of the content type header for `ev` in binary mode: its
/// `datacontenttype`, or `application/json` when unset and the data is JSON or
/// text (the JSON format's implied type), or none (binary data without a
/// declared type, or no data).
///
/// ```
/// use ossa_events_core::{format::binary, Data, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").data(Data::Json("{}")).build()?;
/// assert_eq!(binary::content_type(&ev), Some("application/json")); // implied
/// let ev = Event::builder().id("1").source("/s").ty("t").data(Data::Binary(&[1])).build()?;
/// assert_eq!(binary::content_type(&ev), None); // send no Content-Type
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// An event whose `datacontenttype` names one of CloudEvents' own formats
/// (an event that carries an event or a batch) cannot go in binary mode:
/// its receiver would take the message for a structured one and read the
/// data as the event. Check [`names_a_format`] and write it structured.
pub fn content_type<'a>(ev: &Event<'a>) -> Option<&'a str> {
    ev.effective_content_type()
}

/// Whether content type `ct` is one of CloudEvents' own formats
/// (`application/cloudevents`, `+json`, `-batch+json`…, in any case): the
/// prefix by which a receiver tells a structured message from a binary one
/// (the HTTP and Kafka bindings, §3). An event with such a
/// `datacontenttype` must be written in structured mode.
///
/// ```
/// use ossa_events_core::format::binary;
/// assert!(binary::names_a_format("application/cloudevents+json"));
/// assert!(binary::names_a_format(" Application/CloudEvents-Batch+JSON; charset=utf-8"));
/// assert!(!binary::names_a_format("application/json"));
/// ```
pub fn names_a_format(ct: &str) -> bool {
    const FORMAT: &[u8] = b"application/cloudevents";
    ct.trim_start()
        .as_bytes()
        .get(..FORMAT.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(FORMAT))
}

/// The headers of `ev` for `binding`, in a fixed order: specversion, id,
/// source, type, dataschema, subject, time, then the extensions.
///
/// ```
/// use ossa_events_core::{format::binary::{self, Binding}, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").ossa_agent_id("planner")
///     .data_json("{}").build()?;
/// let names: Vec<String> = binary::headers(&ev, Binding::Kafka).map(|h| h.name().to_string()).collect();
/// // `datacontenttype` is not a `ce_` header: it goes in `content-type`.
/// assert_eq!(names, ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_ossaagentid"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn headers<'e, 'a>(ev: &'e Event<'a>, binding: Binding) -> Headers<'e, 'a> {
    Headers {
        ev,
        binding,
        pos: 0,
    }
}

/// Iterator over the binary-mode headers of an event.
///
/// ```
/// use ossa_events_core::{format::binary::{self, Binding}, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
/// let mut name_buf = [0u8; 64];
/// let mut value_buf = [0u8; 256];
/// for h in binary::headers(&ev, Binding::Http) {
///     // No allocation: each pair is formatted into stack buffers.
///     let name = h.name().write_into(&mut name_buf).ok_or("name too long")?;
///     let value = h.value().write_into(&mut value_buf).ok_or("value too long")?;
///     assert!(name.starts_with("ce-") && !value.is_empty());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Headers<'e, 'a> {
    ev: &'e Event<'a>,
    binding: Binding,
    pos: usize,
}

impl<'a> Iterator for Headers<'_, 'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        loop {
            let pos = self.pos;
            self.pos += 1;
            let (name, value): (&'a str, Value<'a>) = match pos {
                0 => ("specversion", Value::Str("1.0")),
                1 => ("id", Value::Str(self.ev.id)),
                2 => ("source", Value::Str(self.ev.source)),
                3 => ("type", Value::Str(self.ev.ty)),
                4 => match self.ev.dataschema {
                    Some(v) => ("dataschema", Value::Str(v)),
                    None => continue,
                },
                5 => match self.ev.subject {
                    Some(v) => ("subject", Value::Str(v)),
                    None => continue,
                },
                6 => match self.ev.time {
                    Some(t) => ("time", Value::Time(t)),
                    None => continue,
                },
                n => {
                    let e = self.ev.extensions.get(n - 7)?;
                    (e.name, Value::Ext(e.value))
                }
            };
            return Some(Header {
                binding: self.binding,
                name,
                value,
            });
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Str(&'a str),
    Time(Timestamp),
    Ext(ExtValue<'a>),
}

/// One binary-mode header.
///
/// ```
/// use ossa_events_core::{format::binary::{self, Binding}, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").time_str("2026-01-01T00:00:00Z").build()?;
/// let time = binary::headers(&ev, Binding::Http).find(|h| h.attribute() == "time").ok_or("no time")?;
/// assert_eq!(time.name().to_string(), "ce-time");
/// assert_eq!(time.value().to_string(), "2026-01-01T00:00:00Z");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    binding: Binding,
    name: &'a str,
    value: Value<'a>,
}

impl<'a> Header<'a> {
    /// The attribute name, without prefix (`time`, `ossaagentid`).
    ///
    /// ```
    /// use ossa_events_core::{format::binary::{self, Binding}, Event};
    /// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let attrs: Vec<&str> = binary::headers(&ev, Binding::Http).map(|h| h.attribute()).collect();
    /// assert_eq!(attrs, ["specversion", "id", "source", "type"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attribute(&self) -> &'a str {
        self.name
    }
    /// The header name: prefix + attribute name.
    ///
    /// ```
    /// use ossa_events_core::{format::binary::{self, Binding}, Event};
    /// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let first = binary::headers(&ev, Binding::Kafka).next().ok_or("no header")?;
    /// assert_eq!(first.name().to_string(), "ce_specversion");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> HeaderName<'a> {
        HeaderName {
            prefix: self.binding.prefix(),
            name: self.name,
        }
    }
    /// The header value (percent-encoded for HTTP).
    ///
    /// ```
    /// use ossa_events_core::{format::binary::{self, Binding}, Event};
    /// let ev = Event::builder().id("1").source("/s").ty("t").subject("100%").build()?;
    /// let subject = binary::headers(&ev, Binding::Http).find(|h| h.attribute() == "subject").ok_or("none")?;
    /// assert_eq!(subject.value().to_string(), "100%25");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn value(&self) -> HeaderValue<'a> {
        HeaderValue {
            binding: self.binding,
            value: self.value,
        }
    }
}

/// A header name: a `ce-`/`ce_` prefix and an attribute name.
///
/// ```
/// use ossa_events_core::{format::binary::{self, Binding}, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
/// let name = binary::headers(&ev, Binding::Http).nth(1).ok_or("none")?.name();
/// assert_eq!(name.to_string(), "ce-id"); // prefix and attribute, joined without a copy
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderName<'a> {
    prefix: &'static str,
    name: &'a str,
}

impl<'a> HeaderName<'a> {
    /// Length in bytes.
    ///
    /// ```
    /// use ossa_events_core::{format::binary::{self, Binding}, Event};
    /// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let name = binary::headers(&ev, Binding::Http).next().ok_or("none")?.name();
    /// assert_eq!(name.len(), "ce-specversion".len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.prefix.len() + self.name.len()
    }
    /// Never empty; here for symmetry with `len`.
    ///
    /// ```
    /// use ossa_events_core::{format::binary::{self, Binding}, Event};
    /// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// assert!(binary::headers(&ev, Binding::Http).all(|h| !h.name().is_empty()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Writes the name into `buf`, returning it, or `None` if `buf` is too small.
    ///
    /// ```
    /// use ossa_events_core::{format::binary::{self, Binding}, Event};
    /// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let name = binary::headers(&ev, Binding::Http).next().ok_or("none")?.name();
    /// let mut buf = [0u8; 32];
    /// assert_eq!(name.write_into(&mut buf), Some("ce-specversion"));
    /// assert_eq!(name.write_into(&mut [0u8; 4]), None); // too small
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_into<'b>(&self, buf: &'b mut [u8]) -> Option<&'b str> {
        let p = self.prefix.len();
        let n = self.len();
        buf.get_mut(..p)?.copy_from_slice(self.prefix.as_bytes());
        buf.get_mut(p..n)?.copy_from_slice(self.name.as_bytes());
        core::str::from_utf8(buf.get(..n)?).ok()
    }
    /// Writes the name to `w`.
    ///
    /// ```
    /// use ossa_events_core::{format::binary::{self, Binding}, Event};
    /// use ossa_events_core::io::SliceWriter;
    /// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let mut buf = [0u8; 64];
    /// let mut w = SliceWriter::new(&mut buf);
    /// for h in binary::headers(&ev, Binding::Kafka) {
    ///     h.name().write_to(&mut w)?;
    ///     ossa_events_core::io::write_all(&mut w, b" ")?;
    /// }
    /// assert_eq!(w.written(), b"ce_specversion ce_id ce_source ce_type ");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_to<W: Write + ?Sized>(&self, w: &mut W) -> Result<(), EncodeError<W::Error>> {
        write_all(w, self.prefix.as_bytes())?;
        write_all(w, self.name.as_bytes()).map_err(Into::into)
    }
}

impl fmt::Display for HeaderName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix)?;
        f.write_str(self.name)
    }
}

/// A header value in its wire form.
///
/// ```
/// use ossa_events_core::{format::binary::{self, Binding}, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").subject("Grüße").build()?;
/// let v = binary::headers(&ev, Binding::Http).find(|h| h.attribute() == "subject").ok_or("none")?.value();
/// assert_eq!(v.to_string(), "Gr%C3%BC%C3%9Fe");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HeaderValue<'a> {
    binding: Binding,
    value: Value<'a>,
}

/// Whether byte `b` must be percent-encoded in an HTTP header value (HTTP binding §3.1.3.2):
/// space, `"`, `%`, and anything outside U+0021–U+007E.
///
/// ```
/// use ossa_events_core::format::binary::needs_percent;
/// assert!(needs_percent(b' ') && needs_percent(b'%') && needs_percent(b'"'));
/// assert!(needs_percent(0xC3)); // every byte of a non-ASCII character
/// assert!(!needs_percent(b'/'));
/// ```
#[inline]
pub const fn needs_percent(b: u8) -> bool {
    b <= 0x20 || b >= 0x7f || b == b'"' || b == b'%'
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

impl<'a> HeaderValue<'a> {
    /// The value as a borrowed string when it needs no encoding or formatting
    /// (the common case): no copy at all.
    ///
    /// ```
    /// use ossa_events_core::{format::binary::{self, Binding}, Event};
    /// let ev = Event::builder().id("1").source("/s").ty("t").subject("a b").build()?;
    /// let value = |attr| binary::headers(&ev, Binding::Http).find(|h| h.attribute() == attr).map(|h| h.value());
    /// assert_eq!(value("source").and_then(|v| v.as_plain_str()), Some("/s")); // borrowed as is
    /// assert_eq!(value("subject").and_then(|v| v.as_plain_str()), None);    // needs `%20`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_plain_str(&self) -> Option<&'a str> {
        let s = match self.value {
            Value::Str(s) => s,
            Value::Ext(v) => v.as_str()?,
            Value::Time(_) => return None,
        };
        match self.binding {
            Binding::Kafka => Some(s),
            Binding::Http => (!s.bytes().any(needs_percent)).then_some(s),
        }
    }

    /// Writes the wire form to `w`.
    ///
    /// ```
    /// use ossa_events_core::{format::binary::{self, Binding}, Event};
    /// use ossa_events_core::io::SliceWriter;
    /// let ev = Event::builder().id("1").source("/s").ty("t").subject("x=\"1\"").build()?;
    /// let v = binary::headers(&ev, Binding::Http).find(|h| h.attribute() == "subject").ok_or("none")?.value();
    /// let mut buf = [0u8; 64];
    /// let mut w = SliceWriter::new(&mut buf);
    /// v.write_to(&mut w)?;
    /// assert_eq!(w.written(), b"x=%221%22");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_to<W: Write + ?Sized>(&self, w: &mut W) -> Result<(), EncodeError<W::Error>> {
        match self.value {
            Value::Str(s) => self.write_str(w, s),
            Value::Time(t) => {
                let mut buf = [0u8; Timestamp::MAX_LEN];
                write_all(w, t.write_to(&mut buf).as_bytes()).map_err(Into::into)
            }
            Value::Ext(v) => match v.as_str() {
                Some(s) => self.write_str(w, s),
                // Integer, Boolean, Timestamp, Base64: all printable ASCII without space, '"' or '%'.
                None => v.write_canonical(w).map_err(Into::into),
            },
        }
    }

    fn write_str<W: Write + ?Sized>(
        &self,
        w: &mut W,
        s: &str,
    ) -> Result<(), EncodeError<W::Error>> {
        if self.binding == Binding::Kafka {
            return write_all(w, s.as_bytes()).map_err(Into::into);
        }
        let bytes = s.as_bytes();
        // Eight bytes at a time through the common case: nothing to encode.
        let plain = crate::swar::header_plain_prefix(bytes);
        if plain == bytes.len() {
            return write_all(w, bytes).map_err(Into::into);
        }
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate().skip(plain) {
            if needs_percent(b) {
                if start < i {
                    write_all(w, bytes.get(start..i).unwrap_or(&[]))?;
                }
                let esc = [
                    b'%',
                    HEX_UPPER[(b >> 4) as usize],
                    HEX_UPPER[(b & 0xf) as usize],
                ];
                write_all(w, &esc)?;
                start = i + 1;
            }
        }
        if start < bytes.len() {
            write_all(w, bytes.get(start..).unwrap_or(&[]))?;
        }
        Ok(())
    }

    /// Writes the wire form into `buf`, returning it, or `None` if `buf` is too small.
    ///
    /// ```
    /// use ossa_events_core::{format::binary::{self, Binding}, Event};
    /// use ossa_events_core::ExtValue;
    /// let ev = Event::builder().id("1").source("/s").ty("t").extension("retries", ExtValue::Integer(3)).build()?;
    /// let v = binary::headers(&ev, Binding::Http).find(|h| h.attribute() == "retries").ok_or("none")?.value();
    /// let mut buf = [0u8; 16];
    /// assert_eq!(v.write_into(&mut buf), Some("3")); // canonical string form
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_into<'b>(&self, buf: &'b mut [u8]) -> Option<&'b str> {
        let mut w = crate::io::SliceWriter::new(buf);
        self.write_to(&mut w).ok()?;
        let out = w.into_written();
        core::str::from_utf8(out).ok()
    }
}

impl fmt::Display for HeaderValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Fmt<'f, 'g>(&'f mut fmt::Formatter<'g>);
        impl embedded_io::ErrorType for Fmt<'_, '_> {
            type Error = crate::io::SliceFull;
        }
        impl Write for Fmt<'_, '_> {
            fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
                // Only ASCII or whole UTF-8 strings reach here.
                let s = core::str::from_utf8(buf).map_err(|_| crate::io::SliceFull)?;
                self.0.write_str(s).map_err(|_| crate::io::SliceFull)?;
                Ok(buf.len())
            }
            fn flush(&mut self) -> Result<(), Self::Error> {
                Ok(())
            }
        }
        self.write_to(&mut Fmt(f)).map_err(|_| fmt::Error)
    }
}

/// The body bytes of `ev` in binary mode, when they can be borrowed as they are
/// (JSON given as text, text with a non-JSON type, bytes); `None` when there is
/// no data or it must be produced ([`write_body`]).
///
/// ```
/// use ossa_events_core::{format::binary, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").data_json(r#"{"a":1}"#).build()?;
/// assert_eq!(binary::body_slice(&ev), Some(&br#"{"a":1}"#[..])); // send it with no copy
/// #[derive(serde::Serialize)]
/// struct P { a: u8 }
/// let ev = Event::builder().id("1").source("/s").ty("t").data_serialize(&P { a: 1 }).build()?;
/// assert_eq!(binary::body_slice(&ev), None); // must be written: use `write_body`
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn body_slice<'a>(ev: &Event<'a>) -> Option<&'a [u8]> {
    match ev.data? {
        Data::Json(raw) => Some(raw.as_bytes()),
        Data::Text(s) if !ev.data_is_json() => Some(s.as_bytes()),
        Data::Binary(b) => Some(b),
        _ => None,
    }
}

/// Writes the binary-mode body of `ev`: JSON data as JSON, text as its bytes
/// (as a JSON string when the content type is JSON), binary data as raw bytes.
/// Writes nothing when the event has no data.
///
/// Text and JSON go out as UTF-8 whatever `charset` the content type names.
/// Where [`charset_reads_utf8`](crate::uri::charset_reads_utf8) says that
/// charset reads these bytes as other text (`utf-16`, non-ASCII under
/// `iso-8859-1`), a receiver that decodes by it reads other data: write
/// such an event structured (the std crate's sinks do).
///
/// ```
/// use ossa_events_core::{format::binary, io::SliceWriter, Data, Event};
/// // Base64 data (as parsed from `data_base64`) goes out as raw bytes.
/// let ev = Event::builder().id("1").source("/s").ty("t")
///     .datacontenttype("application/octet-stream").data(Data::Base64("3q2+7w==")).build()?;
/// let mut buf = [0u8; 16];
/// let mut w = SliceWriter::new(&mut buf);
/// binary::write_body(&ev, &mut w)?;
/// assert_eq!(w.written(), [0xde, 0xad, 0xbe, 0xef]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_body<W: Write + ?Sized>(
    ev: &Event<'_>,
    w: &mut W,
) -> Result<(), EncodeError<W::Error>> {
    let Some(data) = ev.data else {
        return Ok(());
    };
    match data {
        Data::Json(raw) => write_all(w, raw.as_bytes()).map_err(Into::into),
        Data::Text(s) => {
            if ev.data_is_json() {
                crate::json::escape::write_str(w, s).map_err(Into::into)
            } else {
                write_all(w, s.as_bytes()).map_err(Into::into)
            }
        }
        Data::Binary(b) => write_all(w, b).map_err(Into::into),
        Data::Base64(s) => crate::base64::decode_to(s.as_bytes(), w).map_err(|e| match e {
            crate::base64::DecodeToError::Write(e) => EncodeError::Io(e),
            // The event was validated: its Base64 is well-formed.
            _ => EncodeError::WriteZero,
        }),
        Data::Serialize(p) => crate::json::ser::write_payload(w, p).map_err(Into::into),
    }
}
