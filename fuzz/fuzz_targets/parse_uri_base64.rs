//! URI and media type validators never panic and agree with each other (an
//! absolute URI has no fragment, a media type no whitespace around it);
//! canonical Base64 decodes and re-encodes to itself; any bytes encode and
//! decode back. The builder's `source` check (the run-time form, with its
//! SSE2 fast path on x86-64) agrees with `uri::is_uri_reference`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ossa_events_core::{base64, uri, Attribute, Event};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = core::str::from_utf8(data) {
        assert!(
            !uri::is_absolute_uri(s) || uri::is_uri_reference(s),
            "absolute but not a reference"
        );
        assert!(
            !uri::is_absolute_uri(s) || !s.contains('#'),
            "absolute-URI with a fragment"
        );
        assert!(
            !uri::is_uri_with_fragment(s) || uri::is_uri_reference(s),
            "URI with a fragment but not a reference"
        );
        if uri::is_media_type(s) {
            assert_eq!(s.trim(), s, "media type with whitespace around it");
        }
        let built = Event::builder().id("1").ty("t").source(s).build();
        assert_eq!(
            built.is_err_and(|e| e.attribute == Attribute::Source),
            !uri::is_uri_reference(s),
            "the builder and the grammar disagree on source {s:?}"
        );
        let _ = (
            uri::is_media_type(s),
            uri::is_json_media_type(s),
            uri::is_text_media_type(s),
        );
    }
    if let Ok(n) = base64::decoded_len(data) {
        let mut out = vec![0u8; n];
        assert_eq!(base64::decode_to_slice(data, &mut out), Ok(n));
        assert!(base64::decoded_eq(data, &out));
        let mut enc = vec![0u8; base64::encoded_len(n)];
        assert_eq!(base64::encode_to_slice(&out, &mut enc), Some(data.len()));
        assert_eq!(enc, data, "canonical Base64 re-encodes to itself");
    }
    let mut enc = vec![0u8; base64::encoded_len(data.len())];
    assert_eq!(base64::encode_to_slice(data, &mut enc), Some(enc.len()));
    assert_eq!(base64::decoded_len(&enc), Ok(data.len()));
    let mut dec = vec![0u8; data.len()];
    assert_eq!(base64::decode_to_slice(&enc, &mut dec), Ok(data.len()));
    assert_eq!(dec, data);
});
