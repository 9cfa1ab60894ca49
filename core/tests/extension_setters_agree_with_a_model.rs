//! The OSSA setters keep a new value aside and the list gets it when it is
//! next read or changed (so the by-value chain moves no builder copies). Any
//! mix of OSSA setters, generic `extension_str` calls on the same names,
//! `ossa_context`, `fill_ossa_context` and `to_builder` must still end with
//! the extensions a plain ordered list says: a name set again is replaced in
//! place, a new one appended, `fill` leaves a set one alone, the 17th is
//! refused, and a bad value is reported under the first bad extension.
#![allow(clippy::unwrap_used)]

use ossa_events_core::{Event, EventBuilder, ExtValue, MAX_EXTENSIONS, Rule, ossa};
use proptest::prelude::*;

const OSSA: [&str; 4] = [
    ossa::EXT_AGENT_ID,
    ossa::EXT_INTERACTION_ID,
    ossa::EXT_TRACE_ID,
    ossa::EXT_SPAN_ID,
];
const OTHER: [&str; 16] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
    "x15",
];
const VALUES: [&str; 3] = ["a", "b", "bad\u{1}"];
const BAD: &str = "bad\u{1}";

#[derive(Clone, Debug)]
enum Op {
    /// `ossa_agent_id` and friends, by value.
    Ossa(usize, &'static str),
    /// `extension_str` on a name from `OSSA` (first field true) or `OTHER`.
    Generic(bool, usize, &'static str),
    /// `ossa_context`: replaces each `Some`.
    Context([Option<&'static str>; 4]),
    /// `fill_ossa_context`: sets each `Some` that is not set yet.
    Fill([Option<&'static str>; 4]),
    /// `build` then `to_builder`, when the builder is valid so far.
    Rebuild,
}

fn value() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&VALUES[..])
}

fn ctx() -> impl Strategy<Value = [Option<&'static str>; 4]> {
    [
        prop::option::of(value()),
        prop::option::of(value()),
        prop::option::of(value()),
        prop::option::of(value()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, value()).prop_map(|(k, v)| Op::Ossa(k, v)),
        4 => (any::<bool>(), 0..16usize, value()).prop_map(|(o, i, v)| Op::Generic(o, i, v)),
        1 => ctx().prop_map(Op::Context),
        1 => ctx().prop_map(Op::Fill),
        1 => Just(Op::Rebuild),
    ]
}

fn context(c: &[Option<&'static str>; 4]) -> ossa::Context<'static> {
    ossa::Context {
        agent_id: c[0],
        interaction_id: c[1],
        trace_id: c[2],
        span_id: c[3],
    }
}

/// The plain ordered list the builder must agree with.
#[derive(Default)]
struct Model {
    exts: Vec<(&'static str, &'static str)>,
    /// The first name that did not fit.
    overflow: Option<&'static str>,
}

impl Model {
    fn set(&mut self, name: &'static str, v: &'static str) {
        if let Some(e) = self.exts.iter_mut().find(|e| e.0 == name) {
            e.1 = v;
        } else if self.exts.len() < MAX_EXTENSIONS {
            self.exts.push((name, v));
        } else {
            self.overflow.get_or_insert(name);
        }
    }
    fn fill(&mut self, name: &'static str, v: &'static str) {
        if !self.exts.iter().any(|e| e.0 == name) {
            self.set(name, v);
        }
    }
    fn valid(&self) -> bool {
        self.overflow.is_none() && !self.exts.iter().any(|e| e.1 == BAD)
    }
}

fn ossa_set(b: EventBuilder<'static>, k: usize, v: &'static str) -> EventBuilder<'static> {
    match k {
        0 => b.ossa_agent_id(v),
        1 => b.ossa_interaction_id(v),
        2 => b.ossa_trace_id(v),
        _ => b.ossa_span_id(v),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn extensions_end_as_an_ordered_list_says(ops in prop::collection::vec(op(), 0..40)) {
        let mut b = Event::builder().id("1").source("/s").ty("t");
        let mut m = Model::default();
        for op in &ops {
            match op {
                Op::Ossa(k, v) => {
                    b = ossa_set(b, *k, v);
                    m.set(OSSA[*k], v);
                }
                Op::Generic(ossa_name, i, v) => {
                    let name = if *ossa_name { OSSA[i % 4] } else { OTHER[*i] };
                    b = b.extension_str(name, v);
                    m.set(name, v);
                }
                Op::Context(c) => {
                    b = b.ossa_context(&context(c));
                    for (k, v) in c.iter().enumerate() {
                        if let Some(v) = v {
                            m.set(OSSA[k], v);
                        }
                    }
                }
                Op::Fill(c) => {
                    b.fill_ossa_context(&context(c));
                    for (k, v) in c.iter().enumerate() {
                        if let Some(v) = v {
                            m.fill(OSSA[k], v);
                        }
                    }
                }
                Op::Rebuild => {
                    if m.valid() {
                        b = b.build().unwrap().to_builder();
                    }
                }
            }
            // OSSA values may wait outside the list until it is read:
            // `has_extension` sees them all the same.
            for name in OSSA.iter().chain(&OTHER) {
                prop_assert_eq!(b.has_extension(name), m.exts.iter().any(|e| e.0 == *name), "{}", name);
            }
        }
        // `build_ref` (what the emitters use) and `build` agree, and a
        // `build_ref` leaves the builder as it was for `build`.
        // (`Event` has no `PartialEq`: its `Debug` shows every attribute.)
        let mut lent = b.clone();
        let by_ref = format!("{:?}", lent.build_ref());
        prop_assert_eq!(&by_ref, &format!("{:?}", lent.build_ref()));
        prop_assert_eq!(&by_ref, &format!("{:?}", b.clone().build().as_ref()));
        prop_assert_eq!(&by_ref, &format!("{:?}", lent.build().as_ref()));
        match b.build() {
            Ok(ev) => {
                prop_assert!(m.valid());
                let got: Vec<(&str, ExtValue<'_>)> =
                    ev.extensions().iter().map(|e| (e.name, e.value)).collect();
                let want: Vec<(&str, ExtValue<'_>)> =
                    m.exts.iter().map(|&(n, v)| (n, ExtValue::String(v))).collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(ev.ossa_agent_id(), m.exts.iter().find(|e| e.0 == OSSA[0]).map(|e| e.1));
                prop_assert_eq!(ev.ossa_span_id(), m.exts.iter().find(|e| e.0 == OSSA[3]).map(|e| e.1));
            }
            Err(err) => {
                if let Some(name) = m.overflow {
                    prop_assert_eq!((err.attribute.name(), err.rule), (name, Rule::TooManyExtensions));
                } else {
                    let first_bad = m.exts.iter().find(|e| e.1 == BAD).map(|e| e.0);
                    prop_assert_eq!(Some(err.attribute.name()), first_bad);
                    prop_assert_eq!(err.rule, Rule::InvalidCharacter);
                }
            }
        }
    }
}

/// A value the list no longer holds is not the builder's any more: its
/// `Debug` output (what a log of a rejected builder shows) names only the
/// values the event has or will have, not one that was placed and then
/// replaced.
#[test]
fn a_replaced_ossa_value_is_not_in_the_builders_debug_output() {
    let mut b = Event::builder()
        .id("1")
        .source("/s")
        .ty("t")
        .ossa_agent_id("replaced-agent");
    b.build_ref().unwrap(); // places it
    let b = b.extension_str(ossa::EXT_AGENT_ID, "current-agent");
    let shown = format!("{b:?}");
    assert!(shown.contains("current-agent"), "{shown}");
    assert!(!shown.contains("replaced-agent"), "{shown}");
    // A value still waiting is shown.
    let b = b.ossa_interaction_id("waiting");
    assert!(format!("{b:?}").contains("waiting"));
}
