#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `ossa_events::sdk` keeps every JSON number of `data` that an `f64` holds
//! exactly: what `to_sdk` gives the sdk (a `serde_json::Value`) is the same
//! float, and `from_sdk` writes it back as the same text.
//!
//! Here, not in `std-sinks/tests`: a dev-dependency of `ossa-events`
//! (rig-core) turns on serde_json's `float_roundtrip` in every build of that
//! crate's tests, which hid that a user's build of the conversions (without
//! rig) read about one float in ten as its neighbour (`970.8819781538285` as
//! `970.8819781538284`). This crate has no such dev-dependency.

use ossa_events::sdk::cloudevents::Data as SdkData;
use ossa_events::sdk::{from_sdk, to_sdk};
use ossa_events::{Data, Event};

/// Floats that serde_json's default (best-effort) parsing read as a
/// neighbouring `f64`, each written in its shortest round-trip form.
const MISREAD: [&str; 7] = [
    "970.8819781538285",
    "106.34669156721243",
    "943.0133659506739",
    "216.75430952099362",
    "1.575464701838822e-177",
    "1.0858219721122314e98",
    "-3.884071093209543e-279",
];

/// `n` floats from a fixed SplitMix64 sequence: ordinary magnitudes
/// (`[0, 1000)` with every mantissa bit used) and arbitrary finite bit patterns.
fn floats(n: usize) -> Vec<f64> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.push((z >> 11) as f64 / (1u64 << 53) as f64 * 1000.0);
        let any = f64::from_bits(z);
        if any.is_finite() {
            out.push(any);
        }
    }
    out
}

/// `text` (a JSON number) as data, to the sdk and back: the sdk holds the
/// float `want`, and it comes back as the text serde_json writes for it.
fn assert_kept(text: &str, want: f64) {
    let ev = Event::builder()
        .id("1")
        .source("/s")
        .ty("t")
        .data_json(text)
        .build()
        .unwrap();
    let theirs = to_sdk(&ev).unwrap();
    let got = match theirs.data() {
        Some(SdkData::Json(v)) => v.as_f64().unwrap(),
        other => panic!("{text}: {other:?}"),
    };
    assert_eq!(
        got.to_bits(),
        want.to_bits(),
        "{text} reached the sdk as {got:?}"
    );
    let mut scratch = String::new();
    let back = from_sdk(&theirs, &mut scratch).unwrap();
    let Some(Data::Json(raw)) = back.data() else {
        panic!("{text}: {:?}", back.data());
    };
    let read: f64 = raw.parse().unwrap();
    assert_eq!(read.to_bits(), want.to_bits(), "{text} came back as {raw}");
}

#[test]
fn floats_serde_json_used_to_misread_reach_the_sdk_unchanged() {
    for text in MISREAD {
        assert_kept(text, text.parse().unwrap());
    }
}

#[test]
fn any_finite_float_reaches_the_sdk_and_comes_back_unchanged() {
    for x in floats(20_000) {
        assert_kept(&format!("{x:?}"), x);
    }
}
