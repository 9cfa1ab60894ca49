//! The Kafka protocol binding conformance scenarios (cloudevents/conformance,
//! `kafka-protocol-binding.feature`), written as our own test cases: each
//! Kafka record (headers, key, value) is assembled here, read with
//! `parse::kafka::parse`, and checked against the attribute table and the
//! expected JSON data. Content-mode detection cases are added at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ossa_events::format::binary::{self, Binding};
use ossa_events::parse::kafka;
use ossa_events::{Data, Event, ParseError, Scratch};
use serde_json::{Value, json};

/// A Kafka record as a client library hands it over.
struct Record {
    headers: Vec<(String, Vec<u8>)>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

impl Record {
    fn new(headers: &[(&str, &str)], value: &str) -> Self {
        Record {
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            key: None,
            value: Some(value.as_bytes().to_vec()),
        }
    }

    /// Parses the record and hands the event and key to `f`.
    fn parse<R>(&self, f: impl FnOnce(&Event<'_>, Option<&[u8]>) -> R) -> R {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let mut buf = [0u8; 1024];
        let rec = kafka::parse(
            headers.iter().copied(),
            self.key.as_deref(),
            self.value.as_deref(),
            &mut Scratch::new(&mut buf),
        )
        .unwrap_or_else(|e| panic!("record must parse: {e}"));
        f(&rec.event, rec.key)
    }

    fn parse_err(&self) -> ParseError {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let mut buf = [0u8; 1024];
        let r = kafka::parse(
            headers.iter().copied(),
            self.key.as_deref(),
            self.value.as_deref(),
            &mut Scratch::new(&mut buf),
        );
        match r {
            Ok(rec) => panic!("record accepted: {:?}", rec.event),
            Err(e) => e,
        }
    }
}

/// Every context attribute of `ev` as its canonical string.
fn attribute_table(ev: &Event<'_>) -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    t.insert("id".into(), ev.id().into());
    t.insert("specversion".into(), ev.specversion().into());
    t.insert("type".into(), ev.ty().into());
    t.insert("source".into(), ev.source().into());
    if let Some(v) = ev.datacontenttype() {
        t.insert("datacontenttype".into(), v.into());
    }
    if let Some(v) = ev.dataschema() {
        t.insert("dataschema".into(), v.into());
    }
    if let Some(v) = ev.subject() {
        t.insert("subject".into(), v.into());
    }
    if let Some(v) = ev.time() {
        t.insert("time".into(), v.to_string());
    }
    for e in ev.extensions() {
        t.insert(e.name.into(), e.value.canonical().to_string());
    }
    t
}

fn expected_table() -> BTreeMap<String, String> {
    [
        ("id", "1234-1234-1234"),
        ("specversion", "1.0"),
        ("type", "com.example.someevent"),
        ("source", "/mycontext/subcontext"),
        ("time", "2018-04-05T03:56:24Z"),
        ("datacontenttype", "application/json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn data_as_json(ev: &Event<'_>) -> Value {
    match ev.data() {
        Some(Data::Json(s)) => serde_json::from_str(s).unwrap(),
        other => panic!("expected JSON data, got {other:?}"),
    }
}

const BINARY_HEADERS: [(&str, &str); 6] = [
    ("ce_specversion", "1.0"),
    ("ce_id", "1234-1234-1234"),
    ("ce_type", "com.example.someevent"),
    ("ce_source", "/mycontext/subcontext"),
    ("ce_time", "2018-04-05T03:56:24Z"),
    ("content-type", "application/json"),
];

// ------------------------------------------------ scenario: binary content mode

#[test]
fn binary_mode() {
    let rec = Record::new(&BINARY_HEADERS, r#"{"message": "Hello World!"}"#);
    rec.parse(|ev, key| {
        assert_eq!(attribute_table(ev), expected_table());
        assert_eq!(data_as_json(ev), json!({"message": "Hello World!"}));
        assert_eq!(key, None);
    });
}

#[test]
fn binary_mode_header_order_does_not_matter_and_key_is_kept() {
    let mut headers = BINARY_HEADERS.to_vec();
    headers.reverse();
    let mut rec = Record::new(&headers, "{\n  \"message\" : \"Hello World!\"\n}");
    rec.key = Some(b"mykey".to_vec());
    rec.parse(|ev, key| {
        assert_eq!(attribute_table(ev), expected_table());
        assert_eq!(data_as_json(ev), json!({"message": "Hello World!"}));
        assert_eq!(key, Some(&b"mykey"[..]));
    });
}

#[test]
fn binary_mode_record_written_by_our_encoder_matches_the_scenario() {
    let ev = Event::builder()
        .id("1234-1234-1234")
        .source("/mycontext/subcontext")
        .ty("com.example.someevent")
        .time_str("2018-04-05T03:56:24Z")
        .data_json(r#"{"message": "Hello World!"}"#)
        .build()
        .unwrap();
    let mut headers: Vec<(String, String)> = binary::headers(&ev, Binding::Kafka)
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect();
    headers.push((
        Binding::Kafka.content_type_header().to_owned(),
        binary::content_type(&ev).unwrap().to_owned(),
    ));
    let mut sorted = headers.clone();
    sorted.sort();
    let mut want: Vec<(String, String)> = BINARY_HEADERS
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    want.sort();
    assert_eq!(sorted, want, "exactly the scenario's headers");
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let body = std::str::from_utf8(binary::body_slice(&ev).unwrap()).unwrap();
    Record::new(&pairs, body).parse(|back, _| {
        assert_eq!(attribute_table(back), expected_table());
        assert!(back.same_as(&ev, false));
    });
}

// -------------------------------------------- scenario: structured content mode

fn structured_value() -> String {
    let mut v = String::from("{\n");
    for (k, val) in [
        ("specversion", "1.0"),
        ("type", "com.example.someevent"),
        ("time", "2018-04-05T03:56:24Z"),
        ("id", "1234-1234-1234"),
        ("source", "/mycontext/subcontext"),
        ("datacontenttype", "application/json"),
    ] {
        v.push_str(&format!("    \"{k}\": \"{val}\",\n"));
    }
    v.push_str("    \"data\": {\n        \"message\": \"Hello World!\"\n    }\n}\n");
    v
}

fn check_structured(content_type: &str) {
    let rec = Record::new(&[("content-type", content_type)], &structured_value());
    rec.parse(|ev, _| {
        assert_eq!(attribute_table(ev), expected_table(), "{content_type}");
        assert_eq!(data_as_json(ev), json!({"message": "Hello World!"}));
    });
}

#[test]
fn structured_mode_with_cloudevents_json() {
    check_structured("application/cloudevents+json");
}

#[test]
fn structured_mode_with_cloudevents_json_and_charset() {
    check_structured("application/cloudevents+json; charset=utf-8");
}

#[test]
fn structured_mode_detection_is_case_insensitive() {
    check_structured("Application/CloudEvents+JSON; charset=UTF-8");
}

// ---------------------------------------------------- content-mode detection

#[test]
fn without_a_cloudevents_content_type_the_record_is_binary() {
    // A structured-looking value with a plain JSON content type is binary-mode data.
    let mut headers = BINARY_HEADERS.to_vec();
    headers.retain(|(n, _)| *n != "ce_id");
    headers.push(("ce_id", "outer"));
    let value = structured_value();
    Record::new(&headers, &value).parse(|ev, _| {
        assert_eq!(ev.id(), "outer");
        assert_eq!(data_as_json(ev)["id"], "1234-1234-1234");
    });
    // No content-type at all: binary mode, the value is bytes.
    let headers: Vec<(&str, &str)> = BINARY_HEADERS
        .iter()
        .copied()
        .filter(|(n, _)| *n != "content-type")
        .collect();
    Record::new(&headers, "raw").parse(|ev, _| {
        assert_eq!(ev.datacontenttype(), None);
        assert!(
            matches!(ev.data(), Some(Data::Binary(b"raw"))),
            "{:?}",
            ev.data()
        );
    });
}

#[test]
fn unknown_event_format_is_unsupported() {
    for ct in [
        "application/cloudevents+avro",
        "application/cloudevents+protobuf; charset=utf-8",
        "APPLICATION/CLOUDEVENTS+AVRO",
    ] {
        let rec = Record::new(&[("content-type", ct)], "\u{0}avro");
        assert_eq!(rec.parse_err(), ParseError::UnsupportedFormat, "{ct}");
    }
}

#[test]
fn kafka_has_no_batched_mode() {
    let rec = Record::new(
        &[("content-type", "application/cloudevents-batch+json")],
        "[]",
    );
    assert_eq!(rec.parse_err(), ParseError::UnsupportedFormat);
}

#[test]
fn structured_mode_without_a_value_is_an_error() {
    let mut rec = Record::new(&[("content-type", "application/cloudevents+json")], "");
    rec.value = None;
    match rec.parse_err() {
        ParseError::Json(_) | ParseError::NotAnObject => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn binary_mode_without_a_value_has_no_data() {
    let headers: Vec<(&str, &str)> = BINARY_HEADERS
        .iter()
        .copied()
        .filter(|(n, _)| *n != "content-type")
        .collect();
    let mut rec = Record::new(&headers, "");
    rec.value = None;
    rec.key = Some(b"k".to_vec());
    rec.parse(|ev, key| {
        assert!(ev.data().is_none());
        assert_eq!(key, Some(&b"k"[..]));
        let mut want = expected_table();
        want.remove("datacontenttype");
        assert_eq!(attribute_table(ev), want);
    });
}
