//! A JSON Lines drain that fails part-way resumes after the last line the
//! writer took whole: the reader parses every event exactly once, and that
//! is what the emitter counts delivered. Only a failed `flush` (the writer
//! says what it took may not have arrived) writes the drain again, whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Act, FlushAct, Scripted, read};
use ossa_events_core::batch::{Batch, BatchFormat};
use ossa_events_core::emitter::{Config, Emitter};
use ossa_events_core::{Event, FixedClock, RandomIds, Timestamp};

fn batch(n: usize) -> Batch<8, 4096> {
    let mut b = Batch::new(BatchFormat::JsonLines);
    for i in 0..n {
        let id = format!("e{i}");
        let ev = Event::builder()
            .id(&id)
            .source("/s")
            .ty("t")
            .build()
            .unwrap();
        b.push_ref(&ev).unwrap();
    }
    b
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("e{i}")).collect()
}

#[test]
fn a_write_failing_at_any_byte_never_duplicates_or_glues_a_line() {
    let total = batch(3).bytes_len();
    for cut in 0..total {
        for passed in [0, 1, 4] {
            let script = [Act::Short(cut.max(1)), Act::Fail { passed }];
            let script = if cut == 0 { &script[1..] } else { &script[..] };
            let w = Scripted::new(script, &[]);
            let mut b = batch(3);
            assert!(b.write_to(&mut w.clone()).is_err());
            assert_eq!(b.len(), 3, "nothing is delivered before the flush");
            assert_eq!(b.write_to(&mut w.clone()).unwrap(), 3);
            let stream = w.wire.borrow().all();
            // Exact, unless the cut write had passed bytes on before failing

            // (then an event may arrive twice); never glued, never lost.

            let passing = w.wire.borrow().passing_failures > 0;

            assert_eq!(passing, passed > 0);

            read(BatchFormat::JsonLines, &stream).assert_got(&ids(3), passing, &stream);
        }
    }
}

#[test]
fn short_and_zero_writes_resume_at_the_exact_byte() {
    // `Ok(n)` says exactly what was taken, so nothing is torn: the stream is
    // the clean one, without a fragment or a repeated line.
    let script = [
        Act::Short(7),
        Act::Zero,
        Act::Accept,
        Act::Short(100),
        Act::Zero,
    ];
    let w = Scripted::new(&script, &[]);
    let mut b = batch(3);
    let mut attempts = 0;
    while b.write_to(&mut w.clone()).is_err() {
        attempts += 1;
        assert!(attempts < 10);
    }
    assert!(b.is_empty());
    let stream = w.wire.borrow().all();
    let r = read(BatchFormat::JsonLines, &stream);
    assert_eq!(r.ids, ids(3));
    assert!(
        r.unparsed.is_empty(),
        "{}",
        String::from_utf8_lossy(&stream)
    );
}

#[test]
fn a_failed_flush_writes_the_whole_drain_again() {
    // Lossy: the connection dropped what it had not confirmed.
    let w = Scripted::new(&[], &[FlushAct::FailLossy]);
    let mut b = batch(3);
    assert!(b.write_to(&mut w.clone()).is_err());
    assert_eq!(b.write_to(&mut w.clone()).unwrap(), 3);
    let stream = w.wire.borrow().all();
    assert_eq!(read(BatchFormat::JsonLines, &stream).ids, ids(3));
    // Passing: the bytes had gone out after all; the documented duplicates.
    let w = Scripted::new(&[], &[FlushAct::FailPassing]);
    let mut b = batch(2);
    assert!(b.write_to(&mut w.clone()).is_err());
    assert_eq!(b.write_to(&mut w.clone()).unwrap(), 2);
    let stream = w.wire.borrow().all();
    assert_eq!(
        read(BatchFormat::JsonLines, &stream).ids,
        ["e0", "e1", "e0", "e1"]
    );
}

#[test]
fn the_emitter_counts_what_the_reader_parses() {
    let w = Scripted::new(&[Act::Short(120), Act::Fail { passed: 3 }], &[]);
    let idsrc: RandomIds<fn(&mut [u8; 16])> = RandomIds(|b| b.fill(1));
    let mut em: Emitter<'_, _, _, _, 8, 4096> = Emitter::new(
        Config::new("/dev/1").batch_size(3),
        w.clone(),
        idsrc,
        FixedClock(Timestamp::UNIX_EPOCH),
    );
    for i in 0..3 {
        let id = format!("e{i}");
        em.emit(Event::builder().id(&id).ty("t")).unwrap();
    }
    assert_eq!(em.counters().failed_writes, 1);
    assert_eq!(em.flush().unwrap(), 3);
    let stream = w.wire.borrow().all();
    let r = read(BatchFormat::JsonLines, &stream);
    assert_eq!(r.ids, ids(3));
    assert_eq!(r.ids.len() as u64, em.counters().delivered);
    r.assert_only_torn_fragments(&stream);
}

#[test]
fn a_writer_replaced_mid_drain_gets_every_pending_event() {
    let first_line = batch(1).bytes_len();
    // The old connection takes the first line whole, then breaks.
    let old = Scripted::new(&[Act::Short(first_line + 5), Act::Fail { passed: 0 }], &[]);
    let idsrc: RandomIds<fn(&mut [u8; 16])> = RandomIds(|b| b.fill(1));
    let mut em: Emitter<'_, _, _, _, 8, 4096> = Emitter::new(
        Config::new("/dev/1").batch_size(8),
        old.clone(),
        idsrc,
        FixedClock(Timestamp::UNIX_EPOCH),
    );
    for i in 0..3 {
        let id = format!("e{i}");
        em.emit(Event::builder().id(&id).ty("t")).unwrap();
    }
    assert!(em.flush().is_err());
    assert!(em.batch().is_torn());
    // Reconnect: the new connection never saw the first line.
    let new = Scripted::default();
    *em.writer_mut() = new.clone();
    assert_eq!(em.flush().unwrap(), 3);
    let stream = new.wire.borrow().all();
    assert_eq!(read(BatchFormat::JsonLines, &stream).ids, ids(3));
    assert!(
        stream.starts_with(b"\n{"),
        "a `\\n` first, in case it is the same line"
    );
}
