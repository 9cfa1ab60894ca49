//! A JSON batch: iterating never panics and ends; every event re-encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ossa_events_core::parse::json::BatchParser;
use ossa_events_fuzz::{check_event, SCRATCH};

fuzz_target!(|data: &[u8]| {
    let Ok(mut events) = BatchParser::new(data) else {
        return;
    };
    let mut buf = [0u8; SCRATCH];
    let mut n = 0;
    while let Some(ev) = events.next_event(&mut buf) {
        n += 1;
        assert!(n <= data.len(), "batch yields more events than input bytes");
        match ev {
            Ok(ev) => check_event(&ev),
            Err(_) => assert!(
                events.next_event(&mut [0u8; 64]).is_none(),
                "event after an error"
            ),
        }
    }
});
