//! W3C Trace Context on events: the CloudEvents distributed-tracing
//! extension's `traceparent` and `tracestate` attributes.
//!
//! `traceparent` is `version-traceid-parentid-flags`
//! (`00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`): lowercase hex,
//! neither id all zeros, version `ff` forbidden. `tracestate` is a list of up
//! to 32 `key=value` members. Both are checked wherever an event is built or
//! parsed ([`Rule::InvalidTraceParent`](crate::Rule::InvalidTraceParent),
//! [`Rule::InvalidTraceState`](crate::Rule::InvalidTraceState)), without
//! allocating.
//!
//! An event we build never lets them disagree with the OSSA extensions: with
//! `ossatraceid` and `ossaspanid` set, `traceparent` must carry the same
//! trace id and, as its parent id, the same span id
//! ([`Rule::TraceContextConflict`](crate::Rule::TraceContextConflict)); the
//! emitters write `traceparent` from them when the event has none
//! ([`EventBuilder::derive_traceparent`](crate::EventBuilder::derive_traceparent)).
//!
//! ```
//! use ossa_events_core::trace::TraceParent;
//! let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
//! assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert_eq!(tp.parent_id(), "00f067aa0ba902b7");
//! assert!(tp.sampled());
//! # Ok::<(), ossa_events_core::trace::TraceContextError>(())
//! ```

use core::fmt;

/// The extension attribute carrying the W3C `traceparent`.
pub const EXT_TRACEPARENT: &str = "traceparent";
/// The extension attribute carrying the W3C `tracestate`.
pub const EXT_TRACESTATE: &str = "tracestate";
/// The `sampled` bit of the trace flags.
pub const FLAG_SAMPLED: u8 = 0x01;

/// Length of a version-`00` `traceparent`.
const LEN: usize = 55;

/// Why a `traceparent` or `tracestate` value is not valid W3C Trace Context.
///
/// ```
/// use ossa_events_core::trace::{TraceContextError, TraceParent};
/// let zero = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
/// assert_eq!(TraceParent::parse(zero), Err(TraceContextError::ZeroTraceId));
/// assert_eq!(TraceParent::parse("00-abc"), Err(TraceContextError::Length));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceContextError {
    /// Not 55 characters (version `00`), or a later version without the
    /// `-` after the flags.
    Length,
    /// A `-` is missing between the fields.
    Separator,
    /// The version is not two lowercase hex digits, or is `ff`.
    Version,
    /// The trace id is not 32 lowercase hex digits.
    TraceId,
    /// The trace id is all zeros.
    ZeroTraceId,
    /// The parent id is not 16 lowercase hex digits.
    ParentId,
    /// The parent id is all zeros.
    ZeroParentId,
    /// The flags are not two lowercase hex digits.
    Flags,
    /// A `tracestate` member is not `key=value` per the W3C grammar.
    StateMember,
    /// More than 32 `tracestate` members.
    StateTooLong,
    /// Two `tracestate` members have the same key.
    StateDuplicateKey,
}

impl fmt::Display for TraceContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceContextError::Length => "traceparent must be 55 characters (version 00)",
            TraceContextError::Separator => "traceparent fields must be separated by '-'",
            TraceContextError::Version => "version must be 2 lowercase hex digits, not ff",
            TraceContextError::TraceId => "trace-id must be 32 lowercase hex digits",
            TraceContextError::ZeroTraceId => "trace-id must not be all zeros",
            TraceContextError::ParentId => "parent-id must be 16 lowercase hex digits",
            TraceContextError::ZeroParentId => "parent-id must not be all zeros",
            TraceContextError::Flags => "trace-flags must be 2 lowercase hex digits",
            TraceContextError::StateMember => {
                "tracestate members must be key=value (W3C Trace Context list-member)"
            }
            TraceContextError::StateTooLong => "tracestate has more than 32 members",
            TraceContextError::StateDuplicateKey => "tracestate has a key twice",
        })
    }
}

impl core::error::Error for TraceContextError {}

/// Whether `id` is `len` lowercase hex digits (`Some`), and whether they
/// are not all zeros (the `bool`): one branch-free pass (this runs for
/// every event an emitter gives a `traceparent`).
fn hex_id(id: &[u8], len: usize) -> Option<bool> {
    if id.len() != len {
        return None;
    }
    let (mut ok, mut nonzero) = (true, 0u8);
    for &c in id {
        // Lowercase hex, branch-free and without a 256-byte table (flash
        // on a device): `0`-`9` or `a`-`f`.
        ok &= (c.wrapping_sub(b'0') < 10) | (c.wrapping_sub(b'a') < 6);
        nonzero |= c ^ b'0';
    }
    ok.then_some(nonzero != 0)
}

fn hex_byte(s: &[u8]) -> Option<u8> {
    let d = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    match s {
        [hi, lo] => Some(d(*hi)? << 4 | d(*lo)?),
        _ => None,
    }
}

/// Checks a trace id: 32 lowercase hex digits, not all zeros.
///
/// ```
/// use ossa_events_core::trace::{check_trace_id, TraceContextError};
/// assert_eq!(check_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"), Ok(()));
/// assert_eq!(check_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736"), Err(TraceContextError::TraceId));
/// ```
pub fn check_trace_id(id: &str) -> Result<(), TraceContextError> {
    match hex_id(id.as_bytes(), 32) {
        None => Err(TraceContextError::TraceId),
        Some(false) => Err(TraceContextError::ZeroTraceId),
        Some(true) => Ok(()),
    }
}

/// Checks a span (parent) id: 16 lowercase hex digits, not all zeros.
///
/// ```
/// use ossa_events_core::trace::{check_span_id, TraceContextError};
/// assert_eq!(check_span_id("00f067aa0ba902b7"), Ok(()));
/// assert_eq!(check_span_id("0000000000000000"), Err(TraceContextError::ZeroParentId));
/// ```
pub fn check_span_id(id: &str) -> Result<(), TraceContextError> {
    match hex_id(id.as_bytes(), 16) {
        None => Err(TraceContextError::ParentId),
        Some(false) => Err(TraceContextError::ZeroParentId),
        Some(true) => Ok(()),
    }
}

/// A parsed `traceparent`, borrowing its ids from the text.
///
/// ```
/// use ossa_events_core::trace::TraceParent;
/// let tp = TraceParent::new("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 0)?;
/// assert!(!tp.sampled());
/// # Ok::<(), ossa_events_core::trace::TraceContextError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent<'a> {
    version: u8,
    trace_id: &'a str,
    parent_id: &'a str,
    flags: u8,
}

impl<'a> TraceParent<'a> {
    /// A version-`00` `traceparent` from its parts, checked.
    ///
    /// ```
    /// use ossa_events_core::trace::{TraceContextError, TraceParent};
    /// assert_eq!(TraceParent::new("xyz", "00f067aa0ba902b7", 1), Err(TraceContextError::TraceId));
    /// ```
    pub fn new(
        trace_id: &'a str,
        parent_id: &'a str,
        flags: u8,
    ) -> Result<Self, TraceContextError> {
        check_trace_id(trace_id)?;
        check_span_id(parent_id)?;
        Ok(TraceParent {
            version: 0,
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Parses and checks a `traceparent` value. A version above `00` is
    /// read as its first four fields (what W3C asks of a reader that does
    /// not know it), with a `-` after the flags if anything follows.
    ///
    /// ```
    /// use ossa_events_core::trace::{TraceContextError, TraceParent};
    /// let later = TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next")?;
    /// assert_eq!(later.version(), 1);
    /// let ff = "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// assert_eq!(TraceParent::parse(ff), Err(TraceContextError::Version));
    /// # Ok::<(), TraceContextError>(())
    /// ```
    pub fn parse(s: &'a str) -> Result<Self, TraceContextError> {
        let b = s.as_bytes();
        let version =
            b.get(..2)
                .and_then(hex_byte)
                .filter(|&v| v != 0xff)
                .ok_or(if b.len() < 2 {
                    TraceContextError::Length
                } else {
                    TraceContextError::Version
                })?;
        let ok_len = match version {
            0 => b.len() == LEN,
            _ => b.len() == LEN || (b.len() > LEN && b.get(LEN) == Some(&b'-')),
        };
        if !ok_len {
            return Err(TraceContextError::Length);
        }
        if [2, 35, 52].iter().any(|&i| b.get(i) != Some(&b'-')) {
            return Err(TraceContextError::Separator);
        }
        let (Some(trace_id), Some(parent_id)) = (s.get(3..35), s.get(36..52)) else {
            return Err(TraceContextError::Length);
        };
        check_trace_id(trace_id)?;
        check_span_id(parent_id)?;
        let flags = b
            .get(53..55)
            .and_then(hex_byte)
            .ok_or(TraceContextError::Flags)?;
        Ok(TraceParent {
            version,
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace and parent ids of a value already checked by
    /// [`parse`](Self::parse) (by position: no second check).
    pub(crate) fn ids_of_checked(s: &str) -> Option<(&str, &str)> {
        Some((s.get(3..35)?, s.get(36..52)?))
    }

    /// The version (`0` for what this crate writes).
    pub fn version(&self) -> u8 {
        self.version
    }
    /// The trace id: 32 lowercase hex digits.
    pub fn trace_id(&self) -> &'a str {
        self.trace_id
    }
    /// The parent (span) id: 16 lowercase hex digits.
    pub fn parent_id(&self) -> &'a str {
        self.parent_id
    }
    /// The trace flags.
    pub fn flags(&self) -> u8 {
        self.flags
    }
    /// Whether the `sampled` flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }
}

impl fmt::Display for TraceParent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

/// Room for the text of a version-`00` `traceparent` (55 bytes), so an
/// emitter can write one without allocating.
///
/// ```
/// use ossa_events_core::trace::{TraceParent, TraceParentText};
/// let tp = TraceParent::new("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1)?;
/// let mut text = TraceParentText::new();
/// assert_eq!(text.write(&tp), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// assert_eq!(text.as_str(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// # Ok::<(), ossa_events_core::trace::TraceContextError>(())
/// ```
///
/// It only ever holds nothing or a `traceparent` written from a checked
/// [`TraceParent`], so an emitter can keep one for its context and hand a
/// copy to every event: [`EventBuilder::derive_traceparent`](crate::EventBuilder::derive_traceparent)
/// reuses the text when it already holds the event's ids, without checking
/// or writing them again.
#[derive(Clone, Default)]
pub struct TraceParentText {
    text: heapless::String<LEN>,
}

impl fmt::Debug for TraceParentText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TraceParentText")
            .field(&self.as_str())
            .finish()
    }
}

impl TraceParentText {
    /// Empty room.
    pub const fn new() -> Self {
        TraceParentText {
            text: heapless::String::new(),
        }
    }

    /// Writes `tp` as version `00` and returns the text.
    pub fn write(&mut self, tp: &TraceParent<'_>) -> &str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let t = &mut self.text;
        t.clear();
        // 3 + 32 + 1 + 16 + 1 + 2 = LEN bytes: every push fits (the ids
        // were checked for their lengths).
        let _ = t.push_str("00-");
        let _ = t.push_str(tp.trace_id);
        let _ = t.push('-');
        let _ = t.push_str(tp.parent_id);
        let _ = t.push('-');
        let _ = t.push(char::from(HEX[usize::from(tp.flags >> 4)]));
        let _ = t.push(char::from(HEX[usize::from(tp.flags & 0x0f)]));
        t.as_str()
    }

    /// The sampled `traceparent` of an OSSA context's ids, for an emitter
    /// to derive once and hand a copy of to every event; empty when the
    /// context lacks either id or they are not W3C ids.
    ///
    /// ```
    /// use ossa_events_core::{ossa, trace::TraceParentText};
    /// let ctx = ossa::Context {
    ///     trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
    ///     span_id: Some("00f067aa0ba902b7"),
    ///     ..Default::default()
    /// };
    /// let tp = TraceParentText::of_context(&ctx);
    /// assert_eq!(tp.as_str(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    /// assert_eq!(TraceParentText::of_context(&ossa::Context::default()).as_str(), "");
    /// ```
    pub fn of_context(ctx: &crate::ossa::Context<'_>) -> Self {
        let mut text = Self::new();
        if let (Some(t), Some(s)) = (ctx.trace_id, ctx.span_id)
            && let Ok(tp) = TraceParent::new(t, s, FLAG_SAMPLED)
        {
            text.write(&tp);
        }
        text
    }

    /// The text written last (empty before the first write).
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    /// Whether it holds the sampled `traceparent` of `trace_id` and
    /// `parent_id` (compared as text, so unchecked ids only match a text
    /// that was written from the same, checked, ids).
    pub(crate) fn holds_sampled(&self, trace_id: &str, parent_id: &str) -> bool {
        let b = self.text.as_bytes();
        b.len() == LEN
            && b.get(3..35) == Some(trace_id.as_bytes())
            && b.get(36..52) == Some(parent_id.as_bytes())
            && b.get(53..55) == Some(b"01".as_slice())
    }
}

/// Checks a `tracestate` value: up to 32 comma-separated `key=value`
/// members (empty ones allowed), keys unique, per the W3C grammar.
///
/// ```
/// use ossa_events_core::trace::{check_tracestate, TraceContextError};
/// assert_eq!(check_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"), Ok(()));
/// assert_eq!(check_tracestate("tenant@vendor=x, , other=y"), Ok(()));
/// assert_eq!(check_tracestate("Rojo=1"), Err(TraceContextError::StateMember));
/// assert_eq!(check_tracestate("a=1,a=2"), Err(TraceContextError::StateDuplicateKey));
/// ```
pub fn check_tracestate(s: &str) -> Result<(), TraceContextError> {
    let b = s.as_bytes();
    let mut members = 0usize;
    let mut start = 0;
    // (Byte loops, not `str::split` and `trim_matches`: they cost firmware
    // a kilobyte of pattern code.)
    while let Some((m, next)) = member(b, start) {
        if !m.is_empty() {
            members += 1;
            if members > 32 {
                return Err(TraceContextError::StateTooLong);
            }
            let (key, value) = split_member(m).ok_or(TraceContextError::StateMember)?;
            if !is_key(key) || !is_value(value) {
                return Err(TraceContextError::StateMember);
            }
            // Keys of the members before this one (at most 31: no allocation).
            let mut at = 0;
            while at < start {
                let Some((p, after)) = member(b, at) else {
                    break;
                };
                if split_member(p).is_some_and(|(k, _)| k == key) {
                    return Err(TraceContextError::StateDuplicateKey);
                }
                at = after;
            }
        }
        start = next;
    }
    Ok(())
}

/// The member starting at `start`, without the whitespace around it, and
/// where the next one starts; `None` past the end.
fn member(b: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(start..)?;
    let len = rest.iter().position(|&c| c == b',').unwrap_or(rest.len());
    let mut m = rest.get(..len)?;
    while let [b' ' | b'\t', tail @ ..] = m {
        m = tail;
    }
    while let [head @ .., b' ' | b'\t'] = m {
        m = head;
    }
    Some((m, start + len + 1))
}

fn split_member(m: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = m.iter().position(|&c| c == b'=')?;
    Some((m.get(..eq)?, m.get(eq + 1..)?))
}

fn key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

fn is_key(b: &[u8]) -> bool {
    let simple = |b: &[u8], max: usize| b.len() <= max && b.iter().copied().all(key_char);
    match b.iter().position(|&c| c == b'@') {
        None => b.first().is_some_and(u8::is_ascii_lowercase) && simple(b, 256),
        Some(at) => {
            let (t, sy) = (&b[..at], &b[at + 1..]);
            t.first()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && simple(t, 241)
                && sy.first().is_some_and(u8::is_ascii_lowercase)
                && simple(sy, 14)
        }
    }
}

fn is_value(b: &[u8]) -> bool {
    let nblk = |c: u8| matches!(c, 0x21..=0x2B | 0x2D..=0x3C | 0x3E..=0x7E);
    !b.is_empty()
        && b.len() <= 256
        && b.last().copied().is_some_and(nblk)
        && b.iter().all(|&c| c == b' ' || nblk(c))
}
