//! What the HTTP and Kafka binary modes share: attributes from headers, data from the body.

use crate::error::{Attribute, ParseError, Rule, ValidationError};
use crate::event::{Data, Event, MAX_DATA_DEPTH};
use crate::scratch::{Scratch, ScratchFull};

use super::Assembler;

/// Collects `ce-`/`ce_` header attributes.
pub(crate) struct BinaryReader<'a> {
    asm: Assembler<'a>,
}

impl<'a> BinaryReader<'a> {
    pub(crate) fn new() -> Self {
        BinaryReader {
            asm: Assembler::new(),
        }
    }

    /// Sets attribute `name` (lower-case, no prefix) from its header value.
    pub(crate) fn set(&mut self, name: &'a str, value: &'a str) -> Result<(), ValidationError> {
        let key = self.asm.see(name)?;
        self.asm.set_str(key, name, value)
    }

    /// Adds `Content-Type` and the body, checks and returns the event.
    pub(crate) fn finish(
        mut self,
        ct: Option<&'a str>,
        data: Option<Data<'a>>,
    ) -> Result<Event<'a>, ValidationError> {
        if let Some(ct) = ct {
            let key = self.asm.see("datacontenttype")?;
            self.asm.set_str(key, "datacontenttype", ct)?;
        }
        self.asm.set_data(data, false);
        self.asm.check()?;
        Ok(self.asm.ev)
    }
}

/// The data of a binary-mode body: none when empty; JSON (checked) when the
/// content type is JSON; text when it is textual and the bytes are UTF-8;
/// bytes otherwise (and always when no content type is given, or when its
/// `charset` reads the bytes as other text than UTF-8 does).
pub(crate) fn body_data<'a>(
    ct: Option<&str>,
    body: &'a [u8],
) -> Result<Option<Data<'a>>, ParseError> {
    if body.is_empty() {
        return Ok(None);
    }
    let Some(ct) = ct else {
        return Ok(Some(Data::Binary(body)));
    };
    // Bytes in another charset than UTF-8 are not the UTF-8 text (or JSON)
    // they may happen to spell (`h\0i\0` is `hi` in UTF-16): kept as bytes.
    if !crate::uri::charset_reads_utf8(ct, body) {
        return Ok(Some(Data::Binary(body)));
    }
    if crate::uri::is_json_media_type(ct) {
        // The content type decided how the body is read: when the body is
        // not what it says, a bad content type is the error to report (the
        // event's validation checks it on the way that succeeds).
        let blame = |rule| match crate::uri::content_type_rule(ct) {
            Some(ct_rule) => ValidationError::new(Attribute::DataContentType, ct_rule),
            None => ValidationError::new(Attribute::Data, rule),
        };
        crate::json::validate(body, MAX_DATA_DEPTH).map_err(|e| blame(Rule::InvalidJson(e)))?;
        let s = core::str::from_utf8(body).map_err(|_| blame(Rule::InvalidEncoding))?;
        return Ok(Some(Data::Json(s)));
    }
    if crate::uri::is_text_media_type(ct)
        && let Ok(s) = core::str::from_utf8(body)
    {
        return Ok(Some(Data::Text(s)));
    }
    Ok(Some(Data::Binary(body)))
}

/// `name` in lower case: borrowed when it already is, else copied into `scratch`.
pub(crate) fn lower_name<'a>(
    name: &'a str,
    scratch: &mut Scratch<'a>,
) -> Result<&'a str, ScratchFull> {
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Ok(name);
    }
    let mut piece = scratch.piece();
    for b in name.bytes() {
        piece.push_byte(b.to_ascii_lowercase())?;
    }
    // ASCII lower-casing keeps UTF-8 valid.
    core::str::from_utf8(piece.finish()).map_err(|_| ScratchFull)
}
