//! `format::json::write_jsonl` with a `T: Serialize` payload that fails after
//! part of it reached the writer (more than the 256-byte gather buffer): the
//! torn record is ended with `\n`, so the next record is a line of its own.
//! Before, the next record was glued to the torn one and a line reader lost
//! both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events_core::error::{EncodeError, PayloadError};
use ossa_events_core::format::json;
use serde::ser::{Error as _, SerializeStruct, Serializer};

/// Writes `fields` members of `"x" * 100`, then fails.
struct FailsAfter {
    fields: usize,
}

impl serde::Serialize for FailsAfter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("FailsAfter", self.fields + 1)?;
        let long = "x".repeat(100);
        for _ in 0..self.fields {
            st.serialize_field("k", &long)?;
        }
        Err(S::Error::custom("the payload gave up"))
    }
}

fn event(payload: &FailsAfter) -> ossa_events_core::Event<'_> {
    ossa_events_core::Event::builder()
        .id("torn")
        .source("/s")
        .ty("t")
        .data_serialize(payload)
        .build()
        .unwrap()
}

#[test]
fn a_torn_record_is_ended_so_the_next_one_is_its_own_line() {
    let good = ossa_events_core::Event::builder()
        .id("good")
        .source("/s")
        .ty("t")
        .build()
        .unwrap();
    // 0 members: nothing reached the writer, nothing is written; 12 members:
    // ~1.2 KB went through before the failure.
    for fields in [0, 1, 12] {
        let payload = FailsAfter { fields };
        let mut out: Vec<u8> = Vec::new();
        let err = json::write_jsonl(&event(&payload), &mut out).unwrap_err();
        assert!(
            matches!(err, EncodeError::Payload(PayloadError::Custom(ref m)) if m.contains("gave up")),
            "{err:?}"
        );
        let torn = out.len();
        assert!(
            torn == 0 || out.ends_with(b"\n"),
            "{fields}: the torn record is ended"
        );
        json::write_jsonl(&good, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let last = text.lines().last().unwrap();
        let v: serde_json::Value = serde_json::from_str(last).unwrap();
        assert_eq!(v["id"], "good", "{fields}: {text}");
        if fields == 0 {
            assert_eq!(torn, 0, "nothing of a record that failed in the buffer");
        }
    }
}
