//! Every read the flash driver fails is a flash error, counted in
//! `SpoolCounters::flash_errors` (the module docs: "each failure is a flash
//! error"), and the give-up on a record that cannot be read comes after
//! more than 8 of them. Before, two failed reads went uncounted: the one
//! in the settle after a new page was started (ignored, yet counted
//! toward the give-up), and the one the give-up itself swallowed.
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::flash::{CutError, EmOn, FLASH, Link, Shared, TestClock, emitter, reading, records};
use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use ossa_events_core::spool::{FlashSpool, SpoolMode};

/// A [`Shared`] flash that counts the reads it failed.
#[derive(Clone, Default)]
struct Counted {
    flash: Shared,
    failed_reads: Rc<Cell<u64>>,
}

impl ErrorType for Counted {
    type Error = CutError;
}

impl ReadNorFlash for Counted {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), CutError> {
        let r = self.flash.read(offset, bytes);
        if r.is_err() {
            self.failed_reads.set(self.failed_reads.get() + 1);
        }
        r
    }
    fn capacity(&self) -> usize {
        FLASH
    }
}

impl NorFlash for Counted {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = Shared::ERASE_SIZE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), CutError> {
        self.flash.erase(from, to)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), CutError> {
        self.flash.write(offset, bytes)
    }
}

/// An emitter whose link is down, with the first page full (`a1`..`a3`)
/// and `a1`'s header on a bad sector.
fn head_unreadable(mode: SpoolMode) -> (Counted, EmOn<Counted>, Link) {
    let flash = Counted::default();
    let spool = FlashSpool::<_, 512>::open(flash.clone(), 0..FLASH as u32)
        .unwrap()
        .mode(mode);
    let link = Link::default();
    link.down.set(true);
    let mut em = emitter(spool, link.clone(), TestClock::default());
    for id in ["a1", "a2", "a3"] {
        em.emit(reading(id)).unwrap();
    }
    let first = records(flash.flash.ram.borrow().as_bytes())[0].clone();
    assert_eq!((first.id.as_str(), first.at), ("a1", 8));
    assert_eq!(em.spool().len(), 3);
    flash
        .flash
        .bad
        .borrow_mut()
        .push(first.at as u32..first.at as u32 + 4);
    (flash, em, link)
}

#[test]
fn a_failed_read_after_a_new_page_is_counted() {
    for mode in [SpoolMode::Always, SpoolMode::WhenDown] {
        let (flash, mut em, _link) = head_unreadable(mode);
        // The next event starts the second page; the settle after it
        // reads the head, on the bad sector.
        em.emit(reading("a4")).unwrap();
        assert!(flash.failed_reads.get() > 0, "{mode:?}: the head was read");
        assert_eq!(
            em.spool_counters().flash_errors,
            flash.failed_reads.get(),
            "{mode:?}: every failed read counted: {:?}",
            em.spool_counters()
        );
        assert_eq!(em.spool().len(), 4, "{mode:?}: a4 went to flash");
    }
}

#[test]
fn the_read_the_spool_gives_up_on_is_counted_too() {
    // The events a run left in flash; the next run finds the head's
    // header unreadable once it is open.
    let (flash, em, _link) = head_unreadable(SpoolMode::Always);
    flash.flash.bad.borrow_mut().clear();
    let (_, spool) = em.into_parts().expect("all in flash");
    let flash = Counted {
        flash: spool.into_flash().flash,
        failed_reads: Rc::default(),
    };
    let spool = FlashSpool::<_, 512>::open(flash.clone(), 0..FLASH as u32).unwrap();
    assert_eq!(spool.len(), 3);
    let link = Link::default();
    let mut em = emitter(spool, link.clone(), TestClock::default());
    flash.flash.bad.borrow_mut().push(8..12);
    for _ in 0..40 {
        let _ = em.flush();
        if em.pending() == 0 {
            break;
        }
    }
    let s = em.spool_counters();
    assert_eq!(em.pending(), 0, "{s:?}");
    assert_eq!(s.damaged, 3, "the rest of the page set aside: {s:?}");
    assert!(
        flash.failed_reads.get() > 8,
        "given up after more than 8 failed reads: {}",
        flash.failed_reads.get()
    );
    assert_eq!(
        s.flash_errors,
        flash.failed_reads.get(),
        "every failed read counted: {s:?}"
    );
}
