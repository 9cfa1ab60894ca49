//! Our `no_std` Base64 (kept over the `base64` crate for firmware size: see
//! `core/src/base64.rs`) against the crate's strict `STANDARD` engine: the
//! same verdict on any input, the same bytes decoded, the same text encoded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ossa_events_core::base64 as ours;
use proptest::prelude::*;

/// Mostly-Base64 text: the alphabet, padding, and a few strangers.
fn base64ish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Canonical encodings of random bytes, sometimes with one byte changed.
        (
            prop::collection::vec(any::<u8>(), 0..600),
            any::<usize>(),
            any::<u8>(),
            any::<bool>()
        )
            .prop_map(|(raw, at, b, mutate)| {
                let mut s = STANDARD.encode(raw).into_bytes();
                if mutate && !s.is_empty() {
                    let i = at % s.len();
                    const STRANGERS: &[u8] = b"AZaz09+/=-_ \n\x00";
                    s[i] = STRANGERS[usize::from(b) % STRANGERS.len()];
                }
                s
            }),
        prop::collection::vec(prop::sample::select(b"AQgwZz09+/=-_ ".to_vec()), 0..40),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoding_agrees(s in base64ish()) {
        let theirs = STANDARD.decode(&s);
        let len = ours::decoded_len(&s);
        prop_assert_eq!(len.is_ok(), theirs.is_ok(), "{:?}: ours {:?}, theirs {:?}", String::from_utf8_lossy(&s), len, theirs);
        if let Ok(bytes) = theirs {
            prop_assert_eq!(len.unwrap(), bytes.len());
            let mut out = vec![0u8; bytes.len()];
            prop_assert_eq!(ours::decode_to_slice(&s, &mut out), Ok(bytes.len()));
            prop_assert_eq!(&out, &bytes);
            prop_assert!(ours::decoded_eq(&s, &bytes));
        }
    }

    #[test]
    fn encoding_agrees(raw in prop::collection::vec(any::<u8>(), 0..1000)) {
        let mut out = vec![0u8; ours::encoded_len(raw.len())];
        let n = ours::encode_to_slice(&raw, &mut out).unwrap();
        let theirs = STANDARD.encode(&raw);
        prop_assert_eq!(&out[..n], theirs.as_bytes());
    }
}
