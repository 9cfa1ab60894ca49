//! Three rules the spec is clear on, held in every format that can carry the
//! value (structured JSON, JSON batch, HTTP structured / batched / binary,
//! Kafka structured / binary) and in the builder:
//!
//! 1. A value of type `URI` (`dataschema`, `Uri`-typed extensions) is an
//!    RFC 3986 §4.3 `absolute-URI`: no fragment ([`Rule::UriFragment`]).
//!    `source` is a `URI-reference` and keeps its fragment.
//! 2. `"data": null` is an explicit null payload (JSON format §3.1.1), so beside
//!    `data_base64` it is a conflict ([`Rule::DataConflict`]), and with a
//!    non-JSON `datacontenttype` it is data that is not a string
//!    ([`Rule::DataNotString`], §3.1.2 "MAY fail"). Binary modes have no
//!    `data` / `data_base64` members: the body is the data.
//! 3. `datacontenttype` has no whitespace before or after it (RFC 9110 §8.3.1
//!    `media-type`; whitespace only around `;`): [`Rule::MediaTypeWhitespace`].
//!    In HTTP binary mode it is the `Content-Type` field value, which by
//!    RFC 9110 §5.5 excludes the whitespace around it: stripped, never kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events::parse::{http, json, kafka};
use ossa_events::{
    Attribute, Data, Event, EventBuilder, ExtValue, InBatchError, ParseError, Rule, Scratch,
    ValidationError,
};

/// A minimal valid event with `extra` members appended (`extra` starts with `,`).
fn with(extra: &str) -> String {
    format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t"{extra}}}"#)
}

fn base() -> EventBuilder<'static> {
    Event::builder().id("1").source("/s").ty("t")
}

/// The validation error of `r`, or a panic naming what was accepted.
#[track_caller]
fn invalid<T: std::fmt::Debug>(r: Result<T, ParseError>, what: &str) -> ValidationError {
    match r {
        Ok(v) => panic!("{what}: accepted {v:?}"),
        Err(ParseError::Invalid(v)) => v,
        Err(ParseError::InBatch {
            error: InBatchError::Invalid(v),
            ..
        }) => v,
        Err(e) => panic!("{what}: expected a validation error, got {e:?}"),
    }
}

/// Every way a structured JSON event reaches a parser: alone, as the only
/// element of a batch, in an HTTP request in structured and in batched mode,
/// and in a Kafka record in structured mode. Each gives its verdict.
fn structured_everywhere(input: &str) -> Vec<(&'static str, Result<(), ValidationError>)> {
    let body = input.as_bytes();
    let batch = format!("[{input}]");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    let verdict = |r: Result<(), ParseError>| match r {
        Ok(()) => Ok(()),
        Err(e) => Err(invalid::<()>(Err(e), input)),
    };
    out.push((
        "structured",
        verdict(json::parse_event(body, &mut Scratch::new(&mut buf)).map(drop)),
    ));
    let mut parser = json::BatchParser::new(batch.as_bytes()).unwrap();
    let first = parser.next_event(&mut buf).expect("one element");
    out.push(("batch", verdict(first.map(drop))));
    let mut buf = vec![0u8; 4096];
    let h: [(&str, &[u8]); 1] = [("Content-Type", b"application/cloudevents+json")];
    out.push((
        "HTTP structured",
        verdict(http::parse(h, body, &mut Scratch::new(&mut buf)).map(drop)),
    ));
    let h: [(&str, &[u8]); 1] = [("content-type", b"application/cloudevents-batch+json")];
    let mut buf = vec![0u8; 4096];
    let r = match http::parse(h, batch.as_bytes(), &mut Scratch::new(&mut buf)).unwrap() {
        http::Message::Batch(mut events) => {
            let mut s = vec![0u8; 4096];
            events.next_event(&mut s).expect("one element").map(drop)
        }
        other => panic!("batched mode: {other:?}"),
    };
    out.push(("HTTP batched", verdict(r)));
    let h: [(&str, &[u8]); 1] = [("content-type", b"application/cloudevents+json")];
    let mut buf = vec![0u8; 4096];
    out.push((
        "Kafka structured",
        verdict(kafka::parse(h, None, Some(body), &mut Scratch::new(&mut buf)).map(drop)),
    ));
    out
}

#[track_caller]
fn rejected_everywhere(input: &str, attribute: &Attribute, rule: Rule) {
    for (format, verdict) in structured_everywhere(input) {
        match verdict {
            Ok(()) => panic!("{format} accepted {input}"),
            Err(v) => assert_eq!(
                (&v.attribute, v.rule),
                (attribute, rule),
                "{format}: {input}"
            ),
        }
    }
}

#[track_caller]
fn accepted_everywhere(input: &str) {
    for (format, verdict) in structured_everywhere(input) {
        assert!(verdict.is_ok(), "{format} rejected {input}: {verdict:?}");
    }
}

const CE_HTTP: [(&str, &[u8]); 4] = [
    ("ce-specversion", b"1.0"),
    ("ce-id", b"1"),
    ("ce-source", b"/s"),
    ("ce-type", b"t"),
];
const CE_KAFKA: [(&str, &[u8]); 4] = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"1"),
    ("ce_source", b"/s"),
    ("ce_type", b"t"),
];

/// HTTP binary mode with the required headers plus `extra`: the event's
/// `(datacontenttype, dataschema)` or the validation error.
fn http_binary(
    extra: &[(&str, &[u8])],
) -> Result<(Option<String>, Option<String>), ValidationError> {
    let headers: Vec<(&str, &[u8])> = CE_HTTP.iter().chain(extra).copied().collect();
    let mut buf = vec![0u8; 4096];
    let r = http::parse_binary(headers, br#""x""#, &mut Scratch::new(&mut buf)).map(|ev| {
        (
            ev.datacontenttype().map(str::to_owned),
            ev.dataschema().map(str::to_owned),
        )
    });
    r.map_err(|e| invalid::<()>(Err(e), "HTTP binary"))
}

/// Kafka binary mode with the required headers plus `extra`.
fn kafka_binary(extra: &[(&str, &[u8])]) -> Result<(), ValidationError> {
    let headers: Vec<(&str, &[u8])> = CE_KAFKA.iter().chain(extra).copied().collect();
    let mut buf = vec![0u8; 4096];
    let r = kafka::parse(headers, None, Some(br#""x""#), &mut Scratch::new(&mut buf)).map(drop);
    r.map_err(|e| invalid::<()>(Err(e), "Kafka binary"))
}

// ------------------------------------------------- 1. URI has no fragment

const URIS_WITH_FRAGMENT: [&str; 5] = [
    "http://ex.com/s.json#frag",
    "http:#//ex.com/s.json",
    "http://e#x.com/s.json",
    "urn:x:y#",
    "https://ex.com/s?q=1#f",
];

#[test]
fn dataschema_with_a_fragment_is_rejected_in_every_format() {
    for uri in URIS_WITH_FRAGMENT {
        let input = with(&format!(r#","dataschema":"{uri}""#));
        rejected_everywhere(&input, &Attribute::DataSchema, Rule::UriFragment);
        let e = http_binary(&[("ce-dataschema", uri.as_bytes())]).unwrap_err();
        assert_eq!(
            (e.attribute, e.rule),
            (Attribute::DataSchema, Rule::UriFragment),
            "{uri}"
        );
        // Percent-encoding is undone first: `%23` is a `#` too.
        let encoded = uri.replace('#', "%23");
        let e = http_binary(&[("ce-dataschema", encoded.as_bytes())]).unwrap_err();
        assert_eq!(e.rule, Rule::UriFragment, "{encoded}");
        let e = kafka_binary(&[("ce_dataschema", uri.as_bytes())]).unwrap_err();
        assert_eq!(
            (e.attribute, e.rule),
            (Attribute::DataSchema, Rule::UriFragment),
            "{uri}"
        );
        let e = base().dataschema(uri).build().unwrap_err();
        assert_eq!(
            (e.attribute, e.rule),
            (Attribute::DataSchema, Rule::UriFragment),
            "{uri}"
        );
    }
}

#[test]
fn uri_typed_extension_with_a_fragment_is_rejected_by_the_builder() {
    // JSON and the bindings carry extensions as strings; only the builder
    // knows an extension is typed URI.
    for uri in URIS_WITH_FRAGMENT {
        let e = base()
            .extension("policy", ExtValue::Uri(uri))
            .build()
            .unwrap_err();
        assert_eq!(
            (e.attribute.name(), e.rule),
            ("policy", Rule::UriFragment),
            "{uri}"
        );
        // A URI-reference keeps its fragment.
        assert!(
            base()
                .extension("ref", ExtValue::UriRef(uri))
                .build()
                .is_ok()
        );
    }
    assert_eq!(
        ExtValue::Uri("/rel#f").validate("x").unwrap_err().rule,
        Rule::NotAbsoluteUri,
        "no scheme is the older, more basic fault"
    );
}

#[test]
fn absolute_uris_without_a_fragment_and_sources_with_one_still_pass() {
    for uri in [
        "http://ex.com/s.json",
        "urn:x:y",
        "https://ex.com/s?q=1&r=%23",
    ] {
        let input = with(&format!(r#","dataschema":"{uri}""#));
        accepted_everywhere(&input);
        // HTTP header values are percent-decoded once: a literal `%` is `%25`.
        let encoded = uri.replace('%', "%25");
        assert_eq!(
            http_binary(&[("ce-dataschema", encoded.as_bytes())])
                .unwrap()
                .1
                .as_deref(),
            Some(uri)
        );
        kafka_binary(&[("ce_dataschema", uri.as_bytes())]).unwrap();
        base().dataschema(uri).build().unwrap();
    }
    // `source` is a URI-reference: RFC 3986 §4.1 allows a fragment.
    accepted_everywhere(
        r##"{"specversion":"1.0","id":"1","source":"http://ex.com/s#frag","type":"t"}"##,
    );
    base().source("http://ex.com/s#frag").build().unwrap();
}

#[test]
fn the_error_names_the_attribute_and_the_rule() {
    let e = base()
        .dataschema("http://ex.com/s.json#frag")
        .build()
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("dataschema"), "{text}");
    assert!(text.contains("fragment"), "{text}");
    let e = base()
        .datacontenttype(" application/json")
        .build()
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("datacontenttype"), "{text}");
    assert!(text.contains("whitespace"), "{text}");
}

// --------------------------------------- 2. "data": null is a payload

#[test]
fn null_data_beside_data_base64_is_a_conflict_in_every_structured_format() {
    for extra in [
        r#","data_base64":"aGVsbG8=","data":null"#,
        r#","data":null,"data_base64":"aGVsbG8=""#,
        r#","datacontenttype":"application/octet-stream","data":null,"data_base64":"aGVsbG8=""#,
    ] {
        rejected_everywhere(&with(extra), &Attribute::Data, Rule::DataConflict);
    }
}

#[test]
fn null_data_with_a_non_json_content_type_is_not_a_string() {
    for ct in [
        "text/plain",
        "application/octet-stream",
        "text/xml; charset=utf-8",
    ] {
        rejected_everywhere(
            &with(&format!(r#","datacontenttype":"{ct}","data":null"#)),
            &Attribute::Data,
            Rule::DataNotString,
        );
    }
}

#[test]
fn null_data_alone_is_kept_as_an_explicit_null() {
    for extra in [
        r#","data":null"#,
        r#","datacontenttype":"application/json","data":null"#,
        r#","datacontenttype":"application/vnd.x+json","data":null"#,
        // A null data_base64 is an unset member (§2.2 null = unset); the
        // explicit null data stays.
        r#","data_base64":null,"data":null"#,
    ] {
        let input = with(extra);
        accepted_everywhere(&input);
        let mut buf = vec![0u8; 1024];
        let ev = json::parse_event(input.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
        assert!(
            matches!(ev.data(), Some(Data::Json("null"))),
            "{input}: {:?}",
            ev.data()
        );
        let out = String::from_utf8(ossa_events::format::json::to_vec(&ev).unwrap()).unwrap();
        assert!(out.contains(r#""data":null"#), "{out}");
    }
}

// ------------------------------------ 3. no whitespace around the media type

const PADDED_MEDIA_TYPES: [&str; 5] = [
    " application/json",
    "application/json ",
    "text/plain;charset=utf-8 ",
    "  text/plain",
    " text/plain ; charset=utf-8 ",
];

#[test]
fn datacontenttype_with_surrounding_whitespace_is_rejected_in_every_format() {
    for ct in PADDED_MEDIA_TYPES {
        let member = serde_json::to_string(ct).unwrap();
        let input = with(&format!(r#","datacontenttype":{member}"#));
        rejected_everywhere(
            &input,
            &Attribute::DataContentType,
            Rule::MediaTypeWhitespace,
        );
        // Kafka header values are raw bytes: the space is part of the value.
        let e = kafka_binary(&[("content-type", ct.as_bytes())]).unwrap_err();
        assert_eq!(
            (e.attribute, e.rule),
            (Attribute::DataContentType, Rule::MediaTypeWhitespace),
            "Kafka binary {ct:?}"
        );
        let e = base().datacontenttype(ct).build().unwrap_err();
        assert_eq!(
            (e.attribute, e.rule),
            (Attribute::DataContentType, Rule::MediaTypeWhitespace),
            "builder {ct:?}"
        );
        // HTTP binary: an HTTP field value excludes the whitespace around it
        // (RFC 9110 §5.5), so the event never holds a padded value.
        let (got, _) = http_binary(&[("Content-Type", ct.as_bytes())]).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(ct.trim_matches([' ', '\t'])),
            "HTTP binary {ct:?}"
        );
    }
}

#[test]
fn whitespace_around_the_parameter_semicolon_is_still_allowed() {
    for ct in [
        "text/plain; charset=utf-8",
        "text/plain ;charset=utf-8",
        "text/plain  ;  charset=utf-8 ; format=flowed",
    ] {
        let member = serde_json::to_string(ct).unwrap();
        accepted_everywhere(&with(&format!(r#","datacontenttype":{member},"data":"x""#)));
        kafka_binary(&[("content-type", ct.as_bytes())]).unwrap();
        base().datacontenttype(ct).build().unwrap();
    }
    // Whitespace anywhere else is not a media type at all.
    for ct in ["text /plain", "text/ plain", "text/plain; charset =utf-8"] {
        let member = serde_json::to_string(ct).unwrap();
        rejected_everywhere(
            &with(&format!(r#","datacontenttype":{member}"#)),
            &Attribute::DataContentType,
            Rule::NotMediaType,
        );
    }
}

#[test]
fn a_tab_in_datacontenttype_is_a_control_character() {
    // The media-type grammar allows HTAB around `;`, but datacontenttype is a
    // String (spec.md "Type System"): U+0009 is a control character.
    for ct in ["text/plain;\tcharset=utf-8", "\ttext/plain", "text/plain\t"] {
        let member = serde_json::to_string(ct).unwrap();
        rejected_everywhere(
            &with(&format!(r#","datacontenttype":{member}"#)),
            &Attribute::DataContentType,
            Rule::InvalidCharacter,
        );
        let e = kafka_binary(&[("content-type", ct.as_bytes())]).unwrap_err();
        assert_eq!(e.rule, Rule::InvalidCharacter, "Kafka binary {ct:?}");
        let e = base().datacontenttype(ct).build().unwrap_err();
        assert_eq!(e.rule, Rule::InvalidCharacter, "builder {ct:?}");
    }
    let e = http_binary(&[("Content-Type", b"text/plain;\tcharset=utf-8")]).unwrap_err();
    assert_eq!(
        (e.attribute, e.rule),
        (Attribute::DataContentType, Rule::InvalidCharacter)
    );
}
