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

use crate::attr::{ExtValue, Extension, MAX_EXTENSIONS, SPEC_VERSION, is_valid_name};
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
    /// The event as it is read; `id`, `source` and `type` count only once
    /// their bits in `set` are on (`"id": null` is no id). Kept whole, so
    /// the parser moves it out once, after `check`, instead of copying its
    /// extensions into a new one.
    ev: Event<'a>,
    /// `SET_ID`, `SET_SOURCE`, `SET_TYPE`: which of them were given.
    set: u8,
    specversion: bool,
    /// Extension names that were `null` (unset, but still seen once). Made
    /// by the first one: most events have none, and a new list cleared
    /// its ~270 bytes on every parse.
    null_names: Option<heapless::Vec<&'a str, MAX_EXTENSIONS>>,
    seen: u16,
    /// Every string value set is known to be printable ASCII (the JSON
    /// parser's input has no byte at or above 0x7f and the value had no
    /// escapes): a valid CloudEvents `String` without the check. False
    /// unless a parser says so.
    pub(crate) plain_strings: bool,
}

const SET_ID: u8 = 1;
const SET_SOURCE: u8 = 2;
const SET_TYPE: u8 = 4;

fn err(attribute: Attribute, rule: Rule) -> ValidationError {
    ValidationError::new(attribute, rule)
}

impl<'a> Assembler<'a> {
    pub(crate) fn new() -> Self {
        Assembler {
            ev: Event::unset(),
            set: 0,
            specversion: false,
            null_names: None,
            seen: 0,
            plain_strings: false,
        }
    }

    /// Sets the data and whether it is compact JSON text.
    pub(crate) fn set_data(&mut self, data: Option<Data<'a>>, compact: bool) {
        if let Some(Data::Binary(_)) = data {
            self.ev.base64 = Some(crate::base64::encode_runs);
        }
        self.ev.data = data;
        self.ev.data_compact = crate::json::lex::compactor(compact);
    }

    /// Whether data (or `data_base64`) was set.
    pub(crate) fn has_data(&self) -> bool {
        self.ev.data.is_some()
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
                if self.ev.extensions.iter().any(|e| e.name == name)
                    || self.null_names.as_ref().is_some_and(|n| n.contains(&name))
                {
                    return Err(err(Attribute::named(name), Rule::Duplicate));
                }
            }
        }
        Ok(key)
    }

    /// Records that extension `name` (already [`see`](Self::see)n) was `null`.
    /// A `null` member is unset (JSON format §2.2), not an extension: past
    /// `MAX_EXTENSIONS` of them they are no longer recorded (an event with
    /// 17 `null` members was refused as having too many extensions), and
    /// only a repeat of one of those goes unnoticed.
    pub(crate) fn set_null_ext(&mut self, name: &'a str) -> Result<(), ValidationError> {
        let _ = self
            .null_names
            .get_or_insert_with(heapless::Vec::new)
            .push(name);
        Ok(())
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
            Key::Id => {
                self.ev.id = value;
                self.set |= SET_ID;
            }
            Key::Source => {
                self.ev.source = value;
                self.set |= SET_SOURCE;
            }
            Key::Type => {
                self.ev.ty = value;
                self.set |= SET_TYPE;
            }
            Key::DataContentType => self.ev.datacontenttype = Some(value),
            Key::DataSchema => self.ev.dataschema = Some(value),
            Key::Subject => self.ev.subject = Some(value),
            Key::Time => {
                self.ev.time = Some(
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
        self.ev
            .extensions
            .push(Extension { name, value })
            .map_err(|_| err(Attribute::named(name), Rule::TooManyExtensions))
    }

    pub(crate) fn datacontenttype(&self) -> Option<&'a str> {
        self.ev.datacontenttype
    }

    /// Checks presence, then every rule. The caller then moves the event
    /// out of `ev`: a `finish(self)` moved the whole assembler (~1 KiB)
    /// before the event, whose extensions were once copied into a new one.
    #[inline(always)]
    pub(crate) fn check(&self) -> Result<(), ValidationError> {
        if self.set != SET_ID | SET_SOURCE | SET_TYPE || !self.specversion {
            return Err(self.missing());
        }
        self.ev.validate_parsed(self.plain_strings)
    }

    /// The first required attribute that is missing (in the order
    /// `specversion`, `id`, `source`, `type`).
    #[cold]
    fn missing(&self) -> ValidationError {
        let attr = if !self.specversion {
            Attribute::SpecVersion
        } else if self.set & SET_ID == 0 {
            Attribute::Id
        } else if self.set & SET_SOURCE == 0 {
            Attribute::Source
        } else {
            Attribute::Type
        };
        err(attr, Rule::Missing)
    }
}
