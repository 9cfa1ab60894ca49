//! W3C trace and span ids of `tracing` spans: the ids [`OssaLayer`] keeps in
//! each GenAI span's extensions, the ids of the OpenTelemetry span that
//! `tracing-opentelemetry` keeps for a span (feature `opentelemetry`), and the
//! lookup of the current span's ids that
//! [`EmitterBuilder::context_from_tracing`](crate::EmitterBuilder::context_from_tracing)
//! runs on every `emit()`.
//!
//! The lookup allocates nothing: the dispatcher's current span, the
//! registry's slot for it and the ids copied out of its extensions (48
//! bytes of hex) onto the caller's stack.
//!
//! [`OssaLayer`]: crate::tracing_layer::OssaLayer

use std::fmt;

use crate::ids::{random_nonzero_u64, random_nonzero_u128};

use tracing::Dispatch;
use tracing::span::Id;
use tracing_subscriber::registry::{LookupSpan, Registry, SpanRef};

/// A W3C trace id (32 lowercase hex digits) and span id (16), as text, so
/// an event can borrow them as its `ossatraceid` and `ossaspanid`.
///
/// ```
/// use ossa_events::tracing_layer::SpanIds;
/// let ids = SpanIds::new(0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7).expect("non-zero");
/// assert_eq!(ids.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(ids.span_id(), "00f067aa0ba902b7");
/// assert!(SpanIds::new(0, 1).is_none()); // W3C: never all zeros
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanIds {
    trace: [u8; 32],
    span: [u8; 16],
}

impl fmt::Debug for SpanIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanIds")
            .field("trace_id", &self.trace_id())
            .field("span_id", &self.span_id())
            .finish()
    }
}

impl SpanIds {
    /// The ids from their numbers; `None` if either is zero (not a valid
    /// W3C id).
    pub fn new(trace_id: u128, span_id: u64) -> Option<Self> {
        if trace_id == 0 || span_id == 0 {
            return None;
        }
        let mut ids = SpanIds {
            trace: [0; 32],
            span: [0; 16],
        };
        ids.trace = hex128(trace_id);
        ids.span = hex64(span_id);
        Some(ids)
    }

    /// New random ids (a new trace).
    ///
    /// ```
    /// use ossa_events::tracing_layer::SpanIds;
    /// let (a, b) = (SpanIds::random(), SpanIds::random());
    /// assert_ne!(a.trace_id(), b.trace_id());
    /// assert_eq!((a.trace_id().len(), a.span_id().len()), (32, 16));
    /// ```
    pub fn random() -> Self {
        Self::child_of_trace(random_nonzero_u128())
    }

    /// A new random span id in trace `trace_id` (a random trace if it is zero).
    pub(crate) fn child_of_trace(trace_id: u128) -> Self {
        let trace = if trace_id == 0 {
            random_nonzero_u128()
        } else {
            trace_id
        };
        let mut ids = SpanIds {
            trace: [0; 32],
            span: [0; 16],
        };
        ids.trace = hex128(trace);
        ids.span = hex64(random_nonzero_u64());
        ids
    }

    /// A new random span id in the same trace as `self`.
    pub(crate) fn child(&self) -> Self {
        let mut ids = SpanIds {
            trace: self.trace,
            span: [0; 16],
        };
        ids.span = hex64(random_nonzero_u64());
        ids
    }

    /// The trace id: 32 lowercase hex digits, the event's `ossatraceid`.
    pub fn trace_id(&self) -> &str {
        // Only hex digits are ever written.
        std::str::from_utf8(&self.trace).unwrap_or_default()
    }

    /// The span id: 16 lowercase hex digits, the event's `ossaspanid`.
    pub fn span_id(&self) -> &str {
        std::str::from_utf8(&self.span).unwrap_or_default()
    }
}

/// `x` as 16 lowercase hex digits, eight at a time in a `u64` (a span gets
/// new ids on the thread that creates it: a table lookup per nibble was
/// ~500 instructions of a root span's ids).
fn hex64(x: u64) -> [u8; 16] {
    let hi = hex8((x >> 32) as u32).to_be_bytes();
    let lo = hex8(x as u32).to_be_bytes();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hi);
    out[8..].copy_from_slice(&lo);
    out
}

fn hex128(x: u128) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&hex64((x >> 64) as u64));
    out[16..].copy_from_slice(&hex64(x as u64));
    out
}

/// The eight nibbles of `x` as ASCII hex digits, most significant in the
/// most significant byte.
fn hex8(x: u32) -> u64 {
    // Spread the nibbles out, one per byte.
    let x = u64::from(x);
    let x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    let x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    let x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // 0x01 in each byte whose nibble is 10 or more: those become 'a'..'f'.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    x + 0x3030_3030_3030_3030 + letters * (b'a' - b'0' - 10) as u64
}

/// The ids of the `tracing` span the calling thread is in, if any, taken
/// in this order: those [`OssaLayer`](crate::tracing_layer::OssaLayer) gave
/// the span itself (a GenAI span); with the `opentelemetry` feature and a
/// `tracing_opentelemetry` layer installed, those of the OpenTelemetry span
/// kept for it (a plain span OpenTelemetry exports is the span its events
/// happened in); else those of the nearest GenAI span around it. `None`
/// outside any span,
/// without a subscriber built on a tracing-subscriber `Registry`, or when
/// neither source knows the span.
///
/// This is what [`EmitterBuilder::context_from_tracing`](crate::EmitterBuilder::context_from_tracing)
/// puts on events; it allocates nothing.
///
/// ```
/// use ossa_events::tracing_layer::{current_span_ids, OssaLayer};
/// use ossa_events::{sink::NullSink, Emitter};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
/// let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter));
/// tracing::subscriber::with_default(subscriber, || {
///     assert!(current_span_ids().is_none()); // in no span
///     let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "researcher");
///     let ids = agent.in_scope(|| current_span_ids()).expect("the agent span's ids");
///     assert_eq!(ids.trace_id().len(), 32);
/// });
/// # Ok::<(), ossa_events::Error>(())
/// ```
pub fn current_span_ids() -> Option<SpanIds> {
    tracing::dispatcher::get_default(|dispatch| {
        let current = dispatch.current_span();
        let id = current.id()?;
        span_ids_in(dispatch, id)
    })
}

/// The ids for span `id` of `dispatch`'s registry: see [`current_span_ids`].
pub(crate) fn span_ids_in(dispatch: &Dispatch, id: &Id) -> Option<SpanIds> {
    let registry = dispatch.downcast_ref::<Registry>()?;
    let span = registry.span(id)?;
    // The span's own (a GenAI span, or one OpenTelemetry knows), then the
    // nearest GenAI span's around it.
    if let Some(ids) = own_ids(&span) {
        return Some(ids);
    }
    #[cfg(feature = "opentelemetry")]
    if let Some(ids) = otel_ids(dispatch, id) {
        return Some(ids);
    }
    span.scope().skip(1).find_map(|s| own_ids(&s))
}

/// The ids `OssaLayer` keeps for `span`, if it keeps any.
pub(crate) fn own_ids<'a, R: LookupSpan<'a>>(span: &SpanRef<'a, R>) -> Option<SpanIds> {
    span.extensions()
        .get::<crate::tracing_layer::SpanState>()
        .map(|s| s.ids)
}

/// The ids of the OpenTelemetry span a `tracing_opentelemetry` layer keeps
/// for span `id` of `dispatch`, when it is valid. (Starts the OTel span if it
/// was not yet: `tracing_opentelemetry::get_otel_context` does.)
#[cfg(feature = "opentelemetry")]
pub(crate) fn otel_ids(dispatch: &Dispatch, id: &Id) -> Option<SpanIds> {
    use opentelemetry::trace::TraceContextExt as _;
    let cx = tracing_opentelemetry::get_otel_context(id, dispatch)?;
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    SpanIds::new(
        u128::from_be_bytes(sc.trace_id().to_bytes()),
        u64::from_be_bytes(sc.span_id().to_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_agree_with_format() {
        let mut xs = vec![0u64, 1, 9, 10, 15, 16, u64::MAX, 0x0123_4567_89ab_cdef];
        xs.extend((0..1000).map(|_| fastrand::u64(..)));
        for x in xs {
            assert_eq!(hex64(x), *format!("{x:016x}").as_bytes(), "{x:x}");
        }
        let t = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128;
        assert_eq!(hex128(t), *format!("{t:032x}").as_bytes());
    }

    #[test]
    fn ids_are_w3c_hex_and_never_zero() {
        for _ in 0..1000 {
            let ids = SpanIds::random();
            ossa_events_core::trace::check_trace_id(ids.trace_id()).unwrap();
            ossa_events_core::trace::check_span_id(ids.span_id()).unwrap();
            let child = ids.child();
            assert_eq!(child.trace_id(), ids.trace_id());
            ossa_events_core::trace::check_span_id(child.span_id()).unwrap();
        }
        let ids = SpanIds::new(1, u64::MAX).unwrap();
        assert_eq!(ids.trace_id(), "00000000000000000000000000000001");
        assert_eq!(ids.span_id(), "ffffffffffffffff");
    }
}
