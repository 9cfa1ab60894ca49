//! Zero-copy JSON lexer and validator (RFC 8259) for untrusted input.
//!
//! The lexer borrows from its input: strings are handed out as [`JsonStr`]s
//! pointing between their quotes, and only strings with escapes are unescaped,
//! into a caller-provided [`Scratch`]. Everything is iterative and linear in the
//! input: nesting is tracked with a counter and a fixed bitset, never recursion.
//! No function here panics on any input.

use core::fmt;

use crate::io::{WriteError, write_all};
use crate::scratch::{Scratch, ScratchFull};

/// Deepest nesting [`Lexer::value`] accepts, whatever depth it is asked for.
pub(crate) const MAX_DEPTH: usize = 256;

/// Where and why JSON input is malformed.
///
/// ```
/// use ossa_events_core::{json::{JsonError, JsonErrorKind}, RawJson};
/// let err: JsonError = RawJson::new(r#"{"a": tru}"#).unwrap_err();
/// assert_eq!((err.offset, err.kind), (9, JsonErrorKind::InvalidLiteral));
/// assert_eq!(err.to_string(), "invalid JSON at byte 9: invalid literal");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub kind: JsonErrorKind,
}

/// What is wrong with malformed JSON input.
///
/// ```
/// use ossa_events_core::json::{validate, JsonErrorKind};
/// let kind = |s: &str| validate(s.as_bytes(), 16).unwrap_err().kind;
/// assert_eq!(kind("   "), JsonErrorKind::Empty);
/// assert_eq!(kind(r#"{"a":1"#), JsonErrorKind::UnexpectedEnd);
/// assert_eq!(kind(r#""\ud800""#), JsonErrorKind::LoneSurrogate);
/// assert_eq!(kind("[1,]"), JsonErrorKind::UnexpectedByte(b']'));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// The input holds no value at all, only whitespace.
    Empty,
    /// The input ends in the middle of a value.
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte(u8),
    /// Bytes inside a string are not valid UTF-8.
    InvalidUtf8,
    /// A raw byte below 0x20 inside a string (it must be escaped).
    ControlCharacter,
    /// A `\` escape that JSON does not define, or a `\u` escape without four hex digits.
    InvalidEscape,
    /// A `\u` escape of a UTF-16 surrogate that is not part of a high-low pair.
    LoneSurrogate,
    /// A number that does not follow the JSON grammar (`01`, `1.`, `.5`, `+1`, `1e`, …).
    InvalidNumber,
    /// A number too large in magnitude for a 64-bit float (`1e400`): valid
    /// JSON text, but RFC 8259 §6 lets a reader limit the range, and
    /// serde_json-based peers (the Rust cloudevents-sdk) refuse the whole
    /// event. A number too small (`1e-400`) reads as 0 everywhere and is kept.
    NumberOutOfRange,
    /// Something that starts like `true`, `false` or `null` but is not.
    InvalidLiteral,
    /// Arrays and objects are nested deeper than allowed.
    TooDeep,
    /// Something other than whitespace follows the value.
    TrailingCharacters,
    /// A string was expected (an object member name, or a string value).
    ExpectedString,
    /// A `:` was expected after an object member name.
    ExpectedColon,
    /// A `,` or the end of the array or object was expected.
    ExpectedCommaOrEnd,
    /// An object (`{`) was expected.
    ExpectedObject,
    /// An array (`[`) was expected.
    ExpectedArray,
}

impl fmt::Display for JsonErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            JsonErrorKind::Empty => f.write_str("no value, only whitespace"),
            JsonErrorKind::UnexpectedEnd => f.write_str("unexpected end of input"),
            JsonErrorKind::UnexpectedByte(b) if b.is_ascii_graphic() || b == b' ' => {
                write!(f, "unexpected byte '{}'", b as char)
            }
            JsonErrorKind::UnexpectedByte(b) => write!(f, "unexpected byte 0x{b:02x}"),
            JsonErrorKind::InvalidUtf8 => f.write_str("invalid UTF-8 in string"),
            JsonErrorKind::ControlCharacter => f.write_str("unescaped control character in string"),
            JsonErrorKind::InvalidEscape => f.write_str("invalid escape in string"),
            JsonErrorKind::LoneSurrogate => f.write_str("lone UTF-16 surrogate in \\u escape"),
            JsonErrorKind::InvalidNumber => f.write_str("invalid number"),
            JsonErrorKind::NumberOutOfRange => f.write_str("number out of range of a 64-bit float"),
            JsonErrorKind::InvalidLiteral => f.write_str("invalid literal"),
            JsonErrorKind::TooDeep => f.write_str("nested too deeply"),
            JsonErrorKind::TrailingCharacters => f.write_str("trailing characters after value"),
            JsonErrorKind::ExpectedString => f.write_str("expected string"),
            JsonErrorKind::ExpectedColon => f.write_str("expected ':'"),
            JsonErrorKind::ExpectedCommaOrEnd => f.write_str("expected ',' or end of array/object"),
            JsonErrorKind::ExpectedObject => f.write_str("expected object"),
            JsonErrorKind::ExpectedArray => f.write_str("expected array"),
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.kind)
    }
}

impl core::error::Error for JsonError {}

#[inline]
const fn err<T>(offset: usize, kind: JsonErrorKind) -> Result<T, JsonError> {
    Err(JsonError { offset, kind })
}

/// Whether `b` is JSON whitespace (SP, HT, LF, CR).
#[inline]
pub(crate) const fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Value of an ASCII hex digit, or `None`.
#[inline]
const fn hex_val(b: u8) -> Option<u16> {
    match b {
        b'0'..=b'9' => Some((b - b'0') as u16),
        b'a'..=b'f' => Some((b - b'a' + 10) as u16),
        b'A'..=b'F' => Some((b - b'A' + 10) as u16),
        _ => None,
    }
}

/// Index of the first byte of `bytes` at or after `from` that `stop`
/// accepts, or `bytes.len()`. Eight bytes at a time: `flags` sets the high
/// bit of (at least) every stopping byte of a word and of none below the
/// first one, so the lowest flagged byte is the first stopping byte; the
/// tail shorter than a word goes through `stop`.
#[inline(always)]
fn scan_words(
    bytes: &[u8],
    from: usize,
    flags: impl Fn(u64) -> u64,
    stop: impl Fn(u8) -> bool,
) -> usize {
    const HI: u64 = u64::from_le_bytes([0x80; 8]);
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let f = flags(u64::from_le_bytes(word)) & HI;
        if f != 0 {
            return i + (f.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let tail = bytes.get(i..).unwrap_or(&[]);
    match tail.iter().position(|&b| stop(b)) {
        Some(n) => i + n,
        None => bytes.len().max(i),
    }
}

/// The high bit of each byte of `w` that is zero, and maybe of bytes above
/// the lowest such byte (the classic zero-byte test: false positives only
/// above a true one).
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(u64::from_le_bytes([0x01; 8])) & !w
}

/// The high bit of each byte of `w` below `n` (for `n` <= 0x80), and maybe
/// of bytes above the lowest such byte.
#[inline(always)]
fn bytes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(u64::from_le_bytes([n; 8])) & !w
}

/// Index of the first byte of `bytes` at or after `from` that a JSON string
/// cannot hold as is (`"`, `\` or a control byte), or `bytes.len()`. The
/// byte-at-a-time tail reads the writer's escape table, which flags exactly
/// those bytes: one table in the image instead of two.
#[inline(always)]
fn scan_plain(bytes: &[u8], from: usize) -> usize {
    const QUOTES: u64 = u64::from_le_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_le_bytes([b'\\'; 8]);
    #[allow(unused_mut)]
    let mut from = from;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    match crate::simd::first_flagged(bytes, from, crate::simd::json_special) {
        Ok(at) => return at,
        Err(at) => from = at,
    }
    scan_words(
        bytes,
        from,
        |w| zero_bytes(w ^ QUOTES) | zero_bytes(w ^ BACKSLASHES) | bytes_below(w, 0x20),
        |b| super::escape::escape(b) != 0,
    )
}

/// A JSON lexer over untrusted input.
#[derive(Debug, Clone)]
pub(crate) struct Lexer<'a> {
    input: &'a [u8],
    /// `input` as text when all of it is valid UTF-8 (then strings are sliced
    /// from it without validating each one again).
    text: Option<&'a str>,
    pos: usize,
    /// Whitespace outside strings was skipped (the input is not compact).
    ws_seen: bool,
    /// No byte of `input` is 0x7f or above (known only when made by
    /// [`for_events`](Self::for_events); false otherwise). A string without
    /// escapes then is printable ASCII (raw bytes below 0x20 are a JSON
    /// error): a valid CloudEvents `String` without checking it again.
    printable: bool,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `input`.
    ///
    /// Validates `input` as UTF-8 once, up front (linear, fast for ASCII); when
    /// that fails, each string is validated on its own so the first invalid
    /// byte inside a string is reported where it is.
    #[inline]
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Lexer {
            input,
            text: core::str::from_utf8(input).ok(),
            pos: 0,
            ws_seen: false,
            printable: false,
        }
    }

    /// [`new`](Self::new) for the event parsers, which also learn whether
    /// the input has no byte at or above 0x7f ([`printable`](Self::printable)):
    /// one more pass over it, which the other users of the lexer (the
    /// `RawJson` checks a device runs) do not pay.
    #[inline]
    pub(crate) fn for_events(input: &'a [u8]) -> Self {
        Lexer {
            printable: crate::swar::all_below_del(input),
            ..Self::new(input)
        }
    }

    /// Whether the input has no byte at or above 0x7f (see the field).
    #[inline]
    pub(crate) fn printable(&self) -> bool {
        self.printable
    }

    /// Offset of the next byte to read.
    #[inline]
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// Skips whitespace and returns the next byte, if any.
    #[inline(always)]
    fn skip_ws(&mut self) -> Option<u8> {
        // Compact input: the next byte is the token. Every byte above 0x20
        // is not whitespace; the loop handles the rest.
        match self.input.get(self.pos) {
            Some(&b) if b > b' ' => Some(b),
            _ => self.skip_ws_loop(),
        }
    }

    /// [`skip_ws`](Self::skip_ws) past whitespace (or at the end, or at a
    /// control byte, which is returned for the caller to reject).
    #[inline]
    fn skip_ws_loop(&mut self) -> Option<u8> {
        while let Some(&b) = self.input.get(self.pos) {
            if !is_ws(b) {
                return Some(b);
            }
            self.pos += 1;
            self.ws_seen = true;
        }
        None
    }

    /// Whether any whitespace outside strings was skipped so far.
    pub(crate) fn ws_seen(&self) -> bool {
        self.ws_seen
    }

    /// The error for input ending where a value should start at `self.pos`:
    /// `Empty` when the whole input is whitespace.
    #[cold]
    fn end_error<T>(&self, value_start: usize) -> Result<T, JsonError> {
        let only_ws = self
            .input
            .get(..value_start)
            .is_some_and(|b| b.iter().all(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')));
        if only_ws {
            err(self.pos, JsonErrorKind::Empty)
        } else {
            err(self.pos, JsonErrorKind::UnexpectedEnd)
        }
    }

    /// Skips whitespace and returns the next byte without consuming it.
    #[inline]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_ws()
    }

    /// Skips whitespace and consumes `b`, which must come next.
    #[inline(always)]
    pub(crate) fn eat(&mut self, b: u8) -> Result<(), JsonError> {
        match self.skip_ws() {
            Some(c) if c == b => {
                self.pos += 1;
                Ok(())
            }
            None => err(self.pos, JsonErrorKind::UnexpectedEnd),
            Some(c) => {
                let kind = match b {
                    b':' => JsonErrorKind::ExpectedColon,
                    b'"' => JsonErrorKind::ExpectedString,
                    b'{' => JsonErrorKind::ExpectedObject,
                    b'[' => JsonErrorKind::ExpectedArray,
                    _ => JsonErrorKind::UnexpectedByte(c),
                };
                err(self.pos, kind)
            }
        }
    }

    /// Skips whitespace and consumes `b` if it comes next.
    #[inline]
    #[allow(dead_code)] // part of the lexer API; not every caller uses it yet
    pub(crate) fn try_eat(&mut self, b: u8) -> bool {
        if self.skip_ws() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skips whitespace and parses a string, fully validated.
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Result<JsonStr<'a>, JsonError> {
        match self.skip_ws() {
            Some(b'"') => self.string_at_quote(),
            Some(_) => err(self.pos, JsonErrorKind::ExpectedString),
            None => err(self.pos, JsonErrorKind::UnexpectedEnd),
        }
    }

    /// Scans the string whose opening quote is at `self.pos` (consuming
    /// nothing): returns the offset of its closing quote and whether it has
    /// escapes. Checks everything but UTF-8.
    #[inline(always)]
    fn scan_string(&self) -> Result<(usize, bool), JsonError> {
        let input = self.input;
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            i = scan_plain(input, i);
            let e = match input.get(i) {
                // The byte itself, not its escape-table entry: the table load
                // waited on the byte load, which waited on the scan (the
                // longest chain per string, ~11 % of `Lexer::value`'s cycles).
                Some(&b) => match b {
                    b'"' => return Ok((i, escaped)),
                    b'\\' => {
                        escaped = true;
                        match check_escape(input, i) {
                            Ok(next) => {
                                i = next;
                                continue;
                            }
                            Err(e) => e,
                        }
                    }
                    _ => JsonError {
                        offset: i,
                        kind: JsonErrorKind::ControlCharacter,
                    },
                },
                None => JsonError {
                    offset: i,
                    kind: JsonErrorKind::UnexpectedEnd,
                },
            };
            return Err(first_error(input, start, e));
        }
    }

    /// The text of `input[start..end]`, a string's contents.
    #[inline(always)]
    fn str_between(&self, start: usize, end: usize) -> Result<&'a str, JsonError> {
        // Quotes are ASCII, so `start..end` is on char boundaries of `text`.
        match self.text.and_then(|t| t.get(start..end)) {
            Some(s) => Ok(s),
            None => match core::str::from_utf8(self.input.get(start..end).unwrap_or(&[])) {
                Ok(s) => Ok(s),
                Err(e) => err(start + e.valid_up_to(), JsonErrorKind::InvalidUtf8),
            },
        }
    }

    /// Parses the string whose opening quote is at `self.pos`.
    #[inline(always)]
    fn string_at_quote(&mut self) -> Result<JsonStr<'a>, JsonError> {
        let open = self.pos;
        let (end, escaped) = self.scan_string()?;
        let raw = self.str_between(open + 1, end)?;
        self.pos = end + 1;
        Ok(JsonStr {
            raw,
            escaped: u8::from(escaped),
            offset: open,
        })
    }

    /// Validates and consumes the string whose opening quote is at `self.pos`.
    #[inline(always)]
    fn skip_string_at_quote(&mut self) -> Result<(), JsonError> {
        let (end, _) = self.scan_string()?;
        if self.text.is_none() {
            self.str_between(self.pos + 1, end)?;
        }
        self.pos = end + 1;
        Ok(())
    }

    /// Parses the number starting at `self.pos`.
    #[inline]
    fn number(&mut self) -> Result<&'a str, JsonError> {
        let input = self.input;
        let start = self.pos;
        let mut i = start;
        let digit = |i: usize| matches!(input.get(i), Some(b'0'..=b'9'));
        let skip_digits = |mut i: usize| {
            while digit(i) {
                i += 1;
            }
            i
        };
        if input.get(i) == Some(&b'-') {
            i += 1;
        }
        match input.get(i) {
            Some(b'0') => {
                i += 1;
                if digit(i) {
                    return err(i, JsonErrorKind::InvalidNumber);
                }
            }
            Some(b'1'..=b'9') => i = skip_digits(i + 1),
            Some(_) => return err(i, JsonErrorKind::InvalidNumber),
            None => return err(i, JsonErrorKind::UnexpectedEnd),
        }
        // Only a number with an exponent or 309 integer digits can reach
        // f64's overflow threshold (about 1.8e308): the others skip the check.
        let mut may_overflow = i - start >= 309;
        if input.get(i) == Some(&b'.') {
            i += 1;
            if !digit(i) {
                return self.number_error(i);
            }
            i = skip_digits(i + 1);
        }
        if matches!(input.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(input.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digit(i) {
                return self.number_error(i);
            }
            i = skip_digits(i + 1);
            may_overflow = true;
        }
        if may_overflow && beyond_f64(input.get(start..i).unwrap_or(&[])) {
            return err(start, JsonErrorKind::NumberOutOfRange);
        }
        // The bytes are ASCII: sliced from the input checked as UTF-8 when
        // there is one (checking them again was a call per number).
        let text = match self.text.and_then(|t| t.get(start..i)) {
            Some(s) => s,
            None => match core::str::from_utf8(input.get(start..i).unwrap_or(&[])) {
                Ok(s) => s,
                // Unreachable: the bytes are ASCII.
                Err(_) => return err(start, JsonErrorKind::InvalidNumber),
            },
        };
        self.pos = i;
        Ok(text)
    }

    #[cold]
    fn number_error<T>(&self, i: usize) -> Result<T, JsonError> {
        if i >= self.input.len() {
            err(i, JsonErrorKind::UnexpectedEnd)
        } else {
            err(i, JsonErrorKind::InvalidNumber)
        }
    }

    /// Consumes `lit` (`true`, `false` or `null`) at `self.pos`.
    #[inline]
    fn literal(&mut self, lit: &'static [u8]) -> Result<(), JsonError> {
        let end = self.pos + lit.len();
        if self.input.get(self.pos..end) == Some(lit) {
            self.pos = end;
            return Ok(());
        }
        self.literal_error(lit)
    }

    #[cold]
    fn literal_error(&self, lit: &'static [u8]) -> Result<(), JsonError> {
        for (k, &want) in lit.iter().enumerate() {
            match self.input.get(self.pos + k) {
                None => return err(self.pos + k, JsonErrorKind::UnexpectedEnd),
                Some(&b) if b != want => return err(self.pos + k, JsonErrorKind::InvalidLiteral),
                Some(_) => {}
            }
        }
        err(self.pos, JsonErrorKind::InvalidLiteral)
    }

    /// Parses a scalar starting at `self.pos` whose first byte is `b`;
    /// containers are returned without being consumed.
    #[inline]
    fn scalar_at(&mut self, b: u8) -> Result<Scalar<'a>, JsonError> {
        match b {
            b'"' => self.string_at_quote().map(Scalar::Str),
            b'-' | b'0'..=b'9' => self.number().map(Scalar::Number),
            b't' => self.literal(b"true").map(|()| Scalar::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Scalar::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Scalar::Null),
            b'{' | b'[' => Ok(Scalar::Container),
            b'+' | b'.' => err(self.pos, JsonErrorKind::InvalidNumber),
            _ => err(self.pos, JsonErrorKind::UnexpectedByte(b)),
        }
    }

    /// Skips whitespace and parses a string, number, `true`, `false` or `null`;
    /// a `{` or `[` returns [`Scalar::Container`] without consuming it.
    #[inline]
    pub(crate) fn scalar(&mut self) -> Result<Scalar<'a>, JsonError> {
        let before = self.pos;
        match self.skip_ws() {
            Some(b) => self.scalar_at(b),
            None => self.end_error(before),
        }
    }

    /// [`value_str`](Self::value_str), also telling whether the value is
    /// compact (no whitespace outside its strings).
    #[inline]
    pub(crate) fn value_str_compact(
        &mut self,
        max_depth: usize,
    ) -> Result<(&'a str, bool), JsonError> {
        self.skip_ws();
        let ws_before = core::mem::replace(&mut self.ws_seen, false);
        let r = self.value_str(max_depth);
        let compact = !self.ws_seen;
        self.ws_seen |= ws_before;
        r.map(|s| (s, compact))
    }

    /// As [`value`](Self::value), as text: borrowed from the input checked
    /// once as UTF-8 when the lexer was made, so the value is not checked
    /// again (a 300-byte `data` member cost ~300 instructions more).
    pub(crate) fn value_str(&mut self, max_depth: usize) -> Result<&'a str, JsonError> {
        self.skip_ws();
        let start = self.pos;
        let raw = self.value(max_depth)?;
        match self.text.and_then(|t| t.get(start..start + raw.len())) {
            Some(s) => Ok(s),
            None => core::str::from_utf8(raw).map_err(|e| JsonError {
                offset: start + e.valid_up_to(),
                kind: JsonErrorKind::InvalidUtf8,
            }),
        }
    }

    /// Skips whitespace, then validates one complete JSON value of any kind and
    /// returns its exact bytes (without surrounding whitespace).
    ///
    /// Arrays and objects may nest at most `max_depth` deep (capped at
    /// [`MAX_DEPTH`]); the opening bracket that goes deeper is reported as
    /// [`JsonErrorKind::TooDeep`]. Iterative: no recursion, whatever the input.
    pub(crate) fn value(&mut self, max_depth: usize) -> Result<&'a [u8], JsonError> {
        let max_depth = if max_depth > MAX_DEPTH {
            MAX_DEPTH
        } else {
            max_depth
        };
        let before = self.pos;
        let start = match self.skip_ws() {
            Some(_) => self.pos,
            None => return self.end_error(before),
        };
        // Bit `d` set: the container at depth `d` (0-based) is an object.
        let mut objects = [0u64; MAX_DEPTH / 64];
        let mut depth = 0usize;
        'value: loop {
            // A value starts here (after skipping whitespace).
            let b = match self.skip_ws() {
                Some(b) => b,
                None => return err(self.pos, JsonErrorKind::UnexpectedEnd),
            };
            match b {
                b'{' | b'[' => {
                    if depth >= max_depth {
                        return err(self.pos, JsonErrorKind::TooDeep);
                    }
                    let is_object = b == b'{';
                    let Some(word) = objects.get_mut(depth / 64) else {
                        return err(self.pos, JsonErrorKind::TooDeep);
                    };
                    let bit = 1u64 << (depth % 64);
                    if is_object {
                        *word |= bit;
                    } else {
                        *word &= !bit;
                    }
                    depth += 1;
                    self.pos += 1;
                    let close = if is_object { b'}' } else { b']' };
                    match self.skip_ws() {
                        Some(c) if c == close => {
                            self.pos += 1;
                            depth -= 1;
                        }
                        Some(_) if is_object => {
                            self.skip_member_name()?;
                            continue 'value;
                        }
                        Some(_) => continue 'value,
                        None => return err(self.pos, JsonErrorKind::UnexpectedEnd),
                    }
                }
                b'"' => self.skip_string_at_quote()?,
                _ => {
                    self.scalar_at(b)?;
                }
            }
            // A value just ended: close containers until one continues.
            loop {
                if depth == 0 {
                    return Ok(self.input.get(start..self.pos).unwrap_or(&[]));
                }
                let d = depth - 1;
                let is_object = objects
                    .get(d / 64)
                    .is_some_and(|w| w & (1u64 << (d % 64)) != 0);
                match self.skip_ws() {
                    Some(b',') => {
                        self.pos += 1;
                        if is_object {
                            self.skip_member_name()?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if is_object => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    Some(b']') if !is_object => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    Some(_) => return err(self.pos, JsonErrorKind::ExpectedCommaOrEnd),
                    None => return err(self.pos, JsonErrorKind::UnexpectedEnd),
                }
            }
        }
    }

    /// Parses an object member name and the `:` after it.
    #[inline]
    fn member_name(&mut self) -> Result<JsonStr<'a>, JsonError> {
        let name = self.string()?;
        self.eat(b':')?;
        Ok(name)
    }

    /// Validates an object member name and the `:` after it.
    #[inline(always)]
    fn skip_member_name(&mut self) -> Result<(), JsonError> {
        match self.skip_ws() {
            Some(b'"') => self.skip_string_at_quote()?,
            Some(_) => return err(self.pos, JsonErrorKind::ExpectedString),
            None => return err(self.pos, JsonErrorKind::UnexpectedEnd),
        }
        self.eat(b':')
    }

    /// Checks that only whitespace remains.
    #[inline]
    pub(crate) fn finish(&mut self) -> Result<(), JsonError> {
        match self.skip_ws() {
            None => Ok(()),
            Some(_) => err(self.pos, JsonErrorKind::TrailingCharacters),
        }
    }
}

/// The digits of the least magnitude that rounds to infinity as an `f64`:
/// 2^1024 - 2^970, halfway between `f64::MAX` and 2^1024 (a tie rounds to
/// the even 2^1024). 309 digits: the comparison is exact.
const F64_OVERFLOW: &[u8; 309] =
    b"1797693134862315807937289714053034150799341327100378269361737789804449\
      6829276475094664901797758720709633028641669288791094655554785194040263\
      0657488671505820681908902000708383676273854845817711531764475730270069\
      8555713669596228429148198608349364752927190741684443655107043427115596\
      99508093042880177904174497792";

/// Whether the number `num` (checked against the JSON grammar) is too large
/// in magnitude for an `f64`: it would round to infinity, which serde_json
/// refuses ("number out of range"). Only numbers with an exponent or a long
/// integer part get here.
#[cold]
#[inline(never)]
fn beyond_f64(num: &[u8]) -> bool {
    let num = num.strip_prefix(b"-").unwrap_or(num);
    let (mantissa, exp) = match num.iter().position(|&b| b == b'e' || b == b'E') {
        Some(p) => (num.get(..p).unwrap_or(&[]), num.get(p + 1..).unwrap_or(&[])),
        None => (num, &[][..]),
    };
    let (negative, exp) = match exp.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, exp),
    };
    // Saturating: any exponent past 10^12 is out of range (or 0) whatever
    // the mantissa, which is shorter than the input.
    let mut e: i64 = 0;
    for &d in exp {
        e = (e * 10 + i64::from(d - b'0')).min(1_000_000_000_000);
    }
    if negative {
        e = -e;
    }
    let int_len = mantissa
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(mantissa.len());
    let mut digits = mantissa.iter().filter(|b| b.is_ascii_digit()).copied();
    // The first significant digit, and the power of ten it stands for.
    let Some((first, lead)) = digits.by_ref().enumerate().find(|&(_, d)| d != b'0') else {
        return false; // zero
    };
    match (int_len as i64 - 1 - first as i64 + e).cmp(&308) {
        core::cmp::Ordering::Less => false,
        core::cmp::Ordering::Greater => true,
        // As many digits as the threshold's: compare them in turn, the
        // input's missing ones being zeros; equal is a tie, which rounds up.
        core::cmp::Ordering::Equal => {
            let mut ours = core::iter::once(lead).chain(digits);
            for &t in F64_OVERFLOW {
                let d = ours.next().unwrap_or(b'0');
                if d != t {
                    return d > t;
                }
            }
            true
        }
    }
}

/// Validates the escape whose `\` is at `i`; returns the offset after it.
#[inline]
fn check_escape(input: &[u8], i: usize) -> Result<usize, JsonError> {
    match input.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        Some(b'u') => {
            let unit = hex4(input, i + 2)?;
            match unit {
                0xD800..=0xDBFF => {
                    match (input.get(i + 6), input.get(i + 7)) {
                        (Some(b'\\'), Some(b'u')) => {}
                        (None, _) | (Some(b'\\'), None) => {
                            return err(input.len(), JsonErrorKind::UnexpectedEnd);
                        }
                        _ => return err(i, JsonErrorKind::LoneSurrogate),
                    }
                    match hex4(input, i + 8)? {
                        0xDC00..=0xDFFF => Ok(i + 12),
                        _ => err(i, JsonErrorKind::LoneSurrogate),
                    }
                }
                0xDC00..=0xDFFF => err(i, JsonErrorKind::LoneSurrogate),
                _ => Ok(i + 6),
            }
        }
        Some(_) => err(i, JsonErrorKind::InvalidEscape),
        None => err(i + 1, JsonErrorKind::UnexpectedEnd),
    }
}

/// Reads the four hex digits at `at`.
#[inline]
fn hex4(input: &[u8], at: usize) -> Result<u16, JsonError> {
    let mut v = 0u16;
    for k in 0..4 {
        match input.get(at + k) {
            Some(&b) => match hex_val(b) {
                Some(d) => v = (v << 4) | d,
                None => return err(at + k, JsonErrorKind::InvalidEscape),
            },
            None => return err(at + k, JsonErrorKind::UnexpectedEnd),
        }
    }
    Ok(v)
}

/// Reports invalid UTF-8 in `input[start..e.offset]` before the error `e`
/// found later in the same string, so the first problem is the one reported.
#[cold]
fn first_error(input: &[u8], start: usize, e: JsonError) -> JsonError {
    let before = input.get(start..e.offset).unwrap_or(&[]);
    match core::str::from_utf8(before) {
        Ok(_) => e,
        Err(u) => JsonError {
            offset: start + u.valid_up_to(),
            kind: JsonErrorKind::InvalidUtf8,
        },
    }
}

/// Decodes the (already validated) escape whose `\` is at `i` in `raw`;
/// returns the character and the offset after the escape. Never fails: should
/// the escape be malformed after all, it decodes to U+FFFD and skips the `\`.
#[inline]
fn decode_escape(raw: &[u8], i: usize) -> (char, usize) {
    let simple = |c: char| (c, i + 2);
    match raw.get(i + 1) {
        Some(b'"') => simple('"'),
        Some(b'\\') => simple('\\'),
        Some(b'/') => simple('/'),
        Some(b'b') => simple('\u{8}'),
        Some(b'f') => simple('\u{c}'),
        Some(b'n') => simple('\n'),
        Some(b'r') => simple('\r'),
        Some(b't') => simple('\t'),
        Some(b'u') => {
            let Ok(unit) = hex4(raw, i + 2) else {
                return (char::REPLACEMENT_CHARACTER, i + 1);
            };
            if (0xD800..=0xDBFF).contains(&unit)
                && raw.get(i + 6..i + 8) == Some(b"\\u")
                && let Ok(low @ 0xDC00..=0xDFFF) = hex4(raw, i + 8)
            {
                let c = 0x10000 + (((unit as u32) - 0xD800) << 10) + ((low as u32) - 0xDC00);
                return (
                    char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER),
                    i + 12,
                );
            }
            (
                char::from_u32(unit as u32).unwrap_or(char::REPLACEMENT_CHARACTER),
                i + 6,
            )
        }
        _ => (char::REPLACEMENT_CHARACTER, i + 1),
    }
}

/// Offset of the next `\` in `raw` at or after `from`, or `raw.len()`.
#[inline]
fn next_backslash(raw: &[u8], from: usize) -> usize {
    let rest = raw.get(from..).unwrap_or(&[]);
    match rest.iter().position(|&b| b == b'\\') {
        Some(n) => from + n,
        None => raw.len(),
    }
}

/// What [`Lexer::scalar`] found.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scalar<'a> {
    /// A string.
    Str(JsonStr<'a>),
    /// A number, exactly as written (valid JSON number syntax).
    Number(&'a str),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A `{` or `[` (not consumed).
    Container,
}

/// A validated JSON string, borrowed from the input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JsonStr<'a> {
    /// Between the quotes, escapes not decoded; valid UTF-8.
    raw: &'a str,
    /// Whether `raw` contains a `\`: 0 or 1. A `u8`, not a `bool`, so that
    /// results holding a `JsonStr` get a tag word of their own instead of
    /// packing their tag into this byte and their error into the padding
    /// after it: moving that packed form between the lexer's layers wrote
    /// the padding as two overlapping 4-byte stores and read it back as one
    /// 4-byte load, a failed store-to-load forward on every object member
    /// (~40 % of `parse_object`'s own cycles in `perf annotate`).
    escaped: u8,
    /// Offset of the opening quote.
    #[allow(dead_code)] // part of the lexer API; not every caller uses it yet
    offset: usize,
}

impl<'a> JsonStr<'a> {
    /// The text between the quotes, escapes not decoded.
    #[inline]
    #[allow(dead_code)] // part of the lexer API; not every caller uses it yet
    pub(crate) fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the string contains escapes (so [`raw`](Self::raw) is not its value).
    #[inline]
    #[allow(dead_code)] // part of the lexer API; not every caller uses it yet
    pub(crate) fn has_escapes(&self) -> bool {
        self.escaped != 0
    }

    /// Offset of the opening quote in the input.
    #[inline]
    #[allow(dead_code)] // part of the lexer API; not every caller uses it yet
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// The string's value: [`raw`](Self::raw) itself when it has no escapes
    /// (no copy), else unescaped into `scratch`.
    #[inline(always)]
    pub(crate) fn unescape_into(&self, scratch: &mut Scratch<'a>) -> Result<&'a str, ScratchFull> {
        if self.escaped == 0 {
            return Ok(self.raw);
        }
        self.unescape_escaped(scratch)
    }

    /// [`unescape_into`](Self::unescape_into) of a string with escapes: out
    /// of line, so the common case (no escapes) is a test, not a call.
    #[inline(never)]
    fn unescape_escaped(&self, scratch: &mut Scratch<'a>) -> Result<&'a str, ScratchFull> {
        let raw = self.raw.as_bytes();
        let mut piece = scratch.piece();
        let mut i = 0;
        loop {
            let bs = next_backslash(raw, i);
            piece.push(raw.get(i..bs).unwrap_or(&[]))?;
            if bs >= raw.len() {
                break;
            }
            let (c, next) = decode_escape(raw, bs);
            piece.push_char(c)?;
            i = next;
        }
        // Cannot fail: runs between escapes of a `str` and whole chars.
        piece.finish_str().map_err(|_| ScratchFull)
    }

    /// Whether the string's (unescaped) value equals `s`, without a buffer.
    pub(crate) fn eq_str(&self, s: &str) -> bool {
        if self.escaped == 0 {
            return self.raw == s;
        }
        let raw = self.raw.as_bytes();
        let s = s.as_bytes();
        // The unescaped value is never longer than the raw text.
        if s.len() > raw.len() {
            return false;
        }
        let (mut i, mut j) = (0, 0);
        loop {
            let bs = next_backslash(raw, i);
            let run = raw.get(i..bs).unwrap_or(&[]);
            let end = j + run.len();
            if s.get(j..end) != Some(run) {
                return false;
            }
            j = end;
            if bs >= raw.len() {
                return j == s.len();
            }
            let (c, next) = decode_escape(raw, bs);
            let mut buf = [0u8; 4];
            let enc = c.encode_utf8(&mut buf).as_bytes();
            let end = j + enc.len();
            if s.get(j..end) != Some(enc) {
                return false;
            }
            j = end;
            i = next;
        }
    }
}

/// Whether `json` is one JSON string (whitespace around it allowed) whose
/// value is `s`: how text data and the JSON string written for it compare.
pub(crate) fn is_json_string_of(json: &str, s: &str) -> bool {
    let mut lex = Lexer::new(json.as_bytes());
    lex.string()
        .is_ok_and(|j| lex.finish().is_ok() && j.eq_str(s))
}

/// Object iteration, after `lex.eat(b'{')`: returns the next member's name
/// (having consumed the `:` after it), or `None` at the closing `}`.
/// `first` must start `true`; commas are handled, a trailing comma is rejected.
#[inline]
pub(crate) fn next_member<'a>(
    lex: &mut Lexer<'a>,
    first: &mut bool,
) -> Result<Option<JsonStr<'a>>, JsonError> {
    match lex.skip_ws() {
        Some(b'}') => {
            *first = false;
            lex.pos += 1;
            return Ok(None);
        }
        Some(b',') if !*first => lex.pos += 1,
        Some(_) if *first => *first = false,
        Some(_) => return err(lex.pos, JsonErrorKind::ExpectedCommaOrEnd),
        None => return err(lex.pos, JsonErrorKind::UnexpectedEnd),
    }
    lex.member_name().map(Some)
}

/// Array iteration, after `lex.eat(b'[')`: `true` when an element follows (the
/// comma before it consumed), `false` at the closing `]` (consumed).
/// `first` must start `true`.
#[inline]
pub(crate) fn next_element(lex: &mut Lexer<'_>, first: &mut bool) -> Result<bool, JsonError> {
    match lex.skip_ws() {
        Some(b']') => {
            *first = false;
            lex.pos += 1;
            Ok(false)
        }
        Some(b',') if !*first => {
            lex.pos += 1;
            Ok(true)
        }
        Some(_) if *first => {
            *first = false;
            Ok(true)
        }
        Some(_) => err(lex.pos, JsonErrorKind::ExpectedCommaOrEnd),
        None => err(lex.pos, JsonErrorKind::UnexpectedEnd),
    }
}

/// The value of a JSON number that is an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntegerValue {
    /// It fits an `i64`.
    Int(i64),
    /// It does not fit an `i64`.
    Overflow,
}

/// Integer check for CloudEvents Integer: `-?(0|[1-9][0-9]*)` only (no
/// fraction or exponent); `None` when `number` is not that shape.
pub(crate) fn parse_integer(number: &str) -> Option<IntegerValue> {
    let bytes = number.as_bytes();
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    match digits {
        [b'0'] => return Some(IntegerValue::Int(0)),
        [b'1'..=b'9', rest @ ..] if rest.iter().all(u8::is_ascii_digit) => {}
        _ => return None,
    }
    // Accumulate negatively so that i64::MIN fits.
    let mut v: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        v = match v.checked_mul(10).and_then(|v| v.checked_sub(d)) {
            Some(v) => v,
            None => return Some(IntegerValue::Overflow),
        };
    }
    if negative {
        Some(IntegerValue::Int(v))
    } else {
        Some(
            v.checked_neg()
                .map_or(IntegerValue::Overflow, IntegerValue::Int),
        )
    }
}

/// Offset after the string whose opening quote is at `i` in valid JSON.
#[inline]
fn skip_string(raw: &[u8], i: usize) -> usize {
    let mut i = i + 1;
    loop {
        i = scan_plain(raw, i);
        match raw.get(i) {
            Some(b'\\') => i += 2,
            Some(b'"') => return i + 1,
            // A control byte (impossible in valid JSON): keep it.
            Some(_) => i += 1,
            None => return raw.len(),
        }
    }
}

/// Index of the first byte of `bytes` at or after `from` that is `"` or at
/// most 0x20, or `bytes.len()`.
#[inline]
fn scan_quote_or_space(bytes: &[u8], from: usize) -> usize {
    let stop = |b: u8| b == b'"' || b <= b' ';
    // Words on 64-bit targets only: on a 32-bit device the byte loop is
    // ~100 bytes smaller, and a device does not compact large documents.
    #[cfg(target_pointer_width = "64")]
    return scan_words(
        bytes,
        from,
        |w| zero_bytes(w ^ u64::from_le_bytes([b'"'; 8])) | bytes_below(w, 0x21),
        stop,
    );
    #[cfg(not(target_pointer_width = "64"))]
    match bytes
        .get(from..)
        .and_then(|t| t.iter().position(|&b| stop(b)))
    {
        Some(n) => from + n,
        None => bytes.len().max(from),
    }
}

/// The compacting copy of a JSON text, as its value holds it (see
/// [`crate::io::Transcode`]).
pub(crate) type Compact = crate::io::Transcode;

/// What a JSON text holds for its encoders: `None` when it is known compact
/// (written as it is), else the compacting copy [`compact_runs`]. Chosen
/// where the text comes in (`RawJson`, the builder's `data_json`, the
/// parsers), so a firmware whose JSON is all compact constants does not
/// link the compacting copy (see [`crate::io::Transcode`]).
pub(crate) const fn compactor(compact: bool) -> Option<Compact> {
    if compact { None } else { Some(compact_runs) }
}

/// Copies valid JSON (already validated by [`Lexer::value`]) without its
/// insignificant whitespace: `sink` gets each whole run between whitespace.
/// Returns `false` once `sink` does, having stopped there.
pub(crate) fn compact_runs(raw: &[u8], sink: &mut dyn FnMut(&[u8]) -> bool) -> bool {
    // Valid JSON without any byte <= 0x20 has no whitespace to drop.
    if crate::swar::no_space_or_control(raw) {
        return sink(raw);
    }
    let mut run_start = 0;
    let mut i = 0;
    loop {
        // Outside strings, the only bytes to stop at are `"` and whitespace
        // (valid JSON has no other byte <= 0x20 there): found eight at a
        // time, so spaces inside strings do not send the copy byte by byte.
        i = scan_quote_or_space(raw, i);
        match raw.get(i) {
            Some(b'"') => i = skip_string(raw, i),
            Some(_) => {
                if run_start < i && !sink(raw.get(run_start..i).unwrap_or(&[])) {
                    return false;
                }
                i += 1;
                while raw.get(i).is_some_and(|&b| is_ws(b)) {
                    i += 1;
                }
                run_start = i;
            }
            None => break,
        }
    }
    run_start >= raw.len() || sink(raw.get(run_start..).unwrap_or(&[]))
}

/// Writes JSON text to `w`: as it is when `compact` is `None`, else through
/// it (see [`compactor`]). A write error is returned as the writer gave it.
pub(crate) fn write_json_text<W: embedded_io::Write + ?Sized>(
    w: &mut W,
    raw: &[u8],
    compact: Option<Compact>,
) -> Result<(), WriteError<W::Error>> {
    match compact {
        None => write_all(w, raw),
        Some(compact) => crate::io::write_transcoded(w, raw, compact),
    }
}

/// Copies valid JSON (already validated by [`Lexer::value`]) to `w` without
/// insignificant whitespace, copying whole runs.
#[cfg(test)]
pub(crate) fn write_compact<W: embedded_io::Write + ?Sized>(
    w: &mut W,
    raw: &[u8],
) -> Result<(), WriteError<W::Error>> {
    write_json_text(w, raw, Some(compact_runs))
}

/// Whether valid JSON (already validated) contains no insignificant whitespace.
#[allow(dead_code)] // part of the lexer API; not every caller uses it yet
pub(crate) fn is_compact(raw: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'"' {
            i = skip_string(raw, i);
        } else if is_ws(b) {
            return false;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A growable test writer (independent of embedded-io's `alloc` feature).
    #[derive(Default)]
    struct VecW(Vec<u8>);
    impl embedded_io::ErrorType for VecW {
        type Error = core::convert::Infallible;
    }
    impl embedded_io::Write for VecW {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    /// Whether `value()` + `finish()` accept `doc`.
    fn ours(doc: &[u8], depth: usize) -> Result<&[u8], JsonError> {
        let mut lex = Lexer::new(doc);
        let v = lex.value(depth)?;
        lex.finish()?;
        Ok(v)
    }

    /// Whether serde_json accepts `doc` (it refuses numbers out of `f64`
    /// range, like `9e999`, and so do we).
    fn serde_ok(doc: &[u8]) -> bool {
        serde_json::from_slice::<Value>(doc).is_ok()
    }

    /// Compares acceptance with serde_json (depth kept below its limit of 128).
    fn check_same(doc: &[u8]) {
        let o = ours(doc, 100);
        assert_eq!(
            o.is_ok(),
            serde_ok(doc),
            "doc {:?}: ours {o:?}, serde_json {:?}",
            String::from_utf8_lossy(doc),
            serde_json::from_slice::<Value>(doc).err()
        );
        if let Ok(raw) = o {
            // The raw value is the document without surrounding whitespace.
            let trimmed = {
                let s = doc.iter().position(|&b| !is_ws(b)).unwrap();
                let e = doc.iter().rposition(|&b| !is_ws(b)).unwrap();
                &doc[s..=e]
            };
            assert_eq!(raw, trimmed);
        }
    }

    fn kind(doc: &[u8]) -> JsonErrorKind {
        ours(doc, 64).unwrap_err().kind
    }

    fn error(doc: &[u8]) -> (usize, JsonErrorKind) {
        let e = ours(doc, 64).unwrap_err();
        (e.offset, e.kind)
    }

    const VALID: &[&str] = &[
        "0",
        "-0",
        "-0.0",
        "1",
        "-1",
        "123",
        "1.5",
        "-1.25e10",
        "1E5",
        "1e+5",
        "1e-5",
        "0.000001",
        "10E-0",
        "9223372036854775807",
        "-9223372036854775808",
        "123456789012345678901234567890",
        "true",
        "false",
        "null",
        "\"\"",
        "\"abc\"",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u0000\\u001f\\u0041\\u00e9\\u20AC\\uFFFF\"",
        "\"\\uD83D\\uDE00\"",
        "\"\\ud83d\\ude00x\"",
        "\"\\uDBFF\\uDFFF\"",
        "\"\\uD800\\uDC00\"",
        "\"é€😀\u{7f}\u{80}\u{10FFFF}\"",
        "[]",
        "{}",
        "[[]]",
        "[{}]",
        "{\"a\":{}}",
        "[1,2,3]",
        "[1 , 2 , 3 ]",
        " \t\r\n[ \t\r\n1 \t\r\n] \t\r\n",
        "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
        "{ \"a\" : 1 , \"b\" : [ ] , \"c\" : { } }",
        "[\"a\",{\"b\":[\"c\",{\"d\":-0.5e-3}]}]",
        "{\"\":\"\"}",
        "{\"a\":1,\"a\":2}",
        "[0,-0,0.0,0e0,0E+0,-0e-0]",
        "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
        "{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"/s\",\"type\":\"t\",\"data\":{\"k\":[1,2,{\"z\":null}]}}",
        "\"\\\\u0041\"",
        "\"a\\\\\"",
        "1e308",
        "1.7976931348623157e308",
        "-1.7976931348623157E+308",
        "0.17976931348623157e309",
        "1e-400",
        "-1e-400",
        "0e999999",
        "0.000e99999999999999999999",
        "1E-99999999999999999999",
        "1000e305",
        "0.0001e312",
    ];

    const INVALID: &[&str] = &[
        "",
        " ",
        "\t\r\n ",
        "01",
        "-01",
        "00",
        "1.",
        "1.e5",
        ".5",
        "+1",
        "-",
        "--1",
        "1e",
        "1e+",
        "1E-",
        "1ee5",
        "0x10",
        "1.5.5",
        "Infinity",
        "-Infinity",
        "NaN",
        "tru",
        "true1",
        "trUe",
        "fals",
        "falsey",
        "nul",
        "nulll",
        "True",
        "\"",
        "\"abc",
        "\"\\",
        "\"\\\"",
        "\"\\a\"",
        "\"\\x41\"",
        "\"\\u\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\uD800\"",
        "\"\\uDEAD\"",
        "\"\\uDC00\\uD800\"",
        "\"\\uD800\\uD800\"",
        "\"\\uD800\\u0041\"",
        "\"\\uD800x\"",
        "\"\\uD800\\n\"",
        "\"\\uD83D\"",
        "\"\\uD83D\\u",
        "\"a\tb\"",
        "\"a\nb\"",
        "\"\u{0}\"",
        "\"\u{1f}\"",
        "'a'",
        "[",
        "]",
        "{",
        "}",
        "[1",
        "[1,",
        "[1,]",
        "[,1]",
        "[1 2]",
        "[1:2]",
        "[}",
        "{]",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "{a:1}",
        "{1:1}",
        "{\"a\":1]",
        "[1}",
        "{,}",
        "[,]",
        "1 2",
        "[] []",
        "{}x",
        "nullnull",
        "\"a\"\"b\"",
        "\u{feff}1",
        "\u{a0}1",
        "\u{c}1",
        "1\u{b}",
        "/*c*/1",
        "[1,2,3]]",
        "{\"a\":{\"b\":1}}}",
        "1e400",
        "-1e400",
        "1e309",
        "1.8e308",
        "10e308",
        "0.1e310",
        "1E99999999999999999999",
        "[123123e100000]",
        "{\"a\":-123123123123123123123123123123e100000}",
    ];

    #[test]
    fn handwritten_table_matches_serde_json() {
        for doc in VALID {
            assert!(
                ours(doc.as_bytes(), 100).is_ok(),
                "{doc:?}: {:?}",
                ours(doc.as_bytes(), 100)
            );
            check_same(doc.as_bytes());
        }
        for doc in INVALID {
            assert!(ours(doc.as_bytes(), 100).is_err(), "{doc:?}");
            check_same(doc.as_bytes());
        }
    }

    /// The overflow check refuses exactly the numbers that parse to an
    /// infinite `f64` (Rust's exact parser), around the threshold
    /// (2^1024 - 2^970) in every notation, and says so with
    /// `NumberOutOfRange` at the number's start.
    #[test]
    fn out_of_range_is_exactly_what_rounds_to_infinity() {
        let t = core::str::from_utf8(F64_OVERFLOW).unwrap();
        // The threshold itself is a tie, rounded up to 2^1024.
        assert!(t.parse::<f64>().unwrap().is_infinite());
        let mut cases: Vec<String> = vec![format!("{t}0"), format!("-{t}"), format!("{t}e-1")];
        let mut rng = Rng(0x5eed_f00d);
        for _ in 0..4000 {
            // The threshold's digits, one changed, cut short or made longer.
            let mut d: Vec<u8> = F64_OVERFLOW.to_vec();
            match rng.below(4) {
                0 => {
                    // The first digit stays nonzero (JSON has no `01`).
                    let k = rng.below(d.len());
                    d[k] = b'0' + rng.below(10) as u8;
                    d[0] = d[0].max(b'1');
                }
                1 => d.truncate(1 + rng.below(d.len())),
                2 => d.extend((0..1 + rng.below(5)).map(|_| b'0' + rng.below(10) as u8)),
                _ => {}
            }
            let digits = core::str::from_utf8(&d).unwrap();
            let (head, tail) = digits.split_at(1);
            // Written as 0.ddd, d.ddd or ddd, with the exponent that puts
            // the first digit at 10^308, give or take one.
            let (m, e) = match rng.below(3) {
                0 => (format!("0.{digits}"), 309),
                1 if !tail.is_empty() => (format!("{head}.{tail}"), 308),
                _ => (digits.to_owned(), 309 - digits.len() as i64),
            };
            let e = e + rng.below(3) as i64 - 1;
            let sign = if rng.below(2) == 0 { "" } else { "-" };
            cases.push(format!("{sign}{m}e{e}"));
            if e == 0 {
                cases.push(format!("{sign}{m}"));
            }
        }
        let mut infinite = 0;
        for c in &cases {
            let inf = c.parse::<f64>().unwrap().is_infinite();
            infinite += usize::from(inf);
            let r = ours(c.as_bytes(), 8);
            if inf {
                let got = r.map_err(|e| (e.offset, e.kind));
                assert_eq!(got, Err((0, JsonErrorKind::NumberOutOfRange)), "{c}");
            } else {
                assert!(r.is_ok(), "{c}: {r:?}");
            }
            // Not `check_same`: serde_json's default float parsing is not
            // exact within an ulp of the threshold (its `float_roundtrip`
            // feature is, and agrees: tests/tests/json_test_suite.rs).
        }
        // Both sides of the threshold are reached.
        assert!(
            infinite > 1000 && cases.len() - infinite > 1000,
            "{infinite}"
        );
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let cases: &[&[u8]] = &[
            b"\"\xff\"",
            b"\"\xfe\"",
            b"\"\x80\"",
            b"\"a\xbf\"",
            b"\"\xc0\xaf\"",             // overlong '/'
            b"\"\xc1\xbf\"",             // overlong
            b"\"\xe0\x80\xaf\"",         // overlong
            b"\"\xf0\x80\x80\xaf\"",     // overlong
            b"\"\xed\xa0\x80\"",         // encoded surrogate D800
            b"\"\xed\xbf\xbf\"",         // encoded surrogate DFFF
            b"\"\xf4\x90\x80\x80\"",     // > U+10FFFF
            b"\"\xf8\x88\x80\x80\x80\"", // 5-byte form
            b"\"\xc3\"",                 // truncated
            b"\"\xe2\x82\"",             // truncated
            b"\"\xe2\x82\\n\"",          // truncated before an escape
            b"\"\xe2\x82\n\"",           // truncated before a control byte
            b"\"\xf0\x9f\x98\"",         // truncated
            b"[\"ok\",\"\xff\"]",
            b"{\"\xff\":1}",
            b"\xff",
            b"\xef\xbb\xbf\"bom\"",
        ];
        for doc in cases {
            assert!(
                ours(doc, 100).is_err(),
                "{:?}",
                String::from_utf8_lossy(doc)
            );
            check_same(doc);
        }
        assert_eq!(error(b"\"ab\xffc\""), (3, JsonErrorKind::InvalidUtf8));
        // The first problem is reported, even when a later one is found first.
        assert_eq!(error(b"\"a\xff\n\""), (2, JsonErrorKind::InvalidUtf8));
        assert_eq!(error(b"\"a\xff\\q\""), (2, JsonErrorKind::InvalidUtf8));
        assert_eq!(error(b"\"a\xe2\x82"), (2, JsonErrorKind::InvalidUtf8));
        assert_eq!(
            error(b"\"a\xe2\x82\xac\n"),
            (5, JsonErrorKind::ControlCharacter)
        );
        // Valid multi-byte sequences of every length.
        check_same("\"\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}\"".as_bytes());
    }

    #[test]
    fn error_kinds_and_offsets() {
        use JsonErrorKind::*;
        assert_eq!(error(b""), (0, Empty));
        assert_eq!(error(b"  \n"), (3, Empty));
        assert_eq!(error(b"\xef\xbb\xbf{}"), (0, UnexpectedByte(0xef)));
        assert_eq!(error(b" x"), (1, UnexpectedByte(b'x')));
        assert_eq!(error(b"[1"), (2, UnexpectedEnd));
        assert_eq!(error(b"[1,"), (3, UnexpectedEnd));
        assert_eq!(error(b"{\"a\""), (4, UnexpectedEnd));
        assert_eq!(error(b"{\"a\":"), (5, UnexpectedEnd));
        assert_eq!(error(b"\"ab"), (3, UnexpectedEnd));
        assert_eq!(error(b"\"\\u12"), (5, UnexpectedEnd));
        assert_eq!(error(b"\"\\uD800"), (7, UnexpectedEnd));
        assert_eq!(error(b"\"\\uD800\\"), (8, UnexpectedEnd));
        assert_eq!(error(b"\"\\uD800\\u"), (9, UnexpectedEnd));
        assert_eq!(error(b"\"\\uD800\\uDC0"), (12, UnexpectedEnd));
        assert_eq!(error(b"\"a\tb\""), (2, ControlCharacter));
        assert_eq!(error(b"\"a\\qb\""), (2, InvalidEscape));
        assert_eq!(error(b"\"a\\u12x4\""), (6, InvalidEscape));
        assert_eq!(error(b"\"\\uD800\\uZZZZ\""), (9, InvalidEscape));
        assert_eq!(error(b"\"a\\uD800\""), (2, LoneSurrogate));
        assert_eq!(error(b"\"a\\uDEAD\""), (2, LoneSurrogate));
        assert_eq!(error(b"\"\\uD800\\u0041\""), (1, LoneSurrogate));
        assert_eq!(error(b"\"\\uD800\\n\""), (1, LoneSurrogate));
        assert_eq!(error(b"01"), (1, InvalidNumber));
        assert_eq!(error(b"-01"), (2, InvalidNumber));
        assert_eq!(error(b"1.x"), (2, InvalidNumber));
        assert_eq!(error(b"1."), (2, UnexpectedEnd));
        assert_eq!(error(b"1e"), (2, UnexpectedEnd));
        assert_eq!(error(b"1e+"), (3, UnexpectedEnd));
        assert_eq!(error(b"1ex"), (2, InvalidNumber));
        assert_eq!(error(b"-"), (1, UnexpectedEnd));
        assert_eq!(error(b"-x"), (1, InvalidNumber));
        assert_eq!(error(b".5"), (0, InvalidNumber));
        assert_eq!(error(b"+1"), (0, InvalidNumber));
        assert_eq!(error(b"tru"), (3, UnexpectedEnd));
        assert_eq!(error(b"trUe"), (2, InvalidLiteral));
        assert_eq!(error(b"nul"), (3, UnexpectedEnd));
        assert_eq!(error(b"true1"), (4, TrailingCharacters));
        assert_eq!(error(b"1 2"), (2, TrailingCharacters));
        assert_eq!(error(b"[1 2]"), (3, ExpectedCommaOrEnd));
        assert_eq!(error(b"[1}"), (2, ExpectedCommaOrEnd));
        assert_eq!(error(b"{\"a\":1]"), (6, ExpectedCommaOrEnd));
        assert_eq!(error(b"{\"a\" 1}"), (5, ExpectedColon));
        assert_eq!(error(b"{a:1}"), (1, ExpectedString));
        assert_eq!(error(b"{\"a\":1,}"), (7, ExpectedString));
        assert_eq!(error(b"[1,]"), (3, UnexpectedByte(b']')));
        assert_eq!(error(b"[,1]"), (1, UnexpectedByte(b',')));
    }

    #[test]
    fn display() {
        let e = JsonError {
            offset: 17,
            kind: JsonErrorKind::UnexpectedByte(b'x'),
        };
        assert_eq!(
            e.to_string(),
            "invalid JSON at byte 17: unexpected byte 'x'"
        );
        let e = JsonError {
            offset: 0,
            kind: JsonErrorKind::UnexpectedByte(0xef),
        };
        assert_eq!(
            e.to_string(),
            "invalid JSON at byte 0: unexpected byte 0xef"
        );
        for k in [
            JsonErrorKind::Empty,
            JsonErrorKind::UnexpectedEnd,
            JsonErrorKind::InvalidUtf8,
            JsonErrorKind::ControlCharacter,
            JsonErrorKind::InvalidEscape,
            JsonErrorKind::LoneSurrogate,
            JsonErrorKind::InvalidNumber,
            JsonErrorKind::InvalidLiteral,
            JsonErrorKind::TooDeep,
            JsonErrorKind::TrailingCharacters,
            JsonErrorKind::ExpectedString,
            JsonErrorKind::ExpectedColon,
            JsonErrorKind::ExpectedCommaOrEnd,
            JsonErrorKind::ExpectedObject,
            JsonErrorKind::ExpectedArray,
        ] {
            let s = k.to_string();
            assert!(!s.is_empty());
            assert!(s.starts_with(|c: char| c.is_ascii_lowercase()), "{s}");
        }
        let _: &dyn core::error::Error = &e;
    }

    /// Deterministic xorshift generator for the generated cases.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn every_prefix_and_mutation_matches_serde_json() {
        let mut n = 0;
        for doc in VALID.iter().chain(INVALID) {
            let doc = doc.as_bytes();
            for end in 0..=doc.len() {
                check_same(&doc[..end]);
                n += 1;
            }
            for i in 0..doc.len() {
                for b in [
                    b'"', b'\\', b'[', b']', b'{', b'}', b',', b':', b'0', b'1', b'-', b'.', b'e',
                    b'u', b' ', b'\n', 0, 0x1f, 0x80, 0xff, b'x',
                ] {
                    let mut m = doc.to_vec();
                    m[i] = b;
                    check_same(&m);
                    // Deletion and insertion too.
                    let mut d = doc.to_vec();
                    d.remove(i);
                    check_same(&d);
                    let mut ins = doc.to_vec();
                    ins.insert(i, b);
                    check_same(&ins);
                    n += 3;
                }
            }
        }
        assert!(n > 10_000, "{n}");
    }

    #[test]
    fn random_token_soup_matches_serde_json() {
        const TOKENS: &[&str] = &[
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            " ",
            "\n",
            "\"",
            "\"a\"",
            "\"\\u00e9\"",
            "\"\\uD83D\\uDE00\"",
            "\"\\uD83D\"",
            "\"\\n\"",
            "\\",
            "0",
            "1",
            "-",
            "12",
            ".",
            "5",
            "e",
            "E",
            "+",
            "true",
            "false",
            "null",
            "tru",
            "\u{0}",
            "é",
            "\u{1F600}",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let len = rng.below(12);
            let mut doc = String::new();
            for _ in 0..len {
                doc.push_str(TOKENS[rng.below(TOKENS.len())]);
            }
            check_same(doc.as_bytes());
            if ours(doc.as_bytes(), 100).is_ok() {
                accepted += 1;
            }
        }
        // Structured generation: valid documents, then every prefix of them.
        for _ in 0..2_000 {
            let doc = gen_value(&mut rng, 0);
            assert!(ours(doc.as_bytes(), 100).is_ok(), "{doc}");
            check_same(doc.as_bytes());
            accepted += 1;
            for end in 0..doc.len() {
                check_same(&doc.as_bytes()[..end]);
            }
        }
        assert!(accepted > 2_000);
    }

    /// A random valid JSON document with random whitespace.
    fn gen_value(rng: &mut Rng, depth: usize) -> String {
        let ws = |rng: &mut Rng| [" ", "", "\n", "\t ", "\r\n"][rng.below(5)].to_string();
        let pick = if depth > 6 {
            rng.below(6)
        } else {
            rng.below(8)
        };
        match pick {
            0 => "null".into(),
            1 => ["true", "false"][rng.below(2)].into(),
            2 => ["0", "-0", "12", "-3.25", "1e9", "6.02E+23", "1e-7", "-0.0"][rng.below(8)].into(),
            3..=5 => gen_string(rng),
            6 => {
                let n = rng.below(4);
                let items: Vec<String> = (0..n)
                    .map(|_| format!("{}{}{}", ws(rng), gen_value(rng, depth + 1), ws(rng)))
                    .collect();
                format!("[{}{}]", items.join(","), ws(rng))
            }
            _ => {
                let n = rng.below(4);
                let items: Vec<String> = (0..n)
                    .map(|_| {
                        format!(
                            "{}{}{}:{}{}{}",
                            ws(rng),
                            gen_string(rng),
                            ws(rng),
                            ws(rng),
                            gen_value(rng, depth + 1),
                            ws(rng)
                        )
                    })
                    .collect();
                format!("{{{}{}}}", items.join(","), ws(rng))
            }
        }
    }

    /// A random JSON string literal with every kind of escape.
    fn gen_string(rng: &mut Rng) -> String {
        const PARTS: &[&str] = &[
            "a",
            "Z",
            " ",
            "é",
            "€",
            "😀",
            "\\\"",
            "\\\\",
            "\\/",
            "\\b",
            "\\f",
            "\\n",
            "\\r",
            "\\t",
            "\\u0000",
            "\\u001F",
            "\\u0041",
            "\\u00E9",
            "\\u20ac",
            "\\uD83D\\uDE00",
            "\\udbff\\udfff",
            "\\uFFFF",
            "\u{7f}",
            "{",
            "]",
            ":",
            ",",
        ];
        let mut s = String::from("\"");
        for _ in 0..rng.below(6) {
            s.push_str(PARTS[rng.below(PARTS.len())]);
        }
        s.push('"');
        s
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(12345);
        const ALPHABET: &[u8] = b"[]{}\",:\\u0123456789abcdefABCDEF-+.eEtrufalsn \n\t\r\x00\x1f\x7f\x80\xbf\xc3\xe2\xed\xf0\xff";
        for _ in 0..50_000 {
            let len = rng.below(24);
            let doc: Vec<u8> = (0..len)
                .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                .collect();
            check_same(&doc);
            // The other entry points must not panic either.
            let mut lex = Lexer::new(&doc);
            let _ = lex.scalar();
            let mut lex = Lexer::new(&doc);
            let _ = lex.string();
            let mut lex = Lexer::new(&doc);
            if lex.eat(b'{').is_ok() {
                let mut first = true;
                for _ in 0..doc.len() {
                    match next_member(&mut lex, &mut first) {
                        Ok(Some(_)) => {
                            if lex.value(8).is_err() {
                                break;
                            }
                        }
                        _ => break,
                    }
                }
            }
            let _ = is_compact(&doc);
            let mut out = VecW::default();
            write_compact(&mut out, &doc).unwrap();
            assert!(out.0.len() <= doc.len());
        }
    }

    #[test]
    fn deep_nesting_is_iterative() {
        for open in ["[", "{\"a\":", "[{\"a\":"] {
            let mut doc = open.repeat(10_000);
            doc.push('1');
            // TooDeep at the first bracket past the limit (the cap is MAX_DEPTH).
            for (max, want_depth) in [
                (0, 0),
                (1, 1),
                (5, 5),
                (256, 256),
                (10_000, 256),
                (usize::MAX, 256),
            ] {
                let e = ours(doc.as_bytes(), max).unwrap_err();
                assert_eq!(e.kind, JsonErrorKind::TooDeep);
                let brackets_before = doc.as_bytes()[..e.offset]
                    .iter()
                    .filter(|&&b| b == b'[' || b == b'{')
                    .count();
                assert_eq!(brackets_before, want_depth, "{open} {max}");
                assert!(matches!(doc.as_bytes()[e.offset], b'[' | b'{'));
            }
            // Truncated deep input without a limit problem.
            let e = ours(open.repeat(60).as_bytes(), 256).unwrap_err();
            assert_eq!(e.kind, JsonErrorKind::UnexpectedEnd);
        }
        // Exactly at the limit is fine; one more is not.
        for depth in [1, 2, 63, 64, 65, 128, 255, 256] {
            let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert!(ours(doc.as_bytes(), depth).is_ok(), "{depth}");
            assert_eq!(
                ours(doc.as_bytes(), depth - 1).unwrap_err().offset,
                depth - 1
            );
            let mut obj = "{\"k\":".repeat(depth);
            obj.push_str("[]");
            obj.push_str(&"}".repeat(depth));
            if depth < MAX_DEPTH {
                assert!(ours(obj.as_bytes(), depth + 1).is_ok());
            }
            assert_eq!(
                ours(obj.as_bytes(), depth).unwrap_err().kind,
                JsonErrorKind::TooDeep
            );
        }
        let doc = format!("{}{}", "[".repeat(257), "]".repeat(257));
        assert_eq!(ours(doc.as_bytes(), 1000).unwrap_err().offset, 256);
        // Mixed kinds across the 64-bit word boundaries of the bitset.
        let mut doc = String::new();
        for d in 0..200 {
            doc.push_str(if d % 3 == 0 { "{\"x\":" } else { "[" });
        }
        doc.push_str("null");
        for d in (0..200).rev() {
            doc.push_str(if d % 3 == 0 { "}" } else { "]" });
        }
        assert!(ours(doc.as_bytes(), 200).is_ok());
        // Closing with the wrong kind is caught at every depth.
        let bad = doc.replacen("]}", "}}", 1);
        assert_eq!(kind(bad.as_bytes()), JsonErrorKind::TooDeep);
        assert_eq!(
            ours(bad.as_bytes(), 256).unwrap_err().kind,
            JsonErrorKind::ExpectedCommaOrEnd
        );
    }

    #[test]
    fn value_returns_exact_bytes_and_stops() {
        let doc = b"  {\"a\": [1, 2]}  ,  \"next\"  ";
        let mut lex = Lexer::new(doc);
        assert_eq!(lex.value(8).unwrap(), b"{\"a\": [1, 2]}");
        assert!(lex.try_eat(b','));
        assert_eq!(lex.value(8).unwrap(), b"\"next\"");
        lex.finish().unwrap();
        assert_eq!(lex.offset(), doc.len());
        // Scalars end where they end.
        let mut lex = Lexer::new(b"-12.5e3]");
        assert_eq!(lex.value(0).unwrap(), b"-12.5e3");
        assert_eq!(lex.peek(), Some(b']'));
    }

    #[test]
    fn lexer_api_walks_an_object() {
        let doc = br#" { "id" : "a\"b", "n": -3, "\u0069d2": [1, {"x": true}, null], "e": {}, "f": false } "#;
        let mut lex = Lexer::new(doc);
        assert_eq!(lex.peek(), Some(b'{'));
        lex.eat(b'{').unwrap();
        let mut first = true;
        let mut seen = Vec::new();
        let mut buf = [0u8; 64];
        let mut scratch = Scratch::new(&mut buf);
        while let Some(name) = next_member(&mut lex, &mut first).unwrap() {
            let key = name.unescape_into(&mut scratch).unwrap();
            match key {
                "id" => {
                    let s = lex.string().unwrap();
                    assert!(s.has_escapes());
                    assert_eq!(s.raw(), "a\\\"b");
                    assert_eq!(&doc[s.offset()..s.offset() + 1], b"\"");
                    assert!(s.eq_str("a\"b"));
                    assert_eq!(s.unescape_into(&mut scratch).unwrap(), "a\"b");
                }
                "n" => match lex.scalar().unwrap() {
                    Scalar::Number(n) => assert_eq!(parse_integer(n), Some(IntegerValue::Int(-3))),
                    other => panic!("{other:?}"),
                },
                "id2" => {
                    assert!(name.eq_str("id2"));
                    assert!(!name.eq_str("id"));
                    assert!(matches!(lex.scalar().unwrap(), Scalar::Container));
                    lex.eat(b'[').unwrap();
                    let mut first = true;
                    let mut count = 0;
                    while next_element(&mut lex, &mut first).unwrap() {
                        lex.value(4).unwrap();
                        count += 1;
                    }
                    assert_eq!(count, 3);
                }
                "e" => assert_eq!(lex.value(4).unwrap(), b"{}"),
                "f" => assert!(matches!(lex.scalar().unwrap(), Scalar::Bool(false))),
                other => panic!("{other}"),
            }
            seen.push(key);
        }
        lex.finish().unwrap();
        assert_eq!(seen, ["id", "n", "id2", "e", "f"]);
        // Only the escaped strings used the scratch buffer.
        assert_eq!(scratch.used(), "a\"b".len() + "id2".len());
    }

    #[test]
    fn iteration_helpers_reject_bad_separators() {
        use JsonErrorKind::*;
        let member_err = |doc: &[u8]| {
            let mut lex = Lexer::new(doc);
            lex.eat(b'{').unwrap();
            let mut first = true;
            loop {
                match next_member(&mut lex, &mut first) {
                    Ok(Some(_)) => {
                        lex.value(4)?;
                    }
                    Ok(None) => return lex.finish(),
                    Err(e) => return Err(e),
                }
            }
        };
        assert_eq!(member_err(b"{}"), Ok(()));
        assert_eq!(member_err(b"{\"a\":1}"), Ok(()));
        assert_eq!(member_err(b"{\"a\":1,\"b\":2}"), Ok(()));
        assert_eq!(member_err(b"{\"a\":1,}").unwrap_err().kind, ExpectedString);
        assert_eq!(member_err(b"{,\"a\":1}").unwrap_err().kind, ExpectedString);
        assert_eq!(
            member_err(b"{\"a\":1 \"b\":2}").unwrap_err().kind,
            ExpectedCommaOrEnd
        );
        assert_eq!(member_err(b"{\"a\" 1}").unwrap_err().kind, ExpectedColon);
        assert_eq!(member_err(b"{\"a\":1").unwrap_err().kind, UnexpectedEnd);
        assert_eq!(member_err(b"{").unwrap_err().kind, UnexpectedEnd);
        assert_eq!(
            member_err(b"{\"a\":1]").unwrap_err().kind,
            ExpectedCommaOrEnd
        );

        let element_err = |doc: &[u8]| {
            let mut lex = Lexer::new(doc);
            lex.eat(b'[').unwrap();
            let mut first = true;
            while next_element(&mut lex, &mut first)? {
                lex.value(4)?;
            }
            lex.finish()
        };
        assert_eq!(element_err(b"[]"), Ok(()));
        assert_eq!(element_err(b"[ 1 , 2 ]"), Ok(()));
        assert_eq!(element_err(b"[1,]").unwrap_err().kind, UnexpectedByte(b']'));
        assert_eq!(element_err(b"[,1]").unwrap_err().kind, UnexpectedByte(b','));
        assert_eq!(element_err(b"[1 2]").unwrap_err().kind, ExpectedCommaOrEnd);
        assert_eq!(element_err(b"[1").unwrap_err().kind, UnexpectedEnd);
        assert_eq!(element_err(b"[1]]").unwrap_err().kind, TrailingCharacters);

        let mut lex = Lexer::new(b" [");
        assert_eq!(
            lex.eat(b'{').unwrap_err(),
            JsonError {
                offset: 1,
                kind: ExpectedObject
            }
        );
        assert_eq!(lex.eat(b'x').unwrap_err().kind, UnexpectedByte(b'['));
        assert!(!lex.try_eat(b'{'));
        assert!(lex.try_eat(b'['));
        assert_eq!(
            lex.eat(b']').unwrap_err(),
            JsonError {
                offset: 2,
                kind: UnexpectedEnd
            }
        );
        assert_eq!(lex.peek(), None);
        assert_eq!(Lexer::new(b"{").eat(b'[').unwrap_err().kind, ExpectedArray);
        assert_eq!(Lexer::new(b"1").string().unwrap_err().kind, ExpectedString);
        assert_eq!(Lexer::new(b"  ").string().unwrap_err().kind, UnexpectedEnd);
        assert_eq!(Lexer::new(b"  ").scalar().unwrap_err().kind, Empty);
        assert_eq!(
            Lexer::new(b"x").scalar().unwrap_err().kind,
            UnexpectedByte(b'x')
        );
        assert!(matches!(Lexer::new(b" null").scalar(), Ok(Scalar::Null)));
        assert!(matches!(
            Lexer::new(b"true").scalar(),
            Ok(Scalar::Bool(true))
        ));
        assert!(
            matches!(Lexer::new(b"\"s\"").scalar(), Ok(Scalar::Str(s)) if s.raw() == "s" && !s.has_escapes())
        );
        let mut lex = Lexer::new(b"[1]");
        assert!(matches!(lex.scalar(), Ok(Scalar::Container)));
        assert_eq!(lex.offset(), 0);
    }

    /// Strings to round-trip through serde_json's escaping and our unescaping.
    fn sample_strings() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            "a",
            "plain ascii",
            "q\"b\\s/",
            "\n\r\t\u{8}\u{c}",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "é€😀",
            "\u{10ffff}\u{ffff}\u{fffe}\u{d7ff}\u{e000}",
            "\\u0041",
            "a\\",
            "日本語テキスト",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut rng = Rng(777);
        let chars = [
            'a', 'é', '"', '\\', '/', '\n', '\u{1}', '😀', '€', ' ', '\u{7f}', '\u{ffff}',
        ];
        for _ in 0..500 {
            let s: String = (0..rng.below(20))
                .map(|_| chars[rng.below(chars.len())])
                .collect();
            v.push(s);
        }
        v
    }

    /// Escapes every char of `s` as `\uXXXX` (surrogate pairs for astral ones).
    fn escape_all(s: &str, upper: bool) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                if upper {
                    out.push_str(&format!("\\u{u:04X}"));
                } else {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn unescape_matches_serde_json() {
        let mut count = 0;
        for s in sample_strings() {
            let forms = [
                serde_json::to_string(&s).unwrap(),
                escape_all(&s, true),
                escape_all(&s, false),
                {
                    // serde_json's form with every '/' written as "\/".
                    serde_json::to_string(&s).unwrap().replace('/', "\\/")
                },
            ];
            for json in forms {
                let mut lex = Lexer::new(json.as_bytes());
                let js = lex.string().unwrap();
                lex.finish().unwrap();
                let expected: String = serde_json::from_str(&json).unwrap();
                assert_eq!(expected, s);
                let mut buf = vec![0u8; json.len()];
                let mut scratch = Scratch::new(&mut buf);
                let got = js.unescape_into(&mut scratch).unwrap();
                assert_eq!(got, expected, "{json}");
                assert_eq!(js.has_escapes(), json.contains('\\'));
                if !js.has_escapes() {
                    assert_eq!(scratch.used(), 0);
                    assert_eq!(js.raw(), expected);
                }
                // eq_str: equal, and unequal to near misses.
                assert!(js.eq_str(&expected), "{json}");
                let mut longer = expected.clone();
                longer.push('x');
                assert!(!js.eq_str(&longer));
                if let Some(c) = expected.chars().last() {
                    let shorter = &expected[..expected.len() - c.len_utf8()];
                    assert!(!js.eq_str(shorter));
                    let mut changed = shorter.to_string();
                    changed.push(if c == 'a' { 'b' } else { 'a' });
                    assert!(!js.eq_str(&changed));
                }
                // A scratch buffer one byte too small.
                if js.has_escapes() && !expected.is_empty() {
                    let mut small = vec![0u8; expected.len() - 1];
                    let mut scratch = Scratch::new(&mut small);
                    assert_eq!(js.unescape_into(&mut scratch), Err(ScratchFull));
                    assert_eq!(scratch.used(), 0);
                }
                count += 1;
            }
        }
        assert!(count > 2_000);
    }

    #[test]
    fn eq_str_member_names() {
        let name = |doc: &'static str| Lexer::new(doc.as_bytes()).string().unwrap();
        assert!(name(r#""\u0069d""#).eq_str("id"));
        assert!(name(r#""i\u0064""#).eq_str("id"));
        assert!(name(r#""\u0069\u0064""#).eq_str("id"));
        assert!(!name(r#""\u0069\u0064""#).eq_str("i"));
        assert!(!name(r#""\u0069\u0064""#).eq_str("idx"));
        assert!(!name(r#""\u0069\u0064""#).eq_str(""));
        assert!(name(r#""id""#).eq_str("id"));
        assert!(!name(r#""id""#).eq_str("Id"));
        assert!(name(r#""""#).eq_str(""));
        assert!(name(r#""\ud83d\ude00""#).eq_str("😀"));
        assert!(!name(r#""\ud83d\ude00""#).eq_str("\u{fffd}\u{fffd}"));
        assert!(name(r#""a\\b""#).eq_str("a\\b"));
        assert!(!name(r#""a\\b""#).eq_str("a\\\\b"));
    }

    #[test]
    fn scratch_pieces_stay_valid() {
        let mut buf = [0u8; 32];
        let mut scratch = Scratch::new(&mut buf);
        let doc = br#"["\u0061", "b\nc", "plain", "\u00e9"]"#;
        let mut lex = Lexer::new(doc);
        lex.eat(b'[').unwrap();
        let mut first = true;
        let mut out = Vec::new();
        while next_element(&mut lex, &mut first).unwrap() {
            out.push(lex.string().unwrap().unescape_into(&mut scratch).unwrap());
        }
        assert_eq!(out, ["a", "b\nc", "plain", "é"]);
        assert_eq!(scratch.used(), 1 + 3 + 2);
    }

    fn compact(raw: &[u8]) -> Vec<u8> {
        let mut out = VecW::default();
        write_compact(&mut out, raw).unwrap();
        out.0
    }

    /// `raw` without the whitespace outside strings, byte by byte.
    fn compact_slowly(raw: &[u8]) -> Vec<u8> {
        let (mut in_str, mut esc) = (false, false);
        let mut out = Vec::new();
        for &b in raw {
            if in_str {
                if esc {
                    esc = false;
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' {
                    in_str = false;
                }
            } else if is_ws(b) {
                continue;
            } else {
                in_str = b == b'"';
            }
            out.push(b);
        }
        out
    }

    /// Whether `raw` has whitespace outside strings, checked the slow way.
    fn has_outside_ws(raw: &[u8]) -> bool {
        compact_slowly(raw) != raw
    }

    #[test]
    fn write_compact_matches_serde_json() {
        let mut docs: Vec<String> = VALID.iter().map(|s| s.to_string()).collect();
        docs.push(" { \"a b\" : [ 1 , \"x y\\\" z\" , { } ] ,\n\t\"c\" : \"\\\\\" } ".into());
        let mut rng = Rng(4242);
        for _ in 0..1_000 {
            docs.push(gen_value(&mut rng, 0));
        }
        for doc in &docs {
            let raw = ours(doc.as_bytes(), 100).unwrap();
            let out = compact(raw);
            assert_eq!(out, compact_slowly(raw), "{doc}");
            assert!(!has_outside_ws(&out), "{doc}");
            assert!(is_compact(&out));
            assert_eq!(is_compact(raw), !has_outside_ws(raw), "{doc}");
            assert_eq!(is_compact(raw), out == raw);
            let a: Value = serde_json::from_slice(raw).unwrap();
            let b: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(a, b, "{doc}");
            // Idempotent.
            assert_eq!(compact(&out), out);
        }
        // Byte-exact against serde_json when nothing needs normalising (sorted keys, plain strings).
        for doc in [
            " { \"a\" : [ 1 , 2 , { \"b\" : null } ] , \"c\" : \"x y\" , \"d\" : true } ",
            "[ \"with space\" , [ ] , { } , false ]",
            "\n\"  spaced  \"\n",
        ] {
            let raw = ours(doc.as_bytes(), 100).unwrap();
            let v: Value = serde_json::from_str(doc).unwrap();
            assert_eq!(compact(raw), serde_json::to_vec(&v).unwrap());
        }
    }

    #[test]
    fn write_compact_reports_writer_errors() {
        let mut buf = [0u8; 4];
        let mut w = crate::io::SliceWriter::new(&mut buf);
        assert!(write_compact(&mut w, b"[1, 2, 3]").is_err());
        let mut buf = [0u8; 7];
        let mut w = crate::io::SliceWriter::new(&mut buf);
        write_compact(&mut w, b"[1, 2, 3]").unwrap();
        assert_eq!(w.written(), b"[1,2,3]");
        let mut c = crate::io::Counter::default();
        write_compact(&mut c, b" { \"a\" : \" b \" } ").unwrap();
        assert_eq!(c.count, "{\"a\":\" b \"}".len());
    }

    #[test]
    fn parse_integer_edge_cases() {
        use IntegerValue::*;
        let cases: &[(&str, Option<IntegerValue>)] = &[
            ("0", Some(Int(0))),
            ("-0", Some(Int(0))),
            ("1", Some(Int(1))),
            ("-1", Some(Int(-1))),
            ("42", Some(Int(42))),
            ("2147483647", Some(Int(2_147_483_647))),
            ("-2147483648", Some(Int(-2_147_483_648))),
            ("2147483648", Some(Int(2_147_483_648))),
            ("-2147483649", Some(Int(-2_147_483_649))),
            ("9223372036854775807", Some(Int(i64::MAX))),
            ("-9223372036854775808", Some(Int(i64::MIN))),
            ("9223372036854775808", Some(Overflow)),
            ("-9223372036854775809", Some(Overflow)),
            ("99999999999999999999", Some(Overflow)),
            ("-99999999999999999999999999999", Some(Overflow)),
            ("00", None),
            ("01", None),
            ("-00", None),
            ("-01", None),
            ("1.0", None),
            ("1e3", None),
            ("1E3", None),
            ("-", None),
            ("", None),
            ("+1", None),
            (" 1", None),
            ("1 ", None),
            ("--1", None),
            ("0x1", None),
            ("１", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_integer(s), *want, "{s:?}");
        }
        // Agrees with the standard parser on everything of the right shape.
        let mut rng = Rng(99);
        for _ in 0..2_000 {
            let v = rng.next() as i64 >> rng.below(64);
            assert_eq!(parse_integer(&v.to_string()), Some(Int(v)));
        }
    }
}
