//! What the cloudevents-sdk interop tests compare an event of ours with an
//! sdk event by: the data reduced to what both sides must agree on, and the
//! instant of `time`. Shared by the HTTP-receiver and Kafka interop tests.

use cloudevents::{AttributesReader as _, Data as SdkData, Event as SdkEvent};
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
