//! The distributed-tracing extension: `traceparent` and `tracestate` are
//! checked as W3C Trace Context wherever an event is built or parsed (JSON,
//! HTTP binary headers); the emitters write `traceparent` from the OSSA
//! context, and an event we build never lets the two disagree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events_core::emitter::{Config, Emitter};
use ossa_events_core::io::SliceWriter;
use ossa_events_core::parse::json::parse_event;
use ossa_events_core::trace::{
    TraceContextError as E, TraceParent, TraceParentText, check_tracestate,
};
use ossa_events_core::{Attribute, Event, FixedClock, RandomIds, Rule, Scratch, Timestamp, ossa};
use proptest::prelude::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn traceparent_values_from_the_w3c_spec_and_its_mistakes() {
    let ok = [
        (TP, 0, TRACE, SPAN, 1),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            0,
            TRACE,
            SPAN,
            0,
        ),
        // Unknown flag bits are kept, not refused.
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff",
            0,
            TRACE,
            SPAN,
            0xff,
        ),
        // A later version: its first four fields, more after a '-'.
        (
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            0xcc,
            TRACE,
            SPAN,
            1,
        ),
        (
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-anything",
            1,
            TRACE,
            SPAN,
            1,
        ),
    ];
    for (s, version, trace, span, flags) in ok {
        let tp = TraceParent::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(
            (tp.version(), tp.trace_id(), tp.parent_id(), tp.flags()),
            (version, trace, span, flags),
            "{s}"
        );
    }
    let bad = [
        ("", E::Length),
        ("00", E::Length),
        (
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            E::Version,
        ),
        (
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            E::Version,
        ),
        (
            "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            E::Version,
        ),
        // Version 00 is exactly 55 characters.
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            E::Length,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            E::Length,
        ),
        (
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            E::Length,
        ),
        (
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            E::Separator,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            E::Separator,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
            E::Separator,
        ),
        (
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            E::TraceId,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            E::TraceId,
        ),
        (
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            E::ZeroTraceId,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            E::ParentId,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            E::ZeroParentId,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            E::Flags,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            E::Flags,
        ),
        // 55 bytes, the last two a non-ASCII character.
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\u{e9}",
            E::Flags,
        ),
    ];
    for (s, want) in bad {
        assert_eq!(TraceParent::parse(s), Err(want), "{s:?}");
    }
}

#[test]
fn tracestate_values_follow_the_w3c_list_grammar() {
    let members: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
    let thirty_two = members.join(",");
    let thirty_three = format!("{thirty_two},k32=v");
    let long_key = format!("a{}=v", "b".repeat(255));
    let too_long_key = format!("a{}=v", "b".repeat(256));
    let ok = [
        "rojo=00f067aa0ba902b7",
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        " rojo=1 ,\tcongo=2\t",
        "rojo=1,,congo=2",
        "",
        "tenant1@vendor=x",
        "0tenant@vendor=x",
        "a_-*/z=v w",
        // Whitespace around a member is OWS (an HTTP header loses it anyway).
        "rojo=trailing ",
        thirty_two.as_str(),
        long_key.as_str(),
    ];
    for s in ok {
        assert_eq!(check_tracestate(s), Ok(()), "{s:?}");
    }
    let bad = [
        ("Rojo=1", E::StateMember),
        ("1rojo=1", E::StateMember),
        ("rojo", E::StateMember),
        ("rojo=", E::StateMember),
        ("rojo=a,b", E::StateMember),
        ("rojo=a=b", E::StateMember),
        ("rojo=\u{e9}", E::StateMember),
        ("t@1vendor=x", E::StateMember),
        ("t@vendorvendorvendor=x", E::StateMember),
        ("a=1,b=2,a=3", E::StateDuplicateKey),
        (thirty_three.as_str(), E::StateTooLong),
        (too_long_key.as_str(), E::StateMember),
    ];
    for (s, want) in bad {
        assert_eq!(check_tracestate(s), Err(want), "{s:?}");
    }
}

fn parse(json: &str) -> Result<String, (Attribute, Rule)> {
    let mut buf = [0u8; 2048];
    match parse_event(json.as_bytes(), &mut Scratch::new(&mut buf)) {
        Ok(ev) => Ok(ev
            .traceparent()
            .map(|t| t.trace_id().to_owned())
            .unwrap_or_default()),
        Err(ossa_events_core::ParseError::Invalid(v)) => Err((v.attribute, v.rule)),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_json_parser_reads_and_checks_both_attributes() {
    let ev =
        |ext: &str| format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t",{ext}}}"#);
    assert_eq!(
        parse(&ev(&format!(r#""traceparent":"{TP}""#))),
        Ok(TRACE.to_owned())
    );
    let (attr, rule) = parse(&ev(r#""traceparent":"00-abc""#)).unwrap_err();
    assert_eq!(
        (attr, rule),
        (
            Attribute::named("traceparent"),
            Rule::InvalidTraceParent(E::Length)
        )
    );
    let (_, rule) = parse(&ev(r#""traceparent":42"#)).unwrap_err();
    assert_eq!(rule, Rule::WrongType);
    let (attr, rule) = parse(&ev(r#""tracestate":"Bad=1""#)).unwrap_err();
    assert_eq!(
        (attr, rule),
        (
            Attribute::named("tracestate"),
            Rule::InvalidTraceState(E::StateMember)
        )
    );
    // A received event may carry a traceparent of another span than its
    // OSSA context: the parser reads what it is given.
    let other = ev(&format!(
        r#""traceparent":"{TP}","ossaspanid":"a3ce929d0e0e4736""#
    ));
    assert_eq!(parse(&other), Ok(TRACE.to_owned()));
}

#[test]
fn http_binary_headers_are_checked_too() {
    use ossa_events_core::parse::http::parse_binary;
    let headers = |tp: &'static str| {
        vec![
            ("ce-specversion", "1.0".as_bytes()),
            ("ce-id", b"1".as_slice()),
            ("ce-source", b"/s".as_slice()),
            ("ce-type", b"t".as_slice()),
            ("ce-traceparent", tp.as_bytes()),
        ]
    };
    let mut buf = [0u8; 1024];
    let ev = parse_binary(headers(TP), b"", &mut Scratch::new(&mut buf)).unwrap();
    assert_eq!(ev.traceparent().unwrap().parent_id(), SPAN);
    let mut buf = [0u8; 1024];
    let bad = "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01";
    let err = parse_binary(headers(bad), b"", &mut Scratch::new(&mut buf)).unwrap_err();
    assert!(
        err.to_string().contains("parent-id must not be all zeros"),
        "{err}"
    );
}

#[test]
fn a_built_event_never_lets_traceparent_and_the_ossa_context_disagree() {
    let base = || Event::builder().id("1").source("/s").ty("t");
    assert!(
        base()
            .traceparent(TP)
            .ossa_trace_id(TRACE)
            .ossa_span_id(SPAN)
            .build()
            .is_ok()
    );
    for b in [
        base()
            .traceparent(TP)
            .ossa_trace_id("0af7651916cd43dd8448eb211c80319c"),
        base().traceparent(TP).ossa_span_id("b7ad6b7169203331"),
        base().traceparent(TP).ossa_trace_id("not-w3c"),
        // Set by the generic setter, or carried by an event made into a
        // builder again: checked the same.
        base()
            .extension("traceparent", ossa_events_core::ExtValue::String(TP))
            .ossa_span_id("b7ad6b7169203331"),
        base()
            .traceparent(TP)
            .ossa_trace_id(TRACE)
            .build()
            .unwrap()
            .to_builder()
            .ossa_trace_id("0af7651916cd43dd8448eb211c80319c"),
    ] {
        let err = b.build().unwrap_err();
        assert_eq!(
            (err.attribute, err.rule),
            (Attribute::named("traceparent"), Rule::TraceContextConflict)
        );
    }
    // Derived: only from W3C-shaped ids, never over the event's own.
    let mut buf = TraceParentText::new();
    let ev = base()
        .ossa_trace_id("t-1")
        .ossa_span_id("s-1")
        .derive_traceparent(&mut buf)
        .build()
        .unwrap();
    assert!(
        ev.traceparent().is_none(),
        "OSSA ids that are not W3C give no traceparent"
    );
    let mut buf = TraceParentText::new();
    let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let ev = base()
        .traceparent(own)
        .derive_traceparent(&mut buf)
        .build()
        .unwrap();
    assert_eq!(
        ev.extension("traceparent").and_then(|v| v.as_str()),
        Some(own)
    );
}

/// `ossatraceid` or `ossaspanid` set to a value that is not a String
/// (through the generic setter) is not the id `traceparent` carries: a
/// built event with both is a conflict, not an event whose trace context
/// says two things (before, the non-String value was skipped by the check,
/// and a `traceparent` derived from the ids stayed beside an `ossatraceid`
/// replaced by an Integer).
#[test]
fn a_non_string_ossa_trace_or_span_id_beside_a_traceparent_is_a_conflict() {
    use ossa_events_core::ExtValue;
    let base = || Event::builder().id("1").source("/s").ty("t");
    let mut buf = TraceParentText::new();
    for b in [
        base()
            .traceparent(TP)
            .extension("ossatraceid", ExtValue::Integer(5)),
        base()
            .traceparent(TP)
            .extension("ossaspanid", ExtValue::Boolean(true)),
        base()
            .ossa_trace_id(TRACE)
            .ossa_span_id(SPAN)
            .derive_traceparent(&mut buf)
            .extension("ossatraceid", ExtValue::Integer(5)),
    ] {
        let err = b.build().unwrap_err();
        assert_eq!(
            (err.attribute, err.rule),
            (Attribute::named("traceparent"), Rule::TraceContextConflict)
        );
    }
    // Without a traceparent, the OSSA extensions keep any type.
    assert!(
        base()
            .extension("ossatraceid", ExtValue::Integer(5))
            .build()
            .is_ok()
    );
}

type CtxEmitter<'a> =
    Emitter<'a, SliceWriter<'a>, RandomIds<fn(&mut [u8; 16])>, FixedClock, 8, 4096>;

/// An emitter whose OSSA context has `TRACE` and `SPAN`, and a first
/// event from it.
fn context_emitter(out: &mut [u8]) -> CtxEmitter<'_> {
    let mut em: CtxEmitter<'_> = Emitter::new(
        Config::new("/agents/a"),
        SliceWriter::new(out),
        RandomIds(|b: &mut [u8; 16]| b.fill(3)),
        FixedClock(Timestamp::UNIX_EPOCH),
    );
    em.set_context(ossa::Context {
        trace_id: Some(TRACE),
        span_id: Some(SPAN),
        ..Default::default()
    });
    em.emit_ossa(&ossa::TurnStarted {
        turn: 1,
        input: None,
    })
    .unwrap();
    em
}

/// An event's own `traceparent` of another trace than the context's is
/// kept (the context's trace and span ids are not added beside it); one
/// that the event itself contradicts with its own `ossatraceid` is refused,
/// with the rule it breaks.
fn assert_own_trace_kept_and_conflict_refused(em: &mut CtxEmitter<'_>) {
    const OTHER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    em.emit(Event::builder().ty("t").traceparent(OTHER))
        .unwrap();
    let err = em
        .emit(
            Event::builder()
                .ty("t")
                .traceparent(OTHER)
                .ossa_trace_id(TRACE),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("traceparent must carry ossatraceid"),
        "{err}"
    );
}

#[cfg(feature = "traceparent")]
#[test]
fn the_emitter_writes_traceparent_from_its_context_and_counts_a_conflict_rejected() {
    let mut out = [0u8; 8192];
    let mut em = context_emitter(&mut out);
    // The event's own span: the traceparent follows it.
    em.emit(Event::builder().ty("t").ossa_span_id("b7ad6b7169203331"))
        .unwrap();
    assert_own_trace_kept_and_conflict_refused(&mut em);
    em.flush().unwrap();
    assert_eq!((em.counters().delivered, em.counters().rejected), (3, 1));
    let text = std::str::from_utf8(em.writer().written()).unwrap();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .contains(&format!(r#""traceparent":"{TP}""#))
    );
    assert!(
        lines
            .next()
            .unwrap()
            .contains(r#""traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01""#)
    );
    let own = lines.next().unwrap();
    assert!(
        own.contains(r#""traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01""#)
            && !own.contains("ossatraceid")
            && !own.contains("ossaspanid"),
        "{own}"
    );
}

/// Built without the `traceparent` feature (a firmware's choice), the
/// emitters write none, and the trace-context rules still hold: an event's
/// own `traceparent` must carry its own `ossatraceid`.
#[cfg(not(feature = "traceparent"))]
#[test]
fn without_the_feature_the_emitter_writes_no_traceparent_and_still_checks_one() {
    let mut out = [0u8; 8192];
    let mut em = context_emitter(&mut out);
    assert_own_trace_kept_and_conflict_refused(&mut em);
    em.flush().unwrap();
    assert_eq!((em.counters().delivered, em.counters().rejected), (2, 1));
    let text = std::str::from_utf8(em.writer().written()).unwrap();
    let mut lines = text.lines();
    let ours = lines.next().unwrap();
    assert!(
        ours.contains(&format!(r#""ossatraceid":"{TRACE}""#)),
        "{text}"
    );
    assert!(!ours.contains("traceparent"), "none of ours: {text}");
    let own = lines.next().unwrap();
    assert!(
        own.contains("traceparent") && !own.contains("ossatraceid"),
        "{text}"
    );
}

proptest! {
    /// Any W3C-shaped OSSA context: the derived traceparent parses back to
    /// the same ids, and the event builds.
    #[test]
    fn derived_traceparents_round_trip(trace in "[0-9a-f]{32}", span in "[0-9a-f]{16}") {
        prop_assume!(trace.bytes().any(|b| b != b'0') && span.bytes().any(|b| b != b'0'));
        let mut buf = TraceParentText::new();
        let ev = Event::builder().id("1").source("/s").ty("t")
            .ossa_trace_id(&trace).ossa_span_id(&span)
            .derive_traceparent(&mut buf).build().unwrap();
        let tp = ev.traceparent().unwrap();
        prop_assert_eq!((tp.trace_id(), tp.parent_id(), tp.sampled()), (trace.as_str(), span.as_str(), true));
    }

    /// Checking never panics, whatever the text.
    #[test]
    fn any_text_is_checked_without_panicking(s in "\\PC{0,80}") {
        let _ = TraceParent::parse(&s);
        let _ = check_tracestate(&s);
    }
}

/// What is set after `derive_traceparent` in [`a_derived_traceparent_is_the_one_a_checked_builder_would_write`].
#[derive(Debug, Clone)]
enum After {
    Nothing,
    TraceId(String),
    SpanId(String),
    TraceParent(String),
    /// The same names through the generic setter.
    ByName(&'static str, String),
}

fn id_text(len: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::string::string_regex(&format!("[0-9a-f]{{{len}}}")).unwrap(),
        1 => Just("0".repeat(len)),
        1 => "[0-9a-fA-F-]{0,40}",
    ]
}

fn after() -> impl Strategy<Value = After> {
    prop_oneof![
        3 => Just(After::Nothing),
        1 => id_text(32).prop_map(After::TraceId),
        1 => id_text(16).prop_map(After::SpanId),
        1 => (id_text(32), id_text(16), "0[01]")
            .prop_map(|(t, s, f)| After::TraceParent(format!("00-{t}-{s}-{f}"))),
        1 => (
            prop_oneof![Just("ossatraceid"), Just("ossaspanid"), Just("traceparent")],
            prop_oneof![id_text(32), id_text(16), Just(TP.to_owned())],
        )
            .prop_map(|(n, v)| After::ByName(n, v)),
    ]
}

fn json_of(ev: &Event<'_>) -> String {
    let mut buf = [0u8; 1024];
    let mut w = SliceWriter::new(&mut buf);
    ossa_events_core::format::json::write_json(ev, &mut w).unwrap();
    String::from_utf8(w.written().to_vec()).unwrap()
}

proptest! {
    /// An emitter hands `derive_traceparent` a copy of the text it derived
    /// from its own context (`held`), which is reused without checking when
    /// it holds the event's ids, and `build` then skips the conflict check
    /// (issue 15's 5 % budget). Whatever the buffer held and whatever is set
    /// afterwards, the result is the one a builder given the same final
    /// extensions explicitly (every check run) produces: the same verdict,
    /// and for a valid event the same JSON bytes.
    #[test]
    fn a_derived_traceparent_is_the_one_a_checked_builder_would_write(
        trace in id_text(32),
        span in id_text(16),
        held in prop_oneof![
            2 => Just(None),
            3 => Just(Some((String::new(), String::new(), 1u8))),
            1 => (id_text(32), id_text(16), 0u8..2).prop_map(Some),
        ],
        after in after(),
    ) {
        let mut buf = TraceParentText::new();
        if let Some((t, s, flags)) = &held {
            // Empty ids: the same ids as the event's (the emitter's case).
            let (t, s) = if t.is_empty() { (&trace, &span) } else { (t, s) };
            if let Ok(tp) = TraceParent::new(t, s, *flags) {
                buf.write(&tp);
            }
        }
        let base = || Event::builder().id("1").source("/s").ty("t");
        let mut b = base().ossa_trace_id(&trace).ossa_span_id(&span).derive_traceparent(&mut buf);
        b = match &after {
            After::Nothing => b,
            After::TraceId(v) => b.ossa_trace_id(v),
            After::SpanId(v) => b.ossa_span_id(v),
            After::TraceParent(v) => b.traceparent(v),
            After::ByName(n, v) => b.extension_str(n, v),
        };
        let got = b.build();
        // The same extensions, in the same order, each set by its setter.
        let (mut t, mut s) = (trace.clone(), span.clone());
        let derived = TraceParent::new(&trace, &span, 1).ok().map(|tp| tp.to_string());
        let mut p = derived.clone();
        match &after {
            After::Nothing => {}
            After::TraceId(v) | After::ByName("ossatraceid", v) => t = v.clone(),
            After::SpanId(v) | After::ByName("ossaspanid", v) => s = v.clone(),
            After::TraceParent(v) | After::ByName(_, v) => {
                // Replaces a derived one in place, or comes after the ids.
                p = Some(v.clone());
            }
        }
        let mut e = base().ossa_trace_id(&t).ossa_span_id(&s);
        if let Some(p) = &p {
            e = e.traceparent(p);
        }
        let expected = e.build();
        match (&got, &expected) {
            (Ok(g), Ok(x)) => prop_assert_eq!(json_of(g), json_of(x)),
            (Err(g), Err(x)) => prop_assert_eq!((&g.attribute, &g.rule), (&x.attribute, &x.rule)),
            _ => prop_assert!(false, "derived {:?} vs checked {:?}", got.map(|e| json_of(&e)), expected.map(|e| json_of(&e))),
        }
    }
}

/// Every byte at every position of a trace id and a parent id: taken
/// exactly when it is a lowercase hex digit (the check is arithmetic, not
/// a table).
#[test]
fn ids_take_exactly_the_lowercase_hex_digits() {
    use ossa_events_core::trace::{check_span_id, check_trace_id};
    for b in 0..=255u8 {
        let hex = b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        for at in [0, 7, 15] {
            let mut id = *b"1111111111111111";
            id[at] = b;
            let id = String::from_utf8_lossy(&id).into_owned();
            assert_eq!(
                check_span_id(&id).is_ok(),
                hex && id.len() == 16,
                "{b:#04x} at {at}"
            );
            let trace = format!("{id}{id}");
            assert_eq!(
                check_trace_id(&trace).is_ok(),
                hex && trace.len() == 32,
                "{b:#04x} at {at}"
            );
        }
    }
}
