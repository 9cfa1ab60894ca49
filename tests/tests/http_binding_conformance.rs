//! The HTTP protocol binding conformance scenarios (cloudevents/conformance,
//! `http-protocol-binding.feature`), written as our own test cases: each raw
//! HTTP request is assembled here, split into headers and body by a tiny parser,
//! read with `parse::http::parse`, and checked against the attribute table and
//! the expected JSON data. Content-mode detection cases are added at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ossa_events::format::json::{BATCH_CONTENT_TYPE, CONTENT_TYPE};
use ossa_events::parse::http::{self, ContentMode, Message};
use ossa_events::{Data, Event, ParseError, Scratch};
use serde_json::{Value, json};

// ------------------------------------------------------------ raw requests

/// A raw HTTP/1.1 request split into its parts.
struct RawRequest {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Splits raw request text at the first empty line; header lines are
/// `Name: value` with optional whitespace around the value (RFC 7230 §3.2).
fn parse_raw_request(raw: &str) -> RawRequest {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw
        .split_once("\n\n")
        .expect("request has a blank line before the body");
    let mut lines = head.lines();
    let request_line = lines.next().unwrap().to_owned();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line has a colon");
            assert!(!n.ends_with([' ', '\t']), "no whitespace before the colon");
            (n.to_owned(), v.trim_matches([' ', '\t']).to_owned())
        })
        .collect::<Vec<_>>();
    let req = RawRequest {
        request_line,
        headers,
        body: body.as_bytes().to_vec(),
    };
    if let Some(len) = req.header("content-length") {
        assert_eq!(
            len.parse::<usize>().unwrap(),
            req.body.len(),
            "Content-Length matches the body"
        );
    }
    req
}

impl RawRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn header_pairs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect()
    }
}

/// Builds a request text with the given headers and body, adding Host and a
/// correct Content-Length.
fn request_text(headers: &[(&str, &str)], body: &str) -> String {
    let mut s = String::from("POST /someresource HTTP/1.1\r\nHost: example.com\r\n");
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s
}

// ------------------------------------------------------------- expectations

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

fn expected_table(datacontenttype: &str) -> BTreeMap<String, String> {
    [
        ("id", "1234-1234-1234"),
        ("specversion", "1.0"),
        ("type", "com.example.someevent"),
        ("source", "/mycontext/subcontext"),
        ("time", "2018-04-05T03:56:24Z"),
        ("datacontenttype", datacontenttype),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn expected_data() -> Value {
    json!({"message": "Hello World!"})
}

fn data_as_json(ev: &Event<'_>) -> Value {
    match ev.data() {
        Some(Data::Json(s)) => serde_json::from_str(s).unwrap(),
        other => panic!("expected JSON data, got {other:?}"),
    }
}

/// Parses a raw request with `parse::http::parse`; checks attributes and data.
fn check_request(raw: &str, want_mode: ContentMode, datacontenttype: &str) {
    let req = parse_raw_request(raw);
    assert!(req.request_line.starts_with("POST "));
    let ct = req.header("content-type");
    assert_eq!(http::content_mode(ct).unwrap(), want_mode, "{ct:?}");
    let headers = req.header_pairs();
    let mut buf = [0u8; 1024];
    let msg = http::parse(
        headers.iter().copied(),
        &req.body,
        &mut Scratch::new(&mut buf),
    )
    .unwrap_or_else(|e| panic!("request must parse: {e}\n{raw}"));
    let ev = match msg {
        Message::Event(ev) => ev,
        other => panic!("expected one event, got {other:?}"),
    };
    assert_eq!(
        attribute_table(&ev),
        expected_table(datacontenttype),
        "{raw}"
    );
    assert_eq!(data_as_json(&ev), expected_data());
}

// --------------------------------------------- scenario: binary content mode

fn binary_request(content_type: &str) -> String {
    request_text(
        &[
            ("ce-specversion", "1.0"),
            ("ce-type", "com.example.someevent"),
            ("ce-time", "2018-04-05T03:56:24Z"),
            ("ce-id", "1234-1234-1234"),
            ("ce-source", "/mycontext/subcontext"),
            ("Content-Type", content_type),
        ],
        "{\n    \"message\": \"Hello World!\"\n}\n",
    )
}

#[test]
fn binary_mode_with_application_json() {
    check_request(
        &binary_request("application/json"),
        ContentMode::Binary,
        "application/json",
    );
}

#[test]
fn binary_mode_with_application_json_and_charset() {
    check_request(
        &binary_request("application/json; charset=utf-8"),
        ContentMode::Binary,
        "application/json; charset=utf-8",
    );
}

#[test]
fn binary_mode_through_parse_binary_and_the_http_crate() {
    // The same request as an `http::Request`, whose header map lower-cases names.
    for ct in ["application/json", "application/json; charset=utf-8"] {
        let req = ::http::Request::post("/someresource")
            .header("Host", "example.com")
            .header("ce-specversion", "1.0")
            .header("ce-type", "com.example.someevent")
            .header("ce-time", "2018-04-05T03:56:24Z")
            .header("ce-id", "1234-1234-1234")
            .header("ce-source", "/mycontext/subcontext")
            .header("Content-Type", ct)
            .body(br#"{ "message": "Hello World!" }"#.to_vec())
            .unwrap();
        let headers: Vec<(&str, &[u8])> = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        let mut buf = [0u8; 512];
        let ev = http::parse_binary(
            headers.iter().copied(),
            req.body(),
            &mut Scratch::new(&mut buf),
        )
        .unwrap();
        assert_eq!(attribute_table(&ev), expected_table(ct));
        assert_eq!(data_as_json(&ev), expected_data());
    }
}

// ----------------------------------------- scenario: structured content mode

fn structured_request(content_type: &str) -> String {
    let body = "{\n\
        \x20   \"specversion\": \"1.0\",\n\
        \x20   \"type\": \"com.example.someevent\",\n\
        \x20   \"time\": \"2018-04-05T03:56:24Z\",\n\
        \x20   \"id\": \"1234-1234-1234\",\n\
        \x20   \"source\": \"/mycontext/subcontext\",\n\
        \x20   \"datacontenttype\": \"application/json\",\n\
        \x20   \"data\": {\n\
        \x20       \"message\": \"Hello World!\"\n\
        \x20   }\n\
        }\n";
    request_text(&[("Content-Type", content_type)], body)
}

#[test]
fn structured_mode_with_cloudevents_json() {
    check_request(
        &structured_request(CONTENT_TYPE),
        ContentMode::Structured,
        "application/json",
    );
}

#[test]
fn structured_mode_with_cloudevents_json_and_charset() {
    check_request(
        &structured_request("application/cloudevents+json; charset=utf-8"),
        ContentMode::Structured,
        "application/json",
    );
}

#[test]
fn structured_mode_ignores_ce_headers() {
    // In structured mode the body is the whole event; stray ce- headers do not count.
    let raw = structured_request(CONTENT_TYPE).replacen(
        "Host: example.com\r\n",
        "Host: example.com\r\nce-id: other\r\nce-subject: stray\r\n",
        1,
    );
    check_request(&raw, ContentMode::Structured, "application/json");
}

// ------------------------------------------------- content-mode detection

#[test]
fn content_mode_is_chosen_by_content_type_prefix() {
    for (ct, mode) in [
        (None, ContentMode::Binary),
        (Some("application/json"), ContentMode::Binary),
        (Some("text/plain"), ContentMode::Binary),
        (
            Some("application/cloudevents+json"),
            ContentMode::Structured,
        ),
        (Some("application/cloudevents"), ContentMode::Structured),
        (
            Some("Application/CloudEvents+JSON"),
            ContentMode::Structured,
        ),
        (
            Some("application/cloudevents+json; charset=utf-8"),
            ContentMode::Structured,
        ),
        (
            Some("application/cloudevents-batch+json"),
            ContentMode::Batched,
        ),
        (
            Some("APPLICATION/CLOUDEVENTS-BATCH+JSON; charset=UTF-8"),
            ContentMode::Batched,
        ),
    ] {
        assert_eq!(http::content_mode(ct).unwrap(), mode, "{ct:?}");
    }
}

#[test]
fn batched_mode_yields_every_event() {
    let body = r#"[
        {"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"n":1}},
        {"specversion":"1.0","id":"2","source":"/s","type":"t","datacontenttype":"text/plain","data":"two"}
    ]"#;
    let raw = request_text(&[("Content-Type", BATCH_CONTENT_TYPE)], body);
    let req = parse_raw_request(&raw);
    let headers = req.header_pairs();
    let mut buf = [0u8; 64];
    let msg = http::parse(
        headers.iter().copied(),
        &req.body,
        &mut Scratch::new(&mut buf),
    )
    .unwrap();
    let mut batch = match msg {
        Message::Batch(b) => b,
        other => panic!("expected a batch, got {other:?}"),
    };
    let mut ids = Vec::new();
    let mut ebuf = [0u8; 512];
    while let Some(ev) = batch.next_event(&mut ebuf) {
        let ev = ev.unwrap();
        ids.push(ev.id().to_owned());
        if ev.id() == "2" {
            assert!(matches!(ev.data(), Some(Data::Text("two"))));
        } else {
            assert_eq!(data_as_json(&ev), json!({"n": 1}));
        }
    }
    assert_eq!(ids, ["1", "2"]);

    // An empty batch is valid too.
    let raw = request_text(&[("Content-Type", BATCH_CONTENT_TYPE)], "[]");
    let req = parse_raw_request(&raw);
    let headers = req.header_pairs();
    let mut buf = [0u8; 64];
    match http::parse(
        headers.iter().copied(),
        &req.body,
        &mut Scratch::new(&mut buf),
    )
    .unwrap()
    {
        Message::Batch(mut b) => assert!(b.next_event(&mut ebuf).is_none()),
        other => panic!("expected a batch, got {other:?}"),
    };
}

#[test]
fn batched_mode_body_must_be_an_array() {
    let raw = request_text(
        &[("Content-Type", BATCH_CONTENT_TYPE)],
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#,
    );
    let req = parse_raw_request(&raw);
    let headers = req.header_pairs();
    let mut buf = [0u8; 64];
    let e = http::parse(
        headers.iter().copied(),
        &req.body,
        &mut Scratch::new(&mut buf),
    )
    .unwrap_err();
    assert_eq!(e, ParseError::NotAnArray);
}

#[test]
fn unknown_event_format_is_unsupported() {
    for ct in [
        "application/cloudevents+avro",
        "application/cloudevents+protobuf; charset=utf-8",
        "application/cloudevents-batch+avro",
        "Application/CloudEvents+XML",
    ] {
        assert_eq!(
            http::content_mode(Some(ct)),
            Err(ParseError::UnsupportedFormat),
            "{ct}"
        );
        let raw = request_text(&[("Content-Type", ct)], "\x00\x01avro");
        let req = parse_raw_request(&raw);
        let headers = req.header_pairs();
        let mut buf = [0u8; 64];
        let e = http::parse(
            headers.iter().copied(),
            &req.body,
            &mut Scratch::new(&mut buf),
        )
        .unwrap_err();
        assert_eq!(e, ParseError::UnsupportedFormat, "{ct}");
    }
}

#[test]
fn structured_body_that_is_not_an_event_is_rejected() {
    let raw = request_text(&[("Content-Type", CONTENT_TYPE)], "[]");
    let req = parse_raw_request(&raw);
    let headers = req.header_pairs();
    let mut buf = [0u8; 64];
    let e = http::parse(
        headers.iter().copied(),
        &req.body,
        &mut Scratch::new(&mut buf),
    )
    .unwrap_err();
    assert_eq!(e, ParseError::NotAnObject);
}
