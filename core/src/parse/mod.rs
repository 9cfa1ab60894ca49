//! Zero-copy parsers: structured JSON, JSON batches, HTTP and Kafka messages.
//!
//! Every parser borrows from its input and unescapes or decodes strings into a
//! caller-provided [`Scratch`](crate::Scratch) buffer; a string that needs no
//! unescaping is never copied. Work is linear in the input, nesting is
//! bounded by [`MAX_DATA_DEPTH`](crate::MAX_DATA_DEPTH), and nothing recurses.
//! Every violation of the specification is a [`ParseError`](crate::ParseError)
//! naming the attribute and rule.
//!
//! ```
//! use ossa_events_core::{format::json, parse, Event, Scratch};
//! // A round trip: encode into a buffer, parse back borrowing from it. The
//! // backslash is escaped on the wire, so parsing unescapes it into `scratch`.
//! let sent = Event::builder().id("1").source("/s").ty("t").subject("tab\\there").build()?;
//! let mut wire = [0u8; 256];
//! let n = json::to_slice(&sent, &mut wire)?;
//! let mut scratch = [0u8; 64];
//! let got = parse::json::parse_event(&wire[..n], &mut Scratch::new(&mut scratch))?;
//! assert!(got.same_as(&sent, true));
//! assert_eq!(got.subject(), Some(r"tab\there"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod binary;
pub mod http;
pub mod json;
pub mod kafka;

use crate::attr::{ExtValue, Extension, Extensions, MAX_EXTENSIONS, SPEC_VERSION, is_valid_name};
use crate::error::{Attribute, Rule, ValidationError};
use crate::event::{Data, Event};
use crate::time::Timestamp;

/// What a member or header name is: one of the core attributes, a data
/// member, or an extension. Found once per name by [`Assembler::see`], then
/// used to store the value without matching the name again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    SpecVersion,
    Id,
    Source,
    Type,
    DataContentType,
    DataSchema,
    Subject,
    Time,
    Data,
    DataBase64,
    Extension,
}

impl Key {
    /// The key of `name`.
    #[inline]
    fn of(name: &str) -> Key {
        match name {
            "specversion" => Key::SpecVersion,
            "id" => Key::Id,
            "source" => Key::Source,
            "type" => Key::Type,
            "datacontenttype" => Key::DataContentType,
            "dataschema" => Key::DataSchema,
            "subject" => Key::Subject,
            "time" => Key::Time,
            "data" => Key::Data,
            "data_base64" => Key::DataBase64,
            _ => Key::Extension,
        }
    }

    /// Whether this is a core attribute or a data member (not an extension).
    #[inline]
    pub(crate) fn is_core(self) -> bool {
        self != Key::Extension
    }

    /// The attribute a core key names (`None` for an extension).
    fn attribute(self) -> Option<Attribute> {
        Some(match self {
            Key::SpecVersion => Attribute::SpecVersion,
            Key::Id => Attribute::Id,
            Key::Source => Attribute::Source,
            Key::Type => Attribute::Type,
            Key::DataContentType => Attribute::DataContentType,
            Key::DataSchema => Attribute::DataSchema,
            Key::Subject => Attribute::Subject,
            Key::Time => Attribute::Time,
            Key::Data => Attribute::Data,
            Key::DataBase64 => Attribute::DataBase64,
            Key::Extension => return None,
        })
    }
}

/// Collects attributes from any format, with duplicate checks, then checks the event.
pub(crate) struct Assembler<'a> {
    id: Option<&'a str>,
    source: Option<&'a str>,
    ty: Option<&'a str>,
    datacontenttype: Option<&'a str>,
    dataschema: Option<&'a str>,
    subject: Option<&'a str>,
    time: Option<Timestamp>,
    pub(crate) data: Option<Data<'a>>,
    /// `data` is JSON text without whitespace outside strings.
    pub(crate) data_compact: bool,
    specversion: bool,
    extensions: Extensions<'a>,
    /// Extension names that were `null` (unset, but still seen once).
    null_names: heapless::Vec<&'a str, MAX_EXTENSIONS>,
    seen: u16,
    /// Every string value set is known to be printable ASCII (the JSON
    /// parser's input has no byte at or above 0x7f and the value had no
    /// escapes): a valid CloudEvents `String` without the check. False
    /// unless a parser says so.
    pub(crate) plain_strings: bool,
}

fn err(attribute: Attribute, rule: Rule) -> ValidationError {
    ValidationError::new(attribute, rule)
}

impl<'a> Assembler<'a> {
    pub(crate) fn new() -> Self {
        Assembler {
            id: None,
            source: None,
            ty: None,
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            data: None,
            data_compact: false,
            specversion: false,
            extensions: Extensions::new(),
            null_names: heapless::Vec::new(),
            seen: 0,
            plain_strings: false,
        }
    }

    /// Marks `name` as seen and returns its [`Key`]; a second sighting is a
    /// duplicate, an extension name that breaks the naming rule an error.
    #[inline]
    pub(crate) fn see(&mut self, name: &str) -> Result<Key, ValidationError> {
        let key = Key::of(name);
        match key.attribute() {
            Some(attr) => {
                // One bit per core key (11 keys fit a u16).
                let bit = 1u16 << key as u16;
                if self.seen & bit != 0 {
                    return Err(err(attr, Rule::Duplicate));
                }
                self.seen |= bit;
            }
            None => {
                // Core names were matched above, so only the character rule is left.
                if !is_valid_name(name) {
                    return Err(err(Attribute::named(name), Rule::InvalidName));
                }
                if self.extensions.iter().any(|e| e.name == name) || self.null_names.contains(&name)
                {
                    return Err(err(Attribute::named(name), Rule::Duplicate));
                }
            }
        }
        Ok(key)
    }

    /// Records that extension `name` (already [`see`](Self::see)n) was `null`.
    pub(crate) fn set_null_ext(&mut self, name: &'a str) -> Result<(), ValidationError> {
        self.null_names
            .push(name)
            .map_err(|_| err(Attribute::named(name), Rule::TooManyExtensions))
    }

    /// Sets attribute `name`, already [`see`](Self::see)n as `key`, from its
    /// canonical string.
    pub(crate) fn set_str(
        &mut self,
        key: Key,
        name: &'a str,
        value: &'a str,
    ) -> Result<(), ValidationError> {
        match key {
            Key::SpecVersion => {
                if value != SPEC_VERSION {
                    return Err(err(Attribute::SpecVersion, Rule::UnsupportedSpecVersion));
                }
                self.specversion = true;
            }
            Key::Id => self.id = Some(value),
            Key::Source => self.source = Some(value),
            Key::Type => self.ty = Some(value),
            Key::DataContentType => self.datacontenttype = Some(value),
            Key::DataSchema => self.dataschema = Some(value),
            Key::Subject => self.subject = Some(value),
            Key::Time => {
                self.time = Some(
                    Timestamp::parse(value)
                        .map_err(|e| err(Attribute::Time, Rule::InvalidTimestamp(e)))?,
                )
            }
            Key::Data | Key::DataBase64 => {
                return Err(err(Attribute::named(name), Rule::ReservedName));
            }
            Key::Extension => self.set_ext(name, ExtValue::String(value))?,
        }
        Ok(())
    }

    /// Adds extension `name` (already [`see`](Self::see)n).
    pub(crate) fn set_ext(
        &mut self,
        name: &'a str,
        value: ExtValue<'a>,
    ) -> Result<(), ValidationError> {
        self.extensions
            .push(Extension { name, value })
            .map_err(|_| err(Attribute::named(name), Rule::TooManyExtensions))
    }

    pub(crate) fn datacontenttype(&self) -> Option<&'a str> {
        self.datacontenttype
    }

    /// Checks presence, then every rule, and returns the event, in the
    /// caller's result type: the event is built where it is returned (a
    /// `Result<Event, ValidationError>` converted by the caller was one more
    /// move of its ~800 bytes).
    #[inline]
    pub(crate) fn finish<E: From<ValidationError>>(self) -> Result<Event<'a>, E> {
        let (Some(id), Some(source), Some(ty), true) =
            (self.id, self.source, self.ty, self.specversion)
        else {
            return Err(self.missing().into());
        };
        let r = Ok(Event {
            id,
            source,
            ty,
            datacontenttype: self.datacontenttype,
            dataschema: self.dataschema,
            subject: self.subject,
            time: self.time,
            data: self.data,
            extensions: self.extensions,
            derived_tp: 0,
            data_compact: self.data_compact,
        });
        if let Ok(ev) = &r
            && let Err(e) = ev.validate_parsed(self.plain_strings)
        {
            return Err(e.into());
        }
        r
    }

    /// The first required attribute that is missing (in the order
    /// `specversion`, `id`, `source`, `type`).
    #[cold]
    fn missing(&self) -> ValidationError {
        let attr = if !self.specversion {
            Attribute::SpecVersion
        } else if self.id.is_none() {
            Attribute::Id
        } else if self.source.is_none() {
            Attribute::Source
        } else {
            Attribute::Type
        };
        err(attr, Rule::Missing)
    }
}
