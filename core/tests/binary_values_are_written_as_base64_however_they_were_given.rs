//! Bytes are written as Base64 in structured JSON however they reached the
//! event: `data_binary`, `data(Data::Binary)`, a binary extension (set, or
//! replacing another value), an HTTP or
//! Kafka binary-mode message whose body is bytes, a builder made from such
//! an event. The encoder is carried by the event from where the bytes came
//! in (so a firmware without binary values does not link it); these are
//! every way in, each checked against `base64::encode_to_slice` on random
//! bytes, and through the writer, the slice writer and the batch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events_core::batch::{Batch, BatchFormat};
use ossa_events_core::format::json;
use ossa_events_core::io::SliceWriter;
use ossa_events_core::{Data, Event, EventBuilder, ExtValue, Scratch, base64, parse};
use proptest::prelude::*;

fn base<'a>() -> EventBuilder<'a> {
    Event::builder().id("1").source("/s").ty("t")
}

fn b64(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len().div_ceil(3) * 4];
    let n = base64::encode_to_slice(bytes, &mut out).unwrap();
    String::from_utf8(out[..n].to_vec()).unwrap()
}

/// The event as each encoder writes it; all three must agree.
fn encode(ev: &Event<'_>) -> String {
    let mut buf = vec![0u8; 4096];
    let n = json::to_slice(ev, &mut buf).unwrap();
    let sliced = String::from_utf8(buf[..n].to_vec()).unwrap();
    let mut out = vec![0u8; 4096];
    let mut w = SliceWriter::new(&mut out);
    json::write_json(ev, &mut w).unwrap();
    assert_eq!(w.written(), sliced.as_bytes(), "write_json vs to_slice");
    let mut batch: Batch<4, 4096> = Batch::new(BatchFormat::JsonLines);
    batch.push(ev.clone()).unwrap();
    let mut out = vec![0u8; 4096];
    let mut w = SliceWriter::new(&mut out);
    batch.write_to(&mut w).unwrap();
    assert_eq!(
        w.written(),
        format!("{sliced}\n").as_bytes(),
        "batch vs to_slice"
    );
    sliced
}

proptest! {
    #[test]
    fn every_way_in_writes_base64(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let want = b64(&bytes);
        let data_end = format!(r#","data_base64":"{want}"}}"#);
        let ext = format!(r#","blob":"{want}""#);

        let ev = base().data_binary("application/octet-stream", &bytes).build().unwrap();
        prop_assert!(encode(&ev).ends_with(&data_end));
        let ev = base().data(Data::Binary(&bytes)).build().unwrap();
        prop_assert!(encode(&ev).ends_with(&data_end));
        // Made again from an event that has the bytes: still written.
        let again = ev.to_builder().subject("s").build().unwrap();
        prop_assert!(encode(&again).ends_with(&data_end));

        let ev = base().extension("blob", ExtValue::Binary(&bytes)).build().unwrap();
        prop_assert!(encode(&ev).contains(&ext));
        let ev = base()
            .extension_str("blob", "first a string")
            .extension("blob", ExtValue::Binary(&bytes))
            .build()
            .unwrap();
        prop_assert!(encode(&ev).contains(&ext));

        // Binary mode with no content type: the body is bytes.
        let mut scratch = [0u8; 256];
        let headers: [(&str, &[u8]); 4] = [
            ("ce-specversion", b"1.0"),
            ("ce-id", b"1"),
            ("ce-source", b"/s"),
            ("ce-type", b"t"),
        ];
        if !bytes.is_empty() {
            let ev = parse::http::parse_binary(headers, &bytes, &mut Scratch::new(&mut scratch))
                .unwrap();
            prop_assert!(encode(&ev).ends_with(&data_end));
            let headers: [(&str, &[u8]); 4] = [
                ("ce_specversion", b"1.0"),
                ("ce_id", b"1"),
                ("ce_source", b"/s"),
                ("ce_type", b"t"),
            ];
            let mut scratch = [0u8; 256];
            let rec = parse::kafka::parse(headers, None, Some(&bytes), &mut Scratch::new(&mut scratch))
                .unwrap();
            prop_assert!(encode(&rec.event).ends_with(&data_end));
        }
    }
}

/// An event with no bytes to encode writes the same as before the Base64
/// encoder moved into the event: nothing of it is needed.
#[test]
fn no_binary_value_no_encoder_needed() {
    let ev = base()
        .data_json(r#"{"a":1}"#)
        .extension_str("x", "y")
        .build()
        .unwrap();
    assert_eq!(
        encode(&ev),
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","x":"y","data":{"a":1}}"#
    );
}
