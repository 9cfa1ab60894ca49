//! Binary mode sends data as the body "encoded as declared by the
//! `datacontenttype`" (HTTP binding §2.2, Kafka binding §2.1), and a peer
//! decodes a text body by its `charset` (the C# SDK does, both ways). Text
//! and JSON are written as UTF-8: an event forwarded from structured JSON
//! with `"datacontenttype": "text/plain; charset=iso-8859-1", "data": "é"`
//! went out as the bytes `c3 a9` under that type, which such a peer reads as
//! `Ã©`. Where the declared charset reads the UTF-8 bytes as other text, the
//! event goes structured (its JSON `data` string is the text whatever the
//! charset); ASCII under a charset that agrees with it, and UTF-8, stay binary.
#![cfg(all(feature = "http", feature = "http-types"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::HeaderMap;
use ossa_events::http_types::{self, ContentMode};
use ossa_events::parse::json::parse_event;
use ossa_events::sink::{Encoded, Encoding, Sink};
use ossa_events::{Event, Scratch, SendError};

/// A binary-mode sink that takes structured events too, as the HTTP and
/// Kafka sinks do.
struct Binary(Encoding);

impl Sink for Binary {
    fn encoding(&self) -> Encoding {
        self.0
    }
    fn takes_structured(&self) -> bool {
        true
    }
    fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
        Ok(())
    }
}

/// Whether `json` (one structured event) goes out in binary mode through
/// `http_types::encode`, the HTTP sink's and the Kafka sink's encoding.
fn sent_binary(json: &str) -> [bool; 3] {
    let mut buf = vec![0u8; json.len()];
    let ev: Event<'_> = parse_event(json.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
    let mut headers = HeaderMap::new();
    http_types::encode(&ev, ContentMode::Binary, &mut headers).unwrap();
    let http_types = headers.contains_key("ce-id");
    let sink = |e| Encoded::for_sink(&ev, &Binary(e)).unwrap().encoding() == e;
    [
        http_types,
        sink(Encoding::HttpBinary),
        sink(Encoding::KafkaBinary),
    ]
}

fn event(ct: &str, data: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"{ct}","data":{data}}}"#
    )
}

#[test]
fn text_the_declared_charset_would_read_otherwise_goes_structured() {
    for (ct, data) in [
        ("text/plain; charset=iso-8859-1", r#""é""#),
        ("text/plain; charset=utf-16", r#""hi""#),
        ("text/csv; charset=windows-1252", r#""a,€""#),
        ("application/json; charset=iso-8859-1", r#"{"a":"é"}"#),
    ] {
        assert_eq!(sent_binary(&event(ct, data)), [false; 3], "{ct} {data}");
    }
}

#[test]
fn utf8_and_ascii_in_a_charset_that_agrees_stay_binary() {
    for (ct, data) in [
        ("text/plain", r#""é""#),
        ("text/plain; charset=UTF-8", r#""é""#),
        ("text/plain; charset=iso-8859-1", r#""plain""#),
        ("text/plain; charset=us-ascii", r#""plain""#),
        ("application/json; charset=utf-8", r#"{"a":"é"}"#),
        ("application/json; charset=iso-8859-1", r#"{"a":1}"#),
    ] {
        assert_eq!(sent_binary(&event(ct, data)), [true; 3], "{ct} {data}");
    }
    // Bytes are sent as they are, whatever the charset says.
    let bytes = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain; charset=utf-16","data_base64":"aABpAA=="}"#;
    assert_eq!(sent_binary(bytes), [true; 3]);
}

/// A `charset` given twice (an error, RFC 6838 §4.3) is read by peers as
/// either one: Python's `email` takes the first, others the last, Go's
/// `mime` refuses the type. Text goes binary only when every `charset`
/// named reads its UTF-8 bytes as the same text.
#[test]
fn text_under_a_repeated_charset_goes_binary_only_when_each_reads_it() {
    for ct in [
        "text/plain; charset=utf-16; charset=utf-8",
        "text/plain; charset=utf-8; charset=utf-16",
        // Quoted, as the JSON string writes it.
        r#"text/plain; Charset=utf-8; CHARSET=\"utf-16\""#,
    ] {
        assert_eq!(sent_binary(&event(ct, r#""hi""#)), [false; 3], "{ct}");
    }
    let ct = "text/plain; charset=utf-8; charset=us-ascii";
    assert_eq!(sent_binary(&event(ct, r#""hi""#)), [true; 3], "{ct}");
}
