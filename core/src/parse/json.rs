//! Structured JSON events and JSON batches.
//!
//! ```
//! use ossa_events_core::{parse, Scratch};
//! let input = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"x":1}}"#;
//! let mut buf = [0u8; 256];
//! let ev = parse::json::parse_event(input, &mut Scratch::new(&mut buf))?;
//! assert_eq!(ev.id(), "1");
//!
//! let mut buf = [0u8; 256];
//! let batch = br#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"}]"#;
//! let mut events = parse::json::BatchParser::new(batch)?;
//! while let Some(ev) = events.next_event(&mut buf) {
//!     assert_eq!(ev?.ty(), "t");
//! }
//! # Ok::<(), ossa_events_core::ParseError>(())
//! ```

use crate::attr::ExtValue;
use crate::error::{Attribute, InBatchError, ParseError, Rule, ValidationError};
use crate::event::{Data, Event, MAX_DATA_DEPTH};
use crate::json::lex::{
    IntegerValue, JsonStr, Lexer, Scalar, next_element, next_member, parse_integer,
};
use crate::scratch::Scratch;

use super::{Assembler, Key};

/// Parses one structured JSON event (`application/cloudevents+json`).
///
/// ```
/// use ossa_events_core::{parse, Attribute, ParseError, Rule, Scratch};
/// let input = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","retries":3}"#;
/// let mut buf = [0u8; 128];
/// let ev = parse::json::parse_event(input, &mut Scratch::new(&mut buf))?;
/// assert_eq!(ev.extension("retries"), Some(ossa_events_core::ExtValue::Integer(3)));
/// // Every rule is checked; the error names the attribute.
/// let bad = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"yesterday"}"#;
/// let mut buf2 = [0u8; 128];
/// let err = parse::json::parse_event(bad, &mut Scratch::new(&mut buf2)).unwrap_err();
/// assert!(matches!(err, ParseError::Invalid(v) if v.attribute == Attribute::Time && matches!(v.rule, Rule::InvalidTimestamp(_))));
/// # Ok::<(), ossa_events_core::ParseError>(())
/// ```
pub fn parse_event<'a>(
    input: &'a [u8],
    scratch: &mut Scratch<'a>,
) -> Result<Event<'a>, ParseError> {
    let mut lex = Lexer::for_events(input);
    match lex.peek() {
        Some(b'{') => {}
        Some(_) => {
            // Tell malformed JSON apart from JSON that is not an object.
            lex.value(MAX_DATA_DEPTH)?;
            lex.finish()?;
            return Err(ParseError::NotAnObject);
        }
        None => {
            lex.value(MAX_DATA_DEPTH)?;
            return Err(ParseError::NotAnObject);
        }
    }
    // The event is built in the result it is returned in: `?` and `Ok(ev)`
    // here moved its ~800 bytes twice more, and checking the result for
    // trailing input once (so `parse_object` does that).
    parse_object(&mut lex, scratch, true)
}

/// Reads one object. The input may outlive the scratch buffer (`'i: 'a`): the
/// event borrows from both for the shorter of the two.
///
/// Its only errors are [`ParseError::Json`], [`ParseError::Invalid`] and
/// [`ParseError::ScratchFull`] ([`BatchParser`] tells the last two apart).
///
/// `whole`: the object is the whole input, so nothing but whitespace may
/// follow it. That is checked before the rules of the whole object (the
/// required attributes, data beside `data_base64`): input that is not JSON
/// is reported as such. A member that breaks a rule is reported where it is
/// read, before anything after it.
fn parse_object<'i: 'a, 'a>(
    lex: &mut Lexer<'i>,
    scratch: &mut Scratch<'a>,
    whole: bool,
) -> Result<Event<'a>, ParseError> {
    lex.eat(b'{')?;
    let mut asm = Assembler::new();
    asm.plain_strings = lex.printable();
    let mut raw_data: Option<(&'a str, bool)> = None;
    let mut first = true;
    while let Some(key) = next_member(lex, &mut first)? {
        let key: JsonStr<'a> = key;
        let name = key.unescape_into(scratch)?;
        let key = asm.see(name)?;
        let core = key.is_core();
        if key == Key::Data {
            // An explicit `null` payload is kept (JSON format §3.1.1: distinct
            // from no `data` member): beside data_base64 it is a conflict, and
            // with a non-JSON content type it is data that is not a string.
            raw_data = Some(lex.value_str_compact(MAX_DATA_DEPTH)?);
            continue;
        }
        let attr = || Attribute::named(name);
        match lex.scalar()? {
            Scalar::Null if !core => asm.set_null_ext(name)?,
            Scalar::Null => {}
            Scalar::Str(s) => {
                let s: JsonStr<'a> = s;
                if s.has_escapes() {
                    asm.plain_strings = false;
                }
                let value = s.unescape_into(scratch)?;
                if key == Key::DataBase64 {
                    asm.set_data(Some(Data::Base64(value)), false);
                } else {
                    asm.set_str(key, name, value)?;
                }
            }
            Scalar::Bool(b) if !core => asm.set_ext(name, ExtValue::Boolean(b))?,
            Scalar::Number(n) if !core => match parse_integer(n) {
                Some(IntegerValue::Int(i)) => match i32::try_from(i) {
                    Ok(i) => asm.set_ext(name, ExtValue::Integer(i))?,
                    Err(_) => {
                        return Err(ValidationError::new(attr(), Rule::IntegerOutOfRange).into());
                    }
                },
                Some(IntegerValue::Overflow) => {
                    return Err(ValidationError::new(attr(), Rule::IntegerOutOfRange).into());
                }
                None => return Err(ValidationError::new(attr(), Rule::NotInteger).into()),
            },
            Scalar::Container => {
                // Report the type error, after checking the value is JSON at all.
                lex.value(MAX_DATA_DEPTH)?;
                return Err(ValidationError::new(attr(), Rule::WrongType).into());
            }
            _ => return Err(ValidationError::new(attr(), Rule::WrongType).into()),
        }
    }
    if whole {
        lex.finish()?;
    }
    if let Some((raw, compact)) = raw_data {
        if asm.has_data() {
            return Err(ValidationError::new(Attribute::Data, Rule::DataConflict).into());
        }
        let is_json = asm
            .datacontenttype()
            .is_none_or(crate::uri::is_json_media_type);
        if !is_json && raw.starts_with('"') {
            let mut l = Lexer::new(raw.as_bytes());
            asm.set_data(Some(Data::Text(l.string()?.unescape_into(scratch)?)), false);
        } else {
            asm.set_data(Some(Data::Json(raw)), compact);
        }
    }
    asm.check()?;
    Ok(asm.ev)
}

/// Reads the events of a JSON batch (`application/cloudevents-batch+json`) one
/// at a time, each into a scratch buffer that the next one may reuse.
///
/// ```
/// use ossa_events_core::{parse::json::BatchParser, InBatchError, ParseError};
/// let input = br#"[
///   {"specversion":"1.0","id":"1","source":"/s","type":"t"},
///   {"specversion":"1.0","id":"2","source":"/s"}
/// ]"#;
/// let mut events = BatchParser::new(input)?;
/// let mut scratch = [0u8; 256]; // reused for every event
/// {
///     // An event borrows `scratch` until it is dropped.
///     let first = events.next_event(&mut scratch).ok_or("empty")??;
///     assert_eq!(first.id(), "1");
/// }
/// match events.next_event(&mut scratch) {
///     Some(Err(ParseError::InBatch { index: 1, error: InBatchError::Invalid(v) })) => assert_eq!(v.attribute.name(), "type"),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert!(events.next_event(&mut scratch).is_none()); // stops after an error
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BatchParser<'a> {
    lex: Lexer<'a>,
    index: usize,
    /// Byte offset of the last element read.
    start: usize,
    first: bool,
    done: bool,
}

impl<'a> BatchParser<'a> {
    /// Starts reading `input`, which must be a JSON array.
    ///
    /// ```
    /// use ossa_events_core::{parse::json::BatchParser, ParseError};
    /// assert!(BatchParser::new(b" []").is_ok());
    /// assert_eq!(BatchParser::new(b"{}").unwrap_err(), ParseError::NotAnArray);
    /// ```
    pub fn new(input: &'a [u8]) -> Result<Self, ParseError> {
        let mut lex = Lexer::for_events(input);
        match lex.peek() {
            Some(b'[') => {}
            _ => {
                lex.value(MAX_DATA_DEPTH)?;
                lex.finish()?;
                return Err(ParseError::NotAnArray);
            }
        }
        lex.eat(b'[')?;
        Ok(BatchParser {
            lex,
            index: 0,
            start: 0,
            first: true,
            done: false,
        })
    }

    /// Index of the next event.
    ///
    /// ```
    /// use ossa_events_core::parse::json::BatchParser;
    /// let mut events = BatchParser::new(br#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"}]"#)?;
    /// assert_eq!(events.index(), 0);
    /// let mut buf = [0u8; 64];
    /// while let Some(ev) = events.next_event(&mut buf) {
    ///     ev?;
    /// }
    /// assert_eq!(events.index(), 1);
    /// # Ok::<(), ossa_events_core::ParseError>(())
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The byte offset in the input where the element [`next_event`]
    /// last read (returned, or failed on) begins: where to point a reader
    /// at element [`index`]` - 1` of a pretty-printed batch. 0 before the
    /// first.
    ///
    /// [`next_event`]: Self::next_event
    /// [`index`]: Self::index
    ///
    /// ```
    /// use ossa_events_core::{parse::json::BatchParser, ParseError};
    /// let input = b"[\n {\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\"},\n {\"id\":\"2\"}\n]";
    /// let mut events = BatchParser::new(input)?;
    /// let mut buf = [0u8; 64];
    /// assert!(events.next_event(&mut buf).is_some_and(|r| r.is_ok()));
    /// assert_eq!(events.element_offset(), 3);
    /// assert!(matches!(events.next_event(&mut buf), Some(Err(ParseError::InBatch { index: 1, .. }))));
    /// assert_eq!(&input[events.element_offset()..][..6], b"{\"id\":");
    /// # Ok::<(), ParseError>(())
    /// ```
    pub fn element_offset(&self) -> usize {
        self.start
    }

    /// The next event, `None` after the last one. After an error, `None`.
    ///
    /// ```
    /// use ossa_events_core::{parse::json::BatchParser, ParseError};
    /// let mut events = BatchParser::new(br#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"}] x"#)?;
    /// let mut buf = [0u8; 64];
    /// assert!(events.next_event(&mut buf).is_some_and(|r| r.is_ok()));
    /// // Trailing bytes after the array are reported at the end.
    /// assert!(matches!(events.next_event(&mut buf), Some(Err(ParseError::Json(_)))));
    /// assert!(events.next_event(&mut buf).is_none());
    /// # Ok::<(), ossa_events_core::ParseError>(())
    /// ```
    pub fn next_event<'s>(&mut self, scratch: &'s mut [u8]) -> Option<Result<Event<'s>, ParseError>>
    where
        'a: 's,
    {
        self.next_event_in(&mut Scratch::new(scratch))
    }

    /// The next event, as [`next_event`](Self::next_event) reads it, its
    /// unescaped strings written into `scratch` after what it already holds:
    /// the events of a batch can then be kept together (a batch's events
    /// take at most its length in scratch).
    ///
    /// ```
    /// use ossa_events_core::{parse::json::BatchParser, Scratch};
    /// let input = br#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"},
    ///                  {"specversion":"1.0","id":"2","source":"/s","type":"t"}]"#;
    /// let mut buf = [0u8; 64];
    /// let mut scratch = Scratch::new(&mut buf);
    /// let mut batch = BatchParser::new(input)?;
    /// let mut events = Vec::new();
    /// while let Some(ev) = batch.next_event_in(&mut scratch) {
    ///     events.push(ev?);
    /// }
    /// let ids: Vec<_> = events.iter().map(|e| e.id()).collect();
    /// assert_eq!(ids, ["1", "2"]);
    /// # Ok::<(), ossa_events_core::ParseError>(())
    /// ```
    pub fn next_event_in<'s>(
        &mut self,
        scratch: &mut Scratch<'s>,
    ) -> Option<Result<Event<'s>, ParseError>>
    where
        'a: 's,
    {
        if self.done {
            return None;
        }
        let r = self.step(scratch);
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }

    fn step<'s>(&mut self, sc: &mut Scratch<'s>) -> Option<Result<Event<'s>, ParseError>>
    where
        'a: 's,
    {
        match next_element(&mut self.lex, &mut self.first) {
            Err(e) => return Some(Err(e.into())),
            Ok(false) => {
                return match self.lex.finish() {
                    Ok(()) => None,
                    Err(e) => Some(Err(e.into())),
                };
            }
            Ok(true) => {}
        }
        let index = self.index;
        self.index += 1;
        let first_byte = self.lex.peek();
        self.start = self.lex.offset();
        if first_byte != Some(b'{') {
            // Malformed JSON told apart from JSON that is not an object, as
            // `parse_event` does: the rest of the input is checked first.
            return Some(Err(
                match self
                    .lex
                    .value(MAX_DATA_DEPTH)
                    .and_then(|_| self.rest_is_json())
                {
                    Err(e) => e.into(),
                    Ok(()) => ParseError::InBatch {
                        index,
                        error: InBatchError::NotAnObject,
                    },
                },
            ));
        }
        let r = parse_object(&mut self.lex, sc, false);
        Some(r.map_err(|e| match e {
            ParseError::Invalid(v) => ParseError::InBatch {
                index,
                error: InBatchError::Invalid(v),
            },
            ParseError::ScratchFull => ParseError::InBatch {
                index,
                error: InBatchError::ScratchFull,
            },
            e => e,
        }))
    }
}

impl BatchParser<'_> {
    /// Reads the elements left and the end of the input as JSON only.
    fn rest_is_json(&mut self) -> Result<(), crate::json::lex::JsonError> {
        while next_element(&mut self.lex, &mut self.first)? {
            self.lex.value(MAX_DATA_DEPTH)?;
        }
        self.lex.finish()
    }
}

/// Tells a structured event from a batch by the first non-whitespace byte.
///
/// ```
/// use ossa_events_core::parse::json::looks_like_batch;
/// assert!(looks_like_batch(b"  [{}]"));
/// assert!(!looks_like_batch(b"{}"));
/// assert!(!looks_like_batch(b"")); // neither: the parser will report it
/// ```
pub fn looks_like_batch(input: &[u8]) -> bool {
    // Only the first token's byte: no UTF-8 check of the whole input.
    input.iter().find(|&&b| !crate::json::lex::is_ws(b)) == Some(&b'[')
}
