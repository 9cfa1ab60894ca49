//! RFC 3339 timestamps: never panics; the canonical form parses back to an
//! equal timestamp and is itself canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ossa_events_core::Timestamp;

fuzz_target!(|data: &[u8]| {
    let parsed = Timestamp::parse_bytes(data);
    if let Ok(s) = core::str::from_utf8(data) {
        assert_eq!(
            Timestamp::parse(s),
            parsed,
            "parse and parse_bytes disagree"
        );
    }
    let Ok(t) = parsed else {
        return;
    };
    let mut buf = [0u8; Timestamp::MAX_LEN];
    let s = t.write_to(&mut buf);
    assert_eq!(s.len(), t.encoded_len(), "encoded_len is wrong for {s}");
    let back = Timestamp::parse(s).unwrap_or_else(|e| panic!("{s} does not parse: {e:?}"));
    assert_eq!(back, t, "{s}");
    assert!(back.same_instant(&t));
    let mut again = [0u8; Timestamp::MAX_LEN];
    assert_eq!(back.write_to(&mut again), s);
});
