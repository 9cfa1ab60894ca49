//! JSON plumbing: the zero-copy lexer under the parsers, string escaping, and
//! the allocation-free serde serializer used for `T: Serialize` payloads.

pub(crate) mod escape;
pub(crate) mod lex;
pub mod ser;

pub use lex::{JsonError, JsonErrorKind};
pub use ser::{JsonPayload, PayloadWriter, to_writer};

/// Checks that `input` is exactly one JSON value (surrounding whitespace allowed),
/// nested at most `max_depth` deep.
///
/// `max_depth` is capped at 256: the lexer tracks nesting in a fixed
/// bitset (no allocation, no recursion), so a larger `max_depth` is taken
/// as 256 and deeper input fails with [`JsonErrorKind::TooDeep`].
///
/// ```
/// use ossa_events_core::json::{validate, JsonErrorKind};
/// assert!(validate(br#" {"a": [1, 2.5e3, null]} "#, 8).is_ok());
/// assert_eq!(validate(b"[[1]]", 1).map_err(|e| e.kind), Err(JsonErrorKind::TooDeep));
/// assert_eq!(validate(b"01", 8).map_err(|e| e.kind), Err(JsonErrorKind::InvalidNumber));
/// // Deeper than 256: refused whatever `max_depth` says.
/// let deep = |n| "[".repeat(n) + &"]".repeat(n);
/// assert!(validate(deep(256).as_bytes(), 1000).is_ok());
/// assert_eq!(validate(deep(257).as_bytes(), 1000).map_err(|e| e.kind), Err(JsonErrorKind::TooDeep));
/// ```
pub fn validate(input: &[u8], max_depth: usize) -> Result<(), JsonError> {
    let mut lex = lex::Lexer::new(input);
    lex.value(max_depth)?;
    lex.finish()
}

/// [`validate`], also telling whether `input` is compact (no whitespace
/// outside strings, so it can be copied as it is).
pub(crate) fn validate_compact(input: &[u8], max_depth: usize) -> Result<bool, JsonError> {
    let mut lex = lex::Lexer::new(input);
    lex.value(max_depth)?;
    lex.finish()?;
    Ok(!lex.ws_seen())
}

/// Whether two well-formed JSON texts are the same text once insignificant
/// whitespace is removed.
///
/// ```
/// use ossa_events_core::json::eq_ignoring_ws;
/// assert!(eq_ignoring_ws("{ \"a\" : [1, 2] }", r#"{"a":[1,2]}"#));
/// assert!(!eq_ignoring_ws(r#"{"a b":1}"#, r#"{"ab":1}"#)); // whitespace in strings counts
/// ```
pub fn eq_ignoring_ws(a: &str, b: &str) -> bool {
    let mut x = Compact::new(a.as_bytes());
    let mut y = Compact::new(b.as_bytes());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (p, q) if p != q => return false,
            _ => {}
        }
    }
}

/// Bytes of a JSON text without whitespace outside strings.
struct Compact<'a> {
    bytes: core::slice::Iter<'a, u8>,
    in_str: bool,
    escaped: bool,
}

impl<'a> Compact<'a> {
    fn new(b: &'a [u8]) -> Self {
        Compact {
            bytes: b.iter(),
            in_str: false,
            escaped: false,
        }
    }
}

impl Iterator for Compact<'_> {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        loop {
            let b = *self.bytes.next()?;
            if self.in_str {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_str = false;
                }
                return Some(b);
            }
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => continue,
                b'"' => {
                    self.in_str = true;
                    return Some(b);
                }
                _ => return Some(b),
            }
        }
    }
}
