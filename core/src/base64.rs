//! Base64 (RFC 4648 §4): standard alphabet, with padding, strict decoding.
//!
//! CloudEvents' `Binary` type (spec "Type System") is encoded as Base64. The
//! decoder accepts only the canonical encoding: length a multiple of 4, the
//! standard alphabet, `=` only as one or two final padding characters and zero
//! bits after the last full byte (RFC 4648 §3.5). No whitespace or line
//! breaks. Nothing allocates; the streaming functions go through a small stack
//! buffer.
//!
//! Why not the `base64` crate: with its `STANDARD` engine behind these same
//! functions (`encode_slice` / `decode_slice` per stack chunk), the firmware
//! example's `.text` grew from 43 836 to 48 584 bytes (+4.6 KiB,
//! `arm-none-eabi-size`, thumbv7em-none-eabihf, release); the bar for a
//! crate on the device is 1 KiB. The tests check this module against the
//! crate's strict decoder instead.
//!
//! ```
//! use ossa_events_core::base64;
//!
//! let mut enc = [0u8; base64::encoded_len(14)];
//! let n = base64::encode_to_slice(b"{ \"xyz\": 123 }", &mut enc).unwrap();
//! assert_eq!(&enc[..n], b"eyAieHl6IjogMTIzIH0=");
//!
//! let mut dec = [0u8; 14];
//! assert_eq!(base64::decode_to_slice(&enc, &mut dec), Ok(14));
//! assert!(base64::decoded_eq(b"Zm9v", b"foo"));
//! assert_eq!(base64::decoded_len(b"Zh=="), Err(base64::Base64Error::TrailingBits));
//! ```

use core::fmt;
use embedded_io::Write;

/// The RFC 4648 §4 alphabet.
const ENC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Marks a byte outside the alphabet in [`DEC`].
const INVALID: u8 = 0xFF;
/// Sextet value of each byte, or [`INVALID`].
const DEC: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ENC[i] as usize] = i as u8;
        i += 1;
    }
    t
};
/// Encoded bytes per stack chunk (a multiple of 4).
const CHUNK_ENC: usize = 256;
/// Raw bytes per stack chunk (`CHUNK_ENC / 4 * 3`).
const CHUNK_RAW: usize = CHUNK_ENC / 4 * 3;

/// Why a string is not canonical padded Base64, or does not fit.
///
/// ```
/// use ossa_events_core::base64::{decoded_len, Base64Error};
/// assert_eq!(decoded_len(b"aGk="), Ok(2));
/// assert_eq!(decoded_len(b"aGk"), Err(Base64Error::Length));
/// assert_eq!(decoded_len(b"aG!="), Err(Base64Error::InvalidByte { at: 2 }));
/// assert_eq!(decoded_len(b"a=k="), Err(Base64Error::Padding));
/// assert_eq!(decoded_len(b"aGl="), Err(Base64Error::TrailingBits)); // canonical is "aGk="
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Base64Error {
    /// The length is not a multiple of 4.
    Length,
    /// A byte outside the Base64 alphabet (other than `=`).
    InvalidByte {
        /// Byte offset of the offending byte.
        at: usize,
    },
    /// `=` somewhere other than as one or two final padding characters.
    Padding,
    /// The bits after the last decoded byte are not zero (a non-canonical
    /// encoding).
    TrailingBits,
    /// The output buffer is too small for the decoded bytes.
    OutputTooSmall,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base64Error::Length => f.write_str("base64 length is not a multiple of 4"),
            Base64Error::InvalidByte { at } => write!(f, "invalid base64 byte at offset {at}"),
            Base64Error::Padding => f.write_str("misplaced base64 padding"),
            Base64Error::TrailingBits => f.write_str("non-zero trailing bits in base64"),
            Base64Error::OutputTooSmall => {
                f.write_str("output buffer too small for decoded base64")
            }
        }
    }
}

impl core::error::Error for Base64Error {}

/// Failure of [`encode_to`].
///
/// ```
/// use ossa_events_core::{base64::{encode_to, EncodeToError}, io::{SliceFull, SliceWriter}};
/// let mut buf = [0u8; 4];
/// let mut w = SliceWriter::new(&mut buf);
/// assert_eq!(encode_to(b"hello", &mut w), Err(EncodeToError::Write(SliceFull)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeToError<E> {
    /// The writer failed.
    Write(E),
    /// The writer accepted zero bytes of a non-empty buffer.
    WriteZero,
}

impl<E> fmt::Display for EncodeToError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeToError::Write(_) => f.write_str("writing base64 failed"),
            EncodeToError::WriteZero => f.write_str("writer accepted zero bytes"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for EncodeToError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            EncodeToError::Write(e) => Some(e),
            EncodeToError::WriteZero => None,
        }
    }
}

/// Failure of [`decode_to`].
///
/// ```
/// use ossa_events_core::base64::{decode_to, Base64Error, DecodeToError};
/// use ossa_events_core::io::SliceWriter;
/// let mut buf = [0u8; 16];
/// let mut w = SliceWriter::new(&mut buf);
/// let err = decode_to(b"aGk", &mut w).unwrap_err();
/// assert_eq!(err, DecodeToError::Invalid(Base64Error::Length));
/// assert!(w.is_empty()); // invalid input writes nothing
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeToError<E> {
    /// The input is not canonical padded Base64 (nothing was written).
    Invalid(Base64Error),
    /// The writer failed.
    Write(E),
    /// The writer accepted zero bytes of a non-empty buffer.
    WriteZero,
}

impl<E> fmt::Display for DecodeToError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeToError::Invalid(e) => fmt::Display::fmt(e, f),
            DecodeToError::Write(_) => f.write_str("writing decoded base64 failed"),
            DecodeToError::WriteZero => f.write_str("writer accepted zero bytes"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for DecodeToError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            DecodeToError::Invalid(_) | DecodeToError::WriteZero => None,
            DecodeToError::Write(e) => Some(e),
        }
    }
}

impl<E> From<Base64Error> for DecodeToError<E> {
    fn from(e: Base64Error) -> Self {
        DecodeToError::Invalid(e)
    }
}

impl<E> From<EncodeToError<E>> for DecodeToError<E> {
    fn from(e: EncodeToError<E>) -> Self {
        match e {
            EncodeToError::Write(e) => DecodeToError::Write(e),
            EncodeToError::WriteZero => DecodeToError::WriteZero,
        }
    }
}

/// Length of the padded Base64 encoding of `n` bytes (`4 * ceil(n / 3)`),
/// saturating at `usize::MAX`.
///
/// ```
/// use ossa_events_core::base64::encoded_len;
/// assert_eq!(encoded_len(0), 0);
/// assert_eq!(encoded_len(5), 8);
/// // `const`: size a buffer at compile time.
/// let buf = [0u8; encoded_len(32)];
/// assert_eq!(buf.len(), 44);
/// ```
pub const fn encoded_len(n: usize) -> usize {
    match n.div_ceil(3).checked_mul(4) {
        Some(len) => len,
        None => usize::MAX,
    }
}

/// Encodes `bytes` into `out` (which must hold [`encoded_len`] bytes);
/// returns the number of bytes written.
fn encode_core(bytes: &[u8], out: &mut [u8]) -> usize {
    let mut written = 0;
    let mut chunks = bytes.chunks_exact(3);
    let mut outs = out.chunks_exact_mut(4);
    for (i, o) in (&mut chunks).zip(&mut outs) {
        if let ([a, b, c], [w, x, y, z]) = (i, o) {
            let v = u32::from(*a) << 16 | u32::from(*b) << 8 | u32::from(*c);
            *w = ENC[(v >> 18) as usize & 63];
            *x = ENC[(v >> 12) as usize & 63];
            *y = ENC[(v >> 6) as usize & 63];
            *z = ENC[v as usize & 63];
            written += 4;
        }
    }
    let quad = match *chunks.remainder() {
        [a] => {
            let v = u32::from(a) << 16;
            [
                ENC[(v >> 18) as usize & 63],
                ENC[(v >> 12) as usize & 63],
                b'=',
                b'=',
            ]
        }
        [a, b] => {
            let v = u32::from(a) << 16 | u32::from(b) << 8;
            [
                ENC[(v >> 18) as usize & 63],
                ENC[(v >> 12) as usize & 63],
                ENC[(v >> 6) as usize & 63],
                b'=',
            ]
        }
        _ => return written,
    };
    if let Some(o) = outs.next() {
        o.copy_from_slice(&quad);
        written += 4;
    }
    written
}

/// Encodes `bytes` into the start of `out`; returns the number of bytes
/// written ([`encoded_len`]`(bytes.len())`), or `None` (writing nothing) if
/// `out` is too short.
///
/// ```
/// use ossa_events_core::base64::encode_to_slice;
/// let mut out = [0u8; 8];
/// let n = encode_to_slice(b"hello", &mut out).ok_or("too short")?;
/// assert_eq!(&out[..n], b"aGVsbG8=");
/// assert_eq!(encode_to_slice(b"hello", &mut [0u8; 7]), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_to_slice(bytes: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = encoded_len(bytes.len());
    let out = out.get_mut(..len)?;
    Some(encode_core(bytes, out))
}

/// Writes all of `buf`, looping on `write`; `Ok(0)` is an error.
fn write_fully<W: Write + ?Sized>(
    w: &mut W,
    mut buf: &[u8],
) -> Result<(), EncodeToError<W::Error>> {
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => return Err(EncodeToError::WriteZero),
            Ok(n) => buf = buf.get(n..).unwrap_or(&[]),
            Err(e) => return Err(EncodeToError::Write(e)),
        }
    }
    Ok(())
}

/// Encodes `bytes` in chunks through a 256-byte stack buffer, handing each
/// chunk's text to `sink`; stops, returning `false`, once `sink` does. What
/// an event holds to write its binary values (see [`crate::io::Transcode`]).
pub(crate) fn encode_runs(bytes: &[u8], sink: &mut dyn FnMut(&[u8]) -> bool) -> bool {
    let mut buf = [0u8; CHUNK_ENC];
    bytes.chunks(CHUNK_RAW).all(|chunk| {
        let n = encode_core(chunk, &mut buf);
        sink(buf.get(..n).unwrap_or(&[]))
    })
}

/// Encodes `bytes` to `w` in chunks through a 256-byte stack buffer. Never
/// uses `write_all` (which panics when a writer returns `Ok(0)`): a writer
/// that accepts nothing yields [`EncodeToError::WriteZero`]. Does not flush.
///
/// ```
/// use ossa_events_core::{base64::encode_to, io::SliceWriter};
/// let mut buf = [0u8; 64];
/// let mut w = SliceWriter::new(&mut buf);
/// encode_to(&[0xff; 30], &mut w)?;
/// assert_eq!(w.len(), 40);
/// assert!(w.written().starts_with(b"////"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_to<W: Write + ?Sized>(
    bytes: &[u8],
    w: &mut W,
) -> Result<(), EncodeToError<W::Error>> {
    let mut buf = [0u8; CHUNK_ENC];
    for chunk in bytes.chunks(CHUNK_RAW) {
        let n = encode_core(chunk, &mut buf);
        write_fully(w, buf.get(..n).unwrap_or(&[]))?;
    }
    Ok(())
}

/// The error for a bad byte `b` at offset `at`: `=` is misplaced padding,
/// anything else is outside the alphabet.
#[cold]
fn bad_byte(b: u8, at: usize) -> Base64Error {
    if b == b'=' {
        Base64Error::Padding
    } else {
        Base64Error::InvalidByte { at }
    }
}

/// The first bad byte of a quad at offset `at` known to contain one.
#[cold]
fn bad_quad(q: &[u8], at: usize) -> Base64Error {
    for (i, &b) in q.iter().enumerate() {
        if DEC[usize::from(b)] == INVALID {
            return bad_byte(b, at + i);
        }
    }
    Base64Error::InvalidByte { at }
}

/// Validates and decodes `s` (length a multiple of 4, starting at offset
/// `start` of the whole input; `last` if it ends the input so may carry
/// padding) into `out`, which must hold `s.len() / 4 * 3` bytes or, when
/// `last`, at least the exact decoded length. Returns the bytes written.
fn decode_core(s: &[u8], start: usize, last: bool, out: &mut [u8]) -> Result<usize, Base64Error> {
    let quads = s.len() / 4;
    let body_quads = if last { quads.saturating_sub(1) } else { quads };
    let (body, tail) = s.split_at(body_quads * 4);
    let mut outs = out.chunks_mut(3);
    let mut written = 0;
    for (qi, q) in body.chunks_exact(4).enumerate() {
        let ([a, b, c, d], Some([x, y, z])) = (q, outs.next()) else {
            return Err(Base64Error::OutputTooSmall);
        };
        let (a, b, c, d) = (
            DEC[usize::from(*a)],
            DEC[usize::from(*b)],
            DEC[usize::from(*c)],
            DEC[usize::from(*d)],
        );
        if (a | b | c | d) & 0xC0 != 0 {
            return Err(bad_quad(q, start + qi * 4));
        }
        let v = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        *x = (v >> 16) as u8;
        *y = (v >> 8) as u8;
        *z = v as u8;
        written += 3;
    }
    let &[a, b, c, d] = tail else {
        return Ok(written);
    };
    let at = start + body_quads * 4;
    let (ta, tb) = (DEC[usize::from(a)], DEC[usize::from(b)]);
    if ta == INVALID {
        return Err(bad_byte(a, at));
    }
    if tb == INVALID {
        return Err(bad_byte(b, at + 1));
    }
    let (tc, td) = (DEC[usize::from(c)], DEC[usize::from(d)]);
    let (v, n) = if c == b'=' {
        if d != b'=' {
            return Err(if td == INVALID {
                Base64Error::InvalidByte { at: at + 3 }
            } else {
                Base64Error::Padding
            });
        }
        if tb & 0x0F != 0 {
            return Err(Base64Error::TrailingBits);
        }
        (u32::from(ta) << 18 | u32::from(tb) << 12, 1)
    } else {
        if tc == INVALID {
            return Err(bad_byte(c, at + 2));
        }
        if d == b'=' {
            if tc & 0x03 != 0 {
                return Err(Base64Error::TrailingBits);
            }
            (
                u32::from(ta) << 18 | u32::from(tb) << 12 | u32::from(tc) << 6,
                2,
            )
        } else {
            if td == INVALID {
                return Err(bad_byte(d, at + 3));
            }
            (
                u32::from(ta) << 18 | u32::from(tb) << 12 | u32::from(tc) << 6 | u32::from(td),
                3,
            )
        }
    };
    let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
    let dst = out
        .get_mut(written..written + n)
        .ok_or(Base64Error::OutputTooSmall)?;
    dst.copy_from_slice(bytes.get(..n).unwrap_or(&[]));
    Ok(written + n)
}

/// Decodes `s` chunk by chunk through a stack buffer, handing each decoded
/// chunk to `sink` (which returns `false` to stop early, making the result
/// `Ok(None)`). Returns the total decoded length.
fn decode_chunks(
    s: &[u8],
    mut sink: impl FnMut(&[u8]) -> bool,
) -> Result<Option<usize>, Base64Error> {
    if !s.len().is_multiple_of(4) {
        return Err(Base64Error::Length);
    }
    let mut buf = [0u8; CHUNK_RAW];
    let mut total = 0;
    let n_chunks = s.len().div_ceil(CHUNK_ENC);
    for (i, chunk) in s.chunks(CHUNK_ENC).enumerate() {
        let n = decode_core(chunk, i * CHUNK_ENC, i + 1 == n_chunks, &mut buf)?;
        if !sink(buf.get(..n).unwrap_or(&[])) {
            return Ok(None);
        }
        total += n;
    }
    Ok(Some(total))
}

/// Validates `s` as canonical padded Base64 and returns its decoded length:
/// the length must be a multiple of 4, every byte in the alphabet, `=` only as
/// one or two final padding characters, and the unused trailing bits zero.
///
/// ```
/// use ossa_events_core::base64::{decoded_len, Base64Error};
/// assert_eq!(decoded_len(b"aGVsbG8="), Ok(5));
/// assert_eq!(decoded_len(b""), Ok(0));
/// assert_eq!(decoded_len(b"aGVs bG8="), Err(Base64Error::Length)); // no whitespace allowed
/// ```
pub fn decoded_len(s: &[u8]) -> Result<usize, Base64Error> {
    decode_chunks(s, |_| true).map(|n| n.unwrap_or(0))
}

/// Decodes `s` into the start of `out`, returning the number of bytes written.
/// Validation is as for [`decoded_len`]; a short `out` gives
/// [`Base64Error::OutputTooSmall`] (unless the input is invalid, which is
/// reported first). On error the contents of `out` are unspecified.
///
/// ```
/// use ossa_events_core::base64::{decode_to_slice, Base64Error};
/// let mut out = [0u8; 5];
/// assert_eq!(decode_to_slice(b"aGVsbG8=", &mut out), Ok(5));
/// assert_eq!(&out, b"hello");
/// assert_eq!(decode_to_slice(b"aGVsbG8=", &mut [0u8; 4]), Err(Base64Error::OutputTooSmall));
/// ```
pub fn decode_to_slice(s: &[u8], out: &mut [u8]) -> Result<usize, Base64Error> {
    if !s.len().is_multiple_of(4) {
        return Err(Base64Error::Length);
    }
    let pad = match s {
        [.., b'=', b'='] => 2,
        [.., b'='] => 1,
        _ => 0,
    };
    let needed = s.len() / 4 * 3 - pad;
    if out.len() < needed {
        decoded_len(s)?;
        return Err(Base64Error::OutputTooSmall);
    }
    decode_core(s, 0, true, out)
}

/// Decodes `s` to `w` in chunks through a stack buffer. The whole input is
/// validated first (as for [`decoded_len`]), so invalid input writes nothing.
/// A writer that accepts nothing yields [`DecodeToError::WriteZero`]. Does not
/// flush.
///
/// ```
/// use ossa_events_core::{base64::decode_to, io::SliceWriter};
/// let mut buf = [0u8; 16];
/// let mut w = SliceWriter::new(&mut buf);
/// decode_to(b"aGVsbG8=", &mut w)?;
/// assert_eq!(w.written(), b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_to<W: Write + ?Sized>(s: &[u8], w: &mut W) -> Result<(), DecodeToError<W::Error>> {
    decoded_len(s)?;
    let mut result = Ok(());
    decode_chunks(s, |chunk| match write_fully(w, chunk) {
        Ok(()) => true,
        Err(e) => {
            result = Err(e.into());
            false
        }
    })?;
    result
}

/// Whether `s` is canonical padded Base64 that decodes to exactly `bytes`
/// (no output buffer needed).
///
/// ```
/// use ossa_events_core::base64::decoded_eq;
/// assert!(decoded_eq(b"aGVsbG8=", b"hello"));
/// assert!(!decoded_eq(b"aGVsbG8=", b"hell"));
/// assert!(!decoded_eq(b"aGVsbG8", b"hello")); // not valid Base64
/// ```
pub fn decoded_eq(s: &[u8], bytes: &[u8]) -> bool {
    if !s.len().is_multiple_of(4) || s.len() / 4 != bytes.len().div_ceil(3) {
        return false;
    }
    let mut rest = bytes;
    match decode_chunks(s, |chunk| match rest.split_at_checked(chunk.len()) {
        Some((head, tail)) if head == chunk => {
            rest = tail;
            true
        }
        _ => false,
    }) {
        Ok(Some(_)) => rest.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use core::convert::Infallible;

    const VECTORS: [(&str, &str); 7] = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    fn enc(b: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; encoded_len(b.len())];
        assert_eq!(encode_to_slice(b, &mut out), Some(out.len()));
        out
    }

    fn dec(s: &[u8]) -> Result<Vec<u8>, Base64Error> {
        let n = decoded_len(s)?;
        let mut out = vec![0u8; n];
        assert_eq!(decode_to_slice(s, &mut out)?, n);
        Ok(out)
    }

    /// Accepts at most `max` bytes per call; `Ok(0)` after `limit` bytes.
    struct Trickle {
        out: Vec<u8>,
        max: usize,
        limit: usize,
    }
    impl embedded_io::ErrorType for Trickle {
        type Error = Infallible;
    }
    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
            let n = buf.len().min(self.max).min(self.limit - self.out.len());
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> Result<(), Infallible> {
            Ok(())
        }
    }

    /// Always fails.
    struct Broken;
    impl embedded_io::ErrorType for Broken {
        type Error = embedded_io::ErrorKind;
    }
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> Result<usize, embedded_io::ErrorKind> {
            Err(embedded_io::ErrorKind::BrokenPipe)
        }
        fn flush(&mut self) -> Result<(), embedded_io::ErrorKind> {
            Ok(())
        }
    }

    fn trickle(max: usize, limit: usize) -> Trickle {
        Trickle {
            out: Vec::new(),
            max,
            limit,
        }
    }

    #[test]
    fn rfc4648_vectors() {
        for (raw, b64) in VECTORS {
            assert_eq!(encoded_len(raw.len()), b64.len());
            assert_eq!(enc(raw.as_bytes()), b64.as_bytes());
            assert_eq!(dec(b64.as_bytes()).unwrap(), raw.as_bytes());
            assert!(decoded_eq(b64.as_bytes(), raw.as_bytes()));
        }
        assert_eq!(dec(b"eyAieHl6IjogMTIzIH0=").unwrap(), b"{ \"xyz\": 123 }");
        assert_eq!(enc(b"{ \"xyz\": 123 }"), b"eyAieHl6IjogMTIzIH0=");
        assert_eq!(encoded_len(usize::MAX), usize::MAX);
        assert_eq!(encoded_len(usize::MAX / 4 * 3), usize::MAX / 4 * 4);
    }

    #[test]
    fn rejects() {
        use Base64Error::*;
        assert_eq!(decoded_len(b"Zg"), Err(Length));
        assert_eq!(decoded_len(b"Zg="), Err(Length));
        assert_eq!(decoded_len(b"Zh=="), Err(TrailingBits));
        assert_eq!(decoded_len(b"Zm9="), Err(TrailingBits));
        assert_eq!(decoded_len(b"Z==="), Err(Padding));
        assert_eq!(decoded_len(b"===="), Err(Padding));
        assert_eq!(decoded_len(b"Zg=a"), Err(Padding));
        assert_eq!(decoded_len(b"Zg=!"), Err(InvalidByte { at: 3 }));
        assert_eq!(decoded_len(b"Zg==Zm9v"), Err(Padding));
        assert_eq!(decoded_len(b"Zm9v YmFy"), Err(Length));
        assert_eq!(decoded_len(b"Zm9v YmF"), Err(InvalidByte { at: 4 }));
        assert_eq!(decoded_len(b"Zm9v\n"), Err(Length));
        assert_eq!(decoded_len(b"Zm9vYm-y"), Err(InvalidByte { at: 6 }));
        assert_eq!(decoded_len(b"Zm9vYm\xc3y"), Err(InvalidByte { at: 6 }));
        assert_eq!(decoded_len(b"Zm_v"), Err(InvalidByte { at: 2 }));
        // Errors past the first stack chunk report absolute offsets.
        let mut long = vec![b'A'; 1024];
        long[700] = b'*';
        assert_eq!(decoded_len(&long), Err(InvalidByte { at: 700 }));
        long[700] = b'=';
        assert_eq!(decoded_len(&long), Err(Padding));
        assert!(!decoded_eq(b"Zh==", b"f"));
        assert!(!decoded_eq(b"Zg==", b"g"));
        assert!(!decoded_eq(b"Zg==", b"fo"));
        assert!(!decoded_eq(b"Zm8=", b"f"));
        assert!(!decoded_eq(b"", b"f"));
        let mut small = [0u8; 2];
        assert_eq!(decode_to_slice(b"Zm9v", &mut small), Err(OutputTooSmall));
        assert_eq!(decode_to_slice(b"Zm9=", &mut small), Err(TrailingBits));
        assert_eq!(decode_to_slice(b"Zm8=", &mut small), Ok(2));
        assert_eq!(encode_to_slice(b"foo", &mut [0u8; 3]), None);
        assert_eq!(encode_to_slice(b"", &mut []), Some(0));
        assert_eq!(
            DecodeToError::<Infallible>::from(Length).to_string(),
            Length.to_string()
        );
    }

    #[test]
    fn round_trip_all_lengths() {
        let mut x: u64 = 0xDEAD_BEEF_CAFE_F00D;
        let data: Vec<u8> = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for len in (0..=300).chain([383, 384, 385, 575, 576, 577, 1000]) {
            let raw = &data[..len];
            let b64 = enc(raw);
            assert_eq!(decoded_len(&b64), Ok(len));
            assert_eq!(dec(&b64).unwrap(), raw);
            assert!(decoded_eq(&b64, raw));
            if len > 0 {
                assert!(!decoded_eq(&b64, &raw[1..]));
                let mut other = raw.to_vec();
                other[len - 1] ^= 1;
                assert!(!decoded_eq(&b64, &other));
            }
            let mut w = trickle(usize::MAX, usize::MAX);
            encode_to(raw, &mut w).unwrap();
            assert_eq!(w.out, b64);
            let mut w = trickle(usize::MAX, usize::MAX);
            decode_to(&b64, &mut w).unwrap();
            assert_eq!(w.out, raw);
        }
    }

    #[test]
    fn writers() {
        let raw: Vec<u8> = (0..=255).collect();
        let b64 = enc(&raw);
        let mut w = trickle(1, usize::MAX);
        encode_to(&raw, &mut w).unwrap();
        assert_eq!(w.out, b64);
        let mut w = trickle(1, usize::MAX);
        decode_to(&b64, &mut w).unwrap();
        assert_eq!(w.out, raw);

        let mut w = trickle(7, 10);
        assert_eq!(encode_to(&raw, &mut w), Err(EncodeToError::WriteZero));
        assert_eq!(w.out, &b64[..10]);
        let mut w = trickle(7, 0);
        assert_eq!(encode_to(b"", &mut w), Ok(()));
        assert_eq!(decode_to(b"", &mut w), Ok(()));
        assert_eq!(decode_to(&b64, &mut w), Err(DecodeToError::WriteZero));

        let mut w = trickle(7, 0);
        assert_eq!(
            decode_to(b"Zh==", &mut w),
            Err(DecodeToError::Invalid(Base64Error::TrailingBits))
        );
        let mut long = b64.clone();
        long.truncate(340);
        long.extend_from_slice(b"!AAA");
        let mut w = trickle(usize::MAX, usize::MAX);
        assert!(matches!(
            decode_to(&long, &mut w),
            Err(DecodeToError::Invalid(_))
        ));
        assert!(w.out.is_empty(), "invalid input must write nothing");

        let e = encode_to(b"x", &mut Broken).unwrap_err();
        assert_eq!(e, EncodeToError::Write(embedded_io::ErrorKind::BrokenPipe));
        assert!(core::error::Error::source(&e).is_some());
        let e = decode_to(b"eA==", &mut Broken).unwrap_err();
        assert_eq!(e, DecodeToError::Write(embedded_io::ErrorKind::BrokenPipe));
        assert_eq!(e.to_string(), "writing decoded base64 failed");
    }

    #[test]
    fn fuzz_never_panics() {
        let alphabet = b"AZaz09+/=-_ \n\xff";
        let mut x: u64 = 0x1234_5678_9ABC_DEF1;
        let mut buf = [0u8; 16];
        let mut out = [0u8; 12];
        for round in 0..100_000usize {
            let len = round % (buf.len() + 1);
            for b in buf.iter_mut().take(len) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = alphabet[(x % alphabet.len() as u64) as usize];
            }
            let s = &buf[..len];
            match decoded_len(s) {
                Ok(n) => {
                    let m = decode_to_slice(s, &mut out).unwrap();
                    assert_eq!(m, n);
                    assert_eq!(enc(&out[..n]), s);
                    assert!(decoded_eq(s, &out[..n]));
                    let cut = n.saturating_sub(1);
                    if n > 0 {
                        assert_eq!(
                            decode_to_slice(s, &mut out[..cut]),
                            Err(Base64Error::OutputTooSmall)
                        );
                    }
                }
                Err(e) => {
                    assert_eq!(decode_to_slice(s, &mut out), Err(e));
                    assert!(!decoded_eq(s, b""));
                }
            }
        }
    }
}
