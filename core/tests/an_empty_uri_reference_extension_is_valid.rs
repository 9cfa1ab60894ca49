//! The CloudEvents type `URI-reference` is RFC 3986 §4.1's, which includes
//! the empty reference (a relative reference with an empty path). Only
//! `source` is further required to be non-empty; an extension attribute of
//! type URI-reference may be `""`, and it goes out and comes back like
//! any other value.
#![allow(clippy::unwrap_used)]

use ossa_events_core::format::binary::{self, Binding};
use ossa_events_core::format::json;
use ossa_events_core::{Attribute, Event, ExtValue, Rule, Scratch, parse};

#[test]
fn an_empty_uri_reference_extension_builds_and_round_trips() {
    assert_eq!(ExtValue::UriRef("").validate("base"), Ok(()));
    let ev = Event::builder()
        .id("1")
        .source("/agents/a")
        .ty("t")
        .extension("base", ExtValue::UriRef(""))
        .build()
        .unwrap();
    assert_eq!(ev.validate(), Ok(()));

    let mut bytes = Vec::new();
    json::write_json(&ev, &mut bytes).unwrap();
    let mut scratch = [0u8; 64];
    let back = parse::json::parse_event(&bytes, &mut Scratch::new(&mut scratch)).unwrap();
    assert!(back.same_as(&ev, true), "{back:?}");

    let header = binary::headers(&ev, Binding::Http)
        .find(|h| h.attribute() == "base")
        .unwrap();
    assert_eq!(header.value().to_string(), "");

    // `source`, a URI-reference that must not be empty, still may not be.
    let err = Event::builder()
        .id("1")
        .source("")
        .ty("t")
        .build()
        .unwrap_err();
    assert_eq!((err.attribute, err.rule), (Attribute::Source, Rule::Empty));
}
