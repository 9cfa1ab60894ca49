//! A Kafka record. First byte: bit 0 = has a key, bit 1 = has a value. Then
//! `name:value` header lines, an empty line, the key line (if any) and the
//! value (the rest).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ossa_events_core::{parse::kafka, Scratch};
use ossa_events_fuzz::{check_event, split_message, SCRATCH};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (headers, mut rest) = split_message(rest);
    let mut key = None;
    if flags & 1 != 0 {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        key = Some(&rest[..end]);
        rest = rest.get(end + 1..).unwrap_or(&[]);
    }
    let value = (flags & 2 != 0).then_some(rest);
    let mut buf = [0u8; SCRATCH];
    let parsed = kafka::parse(
        headers.iter().copied(),
        key,
        value,
        &mut Scratch::new(&mut buf),
    );
    if let Ok(rec) = parsed {
        assert_eq!(rec.key, key, "the key is handed back as it was");
        check_event(&rec.event);
    }
});
