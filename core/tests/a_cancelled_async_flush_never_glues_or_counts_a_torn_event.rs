//! Issue 11, item 6: an `AsyncEmitter` flush future dropped mid-write (embassy
//! `select`, a timeout) must leave the batch torn, so that the retry starts on
//! a new line and every event the emitter counts delivered is one the reader
//! parses, once.
#![cfg(feature = "async")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Act, FlushAct, Scripted, poll_or_drop, read};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::{AsyncEmitter, Config};
use ossa_events_core::{Event, FixedClock, RandomIds, Timestamp};

type Em = AsyncEmitter<'static, Scripted, RandomIds<fn(&mut [u8; 16])>, FixedClock, 8, 4096>;

fn emitter(format: BatchFormat, w: Scripted) -> Em {
    let ids: RandomIds<fn(&mut [u8; 16])> = RandomIds(|b| b.fill(7));
    let config = Config::new("/dev/async").batch_size(8).format(format);
    AsyncEmitter::new(config, w, ids, FixedClock(Timestamp::UNIX_EPOCH))
}

/// Three events pending, not yet flushed.
fn three(em: &mut Em) {
    for id in ["e0", "e1", "e2"] {
        let ev = Event::builder()
            .id(id)
            .ty("com.example.t")
            .subject("abcdefghij");
        poll_or_drop(em.emit(ev), 10).unwrap().unwrap();
    }
    assert_eq!(em.pending(), 3);
}

/// Framed size of the three events, read from a clean run.
fn framed(format: BatchFormat) -> usize {
    let w = Scripted::default();
    let mut em = emitter(format, w.clone());
    three(&mut em);
    poll_or_drop(em.flush(), 10).unwrap().unwrap();

    w.wire.borrow().wire.len()
}

#[test]
fn a_write_cancelled_at_any_byte_offset_is_recovered_on_a_new_line() {
    for format in [BatchFormat::JsonLines, BatchFormat::JsonBatch] {
        let total = framed(format);
        for cut in 0..total {
            for passed in [0, 1, 9] {
                // The writer takes `cut` bytes, then a DMA transfer of
                // `passed` more starts and the flush future is dropped.
                let script = [Act::Short(cut.max(1)), Act::Hang { passed }];
                let script = if cut == 0 { &script[1..] } else { &script[..] };
                let w = Scripted::new(script, &[]);
                let mut em = emitter(format, w.clone());
                three(&mut em);
                assert!(poll_or_drop(em.flush(), 10).is_none(), "cancelled");
                assert!(em.batch().is_torn(), "set before the write, still set");
                assert_eq!(em.counters().delivered, 0);
                assert_eq!(em.pending(), 3, "a cancelled flush keeps every event");
                assert_eq!(poll_or_drop(em.flush(), 10).unwrap(), Ok(3));
                let stream = w.wire.borrow().all();
                // Exact, unless the cut write had passed bytes on before failing

                // (then an event may arrive twice); never glued, never lost.

                let passing = w.wire.borrow().passing_failures > 0;

                assert_eq!(passing, passed > 0);

                read(format, &stream).assert_got(
                    &["e0", "e1", "e2"].map(String::from),
                    passing,
                    &stream,
                );
                assert_eq!(em.counters().delivered, 3);
            }
        }
    }
}

#[test]
fn a_flush_cancelled_after_every_byte_was_written_is_not_written_again() {
    for format in [BatchFormat::JsonLines, BatchFormat::JsonBatch] {
        let w = Scripted::new(&[], &[FlushAct::Hang]);
        let mut em = emitter(format, w.clone());
        three(&mut em);
        assert!(poll_or_drop(em.flush(), 10).is_none(), "cancelled in flush");
        assert!(!em.batch().is_torn(), "every write returned");
        assert_eq!(poll_or_drop(em.flush(), 10).unwrap(), Ok(3));
        let stream = w.wire.borrow().all();
        let r = read(format, &stream);
        assert_eq!(r.ids, ["e0", "e1", "e2"], "{format:?}: no duplicate");
        assert!(r.unparsed.is_empty());
    }
}

#[test]
fn an_emit_whose_flush_is_cancelled_keeps_its_event_and_the_next_flush_delivers_it() {
    let w = Scripted::new(&[Act::Short(30), Act::Hang { passed: 3 }], &[]);
    let ids: RandomIds<fn(&mut [u8; 16])> = RandomIds(|b| b.fill(7));
    // batch_size 1: every emit flushes.
    let config = Config::new("/dev/async").batch_size(1);
    let mut em: Em = AsyncEmitter::new(config, w.clone(), ids, FixedClock(Timestamp::UNIX_EPOCH));
    let ev = Event::builder().id("e0").ty("com.example.t");
    assert!(
        poll_or_drop(em.emit(ev), 10).is_none(),
        "cancelled mid-write"
    );
    assert_eq!((em.counters().emitted, em.pending()), (1, 1));
    let ev = Event::builder().id("e1").ty("com.example.t");
    poll_or_drop(em.emit(ev), 10).unwrap().unwrap();
    let stream = w.wire.borrow().all();
    let r = read(BatchFormat::JsonLines, &stream);
    assert_eq!(r.ids, ["e0", "e1"], "{}", String::from_utf8_lossy(&stream));
    r.assert_only_torn_fragments(&stream);
    assert_eq!(em.counters().delivered, 2);
}
