//! What the cloudevents-sdk interop tests share: the sdk's fixture events
//! and the data they carry, and what an event of ours is compared with an
//! sdk event by (the data reduced to what both sides must agree on, the
//! instant of `time`). Used by the HTTP-receiver and Kafka interop tests.

use cloudevents::{
    AttributesReader as _, Data as SdkData, Event as SdkEvent, EventBuilder as _, EventBuilderV10,
};
use ossa_events::{Data, Event, Timestamp};

/// Data reduced to what both sides must agree on: JSON as a value, anything
/// else as its bytes.
#[derive(Debug, PartialEq)]
pub(crate) enum Norm {
    /// JSON data, as a value.
    Json(serde_json::Value),
    /// Any other data, as its bytes.
    Bytes(Vec<u8>),
}

/// Whether content type `ct` (none: JSON, the format's implied type) is JSON.
fn is_json(ct: Option<&str>) -> bool {
    ct.is_none_or(|c| {
        let m = c.split(';').next().unwrap_or("").trim();
        m == "application/json" || m.ends_with("+json")
    })
}

/// Our event's data, reduced.
pub(crate) fn norm_ours(ev: &Event<'_>) -> Option<Norm> {
    Some(match ev.data()? {
        Data::Json(s) => Norm::Json(serde_json::from_str(s).unwrap()),
        Data::Text(t) => Norm::Bytes(t.as_bytes().to_vec()),
        Data::Binary(b) => Norm::Bytes(b.to_vec()),
        // `data_base64` as parsed (still encoded).
        Data::Base64(b) => Norm::Bytes(
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b).unwrap(),
        ),
        other => panic!("unexpected data {other:?}"),
    })
}

/// The sdk event's data, reduced.
pub(crate) fn norm_sdk(ev: &SdkEvent) -> Option<Norm> {
    Some(match ev.data()? {
        SdkData::Json(v) => Norm::Json(v.clone()),
        SdkData::String(s) => Norm::Bytes(s.as_bytes().to_vec()),
        // A binary-mode body is kept as bytes whatever its type.
        SdkData::Binary(b) if is_json(ev.datacontenttype()) => {
            Norm::Json(serde_json::from_slice(b).unwrap())
        }
        SdkData::Binary(b) => Norm::Bytes(b.clone()),
    })
}

/// Whether our timestamp and the sdk's are the same instant.
pub(crate) fn same_instant(ours: Timestamp, sdk: &chrono::DateTime<chrono::Utc>) -> bool {
    ours.unix_seconds() == sdk.timestamp() && ours.nanos() == sdk.timestamp_subsec_nanos()
}

/// The fixtures' `time`: fractional seconds and an offset.
pub(crate) const TIME: &str = "2024-02-29T23:59:59.123456789+05:30";
/// The first fixture's JSON data: escapes, numbers of each form, non-ASCII.
pub(crate) const JSON_DATA: &str =
    r#"{"q":"grüße \"x\"","n":[1,2.5,-3e2,true,null],"nested":{"ü":"ß 😀"}}"#;
/// The text fixture's data.
pub(crate) const TEXT_DATA: &str = "line one\nlíne two ✓ 100% \"done\"";
/// The binary fixture's data: every awkward byte.
pub(crate) const BINARY: &[u8] = &[0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, b'\r', b'\n', b'"'];

/// The sdk's events: every attribute and each extension type on the first
/// (JSON data), then text, binary and no data. `percent`: the first one's
/// string values also hold `%` (the sdk's HTTP binding writes a `%` into a
/// header as it is, which no reader can tell from an encoded one; Kafka
/// headers carry it as it is).
pub(crate) fn sdk_events(percent: bool) -> Vec<SdkEvent> {
    let pct = if percent { " 100%" } else { "" };
    // The sdk keeps a time in UTC only; it takes the RFC 3339 text.
    let t = TIME;
    let json: serde_json::Value = serde_json::from_str(JSON_DATA).unwrap();
    vec![
        EventBuilderV10::new()
            .id(format!("s-json ✓{pct}"))
            .source("https://example.com/agents/researcher?x=1")
            .ty("ai.ossa.tool.called")
            .subject(format!(
                "Grüße € 😀 \"quoted\"{}",
                if percent { " 100% %20" } else { "" }
            ))
            .time(t)
            .extension("extstring", format!("naïve ✓ \"q\"{pct}"))
            .extension("extint", -2_147_483_648i64)
            .extension("exttrue", true)
            .extension("extfalse", false)
            .data_with_schema(
                "application/json",
                "https://example.com/schemas/call.json",
                json,
            )
            .build()
            .unwrap(),
        EventBuilderV10::new()
            .id("s-text")
            .source("urn:ossa:test")
            .ty("ai.ossa.note")
            .time(t)
            .extension("extint", 7i64)
            .data("text/plain; charset=utf-8", TEXT_DATA.to_owned())
            .build()
            .unwrap(),
        EventBuilderV10::new()
            .id("s-bin")
            .source("/s")
            .ty("ai.ossa.blob")
            .data("application/octet-stream", BINARY.to_vec())
            .build()
            .unwrap(),
        EventBuilderV10::new()
            .id("s-none")
            .source("/s")
            .ty("ai.ossa.ping")
            .subject("ä")
            .build()
            .unwrap(),
    ]
}
