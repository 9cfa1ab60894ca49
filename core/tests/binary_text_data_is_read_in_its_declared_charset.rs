//! A binary-mode body under a textual content type is text only in the
//! charset the type declares (HTTP binding §2.2: data is "encoded as declared
//! by the `datacontenttype`"; JSON format §3.1.1: a string is written
//! "properly encoded according to the `datacontenttype`"). Bytes that happen
//! to be valid UTF-8 under another charset were read as the UTF-8 text they
//! spell: `hi` sent as `text/plain; charset=utf-16le` (`68 00 69 00`, what
//! the C# SDK sends for that type) came out as `"h\u0000i\u0000"`, and
//! `Ã©` in ISO-8859-1 (`c3 a9`) as `"é"`, where a peer that decodes by the
//! charset reads other text. Such a body is kept as the bytes it is
//! (`data_base64` in JSON, sent back unchanged).
#![allow(clippy::unwrap_used)]

use ossa_events_core::format::json;
use ossa_events_core::parse::{http, kafka};
use ossa_events_core::{Data, Event, Scratch};

/// The data that HTTP binary mode and Kafka binary mode read from `body`
/// under content type `ct`, written as the JSON format's data member.
fn read(ct: &'static str, body: &'static [u8]) -> [String; 2] {
    let h = |prefix: &str| -> Vec<(String, &'static [u8])> {
        vec![
            (format!("{prefix}specversion"), b"1.0"),
            (format!("{prefix}id"), b"1"),
            (format!("{prefix}source"), b"/s"),
            (format!("{prefix}type"), b"t"),
            ("content-type".to_string(), ct.as_bytes()),
        ]
    };
    let data = |ev: &Event<'_>| {
        let mut out = [0u8; 512];
        let n = json::to_slice(ev, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out[..n]).unwrap();
        match (v.get("data"), v.get("data_base64")) {
            (Some(d), None) => format!("data {d}"),
            (None, Some(b)) => format!("data_base64 {b}"),
            other => panic!("{other:?}"),
        }
    };
    let hh = h("ce-");
    let mut buf = [0u8; 512];
    let ev = http::parse_binary(
        hh.iter().map(|(n, v)| (n.as_str(), *v)),
        body,
        &mut Scratch::new(&mut buf),
    )
    .unwrap();
    let from_http = data(&ev);
    let kh = h("ce_");
    let mut buf = [0u8; 512];
    let rec = kafka::parse(
        kh.iter().map(|(n, v)| (n.as_str(), *v)),
        None,
        Some(body),
        &mut Scratch::new(&mut buf),
    )
    .unwrap();
    [from_http, data(&rec.event)]
}

#[test]
fn utf8_that_is_other_text_in_the_declared_charset_is_kept_as_bytes() {
    for (ct, body, want) in [
        // UTF-16 "hi" is valid UTF-8 (with NULs).
        (
            "text/plain; charset=utf-16le",
            &b"h\0i\0"[..],
            r#"data_base64 "aABpAA==""#,
        ),
        (
            "text/plain; charset=UTF-16",
            b"h\0i\0",
            r#"data_base64 "aABpAA==""#,
        ),
        // "Ã©" in ISO-8859-1 is the UTF-8 of "é".
        (
            "text/plain; charset=ISO-8859-1",
            "é".as_bytes(),
            r#"data_base64 "w6k=""#,
        ),
        (
            "text/csv; charset=windows-1252",
            "é".as_bytes(),
            r#"data_base64 "w6k=""#,
        ),
        (
            "text/plain; charset=shift_jis",
            b"abc",
            r#"data_base64 "YWJj""#,
        ),
        // JSON text in UTF-16 is no UTF-8 JSON: bytes, not a refusal.
        (
            "application/json; charset=utf-16le",
            b"1\0",
            r#"data_base64 "MQA=""#,
        ),
    ] {
        for got in read(ct, body) {
            assert_eq!(got, want, "{ct} {body:?}");
        }
    }
}

#[test]
fn utf8_and_ascii_in_a_charset_that_agrees_are_still_text() {
    for (ct, body, want) in [
        ("text/plain", "é".as_bytes(), r#"data "é""#),
        ("text/plain; charset=utf-8", "é".as_bytes(), r#"data "é""#),
        (
            "text/plain;charset=\"UTF-8\"",
            "é".as_bytes(),
            r#"data "é""#,
        ),
        ("text/plain; charset=utf8", "é".as_bytes(), r#"data "é""#),
        (
            "text/plain; charset=ISO-8859-1",
            b"plain",
            r#"data "plain""#,
        ),
        (
            "text/plain; charset=windows-1252",
            b"plain",
            r#"data "plain""#,
        ),
        ("text/plain; charset=us-ascii", b"plain", r#"data "plain""#),
        (
            "application/json; charset=iso-8859-1",
            b"{\"a\":1}",
            r#"data {"a":1}"#,
        ),
    ] {
        for got in read(ct, body) {
            assert_eq!(got, want, "{ct} {body:?}");
        }
    }
    // Data that was bytes stays bytes whatever the charset.
    let _ = Data::Binary(b"");
}
