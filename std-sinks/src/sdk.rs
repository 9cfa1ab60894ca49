//! Conversions between our [`Event`] and the official CloudEvents Rust SDK's
//! [`cloudevents::Event`] (crate `cloudevents-sdk` 0.9), both ways.
//!
//! - [`to_sdk`] (or [`ToSdk::to_sdk`]) copies one of our borrowed events into
//!   an owned `cloudevents::Event`.
//! - [`from_sdk`] reads a `cloudevents::Event` as one of our events. The result
//!   borrows every string from the sdk event; only JSON `data`, which the sdk
//!   holds as a [`serde_json::Value`], is written into a `String` the caller
//!   lends (and may reuse for the next event). The result has passed every
//!   check of [`Event::validate`]; what the sdk accepts but the specification
//!   does not (an extension named `Foo_Bar` or `time`, an empty `id`, an
//!   Integer beyond 32 bits…) is a [`SdkError::Invalid`] naming the attribute.
//!   Like our parsers, it does not ask a `traceparent` to agree with
//!   `ossatraceid` and `ossaspanid` ([`Rule::TraceContextConflict`] is for
//!   events built here).
//!
//! Orphan rules keep us from writing `TryFrom` between the two types here (our
//! `Event` belongs to `ossa-events-core`, theirs to `cloudevents-sdk`), hence
//! the functions and the extension trait. The sdk crate is re-exported as
//! [`cloudevents`] so that callers name the same version.
//!
//! ```
//! use ossa_events::sdk::{cloudevents::AttributesReader, from_sdk, ToSdk};
//! use ossa_events::{Event, ExtValue};
//!
//! let ours = Event::builder()
//!     .id("1")
//!     .source("/agents/researcher")
//!     .ty("dev.ossa.tool.called")
//!     .time_str("2018-04-05T17:31:00Z")
//!     .extension("attempt", ExtValue::Integer(2))
//!     .data_json(r#"{"tool":"web_search"}"#)
//!     .build()?;
//! let theirs = ours.to_sdk()?;
//! assert_eq!(theirs.ty(), "dev.ossa.tool.called");
//!
//! let mut scratch = String::new();
//! let back = from_sdk(&theirs, &mut scratch)?;
//! assert!(back.same_as(&ours, true));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Mapping
//!
//! | ours | `cloudevents::Event` | notes |
//! | --- | --- | --- |
//! | `id`, `type`, `subject` | same, `String` | |
//! | `source` (URI-reference) | `String` | |
//! | `specversion` `1.0` | `SpecVersion::V10` | an sdk event at `0.3` is read as 1.0, see below |
//! | `datacontenttype` | `Option<String>` | kept as set, also without data |
//! | `dataschema` (absolute URI) | `url::Url` | `Url` normalises: `HTTP://Example.com` reads back as `http://example.com/`; a URI `Url` rejects is [`SdkError::Rejected`] |
//! | `time` ([`Timestamp`]) | `DateTime<Utc>` | the instant is kept, the offset and digit count are not: read back as the sdk writes it, in UTC (`Z`) with 0, 3, 6 or 9 fraction digits |
//! | extension String | `ExtensionValue::String` | |
//! | extension Boolean | `ExtensionValue::Boolean` | |
//! | extension Integer (`i32`) | `ExtensionValue::Integer` (`i64`) | an sdk Integer outside `i32` is [`Rule::IntegerOutOfRange`] |
//! | extension URI, URI-reference | `ExtensionValue::String` | as written |
//! | extension Timestamp | `ExtensionValue::String` | RFC 3339 as written |
//! | extension Binary | `ExtensionValue::String` | Base64 |
//! | [`Data::Json`] (raw JSON text) | `Data::Json(serde_json::Value)` | see "lossy points" |
//! | [`Data::Serialize`] | `Data::Json(serde_json::Value)` | serialised once, at conversion |
//! | [`Data::Text`] | `Data::String` | under a JSON `datacontenttype` (or none) `Data::Json` of a JSON string, which it is there |
//! | [`Data::Binary`], [`Data::Base64`] | `Data::Binary(Vec<u8>)` | Base64 decoded |
//! | no data | `None` | |
//!
//! The sdk's [`ExtensionValue`] has only String, Boolean and Integer: an
//! extension of another CloudEvents type becomes a String holding its
//! canonical string form, which is exactly what the sdk's own JSON parser
//! yields when it reads that extension from our JSON output. Back from the
//! sdk it is therefore a String extension; [`Event::same_as`] compares such
//! values by canonical string, so round trips compare equal.
//!
//! Reading an sdk event ([`from_sdk`]):
//!
//! - `Data::Json` under a JSON `datacontenttype` (or none) becomes
//!   [`Data::Json`] written compactly into the caller's `String`, `null`
//!   included (the JSON format keeps an explicit `null` payload).
//! - `Data::Json` under a non-JSON `datacontenttype` is what the JSON format
//!   allows there and what our JSON parser does with the sdk's JSON of it: a
//!   JSON string becomes [`Data::Text`], anything else (`null` included: an
//!   explicit null payload is not a string) is [`Rule::DataNotString`] on
//!   `data`.
//! - `Data::String` becomes [`Data::Text`] and `Data::Binary` [`Data::Binary`],
//!   both borrowed.
//! - Extensions are added in name order (the sdk keeps them in a `HashMap`),
//!   so the result, and what it encodes to, does not depend on hashing.
//! - An sdk event at specversion `0.3` is converted to 1.0 the way the sdk's
//!   own `EventBuilderV10::from` does: every attribute keeps its value and
//!   `schemaurl` becomes `dataschema` (the sdk has already decoded a 0.3
//!   `datacontentencoding: base64` payload when it read the event). The
//!   result, like every event of ours, says `1.0`.
//!
//! # Lossy points
//!
//! - `time`: offset and fraction digits, as above (the instant is exact).
//!   A time within a day of the RFC 3339 range's ends whose offset takes
//!   its instant past it (`9999-12-31T23:59:59-23:59` is in year 10000 in
//!   UTC, `0000-01-01T00:00:00+01:00` before year 0) converts to the sdk,
//!   but does not come back: `from_sdk` refuses it, naming `time`, as the
//!   UTC form it would have to write has no four-digit year.
//! - `dataschema`: `Url` normalisation, as above.
//! - JSON data goes through `serde_json::Value`: object members come back in
//!   key order (unless `serde_json`'s `preserve_order` feature is on), numbers
//!   as `serde_json` prints them (`1.0e2` → `100.0`, integers beyond 64 bits
//!   as floats), and of duplicate keys only the last is kept. A float is read
//!   as the nearest `f64` (the feature turns on `serde_json`'s
//!   `float_roundtrip`), so one written in its shortest form comes back as
//!   the same text. Data nested 128 deep is [`SdkError::Json`]:
//!   `serde_json` reads 127 levels, we accept
//!   [`MAX_DATA_DEPTH`](crate::MAX_DATA_DEPTH) = 128. (A number beyond the
//!   `f64` range, `1e400`, never gets here: our readers and the builder
//!   refuse it too, [`JsonErrorKind::NumberOutOfRange`](crate::json::JsonErrorKind::NumberOutOfRange).)
//! - Extension types other than String, Boolean and Integer, as above.

use std::fmt;

/// The `cloudevents-sdk` crate (0.9) that these conversions speak,
/// re-exported so that callers name the same version.
///
/// ```
/// use ossa_events::sdk::cloudevents::{AttributesReader, EventBuilder, EventBuilderV10};
/// let theirs = EventBuilderV10::new().id("1").source("/s").ty("t").build()?;
/// assert_eq!(theirs.specversion().as_str(), "1.0");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use cloudevents;

use cloudevents::EventBuilderV10;
use cloudevents::event::{
    AttributesReader, AttributesWriter, EventBuilder as _, EventBuilderError, ExtensionValue,
    TryIntoTime, TryIntoUrl,
};
use ossa_events_core::json::ser::SerError;
use ossa_events_core::time::{Offset, TimeError};
use ossa_events_core::{
    Attribute, Data, Event, ExtValue, PayloadError, Rule, Timestamp, ValidationError,
};

/// Why an event could not be converted to or from a [`cloudevents::Event`].
///
/// [`attribute`](Self::attribute) names the attribute at fault in every case.
///
/// ```
/// use ossa_events::sdk::{cloudevents::Event as SdkEvent, from_sdk, SdkError};
/// use ossa_events::{Attribute, Rule};
///
/// let mut theirs = SdkEvent::default();
/// theirs.set_extension("Trace_Id", "abc"); // the sdk allows any name
/// let err = from_sdk(&theirs, &mut String::new()).unwrap_err();
/// assert_eq!(err.attribute(), Attribute::named("Trace_Id"));
/// assert!(matches!(err, SdkError::Invalid(ref v) if v.rule == Rule::InvalidName));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SdkError {
    /// The event breaks a rule of the CloudEvents specification (reading an
    /// sdk event that the sdk accepted but the specification does not).
    Invalid(ValidationError),
    /// The sdk's types cannot hold a value that our rules accept: `url::Url`
    /// rejects the `dataschema`, or `chrono` the `time`.
    Rejected {
        /// The attribute whose value was rejected.
        attribute: Attribute,
        /// The sdk's error, which names the attribute and holds the cause.
        source: EventBuilderError,
    },
    /// `data` that `serde_json` cannot hold: JSON with a number beyond the
    /// `f64` range, or nested deeper than its recursion limit (127 levels).
    Json(serde_json::Error),
    /// A [`Data::Serialize`] payload failed to serialize.
    Payload(PayloadError),
}

impl SdkError {
    /// The attribute at fault (`data` for [`Json`](Self::Json) and
    /// [`Payload`](Self::Payload)).
    ///
    /// ```
    /// use ossa_events::sdk::to_sdk;
    /// use ossa_events::{Attribute, Event};
    ///
    /// // Nested 128 deep: within our limit, one past serde_json's.
    /// let deep = "[".repeat(128) + &"]".repeat(128);
    /// let ev = Event::builder().id("1").source("/s").ty("t").data_json(&deep).build()?;
    /// assert_eq!(to_sdk(&ev).unwrap_err().attribute(), Attribute::Data);
    /// # Ok::<(), ossa_events::ValidationError>(())
    /// ```
    pub fn attribute(&self) -> Attribute {
        match self {
            SdkError::Invalid(v) => v.attribute.clone(),
            SdkError::Rejected { attribute, .. } => attribute.clone(),
            SdkError::Json(_) | SdkError::Payload(_) => Attribute::Data,
        }
    }

    /// The CloudEvents rule that was broken, for [`Invalid`](Self::Invalid).
    ///
    /// ```
    /// use ossa_events::sdk::{cloudevents::{AttributesWriter, Event as SdkEvent}, from_sdk};
    /// use ossa_events::{Attribute, Rule};
    ///
    /// let mut theirs = SdkEvent::default();
    /// theirs.set_id("");
    /// let err = from_sdk(&theirs, &mut String::new()).unwrap_err();
    /// let v = err.validation().unwrap();
    /// assert_eq!((&v.attribute, v.rule), (&Attribute::Id, Rule::Empty));
    /// ```
    pub fn validation(&self) -> Option<&ValidationError> {
        match self {
            SdkError::Invalid(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for SdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdkError::Invalid(v) => fmt::Display::fmt(v, f),
            SdkError::Rejected { attribute, source } => {
                write!(
                    f,
                    "attribute `{attribute}`: cloudevents-sdk rejects the value: {source}"
                )
            }
            SdkError::Json(e) => write!(f, "attribute `data`: serde_json cannot hold it: {e}"),
            SdkError::Payload(e) => write!(f, "attribute `data`: {e}"),
        }
    }
}

impl std::error::Error for SdkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SdkError::Invalid(v) => Some(v),
            SdkError::Rejected { source, .. } => Some(source),
            SdkError::Json(e) => Some(e),
            SdkError::Payload(e) => Some(e),
        }
    }
}

impl From<ValidationError> for SdkError {
    fn from(e: ValidationError) -> Self {
        SdkError::Invalid(e)
    }
}

/// Copies `ev` into an owned [`cloudevents::Event`] (specversion 1.0); see the
/// [module docs](self) for how each attribute and payload maps.
///
/// ```
/// use ossa_events::sdk::{cloudevents::{AttributesReader, Data}, to_sdk};
/// use ossa_events::Event;
///
/// let ev = Event::builder()
///     .id("1")
///     .source("/agents/researcher")
///     .ty("dev.ossa.agent.started")
///     .ossa_agent_id("researcher-7")
///     .data_text("text/plain", "hello")
///     .build()?;
/// let theirs = to_sdk(&ev)?;
/// assert_eq!(theirs.source(), "/agents/researcher");
/// assert_eq!(theirs.extension("ossaagentid").map(|v| v.to_string()).as_deref(), Some("researcher-7"));
/// assert_eq!(theirs.data(), Some(&Data::String("hello".into())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_sdk(ev: &Event<'_>) -> Result<cloudevents::Event, SdkError> {
    let mut out = EventBuilderV10::new()
        .id(ev.id())
        .source(ev.source())
        .ty(ev.ty())
        .build()
        .map_err(|source| SdkError::Rejected {
            attribute: builder_attribute(&source),
            source,
        })?;
    out.set_subject(ev.subject());
    if let Some(t) = ev.time() {
        let mut buf = [0u8; Timestamp::MAX_LEN];
        let time = t
            .write_to(&mut buf)
            .into_time()
            .map_err(|source| SdkError::Rejected {
                attribute: Attribute::Time,
                source: EventBuilderError::ParseTimeError {
                    attribute_name: "time",
                    source,
                },
            })?;
        out.set_time(Some(time));
    }
    out.set_datacontenttype(ev.datacontenttype());
    if let Some(schema) = ev.dataschema() {
        let url = schema.into_url().map_err(|source| SdkError::Rejected {
            attribute: Attribute::DataSchema,
            source: EventBuilderError::ParseUrlError {
                attribute_name: "dataschema",
                source,
            },
        })?;
        out.set_dataschema(Some(url));
    }
    for e in ev.extensions() {
        out.set_extension(e.name, extension_to_sdk(&e.value));
    }
    if let Some(data) = ev.data() {
        out.set_data_unchecked(data_to_sdk(data, ev.data_is_json())?);
    }
    Ok(out)
}

/// [`to_sdk`] as a method of our [`Event`] (orphan rules rule out
/// `TryFrom<&Event<'_>> for cloudevents::Event` in this crate).
///
/// ```
/// use ossa_events::sdk::{cloudevents::AttributesReader, ToSdk};
/// use ossa_events::Event;
///
/// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
/// assert_eq!(ev.to_sdk()?.id(), "1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ToSdk {
    /// Copies the event into an owned [`cloudevents::Event`]; see [`to_sdk`].
    ///
    /// ```
    /// use ossa_events::sdk::{cloudevents::{event::SpecVersion, AttributesReader}, ToSdk};
    /// use ossa_events::Event;
    ///
    /// let ev = Event::builder().id("1").source("/s").ty("t").subject("s1").build()?;
    /// let theirs = ev.to_sdk()?;
    /// assert_eq!(theirs.specversion(), SpecVersion::V10);
    /// assert_eq!(theirs.subject(), Some("s1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn to_sdk(&self) -> Result<cloudevents::Event, SdkError>;
}

impl ToSdk for Event<'_> {
    fn to_sdk(&self) -> Result<cloudevents::Event, SdkError> {
        to_sdk(self)
    }
}

/// Reads `ev` as one of our events, borrowing its strings and bytes. JSON
/// `data` is written compactly into `scratch`, replacing what it held (its
/// capacity is reused); without JSON data `scratch` is left alone. The
/// result has passed [`Event::validate`]. An event at specversion `0.3`
/// is read as 1.0 (`schemaurl` becomes `dataschema`). See the
/// [module docs](self) for the whole mapping.
///
/// ```
/// use ossa_events::sdk::{cloudevents::EventBuilderV10, cloudevents::EventBuilder, from_sdk};
/// use ossa_events::{Data, ExtValue};
///
/// let theirs = EventBuilderV10::new()
///     .id("1")
///     .source("/agents/researcher")
///     .ty("dev.ossa.tool.called")
///     .time("2018-04-05T17:31:00.5+02:00")
///     .extension("attempt", 2i64)
///     .data("application/json", serde_json::json!({"tool": "web_search"}))
///     .build()?;
///
/// let mut scratch = String::new();
/// let ev = from_sdk(&theirs, &mut scratch)?;
/// assert_eq!(ev.time().map(|t| t.to_string()).as_deref(), Some("2018-04-05T15:31:00.500Z"));
/// assert_eq!(ev.extension("attempt"), Some(ExtValue::Integer(2)));
/// assert!(matches!(ev.data(), Some(Data::Json(r#"{"tool":"web_search"}"#))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn from_sdk<'a>(
    ev: &'a cloudevents::Event,
    scratch: &'a mut String,
) -> Result<Event<'a>, SdkError> {
    let mut b = Event::builder().id(ev.id()).source(ev.source()).ty(ev.ty());
    let content_type = ev.datacontenttype();
    if let Some(ct) = content_type {
        b = b.datacontenttype(ct);
    }
    if let Some(schema) = ev.dataschema() {
        b = b.dataschema(schema.as_str());
    }
    if let Some(subject) = ev.subject() {
        b = b.subject(subject);
    }
    if let Some(t) = ev.time() {
        b = b.time(timestamp_from_unix(
            t.timestamp(),
            t.timestamp_subsec_nanos(),
        )?);
    }
    let mut extensions: Vec<(&'a str, &'a ExtensionValue)> = ev.iter_extensions().collect();
    extensions.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (name, value) in extensions {
        let value = match value {
            ExtensionValue::String(s) => ExtValue::String(s),
            ExtensionValue::Boolean(v) => ExtValue::Boolean(*v),
            ExtensionValue::Integer(i) => ExtValue::Integer(i32::try_from(*i).map_err(|_| {
                ValidationError::new(Attribute::named(name), Rule::IntegerOutOfRange)
            })?),
        };
        b = b.extension(name, value);
    }
    match ev.data() {
        None => {}
        Some(cloudevents::Data::Binary(bytes)) => b = b.data(Data::Binary(bytes)),
        Some(cloudevents::Data::String(text)) => b = b.data(Data::Text(text)),
        Some(cloudevents::Data::Json(value)) => {
            let is_json = content_type.is_none_or(ossa_events_core::uri::is_json_media_type);
            match value {
                serde_json::Value::String(text) if !is_json => b = b.data(Data::Text(text)),
                _ if !is_json => {
                    return Err(ValidationError::new(Attribute::Data, Rule::DataNotString).into());
                }
                _ => {
                    let mut buf = std::mem::take(scratch).into_bytes();
                    buf.clear();
                    serde_json::to_writer(&mut buf, value).map_err(SdkError::Json)?;
                    *scratch = String::from_utf8(buf).map_err(|_| {
                        ValidationError::new(Attribute::Data, Rule::InvalidEncoding)
                    })?;
                    let raw: &'a String = scratch;
                    b = b.data(Data::Json(raw));
                }
            }
        }
    }
    // Read, not made here: the parsers' rules, not the builder's
    // `traceparent` agreement with the OSSA ids.
    Ok(b.build_as_read()?)
}

/// The attribute an sdk builder error names.
fn builder_attribute(e: &EventBuilderError) -> Attribute {
    match e {
        EventBuilderError::MissingRequiredAttribute { attribute_name }
        | EventBuilderError::ParseTimeError { attribute_name, .. }
        | EventBuilderError::ParseUrlError { attribute_name, .. }
        | EventBuilderError::InvalidUriRefError { attribute_name } => {
            Attribute::named(attribute_name)
        }
    }
}

/// An extension value as the sdk's JSON parser reads it from our JSON output:
/// Integer and Boolean keep their type, every other type is its canonical string.
fn extension_to_sdk(v: &ExtValue<'_>) -> ExtensionValue {
    match v {
        ExtValue::String(s) | ExtValue::Uri(s) | ExtValue::UriRef(s) => {
            ExtensionValue::String((*s).to_owned())
        }
        ExtValue::Integer(i) => ExtensionValue::Integer(i64::from(*i)),
        ExtValue::Boolean(b) => ExtensionValue::Boolean(*b),
        other => ExtensionValue::String(other.canonical().to_string()),
    }
}

/// Our payload as the sdk's; `is_json`: the event's data is JSON (its
/// `datacontenttype` is JSON, or unset).
fn data_to_sdk(data: &Data<'_>, is_json: bool) -> Result<cloudevents::Data, SdkError> {
    Ok(match data {
        Data::Json(raw) => {
            cloudevents::Data::Json(serde_json::from_str(raw).map_err(SdkError::Json)?)
        }
        // Text under a JSON type is a JSON string (our JSON format writes
        // `"data":"…"`, our binary mode the JSON text `"…"`); the sdk's
        // `Data::String` would go out bare in its binary mode, not JSON.
        Data::Text(s) if is_json => {
            cloudevents::Data::Json(serde_json::Value::String((*s).to_owned()))
        }
        Data::Text(s) => cloudevents::Data::String((*s).to_owned()),
        Data::Binary(b) => cloudevents::Data::Binary(b.to_vec()),
        Data::Base64(s) => {
            let invalid = |e| ValidationError::new(Attribute::DataBase64, Rule::InvalidBase64(e));
            let len = ossa_events_core::base64::decoded_len(s.as_bytes()).map_err(invalid)?;
            let mut bytes = vec![0u8; len];
            let n = ossa_events_core::base64::decode_to_slice(s.as_bytes(), &mut bytes)
                .map_err(invalid)?;
            bytes.truncate(n);
            cloudevents::Data::Binary(bytes)
        }
        Data::Serialize(p) => {
            let mut buf = Vec::new();
            ossa_events_core::json::ser::write_payload(&mut buf, *p).map_err(|e| {
                SdkError::Payload(match e {
                    SerError::KeyMustBeString => PayloadError::KeyMustBeString,
                    SerError::Custom(m) => PayloadError::Custom(m),
                    SerError::TooDeep => PayloadError::TooDeep,
                    // A `Vec` never fails; a hand-written payload may still say so.
                    _ => PayloadError::Custom(heapless_message("writer failed")),
                })
            })?;
            cloudevents::Data::Json(serde_json::from_slice(&buf).map_err(SdkError::Json)?)
        }
        // A payload kind added to the core later: not one the sdk can be given yet.
        _ => return Err(ValidationError::new(Attribute::Data, Rule::WrongType).into()),
    })
}

/// A short message for [`PayloadError::Custom`].
fn heapless_message(m: &str) -> ossa_events_core::heapless::String<64> {
    let mut s = ossa_events_core::heapless::String::new();
    let _ = s.push_str(m);
    s
}

/// A `chrono::DateTime<Utc>` (as Unix seconds and nanoseconds, which exceed
/// 999 999 999 in a leap second) as the sdk writes it: UTC, `Z`, and 0, 3, 6
/// or 9 fraction digits (chrono's `SecondsFormat::AutoSi`).
fn timestamp_from_unix(secs: i64, nanos: u32) -> Result<Timestamp, ValidationError> {
    let invalid = |e| ValidationError::new(Attribute::Time, Rule::InvalidTimestamp(e));
    let leap = nanos >= 1_000_000_000;
    let nanos = nanos % 1_000_000_000;
    let mut t = Timestamp::from_unix(secs, nanos).ok_or(invalid(TimeError::Year))?;
    if leap {
        // chrono keeps a leap second as second 59 plus a second of nanoseconds.
        t = Timestamp::new(
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            60,
            nanos,
            Offset::Utc,
        )
        .map_err(invalid)?;
    }
    let digits = match nanos {
        0 => 0,
        n if n % 1_000_000 == 0 => 3,
        n if n % 1_000 == 0 => 6,
        _ => 9,
    };
    Ok(t.with_frac_digits(digits))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sdk_time_digits_follow_chrono_auto_si() {
        let cases = [
            (0, "2018-04-05T17:31:00Z"),
            (500_000_000, "2018-04-05T17:31:00.500Z"),
            (500_100_000, "2018-04-05T17:31:00.500100Z"),
            (500_100_001, "2018-04-05T17:31:00.500100001Z"),
        ];
        for (nanos, want) in cases {
            let t = timestamp_from_unix(1_522_949_460, nanos).unwrap();
            assert_eq!(t.to_string(), want);
        }
    }

    #[test]
    fn leap_second_outside_23_59_is_an_error_naming_time() {
        let e = timestamp_from_unix(1_522_949_459, 1_000_000_000).unwrap_err();
        assert_eq!(e.attribute, Attribute::Time);
        assert_eq!(e.rule, Rule::InvalidTimestamp(TimeError::LeapSecond));
        // 2016-12-31T23:59:59Z plus a leap second.
        let t = timestamp_from_unix(1_483_228_799, 1_250_000_000).unwrap();
        assert_eq!(t.to_string(), "2016-12-31T23:59:60.250Z");
    }

    #[test]
    fn years_beyond_9999_are_an_error_naming_time() {
        let e = timestamp_from_unix(253_402_300_800, 0).unwrap_err();
        assert_eq!(e.attribute, Attribute::Time);
    }

    /// What the module docs say of times at the range's ends: out to the
    /// sdk, but not back (an error naming `time`, never a panic or a
    /// wrong instant); one second inside comes back as the same instant.
    #[test]
    fn times_whose_offset_leaves_the_year_range_go_out_but_not_back() {
        for (time, back) in [
            ("9999-12-31T23:59:59-23:59", None),
            ("0000-01-01T00:00:00+01:00", None),
            ("9999-12-31T23:59:59Z", Some("9999-12-31T23:59:59Z")),
            ("0000-01-01T00:00:00-01:00", Some("0000-01-01T01:00:00Z")),
        ] {
            let ev = Event::builder()
                .id("1")
                .source("/s")
                .ty("t")
                .time_str(time)
                .build()
                .unwrap();
            let theirs = to_sdk(&ev).unwrap();
            let mut scratch = String::new();
            match (from_sdk(&theirs, &mut scratch), back) {
                (Ok(ours), Some(want)) => {
                    assert_eq!(ours.time().map(|t| t.to_string()).as_deref(), Some(want));
                }
                (Err(e), None) => assert_eq!(e.attribute(), Attribute::Time, "{time}: {e}"),
                (got, _) => panic!("{time}: {:?}", got.map(|e| e.time())),
            }
        }
    }
}
