//! Attribute names, the CloudEvents type system, and extension attributes.

use core::fmt;

use crate::error::{Attribute, Rule, ValidationError};
use crate::time::Timestamp;

/// The only `specversion` this crate reads and writes.
pub const SPEC_VERSION: &str = "1.0";

/// Names of the core context attributes, plus `data` and `data_base64`: no extension may use them.
pub const RESERVED_NAMES: [&str; 10] = [
    "id",
    "source",
    "specversion",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];

/// Whether `name` follows the naming rule: one or more of `a`–`z`, `0`–`9`.
///
/// ```
/// use ossa_events_core::attr::is_valid_name;
/// assert!(is_valid_name("ossaagentid"));
/// assert!(is_valid_name("v2"));
/// assert!(!is_valid_name("agent_id")); // no `_`
/// assert!(!is_valid_name("Agent"));    // no upper case
/// assert!(!is_valid_name(""));
/// ```
#[inline]
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && crate::swar::all_lower_alnum(name.as_bytes())
}

/// Whether `name` is a core attribute name or `data`/`data_base64`.
///
/// ```
/// use ossa_events_core::attr::is_reserved_name;
/// assert!(is_reserved_name("subject"));
/// assert!(is_reserved_name("data_base64"));
/// assert!(!is_reserved_name("ossatraceid"));
/// ```
#[inline]
pub fn is_reserved_name(name: &str) -> bool {
    matches!(
        name,
        "id" | "source"
            | "specversion"
            | "type"
            | "datacontenttype"
            | "dataschema"
            | "subject"
            | "time"
            | "data"
            | "data_base64"
    )
}

/// Checks an extension name: valid and not reserved.
///
/// ```
/// use ossa_events_core::{attr::check_extension_name, Attribute, Rule};
/// assert!(check_extension_name("tenant").is_ok());
/// assert_eq!(check_extension_name("data").unwrap_err().rule, Rule::ReservedName);
/// let err = check_extension_name("my-ext").unwrap_err();
/// assert_eq!((err.attribute, err.rule), (Attribute::named("my-ext"), Rule::InvalidName));
/// ```
pub fn check_extension_name(name: &str) -> Result<(), ValidationError> {
    if !is_valid_name(name) {
        return Err(ValidationError::new(
            Attribute::named(name),
            Rule::InvalidName,
        ));
    }
    if is_reserved_name(name) {
        return Err(ValidationError::new(
            Attribute::named(name),
            Rule::ReservedName,
        ));
    }
    Ok(())
}

/// Whether `s` is a valid CloudEvents `String`: no control characters
/// (U+0000–U+001F, U+007F–U+009F) and no Unicode noncharacters. Surrogates
/// cannot occur in a Rust `str`.
///
/// ```
/// use ossa_events_core::attr::is_valid_string;
/// assert!(is_valid_string("Grüße 👋"));
/// assert!(!is_valid_string("tab\there"));   // control character
/// assert!(!is_valid_string("\u{FFFF}"));     // noncharacter
/// ```
#[inline]
pub fn is_valid_string(s: &str) -> bool {
    // Fast path: printable ASCII only, a word or 16 bytes at a time.
    let Some(start) = crate::swar::printable_until(s.as_bytes()) else {
        return true;
    };
    // `start` is a char boundary: everything before it is ASCII.
    s.get(start..).unwrap_or(s).chars().all(|c| {
        let u = c as u32;
        !(u < 0x20
            || (0x7f..=0x9f).contains(&u)
            || (0xfdd0..=0xfdef).contains(&u)
            || (u & 0xfffe) == 0xfffe)
    })
}

/// The value of an extension attribute, in one of the CloudEvents types.
///
/// ```
/// use ossa_events_core::{format::json, Event, ExtValue, Timestamp};
/// let deadline = Timestamp::parse("2026-01-01T00:00:00Z")?;
/// let ev = Event::builder().id("1").source("/s").ty("t")
///     .extension("retries", ExtValue::Integer(2))
///     .extension("urgent", ExtValue::Boolean(true))
///     .extension("deadline", ExtValue::Timestamp(deadline))
///     .build()?;
/// let mut buf = [0u8; 256];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""retries":2,"urgent":true,"deadline":"2026-01-01T00:00:00Z"}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtValue<'a> {
    /// `String`
    String(&'a str),
    /// `Integer` (32-bit signed)
    Integer(i32),
    /// `Boolean`
    Boolean(bool),
    /// `URI` (absolute)
    Uri(&'a str),
    /// `URI-reference` (RFC 3986 §4.1, which includes the empty reference)
    UriRef(&'a str),
    /// `Timestamp`
    Timestamp(Timestamp),
    /// `Binary`, written as Base64
    Binary(&'a [u8]),
}

impl<'a> ExtValue<'a> {
    /// Checks the value against its type's rules.
    ///
    /// ```
    /// use ossa_events_core::{ExtValue, Rule};
    /// assert!(ExtValue::Uri("https://example.com/policy").validate("policy").is_ok());
    /// let err = ExtValue::Uri("/policy").validate("policy").unwrap_err();
    /// assert_eq!((err.attribute.name(), err.rule), ("policy", Rule::NotAbsoluteUri));
    /// let err = ExtValue::Uri("https://example.com/p#v2").validate("policy").unwrap_err();
    /// assert_eq!(err.rule, Rule::UriFragment);
    /// assert!(ExtValue::UriRef("").validate("base").is_ok()); // the empty reference
    /// ```
    pub fn validate(&self, name: &str) -> Result<(), ValidationError> {
        if matches!(
            name,
            crate::trace::EXT_TRACEPARENT | crate::trace::EXT_TRACESTATE
        ) {
            check_trace_ext(name, self)?;
        }
        let rule = match self {
            ExtValue::String(s) if !is_valid_string(s) => Rule::InvalidCharacter,
            ExtValue::Uri(s) => match crate::uri::absolute_uri_rule(s) {
                Some(rule) => rule,
                None => return Ok(()),
            },
            // `is_uri_reference` refuses "" for `source`, which must not be
            // empty; the type itself allows it.
            ExtValue::UriRef(s) if !s.is_empty() && !crate::uri::is_uri_reference_rt(s) => {
                Rule::NotUriReference
            }
            _ => return Ok(()),
        };
        Err(ValidationError::new(Attribute::named(name), rule))
    }

    /// The value as a string when it is held as one (String, URI, URI-reference).
    ///
    /// ```
    /// use ossa_events_core::ExtValue;
    /// assert_eq!(ExtValue::UriRef("/agents/a").as_str(), Some("/agents/a"));
    /// assert_eq!(ExtValue::Integer(7).as_str(), None); // use `canonical` for the text form
    /// ```
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            ExtValue::String(s) | ExtValue::Uri(s) | ExtValue::UriRef(s) => Some(s),
            _ => None,
        }
    }

    /// The canonical string encoding of the value (Base64 for Binary, RFC 3339 for Timestamp).
    ///
    /// ```
    /// use ossa_events_core::ExtValue;
    /// assert_eq!(ExtValue::Integer(-42).canonical().to_string(), "-42");
    /// assert_eq!(ExtValue::Binary(b"hi").canonical().to_string(), "aGk=");
    /// ```
    pub fn canonical(&self) -> Canonical<'a> {
        Canonical(*self)
    }

    /// Writes the canonical string encoding of the value.
    ///
    /// ```
    /// use ossa_events_core::{io::SliceWriter, ExtValue, Timestamp};
    /// let mut buf = [0u8; Timestamp::MAX_LEN];
    /// let mut w = SliceWriter::new(&mut buf);
    /// ExtValue::Timestamp(Timestamp::UNIX_EPOCH).write_canonical(&mut w)?;
    /// assert_eq!(w.written(), b"1970-01-01T00:00:00Z");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_canonical<W: embedded_io::Write + ?Sized>(
        &self,
        w: &mut W,
    ) -> Result<(), crate::io::WriteError<W::Error>> {
        use crate::io::write_all;
        match self {
            ExtValue::String(s) | ExtValue::Uri(s) | ExtValue::UriRef(s) => {
                write_all(w, s.as_bytes())
            }
            ExtValue::Integer(i) => {
                let mut buf = [0u8; 11];
                write_all(w, fmt_i32(*i, &mut buf))
            }
            ExtValue::Boolean(b) => write_all(w, if *b { b"true" } else { b"false" }),
            ExtValue::Timestamp(t) => t.write_ascii(w),
            ExtValue::Binary(b) => crate::base64::encode_to(b, w).map_err(|e| match e {
                crate::base64::EncodeToError::Write(e) => crate::io::WriteError::Io(e),
                _ => crate::io::WriteError::WriteZero,
            }),
        }
    }

    /// Whether two values have the same canonical string encoding (how binary
    /// modes, which carry every value as a string, compare them).
    ///
    /// ```
    /// use ossa_events_core::ExtValue;
    /// assert!(ExtValue::Integer(7).canonical_eq(&ExtValue::String("7")));
    /// assert!(ExtValue::Binary(b"hi").canonical_eq(&ExtValue::String("aGk=")));
    /// assert!(!ExtValue::Boolean(true).canonical_eq(&ExtValue::String("True")));
    /// assert_ne!(ExtValue::Integer(7), ExtValue::String("7")); // `==` compares types too
    /// ```
    pub fn canonical_eq(&self, other: &ExtValue<'_>) -> bool {
        match (self, other) {
            (ExtValue::Binary(a), ExtValue::Binary(b)) => a == b,
            (ExtValue::Binary(a), b) | (b, ExtValue::Binary(a)) => match b.as_str() {
                Some(s) => crate::base64::decoded_eq(s.as_bytes(), a),
                None => false,
            },
            (a, b) => {
                let mut ca = CanonBuf::new();
                let mut cb = CanonBuf::new();
                match (a.as_str(), b.as_str()) {
                    (Some(x), Some(y)) => x == y,
                    (Some(x), None) => {
                        let _ = b.write_canonical(&mut cb);
                        cb.as_bytes() == x.as_bytes()
                    }
                    (None, Some(y)) => {
                        let _ = a.write_canonical(&mut ca);
                        ca.as_bytes() == y.as_bytes()
                    }
                    (None, None) => {
                        let _ = a.write_canonical(&mut ca);
                        let _ = b.write_canonical(&mut cb);
                        ca.as_bytes() == cb.as_bytes()
                    }
                }
            }
        }
    }
}

/// Small buffer for the canonical form of non-string values (Integer, Boolean, Timestamp).
struct CanonBuf {
    buf: [u8; Timestamp::MAX_LEN],
    len: usize,
}

impl CanonBuf {
    fn new() -> Self {
        CanonBuf {
            buf: [0; Timestamp::MAX_LEN],
            len: 0,
        }
    }
    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl embedded_io::ErrorType for CanonBuf {
    type Error = crate::io::SliceFull;
}

impl embedded_io::Write for CanonBuf {
    fn write(&mut self, data: &[u8]) -> Result<usize, Self::Error> {
        let end = self.len + data.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(crate::io::SliceFull)?;
        dst.copy_from_slice(data);
        self.len = end;
        Ok(data.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Display adapter for [`ExtValue::canonical`].
///
/// ```
/// use core::fmt::Write;
/// use ossa_events_core::{heapless, ExtValue};
/// // No allocator needed: format into a fixed-capacity string.
/// let mut s = heapless::String::<16>::new();
/// write!(s, "{}", ExtValue::Boolean(false).canonical())?;
/// assert_eq!(s, "false");
/// # Ok::<(), core::fmt::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Canonical<'a>(ExtValue<'a>);

impl fmt::Display for Canonical<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ExtValue::String(s) | ExtValue::Uri(s) | ExtValue::UriRef(s) => f.write_str(s),
            ExtValue::Integer(i) => write!(f, "{i}"),
            ExtValue::Boolean(b) => f.write_str(if b { "true" } else { "false" }),
            ExtValue::Timestamp(t) => fmt::Display::fmt(&t, f),
            ExtValue::Binary(b) => {
                for chunk in b.chunks(48) {
                    let mut buf = [0u8; 64];
                    let n = crate::base64::encode_to_slice(chunk, &mut buf).ok_or(fmt::Error)?;
                    let s = core::str::from_utf8(buf.get(..n).ok_or(fmt::Error)?)
                        .map_err(|_| fmt::Error)?;
                    f.write_str(s)?;
                }
                Ok(())
            }
        }
    }
}

/// Formats an `i32` into `buf`, returning the digits.
#[inline]
pub(crate) fn fmt_i32(v: i32, buf: &mut [u8; 11]) -> &[u8] {
    // 10 digits and a sign fit in 11 bytes; `get_mut` rather than indexing
    // keeps a panic (and the formatting it links) out of firmware.
    let neg = v < 0;
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    if neg && i > 0 {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'-';
        }
    }
    buf.get(i..).unwrap_or(&[])
}

/// An extension attribute: a name and a typed value.
///
/// ```
/// use ossa_events_core::{Event, ExtValue, Extension};
/// let ev = Event::builder().id("1").source("/s").ty("t").extension("priority", ExtValue::Integer(1)).build()?;
/// assert_eq!(ev.extensions(), [Extension { name: "priority", value: ExtValue::Integer(1) }]);
/// # Ok::<(), ossa_events_core::ValidationError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The attribute name (`[a-z0-9]+`, not reserved).
    pub name: &'a str,
    /// The value.
    pub value: ExtValue<'a>,
}

/// How many extension attributes an [`crate::Event`] holds at most.
pub const MAX_EXTENSIONS: usize = 16;

/// The fixed-capacity list of an event's extensions.
pub type Extensions<'a> = heapless::Vec<Extension<'a>, MAX_EXTENSIONS>;

/// The distributed-tracing extension's attributes are Strings in W3C form
/// (kept out of line: most events have neither).
#[inline(never)]
fn check_trace_ext(name: &str, value: &ExtValue<'_>) -> Result<(), ValidationError> {
    let ExtValue::String(s) = value else {
        return Err(ValidationError::new(
            Attribute::named(name),
            Rule::WrongType,
        ));
    };
    let r = if name == crate::trace::EXT_TRACEPARENT {
        crate::trace::TraceParent::parse(s)
            .map(|_| ())
            .map_err(Rule::InvalidTraceParent)
    } else {
        crate::trace::check_tracestate(s).map_err(Rule::InvalidTraceState)
    };
    r.map_err(|rule| ValidationError::new(Attribute::named(name), rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("ossaagentid"));
        assert!(is_valid_name("a1"));
        assert!(is_valid_name("1a"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("Agent"));
        assert!(!is_valid_name("agent_id"));
        assert!(!is_valid_name("agent-id"));
        assert!(!is_valid_name("ägent"));
        assert_eq!(
            check_extension_name("data").unwrap_err().rule,
            Rule::ReservedName
        );
        assert_eq!(
            check_extension_name("time").unwrap_err().rule,
            Rule::ReservedName
        );
        assert_eq!(
            check_extension_name("Foo").unwrap_err().rule,
            Rule::InvalidName
        );
    }

    #[test]
    fn strings() {
        assert!(is_valid_string("plain ascii ~"));
        assert!(is_valid_string("é€😀"));
        assert!(!is_valid_string("a\nb"));
        assert!(!is_valid_string("\u{0}"));
        assert!(!is_valid_string("\u{7f}"));
        assert!(!is_valid_string("\u{85}"));
        assert!(is_valid_string("\u{a0}"));
        assert!(!is_valid_string("\u{fdd0}"));
        assert!(!is_valid_string("\u{fffe}"));
        assert!(!is_valid_string("\u{1ffff}"));
        assert!(!is_valid_string("\u{10ffff}"));
        assert!(is_valid_string("\u{fffd}"));
    }

    #[test]
    fn integers_format() {
        let mut b = [0u8; 11];
        for v in [0, 5, -5, i32::MIN, i32::MAX, 1234567] {
            assert_eq!(fmt_i32(v, &mut b), v.to_string().as_bytes());
        }
    }

    #[test]
    fn canonical_equality_crosses_types() {
        assert!(ExtValue::Integer(5).canonical_eq(&ExtValue::String("5")));
        assert!(!ExtValue::Integer(5).canonical_eq(&ExtValue::String("05")));
        assert!(ExtValue::Boolean(true).canonical_eq(&ExtValue::String("true")));
        assert!(ExtValue::Binary(b"foo").canonical_eq(&ExtValue::String("Zm9v")));
        assert!(ExtValue::Uri("http://x").canonical_eq(&ExtValue::String("http://x")));
        assert_eq!(
            ExtValue::Binary(b"foob").canonical().to_string(),
            "Zm9vYg=="
        );
    }
}
