//! One test per MUST of the CloudEvents documents (spec.md, json-format.md,
//! http-protocol-binding.md §3, kafka-protocol-binding.md §3), through the JSON
//! parser, the builder, the JSON writer and the binary-mode encoders/parsers.
//! Each rejection is checked by its exact attribute and rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events::base64::Base64Error;
use ossa_events::format::binary::{self, Binding};
use ossa_events::format::json::to_vec;
use ossa_events::parse::{http, json, kafka};
use ossa_events::{
    Attribute, Data, Event, EventBuilder, ExtValue, InBatchError, JsonErrorKind, MAX_EXTENSIONS,
    ParseError, Rule, Scratch, TimeError, Timestamp, ValidationError,
};
use serde_json::Value;

// ------------------------------------------------------------------ helpers

/// An extension attribute, for comparing with errors.
fn ext(name: &str) -> Attribute {
    Attribute::Extension(ossa_events::heapless::String::try_from(name).unwrap())
}

/// A minimal valid event with `extra` members appended (`extra` starts with `,`).
fn with(extra: &str) -> String {
    format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t"{extra}}}"#)
}

#[track_caller]
fn parse_err(input: &[u8]) -> ParseError {
    let mut buf = vec![0u8; 1 << 16];
    let r = json::parse_event(input, &mut Scratch::new(&mut buf));
    match r {
        Ok(ev) => panic!("accepted {}: {ev:?}", String::from_utf8_lossy(input)),
        Err(e) => e,
    }
}

#[track_caller]
fn parse_ok<R>(input: &str, f: impl FnOnce(&Event<'_>) -> R) -> R {
    let mut buf = vec![0u8; 1 << 16];
    let r = json::parse_event(input.as_bytes(), &mut Scratch::new(&mut buf));
    match r {
        Ok(ev) => f(&ev),
        Err(e) => panic!("rejected {input}: {e:?}"),
    }
}

#[track_caller]
fn assert_validation(e: &ParseError, attribute: &Attribute, rule: Rule, what: &str) {
    let v = e
        .validation()
        .unwrap_or_else(|| panic!("{what}: expected a validation error, got {e:?}"));
    assert_eq!((&v.attribute, v.rule), (attribute, rule), "{what}");
}

#[track_caller]
fn assert_rejects(input: &str, attribute: Attribute, rule: Rule) {
    let e = parse_err(input.as_bytes());
    assert_validation(&e, &attribute, rule, input);
}

#[track_caller]
fn assert_json_error(input: &[u8], kind: JsonErrorKind) {
    match parse_err(input) {
        ParseError::Json(j) => {
            assert_eq!(j.kind, kind, "{:?}", String::from_utf8_lossy(input))
        }
        other => panic!(
            "{:?}: expected JSON error {kind:?}, got {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

#[track_caller]
fn build_err(b: EventBuilder<'_>) -> ValidationError {
    match b.build() {
        Ok(ev) => panic!("builder accepted {ev:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_build_rejects(b: EventBuilder<'_>, attribute: Attribute, rule: Rule) {
    let e = build_err(b);
    assert_eq!((e.attribute, e.rule), (attribute, rule));
}

fn base() -> EventBuilder<'static> {
    Event::builder().id("1").source("/s").ty("t")
}

fn json_of(ev: &Event<'_>) -> Value {
    serde_json::from_slice(&to_vec(ev).unwrap()).unwrap()
}

const CE_BASE: [(&str, &str); 4] = [
    ("ce-specversion", "1.0"),
    ("ce-id", "1"),
    ("ce-source", "/s"),
    ("ce-type", "t"),
];

/// The required `ce-` headers (minus any named in `drop`) followed by `extra`.
fn http_headers<'a>(drop: &[&str], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
    CE_BASE
        .iter()
        .filter(|(n, _)| !drop.contains(n))
        .chain(extra.iter())
        .map(|&(n, v)| (n, v.as_bytes()))
        .collect()
}

/// Parses binary-mode HTTP headers and body; hands the result to `f`.
fn http_binary<R>(
    headers: &[(&str, &[u8])],
    body: &[u8],
    f: impl FnOnce(Result<&Event<'_>, ParseError>) -> R,
) -> R {
    let mut buf = vec![0u8; 4096];
    let r = http::parse_binary(headers.iter().copied(), body, &mut Scratch::new(&mut buf));
    match r {
        Ok(ev) => f(Ok(&ev)),
        Err(e) => f(Err(e)),
    }
}

#[track_caller]
fn http_err(headers: &[(&str, &[u8])], body: &[u8]) -> ParseError {
    http_binary(headers, body, |r| match r {
        Ok(ev) => panic!("binary mode accepted {ev:?}"),
        Err(e) => e,
    })
}

#[track_caller]
fn http_subject(raw: &str) -> Result<String, ParseError> {
    let h = http_headers(&[], &[("ce-subject", raw)]);
    http_binary(&h, b"", |r| r.map(|ev| ev.subject().unwrap().to_owned()))
}

/// The binary-mode headers of `ev` as `(name, value)` strings.
fn header_strings(ev: &Event<'_>, binding: Binding) -> Vec<(String, String)> {
    binary::headers(ev, binding)
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect()
}

fn header<'h>(hs: &'h [(String, String)], name: &str) -> Option<&'h str> {
    hs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

// ---------------------------------------------- REQUIRED attributes (spec.md)

#[test]
fn missing_required_attribute_is_rejected() {
    let all = [
        (
            "specversion",
            r#""specversion":"1.0""#,
            Attribute::SpecVersion,
        ),
        ("id", r#""id":"1""#, Attribute::Id),
        ("source", r#""source":"/s""#, Attribute::Source),
        ("type", r#""type":"t""#, Attribute::Type),
    ];
    for (name, _, attr) in &all {
        let members: Vec<&str> = all
            .iter()
            .filter(|(n, _, _)| n != name)
            .map(|(_, m, _)| *m)
            .collect();
        let input = format!("{{{}}}", members.join(","));
        assert_rejects(&input, attr.clone(), Rule::Missing);
    }
    assert_rejects("{}", Attribute::SpecVersion, Rule::Missing);
}

#[test]
fn null_required_attribute_counts_as_missing() {
    for (name, attr) in [
        ("specversion", Attribute::SpecVersion),
        ("id", Attribute::Id),
        ("source", Attribute::Source),
        ("type", Attribute::Type),
    ] {
        let input = with("").replacen(
            &format!("\"{name}\":"),
            &format!("\"{name}\":null,\"x{name}\":"),
            1,
        );
        assert_rejects(&input, attr, Rule::Missing);
    }
}

#[test]
fn empty_string_is_rejected_for_id_source_type_and_subject() {
    assert_rejects(
        r#"{"specversion":"1.0","id":"","source":"/s","type":"t"}"#,
        Attribute::Id,
        Rule::Empty,
    );
    assert_rejects(
        r#"{"specversion":"1.0","id":"1","source":"","type":"t"}"#,
        Attribute::Source,
        Rule::Empty,
    );
    assert_rejects(
        r#"{"specversion":"1.0","id":"1","source":"/s","type":""}"#,
        Attribute::Type,
        Rule::Empty,
    );
    assert_rejects(&with(r#","subject":"""#), Attribute::Subject, Rule::Empty);
}

#[test]
fn specversion_other_than_1_0_is_rejected() {
    for v in ["0.3", "1.1", "1", "2.0", "1.0 ", "v1.0"] {
        let input = with("").replace(r#""specversion":"1.0""#, &format!(r#""specversion":"{v}""#));
        assert_rejects(&input, Attribute::SpecVersion, Rule::UnsupportedSpecVersion);
    }
    // Empty is not 1.0 either (or is reported as empty).
    let input = with("").replace(r#""specversion":"1.0""#, r#""specversion":"""#);
    let e = parse_err(input.as_bytes());
    let v = e.validation().unwrap();
    assert_eq!(v.attribute, Attribute::SpecVersion);
    assert!(
        matches!(v.rule, Rule::UnsupportedSpecVersion | Rule::Empty),
        "{v:?}"
    );
}

#[test]
fn specversion_as_json_number_is_wrong_type() {
    let input = with("").replace(r#""specversion":"1.0""#, r#""specversion":1.0"#);
    assert_rejects(&input, Attribute::SpecVersion, Rule::WrongType);
}

#[test]
fn core_attributes_of_the_wrong_json_type_are_rejected() {
    for (member, attr) in [
        (r#","subject":5"#, Attribute::Subject),
        (r#","subject":true"#, Attribute::Subject),
        (r#","subject":{}"#, Attribute::Subject),
        (r#","time":1522949460"#, Attribute::Time),
        (
            r#","datacontenttype":["application/json"]"#,
            Attribute::DataContentType,
        ),
        (r#","dataschema":false"#, Attribute::DataSchema),
        (r#","data_base64":5"#, Attribute::DataBase64),
    ] {
        assert_rejects(&with(member), attr, Rule::WrongType);
    }
    assert_rejects(
        r#"{"specversion":"1.0","id":7,"source":"/s","type":"t"}"#,
        Attribute::Id,
        Rule::WrongType,
    );
    assert_rejects(
        r#"{"specversion":"1.0","id":"1","source":true,"type":"t"}"#,
        Attribute::Source,
        Rule::WrongType,
    );
    assert_rejects(
        r#"{"specversion":"1.0","id":"1","source":"/s","type":[]}"#,
        Attribute::Type,
        Rule::WrongType,
    );
}

// --------------------------------------------------- naming rules (spec.md)

#[test]
fn attribute_names_outside_lowercase_ascii_letters_and_digits_are_rejected() {
    for name in [
        "Foo", "fooBar", "FOO", "foo_bar", "foo-bar", "foo.bar", "foo bar", "é", "ﬀ",
    ] {
        assert_rejects(
            &with(&format!(r#","{name}":"x""#)),
            ext(name),
            Rule::InvalidName,
        );
    }
    // Escapes do not get around the rule.
    assert_rejects(&with(r#","\u0046oo":"x""#), ext("Foo"), Rule::InvalidName);
    // Case matters: an upper-case core attribute name is an invalid name, not the attribute.
    assert_rejects(&with(r#","ID":"2""#), ext("ID"), Rule::InvalidName);
}

#[test]
fn empty_attribute_name_is_rejected() {
    assert_rejects(&with(r#","":"x""#), ext(""), Rule::InvalidName);
}

#[test]
fn names_of_lowercase_letters_and_digits_of_any_length_are_accepted() {
    parse_ok(
        &with(r#","a":"x","1":"y","abc123":"z","averyveryverylongextensionname":"w""#),
        |ev| {
            assert_eq!(ev.extension("a"), Some(ExtValue::String("x")));
            assert_eq!(ev.extension("1"), Some(ExtValue::String("y")));
            assert_eq!(ev.extension("abc123"), Some(ExtValue::String("z")));
            assert_eq!(
                ev.extension("averyveryverylongextensionname"),
                Some(ExtValue::String("w"))
            );
        },
    );
}

#[test]
fn extension_named_data_is_reserved_in_the_builder() {
    assert_build_rejects(
        base().extension_str("data", "x"),
        Attribute::Data,
        Rule::ReservedName,
    );
    for (name, attr) in [
        ("id", Attribute::Id),
        ("source", Attribute::Source),
        ("specversion", Attribute::SpecVersion),
        ("type", Attribute::Type),
        ("datacontenttype", Attribute::DataContentType),
        ("dataschema", Attribute::DataSchema),
        ("subject", Attribute::Subject),
        ("time", Attribute::Time),
    ] {
        assert_build_rejects(base().extension_str(name, "x"), attr, Rule::ReservedName);
    }
    assert_build_rejects(
        base().extension_str("data_base64", "x"),
        Attribute::DataBase64,
        Rule::InvalidName,
    );
}

#[test]
fn builder_rejects_invalid_extension_names() {
    for name in ["Foo", "foo_bar", "foo-bar", ""] {
        assert_build_rejects(
            base().extension_str(name, "x"),
            ext(name),
            Rule::InvalidName,
        );
    }
}

// --------------------------------------- each attribute at most once (spec.md)

#[test]
fn duplicate_core_members_are_rejected() {
    assert_rejects(&with(r#","id":"2""#), Attribute::Id, Rule::Duplicate);
    assert_rejects(
        &with(r#","specversion":"1.0""#),
        Attribute::SpecVersion,
        Rule::Duplicate,
    );
    assert_rejects(
        &with(r#","source":"/s""#),
        Attribute::Source,
        Rule::Duplicate,
    );
    assert_rejects(&with(r#","type":"t""#), Attribute::Type, Rule::Duplicate);
    assert_rejects(
        &with(r#","subject":"a","subject":"b""#),
        Attribute::Subject,
        Rule::Duplicate,
    );
    assert_rejects(
        &with(r#","time":"2018-04-05T17:31:00Z","time":"2018-04-05T17:31:00Z""#),
        Attribute::Time,
        Rule::Duplicate,
    );
    assert_rejects(
        &with(r#","data":1,"data":2"#),
        Attribute::Data,
        Rule::Duplicate,
    );
    assert_rejects(
        &with(r#","data_base64":"Zm9v","data_base64":"Zm9v""#),
        Attribute::DataBase64,
        Rule::Duplicate,
    );
}

#[test]
fn duplicate_member_with_a_null_value_is_still_a_duplicate() {
    assert_rejects(
        &with(r#","subject":null,"subject":"b""#),
        Attribute::Subject,
        Rule::Duplicate,
    );
    assert_rejects(
        &with(r#","subject":"a","subject":null"#),
        Attribute::Subject,
        Rule::Duplicate,
    );
    assert_rejects(
        &with(r#","ext":"a","ext":null"#),
        ext("ext"),
        Rule::Duplicate,
    );
    assert_rejects(
        &with(r#","ext":null,"ext":"b""#),
        ext("ext"),
        Rule::Duplicate,
    );
}

#[test]
fn duplicate_extension_members_are_rejected() {
    assert_rejects(
        &with(r#","ext":"a","ext":"b""#),
        ext("ext"),
        Rule::Duplicate,
    );
    assert_rejects(&with(r#","ext":1,"ext":true"#), ext("ext"), Rule::Duplicate);
}

#[test]
fn duplicate_hidden_by_an_escape_is_rejected() {
    assert_rejects(&with(r#","\u0069d":"2""#), Attribute::Id, Rule::Duplicate);
    assert_rejects(
        &with(r#","ext":"a","e\u0078t":"b""#),
        ext("ext"),
        Rule::Duplicate,
    );
}

// ---------------------------------------------------------- URI and URI-reference

#[test]
fn source_that_is_not_a_uri_reference_is_rejected() {
    for s in [
        "has space",
        "a%zz",
        "a%2",
        "http://exa mple.com",
        "/path\\with\\backslash",
        "<tag>",
        "a\"b",
        "#frag#twice",
    ] {
        let input = format!(
            r#"{{"specversion":"1.0","id":"1","source":{},"type":"t"}}"#,
            serde_json::to_string(s).unwrap()
        );
        assert_rejects(&input, Attribute::Source, Rule::NotUriReference);
    }
}

#[test]
fn source_uri_references_of_every_shape_are_accepted() {
    for s in [
        "https://github.com/cloudevents",
        "mailto:cncf-wg-serverless@lists.cncf.io",
        "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        "cloudevents/spec/pull/123",
        "/sensors/tn-1234567/alerts",
        "1-555-123-4567",
        "//authority/only",
        "?q=1",
        "#frag",
        "a%20b",
        "http://[::1]:8080/x",
    ] {
        let input = format!(r#"{{"specversion":"1.0","id":"1","source":"{s}","type":"t"}}"#);
        parse_ok(&input, |ev| assert_eq!(ev.source(), s));
    }
}

#[test]
fn dataschema_must_be_a_non_empty_absolute_uri() {
    for s in [
        "relative/path",
        "/absolute/path",
        "//host/x",
        "#frag",
        "http://exa mple.com/",
    ] {
        assert_rejects(
            &with(&format!(r#","dataschema":"{s}""#)),
            Attribute::DataSchema,
            Rule::NotAbsoluteUri,
        );
    }
    assert_rejects(
        &with(r#","dataschema":"""#),
        Attribute::DataSchema,
        Rule::Empty,
    );
    parse_ok(
        &with(r#","dataschema":"https://example.com/schema.json""#),
        |ev| {
            assert_eq!(ev.dataschema(), Some("https://example.com/schema.json"));
        },
    );
    parse_ok(&with(r#","dataschema":"urn:example:schema""#), |ev| {
        assert_eq!(ev.dataschema(), Some("urn:example:schema"));
    });
}

// ---------------------------------------------------------------- Timestamp

#[test]
fn time_that_is_not_rfc3339_is_rejected() {
    type Check = fn(TimeError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("2018-04-05 17:31:00Z", |e| {
            matches!(e, TimeError::Syntax { at: 10 })
        }),
        ("2018-13-05T17:31:00Z", |e| e == TimeError::Month),
        ("2018-00-05T17:31:00Z", |e| e == TimeError::Month),
        ("2018-02-30T17:31:00Z", |e| e == TimeError::Day),
        ("2019-02-29T17:31:00Z", |e| e == TimeError::Day),
        ("1900-02-29T17:31:00Z", |e| e == TimeError::Day),
        ("2018-04-31T17:31:00Z", |e| e == TimeError::Day),
        ("2018-04-05T24:00:00Z", |e| e == TimeError::Hour),
        ("2018-04-05T17:60:00Z", |e| e == TimeError::Minute),
        ("2018-04-05T17:31:61Z", |e| e == TimeError::Second),
        ("2018-04-05T17:31:60Z", |e| e == TimeError::LeapSecond),
        ("2016-12-31T23:58:60Z", |e| e == TimeError::LeapSecond),
        ("2016-12-31T23:59:60+01:00", |e| e == TimeError::LeapSecond),
        ("2018-04-05T17:31:00+24:00", |e| e == TimeError::OffsetHour),
        ("2018-04-05T17:31:00+01:60", |e| {
            e == TimeError::OffsetMinute
        }),
        ("2018-04-05T17:31:00", |e| {
            matches!(e, TimeError::Syntax { .. })
        }),
        ("2018-04-05T17:31Z", |e| {
            matches!(e, TimeError::Syntax { .. })
        }),
        ("2018-04-05T17:31:00.Z", |e| {
            matches!(e, TimeError::Syntax { .. })
        }),
        ("2018-04-05T17:31:00+0100", |e| {
            matches!(e, TimeError::Syntax { .. })
        }),
        ("2018-04-05T17:31:00ZZ", |e| {
            matches!(e, TimeError::Syntax { .. })
        }),
        ("2018-4-05T17:31:00Z", |e| {
            matches!(e, TimeError::Syntax { .. })
        }),
        ("2018-04-05", |e| matches!(e, TimeError::Syntax { .. })),
        ("", |e| matches!(e, TimeError::Syntax { .. })),
        ("2018-04-05T17:31:00Z ", |e| {
            matches!(e, TimeError::Syntax { .. })
        }),
    ];
    for (t, ok) in cases {
        let e = parse_err(with(&format!(r#","time":"{t}""#)).as_bytes());
        let v = e.validation().unwrap_or_else(|| panic!("{t}: {e:?}"));
        assert_eq!(v.attribute, Attribute::Time, "{t}");
        match v.rule {
            Rule::InvalidTimestamp(te) => assert!(ok(te), "{t}: unexpected {te:?}"),
            other => panic!("{t}: expected InvalidTimestamp, got {other:?}"),
        }
    }
}

#[test]
fn rfc3339_edge_forms_are_accepted() {
    for (t, canonical) in [
        ("2018-04-05t17:31:00z", "2018-04-05T17:31:00Z"),
        ("2018-04-05T17:31:00+02:00", "2018-04-05T17:31:00+02:00"),
        ("2018-04-05T17:31:00-05:30", "2018-04-05T17:31:00-05:30"),
        ("2018-04-05T17:31:00-00:00", "2018-04-05T17:31:00-00:00"),
        ("2018-04-05T17:31:00+00:00", "2018-04-05T17:31:00+00:00"),
        ("2018-04-05T17:31:00.1Z", "2018-04-05T17:31:00.1Z"),
        (
            "2018-04-05T17:31:00.123456789Z",
            "2018-04-05T17:31:00.123456789Z",
        ),
        (
            "2018-04-05T17:31:00.120+02:00",
            "2018-04-05T17:31:00.120+02:00",
        ),
        ("1990-12-31T23:59:60Z", "1990-12-31T23:59:60Z"),
        ("1990-12-31T15:59:60-08:00", "1990-12-31T15:59:60-08:00"),
        ("2020-02-29T00:00:00Z", "2020-02-29T00:00:00Z"),
        ("2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"),
        ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
        (
            "9999-12-31T23:59:59.999999999Z",
            "9999-12-31T23:59:59.999999999Z",
        ),
    ] {
        parse_ok(&with(&format!(r#","time":"{t}""#)), |ev| {
            let time = ev.time().unwrap_or_else(|| panic!("{t}: no time"));
            assert_eq!(time.to_string(), canonical, "{t}");
            // And it survives the writer.
            assert_eq!(json_of(ev)["time"], canonical, "{t}");
        });
    }
}

#[test]
fn builder_time_must_be_rfc3339() {
    let e = build_err(base().time_str("2018-04-05 17:31:00Z"));
    assert_eq!(e.attribute, Attribute::Time);
    assert!(
        matches!(e.rule, Rule::InvalidTimestamp(TimeError::Syntax { .. })),
        "{e:?}"
    );
    assert_build_rejects(
        base().time_str("2018-13-05T17:31:00Z"),
        Attribute::Time,
        Rule::InvalidTimestamp(TimeError::Month),
    );
    assert_build_rejects(
        base().time_str("2018-04-05T12:00:60Z"),
        Attribute::Time,
        Rule::InvalidTimestamp(TimeError::LeapSecond),
    );
    let ev = base().time_str("1990-12-31T23:59:60Z").build().unwrap();
    assert_eq!(ev.time().unwrap().to_string(), "1990-12-31T23:59:60Z");
}

// ---------------------------------------------------------------- Integer

#[test]
fn integer_extensions_must_fit_in_32_bits() {
    for n in [
        "2147483648",
        "-2147483649",
        "4294967296",
        "99999999999999999999999999999",
        "-99999999999999999999999999999",
    ] {
        assert_rejects(
            &with(&format!(r#","count":{n}"#)),
            ext("count"),
            Rule::IntegerOutOfRange,
        );
    }
    for (n, v) in [
        ("2147483647", i32::MAX),
        ("-2147483648", i32::MIN),
        ("0", 0),
        ("-5", -5),
        ("5", 5),
    ] {
        parse_ok(&with(&format!(r#","count":{n}"#)), |ev| {
            assert_eq!(ev.extension("count"), Some(ExtValue::Integer(v)), "{n}");
            assert_eq!(json_of(ev)["count"], serde_json::json!(v));
        });
    }
}

#[test]
fn integer_extensions_must_not_have_fraction_or_exponent() {
    for n in ["1.5", "1.0", "1e3", "1E3", "-2.5e-3", "0.0", "1e0"] {
        assert_rejects(
            &with(&format!(r#","count":{n}"#)),
            ext("count"),
            Rule::NotInteger,
        );
    }
}

#[test]
fn malformed_numbers_are_json_errors() {
    for n in ["01", "+1", ".5", "1.", "1e", "-"] {
        assert_json_error(
            with(&format!(r#","count":{n}"#)).as_bytes(),
            JsonErrorKind::InvalidNumber,
        );
    }
}

#[test]
fn object_or_array_extension_is_wrong_type() {
    assert_rejects(&with(r#","ext":{"a":1}"#), ext("ext"), Rule::WrongType);
    assert_rejects(&with(r#","ext":[1,2]"#), ext("ext"), Rule::WrongType);
    assert_rejects(&with(r#","ext":[]"#), ext("ext"), Rule::WrongType);
}

#[test]
fn boolean_and_string_extensions_keep_their_type() {
    parse_ok(&with(r#","flag":true,"off":false,"name":"v""#), |ev| {
        assert_eq!(ev.extension("flag"), Some(ExtValue::Boolean(true)));
        assert_eq!(ev.extension("off"), Some(ExtValue::Boolean(false)));
        assert_eq!(ev.extension("name"), Some(ExtValue::String("v")));
        let j = json_of(ev);
        assert_eq!(j["flag"], Value::Bool(true));
        assert_eq!(j["off"], Value::Bool(false));
        assert_eq!(j["name"], "v");
    });
}

// ------------------------------------------------------- String characters

/// `a{piece}b` as the id, the type, the source (after `/s`), the subject
/// and an extension: each rejected with `InvalidCharacter`.
#[track_caller]
fn assert_string_attributes_reject(piece: &str) {
    let id = format!(r#"{{"specversion":"1.0","id":"a{piece}b","source":"/s","type":"t"}}"#);
    assert_rejects(&id, Attribute::Id, Rule::InvalidCharacter);
    let ty = format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"a{piece}b"}}"#);
    assert_rejects(&ty, Attribute::Type, Rule::InvalidCharacter);
    let src = format!(r#"{{"specversion":"1.0","id":"1","source":"/s{piece}","type":"t"}}"#);
    assert_rejects(&src, Attribute::Source, Rule::InvalidCharacter);
    assert_rejects(
        &with(&format!(r#","subject":"a{piece}b""#)),
        Attribute::Subject,
        Rule::InvalidCharacter,
    );
    assert_rejects(
        &with(&format!(r#","ext":"a{piece}b""#)),
        ext("ext"),
        Rule::InvalidCharacter,
    );
}

#[test]
fn control_characters_in_string_attributes_are_rejected() {
    for esc in [
        r"\u0000", r"\u0001", r"\u001f", r"\n", r"\t", r"\r", r"\u007f", r"\u0080", r"\u0085",
        r"\u009f",
    ] {
        assert_string_attributes_reject(esc);
    }
}

#[test]
fn raw_del_and_c1_controls_in_string_attributes_are_rejected() {
    // Given as they are, not escaped: DEL is ASCII (the parser skips the
    // character check for inputs with no byte at or above 0x7f, so one DEL
    // anywhere must turn the check back on), U+0085 is UTF-8 `c2 85`.
    for raw in ["\u{7f}", "\u{80}", "\u{85}", "\u{9f}"] {
        assert_string_attributes_reject(raw);
    }
    // An escaped control character in one string of an otherwise plain
    // ASCII input, after other strings and before others.
    assert_rejects(
        &with(r#","a":"plain","ext":"x\u0007","z":"plain""#),
        ext("ext"),
        Rule::InvalidCharacter,
    );
    // Plain printable ASCII everywhere: accepted.
    parse_ok(&with(r#","subject":" !~","ext":"a b""#), |ev| {
        assert_eq!(ev.subject(), Some(" !~"));
    });
}

#[test]
fn unicode_noncharacters_in_string_attributes_are_rejected() {
    for esc in [
        r"\ufdd0",
        r"\ufdef",
        r"\ufffe",
        r"\uffff",
        r"\ud83f\udffe",
        r"\ud83f\udfff",
        r"\udbff\udfff",
    ] {
        assert_rejects(
            &with(&format!(r#","subject":"x{esc}""#)),
            Attribute::Subject,
            Rule::InvalidCharacter,
        );
        assert_rejects(
            &with(&format!(r#","ext":"x{esc}""#)),
            ext("ext"),
            Rule::InvalidCharacter,
        );
    }
    // The same characters given raw (UTF-8) rather than escaped.
    assert_rejects(
        &with(",\"subject\":\"x\u{fdd0}\""),
        Attribute::Subject,
        Rule::InvalidCharacter,
    );
    assert_rejects(
        &with(",\"subject\":\"x\u{10fffe}\""),
        Attribute::Subject,
        Rule::InvalidCharacter,
    );
}

#[test]
fn allowed_unicode_in_strings_is_kept() {
    parse_ok(
        &with(r#","subject":"\u00a0\u00e9\u20ac\ufffd\ud83d\ude00","ext":"Euro € 😀""#),
        |ev| {
            assert_eq!(ev.subject(), Some("\u{a0}é€\u{fffd}😀"));
            assert_eq!(ev.extension("ext"), Some(ExtValue::String("Euro € 😀")));
        },
    );
}

#[test]
fn unpaired_surrogate_escape_is_rejected() {
    for s in [
        r"\uDEAD",
        r"\uD800",
        r"x\uD800y",
        r"\uDEAD\uD800",
        r"\uD800\u0041",
        r"\uD800\uD800",
    ] {
        assert_json_error(
            with(&format!(r#","subject":"{s}""#)).as_bytes(),
            JsonErrorKind::LoneSurrogate,
        );
        assert_json_error(
            with(&format!(r#","ext":"{s}""#)).as_bytes(),
            JsonErrorKind::LoneSurrogate,
        );
    }
    let id = r#"{"specversion":"1.0","id":"\uDEAD","source":"/s","type":"t"}"#;
    assert_json_error(id.as_bytes(), JsonErrorKind::LoneSurrogate);
}

#[test]
fn paired_surrogate_escape_is_accepted() {
    parse_ok(
        &with(r#","subject":"\uD800\uDEAD","ext":"\ud83d\ude00""#),
        |ev| {
            assert_eq!(ev.subject(), Some("\u{102AD}"));
            assert_eq!(ev.extension("ext"), Some(ExtValue::String("😀")));
        },
    );
}

#[test]
fn raw_control_bytes_and_bad_utf8_in_json_strings_are_json_errors() {
    assert_json_error(
        with(",\"subject\":\"a\u{1}b\"").as_bytes(),
        JsonErrorKind::ControlCharacter,
    );
    let mut bad = with(r#","subject":"ab""#).into_bytes();
    let pos = bad.windows(2).position(|w| w == b"ab").unwrap();
    bad[pos] = 0xff;
    assert_json_error(&bad, JsonErrorKind::InvalidUtf8);
}

// --------------------------------------------------- data and data_base64

#[test]
fn data_and_data_base64_together_are_rejected() {
    assert_rejects(
        &with(r#","data":{"a":1},"data_base64":"Zm9v""#),
        Attribute::Data,
        Rule::DataConflict,
    );
    assert_rejects(
        &with(r#","data_base64":"Zm9v","data":"x""#),
        Attribute::Data,
        Rule::DataConflict,
    );
}

#[test]
fn bad_base64_in_data_base64_is_rejected() {
    for (b, err) in [
        ("Zm9", Base64Error::Length),
        ("Zm9vY", Base64Error::Length),
        ("Zm9!", Base64Error::InvalidByte { at: 3 }),
        ("Zm 9v", Base64Error::Length),
        ("Zm9vYg=a", Base64Error::Padding),
        ("Z===", Base64Error::Padding),
        ("Zm9vYh==", Base64Error::TrailingBits),
        ("Zm9vYmF=", Base64Error::TrailingBits),
        ("Zm9v_-==", Base64Error::InvalidByte { at: 4 }),
    ] {
        let e = parse_err(with(&format!(r#","data_base64":"{b}""#)).as_bytes());
        let v = e.validation().unwrap_or_else(|| panic!("{b}: {e:?}"));
        assert_eq!(v.attribute, Attribute::DataBase64, "{b}");
        match v.rule {
            Rule::InvalidBase64(got) => {
                if b != "Zm 9v" {
                    assert_eq!(got, err, "{b}");
                }
            }
            other => panic!("{b}: expected InvalidBase64, got {other:?}"),
        }
    }
    for ok in ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYmFy", "+/+/"] {
        parse_ok(&with(&format!(r#","data_base64":"{ok}""#)), |ev| {
            assert!(
                matches!(ev.data(), Some(Data::Base64(s)) if *s == ok),
                "{ok}"
            );
        });
    }
}

#[test]
fn builder_rejects_bad_base64_and_bad_json_data() {
    assert_build_rejects(
        base().data(Data::Base64("abc")),
        Attribute::DataBase64,
        Rule::InvalidBase64(Base64Error::Length),
    );
    let e = build_err(base().data_json("{\"a\":"));
    assert_eq!(e.attribute, Attribute::Data);
    assert!(
        matches!(e.rule, Rule::InvalidJson(j) if j.kind == JsonErrorKind::UnexpectedEnd),
        "{e:?}"
    );
    let e = build_err(base().data_json("{} {}"));
    assert!(
        matches!(e.rule, Rule::InvalidJson(j) if j.kind == JsonErrorKind::TrailingCharacters),
        "{e:?}"
    );
}

// ------------------------------------------------------- datacontenttype

#[test]
fn datacontenttype_must_be_a_media_type() {
    for ct in [
        "json",
        "application/",
        "/json",
        "application",
        "app lication/json",
        "text/plain; charset",
        "application/json garbage",
        "é/json",
        "text/plain;;",
    ] {
        assert_rejects(
            &with(&format!(r#","datacontenttype":"{ct}""#)),
            Attribute::DataContentType,
            Rule::NotMediaType,
        );
    }
    assert_rejects(
        &with(r#","datacontenttype":"""#),
        Attribute::DataContentType,
        Rule::Empty,
    );
    for ct in [
        "application/json",
        "text/plain; charset=utf-8",
        "text/plain;charset=UTF-8",
        "application/vnd.apache.thrift.binary",
        "multipart/form-data; boundary=\\\"a b\\\"",
        "application/cloudevents+json",
    ] {
        parse_ok(&with(&format!(r#","datacontenttype":"{ct}""#)), |ev| {
            assert_eq!(
                ev.datacontenttype(),
                Some(ct.replace("\\\"", "\"").as_str())
            );
        });
    }
}

// ----------------------------------------------------- null means unset

#[test]
fn null_optional_attributes_are_unset() {
    let input = with(
        r#","datacontenttype":null,"dataschema":null,"subject":null,"time":null,"ext":null,"data_base64":null"#,
    );
    parse_ok(&input, |ev| {
        assert_eq!(ev.datacontenttype(), None);
        assert_eq!(ev.dataschema(), None);
        assert_eq!(ev.subject(), None);
        assert_eq!(ev.time(), None);
        assert_eq!(ev.extension("ext"), None);
        assert!(ev.extensions().is_empty());
        assert!(ev.data().is_none());
        // Unset attributes are not written.
        let j = json_of(ev);
        let mut keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["id", "source", "specversion", "type"]);
        let out = String::from_utf8(to_vec(ev).unwrap()).unwrap();
        assert!(!out.contains("null"), "{out}");
    });
}

#[test]
fn explicit_null_data_is_a_payload_not_an_absence() {
    // JSON format §3.1.1: `"data": null` is an explicit null payload.
    parse_ok(&with(r#","data":null"#), |ev| {
        assert!(
            matches!(ev.data(), Some(Data::Json("null"))),
            "{:?}",
            ev.data()
        );
        let out = String::from_utf8(to_vec(ev).unwrap()).unwrap();
        assert!(out.ends_with(r#","data":null}"#), "{out}");
    });
    // With a non-JSON content type, data must be a string (§3.1.2 MAY fail):
    // a null is not one, and is not silently dropped either.
    assert_rejects(
        &with(r#","datacontenttype":"text/plain","data":null"#),
        Attribute::Data,
        Rule::DataNotString,
    );
}

#[test]
fn null_data_beside_data_base64_is_a_conflict() {
    // §3.1.1: the members are mutually exclusive and a null `data` is present.
    assert_rejects(
        &with(r#","data":null,"data_base64":"Zm9v""#),
        Attribute::Data,
        Rule::DataConflict,
    );
    // A null `data_base64` is an unset member (§2.2: null means unset).
    parse_ok(&with(r#","data_base64":null,"data":{"a":1}"#), |ev| {
        assert!(matches!(ev.data(), Some(Data::Json(_))), "{:?}", ev.data());
    });
}

// ----------------------------------------------------- extension count

#[test]
fn more_than_max_extensions_is_rejected() {
    let names: Vec<String> = (0..=MAX_EXTENSIONS).map(|i| format!("ext{i}")).collect();
    let members = |n: usize| {
        names
            .iter()
            .take(n)
            .map(|n| format!(r#","{n}":"v""#))
            .collect::<String>()
    };
    parse_ok(&with(&members(MAX_EXTENSIONS)), |ev| {
        assert_eq!(ev.extensions().len(), MAX_EXTENSIONS)
    });
    let last = &names[MAX_EXTENSIONS];
    assert_rejects(
        &with(&members(MAX_EXTENSIONS + 1)),
        ext(last),
        Rule::TooManyExtensions,
    );
    // `null` members are unset (JSON format 2.2), not extensions: any
    // number of them beside the most extensions allowed (17 were refused).
    let nulls: String = (0..=2 * MAX_EXTENSIONS)
        .map(|i| format!(r#","null{i}":null"#))
        .collect();
    parse_ok(&with(&(members(MAX_EXTENSIONS) + &nulls)), |ev| {
        assert_eq!(ev.extensions().len(), MAX_EXTENSIONS)
    });

    // Builder.
    let mut b = base();
    for n in names.iter().take(MAX_EXTENSIONS) {
        b = b.extension_str(n, "v");
    }
    assert_eq!(
        b.clone().build().unwrap().extensions().len(),
        MAX_EXTENSIONS
    );
    assert_build_rejects(
        b.extension_str(last, "v"),
        ext(last),
        Rule::TooManyExtensions,
    );

    // HTTP binary mode.
    let hn: Vec<String> = names.iter().map(|n| format!("ce-{n}")).collect();
    let extra: Vec<(&str, &str)> = hn.iter().map(|n| (n.as_str(), "v")).collect();
    let h = http_headers(&[], &extra);
    assert_validation(
        &http_err(&h, b""),
        &ext(last),
        Rule::TooManyExtensions,
        "http",
    );
}

// ------------------------------------------------------------ builder path

#[test]
fn builder_requires_id_source_and_type() {
    assert_build_rejects(
        Event::builder().source("/s").ty("t"),
        Attribute::Id,
        Rule::Missing,
    );
    assert_build_rejects(
        Event::builder().id("1").ty("t"),
        Attribute::Source,
        Rule::Missing,
    );
    assert_build_rejects(
        Event::builder().id("1").source("/s"),
        Attribute::Type,
        Rule::Missing,
    );
}

#[test]
fn builder_rejects_empty_strings() {
    assert_build_rejects(base().id(""), Attribute::Id, Rule::Empty);
    assert_build_rejects(base().source(""), Attribute::Source, Rule::Empty);
    assert_build_rejects(base().ty(""), Attribute::Type, Rule::Empty);
    assert_build_rejects(base().subject(""), Attribute::Subject, Rule::Empty);
    assert_build_rejects(base().dataschema(""), Attribute::DataSchema, Rule::Empty);
    assert_build_rejects(
        base().datacontenttype(""),
        Attribute::DataContentType,
        Rule::Empty,
    );
}

#[test]
fn builder_checks_uris_media_types_and_characters() {
    assert_build_rejects(
        base().source("has space"),
        Attribute::Source,
        Rule::NotUriReference,
    );
    assert_build_rejects(
        base().source("a%zz"),
        Attribute::Source,
        Rule::NotUriReference,
    );
    assert_build_rejects(
        base().dataschema("relative/x"),
        Attribute::DataSchema,
        Rule::NotAbsoluteUri,
    );
    assert_build_rejects(
        base().datacontenttype("nope"),
        Attribute::DataContentType,
        Rule::NotMediaType,
    );
    assert_build_rejects(base().id("a\u{1}"), Attribute::Id, Rule::InvalidCharacter);
    assert_build_rejects(
        base().ty("a\u{7f}"),
        Attribute::Type,
        Rule::InvalidCharacter,
    );
    assert_build_rejects(
        base().subject("\u{fffe}"),
        Attribute::Subject,
        Rule::InvalidCharacter,
    );
    assert_build_rejects(
        base().extension_str("ext", "a\nb"),
        ext("ext"),
        Rule::InvalidCharacter,
    );
    assert_build_rejects(
        base().extension("ext", ExtValue::Uri("relative")),
        ext("ext"),
        Rule::NotAbsoluteUri,
    );
    assert_build_rejects(
        base().extension("ext", ExtValue::UriRef("has space")),
        ext("ext"),
        Rule::NotUriReference,
    );
    // Valid values of every extension type are accepted.
    let ts = Timestamp::parse("2018-04-05T17:31:00Z").unwrap();
    let ev = base()
        .extension("s", ExtValue::String("x"))
        .extension("i", ExtValue::Integer(-1))
        .extension("b", ExtValue::Boolean(true))
        .extension("u", ExtValue::Uri("https://example.com"))
        .extension("r", ExtValue::UriRef("/x"))
        .extension("t", ExtValue::Timestamp(ts))
        .extension("bin", ExtValue::Binary(b"\x00\xff"))
        .build()
        .unwrap();
    assert_eq!(ev.extensions().len(), 7);
}

// -------------------------------------------------------------- JSON writer

#[test]
fn writer_uses_data_base64_for_binary_data() {
    let ev = base()
        .data_binary("application/octet-stream", b"foob")
        .build()
        .unwrap();
    let j = json_of(&ev);
    assert_eq!(j["data_base64"], "Zm9vYg==");
    assert!(j.get("data").is_none());
    assert_eq!(j["datacontenttype"], "application/octet-stream");

    // Even when the content type is JSON, bytes are bytes.
    let ev = base()
        .data_binary("application/json", b"{}")
        .build()
        .unwrap();
    let j = json_of(&ev);
    assert_eq!(j["data_base64"], "e30=");
    assert!(j.get("data").is_none());

    // Base64 kept from a parsed event is written back as is.
    let ev = base().data(Data::Base64("Zm9vYg==")).build().unwrap();
    assert_eq!(json_of(&ev)["data_base64"], "Zm9vYg==");
}

#[test]
fn writer_omits_datacontenttype_when_unset() {
    let ev = base().data(Data::Binary(b"\x01\x02")).build().unwrap();
    let j = json_of(&ev);
    assert!(j.get("datacontenttype").is_none(), "{j}");
    assert_eq!(j["data_base64"], "AQI=");
    let ev = base().data(Data::Json("[1,2]")).build().unwrap();
    let j = json_of(&ev);
    assert!(j.get("datacontenttype").is_none(), "{j}");
    assert_eq!(j["data"], serde_json::json!([1, 2]));
}

#[test]
fn writer_stores_json_data_as_a_json_value_not_a_string() {
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "text/json",
        "application/vnd.foo+json",
        "APPLICATION/JSON",
    ] {
        let ev = base()
            .datacontenttype(ct)
            .data(Data::Json(r#"{ "a" : [1, true, null] }"#))
            .build()
            .unwrap();
        let j = json_of(&ev);
        assert_eq!(j["data"], serde_json::json!({"a": [1, true, null]}), "{ct}");
    }
    // A JSON string value stays a string value, not a doubly-encoded document.
    let ev = base().data_json(r#""I'm just a string""#).build().unwrap();
    assert_eq!(json_of(&ev)["data"], "I'm just a string");

    #[derive(serde::Serialize)]
    struct P {
        a: u32,
        b: &'static str,
    }
    let p = P { a: 1, b: "x" };
    let ev = base().data_serialize(&p).build().unwrap();
    let j = json_of(&ev);
    assert_eq!(j["data"], serde_json::json!({"a": 1, "b": "x"}));
    assert_eq!(j["datacontenttype"], "application/json");
}

#[test]
fn writer_stores_text_data_with_non_json_type_as_a_string() {
    let ev = base()
        .data_text("text/xml", r#"<much wow="xml"/>"#)
        .build()
        .unwrap();
    let out = to_vec(&ev).unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.contains(r#""data":"<much wow=\"xml\"/>""#), "{s}");
    assert_eq!(json_of(&ev)["data"], r#"<much wow="xml"/>"#);
    let ev = base()
        .data_text("text/plain", "{\"not\": \"json\"}")
        .build()
        .unwrap();
    assert_eq!(json_of(&ev)["data"], "{\"not\": \"json\"}");
}

#[test]
fn writer_never_emits_non_string_data_for_a_non_json_type() {
    // json-format.md §3.1.1: with a non-JSON datacontenttype the `data` member
    // MUST hold a string. Raw JSON data declared as text/plain must either be
    // refused or written as a string.
    match base()
        .datacontenttype("text/plain")
        .data(Data::Json(r#"{"a":1}"#))
        .build()
    {
        Err(e) => assert_eq!(e.attribute, Attribute::Data),
        Ok(ev) => {
            let j = json_of(&ev);
            assert!(
                j["data"].is_string(),
                "data for text/plain written as {}",
                j["data"]
            );
        }
    }
}

#[test]
fn writer_emits_every_set_attribute_with_its_json_type() {
    let ts = Timestamp::parse("2018-04-05T17:31:00Z").unwrap();
    let ev = base()
        .subject("sub")
        .dataschema("https://example.com/s")
        .time(ts)
        .extension("str", ExtValue::String("x"))
        .extension("int", ExtValue::Integer(42))
        .extension("bool", ExtValue::Boolean(false))
        .extension("uri", ExtValue::Uri("https://example.com"))
        .extension("uriref", ExtValue::UriRef("/x"))
        .extension("ts", ExtValue::Timestamp(ts))
        .extension("bin", ExtValue::Binary(b"foob"))
        .data_text("text/plain", "hi")
        .build()
        .unwrap();
    let j = json_of(&ev);
    assert_eq!(
        j,
        serde_json::json!({
            "specversion": "1.0", "id": "1", "source": "/s", "type": "t",
            "datacontenttype": "text/plain", "dataschema": "https://example.com/s",
            "subject": "sub", "time": "2018-04-05T17:31:00Z",
            "str": "x", "int": 42, "bool": false, "uri": "https://example.com",
            "uriref": "/x", "ts": "2018-04-05T17:31:00Z", "bin": "Zm9vYg==",
            "data": "hi"
        })
    );
}

// ----------------------------------------------- HTTP binary: header values

#[test]
fn http_header_values_are_percent_encoded() {
    for (subject, wire) in [
        ("Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"),
        (r#"say "hi" 100%"#, "say%20%22hi%22%20100%25"),
        ("é", "%C3%A9"),
        ("\u{a0}", "%C2%A0"),
        ("\u{ff}", "%C3%BF"),
        ("plain", "plain"),
        (
            "!#$&'()*+,-./:;<=>?@[\\]^_`{|}~",
            "!#$&'()*+,-./:;<=>?@[\\]^_`{|}~",
        ),
    ] {
        let ev = base()
            .subject(subject)
            .extension_str("ext", subject)
            .build()
            .unwrap();
        let hs = header_strings(&ev, Binding::Http);
        assert_eq!(header(&hs, "ce-subject"), Some(wire), "{subject}");
        assert_eq!(header(&hs, "ce-ext"), Some(wire), "{subject}");
        // Every header value is printable ASCII.
        for (_, v) in &hs {
            assert!(v.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{v:?}");
        }
        // And decodes back to the original.
        let h: Vec<(&str, &[u8])> = hs.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        http_binary(&h, b"", |r| {
            let back = r.unwrap();
            assert_eq!(back.subject(), Some(subject));
            assert!(back.same_as(&ev, false));
        });
    }
}

#[test]
fn http_encoding_treats_control_characters_and_non_ascii_as_needing_percent() {
    for b in (0x00..=0x20).chain(0x7f..=0xff).chain([b'"', b'%']) {
        assert!(binary::needs_percent(b), "{b:#04x}");
    }
    for b in (0x21..=0x7e).filter(|&b| b != b'"' && b != b'%') {
        assert!(!binary::needs_percent(b), "{b:#04x}");
    }
}

#[test]
fn http_header_values_of_other_types_use_their_canonical_strings() {
    let ts = Timestamp::parse("2018-04-05T17:31:00.5+02:00").unwrap();
    let ev = base()
        .time(ts)
        .extension("int", ExtValue::Integer(-7))
        .extension("bool", ExtValue::Boolean(true))
        .extension("bin", ExtValue::Binary(b"foob"))
        .extension(
            "uri",
            ExtValue::Uri("https://example.com/a b".split(' ').next().unwrap()),
        )
        .build()
        .unwrap();
    let hs = header_strings(&ev, Binding::Http);
    assert_eq!(header(&hs, "ce-time"), Some("2018-04-05T17:31:00.5+02:00"));
    assert_eq!(header(&hs, "ce-int"), Some("-7"));
    assert_eq!(header(&hs, "ce-bool"), Some("true"));
    assert_eq!(header(&hs, "ce-bin"), Some("Zm9vYg=="));
    assert_eq!(header(&hs, "ce-uri"), Some("https://example.com/a"));
    assert_eq!(header(&hs, "ce-specversion"), Some("1.0"));
}

#[test]
fn http_percent_decoding_accepts_lower_case_and_unneeded_encoding() {
    assert_eq!(
        http_subject("Euro%20%E2%82%AC%20%F0%9F%98%80").unwrap(),
        "Euro € 😀"
    );
    assert_eq!(
        http_subject("Euro%20%e2%82%ac%20%f0%9f%98%80").unwrap(),
        "Euro € 😀"
    );
    assert_eq!(http_subject("%41%42C").unwrap(), "ABC");
    assert_eq!(
        http_subject("%2541").unwrap(),
        "%41",
        "exactly one round of decoding"
    );
    assert_eq!(http_subject("a+b").unwrap(), "a+b", "plus is not a space");
}

#[test]
fn http_percent_decoding_rejects_invalid_utf8_and_bad_escapes() {
    for raw in [
        "%C0%A0",
        "%FF",
        "%E2%82",
        "%ED%A0%80",
        "%F8%88%80%80%80",
        "%4",
        "%",
        "%G0",
        "%zz",
        "a%2",
    ] {
        let e = http_subject(raw).expect_err(raw);
        assert_validation(&e, &Attribute::Subject, Rule::InvalidEncoding, raw);
    }
    // Raw bytes that are not UTF-8.
    let h: Vec<(&str, &[u8])> = CE_BASE
        .iter()
        .map(|&(n, v)| (n, v.as_bytes()))
        .chain([("ce-subject", &b"\xc0\xa0"[..])])
        .collect();
    assert_validation(
        &http_err(&h, b""),
        &Attribute::Subject,
        Rule::InvalidEncoding,
        "raw bytes",
    );
}

#[test]
fn http_percent_decoded_control_characters_are_still_invalid_strings() {
    for raw in ["a%0Ab", "%00", "%7F", "%C2%85", "%EF%B7%90"] {
        let e = http_subject(raw).expect_err(raw);
        assert_validation(&e, &Attribute::Subject, Rule::InvalidCharacter, raw);
    }
}

#[test]
fn http_quoted_header_values_are_unquoted_before_percent_decoding() {
    assert_eq!(http_subject(r#""quoted value""#).unwrap(), "quoted value");
    assert_eq!(http_subject(r#""say \"hi\"""#).unwrap(), r#"say "hi""#);
    assert_eq!(http_subject(r#""back\\slash""#).unwrap(), r"back\slash");
    assert_eq!(http_subject(r#""100%25""#).unwrap(), "100%");
    assert_eq!(http_subject(r#""%22""#).unwrap(), "\"");
    assert_eq!(
        http_subject(r#""\%41""#).unwrap(),
        "A",
        "unquote, then percent-decode"
    );
    assert_eq!(http_subject(r#""Euro %E2%82%AC""#).unwrap(), "Euro €");
    for raw in [r#""unterminated"#, r#""a"b""#, r#""trailing\"#] {
        let e = http_subject(raw).expect_err(raw);
        assert_validation(&e, &Attribute::Subject, Rule::InvalidEncoding, raw);
    }
    // Quoting works for core attributes too.
    let h = http_headers(&["ce-id"], &[("ce-id", r#""abc def""#)]);
    http_binary(&h, b"", |r| assert_eq!(r.unwrap().id(), "abc def"));
}

#[test]
fn http_ce_datacontenttype_header_is_not_allowed_in_binary_mode() {
    for name in ["ce-datacontenttype", "CE-DataContentType"] {
        let h = http_headers(&[], &[(name, "application/json")]);
        assert_validation(
            &http_err(&h, b"{}"),
            &Attribute::DataContentType,
            Rule::NotAllowedInBinaryMode,
            name,
        );
        let h = http_headers(
            &[],
            &[
                ("Content-Type", "application/json"),
                (name, "application/json"),
            ],
        );
        assert_validation(
            &http_err(&h, b"{}"),
            &Attribute::DataContentType,
            Rule::NotAllowedInBinaryMode,
            name,
        );
    }
    // And the encoder never produces one.
    let ev = base().data_json("{}").build().unwrap();
    for (n, _) in header_strings(&ev, Binding::Http) {
        assert_ne!(n.to_ascii_lowercase(), "ce-datacontenttype");
    }
}

#[test]
fn http_header_names_are_case_insensitive() {
    let h: Vec<(&str, &[u8])> = vec![
        ("CE-SPECVERSION", b"1.0"),
        ("CE-ID", b"abc"),
        ("Ce-Source", b"/s"),
        ("cE-tYpE", b"t"),
        ("CE-Subject", b"sub"),
        ("CE-MyExt", b"v"),
        ("CONTENT-TYPE", b"text/plain"),
    ];
    http_binary(&h, b"hello", |r| {
        let ev = r.unwrap();
        assert_eq!(ev.id(), "abc");
        assert_eq!(ev.source(), "/s");
        assert_eq!(ev.ty(), "t");
        assert_eq!(ev.subject(), Some("sub"));
        assert_eq!(ev.extension("myext"), Some(ExtValue::String("v")));
        assert_eq!(ev.datacontenttype(), Some("text/plain"));
        assert!(matches!(ev.data(), Some(Data::Text("hello"))));
    });
    // Names that differ only in case are the same header: a duplicate.
    let h = http_headers(&[], &[("CE-ID", "2")]);
    assert_validation(
        &http_err(&h, b""),
        &Attribute::Id,
        Rule::Duplicate,
        "ce-id twice",
    );
}

#[test]
fn http_binary_mode_checks_attribute_rules() {
    let h = http_headers(&["ce-specversion"], &[("ce-specversion", "0.3")]);
    assert_validation(
        &http_err(&h, b""),
        &Attribute::SpecVersion,
        Rule::UnsupportedSpecVersion,
        "0.3",
    );
    let h = http_headers(&["ce-specversion"], &[]);
    assert_validation(
        &http_err(&h, b""),
        &Attribute::SpecVersion,
        Rule::Missing,
        "no specversion",
    );
    let h = http_headers(&["ce-id"], &[]);
    assert_validation(&http_err(&h, b""), &Attribute::Id, Rule::Missing, "no id");
    let h = http_headers(&["ce-source"], &[("ce-source", "has%20space")]);
    assert_validation(
        &http_err(&h, b""),
        &Attribute::Source,
        Rule::NotUriReference,
        "source",
    );
    let h = http_headers(&[], &[("ce-time", "2018-04-05%2017:31:00Z")]);
    let e = http_err(&h, b"");
    assert!(
        matches!(
            e.validation().map(|v| (&v.attribute, v.rule)),
            Some((Attribute::Time, Rule::InvalidTimestamp(_)))
        ),
        "{e:?}"
    );
    let h = http_headers(&[], &[("ce-foo_bar", "x")]);
    assert_validation(
        &http_err(&h, b""),
        &ext("foo_bar"),
        Rule::InvalidName,
        "name",
    );
    let h = http_headers(&[], &[("ce-", "x")]);
    assert_validation(
        &http_err(&h, b""),
        &ext(""),
        Rule::InvalidName,
        "empty name",
    );
    let h = http_headers(
        &[],
        &[
            ("Content-Type", "text/plain"),
            ("content-type", "text/plain"),
        ],
    );
    assert_validation(
        &http_err(&h, b"x"),
        &Attribute::DataContentType,
        Rule::Duplicate,
        "two content types",
    );
    let h = http_headers(&[], &[("Content-Type", "application/json")]);
    let e = http_err(&h, b"{not json");
    assert!(
        matches!(
            e.validation().map(|v| (&v.attribute, v.rule)),
            Some((Attribute::Data, Rule::InvalidJson(_)))
        ),
        "{e:?}"
    );
    let h = http_headers(&[], &[("Content-Type", "not a media type")]);
    assert_validation(
        &http_err(&h, b"x"),
        &Attribute::DataContentType,
        Rule::NotMediaType,
        "content type",
    );
}

#[test]
fn http_content_type_maps_to_datacontenttype_both_ways() {
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/vnd.apache.thrift.binary",
    ] {
        let h = http_headers(&[], &[("Content-Type", ct)]);
        let body: &[u8] = if ct.contains("json") {
            b"{\"a\":1}"
        } else {
            b"payload"
        };
        http_binary(&h, body, |r| {
            let ev = r.unwrap();
            assert_eq!(ev.datacontenttype(), Some(ct));
            assert_eq!(binary::content_type(ev), Some(ct));
            assert_eq!(Binding::Http.content_type_header(), "Content-Type");
            // Round trip through the encoder.
            let hs = header_strings(ev, Binding::Http);
            let mut h2: Vec<(&str, &[u8])> =
                hs.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
            h2.push(("Content-Type", ct.as_bytes()));
            let mut out = Vec::new();
            binary::write_body(ev, &mut out).unwrap();
            http_binary(&h2, &out, |r2| assert!(r2.unwrap().same_as(ev, false)));
        });
    }
}

#[test]
fn binary_mode_has_no_content_type_for_untyped_binary_data() {
    let ev = base().data(Data::Binary(b"\x00\x01")).build().unwrap();
    assert_eq!(binary::content_type(&ev), None);
    let ev = base().build().unwrap();
    assert_eq!(binary::content_type(&ev), None);
    // JSON-format data without a type has the implied application/json.
    let ev = base().data(Data::Json("{}")).build().unwrap();
    assert_eq!(binary::content_type(&ev), Some("application/json"));
    // Without a Content-Type header the body is bytes.
    let h = http_headers(&[], &[]);
    http_binary(&h, b"{}", |r| {
        let ev = r.unwrap();
        assert_eq!(ev.datacontenttype(), None);
        assert!(
            matches!(ev.data(), Some(Data::Binary(b"{}"))),
            "{:?}",
            ev.data()
        );
    });
    // An empty body is no data.
    http_binary(&h, b"", |r| assert!(r.unwrap().data().is_none()));
}

// -------------------------------------------------------------------- Kafka

fn kafka_base<'a>(extra: &[(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a [u8])> {
    let mut h: Vec<(&str, &[u8])> = vec![
        ("ce_specversion", b"1.0"),
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
    ];
    h.extend_from_slice(extra);
    h
}

#[test]
fn kafka_headers_use_ce_underscore_names_and_raw_utf8_values() {
    let ev = base()
        .subject("Euro € 😀 100%")
        .extension_str("ext", "a \"b\"")
        .build()
        .unwrap();
    let hs = header_strings(&ev, Binding::Kafka);
    assert!(hs.iter().all(|(n, _)| n.starts_with("ce_")), "{hs:?}");
    assert_eq!(header(&hs, "ce_specversion"), Some("1.0"));
    assert_eq!(header(&hs, "ce_subject"), Some("Euro € 😀 100%"));
    assert_eq!(header(&hs, "ce_ext"), Some("a \"b\""));
    assert_eq!(Binding::Kafka.content_type_header(), "content-type");
    // Parsing takes values as they are: no percent-decoding, no unquoting.
    let h = kafka_base(&[
        ("ce_subject", "Euro%20€ 😀".as_bytes()),
        ("ce_ext", b"\"q\""),
    ]);
    let mut buf = [0u8; 256];
    let rec = kafka::parse(h, None, None, &mut Scratch::new(&mut buf)).unwrap();
    assert_eq!(rec.event.subject(), Some("Euro%20€ 😀"));
    assert_eq!(rec.event.extension("ext"), Some(ExtValue::String("\"q\"")));
}

#[test]
fn kafka_round_trip_through_headers_and_value() {
    let ev = base()
        .subject("Euro € 😀")
        .time_str("2018-04-05T03:56:24Z")
        .extension("n", ExtValue::Integer(5))
        .data_json(r#"{"message":"Hello World!"}"#)
        .build()
        .unwrap();
    let hs = header_strings(&ev, Binding::Kafka);
    let mut h: Vec<(&str, &[u8])> = hs.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    let ct = binary::content_type(&ev).unwrap();
    h.push((Binding::Kafka.content_type_header(), ct.as_bytes()));
    let body = binary::body_slice(&ev).unwrap();
    let mut buf = [0u8; 256];
    let rec = kafka::parse(h, Some(b"k"), Some(body), &mut Scratch::new(&mut buf)).unwrap();
    assert!(rec.event.same_as(&ev, false));
    assert_eq!(rec.key, Some(&b"k"[..]));
}

#[test]
fn kafka_key_is_returned_and_missing_value_means_no_data() {
    let mut buf = [0u8; 256];
    let rec = kafka::parse(
        kafka_base(&[]),
        Some(b"partition-key"),
        None,
        &mut Scratch::new(&mut buf),
    )
    .unwrap();
    assert_eq!(rec.key, Some(&b"partition-key"[..]));
    assert!(rec.event.data().is_none());
    assert!(
        rec.event.extensions().is_empty(),
        "the key maps to no attribute"
    );
    let mut buf = [0u8; 256];
    let rec = kafka::parse(kafka_base(&[]), None, None, &mut Scratch::new(&mut buf)).unwrap();
    assert_eq!(rec.key, None);
    // No data: binary-mode value is absent (a tombstone).
    let ev = base().build().unwrap();
    assert_eq!(binary::body_slice(&ev), None);
}

#[test]
fn kafka_structured_mode_is_detected_case_insensitively() {
    let value = br#"{"specversion":"1.0","id":"s1","source":"/s","type":"t"}"#;
    for ct in [
        "application/cloudevents+json",
        "Application/CloudEvents+JSON",
        "APPLICATION/CLOUDEVENTS+JSON; charset=UTF-8",
    ] {
        for name in ["content-type", "Content-Type"] {
            let h: Vec<(&str, &[u8])> = vec![(name, ct.as_bytes())];
            let mut buf = [0u8; 256];
            let rec = kafka::parse(h, None, Some(value), &mut Scratch::new(&mut buf))
                .unwrap_or_else(|e| panic!("{ct}: {e}"));
            assert_eq!(rec.event.id(), "s1", "{ct}");
            assert_eq!(rec.event.datacontenttype(), None, "{ct}");
        }
    }
    // Anything else is binary mode: the value is the data.
    let h = kafka_base(&[("content-type", b"application/json")]);
    let mut buf = [0u8; 256];
    let rec = kafka::parse(h, None, Some(value), &mut Scratch::new(&mut buf)).unwrap();
    assert_eq!(rec.event.id(), "1");
    assert!(matches!(rec.event.data(), Some(Data::Json(_))));
}

#[test]
fn kafka_header_values_must_be_utf8() {
    let h = kafka_base(&[("ce_subject", b"\xff\xfe")]);
    let mut buf = [0u8; 256];
    let e = kafka::parse(h, None, None, &mut Scratch::new(&mut buf)).unwrap_err();
    assert_validation(
        &e,
        &Attribute::Subject,
        Rule::InvalidEncoding,
        "kafka utf-8",
    );
    let h = kafka_base(&[("ce_subject", b"a\x01b")]);
    let mut buf = [0u8; 256];
    let e = kafka::parse(h, None, None, &mut Scratch::new(&mut buf)).unwrap_err();
    assert_validation(
        &e,
        &Attribute::Subject,
        Rule::InvalidCharacter,
        "kafka control",
    );
}

/// spec.md: "Each context attribute MUST only appear at most once": two
/// `ce_datacontenttype` headers are a duplicate even when they agree (as
/// two `ce_id` headers are); one beside an agreeing `content-type` is not.
#[test]
fn kafka_a_repeated_attribute_header_is_a_duplicate_even_with_the_same_value() {
    for (name, attr) in [
        ("ce_datacontenttype", Attribute::DataContentType),
        ("ce_subject", Attribute::Subject),
    ] {
        let h = kafka_base(&[(name, b"text/plain"), (name, b"text/plain")]);
        let mut buf = [0u8; 256];
        let e = kafka::parse(h, None, Some(b"hi"), &mut Scratch::new(&mut buf)).unwrap_err();
        assert_validation(&e, &attr, Rule::Duplicate, name);
    }
    let h = kafka_base(&[
        ("content-type", b"text/plain"),
        ("ce_datacontenttype", b"text/plain"),
    ]);
    let mut buf = [0u8; 256];
    let rec = kafka::parse(h, None, Some(b"hi"), &mut Scratch::new(&mut buf)).unwrap();
    assert_eq!(rec.event.datacontenttype(), Some("text/plain"));
}

#[test]
fn kafka_content_type_maps_to_datacontenttype() {
    let h = kafka_base(&[("content-type", b"text/plain; charset=utf-8")]);
    let mut buf = [0u8; 256];
    let rec = kafka::parse(h, None, Some(b"hi"), &mut Scratch::new(&mut buf)).unwrap();
    assert_eq!(
        rec.event.datacontenttype(),
        Some("text/plain; charset=utf-8")
    );
    assert!(matches!(rec.event.data(), Some(Data::Text("hi"))));
    // Every attribute may also have its `ce_` header (3.2.3), as other
    // SDKs read it: alone, it is the content type; beside an equal
    // `content-type` (case aside), the same; beside another, refused.
    for (headers, want) in [
        (
            &[("ce_datacontenttype", &b"text/plain"[..])][..],
            "text/plain",
        ),
        (
            &[
                ("content-type", &b"text/plain"[..]),
                ("ce_datacontenttype", b"Text/Plain"),
            ][..],
            "text/plain",
        ),
        (
            &[
                ("ce_datacontenttype", &b"text/plain"[..]),
                ("content-type", b"text/plain"),
            ][..],
            "text/plain",
        ),
    ] {
        let h = kafka_base(headers);
        let mut buf = [0u8; 256];
        let rec = kafka::parse(h, None, Some(b"hi"), &mut Scratch::new(&mut buf))
            .unwrap_or_else(|e| panic!("{headers:?}: {e}"));
        assert_eq!(rec.event.datacontenttype(), Some(want), "{headers:?}");
        assert!(
            matches!(rec.event.data(), Some(Data::Text("hi"))),
            "{headers:?}"
        );
    }
    for headers in [
        &[
            ("content-type", &b"text/plain"[..]),
            ("ce_datacontenttype", b"application/json"),
        ][..],
        &[
            ("ce_datacontenttype", &b"application/json"[..]),
            ("content-type", b"text/plain"),
        ][..],
        &[
            ("ce_datacontenttype", &b"text/plain"[..]),
            ("ce_datacontenttype", b"text/html"),
        ][..],
    ] {
        let h = kafka_base(headers);
        let mut buf = [0u8; 256];
        let e = kafka::parse(h, None, Some(b"hi"), &mut Scratch::new(&mut buf)).unwrap_err();
        assert_validation(
            &e,
            &Attribute::DataContentType,
            Rule::Duplicate,
            "kafka content-type and a different ce_datacontenttype",
        );
    }
}

// -------------------------------------------------------------------- batch

const VALID: &str = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;

#[track_caller]
fn batch_errors(input: &str) -> (usize, ParseError) {
    let mut p = match json::BatchParser::new(input.as_bytes()) {
        Ok(p) => p,
        Err(e) => return (0, e),
    };
    let mut ok = 0;
    let mut buf = [0u8; 1024];
    while let Some(r) = p.next_event(&mut buf) {
        match r {
            Ok(_) => ok += 1,
            Err(e) => {
                let mut buf2 = [0u8; 64];
                assert!(
                    p.next_event(&mut buf2).is_none(),
                    "parser stops after an error"
                );
                return (ok, e);
            }
        }
    }
    panic!("batch accepted: {input}");
}

#[test]
fn a_raw_del_in_one_event_of_a_batch_is_rejected_there() {
    // The batch parser learns once whether the whole input is below 0x7f;
    // one DEL in the second event must still reach that event's check.
    let input = format!(
        r#"[{VALID},{{"specversion":"1.0","id":"a{}b","source":"/s","type":"t"}},{VALID}]"#,
        '\u{7f}'
    );
    match batch_errors(&input) {
        (
            1,
            ParseError::InBatch {
                index: 1,
                error: InBatchError::Invalid(v),
            },
        ) => {
            assert_eq!(
                (v.attribute, v.rule),
                (Attribute::Id, Rule::InvalidCharacter)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn batch_must_be_a_json_array() {
    for input in [VALID, "{}", "\"x\"", "5", "null", "true"] {
        let (_, e) = batch_errors(input);
        assert_eq!(e, ParseError::NotAnArray, "{input}");
    }
}

#[test]
fn batch_elements_must_be_objects_and_errors_name_the_index() {
    for (input, index) in [
        (format!("[{VALID},5]"), 1),
        (format!("[\"x\",{VALID}]"), 0),
        (format!("[{VALID},{VALID},[]]"), 2),
        (format!("[{VALID},null]"), 1),
    ] {
        let (ok, e) = batch_errors(&input);
        assert_eq!(ok, index, "{input}");
        assert_eq!(
            e,
            ParseError::InBatch {
                index,
                error: InBatchError::NotAnObject
            },
            "{input}"
        );
    }
    // Not JSON after such an element: a JSON error, as for one event (it
    // was called "not an object").
    for input in [
        format!("[{VALID}, 1x]"),
        format!("[{VALID}, 1, ]"),
        format!("[5, {VALID}"),
        "[5] x".to_string(),
    ] {
        let (_, e) = batch_errors(&input);
        assert!(matches!(e, ParseError::Json(_)), "{input}: {e:?}");
    }
}

#[test]
fn invalid_event_in_batch_names_index_attribute_and_rule() {
    let input = format!(
        r#"[{VALID},{VALID},{{"specversion":"1.0","id":"1","source":"has space","type":"t"}}]"#
    );
    let (ok, e) = batch_errors(&input);
    assert_eq!(ok, 2);
    match &e {
        ParseError::InBatch {
            index: 2,
            error: InBatchError::Invalid(v),
        } => {
            assert_eq!(
                (&v.attribute, v.rule),
                (&Attribute::Source, Rule::NotUriReference)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_validation(&e, &Attribute::Source, Rule::NotUriReference, "batch");
    let (_, e) = batch_errors(r#"[{"specversion":"1.0"}]"#);
    assert_eq!(
        e,
        ParseError::InBatch {
            index: 0,
            error: InBatchError::Invalid(ValidationError::new(Attribute::Id, Rule::Missing))
        }
    );
}

// ------------------------------------------------- malformed input limits

#[test]
fn trailing_garbage_is_rejected() {
    for tail in [" x", "}", "{}", &format!(" {VALID}"), ",", "\u{0}"] {
        assert_json_error(
            format!("{VALID}{tail}").as_bytes(),
            JsonErrorKind::TrailingCharacters,
        );
    }
    // Errors come in input order: the rules of the whole object (a missing
    // id, data beside data_base64) are checked once the input is known to
    // be JSON, so garbage after it is the error; a member that breaks a rule
    // is reported where it is read, before the garbage.
    for object in [
        r#"{"specversion":"1.0","source":"/s","type":"t"}"#,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}"#,
    ] {
        assert_json_error(
            format!("{object} x").as_bytes(),
            JsonErrorKind::TrailingCharacters,
        );
    }
    let bad_time = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"x"} x"#;
    assert!(
        matches!(parse_err(bad_time.as_bytes()), ParseError::Invalid(v) if v.attribute == Attribute::Time),
        "{bad_time}"
    );
    // Trailing whitespace is fine.
    parse_ok(&format!("{VALID} \n\t\r"), |_| ());
    // Batches too.
    let (_, e) = batch_errors(&format!("[{VALID}] x"));
    assert!(
        matches!(e, ParseError::Json(j) if j.kind == JsonErrorKind::TrailingCharacters),
        "{e:?}"
    );
    let (_, e) = batch_errors("[] []");
    assert!(
        matches!(e, ParseError::Json(j) if j.kind == JsonErrorKind::TrailingCharacters),
        "{e:?}"
    );
}

fn deep(open: &str, close: &str, n: usize) -> String {
    let mut s = String::with_capacity(n * (open.len() + close.len()));
    for _ in 0..n {
        s.push_str(open);
    }
    for _ in 0..n {
        s.push_str(close);
    }
    s
}

#[test]
fn deeply_nested_data_is_rejected_without_overflowing_the_stack() {
    // A small stack: a recursive parser would overflow long before 10 000 levels.
    let t = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let arrays = deep("[", "]", 10_000);
            let objects = deep(r#"{"a":"#, "}", 10_000);
            for nested in [&arrays, &objects] {
                assert_json_error(with(&format!(r#","data":{nested}"#)).as_bytes(), JsonErrorKind::TooDeep);
                assert_json_error(with(&format!(r#","ext":{nested}"#)).as_bytes(), JsonErrorKind::TooDeep);
                // In a batch.
                let (_, e) = batch_errors(&format!(r#"[{}]"#, with(&format!(r#","data":{nested}"#))));
                assert!(matches!(e, ParseError::Json(j) if j.kind == JsonErrorKind::TooDeep), "{e:?}");
                // As a whole batch.
                let (_, e) = batch_errors(nested);
                assert!(matches!(e, ParseError::Json(j) if j.kind == JsonErrorKind::TooDeep) || e == ParseError::NotAnArray, "{e:?}");
                // As a binary-mode JSON body.
                let h = http_headers(&[], &[("Content-Type", "application/json")]);
                let e = http_err(&h, nested.as_bytes());
                assert!(
                    matches!(e.validation().map(|v| (&v.attribute, v.rule)), Some((Attribute::Data, Rule::InvalidJson(j))) if j.kind == JsonErrorKind::TooDeep),
                    "{e:?}"
                );
                // In the builder.
                let e = build_err(base().data_json(nested));
                assert!(matches!(e.rule, Rule::InvalidJson(j) if j.kind == JsonErrorKind::TooDeep), "{e:?}");
            }
            // Moderate nesting is fine.
            parse_ok(&with(&format!(r#","data":{}"#, deep("[", "]", 64))), |ev| {
                assert!(matches!(ev.data(), Some(Data::Json(_))));
            });
        })
        .unwrap();
    t.join().unwrap();
}

#[test]
fn empty_input_is_a_json_error() {
    for input in ["", " ", "\n\t\r "] {
        assert_json_error(input.as_bytes(), JsonErrorKind::Empty);
        match json::BatchParser::new(input.as_bytes()) {
            Err(ParseError::Json(j)) => assert_eq!(j.kind, JsonErrorKind::Empty),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn an_event_must_be_a_json_object() {
    for input in ["[]", "\"x\"", "5", "null", "true", &format!("[{VALID}]")] {
        assert_eq!(
            parse_err(input.as_bytes()),
            ParseError::NotAnObject,
            "{input}"
        );
    }
}

#[test]
fn truncated_input_is_a_json_error() {
    for cut in [1, 10, VALID.len() / 2, VALID.len() - 1] {
        let e = parse_err(&VALID.as_bytes()[..cut]);
        assert!(matches!(e, ParseError::Json(_)), "{cut}: {e:?}");
    }
}

#[test]
fn string_data_with_a_json_type_is_not_deserialized_again() {
    // json-format.md §3.1.2: a string `data` member with a JSON content type is
    // a JSON string value; it MUST NOT be parsed further as a JSON document.
    for ct in [r#","datacontenttype":"application/json""#, ""] {
        parse_ok(&with(&format!(r#"{ct},"data":"{{\"a\":1}}""#)), |ev| {
            match ev.data() {
                Some(Data::Json(raw)) => {
                    let v: Value = serde_json::from_str(raw).unwrap();
                    assert_eq!(v, Value::String(r#"{"a":1}"#.into()));
                }
                other => panic!("expected the JSON string value, got {other:?}"),
            }
            assert_eq!(json_of(ev)["data"], Value::String(r#"{"a":1}"#.into()));
        });
    }
}
