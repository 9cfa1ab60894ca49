//! JSON `data` is written without whitespace outside its strings, however it
//! was given: set on the builder (as text or as `Data::Json`), parsed from a
//! structured event, replaced on a builder made from an event. Compact text
//! is copied as it is; spaces inside strings are kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events_core::format::json;
use ossa_events_core::{Data, Event, EventBuilder, Scratch, parse};

fn encode(ev: &Event<'_>) -> String {
    let mut buf = [0u8; 1024];
    let n = json::to_slice(ev, &mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn base<'a>() -> EventBuilder<'a> {
    Event::builder().id("1").source("/s").ty("t")
}

/// The `data` member of an encoded event (the writer puts it last).
fn data_of(encoded: &str) -> &str {
    let at = encoded.find(",\"data\":").expect("a data member") + 8;
    &encoded[at..encoded.len() - 1]
}

const CASES: [(&str, &str); 6] = [
    (r#"{"a":"x y","b":[1,2]}"#, r#"{"a":"x y","b":[1,2]}"#),
    (
        r#"{ "a" : "x y" , "b" : [ 1 , 2 ] }"#,
        r#"{"a":"x y","b":[1,2]}"#,
    ),
    (
        "{\n\t\"q\": \"  two  spaces \\\" quoted \"\r\n}",
        r#"{"q":"  two  spaces \" quoted "}"#,
    ),
    (r#"" spaced string ""#, r#"" spaced string ""#),
    (" [ ] ", "[]"),
    ("7", "7"),
];

#[test]
fn builder_text_and_data_json_are_compacted() {
    for (given, want) in CASES {
        let ev = base().data_json(given).build().unwrap();
        assert_eq!(data_of(&encode(&ev)), want, "data_json({given:?})");
        let ev = base().data(Data::Json(given)).build().unwrap();
        assert_eq!(data_of(&encode(&ev)), want, "data(Data::Json({given:?}))");
    }
}

#[test]
fn parsed_data_is_compacted_and_the_rest_of_the_input_does_not_matter() {
    for (given, want) in CASES {
        // Whitespace before and after the data member, or none.
        for (before, after) in [("", ""), (" ", "\n"), ("\n  ", "")] {
            let input = format!(
                r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t",{before}"data":{before}{given}{after},"x":"a b"}}"#
            );
            let mut scratch = [0u8; 256];
            let ev = parse::json::parse_event(input.as_bytes(), &mut Scratch::new(&mut scratch))
                .unwrap();
            assert_eq!(data_of(&encode(&ev)), want, "{input}");
        }
    }
}

#[test]
fn replacing_data_on_a_builder_made_from_an_event_forgets_the_old_data() {
    // Compact, then not compact: the new data is compacted.
    let compact = base().data_json(r#"{"a":1}"#).build().unwrap();
    let ev = compact
        .to_builder()
        .data_json(r#"{ "b" : 2 }"#)
        .build()
        .unwrap();
    assert_eq!(data_of(&encode(&ev)), r#"{"b":2}"#);
    // Not compact, then compact: copied as it is.
    let spaced = base().data_json(r#"{ "a" : 1 }"#).build().unwrap();
    let ev = spaced
        .to_builder()
        .data_json(r#"{"b":"c d"}"#)
        .build()
        .unwrap();
    assert_eq!(data_of(&encode(&ev)), r#"{"b":"c d"}"#);
    // Replaced by text, then by JSON again.
    let ev = compact
        .to_builder()
        .data_text("text/plain", "t")
        .data_json("[ 1 ]")
        .build()
        .unwrap();
    assert_eq!(data_of(&encode(&ev)), "[1]");
    // A parsed event's data, replaced.
    let input = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"k":"v w"}}"#;
    let mut scratch = [0u8; 64];
    let parsed = parse::json::parse_event(input, &mut Scratch::new(&mut scratch)).unwrap();
    let ev = parsed.to_builder().data_json("{ }").build().unwrap();
    assert_eq!(data_of(&encode(&ev)), "{}");
}
