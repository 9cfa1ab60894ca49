//! A caller-provided buffer that parsers write unescaped or decoded strings into.
//!
//! Parsers borrow from their input wherever they can; only values that have to
//! be transformed (JSON strings with escapes, percent-decoded headers, …) are
//! written into a [`Scratch`]. Each piece handed out borrows the underlying
//! buffer for its whole lifetime `'a`, so pieces never overlap and stay valid
//! while later pieces are written.

use core::fmt;

/// Caller-provided buffer that parsers unescape/decode strings into; each piece
/// handed out keeps the buffer's lifetime.
///
/// ```
/// # use ossa_events_core::scratch::Scratch;
/// let mut buf = [0u8; 256];
/// let scratch = Scratch::new(&mut buf);
/// assert_eq!(scratch.remaining(), 256);
/// assert_eq!(scratch.used(), 0);
/// ```
pub struct Scratch<'a> {
    /// The part of the buffer not handed out yet.
    rest: &'a mut [u8],
    /// Bytes handed out so far.
    used: usize,
}

impl<'a> Scratch<'a> {
    /// Uses all of `buf` as scratch space.
    ///
    /// ```
    /// use ossa_events_core::{parse, Scratch};
    /// // `\u00e9` must be unescaped, so `subject` is written into the scratch buffer.
    /// let input = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"caf\u00e9"}"#;
    /// let mut buf = [0u8; 64];
    /// let mut scratch = Scratch::new(&mut buf);
    /// let ev = parse::json::parse_event(input, &mut scratch)?;
    /// assert_eq!(ev.subject(), Some("café"));
    /// # Ok::<(), ossa_events_core::ParseError>(())
    /// ```
    #[inline]
    pub fn new(buf: &'a mut [u8]) -> Self {
        Scratch { rest: buf, used: 0 }
    }

    /// Bytes still free.
    ///
    /// ```
    /// use ossa_events_core::{parse, Scratch};
    /// let input = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"say \"hi\""}"#;
    /// let mut buf = [0u8; 64];
    /// let mut scratch = Scratch::new(&mut buf);
    /// parse::json::parse_event(input, &mut scratch)?;
    /// assert_eq!(scratch.remaining(), 64 - 8); // `say "hi"` took eight bytes
    /// # Ok::<(), ossa_events_core::ParseError>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Bytes handed out so far.
    ///
    /// ```
    /// use ossa_events_core::{parse, Scratch};
    /// // Nothing escaped: every string borrows from the input, no scratch used.
    /// let input = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;
    /// let mut buf = [0u8; 64];
    /// let mut scratch = Scratch::new(&mut buf);
    /// parse::json::parse_event(input, &mut scratch)?;
    /// assert_eq!(scratch.used(), 0);
    /// # Ok::<(), ossa_events_core::ParseError>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn used(&self) -> usize {
        self.used
    }

    /// Starts a piece; bytes pushed go straight into the buffer.
    ///
    /// Dropping the piece without [`Piece::finish`] discards its bytes (the
    /// space is reused by the next piece).
    #[inline]
    pub(crate) fn piece(&mut self) -> Piece<'_, 'a> {
        Piece {
            scratch: self,
            len: 0,
        }
    }

    /// Copies `s` into the buffer.
    #[inline]
    #[allow(dead_code)] // part of the scratch API; not every caller uses it yet
    pub(crate) fn copy_str(&mut self, s: &str) -> Result<&'a str, ScratchFull> {
        let mut piece = self.piece();
        piece.push(s.as_bytes())?;
        // Cannot fail: the bytes are those of a `str`.
        piece.finish_str().map_err(|_| ScratchFull)
    }

    /// Splits the first `len` bytes off the free space and hands them out.
    #[inline]
    fn take(&mut self, len: usize) -> &'a mut [u8] {
        let rest = core::mem::take(&mut self.rest);
        // `min` keeps the split in bounds (a piece never writes past `rest`).
        let (head, tail) = rest.split_at_mut(len.min(rest.len()));
        self.rest = tail;
        self.used = self.used.saturating_add(head.len());
        head
    }
}

impl fmt::Debug for Scratch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scratch")
            .field("used", &self.used)
            .field("remaining", &self.rest.len())
            .finish()
    }
}

/// A piece of a [`Scratch`] being written; [`finish`](Piece::finish) hands it
/// out with the buffer's lifetime.
#[derive(Debug)]
pub(crate) struct Piece<'s, 'a> {
    scratch: &'s mut Scratch<'a>,
    len: usize,
}

impl<'a> Piece<'_, 'a> {
    /// Appends `bytes`; fails (leaving the piece unchanged) when they do not fit.
    #[inline]
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<(), ScratchFull> {
        let end = self.len.checked_add(bytes.len()).ok_or(ScratchFull)?;
        let dst = self
            .scratch
            .rest
            .get_mut(self.len..end)
            .ok_or(ScratchFull)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Appends one byte.
    #[inline]
    pub(crate) fn push_byte(&mut self, byte: u8) -> Result<(), ScratchFull> {
        let slot = self.scratch.rest.get_mut(self.len).ok_or(ScratchFull)?;
        *slot = byte;
        self.len += 1;
        Ok(())
    }

    /// Appends the UTF-8 encoding of `c`.
    #[inline]
    pub(crate) fn push_char(&mut self, c: char) -> Result<(), ScratchFull> {
        let mut buf = [0u8; 4];
        self.push(c.encode_utf8(&mut buf).as_bytes())
    }

    /// Bytes written to this piece so far.
    #[inline]
    #[allow(dead_code)] // part of the scratch API; not every caller uses it yet
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes written so far.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.scratch.rest.get(..self.len).unwrap_or(&[])
    }

    /// Hands out the bytes written, with the buffer's lifetime.
    #[inline]
    pub(crate) fn finish(self) -> &'a [u8] {
        self.scratch.take(self.len)
    }

    /// Hands out the bytes written as a `str`; when they are not valid UTF-8
    /// the piece is discarded and the error returned.
    #[inline]
    pub(crate) fn finish_str(self) -> Result<&'a str, core::str::Utf8Error> {
        core::str::from_utf8(self.as_bytes())?;
        core::str::from_utf8(self.finish())
    }
}

/// The [`Scratch`] buffer is too small for the strings that must be decoded into it.
///
/// ```
/// use ossa_events_core::{parse, ParseError, Scratch};
/// let input = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"caf\u00e9"}"#;
/// let mut buf = [0u8; 2]; // too small for "café"
/// let err = parse::json::parse_event(input, &mut Scratch::new(&mut buf)).unwrap_err();
/// assert_eq!(err, ParseError::ScratchFull); // parsers turn `ScratchFull` into this
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScratchFull;

impl fmt::Display for ScratchFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("scratch buffer too small")
    }
}

impl core::error::Error for ScratchFull {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pieces_do_not_overlap() {
        let mut buf = [0u8; 16];
        let mut s = Scratch::new(&mut buf);
        let a = s.copy_str("hello").unwrap();
        let mut p = s.piece();
        p.push(b"wor").unwrap();
        p.push_byte(b'l').unwrap();
        p.push_char('d').unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!(p.as_bytes(), b"world");
        let b = p.finish_str().unwrap();
        assert_eq!(s.used(), 10);
        assert_eq!(s.remaining(), 6);
        let c = s.copy_str("!!!!!!").unwrap();
        assert_eq!((a, b, c), ("hello", "world", "!!!!!!"));
        assert_eq!(s.remaining(), 0);
        assert_eq!(s.copy_str("x"), Err(ScratchFull));
        assert_eq!(s.copy_str(""), Ok(""));
    }

    #[test]
    fn dropped_piece_is_discarded() {
        let mut buf = [0u8; 4];
        let mut s = Scratch::new(&mut buf);
        {
            let mut p = s.piece();
            p.push(b"abcd").unwrap();
            assert_eq!(p.push_byte(b'e'), Err(ScratchFull));
            assert_eq!(p.push(b"e"), Err(ScratchFull));
            assert_eq!(p.len(), 4);
        }
        assert_eq!(s.remaining(), 4);
        assert_eq!(s.used(), 0);
        let x = s.copy_str("wxyz").unwrap();
        assert_eq!(x, "wxyz");
    }

    #[test]
    fn finish_str_rejects_invalid_utf8() {
        let mut buf = [0u8; 8];
        let mut s = Scratch::new(&mut buf);
        let mut p = s.piece();
        p.push(&[0xff, 0x41]).unwrap();
        assert!(p.finish_str().is_err());
        assert_eq!(s.used(), 0);
        let mut p = s.piece();
        p.push(b"ok").unwrap();
        assert_eq!(p.finish(), b"ok");
        assert_eq!(format!("{s:?}"), "Scratch { used: 2, remaining: 6 }");
        assert_eq!(ScratchFull.to_string(), "scratch buffer too small");
    }

    #[test]
    fn empty_buffer() {
        let mut s = Scratch::new(&mut []);
        assert_eq!(s.piece().finish(), b"");
        assert_eq!(s.copy_str("a"), Err(ScratchFull));
    }
}
