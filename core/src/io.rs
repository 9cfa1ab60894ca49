//! Small helpers over [`embedded_io::Write`] that never panic.
//!
//! `embedded_io::Write::write_all` panics when a writer returns `Ok(0)` for a
//! non-empty buffer; the encoders in this crate go through [`write_all`] instead,
//! which reports that case as [`WriteError::WriteZero`].

use core::fmt;

/// Why writing to an [`embedded_io::Write`] failed.
///
/// ```
/// use ossa_events_core::io::{write_all, SliceFull, SliceWriter, WriteError};
/// let mut buf = [0u8; 4];
/// let mut w = SliceWriter::new(&mut buf);
/// assert_eq!(write_all(&mut w, b"hello"), Err(WriteError::Io(SliceFull)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError<E> {
    /// The writer returned an error.
    Io(E),
    /// The writer accepted zero bytes of a non-empty buffer.
    WriteZero,
}

impl<E> From<E> for WriteError<E> {
    fn from(e: E) -> Self {
        WriteError::Io(e)
    }
}

impl<E: fmt::Debug> fmt::Display for WriteError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Io(e) => write!(f, "write failed: {e:?}"),
            WriteError::WriteZero => f.write_str("writer accepted zero bytes"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for WriteError<E> {}

impl<E: embedded_io::Error> embedded_io::Error for WriteError<E> {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            WriteError::Io(e) => e.kind(),
            WriteError::WriteZero => embedded_io::ErrorKind::WriteZero,
        }
    }
}

/// Gathers many small writes in a stack buffer and passes them on to the
/// inner writer in a few large ones (an event is ~40 pieces: keys, quotes,
/// values). Call [`Gather::finish`] to write what is left.
pub(crate) struct Gather<'w, W: embedded_io::Write + ?Sized> {
    w: &'w mut W,
    buf: [u8; 256],
    len: usize,
}

impl<'w, W: embedded_io::Write + ?Sized> Gather<'w, W> {
    #[inline]
    pub(crate) fn new(w: &'w mut W) -> Self {
        Gather {
            w,
            buf: [0; 256],
            len: 0,
        }
    }

    fn drain(&mut self) -> Result<(), WriteError<W::Error>> {
        let pending = self.buf.get(..self.len).unwrap_or(&[]);
        self.len = 0;
        write_all(self.w, pending)
    }

    /// Writes what is still buffered.
    #[inline]
    pub(crate) fn finish(mut self) -> Result<(), WriteError<W::Error>> {
        self.drain()
    }
}

impl<W: embedded_io::Write + ?Sized> embedded_io::ErrorType for Gather<'_, W> {
    type Error = WriteError<W::Error>;
}

impl<W: embedded_io::Write + ?Sized> embedded_io::Write for Gather<'_, W> {
    #[inline(always)]
    fn write(&mut self, b: &[u8]) -> Result<usize, Self::Error> {
        let end = self.len + b.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            copy_into(dst, b);
            self.len = end;
            return Ok(b.len());
        }
        self.drain()?;
        if let Some(dst) = self.buf.get_mut(..b.len()) {
            dst.copy_from_slice(b);
            self.len = b.len();
            Ok(b.len())
        } else {
            // Larger than the buffer: straight through.
            write_all(self.w, b)?;
            Ok(b.len())
        }
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.drain()?;
        self.w.flush().map_err(WriteError::Io)
    }
}

/// A writer the JSON encoder and serializer can write members into in
/// place: its buffer and how much of it is taken. `None` for writers that
/// are not memory (they are written piece by piece). A member written in
/// one step instead of three to six writes was most of the cost of short
/// members (issue 16's build + encode).
pub(crate) trait Room {
    /// The writer the encoder writes to piece by piece.
    type W: embedded_io::Write + ?Sized;
    /// That writer.
    fn w(&mut self) -> &mut Self::W;
    /// The buffer and its used length, when the writer is one (64-bit
    /// targets; devices write piece by piece: smaller).
    #[cfg(target_pointer_width = "64")]
    #[inline(always)]
    fn room(&mut self) -> Option<(&mut [u8], &mut usize)> {
        None
    }
}

/// The error of the writer behind a [`Room`].
pub(crate) type RoomError<S> = <<S as Room>::W as embedded_io::ErrorType>::Error;

/// Any writer, written piece by piece.
pub(crate) struct Plain<'a, W: ?Sized>(pub(crate) &'a mut W);

impl<W: embedded_io::Write + ?Sized> Room for Plain<'_, W> {
    type W = W;
    #[inline(always)]
    fn w(&mut self) -> &mut W {
        self.0
    }
}

impl<W: embedded_io::Write + ?Sized> Room for Gather<'_, W> {
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

impl Room for ShortCopySlice<'_> {
    type W = Self;
    #[inline(always)]
    fn w(&mut self) -> &mut Self {
        self
    }
    #[cfg(target_pointer_width = "64")]
    #[inline(always)]
    fn room(&mut self) -> Option<(&mut [u8], &mut usize)> {
        Some((&mut *self.0.buf, &mut self.0.len))
    }
}

/// Copies `src` into `dst` (of the same length). Pieces of up to 32 bytes,
/// most of what an encoder writes (keys, quotes, short values), are copied
/// with two overlapping word moves instead of a call into `memcpy`, whose
/// call and size dispatch cost more than the copy itself; longer ones go to
/// `copy_from_slice`. On a 32-bit device every piece goes to `memcpy`, which
/// is smaller there, through `copy_min` (no length check: no panic path).
///
/// For the buffers the JSON encoder writes its pieces into ([`Gather`], the
/// payload writer), where inlining makes most lengths constants and the size
/// tests fold away. [`SliceWriter`] keeps `copy_from_slice`: the HTTP header
/// writer hands it names and values of every length, and the size tests
/// made that 16 % slower (240 → 280 ns for the sdk-shaped event).
#[inline(always)]
pub(crate) fn copy_into(dst: &mut [u8], src: &[u8]) {
    #[cfg(target_pointer_width = "64")]
    {
        let n = src.len();
        if n <= 32 && dst.len() == n {
            copy_short(dst, src);
            return;
        }
        dst.copy_from_slice(src);
    }
    #[cfg(not(target_pointer_width = "64"))]
    copy_min(dst, src);
}

/// Copies `min(dst.len(), src.len())` bytes (the callers pass equal
/// lengths). The compiler turns the loop into a `memcpy` call; unlike
/// `copy_from_slice` it has no length check, which would be a panic path
/// (and the panic handler behind it) in the firmware.
#[cfg(not(target_pointer_width = "64"))]
#[inline(always)]
fn copy_min(dst: &mut [u8], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len(), "copy_min: callers pass equal lengths");
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// [`copy_into`] for `src.len() == dst.len() <= 32`.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n >= 16 {
        copy_word::<16>(dst, src, 0);
        copy_word::<16>(dst, src, n - 16);
    } else if n >= 8 {
        copy_word::<8>(dst, src, 0);
        copy_word::<8>(dst, src, n - 8);
    } else if n >= 4 {
        copy_word::<4>(dst, src, 0);
        copy_word::<4>(dst, src, n - 4);
    } else if n > 0 {
        // 1 to 3 bytes: the first, the middle and the last cover them (a
        // byte loop here became a call to `memcpy`).
        for i in [0, n / 2, n - 1] {
            if let (Some(d), Some(&s)) = (dst.get_mut(i), src.get(i)) {
                *d = s;
            }
        }
    }
}

/// Copies the `N` bytes at `at` (in bounds by the caller's check: the
/// `get`s compile away).
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn copy_word<const N: usize>(dst: &mut [u8], src: &[u8], at: usize) {
    if let (Some(d), Some(s)) = (dst.get_mut(at..at + N), src.get(at..at + N)) {
        d.copy_from_slice(s);
    }
}

/// Writes all of `buf`, looping on short writes; `Ok(0)` becomes [`WriteError::WriteZero`].
/// An [`ErrorKind::Interrupted`](embedded_io::ErrorKind::Interrupted) is tried
/// again, as `std`'s `write_all` does (up to 8 in a row, then it is returned).
///
/// ```
/// # use ossa_events_core::embedded_io;
/// # struct Stuck; // a writer that accepts nothing
/// # impl embedded_io::ErrorType for Stuck { type Error = core::convert::Infallible; }
/// # impl embedded_io::Write for Stuck {
/// #     fn write(&mut self, _: &[u8]) -> Result<usize, Self::Error> { Ok(0) }
/// #     fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// use ossa_events_core::io::{write_all, WriteError};
/// let mut out = [0u8; 8];
/// let mut w: &mut [u8] = &mut out;
/// write_all(&mut w, b"abc")?;
/// assert_eq!(&out[..3], b"abc");
/// // `embedded_io::Write::write_all` would panic here; this returns an error.
/// assert_eq!(write_all(&mut Stuck, b"abc"), Err(WriteError::WriteZero));
/// # Ok::<(), WriteError<ossa_events_core::embedded_io::SliceWriteError>>(())
/// ```
#[inline]
pub fn write_all<W: embedded_io::Write + ?Sized>(
    w: &mut W,
    mut buf: &[u8],
) -> Result<(), WriteError<W::Error>> {
    let mut tries = 0;
    while !buf.is_empty() {
        let r = w.write(buf);
        if crate::batch::interrupted(&r, &mut tries) {
            continue;
        }
        match r {
            Ok(0) => return Err(WriteError::WriteZero),
            Ok(n) => buf = buf.get(n..).unwrap_or(&[]),
            Err(e) => return Err(WriteError::Io(e)),
        }
    }
    Ok(())
}

/// A copy that turns bytes into the runs an encoder writes (JSON text
/// without its whitespace, bytes as Base64): it hands each run to the sink
/// in order, and stops, returning `false`, as soon as the sink does.
///
/// Held as a function pointer by the value it applies to, set where that
/// value comes in (the builder's setters, the parsers), rather than called
/// by name from the encoder: an encoder that never meets such a value calls
/// nothing, so a firmware that has none does not link the copy (on the
/// firmware example, 556 B for JSON compaction and 348 B for Base64).
pub(crate) type Transcode = fn(&[u8], &mut dyn FnMut(&[u8]) -> bool) -> bool;

/// Writes what `transcode` makes of `bytes` to `w`; a write error is
/// returned as the writer gave it.
pub(crate) fn write_transcoded<W: embedded_io::Write + ?Sized>(
    w: &mut W,
    bytes: &[u8],
    transcode: Transcode,
) -> Result<(), WriteError<W::Error>> {
    let mut failed = None;
    transcode(bytes, &mut |run| match write_all(w, run) {
        Ok(()) => true,
        Err(e) => {
            failed = Some(e);
            false
        }
    });
    failed.map_or(Ok(()), Err)
}

/// A writer that only counts the bytes written to it (for sizing output before writing it).
///
/// ```
/// use ossa_events_core::{format::json, io::Counter, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
/// let mut c = Counter::default();
/// json::write_json(&ev, &mut c)?;
/// assert_eq!(c.count, json::encoded_len(&ev)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Bytes written so far.
    pub count: usize,
}

impl embedded_io::ErrorType for Counter {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Counter {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.count = self.count.saturating_add(buf.len());
        Ok(buf.len())
    }
    #[inline]
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A writer over a fixed slice that fails with [`SliceFull`] instead of writing part of a buffer.
///
/// ```
/// use ossa_events_core::{format::json, io::SliceWriter, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
/// let mut buf = [0u8; 128];
/// let mut w = SliceWriter::new(&mut buf);
/// json::write_jsonl(&ev, &mut w)?;
/// json::write_jsonl(&ev, &mut w)?;
/// assert_eq!(w.written().iter().filter(|&&b| b == b'\n').count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

/// The slice given to a [`SliceWriter`] is too small for the output.
///
/// ```
/// use ossa_events_core::{io::{SliceFull, SliceWriter}, embedded_io::Write};
/// let mut buf = [0u8; 4];
/// let mut w = SliceWriter::new(&mut buf);
/// // Unlike `&mut [u8]`, a slice writer never takes part of a write.
/// assert_eq!(w.write(b"hello"), Err(SliceFull));
/// assert!(w.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceFull;

impl fmt::Display for SliceFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("output buffer full")
    }
}

impl core::error::Error for SliceFull {}

impl embedded_io::Error for SliceFull {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::OutOfMemory
    }
}

impl<'a> SliceWriter<'a> {
    /// A writer that fills `buf` from its start.
    ///
    /// ```
    /// use ossa_events_core::{embedded_io::Write, io::SliceWriter};
    /// let mut buf = [0u8; 16];
    /// let mut w = SliceWriter::new(&mut buf);
    /// w.write_all(b"ok")?;
    /// assert_eq!(w.written(), b"ok");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(buf: &'a mut [u8]) -> Self {
        SliceWriter { buf, len: 0 }
    }
    /// Bytes written so far.
    ///
    /// ```
    /// # use ossa_events_core::{embedded_io::Write, io::SliceWriter};
    /// let mut buf = [0u8; 16];
    /// let mut w = SliceWriter::new(&mut buf);
    /// w.write_all(b"abc")?;
    /// assert_eq!(w.len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether nothing was written yet.
    ///
    /// ```
    /// # use ossa_events_core::io::SliceWriter;
    /// let mut buf = [0u8; 16];
    /// assert!(SliceWriter::new(&mut buf).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The bytes written so far.
    ///
    /// ```
    /// # use ossa_events_core::{embedded_io::Write, io::SliceWriter};
    /// let mut buf = [0u8; 16];
    /// let mut w = SliceWriter::new(&mut buf);
    /// w.write_all(b"[1,2]")?;
    /// assert_eq!(w.written(), b"[1,2]"); // not the 11 unused bytes
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
    /// Gives back the written part of the buffer with the buffer's lifetime.
    ///
    /// ```
    /// # use ossa_events_core::{embedded_io::Write, io::SliceWriter};
    /// fn render(buf: &mut [u8]) -> Result<&[u8], ossa_events_core::io::SliceFull> {
    ///     let mut w = SliceWriter::new(buf);
    ///     w.write_all(b"hi")?;
    ///     Ok(w.into_written()) // outlives the writer
    /// }
    /// let mut buf = [0u8; 16];
    /// assert_eq!(render(&mut buf)?, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_written(self) -> &'a mut [u8] {
        let len = self.len;
        self.buf.get_mut(..len).unwrap_or(&mut [])
    }
}

impl SliceWriter<'_> {
    /// Appends all of `data` with `copy` (same-length slices), or nothing
    /// when it does not fit.
    #[inline(always)]
    fn put(
        &mut self,
        data: &[u8],
        copy: impl FnOnce(&mut [u8], &[u8]),
    ) -> Result<usize, SliceFull> {
        let end = self.len.checked_add(data.len()).ok_or(SliceFull)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(SliceFull)?;
        copy(dst, data);
        self.len = end;
        Ok(data.len())
    }
}

impl embedded_io::ErrorType for SliceWriter<'_> {
    type Error = SliceFull;
}

/// A [`SliceWriter`] that copies short pieces with [`copy_into`]: for the
/// JSON encoder's many short writes of known small sizes (`to_slice`),
/// where a `memcpy` call per piece cost more than the copy.
pub(crate) struct ShortCopySlice<'a>(pub(crate) SliceWriter<'a>);

impl embedded_io::ErrorType for ShortCopySlice<'_> {
    type Error = SliceFull;
}

impl embedded_io::Write for ShortCopySlice<'_> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        self.0.put(data, copy_into)
    }
    #[inline]
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io::Write for SliceWriter<'_> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        self.put(data, <[u8]>::copy_from_slice)
    }
    #[inline]
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_into_copies_every_length_exactly() {
        let src: [u8; 48] = core::array::from_fn(|i| i as u8 + 1);
        for n in 0..=src.len() {
            let mut dst = [0u8; 48];
            copy_into(&mut dst[..n], &src[..n]);
            assert_eq!(dst[..n], src[..n], "length {n}");
            assert!(
                dst[n..].iter().all(|&b| b == 0),
                "length {n} wrote past its end"
            );
        }
    }

    #[test]
    fn writers_take_pieces_of_every_length() {
        let text: [u8; 300] = core::array::from_fn(|i| b'a' + (i % 26) as u8);
        for n in 0..=40 {
            let mut buf = [0u8; 1024];
            let mut w = SliceWriter::new(&mut buf);
            let mut g = Gather::new(&mut w);
            let mut want = Vec::new();
            let mut at = 0;
            while at + n <= text.len() && want.len() + n < 900 {
                write_all(&mut g, &text[at..at + n]).unwrap();
                want.extend_from_slice(&text[at..at + n]);
                at += n.max(1);
            }
            g.finish().unwrap();
            assert_eq!(w.written(), &want[..], "pieces of {n}");
        }
    }
}
