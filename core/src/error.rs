//! Errors: which attribute broke which rule, why encoding or parsing failed.

use core::fmt;

use crate::base64::Base64Error;
use crate::json::lex::JsonError;
use crate::json::ser::SerError;
use crate::time::TimeError;

/// Longest extension name kept in an error (longer names are cut, marked with `…`).
pub const MAX_ERROR_NAME: usize = 32;

/// The attribute (or data member) that an error is about.
///
/// ```
/// use ossa_events_core::{Attribute, Event, ExtValue, Rule};
/// let err = Event::builder().id("1").source("/s").ty("t")
///     .extension("deadline", ExtValue::Uri("tomorrow"))
///     .build().unwrap_err();
/// assert_eq!(err.attribute, Attribute::named("deadline"));
/// assert!(matches!(&err.attribute, Attribute::Extension(name) if name == "deadline"));
/// assert_eq!(err.rule, Rule::NotAbsoluteUri);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Attribute {
    /// `id`
    Id,
    /// `source`
    Source,
    /// `specversion`
    SpecVersion,
    /// `type`
    Type,
    /// `datacontenttype`
    DataContentType,
    /// `dataschema`
    DataSchema,
    /// `subject`
    Subject,
    /// `time`
    Time,
    /// the `data` member
    Data,
    /// the `data_base64` member
    DataBase64,
    /// an extension attribute, by name (cut to [`MAX_ERROR_NAME`] bytes)
    Extension(heapless::String<MAX_ERROR_NAME>),
}

impl Attribute {
    /// The attribute for `name`: a core attribute when it is one, else an extension.
    ///
    /// ```
    /// use ossa_events_core::Attribute;
    /// assert_eq!(Attribute::named("time"), Attribute::Time);
    /// assert_eq!(Attribute::named("data_base64"), Attribute::DataBase64);
    /// assert_eq!(Attribute::named("ossaagentid").name(), "ossaagentid");
    /// // Long extension names are cut to fit the error.
    /// assert_eq!(Attribute::named(&"x".repeat(40)).name(), format!("{}…", "x".repeat(29)));
    /// ```
    pub fn named(name: &str) -> Attribute {
        // One table of names for both directions (smaller on a device than
        // two string `match`es; an error path, so the scan's cost is moot).
        match STANDARD.iter().position(|n| *n == name) {
            Some(0) => Attribute::Id,
            Some(1) => Attribute::Source,
            Some(2) => Attribute::SpecVersion,
            Some(3) => Attribute::Type,
            Some(4) => Attribute::DataContentType,
            Some(5) => Attribute::DataSchema,
            Some(6) => Attribute::Subject,
            Some(7) => Attribute::Time,
            Some(8) => Attribute::Data,
            Some(9) => Attribute::DataBase64,
            _ => Attribute::Extension(cut_name(name)),
        }
    }

    /// The attribute's name as it appears in the JSON format.
    ///
    /// ```
    /// use ossa_events_core::Attribute;
    /// assert_eq!(Attribute::DataContentType.name(), "datacontenttype");
    /// assert_eq!(Attribute::Type.to_string(), "type"); // Display is the name
    /// ```
    pub fn name(&self) -> &str {
        let i = match self {
            Attribute::Id => 0,
            Attribute::Source => 1,
            Attribute::SpecVersion => 2,
            Attribute::Type => 3,
            Attribute::DataContentType => 4,
            Attribute::DataSchema => 5,
            Attribute::Subject => 6,
            Attribute::Time => 7,
            Attribute::Data => 8,
            Attribute::DataBase64 => 9,
            Attribute::Extension(n) => return n.as_str(),
        };
        STANDARD.get(i).copied().unwrap_or("")
    }
}

/// The names of the context attributes and `data`/`data_base64`, in the
/// order of [`Attribute`]'s variants (the reserved names are that list;
/// `standard_names_map_both_ways` checks the order).
const STANDARD: [&str; 10] = crate::attr::RESERVED_NAMES;

fn cut_name(name: &str) -> heapless::String<MAX_ERROR_NAME> {
    let mut out = heapless::String::new();
    if name.len() <= MAX_ERROR_NAME {
        let _ = out.push_str(name);
        return out;
    }
    // Leave room for the 3-byte ellipsis; cut at a char boundary (slicing,
    // not a char-by-char copy: smaller on firmware).
    let mut cut = MAX_ERROR_NAME - 3;
    while !name.is_char_boundary(cut) {
        cut -= 1; // `is_char_boundary(0)` is true, so this stops
    }
    let _ = out.push_str(name.get(..cut).unwrap_or(""));
    let _ = out.push_str("…");
    out
}

/// The name, with each control character (a line break, an escape, C1)
/// written as its JSON escape (`\u001b`): an extension's name is the
/// input's text, and the message goes to terminals and logs, where such a
/// character would clear the screen or start a line the input wrote.
impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        let mut rest = name;
        while let Some(i) = rest.find(char::is_control) {
            f.write_str(rest.get(..i).unwrap_or(""))?;
            let c = rest.get(i..).and_then(|r| r.chars().next()).unwrap_or(' ');
            write!(f, "\\u{:04x}", u32::from(c))?;
            rest = rest.get(i + c.len_utf8()..).unwrap_or("");
        }
        f.write_str(rest)
    }
}

/// The rule of the CloudEvents specification that a value breaks.
///
/// ```
/// use ossa_events_core::{Event, Rule};
/// let err = Event::builder().id("1").source("/s").ty("t").subject("line\nbreak").build().unwrap_err();
/// assert_eq!(err.rule, Rule::InvalidCharacter);
/// assert_eq!(
///     err.to_string(),
///     "attribute `subject`: contains a control character or Unicode noncharacter, not allowed in a String"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// A REQUIRED attribute is absent (or `null`).
    Missing,
    /// The value is an empty string where a non-empty one is required.
    Empty,
    /// `specversion` is not `1.0`, the only version this crate speaks.
    UnsupportedSpecVersion,
    /// A String contains a control character (U+0000–U+001F, U+007F–U+009F) or a Unicode noncharacter.
    InvalidCharacter,
    /// Not a URI-reference (RFC 3986 §4.1).
    NotUriReference,
    /// Not an absolute URI (RFC 3986 §4.3: a scheme is required).
    NotAbsoluteUri,
    /// A URI with a fragment (`#…`) where the CloudEvents type `URI` is
    /// required: RFC 3986 §4.3 `absolute-URI` has no fragment.
    UriFragment,
    /// Not an RFC 3339 timestamp.
    InvalidTimestamp(TimeError),
    /// Not a media type (RFC 2046).
    NotMediaType,
    /// A media type with whitespace before or after it: RFC 9110 §8.3.1
    /// allows whitespace only around the `;` between parameters.
    MediaTypeWhitespace,
    /// An attribute name with characters other than `a`–`z` and `0`–`9`, or empty.
    InvalidName,
    /// An extension named like a core attribute or `data`.
    ReservedName,
    /// The attribute appears more than once.
    Duplicate,
    /// An Integer outside −2 147 483 648 ..= 2 147 483 647.
    IntegerOutOfRange,
    /// A JSON number with a fraction or exponent where an Integer is required.
    NotInteger,
    /// A JSON value of a type that the attribute cannot have (object, array, number for a String…).
    WrongType,
    /// Not valid Base64 (RFC 4648 §4).
    InvalidBase64(Base64Error),
    /// Data declared or given as JSON is not well-formed JSON.
    InvalidJson(JsonError),
    /// Both `data` and `data_base64` are present.
    DataConflict,
    /// JSON data (not a string) with a `datacontenttype` that is not JSON
    /// (JSON format §3.1: such data must be a string).
    DataNotString,
    /// More extensions than [`crate::MAX_EXTENSIONS`].
    TooManyExtensions,
    /// A header value that is not valid percent-encoding, quoting or UTF-8.
    InvalidEncoding,
    /// `ce-datacontenttype` given in binary mode, where `Content-Type` carries it.
    NotAllowedInBinaryMode,
    /// `traceparent` is not W3C Trace Context (or not a String).
    InvalidTraceParent(crate::trace::TraceContextError),
    /// `tracestate` is not W3C Trace Context (or not a String).
    InvalidTraceState(crate::trace::TraceContextError),
    /// `traceparent` names another trace or span than `ossatraceid` /
    /// `ossaspanid` (checked on events built, not on events parsed).
    TraceContextConflict,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Rule::Missing => "required attribute is missing",
            Rule::Empty => "must be a non-empty string",
            Rule::UnsupportedSpecVersion => "specversion must be \"1.0\"",
            Rule::InvalidCharacter => {
                "contains a control character or Unicode noncharacter, not allowed in a String"
            }
            Rule::NotUriReference => "must be a URI-reference (RFC 3986 section 4.1)",
            Rule::NotAbsoluteUri => "must be an absolute URI with a scheme (RFC 3986)",
            Rule::UriFragment => {
                "must be an absolute URI without a fragment (RFC 3986 section 4.3 absolute-URI)"
            }
            Rule::InvalidTimestamp(e) => return write!(f, "must be an RFC 3339 timestamp: {e}"),
            Rule::NotMediaType => "must be a media type (RFC 2046), e.g. application/json",
            Rule::MediaTypeWhitespace => {
                "must be a media type without leading or trailing whitespace (RFC 9110 section 8.3.1)"
            }
            Rule::InvalidName => "attribute names must be 1+ characters of a-z and 0-9",
            Rule::ReservedName => "name is reserved for a core attribute or data",
            Rule::Duplicate => "attribute appears more than once",
            Rule::IntegerOutOfRange => "Integer must be within -2147483648..=2147483647",
            Rule::NotInteger => "Integer must be a whole number without fraction or exponent",
            Rule::WrongType => "value has a type this attribute cannot have",
            Rule::InvalidBase64(e) => return write!(f, "must be Base64 (RFC 4648): {e}"),
            Rule::InvalidJson(e) => return write!(f, "must be well-formed JSON: {e}"),
            Rule::DataConflict => "data and data_base64 are mutually exclusive",
            Rule::DataNotString => {
                "data must be a string (or data_base64) when datacontenttype is not JSON"
            }
            Rule::TooManyExtensions => "too many extension attributes",
            Rule::InvalidEncoding => "invalid percent-encoding, quoting or UTF-8 in header value",
            Rule::NotAllowedInBinaryMode => {
                "must not be a ce- header in binary mode (Content-Type carries it)"
            }
            Rule::InvalidTraceParent(e) => {
                return write!(f, "must be a W3C traceparent: {e}");
            }
            Rule::InvalidTraceState(e) => return write!(f, "must be a W3C tracestate: {e}"),
            Rule::TraceContextConflict => {
                "traceparent must carry ossatraceid as its trace-id and ossaspanid as its parent-id"
            }
        };
        f.write_str(s)
    }
}

/// An event breaks a rule of the CloudEvents specification.
///
/// ```
/// use ossa_events_core::{Attribute, Event, Rule, ValidationError};
/// let err: ValidationError = Event::builder().id("1").source("/s").ty("t")
///     .datacontenttype("text").build().unwrap_err();
/// match (&err.attribute, err.rule) {
///     (Attribute::DataContentType, Rule::NotMediaType) => {}
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(err.to_string(), "attribute `datacontenttype`: must be a media type (RFC 2046), e.g. application/json");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The attribute at fault.
    pub attribute: Attribute,
    /// The rule it breaks.
    pub rule: Rule,
}

impl ValidationError {
    /// A new error for `attribute` breaking `rule`.
    ///
    /// ```
    /// use ossa_events_core::{Attribute, Rule, ValidationError};
    /// // For code that checks its own rules and reports them like the crate does.
    /// let err = ValidationError::new(Attribute::named("tenant"), Rule::Empty);
    /// assert_eq!(err.to_string(), "attribute `tenant`: must be a non-empty string");
    /// ```
    pub fn new(attribute: Attribute, rule: Rule) -> Self {
        ValidationError { attribute, rule }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attribute `{}`: {}", self.attribute, self.rule)
    }
}

impl core::error::Error for ValidationError {}

/// Why writing an event failed.
///
/// ```
/// use ossa_events_core::{format::json, io::SliceFull, EncodeError, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
/// let mut small = [0u8; 16];
/// // The slice writer fails cleanly instead of writing half an event.
/// assert_eq!(json::to_slice(&ev, &mut small), Err(EncodeError::Io(SliceFull)));
/// # Ok::<(), ossa_events_core::ValidationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError<E> {
    /// The writer returned an error.
    Io(E),
    /// The writer accepted zero bytes of a non-empty buffer.
    WriteZero,
    /// A `T: Serialize` data payload failed to serialize.
    Payload(PayloadError),
}

/// Why a `T: Serialize` payload could not be written as JSON.
///
/// ```
/// use std::collections::HashMap;
/// use ossa_events_core::{format::json, EncodeError, Event, PayloadError};
/// // JSON object keys must be strings; a tuple key cannot be written.
/// let counts: HashMap<(u8, u8), u32> = HashMap::from([((1, 2), 3)]);
/// let ev = Event::builder().id("1").source("/s").ty("t").data_serialize(&counts).build()?;
/// let mut buf = [0u8; 256];
/// let err = json::to_slice(&ev, &mut buf).unwrap_err();
/// assert_eq!(err, EncodeError::Payload(PayloadError::KeyMustBeString));
/// # Ok::<(), ossa_events_core::ValidationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadError {
    /// A map key that is not a string, integer, char or bool.
    KeyMustBeString,
    /// The payload's `Serialize` impl failed with this message (cut to 64 bytes).
    Custom(heapless::String<64>),
    /// The payload nests arrays and objects deeper than
    /// [`MAX_DATA_DEPTH`](crate::MAX_DATA_DEPTH), which no parser of this crate reads back.
    TooDeep,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::KeyMustBeString => f.write_str("map key must be a string"),
            PayloadError::Custom(m) => write!(f, "payload: {m}"),
            PayloadError::TooDeep => f.write_str("payload nested too deep"),
        }
    }
}

impl core::error::Error for PayloadError {}

impl<E> From<crate::io::WriteError<E>> for EncodeError<E> {
    fn from(e: crate::io::WriteError<E>) -> Self {
        match e {
            crate::io::WriteError::Io(e) => EncodeError::Io(e),
            crate::io::WriteError::WriteZero => EncodeError::WriteZero,
        }
    }
}

impl<E> From<SerError<E>> for EncodeError<E> {
    fn from(e: SerError<E>) -> Self {
        match e {
            SerError::Write(w) => w.into(),
            SerError::KeyMustBeString => EncodeError::Payload(PayloadError::KeyMustBeString),
            SerError::Custom(m) => EncodeError::Payload(PayloadError::Custom(m)),
            SerError::TooDeep => EncodeError::Payload(PayloadError::TooDeep),
        }
    }
}

impl<E: fmt::Debug> fmt::Display for EncodeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Io(e) => write!(f, "write failed: {e:?}"),
            EncodeError::WriteZero => f.write_str("writer accepted zero bytes"),
            EncodeError::Payload(p) => fmt::Display::fmt(p, f),
        }
    }
}

impl<E: fmt::Debug + core::error::Error + 'static> core::error::Error for EncodeError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            EncodeError::Io(e) => Some(e),
            EncodeError::Payload(p) => Some(p),
            EncodeError::WriteZero => None,
        }
    }
}

/// Why input could not be parsed into events.
///
/// ```
/// use ossa_events_core::{parse, Attribute, ParseError, Rule, Scratch};
/// let mut buf = [0u8; 64];
/// let err = parse::json::parse_event(br#"{"specversion":"0.3","id":"1"}"#, &mut Scratch::new(&mut buf))
///     .unwrap_err();
/// match err {
///     ParseError::Invalid(v) => assert_eq!((v.attribute, v.rule), (Attribute::SpecVersion, Rule::UnsupportedSpecVersion)),
///     other => panic!("unexpected {other}"),
/// }
/// let err = parse::json::parse_event(b"[1]", &mut Scratch::new(&mut buf)).unwrap_err();
/// assert_eq!(err, ParseError::NotAnObject);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is not well-formed JSON.
    Json(JsonError),
    /// The input is JSON but not a JSON object (an event must be one).
    NotAnObject,
    /// The input is JSON but not a JSON array (a batch must be one).
    NotAnArray,
    /// Element `index` of a batch is not a valid event.
    InBatch {
        /// Zero-based position of the element in the batch.
        index: usize,
        /// What is wrong with it (never itself `InBatch`).
        error: InBatchError,
    },
    /// The event breaks a CloudEvents rule.
    Invalid(ValidationError),
    /// The caller's scratch buffer is too small for the unescaped strings.
    ScratchFull,
    /// The input is larger than the limit the caller set.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The content type names a CloudEvents event format other than JSON (e.g. `application/cloudevents+avro`).
    UnsupportedFormat,
    /// A header name or value is not valid (not UTF-8, bad name).
    InvalidHeader,
}

/// What is wrong with one element of a batch.
///
/// ```
/// use ossa_events_core::{parse::json::BatchParser, InBatchError, ParseError};
/// let input = br#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"}, 42]"#;
/// let mut events = BatchParser::new(input)?;
/// let mut buf = [0u8; 64];
/// assert!(events.next_event(&mut buf).is_some_and(|r| r.is_ok()));
/// let err = events.next_event(&mut buf).and_then(Result::err);
/// assert_eq!(err, Some(ParseError::InBatch { index: 1, error: InBatchError::NotAnObject }));
/// # Ok::<(), ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InBatchError {
    /// The element is not a JSON object.
    NotAnObject,
    /// The element breaks a CloudEvents rule.
    Invalid(ValidationError),
    /// The scratch buffer is too small.
    ScratchFull,
}

impl fmt::Display for InBatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InBatchError::NotAnObject => f.write_str("not a JSON object"),
            InBatchError::Invalid(v) => fmt::Display::fmt(v, f),
            InBatchError::ScratchFull => f.write_str("scratch buffer too small"),
        }
    }
}

impl From<JsonError> for ParseError {
    fn from(e: JsonError) -> Self {
        ParseError::Json(e)
    }
}

impl From<ValidationError> for ParseError {
    fn from(e: ValidationError) -> Self {
        ParseError::Invalid(e)
    }
}

impl From<crate::scratch::ScratchFull> for ParseError {
    fn from(_: crate::scratch::ScratchFull) -> Self {
        ParseError::ScratchFull
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Json(e) => fmt::Display::fmt(e, f),
            ParseError::NotAnObject => f.write_str("an event must be a JSON object"),
            ParseError::NotAnArray => f.write_str("a batch must be a JSON array of events"),
            ParseError::InBatch { index, error } => write!(f, "batch element {index}: {error}"),
            ParseError::Invalid(v) => fmt::Display::fmt(v, f),
            ParseError::ScratchFull => f.write_str("scratch buffer too small"),
            ParseError::TooLarge { limit } => write!(f, "input larger than {limit} bytes"),
            ParseError::UnsupportedFormat => {
                f.write_str("unsupported event format (only application/cloudevents+json)")
            }
            ParseError::InvalidHeader => f.write_str("invalid header name or value"),
        }
    }
}

impl core::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ParseError::Json(e) => Some(e),
            ParseError::Invalid(v) => Some(v),
            _ => None,
        }
    }
}

impl ParseError {
    /// The validation error inside, if the input broke a CloudEvents rule.
    ///
    /// ```
    /// use ossa_events_core::{parse, Attribute, Scratch};
    /// let mut buf = [0u8; 64];
    /// let err = parse::json::parse_event(br#"{"specversion":"1.0","id":"1","type":"t"}"#, &mut Scratch::new(&mut buf))
    ///     .unwrap_err();
    /// assert_eq!(err.validation().map(|v| &v.attribute), Some(&Attribute::Source));
    /// // Malformed JSON breaks no CloudEvents rule.
    /// let err = parse::json::parse_event(b"{", &mut Scratch::new(&mut buf)).unwrap_err();
    /// assert!(err.validation().is_none());
    /// ```
    pub fn validation(&self) -> Option<&ValidationError> {
        match self {
            ParseError::Invalid(v) => Some(v),
            ParseError::InBatch {
                error: InBatchError::Invalid(v),
                ..
            } => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_extension_names_are_cut_on_a_char_boundary() {
        let a = Attribute::named("éééééééééééééééééééééééééééééééééééé");
        assert!(a.name().ends_with('…'));
        assert!(a.name().len() <= MAX_ERROR_NAME);
        assert_eq!(Attribute::named("source"), Attribute::Source);
    }

    #[test]
    fn standard_names_map_both_ways() {
        let all = [
            (Attribute::Id, "id"),
            (Attribute::Source, "source"),
            (Attribute::SpecVersion, "specversion"),
            (Attribute::Type, "type"),
            (Attribute::DataContentType, "datacontenttype"),
            (Attribute::DataSchema, "dataschema"),
            (Attribute::Subject, "subject"),
            (Attribute::Time, "time"),
            (Attribute::Data, "data"),
            (Attribute::DataBase64, "data_base64"),
        ];
        for (a, n) in all {
            assert_eq!(a.name(), n);
            assert_eq!(Attribute::named(n), a);
        }
        // Case matters: not a context attribute, an extension name.
        assert_eq!(Attribute::named("ID").name(), "ID");
        assert!(matches!(Attribute::named("ID"), Attribute::Extension(_)));
        assert!(matches!(Attribute::named(""), Attribute::Extension(_)));
    }

    /// A name's control characters are shown escaped; its other
    /// characters, and its `name()`, as they are.
    #[test]
    fn display_escapes_control_characters_of_a_name() {
        let a = Attribute::named("\u{1b}[2J\né\u{85}x");
        assert_eq!(a.name(), "\u{1b}[2J\né\u{85}x");
        assert_eq!(a.to_string(), "\\u001b[2J\\u000aé\\u0085x");
        assert_eq!(Attribute::named("ossaagentid").to_string(), "ossaagentid");
    }

    #[test]
    fn errors_stay_small() {
        assert!(
            core::mem::size_of::<ParseError>() <= 80,
            "{}",
            core::mem::size_of::<ParseError>()
        );
    }

    #[test]
    fn display_names_attribute_and_rule() {
        let e = ValidationError::new(Attribute::Source, Rule::NotUriReference);
        assert_eq!(
            e.to_string(),
            "attribute `source`: must be a URI-reference (RFC 3986 section 4.1)"
        );
    }
}
