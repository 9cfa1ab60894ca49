//! Every JSON reader we ship, run on JSONTestSuite's `test_parsing` corpus
//! (`tests/fixtures/json_test_suite`, see its README): `y_*` files must be
//! accepted, `n_*` files refused with a typed error, `i_*` files either way;
//! none may panic, and each decision must agree with
//! `serde_json::from_slice::<Value>` (a value we take that serde_json
//! refuses is data a serde_json-based peer, such as the Rust cloudevents-sdk,
//! cannot read). The `i_*` files on which a reader and serde_json differ
//! are printed and pinned (none, since numbers beyond `f64` are refused).
//!
//! Each file is read
//! - as the `data` of an otherwise valid structured event
//!   (`datacontenttype: application/json`), by the core structured parser,
//!   the core batch parser (the event alone and after a valid one), the
//!   `http` crate adapter in structured and batched mode (what the receiver
//!   and the axum extractor call) and the Kafka parser in structured mode;
//! - as a binary-mode body or Kafka value under `application/json`;
//! - by `json::validate`, `RawJson::new` and the builder's `data_json`;
//! - as the whole input of the structured and batch parsers, which must
//!   refuse it (no file is an event; an empty array is an empty batch).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use ossa_events::parse::http::{self as core_http, Message};
use ossa_events::parse::json::{BatchParser, parse_event};
use ossa_events::parse::kafka;
use ossa_events::{Attribute, Event, MAX_DATA_DEPTH, ParseError, RawJson, Rule, Scratch};
use serde_json::Value;

/// One corpus file.
struct Case {
    name: String,
    bytes: Vec<u8>,
}

/// What the file's name promises.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    /// `y_`: must be accepted.
    Yes,
    /// `n_`: must be refused.
    No,
    /// `i_`: either.
    Either,
}

impl Case {
    fn class(&self) -> Class {
        match self.name.as_bytes().first() {
            Some(b'y') => Class::Yes,
            Some(b'n') => Class::No,
            _ => Class::Either,
        }
    }
}

/// The corpus: the vendored files and the two generated ones (see the README).
fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/json_test_suite/test_parsing");
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| {
            let path = e.unwrap().path();
            Case {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                bytes: std::fs::read(&path).unwrap(),
            }
        })
        .collect();
    cases.push(Case {
        name: "n_structure_100000_opening_arrays.json".into(),
        bytes: vec![b'['; 100_000],
    });
    let mut open = br#"[{"":"#.repeat(50_000);
    open.push(b'\n');
    cases.push(Case {
        name: "n_structure_open_array_object.json".into(),
        bytes: open,
    });
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(cases.len(), 318, "the whole test_parsing folder");
    cases
}

/// What a reader did with an input.
#[derive(Debug)]
enum Outcome {
    Accepted,
    Refused(String),
    Panicked(String),
}

impl Outcome {
    fn accepted(&self) -> bool {
        matches!(self, Outcome::Accepted)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Accepted => f.write_str("accepted"),
            Outcome::Refused(e) => write!(f, "refused: {e}"),
            Outcome::Panicked(p) => write!(f, "PANICKED: {p}"),
        }
    }
}

/// Runs `f`, catching a panic. `Err` carries the reader's error, already
/// checked to be of the kind expected for malformed JSON (else the text
/// says so: `untyped: …`).
fn run(f: impl FnOnce() -> Result<(), String>) -> Outcome {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Outcome::Accepted,
        Ok(Err(e)) => Outcome::Refused(e),
        Err(p) => Outcome::Panicked(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default(),
        ),
    }
}

const HEAD: &[u8] = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":"#;
const VALID: &[u8] = br#"{"specversion":"1.0","id":"0","source":"/s","type":"t"}"#;

/// The structured event whose `data` is `file`.
fn wrapped(file: &[u8]) -> Vec<u8> {
    let mut v = HEAD.to_vec();
    v.extend_from_slice(file);
    v.push(b'}');
    v
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A structured-parser error that says the input is malformed JSON.
fn json_error(e: &ParseError) -> Result<(), String> {
    match e {
        ParseError::Json(_) => Err(format!("{e}")),
        e => Err(format!("untyped: {e:?}")),
    }
}

/// A binary-mode error that says the data is malformed JSON.
fn data_error(e: &ParseError) -> Result<(), String> {
    match e {
        ParseError::Invalid(v)
            if v.attribute == Attribute::Data && matches!(v.rule, Rule::InvalidJson(_)) =>
        {
            Err(format!("{e}"))
        }
        e => Err(format!("untyped: {e:?}")),
    }
}

fn scratch() -> Vec<u8> {
    vec![0u8; 1 << 20]
}

/// Reads every event of a batch; `Ok` when all of them and the end are valid.
fn drain(mut batch: BatchParser<'_>) -> Result<usize, ParseError> {
    let mut buf = scratch();
    let mut n = 0;
    while let Some(ev) = batch.next_event(&mut buf) {
        ev?;
        n += 1;
    }
    Ok(n)
}

/// A structured event's `data` must hold the file's value (whitespace
/// around it aside).
fn check_data(ev: &Event<'_>, file: &[u8]) -> Result<(), String> {
    let want = String::from_utf8_lossy(file);
    match ev.data() {
        Some(ossa_events::Data::Json(raw))
            if *raw == want.trim_matches([' ', '\t', '\n', '\r']) =>
        {
            Ok(())
        }
        other => Err(format!("untyped: accepted with data {other:?}")),
    }
}

/// A binary-mode event's `data` must be the body as it is; an empty body
/// is no data (see [`KNOWN`]).
fn check_body(ev: &Event<'_>, file: &[u8]) -> Result<(), String> {
    match ev.data() {
        None if file.is_empty() => Ok(()),
        Some(ossa_events::Data::Json(raw)) if raw.as_bytes() == file => Ok(()),
        other => Err(format!("untyped: accepted with data {other:?}")),
    }
}

const CE_HEADERS: [(&str, &[u8]); 4] = [
    ("ce-specversion", b"1.0"),
    ("ce-id", b"1"),
    ("ce-source", b"/s"),
    ("ce-type", b"t"),
];
const KAFKA_HEADERS: [(&str, &[u8]); 4] = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"1"),
    ("ce_source", b"/s"),
    ("ce_type", b"t"),
];

fn http_map(content_type: &'static str, binary: bool) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("content-type", http::HeaderValue::from_static(content_type));
    if binary {
        for (n, v) in CE_HEADERS {
            h.insert(n, http::HeaderValue::from_bytes(v).unwrap());
        }
    }
    h
}

/// The readers of a structured event whose `data` is the file.
fn structured_readers(file: &[u8]) -> Vec<(&'static str, Outcome)> {
    let ev = wrapped(file);
    let one = concat(&[b"[", &ev, b"]"]);
    let two = concat(&[b"[", VALID, b",", &ev, b"]"]);
    let mut out = vec![
        (
            "core parse_event",
            run(|| {
                let mut buf = scratch();
                match parse_event(&ev, &mut Scratch::new(&mut buf)) {
                    Ok(e) => check_data(&e, file),
                    Err(e) => json_error(&e),
                }
            }),
        ),
        (
            "core BatchParser [ev]",
            run(|| match BatchParser::new(&one).and_then(drain) {
                Ok(1) => Ok(()),
                Ok(n) => Err(format!("untyped: {n} events")),
                Err(e) => json_error(&e),
            }),
        ),
        (
            "core BatchParser [valid, ev]",
            run(|| match BatchParser::new(&two).and_then(drain) {
                Ok(2) => Ok(()),
                Ok(n) => Err(format!("untyped: {n} events")),
                Err(e) => json_error(&e),
            }),
        ),
        (
            "kafka structured",
            run(|| {
                let h: [(&str, &[u8]); 1] = [("content-type", b"application/cloudevents+json")];
                let mut buf = scratch();
                match kafka::parse(h, None, Some(&ev), &mut Scratch::new(&mut buf)) {
                    Ok(r) => check_data(&r.event, file),
                    Err(e) => json_error(&e),
                }
            }),
        ),
    ];
    let structured = http_map("application/cloudevents+json", false);
    out.push((
        "http_types structured",
        run(|| {
            let mut buf = scratch();
            match ossa_events::http_types::parse(&structured, &ev, &mut Scratch::new(&mut buf)) {
                Ok(Message::Event(e)) => check_data(&e, file),
                Ok(_) => Err("untyped: a batch".into()),
                Err(e) => json_error(&e),
            }
        }),
    ));
    let batched = http_map("application/cloudevents-batch+json", false);
    out.push((
        "http_types batched",
        run(|| {
            let mut buf = scratch();
            match ossa_events::http_types::parse(&batched, &two, &mut Scratch::new(&mut buf)) {
                Ok(Message::Batch(b)) => match drain(b) {
                    Ok(2) => Ok(()),
                    Ok(n) => Err(format!("untyped: {n} events")),
                    Err(e) => json_error(&e),
                },
                Ok(_) => Err("untyped: an event".into()),
                Err(e) => json_error(&e),
            }
        }),
    ));
    out
}

/// The readers of the file as JSON data on its own.
fn data_readers(file: &[u8]) -> Vec<(&'static str, Outcome)> {
    let text = std::str::from_utf8(file);
    let binary = http_map("application/json", true);
    vec![
        (
            "core http binary",
            run(|| {
                let h: Vec<(&str, &[u8])> = CE_HEADERS
                    .into_iter()
                    .chain([("content-type", &b"application/json"[..])])
                    .collect();
                let mut buf = scratch();
                match core_http::parse(h, file, &mut Scratch::new(&mut buf)) {
                    Ok(Message::Event(e)) => check_body(&e, file),
                    Ok(_) => Err("untyped: a batch".into()),
                    Err(e) => data_error(&e),
                }
            }),
        ),
        (
            "http_types binary",
            run(|| {
                let mut buf = scratch();
                match ossa_events::http_types::parse(&binary, file, &mut Scratch::new(&mut buf)) {
                    Ok(Message::Event(e)) => check_body(&e, file),
                    Ok(_) => Err("untyped: a batch".into()),
                    Err(e) => data_error(&e),
                }
            }),
        ),
        (
            "kafka binary",
            run(|| {
                let h: Vec<(&str, &[u8])> = KAFKA_HEADERS
                    .into_iter()
                    .chain([("content-type", &b"application/json"[..])])
                    .collect();
                let mut buf = scratch();
                match kafka::parse(h, None, Some(file), &mut Scratch::new(&mut buf)) {
                    Ok(r) => check_body(&r.event, file),
                    Err(e) => data_error(&e),
                }
            }),
        ),
        (
            "json::validate",
            run(|| ossa_events::json::validate(file, MAX_DATA_DEPTH).map_err(|e| e.to_string())),
        ),
        (
            "RawJson::new",
            run(|| match text {
                Ok(t) => RawJson::new(t).map(|_| ()).map_err(|e| e.to_string()),
                Err(_) => Err("not UTF-8 (a &str cannot hold it)".into()),
            }),
        ),
        (
            "builder data_json",
            run(|| match text {
                Ok(t) => Event::builder()
                    .id("1")
                    .source("/s")
                    .ty("t")
                    .data_json(t)
                    .build()
                    .map(|_| ())
                    .map_err(|e| match e.rule {
                        Rule::InvalidJson(_) => e.to_string(),
                        _ => format!("untyped: {e:?}"),
                    }),
                Err(_) => Err("not UTF-8 (a &str cannot hold it)".into()),
            }),
        ),
    ]
}

/// The readers of the file as the whole input: never an event.
fn whole_input_readers(file: &[u8]) -> Vec<(&'static str, Outcome)> {
    let structured = http_map("application/cloudevents+json", false);
    let batched = http_map("application/cloudevents-batch+json", false);
    vec![
        (
            "whole: core parse_event",
            run(|| {
                let mut buf = scratch();
                parse_event(file, &mut Scratch::new(&mut buf))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        ),
        (
            "whole: core BatchParser",
            run(|| {
                BatchParser::new(file)
                    .and_then(drain)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        ),
        (
            "whole: http_types structured",
            run(|| {
                let mut buf = scratch();
                ossa_events::http_types::parse(&structured, file, &mut Scratch::new(&mut buf))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        ),
        (
            "whole: http_types batched",
            run(|| {
                let mut buf = scratch();
                match ossa_events::http_types::parse(&batched, file, &mut Scratch::new(&mut buf)) {
                    Ok(Message::Batch(b)) => drain(b).map(|_| ()).map_err(|e| e.to_string()),
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }),
        ),
    ]
}

fn serde_accepts(doc: &[u8]) -> bool {
    serde_json::from_slice::<Value>(doc).is_ok()
}

/// Files whose decision may differ from the expectation, with the reason:
/// documented limits. (Reader name prefix, file name, why.)
const KNOWN: &[(&str, &str, &str)] = &[
    // An empty body or Kafka value is an event without data (HTTP binding
    // 3.1.2 maps data to the body; Kafka binding 3.2.2: no data is no value,
    // and the parser reads an empty value under a JSON type the same way):
    // there is no JSON text to refuse. cloudevents-sdk's HTTP binding reads
    // an empty body as no data too.
    (
        "core http binary",
        "n_structure_no_data.json",
        "an empty body is no data",
    ),
    (
        "http_types binary",
        "n_structure_no_data.json",
        "an empty body is no data",
    ),
    (
        "kafka binary",
        "n_structure_no_data.json",
        "an empty value is no data",
    ),
];

fn known(reader: &str, file: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|(r, f, _)| reader.starts_with(r) && *f == file)
        .map(|(_, _, why)| *why)
}

#[test]
fn every_json_reader_agrees_with_the_suite_and_serde_json() {
    let mut faults = String::new();
    let mut implementation_defined = String::new();
    let mut checked = 0usize;
    for case in corpus() {
        let class = case.class();
        let file = &case.bytes;
        let serde_file = serde_accepts(file);
        let serde_wrapped = serde_accepts(&wrapped(file));
        // The corpus and serde_json agree on y_ and n_ (else this test's
        // premise is wrong, not the readers).
        match class {
            Class::Yes => assert!(serde_file && serde_wrapped, "{}", case.name),
            Class::No => assert!(!serde_file && !serde_wrapped, "{}", case.name),
            Class::Either => {}
        }
        let structured = structured_readers(file)
            .into_iter()
            .map(|(r, o)| (r, o, serde_wrapped));
        let data = data_readers(file)
            .into_iter()
            .map(|(r, o)| (r, o, serde_file));
        for (reader, outcome, serde) in structured.chain(data) {
            checked += 1;
            let line = format!(
                "{:<45} {:<30} serde_json {}, ours {}\n",
                case.name,
                reader,
                if serde { "accepts" } else { "refuses" },
                outcome,
            );
            match &outcome {
                Outcome::Panicked(_) => faults.push_str(&line),
                Outcome::Refused(e) if e.starts_with("untyped") => faults.push_str(&line),
                o if o.accepted() == serde => {}
                _ if class == Class::Either => implementation_defined.push_str(&line),
                _ => match known(reader, &case.name) {
                    Some(why) => {
                        let _ = writeln!(implementation_defined, "{} ({why})", line.trim_end());
                    }
                    None => faults.push_str(&line),
                },
            }
        }
        for (reader, outcome) in whole_input_readers(file) {
            checked += 1;
            // Only an empty array is acceptable: an empty batch.
            let empty_array = matches!(
                serde_json::from_slice::<Value>(file),
                Ok(Value::Array(a)) if a.is_empty()
            );
            let ok = match &outcome {
                Outcome::Panicked(_) => false,
                Outcome::Accepted => empty_array && reader.contains("atch"),
                Outcome::Refused(_) => true,
            };
            if !ok {
                let _ = writeln!(faults, "{:<45} {:<30} ours {outcome}", case.name, reader);
            }
        }
    }
    println!(
        "implementation-defined or documented differences from serde_json:\n{implementation_defined}"
    );
    println!("{checked} decisions checked");
    assert!(faults.is_empty(), "faults:\n{faults}");
    // No `i_` file either: a number out of `f64` range (`1e400`) is valid
    // JSON text, but RFC 8259 §6 lets a reader limit the range, serde_json
    // refuses it ("number out of range") and so do the readers here; every
    // other `i_` file (lone surrogates, UTF-16, invalid UTF-8, a BOM, 500
    // levels) is refused as serde_json refuses it, and the rest taken.
    assert_eq!(
        implementation_defined
            .lines()
            .filter(|l| l.starts_with("i_"))
            .count(),
        0
    );
}

/// `d` nested arrays.
fn nested(d: usize) -> Vec<u8> {
    ("[".repeat(d) + &"]".repeat(d)).into_bytes()
}

/// The documented limit the corpus does not reach: `data` nests at most
/// `MAX_DATA_DEPTH` (128) levels in every reader. serde_json stops a
/// document at 127 levels, so a serde_json-based peer (cloudevents-sdk)
/// reads a structured event whose data nests at most 126 deep and a binary
/// body at most 127 deep: data nested 127 or 128 deep is taken here and
/// refused there. Pinned, so that a change on either side is seen.
#[test]
fn data_nesting_limit_against_serde_json() {
    assert_eq!(MAX_DATA_DEPTH, 128);
    for d in [126, 127, 128, 129] {
        let data = nested(d);
        let ours = structured_readers(&data)
            .into_iter()
            .chain(data_readers(&data))
            .filter(|(r, _)| !r.starts_with("RawJson") && !r.starts_with("builder"));
        for (reader, outcome) in ours {
            assert_eq!(
                outcome.accepted(),
                d <= MAX_DATA_DEPTH,
                "{reader} at {d}: {outcome}"
            );
        }
        assert_eq!(
            serde_accepts(&wrapped(&data)),
            d <= 126,
            "an event with data {d} deep"
        );
        assert_eq!(serde_accepts(&data), d <= 127, "data {d} deep");
    }
}

/// Whether `s` is a CloudEvents String (spec.md, Type System): no control
/// characters (U+0000-U+001F, U+007F-U+009F), no noncharacters; a `&str`
/// holds no surrogates.
fn ce_string(s: &str) -> bool {
    s.chars().all(|c| {
        let u = c as u32;
        !(u < 0x20
            || (0x7f..=0x9f).contains(&u)
            || (0xfdd0..=0xfdef).contains(&u)
            || u & 0xfffe == 0xfffe)
    })
}

/// The strings of the corpus (`*_string_*` files that are one bracketed
/// value, `[…]`) as the value of `subject`: the unescaping path. Where
/// serde_json reads the event, ours reads the same text or refuses it by
/// the String rule, which serde_json's text then breaks; where serde_json
/// refuses it, ours refuses it as JSON.
#[test]
fn corpus_strings_as_an_attribute_are_read_as_serde_json_reads_them() {
    let mut seen = 0;
    for case in corpus() {
        let trimmed = case.bytes.trim_ascii();
        let Some(inner) = trimmed
            .strip_prefix(b"[")
            .and_then(|t| t.strip_suffix(b"]"))
        else {
            continue;
        };
        if !case.name.contains("_string_") {
            continue;
        }
        seen += 1;
        let doc = concat(&[
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"#,
            inner,
            b"}",
        ]);
        let theirs = serde_json::from_slice::<Value>(&doc);
        let mut buf = scratch();
        let ours = catch_unwind(AssertUnwindSafe(|| {
            parse_event(&doc, &mut Scratch::new(&mut buf)).map(|e| e.subject().map(str::to_owned))
        }))
        .unwrap_or_else(|_| panic!("{}: panicked", case.name));
        match (&theirs, &ours) {
            (Ok(v), Ok(subject)) => {
                assert_eq!(v["subject"].as_str(), subject.as_deref(), "{}", case.name);
                assert!(subject.as_deref().is_some_and(ce_string), "{}", case.name);
            }
            (Ok(v), Err(ParseError::Invalid(e))) => {
                let s = v["subject"].as_str();
                assert!(
                    e.attribute == Attribute::Subject
                        && e.rule == Rule::InvalidCharacter
                        && s.is_some_and(|s| !ce_string(s)),
                    "{}: {e:?} for {s:?}",
                    case.name
                );
            }
            (Err(_), Err(ParseError::Json(_))) => {}
            _ => panic!("{}: serde_json {theirs:?}, ours {ours:?}", case.name),
        }
    }
    assert_eq!(seen, 85, "the bracketed string files");
}
