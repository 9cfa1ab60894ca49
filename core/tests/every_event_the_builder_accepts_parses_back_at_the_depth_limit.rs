//! The parsers read `data` nested up to `MAX_DATA_DEPTH` levels and reject
//! deeper data as `TooDeep`. An event the builder accepts and the encoder
//! writes must never be one of those: whatever the caller nests (a
//! `RawJson` inside an OSSA payload, a `T: Serialize` payload), the bytes
//! written parse back, or the encoder refuses them with a typed error.
#![allow(clippy::unwrap_used)]

use ossa_events_core::format::json;
use ossa_events_core::{EncodeError, Event, MAX_DATA_DEPTH, RawJson, Scratch, ossa, parse};

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

/// A `T: Serialize` payload is only seen when it is written: nested past
/// the limit, the encoder refuses it (a payload error, as for a map key
/// JSON cannot hold) rather than writing an event no parser reads back;
/// at the limit it is written and parses back.
#[test]
fn a_serialized_payload_is_written_only_as_deep_as_the_parsers_read() {
    for depth in [MAX_DATA_DEPTH, MAX_DATA_DEPTH + 1, MAX_DATA_DEPTH + 40] {
        let mut value = serde_json::Value::Null;
        for _ in 0..depth {
            value = serde_json::Value::Array(vec![value]);
        }
        let ev = Event::builder()
            .id("1")
            .source("/agents/a")
            .ty("t")
            .data_serialize(&value)
            .build()
            .unwrap();
        let mut bytes = Vec::new();
        match json::write_json(&ev, &mut bytes) {
            Ok(()) => {
                let mut scratch = vec![0u8; 1024];
                let back = parse::json::parse_event(&bytes, &mut Scratch::new(&mut scratch));
                assert!(
                    back.is_ok(),
                    "data nested {depth} deep was written, but the event is rejected: {back:?}"
                );
            }
            Err(e) => {
                assert!(depth > MAX_DATA_DEPTH, "depth {depth}: {e:?}");
                assert!(matches!(e, EncodeError::Payload(_)), "depth {depth}: {e:?}");
            }
        }
    }
}
