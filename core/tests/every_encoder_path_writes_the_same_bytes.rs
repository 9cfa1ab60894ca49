//! The JSON encoder writes short members and the time into the writer's
//! buffer in one step when it is memory (`to_slice`, and the gathering buffer of
//! `write_json` / `write_jsonl`), and piece by piece into any other writer
//! (the batch arena). Whatever the lengths of the values, whether they need
//! escaping, and wherever the buffers fill up, every path writes the same
//! bytes, and they read back as the event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events_core::attr::check_extension_name;
use ossa_events_core::batch::{Batch, BatchFormat};
use ossa_events_core::format::json;
use ossa_events_core::io::SliceWriter;
use ossa_events_core::{Event, ExtValue, Scratch, Timestamp, parse};
use proptest::prelude::*;

/// Strings around the 16-byte fast path and past it, with and without
/// characters that need escaping.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9/.:-]{1,40}",
        "[a-z]{0,20}[\"\\\\é€😀][a-z]{0,20}",
        "[ -~]{1,80}",
    ]
}

fn ext_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,19}"
}

/// A writer that takes at most `chunk` bytes a call: not memory.
struct Trickle {
    out: Vec<u8>,
    chunk: usize,
}

impl embedded_io::ErrorType for Trickle {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Trickle {
    fn write(&mut self, b: &[u8]) -> Result<usize, Self::Error> {
        let n = b.len().min(self.chunk);
        self.out.extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn to_slice_write_json_jsonl_and_the_batch_agree(
        id in value(),
        source in "/[a-z0-9/._~-]{0,40}",
        ty in value(),
        subject in proptest::option::of(value()),
        time in proptest::option::of(
            "20[0-9]{2}-0[1-9]-1[0-9]T[01][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,12})?(Z|[+-]0[0-9]:[0-5][0-9])"
        ),
        // Shifts where the 256-byte gathering buffer fills.
        pad in 0usize..300,
        exts in proptest::collection::vec((ext_name(), value()), 0..6),
        chunk in 1usize..40,
    ) {
        let padding = "p".repeat(pad + 1);
        let mut names: Vec<String> = Vec::new();
        let mut b = Event::builder().id(&id).source(&source).ty(&ty).dataschema("urn:x");
        b = b.extension_str("pad", &padding);
        if let Some(s) = &subject {
            b = b.subject(s);
        }
        if let Some(t) = &time {
            b = b.time(Timestamp::parse(t).unwrap());
        }
        for (name, v) in &exts {
            // Names the builder refuses for a String (a core attribute's
            // such as `id`, a trace context's) are not this test's subject.
            if name == "pad"
                || names.contains(name)
                || check_extension_name(name).is_err()
                || name == "traceparent"
                || name == "tracestate"
            {
                continue;
            }
            names.push(name.clone());
            b = b.extension(name, ExtValue::String(v));
        }
        let ev = b.build().unwrap();

        let mut buf = vec![0u8; 8192];
        let n = json::to_slice(&ev, &mut buf).unwrap();
        let sliced = &buf[..n];

        let mut gathered = vec![0u8; 8192];
        let mut w = SliceWriter::new(&mut gathered);
        json::write_json(&ev, &mut w).unwrap();
        prop_assert_eq!(String::from_utf8_lossy(w.written()), String::from_utf8_lossy(sliced));

        let mut t = Trickle { out: Vec::new(), chunk };
        json::write_jsonl(&ev, &mut t).unwrap();
        prop_assert_eq!(&t.out[..t.out.len() - 1], sliced);
        prop_assert_eq!(json::encoded_len(&ev).unwrap(), n);

        let mut batch: Batch<1, 8192> = Batch::new(BatchFormat::JsonLines);
        batch.push_ref(&ev).unwrap();
        let mut t = Trickle { out: Vec::new(), chunk: 8192 };
        batch.write_to(&mut t).unwrap();
        prop_assert_eq!(String::from_utf8_lossy(&t.out[..t.out.len() - 1]), String::from_utf8_lossy(sliced));

        let mut scratch = [0u8; 4096];
        let back = parse::json::parse_event(sliced, &mut Scratch::new(&mut scratch)).unwrap();
        prop_assert!(back.same_as(&ev, false), "read back as the event");
        let v: serde_json::Value = serde_json::from_slice(sliced).unwrap();
        prop_assert_eq!(v["id"].as_str(), Some(id.as_str()));
        prop_assert_eq!(v["type"].as_str(), Some(ty.as_str()));
        for name in &names {
            let want = exts.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
            prop_assert_eq!(v[name.as_str()].as_str(), want);
        }
    }
}
