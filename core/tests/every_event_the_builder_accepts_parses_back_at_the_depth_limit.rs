//! The parsers read `data` nested up to `MAX_DATA_DEPTH` levels and reject
//! deeper data as `TooDeep`. An event the builder accepts and the encoder
//! writes must never be one of those: whatever the caller nests (a
//! `RawJson` inside an OSSA payload, a `T: Serialize` payload), the bytes
//! written parse back, or the encoder refuses them with a typed error.
#![allow(clippy::unwrap_used)]

use ossa_events_core::format::json;
use ossa_events_core::{Event, MAX_DATA_DEPTH, RawJson, Scratch, ossa, parse};

/// `depth` nested arrays: `[[…]]`.
fn nested(depth: usize) -> String {
    "[".repeat(depth) + &"]".repeat(depth)
}

/// A `RawJson` is written one level down, as a member of the payload's
/// object: the deepest one `RawJson::new` accepts must still leave the
/// event's `data` within the limit.
#[test]
fn the_deepest_raw_json_accepted_parses_back_inside_an_ossa_payload() {
    let mut depth = MAX_DATA_DEPTH + 1;
    while RawJson::new(&nested(depth)).is_err() {
        depth -= 1;
    }
    let text = nested(depth);
    let call = ossa::ToolCalled {
        tool: "web_search",
        call_id: None,
        arguments: Some(RawJson::new(&text).unwrap()),
    };
    let ev = Event::builder()
        .id("1")
        .source("/agents/a")
        .ossa(&call)
        .build()
        .unwrap();
    let mut bytes = Vec::new();
    json::write_json(&ev, &mut bytes).unwrap();
    let mut scratch = vec![0u8; 1024];
    let back = parse::json::parse_event(&bytes, &mut Scratch::new(&mut scratch));
    assert!(
        back.is_ok(),
        "RawJson of depth {depth} was accepted, but the event written with it is rejected: {back:?}"
    );
}
