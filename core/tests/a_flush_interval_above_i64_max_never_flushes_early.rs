//! Issue 11, item 9: `flush_interval_ms` above `i64::MAX` used to wrap to a
//! negative interval, so every `poll` flushed. It now means "never by time".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events_core::emitter::{Config, Emitter};
use ossa_events_core::io::SliceWriter;
use ossa_events_core::{Event, FixedClock, RandomIds, Timestamp};

#[test]
fn poll_waits_for_the_interval_however_long() {
    let big = [i64::MAX as u64 + 1, u64::MAX - 1, u64::MAX];
    for interval in big {
        let mut out = [0u8; 2048];
        let ids: RandomIds<fn(&mut [u8; 16])> = RandomIds(|b| b.fill(3));
        let config = Config::new("/s").flush_interval_ms(interval);
        let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(
            config,
            SliceWriter::new(&mut out),
            ids,
            FixedClock(Timestamp::UNIX_EPOCH),
        );
        em.emit(Event::builder().ty("t")).unwrap();
        for ms in [0, 1, 1_000, 86_400_000 * 365 * 100] {
            let now = Timestamp::from_unix_millis(ms).unwrap();
            assert_eq!(
                em.poll(now).unwrap(),
                0,
                "interval {interval}, {ms} ms later"
            );
            assert!(em.next_flush_in_ms(now).unwrap() > 0);
        }
        assert_eq!(em.pending(), 1);
        assert_eq!(em.flush().unwrap(), 1, "an explicit flush still writes");
    }
}

#[test]
fn an_interval_of_i64_max_is_still_honoured_exactly() {
    let mut out = [0u8; 2048];
    let ids: RandomIds<fn(&mut [u8; 16])> = RandomIds(|b| b.fill(3));
    let config = Config::new("/s").flush_interval_ms(i64::MAX as u64);
    let mut em: Emitter<'_, _, _, _, 8, 2048> = Emitter::new(
        config,
        SliceWriter::new(&mut out),
        ids,
        FixedClock(Timestamp::UNIX_EPOCH),
    );
    em.emit(Event::builder().ty("t")).unwrap();
    let now = Timestamp::from_unix_millis(1).unwrap();
    assert_eq!(em.poll(now).unwrap(), 0);
    assert_eq!(em.next_flush_in_ms(now), Some(i64::MAX as u64 - 1));
}
