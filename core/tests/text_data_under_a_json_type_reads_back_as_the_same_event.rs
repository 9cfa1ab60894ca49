//! Text data under a JSON content type (or none, which the JSON format
//! reads as `application/json`) is written as a JSON string (JSON format
//! §3.1.1), and a parser reads that `data` member back as the JSON value it
//! is (§3.1.2: a string is not decoded further), so it comes back as JSON
//! text, `"…"`. It is the same payload: `Event::same_as`, the round-trip
//! check the crate's docs use, must say so, while a JSON value that is not
//! that string (another string, a number) stays different.
#![allow(clippy::unwrap_used)]

use ossa_events_core::format::json;
use ossa_events_core::{Data, Event, Scratch, parse};

#[test]
fn text_under_a_json_type_round_trips_through_the_json_format() {
    for ct in [
        None,
        Some("application/json"),
        Some("application/vnd.x+json"),
    ] {
        for text in ["hi", "", "say \"hi\"\\\n\t\u{1} é 😀"] {
            let mut b = Event::builder().id("1").source("/s").ty("t");
            if let Some(ct) = ct {
                b = b.datacontenttype(ct);
            }
            let sent = b.data(Data::Text(text)).build().unwrap();
            let mut bytes = Vec::new();
            json::write_json(&sent, &mut bytes).unwrap();
            let mut scratch = [0u8; 256];
            let got = parse::json::parse_event(&bytes, &mut Scratch::new(&mut scratch)).unwrap();
            assert!(
                got.same_as(&sent, true) && sent.same_as(&got, false),
                "{ct:?} {text:?}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

#[test]
fn text_equals_only_the_json_string_of_that_text() {
    assert!(Data::Text("a\"b").same_content(&Data::Json(r#" "a\u0022b" "#)));
    assert!(Data::Json(r#""a""#).same_content(&Data::Text("a")));
    assert!(!Data::Text("1").same_content(&Data::Json("1")));
    assert!(!Data::Text("a").same_content(&Data::Json(r#""b""#)));
    assert!(!Data::Text("[\"a\"]").same_content(&Data::Json(r#"["a"]"#)));
    assert!(!Data::Text("null").same_content(&Data::Json("null")));
}
