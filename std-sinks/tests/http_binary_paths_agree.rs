//! The three ways an event travels in HTTP binary mode agree, on any event:
//! `http_types::encode` (for hyper, axum, reqwest callers), the `HttpSink`'s
//! binary mode (`Encoded::for_sink`, sent over a real loopback socket) and
//! the built-in receiver, which reads with `http_types::parse` as the axum
//! extractor does. The events favour what HTTP binding §3.1.3.2 is about:
//! strings with space, `"`, `%`, `\` and non-ASCII of every UTF-8 length in
//! every string attribute and extension, every extension type (Integers at
//! the `i32` limits), times with offsets and sub-second digits, and data as
//! JSON, text, bytes and Base64, with and without `datacontenttype`.
//!
//! For each event: both encoders write the same `ce-` headers, the same
//! `Content-Type` and the same body (or both fall back to structured mode);
//! every `ce-` value is visible ASCII without space, `"` or a `%` that does
//! not start an escape; `http_types::parse` of that message, and the event
//! the receiver got from the sink, are the event sent (extensions compared
//! by canonical string, as binary mode carries them).
#![cfg(all(feature = "http", feature = "http-types", feature = "receiver"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use ossa_events::format::json;
use ossa_events::http_types::{self, ContentMode, Message};
use ossa_events::receiver::{Receiver, ReceiverConfig, ReceiverHandle};
use ossa_events::sink::{Encoded, Encoding, HttpMode, HttpSink, Sink};
use ossa_events::{Data, Event, ExtValue, Scratch, Timestamp, parse};
use proptest::prelude::*;

/// A string of printable ASCII (space, `"`, `%`, `\` favoured) and
/// non-ASCII of one to four UTF-8 bytes.
fn ce_string(min: usize, max: usize) -> impl Strategy<Value = String> {
    const HARD: [char; 12] = [
        ' ', '"', '%', '\\', 'é', '€', '😀', '\u{a0}', '\u{2028}', '中', ',', ';',
    ];
    prop::collection::vec((0u8..3, any::<u32>()), min..=max).prop_map(|units| {
        units
            .into_iter()
            .map(|(sel, r)| match sel {
                0 => HARD[r as usize % HARD.len()],
                _ => char::from(0x20 + (r % 0x5f) as u8),
            })
            .collect()
    })
}

/// Times with offsets, leap seconds and 0 to 9 fraction digits.
fn time() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "2018-04-05T17:31:00Z",
        "2018-04-05T17:31:00.5+02:00",
        "2018-04-05T17:31:00.123456789-09:30",
        "2018-04-05T17:31:00.000Z",
        "2016-12-31T23:59:60Z",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z",
        "2018-04-05T17:31:00-00:00",
    ])
}

#[derive(Debug, Clone)]
enum Ext {
    String(String),
    Integer(i32),
    Boolean(bool),
    Uri(&'static str),
    UriRef(&'static str),
    Timestamp(&'static str),
    Binary(Vec<u8>),
}

fn ext() -> impl Strategy<Value = Ext> {
    prop_oneof![
        ce_string(0, 12).prop_map(Ext::String),
        prop_oneof![Just(i32::MIN), Just(i32::MAX), Just(0), any::<i32>()].prop_map(Ext::Integer),
        any::<bool>().prop_map(Ext::Boolean),
        prop::sample::select(vec![
            "https://example.com/a?b=c%20d",
            "urn:isbn:0451450523",
            "mailto:a@example.com",
        ])
        .prop_map(Ext::Uri),
        prop::sample::select(vec!["/a%25b", "../x?y#z", "//h/p", "a%C3%A9"]).prop_map(Ext::UriRef),
        time().prop_map(Ext::Timestamp),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Ext::Binary),
    ]
}

#[derive(Debug, Clone)]
enum GenData {
    None,
    Json(&'static str, bool),
    Text(&'static str, String),
    Binary(Option<&'static str>, Vec<u8>),
    /// Bytes as `data_base64` gives them: Base64 text.
    Base64(Option<&'static str>, String),
}

fn data() -> impl Strategy<Value = GenData> {
    prop_oneof![
        Just(GenData::None),
        (
            prop::sample::select(vec![r#"{"a":[1,2.5,"x y"]}"#, "null", r#""t""#, "0"]),
            any::<bool>()
        )
            .prop_map(|(j, ct)| GenData::Json(j, ct)),
        (
            prop::sample::select(vec![
                "text/plain",
                "text/plain; charset=utf-8",
                "application/json",
                "application/xml"
            ]),
            ce_string(0, 16)
        )
            .prop_map(|(ct, s)| GenData::Text(ct, s)),
        (
            prop::option::of(prop::sample::select(vec![
                "application/octet-stream",
                "application/json",
                "text/plain",
            ])),
            prop::collection::vec(any::<u8>(), 0..24)
        )
            .prop_map(|(ct, v)| GenData::Binary(ct, v)),
        (
            prop::option::of(prop::sample::select(vec![
                "application/octet-stream",
                "application/json",
            ])),
            prop::collection::vec(any::<u8>(), 0..24)
        )
            .prop_map(|(ct, v)| GenData::Base64(ct, ExtValue::Binary(&v).canonical().to_string())),
    ]
}

#[derive(Debug, Clone)]
struct Spec {
    id: String,
    source: &'static str,
    ty: String,
    subject: Option<String>,
    dataschema: Option<&'static str>,
    time: Option<&'static str>,
    exts: Vec<(String, Ext)>,
    data: GenData,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        ce_string(1, 12),
        prop::sample::select(vec![
            "/s",
            "/a%20b",
            "urn:x:y",
            "https://ex.com/p?q=1&r=%C3%A9",
        ]),
        ce_string(1, 12),
        prop::option::of(ce_string(1, 12)),
        prop::option::of(prop::sample::select(vec![
            "https://example.com/schema.json",
            "urn:ossa:schema:1",
        ])),
        prop::option::of(time()),
        prop::collection::btree_map("[a-z0-9]{1,8}", ext(), 0..=6),
        data(),
    )
        .prop_map(
            |(id, source, ty, subject, dataschema, time, exts, data)| Spec {
                id,
                source,
                ty,
                subject,
                dataschema,
                time,
                exts: exts
                    .into_iter()
                    .filter(|(n, _)| !ossa_events::attr::is_reserved_name(n))
                    .collect(),
                data,
            },
        )
}

impl Spec {
    fn event(&self) -> Event<'_> {
        let mut b = Event::builder()
            .id(&self.id)
            .source(self.source)
            .ty(&self.ty);
        if let Some(s) = &self.subject {
            b = b.subject(s);
        }
        if let Some(s) = self.dataschema {
            b = b.dataschema(s);
        }
        if let Some(t) = self.time {
            b = b.time_str(t);
        }
        for (name, v) in &self.exts {
            let v = match v {
                Ext::String(s) => ExtValue::String(s),
                Ext::Integer(i) => ExtValue::Integer(*i),
                Ext::Boolean(v) => ExtValue::Boolean(*v),
                Ext::Uri(s) => ExtValue::Uri(s),
                Ext::UriRef(s) => ExtValue::UriRef(s),
                Ext::Timestamp(t) => ExtValue::Timestamp(Timestamp::parse(t).unwrap()),
                Ext::Binary(v) => ExtValue::Binary(v),
            };
            b = b.extension(name, v);
        }
        b = match &self.data {
            GenData::None => b,
            GenData::Json(raw, true) => b.data_json(raw),
            GenData::Json(raw, false) => b.data(Data::Json(raw)),
            GenData::Text(ct, s) => b.data_text(ct, s),
            GenData::Binary(Some(ct), v) => b.data_binary(ct, v),
            GenData::Binary(None, v) => b.data(Data::Binary(v)),
            GenData::Base64(Some(ct), s) => b.datacontenttype(ct).data(Data::Base64(s)),
            GenData::Base64(None, s) => b.data(Data::Base64(s)),
        };
        b.build().expect("generated events are valid")
    }
}

/// A receiver that keeps the JSON of every event it is handed, and a
/// binary-mode `HttpSink` that delivers to it; one of each for all cases.
struct Wire {
    got: Arc<Mutex<Vec<Vec<u8>>>>,
    sink: Mutex<HttpSink>,
    _receiver: ReceiverHandle,
}

fn wire() -> &'static Wire {
    static WIRE: OnceLock<Wire> = OnceLock::new();
    WIRE.get_or_init(|| {
        let got: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let keep = got.clone();
        let receiver = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())
            .unwrap()
            .spawn(move |ev: &Event<'_>| keep.lock().unwrap().push(json::to_vec(ev).unwrap()))
            .unwrap();
        let sink = HttpSink::builder(format!("http://{}/events", receiver.local_addr()))
            .mode(HttpMode::Binary)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Wire {
            got,
            sink: Mutex::new(sink),
            _receiver: receiver,
        }
    })
}

/// Whether `v` is a `ce-` value as §3.1.3.2 has it written: visible ASCII,
/// no space or `"`, and every `%` the start of an escape.
fn well_encoded(v: &[u8]) -> bool {
    v.iter().enumerate().all(|(i, &b)| match b {
        b'%' => v
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
        b'"' => false,
        _ => (0x21..0x7f).contains(&b),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
    ))]

    #[test]
    fn http_types_the_http_sink_and_the_receiver_agree_on_any_event(spec in spec()) {
        let ev = spec.event();

        // `http_types`: headers, body, and its own reading of them.
        let mut headers = HeaderMap::new();
        let body = http_types::encode(&ev, ContentMode::Binary, &mut headers).unwrap();
        let structured = headers
            .get("content-type")
            .is_some_and(|ct| ct == http_types::STRUCTURED_CONTENT_TYPE);
        // Binary mode states the type that JSON data without one implies
        // (`Content-Type: application/json`): read back, it is set.
        // And bytes under a JSON type are JSON text, read back as such
        // (bytes that are not JSON went structured).
        let mut expected = match ev.effective_content_type() {
            Some(ct) if !structured && ev.datacontenttype().is_none() => {
                ev.to_builder().datacontenttype(ct).build().unwrap()
            }
            _ => ev.clone(),
        };
        if let (false, true, Some(Data::Binary(_) | Data::Base64(_))) = (
            structured,
            ev.datacontenttype().is_some() && ev.data_is_json(),
            ev.data(),
        ) {
            let text = std::str::from_utf8(&body).unwrap();
            expected = expected.to_builder().data(Data::Json(text)).build().unwrap();
        }
        let ev = &expected;
        for (n, v) in &headers {
            if n.as_str().starts_with("ce-") {
                prop_assert!(well_encoded(v.as_bytes()), "{n}: {v:?}");
            }
        }
        let mut buf = vec![0u8; body.len() + 4096];
        match http_types::parse(&headers, &body, &mut Scratch::new(&mut buf)) {
            Ok(Message::Event(back)) => prop_assert!(back.same_as(ev, false), "{back:?}\n{ev:?}"),
            other => prop_assert!(false, "{other:?}"),
        }

        // The sink's encoding of it: the same message.
        let w = wire();
        let mut sink = w.sink.lock().unwrap();
        let enc = Encoded::for_sink(&spec.event(), &*sink).unwrap();
        if structured {
            prop_assert_eq!(enc.encoding(), Encoding::Json);
        } else {
            prop_assert_eq!(enc.encoding(), Encoding::HttpBinary);
            let mut theirs = HeaderMap::new();
            for (n, v) in enc.headers() {
                theirs.append(HeaderName::try_from(n).unwrap(), HeaderValue::try_from(v).unwrap());
            }
            if let Some(ct) = enc.content_type() {
                theirs.append("content-type", HeaderValue::try_from(ct).unwrap());
            }
            prop_assert_eq!(&theirs, &headers);
            prop_assert_eq!(enc.body(), &body[..]);
        }

        // Sent by the sink, read by the receiver: the event sent.
        w.got.lock().unwrap().clear();
        sink.send(std::slice::from_ref(&enc)).unwrap();
        drop(sink);
        let got = std::mem::take(&mut *w.got.lock().unwrap());
        prop_assert_eq!(got.len(), 1);
        let mut buf = vec![0u8; got[0].len()];
        let back = parse::json::parse_event(&got[0], &mut Scratch::new(&mut buf)).unwrap();
        prop_assert!(back.same_as(ev, false), "{back:?}\n{ev:?}");
    }
}
