//! One structured JSON event: never panics; what parses re-encodes (JSON,
//! HTTP and Kafka binary mode) and parses back to the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ossa_events_core::{json, parse, Scratch, MAX_DATA_DEPTH};
use ossa_events_fuzz::{check_event, SCRATCH};

fuzz_target!(|data: &[u8]| {
    let mut buf = [0u8; SCRATCH];
    let parsed = parse::json::parse_event(data, &mut Scratch::new(&mut buf));
    if let Ok(ev) = parsed {
        assert!(
            json::validate(data, MAX_DATA_DEPTH).is_ok(),
            "event is not JSON"
        );
        check_event(&ev);
    }
});
