//! A `no_std`, allocation-free serde [`Serializer`](serde::Serializer) that writes compact JSON
//! straight into any [`embedded_io::Write`].
//!
//! The output is byte-for-byte what `serde_json::to_vec` produces for every value of the serde
//! data model that `serde_json` can serialize (integers, strings, bytes, options, unit and
//! newtype values, every enum variant kind, sequences, tuples, maps and structs).
//!
//! Floats: finite `f32`/`f64` values are written by `zmij`, the formatter `serde_json` itself
//! uses, so the text is `serde_json`'s by construction (`1.0`, `-0.0`, `0.30000000000000004`,
//! `1e-6`, `1.5e+300`): the shortest that parses back to the same value. NaN and infinities are
//! written as `null`, as `serde_json` does.
//!
//! `serde_json`'s `RawValue` (and `Number` under `arbitrary_precision`) is written as the JSON
//! text it holds (without its insignificant whitespace), once that text is checked to be one JSON value.
//!
//! Map keys follow `serde_json`'s rules: strings and chars are written as strings; integers,
//! bools and finite floats are quoted (`"1"`, `"true"`, `"1.5"`); unit variants become their
//! name; newtype structs and `Some` are transparent. Any other key fails with
//! [`SerError::KeyMustBeString`].
//!
//! Nesting: arrays and objects nest at most [`MAX_DATA_DEPTH`](crate::MAX_DATA_DEPTH) deep, as
//! deep as the parsers of this crate read `data`; a deeper value fails with
//! [`SerError::TooDeep`] (`serde_json` has no such limit).
//!
//! Nothing here panics, whatever the value or the writer does: writer errors and writers that
//! accept zero bytes come back as [`SerError::Write`].

use core::fmt::{self, Write as _};

use serde::ser::{self, Serialize};

use crate::io::{Plain, Room, RoomError, WriteError, write_all};
#[cfg(target_pointer_width = "64")]
use crate::json::escape::is_json_plain;
use crate::json::escape::{write_str, write_str_body};

/// Why serialization failed.
///
/// ```
/// use ossa_events_core::{io::{SliceFull, SliceWriter, WriteError}, json::{ser::SerError, to_writer}};
/// let mut buf = [0u8; 4];
/// let err = to_writer(&mut SliceWriter::new(&mut buf), &["too", "long"]).unwrap_err();
/// assert_eq!(err, SerError::Write(WriteError::Io(SliceFull)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerError<E> {
    /// The writer failed.
    Write(WriteError<E>),
    /// A map key that JSON cannot represent as a string: anything but a string, char, bool,
    /// integer, finite float or unit variant (or a newtype struct or `Some` around one).
    KeyMustBeString,
    /// `serde::ser::Error::custom` from a `Serialize` impl: the first 64 bytes of the message,
    /// truncated at a char boundary.
    Custom(heapless::String<64>),
    /// Arrays and objects nested deeper than [`MAX_DATA_DEPTH`](crate::MAX_DATA_DEPTH): no
    /// parser of this crate would read the value back.
    TooDeep,
}

impl<E> From<WriteError<E>> for SerError<E> {
    fn from(e: WriteError<E>) -> Self {
        SerError::Write(e)
    }
}

impl<E: fmt::Debug> fmt::Display for SerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerError::Write(e) => fmt::Display::fmt(e, f),
            SerError::KeyMustBeString => f.write_str("map key must be a string"),
            SerError::Custom(msg) => write!(f, "payload: {msg}"),
            SerError::TooDeep => f.write_str("payload nested too deep"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for SerError<E> {}

impl<E: fmt::Debug> ser::Error for SerError<E> {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        let mut out = Truncating {
            s: heapless::String::new(),
            full: false,
        };
        // `Truncating` never fails; a `Display` impl that fails anyway leaves what it wrote.
        let _ = write!(out, "{msg}");
        SerError::Custom(out.s)
    }
}

impl<E> SerError<E> {
    /// A [`SerError::Custom`] from a message of this module.
    fn message(msg: &str) -> Self {
        let mut out = Truncating {
            s: heapless::String::new(),
            full: false,
        };
        let _ = out.write_str(msg);
        SerError::Custom(out.s)
    }
}

/// Keeps the longest prefix of everything written that fits, cut at a char boundary.
struct Truncating {
    s: heapless::String<64>,
    full: bool,
}

impl fmt::Write for Truncating {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.full {
            return Ok(());
        }
        let room = self.s.capacity().saturating_sub(self.s.len());
        let mut cut = s.len().min(room);
        while !s.is_char_boundary(cut) {
            cut = cut.saturating_sub(1); // `is_char_boundary(0)` is true, so this stops
        }
        if cut < s.len() {
            self.full = true;
        }
        let _ = self.s.push_str(s.get(..cut).unwrap_or(""));
        Ok(())
    }
}

/// Writes `value` as compact JSON to `w`.
///
/// The output equals `serde_json::to_vec(value)` except, possibly, for the form of floats (see
/// the [module docs](self)); a value nested deeper than
/// [`MAX_DATA_DEPTH`](crate::MAX_DATA_DEPTH) fails with [`SerError::TooDeep`]. On error, part of
/// the JSON may already have been written.
///
/// ```
/// use ossa_events_core::{io::SliceWriter, json::to_writer};
/// #[derive(serde::Serialize)]
/// struct Call<'a> { tool: &'a str, args: Option<&'a [u32]> }
/// let mut buf = [0u8; 64];
/// let mut w = SliceWriter::new(&mut buf);
/// to_writer(&mut w, &Call { tool: "sum", args: Some(&[1, 2]) })?;
/// assert_eq!(w.written(), br#"{"tool":"sum","args":[1,2]}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_writer<W, T>(w: &mut W, value: &T) -> Result<(), SerError<W::Error>>
where
    W: embedded_io::Write + ?Sized,
    T: Serialize + ?Sized,
{
    value.serialize(&mut Ser {
        w: &mut Plain(w),
        depth: 0,
    })
}

/// A JSON payload writable through a type-erased writer (object-safe, so an event can hold
/// `&dyn JsonPayload`).
///
/// Every `T: Serialize` is a `JsonPayload`; use [`write_payload`] to write one and get the
/// writer's real error back.
///
/// ```
/// use ossa_events_core::{format::json, Event, JsonPayload};
/// // Any `T: Serialize` already is one; an event holds it as `&dyn JsonPayload`.
/// let scores = [0.5_f64, 1.0];
/// let payload: &dyn JsonPayload = &scores;
/// let ev = Event::builder().id("1").source("/s").ty("t").data_serialize(payload).build()?;
/// let mut buf = [0u8; 256];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":[0.5,1.0]}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait JsonPayload {
    /// Writes the payload as compact JSON.
    ///
    /// ```
    /// use ossa_events_core::{embedded_io::Write, json::{ser::{Erased, SerError}, JsonPayload, PayloadWriter}};
    /// use ossa_events_core::{format::json, io::WriteError, Event};
    /// /// A payload written by hand, without serde.
    /// struct Ping;
    /// impl JsonPayload for Ping {
    ///     fn write_json(&self, w: &mut PayloadWriter<'_>) -> Result<(), SerError<Erased>> {
    ///         w.write_all(br#"{"ping":true}"#).map_err(|e| SerError::Write(WriteError::Io(e)))
    ///     }
    /// }
    /// let ev = Event::builder().id("1").source("/s").ty("t").data_serialize(&Ping).build()?;
    /// let mut buf = [0u8; 256];
    /// let n = json::to_slice(&ev, &mut buf)?;
    /// assert!(buf[..n].ends_with(br#""data":{"ping":true}}"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn write_json(&self, w: &mut PayloadWriter<'_>) -> Result<(), SerError<Erased>>;
}

impl<T: Serialize + ?Sized> JsonPayload for T {
    fn write_json(&self, w: &mut PayloadWriter<'_>) -> Result<(), SerError<Erased>> {
        self.serialize(&mut Ser { w, depth: 0 })
    }
}

/// The bytes a [`PayloadWriter`] gathers before they cross the dynamic
/// call: on 64-bit targets most agent payloads (a few hundred bytes) in one
/// piece; devices keep their stack small.
#[cfg(target_pointer_width = "64")]
const PAYLOAD_BUF: usize = 256;
#[cfg(not(target_pointer_width = "64"))]
const PAYLOAD_BUF: usize = 128;

/// The writer a [`JsonPayload`] writes to: a small buffer in front of the
/// type-erased destination, so the many small writes of a payload are plain
/// copies and only whole buffers cross the dynamic call.
///
/// ```
/// use ossa_events_core::{embedded_io::Write, json::{ser::{Erased, SerError}, to_writer, JsonPayload, PayloadWriter}};
/// /// Writes a `[lo, hi]` pair through serde, into the payload writer.
/// struct Range(u32, u32);
/// impl JsonPayload for Range {
///     fn write_json(&self, w: &mut PayloadWriter<'_>) -> Result<(), SerError<Erased>> {
///         to_writer(w, &[self.0, self.1])
///     }
/// }
/// # let mut buf = [0u8; 16];
/// # let mut out = ossa_events_core::io::SliceWriter::new(&mut buf);
/// # ossa_events_core::json::ser::write_payload(&mut out, &Range(1, 9))?;
/// # assert_eq!(out.written(), b"[1,9]");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PayloadWriter<'a> {
    sink: &'a mut dyn ErasedSink,
    buf: [u8; PAYLOAD_BUF],
    len: usize,
    /// The destination accepted zero bytes.
    zero: bool,
}

impl fmt::Debug for PayloadWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadWriter")
            .field("buffered", &self.len)
            .finish_non_exhaustive()
    }
}

impl<'a> PayloadWriter<'a> {
    fn new(sink: &'a mut dyn ErasedSink) -> Self {
        PayloadWriter {
            sink,
            buf: [0; PAYLOAD_BUF],
            len: 0,
            zero: false,
        }
    }

    fn drain(&mut self) -> Result<(), Erased> {
        let mut pending = self.buf.get(..self.len).unwrap_or(&[]);
        self.len = 0;
        while !pending.is_empty() {
            match self.sink.write(pending)? {
                0 => {
                    self.zero = true;
                    return Err(Erased);
                }
                n => pending = pending.get(n..).unwrap_or(&[]),
            }
        }
        Ok(())
    }
}

impl embedded_io::ErrorType for PayloadWriter<'_> {
    type Error = Erased;
}

impl embedded_io::Write for PayloadWriter<'_> {
    #[inline(always)]
    fn write(&mut self, b: &[u8]) -> Result<usize, Erased> {
        let end = self.len + b.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            crate::io::copy_into(dst, b);
            self.len = end;
            return Ok(b.len());
        }
        self.drain()?;
        if let Some(dst) = self.buf.get_mut(..b.len()) {
            crate::io::copy_into(dst, b);
            self.len = b.len();
            return Ok(b.len());
        }
        // Larger than the buffer: straight through (a short write is fine here).
        match self.sink.write(b)? {
            0 => {
                self.zero = true;
                Err(Erased)
            }
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> Result<(), Erased> {
        self.drain()?;
        self.sink.flush()
    }
}

impl crate::io::Room for PayloadWriter<'_> {
    type W = Self;

    #[inline(always)]
    fn w(&mut self) -> &mut Self {
        self
    }

    #[cfg(target_pointer_width = "64")]
    #[inline(always)]
    fn room(&mut self) -> Option<(&mut [u8], &mut usize)> {
        Some((&mut self.buf, &mut self.len))
    }
}

/// Writes `bytes` as they are.
#[inline(always)]
fn put<S: Room + ?Sized>(s: &mut S, bytes: &[u8]) -> Result<(), WriteError<RoomError<S>>> {
    #[cfg(target_pointer_width = "64")]
    if let Some((buf, len)) = s.room() {
        let at = *len;
        if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
            crate::io::copy_into(dst, bytes);
            *len = at + bytes.len();
            return Ok(());
        }
    }
    write_all(s.w(), bytes)
}

/// Writes `v` as a JSON string, quotes included: in one step when the
/// writer has room and `v` needs no escaping.
#[inline(always)]
fn put_str<S: Room + ?Sized>(s: &mut S, v: &str) -> Result<(), WriteError<RoomError<S>>> {
    #[cfg(target_pointer_width = "64")]
    if let Some((buf, len)) = s.room() {
        let b = v.as_bytes();
        let at = *len;
        if let Some(dst) = buf.get_mut(at..at + b.len() + 2)
            && is_json_plain(b)
        {
            put_quoted(dst, b, 0);
            *len = at + b.len() + 2;
            return Ok(());
        }
    }
    write_str(s.w(), v)
}

/// Writes an object member's `"key":`, after a `,` unless it is the
/// first: in one step when the writer has room and the key (16 bytes at
/// most) needs no escaping.
#[inline(always)]
fn put_key<S: Room + ?Sized>(
    s: &mut S,
    first: bool,
    key: &str,
) -> Result<(), WriteError<RoomError<S>>> {
    #[cfg(target_pointer_width = "64")]
    if let Some((buf, len)) = s.room() {
        let k = key.as_bytes();
        let at = *len;
        if crate::swar::short_json_plain(k)
            && let Some(dst) = buf.get_mut(at..at + k.len() + 4)
        {
            // `,"key":`, or `"key":` from the same place for the first.
            let start = usize::from(!first);
            if let Some(comma) = dst.first_mut() {
                *comma = b',';
            }
            if let Some(tail) = dst.get_mut(start..) {
                put_quoted(tail, k, b':');
            }
            *len = at + start + k.len() + 3;
            return Ok(());
        }
    }
    let w = s.w();
    write_all(w, if first { b"\"" } else { b",\"" })?;
    write_str_body(w, key.as_bytes())?;
    write_all(w, b"\":")
}

/// Writes `"body"` at the start of `dst` (at least `body.len() + 2` long),
/// then `after` unless it is 0.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn put_quoted(dst: &mut [u8], body: &[u8], after: u8) {
    let n = body.len();
    if let Some(q) = dst.first_mut() {
        *q = b'"';
    }
    if let Some(d) = dst.get_mut(1..1 + n) {
        crate::io::copy_into(d, body);
    }
    if let Some(q) = dst.get_mut(1 + n) {
        *q = b'"';
    }
    if after != 0
        && let Some(c) = dst.get_mut(2 + n)
    {
        *c = after;
    }
}

/// Placeholder error of the type-erased writer; the real error is kept by [`write_payload`].
///
/// ```
/// use ossa_events_core::{io::{SliceFull, SliceWriter, WriteError}, json::ser::{write_payload, SerError}};
/// // Inside a payload the writer's error is `Erased`; `write_payload` gives back the real one.
/// let mut buf = [0u8; 2];
/// let err = write_payload(&mut SliceWriter::new(&mut buf), &"a longer string").unwrap_err();
/// assert_eq!(err, SerError::Write(WriteError::Io(SliceFull)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased;

impl fmt::Display for Erased {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("writer failed")
    }
}

impl core::error::Error for Erased {}

impl embedded_io::Error for Erased {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

/// Writes `payload` to `w`, giving back the writer's real error.
///
/// ```
/// use ossa_events_core::{io::SliceWriter, json::ser::write_payload};
/// let mut buf = [0u8; 32];
/// let mut w = SliceWriter::new(&mut buf);
/// write_payload(&mut w, &(1, "two", [3.5]))?;
/// assert_eq!(w.written(), br#"[1,"two",[3.5]]"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_payload<W: embedded_io::Write + ?Sized>(
    w: &mut W,
    payload: &dyn JsonPayload,
) -> Result<(), SerError<W::Error>> {
    let mut erased = EraseWriter { w, err: None };
    let mut pw = PayloadWriter::new(&mut erased);
    let r = payload
        .write_json(&mut pw)
        .and_then(|()| pw.drain().map_err(|e| SerError::Write(WriteError::Io(e))));
    if pw.zero {
        return Err(SerError::Write(WriteError::WriteZero));
    }
    match r {
        Ok(()) => Ok(()),
        Err(SerError::Write(WriteError::Io(Erased))) => Err(match erased.err {
            Some(e) => SerError::Write(WriteError::Io(e)),
            // Only a hand-written `JsonPayload` can report an error the writer never gave.
            None => SerError::message("writer failed"),
        }),
        Err(SerError::Write(WriteError::WriteZero)) => Err(SerError::Write(WriteError::WriteZero)),
        Err(SerError::KeyMustBeString) => Err(SerError::KeyMustBeString),
        Err(SerError::Custom(msg)) => Err(SerError::Custom(msg)),
        Err(SerError::TooDeep) => Err(SerError::TooDeep),
    }
}

/// The destination of a [`PayloadWriter`], type-erased: only the two calls
/// it makes. (A `dyn embedded_io::Write` vtable also holds `write_fmt`, which
/// brings `core::fmt` into every binary that writes a payload: about 1 KiB
/// of flash.)
trait ErasedSink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Erased>;
    fn flush(&mut self) -> Result<(), Erased>;
}

/// Forwards to `w`, keeping its error and reporting [`Erased`] instead.
struct EraseWriter<'a, W: embedded_io::Write + ?Sized> {
    w: &'a mut W,
    err: Option<W::Error>,
}

// An `ErrorKind::Interrupted` is tried again, as `io::write_all` and a
// batch's drain do (see `batch::interrupted`).
impl<W: embedded_io::Write + ?Sized> ErasedSink for EraseWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Erased> {
        let mut tries = 0;
        let r = loop {
            let r = self.w.write(buf);
            if !crate::batch::interrupted(&r, &mut tries) {
                break r;
            }
        };
        r.map_err(|e| {
            self.err = Some(e);
            Erased
        })
    }
    fn flush(&mut self) -> Result<(), Erased> {
        let mut tries = 0;
        let r = loop {
            let r = self.w.flush();
            if !crate::batch::interrupted(&r, &mut tries) {
                break r;
            }
        };
        r.map_err(|e| {
            self.err = Some(e);
            Erased
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// The decimal digits of `v` (under 10^8) as eight ASCII bytes, leading
/// zeros included, and how many of the last ones are its digits (1 to 8).
/// Four two-digit lanes of 16 bits, split into tens and units with one
/// multiply (as `Timestamp` writes its fields).
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn digits8(v: u32) -> ([u8; 8], usize) {
    const LANES: u64 = 0x000f_000f_000f_000f;
    let (hi, lo) = (u64::from(v / 10_000), u64::from(v % 10_000));
    let x = (hi / 100) | ((hi % 100) << 16) | ((lo / 100) << 32) | ((lo % 100) << 48);
    let tens = ((x * 103) >> 10) & LANES;
    let units = x - tens * 10;
    let digits = tens | units << 8;
    // Leading zero digits are zero bytes at the low end; keep at least one.
    let zeros = (digits.trailing_zeros() / 8).min(7) as usize;
    ((digits + 0x3030_3030_3030_3030).to_le_bytes(), 8 - zeros)
}

/// Writes an integer as `serde_json` does (with `itoa`, as it does); quoted
/// for a map key.
#[inline]
fn write_int<W: embedded_io::Write + ?Sized, I: itoa::Integer>(
    w: &mut W,
    n: I,
    quoted: bool,
) -> Result<(), SerError<W::Error>> {
    let mut buf = itoa::Buffer::new();
    let text = buf.format(n).as_bytes();
    if quoted {
        write_all(w, b"\"")?;
        write_all(w, text)?;
        Ok(write_all(w, b"\"")?)
    } else {
        Ok(write_all(w, text)?)
    }
}

/// Writes a finite float as `serde_json` does, with the formatter it uses
/// (`zmij`): the shortest digits that round-trip, as plain decimal or as
/// `d.ddde±x`. Quoted for a map key.
fn write_float<W: embedded_io::Write + ?Sized, F: zmij::Float>(
    w: &mut W,
    value: F,
    quoted: bool,
) -> Result<(), SerError<W::Error>> {
    let mut buf = zmij::Buffer::new();
    let text = buf.format_finite(value);
    if quoted {
        write_all(w, b"\"")?;
    }
    write_all(w, text.as_bytes())?;
    if quoted {
        write_all(w, b"\"")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Strings produced by `Display`

/// Escapes everything written to it into `w`, keeping the first writer error.
struct EscapeFmt<'a, W: embedded_io::Write + ?Sized> {
    w: &'a mut W,
    err: Option<WriteError<W::Error>>,
}

impl<W: embedded_io::Write + ?Sized> fmt::Write for EscapeFmt<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.err.is_some() {
            return Err(fmt::Error);
        }
        write_str_body(self.w, s.as_bytes()).map_err(|e| {
            self.err = Some(e);
            fmt::Error
        })
    }
}

/// Writes the `Display` output of `value` as a JSON string, without allocating.
fn collect_display<W, T>(w: &mut W, value: &T) -> Result<(), SerError<W::Error>>
where
    W: embedded_io::Write + ?Sized,
    T: fmt::Display + ?Sized,
{
    write_all(w, b"\"")?;
    let mut esc = EscapeFmt { w, err: None };
    let r = write!(esc, "{value}");
    match (esc.err, r) {
        (Some(e), _) => Err(SerError::Write(e)),
        (None, Err(fmt::Error)) => Err(SerError::message(
            "a Display implementation returned an error",
        )),
        (None, Ok(())) => Ok(write_all(w, b"\"")?),
    }
}

// ---------------------------------------------------------------------------------------------
// The serializer

/// Writes JSON to `w`.
struct Ser<'w, W: ?Sized> {
    w: &'w mut W,
    /// Arrays and objects open around the value being written.
    depth: usize,
}

impl<W: Room + ?Sized> Ser<'_, W> {
    #[inline]
    fn raw(&mut self, bytes: &[u8]) -> Result<(), SerError<RoomError<W>>> {
        Ok(put(self.w, bytes)?)
    }

    /// Writes an unsigned integer as `serde_json` does. On 64-bit targets,
    /// values under 10^8 (most counts, sizes and ids in agent payloads) are
    /// formatted in one register ([`digits8`]) and written from there: the
    /// wide loads that copied `itoa`'s bytes out of its stack buffer waited
    /// on its narrow stores (`perf`: 9 % of build + encode for the issue 16
    /// event's three numbers).
    #[inline]
    fn uint<I: itoa::Integer + Into<u64>>(&mut self, v: I) -> Result<(), SerError<RoomError<W>>> {
        #[cfg(target_pointer_width = "64")]
        {
            let n: u64 = v.into();
            if let Ok(small) = u32::try_from(n)
                && small < 100_000_000
            {
                let (bytes, len) = digits8(small);
                return self.raw(bytes.get(8 - len..).unwrap_or(&[]));
            }
        }
        write_int(self.w.w(), v, false)
    }

    #[inline]
    fn string(&mut self, s: &str) -> Result<(), SerError<RoomError<W>>> {
        Ok(put_str(self.w, s)?)
    }

    /// Opens `levels` arrays or objects, refusing to nest deeper than the
    /// parsers read.
    #[inline]
    fn open(&mut self, levels: usize) -> Result<(), SerError<RoomError<W>>> {
        self.depth = self.depth.saturating_add(levels);
        if self.depth > crate::event::MAX_DATA_DEPTH {
            return Err(SerError::TooDeep);
        }
        Ok(())
    }

    /// Closes `levels` arrays or objects with `bytes`.
    #[inline]
    fn close(&mut self, levels: usize, bytes: &[u8]) -> Result<(), SerError<RoomError<W>>> {
        self.depth = self.depth.saturating_sub(levels);
        self.raw(bytes)
    }
}

/// An array or object being written; `first` is true until its first element.
struct Compound<'a, 'w, W: ?Sized> {
    ser: &'a mut Ser<'w, W>,
    first: bool,
    /// A `serde_json` raw-text struct (see [`is_raw_text`]): its one field
    /// is written as the JSON text it holds, with no braces or key.
    raw: bool,
}

impl<W: Room + ?Sized> Compound<'_, '_, W> {
    /// Writes the `,` before every element but the first.
    #[inline]
    fn separator(&mut self) -> Result<(), SerError<RoomError<W>>> {
        if self.first {
            self.first = false;
            Ok(())
        } else {
            self.ser.raw(b",")
        }
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError<RoomError<W>>> {
        self.separator()?;
        value.serialize(&mut *self.ser)
    }

    #[cfg_attr(target_pointer_width = "64", inline(always))]
    #[cfg_attr(not(target_pointer_width = "64"), inline)]
    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), SerError<RoomError<W>>> {
        put_key(self.ser.w, self.first, key)?;
        self.first = false;
        value.serialize(&mut *self.ser)
    }
}

impl<'a, 'w, W: Room + ?Sized> ser::Serializer for &'a mut Ser<'w, W> {
    type Ok = ();
    type Error = SerError<RoomError<W>>;
    type SerializeSeq = Compound<'a, 'w, W>;
    type SerializeTuple = Compound<'a, 'w, W>;
    type SerializeTupleStruct = Compound<'a, 'w, W>;
    type SerializeTupleVariant = Compound<'a, 'w, W>;
    type SerializeMap = Compound<'a, 'w, W>;
    type SerializeStruct = Compound<'a, 'w, W>;
    type SerializeStructVariant = Compound<'a, 'w, W>;

    fn serialize_bool(self, v: bool) -> Result<(), Self::Error> {
        self.raw(if v { b"true" } else { b"false" })
    }

    fn serialize_i8(self, v: i8) -> Result<(), Self::Error> {
        write_int(self.w.w(), v, false)
    }

    fn serialize_i16(self, v: i16) -> Result<(), Self::Error> {
        write_int(self.w.w(), v, false)
    }

    fn serialize_i32(self, v: i32) -> Result<(), Self::Error> {
        write_int(self.w.w(), v, false)
    }

    fn serialize_i64(self, v: i64) -> Result<(), Self::Error> {
        write_int(self.w.w(), v, false)
    }

    fn serialize_i128(self, v: i128) -> Result<(), Self::Error> {
        write_int(self.w.w(), v, false)
    }

    fn serialize_u8(self, v: u8) -> Result<(), Self::Error> {
        self.uint(v)
    }

    fn serialize_u16(self, v: u16) -> Result<(), Self::Error> {
        self.uint(v)
    }

    fn serialize_u32(self, v: u32) -> Result<(), Self::Error> {
        self.uint(v)
    }

    fn serialize_u64(self, v: u64) -> Result<(), Self::Error> {
        self.uint(v)
    }

    fn serialize_u128(self, v: u128) -> Result<(), Self::Error> {
        write_int(self.w.w(), v, false)
    }

    fn serialize_f32(self, v: f32) -> Result<(), Self::Error> {
        if v.is_finite() {
            write_float(self.w.w(), v, false)
        } else {
            self.raw(b"null")
        }
    }

    fn serialize_f64(self, v: f64) -> Result<(), Self::Error> {
        if v.is_finite() {
            write_float(self.w.w(), v, false)
        } else {
            self.raw(b"null")
        }
    }

    fn serialize_char(self, v: char) -> Result<(), Self::Error> {
        self.string(v.encode_utf8(&mut [0u8; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), Self::Error> {
        self.string(v)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Self::Error> {
        self.open(1)?;
        self.raw(b"[")?;
        for (i, &b) in v.iter().enumerate() {
            if i > 0 {
                self.raw(b",")?;
            }
            write_int(self.w.w(), b, false)?;
        }
        self.close(1, b"]")
    }

    fn serialize_none(self) -> Result<(), Self::Error> {
        self.raw(b"null")
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Self::Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Self::Error> {
        self.raw(b"null")
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Self::Error> {
        self.raw(b"null")
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<(), Self::Error> {
        self.string(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        self.open(1)?;
        self.raw(b"{")?;
        self.string(variant)?;
        self.raw(b":")?;
        value.serialize(&mut *self)?;
        self.close(1, b"}")
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        self.open(1)?;
        self.raw(b"[")?;
        Ok(Compound {
            ser: self,
            first: true,
            raw: false,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Self::Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        self.open(2)?;
        self.raw(b"{")?;
        self.string(variant)?;
        self.raw(b":[")?;
        Ok(Compound {
            ser: self,
            first: true,
            raw: false,
        })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        self.open(1)?;
        self.raw(b"{")?;
        Ok(Compound {
            ser: self,
            first: true,
            raw: false,
        })
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        if is_raw_text(name) {
            return Ok(Compound {
                ser: self,
                first: true,
                raw: true,
            });
        }
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        self.open(2)?;
        self.raw(b"{")?;
        self.string(variant)?;
        self.raw(b":{")?;
        Ok(Compound {
            ser: self,
            first: true,
            raw: false,
        })
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Self::Error> {
        collect_display(self.w.w(), value)
    }

    fn is_human_readable(&self) -> bool {
        true
    }
}

impl<W: Room + ?Sized> ser::SerializeSeq for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<RoomError<W>>;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.ser.close(1, b"]")
    }
}

impl<W: Room + ?Sized> ser::SerializeTuple for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<RoomError<W>>;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.ser.close(1, b"]")
    }
}

impl<W: Room + ?Sized> ser::SerializeTupleStruct for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<RoomError<W>>;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.ser.close(1, b"]")
    }
}

impl<W: Room + ?Sized> ser::SerializeTupleVariant for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<RoomError<W>>;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.ser.close(2, b"]}")
    }
}

impl<W: Room + ?Sized> ser::SerializeMap for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<RoomError<W>>;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Self::Error> {
        self.separator()?;
        key.serialize(KeySer { w: self.ser.w.w() })
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.ser.raw(b":")?;
        value.serialize(&mut *self.ser)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.ser.close(1, b"}")
    }
}

impl<W: Room + ?Sized> ser::SerializeStruct for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<RoomError<W>>;

    // In line on 64-bit targets: the key is a constant there, so its
    // checks and its length fold away (devices keep one copy per type).
    #[cfg_attr(target_pointer_width = "64", inline(always))]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        if self.raw {
            // One field, the text; a second would write two values.
            if !core::mem::replace(&mut self.first, false) {
                return Err(not_raw_text());
            }
            let depth_left = crate::event::MAX_DATA_DEPTH.saturating_sub(self.ser.depth);
            return value.serialize(RawText {
                w: &mut *self.ser.w,
                depth_left,
            });
        }
        self.field(key, value)
    }

    fn end(self) -> Result<(), Self::Error> {
        if self.raw {
            // No field: no value was written where one belongs.
            return if self.first {
                Err(not_raw_text())
            } else {
                Ok(())
            };
        }
        self.ser.close(1, b"}")
    }
}

impl<W: Room + ?Sized> ser::SerializeStructVariant for Compound<'_, '_, W> {
    type Ok = ();
    type Error = SerError<RoomError<W>>;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.ser.close(2, b"}}")
    }
}

// ---------------------------------------------------------------------------------------------
// serde_json's raw text

/// Whether a struct of this name is one of `serde_json`'s "write this text
/// as it is" values: `RawValue` (feature `raw_value`) and `Number` under
/// `arbitrary_precision` (which any crate in a build may turn on). Each
/// serializes as a struct whose name and one field are a private token and
/// whose field is the JSON text; `serde_json` writes the text in place of
/// the struct, so a payload holding one means that text, not an object
/// (written as one, `{"id":1,"inner":<RawValue>}` became another value).
#[inline]
fn is_raw_text(name: &str) -> bool {
    matches!(
        name,
        "$serde_json::private::RawValue" | "$serde_json::private::Number"
    )
}

/// The error for a raw-text struct that does not hold one JSON value.
#[cold]
fn not_raw_text<E>() -> SerError<E> {
    SerError::message("raw JSON text is not one JSON value")
}

/// Writes the field of a raw-text struct (see [`is_raw_text`]): a string,
/// written as it is once it is checked to be one JSON value that nests at
/// most `depth_left` deep (a `Serialize` impl can use the token with any
/// text, which must not add members to the event around it).
struct RawText<'a, S: ?Sized> {
    w: &'a mut S,
    depth_left: usize,
}

/// [`RawText`]'s methods for everything but a string: refused.
macro_rules! not_raw_text {
    ($($method:ident($($arg:ty),*);)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<(), Self::Error> {
            Err(not_raw_text())
        }
    )*};
}

impl<S: Room + ?Sized> ser::Serializer for RawText<'_, S> {
    type Ok = ();
    type Error = SerError<RoomError<S>>;
    type SerializeSeq = Impossible<RoomError<S>>;
    type SerializeTuple = Impossible<RoomError<S>>;
    type SerializeTupleStruct = Impossible<RoomError<S>>;
    type SerializeTupleVariant = Impossible<RoomError<S>>;
    type SerializeMap = Impossible<RoomError<S>>;
    type SerializeStruct = Impossible<RoomError<S>>;
    type SerializeStructVariant = Impossible<RoomError<S>>;

    fn serialize_str(self, v: &str) -> Result<(), Self::Error> {
        crate::json::validate(v.as_bytes(), self.depth_left).map_err(|e| match e.kind {
            crate::json::JsonErrorKind::TooDeep => SerError::TooDeep,
            _ => not_raw_text(),
        })?;
        // Compact, as every other value is written: the text may hold
        // whitespace (newlines too, which split a line-delimited event).
        let mut failed = None;
        crate::json::lex::compact_runs(v.as_bytes(), &mut |run| match put(&mut *self.w, run) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        });
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    not_raw_text! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Self::Error> {
        Err(not_raw_text())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Self::Error> {
        Err(not_raw_text())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Self::Error> {
        Err(not_raw_text())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        Err(not_raw_text())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Self::Error> {
        Err(not_raw_text())
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        Err(not_raw_text())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        Err(not_raw_text())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        Err(not_raw_text())
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        Err(not_raw_text())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Err(not_raw_text())
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, _: &T) -> Result<(), Self::Error> {
        Err(not_raw_text())
    }
}

/// Writes a map key: always a JSON string, or [`SerError::KeyMustBeString`].
struct KeySer<'a, W: ?Sized> {
    w: &'a mut W,
}

type Impossible<E> = ser::Impossible<(), SerError<E>>;

impl<W: embedded_io::Write + ?Sized> ser::Serializer for KeySer<'_, W> {
    type Ok = ();
    type Error = SerError<W::Error>;
    type SerializeSeq = Impossible<W::Error>;
    type SerializeTuple = Impossible<W::Error>;
    type SerializeTupleStruct = Impossible<W::Error>;
    type SerializeTupleVariant = Impossible<W::Error>;
    type SerializeMap = Impossible<W::Error>;
    type SerializeStruct = Impossible<W::Error>;
    type SerializeStructVariant = Impossible<W::Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Self::Error> {
        Ok(write_all(
            self.w,
            if v { b"\"true\"" } else { b"\"false\"" },
        )?)
    }

    fn serialize_i8(self, v: i8) -> Result<(), Self::Error> {
        write_int(self.w, v, true)
    }

    fn serialize_i16(self, v: i16) -> Result<(), Self::Error> {
        write_int(self.w, v, true)
    }

    fn serialize_i32(self, v: i32) -> Result<(), Self::Error> {
        write_int(self.w, v, true)
    }

    fn serialize_i64(self, v: i64) -> Result<(), Self::Error> {
        write_int(self.w, v, true)
    }

    fn serialize_i128(self, v: i128) -> Result<(), Self::Error> {
        write_int(self.w, v, true)
    }

    fn serialize_u8(self, v: u8) -> Result<(), Self::Error> {
        write_int(self.w, v, true)
    }

    fn serialize_u16(self, v: u16) -> Result<(), Self::Error> {
        write_int(self.w, v, true)
    }

    fn serialize_u32(self, v: u32) -> Result<(), Self::Error> {
        write_int(self.w, v, true)
    }

    fn serialize_u64(self, v: u64) -> Result<(), Self::Error> {
        write_int(self.w, v, true)
    }

    fn serialize_u128(self, v: u128) -> Result<(), Self::Error> {
        write_int(self.w, v, true)
    }

    fn serialize_f32(self, v: f32) -> Result<(), Self::Error> {
        if v.is_finite() {
            write_float(self.w, v, true)
        } else {
            Err(SerError::KeyMustBeString)
        }
    }

    fn serialize_f64(self, v: f64) -> Result<(), Self::Error> {
        if v.is_finite() {
            write_float(self.w, v, true)
        } else {
            Err(SerError::KeyMustBeString)
        }
    }

    fn serialize_char(self, v: char) -> Result<(), Self::Error> {
        Ok(write_str(self.w, v.encode_utf8(&mut [0u8; 4]))?)
    }

    fn serialize_str(self, v: &str) -> Result<(), Self::Error> {
        Ok(write_str(self.w, v)?)
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn serialize_none(self) -> Result<(), Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Self::Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<(), Self::Error> {
        Ok(write_str(self.w, variant)?)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Err(SerError::KeyMustBeString)
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Self::Error> {
        collect_display(self.w, value)
    }

    fn is_human_readable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde::Serialize;
    use serde::ser::{Error as _, SerializeMap};
    use std::collections::{BTreeMap, HashMap};
    use std::string::String;
    use std::vec::Vec;

    /// Iterations of each pseudorandom float test (raise it for a long run).
    const HEAVY: u32 = 100_000;

    // ---- writers ----------------------------------------------------------------------------

    /// A growable writer (embedded-io only implements `Write` for `Vec<u8>` with `alloc`).
    #[derive(Default)]
    struct VecWriter(Vec<u8>);

    impl embedded_io::ErrorType for VecWriter {
        type Error = core::convert::Infallible;
    }

    impl embedded_io::Write for VecWriter {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Boom(u32);

    impl fmt::Display for Boom {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "boom {}", self.0)
        }
    }

    impl core::error::Error for Boom {}

    impl embedded_io::Error for Boom {
        fn kind(&self) -> embedded_io::ErrorKind {
            embedded_io::ErrorKind::Other
        }
    }

    /// Accepts `limit` bytes in total (at most `chunk` per call), then fails with `Boom(7)` or,
    /// with `zero`, returns `Ok(0)`.
    struct Limited {
        out: Vec<u8>,
        limit: usize,
        chunk: usize,
        zero: bool,
    }

    impl Limited {
        fn new(limit: usize) -> Self {
            Limited {
                out: Vec::new(),
                limit,
                chunk: usize::MAX,
                zero: false,
            }
        }
    }

    impl embedded_io::ErrorType for Limited {
        type Error = Boom;
    }

    impl embedded_io::Write for Limited {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Boom> {
            let room = self.limit - self.out.len();
            if room == 0 && !buf.is_empty() {
                return if self.zero { Ok(0) } else { Err(Boom(7)) };
            }
            let n = buf.len().min(room).min(self.chunk);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> Result<(), Boom> {
            Ok(())
        }
    }

    fn ours<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        let mut w = VecWriter::default();
        to_writer(&mut w, v).unwrap();
        w.0
    }

    #[track_caller]
    fn same<T: Serialize + ?Sized>(v: &T) {
        let expected = serde_json::to_vec(v).unwrap();
        let got = ours(v);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected)
        );
    }

    // ---- test types -------------------------------------------------------------------------

    #[derive(Serialize)]
    struct UnitStruct;

    #[derive(Serialize)]
    struct Newtype(i32);

    #[derive(Serialize)]
    struct TupleStruct(i32, String, bool);

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    struct KeyNewtype(u32);

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum KeyEnum {
        Alpha,
        #[serde(rename = "be\"ta")]
        Beta,
    }

    #[derive(Serialize)]
    enum Every {
        Unit,
        Newtype(i64),
        Tuple(i32, String),
        EmptyTuple(),
        Struct { x: i32, y: Option<String> },
        EmptyStruct {},
        Nested(Box<Every>),
    }

    #[derive(Serialize)]
    #[serde(tag = "type")]
    enum Internal {
        A { n: u8 },
        B,
    }

    #[derive(Serialize)]
    #[serde(tag = "t", content = "c")]
    enum Adjacent {
        A(u8),
        B { s: &'static str },
    }

    #[derive(Serialize)]
    #[serde(untagged)]
    enum Untagged {
        N(u8),
        S(&'static str),
    }

    #[derive(Serialize)]
    struct Flat {
        a: u8,
        #[serde(flatten)]
        rest: BTreeMap<String, i32>,
    }

    fn as_bytes<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    #[derive(Serialize)]
    struct Nested {
        name: String,
        opt: Option<i32>,
        none: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        list: Vec<Every>,
        empty: Vec<u8>,
        map: BTreeMap<String, Vec<u32>>,
        hash: HashMap<String, (u8, char)>,
        int_keys: BTreeMap<i64, bool>,
        bool_keys: BTreeMap<bool, ()>,
        char_keys: BTreeMap<char, UnitStruct>,
        unit: (),
        tuple: (u8, char, &'static str, f64),
        newtype: Newtype,
        tuple_struct: TupleStruct,
        #[serde(serialize_with = "as_bytes")]
        bytes: Vec<u8>,
        internal: Vec<Internal>,
        adjacent: Vec<Adjacent>,
        untagged: Vec<Untagged>,
        flat: Flat,
        deep: Vec<Vec<Option<Vec<()>>>>,
    }

    fn nested() -> Nested {
        let mut map = BTreeMap::new();
        map.insert("k\"ey\\".to_string(), vec![1, 2, 3]);
        map.insert(String::new(), vec![]);
        let mut hash = HashMap::new();
        hash.insert("only".to_string(), (255, '\u{1F600}'));
        let mut rest = BTreeMap::new();
        rest.insert("b".to_string(), -1);
        rest.insert("c".to_string(), 2);
        Nested {
            name: "quote\" backslash\\ nl\n tab\t nul\u{0} us\u{1f} del\u{7f} é€😀".to_string(),
            opt: Some(-5),
            none: None,
            skipped: None,
            list: vec![
                Every::Unit,
                Every::Newtype(i64::MIN),
                Every::Tuple(1, "two".to_string()),
                Every::EmptyTuple(),
                Every::Struct {
                    x: 3,
                    y: Some("y".to_string()),
                },
                Every::Struct { x: 4, y: None },
                Every::EmptyStruct {},
                Every::Nested(Box::new(Every::Nested(Box::new(Every::Unit)))),
            ],
            empty: vec![],
            map,
            hash,
            int_keys: [(i64::MIN, true), (-1, false), (0, true), (i64::MAX, false)]
                .into_iter()
                .collect(),
            bool_keys: [(false, ()), (true, ())].into_iter().collect(),
            char_keys: [('"', UnitStruct), ('a', UnitStruct), ('\n', UnitStruct)]
                .into_iter()
                .collect(),
            unit: (),
            tuple: (7, 'c', "str", 2.5),
            newtype: Newtype(-42),
            tuple_struct: TupleStruct(1, "x".to_string(), false),
            bytes: vec![0, 1, 9, 10, 99, 100, 127, 128, 255],
            internal: vec![Internal::A { n: 1 }, Internal::B],
            adjacent: vec![Adjacent::A(2), Adjacent::B { s: "s" }],
            untagged: vec![Untagged::N(3), Untagged::S("u")],
            flat: Flat { a: 1, rest },
            deep: vec![vec![], vec![None, Some(vec![]), Some(vec![(), ()])]],
        }
    }

    /// A map from any key type, in the given order.
    struct Pairs<K, V>(Vec<(K, V)>);

    impl<K: Serialize, V: Serialize> Serialize for Pairs<K, V> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(None)?;
            for (k, v) in &self.0 {
                m.serialize_entry(k, v)?;
            }
            m.end()
        }
    }

    // ---- equality with serde_json -----------------------------------------------------------

    #[test]
    fn nested_matches_serde_json() {
        same(&nested());
    }

    #[test]
    fn scalars_match_serde_json() {
        same(&true);
        same(&false);
        same(&());
        same(&UnitStruct);
        same(&Newtype(0));
        same(&Some(Some(1u8)));
        same(&None::<u8>);
        same(&'x');
        same(&'"');
        same(&'\u{0}');
        same(&'\u{10FFFF}');
        same("");
        same("\u{8}\u{c}\r\n\t/\\\"<>&\u{2028}");
        same(&Every::Unit);
        same(&Every::Newtype(1));
        same(&Every::Tuple(-1, String::new()));
        same(&Every::EmptyTuple());
        same(&Every::EmptyStruct {});
        same(&(1u8,));
        same(&(1u8, (2u16, (3u32, ()))));
        same(&[[0u8; 0]; 2]);
    }

    #[test]
    fn integer_extremes_match_serde_json() {
        same(&[i8::MIN, -1, 0, 1, i8::MAX]);
        same(&[i16::MIN, -1, 0, 1, i16::MAX]);
        same(&[i32::MIN, -1, 0, 1, i32::MAX]);
        same(&[i64::MIN, -1, 0, 1, i64::MAX]);
        same(&[i128::MIN, -1, 0, 1, i128::MAX]);
        same(&[u8::MIN, u8::MAX]);
        same(&[u16::MIN, u16::MAX]);
        same(&[u32::MIN, u32::MAX]);
        same(&[u64::MIN, u64::MAX]);
        same(&[u128::MIN, u128::MAX]);
        let mut p: u128 = 1;
        for _ in 0..39 {
            same(&[p - 1, p, p + 1]);
            let i = p as i128;
            if i > 0 {
                same(&[-i - 1, -i, -i + 1]);
            }
            p = p.saturating_mul(10);
        }
        same(&[
            u128::from(u64::MAX) + 1,
            u128::from(u64::MAX) * 10_000_000_000_000_000_000,
        ]);
    }

    #[test]
    fn integers_match_serde_json_pseudorandom() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let shift = (x % 64) as u32;
            let v = x >> shift;
            same(&(
                v,
                v as i64,
                (u128::from(v) << 64) | u128::from(x),
                (v as i128) << 40,
            ));
        }
    }

    #[test]
    fn map_keys_match_serde_json() {
        same(&Pairs(vec![(i8::MIN, 1), (i8::MAX, 2)]));
        same(&Pairs(vec![(i128::MIN, 1), (0, 2), (i128::MAX, 3)]));
        same(&Pairs(vec![(u128::MAX, 1), (0, 2)]));
        same(&Pairs(vec![(u16::MAX, ()), (0, ())]));
        same(&Pairs(vec![(true, 1), (false, 2)]));
        same(&Pairs(vec![('é', 1), ('\\', 2)]));
        same(&Pairs(vec![("a\"b", 1)]));
        same(&Pairs(vec![(KeyNewtype(5), 'v')]));
        same(&Pairs(vec![(KeyEnum::Alpha, 1), (KeyEnum::Beta, 2)]));
        same(&Pairs(vec![(Some("s"), 1)]));
        same(&Pairs(vec![(1.5f64, 1), (-0.0, 2), (1e300, 3), (1e-7, 4)]));
        same(&Pairs(vec![(1.5f32, 1), (1e20f32, 2)]));
        same(&Pairs(Vec::<(u8, u8)>::new()));
        same(&Pairs(vec![(Pairs(vec![(1, 2)]), 3)]).0.len());
    }

    #[test]
    fn bad_keys_fail_like_serde_json() {
        #[derive(Serialize)]
        struct S {
            a: u8,
        }
        fn bad<K: Serialize>(k: K) {
            let v = Pairs(vec![(k, 1)]);
            assert!(serde_json::to_vec(&v).is_err());
            let mut w = VecWriter::default();
            assert_eq!(to_writer(&mut w, &v), Err(SerError::KeyMustBeString));
        }
        bad(S { a: 1 });
        bad(());
        bad(UnitStruct);
        bad(None::<u8>);
        bad(vec![1u8]);
        bad((1u8, 2u8));
        bad(Every::Newtype(1));
        bad(Every::Tuple(1, String::new()));
        bad(Every::Struct { x: 1, y: None });
        bad(Pairs(vec![(1, 2)]));
        bad(f64::NAN);
        bad(f32::INFINITY);
        bad(Bytes(&[1]));
    }

    struct Bytes(&'static [u8]);

    impl Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    #[test]
    fn bytes_match_serde_json() {
        same(&Bytes(&[]));
        same(&Bytes(&[0]));
        same(&Bytes(&[255, 0, 7, 42, 100]));
        let all: Vec<u8> = (0..=255).collect();
        let all: &'static [u8] = Box::leak(all.into_boxed_slice());
        same(&Bytes(all));
    }

    // ---- floats -----------------------------------------------------------------------------

    #[test]
    fn floats_parse_back() {
        let values = [
            0.0,
            -0.0,
            1.0,
            1.5,
            1e-7,
            1e300,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            0.1 + 0.2,
            5e-324,
            123_456_789.0,
            1e15,
            1e16,
            1e-5,
            1e-4,
        ];
        for v in values {
            let text = ours(&v);
            let back: f64 = serde_json::from_slice(&text).unwrap();
            assert_eq!(
                back.to_bits(),
                v.to_bits(),
                "{}",
                String::from_utf8_lossy(&text)
            );
            same(&v);
        }
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(ours(&v), b"null");
            same(&v);
        }
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(ours(&v), b"null");
            same(&v);
        }
        for v in [
            0.0f32,
            -0.0,
            1.1,
            f32::MIN_POSITIVE,
            f32::MAX,
            1e-45,
            16_777_216.0,
        ] {
            let text = ours(&v);
            let back: f32 = serde_json::from_slice(&text).unwrap();
            assert_eq!(back.to_bits(), v.to_bits());
            same(&v);
        }
        assert_eq!(ours(&1.0f64), b"1.0");
        assert_eq!(ours(&-0.0f64), b"-0.0");
        assert_eq!(ours(&0.30000000000000004f64), b"0.30000000000000004");
        assert_eq!(ours(&1e300f64), b"1e+300");
        assert_eq!(ours(&1.5e-7f64), b"1.5e-7");
        assert_eq!(ours(&1e15f64), b"1000000000000000.0");
        assert_eq!(ours(&1e16f64), b"1e+16");
        assert_eq!(ours(&1e-5f64), b"0.00001");
        assert_eq!(ours(&1e-6f64), b"1e-6");
    }

    #[test]
    fn floats_match_serde_json_pseudorandom() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..HEAVY {
            let bits = next();
            // Random bit patterns, plus values near powers of ten with few digits.
            let a = f64::from_bits(bits);
            let b = ((bits % 100_000) as f64) * 10f64.powi((i % 60) as i32 - 30);
            let c = f32::from_bits(bits as u32);
            let d = ((bits % 1000) as f32) * 10f32.powi((i % 40) as i32 - 20);
            for v in [a, b] {
                let got = ours(&v);
                assert_eq!(got, serde_json::to_vec(&v).unwrap(), "{v:e}");
                if v.is_finite() {
                    // `str::parse` rounds correctly; serde_json's default parser may not.
                    let back: f64 = std::str::from_utf8(&got).unwrap().parse().unwrap();
                    assert_eq!(back.to_bits(), v.to_bits());
                }
            }
            for v in [c, d] {
                let got = ours(&v);
                assert_eq!(got, serde_json::to_vec(&v).unwrap(), "{v:e}");
                if v.is_finite() {
                    let back: f32 = std::str::from_utf8(&got).unwrap().parse().unwrap();
                    assert_eq!(back.to_bits(), v.to_bits());
                }
            }
        }
    }

    #[test]
    fn float_ties_round_to_even_like_serde_json() {
        // Exactly halfway between two shortest candidates: serde_json keeps the even digit.
        let quarter = 3_065_919.0f32 + 0.25;
        let three_quarters = 3_065_919.0f32 + 0.75;
        assert_eq!(ours(&quarter), serde_json::to_vec(&quarter).unwrap());
        assert_eq!(ours(&quarter), b"3065919.2");
        assert_eq!(ours(&three_quarters), b"3065919.8");
        // Next to a power of two only the upper candidate round-trips: no tie.
        let p = 2f64.powi(-24);
        assert_eq!(ours(&p), b"5.960464477539063e-8");
        assert_eq!(ours(&-(1890.0f32 + 0.90625)), b"-1890.9062");
        let mut x: u64 = 0xDEAD_BEEF_CAFE_F00D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..HEAVY {
            let r = next();
            // Values with few significant bits, at every exponent: where ties live.
            let keep = (r >> 58) as u32; // 0..64 low bits cleared
            let a = f64::from_bits(next() & !((1u64 << (keep % 53)) - 1));
            let b = f32::from_bits((next() as u32) & !((1u32 << (keep % 24)) - 1));
            let c = (1u64 << 50) as f64 + ((r % (1 << 20)) as f64) + 0.25 * ((r >> 40) % 4) as f64;
            let d = (1u32 << 21) as f32 + ((r % (1 << 20)) as f32) + 0.25 * ((r >> 40) % 4) as f32;
            for v in [a, c] {
                assert_eq!(ours(&v), serde_json::to_vec(&v).unwrap(), "{v:e}");
            }
            for v in [b, d] {
                assert_eq!(ours(&v), serde_json::to_vec(&v).unwrap(), "{v:e}");
            }
        }
    }

    // ---- collect_str, human readable ---------------------------------------------------------

    struct Shown(&'static str);

    impl fmt::Display for Shown {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for part in self.0.split(' ') {
                f.write_str(part)?;
                f.write_str("\" ")?;
            }
            write!(f, "{}", 12)
        }
    }

    impl Serialize for Shown {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self)
        }
    }

    /// Every kind of container counts the levels the parsers count: at
    /// `MAX_DATA_DEPTH` it is written (and reads back), one deeper it is
    /// `TooDeep`.
    #[test]
    fn every_container_kind_nests_as_deep_as_the_parsers_read() {
        #[derive(Serialize)]
        enum V<T> {
            New(T),
            Tuple(T, u8),
            Struct { v: T },
        }
        struct Bytes;
        impl Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&[1, 2])
            }
        }
        type Written = Result<Vec<u8>, SerError<core::convert::Infallible>>;
        fn wrapped<T: Serialize>(levels: usize, inner: T) -> Written {
            // `levels` arrays around `inner`, written through the serializer.
            struct Nest<'a, T>(usize, &'a T);
            impl<T: Serialize> Serialize for Nest<'_, T> {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    match self.0 {
                        0 => self.1.serialize(s),
                        n => [Nest(n - 1, self.1)].serialize(s),
                    }
                }
            }
            let mut out = Vec::new();
            to_writer(&mut out, &Nest(levels, &inner))?;
            Ok(out)
        }
        let max = crate::MAX_DATA_DEPTH;
        let cases: [(usize, &dyn Fn(usize) -> Written); 6] = [
            (1, &|n| wrapped(n, [0u8; 0])),
            (1, &|n| wrapped(n, BTreeMap::from([("k", 1)]))),
            (1, &|n| wrapped(n, V::New(1))),
            (2, &|n| wrapped(n, V::Tuple(1, 2))),
            (2, &|n| wrapped(n, V::Struct { v: 1 })),
            (1, &|n| wrapped(n, Bytes)),
        ];
        for (i, (levels, write)) in cases.iter().enumerate() {
            let at_limit = write(max - levels).unwrap();
            assert_eq!(crate::json::validate(&at_limit, max), Ok(()), "case {i}");
            assert_eq!(
                write(max - levels + 1).unwrap_err(),
                SerError::TooDeep,
                "case {i}"
            );
        }
    }

    #[test]
    fn collect_str_matches_serde_json() {
        same(&Shown("a b\nc é"));
        same(&Shown(""));
        same(&Pairs(vec![(Shown("k\\ey"), Shown("v"))]));
    }

    struct BadDisplay;

    impl fmt::Display for BadDisplay {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("partial")?;
            Err(fmt::Error)
        }
    }

    impl Serialize for BadDisplay {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self)
        }
    }

    #[test]
    fn collect_str_display_error_is_custom_not_panic() {
        let mut w = VecWriter::default();
        let err = to_writer(&mut w, &BadDisplay).unwrap_err();
        assert!(matches!(err, SerError::Custom(_)), "{err:?}");
        let mut w = Limited::new(3);
        let err = to_writer(&mut w, &Shown("abc def")).unwrap_err();
        assert_eq!(err, SerError::Write(WriteError::Io(Boom(7))));
        assert_eq!(w.out, b"\"ab");
    }

    struct HumanReadable;

    impl Serialize for HumanReadable {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            if s.is_human_readable() {
                s.serialize_str("human")
            } else {
                s.serialize_u8(0)
            }
        }
    }

    #[test]
    fn is_human_readable() {
        same(&HumanReadable);
        same(&Pairs(vec![(HumanReadable, HumanReadable)]));
        assert_eq!(ours(&HumanReadable), b"\"human\"");
    }

    // ---- errors -----------------------------------------------------------------------------

    struct Fails(String);

    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
            Err(S::Error::custom(&self.0))
        }
    }

    fn custom_msg<T: Serialize>(v: &T) -> String {
        let mut w = VecWriter::default();
        match to_writer(&mut w, v) {
            Err(SerError::Custom(m)) => m.as_str().to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn custom_error_is_truncated_at_char_boundary() {
        assert_eq!(custom_msg(&Fails("short".into())), "short");
        assert_eq!(custom_msg(&Fails("x".repeat(200))), "x".repeat(64));
        assert_eq!(custom_msg(&Fails("y".repeat(64))), "y".repeat(64));
        // 'é' would need bytes 63..65: cut before it.
        let msg = format!("{}é and more", "a".repeat(63));
        assert_eq!(custom_msg(&Fails(msg)), "a".repeat(63));
        // A 4-byte char at 61..65, inside a nested value.
        let msg = format!("{}😀", "b".repeat(61));
        assert_eq!(custom_msg(&vec![Fails(msg)]), "b".repeat(61));
        // Pieces after the cut are dropped even if they would fit.
        struct Pieces;
        impl fmt::Display for Pieces {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&"c".repeat(62))?;
                f.write_str("€")?;
                f.write_str("d")
            }
        }
        match SerError::<Boom>::custom(Pieces) {
            SerError::Custom(m) => assert_eq!(m.as_str(), "c".repeat(62)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn display_texts() {
        let e: SerError<Boom> = SerError::KeyMustBeString;
        assert_eq!(e.to_string(), "map key must be a string");
        let e: SerError<Boom> = SerError::custom("bad");
        assert_eq!(e.to_string(), "payload: bad");
        let e: SerError<Boom> = WriteError::Io(Boom(1)).into();
        assert_eq!(e.to_string(), "write failed: Boom(1)");
        let e: SerError<Boom> = WriteError::WriteZero.into();
        assert_eq!(e.to_string(), "writer accepted zero bytes");
        let _: &dyn core::error::Error = &e;
        assert_eq!(Erased.to_string(), "writer failed");
        assert_eq!(
            embedded_io::Error::kind(&Erased),
            embedded_io::ErrorKind::Other
        );
    }

    #[test]
    fn failing_writer_at_every_byte() {
        let v = nested();
        let full = ours(&v);
        assert!(full.len() > 500);
        for n in 0..full.len() {
            let mut w = Limited::new(n);
            assert_eq!(
                to_writer(&mut w, &v),
                Err(SerError::Write(WriteError::Io(Boom(7)))),
                "n = {n}"
            );
            assert_eq!(w.out, full[..n]);

            let mut w = Limited::new(n);
            w.zero = true;
            assert_eq!(
                to_writer(&mut w, &v),
                Err(SerError::Write(WriteError::WriteZero)),
                "n = {n}"
            );
            assert_eq!(w.out, full[..n]);
        }
        let mut w = Limited::new(full.len());
        to_writer(&mut w, &v).unwrap();
        assert_eq!(w.out, full);
    }

    #[test]
    fn writer_returning_ok_zero_immediately() {
        let mut w = Limited::new(0);
        w.zero = true;
        assert_eq!(
            to_writer(&mut w, &1u8),
            Err(SerError::Write(WriteError::WriteZero))
        );
        assert_eq!(
            to_writer(&mut w, &Pairs(vec![(1, 2)])),
            Err(SerError::Write(WriteError::WriteZero))
        );
    }

    #[test]
    fn one_byte_per_call_writer() {
        let v = nested();
        let mut w = Limited::new(usize::MAX);
        w.chunk = 1;
        to_writer(&mut w, &v).unwrap();
        assert_eq!(w.out, serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn slice_writer_and_counter() {
        let v = nested();
        let expected = serde_json::to_vec(&v).unwrap();
        let mut c = crate::io::Counter::default();
        to_writer(&mut c, &v).unwrap();
        assert_eq!(c.count, expected.len());
        let mut buf = vec![0u8; expected.len()];
        let mut w = crate::io::SliceWriter::new(&mut buf);
        to_writer(&mut w, &v).unwrap();
        assert_eq!(w.written(), &expected[..]);
        let mut small = [0u8; 10];
        let mut w = crate::io::SliceWriter::new(&mut small);
        assert_eq!(
            to_writer(&mut w, &v),
            Err(SerError::Write(WriteError::Io(crate::io::SliceFull)))
        );
    }

    #[derive(Serialize)]
    struct Keys {
        #[serde(rename = "k234567890123456")]
        sixteen: u8,
        #[serde(rename = "k2345678901234567")]
        seventeen: u8,
        #[serde(rename = "q\"uote")]
        quote: u8,
        #[serde(rename = "new\nline\\")]
        escapes: u8,
        #[serde(rename = "")]
        empty: u8,
        #[serde(rename = "é")]
        unicode: u8,
    }

    #[test]
    fn struct_keys_of_every_kind_match_serde_json() {
        let v = Keys {
            sixteen: 1,
            seventeen: 2,
            quote: 3,
            escapes: 4,
            empty: 5,
            unicode: 6,
        };
        let want = serde_json::to_vec(&v).unwrap();
        assert_eq!(ours(&v), want);
        let mut w = VecWriter::default();
        write_payload(&mut w, &v).unwrap();
        assert_eq!(w.0, want, "through the payload writer");
    }

    // ---- type-erased payloads ---------------------------------------------------------------

    #[test]
    fn write_payload_through_dyn() {
        let v = nested();
        let payload: &dyn JsonPayload = &v;
        let mut w = VecWriter::default();
        write_payload(&mut w, payload).unwrap();
        assert_eq!(w.0, serde_json::to_vec(&v).unwrap());

        let mut w = Limited::new(5);
        assert_eq!(
            write_payload(&mut w, payload),
            Err(SerError::Write(WriteError::Io(Boom(7))))
        );
        assert_eq!(w.out, serde_json::to_vec(&v).unwrap()[..5]);

        let mut w = Limited::new(5);
        w.zero = true;
        assert_eq!(
            write_payload(&mut w, payload),
            Err(SerError::Write(WriteError::WriteZero))
        );

        let bad = Pairs(vec![((), 1)]);
        let mut w = VecWriter::default();
        assert_eq!(write_payload(&mut w, &bad), Err(SerError::KeyMustBeString));
        let mut w = VecWriter::default();
        assert_eq!(
            write_payload(&mut w, &Fails("nope".into())),
            Err(SerError::custom("nope"))
        );
        let mut w = VecWriter::default();
        write_payload(&mut w, &"a str").unwrap();
        assert_eq!(w.0, b"\"a str\"");
        let mut w = VecWriter::default();
        to_writer(&mut w, "unsized str").unwrap();
        assert_eq!(w.0, b"\"unsized str\"");
    }

    /// The register-formatted digits agree with `format!` at every length
    /// and boundary, and through the serializer with serde_json for every
    /// unsigned type (including values at and past 10^8, which take `itoa`).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn small_unsigned_integers_are_written_as_serde_json_writes_them() {
        let mut values: Vec<u32> = (0..=10_000).collect();
        for p in 1..=8u32 {
            let t = 10u32.pow(p);
            values.extend([t - 1, t, t + 1, t / 2, t - t / 10]);
        }
        values.extend((0..2_000u32).map(|i| i.wrapping_mul(2_654_435_761) % 100_000_000));
        for v in values.iter().copied().filter(|&v| v < 100_000_000) {
            let (bytes, len) = digits8(v);
            assert_eq!(&bytes[8 - len..], v.to_string().as_bytes(), "{v}");
        }
        for v in values.iter().copied().chain([100_000_000, u32::MAX]) {
            let mut w = VecWriter::default();
            write_payload(&mut w, &(v, u64::from(v) * 3, v as u16, v as u8)).unwrap();
            let want = serde_json::to_vec(&(v, u64::from(v) * 3, v as u16, v as u8)).unwrap();
            assert_eq!(w.0, want, "{v}");
        }
        let mut w = VecWriter::default();
        write_payload(&mut w, &[u64::MAX, 0, 99_999_999, 100_000_000]).unwrap();
        assert_eq!(w.0, b"[18446744073709551615,0,99999999,100000000]");
    }

    /// A struct with the given member names (serde's derive gives only
    /// identifiers; JSON keys may hold anything).
    struct Members(&'static [&'static str], Vec<String>);

    impl Serialize for Members {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeStruct as _;
            let mut st = s.serialize_struct("Members", self.0.len())?;
            for (k, v) in self.0.iter().zip(&self.1) {
                st.serialize_field(k, v)?;
            }
            st.end()
        }
    }

    /// A payload's `,"key":` and short strings are written in place in its
    /// buffer when they fit and need no escaping: the bytes must be
    /// serde_json's wherever the buffer fills up, for every key and value
    /// length around the 16-byte fast path, with and without escapes, first
    /// member or not, nested or not; and a writer that fails part way gets
    /// exactly the bytes before the failure.
    #[test]
    fn members_written_in_place_match_serde_json_at_every_buffer_offset() {
        const KEYS: &[&str] = &[
            "pad",
            "",
            "a",
            "abc",
            "abcd",
            "abcdefg",
            "abcdefgh",
            "abcdefghijklmno",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
            "with \"quote",
            "tab\there",
            "ünï",
            "back\\slash",
            "a key longer than the sixteen bytes of the fast path",
        ];
        let values = [
            "",
            "v",
            "0123456789abcde",
            "0123456789abcdef",
            "0123456789abcdefg",
            "quo\"te",
            "\u{1}",
            "é",
            "a value longer than the sixteen bytes of the fast path, with no escapes",
        ];
        for pad in 0..=2 * PAYLOAD_BUF + 20 {
            let mut vals = vec!["p".repeat(pad)];
            vals.extend((1..KEYS.len()).map(|i| values[i % values.len()].to_string()));
            let m = Members(KEYS, vals);
            let nested = (vec![Members(&KEYS[1..4], vec!["x".into(); 3])], &m);
            for (value, want) in [
                (&m as &dyn JsonPayload, serde_json::to_vec(&m).unwrap()),
                (&nested, serde_json::to_vec(&nested).unwrap()),
            ] {
                let mut w = VecWriter::default();
                write_payload(&mut w, value).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&w.0),
                    String::from_utf8_lossy(&want),
                    "pad {pad}"
                );
            }
            let want = serde_json::to_vec(&m).unwrap();
            let mut plain = VecWriter::default();
            to_writer(&mut plain, &m).unwrap();
            assert_eq!(plain.0, want, "to_writer, pad {pad}");
            if pad % 37 == 0 {
                for limit in 0..want.len() {
                    let mut w = Limited::new(limit);
                    assert_eq!(
                        write_payload(&mut w, &m),
                        Err(SerError::Write(WriteError::Io(Boom(7)))),
                        "pad {pad}, limit {limit}"
                    );
                    assert_eq!(w.out, want[..limit], "pad {pad}, limit {limit}");
                }
            }
        }
    }

    #[test]
    fn lying_payload_error_does_not_panic() {
        struct Liar;
        impl JsonPayload for Liar {
            fn write_json(&self, _w: &mut PayloadWriter<'_>) -> Result<(), SerError<Erased>> {
                Err(SerError::Write(WriteError::Io(Erased)))
            }
        }
        let mut w = VecWriter::default();
        assert!(matches!(
            write_payload(&mut w, &Liar),
            Err(SerError::Custom(_))
        ));
    }
}
