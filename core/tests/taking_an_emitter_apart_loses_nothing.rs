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

/// A link that takes `budget` more bytes, then answers `Ok(0)` (`zero`) or
/// an error.
#[derive(Clone, Default)]
struct Budget {
    out: Rc<std::cell::RefCell<Vec<u8>>>,
    budget: Rc<std::cell::Cell<usize>>,
    zero: bool,
}

impl embedded_io::ErrorType for Budget {
    type Error = common::flash::LinkDown;
}

impl embedded_io::Write for Budget {
    fn write(&mut self, buf: &[u8]) -> Result<usize, common::flash::LinkDown> {
        let n = buf.len().min(self.budget.get());
        if n == 0 {
            return if self.zero {
                Ok(0)
            } else {
                Err(common::flash::LinkDown)
            };
        }
        self.budget.set(self.budget.get() - n);
        self.out.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), common::flash::LinkDown> {
        Ok(())
    }
}

type BudgetEm = ossa_events_core::spool::SpoolEmitter<
    'static,
    Budget,
    common::flash::CutFlash,
    RandomIds<fn(&mut [u8; 16])>,
    TestClock,
    4,
    1024,
    512,
>;

fn on_budget(format: BatchFormat, mode: SpoolMode, link: Budget) -> (BudgetEm, Rc<Power>) {
    let power = Rc::new(Power::default());
    let flash = common::flash::CutFlash {
        ram: Ram::new(),
        power: power.clone(),
    };
    let spool = ossa_events_core::spool::FlashSpool::open(flash, 0..8 * 1024)
        .unwrap()
        .mode(mode);
    let config = Config::new("/s").batch_size(4).format(format);
    let em = ossa_events_core::spool::SpoolEmitter::new(
        config,
        link,
        spool,
        RandomIds(common::flash::fill_ids as fn(&mut [u8; 16])),
        TestClock::default(),
    );
    (em, power)
}

/// `discard_pending` after a drain cut inside the line of the event it
/// drops: the next event is written whole after a `\n` ending the fragment.
/// It was taken for written (the cut offset lay past its JSON): only the
/// `\n` went out, and it was counted delivered.
#[test]
fn discard_pending_after_a_cut_line_does_not_swallow_the_next_event() {
    // The flash is broken: nothing spills. A long event is cut mid-line.
    let link = Budget::default();
    link.budget.set(200);
    let (mut em, power) = on_budget(BatchFormat::JsonLines, SpoolMode::WhenDown, link.clone());
    power.broken.set(true);
    let long = "x".repeat(300);
    let data = format!("\"{long}\"");
    em.emit(Event::builder().id("long").ty("t").data_json(&data))
        .unwrap();
    assert!(em.flush().is_err());
    assert_eq!(em.discard_pending(), 1);
    // The link is back: a short event goes out whole.
    link.budget.set(usize::MAX);
    em.emit(Event::builder().id("short").ty("t")).unwrap();
    assert_eq!(em.flush().unwrap(), 1);
    let got = common::read(BatchFormat::JsonLines, &link.out.borrow());
    assert_eq!(
        got.ids,
        ["short"],
        "{:?}",
        String::from_utf8_lossy(&link.out.borrow())
    );
}

/// `discard_pending` after a JSON batch drain stopped (`Ok(0)`) past the
/// `,` before the event it drops: the array left is written again, whole,
/// on a line of its own. The drain went on at the old offset, found nothing
/// left to write, and counted ev-0 delivered while the reader held `[ev-0,`.
#[test]
fn discard_pending_after_a_write_zero_in_a_json_batch_leaves_a_whole_array() {
    // ev-0 is in flash (and its copy in the batch), ev-1 only in RAM (the
    // flash broke); the writer takes `[ev-0,` and part of ev-1, then 0.
    let link = Budget {
        zero: true,
        ..Budget::default()
    };
    let (mut em, power) = on_budget(BatchFormat::JsonBatch, SpoolMode::Always, link.clone());
    em.emit(Event::builder().id("ev-0").ty("t")).unwrap();
    assert_eq!(em.spool().len(), 1);
    power.broken.set(true);
    em.emit(Event::builder().id("ev-1").ty("t")).unwrap();
    assert_eq!((em.pending(), em.spool().len()), (2, 1));
    // ev-0's JSON is as long as on an emitter whose link takes it all.
    let whole = Budget::default();
    whole.budget.set(usize::MAX);
    let (mut probe, _) = on_budget(BatchFormat::JsonBatch, SpoolMode::Always, whole.clone());
    probe.emit(Event::builder().id("ev-0").ty("t")).unwrap();
    assert_eq!(probe.flush().unwrap(), 1);
    let ev0_len = whole.out.borrow().len() - "[]\n".len();
    link.budget.set(1 + ev0_len + 1 + 10); // `[`, ev-0, `,` and 10 bytes of ev-1
    assert!(em.flush().is_err());
    assert_eq!(em.discard_pending(), 1);
    link.budget.set(usize::MAX);
    assert_eq!(em.flush().unwrap(), 1);
    let got = common::read(BatchFormat::JsonBatch, &link.out.borrow());
    assert_eq!(
        got.ids,
        ["ev-0"],
        "{:?}",
        String::from_utf8_lossy(&link.out.borrow())
    );
}
