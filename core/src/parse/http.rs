//! HTTP messages: content-mode detection from `Content-Type`, binary mode
//! (`ce-` headers, percent-decoded), structured and batched modes.
//!
//! ```
//! use ossa_events_core::{parse::http, Scratch};
//! let headers: [(&str, &[u8]); 5] = [
//!     ("ce-specversion", b"1.0"),
//!     ("ce-type", b"com.example.someevent"),
//!     ("ce-id", b"1234-1234-1234"),
//!     ("ce-source", b"/mycontext/subcontext"),
//!     ("Content-Type", b"application/json"),
//! ];
//! let body = br#"{"message":"Hello World!"}"#;
//! let mut buf = [0u8; 256];
//! match http::parse(headers, body, &mut Scratch::new(&mut buf))? {
//!     http::Message::Event(ev) => assert_eq!(ev.id(), "1234-1234-1234"),
//!     _ => unreachable!("binary mode"),
//! }
//! # Ok::<(), ossa_events_core::ParseError>(())
//! ```

use crate::error::{Attribute, ParseError, Rule, ValidationError};
use crate::event::Event;
use crate::parse::json::BatchParser;
use crate::scratch::Scratch;
use crate::uri::starts_with_ignore_ascii_case;

use super::binary::{BinaryReader, body_data, lower_name};

/// How an HTTP message carries its event(s), from its `Content-Type`.
///
/// ```
/// use ossa_events_core::parse::http::{content_mode, ContentMode};
/// assert_eq!(content_mode(Some("application/cloudevents+json; charset=utf-8"))?, ContentMode::Structured);
/// assert_eq!(content_mode(Some("application/cloudevents-batch+json"))?, ContentMode::Batched);
/// assert_eq!(content_mode(Some("text/plain"))?, ContentMode::Binary);
/// # Ok::<(), ossa_events_core::ParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentMode {
    /// Attributes in `ce-` headers, data in the body.
    Binary,
    /// One event in the body (`application/cloudevents+json`).
    Structured,
    /// A JSON batch in the body (`application/cloudevents-batch+json`).
    Batched,
}

/// The content mode that `content_type` selects (HTTP binding §3): prefix
/// `application/cloudevents-batch` → batched, `application/cloudevents` →
/// structured, anything else or none → binary. An event format other than
/// JSON (e.g. `application/cloudevents+avro`) is [`ParseError::UnsupportedFormat`].
///
/// ```
/// use ossa_events_core::{parse::http::{content_mode, ContentMode}, ParseError};
/// assert_eq!(content_mode(None)?, ContentMode::Binary);
/// assert_eq!(content_mode(Some("Application/CloudEvents+JSON"))?, ContentMode::Structured);
/// assert_eq!(content_mode(Some("application/cloudevents+avro")), Err(ParseError::UnsupportedFormat));
/// # Ok::<(), ossa_events_core::ParseError>(())
/// ```
pub fn content_mode(content_type: Option<&str>) -> Result<ContentMode, ParseError> {
    let Some(ct) = content_type else {
        return Ok(ContentMode::Binary);
    };
    let ct = ct.trim_start_matches([' ', '\t']);
    let (mode, rest) = if starts_with_ignore_ascii_case(ct, "application/cloudevents-batch") {
        (
            ContentMode::Batched,
            ct.get("application/cloudevents-batch".len()..),
        )
    } else if starts_with_ignore_ascii_case(ct, "application/cloudevents") {
        (
            ContentMode::Structured,
            ct.get("application/cloudevents".len()..),
        )
    } else {
        return Ok(ContentMode::Binary);
    };
    let rest = rest.unwrap_or("");
    let format = rest
        .split(';')
        .next()
        .unwrap_or("")
        .trim_matches([' ', '\t']);
    if format.is_empty() || format.eq_ignore_ascii_case("+json") {
        Ok(mode)
    } else {
        Err(ParseError::UnsupportedFormat)
    }
}

/// What an HTTP message holds.
///
/// ```
/// use ossa_events_core::{parse::http, Scratch};
/// let body = br#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"}]"#;
/// let headers: [(&str, &[u8]); 1] = [("content-type", b"application/cloudevents-batch+json")];
/// let mut buf = [0u8; 128];
/// let mut n = 0;
/// match http::parse(headers, body, &mut Scratch::new(&mut buf))? {
///     http::Message::Event(_) => unreachable!("batched mode"),
///     http::Message::Batch(mut events) => {
///         let mut scratch = [0u8; 128];
///         while let Some(ev) = events.next_event(&mut scratch) {
///             ev?;
///             n += 1;
///         }
///     }
///     _ => {} // `#[non_exhaustive]`
/// }
/// assert_eq!(n, 1);
/// # Ok::<(), ossa_events_core::ParseError>(())
/// ```
// An event is the common case and no_std has no Box: the size gap is accepted.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum Message<'a> {
    /// One event (binary or structured mode).
    Event(Event<'a>),
    /// A batch, read event by event.
    Batch(BatchParser<'a>),
}

/// Parses an HTTP request or response from its headers and body, in whichever
/// content mode its `Content-Type` selects. A message with two
/// `Content-Type`s is refused in every mode (`datacontenttype`
/// [`Rule::Duplicate`]).
///
/// ```
/// use ossa_events_core::{parse::http, Scratch};
/// let headers: [(&str, &[u8]); 1] = [("Content-Type", b"application/cloudevents+json")];
/// let body = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"ok":true}}"#;
/// let mut buf = [0u8; 128];
/// let http::Message::Event(ev) = http::parse(headers, body, &mut Scratch::new(&mut buf))? else {
///     unreachable!("structured mode");
/// };
/// assert_eq!(ev.data_is_json(), true);
/// # Ok::<(), ossa_events_core::ParseError>(())
/// ```
pub fn parse<'a, I>(
    headers: I,
    body: &'a [u8],
    scratch: &mut Scratch<'a>,
) -> Result<Message<'a>, ParseError>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
    I::IntoIter: Clone,
{
    let headers = headers.into_iter();
    let mut types = headers
        .clone()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    let ct = types.next().map(|(_, v)| v);
    // Of two, the first would pick the content mode (a proxy may read the
    // other): refused in every mode, as binary mode refuses them.
    if types.next().is_some() {
        return Err(ValidationError::new(Attribute::DataContentType, Rule::Duplicate).into());
    }
    parse_with_content_type(ct, headers, body, scratch)
}

/// [`parse`] for headers that can be walked only once (a map's iterator that
/// is not `Clone`): the caller looks up the raw `Content-Type` value (the
/// first one), which selects the content mode.
///
/// ```
/// use ossa_events_core::{parse::http, Scratch};
/// let headers: Vec<(&str, &[u8])> = vec![("content-type", b"application/cloudevents+json")];
/// let body = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;
/// let mut buf = [0u8; 64];
/// let ct = Some(&b"application/cloudevents+json"[..]);
/// let msg = http::parse_with_content_type(ct, headers, body, &mut Scratch::new(&mut buf))?;
/// assert!(matches!(msg, http::Message::Event(ev) if ev.id() == "1"));
/// # Ok::<(), ossa_events_core::ParseError>(())
/// ```
pub fn parse_with_content_type<'a, I>(
    content_type: Option<&'a [u8]>,
    headers: I,
    body: &'a [u8],
    scratch: &mut Scratch<'a>,
) -> Result<Message<'a>, ParseError>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let ct = match content_type {
        Some(v) => Some(
            core::str::from_utf8(v)
                .map_err(|_| ParseError::InvalidHeader)?
                .trim_matches([' ', '\t']),
        ),
        None => None,
    };
    match content_mode(ct)? {
        ContentMode::Structured => Ok(Message::Event(super::json::parse_event(body, scratch)?)),
        ContentMode::Batched => Ok(Message::Batch(BatchParser::new(body)?)),
        ContentMode::Binary => Ok(Message::Event(parse_binary(headers, body, scratch)?)),
    }
}

/// Parses a binary-mode message: `ce-` headers (names case-insensitive, values
/// unquoted then percent-decoded), `Content-Type` as `datacontenttype`, the
/// body as data. Other headers are ignored.
///
/// ```
/// use ossa_events_core::{parse::http, Attribute, ParseError, Rule, Scratch};
/// let headers: [(&str, &[u8]); 5] = [
///     ("CE-SpecVersion", b"1.0"),
///     ("ce-id", b"1"),
///     ("ce-source", b"/s"),
///     ("ce-type", b"t"),
///     ("ce-subject", b"Gr%C3%BC%C3%9Fe"), // percent-decoded into the scratch buffer
/// ];
/// let mut buf = [0u8; 64];
/// let ev = http::parse_binary(headers, b"", &mut Scratch::new(&mut buf))?;
/// assert_eq!(ev.subject(), Some("Grüße"));
/// let bad: [(&str, &[u8]); 1] = [("ce-subject", b"%zz")];
/// let err = http::parse_binary(bad, b"", &mut Scratch::new(&mut [0u8; 64])).unwrap_err();
/// assert!(matches!(err, ParseError::Invalid(v) if v.attribute == Attribute::Subject && v.rule == Rule::InvalidEncoding));
/// # Ok::<(), ossa_events_core::ParseError>(())
/// ```
pub fn parse_binary<'a, I>(
    headers: I,
    body: &'a [u8],
    scratch: &mut Scratch<'a>,
) -> Result<Event<'a>, ParseError>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let mut r = BinaryReader::new();
    let mut ct = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-type") {
            if ct.is_some() {
                return Err(
                    ValidationError::new(Attribute::DataContentType, Rule::Duplicate).into(),
                );
            }
            // An HTTP field value excludes the whitespace around it (RFC 9110
            // §5.5): `Content-Type: text/plain ` carries `text/plain`.
            ct = Some(
                core::str::from_utf8(value)
                    .map_err(|_| ParseError::InvalidHeader)?
                    .trim_matches([' ', '\t']),
            );
            continue;
        }
        let Some(attr) = strip_prefix_ci(name, "ce-") else {
            continue;
        };
        let attr = lower_name(attr, scratch)?;
        if attr == "datacontenttype" {
            return Err(ValidationError::new(
                Attribute::DataContentType,
                Rule::NotAllowedInBinaryMode,
            )
            .into());
        }
        let value = decode_value(value, scratch).map_err(|e| match e {
            DecodeError::Scratch => ParseError::ScratchFull,
            DecodeError::Invalid => ParseError::Invalid(ValidationError::new(
                Attribute::named(attr),
                Rule::InvalidEncoding,
            )),
        })?;
        r.set(attr, value)?;
    }
    let data = body_data(ct, body)?;
    Ok(r.finish(ct, data)?)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if starts_with_ignore_ascii_case(s, prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

enum DecodeError {
    Invalid,
    Scratch,
}

impl From<crate::scratch::ScratchFull> for DecodeError {
    fn from(_: crate::scratch::ScratchFull) -> Self {
        DecodeError::Scratch
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Undoes RFC 7230 quoting, then one round of percent-decoding (HTTP
/// binding §3.1.3.2); the result must be UTF-8. A value that starts with a
/// quoted-string is read as quoted-strings and the text between them
/// (`"a b"c` is `a bc`, as sdk-csharp reads it); a quoted-string left open
/// (`"a`, `"a"b"`) is invalid. A `"` further in a value that does not start
/// with one is kept: senders that do not percent-encode `"` (cloudevents-sdk
/// 0.9) send it as it is.
fn decode_value<'a>(raw: &'a [u8], scratch: &mut Scratch<'a>) -> Result<&'a str, DecodeError> {
    let raw = trim_ows(raw);
    let quoting = raw.first() == Some(&b'"');
    if !quoting && !raw.contains(&b'%') {
        return core::str::from_utf8(raw).map_err(|_| DecodeError::Invalid);
    }
    let mut piece = scratch.piece();
    let mut i = 0;
    let mut quoted = false;
    // The byte stream after unquoting, percent-decoded as it goes.
    let mut next_unquoted = |i: &mut usize| -> Result<Option<u8>, DecodeError> {
        loop {
            let Some(&b) = raw.get(*i) else {
                // The end; inside a quoted-string, it was left open.
                return if quoted {
                    Err(DecodeError::Invalid)
                } else {
                    Ok(None)
                };
            };
            *i += 1;
            match b {
                b'"' if quoting => quoted = !quoted,
                b'\\' if quoted => {
                    let &e = raw.get(*i).ok_or(DecodeError::Invalid)?;
                    *i += 1;
                    if e == b'\t' || e >= 0x20 && e != 0x7f {
                        return Ok(Some(e));
                    }
                    return Err(DecodeError::Invalid);
                }
                _ => return Ok(Some(b)),
            }
        }
    };
    while let Some(b) = next_unquoted(&mut i)? {
        if b == b'%' {
            let h = next_unquoted(&mut i)?
                .and_then(hex)
                .ok_or(DecodeError::Invalid)?;
            let l = next_unquoted(&mut i)?
                .and_then(hex)
                .ok_or(DecodeError::Invalid)?;
            piece.push_byte(h << 4 | l)?;
        } else {
            piece.push_byte(b)?;
        }
    }
    let bytes = piece.finish();
    core::str::from_utf8(bytes).map_err(|_| DecodeError::Invalid)
}

fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<String, ()> {
        let mut buf = [0u8; 256];
        let mut sc = Scratch::new(&mut buf);
        decode_value(s.as_bytes(), &mut sc)
            .map(|s| s.to_string())
            .map_err(|_| ())
    }

    /// Two `Content-Type`s: the first picked the content mode, so a
    /// structured event with a second type behind it was taken, while the
    /// same two the other way round were refused (binary mode saw the
    /// duplicate).
    #[test]
    fn two_content_types_are_refused_in_every_mode() {
        let event = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;
        for types in [
            ["application/cloudevents+json", "text/plain"],
            ["application/cloudevents-batch+json", "text/plain"],
            ["text/plain", "application/cloudevents+json"],
        ] {
            let headers: [(&str, &[u8]); 6] = [
                ("content-type", types[0].as_bytes()),
                ("ce-specversion", b"1.0"),
                ("ce-id", b"1"),
                ("ce-source", b"/s"),
                ("Content-Type", types[1].as_bytes()),
                ("ce-type", b"t"),
            ];
            let mut buf = [0u8; 256];
            let got = parse(headers, event, &mut Scratch::new(&mut buf)).map(|_| ());
            let want = ValidationError::new(Attribute::DataContentType, Rule::Duplicate);
            assert_eq!(got, Err(ParseError::Invalid(want)), "{types:?}");
        }
    }

    /// A binary body under a `charset` that reads its bytes as other text
    /// than UTF-8 stays bytes. A `charset` given twice (an error, RFC 6838
    /// §4.3) is read by peers as either one (Python's `email` takes the
    /// first, others the last): `h\0i\0` is `hi` under the UTF-16 one, so
    /// it is bytes too, whichever comes first.
    #[test]
    fn body_under_a_charset_that_reads_it_otherwise_stays_bytes() {
        for (ct, text) in [
            ("text/plain; charset=utf-16", false),
            ("text/plain; charset=utf-16; charset=utf-8", false),
            ("text/plain; charset=utf-8; charset=utf-16", false),
            ("text/plain; charset=utf-8; Charset=\"UTF-16LE\"", false),
            ("text/plain; charset=utf-8; charset=us-ascii", true),
            ("text/plain; charset=utf-8", true),
        ] {
            let headers: [(&str, &[u8]); 5] = [
                ("content-type", ct.as_bytes()),
                ("ce-specversion", b"1.0"),
                ("ce-id", b"1"),
                ("ce-source", b"/s"),
                ("ce-type", b"t"),
            ];
            let mut buf = [0u8; 256];
            let ev = parse_binary(headers, b"h\0i\0", &mut Scratch::new(&mut buf)).unwrap();
            let got = ev.data();
            if text {
                assert!(
                    matches!(got, Some(crate::Data::Text("h\0i\0"))),
                    "{ct}: {got:?}"
                );
            } else {
                assert!(
                    matches!(got, Some(crate::Data::Binary(b"h\0i\0"))),
                    "{ct}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn percent_and_quotes() {
        assert_eq!(dec("Euro%20%E2%82%AC%20%F0%9F%98%80").unwrap(), "Euro € 😀");
        assert_eq!(dec("%e2%82%ac").unwrap(), "€");
        assert_eq!(dec("%41bc").unwrap(), "Abc");
        assert_eq!(dec("\"quoted value\"").unwrap(), "quoted value");
        assert_eq!(dec("\"a\\\"b\"").unwrap(), "a\"b");
        assert_eq!(dec("\"100%25\"").unwrap(), "100%");
        assert_eq!(dec("  padded  ").unwrap(), "padded");
        assert!(dec("%C0%A0").is_err(), "overlong encoding must be rejected");
        assert!(dec("%FF").is_err());
        assert!(dec("%4").is_err());
        assert!(dec("%zz").is_err());
        assert!(dec("\"unterminated").is_err());
        assert!(dec("\"a\"b\"").is_err());
        assert_eq!(dec("\"a b\"c").unwrap(), "a bc");
        assert_eq!(dec("\"a\" \"b\"").unwrap(), "a b");
        assert_eq!(dec("x \"y\"").unwrap(), "x \"y\"");
    }

    #[test]
    fn modes() {
        use ContentMode::*;
        assert_eq!(content_mode(None).unwrap(), Binary);
        assert_eq!(content_mode(Some("application/json")).unwrap(), Binary);
        assert_eq!(
            content_mode(Some("application/cloudevents+json")).unwrap(),
            Structured
        );
        assert_eq!(
            content_mode(Some("Application/CloudEvents+JSON; charset=utf-8")).unwrap(),
            Structured
        );
        assert_eq!(
            content_mode(Some("application/cloudevents-batch+json")).unwrap(),
            Batched
        );
        assert_eq!(
            content_mode(Some("application/cloudevents+avro")),
            Err(ParseError::UnsupportedFormat)
        );
    }
}
