//! An event that can never be stored (larger than the whole arena, or whose
//! payload fails to serialize) is refused for what it is, `TooLarge` or
//! `Payload`, counted `rejected`, whatever state the batch is in: also when
//! the batch already holds `N` events and the writer is down. Reporting it
//! as `Full` (counted `dropped`, "retry later") sends the caller to retry an
//! event that no flush can ever make room for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::{Config, EmitError, Emitter};
use ossa_events_core::io::SliceWriter;
use ossa_events_core::{Event, FixedClock, RandomIds, Timestamp};

fn ids() -> RandomIds<fn(&mut [u8; 16])> {
    RandomIds(|b| b.fill(7))
}

/// A payload whose serialization always fails.
struct Unserializable;
impl serde::Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("no"))
    }
}

#[test]
fn an_event_larger_than_the_arena_is_too_large_even_when_the_count_is_full_and_the_writer_down() {
    for format in [BatchFormat::JsonLines, BatchFormat::JsonBatch] {
        let mut broken = [0u8; 0];
        let clock = FixedClock(Timestamp::UNIX_EPOCH);
        let config = Config::new("/dev/1").format(format);
        let mut em: Emitter<'_, _, _, _, 1, 256> =
            Emitter::new(config, SliceWriter::new(&mut broken), ids(), clock);
        em.emit(Event::builder().ty("t")).unwrap(); // stored; its flush failed
        assert_eq!((em.pending(), em.counters().failed_writes), (1, 1));

        let big = "x".repeat(400); // can never fit 256 bytes
        let err = em.emit(Event::builder().ty("t").subject(&big)).unwrap_err();
        assert!(matches!(err, EmitError::TooLarge), "{format:?}: {err:?}");
        let c = em.counters();
        assert_eq!((c.rejected, c.dropped), (1, 0), "{format:?}: {c:?}");
    }
}

#[test]
fn a_failing_payload_is_rejected_even_when_the_count_is_full_and_the_writer_down() {
    let mut broken = [0u8; 0];
    let clock = FixedClock(Timestamp::UNIX_EPOCH);
    let mut em: Emitter<'_, _, _, _, 1, 256> = Emitter::new(
        Config::new("/dev/1"),
        SliceWriter::new(&mut broken),
        ids(),
        clock,
    );
    em.emit(Event::builder().ty("t")).unwrap();
    let err = em
        .emit(Event::builder().ty("t").data_serialize(&Unserializable))
        .unwrap_err();
    assert!(matches!(err, EmitError::Payload(_)), "{err:?}");
    let c = em.counters();
    assert_eq!((c.rejected, c.dropped), (1, 0), "{c:?}");
}
