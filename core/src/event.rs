//! The event model: a borrowed, always-valid [`Event`] and its [`EventBuilder`].

use core::fmt;

use crate::attr::{
    check_extension_name, is_valid_string, ExtValue, Extension, Extensions, SPEC_VERSION,
};
use crate::error::{Attribute, Rule, ValidationError};
use crate::json::ser::JsonPayload;
use crate::ossa;
use crate::time::Timestamp;

/// Deepest nesting accepted inside raw JSON `data`.
pub const MAX_DATA_DEPTH: usize = 128;

/// The event payload.
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
    pub fn is_binary(&self) -> bool {
        matches!(self, Data::Binary(_) | Data::Base64(_))
    }

    /// Compares two payloads by content: `Binary` equals `Base64` of the same bytes,
    /// JSON equals JSON ignoring insignificant whitespace, `Text` equals `Text` or
    /// `Binary` of the same bytes. `Serialize` payloads compare unequal.
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
}

impl<'a> Event<'a> {
    /// Starts building an event.
    pub fn builder() -> EventBuilder<'a> {
        EventBuilder::new()
    }

    /// A builder holding this event's attributes and data, to derive a new event.
    pub fn to_builder(&self) -> EventBuilder<'a> {
        EventBuilder {
            ev: self.clone(),
            time_str: None,
            error: None,
            set: SET_ID | SET_SOURCE | SET_TYPE,
        }
    }

    /// `id`
    pub fn id(&self) -> &'a str {
        self.id
    }
    /// `source` (a URI-reference)
    pub fn source(&self) -> &'a str {
        self.source
    }
    /// `specversion`: always `"1.0"`.
    pub fn specversion(&self) -> &'static str {
        SPEC_VERSION
    }
    /// `type`
    pub fn ty(&self) -> &'a str {
        self.ty
    }
    /// `datacontenttype`, as set (see [`Event::effective_content_type`]).
    pub fn datacontenttype(&self) -> Option<&'a str> {
        self.datacontenttype
    }
    /// `dataschema` (an absolute URI)
    pub fn dataschema(&self) -> Option<&'a str> {
        self.dataschema
    }
    /// `subject`
    pub fn subject(&self) -> Option<&'a str> {
        self.subject
    }
    /// `time`
    pub fn time(&self) -> Option<Timestamp> {
        self.time
    }
    /// The payload.
    pub fn data(&self) -> Option<&Data<'a>> {
        self.data.as_ref()
    }
    /// All extension attributes, in the order they were set or read.
    pub fn extensions(&self) -> &[Extension<'a>] {
        &self.extensions
    }
    /// The value of extension `name`.
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
    pub fn ossa_agent_id(&self) -> Option<&'a str> {
        self.ext_str(ossa::EXT_AGENT_ID)
    }
    /// The OSSA `ossainteractionid` extension.
    pub fn ossa_interaction_id(&self) -> Option<&'a str> {
        self.ext_str(ossa::EXT_INTERACTION_ID)
    }
    /// The OSSA `ossatraceid` extension.
    pub fn ossa_trace_id(&self) -> Option<&'a str> {
        self.ext_str(ossa::EXT_TRACE_ID)
    }
    /// The OSSA `ossaspanid` extension.
    pub fn ossa_span_id(&self) -> Option<&'a str> {
        self.ext_str(ossa::EXT_SPAN_ID)
    }

    /// The content type of `data` as a binding must state it: `datacontenttype`
    /// when set; `application/json` when unset and the data is JSON or text (the
    /// JSON format's implied type); none for binary data without a type.
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
    pub fn data_is_json(&self) -> bool {
        self.datacontenttype
            .is_none_or(crate::uri::is_json_media_type)
    }

    /// Compares two events attribute by attribute. Extensions compare by
    /// canonical string when `typed` is false (how binary modes carry them) and
    /// by type and value when true; data compares by content
    /// ([`Data::same_content`]).
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
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.check(true, true)
    }

    /// [`validate`](Self::validate) for the parsers, which already checked
    /// extension names, duplicates and JSON data while reading.
    pub(crate) fn validate_parsed(&self) -> Result<(), ValidationError> {
        self.check(false, false)
    }

    /// Every rule; extension names and duplicates only when `names` (the
    /// builder and the parsers check them as they add extensions), JSON data
    /// only when `data` (the parsers check it while reading).
    fn check(&self, names: bool, data: bool) -> Result<(), ValidationError> {
        check_required(Attribute::Id, self.id)?;
        check_required(Attribute::Source, self.source)?;
        check_required(Attribute::Type, self.ty)?;
        if !crate::uri::is_uri_reference(self.source) {
            return Err(ValidationError::new(
                Attribute::Source,
                Rule::NotUriReference,
            ));
        }
        if let Some(ct) = self.datacontenttype {
            if ct.is_empty() {
                return Err(ValidationError::new(
                    Attribute::DataContentType,
                    Rule::Empty,
                ));
            }
            if !crate::uri::is_media_type(ct) {
                return Err(ValidationError::new(
                    Attribute::DataContentType,
                    Rule::NotMediaType,
                ));
            }
        }
        if let Some(s) = self.dataschema {
            if s.is_empty() {
                return Err(ValidationError::new(Attribute::DataSchema, Rule::Empty));
            }
            if !crate::uri::is_absolute_uri(s) {
                return Err(ValidationError::new(
                    Attribute::DataSchema,
                    Rule::NotAbsoluteUri,
                ));
            }
        }
        if let Some(s) = self.subject {
            check_required(Attribute::Subject, s)?;
        }
        for (i, e) in self.extensions.iter().enumerate() {
            e.value.validate(e.name)?;
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
        if matches!(self.data, Some(Data::Json(_) | Data::Serialize(_))) && !self.data_is_json() {
            return Err(ValidationError::new(Attribute::Data, Rule::DataNotString));
        }
        match self.data {
            Some(Data::Json(raw)) if data => {
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

fn check_required(attribute: Attribute, s: &str) -> Result<(), ValidationError> {
    if s.is_empty() {
        return Err(ValidationError::new(attribute, Rule::Empty));
    }
    if !is_valid_string(s) {
        return Err(ValidationError::new(attribute, Rule::InvalidCharacter));
    }
    Ok(())
}

/// Builds an [`Event`]; [`EventBuilder::build`] checks every rule.
///
/// Setters never fail; the first problem (such as an 17th extension) is kept
/// and returned by `build`.
#[derive(Debug, Clone)]
#[must_use = "call .build() to get the event"]
pub struct EventBuilder<'a> {
    ev: Event<'a>,
    time_str: Option<&'a str>,
    error: Option<ValidationError>,
    /// Which of id, source, type were set (to tell "missing" from "empty").
    set: u8,
}

const SET_ID: u8 = 1;
const SET_SOURCE: u8 = 2;
const SET_TYPE: u8 = 4;

impl Default for EventBuilder<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> EventBuilder<'a> {
    /// An empty builder; `id`, `source` and `type` must be set before `build`.
    #[inline]
    pub fn new() -> Self {
        EventBuilder {
            ev: Event {
                id: "",
                source: "",
                ty: "",
                datacontenttype: None,
                dataschema: None,
                subject: None,
                time: None,
                data: None,
                extensions: Extensions::new(),
            },
            time_str: None,
            error: None,
            set: 0,
        }
    }

    /// Sets `id`. Defaults to unset (required).
    #[inline]
    pub fn id(mut self, id: &'a str) -> Self {
        self.ev.id = id;
        self.set |= SET_ID;
        self
    }
    /// Sets `source` (a URI-reference). Defaults to unset (required).
    #[inline]
    pub fn source(mut self, source: &'a str) -> Self {
        self.ev.source = source;
        self.set |= SET_SOURCE;
        self
    }
    /// Sets `type`. Defaults to unset (required).
    #[inline]
    pub fn ty(mut self, ty: &'a str) -> Self {
        self.ev.ty = ty;
        self.set |= SET_TYPE;
        self
    }
    /// Sets `datacontenttype` (a media type). Defaults to unset.
    #[inline]
    pub fn datacontenttype(mut self, ct: &'a str) -> Self {
        self.ev.datacontenttype = Some(ct);
        self
    }
    /// Sets `dataschema` (an absolute URI). Defaults to unset.
    #[inline]
    pub fn dataschema(mut self, uri: &'a str) -> Self {
        self.ev.dataschema = Some(uri);
        self
    }
    /// Sets `subject`. Defaults to unset.
    #[inline]
    pub fn subject(mut self, subject: &'a str) -> Self {
        self.ev.subject = Some(subject);
        self
    }
    /// Sets `time`. Defaults to unset.
    #[inline]
    pub fn time(mut self, time: Timestamp) -> Self {
        self.ev.time = Some(time);
        self.time_str = None;
        self
    }
    /// Sets `time` from an RFC 3339 string, checked by `build`. Defaults to unset.
    #[inline]
    pub fn time_str(mut self, time: &'a str) -> Self {
        self.time_str = Some(time);
        self
    }
    /// Sets `time` from a [`crate::Clock`].
    #[inline]
    pub fn time_from<C: crate::Clock + ?Sized>(self, clock: &C) -> Self {
        self.time(clock.now())
    }

    /// Sets the payload directly (see the `data_*` shorthands).
    #[inline]
    pub fn data(mut self, data: Data<'a>) -> Self {
        self.ev.data = Some(data);
        self
    }
    /// Sets a `T: Serialize` payload with `datacontenttype: application/json`.
    #[inline]
    pub fn data_serialize(self, payload: &'a dyn JsonPayload) -> Self {
        self.datacontenttype("application/json")
            .data(Data::Serialize(payload))
    }
    /// Sets raw JSON text as the payload with `datacontenttype: application/json`;
    /// `build` checks that it is well-formed.
    #[inline]
    pub fn data_json(self, raw: &'a str) -> Self {
        self.datacontenttype("application/json")
            .data(Data::Json(raw))
    }
    /// Sets a text payload and its content type (e.g. `text/plain`).
    #[inline]
    pub fn data_text(self, content_type: &'a str, text: &'a str) -> Self {
        self.datacontenttype(content_type).data(Data::Text(text))
    }
    /// Sets a binary payload (`data_base64` in JSON) and its content type.
    #[inline]
    pub fn data_binary(self, content_type: &'a str, bytes: &'a [u8]) -> Self {
        self.datacontenttype(content_type).data(Data::Binary(bytes))
    }
    /// Removes the payload and `datacontenttype`.
    #[inline]
    pub fn no_data(mut self) -> Self {
        self.ev.data = None;
        self.ev.datacontenttype = None;
        self
    }

    /// Sets extension `name` (replacing an earlier value of the same name).
    /// `build` checks the name (`[a-z0-9]+`, not reserved) and the value.
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

    /// [`push_ext`](Self::push_ext) in place.
    fn put_ext(&mut self, name: &'a str, value: ExtValue<'a>, known: bool) {
        if let Some(e) = self.ev.extensions.iter_mut().find(|e| e.name == name) {
            e.value = value;
            return;
        }
        if !known {
            if let Err(e) = check_extension_name(name) {
                self.error.get_or_insert(e);
                return;
            }
        }
        if self.ev.extensions.push(Extension { name, value }).is_err() && self.error.is_none() {
            self.error = Some(ValidationError::new(
                Attribute::named(name),
                Rule::TooManyExtensions,
            ));
        }
    }
    /// Whether extension `name` is set.
    #[inline]
    pub fn has_extension(&self, name: &str) -> bool {
        self.ev.extensions.iter().any(|e| e.name == name)
    }
    /// Sets a String extension.
    #[inline]
    pub fn extension_str(self, name: &'a str, value: &'a str) -> Self {
        self.extension(name, ExtValue::String(value))
    }
    /// Sets the OSSA `ossaagentid` extension.
    #[inline]
    pub fn ossa_agent_id(self, id: &'a str) -> Self {
        self.push_ext(ossa::EXT_AGENT_ID, ExtValue::String(id), true)
    }
    /// Sets the OSSA `ossainteractionid` extension.
    #[inline]
    pub fn ossa_interaction_id(self, id: &'a str) -> Self {
        self.push_ext(ossa::EXT_INTERACTION_ID, ExtValue::String(id), true)
    }
    /// Sets the OSSA `ossatraceid` extension.
    #[inline]
    pub fn ossa_trace_id(self, id: &'a str) -> Self {
        self.push_ext(ossa::EXT_TRACE_ID, ExtValue::String(id), true)
    }
    /// Sets the OSSA `ossaspanid` extension.
    #[inline]
    pub fn ossa_span_id(self, id: &'a str) -> Self {
        self.push_ext(ossa::EXT_SPAN_ID, ExtValue::String(id), true)
    }
    /// Sets the four OSSA extensions that are `Some` in `ctx`.
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
    #[inline]
    pub fn defaults(mut self, id: &'a str, source: &'a str, time: Timestamp) -> Self {
        self.fill_defaults(id, source, time);
        self
    }

    /// [`defaults`](Self::defaults) in place (the emitter's path: no copies of the builder).
    pub(crate) fn fill_defaults(&mut self, id: &'a str, source: &'a str, time: Timestamp) {
        if self.set & SET_ID == 0 {
            self.ev.id = id;
            self.set |= SET_ID;
        }
        if self.set & SET_SOURCE == 0 {
            self.ev.source = source;
            self.set |= SET_SOURCE;
        }
        if self.ev.time.is_none() && self.time_str.is_none() {
            self.ev.time = Some(time);
        }
    }

    /// Sets OSSA extension `name` (one of the `ossa::EXT_*` constants) unless
    /// it is already set.
    pub(crate) fn fill_ossa(&mut self, name: &'static str, value: &'a str) {
        if !self.ev.extensions.iter().any(|e| e.name == name) {
            self.put_ext(name, ExtValue::String(value), true);
        }
    }

    /// Checks every rule and returns the event.
    pub fn build(mut self) -> Result<Event<'a>, ValidationError> {
        if let Some(e) = self.error {
            return Err(e);
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
                Some(Timestamp::parse(t).map_err(|e| {
                    ValidationError::new(Attribute::Time, Rule::InvalidTimestamp(e))
                })?);
        }
        self.ev.check(false, true)?;
        Ok(self.ev)
    }
}
