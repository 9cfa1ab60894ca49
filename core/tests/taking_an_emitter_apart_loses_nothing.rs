//! Taking an emitter apart never loses a pending event silently.
//! `Emitter::into_writer` gives the emitter back while events are pending
//! (flush it, or `discard_pending`, which counts them as dropped);
//! `SpoolEmitter::into_parts` first writes the events only in RAM to flash,
//! where the next run finds them, and gives the emitter back when the flash
//! cannot take them.
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::rc::Rc;

use common::flash::{Link, Power, Ram, TestClock, linked, open, reading};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::{Config, Emitter};
use ossa_events_core::io::SliceWriter;
use ossa_events_core::spool::{SpoolMode, WhenFull};
use ossa_events_core::{Event, FixedClock, RandomIds, Timestamp};

/// An emitter on a fresh flash of 8 pages, with its link and the flash's
/// power (to break the flash).
fn fresh() -> (common::flash::Em, Link, Rc<Power>) {
    let power = Rc::new(Power::default());
    let link = Link {
        power: power.clone(),
        ..Link::default()
    };
    let em = open(
        Ram::new(),
        8,
        power.clone(),
        SpoolMode::WhenDown,
        WhenFull::DropOldest,
        link.clone(),
        TestClock::default(),
    );
    (em, link, power)
}

#[test]
fn into_writer_gives_the_emitter_back_while_events_are_pending() {
    let mut n = 0u8;
    let ids = RandomIds(move |b: &mut [u8; 16]| {
        n += 1;
        b.fill(n)
    });
    let clock = FixedClock(Timestamp::UNIX_EPOCH);
    let mut out = [0u8; 4096];
    let mut em: Emitter<'_, _, _, _, 8, 2048> =
        Emitter::new(Config::new("/s"), SliceWriter::new(&mut out), ids, clock);
    for _ in 0..3 {
        em.emit(Event::builder().ty("t")).unwrap();
    }
    let Err(mut em) = em.into_writer() else {
        panic!("3 events are pending")
    };
    assert_eq!(em.pending(), 3, "nothing lost by asking");
    assert_eq!(em.flush(), Ok(3));
    em.emit(Event::builder().ty("t")).unwrap();
    assert_eq!(em.discard_pending(), 1);
    assert_eq!(em.discard_pending(), 0);
    let c = em.counters();
    assert_eq!((c.emitted, c.delivered, c.dropped), (4, 3, 1), "{c:?}");
    assert_eq!(em.next_flush_in_ms(Timestamp::UNIX_EPOCH), None);
    let Ok(w) = em.into_writer() else {
        panic!("nothing pending")
    };
    assert_eq!(w.written().iter().filter(|&&b| b == b'\n').count(), 3);
}

#[test]
fn into_parts_writes_the_events_only_in_ram_to_flash_for_the_next_run() {
    // Batches of 2, the link up: an odd event waits in RAM only.
    let (mut em, link, clock) = linked(8, SpoolMode::WhenDown, WhenFull::DropOldest);
    for id in ["ev-0", "ev-1", "ev-2"] {
        em.emit(reading(id)).unwrap();
    }
    assert_eq!((em.pending(), em.spool().len()), (1, 0));
    let Ok((_link, spool)) = em.into_parts() else {
        panic!("the flash has room")
    };
    assert_eq!(spool.len(), 1, "ev-2 went to flash");
    // The next run sends it.
    let mut em = open(
        spool.into_flash().ram,
        8,
        Rc::new(Power::default()),
        SpoolMode::WhenDown,
        WhenFull::DropOldest,
        link.clone(),
        clock,
    );
    assert_eq!(em.flush().unwrap(), 1);
    let got = common::read(BatchFormat::JsonLines, &link.out.borrow()).ids;
    assert_eq!(got, ["ev-0", "ev-1", "ev-2"]);
}

#[test]
fn into_parts_gives_the_emitter_back_when_the_flash_cannot_take_them() {
    let (mut em, link, power) = fresh();
    em.emit(reading("ev-0")).unwrap();
    power.broken.set(true);
    let Err(mut em) = em.into_parts() else {
        panic!("a broken flash takes nothing")
    };
    assert_eq!(em.pending(), 1, "ev-0 is still held");
    assert!(em.spool_counters().flash_errors >= 1);
    // The link works: a flush delivers it, and then it comes apart.
    assert_eq!(em.flush().unwrap(), 1);
    let Ok(_) = em.into_parts() else {
        panic!("nothing left in RAM")
    };
    let got = common::read(BatchFormat::JsonLines, &link.out.borrow()).ids;
    assert_eq!(got, ["ev-0"]);
}

#[test]
fn discard_pending_drops_only_what_is_in_ram_and_counts_it() {
    let (mut em, link, power) = fresh();
    // Two in flash (the link down), then the flash breaks: one in RAM.
    link.down.set(true);
    em.emit(reading("ev-0")).unwrap();
    em.emit(reading("ev-1")).unwrap();
    let in_flash = em.spool().len();
    assert_eq!(in_flash, 2);
    power.broken.set(true);
    em.emit(reading("ev-2")).unwrap();
    assert_eq!(em.pending(), 3);
    assert_eq!(em.discard_pending(), 1);
    assert_eq!((em.pending(), em.counters().dropped), (2, 1));
    let Ok((_link, spool)) = em.into_parts() else {
        panic!("nothing left in RAM")
    };
    assert_eq!(spool.len(), 2, "the flash keeps its events");
}
