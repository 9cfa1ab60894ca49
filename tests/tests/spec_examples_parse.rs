//! Every example event of the CloudEvents documents (spec.md, json-format.md,
//! kafka-protocol-binding.md) parses with our parsers into the attributes and
//! data the documents describe, and survives a write/parse round trip.
//!
//! The example texts are transcribed here (whitespace as in the documents);
//! the one change is the `"... base64 encoded string ..."` placeholder of
//! json-format.md, which is not Base64 and is replaced by real Base64.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events::format::json::to_vec;
use ossa_events::parse::{http, json, kafka};
use ossa_events::{Data, Event, ExtValue, Scratch, Timestamp};

/// Base64 used instead of the `"... base64 encoded string ..."` placeholder of
/// json-format.md (which is not valid Base64): the bytes 0x00..=0x09, standing in
/// for a Thrift binary payload.
const THRIFT_B64: &str = "AAECAwQFBgcICQ==";
const THRIFT_BYTES: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

fn parse<'a>(input: &'a [u8], buf: &'a mut [u8]) -> Event<'a> {
    json::parse_event(input, &mut Scratch::new(buf)).unwrap_or_else(|e| {
        panic!(
            "example must parse: {e}\n{}",
            String::from_utf8_lossy(input)
        )
    })
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// Writes `ev` as structured JSON, parses the output again and checks the two
/// events are the same (typed comparison); also checks the output is JSON.
fn assert_round_trips(ev: &Event<'_>) {
    let out = to_vec(ev).unwrap();
    serde_json::from_slice::<serde_json::Value>(&out).expect("writer output is JSON");
    let mut buf = vec![0u8; 4096];
    let again = json::parse_event(&out, &mut Scratch::new(&mut buf)).unwrap_or_else(|e| {
        panic!(
            "re-encoded event must parse: {e}\n{}",
            String::from_utf8_lossy(&out)
        )
    });
    assert!(
        ev.same_as(&again, true),
        "round trip changed the event:\n{ev:?}\n{again:?}\n{}",
        String::from_utf8_lossy(&out)
    );
}

/// The extensions that most json-format.md examples carry.
fn assert_example_extensions(ev: &Event<'_>) {
    assert_eq!(
        ev.extension("comexampleextension1"),
        Some(ExtValue::String("value"))
    );
    assert_eq!(
        ev.extension("comexampleothervalue"),
        Some(ExtValue::Integer(5))
    );
    assert_eq!(ev.extensions().len(), 2, "{:?}", ev.extensions());
}

fn json_value(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

fn data_json<'a>(ev: &Event<'a>) -> &'a str {
    match ev.data() {
        Some(Data::Json(s)) => s,
        other => panic!("expected Data::Json, got {other:?}"),
    }
}

// ---------------------------------------------------------------- spec.md

const SPEC_EXAMPLE: &str = r#"{
    "specversion" : "1.0",
    "type" : "com.github.pull_request.opened",
    "source" : "https://github.com/cloudevents/spec/pull",
    "subject" : "123",
    "id" : "A234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "text/xml",
    "data" : "<much wow=\"xml\"/>"
}"#;

#[test]
fn spec_md_example_with_xml_string_data() {
    let mut buf = [0u8; 512];
    let ev = parse(SPEC_EXAMPLE.as_bytes(), &mut buf);
    assert_eq!(ev.specversion(), "1.0");
    assert_eq!(ev.ty(), "com.github.pull_request.opened");
    assert_eq!(ev.source(), "https://github.com/cloudevents/spec/pull");
    assert_eq!(ev.subject(), Some("123"));
    assert_eq!(ev.id(), "A234-1234-1234");
    assert_eq!(ev.time(), Some(ts("2018-04-05T17:31:00Z")));
    assert_eq!(ev.datacontenttype(), Some("text/xml"));
    assert_eq!(ev.dataschema(), None);
    assert_example_extensions(&ev);
    // Non-JSON content type: the string is the text itself, unescaped.
    match ev.data() {
        Some(Data::Text(t)) => assert_eq!(*t, r#"<much wow="xml"/>"#),
        other => panic!("expected Data::Text, got {other:?}"),
    }
    assert_round_trips(&ev);
}

// ---------------------------------------------------------- json-format.md

/// §3.2, first example, with real Base64 instead of the placeholder.
fn binary_example() -> String {
    r#"{
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "id" : "A234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "application/vnd.apache.thrift.binary",
    "data_base64" : "PLACEHOLDER"
}"#
    .replace("PLACEHOLDER", THRIFT_B64)
}

const XML_EXAMPLE: &str = r#"{
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "id" : "B234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "unsetextension": null,
    "datacontenttype" : "application/xml",
    "data" : "<much wow=\"xml\"/>"
}"#;

const OBJECT_EXAMPLE: &str = r#"{
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "subject": null,
    "id" : "C234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "application/json",
    "data" : {
        "appinfoA" : "abc",
        "appinfoB" : 123,
        "appinfoC" : true
    }
}"#;

const NUMBER_EXAMPLE: &str = r#"{
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "subject": null,
    "id" : "C234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "application/json",
    "data" : 1.5
}"#;

const STRING_EXAMPLE: &str = r#"{
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "subject": null,
    "id" : "D234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "data" : "I'm just a string"
}"#;

const BASE64_NO_TYPE_EXAMPLE: &str = r#"{
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "id" : "D234-1234-1234",
    "data_base64" : "eyAieHl6IjogMTIzIH0="
}"#;

fn assert_someevent(ev: &Event<'_>, id: &str) {
    assert_eq!(ev.specversion(), "1.0");
    assert_eq!(ev.ty(), "com.example.someevent");
    assert_eq!(ev.source(), "/mycontext");
    assert_eq!(ev.id(), id);
}

#[test]
fn binary_valued_data_base64_example() {
    let input = binary_example();
    let mut buf = [0u8; 512];
    let ev = parse(input.as_bytes(), &mut buf);
    assert_someevent(&ev, "A234-1234-1234");
    assert_eq!(ev.time(), Some(ts("2018-04-05T17:31:00Z")));
    assert_eq!(
        ev.datacontenttype(),
        Some("application/vnd.apache.thrift.binary")
    );
    assert_eq!(ev.subject(), None);
    assert_example_extensions(&ev);
    match ev.data() {
        Some(Data::Base64(b)) => assert_eq!(*b, THRIFT_B64),
        other => panic!("expected Data::Base64, got {other:?}"),
    }
    assert!(ev.data().unwrap().same_content(&Data::Binary(THRIFT_BYTES)));
    assert_round_trips(&ev);
}

#[test]
fn xml_string_data_example_with_null_extension() {
    let mut buf = [0u8; 512];
    let ev = parse(XML_EXAMPLE.as_bytes(), &mut buf);
    assert_someevent(&ev, "B234-1234-1234");
    assert_eq!(ev.datacontenttype(), Some("application/xml"));
    // `"unsetextension": null` is the same as leaving it out.
    assert_eq!(ev.extension("unsetextension"), None);
    assert_example_extensions(&ev);
    match ev.data() {
        Some(Data::Text(t)) => assert_eq!(*t, r#"<much wow="xml"/>"#),
        other => panic!("expected Data::Text, got {other:?}"),
    }
    assert_round_trips(&ev);
}

#[test]
fn json_object_data_example_with_null_subject() {
    let mut buf = [0u8; 512];
    let ev = parse(OBJECT_EXAMPLE.as_bytes(), &mut buf);
    assert_someevent(&ev, "C234-1234-1234");
    assert_eq!(ev.subject(), None, "\"subject\": null means unset");
    assert_eq!(ev.datacontenttype(), Some("application/json"));
    assert_example_extensions(&ev);
    assert_eq!(
        json_value(data_json(&ev)),
        serde_json::json!({"appinfoA": "abc", "appinfoB": 123, "appinfoC": true})
    );
    assert_round_trips(&ev);
}

#[test]
fn json_number_data_example() {
    let mut buf = [0u8; 512];
    let ev = parse(NUMBER_EXAMPLE.as_bytes(), &mut buf);
    assert_someevent(&ev, "C234-1234-1234");
    assert_eq!(ev.subject(), None);
    assert_eq!(data_json(&ev), "1.5");
    assert_eq!(json_value(data_json(&ev)), serde_json::json!(1.5));
    assert_round_trips(&ev);
}

#[test]
fn literal_json_string_data_without_datacontenttype() {
    let mut buf = [0u8; 512];
    let ev = parse(STRING_EXAMPLE.as_bytes(), &mut buf);
    assert_someevent(&ev, "D234-1234-1234");
    assert_eq!(ev.datacontenttype(), None);
    assert_eq!(ev.subject(), None);
    assert_example_extensions(&ev);
    // Implied application/json: the member is a JSON string value, kept as JSON.
    assert!(ev.data_is_json());
    assert_eq!(
        json_value(data_json(&ev)),
        serde_json::json!("I'm just a string")
    );
    assert_eq!(ev.effective_content_type(), Some("application/json"));
    assert_round_trips(&ev);
}

#[test]
fn data_base64_without_datacontenttype_is_not_assumed_json() {
    let mut buf = [0u8; 512];
    let ev = parse(BASE64_NO_TYPE_EXAMPLE.as_bytes(), &mut buf);
    assert_someevent(&ev, "D234-1234-1234");
    assert_eq!(ev.time(), None);
    assert_eq!(ev.datacontenttype(), None);
    assert!(ev.extensions().is_empty());
    match ev.data() {
        Some(Data::Base64(b)) => assert_eq!(*b, "eyAieHl6IjogMTIzIH0="),
        other => panic!("expected Data::Base64, got {other:?}"),
    }
    assert!(
        ev.data()
            .unwrap()
            .same_content(&Data::Binary(br#"{ "xyz": 123 }"#))
    );
    // No content type is inferred for binary data.
    assert_eq!(ev.effective_content_type(), None);
    assert_eq!(ossa_events::format::binary::content_type(&ev), None);
    assert_round_trips(&ev);
}

fn batch_example() -> String {
    r#"[
  {
      "specversion" : "1.0",
      "type" : "com.example.someevent",
      "source" : "/mycontext/4",
      "id" : "B234-1234-1234",
      "time" : "2018-04-05T17:31:00Z",
      "comexampleextension1" : "value",
      "comexampleothervalue" : 5,
      "datacontenttype" : "application/vnd.apache.thrift.binary",
      "data_base64" : "PLACEHOLDER"
  },
  {
      "specversion" : "1.0",
      "type" : "com.example.someotherevent",
      "source" : "/mycontext/9",
      "id" : "C234-1234-1234",
      "time" : "2018-04-05T17:31:05Z",
      "comexampleextension1" : "value",
      "comexampleothervalue" : 5,
      "datacontenttype" : "application/json",
      "data" : {
          "appinfoA" : "abc",
          "appinfoB" : 123,
          "appinfoC" : true
      }
  }
]"#
    .replace("PLACEHOLDER", THRIFT_B64)
}

#[test]
fn batch_example_parses_event_by_event() {
    let input = batch_example();
    let mut parser = json::BatchParser::new(input.as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let mut seen = 0;
    while let Some(r) = parser.next_event(&mut buf) {
        let ev = r.unwrap();
        assert_example_extensions(&ev);
        match seen {
            0 => {
                assert_eq!(ev.ty(), "com.example.someevent");
                assert_eq!(ev.source(), "/mycontext/4");
                assert_eq!(ev.id(), "B234-1234-1234");
                assert_eq!(ev.time(), Some(ts("2018-04-05T17:31:00Z")));
                assert_eq!(
                    ev.datacontenttype(),
                    Some("application/vnd.apache.thrift.binary")
                );
                assert!(matches!(ev.data(), Some(Data::Base64(b)) if *b == THRIFT_B64));
            }
            1 => {
                assert_eq!(ev.ty(), "com.example.someotherevent");
                assert_eq!(ev.source(), "/mycontext/9");
                assert_eq!(ev.id(), "C234-1234-1234");
                assert_eq!(ev.time(), Some(ts("2018-04-05T17:31:05Z")));
                assert_eq!(ev.datacontenttype(), Some("application/json"));
                assert_eq!(
                    json_value(data_json(&ev)),
                    serde_json::json!({"appinfoA": "abc", "appinfoB": 123, "appinfoC": true})
                );
            }
            n => panic!("unexpected event {n}"),
        }
        assert_round_trips(&ev);
        seen += 1;
    }
    assert_eq!(seen, 2);
    assert_eq!(parser.index(), 2);
}

#[test]
fn empty_batch_example() {
    for input in ["[]", "[ ]", "\n[\n]\n"] {
        let mut parser = json::BatchParser::new(input.as_bytes()).unwrap();
        let mut buf = [0u8; 64];
        assert!(parser.next_event(&mut buf).is_none(), "{input:?}");
        assert!(json::looks_like_batch(input.as_bytes()));
    }
    // An empty batch re-encodes as an empty array.
    let mut out = Vec::new();
    ossa_events::format::json::write_batch(std::iter::empty::<&Event<'_>>(), &mut out).unwrap();
    assert_eq!(out, b"[]");
}

// ------------------------------------- json-format.md §3.2 binary-mode forms

/// Headers as `(name, value)` from `name: value` lines.
fn header_lines(text: &str) -> Vec<(&str, &[u8])> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim(), v.trim().as_bytes())
        })
        .collect()
}

const BINARY_HEADERS_COMMON: &str = "ce-specversion: 1.0
ce-type: com.example.someevent
ce-source: /mycontext
ce-time: 2018-04-05T17:31:00Z
ce-comexampleextension1: value
ce-comexampleothervalue: 5
";

/// Parses the binary-mode form with both `parse_binary` and the mode-detecting
/// `parse`, checks both agree, and compares with the structured form.
fn check_binary_form(headers_text: &str, body: &[u8], structured: &str, expect_ct: Option<&str>) {
    let headers = header_lines(headers_text);
    let mut buf = [0u8; 512];
    let ev = http::parse_binary(headers.iter().copied(), body, &mut Scratch::new(&mut buf))
        .unwrap_or_else(|e| panic!("binary form must parse: {e}"));
    let mut buf2 = [0u8; 512];
    let ev2 =
        match http::parse(headers.iter().copied(), body, &mut Scratch::new(&mut buf2)).unwrap() {
            http::Message::Event(ev) => ev,
            other => panic!("expected one event, got {other:?}"),
        };
    assert!(ev.same_as(&ev2, true), "parse and parse_binary disagree");
    assert_eq!(ev.datacontenttype(), expect_ct);

    // Same attributes and data as the structured form (binary mode carries
    // extensions as strings: compare by canonical string).
    let mut sbuf = [0u8; 512];
    let s = parse(structured.as_bytes(), &mut sbuf);
    assert_eq!(ev.id(), s.id());
    assert_eq!(ev.source(), s.source());
    assert_eq!(ev.ty(), s.ty());
    assert_eq!(ev.time(), s.time());
    assert_eq!(ev.subject(), s.subject());
    assert_eq!(ev.extensions().len(), s.extensions().len());
    for e in s.extensions() {
        let v = ev
            .extension(e.name)
            .unwrap_or_else(|| panic!("missing {}", e.name));
        assert!(
            v.canonical_eq(&e.value),
            "{}: {v:?} vs {:?}",
            e.name,
            e.value
        );
    }
    let (a, b) = (ev.data().unwrap(), s.data().unwrap());
    assert!(a.same_content(b), "data differs: {a:?} vs {b:?}");
    // The binary-mode event survives the JSON format too.
    assert_round_trips(&ev);
}

#[test]
fn binary_mode_form_of_thrift_example() {
    let headers = format!(
        "{BINARY_HEADERS_COMMON}ce-id: A234-1234-1234\ncontent-type: application/vnd.apache.thrift.binary\n"
    );
    check_binary_form(
        &headers,
        THRIFT_BYTES,
        &binary_example(),
        Some("application/vnd.apache.thrift.binary"),
    );
    let mut buf = [0u8; 512];
    let h = header_lines(&headers);
    let ev = http::parse_binary(h, THRIFT_BYTES, &mut Scratch::new(&mut buf)).unwrap();
    assert!(matches!(ev.data(), Some(Data::Binary(b)) if *b == THRIFT_BYTES));
}

#[test]
fn binary_mode_form_of_xml_example() {
    let headers =
        format!("{BINARY_HEADERS_COMMON}ce-id: B234-1234-1234\ncontent-type: application/xml\n");
    check_binary_form(
        &headers,
        br#"<much wow="xml"/>"#,
        XML_EXAMPLE,
        Some("application/xml"),
    );
}

#[test]
fn binary_mode_form_of_json_object_example() {
    let headers =
        format!("{BINARY_HEADERS_COMMON}ce-id: C234-1234-1234\ncontent-type: application/json\n");
    let body = b"{\n  \"appinfoA\" : \"abc\",\n  \"appinfoB\" : 123,\n  \"appinfoC\" : true\n}\n";
    check_binary_form(&headers, body, OBJECT_EXAMPLE, Some("application/json"));
}

#[test]
fn binary_mode_form_of_json_number_example() {
    let headers =
        format!("{BINARY_HEADERS_COMMON}ce-id: C234-1234-1234\ncontent-type: application/json\n");
    check_binary_form(&headers, b"1.5", NUMBER_EXAMPLE, Some("application/json"));
}

#[test]
fn binary_mode_form_of_json_string_example_states_implied_type() {
    let headers =
        format!("{BINARY_HEADERS_COMMON}ce-id: D234-1234-1234\ncontent-type: application/json\n");
    let body = br#""I'm just a string""#;
    // The structured form has no datacontenttype; the binary form states the
    // implied application/json explicitly. Compare everything else.
    let h = header_lines(&headers);
    let mut buf = [0u8; 512];
    let ev = http::parse_binary(h, body, &mut Scratch::new(&mut buf)).unwrap();
    let mut sbuf = [0u8; 512];
    let s = parse(STRING_EXAMPLE.as_bytes(), &mut sbuf);
    assert_eq!(ev.datacontenttype(), Some("application/json"));
    assert_eq!(s.datacontenttype(), None);
    assert_eq!(s.effective_content_type(), ev.datacontenttype());
    let with_ct = s
        .to_builder()
        .datacontenttype("application/json")
        .build()
        .unwrap();
    assert!(ev.same_as(&with_ct, false));
    assert_eq!(
        json_value(data_json(&ev)),
        serde_json::json!("I'm just a string")
    );
    assert_round_trips(&ev);

    // Writing the structured event in binary mode gives the header and quoted body.
    assert_eq!(
        ossa_events::format::binary::content_type(&s),
        Some("application/json")
    );
    let mut body_out = Vec::new();
    ossa_events::format::binary::write_body(&s, &mut body_out).unwrap();
    assert_eq!(body_out, body);
}

#[test]
fn binary_mode_form_of_base64_example_has_no_content_type() {
    let headers = "ce-specversion: 1.0
ce-type: com.example.someevent
ce-source: /mycontext
ce-id: D234-1234-1234
";
    check_binary_form(headers, br#"{ "xyz": 123 }"#, BASE64_NO_TYPE_EXAMPLE, None);
    // No content type: the body is bytes, not JSON.
    let mut buf = [0u8; 256];
    let ev = http::parse_binary(
        header_lines(headers),
        br#"{ "xyz": 123 }"#,
        &mut Scratch::new(&mut buf),
    )
    .unwrap();
    assert!(
        matches!(ev.data(), Some(Data::Binary(_))),
        "{:?}",
        ev.data()
    );
}

// ------------------------------------------------ kafka-protocol-binding.md

#[test]
fn kafka_binary_mode_example() {
    // kafka-protocol-binding.md §3.2.5. The document shows header values in
    // double quotes for presentation; Kafka header values are the raw UTF-8
    // strings, so the quotes are not part of the value.
    let avro: &[u8] = b"\x02\x0ahello\x00";
    let headers: Vec<(&str, &[u8])> = vec![
        ("ce_specversion", b"1.0"),
        ("ce_type", b"com.example.someevent"),
        ("ce_source", b"/mycontext/subcontext"),
        ("ce_id", b"1234-1234-1234"),
        ("ce_time", b"2018-04-05T03:56:24Z"),
        ("content-type", b"application/avro"),
    ];
    let mut buf = [0u8; 256];
    let rec = kafka::parse(
        headers,
        Some(b"mykey"),
        Some(avro),
        &mut Scratch::new(&mut buf),
    )
    .unwrap();
    assert_eq!(rec.key, Some(&b"mykey"[..]));
    let ev = &rec.event;
    assert_eq!(ev.specversion(), "1.0");
    assert_eq!(ev.ty(), "com.example.someevent");
    assert_eq!(ev.source(), "/mycontext/subcontext");
    assert_eq!(ev.id(), "1234-1234-1234");
    assert_eq!(ev.time(), Some(ts("2018-04-05T03:56:24Z")));
    assert_eq!(ev.datacontenttype(), Some("application/avro"));
    assert!(ev.extensions().is_empty());
    assert!(matches!(ev.data(), Some(Data::Binary(b)) if *b == avro));
    assert_round_trips(ev);
}

#[test]
fn kafka_structured_mode_example() {
    // kafka-protocol-binding.md §3.3.4, with the elided parts filled in: the
    // data is XML, so (per the JSON format) it is carried as a string.
    let value = br#"{
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext/subcontext",
    "id" : "1234-1234-1234",
    "time" : "2018-04-05T03:56:24Z",
    "datacontenttype" : "application/xml",
    "data" : "<note>hi</note>"
}"#;
    let headers: Vec<(&str, &[u8])> = vec![(
        "content-type",
        b"application/cloudevents+json; charset=UTF-8",
    )];
    let mut buf = [0u8; 256];
    let rec = kafka::parse(
        headers,
        Some(b"mykey"),
        Some(value),
        &mut Scratch::new(&mut buf),
    )
    .unwrap();
    assert_eq!(rec.key, Some(&b"mykey"[..]));
    let ev = &rec.event;
    assert_eq!(ev.id(), "1234-1234-1234");
    assert_eq!(ev.source(), "/mycontext/subcontext");
    assert_eq!(ev.time(), Some(ts("2018-04-05T03:56:24Z")));
    assert_eq!(ev.datacontenttype(), Some("application/xml"));
    assert!(matches!(ev.data(), Some(Data::Text("<note>hi</note>"))));
    assert_round_trips(ev);
}

// ------------------------------------------- json-format.md §2.3 mapping table

#[test]
fn type_mapping_table_examples() {
    let input = br#"{"specversion":"1.0","type":"com.example.someevent","source":"/mycontext",
        "subject":"larger-context","id":"1234-1234-1234","time":"2018-04-05T17:31:00Z",
        "datacontenttype":"application/json"}"#;
    let mut buf = [0u8; 256];
    let ev = parse(input, &mut buf);
    assert_eq!(ev.subject(), Some("larger-context"));
    assert_eq!(ev.time().unwrap().to_string(), "2018-04-05T17:31:00Z");
    assert_eq!(ev.datacontenttype(), Some("application/json"));
    assert!(ev.data().is_none());
    assert_round_trips(&ev);

    let input = br#"{"specversion":"1.0","type":"t","source":"/mycontext","id":"1",
        "subject":null,"time":null}"#;
    let mut buf = [0u8; 256];
    let ev = parse(input, &mut buf);
    assert_eq!(ev.subject(), None);
    assert_eq!(ev.time(), None);
    assert_round_trips(&ev);
}
