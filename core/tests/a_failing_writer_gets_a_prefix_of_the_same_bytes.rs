//! Whatever the payload or the event, and wherever the buffers in front of
//! the writer fill up (the payload writer's, the gathering buffer, the
//! caller's slice written in place), every encoder writes the same bytes:
//! a payload `serde_json`'s, an event the same through every path; and a
//! writer that fails or accepts zero bytes part way has received exactly
//! the bytes before that point and reports its own error (or `WriteZero`).
//! `to_slice` writes nothing past the length it returns and fails cleanly
//! on any slice shorter than the event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events_core::attr::check_extension_name;
use ossa_events_core::format::json;
use ossa_events_core::io::{SliceFull, SliceWriter, WriteError};
use ossa_events_core::json::ser::{SerError, to_writer, write_payload};
use ossa_events_core::{EncodeError, Event, ExtValue, Timestamp, ossa};
use proptest::prelude::*;

mod common;
use common::Down;
use serde::ser::{Serialize, SerializeStruct, SerializeStructVariant, Serializer};
use serde_json::Value;

/// Takes at most `chunk` bytes a call and `limit` in all; past that it
/// fails, or accepts zero bytes (`zero`).
struct Limited {
    out: Vec<u8>,
    limit: usize,
    chunk: usize,
    zero: bool,
}

impl Limited {
    fn new(limit: usize, chunk: usize, zero: bool) -> Self {
        Limited {
            out: Vec::new(),
            limit,
            chunk,
            zero,
        }
    }
}

impl embedded_io::ErrorType for Limited {
    type Error = Down;
}

impl embedded_io::Write for Limited {
    fn write(&mut self, b: &[u8]) -> Result<usize, Down> {
        if b.is_empty() {
            return Ok(0);
        }
        let room = self.limit - self.out.len();
        if room == 0 {
            return if self.zero { Ok(0) } else { Err(Down) };
        }
        let n = b.len().min(self.chunk).min(room);
        self.out.extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), Down> {
        Ok(())
    }
}

/// Limits around every buffer boundary that matters, without trying all.
fn limits(len: usize) -> Vec<usize> {
    let mut l: Vec<usize> = (0..len).step_by((len / 40).max(1)).collect();
    l.extend([len.saturating_sub(1)]);
    l.extend((120..=136).chain(250..=262).filter(|&n| n < len));
    l
}

fn chunk() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), 2usize..300, Just(usize::MAX)]
}

// ---- payloads ---------------------------------------------------------------------------------

/// Strings around the 16-byte fast path, past the 128/256-byte buffers,
/// with and without escapes, non-ASCII, empty.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z]{0,20}",
        2 => "[a-zA-Z0-9 ]{14,18}",
        2 => "[\\x00-\\x7f]{0,40}",
        2 => "\\PC{0,30}",
        1 => "[a-z\"\\\\\\x01\\n]{0,300}",
        1 => "[a-z]{100,400}",
        1 => "[a-zé€😀]{0,200}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Number(i.into())),
        any::<u64>().prop_map(|i| Value::Number(i.into())),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        string().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 200, 10, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..10).prop_map(Value::Array),
            proptest::collection::vec((string(), inner), 0..10)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Structs and struct variants with any member names (serde's derive gives
/// only identifiers; `serde_json` writes them as maps).
#[derive(Debug, Clone)]
enum Shape {
    Struct(Vec<(&'static str, Shape)>),
    Variant(&'static str, Vec<(&'static str, Shape)>),
    Unit(&'static str),
    Str(String),
    Value(Value),
}

impl Serialize for Shape {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Shape::Struct(fields) => {
                let mut st = s.serialize_struct("S", fields.len())?;
                for (k, v) in fields {
                    st.serialize_field(k, v)?;
                }
                st.end()
            }
            Shape::Variant(name, fields) => {
                let mut st = s.serialize_struct_variant("E", 0, name, fields.len())?;
                for (k, v) in fields {
                    st.serialize_field(k, v)?;
                }
                st.end()
            }
            Shape::Unit(name) => s.serialize_unit_variant("E", 1, name),
            Shape::Str(v) => s.serialize_str(v),
            Shape::Value(v) => v.serialize(s),
        }
    }
}

/// A member name: `serialize_field` takes `&'static str`.
fn name() -> impl Strategy<Value = &'static str> {
    string().prop_map(|s| &*Box::leak(s.into_boxed_str()))
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        3 => string().prop_map(Shape::Str),
        1 => name().prop_map(Shape::Unit),
        1 => json_value().prop_map(Shape::Value),
    ];
    leaf.prop_recursive(5, 200, 12, |inner| {
        prop_oneof![
            3 => proptest::collection::vec((name(), inner.clone()), 0..12).prop_map(Shape::Struct),
            1 => (name(), proptest::collection::vec((name(), inner), 0..8))
                .prop_map(|(n, f)| Shape::Variant(n, f)),
        ]
    })
}

/// `write_payload` and `to_writer` write `serde_json`'s bytes, and a writer
/// that stops part way got exactly the bytes before it stopped.
fn payload_case<T: Serialize>(v: &T, chunk: usize) -> Result<(), TestCaseError> {
    let want = serde_json::to_vec(v).unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut w = Limited::new(usize::MAX, chunk, false);
    prop_assert_eq!(write_payload(&mut w, v), Ok(()));
    prop_assert_eq!(text(&w.out), text(&want));
    let mut w = Limited::new(usize::MAX, chunk, false);
    prop_assert_eq!(to_writer(&mut w, v), Ok(()));
    prop_assert_eq!(text(&w.out), text(&want));
    for limit in limits(want.len()) {
        for zero in [false, true] {
            let err = SerError::Write(if zero {
                WriteError::WriteZero
            } else {
                WriteError::Io(Down)
            });
            let mut w = Limited::new(limit, chunk, zero);
            prop_assert_eq!(
                write_payload(&mut w, v),
                Err(err.clone()),
                "limit {}",
                limit
            );
            prop_assert_eq!(&w.out[..], &want[..limit], "write_payload, limit {}", limit);
            let mut w = Limited::new(limit, chunk, zero);
            prop_assert_eq!(to_writer(&mut w, v), Err(err), "limit {}", limit);
            prop_assert_eq!(&w.out[..], &want[..limit], "to_writer, limit {}", limit);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn payload_values_are_serde_jsons_bytes_up_to_where_the_writer_stops(
        v in json_value(),
        chunk in chunk(),
    ) {
        payload_case(&v, chunk)?;
    }

    #[test]
    fn payload_structs_with_any_member_names_are_serde_jsons_bytes(
        v in shape(),
        chunk in chunk(),
    ) {
        payload_case(&v, chunk)?;
    }
}

// ---- events -----------------------------------------------------------------------------------

/// Valid String values around the 16-byte fast path and past the 256-byte
/// buffer, some needing escapes.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9/.:-]{1,40}",
        3 => "[a-z]{0,20}[\"\\\\é€😀][a-z]{0,20}",
        2 => "[ -~]{1,80}",
        1 => "[a-z0-9]{200,300}",
    ]
}

fn time() -> impl Strategy<Value = String> {
    "20[0-9]{2}-0[1-9]-1[0-9]T[01][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,12})?(Z|[+-]0[0-9]:[0-5][0-9])"
}

#[derive(Debug, Clone)]
enum Ext {
    Str(String),
    Int(i32),
    Bool(bool),
    Uri,
    UriRef(String),
    Time(String),
    Bin(Vec<u8>),
}

fn ext() -> impl Strategy<Value = Ext> {
    prop_oneof![
        4 => value().prop_map(Ext::Str),
        1 => any::<i32>().prop_map(Ext::Int),
        1 => any::<bool>().prop_map(Ext::Bool),
        1 => Just(Ext::Uri),
        1 => "/[a-z0-9/._~-]{0,20}".prop_map(Ext::UriRef),
        1 => time().prop_map(Ext::Time),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Ext::Bin),
    ]
}

/// The OSSA setters, any order, any repeats; or the same names through the
/// generic setter.
#[derive(Debug, Clone)]
enum Ossa {
    Setter(usize, String),
    Generic(usize, String),
    Fill(usize, String),
}

fn ossa() -> impl Strategy<Value = Ossa> {
    prop_oneof![
        3 => (0usize..4, value()).prop_map(|(s, v)| Ossa::Setter(s, v)),
        1 => (0usize..4, value()).prop_map(|(s, v)| Ossa::Generic(s, v)),
        1 => (0usize..4, value()).prop_map(|(s, v)| Ossa::Fill(s, v)),
    ]
}

#[derive(Debug, Clone)]
enum Payload {
    Json(Value),
    Text(String),
    Binary(Vec<u8>),
    Serialize(Value),
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        json_value().prop_map(Payload::Json),
        value().prop_map(Payload::Text),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Payload::Binary),
        json_value().prop_map(Payload::Serialize),
    ]
}

const OSSA: [&str; 4] = [
    ossa::EXT_AGENT_ID,
    ossa::EXT_INTERACTION_ID,
    ossa::EXT_TRACE_ID,
    ossa::EXT_SPAN_ID,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_event_encoder_writes_the_same_bytes_up_to_where_the_writer_stops(
        id in value(),
        ty in value(),
        subject in proptest::option::of(value()),
        time in proptest::option::of(time()),
        exts in proptest::collection::vec(("[a-z][a-z0-9]{0,12}", ext()), 0..6),
        ossas in proptest::collection::vec(ossa(), 0..8),
        data in proptest::option::of(payload()),
        chunk in chunk(),
    ) {
        let json_text = match &data {
            Some(Payload::Json(v)) => serde_json::to_string_pretty(v).unwrap(),
            _ => String::new(),
        };
        let mut b = Event::builder().id(&id).source("/s").ty(&ty);
        if let Some(s) = &subject {
            b = b.subject(s);
        }
        if let Some(t) = &time {
            b = b.time(Timestamp::parse(t).unwrap());
        }
        for (name, v) in &exts {
            if OSSA.contains(&name.as_str())
                || name == "traceparent"
                || name == "tracestate"
                || check_extension_name(name).is_err()
            {
                continue;
            }
            b = b.extension(name, match v {
                Ext::Str(s) => ExtValue::String(s),
                Ext::Int(i) => ExtValue::Integer(*i),
                Ext::Bool(x) => ExtValue::Boolean(*x),
                Ext::Uri => ExtValue::Uri("https://example.com/p"),
                Ext::UriRef(s) => ExtValue::UriRef(s),
                Ext::Time(t) => ExtValue::Timestamp(Timestamp::parse(t).unwrap()),
                Ext::Bin(x) => ExtValue::Binary(x),
            });
        }
        for o in &ossas {
            b = match o {
                Ossa::Setter(0, v) => b.ossa_agent_id(v),
                Ossa::Setter(1, v) => b.ossa_interaction_id(v),
                Ossa::Setter(2, v) => b.ossa_trace_id(v),
                Ossa::Setter(_, v) => b.ossa_span_id(v),
                Ossa::Generic(slot, v) => b.extension_str(OSSA[*slot], v),
                Ossa::Fill(slot, v) => {
                    let mut ctx = ossa::Context::default();
                    match slot {
                        0 => ctx.agent_id = Some(v),
                        1 => ctx.interaction_id = Some(v),
                        2 => ctx.trace_id = Some(v),
                        _ => ctx.span_id = Some(v),
                    }
                    b.fill_ossa_context(&ctx);
                    b
                }
            };
        }
        b = match &data {
            None => b,
            Some(Payload::Json(_)) => b.data_json(&json_text),
            Some(Payload::Text(t)) => b.data_text("text/plain", t),
            Some(Payload::Binary(x)) => b.data_binary("application/octet-stream", x),
            Some(Payload::Serialize(v)) => b.data_serialize(v),
        };
        // The OSSA trace and span ids are not hex here: no `traceparent`
        // can be derived, and none is set, so every event builds.
        let ev = b.build().unwrap();

        // `to_slice` writes nothing past the length it returns.
        let mut big = vec![0xA5u8; 16384];
        let n = json::to_slice(&ev, &mut big).unwrap();
        let full = big[..n].to_vec();
        prop_assert!(big[n..].iter().all(|&b| b == 0xA5), "to_slice wrote past {}", n);
        let parsed: Value = serde_json::from_slice(&full).unwrap();
        prop_assert_eq!(parsed["id"].as_str(), Some(id.as_str()));
        for (slot, name) in OSSA.iter().enumerate() {
            // A fill sets only what is not set yet, when it runs.
            let expected = ossas.iter().fold(None, |cur: Option<&str>, o| match o {
                Ossa::Setter(s, v) | Ossa::Generic(s, v) if *s == slot => Some(v.as_str()),
                Ossa::Fill(s, v) if *s == slot => cur.or(Some(v.as_str())),
                _ => cur,
            });
            prop_assert_eq!(parsed[*name].as_str(), expected, "{}", name);
        }
        if let Some(Payload::Serialize(v)) = &data {
            let member = [&b",\"data\":"[..], &serde_json::to_vec(v).unwrap(), b"}"].concat();
            prop_assert!(full.ends_with(&member), "data is serde_json's bytes");
        }

        // Exactly the room it needs, and any less.
        let mut exact = vec![0u8; n];
        prop_assert_eq!(json::to_slice(&ev, &mut exact), Ok(n));
        prop_assert_eq!(&exact, &full);
        for size in limits(n) {
            let mut short = vec![0u8; size];
            prop_assert_eq!(
                json::to_slice(&ev, &mut short),
                Err(EncodeError::Io(SliceFull)),
                "{} bytes of {}", size, n
            );
        }

        // The gathered paths and the length.
        let mut out = vec![0u8; 16384];
        let mut w = SliceWriter::new(&mut out);
        json::write_json(&ev, &mut w).unwrap();
        prop_assert_eq!(w.written(), &full[..]);
        prop_assert_eq!(json::encoded_len(&ev), Ok(n));
        let line = [&full[..], b"\n"].concat();
        let batch = [b"[", &full[..], b",", &full[..], b"]"].concat();
        let mut w = Limited::new(usize::MAX, chunk, false);
        json::write_jsonl(&ev, &mut w).unwrap();
        prop_assert_eq!(&w.out, &line);
        let mut w = Limited::new(usize::MAX, chunk, false);
        json::write_batch([&ev, &ev], &mut w).unwrap();
        prop_assert_eq!(&w.out, &batch);

        // A writer that stops part way has the bytes before that point.
        for zero in [false, true] {
            let err = || if zero { EncodeError::WriteZero } else { EncodeError::Io(Down) };
            for limit in limits(line.len()) {
                let mut w = Limited::new(limit, chunk, zero);
                let r = json::write_json(&ev, &mut w);
                if limit < n {
                    prop_assert_eq!(r, Err(err()), "write_json, limit {}", limit);
                    prop_assert_eq!(&w.out[..], &full[..limit], "write_json, limit {}", limit);
                }
                let mut w = Limited::new(limit, chunk, zero);
                prop_assert_eq!(json::write_jsonl(&ev, &mut w), Err(err()), "limit {}", limit);
                prop_assert_eq!(&w.out[..], &line[..limit], "write_jsonl, limit {}", limit);
            }
            for limit in limits(batch.len()) {
                let mut w = Limited::new(limit, chunk, zero);
                prop_assert_eq!(json::write_batch([&ev, &ev], &mut w), Err(err()));
                prop_assert_eq!(&w.out[..], &batch[..limit], "write_batch, limit {}", limit);
            }
        }
    }
}
