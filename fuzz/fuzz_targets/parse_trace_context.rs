//! `traceparent` and `tracestate` checks never panic; a `traceparent` that
//! parses writes back (as version 00) to a value that parses to the same ids
//! and flags, and equals the input when that was version 00.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ossa_events_core::trace::{check_tracestate, TraceParent, TraceParentText};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = core::str::from_utf8(data) else {
        return;
    };
    let _ = check_tracestate(s);
    if let Ok(tp) = TraceParent::parse(s) {
        let mut text = TraceParentText::new();
        let written = text.write(&tp);
        let back = TraceParent::parse(written).expect("what we write parses");
        assert_eq!(
            (back.trace_id(), back.parent_id(), back.flags()),
            (tp.trace_id(), tp.parent_id(), tp.flags())
        );
        if tp.version() == 0 {
            assert_eq!(written, s);
        }
    }
});
