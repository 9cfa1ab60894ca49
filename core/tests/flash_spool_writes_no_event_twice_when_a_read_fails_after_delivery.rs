//! A flash read that fails while the spool removes the events a writer
//! just delivered (an SPI NOR bus glitch): those events went out and are
//! counted delivered; they must leave the spool's count and not be written
//! again in this run (a restart may replay them: at least once), as when a
//! removal mark fails to program.
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::flash::{TestClock, fill_ids, reading};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use ossa_events_core::RandomIds;
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::Config;
use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter, SpoolMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Glitch;

impl NorFlashError for Glitch {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

/// A RAM flash whose next `fail_reads` reads fail (nothing read).
struct GlitchyFlash {
    ram: RamFlash<4096, 1024>,
    fail_reads: Rc<Cell<u32>>,
}

impl ErrorType for GlitchyFlash {
    type Error = Glitch;
}

impl ReadNorFlash for GlitchyFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Glitch> {
        if self.fail_reads.get() > 0 {
            self.fail_reads.set(self.fail_reads.get() - 1);
            return Err(Glitch);
        }
        self.ram.read(offset, bytes).map_err(|_| Glitch)
    }
    fn capacity(&self) -> usize {
        4096
    }
}

impl NorFlash for GlitchyFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 1024;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Glitch> {
        self.ram.erase(from, to).map_err(|_| Glitch)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Glitch> {
        self.ram.write(offset, bytes).map_err(|_| Glitch)
    }
}

/// A writer that takes everything; its `flush` arms `reads` read failures
/// of the flash (the glitch comes right after the delivery).
#[derive(Clone)]
struct Out {
    bytes: Rc<RefCell<Vec<u8>>>,
    arm: Rc<Cell<u32>>,
    fail_reads: Rc<Cell<u32>>,
}

impl embedded_io::ErrorType for Out {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Out {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.bytes.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.fail_reads.set(self.arm.replace(0));
        Ok(())
    }
}

fn run(mode: SpoolMode, reads: u32) {
    let fail_reads = Rc::new(Cell::new(0));
    let flash = GlitchyFlash {
        ram: RamFlash::new(),
        fail_reads: fail_reads.clone(),
    };
    let spool = FlashSpool::<_, 512>::open(flash, 0..4096)
        .unwrap()
        .mode(mode);
    let out = Out {
        bytes: Rc::default(),
        arm: Rc::new(Cell::new(0)),
        fail_reads,
    };
    let config = Config::new("/devices/7")
        .batch_size(8)
        .format(BatchFormat::JsonLines);
    let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
        config,
        out.clone(),
        spool,
        RandomIds(fill_ids as fn(&mut [u8; 16])),
        TestClock::default(),
    );
    for id in ["a", "b", "c"] {
        em.emit(reading(id)).unwrap();
    }
    if mode == SpoolMode::WhenDown {
        // Put them in flash: an outage (a writer that fails) is what does it
        // in WhenDown; here the emitter is taken apart and rebuilt instead.
        let (w, spool) = em.into_parts().expect("the flash has room");
        em = SpoolEmitter::new(
            config,
            w,
            spool,
            RandomIds(fill_ids as fn(&mut [u8; 16])),
            TestClock::default(),
        );
    }
    assert_eq!(em.spool().len(), 3);
    out.arm.set(reads);
    assert_eq!(em.flush().unwrap(), 3);
    let c = em.counters();
    let s = em.spool_counters();
    assert!(s.flash_errors > 0, "the glitch was met: {s:?}");
    assert_eq!(
        (c.delivered, em.pending()),
        (3, 0),
        "delivered events are no longer pending: {c:?} {s:?} spool {:?}",
        em.spool()
    );
    // Whatever flushes come next, nothing goes out twice.
    em.flush().unwrap();
    em.emit(reading("d")).unwrap();
    em.flush().unwrap();
    let got = common::read(BatchFormat::JsonLines, &out.bytes.borrow()).ids;
    assert_eq!(
        got,
        ["a", "b", "c", "d"],
        "mode {mode:?}, {reads} failed reads"
    );
    assert_eq!(em.counters().delivered, 4);
    assert_eq!(em.pending(), 0);
    assert!(em.spool().is_empty());
}

#[test]
fn a_read_that_fails_while_removing_delivered_events_does_not_send_them_again() {
    for mode in [SpoolMode::Always, SpoolMode::WhenDown] {
        for reads in 1..=3 {
            run(mode, reads);
        }
    }
}
