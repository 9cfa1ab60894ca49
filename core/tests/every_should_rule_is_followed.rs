//! The SHOULDs, RECOMMENDEDs and receiver-side rules of the CloudEvents
//! documents that the core's writers and parsers follow (the MUSTs are
//! `tests/tests/every_must_rule_is_enforced.rs`; the charset rule is
//! `binary_text_data_is_read_in_its_declared_charset.rs`). Each test names
//! the rule it holds to.
#![allow(clippy::unwrap_used)]

use ossa_events_core::format::binary::{self, Binding};
use ossa_events_core::format::json;
use ossa_events_core::parse::{http, json::parse_event, kafka};
use ossa_events_core::{Data, Event, Scratch, Timestamp};

const BASE: &str = r#""specversion":"1.0","id":"1","source":"/s","type":"t""#;

/// The required `ce-`/`ce_` headers followed by `extra`.
fn headers(prefix: &str, extra: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = [
        ("specversion", "1.0"),
        ("id", "1"),
        ("source", "/s"),
        ("type", "t"),
    ]
    .iter()
    .map(|(n, v)| (format!("{prefix}{n}"), v.as_bytes().to_vec()))
    .collect();
    v.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_vec())));
    v
}

/// `ev` in the JSON format.
fn json_of(ev: &Event<'_>) -> serde_json::Value {
    let mut out = vec![0u8; 256 * 1024];
    let n = json::to_slice(ev, &mut out).unwrap();
    serde_json::from_slice(&out[..n]).unwrap()
}

/// `f` of the event HTTP binary mode reads from `hs` and `body`.
fn http_binary<R>(hs: &[(String, Vec<u8>)], body: &[u8], f: impl FnOnce(&Event<'_>) -> R) -> R {
    let mut buf = vec![0u8; 4096];
    let ev = http::parse_binary(
        hs.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
        body,
        &mut Scratch::new(&mut buf),
    )
    .unwrap();
    f(&ev)
}

/// `f` of the event Kafka reads from `hs` and `value`.
fn kafka_record<R>(hs: &[(String, Vec<u8>)], value: &[u8], f: impl FnOnce(&Event<'_>) -> R) -> R {
    let mut buf = vec![0u8; 4096];
    let rec = kafka::parse(
        hs.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
        None,
        Some(value),
        &mut Scratch::new(&mut buf),
    )
    .unwrap();
    f(&rec.event)
}

/// spec.md `datacontenttype`: "When translating an event message with no
/// `datacontenttype` attribute to a different format or protocol binding,
/// the target `datacontenttype` SHOULD be set explicitly to the implied
/// `datacontenttype` of the source" (json-format.md §3.1.2 says the same,
/// and §3.2 shows the quoted string body). Binary data implies nothing.
#[test]
fn the_implied_application_json_is_made_explicit_in_binary_modes() {
    for (data, body) in [
        (r#""I'm just a string""#, &br#""I'm just a string""#[..]),
        (r#"{"a":1}"#, br#"{"a":1}"#),
        ("null", b"null"),
    ] {
        let text = format!(r#"{{{BASE},"data":{data}}}"#);
        let mut buf = [0u8; 256];
        let ev = parse_event(text.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
        assert_eq!(
            binary::content_type(&ev),
            Some("application/json"),
            "{data}"
        );
        let mut out = Vec::new();
        binary::write_body(&ev, &mut out).unwrap();
        assert_eq!(out, body, "{data}");
    }
    let text = format!(r#"{{{BASE},"data_base64":"eyAieHl6IjogMTIzIH0="}}"#);
    let mut buf = [0u8; 256];
    let ev = parse_event(text.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
    assert_eq!(binary::content_type(&ev), None);
}

/// http-protocol-binding.md §3.1.3.2: "Percent-encoding SHOULD be performed
/// using upper-case for values A-F"; the Euro example "SHOULD be encoded
/// as" `Euro%20%E2%82%AC%20%F0%9F%98%80`. (Control characters, which
/// attributes cannot hold, are RECOMMENDED to be treated as needing it:
/// `every_must_rule_is_enforced.rs` checks the encoder does.)
#[test]
fn percent_encoding_is_upper_case_as_in_the_euro_example() {
    let ev = Event::builder()
        .id("1")
        .source("/s")
        .ty("t")
        .subject("Euro € 😀")
        .extension_str("x", "ÿ~")
        .build()
        .unwrap();
    let value = |attr| {
        binary::headers(&ev, Binding::Http)
            .find(|h| h.attribute() == attr)
            .map(|h| h.value().to_string())
    };
    assert_eq!(
        value("subject").as_deref(),
        Some("Euro%20%E2%82%AC%20%F0%9F%98%80")
    );
    assert_eq!(value("x").as_deref(), Some("%C3%BF~"));
}

/// http-protocol-binding.md §3 and kafka-protocol-binding.md §3: a
/// `Content-Type` "prefixed with the CloudEvents media type
/// `application/cloudevents` (matched case-insensitively)" is structured
/// mode, whatever its parameters; both modes are read (§1.3: every
/// implementation SHOULD support both).
#[test]
fn structured_mode_is_told_by_its_prefix_in_any_case_with_parameters() {
    let body = format!("{{{BASE}}}");
    for ct in [
        "application/cloudevents+json",
        "APPLICATION/CLOUDEVENTS+JSON",
        "application/cloudevents+json;charset=UTF-8",
        "Application/CloudEvents+Json ; charset=\"utf-8\"",
        "application/cloudevents",
    ] {
        let hs = [("Content-Type", ct.as_bytes())];
        let mut buf = [0u8; 256];
        let msg = http::parse(hs, body.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
        assert!(
            matches!(msg, http::Message::Event(ev) if ev.id() == "1"),
            "{ct}"
        );
        let hs = [("content-type", ct.as_bytes())];
        let mut buf = [0u8; 256];
        let rec =
            kafka::parse(hs, None, Some(body.as_bytes()), &mut Scratch::new(&mut buf)).unwrap();
        assert_eq!(rec.event.id(), "1", "{ct}");
    }
}

/// json-format.md §3.1.2: "If the `datacontenttype` does not declare
/// JSON-formatted data content, then the `data` member SHOULD be treated as
/// an encoded content string"; in binary mode that string is the body.
#[test]
fn data_under_a_non_json_type_is_an_encoded_content_string() {
    let text = format!(r#"{{{BASE},"datacontenttype":"text/xml","data":"<a b=\"1\"/>"}}"#);
    let mut buf = [0u8; 256];
    let ev = parse_event(text.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
    assert!(matches!(ev.data(), Some(Data::Text(r#"<a b="1"/>"#))));
    let mut out = Vec::new();
    binary::write_body(&ev, &mut out).unwrap();
    assert_eq!(out, br#"<a b="1"/>"#);
}

/// spec.md "Attribute Naming Convention": names "SHOULD start with a letter"
/// and "SHOULD NOT exceed 20 characters" bind producers and extension
/// authors; a receiver takes any name of lower-case letters and digits.
#[test]
fn names_past_20_characters_or_starting_with_a_digit_are_received() {
    let long = "averyveryverylongextensionname";
    let text = format!(r#"{{{BASE},"{long}":"x","1abc":"y"}}"#);
    let mut buf = [0u8; 256];
    let ev = parse_event(text.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
    assert_eq!(ev.extensions().len(), 2);
    let http_name = format!("ce-{long}");
    let hs = headers("ce-", &[(&http_name, b"x"), ("ce-1abc", b"y")]);
    http_binary(&hs, b"", |ev| assert_eq!(ev.extensions().len(), 2));
    let kafka_name = format!("ce_{long}");
    let hs = headers("ce_", &[(&kafka_name, b"x"), ("ce_1abc", b"y")]);
    kafka_record(&hs, b"", |ev| assert_eq!(ev.extensions().len(), 2));
}

/// spec.md: "An Intermediary SHOULD forward OPTIONAL attributes", `time` as
/// an RFC 3339 timestamp: its offset and fraction digits are kept (a lower
/// case `t`/`z` is written upper case, the same instant and form RFC 3339
/// §5.6 allows); digits past the ninth (below a nanosecond) are cut.
#[test]
fn times_keep_their_offset_and_fraction_digits() {
    for (given, written) in [
        ("2018-04-05T17:31:00+05:30", "2018-04-05T17:31:00+05:30"),
        ("2018-04-05T17:31:00-00:00", "2018-04-05T17:31:00-00:00"),
        ("2018-04-05T17:31:00.000Z", "2018-04-05T17:31:00.000Z"),
        ("2018-04-05t17:31:00.5z", "2018-04-05T17:31:00.5Z"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:60Z"),
        (
            "2018-04-05T17:31:00.1234567891Z",
            "2018-04-05T17:31:00.123456789Z",
        ),
    ] {
        assert_eq!(Timestamp::parse(given).unwrap().to_string(), written);
        let hs = headers("ce-", &[("ce-time", given.as_bytes())]);
        http_binary(&hs, b"", |ev| assert_eq!(json_of(ev)["time"], written));
        let hs = headers("ce_", &[("ce_time", given.as_bytes())]);
        kafka_record(&hs, b"", |ev| assert_eq!(json_of(ev)["time"], written));
    }
}

/// spec.md "Size Limits": "Consumers SHOULD accept events of a size of at
/// least 64 KiB" (and intermediaries MUST forward them): a 64 KiB event
/// reads in every format, its data unchanged.
#[test]
fn events_of_64_kib_are_received() {
    let payload = "x".repeat(64 * 1024);
    let text = format!(r#"{{{BASE},"datacontenttype":"text/plain","data":"{payload}"}}"#);
    let mut buf = vec![0u8; 256];
    let ev = parse_event(text.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
    assert!(matches!(ev.data(), Some(Data::Text(d)) if d.len() == payload.len()));
    let hs = headers("ce-", &[("content-type", b"text/plain")]);
    http_binary(&hs, payload.as_bytes(), |ev| {
        assert!(matches!(ev.data(), Some(Data::Text(d)) if *d == payload));
    });
    let hs = headers("ce_", &[("content-type", b"text/plain")]);
    kafka_record(&hs, payload.as_bytes(), |ev| {
        assert!(matches!(ev.data(), Some(Data::Text(d)) if *d == payload));
    });
}

/// spec.md: "An Intermediary SHOULD forward OPTIONAL attributes", and
/// unknown extensions are passed on, not dropped: an event read from JSON
/// and sent on in either binary mode reads back with all of them.
#[test]
fn optional_attributes_and_unknown_extensions_are_forwarded() {
    let text = format!(
        r#"{{{BASE},"subject":"a b","time":"2018-04-05T17:31:00+02:00","dataschema":"https://x.example/s","datacontenttype":"text/plain","comexampleothervalue":5,"flag":true,"data":"hi"}}"#
    );
    let mut buf = [0u8; 512];
    let sent = parse_event(text.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
    for binding in [Binding::Http, Binding::Kafka] {
        let mut hs: Vec<(String, Vec<u8>)> = binary::headers(&sent, binding)
            .map(|h| (h.name().to_string(), h.value().to_string().into_bytes()))
            .collect();
        let ct = binary::content_type(&sent).unwrap();
        hs.push(("content-type".into(), ct.as_bytes().to_vec()));
        let mut body = Vec::new();
        binary::write_body(&sent, &mut body).unwrap();
        let check = |got: &Event<'_>| assert!(got.same_as(&sent, false), "{binding:?}: {got:?}");
        match binding {
            Binding::Http => http_binary(&hs, &body, check),
            _ => kafka_record(&hs, &body, check),
        }
    }
}
