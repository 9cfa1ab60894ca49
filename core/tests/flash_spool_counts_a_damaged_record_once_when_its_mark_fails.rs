//! A record whose bytes changed in flash while the emitter ran (bit rot) is
//! set aside once, counted once in `damaged`, and the events after it still
//! go out, also when the flash fails to write its removal mark the first
//! time. (Found by a review: the record was counted again at every load, the
//! spool's count fell below what it held, and the next event stayed in flash
//! with `pending()` at 0.)
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::flash::{Link, Ram, TestClock, emitter, reading};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::spool::{FlashSpool, SpoolMode};

/// A RAM flash the test can reach into while the emitter owns it, whose
/// writes can be made to fail.
#[derive(Clone, Default)]
struct Shared {
    ram: Rc<RefCell<Ram>>,
    fail_writes: Rc<Cell<bool>>,
}

#[derive(Debug)]
struct Failed;

impl NorFlashError for Failed {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

impl ErrorType for Shared {
    type Error = Failed;
}

impl ReadNorFlash for Shared {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Failed> {
        self.ram
            .borrow_mut()
            .read(offset, bytes)
            .map_err(|_| Failed)
    }
    fn capacity(&self) -> usize {
        self.ram.borrow().capacity()
    }
}

impl NorFlash for Shared {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = common::flash::PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Failed> {
        if self.fail_writes.get() {
            return Err(Failed);
        }
        self.ram.borrow_mut().erase(from, to).map_err(|_| Failed)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Failed> {
        if self.fail_writes.get() {
            return Err(Failed);
        }
        self.ram
            .borrow_mut()
            .write(offset, bytes)
            .map_err(|_| Failed)
    }
}

#[test]
fn a_record_damaged_at_run_time_is_counted_once_and_the_next_event_still_goes_out() {
    let flash = Shared {
        ram: Rc::new(RefCell::new(Ram::new())),
        ..Shared::default()
    };
    let spool = FlashSpool::<_, 512>::open(flash.clone(), 0..common::flash::FLASH as u32)
        .unwrap()
        .mode(SpoolMode::Always);
    let link = Link::default();
    let clock = TestClock::default();
    let mut em = emitter(spool, link.clone(), clock.clone());
    link.down.set(true);
    // Five events: the RAM batch (4) clears its copies to make room for the
    // fifth, so the flush reads them all back from flash.
    for id in ["e0", "e1", "e2", "e3", "e4"] {
        em.emit(reading(id)).unwrap();
    }
    assert_eq!(em.spool().len(), 5);
    // e1's bytes change in flash.
    {
        let mut ram = flash.ram.borrow_mut();
        let bytes = ram.as_bytes_mut();
        let at = bytes.windows(2).position(|w| w == b"e1").unwrap();
        bytes[at + 1] = b'0';
    }
    // The link is back; the flash fails its writes for one flush.
    link.down.set(false);
    clock.0.set(clock.0.get() + 1000);
    flash.fail_writes.set(true);
    let _ = em.flush();
    flash.fail_writes.set(false);
    em.flush().unwrap();
    let got = common::read(BatchFormat::JsonLines, &link.out.borrow()).ids;
    assert_eq!(
        got,
        ["e0", "e2", "e3", "e4"],
        "the events after e1 went out"
    );
    assert_eq!(
        em.spool_counters().damaged,
        1,
        "one damaged record, counted once"
    );
    assert_eq!(em.pending(), 0);
    assert!(em.spool().is_empty());
    assert_eq!(em.counters().delivered, 4);
}
