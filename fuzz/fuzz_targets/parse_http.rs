//! An HTTP message: `name: value` header lines, an empty line, the body. The
//! `Content-Type` line picks binary, structured or batched mode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ossa_events_core::{parse::http, Scratch};
use ossa_events_fuzz::{check_event, split_message, SCRATCH};

fuzz_target!(|data: &[u8]| {
    let (headers, body) = split_message(data);
    let mut buf = [0u8; SCRATCH];
    let message = http::parse(headers.iter().copied(), body, &mut Scratch::new(&mut buf));
    match message {
        Ok(http::Message::Event(ev)) => check_event(&ev),
        Ok(http::Message::Batch(mut events)) => {
            let mut buf = [0u8; SCRATCH];
            while let Some(ev) = events.next_event(&mut buf) {
                if let Ok(ev) = ev {
                    check_event(&ev);
                }
            }
        }
        Ok(_) | Err(_) => {}
    }
});
