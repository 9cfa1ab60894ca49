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

/// Bits of the core attributes seen so far (duplicate and missing checks).
const SPECVERSION: u16 = 1;
const ID: u16 = 1 << 1;
const SOURCE: u16 = 1 << 2;
const TYPE: u16 = 1 << 3;
const DATACONTENTTYPE: u16 = 1 << 4;
const DATASCHEMA: u16 = 1 << 5;
const SUBJECT: u16 = 1 << 6;
const TIME: u16 = 1 << 7;
const DATA: u16 = 1 << 8;
const DATA_BASE64: u16 = 1 << 9;

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
    specversion: bool,
    extensions: Extensions<'a>,
    /// Extension names that were `null` (unset, but still seen once).
    null_names: heapless::Vec<&'a str, MAX_EXTENSIONS>,
    seen: u16,
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
            specversion: false,
            extensions: Extensions::new(),
            null_names: heapless::Vec::new(),
            seen: 0,
        }
    }

    /// The bit of core attribute `name`, if it is one.
    fn bit(name: &str) -> Option<(u16, Attribute)> {
        Some(match name {
            "specversion" => (SPECVERSION, Attribute::SpecVersion),
            "id" => (ID, Attribute::Id),
            "source" => (SOURCE, Attribute::Source),
            "type" => (TYPE, Attribute::Type),
            "datacontenttype" => (DATACONTENTTYPE, Attribute::DataContentType),
            "dataschema" => (DATASCHEMA, Attribute::DataSchema),
            "subject" => (SUBJECT, Attribute::Subject),
            "time" => (TIME, Attribute::Time),
            "data" => (DATA, Attribute::Data),
            "data_base64" => (DATA_BASE64, Attribute::DataBase64),
            _ => return None,
        })
    }

    /// Marks `name` as seen; a second sighting is a duplicate. Returns whether
    /// `name` is a core attribute (or data member).
    pub(crate) fn see(&mut self, name: &str) -> Result<bool, ValidationError> {
        match Self::bit(name) {
            Some((bit, attr)) => {
                if self.seen & bit != 0 {
                    return Err(err(attr, Rule::Duplicate));
                }
                self.seen |= bit;
                Ok(true)
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
                Ok(false)
            }
        }
    }

    /// Records that extension `name` (already [`see`](Self::see)n) was `null`.
    pub(crate) fn set_null_ext(&mut self, name: &'a str) -> Result<(), ValidationError> {
        self.null_names
            .push(name)
            .map_err(|_| err(Attribute::named(name), Rule::TooManyExtensions))
    }

    /// Sets attribute `name` (already [`see`](Self::see)n) from its canonical string.
    pub(crate) fn set_str(&mut self, name: &'a str, value: &'a str) -> Result<(), ValidationError> {
        match name {
            "specversion" => {
                if value != SPEC_VERSION {
                    return Err(err(Attribute::SpecVersion, Rule::UnsupportedSpecVersion));
                }
                self.specversion = true;
            }
            "id" => self.id = Some(value),
            "source" => self.source = Some(value),
            "type" => self.ty = Some(value),
            "datacontenttype" => self.datacontenttype = Some(value),
            "dataschema" => self.dataschema = Some(value),
            "subject" => self.subject = Some(value),
            "time" => {
                self.time = Some(
                    Timestamp::parse(value)
                        .map_err(|e| err(Attribute::Time, Rule::InvalidTimestamp(e)))?,
                )
            }
            "data" | "data_base64" => return Err(err(Attribute::named(name), Rule::ReservedName)),
            _ => self.set_ext(name, ExtValue::String(value))?,
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

    /// Checks presence, then every rule, and returns the event.
    pub(crate) fn finish(self) -> Result<Event<'a>, ValidationError> {
        if !self.specversion {
            return Err(err(Attribute::SpecVersion, Rule::Missing));
        }
        let ev = Event {
            id: self.id.ok_or(err(Attribute::Id, Rule::Missing))?,
            source: self.source.ok_or(err(Attribute::Source, Rule::Missing))?,
            ty: self.ty.ok_or(err(Attribute::Type, Rule::Missing))?,
            datacontenttype: self.datacontenttype,
            dataschema: self.dataschema,
            subject: self.subject,
            time: self.time,
            data: self.data,
            extensions: self.extensions,
            derived_tp: 0,
        };
        ev.validate_parsed()?;
        Ok(ev)
    }
}
