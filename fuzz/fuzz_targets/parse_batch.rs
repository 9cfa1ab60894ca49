//! A JSON batch: iterating never panics and ends; every event re-encodes;
//! the events read into one shared `Scratch` (`next_event_in`, the batch
//! held whole, in at most its length of scratch) are those read one at a
//! time, and the same error ends both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ossa_events_core::format::json;
use ossa_events_core::parse::json::BatchParser;
use ossa_events_core::Scratch;
use ossa_events_fuzz::{check_event, SCRATCH};

fuzz_target!(|data: &[u8]| {
    let Ok(mut events) = BatchParser::new(data) else {
        return;
    };
    let mut buf = [0u8; SCRATCH];
    let mut n = 0;
    // Each event as JSON, then the error that ended the batch, if one did.
    let mut one_at_a_time = Vec::new();
    let mut ended_by = None;
    while let Some(ev) = events.next_event(&mut buf) {
        n += 1;
        assert!(n <= data.len(), "batch yields more events than input bytes");
        match ev {
            Ok(ev) => {
                check_event(&ev);
                one_at_a_time.push(encoded(&ev));
            }
            Err(e) => {
                ended_by = Some(e);
                assert!(
                    events.next_event(&mut [0u8; 64]).is_none(),
                    "event after an error"
                );
            }
        }
    }
    let Ok(mut events) = BatchParser::new(data) else {
        panic!("a batch that opened once does not open again");
    };
    let mut whole = vec![0u8; data.len()];
    let mut scratch = Scratch::new(&mut whole);
    let mut held = Vec::new();
    let mut ended_in = None;
    while let Some(ev) = events.next_event_in(&mut scratch) {
        match ev {
            Ok(ev) => held.push(ev),
            Err(e) => ended_in = Some(e),
        }
    }
    // Both read the same elements in the same order; a `SCRATCH`-sized
    // buffer may be too small for an event the batch-sized scratch holds,
    // so only an input no longer than it must end the same way.
    let got: Vec<Vec<u8>> = held.iter().map(encoded).collect();
    let k = one_at_a_time.len().min(got.len());
    assert_eq!(one_at_a_time[..k], got[..k], "held events differ");
    if data.len() <= SCRATCH {
        assert_eq!(one_at_a_time, got, "held events differ");
        assert_eq!(ended_by, ended_in, "the batches end differently");
    }
});

fn encoded(ev: &ossa_events_core::Event<'_>) -> Vec<u8> {
    let len = json::encoded_len(ev).expect("parsed events have no Serialize payload");
    let mut out = vec![0u8; len];
    let n = json::to_slice(ev, &mut out).expect("encoded_len is exact");
    out.truncate(n);
    out
}
