//! The HTTP binding's binary-mode headers, read and written: percent-decoding
//! (what the String type forbids is refused once decoded), header names in any
//! case, `Content-Type` kept as `datacontenttype`, RFC 3339 forms, the spec's
//! example sources, and the writer's percent-encoding (HTTP binding 3.1.3.2)
//! at every alignment of its word-at-a-time path. From an adversarial review.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use ossa_events_core::format::binary::{self, Binding};
use ossa_events_core::parse::http;
use ossa_events_core::{Event, ParseError, Scratch};

fn base(extra: &[(&'static str, &'static [u8])]) -> Vec<(&'static str, &'static [u8])> {
    let mut h: Vec<(&'static str, &'static [u8])> = vec![
        ("ce-specversion", b"1.0"),
        ("ce-id", b"1"),
        ("ce-source", b"/s"),
        ("ce-type", b"t"),
    ];
    h.extend_from_slice(extra);
    h
}

fn parse_subject(v: &'static [u8]) -> Result<String, ParseError> {
    let h = base(&[("ce-subject", v)]);
    let mut buf = vec![0u8; 16384];
    let mut sc = Scratch::new(&mut buf);
    match http::parse(h, b"", &mut sc)? {
        http::Message::Event(ev) => Ok(ev.subject().unwrap().to_string()),
        _ => unreachable!(),
    }
}

fn parse_ext(name: &'static str, v: &'static [u8]) -> Result<Option<String>, ParseError> {
    let h = base(&[(name, v)]);
    let mut buf = vec![0u8; 16384];
    let mut sc = Scratch::new(&mut buf);
    match http::parse(h, b"", &mut sc)? {
        http::Message::Event(ev) => Ok(ev
            .extensions()
            .iter()
            .next()
            .map(|e| e.value.canonical().to_string())),
        _ => unreachable!(),
    }
}

#[test]
fn decoded_control_characters_are_refused() {
    assert!(parse_subject(b"a%0Ab").is_err(), "LF decoded into a String");
    assert!(
        parse_subject(b"a%00b").is_err(),
        "NUL decoded into a String"
    );
    assert!(
        parse_subject(b"a%7Fb").is_err(),
        "DEL decoded into a String"
    );
    assert!(
        parse_subject(b"a%C2%85b").is_err(),
        "U+0085 decoded into a String"
    );
    assert!(parse_subject(b"%EF%BF%BE").is_err(), "noncharacter U+FFFE");
    assert!(parse_subject(b"%ED%A0%80").is_err(), "surrogate U+D800");
    assert!(parse_subject(b"%F4%90%80%80").is_err(), "above U+10FFFF");
    assert!(parse_subject(b"%C0%A0").is_err(), "overlong");
    assert!(parse_subject(b"%E2%82").is_err(), "truncated sequence");
}

#[test]
fn percent_decoding_details() {
    assert_eq!(parse_subject(b"%41%62c").unwrap(), "Abc");
    assert_eq!(parse_subject(b"%e2%82%ac").unwrap(), "\u{20ac}");
    assert_eq!(parse_subject(b"%22q%22").unwrap(), "\"q\"");
    assert_eq!(parse_subject(b"\"%22\"").unwrap(), "\"");
    assert_eq!(parse_subject(b"\" a b \"").unwrap(), " a b ");
    assert_eq!(parse_subject(b"\"\\%41\"").unwrap(), "A");
    assert_eq!(parse_subject(b"%2541").unwrap(), "%41", "only one round");
    assert!(parse_subject(b"%").is_err());
    assert!(parse_subject(b"abc%4").is_err());
    assert!(parse_subject(b"%+1").is_err());
    assert!(parse_subject(b"%-1").is_err());
}

#[test]
fn header_names_are_case_insensitive() {
    let h: Vec<(&str, &[u8])> = vec![
        ("CE-SPECVERSION", b"1.0"),
        ("Ce-Id", b"1"),
        ("cE-sOuRcE", b"/s"),
        ("CE-TYPE", b"t"),
        ("CE-MyExt", b"v"),
        ("CONTENT-TYPE", b"text/plain"),
    ];
    let mut buf = vec![0u8; 16384];
    let mut sc = Scratch::new(&mut buf);
    let http::Message::Event(ev) = http::parse(h, b"hi", &mut sc).unwrap() else {
        unreachable!()
    };
    assert_eq!(ev.datacontenttype(), Some("text/plain"));
    assert_eq!(ev.extensions().len(), 1);
    assert_eq!(ev.extensions()[0].name, "myext");
}

#[test]
fn empty_extension_value() {
    // An extension header with an empty value: a String of length 0.
    let r = parse_ext("ce-myext", b"");
    println!("empty ext: {r:?}");
}

#[test]
fn content_type_charset_becomes_datacontenttype() {
    for ct in [
        &b"application/json; charset=utf-8"[..],
        b"application/json;charset=\"utf-8\"",
        b"text/plain; charset=UTF-8",
        b"application/json ; charset=utf-8",
    ] {
        let mut h = base(&[]);
        let ct: &'static [u8] = Box::leak(ct.to_vec().into_boxed_slice());
        h.push(("Content-Type", ct));
        let mut buf = vec![0u8; 16384];
        let mut sc = Scratch::new(&mut buf);
        let r = http::parse(h, b"{\"a\":1}", &mut sc);
        match r {
            Ok(http::Message::Event(ev)) => {
                assert_eq!(ev.datacontenttype().map(str::as_bytes), Some(ct))
            }
            Ok(_) => unreachable!(),
            Err(e) => panic!("{} refused: {e:?}", String::from_utf8_lossy(ct)),
        }
    }
}

/// Every string written by the binary writer decodes to itself.
#[test]
fn writer_encodes_what_the_spec_lists() {
    let mut s = String::new();
    for c in (0x20u32..0x300).filter_map(char::from_u32) {
        if (0x7f..=0x9f).contains(&(c as u32)) {
            continue;
        }
        s.push(c);
    }
    s.push_str("\u{1F600}\u{20AC}");
    // each length/offset to exercise the 8-byte fast path
    for start in 0..16 {
        let sub = &s[s.char_indices().nth(start).unwrap().0..];
        let ev = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .subject(sub)
            .build()
            .unwrap();
        let v = binary::headers(&ev, Binding::Http)
            .find(|h| h.attribute() == "subject")
            .unwrap()
            .value()
            .to_string();
        for b in v.bytes() {
            assert!(
                (0x21..=0x7e).contains(&b) && b != b'"',
                "byte {b:#x} unencoded in {v}"
            );
        }
        // every '%' begins an escape
        let leaked: &'static [u8] = Box::leak(v.clone().into_bytes().into_boxed_slice());
        assert_eq!(parse_subject(leaked).unwrap(), sub);
    }
}

#[test]
fn rfc3339_time_forms_in_a_header() {
    for t in [
        &b"2018-04-05T03:56:24Z"[..],
        b"2018-04-05t03:56:24z",
        b"2018-04-05T03:56:24+00:00",
        b"2018-04-05T03:56:24-00:00",
        b"2018-04-05T03:56:24.5%2B01:00",
        b"2016-12-31T23:59:60Z",
    ] {
        let t: &'static [u8] = Box::leak(t.to_vec().into_boxed_slice());
        let h = base(&[("ce-time", t)]);
        let mut buf = vec![0u8; 1024];
        let mut sc = Scratch::new(&mut buf);
        let r = http::parse(h, b"", &mut sc);
        println!(
            "{} → {:?}",
            String::from_utf8_lossy(t),
            r.as_ref().map(|_| ()).map_err(|e| e.to_string())
        );
    }
}

#[test]
fn writer_fast_path_every_alignment() {
    for special in [" ", "\"", "%", "\u{e9}", "\u{a0}", "\u{1F600}", "~"] {
        for p in 0..40 {
            let s = format!("{}{special}{}", "a".repeat(p), "b".repeat(p % 9));
            let s: &'static str = Box::leak(s.into_boxed_str());
            let ev = Event::builder()
                .id("1")
                .source("/s")
                .ty("t")
                .subject(s)
                .build()
                .unwrap();
            let v = binary::headers(&ev, Binding::Http)
                .find(|h| h.attribute() == "subject")
                .unwrap()
                .value();
            let text = v.to_string();
            let mut buf = [0u8; 256];
            assert_eq!(v.write_into(&mut buf), Some(text.as_str()));
            if special != "~" {
                assert_eq!(v.as_plain_str(), None, "{s:?}");
            }
            for b in text.bytes() {
                assert!((0x21..=0x7e).contains(&b) && b != b'"', "{s:?} → {text}");
            }
            let leaked: &'static [u8] = Box::leak(text.into_bytes().into_boxed_slice());
            assert_eq!(parse_subject(leaked).unwrap(), s);
        }
    }
}

#[test]
fn spec_example_sources_and_dataschemas_in_headers() {
    for src in [
        &b"https://github.com/cloudevents"[..],
        b"mailto:cncf-wg-serverless@lists.cncf.io",
        b"urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        b"cloudevents/spec/pull/123",
        b"/sensors/tn-1234567/alerts",
        b"1-555-123-4567",
        b"http://[::1]:8080/a?b=c#frag",
        b"/a%2520b",
        b"%2F",
        b"//host",
        b"?q",
        b"#f",
        b"a:b",
    ] {
        let src: &'static [u8] = Box::leak(src.to_vec().into_boxed_slice());
        let h: Vec<(&str, &[u8])> = vec![
            ("ce-specversion", b"1.0"),
            ("ce-id", b"1"),
            ("ce-source", src),
            ("ce-type", b"t"),
        ];
        let mut buf = vec![0u8; 1024];
        let mut sc = Scratch::new(&mut buf);
        let r = http::parse(h, b"", &mut sc);
        assert!(
            r.is_ok(),
            "{} → {:?}",
            String::from_utf8_lossy(src),
            r.err()
        );
    }
}
