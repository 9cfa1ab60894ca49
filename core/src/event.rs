//! The event model: a borrowed, always-valid [`Event`] and its [`EventBuilder`].

use core::fmt;

use crate::attr::{
    ExtValue, Extension, Extensions, SPEC_VERSION, check_extension_name, is_valid_string,
};
use crate::error::{Attribute, Rule, ValidationError};
use crate::json::ser::JsonPayload;
use crate::ossa;
use crate::time::{TimeError, Timestamp};

/// Deepest nesting accepted inside raw JSON `data`.
pub const MAX_DATA_DEPTH: usize = 128;

/// The event payload.
///
/// ```
/// use ossa_events_core::{format::json, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t")
///     .data_binary("application/octet-stream", &[0xde, 0xad, 0xbe, 0xef])
///     .build()?;
/// // Binary data travels as `data_base64` in the JSON format.
/// let mut buf = [0u8; 256];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data_base64":"3q2+7w=="}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Data<'a> {
    /// Raw JSON text (a whole JSON value, checked when the event is built or parsed).
    Json(&'a str),
    /// Text; written as a JSON string in the JSON format, as its bytes in binary mode.
    Text(&'a str),
    /// Bytes; written as `data_base64` in the JSON format.
    Binary(&'a [u8]),
    /// Bytes already Base64-encoded (as read from `data_base64`); checked when built or parsed.
    Base64(&'a str),
    /// Any `T: Serialize` (or hand-written [`JsonPayload`]), serialized when the event is written.
    Serialize(&'a dyn JsonPayload),
}

impl fmt::Debug for Data<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Json(s) => f.debug_tuple("Json").field(s).finish(),
            Data::Text(s) => f.debug_tuple("Text").field(s).finish(),
            Data::Binary(b) => f.debug_tuple("Binary").field(b).finish(),
            Data::Base64(s) => f.debug_tuple("Base64").field(s).finish(),
            Data::Serialize(_) => f.write_str("Serialize(..)"),
        }
    }
}

impl Data<'_> {
    /// Whether the payload is binary (`data_base64` in the JSON format).
    ///
    /// ```
    /// use ossa_events_core::Data;
    /// assert!(Data::Binary(&[0, 1]).is_binary());
    /// assert!(Data::Base64("AAE=").is_binary());
    /// assert!(!Data::Text("hello").is_binary());
    /// ```
    pub fn is_binary(&self) -> bool {
        matches!(self, Data::Binary(_) | Data::Base64(_))
    }

    /// Compares two payloads by content: `Binary` equals `Base64` of the same bytes,
    /// JSON equals JSON ignoring insignificant whitespace, `Text` equals `Text` or
    /// `Binary` of the same bytes, or the JSON string of the same text (how text
    /// under a JSON content type is written and read back). `Serialize`
    /// payloads compare unequal.
    ///
    /// ```
    /// use ossa_events_core::Data;
    /// assert!(Data::Binary(b"hi").same_content(&Data::Base64("aGk=")));
    /// assert!(Data::Json(r#"{ "a": 1 }"#).same_content(&Data::Json(r#"{"a":1}"#)));
    /// assert!(Data::Text("hi").same_content(&Data::Json(r#""hi""#)));
    /// // A JSON number is not the text "1".
    /// assert!(!Data::Text("1").same_content(&Data::Json("1")));
    /// ```
    pub fn same_content(&self, other: &Data<'_>) -> bool {
        use crate::base64::decoded_eq;
        match (self, other) {
            (Data::Json(a), Data::Json(b)) => crate::json::eq_ignoring_ws(a, b),
            (Data::Text(a), Data::Text(b)) => a == b,
            (Data::Binary(a), Data::Binary(b)) => a == b,
            (Data::Base64(a), Data::Base64(b)) => a == b,
            (Data::Binary(a), Data::Base64(b)) | (Data::Base64(b), Data::Binary(a)) => {
                decoded_eq(b.as_bytes(), a)
            }
            (Data::Text(a), Data::Binary(b)) | (Data::Binary(b), Data::Text(a)) => {
                a.as_bytes() == *b
            }
            (Data::Text(a), Data::Base64(b)) | (Data::Base64(b), Data::Text(a)) => {
                decoded_eq(b.as_bytes(), a.as_bytes())
            }
            (Data::Text(a), Data::Json(b)) | (Data::Json(b), Data::Text(a)) => {
                crate::json::lex::is_json_string_of(b, a)
            }
            _ => false,
        }
    }
}

/// A CloudEvent (specversion 1.0) that borrows its strings and data.
///
/// An `Event` is always valid: it comes from [`EventBuilder::build`] or from a
/// parser, which both check every rule of the specification. Encoders never
/// re-check it.
///
/// ```
/// use ossa_events_core::{Event, ExtValue};
/// let ev = Event::builder()
///     .id("A234-1234-1234")
///     .source("https://github.com/cloudevents/spec/pull")
///     .ty("com.github.pull_request.opened")
///     .subject("123")
///     .time_str("2018-04-05T17:31:00Z")
///     .extension("comexampleothervalue", ExtValue::Integer(5))
///     .data_text("text/xml", "<much wow=\"xml\"/>")
///     .build()?;
/// assert_eq!(ev.subject(), Some("123"));
/// # Ok::<(), ossa_events_core::ValidationError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub(crate) id: &'a str,
    pub(crate) source: &'a str,
    pub(crate) ty: &'a str,
    pub(crate) datacontenttype: Option<&'a str>,
    pub(crate) dataschema: Option<&'a str>,
    pub(crate) subject: Option<&'a str>,
    pub(crate) time: Option<Timestamp>,
    pub(crate) data: Option<Data<'a>>,
    pub(crate) extensions: Extensions<'a>,
    /// Bit `i`: extension `i` is the `traceparent` an emitter derived (a
    /// String of hex digits and `-`), which the JSON writer copies without
    /// scanning it. Only `EventBuilder::fill_traceparent` sets a bit, and
    /// setting the extension again clears it.
    pub(crate) derived_tp: u16,
    /// How the JSON writer copies `data` when it is JSON text: `None` when
    /// the text is known to have no whitespace outside strings (found when
    /// it was checked, set or parsed), else the compacting copy (see
    /// [`crate::json::lex::compactor`]). Every setter of `Data::Json` sets it.
    pub(crate) data_compact: Option<crate::json::lex::Compact>,
    /// The Base64 encoder, for the JSON writer's `data_base64` and binary
    /// extension values: set by every setter that stores `Data::Binary` or
    /// an `ExtValue::Binary` (see [`crate::io::Transcode`]), `None` while the
    /// event has never held bytes to encode (once set it stays).
    pub(crate) base64: Option<crate::io::Transcode>,
}

impl<'a> Event<'a> {
    /// Starts building an event.
    ///
    /// ```
    /// use ossa_events_core::{Attribute, Event, Rule};
    /// let ev = Event::builder().id("1").source("/agents/a").ty("com.example.ping").build()?;
    /// assert_eq!(ev.specversion(), "1.0");
    /// // A missing required attribute is named in the error.
    /// let err = Event::builder().id("2").ty("com.example.ping").build().unwrap_err();
    /// assert_eq!((err.attribute, err.rule), (Attribute::Source, Rule::Missing));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn builder() -> EventBuilder<'a> {
        EventBuilder::new()
    }

    /// An event with nothing set, for the builder and the parsers to fill
    /// in (not valid as it is: `id`, `source` and `type` are empty).
    #[inline(always)]
    pub(crate) fn unset() -> Self {
        Event {
            id: "",
            source: "",
            ty: "",
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            data: None,
            extensions: Extensions::new(),
            derived_tp: 0,
            data_compact: None,
            base64: None,
        }
    }

    /// A builder holding this event's attributes and data, to derive a new event.
    ///
    /// ```
    /// use ossa_events_core::Event;
    /// let first = Event::builder().id("1").source("/s").ty("t").subject("a").build()?;
    /// let next = first.to_builder().id("2").subject("b").build()?;
    /// assert_eq!((next.id(), next.source(), next.subject()), ("2", "/s", Some("b")));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn to_builder(&self) -> EventBuilder<'a> {
        EventBuilder {
            ev: self.clone(),
            time_str: None,
            // An event's data was checked when it was built or parsed.
            data_rule: None,
            content_type_rule: None,
            content_type_json: self.data_is_json(),
            ext_bad: 0,
            ext_check: check_ossa_ext,
            // An event's source was checked when it was built or parsed.
            source_is_uri: true,
            dataschema_rule: None,
            error: None,
            set: SET_ID | SET_SOURCE | SET_TYPE,
            tp_derived: false,
            tp_check: self
                .extensions
                .iter()
                .any(|e| e.name == crate::trace::EXT_TRACEPARENT)
                .then_some(check_trace_context as EventCheck),
            ossa_at: ossa_positions(&self.extensions),
            pending: PendingOssa::default(),
        }
    }

    /// `id`
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("A234-1234").source("/s").ty("t").build()?;
    /// assert_eq!(ev.id(), "A234-1234");
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn id(&self) -> &'a str {
        self.id
    }
    /// `source` (a URI-reference)
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("urn:agent:planner").ty("t").build()?;
    /// assert_eq!(ev.source(), "urn:agent:planner");
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn source(&self) -> &'a str {
        self.source
    }
    /// `specversion`: always `"1.0"`.
    ///
    /// ```
    /// # use ossa_events_core::{Event, SPEC_VERSION};
    /// # let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// assert_eq!(ev.specversion(), SPEC_VERSION);
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn specversion(&self) -> &'static str {
        SPEC_VERSION
    }
    /// `type`
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("com.example.ping").build()?;
    /// assert_eq!(ev.ty(), "com.example.ping");
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn ty(&self) -> &'a str {
        self.ty
    }
    /// `datacontenttype`, as set (see [`Event::effective_content_type`]).
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t").data_text("text/plain", "hi").build()?;
    /// assert_eq!(ev.datacontenttype(), Some("text/plain"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn datacontenttype(&self) -> Option<&'a str> {
        self.datacontenttype
    }
    /// `dataschema` (an absolute URI)
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t")
    ///     .dataschema("https://example.com/schemas/ping.json")
    ///     .build()?;
    /// assert_eq!(ev.dataschema(), Some("https://example.com/schemas/ping.json"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn dataschema(&self) -> Option<&'a str> {
        self.dataschema
    }
    /// `subject`
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t").subject("web_search").build()?;
    /// assert_eq!(ev.subject(), Some("web_search"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn subject(&self) -> Option<&'a str> {
        self.subject
    }
    /// `time`
    ///
    /// ```
    /// use ossa_events_core::{Event, Timestamp};
    /// let ev = Event::builder().id("1").source("/s").ty("t").time_str("2026-01-02T03:04:05Z").build()?;
    /// assert_eq!(ev.time(), Some(Timestamp::parse("2026-01-02T03:04:05Z")?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn time(&self) -> Option<Timestamp> {
        self.time
    }
    /// The payload.
    ///
    /// ```
    /// use ossa_events_core::{Data, Event};
    /// let ev = Event::builder().id("1").source("/s").ty("t").data_text("text/plain", "hi").build()?;
    /// assert!(matches!(ev.data(), Some(Data::Text("hi"))));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn data(&self) -> Option<&Data<'a>> {
        self.data.as_ref()
    }
    /// All extension attributes, in the order they were set or read.
    ///
    /// ```
    /// use ossa_events_core::{Event, ExtValue};
    /// let ev = Event::builder().id("1").source("/s").ty("t")
    ///     .extension("priority", ExtValue::Integer(3))
    ///     .ossa_agent_id("planner")
    ///     .build()?;
    /// let names: Vec<&str> = ev.extensions().iter().map(|e| e.name).collect();
    /// assert_eq!(names, ["priority", "ossaagentid"]);
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn extensions(&self) -> &[Extension<'a>] {
        &self.extensions
    }
    /// The value of extension `name`.
    ///
    /// ```
    /// use ossa_events_core::{Event, ExtValue};
    /// let ev = Event::builder().id("1").source("/s").ty("t")
    ///     .extension("priority", ExtValue::Integer(3))
    ///     .build()?;
    /// assert_eq!(ev.extension("priority"), Some(ExtValue::Integer(3)));
    /// assert_eq!(ev.extension("missing"), None);
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn extension(&self, name: &str) -> Option<ExtValue<'a>> {
        self.extensions
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value)
    }
    /// The value of a String-valued extension.
    fn ext_str(&self, name: &str) -> Option<&'a str> {
        self.extension(name).and_then(|v| v.as_str())
    }
    /// The OSSA `ossaagentid` extension.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t").ossa_agent_id("planner").build()?;
    /// assert_eq!(ev.ossa_agent_id(), Some("planner"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn ossa_agent_id(&self) -> Option<&'a str> {
        self.ext_str(ossa::EXT_AGENT_ID)
    }
    /// The OSSA `ossainteractionid` extension.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t").ossa_interaction_id("chat-42").build()?;
    /// assert_eq!(ev.ossa_interaction_id(), Some("chat-42"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn ossa_interaction_id(&self) -> Option<&'a str> {
        self.ext_str(ossa::EXT_INTERACTION_ID)
    }
    /// The OSSA `ossatraceid` extension.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t").ossa_trace_id("4bf92f35").build()?;
    /// assert_eq!(ev.ossa_trace_id(), Some("4bf92f35"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn ossa_trace_id(&self) -> Option<&'a str> {
        self.ext_str(ossa::EXT_TRACE_ID)
    }
    /// The OSSA `ossaspanid` extension.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// assert_eq!(ev.ossa_span_id(), None); // never set
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn ossa_span_id(&self) -> Option<&'a str> {
        self.ext_str(ossa::EXT_SPAN_ID)
    }
    /// The `traceparent` (W3C Trace Context) of the distributed-tracing
    /// extension, parsed; `None` when absent.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t")
    ///     .traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    ///     .build()?;
    /// assert_eq!(ev.traceparent().map(|tp| tp.parent_id()), Some("00f067aa0ba902b7"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn traceparent(&self) -> Option<crate::trace::TraceParent<'a>> {
        crate::trace::TraceParent::parse(self.ext_str(crate::trace::EXT_TRACEPARENT)?).ok()
    }
    /// The `tracestate` of the distributed-tracing extension.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t").tracestate("rojo=00f067aa0ba902b7").build()?;
    /// assert_eq!(ev.tracestate(), Some("rojo=00f067aa0ba902b7"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn tracestate(&self) -> Option<&'a str> {
        self.ext_str(crate::trace::EXT_TRACESTATE)
    }

    /// The content type of `data` as a binding must state it: `datacontenttype`
    /// when set; `application/json` when unset and the data is JSON or text (the
    /// JSON format's implied type); none for binary data without a type.
    ///
    /// ```
    /// use ossa_events_core::{Data, Event};
    /// let json = Event::builder().id("1").source("/s").ty("t").data(Data::Json("{}")).build()?;
    /// assert_eq!(json.datacontenttype(), None);
    /// assert_eq!(json.effective_content_type(), Some("application/json"));
    /// // Bytes without a declared type have none.
    /// let bytes = Event::builder().id("2").source("/s").ty("t").data(Data::Binary(&[1, 2])).build()?;
    /// assert_eq!(bytes.effective_content_type(), None);
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn effective_content_type(&self) -> Option<&'a str> {
        match (self.datacontenttype, &self.data) {
            (Some(ct), _) => Some(ct),
            (None, Some(Data::Json(_) | Data::Text(_) | Data::Serialize(_))) => {
                Some("application/json")
            }
            _ => None,
        }
    }

    /// Whether `data` is to be read as JSON: `datacontenttype` absent or a JSON media type.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let json = Event::builder().id("1").source("/s").ty("t").data_json("[1, 2]").build()?;
    /// assert!(json.data_is_json());
    /// let text = Event::builder().id("2").source("/s").ty("t").data_text("text/plain", "hi").build()?;
    /// assert!(!text.data_is_json());
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn data_is_json(&self) -> bool {
        self.datacontenttype
            .is_none_or(crate::uri::is_json_media_type)
    }

    /// Compares two events attribute by attribute. Extensions compare by
    /// canonical string when `typed` is false (how binary modes carry them) and
    /// by type and value when true; data compares by content
    /// ([`Data::same_content`]).
    ///
    /// ```
    /// use ossa_events_core::{Event, ExtValue};
    /// let sent = Event::builder().id("1").source("/s").ty("t")
    ///     .extension("retries", ExtValue::Integer(7)).build()?;
    /// // What a binary-mode receiver reads back: every extension as a String.
    /// let received = Event::builder().id("1").source("/s").ty("t")
    ///     .extension_str("retries", "7").build()?;
    /// assert!(sent.same_as(&received, false));
    /// assert!(!sent.same_as(&received, true));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn same_as(&self, other: &Event<'_>, typed: bool) -> bool {
        let data_eq = match (&self.data, &other.data) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same_content(b),
            _ => false,
        };
        let time_eq = match (self.time, other.time) {
            (None, None) => true,
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        self.id == other.id
            && self.source == other.source
            && self.ty == other.ty
            && self.datacontenttype == other.datacontenttype
            && self.dataschema == other.dataschema
            && self.subject == other.subject
            && time_eq
            && data_eq
            && self.extensions.len() == other.extensions.len()
            && self.extensions.iter().all(|e| {
                other
                    .extension(e.name)
                    .is_some_and(|v| ext_same(&e.value, &v, typed))
            })
    }

    /// Checks every rule of the specification. Events from the builder and the
    /// parsers already passed it; this is for code that assembles attributes by
    /// other means.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// assert_eq!(ev.validate(), Ok(()));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.check_attributes(
            true,
            false,
            crate::uri::is_uri_reference_rt,
            crate::uri::content_type_rule,
            self::dataschema_rule,
            check_ext_at,
            Event::data_is_json,
        )?;
        self.check_data(true)
    }

    /// [`validate`](Self::validate) for the parsers, which already checked
    /// extension names, duplicates and JSON data while reading.
    ///
    /// `plain_strings`: every string value is known to be printable ASCII
    /// (see `Assembler::plain_strings`), so the `String` character checks
    /// are skipped; every other rule runs.
    pub(crate) fn validate_parsed(&self, plain_strings: bool) -> Result<(), ValidationError> {
        self.check_attributes(
            false,
            plain_strings,
            crate::uri::is_uri_reference_rt,
            crate::uri::content_type_rule,
            self::dataschema_rule,
            |_, e| match e.value {
                // Only the character check is known to pass: the trace
                // context extensions have rules of their own (the first
                // byte spares the OSSA names, of the same lengths, a memcmp).
                ExtValue::String(_)
                    if plain_strings
                        && !(e.name.starts_with('t')
                            && matches!(
                                e.name,
                                crate::trace::EXT_TRACEPARENT | crate::trace::EXT_TRACESTATE
                            )) =>
                {
                    Ok(())
                }
                v => v.validate(e.name),
            },
            Event::data_is_json,
        )?;
        self.check_data(false)
    }

    /// Every rule but those of [`check_data`](Self::check_data); extension
    /// names and duplicates only when `names` (the builder and the parsers
    /// check them as they add extensions).
    ///
    /// `content_type_rule` checks `datacontenttype`: the media-type grammar
    /// for [`validate`](Self::validate) and the parsers, what the setter
    /// found for the builder (so an emitter that only sets
    /// `application/json` carries no media-type parser); `data_is_json`
    /// likewise.
    // One closure per precomputed check (builder) or check to run (parsers,
    // `validate`): grouping them would only move the count into a struct.
    #[allow(clippy::too_many_arguments)]
    fn check_attributes(
        &self,
        names: bool,
        plain_strings: bool,
        source_is_uri: impl FnOnce(&str) -> bool,
        content_type_rule: impl FnOnce(&str) -> Option<Rule>,
        dataschema_rule: impl FnOnce(&str) -> Option<Rule>,
        ext_rule: impl Fn(usize, &Extension<'_>) -> Result<(), ValidationError>,
        data_is_json: impl FnOnce(&Self) -> bool,
    ) -> Result<(), ValidationError> {
        check_required(Attribute::Id, self.id, plain_strings)?;
        check_required(Attribute::Source, self.source, plain_strings)?;
        check_required(Attribute::Type, self.ty, plain_strings)?;
        if !source_is_uri(self.source) {
            return Err(ValidationError::new(
                Attribute::Source,
                Rule::NotUriReference,
            ));
        }
        if let Some(rule) = self.datacontenttype.and_then(content_type_rule) {
            return Err(ValidationError::new(Attribute::DataContentType, rule));
        }
        if let Some(rule) = self.dataschema.and_then(dataschema_rule) {
            return Err(ValidationError::new(Attribute::DataSchema, rule));
        }
        if let Some(s) = self.subject {
            check_required(Attribute::Subject, s, plain_strings)?;
        }
        for (i, e) in self.extensions.iter().enumerate() {
            ext_rule(i, e)?;
            if !names {
                continue;
            }
            check_extension_name(e.name)?;
            if self
                .extensions
                .get(..i)
                .is_some_and(|prev| prev.iter().any(|p| p.name == e.name))
            {
                return Err(ValidationError::new(
                    Attribute::named(e.name),
                    Rule::Duplicate,
                ));
            }
        }
        if matches!(self.data, Some(Data::Json(_) | Data::Serialize(_))) && !data_is_json(self) {
            return Err(ValidationError::new(Attribute::Data, Rule::DataNotString));
        }
        Ok(())
    }

    /// The data's own rules, checked after every other: Base64 always, JSON
    /// text only when `json` (the parsers check it while reading; the
    /// builder when it is set).
    fn check_data(&self, json: bool) -> Result<(), ValidationError> {
        match self.data {
            Some(Data::Json(raw)) if json => {
                crate::json::validate(raw.as_bytes(), MAX_DATA_DEPTH)
                    .map_err(|e| ValidationError::new(Attribute::Data, Rule::InvalidJson(e)))?;
            }
            Some(Data::Base64(b)) => {
                crate::base64::decoded_len(b.as_bytes()).map_err(|e| {
                    ValidationError::new(Attribute::DataBase64, Rule::InvalidBase64(e))
                })?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// An event we build: `traceparent` agrees with `ossatraceid` and
/// `ossaspanid` where those are set (a free function, so the builder can
/// hold it as an [`EventCheck`]).
#[inline(never)]
fn check_trace_context(ev: &Event<'_>) -> Result<(), ValidationError> {
    // Checked as W3C by `check` just before: the ids are read by position.
    let Some((tp_trace, tp_parent)) = ev
        .ext_str(crate::trace::EXT_TRACEPARENT)
        .and_then(crate::trace::TraceParent::ids_of_checked)
    else {
        return Ok(());
    };
    // Set to anything but that text (an Integer through the generic setter
    // included) is a conflict.
    let differs = |name, id| ev.extension(name).is_some_and(|v| v.as_str() != Some(id));
    let trace = differs(ossa::EXT_TRACE_ID, tp_trace);
    let span = differs(ossa::EXT_SPAN_ID, tp_parent);
    if trace || span {
        return Err(ValidationError::new(
            Attribute::named(crate::trace::EXT_TRACEPARENT),
            Rule::TraceContextConflict,
        ));
    }
    Ok(())
}

/// Extension equality for [`Event::same_as`]. The JSON format keeps Integer and
/// Boolean types but reads every other type back as a String, so typed
/// comparison is exact for those two and by canonical string for the rest.
fn ext_same(a: &ExtValue<'_>, b: &ExtValue<'_>, typed: bool) -> bool {
    let keeps_type = |v: &ExtValue<'_>| matches!(v, ExtValue::Integer(_) | ExtValue::Boolean(_));
    if typed && (keeps_type(a) || keeps_type(b)) {
        a == b
    } else {
        a.canonical_eq(b)
    }
}

/// What is wrong with a `dataschema` value, if anything.
fn dataschema_rule(s: &str) -> Option<Rule> {
    if s.is_empty() {
        Some(Rule::Empty)
    } else {
        crate::uri::absolute_uri_rule(s)
    }
}

/// What is wrong with JSON data text, if anything.
/// What is wrong with JSON data text, if anything, and whether it is
/// compact (no whitespace outside strings: written as it is).
fn json_rule(raw: &str) -> (Option<Rule>, bool) {
    match crate::json::validate_compact(raw.as_bytes(), MAX_DATA_DEPTH) {
        Ok(compact) => (None, compact),
        Err(e) => (Some(Rule::InvalidJson(e)), false),
    }
}

/// What is wrong with `data_base64` text, if anything.
fn base64_rule(b: &str) -> Option<Rule> {
    crate::base64::decoded_len(b.as_bytes())
        .err()
        .map(Rule::InvalidBase64)
}

/// A check of a whole event, held by the builder only when it can fail
/// (see `tp_check`).
type EventCheck = for<'e> fn(&Event<'e>) -> Result<(), ValidationError>;

/// How the builder reproduces an extension's failed check (see `ext_check`).
type ExtCheck = fn(&ExtValue<'_>, &str) -> Result<(), ValidationError>;

/// The check of an OSSA extension: a String without control characters.
fn check_ossa_ext(value: &ExtValue<'_>, name: &str) -> Result<(), ValidationError> {
    match value {
        ExtValue::String(s) if !is_valid_string(s) => Err(ValidationError::new(
            Attribute::named(name),
            Rule::InvalidCharacter,
        )),
        _ => Ok(()),
    }
}

/// The check of any extension value.
fn check_ext(value: &ExtValue<'_>, name: &str) -> Result<(), ValidationError> {
    value.validate(name)
}

/// [`check_ext`] for `check_attributes` (a fn item: `validate` and the
/// parsers share one instance).
fn check_ext_at(_: usize, e: &Extension<'_>) -> Result<(), ValidationError> {
    e.value.validate(e.name)
}

/// `s` is not empty and (unless `plain`, known printable ASCII) a valid
/// `String`.
#[inline(always)]
fn check_required(attribute: Attribute, s: &str, plain: bool) -> Result<(), ValidationError> {
    if s.is_empty() {
        return Err(ValidationError::new(attribute, Rule::Empty));
    }
    if !plain && !is_valid_string(s) {
        return Err(ValidationError::new(attribute, Rule::InvalidCharacter));
    }
    Ok(())
}

/// Builds an [`Event`]; [`EventBuilder::build`] checks every rule.
///
/// Setters never fail; the first problem (such as a 17th extension) is kept
/// and returned by `build`.
///
/// ```
/// use ossa_events_core::{Attribute, Event, Rule};
/// let ev = Event::builder()
///     .id("evt-1")
///     .source("/agents/planner")
///     .ty("com.example.plan.ready")
///     .data_json(r#"{"steps":3}"#)
///     .build()?;
/// assert_eq!(ev.datacontenttype(), Some("application/json"));
/// // A bad value does not fail the setter; `build` reports it.
/// let err = Event::builder().id("evt-2").source("not a uri").ty("t").build().unwrap_err();
/// assert_eq!((err.attribute, err.rule), (Attribute::Source, Rule::NotUriReference));
/// # Ok::<(), ossa_events_core::ValidationError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "call .build() to get the event"]
pub struct EventBuilder<'a> {
    ev: Event<'a>,
    /// `time_str`, parsed when it was set (reported by `build`): code that
    /// never calls `time_str` carries no timestamp parser.
    time_str: Option<Result<Timestamp, TimeError>>,
    /// What is wrong with JSON or Base64 data, found when it was set
    /// (reported by `build`, where the check used to run): an emitter of
    /// OSSA payloads carries no JSON validator or Base64 decoder.
    data_rule: Option<Rule>,
    /// What is wrong with `datacontenttype`, found when it was set (reported
    /// by `build` where the check used to run).
    content_type_rule: Option<Rule>,
    /// Whether `datacontenttype` is unset or a JSON media type, found when it
    /// was set: `build` asks it of JSON data without a media-type parser
    /// (which an emitter that only sets `application/json` does not carry).
    content_type_json: bool,
    /// Bit `i`: extension `i` failed the check of its setter (reported by
    /// `build` where the check used to run, in extension order).
    ext_bad: u16,
    /// What reproduces that failure: the OSSA String check, or
    /// `ExtValue::validate` once any setter that needs it has run (the same
    /// answer for the OSSA extensions). An emitter whose extensions are only
    /// the OSSA context and the `traceparent` it derives never links the
    /// URI and trace-context checks.
    ext_check: ExtCheck,
    /// Whether `source` is a URI-reference, found when it was set (by
    /// `source`, or from a constant `emitter::Config` at compile time).
    source_is_uri: bool,
    /// What is wrong with `dataschema`, found when it was set.
    dataschema_rule: Option<Rule>,
    error: Option<ValidationError>,
    /// Which of id, source, type were set (to tell "missing" from "empty").
    set: u8,
    /// `traceparent` was derived from `ossatraceid`/`ossaspanid`, and none
    /// of the three has been set since: they agree by construction.
    tp_derived: bool,
    /// The check that `traceparent` agrees with the OSSA trace and span ids
    /// (`check_trace_context`), held once the event has a
    /// `traceparent` (set by `store_ext`, `fill_traceparent`, `to_builder`;
    /// extensions are never removed). Without one there is nothing to
    /// check, and code that never calls a setter that can add one (the
    /// generic extension setters, `fill_traceparent`, `to_builder`; the OSSA
    /// setters cannot) does not link the check.
    tp_check: Option<EventCheck>,
    /// Where each OSSA extension sits in `ev.extensions`, as index + 1 (0:
    /// not set), in [`OSSA_NAMES`] order. Extensions are only ever appended
    /// or replaced, so an index stays true (placing `pending` looks a slot
    /// up here rather than searching the list).
    ossa_at: [u8; 4],
    /// OSSA extensions set by their setters and not placed in
    /// `ev.extensions` yet (see [`place_pending`](Self::place_pending)).
    /// Writing the list in the setter, at an index known only at run time,
    /// kept LLVM from merging the by-value setter's stack slots however the
    /// index was found: each of the four setters still copied the 984-byte
    /// builder. These are fixed fields.
    pending: PendingOssa<'a>,
}

/// OSSA extensions waiting to be placed (see `EventBuilder::pending`).
#[derive(Clone, Copy, Default)]
struct PendingOssa<'a> {
    /// Bit `slot` ([`OSSA_NAMES`] order): `values[slot]` is waiting.
    set: u8,
    /// The waiting slots in the order they were first set, two bits each,
    /// the first in the lowest bits.
    order: u8,
    /// Bit `slot`: `values[slot]` failed the String check.
    bad: u8,
    values: [&'a str; 4],
}

impl<'a> PendingOssa<'a> {
    /// Sets the value waiting in `slot`; a slot set again keeps its place.
    #[inline(always)]
    fn put(&mut self, slot: usize, value: &'a str, bad: bool) {
        // slot < 4
        let bit = 1u8 << (slot % 4);
        if self.set & bit == 0 {
            self.order |= ((slot % 4) as u8) << (2 * self.set.count_ones());
            self.set |= bit;
        }
        if let Some(v) = self.values.get_mut(slot) {
            *v = value;
        }
        if bad {
            self.bad |= bit;
        } else {
            self.bad &= !bit;
        }
    }

    /// Whether `name` is waiting.
    fn has(&self, name: &str) -> bool {
        ossa_slot(name).is_some_and(|slot| self.set & (1 << slot) != 0)
    }
}

/// The waiting values only: placing leaves a slot's value where it is
/// (`place_pending_now` clears the bits, not the values), and a value
/// placed and since replaced is no longer the builder's to show.
impl fmt::Debug for PendingOssa<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut values = [""; 4];
        for (slot, (shown, &v)) in values.iter_mut().zip(&self.values).enumerate() {
            if self.set & (1 << slot) != 0 {
                *shown = v;
            }
        }
        f.debug_struct("PendingOssa")
            .field("set", &self.set)
            .field("order", &self.order)
            .field("bad", &self.bad)
            .field("values", &values)
            .finish()
    }
}

/// The OSSA extensions' names, in the order of `EventBuilder::ossa_at`.
const OSSA_NAMES: [&str; 4] = [
    ossa::EXT_AGENT_ID,
    ossa::EXT_INTERACTION_ID,
    ossa::EXT_TRACE_ID,
    ossa::EXT_SPAN_ID,
];
const OSSA_AGENT: usize = 0;
const OSSA_INTERACTION: usize = 1;
const OSSA_TRACE: usize = 2;
const OSSA_SPAN: usize = 3;

/// [`is_valid_string`] kept out of line for the OSSA setters: inlined into
/// one, its loops kept LLVM from merging the by-value setters' stack slots,
/// and the 984-byte builder was copied again (twice in the sdk-shaped
/// chain).
#[inline(never)]
fn string_is_valid(s: &str) -> bool {
    is_valid_string(s)
}

/// `name`'s slot in [`OSSA_NAMES`], if it is an OSSA extension.
fn ossa_slot(name: &str) -> Option<usize> {
    OSSA_NAMES.iter().position(|n| *n == name)
}

/// `EventBuilder::ossa_at` for an event's extensions.
fn ossa_positions(extensions: &Extensions<'_>) -> [u8; 4] {
    let mut at = [0; 4];
    for (i, e) in extensions.iter().enumerate() {
        if let Some(a) = ossa_slot(e.name).and_then(|k| at.get_mut(k)) {
            // i < MAX_EXTENSIONS = 16
            *a = (i + 1) as u8;
        }
    }
    at
}

const SET_ID: u8 = 1;
const SET_SOURCE: u8 = 2;
const SET_TYPE: u8 = 4;

impl Default for EventBuilder<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// The error for one extension more than
/// [`MAX_EXTENSIONS`](crate::MAX_EXTENSIONS): out of line and taking only
/// the name, so the setters that inline the push keep the builder's
/// address to themselves.
#[cold]
#[inline(never)]
fn too_many_extensions(name: &str) -> ValidationError {
    ValidationError::new(Attribute::named(name), Rule::TooManyExtensions)
}

impl<'a> EventBuilder<'a> {
    /// An empty builder; `id`, `source` and `type` must be set before `build`.
    ///
    /// ```
    /// use ossa_events_core::{Attribute, EventBuilder, Rule};
    /// let err = EventBuilder::new().id("1").source("/s").build().unwrap_err();
    /// assert_eq!((err.attribute, err.rule), (Attribute::Type, Rule::Missing));
    /// ```
    #[inline]
    pub fn new() -> Self {
        EventBuilder {
            ev: Event::unset(),
            time_str: None,
            data_rule: None,
            content_type_rule: None,
            content_type_json: true,
            ext_bad: 0,
            ext_check: check_ossa_ext,
            source_is_uri: true,
            dataschema_rule: None,
            error: None,
            set: 0,
            tp_derived: false,
            tp_check: None,
            ossa_at: [0; 4],
            pending: PendingOssa::default(),
        }
    }

    /// Sets `id`. Defaults to unset (required).
    ///
    /// ```
    /// use ossa_events_core::{Attribute, Event, Rule};
    /// let ev = Event::builder().id("evt-1").source("/s").ty("t").build()?;
    /// assert_eq!(ev.id(), "evt-1");
    /// // Set but empty is a different error from missing.
    /// let err = Event::builder().id("").source("/s").ty("t").build().unwrap_err();
    /// assert_eq!((err.attribute, err.rule), (Attribute::Id, Rule::Empty));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn id(mut self, id: &'a str) -> Self {
        self.ev.id = id;
        self.set |= SET_ID;
        self
    }
    /// Sets `source` (a URI-reference). Defaults to unset (required).
    ///
    /// ```
    /// use ossa_events_core::{Attribute, Event, Rule};
    /// let ev = Event::builder().id("1").source("https://agents.example.com/planner").ty("t").build()?;
    /// assert_eq!(ev.source(), "https://agents.example.com/planner");
    /// let err = Event::builder().id("1").source("has spaces").ty("t").build().unwrap_err();
    /// assert_eq!((err.attribute, err.rule), (Attribute::Source, Rule::NotUriReference));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn source(mut self, source: &'a str) -> Self {
        self.ev.source = source;
        self.source_is_uri = crate::uri::is_uri_reference_rt(source);
        self.set |= SET_SOURCE;
        self
    }
    /// Sets `type`. Defaults to unset (required).
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("com.example.order.created").build()?;
    /// assert_eq!(ev.ty(), "com.example.order.created");
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn ty(mut self, ty: &'a str) -> Self {
        self.ev.ty = ty;
        self.set |= SET_TYPE;
        self
    }
    /// Sets `datacontenttype` (a media type). Defaults to unset.
    ///
    /// ```
    /// use ossa_events_core::{Attribute, Event, Rule};
    /// let ev = Event::builder().id("1").source("/s").ty("t")
    ///     .datacontenttype("application/xml").data_text("application/xml", "<a/>").build()?;
    /// assert_eq!(ev.datacontenttype(), Some("application/xml"));
    /// let err = Event::builder().id("1").source("/s").ty("t").datacontenttype("json").build().unwrap_err();
    /// assert_eq!((err.attribute, err.rule), (Attribute::DataContentType, Rule::NotMediaType));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn datacontenttype(mut self, ct: &'a str) -> Self {
        self.ev.datacontenttype = Some(ct);
        self.content_type_rule = crate::uri::content_type_rule(ct);
        self.content_type_json = crate::uri::is_json_media_type(ct);
        self
    }

    /// Sets `datacontenttype: application/json` (known good: not checked).
    #[inline]
    fn json_content_type(mut self) -> Self {
        self.ev.datacontenttype = Some("application/json");
        self.content_type_rule = None;
        self.content_type_json = true;
        self
    }
    /// Sets `dataschema` (an absolute URI). Defaults to unset.
    ///
    /// ```
    /// use ossa_events_core::{Attribute, Event, Rule};
    /// let ev = Event::builder().id("1").source("/s").ty("t").dataschema("urn:schema:ping:v1").build()?;
    /// assert_eq!(ev.dataschema(), Some("urn:schema:ping:v1"));
    /// // A relative reference is not enough: the schema must be an absolute URI.
    /// let err = Event::builder().id("1").source("/s").ty("t").dataschema("/schemas/ping").build().unwrap_err();
    /// assert_eq!((err.attribute, err.rule), (Attribute::DataSchema, Rule::NotAbsoluteUri));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn dataschema(mut self, uri: &'a str) -> Self {
        self.set_dataschema(uri);
        self
    }
    /// [`dataschema`](Self::dataschema) in place (see [`fill_defaults`](Self::fill_defaults)).
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let mut b = Event::builder().id("1").source("/s").ty("t");
    /// b.set_dataschema("urn:schema:ping:v1");
    /// assert_eq!(b.build()?.dataschema(), Some("urn:schema:ping:v1"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn set_dataschema(&mut self, uri: &'a str) -> &mut Self {
        self.ev.dataschema = Some(uri);
        self.dataschema_rule = dataschema_rule(uri);
        self
    }
    /// Sets `subject`. Defaults to unset.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/repos/spec").ty("t").subject("pull/123").build()?;
    /// assert_eq!(ev.subject(), Some("pull/123"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn subject(mut self, subject: &'a str) -> Self {
        self.ev.subject = Some(subject);
        self
    }
    /// Sets `time`. Defaults to unset.
    ///
    /// ```
    /// use ossa_events_core::{Event, Timestamp};
    /// let now = Timestamp::from_unix_millis(1_764_000_000_250).ok_or("out of range")?;
    /// let ev = Event::builder().id("1").source("/s").ty("t").time(now).build()?;
    /// assert_eq!(ev.time().map(|t| t.to_string()).as_deref(), Some("2025-11-24T16:00:00.250Z"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn time(mut self, time: Timestamp) -> Self {
        self.ev.time = Some(time);
        self.time_str = None;
        self
    }
    /// Sets `time` from an RFC 3339 string, checked by `build` (parsed here,
    /// reported there). Defaults to unset.
    ///
    /// ```
    /// use ossa_events_core::{Attribute, Event, Rule, TimeError};
    /// let ev = Event::builder().id("1").source("/s").ty("t").time_str("2026-03-01T09:30:00+01:00").build()?;
    /// assert_eq!(ev.time().map(|t| t.hour()), Some(9));
    /// let err = Event::builder().id("1").source("/s").ty("t").time_str("2026-13-01T00:00:00Z").build().unwrap_err();
    /// assert_eq!((err.attribute, err.rule), (Attribute::Time, Rule::InvalidTimestamp(TimeError::Month)));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn time_str(mut self, time: &'a str) -> Self {
        self.time_str = Some(Timestamp::parse(time));
        self
    }
    /// Sets `time` from a [`crate::Clock`].
    ///
    /// ```
    /// use ossa_events_core::{Event, FixedClock, Timestamp};
    /// let clock = FixedClock(Timestamp::parse("2026-01-01T00:00:00Z")?);
    /// let ev = Event::builder().id("1").source("/s").ty("t").time_from(&clock).build()?;
    /// assert_eq!(ev.time(), Some(clock.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn time_from<C: crate::Clock + ?Sized>(self, clock: &C) -> Self {
        self.time(clock.now())
    }

    /// Sets the payload directly (see the `data_*` shorthands).
    ///
    /// ```
    /// use ossa_events_core::{Data, Event};
    /// let ev = Event::builder().id("1").source("/s").ty("t").data(Data::Json("[1,2,3]")).build()?;
    /// assert!(matches!(ev.data(), Some(Data::Json("[1,2,3]"))));
    /// assert_eq!(ev.datacontenttype(), None); // `data` alone sets no content type
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn data(self, data: Data<'a>) -> Self {
        let (rule, compact) = match data {
            Data::Json(raw) => {
                let (rule, compact) = json_rule(raw);
                (rule, crate::json::lex::compactor(compact))
            }
            Data::Base64(b) => (base64_rule(b), None),
            Data::Binary(_) => return self.set_binary(data),
            Data::Text(_) | Data::Serialize(_) => (None, None),
        };
        self.set_data(data, rule, compact)
    }

    /// Sets the payload, what its check found (see `data_rule`) and how
    /// JSON text is copied (see `Event::data_compact`).
    #[inline]
    fn set_data(
        mut self,
        data: Data<'a>,
        rule: Option<Rule>,
        compact: Option<crate::json::lex::Compact>,
    ) -> Self {
        self.ev.data = Some(data);
        self.ev.data_compact = compact;
        self.data_rule = rule;
        self
    }

    /// [`set_data`](Self::set_data) for bytes, with the Base64 encoder the
    /// JSON writer needs for them.
    #[inline]
    fn set_binary(mut self, data: Data<'a>) -> Self {
        self.ev.base64 = Some(crate::base64::encode_runs);
        self.set_data(data, None, None)
    }

    /// Sets a `T: Serialize` payload with `datacontenttype: application/json`.
    ///
    /// ```
    /// use ossa_events_core::{format::json, Event};
    /// #[derive(serde::Serialize)]
    /// struct Reading { sensor: &'static str, celsius: i32 }
    /// let reading = Reading { sensor: "t1", celsius: 21 };
    /// let ev = Event::builder().id("1").source("/s").ty("t").data_serialize(&reading).build()?;
    /// let mut buf = [0u8; 256];
    /// let n = json::to_slice(&ev, &mut buf)?; // serialized here, into the buffer
    /// assert!(buf[..n].ends_with(br#""data":{"sensor":"t1","celsius":21}}"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn data_serialize(self, payload: &'a dyn JsonPayload) -> Self {
        self.json_content_type()
            .set_data(Data::Serialize(payload), None, None)
    }
    /// Sets raw JSON text as the payload with `datacontenttype: application/json`;
    /// checked here to be well-formed, reported by `build`.
    ///
    /// ```
    /// use ossa_events_core::{Attribute, Event, Rule};
    /// let ev = Event::builder().id("1").source("/s").ty("t").data_json(r#"{"ok":true}"#).build()?;
    /// assert_eq!(ev.datacontenttype(), Some("application/json"));
    /// let err = Event::builder().id("1").source("/s").ty("t").data_json("{ok:true}").build().unwrap_err();
    /// assert_eq!(err.attribute, Attribute::Data);
    /// assert!(matches!(err.rule, Rule::InvalidJson(_)));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn data_json(self, raw: &'a str) -> Self {
        let (rule, compact) = json_rule(raw);
        self.json_content_type().set_data(
            Data::Json(raw),
            rule,
            crate::json::lex::compactor(compact),
        )
    }
    /// Sets a text payload and its content type (e.g. `text/plain`).
    ///
    /// ```
    /// use ossa_events_core::{Data, Event};
    /// let ev = Event::builder().id("1").source("/s").ty("t").data_text("text/csv", "a,b\n1,2").build()?;
    /// assert_eq!(ev.datacontenttype(), Some("text/csv"));
    /// assert!(matches!(ev.data(), Some(Data::Text("a,b\n1,2"))));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn data_text(self, content_type: &'a str, text: &'a str) -> Self {
        self.datacontenttype(content_type)
            .set_data(Data::Text(text), None, None)
    }
    /// Sets a binary payload (`data_base64` in JSON) and its content type.
    ///
    /// ```
    /// use ossa_events_core::{Data, Event};
    /// let png = [0x89, b'P', b'N', b'G'];
    /// let ev = Event::builder().id("1").source("/s").ty("t").data_binary("image/png", &png).build()?;
    /// assert!(ev.data().is_some_and(Data::is_binary));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn data_binary(self, content_type: &'a str, bytes: &'a [u8]) -> Self {
        self.datacontenttype(content_type)
            .set_binary(Data::Binary(bytes))
    }
    /// Removes the payload and `datacontenttype`.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t").data_json("{}").build()?;
    /// let bare = ev.to_builder().no_data().build()?;
    /// assert!(bare.data().is_none() && bare.datacontenttype().is_none());
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn no_data(mut self) -> Self {
        self.ev.data = None;
        self.ev.data_compact = None;
        self.data_rule = None;
        self.ev.datacontenttype = None;
        self.content_type_rule = None;
        self.content_type_json = true;
        self
    }

    /// Sets extension `name` (replacing an earlier value of the same name).
    /// `build` checks the name (`[a-z0-9]+`, not reserved) and the value.
    ///
    /// ```
    /// use ossa_events_core::{Attribute, Event, ExtValue, Rule};
    /// let ev = Event::builder().id("1").source("/s").ty("t")
    ///     .extension("retries", ExtValue::Integer(1))
    ///     .extension("retries", ExtValue::Integer(2)) // replaces the first
    ///     .build()?;
    /// assert_eq!(ev.extension("retries"), Some(ExtValue::Integer(2)));
    /// let err = Event::builder().id("1").source("/s").ty("t")
    ///     .extension("Retries", ExtValue::Integer(1)).build().unwrap_err();
    /// assert_eq!(err.rule, Rule::InvalidName);
    /// let err = Event::builder().id("1").source("/s").ty("t").extension_str("subject", "x").build().unwrap_err();
    /// assert_eq!((err.attribute, err.rule), (Attribute::Subject, Rule::ReservedName));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn extension(self, name: &'a str, value: ExtValue<'a>) -> Self {
        self.push_ext(name, value, false)
    }

    /// Sets an extension; its name is checked here, once, unless `known` (the
    /// OSSA names, which are constants).
    #[inline]
    fn push_ext(mut self, name: &'a str, value: ExtValue<'a>, known: bool) -> Self {
        self.put_ext(name, value, known);
        self
    }

    /// [`push_ext`](Self::push_ext) in place: the value is checked with
    /// [`ExtValue::validate`].
    fn put_ext(&mut self, name: &'a str, value: ExtValue<'a>, known: bool) {
        self.place_pending();
        if !known
            && !self.ev.extensions.iter().any(|e| e.name == name)
            && let Err(e) = check_extension_name(name)
        {
            self.error.get_or_insert(e);
            return;
        }
        let bad = value.validate(name).is_err();
        self.ext_check = check_ext;
        self.store_ext(name, value, bad);
    }

    /// Sets the OSSA extension in `slot` (see [`OSSA_NAMES`]) to a String,
    /// checked as one. The value waits in `pending` until
    /// [`place_pending`](Self::place_pending) puts it in the list: the
    /// by-value setters write fixed fields only and move no builder copies.
    #[inline(always)]
    fn put_ossa_ext(&mut self, slot: usize, value: &'a str) {
        let bad = !string_is_valid(value);
        if slot == OSSA_TRACE || slot == OSSA_SPAN {
            self.tp_derived = false;
        }
        self.pending.put(slot, value, bad);
    }

    /// Puts the OSSA extensions waiting in `pending` in the list, in the
    /// order they were first set, as the setters did when they wrote the
    /// list themselves: one already in the list gets its new value where it
    /// is, a new one is appended. So that no one sees the difference, every
    /// method that reads or changes `ev.extensions` calls this first, and
    /// only `has_extension` (`&self`) looks at `pending` itself.
    #[inline(always)]
    fn place_pending(&mut self) {
        if self.pending.set != 0 {
            self.place_pending_now();
        }
    }

    #[inline(never)]
    fn place_pending_now(&mut self) {
        // The values are read where they are, not copied out as a whole
        // (the copy's wide loads waited on the setters' narrower stores);
        // a slot's value is only read while its `set` bit is on.
        let (set, order, bad) = (self.pending.set, self.pending.order, self.pending.bad);
        (self.pending.set, self.pending.order, self.pending.bad) = (0, 0, 0);
        for k in 0..set.count_ones() {
            let slot = usize::from((order >> (2 * k)) & 3);
            let value = ExtValue::String(self.pending.values.get(slot).copied().unwrap_or(""));
            let at = self.ossa_at.get(slot).copied().unwrap_or(0);
            let i = if at == 0 {
                let name = OSSA_NAMES.get(slot).copied().unwrap_or(ossa::EXT_AGENT_ID);
                // No room: `push_new_ext` notes the error, as the setter did.
                let Some(i) = self.push_new_ext(name, value) else {
                    continue;
                };
                if let Some(at) = self.ossa_at.get_mut(slot) {
                    // i < MAX_EXTENSIONS = 16
                    *at = (i + 1) as u8;
                }
                i
            } else {
                let i = usize::from(at - 1);
                if let Some(e) = self.ev.extensions.get_mut(i) {
                    e.value = value;
                }
                i
            };
            self.note_ext_check(i, bad & (1 << slot) != 0);
        }
    }

    /// Notes extension `i`'s check result; its value was just set, so it no
    /// longer is a derived `traceparent`.
    #[inline(always)]
    fn note_ext_check(&mut self, i: usize, bad: bool) {
        // i < MAX_EXTENSIONS = 16
        let bit = 1u16 << (i % 16);
        self.ev.derived_tp &= !bit;
        if bad {
            self.ext_bad |= bit;
        } else {
            self.ext_bad &= !bit;
        }
    }

    /// Replaces or appends extension `name`, noting whether its check failed.
    ///
    /// Inlined into each setter: out of line it took the builder by address
    /// in every by-value setter that calls it (the OSSA setters, which
    /// measured that, now use `put_ossa_ext`). An OSSA name set through
    /// here is recorded in `ossa_at` too.
    #[inline(always)]
    fn store_ext(&mut self, name: &'a str, value: ExtValue<'a>, bad: bool) {
        self.place_pending();
        if name == crate::trace::EXT_TRACEPARENT {
            self.tp_check = Some(check_trace_context);
        }
        if let ExtValue::Binary(_) = value {
            self.ev.base64 = Some(crate::base64::encode_runs);
        }
        if self.tp_derived
            && matches!(
                name,
                crate::trace::EXT_TRACEPARENT | ossa::EXT_TRACE_ID | ossa::EXT_SPAN_ID
            )
        {
            self.tp_derived = false;
        }
        let i = match self.ev.extensions.iter().position(|e| e.name == name) {
            Some(i) => {
                if let Some(e) = self.ev.extensions.get_mut(i) {
                    e.value = value;
                }
                i
            }
            None => match self.push_new_ext(name, value) {
                Some(i) => {
                    if let Some(at) = ossa_slot(name).and_then(|k| self.ossa_at.get_mut(k)) {
                        // i < MAX_EXTENSIONS = 16
                        *at = (i + 1) as u8;
                    }
                    i
                }
                None => return,
            },
        };
        self.note_ext_check(i, bad);
    }

    /// Appends extension `name`, known not to be set yet; returns its index
    /// (`None`, with the error noted, when there is no room).
    fn push_new_ext(&mut self, name: &'a str, value: ExtValue<'a>) -> Option<usize> {
        if self.ev.extensions.push(Extension { name, value }).is_err() {
            if self.error.is_none() {
                self.error = Some(too_many_extensions(name));
            }
            return None;
        }
        Some(self.ev.extensions.len() - 1)
    }
    /// Whether extension `name` is set.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let b = Event::builder().ossa_agent_id("planner");
    /// assert!(b.has_extension("ossaagentid"));
    /// assert!(!b.has_extension("ossatraceid"));
    /// ```
    #[inline]
    pub fn has_extension(&self, name: &str) -> bool {
        self.pending.has(name) || self.ev.extensions.iter().any(|e| e.name == name)
    }
    /// The `id` set so far, if any: what a caller reports a rejected
    /// event under.
    ///
    /// ```
    /// use ossa_events_core::Event;
    /// let b = Event::builder().id("mine-1").subject("");
    /// assert_eq!(b.id_set(), Some("mine-1"));
    /// assert!(b.build().is_err()); // an empty subject: rejected, still "mine-1"
    /// assert_eq!(Event::builder().id_set(), None);
    /// ```
    #[inline]
    pub fn id_set(&self) -> Option<&'a str> {
        (self.set & SET_ID != 0).then_some(self.ev.id)
    }
    /// The `type` set so far, if any (an emitter looks up its schema
    /// before the event is built).
    ///
    /// ```
    /// use ossa_events_core::Event;
    /// assert_eq!(Event::builder().ty("dev.example.tick").ty_set(), Some("dev.example.tick"));
    /// assert_eq!(Event::builder().ty_set(), None);
    /// ```
    #[inline]
    pub fn ty_set(&self) -> Option<&'a str> {
        (self.set & SET_TYPE != 0).then_some(self.ev.ty)
    }
    /// The `dataschema` set so far, if any.
    ///
    /// ```
    /// use ossa_events_core::Event;
    /// let b = Event::builder().dataschema("urn:schema:ping:v1");
    /// assert_eq!(b.dataschema_set(), Some("urn:schema:ping:v1"));
    /// assert_eq!(Event::builder().dataschema_set(), None);
    /// ```
    #[inline]
    pub fn dataschema_set(&self) -> Option<&'a str> {
        self.ev.dataschema
    }
    /// Sets a String extension.
    ///
    /// ```
    /// use ossa_events_core::{Event, ExtValue};
    /// let ev = Event::builder().id("1").source("/s").ty("t").extension_str("tenant", "acme").build()?;
    /// assert_eq!(ev.extension("tenant"), Some(ExtValue::String("acme")));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn extension_str(self, name: &'a str, value: &'a str) -> Self {
        self.extension(name, ExtValue::String(value))
    }
    /// Sets the OSSA `ossaagentid` extension.
    ///
    /// ```
    /// use ossa_events_core::{ossa, Event, ExtValue};
    /// let ev = Event::builder().id("1").source("/s").ty("t").ossa_agent_id("planner").build()?;
    /// assert_eq!(ev.extension(ossa::EXT_AGENT_ID), Some(ExtValue::String("planner")));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn ossa_agent_id(mut self, id: &'a str) -> Self {
        self.put_ossa_ext(OSSA_AGENT, id);
        self
    }
    /// Sets the OSSA `ossainteractionid` extension.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t").ossa_interaction_id("session-9").build()?;
    /// assert_eq!(ev.ossa_interaction_id(), Some("session-9"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn ossa_interaction_id(mut self, id: &'a str) -> Self {
        self.put_ossa_ext(OSSA_INTERACTION, id);
        self
    }
    /// Sets the OSSA `ossatraceid` extension.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t")
    ///     .ossa_trace_id("4bf92f3577b34da6a3ce929d0e0e4736").build()?;
    /// assert_eq!(ev.ossa_trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn ossa_trace_id(mut self, id: &'a str) -> Self {
        self.put_ossa_ext(OSSA_TRACE, id);
        self
    }
    /// Sets the OSSA `ossaspanid` extension.
    ///
    /// ```
    /// # use ossa_events_core::Event;
    /// let ev = Event::builder().id("1").source("/s").ty("t").ossa_span_id("00f067aa0ba902b7").build()?;
    /// assert_eq!(ev.ossa_span_id(), Some("00f067aa0ba902b7"));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn ossa_span_id(mut self, id: &'a str) -> Self {
        self.put_ossa_ext(OSSA_SPAN, id);
        self
    }
    /// Sets `traceparent` (W3C Trace Context; checked by `build`, and
    /// against `ossatraceid` / `ossaspanid` when those are set).
    ///
    /// ```
    /// use ossa_events_core::{Event, Rule};
    /// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let b = Event::builder().id("1").source("/s").ty("t").traceparent(tp);
    /// assert!(b.clone().build().is_ok());
    /// // Another trace than the OSSA context's: refused.
    /// let err = b.ossa_trace_id("0af7651916cd43dd8448eb211c80319c").build().unwrap_err();
    /// assert_eq!(err.rule, Rule::TraceContextConflict);
    /// ```
    #[inline]
    pub fn traceparent(self, value: &'a str) -> Self {
        self.push_ext(crate::trace::EXT_TRACEPARENT, ExtValue::String(value), true)
    }
    /// Sets `tracestate` (W3C Trace Context list; checked by `build`).
    ///
    /// ```
    /// use ossa_events_core::{Event, Rule};
    /// let err = Event::builder().id("1").source("/s").ty("t").tracestate("=").build().unwrap_err();
    /// assert!(matches!(err.rule, Rule::InvalidTraceState(_)));
    /// ```
    #[inline]
    pub fn tracestate(self, value: &'a str) -> Self {
        self.push_ext(crate::trace::EXT_TRACESTATE, ExtValue::String(value), true)
    }
    /// Writes `traceparent` from the OSSA extensions when the event has none:
    /// `ossatraceid` as the trace id, `ossaspanid` as the parent id, flags
    /// `01` (sampled). Nothing happens unless both are set and are W3C ids
    /// (32 and 16 lowercase hex digits, not all zeros). The emitters do this
    /// for every event; `buf` holds the text.
    ///
    /// ```
    /// use ossa_events_core::{trace::TraceParentText, Event};
    /// let mut buf = TraceParentText::new();
    /// let ev = Event::builder().id("1").source("/s").ty("t")
    ///     .ossa_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
    ///     .ossa_span_id("00f067aa0ba902b7")
    ///     .derive_traceparent(&mut buf)
    ///     .build()?;
    /// assert_eq!(
    ///     ev.extension("traceparent").and_then(|v| v.as_str()),
    ///     Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    /// );
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn derive_traceparent(mut self, buf: &'a mut crate::trace::TraceParentText) -> Self {
        self.fill_traceparent(buf);
        self
    }

    /// [`derive_traceparent`](Self::derive_traceparent) in place (see
    /// [`fill_defaults`](Self::fill_defaults); out of line, so an emitter's
    /// `emit` stays small on firmware). An emitter may hand in a copy of the
    /// text it derived from its own context: it is reused as it is when the
    /// event carries those ids.
    ///
    /// ```
    /// use ossa_events_core::{trace::TraceParentText, Event};
    /// let mut tp = TraceParentText::new();
    /// let mut b = Event::builder().id("1").source("/s").ty("t")
    ///     .ossa_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
    ///     .ossa_span_id("00f067aa0ba902b7");
    /// b.fill_traceparent(&mut tp);
    /// let ev = b.build()?;
    /// assert_eq!(
    ///     ev.extension("traceparent").and_then(|v| v.as_str()),
    ///     Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    /// );
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn fill_traceparent(&mut self, buf: &'a mut crate::trace::TraceParentText) -> &mut Self {
        self.put_traceparent(buf);
        self
    }

    /// The work of [`fill_traceparent`](Self::fill_traceparent), out of line.
    #[inline(never)]
    fn put_traceparent(&mut self, buf: &'a mut crate::trace::TraceParentText) {
        self.place_pending();
        // One pass over the extensions for all three names.
        let (mut trace, mut span) = (None, None);
        for e in self.ev.extensions.iter() {
            match e.name {
                crate::trace::EXT_TRACEPARENT => return,
                ossa::EXT_TRACE_ID => trace = e.value.as_str(),
                ossa::EXT_SPAN_ID => span = e.value.as_str(),
                _ => {}
            }
        }
        let (Some(trace), Some(span)) = (trace, span) else {
            return;
        };
        let text = if buf.holds_sampled(trace, span) {
            // Written from these very ids, checked then.
            buf.as_str()
        } else {
            match crate::trace::TraceParent::new(trace, span, crate::trace::FLAG_SAMPLED) {
                Ok(tp) => buf.write(&tp),
                Err(_) => return,
            }
        };
        // Valid by construction (not set yet: the loop above returned if it
        // was), agreeing with the ids it was derived from (`build` skips the
        // conflict check unless they change) and needing no JSON escaping.
        if let Some(i) = self.push_new_ext(crate::trace::EXT_TRACEPARENT, ExtValue::String(text)) {
            // i < MAX_EXTENSIONS = 16
            let bit = 1u16 << (i % 16);
            self.ext_bad &= !bit;
            self.ev.derived_tp |= bit;
            self.tp_derived = true;
            self.tp_check = Some(check_trace_context);
        }
    }

    /// Sets the four OSSA extensions that are `Some` in `ctx`.
    ///
    /// ```
    /// use ossa_events_core::{ossa, Event};
    /// let ctx = ossa::Context { agent_id: Some("planner"), trace_id: Some("t-1"), ..Default::default() };
    /// let ev = Event::builder().id("1").source("/s").ty("t").ossa_context(&ctx).build()?;
    /// assert_eq!((ev.ossa_agent_id(), ev.ossa_trace_id()), (Some("planner"), Some("t-1")));
    /// assert_eq!(ev.extensions().len(), 2); // `None` fields add nothing
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn ossa_context(mut self, ctx: &ossa::Context<'a>) -> Self {
        if let Some(v) = ctx.agent_id {
            self = self.ossa_agent_id(v);
        }
        if let Some(v) = ctx.interaction_id {
            self = self.ossa_interaction_id(v);
        }
        if let Some(v) = ctx.trace_id {
            self = self.ossa_trace_id(v);
        }
        if let Some(v) = ctx.span_id {
            self = self.ossa_span_id(v);
        }
        self
    }

    /// Fills in `id`, `source` and `time` where they are not set yet (how an
    /// emitter completes the events handed to it).
    ///
    /// ```
    /// use ossa_events_core::{Event, Timestamp};
    /// let now = Timestamp::parse("2026-01-01T00:00:00Z")?;
    /// // `source` was set, so only `id` and `time` are filled in.
    /// let ev = Event::builder().source("/mine").ty("t").defaults("id-1", "/default", now).build()?;
    /// assert_eq!((ev.id(), ev.source(), ev.time()), ("id-1", "/mine", Some(now)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn defaults(mut self, id: &'a str, source: &'a str, time: Timestamp) -> Self {
        self.fill_defaults(id, source, time);
        self
    }

    /// [`defaults`](Self::defaults) in place.
    ///
    /// The `fill_*` and `set_*` methods change the builder where it is, for
    /// code that completes an event in steps, as an emitter does: each
    /// by-value setter moves the builder, which holds room for every
    /// extension (about 900 bytes on a 64-bit target), and a chain of them
    /// in a function that branches is a chain of copies.
    ///
    /// ```
    /// use ossa_events_core::{Event, Timestamp};
    /// let now = Timestamp::from_unix(1_700_000_000, 0).ok_or("out of range")?;
    /// let mut b = Event::builder().ty("dev.ossa.agent.started").source("/mine");
    /// b.fill_defaults("id-1", "/emitter", now);
    /// let ev = b.build()?;
    /// assert_eq!((ev.id(), ev.source(), ev.time()), ("id-1", "/mine", Some(now)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fill_defaults(&mut self, id: &'a str, source: &'a str, time: Timestamp) -> &mut Self {
        let source_is_uri = self.set & SET_SOURCE != 0 || crate::uri::is_uri_reference_rt(source);
        self.fill_defaults_checked(id, source, source_is_uri, time);
        self
    }

    /// [`fill_defaults`](Self::fill_defaults) with `source_is_uri`: whether
    /// `source` is a URI-reference (the no_std emitter knows it from its `Config`).
    pub(crate) fn fill_defaults_checked(
        &mut self,
        id: &'a str,
        source: &'a str,
        source_is_uri: bool,
        time: Timestamp,
    ) {
        if self.set & SET_ID == 0 {
            self.ev.id = id;
            self.set |= SET_ID;
        }
        if self.set & SET_SOURCE == 0 {
            self.ev.source = source;
            self.source_is_uri = source_is_uri;
            self.set |= SET_SOURCE;
        }
        if self.ev.time.is_none() && self.time_str.is_none() {
            self.ev.time = Some(time);
        }
    }

    /// Sets each OSSA extension that is `Some` in `ctx` and not set on the
    /// builder yet (unlike [`ossa_context`](Self::ossa_context), which
    /// replaces them), in place (see [`fill_defaults`](Self::fill_defaults)).
    ///
    /// An event that carries its own W3C `traceparent` keeps its trace: the
    /// context's trace and span ids are not added beside it (they would
    /// name another trace, and the event would be refused as
    /// [`TraceContextConflict`](crate::Rule::TraceContextConflict)).
    ///
    /// ```
    /// use ossa_events_core::{ossa, Event};
    /// let ctx = ossa::Context { agent_id: Some("planner"), trace_id: Some("t-1"), ..Default::default() };
    /// let mut b = Event::builder().id("1").source("/s").ty("t").ossa_agent_id("own");
    /// b.fill_ossa_context(&ctx);
    /// let ev = b.build()?;
    /// assert_eq!((ev.ossa_agent_id(), ev.ossa_trace_id()), (Some("own"), Some("t-1")));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn fill_ossa_context(&mut self, ctx: &ossa::Context<'a>) -> &mut Self {
        // A `traceparent` of the event's own (a derived one agrees with the
        // ids it came from, which are then set and not filled anyway).
        let own_trace = self.tp_check.is_some() && !self.tp_derived;
        let (trace, span) = if own_trace {
            (None, None)
        } else {
            (ctx.trace_id, ctx.span_id)
        };
        for (slot, value) in [
            (OSSA_AGENT, ctx.agent_id),
            (OSSA_INTERACTION, ctx.interaction_id),
            (OSSA_TRACE, trace),
            (OSSA_SPAN, span),
        ] {
            if let Some(v) = value {
                self.fill_ossa(slot, v);
            }
        }
        self
    }

    /// Sets the OSSA extension in `slot` (see [`OSSA_NAMES`]) unless it is
    /// already set.
    fn fill_ossa(&mut self, slot: usize, value: &'a str) {
        self.place_pending();
        if self.ossa_at.get(slot).is_none_or(|&at| at != 0) {
            return;
        }
        // Not set: appended through the shared `push_new_ext` (smaller than
        // `put_ossa_ext` on a device). A new index has no `ext_bad` or
        // `derived_tp` bit yet (extensions are never removed), and
        // `tp_derived` cannot be on (it needs both ids set).
        let name = OSSA_NAMES.get(slot).copied().unwrap_or(ossa::EXT_AGENT_ID);
        if let Some(i) = self.push_new_ext(name, ExtValue::String(value)) {
            if let Some(at) = self.ossa_at.get_mut(slot) {
                // i < MAX_EXTENSIONS = 16
                *at = (i + 1) as u8;
            }
            if !is_valid_string(value) {
                self.ext_bad |= 1u16 << (i % 16);
            }
        }
    }

    /// Checks every rule and returns the event.
    ///
    /// ```
    /// use ossa_events_core::{Event, Rule, MAX_EXTENSIONS};
    /// let names: Vec<String> = (0..=MAX_EXTENSIONS).map(|i| format!("x{i}")).collect();
    /// let mut b = Event::builder().id("1").source("/s").ty("t");
    /// for name in &names {
    ///     b = b.extension_str(name, "v");
    /// }
    /// // The 17th extension did not fit; the error waited for `build`.
    /// assert_eq!(b.build().unwrap_err().rule, Rule::TooManyExtensions);
    /// ```
    pub fn build(mut self) -> Result<Event<'a>, ValidationError> {
        self.build_ref()?;
        Ok(self.ev)
    }

    /// [`build`](Self::build) for an event read from elsewhere rather than
    /// made here: every rule of the specification, but not the agreement of
    /// `traceparent` with `ossatraceid` and `ossaspanid`
    /// ([`Rule::TraceContextConflict`]), which events built here keep and
    /// the parsers do not ask of what they read. For conversions of other
    /// libraries' events, such as `ossa-events`' `sdk::from_sdk`.
    ///
    /// ```
    /// use ossa_events_core::{Event, Rule};
    /// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let b = Event::builder().id("1").source("/s").ty("t").traceparent(tp).ossa_trace_id("t-1");
    /// assert_eq!(b.clone().build().unwrap_err().rule, Rule::TraceContextConflict);
    /// assert_eq!(b.build_as_read()?.ossa_trace_id(), Some("t-1"));
    /// // Every other rule still holds.
    /// let err = Event::builder().id("1").source("/s").ty("t").traceparent("00-x").build_as_read();
    /// assert!(matches!(err.unwrap_err().rule, Rule::InvalidTraceParent(_)));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn build_as_read(mut self) -> Result<Event<'a>, ValidationError> {
        self.tp_check = None;
        self.build()
    }

    /// [`build`](Self::build) without moving the event out of the builder:
    /// checks every rule the same way and lends the event. For code that
    /// only encodes or inspects the event: it saves copying it (an
    /// [`Event`] is several hundred bytes, held inline), and on a device the
    /// code that moves it. The emitters encode from here.
    ///
    /// The builder stays usable: more setters and another `build_ref` or
    /// `build` check the event again.
    ///
    /// ```
    /// use ossa_events_core::{format::json, Event, Rule};
    /// let mut b = Event::builder().id("1").source("/s").ty("t");
    /// let mut buf = [0u8; 256];
    /// let n = json::to_slice(b.build_ref()?, &mut buf)?;
    /// assert_eq!(&buf[..n], br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#);
    /// // The same rules as `build`:
    /// let mut bad = Event::builder().id("1").source("/s").ty("");
    /// assert_eq!(bad.build_ref().unwrap_err().rule, Rule::Empty);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn build_ref(&mut self) -> Result<&Event<'a>, ValidationError> {
        self.place_pending();
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        for (bit, attribute) in [
            (SET_ID, Attribute::Id),
            (SET_SOURCE, Attribute::Source),
            (SET_TYPE, Attribute::Type),
        ] {
            if self.set & bit == 0 {
                return Err(ValidationError::new(attribute, Rule::Missing));
            }
        }
        if let Some(t) = self.time_str {
            self.ev.time =
                Some(t.map_err(|e| {
                    ValidationError::new(Attribute::Time, Rule::InvalidTimestamp(e))
                })?);
        }
        let (content_type_rule, content_type_json) =
            (self.content_type_rule, self.content_type_json);
        let (bad, check) = (self.ext_bad, self.ext_check);
        let source_is_uri = self.source_is_uri;
        let dataschema_rule = self.dataschema_rule;
        self.ev.check_attributes(
            false,
            false,
            |_| source_is_uri,
            |_| content_type_rule,
            |_| dataschema_rule,
            |i, e| {
                if bad & (1 << i) != 0 {
                    check(&e.value, e.name)
                } else {
                    Ok(())
                }
            },
            |_| content_type_json,
        )?;
        // Where `check_data` would report it (it is the last check).
        if let Some(rule) = self.data_rule {
            let attribute = match rule {
                Rule::InvalidBase64(_) => Attribute::DataBase64,
                _ => Attribute::Data,
            };
            return Err(ValidationError::new(attribute, rule));
        }
        if !self.tp_derived
            && let Some(check) = self.tp_check
        {
            check(&self.ev)?;
        }
        Ok(&self.ev)
    }
}
