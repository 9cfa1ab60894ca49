//! A `data_serialize` payload holding `serde_json`'s own "write this text as
//! it is" values is written as `serde_json` writes it. `RawValue` (feature
//! `raw_value`) and `Number` under `arbitrary_precision` serialize as a struct
//! whose name and only field are private tokens, carrying the JSON text as a
//! string; `serde_json`'s serializer writes that text in place of the struct.
//! Ours wrote the struct: the data of
//! `{"id":1,"inner":<RawValue {"a":[1,2]}>}` went out as
//! `{"id":1,"inner":{"$serde_json::private::RawValue":"{\"a\":[1,2]}"}}`, a
//! different JSON value (JSON format §3.1.1: the data value is stored as a
//! JSON value), read back by any receiver as that object.
//!
//! The text is checked before it is written: a `Serialize` impl that uses the
//! token with text that is not one JSON value must not add members to the
//! event around it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events::format::json;
use ossa_events::{EncodeError, Event, MAX_DATA_DEPTH, PayloadError, Scratch};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::value::RawValue;

/// An event whose data is `payload`, given to `data_serialize`.
fn event_of<T: Serialize>(payload: &T) -> Event<'_> {
    Event::builder()
        .id("1")
        .source("/s")
        .ty("t")
        .data_serialize(payload)
        .build()
        .unwrap()
}

/// The `data` member of `payload` as we write it, and as `serde_json` writes the payload.
fn ours_and_serde_json<T: Serialize>(payload: &T) -> (String, String) {
    let ev = event_of(payload);
    let bytes = json::to_vec(&ev).unwrap();
    // What a receiver reads: the event parses, and its data is the value.
    let mut scratch = [0u8; 256];
    let back = ossa_events::parse::json::parse_event(&bytes, &mut Scratch::new(&mut scratch))
        .expect("our output parses");
    let Some(ossa_events::Data::Json(data)) = back.data() else {
        panic!("JSON data expected: {back:?}");
    };
    (data.to_string(), serde_json::to_string(payload).unwrap())
}

#[derive(serde::Serialize)]
struct Wrapper<'a> {
    id: u32,
    inner: &'a RawValue,
}

#[test]
fn a_raw_value_field_is_written_as_its_json() {
    let raw = RawValue::from_string(r#"{"a":[1,2]}"#.to_owned()).unwrap();
    let (ours, theirs) = ours_and_serde_json(&Wrapper { id: 1, inner: &raw });
    assert_eq!(theirs, r#"{"id":1,"inner":{"a":[1,2]}}"#);
    assert_eq!(ours, theirs);
}

#[test]
fn a_raw_value_payload_is_written_as_its_json() {
    let raw = RawValue::from_string(r#"[true, "x", null]"#.to_owned()).unwrap();
    let (ours, theirs) = ours_and_serde_json(&raw);
    // The same value, written compact.
    assert!(ossa_events::json::eq_ignoring_ws(&ours, &theirs), "{ours}");
    assert_eq!(ours, r#"[true,"x",null]"#);
}

/// How `serde_json`'s own "write this text as it is" types serialize: a
/// struct whose name and only field are the private `token`, carrying the
/// JSON `text` as a string.
struct Private {
    token: &'static str,
    text: &'static str,
}

impl Serialize for Private {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct(self.token, 1)?;
        st.serialize_field(self.token, self.text)?;
        st.end()
    }
}

/// `serde_json::Number` as `serde_json` serializes it with
/// `arbitrary_precision` (a feature any crate in a build can turn on).
fn big_number(text: &'static str) -> Private {
    Private {
        token: "$serde_json::private::Number",
        text,
    }
}

#[test]
fn an_arbitrary_precision_number_is_written_as_a_number() {
    let (ours, _) = ours_and_serde_json(&[big_number("12345678901234567890123")]);
    assert_eq!(ours, "[12345678901234567890123]");
}

/// A payload that claims to be a `RawValue` but carries more than one value.
fn lying(text: &'static str) -> Private {
    Private {
        token: "$serde_json::private::RawValue",
        text,
    }
}

#[test]
fn raw_text_that_is_not_one_json_value_is_refused_not_written() {
    for text in [r#"1,"id":"2""#, "", "{", "[1]]"] {
        let payload = lying(text);
        let ev = event_of(&payload);
        // Written as it is, the text made an event with two `id`s, or
        // JSON that is not one event: refused instead.
        assert!(
            matches!(json::to_vec(&ev), Err(PayloadError::Custom(_))),
            "{text:?}"
        );
    }
    // Nor through any other writer.
    let payload = lying(r#"1,"id":"2""#);
    let ev = event_of(&payload);
    let mut buf = [0u8; 256];
    assert!(matches!(
        json::to_slice(&ev, &mut buf),
        Err(EncodeError::Payload(PayloadError::Custom(_)))
    ));
}

#[test]
fn raw_text_nests_no_deeper_than_the_parsers_read() {
    let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
    let at_limit = RawValue::from_string(deep(MAX_DATA_DEPTH)).unwrap();
    let (ours, theirs) = ours_and_serde_json(&at_limit);
    assert_eq!(ours, theirs);
    // One level down, the same text would be read back by no parser of ours.
    let wrapped = [&*at_limit];
    let ev = event_of(&wrapped);
    assert_eq!(json::to_vec(&ev), Err(PayloadError::TooDeep));
}

/// Raw text as `serde_json` keeps it (`RawValue::from_string`, or a
/// `Box<RawValue>` read from a pretty-printed document) may hold whitespace,
/// newlines too. The serializer writes compact JSON, as it writes every
/// other value and as the builder's `data_json` text is written: written as
/// it is, the newlines split the event across lines, and a line-delimited
/// consumer (the stdout and file sinks, `ossa-events listen`, the spools)
/// read two broken lines.
#[test]
fn raw_text_with_whitespace_is_written_compact_on_one_line() {
    let raw = RawValue::from_string("{\n  \"a\": [1, 2],\n  \"b\": \" x \"\n}".to_owned()).unwrap();
    let payload = Wrapper { id: 1, inner: &raw };
    let ev = event_of(&payload);
    let bytes = json::to_vec(&ev).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.contains('\n'), "{text}");
    assert!(
        text.contains(r#""data":{"id":1,"inner":{"a":[1,2],"b":" x "}}"#),
        "{text}"
    );
}
