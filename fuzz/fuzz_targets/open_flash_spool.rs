//! The flash spool reading flash it did not write (a previous firmware,
//! damage, garbage): opening never panics and fails only with a typed
//! error; whatever it counts, a drain writes out and removes; new events
//! then go through the same flash and come out whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ossa_events_core::emitter::Config;
use ossa_events_core::io::SliceWriter;
use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter, SpoolError, SpoolMode};
use ossa_events_core::{Event, FixedClock, RandomIds, Timestamp};

/// 8 pages of 512 bytes.
const BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut flash = RamFlash::<BYTES, 512>::new();
    let n = data.len().min(BYTES);
    flash.as_bytes_mut()[..n].copy_from_slice(&data[..n]);
    let spool = match FlashSpool::<_, 256>::open(flash, 0..BYTES as u32) {
        Ok(spool) => spool.mode(SpoolMode::Always),
        Err(SpoolError::StoredEventTooLarge { len }) => {
            assert!(len > 256);
            return;
        }
        Err(e) => panic!("open failed on a valid range: {e:?}"),
    };
    let held = spool.len();
    let mut out = vec![0u8; 64 * 1024];
    let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 256> = SpoolEmitter::new(
        Config::new("/fuzz"),
        SliceWriter::new(&mut out),
        spool,
        RandomIds(|b: &mut [u8; 16]| b.fill(3)),
        FixedClock(Timestamp::UNIX_EPOCH),
    );
    em.flush().expect("the writer has room");
    assert!(em.spool().is_empty(), "a drain empties the spool");
    assert_eq!(em.spool_counters().replayed, held as u64);
    assert_eq!(em.spool_counters().flash_errors, 0);
    for _ in 0..5 {
        em.emit(Event::builder().ty("fuzz.after"))
            .expect("room for 5 events");
    }
    em.flush().expect("the writer has room");
    assert_eq!(em.counters().delivered, held as u64 + 5);
    // The last five lines are the new events, whole.
    let text = em.writer().written();
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() >= 5);
    for line in &lines[lines.len() - 5..] {
        assert!(
            line.starts_with(b"{") && line.ends_with(b"}"),
            "a torn event"
        );
        assert!(
            line.windows(10).any(|w| w == b"fuzz.after"),
            "not a new event"
        );
    }
});
