//! Kafka records between us and `cloudevents-sdk` 0.9's own Kafka binding
//! (`cloudevents::binding::rdkafka`), through a real broker (`tansu`,
//! in-memory storage, started per test on a free loopback port and killed
//! when its guard drops):
//!
//! * ours → sdk: events sent by our `KafkaSink` (binary and structured mode,
//!   through an `Emitter`) are read back with an rdkafka 0.38 consumer and
//!   decoded by the sdk's `MessageExt::to_event`;
//! * sdk → ours: events the sdk puts into records (`MessageRecord::from_event`
//!   for binary mode, `StructuredDeserializer::deserialize_structured` into a
//!   `MessageRecord` for structured mode), produced with rdkafka 0.38's
//!   `BaseRecordExt::message_record`, are read back by our rdkafka and parsed
//!   by our `parse::kafka::parse`.
//!
//! The events carry every attribute (`dataschema`, `subject`, a `time` with
//! fractional seconds and a `+05:30` offset), extensions of each type the
//! sdk has (string, integer, boolean), JSON, text and binary data and none,
//! and non-ASCII text in attributes and data. The Kafka binding (§3.2.3)
//! carries header values as UTF-8, with no percent-encoding: every string
//! must arrive as it was.
//!
//! Runs with `--features kafka` (it builds librdkafka, with cmake: the sdk's
//! rdkafka binding turns on rdkafka-sys' `cmake-build`).
#![cfg(feature = "kafka")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../std-sinks/tests/common/tansu.rs"]
#[allow(dead_code)]
mod tansu;

mod sdk_compare;

use std::time::{Duration, Instant};

use cloudevents::binding::rdkafka::{BaseRecordExt as _, MessageExt as _, MessageRecord};
use cloudevents::event::ExtensionValue;
use cloudevents::message::StructuredDeserializer as _;
use cloudevents::{AttributesReader as _, Event as SdkEvent};
use ossa_events::sink::{KafkaMode, KafkaSink};
use ossa_events::{Data, Emitter, Event, ExtValue, Scratch, Timestamp};
use rdkafka::consumer::Consumer as _;
use rdkafka::message::{Headers as _, Message as _};
use rdkafka_sdk::consumer::Consumer as _;
use rdkafka_sdk::producer::Producer as _;
use sdk_compare::{
    BINARY, JSON_DATA, TEXT_DATA, TIME, norm_ours, norm_sdk, same_instant, sdk_events,
};
use tansu::Tansu;

const LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// Our events: every attribute and each extension type on the first (JSON
/// data), then text, binary and no data.
fn ours() -> Vec<Event<'static>> {
    let t = Timestamp::parse(TIME).unwrap();
    vec![
        Event::builder()
            .id("e-json ✓ 100%")
            .source("https://example.com/agents/researcher?x=1")
            .ty("ai.ossa.tool.called")
            .dataschema("https://example.com/schemas/call.json")
            .subject("Grüße € 😀 \"quoted\" 100% %20")
            .time(t)
            .extension("extstring", ExtValue::String("naïve ✓ \"q\" 100%"))
            .extension("extint", ExtValue::Integer(-2_147_483_648))
            .extension("exttrue", ExtValue::Boolean(true))
            .extension("extfalse", ExtValue::Boolean(false))
            .data_json(JSON_DATA)
            .build()
            .unwrap(),
        Event::builder()
            .id("e-text")
            .source("urn:ossa:test")
            .ty("ai.ossa.note")
            .subject("plain")
            .time(t)
            .extension("extint", ExtValue::Integer(7))
            .data_text("text/plain; charset=utf-8", TEXT_DATA)
            .build()
            .unwrap(),
        Event::builder()
            .id("e-bin")
            .source("/s")
            .ty("ai.ossa.blob")
            .data_binary("application/octet-stream", BINARY)
            .build()
            .unwrap(),
        Event::builder()
            .id("e-none")
            .source("/s")
            .ty("ai.ossa.ping")
            .subject("ä")
            .build()
            .unwrap(),
        Event::builder()
            .id("e-type-only")
            .source("/s")
            .ty("ai.ossa.ping")
            .datacontenttype("application/xml")
            .build()
            .unwrap(),
    ]
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// `ours` and `sdk` are the same event. `binary`: it went in binary mode,
/// where every extension is a string and the content type is the record's
/// `content-type` (the effective type of our data).
fn assert_same(what: &str, ours: &Event<'_>, sdk: &SdkEvent, binary: bool) {
    assert_eq!(sdk.specversion().as_str(), "1.0", "{what}");
    assert_eq!(sdk.id(), ours.id(), "{what}: id");
    assert_eq!(sdk.source(), ours.source(), "{what}: source");
    assert_eq!(sdk.ty(), ours.ty(), "{what}: type");
    assert_eq!(sdk.subject(), ours.subject(), "{what}: subject");
    assert_eq!(
        sdk.dataschema().map(|u| u.as_str()),
        ours.dataschema(),
        "{what}: dataschema"
    );
    match (ours.time(), sdk.time()) {
        (None, None) => {}
        (Some(a), Some(b)) => assert!(same_instant(a, b), "{what}: time {a} vs {b}"),
        (a, b) => panic!("{what}: time {a:?} vs {b:?}"),
    }
    let ct = if binary {
        ossa_events::format::binary::content_type(ours)
    } else {
        ours.datacontenttype()
    };
    assert_eq!(sdk.datacontenttype(), ct, "{what}: datacontenttype");
    assert_eq!(
        sdk.iter_extensions().count(),
        ours.extensions().len(),
        "{what}: extension count"
    );
    for e in ours.extensions() {
        let got = sdk
            .extension(e.name)
            .unwrap_or_else(|| panic!("{what}: extension {} lost", e.name));
        let canonical = e.value.canonical().to_string();
        if binary {
            // A header holds the canonical string, whichever side typed it.
            assert_eq!(got.to_string(), canonical, "{what}: extension {}", e.name);
            continue;
        }
        let want = match e.value {
            // In the JSON format Integer and Boolean keep their JSON type.
            ExtValue::Integer(i) => ExtensionValue::Integer(i64::from(i)),
            ExtValue::Boolean(b) => ExtensionValue::Boolean(b),
            _ => ExtensionValue::String(canonical),
        };
        assert_eq!(got, &want, "{what}: extension {}", e.name);
    }
    assert_eq!(norm_sdk(sdk), norm_ours(ours), "{what}: data");
}

// ---------------------------------------------------------------------------
// The broker's records
// ---------------------------------------------------------------------------

/// A record read back: key, value, headers in order.
#[derive(Debug)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
}

/// Reads `want` records of partition 0 of `topic` with our rdkafka (0.39).
fn read_back(bootstrap: &str, topic: &str, want: usize) -> Vec<Rec> {
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ossa-events-sdk-interop")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let end = Instant::now() + LIMIT;
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < end {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => out.push(Rec {
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or(&[]).to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(e)) => panic!("consumer: {e}"),
            None => {}
        }
    }
    assert_eq!(out.len(), want, "records of {topic}");
    out
}

/// Reads `want` records of partition 0 of `topic` with the sdk's rdkafka
/// (0.38) and decodes each with the sdk's `MessageExt::to_event`.
fn read_back_with_sdk(bootstrap: &str, topic: &str, want: usize) -> Vec<SdkEvent> {
    let consumer: rdkafka_sdk::consumer::BaseConsumer = rdkafka_sdk::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ossa-events-sdk-interop")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = rdkafka_sdk::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka_sdk::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let end = Instant::now() + LIMIT;
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < end {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let ev = m.to_event().unwrap_or_else(|e| {
                    panic!("record {} of {topic}: the sdk refused it: {e}", out.len())
                });
                out.push(ev);
            }
            Some(Err(e)) => panic!("consumer: {e}"),
            None => {}
        }
    }
    assert_eq!(out.len(), want, "records of {topic}");
    out
}

/// Sends `evs` through our `KafkaSink` in `mode`, every one delivered.
fn send_with_our_sink(bootstrap: &str, topic: &str, mode: KafkaMode, evs: &[Event<'_>]) {
    let sink = KafkaSink::builder(bootstrap, topic)
        .mode(mode)
        .delivery_timeout(LIMIT)
        .build()
        .unwrap();
    let em = Emitter::builder("/agents/kafka-sdk-interop")
        .sink(sink)
        .flush_timeout(LIMIT)
        .build()
        .unwrap();
    for ev in evs {
        em.emit_event(ev).unwrap();
    }
    let report = em.flush().unwrap();
    assert_eq!(
        (report.delivered, report.failed, report.pending),
        (evs.len() as u64, 0, 0),
        "{mode:?}"
    );
    em.shutdown().unwrap();
}

fn ours_read_by_sdk(mode: KafkaMode) {
    let broker = Tansu::start();
    let topic = "ours-to-sdk";
    broker.create_topic(topic, 1);
    let sent = ours();
    send_with_our_sink(&broker.bootstrap(), topic, mode, &sent);
    let got = read_back_with_sdk(&broker.bootstrap(), topic, sent.len());
    for (ours, sdk) in sent.iter().zip(&got) {
        assert_same(
            &format!("{mode:?} {}", ours.id()),
            ours,
            sdk,
            mode == KafkaMode::Binary,
        );
    }
}

fn sdk_read_by_ours(binary: bool) {
    let broker = Tansu::start();
    let topic = "sdk-to-ours";
    broker.create_topic(topic, 1);
    let sent = sdk_events(true);
    let producer: rdkafka_sdk::producer::BaseProducer = rdkafka_sdk::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    for ev in &sent {
        let rec = if binary {
            MessageRecord::from_event(ev.clone()).unwrap()
        } else {
            ev.clone()
                .deserialize_structured(MessageRecord::new())
                .unwrap()
        };
        let record = rdkafka_sdk::producer::BaseRecord::<str, Vec<u8>>::to(topic)
            .key(ev.id())
            .message_record(&rec)
            .unwrap();
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(LIMIT).unwrap();

    let recs = read_back(&broker.bootstrap(), topic, sent.len());
    for (rec, sdk) in recs.iter().zip(&sent) {
        let what = format!("binary={binary} {}", sdk.id());
        if !binary {
            assert_eq!(
                rec.headers,
                [(
                    "content-type".to_owned(),
                    b"application/cloudevents+json".to_vec()
                )],
                "{what}"
            );
        }
        let headers: Vec<(&str, &[u8])> = rec
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let mut scratch = vec![0u8; 64 * 1024];
        let back = ossa_events::parse::kafka::parse(
            headers.iter().copied(),
            rec.key.as_deref(),
            rec.value.as_deref(),
            &mut Scratch::new(&mut scratch),
        )
        .unwrap_or_else(|e| panic!("{what}: we refused {rec:?}: {e}"));
        assert_eq!(back.key, Some(sdk.id().as_bytes()), "{what}: key");
        assert_same(&what, &back.event, sdk, binary);
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn fixtures_cover_each_extension_type_and_data_kind() {
    {
        let evs = ours();
        let kinds: Vec<&str> = evs
            .iter()
            .flat_map(|e| e.extensions().iter())
            .map(|e| ossa_events_tests::ext_kind(&e.value))
            .collect();
        for k in ["string", "integer", "boolean"] {
            assert!(kinds.contains(&k), "{k}");
        }
        assert!(matches!(evs[0].data(), Some(Data::Json(_))));
        assert!(matches!(evs[1].data(), Some(Data::Text(_))));
        assert!(matches!(evs[2].data(), Some(Data::Binary(_))));
        assert!(evs[3].data().is_none());
        let t = evs[0].time().unwrap();
        assert_eq!(t.nanos(), 123_456_789);
        assert_ne!(t.offset(), ossa_events::Offset::Utc);
    }
}

#[test]
fn binary_records_of_our_kafka_sink_are_read_by_the_sdk() {
    ours_read_by_sdk(KafkaMode::Binary);
}

#[test]
fn structured_records_of_our_kafka_sink_are_read_by_the_sdk() {
    ours_read_by_sdk(KafkaMode::Structured);
}

#[test]
fn binary_records_of_the_sdk_are_read_by_our_parser() {
    sdk_read_by_ours(true);
}

#[test]
fn structured_records_of_the_sdk_are_read_by_our_parser() {
    sdk_read_by_ours(false);
}
