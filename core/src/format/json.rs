//! The JSON event format: structured events, batches and JSON Lines.
//!
//! Output is compact and byte-reproducible: attributes in a fixed order
//! (`specversion`, `id`, `source`, `type`, `datacontenttype`, `dataschema`,
//! `subject`, `time`, extensions in their order, then `data` or `data_base64`),
//! raw JSON data re-emitted without insignificant whitespace, member order kept.
//!
//! ```
//! use ossa_events_core::{format::json, Event};
//! let ev = Event::builder().id("1").source("/s").ty("t").data_json(r#"{ "a": 1 }"#).build()?;
//! let mut buf = [0u8; 256];
//! let n = json::to_slice(&ev, &mut buf)?;
//! assert_eq!(
//!     &buf[..n],
//!     br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":{"a":1}}"#
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use embedded_io::Write;

use crate::attr::{ExtValue, fmt_i32};
use crate::error::{EncodeError, PayloadError};
use crate::event::{Data, Event};
use crate::io::{
    Counter, Gather, Plain, Room, RoomError, SliceFull, SliceWriter, Transcode, WriteError,
    write_all, write_transcoded,
};
#[cfg(target_pointer_width = "64")]
use crate::json::escape::is_json_plain;
use crate::json::escape::write_str;
use crate::time::Timestamp;

/// Media type of a structured JSON event.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// Media type of a JSON batch.
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";
/// Media type of JSON Lines (one structured event per line).
pub const JSONL_CONTENT_TYPE: &str = "application/jsonl";

#[inline]
fn put<W: Write + ?Sized>(w: &mut W, b: &[u8]) -> Result<(), EncodeError<W::Error>> {
    write_all(w, b).map_err(Into::into)
}

/// [`member`], into the writer's buffer in one step when it is memory, the
/// value needs no escaping and all of it fits (on 64-bit targets: three
/// writes were most of the cost of short members).
#[inline(always)]
fn member_in<S: Room + ?Sized>(
    s: &mut S,
    key: &[u8],
    value: &str,
) -> Result<(), EncodeError<RoomError<S>>> {
    #[cfg(target_pointer_width = "64")]
    if let Some((buf, len)) = s.room() {
        let v = value.as_bytes();
        let at = *len;
        if let Some(dst) = buf.get_mut(at..at + key.len() + v.len() + 1)
            && is_json_plain(v)
        {
            let (k, rest) = dst.split_at_mut(key.len().min(dst.len()));
            crate::io::copy_into(k, key);
            if let Some(d) = rest.get_mut(..v.len()) {
                crate::io::copy_into(d, v);
            }
            if let Some(q) = rest.last_mut() {
                *q = b'"';
            }
            *len = at + key.len() + v.len() + 1;
            return Ok(());
        }
    }
    member(s.w(), key, value)
}

/// The `time` member's key.
const TIME_KEY: &[u8; 9] = b",\"time\":\"";

/// The `time` member written straight into the writer's buffer when it is
/// memory and has room: the timestamp's digits are not staged on the stack
/// and copied (a 16-byte load over the byte stores just made there waited
/// for them: ~10 % of build + encode's time in `perf`). `false` when the
/// caller must write it.
#[inline(always)]
fn time_in<S: Room + ?Sized>(s: &mut S, t: &Timestamp) -> bool {
    #[cfg(target_pointer_width = "64")]
    if let Some((buf, len)) = s.room() {
        let at = *len;
        let k = TIME_KEY.len();
        if let Some(dst) = buf.get_mut(at..at + k + Timestamp::MAX_LEN + 1) {
            let (key, rest) = dst.split_at_mut(k);
            key.copy_from_slice(TIME_KEY);
            if let Some(ts) = rest.first_chunk_mut::<{ Timestamp::MAX_LEN }>() {
                let n = t.encode(ts);
                if let Some(q) = rest.get_mut(n) {
                    *q = b'"';
                    *len = at + k + n + 1;
                    return true;
                }
            }
        }
    }
    let _ = (s, t);
    false
}

/// An extension's `,"name":"value"` for a string value, in one step as
/// [`member_in`] does (names are `[a-z0-9]+`: no escaping).
#[inline(always)]
fn ext_string_in<S: Room + ?Sized>(
    s: &mut S,
    name: &str,
    value: &str,
) -> Result<(), EncodeError<RoomError<S>>> {
    #[cfg(target_pointer_width = "64")]
    if let Some((buf, len)) = s.room() {
        let (n, v) = (name.as_bytes(), value.as_bytes());
        let at = *len;
        if let Some(dst) = buf.get_mut(at..at + n.len() + v.len() + 6)
            && is_json_plain(v)
        {
            // `,"` name `":"` value `"`
            if let Some(d) = dst.get_mut(..2) {
                d.copy_from_slice(b",\"");
            }
            if let Some(d) = dst.get_mut(2..2 + n.len()) {
                crate::io::copy_into(d, n);
            }
            if let Some(d) = dst.get_mut(2 + n.len()..5 + n.len()) {
                d.copy_from_slice(b"\":\"");
            }
            if let Some(d) = dst.get_mut(5 + n.len()..5 + n.len() + v.len()) {
                crate::io::copy_into(d, v);
            }
            if let Some(q) = dst.last_mut() {
                *q = b'"';
            }
            *len = at + n.len() + v.len() + 6;
            return Ok(());
        }
    }
    let w = s.w();
    put(w, b",\"")?;
    put(w, name.as_bytes())?;
    put(w, b"\":")?;
    write_str(w, value).map_err(Into::into)
}

/// Writes `key` (given with its comma, quotes, colon and the value's opening
/// quote, e.g. `,"id":"`), the escaped value and the closing quote.
#[inline]
fn member<W: Write + ?Sized>(
    w: &mut W,
    key: &[u8],
    value: &str,
) -> Result<(), EncodeError<W::Error>> {
    put(w, key)?;
    crate::json::escape::write_str_body(w, value.as_bytes())?;
    put(w, b"\"")
}

/// Maps errors of a writer wrapped in [`Gather`] back to the inner writer's.
fn ungather<E>(e: EncodeError<WriteError<E>>) -> EncodeError<E> {
    match e {
        EncodeError::Io(WriteError::Io(e)) => EncodeError::Io(e),
        EncodeError::Io(WriteError::WriteZero) | EncodeError::WriteZero => EncodeError::WriteZero,
        EncodeError::Payload(p) => EncodeError::Payload(p),
    }
}

/// Writes `ev` as one compact structured JSON event.
///
/// The pieces of the event are gathered in a small stack buffer, so `w` sees
/// a few large writes rather than one per key and value.
///
/// ```
/// use ossa_events_core::{format::json, io::SliceWriter, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").subject("a \"quoted\" word").build()?;
/// let mut buf = [0u8; 256];
/// let mut w = SliceWriter::new(&mut buf); // or a UART, a socket: any embedded_io::Write
/// json::write_json(&ev, &mut w)?;
/// assert_eq!(w.written(), br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"a \"quoted\" word"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline]
pub fn write_json<W: Write + ?Sized>(
    ev: &Event<'_>,
    w: &mut W,
) -> Result<(), EncodeError<W::Error>> {
    let mut g = Gather::new(w);
    write_json_direct(ev, &mut g).map_err(ungather)?;
    g.finish().map_err(Into::into)
}

/// [`write_json`] without gathering: for writers that are memory already
/// (the batch arena), where gathering would copy every byte twice.
#[inline]
pub(crate) fn write_json_unbuffered<W: Write + ?Sized>(
    ev: &Event<'_>,
    w: &mut W,
) -> Result<(), EncodeError<W::Error>> {
    write_json_direct(ev, &mut Plain(w))
}

fn write_json_direct<S: Room + ?Sized>(
    ev: &Event<'_>,
    s: &mut S,
) -> Result<(), EncodeError<RoomError<S>>> {
    member_in(s, b"{\"specversion\":\"1.0\",\"id\":\"", ev.id)?;
    member_in(s, b",\"source\":\"", ev.source)?;
    member_in(s, b",\"type\":\"", ev.ty)?;
    if let Some(v) = ev.datacontenttype {
        member_in(s, b",\"datacontenttype\":\"", v)?;
    }
    if let Some(v) = ev.dataschema {
        member_in(s, b",\"dataschema\":\"", v)?;
    }
    if let Some(v) = ev.subject {
        member_in(s, b",\"subject\":\"", v)?;
    }
    if let Some(t) = ev.time
        && !time_in(s, &t)
    {
        // Key, timestamp and closing quote in one write; the timestamp is
        // ASCII by construction (no UTF-8 check, no escaping).
        // Copied from one template (key, then zeros) rather than zeroed and
        // then keyed: on a Cortex-M the zeroing of an unaligned tail is
        // `__aeabi_memclr`, 208 B of flash that nothing else uses.
        const KEY: &[u8; 9] = TIME_KEY;
        const TEMPLATE: [u8; KEY.len() + Timestamp::MAX_LEN + 1] = {
            let mut t = [0u8; KEY.len() + Timestamp::MAX_LEN + 1];
            let mut i = 0;
            while i < KEY.len() {
                t[i] = KEY[i];
                i += 1;
            }
            t
        };
        let mut buf = TEMPLATE;
        let (_, rest) = buf.split_at_mut(KEY.len());
        let n = match rest.first_chunk_mut::<{ Timestamp::MAX_LEN }>() {
            Some(ts) => t.encode(ts),
            None => 0,
        };
        if let Some(q) = rest.get_mut(n) {
            *q = b'"';
        }
        put(s.w(), buf.get(..KEY.len() + n + 1).unwrap_or(&[]))?;
    }
    let mut derived = ev.derived_tp;
    for e in ev.extensions.iter() {
        // The `traceparent` an emitter derived: its name is known and its
        // value (hex digits and `-`) needs no escaping, so it is copied,
        // not scanned.
        if derived & 1 != 0
            && let ExtValue::String(v) = e.value
        {
            let w = s.w();
            put(w, b",\"traceparent\":\"")?;
            put(w, v.as_bytes())?;
            put(w, b"\"")?;
        } else if cfg!(target_pointer_width = "64")
            && let ExtValue::String(v) = e.value
        {
            // (Devices keep the one path below: smaller.)
            ext_string_in(s, e.name, v)?;
        } else {
            // Extension names are [a-z0-9]+: no escaping needed.
            let w = s.w();
            put(w, b",\"")?;
            put(w, e.name.as_bytes())?;
            put(w, b"\":")?;
            write_ext_value(w, &e.value, ev.base64)?;
        }
        derived >>= 1;
    }
    if let Some(data) = &ev.data {
        write_data(s.w(), data, ev.data_compact, ev.base64)?;
    }
    put(s.w(), b"}")
}

fn write_ext_value<W: Write + ?Sized>(
    w: &mut W,
    v: &ExtValue<'_>,
    base64: Option<Transcode>,
) -> Result<(), EncodeError<W::Error>> {
    match v {
        ExtValue::String(s) | ExtValue::Uri(s) | ExtValue::UriRef(s) => {
            write_str(w, s).map_err(Into::into)
        }
        ExtValue::Integer(i) => {
            let mut buf = [0u8; 11];
            put(w, fmt_i32(*i, &mut buf))
        }
        ExtValue::Boolean(b) => put(w, if *b { b"true" } else { b"false" }),
        ExtValue::Timestamp(t) => {
            // ASCII by construction: no escaping.
            put(w, b"\"")?;
            t.write_ascii(w)?;
            put(w, b"\"")
        }
        ExtValue::Binary(b) => {
            put(w, b"\"")?;
            put_base64(w, b, base64)?;
            put(w, b"\"")
        }
    }
}

/// Writes `bytes` as Base64 with the event's encoder (see `Event::base64`:
/// every setter of a binary value sets it, so it is there whenever there
/// are bytes to encode; were it not, the write fails rather than write the
/// bytes unencoded).
fn put_base64<W: Write + ?Sized>(
    w: &mut W,
    bytes: &[u8],
    base64: Option<Transcode>,
) -> Result<(), EncodeError<W::Error>> {
    match base64 {
        Some(encode) => write_transcoded(w, bytes, encode).map_err(Into::into),
        None if bytes.is_empty() => Ok(()),
        None => Err(EncodeError::WriteZero),
    }
}

/// Writes the data member; JSON text as it is or through its compacting
/// copy (`compact`, see [`crate::json::lex::compactor`]), bytes through the
/// event's Base64 encoder.
fn write_data<W: Write + ?Sized>(
    w: &mut W,
    data: &Data<'_>,
    compact: Option<crate::json::lex::Compact>,
    base64: Option<Transcode>,
) -> Result<(), EncodeError<W::Error>> {
    match data {
        Data::Json(raw) => {
            put(w, b",\"data\":")?;
            crate::json::lex::write_json_text(w, raw.as_bytes(), compact).map_err(Into::into)
        }
        Data::Text(s) => member(w, b",\"data\":\"", s),
        Data::Binary(b) => {
            put(w, b",\"data_base64\":\"")?;
            put_base64(w, b, base64)?;
            put(w, b"\"")
        }
        Data::Base64(s) => {
            put(w, b",\"data_base64\":\"")?;
            put(w, s.as_bytes())?;
            put(w, b"\"")
        }
        Data::Serialize(p) => {
            put(w, b",\"data\":")?;
            crate::json::ser::write_payload(w, *p).map_err(Into::into)
        }
    }
}

/// Writes `ev` followed by `\n` (one JSON Lines record).
///
/// When a [`data_serialize`](crate::EventBuilder::data_serialize) payload
/// fails ([`EncodeError::Payload`]) after part of the record reached `w`,
/// that part is ended with `\n`: the next record starts a line of its own
/// (a line reader loses the torn one only). When nothing reached `w`,
/// nothing is written.
///
/// ```
/// use ossa_events_core::{format::json, io::SliceWriter, Event};
/// let a = Event::builder().id("1").source("/s").ty("t").build()?;
/// let b = Event::builder().id("2").source("/s").ty("t").build()?;
/// let mut buf = [0u8; 256];
/// let mut w = SliceWriter::new(&mut buf);
/// json::write_jsonl(&a, &mut w)?;
/// json::write_jsonl(&b, &mut w)?;
/// assert_eq!(w.written().iter().filter(|&&c| c == b'\n').count(), 2);
/// assert!(w.written().ends_with(b"\"id\":\"2\",\"source\":\"/s\",\"type\":\"t\"}\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_jsonl<W: Write + ?Sized>(
    ev: &Event<'_>,
    w: &mut W,
) -> Result<(), EncodeError<W::Error>> {
    let mut to = Reached { w, any: false };
    let mut g = Gather::new(&mut to);
    match write_json_direct(ev, &mut g).and_then(|()| put(&mut g, b"\n")) {
        Ok(()) => g.finish().map_err(Into::into),
        Err(EncodeError::Payload(p)) => {
            // What is still gathered is dropped; what went through is ended.
            if to.any {
                write_all(to.w, b"\n")?;
            }
            Err(EncodeError::Payload(p))
        }
        Err(e) => Err(ungather(e)),
    }
}

/// A writer that notes whether any byte reached `w`.
struct Reached<'w, W: ?Sized> {
    w: &'w mut W,
    any: bool,
}

impl<W: Write + ?Sized> embedded_io::ErrorType for Reached<'_, W> {
    type Error = W::Error;
}

impl<W: Write + ?Sized> Write for Reached<'_, W> {
    #[inline]
    fn write(&mut self, b: &[u8]) -> Result<usize, W::Error> {
        let n = self.w.write(b)?;
        self.any |= n > 0;
        Ok(n)
    }
    #[inline]
    fn flush(&mut self) -> Result<(), W::Error> {
        self.w.flush()
    }
}

/// Writes `events` as a JSON batch (`application/cloudevents-batch+json`).
///
/// ```
/// use ossa_events_core::{format::json, io::SliceWriter, Event};
/// let events = [
///     Event::builder().id("1").source("/s").ty("t").build()?,
///     Event::builder().id("2").source("/s").ty("t").build()?,
/// ];
/// let mut buf = [0u8; 256];
/// let mut w = SliceWriter::new(&mut buf);
/// json::write_batch(&events, &mut w)?;
/// assert!(w.written().starts_with(b"[{") && w.written().ends_with(b"}]"));
/// json::write_batch([], &mut SliceWriter::new(&mut buf))?; // writes `[]`
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_batch<'e, 'a: 'e, W, I>(events: I, w: &mut W) -> Result<(), EncodeError<W::Error>>
where
    W: Write + ?Sized,
    I: IntoIterator<Item = &'e Event<'a>>,
{
    let mut g = Gather::new(w);
    let r = (|| {
        put(&mut g, b"[")?;
        for (i, ev) in events.into_iter().enumerate() {
            if i > 0 {
                put(&mut g, b",")?;
            }
            write_json_direct(ev, &mut g)?;
        }
        put(&mut g, b"]")
    })();
    r.map_err(ungather)?;
    g.finish().map_err(Into::into)
}

/// Writes `ev` into `buf`, returning the number of bytes written.
///
/// ```
/// use ossa_events_core::{format::json, io::SliceFull, EncodeError, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").data_text("text/plain", "hi").build()?;
/// let mut buf = [0u8; 256];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""datacontenttype":"text/plain","data":"hi"}"#));
/// // Too small: an error, never a truncated event.
/// assert_eq!(json::to_slice(&ev, &mut [0u8; 32]), Err(EncodeError::Io(SliceFull)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_slice(ev: &Event<'_>, buf: &mut [u8]) -> Result<usize, EncodeError<SliceFull>> {
    // The slice is memory already: no gathering (it would copy every byte twice).
    let mut w = crate::io::ShortCopySlice(SliceWriter::new(buf));
    write_json_direct(ev, &mut w)?;
    Ok(w.0.len())
}

/// Writes `ev` into a new `heapless::Vec` of capacity `N`.
///
/// ```
/// use ossa_events_core::{format::json, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
/// let bytes: ossa_events_core::heapless::Vec<u8, 128> = json::to_heapless(&ev)?;
/// assert_eq!(bytes.len(), json::encoded_len(&ev)?);
/// assert!(json::to_heapless::<16>(&ev).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_heapless<const N: usize>(
    ev: &Event<'_>,
) -> Result<heapless::Vec<u8, N>, EncodeError<SliceFull>> {
    let mut buf = [0u8; N];
    let n = to_slice(ev, &mut buf)?;
    heapless::Vec::from_slice(buf.get(..n).unwrap_or(&[])).map_err(|_| EncodeError::Io(SliceFull))
}

/// The exact size of `ev` in compact JSON.
///
/// ```
/// use ossa_events_core::{format::json, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").data_json("{ \"a\" : 1 }").build()?;
/// let n = json::encoded_len(&ev)?; // compact: the spaces in `data` do not count
/// let mut buf = [0u8; 256];
/// assert_eq!(json::to_slice(&ev, &mut buf)?, n);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encoded_len(ev: &Event<'_>) -> Result<usize, PayloadError> {
    let mut c = Counter::default();
    match write_json(ev, &mut c) {
        Ok(()) => Ok(c.count),
        Err(EncodeError::Payload(p)) => Err(p),
        Err(_) => Ok(c.count),
    }
}

/// Writes `ev` into a new `Vec<u8>`.
///
/// ```
/// use ossa_events_core::{format::json, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
/// let bytes: Vec<u8> = json::to_vec(&ev)?;
/// assert_eq!(bytes, br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "alloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
pub fn to_vec(ev: &Event<'_>) -> Result<alloc::vec::Vec<u8>, PayloadError> {
    let mut v = alloc::vec::Vec::with_capacity(512);
    match write_json(ev, &mut v) {
        Ok(()) => Ok(v),
        Err(EncodeError::Payload(p)) => Err(p),
        Err(EncodeError::Io(never)) => match never {},
        Err(_) => Ok(v),
    }
}
